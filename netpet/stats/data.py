"""StudyStats inputs: the study table and the reference standard, checked and joined into units.

The reference standard (CSV) has the columns ``patient_id, lesion_id, region, truth, standard``
(more columns are kept and can be grouped by). A row is

* a lesion: ``lesion_id`` given; its ``truth`` is 1 (malignant) or 0 (benign);
* a region of a patient: ``lesion_id`` empty, ``region`` given: the region's truth when the
  lesions do not tell it (e.g. a region proven free of disease, or involved without a lesion id);
* a patient: ``lesion_id`` and ``region`` empty: a patient without lesions (truth 0) or a
  patient's overall truth.

Optional columns with a meaning of their own:

* ``site`` (the anatomical site; for a lymph node its nodal station) and ``primary`` (the
  patient's primary site; one per patient: given on any of its rows, never two different ones)
  are kept like other extra columns and can be grouped by (``primary`` is a patient-level value);
* :data:`LOCATION_COLUMNS` (``location_session, center_r, center_a, center_s, diameter_mm``: the
  lesion's place in one session, for ``netpet match``) are kept but are no groups;
* ``time_point``: the time point the row's truth applies to; empty is every time point. The key of
  a lesion is then (patient_id, lesion_id, time_point), of a region row (patient_id, region,
  time_point), of a patient row (patient_id, time_point). Two rows of one key whose time points
  overlap (the same one, or one of them empty) are a duplicated key or a conflicting truth. A
  lesion new at a follow-up has a row for that time point only (it is no unit at baseline); a
  lesion that resolved has no row for the time points where it is gone.

``truth`` may be written 1/0, malignant/benign, true/false, positive/negative or yes/no.

Time points of the study table: an optional ``time_point`` column (empty = ``baseline``; ordered
baseline first, then by ``days_from_baseline`` when given, then as they come). When the table has
more than one, ``time_point`` joins the group keys (modality, tracer, reader, time_point): a
follow-up session of the same modality and tracer is a group of its own, and the units of a group
at a time point take the reference rows for that time point and those for every time point. A
table with a single time point (or without the column) is analysed exactly as before.

Correspondence (``netpet match``; :func:`read_correspondence`): without it every finding must
carry a lesion id of the reference standard. With it, findings keep the reader's own ids; a finding
whose status is ``matched``, ``ambiguous`` or ``confirmed`` joins the reference lesion named by
``reference_lesion_id``; an ``unmatched`` finding becomes a lesion of its own: one reference lesion
per (patient, track_id) with truth 0, standard :data:`UNMATCHED_STANDARD` and the region the table
gives its findings (at the time points where it was reported, when the table has several). An
unmatched finding is thus a false positive where it is called positive and, in the groups that did
not report it, a true negative, as any benign reference lesion is. Ambiguous matches are used as
proposed, counted, and listed in a warning that travels with the results; ``missed`` rows (a
reference lesion without finding) need nothing: a reference lesion without a finding in a group is
a negative call there anyway.

``truth`` may be written 1/0, malignant/benign, true/false, positive/negative or yes/no.

The study table has one row per lesion finding (netpet.quant.table); a row with an empty
``lesion_id`` records a session read without findings. Every finding must name a lesion of the
reference standard (a false positive is a reference lesion with truth 0).

The ``call`` of a finding is ``positive``, ``equivocal`` or ``negative`` (1/0, yes/no, true/false
and pos/neg are read too). Equivocal is uptake equal to the liver within its measurement noise
(Krenning 2); how it counts is the analysis's choice (``equivocal``: ``"negative"``, the study
protocol's "uptake above the liver is clearly positive", or ``"positive"``). The quality columns
NETPET writes (``segmentation_status``, ``flags``, ``warnings``) travel with each finding; a table
without them reads as if they were empty. A finding whose ``segmentation_status`` is
``not separable`` has no segmented volume: its volume-based values (:data:`VOLUME_SCORES`) are
set aside (NaN) even when the table holds numbers there, so no analysis uses them. A score that
reads as NaN or infinity, or as a number larger than :data:`SCORE_LIMIT`, is refused with its row
and column (the mark of a damaged conversion upstream); an empty cell or other text is no value.

The reader's own reading (issue 14; columns of :data:`netpet.schema.READER_COLUMNS`): a finding
whose ``finding_status`` is ``retracted`` stays in the table and is excluded from every analysis
(counted in a warning and in :attr:`Study.retracted`; a lesion whose only finding was retracted
is a lesion without a finding, a negative call). ``reader_call`` (positive, equivocal, negative)
and ``confidence`` (1 definitely benign ... 5 definitely malignant) are checked per row (a bad cell
is refused with its row and column) and carried by the units: a lesion carries its finding's
confidence; a patient (and a region) the highest confidence of its findings, the score of the
most suspicious finding as in patient-level reader ROC studies; a unit without a finding has
confidence 1 (definitely benign: nothing was reported there); a finding without a recorded
confidence has none (NaN). The call source (``call_source``) chooses each finding's call: the
SUV rule's ``call`` (default) or the reader's ``reader_call`` (then every active finding must have
one: the findings without are refused with their count and first rows, as no call can be guessed;
the ``call`` column is then not read). Equivocal counts as the ``equivocal`` rule says either way.

Indications and endpoints (optional reference-standard columns): ``indication`` is the patient's
(one of :data:`INDICATIONS`, case and spacing ignored, ``localization`` read as ``localisation``;
on any row of the patient, never two different; empty is NET staging) and ``culprit`` (1/0) marks
the lesion of a TIO localisation patient whose resection cures the osteomalacia (exactly one, with
truth 1). A file with a ``culprit`` column or at least one recognised indication declares
indications and every patient is judged by its indication's endpoint (:data:`ENDPOINTS`); a file
whose ``indication`` column holds other labels only (e.g. ``NET``, ``TIO`` of an earlier study)
keeps it as a plain column with a note, and the patient rule stays any positive finding. The
endpoints: a patient with disease is a true positive only when a lesion that makes it so is
called positive: its culprit for TIO localisation (El-Maouche et al., J Clin Endocrinol Metab
2016;101:3575-3581 and Bhavani et al., Clin Endocrinol 2016;84:134-140 count a patient as
localised only when the culprit is; a positive focus elsewhere is a false localisation), any of
its malignant lesions for NET staging, NET work-up and follow-up (detection with localisation,
the localisation-ROC convention of Starr et al., Radiology 1975;116:533-538: a positive call on a
benign lesion does not detect the disease; it is a false-positive finding at lesion level). A
patient without disease is a false positive when any finding is called positive. A patient whose
disease the reference gives only by a patient or region row is judged by any positive finding,
and a TIO patient at a time point without a culprit row (resected) by the NET staging rule.
Follow-up is detection of the disease present at the time point, judged as staging; response
categories are the follow-up module's. Lesion and region levels are the same for every
indication.

Units of analysis, per group (modality, tracer, reader and the user's group-by columns):

* patient: every patient with at least one row in the group; truth = any malignant lesion (or
  the patient row); call = any positive finding (equivocal findings count as the rule says), or
  the endpoint of its indication when the reference standard names indications (above);
* lesion: every reference lesion of those patients; a lesion without a finding in the group is a
  negative call there;
* region: every (patient, region) of those patients over the study's regions (all regions the
  reference standard names, or the list given); truth = any malignant lesion in it (or the region
  row); call = any positive finding in it.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from netpet.errors import printable
from netpet.quant.table import StudyTable, TableError
from netpet.schema import (KEY, SchemaError, check_confidence, check_finding_status, check_reader_call,
                           is_retracted)
from netpet.stats.intervals import StatsError

REFERENCE_REQUIRED = ("patient_id", "lesion_id", "region", "truth", "standard")
TABLE_REQUIRED = KEY + ("call",)  # the study table's key (netpet.schema) and the finding's call
GROUP_KEYS = ("modality", "tracer", "reader")
SCORES = ("suv_max", "suv_peak", "suv_mean", "tl_ratio", "tb_ratio", "mtv_ml", "tla", "liver_suv_mean", "krenning")
LEVELS = ("patient", "lesion", "region")
_TRUE = {"1", "malignant", "true", "positive", "yes", "pos", "y", "t"}
_FALSE = {"0", "benign", "false", "negative", "no", "neg", "n", "f"}
_CALL_TRUE = {"positive", "1", "pos", "true", "yes"}
_CALL_FALSE = {"negative", "0", "neg", "false", "no"}
_CALL_EQUIVOCAL = {"equivocal"}
#: how an equivocal call counts: negative (default: the protocol's "clearly positive") or positive
EQUIVOCAL_RULES = ("negative", "positive")
#: per-finding quality columns of the study table, carried to the units and the false findings
QUALITY_COLUMNS = ("segmentation_status", "flags", "warnings")
NOT_SEPARABLE = "not separable"
#: values that need a segmented volume: NaN for a finding that is not separable
VOLUME_SCORES = ("mtv_ml", "tla", "suv_mean")
#: the largest score magnitude read (far above any SUV, ratio, volume in mL or TLA; larger values, like inf and NaN,
#: are refused: they come from a damaged table and overflow the agreement statistics)
SCORE_LIMIT = 1e9
#: the reference standard's location of a lesion in one session (for netpet match; kept, never a group)
LOCATION_COLUMNS = ("location_session", "center_r", "center_a", "center_s", "diameter_mm")
#: the time-point column of the study table (empty = :data:`BASELINE`) and of the reference standard (empty = every
#: time point)
TIME_POINT = "time_point"
BASELINE = "baseline"
#: the columns of netpet match's correspondence table that StudyStats reads (it writes more: distance_mm, gate_mm,
#: registration_error_mm, via, candidates, note; those shown with ambiguous matches are read when present)
CORRESPONDENCE_REQUIRED = ("patient_id", "session_id", "modality", "tracer", "reader", "time_point", "lesion_id",
                           "reference_lesion_id", "track_id", "status")
CORRESPONDENCE_STATUSES = ("matched", "ambiguous", "confirmed", "unmatched", "missed")
#: statuses whose finding joins the reference lesion named by ``reference_lesion_id``
JOINED_STATUSES = ("matched", "ambiguous", "confirmed")
#: the ``standard`` of the reference lesion made for an unmatched finding
UNMATCHED_STANDARD = "no reference lesion (netpet match)"
#: the ``standard`` of the row made for a finding matched to a reference lesion that has no row at the finding's time
#: point (the reference standard says the lesion is not there then: a resolved lesion, or one not yet present)
ABSENT_STANDARD = "not present at this time point by the reference standard (netpet match)"
#: the standards of rows StudyStats makes (not the reference standard's own)
MADE_STANDARDS = (UNMATCHED_STANDARD, ABSENT_STANDARD)
#: where a finding's call comes from: the SUV rule's ``call`` column (default) or the reader's visual ``reader_call``
CALL_SOURCES = ("suv", "reader")
#: the study table's columns carried to the lesion units for the coded causes of false findings (netpet.stats.causes)
CAUSE_TABLE_COLUMNS = ("lesion_type", "longest_diameter_mm", "fwhm_mm", "site")
#: the confidence of a unit without a finding: 1, definitely benign (nothing was reported there)
NO_FINDING_CONFIDENCE = 1
#: the reference standard's patient-level ``indication`` values (case and spacing ignored; see :data:`ENDPOINTS`)
NET_STAGING, NET_WORKUP, TIO_LOCALISATION, FOLLOW_UP = "NET staging", "NET work-up", "TIO localisation", "follow-up"
INDICATIONS = (NET_STAGING, NET_WORKUP, TIO_LOCALISATION, FOLLOW_UP)
#: spellings read as each indication (lower case, single spaces)
_INDICATION_NAMES = {
    "net staging": NET_STAGING, "net work-up": NET_WORKUP, "net workup": NET_WORKUP, "net work up": NET_WORKUP,
    "tio localisation": TIO_LOCALISATION, "tio localization": TIO_LOCALISATION, "follow-up": FOLLOW_UP,
    "follow up": FOLLOW_UP, "followup": FOLLOW_UP,
}
#: the patient-level endpoint applied to each patient (``endpoint`` column of the patient units)
ENDPOINT_ANY = "any positive finding"
ENDPOINT_MALIGNANT = "a malignant lesion called positive"
ENDPOINT_CULPRIT = "the culprit called positive"
#: the definition of each indication's patient-level endpoint (printed in the report's Methods; see the module
#: docstring for the reasons and the literature)
ENDPOINTS = {
    NET_STAGING: (
        "Patient-level detection with localisation: a patient with disease counts as a true positive only when at "
        "least one of its malignant reference lesions is called positive; a patient with disease whose positive calls "
        "all fall on benign lesions or places without disease is a false negative (those calls are false-positive "
        "findings at lesion level); a patient without disease is a false positive when any finding is called "
        "positive, else a true negative. A patient whose disease the reference standard gives without a lesion (a "
        "patient or region row only) is judged by any positive finding, as no lesion can be checked."),
    NET_WORKUP: (
        "As NET staging: the work-up asks whether the scan shows the disease the reference standard proves, so a "
        "positive call counts for a patient with disease only when it falls on a malignant lesion."),
    TIO_LOCALISATION: (
        "Localisation of the culprit tumour (the one whose resection cures the osteomalacia): the patient is found "
        "(true positive) only when the culprit lesion is called positive. A positive call elsewhere with the culprit "
        "missed is a false-positive finding at lesion level and leaves the patient a false negative for "
        "localisation. At a time point where the culprit has no reference row (resected), the NET staging rule "
        "applies."),
    FOLLOW_UP: (
        "Detection of the disease present at the time point (residual, recurrent or new lesions by the reference "
        "standard's rows for that time point), judged as NET staging at each time point; response categories "
        "(progression against an earlier scan) are the follow-up module's (netpet followup), not this endpoint."),
}
#: the literature behind :data:`ENDPOINTS`
ENDPOINT_REFERENCES = (
    "Starr SJ, Metz CE, Lusted LB, Goodenough DJ. Visual detection and localization of radiographic images. "
    "Radiology 1975;116:533-538 (a detection counts only with the right location: the localisation ROC paradigm).",
    "Bossuyt PM, Reitsma JB, Bruns DE, et al. STARD 2015: an updated list of essential items for reporting diagnostic "
    "accuracy studies. BMJ 2015;351:h5527 (the target condition and the positivity rule are stated per analysis).",
    "El-Maouche D, Sadowski SM, Papadakis GZ, et al. 68Ga-DOTATATE for tumor localization in tumor-induced "
    "osteomalacia. J Clin Endocrinol Metab 2016;101:3575-3581 (outcome: the tumour localised, per patient).",
    "Bhavani N, Reena Asirvatham A, Kallur K, et al. Utility of gallium-68 DOTANOC PET/CT in the localization of "
    "tumour-induced osteomalacia. Clin Endocrinol (Oxf) 2016;84:134-140 (a positive focus not confirmed at surgery "
    "is no localisation).",
    "Hou G, Zhang Y, Liu Y, et al. Head-to-head comparison of 68Ga-DOTA-TATE and 68Ga-DOTA-JR11 PET/CT in patients "
    "with tumor-induced osteomalacia. Front Oncol 2022;12:811209 (the culprit among several suspicious foci).",
)
#: the order of reader calls when a patient's or region's findings are summarised (the strongest call wins)
_READER_CALL_RANK = {"": 0, "negative": 1, "equivocal": 2, "positive": 3}


def _read_csv(path: str, what: str, required: Sequence[str], if_absent: str,
              columns_note: Callable[[str], str]) -> Tuple[List[str], List[Dict[str, str]]]:
    """(header, rows) of a CSV input (cells stripped), refused in one sentence when absent, unreadable or without
    a required column (``if_absent``: what to do; ``columns_note``: the parenthesis after the needed columns)."""
    if not os.path.isfile(path):
        raise StatsError(f"The {what} {path} does not exist; {if_absent}.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StatsError(f"Cannot read the {what} {path}: {exc}.") from exc
    missing = [c for c in required if c not in header]
    if missing:
        shown = ", ".join(printable(h) for h in header) or "none"
        raise StatsError(f"The {what} {path} lacks the column(s) {', '.join(missing)}; it needs "
                         f"{', '.join(required)} ({columns_note(shown)}).")
    return header, rows


def parse_truth(value: str, where: str, column: str = "truth") -> int:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise StatsError(f"{where}: column {column} is {value!r}; write 1 or 0 (malignant/benign, true/false, "
                     "positive/negative, yes/no).")


def _overlap(first: str, second: str) -> bool:
    """Whether rows for two reference time points apply at a common time point ("" is every time point)."""
    return first == "" or second == "" or first == second


def _at_text(time_point: str) -> str:
    """How a reference row's time point is named in a message ("" when the file has no time points)."""
    return f" at time point {printable(time_point)}" if time_point else " (every time point)"


@dataclass
class Reference:
    """The reference standard, checked.

    ``lesions`` has one row per (patient_id, lesion_id, time_point): region, truth, standard,
    ``reference_row`` and the extra columns; ``time_point`` is "" (every time point) in a file
    without that column. ``patients`` and ``region_rows`` are the truths over every time point;
    :meth:`at` gives the reference standard at one time point.
    """

    path: str
    lesions: pd.DataFrame            # one row per (patient_id, lesion_id, time_point): region, truth, standard, extras
    patients: pd.DataFrame           # one row per patient_id: truth, explicit (bool), extras
    region_rows: Dict[Tuple[str, str], int]
    extra_columns: List[str]
    timed: bool = False              # the file has a time_point column
    #: (patient, region, time point) -> truth of the region rows; (patient, time point) -> truth of the patient rows
    region_rows_at: Dict[Tuple[str, str, str], int] = field(default_factory=dict)
    patient_rows_at: Dict[Tuple[str, str], int] = field(default_factory=dict)
    #: True when the file names indications (:data:`INDICATIONS`) or culprits: the patient-level endpoint is then
    #: the indication's (:data:`ENDPOINTS`); False: any positive finding, as before
    indications: bool = False
    #: what the reader of the file noticed without refusing (e.g. an indication column of other values)
    notes: List[str] = field(default_factory=list)

    def at(self, time_point: str) -> "Reference":
        """The reference standard at one time point of the study table.

        Its lesions are the rows for ``time_point`` plus the rows for every time point (empty
        ``time_point``), without the ``time_point`` column; a patient's truth is 1 when one of those
        lesions is malignant or a patient row for that time point says so. A file without time
        points is the same at every time point.
        """
        lesions = self.lesions
        if not self.timed:
            return Reference(self.path, lesions.drop(columns=[TIME_POINT]), self.patients, self.region_rows,
                             self.extra_columns, indications=self.indications)
        lesions = lesions[lesions[TIME_POINT].isin(("", time_point))].drop(columns=[TIME_POINT]).reset_index(drop=True)
        malignant = set(lesions.loc[lesions["truth"] == 1, "patient_id"])
        regions = {(p, r): t for (p, r, when), t in self.region_rows_at.items() if when in ("", time_point)}
        malignant |= {p for (p, _), t in regions.items() if t == 1}
        rows = {p: t for (p, when), t in self.patient_rows_at.items() if when in ("", time_point)}
        patients = self.patients.copy()
        patients["truth"] = [max(int(p in malignant), rows.get(p, 0)) for p in patients["patient_id"]]
        patients["explicit"] = [p in rows for p in patients["patient_id"]]
        return Reference(self.path, lesions, patients, regions, self.extra_columns, indications=self.indications)

    def map_patients(self, patient_ids: Callable[[str], str]) -> None:
        """Apply ``patient_ids`` (a pseudonymiser) to every patient id, in place."""
        self.lesions["patient_id"] = self.lesions["patient_id"].map(patient_ids)
        self.patients["patient_id"] = self.patients["patient_id"].map(patient_ids)
        self.region_rows = {(patient_ids(p), r): n for (p, r), n in self.region_rows.items()}
        self.region_rows_at = {(patient_ids(p), r, t): n for (p, r, t), n in self.region_rows_at.items()}
        self.patient_rows_at = {(patient_ids(p), t): n for (p, t), n in self.patient_rows_at.items()}


def read_reference(path: str) -> Reference:
    """Read and check a reference-standard CSV (see module docstring).

    Raises
    ------
    StatsError
        Missing file or columns, an unreadable truth, a duplicated key or conflicting truths (two
        rows of a lesion, region or patient whose time points overlap: the same time point, or one
        of them empty), a ``primary`` that differs within a patient, each naming the file, the row
        (line number) and the column; an ``indication`` or ``culprit`` the module docstring does not
        allow (another indication beside recognised ones, two of one patient, a culprit that is not
        1/0, benign, outside a TIO localisation patient, or not exactly one per TIO localisation
        patient).
    """
    header, rows = _read_csv(path, "reference standard", REFERENCE_REQUIRED,
                             f"give the CSV with columns {', '.join(REFERENCE_REQUIRED)}",
                             lambda shown: f"its columns: {shown}")
    timed = TIME_POINT in header
    extras = [c for c in header if c not in REFERENCE_REQUIRED and c != TIME_POINT]
    # one pass over the rows, then per-patient look-ups: linear in the number of rows (the checks below
    # used to scan every lesion for each region and patient row, which was quadratic). With time points a key
    # is (patient, lesion/region, time point); two rows clash when their time points overlap.
    lesions: Dict[Tuple[str, str, str], Tuple[int, Dict[str, str]]] = {}
    lesion_times: Dict[Tuple[str, str], List[str]] = {}
    regions: Dict[Tuple[str, str, str], Tuple[int, int]] = {}
    region_times: Dict[Tuple[str, str], List[str]] = {}
    patients: Dict[Tuple[str, str], Tuple[int, int]] = {}
    patient_times: Dict[str, List[str]] = {}
    primaries: Dict[str, Tuple[int, str]] = {}
    order: Dict[str, None] = {}  # patients in file order
    for i, row in enumerate(rows):
        line = i + 2
        where = f"{path} row {line}"
        patient = row["patient_id"]
        if not patient:
            raise StatsError(f"{where}: column patient_id is empty; every row needs a patient.")
        order.setdefault(patient, None)
        truth = parse_truth(row["truth"], where)
        lesion, region, when = row["lesion_id"], row["region"], row.get(TIME_POINT, "")
        primary = row.get("primary", "")
        if primary:
            first = primaries.setdefault(patient, (line, primary))
            if first[1] != primary:
                raise StatsError(f"{where}: column primary is {printable(primary)} but row {first[0]} gives patient "
                                 f"{printable(patient)} the primary {printable(first[1])}; a patient has one primary "
                                 "site: write it alike on every row (or on one).")
        if lesion:
            clash = next((t for t in lesion_times.get((patient, lesion), []) if _overlap(t, when)), None)
            if clash is not None:
                first, other = lesions[(patient, lesion, clash)]
                kind = "conflicting truth" if int(other["truth"]) != truth else "duplicated key"
                if timed:
                    raise StatsError(f"{where}: {kind}: patient {printable(patient)} lesion {printable(lesion)}"
                                     f"{_at_text(when)} is also on row {first}{_at_text(clash)}; keep one row per "
                                     "lesion and time point (an empty time_point is every time point).")
                raise StatsError(f"{where}: {kind}: patient {printable(patient)} lesion {printable(lesion)} is also "
                                 f"on row {first}; keep one row per lesion.")
            lesion_times.setdefault((patient, lesion), []).append(when)
            lesions[(patient, lesion, when)] = (line, {**row, "truth": str(truth)})
        elif region:
            clash = next((t for t in region_times.get((patient, region), []) if _overlap(t, when)), None)
            if clash is not None:
                at = f"{_at_text(when)}, also on row {regions[(patient, region, clash)][0]}{_at_text(clash)}" if timed \
                    else f" (empty lesion_id) is also on row {regions[(patient, region, clash)][0]}"
                raise StatsError(f"{where}: duplicated key: patient {printable(patient)} region {printable(region)}"
                                 f"{at}; keep one row per region{' and time point' if timed else ''}.")
            region_times.setdefault((patient, region), []).append(when)
            regions[(patient, region, when)] = (line, truth)
        else:
            clash = next((t for t in patient_times.get(patient, []) if _overlap(t, when)), None)
            if clash is not None:
                at = f"{_at_text(when)}, and on row {patients[(patient, clash)][0]}{_at_text(clash)}" if timed \
                    else f" on row {patients[(patient, clash)][0]} too"
                raise StatsError(f"{where}: duplicated key: patient {printable(patient)} has a patient row (empty "
                                 f"lesion_id and region){at}; keep one{' per time point' if timed else ''}.")
            patient_times.setdefault(patient, []).append(when)
            patients[(patient, when)] = (line, truth)
    malignant_in_region: Dict[Tuple[str, str], List[Tuple[str, str]]] = {}
    malignant_of_patient: Dict[str, List[Tuple[str, str]]] = {}
    lesion_rows_of_patient: Dict[str, List[Dict[str, str]]] = {}
    for (patient, lesion, when), (_, r) in lesions.items():
        lesion_rows_of_patient.setdefault(patient, []).append(r)
        if r["truth"] == "1":
            malignant_in_region.setdefault((patient, r["region"]), []).append((lesion, when))
            malignant_of_patient.setdefault(patient, []).append((lesion, when))
    for (patient, region, when), (_, truth) in regions.items():
        if truth == 1:
            malignant_of_patient.setdefault(patient, []).append((f"region {region}", when))
    # conflicts between a region or patient row and its lesions (at a common time point)
    for (patient, region, when), (line, truth) in regions.items():
        positive = [name for name, t in malignant_in_region.get((patient, region), []) if _overlap(t, when)]
        if truth == 0 and positive:
            raise StatsError(f"{path} row {line}: conflicting truth: region {printable(region)} of patient "
                             f"{printable(patient)} is 0{_at_text(when) if timed else ''} but its lesion(s) "
                             f"{printable(', '.join(positive))} are malignant; fix either row.")
    for (patient, when), (line, truth) in patients.items():
        positive = [name for name, t in malignant_of_patient.get(patient, []) if _overlap(t, when)]
        if truth == 0 and positive:
            raise StatsError(f"{path} row {line}: conflicting truth: patient {printable(patient)} is 0 (no disease)"
                             f"{_at_text(when) if timed else ''} but {printable(', '.join(positive))} are malignant; "
                             "fix either row.")
    lesion_frame = pd.DataFrame(
        [{"patient_id": p, "lesion_id": lesion, "region": r["region"], "truth": int(r["truth"]),
          "standard": r["standard"], "reference_row": line, **{c: r.get(c, "") for c in extras}, TIME_POINT: when}
         for (p, lesion, when), (line, r) in lesions.items()],
        columns=["patient_id", "lesion_id", "region", "truth", "standard", "reference_row", *extras, TIME_POINT])
    explicit_of_patient: Dict[str, List[int]] = {}
    for (patient, _), (_, truth) in patients.items():
        explicit_of_patient.setdefault(patient, []).append(truth)
    patient_rows = []
    for patient in order:
        from_lesions = int(patient in malignant_of_patient)
        explicit = explicit_of_patient.get(patient, [])
        truth = max(from_lesions, *explicit) if explicit else from_lesions
        patient_rows.append({"patient_id": patient, "truth": truth, "explicit": bool(explicit)})
    patient_frame = pd.DataFrame(patient_rows, columns=["patient_id", "truth", "explicit"])
    for column in extras:  # patient-level values of the extra columns (when constant within a patient)
        patient_frame[column] = [_constant([r.get(column, "") for r in lesion_rows_of_patient.get(pid, [])])
                                 for pid in patient_frame["patient_id"]]
    if "primary" in extras:  # the primary is the patient's: given on any of its rows (also a patient row)
        patient_frame["primary"] = [primaries.get(pid, (0, ""))[1] for pid in patient_frame["patient_id"]]
    declared, notes = _indications(path, rows, extras, lesion_frame, patient_frame)
    return Reference(path, lesion_frame, patient_frame, {(p, r): v[1] for (p, r, _), v in regions.items()}, extras,
                     timed, {k: v[1] for k, v in regions.items()}, {k: v[1] for k, v in patients.items()},
                     declared, notes)


def _indication_name(value: str) -> Optional[str]:
    """The indication a cell names (:data:`INDICATIONS`), '' for an empty cell, None for other text."""
    text = " ".join((value or "").split()).lower()
    if not text:
        return ""
    return _INDICATION_NAMES.get(text)


def _indications(path: str, rows: List[Dict[str, str]], extras: Sequence[str], lesions: pd.DataFrame,
                 patients: pd.DataFrame) -> Tuple[bool, List[str]]:
    """Read the ``indication`` and ``culprit`` columns into ``lesions`` and ``patients`` (in place).

    The file declares indications when it has a ``culprit`` column or an ``indication`` column with at
    least one of :data:`INDICATIONS`; then every patient has one (empty: NET staging), written on every
    lesion row too, and ``culprit`` is 0/1 per lesion. An ``indication`` column of other values only (an
    earlier study's free labels such as NET, TIO) stays a plain column, with a note.

    Returns
    -------
    (bool, list of str)
        Whether the file declares indications; the notes.

    Raises
    ------
    StatsError
        Another value beside recognised ones, two indications of one patient, a culprit cell that is not
        1/0, a culprit that is benign or outside a TIO localisation patient, a TIO localisation patient
        without exactly one culprit lesion: each naming the file, the row or patient, and what to do.
    """
    has_indication, has_culprit = "indication" in extras, "culprit" in extras
    if has_culprit and not has_indication:
        extras.append("indication")  # every patient NET staging: a column to group by like a written one
    names = [(_indication_name(r.get("indication", "")) if has_indication else "") for r in rows]
    if not has_culprit and not any(names):
        given = sorted({r.get("indication", "") for r in rows} - {""}) if has_indication else []
        if given:
            return False, [f"The reference standard {path} has an indication column with other values than "
                           f"{', '.join(INDICATIONS)} ({printable(', '.join(given[:5]))}): it is read as a plain "
                           "column (for --group-by) and every patient is judged by any positive finding; write one of "
                           "those four to apply the endpoint of each indication."]
        if not has_culprit:
            return False, []
    of_patient: Dict[str, Tuple[int, str]] = {}
    culprits: Dict[str, Dict[str, int]] = {}
    culprit_cells: Dict[Tuple[str, str], int] = {}
    for i, (row, name) in enumerate(zip(rows, names)):
        line, patient = i + 2, row["patient_id"]
        where = f"{path} row {line}"
        if name is None:
            raise StatsError(f"{where}: column indication is {printable(row['indication'])}; write one of "
                             f"{', '.join(INDICATIONS)} (empty is NET staging).")
        if name:
            first = of_patient.setdefault(patient, (line, name))
            if first[1] != name:
                raise StatsError(f"{where}: column indication is {name} but row {first[0]} gives patient "
                                 f"{printable(patient)} the indication {first[1]}; a patient has one indication: write "
                                 "it alike on every row (or on one).")
        if has_culprit and (row.get("culprit") or "").strip():
            value = parse_truth(row["culprit"], where, "culprit")
            if value and not row["lesion_id"]:
                raise StatsError(f"{where}: column culprit is 1 on a row without lesion_id; the culprit is a lesion: "
                                 "give its lesion_id.")
            if value and parse_truth(row["truth"], where) != 1:
                raise StatsError(f"{where}: column culprit is 1 but truth is {printable(row['truth'])}; the culprit "
                                 "tumour is the lesion whose resection cured the osteomalacia: its truth is 1.")
            culprit_cells[(patient, row["lesion_id"])] = max(value, culprit_cells.get((patient, row["lesion_id"]), 0))
            if value:
                culprits.setdefault(patient, {}).setdefault(row["lesion_id"], line)
    indication_of = {p: of_patient.get(p, (0, NET_STAGING))[1] for p in patients["patient_id"]}
    for patient, lesion_lines in culprits.items():
        if indication_of.get(patient) != TIO_LOCALISATION:
            raise StatsError(f"{path} row {min(lesion_lines.values())}: lesion {printable(next(iter(lesion_lines)))} "
                             f"of patient {printable(patient)} is marked culprit but the patient's indication is "
                             f"{indication_of.get(patient)}; the culprit marks the tumour of a TIO localisation: set "
                             "the indication to TIO localisation, or culprit to 0.")
    for patient, indication in indication_of.items():
        found = culprits.get(patient, {})
        if indication == TIO_LOCALISATION and len(found) != 1:
            detail = (f"lesions {printable(', '.join(found))} are all marked culprit" if found
                      else "no lesion is marked culprit (column culprit 1)" if has_culprit
                      else "the file has no culprit column")
            raise StatsError(f"{path}: patient {printable(patient)} has the indication TIO localisation but {detail}; "
                             "a TIO localisation patient has exactly one culprit lesion with truth 1 (culprit 1 on its "
                             "row).")
    patients["indication"] = [indication_of[p] for p in patients["patient_id"]]
    lesions["indication"] = [indication_of.get(p, NET_STAGING) for p in lesions["patient_id"]]
    lesions["culprit"] = [culprit_cells.get((p, lesion), 0) for p, lesion in zip(lesions["patient_id"],
                                                                                 lesions["lesion_id"])]
    if "culprit" not in extras:
        extras.append("culprit")  # a column of every lesion (0 without the file's column): made lesions copy it
    # the patient-level value of culprit, as for other extra columns: constant within the patient, else None (varies)
    per_patient = lesions.groupby("patient_id")["culprit"].agg(lambda v: v.iloc[0] if v.nunique() == 1 else None)
    patients["culprit"] = [per_patient.get(p, 0) for p in patients["patient_id"]]
    return True, []


def _constant(values: Iterable[str]) -> Optional[str]:
    """The one non-empty value of a column within a unit, "" when none, None when it varies."""
    distinct = {v for v in values if v not in ("", None)}
    if len(distinct) > 1:
        return None
    return next(iter(distinct)) if distinct else ""


@dataclass
class Study:
    """The study table joined to the reference standard; see :func:`load_study`."""

    table_path: str
    reference: Reference
    findings: pd.DataFrame           # rows with a lesion_id, plus call (0/1), row label and reference region
    reads: pd.DataFrame              # (modality, tracer, reader[, time_point], patient_id, session_id) of every row
    regions: List[str]
    group_by: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    #: the study table's time points in order (baseline first, then by days_from_baseline, then as they come)
    time_points: List[str] = field(default_factory=lambda: [BASELINE])
    #: what the correspondence table did (counts per status, the ambiguous matches), None without one
    correspondence: Optional[Dict[str, Any]] = None
    #: where the findings' calls come from (:data:`CALL_SOURCES`): the SUV rule's ``call`` or the ``reader_call``
    call_source: str = "suv"
    #: the number of retracted findings of the table (kept there, excluded here)
    retracted: int = 0
    #: the correspondence file read (None without one) and the pseudonymiser of the patient ids (None without one):
    #: the reading standards (:mod:`netpet.clinical.scores`) re-read the table's rows with both
    correspondence_path: Optional[str] = None
    patient_ids: Optional[Callable[[str], str]] = None

    @property
    def timed(self) -> bool:
        """True when the study table has more than one time point: ``time_point`` is then a group key."""
        return len(self.time_points) > 1

    @property
    def group_keys(self) -> Tuple[str, ...]:
        """The keys of a group: :data:`GROUP_KEYS`, plus ``time_point`` when the table has several."""
        return GROUP_KEYS + ((TIME_POINT,) if self.timed else ())

    def group_order(self, key: Tuple[str, ...]) -> Tuple[Any, ...]:
        """A sort key of a group's values: as written, with time points in the study's order."""
        if not self.timed:
            return tuple(key)
        return (*key[:len(GROUP_KEYS)], self.time_points.index(key[len(GROUP_KEYS)]))

    def groups(self) -> List[Tuple[str, ...]]:
        if not self.timed:
            keys = self.reads[list(GROUP_KEYS)].drop_duplicates().sort_values(list(GROUP_KEYS))
            return [tuple(r) for r in keys.itertuples(index=False)]
        keys = self.reads[list(self.group_keys)].drop_duplicates()
        return sorted((tuple(r) for r in keys.itertuples(index=False)), key=self.group_order)


def read_table(path: str) -> Tuple[pd.DataFrame, str]:
    """The study table as text columns with a ``table_row`` label naming each row's place in the file."""
    if not os.path.exists(path):
        raise StatsError(f"The study table {path} does not exist; export lesions with netpet quantify (or SUVQuant) "
                         "first.")
    try:
        table = StudyTable(path)
        columns, rows = table.read_with_columns()
    except TableError as exc:
        raise StatsError(str(exc)) from exc
    missing = [c for c in TABLE_REQUIRED if c not in columns]
    if missing:
        raise StatsError(f"The study table {path} lacks the column(s) {', '.join(missing)}; it needs "
                         f"{', '.join(TABLE_REQUIRED)}.")
    if not rows:
        raise StatsError(f"The study table {path} has no rows; there is nothing to analyse.")
    frame = pd.DataFrame(rows, columns=columns).fillna("")
    label = "line" if not table.sqlite else "row"
    offset = 2 if not table.sqlite else 1
    frame["table_row"] = [f"{path} {label} {i + offset}" for i in range(len(frame))]
    return frame, label


def _time_points(frame: pd.DataFrame) -> List[str]:
    """The table's time points: baseline first, then by their least ``days_from_baseline``, then as they come."""
    seen = list(dict.fromkeys(frame[TIME_POINT]))
    days: Dict[str, float] = {}
    if "days_from_baseline" in frame:
        values = pd.to_numeric(frame["days_from_baseline"].astype(str).str.strip().replace("", np.nan),
                               errors="coerce")
        days = {k: float(v) for k, v in values.groupby(frame[TIME_POINT]).min().items() if np.isfinite(v)}
    return sorted(seen, key=lambda t: (t != BASELINE, days.get(t, math.inf), seen.index(t)))


# -- the correspondence table (netpet match) -----------------------------------------------------------

def _read_key(row: Dict[str, str]) -> Tuple[str, ...]:
    """(patient, session, modality, tracer, reader, time point) of a row (empty time point = baseline)."""
    return (row["patient_id"], row["session_id"], row["modality"], row["tracer"], row["reader"],
            row.get(TIME_POINT, "") or BASELINE)


def _read_text(key: Tuple[str, ...]) -> str:
    patient, session, modality, tracer, reader, when = key
    return printable(f"patient {patient} session {session} {modality} {tracer} reader {reader} time point {when}")


def read_correspondence(path: str, findings: pd.DataFrame, reads: pd.DataFrame, reference: Reference,
                        table_path: str,
                        patient_ids: Optional[Callable[[str], str]] = None,
                        retracted: Iterable[Tuple[str, ...]] = ()) -> Tuple[pd.DataFrame, List[Dict[str, Any]],
                                                                             Dict[str, Any]]:
    """Read and check the correspondence table of ``netpet match`` against the table and the reference.

    Parameters
    ----------
    path : str
        The correspondence CSV (columns :data:`CORRESPONDENCE_REQUIRED` at least; see the module docstring).
    findings : pandas.DataFrame
        The study table's findings (rows with a ``lesion_id``; ``time_point`` filled, empty = baseline).
    reads : pandas.DataFrame
        Every (patient, session, modality, tracer, reader, time point) of the table.
    reference : Reference
        The reference standard (patient ids already as the table's).
    table_path : str
        The study table, named in refusals.
    patient_ids : callable, optional
        Applied to the patient ids of the correspondence (the pseudonymiser, as for the table).
    retracted : iterable of tuple
        The keys (patient, session, modality, tracer, reader, time point, lesion id) of the table's retracted
        findings: their rows are skipped (a retracted finding is in no analysis), not refused.

    Returns
    -------
    (pandas.DataFrame, list of dict, dict)
        Per finding (index of ``findings``): ``joined_id`` (the lesion id to join on: the reference
        lesion, or the track id of an unmatched finding), ``match_status`` and ``correspondence_row``;
        the unmatched findings (patient, track, time point, region, row); a summary (path, counts per
        status, the ambiguous matches).

    Raises
    ------
    StatsError
        A missing file or column, an unknown status, a row whose ids do not fit its status, a
        duplicated row, a finding of the table without its row, a row naming a finding (or a read)
        not in the table, a reference lesion id not in the reference standard, a track id that is a
        reference lesion's id, a reference lesion both missed and matched in one read: each naming
        the file and row and what to do.
    """
    header, rows = _read_csv(path, "correspondence table", CORRESPONDENCE_REQUIRED,
                             "write it with netpet match (or leave out --correspondence when the findings carry the "
                             "reference standard's lesion ids)", lambda shown: "as netpet match writes it")
    known = {(p, lesion) for p, lesion in zip(reference.lesions["patient_id"], reference.lesions["lesion_id"])}
    table_reads = {tuple(r) for r in reads[["patient_id", "session_id", *GROUP_KEYS, TIME_POINT]].itertuples(
        index=False)}
    by_finding: Dict[Tuple[str, ...], Tuple[int, Dict[str, str]]] = {}
    missed: Dict[Tuple[str, ...], int] = {}
    counts = {status: 0 for status in CORRESPONDENCE_STATUSES}
    withdrawn = set(retracted)
    for i, row in enumerate(rows):
        line = i + 2
        where = f"{path} row {line}"
        if patient_ids is not None:
            row["patient_id"] = patient_ids(row["patient_id"])
        if withdrawn and row.get("lesion_id") and (*_read_key(row), row["lesion_id"]) in withdrawn:
            continue  # the finding was retracted: in no analysis
        for column in ("patient_id", "session_id", *GROUP_KEYS):
            if not row[column]:
                raise StatsError(f"{where}: column {column} is empty; every row names its read (patient_id, "
                                 "session_id, modality, tracer, reader): write the table again with netpet match.")
        status = row["status"].lower()
        if status not in CORRESPONDENCE_STATUSES:
            raise StatsError(f"{where}: column status is {printable(row['status'])}; write one of "
                             f"{', '.join(CORRESPONDENCE_STATUSES)}.")
        row["status"] = status
        counts[status] += 1
        patient, lesion = row["patient_id"], row["lesion_id"]
        target, track = row["reference_lesion_id"], row["track_id"]
        if status in JOINED_STATUSES and not (lesion and target):
            raise StatsError(f"{where}: a {status} row needs both lesion_id (the finding) and reference_lesion_id "
                             f"(got {printable(lesion) or 'empty'} and {printable(target) or 'empty'}); correct the "
                             "row or run netpet match again.")
        if status == "unmatched" and not (lesion and track and not target):
            raise StatsError(f"{where}: an unmatched row needs lesion_id and track_id and an empty reference_lesion_id "
                             f"(got {printable(lesion) or 'empty'}, {printable(track) or 'empty'} and "
                             f"{printable(target) or 'empty'}); correct the row or run netpet match again.")
        if status == "missed" and not (target and not lesion):
            raise StatsError(f"{where}: a missed row needs reference_lesion_id and an empty lesion_id (got "
                             f"{printable(target) or 'empty'} and {printable(lesion) or 'empty'}); correct the row or "
                             "run netpet match again.")
        if target and (patient, target) not in known:
            raise StatsError(f"{where}: reference_lesion_id {printable(target)} of patient {printable(patient)} is not "
                             f"in the reference standard {reference.path}; run netpet match again with this reference "
                             "standard, or correct the row.")
        if status == "unmatched" and (patient, track) in known:
            raise StatsError(f"{where}: track_id {printable(track)} of an unmatched finding is also a lesion id of "
                             f"patient {printable(patient)} in the reference standard {reference.path}; give the "
                             "unmatched finding's track an id of its own (netpet match uses X01, X02 ...).")
        read = _read_key(row)
        if read not in table_reads:
            raise StatsError(f"{where}: the read {_read_text(read)} is not in the study table {table_path}; run "
                             "netpet match again on this table, or delete the row.")
        if status == "missed":
            key = (*read, target)
            if key in missed:
                raise StatsError(f"{where}: duplicated row: reference lesion {printable(target)} is missed in "
                                 f"{_read_text(read)} on row {missed[key]} too; keep one.")
            missed[key] = line
            continue
        key = (*read, lesion)
        if key in by_finding:
            raise StatsError(f"{where}: duplicated row: finding {printable(lesion)} of {_read_text(read)} is also on "
                             f"row {by_finding[key][0]}; keep one row per finding.")
        by_finding[key] = (line, row)
    finding_keys = list(zip(findings["patient_id"], findings["session_id"], findings["modality"], findings["tracer"],
                            findings["reader"], findings[TIME_POINT], findings["lesion_id"]))
    present = set(finding_keys)
    for key, (line, row) in by_finding.items():
        if key not in present:
            raise StatsError(f"{path} row {line}: finding {printable(key[-1])} of {_read_text(key[:-1])} is not in the "
                             f"study table {table_path}; run netpet match again on this table, or delete the row.")
    joined_id, status_of, row_of, unmatched = [], [], [], []
    for (key, row_label) in zip(finding_keys, findings["table_row"]):
        if key not in by_finding:
            raise StatsError(f"{row_label}: finding {printable(key[-1])} of {_read_text(key[:-1])} has no row in the "
                             f"correspondence table {path}; run netpet match again on this table (without --reader, "
                             "which matches one reader's findings only).")
        line, row = by_finding[key]
        joined_id.append(row["track_id"] if row["status"] == "unmatched" else row["reference_lesion_id"])
        status_of.append(row["status"])
        row_of.append(line)
    joined = {(*key[:-1], by_finding[key][1]["reference_lesion_id"]): by_finding[key][0] for key in by_finding
              if by_finding[key][1]["status"] in JOINED_STATUSES}
    for key, line in missed.items():
        if key in joined:
            raise StatsError(f"{path} row {line}: reference lesion {printable(key[-1])} is missed in "
                             f"{_read_text(key[:-1])} but row {joined[key]} matches a finding of that read to it; keep "
                             "one of the two rows.")
    per_finding = pd.DataFrame({"joined_id": joined_id, "match_status": status_of, "correspondence_row": row_of},
                               index=findings.index)
    ambiguous = []
    for key, (line, row) in sorted(by_finding.items(), key=lambda kv: kv[1][0]):
        if row["status"] == "ambiguous":
            ambiguous.append({"row": line, "patient_id": key[0], "session_id": key[1], "modality": key[2],
                              "tracer": key[3], "reader": key[4], TIME_POINT: key[5], "lesion_id": key[6],
                              "reference_lesion_id": row["reference_lesion_id"],
                              "distance_mm": row.get("distance_mm", ""), "candidates": row.get("candidates", ""),
                              "note": row.get("note", "")})
        elif row["status"] == "unmatched":
            unmatched.append({"patient_id": key[0], "track_id": row["track_id"], TIME_POINT: key[5], "row": line,
                              "finding": key})
    summary = {"path": path, "counts": counts, "ambiguous": ambiguous,
               "unmatched_tracks": len({(u["patient_id"], u["track_id"]) for u in unmatched})}
    return per_finding, unmatched, summary


def _synthetic_lesions(unmatched: List[Dict[str, Any]], findings: pd.DataFrame, reference: Reference,
                       timed: bool, path: str) -> pd.DataFrame:
    """One reference lesion (truth 0) per (patient, track id) of the unmatched findings: at the time points
    where the track was reported when the table has several, else at every time point. Its region is the
    first region the table gives the track's findings (``findings`` carry the table's ids in ``finding_id``), written
    as the reference standard writes it when the two differ in case and spacing only ("Liver" is the study's
    "liver", not a region of its own)."""
    known = {" ".join(r.split()).lower(): r for r in reference.lesions["region"] if r}
    known.update({" ".join(r.split()).lower(): r for (_, r) in reference.region_rows if r})
    region_of: Dict[Tuple[str, str], str] = {}
    rows: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    regions = dict(zip(zip(findings["patient_id"], findings["session_id"], findings["modality"], findings["tracer"],
                           findings["reader"], findings[TIME_POINT], findings["finding_id"]),
                       findings["region"] if "region" in findings else [""] * len(findings)))
    for u in unmatched:
        track = (u["patient_id"], u["track_id"])
        region = str(regions.get(u["finding"], "") or "").strip()
        region = known.get(" ".join(region.split()).lower(), region)
        if region and not region_of.get(track):
            region_of[track] = region
        when = u[TIME_POINT] if timed else ""
        rows.setdefault((*track, when), {"patient_id": track[0], "lesion_id": track[1], "truth": 0,
                                         "standard": UNMATCHED_STANDARD,
                                         "reference_row": f"{path} row {u['row']}", TIME_POINT: when})
    frame = pd.DataFrame(list(rows.values()))
    if not len(frame):
        return reference.lesions.iloc[0:0]
    frame["region"] = [region_of.get((p, t), "") for p, t in zip(frame["patient_id"], frame["lesion_id"])]
    for column in reference.extra_columns:
        frame[column] = ""
    return frame[list(reference.lesions.columns)]


def _absent_lesions(findings: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """Rows (truth 0, :data:`ABSENT_STANDARD`) for the joined findings whose reference lesion has rows, but none at the
    finding's time point: the reference standard says the lesion is not there then (resolved, or not yet present),
    so the finding counts like an unmatched one at that time point (a false positive where called positive, a true
    negative in the groups of that time point that did not report it). Region and extra columns are the lesion's."""
    if not reference.timed or not len(findings):
        return reference.lesions.iloc[0:0]
    lesions = reference.lesions
    first = lesions.drop_duplicates(["patient_id", "lesion_id"]).set_index(["patient_id", "lesion_id"])
    present = set(zip(lesions["patient_id"], lesions["lesion_id"], lesions[TIME_POINT]))
    rows: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    joined = findings[findings["match_status"].isin(JOINED_STATUSES)]
    for patient, lesion, when, where in zip(joined["patient_id"], joined["lesion_id"], joined[TIME_POINT],
                                            joined["correspondence_row"]):
        if {(patient, lesion, ""), (patient, lesion, when)} & present or (patient, lesion) not in first.index:
            continue
        row = first.loc[(patient, lesion)].to_dict()
        rows.setdefault((patient, lesion, when), {**row, "patient_id": patient, "lesion_id": lesion, "truth": 0,
                                                  "standard": ABSENT_STANDARD, "reference_row": where,
                                                  TIME_POINT: when})
    if not rows:
        return lesions.iloc[0:0]
    return pd.DataFrame(list(rows.values()))[list(lesions.columns)]


def _ambiguity_warning(summary: Dict[str, Any]) -> Optional[str]:
    ambiguous = summary["ambiguous"]
    if not ambiguous:
        return None
    shown = "; ".join(printable(f"{a['patient_id']} {a['session_id']} {a['modality']} {a['tracer']} {a['reader']} "
                                f"{a['lesion_id']} -> {a['reference_lesion_id']}"
                                + (f" (other candidates {a['candidates']})" if a["candidates"] else ""))
                      for a in ambiguous[:10])
    return (f"{len(ambiguous)} ambiguous match(es) of the correspondence table {summary['path']} were used as netpet "
            f"match proposed them; a reader must confirm or correct each (status confirmed): {shown}"
            f"{' ...' if len(ambiguous) > 10 else ''}")


def load_study(table_path: str, reference_path: str, group_by: Sequence[str] = (),
               regions: Optional[Sequence[str]] = None,
               patient_ids: Optional[Callable[[str], str]] = None,
               correspondence: Optional[str] = None, call_source: str = "suv") -> Study:
    """Read both files and check that every finding belongs to the reference standard.

    Parameters
    ----------
    table_path : str
        The study table (.csv, or .sqlite/.db).
    reference_path : str
        The reference standard (CSV, see module docstring).
    group_by : sequence of str
        Further columns (of either file, or ``region``) to split the results by.
    regions : sequence of str, optional
        The study's regions (default: every region the reference standard names).
    patient_ids : callable, optional
        Applied to every patient id of both files before they are joined: the pseudonymiser's
        :meth:`~netpet.privacy.Pseudonymiser.patient`, so that a pseudonymised table meets a
        reference standard kept with the archive's ids, and every output names pseudonyms only.
    correspondence : str, optional
        The correspondence table of ``netpet match`` (see the module docstring): findings then join
        the reference lesion it names (or, unmatched, a lesion of their own with truth 0) instead of
        their own ``lesion_id``.
    call_source : {"suv", "reader"}
        Where each finding's call comes from: the SUV rule's ``call`` column (default) or the reader's
        visual ``reader_call`` (then every active finding needs one; the ``call`` column is not read).

    Returns
    -------
    Study
        ``findings`` holds each finding's ``finding_call`` (``positive``, ``equivocal`` or
        ``negative``) and its quality columns (empty when the table lacks them); values of
        :data:`VOLUME_SCORES` of a finding that is not separable are NaN (a warning says when the
        table held numbers there). With a correspondence table, ``lesion_id`` is the joined id and
        ``finding_id`` the table's own, and ``correspondence`` summarises the table.

    Raises
    ------
    StatsError
        An unknown patient or lesion id, a lesion without a reference row at the finding's time
        point, a call other than positive, equivocal or negative on a finding (the row and value
        named), a score (:data:`SCORES`) that is not a finite number of at most
        :data:`SCORE_LIMIT` (inf, NaN, text; the row and column named), the same lesion found in
        two sessions of one group, a group-by column that neither file has (or that is a location
        column or ``time_point``), a bad correspondence table (:func:`read_correspondence`), a
        ``finding_status``, ``reader_call`` or ``confidence`` cell out of its range (row and column
        named), an unknown ``call_source``, and with ``call_source="reader"`` active findings without
        a ``reader_call`` (their count and first rows); a bad ``indication`` or ``culprit``
        (:func:`read_reference`).
    """
    if call_source not in CALL_SOURCES:
        raise StatsError(f"Unknown --call-source {call_source!r}; choose suv (the SUV rule's call column) or reader "
                         "(the reader's visual call, reader_call).")
    reference = read_reference(reference_path)
    frame, _ = read_table(table_path)
    if patient_ids is not None:
        reference.map_patients(patient_ids)
        frame["patient_id"] = frame["patient_id"].astype(str).str.strip().map(patient_ids)
    has_time = TIME_POINT in frame.columns
    for column in ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "call",
                   *((TIME_POINT,) if has_time else ())):
        frame[column] = frame[column].astype(str).str.strip()
        # a key or call holding a control character (NUL, ESC, a line break of a hand-edited table) would
        # make a group or id of its own that no report can show as written: refused, named
        bad = frame[column].str.contains(r"[\x00-\x1f\x7f]", regex=True)
        if bad.any():
            row = frame[bad].iloc[0]
            raise StatsError(f"{row['table_row']}: column {column} holds a control character ({printable(row[column])}); "
                             "keys and calls are plain text: correct the table.")
    frame[TIME_POINT] = frame[TIME_POINT].replace("", BASELINE) if has_time else BASELINE
    if has_time:  # a session is one scan: one time point (as netpet match requires too)
        first = frame.drop_duplicates(["patient_id", "session_id"]).set_index(["patient_id", "session_id"])[TIME_POINT]
        index = pd.MultiIndex.from_arrays([frame["patient_id"], frame["session_id"]])
        other = frame[first.reindex(index).to_numpy() != frame[TIME_POINT].to_numpy()]
        if len(other):
            row = other.iloc[0]
            raise StatsError(f"{row['table_row']}: column time_point is {printable(row[TIME_POINT])} but an earlier row "
                             f"gives session {printable(row['session_id'])} of patient {printable(row['patient_id'])} "
                             f"the time point {printable(first[(row['patient_id'], row['session_id'])])}; a session has "
                             "one time point (an empty cell is baseline).")
    time_points = _time_points(frame)
    timed = len(time_points) > 1
    keys = GROUP_KEYS + ((TIME_POINT,) if timed else ())
    empty = frame[(frame["patient_id"] == "") | (frame["modality"] == "") | (frame["tracer"] == "") |
                  (frame["reader"] == "")]
    if len(empty):
        row = empty.iloc[0]
        raise StatsError(f"{row['table_row']}: patient_id, modality, tracer and reader must all be given.")
    known_patients = set(reference.patients["patient_id"])
    unknown = frame[~frame["patient_id"].isin(known_patients)]
    if len(unknown):
        row = unknown.iloc[0]
        raise StatsError(f"{row['table_row']}: unknown id: patient {printable(row['patient_id'])} is not in the "
                         f"reference standard {reference.path}; add the patient (a patient row with empty lesion_id if "
                         "lesion-free).")
    findings = frame[frame["lesion_id"] != ""].copy()
    warnings = []
    summary = None
    findings, withdrawn = _drop_retracted(findings)
    if len(withdrawn):
        first = withdrawn.iloc[0]
        warnings.append(f"{len(withdrawn)} retracted finding(s) are kept in the study table but excluded from every "
                        f"analysis (first: {first['table_row']}, lesion {printable(first['lesion_id'])} of patient "
                        f"{printable(first['patient_id'])}).")
    _reader_columns(findings)
    named = ({t for t in reference.lesions[TIME_POINT] if t} | {t for (_, _, t) in reference.region_rows_at if t} |
             {t for (_, t) in reference.patient_rows_at if t})
    unnamed = [t for t in time_points if t not in named]
    if named and unnamed:
        warnings.append(f"The reference standard {reference.path} has no row for time point(s) "
                        f"{printable(', '.join(unnamed))} of the study table (its time points: "
                        f"{printable(', '.join(sorted(named)))}): there only its rows for every time point apply; "
                        "check the spelling of the time points.")
    if correspondence is not None:
        all_reads = frame[["patient_id", "session_id", *GROUP_KEYS, TIME_POINT]].drop_duplicates()
        retracted = list(zip(withdrawn["patient_id"], withdrawn["session_id"], withdrawn["modality"],
                             withdrawn["tracer"], withdrawn["reader"], withdrawn[TIME_POINT], withdrawn["lesion_id"]))
        per_finding, unmatched, summary = read_correspondence(correspondence, findings, all_reads, reference,
                                                              table_path, patient_ids, retracted)
        findings["finding_id"] = findings["lesion_id"]
        findings["lesion_id"] = per_finding["joined_id"]
        findings["match_status"] = per_finding["match_status"]
        findings["correspondence_row"] = [f"{correspondence} row {n}" for n in per_finding["correspondence_row"]]
        absent = _absent_lesions(findings, reference)
        if len(absent):
            first = absent.iloc[0]
            warnings.append(f"{len(absent)} finding(s) are matched by the correspondence table to reference lesions "
                            "that have no row at their time point (not present then by the reference standard): each "
                            "counts as a lesion with truth 0 at that time point (first: lesion "
                            f"{printable(first['lesion_id'])} of patient {printable(first['patient_id'])} at "
                            f"{printable(first[TIME_POINT])}, {first['reference_row']}).")
        synthetic = _synthetic_lesions(unmatched, findings, reference, timed, correspondence)
        made = [frame for frame in (absent, synthetic) if len(frame)]
        if made:
            reference.lesions = pd.concat([reference.lesions, *made], ignore_index=True)
            reference.timed = reference.timed or timed
            if reference.indications:  # the made lesions are of their patient's indication, never a culprit
                indication = dict(zip(reference.patients["patient_id"], reference.patients["indication"]))
                reference.lesions["indication"] = reference.lesions["patient_id"].map(indication).fillna(NET_STAGING)
                made_rows = reference.lesions["standard"].isin(MADE_STANDARDS).to_numpy()
                culprit = pd.to_numeric(reference.lesions["culprit"], errors="coerce").fillna(0).astype(int)
                reference.lesions["culprit"] = np.where(made_rows, 0, culprit)
        warning = _ambiguity_warning(summary)
        if warning:
            warnings.append(warning)
    # the reference row of each finding: at the finding's time point (rows for it, or for every time point)
    views = {when: reference.at(when) for when in time_points}
    truth = pd.Series(0, index=findings.index, dtype=int)
    ref_region = pd.Series("", index=findings.index, dtype=object)
    standard = pd.Series("", index=findings.index, dtype=object)
    missing = pd.Series(False, index=findings.index)
    for when in time_points:
        part = findings[findings[TIME_POINT] == when]
        if not len(part):
            continue
        known = views[when].lesions.set_index(["patient_id", "lesion_id"])
        index = pd.MultiIndex.from_arrays([part["patient_id"], part["lesion_id"]])
        here = index.isin(known.index)
        missing[part.index[~here]] = True
        if not here.any():  # none known here (refused below); an empty assignment would upset pandas
            continue
        matched = known.loc[index[here]]
        truth[part.index[here]] = matched["truth"].to_numpy()
        ref_region[part.index[here]] = matched["region"].to_numpy()
        standard[part.index[here]] = matched["standard"].to_numpy()
    if missing.any():
        row = findings[missing].iloc[0]
        where = printable(row["lesion_id"])
        times = reference.lesions.loc[(reference.lesions["patient_id"] == row["patient_id"]) &
                                      (reference.lesions["lesion_id"] == row["lesion_id"]), TIME_POINT]
        if len(times):
            raise StatsError(f"{row['table_row']}: lesion {where} of patient {printable(row['patient_id'])} has no row "
                             f"for time point {printable(row[TIME_POINT])} in the reference standard {reference.path} "
                             f"(its rows are for {printable(', '.join(sorted(set(times))))}); add a row for that time "
                             "point (truth 0 if the finding is not disease there).")
        if correspondence is None:
            raise StatsError(f"{row['table_row']}: unknown id: lesion {where} of patient "
                             f"{printable(row['patient_id'])} is not in the reference standard {reference.path}; every "
                             "finding needs a reference (truth 0 for a false positive): match the findings to the "
                             "reference lesions by location with netpet match and give its table with "
                             "--correspondence, or write the reference standard's lesion ids into the table.")
        raise StatsError(f"{row['table_row']}: lesion {where} of patient {printable(row['patient_id'])} is not in the "
                         f"reference standard {reference.path}; run netpet match again with this reference standard.")
    calls = []
    for row in findings.itertuples(index=False):
        text = row.call.lower()
        if text in _CALL_TRUE:
            calls.append("positive")
        elif text in _CALL_FALSE:
            calls.append("negative")
        elif text in _CALL_EQUIVOCAL:
            calls.append("equivocal")
        elif call_source == "reader":
            calls.append("")  # the SUV rule's call is not used: kept as "" (no value)
        else:
            raise StatsError(f"{row.table_row}: column call is {row.call!r}; write positive, equivocal or negative.")
    findings["suv_call"] = pd.Series(calls, index=findings.index, dtype=object)
    if call_source == "reader":
        without = findings[findings["reader_call"] == ""]
        if len(without):
            rows = ", ".join(without["table_row"].iloc[:3])
            raise StatsError(f"--call-source reader: {len(without)} finding(s) have no reader_call (first: {rows}"
                             f"{' ...' if len(without) > 3 else ''}); record each finding's visual call (netpet record "
                             "or SUVQuant), retract the findings withdrawn, or analyse with --call-source suv.")
        findings["finding_call"] = findings["reader_call"]
    else:
        findings["finding_call"] = findings["suv_call"]
    for column in QUALITY_COLUMNS:
        findings[column] = findings[column].astype(str).str.strip() if column in findings else ""
    findings["truth"] = truth.to_numpy()
    findings["table_region"] = findings["region"] if "region" in findings else ""
    findings["region"] = [r if r else t for r, t in zip(ref_region.to_numpy(), findings["table_region"])]
    findings["standard"] = standard.to_numpy()
    duplicated = findings.duplicated(["patient_id", "lesion_id", *keys], keep=False)
    if duplicated.any():
        rows = findings[duplicated].sort_values(["patient_id", "lesion_id"])
        first = rows.iloc[0]
        same = rows[np.logical_and.reduce([rows[k] == first[k] for k in ("patient_id", "lesion_id", *keys)])]
        group = printable(f"{first['modality']} {first['tracer']} reader {first['reader']}"
                          + (f" at {first[TIME_POINT]}" if timed else ""))
        if correspondence is not None:
            sessions = printable(", ".join(dict.fromkeys(same["session_id"])))
            raise StatsError(f"{same.iloc[1]['table_row']}: duplicated key: findings "
                             f"{printable(', '.join(same['finding_id']))} of patient {printable(first['patient_id'])} "
                             f"(session(s) {sessions}) are all joined to lesion "
                             f"{printable(first['lesion_id'])} for {group} by the correspondence table "
                             f"({', '.join(same['correspondence_row'])}); a lesion has one finding per group: correct "
                             "the correspondence (or give the sessions different modality labels or time points).")
        raise StatsError(f"{same.iloc[1]['table_row']}: duplicated key: lesion {printable(first['lesion_id'])} of "
                         f"patient {printable(first['patient_id'])} has {len(same)} findings for {group} "
                         f"(sessions {printable(', '.join(same['session_id']))}; also "
                         f"{same.iloc[0]['table_row']}); keep one, or give the sessions different modality labels"
                         f"{'' if timed else ' (or, for a follow-up, a time_point)'}.")
    apart = not_separable(findings)
    for column in SCORES:
        if column in findings:
            text = findings[column].astype(str).str.strip()
            values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
            # NaN and infinity are the mark of broken arithmetic upstream (a damaged SUV conversion), never a
            # reading: refused, as are numbers too large to compute with; other text ("n/a") is no value
            not_finite = text.str.lower().str.lstrip("+-").isin(("nan", "inf", "infinity"))
            bad = not_finite | (values.notna() & ~(np.isfinite(values) & (values.abs() <= SCORE_LIMIT)))
            if column in VOLUME_SCORES:
                bad &= ~apart  # set aside below whatever they hold
            if bad.any():
                row = findings[bad].iloc[0]
                raise StatsError(f"{row['table_row']}: column {column} is {row[column]!r}, not a finite number of at "
                                 f"most {SCORE_LIMIT:.0e} in size; measure the lesion again, or leave the cell empty "
                                 "for no value.")
            findings[column] = values.where(np.isfinite(values))
    volume = [c for c in VOLUME_SCORES if c in findings]
    holding = apart & findings[volume].notna().any(axis=1) if volume else apart & False
    if holding.any():
        columns = [c for c in volume if findings.loc[holding, c].notna().any()]
        findings.loc[apart, volume] = np.nan
        warnings.append(f"{int(holding.sum())} finding(s) not separable hold values of {', '.join(columns)} (first "
                        f"{findings[holding].iloc[0]['table_row']}): set aside, as no volume was segmented.")
    for column in group_by:
        if column in GROUP_KEYS:
            raise StatsError(f"--group-by {column}: results are always split by {', '.join(GROUP_KEYS)}.")
        if column == TIME_POINT:
            raise StatsError(f"--group-by {column}: the time point is a group key by itself whenever the study table "
                             "has more than one (each time point is analysed apart); leave the option out.")
        if column in LOCATION_COLUMNS:
            raise StatsError(f"--group-by {column}: {column} is one of the reference standard's location columns "
                             f"({', '.join(LOCATION_COLUMNS)}), which place a lesion for netpet match and are not "
                             "groups; group by region or site instead.")
        if column in REFERENCE_REQUIRED and column != "region":
            raise StatsError(f"--group-by {column}: {column} is one of the reference standard's own columns "
                             f"({', '.join(REFERENCE_REQUIRED)}), which are not groups (region is); copy it into a "
                             "column of another name to group by it.")
        if column not in reference.extra_columns and column not in frame.columns and column != "region":
            raise StatsError(f"--group-by {column}: neither the study table {table_path} nor the reference standard "
                             f"{reference.path} has a column {column!r}.")
    reads = frame[["patient_id", "session_id", *keys]].drop_duplicates()
    region_list = list(regions) if regions else sorted(
        {r for r in reference.lesions["region"] if r} | {r for (_, r) in reference.region_rows})
    if not region_list:
        warnings.append("The reference standard names no regions: no region-level analysis.")
    not_read = sorted(set(reference.patients["patient_id"]) - set(reads["patient_id"]))
    if not_read:
        warnings.append(f"{len(not_read)} patient(s) of the reference standard have no row in the study table "
                        f"(not read in any group): {', '.join(not_read[:10])}{' ...' if len(not_read) > 10 else ''}")
    warnings[:0] = reference.notes
    return Study(table_path, reference, findings, reads, region_list, list(group_by), warnings, time_points, summary,
                 call_source, int(len(withdrawn)), correspondence, patient_ids)


def _drop_retracted(findings: pd.DataFrame) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(the active findings, the retracted ones); a ``finding_status`` other than active, retracted or empty is
    refused with its row. A table without the column has no retracted finding.

    Raises
    ------
    StatsError
        A bad ``finding_status`` cell, naming the row and the value.
    """
    if "finding_status" not in findings:
        return findings, findings.iloc[0:0]
    for row_label, value in zip(findings["table_row"], findings["finding_status"]):
        try:
            check_finding_status(value, f"{row_label}: column ")
        except SchemaError as exc:
            raise StatsError(str(exc)) from exc
    retracted = np.array([is_retracted(r) for r in findings[["finding_status"]].to_dict("records")], dtype=bool)
    return findings[~retracted].copy(), findings[retracted].copy()


def _reader_columns(findings: pd.DataFrame) -> None:
    """Check and clean the reader's ``reader_call`` ('' when not recorded) and ``confidence`` (1-5, NaN when not
    recorded) of the active findings, in place; a table without the columns reads as if they were empty.

    Raises
    ------
    StatsError
        A ``reader_call`` other than positive, equivocal or negative, or a ``confidence`` that is not a whole
        number from 1 to 5 (:func:`netpet.schema.check_confidence`), naming the row, the column and the value.
    """
    calls, confidences = [], []
    reader_calls = findings["reader_call"] if "reader_call" in findings else [""] * len(findings)
    given = findings["confidence"] if "confidence" in findings else [""] * len(findings)
    for row_label, call, confidence in zip(findings["table_row"], reader_calls, given):
        try:
            calls.append(check_reader_call(call, f"{row_label}: column "))
            value = check_confidence(confidence, f"{row_label}: column ")
        except SchemaError as exc:
            raise StatsError(str(exc)) from exc
        confidences.append(np.nan if value is None else float(value))
    findings["reader_call"] = pd.Series(calls, index=findings.index, dtype=object)
    findings["confidence"] = pd.Series(confidences, index=findings.index, dtype=float)


# -- units of analysis ------------------------------------------------------------------------------

def _group_value(study: Study, column: str, frame: pd.DataFrame, level: str) -> pd.Series:
    """The value of a group-by column for each unit of ``frame`` (None where it varies)."""
    reference = study.reference
    if column == "region":
        if level == "patient":
            return pd.Series([None] * len(frame), index=frame.index, dtype=object)
        return frame["region"].astype(object)
    if column in reference.extra_columns:
        if level == "lesion":
            return frame[column].astype(object)
        lookup = dict(zip(reference.patients["patient_id"], reference.patients[column]))
        if level == "region":
            values = reference.lesions.groupby(["patient_id", "region"])[column].agg(lambda s: _constant(s))
            return pd.Series([values.get((p, r), lookup.get(p, "")) for p, r in zip(frame["patient_id"], frame["region"])],
                             index=frame.index, dtype=object)
        return frame["patient_id"].map(lookup).astype(object)
    # a study-table column: per patient and group when constant, per finding at lesion level
    keys = study.group_keys
    rows = study.findings if column in study.findings else pd.DataFrame(columns=["patient_id", column])
    per_patient = rows.groupby(["patient_id", *keys])[column].agg(lambda s: _constant(s)) if len(rows) else {}
    values = []
    for unit in frame.itertuples(index=False):
        key = (unit.patient_id, *(getattr(unit, k) for k in keys))
        if level == "lesion" and isinstance(getattr(unit, column, None), str) and getattr(unit, column):
            values.append(getattr(unit, column))
        else:
            values.append(per_patient.get(key, "") if hasattr(per_patient, "get") else "")
    return pd.Series(values, index=frame.index, dtype=object)


def not_separable(frame: pd.DataFrame) -> pd.Series:
    """True for each row whose ``segmentation_status`` is "not separable" (also "not-separable")."""
    if "segmentation_status" not in frame:
        return pd.Series(False, index=frame.index)
    status = frame["segmentation_status"].fillna("").astype(str).str.strip().str.lower().str.replace("-", " ")
    return status == NOT_SEPARABLE


def _read_patients(study: Study) -> pd.DataFrame:
    """(patient_id, modality, tracer, reader[, time_point]) of every patient read in every group."""
    keys = list(study.group_keys)
    return study.reads.drop_duplicates(["patient_id", *keys])[["patient_id", *keys]]


def _per_time_point(study: Study, reads: pd.DataFrame):
    """(the reads of each time point, the reference standard at it); one pair, all reads, without time points."""
    if not study.timed:
        yield reads, study.reference.at(study.time_points[0])
        return
    for when in study.time_points:
        yield reads[reads[TIME_POINT] == when], study.reference.at(when)


def _any_positive(lesions: pd.DataFrame, units: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """For each unit, 1 when any of its lesions (matched on ``keys``) is called positive."""
    calls = lesions.groupby(list(keys))["call"].max()
    index = pd.MultiIndex.from_frame(units[list(keys)])
    return calls.reindex(index).fillna(0).astype(int).to_numpy()


def _equivocal_counts(lesions: pd.DataFrame, units: pd.DataFrame, keys: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """For each unit, the number of its equivocal findings, and whether its call rests on them
    (at least one equivocal finding and no positive one: the rule decides the unit's call)."""
    index = pd.MultiIndex.from_frame(units[list(keys)])
    grouped = lesions.assign(positive=lesions["finding_call"] == "positive").groupby(list(keys))
    count = grouped["equivocal"].sum().reindex(index).fillna(0).astype(int).to_numpy()
    positive = grouped["positive"].any().reindex(index).fillna(False).astype(bool).to_numpy()
    return count, (count > 0) & ~positive


def _reader_summary(lesions: pd.DataFrame, units: pd.DataFrame, keys: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """For each unit (patient or region), the reader's confidence and call over its findings.

    ``confidence`` is the highest confidence of the unit's findings (the most suspicious finding
    decides a patient's score, as in patient-level reader ROC studies); a unit without findings has
    :data:`NO_FINDING_CONFIDENCE` (1, definitely benign); a unit whose findings carry no confidence
    has NaN. ``reader_call`` is the strongest reader call of its findings (positive > equivocal >
    negative), ``""`` when none is recorded."""
    index = pd.MultiIndex.from_frame(units[list(keys)])
    found = lesions[lesions["found"]]
    if not len(found):
        return np.full(len(units), float(NO_FINDING_CONFIDENCE)), np.array([""] * len(units), dtype=object)
    grouped = found.groupby(list(keys))
    confidence = grouped["confidence"].max().reindex(index).to_numpy(dtype=float)
    has_finding = grouped.size().reindex(index).fillna(0).to_numpy() > 0
    confidence = np.where(has_finding, confidence, float(NO_FINDING_CONFIDENCE))
    rank = found.assign(rank=found["reader_call"].map(_READER_CALL_RANK).fillna(0)).groupby(list(keys))["rank"].max()
    names = {v: k for k, v in _READER_CALL_RANK.items()}
    calls = np.array([names[int(r)] for r in rank.reindex(index).fillna(0).to_numpy()], dtype=object)
    return confidence, calls


def check_equivocal(equivocal: str) -> None:
    """Refuse an equivocal rule other than :data:`EQUIVOCAL_RULES`."""
    if equivocal not in EQUIVOCAL_RULES:
        raise StatsError(f"Unknown --equivocal {equivocal!r}; choose negative (the protocol: only uptake clearly above "
                         "the liver is positive) or positive.")


def lesion_units(study: Study, equivocal: str = "negative") -> pd.DataFrame:
    """One row per (group, reference lesion of a patient read in the group): truth, call, found, scores.

    With several time points, the lesions of a group at a time point are the reference rows for that
    time point and those for every time point (empty ``time_point``); a lesion whose rows are for other
    time points only is no unit there.

    Parameters
    ----------
    study : Study
        The checked study (:func:`load_study`).
    equivocal : {"negative", "positive"}
        How an equivocal finding is called (default negative: the protocol's "clearly positive").

    Returns
    -------
    pandas.DataFrame
        Reference columns, the finding's columns (``finding_call`` is its call as used, from the
        study's call source, ``""`` without a finding; ``suv_call`` the SUV rule's and ``reader_call``
        the reader's, ``""`` when not recorded; ``confidence`` the reader's 1-5, NaN when the finding
        has none, :data:`NO_FINDING_CONFIDENCE` (1, definitely benign) without a finding;
        ``segmentation_status``, ``flags``, ``warnings`` ``""`` when the table lacks them),
        ``found``, ``call`` (0/1 under the rule), ``equivocal`` (bool) and ``equivocal_findings`` (0/1).
    """
    check_equivocal(equivocal)
    keys = list(study.group_keys)
    parts = [reads.merge(reference.lesions, on="patient_id", how="inner")
             for reads, reference in _per_time_point(study, _read_patients(study))]
    units = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    lesions = study.reference.lesions
    keep = ["patient_id", "lesion_id", *keys, "session_id", "finding_call", "suv_call", "reader_call", "confidence",
            "table_row",
            *[c for c in SCORES if c in study.findings], *QUALITY_COLUMNS,
            *[c for c in ("segmentation_file", "cause", "finding_id", "match_status") if c in study.findings],
            *[c for c in study.group_by if c in study.findings and c not in lesions and c != "region"
              and c not in QUALITY_COLUMNS]]
    # the table's columns the coded causes read (netpet.stats.causes); named table_<column> when the reference
    # standard has a column of that name too
    for_causes = [c for c in CAUSE_TABLE_COLUMNS if c in study.findings and c not in keep]
    found = study.findings[list(dict.fromkeys(keep + for_causes))]
    found = found.rename(columns={c: f"table_{c}" for c in for_causes if c in lesions.columns})
    units = units.merge(found, on=["patient_id", "lesion_id", *keys], how="left")
    units["found"] = units["finding_call"].notna()
    units["finding_call"] = units["finding_call"].fillna("")
    units["suv_call"] = units["suv_call"].fillna("")
    units["reader_call"] = units["reader_call"].fillna("")
    # a lesion without a finding: nothing was reported there, confidence 1 (definitely benign); a finding whose
    # reader recorded no confidence keeps NaN (no value)
    units["confidence"] = units["confidence"].astype(float).where(units["found"], float(NO_FINDING_CONFIDENCE))
    for column in QUALITY_COLUMNS:
        units[column] = units[column].fillna("")
    counted = ("positive", "equivocal") if equivocal == "positive" else ("positive",)
    units["call"] = units["finding_call"].isin(counted).astype(int)
    units["equivocal"] = (units["finding_call"] == "equivocal").to_numpy()
    units["equivocal_findings"] = units["equivocal"].astype(int)
    for column in study.group_by:
        units[column] = _group_value(study, column, units, "lesion")
    return units.reset_index(drop=True)


def patient_units(study: Study, lesions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One row per (group, patient read in the group): truth and call under the patient's endpoint.

    Without indications in the reference standard (:attr:`Reference.indications` False) the call is
    any positive finding, as before. With them each patient's call follows its indication's endpoint
    (:data:`ENDPOINTS`): for a patient with disease, a malignant lesion called positive (NET staging,
    NET work-up, follow-up) or the culprit called positive (TIO localisation); for a patient without
    disease, any positive finding. ``any_positive`` keeps the plain rule's call and ``endpoint`` names
    the rule applied. ``equivocal`` says whether the call rests on equivocal findings among the
    lesions the endpoint looks at; ``equivocal_findings`` counts all of the patient's.

    With several time points the truth is the patient's at the group's time point (disease or
    recurrence present then): the patient level is detection per time point."""
    lesions = lesion_units(study) if lesions is None else lesions
    keys = list(study.group_keys)
    parts = [reads.merge(reference.patients[["patient_id", "truth"]], on="patient_id", how="left")
             for reads, reference in _per_time_point(study, _read_patients(study))]
    units = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    unit_keys = ["patient_id", *keys]
    units["any_positive"] = _any_positive(lesions, units, unit_keys)
    units["equivocal_findings"], units["equivocal"] = _equivocal_counts(lesions, units, unit_keys)
    if study.reference.indications:
        indication = dict(zip(study.reference.patients["patient_id"], study.reference.patients["indication"]))
        units["indication"] = units["patient_id"].map(indication).fillna(NET_STAGING)
        index = pd.MultiIndex.from_frame(units[unit_keys])
        malignant = lesions[lesions["truth"] == 1]
        culprit = malignant[malignant["culprit"] == 1]
        has_malignant = malignant.groupby(unit_keys).size().reindex(index).fillna(0).to_numpy() > 0
        has_culprit = culprit.groupby(unit_keys).size().reindex(index).fillna(0).to_numpy() > 0
        truth = units["truth"].to_numpy() == 1
        tio = (units["indication"] == TIO_LOCALISATION).to_numpy()
        units["endpoint"] = np.where(truth & tio & has_culprit, ENDPOINT_CULPRIT,
                                     np.where(truth & has_malignant, ENDPOINT_MALIGNANT, ENDPOINT_ANY))
        units["call"] = units["any_positive"]
        for endpoint, part in ((ENDPOINT_MALIGNANT, malignant), (ENDPOINT_CULPRIT, culprit)):
            where = (units["endpoint"] == endpoint).to_numpy()
            if where.any():
                units.loc[where, "call"] = _any_positive(part, units[where], unit_keys)
                units.loc[where, "equivocal"] = _equivocal_counts(part, units[where], unit_keys)[1]
    else:
        units["endpoint"] = ENDPOINT_ANY
        units["call"] = units["any_positive"]
    first = [*unit_keys, "truth", "call"]
    units = units[[*first, *[c for c in units.columns if c not in first]]].copy()
    units["confidence"], units["reader_call"] = _reader_summary(lesions, units, ["patient_id", *keys])
    for column in study.group_by:
        units[column] = _group_value(study, column, units, "patient")
    return units.reset_index(drop=True)


def region_units(study: Study, lesions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One row per (group, patient read, region of the study): truth and call within the region."""
    lesions = lesion_units(study) if lesions is None else lesions
    keys = list(study.group_keys)
    if not study.regions:
        return pd.DataFrame(columns=["patient_id", *keys, "region", "truth", "call", "equivocal_findings",
                                     "equivocal", "confidence", "reader_call"])
    parts = []
    for reads, reference in _per_time_point(study, _read_patients(study)):
        units = reads.merge(pd.DataFrame({"region": study.regions}), how="cross")
        truth = reference.lesions.groupby(["patient_id", "region"])["truth"].max()
        explicit = pd.Series(reference.region_rows, dtype=float)
        index = pd.MultiIndex.from_frame(units[["patient_id", "region"]])
        from_lesions = truth.reindex(index).to_numpy(dtype=float)
        from_rows = explicit.reindex(index).to_numpy(dtype=float) if len(explicit) else np.full(len(units), np.nan)
        units["truth"] = np.fmax(np.nan_to_num(from_lesions, nan=0.0), np.nan_to_num(from_rows, nan=0.0)).astype(int)
        parts.append(units)
    units = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    units["call"] = _any_positive(lesions, units, ["patient_id", *keys, "region"])
    units["equivocal_findings"], units["equivocal"] = _equivocal_counts(lesions, units, ["patient_id", *keys, "region"])
    units["confidence"], units["reader_call"] = _reader_summary(lesions, units, ["patient_id", *keys, "region"])
    for column in study.group_by:
        units[column] = _group_value(study, column, units, "region")
    return units.reset_index(drop=True)


def units_for(study: Study, equivocal: str = "negative") -> Dict[str, pd.DataFrame]:
    """The units of every level (see :func:`lesion_units` for ``equivocal``)."""
    lesions = lesion_units(study, equivocal)
    return {"patient": patient_units(study, lesions), "lesion": lesions, "region": region_units(study, lesions)}
