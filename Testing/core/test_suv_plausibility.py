"""Plausibility rules that convert (with a rule or a warning) rather than refuse; the refusals are in
test_suv_refusals.py. Each series is the DRO of test_suv_rules; expected values come from the case
parameters and the decay formula written out here (SUV is proportional to exp(lambda (t_ref - t_inj))).
Tolerance TOL = 1e-4 SUV (int16 rounding, see test_suv_rules).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from netpet.dicom import dro
from netpet.dicom.suv import Overrides
from Testing.core.test_suv_rules import TOL, assert_pattern, run


def _ga68():
    return dro.Case(nuclide="Ga-68", agent_text="Ga68-DOTATATE", agent_code=("SCT", "724025002", "Dotatate Ga^68^"))


def _scaled(truth, case, injection):
    """The truth as a series shows it when ``injection`` is used instead of the case's injection time."""
    lam = math.log(2) / case.half_life_s
    return truth * math.exp(lam * (case.injection - injection).total_seconds())


def test_implausible_datetime_does_not_displace_a_valid_time(tmp_path):
    """Ga-68: RadiopharmaceuticalStartDateTime 23:50 on the scan day (after the scan) with a valid
    StartTime 09:02:31. Old rule: the DateTime's time of day was placed on the day before, a 10 h uptake,
    SUV x 542 (x117,000 in the issue's file), with a warning only. Now the plausible StartTime wins."""
    case = _ga68()
    datasets, truth = dro.build(case)
    for ds in datasets:
        dro.rp(ds).RadiopharmaceuticalStartDateTime = "20240305235000"
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.injection_time == case.injection.isoformat()
    assert p.injection_time_rule.startswith("RadiopharmaceuticalStartTime (0018,1072)")
    assert any("RadiopharmaceuticalStartDateTime (0018,1078) 2024-03-05T23:50:00 gives an implausible uptake" in w
               for w in p.warnings)


def test_datetime_and_time_seconds_apart_agree(tmp_path):
    """20 s apart: 0.21 % in SUV for F-18, under the 1 % warning bound; the DateTime is used and a rule
    records the difference."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    for ds in datasets:
        dro.rp(ds).RadiopharmaceuticalStartTime = (case.injection + dt.timedelta(seconds=20)).strftime("%H%M%S")
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.injection_time_rule == "RadiopharmaceuticalStartDateTime (0018,1078)"
    assert any("differs from RadiopharmaceuticalStartDateTime (0018,1078) by +20 s, -0.21 % in SUV" in r for r in p.rules)
    assert p.warnings == []


def test_injection_override_confirms_a_long_uptake(tmp_path):
    """A 10 h Ga-68 uptake (9 half-lives) is refused from the header (test_suv_refusals) but used when the
    reader gives it as --injection-time, with a warning."""
    case = _ga68()
    datasets, truth = dro.build(case)
    injection = dt.datetime(2024, 3, 4, 23, 50, 0)
    values, p = run(tmp_path, datasets, overrides=Overrides(injection_time=injection))
    assert np.abs(values - _scaled(truth, case, injection)).max() <= TOL * 542  # the x542 scales the int16 error too
    assert any("9.1 half-lives of Ga-68" in w and "used as the injection-time override confirms it" in w
               for w in p.warnings)


def test_injection_override_after_the_reference(tmp_path):
    """An injection 2 h after the decay reference: no dynamic scan starts that early; confirmed by the
    override, used with a warning."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    injection = case.scan + dt.timedelta(hours=2)
    values, p = run(tmp_path, datasets, overrides=Overrides(injection_time=injection))
    assert np.abs(values - _scaled(truth, case, injection)).max() <= TOL
    assert any("the injection lies 120 min after the decay reference" in w for w in p.warnings)


@pytest.mark.parametrize("after_s,warned", [(30, False), (300, True)])
def test_injection_just_after_the_reference(tmp_path, after_s, warned):
    """A dynamic scan starts at (or just before) the injection. 30 s (SUV -0.32 % for F-18 against an
    injection at the reference) is a rule; 5 min (-3.1 %) is warned: a clock or date may be wrong."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    injection = case.scan + dt.timedelta(seconds=after_s)
    for ds in datasets:
        dro.rp(ds).RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S")
        dro.rp(ds).RadiopharmaceuticalStartTime = injection.strftime("%H%M%S")
    values, p = run(tmp_path, datasets)
    assert np.abs(values - _scaled(truth, case, injection)).max() <= TOL
    text = f"injection is {after_s} s after the reference time"
    assert any(text in w for w in p.warnings) == warned
    assert any(text in r for r in p.rules) == (not warned)


def test_half_life_override_against_the_named_nuclide_is_used_with_a_warning(tmp_path):
    """--half-life confirms a half-life the named nuclide contradicts (here Ga-68's on an F-18 series)."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    values, p = run(tmp_path, datasets, overrides=Overrides(half_life_s=4062.6))
    uptake = (case.scan - case.injection).total_seconds()
    expected = truth * math.exp(math.log(2) * uptake * (1 / 4062.6 - 1 / case.half_life_s))
    assert np.abs(values - expected).max() <= TOL
    assert p.half_life_s == 4062.6 and p.half_life_source == "override"
    assert any("the half-life override 4062.6 s disagrees with F-18 (6586.2 s)" in w for w in p.warnings)


def test_header_half_life_within_tolerance_is_used(tmp_path):
    """6588 s on an F-18 series (as GE writes it: 0.03 % off the 6586.2 s reference) is the header's value."""
    case = dro.Case()
    datasets, truth = dro.build(case)
    for ds in datasets:
        dro.rp(ds).RadionuclideHalfLife = "6588"
    values, p = run(tmp_path, datasets)
    uptake = (case.scan - case.injection).total_seconds()
    expected = truth * math.exp(math.log(2) * uptake * (1 / 6588 - 1 / case.half_life_s))
    assert np.abs(values - expected).max() <= TOL
    assert p.half_life_s == 6588 and p.warnings == []


def test_height_override_under_the_bound_is_used_with_a_warning(tmp_path):
    case = dro.Case()
    datasets, _ = dro.build(case)
    _, p = run(tmp_path, datasets, suv_type="bsa", overrides=Overrides(height_m=0.25))
    assert p.height_m == 0.25 and p.height_source == "override"
    assert any("the height override 0.25 m lies under the 0.3 m" in w for w in p.warnings)


def test_series_differing_only_in_the_radiopharmaceutical_are_read_apart():
    """The series-level reading is cached by a fingerprint of the header; the fingerprint must see inside
    RadiopharmaceuticalInformationSequence, or a second series with another dose would reuse the first's
    (found by the property suite: an unmutated series refused with a dose of a previous example)."""
    from netpet.dicom.pet_header import read_pet_header

    case = dro.Case(shape=(2, 4, 4), beds=1)
    first, _ = dro.build(case)
    second, _ = dro.build(case)
    for ds in second:
        dro.rp(ds).RadionuclideTotalDose = "-4.8"
    header_1 = read_pet_header([(f"A{k}", ds) for k, ds in enumerate(first)], "first")
    header_2 = read_pet_header([(f"B{k}", ds) for k, ds in enumerate(second)], "second")
    assert header_1.radiopharmaceutical.dose_raw == case.dose_bq
    assert header_2.radiopharmaceutical.dose_raw == -4.8
