"""Statistics of the reading standards: distributions of NETPET grades and SSTR-RADS scan impressions per group, and
agreement between readers and between modalities (PET/CT vs PET/MR) with the weighted kappa.

Distribution rows (:data:`DISTRIBUTION_COLUMNS`): per measure (``netpet_grade``: the grade of each patient's dual
read, "no grade" counted as its own category; ``sstr_rads_impression``: the final scan impression of each SSTR PET
read, :mod:`netpet.clinical.sstr_rads`) and group (modality, tracer, reader, time point), the number of patients per
category, the patients of the group and the per cent.

Agreement rows (:data:`AGREEMENT_COLUMNS`): Cohen's kappa with linear disagreement weights (Cohen J, Psychol Bull
1968;70:213-220; the ordinal categories P0 < ... < P5 and 1A < ... < 5 in their listed order), computed by
:func:`netpet.clinical.staging_stats.weighted_kappa` (statsmodels' ``cohens_kappa``, its asymptotic SE and a
Wald interval), over the patients graded by both readings:

* ``readers``: two readers, same modality and time point (every pair of readers);
* ``modalities``: two SSTR PET modalities (e.g. PET/CT and PET/MR), same reader and time point;
* ``proposal-reader`` (measure ``sstr_rads_impression`` only): the software's proposed scan impression against the
  reader's own (the scans where the reader gave categories), per modality, tracer, reader and time point: how often
  the reader confirms the proposal.

A patient with no grade in either reading is left out of that comparison (``n_patients`` counts the pairs used). A
patient read twice in one group (two sessions of one modality at a time point) gives its first session (sorted by
session id) and a warning.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from netpet.clinical.netpet_score import GRADES
from netpet.schema import SSTR_RADS_CATEGORIES

NO_GRADE = "no grade"
DISTRIBUTION_COLUMNS: Tuple[str, ...] = ("measure", "modality", "tracer", "reader", "time_point", "category", "n",
                                         "n_patients", "percent")
AGREEMENT_COLUMNS: Tuple[str, ...] = ("measure", "comparison", "a", "b", "modality", "reader", "time_point",
                                      "n_patients", "kappa", "se", "ci_low", "ci_high", "observed_agreement", "weights",
                                      "reason")
_MEASURES = {"netpet_grade": GRADES, "sstr_rads_impression": SSTR_RADS_CATEGORIES}


def _units(scores: Sequence[Mapping[str, Any]], scans: Sequence[Mapping[str, Any]],
           warnings: List[str]) -> List[Dict[str, Any]]:
    """Tidy units: measure, patient, modality, tracer, reader, time point, category ('' = no grade)."""
    units: Dict[Tuple[str, ...], Dict[str, Any]] = {}
    for row in sorted(scores, key=lambda r: (r["patient_id"], r.get("sstr_session", ""))):
        if not row.get("modality"):
            continue  # an FDG session without a DOTATATE read: no SSTR modality to group by
        key = ("netpet_grade", row["patient_id"], row["modality"], "dotatate", row["reader"], row["time_point"])
        if key in units:
            warnings.append(f"patient {row['patient_id']}, reader {row['reader']}, {row['modality']} at "
                            f"{row['time_point']}: more than one DOTATATE session; the statistics use session "
                            f"{units[key]['session']}")
            continue
        units[key] = {"category": row.get("grade") or "", "session": row.get("sstr_session", "")}
    for row in sorted(scans, key=lambda r: (r["patient_id"], r["session_id"])):
        key = ("sstr_rads_impression", row["patient_id"], row["modality"], row["tracer"], row["reader"],
               row["time_point"])
        if key in units:
            warnings.append(f"patient {row['patient_id']}, reader {row['reader']}, {row['modality']} {row['tracer']} "
                            f"at {row['time_point']}: more than one session; the statistics use session "
                            f"{units[key]['session']}")
            continue
        units[key] = {"category": row.get("final") or "", "session": row["session_id"]}
    return [dict(zip(("measure", "patient_id", "modality", "tracer", "reader", "time_point"), k), **v)
            for k, v in units.items()]


def distributions(units: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Counts per measure, group and category (module docstring); every category of the measure is listed (0 too)."""
    groups: Dict[Tuple[str, ...], List[str]] = {}
    for u in units:
        groups.setdefault((u["measure"], u["modality"], u["tracer"], u["reader"], u["time_point"]), []).append(
            u["category"] or NO_GRADE)
    out = []
    for (measure, modality, tracer, reader, time_point), categories in sorted(groups.items()):
        n = len(categories)
        for category in list(_MEASURES[measure]) + [NO_GRADE]:
            count = categories.count(category)
            if category == NO_GRADE and not count:
                continue
            out.append({"measure": measure, "modality": modality, "tracer": tracer, "reader": reader,
                        "time_point": time_point, "category": category, "n": count, "n_patients": n,
                        "percent": 100.0 * count / n})
    return out


def kappa(a: Sequence[str], b: Sequence[str], categories: Sequence[str]) -> Dict[str, Any]:
    """Linearly weighted kappa of two readings of the same patients over ordered ``categories``
    (:func:`netpet.clinical.staging_stats.weighted_kappa`)."""
    from netpet.clinical.staging_stats import weighted_kappa

    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)), dtype=float)
    for x, y in zip(a, b):
        table[index[x], index[y]] += 1
    return weighted_kappa(table, "linear")


def agreement(units: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Weighted kappa between readers and between modalities (module docstring)."""
    by: Dict[Tuple[str, ...], str] = {}
    for u in units:
        by[(u["measure"], u["patient_id"], u["modality"], u["tracer"], u["reader"], u["time_point"])] = u["category"]
    out: List[Dict[str, Any]] = []
    for measure, categories in _MEASURES.items():
        mine = [u for u in units if u["measure"] == measure]
        # readers: same modality, tracer, time point
        for (modality, tracer, time_point) in sorted({(u["modality"], u["tracer"], u["time_point"]) for u in mine}):
            readers = sorted({u["reader"] for u in mine if (u["modality"], u["tracer"], u["time_point"]) ==
                              (modality, tracer, time_point)})
            for r1, r2 in itertools.combinations(readers, 2):
                out.append(_pair(by, measure, categories, "readers", r1, r2, modality, "", tracer, time_point, mine,
                                 lambda u, r: u["reader"] == r and u["modality"] == modality and u["tracer"] == tracer
                                 and u["time_point"] == time_point, lambda p, r: (measure, p, modality, tracer, r,
                                                                                  time_point)))
        for (reader, tracer, time_point) in sorted({(u["reader"], u["tracer"], u["time_point"]) for u in mine}):
            modalities = sorted({u["modality"] for u in mine if (u["reader"], u["tracer"], u["time_point"]) ==
                                 (reader, tracer, time_point)})
            for m1, m2 in itertools.combinations(modalities, 2):
                out.append(_pair(by, measure, categories, "modalities", m1, m2, "", reader, tracer, time_point, mine,
                                 lambda u, m: u["modality"] == m and u["reader"] == reader and u["tracer"] == tracer
                                 and u["time_point"] == time_point, lambda p, m: (measure, p, m, tracer, reader,
                                                                                  time_point)))
    return out


def _pair(by, measure, categories, comparison, a, b, modality, reader, tracer, time_point, mine, belongs, key):
    patients = sorted({u["patient_id"] for u in mine if belongs(u, a)} & {u["patient_id"] for u in mine if belongs(u, b)})
    xs, ys = [], []
    for p in patients:
        x, y = by.get(key(p, a)), by.get(key(p, b))
        if x and y:
            xs.append(x)
            ys.append(y)
    row: Dict[str, Any] = {"measure": measure, "comparison": comparison, "a": a, "b": b, "modality": modality,
                           "reader": reader, "time_point": time_point, "n_patients": len(xs)}
    if len(xs) < 2:
        row.update(kappa=None, se=None, ci_low=None, ci_high=None, observed_agreement=None, weights="linear",
                   reason=f"{len(xs)} patient{'s' if len(xs) != 1 else ''} graded in both readings; kappa needs at "
                          "least 2")
        return row
    result = kappa(xs, ys, categories)
    row.update({k: result.get(k) for k in ("kappa", "se", "ci_low", "ci_high", "observed_agreement", "weights")})
    row["reason"] = result.get("reason", "")
    return row


def statistics(scores: Sequence[Mapping[str, Any]], scans: Sequence[Mapping[str, Any]],
               warnings: Optional[List[str]] = None) -> Dict[str, Any]:
    """Distributions and agreement of NETPET grades and SSTR-RADS scan impressions (module docstring).

    Returns
    -------
    dict
        ``distribution`` (rows of :data:`DISTRIBUTION_COLUMNS`) and ``agreement`` (rows of :data:`AGREEMENT_COLUMNS`).
    """
    warnings = warnings if warnings is not None else []
    units = _units(scores, scans, warnings)
    return {"distribution": distributions(units), "agreement": agreement(units) + proposal_agreement(scans)}


def proposal_agreement(scans: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Weighted kappa of the proposed against the reader's SSTR-RADS scan impression per modality, tracer, reader
    and time point (module docstring), over the scans with both."""
    groups: Dict[Tuple[str, ...], List[Mapping[str, Any]]] = {}
    for row in scans:
        groups.setdefault((row["modality"], row["tracer"], row["reader"], row["time_point"]), []).append(row)
    out = []
    for (modality, tracer, reader, time_point), rows in sorted(groups.items()):
        both = [r for r in rows if r.get("proposed") and r.get("reader_impression")]
        row: Dict[str, Any] = {"measure": "sstr_rads_impression", "comparison": "proposal-reader", "a": "proposed",
                               "b": "reader", "modality": modality, "reader": reader, "time_point": time_point,
                               "n_patients": len({r["patient_id"] for r in both})}
        if len(both) < 2:
            row.update(kappa=None, se=None, ci_low=None, ci_high=None, observed_agreement=None, weights="linear",
                       reason=f"{len(both)} scan{'s' if len(both) != 1 else ''} with both a proposed and a reader's "
                              "impression; kappa needs at least 2")
        else:
            result = kappa([r["proposed"] for r in both], [r["reader_impression"] for r in both], SSTR_RADS_CATEGORIES)
            row.update({k: result.get(k) for k in ("kappa", "se", "ci_low", "ci_high", "observed_agreement",
                                                   "weights")})
            row["reason"] = result.get("reason", "")
        out.append(row)
    return out
