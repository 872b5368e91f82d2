"""``netpet register`` and ``netpet match`` end to end on the reference study (through netpet.cli.main).

One patient (NETPET-001), its DOTATATE PET/CT (S1, the reference session) and PET/MR (S2) sessions:
the study table holds every lesion centre of truth/lesions.csv jittered by 1.5 mm (a segmented
centroid's uncertainty, under half a PET voxel) with the reader's own ids; the reference standard
gives each lesion's location in S1 only, so S2's findings are matched through the stored
registration. The registration runs on a 6 mm grid (``--grid 6``, as the registration tests:
lesion-centre error max 0.42 mm for PET/MR vs PET/CT there).
"""

import csv
import glob
import json
import os

import numpy as np
import pydicom
import pytest

from netpet.cli.main import main
from netpet.match import correspondence, read_correspondence, registration
from netpet.match.registration import RegistrationError

PATIENT, FIXED, MOVING, OTHER = "NETPET-001", "S1-DOTATATE-PETCT", "S2-DOTATATE-PETMR", "S3-FDG-PETCT"


def _write(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def study_files(reference_study, truth_lesions, tmp_path_factory):
    out, _summary = reference_study
    folder = tmp_path_factory.mktemp("match-cli")
    rng = np.random.default_rng(5)
    table, reference = [], []
    for session in (FIXED, MOVING, OTHER):
        pet = sorted(glob.glob(str(out / "dicom" / PATIENT / session / "PET" / "*")))
        uid = pydicom.dcmread(pet[0], stop_before_pixels=True).SeriesInstanceUID
        rows = [r for r in truth_lesions if r["patient_id"] == PATIENT and r["session_id"] == session]
        for k, index in enumerate(rng.permutation(len(rows))):
            row = rows[index]
            direction = rng.normal(size=3)
            centre = np.array([float(row[c]) for c in ("center_r", "center_a", "center_s")])
            centre += 1.5 * direction / np.linalg.norm(direction)
            table.append({"patient_id": PATIENT, "session_id": session, "modality": row["modality"],
                          "tracer": row["tracer"], "reader": "r1", "lesion_id": f"L{k + 1:02d}", "region": row["region"],
                          "call": "positive", "centroid_r": round(centre[0], 2), "centroid_a": round(centre[1], 2),
                          "centroid_s": round(centre[2], 2), "mtv_ml": row["volume_ml"], "series_uid": uid,
                          "_truth": row["lesion_id"]})
            if session == FIXED:
                reference.append({"patient_id": PATIENT, "lesion_id": row["lesion_id"], "region": row["region"],
                                  "truth": row["malignant"], "standard": row["standard"], "location_session": FIXED,
                                  "center_r": row["center_r"], "center_a": row["center_a"],
                                  "center_s": row["center_s"], "diameter_mm": row["diameter_mm"]})
    truth = {(r["session_id"], r["lesion_id"]): r.pop("_truth") for r in table}
    two = _write(folder / "table.csv", [r for r in table if r["session_id"] != OTHER])
    os.makedirs(folder / "three")
    three = _write(folder / "three" / "table.csv", table)
    return {"table": two, "three": three, "reference": _write(folder / "reference.csv", reference),
            "dicom": str(out / "dicom"), "truth": truth, "folder": folder}


def test_register_then_match(study_files, capsys, monkeypatch):
    f = study_files
    code = main(["register", "--table", f["table"], "--dicom", f["dicom"], "--patient", PATIENT, "--grid", "6"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"{PATIENT}: reference session {FIXED} (first by time point, then session id); 1 other session(s)" in printed.out
    assert f"{MOVING} -> {FIXED} on the anatomy: NMI 1." in printed.out and "registered in" in printed.out
    stored = registration.transform_path(os.path.dirname(f["table"]), PATIENT, MOVING, FIXED)
    assert os.path.exists(stored) and os.path.exists(stored[:-3] + ".json")
    # again: the stored transform is reused (same series and parameters: known from the index, no image read),
    # printed as such, in JSON too
    def no_reading(*args, **kwargs):
        raise AssertionError("read the images although the stored transform fits")

    monkeypatch.setattr(registration, "read_session", no_reading)
    assert main(["register", "--table", f["table"], "--dicom", f["dicom"], "--grid", "6", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["registrations"][0]
    assert record["status"] == "reused" and record["basis"] == "anatomy" and record["nmi"] >= registration.MIN_NMI
    assert abs(record["rotation_deg"][1]) < registration.MAX_ROTATION_DEG

    out = os.path.join(os.path.dirname(f["table"]), "correspondence.csv")
    assert main(["match", "--table", f["table"], "--reference", f["reference"], "--out", out]) == 0
    printed = capsys.readouterr().out
    n = sum(1 for k in f["truth"] if k[0] != OTHER)
    assert f"Correspondence of {n} finding(s) written to" in printed
    assert f"matched {n}, ambiguous 0 (to confirm), confirmed 0, unmatched findings 0 (false positives), missed " \
           "lesions 0 (false negatives)" in printed
    frame = read_correspondence(out)
    right = [r for r in frame.to_dict("records") if r["reference_lesion_id"] == f["truth"][(r["session_id"], r["lesion_id"])]]
    assert len(right) == n  # 100 % of the findings matched to their true lesion
    assert set(frame.loc[frame["session_id"] == MOVING, "via"]) == {
        f"registration transforms/{os.path.basename(stored)}"}

    # a person confirms one match and another lesion for it; the re-run keeps the row and says so
    first = frame.index[frame["session_id"] == MOVING][0]
    other = next(lid for lid in frame["reference_lesion_id"] if lid != frame.loc[first, "reference_lesion_id"])
    frame.loc[first, ["status", "reference_lesion_id"]] = ["confirmed", other]
    correspondence.write_correspondence(out, frame)
    assert main(["match", "--table", f["table"], "--reference", f["reference"], "--out", out, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["confirmed"] == 1 and summary["kept_confirmed_from"] == os.path.abspath(out)
    again = read_correspondence(out)
    assert again.loc[first, "status"] == "confirmed" and again.loc[first, "reference_lesion_id"] == other
    # the lesion the person named is not given to another finding of that read: its finding is unmatched now
    assert summary["counts"]["unmatched"] == 1 and summary["counts"]["missed"] == 1


def test_match_without_registration_is_refused_naming_the_command(study_files, capsys):
    f = study_files
    out = os.path.join(os.path.dirname(f["three"]), "correspondence.csv")
    assert main(["match", "--table", f["three"], "--reference", f["reference"], "--out", out]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("netpet: error: Cannot place lesion") and "netpet register --table" in err
    assert f"in session {MOVING}" in err or f"in session {OTHER}" in err
    assert "\n" not in err and not os.path.exists(out)


def test_poor_registration_is_refused_and_not_written(study_files, capsys, monkeypatch, tmp_path):
    f = study_files

    def poor(fixed, moving, **kwargs):
        raise RegistrationError(f"Cannot register session {moving.label} to session {fixed.label}: the CT/MR series "
                                "agree too little after registration (normalised mutual information 1.010, below "
                                "1.05), so check that both show the same patient and body part.")

    monkeypatch.setattr(registration, "register_sessions", poor)
    table = tmp_path / "table.csv"
    table.write_text(open(f["table"]).read())
    assert main(["register", "--table", str(table), "--dicom", f["dicom"], "--grid", "6"]) == 5
    printed = capsys.readouterr()
    assert f"{MOVING} -> {FIXED}: refused: Cannot register session {MOVING}" in printed.out
    assert printed.err.startswith("netpet: refused: 1 registration(s) of poor quality were not written")
    assert not os.path.exists(tmp_path / "transforms") or not os.listdir(tmp_path / "transforms")


def test_register_input_errors(study_files, tmp_path, capsys):
    f = study_files
    assert main(["register", "--table", f["table"], "--dicom", f["dicom"], "--reference-session", "S9"]) == 2
    assert "--reference-session S9 is not a session of patient NETPET-001" in capsys.readouterr().err
    assert main(["register", "--table", f["table"], "--dicom", f["dicom"], "--patient", "P404"]) == 3
    assert "Patient P404 is not in the study table" in capsys.readouterr().err
    rows = list(csv.DictReader(open(f["table"])))
    for row in rows:
        row.pop("series_uid")
    bare = _write(tmp_path / "bare.csv", rows)
    assert main(["register", "--table", bare, "--dicom", f["dicom"]]) == 3
    assert "has no series_uid column" in capsys.readouterr().err
    assert main(["match", "--table", f["table"], "--reference", f["reference"], "--out", str(tmp_path / "c.txt")]) == 2
    assert main(["match", "--table", f["table"], "--reference", str(tmp_path / "none.csv"),
                 "--out", str(tmp_path / "c.csv")]) == 3
