"""Staging categories (N, M, coarse stage group) and their accuracy and agreement statistics.

The expected numbers of the statistics are computed by hand in each test (the arithmetic is written
out, with fractions or closed-form chi-square tails), independently of statsmodels and scikit-learn.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from netpet.clinical import staging_stats as ss
from netpet.clinical.staging import (StagingError, classify_node, node_is_regional, primary_site, stage_group,
                                     stage_patient, stage_patients)
from netpet.stats.intervals import proportion_ci


def f(region, site="", call="positive"):
    return {"region": region, "site": site, "call": call}


def staged(findings, primary, **kw):
    out = stage_patient(findings, primary, **kw)
    return out["n"], out["m"]


# --- categories -------------------------------------------------------------------------------------------------

def test_every_m_branch():
    assert staged([], "pancreas") == ("N0", "M0")
    assert staged([f("liver", "segment 7")], "pancreas") == ("N0", "M1a")
    assert staged([f("liver"), f("liver")], "ileum") == ("N0", "M1a")
    assert staged([f("bone", "L1 vertebral body")], "pancreas") == ("N0", "M1b")
    assert staged([f("lung")], "stomach") == ("N0", "M1b")
    assert staged([f("peritoneum")], "small bowel") == ("N0", "M1b")
    assert staged([f("liver"), f("lung")], "pancreas") == ("N0", "M1c")
    assert staged([f("liver"), f("lymph nodes", "para-aortic node")], "pancreas") == ("N0", "M1c")


def test_regional_and_distant_nodes_per_primary():
    # pancreas: peripancreatic and superior mesenteric are regional, para-aortic and inguinal distant (M1b)
    assert staged([f("lymph nodes", "peripancreatic node")], "pancreas") == ("N1", "M0")
    assert staged([f("lymph nodes", "superior mesenteric")], "pancreatic tail") == ("N1", "M0")
    assert staged([f("lymph nodes", "para-aortic lymph node")], "pancreas") == ("N0", "M1b")
    assert staged([f("lymph nodes", "peripancreatic"), f("lymph nodes", "inguinal node")], "pancreas") == ("N1", "M1b")
    # jejunum/ileum: mesenteric and ileocolic regional; peripancreatic and supraclavicular distant
    assert staged([f("lymph nodes", "mesenteric node")], "terminal ileum") == ("N1", "M0")
    assert staged([f("lymph nodes", "ileocolic")], "small bowel") == ("N1", "M0")
    assert staged([f("lymph nodes", "peripancreatic node")], "small bowel") == ("N0", "M1b")
    assert staged([f("lymph nodes", "supraclavicular node"), f("liver")], "ileum") == ("N0", "M1c")
    # stomach: perigastric regional, mesenteric distant
    assert staged([f("lymph nodes", "perigastric")], "stomach") == ("N1", "M0")
    assert staged([f("lymph nodes", "mesenteric")], "stomach") == ("N0", "M1b")
    # rectum: mesorectal and internal iliac regional, inguinal distant
    assert staged([f("lymph nodes", "mesorectal")], "rectum") == ("N1", "M0")
    assert staged([f("lymph nodes", "inguinal")], "rectum") == ("N0", "M1b")
    assert node_is_regional("appendix", "ileocolic") and not node_is_regional("appendix", "para-aortic")
    assert classify_node("Superior Mesenteric Lymph Nodes") == "superior mesenteric"
    assert primary_site("Pancreatic head") == "pancreas" and primary_site("") is None


# the reference study's nodal stations and distant sites (netpet.phantom.patients _NODES, the reactive inguinal node,
# and the regional celiac / superior mesenteric and distant supraclavicular and mediastinal nodes and lung
# metastases of issue 13, netpet.phantom.stages), as staged per primary
PHANTOM_PANCREAS = {"portocaval node": ("N1", "M0"),            # hepatoduodenal (portal vein): regional
                    "celiac node": ("N1", "M0"), "superior mesenteric node": ("N1", "M0"),
                    "left supraclavicular node": ("N0", "M1b"),
                    "mesenteric node": ("N0", "M1b"),           # small-bowel mesentery, not the SMA/SMV root: distant
                    "para-aortic node": ("N0", "M1b"), "aortocaval node": ("N0", "M1b"), "inguinal node": ("N0", "M1b"),
                    "supraclavicular node": ("N0", "M1b"), "mediastinal node": ("N0", "M1b")}
PHANTOM_SMALL_BOWEL = {"mesenteric node": ("N1", "M0"),          # the jejuno-ileal mesentery: regional
                       "superior mesenteric node": ("N1", "M0"), "celiac node": ("N0", "M1b"),
                       "left supraclavicular node": ("N0", "M1b"),
                       "portocaval node": ("N0", "M1b"), "para-aortic node": ("N0", "M1b"),
                       "aortocaval node": ("N0", "M1b"), "inguinal node": ("N0", "M1b"),
                       "supraclavicular node": ("N0", "M1b"), "mediastinal node": ("N0", "M1b")}


@pytest.mark.parametrize("primary,expected", [("pancreas", PHANTOM_PANCREAS), ("pancreatic head", PHANTOM_PANCREAS),
                                              ("small bowel", PHANTOM_SMALL_BOWEL),
                                              ("terminal ileum", PHANTOM_SMALL_BOWEL)])
def test_reference_study_sites_per_primary(primary, expected):
    for site, categories in expected.items():
        assert staged([f("lymph nodes", site)], primary) == categories, site
        # with a liver metastasis: M1a when the node is regional, M1c when it is distant
        n, m = categories
        assert staged([f("lymph nodes", site), f("liver", "liver")], primary) == (n, "M1a" if m == "M0" else "M1c")
    assert staged([f("lung", "right lower lobe")], primary) == ("N0", "M1b")
    assert staged([f("lung"), f("liver")], primary) == ("N0", "M1c")
    assert staged([f("bone", "L1 vertebral body"), f("lymph nodes", "portocaval node")], primary)[1] == "M1b"
    # the primary's own organ is T; the physiological uncinate uptake called positive in a small-bowel patient is a
    # (false) pancreatic metastasis, in a pancreatic patient part of the primary's organ
    assert staged([f("pancreas", "uncinate process")], primary) == (
        ("N0", "M0") if expected is PHANTOM_PANCREAS else ("N0", "M1b"))
    assert staged([f("small bowel", "terminal ileum")], primary) == (
        ("N0", "M0") if expected is PHANTOM_SMALL_BOWEL else ("N0", "M1b"))


def test_tio_is_not_staged_and_unknown_primary_gep_organ_is_the_candidate_primary():
    out = stage_patient([f("bone", "left calcaneus")], "TIO")
    assert (out["n"], out["m"]) == (None, None) and "does not apply" in out["reason"]
    assert stage_patient([], "tumour-induced osteomalacia")["n"] is None
    # an empty primary is an unknown primary: the TIO culprit in a bone would be M1b (hence "TIO" in the reference)
    assert staged([f("bone", "left calcaneus")], "") == ("N0", "M1b")
    # unknown primary: a finding in a GEP organ is read as the candidate primary (T), not as M1b
    out = stage_patient([f("pancreas", "pancreatic head"), f("liver")], "")
    assert (out["n"], out["m"], out["primary_candidates"]) == ("N0", "M1a", 1)


def test_equivocal_and_negative_calls():
    findings = [f("liver", call="equivocal"), f("lymph nodes", "mesenteric", "equivocal"), f("bone", call="negative")]
    assert staged(findings, "ileum") == ("N0", "M0")
    assert staged(findings, "ileum", equivocal="positive") == ("N1", "M1a")
    assert staged([f("bone", call="1"), f("liver", call="no")], "ileum") == ("N0", "M1b")
    with pytest.raises(StagingError, match="equivocal rule"):
        staged(findings, "ileum", equivocal="maybe")
    with pytest.raises(StagingError, match="finding 1: call perhaps"):
        staged([f("liver", call="perhaps")], "ileum")


def test_primary_organ_is_t_and_other_gep_organ_is_distant():
    # the ileal primary (and a second ileal focus) is T; a pancreatic focus in an ileal patient is a metastasis
    assert staged([f("small bowel", "terminal ileum"), f("ileum")], "ileum") == ("N0", "M0")
    assert staged([f("pancreas", "uncinate process")], "ileum") == ("N0", "M1b")
    assert staged([f("pancreas", "uncinate process")], "pancreas") == ("N0", "M0")


def test_unknown_primary_and_station():
    out = stage_patient([f("lymph nodes", "mesenteric")], "")
    assert (out["n"], out["m"]) == (None, None) and "no primary site" in out["reason"]
    # an extrahepatic metastasis fixes M whatever the node is; a liver-only patient stays M1a or M1c: undetermined
    assert staged([f("lymph nodes", "mesenteric"), f("bone")], None) == (None, "M1b")
    assert staged([f("lymph nodes", "mesenteric"), f("liver")], None) == (None, None)
    assert staged([f("lymph nodes", "")], "pancreas") == (None, None)
    assert staged([f("liver")], None) == ("N0", "M1a")


def test_refusals():
    with pytest.raises(StagingError, match="Unknown region mars"):
        staged([f("mars")], "pancreas")
    with pytest.raises(StagingError, match="Unknown nodal station elbow node"):
        staged([f("lymph nodes", "elbow node")], "pancreas")
    with pytest.raises(StagingError, match="Unknown primary site lung"):
        staged([], "lung")
    with pytest.raises(StagingError, match="lacks the column"):
        stage_patients(pd.DataFrame({"patient_id": ["P1"]}), {"P1": "ileum"})


def test_stage_patients_read_and_not_read():
    findings = pd.DataFrame([
        {"patient_id": "P1", "region": "liver", "site": "", "call": "positive"},
        {"patient_id": "P1", "region": "lymph nodes", "site": "mesenteric node", "call": "positive"},
        {"patient_id": "P2", "region": "bone", "site": "sternum", "call": "negative"},
    ])
    primaries = {"P1": "ileum", "P2": "pancreas", "P3": "pancreas", "P4": "stomach"}
    table = stage_patients(findings, primaries, read=["P1", "P2", "P3"]).set_index("patient_id")
    assert list(table.loc["P1", ["n", "m", "stage_group"]]) == ["N1", "M1a", "IV"]
    assert list(table.loc["P2", ["n", "m", "stage_group"]]) == ["N0", "M0", "N0M0"]
    assert list(table.loc["P3", ["n", "m", "stage_group"]]) == ["N0", "M0", "N0M0"]  # read, no finding
    assert table.loc["P4", "n"] is None and table.loc["P4", "m"] is None and table.loc["P4", "reason"] == "not read"
    with pytest.raises(StagingError, match="not among the patients read"):
        stage_patients(findings, primaries, read=["P2"])


def test_stage_group():
    assert stage_group("N0", "M0") == "N0M0"
    assert stage_group("N1", "M0") == "III"
    assert stage_group("N0", "M1b") == "IV" and stage_group(None, "M1a") == "IV"
    assert stage_group(None, "M0") is None and stage_group("N1", None) is None


# --- statistics -------------------------------------------------------------------------------------------------

# 3x3 coarse stage groups, rows reading A, columns reading B (N0M0, III, IV)
T3 = np.array([[5, 2, 0], [1, 4, 0], [0, 0, 3]])
# 4x4 M categories (M0, M1a, M1b, M1c), rows A, columns B
T4 = np.array([[6, 3, 1, 0], [0, 4, 0, 2], [0, 1, 3, 1], [0, 0, 0, 2]])


def chi2_sf_df1(x):
    return math.erfc(math.sqrt(x / 2))


def chi2_sf_df3(x):
    return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)


def test_kappa_3x3_by_hand():
    # n = 15, row margins 7, 5, 3; column margins 6, 6, 3
    # unweighted: po = 12/15, pe = (7*6 + 5*6 + 3*3)/225 = 81/225; kappa = (0.8 - 0.36)/(1 - 0.36) = 0.6875
    assert ss.weighted_kappa(T3, "unweighted")["kappa"] == pytest.approx(0.6875)
    # linear weights |i-j|/2: observed disagreement (2*.5 + 1*.5) = 1.5 patients;
    # expected = sum w_ij r_i c_j / n = (.5*42 + 1*21 + .5*30 + .5*15 + 1*18 + .5*18)/15 = 91.5/15
    # kappa = 1 - 1.5/(91.5/15) = 1 - 22.5/91.5 = 46/61
    assert ss.weighted_kappa(T3, "linear")["kappa"] == pytest.approx(46 / 61)
    # quadratic weights (i-j)^2/4: observed .75; expected (.25*42 + 21 + .25*30 + .25*15 + 18 + .25*18)/15
    # = 65.25/15; kappa = 1 - 11.25/65.25 = 24/29
    result = ss.weighted_kappa(T3, "quadratic")
    assert result["kappa"] == pytest.approx(24 / 29)
    assert -1 <= result["ci_low"] < result["kappa"] < result["ci_high"] <= 1


def test_kappa_4x4_by_hand_and_against_sklearn():
    from sklearn.metrics import cohen_kappa_score

    # n = 23, row margins r = 10, 6, 5, 2; column margins c = 6, 8, 4, 5; linear weights |i-j|/3
    # observed disagreement: 3*(1/3) + 1*(2/3) + 2*(2/3) + 1*(1/3) + 1*(1/3) = 11/3
    # sum |i-j| r_i c_j: row0 80 + 80 + 150 = 310; row1 36 + 24 + 60 = 120; row2 60 + 40 + 25 = 125;
    # row3 36 + 32 + 8 = 76; total 631, so expected disagreement = 631/(3*23)
    kappa = 1 - Fraction(11, 3) / Fraction(631, 69)
    assert kappa == Fraction(378, 631)
    assert ss.weighted_kappa(T4, "linear")["kappa"] == pytest.approx(float(kappa))
    a = np.repeat(np.arange(4), T4.sum(1))
    b = np.concatenate([np.repeat(np.arange(4), row) for row in T4])
    for w, sk in (("linear", "linear"), ("quadratic", "quadratic"), ("unweighted", None)):
        assert ss.weighted_kappa(T4, w)["kappa"] == pytest.approx(cohen_kappa_score(a, b, labels=[0, 1, 2, 3],
                                                                                    weights=sk))
    # the compartment weights: M0-M1a, M0-M1b, M1a-M1c, M1b-M1c differ by one compartment (1/2), M0-M1c and
    # M1a-M1b by two (1); observed = (3*.5 + 1*.5 + 2*.5 + 1*1 + 1*.5) = 4.5
    # expected = (10*8*.5 + 10*4*.5 + 10*5*1 + 6*6*.5 + 6*4*1 + 6*5*.5 + 5*6*.5 + 5*8*1 + 5*5*.5
    #             + 2*6*1 + 2*8*.5 + 2*4*.5) / 23 = (40+20+50+18+24+15+15+40+12.5+12+8+4)/23 = 258.5/23
    expected = Fraction(2585, 10) / 23
    comp = ss.weighted_kappa(T4, ss.M_COMPARTMENT_WEIGHTS)
    assert comp["kappa"] == pytest.approx(float(1 - Fraction(9, 2) / expected))


def test_bowker_stuart_maxwell_by_hand():
    # 3x3: only the pair (N0M0, III) is discordant: (2-1)^2/(2+1) = 1/3, df 3 (empty pairs keep their df)
    mh = ss.marginal_homogeneity(T3)
    assert mh["bowker"]["statistic"] == pytest.approx(1 / 3) and mh["bowker"]["df"] == 3
    assert mh["bowker"]["p_value"] == pytest.approx(chi2_sf_df3(1 / 3))
    # Stuart-Maxwell: IV is in no discordant pair and is dropped; the 2x2 rest gives McNemar's (2-1)^2/3, df 1
    assert mh["stuart_maxwell"]["statistic"] == pytest.approx(1 / 3) and mh["stuart_maxwell"]["df"] == 1
    assert mh["stuart_maxwell"]["p_value"] == pytest.approx(chi2_sf_df1(1 / 3))
    # 4x4: pairs (0,1) 9/3 = 3, (0,2) 1/1, (0,3) none, (1,2) 1/1, (1,3) 4/2 = 2, (2,3) 1/1: total 8, df 6;
    # chi-square tail with 6 df: exp(-x/2) * (1 + x/2 + (x/2)^2/2) = exp(-4) * 13
    mh = ss.marginal_homogeneity(T4)
    assert mh["bowker"]["statistic"] == pytest.approx(8.0) and mh["bowker"]["df"] == 6
    assert mh["bowker"]["p_value"] == pytest.approx(13 * math.exp(-4))
    # separate groups of categories: (M0<->M1a) 2 vs 1 and (M1b<->M1c) 3 vs 0: two independent McNemars,
    # 1/3 + 9/3 with df 2 (generalised inverse); chi-square tail with 2 df is exp(-x/2)
    split = np.array([[3, 2, 0, 0], [1, 0, 0, 0], [0, 0, 2, 3], [0, 0, 0, 1]])
    sm = ss.marginal_homogeneity(split)["stuart_maxwell"]
    assert sm["statistic"] == pytest.approx(10 / 3) and sm["df"] == 2
    assert sm["p_value"] == pytest.approx(math.exp(-5 / 3))


def test_up_down_with_exact_mcnemar_by_hand():
    m_names = ["M0", "M1a", "M1b", "M1c"]
    a = [m_names[i] for i in range(4) for j in range(4) for _ in range(T4[i, j])]
    b = [m_names[j] for i in range(4) for j in range(4) for _ in range(T4[i, j])]
    shift = ss.up_down_staging(a, b, ss.compare_m)
    # up: M0->M1a 3, M0->M1b 1, M1a->M1c 2, M1b->M1c 1 = 7; down 0; M1b->M1a 1 changed (not comparable)
    assert (shift["up"], shift["down"], shift["changed"], shift["same"]) == (7, 0, 1, 15)
    assert shift["p_value"] == pytest.approx(2 * 0.5 ** 7)  # two-sided binomial: 2 * P(X <= 0 | 7, 1/2)
    # stage groups of T3: up 2 (N0M0->III), down 1: p = min(1, 2 * P(X <= 1 | 3, 1/2)) = min(1, 2 * 4/8) = 1
    groups = ["N0M0", "III", "IV"]
    a = [groups[i] for i in range(3) for j in range(3) for _ in range(T3[i, j])]
    b = [groups[j] for i in range(3) for j in range(3) for _ in range(T3[i, j])]
    shift = ss.up_down_staging(a, b, ss.compare_stage_group)
    assert (shift["up"], shift["down"]) == (2, 1) and shift["p_value"] == pytest.approx(1.0)
    # N: 4 up, 1 down of 9 -> 2 * (1 + 5)/32 = 0.375
    shift = ss.up_down_staging(["N0"] * 6 + ["N1"] * 3, ["N1"] * 4 + ["N0"] * 2 + ["N0"] + ["N1"] * 2, ss.compare_n)
    assert (shift["up"], shift["down"]) == (4, 1) and shift["p_value"] == pytest.approx(0.375)


def test_small_samples_give_reasons_not_tracebacks():
    empty = np.zeros((3, 3), dtype=int)
    assert ss.weighted_kappa(empty)["kappa"] is None and "no patient" in ss.weighted_kappa(empty)["reason"]
    assert ss.marginal_homogeneity(empty)["bowker"]["statistic"] is None
    agree = np.diag([4, 0, 2])
    assert ss.weighted_kappa(agree, "linear")["kappa"] == pytest.approx(1.0)
    mh = ss.marginal_homogeneity(agree)
    assert mh["bowker"]["p_value"] is None and "all patients agree" in mh["bowker"]["reason"]
    single = np.diag([5, 0, 0])
    k = ss.weighted_kappa(single, "quadratic")
    assert k["kappa"] is None and "same single category" in k["reason"]
    # one reading in one category throughout (FDG reads every patient N0): kappa 0 by construction, no interval
    # (po = pe: for rows (N0 4+2, N1 0) po = 4/6 and pe = 6*4/36 = 4/6)
    constant = ss.weighted_kappa(np.array([[4, 2], [0, 0]]), "linear")
    assert constant["kappa"] == 0.0 and constant["ci_low"] is None and "by construction" in constant["reason"]
    shift = ss.up_down_staging(["N0", None], ["N0", "N1"], ss.compare_n)
    assert shift["p_value"] is None and shift["excluded"] == 1 and "no patient" in shift["reason"]
    none = pd.DataFrame({"patient_id": [], "n": [], "m": []})
    agreement = ss.staging_agreement(none, none)
    assert agreement["patients"] == 0 and agreement["m"]["kappa"]["linear"]["kappa"] is None
    accuracy = ss.staging_accuracy(none, none)
    assert accuracy["correct_n"]["estimate"] is None and accuracy["correct_nm"]["reason"]


def test_staging_accuracy_and_agreement_tables():
    reference = pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4", "P5"],
                              "n": ["N1", "N0", "N1", "N0", None],
                              "m": ["M1a", "M0", "M0", "M1c", "M0"]})
    test = pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4", "P5"],
                         "n": ["N1", "N0", "N0", "N0", "N0"],
                         "m": ["M1a", "M1b", "M0", "M1a", "M0"]})
    acc = ss.staging_accuracy(test, reference)
    # N: P5 excluded (reference N undetermined); correct P1, P2, P4 of 4
    assert (acc["correct_n"]["correct"], acc["correct_n"]["total"], acc["correct_n"]["excluded"]) == (3, 4, 1)
    low, high = proportion_ci(3, 4, "wilson")
    assert (acc["correct_n"]["ci_low"], acc["correct_n"]["ci_high"]) == pytest.approx((low, high))
    # M: P1, P3, P5 correct of 5; both N and M: P1 only of 4
    assert (acc["correct_m"]["correct"], acc["correct_m"]["total"]) == (3, 5)
    assert (acc["correct_nm"]["correct"], acc["correct_nm"]["total"]) == (1, 4)
    # stage groups: ref IV, N0M0, III, IV, None (N unknown, M0); test IV, IV, N0M0, IV, N0M0 -> P1, P4 of 4
    assert (acc["correct_stage_group"]["correct"], acc["correct_stage_group"]["total"]) == (2, 4)
    agreement = ss.staging_agreement(reference, test)
    assert agreement["m"]["table"][0] == [2, 0, 1, 0]  # reference M0 -> test M0 x2 (P3, P5), M1b (P2)
    assert agreement["m"]["shift"]["up"] == 1 and agreement["m"]["shift"]["down"] == 1  # P2 up, P4 M1c->M1a down
    assert agreement["n"]["shift"]["down"] == 1 and agreement["n"]["excluded"] == 1


def test_weighted_kappa_standard_error_by_formula():
    # Fleiss, Cohen, Everitt (Psychol Bull 1969), agreement weights a_ij = 1 - |i-j|/(k-1), written out here:
    # var = (sum p_ij [a_ij - (abar_i + abar_j)(1 - kappa)]^2 - [kappa - pe (1 - kappa)]^2) / (n (1 - pe)^2)
    # with abar_i = sum_j p.j a_ij, abar_j = sum_i pi. a_ij, po = sum p_ij a_ij, pe = sum pi. p.j a_ij
    n = T3.sum()
    p = T3 / n
    k = T3.shape[0]
    agree = 1 - np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
    row, col = p.sum(1), p.sum(0)
    po, pe = (p * agree).sum(), (np.outer(row, col) * agree).sum()
    kappa = (po - pe) / (1 - pe)
    assert kappa == pytest.approx(46 / 61)
    abar_i, abar_j = agree @ col, row @ agree
    var = ((p * (agree - np.add.outer(abar_i, abar_j) * (1 - kappa)) ** 2).sum()
           - (kappa - pe * (1 - kappa)) ** 2) / (n * (1 - pe) ** 2)
    result = ss.weighted_kappa(T3, "linear")
    assert result["se"] == pytest.approx(math.sqrt(var))
    assert result["ci_low"] == pytest.approx(kappa - 1.959963984540054 * math.sqrt(var))


def test_kappa_of_perfect_agreement_has_no_degenerate_interval():
    """10 patients staged alike: kappa 1 (observed 1, expected < 1), but the asymptotic variance is 0, so the Wald
    interval would read 1.00 to 1.00; none is given, with the reason (the demo's PET/MR vs PET/CT printed it)."""
    from netpet.clinical.staging_stats import weighted_kappa

    result = weighted_kappa([[4, 0, 0], [0, 3, 0], [0, 0, 3]], "linear")
    assert result["kappa"] == pytest.approx(1.0) and result["ci_low"] is None and result["ci_high"] is None
    assert "perfect agreement" in result["reason"]
    # one disagreement gives a real interval again
    other = weighted_kappa([[4, 1, 0], [0, 2, 0], [0, 0, 3]], "linear")
    assert other["ci_low"] is not None and other["ci_low"] < other["kappa"] < 1.0
