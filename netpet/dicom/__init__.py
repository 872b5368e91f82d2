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

from netpet.dicom.convert import SUVResult, convert_to_suv, read_series
from netpet.dicom.index import SeriesRecord, StudyIndex, index_tree
from netpet.dicom.suv import SUV_TYPES, Overrides, Provenance, compute_suv_factors

__all__ = [
    "SUVResult", "convert_to_suv", "read_series", "SeriesRecord", "StudyIndex", "index_tree",
    "SUV_TYPES", "Overrides", "Provenance", "compute_suv_factors",
]
