"""StudyStats against published reference values of the implementations statisticians trust.

Sources of the expected numbers:

* DTComPair 1.2.6 (Stock, Hielscher, Discacciati; CRAN): values printed in its README and
  reference pages for its ``Paired1`` data (test y1: TP 397, FP 84, FN 54, TN 177; discordant
  diseased 78 vs 22, non-diseased 53 vs 22) and for the ``sesp.diff.ci`` example
  (read.tab.paired(18, 14, 0, 18, 18, 12, 2, 18)); published to 7-8 significant digits.
* epiR 2.0.57, pROC 1.18.0 and base R 4.2.2 (Debian bookworm), run by
  Testing/reference/stats_reference.R on the counts below and on the data sets in
  Testing/reference/*.csv; printed to 12 significant digits.
* statsmodels (GEE, cohens_kappa), run in the test itself.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

from netpet.stats import agreement, cluster, roc
from netpet.stats.intervals import accuracy_measures, likelihood_ratios, proportion, proportion_ci
from netpet.stats.paired import (PairedCounts, durkalski, mcnemar_chi2, mcnemar_exact, tango_interval,
                                 wald_interval)

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reference")
PAIRED1 = dict(tp=397, fp=84, fn=54, tn=177)


# -- proportions -------------------------------------------------------------------------------------

# epiR epi.tests(as.table(matrix(c(397, 54, 84, 177), 2)), method = m): (lower, upper)
EPIR = {
    "wilson": {"sensitivity": (0.84704657734, 0.90706233984), "specificity": (0.619252097259, 0.731901383069),
               "ppv": (0.788893866957, 0.856677988143), "npv": (0.707574617377, 0.81618298751),
               "accuracy": (0.775533022053, 0.833540390262)},
    "clopper-pearson": {"sensitivity": (0.846674517732, 0.90875923355), "specificity": (0.61777915771, 0.734440604366),
                        "ppv": (0.788424015295, 0.858244042436), "npv": (0.70625873814, 0.819238873218),
                        "accuracy": (0.775197339149, 0.834599400152)},
    "agresti-coull": {"sensitivity": (0.846876647098, 0.907232270082), "specificity": (0.6191937062, 0.731959774128),
                      "ppv": (0.788796742876, 0.856775112224), "npv": (0.707403119882, 0.816354485005),
                      "accuracy": (0.775486768457, 0.833586643857)},
    "jeffreys": {"sensitivity": (0.847894635359, 0.907777007743), "specificity": (0.619760972028, 0.732634292143),
                 "ppv": (0.789536191076, 0.857290105671), "npv": (0.708568856207, 0.817275747784),
                 "accuracy": (0.775936458693, 0.833939863763)},
}


@pytest.mark.parametrize("method", sorted(EPIR))
def test_accuracy_intervals_match_epir(method):
    measures = accuracy_measures(**PAIRED1, method=method)
    assert measures["sensitivity"].estimate == pytest.approx(397 / 451, abs=1e-12)
    for name, (low, high) in EPIR[method].items():
        assert measures[name].ci_low == pytest.approx(low, abs=1e-11), (method, name)
        assert measures[name].ci_high == pytest.approx(high, abs=1e-11), (method, name)
        assert measures[name].method == method


def test_dtcompair_published_values():
    """DTComPair README, acc.1test(method.ci = "exactci"): 7 published digits."""
    m = accuracy_measures(**PAIRED1, method="clopper-pearson")
    assert (m["sensitivity"].estimate, m["sensitivity"].ci_low, m["sensitivity"].ci_high) == pytest.approx(
        (0.8802661, 0.8466745, 0.9087592), abs=5e-8)
    assert (m["specificity"].ci_low, m["specificity"].ci_high) == pytest.approx((0.6177792, 0.7344406), abs=5e-8)
    assert (m["ppv"].ci_low, m["ppv"].ci_high) == pytest.approx((0.7884240, 0.8582440), abs=5e-8)
    assert (m["npv"].ci_low, m["npv"].ci_high) == pytest.approx((0.7062587, 0.8192389), abs=5e-8)
    # PDLR 2.7351124 (2.2860079, 3.2724472), NDLR 0.1765568 (0.1356142, 0.2298601), log method
    assert (m["lr_pos"].estimate, m["lr_pos"].ci_low, m["lr_pos"].ci_high) == pytest.approx(
        (2.7351124, 2.2860079, 3.2724472), abs=5e-8)
    assert (m["lr_neg"].estimate, m["lr_neg"].ci_low, m["lr_neg"].ci_high) == pytest.approx(
        (0.1765568, 0.1356142, 0.2298601), abs=5e-8)
    # the same from epiR to 12 digits
    assert (m["lr_pos"].ci_low, m["lr_pos"].ci_high) == pytest.approx((2.28600791, 3.2724471658), abs=1e-9)
    assert (m["lr_neg"].ci_low, m["lr_neg"].ci_high) == pytest.approx((0.13561422865, 0.229860136215), abs=1e-11)


# epiR on small and boundary counts (x of n): (lower, upper). epiR leaves the Agresti-Coull interval
# unclipped and the Jeffreys interval without the boundary modification; NETPET clips to [0, 1] and
# applies Brown, Cai & DasGupta's modification (lower 0 at x = 0, upper 1 at x = n), checked by hand.
SMALL = {
    (0, 12): {"wilson": (0, 0.242494006655), "clopper-pearson": (0, 0.264648469397),
              "jeffreys": (4.00753100766e-05, 0.185305938312), "agresti-coull": (-0.0394913152329, 0.281985321888)},
    (12, 12): {"wilson": (0.757505993345, 1), "clopper-pearson": (0.735351530603, 1),
               "jeffreys": (0.814694061688, 0.99995992469), "agresti-coull": (0.718014678112, 1.03949131523)},
    (1, 3): {"wilson": (0.0614919447204, 0.792340399198), "clopper-pearson": (0.00840375865961, 0.90570067595),
             "jeffreys": (0.0387476177852, 0.823263902869), "agresti-coull": (0.0562746143753, 0.797557729543)},
    (29, 30): {"wilson": (0.833296090086, 0.994091409618), "clopper-pearson": (0.827830544367, 0.999156429073),
               "jeffreys": (0.854582222646, 0.996379535626), "agresti-coull": (0.819082015467, 1.00830548424)},
}


@pytest.mark.parametrize("counts", sorted(SMALL))
def test_small_and_boundary_counts(counts):
    x, n = counts
    for method, (low, high) in SMALL[counts].items():
        if method == "agresti-coull":
            low, high = max(low, 0.0), min(high, 1.0)
        if method == "jeffreys":
            low = 0.0 if x == 0 else low
            high = 1.0 if x == n else high
        assert proportion_ci(x, n, method) == pytest.approx((low, high), abs=1e-11), (counts, method)
        assert proportion_ci(x, n, method)[0] <= x / n <= proportion_ci(x, n, method)[1]


def test_degenerate_tables_give_reasons_not_errors():
    # all reference-positive: specificity, LR undefined with a reason; PPV 1
    m = accuracy_measures(tp=10, fp=0, fn=0, tn=0)
    assert m["specificity"].estimate is None and "no reference-negative" in m["specificity"].reason
    assert m["lr_pos"].estimate is None and m["npv"].estimate is None and m["ppv"].estimate == 1.0
    # no false positives: LR+ infinite; no true positives: LR+ 0 without an interval
    lr_pos, lr_neg = likelihood_ratios(8, 0, 2, 10)
    assert lr_pos.estimate is None and "infinite" in lr_pos.reason and lr_neg.estimate == pytest.approx(0.2)
    lr_pos, _ = likelihood_ratios(0, 3, 5, 7)
    assert lr_pos.estimate == 0.0 and lr_pos.ci_low is None
    assert proportion(0, 0, what="cases").reason == "no cases to compute it from"
    with pytest.raises(Exception, match="Unknown confidence-interval method"):
        proportion_ci(1, 2, "wald")


# -- paired comparisons --------------------------------------------------------------------------------

def test_mcnemar_matches_dtcompair_and_base_r():
    sens = PairedCounts(319, 78, 22, 32)
    spec = PairedCounts(155, 53, 22, 31)
    # DTComPair sesp.mcnemar: 31.36, 2.143518e-08; 12.81333, 3.441579e-04 (published)
    assert mcnemar_chi2(sens) == pytest.approx((31.36, 2.143518e-08), rel=1e-6)
    assert mcnemar_chi2(spec) == pytest.approx((12.81333, 3.441579e-04), rel=1e-6)
    # DTComPair sesp.exactbinom: 1.590533e-08, 0.000449648 (published)
    assert mcnemar_exact(sens) == pytest.approx(1.590533e-08, rel=1e-6)
    assert mcnemar_exact(spec) == pytest.approx(0.000449648, rel=1e-6)
    # base R mcnemar.test (continuity corrected) and binom.test, 12 digits
    assert mcnemar_chi2(sens, correction=True) == pytest.approx((30.25, 3.79791249318e-08), rel=1e-10)
    assert mcnemar_chi2(spec, correction=True) == pytest.approx((12.0, 0.000532005505139), rel=1e-10)
    assert mcnemar_chi2(PairedCounts(10, 7, 2, 10), True) == pytest.approx((1.77777777778, 0.182422439452), rel=1e-10)
    assert mcnemar_chi2(PairedCounts(10, 7, 2, 10)) == pytest.approx((2.77777777778, 0.0955807045456), rel=1e-10)
    assert mcnemar_exact(PairedCounts(10, 7, 2, 10)) == pytest.approx(0.1796875, rel=1e-12)
    assert mcnemar_chi2(PairedCounts(10, 0, 5, 10), True) == pytest.approx((3.2, 0.0736382701203), rel=1e-10)
    assert mcnemar_exact(PairedCounts(10, 0, 5, 10)) == pytest.approx(0.0625, rel=1e-12)
    # no discordant pairs: nothing to test
    assert mcnemar_exact(PairedCounts(5, 0, 0, 5)) == 1.0 and mcnemar_chi2(PairedCounts(5, 0, 0, 5)) == (None, 1.0)


def test_difference_intervals_match_dtcompair_example():
    """sesp.diff.ci(read.tab.paired(18, 14, 0, 18, 18, 12, 2, 18)), published values; diff = test2 - test1."""
    sensitivity = PairedCounts(both=18, a_only=14, b_only=0, neither=18)   # a = test 2
    specificity = PairedCounts(both=18, a_only=2, b_only=12, neither=18)   # negative calls, a = test 2
    assert sensitivity.difference == pytest.approx(0.28) and specificity.difference == pytest.approx(-0.2)
    # DTComPair finds Tango's limits with uniroot at its default tolerance (about 1e-4 in the root), so
    # its printed digits agree to 1e-7; NETPET solves to 1e-14, checked by the score at each limit
    assert tango_interval(sensitivity) == pytest.approx((0.1747417, 0.4166512), abs=1e-6)
    assert tango_interval(specificity) == pytest.approx((-0.34470882, -0.06111243), abs=1e-6)
    for counts in (sensitivity, specificity):
        low, high = tango_interval(counts)
        assert _tango_score(counts, low) == pytest.approx(1.959963985, abs=1e-8)
        assert _tango_score(counts, high) == pytest.approx(-1.959963985, abs=1e-8)
    assert wald_interval(sensitivity) == pytest.approx((0.15554615, 0.40445385), abs=5e-9)
    assert wald_interval(specificity) == pytest.approx((-0.33579029, -0.06420971), abs=5e-9)


def _tango_score(counts, delta):
    """Tango's (1998) score statistic, written out separately: the restricted maximum-likelihood
    probability q of the b-only cell solves 2n q² + B q + C = 0 with B = -b - c + (2n - b + c) delta
    and C = -c delta (1 - delta)."""
    n, b, c = counts.n, counts.a_only, counts.b_only
    A, B, C = 2 * n, -b - c + (2 * n - b + c) * delta, -c * delta * (1 - delta)
    q = (-B + math.sqrt(B * B - 4 * A * C)) / (2 * A)
    return (b - c - n * delta) / math.sqrt(n * (2 * q + delta * (1 - delta)))


def test_tango_interval_degenerate_tables():
    # no discordance: an interval around 0 that stays inside (-1, 1)
    low, high = tango_interval(PairedCounts(10, 0, 0, 10))
    assert -1 < low < 0 < high < 1
    # every unit positive by a only: the upper limit is 1
    low, high = tango_interval(PairedCounts(0, 12, 0, 0))
    assert high == pytest.approx(1.0) and 0.5 < low < 1.0


def test_durkalski_reduces_to_mcnemar_with_one_unit_per_patient():
    rng = np.random.default_rng(3)
    a, b = rng.random(60) < 0.7, rng.random(60) < 0.5
    counts = PairedCounts.from_calls(a, b)
    statistic, p = durkalski((a & ~b).astype(int), (~a & b).astype(int))
    assert (statistic, p) == pytest.approx(mcnemar_chi2(counts), rel=1e-12)
    # hand-checked clustered case: patients' (a only, b only) = (2,0), (1,1), (0,1), (3,0):
    # sum of differences 4, sum of squares 4 + 0 + 1 + 9 = 14 -> 16 / 14
    statistic, p = durkalski(np.array([2, 1, 0, 3]), np.array([0, 1, 1, 0]))
    assert statistic == pytest.approx(16 / 14) and p == pytest.approx(0.2850494074, abs=1e-9)


# -- clustered intervals ----------------------------------------------------------------------------------

def test_gee_interval_equals_statsmodels_gee():
    import statsmodels.api as sm

    rng = np.random.default_rng(11)
    patients = np.repeat(np.arange(40), rng.integers(1, 7, 40))
    frailty = rng.normal(0, 1.2, 40)[patients]
    y = (rng.random(len(patients)) < 1 / (1 + np.exp(-(0.8 + frailty)))).astype(float)
    model = sm.GEE(y, np.ones((len(y), 1)), groups=patients, family=sm.families.Binomial(),
                   cov_struct=sm.cov_struct.Independence()).fit()
    low, high = model.conf_int()[0]
    successes = np.bincount(patients, weights=y)
    totals = np.bincount(patients).astype(float)
    m = cluster.gee_proportion(successes, totals)
    expit = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert m.estimate == pytest.approx(y.mean(), abs=1e-12)
    assert (m.ci_low, m.ci_high) == pytest.approx((expit(low), expit(high)), abs=1e-8)


def test_cluster_bootstrap_covers_where_the_naive_interval_does_not():
    """Lesions of a patient share its detectability: the naive Wilson interval is too narrow; the
    cluster bootstrap and GEE intervals come close to the nominal 95 % (400 simulated studies)."""
    rng = np.random.default_rng(5)
    true_sensitivity, covered = 0.0, {"naive": 0, "bootstrap": 0, "gee": 0}
    studies = 400
    # strongly clustered: patient-level logit frailty SD 2, 4-10 lesions per patient, 40 patients
    population = 1 / (1 + np.exp(-(1.0 + rng.normal(0, 2.0, 400_000))))
    true_sensitivity = float(population.mean())
    for study in range(studies):
        sizes = rng.integers(4, 11, 40)
        p = 1 / (1 + np.exp(-(1.0 + rng.normal(0, 2.0, 40))))
        detected = rng.binomial(sizes, p)
        counts = np.zeros((40, 4), dtype=np.int64)
        counts[:, 0], counts[:, 2] = detected, sizes - detected
        weights = cluster.bootstrap_weights(40, 500, study)
        naive = proportion(int(detected.sum()), int(sizes.sum()))
        boot = cluster.bootstrap_measures(counts, weights)["sensitivity"]
        gee = cluster.gee_measures(counts)["sensitivity"]
        covered["naive"] += naive.ci_low <= true_sensitivity <= naive.ci_high
        covered["bootstrap"] += boot.ci_low <= true_sensitivity <= boot.ci_high
        covered["gee"] += gee.ci_low <= true_sensitivity <= gee.ci_high
    rates = {k: v / studies for k, v in covered.items()}
    assert rates["naive"] < 0.85, rates           # measured 0.77
    assert 0.9 <= rates["bootstrap"] <= 0.99, rates   # measured 0.955
    assert 0.9 <= rates["gee"] <= 0.99, rates         # measured 0.9575


def test_bootstrap_is_reproducible_and_matches_a_plain_loop():
    rng = np.random.default_rng(8)
    counts = rng.integers(0, 4, (30, 4))
    weights = cluster.bootstrap_weights(30, 300, 42)
    again = cluster.bootstrap_weights(30, 300, 42)
    assert np.array_equal(weights, again) and np.all(weights.sum(axis=1) == 30)
    fast = cluster.bootstrap_measures(counts, weights)["sensitivity"]
    # the same replicates the slow way: draw patients, add their cells
    values = []
    for row in weights:
        total = (row[:, None] * counts).sum(axis=0)
        values.append(total[0] / (total[0] + total[2]))
    assert (fast.ci_low, fast.ci_high) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-12)


# -- ROC ------------------------------------------------------------------------------------------------

def _roc_data():
    paired = pd.read_csv(os.path.join(REFERENCE, "roc_paired.csv"))
    unpaired = pd.read_csv(os.path.join(REFERENCE, "roc_unpaired.csv"))
    return paired, unpaired


def test_auc_and_delong_interval_match_proc():
    paired, unpaired = _roc_data()
    truth = paired["truth"].to_numpy() == 1
    # pROC ci.auc(roc(truth, x, direction = "<"), method = "delong"): lower, auc, upper
    for scores, (low, auc, high) in ((paired["a"], (0.674312420999, 0.77175, 0.869187579001)),
                                     (paired["b"], (0.597881351832, 0.7075, 0.817118648168))):
        result = roc.auc_ci(scores.to_numpy(), truth)
        assert result[0] == pytest.approx(auc, abs=1e-12)
        assert (result[2], result[3]) == pytest.approx((low, high), abs=1e-11)
    assert roc.auc_ci(paired["a"].to_numpy(), truth)[1] ** 2 == pytest.approx(0.00247147821821, rel=1e-10)
    result = roc.auc_ci(unpaired["score"].to_numpy(), unpaired["truth"].to_numpy() == 1)
    assert (result[2], result[0], result[3]) == pytest.approx((0.57771520628, 0.710857142857, 0.843999079434), abs=1e-11)


def test_delong_tests_match_proc():
    paired, unpaired = _roc_data()
    truth = paired["truth"].to_numpy() == 1
    # roc.test(ra, rb, method = "delong", paired = TRUE): Z, p
    _, _, z, p = roc.delong_paired(paired["a"].to_numpy(), paired["b"].to_numpy(), truth)
    assert (z, p) == pytest.approx((1.84475100255, 0.0650737679241), rel=1e-10)
    # roc.test(ra, ru, method = "delong", paired = FALSE): D (t with Welch-Satterthwaite df), p
    _, _, t, p = roc.delong_unpaired(paired["a"].to_numpy(), truth, unpaired["score"].to_numpy(),
                                     unpaired["truth"].to_numpy() == 1)
    assert (t, p) == pytest.approx((0.723375083259, 0.470894502339), rel=1e-10)


def test_youden_matches_proc_coords_best():
    paired, unpaired = _roc_data()
    truth = paired["truth"].to_numpy() == 1
    assert roc.youden(paired["a"].to_numpy(), truth) == pytest.approx((6.05, 0.72, 0.75), abs=1e-12)
    assert roc.youden(paired["b"].to_numpy(), truth) == pytest.approx((5.95, 0.68, 0.7), abs=1e-12)
    assert roc.youden(unpaired["score"].to_numpy(), unpaired["truth"].to_numpy() == 1) == pytest.approx(
        (6.35, 0.68, 0.742857142857), abs=1e-11)


def test_auc_hand_checked_and_degenerate():
    # 3 malignant (3, 2, 2) vs 2 benign (2, 1): pairs won 2 + 1.5 + 1.5 = 5 of 6 -> 5/6
    assert roc.auc_ci(np.array([3, 2, 2, 2, 1.0]), np.array([1, 1, 1, 0, 0], bool))[0] == pytest.approx(5 / 6)
    # one benign lesion: AUC but no DeLong interval
    auc, se, low, high = roc.auc_ci(np.array([3, 2, 1.0]), np.array([1, 1, 0], bool))
    assert auc == 1.0 and math.isnan(se) and math.isnan(low)


# -- agreement ----------------------------------------------------------------------------------------------

def test_ccc_and_spearman_match_epir_and_r():
    data = pd.read_csv(os.path.join(REFERENCE, "agreement.csv"))
    x, y = data["x"].to_numpy(), data["y"].to_numpy()
    ccc = agreement.lin_ccc(x, y)  # epiR epi.ccc(x, y, ci = "z-transform")
    assert (ccc["ccc"], ccc["ci_low"], ccc["ci_high"]) == pytest.approx(
        (0.966624331939, 0.943322218813, 0.980442589481), abs=1e-11)
    rho = agreement.spearman(x, y)  # cor.test(x, y, method = "spearman", exact = FALSE)
    assert rho["rho"] == pytest.approx(0.982705801502, abs=1e-11)
    assert rho["p_value"] == pytest.approx(3.9430106193e-33, rel=1e-9)


def test_bland_altman_hand_checked():
    a = np.array([10.0, 12.0, 8.0, 15.0, 11.0])
    b = np.array([9.0, 12.5, 7.0, 13.0, 11.5])
    ba = agreement.bland_altman(a, b)
    d = a - b  # 1, -0.5, 1, 2, -0.5: mean 0.6, SD sqrt(4.7 / 4)
    sd = math.sqrt(((d - 0.6) ** 2).sum() / 4)
    assert ba["bias"] == pytest.approx(0.6) and ba["sd"] == pytest.approx(sd)
    assert ba["loa_low"] == pytest.approx(0.6 - 1.959963985 * sd) and ba["loa_high"] == pytest.approx(0.6 + 1.959963985 * sd)
    t = 2.776445105  # t(0.975, 4)
    assert ba["bias_ci_low"] == pytest.approx(0.6 - t * sd / math.sqrt(5))
    assert ba["loa_high_ci_high"] == pytest.approx(ba["loa_high"] + t * sd * math.sqrt(3 / 5))
    assert agreement.bland_altman(a[:1], b[:1])["reason"]


def test_cohen_kappa_hand_checked_and_statsmodels():
    from statsmodels.stats.inter_rater import cohens_kappa

    a = np.array([1] * 20 + [1] * 5 + [0] * 10 + [0] * 15)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    k = agreement.cohen_kappa(a, b)
    # po = 35/50, pe = (25*30 + 25*20)/2500 = 0.5 -> kappa 0.4
    assert k["kappa"] == pytest.approx(0.4) and k["observed_agreement"] == pytest.approx(0.7)
    reference = cohens_kappa(np.array([[20.0, 5.0], [10.0, 15.0]]))
    assert (k["ci_low"], k["ci_high"]) == pytest.approx((reference["kappa_low"], reference["kappa_upp"]), abs=1e-12)
    assert agreement.cohen_kappa(np.ones(5, int), np.ones(5, int))["kappa"] is None
