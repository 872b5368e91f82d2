"""The START decay reference, rule by rule (netpet/dicom/suv/reference.py).

Every series is the DRO of test_suv_rules (true SUVbw 1.00 / 4.00 / 0.20, activity decay-corrected
to ``case.scan``) with its timing attributes rewritten the way a scanner quirk writes them. Each
test asserts the voxel values against the truth: TOL = 1e-4 SUV (test_suv_rules: int16 rounding) on
values up to 4.00 is a relative 2.5e-5, the SUV effect of a reference 0.24 s off for F-18. The "old
rule" a test guards against is named in its docstring with the error it made.

DecayFactor is written as real scanners write it (consistent_decay_factor: the within-frame factor
included, as in the GE Discovery ST and Siemens 1094 files of shared/realdata); the synthetic writer's
own DecayFactor leaves that factor out, which makes it imply a reference after the acquisition start,
so the rules set it aside as not credible (test_decay_factor_without_the_within_frame_factor_is_set_aside).
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from netpet.dicom import dro, writer
from Testing.core.test_suv_rules import TOL, assert_pattern, consistent_decay_factor, run, t_ave


def _set_time(ds, prefix, when):
    dro.set_dt(ds, prefix, when)


def _effect(seconds, half_life_s):
    """SUV change of a reference ``seconds`` later (SUV is proportional to exp(lambda (t_ref - t_inj)))."""
    return math.expm1(math.log(2) / half_life_s * seconds)


def test_frame_reference_time_left_zero_is_not_trusted(tmp_path):
    """CPS and older Siemens leave FrameReferenceTime 0. Old rule: with the Series Time rewritten, the
    back-computation put the reference at the frame's average count-rate time, 90 s after the start of a
    180 s frame: SUV +0.95 % for F-18. Now DecayFactor decides how to read the 0: its factor,
    exp(lambda T_ave), is that of a frame starting at the reference, so FrameReferenceTime 0 counts from
    the frame start and the back-computation, confirmed, gives the true reference."""
    case = dro.Case(beds=1, frame_s=180.0)
    datasets, truth = dro.build(case)
    consistent_decay_factor(datasets, case)  # before FrameReferenceTime is zeroed: the scanner's factor
    for ds in datasets:
        ds.FrameReferenceTime = "0"
        _set_time(ds, "Series", case.scan + dt.timedelta(minutes=25))  # post-processed
    assert _effect(t_ave(180.0, case.half_life_s), case.half_life_s) == pytest.approx(0.0095, abs=5e-4)
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time == case.scan.isoformat()
    assert "counts from the frame start" in p.reference_time_rule
    assert p.reference_time_rule.endswith("confirmed by DecayFactor (0054,1321)")
    assert p.warnings == []


def test_frame_reference_time_zero_without_decay_factor_falls_back_to_acquisition(tmp_path):
    """Without DecayFactor the zero FrameReferenceTime still cannot place the reference after the
    acquisition start: the earliest acquisition (QIBA's last resort, warned as such) is used."""
    case = dro.Case(beds=1, frame_s=180.0)
    datasets, truth = dro.build(case)
    for ds in datasets:
        ds.FrameReferenceTime = "0"
        del ds.DecayFactor
        _set_time(ds, "Series", case.scan + dt.timedelta(minutes=25))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time_rule.startswith("earliest AcquisitionDate/Time")
    assert any("90 s after the earliest acquisition start" in r and "is 0, not set by the scanner" in r
               for r in p.rules)
    assert [w for w in p.warnings if "QIBA" in w] == p.warnings and len(p.warnings) == 1


def test_decay_factor_gives_the_reference_of_a_cropped_series(tmp_path):
    """The real-file case of the issue (+7.4 %): FrameReferenceTime 0, Series Time rewritten, and the
    series cropped so that its earliest acquisition is two 300 s beds after the true start. Old rule:
    the earliest acquisition, 600 s late, SUV +6.5 %. DecayFactor implies the true reference."""
    case = dro.Case(beds=3, frame_s=300.0, shape=(18, 20, 22))
    datasets, truth = dro.build(case)
    consistent_decay_factor(datasets, case)
    beds = case.bed_of_slice()
    kept = [k for k in range(len(datasets)) if beds[k] == 2]
    datasets, truth = [datasets[k] for k in kept], truth[kept]
    for ds in datasets:
        ds.FrameReferenceTime = "0"
        _set_time(ds, "Series", case.scan + dt.timedelta(minutes=40))
    assert _effect(600.0, case.half_life_s) == pytest.approx(0.0652, abs=5e-4)
    values, p = run(tmp_path, datasets)
    assert abs(values - truth).max() <= TOL
    assert p.reference_time == case.scan.isoformat()
    assert p.reference_time_rule.startswith("DecayFactor (0054,1321)")
    assert any("is not the offset its DecayFactor implies" in r and "not set by the scanner" in r for r in p.rules)
    assert p.warnings == []


def test_normal_philips_header_gives_no_warning(tmp_path):
    """A Philips whole-body header (values of a real Philips GEMINI file): one AcquisitionTime for all
    slices, ActualFrameDuration the whole scan (3597.793 s), FrameReferenceTime 1856.793 s, DecayFactor
    1.0. Old rule: the back-computation (1.2 % from the Series Time) was warned about. Now DecayFactor
    1.0 is set aside (it implies a reference after the acquisition start) and the unconfirmed
    back-computation is a rule; the Series Time, equal to the acquisition, stands."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    dro.philips(datasets, case, activity=dro.activity(case, truth))
    for ds in datasets:
        _set_time(ds, "Acquisition", case.scan)
        ds.ActualFrameDuration = 3597793
        ds.FrameReferenceTime = "1856793"
        ds.DecayFactor = "1.0"
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.warnings == []
    assert any(r.startswith("DecayFactor (0054,1321) not used") for r in p.rules)
    assert any("not confirmed by DecayFactor: not warned" in r for r in p.rules)


def test_philips_frame_reference_time_zero_gives_no_warning(tmp_path):
    """As above with FrameReferenceTime 0 and a 40 min frame: the back-computation lands T_ave = 1175 s after
    the acquisition start (+13.1 % for F-18: the size of the issue's "12.5 %" warning), which a START
    reference cannot; a rule, no warning."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    dro.philips(datasets, case, activity=dro.activity(case, truth))
    for ds in datasets:
        _set_time(ds, "Acquisition", case.scan)
        ds.ActualFrameDuration = 2400000
        ds.FrameReferenceTime = "0"
        ds.DecayFactor = "1.0"
    assert _effect(t_ave(2400.0, case.half_life_s), case.half_life_s) > 0.12
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.warnings == []
    late = f"{t_ave(2400.0, case.half_life_s):.0f} s after the earliest acquisition start"  # 1175 s
    assert any(r.startswith("cross-check: the reference back-computed") and late in r
               and "is 0, not set by the scanner" in r for r in p.rules)


@pytest.mark.parametrize("late_s", [5e-6, 0.9])
def test_series_time_a_moment_after_acquisition_is_not_post_processing(tmp_path, late_s):
    """A Series Time 5 microseconds (or 0.9 s: whole-second rounding) after the acquisition is the same
    time (TIME_RESOLUTION_S = 1 s), never "rewritten by post-processing". It is used as the reference, so
    the values may differ from the truth by its SUV effect (at most lambda x 0.9 s = 9.5e-5 relative) on
    top of the int16 TOL."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    for ds in datasets:
        _set_time(ds, "Series", case.scan + dt.timedelta(seconds=late_s))
    values, p = run(tmp_path, datasets)
    assert abs(values - truth).max() <= TOL + truth.max() * _effect(late_s, case.half_life_s)
    assert "equal to the earliest acquisition (within 1 s)" in p.reference_time_rule
    assert not any("post-processing" in text for text in p.rules + p.warnings)


def test_series_time_later_by_seconds_is_a_rule_not_a_warning(tmp_path):
    """30 s late (SUV 0.3 % for F-18): not used as the reference, said in a rule, not warned."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    for ds in datasets:
        _set_time(ds, "Series", case.scan + dt.timedelta(seconds=30))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert any("30 s after the earliest acquisition start" in r and "rewritten by post-processing" in r for r in p.rules)
    assert p.warnings == []


def test_decay_correction_datetime_disagreeing_with_decay_factor_is_not_trusted(tmp_path):
    """Even an explicit DecayCorrectionDateTime is checked against DecayFactor: 10 min early (-6.1 % in
    SUV for F-18) it loses to the Series Time, which DecayFactor confirms, and the warning says so."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    consistent_decay_factor(datasets, case)
    for ds in datasets:
        ds.DecayCorrectionDateTime = (case.scan - dt.timedelta(minutes=10)).strftime("%Y%m%d%H%M%S")
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time_rule.startswith("Series Date/Time") and "confirmed by DecayFactor" in p.reference_time_rule
    assert any(w.startswith("DecayCorrectionDateTime (0018,9701)") and "-6.1 %" in w and "Series Date/Time" in w
               for w in p.warnings)


def test_decay_correction_datetime_agreeing_with_decay_factor_wins(tmp_path):
    case = dro.Case()
    datasets, truth = dro.build(case)
    consistent_decay_factor(datasets, case)
    for ds in datasets:
        ds.DecayCorrectionDateTime = case.scan.strftime("%Y%m%d%H%M%S")
        _set_time(ds, "Series", case.scan - dt.timedelta(minutes=10))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time_rule == "DecayCorrectionDateTime (0018,9701), confirmed by DecayFactor (0054,1321)"


def test_decay_factor_without_the_within_frame_factor_is_set_aside(tmp_path):
    """A DecayFactor of exp(lambda x bed offset) (the synthetic writer's) leaves out the within-frame factor:
    it implies a reference T_ave = 60 s after the acquisition start, which no START reference is."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    lam = math.log(2) / case.half_life_s
    for ds, bed in zip(datasets, case.bed_of_slice()):
        ds.DecayFactor = writer._ds_text(math.exp(lam * bed * case.frame_s))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert any(r.startswith("DecayFactor (0054,1321) not used: it implies a reference 60 s after") for r in p.rules)


@pytest.mark.parametrize("decay_factor", [True, False])
def test_one_acquisition_time_for_every_bed(tmp_path, decay_factor):
    """GE Discovery ST (shared/realdata/STS_001) writes the series start as every bed's AcquisitionTime and
    counts FrameReferenceTime from it to each bed's start. Old rule: acquisition - FrameReferenceTime,
    one reference per bed, spread over 240 s. The frames acquired first (FrameReferenceTime 0) carry
    the reference. With DecayFactor the GE convention is confirmed; without it, assumed for GE."""
    case = dro.Case(beds=3, frame_s=120.0)
    datasets, truth = dro.build(case)
    beds = case.bed_of_slice()
    for ds, bed in zip(datasets, beds):
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        _set_time(ds, "Acquisition", case.scan)
        ds.FrameReferenceTime = writer._ds_text(bed * case.frame_s * 1000.0)
        _set_time(ds, "Series", case.scan + dt.timedelta(minutes=30))  # post-processed
        if not decay_factor:
            del ds.DecayFactor
    if decay_factor:
        consistent_decay_factor(datasets, case, ge=True)
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time == case.scan.isoformat()
    assert "every frame carries one AcquisitionTime" in p.reference_time_rule
    assert ("counts from the frame start (GE convention)" in p.reference_time_rule) == decay_factor
    assert p.warnings == []


def test_ge_convention_found_from_private_creator_when_manufacturer_is_blank(tmp_path):
    """Manufacturer blanked by anonymisation; the GEMS_PETD_01 private creator still tells the vendor, and
    so the FrameReferenceTime convention (from the frame start)."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    for ds in datasets:
        _set_time(ds, "Series", case.scan + dt.timedelta(minutes=30))
        del ds.DecayFactor
    dro.ge(datasets, case, private_scan=None)
    for ds in datasets:
        ds.Manufacturer = ""
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert "GE frame reference times count from the frame start" in p.reference_time_rule


def test_series_date_before_acquisition_date_across_midnight(tmp_path):
    """Series Date 5 March 23:59:58, every AcquisitionDate 6 March (the first bed 5 s later): a scan that
    crossed midnight, not an altered date. Old rule: nothing to fix, but the dates' difference must not
    be read as an anonymisation shift (which would move the acquisitions a day back)."""
    case = dro.Case(injection=dt.datetime(2024, 3, 5, 22, 58, 10), scan=dt.datetime(2024, 3, 5, 23, 59, 58))
    datasets, truth = dro.build(case)
    for ds in datasets:
        start = dt.datetime.strptime(ds.AcquisitionDate + ds.AcquisitionTime.split(".")[0], "%Y%m%d%H%M%S")
        _set_time(ds, "Acquisition", start + dt.timedelta(seconds=5))
        ds.FrameReferenceTime = writer._ds_text(float(ds.FrameReferenceTime) + 5000.0)
    assert {ds.AcquisitionDate for ds in datasets} == {"20240306"} and datasets[0].SeriesDate == "20240305"
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time == case.scan.isoformat()
    assert any("the scan crossed midnight" in r for r in p.rules)
    assert p.warnings == []


def test_series_date_shifted_by_anonymisation(tmp_path):
    """Series Date moved 400 days by an anonymiser, acquisition dates not: the acquisitions are re-dated
    onto the series date (a rule), the Series Time is compared with them and used."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    for ds in datasets:
        _set_time(ds, "Series", case.scan - dt.timedelta(days=400))
        rp = dro.rp(ds)
        del rp.RadiopharmaceuticalStartDateTime  # its date would not match the shifted one either
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time_rule.startswith("Series Date/Time")
    assert any("disagree by -400.0 days" in r and "moved by -400 days" in r for r in p.rules)
    assert p.warnings == []
