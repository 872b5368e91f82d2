"""Follow-up: lesions tracked over time, their changes, per-patient tumour burden and PERCIST 1.0.

Pure functions over pandas tables (no image, no I/O): the study table (:mod:`netpet.schema`, one row per
finding, with the session's ``time_point`` and ``days_from_baseline``) and the correspondence table that
``netpet match`` writes (one row per finding with its ``track_id``, plus ``missed`` rows for reference lesions a
read did not find; columns :data:`CORRESPONDENCE_REQUIRED`). A ``confirmed`` row counts as what it confirms: with a
finding it gives the finding's track (a false positive when its ``reference_lesion_id`` is empty), without one it is
a missed reference lesion.

Time axis
---------
Lesions are followed within a *series of reads*: one patient, modality, tracer and reader (:data:`SERIES`),
one session per time point. The time points are ordered by ``days_from_baseline`` when every session of the
series has it; otherwise by the time-point label (:func:`netpet.schema.time_point_rank`: baseline/empty 0,
FU1 1, FU2 2...) when every label is one of those; otherwise the series is refused
(:class:`FollowUpRefusal`: the order would be a guess). Days and labels that contradict each other, two
sessions of a series at the same time point, and a session with two time points are refused too.

Per lesion (:func:`lesion_changes`)
-----------------------------------
A *lesion* is a track (``track_id``) of the series. It is *present* at a time point when the series' session
holds a finding of that track. From the first time point where it is present onwards, every time point gives
one row with a ``status``:

* ``baseline``: present at the series' first time point;
* ``persisting``: present now and at the previous time point;
* ``new``: present now, absent at the previous time point (a track seen earlier, then absent, then seen
  again is ``new`` too, with a note: a recurrence of that lesion);
* ``disappeared``: absent now (no finding of the track in the session, which was read; or a ``missed`` row of
  the correspondence, which adds the note that the reference standard still holds the lesion there, so that
  the reader's "disappeared" is a false negative rather than a response), present at the previous time point;
* ``absent``: absent now and at the previous time point.

Values: SUVmax, SUVpeak, MTV, T/L (:data:`MEASURES`) and SUVmean; the change to the previous time point and to
the track's first time point, absolute (the value's unit) and relative (%, of the earlier value; empty when
that is 0). A finding that was *not separable* (``segmentation_status`` "not separable": the segmentation
could not tell it from its surroundings, :mod:`netpet.quant.segment`) has no volume: its MTV, SUVmean and
therefore TL-SSTR share are left empty (NaN) and flagged ``not-separable``, whatever the table holds; its
SUVmax and SUVpeak (of the 1 mL sphere at the click) are kept. Every note travels in the row's ``warnings``.

Per patient and time point (:func:`patient_response`)
-----------------------------------------------------
Numbers of lesions (findings), positive findings (``call`` positive), new, disappeared and persisting
lesions, and for SSTR PET (tracer ``dotatate``: DOTATATE, DOTATOC, DOTANOC):

* **SSTR-TV** (mL), the whole-body somatostatin-receptor-expressing tumour volume: the sum of the MTV of the
  positive findings (``call`` positive; equivocal and negative findings are left out and counted in a note).
  It is the "total 68Ga-DOTATATE-avid tumour volume" of Tirosh A et al., Gastroenterology
  2018;154(4):998-1008.e1 (checked), and the SSTR-TV of Toriihara A et al., Eur J Nucl Med Mol Imaging
  2019;46:2244-2251 [from memory], there with a liver-based threshold as NETPET's positive call is;
* **TL-SSTR** (SUV x mL), the total lesion SSTR expression: the sum of MTV x SUVmean over the same findings,
  as total lesion glycolysis is for FDG (Toriihara et al. 2019 [from memory]).

A positive finding without a volume (not separable) leaves both sums incomplete: they are then the sums of the
lesions with a volume, ``sstr_lesions_without_volume`` says how many are missing, a note says so, and the
changes to and from such a time point are left empty (a lower bound does not give a change).

PERCIST 1.0 for FDG (:func:`percist`)
-------------------------------------
Wahl RL, Jacene H, Kasamon Y, Lodge MA, J Nucl Med 2009;50 Suppl 1:122S-150S, and O JH, Lodge MA, Wahl RL,
"Practical PERCIST", Radiology 2016;280:576-584. The thresholds below were checked against the PERCIST tables
reproduced from Wahl et al. (e.g. J Cancer 2010;1:80-92, table 3: PMR "> 30 % decrease in SULpeak; minimum 0.8 unit
decrease", PMD "> 30 % increase ... minimum 0.8 unit increase", new lesions PMD; liver reproducibility "+-20 % and
< 0.3 SUL") and Practical PERCIST's abstract; the measurability threshold 1.5 x liver mean + 2 SD is from Wahl et al.
[from memory]. Each follow-up time point is compared with the series' first time point (the baseline):

* uptake is SUL, SUV normalised by lean body mass. A table of SUL (``suv_type`` ``lbmjanma``, Janmahasatian,
  the formula Practical PERCIST recommends [from memory]; or ``lbm``, James) is used as it is. A table of
  SUVbw is converted, SUL = SUVbw x LBM / weight, with Janmahasatian's LBM (:mod:`netpet.dicom.body`) when the
  table gives ``suv_weight_kg``, ``height_m`` and ``sex`` for the session; otherwise nothing is guessed: the
  category is ``not assessable`` with the reason and how to get SUL (``netpet quantify --type lbmjanma``).
  Both time points must use the same LBM formula.
* liver reference: the session's ``liver_suv_mean`` and ``liver_suv_sd`` (NETPET's 3 cm liver sphere) in SUL.
  PERCIST's comparability check: the liver SULmean of the two scans within 20 % *and* 0.3 SUL units; otherwise
  ``liver_comparable`` is False and a note says so (the category is still given).
* target: the hottest finding by SULpeak of each scan (not necessarily the same lesion). The baseline is
  measurable when its SULpeak >= 1.5 x liver SULmean + 2 x liver SD (of the baseline scan); otherwise the
  category is ``not assessable`` (unless a new lesion makes it PMD).
* categories, in this order: **PMD** when a new positive finding appears (a track absent at baseline with
  ``call`` positive: "new FDG-avid lesion"), or the target SULpeak rises by more than 30 % *and* more than
  0.8 SUL units; **CMR** when every finding of the follow-up scan has SULpeak <= the liver SULmean (or there is
  none); **PMR** when the target SULpeak falls by at least 30 % *and* at least 0.8 SUL units and no other lesion
  rose by more than 30 % and 0.8 SUL units; **SMD** otherwise. A relative change alone is never used.

Not applied (said in every PERCIST row's notes): the blood-pool level of CMR (NETPET measures no blood pool:
the liver SULmean is the bound), PMD by "visible increase in extent" or > 75 % rise of the TLG of up to five
lesions (NETPET's MTV depends on the segmentation method), and the uptake-time and scanner checks (not in the
table).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from netpet import schema
from netpet.dicom import body
from netpet.errors import NetpetError, printable

#: a series of reads followed over time: one patient, modality, tracer and reader
SERIES: Tuple[str, ...] = ("patient_id", "modality", "tracer", "reader")
#: one read: a series' session
READ: Tuple[str, ...] = ("patient_id", "session_id", "modality", "tracer", "reader")
#: the per-lesion values followed and their units
MEASURES: Tuple[str, ...] = ("suv_max", "suv_peak", "mtv_ml", "tl_ratio")
UNITS: Dict[str, str] = {"suv_max": "SUV", "suv_peak": "SUV", "mtv_ml": "mL", "tl_ratio": "ratio", "suv_mean": "SUV",
                         "sstr_tv_ml": "mL", "tl_sstr": "SUV x mL", "liver_sul_mean": "SUL", "target_sul_peak": "SUL"}
#: study-table columns follow-up needs (the key, the call and the values followed)
TABLE_REQUIRED: Tuple[str, ...] = schema.KEY + ("call", "suv_max", "suv_peak", "suv_mean", "mtv_ml", "tl_ratio")
#: correspondence columns follow-up needs (netpet match writes more)
CORRESPONDENCE_REQUIRED: Tuple[str, ...] = READ + ("lesion_id", "track_id", "status")
MATCH_STATUSES: Tuple[str, ...] = ("matched", "ambiguous", "confirmed", "unmatched", "missed")
#: tracer keys of somatostatin-receptor PET (netpet.dicom.tracer: DOTATATE, DOTATOC, DOTANOC)
SSTR_TRACERS: Tuple[str, ...] = ("dotatate",)
FDG_TRACERS: Tuple[str, ...] = ("fdg",)
NOT_SEPARABLE = "not separable"

#: PERCIST 1.0 (Wahl et al. 2009, table 6; Practical PERCIST, O et al. 2016): the change of the target SULpeak
#: that makes PMR (a fall of at least both) or PMD (a rise of more than both)
PERCIST_RELATIVE = 0.30
PERCIST_ABSOLUTE_SUL = 0.8
#: measurability of the baseline target: SULpeak >= 1.5 x liver SULmean + 2 x liver SD (Wahl et al. 2009)
MEASURABLE_LIVER_FACTOR = 1.5
MEASURABLE_LIVER_SDS = 2.0
#: comparability of two scans: liver SULmean within 20 % and 0.3 SUL units (Wahl et al. 2009; O et al. 2016)
LIVER_RELATIVE = 0.20
LIVER_ABSOLUTE_SUL = 0.3
#: SUV types of the study table that are SUL already -> the lean-body-mass formula
SUL_TYPES: Dict[str, str] = {"lbmjanma": "Janmahasatian", "lbm": "James (128)", "lbmjames128": "James (128)",
                             "lbm_morgan": "James (120, Morgan)"}
BODY_WEIGHT_TYPES = ("bw", "")
#: how far a change may miss a PERCIST bound by binary rounding of decimal inputs (3.0 -> 2.1 is -29.999999999999996 %
#: in floating point) and still count as on it: far below any SUL or % a scanner can tell apart
ROUNDING = 1e-9
PERCIST_CATEGORIES = ("CMR", "PMR", "SMD", "PMD", "not assessable")
PERCIST_NOT_APPLIED = ("not applied: the blood-pool level of CMR (the liver SULmean is the bound), PMD by visible "
                       "increase in extent or TLG, uptake-time and scanner checks")
HOW_TO_SUL = ("re-run netpet quantify --type lbmjanma (the PET header must give height and sex, or the manifest "
              "columns height_m and sex), or add the columns height_m and sex to the study table")

LESION_COLUMNS: Tuple[str, ...] = (
    "patient_id", "modality", "tracer", "reader", "track_id", "time_index", "time_point", "days_from_baseline",
    "session_id", "lesion_id", "reference_lesion_id", "match_status", "status", "previous_time_point", "call",
    "region", "segmentation_status", "suv_max", "suv_peak", "mtv_ml", "tl_ratio", "suv_mean",
    *[f"{m}_change{s}" for m in MEASURES for s in ("", "_pct", "_from_first", "_from_first_pct")],
    "flags", "warnings",
)
PATIENT_COLUMNS: Tuple[str, ...] = (
    "patient_id", "modality", "tracer", "reader", "time_index", "time_point", "days_from_baseline", "session_id",
    "n_lesions", "n_positive", "n_new", "n_disappeared", "n_persisting",
    "sstr_tv_ml", "tl_sstr", "sstr_lesions", "sstr_lesions_without_volume",
    "sstr_tv_change_ml", "sstr_tv_change_pct", "tl_sstr_change", "tl_sstr_change_pct",
    "sstr_tv_change_from_baseline_ml", "sstr_tv_change_from_baseline_pct", "tl_sstr_change_from_baseline",
    "tl_sstr_change_from_baseline_pct",
    "percist", "percist_reason", "sul_formula", "liver_sul_mean", "liver_sul_sd", "measurable_threshold_sul",
    "target_track_id", "target_sul_peak", "baseline_target_track_id", "baseline_target_sul_peak", "sul_peak_change",
    "sul_peak_change_pct", "liver_sul_change", "liver_sul_change_pct", "liver_comparable", "new_avid_lesions",
    "warnings",
)


class FollowUpError(NetpetError, ValueError):
    """The inputs cannot be followed up (a missing column, a finding without a track...): one sentence naming the
    file, row, column and value, and what to do."""


class FollowUpRefusal(FollowUpError):
    """The order of a series' time points cannot be known without guessing (no days, labels not ordered)."""


@dataclass
class FollowUp:
    """The result of :func:`follow_up`: per-lesion rows (:data:`LESION_COLUMNS`), per-patient rows
    (:data:`PATIENT_COLUMNS`) and notes about the inputs as a whole."""

    lesions: pd.DataFrame
    patients: pd.DataFrame
    warnings: List[str] = field(default_factory=list)


# -- small pure helpers -------------------------------------------------------------------------------------------

def change(before: float, after: float) -> Tuple[float, float]:
    """(after - before, 100 x (after - before) / before): the absolute (unit of the values) and relative (%)
    change; NaN where a value is missing, the relative one also when ``before`` is 0."""
    if before is None or after is None or not (math.isfinite(before) and math.isfinite(after)):
        return math.nan, math.nan
    delta = after - before
    return delta, (100.0 * delta / before if before != 0 else math.nan)


def sul_factor(suv_type: str, weight_kg: Optional[float] = None, height_m: Optional[float] = None,
               sex: Optional[str] = None) -> Tuple[float, str, str]:
    """The factor that turns a session's SUVs into SUL, the LBM formula, and why not ('' when it can).

    Parameters
    ----------
    suv_type : str
        The study table's ``suv_type`` (:data:`netpet.dicom.body.SUV_TYPE_INFO` keys, or DICOM SUVType terms).
    weight_kg, height_m, sex
        The patient's weight (kg), height (m) and sex (M, F, O) of the session, needed for SUVbw only.

    Returns
    -------
    (factor, formula, reason)
        SUL = SUV x factor (1 for a table of SUL already; LBM/weight by Janmahasatian for SUVbw); ``formula``
        names the LBM formula; NaN and the reason when no factor can be had without guessing.
    """
    kind = schema.clean_label(suv_type).lower()
    if kind not in SUL_TYPES and kind not in body.SUV_TYPE_INFO:  # a DICOM SUVType term (LBM is Morgan's there)
        kind = body.DICOM_SUV_TYPES.get(kind.upper(), kind)
    if kind in SUL_TYPES:
        return 1.0, SUL_TYPES[kind], ""
    if kind not in BODY_WEIGHT_TYPES:
        return math.nan, "", (f"the SUVs are normalised by {body.SUV_TYPE_INFO.get(kind, ('', '', kind))[2]}, which "
                              f"cannot be turned into SUL; {HOW_TO_SUL}")
    if not kind:
        return math.nan, "", f"the table does not say the SUV type (suv_type is empty); {HOW_TO_SUL}"
    missing = [name for name, value in (("suv_weight_kg", weight_kg), ("height_m", height_m), ("sex", sex))
               if value is None or (isinstance(value, float) and not math.isfinite(value)) or value == ""]
    if missing:
        return math.nan, "", (f"the table holds SUVbw without {', '.join(missing)}, and PERCIST's 0.8 SUL-unit rule "
                              f"needs SUL (lean body mass); {HOW_TO_SUL}")
    sex_text = str(sex).strip().upper()
    if sex_text not in body.SEXES or not (weight_kg > 0 and 0.5 <= height_m <= 2.5):
        return math.nan, "", (f"weight {weight_kg:g} kg, height {height_m:g} m, sex {printable(sex)!r} do not give a "
                              f"lean body mass (height in metres, sex M, F or O); {HOW_TO_SUL}")
    lbm = body.lbm_janmahasatian_kg(weight_kg, height_m * 100.0, sex_text)
    return lbm / weight_kg, "Janmahasatian", ""


def _fmt(value: float, digits: int = 2) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


# -- reading the frames -------------------------------------------------------------------------------------------

def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else
                             schema.clean_label(v))


def _labels(frame: pd.DataFrame, name: str) -> List[str]:
    if "table_row" in frame:
        return [str(v) for v in frame["table_row"]]
    return [f"{name} line {i + 2}" for i in range(len(frame))]


def _numbers(frame: pd.DataFrame, columns: Iterable[str], labels: Sequence[str]) -> Dict[str, np.ndarray]:
    """The numeric columns as float arrays (empty cells NaN); text that is not a number is refused."""
    out: Dict[str, np.ndarray] = {}
    for column in columns:
        if column not in frame:
            out[column] = np.full(len(frame), np.nan)
            continue
        values = np.full(len(frame), np.nan)
        for i, cell in enumerate(frame[column].tolist()):
            if cell is None or (isinstance(cell, str) and not cell.strip()):
                continue
            try:
                values[i] = float(cell)
            except (TypeError, ValueError):
                raise FollowUpError(f"{labels[i]}: column {column} is {printable(cell)!r}, not a number; correct the "
                                    "cell or leave it empty.") from None
        out[column] = values
    return out


def _check_columns(frame: pd.DataFrame, required: Sequence[str], name: str, what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FollowUpError(f"The {name} lacks the column(s) {', '.join(missing)}; {what}")


def order_time_points(reads: Sequence[Dict[str, Any]], where: str) -> List[Dict[str, Any]]:
    """The reads of one series in time order (the rule of the module docstring).

    Parameters
    ----------
    reads : sequence of dict
        One per session: ``session_id``, ``time_point`` (label, '' = baseline) and ``days_from_baseline``
        (days or None).
    where : str
        The series, as messages name it.

    Raises
    ------
    FollowUpRefusal
        Two sessions at one time point (the same label, or the same day without labels that order them), days
        and labels that contradict each other, or a session without days whose label is not an ordered one.
    """
    reads = list(reads)
    by_label: Dict[str, List[str]] = {}
    for r in reads:
        by_label.setdefault((r["time_point"] or schema.BASELINE).lower(), []).append(r["session_id"])
    for label, sessions in by_label.items():
        if len(sessions) > 1:
            raise FollowUpRefusal(f"{where}: sessions {', '.join(printable(s) for s in sorted(sessions))} are all time "
                                  f"point {printable(label)} (an empty time_point is the baseline); give each session "
                                  "its own time_point (baseline, FU1, FU2...) and days_from_baseline in the study table "
                                  "(netpet quantify's manifest columns of those names).")
    ranks = {r["session_id"]: schema.time_point_rank(r["time_point"]) for r in reads}
    all_days = all(r["days_from_baseline"] is not None for r in reads)
    all_ranks = all(v is not None for v in ranks.values())
    if all_days:
        ordered = sorted(reads, key=lambda r: (r["days_from_baseline"], ranks[r["session_id"]] if all_ranks else 0))
        for a, b in zip(ordered, ordered[1:]):
            if a["days_from_baseline"] == b["days_from_baseline"] and not all_ranks:
                raise FollowUpRefusal(f"{where}: sessions {printable(a['session_id'])} and {printable(b['session_id'])} "
                                      f"are both on day {a['days_from_baseline']:g}, and their time points "
                                      f"({printable(a['time_point'] or schema.BASELINE)}, "
                                      f"{printable(b['time_point'] or schema.BASELINE)}) do not say which came first; "
                                      "give them ordered labels (baseline, FU1, FU2...) or different days.")
    elif all_ranks:
        ordered = sorted(reads, key=lambda r: ranks[r["session_id"]])
    else:
        bad = [r for r in reads if r["days_from_baseline"] is None and ranks[r["session_id"]] is None]
        r = bad[0]
        raise FollowUpRefusal(f"{where}: session {printable(r['session_id'])} (time point "
                              f"{printable(r['time_point'])!r}) has no days_from_baseline and its time point is not an "
                              "ordered label (baseline, FU1, FU2...), so its place in time would be a guess; give "
                              "days_from_baseline for every session of the patient, or ordered labels.")
    if all_ranks:  # days and labels must tell the same order
        for a, b in zip(ordered, ordered[1:]):
            if ranks[a["session_id"]] > ranks[b["session_id"]] or (
                    a["days_from_baseline"] is not None and b["days_from_baseline"] is not None
                    and ranks[a["session_id"]] < ranks[b["session_id"]]
                    and a["days_from_baseline"] > b["days_from_baseline"]):
                raise FollowUpRefusal(f"{where}: time point {printable(a['time_point'] or schema.BASELINE)} (session "
                                      f"{printable(a['session_id'])}, day {_day(a)}) and "
                                      f"{printable(b['time_point'] or schema.BASELINE)} (session "
                                      f"{printable(b['session_id'])}, day {_day(b)}) contradict each other; correct "
                                      "time_point or days_from_baseline in the study table.")
        known = [r for r in ordered if r["days_from_baseline"] is not None]
        for a, b in zip(known, known[1:]):
            if a["days_from_baseline"] > b["days_from_baseline"]:
                raise FollowUpRefusal(f"{where}: time point {printable(a['time_point'] or schema.BASELINE)} is on day "
                                      f"{_day(a)}, after {printable(b['time_point'] or schema.BASELINE)} on day {_day(b)}; "
                                      "correct time_point or days_from_baseline in the study table.")
    return ordered


def _day(read: Dict[str, Any]) -> str:
    return "?" if read["days_from_baseline"] is None else f"{read['days_from_baseline']:g}"


@dataclass
class _Read:
    key: Tuple[str, ...]
    session_id: str
    time_point: str
    days: Optional[float]
    label: str
    findings: Dict[str, int] = field(default_factory=dict)  # track -> row index of the table
    missed: Dict[str, str] = field(default_factory=dict)  # track -> reference lesion id
    suv_type: str = ""
    weight_kg: float = math.nan
    height_m: float = math.nan
    sex: str = ""
    liver_mean: float = math.nan
    liver_sd: float = math.nan
    notes: List[str] = field(default_factory=list)


def _read_constant(values: Sequence[Any], rows: Sequence[int], labels: Sequence[str], column: str, numeric: bool):
    """The one value of a session's rows (empty cells ignored); two values refused."""
    seen: Dict[Any, int] = {}
    for i in rows:
        value = values[i]
        if value is None or value == "" or (numeric and not math.isfinite(value)):
            continue
        if numeric:
            value = float(value)
        seen.setdefault(value, i)
    if len(seen) > 1:
        (a, i), (b, j) = list(seen.items())[:2]
        raise FollowUpError(f"{labels[i]} and {labels[j]}: column {column} of one session differs ({printable(a)!r}, "
                            f"{printable(b)!r}); give the session one {column}.")
    return next(iter(seen)) if seen else (math.nan if numeric else "")


def _prepare(table: pd.DataFrame, correspondence: pd.DataFrame, table_name: str, correspondence_name: str):
    """Check both frames and build the reads of every series: {series key: [_Read in time order]}."""
    _check_columns(table, TABLE_REQUIRED, table_name, "export lesions with netpet quantify (or SUVQuant) first.")
    _check_columns(correspondence, CORRESPONDENCE_REQUIRED, correspondence_name,
                   "write it with netpet match (columns " + ", ".join(CORRESPONDENCE_REQUIRED) + ").")
    table = table.reset_index(drop=True)
    correspondence = correspondence.reset_index(drop=True)
    labels = _labels(table, table_name)
    corr_labels = _labels(correspondence, correspondence_name)
    text = {c: _text(table, c).tolist() for c in (*schema.KEY, "time_point", "call", "region", "segmentation_status",
                                                  "suv_type", "sex")}
    numbers = _numbers(table, ("suv_max", "suv_peak", "suv_mean", "mtv_ml", "tl_ratio", "liver_suv_mean",
                               "liver_suv_sd", "suv_weight_kg", "height_m"), labels)
    days: List[Optional[float]] = []
    for i, cell in enumerate(table["days_from_baseline"].tolist() if "days_from_baseline" in table else [None] * len(table)):
        try:
            days.append(schema.check_days_from_baseline(cell, f"{labels[i]}: "))
        except schema.SchemaError as exc:
            raise FollowUpError(str(exc)) from None
    for i, value in enumerate(text["time_point"]):
        try:
            schema.check_time_point(table["time_point"].iloc[i] if "time_point" in table else "", f"{labels[i]}: ")
        except schema.SchemaError as exc:
            raise FollowUpError(str(exc)) from None
    rows_of: Dict[Tuple[str, ...], List[int]] = {}
    for i in range(len(table)):
        rows_of.setdefault(tuple(text[c][i] for c in READ), []).append(i)
    reads: Dict[Tuple[str, ...], _Read] = {}
    finding_at: Dict[Tuple[str, ...], int] = {}  # read key + lesion id -> table row
    for key, rows in rows_of.items():
        where = f"patient {printable(key[0])} session {printable(key[1])}"
        read = _Read(key, key[1], _read_constant(text["time_point"], rows, labels, "time_point", False),
                     None, where)
        day = _read_constant([d if d is not None else math.nan for d in days], rows, labels, "days_from_baseline", True)
        read.days = None if not math.isfinite(day) else day
        read.suv_type = _read_constant(text["suv_type"], rows, labels, "suv_type", False)
        read.sex = _read_constant(text["sex"], rows, labels, "sex", False)
        read.weight_kg = _read_constant(numbers["suv_weight_kg"], rows, labels, "suv_weight_kg", True)
        read.height_m = _read_constant(numbers["height_m"], rows, labels, "height_m", True)
        means = {round(float(numbers["liver_suv_mean"][i]), 9) for i in rows if math.isfinite(numbers["liver_suv_mean"][i])}
        first = next((i for i in rows if math.isfinite(numbers["liver_suv_mean"][i])), None)
        if first is not None:
            read.liver_mean, read.liver_sd = float(numbers["liver_suv_mean"][first]), float(numbers["liver_suv_sd"][first])
            if len(means) > 1:
                read.notes.append(f"{where}: its rows hold {len(means)} different liver references; the first "
                                  f"({labels[first]}) is used")
        reads[key] = read
        for i in rows:
            if text["lesion_id"][i]:
                finding_at[key + (text["lesion_id"][i],)] = i
    # the correspondence: one track per finding
    ctext = {c: _text(correspondence, c).tolist() for c in (*CORRESPONDENCE_REQUIRED, "reference_lesion_id",
                                                            "time_point")}
    warnings: List[str] = []
    track_of: Dict[Tuple[str, ...], Tuple[str, str, str, int]] = {}  # finding -> (track, status, reference, corr row)
    stale = 0
    for j in range(len(correspondence)):
        status = ctext["status"][j].lower()
        if status not in MATCH_STATUSES:
            raise FollowUpError(f"{corr_labels[j]}: status is {printable(ctext['status'][j])!r}; it must be one of "
                                f"{', '.join(MATCH_STATUSES)} (re-run netpet match, or correct the cell).")
        key = tuple(ctext[c][j] for c in READ)
        track = ctext["track_id"][j]
        lesion = ctext["lesion_id"][j]
        if not track:
            what = f"finding {printable(lesion)}" if lesion else "a missed reference lesion"
            raise FollowUpError(f"{corr_labels[j]}: {what} of patient {printable(key[0])} session {printable(key[1])} "
                                "has an empty track_id; re-run netpet match, or fill in the track.")
        if key not in reads:
            stale += 1
            continue
        if status == "confirmed" and not lesion:  # a person confirmed that the read has no finding of the lesion
            status = "missed"
        if status == "missed":
            if lesion:
                raise FollowUpError(f"{corr_labels[j]}: a missed row names the finding {printable(lesion)}; a missed "
                                    "row is a reference lesion without finding (empty lesion_id): correct the row.")
            reads[key].missed[track] = ctext["reference_lesion_id"][j] or track
            continue
        if not lesion:
            raise FollowUpError(f"{corr_labels[j]}: a row with status {status} has an empty lesion_id; re-run netpet "
                                "match, or correct the row.")
        finding = key + (lesion,)
        if finding not in finding_at:
            stale += 1
            continue
        if finding in track_of:
            raise FollowUpError(f"{corr_labels[track_of[finding][3]]} and {corr_labels[j]} both give finding "
                                f"{printable(lesion)} of patient {printable(key[0])} session {printable(key[1])} reader "
                                f"{printable(key[4])}; keep one row per finding.")
        other = next((f for f, t in track_of.items() if f[:5] == key and t[0] == track), None)
        if other is not None:
            raise FollowUpError(f"{corr_labels[track_of[other][3]]} and {corr_labels[j]}: findings "
                                f"{printable(other[5])} and {printable(lesion)} of patient {printable(key[0])} session "
                                f"{printable(key[1])} reader {printable(key[4])} are both track {printable(track)}; a "
                                "track is one lesion, found once per session: correct the correspondence.")
        track_of[finding] = (track, status, ctext["reference_lesion_id"][j], j)
        given = ctext["time_point"][j]
        if given and given.lower() != (reads[key].time_point or schema.BASELINE).lower():
            reads[key].notes.append(f"{corr_labels[j]} says time point {printable(given)}, the study table "
                                    f"{printable(reads[key].time_point or schema.BASELINE)}; the table's is used")
    if stale:
        warnings.append(f"{stale} row(s) of the {correspondence_name} name findings or sessions the {table_name} does "
                        "not hold (a correspondence older than the table?): left out; re-run netpet match.")
    for finding, i in finding_at.items():
        if finding not in track_of:
            raise FollowUpError(f"{labels[i]}: finding {printable(finding[5])} of patient {printable(finding[0])} "
                                f"session {printable(finding[1])} reader {printable(finding[4])} has no row in the "
                                f"{correspondence_name}; run netpet match again on this table, so that every finding "
                                "has a track.")
        reads[finding[:5]].findings[track_of[finding][0]] = i
    series: Dict[Tuple[str, ...], List[_Read]] = {}
    for key, read in reads.items():
        series.setdefault((key[0], key[2], key[3], key[4]), []).append(read)
    ordered: Dict[Tuple[str, ...], List[_Read]] = {}
    for skey, members in sorted(series.items()):
        where = (f"patient {printable(skey[0])} ({printable(skey[2])} {printable(skey[1])}, reader "
                 f"{printable(skey[3])})")
        info = [{"session_id": r.session_id, "time_point": r.time_point, "days_from_baseline": r.days, "read": r}
                for r in members]
        ordered[skey] = [d["read"] for d in order_time_points(info, where)]
    match_info = {f: t for f, t in track_of.items()}
    return table, text, numbers, ordered, match_info, warnings


# -- per lesion -------------------------------------------------------------------------------------------------

def _lesion_rows(skey, reads: List[_Read], text, numbers, match_info) -> List[Dict[str, Any]]:
    tracks: List[str] = []
    for read in reads:
        tracks.extend(t for t in read.findings if t not in tracks)
    rows: List[Dict[str, Any]] = []
    for track in sorted(tracks):
        present = [track in r.findings for r in reads]
        first = present.index(True)
        first_values: Dict[str, float] = {}
        previous_values: Optional[Dict[str, float]] = None
        for k in range(first, len(reads)):
            read = reads[k]
            row: Dict[str, Any] = {"patient_id": skey[0], "modality": skey[1], "tracer": skey[2], "reader": skey[3],
                                   "track_id": track, "time_index": k, "time_point": read.time_point or schema.BASELINE,
                                   "days_from_baseline": read.days if read.days is not None else math.nan,
                                   "session_id": read.session_id,
                                   "previous_time_point": (reads[k - 1].time_point or schema.BASELINE) if k else ""}
            flags: List[str] = []
            notes: List[str] = []
            if present[k]:
                i = read.findings[track]
                match = match_info[read.key + (text["lesion_id"][i],)]
                values = {m: float(numbers[m][i]) for m in (*MEASURES, "suv_mean")}
                separable = text["segmentation_status"][i].lower().replace("-", " ") != NOT_SEPARABLE
                if not separable:
                    values["mtv_ml"] = values["suv_mean"] = math.nan
                    flags.append("not-separable")
                    notes.append("not separable from its surroundings: no volume (MTV, SUVmean, TL-SSTR left empty); "
                                 "SUVmax and SUVpeak are of the 1 mL sphere at the click")
                if match[1] == "ambiguous":
                    flags.append("ambiguous-match")
                    notes.append("ambiguous match: another candidate lies near; confirm it (netpet match, status "
                                 "confirmed)")
                elif match[1] == "unmatched" or not match[2]:  # a confirmed row without reference: a false positive
                    flags.append("no-reference-lesion")
                    notes.append("matched to no reference lesion (a false positive by the reference standard)")
                if k == 0:
                    status = "baseline"
                elif present[k - 1]:
                    status = "persisting"
                else:
                    status = "new"
                    if k > first:
                        seen = reads[max(j for j in range(k) if present[j])].time_point or schema.BASELINE
                        notes.append(f"seen at {seen} and absent at {reads[k - 1].time_point or schema.BASELINE}: a "
                                     "recurrence of that lesion")
                row.update({"lesion_id": text["lesion_id"][i], "reference_lesion_id": match[2], "match_status": match[1],
                            "status": status, "call": text["call"][i], "region": text["region"][i],
                            "segmentation_status": text["segmentation_status"][i], **values})
                if k == first:
                    first_values = values
                for m in MEASURES:
                    if previous_values is not None:
                        row[f"{m}_change"], row[f"{m}_change_pct"] = change(previous_values[m], values[m])
                    if k > first:
                        row[f"{m}_change_from_first"], row[f"{m}_change_from_first_pct"] = change(first_values[m],
                                                                                                  values[m])
                earlier = [first_values] + ([previous_values] if previous_values is not None else [])
                if k > first and not all(math.isfinite(v["mtv_ml"]) for v in (values, *earlier)):
                    notes.append("MTV change not computed where a time point has no volume (not separable)")
                previous_values = values
            else:
                status = "disappeared" if present[k - 1] else "absent"
                row.update({"lesion_id": "", "reference_lesion_id": read.missed.get(track, ""),
                            "match_status": "missed" if track in read.missed else "", "status": status})
                if status == "disappeared":
                    if track in read.missed:
                        flags.append("missed")
                        notes.append(f"the reference standard holds this lesion at "
                                     f"{read.time_point or schema.BASELINE} (a missed row of the correspondence): not "
                                     "found by the reader, a false negative rather than a response")
                    else:
                        notes.append(f"no finding of this lesion in session {read.session_id}, which was read")
                previous_values = None
            row["flags"] = ";".join(dict.fromkeys(flags))
            row["warnings"] = " | ".join(notes)
            rows.append(row)
    return rows


def lesion_changes(table: pd.DataFrame, correspondence: pd.DataFrame, table_name: str = "study table",
                   correspondence_name: str = "correspondence") -> pd.DataFrame:
    """Per lesion track and time point: values, changes and status (:data:`LESION_COLUMNS`; module docstring).

    Parameters
    ----------
    table : DataFrame
        The study table (text or numbers; :data:`TABLE_REQUIRED` columns, ``time_point`` and
        ``days_from_baseline`` optional; a ``table_row`` column, as :func:`netpet.stats.data.read_table` gives,
        names rows in messages).
    correspondence : DataFrame
        The correspondence of ``netpet match`` (:data:`CORRESPONDENCE_REQUIRED` columns).
    table_name, correspondence_name : str
        How messages name the two inputs (their file names).

    Returns
    -------
    DataFrame
        Values in SUV, mL and ratio (T/L); changes absolute (same units) and in %.

    Raises
    ------
    FollowUpError, FollowUpRefusal
        See :func:`follow_up`.
    """
    return follow_up(table, correspondence, table_name, correspondence_name).lesions


# -- per patient --------------------------------------------------------------------------------------------------

def _sstr_burden(read: _Read, text, numbers) -> Dict[str, Any]:
    """SSTR-TV (mL) and TL-SSTR (SUV x mL) of a read's positive findings, with the count of those without volume."""
    volume = expression = 0.0
    lesions = without = 0
    for track, i in read.findings.items():
        if text["call"][i].lower() != "positive":
            continue
        lesions += 1
        mtv, mean = float(numbers["mtv_ml"][i]), float(numbers["suv_mean"][i])
        if text["segmentation_status"][i].lower().replace("-", " ") == NOT_SEPARABLE or not (
                math.isfinite(mtv) and math.isfinite(mean)):
            without += 1
            continue
        volume += mtv
        expression += mtv * mean
    return {"sstr_tv_ml": volume, "tl_sstr": expression, "sstr_lesions": lesions, "sstr_lesions_without_volume": without}


def percist(baseline: Dict[str, Any], follow: Dict[str, Any], new_avid: Sequence[str] = ()) -> Dict[str, Any]:
    """The PERCIST 1.0 category of a follow-up scan against its baseline (rules of the module docstring).

    Parameters
    ----------
    baseline, follow : dict
        Each scan: ``factor`` (SUV -> SUL, NaN when unknown), ``factor_reason`` (why unknown), ``formula`` (the
        LBM formula), ``liver_mean`` and ``liver_sd`` (SUV), ``peaks`` ({track: SUVpeak}, every finding of the
        scan).
    new_avid : sequence of str
        Tracks present at follow-up, absent at baseline, with a positive call (new FDG-avid lesions).

    Returns
    -------
    dict
        ``percist`` (:data:`PERCIST_CATEGORIES`), ``percist_reason`` (one sentence), the SUL values used
        (``liver_sul_mean``, ``target_sul_peak``, ``sul_peak_change`` [SUL], ``sul_peak_change_pct`` [%]...),
        ``liver_comparable`` and ``warnings`` (a list).
    """
    out: Dict[str, Any] = {"new_avid_lesions": ";".join(new_avid), "warnings": []}
    new_text = (f"new FDG-avid lesion(s) {', '.join(new_avid)} (PERCIST: a new lesion typical of cancer is PMD; "
                "confirm it is not infection or a treatment effect)") if new_avid else ""
    reasons: List[str] = []
    for scan, name in ((baseline, "baseline"), (follow, "follow-up")):
        if not math.isfinite(scan.get("factor", math.nan)):
            reasons.append(f"{name}: {scan.get('factor_reason') or 'no SUL'}")
        elif not math.isfinite(scan.get("liver_mean", math.nan)):
            reasons.append(f"{name}: no liver reference (liver_suv_mean is empty)")
        elif name == "baseline" and not math.isfinite(scan.get("liver_sd", math.nan)):
            reasons.append("baseline: no liver SD (liver_suv_sd is empty), which the measurability threshold needs")
        unmeasured = sorted(t for t, v in scan.get("peaks", {}).items() if not math.isfinite(v))
        if unmeasured:
            reasons.append(f"{name}: lesion(s) {', '.join(unmeasured)} have no SUVpeak (suv_peak is empty)")
    if not reasons and baseline["formula"] != follow["formula"]:
        reasons.append(f"the scans use different lean-body-mass formulas ({baseline['formula']}, {follow['formula']}); "
                       "quantify both with the same --type")
    if reasons:
        if new_avid:
            return {**out, "percist": "PMD", "percist_reason": f"{new_text}; SULpeak not assessed: {'; '.join(reasons)}"}
        return {**out, "percist": "not assessable", "percist_reason": "; ".join(reasons)}
    b_liver, b_sd = baseline["liver_mean"] * baseline["factor"], baseline["liver_sd"] * baseline["factor"]
    f_liver = follow["liver_mean"] * follow["factor"]
    threshold = MEASURABLE_LIVER_FACTOR * b_liver + MEASURABLE_LIVER_SDS * b_sd
    b_peaks = {t: v * baseline["factor"] for t, v in baseline["peaks"].items() if math.isfinite(v)}
    f_peaks = {t: v * follow["factor"] for t, v in follow["peaks"].items() if math.isfinite(v)}
    liver_change, liver_pct = change(b_liver, f_liver)
    comparable = (abs(liver_change) <= LIVER_ABSOLUTE_SUL + ROUNDING
                  and abs(liver_pct) <= 100 * LIVER_RELATIVE + ROUNDING)
    out.update({"sul_formula": follow["formula"], "liver_sul_mean": f_liver, "liver_sul_sd": follow["liver_sd"] *
                follow["factor"], "measurable_threshold_sul": threshold, "liver_sul_change": liver_change,
                "liver_sul_change_pct": liver_pct, "liver_comparable": comparable})
    if not comparable:
        out["warnings"].append(f"liver SULmean {_fmt(b_liver)} at baseline, {_fmt(f_liver)} now ({liver_change:+.2f} SUL, "
                               f"{liver_pct:+.0f} %): beyond PERCIST's {100 * LIVER_RELATIVE:.0f} % and "
                               f"{LIVER_ABSOLUTE_SUL} SUL units, the scans may not be comparable (uptake time, scanner, "
                               "reconstruction, liver disease)")
    b_target = max(b_peaks, key=lambda t: (b_peaks[t], t)) if b_peaks else ""
    f_target = max(f_peaks, key=lambda t: (f_peaks[t], t)) if f_peaks else ""
    b_value = b_peaks.get(b_target, math.nan)
    f_value = f_peaks.get(f_target, 0.0 if not f_peaks else math.nan)
    delta, pct = change(b_value, f_value)
    out.update({"baseline_target_track_id": b_target, "baseline_target_sul_peak": b_value, "target_track_id": f_target,
                "target_sul_peak": f_value if f_peaks else math.nan, "sul_peak_change": delta, "sul_peak_change_pct": pct})
    if new_avid:
        return {**out, "percist": "PMD", "percist_reason": new_text}
    if not b_peaks or b_value < threshold - ROUNDING:
        hottest = f"the hottest SULpeak {_fmt(b_value)}" if b_peaks else "no finding"
        return {**out, "percist": "not assessable",
                "percist_reason": f"no measurable lesion at baseline: {hottest} < {_fmt(threshold)} (1.5 x liver SULmean "
                                  f"{_fmt(b_liver)} + 2 x SD {_fmt(b_sd)})"}
    if f_target and f_target != b_target:
        out["warnings"].append(f"the hottest lesion is {f_target} now, {b_target} at baseline (PERCIST compares the "
                               "hottest lesion of each scan)")
    rise = delta > PERCIST_ABSOLUTE_SUL + ROUNDING and pct > 100 * PERCIST_RELATIVE + ROUNDING
    change_text = (f"target SULpeak {_fmt(b_value)} -> {_fmt(f_value)} ({delta:+.2f} SUL, {pct:+.1f} %)")
    if rise:
        return {**out, "percist": "PMD", "percist_reason": f"{change_text}: a rise of more than 30 % and 0.8 SUL units"}
    if all(v <= f_liver + ROUNDING for v in f_peaks.values()):
        what = ("no finding" if not f_peaks else
                f"every finding's SULpeak (hottest {_fmt(f_value)}) <= the liver SULmean {_fmt(f_liver)}")
        return {**out, "percist": "CMR", "percist_reason": f"{what}, no new lesion"}
    fall = delta <= -PERCIST_ABSOLUTE_SUL + ROUNDING and pct <= -100 * PERCIST_RELATIVE + ROUNDING
    if fall:
        risen = [t for t in f_peaks if t in b_peaks and change(b_peaks[t], f_peaks[t])[0] > PERCIST_ABSOLUTE_SUL + ROUNDING
                 and change(b_peaks[t], f_peaks[t])[1] > 100 * PERCIST_RELATIVE + ROUNDING]
        if not risen:
            return {**out, "percist": "PMR", "percist_reason": f"{change_text}: a fall of at least 30 % and 0.8 SUL "
                                                               "units, no other lesion rising, no new lesion"}
        return {**out, "percist": "SMD",
                "percist_reason": f"{change_text}, but lesion(s) {', '.join(sorted(risen))} rose by more than 30 % and "
                                  "0.8 SUL units, which PMR excludes (a reader may judge it unequivocal progression)"}
    return {**out, "percist": "SMD", "percist_reason": f"{change_text}: neither PMR nor PMD nor CMR"}


def _scan(read: _Read, text, numbers) -> Dict[str, Any]:
    factor, formula, reason = sul_factor(read.suv_type, read.weight_kg if math.isfinite(read.weight_kg) else None,
                                         read.height_m if math.isfinite(read.height_m) else None, read.sex or None)
    return {"factor": factor, "formula": formula, "factor_reason": reason, "liver_mean": read.liver_mean,
            "liver_sd": read.liver_sd, "peaks": {t: float(numbers["suv_peak"][i]) for t, i in read.findings.items()}}


def _patient_rows(skey, reads: List[_Read], lesions: pd.DataFrame, text, numbers) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    sstr = skey[2].lower() in SSTR_TRACERS
    fdg = skey[2].lower() in FDG_TRACERS
    burdens = [_sstr_burden(r, text, numbers) if sstr else None for r in reads]
    base_scan = _scan(reads[0], text, numbers) if fdg else None
    for k, read in enumerate(reads):
        mine = lesions[lesions["time_index"] == k] if len(lesions) else lesions
        notes = list(read.notes)
        status = mine["status"].tolist() if len(mine) else []
        row: Dict[str, Any] = {
            "patient_id": skey[0], "modality": skey[1], "tracer": skey[2], "reader": skey[3], "time_index": k,
            "time_point": read.time_point or schema.BASELINE,
            "days_from_baseline": read.days if read.days is not None else math.nan, "session_id": read.session_id,
            "n_lesions": len(read.findings),
            "n_positive": sum(text["call"][i].lower() == "positive" for i in read.findings.values()),
            "n_new": status.count("new"), "n_disappeared": status.count("disappeared"),
            "n_persisting": status.count("persisting"),
        }
        missed = [t for t, s in zip(mine["track_id"], status) if s == "disappeared"] if len(mine) else []
        missed = [t for t in missed if t in read.missed]
        if missed:
            notes.append(f"{len(missed)} disappeared lesion(s) ({', '.join(missed)}) are still in the reference standard "
                         "at this time point (missed by the reader)")
        if sstr:
            burden = burdens[k]
            row.update(burden)
            equivocal = sum(text["call"][i].lower() == "equivocal" for i in read.findings.values())
            if equivocal:
                notes.append(f"{equivocal} equivocal finding(s) left out of SSTR-TV and TL-SSTR (positive calls only)")
            if burden["sstr_lesions_without_volume"]:
                notes.append(f"SSTR-TV and TL-SSTR are lower bounds: {burden['sstr_lesions_without_volume']} positive "
                             "lesion(s) without a volume (not separable); their changes are left empty")
            # a persisting lesion whose call crosses "positive" enters or leaves the sums whole: the change is then one
            # of calls (a borderline lesion read equivocal once and positive once), not only of size; said, per step
            for j in sorted({k - 1, 0}) if k else ():
                earlier = reads[j]
                both = set(earlier.findings) & set(read.findings)
                was = {t for t in both if text["call"][earlier.findings[t]].lower() == "positive"}
                now = {t for t in both if text["call"][read.findings[t]].lower() == "positive"}
                entered, left = sorted(now - was), sorted(was - now)
                if entered or left:
                    parts = ([f"{', '.join(entered)} now positive"] if entered else []) + (
                        [f"{', '.join(left)} no longer positive"] if left else [])
                    notes.append(f"since {earlier.time_point or schema.BASELINE}, the SSTR-TV and TL-SSTR change includes "
                                 f"persisting lesion(s) whose call changed ({'; '.join(parts)}): they enter or leave the "
                                 "sums whole, so part of the change is a change of call, not of tumour")
            for suffix, other in (("", burdens[k - 1] if k else None), ("_from_baseline", burdens[0] if k else None)):
                if other is None:
                    continue
                complete = not (other["sstr_lesions_without_volume"] or burden["sstr_lesions_without_volume"])
                tv = change(other["sstr_tv_ml"], burden["sstr_tv_ml"]) if complete else (math.nan, math.nan)
                tl = change(other["tl_sstr"], burden["tl_sstr"]) if complete else (math.nan, math.nan)
                row[f"sstr_tv_change{suffix}_ml"], row[f"sstr_tv_change{suffix}_pct"] = tv
                row[f"tl_sstr_change{suffix}"], row[f"tl_sstr_change{suffix}_pct"] = tl
        if fdg:
            scan = _scan(read, text, numbers)
            if k == 0:
                row["percist"] = "baseline"
                if math.isfinite(scan["factor"]) and math.isfinite(read.liver_mean) and math.isfinite(read.liver_sd):
                    liver, sd = read.liver_mean * scan["factor"], read.liver_sd * scan["factor"]
                    threshold = MEASURABLE_LIVER_FACTOR * liver + MEASURABLE_LIVER_SDS * sd
                    peaks = {t: v * scan["factor"] for t, v in scan["peaks"].items() if math.isfinite(v)}
                    target = max(peaks, key=lambda t: (peaks[t], t)) if peaks else ""
                    measurable = bool(peaks) and peaks[target] >= threshold - ROUNDING
                    row.update({"sul_formula": scan["formula"], "liver_sul_mean": liver, "liver_sul_sd": sd,
                                "measurable_threshold_sul": threshold, "target_track_id": target,
                                "target_sul_peak": peaks.get(target, math.nan),
                                "percist_reason": ("measurable" if measurable else
                                                   "no measurable lesion (SULpeak >= 1.5 x liver SULmean + 2 SD)")})
                else:
                    row["percist_reason"] = "; ".join(filter(None, [scan["factor_reason"], "" if math.isfinite(
                        read.liver_mean) else "no liver reference"]))
            else:
                new_avid = sorted(t for t, s in zip(mine["track_id"], mine["status"])
                                  if t not in reads[0].findings and s in ("new", "persisting")
                                  and text["call"][read.findings[t]].lower() == "positive") if len(mine) else []
                result = percist(base_scan, scan, new_avid)
                notes.extend(result.pop("warnings"))
                row.update(result)
                notes.append(PERCIST_NOT_APPLIED)
        row["warnings"] = " | ".join(notes)
        rows.append(row)
    return rows


def patient_response(table: pd.DataFrame, correspondence: pd.DataFrame, table_name: str = "study table",
                     correspondence_name: str = "correspondence") -> pd.DataFrame:
    """Per patient, series and time point: lesion counts, SSTR-TV (mL), TL-SSTR (SUV x mL) and their changes
    (absolute and %), and for FDG the PERCIST 1.0 category (:data:`PATIENT_COLUMNS`; module docstring).
    Parameters and errors as :func:`lesion_changes`."""
    return follow_up(table, correspondence, table_name, correspondence_name).patients


def follow_up(table: pd.DataFrame, correspondence: pd.DataFrame, table_name: str = "study table",
              correspondence_name: str = "correspondence") -> FollowUp:
    """Both results of the follow-up at once (:func:`lesion_changes`, :func:`patient_response`).

    Raises
    ------
    FollowUpError
        A column missing from either frame, a cell that is not a number, a session with two time points or
        liver references..., a finding without a track (or with two), two findings of one session on one track,
        an unknown correspondence status: one sentence naming the row and what to do.
    FollowUpRefusal
        The time points of a series cannot be ordered without guessing (:func:`order_time_points`).
    """
    table, text, numbers, series, match_info, warnings = _prepare(table, correspondence, table_name,
                                                                  correspondence_name)
    lesion_rows: List[Dict[str, Any]] = []
    patient_rows: List[Dict[str, Any]] = []
    for skey, reads in series.items():
        mine = _lesion_rows(skey, reads, text, numbers, match_info)
        lesion_rows.extend(mine)
        frame = pd.DataFrame(mine, columns=list(LESION_COLUMNS))
        patient_rows.extend(_patient_rows(skey, reads, frame, text, numbers))
    lesions = pd.DataFrame(lesion_rows, columns=list(LESION_COLUMNS))
    patients = pd.DataFrame(patient_rows, columns=list(PATIENT_COLUMNS))
    return FollowUp(lesions, patients, warnings)


def _cell(value: Any) -> str:
    from netpet.quant.table import escape_cell

    if value is None:
        return ""
    if isinstance(value, (bool,)) or type(value).__name__ == "bool_":
        return "true" if value else "false"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return "" if not math.isfinite(float(value)) else f"{float(value):.10g}"
    return escape_cell(str(value))  # a cell a spreadsheet would run as a formula gets a leading quote


def write_table(path: str, frame: pd.DataFrame) -> None:
    """Write a follow-up frame (``lesion_changes.csv``, ``patient_response.csv``) as CSV, atomically
    (:func:`netpet.quant.table.replace_atomically`); cells that a spreadsheet would run as formulas are quoted as in
    the study table; NaN and infinity are written as empty cells. Used by ``netpet followup``, StudyStats and the demo.

    Raises
    ------
    NetpetError
        The file cannot be written (it is left as it was).
    """
    from netpet.quant.table import replace_atomically

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(list(frame.columns))
            for row in frame.itertuples(index=False):
                writer.writerow([_cell(v) for v in row])

    replace_atomically(path, write, suffix=".csv", what="follow-up table", error=NetpetError)
