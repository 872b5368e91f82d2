"""StudyStatsLogic on real MRML (slicer-core): table and plot chart nodes, and a table storage round trip."""

import csv
import os

import pytest

import slicer


def _study(tmp_path, reference_study):
    """The reference study's truth as a reader's table (avid lesions found, call by the true T/L side)."""
    out, summary = reference_study
    with open(out / "truth" / "lesions.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    rows = []
    for t in truth:
        rows.append({"patient_id": t["patient_id"], "session_id": t["session_id"], "modality": t["modality"],
                     "tracer": t["tracer"], "reader": "R1", "lesion_id": "", "call": ""})
        if t["avid"] == "1":
            rows.append({**rows[-1], "lesion_id": t["lesion_id"], "region": t["region"],
                         "call": "positive" if float(t["tl_ratio_true"]) > 1 else "negative",
                         "suv_max": t["suv_max_true"], "tl_ratio": t["tl_ratio_true"]})
    table = tmp_path / "study.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["patient_id", "session_id", "modality", "tracer", "reader", "lesion_id",
                                         "region", "call", "suv_max", "tl_ratio"])
        writer.writeheader()
        writer.writerows(rows)
    return str(table), str(out / "reference_standard.csv")


def test_statistics_as_table_and_plot_nodes(mrml, reference_study, tmp_path):
    from netpet.stats import StatsOptions, analyse, load_study

    from StudyStats import StudyStatsLogic

    table, reference = _study(tmp_path, reference_study)
    out = StudyStatsLogic().run(table, reference, str(tmp_path / "out"), "clopper-pearson", bootstrap=200,
                                figures=False)
    assert os.path.exists(out["report"])
    expected = analyse(load_study(table, reference), StatsOptions(ci="clopper-pearson", bootstrap=200)).result
    accuracy = out["tables"]["accuracy"]
    assert accuracy.GetNumberOfRows() == len(expected["accuracy"])
    sensitivity = accuracy.GetTable().GetColumnByName("sensitivity")
    low = accuracy.GetTable().GetColumnByName("sensitivity_ci_low")
    for i, entry in enumerate(expected["accuracy"]):
        if entry["sensitivity"]["estimate"] is None:
            assert sensitivity.GetValue(i) != sensitivity.GetValue(i)  # NaN where undefined
        else:
            assert sensitivity.GetValue(i) == pytest.approx(entry["sensitivity"]["estimate"])
            assert low.GetValue(i) == pytest.approx(entry["sensitivity"]["ci_low"])
    comparisons = out["tables"]["comparisons"]
    assert comparisons.GetNumberOfRows() == len(expected["comparisons"])
    tests = {comparisons.GetTable().GetValue(i, 2).ToString() for i in range(comparisons.GetNumberOfRows())}
    assert {"mcnemar-exact", "mcnemar-chi2", "mcnemar-clustered"} <= tests
    # ROC: a chart with a series per group, each series reading its own table of (1 - spec, sens)
    chart = out["charts"]["roc_suv_max"]
    assert chart.GetNumberOfPlotSeriesNodes() == len({(e["modality"], e["tracer"]) for e in expected["roc"]
                                                      if e["variable"] == "suv_max" and e["auc"] is not None})
    series = chart.GetNthPlotSeriesNode(0)
    points = series.GetTableNode()
    fpr = [points.GetTable().GetValue(i, 0).ToDouble() for i in range(points.GetNumberOfRows())]
    tpr = [points.GetTable().GetValue(i, 1).ToDouble() for i in range(points.GetNumberOfRows())]
    assert fpr[0] == 0.0 and fpr[-1] == pytest.approx(1.0) and tpr[-1] == pytest.approx(1.0) and fpr == sorted(fpr)
    assert any(key.startswith("bland_altman_modality") for key in out["charts"])
    # a table node saved and read back through its storage node (what Slicer's Save dialog does)
    storage = accuracy.CreateDefaultStorageNode()
    path = str(tmp_path / "accuracy.tsv")
    storage.SetFileName(path)
    assert storage.WriteData(accuracy)
    again = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode")
    reader = again.CreateDefaultStorageNode()
    reader.SetFileName(path)
    assert reader.ReadData(again)
    assert again.GetNumberOfRows() == accuracy.GetNumberOfRows()
    assert again.GetTable().GetValue(0, 0).ToString() == accuracy.GetTable().GetValue(0, 0).ToString()


def test_bad_input_is_reported_not_crashed(mrml, tmp_path):
    from netpet.stats.intervals import StatsError

    from StudyStats import StudyStatsLogic

    reference = tmp_path / "reference.csv"
    reference.write_text("patient_id,lesion_id,region,truth,standard\nP1,L1,liver,1,histology\n")
    table = tmp_path / "study.csv"
    table.write_text("patient_id,session_id,modality,tracer,reader,lesion_id,call\nP1,S1,PET/CT,dotatate,R1,L9,positive\n")
    with pytest.raises(StatsError, match="unknown id: lesion L9"):
        StudyStatsLogic().run(str(table), str(reference), str(tmp_path / "out"))


def test_false_findings_node_carries_call_and_quality(mrml, tmp_path):
    from StudyStats import StudyStatsLogic

    reference = tmp_path / "reference.csv"
    reference.write_text("patient_id,lesion_id,region,truth,standard\nP1,L1,liver,1,histology\nP1,L2,liver,1,follow-up\n"
                         "P2,L1,bone,0,follow-up\nP3,,,0,follow-up\n")
    table = tmp_path / "study.csv"
    table.write_text(
        "patient_id,session_id,modality,tracer,reader,lesion_id,call,suv_max,mtv_ml,segmentation_status,flags,warnings\n"
        "P1,S1,PET/CT,dotatate,R1,L1,positive,12,3.5,segmented,,\n"
        "P1,S1,PET/CT,dotatate,R1,L2,equivocal,5.1,,not separable,not-separable;low-contrast,"
        "not separable: low contrast | uptake equal to the liver\n"
        "P2,S1,PET/CT,dotatate,R1,L1,equivocal,5.3,1.2,segmented,peak-moved,\n"
        "P3,S1,PET/CT,dotatate,R1,,,,,,,\n")
    logic = StudyStatsLogic()
    # default: equivocal is negative -> P1 L2 is a false negative (not separable), P2 L1 a true negative
    out = logic.run(str(table), str(reference), str(tmp_path / "out"), bootstrap=0, figures=False)
    node = out["tables"]["false_findings"]
    names = [node.GetTable().GetColumnName(c) for c in range(node.GetNumberOfColumns())]
    assert names[-4:] == ["segmentation_status", "flags", "warnings", "cause"] and "call" in names
    assert node.GetNumberOfRows() == 1
    row = {name: node.GetTable().GetValue(0, c).ToString() for c, name in enumerate(names)}
    assert (row["kind"], row["lesion_id"], row["call"]) == ("false negative", "L2", "equivocal")
    assert (row["segmentation_status"], row["flags"], row["warnings"]) == (
        "not separable", "not-separable;low-contrast", "not separable: low contrast | uptake equal to the liver")
    assert node.GetTable().GetColumnByName("suv_max").GetValue(0) == pytest.approx(5.1)
    accuracy = out["tables"]["accuracy"]
    levels = [accuracy.GetTable().GetColumnByName("level").GetValue(i) for i in range(accuracy.GetNumberOfRows())]
    lesion = levels.index("lesion")
    table_ = accuracy.GetTable()
    assert [table_.GetColumnByName(k).GetValue(lesion) for k in ("tp", "fp", "fn", "tn", "equivocal_findings",
                                                                 "equivocal_units")] == [1, 0, 1, 1, 2, 2]
    assert table_.GetColumnByName("equivocal_as").GetValue(lesion) == "negative"
    # equivocal counted positive: P1 L2 a true positive, P2 L1 a false positive (segmented, flagged)
    out = logic.run(str(table), str(reference), str(tmp_path / "out"), bootstrap=0, figures=False,
                    equivocal="positive")
    node = out["tables"]["false_findings"]
    assert node.GetNumberOfRows() == 1
    row = {node.GetTable().GetColumnName(c): node.GetTable().GetValue(0, c).ToString()
           for c in range(node.GetNumberOfColumns())}
    assert (row["kind"], row["patient_id"], row["call"], row["segmentation_status"], row["flags"]) == (
        "false positive", "P2", "equivocal", "segmented", "peak-moved")
    # no false findings at all: the node still has its columns
    table.write_text("patient_id,session_id,modality,tracer,reader,lesion_id,call\n"
                     "P1,S1,PET/CT,dotatate,R1,L1,positive\nP1,S1,PET/CT,dotatate,R1,L2,positive\n"
                     "P2,S1,PET/CT,dotatate,R1,L1,negative\nP3,S1,PET/CT,dotatate,R1,,\n")
    out = logic.run(str(table), str(reference), str(tmp_path / "out2"), bootstrap=0, figures=False)
    node = out["tables"]["false_findings"]
    assert node.GetNumberOfRows() == 0 and node.GetTable().GetColumnByName("segmentation_status") is not None
