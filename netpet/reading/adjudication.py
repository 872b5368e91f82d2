"""Consensus by adjudication: the findings where readers disagree, and the consensus rows an adjudicator decides.

Correspondence: two readers' findings are the same finding when they share (patient, session, modality, tracer,
lesion id), or, with a correspondence table (``netpet match``), when both are matched (status ``matched`` or
``confirmed``) to the same ``reference_lesion_id``; a finding the correspondence leaves unmatched, ambiguous or
unlisted is a finding of its reader alone (``<reader>:<lesion id>``). Retracted findings are left out (they are
not findings any more), and so are rows without a lesion id (sessions read without findings).

:func:`disagreements` lists, per corresponding finding, each reader's lesion id, SUV-rule ``call``,
``reader_call`` and ``confidence``; a finding disagrees when the readers' ``call`` or ``reader_call`` differ, or
when only some readers have it (the others did not report it). :func:`write_adjudication_list` writes that list
with empty consensus columns (:data:`CONSENSUS_COLUMNS`) for the adjudicator to fill; ``netpet adjudicate
--apply`` (:func:`apply_adjudication`) writes a row of reader :data:`~netpet.reading.findings.CONSENSUS_READER`
for every decided finding, lesion id the finding's id, through :meth:`netpet.quant.table.StudyTable.adjudicate`:
the audit trail records action ``adjudicate``, the adjudicator, and in ``why`` every reader's values and the
note.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from netpet import schema
from netpet.errors import printable
from netpet.quant.table import (StudyTable, TableError, check_lesion_id, escape_cell, replace_atomically,
                                unescape_cell)
from netpet.reading.findings import CONSENSUS_READER, ReadingError

SESSION: Tuple[str, ...] = ("patient_id", "session_id", "modality", "tracer")
#: what is shown of each reader (columns ``<reader>.<field>``)
READER_SHOWN: Tuple[str, ...] = ("lesion_id", "call", "reader_call", "confidence")
#: what the adjudicator fills in (any of them; a row left empty is not decided)
CONSENSUS_COLUMNS: Tuple[str, ...] = ("consensus_reader_call", "consensus_confidence", "consensus_call", "note")
MATCHED = ("matched", "confirmed")


def _correspondence_ids(path: str) -> Dict[Tuple[str, ...], str]:
    from netpet.match.correspondence import read_correspondence

    frame = read_correspondence(path)
    out: Dict[Tuple[str, ...], str] = {}
    for row in frame.to_dict("records"):
        if row.get("status") in MATCHED and row.get("lesion_id") and row.get("reference_lesion_id"):
            out[tuple(schema.clean_label(row.get(k)) for k in SESSION + ("reader",)) + (str(row["lesion_id"]),)] = \
                str(row["reference_lesion_id"])
    return out


def corresponding(rows: Iterable[Mapping[str, Any]], readers: Sequence[str],
                  correspondence: Optional[str] = None) -> Dict[Tuple[str, ...], Dict[str, Dict[str, str]]]:
    """{(patient, session, modality, tracer, finding id): {reader: row}} of the readers' active findings (module
    docstring), with the way they correspond in the key's last element: the shared lesion id, the reference
    lesion id, or ``<reader>:<lesion id>`` for a finding of one reader alone. Two findings of one reader that
    correspond to one lesion are shown together (ids and values joined by `` + ``) and listed as a disagreement."""
    ids = _correspondence_ids(correspondence) if correspondence else None
    groups: Dict[Tuple[str, ...], Dict[str, Dict[str, str]]] = {}
    wanted = set(readers)
    for row in rows:
        reader = schema.clean_label(row.get("reader"))
        lesion = str(row.get("lesion_id") or "")
        if reader not in wanted or not lesion or schema.is_retracted(row):
            continue
        session = tuple(schema.clean_label(row.get(k)) for k in SESSION)
        if ids is None:
            finding = lesion
        else:
            finding = ids.get(session + (reader, lesion)) or f"{reader}:{lesion}"
        group = groups.setdefault(session + (finding,), {})
        if reader in group:  # two findings of one reader correspond to one lesion (both confirmed to it): both shown
            held = group[reader]
            group[reader] = {**held, **{c: f"{held.get(c) or '(none)'} + {row.get(c) or '(none)'}"
                                        for c in ("lesion_id", "call", "reader_call", "confidence")}}
        else:
            group[reader] = dict(row)
    return groups


def _value(row: Optional[Mapping[str, Any]], column: str) -> str:
    return schema.clean_label(row.get(column)) if row else ""


def disagreements(rows: Iterable[Mapping[str, Any]], readers: Sequence[str], correspondence: Optional[str] = None,
                  include_agreed: bool = False) -> List[Dict[str, str]]:
    """The adjudication list: one dict per corresponding finding where the readers disagree (all findings with
    ``include_agreed``, the agreed values filled in as the consensus), sorted by session and finding id.

    Raises
    ------
    ReadingError
        Fewer than two readers, a reader named twice, or the consensus named as a reader.
    netpet.match.correspondence.CorrespondenceError
        The correspondence table cannot be read.
    """
    readers = [schema.clean_label(r) for r in readers]
    if len(readers) < 2 or not all(readers) or len(set(readers)) != len(readers):
        raise ReadingError(f"Adjudication compares two or more different readers; --readers gave "
                           f"{', '.join(printable(r) for r in readers) or 'none'}.")
    if CONSENSUS_READER in readers:
        raise ReadingError(f"'{CONSENSUS_READER}' is the adjudicator's reader id; compare the readers who read.")
    out = []
    for key, by_reader in sorted(corresponding(rows, readers, correspondence).items()):
        reasons = []
        present = [r for r in readers if r in by_reader]
        if len(present) < len(readers):
            reasons.append(f"reported by {', '.join(present)} only")
        several = [r for r in present if " + " in by_reader[r].get("lesion_id", "")]
        if several:
            reasons.append(f"{', '.join(several)} reported it more than once")
        for column in ("call", "reader_call"):
            values = {r: _value(by_reader.get(r), column) for r in present}
            if len(set(values.values())) > 1:
                reasons.append(f"{column} " + ", ".join(f"{r} {v or '(none)'}" for r, v in values.items()))
        if reasons or include_agreed:
            item = dict(zip(SESSION, key[:4]))
            item["finding_id"] = key[4]
            item["disagreement"] = "; ".join(reasons)
            for reader in readers:
                for column in READER_SHOWN:
                    item[f"{reader}.{column}"] = _value(by_reader.get(reader), column)
            agreed = not reasons
            first = by_reader[present[0]]
            item["consensus_reader_call"] = _value(first, "reader_call") if agreed else ""
            confidences = {_value(by_reader[r], "confidence") for r in present}
            item["consensus_confidence"] = confidences.pop() if agreed and len(confidences) == 1 else ""
            item["consensus_call"] = _value(first, "call") if agreed else ""
            item["note"] = ""
            out.append(item)
    return out


def adjudication_columns(readers: Sequence[str]) -> List[str]:
    return (list(SESSION) + ["finding_id", "disagreement"]
            + [f"{r}.{c}" for r in readers for c in READER_SHOWN] + list(CONSENSUS_COLUMNS))


def write_adjudication_list(items: Sequence[Mapping[str, str]], readers: Sequence[str], path: str) -> None:
    """Write the adjudication list (CSV, the table's formula escaping, atomically)."""
    columns = adjudication_columns([schema.clean_label(r) for r in readers])

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow([escape_cell(c) for c in columns])
            writer.writerows([[escape_cell(str(item.get(c, ""))) for c in columns] for item in items])

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    replace_atomically(path, write, suffix=".csv", what="adjudication list", error=ReadingError)


def read_adjudication_list(path: str) -> Tuple[List[str], List[Dict[str, str]]]:
    """(header, rows) of an adjudication list, cells unescaped.

    Raises
    ------
    ReadingError
        No such file, not UTF-8 CSV, or a column of :data:`SESSION`, ``finding_id`` or the consensus missing.
    """
    shown = printable(path)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8-sig")
    except FileNotFoundError:
        raise ReadingError(f"The adjudication list {shown} does not exist; write it with netpet adjudicate --out.") from None
    except IsADirectoryError:
        raise ReadingError(f"The adjudication list {shown} is a folder; give the CSV file.") from None
    except UnicodeDecodeError as exc:
        raise ReadingError(f"The adjudication list {shown} is not UTF-8 text (byte {exc.start}); save it as CSV "
                           "UTF-8.") from None
    try:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ReadingError(f"The adjudication list {shown} is not a readable CSV ({exc}).") from None
    if not lines:
        raise ReadingError(f"The adjudication list {shown} is empty; write it with netpet adjudicate --out.")
    header = [unescape_cell(c) for c in lines[0]]
    missing = [c for c in SESSION + ("finding_id", "consensus_reader_call", "consensus_confidence") if c not in header]
    if missing:
        raise ReadingError(f"The adjudication list {shown} lacks the column(s) {', '.join(missing)}; write it with "
                           "netpet adjudicate --out and fill in the consensus columns.")
    rows = []
    for line in lines[1:]:
        if not any(c.strip() for c in line):
            continue
        rows.append(dict(zip(header, [unescape_cell(c) for c in line] + [""] * (len(header) - len(line)))))
    return header, rows


def apply_adjudication(table: StudyTable, path: str, by: str) -> Dict[str, Any]:
    """Write the consensus rows of a filled-in adjudication list into the table (module docstring). Returns
    {"inserted", "updated", "undecided": [finding descriptions], "decided": n}.

    Raises
    ------
    ReadingError
        No adjudicator; a file that cannot be read; a row whose session is not in the table, whose finding id
        cannot be a lesion id, or whose consensus value is outside its scale (the file, row and column named).
    netpet.quant.table.TableError
        The table cannot be written (it is left untouched: the rows are written in one write).
    """
    by = schema.clean_label(by)
    if not by:
        raise ReadingError("Name the adjudicator (--by NAME): the audit trail records who decided.")
    header, items = read_adjudication_list(path)
    readers = sorted({c.rsplit(".", 1)[0] for c in header if c.endswith(".reader_call")})
    existing = table.read()
    sessions = {tuple(schema.clean_label(r.get(k)) for k in SESSION) for r in existing}
    rows, whys, undecided = [], [], []
    for number, item in enumerate(items, start=2):
        where = f"{printable(path)} row {number}: "
        session = tuple(schema.clean_label(item.get(k)) for k in SESSION)
        finding = item.get("finding_id", "")
        try:
            values = {"reader_call": schema.check_reader_call(item.get("consensus_reader_call"), where + "consensus_"),
                      "confidence": schema.check_confidence(item.get("consensus_confidence"), where + "consensus_")}
            values["call"] = schema.check_reader_call(item.get("consensus_call"), where + "\x00")
        except schema.SchemaError as exc:  # (the SUV-rule call has the reader call's values; named as its column)
            raise ReadingError(str(exc).replace("\x00reader_call", "consensus_call")) from None
        values = {k: v for k, v in values.items() if v not in ("", None)}
        if not values:
            undecided.append(f"{' / '.join(session)} finding {finding}")
            continue
        if session not in sessions:
            raise ReadingError(f"{where}the study table has no session {' / '.join(printable(v) for v in session)}; "
                               "the list belongs to another table.")
        try:
            check_lesion_id(finding, where)
        except TableError as exc:  # one sentence already
            raise ReadingError(str(exc)) from None
        rows.append({**dict(zip(SESSION, session)), "reader": CONSENSUS_READER, "lesion_id": finding,
                     "finding_status": schema.ACTIVE, **values})
        shown = []
        for reader in readers:
            parts = [f"{column} {item.get(f'{reader}.{column}') or '(none)'}" for column in READER_SHOWN[1:]]
            lesion = item.get(f"{reader}.lesion_id") or ""
            shown.append(f"{reader}{' ' + lesion if lesion else ' (not reported)'}: {', '.join(parts)}")
        note = schema.clean_label(item.get("note"))
        whys.append("; ".join(shown) + (f"; note: {note}" if note else "") + f" ({os.path.basename(path)})")
    inserted, updated = table.adjudicate(rows, by=by, whys=whys) if rows else (0, 0)
    return {"inserted": inserted, "updated": updated, "decided": len(rows), "undecided": undecided}
