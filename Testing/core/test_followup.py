"""netpet.clinical.followup: lesion tracks over time, SSTR-TV / TL-SSTR and PERCIST 1.0, on small hand-made tables.

Every number asserted is worked out by hand in the comments (the table and correspondence are built here,
row by row, the way netpet quantify and netpet match write them).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from netpet.clinical import followup as fu
from netpet.dicom import body


def _finding(table, corr, patient, session, tp, days, lesion, track, *, tracer="dotatate", modality="PET/CT",
             reader="r1", suv_max=10.0, suv_peak=8.0, mtv=5.0, tl=4.0, mean=6.0, call="positive", status="matched",
             seg="segmented", liver=2.0, liver_sd=0.3, suv_type="lbmjanma", **extra):
    row = {"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer, "reader": reader,
           "lesion_id": lesion, "time_point": tp, "days_from_baseline": "" if days is None else str(days),
           "suv_max": str(suv_max), "suv_peak": str(suv_peak), "mtv_ml": str(mtv), "tl_ratio": str(tl),
           "suv_mean": str(mean), "call": call, "segmentation_status": seg, "liver_suv_mean": str(liver),
           "liver_suv_sd": str(liver_sd), "suv_type": suv_type, "region": "liver", **extra}
    table.append(row)
    if track is not None:
        corr.append({"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer,
                     "reader": reader, "time_point": tp, "lesion_id": lesion, "reference_lesion_id":
                     "" if status == "unmatched" else track, "track_id": track, "status": status})


def _read(table, patient, session, tp, days, *, tracer="fdg", modality="PET/CT", reader="r1", liver=2.0,
          liver_sd=0.3, suv_type="lbmjanma", **extra):
    """A session read without findings (empty lesion_id), as netpet quantify writes it."""
    table.append({"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer,
                  "reader": reader, "lesion_id": "", "time_point": tp, "days_from_baseline": str(days),
                  "suv_max": "", "suv_peak": "", "mtv_ml": "", "tl_ratio": "", "suv_mean": "", "call": "",
                  "liver_suv_mean": str(liver), "liver_suv_sd": str(liver_sd), "suv_type": suv_type, **extra})


def _missed(corr, patient, session, tp, track, tracer="dotatate", modality="PET/CT", reader="r1"):
    corr.append({"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer,
                 "reader": reader, "time_point": tp, "lesion_id": "", "reference_lesion_id": track, "track_id": track,
                 "status": "missed"})


def _frames(table, corr):
    return pd.DataFrame(table), pd.DataFrame(corr)


@pytest.fixture(scope="module")
def dotatate():
    """Patient P1, DOTATATE PET/CT, reader r1, three time points (days 0, 90, 180):

    A  baseline SUVmax 20 SUVpeak 15 MTV 10 T/L 4 mean 8  -> FU1 10/7.5/5/2 mean 6 -> FU2 12/9/6/2.4 mean 6
    B  baseline 8/6/2/1.6 mean 5 -> FU1 missed (reference still has it) -> FU2 nothing
    C  new at FU1 9/7/3/1.8 mean 6 -> FU2 not separable (SUVmax 11, table MTV 9 to be ignored)
    X01 unmatched, equivocal, baseline and FU1 4/3/1/0.8 mean 3 -> FU2 nothing
    """
    t, c = [], []
    _finding(t, c, "P1", "S0", "baseline", 0, "L01", "A", suv_max=20, suv_peak=15, mtv=10, tl=4, mean=8)
    _finding(t, c, "P1", "S0", "baseline", 0, "L02", "B", suv_max=8, suv_peak=6, mtv=2, tl=1.6, mean=5)
    _finding(t, c, "P1", "S0", "baseline", 0, "L03", "X01", suv_max=4, suv_peak=3, mtv=1, tl=0.8, mean=3,
             call="equivocal", status="unmatched")
    _finding(t, c, "P1", "S1", "FU1", 90, "L01", "C", suv_max=9, suv_peak=7, mtv=3, tl=1.8, mean=6)
    _finding(t, c, "P1", "S1", "FU1", 90, "L02", "A", suv_max=10, suv_peak=7.5, mtv=5, tl=2, mean=6)
    _finding(t, c, "P1", "S1", "FU1", 90, "L03", "X01", suv_max=4, suv_peak=3, mtv=1, tl=0.8, mean=3,
             call="equivocal", status="unmatched")
    _missed(c, "P1", "S1", "FU1", "B")
    _finding(t, c, "P1", "S2", "FU2", 180, "L07", "A", suv_max=12, suv_peak=9, mtv=6, tl=2.4, mean=6,
             status="ambiguous")
    _finding(t, c, "P1", "S2", "FU2", 180, "L08", "C", suv_max=11, suv_peak=8.8, mtv=9, tl=2.2, mean=7,
             seg="not separable")
    return fu.follow_up(*_frames(t, c))


def _lesion(result, track, tp):
    rows = result.lesions[(result.lesions.track_id == track) & (result.lesions.time_point == tp)]
    assert len(rows) == 1, (track, tp)
    return rows.iloc[0]


def _patient(result, tp, patient="P1"):
    rows = result.patients[(result.patients.patient_id == patient) & (result.patients.time_point == tp)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_changes_of_a_persisting_lesion(dotatate):
    a1 = _lesion(dotatate, "A", "FU1")
    assert a1.status == "persisting" and a1.lesion_id == "L02" and a1.previous_time_point == "baseline"
    # FU1 against baseline: 20 -> 10, 15 -> 7.5, 10 -> 5, 4 -> 2: each -50 %
    for m, delta in (("suv_max", -10.0), ("suv_peak", -7.5), ("mtv_ml", -5.0), ("tl_ratio", -2.0)):
        assert a1[f"{m}_change"] == pytest.approx(delta)
        assert a1[f"{m}_change_pct"] == pytest.approx(-50.0)
    a2 = _lesion(dotatate, "A", "FU2")
    # FU2 against FU1: 10 -> 12 (+2, +20 %), 5 -> 6 mL (+1, +20 %); against baseline 20 -> 12 (-8, -40 %)
    assert a2.suv_max_change == pytest.approx(2.0) and a2.suv_max_change_pct == pytest.approx(20.0)
    assert a2.mtv_ml_change == pytest.approx(1.0) and a2.mtv_ml_change_pct == pytest.approx(20.0)
    assert a2.suv_max_change_from_first == pytest.approx(-8.0)
    assert a2.suv_max_change_from_first_pct == pytest.approx(-40.0)
    assert a2.tl_ratio_change_from_first_pct == pytest.approx(-40.0)  # 4 -> 2.4
    assert a2.match_status == "ambiguous" and "ambiguous-match" in a2["flags"] and "confirm" in a2["warnings"]
    assert _lesion(dotatate, "A", "baseline").status == "baseline"
    assert math.isnan(_lesion(dotatate, "A", "baseline").suv_max_change)


def test_new_disappeared_and_absent(dotatate):
    b1 = _lesion(dotatate, "B", "FU1")
    assert b1.status == "disappeared" and b1.match_status == "missed" and "missed" in b1["flags"]
    assert "false negative" in b1["warnings"] and math.isnan(b1.suv_max)
    assert _lesion(dotatate, "B", "FU2").status == "absent"
    c1 = _lesion(dotatate, "C", "FU1")
    assert c1.status == "new" and math.isnan(c1.suv_max_change)
    assert (dotatate.lesions.track_id == "C").sum() == 2  # no row before the lesion is first seen
    x2 = _lesion(dotatate, "X01", "FU2")
    assert x2.status == "disappeared" and "which was read" in x2["warnings"] and x2.match_status == ""
    assert "no-reference-lesion" in _lesion(dotatate, "X01", "baseline")["flags"]


def test_not_separable_has_no_volume(dotatate):
    c2 = _lesion(dotatate, "C", "FU2")
    assert c2.status == "persisting" and "not-separable" in c2["flags"]
    assert math.isnan(c2.mtv_ml) and math.isnan(c2.suv_mean)  # the table's 9 mL is not used
    assert math.isnan(c2.mtv_ml_change) and "MTV change not computed" in c2["warnings"]
    assert c2.suv_max == 11.0 and c2.suv_max_change == pytest.approx(2.0)  # 9 -> 11, kept
    assert c2.suv_peak_change_pct == pytest.approx(100 * 1.8 / 7)


def test_patient_counts_sstr_tv_and_tl_sstr(dotatate):
    p0, p1, p2 = (_patient(dotatate, tp) for tp in ("baseline", "FU1", "FU2"))
    # baseline: positives A (10 mL x 8) and B (2 mL x 5): SSTR-TV 12 mL, TL-SSTR 80 + 10 = 90; X01 equivocal, left out
    assert (p0.n_lesions, p0.n_positive, p0.n_new, p0.n_disappeared, p0.n_persisting) == (3, 2, 0, 0, 0)
    assert p0.sstr_tv_ml == pytest.approx(12.0) and p0.tl_sstr == pytest.approx(90.0) and p0.sstr_lesions == 2
    assert "1 equivocal finding(s) left out" in p0["warnings"]
    # FU1: A (5 x 6) and C (3 x 6): 8 mL, 48; change -4 mL (-33.3 %), -42 (-46.7 %)
    assert (p1.n_lesions, p1.n_positive, p1.n_new, p1.n_disappeared, p1.n_persisting) == (3, 2, 1, 1, 1 + 1)
    assert p1.sstr_tv_ml == pytest.approx(8.0) and p1.tl_sstr == pytest.approx(48.0)
    assert p1.sstr_tv_change_ml == pytest.approx(-4.0) and p1.sstr_tv_change_pct == pytest.approx(-100 / 3)
    assert p1.tl_sstr_change == pytest.approx(-42.0) and p1.tl_sstr_change_pct == pytest.approx(-100 * 42 / 90)
    assert "missed by the reader" in p1["warnings"] and p1.days_from_baseline == 90
    # FU2: A (6 x 6) = 6 mL, 36; C has no volume: lower bounds, changes left empty
    assert (p2.n_lesions, p2.n_new, p2.n_disappeared, p2.n_persisting) == (2, 0, 1, 2)
    assert p2.sstr_tv_ml == pytest.approx(6.0) and p2.tl_sstr == pytest.approx(36.0)
    assert p2.sstr_lesions_without_volume == 1 and "lower bounds" in p2["warnings"]
    assert math.isnan(p2.sstr_tv_change_ml) and math.isnan(p2.tl_sstr_change_from_baseline_pct)
    assert p0.percist == "" or pd.isna(p0.percist)  # PERCIST is for FDG only


def test_a_call_change_in_the_sstr_sums_is_said():
    """A stable lesion read equivocal at baseline and positive at FU1 (the same 5 mL, SUVmean 6) doubles SSTR-TV
    (5 -> 10 mL with the other positive lesion's 5 mL): the row says the change is one of calls, naming the lesion."""
    t, c = [], []
    _finding(t, c, "P2", "S0", "baseline", 0, "L01", "A", mtv=5, mean=6)
    _finding(t, c, "P2", "S0", "baseline", 0, "L02", "B", mtv=5, mean=6, call="equivocal")
    _finding(t, c, "P2", "S1", "FU1", 90, "L01", "A", mtv=5, mean=6)
    _finding(t, c, "P2", "S1", "FU1", 90, "L02", "B", mtv=5, mean=6)
    result = fu.follow_up(*_frames(t, c))
    p1 = _patient(result, "FU1", "P2")
    assert p1.sstr_tv_change_pct == pytest.approx(100.0)
    assert "call changed (B now positive)" in p1["warnings"] and "not of tumour" in p1["warnings"]
    assert "call changed" not in _patient(result, "baseline", "P2")["warnings"]


# -- PERCIST ------------------------------------------------------------------------------------------------------

def _fdg_pair(patient, base, follow, *, liver=(2.0, 2.0), sd=0.3, new=None, suv_type="lbmjanma", extra=None,
              others=None):
    """An FDG patient at baseline (day 0) and FU1 (day 60): target lesion T1 with SULpeak ``base`` -> ``follow``
    (None: not found at FU1), ``new`` the SULpeak of a new positive lesion N1 at FU1, ``others`` (base, follow) of a
    second lesion T2."""
    t, c = [], []
    kw = dict(tracer="fdg", liver_sd=sd, suv_type=suv_type, **(extra or {}))
    _finding(t, c, patient, "B", "baseline", 0, "L01", "T1", suv_peak=base, liver=liver[0], **kw)
    if others:
        _finding(t, c, patient, "B", "baseline", 0, "L02", "T2", suv_peak=others[0], liver=liver[0], **kw)
    if follow is None and not new and not others:
        _read(t, patient, "F", "FU1", 60, liver=liver[1], liver_sd=sd, suv_type=suv_type, **(extra or {}))
    if follow is not None:
        _finding(t, c, patient, "F", "FU1", 60, "L01", "T1", suv_peak=follow, liver=liver[1], **kw)
    if others:
        _finding(t, c, patient, "F", "FU1", 60, "L02", "T2", suv_peak=others[1], liver=liver[1], **kw)
    if new:
        _finding(t, c, patient, "F", "FU1", 60, "L09", "N1", suv_peak=new, liver=liver[1], **kw)
    return _patient(fu.follow_up(*_frames(t, c)), "FU1", patient)


def test_percist_pmr_needs_30_percent_and_0_8_sul():
    # liver SULmean 2.0, SD 0.3: measurable from 1.5 x 2.0 + 2 x 0.3 = 3.6 SUL
    r = _fdg_pair("P", 10.0, 6.5)  # -3.5 SUL, -35 %
    assert r.percist == "PMR" and r.measurable_threshold_sul == pytest.approx(3.6)
    assert r.sul_peak_change == pytest.approx(-3.5) and r.sul_peak_change_pct == pytest.approx(-35.0)
    assert r.liver_comparable and r.sul_formula == "Janmahasatian"
    # -30 % but only -0.75 SUL (liver 1.0, SD 0.1: measurable from 1.7): the relative rule alone is not PERCIST
    r = _fdg_pair("P", 2.5, 1.75, liver=(1.0, 1.0), sd=0.1)
    assert r.percist == "SMD" and r.sul_peak_change == pytest.approx(-0.75)
    # exactly -30 % and -0.9 SUL: PMR ("a minimum of 30 %", "at least 0.8")
    assert _fdg_pair("P", 3.0, 2.1, liver=(1.0, 1.0), sd=0.1).percist == "PMR"


def test_percist_pmd_smd_cmr():
    r = _fdg_pair("P", 5.0, 7.0)  # +2.0 SUL, +40 %
    assert r.percist == "PMD" and r.sul_peak_change_pct == pytest.approx(40.0)
    assert _fdg_pair("P", 10.0, 12.9).percist == "SMD"  # +29 %: not more than 30 %
    assert _fdg_pair("P", 10.0, 8.0).percist == "SMD"  # -20 %
    r = _fdg_pair("P", 8.0, 1.9)  # below the liver SULmean 2.0
    assert r.percist == "CMR" and r.target_sul_peak == pytest.approx(1.9)
    r = _fdg_pair("P", 8.0, None)  # nothing found at FU1 (a read without findings)
    assert r.percist == "CMR" and "no finding" in r.percist_reason and r.n_disappeared == 1
    # the target falls by 50 % but T2 rises 4 -> 6 (+2 SUL, +50 %): PMR excluded
    r = _fdg_pair("P", 10.0, 5.0, others=(4.0, 6.0))
    assert r.percist == "SMD" and "T2" in r.percist_reason
    # the hottest lesion changes: 10 (T1) -> T2 at 6.0 is the target now, T1 5.0: -40 %, -4 SUL
    assert r.target_track_id == "T2" and r.sul_peak_change == pytest.approx(-4.0)


def test_percist_new_lesion_is_pmd():
    r = _fdg_pair("P", 8.0, 4.0, new=5.0)  # the target falls 50 %, but a new FDG-avid lesion appears
    assert r.percist == "PMD" and r.new_avid_lesions == "N1" and "new FDG-avid" in r.percist_reason
    assert r.n_new == 1


def test_percist_not_assessable_and_liver_check():
    r = _fdg_pair("P", 3.0, 1.0)  # baseline 3.0 < 3.6: not measurable
    assert r.percist == "not assessable" and "no measurable lesion at baseline" in r.percist_reason
    # SUVbw without height and sex: nothing guessed, the way to SUL said
    r = _fdg_pair("P", 10.0, 6.5, suv_type="bw", extra={"suv_weight_kg": "80"})
    assert r.percist == "not assessable" and "height_m, sex" in r.percist_reason
    assert "netpet quantify --type lbmjanma" in r.percist_reason
    # ... but a new avid lesion is PMD all the same (a count, no SUL needed), the missing SUL said
    r = _fdg_pair("P", 10.0, 6.5, suv_type="bw", new=5.0)
    assert r.percist == "PMD" and "SULpeak not assessed" in r.percist_reason
    # SUVbw with weight, height and sex: SUL = SUVbw x LBM / weight (Janmahasatian, male, 80 kg, 1.80 m)
    factor = body.lbm_janmahasatian_kg(80.0, 180.0, "M") / 80.0
    assert factor == pytest.approx(9270 / (6680 + 216 * 80 / 1.8 ** 2), rel=1e-12)  # 0.7716...
    r = _fdg_pair("P", 10.0, 6.5, suv_type="bw", extra={"suv_weight_kg": "80", "height_m": "1.80", "sex": "M"})
    assert r.percist == "PMR" and r.sul_peak_change == pytest.approx(-3.5 * factor)
    assert r.liver_sul_mean == pytest.approx(2.0 * factor) and r.measurable_threshold_sul == pytest.approx(3.6 * factor)
    # body surface area cannot become SUL
    assert _fdg_pair("P", 10.0, 6.5, suv_type="bsa").percist == "not assessable"
    # liver 2.0 -> 2.5 SUL (+0.5, +25 %): beyond 20 % and 0.3 SUL, flagged; the category is still given
    r = _fdg_pair("P", 10.0, 6.5, liver=(2.0, 2.5))
    assert r.percist == "PMR" and not r.liver_comparable and r.liver_sul_change_pct == pytest.approx(25.0)
    assert "may not be comparable" in r["warnings"]
    # 2.0 -> 2.25 (+12.5 %, +0.25 SUL): comparable
    assert _fdg_pair("P", 10.0, 6.5, liver=(2.0, 2.25)).liver_comparable


def test_sul_factor_rules():
    assert fu.sul_factor("lbmjanma")[:2] == (1.0, "Janmahasatian")
    assert fu.sul_factor("lbm")[:2] == (1.0, "James (128)")  # NETPET's lbm, not DICOM's LBM (Morgan)
    assert fu.sul_factor("LBMJANMA")[:2] == (1.0, "Janmahasatian")
    factor, _, reason = fu.sul_factor("bw", 80.0, None, "M")
    assert math.isnan(factor) and "without height_m" in reason
    assert "body surface area" in fu.sul_factor("bsa")[2]
    assert fu.sul_factor("bw", 60.0, 1.65, "F")[0] == pytest.approx(
        9270 / (8780 + 244 * 60 / 1.65 ** 2), rel=1e-12)


def test_baseline_row_of_fdg():
    t, c = [], []
    _finding(t, c, "P", "B", "baseline", 0, "L01", "T1", tracer="fdg", suv_peak=5.0)
    _finding(t, c, "P", "F", "FU1", 60, "L01", "T1", tracer="fdg", suv_peak=4.0)
    r = _patient(fu.follow_up(*_frames(t, c)), "baseline", "P")
    assert r.percist == "baseline" and r.target_sul_peak == 5.0 and r.percist_reason == "measurable"


# -- time order and refusals -----------------------------------------------------------------------------------------

def test_order_by_days_then_labels():
    reads = [{"session_id": "b", "time_point": "FU1", "days_from_baseline": 90.0},
             {"session_id": "a", "time_point": "", "days_from_baseline": 0.0},
             {"session_id": "c", "time_point": "restaging", "days_from_baseline": 200.0}]
    assert [r["session_id"] for r in fu.order_time_points(reads, "x")] == ["a", "b", "c"]
    no_days = [{"session_id": s, "time_point": tp, "days_from_baseline": None}
               for s, tp in (("z", "FU2"), ("y", "baseline"), ("x", "FU1"))]
    assert [r["session_id"] for r in fu.order_time_points(no_days, "x")] == ["y", "x", "z"]


@pytest.mark.parametrize("reads, message", [
    ([("a", "", None), ("b", "", None)], "are all time point baseline"),
    ([("a", "baseline", None), ("b", "after PRRT", None)], "session b .*after PRRT.* has no days_from_baseline"),
    ([("a", "baseline", 0.0), ("b", "FU1", None), ("c", "restaging", None)], "session c"),
    ([("a", "baseline", 100.0), ("b", "FU1", 10.0)], "contradict each other"),
    ([("a", "x", 5.0), ("b", "y", 5.0)], "both on day 5"),
])
def test_order_refusals(reads, message):
    with pytest.raises(fu.FollowUpRefusal, match=message):
        fu.order_time_points([{"session_id": s, "time_point": tp, "days_from_baseline": d} for s, tp, d in reads],
                             "patient P1 (dotatate PET/CT, reader r1)")


def test_refusals_name_the_row():
    t, c = [], []
    _finding(t, c, "P1", "S0", "baseline", 0, "L01", "A")
    _finding(t, c, "P1", "S1", "FU1", 90, "L01", "A")
    table, corr = _frames(t, c)
    with pytest.raises(fu.FollowUpError, match="The study table lacks the column.s. mtv_ml; export lesions"):
        fu.follow_up(table.drop(columns=["mtv_ml"]), corr)
    with pytest.raises(fu.FollowUpError, match="The correspondence lacks the column.s. track_id; write it with netpet"):
        fu.follow_up(table, corr.drop(columns=["track_id"]))
    with pytest.raises(fu.FollowUpError, match=r"study table line 3: finding L01 of patient P1 session S1 reader r1 "
                                               r"has no row in the correspondence; run netpet match"):
        fu.follow_up(table, corr.iloc[:1])
    bad = corr.copy()
    bad.loc[1, "track_id"] = ""
    with pytest.raises(fu.FollowUpError, match="correspondence line 3: finding L01 .* empty track_id"):
        fu.follow_up(table, bad)
    bad = corr.copy()
    bad.loc[0, "status"] = "maybe"
    with pytest.raises(fu.FollowUpError, match="correspondence line 2: status is 'maybe'"):
        fu.follow_up(table, bad)
    bad = table.copy()
    bad.loc[1, "suv_max"] = "high"
    with pytest.raises(fu.FollowUpError, match="study table line 3: column suv_max is 'high', not a number"):
        fu.follow_up(bad, corr)
    bad = table.copy()
    bad.loc[1, "days_from_baseline"] = "-5"
    with pytest.raises(fu.FollowUpError, match="study table line 3: days_from_baseline is '-5'"):
        fu.follow_up(bad, corr)
    with pytest.raises(fu.FollowUpRefusal, match="are all time point baseline"):
        fu.follow_up(table.drop(columns=["time_point", "days_from_baseline"]), corr)
    # two findings of one session on one track; one finding twice
    t2, c2 = [], []
    _finding(t2, c2, "P1", "S0", "baseline", 0, "L01", "A")
    _finding(t2, c2, "P1", "S0", "baseline", 0, "L02", "A")
    with pytest.raises(fu.FollowUpError, match="findings L01 and L02 .* are both track A"):
        fu.follow_up(*_frames(t2, c2))
    with pytest.raises(fu.FollowUpError, match="both give finding L01"):
        fu.follow_up(table, pd.concat([corr, corr.iloc[:1]], ignore_index=True))
    # a session whose rows disagree on its time point
    bad = pd.concat([table, table.iloc[1:2].assign(lesion_id="L02", time_point="FU2")], ignore_index=True)
    with pytest.raises(fu.FollowUpError, match="column time_point of one session differs"):
        fu.follow_up(bad, pd.concat([corr, corr.iloc[1:2].assign(lesion_id="L02", track_id="B")], ignore_index=True))


def test_stale_correspondence_rows_are_left_out_and_said():
    t, c = [], []
    _finding(t, c, "P1", "S0", "baseline", 0, "L01", "A")
    _finding(t, c, "P1", "S1", "FU1", 90, "L01", "A")
    table, corr = _frames(t, c)
    extra = corr.iloc[:1].assign(lesion_id="L99", track_id="Z")
    result = fu.follow_up(table, pd.concat([corr, extra], ignore_index=True))
    assert "1 row(s) of the correspondence" in result.warnings[0] and len(result.lesions) == 2


def test_series_are_followed_apart():
    # PET/CT and PET/MR of one patient are separate series (one session per time point each)
    t, c = [], []
    for modality, session in (("PET/CT", "C"), ("PET/MR", "M")):
        _finding(t, c, "P1", session + "0", "baseline", 0, "L01", "A", modality=modality, mtv=4.0)
        _finding(t, c, "P1", session + "1", "FU1", 90, "L01", "A", modality=modality, mtv=2.0)
    result = fu.follow_up(*_frames(t, c))
    assert len(result.patients) == 4 and set(result.patients.modality) == {"PET/CT", "PET/MR"}
    assert np.allclose(result.patients.sstr_tv_change_pct.dropna(), -50.0)


def test_percist_bounds_exactly():
    # on the bounds (decimal inputs whose binary differences miss them by 1e-16): +30 % and +0.8 SUL is not PMD
    # (PMD needs more than both), -30 % and -0.8 is PMR (at least both); liver 1.0, SD 0.1: measurable from 1.7
    assert _fdg_pair("P", 2.7, 3.51, liver=(1.0, 1.0), sd=0.1).percist == "SMD"  # +0.81 SUL, +30 % exactly
    assert _fdg_pair("P", 2.7, 3.52, liver=(1.0, 1.0), sd=0.1).percist == "PMD"  # +0.82, +30.4 %
    assert _fdg_pair("P", 2.7, 1.89, liver=(1.0, 1.0), sd=0.1).percist == "PMR"  # -0.81, -30 % exactly
    assert _fdg_pair("P", 1.7, 3.0, liver=(1.0, 1.0), sd=0.1).percist == "PMD"  # baseline exactly measurable
    # liver 2.0 -> 2.3: +0.3 SUL, +15 %: still comparable (within 20 % and 0.3 SUL)
    assert _fdg_pair("P", 10.0, 6.5, liver=(2.0, 2.3)).liver_comparable


def test_confirmed_rows_count_as_what_they_confirm():
    t, c = [], []
    _finding(t, c, "P1", "S0", "baseline", 0, "L01", "A")
    _finding(t, c, "P1", "S0", "baseline", 0, "L02", "X01", status="confirmed")
    c[-1]["reference_lesion_id"] = ""  # a confirmed false positive
    _finding(t, c, "P1", "S1", "FU1", 90, "L01", "X01")
    _missed(c, "P1", "S1", "FU1", "A")
    c[-1]["status"] = "confirmed"  # a person confirmed that FU1 has no finding of A
    result = fu.follow_up(*_frames(t, c))
    a1 = _lesion(result, "A", "FU1")
    assert a1.status == "disappeared" and a1.match_status == "missed" and "false negative" in a1["warnings"]
    assert "no-reference-lesion" in _lesion(result, "X01", "baseline")["flags"]
    assert _lesion(result, "X01", "FU1").status == "persisting"


def test_percist_without_a_value_is_not_a_response():
    # an empty SUVpeak at follow-up must not read as "no lesion" (CMR): not assessable, the lesion named
    r = _fdg_pair("P", 8.0, float("nan"))
    assert r.percist == "not assessable" and "T1 have no SUVpeak" in r.percist_reason
    # no liver SD at follow-up: only the baseline's is needed (measurability); the follow-up's mean suffices
    t, c = [], []
    _finding(t, c, "P", "B", "baseline", 0, "L01", "T1", tracer="fdg", suv_peak=10.0)
    _finding(t, c, "P", "F", "FU1", 60, "L01", "T1", tracer="fdg", suv_peak=6.5, liver_sd="")
    assert _patient(fu.follow_up(*_frames(t, c)), "FU1", "P").percist == "PMR"
    t[0]["liver_suv_sd"] = ""
    r = _patient(fu.follow_up(*_frames(t, c)), "FU1", "P")
    assert r.percist == "not assessable" and "no liver SD" in r.percist_reason
