"""StudyStats inputs: the study table and the reference standard, checked and joined into units.

The reference standard (CSV) has the columns ``patient_id, lesion_id, region, truth, standard``
(more columns are kept and can be grouped by). A row is

* a lesion: ``lesion_id`` given; its ``truth`` is 1 (malignant) or 0 (benign);
* a region of a patient: ``lesion_id`` empty, ``region`` given: the region's truth when the
  lesions do not tell it (e.g. a region proven free of disease, or involved without a lesion id);
* a patient: ``lesion_id`` and ``region`` empty: a patient without lesions (truth 0) or a
  patient's overall truth.

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

Units of analysis, per group (modality, tracer, reader and the user's group-by columns):

* patient: every patient with at least one row in the group; truth = any malignant lesion (or
  the patient row); call = any positive finding (equivocal findings count as the rule says);
* lesion: every reference lesion of those patients; a lesion without a finding in the group is a
  negative call there;
* region: every (patient, region) of those patients over the study's regions (all regions the
  reference standard names, or the list given); truth = any malignant lesion in it (or the region
  row); call = any positive finding in it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from netpet.errors import printable
from netpet.quant.table import StudyTable, TableError
from netpet.schema import KEY
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


def parse_truth(value: str, where: str, column: str = "truth") -> int:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise StatsError(f"{where}: column {column} is {value!r}; write 1 or 0 (malignant/benign, true/false, "
                     "positive/negative, yes/no).")


@dataclass
class Reference:
    """The reference standard, checked."""

    path: str
    lesions: pd.DataFrame            # one row per (patient_id, lesion_id): region, truth, standard, extras
    patients: pd.DataFrame           # one row per patient_id: truth, explicit (bool), extras
    region_rows: Dict[Tuple[str, str], int]
    extra_columns: List[str]


def read_reference(path: str) -> Reference:
    """Read and check a reference-standard CSV (see module docstring).

    Raises
    ------
    StatsError
        Missing file or columns, an unreadable truth, a duplicated key or conflicting truths,
        each naming the file, the row (line number) and the column.
    """
    if not os.path.isfile(path):
        raise StatsError(f"The reference standard {path} does not exist; give the CSV with columns "
                         f"{', '.join(REFERENCE_REQUIRED)}.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StatsError(f"Cannot read the reference standard {path}: {exc}.") from exc
    missing = [c for c in REFERENCE_REQUIRED if c not in header]
    if missing:
        shown = ", ".join(printable(h) for h in header) or "none"
        raise StatsError(f"The reference standard {path} lacks the column(s) {', '.join(missing)}; it needs "
                         f"{', '.join(REFERENCE_REQUIRED)} (its columns: {shown}).")
    extras = [c for c in header if c not in REFERENCE_REQUIRED]
    # one pass over the rows, then per-patient look-ups: linear in the number of rows (the checks below
    # used to scan every lesion for each region and patient row, which was quadratic)
    lesions: Dict[Tuple[str, str], Tuple[int, Dict[str, str]]] = {}
    regions: Dict[Tuple[str, str], Tuple[int, int]] = {}
    patients: Dict[str, Tuple[int, int]] = {}
    order: Dict[str, None] = {}  # patients in file order
    for i, row in enumerate(rows):
        line = i + 2
        where = f"{path} row {line}"
        patient = row["patient_id"]
        if not patient:
            raise StatsError(f"{where}: column patient_id is empty; every row needs a patient.")
        order.setdefault(patient, None)
        truth = parse_truth(row["truth"], where)
        lesion, region = row["lesion_id"], row["region"]
        if lesion:
            key = (patient, lesion)
            if key in lesions:
                first, other = lesions[key]
                kind = "conflicting truth" if int(other["truth"]) != truth else "duplicated key"
                raise StatsError(f"{where}: {kind}: patient {printable(patient)} lesion {printable(lesion)} is also "
                                 f"on row {first}; keep one row per lesion.")
            lesions[key] = (line, {**row, "truth": str(truth)})
        elif region:
            key = (patient, region)
            if key in regions:
                raise StatsError(f"{where}: duplicated key: patient {printable(patient)} region {printable(region)} "
                                 f"(empty lesion_id) is also on row {regions[key][0]}; keep one row per region.")
            regions[key] = (line, truth)
        else:
            if patient in patients:
                raise StatsError(f"{where}: duplicated key: patient {printable(patient)} has a patient row (empty "
                                 f"lesion_id and region) on row {patients[patient][0]} too; keep one.")
            patients[patient] = (line, truth)
    malignant_in_region: Dict[Tuple[str, str], List[str]] = {}
    malignant_of_patient: Dict[str, List[str]] = {}
    lesion_rows_of_patient: Dict[str, List[Dict[str, str]]] = {}
    for (patient, lesion), (_, r) in lesions.items():
        lesion_rows_of_patient.setdefault(patient, []).append(r)
        if r["truth"] == "1":
            malignant_in_region.setdefault((patient, r["region"]), []).append(lesion)
            malignant_of_patient.setdefault(patient, []).append(lesion)
    for (patient, region), (_, truth) in regions.items():
        if truth == 1:
            malignant_of_patient.setdefault(patient, []).append(f"region {region}")
    # conflicts between a region or patient row and its lesions
    for (patient, region), (line, truth) in regions.items():
        positive = malignant_in_region.get((patient, region), [])
        if truth == 0 and positive:
            raise StatsError(f"{path} row {line}: conflicting truth: region {printable(region)} of patient "
                             f"{printable(patient)} is 0 but its lesion(s) {printable(', '.join(positive))} are "
                             "malignant; fix either row.")
    for patient, (line, truth) in patients.items():
        positive = malignant_of_patient.get(patient, [])
        if truth == 0 and positive:
            raise StatsError(f"{path} row {line}: conflicting truth: patient {printable(patient)} is 0 (no disease) "
                             f"but {printable(', '.join(positive))} are malignant; fix either row.")
    lesion_frame = pd.DataFrame(
        [{"patient_id": p, "lesion_id": lesion, "region": r["region"], "truth": int(r["truth"]),
          "standard": r["standard"], "reference_row": line, **{c: r.get(c, "") for c in extras}}
         for (p, lesion), (line, r) in lesions.items()],
        columns=["patient_id", "lesion_id", "region", "truth", "standard", "reference_row", *extras])
    patient_rows = []
    for patient in order:
        from_lesions = int(patient in malignant_of_patient)
        explicit = patients.get(patient)
        truth = max(from_lesions, explicit[1]) if explicit else from_lesions
        patient_rows.append({"patient_id": patient, "truth": truth, "explicit": explicit is not None})
    patient_frame = pd.DataFrame(patient_rows, columns=["patient_id", "truth", "explicit"])
    for column in extras:  # patient-level values of the extra columns (when constant within a patient)
        patient_frame[column] = [_constant([r.get(column, "") for r in lesion_rows_of_patient.get(pid, [])])
                                 for pid in patient_frame["patient_id"]]
    return Reference(path, lesion_frame, patient_frame, {k: v[1] for k, v in regions.items()}, extras)


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
    reads: pd.DataFrame              # (modality, tracer, reader, patient_id, session_id) of every row
    regions: List[str]
    group_by: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def groups(self) -> List[Tuple[str, ...]]:
        keys = self.reads[list(GROUP_KEYS)].drop_duplicates().sort_values(list(GROUP_KEYS))
        return [tuple(r) for r in keys.itertuples(index=False)]


def read_table(path: str) -> Tuple[pd.DataFrame, str]:
    """The study table as text columns with a ``table_row`` label naming each row's place in the file."""
    if not os.path.exists(path):
        raise StatsError(f"The study table {path} does not exist; export lesions with netpet quantify (or SUVQuant) "
                         "first.")
    try:
        table = StudyTable(path)
        rows = table.read()
        columns = table.columns()
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


def load_study(table_path: str, reference_path: str, group_by: Sequence[str] = (),
               regions: Optional[Sequence[str]] = None,
               patient_ids: Optional[Callable[[str], str]] = None) -> Study:
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

    Returns
    -------
    Study
        ``findings`` holds each finding's ``finding_call`` (``positive``, ``equivocal`` or
        ``negative``) and its quality columns (empty when the table lacks them); values of
        :data:`VOLUME_SCORES` of a finding that is not separable are NaN (a warning says when the
        table held numbers there).

    Raises
    ------
    StatsError
        An unknown patient or lesion id, a call other than positive, equivocal or negative on a
        finding (the row and value named), a score (:data:`SCORES`) that is not a finite number of
        at most :data:`SCORE_LIMIT` (inf, NaN, text; the row and column named), the same lesion found
        in two sessions of one group, a group-by column that neither file has.
    """
    reference = read_reference(reference_path)
    frame, _ = read_table(table_path)
    if patient_ids is not None:
        reference.lesions["patient_id"] = reference.lesions["patient_id"].map(patient_ids)
        reference.patients["patient_id"] = reference.patients["patient_id"].map(patient_ids)
        reference.region_rows = {(patient_ids(p), r): n for (p, r), n in reference.region_rows.items()}
        frame["patient_id"] = frame["patient_id"].astype(str).str.strip().map(patient_ids)
    for column in ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "call"):
        frame[column] = frame[column].astype(str).str.strip()
        # a key or call holding a control character (NUL, ESC, a line break of a hand-edited table) would
        # make a group or id of its own that no report can show as written: refused, named
        bad = frame[column].str.contains(r"[\x00-\x1f\x7f]", regex=True)
        if bad.any():
            row = frame[bad].iloc[0]
            raise StatsError(f"{row['table_row']}: column {column} holds a control character ({printable(row[column])}); "
                             "keys and calls are plain text: correct the table.")
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
    known = reference.lesions.set_index(["patient_id", "lesion_id"])
    keys = list(zip(findings["patient_id"], findings["lesion_id"]))
    missing = [i for i, k in enumerate(keys) if k not in known.index]
    if missing:
        row = findings.iloc[missing[0]]
        raise StatsError(f"{row['table_row']}: unknown id: lesion {printable(row['lesion_id'])} of patient "
                         f"{printable(row['patient_id'])} is not in the reference standard {reference.path}; every "
                         "finding needs a reference (truth 0 for a false positive).")
    calls = []
    for row in findings.itertuples(index=False):
        text = row.call.lower()
        if text in _CALL_TRUE:
            calls.append("positive")
        elif text in _CALL_FALSE:
            calls.append("negative")
        elif text in _CALL_EQUIVOCAL:
            calls.append("equivocal")
        else:
            raise StatsError(f"{row.table_row}: column call is {row.call!r}; write positive, equivocal or negative.")
    findings["finding_call"] = pd.Series(calls, index=findings.index, dtype=object)
    for column in QUALITY_COLUMNS:
        findings[column] = findings[column].astype(str).str.strip() if column in findings else ""
    matched = known.loc[keys]
    findings["truth"] = matched["truth"].to_numpy()
    findings["table_region"] = findings["region"] if "region" in findings else ""
    findings["region"] = [r if r else t for r, t in zip(matched["region"].to_numpy(), findings["table_region"])]
    findings["standard"] = matched["standard"].to_numpy()
    duplicated = findings.duplicated(["patient_id", "lesion_id", *GROUP_KEYS], keep=False)
    if duplicated.any():
        rows = findings[duplicated].sort_values(["patient_id", "lesion_id"])
        first = rows.iloc[0]
        same = rows[(rows["patient_id"] == first["patient_id"]) & (rows["lesion_id"] == first["lesion_id"]) &
                    (rows["modality"] == first["modality"]) & (rows["tracer"] == first["tracer"]) &
                    (rows["reader"] == first["reader"])]
        group = printable(f"{first['modality']} {first['tracer']} reader {first['reader']}")
        raise StatsError(f"{same.iloc[1]['table_row']}: duplicated key: lesion {printable(first['lesion_id'])} of "
                         f"patient {printable(first['patient_id'])} has {len(same)} findings for {group} "
                         f"(sessions {printable(', '.join(same['session_id']))}; also "
                         f"{same.iloc[0]['table_row']}); keep one, or give the sessions different modality labels.")
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
    warnings = []
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
        if column in REFERENCE_REQUIRED and column != "region":
            raise StatsError(f"--group-by {column}: {column} is one of the reference standard's own columns "
                             f"({', '.join(REFERENCE_REQUIRED)}), which are not groups (region is); copy it into a "
                             "column of another name to group by it.")
        if column not in reference.extra_columns and column not in frame.columns and column != "region":
            raise StatsError(f"--group-by {column}: neither the study table {table_path} nor the reference standard "
                             f"{reference.path} has a column {column!r}.")
    reads = frame[["patient_id", "session_id", *GROUP_KEYS]].drop_duplicates()
    region_list = list(regions) if regions else sorted(
        {r for r in reference.lesions["region"] if r} | {r for (_, r) in reference.region_rows})
    if not region_list:
        warnings.append("The reference standard names no regions: no region-level analysis.")
    not_read = sorted(set(reference.patients["patient_id"]) - set(reads["patient_id"]))
    if not_read:
        warnings.append(f"{len(not_read)} patient(s) of the reference standard have no row in the study table "
                        f"(not read in any group): {', '.join(not_read[:10])}{' ...' if len(not_read) > 10 else ''}")
    return Study(table_path, reference, findings, reads, region_list, list(group_by), warnings)


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
    rows = study.findings if column in study.findings else pd.DataFrame(columns=["patient_id", column])
    per_patient = rows.groupby(["patient_id", *GROUP_KEYS])[column].agg(lambda s: _constant(s)) if len(rows) else {}
    values = []
    for unit in frame.itertuples(index=False):
        key = (unit.patient_id, unit.modality, unit.tracer, unit.reader)
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
    """(patient_id, modality, tracer, reader) of every patient read in every group."""
    return study.reads.drop_duplicates(["patient_id", *GROUP_KEYS])[["patient_id", *GROUP_KEYS]]


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


def check_equivocal(equivocal: str) -> None:
    """Refuse an equivocal rule other than :data:`EQUIVOCAL_RULES`."""
    if equivocal not in EQUIVOCAL_RULES:
        raise StatsError(f"Unknown --equivocal {equivocal!r}; choose negative (the protocol: only uptake clearly above "
                         "the liver is positive) or positive.")


def lesion_units(study: Study, equivocal: str = "negative") -> pd.DataFrame:
    """One row per (group, reference lesion of a patient read in the group): truth, call, found, scores.

    Parameters
    ----------
    study : Study
        The checked study (:func:`load_study`).
    equivocal : {"negative", "positive"}
        How an equivocal finding is called (default negative: the protocol's "clearly positive").

    Returns
    -------
    pandas.DataFrame
        Reference columns, the finding's columns (``finding_call`` is its call as written,
        ``""`` without a finding; ``segmentation_status``, ``flags``, ``warnings`` ``""`` when the
        table lacks them), ``found``, ``call`` (0/1 under the rule), ``equivocal`` (bool) and
        ``equivocal_findings`` (0/1).
    """
    check_equivocal(equivocal)
    reads = _read_patients(study)
    lesions = study.reference.lesions
    units = reads.merge(lesions, on="patient_id", how="inner")
    keep = ["patient_id", "lesion_id", *GROUP_KEYS, "session_id", "finding_call", "table_row",
            *[c for c in SCORES if c in study.findings], *QUALITY_COLUMNS,
            *[c for c in ("segmentation_file", "cause") if c in study.findings],
            *[c for c in study.group_by if c in study.findings and c not in lesions and c != "region"
              and c not in QUALITY_COLUMNS]]
    found = study.findings[keep]
    units = units.merge(found, on=["patient_id", "lesion_id", *GROUP_KEYS], how="left")
    units["found"] = units["finding_call"].notna()
    units["finding_call"] = units["finding_call"].fillna("")
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
    """One row per (group, patient read in the group): truth and call (any positive finding)."""
    lesions = lesion_units(study) if lesions is None else lesions
    units = _read_patients(study).merge(study.reference.patients[["patient_id", "truth"]], on="patient_id", how="left")
    units["call"] = _any_positive(lesions, units, ["patient_id", *GROUP_KEYS])
    units["equivocal_findings"], units["equivocal"] = _equivocal_counts(lesions, units, ["patient_id", *GROUP_KEYS])
    for column in study.group_by:
        units[column] = _group_value(study, column, units, "patient")
    return units.reset_index(drop=True)


def region_units(study: Study, lesions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One row per (group, patient read, region of the study): truth and call within the region."""
    lesions = lesion_units(study) if lesions is None else lesions
    if not study.regions:
        return pd.DataFrame(columns=["patient_id", *GROUP_KEYS, "region", "truth", "call", "equivocal_findings",
                                     "equivocal"])
    units = _read_patients(study).merge(pd.DataFrame({"region": study.regions}), how="cross")
    reference = study.reference
    truth = reference.lesions.groupby(["patient_id", "region"])["truth"].max()
    explicit = pd.Series(reference.region_rows, dtype=float)
    index = pd.MultiIndex.from_frame(units[["patient_id", "region"]])
    from_lesions = truth.reindex(index).to_numpy(dtype=float)
    from_rows = explicit.reindex(index).to_numpy(dtype=float) if len(explicit) else np.full(len(units), np.nan)
    units["truth"] = np.fmax(np.nan_to_num(from_lesions, nan=0.0), np.nan_to_num(from_rows, nan=0.0)).astype(int)
    units["call"] = _any_positive(lesions, units, ["patient_id", *GROUP_KEYS, "region"])
    units["equivocal_findings"], units["equivocal"] = _equivocal_counts(lesions, units,
                                                                        ["patient_id", *GROUP_KEYS, "region"])
    for column in study.group_by:
        units[column] = _group_value(study, column, units, "region")
    return units.reset_index(drop=True)


def units_for(study: Study, equivocal: str = "negative") -> Dict[str, pd.DataFrame]:
    """The units of every level (see :func:`lesion_units` for ``equivocal``)."""
    lesions = lesion_units(study, equivocal)
    return {"patient": patient_units(study, lesions), "lesion": lesions, "region": region_units(study, lesions)}
