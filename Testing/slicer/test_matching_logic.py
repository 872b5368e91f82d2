"""Matched lesions in Slicer (NETPETLib.matching, netpet.match.pairs) on real MRML (slicer-core).

- A stored registration read the way Slicer reads a transform file (vtkMRMLTransformStorageNode) maps a
  moving-session point exactly where the core's ``map_points_ras`` does: the file convention and the
  Slicer convention agree (tolerance 1e-6 mm: double arithmetic of the same rigid transform).
- A pair of the reference study is shown side by side: Red on session a's PET, Yellow on session b's,
  unlinked, each centred on its own finding (the slice origin equals the centroid within 1e-6 mm).
- A side without finding is centred on the other side's point brought over by the registration.
The Widget (buttons, combo box) needs the Slicer application: StudyStats' self-test covers it there.
"""

import csv

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

import slicer

FIXED, MOVING = "S1-DOTATATE-PETCT", "S2-DOTATATE-PETMR"


def _origin(sliceNode):
    matrix = sliceNode.GetSliceToRAS()
    return np.array([matrix.GetElement(i, 3) for i in range(3)])


@pytest.fixture()
def rigid(tmp_path):
    transform = sitk.Euler3DTransform((10.0, 20.0, 30.0), 0.05, -0.03, 0.08, (5.0, -7.0, 12.0))
    path = str(tmp_path / "P_S2_to_S1.h5")
    sitk.WriteTransform(transform, path)
    return transform, path


def test_stored_registration_reads_as_slicer_transform(mrml, rigid):
    from netpet.match.registration import map_points_ras
    from NETPETLib import matching

    transform, path = rigid
    node = matching.loadRegistration(path)
    assert node.IsA("vtkMRMLLinearTransformNode") and node.GetName() == "P_S2_to_S1"
    points = np.array([[12.0, -40.0, 55.0], [-80.0, 10.0, -600.0], [0.0, 0.0, 0.0]])
    expected = map_points_ras(transform, points)
    got = np.array([matching.transformPoint(node, p) for p in points])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(got - points).max() > 5.0  # the transform does move points: the check can fail


def test_unreadable_registration_is_refused(mrml, tmp_path):
    from NETPETLib import matching

    with pytest.raises(ValueError, match="does not exist; run netpet register"):
        matching.loadRegistration(str(tmp_path / "missing.h5"))
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not a transform")
    with pytest.raises(ValueError, match="cannot read .* as a transform"):
        matching.loadRegistration(str(bad))
    assert mrml.GetNodesByClass("vtkMRMLLinearTransformNode").GetNumberOfItems() == 0


def _table_and_correspondence(truth_lesions, patient):
    """The truth lesions of two sessions as a reader's findings (ids in click order: C1, C2...) and a
    correspondence whose tracks are the truth lesions; the last lesion of S2 is left unfound (missed)."""
    table, corr = [], []
    for session in (FIXED, MOVING):
        rows = [r for r in truth_lesions if r["patient_id"] == patient and r["session_id"] == session]
        for number, r in enumerate(rows):
            finding = f"C{number + 1}"
            if session == MOVING and number == len(rows) - 1:
                corr.append({"patient_id": patient, "session_id": session, "reader": "R1", "lesion_id": "",
                             "track_id": r["lesion_id"], "reference_lesion_id": r["lesion_id"], "status": "missed"})
                continue
            table.append({"patient_id": patient, "session_id": session, "reader": "R1", "lesion_id": finding,
                          "modality": r["modality"], "tracer": r["tracer"], "suv_max": r["suv_max_true"],
                          "mtv_ml": r["volume_ml"], "centroid_r": r["center_r"], "centroid_a": r["center_a"],
                          "centroid_s": r["center_s"], "call": "positive"})
            corr.append({"patient_id": patient, "session_id": session, "reader": "R1", "lesion_id": finding,
                         "track_id": r["lesion_id"], "reference_lesion_id": r["lesion_id"], "status": "matched"})
    return pd.DataFrame(table), pd.DataFrame(corr)


def test_pairs_side_by_side(mrml, reference_study, reference_suv, truth_lesions, rigid):
    from netpet.match.pairs import PairsError, matched_pairs, pair_label
    from NETPETLib import matching, nodes

    patient = "NETPET-001"
    table, corr = _table_and_correspondence(truth_lesions, patient)
    pairs = matched_pairs(table, corr, patient, FIXED, MOVING)
    truth = {(r["session_id"], r["lesion_id"]): r for r in truth_lesions if r["patient_id"] == patient}
    lesions = sorted({lid for (s, lid) in truth if s == FIXED})
    assert list(pairs["track_id"]) == lesions
    assert list(pairs["pair_status"]) == ["both"] * (len(lesions) - 1) + ["a only"]
    for pair in pairs.to_dict("records"):
        for side, session in (("a", FIXED), ("b", MOVING)):
            if pair[f"lesion_id_{side}"]:
                t = truth[(session, pair["track_id"])]
                assert pair[f"centroid_r_{side}"] == pytest.approx(float(t["center_r"]))
    assert pair_label(pairs.iloc[-1].to_dict()).endswith("<-> -, a only")
    with pytest.raises(PairsError, match="no session S9"):
        matched_pairs(table, corr, patient, FIXED, "S9")

    images = {}
    for session in (FIXED, MOVING):
        path, provenance = reference_suv[(patient, session)]
        node = nodes.volumeNodeFromImage(sitk.ReadImage(str(path)), f"{patient} {session}")
        nodes.setProvenance(node, provenance)
        images[session] = node
    layout = mrml.GetFirstNodeByClass("vtkMRMLLayoutNode")  # the layout logic's node, as in the application
    assert layout is not None and layout.GetViewArrangement() != slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView
    both = pairs.iloc[0].to_dict()
    shown = matching.showSideBySide(both, images[FIXED], images[MOVING])
    assert layout.GetViewArrangement() == slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView
    red = mrml.GetSingletonNode("Red", "vtkMRMLSliceCompositeNode")
    yellow = mrml.GetSingletonNode("Yellow", "vtkMRMLSliceCompositeNode")
    assert red.GetBackgroundVolumeID() == images[FIXED].GetID()
    assert yellow.GetBackgroundVolumeID() == images[MOVING].GetID()
    assert not red.GetLinkedControl() and not yellow.GetLinkedControl()
    for name, side in (("Red", "a"), ("Yellow", "b")):
        expected = np.array([both[f"centroid_{axis}_{side}"] for axis in "ras"])
        np.testing.assert_allclose(_origin(mrml.GetSingletonNode(name, "vtkMRMLSliceNode")), expected, atol=1e-6)
        assert mrml.GetSingletonNode(name, "vtkMRMLSliceNode").GetOrientation() == "Axial"
    assert shown["notes"] == []
    # the pair found only in session a: the right view goes to the registered place of the left finding
    transform, path = rigid
    node = matching.loadRegistration(path)
    missed = pairs.iloc[-1].to_dict()
    shown = matching.showSideBySide(missed, images[FIXED], images[MOVING], transformBToA=node)
    a = np.array([missed[f"centroid_{axis}_a"] for axis in "ras"])
    back = matching.transformPoint(node, shown["points"]["b"])
    np.testing.assert_allclose(back, a, atol=1e-6)
    assert "No finding of track" in shown["notes"][0] and "registered place" in shown["notes"][0]
    with pytest.raises(ValueError, match="Load the PET of both sessions"):
        matching.showSideBySide(both, images[FIXED], None)


def test_pet_node_found_by_series(mrml, reference_suv):
    from NETPETLib import matching, nodes

    path, provenance = reference_suv[("NETPET-001", FIXED)]
    node = nodes.volumeNodeFromImage(sitk.ReadImage(str(path)), "pet")
    nodes.setProvenance(node, provenance)
    node.SetAttribute(nodes.ATTRIBUTE_PREFIX + "SeriesInstanceUID", "1.2.3")
    assert matching.petNodeForSeries("1.2.3") is node
    assert matching.petNodeForSeries("9.9") is None and matching.petNodeForSeries("") is None
