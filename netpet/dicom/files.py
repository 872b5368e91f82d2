"""Finding and reading DICOM files: headers only, or with pixel data.

Files are recognised by content, not by name: the ``DICM`` preamble marker, or (for files
written without a preamble) a first element in group 0002 or 0008. DICOMDIR files are
directories of the tree, not images, and are skipped. Anything else is counted as skipped.

:func:`pixel_layout` checks an image's Image Pixel module against its pixel data from the header
alone (the length of Pixel Data is known without reading it), so that a file whose header and
data disagree is refused with the tag at fault instead of being read sheared or garbled.
"""

from __future__ import annotations

import os
import struct
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

import multiprocessing

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from netpet.dicom import tags
from netpet.errors import DicomInputError

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

T = TypeVar("T")


def walk_files(root: str) -> List[str]:
    """Every regular file under ``root`` (or ``root`` itself), sorted, hidden folders included."""
    if os.path.isfile(root):
        return [root]
    found: List[str] = []
    for folder, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                found.append(path)
    found.sort()
    return found


def looks_like_dicom(path: str) -> bool:
    """True when the file starts like DICOM: ``DICM`` at byte 128, or a raw group 0002/0008 element."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return _starts_like_dicom(head)


def _starts_like_dicom(head: bytes) -> bool:
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) >= 8:
        group, _element = struct.unpack("<HH", head[:4])
        return group in (0x0002, 0x0008)
    return False


def read_header(path: str, specific_tags: Optional[Sequence] = None,
                defer_size: Optional[int] = None) -> Optional[Dataset]:
    """Header of a DICOM file without its pixel data; None for non-DICOM and DICOMDIR files.

    With ``defer_size`` the file is read whole, elements larger than that (the pixel data) left on
    disk until used: the pixel data element's length and offset are then known.
    """
    try:
        handle = open(path, "rb")
    except OSError:
        return None
    try:
        with handle, warnings.catch_warnings():  # pydicom's remarks on odd files are noise for an index
            warnings.simplefilter("ignore")
            if not _starts_like_dicom(handle.read(132)):
                return None
            handle.seek(0)
            if defer_size is not None:  # deferred values are read again by the file's name
                ds = pydicom.dcmread(path, force=True, defer_size=defer_size)
            else:  # the file opened once for the check and the header
                ds = pydicom.dcmread(handle, stop_before_pixels=True, force=True, specific_tags=specific_tags)
    except (InvalidDicomError, OSError, ValueError, EOFError, struct.error, TypeError, KeyError, IndexError,
            AttributeError, NotImplementedError):
        return None
    meta = getattr(ds, "file_meta", None)
    sop_class = (tags.raw_text(meta, 0x00020002) if meta is not None else None) or tags.raw_text(ds, 0x00080016) or ""
    if sop_class.strip("\x00 ") == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
        return None
    if "SOPInstanceUID" not in ds and "SeriesInstanceUID" not in ds:
        return None
    return ds


def read_full(path: str, defer_size: Optional[int] = None) -> Dataset:
    """The whole DICOM file, pixel data included (raises on unreadable files).

    Elements larger than ``defer_size`` bytes (the pixel data) are read when first used.
    """
    return pydicom.dcmread(path, force=True, defer_size=defer_size)


# -- Image Pixel module ------------------------------------------------------------------------------

#: What to do when a file's pixel header and data disagree: no reading can be trusted then.
REEXPORT = "re-export the series from the scanner or PACS"
_UNDEFINED_LENGTH = 0xFFFFFFFF
#: Pixel data elements and the Bits Allocated each allows (PS3.3 C.7.6.3, Table C.7-11c).
_PIXEL_ELEMENTS = (
    (0x7FE00010, "PixelData (7FE0,0010)", (8, 16, 32)),
    (0x7FE00008, "FloatPixelData (7FE0,0008)", (32,)),
    (0x7FE00009, "DoubleFloatPixelData (7FE0,0009)", (64,)),
)


@dataclass(frozen=True)
class PixelLayout:
    """The checked Image Pixel module of one file: how many values its pixel data hold, and how."""

    rows: int
    columns: int
    frames: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    element: str  #: the pixel data element, e.g. ``"PixelData (7FE0,0010)"``
    encapsulated: bool  #: compressed (encapsulated) pixel data: decoded size checked after decoding
    multi_frame: bool  #: NumberOfFrames (0028,0008) present

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of the decoded values: (rows, columns), or (frames, rows, columns) for multi-frame."""
        return (self.frames, self.rows, self.columns) if self.multi_frame else (self.rows, self.columns)


def _pixel_element(ds: Dataset) -> Tuple[Optional[int], Optional[str], Tuple[int, ...], Optional[int]]:
    """(tag, name, allowed Bits Allocated, length in bytes) of the file's pixel data element.

    The length is read from the element header, without reading (or loading a deferred) value:
    pydicom 3 keeps a deferred element raw with ``keep_deferred``; pydicom 2 stores it raw in the
    dataset's dict. ``None`` length: undefined (encapsulated) or unknown.
    """
    for tag, name, allowed in _PIXEL_ELEMENTS:
        if tag not in ds:
            continue
        try:
            elem = ds.get_item(tag, keep_deferred=True)
        except TypeError:  # pragma: no cover - pydicom 2 (Slicer 5.10)
            elem = ds._dict.get(tag)  # noqa: SLF001 - the raw element, not read when deferred
        value = getattr(elem, "value", None)
        length = getattr(elem, "length", None)  # RawDataElement
        if length is None:
            if getattr(elem, "is_undefined_length", False):
                length = _UNDEFINED_LENGTH
            elif isinstance(value, (bytes, bytearray)):
                length = len(value)
        if value is not None and isinstance(value, (bytes, bytearray)) and length != _UNDEFINED_LENGTH:
            length = len(value)
        return tag, name, allowed, (None if length == _UNDEFINED_LENGTH else length)
    return None, None, (), None


def _unsigned(ds: Dataset, tag: int, little: bool = True) -> Tuple[Optional[int], str]:
    """An unsigned short of the Image Pixel module: (value or None, the value as found, for messages).

    Read from the element's undecoded two bytes when pydicom has not converted it yet (about ten
    times faster than pydicom's conversion, which matters at 400 files a series); otherwise from
    the converted value.
    """
    try:
        elem = ds.get_item(tag)
    except Exception:  # noqa: BLE001 - an element pydicom cannot even hold is reported as unreadable
        return None, "unreadable"
    if elem is None:
        return None, "missing"
    value = elem.value
    if isinstance(value, (bytes, bytearray)):  # raw (or VR UN): two bytes
        if len(value) == 2:
            number = int.from_bytes(bytes(value), "little" if little else "big")
            return number, str(number)
        if len(value) == 0:
            return None, "empty"
        try:
            value = ds[tag].value  # pydicom's own reading of an odd length
        except Exception:  # noqa: BLE001
            return None, repr(bytes(value))
    if value is None or value == "":
        return None, "empty"
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return None, "\\".join(str(v) for v in value) or "empty"
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None, repr(value)
    return (number, str(number)) if number == value else (None, repr(value))


def pixel_layout(ds: Dataset, path: str, modality: str = "") -> PixelLayout:
    """Check a file's Image Pixel module against its pixel data; return how to read the values.

    Works on a header read with deferred pixel data as well as on a whole file: the checks use
    the header values and the length of the pixel data element, never the pixel values.

    Parameters
    ----------
    ds : pydicom Dataset
    path : str
        Names the file in errors.
    modality : str
        Named in the Samples per Pixel message (``"PT"``, ``"CT"``, ``"MR"``).

    Returns
    -------
    PixelLayout

    Raises
    ------
    DicomInputError
        One sentence naming the file, the tag, its value and what to do, when (each rule from
        PS3.3 C.7.6.3 Image Pixel module, Table C.7-11a/b, and PS3.5 8.1.1 / 8.2 native encoding):

        - there is no pixel data element (PS3.3 C.7.6.3: Type 1C, required in every image IOD);
        - Rows (0028,0010) or Columns (0028,0011) is missing or 0, or NumberOfFrames (0028,0008) < 1;
        - SamplesPerPixel (0028,0002) is not 1: PET (C.8.9.4), CT (C.8.2.1) and MR (C.8.3.1) images
          are grey-scale, one sample per pixel; more samples are a colour (screen-capture) image
          (absent: 1 is the only value allowed, so nothing is guessed);
        - PhotometricInterpretation (0028,0004) is not MONOCHROME1/2 (colour or palette values);
        - BitsAllocated (0028,0100) is not 8, 16 or 32 for integer Pixel Data (1-bit and 12-bit packed
          words are not image data a scanner writes for PET, CT or MR);
        - BitsStored (0028,0101) is 0 or more than BitsAllocated;
        - HighBit (0028,0102) is not BitsStored - 1 (PS3.5 8.1.1, since 2014c): any other high bit puts
          the stored bits elsewhere in the word, and every reader (pydicom, GDCM) would take the low
          bits, so the values would be silently shifted (absent: BitsStored - 1, the only value allowed);
        - PixelRepresentation (0028,0103) is not 0 (unsigned) or 1 (two's complement), or is absent:
          the sign of every value would be a guess;
        - BitsAllocated or BitsStored is absent (no default: 12 of 16 bits is common in CT).
        Absent PhotometricInterpretation (0028,0004) is read as MONOCHROME2.
        - native pixel data are longer or shorter than Rows x Columns x frames x samples x
          BitsAllocated / 8 bytes (padded to even length, PS3.5 7.1.1): header and data disagree
          (BitsAllocated 8 on 16-bit data, a wrong matrix size), and any reading is sheared or garbled.
    """
    tag, element, allowed_bits, length = _pixel_element(ds)
    if tag is None:
        raise DicomInputError(f"{path} has no PixelData (7FE0,0010), so it holds no image; remove it from the series "
                              f"or {REEXPORT}.")
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None)
    little = str(syntax) != "1.2.840.10008.1.2.2"  # explicit VR big endian (retired) is the only other
    rows, rows_text = _unsigned(ds, 0x00280010, little)
    columns, columns_text = _unsigned(ds, 0x00280011, little)
    for keyword, tag_text, value, text in (("Rows", "(0028,0010)", rows, rows_text),
                                           ("Columns", "(0028,0011)", columns, columns_text)):
        if not value:
            raise DicomInputError(f"{path} has {keyword} {tag_text} {text}, not a positive number of pixels, so the "
                                  f"image has no size; {REEXPORT}.")
    multi = 0x00280008 in ds
    frames = 1
    if multi:
        raw = tags.raw_text(ds, 0x00280008)
        try:
            frames = int(float(raw)) if raw else 0
        except (TypeError, ValueError):
            frames = 0
        if frames < 1:
            raise DicomInputError(f"{path} has NumberOfFrames (0028,0008) {raw!r}, not a positive number of frames; "
                                  f"{REEXPORT}.")
    samples, samples_text = _unsigned(ds, 0x00280002, little)
    if samples != 1 and 0x00280002 in ds:  # absent: 1, the only value these IODs allow (and the
        # length check below still refuses data of several samples)
        name = {"PT": "PET", "CT": "CT", "MR": "MR"}.get(modality.upper(), "")
        what = f"a {name} image" if name else "a PET, CT or MR image"
        raise DicomInputError(f"{path} has SamplesPerPixel (0028,0002) {samples_text}, but {what} has one grey-scale "
                              "sample per pixel (PS3.3 C.8.9.4, C.8.2.1, C.8.3.1), so it is a colour or screen-capture "
                              "image, not measurements; select the original image series.")
    photometric = (tags.raw_text(ds, 0x00280004) or "").strip().upper()
    if photometric and photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomInputError(f"{path} has PhotometricInterpretation (0028,0004) '{photometric}', not MONOCHROME2 or "
                              "MONOCHROME1, so its values are colours, not measurements; select the original image "
                              "series.")
    bits, bits_text = _unsigned(ds, 0x00280100, little)
    if bits not in allowed_bits:
        allowed = " or ".join(str(b) for b in allowed_bits)
        raise DicomInputError(f"{path} has BitsAllocated (0028,0100) {bits_text}, where {element} holds {allowed}-bit "
                              f"values (PS3.3 C.7.6.3), so its values cannot be read; {REEXPORT}.")
    stored, stored_text = _unsigned(ds, 0x00280101, little)
    if element.startswith("PixelData"):
        if stored is None or not 1 <= stored <= bits:
            raise DicomInputError(f"{path} has BitsStored (0028,0101) {stored_text} with BitsAllocated (0028,0100) "
                                  f"{bits}, where 1 to {bits} bits can be stored (PS3.5 8.1.1), so its values cannot be "
                                  f"read; {REEXPORT}.")
        high, high_text = _unsigned(ds, 0x00280102, little)
        if high != stored - 1 and 0x00280102 in ds:  # absent: BitsStored - 1, the only value allowed
            raise DicomInputError(f"{path} has HighBit (0028,0102) {high_text} with BitsStored (0028,0101) {stored}, "
                                  f"where the high bit must be {stored - 1} (PS3.5 8.1.1), so every value would be read "
                                  f"shifted; {REEXPORT}.")
    else:
        stored = bits  # float pixel data: every bit is the value (no Bits Stored in the Float Pixel module)
    representation, representation_text = _unsigned(ds, 0x00280103, little)
    if element.startswith("PixelData") and representation not in (0, 1):
        raise DicomInputError(f"{path} has PixelRepresentation (0028,0103) {representation_text}, neither 0 (unsigned) "
                              "nor 1 (signed), so the sign of every value would be a guess; correct the header or "
                              f"{REEXPORT}.")
    encapsulated = bool(getattr(syntax, "is_compressed", False)) or length is None
    layout = PixelLayout(rows=rows, columns=columns, frames=frames, bits_allocated=bits, bits_stored=stored,
                         signed=representation == 1, element=element, encapsulated=encapsulated, multi_frame=multi)
    if not encapsulated:
        pixels = rows * columns * frames
        expected = pixels * bits // 8
        if length not in (expected, expected + (expected % 2)):
            sizes = f"Rows (0028,0010) {rows} x Columns (0028,0011) {columns}"
            if multi:
                sizes += f" x NumberOfFrames (0028,0008) {frames}"
            hint = ""
            if length and length % pixels == 0 and length != expected:
                hint = f" (the data hold {length // pixels * 8} bits per pixel)"
            raise DicomInputError(f"{path} has {length} bytes of {element} where {sizes} at BitsAllocated (0028,0100) "
                                  f"{bits} need {expected}{hint}, so the image would be read sheared or garbled; "
                                  f"{REEXPORT}.")
    return layout


def check_decoded(values: Any, layout: PixelLayout, path: str) -> None:
    """Refuse decoded (compressed) pixel values whose shape is not the header's Rows x Columns (x frames)."""
    shape = tuple(getattr(values, "shape", ()))
    if shape != layout.shape and not (not layout.multi_frame and shape == (1,) + layout.shape):
        expected = " x ".join(str(n) for n in layout.shape)
        got = " x ".join(str(n) for n in shape) or "nothing"
        raise DicomInputError(f"{path} has compressed {layout.element} that decodes to {got} values where Rows "
                              f"(0028,0010) and Columns (0028,0011) give {expected}, so header and data disagree; "
                              f"{REEXPORT}.")


def _worker_init() -> None:  # pragma: no cover - runs in child processes
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def process_context():
    """The multiprocessing context for worker pools: fork where available (fast start)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def parallel_map(function: Callable[[Sequence[str]], List[T]], items: Sequence[str], jobs: int,
                 chunk: int, progress: Optional[Callable[[int], None]] = None) -> List[T]:
    """Apply ``function`` to chunks of ``items`` in ``jobs`` processes, keeping order.

    ``function`` takes a list of items and returns a list of results (one per item). With
    ``jobs`` 1 or few items, runs in this process.
    """
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    results: List[T] = []
    if jobs <= 1 or len(chunks) <= 1:
        for part in chunks:
            results.extend(function(part))
            if progress:
                progress(len(part))
        return results
    with ProcessPoolExecutor(max_workers=jobs, mp_context=process_context(), initializer=_worker_init) as pool:
        for part, result in zip(chunks, pool.map(function, chunks)):
            results.extend(result)
            if progress:
                progress(len(part))
    return results


def default_jobs() -> int:
    """Number of worker processes to use: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def iter_existing(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        if os.path.exists(path):
            yield path
