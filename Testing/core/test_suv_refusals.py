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


CASES = [
    ("units GML with SUVType BSA", lambda d, c: [_set("Units", "GML")(d, c), _set("SUVType", "BSA")(d, c)], {}, None, r"SUVType \(0054,1006\) 'BSA' is not a known g/mL"),
    ("units CM2ML with SUVType IBW", lambda d, c: [setattr(ds, "Units", "CM2ML") or setattr(ds, "SUVType", "IBW") for ds in d],
     {}, None, r"Units CM2ML with SUVType \(0054,1006\) 'IBW'"),
    ("Philips factor in some frames only", _philips_partial, {}, None, r"\(7053,1009\) is present in some frames only"),
    ("Philips SUV factor with SUVType LBM", _philips_suvsf_typed, {}, None, r"Philips SUV scale factor but SUVType"),
    ("Philips SUV factor and an injection override",
     lambda d, c: dro.philips(d, c, acsf=False, suvsf=True), {},
     Overrides(injection_time=dt.datetime(2024, 3, 5, 9, 0)), r"already folds in .* drop --injection-time"),
    ("CNTS without factors or duration", _cnts_without_duration, {}, None, r"ActualFrameDuration \(0018,1242\) is missing to turn counts"),
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
