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
    assert {s["id"] for s in segmentation["segments"]} == {t["lesion_id"] for t in truth}
    # the tags the core's export writes, as Slicer wrote them through the storage node
    by_id = {r["lesion_id"]: r for r in result["rows"]}
    for segment in segmentation["segments"]:
        assert segment["tags"]["NETPET.Call"] == by_id[segment["id"]]["call"]
        assert segment["tags"]["NETPET.Status"] == by_id[segment["id"]]["segmentation_status"]
    assert (tmp_path / rows[0]["segmentation_file"].replace(".seg.nrrd", ".dcm")).exists()
    # the same export again updates in place
    again = logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1")
    assert again["inserted"] == 0 and again["updated"] == len(truth)
    # written through a temporary file renamed over the target, under a lock: nothing half-written is left
    assert not [f for f in os.listdir(seg_path.parent) if f.startswith(".netpet-")]
    # a read-only segmentation file is refused untouched (and the table is not written)
    content = seg_path.read_bytes()
    os.chmod(seg_path, 0o444)
    try:
        with pytest.raises(Exception, match="read-only|cannot be written|not writable"):
            logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1")
        assert seg_path.read_bytes() == content
    finally:
        os.chmod(seg_path, 0o644)
    # review: a finding, named by patient, session and lesion, reopens its PET with its CT and its
    # segmentation, the views centred on the lesion
    row = [r for r in rows if r["lesion_id"]][0]
    review = logic.review(table_path, row["patient_id"], row["session_id"], row["lesion_id"], index=index)
    pet2, seg2, centroid = review.petNode, review.segmentationNode, review.centroid
    assert review.row["lesion_id"] == row["lesion_id"]
    assert review.anatomicalNode is not None and review.anatomicalNode.GetAttribute("NETPET.SeriesInstanceUID")
    assert seg2.GetSegmentation().GetSegment(row["lesion_id"]) is not None
    assert pet2.GetAttribute("NETPET.SeriesInstanceUID") == row["series_uid"]
    red = mrml.GetSingletonNode("Red", "vtkMRMLSliceNode")
    matrix = red.GetSliceToRAS()
    # the slice is centred exactly on the centroid; 1e-3 mm leaves room only for float rounding
    assert [matrix.GetElement(i, 3) for i in range(3)] == pytest.approx(list(centroid), abs=1e-3)
    with pytest.raises(ValueError, match="not a row number"):
        logic.review(table_path, 0, index=index)
    with pytest.raises(ValueError, match="no lesion 'L99'"):
        logic.review(table_path, row["patient_id"], lesion_id="L99", index=index)
    # the reader sees every warning of the row reopened (here a row that has some)
    warned = next(r for r in rows if r.get("warnings"))
    messages = logic.review(table_path, warned, index=index).messages
    for warning in warned["warnings"].split(" | "):
        assert any(warning in m for m in messages), warning


def test_export_refuses_a_file_that_is_not_a_study_table(loaded, tmp_path):
    logic, pet, truth, session, index, out = loaded
    result = logic.segmentLesions(pet, _seeds(truth)[:1])
    other = tmp_path / "notes.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(Exception, match="not a NETPET study table"):
        logic.exportToStudyTable(result["rows"], str(other), pet, result["segmentation"])
    assert other.read_text() == "a,b\n1,2\n" and not os.path.exists(tmp_path / "segmentations")


def test_export_writes_the_time_point(loaded, tmp_path):
    """Slicer writes a session's time point as netpet quantify's manifest columns do; a later export without
    one keeps the table's cells; bad values are refused with the field named, before anything is written."""
    from netpet.quant.table import StudyTable

    logic, pet, truth, session, index, out = loaded
    result = logic.segmentLesions(pet, _seeds(truth)[:1], liverRAS=session["liver_reference_center_ras"], reader="R1")
    table_path = str(tmp_path / "study.csv")
    logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1", timePoint=" FU1 ",
                             daysFromBaseline="120")
    rows = StudyTable(table_path).read()
    assert [(r["time_point"], r["days_from_baseline"]) for r in rows] == [("FU1", "120")]
    logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1")
    assert [(r["time_point"], r["days_from_baseline"]) for r in StudyTable(table_path).read()] == [("FU1", "120")]
    before = open(table_path).read()
    with pytest.raises(ValueError, match="Days from baseline: .*-3"):
        logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1",
                                 daysFromBaseline="-3")
    with pytest.raises(ValueError, match="Time point: .*control character"):
        logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1",
                                 timePoint="FU\t1")
    assert open(table_path).read() == before


def test_measurement_info_has_dicom_codes():
    from SUVQuantLib import measurements

    info = measurements.measurement_info("suv_peak", "bw")
    assert info["DICOM.QuantityCode"] == "CodeValue:126401|CodingSchemeDesignator:DCM|CodeMeaning:SUVbw"
    assert info["DICOM.DerivationCode"].startswith("CodeValue:126031|")
    assert measurements.measurement_info("suv_max", "lbm")["DICOM.QuantityCode"].startswith("CodeValue:126406|")
    assert measurements.measurement_info("mtv_ml")["DICOM.UnitsCode"].startswith("CodeValue:ml|")
    for key in measurements.MEASUREMENTS:
        assert measurements.measurement_info(key)["DICOM.QuantityCode"]


# -- calls, status, flags and the reader's background on a small synthetic PET -------------------------------
# The scene (SUVQuant/Testing/Python/SUVQuantSelfTest.syntheticPET, which the self-test inside Slicer uses
# too): a body, a liver larger than the segmentation's limit sphere, an equivocal lesion E1 about as intense
# as the liver and a positive lesion H1.


@pytest.fixture()
def synthetic(mrml):
    import sys

    from SUVQuant import SUVQuantLogic

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "SUVQuant", "Testing", "Python")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from SUVQuantSelfTest import syntheticPET

    pet, ras = syntheticPET()
    return SUVQuantLogic(), pet, ras


def _volume(pet):
    return __import__("NETPETLib.nodes", fromlist=["x"]).suvVolumeFromNode(pet)


def _column(table, name):
    array = table.GetTable().GetColumnByName(name)
    assert array is not None, name
    return [array.GetValue(i) for i in range(table.GetNumberOfRows())]


def test_click_in_flat_liver_is_not_separable_and_says_so(synthetic):
    from SUVQuant import NOT_SEPARABLE_SUFFIX
    from SUVQuantLib import measurements

    logic, pet, ras = synthetic
    result = logic.segmentLesions(pet, [("L01", ras("flatLiver")), ("H1", ras("H1"))], liverRAS=ras("liverReference"))
    rows = {r["lesion_id"]: r for r in result["rows"]}
    row = rows["L01"]
    assert row["segmentation_status"] == "not separable" and "not-separable" in row["flags"].split(";")
    assert row["warnings"].startswith("not separable") and np.isnan(row["mtv_ml"])
    assert row["call"] in ("equivocal", "negative")  # liver tissue is never called above the liver
    assert rows["H1"]["segmentation_status"] == "segmented"
    # its segment is still written: the 1 mL sphere at the click, tagged and named as not a volume
    node = result["segmentation"]
    segment = node.GetSegmentation().GetSegment("L01")
    assert _tag(segment, "NETPET.Status") == "not separable"
    assert "not-separable" in _tag(segment, "NETPET.Flags").split(";")
    assert _tag(segment, "NETPET.Call") == row["call"]
    assert segment.GetName() == "L01" + NOT_SEPARABLE_SUFFIX
    assert node.GetDisplayNode().GetSegmentOpacity2DFill("L01") == 0.0  # an outline: it marks a place
    mask = slicer.util.arrayFromSegmentBinaryLabelmap(node, "L01", pet) > 0
    volume = _volume(pet)
    assert 0.5 < mask.sum() * volume.voxel_ml < 1.5  # the 1 mL sphere (on 4 mm voxels)
    # the results table shows status, flags and warnings of every row; the panel's status line counts them
    table = logic.resultsTableNode(result["rows"])
    ids = _column(table, "lesion_id")
    assert _column(table, "segmentation_status")[ids.index("L01")] == "not separable"
    assert "not-separable" in _column(table, "flags")[ids.index("L01")]
    assert _column(table, "warnings")[ids.index("L01")] == row["warnings"]
    assert _column(table, "call")[ids.index("L01")] == row["call"]
    assert np.isnan(_column(table, "mtv_ml")[ids.index("L01")])
    assert "1 not separable (L01)" in measurements.summary(result["rows"], result["errors"])
    # measured again untouched, it stays not separable; painted by the reader, it is measured as drawn
    again = {r["lesion_id"]: r for r in logic.measureSegmentation(pet, node, liverRAS=ras("liverReference"))}
    assert again["L01"]["segmentation_status"] == "not separable" and np.isnan(again["L01"]["mtv_ml"])
    assert again["H1"]["segmentation_status"] == "segmented" and again["H1"]["mtv_ml"] == pytest.approx(
        rows["H1"]["mtv_ml"])
    painted = mask.copy()
    painted[np.nonzero(mask.any(axis=(1, 2)))[0][0] - 1] = mask[np.nonzero(mask.any(axis=(1, 2)))[0][0]]
    slicer.util.updateSegmentBinaryLabelmapFromArray(painted.astype(np.uint8), node, "L01", pet)
    edited = {r["lesion_id"]: r for r in logic.measureSegmentation(pet, node, liverRAS=ras("liverReference"))}
    assert edited["L01"]["segmentation_status"] == "segmented" and "reader-drawn" in edited["L01"]["flags"]
    assert edited["L01"]["mtv_ml"] == pytest.approx(painted.sum() * volume.voxel_ml)
    assert segment.GetName() == "L01" and _tag(segment, "NETPET.Status") == "segmented"


def test_equivocal_lesion_is_amber_and_tagged(synthetic):
    from netpet.quant.export import COLORS

    from SUVQuant import callColor
    from SUVQuantLib import measurements

    logic, pet, ras = synthetic
    result = logic.segmentLesions(pet, [("E1", ras("E1")), ("H1", ras("H1"))], liverRAS=ras("liverReference"))
    rows = {r["lesion_id"]: r for r in result["rows"]}
    assert rows["E1"]["call"] == "equivocal", rows["E1"]["warnings"]  # the scene's premise, made by the core
    assert rows["E1"]["krenning"] == 2 and rows["H1"]["call"] == "positive"
    assert any(k.startswith("call_") for k in rows["E1"])  # the call's details are in the row...
    table = logic.resultsTableNode(result["rows"])
    for key in (k for k in rows["E1"] if k.startswith("call_")):
        assert table.GetTable().GetColumnByName(key) is not None, key  # ...and in the results table
    segmentation = result["segmentation"].GetSegmentation()
    for lesion_id, call in (("E1", "equivocal"), ("H1", "positive")):
        segment = segmentation.GetSegment(lesion_id)
        assert _tag(segment, "NETPET.Call") == call and _tag(segment, "NETPET.Status") == "segmented"
        assert segment.GetColor() == pytest.approx(COLORS[call])
    assert callColor("equivocal") == pytest.approx(COLORS["equivocal"]) and callColor("") == pytest.approx(COLORS[""])
    assert "1 equivocal (E1)" in measurements.summary(result["rows"])
    # measureSegmentation handles the equivocal call (it once looked colours up by two calls only)
    segmentation.GetSegment("E1").SetColor(0.0, 1.0, 0.0)
    rows = {r["lesion_id"]: r for r in logic.measureSegmentation(pet, result["segmentation"],
                                                                 liverRAS=ras("liverReference"))}
    assert rows["E1"]["call"] == "equivocal"
    assert segmentation.GetSegment("E1").GetColor() == pytest.approx(COLORS["equivocal"])
    assert _tag(segmentation.GetSegment("E1"), "NETPET.Call") == "equivocal"


def test_background_point_sets_tb(synthetic):
    from netpet.quant import references

    logic, pet, ras = synthetic
    volume = _volume(pet)
    for diameter in (20.0, 10.0):
        result = logic.segmentLesions(pet, [("H1", ras("H1"))], liverRAS=ras("liverReference"),
                                      backgrounds={"H1": ras("softTissue")}, backgroundDiameterMm=diameter)
        row = result["rows"][0]
        expected = references.background_point(volume, ras("softTissue"), diameter)
        assert row["background_source"] == "point"
        assert row["background_suv_mean"] == pytest.approx(expected.mean, rel=1e-9)
        assert row["tb_ratio"] == pytest.approx(row["suv_max"] / expected.mean, rel=1e-9)
    automatic = logic.segmentLesions(pet, [("H1", ras("H1"))], liverRAS=ras("liverReference"))["rows"][0]
    assert automatic["background_source"] == "shell"
    assert automatic["background_suv_mean"] != pytest.approx(expected.mean, rel=1e-6)
    for diameter in (3.0, 61.0, float("nan")):
        with pytest.raises(ValueError, match="background sphere diameter"):
            logic.segmentLesions(pet, [("H1", ras("H1"))], backgrounds={"H1": ras("softTissue")},
                                 backgroundDiameterMm=diameter)


def test_background_points_are_paired_with_lesions_by_label(synthetic):
    from netpet.quant import references

    logic, pet, ras = synthetic
    volume = _volume(pet)
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Background points")
    points.AddControlPoint(*ras("softTissue"), "E1")
    points.AddControlPoint(*ras("inLiver"), "")
    paired = logic.backgroundsFromMarkups(points, ["E1", "H1"])
    assert paired == {"E1": pytest.approx(ras("softTissue")), "H1": pytest.approx(ras("inLiver"))}
    # through the Logic, from the point list itself: each lesion against its own point
    result = logic.segmentLesions(pet, [("E1", ras("E1")), ("H1", ras("H1"))], liverRAS=ras("liverReference"),
                                  backgrounds=points)
    rows = {r["lesion_id"]: r for r in result["rows"]}
    for lesion_id, point in (("E1", "softTissue"), ("H1", "inLiver")):
        assert rows[lesion_id]["background_source"] == "point"
        assert rows[lesion_id]["background_suv_mean"] == pytest.approx(
            references.background_point(volume, ras(point), 20.0).mean, rel=1e-9)
    # a single point, whatever its label, is every lesion's background
    single = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "One point")
    single.AddControlPoint(*ras("softTissue"), "B1")
    assert logic.backgroundsFromMarkups(single, ["E1", "H1"]) == {"E1": pytest.approx(ras("softTissue")),
                                                                  "H1": pytest.approx(ras("softTissue"))}
    assert logic.backgroundsFromMarkups(None, ["E1"]) == {}
    # ambiguous lists are refused with a sentence
    points.AddControlPoint(*ras("softTissue"), "B2")
    with pytest.raises(ValueError, match="name no lesion"):
        logic.backgroundsFromMarkups(points, ["E1", "H1"])
    twice = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Twice")
    twice.AddControlPoint(*ras("softTissue"), "E1")
    twice.AddControlPoint(*ras("inLiver"), "E1")
    with pytest.raises(ValueError, match="Two background points are labelled E1"):
        logic.backgroundsFromMarkups(twice, ["E1", "H1"])


def test_bone_background_without_a_ct_is_flagged(synthetic):
    logic, pet, ras = synthetic
    result = logic.segmentLesions(pet, [("H1", ras("H1")), ("E1", ras("E1"))], liverRAS=ras("liverReference"),
                                  backgrounds={"E1": ras("softTissue")}, boneBackground=True)
    rows = {r["lesion_id"]: r for r in result["rows"]}
    assert "no-background" in rows["H1"]["flags"] and "CT" in rows["H1"]["warnings"]
    assert rows["E1"]["background_source"] == "point"  # its own point wins over the bone background
    # the region a reader writes in a point's description reaches the row
    lesions = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Lesions")
    lesions.AddControlPoint(*ras("H1"), "H1")
    lesions.SetNthControlPointDescription(0, "bone")
    assert logic.regionsFromMarkups(lesions) == {"H1": "bone"}
    row = logic.segmentLesions(pet, logic.seedsFromMarkups(lesions), liverRAS=ras("liverReference"),
                               regions=logic.regionsFromMarkups(lesions))["rows"][0]
    assert row["region"] == "bone" and "soft-tissue-background" in row["flags"]


def test_segment_editor_click_never_overwrites_with_the_sphere(synthetic):
    logic, pet, ras = synthetic
    result = logic.segmentLesions(pet, [("H1", ras("H1"))], liverRAS=ras("liverReference"))
    node = result["segmentation"]
    before = slicer.util.arrayFromSegmentBinaryLabelmap(node, "H1", pet).copy()
    saved = []
    lesion = logic.segmentAt(pet, ras("flatLiver"), node, "H1", beforeWrite=lambda: saved.append(1))
    assert lesion.status == "not separable" and lesion.notes and not saved
    assert np.array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(node, "H1", pet), before)
    assert _tag(node.GetSegmentation().GetSegment("H1"), "NETPET.Call") == "positive"  # untouched
    message = logic.clickMessage("H1", lesion)
    assert message.startswith("H1 left unchanged") and lesion.notes[0] in message
    # a click on a lesion replaces the content, after the undo state is saved; the call waits for a measurement
    lesion = logic.segmentAt(pet, ras("E1"), node, "H1", beforeWrite=lambda: saved.append(1))
    assert lesion.status == "segmented" and saved == [1]
    mask = slicer.util.arrayFromSegmentBinaryLabelmap(node, "H1", pet) > 0
    assert np.array_equal(mask, lesion.full(_volume(pet).shape))
    segment = node.GetSegmentation().GetSegment("H1")
    assert _tag(segment, "NETPET.Status") == "segmented" and _tag(segment, "NETPET.Call") == ""
    assert "segmented" in logic.clickMessage("H1", lesion)
    # asked for explicitly, the sphere is written and marked
    lesion = logic.segmentAt(pet, ras("flatLiver"), node, "H1", replaceWithSphere=True)
    assert _tag(segment, "NETPET.Status") == "not separable" and segment.GetName().endswith("(not separable)")


def test_segment_statistics_plugin_reports_call_and_status(synthetic):
    """The plugin on netpet.slicer_runtime's SegmentStatisticsPluginBase, which does what Slicer's does: its
    __init__ sets name, keys and defaultKeys on the instance, and createMeasurementInfo takes a title and
    puts only the codes it is given into the info (Testing/slicer/test_slicer_runtime.py runs it through
    Segment Statistics' logic)."""
    from SUVQuantLib.SegmentStatisticsPlugin import SUVSegmentStatisticsPlugin

    plugin = SUVSegmentStatisticsPlugin()
    assert plugin.name == "NETPET SUV" and {"call", "segmentation_status", "suv_peak"} <= set(plugin.keys)
    assert "call" not in plugin.defaultKeys and "suv_peak" in plugin.defaultKeys
    logic, pet, ras = synthetic
    result = logic.segmentLesions(pet, [("E1", ras("E1")), ("L01", ras("flatLiver"))], liverRAS=ras("liverReference"))
    parameters = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "SegmentStatistics")
    parameters.SetParameter("Segmentation", result["segmentation"].GetID())
    parameters.SetParameter("ScalarVolume", pet.GetID())
    for key in plugin.keys:
        parameters.SetParameter(plugin.toLongKey(key) + ".enabled", str(key in ("call", "segmentation_status",
                                                                              "suv_peak", "mtv_ml")))
    plugin.setParameterNode(parameters)
    rows = {r["lesion_id"]: r for r in result["rows"]}
    for segmentID in ("E1", "L01"):
        values = plugin.computeStatistics(segmentID)
        assert set(values) == {"call", "segmentation_status", "suv_peak", "mtv_ml"}
        assert values["call"] == rows[segmentID]["call"]
        assert values["segmentation_status"] == rows[segmentID]["segmentation_status"]
    assert plugin.computeStatistics("L01")["segmentation_status"] == "not separable"
    assert plugin.computeStatistics("E1")["call"] == "equivocal"
    # the DICOM-coded measurement info is unchanged; the call has a name and description, no codes
    peak = plugin.getMeasurementInfo("suv_peak")
    assert peak["DICOM.QuantityCode"].startswith("CodeValue:126401|") and peak["DICOM.DerivationCode"]
    call = plugin.getMeasurementInfo("call")
    assert call["name"] == "Call" and "equivocal" in call["description"]
    assert not any(k.startswith("DICOM.") for k in call)
    assert plugin.getMeasurementInfo("nonsense") is None


def test_status_sentences():
    from SUVQuantLib import measurements

    rows = [{"lesion_id": "L1", "call": "positive", "segmentation_status": "segmented", "warnings": ""},
            {"lesion_id": "L2", "call": "equivocal", "segmentation_status": "segmented",
             "warnings": "uptake equal to the liver within its noise"},
            {"lesion_id": "L3", "call": "negative", "segmentation_status": "not separable", "flags": "not-separable",
             "warnings": "not separable: flat | no background: too few voxels", "suv_warnings": "weight assumed"}]
    text = measurements.summary(rows, {"L4": "The seed lies outside the body."})
    assert text.startswith("3 lesion(s) measured: 1 positive, 1 equivocal, 1 negative.")
    for part in ("1 not separable (L3)", "1 equivocal (L2)", "2 with warnings (L2, L3)",
                 "1 not segmented: L4: The seed lies outside the body."):
        assert part in text, part
    messages = measurements.row_messages(rows[2])
    assert messages[0].startswith("L3: not separable")
    assert "L3: no background: too few voxels" in messages and "SUV: weight assumed" in messages
    assert measurements.summary([]) == "No lesion measured."


def test_normal_bone_background_from_the_sessions_ct(mrml, reference_study, truth_lesions):
    """A PET/CT patient with bone lesions: 'Normal-bone background (CT)' measures T/B against normal bone
    of the CT found beside the PET's DICOM files (no soft-tissue warning); unchecked, the core warns."""
    from NETPETReader import NETPETReaderLogic

    from SUVQuant import SUVQuantLogic

    out, summary = reference_study
    reader = NETPETReaderLogic()
    index = reader.indexFolder(str(out / "dicom"))
    found = [(p, s) for p in summary["patients"] for s in p["sessions"]
             if s["modality"] == "PET/CT" and any(t["region"] == "bone" and t["session_id"] == s["session_id"]
                                                  and t["patient_id"] == p["patient_id"] for t in truth_lesions)]
    assert found, "the reference study has a PET/CT session with bone lesions"
    patient, session = found[0]
    pet = reader.loadPET(index.series(session["pet_series_uid"]))
    bone = [t for t in truth_lesions if t["session_id"] == session["session_id"]
            and t["patient_id"] == patient["patient_id"] and t["region"] == "bone"]
    seeds, regions = _seeds(bone), {t["lesion_id"]: "bone" for t in bone}
    logic = SUVQuantLogic()
    rows = logic.segmentLesions(pet, seeds, liverRAS=session["liver_reference_center_ras"], regions=regions,
                                boneBackground=True)["rows"]
    assert rows and all(r["background_source"] == "bone" for r in rows)
    assert not any("soft-tissue-background" in r["flags"] for r in rows)
    shell = logic.segmentLesions(pet, seeds, liverRAS=session["liver_reference_center_ras"], regions=regions)["rows"]
    assert all(r["background_source"] == "shell" and "soft-tissue-background" in r["flags"] for r in shell)


def test_lesion_labels_come_from_the_points_descriptions(mrml):
    """The panel's export takes each lesion's region and type from its point's description, typed in
    the Markups module as "region" or "region; lesion type"; a point without one keeps its row's labels."""
    from SUVQuant import lesionLabelsFromPoints

    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Lesions")
    for label, description in (("L01", "liver; metastasis"), ("L02", " lymph nodes "), ("L03", "")):
        index = points.AddControlPoint(0.0, 0.0, 0.0, label)
        points.SetNthControlPointDescription(index, description)
    regions, types = lesionLabelsFromPoints(points)
    assert regions == {"L01": "liver", "L02": "lymph nodes"} and types == {"L01": "metastasis"}
    assert lesionLabelsFromPoints(None) == ({}, {})


def test_structured_report_of_the_session(loaded, tmp_path):
    """The session's DICOM SR from SUVQuant: one measurement group per exported finding, the reader as observer, the
    SUVmax of each group equal to the table's (the SR's DS value of the table's number: 1e-6 relative), referencing
    the SEG exported with it."""
    import pydicom

    from netpet.quant.table import StudyTable

    logic, pet, truth, session, _index, _out = loaded
    result = logic.segmentLesions(pet, _seeds(truth), liverRAS=session["liver_reference_center_ras"], reader="R1")
    table_path = str(tmp_path / "study.csv")
    logic.exportToStudyTable(result["rows"], table_path, pet, result["segmentation"], reader="R1", dicomSeg=True)
    out = logic.exportStructuredReport(table_path, pet, reader="R1")
    assert out["errors"] == [] and len(out["reports"]) == 1
    files = [f for f in os.listdir(out["folder"]) if f.endswith("_sr.dcm")]
    assert len(files) == 1
    sr = pydicom.dcmread(os.path.join(out["folder"], files[0]))
    assert sr.Modality == "SR"
    names = [str(item.PersonName) for item in sr.ContentSequence if "PersonName" in item]
    assert names and names[0].startswith("R1")
    groups = []

    def walk(items):
        for item in items:
            if item.ValueType == "CONTAINER" and item.ConceptNameCodeSequence[0].CodeValue == "125007":
                groups.append(item)
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(sr.ContentSequence)
    assert len(groups) == len(truth)  # one measurement group per finding (TID 1411, DCM 125007)
    rows = {r["lesion_id"]: r for r in StudyTable(table_path).read()}

    def text(group, code):
        return next(str(i.TextValue) for i in group.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == code)

    for group in groups:
        lesion = text(group, "112039")  # Tracking Identifier
        numbers = [i for i in group.ContentSequence if i.ValueType == "NUM"]
        suv_max = next(float(i.MeasuredValueSequence[0].NumericValue) for i in numbers
                       if any(m.ConceptCodeSequence[0].CodeValue == "56851009"
                              for m in getattr(i, "ContentSequence", []) if "ConceptCodeSequence" in m))
        cell = rows[lesion]["suv_max"]
        decimals = len(cell.split(".")[1]) if "." in cell else 0
        # the SR's NumericValue is a DS of the table's number: half a unit of the cell's last decimal
        assert suv_max == pytest.approx(float(cell), abs=0.5 * 10 ** -decimals)
    with pytest.raises(ValueError, match="reader"):
        logic.exportStructuredReport(table_path, pet, reader=" ")
