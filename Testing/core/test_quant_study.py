"""SUVQuant on the digital reference study: accuracy against the truth, batch, table, exports, CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from netpet.cli.main import main
from netpet.quant import references
from netpet.quant.candidates import detect
from netpet.quant.measure import measure
from netpet.quant.segment import segment
from netpet.quant.table import StudyTable
from netpet.quant.volume import SUVVolume


@pytest.fixture(scope="module")
def volumes(reference_suv):
    return {key: SUVVolume.from_image(sitk.ReadImage(str(path))) for key, (path, _) in reference_suv.items()}


def _truth_mask(out, session, lesion_id):
    import slicerio

    segmentation = slicerio.read_segmentation(str(out / session["segmentation_file"]))
    return np.transpose(slicerio.segment_mask(segmentation, slicerio.segment_from_id(segmentation, lesion_id)), (2, 1, 0)) > 0


def test_automatic_liver_reference_matches_the_truth(reference_study, volumes):
    out, summary = reference_study
    for patient in summary["patients"]:
        for session in patient["sessions"]:
            volume = volumes[(patient["patient_id"], session["session_id"])]
            liver = references.liver_reference(volume)
            # a 3 cm sphere holds ~300 voxels with 10-14 % noise each, correlated over ~3: 3 SE is 4.2 %;
            # 5 % leaves room for the placement
            assert liver.mean == pytest.approx(session["liver_suv"], rel=0.05), session["session_id"]
            if session["tracer"] == "dotatate":
                spleen = references.spleen_reference(volume)
                assert spleen.mean == pytest.approx(session["spleen_suv"], rel=0.08)


def test_every_stratum_against_the_truth(reference_study, tmp_path_factory):
    """Every truth lesion of the study (avid, non-avid, benign traps, borderline, cold or iso-intense
    liver lesions, small, bone), clicked at its centre and measured by the product's own path, scored
    per stratum (netpet.quant.evaluate).

    Measured on this study (seed 8, 2 patients, 33 lesion-sessions): no flood anywhere; avid (15):
    none not separable, median Dice 0.84, median |volume error| 25 %, call agreement 93 %; non-avid
    (9): all not separable, none called positive; bone (9, 8 segmented): median |volume error| 22 %.
    The study and the method are deterministic, so these reproduce exactly on one platform; the
    bounds below leave a margin for other versions of numpy/scipy (a fit or a sort that breaks a tie
    differently moves a lesion by a voxel or so, a few % of volume). The bone median of 8 lies
    between the 4th and 5th errors (15 % and 28 %), so one lesion changing regime moves it by about
    10 points: the benign bone lesion L03 of NETPET-002/S1 read 6 % while the noise-leak rule cut it,
    57 % since the resolution measured on the outline lost its voxel-size bias (it was 11 % then);
    the bound, 30 %, sits above the 5th error."""
    from netpet.quant.evaluate import evaluate_reference_study, format_summary, summarize

    out, _summary = reference_study
    records = evaluate_reference_study(str(out), suv_cache=str(tmp_path_factory.mktemp("strata-suv")))
    summary = {s["stratum"]: s for s in summarize(records)}
    print(format_summary(summarize(records), "reference study, every stratum"))
    assert set(summary) == {"all", "avid", "non-avid", "benign", "borderline", "liver-cold-iso", "small", "bone"}
    assert all(s["floods"] == 0 for s in summary.values()), summary
    avid = summary["avid"]
    assert avid["not_separable_share"] == 0.0 and avid["median_dice"] >= 0.78 and avid["median_volume_error"] <= 0.30
    assert avid["call_agreement"] >= 0.85
    assert summary["non-avid"]["not_separable_share"] >= 0.8
    assert summary["bone"]["median_volume_error"] <= 0.30
    # a lesion that is not avid, or as cold or iso-intense as the liver, is never called positive
    for record in records:
        if "non-avid" in record["strata"] or "liver-cold-iso" in record["strata"]:
            assert record["call"] != "positive", record
        if record["status"] == "not separable":
            assert record["mtv_ml"] is None and record["call"] != "positive"
        if record["flood"] or (record["volume_error"] or 0) > 1.0:  # never silent
            assert "partial-volume" in record["flags"], record


def test_candidates_find_avid_lesions_and_set_organs_aside(reference_study, volumes, truth_lesions):
    from netpet.phantom import anatomy, render
    from netpet.phantom.patients import make_patient
    from Testing.conftest import STUDY_SEED

    patient = make_patient(STUDY_SEED, 1)
    session = patient.sessions[0]
    volume = volumes[(patient.patient_id, session.session_id)]
    model = render.build_model(patient)
    grid = render.ScanGrid(volume.origin, volume.spacing, volume.shape[::-1])
    labels = render.resample(render._image(model.labels.astype(np.float32), model.grid), patient, session, grid, 0.0,
                             sitk.sitkNearestNeighbor).astype(int)
    organs = np.isin(labels, [anatomy.LABEL[n] for n in ("spleen", "kidney", "renal pelvis urine", "bladder urine",
                                                          "adrenal")])
    liver = references.liver_reference(volume)
    found = detect(volume, liver, organs=organs)
    lesions = [r for r in truth_lesions
               if r["patient_id"] == patient.patient_id and r["session_id"] == session.session_id
               and float(r["tl_ratio_true"]) > 2.0 and float(r["diameter_mm"]) >= 10]
    assert lesions
    for row in lesions:
        center = np.array([float(row[k]) for k in ("center_r", "center_a", "center_s")])
        near = [c for c in found if np.linalg.norm(np.array(c.peak_ras) - center) <= float(row["diameter_mm"]) / 2 + 6]
        assert near and not near[0].physiological, row["lesion_id"]
    assert any(c.physiological for c in found)  # spleen and kidneys are found, and set aside


def _manifest(path, out, truth_lesions, patient_ids, bad=True):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s", "region"])
        for row in truth_lesions:
            if row["patient_id"] in patient_ids and row["tracer"] == "dotatate":
                series = os.path.relpath(out / "dicom" / row["patient_id"] / row["session_id"] / "PET", os.path.dirname(path))
                writer.writerow([row["patient_id"], row["session_id"], series, "R1", row["lesion_id"], row["center_r"],
                                 row["center_a"], row["center_s"], row["region"]])
        if bad:
            first = truth_lesions[0]
            writer.writerow([first["patient_id"], first["session_id"],
                             os.path.relpath(out / "dicom" / first["patient_id"] / first["session_id"] / "PET",
                                             os.path.dirname(path)), "R1", "X99", "9999", "0", "0", ""])
            writer.writerow(["", "S9", "nowhere", "R1", "X98", "1", "2", "3", ""])
            # sessions read without findings: reader R2 saw nothing (a row with empty lesion_id results);
            # for R1 the same kind of row is redundant beside R1's lesions and adds nothing
            series = os.path.relpath(out / "dicom" / first["patient_id"] / first["session_id"] / "PET",
                                     os.path.dirname(path))
            writer.writerow([first["patient_id"], first["session_id"], series, "R2", "", "", "", "", ""])
            writer.writerow([first["patient_id"], first["session_id"], series, "R1", "", "", "", "", ""])


def test_quantify_manifest_into_the_table(reference_study, truth_lesions, tmp_path, capsys):
    out, summary = reference_study
    manifest = tmp_path / "manifest.csv"
    _manifest(manifest, out, truth_lesions, {summary["patients"][0]["patient_id"]})
    table = tmp_path / "study.csv"
    assert main(["quantify", str(manifest), "--table", str(table), "--dicom-seg", "--jobs", "2"]) == 6
    err = capsys.readouterr().err
    assert "manifest row" in err and "X99" in err and "lies outside" in err and "empty patient_id" in err
    rows = StudyTable(str(table)).read()
    read = [r for r in rows if r["lesion_id"] == ""]
    assert len(read) == 1 and read[0]["reader"] == "R2" and read[0]["call"] == "" and read[0]["modality"] == "PET/CT"
    assert float(read[0]["liver_suv_mean"]) == pytest.approx(6.8, rel=0.05) and read[0]["suv_units"] == "BQML"
    rows = [r for r in rows if r["lesion_id"]]
    expected = [r for r in truth_lesions
                if r["patient_id"] == summary["patients"][0]["patient_id"] and r["tracer"] == "dotatate"]
    assert len(rows) == len(expected) > 5
    assert {r["modality"] for r in rows} == {"PET/CT", "PET/MR"} and {r["tracer"] for r in rows} == {"dotatate"}
    for row in rows:
        assert row["call"] in ("positive", "equivocal", "negative") and row["krenning"] in "01234"
        # the call and the Krenning score come from one comparison and always agree
        assert row["call"] == {"0": "negative", "1": "negative", "2": "equivocal", "3": "positive",
                               "4": "positive"}[row["krenning"]]
        assert row["segmentation_status"] in ("segmented", "not separable")
        for column in ("flags", "warnings", "peak_shift_mm", "call_low_suv", "call_high_suv", "background_source"):
            assert column in row
        if row["segmentation_status"] == "not separable":
            assert row["mtv_ml"] in ("", "nan") and "not-separable" in row["flags"] and "not separable" in row["warnings"]
        assert float(row["liver_suv_mean"]) == pytest.approx(6.8, rel=0.05)
        assert row["suv_units"] == "BQML" and row["suv_type"] == "bw" and row["reader"] == "R1"
    # the same manifest again: the same rows, updated in place
    assert main(["quantify", str(manifest), "--table", str(table), "--jobs", "1"]) == 6
    assert len(StudyTable(str(table)).read()) == len(rows) + 1
    import slicerio

    for name in os.listdir(tmp_path / "segmentations"):
        if name.endswith(".seg.nrrd"):
            segmentation = slicerio.read_segmentation(str(tmp_path / "segmentations" / name))
            ids = {s["id"] for s in segmentation["segments"]}
            session_id = name.split("_")[1]
            assert ids == {r["lesion_id"] for r in rows if r["session_id"] == session_id}
            assert all(s["terminology"]["type"][1] == "52988006" for s in segmentation["segments"])


def test_dicom_seg_is_valid_and_references_the_pet(reference_study, truth_lesions, tmp_path):
    import pydicom

    out, summary = reference_study
    manifest = tmp_path / "manifest.csv"
    _manifest(manifest, out, truth_lesions, {summary["patients"][1]["patient_id"]}, bad=False)
    assert main(["quantify", str(manifest), "--table", str(tmp_path / "t.sqlite"), "--dicom-seg", "--jobs", "1"]) == 0
    segs = [tmp_path / "segmentations" / n for n in os.listdir(tmp_path / "segmentations") if n.endswith(".dcm")]
    assert len(segs) == 2
    for path in segs:
        seg = pydicom.dcmread(path)
        assert seg.Modality == "SEG" and len(seg.SegmentSequence) >= 4
        pet_uid = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        session = path.name.split("_")[1]
        pet_files = os.listdir(out / "dicom" / summary["patients"][1]["patient_id"] / session / "PET")
        first = pydicom.dcmread(out / "dicom" / summary["patients"][1]["patient_id"] / session / "PET" / pet_files[0])
        assert pet_uid == first.SeriesInstanceUID
        if shutil.which("dciodvfy") is None:
            pytest.fail("dciodvfy is missing: install dicom3tools (python3 quickstart.py test does)")
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True).stderr
        assert "Error" not in report, report
    assert len(StudyTable(str(tmp_path / "t.sqlite")).read()) >= 8


def test_segment_command_on_dicom_and_on_an_image(reference_study, reference_suv, truth_lesions, tmp_path, capsys):
    out, summary = reference_study
    row = next(r for r in truth_lesions if r["avid"] == "1" and r["tracer"] == "dotatate")
    seed = ",".join(row[k] for k in ("center_r", "center_a", "center_s"))
    pet = out / "dicom" / row["patient_id"] / row["session_id"] / "PET"
    mask_path = tmp_path / "mask.nrrd"
    assert main(["segment", str(pet), "--seed", seed, "--out", str(mask_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    lesion = payload["lesions"][0]
    # (SUVpeak may exceed SUVmax when the 1 mL sphere reaches a hotter neighbour; PERCIST allows it)
    assert lesion["label"] == 1 and lesion["suv_max"] >= lesion["suv_mean"] > 0 and lesion["suv_peak"] > 0
    assert payload["units"]["mtv_ml"] == "mL" and payload["liver"]["liver_suv_mean"] == pytest.approx(6.8, rel=0.05)
    mask = sitk.ReadImage(str(mask_path))
    suv_path, _ = reference_suv[(row["patient_id"], row["session_id"])]
    suv = sitk.ReadImage(str(suv_path))
    assert mask.GetOrigin() == pytest.approx(suv.GetOrigin()) and mask.GetSize() == suv.GetSize()
    assert int(sitk.GetArrayFromImage(mask).sum()) == lesion["voxels"]
    # the converted SUV image gives the same lesion
    assert main(["segment", str(suv_path), "--seed", seed, "--out", str(tmp_path / "m2.nii.gz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lesions"][0]["voxels"] == lesion["voxels"]
    # the absolute method takes its SUV from --absolute: every voxel of the mask is at or above it
    level = round(0.5 * lesion["suv_max"], 2)
    assert main(["segment", str(suv_path), "--seed", seed, "--method", "absolute", "--absolute", str(level),
                 "--out", str(tmp_path / "abs.nrrd"), "--json"]) == 0
    absolute = json.loads(capsys.readouterr().out)["lesions"][0]
    assert absolute["threshold_suv"] == pytest.approx(level) and absolute["suv_min"] >= level
    # bad input: a seed outside, a seed in the background
    assert main(["segment", str(suv_path), "--seed", "9999,0,0", "--out", str(tmp_path / "x.nrrd")]) == 3
    assert "lies outside" in capsys.readouterr().err
    assert main(["segment", str(suv_path), "--seed", "1,2", "--out", str(tmp_path / "x.nrrd")]) == 2
    assert main(["candidates", str(suv_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["candidates"]
