"""Paired comparisons of two binary tests on the same cases (PET/MR vs PET/CT, DOTATATE vs FDG,
reader A vs reader B).

For sensitivity the cases are the reference-positive units, for specificity the
reference-negative ones; ``a`` and ``b`` are the two tests' calls (for specificity, the
negative calls). With n10 = a only, n01 = b only:

* exact McNemar: two-sided binomial test of n10 against n10 + n01 at 1/2 (as R's binom.test and
  DTComPair ``sesp.exactbinom``);
* McNemar chi-square (n10 - n01)² / (n10 + n01) (McNemar Q, Psychometrika 1947; DTComPair
  ``sesp.mcnemar``), and with continuity correction (|n10 - n01| - 1)² / (n10 + n01) (R's
  mcnemar.test default);
* difference a - b with Tango's score interval (Tango T, Stat Med 1998;17:891-908), which
  DTComPair ``sesp.diff.ci(ci.method = "tango")`` also gives, or the Wald interval;
* clustered data (several lesions or regions per patient): the clustered McNemar statistic of
  Durkalski VL, Palesch YY, Lipsitz SR, Rust PF (Stat Med 2003;22:2417-2428),
  (sum_k (n10_k - n01_k))² / sum_k (n10_k - n01_k)², chi-square with 1 df, and the difference
  with a cluster-bootstrap percentile interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy import optimize, stats

from netpet.stats.intervals import z_value


@dataclass
class PairedCounts:
    """Concordant and discordant counts of two tests on the same n cases."""

    both: int
    a_only: int
    b_only: int
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.a_only + self.b_only + self.neither

    @property
    def difference(self) -> float:
        """Proportion positive by a minus proportion positive by b."""
        return (self.a_only - self.b_only) / self.n

    @classmethod
    def from_calls(cls, a: np.ndarray, b: np.ndarray) -> "PairedCounts":
        a = np.asarray(a, dtype=bool)
        b = np.asarray(b, dtype=bool)
        return cls(int(np.sum(a & b)), int(np.sum(a & ~b)), int(np.sum(~a & b)), int(np.sum(~a & ~b)))


def mcnemar_exact(counts: PairedCounts) -> float:
    """Two-sided exact McNemar p-value (1.0 without discordant pairs)."""
    discordant = counts.a_only + counts.b_only
    if discordant == 0:
        return 1.0
    return float(min(1.0, 2.0 * stats.binom.cdf(min(counts.a_only, counts.b_only), discordant, 0.5)))


def mcnemar_chi2(counts: PairedCounts, correction: bool = False) -> Tuple[Optional[float], float]:
    """McNemar chi-square statistic and p-value (statistic None, p 1.0 without discordant pairs)."""
    discordant = counts.a_only + counts.b_only
    if discordant == 0:
        return None, 1.0
    difference = abs(counts.a_only - counts.b_only)
    if correction:
        difference = max(difference - 1.0, 0.0)
    statistic = difference ** 2 / discordant
    return float(statistic), float(stats.chi2.sf(statistic, 1))


def tango_interval(counts: PairedCounts, level: float = 0.95) -> Tuple[float, float]:
    """Tango's score interval for the paired difference a - b (Tango 1998, equations 3-5)."""
    n, x12, x21 = counts.n, counts.a_only, counts.b_only
    z = z_value(level)

    def score(delta: float) -> float:
        w = -x12 - x21 + (2.0 * n - x12 + x21) * delta
        q21 = (math.sqrt(max(w * w + 8.0 * n * x21 * delta * (1.0 - delta), 0.0)) - w) / (4.0 * n)
        variance = n * (2.0 * q21 + delta * (1.0 - delta))
        if variance <= 0.0:
            return math.copysign(math.inf, x12 - x21 - n * delta) if x12 - x21 - n * delta else 0.0
        return (x12 - x21 - n * delta) / math.sqrt(variance)

    estimate = counts.difference
    edge = 1.0 - 1e-12
    low = -1.0 if score(-edge) <= z else optimize.brentq(lambda d: score(d) - z, -edge, estimate, xtol=1e-14)
    high = 1.0 if score(edge) >= -z else optimize.brentq(lambda d: score(d) + z, estimate, edge, xtol=1e-14)
    return float(low), float(high)


def wald_interval(counts: PairedCounts, level: float = 0.95) -> Tuple[float, float]:
    """Wald interval of the paired difference (Altman 1991; DTComPair's default)."""
    n = counts.n
    d = counts.difference
    se = math.sqrt(counts.a_only + counts.b_only - (counts.a_only - counts.b_only) ** 2 / n) / n
    half = z_value(level) * se
    return d - half, d + half


def durkalski(a_only_by_cluster: np.ndarray, b_only_by_cluster: np.ndarray) -> Tuple[Optional[float], float]:
    """Clustered McNemar statistic (Durkalski et al. 2003) and its chi-square(1) p-value."""
    d = np.asarray(a_only_by_cluster, dtype=float) - np.asarray(b_only_by_cluster, dtype=float)
    denominator = float(np.sum(d ** 2))
    if denominator == 0.0:
        return None, 1.0
    statistic = float(np.sum(d)) ** 2 / denominator
    return statistic, float(stats.chi2.sf(statistic, 1))
