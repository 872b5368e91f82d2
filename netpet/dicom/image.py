"""The anatomical partner of a PET (CT in HU, MR) as a SimpleITK image in DICOM patient geometry.

PET is read by :mod:`netpet.dicom.convert` (SUV, per-slice slopes, provenance). CT and MR need
no quantification: the files are ordered along the slice normal from their headers and read with
SimpleITK's series reader, which applies each file's rescale (HU for CT).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import pydicom
import SimpleITK as sitk

from netpet.dicom.index import SeriesRecord
from netpet.errors import DicomInputError
from netpet.progress import ProgressCallback, report


def _position(path: str):
    ds = pydicom.dcmread(path, stop_before_pixels=True,
                         specific_tags=["ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber",
                                        "PhotometricInterpretation", "NumberOfFrames"])
    return ds


def read_image(source: Union[SeriesRecord, Sequence[str]], progress: Optional[ProgressCallback] = None) -> sitk.Image:
    """Read a single-frame CT or MR series (float32 image, LPS geometry).

    Raises
    ------
    DicomInputError
        No files, multi-frame files, missing slice positions, or MONOCHROME1 (whose inversion on read
        would change the stored values).
    """
    paths = list(source.files if isinstance(source, SeriesRecord) else source)
    label = source.series_uid if isinstance(source, SeriesRecord) else (paths[0] if paths else "?")
    if not paths:
        raise DicomInputError(f"Series {label} has no files.")
    report(progress, 0.0, f"Reading {len(paths)} headers")
    keyed = []
    for path in paths:
        ds = _position(path)
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            raise DicomInputError(f"{path} is a multi-frame image; only single-frame CT/MR series are read here.")
        if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
            raise DicomInputError(f"{path} is MONOCHROME1; its values would be inverted on read. Convert the series "
                                  "to MONOCHROME2 first.")
        position = getattr(ds, "ImagePositionPatient", None)
        orientation = getattr(ds, "ImageOrientationPatient", None)
        if position is None or orientation is None:
            raise DicomInputError(f"{path} lacks ImagePositionPatient (0020,0032) or ImageOrientationPatient "
                                  "(0020,0037); the slice order cannot be known.")
        normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
        keyed.append((float(np.dot(normal, np.asarray(position, float))), path))
    keyed.sort()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([path for _, path in keyed])
    report(progress, 0.3, f"Reading {len(paths)} images")
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise DicomInputError(f"Cannot read series {label}: {exc}") from exc
    report(progress, 1.0, "Series read")
    return sitk.Cast(image, sitk.sitkFloat32)
