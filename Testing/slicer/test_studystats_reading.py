"""StudyStatsLogic's reading standards and reader-study tools on real MRML (slicer-core): the NETPET grade, SSTR-RADS
and PRRT tables, the MRMC ROC table, blinded reading lists and the adjudication list, each equal to the core's result
on the same files (the Logic is an adapter). The Widget is not exercised here (it needs Qt and the application).

The study, built by hand: six patients (P1-P4 with a malignant lesion L1, P5-P6 with a benign one), read by R1 and R2
on 68Ga-DOTATATE PET/CT and PET/MR and on 18F-FDG PET/CT, each finding with the reader's confidence.
"""

import csv
import json
import os

import pytest

import slicer

COLUMNS = ["patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "lesion_type", "call",
           "krenning", "suv_max", "tl_ratio", "liver_suv_mean", "spleen_suv_mean", "confidence", "reader_call",
           "series_uid", "time_point"]
#: confidence per (reader, modality) for P1..P6 (P1-P4 malignant)
CONFIDENCE = {("R1", "PET/CT"): [5, 4, 4, 3, 2, 3], ("R1", "PET/MR"): [5, 5, 3, 3, 1, 2],
              ("R2", "PET/CT"): [4, 4, 5, 2, 2, 1], ("R2", "PET/MR"): [5, 4, 3, 4, 3, 1]}


def _study(tmp_path):
    rows, reference = [], []
    for n in range(1, 7):
        patient = f"P{n}"
        malignant = n <= 4
        reference.append({"patient_id": patient, "lesion_id": "L1", "region": "liver" if malignant else "pancreas",
                          "truth": int(malignant), "standard": "histology"})
        for reader in ("R1", "R2"):
            for modality in ("PET/CT", "PET/MR"):
                confidence = CONFIDENCE[(reader, modality)][n - 1]
                rows.append({"patient_id": patient, "session_id": f"S-DOTA-{modality[-2:]}", "modality": modality,
                             "tracer": "dotatate", "reader": reader, "lesion_id": "L1",
                             "region": "liver" if malignant else "pancreas",
                             "lesion_type": "liver metastasis" if malignant else "physiological uptake",
                             "call": "positive" if confidence >= 4 else "negative", "krenning": 3 if confidence >= 4 else 1,
                             "suv_max": 8.0 + confidence, "tl_ratio": (8.0 + confidence) / 6.0, "liver_suv_mean": 6.0,
                             "spleen_suv_mean": 18.0, "confidence": confidence,
                             "reader_call": "positive" if confidence >= 4 else "negative",
                             "series_uid": f"uid-{patient}-{modality}", "time_point": ""})
            # FDG: P2 avid (FDG+), the rest FDG-negative
            rows.append({"patient_id": patient, "session_id": "S-FDG-CT", "modality": "PET/CT", "tracer": "fdg",
                         "reader": reader, "lesion_id": "L1", "region": rows[-1]["region"],
                         "lesion_type": rows[-1]["lesion_type"], "call": "positive" if n == 2 else "negative",
                         "krenning": "", "suv_max": 9.0 if n == 2 else 2.0, "tl_ratio": 3.6 if n == 2 else 0.8,
                         "liver_suv_mean": 2.5, "spleen_suv_mean": 2.0, "confidence": "", "reader_call": "",
                         "series_uid": f"uid-{patient}-fdg", "time_point": ""})
    table = tmp_path / "study.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    ref = tmp_path / "reference.csv"
    with open(ref, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["patient_id", "lesion_id", "region", "truth", "standard"])
        writer.writeheader()
        writer.writerows(reference)
    return str(table), str(ref)


def _column(node, name):
    table = node.GetTable()
    array = table.GetColumnByName(name)
    assert array is not None, name
    return [array.GetValue(i) for i in range(node.GetNumberOfRows())]


def test_reading_standards_as_table_nodes(mrml, tmp_path):
    from netpet.clinical.scores import read_table_scores

    from StudyStats import StudyStatsLogic

    table, _reference = _study(tmp_path)
    out = StudyStatsLogic().readingStandards(table, outputFolder=str(tmp_path / "out"))
    expected = read_table_scores(table)
    assert out["result"] == expected
    assert set(out["files"]) == {"netpet-scores.csv", "fdg-sstr-discordant.csv", "sstr-rads-lesions.csv",
                                 "sstr-rads-scans.csv", "prrt-summary.csv", "scores.json"}
    for path in out["files"].values():
        assert os.path.exists(path)
    node = out["tables"]["netpet_scores"]
    assert node.GetNumberOfRows() == len(expected["netpet_scores"])
    grades = dict(zip(zip(_column(node, "patient_id"), _column(node, "reader"), _column(node, "modality")),
                      _column(node, "grade")))
    # P1 (R1, PET/CT): DOTATATE Krenning 3 (SSTR-positive), FDG negative -> P1 (Chan et al. 2017)
    assert grades[("P1", "R1", "PET/CT")] == "P1"
    # P2: SSTR-positive and FDG-positive, FDG T/L 3.6 over DOTATATE T/L (8+4)/6 = 2.0 -> ratio 1.8 > 1.3 -> P4
    assert grades[("P2", "R1", "PET/CT")] == "P4"
    assert out["tables"]["prrt"].GetNumberOfRows() == len(expected["prrt"])
    assert out["tables"]["sstr_rads_scans"].GetNumberOfRows() == len(expected["sstr_rads_scans"])


def test_mrmc_as_a_table_node(mrml, tmp_path):
    from netpet.stats.data import load_study, units_for
    from netpet.stats.mrmc import study_mrmc

    from StudyStats import StudyStatsLogic

    table, reference = _study(tmp_path)
    out = StudyStatsLogic().mrmcAnalysis(table, reference, tests=["PET/CT dotatate", "PET/MR dotatate"],
                                         outputFolder=str(tmp_path / "out"))
    expected = study_mrmc(units_for(load_study(table, reference)), "patient", ["PET/CT dotatate", "PET/MR dotatate"])
    assert out["result"]["rrrc"]["p"] == pytest.approx(expected["rrrc"]["p"], rel=1e-12)
    with open(os.path.join(out["folder"], "mrmc.json")) as handle:
        assert json.load(handle)["rrrc"]["f"] == pytest.approx(expected["rrrc"]["f"], rel=1e-12)
    # R1 on PET/CT: malignant 5, 4, 4, 3 against benign 2, 3: 7.5 of 8 pairs (a tie counts 1/2) -> AUC 0.9375;
    # R1 on PET/MR: 5, 5, 3, 3 against 1, 2: all 8 pairs -> 1.0
    auc = {(a["reader"], a["test"]): a["auc"] for a in out["result"]["auc"]}
    assert auc[("R1", "PET/CT dotatate")] == pytest.approx(0.9375, abs=1e-12)
    assert auc[("R1", "PET/MR dotatate")] == pytest.approx(1.0, abs=1e-12)
    assert out["table"].GetNumberOfRows() > 0
    assert "PET/CT dotatate" in out["summary"]


def test_reading_lists_and_adjudication(mrml, tmp_path):
    from StudyStats import StudyStatsLogic

    table, _reference = _study(tmp_path)
    logic = StudyStatsLogic()
    lists = logic.readingLists(table, ["R1", "R2"], seed=7, outputFolder=str(tmp_path / "out"))
    assert len(lists["files"]) == 2
    for path in lists["files"]:
        with open(path, newline="") as handle:
            read = list(csv.DictReader(handle))
        assert len(read) == 6 * 3  # every session of every patient, once
        # blinded: nothing of any result in a reading list
        assert not {"call", "confidence", "suv_max", "lesion_id", "reader_call"} & set(read[0])
    again = logic.readingLists(table, ["R1", "R2"], seed=7, outputFolder=str(tmp_path / "again"))
    for a, b in zip(lists["files"], again["files"]):
        assert open(a).read() == open(b).read()  # the same seed gives the same order
    adjudication = logic.adjudicationList(table, ["R1", "R2"], outputFolder=str(tmp_path / "out"))
    # R1 and R2 disagree on the SUV-rule call where one confidence is >= 4 and the other not:
    # PET/CT P4 (3 vs 2: both negative, agree), P6 (3 vs 1: agree)... counted by the core itself
    from netpet.quant.table import StudyTable
    from netpet.reading.adjudication import disagreements

    assert adjudication["count"] == len(disagreements(StudyTable(table).read(), ["R1", "R2"]))
    assert adjudication["count"] > 0 and os.path.exists(adjudication["path"])
