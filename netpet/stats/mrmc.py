"""Multi-reader multi-case (MRMC) ROC analysis of the readers' confidence scores.

Every reader scores every case under every test (a *fully crossed* design: each reader reads each
case with each modality/tracer). The figure of merit is the empirical AUC of each reader under each
test: the Wilcoxon-Mann-Whitney probability that an abnormal case scores higher than a normal one,
ties counting one half (the area under the trapezoidal ROC curve; Hanley JA, McNeil BJ, Radiology
1982;143:29-36). Higher scores mean "more likely abnormal" (the 5-point confidence: 1 definitely
benign ... 5 definitely malignant).

Obuchowski-Rockette (OR) analysis
---------------------------------
Obuchowski NA, Rockette HE, Commun Stat Simul Comput 1995;24:285-308: the reader x test AUCs follow a
two-way (test x reader) ANOVA model whose errors are correlated because the same cases are read.
The error covariance is described by four numbers, estimated here by the jackknife over cases
(Efron's jackknife covariance, ``(K-1)/K`` times the sum of cross-products of the leave-one-case-out
AUCs, as RJafroc's ``StSignificanceTesting(..., FOM = "Wilcoxon", method = "OR")`` and MRMCaov's
``mrmc(..., cov = jackknife)`` compute it):

* ``Var``  : the variance of one reader's AUC under one test (mean over reader x test);
* ``Cov1`` : the covariance of the same reader's AUCs under two tests;
* ``Cov2`` : of two readers' AUCs under the same test;
* ``Cov3`` : of two readers' AUCs under two tests.

With ``MS(T)``, ``MS(R)``, ``MS(TR)`` the mean squares of the AUC table (t tests, r readers), the
reader and test x reader variance components are (Hillis SL, Stat Med 2007;26:596-619)
``var(TR) = MS(TR) - Var + Cov1 + max(Cov2 - Cov3, 0)`` and
``var(R) = (MS(R) - var(TR) - Var - (t-1) Cov1 + Cov2 + (t-1) Cov3) / t``.

Random readers, random cases (the generalisation to both new readers and new patients): Hillis'
statistic ``F = MS(T) / (MS(TR) + r max(Cov2 - Cov3, 0))`` with ``t - 1`` and
``ddf = (MS(TR) + r max(Cov2 - Cov3, 0))^2 / (MS(TR)^2 / ((t-1)(r-1)))`` degrees of freedom
(Hillis 2007; Hillis SL, Berbaum KS, Metz CE, Acad Radiol 2008;15:647-661); the interval of the
difference of two tests' reader-averaged AUCs is ``d +- t(ddf) sqrt(2/r (MS(TR) + r max(Cov2 - Cov3,
0)))``; the interval of one test's AUC uses that test's data only: ``MS(R)_i + r max(Cov2_i, 0)``
with its own Satterthwaite degrees of freedom (Hillis 2007; Hillis et al. 2008).

Fixed readers, random cases (the conclusion holds for these readers only): chi-square
``(t-1) MS(T) / (Var - Cov1 + (r-1) max(Cov2 - Cov3, 0))`` with ``t - 1`` degrees of freedom, normal
intervals; per-reader differences from that reader's variance and ``Cov1``.
Random readers, fixed cases: ``F = MS(T) / MS(TR)`` with ``t - 1`` and ``(t-1)(r-1)`` degrees of
freedom (a paired t-test for two tests); one test's interval from ``MS(R)_i`` with ``r - 1``.

Dorfman-Berbaum-Metz (DBM) analysis
-----------------------------------
Dorfman DD, Berbaum KS, Metz CE, Invest Radiol 1992;27:723-731: an ANOVA of the jackknife
pseudovalues ``Y_ijk = K AUC_ij - (K-1) AUC_ij(-k)``, centred so that their mean over cases is the
AUC (as RJafroc does). With Hillis' denominator ``MS(TR) + max(MS(TC) - MS(TRC), 0)`` and degrees of
freedom ``(...)^2 / (MS(TR)^2 / ((t-1)(r-1)))`` (Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS,
Stat Med 2005;24:1579-1607; Hillis 2007) DBM gives the same F, degrees of freedom, p value and
intervals as OR with the jackknife: the pseudovalues' MS(T), MS(R), MS(TR) are K times the OR ones and
``MS(TC) - MS(TRC) = K r (Cov2 - Cov3)``. The
``dbm`` method reports the pseudovalue mean squares besides; its fixed-reader test is DBM's
``F = MS(T) / MS(TC)`` with ``t - 1`` and ``(t-1)(K-1)`` degrees of freedom.

Small studies
-------------
The random-reader degrees of freedom grow with the number of readers; with few readers ``ddf`` is
small and the intervals wide, and the reader variance components are estimated from few values
(Hillis 2007; Obuchowski NA, AJR 2004;182:867-869 on the number of readers a reader study needs).
A result with fewer than :data:`FEW_READERS` readers, fewer than :data:`FEW_CASES` normal or
abnormal cases, or ``ddf`` below :data:`FEW_DDF` carries a warning saying so. Lesions of one patient
are not independent cases; at lesion level the jackknife treats them as such (Obuchowski NA,
Biometrics 1997;53:567-578 on clustered ROC data), and the result says so.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

from netpet.errors import printable
from netpet.stats.intervals import StatsError, z_value
from netpet.stats.roc import placements

log = logging.getLogger(__name__)

METHODS = ("jackknife", "dbm")
COLUMNS = ("reader", "test", "case", "truth", "score")
#: fewer readers than this: warning (random-reader inference rests on the spread of few reader AUCs)
FEW_READERS = 4
#: fewer normal or abnormal cases than this: warning (the jackknife covariances are unstable)
FEW_CASES = 10
#: random-reader denominator degrees of freedom below this: warning (wide t quantiles)
FEW_DDF = 10.0
#: a mean square below this is the floating-point rounding of an exact 0 (AUC rounding errors are ~1e-16, their
#: squares ~1e-32; a true mean square of AUCs, in steps of 1/(2mn), is far above it for any study size)
ROUNDING = 1e-20

REFERENCES = (
    "Obuchowski NA, Rockette HE. Hypothesis testing of diagnostic accuracy for multiple readers and multiple tests: "
    "an ANOVA approach with dependent observations. Commun Stat Simul Comput 1995;24:285-308.",
    "Hillis SL. A comparison of denominator degrees of freedom methods for multiple observer ROC analysis. "
    "Stat Med 2007;26:596-619.",
    "Hillis SL, Berbaum KS, Metz CE. Recent developments in the Dorfman-Berbaum-Metz procedure for multireader ROC "
    "study analysis. Acad Radiol 2008;15:647-661.",
    "Dorfman DD, Berbaum KS, Metz CE. Receiver operating characteristic rating analysis: generalization to the "
    "population of readers and patients with the jackknife method. Invest Radiol 1992;27:723-731.",
)


# -- input ------------------------------------------------------------------------------------------

def check_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The tidy frame checked and cleaned: one row per (reader, test, case), fully crossed.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``reader``, ``test``, ``case`` (identifiers, any type), ``truth`` (1 abnormal, 0
        normal; the same for a case in every row) and ``score`` (a finite number, higher = more
        likely abnormal; for the readers' confidence 1..5).

    Returns
    -------
    pandas.DataFrame
        The five columns; identifiers as text, truth as int, score as float.

    Raises
    ------
    StatsError
        A missing column, a score or truth that is no number, a case with two truths, a repeated
        (reader, test, case), a design that is not fully crossed, or no normal or no abnormal case.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise StatsError(f"The MRMC data lack the column(s) {', '.join(missing)}; give reader, test, case, truth and "
                         "score for every reading.")
    out = frame[list(COLUMNS)].copy()
    if out.empty:
        raise StatsError("The MRMC data hold no reading; give one row per reader, test and case.")
    for column in ("reader", "test", "case"):
        if out[column].isna().any():
            row = int(np.flatnonzero(out[column].isna().to_numpy())[0])
            raise StatsError(f"Row {row + 1} of the MRMC data has no {column}; fill it in.")
        out[column] = out[column].astype(str)
    score = pd.to_numeric(out["score"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(score)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise StatsError(printable(f"Row {row + 1} of the MRMC data (reader {out['reader'].iloc[row]}, test "
                                   f"{out['test'].iloc[row]}, case {out['case'].iloc[row]}) has the score "
                                   f"{frame['score'].iloc[row]!r}, which is no finite number; give the reader's "
                                   "score (confidence 1-5)."))
    out["score"] = score
    truth = pd.to_numeric(out["truth"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(truth, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise StatsError(printable(f"Row {row + 1} of the MRMC data (case {out['case'].iloc[row]}) has the truth "
                                   f"{frame['truth'].iloc[row]!r}; truth is 1 (abnormal) or 0 (normal)."))
    out["truth"] = truth.astype(int)
    per_case = out.groupby("case")["truth"].nunique()
    if (per_case > 1).any():
        case = per_case.index[per_case > 1][0]
        raise StatsError(printable(f"Case {case} has truth 1 in some rows and 0 in others; a case has one truth "
                                   "(from the reference standard) for every reader and test."))
    repeated = out.duplicated(["reader", "test", "case"], keep=False)
    if repeated.any():
        row = out[repeated].iloc[0]
        raise StatsError(printable(f"Reader {row['reader']} scored case {row['case']} under test {row['test']} more "
                                   "than once; keep one score per reader, test and case."))
    readers, tests, cases = (sorted(out[c].unique(), key=_natural) for c in ("reader", "test", "case"))
    expected = len(readers) * len(tests) * len(cases)
    if len(out) != expected:
        present = set(zip(out["reader"], out["test"], out["case"]))
        gap = next(k for k in itertools.product(readers, tests, cases) if k not in present)
        raise StatsError(printable(
            f"The MRMC design is not fully crossed: {expected - len(out)} of {expected} reader x test x case "
            f"readings are missing (e.g. reader {gap[0]}, test {gap[1]}, case {gap[2]}); every reader must score "
            "every case under every test (mrmc_from_units keeps only such cases)."))
    labels = out.drop_duplicates("case")["truth"]
    if labels.min() == labels.max():
        kind = "abnormal (truth 1)" if labels.min() == 0 else "normal (truth 0)"
        raise StatsError(f"The MRMC data have no {kind} case; an AUC needs both normal and abnormal cases.")
    return out


def _natural(value: str) -> Tuple[Any, ...]:
    """Sort key: numbers by value, then text (reader 2 before reader 10)."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


# -- figure of merit and jackknife ------------------------------------------------------------------

def _cube(frame: pd.DataFrame) -> Tuple[np.ndarray, np.ndarray, List[str], List[str], List[str]]:
    """scores[t, r, k] and truth[k] of the checked frame (cases sorted: normal first, then abnormal)."""
    tests = sorted(frame["test"].unique(), key=_natural)
    readers = sorted(frame["reader"].unique(), key=_natural)
    truth_of = frame.drop_duplicates("case").set_index("case")["truth"]
    cases = sorted(truth_of.index, key=lambda c: (truth_of[c], _natural(c)))
    pivot = frame.set_index(["test", "reader", "case"])["score"]
    index = pd.MultiIndex.from_product([tests, readers, cases])
    scores = pivot.reindex(index).to_numpy(dtype=float).reshape(len(tests), len(readers), len(cases))
    return scores, truth_of.reindex(cases).to_numpy(dtype=int), tests, readers, cases


def auc_and_jackknife(scores: np.ndarray, truth: np.ndarray) -> Tuple[float, np.ndarray]:
    """Empirical AUC of one reader under one test and its K leave-one-case-out values.

    Removing abnormal case a leaves ``(S - n V10_a) / ((m-1) n)``, removing normal case b leaves
    ``(S - m V01_b) / (m (n-1))``, with ``S = m n AUC`` and the placement values of DeLong et al.
    (:func:`netpet.stats.roc.placements`); exact for the Wilcoxon statistic with ties counting 1/2.

    Parameters
    ----------
    scores : numpy.ndarray
        The K scores (dimensionless).
    truth : numpy.ndarray
        The K truths (1 abnormal, 0 normal).

    Returns
    -------
    (float, numpy.ndarray)
        The AUC and the K jackknife AUCs (NaN where a removal leaves no abnormal or no normal case).
    """
    truth = np.asarray(truth, dtype=bool)
    p = placements(scores, truth)
    m, n = int(truth.sum()), int((~truth).sum())
    total = p.auc * m * n
    out = np.empty(len(truth))
    with np.errstate(divide="ignore", invalid="ignore"):
        out[truth] = (total - n * p.cases) / ((m - 1) * n) if m > 1 else np.nan
        out[~truth] = (total - m * p.controls) / (m * (n - 1)) if n > 1 else np.nan
    return p.auc, out


def _foms(scores: np.ndarray, truth: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    t, r, k = scores.shape
    auc, jack = np.empty((t, r)), np.empty((t, r, k))
    for i in range(t):
        for j in range(r):
            auc[i, j], jack[i, j] = auc_and_jackknife(scores[i, j], truth)
    return auc, jack


def _jackknife_covariance(jack: np.ndarray) -> np.ndarray:
    """Covariance matrix (t*r x t*r, test-major) of the AUCs: (K-1)/K sum of jackknife cross-products."""
    t, r, k = jack.shape
    flat = jack.reshape(t * r, k)
    centred = flat - flat.mean(axis=1, keepdims=True)
    return centred @ centred.T * (k - 1) / k


def _or_components(cov: np.ndarray, t: int, r: int) -> Dict[str, float]:
    """Var, Cov1, Cov2, Cov3: means of the covariance entries by (same test?, same reader?)."""
    test = np.repeat(np.arange(t), r)
    reader = np.tile(np.arange(r), t)
    same_t, same_r = test[:, None] == test[None, :], reader[:, None] == reader[None, :]

    def mean(mask: np.ndarray) -> float:
        return float(cov[mask].mean()) if mask.any() else math.nan

    return {"var": mean(same_t & same_r), "cov1": mean(~same_t & same_r), "cov2": mean(same_t & ~same_r),
            "cov3": mean(~same_t & ~same_r)}


def _mean_squares(auc: np.ndarray) -> Dict[str, float]:
    t, r = auc.shape
    grand, by_test, by_reader = auc.mean(), auc.mean(axis=1), auc.mean(axis=0)
    ms_t = r * float(((by_test - grand) ** 2).sum()) / (t - 1) if t > 1 else math.nan
    ms_r = t * float(((by_reader - grand) ** 2).sum()) / (r - 1) if r > 1 else math.nan
    inter = auc - by_test[:, None] - by_reader[None, :] + grand
    ms_tr = float((inter ** 2).sum()) / ((t - 1) * (r - 1)) if t > 1 and r > 1 else math.nan
    return {"ms_t": _exact_zero(ms_t), "ms_r": _exact_zero(ms_r), "ms_tr": _exact_zero(ms_tr)}


def _exact_zero(value: float) -> float:
    """0 for a mean square that is only rounding (see :data:`ROUNDING`)."""
    return 0.0 if abs(value) < ROUNDING else value


def _dbm_mean_squares(auc: np.ndarray, jack: np.ndarray) -> Dict[str, float]:
    """Mean squares of the centred pseudovalues (Dorfman et al. 1992; centring as RJafroc)."""
    t, r, k = jack.shape
    y = k * auc[:, :, None] - (k - 1) * jack
    y = y + (auc - y.mean(axis=2))[:, :, None]
    g = y.mean()
    yt, yr, yc = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=(0, 1))
    ytr, ytc, yrc = y.mean(axis=2), y.mean(axis=1), y.mean(axis=0)
    out = {
        "ms_t": r * k * float(((yt - g) ** 2).sum()) / (t - 1) if t > 1 else math.nan,
        "ms_r": t * k * float(((yr - g) ** 2).sum()) / (r - 1) if r > 1 else math.nan,
        "ms_c": t * r * float(((yc - g) ** 2).sum()) / (k - 1),
        "ms_tr": (k * float(((ytr - yt[:, None] - yr[None, :] + g) ** 2).sum()) / ((t - 1) * (r - 1))
                  if t > 1 and r > 1 else math.nan),
        "ms_tc": (r * float(((ytc - yt[:, None] - yc[None, :] + g) ** 2).sum()) / ((t - 1) * (k - 1))
                  if t > 1 else math.nan),
        "ms_rc": (t * float(((yrc - yr[:, None] - yc[None, :] + g) ** 2).sum()) / ((r - 1) * (k - 1))
                  if r > 1 else math.nan),
    }
    if t > 1 and r > 1:
        resid = (y - ytr[:, :, None] - ytc[:, None, :] - yrc[None, :, :] + yt[:, None, None] + yr[None, :, None]
                 + yc[None, None, :] - g)
        out["ms_trc"] = float((resid ** 2).sum()) / ((t - 1) * (r - 1) * (k - 1))
    else:
        out["ms_trc"] = math.nan
    return {key: _exact_zero(value) for key, value in out.items()}


# -- helpers for the inference ----------------------------------------------------------------------

def _t_row(estimate: float, se: float, df: float, level: float) -> Dict[str, Optional[float]]:
    """estimate, SE, df, t, two-sided p and the t interval (normal when df is infinite)."""
    if not (math.isfinite(se) and se > 0 and df > 0):
        return {"estimate": estimate, "se": _num(se), "df": _num(df), "statistic": None, "p": None,
                "ci_low": None, "ci_high": None}
    if math.isinf(df):
        q, p = z_value(level), 2.0 * float(stats.norm.sf(abs(estimate / se)))
    else:
        q, p = float(stats.t.isf((1.0 - level) / 2.0, df)), 2.0 * float(stats.t.sf(abs(estimate / se), df))
    return {"estimate": estimate, "se": se, "df": _num(df), "statistic": estimate / se, "p": p,
            "ci_low": estimate - q * se, "ci_high": estimate + q * se}


def _f_sf(f: float, ndf: float, ddf: float) -> float:
    """Upper tail of F(ndf, ddf); with infinite ddf that of chi-square(ndf) / ndf."""
    if math.isinf(ddf):
        return float(stats.chi2.sf(f * ndf, ndf))
    return float(stats.f.sf(f, ndf, ddf))


def _num(value: float) -> Optional[float]:
    """JSON-safe number: None for NaN, the string-free float otherwise (infinity stays None too)."""
    return float(value) if value is not None and math.isfinite(value) else None


def _pairs(tests: Sequence[str]) -> List[Tuple[int, int]]:
    return list(itertools.combinations(range(len(tests)), 2))


def _satterthwaite(numerator: float, ms: float, df: float) -> float:
    """(numerator)^2 / (ms^2 / df): Hillis' ddf; infinite when ms is 0 (no between-reader spread)."""
    if ms <= 0:
        return math.inf
    return numerator ** 2 / (ms ** 2 / df)


# -- the analysis -----------------------------------------------------------------------------------

def or_analysis(frame: pd.DataFrame, method: str = "jackknife", level: float = 0.95,
                lesion_level: bool = False) -> Dict[str, Any]:
    """Obuchowski-Rockette (jackknife covariances) or DBM analysis of a fully crossed MRMC study.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy frame: reader, test, case, truth (1/0), score (see :func:`check_frame`).
    method : {"jackknife", "dbm"}
        ``jackknife``: OR with jackknife covariances; ``dbm``: DBM pseudovalue ANOVA with Hillis'
        denominator (same F, ddf, p and intervals; reports the pseudovalue mean squares too and
        DBM's fixed-reader F test).
    level : float
        Confidence level of the intervals (default 0.95); significance level ``1 - level``.
    lesion_level : bool
        The cases are lesions (several per patient): the result warns that the jackknife treats
        them as independent.

    Returns
    -------
    dict
        ``design`` (tests, readers, counts), ``auc`` (per test x reader), ``test_auc`` (per test,
        reader-averaged), ``variance_components`` (Var, Cov1, Cov2, Cov3, var_r, var_tr, the mean
        squares and the correlations r1-r3 = Cov/Var), ``per_test`` and ``per_reader`` quantities,
        ``rrrc``, ``frrc``, ``rrfc`` analyses (each: the overall test, pairwise ``differences`` and
        per-test ``tests`` intervals; ``frrc`` adds ``reader_differences``), ``dbm`` mean squares
        (method ``dbm``), ``warnings`` and ``references``. AUCs and variances are dimensionless.

    Raises
    ------
    StatsError
        An unknown method, a level outside (0, 1), or data :func:`check_frame` refuses.
    """
    if method not in METHODS:
        raise StatsError(f"Unknown MRMC method {method!r}; choose jackknife (Obuchowski-Rockette) or dbm.")
    z_value(level)  # checks the level
    data = check_frame(frame)
    scores, truth, tests, readers, cases = _cube(data)
    t, r, k = scores.shape
    m, n = int(truth.sum()), int(k - truth.sum())
    auc, jack = _foms(scores, truth)
    cov = _jackknife_covariance(jack) if m > 1 and n > 1 else np.full((t * r, t * r), np.nan)
    comp = _or_components(cov, t, r)
    ms = _mean_squares(auc)
    var, cov1, cov2, cov3 = comp["var"], comp["cov1"], comp["cov2"], comp["cov3"]
    var_tr = ms["ms_tr"] - var + cov1 + max(cov2 - cov3, 0.0) if t > 1 and r > 1 else math.nan
    var_r = ((ms["ms_r"] - (var_tr if t > 1 else 0.0) - var - (t - 1) * cov1 + cov2 + (t - 1) * cov3) / t
             if r > 1 else math.nan)
    test_auc = auc.mean(axis=1)

    per_test = []
    for i in range(t):
        c = _jackknife_covariance(jack[i:i + 1]) if m > 1 and n > 1 else np.full((r, r), np.nan)
        off = ~np.eye(r, dtype=bool)
        per_test.append({"test": tests[i], "ms_r": (float(((auc[i] - test_auc[i]) ** 2).sum()) / (r - 1)
                                                    if r > 1 else math.nan),
                         "var": float(np.diag(c).mean()), "cov2": float(c[off].mean()) if r > 1 else math.nan})
    per_reader = []
    for j in range(r):
        c = _jackknife_covariance(jack[:, j:j + 1]) if m > 1 and n > 1 else np.full((t, t), np.nan)
        off = ~np.eye(t, dtype=bool)
        per_reader.append({"reader": readers[j], "ms_t": (float(((auc[:, j] - auc[:, j].mean()) ** 2).sum()) / (t - 1)
                                                          if t > 1 else math.nan),
                           "var": float(np.diag(c).mean()), "cov1": float(c[off].mean()) if t > 1 else math.nan})

    result: Dict[str, Any] = {
        "method": method,
        "figure_of_merit": "empirical AUC (Wilcoxon-Mann-Whitney, ties 1/2)",
        "covariance": "jackknife over cases",
        "level": level,
        "design": {"tests": tests, "readers": readers, "cases": k, "abnormal": m, "normal": n},
        "auc": [{"test": tests[i], "reader": readers[j], "auc": float(auc[i, j])} for i in range(t) for j in range(r)],
        "test_auc": [{"test": tests[i], "auc": float(test_auc[i])} for i in range(t)],
        "variance_components": {
            **{key: _num(value) for key, value in comp.items()}, "var_r": _num(var_r), "var_tr": _num(var_tr),
            **{key: _num(value) for key, value in ms.items()},
            **{f"r{x}": _num(comp[f"cov{x}"] / var) if var and math.isfinite(var) and var > 0 else None
               for x in (1, 2, 3)}},
        "per_test": [{key: (_num(v) if key != "test" else v) for key, v in row.items()} for row in per_test],
        "per_reader": [{key: (_num(v) if key != "reader" else v) for key, v in row.items()} for row in per_reader],
        "warnings": [],
        "references": list(REFERENCES),
    }
    result["rrrc"] = _rrrc(auc, ms, comp, per_test, tests, level)
    result["frrc"] = _frrc(auc, comp, per_test, per_reader, tests, readers, level, k)
    result["rrfc"] = _rrfc(auc, ms, per_test, tests, level)
    if method == "dbm":
        dbm = _dbm_mean_squares(auc, jack)
        result["dbm"] = {key: _num(value) for key, value in dbm.items()}
        _dbm_tests(result, dbm, t, r, k, tests, auc, level)
    result["warnings"] = _warnings(result, t, r, m, n, lesion_level)
    for warning in result["warnings"]:
        log.info("MRMC: %s", warning)
    result["alpha"] = 1.0 - level
    return result


def _rrrc(auc, ms, comp, per_test, tests, level) -> Dict[str, Any]:
    t, r = auc.shape
    out: Dict[str, Any] = {"analysis": "random readers, random cases (Hillis 2007, 2008)"}
    if t > 1 and r > 1:
        den = ms["ms_tr"] + r * max(comp["cov2"] - comp["cov3"], 0.0)
        ddf = _satterthwaite(den, ms["ms_tr"], (t - 1) * (r - 1))
        f = ms["ms_t"] / den if den > 0 else math.nan
        p = float(_f_sf(f, t - 1, ddf)) if math.isfinite(f) else math.nan
        out.update({"f": _num(f), "ndf": t - 1, "ddf": _num(ddf), "ddf_infinite": math.isinf(ddf), "p": _num(p),
                    "ms_t": _num(ms["ms_t"]), "denominator": _num(den)})
        if math.isinf(ddf):
            out["note"] = ("MS(TR) = 0 (every reader's difference between the tests is the same): infinite denominator "
                           "degrees of freedom, the F test is a chi-square test")
        se = math.sqrt(2.0 / r * den) if den >= 0 else math.nan
        out["differences"] = [{"test_a": tests[a], "test_b": tests[b],
                               **_t_row(float(auc[a].mean() - auc[b].mean()), se, ddf, level)}
                              for a, b in _pairs(tests)]
    else:
        out["reason"] = ("a random-reader test needs at least two tests and two readers" if r < 2 else
                         "one test: no comparison; per-test intervals only")
        out["differences"] = []
    rows = []
    for i, row in enumerate(per_test):
        if r < 2:
            rows.append({"test": tests[i], "estimate": float(auc[i].mean()), "se": None, "df": None,
                         "ci_low": None, "ci_high": None})
            continue
        den_i = row["ms_r"] + r * max(row["cov2"], 0.0)
        df_i = _satterthwaite(den_i, row["ms_r"], r - 1)
        cell = _t_row(float(auc[i].mean()), math.sqrt(den_i / r), df_i, level)
        rows.append({"test": tests[i], **{key: cell[key] for key in ("estimate", "se", "df", "ci_low", "ci_high")}})
    out["tests"] = rows
    return out


def _frrc(auc, comp, per_test, per_reader, tests, readers, level, k) -> Dict[str, Any]:
    t, r = auc.shape
    out: Dict[str, Any] = {"analysis": "fixed readers, random cases"}
    cov2_cov3 = max(comp["cov2"] - comp["cov3"], 0.0) if r > 1 else 0.0
    if t > 1:
        err = comp["var"] - comp["cov1"] + (r - 1) * cov2_cov3
        ms_t = r * float(((auc.mean(axis=1) - auc.mean()) ** 2).sum()) / (t - 1)
        chisq = (t - 1) * ms_t / err if err > 0 else math.nan
        out.update({"chisq": _num(chisq), "df": t - 1,
                    "p": _num(float(stats.chi2.sf(chisq, t - 1))) if math.isfinite(chisq) else None,
                    "ms_t": _num(ms_t), "denominator": _num(err)})
        se = math.sqrt(2.0 / r * err) if err >= 0 else math.nan
        out["differences"] = [{"test_a": tests[a], "test_b": tests[b],
                               **_t_row(float(auc[a].mean() - auc[b].mean()), se, math.inf, level)}
                              for a, b in _pairs(tests)]
        out["reader_differences"] = []
        for j, row in enumerate(per_reader):
            se_j = math.sqrt(2.0 * (row["var"] - row["cov1"])) if row["var"] >= row["cov1"] else math.nan
            out["reader_differences"].extend(
                {"reader": readers[j], "test_a": tests[a], "test_b": tests[b],
                 **_t_row(float(auc[a, j] - auc[b, j]), se_j, math.inf, level)} for a, b in _pairs(tests))
    else:
        out.update({"reason": "one test: no comparison; per-test intervals only", "differences": [],
                    "reader_differences": []})
    rows = []
    for i, row in enumerate(per_test):
        v = row["var"] + (r - 1) * (max(row["cov2"], 0.0) if r > 1 else 0.0)
        cell = _t_row(float(auc[i].mean()), math.sqrt(v / r) if v >= 0 else math.nan, math.inf, level)
        rows.append({"test": tests[i], **{key: cell[key] for key in ("estimate", "se", "df", "ci_low", "ci_high")}})
    out["tests"] = rows
    return out


def _rrfc(auc, ms, per_test, tests, level) -> Dict[str, Any]:
    t, r = auc.shape
    out: Dict[str, Any] = {"analysis": "random readers, fixed cases"}
    if t > 1 and r > 1:
        ddf = (t - 1) * (r - 1)
        f = ms["ms_t"] / ms["ms_tr"] if ms["ms_tr"] > 0 else math.nan
        out.update({"f": _num(f), "ndf": t - 1, "ddf": ddf,
                    "p": _num(float(_f_sf(f, t - 1, ddf))) if math.isfinite(f) else None,
                    "ms_t": _num(ms["ms_t"]), "denominator": _num(ms["ms_tr"])})
        se = math.sqrt(2.0 * ms["ms_tr"] / r)
        out["differences"] = [{"test_a": tests[a], "test_b": tests[b],
                               **_t_row(float(auc[a].mean() - auc[b].mean()), se, ddf, level)}
                              for a, b in _pairs(tests)]
        if not math.isfinite(f):
            out["reason"] = ("MS(TR) = 0: every reader's difference between the tests is the same, so the fixed-case F "
                             "test is undefined")
    else:
        out.update({"reason": "needs at least two tests and two readers", "differences": []})
    rows = []
    for i, row in enumerate(per_test):
        if r < 2:
            rows.append({"test": tests[i], "estimate": float(auc[i].mean()), "se": None, "df": None,
                         "ci_low": None, "ci_high": None})
            continue
        cell = _t_row(float(auc[i].mean()), math.sqrt(row["ms_r"] / r), r - 1, level)
        rows.append({"test": tests[i], **{key: cell[key] for key in ("estimate", "se", "df", "ci_low", "ci_high")}})
    out["tests"] = rows
    return out


def _dbm_tests(result: Dict[str, Any], dbm: Dict[str, float], t: int, r: int, k: int, tests, auc, level) -> None:
    """DBM's own statistics: the Hillis RRRC test from the pseudovalue mean squares (equal to the OR one) and
    DBM's fixed-reader F test MS(T) / MS(TC)."""
    if t > 1 and r > 1:
        den = dbm["ms_tr"] + max(dbm["ms_tc"] - dbm["ms_trc"], 0.0)
        ddf = _satterthwaite(den, dbm["ms_tr"], (t - 1) * (r - 1))
        f = dbm["ms_t"] / den if den > 0 else math.nan
        result["rrrc"].update({"f": _num(f), "ddf": _num(ddf), "ddf_infinite": math.isinf(ddf),
                               "ms_t": _num(dbm["ms_t"]), "denominator": _num(den),
                               "p": _num(float(_f_sf(f, t - 1, ddf))) if math.isfinite(f) else None})
    if t > 1:
        ddf = (t - 1) * (k - 1)
        f = dbm["ms_t"] / dbm["ms_tc"] if dbm["ms_tc"] > 0 else math.nan
        se = math.sqrt(2.0 * dbm["ms_tc"] / (r * k))
        result["frrc"].update({
            "analysis": "fixed readers, random cases (DBM F test)", "chisq": None, "f": _num(f), "ndf": t - 1,
            "ddf": ddf, "df": None, "p": _num(float(_f_sf(f, t - 1, ddf))) if math.isfinite(f) else None,
            "ms_t": _num(dbm["ms_t"]), "denominator": _num(dbm["ms_tc"]),
            "differences": [{"test_a": tests[a], "test_b": tests[b],
                             **_t_row(float(auc[a].mean() - auc[b].mean()), se, ddf, level)}
                            for a, b in _pairs(tests)]})


def _warnings(result: Dict[str, Any], t: int, r: int, m: int, n: int, lesion_level: bool) -> List[str]:
    out = []
    if r < 2:
        out.append(f"One reader only: no random-reader analysis; the fixed-reader intervals hold for this reader "
                   f"alone (Obuchowski-Rockette needs readers to estimate the reader variance).")
    elif r < FEW_READERS:
        out.append(f"Only {r} readers: the random-reader analysis estimates the reader variance from {r} values and "
                   f"its denominator degrees of freedom are usually small, so its intervals are wide and unstable "
                   f"(Hillis 2007; "
                   f"Obuchowski, AJR 2004;182:867-869); read the fixed-reader results as conclusions for these "
                   f"readers only.")
    if min(m, n) < FEW_CASES:
        out.append(f"Few cases ({m} abnormal, {n} normal): the jackknife covariances of the AUCs rest on few cases "
                   f"and can be far off; the p values and intervals are rough.")
    ddf = result["rrrc"].get("ddf")
    if ddf is not None and ddf < FEW_DDF and r >= 2 and t > 1:
        out.append(f"The random-reader test has only {ddf:.1f} denominator degrees of freedom (Hillis 2007): its "
                   f"t and F quantiles are large and the intervals wide.")
    beyond = [row["test"] for name in ("rrrc", "frrc", "rrfc") for row in result[name]["tests"]
              if row["ci_low"] is not None and (row["ci_low"] < 0.0 or row["ci_high"] > 1.0)]
    if beyond:
        out.append(f"An AUC interval reaches beyond [0, 1] ({', '.join(dict.fromkeys(beyond))}): it is shown "
                   "unclipped, as RJafroc and MRMCaov report it; the data cannot pin that AUC down.")
    if t < 2:
        out.append("One test only: no comparison of tests; only each test's AUC interval.")
    if lesion_level:
        out.append("Lesion level: lesions of one patient are correlated, but the jackknife treats every lesion as an "
                   "independent case, so the intervals are too narrow where patients have several lesions "
                   "(Obuchowski, Biometrics 1997;53:567-578); the patient level is the unit these methods assume.")
    return out


# -- tables -----------------------------------------------------------------------------------------

def result_rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The result as one long table (mrmc.csv): analysis, quantity, test(s), reader, estimate, se, df,
    statistic, p, ci_low, ci_high."""
    rows: List[Dict[str, Any]] = []
    blank = {"analysis": "", "quantity": "", "test": "", "test_b": "", "reader": "", "estimate": None, "se": None,
             "df": None, "statistic": None, "p": None, "ci_low": None, "ci_high": None}

    def add(**values):
        rows.append({**blank, **values})

    for row in result["auc"]:
        add(analysis="figure of merit", quantity="auc", test=row["test"], reader=row["reader"], estimate=row["auc"])
    for key, value in result["variance_components"].items():
        add(analysis="variance components", quantity=key, estimate=value)
    for key, value in result.get("dbm", {}).items():
        add(analysis="dbm mean squares", quantity=key, estimate=value)
    for name in ("rrrc", "frrc", "rrfc"):
        part = result[name]
        stat = part.get("f") if part.get("f") is not None else part.get("chisq")
        if stat is not None:
            add(analysis=name, quantity="F" if part.get("f") is not None else "chi-square", statistic=stat,
                df=part.get("ddf", part.get("df")), p=part.get("p"), estimate=part.get("denominator"))
        for d in part.get("differences", []):
            add(analysis=name, quantity="difference", test=d["test_a"], test_b=d["test_b"],
                **{key: d[key] for key in ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high")})
        for d in part.get("reader_differences", []):
            add(analysis=name, quantity="reader difference", test=d["test_a"], test_b=d["test_b"], reader=d["reader"],
                **{key: d[key] for key in ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high")})
        for d in part.get("tests", []):
            add(analysis=name, quantity="test auc", test=d["test"],
                **{key: d[key] for key in ("estimate", "se", "df", "ci_low", "ci_high")})
    return rows


# -- from StudyStats units ------------------------------------------------------------------------------

#: the cases an MRMC analysis of study units can take: a patient (the independent unit) or a reference lesion
CASE_LEVELS: Tuple[str, ...] = ("patient", "lesion")


def test_label(modality: Any, tracer: Any) -> str:
    """The name of a test: its modality and tracer, e.g. ``PET/CT dotatate``."""
    return f"{modality} {tracer}".strip()


def mrmc_from_units(units: pd.DataFrame, tests: Optional[Sequence[str]] = None,
                    level: str = "lesion") -> Tuple[pd.DataFrame, List[str]]:
    """The tidy MRMC frame (reader, test, case, truth, score) from StudyStats' lesion or patient units.

    A test is a (modality, tracer) group, named ``"<modality> <tracer>"`` (e.g. ``PET/CT dotatate``
    vs ``PET/MR dotatate``); the readers are the units' ``reader`` column; the score is the reader's
    5-point ``confidence`` (:mod:`netpet.stats.data`: a lesion's is its finding's, a patient's the
    highest of its findings', a unit without a finding 1, definitely benign). A case is a reference
    lesion (``patient/lesion``) or a patient, at its time point when the study has several
    (``@time point``).

    Only a fully crossed design can be analysed: a reader who did not read every chosen test is
    left out, then a case that some reader did not read under some test, or whose finding carries
    no confidence there, is left out; each exclusion is counted in the notes.

    Parameters
    ----------
    units : pandas.DataFrame
        :func:`netpet.stats.data.lesion_units` or :func:`~netpet.stats.data.patient_units` output
        (columns patient_id, [lesion_id,] modality, tracer, reader, [time_point,] truth, confidence).
    tests : sequence of str, optional
        The tests to compare, by name (case and spacing ignored); default every (modality, tracer) of
        the units.
    level : {"lesion", "patient"}
        Which units these are.

    Returns
    -------
    (pandas.DataFrame, list of str)
        The tidy frame for :func:`or_analysis` and the notes (readers and cases left out, and why).

    Raises
    ------
    StatsError
        An unknown level, units without a ``confidence`` column, a test that the units do not hold,
        fewer than one reader reading every test, or no case left.
    """
    if level not in CASE_LEVELS:
        raise StatsError(f"Unknown MRMC level {level!r}; choose lesion or patient.")
    needed = ["patient_id", "modality", "tracer", "reader", "truth", "confidence"] + (["lesion_id"] if level == "lesion"
                                                                                    else [])
    missing = [c for c in needed if c not in units.columns]
    if missing:
        raise StatsError(f"The {level} units lack {', '.join(missing)}; the MRMC analysis needs the readers' "
                         "confidence (record it per finding: 1 definitely benign ... 5 definitely malignant).")
    frame = units.copy()
    frame["test"] = [test_label(a, b) for a, b in zip(frame["modality"], frame["tracer"])]
    available = sorted(frame["test"].unique(), key=_natural)
    norm = {" ".join(str(name).lower().split()): name for name in available}
    if tests:
        chosen = []
        for wanted in tests:
            key = " ".join(str(wanted).lower().split())
            if key not in norm:
                raise StatsError(printable(f"The study has no test {wanted!r}; its tests (modality tracer) are: "
                                           f"{', '.join(available)}."))
            if norm[key] not in chosen:
                chosen.append(norm[key])
    else:
        chosen = available
    frame = frame[frame["test"].isin(chosen)]
    notes: List[str] = []
    readers_per_test = frame.groupby("reader")["test"].nunique()
    partial = sorted(readers_per_test.index[readers_per_test < len(chosen)], key=_natural)
    if partial:
        notes.append(printable(f"{len(partial)} reader(s) left out, not having read every test ({', '.join(chosen)}): "
                               f"{', '.join(map(str, partial))}."))
        frame = frame[~frame["reader"].isin(partial)]
    if frame.empty:
        raise StatsError(printable(f"No reader read every test ({', '.join(chosen)}); the MRMC analysis needs the same "
                                   "readers under every test."))
    timed = "time_point" in frame.columns and frame["time_point"].astype(str).ne("").any()
    case = frame["patient_id"].astype(str)
    if level == "lesion":
        case = case + "/" + frame["lesion_id"].astype(str)
    if timed:
        case = case + "@" + frame["time_point"].astype(str).replace("", "baseline")
    frame["case"] = case
    all_cases = frame["case"].nunique()
    readers = frame["reader"].nunique()
    scored = frame[frame["confidence"].notna()]
    no_score = set(frame.loc[frame["confidence"].isna(), "case"])
    counts = scored.groupby("case").size()
    complete = set(counts.index[counts == readers * len(chosen)])
    unread = set(frame["case"]) - complete - no_score
    if no_score:
        notes.append(f"{len(no_score)} of {all_cases} {level} cases left out: a finding there has no confidence "
                     "recorded for some reader and test (record the confidence to include them).")
    if unread:
        notes.append(f"{len(unread)} of {all_cases} {level} cases left out: not read by every reader under every test "
                     "(the analysis needs each reader to read each case under each test).")
    out = scored[scored["case"].isin(complete)]
    if out.empty:
        raise StatsError(f"No {level} case was read, with a confidence, by every reader under every test; the MRMC "
                         "analysis has nothing to analyse.")
    out = out.rename(columns={"confidence": "score"})[["reader", "test", "case", "truth", "score"]]
    return out.reset_index(drop=True), notes


def study_mrmc(units: Dict[str, pd.DataFrame], level: str = "patient", tests: Optional[Sequence[str]] = None,
               method: str = "jackknife", ci_level: float = 0.95, notes: Sequence[str] = ()) -> Dict[str, Any]:
    """The MRMC analysis of a study's units in one call (``netpet mrmc``, ``netpet stats``, StudyStats).

    Parameters
    ----------
    units : dict of pandas.DataFrame
        :func:`netpet.stats.data.units_for` of the study (the ``level`` entry is used).
    level : {"patient", "lesion"}
        The case (default patient: the independent unit the methods assume).
    tests, method, ci_level
        As :func:`mrmc_from_units` and :func:`or_analysis`.
    notes : sequence of str
        Sentences to carry in front of the analysis' own notes (e.g. the study's warnings).

    Returns
    -------
    dict
        :func:`or_analysis`'s result with ``case_level`` and ``notes`` (readers and cases left out, and why).

    Raises
    ------
    StatsError
        As :func:`mrmc_from_units` and :func:`or_analysis` (a design that cannot be analysed).
    """
    frame, own = mrmc_from_units(units[level], tests, level)
    result = or_analysis(frame, method, ci_level, lesion_level=level == "lesion")
    result["case_level"] = level
    result["notes"] = list(notes) + own
    return result
