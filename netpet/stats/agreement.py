"""Agreement of SUVs between two groups on the same lesions, and of two readers' calls.

* Bland-Altman (Bland JM, Altman DG, Lancet 1986;i:307-310): bias = mean(a - b), limits of
  agreement bias ± z·SD; intervals of the bias (t distribution) and of each limit (SE =
  SD·sqrt(3/n), Bland & Altman, Stat Methods Med Res 1999;8:135-160). Also in per cent of the
  pair mean, where a bone bias of PET/MR shows as a proportion.
* Lin's concordance correlation coefficient (Lin LI, Biometrics 1989;45:255-268; erratum 2000)
  with the asymptotic SE of Lin 1989 and the interval on Fisher's z scale.
* Spearman's rank correlation with the t-approximation p-value.
* Cohen's kappa of two readers' calls with its asymptotic SE and interval (statsmodels
  ``cohens_kappa``, Fleiss JL, Cohen J, Everitt BS, Psychol Bull 1969).
"""

from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np
from scipy import stats

from netpet.stats.intervals import z_value


def bland_altman(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Dict[str, Any]:
    """Bias, SD of the differences and limits of agreement of a - b, with their intervals."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n = len(a)
    out: Dict[str, Any] = {"n": n}
    if n < 2:
        out["reason"] = "fewer than two lesions measured in both groups"
        return out
    d = a - b
    bias = float(d.mean())
    sd = float(d.std(ddof=1))
    z = z_value(level)
    t = float(stats.t.ppf(1.0 - (1.0 - level) / 2.0, n - 1))
    se_bias = sd / math.sqrt(n)
    se_limit = sd * math.sqrt(3.0 / n)
    lower, upper = bias - z * sd, bias + z * sd
    mean = (a + b) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(mean != 0, 100.0 * d / mean, np.nan)
    percent = percent[np.isfinite(percent)]
    out.update({
        "bias": bias, "bias_ci_low": bias - t * se_bias, "bias_ci_high": bias + t * se_bias, "sd": sd,
        "loa_low": lower, "loa_low_ci_low": lower - t * se_limit, "loa_low_ci_high": lower + t * se_limit,
        "loa_high": upper, "loa_high_ci_low": upper - t * se_limit, "loa_high_ci_high": upper + t * se_limit,
        "bias_percent": float(percent.mean()) if percent.size else None,
        "sd_percent": float(percent.std(ddof=1)) if percent.size > 1 else None,
    })
    return out


def lin_ccc(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Dict[str, Any]:
    """Lin's concordance correlation coefficient with its z-transform interval."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n = len(a)
    if n < 3:
        return {"ccc": None, "ci_low": None, "ci_high": None, "reason": "fewer than three lesions in both groups"}
    var_a, var_b = a.var(), b.var()  # divisor n, as Lin 1989 defines the moments
    covariance = float(np.mean((a - a.mean()) * (b - b.mean())))
    shift = a.mean() - b.mean()
    ccc = 2.0 * covariance / (var_a + var_b + shift ** 2)
    if var_a == 0 or var_b == 0:
        return {"ccc": float(ccc), "ci_low": None, "ci_high": None, "reason": "one group's values do not vary"}
    r = covariance / math.sqrt(var_a * var_b)
    u2 = shift ** 2 / math.sqrt(var_a * var_b)  # squared location shift relative to the scales
    variance = ((1.0 - r ** 2) * ccc ** 2 * (1.0 - ccc ** 2) / r ** 2 + 2.0 * ccc ** 3 * (1.0 - ccc) * u2 / r
                - 0.5 * ccc ** 4 * u2 ** 2 / r ** 2) / (n - 2)
    if not variance > 0 or abs(ccc) >= 1.0:
        return {"ccc": float(ccc), "ci_low": None, "ci_high": None, "reason": "degenerate variance"}
    se_z = math.sqrt(variance) / (1.0 - ccc ** 2)
    z = math.atanh(ccc)
    half = z_value(level) * se_z
    return {"ccc": float(ccc), "ci_low": math.tanh(z - half), "ci_high": math.tanh(z + half),
            "pearson_r": float(r), "bias_correction": float(ccc / r)}


def spearman(a: np.ndarray, b: np.ndarray) -> Dict[str, Any]:
    if len(a) < 3:
        return {"rho": None, "p_value": None, "reason": "fewer than three lesions in both groups"}
    result = stats.spearmanr(a, b)
    rho, p = float(result.statistic), float(result.pvalue)
    if not math.isfinite(rho):
        return {"rho": None, "p_value": None, "reason": "one group's values do not vary"}
    return {"rho": rho, "p_value": p}


def cohen_kappa(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Dict[str, Any]:
    """Cohen's kappa of two binary ratings of the same units, with its interval and the test of 0."""
    from statsmodels.stats.inter_rater import cohens_kappa

    a = np.asarray(a, dtype=int)
    b = np.asarray(b, dtype=int)
    n = len(a)
    table = np.array([[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))],
                      [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]], dtype=float)
    observed = float(np.trace(table) / n) if n else None
    if n == 0:
        return {"n": 0, "kappa": None, "reason": "no units rated by both"}
    expected = float((table.sum(1) * table.sum(0)).sum() / n ** 2)
    if expected >= 1.0:
        return {"n": n, "kappa": None, "observed_agreement": observed, "table": table.astype(int).tolist(),
                "reason": "both readers give one call to every unit: kappa is undefined"}
    result = cohens_kappa(table)
    p_value = float(result["pvalue_two_sided"]) if math.isfinite(result["pvalue_two_sided"]) else None
    kappa, se = float(result["kappa"]), float(result["std_kappa"])
    half = z_value(level) * se  # statsmodels' kappa_low/kappa_upp at 95 %, for any level
    return {"n": n, "kappa": kappa, "se": se, "ci_low": kappa - half, "ci_high": kappa + half, "p_value": p_value,
            "observed_agreement": observed, "expected_agreement": expected, "table": table.astype(int).tolist()}
