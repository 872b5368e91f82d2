"""StudyStats staging section: a hand-checked small study through load_study and lesion_units.

Every expected figure is worked out by hand in the comments (N, M and stage group per patient and
group, the confusion tables, kappa, Bowker, Stuart-Maxwell, exact McNemar p-values), independently
of the code under test; kappa values are checked against scikit-learn's ``cohen_kappa_score`` too.
"""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction

import pandas as pd
import pytest

from netpet.stats.data import lesion_units, load_study
from netpet.stats.staging import accuracy_rows, staging_html, staging_lines, staging_rows, staging_section

Z95 = 1.959963984540054  # the two-sided 95 % standard normal quantile

REFERENCE = [
    # patient, lesion, region, truth, standard, site, primary
    ("P1", "T", "pancreas", "1", "histopathology", "pancreatic head", "pancreas"),
    ("P1", "N1", "lymph nodes", "1", "histopathology", "portocaval node", "pancreas"),    # regional for pancreas
    ("P1", "H1", "liver", "1", "follow-up", "liver", "pancreas"),
    ("P2", "T", "small bowel", "1", "histopathology", "terminal ileum", "small bowel"),
    ("P2", "N1", "lymph nodes", "1", "histopathology", "mesenteric node", "small bowel"),  # regional
    ("P2", "N2", "lymph nodes", "1", "follow-up", "para-aortic node", "small bowel"),      # distant: M1b
    ("P3", "T", "small bowel", "1", "histopathology", "ileum", "small bowel"),
    ("P3", "N1", "lymph nodes", "1", "histopathology", "mesenteric node", "small bowel"),
    ("P4", "T", "pancreas", "1", "histopathology", "pancreatic tail", "pancreas"),
    ("P4", "B9", "lymph nodes", "0", "follow-up", "mediastinal node", "pancreas"),        # benign (reactive)
    ("P5", "T", "pancreas", "1", "histopathology", "pancreatic body", "pancreas"),
    ("P5", "H1", "liver", "1", "follow-up", "liver", "pancreas"),
    ("P5", "B1", "bone", "1", "follow-up", "L1 vertebral body", "pancreas"),
    ("P6", "T", "small bowel", "1", "histopathology", "jejunum", "small bowel"),
    ("P6", "R1", "lymph nodes", "0", "follow-up", "inguinal node", "small bowel"),        # benign (reactive)
    ("P7", "N1", "lymph nodes", "1", "histopathology", "mesenteric node", ""),           # unknown primary
    ("P7", "H1", "liver", "1", "histopathology", "liver", ""),
    ("P8", "", "", "0", "follow-up", "", ""),                                            # lesion-free
]
HEADER = ("patient_id", "lesion_id", "region", "truth", "standard", "site", "primary")

# The reference's stage per patient (N, M, stage group):
#   P1 N1 (portocaval: hepatoduodenal, regional for pancreas) M1a IV; P2 N1 M1b (para-aortic) IV; P3 N1 M0 III;
#   P4 N0 M0 N0M0 (B9 benign); P5 N0 M1c (liver and bone) IV; P6 N0 M0 N0M0 (R1 benign);
#   P7: unknown primary with a positive node -> N undetermined; liver + an undetermined node -> M1a or M1c: M
#   undetermined, stage group undetermined; P8 N0 M0 N0M0.
FINDINGS = {
    ("PET/CT", "dotatate"): {"P1": {"T": "positive", "N1": "positive", "H1": "positive"},
                             "P2": {"T": "positive", "N1": "positive"},                 # misses the para-aortic node
                             "P3": {"T": "positive", "N1": "equivocal"},                # node equivocal
                             "P4": {"T": "positive"},
                             "P5": {"H1": "positive"},                                  # misses the bone
                             "P6": {"T": "positive", "R1": "positive"},                 # reactive node called: M1b
                             "P7": {"N1": "positive"},
                             "P8": {}},
    ("PET/MR", "dotatate"): {"P1": {"T": "positive", "N1": "positive", "H1": "positive"},
                             "P2": {"T": "positive", "N1": "positive", "N2": "positive"},
                             "P3": {"T": "positive", "N1": "positive"},
                             "P4": {"T": "positive", "B9": "positive"},                 # benign mediastinal: M1b
                             "P5": {"H1": "positive", "B1": "positive"},
                             "P6": {"T": "positive", "R1": "negative"},
                             "P7": {"N1": "positive", "H1": "positive"},
                             "P8": {}},
    ("PET/CT", "fdg"): {"P1": {"H1": "positive"}, "P2": {"T": "negative"}, "P3": {"T": "positive"}, "P4": {},
                        "P5": {"B1": "positive"}, "P6": {}, "P7": {"H1": "positive"}},  # P8 not read with FDG
}
# Staged from the findings (equivocal counted as negative):
#   PET/CT DOTATATE: P1 N1 M1a IV, P2 N1 M0 III, P3 N0 M0 N0M0, P4 N0 M0 N0M0, P5 N0 M1a IV, P6 N0 M1b IV,
#                    P7 undetermined (unknown primary, node only: N ?, M0 or M1b: M ?), P8 N0 M0 N0M0
#   PET/MR DOTATATE: P1 N1 M1a IV, P2 N1 M1b IV, P3 N1 M0 III, P4 N0 M1b IV, P5 N0 M1c IV, P6 N0 M0 N0M0,
#                    P7 undetermined (N ?, liver + node: M ?), P8 N0 M0 N0M0
#   PET/CT FDG:      P1 N0 M1a IV, P2..P4 N0 M0 N0M0, P5 N0 M1b IV, P6 N0 M0 N0M0, P7 N0 M1a IV (liver only)


def write_study(tmp_path, reference=REFERENCE, header=HEADER, findings=FINDINGS):
    with open(tmp_path / "reference.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(reference)
    rows = []
    for (modality, tracer), patients in findings.items():
        for patient, calls in patients.items():
            session = f"{patient}-{modality[-2:]}-{tracer}"
            base = {"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer,
                    "reader": "R1"}
            if not calls:
                rows.append({**base, "lesion_id": "", "call": ""})  # read, nothing found
            rows.extend({**base, "lesion_id": lesion, "call": call} for lesion, call in calls.items())
    with open(tmp_path / "table.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(tmp_path / "table.csv"), str(tmp_path / "reference.csv")


@pytest.fixture
def section(tmp_path):
    table, reference = write_study(tmp_path)
    study = load_study(table, reference)
    return staging_section(study, lesion_units(study))


def group(section, modality, tracer):
    return next(g for g in section["groups"] if g["group"]["modality"] == modality and g["group"]["tracer"] == tracer)


def comparison(section, key):
    return next(c for c in section["comparisons"] if c["differs_in"] == key)


def wilson(x, n, z=Z95):
    """Wilson score interval written out: (x + z²/2 ± z sqrt(x(n-x)/n + z²/4)) / (n + z²)."""
    centre, half = x + z * z / 2, z * math.sqrt(x * (n - x) / n + z * z / 4)
    return (centre - half) / (n + z * z), (centre + half) / (n + z * z)


def binomial_two_sided(k, n):
    """Exact McNemar: min(1, 2 P(X <= k)), X ~ Binomial(n, 1/2)."""
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def test_per_patient_categories_by_hand(section):
    assert section["available"] and section["group_keys"] == ["modality", "tracer", "reader"]
    json.dumps(section, allow_nan=False)  # JSON-ready, no NaN
    expected = {
        ("PET/CT", "dotatate"): {"P1": ("N1", "M1a", "IV"), "P2": ("N1", "M0", "III"), "P3": ("N0", "M0", "N0M0"),
                                 "P4": ("N0", "M0", "N0M0"), "P5": ("N0", "M1a", "IV"), "P6": ("N0", "M1b", "IV"),
                                 "P7": (None, None, None), "P8": ("N0", "M0", "N0M0")},
        ("PET/MR", "dotatate"): {"P1": ("N1", "M1a", "IV"), "P2": ("N1", "M1b", "IV"), "P3": ("N1", "M0", "III"),
                                 "P4": ("N0", "M1b", "IV"), "P5": ("N0", "M1c", "IV"), "P6": ("N0", "M0", "N0M0"),
                                 "P7": (None, None, None), "P8": ("N0", "M0", "N0M0")},
        ("PET/CT", "fdg"): {"P1": ("N0", "M1a", "IV"), "P2": ("N0", "M0", "N0M0"), "P3": ("N0", "M0", "N0M0"),
                            "P4": ("N0", "M0", "N0M0"), "P5": ("N0", "M1b", "IV"), "P6": ("N0", "M0", "N0M0"),
                            "P7": ("N0", "M1a", "IV")},
    }
    reference = {"P1": ("N1", "M1a", "IV"), "P2": ("N1", "M1b", "IV"), "P3": ("N1", "M0", "III"),
                 "P4": ("N0", "M0", "N0M0"), "P5": ("N0", "M1c", "IV"), "P6": ("N0", "M0", "N0M0"),
                 "P7": (None, None, None), "P8": ("N0", "M0", "N0M0")}
    assert len(section["groups"]) == 3
    for key, patients in expected.items():
        g = group(section, *key)
        got = {p["patient_id"]: tuple(p["findings"][k] for k in ("n", "m", "stage_group")) for p in g["patients"]}
        assert got == patients, key
        got = {p["patient_id"]: tuple(p["reference"][k] for k in ("n", "m", "stage_group")) for p in g["patients"]}
        assert got == {p: reference[p] for p in patients}, key
    ct = group(section, "PET/CT", "dotatate")
    # counts: findings N0 P3 P4 P5 P6 P8, N1 P1 P2, ? P7; reference N0 P4 P5 P6 P8, N1 P1 P2 P3, ? P7
    assert ct["counts"]["findings"]["n"] == {"N0": 5, "N1": 2, "undetermined": 1}
    assert ct["counts"]["reference"]["n"] == {"N0": 4, "N1": 3, "undetermined": 1}
    assert ct["counts"]["findings"]["m"] == {"M0": 4, "M1a": 2, "M1b": 1, "M1c": 0, "undetermined": 1}
    assert ct["counts"]["findings"]["stage_group"] == {"N0M0": 3, "III": 1, "IV": 3, "undetermined": 1}


def test_unstageable_patients_listed_with_reason(section):
    ct = group(section, "PET/CT", "dotatate")
    assert [(u["patient_id"], u["side"]) for u in ct["unstageable"]] == [("P7", "findings"), ("P7", "reference")]
    assert all("no primary site" in u["reason"] for u in ct["unstageable"])
    assert ct["n_unstageable"] == {"findings": 1, "reference": 1}
    fdg = group(section, "PET/CT", "fdg")  # P7's liver-only FDG reading is staged; its reference is not
    assert [(u["patient_id"], u["side"]) for u in fdg["unstageable"]] == [("P7", "reference")]


def test_accuracy_by_hand_with_wilson_intervals(section):
    # PET/CT DOTATATE against the reference, P7 left out (reference undetermined): 7 patients
    #   N: wrong P3 only -> 6/7; M: wrong P2 (M0 vs M1b), P5 (M1a vs M1c), P6 (M1b vs M0) -> 4/7
    #   N and M: right P1, P4, P8 -> 3/7; stage group: wrong P2 (III vs IV), P3 (N0M0 vs III), P6 (IV vs N0M0) -> 4/7
    acc = group(section, "PET/CT", "dotatate")["accuracy"]
    for name, correct in (("correct_n", 6), ("correct_m", 4), ("correct_nm", 3), ("correct_stage_group", 4)):
        entry = acc[name]
        assert (entry["correct"], entry["total"], entry["excluded"]) == (correct, 7, 1), name
        assert entry["estimate"] == pytest.approx(correct / 7)
        assert (entry["ci_low"], entry["ci_high"]) == pytest.approx(wilson(correct, 7))
    # confusion tables, rows reference, columns findings: N [[4, 0], [1, 2]] (P3 N1 read N0);
    # M: reference M0 (P3, P4, P6, P8) -> M0, M0, M1b, M0; M1a (P1) -> M1a; M1b (P2) -> M0; M1c (P5) -> M1a
    assert acc["table_n"] == [[4, 0], [1, 2]]
    assert acc["table_m"] == [[3, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]
    # patients with disease only (P8 is lesion-free; P7 still out): 6 patients, N 5/6, M 3/6, N and M 2/6, stage 3/6
    ill = group(section, "PET/CT", "dotatate")["accuracy_with_disease"]
    assert group(section, "PET/CT", "dotatate")["n_with_disease"] == 7
    assert [(ill[k]["correct"], ill[k]["total"]) for k in ("correct_n", "correct_m", "correct_nm",
                                                            "correct_stage_group")] == [(5, 6), (3, 6), (2, 6), (3, 6)]
    # PET/MR: only P4 (M1b for M0, IV for N0M0) is wrong -> N 7/7, M 6/7, N and M 6/7, stage group 6/7
    acc = group(section, "PET/MR", "dotatate")["accuracy"]
    assert [acc[k]["correct"] for k in ("correct_n", "correct_m", "correct_nm", "correct_stage_group")] == [7, 6, 6, 6]
    # FDG, 6 patients (P7 out, P8 not read): N right P4 P5 P6 -> 3/6; M right P1 P3 P4 P6 -> 4/6;
    # N and M right P4 P6 -> 2/6; stage group right P1 P4 P5 P6 -> 4/6
    acc = group(section, "PET/CT", "fdg")["accuracy"]
    assert [(acc[k]["correct"], acc[k]["total"]) for k in ("correct_n", "correct_m", "correct_nm",
                                                            "correct_stage_group")] == [(3, 6), (4, 6), (2, 6), (4, 6)]


def test_over_and_under_staging_against_the_reference(section):
    # PET/CT DOTATATE stage groups vs reference: P6 over (N0M0 -> IV), P2 and P3 under: 1 up, 2 down,
    # exact McNemar p = min(1, 2 P(X <= 1 | 3, 1/2)) = 2 * 4/8 = 1
    shift = group(section, "PET/CT", "dotatate")["vs_reference"]["stage_group"]
    assert (shift["up"], shift["down"], shift["same"], shift["excluded"]) == (1, 2, 4, 1)
    assert shift["p_value"] == pytest.approx(binomial_two_sided(1, 3)) == pytest.approx(1.0)
    # M of PET/CT DOTATATE: P6 M0 -> M1b up; P2 M1b -> M0 down; P5 M1c -> M1a down
    shift = group(section, "PET/CT", "dotatate")["vs_reference"]["m"]
    assert (shift["up"], shift["down"]) == (1, 2)
    # FDG N: P1, P2, P3 N1 -> N0: 0 up, 3 down, p = 2 * (1/2)^3 = 0.25
    shift = group(section, "PET/CT", "fdg")["vs_reference"]["n"]
    assert (shift["up"], shift["down"]) == (0, 3) and shift["p_value"] == pytest.approx(0.25)


def test_modality_comparison_by_hand(section):
    from sklearn.metrics import cohen_kappa_score

    c = comparison(section, "modality")
    assert c["label_a"] == "PET/MR dotatate R1" and c["label_b"] == "PET/CT dotatate R1"
    assert c["patients"] == 8 and c["patients_a_only"] == [] and c["patients_b_only"] == []
    # stage groups on the 7 patients staged by both (P7 by neither), rows PET/CT (B), columns PET/MR (A):
    #   PET/CT N0M0: P3 -> III, P4 -> IV, P8 -> N0M0; III: P2 -> IV; IV: P1 -> IV, P5 -> IV, P6 -> N0M0
    sg = c["agreement"]["stage_group"]
    assert sg["table"] == [[1, 1, 1], [0, 0, 1], [1, 0, 2]] and sg["excluded"] == 1
    # linear kappa (weights |i-j|/2): observed disagreement (.5 + 1 + .5 + 1)/7 = 21/49; row margins 3, 1, 3,
    # column margins 2, 1, 4: expected sum w r_i c_j / n² = (.5*3*1 + 1*3*4 + .5*1*2 + .5*1*4 + 1*3*2 + .5*3*1)/49
    # = 24/49; kappa = 1 - 21/24 = 1/8
    assert sg["kappa"]["linear"]["kappa"] == pytest.approx(float(1 - Fraction(21, 24))) == pytest.approx(0.125)
    ct = ["N0M0"] * 3 + ["III"] + ["IV"] * 3
    mr = ["III", "IV", "N0M0", "IV", "IV", "IV", "N0M0"]
    for weights in ("linear", "quadratic"):
        assert sg["kappa"][weights]["kappa"] == pytest.approx(
            cohen_kappa_score(ct, mr, labels=["N0M0", "III", "IV"], weights=weights))
    low, high = sg["kappa"]["linear"]["ci_low"], sg["kappa"]["linear"]["ci_high"]
    assert -1 <= low < 0.125 < high <= 1
    # Bowker: pairs (N0M0, III) 1 vs 0 -> 1; (N0M0, IV) 1 vs 1 -> 0; (III, IV) 1 vs 0 -> 1: 2 with 3 df,
    # chi-square tail with 3 df: erfc(sqrt(x/2)) + sqrt(2x/pi) exp(-x/2)
    assert sg["bowker"]["statistic"] == pytest.approx(2.0) and sg["bowker"]["df"] == 3
    assert sg["bowker"]["p_value"] == pytest.approx(math.erfc(1.0) + math.sqrt(4 / math.pi) * math.exp(-1.0))
    # Stuart-Maxwell: d = rows - columns = (3, 1, 3) - (2, 1, 4) -> (1, 0) on the first two categories;
    # V = [[3+2-2, -(1+0)], [-(1+0), 1+1-0]] = [[3, -1], [-1, 2]], V^-1 = [[2, 1], [1, 3]]/5: d'V^-1 d = 2/5, df 2
    assert sg["stuart_maxwell"]["statistic"] == pytest.approx(0.4) and sg["stuart_maxwell"]["df"] == 2
    assert sg["stuart_maxwell"]["p_value"] == pytest.approx(math.exp(-0.2))
    # PET/MR up-stages P2 (III -> IV), P3 (N0M0 -> III), P4 (N0M0 -> IV), down-stages P6 (IV -> N0M0):
    # exact McNemar p = 2 P(X <= 1 | 4, 1/2) = 2 * 5/16
    assert (sg["shift"]["up"], sg["shift"]["down"]) == (3, 1)
    assert sg["shift"]["p_value"] == pytest.approx(binomial_two_sided(1, 4)) == pytest.approx(0.625)
    # N: rows PET/CT (N0, N1), columns PET/MR: N0 -> N0 P4 P5 P6 P8, N0 -> N1 P3; N1 -> N1 P1 P2
    # kappa: po 6/7, pe (5*4 + 2*3)/49 = 26/49 -> (42 - 26)/(49 - 26) = 16/23 (linear = unweighted for 2 categories)
    n = c["agreement"]["n"]
    assert n["table"] == [[4, 1], [0, 2]]
    assert n["kappa"]["unweighted"]["kappa"] == pytest.approx(16 / 23) == pytest.approx(n["kappa"]["linear"]["kappa"])
    # M: rows PET/CT (M0, M1a, M1b, M1c), columns PET/MR: M0 -> M1b P2 P4, M0 -> M0 P3 P8; M1a -> M1a P1,
    # M1a -> M1c P5; M1b -> M0 P6. Bowker: (M0, M1b) 2 vs 1 -> 1/3, (M1a, M1c) 1 vs 0 -> 1: 4/3 with 6 df,
    # tail exp(-x/2)(1 + x/2 + (x/2)²/2) = exp(-2/3) * 17/9
    m = c["agreement"]["m"]
    assert m["table"] == [[2, 0, 2, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert m["bowker"]["statistic"] == pytest.approx(4 / 3) and m["bowker"]["df"] == 6
    assert m["bowker"]["p_value"] == pytest.approx(math.exp(-2 / 3) * 17 / 9)
    m_ct = ["M0", "M0", "M0", "M0", "M1a", "M1a", "M1b"]
    m_mr = ["M1b", "M1b", "M0", "M0", "M1a", "M1c", "M0"]
    assert m["kappa"]["linear"]["kappa"] == pytest.approx(
        cohen_kappa_score(m_ct, m_mr, labels=["M0", "M1a", "M1b", "M1c"], weights="linear"))
    # against the reference on the same patients: PET/MR over-stages P4 only (p = 2 * 1/2 = 1); PET/CT 1 over, 2 under
    assert (c["vs_reference"]["a"]["stage_group"]["up"], c["vs_reference"]["a"]["stage_group"]["down"]) == (1, 0)
    assert (c["vs_reference"]["b"]["stage_group"]["up"], c["vs_reference"]["b"]["stage_group"]["down"]) == (1, 2)
    # correct stage group by PET/MR only: P2, P3, P6; by PET/CT only: P4; both P1, P5, P8: p = 2 * 5/16
    correct = c["correct"]["stage_group"]
    assert (correct["both"], correct["a_only"], correct["b_only"], correct["neither"]) == (3, 3, 1, 0)
    assert correct["p_value"] == pytest.approx(0.625)
    # N and M both right: PET/MR P1 P2 P3 P5 P6 P8, PET/CT P1 P4 P8 -> both 2, MR only 4, CT only 1: 2 * 6/32
    assert (c["correct"]["nm"]["a_only"], c["correct"]["nm"]["b_only"]) == (4, 1)
    assert c["correct"]["nm"]["p_value"] == pytest.approx(binomial_two_sided(1, 5)) == pytest.approx(0.375)


def test_tracer_comparison_by_hand(section):
    c = comparison(section, "tracer")
    assert c["label_a"] == "PET/CT dotatate R1" and c["label_b"] == "PET/CT fdg R1"
    # P8 was not read with FDG; no comparison between PET/MR DOTATATE and PET/CT FDG (two keys differ)
    assert c["patients"] == 7 and c["patients_a_only"] == ["P8"]
    assert len(section["comparisons"]) == 2
    # stage groups on P1..P6 (P7 undetermined by DOTATATE), rows FDG, columns DOTATATE:
    #   FDG N0M0: P2 -> III, P3 -> N0M0, P4 -> N0M0, P6 -> IV; FDG IV: P1 -> IV, P5 -> IV
    sg = c["agreement"]["stage_group"]
    assert sg["table"] == [[2, 1, 1], [0, 0, 0], [0, 0, 2]]
    # DOTATATE up-stages P2 and P6, down-stages none: p = 2 (1/2)² = 0.5
    assert (sg["shift"]["up"], sg["shift"]["down"]) == (2, 0) and sg["shift"]["p_value"] == pytest.approx(0.5)
    # Bowker: (N0M0, III) 1 vs 0 -> 1, (N0M0, IV) 1 vs 0 -> 1: 2 with 3 df
    assert sg["bowker"]["statistic"] == pytest.approx(2.0)
    # Stuart-Maxwell: d = (4, 0, 2) - (2, 1, 3) -> (2, -1); V = [[4+2-4, -1], [-1, 0+1-0]] = [[2, -1], [-1, 1]],
    # V^-1 = [[1, 1], [1, 2]]: d'V^-1 d = 2, df 2, p = exp(-1)
    assert sg["stuart_maxwell"]["statistic"] == pytest.approx(2.0)
    assert sg["stuart_maxwell"]["p_value"] == pytest.approx(math.exp(-1))
    # linear kappa: n 6, rows 4, 0, 2, columns 2, 1, 3; observed disagreement (.5 + 1)/6 = 9/36;
    # expected (.5*4*1 + 1*4*3 + 1*2*2 + .5*2*1)/36 = 19/36: kappa = 1 - 9/19 = 10/19
    assert sg["kappa"]["linear"]["kappa"] == pytest.approx(10 / 19)
    # N: FDG reads every patient N0: kappa 0 by construction, no interval, the reason given
    n = c["agreement"]["n"]["kappa"]["linear"]
    assert n["kappa"] == 0.0 and n["ci_low"] is None and "one category" in n["reason"]


def test_equivocal_counted_positive(tmp_path):
    table, reference = write_study(tmp_path)
    study = load_study(table, reference)
    section = staging_section(study, lesion_units(study, "positive"), equivocal="positive")
    assert section["equivocal_as"] == "positive"
    # P3's equivocal mesenteric node now counts: PET/CT N1 M0 III, so N is right for all 7
    ct = group(section, "PET/CT", "dotatate")
    p3 = next(p for p in ct["patients"] if p["patient_id"] == "P3")
    assert (p3["findings"]["n"], p3["findings"]["stage_group"]) == ("N1", "III")
    assert ct["accuracy"]["correct_n"]["correct"] == 7


def test_unmatched_finding_without_station(tmp_path):
    # a finding matched to no reference lesion (a unit of its own made by the correspondence: region only, truth 0):
    # a positive node without station. P4 PET/CT then has no N (regional or distant cannot be told) and no M
    # (M0 if regional, M1b if distant); its reference stays N0 M0
    table, reference = write_study(tmp_path)
    study = load_study(table, reference)
    units = lesion_units(study)
    extra = units[(units["patient_id"] == "P4") & (units["modality"] == "PET/CT") & (units["tracer"] == "dotatate")]
    extra = extra.iloc[[0]].assign(lesion_id="X01", region="lymph nodes", site="", truth=0, found=True,
                                   finding_call="positive", call=1, standard="no reference lesion (netpet match)")
    section = staging_section(study, pd.concat([units, extra], ignore_index=True))
    ct = group(section, "PET/CT", "dotatate")
    p4 = next(p for p in ct["patients"] if p["patient_id"] == "P4")
    assert (p4["findings"]["n"], p4["findings"]["m"]) == (None, None)
    assert "no station" in p4["findings"]["reason"]
    assert (p4["reference"]["n"], p4["reference"]["m"]) == ("N0", "M0")
    assert ("P4", "findings") in [(u["patient_id"], u["side"]) for u in ct["unstageable"]]
    assert ct["accuracy"]["correct_n"]["total"] == 6  # P4 and P7 out


def test_not_available_without_primary_and_site(tmp_path):
    rows = [r[:5] for r in REFERENCE]
    table, reference = write_study(tmp_path, rows, HEADER[:5])
    study = load_study(table, reference)
    section = staging_section(study, lesion_units(study))
    assert section["available"] is False and section["groups"] == []
    assert section["reason"].startswith("Staging is not available: the reference standard")
    assert "neither a primary column" in section["reason"] and section["reason"].endswith(".")
    assert ". " not in section["reason"]  # one sentence
    assert staging_lines(section) == [section["reason"]]
    assert "Staging is not available" in staging_html(section)


def test_primary_without_site_warns(tmp_path):
    rows = [r[:5] + (r[6],) for r in REFERENCE]
    table, reference = write_study(tmp_path, rows, HEADER[:5] + ("primary",))
    study = load_study(table, reference)
    section = staging_section(study, lesion_units(study))
    assert section["available"] and any("no site column" in w for w in section["warnings"])
    # P1's node has no station now: N undetermined from findings and reference; its liver makes M1a or M1c: M too
    ct = group(section, "PET/CT", "dotatate")
    p1 = next(p for p in ct["patients"] if p["patient_id"] == "P1")
    assert (p1["findings"]["n"], p1["findings"]["m"]) == (None, None)


def test_tio_and_unknown_region_listed(tmp_path):
    # a TIO patient (primary "TIO"): not staged, with the reason; an unknown region: listed, not a traceback
    rows = REFERENCE + [("P9", "C1", "bone", "1", "histopathology", "left calcaneus", "TIO"),
                        ("P10", "Q1", "elbow", "1", "histopathology", "olecranon", "pancreas")]
    findings = {k: dict(v) for k, v in FINDINGS.items()}
    findings[("PET/CT", "dotatate")] = {**findings[("PET/CT", "dotatate")], "P9": {"C1": "positive"},
                                        "P10": {"Q1": "positive"}}
    table, reference = write_study(tmp_path, rows, HEADER, findings)
    study = load_study(table, reference)
    section = staging_section(study, lesion_units(study))
    ct = group(section, "PET/CT", "dotatate")
    reasons = {(u["patient_id"], u["side"]): u["reason"] for u in ct["unstageable"]}
    assert "does not apply" in reasons[("P9", "findings")] and "does not apply" in reasons[("P9", "reference")]
    assert "Unknown region elbow" in reasons[("P10", "findings")]


def test_html_and_lines(section):
    text = staging_html(section)
    assert text.startswith("<h2>Staging</h2>")
    for needle in ("PET/MR dotatate R1", "Correct stage group", "Bowker", "Stuart&ndash;Maxwell", "P7",
                   "4/7, 57.1 %", "Cohen 1968", "no primary site"):
        assert needle in text, needle
    lines = staging_lines(section)
    assert lines[0].startswith("Staging per patient")
    assert any("PET/CT dotatate R1: 8 patients; correct N 6/7" in line for line in lines)
    assert any("PET/MR dotatate R1 vs PET/CT dotatate R1" in line and "up-stages 3, down-stages 1" in line
               for line in lines)


def test_time_points_are_staged_apart(tmp_path):
    # the reference per time point: P1's liver metastasis is new at FU1; P2's tumour and node were resected (no FU1
    # rows) and P2 is disease-free at FU1 (patient row)
    header = HEADER + ("time_point",)
    reference = [("P1", "T", "small bowel", "1", "histopathology", "ileum", "small bowel", ""),
                 ("P1", "N1", "lymph nodes", "1", "histopathology", "mesenteric node", "small bowel", ""),
                 ("P1", "H1", "liver", "1", "follow-up", "liver", "small bowel", "FU1"),
                 ("P2", "T", "pancreas", "1", "histopathology", "pancreatic head", "pancreas", "baseline"),
                 ("P2", "N1", "lymph nodes", "1", "histopathology", "portocaval node", "pancreas", "baseline"),
                 ("P2", "", "", "0", "follow-up", "", "pancreas", "FU1")]
    columns = ("patient_id", "session_id", "modality", "tracer", "reader", "time_point", "lesion_id", "call")
    table = [("P1", "B-CT", "PET/CT", "dotatate", "R1", "baseline", "T", "positive"),
             ("P1", "B-CT", "PET/CT", "dotatate", "R1", "baseline", "N1", "positive"),
             ("P2", "B-CT", "PET/CT", "dotatate", "R1", "baseline", "T", "positive"),
             ("P2", "B-CT", "PET/CT", "dotatate", "R1", "baseline", "N1", "positive"),
             ("P1", "B-MR", "PET/MR", "dotatate", "R1", "baseline", "T", "positive"),   # misses the node
             ("P2", "B-MR", "PET/MR", "dotatate", "R1", "baseline", "T", "positive"),
             ("P2", "B-MR", "PET/MR", "dotatate", "R1", "baseline", "N1", "positive"),
             ("P1", "F-CT", "PET/CT", "dotatate", "R1", "FU1", "T", "positive"),
             ("P1", "F-CT", "PET/CT", "dotatate", "R1", "FU1", "N1", "positive"),
             ("P1", "F-CT", "PET/CT", "dotatate", "R1", "FU1", "H1", "positive"),
             ("P2", "F-CT", "PET/CT", "dotatate", "R1", "FU1", "", "")]
    for name, head, rows in (("reference.csv", header, reference), ("table.csv", columns, table)):
        with open(tmp_path / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(head)
            writer.writerows(rows)
    study = load_study(str(tmp_path / "table.csv"), str(tmp_path / "reference.csv"))
    section = staging_section(study, lesion_units(study))
    assert section["group_keys"] == ["modality", "tracer", "reader", "time_point"]
    assert [g["label"] for g in section["groups"]] == ["PET/CT dotatate R1 baseline", "PET/CT dotatate R1 FU1",
                                                        "PET/MR dotatate R1 baseline"]

    def stages(g, side):
        return {p["patient_id"]: (p[side]["n"], p[side]["m"], p[side]["stage_group"]) for p in g["patients"]}

    base, follow, mr = section["groups"]
    # reference: baseline P1 N1 M0 III, P2 N1 M0 III; FU1 P1 N1 M1a IV (new liver lesion), P2 N0 M0 (disease-free)
    assert stages(base, "reference") == {"P1": ("N1", "M0", "III"), "P2": ("N1", "M0", "III")}
    assert stages(follow, "reference") == {"P1": ("N1", "M1a", "IV"), "P2": ("N0", "M0", "N0M0")}
    assert stages(follow, "findings") == {"P1": ("N1", "M1a", "IV"), "P2": ("N0", "M0", "N0M0")}
    assert stages(mr, "findings") == {"P1": ("N0", "M0", "N0M0"), "P2": ("N1", "M0", "III")}
    assert follow["accuracy"]["correct_stage_group"]["correct"] == 2
    # only PET/MR vs PET/CT at baseline is compared (a follow-up differs in time point, not modality or tracer)
    assert [(c["label_a"], c["label_b"]) for c in section["comparisons"]] == [
        ("PET/MR dotatate R1 baseline", "PET/CT dotatate R1 baseline")]
    c = section["comparisons"][0]
    # P1: PET/MR N0M0 vs PET/CT III: PET/MR down-stages one patient, p = 2 * 1/2 = 1
    assert (c["agreement"]["stage_group"]["shift"]["up"], c["agreement"]["stage_group"]["shift"]["down"]) == (0, 1)
    assert c["agreement"]["stage_group"]["shift"]["p_value"] == pytest.approx(1.0)


def test_flat_rows(section):
    rows = staging_rows(section)
    assert len(rows) == 8 + 8 + 7  # patients per group
    p7 = next(r for r in rows if r["patient_id"] == "P7" and r["tracer"] == "fdg")
    assert (p7["findings_n"], p7["findings_m"], p7["reference_n"], p7["primary"]) == ("N0", "M1a", "", "")
    assert "no primary site" in p7["reference_reason"] and p7["disease"] == 1
    assert next(r for r in rows if r["patient_id"] == "P8")["disease"] == 0
    acc = {(r["modality"], r["tracer"]): r for r in accuracy_rows(section)}
    ct = acc[("PET/CT", "dotatate")]
    assert (ct["correct_m_correct"], ct["correct_m_total"], ct["unstageable_findings"]) == (4, 7, 1)
    assert (ct["stage_group_over"], ct["stage_group_under"]) == (1, 2)
    assert (ct["with_disease_correct_stage_group_correct"], ct["with_disease_correct_stage_group_total"]) == (3, 6)
    assert staging_rows({"available": False}) == []


def test_other_interval_method_and_refusals(tmp_path):
    from scipy import stats

    from netpet.stats.intervals import StatsError

    table, reference = write_study(tmp_path)
    study = load_study(table, reference)
    units = lesion_units(study)
    section = staging_section(study, units, ci="clopper-pearson", level=0.9)
    # Clopper-Pearson of 6/7 at 90 %: Beta(6, 2) 5 % quantile and Beta(7, 1) 95 % quantile
    entry = group(section, "PET/CT", "dotatate")["accuracy"]["correct_n"]
    assert (entry["ci_low"], entry["ci_high"]) == pytest.approx((stats.beta.ppf(0.05, 6, 2), stats.beta.ppf(0.95, 7, 1)))
    with pytest.raises(StatsError, match="Unknown confidence-interval method"):
        staging_section(study, units, ci="wald")
    with pytest.raises(StatsError, match="equivocal"):
        staging_section(study, units, equivocal="maybe")


def test_one_time_point_table_is_staged_against_that_time_point_only(tmp_path):
    """A baseline-only table against a reference with FU1 rows: P2 is disease-free at baseline (its liver lesion
    appears at FU1) and P3 is M1a at baseline (its bone region is involved at FU1 only). Staging used the rows of
    every time point (P2 with disease, P3 M1c) while the lesion units used baseline's."""
    from netpet.stats.data import lesion_units, load_study
    from netpet.stats.staging import staging_section

    reference = tmp_path / "ref.csv"
    reference.write_text("patient_id,lesion_id,region,truth,standard,site,primary,time_point\n"
                         "P1,L1,liver,1,histo,liver,pancreas,\n"
                         "P2,,,0,fu,,pancreas,baseline\n"
                         "P2,L1,liver,1,fu,liver,pancreas,FU1\n"
                         "P3,L1,liver,1,histo,liver,pancreas,\n"
                         "P3,,bone,1,fu,,pancreas,FU1\n")
    table = tmp_path / "table.csv"
    table.write_text("patient_id,session_id,modality,tracer,reader,lesion_id,call\n"
                     "P1,S1,PET/CT,dotatate,r1,L1,positive\nP2,S1,PET/CT,dotatate,r1,,\n"
                     "P3,S1,PET/CT,dotatate,r1,L1,positive\n")
    study = load_study(str(table), str(reference))
    section = staging_section(study, lesion_units(study))
    patients = {p["patient_id"]: p for p in section["groups"][0]["patients"]}
    assert not patients["P2"]["disease"] and patients["P2"]["reference"]["m"] == "M0"
    assert patients["P3"]["reference"]["m"] == "M1a" and patients["P3"]["findings"]["m"] == "M1a"
