"""The reading standards of a study table in one call: NETPET score, FDG+/SSTR- lesions, SSTR-RADS 1.0 per finding and
per scan, PRRT summary, and their statistics (``netpet scores``, StudyStats and the report use it).

* :mod:`netpet.clinical.netpet_score` (Chan et al., Theranostics 2017): per patient, reader, time point and DOTATATE
  session;
* :mod:`netpet.clinical.sstr_rads` (Werner et al., J Nucl Med 2018): proposal, reader's category, agreement;
* :mod:`netpet.clinical.prrt`: the PRRT summary and its imaging-eligibility statement (a decision aid);
* :mod:`netpet.clinical.scores_stats`: distributions per group and weighted kappa between readers and modalities.

Retracted rows (:func:`netpet.schema.is_retracted`) are kept out of everything and counted in the warnings.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional

from netpet.clinical.netpet_score import EQUAL_RATIO, number, score_patients
from netpet.clinical.prrt import prrt_rows
from netpet.clinical.scores_stats import statistics
from netpet.clinical.sstr_rads import lesion_rows, scan_rows
from netpet.errors import NetpetError, printable
from netpet.schema import clean_label

#: the columns every study-table row needs here
NEEDED = ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id")
#: numeric columns: empty or a finite number >= 0
_NUMERIC = ("suv_max", "tl_ratio", "liver_suv_mean", "spleen_suv_mean")


class ScoresError(NetpetError):
    """A study-table or correspondence row the reading standards cannot use (one sentence naming it)."""


KEYS = ("netpet_scores", "discordant", "sstr_rads_lesions", "sstr_rads_scans", "prrt", "statistics", "warnings")


def _records(rows: Any) -> List[Dict[str, Any]]:
    if rows is None:
        return []
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        rows = rows.to_dict("records")
    return [dict(r) for r in rows]


def check_rows(rows: List[Dict[str, Any]], source: str = "the study table") -> None:
    """Refuse rows the reading standards cannot read, before any work.

    Raises
    ------
    ScoresError
        A missing key column (:data:`NEEDED`), an empty patient, session, tracer or reader, a ``krenning`` that is not
        a whole number 0-4, or a :data:`_NUMERIC` cell that is not a finite number >= 0; the message names the row
        (``table_row`` when the row carries one, else its position), the column and the value.
    """
    if not rows:
        raise ScoresError(f"{source} has no rows; there is nothing to score.")
    missing = [c for c in NEEDED if c not in rows[0]]
    if missing:
        raise ScoresError(f"{source} lacks the column(s) {', '.join(missing)}; the reading standards need "
                          f"{', '.join(NEEDED)}.")
    for i, row in enumerate(rows):
        where = clean_label(row.get("table_row")) or f"{source} row {i + 1}"
        for column in ("patient_id", "session_id", "tracer", "reader"):
            if not clean_label(row.get(column)):
                raise ScoresError(f"{where}: column {column} is empty; every finding names its patient, session, "
                                  "tracer and reader.")
        text = _text(row.get("krenning"))
        if text:
            value = number(text)
            if value is None or value != int(value) or not 0 <= value <= 4:
                raise ScoresError(f"{where}: krenning is {printable(repr(text))}; write a whole number from 0 to 4 "
                                  "(or leave it empty).")
        for column in _NUMERIC:
            text = _text(row.get(column))
            value = number(text) if text else 0.0
            if value is None or value < 0:
                raise ScoresError(f"{where}: {column} is {printable(repr(text))}; write a finite number >= 0 (or leave "
                                  "it empty).")


def _text(value: Any) -> str:
    """A cell as stripped text; '' for None and NaN (an empty cell of a pandas frame)."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinity as None, numpy scalars as Python numbers, tuples as lists (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: the indication whose patients get no NETPET grade: the grade is defined for neuroendocrine neoplasms (Chan et al.
#: 2017), and a TIO culprit is a phosphaturic mesenchymal tumour, not a NET
NOT_GRADED_INDICATIONS = ("TIO localisation",)


def study_scores(table_rows: Any, correspondence_rows: Optional[Iterable[Mapping[str, Any]]] = None,
                 equal_ratio: float = EQUAL_RATIO, indications: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """Every reading standard of a study table (module docstring).

    Parameters
    ----------
    table_rows : iterable of mappings or pandas.DataFrame
        The study table's rows (:mod:`netpet.schema`).
    correspondence_rows : iterable of mappings or pandas.DataFrame, optional
        ``netpet match``'s correspondence table; without it, DOTATATE and FDG findings correspond by ``lesion_id``.
    equal_ratio : float
        The NETPET P3 band (:data:`netpet.clinical.netpet_score.EQUAL_RATIO`).
    indications : mapping, optional
        {patient_id: indication} from the reference standard (:data:`netpet.stats.data.INDICATIONS`); a patient of
        :data:`NOT_GRADED_INDICATIONS` gets no NETPET grade, with the reason.

    Returns
    -------
    dict
        JSON-safe: ``netpet_scores``, ``discordant``, ``sstr_rads_lesions``, ``sstr_rads_scans``, ``prrt`` (lists of
        row dicts), ``statistics`` (``distribution``, ``agreement``: lists of row dicts) and ``warnings`` (sentences).

    Raises
    ------
    ScoresError
        A row the standards cannot read (:func:`check_rows`).
    ValueError
        ``equal_ratio`` not a finite number >= 1.
    """
    rows = _records(table_rows)
    check_rows(rows)
    correspondence = _records(correspondence_rows) if correspondence_rows is not None else None
    scored = score_patients(rows, correspondence, equal_ratio)
    warnings: List[str] = list(scored["warnings"])
    for score in scored["scores"]:
        indication = (indications or {}).get(score["patient_id"], "")
        if indication in NOT_GRADED_INDICATIONS:
            found = f" (the findings would read {score['grade']})" if score["grade"] else ""
            score["grade"] = ""
            score["reason"] = (f"not graded: the patient's indication is {indication}, and the NETPET grade is defined "
                               f"for neuroendocrine neoplasms (Chan et al. 2017){found}")
    lesions = lesion_rows(rows, warnings)
    scans = scan_rows(lesions)
    prrt = prrt_rows(rows, scored["scores"], scored["discordant"])
    stats = statistics(scored["scores"], scans, warnings)
    return json_safe({"netpet_scores": scored["scores"], "discordant": scored["discordant"],
                      "sstr_rads_lesions": lesions, "sstr_rads_scans": scans, "prrt": prrt, "statistics": stats,
                      "warnings": warnings})


def _cell(value: Any) -> str:
    from netpet.quant.table import escape_cell

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.10g}"
    return escape_cell(str(value))  # a cell a spreadsheet would run as a formula gets a leading quote


def write_rows(path: str, rows: List[Mapping[str, Any]], columns: Iterable[str]) -> None:
    """Write rows as CSV with ``columns`` in order, atomically (:func:`netpet.quant.table.replace_atomically`);
    None, NaN and infinity as empty cells, booleans as true/false.

    Raises
    ------
    NetpetError
        The file cannot be written (it is left as it was).
    """
    import csv

    from netpet.quant.table import replace_atomically

    columns = list(columns)

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row.get(c)) for c in columns])

    replace_atomically(path, write, suffix=".csv", what="scores table", error=NetpetError)


#: the files :func:`write_scores` writes, with the result key and the columns of each CSV
def _outputs():
    from netpet.clinical.netpet_score import DISCORDANT_COLUMNS, SCORE_COLUMNS
    from netpet.clinical.prrt import PRRT_COLUMNS
    from netpet.clinical.sstr_rads import LESION_COLUMNS, SCAN_COLUMNS

    return (("netpet-scores.csv", "netpet_scores", SCORE_COLUMNS),
            ("fdg-sstr-discordant.csv", "discordant", DISCORDANT_COLUMNS),
            ("sstr-rads-lesions.csv", "sstr_rads_lesions", LESION_COLUMNS),
            ("sstr-rads-scans.csv", "sstr_rads_scans", SCAN_COLUMNS),
            ("prrt-summary.csv", "prrt", PRRT_COLUMNS))


def read_table_scores(table_path: str, correspondence_path: Optional[str] = None,
                      equal_ratio: float = EQUAL_RATIO, reference_path: Optional[str] = None) -> Dict[str, Any]:
    """:func:`study_scores` of a study-table file (CSV or SQLite), each row named by its file and line in messages,
    with ``netpet match``'s correspondence file when given (``netpet scores``, ``netpet stats``, StudyStats), and the
    patients' indications from the reference standard when given (its ``indication`` column).

    Raises
    ------
    ScoresError
        The table cannot be read, or a row the standards cannot read.
    netpet.match.correspondence errors
        A correspondence file that is not ``netpet match``'s.
    """
    from netpet.quant.table import StudyTable, TableError

    correspondence = None
    if correspondence_path:
        from netpet.match.correspondence import read_correspondence

        correspondence = read_correspondence(correspondence_path).to_dict("records")
    table = StudyTable(table_path)
    try:
        rows = table.read()
    except TableError as exc:
        raise ScoresError(str(exc)) from None
    label, offset = ("row", 1) if table.sqlite else ("line", 2)  # a CSV's header is line 1
    for i, row in enumerate(rows):
        row["table_row"] = f"{table_path} {label} {i + offset}"
    indications = read_indications(reference_path) if reference_path else None
    return study_scores(rows, correspondence, equal_ratio, indications)


def read_indications(reference_path: str) -> Optional[Dict[str, str]]:
    """{patient_id: indication} of a reference-standard CSV as :func:`netpet.stats.data.read_reference` checks and
    spells them (the ``indications`` of :func:`study_scores`); None when the file names no indications."""
    from netpet.stats.data import read_reference

    reference = read_reference(reference_path)
    if not reference.indications:
        return None
    return dict(zip(reference.patients["patient_id"], reference.patients["indication"]))


def write_scores(result: Mapping[str, Any], out: str) -> Dict[str, str]:
    """Write :func:`study_scores`'s result into the folder ``out``: ``netpet-scores.csv``, ``fdg-sstr-discordant.csv``,
    ``sstr-rads-lesions.csv``, ``sstr-rads-scans.csv``, ``prrt-summary.csv`` and ``scores.json``, each atomically.
    Returns {file name: path}.

    Raises
    ------
    NetpetError
        A file cannot be written (it is left as it was).
    """
    import json
    import os

    from netpet.quant.table import replace_atomically

    os.makedirs(out, exist_ok=True)
    written = {}
    for name, key, columns in _outputs():
        path = os.path.join(out, name)
        write_rows(path, result[key], columns)
        written[name] = path
    path = os.path.join(out, "scores.json")
    text = json.dumps(result, indent=1, allow_nan=False)

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")

    replace_atomically(path, write, suffix=".json", what="scores file", error=NetpetError)
    written["scores.json"] = path
    return written
