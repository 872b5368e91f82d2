"""NETPETReader inside a real Slicer: a synthetic PET/CT session loaded as SUV, fused, and offered
by the DICOM plugin above the generic scalar-volume loader."""

import os
import tempfile
import unittest

import numpy as np

import slicer


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


def runTest():
    unittest.main(module=__name__, exit=False)


if __name__ == "__main__":  # Slicer --python-script <this file>
    outcome = unittest.main(module=__name__, exit=False).result
    slicer.util.exit(0 if outcome.wasSuccessful() else 1)
