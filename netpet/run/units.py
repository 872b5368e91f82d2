"""The work units of ``netpet run``: one PET session each, what they take, what they return, their checkpoints.

A unit is one session: the manifest rows of one PET series (as :func:`netpet.quant.pipeline.plan_manifest` groups
them: series, patient, session id) when the run has a manifest, else one PET series of the study's index to convert
to SUV and check. :func:`work` runs a unit in whatever process it lands in (this one, a local pool's worker, a Dask
worker) and returns plain data: table rows, error sentences, the segmentation files it wrote, its seconds and the
worker's host, pid and peak RSS. It never returns a volume and never writes the study table: the driver does.

A unit's *input fingerprint* (:func:`fingerprint`) is the SHA-256 of what its result depends on: its manifest rows
(cells, not row numbers), each input file's path, size and mtime_ns (the PET series' folder and the files of its
anatomical partner), the options and the netpet version. A checkpoint (:func:`write_checkpoint`, JSON, written to a
temporary file, flushed to disk and renamed over the old one) holds the fingerprint with the unit's status and
result, so that a rerun skips a unit whose inputs are unchanged and whose last result was complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from netpet import __version__
from netpet.errors import printable

log = logging.getLogger(__name__)

#: unit kinds: the manifest's clicks quantified into table rows, or (no manifest) a PET converted to SUV and checked
QUANTIFY, SUV = "quantify", "suv"
#: the columns of ``sessions.csv`` (a run without a manifest): one row per PET session of the study
SESSION_COLUMNS = ("patient_id", "session_id", "series_uid", "tracer", "modality", "status", "suv_warnings",
                   "problem")
CHECKPOINT_VERSION = 1


@dataclass
class Unit:
    """One session of the run (see the module docstring). ``payload`` is what :func:`work` needs, picklable."""

    key: str
    kind: str
    patient: str
    session: str
    series: str
    payload: Tuple[Any, ...]
    inputs: Dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    #: manifest row numbers of the unit (empty for a conversion unit)
    numbers: List[int] = field(default_factory=list)

    def label(self) -> str:
        """How a message names the unit: its patient and session."""
        return f"patient {printable(self.patient)} session {printable(self.session)}"

    def where(self) -> str:
        """Where its inputs are: the manifest rows, or the series."""
        return (f"manifest row{'s' if len(self.numbers) > 1 else ''} {', '.join(str(n) for n in self.numbers)}, "
                f"{printable(self.series)}" if self.numbers else f"series {printable(self.series)}")


def safe_key(*parts: str) -> str:
    """A file name for a unit's checkpoint: its readable parts (letters, digits, ``.``, ``_``, ``-``) and a hash of
    the exact parts, so that two units never share a name."""
    digest = hashlib.sha1("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(p for p in parts[1:] if p)).strip("._")[:80]
    return f"{readable or 'unit'}-{digest}"


def file_stats(paths: Sequence[str]) -> List[List[Any]]:
    """[path, size bytes, mtime_ns] of each file (sorted, duplicates once; a file gone: size and mtime None)."""
    out = []
    for path in sorted(set(paths)):
        try:
            st = os.stat(path)
            out.append([path, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([path, None, None])
    return out


def fingerprint(inputs: Dict[str, Any]) -> str:
    """SHA-256 of the unit's inputs as canonical JSON (sorted keys)."""
    text = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _peak_rss_mb() -> float:
    """This process's peak resident set size, MB (``resource.getrusage``: KiB on Linux, bytes on macOS)."""
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 1)
    except (ImportError, OSError):  # pragma: no cover - not POSIX
        return float("nan")


def worker_identity() -> Dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "peak_rss_mb": _peak_rss_mb()}


def work(kind: str, key: str, label: str, where: str, payload: Tuple[Any, ...]) -> Dict[str, Any]:
    """Run one unit here (a worker of the pool or of Dask, or the driver with ``--jobs 1``).

    Every exception of the unit, NetpetError or unexpected, becomes one error sentence naming the session
    (``label``) and its manifest rows or series (``where``); nothing is raised. SimpleITK runs on one thread
    inside a unit: the units are the parallelism (no nested pools, no threads competing for the same cores).

    Returns {"key", "rows", "errors", "warnings", "segmentations", "seconds" (wall), "cpu_seconds" (this process's
    processor time), "worker"}.
    """
    import SimpleITK as sitk

    start, cpu = time.perf_counter(), time.process_time()
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    rows: List[Dict[str, Any]] = []
    errors: List[str] = []
    warnings: List[str] = []
    segs: Dict[str, List[str]] = {}
    try:
        if kind == QUANTIFY:
            rows, errors, segs = _quantify(payload)
            errors = [f"{label}: {e}" for e in errors]  # each names its manifest rows already
        else:
            rows, warnings = _convert(payload)
            errors = [r["problem"] for r in rows if r.get("problem")]
            errors = [f"{label} ({where}): {e}" for e in errors]
    except Exception as exc:  # noqa: BLE001 - isolation: one unit's failure is its own, said in one sentence
        what = str(exc).strip() or type(exc).__name__
        from netpet.errors import NetpetError

        prefix = "" if isinstance(exc, NetpetError) else f"unexpected {type(exc).__name__}: "
        errors = [f"{label} ({where}): {prefix}{printable(what).splitlines()[0]}"]
        rows, segs = [], {}
        log.debug("unit %s failed", key, exc_info=True)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    return {"key": key, "rows": [_plain(r) for r in rows], "errors": errors, "warnings": warnings,
            "segmentations": segs, "seconds": round(time.perf_counter() - start, 3),
            "cpu_seconds": round(time.process_time() - cpu, 3), "worker": worker_identity()}


def _quantify(payload) -> Tuple[List[Dict[str, Any]], List[str], Dict[str, List[str]]]:
    from netpet.quant.pipeline import quantify_session

    rows, out_dir, options, suv_type, known, record = payload
    return quantify_session(rows, out_dir, options, suv_type, False, None, known, record)


def _convert(payload) -> Tuple[List[Dict[str, Any]], List[str]]:
    """A PET series converted to SUV (in this process, ``jobs=1``) and checked: one ``sessions.csv`` row."""
    from netpet import schema
    from netpet.dicom.convert import convert_to_suv
    from netpet.errors import NetpetError
    from netpet.quant.volume import SUVVolume

    record, suv_type = payload
    tracer, modality = schema.record_tracer(record), schema.record_modality(record)
    row = {"patient_id": record.patient_id, "session_id": schema.derive_session_id(record.study_uid, tracer, modality),
           "series_uid": record.series_uid, "tracer": tracer, "modality": modality, "status": "converted",
           "suv_warnings": "", "problem": ""}
    try:
        result = convert_to_suv(record, suv_type, None, jobs=1)
        SUVVolume.from_image(result.image, f"PET series {record.series_uid}")  # refuses a volume without usable SUV
        warnings = list(result.provenance.warnings or [])
        row["suv_warnings"] = " | ".join(warnings)
    except NetpetError as exc:
        row.update(status="refused", problem=printable(str(exc)))
        warnings = []
    return [row], warnings


def _plain(row: Dict[str, Any]) -> Dict[str, Any]:
    """A row with numpy scalars as Python numbers (for JSON checkpoints and Dask's messages)."""
    out = {}
    for k, v in row.items():
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            try:
                v = v.item()
            except (ValueError, AttributeError):
                pass
        out[k] = v
    return out


# -- checkpoints ---------------------------------------------------------------------------------------------------

def checkpoint_path(folder: str, key: str) -> str:
    return os.path.join(folder, f"{key}.json")


def read_checkpoint(folder: str, key: str) -> Optional[Dict[str, Any]]:
    """The checkpoint of a unit, or None (absent, unreadable, cut short, another format: the unit is then run)."""
    path = checkpoint_path(folder, key)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("checkpoint_version") != CHECKPOINT_VERSION:
        return None
    return data


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file beside it, flushed to disk (fsync), renamed over it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise
    try:  # the rename itself is durable once the folder is flushed
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError:  # pragma: no cover - a file system without folder fsync
        pass


def write_checkpoint(folder: str, unit: Unit, status: str, result: Dict[str, Any]) -> str:
    """The unit's checkpoint (see the module docstring), written atomically; returns its path."""
    data = {"checkpoint_version": CHECKPOINT_VERSION, "key": unit.key, "kind": unit.kind, "patient": unit.patient,
            "session": unit.session, "series": unit.series, "fingerprint": unit.fingerprint, "inputs": unit.inputs,
            "status": status, "rows": result.get("rows", []), "errors": result.get("errors", []),
            "warnings": result.get("warnings", []), "segmentations": result.get("segmentations", {}),
            "seconds": result.get("seconds"), "worker": result.get("worker"), "netpet_version": __version__}
    path = checkpoint_path(folder, unit.key)
    write_atomic(path, json.dumps(data, indent=1, default=_json_default, allow_nan=True))
    return path

