"""PRRT summary (netpet.clinical.prrt) and study_scores (netpet.clinical.scores) on hand-checked small studies.

Criteria (module docstring of netpet.clinical.prrt): 1 every target lesion Krenning >= 2 (NETTER-1 / Zaknun 2013),
2 every target lesion Krenning >= 3 (uptake above the liver, Hope 2019), 3 no FDG+/SSTR- lesion (Chan 2017).
Ratios are quotients of short decimals (tolerance 1e-12, float division).
"""

from __future__ import annotations

import json

import pytest

from netpet.clinical.prrt import DECISION_AID, prrt_summary
from netpet.clinical.scores import KEYS, ScoresError, study_scores


def _sstr(patient, lesion, krenning, suv, liver=5.0, spleen=20.0, session="D1", reader="r1", **extra):
    row = {"patient_id": patient, "session_id": session, "modality": "PET/CT", "tracer": "dotatate", "reader": reader,
           "lesion_id": lesion, "krenning": krenning, "suv_max": suv, "liver_suv_mean": liver,
           "spleen_suv_mean": spleen, "region": "liver", "call": ""}
    row.update(extra)
    return row


def _fdg(patient, lesion, call, suv, liver=2.5, session="F1", reader="r1", **extra):
    row = {"patient_id": patient, "session_id": session, "modality": "PET/CT", "tracer": "fdg", "reader": reader,
           "lesion_id": lesion, "krenning": "", "suv_max": suv, "liver_suv_mean": liver, "call": call,
           "region": "liver"}
    row.update(extra)
    return row


def test_eligible_patient():
    # K4 (SUVmax 40), K3 (15), K3 (10): all >= 3 -> criteria 1 and 2; no FDG+/SSTR- (empty list) -> criterion 3
    rows = [_sstr("E", "L1", 4, 40.0), _sstr("E", "L2", 3, 15.0), _sstr("E", "L3", 3, 10.0)]
    s = prrt_summary(rows, discordant=[], fdg_session="F1")
    assert (s["krenning_3"], s["krenning_4"], s["n_targets"]) == (2, 1, 3)
    # lowest: Krenning 3, of those the lower T/L: L3, 10 / 5 = 2.0
    assert (s["lowest_lesion"], s["lowest_krenning"]) == ("L3", 3)
    assert s["lowest_tl_ratio"] == pytest.approx(2.0, abs=1e-12)
    # T/L 2.0 .. 8.0 (40 / 5); T/S 10 / 20 = 0.5 .. 40 / 20 = 2.0
    assert s["tl_ratio_min"] == pytest.approx(2.0, abs=1e-12) and s["tl_ratio_max"] == pytest.approx(8.0, abs=1e-12)
    assert s["ts_ratio_min"] == pytest.approx(0.5, abs=1e-12) and s["ts_ratio_max"] == pytest.approx(2.0, abs=1e-12)
    assert (s["uptake_ge_liver"], s["uptake_gt_liver"], s["no_fdg_discordance"], s["meets_criteria"]) == (True, True, True, True)
    assert s["statement"].startswith("Meets the imaging criteria for PRRT: all 3 target lesions")
    assert DECISION_AID in s["statement"]


def test_not_eligible_uptake_below_liver():
    # L2 Krenning 1 -> criterion 1 fails; named in the statement
    rows = [_sstr("N", "L1", 4, 40.0), _sstr("N", "L2", 1, 3.0)]
    s = prrt_summary(rows, discordant=[], fdg_session="F1")
    assert (s["uptake_ge_liver"], s["uptake_gt_liver"], s["meets_criteria"]) == (False, False, False)
    assert (s["lowest_lesion"], s["lowest_krenning"]) == ("L2", 1)
    assert s["lowest_tl_ratio"] == pytest.approx(0.6, abs=1e-12)  # 3 / 5
    assert s["statement"].startswith("Does not meet the imaging criteria for PRRT: uptake below the liver")
    assert "lesion L2" in s["statement"]


def test_planar_criterion_only():
    # K2 (equal to liver) in L2: criterion 1 holds, criterion 2 does not -> meets planar, not PET; meets_criteria False
    s = prrt_summary([_sstr("Q", "L1", 3, 20.0), _sstr("Q", "L2", 2, 5.0)], discordant=[], fdg_session="F1")
    assert (s["uptake_ge_liver"], s["uptake_gt_liver"], s["meets_criteria"]) == (True, False, False)
    assert s["statement"].startswith("Meets the planar criterion") and "lesion L2 at liver level" in s["statement"]


def test_discordant_patient_and_no_fdg():
    s = prrt_summary([_sstr("D", "L1", 4, 40.0)], discordant=["X1"], fdg_session="F1")
    assert (s["uptake_gt_liver"], s["no_fdg_discordance"], s["meets_criteria"]) == (True, False, False)
    assert s["fdg_sstr_discordant"] == "X1" and "FDG-positive lesion without SSTR expression (X1" in s["statement"]
    # no FDG read: criterion 3 not assessed -> meets_criteria None, and the statement says so
    s = prrt_summary([_sstr("D", "L1", 4, 40.0)], discordant=None)
    assert (s["no_fdg_discordance"], s["meets_criteria"]) == (None, None)
    assert "FDG not read at this time point" in s["statement"]
    # only non-tumour findings: no target, the criteria do not apply
    s = prrt_summary([_sstr("D", "L1", 4, 40.0, lesion_type="physiological uptake")], discordant=[])
    assert s["n_targets"] == 0 and s["n_excluded"] == 1 and s["meets_criteria"] is None
    assert s["statement"].startswith("No SSTR tumour lesion recorded")


def test_study_scores_end_to_end():
    rows = [
        # E: eligible (K4, K3), FDG negative -> P1
        _sstr("E", "L1", 4, 40.0), _sstr("E", "L2", 3, 15.0), _fdg("E", "L1", "negative", 2.0),
        # X: DOTATATE K4; FDG finds X9 (SUVmax 7.5 / 2.5 = 3.0) not on DOTATATE -> P5, discordant, not eligible
        _sstr("X", "L1", 4, 40.0), _fdg("X", "L1", "negative", 2.0), _fdg("X", "X9", "positive", 7.5),
        # R: a retracted FDG finding that would make R discordant; left out -> P1, eligible
        _sstr("R", "L1", 3, 12.0), _fdg("R", "L1", "negative", 2.0),
        _fdg("R", "X1", "positive", 9.0, finding_status="retracted"),
        # M: DOTATATE only -> no grade, PRRT criterion 3 not assessed
        _sstr("M", "L1", 3, 12.0),
    ]
    result = study_scores(rows)
    assert set(result) == set(KEYS)
    json.dumps(result, allow_nan=False)  # JSON-safe
    grades = {s["patient_id"]: s["grade"] for s in result["netpet_scores"]}
    assert grades == {"E": "P1", "X": "P5", "R": "P1", "M": ""}
    assert [(d["patient_id"], d["track_id"]) for d in result["discordant"]] == [("X", "X9")]
    assert result["discordant"][0]["fdg_tl_ratio"] == pytest.approx(3.0, abs=1e-12)
    prrt = {p["patient_id"]: p for p in result["prrt"]}
    assert prrt["E"]["meets_criteria"] is True and prrt["R"]["meets_criteria"] is True
    assert prrt["X"]["meets_criteria"] is False and prrt["X"]["fdg_sstr_discordant"] == "X9"
    assert prrt["M"]["meets_criteria"] is None and prrt["M"]["fdg_session"] == ""
    assert "1 retracted finding left out of the NETPET score" in result["warnings"]
    # SSTR-RADS: 5 DOTATATE findings (E 2, X 1, R 1, M 1) in 4 scans; each scan's highest: K3-4 at the liver,
    # correlate not recorded -> 4
    assert len(result["sstr_rads_lesions"]) == 5 and len(result["sstr_rads_scans"]) == 4
    assert {s["final"] for s in result["sstr_rads_scans"]} == {"4"}
    # distribution of grades on PET/CT, reader r1: 4 patients, P1 2, P5 1, no grade 1
    dist = {d["category"]: d["n"] for d in result["statistics"]["distribution"] if d["measure"] == "netpet_grade"}
    assert (dist["P1"], dist["P5"], dist["no grade"], dist["P0"]) == (2, 1, 1, 0)


def test_study_scores_refuses_bad_rows_with_a_sentence():
    with pytest.raises(ScoresError, match=r"row 1: krenning is 'high'; write a whole number from 0 to 4"):
        study_scores([_sstr("P", "L1", "high", 10.0)])
    with pytest.raises(ScoresError, match="suv_max is '-3'"):
        study_scores([_sstr("P", "L1", 3, "-3")])
    with pytest.raises(ScoresError, match="lacks the column"):
        study_scores([{"patient_id": "P"}])
    with pytest.raises(ScoresError, match="has no rows"):
        study_scores([])
    with pytest.raises(ScoresError, match="column reader is empty"):
        study_scores([_sstr("P", "L1", 3, 10.0, reader="")])
