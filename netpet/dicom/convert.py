"""Convert one PET series (a list of files, or an indexed series) to an SUV image.

Pixel data is read with pydicom, which returns the stored values untouched: no display
inversion of MONOCHROME1 images (GDCM, and so SimpleITK's series reader, inverts them, which
destroys quantification) and no implicit rescale. Compressed pixel data that pydicom cannot
decode on this installation is decoded with SimpleITK/GDCM instead (its rescale undone; a
MONOCHROME1 image is then refused). The result is float32 in the series' own geometry.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset

from netpet.dicom import files, volume
from netpet.dicom.index import SeriesRecord
from netpet.dicom.pet_header import FileHeader, PetHeader, combine, read_file_header
from netpet.dicom.suv import Overrides, Provenance, compute_suv_factors
from netpet.dicom.tracer import identify
from netpet.errors import DicomInputError
from netpet.progress import ProgressCallback, report

log = logging.getLogger(__name__)

#: Series with at least this many files are read by worker processes.
PARALLEL_MIN_FILES = 96
_CHUNK = 48


@dataclass
class SUVResult:
    """An SUV image (float32, LPS geometry of the series) and how it was computed."""

    image: sitk.Image
    provenance: Provenance
    header: PetHeader


_NATIVE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")  # implicit / explicit VR little endian


def _pixels(path: str, ds: Dataset) -> np.ndarray:
    """Stored pixel values of a file: (rows, cols), or (frames, rows, cols) for multi-frame."""
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None)
    multi = "NumberOfFrames" in ds
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if (str(syntax) in _NATIVE and "PixelData" in ds and int(ds.get("SamplesPerPixel", 1) or 1) == 1
            and bits in (8, 16, 32) and int(ds.get("BitsStored", 0) or 0) == bits):
        # fast path: native little-endian, every allocated bit stored (no sign extension needed)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        dtype = np.dtype(("<i" if signed else "<u") + str(bits // 8))
        count = rows * cols * frames
        data = ds.PixelData
        if len(data) >= count * dtype.itemsize:
            values = np.frombuffer(data, dtype=dtype, count=count)
            return values.reshape((frames, rows, cols) if multi else (rows, cols))
    try:
        values = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for missing decoders
        if syntax is None or not getattr(syntax, "is_compressed", False):
            raise DicomInputError(f"Cannot read the pixel data of {path}: {exc}") from exc
        values = _pixels_with_gdcm(path, ds, syntax)
    if multi and values.ndim == 2:
        values = values[np.newaxis]
    return values


def _pixels_with_gdcm(path: str, ds: Dataset, syntax) -> np.ndarray:
    """Decode compressed pixel data with SimpleITK/GDCM, undoing its rescale."""
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        raise DicomInputError(
            f"{path} is compressed ({syntax.name}) and MONOCHROME1: the available decoder (GDCM) would "
            "invert its values; install pylibjpeg or decompress the file (e.g. with gdcmconv --raw)."
        )
    image = sitk.ReadImage(path)
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    stored = (values - intercept) / slope
    return stored[0] if stored.shape[0] == 1 and "NumberOfFrames" not in ds else stored


def _read_files(paths: Sequence[str]) -> List[Tuple[FileHeader, np.ndarray]]:
    """Read files fully; return each file's PET header and its stored pixel values."""
    out = []
    for path in paths:
        if not files.looks_like_dicom(path):
            raise DicomInputError(f"Cannot read {path}: it is not a DICOM file; remove it from the series.")
        try:
            ds = files.read_full(path)
        except Exception as exc:
            raise DicomInputError(f"Cannot read {path} as DICOM: {exc}") from exc
        if "PixelData" not in ds and "FloatPixelData" not in ds:
            raise DicomInputError(f"{path} has no pixel data; it is not an image of the series.")
        pixels = _pixels(path, ds)
        out.append((read_file_header(path, ds), pixels))
    return out


def _label(header: FileHeader, paths: Sequence[str]) -> str:
    uid = header.series_uid or "?"
    description = (header.description or "").strip()
    folder = os.path.dirname(paths[0]) or "."
    return f"{uid} ('{description}' in {folder})" if description else f"{uid} (in {folder})"


def read_series(paths: Sequence[str], jobs: Optional[int] = None,
                progress: Optional[ProgressCallback] = None) -> Tuple[PetHeader, List[np.ndarray]]:
    """Read the files of one PET series: its header and one stored-value plane per frame."""
    if not paths:
        raise DicomInputError("No files given for the PET series.")
    jobs = files.default_jobs() if jobs is None else max(1, jobs)
    if len(paths) < PARALLEL_MIN_FILES:
        jobs = 1
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        report(progress, 0.9 * done[0] / len(paths), f"Read {done[0]}/{len(paths)} files")

    records = files.parallel_map(_read_files, list(paths), jobs, _CHUNK, advance)
    modalities = {(h.modality or "").upper() for h, _a in records}
    if modalities != {"PT"}:
        raise DicomInputError(
            f"The files given are not one PET series (Modality {sorted(modalities)}); select the PET series."
        )
    uids = {h.series_uid for h, _a in records}
    if len(uids) > 1:
        raise DicomInputError(f"The files given belong to {len(uids)} series; select one with --series.")
    label = _label(records[0][0], paths)
    header = combine([h for h, _a in records], label)
    planes: List[np.ndarray] = []
    for _header, pixels in records:
        if pixels.ndim == 3:
            planes.extend(pixels[i] for i in range(pixels.shape[0]))
        else:
            planes.append(pixels)
    if len(planes) != len(header.frames):
        raise DicomInputError(f"Series {label}: {len(planes)} pixel planes for {len(header.frames)} frames.")
    return header, planes


def convert_to_suv(source: Union[SeriesRecord, Sequence[str]], suv_type: str = "bw",
                   overrides: Optional[Overrides] = None, jobs: Optional[int] = None,
                   progress: Optional[ProgressCallback] = None) -> SUVResult:
    """Convert a PET series to an SUV image.

    Parameters
    ----------
    source : SeriesRecord or sequence of str
        An indexed series, or the paths of its files.
    suv_type : {"bw", "lbm", "lbmjanma", "bsa", "ibw"}
    overrides : Overrides, optional
    jobs : int, optional
        Worker processes for reading files (default: all cores for large series).
    progress : callable, optional

    Returns
    -------
    SUVResult
        ``image`` is float32 SUV (g/mL; cm2/mL for BSA) in the series' LPS geometry.

    Raises
    ------
    SUVConversionError
        When the header does not allow a conversion without guessing.
    DicomInputError
        When the files are unreadable or not one regular volume.
    """
    paths = source.files if isinstance(source, SeriesRecord) else list(source)
    report(progress, 0.0, "Reading the PET series")
    header, planes = read_series(paths, jobs, progress)
    factors, provenance = compute_suv_factors(header, suv_type, overrides)
    provenance.tracer = identify(header.radiopharmaceutical).to_dict()
    geometry = volume.plane_geometry(header.frames, header.label)
    provenance.warnings.extend(geometry.warnings)
    slopes = np.asarray([f.slope for f in header.frames], dtype=float)
    report(progress, 0.95, "Scaling to SUV")
    array = volume.scaled_stack(planes, slopes * factors, geometry)
    image = volume.to_image(array, geometry)
    report(progress, 1.0, "Done")
    return SUVResult(image=image, provenance=provenance, header=header)
