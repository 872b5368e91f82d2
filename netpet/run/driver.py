"""The driver of ``netpet run``: a whole study from its DICOM tree to the study table, statistics and report.

:func:`run_study` indexes the study, makes one work unit per session (:mod:`netpet.run.units`), skips the units
whose checkpoint says they are done with the same inputs, runs the others on a local process pool, in this process
(``jobs=1``) or on a Dask distributed scheduler, and collects each result as it comes: the rows are upserted into
the study table (the driver is the only writer, through :class:`netpet.quant.table.StudyTable`, which keeps the
audit trail), *then* the unit's checkpoint is written. A crash at any moment therefore loses nothing: a unit whose
rows reached the table without its checkpoint is recomputed and upserted again (upserts by key are idempotent).
Then the statistics and the HTML report (as ``netpet stats`` makes them) when a reference standard is given or found.

Everything the run does is appended to ``OUT/run-log.jsonl``, one JSON object per line: ``start``, one ``unit``
event per session, ``manifest`` (rows left out before any work), ``stale`` (sessions of the table that the manifest
no longer names: reported, never deleted), ``stats`` and ``end``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import socket
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from netpet import __version__
from netpet.errors import DicomInputError, NetpetError, printable
from netpet.progress import Cancelled, ProgressCallback, report
from netpet.run import units as U

log = logging.getLogger(__name__)

#: the exit code of a run where a unit failed or a row was skipped: the command line's EXIT_PARTIAL
EXIT_PARTIAL = 6
TABLE_NAME = "study-table.csv"
SESSIONS_NAME = "sessions.csv"
LOG_NAME = "run-log.jsonl"
#: Test hook: with NETPET_RUN_CRASH_AFTER=k the driver ends its process abruptly (os._exit) right after the k-th
#: upsert of a run, before that unit's checkpoint: the worst moment for a crash (the tests' resume check).
CRASH_ENV = "NETPET_RUN_CRASH_AFTER"
#: how long to wait for a Dask scheduler before saying it cannot be reached (seconds)
SCHEDULER_TIMEOUT_S = 10


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


class RunLog:
    """``run-log.jsonl``: appended, one JSON object per line, flushed after each event."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle = open(path, "a", encoding="utf-8")

    def event(self, name: str, /, **fields: Any) -> Dict[str, Any]:
        record = {"event": name, "time": _now(), **fields}
        self.handle.write(json.dumps(record, default=U._json_default) + "\n")
        self.handle.flush()
        return record

    def close(self) -> None:
        self.handle.close()


def default_input(study: str, given: Optional[str], name: str) -> Optional[str]:
    """A file given on the command line, else STUDY/``name`` when it exists, else None."""
    if given:
        return given
    path = os.path.join(study, name)
    return path if os.path.isfile(path) else None


def _check_inputs(study: str, manifest: Optional[str], reference: Optional[str]) -> None:
    if not os.path.exists(study):
        raise DicomInputError(f"The study folder {printable(study)} does not exist; give the folder that holds the "
                              "study's DICOM tree.")
    if not os.path.isdir(study):
        raise DicomInputError(f"The study {printable(study)} is a file; give the folder that holds its DICOM tree.")
    for what, path in (("The manifest", manifest), ("The reference standard", reference)):
        if path and not os.path.isfile(path):
            state = "is a folder; give the CSV file" if os.path.isdir(path) else "does not exist"
            raise DicomInputError(f"{what} {printable(path)} {state}.")


def connect(address: str):
    """A ``dask.distributed`` Client to the scheduler at ``address``; one sentence when it cannot be reached.

    Raises
    ------
    NetpetError
        distributed is not installed, or no scheduler answers at the address within SCHEDULER_TIMEOUT_S.
    """
    try:
        from distributed import Client
    except ImportError:
        raise NetpetError("--scheduler needs the Python package distributed (pip install 'netpet[dask]'); install "
                          "it, or leave out --scheduler to run on this machine.") from None
    try:
        return Client(address, timeout=f"{SCHEDULER_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = printable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]
        raise NetpetError(f"The Dask scheduler {printable(address)} cannot be reached ({reason}); start it (dask "
                          "scheduler, or a LocalCluster) and give its address, e.g. tcp://host:8786, or leave out "
                          "--scheduler to run on this machine.") from None


# -- units -----------------------------------------------------------------------------------------------------

def _partner_files(index) -> Tuple[Dict[str, List[str]], Dict[str, List[str]]]:
    """{folder: files of the PET series there and of their partners}, {PET file: the same} from the study index."""
    by_uid = {(s.series_uid, s.patient_id): s for s in index.all_series()}
    by_folder: Dict[str, List[str]] = {}
    by_file: Dict[str, List[str]] = {}
    for pet in index.pet_series():
        files = list(pet.files)
        partner = by_uid.get((pet.partner_series_uid, pet.patient_id)) if pet.partner_series_uid else None
        if partner is not None:
            files += partner.files
        for folder in pet.folders:
            by_folder.setdefault(os.path.abspath(folder), []).extend(files)
        for path in pet.files:
            by_file[os.path.abspath(path)] = files
    return by_folder, by_file


def _indexed_record(series: str, group, pets_by_folder: Dict[str, list]):
    """The PET record of the study index that ``netpet quantify`` would find for a session's rows, when that is
    certain: the series path is a folder holding exactly one PET series (every file of it under the folder, with its
    anatomical partner found), and the rows' series_uid and dicom_patient_id (if any) name that one. Else None:
    the worker indexes the path itself, exactly as ``netpet quantify`` does (and reports what it finds)."""
    from netpet.errors import NetpetError
    from netpet.quant.pipeline import _session_choices

    if not os.path.isdir(series):
        return None
    folder = os.path.abspath(series)
    found = pets_by_folder.get(folder, [])
    if len(found) != 1:
        return None
    record = found[0]
    if record.hybrid is None or any(not os.path.abspath(f).startswith(folder + os.sep) for f in record.files):
        return None
    try:
        series_uid, dicom_patient, _ = _session_choices(group)
    except NetpetError:
        return None
    if (series_uid and series_uid != record.series_uid) or (dicom_patient and dicom_patient != record.patient_id):
        return None
    return record


def quantify_units(study: str, manifest: str, out: str, index, options, suv_type: str,
                   known: dict) -> Tuple[List[U.Unit], List[str]]:
    """One unit per session of the manifest (rows grouped as ``netpet quantify`` groups them) and the messages of
    the rows left out before any work."""
    from dataclasses import asdict

    from netpet.dicom.files import walk_files
    from netpet.quant.pipeline import plan_manifest, read_manifest

    rows = read_manifest(manifest)
    plan, errors = plan_manifest(rows)
    by_folder, by_file = _partner_files(index)
    pets_by_folder: Dict[str, list] = {}  # folder -> the PET series with files under it
    for pet in index.pet_series():
        for folder in {os.path.abspath(f) for f in pet.folders}:
            parts = folder.split(os.sep)
            for depth in range(2, len(parts) + 1):
                holding = pets_by_folder.setdefault(os.sep.join(parts[:depth]), [])
                if not any(p is pet for p in holding):
                    holding.append(pet)
    study_abs = os.path.abspath(study)
    result = []
    for (series, patient, session), group in plan:
        where = os.path.abspath(series)
        files = walk_files(series) if os.path.exists(series) else []
        if os.path.isdir(series):
            partners = [f for folder, found in by_folder.items()
                        if folder == where or folder.startswith(where + os.sep) for f in found]
        else:
            partners = by_file.get(where, [])
        shown = os.path.relpath(where, study_abs) if where.startswith(study_abs + os.sep) else series
        label = session or shown
        inputs = {"kind": U.QUANTIFY, "rows": [r.values for r in group], "files": U.file_stats(files + partners),
                  "options": {"segment": asdict(options), "suv_type": suv_type}, "netpet_version": __version__}
        unit = U.Unit(U.safe_key(series, patient, label), U.QUANTIFY, patient, label, series,
                      (group, out, options, suv_type, known, _indexed_record(series, group, pets_by_folder)),
                      inputs, U.fingerprint(inputs),
                      [r.number for r in group])
        result.append(unit)
    return result, errors


def suv_units(index, suv_type: str) -> List[U.Unit]:
    """One conversion unit per PET series of the index (a run without a manifest)."""
    from netpet import schema

    result = []
    for record in index.pet_series():
        tracer, modality = schema.record_tracer(record), schema.record_modality(record)
        session = schema.derive_session_id(record.study_uid, tracer, modality)
        inputs = {"kind": U.SUV, "series_uid": record.series_uid, "patient": record.patient_id,
                  "files": U.file_stats(record.files), "options": {"suv_type": suv_type}, "netpet_version": __version__}
        result.append(U.Unit(U.safe_key(record.series_uid, record.patient_id, session), U.SUV, record.patient_id,
                             session, record.series_uid, (record, suv_type), inputs, U.fingerprint(inputs)))
    return result


# -- executing -------------------------------------------------------------------------------------------------

def worker_context():
    """The multiprocessing context of the local pool: a fork server where there is one (Linux, macOS), else spawn.

    Not plain fork: a forked worker would start with a copy of the driver, whose index of the whole study grows with
    the study, and a worker's memory must not. The fork server imports the quantification once (numpy, SimpleITK,
    the pipeline) and each worker forks from it: a fast start and the same small memory whatever the study's size.
    """
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["netpet.quant.pipeline", "netpet.run.units"])
        return context
    return multiprocessing.get_context("spawn")


def start_fork_server() -> None:
    """Start the local pool's fork server now, so that its imports of the pipeline (seconds) overlap the driver's
    index of the study instead of following it (a part of the run that does not grow with the study)."""
    if worker_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        try:
            forkserver.ensure_running()
        except (OSError, ValueError):  # pragma: no cover - the pool starts it when it needs it
            log.debug("fork server not started early", exc_info=True)


def _died(unit: U.Unit, exc: BaseException) -> Dict[str, Any]:
    reason = printable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
    return {"key": unit.key, "rows": [], "errors": [f"{unit.label()} ({unit.where()}): the worker running it ended "
                                                    f"without a result ({type(exc).__name__}: {reason})"],
            "warnings": [], "segmentations": {}, "seconds": None, "worker": None}


def _args(unit: U.Unit):
    return unit.kind, unit.key, unit.label(), unit.where(), unit.payload


def execute(todo: Sequence[U.Unit], jobs: int, client=None) -> Iterator[Tuple[U.Unit, Dict[str, Any]]]:
    """(unit, result) as each unit finishes: in this process (``jobs`` 1 or a single unit), on a local process pool
    of ``jobs`` workers, or on the Dask ``client``'s cluster."""
    if not todo:
        return
    if client is not None:
        from distributed import as_completed

        futures = {client.submit(U.work, *_args(u), pure=False, key=f"netpet-run-{u.key}-{os.urandom(4).hex()}"): u
                   for u in todo}
        try:
            for future in as_completed(futures, loop=client.loop):  # this client's loop: it is not the default one
                unit = futures[future]
                try:
                    yield unit, future.result()
                except Exception as exc:  # noqa: BLE001 - a worker lost with its task: that unit fails, not the run
                    yield unit, _died(unit, exc)
        finally:
            for future in futures:
                future.cancel()
        return
    if jobs <= 1 or len(todo) == 1:
        for unit in todo:
            yield unit, U.work(*_args(unit))
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=worker_context())
    try:
        futures = {pool.submit(U.work, *_args(u)): u for u in todo}
        for future in as_completed(futures):
            unit = futures[future]
            try:
                yield unit, future.result()
            except Exception as exc:  # noqa: BLE001 - a worker process that died (out of memory...)
                yield unit, _died(unit, exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- the run ---------------------------------------------------------------------------------------------------

def _key(row: Dict[str, Any]) -> Tuple[str, ...]:
    from netpet.schema import KEY

    return tuple("" if row.get(k) is None else str(row.get(k)) for k in KEY)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_sessions(path: str, rows: List[Dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(U.SESSION_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: (r.get("patient_id", ""), r.get("session_id", ""), r.get("series_uid", ""))):
        writer.writerow({k: row.get(k, "") for k in U.SESSION_COLUMNS})
    U.write_atomic(path, buffer.getvalue())


def _statistics(table: str, reference: str, out: str, checkpoints: str) -> Dict[str, Any]:
    """``netpet stats TABLE --reference REF --out OUT/statistics`` with its defaults; skipped (``unchanged``) when
    the table, the reference standard and netpet are those of the report already written."""
    from netpet.stats.analysis import StatsOptions, analyse, false_finding_key
    from netpet.stats.causes import read_cause_codes
    from netpet.stats.data import load_study
    from netpet.stats.report import read_causes, write_outputs

    folder = os.path.join(out, "statistics")
    causes_path = os.path.join(folder, "false-findings.csv")
    # the reader's causes of false findings are read back from the report's own CSV: an edit there is an input too
    inputs = {"table": _file_digest(table), "reference": _file_digest(reference), "netpet_version": __version__,
              "causes": _file_digest(causes_path) if os.path.isfile(causes_path) else None}
    mark = os.path.join(checkpoints, "_statistics.json")
    report_path = os.path.join(folder, "report.html")
    try:
        with open(mark, encoding="utf-8") as handle:
            if json.load(handle) == inputs and os.path.isfile(report_path):
                return {"status": "unchanged", "report": report_path}
    except (OSError, ValueError):
        pass
    start = time.perf_counter()
    causes = read_causes(causes_path)
    codes = read_cause_codes(causes_path, false_finding_key)
    study = load_study(table, reference)
    analysis = analyse(study, StatsOptions(causes=causes, cause_codes=codes))
    written = write_outputs(analysis, folder, f"netpet run (statistics of {os.path.basename(table)})",
                            previous_causes=causes)
    # the report rewrites false-findings.csv (the causes kept): the mark holds the file as written now
    inputs["causes"] = _file_digest(causes_path) if os.path.isfile(causes_path) else None
    U.write_atomic(mark, json.dumps(inputs))
    return {"status": "done", "report": written["report.html"], "seconds": round(time.perf_counter() - start, 2),
            "warnings": list(study.warnings)}


def run_study(study: str, out: str, manifest: Optional[str] = None, reference: Optional[str] = None,
              scheduler: Optional[str] = None, jobs: Optional[int] = None, suv_type: str = "bw",
              method: Optional[str] = None, progress: Optional[ProgressCallback] = None,
              arguments: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run the whole study pipeline (see the module docstring); returns the end summary.

    ``manifest`` defaults to STUDY/manifest.csv and ``reference`` to STUDY/reference_standard.csv when they exist.
    Without a manifest every PET series is converted to SUV and checked, and OUT/sessions.csv lists them (no table).
    ``jobs``: local worker processes (default all cores; 1 runs in this process); ``scheduler``: the address of a
    Dask distributed scheduler instead (its workers must see STUDY and OUT at the same paths). ``arguments``: the
    command's options as given, recorded in the run log's start event.

    Returns {"units", "done", "unchanged", "failed", "rows_written", "rows_reupserted", "skipped_rows", "errors",
    "stale", "statistics", "table", "sessions", "run_log", "wall_seconds", "exit_code"}.

    Raises
    ------
    DicomInputError, NetpetError
        A missing STUDY, an unreadable manifest or reference standard, an unreachable scheduler, a table that
        cannot be written: before any unit runs.
    Cancelled
        The progress callback asked to stop (the units finished so far are kept, checkpointed).
    """
    from netpet import schema
    from netpet.dicom.files import default_jobs
    from netpet.dicom.index import index_tree

    started, cpu_started = time.perf_counter(), time.process_time()
    manifest = default_input(study, manifest, "manifest.csv")
    reference = default_input(study, reference, "reference_standard.csv")
    _check_inputs(study, manifest, reference)
    if not scheduler and (default_jobs() if jobs is None else int(jobs)) > 1:
        start_fork_server()  # it imports the pipeline while this process reads the manifest and indexes the study
    if manifest:
        from netpet.quant.pipeline import read_manifest

        read_manifest(manifest)  # an unreadable manifest is refused before any work (read again for the units)
    os.makedirs(out, exist_ok=True)
    checkpoints = os.path.join(out, "checkpoints")
    os.makedirs(checkpoints, exist_ok=True)
    table_path = os.path.join(out, TABLE_NAME)
    table = None
    if manifest:
        from netpet.quant.table import StudyTable

        table = StudyTable(table_path)
        table.check()
    client = connect(scheduler) if scheduler else None
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    run_log = RunLog(os.path.join(out, LOG_NAME))
    counts = {"done": 0, "unchanged": 0, "failed": 0}
    errors: List[str] = []
    warnings: List[str] = []
    written = reupserted = upserts = 0
    crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
    try:
        report(progress, 0.0, "indexing the study")
        index = index_tree(study, jobs=jobs if client is None else None)
        if manifest:
            from netpet.quant.segment import SegmentOptions

            options = SegmentOptions(method=method) if method else SegmentOptions()
            present = table.read()
            known = schema.known_session_ids(present)
            in_table = {_key(r) for r in present}
            work_units, plan_errors = quantify_units(study, manifest, os.path.abspath(out), index, options, suv_type,
                                                     known)
        else:
            work_units, plan_errors, in_table = suv_units(index, suv_type), [], set()
        workers = (f"dask scheduler {scheduler} ({len(client.scheduler_info().get('workers', {}))} workers)"
                   if client is not None else f"local, {jobs} worker process{'es' if jobs > 1 else ''}"
                   if jobs > 1 else "this process")
        run_log.event("start", netpet_version=__version__, study=os.path.abspath(study), out=os.path.abspath(out),
                      manifest=manifest and os.path.abspath(manifest),
                      reference=reference and os.path.abspath(reference),
                      arguments=arguments, options={"type": suv_type, "method": method},
                      scheduler=scheduler, jobs=jobs, workers=workers, units=len(work_units), pid=os.getpid(),
                      host=socket.gethostname(), dicom_files=index.dicom_files,
                      pet_series=len(index.pet_series()))
        if plan_errors:
            run_log.event("manifest", errors=plan_errors)
            errors.extend(plan_errors)
        log.info("%d units, %s", len(work_units), workers)
        results: Dict[str, Dict[str, Any]] = {}
        todo: List[U.Unit] = []
        finished = 0

        def tick(unit: U.Unit) -> None:
            nonlocal finished
            finished += 1
            report(progress, finished / max(len(work_units), 1), f"{finished}/{len(work_units)} sessions")

        for unit in work_units:  # unchanged units: skipped; their rows upserted again only if the table lacks them
            saved = U.read_checkpoint(checkpoints, unit.key)
            if saved is None or saved.get("fingerprint") != unit.fingerprint or saved.get("status") != "done":
                todo.append(unit)
                continue
            missing = [r for r in saved.get("rows", []) if unit.kind == U.QUANTIFY and _key(r) not in in_table]
            if missing:
                table.upsert(missing)
                reupserted += len(missing)
            results[unit.key] = saved
            counts["unchanged"] += 1
            run_log.event("unit", key=unit.key, kind=unit.kind, patient=unit.patient, session=unit.session,
                          series=unit.series, status="unchanged", rows=len(saved.get("rows", [])), errors=[],
                          reupserted=len(missing), seconds=0.0, worker=None)
            tick(unit)
        # the largest sessions (most manifest rows) first: no long unit left alone at the end while workers idle
        todo.sort(key=lambda u: -len(u.numbers))
        for unit, result in execute(todo, jobs, client):
            status = "failed" if result["errors"] else "done"
            rows = result["rows"]
            if rows and unit.kind == U.QUANTIFY:
                from netpet.quant.pipeline import session_id_warnings

                for conflict in session_id_warnings(rows, known):
                    result["warnings"].append(conflict)
                    log.warning("%s", conflict)
                table.upsert(rows)  # the table first, then the checkpoint: a crash between them loses nothing
                written += len(rows)
                upserts += 1
                for (patient, series), sessions in schema.known_session_ids(rows).items():
                    known.setdefault((patient, series), set()).update(sessions)
                if crash_after and upserts >= crash_after:
                    os._exit(70)  # the test hook (CRASH_ENV): as if the driver were killed here
            U.write_checkpoint(checkpoints, unit, status, result)
            results[unit.key] = {**result, "status": status}
            counts[status] += 1
            errors.extend(result["errors"])
            warnings.extend(result["warnings"])
            worker = result.get("worker") or {}
            run_log.event("unit", key=unit.key, kind=unit.kind, patient=unit.patient, session=unit.session,
                          series=unit.series, status=status, rows=len(rows), errors=result["errors"],
                          warnings=result["warnings"], seconds=result.get("seconds"),
                          cpu_seconds=result.get("cpu_seconds"), worker=worker)
            for message in result["errors"]:  # (the command line prints them once the run is over)
                log.info("%s", message)
            tick(unit)
        if client is not None:
            client.close()
            client = None
        summary: Dict[str, Any] = {"units": len(work_units), **counts, "rows_written": written,
                                   "rows_reupserted": reupserted, "skipped_rows": len(plan_errors)}
        stale: List[Dict[str, str]] = []
        statistics: Dict[str, Any] = {"status": "skipped"}
        if manifest:
            stale = _stale(table.read(), work_units, results)
            if stale:
                run_log.event("stale", sessions=stale,
                              note="in the study table but no longer in the manifest: left as they are, counted by "
                                   "the statistics unless retracted")
            if reference and os.path.isfile(table_path):
                try:
                    statistics = _statistics(table_path, reference, out, checkpoints)
                except NetpetError as exc:
                    statistics = {"status": "failed", "error": printable(str(exc))}
                    errors.append(f"statistics: {printable(str(exc))}")
            elif not reference:
                statistics = {"status": "skipped", "reason": "no reference standard (--reference, or "
                                                              "STUDY/reference_standard.csv)"}
            run_log.event("stats", **statistics)
            summary["table"] = table_path
        else:
            session_rows = [r for u in work_units for r in (results.get(u.key) or {}).get("rows", [])]
            _write_sessions(os.path.join(out, SESSIONS_NAME), session_rows)
            summary["sessions"] = os.path.join(out, SESSIONS_NAME)
        failed = counts["failed"] or summary["skipped_rows"] or statistics.get("status") == "failed"
        summary.update({"errors": errors, "warnings": warnings, "stale": stale, "statistics": statistics,
                        "run_log": os.path.join(out, LOG_NAME), "manifest": manifest, "reference": reference,
                        "wall_seconds": round(time.perf_counter() - started, 2),
                        "exit_code": EXIT_PARTIAL if failed else 0})
        run_log.event("end", counts=counts, units=len(work_units), rows_written=written, rows_reupserted=reupserted,
                      skipped_rows=summary["skipped_rows"], errors=len(errors), stale=len(stale),
                      statistics=statistics.get("status"), wall_seconds=summary["wall_seconds"],
                      driver_cpu_seconds=round(time.process_time() - cpu_started, 2), exit_code=summary["exit_code"])
        return summary
    except Cancelled as exc:
        run_log.event("end", counts=counts, cancelled=str(exc), wall_seconds=round(time.perf_counter() - started, 2),
                      exit_code=130)
        raise
    except BaseException as exc:  # the run stopped (a table that cannot be written, an interrupt): said in the log too
        run_log.event("end", counts=counts, error=printable(str(exc) or type(exc).__name__),
                      wall_seconds=round(time.perf_counter() - started, 2), exit_code=None)
        raise
    finally:
        run_log.close()
        if client is not None:
            client.close()


def _stale(present: List[Dict[str, str]], work_units: Sequence[U.Unit],
           results: Dict[str, Dict[str, Any]]) -> List[Dict[str, str]]:
    """What the table holds that no unit of this run produced or could have produced: whole sessions
    (patient_id, session_id), and, in a session this run produced, single findings no longer in its manifest rows
    (with reader and lesion_id; retracted findings, which no analysis counts, left out)."""
    from netpet.schema import RETRACTED

    produced_rows = [r for result in results.values() for r in result.get("rows", [])]
    produced = {(str(r.get("patient_id", "")), str(r.get("session_id", ""))) for r in produced_rows}
    produced_keys = {_key(r) for r in produced_rows}
    # a failed unit may own rows of an earlier run: its patient's session (given), or any session of the patient
    unsure = {(u.patient, u.session) for u in work_units if not (results.get(u.key) or {}).get("rows")}
    unsure_patients = {p for p, _ in unsure}
    stale = sorted({(r.get("patient_id", ""), r.get("session_id", "")) for r in present}
                   - produced - unsure)
    out = [{"patient_id": p, "session_id": s} for p, s in stale if p not in unsure_patients]
    for r in present:
        if ((r.get("patient_id", ""), r.get("session_id", "")) in produced and _key(r) not in produced_keys
                and r.get("finding_status") != RETRACTED):
            out.append({k: r.get(k, "") for k in ("patient_id", "session_id", "reader", "lesion_id")})
    return out