"""SUVQuant inside a real Slicer: clicks at the truth lesions of a synthetic patient, contours
checked against the truth masks, the Segment Editor effect and SegmentStatistics plugin
registered, export to a study table and review of a finding with its warnings; and, on a small
synthetic PET (``syntheticPET``, shared with the headless tests in Testing/slicer), a click in flat
liver that is not separable, an equivocal lesion coloured amber, and reader-placed background
points paired with lesions by label; a lesion segmented by a click of the "PET lesion" effect in the
Segment Editor (and a click in flat liver that leaves a segment unchanged), and the segmentation
measured by Slicer's Segment Statistics through the NETPET SUV plugin, equal to SUV Quant's own
measurements.

``segmentEditorClick`` and ``segmentStatistics`` go through Slicer's own widgets and logic (a Segment
Editor widget with the effect active, the Red slice view's interactor; SegmentStatisticsLogic, which makes
its own plugin instances): the NETPET Reader and Study Stats self-tests use them too. The same steps run
headless on netpet.slicer_runtime's stand-ins in Testing/slicer/test_slicer_runtime.py."""

import csv
import os
import tempfile
import unittest

import numpy as np

import slicer

#: voxel size (mm) of the synthetic PET, and its features as [z, y, x] voxel indices
SYNTHETIC_SPACING_MM = 4.0
SYNTHETIC_SHAPE = (50, 70, 90)
#: resolution (Gaussian sigma, voxels: FWHM 7.5 mm) and relative noise (SD, spatially correlated likewise)
PSF_SIGMA_VOXELS = 0.8
NOISE = 0.08
SYNTHETIC = {
    "body": ((25, 35, 45), (24, 33, 43), 1.0),      # centre, radii (voxels), SUV
    "liver": ((25, 35, 22), (18, 22, 18), 6.0),     # larger than the 60 mm limit sphere around any of its voxels
    "E1": ((25, 35, 68), (4, 4, 4), 6.4),           # a lesion about as intense as the liver: equivocal
    "H1": ((25, 18, 60), (4, 4, 4), 20.0),          # a clearly positive lesion
}
#: where the reader clicks or places points, [z, y, x]
SYNTHETIC_POINTS = {
    "liverReference": (25, 35, 20),  # centre of the 3 cm liver reference sphere
    "flatLiver": (25, 40, 24),       # a click in flat liver: nothing separable there
    "softTissue": (25, 52, 45),      # normal soft tissue (SUV 1)
    "inLiver": (25, 28, 16),         # another normal-tissue point, in the liver (SUV 6)
}


def syntheticPET(name="Synthetic PET", seed=7):
    """A small SUV volume node (DOTATATE PET/CT attributes, no DICOM): a body, a liver larger than the
    segmentation's limit sphere, an equivocal lesion E1 about as intense as the liver and a positive lesion
    H1, blurred by the scanner's resolution, with 8 % spatially correlated noise. Returns (node, ras) where
    ``ras(name)`` gives the RAS of a feature's centre or of a point of :data:`SYNTHETIC_POINTS`."""
    import vtk
    from scipy import ndimage

    shape = SYNTHETIC_SHAPE
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    values = np.zeros(shape, dtype=np.float32)
    for key in ("body", "liver", "E1", "H1"):
        (cz, cy, cx), (rz, ry, rx), suv = SYNTHETIC[key]
        values[((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0] = suv
    values = ndimage.gaussian_filter(values, PSF_SIGMA_VOXELS)  # the scanner's resolution
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), PSF_SIGMA_VOXELS)
    values = (values * (1.0 + NOISE * noise / noise.std())).astype(np.float32)
    matrix = vtk.vtkMatrix4x4()
    for axis, sign in enumerate((-1.0, -1.0, 1.0)):  # LPS-like axes, as a PET from DICOM
        matrix.SetElement(axis, axis, sign * SYNTHETIC_SPACING_MM)
    origin = (180.0, 140.0, -100.0)
    for axis in range(3):
        matrix.SetElement(axis, 3, origin[axis])
    node = slicer.util.addVolumeFromArray(values, ijkToRAS=matrix, name=name)
    for key, value in (("SUVType", "bw"), ("Tracer", "dotatate"), ("Modality", "PET/CT"), ("PatientID", "SYN"),
                       ("StudyInstanceUID", "SYN-1")):
        node.SetAttribute("NETPET." + key, value)

    def ras(key):
        zyx = SYNTHETIC[key][0] if key in SYNTHETIC else SYNTHETIC_POINTS[key]
        return tuple(float(matrix.MultiplyPoint((zyx[2], zyx[1], zyx[0], 1.0))[i]) for i in range(3))

    return node, ras


def segmentEditorClick(petNode, segmentationNode, segmentID, ras, method=None):
    """A left click at ``ras`` (RAS, mm) in the Red slice view with the "PET lesion" effect active in a
    Segment Editor (its source volume ``petNode``, its segment ``segmentID`` selected), as a reader clicks.
    ``method``: the effect's "Method" parameter (a threshold method's key). Returns the effect's Python
    object (its ``lastMessage`` says what the click did)."""
    import vtk

    editor = slicer.qMRMLSegmentEditorWidget()
    editor.setMRMLScene(slicer.mrmlScene)
    editor.setMRMLSegmentEditorNode(slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode"))
    editor.setSegmentationNode(segmentationNode)
    editor.setSourceVolumeNode(petNode)
    editor.setCurrentSegmentID(segmentID)
    editor.setActiveEffectByName("PET lesion")
    effect = editor.activeEffect()
    if effect is None:
        raise AssertionError("The Segment Editor has no 'PET lesion' effect: SUVQuant did not register it.")
    if method:
        effect.setParameter("Method", method)
    sliceWidget = slicer.app.layoutManager().sliceWidget("Red")
    sliceWidget.mrmlSliceNode().JumpSliceByCentering(*ras)
    slicer.app.processEvents()
    xy = effect.self().rasToXy(ras, sliceWidget)
    interactor = sliceWidget.sliceView().interactorStyle().GetInteractor()
    interactor.SetEventPosition(int(round(xy[0])), int(round(xy[1])))
    if not effect.self().processInteractionEvents(interactor, vtk.vtkCommand.LeftButtonPressEvent, sliceWidget):
        raise AssertionError("The PET lesion effect did not take the click in the Red view.")
    editor.setActiveEffect(None)
    return effect.self()


def segmentStatistics(petNode, segmentationNode, requested=("call", "segmentation_status")):
    """Slicer's Segment Statistics of every segment on ``petNode``, with the NETPET SUV plugin's default keys
    and ``requested`` enabled. Returns (the plugin's class name, statistics as SegmentStatisticsLogic
    keeps them: values under (segment id, "<class>.<key>"), measurement info under "MeasurementInfo")."""
    from SegmentStatistics import SegmentStatisticsLogic

    statistics = SegmentStatisticsLogic()
    ours = [p for p in statistics.plugins if p.name == "NETPET SUV"]
    if len(ours) != 1:
        raise AssertionError(f"Segment Statistics has {len(ours)} NETPET SUV plugins (its plugins: "
                             f"{[p.name for p in statistics.plugins]}).")
    pluginName = ours[0].__class__.__name__
    parameters = statistics.getParameterNode()
    parameters.SetParameter("Segmentation", segmentationNode.GetID())
    parameters.SetParameter("ScalarVolume", petNode.GetID())
    parameters.SetParameter("visibleSegmentsOnly", "False")
    for key in requested:
        parameters.SetParameter(f"{pluginName}.{key}.enabled", "True")
    statistics.computeStatistics()
    table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "Segment statistics")
    statistics.exportToTable(table)
    values = statistics.getStatistics()
    if table.GetNumberOfRows() != len(values["SegmentIDs"]):
        raise AssertionError("Segment Statistics exported a table without a row per segment.")
    return pluginName, values


def tagValue(segment, name):
    import vtk

    value = vtk.reference("")
    segment.GetTag(name, value)
    return str(value)


class SUVQuantSelfTest(unittest.TestCase):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def test_click_measure_export_review(self):
        import slicerio

        from netpet.phantom import generate_study

        from NETPETReader import NETPETReaderLogic
        from SUVQuant import SUVQuantLogic

        folder = tempfile.mkdtemp()
        summary = generate_study(folder, patients=1, seed=5, tracers=("dotatate",), modalities=("petct",))
        session = summary["patients"][0]["sessions"][0]
        with open(os.path.join(folder, "truth", "lesions.csv"), newline="") as handle:
            truth = [r for r in csv.DictReader(handle) if r["avid"] == "1"]
        reader = NETPETReaderLogic()
        index = reader.indexFolder(os.path.join(folder, "dicom"))
        pet = reader.loadPET(index.series(session["pet_series_uid"]))
        logic = SUVQuantLogic()
        seeds = [(t["lesion_id"], tuple(float(t[k]) for k in ("center_r", "center_a", "center_s"))) for t in truth]
        result = logic.segmentLesions(pet, seeds, liverRAS=session["liver_reference_center_ras"])
        reference = slicerio.read_segmentation(os.path.join(folder, session["segmentation_file"]))
        # every avid lesion of this study is segmented (the 40 mm necrotic liver metastasis L04 included,
        # clicked in its cold centre) and the contours overlap the truth masks: the same core measured
        # headless gives Dice 0.84 / 0.34 (the 7.5 mm bone lesion) / 0.78 / 0.80, median 0.79; 0.6 leaves
        # room for the Segment Editor's labelmap resampling, not for a lesion missed
        status = {r["lesion_id"]: r for r in result["rows"]}
        dices = []
        for lesion_id, _ in seeds:
            self.assertEqual(status[lesion_id]["segmentation_status"], "segmented", lesion_id)
            ours = slicer.util.arrayFromSegmentBinaryLabelmap(result["segmentation"], lesion_id, pet) > 0
            theirs = np.transpose(slicerio.segment_mask(reference, slicerio.segment_from_id(reference, lesion_id)),
                                  (2, 1, 0)) > 0
            dices.append(2 * (ours & theirs).sum() / (ours.sum() + theirs.sum()))
        self.assertGreater(float(np.median(dices)), 0.6)
        # every row carries its status, flags and warnings, and the results table shows them
        table = logic.resultsTableNode(result["rows"])
        for column in ("segmentation_status", "flags", "warnings", "call", "krenning"):
            self.assertIsNotNone(table.GetTable().GetColumnByName(column), column)
        studyTable = os.path.join(folder, "study.csv")
        summaryExport = logic.exportToStudyTable(result["rows"], studyTable, pet, result["segmentation"])
        self.assertEqual(summaryExport["inserted"], len(result["rows"]))
        from netpet.quant.table import StudyTable

        finding = next(r for r in StudyTable(studyTable).read() if r.get("lesion_id"))
        review = logic.review(studyTable, finding, index=index)
        self.assertIsNotNone(review.segmentationNode)
        self.assertEqual(review.row["lesion_id"], finding["lesion_id"])
        for warning in filter(None, str(review.row.get("warnings") or "").split(" | ")):
            self.assertTrue(any(warning.strip() in m for m in review.messages), warning)
        # extension points, as Slicer holds them: the effect by name in the factory, the plugin as the
        # instance Segment Statistics makes from the registered class (its name is set on the instance)
        effects = slicer.qSlicerSegmentEditorEffectFactory.instance().registeredEffects()
        self.assertIn("PET lesion", [e.name for e in effects])
        from SegmentStatistics import SegmentStatisticsLogic

        plugins = [p for p in SegmentStatisticsLogic().plugins if p.name == "NETPET SUV"]
        self.assertEqual(len(plugins), 1)
        self.assertIn("suv_peak", plugins[0].keys)

    def test_not_separable_equivocal_and_background_points(self):
        from netpet.quant import references
        from netpet.quant.export import COLORS

        from NETPETLib import nodes
        from SUVQuant import NOT_SEPARABLE_SUFFIX, SUVQuantLogic

        pet, ras = syntheticPET()
        logic = SUVQuantLogic()
        background = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Background points")
        background.AddControlPoint(*ras("softTissue"), "E1")
        background.AddControlPoint(*ras("inLiver"), "H1")
        result = logic.segmentLesions(pet, [("L01", ras("flatLiver")), ("E1", ras("E1")), ("H1", ras("H1"))],
                                      liverRAS=ras("liverReference"), backgrounds=background)
        rows = {r["lesion_id"]: r for r in result["rows"]}
        segmentation = result["segmentation"].GetSegmentation()
        # a click in flat liver: not separable, its segment the 1 mL sphere, tagged and named so
        self.assertEqual(rows["L01"]["segmentation_status"], "not separable")
        self.assertIn("not-separable", rows["L01"]["flags"])
        self.assertTrue(rows["L01"]["warnings"])
        self.assertEqual(tagValue(segmentation.GetSegment("L01"), "NETPET.Status"), "not separable")
        self.assertTrue(segmentation.GetSegment("L01").GetName().endswith(NOT_SEPARABLE_SUFFIX))
        # an equivocal lesion: amber, tagged
        self.assertEqual(rows["E1"]["call"], "equivocal")
        self.assertEqual(tagValue(segmentation.GetSegment("E1"), "NETPET.Call"), "equivocal")
        np.testing.assert_allclose(segmentation.GetSegment("E1").GetColor(), COLORS["equivocal"])
        # background points paired by label: T/B against the point's sphere mean
        volume = nodes.suvVolumeFromNode(pet)
        for lesion_id, point in (("E1", "softTissue"), ("H1", "inLiver")):
            mean = references.background_point(volume, ras(point), 20.0).mean
            self.assertAlmostEqual(rows[lesion_id]["background_suv_mean"], mean, places=5)
            self.assertAlmostEqual(rows[lesion_id]["tb_ratio"], rows[lesion_id]["suv_max"] / mean, places=5)
        # measuring again keeps the status and the call colours
        again = {r["lesion_id"]: r for r in logic.measureSegmentation(pet, result["segmentation"],
                                                                      liverRAS=ras("liverReference"))}
        self.assertEqual(again["L01"]["segmentation_status"], "not separable")
        self.assertEqual(again["E1"]["call"], "equivocal")

    def test_segment_editor_click_and_segment_statistics(self):
        from SUVQuant import SUVQuantLogic

        pet, ras = syntheticPET()
        logic = SUVQuantLogic()
        liver = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Liver")
        liver.AddControlPoint(*ras("liverReference"))
        logic.getParameterNode().liverPoint = liver  # the panel's liver point, used by the effect and the plugin
        result = logic.segmentLesions(pet, [("E1", ras("E1")), ("L01", ras("flatLiver"))],
                                      liverRAS=ras("liverReference"))
        node = result["segmentation"]
        # a lesion segmented by a click of the PET lesion effect into a new segment
        node.GetSegmentation().AddEmptySegment("H1", "H1")
        effect = segmentEditorClick(pet, node, "H1", ras("H1"))
        self.assertIn("H1: segmented", effect.lastMessage)
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(node, "H1", pet) > 0
        self.assertGreater(int(mask.sum()), 20)
        # a click where nothing is separable leaves the reader's segment as it was, and says so
        before = slicer.util.arrayFromSegmentBinaryLabelmap(node, "E1", pet).copy()
        effect = segmentEditorClick(pet, node, "E1", ras("flatLiver"), method="fixed41")
        self.assertIn("left unchanged", effect.lastMessage)
        np.testing.assert_array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(node, "E1", pet), before)
        # Segment Statistics through the NETPET SUV plugin: SUV Quant's own measurements, the three-way call
        # and the status on request, DICOM-coded measurement info
        pluginName, values = segmentStatistics(pet, node)
        rows = {r["lesion_id"]: r for r in logic.measureSegmentation(pet, node, liverRAS=ras("liverReference"))}
        self.assertEqual(sorted(values["SegmentIDs"]), ["E1", "H1", "L01"])
        for lesion in ("E1", "H1"):
            for key in ("suv_max", "suv_peak", "suv_mean", "mtv_ml"):
                self.assertAlmostEqual(values[lesion, f"{pluginName}.{key}"], rows[lesion][key], places=4)
        self.assertEqual(values["E1", f"{pluginName}.call"], "equivocal")
        self.assertEqual(values["H1", f"{pluginName}.call"], "positive")
        self.assertEqual(values["L01", f"{pluginName}.segmentation_status"], "not separable")
        info = values["MeasurementInfo"][f"{pluginName}.suv_peak"]
        self.assertTrue(info["DICOM.QuantityCode"].startswith("CodeValue:126401|"))
        self.assertTrue(info["title"])


def runTest():
    unittest.main(module=__name__, exit=False)


if __name__ == "__main__":  # Slicer --python-script <this file>
    outcome = unittest.main(module=__name__, exit=False).result
    slicer.util.exit(0 if outcome.wasSuccessful() else 1)
