"""The anatomical partner of a PET (CT in HU, MR) as a SimpleITK image in DICOM patient geometry.

PET is read by :mod:`netpet.dicom.convert` (SUV, per-slice slopes, provenance). CT and MR need
no quantification: the files are checked and ordered along the slice normal from their headers
(the same pixel-module and geometry rules as the PET) and read with SimpleITK's series reader,
which applies each file's rescale (HU for CT).
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence, Union

import pydicom
import SimpleITK as sitk

from netpet.dicom import files, tags, volume
from netpet.dicom.index import SeriesRecord
from netpet.errors import DicomInputError
from netpet.progress import ProgressCallback, report

log = logging.getLogger(__name__)


#: Header elements read from each CT/MR file; PixelData's value is deferred (only its length is used).
_HEADER_TAGS = ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "InstanceNumber",
                "Modality", "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns", "SamplesPerPixel",
                "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelData", "FloatPixelData",
                "DoubleFloatPixelData"]


def _header(path: str):
    """A file's geometry and Image Pixel module, reading no pixel values (O(header))."""
    try:
        return pydicom.dcmread(path, force=True, defer_size=1024, specific_tags=_HEADER_TAGS)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged files
        raise DicomInputError(f"Cannot read {path} as DICOM ({exc}); remove it from the series.") from exc


def _plane(path: str, ds) -> volume.Plane:
    position = tags.raw_floats(ds, 0x00200032)
    orientation = tags.raw_floats(ds, 0x00200037)
    spacing = tags.raw_floats(ds, 0x00280030)
    return volume.Plane(path=path, position=position, orientation=orientation, pixel_spacing=spacing,
                        slice_thickness=tags.raw_float(ds, 0x00180050), rows=int(ds.get("Rows", 0) or 0),
                        columns=int(ds.get("Columns", 0) or 0))


def read_image(source: Union[SeriesRecord, Sequence[str]], progress: Optional[ProgressCallback] = None) -> sitk.Image:
    """Read a single-frame CT or MR series (float32 image, LPS geometry).

    Every file's Image Pixel module is checked against its pixel data (:func:`files.pixel_layout`)
    and the planes against the rules of :func:`volume.plane_geometry` (the PET's rules), from the
    headers alone; the image then takes that checked geometry.

    Raises
    ------
    DicomInputError
        No files, unreadable or multi-frame files, MONOCHROME1 (whose inversion on read would change
        the stored values), a pixel header that disagrees with its data, or planes that are not one
        regular volume; one sentence naming the file, the tag and its value.
    """
    paths = list(source.files if isinstance(source, SeriesRecord) else source)
    label = source.series_uid if isinstance(source, SeriesRecord) else (paths[0] if paths else "?")
    if not paths:
        raise DicomInputError(f"Series {label} has no files.")
    report(progress, 0.0, f"Reading {len(paths)} headers")
    planes = []
    for path in paths:
        ds = _header(path)
        modality = str(ds.get("Modality", "") or "")
        layout = files.pixel_layout(ds, path, modality)
        if layout.multi_frame and layout.frames > 1:
            raise DicomInputError(f"{path} is a multi-frame image (NumberOfFrames (0028,0008) {layout.frames}); only "
                                  "single-frame CT/MR series are read here, so convert it to single-frame files first.")
        if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
            raise DicomInputError(f"{path} has PhotometricInterpretation (0028,0004) MONOCHROME1, whose values would be "
                                  "inverted on read, so convert the series to MONOCHROME2 first.")
        planes.append(_plane(path, ds))
    geometry = volume.plane_geometry(planes, label)
    for warning in geometry.warnings:
        log.warning("Series %s: %s", label, warning)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([paths[i] for i in geometry.order])
    report(progress, 0.3, f"Reading {len(paths)} images")
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise DicomInputError(f"Cannot read series {label}: {exc}") from exc
    if image.GetSize() != geometry.size:
        raise DicomInputError(f"Series {label} reads as {image.GetSize()} voxels where its headers give {geometry.size}; "
                              f"{files.REEXPORT}.")
    # the checked geometry, not the reader's own (which takes its slice spacing from two slices)
    image.SetOrigin(geometry.origin)
    image.SetSpacing(geometry.spacing)
    image.SetDirection(geometry.direction)
    report(progress, 1.0, "Series read")
    return sitk.Cast(image, sitk.sitkFloat32)
