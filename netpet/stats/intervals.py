"""Confidence intervals of proportions, likelihood ratios and 2x2 accuracy measures.

Every measure is returned as a :class:`Measure` (estimate, ci_low, ci_high, method, and a reason
when nothing can be computed), the shape ``netpet stats --json`` prints.

Proportion intervals (``CI_METHODS``), all two-sided at ``level``:

``wilson`` (default)
    Wilson score interval (Wilson EB, J Am Stat Assoc 1927); statsmodels ``proportion_confint``.
``clopper-pearson``
    Exact interval from beta quantiles (Clopper CJ, Pearson ES, Biometrika 1934).
``agresti-coull``
    Wald interval around (x + z²/2) / (n + z²) (Agresti A, Coull BA, Am Stat 1998), clipped to
    [0, 1]; the estimate reported stays x / n.
``jeffreys``
    Equal-tailed Beta(x + 1/2, n - x + 1/2) interval, with the boundary modification of Brown,
    Cai and DasGupta (Stat Sci 2001): lower limit 0 when x = 0, upper limit 1 when x = n.

Likelihood ratios LR+ = sens / (1 - spec) and LR- = (1 - sens) / spec with the log-method
interval (Simel DL, Samsa GP, Matchar DB, J Clin Epidemiol 1991), as epiR and DTComPair compute.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

from netpet.errors import NetpetError

CI_METHODS = ("wilson", "clopper-pearson", "agresti-coull", "jeffreys")
_STATSMODELS_NAME = {"wilson": "wilson", "clopper-pearson": "beta", "agresti-coull": "agresti_coull",
                     "jeffreys": "jeffreys"}


class StatsError(NetpetError):
    """The study table or reference standard cannot be analysed as given."""


@dataclass
class Measure:
    """A point estimate with its confidence interval; all None (with a reason) when undefined."""

    estimate: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]
    method: str
    reason: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        if self.reason is None:
            out.pop("reason")
        return out

    @classmethod
    def undefined(cls, method: str, reason: str) -> "Measure":
        return cls(None, None, None, method, reason)


def z_value(level: float = 0.95) -> float:
    """The two-sided standard normal quantile of a confidence level (1.959964 at 0.95)."""
    if not 0.0 < level < 1.0:
        raise StatsError(f"The confidence level must lie between 0 and 1 (got {level}).")
    from scipy import stats  # here, not at the top: the command line lists CI_METHODS without scipy.stats

    return float(stats.norm.isf((1.0 - level) / 2.0))


def proportion_ci(count: int, total: int, method: str = "wilson", level: float = 0.95) -> Tuple[float, float]:
    """Two-sided confidence interval of count / total.

    Raises
    ------
    StatsError
        An unknown method, or a count outside 0..total.
    """
    from statsmodels.stats.proportion import proportion_confint

    if method not in CI_METHODS:
        raise StatsError(f"Unknown confidence-interval method {method!r}; choose one of {', '.join(CI_METHODS)}.")
    if total <= 0 or not 0 <= count <= total:
        raise StatsError(f"A proportion needs 0 <= count <= total and total > 0 (got {count} of {total}).")
    low, high = proportion_confint(count, total, alpha=1.0 - level, method=_STATSMODELS_NAME[method])
    low, high = float(low), float(high)
    if method in ("jeffreys", "wilson"):
        # Wilson: exact limits 0 and 1 at the boundaries (floating point leaves 1e-17);
        # Jeffreys: the boundary modification of Brown, Cai & DasGupta 2001, section 4.1.2
        low = 0.0 if count == 0 else low
        high = 1.0 if count == total else high
    return max(0.0, low), min(1.0, high)


def proportion(count: int, total: int, method: str = "wilson", level: float = 0.95, what: str = "") -> Measure:
    """count / total with its interval; undefined (with the reason) when total is 0."""
    if total == 0:
        return Measure.undefined(method, f"no {what or 'cases'} to compute it from")
    low, high = proportion_ci(count, total, method, level)
    return Measure(count / total, low, high, method)


def likelihood_ratios(tp: int, fp: int, fn: int, tn: int, level: float = 0.95) -> Tuple[Measure, Measure]:
    """LR+ and LR- with log-method intervals (Simel et al. 1991).

    A zero cell that makes a ratio infinite or its logarithm undefined gives the estimate where it
    exists and no interval, with the reason.
    """
    z = z_value(level)
    method = "log (Simel 1991)"
    positives, negatives = tp + fn, fp + tn
    if positives == 0 or negatives == 0:
        reason = "no reference-positive cases" if positives == 0 else "no reference-negative cases"
        return Measure.undefined(method, reason), Measure.undefined(method, reason)

    def ratio(hit: int, hit_total: int, miss: int, miss_total: int, name: str) -> Measure:
        # ratio = (hit / hit_total) / (miss / miss_total)
        if miss == 0:
            return Measure.undefined(method, f"{name} is infinite: its denominator count is 0")
        estimate = (hit / hit_total) / (miss / miss_total)
        if hit == 0:
            return Measure(0.0, None, None, method, f"{name} is 0: no interval on the log scale")
        se = math.sqrt(1.0 / hit - 1.0 / hit_total + 1.0 / miss - 1.0 / miss_total)
        return Measure(estimate, estimate * math.exp(-z * se), estimate * math.exp(z * se), method)

    return ratio(tp, positives, fp, negatives, "LR+"), ratio(fn, positives, tn, negatives, "LR-")


def accuracy_measures(tp: int, fp: int, fn: int, tn: int, method: str = "wilson",
                      level: float = 0.95) -> Dict[str, Measure]:
    """Sensitivity, specificity, PPV, NPV, accuracy (proportion intervals) and LR+, LR- of a 2x2 table."""
    lr_pos, lr_neg = likelihood_ratios(tp, fp, fn, tn, level)
    return {
        "sensitivity": proportion(tp, tp + fn, method, level, "reference-positive cases (no positives)"),
        "specificity": proportion(tn, tn + fp, method, level, "reference-negative cases (no negatives)"),
        "ppv": proportion(tp, tp + fp, method, level, "positive calls"),
        "npv": proportion(tn, tn + fn, method, level, "negative calls"),
        "accuracy": proportion(tp + tn, tp + fp + fn + tn, method, level, "cases"),
        "lr_pos": lr_pos,
        "lr_neg": lr_neg,
    }
