"""StudyStats staging endpoints: per-patient N, M and stage group, their accuracy and agreement, per group.

:func:`staging_section` takes the :class:`~netpet.stats.data.Study` and its lesion units
(:func:`netpet.stats.data.lesion_units`) and returns the JSON-ready ``staging`` section of
``netpet stats``; :func:`staging_html` renders it for the report, :func:`staging_lines` for the CLI
summary.

Groups
    The study's group keys (``Study.group_keys``: :data:`netpet.stats.data.GROUP_KEYS`, i.e.
    modality, tracer, reader, and ``time_point`` when the table has several time points), in the
    study's group order. A group's patients are the patients read in it (the study's reads; a
    patient read without any finding is staged N0 M0). The user's ``--group-by`` columns do not
    split the staging: it is per patient, and most of those columns are lesion- or region-level.
Staging from the findings (the test)
    Every lesion unit of the group whose finding counts as positive (``positive``; ``equivocal`` too
    when ``equivocal="positive"``). A found lesion's region and nodal station are the reference
    standard's ``region`` and ``site``; a finding that matched no reference lesion (a unit of its own,
    made by the correspondence) has its region only, so a positive node among them has no station.
Staging from the reference standard
    The malignant reference lesions of the group's units (``truth`` 1: the lesions present at the
    group's time point), plus the reference's region rows with truth 1 at that time point
    (:meth:`netpet.stats.data.Reference.at`; a region involved without a lesion id; no station). A
    patient whose reference gives only a patient-level truth of 1 (no malignant lesion or region)
    cannot be staged from the reference: listed with that reason.
Categories
    :func:`netpet.clinical.staging.stage_patient` with the patient's ``primary`` (the reference's
    ``primary`` column, patient level): N0/N1 by regional vs non-regional nodal stations of the
    primary, M0/M1a (hepatic only)/M1b (extrahepatic only, non-regional nodes included)/M1c (both),
    and the coarse stage group N0M0 (stage I-III by T) / III (N1 M0) / IV (M1), after the AJCC
    Cancer Staging Manual, 8th edition (2017), neuroendocrine chapters 29-34, and the ENETS TNM
    proposals (Rindi et al., Virchows Arch 2006;449:395-401 and 2007;451:757-762); see that module
    for the rules and their [from memory] marks.
Patients that cannot be staged
    An unknown primary with a positive node, a positive node without station, a region or station
    the staging rules do not know, a primary the GEP-NET TNM does not apply to (TIO), a primary that
    varies between the patient's rows: the category that cannot be told is None; the patient is
    counted and listed (``unstageable``) with the reason, and left out of the measures that need
    that category (``excluded``), never dropped silently.
Measures per group (:func:`netpet.clinical.staging_stats.staging_accuracy`)
    Correct N, correct M, correct N and M, correct stage group: the proportion of the patients staged
    by both findings and reference, with Wilson score intervals (Wilson EB, J Am Stat Assoc
    1927;22:209-212; or the method asked for), over every patient read (a disease-free patient is
    N0 M0 by the reference, and a false-positive distant finding over-stages it) and, as
    ``accuracy_with_disease``, over the patients with disease at the group's time point (patient truth
    1) only, the usual denominator of staging studies; the confusion tables (rows reference, columns
    findings); up- and down-staging against the reference (over- and under-staging) with the exact
    McNemar test (McNemar Q, Psychometrika 1947;12:153-157, exact binomial form).
Between groups
    Every two groups that differ in exactly one of modality or tracer and agree in every other key
    (the same reader and time point): PET/MR vs PET/CT, DOTATATE vs FDG, A being PET/MR or DOTATATE.
    On the patients read in both: per axis (N, M, stage group) the table (rows B, columns A), Cohen's
    kappa unweighted and weighted (linear and quadratic disagreement weights; for M also by
    compartments) with asymptotic intervals (Cohen J, Psychol Bull 1968;70:213-220; standard error
    of Fleiss JL, Cohen J, Everitt BS, Psychol Bull 1969;72:323-327), Bowker's test of symmetry
    (Bowker AH, J Am Stat Assoc 1948;43:572-574) and the Stuart-Maxwell test of marginal homogeneity
    (Stuart A, Biometrika 1955;42:412-416; Maxwell AE, Br J Psychiatry 1970;116:651-655); the
    patients A stages higher (up) or lower (down) than B, with the exact McNemar test of up vs
    down; each one's up- and down-staging against the reference on the same patients; and the
    patients staged correctly by A only vs B only with the exact McNemar test.

Reference standard columns
    ``site`` (the nodal station of a node, :data:`netpet.clinical.staging.STATION_SYNONYMS`) and
    ``primary``. Without both the section says staging is not available (``available`` false and a
    one-sentence ``reason``); with one of them it is computed, with a warning of what cannot be told.
"""

from __future__ import annotations

import html
import itertools
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from netpet.clinical.staging import (M_CATEGORIES, N_CATEGORIES, STAGE_GROUPS, StagingError, stage_group,
                                     stage_patient)
from netpet.stats.analysis import _clean  # the same JSON-safe conversion as the rest of the result
from netpet.stats.report import _table  # the report's own table markup
from netpet.clinical.staging_stats import (AXES, compare_m, compare_n, compare_stage_group, paired_correctness,
                                           staging_accuracy, staging_agreement, up_down_staging)
from netpet.errors import printable
from netpet.stats.data import GROUP_KEYS, Study, check_equivocal
from netpet.stats.intervals import CI_METHODS, StatsError

#: group keys beyond GROUP_KEYS that split the staging when the units carry them
EXTRA_GROUP_KEYS = ("time_point",)
#: the keys in which two compared groups may differ (one of them, and only it)
COMPARED_KEYS = ("modality", "tracer")
#: the first group of a pair (A): the study's question is PET/MR vs PET/CT and DOTATATE vs FDG
PREFERRED_FIRST = {"modality": ("PET/MR",), "tracer": ("dotatate",)}
COMPARE = {"n": compare_n, "m": compare_m, "stage_group": compare_stage_group}
AXIS_NAMES = {"n": "N", "m": "M", "stage_group": "stage group", "nm": "N and M"}
UNDETERMINED = "undetermined"

METHOD = (
    "Per patient and group, N (N0/N1: a positive regional node of the primary) and M (M0; M1a hepatic only; M1b "
    "extrahepatic only, non-regional nodes included; M1c both) and the coarse stage group (N0M0: stage I-III by T; "
    "III: N1 M0; IV: any M1) after the AJCC Cancer Staging Manual, 8th edition (2017), chapters 29-34, and the "
    "ENETS TNM proposals (Rindi et al., Virchows Arch 2006 and 2007), from the positive findings (region and nodal "
    "station of the matched reference lesion) and from the malignant reference lesions present at the time point. "
    "Patients whose N or M cannot be told (unknown primary with a positive node, node without station) are listed "
    "and left out of that measure. Accuracy: correct N, M, N and M, stage group with {ci} {level} % intervals. "
    "Between PET/MR and PET/CT, and DOTATATE and FDG (same reader and time point), on the patients read in both: "
    "Cohen's weighted kappa (Cohen 1968; linear and quadratic weights; asymptotic SE of Fleiss, Cohen and Everitt "
    "1969), Bowker's test of symmetry (1948), the Stuart-Maxwell test of marginal homogeneity (Stuart 1955, "
    "Maxwell 1970), up- and down-staged patients with the exact McNemar test (McNemar 1947, binomial form), against "
    "each other and against the reference.")


# -- inputs ------------------------------------------------------------------------------------------

def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _group_keys(study: Study, units: pd.DataFrame) -> List[str]:
    """The study's group keys (``Study.group_keys``: time_point joins when the table has several), else
    GROUP_KEYS and :data:`EXTRA_GROUP_KEYS`; only those the units carry."""
    keys = getattr(study, "group_keys", None)
    if keys is None:
        keys = list(GROUP_KEYS) + [k for k in EXTRA_GROUP_KEYS if k not in GROUP_KEYS]
    return [k for k in keys if k in units.columns]


def _sorted_groups(study: Study, keys: Sequence[Tuple[str, ...]]) -> List[Tuple[str, ...]]:
    """Groups in the study's order (time points baseline first, by days from baseline), else as written."""
    order = getattr(study, "group_order", None)
    if order is not None:
        try:
            return sorted(keys, key=order)
        except (ValueError, IndexError, TypeError):  # a group the study's order does not know: as written
            pass
    return sorted(keys)


def _label(group: Dict[str, Any]) -> str:
    return " ".join(_text(group[k]) for k in group if _text(group[k]))


def _counted(units: pd.DataFrame, equivocal: str) -> np.ndarray:
    """Whether each unit's finding counts as positive under the equivocal rule."""
    if "finding_call" in units.columns:
        calls = units["finding_call"].map(_text).str.lower()
        counted = ("positive", "equivocal") if equivocal == "positive" else ("positive",)
        return calls.isin(counted).to_numpy()
    return units["call"].fillna(0).astype(int).to_numpy() == 1


def _primaries(study: Study) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """patient -> primary text, and patient -> the reason it cannot be used (varies within the patient)."""
    reference = study.reference
    primaries: Dict[str, Any] = {}
    broken: Dict[str, str] = {}
    if "primary" not in reference.patients.columns:
        return primaries, broken
    for patient, value in zip(reference.patients["patient_id"], reference.patients["primary"]):
        if value is None:  # netpet.stats.data: None where a column varies within the patient
            values = sorted({_text(v) for v in reference.lesions.loc[reference.lesions["patient_id"] == patient,
                                                                     "primary"] if _text(v)})
            broken[str(patient)] = (f"the primary varies between the patient's rows of {reference.path} "
                                    f"({printable(', '.join(values))}); write one primary per patient")
        else:
            primaries[str(patient)] = _text(value)
    return primaries, broken


def _reads(study: Study, keys: Sequence[str], units: pd.DataFrame) -> Tuple[pd.DataFrame, Optional[str]]:
    """(patient_id, *keys) of every patient read in every group, and a warning when the reads lack a key."""
    reads = study.reads
    from_units = units[["patient_id", *keys]].drop_duplicates() if len(units) else pd.DataFrame(
        columns=["patient_id", *keys])
    if all(k in reads.columns for k in keys):
        both = pd.concat([reads[["patient_id", *keys]], from_units], ignore_index=True)
        return both.astype(str).drop_duplicates().reset_index(drop=True), None
    missing = [k for k in keys if k not in reads.columns]
    return from_units.astype(str).reset_index(drop=True), (
        f"the study's reads lack {', '.join(missing)}: only patients with at least one reference lesion in a group "
        "are staged there")


def _reference_at(study: Study, time_point: Optional[str]) -> Any:
    """The reference standard at a group's time point; a study with one time point (no time_point key) uses the
    reference at that one, as the lesion units do (:func:`netpet.stats.data._per_time_point`): a reference with
    rows for later time points must not lend them to a baseline-only table."""
    return study.reference.at(time_point or study.time_points[0])


def _region_rows(reference: Any) -> Dict[str, List[str]]:
    """patient -> regions of the reference's region rows with truth 1 (involved without a lesion id)."""
    out: Dict[str, List[str]] = {}
    for key, truth in reference.region_rows.items():
        if int(truth) == 1:
            out.setdefault(str(key[0]), []).append(str(key[1]))
    return out


def _truth_only(reference: Any) -> set:
    """Patients whose reference truth is 1 by a patient row alone (no malignant lesion or region row)."""
    patients = reference.patients
    if "explicit" not in patients.columns:
        return set()
    malignant = set(reference.lesions.loc[reference.lesions["truth"] == 1, "patient_id"].astype(str))
    malignant |= set(_region_rows(reference))
    return {str(p) for p, t, e in zip(patients["patient_id"], patients["truth"], patients["explicit"])
            if int(t) == 1 and bool(e) and str(p) not in malignant}


def _stage(findings: List[Dict[str, Any]], primary: Any, where: str) -> Dict[str, Any]:
    try:
        result = stage_patient(findings, primary, "negative", where=where)
    except StagingError as exc:
        return {"n": None, "m": None, "stage_group": None, "reason": str(exc).rstrip(".")}
    return {"n": result["n"], "m": result["m"], "stage_group": stage_group(result["n"], result["m"]),
            "reason": result["reason"]}


def _unit_findings(frame: pd.DataFrame) -> Dict[str, List[Dict[str, Any]]]:
    site = frame["site"] if "site" in frame.columns else pd.Series([""] * len(frame), index=frame.index)
    out: Dict[str, List[Dict[str, Any]]] = {}
    for patient, region, where in zip(frame["patient_id"].astype(str), frame["region"], site):
        out.setdefault(patient, []).append({"region": _text(region), "site": _text(where), "call": "positive"})
    return out


def _category_counts(values: Iterable[Optional[str]], categories: Sequence[str]) -> Dict[str, int]:
    values = list(values)
    counts = {c: sum(1 for v in values if v == c) for c in categories}
    counts[UNDETERMINED] = sum(1 for v in values if v is None)
    return counts


def _frame(rows: List[Dict[str, Any]], side: str) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": [r["patient_id"] for r in rows],
                         "n": pd.Series([r[side]["n"] for r in rows], dtype=object),
                         "m": pd.Series([r[side]["m"] for r in rows], dtype=object),
                         "stage_group": pd.Series([r[side]["stage_group"] for r in rows], dtype=object)})


# -- the section -------------------------------------------------------------------------------------

def staging_section(study: Study, lesion_units: pd.DataFrame, equivocal: str = "negative", level: float = 0.95,
                    ci: str = "wilson") -> Dict[str, Any]:
    """The staging endpoints of a study, per group and between groups (see the module docstring).

    Parameters
    ----------
    study : Study
        The checked study (:func:`netpet.stats.data.load_study`).
    lesion_units : pandas.DataFrame
        Its lesion units (:func:`netpet.stats.data.lesion_units`): ``patient_id``, the group keys,
        ``region``, ``truth``, ``finding_call`` (or ``call``) and, from the reference standard,
        ``site`` and ``primary``.
    equivocal : {"negative", "positive"}
        How an equivocal finding counts (default negative, the protocol's "clearly positive").
    level : float
        Confidence level of the intervals (0.95).
    ci : str
        Proportion interval (:data:`netpet.stats.intervals.CI_METHODS`; default Wilson).

    Returns
    -------
    dict
        JSON-ready (no NaN): ``available``, ``reason`` (when not available), ``method``,
        ``equivocal_as``, ``level``, ``ci``, ``group_keys``, ``warnings``, ``groups`` (one entry per
        group: ``group``, ``label``, ``patients`` (per patient ``disease`` and the findings' and the
        reference's N, M, stage group and reason), ``counts``, ``unstageable``, ``accuracy``,
        ``accuracy_with_disease``, ``vs_reference``) and
        ``comparisons`` (per pair of groups: ``a``, ``b``, ``differs_in``, ``agreement``,
        ``vs_reference``, ``correct``).

    Raises
    ------
    StatsError
        An equivocal rule other than negative/positive, an unknown interval method, a level outside (0, 1).
    """
    check_equivocal(equivocal)
    if ci not in CI_METHODS:
        raise StatsError(f"Unknown confidence-interval method {ci!r}; choose one of {', '.join(CI_METHODS)}.")
    if not 0.0 < level < 1.0:
        raise StatsError(f"The confidence level must lie between 0 and 1 (got {level}).")
    reference = study.reference
    has_primary, has_site = "primary" in reference.extra_columns, "site" in reference.extra_columns
    keys = _group_keys(study, lesion_units)
    base: Dict[str, Any] = {"available": False, "method": METHOD.format(ci=ci, level=int(round(100 * level))),
                            "equivocal_as": equivocal, "level": level, "ci": ci, "group_keys": keys,
                            "reference_columns": {"primary": has_primary, "site": has_site}, "warnings": [],
                            "groups": [], "comparisons": []}
    if not has_primary and not has_site:
        base["reason"] = (f"Staging is not available: the reference standard {reference.path} has neither a primary "
                          "column (the patient's primary site) nor a site column (each node's station), without which "
                          "regional and distant nodes cannot be told apart.")
        return base
    warnings: List[str] = base["warnings"]
    if not has_primary:
        warnings.append(f"The reference standard {reference.path} has no primary column: every primary is unknown, so "
                        "a patient with a positive node gets no N (and no M where the node decides it).")
    if not has_site:
        warnings.append(f"The reference standard {reference.path} has no site column: nodes have no station, so a "
                        "patient with a positive node gets no N (and no M where the node decides it).")
    primaries, broken = _primaries(study)
    for patient, reason in broken.items():
        warnings.append(f"Patient {printable(patient)}: {reason}.")
    reads, note = _reads(study, keys, lesion_units)
    if note:
        warnings.append(f"Staging: {note}.")
    units = lesion_units.copy()
    for column in ("patient_id", *keys):
        units[column] = units[column].astype(str)
    counted = _counted(units, equivocal)
    malignant = (pd.to_numeric(units["truth"], errors="coerce") == 1).to_numpy()
    groups: List[Dict[str, Any]] = []
    staged: Dict[Tuple[str, ...], List[Dict[str, Any]]] = {}
    by_group = {(k if isinstance(k, tuple) else (k,)): read for k, read in reads.groupby(keys, sort=True)}
    for group_key in _sorted_groups(study, list(by_group)):
        read = by_group[group_key]
        group = dict(zip(keys, group_key))
        at = _reference_at(study, group.get("time_point"))
        involved, truth_only = _region_rows(at), _truth_only(at)
        disease = {str(p): int(t) == 1 for p, t in zip(at.patients["patient_id"], at.patients["truth"])}
        mask = np.ones(len(units), dtype=bool)
        for k, v in group.items():
            mask &= (units[k] == v).to_numpy()
        positive = _unit_findings(units[mask & counted])
        truth = _unit_findings(units[mask & malignant])
        patients = sorted(set(read["patient_id"]))
        rows = []
        for patient in patients:
            primary = primaries.get(patient, "")
            where = f"patient {patient} ({_label(group)})"
            row: Dict[str, Any] = {"patient_id": patient, "primary": primary or None,
                                   "disease": disease.get(patient, False)}
            if patient in broken:
                none = {"n": None, "m": None, "stage_group": None, "reason": broken[patient]}
                row["findings"], row["reference"] = dict(none), dict(none)
            else:
                row["findings"] = _stage(positive.get(patient, []), primary, where)
                ref = truth.get(patient, []) + [{"region": r, "site": "", "call": "positive"}
                                                 for r in involved.get(patient, [])]
                if patient in truth_only:
                    row["reference"] = {"n": None, "m": None, "stage_group": None,
                                        "reason": "the reference standard gives only the patient's truth (no "
                                                  "malignant lesion or region): N and M cannot be told"}
                else:
                    row["reference"] = _stage(ref, primary, where + " reference")
            rows.append(row)
        staged[group_key] = rows
        groups.append(_group_entry(group, rows, ci, level))
    base["groups"] = groups
    base["comparisons"] = _comparisons(keys, staged, level)
    base["available"] = True
    return _clean(base)


def _group_entry(group: Dict[str, Any], rows: List[Dict[str, Any]], ci: str, level: float) -> Dict[str, Any]:
    test, ref = _frame(rows, "findings"), _frame(rows, "reference")
    counts = {side: {axis: _category_counts((r[key][axis] for r in rows), AXES[axis]) for axis in AXES}
              for side, key in (("findings", "findings"), ("reference", "reference"))}
    unstageable = [{"patient_id": r["patient_id"], "side": side, "n": r[side]["n"], "m": r[side]["m"],
                    "stage_group": r[side]["stage_group"], "reason": r[side]["reason"]}
                   for r in rows for side in ("findings", "reference") if r[side]["n"] is None or r[side]["m"] is None]
    accuracy = staging_accuracy(test, ref, ci, level)
    ill = [r for r in rows if r["disease"]]
    with_disease = staging_accuracy(_frame(ill, "findings"), _frame(ill, "reference"), ci, level)
    vs_reference = {axis: up_down_staging(list(ref[axis]), list(test[axis]), COMPARE[axis]) for axis in AXES}
    return {"group": group, "label": _label(group), "n_patients": len(rows), "patients": rows, "counts": counts,
            "unstageable": unstageable,
            "n_unstageable": {side: sum(1 for u in unstageable if u["side"] == side) for side in ("findings",
                                                                                                 "reference")},
            "accuracy": accuracy, "n_with_disease": len(ill), "accuracy_with_disease": with_disease,
            "vs_reference": vs_reference}


def _order(key: str, a: Dict[str, Any], b: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    first = PREFERRED_FIRST.get(key, ())
    if b[key] in first and a[key] not in first:
        return b, a
    return a, b


def _comparisons(keys: Sequence[str], staged: Dict[Tuple[str, ...], List[Dict[str, Any]]],
                 level: float) -> List[Dict[str, Any]]:
    out = []
    for x, y in itertools.combinations(list(staged), 2):  # in the groups' order
        differ = [k for k, u, v in zip(keys, x, y) if u != v]
        if len(differ) != 1 or differ[0] not in COMPARED_KEYS:
            continue
        key = differ[0]
        a, b = _order(key, dict(zip(keys, x)), dict(zip(keys, y)))
        rows_a = {r["patient_id"]: r for r in staged[tuple(a[k] for k in keys)]}
        rows_b = {r["patient_id"]: r for r in staged[tuple(b[k] for k in keys)]}
        common = sorted(set(rows_a) & set(rows_b))
        fa = _frame([rows_a[p] for p in common], "findings")
        fb = _frame([rows_b[p] for p in common], "findings")
        # the reference of the patients read in both (the same lesions at the same time point: taken from A)
        fr = _frame([rows_a[p] for p in common], "reference")
        agreement = staging_agreement(fb, fa, level)  # rows B, columns A; shift: A higher than B is "up"
        vs_reference = {side: {axis: up_down_staging(list(fr[axis]), list(frame[axis]), COMPARE[axis])
                               for axis in AXES} for side, frame in (("a", fa), ("b", fb))}
        correct = {axis: paired_correctness(list(fr[axis]), list(fa[axis]), list(fb[axis])) for axis in AXES}
        correct["nm"] = paired_correctness(_nm(fr), _nm(fa), _nm(fb))
        out.append({"differs_in": key, "a": a, "b": b, "label_a": _label(a), "label_b": _label(b),
                    "patients": len(common), "patients_a_only": sorted(set(rows_a) - set(rows_b)),
                    "patients_b_only": sorted(set(rows_b) - set(rows_a)),
                    "orientation": "tables: rows B, columns A; shift up: A stages higher than B",
                    "agreement": agreement, "vs_reference": vs_reference, "correct": correct})
    return out


def _nm(frame: pd.DataFrame) -> List[Optional[Tuple[str, str]]]:
    """(N, M) per patient, None where either is undetermined: N and M right together."""
    return [None if n is None or m is None else (n, m) for n, m in zip(frame["n"], frame["m"])]


# -- flat rows for CSV files -------------------------------------------------------------------------

def staging_rows(section: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per (group, patient): the group keys, ``patient_id``, ``primary``, ``disease`` (1/0) and, for the
    findings and the reference, ``n``, ``m``, ``stage_group`` and ``reason`` (prefixed ``findings_`` /
    ``reference_``); for a ``staging-patients.csv`` beside the other StudyStats tables. Empty when staging is not
    available."""
    rows = []
    for g in section.get("groups", []):
        for p in g["patients"]:
            row: Dict[str, Any] = {**g["group"], "patient_id": p["patient_id"], "primary": p["primary"] or "",
                                   "disease": int(bool(p.get("disease")))}
            for side in ("findings", "reference"):
                for key in ("n", "m", "stage_group", "reason"):
                    row[f"{side}_{key}"] = p[side][key] if p[side][key] is not None else ""
            rows.append(row)
    return rows


def accuracy_rows(section: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per group: the group keys, patients, not stageable (findings, reference) and, per measure
    (correct_n, correct_m, correct_nm, correct_stage_group), correct, total, estimate, ci_low, ci_high, over every
    patient and (prefixed ``with_disease_``) over the patients with disease; for a ``staging-accuracy.csv``."""
    rows = []
    for g in section.get("groups", []):
        row: Dict[str, Any] = {**g["group"], "patients": g["n_patients"],
                               "unstageable_findings": g["n_unstageable"]["findings"],
                               "unstageable_reference": g["n_unstageable"]["reference"]}
        for prefix, accuracy in (("", g["accuracy"]), ("with_disease_", g["accuracy_with_disease"])):
            for measure in ("correct_n", "correct_m", "correct_nm", "correct_stage_group"):
                entry = accuracy[measure]
                for key in ("correct", "total", "estimate", "ci_low", "ci_high"):
                    row[f"{prefix}{measure}_{key}"] = entry.get(key)
        shift = g["vs_reference"]["stage_group"]
        row.update(stage_group_over=shift["up"], stage_group_under=shift["down"], stage_group_p=shift["p_value"])
        rows.append(row)
    return rows


# -- text and HTML -----------------------------------------------------------------------------------

def _pct(entry: Dict[str, Any]) -> str:
    """'8/10, 80.0 % (49.0-94.3)' of a correct-staging measure."""
    if not entry or not entry.get("total"):
        return "–"
    text = f"{entry['correct']}/{entry['total']}, {100 * entry['estimate']:.1f} %"
    if entry.get("ci_low") is not None:
        text += f" ({100 * entry['ci_low']:.1f}–{100 * entry['ci_high']:.1f})"
    return text


def _p(value: Optional[float]) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _kappa(entry: Dict[str, Any]) -> str:
    if not entry or entry.get("kappa") is None:
        return "–"
    text = f"{entry['kappa']:.2f}"
    if entry.get("ci_low") is not None:
        text += f" ({entry['ci_low']:.2f} to {entry['ci_high']:.2f})"
    return text


def _shift(entry: Dict[str, Any], up: str = "up", down: str = "down") -> str:
    if not entry:
        return "–"
    text = f"{up} {entry['up']}, {down} {entry['down']}"
    if entry.get("changed"):
        text += f", changed {entry['changed']}"
    return text + f" (p {_p(entry.get('p_value'))})"


def _patients(count: int) -> str:
    return f"{count} patient{'' if count == 1 else 's'}"


def staging_lines(section: Dict[str, Any]) -> List[str]:
    """Short text lines for the CLI summary of ``netpet stats``."""
    if not section.get("available"):
        return [section.get("reason") or "Staging is not available."]
    lines = [f"Staging per patient (N, M, stage group; equivocal counted as {section['equivocal_as']}; "
             f"{section['ci']} {int(round(100 * section['level']))} % intervals):"]
    for g in section["groups"]:
        acc = g["accuracy"]
        lines.append(f"  {g['label']}: {_patients(g['n_patients'])}; correct N {_pct(acc['correct_n'])}, M "
                     f"{_pct(acc['correct_m'])}, N and M {_pct(acc['correct_nm'])}, stage group "
                     f"{_pct(acc['correct_stage_group'])}")
        shift = g["vs_reference"]["stage_group"]
        lines.append(f"    stage group vs reference: over-staged {shift['up']}, under-staged {shift['down']} "
                     f"(exact McNemar p {_p(shift.get('p_value'))}); patients with disease: stage group "
                     f"{_pct(g['accuracy_with_disease']['correct_stage_group'])}")
        if g["unstageable"]:
            listed = "; ".join(f"{u['patient_id']} ({u['side']}): {u['reason']}" for u in g["unstageable"][:5])
            more = f"; and {len(g['unstageable']) - 5} more" if len(g["unstageable"]) > 5 else ""
            lines.append(f"    not stageable: {listed}{more}")
    for c in section["comparisons"]:
        agreement = c["agreement"]["stage_group"]
        lines.append(f"  {c['label_a']} vs {c['label_b']} ({_patients(c['patients'])}): stage group linear kappa "
                     f"{_kappa(agreement['kappa']['linear'])}; {c['label_a']} "
                     f"{_shift(agreement['shift'], 'up-stages', 'down-stages')}")
    for warning in section.get("warnings", []):
        lines.append(f"  Note: {warning}")
    return lines


def _h(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _counts_cell(counts: Dict[str, Dict[str, int]], axis: str, category: str) -> str:
    return f"{counts['findings'][axis][category]} ({counts['reference'][axis][category]})"


def _confusion(table: List[List[int]], categories: Sequence[str], rows: str, columns: str) -> str:
    header = [f"{_h(rows)} \\ {_h(columns)}", *(_h(c) for c in categories)]
    return _table(header, [[_h(c), *(str(v) for v in line)] for c, line in zip(categories, table)])


def staging_html(section: Dict[str, Any]) -> str:
    """The staging section as an HTML fragment (``<h2>`` and tables) in the style of the StudyStats report."""
    parts = ["<h2>Staging</h2>"]
    if not section.get("available"):
        parts.append(f"<p class='note'>{_h(section.get('reason') or 'Staging is not available.')}</p>")
        return "\n".join(parts)
    parts.append(f"<p>{_h(section['method'])} Equivocal findings counted as {_h(section['equivocal_as'])}.</p>")
    for warning in section.get("warnings", []):
        parts.append(f"<p class='note'>Note: {_h(warning)}</p>")
    groups = section["groups"]
    # N, M and stage group per group
    header = ["Group", "Patients", *N_CATEGORIES, "N ?", *M_CATEGORIES, "M ?", "N0M0 (I&ndash;III)", "III", "IV"]
    body = []
    for g in groups:
        c = g["counts"]
        body.append([_h(g["label"]), str(g["n_patients"]),
                     *(_counts_cell(c, "n", k) for k in (*N_CATEGORIES, UNDETERMINED)),
                     *(_counts_cell(c, "m", k) for k in (*M_CATEGORIES, UNDETERMINED)),
                     *(_counts_cell(c, "stage_group", k) for k in STAGE_GROUPS)])
    parts.append("<h3>N, M and stage group per group</h3>")
    parts.append(_table(header, body))
    parts.append("<p class='note'>Patients by the findings (in brackets by the reference standard); ? = cannot be "
                 "staged (listed below).</p>")
    # accuracy
    parts.append("<h3>Staging accuracy against the reference standard</h3>")
    parts.append(_table(["Group", "Correct N", "Correct M", "Correct N and M", "Correct stage group",
                         "Stage group over-/under-staged (exact McNemar p)"],
                        [[_h(g["label"]), *(_h(_pct(g["accuracy"][k])) for k in ("correct_n", "correct_m",
                                                                                   "correct_nm",
                                                                                   "correct_stage_group")),
                          _h(_shift(g["vs_reference"]["stage_group"], "over", "under"))] for g in groups] +
                        [[_h(g["label"]) + f" <span class='note'>(patients with disease: {g['n_with_disease']})</span>",
                          *(_h(_pct(g["accuracy_with_disease"][k])) for k in ("correct_n", "correct_m", "correct_nm",
                                                                             "correct_stage_group")), "&ndash;"]
                         for g in groups]))
    parts.append(f"<p class='note'>Correct / patients staged by both, with {_h(section['ci'])} "
                 f"{int(round(100 * section['level']))} % intervals.</p>")
    for g in groups:
        acc = g["accuracy"]
        parts.append(f"<h4>{_h(g['label'])}: reference (rows) vs findings (columns)</h4>")
        parts.append(_confusion(acc["table_n"], N_CATEGORIES, "reference", "findings"))
        parts.append(_confusion(acc["table_m"], M_CATEGORIES, "reference", "findings"))
    # agreement between groups
    if section["comparisons"]:
        parts.append("<h3>Agreement between modalities and tracers</h3>")
        body = []
        for c in section["comparisons"]:
            for axis in AXES:
                e = c["agreement"][axis]
                kappa = e["kappa"]
                body.append([_h(c["label_a"]), _h(c["label_b"]), _h(AXIS_NAMES[axis]), str(c["patients"] -
                                                                                           e["excluded"]),
                             _h(_kappa(kappa["linear"])), _h(_kappa(kappa["quadratic"])),
                             _h(_kappa(kappa.get("compartments", {})) if axis == "m" else "–"),
                             _h(_p(e["bowker"].get("p_value"))), _h(_p(e["stuart_maxwell"].get("p_value"))),
                             _h(_shift(e["shift"])),
                             _h(_shift(c["vs_reference"]["a"][axis], "over", "under")),
                             _h(_shift(c["vs_reference"]["b"][axis], "over", "under")),
                             _h(f"A only {c['correct'][axis]['a_only']}, B only {c['correct'][axis]['b_only']} "
                                f"(p {_p(c['correct'][axis]['p_value'])})")])
        parts.append(_table(["A", "B", "Axis", "n", "Kappa, linear (CI)", "Kappa, quadratic (CI)",
                             "Kappa, compartments (CI)", "Bowker p", "Stuart&ndash;Maxwell p",
                             "A vs B: up/down (exact McNemar p)", "A vs reference", "B vs reference",
                             "Correct by A only / B only (exact McNemar p)"], body))
        for c in section["comparisons"]:
            e = c["agreement"]["stage_group"]
            parts.append(f"<h4>Stage group, {_h(c['label_b'])} (rows) vs {_h(c['label_a'])} (columns)</h4>")
            parts.append(_confusion(e["table"], STAGE_GROUPS, c["label_b"], c["label_a"]))
    # patients that cannot be staged
    unstageable = [(g["label"], u) for g in groups for u in g["unstageable"]]
    parts.append("<h3>Patients that cannot be staged</h3>")
    if unstageable:
        parts.append(_table(["Group", "Patient", "From", "N", "M", "Reason"],
                            [[_h(label), _h(u["patient_id"]), _h(u["side"]), _h(u["n"] or "?"), _h(u["m"] or "?"),
                              _h(u["reason"])] for label, u in unstageable]))
    else:
        parts.append("<p class='note'>None: every patient read was staged from the findings and the reference.</p>")
    return "\n".join(parts)


__all__ = ["staging_section", "staging_html", "staging_lines", "staging_rows", "accuracy_rows", "METHOD",
           "EXTRA_GROUP_KEYS", "COMPARED_KEYS"]
