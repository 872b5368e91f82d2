"""One test per refusal not exercised by test_suv_rules: each names the tag and the fix."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from netpet.dicom import convert_to_suv, dro, writer
from netpet.dicom.suv import Overrides
from netpet.errors import DicomInputError, SUVConversionError


def _series(tmp_path, datasets, **kwargs):
    paths = writer.save_datasets(datasets, str(tmp_path / "pet"))
    return convert_to_suv(paths, jobs=1, **kwargs)


def _set(attribute, value):
    def change(datasets, case):
        for ds in datasets:
            setattr(ds, attribute, value)
    return change


def _philips_partial(datasets, case):
    dro.philips(datasets, case, acsf=True, suvsf=False)
    del datasets[3][(0x7053, 0x1009)]


def _philips_suvsf_typed(datasets, case):
    dro.philips(datasets, case, acsf=False, suvsf=True)
    for ds in datasets:
        ds.SUVType = "LBM"


def _cnts_without_duration(datasets, case):
    for ds in datasets:
        ds.Units = "CNTS"
        del ds.ActualFrameDuration


def _cps_without_thickness(datasets, case):
    for ds in datasets:
        ds.Units = "CPS"
        ds.CorrectedImage = ["ATTN", "DCAL"]
        del ds.SliceThickness


def _none_without_acquisition(datasets, case):
    for ds in datasets:
        ds.DecayCorrection = "NONE"
        del ds.AcquisitionTime
        del ds.AcquisitionDate


def _gml_without_dose(datasets, case):
    for ds in datasets:
        ds.Units = "GML"
        del dro.rp(ds).RadionuclideTotalDose


def _negative_slope(datasets, case):
    datasets[2].RescaleSlope = "-0.5"



def _raw(ds, tag, vr, value):
    """Write a value as raw bytes (pydicom refuses to encode NaN/inf in DS, scanners and attackers do not)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def _unnamed_half_life(value):
    def change(datasets, case):
        _minutes_unnamed(datasets, case)
        for ds in datasets:
            dro.rp(ds).RadionuclideHalfLife = value
    return change


def _minutes_unnamed(datasets, case):
    for ds in datasets:
        rp = dro.rp(ds)
        del rp.RadionuclideCodeSequence, rp.RadiopharmaceuticalCodeSequence
        rp.Radiopharmaceutical = "tracer X"
        rp.RadionuclideHalfLife = "109.77"


def _ga68_datetime_after_scan(datasets, case):
    lam_case = dro.Case(nuclide="Ga-68")
    for ds in datasets:
        rp = dro.rp(ds)
        rp.RadionuclideHalfLife = writer._ds_text(lam_case.half_life_s)
        rp.RadionuclideCodeSequence[0].CodeValue = "35337001"
        rp.RadionuclideCodeSequence[0].CodeMeaning = "^68^Gallium"
        rp.Radiopharmaceutical = "Ga68-DOTATATE"
        del rp.RadiopharmaceuticalCodeSequence
        rp.RadiopharmaceuticalStartDateTime = "20240305235000"
        del rp.RadiopharmaceuticalStartTime


def _start_time_moved(minutes):
    def change(datasets, case):
        for ds in datasets:
            dro.rp(ds).RadiopharmaceuticalStartTime = (case.injection + dt.timedelta(minutes=minutes)).strftime("%H%M%S")
    return change


def _both_injection_times_implausible(datasets, case):
    for ds in datasets:
        rp = dro.rp(ds)
        rp.RadiopharmaceuticalStartDateTime = "20240303090231"  # two days early: 26 half-lives of F-18
        rp.RadiopharmaceuticalStartTime = "123000"  # after the scan: the day before, 21.6 h


def _cnts_duration_nan(datasets, case):
    for ds in datasets:
        ds.Units = "CNTS"
        _raw(ds, 0x00181242, "IS", b"nan ")


def _propcps_on_ge(datasets, case):
    dro.ge(datasets, case, private_scan=case.scan)
    for ds in datasets:
        ds.Units = "PROPCPS"


CASES = [
    ("units GML with SUVType BSA", lambda d, c: [_set("Units", "GML")(d, c), _set("SUVType", "BSA")(d, c)], {}, None, r"SUVType \(0054,1006\) 'BSA' is not a known g/mL"),
    ("units CM2ML with SUVType IBW", lambda d, c: [setattr(ds, "Units", "CM2ML") or setattr(ds, "SUVType", "IBW") for ds in d],
     {}, None, r"Units CM2ML with SUVType \(0054,1006\) 'IBW'"),
    ("Philips factor in some frames only", _philips_partial, {}, None, r"\(7053,1009\) is present in some frames only"),
    ("Philips SUV factor with SUVType LBM", _philips_suvsf_typed, {}, None, r"Philips SUV scale factor but SUVType"),
    ("Philips SUV factor and an injection override",
     lambda d, c: dro.philips(d, c, acsf=False, suvsf=True), {},
     Overrides(injection_time=dt.datetime(2024, 3, 5, 9, 0)), r"already folds in .* drop --injection-time"),
    ("CNTS without factors or duration", _cnts_without_duration, {}, None, r"ActualFrameDuration \(0018,1242\) is missing, so counts cannot be turned"),
    ("CPS without slice thickness", _cps_without_thickness, {}, None, r"SliceThickness \(0018,0050\) is missing"),
    ("NONE without acquisition times", _none_without_acquisition, {}, None, r"has no AcquisitionDate/Time"),
    ("stored SUV, dose override, no header dose", _gml_without_dose, {}, Overrides(dose_bq=2e8),
     r"RadionuclideTotalDose \(0018,1074\), the dose the scanner normalised by, is missing"),
    ("negative slope", _negative_slope, {}, None, r"RescaleSlope \(0028,1053\) is -0.5 .* not positive"),
    ("weight override in grams", lambda d, c: None, {}, Overrides(weight_kg=72000), r"not a body weight in kg"),
    ("height override in cm", lambda d, c: None, {"suv_type": "bsa"}, Overrides(height_m=172), r"not a height in metres"),
    ("sex override invalid", lambda d, c: None, {"suv_type": "lbm"}, Overrides(sex="X"), r"sex override 'X' is not M, F or O"),
    ("dose override in MBq", lambda d, c: None, {}, Overrides(dose_bq=185), r"implausibly small; give --dose in MBq"),
    ("half-life override negative", lambda d, c: None, {}, Overrides(half_life_s=-5), r"half-life override -5 s is not positive"),
    # plausibility: a dose recorded in mCi (US sites) would give SUVs 37 x too high
    ("dose that looks like millicuries", lambda d, c: [setattr(dro.rp(ds), "RadionuclideTotalDose", "5.1") for ds in d],
     {}, None, r"RadionuclideTotalDose \(0018,1074\) is 5.1, read as 5.1 MBq, outside the 10-2000 MBq .* looks like "
     r"millicuries: 5.1 mCi = 188.7 MBq.*confirm or correct it with --dose MBQ"),
    ("dose far too small", lambda d, c: [setattr(dro.rp(ds), "RadionuclideTotalDose", "0.001") for ds in d], {}, None,
     r"is 0.001, read as 0.001 MBq, outside"),
    ("dose far too large", lambda d, c: [setattr(dro.rp(ds), "RadionuclideTotalDose", "1e30") for ds in d], {}, None,
     r"is 1e\+30, read as 1e\+24 MBq, outside"),
    ("dose override not a number", lambda d, c: None, {}, Overrides(dose_bq=float("nan")), r"the dose override is nan"),
    ("weight of 999 kg", lambda d, c: [setattr(ds, "PatientWeight", "999") for ds in d], {}, None,
     r"PatientWeight \(0010,1030\) is 999, read as 999 kg, outside the 2-350 kg .* --weight KG"),
    ("weight of 0.5 kg", lambda d, c: [setattr(ds, "PatientWeight", "0.5") for ds in d], {}, None,
     r"PatientWeight \(0010,1030\) is 0.5, read as 0.5 kg, outside"),
    ("weight override not a number", lambda d, c: None, {}, Overrides(weight_kg=float("nan")), r"weight override nan kg"),
    # -- issue 11, item 2: every SUV input and override bounded; NaN and infinity refused everywhere --------------
    ("weight override infinite", lambda d, c: None, {}, Overrides(weight_kg=float("inf")), r"weight override inf kg"),
    ("dose override infinite", lambda d, c: None, {}, Overrides(dose_bq=float("inf")), r"the dose override is inf"),
    ("height override not a number", lambda d, c: None, {"suv_type": "bsa"}, Overrides(height_m=float("nan")),
     r"the height override nan m is not a height in metres; give --height in metres"),
    ("half-life override not a number", lambda d, c: None, {}, Overrides(half_life_s=float("nan")),
     r"the half-life override is nan; give --half-life in seconds"),
    ("half-life override infinite", lambda d, c: None, {}, Overrides(half_life_s=float("inf")),
     r"the half-life override is inf"),
    ("slope not a number", lambda d, c: _raw(d[2], 0x00281053, "DS", b"nan "), {}, None,
     r"RescaleSlope \(0028,1053\) is nan in .*IM0003, not a finite number; convert the original scanner export "
     r"\(no override can stand for a rescale slope\)"),
    ("slope infinite", lambda d, c: _raw(d[2], 0x00281053, "DS", b"inf "), {}, None,
     r"RescaleSlope \(0028,1053\) is inf in .*IM0003, not a finite number"),
    ("slope zero", lambda d, c: setattr(d[2], "RescaleSlope", "0"), {}, None,
     r"RescaleSlope \(0028,1053\) is 0 in .*IM0003, not positive"),
    # one stored unit worth 1e30 x 3.3e-4 SUV: more than the whole dose in one 0.054 mL voxel (SUV 72500 / 0.054)
    ("slope absurdly large", lambda d, c: setattr(d[2], "RescaleSlope", "1e30"), {}, None,
     r"RescaleSlope \(0028,1053\) is 1e\+30 in .*IM0003: one stored unit would be SUV .*, more than the whole "
     r"administered activity in one 0.0542 mL voxel"),
    ("slope absurdly small", lambda d, c: setattr(d[2], "RescaleSlope", "1e-30"), {}, None,
     r"RescaleSlope \(0028,1053\) is 1e-30 in .*IM0003: the largest value its 16 stored bits can hold is SUV"),
    ("header half-life of Ga-68 in minutes on an F-18 series",
     lambda d, c: [setattr(dro.rp(ds), "RadionuclideHalfLife", "67.7") for ds in d], {}, None,
     r"RadionuclideHalfLife \(0018,1075\) is 67.7 s but RadionuclideCodeSequence \(0054,0300\) .* names F-18, whose "
     r"half-life is 6586.2 s \(0.0103 times it\); confirm the half-life with --half-life S"),
    ("header half-life of F-18 in minutes",
     lambda d, c: [setattr(dro.rp(ds), "RadionuclideHalfLife", "109.77") for ds in d], {}, None,
     r"is 109.77 s but .* names F-18, whose half-life is 6586.2 s, as if written in minutes"),
    ("header half-life in minutes, no nuclide named", _minutes_unnamed, {}, None,
     r"RadionuclideHalfLife \(0018,1075\) is 109.77 s, the half-life of no known radionuclide, but 109.77 minutes is "
     r"F-18's; confirm the half-life with --half-life S"),
    ("header half-life of no imaging nuclide, none named", _unnamed_half_life("1e-30"), {}, None,
     r"RadionuclideHalfLife \(0018,1075\) is 1e-30 s, outside the 60-3.16e\+07 s of imaging radionuclides"),
    ("header half-life not a number", lambda d, c: [_raw(dro.rp(ds), 0x00181075, "DS", b"nan ") for ds in d], {}, None,
     r"RadionuclideHalfLife \(0018,1075\) is nan; give the half-life with --half-life S"),
    ("header dose infinite", lambda d, c: [_raw(dro.rp(ds), 0x00181074, "DS", b"inf ") for ds in d], {}, None,
     r"RadionuclideTotalDose \(0018,1074\) is inf; give the administered activity with --dose MBQ"),
    ("header weight not a number", lambda d, c: [_raw(ds, 0x00101030, "DS", b"nan ") for ds in d], {}, None,
     r"PatientWeight \(0010,1030\) is nan; give the weight with --weight KG"),
    # Ga-68: a DateTime after the scan (its date and time both wrong) must not be placed on the day before
    ("injection date-time implausible and no time", _ga68_datetime_after_scan, {}, None,
     r"the uptake time from injection 2024-03-04T23:50:00 to the decay reference 2024-03-05T10:04:55 is 10.2 h, 9.1 "
     r"half-lives of Ga-68, longer than the 5 half-lives any imaging protocol waits \(SUV x\d+\); confirm or correct "
     r"the injection time with --injection-time ISO8601"),
    ("injection date-time and time both plausible, 30 min apart", _start_time_moved(-30), {}, None,
     r"RadiopharmaceuticalStartDateTime \(0018,1078\) is 2024-03-05T09:02:31 but RadiopharmaceuticalStartTime "
     r"\(0018,1072\) is 08:32:31, 30 min apart \(\+20.9 % in SUV\) and both give a plausible uptake; confirm or correct "
     r"the injection time with --injection-time ISO8601"),
    ("injection date-time and time both implausible", _both_injection_times_implausible, {}, None,
     r"neither RadiopharmaceuticalStartDateTime \(0018,1078\) 2024-03-03T09:02:31 nor RadiopharmaceuticalStartTime "
     r"\(0018,1072\) 12:30:00 gives a plausible uptake"),
    ("CNTS frame duration not a number", _cnts_duration_nan, {}, None,
     r"ActualFrameDuration \(0018,1242\) is nan in .*IM0001, so counts cannot be turned into counts per second"),
    # the refusal of a non-quantitative unit names the file's own scanner, never another vendor
    ("PROPCPS on a GE series", _propcps_on_ge, {}, None,
     r"Units \(0054,1001\) is PROPCPS in this GE MEDICAL SYSTEMS Discovery MI series: proportional to counts per "
     r"second, a non-quantitative reconstruction"),
]



@pytest.mark.parametrize("name,change,kwargs,overrides,message", CASES, ids=[c[0] for c in CASES])
def test_refusal(tmp_path, name, change, kwargs, overrides, message):
    case = dro.Case()
    datasets, _ = dro.build(case)
    change(datasets, case)
    with pytest.raises(SUVConversionError) as info:
        _series(tmp_path, datasets, overrides=overrides, **kwargs)
    text = str(info.value)
    assert text.startswith("Cannot convert PET series 2.25.")  # names the series
    assert text.count(". ") == 0 and text.endswith(".")  # one sentence
    import re

    assert re.search(message, text), text
    if name == "PROPCPS on a GE series":
        assert "Siemens" not in text and "SIEMENS" not in text and "Philips" not in text


def _shift(datasets, case):
    datasets[4].ImagePositionPatient = [float(v) + (1.0 if i == 0 else 0.0) for i, v in enumerate(datasets[4].ImagePositionPatient)]


GEOMETRY = [
    ("no position", lambda d: delattr(d[1], "ImagePositionPatient"), "lacks ImagePositionPatient"),
    ("mixed orientation", lambda d: setattr(d[2], "ImageOrientationPatient", [1, 0, 0, 0, 0.8, 0.6]), "mixes image orientations"),
    ("mixed spacing", lambda d: setattr(d[2], "PixelSpacing", [3.0, 3.0]), "mixes pixel spacings"),
    ("sheared stack", lambda d: _shift(d, None), "is sheared"),
]


@pytest.mark.parametrize("name,change,message", GEOMETRY, ids=[g[0] for g in GEOMETRY])
def test_geometry_refusal(tmp_path, name, change, message):
    datasets, _ = dro.build(dro.Case())
    change(datasets)
    with pytest.raises(DicomInputError, match=message):
        _series(tmp_path, datasets)


def test_not_a_pet_series(tmp_path):
    datasets, _ = dro.build(dro.Case())
    for ds in datasets:
        ds.Modality = "CT"
    with pytest.raises(DicomInputError, match=r"not one PET series \(Modality \['CT'\]\)"):
        _series(tmp_path, datasets)


def test_files_of_two_series(tmp_path):
    datasets, _ = dro.build(dro.Case())
    datasets[0].SeriesInstanceUID = "2.25.42"
    with pytest.raises(DicomInputError, match="belong to 2 series"):
        _series(tmp_path, datasets)


def test_unreadable_file(tmp_path):
    datasets, _ = dro.build(dro.Case())
    paths = writer.save_datasets(datasets, str(tmp_path / "pet"))
    with open(paths[3], "wb") as handle:
        handle.write(b"not dicom at all")
    with pytest.raises(DicomInputError, match=r"Cannot read .*IM0004"):
        convert_to_suv(paths, jobs=1)


def test_split_series_converts_from_the_index(tmp_path):
    from netpet.dicom.index import index_tree

    case = dro.Case()
    datasets, truth = dro.build(case)
    writer.save_datasets(datasets[:9], str(tmp_path / "a"))
    writer.save_datasets(copy.deepcopy(datasets[9:]), str(tmp_path / "b" / "c"), prefix="X")
    record = index_tree(str(tmp_path), jobs=1).pet_series()[0]
    assert len(record.folders) == 2
    import numpy as np
    import SimpleITK as sitk

    values = sitk.GetArrayFromImage(convert_to_suv(record, jobs=1).image)
    assert np.abs(values - truth).max() <= 1e-4  # int16 rounding: 4.0 / 32767 / 2 = 6.1e-5


def test_an_override_confirms_an_implausible_value(tmp_path):
    """A weight outside 2-350 kg given as an override is used, with a warning: the override is how a
    reader confirms what the plausibility check questions."""
    case = dro.Case()
    datasets, _ = dro.build(case)
    result = _series(tmp_path, datasets, overrides=Overrides(weight_kg=400.0, dose_bq=2.5e9))
    assert result.provenance.weight_kg == 400.0 and result.provenance.dose_bq == 2.5e9
    assert any("400 kg lies outside" in w for w in result.provenance.warnings)
    assert any("2500 MBq lies outside" in w for w in result.provenance.warnings)
