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
import re
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

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

#: Series with at least this many files have their headers read by worker processes (forked: no imports paid
#: again; a header costs 0.3-1 ms, starting two workers about 20 ms).
PARALLEL_MIN_FILES = 96
_CHUNK = 48


@dataclass
class SUVResult:
    """An SUV image (float32, LPS geometry of the series) and how it was computed."""

    image: sitk.Image
    provenance: Provenance
    header: PetHeader


_NATIVE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")  # implicit / explicit VR little endian


def _pixels(path: str, ds: Dataset, layout: files.PixelLayout) -> np.ndarray:
    """Stored pixel values of a file: (rows, cols), or (frames, rows, cols) for multi-frame.

    ``layout`` is the file's checked Image Pixel module (:func:`files.pixel_layout`): native
    data have exactly the header's size, so the fast path needs no further check.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None)
    bits = layout.bits_allocated
    if (str(syntax) in _NATIVE and layout.element.startswith("PixelData") and layout.bits_stored == bits):
        # fast path: native little-endian, every allocated bit stored (no sign extension needed)
        dtype = np.dtype(("<i" if layout.signed else "<u") + str(bits // 8))
        count = layout.rows * layout.columns * layout.frames
        values = np.frombuffer(ds.PixelData, dtype=dtype, count=count)
        return values.reshape(layout.shape)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for missing decoders
        if syntax is None or not getattr(syntax, "is_compressed", False):
            raise DicomInputError(f"Cannot read the PixelData (7FE0,0010) of {path} ({exc}); {files.REEXPORT}.") from exc
        _refuse_size_mismatch([str(exc)], layout, path, shorter=True)
        values = _pixels_with_gdcm(path, ds, syntax)
    else:
        _refuse_size_mismatch([str(w.message) for w in caught], layout, path, shorter=False)
    if layout.multi_frame and values.ndim == 2:
        values = values[np.newaxis]
    files.check_decoded(values, layout, path)
    return values


#: pydicom's words when a decoded RLE segment is not Rows x Columns bytes: "(440 vs. 220 bytes"; it
#: raises when the segment is shorter and only warns (keeping the first part) when it is longer.
_RLE_SIZE = re.compile(r"(\d+) vs\. (\d+) bytes")


def _refuse_size_mismatch(messages: Sequence[str], layout: files.PixelLayout, path: str, shorter: bool) -> None:
    """Refuse compressed data that decode to another size than the header's Rows x Columns.

    One byte more is the even-length padding of an odd-sized RLE segment (PS3.5 Annex G), not an
    excess; anything else is a wrong matrix size, and truncated data would be a garbled image.
    """
    for message in messages:
        match = _RLE_SIZE.search(message)
        if not match:
            continue
        got, expected = int(match.group(1)), int(match.group(2))
        if shorter or got > expected + 1:
            raise DicomInputError(
                f"{path} has compressed {layout.element} that decodes to {got} bytes per RLE segment where Rows "
                f"(0028,0010) {layout.rows} x Columns (0028,0011) {layout.columns} give {expected}, so header and "
                f"data disagree; {files.REEXPORT}."
            )


def _pixels_with_gdcm(path: str, ds: Dataset, syntax) -> np.ndarray:
    """Decode compressed pixel data with SimpleITK/GDCM, undoing its rescale."""
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        raise DicomInputError(
            f"{path} is compressed ({syntax.name}) and MONOCHROME1: the available decoder (GDCM) would "
            "invert its values; install pylibjpeg or decompress the file (e.g. with gdcmconv --raw)."
        )
    try:
        image = sitk.ReadImage(path)
    except RuntimeError as exc:
        raise DicomInputError(f"Cannot decode the compressed pixel data of {path} ({syntax.name}): "
                              f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}; {files.REEXPORT}.") from exc
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    stored = (values - intercept) / slope
    return stored[0] if stored.shape[0] == 1 and "NumberOfFrames" not in ds else stored


#: Pixel data larger than this is left on disk while the header is parsed (read from its offset afterwards).
DEFER_BYTES = 64 * 1024


@dataclass
class PreparedFile:
    """One PET file read once: its PET header, its checked pixel layout, and where its native pixel values lie.

    Made while the folder is indexed (:func:`netpet.dicom.index.index_tree` with ``pet_headers=True``), so
    that a conversion reads each header once and then only the pixel bytes. Picklable.
    """

    path: str
    header: FileHeader
    layout: files.PixelLayout
    offset: Optional[int]  #: byte offset of native little-endian values; None: decoded through pydicom
    dtype: Optional[str]


def read_deferred(path: str) -> Dataset:
    """A whole DICOM file with large pixel data left on disk (read on access, or from its offset)."""
    if not files.looks_like_dicom(path):
        raise DicomInputError(f"Cannot read {path}: it is not a DICOM file; remove it from the series.")
    try:
        return files.read_full(path, defer_size=DEFER_BYTES)
    except Exception as exc:
        raise DicomInputError(f"Cannot read {path} as DICOM: {exc}") from exc


def prepare_file(path: str, ds: Dataset) -> PreparedFile:
    """Read the PET header and pixel layout of one file (its pixel values are not read)."""
    layout = files.pixel_layout(ds, path, "PT")
    header = read_file_header(path, ds)
    note = _pet_bits_note(layout)
    if note and note not in header.notes:
        header.notes.append(note)
    offset, dtype = _native_offset(ds, layout)
    return PreparedFile(path, header, layout, offset, dtype)


def _native_offset(ds: Dataset, layout: files.PixelLayout) -> Tuple[Optional[int], Optional[str]]:
    """(offset, dtype) of pixel values stored natively (little endian, every allocated bit stored), else (None, None)."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", None))
    if syntax not in _NATIVE or not layout.element.startswith("PixelData") or layout.bits_stored != layout.bits_allocated:
        return None, None
    try:
        elem = ds.get_item(0x7FE00010, keep_deferred=True)
    except TypeError:  # pragma: no cover - pydicom 2 (Slicer 5.10)
        elem = ds._dict.get(0x7FE00010)  # noqa: SLF001 - the raw element, not read when deferred
    offset = getattr(elem, "value_tell", None)
    if not isinstance(offset, int) or offset <= 0:
        return None, None
    return offset, ("<i" if layout.signed else "<u") + str(layout.bits_allocated // 8)


def _prepared_pixels(prepared: PreparedFile) -> np.ndarray:
    """The stored pixel values of a prepared file: read from their offset, or decoded through pydicom."""
    layout = prepared.layout
    if prepared.offset is not None:
        count = layout.rows * layout.columns * layout.frames
        try:
            values = np.fromfile(prepared.path, dtype=np.dtype(prepared.dtype), count=count, offset=prepared.offset)
        except OSError as exc:
            raise DicomInputError(f"Cannot read the PixelData (7FE0,0010) of {prepared.path} ({exc}); "
                                  f"{files.REEXPORT}.") from exc
        if values.size != count:  # the file changed since its header was read
            raise DicomInputError(f"{prepared.path} ends {count - values.size} pixel values short of its header's Rows x "
                                  f"Columns; it changed while being read or is truncated: {files.REEXPORT}.")
        return values.reshape(layout.shape)
    return _pixels(prepared.path, read_deferred(prepared.path), layout)


def _prepare_files(paths: Sequence[str]) -> List[Tuple[PreparedFile, Optional[np.ndarray]]]:
    """Read the headers of files (in a worker process for large series): each file's reading, and its decoded
    pixel values where they are compressed (decoding is work; native values are only moved, by the caller)."""
    out = []
    for path in paths:
        ds = read_deferred(path)
        prepared = prepare_file(path, ds)
        out.append((prepared, None if prepared.offset is not None else _pixels(path, ds, prepared.layout)))
    return out


def _pet_bits_note(layout: files.PixelLayout) -> Optional[str]:
    """A provenance warning for PET pixel data narrower than the PET Image module's 16 bits.

    PS3.3 C.8.9.4 (PET Image module) has BitsAllocated 16 (32 in Enhanced PET) and BitsStored equal
    to it. Fewer bits are read exactly as stored (the header is consistent; a refusal would only
    lose a readable image), but they quantise each plane more coarsely: 8 bits give steps of 1/255
    of the plane's maximum, about 0.4 % of SUVmax and far more of a background value.
    """
    if not layout.element.startswith("PixelData") or (layout.bits_allocated >= 16
                                                      and layout.bits_stored == layout.bits_allocated):
        return None
    return (f"PET pixel data stored in {layout.bits_stored} of {layout.bits_allocated} bits (BitsStored (0028,0101) / "
            "BitsAllocated (0028,0100); PET images have 16, PS3.3 C.8.9.4): values are read as stored but quantised "
            f"to steps of 1/{2 ** (layout.bits_stored - int(layout.signed)) - 1} of each plane's maximum")


def _label(header: FileHeader, paths: Sequence[str]) -> str:
    uid = header.series_uid or "?"
    description = (header.description or "").strip()
    folder = os.path.dirname(paths[0]) or "."
    return f"{uid} ('{description}' in {folder})" if description else f"{uid} (in {folder})"


def read_series(paths: Sequence[str], jobs: Optional[int] = None,
                progress: Optional[ProgressCallback] = None,
                prepared: Optional[Dict[str, PreparedFile]] = None) -> Tuple[PetHeader, List[np.ndarray]]:
    """Read the files of one PET series: its header and one stored-value plane per frame.

    ``prepared`` holds files whose header was read already (while indexing): only their pixel values
    are read; the others are read whole.
    """
    if not paths:
        raise DicomInputError("No files given for the PET series.")
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        report(progress, 0.9 * done[0] / len(paths), f"Read {done[0]}/{len(paths)} files")

    if prepared and all(path in prepared for path in paths):
        records = []
        for path in paths:  # the headers are read: what is left is moving pixel bytes, no work for processes
            records.append((prepared[path].header, _prepared_pixels(prepared[path])))
            advance(1)
    else:
        jobs = files.default_jobs() if jobs is None else max(1, jobs)
        if len(paths) < PARALLEL_MIN_FILES:
            jobs = 1
        # workers parse headers (CPU); the pixel bytes are read here, never sent through a pipe
        readings = files.parallel_map(_prepare_files, list(paths), jobs, _CHUNK, advance)
        records = [(reading.header, pixels if pixels is not None else _prepared_pixels(reading))
                   for reading, pixels in readings]
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
        When the files are unreadable, a file's pixel header disagrees with its data
        (:func:`netpet.dicom.files.pixel_layout`), or the planes are not one regular volume
        (:func:`netpet.dicom.volume.plane_geometry`).
    """
    paths = source.files if isinstance(source, SeriesRecord) else list(source)
    prepared = source.prepared if isinstance(source, SeriesRecord) else None
    report(progress, 0.0, "Reading the PET series")
    header, planes = read_series(paths, jobs, progress, prepared)
    # geometry first: an image that cannot be placed in patient space is refused whatever its SUV header says
    geometry = volume.plane_geometry(header.frames, header.label)
    factors, provenance = compute_suv_factors(header, suv_type, overrides)
    provenance.tracer = identify(header.radiopharmaceutical, header.model, header.description).to_dict()
    provenance.warnings.extend(geometry.warnings)
    slopes = np.asarray([f.slope for f in header.frames], dtype=float)
    report(progress, 0.95, "Scaling to SUV")
    array = volume.scaled_stack(planes, slopes * factors, geometry)
    image = volume.to_image(array, geometry)
    report(progress, 1.0, "Done")
    return SUVResult(image=image, provenance=provenance, header=header)
