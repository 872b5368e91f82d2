"""Finding and reading DICOM files: headers only, or with pixel data.

Files are recognised by content, not by name: the ``DICM`` preamble marker, or (for files
written without a preamble) a first element in group 0002 or 0008. DICOMDIR files are
directories of the tree, not images, and are skipped. Anything else is counted as skipped.
"""

from __future__ import annotations

import os
import struct
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, TypeVar

import multiprocessing

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

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
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) >= 8:
        group, _element = struct.unpack("<HH", head[:4])
        return group in (0x0002, 0x0008)
    return False


def read_header(path: str, specific_tags: Optional[Sequence] = None) -> Optional[Dataset]:
    """Header of a DICOM file without its pixel data; None for non-DICOM and DICOMDIR files."""
    if not looks_like_dicom(path):
        return None
    try:
        with warnings.catch_warnings():  # pydicom's remarks on odd files are noise for an index
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=specific_tags)
    except (InvalidDicomError, OSError, ValueError, EOFError, struct.error, TypeError, KeyError, IndexError,
            AttributeError, NotImplementedError):
        return None
    meta = getattr(ds, "file_meta", None)
    sop_class = str(getattr(meta, "MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", ""))
    if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
        return None
    if "SOPInstanceUID" not in ds and "SeriesInstanceUID" not in ds:
        return None
    return ds


def read_full(path: str) -> Dataset:
    """The whole DICOM file, pixel data included (raises on unreadable files)."""
    return pydicom.dcmread(path, force=True)


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
