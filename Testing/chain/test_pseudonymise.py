"""``--pseudonymise KEYFILE`` through every command that exports patient data (issue 11, item 9):
index, suv, quantify (table, .seg.nrrd, DICOM SEG) and stats, on the reference study. Each export
must carry no archive patient id, no original date of the study and no original UID (except the
DICOM SEG's references to its source images), and the numbers must be those of a run without it."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pydicom
import SimpleITK as sitk

from netpet.cli.main import main
from netpet.privacy import Pseudonymiser

KEY = "5f0c3a9e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a29180716"


def _key(tmp_path):
    path = tmp_path / "study.key"
    path.write_text(KEY + "\n")
    return str(path), Pseudonymiser(KEY.encode())


def _all_text(folder):
    texts = []
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            texts.append(name)
            if name.endswith((".csv", ".json", ".html", ".txt")):
                with open(path, encoding="utf-8", errors="replace") as handle:
                    texts.append(handle.read())
    return "\n".join(texts)


def test_index_lists_pseudonyms_shifted_dates_and_no_paths(reference_study, tmp_path, capsys):
    out, summary = reference_study
    key, keyed = _key(tmp_path)
    assert main(["index", str(out / "dicom"), "--json", "--jobs", "1"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["index", str(out / "dicom"), "--json", "--jobs", "1", "--pseudonymise", key]) == 0
    text = capsys.readouterr().out
    masked = json.loads(text)
    ids = [p["patient_id"] for p in summary["patients"]]
    assert sorted(p["patient_id"] for p in masked["patients"]) == sorted(keyed.patient(i) for i in ids)
    assert not any(i in text for i in ids) and str(out) not in text
    first = plain["patients"][0]["studies"][0]
    assert first["study_uid"] not in text and first["date"] not in text
    for series in first["series"]:
        assert series["series_uid"] not in text
    # the same number of series, each still paired and labelled
    count = lambda index: sum(len(st["series"]) for p in index["patients"] for st in p["studies"])  # noqa: E731
    assert count(masked) == count(plain) > 0
    assert main(["index", str(out / "dicom"), "--pseudonymise", key, "--include-identity"]) == 2


def test_suv_provenance_is_pseudonymised_and_the_image_unchanged(reference_study, reference_suv, tmp_path):
    out, summary = reference_study
    key, _ = _key(tmp_path)
    patient = summary["patients"][0]["patient_id"]
    session = summary["patients"][0]["sessions"][0]["session_id"]
    image, provenance = reference_suv[(patient, session)]
    target = tmp_path / "suv.nrrd"
    assert main(["suv", str(out / "dicom" / patient / session / "PET"), "--out", str(target),
                 "--provenance", str(tmp_path / "p.json"), "--pseudonymise", key]) == 0
    text = (tmp_path / "p.json").read_text()
    masked = json.loads(text)
    assert provenance["series_uid"] not in text and provenance["reference_time"][:10] not in text
    assert masked["reference_time"][10:] == provenance["reference_time"][10:]  # the time of day is kept
    assert masked["suv_type"] == provenance["suv_type"]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(target))),
                                  sitk.GetArrayFromImage(sitk.ReadImage(str(image))))


def test_quantify_and_stats_export_pseudonyms_only(reference_study, truth_lesions, tmp_path):
    out, summary = reference_study
    key, keyed = _key(tmp_path)
    patient = summary["patients"][0]["patient_id"]
    rows = [r for r in truth_lesions if r["patient_id"] == patient and r["session_id"].endswith("DOTATATE-PETCT")]
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s",
                         "region"])
        for r in rows[:3]:
            writer.writerow([patient, r["session_id"], str(out / "dicom" / patient / r["session_id"] / "PET"), "R1",
                             r["lesion_id"], r["center_r"], r["center_a"], r["center_s"], r["region"]])
    plain, masked = tmp_path / "plain" / "table.csv", tmp_path / "masked" / "table.csv"
    assert main(["quantify", str(manifest), "--table", str(plain), "--jobs", "1"]) == 0
    assert main(["quantify", str(manifest), "--table", str(masked), "--jobs", "1", "--dicom-seg",
                 "--pseudonymise", key]) == 0
    exported = _all_text(masked.parent)
    assert patient not in exported and keyed.patient(patient) in exported
    with open(plain, newline="") as a, open(masked, newline="") as b:
        before, after = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert len(before) == len(after) == 3
    for x, y in zip(sorted(before, key=lambda r: r["lesion_id"]), sorted(after, key=lambda r: r["lesion_id"])):
        assert y["patient_id"] == keyed.patient(x["patient_id"])
        assert x["series_uid"] not in exported
        assert x["suv_reference_time"][:10] not in exported and y["suv_reference_time"][10:] == x["suv_reference_time"][10:]
        assert y["suv_max"] == x["suv_max"] and y["mtv_ml"] == x["mtv_ml"] and y["call"] == x["call"]
    seg = [f for f in os.listdir(masked.parent / "segmentations") if f.endswith(".dcm")]
    assert len(seg) == 1 and seg[0].startswith(keyed.patient(patient))
    ds = pydicom.dcmread(str(masked.parent / "segmentations" / seg[0]))
    assert ds.PatientID == str(ds.PatientName) == keyed.patient(patient) and ds.PatientBirthDate == ""
    assert ds.PatientIdentityRemoved == "YES"
    source = pydicom.dcmread(next((out / "dicom" / patient / rows[0]["session_id"] / "PET").iterdir()),
                             stop_before_pixels=True)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID  # still references its PET
    assert ds.StudyDate != source.StudyDate
    # statistics: the reference standard keeps the archive ids; the outputs name pseudonyms only
    report = tmp_path / "stats"
    assert main(["stats", str(masked), "--reference", str(out / "reference_standard.csv"), "--out", str(report),
                 "--no-figures", "--pseudonymise", key]) == 0
    text = _all_text(report)
    assert keyed.patient(patient) in text
    assert not any(p["patient_id"] in text for p in summary["patients"])


def test_a_missing_or_short_key_is_one_sentence_and_exit_3(tmp_path, capsys):
    short = tmp_path / "short.key"
    short.write_text("abc")
    assert main(["index", str(tmp_path), "--pseudonymise", str(short)]) == 3
    err = capsys.readouterr().err.strip()
    assert "short.key holds 3 bytes" in err and "\n" not in err
    assert main(["index", str(tmp_path), "--pseudonymise", str(tmp_path / "none.key")]) == 3
    assert "none.key does not exist" in capsys.readouterr().err
