"""The digital reference study: determinism, valid DICOM, truth that matches the images.

The session's reference study (Testing/conftest.py: seed 8, two NET patients, six sessions,
about 3,000 files) is checked from every side.
"""

from __future__ import annotations

import csv
import filecmp
import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from netpet.cli.main import main
from netpet.dicom.index import index_tree
from netpet.geometry import lps_to_ras
from netpet.phantom import anatomy, generate_study, render
from netpet.phantom.patients import make_patient
from netpet.phantom.study import LESION_COLUMNS, REFERENCE_COLUMNS, reference_rows

from Testing.conftest import STUDY_PATIENTS as PATIENTS, STUDY_SEED as SEED

TRACERS, MODALITIES = ("dotatate", "fdg"), ("petct", "petmr")
SESSIONS = {"S1-DOTATATE-PETCT", "S2-DOTATATE-PETMR", "S3-FDG-PETCT"}


def test_layout_and_tables(reference_study, truth_lesions):
    out, summary = reference_study
    assert len(summary["patients"]) == PATIENTS
    assert {s["session_id"] for p in summary["patients"] for s in p["sessions"]} == SESSIONS
    for patient in summary["patients"]:
        for session in patient["sessions"]:
            folder = out / "dicom" / patient["patient_id"] / session["session_id"]
            assert sorted(os.listdir(folder)) == sorted(["PET", "CT" if session["modality"] == "PET/CT" else "MR"])
            assert (out / session["segmentation_file"]).exists()
            assert (out / "preview" / f"{patient['patient_id']}_{session['session_id']}.png").stat().st_size > 10000
    assert list(truth_lesions[0].keys()) == LESION_COLUMNS
    with open(out / "reference_standard.csv", newline="") as handle:
        reference = list(csv.DictReader(handle))
    assert list(reference[0].keys()) == REFERENCE_COLUMNS
    truth_ids = {(p["patient_id"], les["lesion_id"]) for p in summary["patients"] for les in p["lesions"]}
    assert {(r["patient_id"], r["lesion_id"]) for r in reference} == truth_ids
    assert {r["avid"] for r in truth_lesions} <= {"0", "1"}
    for row in truth_lesions:
        assert (row["avid"] == "1") == (float(row["suv_max_expected"]) >= 1.5 * float(row["background_suv"]))
    assert {r["truth"] for r in reference} <= {"0", "1"} and {r["standard"] for r in reference} <= {"histopathology", "follow-up"}
    # the same lesion keeps its id in every session of a patient
    by_session = {}
    for row in truth_lesions:
        by_session.setdefault((row["patient_id"], row["session_id"]), set()).add(row["lesion_id"])
    for patient in summary["patients"]:
        ids = [by_session[(patient["patient_id"], s["session_id"])] for s in patient["sessions"]]
        assert all(i == ids[0] for i in ids)


def test_lesion_free_patient_has_one_reference_row():
    patient = make_patient(SEED, 4, TRACERS, MODALITIES)
    patient.lesions = []
    assert reference_rows(patient) == [{"patient_id": "NETPET-005", "lesion_id": "", "region": "", "truth": 0,
                                        "standard": "follow-up", "site": "", "primary": "", "location_session": "",
                                        "center_r": "", "center_a": "", "center_s": "", "diameter_mm": "",
                                        "time_point": "", "indication": "NET work-up", "culprit": 0,
                                        "sstr_expression": "", "fdg_avid": "", "fdg_only": ""}]


def test_patient_mix_covers_the_study_design():
    """Ten patients: NET, TIO and lesion-free work-ups; lesions 4-40 mm; T/L below, near and above 1;
    FDG-avid and FDG-negative lesions; benign look-alikes; FDG for part of the patients."""
    patients = [make_patient(7, i) for i in range(10)]
    kinds = [p.kind for p in patients]
    assert kinds.count("NET") >= 5 and kinds.count("TIO") >= 2 and kinds.count("none") >= 1
    lesions = [les for p in patients for les in p.lesions]
    sizes = [les.diameter_mm for les in lesions]
    assert min(sizes) >= 4.0 - 1e-9 and max(sizes) <= 40.0 + 1e-9  # equivalent-sphere diameters
    ratios = [les.suv["dotatate"] / 6.8 for les in lesions if les.malignant]
    assert min(ratios) < 0.9 and any(0.9 <= r <= 1.3 for r in ratios) and max(ratios) > 2
    assert any(les.suv["fdg"] > 2 * 2.2 for les in lesions if les.malignant)
    assert any(les.suv["fdg"] < 2.2 for les in lesions if les.malignant)
    assert {les.kind for les in lesions if not les.malignant} >= {"physiological uncinate process uptake"}
    assert 0 < sum(any(s.tracer == "fdg" for s in p.sessions) for p in patients) < 10
    for p in patients:
        uptake = [(s.scan_start - s.injection).total_seconds() / 60 for s in p.sessions]
        assert all(50 <= u <= 70 for u in uptake)


def test_dicom_valid_by_dciodvfy(reference_study):
    out, _ = reference_study
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: install the Debian package dicom3tools (python3 quickstart.py test does)")
    files = [os.path.join(folder, name) for folder, _, names in os.walk(out / "dicom") for name in names]
    command = "xargs -0 -n 40 -P 2 sh -c 'for f; do echo \"@@ $f\"; dciodvfy \"$f\" 2>&1; done' sh"
    done = subprocess.run(command, shell=True, input="\0".join(files), capture_output=True, text=True)
    reports = done.stdout.split("@@ ")[1:]
    assert len(reports) == len(files) > 2500
    bad = [report for report in reports if "Error" in report or "Warning" in report]
    assert not bad, bad[:3]


def test_same_seed_same_bytes(reference_study, tmp_path):
    out, _ = reference_study
    again = tmp_path / "again"
    generate_study(str(again), PATIENTS, SEED, TRACERS, MODALITIES, preview=True, jobs=1)
    comparison = filecmp.dircmp(out, again)

    def differences(cmp):
        found = cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files
        return found + [d for sub in cmp.subdirs.values() for d in differences(sub)]

    # shallow=False compares contents; dircmp's cached comparison is shallow, so check files directly
    files = [os.path.relpath(os.path.join(f, n), out) for f, _, names in os.walk(out) for n in names]
    assert not differences(comparison)
    assert all(filecmp.cmp(out / f, again / f, shallow=False) for f in files)
    other = tmp_path / "other"
    generate_study(str(other), 1, SEED + 1, ("dotatate",), ("petct",), jobs=1)
    a = sorted(os.listdir(out / "dicom" / "NETPET-001" / "S1-DOTATATE-PETCT" / "PET"))[40]
    assert not filecmp.cmp(out / "dicom" / "NETPET-001" / "S1-DOTATATE-PETCT" / "PET" / a,
                           other / "dicom" / "NETPET-001" / "S1-DOTATATE-PETCT" / "PET" / a, shallow=False)


def test_index_pairs_sessions(reference_study):
    out, summary = reference_study
    index = index_tree(str(out / "dicom"), jobs=1)
    pets = index.pet_series()
    assert len(pets) == 6
    assert sorted(p.hybrid for p in pets) == ["PET/CT"] * 4 + ["PET/MR"] * 2
    assert all(p.partner_rule == "same FrameOfReferenceUID" and not p.tracer.inferred for p in pets)
    assert sorted(p.tracer.label for p in pets) == ["18F-FDG"] * 2 + ["68Ga-DOTATATE"] * 4


def _mask_ras_centroid(mask_ijk, ijk_to_lps):
    ijk = np.argwhere(mask_ijk).mean(axis=0)
    return lps_to_ras(ijk_to_lps[:3, :3] @ ijk + ijk_to_lps[:3, 3])


def test_truth_masks_aligned_with_images(reference_study, truth_lesions, reference_suv):
    import slicerio

    out, summary = reference_study
    checked = 0
    for patient in summary["patients"]:
        for session in patient["sessions"]:
            image = sitk.ReadImage(str(reference_suv[(patient["patient_id"], session["session_id"])][0]))
            segmentation = slicerio.read_segmentation(str(out / session["segmentation_file"]))
            ijk_to_lps = np.asarray(segmentation["ijkToLPS"])
            assert tuple(ijk_to_lps[:3, 3]) == pytest.approx(image.GetOrigin(), abs=1e-3)
            assert tuple(np.diag(ijk_to_lps)[:3]) == pytest.approx(image.GetSpacing(), abs=1e-4)
            assert segmentation["voxels"].shape[-3:] == image.GetSize()
            spacing = np.asarray(image.GetSpacing())
            rows = [r for r in truth_lesions
                    if r["patient_id"] == patient["patient_id"] and r["session_id"] == session["session_id"]]
            assert {s["id"] for s in segmentation["segments"]} == {r["lesion_id"] for r in rows}
            for row in rows:
                mask = slicerio.segment_mask(segmentation, slicerio.segment_from_id(segmentation, row["lesion_id"]))
                centroid = _mask_ras_centroid(mask, ijk_to_lps)
                truth = np.array([float(row[k]) for k in ("center_r", "center_a", "center_s")])
                # a voxelised ellipsoid's centroid lies within half a voxel of the true centre per axis
                assert np.all(np.abs(np.asarray(centroid) - truth) <= spacing / 2 + 1e-3), row["lesion_id"]
                radius = float(row["diameter_mm"]) / 2
                if radius >= 7.5:
                    # voxel centres inside: the volume error is at most surface x half the voxel diagonal
                    volume = int(row["mask_voxels"]) * float(np.prod(spacing)) / 1000.0
                    bound = 4 * math.pi * (radius * 1.12) ** 2 * float(np.linalg.norm(spacing)) / 2 / 1000.0
                    assert abs(volume - float(row["volume_ml"])) <= bound, row["lesion_id"]
                checked += 1
    assert checked > 10


def test_round_trip_suv_of_large_lesions(reference_study, truth_lesions, reference_suv):
    """`netpet suv` on the written DICOM gives back each large lesion's true SUV within noise."""
    checked = 0
    for row in truth_lesions:
        if float(row["diameter_mm"]) < 20 or float(row["suv_max_true"]) != float(row["suv_mean_true"]):
            continue  # small (partial volume) or necrotic (not uniform) lesions have no single value
        path, provenance = reference_suv[(row["patient_id"], row["session_id"])]
        assert provenance["units"] == "BQML" and provenance["decay_correction"] == "START"
        image = sitk.ReadImage(str(path))
        values = sitk.GetArrayFromImage(image)
        center = image.TransformPhysicalPointToContinuousIndex(lps_to_ras((float(row["center_r"]), float(row["center_a"]),
                                                                           float(row["center_s"]))))
        spacing = np.asarray(image.GetSpacing())
        k, j, i = np.meshgrid(*(np.arange(n) for n in values.shape), indexing="ij")
        distance = np.sqrt(((i - center[0]) * spacing[0]) ** 2 + ((j - center[1]) * spacing[1]) ** 2
                           + ((k - center[2]) * spacing[2]) ** 2)
        # the core: farther than 2.5 sigma of the PSF (at most 7.1 mm FWHM, Ga-68) inside the smallest radius
        core = distance <= float(row["diameter_mm"]) / 2 * 0.88 - 2.5 * 7.1 / 2.355
        core |= distance == distance.min()
        measured = float(values[core].mean())
        expected = float(row["suv_mean_expected"])
        # noise: coefficient of variation of at most 14 % per voxel at the liver (scanner setting), scaled
        # by sqrt(liver / expected); correlated over about 3 voxels, so n / 3 independent samples
        liver = float(row["liver_suv"])
        cov = 0.14 * math.sqrt(liver / expected)
        tolerance = 3 * cov * expected / math.sqrt(max(core.sum() / 3, 1)) + 0.02 * expected
        assert abs(measured - expected) <= tolerance, (row["lesion_id"], measured, expected, tolerance)
        checked += 1
    assert checked >= 2


def test_physiology_and_petmr_bone_bias(reference_study, reference_suv):
    """Organ uptake measured in the written PET follows DOTATATE and FDG physiology, and bone reads
    lower on PET/MR than on PET/CT in the same patient."""
    patient = make_patient(SEED, 1, TRACERS, MODALITIES)
    model = render.build_model(patient)
    labels = render._image(model.labels.astype(np.float32), model.grid)
    means = {}
    for session in patient.sessions:
        path, _ = reference_suv[(patient.patient_id, session.session_id)]
        image = sitk.ReadImage(str(path))
        grid = render.ScanGrid(image.GetOrigin(), image.GetSpacing(), image.GetSize())
        organ = render.resample(labels, patient, session, grid, 0.0, sitk.sitkNearestNeighbor).astype(int)
        values = sitk.GetArrayFromImage(image)
        means[session.session_id] = {}
        for name in ("spleen", "kidney", "liver", "red marrow", "brain"):
            region = sitk.GetArrayFromImage(sitk.BinaryErode(
                sitk.GetImageFromArray((organ == anatomy.LABEL[name]).astype(np.uint8)), [1, 1, 1])) > 0
            means[session.session_id][name] = float(values[region].mean())
    ct, mr, fdg = means["S1-DOTATATE-PETCT"], means["S2-DOTATATE-PETMR"], means["S3-FDG-PETCT"]
    # DOTATATE: spleen > kidneys > liver (Kuyumcu 2013); the liver within 10 % of its truth, 6.8
    assert ct["spleen"] > ct["kidney"] > ct["liver"] > ct["brain"]
    assert ct["liver"] == pytest.approx(6.8, rel=0.10)
    # FDG: brain well above liver, liver about 2.2
    assert fdg["brain"] > 2 * fdg["liver"] and fdg["liver"] == pytest.approx(2.2, rel=0.10)
    assert mr["red marrow"] < 0.97 * ct["red marrow"]
    assert mr["liver"] == pytest.approx(ct["liver"], rel=0.05)


def test_phantom_command(tmp_path, capsys):
    assert main(["phantom", str(tmp_path / "case"), "--case", "liver-threshold"]) == 0
    assert "1 patients, 1 sessions, 5 lesions" in capsys.readouterr().out
    text = (tmp_path / "case" / "CASE.md").read_text()
    assert "Krenning" in text and "| L05 |" in text
    assert main(["phantom", str(tmp_path / "x"), "--tracers", "pib"]) == 2
    assert "tracers must be among" in capsys.readouterr().err
    assert main(["phantom", str(tmp_path / "x"), "--case", "nothing"]) == 2
    assert main(["phantom", "--list-cases"]) == 0
    assert "tio-foot-fdg-negative" in capsys.readouterr().out
