"""NETPETReader inside a real Slicer: a synthetic PET/CT session loaded as SUV, fused, and offered
by the DICOM plugin above the generic scalar-volume loader; the SUV volume it loads is segmented by a
click of SUVQuant's "PET lesion" effect and measured by Slicer's Segment Statistics through the NETPET
SUV plugin (in SUVbw, with its DICOM codes)."""

import csv
import os
import sys
import tempfile
import unittest

import numpy as np

import slicer

#: SUVQuant's self-test, whose helpers click through the Segment Editor and run Segment Statistics
SUVQUANT_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "SUVQuant", "Testing",
                              "Python")


class NETPETReaderSelfTest(unittest.TestCase):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def test_load_and_dicom_plugin(self):
        import SimpleITK as sitk

        from netpet.dicom.convert import convert_to_suv
        from netpet.phantom import generate_study

        from NETPETReader import NETPETReaderLogic

        folder = tempfile.mkdtemp()
        summary = generate_study(folder, patients=1, seed=5, tracers=("dotatate",), modalities=("petct",))
        logic = NETPETReaderLogic()
        index = logic.indexFolder(os.path.join(folder, "dicom"))
        session = summary["patients"][0]["sessions"][0]
        pet, ct = logic.loadSession(index, session["pet_series_uid"])
        expected = convert_to_suv(index.series(session["pet_series_uid"]), "bw").image
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(pet), sitk.GetArrayFromImage(expected)))
        self.assertEqual(pet.GetAttribute("NETPET.Modality"), "PET/CT")
        red = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceCompositeNode()
        self.assertEqual(red.GetForegroundVolumeID(), pet.GetID())
        self.assertEqual(red.GetBackgroundVolumeID(), ct.GetID())
        # the DICOM plugin is registered and outbids the scalar-volume plugin on the PET files
        self.assertIn("NETPETSUVPlugin", slicer.modules.dicomPlugins)
        files = list(index.series(session["pet_series_uid"]).files)
        ours = slicer.modules.dicomPlugins["NETPETSUVPlugin"]().examineForImport([files])
        generic = slicer.modules.dicomPlugins["DICOMScalarVolumePlugin"]().examineForImport([files])
        self.assertTrue(ours and generic)
        self.assertGreater(max(l.confidence for l in ours), max(l.confidence for l in generic))
        # the loaded SUV volume, segmented through the PET lesion effect and measured through the plugin
        if SUVQUANT_TESTS not in sys.path:
            sys.path.insert(0, SUVQUANT_TESTS)
        from SUVQuantSelfTest import segmentEditorClick, segmentStatistics

        with open(os.path.join(folder, "truth", "lesions.csv"), newline="") as handle:
            lesion = next(t for t in csv.DictReader(handle) if t["avid"] == "1"
                          and t["session_id"] == session["session_id"])
        center = tuple(float(lesion[k]) for k in ("center_r", "center_a", "center_s"))
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Lesions")
        segmentation.CreateDefaultDisplayNodes()
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(pet)
        segmentation.GetSegmentation().AddEmptySegment(lesion["lesion_id"], lesion["lesion_id"])
        effect = segmentEditorClick(pet, segmentation, lesion["lesion_id"], center)
        self.assertIn("segmented", effect.lastMessage)
        pluginName, values = segmentStatistics(pet, segmentation)
        self.assertGreater(values[lesion["lesion_id"], f"{pluginName}.suv_max"], 0.0)
        self.assertTrue(values["MeasurementInfo"][f"{pluginName}.suv_max"]["DICOM.QuantityCode"].startswith(
            "CodeValue:126401|"))


def runTest():
    unittest.main(module=__name__, exit=False)


if __name__ == "__main__":  # Slicer --python-script <this file>
    outcome = unittest.main(module=__name__, exit=False).result
    slicer.util.exit(0 if outcome.wasSuccessful() else 1)
