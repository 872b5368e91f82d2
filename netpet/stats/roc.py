"""ROC analysis of a continuous lesion measure (suv_max, suv_peak, tl_ratio, tb_ratio) against truth.

* AUC = the Mann-Whitney probability that a malignant lesion scores higher than a benign one
  (ties count one half); higher scores mean malignant.
* Its variance by DeLong ER, DeLong DM, Clarke-Pearson DL (Biometrics 1988;44:837-845), computed
  from mid-ranks (Sun X, Xu W, IEEE Signal Process Lett 2014); the interval AUC ± z·SE clipped to
  [0, 1], as pROC's ``ci.auc(method = "delong")``.
* Two AUCs on the same lesions: DeLong's paired test with the covariance of the placement values
  (pROC ``roc.test(paired = TRUE, method = "delong")``); on different lesions, the unpaired form.
* The Youden cut-off maximises sensitivity + specificity - 1 over the midpoints between
  consecutive distinct scores (rule: score > cut-off); ties keep the lowest cut-off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
from scipy import stats

from netpet.stats.intervals import z_value


@dataclass
class Placements:
    auc: float
    cases: np.ndarray      # V10: per malignant lesion, share of benign ones it outscores
    controls: np.ndarray   # V01: per benign lesion, share of malignant ones that outscore it


def _midranks(values: np.ndarray) -> np.ndarray:
    return stats.rankdata(values, method="average")


def placements(scores: np.ndarray, truth: np.ndarray) -> Placements:
    """DeLong placement values from mid-ranks (needs at least one case and one control)."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    cases, controls = scores[truth], scores[~truth]
    m, n = len(cases), len(controls)
    combined = _midranks(np.concatenate([cases, controls]))
    within_cases, within_controls = _midranks(cases), _midranks(controls)
    v10 = (combined[:m] - within_cases) / n
    v01 = 1.0 - (combined[m:] - within_controls) / m
    auc = float((combined[:m].sum() - m * (m + 1) / 2.0) / (m * n))
    return Placements(auc, v10, v01)


def delong_variance(p: Placements) -> float:
    m, n = len(p.cases), len(p.controls)
    if m < 2 or n < 2:
        return math.nan
    return float(np.var(p.cases, ddof=1) / m + np.var(p.controls, ddof=1) / n)


def auc_ci(scores: np.ndarray, truth: np.ndarray, level: float = 0.95) -> Tuple[float, float, float, float]:
    """(AUC, SE, ci_low, ci_high) with DeLong's variance; SE and interval NaN with fewer than two
    cases or controls."""
    p = placements(scores, truth)
    variance = delong_variance(p)
    if not math.isfinite(variance):
        return p.auc, math.nan, math.nan, math.nan
    se = math.sqrt(variance)
    z = z_value(level)
    return p.auc, se, max(0.0, p.auc - z * se), min(1.0, p.auc + z * se)


def delong_paired(scores_a: np.ndarray, scores_b: np.ndarray, truth: np.ndarray) -> Tuple[float, float, float, float]:
    """Paired DeLong test of two measures on the same lesions: (auc_a, auc_b, z, two-sided p)."""
    pa, pb = placements(scores_a, truth), placements(scores_b, truth)
    m, n = len(pa.cases), len(pa.controls)
    s10 = np.cov(np.vstack([pa.cases, pb.cases]), ddof=1)
    s01 = np.cov(np.vstack([pa.controls, pb.controls]), ddof=1)
    s = s10 / m + s01 / n
    variance = s[0, 0] + s[1, 1] - 2.0 * s[0, 1]
    if not variance > 0:
        return pa.auc, pb.auc, math.nan, 1.0 if pa.auc == pb.auc else math.nan
    z = (pa.auc - pb.auc) / math.sqrt(variance)
    return pa.auc, pb.auc, float(z), float(2.0 * stats.norm.sf(abs(z)))


def delong_unpaired(scores_a: np.ndarray, truth_a: np.ndarray, scores_b: np.ndarray,
                    truth_b: np.ndarray) -> Tuple[float, float, float, float]:
    """DeLong test of two AUCs on different lesions: (auc_a, auc_b, t, two-sided p).

    The statistic is referred to a t distribution with Welch-Satterthwaite degrees of freedom
    (var_a + var_b)² / (var_a² / (N_a - 1) + var_b² / (N_b - 1)), N the lesions of each set, as
    pROC's unpaired ``roc.test`` does.
    """
    pa, pb = placements(scores_a, truth_a), placements(scores_b, truth_b)
    var_a, var_b = delong_variance(pa), delong_variance(pb)
    variance = var_a + var_b
    if not variance > 0:
        return pa.auc, pb.auc, math.nan, math.nan
    t = (pa.auc - pb.auc) / math.sqrt(variance)
    df = variance ** 2 / (var_a ** 2 / (len(scores_a) - 1) + var_b ** 2 / (len(scores_b) - 1))
    return pa.auc, pb.auc, float(t), float(2.0 * stats.t.sf(abs(t), df))


def roc_curve(scores: np.ndarray, truth: np.ndarray) -> Dict[str, np.ndarray]:
    """Cut-offs (midpoints, plus one below the lowest score) with sensitivity and specificity of
    ``score > cut-off`` at each, ordered by increasing cut-off. Vectorised: O(n log n)."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    levels, inverse = np.unique(scores, return_inverse=True)
    positives = np.bincount(inverse, weights=truth.astype(float), minlength=len(levels))
    negatives = np.bincount(inverse, weights=(~truth).astype(float), minlength=len(levels))
    cutoffs = np.concatenate([[levels[0] - max(1e-9, 1e-9 * abs(levels[0]))], (levels[:-1] + levels[1:]) / 2.0])
    # cut-off k lies below level k: everything from level k upward is called positive
    above_pos = np.cumsum(positives[::-1])[::-1]
    above_neg = np.cumsum(negatives[::-1])[::-1]
    total_pos, total_neg = positives.sum(), negatives.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity = above_pos / total_pos
        specificity = 1.0 - above_neg / total_neg
    return {"cutoff": cutoffs, "sensitivity": sensitivity, "specificity": specificity}


def youden(scores: np.ndarray, truth: np.ndarray) -> Tuple[float, float, float]:
    """(cut-off, sensitivity, specificity) maximising Youden's J; ties keep the lowest cut-off."""
    curve = roc_curve(scores, truth)
    j = curve["sensitivity"] + curve["specificity"] - 1.0
    best = int(np.flatnonzero(j >= j.max() - 1e-12)[0])
    return float(curve["cutoff"][best]), float(curve["sensitivity"][best]), float(curve["specificity"][best])


def bootstrap_band(scores: np.ndarray, truth: np.ndarray, replicates: int = 500, seed: int = 0,
                   level: float = 0.95, grid: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Pointwise percentile band of sensitivity at fixed specificities, from a bootstrap stratified
    by truth (for the ROC figure; as pROC's ``ci.se``)."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    grid = np.linspace(0.0, 1.0, 101) if grid is None else grid
    rng = np.random.default_rng(seed)
    cases, controls = scores[truth], scores[~truth]
    curves = np.empty((replicates, len(grid)))
    for r in range(replicates):
        a = rng.choice(cases, len(cases))
        b = rng.choice(controls, len(controls))
        curve = roc_curve(np.concatenate([a, b]), np.concatenate([np.ones(len(a), bool), np.zeros(len(b), bool)]))
        spec, sens = curve["specificity"], curve["sensitivity"]
        # the best sensitivity reachable at specificity >= s (a step function)
        order = np.argsort(spec)
        spec, sens = spec[order], np.maximum.accumulate(sens[order][::-1])[::-1]
        index = np.searchsorted(spec, grid, side="left")
        curves[r] = np.where(index < len(spec), sens[np.minimum(index, len(spec) - 1)], 0.0)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(curves, [tail, 100.0 - tail], axis=0)
    return {"specificity": grid, "sensitivity_low": low, "sensitivity_high": high}
