"""NETPETReaderLogic on real MRML (slicer-core) and the digital reference study."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

import slicer


@pytest.fixture()
def logic(mrml):
    from NETPETReader import NETPETReaderLogic

    return NETPETReaderLogic()


def test_index_and_sessions(logic, reference_study):
    out, summary = reference_study
    index = logic.indexFolder(str(out / "dicom"))
    sessions = logic.sessions(index)
    expected = [(p["patient_id"], s["modality"], s["tracer"]) for p in summary["patients"] for s in p["sessions"]]
    assert sorted((s["patient_id"], s["hybrid"], "dotatate" if "DOTATATE" in s["tracer"] else "fdg")
                  for s in sessions) == sorted(expected)
    assert all(s["partner_series_uid"] for s in sessions)
    table = logic.sessionsTableNode(index)
    assert table.GetNumberOfRows() == len(sessions) and table.GetTable().GetColumnByName("hybrid") is not None
    with pytest.raises(ValueError, match="not a folder"):
        logic.indexFolder(str(out / "nowhere"))


def test_load_session_suv_values_geometry_provenance_and_fusion(logic, reference_study, reference_suv, mrml):
    out, summary = reference_study
    index = logic.indexFolder(str(out / "dicom"))
    patient = summary["patients"][0]
    session = next(s for s in patient["sessions"] if s["modality"] == "PET/MR")
    pet_node, mr_node = logic.loadSession(index, session["pet_series_uid"], "bw", window=(0.0, 8.0))
    # values: the same SUV image the command line writes (netpet suv), voxel for voxel
    path, provenance = reference_suv[(patient["patient_id"], session["session_id"])]
    expected = sitk.ReadImage(str(path))
    assert np.array_equal(slicer.util.arrayFromVolume(pet_node), sitk.GetArrayFromImage(expected))
    # geometry: the RAS position of a voxel equals the LPS position of the same voxel, x and y flipped
    ijk_to_ras = __import__("vtk").vtkMatrix4x4()
    pet_node.GetIJKToRASMatrix(ijk_to_ras)
    for ijk in ((0, 0, 0), (10, 20, 5), tuple(s - 1 for s in expected.GetSize())):
        ras = ijk_to_ras.MultiplyPoint((*ijk, 1.0))[:3]
        lps = expected.TransformIndexToPhysicalPoint(ijk)
        # both sides are doubles from the same DICOM geometry; 1e-4 mm allows only rounding, far below a voxel
        assert ras == pytest.approx((-lps[0], -lps[1], lps[2]), abs=1e-4)
    # provenance on the node: every key readers look for, and the full record
    assert pet_node.GetAttribute("NETPET.SUVType") == "bw" and pet_node.GetAttribute("NETPET.Units") == "BQML"
    assert pet_node.GetAttribute("NETPET.Modality") == "PET/MR" and pet_node.GetAttribute("NETPET.Tracer") == "dotatate"
    recorded = json.loads(pet_node.GetAttribute("NETPET.Provenance"))
    assert recorded["factor"] == pytest.approx(provenance["factor"]) and recorded["rules"] == provenance["rules"]
    text = logic.provenanceText(pet_node)
    assert "SUVbw" in text and "RadionuclideTotalDose" in text
    # display: PET colour map and the window asked for
    display = pet_node.GetDisplayNode()
    assert display.GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat"
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == pytest.approx((0.0, 8.0))
    # the MR partner, in its own geometry, under the PET in every linked slice view
    assert mr_node is not None and mr_node.GetAttribute("NETPET.SeriesInstanceUID") == session["anatomy_series_uid"]
    composites = mrml.GetNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(composites.GetNumberOfItems()):
        c = composites.GetItemAsObject(i)
        assert c.GetForegroundVolumeID() == pet_node.GetID() and c.GetBackgroundVolumeID() == mr_node.GetID()
        assert c.GetForegroundOpacity() == pytest.approx(0.5) and c.GetLinkedControl()


def test_ct_partner_in_hounsfield_units(logic, reference_study):
    import pydicom

    out, summary = reference_study
    index = logic.indexFolder(str(out / "dicom"))
    session = next(s for s in summary["patients"][0]["sessions"] if s["modality"] == "PET/CT")
    record = index.series(session["anatomy_series_uid"])
    node = logic.loadAnatomical(record)
    array = slicer.util.arrayFromVolume(node)
    # one slice read independently with pydicom: stored value x slope + intercept
    datasets = sorted((pydicom.dcmread(f) for f in record.files), key=lambda d: float(d.ImagePositionPatient[2]))
    middle = datasets[len(datasets) // 2]
    hu = middle.pixel_array * float(middle.RescaleSlope) + float(middle.RescaleIntercept)
    assert np.allclose(array[len(datasets) // 2], hu)
    assert node.GetDisplayNode().GetWindow() == pytest.approx(400.0)


def test_dicom_plugin_offers_pet_as_suv(logic, reference_study):
    out, summary = reference_study
    index = logic.indexFolder(str(out / "dicom"))
    session = summary["patients"][0]["sessions"][0]
    pet = index.series(session["pet_series_uid"])
    ct = index.series(session["anatomy_series_uid"])
    offers = logic.examineFiles([list(pet.files), list(ct.files)])
    assert len(offers) == 1 and offers[0]["series_uid"] == pet.series_uid
    assert offers[0]["confidence"] > 0.5  # above Slicer's generic scalar-volume plugin
    node = logic.loadFiles(offers[0]["files"], "lbm")
    assert node.GetAttribute("NETPET.SUVType") == "lbm"
    assert float(slicer.util.arrayFromVolume(node).max()) > 0


def test_session_table_tells_a_patients_pet_ct_from_pet_mr(logic, reference_study):
    """The reader's session table shows a different text for each session of a patient: date and hybrid
    before the PET series' description (the phantom's PET/CT and PET/MR series share one description)."""
    out, summary = reference_study
    sessions = logic.sessions(logic.indexFolder(str(out / "dicom")))
    for patient in summary["patients"]:
        rows = [s for s in sessions if s["patient_id"] == patient["patient_id"]]
        assert {r["hybrid"] for r in rows} == {"PET/CT", "PET/MR"}
        assert len({r["session"] for r in rows}) == len(rows)
        for row in rows:
            assert row["session"].split(" ")[1].rstrip(":") == row["hybrid"] and row["pet_description"] in row["session"]
