"""A study folder opened for review in the browser: where its files are, and its rows per session.

Pure: imports only the core (no Slicer, VTK or trame), so the command line can check a folder
before any server starts and the tests run without a browser.

The study folder is the one boundary of the browser app: every path the app reads or writes is
passed through :func:`inside`, which refuses a path that leaves the folder by ``..`` or through a
symbolic link. The page never names a file of its own choosing: it chooses among the patients,
sessions and findings the server lists from this folder.

Default places (``netpet review STUDY``):

* study table: ``STUDY/study-table.csv``; else the one ``study-table.csv`` anywhere under STUDY;
  else ``STUDY/study-table.csv`` (created by the first accepted finding). ``--table`` names a
  ``.csv`` or ``.sqlite`` (``.sqlite3``, ``.db``) inside STUDY.
* reference standard: ``STUDY/reference_standard.csv``; else the one ``reference_standard.csv``
  under STUDY; else none (review without it). ``--reference`` names one inside STUDY.
* segmentations: ``segmentations/`` beside the study table (the ``.seg.nrrd`` of each patient,
  session and reader, :func:`netpet.schema.segmentation_file_name`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from netpet.errors import NetpetError, printable
from netpet.quant.table import SQLITE_SUFFIXES, StudyTable
from netpet.schema import ACTIVE, clean_label, is_retracted

log = logging.getLogger(__name__)

TABLE_NAME = "study-table.csv"
REFERENCE_NAME = "reference_standard.csv"
SEGMENTATIONS = "segmentations"
TABLE_SUFFIXES = (".csv",) + SQLITE_SUFFIXES
#: the measured values of a finding, read as float (None when empty)
FLOAT_COLUMNS = ("suv_max", "suv_peak", "suv_mean", "mtv_ml", "tl_ratio", "tb_ratio", "liver_suv_mean",
                 "centroid_r", "centroid_a", "centroid_s", "seed_r", "seed_a", "seed_s")
#: the finding's scores on integer scales, read as int (None when empty): Krenning 0-4, confidence 1-5
INT_COLUMNS = ("krenning", "confidence")
#: text columns every lesion of :func:`session_lesions` carries ("" when the table lacks them)
TEXT_COLUMNS = ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "lesion_type",
                "call", "finding_status", "reader_call", "anatomic_correlate", "sstr_rads", "retraction_reason",
                "flags", "warnings", "segmentation_status", "segmentation_file", "series_uid")
#: the session text of NETPETReaderLogic.sessions() that names a hybrid, and the modality labels it pairs
PARTNER_MODALITIES = {"PET/CT": "PET/MR", "PET/MR": "PET/CT"}


class ReviewError(NetpetError):
    """A study folder, teaching case or path cannot be used for review (the message names it and the fix)."""


@dataclass(frozen=True)
class StudyFolder:
    """Where a study's files are (every path a real path inside ``root``; see the module docstring).

    Attributes
    ----------
    root : str
        The study folder (real path: every symbolic link resolved).
    table : str
        The study table; may not exist yet (the first accepted finding creates it).
    reference : str or None
        The reference standard CSV, None when the folder has none.
    dicom : str
        The folder indexed for DICOM (the study folder).
    segmentations : str
        Where the ``.seg.nrrd`` files are written: ``segmentations`` beside the study table.
    """

    root: str
    table: str
    reference: Optional[str]
    dicom: str
    segmentations: str


def inside(root: str, path: str) -> str:
    """The real path of ``path`` when it lies inside the folder ``root``; refused otherwise.

    A relative ``path`` is taken inside ``root``. Refused: any ``..`` component (even one that would come
    back inside: no path the app builds needs one), and a path whose real path (every symbolic link
    resolved, the last component too) is not ``root`` or below it, such as a link to ``/etc``. The path
    need not exist (a table or segmentation about to be created).

    Parameters
    ----------
    root : str
        The study (or teaching case) folder.
    path : str
        The path to check.

    Returns
    -------
    str
        The real path.

    Raises
    ------
    ReviewError
        ``..`` in the path, a NUL character, or a path that leaves ``root``.
    """
    base = os.path.realpath(os.fspath(root))
    text = os.fspath(path)
    if "\x00" in text:
        raise ReviewError(f"The path {printable(text)} holds a NUL character; name a file inside the study folder "
                          f"{printable(base)}.")
    parts = text.replace("\\", "/").split("/")
    if ".." in parts:
        raise ReviewError(f"The path {printable(text)} contains '..' and is refused: name files inside the study "
                          f"folder {printable(base)} without '..'.")
    full = os.path.realpath(text if os.path.isabs(text) else os.path.join(base, text))
    if full != base and not full.startswith(base.rstrip(os.sep) + os.sep):
        raise ReviewError(f"The path {printable(text)} is outside the study folder {printable(base)} (it resolves to "
                          f"{printable(full)}); the review app reads and writes only inside the study folder.")
    return full


def _walk(root: str, name: str) -> List[str]:
    """Every file called ``name`` under ``root`` (symbolic links to folders not followed), sorted."""
    found = []
    for folder, folders, files in os.walk(root):
        folders.sort()
        if name in files:
            found.append(os.path.join(folder, name))
    return sorted(found)


def _given(root: str, path: str) -> str:
    """A path given on the command line: relative to the current folder when that lands inside ``root`` (existing
    or not), else relative to ``root``; checked by :func:`inside`."""
    text = os.fspath(path)
    if not os.path.isabs(text) and ".." not in text.replace("\\", "/").split("/"):
        here = os.path.realpath(text)
        if here == root or here.startswith(root.rstrip(os.sep) + os.sep):
            text = here
    return inside(root, text)


def open_study(root: str, table: Optional[str] = None, reference: Optional[str] = None) -> StudyFolder:
    """The study folder ``root`` with its table, reference standard and segmentation folder.

    Parameters
    ----------
    root : str
        The study folder (DICOM, the study table, optionally the reference standard).
    table : str, optional
        The study table (``.csv``, ``.sqlite``, ``.sqlite3`` or ``.db``) inside ``root``; default: see the
        module docstring. A relative path is taken from the current folder when it lands inside ``root``,
        else inside ``root``.
    reference : str, optional
        The reference standard CSV inside ``root``; default: see the module docstring.

    Returns
    -------
    StudyFolder

    Raises
    ------
    ReviewError
        ``root`` missing or no folder; a table or reference outside ``root``; a table that is a folder or
        has another extension; a reference standard that does not exist; several candidate tables or
        reference standards and none given.
    """
    if not os.path.isdir(root):
        what = "does not exist" if not os.path.exists(root) else "is not a folder"
        raise ReviewError(f"The study folder {printable(root)} {what}; give the folder that holds the study's DICOM "
                          "and its study table.")
    base = os.path.realpath(root)
    if table is not None:
        table_path = _given(base, table)
        if os.path.isdir(table_path) or not table_path.lower().endswith(TABLE_SUFFIXES):
            raise ReviewError(f"The study table {printable(table)} is not a .csv or .sqlite file; give the study "
                              "table's file with --table.")
    else:
        table_path = _the_one(base, TABLE_NAME, "study tables", "--table") or os.path.join(base, TABLE_NAME)
    if reference is not None:
        reference_path: Optional[str] = _given(base, reference)
        if not os.path.isfile(reference_path):
            raise ReviewError(f"The reference standard {printable(reference)} does not exist; give its CSV with "
                              "--reference, or leave it out to review without one.")
    else:
        reference_path = _the_one(base, REFERENCE_NAME, "reference standards", "--reference")
    segmentations = inside(base, os.path.join(os.path.dirname(table_path), SEGMENTATIONS))
    return StudyFolder(root=base, table=table_path, reference=reference_path, dicom=base, segmentations=segmentations)


def _the_one(base: str, name: str, what: str, option: str) -> Optional[str]:
    """The file ``name`` in the study folder ``base``, else the one under it (None when there is none).

    Raises
    ------
    ReviewError
        Several under it, none at the top: the sentence lists them and names the option that chooses.
    """
    if os.path.isfile(os.path.join(base, name)):
        return inside(base, os.path.join(base, name))  # a link out of the folder is refused here too
    found = [inside(base, p) for p in _walk(base, name)]
    if len(found) > 1:
        raise ReviewError(f"The study folder {printable(base)} holds {len(found)} {what} ("
                          f"{', '.join(printable(os.path.relpath(p, base)) for p in found[:5])}); choose one with "
                          f"{option}.")
    return found[0] if found else None


def _number(value: str, kind: type, table_path: str, line: int, column: str) -> Any:
    text = (value or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not math.isfinite(number) or (kind is int and number != int(number)):
        what = "an integer" if kind is int else "a number"
        raise ReviewError(f"The study table {printable(table_path)} row {line}: column {column} is "
                          f"{printable(text)!r}, not {what}; correct the cell or measure the finding again.")
    return int(number) if kind is int else number


def session_lesions(table_path: str, patient_id: str, session_id: str, reader: Optional[str] = None,
                    include_retracted: bool = True) -> List[Dict[str, Any]]:
    """The findings of one session in the study table, for the lesion list.

    Read with :class:`netpet.quant.table.StudyTable`, the code the command line and SUVQuant use (cells
    unescaped the same way). Rows without a ``lesion_id`` (a session read without findings) are left out.

    Parameters
    ----------
    table_path : str
        The study table; an absent file is an empty table.
    patient_id, session_id : str
        The session.
    reader : str, optional
        Only this reader's findings (default: every reader's).
    include_retracted : bool
        Keep the retracted findings (``finding_status`` retracted; shown struck through), default True.

    Returns
    -------
    list of dict
        In table order, one per finding: every column of :data:`TEXT_COLUMNS` as text (``finding_status``
        ``active`` when empty), :data:`FLOAT_COLUMNS` as float, :data:`INT_COLUMNS` as int (None when empty),
        ``retracted`` (bool) and ``row`` (the table's line or row number).

    Raises
    ------
    ReviewError
        A number column holding text (naming the table, row and column).
    TableError
        A file that is not a study table (from :class:`~netpet.quant.table.StudyTable`).
    """
    table = StudyTable(table_path)
    if not os.path.exists(table.target):
        return []
    offset = 1 if table.sqlite else 2
    out = []
    for number, row in enumerate(table.read()):
        if (row.get("patient_id", "").strip() != patient_id or row.get("session_id", "").strip() != session_id
                or not row.get("lesion_id", "").strip()):
            continue
        if reader is not None and clean_label(row.get("reader")) != clean_label(reader):
            continue
        retracted = is_retracted(row)
        if retracted and not include_retracted:
            continue
        line = number + offset
        lesion: Dict[str, Any] = {c: (row.get(c) or "").strip() for c in TEXT_COLUMNS}
        lesion["finding_status"] = lesion["finding_status"].lower() or ACTIVE
        for column in FLOAT_COLUMNS:
            lesion[column] = _number(row.get(column, ""), float, table_path, line, column)
        for column in INT_COLUMNS:
            lesion[column] = _number(row.get(column, ""), int, table_path, line, column)
        lesion["retracted"] = retracted
        lesion["row"] = line
        out.append(lesion)
    return out


def _modality(record: Mapping[str, Any]) -> str:
    """The hybrid label of a session record: ``hybrid`` (NETPETReaderLogic.sessions) or ``modality`` (a table)."""
    return clean_label(record.get("hybrid") or record.get("modality") or "").upper()


def _tracer(record: Mapping[str, Any]) -> str:
    return clean_label(record.get("tracer") or "").lower()


def _series(record: Any) -> str:
    if isinstance(record, Mapping):
        return str(record.get("pet_series_uid") or record.get("series_uid") or "")
    return str(record)


def partner_sessions(sessions: Sequence[Mapping[str, Any]], session: Any) -> List[Mapping[str, Any]]:
    """The sessions to compare with ``session``: the same patient and tracer on the other hybrid (PET/CT for
    PET/MR and back).

    Parameters
    ----------
    sessions : sequence of dict
        Records as :meth:`NETPETReaderLogic.sessions` gives them (``patient_id``, ``session``,
        ``pet_series_uid``, ``hybrid``, ``tracer``); ``modality`` and ``series_uid`` are read too when
        ``hybrid`` and ``pet_series_uid`` are absent (study-table rows).
    session : dict or str
        One of those records, or its PET series UID.

    Returns
    -------
    list of dict
        The partner records in the order given; empty when the session's hybrid is neither PET/CT nor PET/MR,
        or its tracer is unknown (an unknown tracer cannot be said to be the same).

    Raises
    ------
    ReviewError
        ``session`` given by a series UID that no record has.
    """
    if not isinstance(session, Mapping):
        uid = _series(session)
        chosen = [r for r in sessions if _series(r) == uid]
        if not chosen:
            raise ReviewError(f"No session has the PET series {printable(uid)}; choose one of the listed sessions.")
        session = chosen[0]
    partner = PARTNER_MODALITIES.get(_modality(session))
    tracer = _tracer(session)
    if partner is None or tracer in ("", "unknown"):
        return []
    return [r for r in sessions if str(r.get("patient_id", "")) == str(session.get("patient_id", ""))
            and _modality(r) == partner and _tracer(r) == tracer and _series(r) != _series(session)]
