"""Every SUV rule of the manual, each on a PET series built here with pydicom.

Each test encodes the same true SUVbw pattern (background 1.00, hot 4.00, cold 0.20) the
way the rule under test expects it to be stored, converts the series with NETPET and asserts
the result voxel by voxel. Expected values come from the case parameters and the manual's
formulas written out in this file, independently of netpet.dicom.suv.

Tolerance: 1e-4 SUV. Every test encodes the exact values once, as int16 with a per-slice slope
whose maximum uses at least 70 % of the int16 range, so a count is worth at most
4.0 / (0.7 x 32767) = 1.74e-4 SUV and rounding contributes at most 8.7e-5 SUV; float32 output
adds under 5e-7.
"""

from __future__ import annotations

import copy
import datetime as dt
import math

import numpy as np
import pytest
import SimpleITK as sitk

from netpet.dicom import convert_to_suv, dro, writer
from netpet.dicom.suv import Overrides
from netpet.errors import DicomInputError, SUVConversionError

TOL = 1e-4


# -- independent formulas (manual, section "Units = GML"; W kg, H cm) -----------------------------

def lbm_james128(w, h, sex):
    m = 1.10 * w - 128 * (w / h) ** 2
    f = 1.07 * w - 148 * (w / h) ** 2
    return {"M": m, "F": f, "O": (m + f) / 2}[sex]


def lbm_morgan(w, h, sex):
    m = 1.10 * w - 120 * (w / h) ** 2
    f = 1.07 * w - 148 * (w / h) ** 2
    return {"M": m, "F": f, "O": (m + f) / 2}[sex]


def lbm_janma(w, h, sex):
    bmi = w / (h / 100) ** 2
    m = 9270 * w / (6680 + 216 * bmi)
    f = 9270 * w / (8780 + 244 * bmi)
    return {"M": m, "F": f, "O": (m + f) / 2}[sex]


def ibw(h, sex):
    m = 48.0 + 1.06 * (h - 152)
    f = 45.5 + 0.91 * (h - 152)
    return {"M": m, "F": f, "O": (m + f) / 2}[sex]


def bsa(w, h):
    return 0.007184 * h ** 0.725 * w ** 0.425


def t_ave(duration_s, half_life_s):
    lam = math.log(2) / half_life_s
    return math.log(lam * duration_s / (1 - math.exp(-lam * duration_s))) / lam


# -- helpers -----------------------------------------------------------------------------------------

def run(tmp_path, datasets, suv_type="bw", overrides=None, name="pet"):
    paths = writer.save_datasets(datasets, str(tmp_path / name))
    result = convert_to_suv(paths, suv_type, overrides, jobs=1)
    return sitk.GetArrayFromImage(result.image), result.provenance


def assert_pattern(values, truth, tol=TOL):
    assert values.dtype == np.float32
    assert values.shape == truth.shape
    error = np.abs(values.astype(np.float64) - truth)
    assert error.max() <= tol, f"max error {error.max():.2e} at {np.unravel_index(error.argmax(), error.shape)}"
    # the DRO statistics of the manual: maximum, minimum and median in the body
    body = truth > 0
    assert abs(values[body].max() - dro.HOT) <= tol
    assert abs(values[body].min() - dro.COLD) <= tol
    assert abs(np.median(values[body]) - dro.BACKGROUND) <= tol


def rewrite(datasets, case, truth, function):
    """Encode function(exact activity of slice k in Bq/mL, k, ds) as each slice's values."""
    exact = dro.activity(case, truth)
    for k, ds in enumerate(datasets):
        dro.reencode(ds, function(exact[k], k, ds))


@pytest.fixture
def case():
    return dro.Case()


@pytest.fixture
def built(case):
    datasets, truth = dro.build(case)
    return datasets, truth


# -- rescale slope and intercept -------------------------------------------------------------------

def test_baseline_bqml_start(tmp_path, built):
    datasets, truth = built
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.units == "BQML" and p.decay_correction == "START"
    assert p.reference_time == "2024-03-05T10:04:55"


def test_slope_applied_per_slice(tmp_path, built, case):
    datasets, truth = built
    dro.vary_slopes(datasets, dro.activity(case, truth))
    slopes = {float(ds.RescaleSlope) for ds in datasets}
    assert len(slopes) == len(datasets)  # every slice its own slope
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.rescale_slope["distinct"] == len(datasets)
    # a reader applying the first slice's slope everywhere would be off by up to 2x here
    assert max(slopes) / min(slopes) > 1.8


def test_nonzero_intercept_refused(tmp_path, built):
    datasets, _ = built
    datasets[4].RescaleIntercept = "12"
    with pytest.raises(SUVConversionError, match=r"RescaleIntercept \(0028,1052\) is 12"):
        run(tmp_path, datasets)


def test_missing_slope_refused(tmp_path, built):
    datasets, _ = built
    del datasets[2].RescaleSlope
    with pytest.raises(SUVConversionError, match=r"RescaleSlope \(0028,1053\) is missing"):
        run(tmp_path, datasets)


# -- units -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suv_type_tag", ["", "BW"])
def test_gml_bw(tmp_path, built, suv_type_tag, case):
    datasets, truth = built
    rewrite(datasets, case, truth, lambda v, k, ds: v * case.bw_factor())
    for ds in datasets:
        ds.Units = "GML"
        if suv_type_tag:
            ds.SUVType = suv_type_tag
        del ds.PatientWeight  # SUVbw from SUVbw needs no weight
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.stored_suv_type == "BW" and p.weight_kg is None


@pytest.mark.parametrize("sex", ["M", "F", "O"])
@pytest.mark.parametrize("stored,formula", [
    ("LBMJAMES128", lbm_james128), ("LBMJANMA", lbm_janma), ("LBM", lbm_morgan), ("IBW", None),
])
def test_gml_lean_and_ideal_to_bw(tmp_path, case, sex, stored, formula):
    case = dro.Case(sex=sex, weight_kg=88.0, height_m=1.81)
    datasets, truth = dro.build(case)
    h = case.height_m * 100
    mass = formula(case.weight_kg, h, sex) if formula else ibw(h, sex)
    rewrite(datasets, case, truth, lambda v, k, ds: v * case.bw_factor() * mass / case.weight_kg)
    for ds in datasets:
        ds.Units = "GML"
        ds.SUVType = stored
        ds.PatientSex = sex
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.stored_suv_type == stored
    if sex == "O":
        assert any("mean of the male and female" in r for r in p.rules)


def test_cm2ml_bsa_to_bw(tmp_path, case):
    datasets, truth = dro.build(case)
    area_cm2 = bsa(case.weight_kg, case.height_m * 100) * 1e4
    rewrite(datasets, case, truth, lambda v, k, ds: v * case.bw_factor() * area_cm2 / (case.weight_kg * 1000))
    for ds in datasets:
        ds.Units = "CM2ML"
        ds.SUVType = "BSA"
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.stored_suv_type == "BSA"


def test_cnts_philips_activity_scale_factor(tmp_path, case):
    datasets, truth = dro.build(case)
    dro.philips(datasets, case, acsf=True, suvsf=False, activity=dro.activity(case, truth))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert any("(7053,1009)" in r for r in p.rules)


def test_cnts_philips_suv_scale_factor(tmp_path, case):
    datasets, truth = dro.build(case)
    dro.philips(datasets, case, acsf=False, suvsf=True, activity=dro.activity(case, truth))
    for ds in datasets:  # the scanner's SUV factor stands alone: no dose or times needed
        del ds.RadiopharmaceuticalInformationSequence
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert any("(7053,1000)" in r for r in p.rules) and p.stored_suv_type == "BW"


def test_cnts_both_factors_prefers_activity_and_cross_checks(tmp_path, case):
    datasets, truth = dro.build(case)
    dro.philips(datasets, case, suvsf_error=1.03, activity=dro.activity(case, truth))  # scanner SUV factor 3 % off the header
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert any("disagrees" in w and "3.0 %" in w for w in p.warnings)
    datasets, truth = dro.build(case)
    dro.philips(datasets, case, activity=dro.activity(case, truth))
    _, p = run(tmp_path, datasets, name="agree")
    assert any("agrees with the computed SUVbw" in r for r in p.rules)


def test_philips_factor_without_private_creator(tmp_path, case):
    datasets, truth = dro.build(case)
    dro.philips(datasets, case, acsf=False, suvsf=True, creator=False, activity=dro.activity(case, truth))
    assert (0x7053, 0x0010) not in datasets[0]
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)


def test_cnts_without_factors_via_cps_dose_calibrated(tmp_path, case):
    datasets, truth = dro.build(case)
    voxel_ml = case.spacing[0] * case.spacing[1] * case.spacing[2] / 1000.0
    frame_s = case.frame_s
    rewrite(datasets, case, truth, lambda v, k, ds: v * voxel_ml * frame_s)  # counts in the frame
    for ds in datasets:
        ds.Units = "CNTS"
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DCAL", "NORM"]
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert any("ActualFrameDuration" in r for r in p.rules)


def test_cps_with_dose_calibration_factor(tmp_path, case):
    datasets, truth = dro.build(case)
    voxel_ml = case.spacing[0] * case.spacing[1] * case.spacing[2] / 1000.0
    dcf = 2.5
    rewrite(datasets, case, truth, lambda v, k, ds: v * voxel_ml / dcf)
    for ds in datasets:
        ds.Units = "CPS"
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "NORM"]
        ds.DoseCalibrationFactor = str(dcf)
    values, _ = run(tmp_path, datasets)
    assert_pattern(values, truth)


def test_cps_without_calibration_refused(tmp_path, case):
    datasets, _ = dro.build(case)
    for ds in datasets:
        ds.Units = "CPS"
        del ds.DoseCalibrationFactor
    with pytest.raises(SUVConversionError, match=r"neither dose calibrated.*DoseCalibrationFactor \(0054,1322\)"):
        run(tmp_path, datasets)


def test_cps_not_attenuation_corrected_refused(tmp_path, case):
    datasets, _ = dro.build(case)
    for ds in datasets:
        ds.Units = "CPS"
        ds.CorrectedImage = ["DECY", "DCAL"]
    with pytest.raises(SUVConversionError, match="lacks ATTN"):
        run(tmp_path, datasets)


@pytest.mark.parametrize("units", ["PROPCNTS", "PROPCPS", "1CM", "MLMING"])
def test_unconvertible_units_refused(tmp_path, built, units):
    datasets, _ = built
    for ds in datasets:
        ds.Units = units
    with pytest.raises(SUVConversionError, match=rf"Units \(0054,1001\) is {units}"):
        run(tmp_path, datasets)


def test_missing_units_refused(tmp_path, built):
    datasets, _ = built
    for ds in datasets:
        del ds.Units
    with pytest.raises(SUVConversionError, match=r"Units \(0054,1001\) is missing"):
        run(tmp_path, datasets)


def test_units_differing_between_files_refused(tmp_path, built):
    datasets, _ = built
    datasets[5].Units = "CNTS"
    with pytest.raises(SUVConversionError, match=r"Units \(0054,1001\) differs between the files"):
        run(tmp_path, datasets)


# -- weight and dose ---------------------------------------------------------------------------------

def test_weight_in_grams(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        ds.PatientWeight = str(case.weight_kg * 1000)
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.weight_kg == pytest.approx(case.weight_kg)
    assert any("grams" in w for w in p.warnings)


@pytest.mark.parametrize("value", [None, "0"])
def test_missing_or_zero_weight_refused_then_overridden(tmp_path, built, case, value):
    datasets, truth = built
    for ds in datasets:
        if value is None:
            del ds.PatientWeight
        else:
            ds.PatientWeight = value
    with pytest.raises(SUVConversionError, match=r"PatientWeight \(0010,1030\) is .*--weight KG"):
        run(tmp_path, datasets)
    values, p = run(tmp_path, datasets, overrides=Overrides(weight_kg=case.weight_kg), name="fixed")
    assert_pattern(values, truth)
    assert p.weight_source == "override"


def test_dose_in_mbq(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        dro.rp(ds).RadionuclideTotalDose = str(case.dose_bq / 1e6)
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.dose_bq == pytest.approx(case.dose_bq)
    assert any("megabecquerels" in r for r in p.rules)


@pytest.mark.parametrize("value", [None, "-185000000"])
def test_missing_or_negative_dose_refused_then_overridden(tmp_path, built, case, value):
    datasets, truth = built
    for ds in datasets:
        if value is None:
            del dro.rp(ds).RadionuclideTotalDose
        else:
            dro.rp(ds).RadionuclideTotalDose = value
    with pytest.raises(SUVConversionError, match=r"RadionuclideTotalDose \(0018,1074\) is .*--dose MBQ"):
        run(tmp_path, datasets)
    values, _ = run(tmp_path, datasets, overrides=Overrides(dose_bq=case.dose_bq), name="fixed")
    assert_pattern(values, truth)


# -- decay correction ----------------------------------------------------------------------------------

def test_decay_admin(tmp_path, built, case):
    datasets, truth = built
    lam = math.log(2) / case.half_life_s
    uptake = (case.scan - case.injection).total_seconds()
    rewrite(datasets, case, truth, lambda v, k, ds: v * math.exp(lam * uptake))  # activity at administration
    for ds in datasets:
        ds.DecayCorrection = "ADMIN"
        rp = dro.rp(ds)
        del rp.RadiopharmaceuticalStartTime, rp.RadiopharmaceuticalStartDateTime  # ADMIN needs no times
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.decay_correction == "ADMIN" and p.injection_time is None


def test_decay_none_per_slice_acquisition_times(tmp_path, case):
    """NONE: each bed at its own time; SUV = U W/D (lT/(1-e^-lT)) e^(l (t_acq - t_adm))."""
    case = dro.Case(beds=4)
    datasets, truth = dro.build(case)
    lam = math.log(2) / case.half_life_s
    acquisition_times = set()

    def undo_decay_correction(v, k, ds):
        t_acq = dt.datetime.strptime(ds.AcquisitionDate + ds.AcquisitionTime.split(".")[0], "%Y%m%d%H%M%S")
        acquisition_times.add(t_acq)
        t = float(ds.ActualFrameDuration) / 1000.0
        factor = (lam * t / (1 - math.exp(-lam * t))) * math.exp(lam * (t_acq - case.injection).total_seconds())
        # stored U such that U * W/D * factor = true SUV
        return v * case.bw_factor() / (case.weight_kg * 1000 / case.dose_bq * factor)

    rewrite(datasets, case, truth, undo_decay_correction)
    for ds in datasets:
        ds.DecayCorrection = "NONE"
        ds.CorrectedImage = ["ATTN", "SCAT", "NORM"]
    assert len(acquisition_times) == 4
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.factor is None and len(set(p.factor_per_frame)) == 4


def test_decay_none_without_frame_duration_refused(tmp_path, built):
    datasets, _ = built
    for ds in datasets:
        ds.DecayCorrection = "NONE"
    del datasets[3].ActualFrameDuration
    with pytest.raises(SUVConversionError, match=r"ActualFrameDuration \(0018,1242\) of .* is missing"):
        run(tmp_path, datasets)


@pytest.mark.parametrize("value", [None, "NOPE"])
def test_decay_correction_missing_or_unknown_refused(tmp_path, built, value):
    datasets, _ = built
    for ds in datasets:
        if value is None:
            del ds.DecayCorrection
        else:
            ds.DecayCorrection = value
    with pytest.raises(SUVConversionError, match=r"DecayCorrection \(0054,1102\) is"):
        run(tmp_path, datasets)


def test_start_series_time_before_acquisition_is_used(tmp_path, built, case):
    """Siemens multi-bed: SeriesTime = start of bed 1, later beds acquired later."""
    datasets, truth = built
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert "not after the earliest acquisition" in p.reference_time_rule or "equal" in p.reference_time_rule


def test_start_series_time_after_acquisition_back_computed(tmp_path, built, case):
    """Series Time rewritten by post-processing: reference back-computed from frame timing."""
    datasets, truth = built
    for ds in datasets:
        dro.set_dt(ds, "Series", case.scan + dt.timedelta(minutes=42))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time_rule.startswith("back-computed")
    # the Series Time is not used, so it changes no SUV: a rule says why, no warning
    assert any("Series Date/Time" in r and "rewritten by post-processing" in r for r in p.rules)
    assert not any("Series" in w for w in p.warnings)


def test_start_back_computation_needs_the_formula(tmp_path, case):
    """Every bed's acquisition time differs: only the T_ave formula recovers one reference."""
    case = dro.Case(beds=3, frame_s=300.0)
    datasets, truth = dro.build(case)
    # scanner started the series 20 s before the first bed (table motion): series time is earlier
    # than any acquisition time but it is the decay reference; first bed acquisition = start + 20 s
    for ds in datasets:
        t = dt.datetime.strptime(ds.AcquisitionDate + ds.AcquisitionTime.split(".")[0], "%Y%m%d%H%M%S")
        dro.set_dt(ds, "Acquisition", t + dt.timedelta(seconds=20))
        ds.FrameReferenceTime = writer._ds_text(float(ds.FrameReferenceTime) + 20000.0)
        dro.set_dt(ds, "Series", case.scan + dt.timedelta(hours=1))  # post-processed
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)  # the earliest acquisition (start + 20 s) would give 0.2 % too high
    assert p.reference_time == case.scan.isoformat()


def test_start_ge_private_scan_datetime(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        dro.set_dt(ds, "Series", case.scan + dt.timedelta(minutes=30))
    dro.ge(datasets, case, private_scan=case.scan)
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert "(0009,100D)" in p.reference_time_rule


def test_start_ge_without_private_tag_uses_frame_start_convention(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        dro.set_dt(ds, "Series", case.scan + dt.timedelta(minutes=30))
    dro.ge(datasets, case, private_scan=None)  # GE frame reference time = offset of the frame start
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert "GE frame reference times count from the frame start" in p.reference_time_rule


def test_start_siemens_private_decay_datetime(tmp_path, built, case):
    datasets, truth = built
    dro.siemens(datasets, case)
    for ds in datasets:
        dro.set_dt(ds, "Series", case.scan + dt.timedelta(minutes=30))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert "(0071,1022)" in p.reference_time_rule


def test_start_earliest_acquisition_as_last_resort(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        dro.set_dt(ds, "Series", case.scan + dt.timedelta(minutes=30))
        del ds.FrameReferenceTime
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time_rule.startswith("earliest AcquisitionDate/Time")
    assert any("QIBA" in w for w in p.warnings)


def test_start_no_usable_time_refused(tmp_path, built):
    datasets, _ = built
    for ds in datasets:
        del ds.SeriesTime, ds.AcquisitionTime, ds.FrameReferenceTime
    with pytest.raises(SUVConversionError, match="reference time"):
        run(tmp_path, datasets)


def test_decay_correction_datetime_attribute_preferred(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        ds.DecayCorrectionDateTime = case.scan.strftime("%Y%m%d%H%M%S")
        dro.set_dt(ds, "Series", case.scan - dt.timedelta(minutes=10))  # wrong but earlier: not used
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time_rule == "DecayCorrectionDateTime (0018,9701)"


def consistent_decay_factor(datasets, case, ge=False):
    """DecayFactor as real scanners write it: exp(lambda (t_ave - t_ref)), the within-frame factor included
    (checked on GE Discovery ST and Siemens 1094 files in shared/realdata). FrameReferenceTime counts to the
    average count-rate time (standard) or, with ``ge``, from the frame start."""
    lam = math.log(2) / case.half_life_s
    for ds in datasets:
        offset_s = float(ds.FrameReferenceTime) / 1000.0
        if ge:
            offset_s += t_ave(float(ds.ActualFrameDuration) / 1000.0, case.half_life_s)
        ds.DecayFactor = writer._ds_text(math.exp(lam * offset_s))


def test_series_time_disagreeing_with_unconfirmed_frame_timing_is_a_rule(tmp_path, built, case):
    """Without a DecayFactor the FrameReferenceTime convention is an assumption: a disagreement with it
    (here 10 min, 6.5 % in SUV) is recorded, not warned, and the Series Time (QIBA's first rule) stands."""
    datasets, truth = built
    for ds in datasets:
        dro.set_dt(ds, "Series", case.scan - dt.timedelta(minutes=10))
        del ds.DecayFactor
    values, p = run(tmp_path, datasets)
    lam = math.log(2) / case.half_life_s
    assert np.allclose(values, truth * math.exp(-lam * 600), atol=TOL)
    assert p.reference_time_rule.startswith("Series Date/Time")
    assert any("back-computed from frame timing differs by +600 s (+6.5 % in SUV)" in r and "not warned" in r
               for r in p.rules)
    assert p.warnings == []


def test_series_time_disagreeing_with_decay_factor_is_not_trusted(tmp_path, built, case):
    """A DecayFactor that states the true reference overrules a Series Time 10 min too early: the
    warning names both times and the effect of the Series Time, exp(-lambda 600 s) - 1 = -6.1 % for F-18."""
    datasets, truth = built
    consistent_decay_factor(datasets, case)
    for ds in datasets:
        dro.set_dt(ds, "Series", case.scan - dt.timedelta(minutes=10))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.reference_time == case.scan.isoformat()
    assert p.reference_time_rule.startswith("back-computed") and "confirmed by DecayFactor" in p.reference_time_rule
    assert any("Series Date/Time" in w and "disagrees with DecayFactor" in w and "-6.1 %" in w for w in p.warnings)


# -- administration time -----------------------------------------------------------------------------

def test_only_start_datetime(tmp_path, built):
    datasets, truth = built
    for ds in datasets:
        del dro.rp(ds).RadiopharmaceuticalStartTime
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.injection_time_rule == "RadiopharmaceuticalStartDateTime (0018,1078)"


def test_only_start_time(tmp_path, built):
    datasets, truth = built
    for ds in datasets:
        del dro.rp(ds).RadiopharmaceuticalStartDateTime
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.injection_time_rule == "RadiopharmaceuticalStartTime (0018,1072) on the reference date"


@pytest.mark.parametrize("with_datetime", [False, True])
def test_midnight_crossing(tmp_path, with_datetime):
    case = dro.Case(injection=dt.datetime(2024, 3, 5, 23, 41, 12), scan=dt.datetime(2024, 3, 6, 0, 47, 3))
    datasets, truth = dro.build(case)
    for ds in datasets:
        if not with_datetime:
            del dro.rp(ds).RadiopharmaceuticalStartDateTime
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.injection_time == "2024-03-05T23:41:12"
    assert p.uptake_time_s == pytest.approx((case.scan - case.injection).total_seconds())


def test_midnight_with_anonymised_acquisition_date(tmp_path):
    case = dro.Case(injection=dt.datetime(2024, 3, 5, 23, 41, 12), scan=dt.datetime(2024, 3, 6, 0, 47, 3))
    datasets, truth = dro.build(case)
    for ds in datasets:
        ds.AcquisitionDate = "19000101"
        del dro.rp(ds).RadiopharmaceuticalStartDateTime
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    # re-dated onto the series date: a rule (the times compare right again, no SUV changes), not a warning
    assert any("disagree by" in r and "onto the series date" in r for r in p.rules)
    assert not any("disagree" in w for w in p.warnings)


def test_anonymised_start_datetime_uses_time_of_day(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        rp = dro.rp(ds)
        rp.RadiopharmaceuticalStartDateTime = "19000101" + case.injection.strftime("%H%M%S")
        del rp.RadiopharmaceuticalStartTime
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.injection_time_rule.startswith("time of day of RadiopharmaceuticalStartDateTime")


def test_long_lived_nuclide_multi_day_uptake_with_datetime(tmp_path):
    case = dro.Case(nuclide="Zr-89", injection=dt.datetime(2024, 3, 1, 14, 5, 0), scan=dt.datetime(2024, 3, 5, 10, 4, 55),
                    agent_text="89Zr-girentuximab", agent_code=None, dose_bq=37e6)
    datasets, truth = dro.build(case)
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.uptake_time_s == pytest.approx((case.scan - case.injection).total_seconds())
    assert p.radionuclide == "Zr-89"


@pytest.mark.parametrize("anonymised", [False, True])
def test_long_lived_nuclide_without_full_datetime_refused(tmp_path, anonymised):
    case = dro.Case(nuclide="Zr-89", injection=dt.datetime(2024, 3, 1, 14, 5, 0), scan=dt.datetime(2024, 3, 5, 10, 4, 55),
                    agent_text="89Zr-girentuximab", agent_code=None, dose_bq=37e6)
    datasets, truth = dro.build(case)
    for ds in datasets:
        rp = dro.rp(ds)
        if anonymised:
            rp.RadiopharmaceuticalStartDateTime = "19000101140500"
        else:
            del rp.RadiopharmaceuticalStartDateTime
    with pytest.raises(SUVConversionError, match="uptake of more than a day possible.*--injection-time"):
        run(tmp_path, datasets)
    values, _ = run(tmp_path, datasets, overrides=Overrides(injection_time=case.injection), name="fixed")
    assert_pattern(values, truth)


def test_both_injection_times_missing_refused_then_overridden(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        rp = dro.rp(ds)
        del rp.RadiopharmaceuticalStartTime, rp.RadiopharmaceuticalStartDateTime
    with pytest.raises(SUVConversionError, match=r"\(0018,1078\) and RadiopharmaceuticalStartTime \(0018,1072\) are both missing"):
        run(tmp_path, datasets)
    values, p = run(tmp_path, datasets, overrides=Overrides(injection_time=case.injection.time()), name="tod")
    assert_pattern(values, truth)
    assert p.injection_time_rule.startswith("override (time of day)")


# -- half-life -------------------------------------------------------------------------------------------

def test_gallium_68(tmp_path):
    case = dro.Case(nuclide="Ga-68", agent_text="Ga68-DOTATATE", agent_code=("SCT", "724025002", "Dotatate Ga^68^"))
    datasets, truth = dro.build(case)
    for ds in datasets:
        dro.rp(ds).RadionuclideHalfLife = "4057.74"  # as Siemens writes it
    lam = math.log(2) / 4057.74
    expected = case.weight_kg * 1000 / (case.dose_bq * math.exp(-lam * (case.scan - case.injection).total_seconds()))
    values, p = run(tmp_path, datasets)
    assert np.allclose(values, truth * expected / case.bw_factor(), atol=TOL)
    assert p.half_life_s == 4057.74 and p.tracer["label"] == "68Ga-DOTATATE"


def test_half_life_missing_uses_coded_radionuclide(tmp_path, built):
    datasets, truth = built
    for ds in datasets:
        del dro.rp(ds).RadionuclideHalfLife
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert "RadionuclideCodeSequence" in p.half_life_source
    assert any("RadionuclideHalfLife (0018,1075) is missing" in w for w in p.warnings)


def test_half_life_missing_uses_nuclide_named_in_text(tmp_path, built):
    """Without a half-life or a nuclide code, the nuclide named in Radiopharmaceutical (0018,0031) stands."""
    datasets, truth = built
    for ds in datasets:
        del dro.rp(ds).RadionuclideHalfLife, dro.rp(ds).RadionuclideCodeSequence
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.half_life_source.startswith("F-18 reference half-life, radionuclide from Radiopharmaceutical (0018,0031)")
    assert any("RadionuclideHalfLife (0018,1075) is missing" in w for w in p.warnings)


def test_half_life_and_code_missing_refused(tmp_path, built, case):
    datasets, truth = built
    for ds in datasets:
        rp = dro.rp(ds)
        del rp.RadionuclideHalfLife, rp.RadionuclideCodeSequence, rp.RadiopharmaceuticalCodeSequence
        rp.Radiopharmaceutical = "tracer X"
    with pytest.raises(SUVConversionError, match=r"RadionuclideHalfLife \(0018,1075\) is missing.*--half-life"):
        run(tmp_path, datasets)
    values, _ = run(tmp_path, datasets, overrides=Overrides(half_life_s=case.half_life_s), name="fixed")
    assert_pattern(values, truth)


# -- SUV types from activity ----------------------------------------------------------------------------

@pytest.mark.parametrize("sex", ["M", "F", "O"])
@pytest.mark.parametrize("suv_type", ["lbm", "lbmjanma", "ibw", "bsa"])
def test_suv_types(tmp_path, suv_type, sex):
    case = dro.Case(sex=sex, weight_kg=96.0, height_m=1.74)
    datasets, truth = dro.build(case)
    w, h = case.weight_kg, case.height_m * 100
    normaliser = {
        "lbm": lbm_james128(w, h, sex) * 1000, "lbmjanma": lbm_janma(w, h, sex) * 1000,
        "ibw": ibw(h, sex) * 1000, "bsa": bsa(w, h) * 1e4,
    }[suv_type]
    expected = truth * normaliser / (w * 1000)
    values, p = run(tmp_path, datasets, suv_type=suv_type)
    assert np.allclose(values, expected, atol=TOL * normaliser / (w * 1000) * 1.01)
    assert p.output_unit == ("cm2/mL" if suv_type == "bsa" else "g/mL")
    assert p.normaliser["value"] == pytest.approx(normaliser)


def test_gml_lbm_converted_to_bsa(tmp_path):
    case = dro.Case(sex="M", weight_kg=81.0, height_m=1.79)
    datasets, truth = dro.build(case)
    w, h = case.weight_kg, case.height_m * 100
    lbm = lbm_james128(w, h, "M")
    rewrite(datasets, case, truth, lambda v, k, ds: v * case.bw_factor() * lbm / w)
    for ds in datasets:
        ds.Units, ds.SUVType = "GML", "LBMJAMES128"
    values, _ = run(tmp_path, datasets, suv_type="bsa")
    expected = truth * bsa(w, h) * 1e4 / (w * 1000)
    assert np.allclose(values, expected, atol=TOL * 1e4 * bsa(w, h) / (w * 1000) * 1.01)


@pytest.mark.parametrize("sex,match", [(None, "PatientSex .* is missing"), ("X", "is 'X', not M, F or O")])
def test_sex_missing_or_invalid_refused_for_lbm(tmp_path, built, sex, match):
    datasets, _ = built
    for ds in datasets:
        if sex is None:
            del ds.PatientSex
        else:
            ds.PatientSex = sex
    with pytest.raises(SUVConversionError, match=match + r".*--sex M\|F\|O"):
        run(tmp_path, datasets, suv_type="lbm")
    run(tmp_path, datasets, suv_type="bw", name="bw")  # SUVbw does not need the sex


@pytest.mark.parametrize("size,match", [
    (None, "is missing"), ("0", "is 0"),
    ("172", r"is 172, not a height in metres within the 0.3-2.8 m a patient measures \(centimetres, or a weight"),
    ("1720", r"is 1720, not a height in metres .* \(millimetres\?\)"),
    ("0.12", r"is 0.12, not a height in metres within the 0.3-2.8 m"),
    ("nan", r"is nan, not a height in metres"),
])
def test_height_missing_zero_or_centimetres_refused(tmp_path, built, size, match):
    datasets, truth = built
    for ds in datasets:
        if size is None:
            del ds.PatientSize
        else:  # as raw bytes: pydicom will not encode "nan" in a DS, scanners and attackers do
            from pydicom.dataelem import RawDataElement
            from pydicom.tag import Tag

            value = size.encode().ljust(len(size) + len(size) % 2)
            ds[0x00101020] = RawDataElement(Tag(0x00101020), "DS", len(value), value, 0, False, True)
    with pytest.raises(SUVConversionError, match=r"PatientSize \(0010,1020\) " + match):
        run(tmp_path, datasets, suv_type="bsa")
    values, p = run(tmp_path, datasets, suv_type="bsa", overrides=Overrides(height_m=1.68), name="fixed")
    assert p.height_source == "override"


def test_james_lbm_non_positive_refused(tmp_path):
    case = dro.Case(sex="M", weight_kg=220.0, height_m=1.52)
    datasets, _ = dro.build(case)
    with pytest.raises(SUVConversionError, match="non-positive normaliser.*lbmjanma"):
        run(tmp_path, datasets, suv_type="lbm")


# -- overrides ------------------------------------------------------------------------------------------

def test_overrides_change_the_result_as_the_formula_says(tmp_path, built, case):
    datasets, truth = built
    injection = case.injection - dt.timedelta(minutes=15)
    values, p = run(tmp_path, datasets, overrides=Overrides(weight_kg=80.0, dose_bq=200e6, injection_time=injection))
    lam = math.log(2) / case.half_life_s
    factor_new = 80.0 * 1000 / (200e6 * math.exp(-lam * (case.scan - injection).total_seconds()))
    assert np.allclose(values, truth * factor_new / case.bw_factor(), atol=TOL * 1.2)
    assert p.overrides == {"weight_kg": 80.0, "dose_bq": 200e6, "injection_time": injection.isoformat()}


def test_weight_override_on_stored_suv_renormalises(tmp_path, built, case):
    datasets, truth = built
    rewrite(datasets, case, truth, lambda v, k, ds: v * case.bw_factor())
    for ds in datasets:
        ds.Units = "GML"
    values, _ = run(tmp_path, datasets, overrides=Overrides(weight_kg=case.weight_kg * 1.1, dose_bq=case.dose_bq * 2))
    assert np.allclose(values, truth * 1.1 / 2, atol=TOL)


def test_injection_override_on_stored_suv_refused(tmp_path, built, case):
    datasets, _ = built
    for ds in datasets:
        ds.Units = "GML"
    with pytest.raises(SUVConversionError, match="already SUV.*drop --injection-time"):
        run(tmp_path, datasets, overrides=Overrides(injection_time=case.injection))


# -- enhanced (multi-frame) PET ---------------------------------------------------------------------------

def test_enhanced_pet_decay_corrected(tmp_path, case):
    datasets, truth = dro.build(case)
    dro.vary_slopes(datasets, dro.activity(case, truth))
    enhanced = dro.to_enhanced(datasets, case, decay_corrected=True)
    values, p = run(tmp_path, [enhanced])
    assert_pattern(values, truth)
    assert p.reference_time_rule == "DecayCorrectionDateTime (0018,9701)"
    assert p.units_source.startswith("MeasurementUnitsCodeSequence")
    assert p.frames == case.shape[0] and p.rescale_slope["distinct"] == case.shape[0]


@pytest.mark.parametrize("frame_reference", [True, False])
def test_enhanced_pet_not_decay_corrected(tmp_path, frame_reference):
    case = dro.Case(beds=3)
    datasets, truth = dro.build(case)
    lam = math.log(2) / case.half_life_s

    def at_own_time(v, k, ds):
        start = dt.datetime.strptime(ds.AcquisitionDate + ds.AcquisitionTime.split(".")[0], "%Y%m%d%H%M%S")
        mid = start + dt.timedelta(seconds=t_ave(case.frame_s, case.half_life_s))
        return v * math.exp(-lam * (mid - case.scan).total_seconds())

    rewrite(datasets, case, truth, at_own_time)
    enhanced = dro.to_enhanced(datasets, case, decay_corrected=False, frame_reference=frame_reference)
    values, p = run(tmp_path, [enhanced])
    assert_pattern(values, truth)
    assert p.decay_correction == "NONE"


def test_enhanced_pet_gml(tmp_path, case):
    datasets, truth = dro.build(case)
    rewrite(datasets, case, truth, lambda v, k, ds: v * case.bw_factor())
    enhanced = dro.to_enhanced(datasets, case, units="g/ml{SUVbw}")
    values, p = run(tmp_path, [enhanced])
    assert_pattern(values, truth)
    assert p.units == "GML" and p.stored_suv_type == "BW"


# -- pixel traps ------------------------------------------------------------------------------------------

def test_monochrome1_values_are_not_inverted(tmp_path, built):
    datasets, truth = built
    for ds in datasets:
        ds.PhotometricInterpretation = "MONOCHROME1"
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert any("MONOCHROME1" in w for w in p.warnings)
    # the trap is real: SimpleITK's GDCM series reader inverts such images
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(tmp_path / "pet"))
    reader.SetFileNames(files)
    naive = sitk.GetArrayFromImage(reader.Execute())
    naive_suv = naive * p.factor
    assert np.abs(naive_suv - truth).max() > 1.0


def test_rle_compressed_pixel_data(tmp_path, built):
    from pydicom.uid import RLELossless

    datasets, truth = built
    for ds in datasets:
        ds.compress(RLELossless)
    values, _ = run(tmp_path, datasets)
    assert_pattern(values, truth)


# -- geometry ----------------------------------------------------------------------------------------------

def test_files_in_any_order_and_names(tmp_path, built):
    datasets, truth = built
    shuffled = [datasets[i] for i in np.random.default_rng(3).permutation(len(datasets))]
    values, _ = run(tmp_path, shuffled)
    assert_pattern(values, truth)


def test_missing_slice_refused(tmp_path, built):
    datasets, _ = built
    del datasets[7]
    with pytest.raises(DicomInputError, match="not evenly spaced.*missing files"):
        run(tmp_path, datasets)


def test_positions_rounded_at_bed_joins_are_accepted(tmp_path, built):
    """Scanners round slice positions at bed joins (a real GE Discovery ST whole-body PET: steps of
    3.19/3.27/3.29 mm, every slice within 0.04 mm of an even 3.27 mm grid): positions within 3 % of the
    spacing of a fitted even grid are accepted, the grid is used, and the provenance says so; a
    missing slice (residual up to half a spacing) is still refused (test above)."""
    datasets, truth = built
    ordered = sorted(datasets, key=lambda ds: float(ds.ImagePositionPatient[2]))
    step = float(ordered[1].ImagePositionPatient[2]) - float(ordered[0].ImagePositionPatient[2])
    jitter = np.tile([0.0, 0.02, -0.02], len(ordered))[: len(ordered)] * step  # within 2 % of the spacing
    for ds, shift in zip(ordered, jitter):
        position = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [position[0], position[1], round(position[2] + shift, 4)]
    values, provenance = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert any("slice positions are rounded" in w for w in provenance.warnings)
    # 10 % of the spacing off the grid is no rounding
    ds = ordered[len(ordered) // 2]
    position = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [position[0], position[1], position[2] + 0.1 * step]
    with pytest.raises(DicomInputError, match="not evenly spaced.*off an even grid"):
        run(tmp_path, datasets, name="off-grid")


def test_two_planes_at_one_position_refused(tmp_path, built):
    datasets, _ = built
    extra = copy.deepcopy(datasets[3])
    extra.SOPInstanceUID = extra.file_meta.MediaStorageSOPInstanceUID = "2.25.1234"
    datasets.append(extra)
    with pytest.raises(DicomInputError, match="two planes at one position"):
        run(tmp_path, datasets)


def test_geometry_is_dicom_patient_space(tmp_path, built, case):
    datasets, _ = built
    paths = writer.save_datasets(datasets, str(tmp_path / "pet"))
    image = convert_to_suv(paths, jobs=1).image
    assert image.GetOrigin() == pytest.approx(case.origin)
    assert image.GetSpacing() == pytest.approx(case.spacing)
    # same geometry as SimpleITK's own DICOM series reader
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "pet")))
    reference = reader.Execute()
    assert image.GetOrigin() == pytest.approx(reference.GetOrigin())
    assert image.GetSpacing() == pytest.approx(reference.GetSpacing())
    assert image.GetDirection() == pytest.approx(reference.GetDirection())
