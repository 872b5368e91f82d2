"""Intervals that respect the clustering of lesions (and regions) within patients.

Two methods, reported beside the naive intervals at lesion and region level:

``cluster bootstrap``
    Patients are resampled with replacement (all their lesions go with them) and the measure is
    recomputed; the interval is the percentile interval of the replicates (Efron B, Tibshirani
    RJ, An Introduction to the Bootstrap, 1993; for clustered diagnostic data, Rutter CM,
    Acad Radiol 2000). Vectorised: a replicate is a vector of multinomial patient weights, so
    2,000 replicates of 10,000 lesions take a matrix product.
``GEE``
    The ratio estimator sum(x) / sum(n) with the robust (sandwich) variance of an intercept-only
    logistic GEE with independence working correlation (Liang KY, Zeger SL, Biometrika 1986;
    for proportions of clustered data see Obuchowski NA, Stat Med 1998): the interval is formed on
    the logit scale and transformed back, as statsmodels' GEE reports it.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from netpet.stats.intervals import Measure, z_value

#: (numerator cells, denominator cells) of each measure over the cell order tp, fp, fn, tn
MEASURE_CELLS: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {
    "sensitivity": ((0,), (0, 2)),
    "specificity": ((3,), (1, 3)),
    "ppv": ((0,), (0, 1)),
    "npv": ((3,), (2, 3)),
    "accuracy": ((0, 3), (0, 1, 2, 3)),
}


def cells_by_cluster(clusters: Sequence, truth: np.ndarray, call: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(cluster labels, counts) with counts[k] = (tp, fp, fn, tn) of cluster k."""
    labels, index = np.unique(np.asarray(clusters), return_inverse=True)
    truth = np.asarray(truth, dtype=bool)
    call = np.asarray(call, dtype=bool)
    cell = np.where(truth, np.where(call, 0, 2), np.where(call, 1, 3))
    counts = np.zeros((len(labels), 4), dtype=np.int64)
    np.add.at(counts, (index, cell), 1)
    return labels, counts


def bootstrap_weights(clusters: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates x clusters) multinomial weights: how often each cluster is drawn per replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(clusters, np.full(clusters, 1.0 / clusters), size=replicates).astype(np.float64)


def _ratios(totals: np.ndarray, name: str) -> np.ndarray:
    top, bottom = MEASURE_CELLS[name]
    numerator = totals[..., list(top)].sum(axis=-1)
    denominator = totals[..., list(bottom)].sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _percentile(values: np.ndarray, level: float) -> Tuple[Optional[float], Optional[float], int]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None, 0
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high), int(finite.size)


def bootstrap_measures(counts: np.ndarray, weights: np.ndarray, level: float = 0.95) -> Dict[str, Measure]:
    """Cluster-bootstrap percentile intervals of the five proportions from per-cluster cells."""
    totals = weights @ counts  # (replicates, 4)
    observed = counts.sum(axis=0)
    out: Dict[str, Measure] = {}
    method = f"cluster bootstrap ({weights.shape[0]} replicates, percentile)"
    for name in MEASURE_CELLS:
        estimate = float(_ratios(observed.astype(float), name))
        if not math.isfinite(estimate):
            out[name] = Measure.undefined(method, "no cases to compute it from")
            continue
        low, high, _used = _percentile(_ratios(totals, name), level)  # replicates without cases are left out
        out[name] = Measure(estimate, low, high, method)
    return out


def gee_proportion(successes: np.ndarray, totals: np.ndarray, level: float = 0.95) -> Measure:
    """Ratio estimator with the GEE robust (sandwich) variance, logit-scale interval.

    ``successes[k]`` of ``totals[k]`` units in cluster k (clusters with no units are ignored).
    Equal to statsmodels ``GEE(y, 1, groups, family=Binomial(), cov_struct=Independence())``
    with its default robust covariance.
    """
    method = "GEE (logit, independence, robust SE)"
    successes = np.asarray(successes, dtype=float)
    totals = np.asarray(totals, dtype=float)
    keep = totals > 0
    successes, totals = successes[keep], totals[keep]
    n = totals.sum()
    if n == 0:
        return Measure.undefined(method, "no cases to compute it from")
    p = successes.sum() / n
    if p in (0.0, 1.0):
        return Measure(p, None, None, method, f"every case is {'positive' if p == 1.0 else 'negative'}: the logit "
                                              "is infinite, no robust interval")
    if len(totals) < 2:
        return Measure(p, None, None, method, "a single cluster: no robust interval")
    residual = successes - p * totals
    variance = float(np.sum(residual ** 2)) / (p * (1.0 - p) * n) ** 2
    z = z_value(level)
    logit = math.log(p / (1.0 - p))
    half = z * math.sqrt(variance)
    return Measure(p, 1.0 / (1.0 + math.exp(-(logit - half))), 1.0 / (1.0 + math.exp(-(logit + half))), method)


def gee_measures(counts: np.ndarray, level: float = 0.95) -> Dict[str, Measure]:
    """GEE robust intervals of the five proportions from per-cluster cells (tp, fp, fn, tn)."""
    out = {}
    for name, (top, bottom) in MEASURE_CELLS.items():
        out[name] = gee_proportion(counts[:, list(top)].sum(axis=1), counts[:, list(bottom)].sum(axis=1), level)
    return out
