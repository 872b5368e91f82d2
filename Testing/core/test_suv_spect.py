"""Quantitative SPECT stored with Modality PT (Siemens xSPECT Quant does this), and the vendor in messages.

A Lu-177 SPECT/CT 24 h after a 7.4 GBq 177Lu-DOTATATE cycle is built from the DRO of test_suv_rules
(true SUVbw 1.00 / 4.00 / 0.20): its Bq/mL values are re-encoded for the Lu-177 dose decayed over 24 h
and its radiopharmaceutical, camera and description rewritten the way xSPECT Quant writes them. SUV
is defined for it as for PET (activity concentration x normaliser / dose), so it converts; it must be
labelled SPECT, never PET/CT, and its tracer named. Tolerance TOL = 1e-4 SUV (int16 rounding).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from netpet.dicom import dro, writer
from netpet.dicom.index import index_tree
from netpet.dicom.pet_header import CodedValue, Radiopharmaceutical
from netpet.dicom.suv import describe_provenance
from netpet.dicom.tracer import identify
from netpet.errors import SUVConversionError
from Testing.core.test_suv_rules import TOL, assert_pattern, run

LU177_HALF_LIFE_S = 574300.8  # 6.647 d (NNDC NuDat)
DOSE_BQ = 7.4e9  # one 177Lu-DOTATATE cycle (IAEA/EANM/SNMMI PRRT guidance)


def lu177_spect(case: dro.Case, injection: dt.datetime):
    datasets, truth = dro.build(case)
    lam = math.log(2) / LU177_HALF_LIFE_S
    dose_at_scan = DOSE_BQ * math.exp(-lam * (case.scan - injection).total_seconds())
    activity = truth * dose_at_scan / (case.weight_kg * 1000.0)  # Bq/mL whose SUVbw is the truth
    for k, ds in enumerate(datasets):
        dro.reencode(ds, activity[k])
        ds.Manufacturer = "SIEMENS"
        ds.ManufacturerModelName = "Symbia Intevo Bold"
        ds.SeriesDescription = "xSPECT Quant Lu177 24h"
        del ds.DecayFactor  # a PET frame correction attribute
        rp = dro.rp(ds)
        rp.Radiopharmaceutical = "Lu177-DOTATATE"
        rp.RadionuclideHalfLife = writer._ds_text(LU177_HALF_LIFE_S)
        rp.RadionuclideTotalDose = writer._ds_text(DOSE_BQ)
        rp.RadionuclidePositronFraction = "0"
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "447553000", "SCT", "^177^Lutetium"
        rp.RadionuclideCodeSequence = Sequence([code])
        del rp.RadiopharmaceuticalCodeSequence
        rp.RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S")
        rp.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S")
    return datasets, truth


def test_lu177_xspect_stored_as_pt_converts_and_is_labelled_spect(tmp_path):
    case = dro.Case()
    datasets, truth = lu177_spect(case, case.scan - dt.timedelta(hours=24))
    values, p = run(tmp_path, datasets)
    assert_pattern(values, truth)
    assert p.imaging == "SPECT"
    assert any("Lu-177 has no positron emission" in e for e in p.imaging_evidence)
    assert any("'Symbia Intevo Bold' is a SPECT camera" in e for e in p.imaging_evidence)
    assert any(r.startswith("quantitative SPECT stored with Modality PT") for r in p.rules)
    assert p.tracer["label"] == "177Lu-DOTATATE" and p.tracer["imaging"] == "SPECT"
    assert p.tracer["key"] == "other"  # never grouped with the study's 68Ga-SSTR PET
    assert p.dose_bq == DOSE_BQ  # 7.4 GBq: inside the therapy bound (15 GBq), outside the diagnostic one (2 GBq)
    assert p.radionuclide == "Lu-177"
    text = describe_provenance(p.to_dict())
    assert "quantitative SPECT stored as PT" in text and "PET/CT" not in text


def test_spect_index_label_is_never_pet_ct(tmp_path):
    case = dro.Case()
    datasets, _ = lu177_spect(case, case.scan - dt.timedelta(hours=24))
    writer.save_datasets(datasets, str(tmp_path / "spect"))
    uid = dro.uid_factory(case.seed)
    ct = writer.ct_datasets(
        np.zeros(case.shape), writer.VolumeGeometry(case.origin, case.spacing),
        writer.PatientInfo("NETPET-T01", "Test^Patient", case.sex, dt.date(1961, 4, 2), case.weight_kg, case.height_m),
        writer.StudyInfo(uid("study"), case.scan - dt.timedelta(minutes=70), "PET test", "ACC1"),
        writer.SeriesInfo(uid("ct-series"), uid("for"), 2, "CT", case.scan, "SIEMENS", "Symbia Intevo Bold"), uid)
    writer.save_datasets(ct, str(tmp_path / "ct"), prefix="CT")
    index = index_tree(str(tmp_path), jobs=1)
    (record,) = index.pet_series()
    assert record.hybrid == "SPECT/CT"
    assert record.tracer.label == "177Lu-DOTATATE" and record.tracer.imaging == "SPECT"
    from netpet.dicom.index import describe

    listing = describe(index)
    assert "SPECT/CT" in listing and "PET/CT" not in listing


def test_therapy_dose_bound(tmp_path):
    """Lu-177: 20 GBq lies beyond the therapy bound (twice the 7.4 GBq cycle) and is refused."""
    case = dro.Case()
    datasets, _ = lu177_spect(case, case.scan - dt.timedelta(hours=24))
    for ds in datasets:
        dro.rp(ds).RadionuclideTotalDose = "2e10"
    with pytest.raises(SUVConversionError, match=r"RadionuclideTotalDose \(0018,1074\) is 2e\+10, read as 20000 MBq, "
                                                 r"outside the 10-15000 MBq of Lu-177 therapy"):
        run(tmp_path, datasets)


def test_spect_in_counts_is_refused(tmp_path):
    """Counts of a SPECT camera have no calibration to activity: only a quantitative SPECT (Bq/mL) gives SUV."""
    case = dro.Case()
    datasets, _ = lu177_spect(case, case.scan - dt.timedelta(hours=24))
    for ds in datasets:
        ds.Units = "CNTS"
    with pytest.raises(SUVConversionError, match=r"the series is a SPECT stored with Modality PT .* Units \(0054,1001\) "
                                                 r"is CNTS: only a quantitative SPECT in Bq/mL .*reconstruct the SPECT") as info:
        run(tmp_path, datasets)
    assert str(info.value).count(". ") == 0  # one sentence


@pytest.mark.parametrize("rp,model,description,imaging,label", [
    (Radiopharmaceutical(nuclide_code=CodedValue("SCT", "72454006", "^99m^Technetium"), text="Tc99m-HDP"), None, None,
     "SPECT", "99mTc-(agent not stated)"),
    (Radiopharmaceutical(nuclide_code=CodedValue("SRT", "C-101ED", "^177^Lutetium")), None, None, "SPECT",
     "177Lu-(agent not stated)"),
    (Radiopharmaceutical(text="Lutathera"), None, None, "SPECT", "177Lu-DOTATATE"),
    (Radiopharmaceutical(text="Octreoscan"), None, None, "SPECT", "111In-(agent not stated)"),
    # the camera alone tells: a DOTATATE on a Symbia is not a 68Ga PET (no Ga-68 inferred)
    (Radiopharmaceutical(text="DOTATATE"), "Symbia Intevo Bold", None, "SPECT", "?-DOTATATE"),
    # Y-90 is imaged both ways: the scanner decides
    (Radiopharmaceutical(text="Y-90 microspheres"), "Biograph128_Vision 600 Edge", None, "PET", "90Y-(agent not stated)"),
    (Radiopharmaceutical(text="Y-90 microspheres"), None, "Y90 xSPECT Quant", "SPECT", "90Y-(agent not stated)"),
    # a PET stays a PET; Zr-89 keeps winning over Ga-67 (0.16 % apart) on a half-life alone
    (Radiopharmaceutical(half_life_s=282276.0), "Biograph64_mCT", None, "PET", "89Zr-(agent not stated)"),
    (Radiopharmaceutical(text="Ga68-DOTATATE"), "Discovery MI", "WB SSTR", "PET", "68Ga-DOTATATE"),
])
def test_imaging_kind(rp, model, description, imaging, label):
    tracer = identify(rp, model, description)
    assert (tracer.imaging, tracer.label) == (imaging, label)
    assert bool(tracer.imaging_evidence) == (imaging == "SPECT")
    if imaging == "SPECT":
        assert tracer.key == "other"
