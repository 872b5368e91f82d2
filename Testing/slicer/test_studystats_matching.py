"""StudyStats Logic with lesion correspondence on real MRML (slicer-core): match, statistics, pairs side by side.

A reader's findings of the reference study under the reader's own ids (C01, C02 ... in click order, never the
reference ids), centroids 1.5 mm off the true centres (under half a PET voxel: 4 x 4 x 3 mm on the PET/CT),
one extra finding where no lesion is (a false positive) and one lesion left unfound (a false negative).
The reference standard gives every lesion's location per session (a locations CSV written from the truth),
so no registration is needed. Expected: every finding matched to its own lesion, the extra one unmatched,
the left-out one missed; the statistics through the Logic equal the core's on the same files.
The Widget is not exercised here (it needs Qt and the application).
"""

import csv
import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

import slicer

PATIENT, LEFT, RIGHT = "NETPET-001", "S1-DOTATATE-PETCT", "S2-DOTATATE-PETMR"
JITTER_MM = 1.5


def _write(path, rows, columns):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


@pytest.fixture()
def matched_study(tmp_path, truth_lesions):
    rng = np.random.default_rng(3)
    table, locations, truth_of = [], [], {}
    reference = {}
    sessions = sorted({(r["patient_id"], r["session_id"], r["modality"], r["tracer"]) for r in truth_lesions})
    left_out = next(r for r in truth_lesions if r["patient_id"] == PATIENT and r["session_id"] == RIGHT)
    for patient, session, modality, tracer in sessions:
        base = {"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer, "reader": "R1",
                "series_uid": f"uid-{patient}-{session}"}
        table.append({**base, "lesion_id": "", "call": ""})
        rows = [r for r in truth_lesions if r["patient_id"] == patient and r["session_id"] == session]
        order = rng.permutation(len(rows))
        for number, index in enumerate(order):
            r = rows[index]
            reference[(patient, r["lesion_id"])] = {"patient_id": patient, "lesion_id": r["lesion_id"],
                                                    "region": r["region"], "truth": r["malignant"],
                                                    "standard": r["standard"]}
            locations.append({"patient_id": patient, "lesion_id": r["lesion_id"], "session_id": session,
                              "center_r": r["center_r"], "center_a": r["center_a"], "center_s": r["center_s"],
                              "diameter_mm": r["diameter_mm"]})
            if r is left_out:
                continue
            centre = np.array([float(r["center_r"]), float(r["center_a"]), float(r["center_s"])])
            offset = rng.normal(size=3)
            centre = centre + JITTER_MM * offset / np.linalg.norm(offset)
            finding = f"C{number + 1:02d}"
            truth_of[(patient, session, finding)] = r["lesion_id"]
            table.append({**base, "lesion_id": finding, "region": r["region"], "call": "positive",
                          "suv_max": r["suv_max_true"], "mtv_ml": r["volume_ml"], "centroid_r": centre[0],
                          "centroid_a": centre[1], "centroid_s": centre[2]})
        if patient == PATIENT and session == LEFT:  # a finding where no lesion is: 80 mm right of the first one
            first = rows[0]
            table.append({**base, "lesion_id": "C99", "region": "soft tissue", "call": "positive", "suv_max": 3.0,
                          "mtv_ml": 1.0, "centroid_r": float(first["center_r"]) - 80.0,
                          "centroid_a": first["center_a"], "centroid_s": first["center_s"]})
    columns = ["patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "call", "suv_max",
               "mtv_ml", "centroid_r", "centroid_a", "centroid_s", "series_uid"]
    paths = {"table": _write(tmp_path / "study.csv", table, columns),
             "reference": _write(tmp_path / "reference.csv", list(reference.values()),
                                 ["patient_id", "lesion_id", "region", "truth", "standard"]),
             "locations": _write(tmp_path / "locations.csv", locations,
                                 ["patient_id", "lesion_id", "session_id", "center_r", "center_a", "center_s",
                                  "diameter_mm"])}
    return paths, truth_of, left_out


def test_match_then_statistics_then_pairs(mrml, matched_study, reference_suv, tmp_path):
    from netpet.stats import StatsOptions, analyse, load_study
    from StudyStats import StudyStatsLogic

    paths, truth_of, left_out = matched_study
    logic = StudyStatsLogic()
    out = logic.matchLesions(paths["table"], paths["reference"], "", paths["locations"])
    assert out["path"] == os.path.join(os.path.dirname(paths["table"]), "correspondence.csv")
    frame = out["frame"]
    findings = frame[frame["lesion_id"] != ""]
    assert len(findings) == len(truth_of) + 1
    for row in findings.to_dict("records"):
        key = (row["patient_id"], row["session_id"], row["lesion_id"])
        if row["lesion_id"] == "C99":
            assert row["status"] == "unmatched" and row["reference_lesion_id"] == ""
        else:
            assert row["reference_lesion_id"] == truth_of[key], key
            assert row["status"] in ("matched", "ambiguous")
    missed = frame[frame["status"] == "missed"]
    assert list(zip(missed["patient_id"], missed["session_id"], missed["reference_lesion_id"])) == [
        (PATIENT, RIGHT, left_out["lesion_id"])]
    assert out["table"].GetNumberOfRows() == len(frame)
    assert out["summary"]["counts"]["unmatched"] == 1 and out["summary"]["counts"]["missed"] == 1

    result = logic.run(paths["table"], paths["reference"], str(tmp_path / "out"), bootstrap=0, figures=False,
                       correspondencePath=out["path"])
    expected = analyse(load_study(paths["table"], paths["reference"], correspondence=out["path"]),
                       StatsOptions(bootstrap=0)).result
    assert [(e["level"], e["modality"], e["tp"], e["fp"], e["fn"], e["tn"]) for e in result["result"]["accuracy"]] == \
        [(e["level"], e["modality"], e["tp"], e["fp"], e["fn"], e["tn"]) for e in expected["accuracy"]]
    lesion_level = [e for e in expected["accuracy"] if e["level"] == "lesion" and e["modality"] == "PET/MR"]
    assert lesion_level and lesion_level[0]["fn"] >= 1  # the left-out lesion counts as missed on PET/MR
    assert result["tables"]["staging"].IsA("vtkMRMLTableNode")

    pairs = logic.pairs(paths["table"], out["path"], PATIENT, LEFT, RIGHT)
    statuses = {p["track_id"]: p["pair_status"] for p in pairs}
    assert statuses[left_out["lesion_id"]] == "a only"
    assert sum(s == "both" for s in statuses.values()) == len(statuses) - 2  # all but the left-out one and C99
    from NETPETLib import nodes

    for session in (LEFT, RIGHT):
        path, provenance = reference_suv[(PATIENT, session)]
        node = nodes.volumeNodeFromImage(sitk.ReadImage(str(path)), session)
        nodes.setProvenance(node, provenance)
        node.SetAttribute(nodes.ATTRIBUTE_PREFIX + "SeriesInstanceUID", f"uid-{PATIENT}-{session}")
    both = next(p for p in pairs if p["pair_status"] == "both")
    shown = logic.showPair(both, paths["table"])
    red = mrml.GetSingletonNode("Red", "vtkMRMLSliceCompositeNode")
    assert mrml.GetNodeByID(red.GetBackgroundVolumeID()).GetName() == LEFT
    assert shown["points"]["a"] == pytest.approx((both["centroid_r_a"], both["centroid_a_a"], both["centroid_s_a"]))
    one_sided = next(p for p in pairs if p["pair_status"] == "a only")
    shown = logic.showPair(one_sided, paths["table"])  # no registration stored: the same RAS point, said so
    assert "no registration given" in shown["notes"][0]
    with pytest.raises(ValueError, match="is not loaded; load it with NETPET Reader"):
        logic.showPair({**both, "session_id_b": "S3-FDG-PETCT", "series_uid_b": ""}, paths["table"])


def test_match_refuses_without_inputs(mrml):
    from StudyStats import StudyStatsLogic

    with pytest.raises(ValueError, match="Choose the study table and the reference standard"):
        StudyStatsLogic().matchLesions("", "")
    with pytest.raises(ValueError, match="No correspondence table is chosen"):
        StudyStatsLogic().pairs("x.csv", "", PATIENT, LEFT, RIGHT)


def test_register_then_match_through_the_registrations(mrml, reference_study, truth_lesions, tmp_path):
    """The Logic registers a patient's sessions (netpet register's core) and matches through the stored transforms:
    the reference standard gives each lesion one location (in S1), the findings of S2 and S3 are 1.5 mm off their
    true centres in their own sessions. Expected: every finding on its true lesion via a registration file."""
    from StudyStats import StudyStatsLogic

    out, summary = reference_study
    patient = next(p for p in summary["patients"] if p["patient_id"] == PATIENT)
    rng = np.random.default_rng(5)
    table, reference, truth_of = [], {}, {}
    for session in patient["sessions"]:
        base = {"patient_id": PATIENT, "session_id": session["session_id"], "modality": "", "tracer": "",
                "reader": "R1", "series_uid": session["pet_series_uid"]}
        rows = [r for r in truth_lesions if r["patient_id"] == PATIENT and r["session_id"] == session["session_id"]]
        for number, r in enumerate(rows):
            base.update(modality=r["modality"], tracer=r["tracer"])
            if session["session_id"] == LEFT:
                reference[r["lesion_id"]] = {"patient_id": PATIENT, "lesion_id": r["lesion_id"], "region": r["region"],
                                             "truth": r["malignant"], "standard": r["standard"],
                                             "location_session": LEFT, "center_r": r["center_r"],
                                             "center_a": r["center_a"], "center_s": r["center_s"],
                                             "diameter_mm": r["diameter_mm"]}
            centre = np.array([float(r[f"center_{a}"]) for a in "ras"])
            offset = rng.normal(size=3)
            centre = centre + JITTER_MM * offset / np.linalg.norm(offset)
            finding = f"F{number + 1}"
            truth_of[(session["session_id"], finding)] = r["lesion_id"]
            table.append({**base, "lesion_id": finding, "region": r["region"], "call": "positive",
                          "mtv_ml": r["volume_ml"], "centroid_r": centre[0], "centroid_a": centre[1],
                          "centroid_s": centre[2]})
    columns = ["patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "call", "mtv_ml",
               "centroid_r", "centroid_a", "centroid_s", "series_uid"]
    table_path = _write(tmp_path / "study.csv", table, columns)
    reference_path = _write(tmp_path / "reference.csv", list(reference.values()), list(next(iter(reference.values()))))
    logic = StudyStatsLogic()
    with pytest.raises(ValueError, match="No DICOM folder is chosen"):
        logic.registerSessions(table_path, "")
    # grid 6 mm: twice as fast as the default 4 mm, lesion-centre errors under 0.7 mm on this study
    # (Testing/core/test_match_registration.py)
    records = logic.registerSessions(table_path, str(out / "dicom"), gridMm=6.0)
    assert [(r["moving_session"], r["fixed_session"], r["status"]) for r in records] == [
        (RIGHT, LEFT, "registered"), ("S3-FDG-PETCT", LEFT, "registered")]
    assert all(os.path.exists(r["file"]) for r in records)
    lines = logic.registrationLines(records)
    assert len(lines) == 2 and "registered on the anatomy, NMI" in lines[0]
    again = logic.registerSessions(table_path, str(out / "dicom"), gridMm=6.0)
    assert {r["status"] for r in again} == {"reused"}
    frame = logic.matchLesions(table_path, reference_path)["frame"]
    for row in frame[frame["lesion_id"] != ""].to_dict("records"):
        assert row["reference_lesion_id"] == truth_of[(row["session_id"], row["lesion_id"])]
        assert row["via"] == "location" if row["session_id"] == LEFT else row["via"].startswith("registration")


def test_follow_up_through_the_logic(mrml, tmp_path):
    """Two time points of one PET/CT series (hand-made): the Logic writes both CSVs and the table nodes; numbers
    checked by hand (SUVmax 10 -> 5: -50 %; a track new at FU1; a track gone at FU1)."""
    from StudyStats import StudyStatsLogic

    base = {"patient_id": "P1", "modality": "PET/CT", "tracer": "dotatate", "reader": "R1", "call": "positive",
            "suv_type": "bw"}
    table = [{**base, "session_id": "S1", "time_point": "baseline", "days_from_baseline": 0, "lesion_id": "A",
              "suv_max": 10, "suv_peak": 8, "mtv_ml": 4, "suv_mean": 6, "tl_ratio": 2},
             {**base, "session_id": "S1", "time_point": "baseline", "days_from_baseline": 0, "lesion_id": "B",
              "suv_max": 6, "suv_peak": 5, "mtv_ml": 2, "suv_mean": 4, "tl_ratio": 1.5},
             {**base, "session_id": "S2", "time_point": "FU1", "days_from_baseline": 100, "lesion_id": "A2",
              "suv_max": 5, "suv_peak": 4, "mtv_ml": 2, "suv_mean": 3, "tl_ratio": 1.2},
             {**base, "session_id": "S2", "time_point": "FU1", "days_from_baseline": 100, "lesion_id": "C2",
              "suv_max": 7, "suv_peak": 6, "mtv_ml": 1, "suv_mean": 5, "tl_ratio": 1.8}]
    columns = list(table[0])
    corr_columns = ["patient_id", "session_id", "modality", "tracer", "reader", "time_point", "lesion_id",
                    "reference_lesion_id", "track_id", "status", "distance_mm", "gate_mm", "registration_error_mm",
                    "via", "candidates", "note"]
    row = lambda session, tp, lesion, ref, status: {  # noqa: E731
        "patient_id": "P1", "session_id": session, "modality": "PET/CT", "tracer": "dotatate", "reader": "R1",
        "time_point": tp, "lesion_id": lesion, "reference_lesion_id": ref, "track_id": ref, "status": status,
        "distance_mm": "1.0" if lesion else "", "gate_mm": "8.0", "registration_error_mm": "0",
        "via": "location", "candidates": "", "note": ""}
    corr = [row("S1", "baseline", "A", "L1", "matched"), row("S1", "baseline", "B", "L2", "matched"),
            row("S2", "FU1", "A2", "L1", "matched"), row("S2", "FU1", "C2", "L3", "matched"),
            row("S2", "FU1", "", "L2", "missed")]
    table_path = _write(tmp_path / "study.csv", table, columns)
    corr_path = _write(tmp_path / "correspondence.csv", corr, corr_columns)
    out = StudyStatsLogic().followUp(table_path, corr_path, str(tmp_path / "out"))
    assert os.path.exists(os.path.join(out["folder"], "lesion_changes.csv"))
    lesions = pd.read_csv(os.path.join(out["folder"], "lesion_changes.csv"), keep_default_na=False)
    fu = {r["track_id"]: r for r in lesions.to_dict("records") if r["time_point"] == "FU1"}
    assert fu["L1"]["status"] == "persisting" and float(fu["L1"]["suv_max_change_pct"]) == pytest.approx(-50.0)
    assert fu["L3"]["status"] == "new" and fu["L2"]["status"] == "disappeared"
    patients = out["tables"]["patients"]
    assert patients.GetNumberOfRows() == 2 and out["tables"]["lesions"].GetNumberOfRows() == len(lesions)
    column = patients.GetTable().GetColumnByName("n_new")
    assert [column.GetValue(i) for i in range(2)] == [0, 1]
    with pytest.raises(ValueError, match="match the lesions first"):
        StudyStatsLogic().followUp(table_path, "")
