"""The whole NETPET chain inside a real Slicer: two synthetic patients loaded as SUV, every truth
lesion clicked and exported (in the first session, one lesion segmented again by a click of the
"PET lesion" effect in the Segment Editor, the segmentation measured again and checked against Slicer's
Segment Statistics through the NETPET SUV plugin before export), then StudyStats tables, plots and
report."""

import csv
import os
import sys
import tempfile
import unittest

import slicer

#: SUVQuant's self-test, whose helpers click through the Segment Editor and run Segment Statistics
SUVQUANT_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "SUVQuant", "Testing",
                              "Python")


class StudyStatsSelfTest(unittest.TestCase):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def test_chain(self):
        from netpet.phantom import generate_study

        from NETPETReader import NETPETReaderLogic
        from StudyStats import StudyStatsLogic
        from SUVQuant import SUVQuantLogic

        folder = tempfile.mkdtemp()
        summary = generate_study(folder, patients=2, seed=5, tracers=("dotatate",))
        with open(os.path.join(folder, "truth", "lesions.csv"), newline="") as handle:
            truth = list(csv.DictReader(handle))
        if SUVQUANT_TESTS not in sys.path:
            sys.path.insert(0, SUVQUANT_TESTS)
        from SUVQuantSelfTest import segmentEditorClick, segmentStatistics

        reader, quant = NETPETReaderLogic(), SUVQuantLogic()
        index = reader.indexFolder(os.path.join(folder, "dicom"))
        table = os.path.join(folder, "study.csv")
        throughTheEditor = None
        for patient in summary["patients"]:
            for session in patient["sessions"]:
                pet = reader.loadPET(index.series(session["pet_series_uid"]))
                seeds = [(t["lesion_id"], tuple(float(t[k]) for k in ("center_r", "center_a", "center_s")))
                         for t in truth if t["session_id"] == session["session_id"]
                         and t["patient_id"] == patient["patient_id"] and t["avid"] == "1"]
                if not seeds:
                    continue
                liver = session["liver_reference_center_ras"]
                result = quant.segmentLesions(pet, seeds, liverRAS=liver)
                rows = result["rows"]
                if throughTheEditor is None:
                    # the reader corrects the first lesion with a click of the PET lesion effect, then measures
                    # the segmentation again; Segment Statistics' NETPET SUV plugin gives the same SUVmax
                    throughTheEditor = seeds[0][0]
                    effect = segmentEditorClick(pet, result["segmentation"], seeds[0][0], seeds[0][1])
                    self.assertIn("segmented", effect.lastMessage)
                    rows = quant.measureSegmentation(pet, result["segmentation"], liverRAS=liver)
                    pluginName, values = segmentStatistics(pet, result["segmentation"], requested=())
                    measured = next(r for r in rows if r["lesion_id"] == throughTheEditor)
                    self.assertAlmostEqual(values[throughTheEditor, f"{pluginName}.suv_max"], measured["suv_max"],
                                           places=4)
                quant.exportToStudyTable(rows, table, pet, result["segmentation"])
        self.assertIsNotNone(throughTheEditor)
        out = StudyStatsLogic().run(table, os.path.join(folder, "reference_standard.csv"),
                                    os.path.join(folder, "statistics"), bootstrap=200)
        self.assertTrue(os.path.exists(out["report"]))
        self.assertGreater(out["tables"]["accuracy"].GetNumberOfRows(), 0)
        self.assertIn("roc_suv_max", out["charts"])


def runTest():
    unittest.main(module=__name__, exit=False)


if __name__ == "__main__":  # Slicer --python-script <this file>
    outcome = unittest.main(module=__name__, exit=False).result
    slicer.util.exit(0 if outcome.wasSuccessful() else 1)
