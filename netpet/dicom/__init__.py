"""DICOM side of NETPET: the study index of a folder tree and vendor-neutral SUV conversion.

Main entry points
-----------------
index_tree
    Walk a folder tree, group patients -> studies -> series, label PET tracers and pair each
    PET with its CT or MR.
convert_to_suv
    Convert one PET series to a float32 SUV image with a provenance record.
compute_suv_factors
    The SUV rules alone, on a header, without pixel data.
"""

from netpet.lazy import exports

# imported on first use (PEP 562): ``netpet index`` needs neither SimpleITK nor the SUV rules
__getattr__, __dir__, __all__ = exports(__name__, {
    "convert": ("SUVResult", "convert_to_suv", "read_series"),
    "index": ("SeriesRecord", "StudyIndex", "index_tree"),
    "suv": ("SUV_TYPES", "Overrides", "Provenance", "compute_suv_factors"),
})
