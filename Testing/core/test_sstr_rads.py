"""SSTR-RADS 1.0 (netpet.clinical.sstr_rads): every category the proposal implements, the scan impression, the
reader's category kept beside the proposal, and the statistics of grades and impressions.

Each expected category is derived in a comment from the numbered rules of the module docstring (Werner et al.,
J Nucl Med 2018;59:1085-1091, read operationally: intense = Krenning 3-4, equivocal = 2, low = 1, none = 0).
"""

from __future__ import annotations

import pytest

from netpet.clinical.scores_stats import statistics
from netpet.clinical.sstr_rads import lesion_rows, propose, scan_impression, scan_rows
from netpet.schema import SSTR_RADS_CATEGORIES, SchemaError

CASES = [
    # rule 1: physiological uptake -> 1A whatever the uptake
    ({"krenning": 4, "region": "pancreas", "lesion_type": "physiological uptake"}, "1A"),
    # rule 3: no uptake, no anatomic lesion -> 1A
    ({"krenning": 0, "region": "liver", "anatomic_correlate": "none"}, "1A"),
    # rule 2: benign anatomic correlate (e.g. haemangioma) -> 1B
    ({"krenning": 3, "region": "liver", "anatomic_correlate": "benign"}, "1B"),
    # rule 5: equivocal uptake (K2) at an atypical soft-tissue site (breast) -> 2A
    ({"krenning": 2, "region": "breast"}, "2A"),
    # rule 6: low uptake (K1) in bone without an anatomic lesion -> 2B
    ({"krenning": 1, "region": "bone", "anatomic_correlate": "none"}, "2B"),
    # rule 5: equivocal uptake (K2) in a lymph node (typical soft tissue) -> 3A
    ({"krenning": 2, "region": "lymph nodes"}, "3A"),
    # rule 6: low uptake (K1) in a typical soft-tissue site with an anatomic lesion -> 3A
    ({"krenning": 1, "region": "small bowel", "anatomic_correlate": "lesion"}, "3A"),
    # rule 5: equivocal uptake (K2) in bone -> 3B
    ({"krenning": 2, "region": "bone"}, "3B"),
    # rule 6: low uptake (K1) in bone, correlate not recorded -> 3B (site named by the lesion type)
    ({"krenning": 1, "region": "", "lesion_type": "bone metastasis"}, "3B"),
    # rule 4: intense uptake (K3) at an atypical site (breast) -> 3C
    ({"krenning": 3, "region": "breast", "anatomic_correlate": "lesion"}, "3C"),
    # rule 4: intense uptake of a TIO culprit (a phosphaturic mesenchymal tumour, not a NET) in bone -> 3C
    ({"krenning": 4, "region": "bone", "lesion_type": "TIO culprit tumour"}, "3C"),
    # rule 3: anatomic lesion without uptake (K0) -> 3D
    ({"krenning": 0, "region": "liver", "anatomic_correlate": "lesion"}, "3D"),
    # rule 4: intense uptake at a typical site without an anatomic finding -> 4
    ({"krenning": 3, "region": "liver", "anatomic_correlate": "none"}, "4"),
    # rule 4: intense uptake at a typical site, correlate not recorded -> 4
    ({"krenning": 4, "region": "pancreatic head"}, "4"),
    # rule 4: intense uptake (K4) at a typical site with an anatomic lesion -> 5
    ({"krenning": 4, "region": "liver", "anatomic_correlate": "lesion"}, "5"),
    # rule 4 in bone (a typical NET site) with a lesion -> 5
    ({"krenning": 3, "region": "bone", "anatomic_correlate": "lesion"}, "5"),
    # no Krenning: the call reads as one (positive -> 3): intense at the liver with a lesion -> 5
    ({"call": "positive", "region": "liver", "anatomic_correlate": "lesion"}, "5"),
]


@pytest.mark.parametrize("row, expected", CASES)
def test_proposal(row, expected):
    category, reason = propose(row)
    assert category == expected, reason
    assert reason


def test_every_category_is_proposed_somewhere():
    assert {expected for _, expected in CASES} == set(SSTR_RADS_CATEGORIES)


def test_no_uptake_information_gives_no_proposal():
    assert propose({"region": "liver"}) == ("", "no Krenning score and no call to read the uptake from")


def test_scan_impression_is_the_highest_category():
    # 3A < 3C < 4 in the listed order: 4, by finding #2
    assert scan_impression(["3A", "4", "3C", ""]) == (
        "4", "highest category 4 of 3 findings (finding #2); category 3 findings: 3A, 3C")
    # two findings of the top category: both named
    top, reason = scan_impression([("L1", "5"), ("L2", "2A"), ("L3", "5")])
    assert top == "5" and "findings L1, L3" in reason
    # 3D above 3A (listed order); lower case and the "SSTR-RADS" prefix are read
    assert scan_impression(["3a", "SSTR-RADS 3D"])[0] == "3D"
    assert scan_impression([]) == ("", "no finding with an SSTR-RADS category")
    with pytest.raises(SchemaError):
        scan_impression(["6"])


def _row(patient, session, reader, lesion, krenning, region, correlate, reader_rads, modality="PET/CT", **extra):
    row = {"patient_id": patient, "session_id": session, "modality": modality, "tracer": "dotatate", "reader": reader,
           "lesion_id": lesion, "krenning": krenning, "region": region, "anatomic_correlate": correlate,
           "sstr_rads": reader_rads}
    row.update(extra)
    return row


def test_reader_confirms_or_overrides_and_both_are_kept():
    rows = [
        _row("P", "D1", "r1", "L1", 4, "liver", "lesion", "5"),      # proposal 5, reader 5: agrees
        _row("P", "D1", "r1", "L2", 2, "lymph nodes", "", "4"),      # proposal 3A, reader 4: overrides
        _row("P", "D1", "r1", "L3", 1, "bone", "none", ""),          # proposal 2B, no reader value
        _row("P", "D1", "r1", "L4", 4, "liver", "lesion", "5", finding_status="retracted"),  # left out
        {"patient_id": "P", "session_id": "F1", "modality": "PET/CT", "tracer": "fdg", "reader": "r1",
         "lesion_id": "L1", "call": "positive"},                     # FDG: SSTR-RADS does not apply
    ]
    warnings = []
    lesions = lesion_rows(rows, warnings)
    by = {r["lesion_id"]: r for r in lesions}
    assert set(by) == {"L1", "L2", "L3"}
    assert (by["L1"]["proposed"], by["L1"]["reader_sstr_rads"], by["L1"]["agrees"], by["L1"]["final"]) == ("5", "5", True, "5")
    assert (by["L2"]["proposed"], by["L2"]["reader_sstr_rads"], by["L2"]["agrees"], by["L2"]["final"]) == ("3A", "4", False, "4")
    assert (by["L3"]["proposed"], by["L3"]["reader_sstr_rads"], by["L3"]["agrees"], by["L3"]["final"]) == ("2B", "", None, "2B")
    scans = scan_rows(lesions)
    assert len(scans) == 1
    scan = scans[0]
    # proposals 5, 3A, 2B -> 5 (L1); reader 5, 4 -> 5 (L1) with one finding lacking a category; final 5, 4, 2B -> 5
    assert (scan["proposed"], scan["reader_impression"], scan["agrees"], scan["final"]) == ("5", "5", True, "5")
    assert scan["deciding_lesions"] == "L1" and "1 finding without the reader's category" in scan["reader_reason"]
    assert warnings == []


def test_a_reader_category_that_is_not_sstr_rads_is_a_warning():
    warnings = []
    lesions = lesion_rows([_row("P", "D1", "r1", "L1", 4, "liver", "lesion", "7")], warnings)
    assert lesions[0]["reader_sstr_rads"] == "" and lesions[0]["final"] == "5"
    assert len(warnings) == 1 and "finding L1" in warnings[0] and "'7'" in warnings[0]


def test_statistics_distribution_and_weighted_kappa():
    # NETPET grades of 3 patients by two readers on PET/CT: r1 P1, P2, P5; r2 P1, P3, P5.
    # Linear weights over 6 categories, w_ij = 1 - |i-j|/5. Observed weighted agreement: (1 + 0.8 + 1)/3 = 2.8/3.
    # Marginals r1: P1, P2, P5 one each; r2: P1, P3, P5 one each; expected weighted agreement
    # sum_ij p_i q_j w_ij with p = q = 1/3 on their categories: pairs (1,1) 1, (1,3) 0.6, (1,5) 0.2, (2,1) 0.8,
    # (2,3) 0.8, (2,5) 0.4, (5,1) 0.2, (5,3) 0.6, (5,5) 1 -> sum 5.6 / 9. kappa = (2.8/3 - 5.6/9) / (1 - 5.6/9)
    # = (8.4 - 5.6) / (9 - 5.6) = 2.8 / 3.4 = 0.823529...
    scores = []
    for reader, grades in (("r1", ("P1", "P2", "P5")), ("r2", ("P1", "P3", "P5"))):
        for patient, grade in zip(("A", "B", "C"), grades):
            scores.append({"patient_id": patient, "reader": reader, "time_point": "baseline", "modality": "PET/CT",
                           "sstr_session": "D1", "grade": grade})
    # a fourth patient graded by r1 only: not in the kappa (n = 3), in r1's distribution
    scores.append({"patient_id": "D", "reader": "r1", "time_point": "baseline", "modality": "PET/CT",
                   "sstr_session": "D1", "grade": ""})
    result = statistics(scores, [])
    readers = [a for a in result["agreement"] if a["comparison"] == "readers" and a["measure"] == "netpet_grade"]
    assert len(readers) == 1
    assert readers[0]["n_patients"] == 3
    assert readers[0]["kappa"] == pytest.approx(2.8 / 3.4, abs=1e-12)  # float arithmetic of a 6x6 table
    dist = {(d["reader"], d["category"]): d for d in result["distribution"] if d["measure"] == "netpet_grade"}
    assert dist[("r1", "P1")]["n"] == 1 and dist[("r1", "P1")]["n_patients"] == 4
    assert dist[("r1", "no grade")]["n"] == 1 and dist[("r1", "P1")]["percent"] == pytest.approx(25.0, abs=1e-12)
    assert dist[("r2", "P4")]["n"] == 0 and ("r2", "no grade") not in dist


def test_statistics_between_modalities():
    # scan impressions of 2 patients by r1 on PET/CT and PET/MR: A 5/5, B 4/3B. Categories 10, linear weights
    # w = 1 - |i-j|/9; 4 is index 8, 3B index 5: w = 1 - 3/9 = 2/3. Observed (1 + 2/3)/2 = 5/6.
    # Marginals CT: 5 (9), 4 (8); MR: 5 (9), 3B (5). Expected: 1/4 [w(9,9) + w(9,5) + w(8,9) + w(8,5)]
    # = 1/4 [1 + 5/9 + 8/9 + 6/9] = 1/4 x 28/9 = 7/9. kappa = (5/6 - 7/9) / (1 - 7/9) = (15 - 14)/18 / (4/18) = 0.25
    scans = []
    for modality, cats in (("PET/CT", ("5", "4")), ("PET/MR", ("5", "3B"))):
        for patient, cat in zip(("A", "B"), cats):
            scans.append({"patient_id": patient, "session_id": f"{patient}-{modality}", "modality": modality,
                          "tracer": "dotatate", "reader": "r1", "time_point": "baseline", "final": cat})
    result = statistics([], scans)
    mods = [a for a in result["agreement"] if a["comparison"] == "modalities"]
    assert len(mods) == 1 and (mods[0]["a"], mods[0]["b"]) == ("PET/CT", "PET/MR")
    assert mods[0]["n_patients"] == 2 and mods[0]["kappa"] == pytest.approx(0.25, abs=1e-12)
    # one patient only in common -> no kappa, the reason says why
    result = statistics([], scans[:1] + scans[2:3])
    mods = [a for a in result["agreement"] if a["comparison"] == "modalities"]
    assert mods[0]["kappa"] is None and "kappa needs at least 2" in mods[0]["reason"]


def test_proposal_against_reader_impression():
    # 3 scans of r1: (proposed, reader) = (5, 5), (4, 5), (3A, 3A). Linear weights over 10 categories, w = 1 -
    # |i-j|/9; 4 (index 8) vs 5 (index 9): w = 8/9. Observed (1 + 8/9 + 1)/3 = 26/27.
    # Marginals proposed: 5 (9), 4 (8), 3A (4); reader: 5 (9) twice, 3A (4) once. Expected = sum p_i q_j w_ij:
    # proposed 5: 1/3 x [2/3 x 1 + 1/3 x (1 - 5/9)] = 1/3 x [2/3 + 4/27] = 1/3 x 22/27
    # proposed 4: 1/3 x [2/3 x 8/9 + 1/3 x (1 - 4/9)] = 1/3 x [16/27 + 5/27] = 1/3 x 21/27
    # proposed 3A: 1/3 x [2/3 x (1 - 5/9) + 1/3 x 1] = 1/3 x [8/27 + 9/27] = 1/3 x 17/27
    # sum = 60/81 = 20/27. kappa = (26/27 - 20/27) / (1 - 20/27) = 6/7
    scans = [{"patient_id": p, "session_id": "D1", "modality": "PET/CT", "tracer": "dotatate", "reader": "r1",
              "time_point": "baseline", "proposed": a, "reader_impression": b, "final": b}
             for p, a, b in (("A", "5", "5"), ("B", "4", "5"), ("C", "3A", "3A"))]
    rows = [a for a in statistics([], scans)["agreement"] if a["comparison"] == "proposal-reader"]
    assert len(rows) == 1 and rows[0]["n_patients"] == 3
    assert rows[0]["kappa"] == pytest.approx(6 / 7, abs=1e-12)
