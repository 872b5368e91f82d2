"""NETPET score (netpet.clinical.netpet_score) on hand-checked small studies.

Every expected grade is derived in a comment from the operational rule of the module (Chan et al., Theranostics
2017;7:1149-1158): SSTR positive = Krenning >= 2; FDG positive = FDG call positive; dual positive lesions by the
avidity index A = T/L(FDG) / T/L(SSTR): A < 1/1.3 P2, 1/1.3 <= A <= 1.3 P3, A > 1.3 P4; any FDG+/SSTR- lesion P5;
the patient's grade is the highest lesion grade. Ratios are exact decimal quotients (tolerance 1e-12: float
division of short decimals).
"""

from __future__ import annotations

import pytest

from netpet.clinical.netpet_score import (EQUAL_RATIO, GRADES, LesionPair, lesion_grade, netpet_grade, score_patients)


def _sstr(patient, lesion, krenning, tl, session="D1", modality="PET/CT", reader="r1", **extra):
    row = {"patient_id": patient, "session_id": session, "modality": modality, "tracer": "dotatate", "reader": reader,
           "lesion_id": lesion, "krenning": krenning, "tl_ratio": tl, "call": "", "region": "liver"}
    row.update(extra)
    return row


def _fdg(patient, lesion, call, tl, session="F1", modality="PET/CT", reader="r1", **extra):
    row = {"patient_id": patient, "session_id": session, "modality": modality, "tracer": "fdg", "reader": reader,
           "lesion_id": lesion, "krenning": "", "tl_ratio": tl, "call": call, "region": "liver"}
    row.update(extra)
    return row


def _by_patient(result):
    return {(s["patient_id"], s["reader"], s["modality"]): s for s in result["scores"]}


def test_grades_p0_to_p5_from_a_study_table():
    rows = [
        # P0: L1 Krenning 1 (< 2: SSTR negative), FDG negative -> neither tracer positive -> P0
        _sstr("P0", "L1", 1, 0.8), _fdg("P0", "L1", "negative", 0.9),
        # P1: L1 Krenning 3, FDG call negative -> SSTR+/FDG- -> P1
        _sstr("P1", "L1", 3, 4.0), _fdg("P1", "L1", "negative", 0.9),
        # P2: A = 2.0 / 4.0 = 0.5 < 1/1.3 = 0.769 -> P2
        _sstr("P2", "L1", 4, 4.0), _fdg("P2", "L1", "positive", 2.0),
        # P3: A = 3.6 / 3.0 = 1.2, within [0.769, 1.3] -> P3; L2 is P1 (FDG negative), lower than P3
        _sstr("P3", "L1", 3, 3.0), _fdg("P3", "L1", "positive", 3.6),
        _sstr("P3", "L2", 3, 5.0), _fdg("P3", "L2", "negative", 0.7),
        # P4: A = 6.0 / 2.0 = 3.0 > 1.3 -> P4; L2 A = 2/4 = 0.5 -> P2; highest P4
        _sstr("P4", "L1", 3, 2.0), _fdg("P4", "L1", "positive", 6.0),
        _sstr("P4", "L2", 4, 4.0), _fdg("P4", "L2", "positive", 2.0),
        # P5: L2 FDG positive and absent on DOTATATE (Krenning 0) -> FDG+/SSTR- -> P5, whatever L1 (P1) is
        _sstr("P5", "L1", 4, 6.0), _fdg("P5", "L1", "negative", 0.8),
        _fdg("P5", "L2", "positive", 2.5),
        # P5 too: L1 Krenning 1 (below the liver) with a positive FDG call
        _sstr("P5b", "L1", 1, 0.7), _fdg("P5b", "L1", "positive", 3.0),
    ]
    result = score_patients(rows)
    scores = _by_patient(result)
    expected = {"P0": "P0", "P1": "P1", "P2": "P2", "P3": "P3", "P4": "P4", "P5": "P5", "P5b": "P5"}
    assert {p: scores[(p, "r1", "PET/CT")]["grade"] for p in expected} == expected
    assert scores[("P4", "r1", "PET/CT")]["deciding_lesions"] == "L1"
    assert scores[("P3", "r1", "PET/CT")]["deciding_lesions"] == "L1"
    assert scores[("P5", "r1", "PET/CT")]["deciding_lesions"] == "L2"
    assert scores[("P0", "r1", "PET/CT")]["deciding_lesions"] == ""
    # the reason names the grade, the lesion and its numbers
    assert scores[("P2", "r1", "PET/CT")]["reason"].startswith("P2: lesion L1")
    assert "avidity index 0.50" in scores[("P2", "r1", "PET/CT")]["reason"]
    assert "Krenning 0" in scores[("P5", "r1", "PET/CT")]["reason"]
    # the FDG+/SSTR- list: P5 L2 (no DOTATATE finding: krenning empty) and P5b L1 (Krenning 1)
    discordant = {(d["patient_id"], d["track_id"]): d for d in result["discordant"]}
    assert set(discordant) == {("P5", "L2"), ("P5b", "L1")}
    assert discordant[("P5", "L2")]["krenning"] == "" and discordant[("P5", "L2")]["sstr_lesion_id"] == ""
    assert discordant[("P5b", "L1")]["krenning"] == 1
    assert discordant[("P5b", "L1")]["fdg_tl_ratio"] == pytest.approx(3.0, abs=1e-12)
    # counts of P4: 2 lesions, both SSTR+ and FDG+
    p4 = scores[("P4", "r1", "PET/CT")]
    assert (p4["n_lesions"], p4["n_sstr_positive"], p4["n_fdg_positive"], p4["n_discordant"]) == (2, 2, 2, 0)
    assert result["warnings"] == []


def test_band_edges_and_lesion_grade():
    # A exactly 1.3 and exactly 1/1.3 are P3 (bounds included); just beyond them P4 / P2
    assert lesion_grade(LesionPair("a", 3, True, 1.0, 1.3)).grade == "P3"
    assert lesion_grade(LesionPair("a", 3, True, 1.3, 1.0)).grade == "P3"
    assert lesion_grade(LesionPair("a", 3, True, 1.0, 1.31)).grade == "P4"
    assert lesion_grade(LesionPair("a", 3, True, 1.31, 1.0)).grade == "P2"
    # Krenning 2 (equal to liver) is SSTR positive ("modified Krenning 2-4"): with FDG negative -> P1
    assert lesion_grade(LesionPair("a", 2, False)).grade == "P1"
    # Krenning 1 with FDG negative: positive on neither tracer -> '' (no contribution)
    assert lesion_grade(LesionPair("a", 1, False)).grade == ""
    g = lesion_grade(LesionPair("a", 3, True, 4.0, 3.0))
    assert g.index == pytest.approx(0.75, abs=1e-12) and g.grade == "P2"  # 0.75 < 1/1.3 = 0.769
    assert EQUAL_RATIO == 1.3 and GRADES == ("P0", "P1", "P2", "P3", "P4", "P5")
    with pytest.raises(ValueError, match="equal_ratio"):
        lesion_grade(LesionPair("a", 3, True, 1.0, 1.0), equal_ratio=0.5)
    # a wider band moves A = 1.5 from P4 to P3
    assert lesion_grade(LesionPair("a", 3, True, 1.0, 1.5), equal_ratio=1.5).grade == "P3"


def test_netpet_grade_from_mappings_as_the_phantom_uses_it():
    # three lesions: P1, P3 (A = 1.0), P4 (A = 2.0) -> P4 decided by L3
    grade = netpet_grade([{"track_id": "L1", "krenning": 4, "fdg_positive": False},
                          {"track_id": "L2", "krenning": 3, "fdg_positive": True, "sstr_tl": 2.0, "fdg_tl": 2.0},
                          {"track_id": "L3", "krenning": 3, "fdg_positive": True, "sstr_tl": 2.0, "fdg_tl": 4.0}])
    assert grade.grade == "P4" and grade.deciding == ("L3",)
    assert [g.grade for g in grade.lesions] == ["P1", "P3", "P4"]
    # two P5 lesions: both deciding, both in the discordant list
    grade = netpet_grade([{"track_id": "X1", "krenning": None, "fdg_positive": True, "fdg_tl": 3.0},
                          {"track_id": "X2", "krenning": 0, "fdg_positive": True, "fdg_tl": 2.0},
                          {"track_id": "L1", "krenning": 3, "fdg_positive": True, "sstr_tl": 1.0, "fdg_tl": 9.0}])
    assert grade.grade == "P5" and grade.deciding == ("X1", "X2") and grade.discordant == ("X1", "X2")
    assert "2 such lesions" in grade.reason
    # no lesion at all: P0
    assert netpet_grade([]).grade == "P0"
    # a dual-positive lesion without T/L: P2-P4 cannot be told -> no grade, the reason says so
    open_ = netpet_grade([{"track_id": "L1", "krenning": 3, "fdg_positive": True, "sstr_tl": None, "fdg_tl": 2.0}])
    assert open_.grade is None and "cannot be told" in open_.reason


def test_missing_sessions_give_no_grade_with_a_reason():
    rows = [_sstr("A", "L1", 3, 4.0),  # DOTATATE only
            _fdg("B", "L1", "positive", 3.0)]  # FDG only
    scores = score_patients(rows)["scores"]
    by = {s["patient_id"]: s for s in scores}
    assert by["A"]["grade"] == "" and "no FDG session" in by["A"]["reason"]
    assert by["B"]["grade"] == "" and "no DOTATATE session" in by["B"]["reason"]
    # a reader who read only the DOTATATE scan: no grade for that reader, while r1 is graded (P1)
    rows = [_sstr("C", "L1", 3, 4.0), _fdg("C", "L1", "negative", 1.0), _sstr("C", "L1", 3, 4.0, reader="r2")]
    by = {(s["patient_id"], s["reader"]): s for s in score_patients(rows)["scores"]}
    assert by[("C", "r1")]["grade"] == "P1" and by[("C", "r2")]["grade"] == ""


def test_pet_ct_and_pet_mr_each_paired_with_the_fdg_session():
    # one FDG PET/CT; DOTATATE on PET/CT (T/L 4.0) and PET/MR (T/L 2.0, bone attenuation lower, say)
    # FDG T/L 3.0: PET/CT A = 0.75 -> P2; PET/MR A = 1.5 -> P4
    rows = [_sstr("P", "L1", 3, 4.0), _sstr("P", "L1", 3, 2.0, session="D2", modality="PET/MR"),
            _fdg("P", "L1", "positive", 3.0)]
    scores = _by_patient(score_patients(rows))
    assert scores[("P", "r1", "PET/CT")]["grade"] == "P2"
    assert scores[("P", "r1", "PET/MR")]["grade"] == "P4"
    assert scores[("P", "r1", "PET/MR")]["fdg_session"] == "F1"
    # two FDG sessions (PET/CT and PET/MR): each DOTATATE session takes the FDG session of its own modality
    rows.append(_fdg("P", "L1", "positive", 1.0, session="F2", modality="PET/MR"))  # A = 1/2 = 0.5 -> P2
    scores = _by_patient(score_patients(rows))
    assert scores[("P", "r1", "PET/MR")]["fdg_session"] == "F2" and scores[("P", "r1", "PET/MR")]["grade"] == "P2"
    assert scores[("P", "r1", "PET/CT")]["fdg_session"] == "F1"


def test_time_points_are_scored_apart():
    rows = [_sstr("P", "L1", 3, 4.0, time_point="baseline"), _fdg("P", "L1", "negative", 1.0, time_point=""),
            _sstr("P", "L1", 3, 4.0, session="D9", time_point="FU1"),
            _fdg("P", "L1", "positive", 8.0, session="F9", time_point="FU1")]
    by = {s["time_point"]: s for s in score_patients(rows)["scores"]}
    # baseline: FDG negative -> P1 (an empty time point reads as baseline); FU1: A = 8/4 = 2 -> P4
    assert by["baseline"]["grade"] == "P1" and by["FU1"]["grade"] == "P4"


def test_correspondence_links_findings_with_different_ids():
    # the readers numbered the lesions differently in the two sessions; the correspondence links D:L1 and F:L7 to
    # track T1 (A = 2.0 / 4.0 = 0.5 -> P2). By shared lesion id instead, L1 (DOTATATE only, K3) is P1 and L7
    # (FDG only, positive) is FDG+/SSTR- -> P5: the two rules must give different grades here.
    rows = [_sstr("P", "L1", 3, 4.0), _fdg("P", "L7", "positive", 2.0)]
    corr = [{"patient_id": "P", "session_id": "D1", "reader": "r1", "lesion_id": "L1", "track_id": "T1",
             "reference_lesion_id": "T1", "status": "matched"},
            {"patient_id": "P", "session_id": "F1", "reader": "r1", "lesion_id": "L7", "track_id": "T1",
             "reference_lesion_id": "T1", "status": "matched"},
            {"patient_id": "P", "session_id": "F1", "reader": "r1", "lesion_id": "", "track_id": "T2",
             "reference_lesion_id": "T2", "status": "missed"}]
    linked = score_patients(rows, corr)
    assert linked["scores"][0]["grade"] == "P2" and linked["scores"][0]["deciding_lesions"] == "T1"
    assert linked["scores"][0]["linked_by"] == "correspondence"
    by_id = score_patients(rows)
    assert by_id["scores"][0]["grade"] == "P5" and by_id["scores"][0]["linked_by"] == "lesion_id"
    # an unmatched finding with a cluster track (X01) on both sessions is one lesion too
    corr2 = [dict(c, track_id="X01", reference_lesion_id="", status="unmatched") for c in corr[:2]]
    assert score_patients(rows, corr2)["scores"][0]["grade"] == "P2"
    # a finding missing from the correspondence is a lesion of its own, with a warning
    result = score_patients(rows, corr[:1])
    assert result["scores"][0]["grade"] == "P5"  # F1:L7 stands alone: FDG positive, no DOTATATE finding
    assert any("not in the correspondence" in w for w in result["warnings"])


def test_retracted_rows_and_non_tumour_findings_are_left_out():
    rows = [_sstr("P", "L1", 3, 4.0), _fdg("P", "L1", "negative", 1.0),
            # a retracted FDG finding would make the patient P5; retracted, it is not counted
            _fdg("P", "L2", "positive", 3.0, finding_status="retracted"),
            # an FDG focus the reader calls physiological: not tumour, the whole lesion L3 is left out
            _fdg("P", "L3", "positive", 3.0, lesion_type="physiological uptake"),
            # a DOTATATE lesion with a benign anatomic correlate: L4 left out
            _sstr("P", "L4", 1, 0.5, anatomic_correlate="benign"), _fdg("P", "L4", "positive", 2.0)]
    result = score_patients(rows)
    score = result["scores"][0]
    assert score["grade"] == "P1" and score["n_lesions"] == 1 and score["n_excluded"] == 2
    assert "L3 (lesion type physiological uptake)" in score["reason"]
    assert "L4 (benign anatomic correlate)" in score["reason"]
    assert result["warnings"] == ["1 retracted finding left out of the NETPET score"]


def test_krenning_from_call_and_tl_from_suv():
    # no krenning column value: the call reads as Krenning (positive 3); no tl_ratio: suv_max / liver_suv_mean
    # DOTATATE 20 / 5 = 4.0, FDG 13 / 2.5 = 5.2: A = 1.3 -> P3 (bound included)
    rows = [_sstr("P", "L1", "", "", call="positive", suv_max="20", liver_suv_mean="5"),
            _fdg("P", "L1", "positive", "", suv_max="13", liver_suv_mean="2.5")]
    score = score_patients(rows)["scores"][0]
    assert score["grade"] == "P3"
    # a DOTATATE call equivocal reads as Krenning 2: SSTR positive; with FDG negative -> P1
    rows = [_sstr("P", "L1", "", "", call="equivocal"), _fdg("P", "L1", "equivocal", 1.0)]
    assert score_patients(rows)["scores"][0]["grade"] == "P1"  # FDG equivocal is FDG negative


def test_other_tracers_are_named_in_a_warning():
    rows = [_sstr("P", "L1", 3, 4.0), _fdg("P", "L1", "negative", 1.0),
            dict(_fdg("P", "L1", "positive", 5.0, session="C1"), tracer="choline")]
    result = score_patients(rows)
    # the choline finding does not count: L1 stays SSTR+/FDG- -> P1
    assert result["scores"][0]["grade"] == "P1"
    assert result["warnings"] == ["1 finding of tracer choline (neither SSTR PET nor FDG) left out of the NETPET score"]


def test_a_p2_to_p4_grade_on_a_small_lesion_is_flagged_uncertain():
    from netpet.clinical.scores import study_scores

    rows = [
        # A = 2.0 / 4.0 = 0.5 -> P2, but the DOTATATE finding is flagged partial-volume: uncertain-avidity
        _sstr("S", "L1", 4, 4.0, flags="embedded;partial-volume"), _fdg("S", "L1", "positive", 2.0),
        # the same grade on findings without the flags: no flag
        _sstr("B", "L1", 4, 4.0, flags="embedded"), _fdg("B", "L1", "positive", 2.0),
        # P1 on a small lesion: the avidity index plays no part, no flag
        _sstr("P", "L1", 3, 4.0, flags="partial-volume"), _fdg("P", "L1", "negative", 0.9, flags="not-separable"),
        # P4 whose FDG finding is not separable: flagged
        _sstr("N", "L1", 3, 2.0), _fdg("N", "L1", "positive", 6.0, flags="not-separable;organ-sized"),
    ]
    scores = _by_patient(score_patients(rows))
    assert scores[("S", "r1", "PET/CT")]["grade"] == "P2"
    assert scores[("S", "r1", "PET/CT")]["flags"] == "uncertain-avidity"
    assert "lesion L1: DOTATATE partial-volume" in scores[("S", "r1", "PET/CT")]["reason"]
    assert scores[("B", "r1", "PET/CT")]["flags"] == ""
    assert (scores[("P", "r1", "PET/CT")]["grade"], scores[("P", "r1", "PET/CT")]["flags"]) == ("P1", "")
    assert (scores[("N", "r1", "PET/CT")]["grade"], scores[("N", "r1", "PET/CT")]["flags"]) == ("P4", "uncertain-avidity")
    # a TIO localisation patient is not graded (the grade is one of neuroendocrine neoplasms), with the reason
    result = study_scores(rows, indications={"S": "TIO localisation", "B": "NET staging"})
    graded = {s["patient_id"]: s for s in result["netpet_scores"]}
    assert graded["S"]["grade"] == "" and graded["S"]["reason"].startswith("not graded: the patient's indication is TIO")
    assert "(the findings would read P2)" in graded["S"]["reason"]
    assert graded["B"]["grade"] == "P2"


def test_a_finding_the_reader_holds_benign_is_not_graded():
    rows = [
        # L1: Krenning 3, FDG negative -> P1 if tumour; read probably benign (2) on DOTATATE and definitely benign (1)
        # on FDG: held benign on every scan that shows it, left out -> P0
        _sstr("U", "L1", 3, 2.0, confidence="2", lesion_type=""), _fdg("U", "L1", "negative", 0.9, confidence="1"),
        # read benign on DOTATATE but without a confidence on FDG: not held benign everywhere, counted -> P1
        _sstr("H", "L1", 3, 2.0, confidence="2"), _fdg("H", "L1", "negative", 0.9),
        # the same with confidence 3 (indeterminate): counted -> P1
        _sstr("I", "L1", 3, 2.0, confidence="3"), _fdg("I", "L1", "negative", 0.9),
    ]
    scores = _by_patient(score_patients(rows))
    assert scores[("U", "r1", "PET/CT")]["grade"] == "P0"
    assert "reader's confidence 2/1 (benign)" in scores[("U", "r1", "PET/CT")]["reason"]
    assert scores[("H", "r1", "PET/CT")]["grade"] == "P1"
    assert scores[("I", "r1", "PET/CT")]["grade"] == "P1"


def test_an_fdg_only_lesion_read_benign_on_dotatate_stays_p5():
    rows = [
        # L1: Krenning 1 on DOTATATE, read benign there (confidence 1: nothing seen), FDG positive and read 5 -> P5
        _sstr("D", "L1", 1, 0.7, confidence="1"), _fdg("D", "L1", "positive", 3.0, confidence="5"),
        # L1 read benign on both scans (2 and 1): out of the grade -> P0
        _sstr("B", "L1", 3, 2.0, confidence="2"), _fdg("B", "L1", "positive", 3.0, confidence="1"),
    ]
    scores = _by_patient(score_patients(rows))
    assert scores[("D", "r1", "PET/CT")]["grade"] == "P5"
    assert scores[("B", "r1", "PET/CT")]["grade"] == "P0"
    assert "reader's confidence 2/1 (benign)" in scores[("B", "r1", "PET/CT")]["reason"]
