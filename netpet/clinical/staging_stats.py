"""Accuracy and agreement of per-patient staging categories (pure functions over category pairs).

Inputs are per-patient categories as :func:`netpet.clinical.staging.stage_patients` returns them
(columns ``patient_id``, ``n``, ``m``, ``stage_group``). Patients with a None category on either side
(not read, or undetermined) are left out of that axis and counted in ``excluded``.

Measures
--------
Accuracy (:func:`staging_accuracy`)
    Correct N, correct M, correct N and M together, correct coarse stage group: proportions of the
    patients staged by both the test and the reference, with intervals of
    :func:`netpet.stats.intervals.proportion` (Wilson by default).
Agreement (:func:`weighted_kappa`, :func:`staging_agreement`)
    Cohen's kappa, unweighted and weighted with linear (|i-j|/(k-1)) and quadratic
    ((i-j)²/(k-1)²) disagreement weights over the categories in their order (Cohen J, Psychol
    Bull 1968; Fleiss JL, Cohen J, Educ Psychol Meas 1973), computed by statsmodels
    ``cohens_kappa``; its asymptotic standard error (Fleiss, Cohen, Everitt, Psychol Bull 1969; the
    SAS formula statsmodels implements) gives kappa ± z·SE, clipped to [-1, 1]. M is not a fully
    ordered scale (M1a liver only and M1b extrahepatic only are not ranked); besides the linear
    and quadratic kappa in the AJCC order M0 < M1a < M1b < M1c, M gets a kappa weighted by the number of compartments
    (hepatic, extrahepatic) on which two categories differ, divided by 2 (:data:`M_COMPARTMENT_WEIGHTS`).
Marginal homogeneity (:func:`marginal_homogeneity`)
    Bowker's test of symmetry (Bowker AH, J Am Stat Assoc 1948): sum over pairs i<j of
    (n_ij - n_ji)² / (n_ij + n_ji), df = k(k-1)/2; pairs with no discordant patient add 0 and keep
    their degree of freedom, as statsmodels ``SquareTable.symmetry`` does (R's ``mcnemar.test``
    gives NaN there instead). Stuart-Maxwell test of marginal homogeneity (Stuart A, Biometrika
    1955; Maxwell AE, Br J Psychiatry 1970), statsmodels ``SquareTable.homogeneity``; categories
    in no discordant pair are dropped first (their marginal difference is 0 with variance 0: they
    carry no information and make the covariance singular; the statistic on the rest equals the
    generalised-inverse one, df = categories left - 1). When the discordant pairs fall in separate
    groups of categories (M0<->M1a and M1b<->M1c only), the covariance of any k-1 categories is
    still singular and the statistic is d' V^+ d with the Moore-Penrose inverse, df = rank V.
    For 2x2 both equal McNemar's chi-square without continuity correction.
Up- and down-staging (:func:`up_down_staging`)
    B vs A per patient: up (B higher), down (B lower), same, or changed (not comparable: M1a <-> M1b);
    the exact McNemar test (two-sided binomial test of up vs down at 1/2; statsmodels ``mcnemar``,
    ``exact=True``) on the up and down patients.

Paired correctness (:func:`paired_correctness`)
    Two stagings A and B of the same patients against the reference: patients correct by both, by A
    only, by B only, by neither, and the exact McNemar test of A only vs B only (McNemar Q,
    Psychometrika 1947, in its exact binomial form: two-sided binomial test at 1/2 on the discordant
    patients, as :func:`netpet.stats.paired.mcnemar_exact` and R's ``binom.test``).

Small samples: no pair, one category used by both readings throughout (kappa 0/0), no discordant
pair, a singular Stuart-Maxwell covariance: the value is None with a ``reason``, never an exception.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from netpet.clinical.staging import M_CATEGORIES, N_CATEGORIES, STAGE_GROUPS, StagingError
from netpet.stats.intervals import proportion, z_value

#: the axes staged, with their categories in order
AXES: Dict[str, Tuple[str, ...]] = {"n": N_CATEGORIES, "m": M_CATEGORIES, "stage_group": STAGE_GROUPS}

_M_COMPARTMENTS = {"M0": (0, 0), "M1a": (1, 0), "M1b": (0, 1), "M1c": (1, 1)}
#: disagreement weights of M by compartments (hepatic, extrahepatic) that differ, / 2
M_COMPARTMENT_WEIGHTS = np.array([[sum(abs(x - y) for x, y in zip(_M_COMPARTMENTS[a], _M_COMPARTMENTS[b])) / 2.0
                                   for b in M_CATEGORIES] for a in M_CATEGORIES])


def _pairs(a: Sequence[Any], b: Sequence[Any]) -> Tuple[List[Tuple[Any, Any]], int]:
    if len(a) != len(b):
        raise StagingError(f"Two readings of the same patients need as many categories (got {len(a)} and {len(b)}).")
    kept = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and not (isinstance(x, float) and x != x)
            and not (isinstance(y, float) and y != y)]
    return kept, len(a) - len(kept)


def contingency(a: Sequence[Any], b: Sequence[Any], categories: Sequence[str]) -> Tuple[np.ndarray, int]:
    """The k x k table (rows a, columns b) of paired categories, and the number of pairs left out (a None).

    Raises
    ------
    StagingError
        A category not among ``categories``, or two sequences of different length.
    """
    pairs, excluded = _pairs(a, b)
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)), dtype=int)
    for x, y in pairs:
        for value in (x, y):
            if value not in index:
                raise StagingError(f"Unknown category {value!r}; expected one of {', '.join(categories)}.")
        table[index[x], index[y]] += 1
    return table, excluded


def weighted_kappa(table: Any, weights: Any = "linear", level: float = 0.95) -> Dict[str, Any]:
    """Cohen's kappa of a k x k table, unweighted or weighted, with its asymptotic interval.

    Parameters
    ----------
    table : array (k, k)
        Counts, rows one reading, columns the other, categories in order.
    weights : {"unweighted", "linear", "quadratic"} or array (k, k)
        Disagreement weights (0 on the diagonal); linear |i-j|/(k-1), quadratic (i-j)²/(k-1)².

    Returns
    -------
    dict
        ``n``, ``kappa``, ``se``, ``ci_low``, ``ci_high``, ``observed_agreement``, ``weights``; ``kappa``
        None with ``reason`` when undefined (no pairs; expected disagreement 0: both readings put every
        patient in one and the same category); ``kappa`` 0 without interval, with ``reason``, when one
        reading puts every patient in one category (kappa is 0 by construction there).
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] < 2:
        raise StagingError(f"Kappa needs a square table of at least 2 categories (got shape {table.shape}).")
    k = table.shape[0]
    name = weights if isinstance(weights, str) else "custom"
    if isinstance(weights, str):
        if weights == "unweighted":
            matrix = 1.0 - np.eye(k)
        elif weights == "linear":
            matrix = np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
        elif weights == "quadratic":
            matrix = np.subtract.outer(np.arange(k), np.arange(k)) ** 2 / (k - 1) ** 2
        else:
            raise StagingError(f"Unknown kappa weights {weights!r}; choose unweighted, linear or quadratic.")
    else:
        matrix = np.asarray(weights, dtype=float)
        if matrix.shape != table.shape:
            raise StagingError(f"Kappa weights of shape {matrix.shape} do not fit a table of shape {table.shape}.")
    n = int(table.sum())
    out: Dict[str, Any] = {"n": n, "weights": name, "kappa": None, "se": None, "ci_low": None, "ci_high": None}
    if n == 0:
        out["reason"] = "no patient staged by both readings"
        return out
    p = table / n
    expected = np.outer(p.sum(1), p.sum(0))
    out["observed_agreement"] = float(1.0 - (matrix * p).sum()) if name != "unweighted" else float(np.trace(p))
    if (matrix * expected).sum() <= 1e-15:
        out["reason"] = "both readings put every patient in the same single category: kappa is undefined (0/0)"
        return out
    if min(int((table.sum(1) > 0).sum()), int((table.sum(0) > 0).sum())) == 1:
        # one reading puts every patient in one category: observed and expected agreement are equal whatever the
        # other reading does, so kappa is 0 by construction and its asymptotic variance 0: no interval to give
        out["kappa"] = 0.0
        out["reason"] = "one reading puts every patient in one category: kappa is 0 by construction, no interval"
        return out
    with warnings.catch_warnings():
        # statsmodels takes square roots of the variances under H0 and H1, which are 0 or round below 0 for a table
        # with perfect agreement or empty categories, and divides by them for its z test: the RuntimeWarnings say
        # nothing the checks below do not handle (a variance below 0 gives no interval, with the reason)
        warnings.simplefilter("ignore", RuntimeWarning)
        if name == "unweighted":
            result = cohens_kappa(table)
        else:
            result = cohens_kappa(table, weights=matrix)
    kappa, var = float(result["kappa"]), float(result["var_kappa"])
    out["kappa"] = kappa
    if math.isfinite(var) and var <= 1e-15 and abs(kappa - 1.0) <= 1e-12:
        # perfect agreement: the asymptotic variance is 0 and the Wald interval would be 1.00 to 1.00, a certainty
        # no finite sample gives (10 patients in full agreement are compatible with much lower kappas)
        out["se"] = 0.0
        out["reason"] = "perfect agreement: the asymptotic interval degenerates to 1 to 1, so none is given"
    elif math.isfinite(var) and var >= -1e-15:
        se = math.sqrt(max(var, 0.0))
        half = z_value(level) * se
        out.update(se=se, ci_low=max(-1.0, kappa - half), ci_high=min(1.0, kappa + half))  # kappa lies in [-1, 1]
    else:
        out["reason"] = "no standard error (degenerate table)"
    return out


def marginal_homogeneity(table: Any) -> Dict[str, Dict[str, Any]]:
    """Bowker's symmetry test and the Stuart-Maxwell test of a k x k table (see the module docstring)."""
    from statsmodels.stats.contingency_tables import SquareTable

    table = np.asarray(table, dtype=float)
    discordant = int(table.sum() - np.trace(table))
    none = {"statistic": None, "df": None, "p_value": None}
    if table.sum() == 0:
        reason = "no patient staged by both readings"
        return {"bowker": {**none, "reason": reason}, "stuart_maxwell": {**none, "reason": reason}}
    if discordant == 0:
        reason = "all patients agree: no discordant pair"
        return {"bowker": {**none, "reason": reason}, "stuart_maxwell": {**none, "reason": reason}}
    sym = SquareTable(table, shift_zeros=False).symmetry()
    bowker = {"statistic": float(sym.statistic), "df": int(sym.df), "p_value": float(sym.pvalue)}
    off = table - np.diag(np.diag(table))
    involved = (off.sum(0) + off.sum(1)) > 0  # a category in no discordant pair has d_i = 0 and variance 0
    reduced = table[np.ix_(involved, involved)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            hom = SquareTable(reduced, shift_zeros=False).homogeneity(method="stuart_maxwell")
        stat = float(hom.statistic)
        if not math.isfinite(stat) or stat < 0:
            raise np.linalg.LinAlgError("not finite")
        stuart = {"statistic": stat, "df": int(hom.df), "p_value": float(hom.pvalue),
                  "categories_dropped": int((~involved).sum())}
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, Warning):
        stuart = _stuart_maxwell_pinv(reduced)
        stuart["categories_dropped"] = int((~involved).sum())
    return {"bowker": bowker, "stuart_maxwell": stuart}


def _stuart_maxwell_pinv(table: np.ndarray) -> Dict[str, Any]:
    """Stuart-Maxwell with a generalised inverse: d' V^+ d, df = rank V (the discordant categories fall in
    separate groups with no discordant pair between them, so V of any k-1 categories is singular)."""
    from scipy import stats

    d = table.sum(1) - table.sum(0)
    v = -(table + table.T)
    np.fill_diagonal(v, table.sum(1) + table.sum(0) - 2 * np.diag(table))
    rank = int(np.linalg.matrix_rank(v))
    if rank == 0:
        return {"statistic": None, "df": None, "p_value": None, "reason": "no discordant pair"}
    stat = float(d @ np.linalg.pinv(v) @ d)
    return {"statistic": stat, "df": rank, "p_value": float(stats.chi2.sf(stat, rank)),
            "method": "generalised inverse (the discordant pairs fall in separate groups of categories)"}


def compare_n(a: str, b: str) -> Optional[int]:
    """+1 when b is the higher N, -1 when lower, 0 when equal."""
    return int(np.sign(N_CATEGORIES.index(b) - N_CATEGORIES.index(a)))


def compare_stage_group(a: str, b: str) -> Optional[int]:
    """+1 when b is the higher coarse stage group (N0M0 < III < IV), -1 lower, 0 equal."""
    return int(np.sign(STAGE_GROUPS.index(b) - STAGE_GROUPS.index(a)))


def compare_m(a: str, b: str) -> Optional[int]:
    """+1 when b's metastatic compartments strictly contain a's (e.g. M1a -> M1c, M0 -> M1b), -1 when strictly
    contained, 0 when equal, None when neither (M1a <-> M1b: changed, not up or down)."""
    x, y = _M_COMPARTMENTS[a], _M_COMPARTMENTS[b]
    if x == y:
        return 0
    if all(q >= p for p, q in zip(x, y)):
        return 1
    if all(q <= p for p, q in zip(x, y)):
        return -1
    return None


def up_down_staging(a: Sequence[Any], b: Sequence[Any], compare: Callable[[str, str], Optional[int]]) -> Dict[str, Any]:
    """Counts of patients up-, down-staged, unchanged and changed (incomparable) by B vs A, with the exact McNemar
    test of up vs down (p None with a reason when no patient moves)."""
    from statsmodels.stats.contingency_tables import mcnemar

    pairs, excluded = _pairs(a, b)
    up = down = same = changed = 0
    for x, y in pairs:
        c = compare(x, y)
        if c is None:
            changed += 1
        elif c > 0:
            up += 1
        elif c < 0:
            down += 1
        else:
            same += 1
    out: Dict[str, Any] = {"n": len(pairs), "excluded": excluded, "up": up, "down": down, "same": same,
                           "changed": changed, "test": "exact McNemar (binomial, two-sided)", "p_value": None}
    if up + down == 0:
        out["reason"] = "no patient up- or down-staged"
    else:
        out["p_value"] = float(mcnemar(np.array([[0, up], [down, 0]]), exact=True).pvalue)
    return out


def paired_correctness(reference: Sequence[Any], a: Sequence[Any], b: Sequence[Any]) -> Dict[str, Any]:
    """Correct by both, A only, B only, neither (patients with all three categories known), and the exact McNemar
    p-value of A only vs B only (None with a reason when no patient is correct by one staging only)."""
    from netpet.stats.paired import PairedCounts, mcnemar_exact

    if not len(reference) == len(a) == len(b):
        raise StagingError(f"Three readings of the same patients need as many categories (got {len(reference)}, "
                           f"{len(a)} and {len(b)}).")
    known = [(r, x, y) for r, x, y in zip(reference, a, b) if not any(v is None or (isinstance(v, float) and v != v)
                                                                       for v in (r, x, y))]
    counts = PairedCounts.from_calls(np.array([x == r for r, x, _ in known], dtype=bool),
                                     np.array([y == r for r, _, y in known], dtype=bool))
    out: Dict[str, Any] = {"n": counts.n, "excluded": len(reference) - len(known), "both": counts.both,
                           "a_only": counts.a_only, "b_only": counts.b_only, "neither": counts.neither,
                           "test": "exact McNemar (binomial, two-sided)", "p_value": None}
    if counts.a_only + counts.b_only == 0:
        out["reason"] = "no patient staged correctly by one staging only"
    else:
        out["p_value"] = mcnemar_exact(counts)
    return out


def _categories(frame: pd.DataFrame, column: str) -> List[Any]:
    return [None if (v is None or (isinstance(v, float) and v != v)) else v for v in frame[column]]


def _aligned(a: pd.DataFrame, b: pd.DataFrame) -> Tuple[pd.DataFrame, pd.DataFrame, List[str]]:
    for name, frame in (("first", a), ("second", b)):
        if "patient_id" not in frame.columns:
            raise StagingError(f"The {name} staging table lacks the column patient_id.")
        if frame["patient_id"].duplicated().any():
            raise StagingError(f"The {name} staging table holds a patient twice.")
    common = sorted(set(a["patient_id"].astype(str)) & set(b["patient_id"].astype(str)))
    ai = a.assign(patient_id=a["patient_id"].astype(str)).set_index("patient_id").loc[common].reset_index()
    bi = b.assign(patient_id=b["patient_id"].astype(str)).set_index("patient_id").loc[common].reset_index()
    return ai, bi, common


def staging_accuracy(test: pd.DataFrame, reference: pd.DataFrame, method: str = "wilson",
                     level: float = 0.95) -> Dict[str, Any]:
    """Correct N, M, N and M, and coarse stage group of a test's staging against the reference staging.

    Both tables hold ``patient_id``, ``n``, ``m`` (and ``stage_group``, derived when absent). Patients of
    only one table, or with a None category on either side, are left out of that measure (``excluded``).
    Returns a dict per measure: ``correct``, ``total``, ``excluded`` and the :class:`Measure` as a dict,
    plus the k x k tables (rows reference, columns test).
    """
    from netpet.clinical.staging import stage_group

    t, r, common = _aligned(test, reference)
    for frame in (t, r):
        if "stage_group" not in frame.columns:
            frame["stage_group"] = [stage_group(n, m) for n, m in zip(_categories(frame, "n"), _categories(frame, "m"))]
    out: Dict[str, Any] = {"patients": len(common)}
    for key, label in (("n", "correct_n"), ("m", "correct_m"), ("stage_group", "correct_stage_group")):
        table, excluded = contingency(_categories(r, key), _categories(t, key), AXES[key])
        correct, total = int(np.trace(table)), int(table.sum())
        out[label] = {"correct": correct, "total": total, "excluded": excluded,
                      **proportion(correct, total, method, level, "patients staged by both").to_dict()}
        out[f"table_{key}"] = table.tolist()
    both = [(rn, rm, tn, tm) for rn, rm, tn, tm in zip(_categories(r, "n"), _categories(r, "m"), _categories(t, "n"),
                                                       _categories(t, "m")) if None not in (rn, rm, tn, tm)]
    correct = sum(1 for rn, rm, tn, tm in both if rn == tn and rm == tm)
    out["correct_nm"] = {"correct": correct, "total": len(both), "excluded": len(common) - len(both),
                         **proportion(correct, len(both), method, level, "patients staged by both").to_dict()}
    return out


def staging_agreement(a: pd.DataFrame, b: pd.DataFrame, level: float = 0.95) -> Dict[str, Any]:
    """Agreement of two stagings of the same patients (B vs A) per axis (n, m, stage_group): the table (rows A,
    columns B), kappa unweighted / linear / quadratic (and by compartments for M), Bowker and Stuart-Maxwell, and
    up-/down-staging with the exact McNemar test."""
    from netpet.clinical.staging import stage_group

    ai, bi, common = _aligned(a, b)
    for frame in (ai, bi):
        if "stage_group" not in frame.columns:
            frame["stage_group"] = [stage_group(n, m) for n, m in zip(_categories(frame, "n"), _categories(frame, "m"))]
    compare = {"n": compare_n, "m": compare_m, "stage_group": compare_stage_group}
    out: Dict[str, Any] = {"patients": len(common)}
    for key, categories in AXES.items():
        x, y = _categories(ai, key), _categories(bi, key)
        table, excluded = contingency(x, y, categories)
        kappas = {w: weighted_kappa(table, w, level) for w in ("unweighted", "linear", "quadratic")}
        if key == "m":
            kappas["compartments"] = weighted_kappa(table, M_COMPARTMENT_WEIGHTS, level)
            kappas["compartments"]["weights"] = "compartments"
        out[key] = {"categories": list(categories), "table": table.tolist(), "excluded": excluded, "kappa": kappas,
                    **marginal_homogeneity(table), "shift": up_down_staging(x, y, compare[key])}
    return out


__all__: Iterable[str] = ("AXES", "M_COMPARTMENT_WEIGHTS", "contingency", "weighted_kappa", "marginal_homogeneity",
                          "compare_n", "compare_m", "compare_stage_group", "up_down_staging", "paired_correctness",
                          "staging_accuracy", "staging_agreement")
