"""SUVQuant inside a real Slicer: clicks at the truth lesions of a synthetic patient, contours
checked against the truth masks, the Segment Editor effect and SegmentStatistics plugin
registered, export to a study table and review of a row."""

import csv
import os
import tempfile
import unittest

import numpy as np

import slicer


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
        dices = []
        for lesion_id, _ in seeds:
            ours = slicer.util.arrayFromSegmentBinaryLabelmap(result["segmentation"], lesion_id, pet) > 0
            theirs = np.transpose(slicerio.segment_mask(reference, slicerio.segment_from_id(reference, lesion_id)),
                                  (2, 1, 0)) > 0
            dices.append(2 * (ours & theirs).sum() / (ours.sum() + theirs.sum()))
        self.assertGreater(float(np.median(dices)), 0.6)
        table = os.path.join(folder, "study.csv")
        summaryExport = logic.exportToStudyTable(result["rows"], table, pet, result["segmentation"])
        self.assertEqual(summaryExport["inserted"], len(result["rows"]))
        petAgain, segmentation, centroid = logic.review(table, 0, index=index)
        self.assertIsNotNone(segmentation)
        # extension points
        effects = slicer.qSlicerSegmentEditorEffectFactory.instance().registeredEffects()
        self.assertIn("PET lesion", [e.name for e in effects])
        from SegmentStatistics import SegmentStatisticsLogic

        self.assertIn("NETPET SUV", [p.name for p in SegmentStatisticsLogic.registeredPlugins])


def runTest():
    unittest.main(module=__name__, exit=False)


if __name__ == "__main__":  # Slicer --python-script <this file>
    outcome = unittest.main(module=__name__, exit=False).result
    slicer.util.exit(0 if outcome.wasSuccessful() else 1)
