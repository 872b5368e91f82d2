"""The whole NETPET chain inside a real Slicer: two synthetic patients loaded as SUV, every truth
lesion clicked and exported, then StudyStats tables, plots and report."""

import csv
import os
import tempfile
import unittest

import slicer


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
        reader, quant = NETPETReaderLogic(), SUVQuantLogic()
        index = reader.indexFolder(os.path.join(folder, "dicom"))
        table = os.path.join(folder, "study.csv")
        for patient in summary["patients"]:
            for session in patient["sessions"]:
                pet = reader.loadPET(index.series(session["pet_series_uid"]))
                seeds = [(t["lesion_id"], tuple(float(t[k]) for k in ("center_r", "center_a", "center_s")))
                         for t in truth if t["session_id"] == session["session_id"]
                         and t["patient_id"] == patient["patient_id"] and t["avid"] == "1"]
                if seeds:
                    result = quant.segmentLesions(pet, seeds, liverRAS=session["liver_reference_center_ras"])
                    quant.exportToStudyTable(result["rows"], table, pet, result["segmentation"])
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
