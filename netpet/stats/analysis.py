"""The whole StudyStats analysis: accuracy, paired comparisons, ROC, agreement, false findings.

:func:`analyse` takes a :class:`~netpet.stats.data.Study` and returns a JSON-ready dict (the
object ``netpet stats --json`` prints) plus the tables behind the figures. Groups are the
(modality, tracer, reader) combinations of the study table, further split by each ``group_by``
column; paired comparisons are made between groups that differ in exactly one of modality,
tracer or reader (PET/MR vs PET/CT, DOTATATE vs FDG, reader A vs reader B), on the units both
groups have.

Time points: when the study table has more than one (``Study.timed``), ``time_point`` is a group
key too and every accuracy entry, ROC entry and comparison names it. The patient level at each
time point is then disease (recurrence) detection at that time point. Comparisons pair groups of
the same time point only: a pair that differs in the time point is a change over time, not a
modality, tracer or reader comparison, and the units of two time points are not the same units
(their reference rows differ); change over time is the follow-up module's question.

Equivocal calls (uptake equal to the liver within its noise) count as negative by default, the
study protocol's rule ("uptake above the liver is clearly positive"), or as positive
(``StatsOptions.equivocal``); every accuracy entry gives the number of equivocal findings and of
units whose call rests on them. ROC and agreement use only findings with a value of the variable:
findings without one (empty, or a volume-based value of a lesion that is not separable) are left
out and counted per analysis (``n_dropped``, ``dropped_not_separable``).

Reader studies and endpoints (issue 14): the findings' calls come from the study's call source
(the SUV rule, or the reader's visual call; ``options.call_source`` of the result); retracted findings
are in no analysis (``inputs.retracted_findings``). With indications in the reference standard the
patient level follows each indication's endpoint (:data:`netpet.stats.data.ENDPOINTS`): the result's
``endpoints`` gives the patient-level accuracy per group and indication, and
``methods.endpoints`` the definitions, their literature and the rules in force (always present:
without indications it states the any-positive-finding rule).

Coded causes (:mod:`netpet.stats.causes`): each false finding carries ``proposed_cause``,
``proposed_reason``, ``cause_code`` and ``cause_confirmed``; ``false_findings_by_level`` lists the
patient- and region-level false findings with the codes within them; ``cause_tally`` counts per
level, group, kind and code (``count``, ``confirmed``); ``cause_codes`` and ``methods.causes`` give
the list, its literature, the default FWHM and how many codes the reader confirmed;
``previous_cause_codes`` (only when there are any) the confirmed codes given in ``options.cause_codes``
whose findings are no longer false, so that no confirmation is lost. The free-text ``causes`` tally
is unchanged.

Staging (:mod:`netpet.stats.staging`): per patient and group the N and M categories and the stage
group from the findings and from the reference standard, their accuracy, and their agreement between
modalities and tracers; it needs the reference standard's ``primary`` and/or ``site`` columns. The
result's ``staging`` key is there when it could be computed; without those columns it is left out
(so a study without them gives the same JSON as before) and the report says why.
"""

from __future__ import annotations

import itertools
import logging
import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from netpet.errors import printable
from netpet.stats import agreement, cluster, roc
from netpet.stats.data import (ENDPOINT_ANY, ENDPOINT_REFERENCES, ENDPOINTS, GROUP_KEYS, INDICATIONS, LEVELS,
                               MADE_STANDARDS, QUALITY_COLUMNS, TIME_POINT, Study, check_equivocal, not_separable,
                               units_for)
from netpet.stats.causes import CAUSE_COLUMNS, CAUSE_REFERENCES, DEFAULT_FWHM_MM, annotate, cause_list, \
    level_false_findings, tally
from netpet.stats.intervals import CI_METHODS, Measure, StatsError, accuracy_measures
from netpet.stats.paired import PairedCounts, durkalski, mcnemar_chi2, mcnemar_exact, tango_interval

log = logging.getLogger(__name__)

ROC_VARIABLES = ("suv_max", "suv_peak", "tl_ratio", "tb_ratio")
AGREEMENT_VARIABLES = ("suv_max", "suv_peak", "suv_mean", "tl_ratio")
UNIT_KEYS = {"patient": ("patient_id",), "lesion": ("patient_id", "lesion_id"), "region": ("patient_id", "region")}
#: the order of a pair: the study's question is PET/MR vs PET/CT and DOTATATE vs FDG
PREFERRED_FIRST = {"modality": ("PET/MR",), "tracer": ("dotatate",)}
FALSE_FINDING_COLUMNS = ("kind", "patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region",
                         "standard", "found", "call", "suv_max", "suv_peak", "suv_mean", "tl_ratio", "tb_ratio",
                         "mtv_ml", "liver_suv_mean", "krenning", "segmentation_file", "segmentation_status", "flags",
                         "warnings", "cause")
FALSE_FINDING_VALUES = ("suv_max", "suv_peak", "suv_mean", "tl_ratio", "tb_ratio", "mtv_ml", "liver_suv_mean",
                        "krenning")

ProgressCallback = Callable[[float, str], bool]


@dataclass
class StatsOptions:
    """Choices of the analysis (defaults are the study protocol's).

    ``equivocal`` says how an equivocal call counts: ``"negative"`` (default; the protocol says
    "uptake above the liver is clearly positive", and equivocal uptake equals the liver's) or
    ``"positive"`` (a sensitivity analysis).
    """

    ci: str = "wilson"
    level: float = 0.95
    bootstrap: int = 2000
    seed: int = 1
    group_by: Sequence[str] = ()
    regions: Optional[Sequence[str]] = None
    roc_variables: Sequence[str] = ROC_VARIABLES
    agreement_variables: Sequence[str] = AGREEMENT_VARIABLES
    causes: Dict[Tuple[str, ...], str] = field(default_factory=dict)
    equivocal: str = "negative"
    #: the reader's confirmed cause codes of a previous false-findings list ({key: (code, True)},
    #: :func:`netpet.stats.causes.read_cause_codes`)
    cause_codes: Dict[Tuple[str, ...], Tuple[str, bool]] = field(default_factory=dict)

    def check(self) -> None:
        if self.ci not in CI_METHODS:
            raise StatsError(f"Unknown --ci {self.ci!r}; choose one of {', '.join(CI_METHODS)}.")
        if not 0.5 <= self.level < 1.0:
            raise StatsError(f"The confidence level must lie in [0.5, 1) (got {self.level}).")
        if self.bootstrap < 0:
            raise StatsError(f"--bootstrap must be 0 (off) or a number of replicates (got {self.bootstrap}).")
        check_equivocal(self.equivocal)


def _label(group: Dict[str, Any]) -> str:
    parts = [str(group[k]) for k in GROUP_KEYS]
    if TIME_POINT in group:
        parts.append(f"at {group[TIME_POINT]}")
    parts += [f"{k}={v}" for k, v in group.get("group_by", {}).items()]
    return " ".join(parts)


def _seed(base: int, *parts: Any) -> int:
    return (base * 1_000_003 + zlib.crc32("|".join(map(str, parts)).encode())) % (2 ** 32)


class _Weights:
    """Bootstrap weights per set of patients (the same patients get the same replicates)."""

    def __init__(self, replicates: int, seed: int) -> None:
        self.replicates, self.seed, self.cache = replicates, seed, {}

    def get(self, labels: np.ndarray) -> np.ndarray:
        # a stable key (Python's str hash changes between processes): the same patients give the same
        # replicates in every run with the same --seed
        key = zlib.crc32("\x1f".join(map(str, labels.tolist())).encode("utf-8"))
        if key not in self.cache:
            self.cache[key] = cluster.bootstrap_weights(len(labels), self.replicates, _seed(self.seed, len(labels), key))
        return self.cache[key]


def _measures_dict(measures: Dict[str, Measure]) -> Dict[str, Any]:
    return {k: v.to_dict() for k, v in measures.items()}


def confusion_counts(units: pd.DataFrame) -> Tuple[int, int, int, int]:
    """(TP, FP, FN, TN) of a frame of units (its boolean ``truth`` and ``call`` columns), as every accuracy
    figure of the study counts them."""
    truth = units["truth"].to_numpy(dtype=bool)
    call = units["call"].to_numpy(dtype=bool)
    return (int(np.sum(truth & call)), int(np.sum(~truth & call)), int(np.sum(truth & ~call)),
            int(np.sum(~truth & ~call)))


def _accuracy_entry(level: str, group: Dict[str, Any], units: pd.DataFrame, options: StatsOptions,
                    weights: _Weights) -> Dict[str, Any]:
    truth = units["truth"].to_numpy(dtype=bool)
    call = units["call"].to_numpy(dtype=bool)
    tp, fp, fn, tn = confusion_counts(units)
    entry: Dict[str, Any] = {"level": level, **_keys_of(group), **group.get("group_by", {}),
                             "group_by": group.get("group_by", {}), "n_patients": int(units["patient_id"].nunique()),
                             "n_units": int(len(units)), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                             "equivocal_findings": int(units["equivocal_findings"].sum()),
                             "equivocal_units": int(units["equivocal"].sum()), "equivocal_as": options.equivocal}
    entry.update(_measures_dict(accuracy_measures(tp, fp, fn, tn, options.ci, options.level)))
    if tp + fn == 0:
        entry["reason"] = "no reference-positive units in this group: sensitivity and NPV-based measures are null"
    if level != "patient" and len(units):
        labels, counts = cluster.cells_by_cluster(units["patient_id"].to_numpy(), truth, call)
        entry["gee"] = _measures_dict(cluster.gee_measures(counts, options.level))
        if options.bootstrap:
            entry["clustered"] = _measures_dict(cluster.bootstrap_measures(counts, weights.get(labels), options.level))
    return entry


def _keys_of(group: Dict[str, Any]) -> Dict[str, Any]:
    """The group keys of a group dict (modality, tracer, reader and, with time points, time_point)."""
    return {k: v for k, v in group.items() if k != "group_by"}


def _groupings(units: pd.DataFrame, level: str, group_by: Sequence[str], keys: Sequence[str] = GROUP_KEYS,
               order: Optional[Callable[[Tuple[str, ...]], Any]] = None):
    """(group dict, units) for the base groups and for each group-by column's values (groups in ``order``)."""
    grouped = list(units.groupby(list(keys), sort=True))
    if order is not None:
        grouped.sort(key=lambda item: order(item[0]))
    for key, frame in grouped:
        base = dict(zip(keys, key))
        yield {**base, "group_by": {}}, frame, None
        for column in group_by:
            values = frame[column]
            if values.isna().any():
                yield {**base, "group_by": {column: None}}, frame.iloc[0:0], (
                    f"{column} varies within a {'patient' if level == 'patient' else 'patient region'}: it cannot "
                    f"split the {level} level")
                continue
            for value, part in frame.groupby(column, sort=True):
                yield {**base, "group_by": {column: value}}, part, None


def accuracy_table(units: Dict[str, pd.DataFrame], options: StatsOptions, weights: _Weights,
                   keys: Sequence[str] = GROUP_KEYS,
                   order: Optional[Callable[[Tuple[str, ...]], Any]] = None) -> List[Dict[str, Any]]:
    """One entry per level and group (``keys``; groups sorted by ``order``) and per group-by value."""
    out = []
    for level in LEVELS:
        frame = units[level]
        if not len(frame):
            continue
        for group, part, reason in _groupings(frame, level, options.group_by, keys, order):
            if reason:
                entry = {"level": level, **_keys_of(group), **group["group_by"],
                         "group_by": group["group_by"], "n_patients": 0, "n_units": 0, "tp": None, "fp": None,
                         "fn": None, "tn": None, "equivocal_findings": None, "equivocal_units": None,
                         "equivocal_as": options.equivocal, "reason": reason}
                for name in ("sensitivity", "specificity", "ppv", "npv", "accuracy", "lr_pos", "lr_neg"):
                    entry[name] = Measure.undefined(options.ci, reason).to_dict()
                out.append(entry)
                continue
            out.append(_accuracy_entry(level, group, part, options, weights))
    return out


# -- endpoints per indication ------------------------------------------------------------------------

#: the patient-level rule of a reference standard without indications (the methods text says it)
PLAIN_ENDPOINT = ("Any positive finding: a patient is called positive when any of its findings is called positive, "
                  "wherever it lies; a patient with disease counts as a true positive then even when the positive "
                  "call falls on a benign lesion (the reference standard names no indications, so no endpoint per "
                  "indication applies).")


def endpoint_methods(study: Study, options: StatsOptions) -> Dict[str, Any]:
    """The Methods text of the patient-level endpoints: which rule applies, each indication's definition, the
    literature, the call source and the equivocal rule (``result['methods']['endpoints']``)."""
    applied = bool(study.reference.indications)
    present = ([i for i in INDICATIONS if i in set(study.reference.patients["indication"])] if applied else [])
    source = ("the reader's visual call (reader_call)" if study.call_source == "reader"
              else "the SUV rule's call (call)")
    return {
        "applied": applied,
        "indications": present,
        "definitions": ([{"indication": i, "definition": ENDPOINTS[i]} for i in INDICATIONS] if applied
                        else [{"indication": None, "definition": PLAIN_ENDPOINT}]),
        "references": list(ENDPOINT_REFERENCES) if applied else [],
        "call_source": study.call_source,
        "text": (f"Each finding's call is {source}; equivocal calls count as {options.equivocal}. Retracted findings "
                 f"({study.retracted}) are excluded from every analysis. "
                 + ("The patient-level endpoint depends on the indication the reference standard gives each patient "
                    f"(here: {', '.join(present)}); lesion and region levels are unchanged (a region is positive when "
                    "any finding in it is)." if applied else PLAIN_ENDPOINT)),
    }


def endpoint_table(patients: pd.DataFrame, options: StatsOptions, weights: "_Weights",
                   keys: Sequence[str] = GROUP_KEYS,
                   order: Optional[Callable[[Tuple[str, ...]], Any]] = None) -> List[Dict[str, Any]]:
    """The patient-level accuracy per group and indication under each indication's endpoint.

    Each entry is an accuracy entry (:func:`accuracy_table`) with ``indication``, ``endpoint`` (the
    indication's definition) and ``positive_elsewhere_only``: patients with disease called negative by
    the endpoint although a finding of theirs is called positive (for TIO localisation: the culprit
    missed, a decoy called positive)."""
    if "indication" not in patients or not len(patients):
        return []
    out = []
    grouped = list(patients.groupby([*keys, "indication"], sort=True))
    if order is not None:
        grouped.sort(key=lambda item: (order(item[0][:-1]), INDICATIONS.index(item[0][-1])))
    else:
        grouped.sort(key=lambda item: (item[0][:-1], INDICATIONS.index(item[0][-1])))
    for key, part in grouped:
        group = {**dict(zip(keys, key[:-1])), "group_by": {}}
        entry = _accuracy_entry("patient", group, part, options, weights)
        elsewhere = (part["truth"] == 1) & (part["call"] == 0) & (part["any_positive"] == 1)
        entry.update({"indication": key[-1], "endpoint": ENDPOINTS[key[-1]],
                      "positive_elsewhere_only": int(elsewhere.sum()),
                      "judged_by_any_positive": int((part["endpoint"] == ENDPOINT_ANY).sum())})
        out.append(entry)
    return out


# -- pairs of groups ---------------------------------------------------------------------------------

def group_pairs(groups: Sequence[Tuple[str, ...]],
                keys: Sequence[str] = GROUP_KEYS) -> List[Tuple[str, Dict[str, str], Dict[str, str]]]:
    """(differing key, a, b) for every two groups that differ in exactly one of modality, tracer, reader.

    With ``keys`` ending in ``time_point``, only groups of the same time point are paired (see the
    module docstring): two groups that differ in the time point are never a pair.
    """
    pairs = []
    for x, y in itertools.combinations(groups, 2):
        differ = [k for k, u, v in zip(keys, x, y) if u != v]
        if len(differ) != 1 or differ[0] == TIME_POINT:
            continue
        key = differ[0]
        a, b = dict(zip(keys, x)), dict(zip(keys, y))
        first = PREFERRED_FIRST.get(key, ())
        if b[key] in first and a[key] not in first:
            a, b = b, a
        pairs.append((key, a, b))
    return pairs


def _select(frame: pd.DataFrame, group: Dict[str, str]) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for k in _keys_of(group):
        mask &= (frame[k] == group[k]).to_numpy()
    return frame[mask]


def _paired_units(frame: pd.DataFrame, level: str, a: Dict[str, str], b: Dict[str, str]) -> pd.DataFrame:
    keys = list(UNIT_KEYS[level])
    left = _select(frame, a)[keys + ["truth", "call"]]
    right = _select(frame, b)[keys + ["call"]]
    return left.merge(right, on=keys, suffixes=("_a", "_b"))


def _comparison_entries(level: str, key: str, a: Dict[str, str], b: Dict[str, str], paired: pd.DataFrame,
                        options: StatsOptions, weights: _Weights) -> List[Dict[str, Any]]:
    out = []
    for measure, truth_value in (("sensitivity", 1), ("specificity", 0)):
        subset = paired[paired["truth"] == truth_value]
        base = {"level": level, "measure": measure, "differs_in": key, "a": a, "b": b, "n": int(len(subset)),
                "n_patients": int(subset["patient_id"].nunique()) if len(subset) else 0}
        if not len(subset):
            reason = f"no reference-{'positive' if truth_value else 'negative'} units read in both groups"
            for test in ("mcnemar-exact", "mcnemar-chi2"):
                out.append({**base, "test": test, "statistic": None, "p_value": None, "difference": None,
                            "ci_low": None, "ci_high": None, "reason": reason})
            continue
        # for specificity the "positive" outcome of each test is a negative call
        call_a = subset["call_a"].to_numpy(dtype=bool)
        call_b = subset["call_b"].to_numpy(dtype=bool)
        if truth_value == 0:
            call_a, call_b = ~call_a, ~call_b
        counts = PairedCounts.from_calls(call_a, call_b)
        low, high = tango_interval(counts, options.level)
        common = {**base, "estimate_a": float(call_a.mean()), "estimate_b": float(call_b.mean()),
                  "difference": counts.difference, "ci_low": low, "ci_high": high, "ci_method": "Tango score",
                  "discordant": [counts.a_only, counts.b_only]}
        if level != "patient":
            common["clustering"] = "ignored (each unit counted as independent)"
        chi2, chi2_p = mcnemar_chi2(counts)
        chi2_cc, chi2_cc_p = mcnemar_chi2(counts, correction=True)
        out.append({**common, "test": "mcnemar-exact", "statistic": None, "p_value": mcnemar_exact(counts)})
        out.append({**common, "test": "mcnemar-chi2", "statistic": chi2, "p_value": chi2_p})
        out.append({**common, "test": "mcnemar-chi2-cc", "statistic": chi2_cc, "p_value": chi2_cc_p})
        if level != "patient":
            patients = subset["patient_id"].to_numpy()
            labels, index = np.unique(patients, return_inverse=True)
            a_only = np.bincount(index, weights=(call_a & ~call_b).astype(float), minlength=len(labels))
            b_only = np.bincount(index, weights=(~call_a & call_b).astype(float), minlength=len(labels))
            statistic, p_value = durkalski(a_only, b_only)
            entry = {**base, "test": "mcnemar-clustered", "statistic": statistic, "p_value": p_value,
                     "estimate_a": common["estimate_a"], "estimate_b": common["estimate_b"],
                     "difference": counts.difference, "ci_low": None, "ci_high": None,
                     "ci_method": "cluster bootstrap (percentile)", "discordant": common["discordant"],
                     "method": "Durkalski et al. 2003"}
            if options.bootstrap:
                w = weights.get(labels)
                n_k = np.bincount(index, minlength=len(labels)).astype(float)
                pos_a = np.bincount(index, weights=call_a.astype(float), minlength=len(labels))
                pos_b = np.bincount(index, weights=call_b.astype(float), minlength=len(labels))
                total = w @ n_k
                with np.errstate(invalid="ignore", divide="ignore"):
                    diffs = (w @ pos_a - w @ pos_b) / total
                diffs = diffs[np.isfinite(diffs)]
                tail = (1.0 - options.level) / 2.0 * 100.0
                entry["ci_low"], entry["ci_high"] = (float(v) for v in np.percentile(diffs, [tail, 100.0 - tail]))
            out.append(entry)
    return out


def comparisons(units: Dict[str, pd.DataFrame], groups, options: StatsOptions, weights: _Weights,
                keys: Sequence[str] = GROUP_KEYS):
    out = []
    for level in LEVELS:
        frame = units[level]
        if not len(frame):
            continue
        for key, a, b in group_pairs(groups, keys):
            paired = _paired_units(frame, level, a, b)
            out.extend(_comparison_entries(level, key, a, b, paired, options, weights))
    return out


# -- ROC ---------------------------------------------------------------------------------------------

def _dropped(frame: pd.DataFrame, missing: pd.Series) -> Dict[str, int]:
    """How many findings were left out for want of a value, and how many of those are not separable."""
    return {"n_dropped": int(missing.sum()), "dropped_not_separable": int((missing & not_separable(frame)).sum())}


def _with_values(frame: pd.DataFrame, variable: str, columns: Sequence[str]) -> Tuple[pd.DataFrame, Dict[str, int]]:
    """The found lesions of ``frame`` with a value of ``variable`` (``columns`` kept), and the count of the rest."""
    found = frame[frame["found"]]
    missing = found[variable].isna()
    return found.loc[~missing, list(columns)], _dropped(found, missing)


def _paired_values(fa: pd.DataFrame, fb: pd.DataFrame, variable: str,
                   extra: Sequence[str] = ()) -> Tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Every lesion found in both groups (columns ``<variable>_a``, ``<variable>_b`` and ``extra`` of
    group a), whether a value is missing in either, and whether either finding is not separable."""
    keys = ["patient_id", "lesion_id"]
    status = "segmentation_status"
    left = fa[fa["found"]][[*keys, *extra, variable, status]]
    right = fb[fb["found"]][[*keys, variable, status]]
    both = left.merge(right, on=keys, suffixes=("_a", "_b")).reset_index(drop=True)
    missing = (both[f"{variable}_a"].isna() | both[f"{variable}_b"].isna()).to_numpy()
    apart = (not_separable(both.rename(columns={f"{status}_a": status})).to_numpy() |
             not_separable(both.rename(columns={f"{status}_b": status})).to_numpy())
    return both.drop(columns=[f"{status}_a", f"{status}_b"]), missing, apart


def _paired_dropped(missing: np.ndarray, apart: np.ndarray) -> Dict[str, int]:
    return {"n_dropped": int(missing.sum()), "dropped_not_separable": int((missing & apart).sum())}


def roc_analysis(lesions: pd.DataFrame, groups, options: StatsOptions, keys: Sequence[str] = GROUP_KEYS):
    """ROC entries per group and variable, paired DeLong comparisons, and curves for the figures.

    Only found lesions with a value of the variable enter; the others are counted in each entry
    (``n_dropped``, of which ``dropped_not_separable`` are not separable).
    """
    entries, curves, compared = [], {}, []
    variables = [v for v in options.roc_variables if v in lesions]
    for group_key in groups:
        group = dict(zip(keys, group_key))
        frame = _select(lesions, group)
        for variable in variables:
            values, dropped = _with_values(frame, variable, [variable, "truth", "patient_id", "lesion_id"])
            truth = values["truth"].to_numpy(dtype=bool)
            entry = {"level": "lesion", **group, "variable": variable, "n_cases": int(truth.sum()),
                     "n_controls": int((~truth).sum()), **dropped, "auc": None, "se": None, "ci_low": None,
                     "ci_high": None, "method": "DeLong", "youden_cutoff": None, "youden_sensitivity": None,
                     "youden_specificity": None}
            if truth.all() or not truth.any():
                entry["reason"] = ("no benign lesions measured" if len(truth) and truth.all()
                                   else "no malignant lesions measured" if len(truth) else "no lesions measured")
                entries.append(entry)
                continue
            scores = values[variable].to_numpy(dtype=float)
            auc, se, low, high = roc.auc_ci(scores, truth, options.level)
            cutoff, sens, spec = roc.youden(scores, truth)
            entry.update({"auc": auc, "se": None if math.isnan(se) else se, "ci_low": None if math.isnan(low) else low,
                          "ci_high": None if math.isnan(high) else high, "youden_cutoff": cutoff,
                          "youden_sensitivity": sens, "youden_specificity": spec})
            if math.isnan(se):
                entry["reason"] = "fewer than two malignant or benign lesions: no DeLong interval"
            entries.append(entry)
            curves[(group_key, variable)] = (scores, truth)
    for key, a, b in group_pairs(groups, keys):
        fa, fb = _select(lesions, a), _select(lesions, b)
        for variable in variables:
            pairs, missing, apart = _paired_values(fa, fb, variable, ["truth"])
            both = pairs[~missing]
            truth = both["truth"].to_numpy(dtype=bool)
            entry = {"level": "lesion", "variable": variable, "differs_in": key, "a": a, "b": b, "n": int(len(both)),
                     **_paired_dropped(missing, apart), "test": "DeLong paired", "auc_a": None, "auc_b": None,
                     "z": None, "p_value": None}
            if truth.sum() < 2 or (~truth).sum() < 2:
                entry["reason"] = "fewer than two malignant or benign lesions measured in both groups"
            else:
                auc_a, auc_b, z, p = roc.delong_paired(both[f"{variable}_a"].to_numpy(float),
                                                       both[f"{variable}_b"].to_numpy(float), truth)
                entry.update({"auc_a": auc_a, "auc_b": auc_b, "difference": auc_a - auc_b,
                              "z": None if math.isnan(z) else z, "p_value": None if math.isnan(p) else p})
            compared.append(entry)
    return entries, compared, curves


# -- agreement ---------------------------------------------------------------------------------------

def agreement_analysis(lesions: pd.DataFrame, units: Dict[str, pd.DataFrame], groups, options: StatsOptions,
                       keys: Sequence[str] = GROUP_KEYS):
    """SUV agreement between modalities and between readers (all regions and per region), and
    Cohen's kappa of reader pairs' calls. Returns (agreement entries, kappa entries, pairs for plots)."""
    entries, kappas, plots = [], [], {}
    variables = [v for v in options.agreement_variables if v in lesions]
    for key, a, b in group_pairs(groups, keys):
        if key == "tracer":
            continue  # SUVs of two tracers measure different biology: no agreement analysis
        fa, fb = _select(lesions, a), _select(lesions, b)
        for variable in variables:
            pairs, missing, apart = _paired_values(fa, fb, variable, ["region"])
            both = pairs[~missing].reset_index(drop=True)
            plots[(key, tuple(a.values()), tuple(b.values()), variable)] = both
            for region in ["all", *sorted(r for r in pairs["region"].unique() if r)]:
                where = np.ones(len(pairs), dtype=bool) if region == "all" else (pairs["region"] == region).to_numpy()
                part = pairs[where & ~missing]
                x, y = part[f"{variable}_a"].to_numpy(float), part[f"{variable}_b"].to_numpy(float)
                entries.append({"variable": variable, "differs_in": key, "a": a, "b": b, "region": region,
                                "n": int(len(part)), **_paired_dropped(missing[where], apart[where]),
                                "bland_altman": agreement.bland_altman(x, y, options.level),
                                "ccc": agreement.lin_ccc(x, y, options.level), "spearman": agreement.spearman(x, y)})
        if key == "reader":
            for level in ("patient", "lesion"):
                paired = _paired_units(units[level], level, a, b)
                result = agreement.cohen_kappa(paired["call_a"].to_numpy(), paired["call_b"].to_numpy(),
                                               options.level)
                when = {TIME_POINT: a[TIME_POINT]} if TIME_POINT in a else {}
                kappas.append({"level": level, "modality": a["modality"], "tracer": a["tracer"], **when,
                               "reader_a": a["reader"], "reader_b": b["reader"], **result})
    return entries, kappas, plots


# -- false positives and negatives ------------------------------------------------------------------

#: the columns a correspondence table adds to the false findings (after lesion_id): the reader's own id of the
#: finding and its status in the correspondence
MATCH_COLUMNS = ("finding_id", "match_status")


def false_finding_columns(timed: bool = False, matched: bool = False) -> Tuple[str, ...]:
    """:data:`FALSE_FINDING_COLUMNS` with the coded cause (:data:`netpet.stats.causes.CAUSE_COLUMNS`) before
    ``segmentation_file``, with ``time_point`` after ``reader`` when the study has time points and
    :data:`MATCH_COLUMNS` after ``lesion_id`` when a correspondence table joined the findings."""
    columns = list(FALSE_FINDING_COLUMNS)
    at = columns.index("segmentation_file")  # the coded cause before the quality columns (the free-text cause last)
    columns[at:at] = CAUSE_COLUMNS
    if matched:
        at = columns.index("lesion_id") + 1
        columns[at:at] = MATCH_COLUMNS
    if timed:
        at = columns.index("reader") + 1
        columns[at:at] = [TIME_POINT]
    return tuple(columns)


def false_findings(lesions: pd.DataFrame, options: StatsOptions, timed: bool = False,
                   matched: bool = False) -> pd.DataFrame:
    """Every lesion-level false positive and false negative, linked back to its finding.

    Parameters
    ----------
    lesions : pandas.DataFrame
        The lesion units (:func:`netpet.stats.data.lesion_units`).
    options : StatsOptions
        ``causes`` given earlier (kept before a ``cause`` column of the study table).

    Returns
    -------
    pandas.DataFrame
        :func:`false_finding_columns`: ``call`` is the finding's call as written (``equivocal``
        shows which rule made it false), ``segmentation_status``, ``flags`` and ``warnings`` its
        quality columns (empty when the study table lacks them or there is no finding); with
        ``matched``, ``lesion_id`` is the reference lesion (or an unmatched finding's track) and
        ``finding_id`` the reader's own id of the finding. ``proposed_cause`` and ``proposed_reason``
        are the software's proposal (:func:`netpet.stats.causes.propose`), ``cause_code`` the code
        counted (the reader's confirmed one from ``options.cause_codes``, else the proposal) and
        ``cause_confirmed`` yes/no.
    """
    wrong = lesions[(lesions["truth"] == 1) & (lesions["call"] == 0) | (lesions["truth"] == 0) & (lesions["call"] == 1)]
    columns = false_finding_columns(timed, matched)
    rows = []
    for unit in wrong.to_dict("records"):
        kind = "false negative" if unit["truth"] == 1 else "false positive"
        row = {c: unit.get(c, "") for c in columns}
        row["kind"] = kind
        row["found"] = "yes" if unit["found"] else "no (no finding in this group)"
        values = {c: unit.get(c) for c in (*FALSE_FINDING_VALUES, "session_id", "segmentation_file", *QUALITY_COLUMNS,
                                           *(MATCH_COLUMNS if matched else ()))}
        values["call"] = unit.get("finding_call")  # as written: "equivocal" shows which rule made it false
        for column, value in values.items():
            row[column] = "" if value is None or (isinstance(value, float) and math.isnan(value)) else value
        cause = options.causes.get(false_finding_key(row))
        table_cause = unit.get("cause")
        if not cause and isinstance(table_cause, str):
            cause = table_cause
        row["cause"] = cause or ""
        annotate(row, unit, options.cause_codes, false_finding_key(row))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(columns))
    order = ["kind", "modality", "tracer", "reader", *([TIME_POINT] if timed else []), "patient_id", "lesion_id"]
    return frame.sort_values(order).reset_index(drop=True)


def false_finding_key(row: Dict[str, Any]) -> Tuple[str, ...]:
    """The key a cause is kept under: kind, patient, modality, tracer, reader, lesion (and the time point, when the
    row has one)."""
    key = tuple(str(row.get(k, "")) for k in ("kind", "patient_id", "modality", "tracer", "reader", "lesion_id"))
    return key + ((str(row[TIME_POINT]),) if row.get(TIME_POINT) else ())


def cause_tally(frame: pd.DataFrame) -> List[Dict[str, Any]]:
    if not len(frame):
        return []
    causes = frame["cause"].replace("", "(not given yet)")
    tally = frame.assign(cause=causes).groupby(["kind", "cause"]).size().reset_index(name="count")
    return tally.sort_values(["kind", "count"], ascending=[True, False]).to_dict("records")


# -- everything --------------------------------------------------------------------------------------

@dataclass
class Analysis:
    """The results: ``result`` is the JSON object; the frames and curves feed the CSVs and figures."""

    result: Dict[str, Any]
    units: Dict[str, pd.DataFrame]
    false_findings: pd.DataFrame
    roc_curves: Dict[Any, Tuple[np.ndarray, np.ndarray]]
    agreement_pairs: Dict[Any, pd.DataFrame]
    #: the staging section (:func:`netpet.stats.staging.staging_section`), also when not available (its reason)
    staging: Dict[str, Any] = field(default_factory=dict)


def check_regions(study: Study, regions: Optional[Sequence[str]] = None) -> None:
    """Refuse staging regions the reference standard does not name.

    A region nobody recorded holds no lesion, so every patient would count as a true negative there
    (``--regions mars,venus`` once reported 100 % specificity); a misspelt region is refused the same way.

    Raises
    ------
    StatsError
        Naming the unknown regions and the regions the reference standard has.
    """
    reference = study.reference
    known = {r for r in reference.lesions["region"] if r} | {r for (_, r) in reference.region_rows if r}
    asked = list(regions) if regions is not None else list(study.regions)
    unknown = [r for r in dict.fromkeys(asked) if r not in known]
    if unknown:
        names = ", ".join(printable(r) for r in unknown)
        have = ", ".join(printable(r) for r in sorted(known)) or "none"
        raise StatsError(f"--regions {names}: the reference standard {printable(reference.path)} names no such region "
                         f"(its regions: {have}); a region without reference data would count every patient as a true "
                         "negative.")


def analyse(study: Study, options: Optional[StatsOptions] = None,
            progress: Optional[ProgressCallback] = None) -> Analysis:
    """Run every analysis of the study (see module docstring)."""
    options = options or StatsOptions()
    options.check()
    check_regions(study, options.regions)

    def report(fraction: float, message: str) -> None:
        if progress and progress(fraction, message):
            from netpet.progress import Cancelled

            raise Cancelled(message)

    report(0.0, "Building units of analysis")
    units = units_for(study, options.equivocal)
    groups = study.groups()
    keys = study.group_keys
    weights = _Weights(options.bootstrap, options.seed)
    report(0.15, "Accuracy")
    accuracy = accuracy_table(units, options, weights, keys, study.group_order if study.timed else None)
    report(0.45, "Paired comparisons")
    compared = comparisons(units, groups, options, weights, keys)
    report(0.65, "ROC")
    roc_entries, roc_compared, curves = roc_analysis(units["lesion"], groups, options, keys)
    report(0.8, "Agreement")
    agreements, kappas, plots = agreement_analysis(units["lesion"], units, groups, options, keys)
    falses = false_findings(units["lesion"], options, study.timed, study.correspondence is not None)
    report(0.9, "Staging")
    # imported here: netpet.stats.staging imports netpet.clinical, whose statistics import netpet.stats.intervals (and
    # so this package's __init__); a module-level import would make a circle when netpet.clinical is imported first
    from netpet.stats.staging import staging_section

    staging = staging_section(study, units["lesion"], options.equivocal, options.level, options.ci)
    reference = study.reference
    result = {
        "inputs": {
            "table": study.table_path, "reference": reference.path, "findings": int(len(study.findings)),
            "patients": int(len(reference.patients)),
            # the reference standard's own lesions (not those made for unmatched findings), each counted once
            "reference_lesions": int(len(reference.lesions[~reference.lesions["standard"].isin(MADE_STANDARDS)]
                                         .drop_duplicates(["patient_id", "lesion_id"]))),
            "groups": [dict(zip(keys, g)) for g in groups], "regions": study.regions,
            "group_by": list(options.group_by), "warnings": study.warnings,
            "equivocal_findings": int((study.findings["finding_call"] == "equivocal").sum()),
            "not_separable_findings": int(not_separable(study.findings).sum()),
            "retracted_findings": int(study.retracted),
            "not_read": {_label({**dict(zip(keys, g)), "group_by": {}}):
                         sorted(set(reference.patients["patient_id"]) - set(_select(units["patient"],
                                                                                    dict(zip(keys, g)))["patient_id"]))
                         for g in groups},
        },
        "options": {"ci": options.ci, "level": options.level, "bootstrap": options.bootstrap, "seed": options.seed,
                    "equivocal": options.equivocal, "call_source": study.call_source},
        "accuracy": accuracy,
        "comparisons": compared,
        "roc": roc_entries,
        "roc_comparisons": roc_compared,
        "agreement": agreements,
        "kappa": kappas,
        "false_findings": falses.to_dict("records"),
        "causes": cause_tally(falses),
    }
    levels = level_false_findings(units, falses, keys)
    result["false_findings_by_level"] = levels
    result["cause_tally"] = tally(falses, levels, keys)
    result["cause_codes"] = cause_list()
    current = {false_finding_key(row) for row in result["false_findings"]}
    orphans = [{**dict(zip(("kind", "patient_id", "modality", "tracer", "reader", "lesion_id", TIME_POINT), key)),
                "cause_code": code} for key, (code, _) in options.cause_codes.items() if key not in current]
    if orphans:  # confirmed codes of findings that are no longer false: returned, for the outputs to keep
        result["previous_cause_codes"] = orphans
    result["methods"] = {"endpoints": endpoint_methods(study, options),
                         "causes": {"codes": cause_list(), "references": list(CAUSE_REFERENCES),
                                    "default_fwhm_mm": DEFAULT_FWHM_MM,
                                    "confirmed": int(sum(r["cause_confirmed"] == "yes"
                                                         for r in result["false_findings"])),
                                    "proposed_only": int(sum(r["cause_confirmed"] != "yes"
                                                             for r in result["false_findings"]))}}
    if study.reference.indications:
        result["endpoints"] = endpoint_table(units["patient"], options, weights, keys,
                                             study.group_order if study.timed else None)
    if study.timed:
        result["inputs"]["time_points"] = list(study.time_points)
    if study.correspondence is not None:
        result["correspondence"] = study.correspondence
    if staging.get("available"):
        result["staging"] = staging
    from netpet.stats.reading import reader_study, reading_standards

    report(0.98, "Reading standards and reader study")
    result["scores"] = reading_standards(study)
    result["mrmc"] = reader_study(units)
    report(1.0, "Statistics done")
    return Analysis(_clean(result), units, falses, curves, plots, _clean(staging))


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value
