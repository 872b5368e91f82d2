"""A reader's own fields of a finding, retraction, and the blinded view of a session.

A finding is one study-table row (:data:`netpet.schema.KEY`). The reader's fields (:data:`netpet.schema.
READER_COLUMNS`) are checked by :mod:`netpet.schema`'s checkers and written through
:meth:`netpet.quant.table.StudyTable.record`, :meth:`~netpet.quant.table.StudyTable.retract` and
:meth:`~netpet.quant.table.StudyTable.restore`: every change lands in the table's audit trail with who,
when and why. The command line (``netpet record``, ``retract``, ``restore``) and SUVQuant both call these
functions, with the same keys.

Blinding: :func:`blinded_rows` is what a reader may see while reading a session: their own rows of that session
(patient, session, modality, tracer), nothing of other readers, other sessions of the patient, or the consensus.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, List, Mapping, Optional

from netpet import schema
from netpet.errors import AmbiguousInputError, NetpetError, printable
from netpet.quant.table import KEY, StudyTable, describe_key

log = logging.getLogger(__name__)

#: the reader id of the consensus rows an adjudicator writes (:mod:`netpet.reading.adjudication`)
CONSENSUS_READER = "consensus"
#: what a reader records per finding, by the option / argument name used on the command line and in SUVQuant
READER_FIELDS = {"call": "reader_call", "confidence": "confidence", "correlate": "anatomic_correlate",
                 "sstr_rads": "sstr_rads"}


#: the key a reading form (SUVQuant, the browser app) stores for "not recorded" (an empty cell in the table)
NOT_RECORDED = "unset"
#: the choices of a reading form by the name of its choice list: the keys it stores, :data:`NOT_RECORDED` first
FORM_CHOICES = {
    "ReaderCall": (NOT_RECORDED,) + schema.READER_CALLS,
    "Confidence": (NOT_RECORDED,) + tuple(str(k) for k in schema.CONFIDENCE_SCALE),
    "AnatomicCorrelate": (NOT_RECORDED,) + schema.ANATOMIC_CORRELATES,
    "SSTRRADS": (NOT_RECORDED,) + schema.SSTR_RADS_CATEGORIES,
}


def form_value(key: Any) -> Any:
    """A form's stored key as a value for :func:`reader_values`: '' for :data:`NOT_RECORDED`, None for None."""
    if key is None:
        return None
    key = getattr(key, "key", key)
    return "" if key == NOT_RECORDED else key


def form_key(value: Any) -> str:
    """A table cell as a form's key: :data:`NOT_RECORDED` for an empty cell."""
    text = schema.clean_label(value)
    return text or NOT_RECORDED


class ReadingError(NetpetError, ValueError):
    """A reader-study request that cannot be done as asked (the message names the finding or value)."""


class AmbiguousFinding(AmbiguousInputError, ReadingError):
    """Several findings fit the ids given (they differ in modality or tracer); the message names them and the
    options that choose one (exit code 4 on the command line)."""


def _choices(values: Iterable[str], limit: int = 8) -> str:
    values = sorted({printable(v) for v in values})
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "") if values else "none"


def find_finding(rows: Iterable[Mapping[str, Any]], patient_id: str, session_id: str, reader: str, lesion_id: str,
                 modality: Optional[str] = None, tracer: Optional[str] = None, where: str = "the study table") -> Dict[str, str]:
    """The one row of (patient, session, reader, lesion), narrowed by modality and tracer when given.

    Raises
    ------
    ReadingError
        No such finding (the sentence names the key and what the table holds there); :class:`AmbiguousFinding`
        when several differ in modality or tracer (it names them: give ``modality`` and ``tracer``).
    """
    wanted = {"patient_id": patient_id, "session_id": session_id, "reader": reader, "lesion_id": lesion_id,
              "modality": modality, "tracer": tracer}
    wanted = {k: schema.clean_label(v) if k != "lesion_id" else str(v) for k, v in wanted.items() if v is not None}
    rows = list(rows)
    found = [dict(r) for r in rows if all((r.get(k) or "") == v for k, v in wanted.items())]
    if len(found) == 1:
        return found[0]
    text = ", ".join(f"{k.replace('_id', '')} {printable(v) or '(empty)'}" for k, v in wanted.items())
    if not found:
        same = [r for r in rows if (r.get("patient_id") or "") == wanted["patient_id"]
                and (r.get("session_id") or "") == wanted["session_id"]]
        if not same:
            raise ReadingError(f"{where} has no finding {text}: it holds no session {printable(session_id)} of patient "
                               f"{printable(patient_id)} (its patients: {_choices(r.get('patient_id', '') for r in rows)}).")
        readers = [r for r in same if (r.get("reader") or "") == wanted["reader"]]
        if not readers:
            raise ReadingError(f"{where} has no finding {text}: reader {printable(reader)} has no rows in this session "
                               f"(its readers: {_choices(r.get('reader', '') for r in same)}).")
        raise ReadingError(f"{where} has no finding {text}; reader {printable(reader)}'s lesions in this session: "
                           f"{_choices(r.get('lesion_id', '') or '(session read)' for r in readers)}.")
    kinds = _choices(f"{r.get('modality')} {r.get('tracer')}" for r in found)
    raise AmbiguousFinding(f"{where} has {len(found)} findings {text} (modality and tracer: {kinds}); give the modality "
                       "and the tracer too.")


def reader_values(call: Any = None, confidence: Any = None, correlate: Any = None, sstr_rads: Any = None,
                  where: str = "") -> Dict[str, Any]:
    """The table columns of a reader's values, checked (:mod:`netpet.schema`): ``reader_call``, ``confidence``
    (1-5), ``anatomic_correlate``, ``sstr_rads``. A value None is left out (not changed); '' clears the cell.

    Raises
    ------
    netpet.schema.SchemaError
        A value outside its scale (the sentence names the column, the value and what is accepted).
    """
    out: Dict[str, Any] = {}
    if call is not None:
        out["reader_call"] = schema.check_reader_call(call, where)
    if confidence is not None:
        number = schema.check_confidence(confidence, where)
        out["confidence"] = "" if number is None else number
    if correlate is not None:
        out["anatomic_correlate"] = schema.check_anatomic_correlate(correlate, where)
    if sstr_rads is not None:
        out["sstr_rads"] = schema.check_sstr_rads(sstr_rads, where)
    return out


def _key(row: Mapping[str, Any]) -> Dict[str, str]:
    return {k: row.get(k) or "" for k in KEY}


def record_reading(table: StudyTable, finding: Mapping[str, Any], values: Mapping[str, Any], by: Any = None,
                   why: Any = None) -> int:
    """Write a reader's checked values (:func:`reader_values`, :func:`label_values`) into the finding (a row, or
    its key); returns the audit entries written (0: the finding already held these values). Labels written
    here are the table's: the finding's segmentation file keeps the labels it was written with.

    Raises
    ------
    ReadingError
        No values to record.
    netpet.quant.table.TableError
        No such finding, or the table cannot be written.
    """
    if not values:
        raise ReadingError(f"Nothing to record for the finding {describe_key(finding)}: give a call, a confidence, "
                           "an anatomic correlate, an SSTR-RADS category, a region or a lesion type.")
    if schema.is_retracted(finding):
        log.warning("The finding %s is retracted: its new values are kept but no analysis counts it until it is "
                    "restored.", describe_key(finding))
    return table.record(_key(finding), dict(values), by=by, why=why)


def label_values(region: Any = None, lesion_type: Any = None, where: str = "") -> Dict[str, str]:
    """The table columns of a reader's labels of a finding: ``region`` and ``lesion_type`` (the reader's words,
    white space tidied). A value None is left out (not changed); '' clears the cell.

    Raises
    ------
    ReadingError
        A label with a control character (line break, tab, NUL: the table keeps one line per cell).
    """
    out: Dict[str, str] = {}
    for column, value in (("region", region), ("lesion_type", lesion_type)):
        if value is None:
            continue
        text = str(value)
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise ReadingError(f"{where + ': ' if where else ''}the {column.replace('_', ' ')} '{printable(text)}' has a "
                               "control character (line break, tab); give it as one line of words.")
        out[column] = " ".join(text.split())
    return out


def retract_finding(table: StudyTable, finding: Mapping[str, Any], reason: Any, by: Any = None) -> int:
    """Retract a finding (kept in the table, left out of every analysis); returns the audit entries written.

    Raises
    ------
    netpet.quant.table.TableError
        No reason, no such finding, or the table cannot be written.
    """
    return table.retract(_key(finding), reason, by=by)


def restore_finding(table: StudyTable, finding: Mapping[str, Any], why: Any = None, by: Any = None) -> int:
    """Undo a retraction; returns the audit entries written (0: the finding was not retracted).

    Raises
    ------
    netpet.quant.table.TableError
        No such finding, or the table cannot be written.
    """
    return table.restore(_key(finding), why=why, by=by)


def blinded_rows(rows: Iterable[Mapping[str, Any]], reader: str, patient_id: str, session_id: str,
                 modality: Optional[str] = None, tracer: Optional[str] = None) -> List[Dict[str, str]]:
    """The rows a reader may see while reading a session: their own rows of that session (patient, session and,
    when given, modality and tracer), retracted ones included (their own, marked); never another reader's rows,
    another session's (the patient's other modality or tracer), or the consensus (unless the reader is
    :data:`CONSENSUS_READER`). Sorted by lesion id.

    Raises
    ------
    ReadingError
        An empty reader, patient or session (a view of "everyone" is not a blinded view).
    """
    reader, patient_id, session_id = (schema.clean_label(v) for v in (reader, patient_id, session_id))
    if not (reader and patient_id and session_id):
        raise ReadingError("A blinded view needs the reader, the patient and the session; one of them is empty.")
    wanted = {"reader": reader, "patient_id": patient_id, "session_id": session_id}
    if modality:
        wanted["modality"] = schema.clean_label(modality)
    if tracer:
        wanted["tracer"] = schema.clean_label(tracer)
    own = [dict(r) for r in rows if all((r.get(k) or "") == v for k, v in wanted.items())]
    return sorted(own, key=lambda r: r.get("lesion_id") or "")
