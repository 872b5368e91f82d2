"""Blinded reading lists: per reader, the sessions to read in a seeded random order, nothing of any result.

Design
------
A reading list is a CSV per reader (:func:`write_reading_lists`): one row per session, with only what opens the
session (:data:`IDENTITY_COLUMNS`: patient, session, modality, tracer, time point, series UID or path) and the
list's own columns (order, round, the earliest study day of the round). No call, measurement, lesion id, region,
other reader or other session's result is ever copied into it, whatever the source (the study table or a
manifest) holds: the columns are an allow-list. While reading, a reader sees only their own rows of the session
(:func:`netpet.reading.findings.blinded_rows`).

Order (:func:`reading_order`), for each reader separately, reproducible from ``seed`` and the reader id
(Python's :class:`random.Random` seeded with the text ``netpet-reading:<seed>:<reader>``; the same on every
platform and Python version that keeps version 2 string seeding, Python 3.2 on):

1. **Rounds.** A patient's sessions (PET/CT and PET/MR, DOTATATE and FDG...) go into different rounds: round 1
   holds one session of every patient, round 2 a second session of those who have one, and so on. Rounds are
   read in order, separated by a washout of :data:`DEFAULT_WASHOUT_DAYS` days (``not_before_day`` of a round is
   ``(round - 1) * washout``), so a reader never reads two images of one patient in one sitting. Memory of a
   case fades slowly: pathologists recognised 40 % of previously seen cases after 2 weeks and 31 % after 4
   (Campbell et al., Am J Clin Pathol 2015;143:412-418); observer studies that used a gap between viewings used
   a median of 14 days (Haygood et al., J Med Imaging 2018;5:031412). NETPET's default, 4 weeks, is the longer of
   the two; randomised reading order and a washout between the readings of one case are what reader-study
   guidance asks for (Obuchowski, Radiology 2004;230:22-28 on the design of multireader studies; FDA,
   "Clinical Performance Assessment: Considerations for Computer-Assisted Detection Devices Applied to
   Radiology Images", 2020). Give another washout for another protocol.
2. **Counterbalancing.** Which session of a patient comes first rotates over the patients (patients in a random
   order; the i-th patient's sessions, in a fixed order of modality and tracer, rotated by i): as many patients
   are read PET/CT first as PET/MR first, so any order effect falls on both modalities alike.
3. **Order within a round**: random, under a minimum gap: two sessions of one patient have at least
   ``min_gap`` other sessions between them (at least 1: never back to back where it can be avoided; default
   :data:`DEFAULT_MIN_GAP`, a NETPET choice: the rounds keep
   them apart already; the gap matters where a reader ignores the washout and reads on into the next round, and
   at the boundary of two rounds). Each next session is drawn at random among those that keep the gap; when none
   can (few patients), the one read longest ago is taken, and the list says how often the gap was not kept
   (``gap_shortfalls``) and the least gap reached. :data:`ATTEMPTS` orders are drawn and the first with the
   fewest shortfalls kept.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from netpet import schema
from netpet.errors import printable
from netpet.quant.table import escape_cell, replace_atomically
from netpet.reading.findings import CONSENSUS_READER, ReadingError

#: the only source columns a reading list carries: what opens a session (never a result)
IDENTITY_COLUMNS: Tuple[str, ...] = ("patient_id", "session_id", "modality", "tracer", "time_point", "series_uid",
                                     "series", "dicom_patient_id")
LIST_COLUMNS: Tuple[str, ...] = ("order", "round", "not_before_day", "reader") + IDENTITY_COLUMNS
from netpet.schema import DEFAULT_MIN_GAP, DEFAULT_WASHOUT_DAYS  # noqa: E402 - defined where the CLI reads them

ATTEMPTS = 20
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _session_key(session: Mapping[str, str]) -> Tuple[str, ...]:
    return (session.get("patient_id", ""), session.get("session_id", "") or session.get("series_uid", "")
            or session.get("series", ""), session.get("modality", ""), session.get("tracer", ""))


def sessions_from_rows(rows: Iterable[Mapping[str, Any]]) -> List[Dict[str, str]]:
    """The sessions of study-table rows (any reader's, consensus left out), one dict of
    :data:`IDENTITY_COLUMNS` each (a session's series UID and time point from its first row that has them)."""
    sessions: Dict[Tuple[str, ...], Dict[str, str]] = {}
    for row in rows:
        if schema.clean_label(row.get("reader")) == CONSENSUS_READER:
            continue
        identity = {k: schema.clean_label(row.get(k)) for k in IDENTITY_COLUMNS}
        held = sessions.setdefault(_session_key(identity), identity)
        for k, v in identity.items():
            if v and not held.get(k):
                held[k] = v
    return sorted(sessions.values(), key=_session_key)


def sessions_from_manifest(path: str) -> List[Dict[str, str]]:
    """The sessions of a manifest CSV (UTF-8): a quantification manifest of ``netpet quantify`` or a plain list of
    sessions, with ``patient_id`` and, per row, one of ``session_id``, ``series_uid`` or ``series`` (a path,
    relative to the manifest). One session per distinct patient and session id (or series UID, or series path),
    modality and tracer; only :data:`IDENTITY_COLUMNS` are kept (seeds, lesion ids, regions, readers are not).

    Raises
    ------
    ReadingError
        No such file, a folder, text that is not UTF-8 CSV, no ``patient_id`` column, or a row without patient_id
        or without any of session_id, series_uid, series (the line is named).
    """
    shown = printable(path)
    if not os.path.exists(path):
        raise ReadingError(f"The manifest {shown} does not exist.")
    if os.path.isdir(path):
        raise ReadingError(f"The manifest {shown} is a folder; give the CSV file.")
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        lines = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise ReadingError(f"The manifest {shown} is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8.") from None
    except csv.Error as exc:
        raise ReadingError(f"The manifest {shown} is not a readable CSV ({exc}).") from None
    if "patient_id" not in header:
        raise ReadingError(f"The manifest {shown} has no patient_id column; it needs patient_id and one of session_id, "
                           "series_uid or series.")
    base = os.path.dirname(os.path.abspath(path))
    sessions: Dict[Tuple[str, ...], Dict[str, str]] = {}
    for number, row in lines:
        identity = {k: schema.clean_label(row.get(k)) for k in IDENTITY_COLUMNS}
        if not any(identity.values()):
            continue  # a blank line
        if not identity["patient_id"] or not (identity["session_id"] or identity["series_uid"] or identity["series"]):
            raise ReadingError(f"The manifest {shown} line {number}: a session needs patient_id and one of session_id, "
                               "series_uid or series; fill them in.")
        if identity["series"] and not os.path.isabs(identity["series"]):
            identity["series"] = os.path.normpath(os.path.join(base, identity["series"]))
        held = sessions.setdefault(_session_key(identity), identity)
        for k, v in identity.items():
            if v and not held.get(k):
                held[k] = v
    return sorted(sessions.values(), key=_session_key)


def sessions_from_index(index: Any) -> List[Dict[str, str]]:
    """The sessions of a DICOM index (:func:`netpet.dicom.index.index_tree`): one per PET series, keyed as
    ``netpet quantify`` and SUVQuant key it (:func:`netpet.schema.record_session_id`: the derived session id,
    modality label and tracer), with its patient id and series UID."""
    sessions: Dict[Tuple[str, ...], Dict[str, str]] = {}
    for record in index.pet_series():
        identity = {k: "" for k in IDENTITY_COLUMNS}
        identity.update({"patient_id": schema.clean_label(record.patient_id), "session_id": schema.record_session_id(record),
                         "modality": schema.record_modality(record), "tracer": schema.record_tracer(record),
                         "series_uid": schema.clean_label(record.series_uid),
                         "dicom_patient_id": schema.clean_label(record.patient_id)})
        sessions.setdefault(_session_key(identity), identity)
    return sorted(sessions.values(), key=_session_key)


def _rng(seed: int, reader: str) -> random.Random:
    return random.Random(f"netpet-reading:{seed}:{reader}")


def _rounds(sessions: Sequence[Dict[str, str]], rng: random.Random) -> List[List[Dict[str, str]]]:
    by_patient: Dict[str, List[Dict[str, str]]] = {}
    for session in sessions:
        by_patient.setdefault(session["patient_id"], []).append(session)
    patients = sorted(by_patient)
    rng.shuffle(patients)
    rounds: List[List[Dict[str, str]]] = []
    for i, patient in enumerate(patients):
        own = sorted(by_patient[patient], key=lambda s: (s.get("modality", ""), s.get("tracer", ""),
                                                         s.get("time_point", ""), _session_key(s)))
        shift = i % len(own)
        for k, session in enumerate(own[shift:] + own[:shift]):
            while len(rounds) <= k:
                rounds.append([])
            rounds[k].append(session)
    return rounds


def _arrange(rounds: List[List[Dict[str, str]]], min_gap: int, rng: random.Random):
    order: List[Tuple[int, Dict[str, str]]] = []
    last: Dict[str, int] = {}
    shortfalls, least = 0, None
    for number, sessions in enumerate(rounds, start=1):
        pool = list(sessions)
        rng.shuffle(pool)
        while pool:
            position = len(order)
            fits = [s for s in pool if position - last.get(s["patient_id"], -10 ** 9) - 1 >= min_gap]
            if fits:
                chosen = fits[0]
            else:  # the gap cannot be kept: the session whose patient was read longest ago
                chosen = min(pool, key=lambda s: last[s["patient_id"]])
                shortfalls += 1
            if chosen["patient_id"] in last:
                gap = position - last[chosen["patient_id"]] - 1
                least = gap if least is None else min(least, gap)
            pool.remove(chosen)
            last[chosen["patient_id"]] = position
            order.append((number, chosen))
    return order, shortfalls, least


def reading_order(sessions: Sequence[Mapping[str, Any]], reader: str, seed: int, min_gap: int = DEFAULT_MIN_GAP,
                  washout_days: float = DEFAULT_WASHOUT_DAYS) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """One reader's reading list (the module docstring's design): rows of :data:`LIST_COLUMNS`, and a summary
    (sessions, rounds, ``gap_shortfalls``, ``least_gap``: the least number of other sessions between two sessions
    of one patient, None when no patient has two).

    Raises
    ------
    ReadingError
        An empty reader id, a negative gap or washout, or two sessions with the same key.
    """
    reader = schema.clean_label(reader)
    if not reader:
        raise ReadingError("A reading list needs a reader id; one of --readers is empty.")
    if min_gap < 1 or washout_days < 0:
        raise ReadingError(f"The gap is {min_gap} and the washout {washout_days} days; give a gap of at least 1 (two "
                           "sessions of a patient are never read back to back where it can be avoided) and a washout "
                           "of 0 days or more.")
    cleaned = [{k: schema.clean_label(s.get(k)) for k in IDENTITY_COLUMNS} for s in sessions]
    keys = [_session_key(s) for s in cleaned]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ReadingError(f"The session {' / '.join(printable(v) for v in twice)} is listed twice; list each once.")
    rng = _rng(seed, reader)
    best = None
    for _attempt in range(ATTEMPTS):
        arranged = _arrange(_rounds(cleaned, rng), min_gap, rng)
        if best is None or arranged[1] < best[1]:
            best = arranged
        if best[1] == 0:
            break
    order, shortfalls, least = best
    rows = [{"order": i + 1, "round": number, "not_before_day": _days((number - 1) * washout_days), "reader": reader,
             **session} for i, (number, session) in enumerate(order)]
    summary = {"reader": reader, "sessions": len(rows), "rounds": max((r["round"] for r in rows), default=0),
               "gap_shortfalls": shortfalls, "least_gap": least}
    return rows, summary


def _days(value: float):
    return int(value) if float(value).is_integer() else round(value, 3)


def list_file_name(reader: str) -> str:
    """The file of a reader's list: ``reading-list-<reader>.csv``, characters other than letters, digits,
    ``.``, ``_`` and ``-`` as ``_``."""
    return f"reading-list-{_FILE_UNSAFE.sub('_', reader)}.csv"


def write_reading_lists(sessions: Sequence[Mapping[str, Any]], readers: Sequence[str], seed: int, out: str,
                        min_gap: int = DEFAULT_MIN_GAP, washout_days: float = DEFAULT_WASHOUT_DAYS,
                        source: str = "") -> Dict[str, Any]:
    """Write one list per reader into the folder ``out`` (:func:`list_file_name`, each written atomically) and
    ``reading-lists.json`` (the design: seed, gap, washout, the readers' summaries and files). Returns that record.

    Raises
    ------
    ReadingError
        No sessions, fewer than one reader, a reader named twice, two readers whose file names coincide, or
        any refusal of :func:`reading_order`.
    OSError
        The folder cannot be written.
    """
    readers = [schema.clean_label(r) for r in readers]
    if not readers or not all(readers):
        raise ReadingError("Give the readers (--readers R1,R2); an empty reader id is not one.")
    if len(set(readers)) != len(readers):
        raise ReadingError(f"The readers {', '.join(readers)} name one reader twice; list each once.")
    if CONSENSUS_READER in readers:
        raise ReadingError(f"'{CONSENSUS_READER}' is the adjudicator's reader id, not a reader's; it reads no list.")
    files = [list_file_name(r) for r in readers]
    if len(set(files)) != len(files):
        raise ReadingError(f"The readers {', '.join(readers)} give the same file name ({files}); use ids that differ "
                           "in letters or digits.")
    if not sessions:
        raise ReadingError(f"There are no sessions to read in {printable(source) or 'the input'}.")
    os.makedirs(out, exist_ok=True)
    record = {"seed": seed, "min_gap": min_gap, "washout_days": washout_days, "source": source,
              "columns": list(LIST_COLUMNS), "readers": []}
    for reader, name in zip(readers, files):
        rows, summary = reading_order(sessions, reader, seed, min_gap, washout_days)

        def write(temporary: str, rows=rows) -> None:
            with open(temporary, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\r\n")
                writer.writerow(LIST_COLUMNS)
                writer.writerows([[escape_cell(str(r.get(c, ""))) for c in LIST_COLUMNS] for r in rows])

        replace_atomically(os.path.join(out, name), write, suffix=".csv", what="reading list", error=ReadingError)
        record["readers"].append({**summary, "file": name})
    path = os.path.join(out, "reading-lists.json")

    def write_json(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)

    replace_atomically(path, write_json, suffix=".json", what="reading list record", error=ReadingError)
    return record
