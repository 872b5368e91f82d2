"""SUVQuantLogic on real MRML (slicer-core): click -> segments -> measurements table -> export -> review."""

import csv
import os

import numpy as np
import pytest

import slicer


@pytest.fixture()
def loaded(mrml, reference_study):
    from NETPETReader import NETPETReaderLogic

    from SUVQuant import SUVQuantLogic

    out, summary = reference_study
    reader = NETPETReaderLogic()
    index = reader.indexFolder(str(out / "dicom"))
    patient = summary["patients"][0]
    session = next(s for s in patient["sessions"] if s["modality"] == "PET/CT" and s["tracer"] == "dotatate")
    pet = reader.loadPET(index.series(session["pet_series_uid"]))
    with open(out / "truth" / "lesions.csv", newline="") as handle:
        truth = [r for r in csv.DictReader(handle) if r["session_id"] == session["session_id"]
                 and r["patient_id"] == patient["patient_id"] and r["avid"] == "1"]
    return SUVQuantLogic(), pet, truth, session, index, out


def _tag(segment, name):
    value = __import__("vtk").reference("")
    segment.GetTag(name, value)
    return str(value)


def _seeds(truth):
    return [(t["lesion_id"], tuple(float(t[k]) for k in ("center_r", "center_a", "center_s"))) for t in truth]


def test_click_to_segment_matches_the_core(loaded):
    from netpet.quant import references
    from netpet.quant.pipeline import LesionRequest, Session, quantify

    logic, pet, truth, session, index, out = loaded
    markups = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Lesions")
    for lesion_id, ras in _seeds(truth):
        markups.AddControlPoint(*ras, lesion_id)
    seeds = logic.seedsFromMarkups(markups)
    assert [s[0] for s in seeds] == [t["lesion_id"] for t in truth]
    result = logic.segmentLesions(pet, seeds, liverRAS=session["liver_reference_center_ras"], reader="R1")
    segmentation = result["segmentation"].GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(truth) == len(result["rows"])
    # the same lesions as the core computes from the same SUV volume and seeds, voxel for voxel
    volume = __import__("NETPETLib.nodes", fromlist=["x"]).suvVolumeFromNode(pet)
    core = quantify(Session(volume, "p", "s", "PET/CT", "dotatate"),
                    [LesionRequest(i, r) for i, r in seeds], "R1",
                    liver_ras=session["liver_reference_center_ras"], skip_failed=True)
    for lesion_id, lesion in core.lesions.items():
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(result["segmentation"], lesion_id, pet) > 0
        assert np.array_equal(mask, lesion.full(volume.shape)), lesion_id
        segment = segmentation.GetSegment(lesion_id)
        assert _tag(segment, "NETPET.Call") == core.calls[lesion_id]
        assert "52988006" in _tag(segment, segment.GetTerminologyEntryTagName())
    by_id = {r["lesion_id"]: r for r in result["rows"]}
    for row in core.rows:
        assert by_id[row["lesion_id"]]["suv_max"] == pytest.approx(row["suv_max"])
        assert by_id[row["lesion_id"]]["suv_peak"] == pytest.approx(row["suv_peak"])
    assert result["liver"].mean == pytest.approx(references.liver_reference(volume, session["liver_reference_center_ras"]).mean)
    # the results table: one row per lesion, units in the column properties
    table = logic.resultsTableNode(result["rows"])
    assert table.GetNumberOfRows() == len(truth)
    assert table.GetColumnUnitLabel("suv_max") == "SUV" and table.GetColumnUnitLabel("mtv_ml") == "mL"
    column = table.GetTable().GetColumnByName("suv_max")
    assert [column.GetValue(i) for i in range(table.GetNumberOfRows())] == pytest.approx(
        [r["suv_max"] for r in result["rows"]])


def test_edited_segment_is_remeasured(loaded):
    from netpet.quant.segment import lesion_from_mask

    logic, pet, truth, session, index, out = loaded
    result = logic.segmentLesions(pet, _seeds(truth)[:1], liverRAS=session["liver_reference_center_ras"])
    node, lesion_id = result["segmentation"], truth[0]["lesion_id"]
    before = result["rows"][0]
    mask = slicer.util.arrayFromSegmentBinaryLabelmap(node, lesion_id, pet)
    # a reader paints one more slice below the lesion (as the Segment Editor would)
    zs = np.nonzero(mask.any(axis=(1, 2)))[0]
    edited = mask.copy()
    edited[zs[0] - 1] = mask[zs[0]]
    slicer.util.updateSegmentBinaryLabelmapFromArray(edited, node, lesion_id, pet)
    rows = logic.measureSegmentation(pet, node, liverRAS=session["liver_reference_center_ras"])
    assert rows[0]["voxels"] == int(edited.sum()) > before["voxels"]
    volume = __import__("NETPETLib.nodes", fromlist=["x"]).suvVolumeFromNode(pet)
    assert rows[0]["suv_mean"] == pytest.approx(float(volume.values[edited > 0].mean()))
    assert lesion_from_mask(volume, edited > 0).voxels == rows[0]["voxels"]
    single = logic.measureSegment(pet, node, lesion_id, session["liver_reference_center_ras"])
    assert single["mtv_ml"] == pytest.approx(rows[0]["mtv_ml"])
    # the Segment Editor effect's click: the lesion at a point replaces the segment's content
    logic.segmentAt(pet, _seeds(truth)[0][1], node, lesion_id)
    assert int((slicer.util.arrayFromSegmentBinaryLabelmap(node, lesion_id, pet) > 0).sum()) == before["voxels"]


def test_export_round_trip_and_review(loaded, tmp_path, mrml):
    import slicerio

    from netpet.quant.table import StudyTable

    logic, pet, truth, session, index, out = loaded
    result = logic.segmentLesions(pet, _seeds(truth), liverRAS=session["liver_reference_center_ras"], reader="R1")
    table_path = str(tmp_path / "study.csv")
    summary = logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1",
                                       dicomSeg=True)
    assert summary["inserted"] == len(truth) and summary["updated"] == 0
    rows = StudyTable(table_path).read()
    assert {r["lesion_id"] for r in rows} == {t["lesion_id"] for t in truth}
    assert all(r["modality"] == "PET/CT" and r["tracer"] == "dotatate" and r["suv_units"] == "BQML" for r in rows)
    # the .seg.nrrd written by the storage node: every segment, readable by slicerio, same voxels
    seg_path = tmp_path / rows[0]["segmentation_file"]
    segmentation = slicerio.read_segmentation(str(seg_path))
    assert {s["name"] for s in segmentation["segments"]} == {t["lesion_id"] for t in truth}
    assert (tmp_path / rows[0]["segmentation_file"].replace(".seg.nrrd", ".dcm")).exists()
    # the same export again updates in place
    again = logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1")
    assert again["inserted"] == 0 and again["updated"] == len(truth)
    # review: a row reopens its PET and segmentation, the views centred on the lesion
    pet2, seg2, centroid = logic.review(table_path, 0, index=index)
    row = [r for r in rows if r["lesion_id"]][0]
    assert seg2.GetSegmentation().GetSegment(row["lesion_id"]) is not None
    assert pet2.GetAttribute("NETPET.SeriesInstanceUID") == row["series_uid"]
    red = mrml.GetSingletonNode("Red", "vtkMRMLSliceNode")
    matrix = red.GetSliceToRAS()
    # the slice is centred exactly on the centroid; 1e-3 mm leaves room only for float rounding
    assert [matrix.GetElement(i, 3) for i in range(3)] == pytest.approx(list(centroid), abs=1e-3)
    with pytest.raises(ValueError, match="lesion rows"):
        logic.review(table_path, 99, index=index)


def test_export_refuses_a_file_that_is_not_a_study_table(loaded, tmp_path):
    logic, pet, truth, session, index, out = loaded
    result = logic.segmentLesions(pet, _seeds(truth)[:1])
    other = tmp_path / "notes.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(Exception, match="not a NETPET study table"):
        logic.exportToStudyTable(result["rows"], str(other), pet, result["segmentation"])
    assert other.read_text() == "a,b\n1,2\n" and not os.path.exists(tmp_path / "segmentations")


def test_measurement_info_has_dicom_codes():
    from SUVQuantLib import measurements

    info = measurements.measurement_info("suv_peak", "bw")
    assert info["DICOM.QuantityCode"] == "CodeValue:126401|CodingSchemeDesignator:DCM|CodeMeaning:SUVbw"
    assert info["DICOM.DerivationCode"].startswith("CodeValue:126031|")
    assert measurements.measurement_info("suv_max", "lbm")["DICOM.QuantityCode"].startswith("CodeValue:126406|")
    assert measurements.measurement_info("mtv_ml")["DICOM.UnitsCode"].startswith("CodeValue:ml|")
    for key in measurements.MEASUREMENTS:
        assert measurements.measurement_info(key)["DICOM.QuantityCode"]
