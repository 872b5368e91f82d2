"""One study-table schema for the command line and Slicer (issue 12, item 2): the same session's lesions exported
through ``netpet quantify`` and through SUVQuantLogic.exportToStudyTable land on the same keys (the upsert updates,
nothing is duplicated), both keep each other's segments in the one .seg.nrrd, ``netpet stats`` reads the table, and
review reopens a finding by patient, session and lesion with its CT, without indexing the folder again.

The Logic runs on real MRML from slicer-core (netpet.slicer_runtime); the Widget is not exercised here."""

import csv
import os

import pytest

import slicer

from netpet import schema
from netpet.cli.main import main
from netpet.quant.table import KEY, StudyTable

MANIFEST = ("patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s", "region",
            "lesion_type")


@pytest.fixture()
def session(mrml, reference_study, truth_lesions):
    """A PET/CT DOTATATE session of the reference study with at least three avid lesions, its index and PET node."""
    from NETPETReader import NETPETReaderLogic

    out, summary = reference_study
    for patient in summary["patients"]:
        for entry in patient["sessions"]:
            lesions = [t for t in truth_lesions if t["patient_id"] == patient["patient_id"] and t["avid"] == "1"
                       and t["session_id"] == entry["session_id"]]
            if entry["modality"] == "PET/CT" and entry["tracer"] == "dotatate" and len(lesions) >= 3:
                reader = NETPETReaderLogic()
                index = reader.indexFolder(str(out / "dicom"))
                record = index.series(entry["pet_series_uid"])
                return out, patient["patient_id"], entry, lesions[:3], index, record
    pytest.fail("the reference study has a PET/CT DOTATATE session with three avid lesions")


def _manifest(path, out, patient, entry, lesions, session_id=""):
    series = out / "dicom" / patient / entry["session_id"] / "PET"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST)
        for t in lesions:
            writer.writerow([patient, session_id, str(series), "R1", t["lesion_id"], t["center_r"], t["center_a"],
                             t["center_s"], t["region"], t["kind"]])
    return str(path)


def _seeds(lesions):
    return [(t["lesion_id"], tuple(float(t[k]) for k in ("center_r", "center_a", "center_s"))) for t in lesions]


def _keys(rows):
    return sorted(tuple(r[k] for k in KEY) for r in rows)


def _segments(path):
    import slicerio

    return {s["id"] for s in slicerio.read_segmentation(str(path), skip_voxels=True)["segments"]}


def test_cli_and_slicer_write_the_same_keys_and_stats_reads_them(session, tmp_path):
    from NETPETReader import NETPETReaderLogic

    from SUVQuant import SUVQuantLogic

    out, patient, entry, lesions, index, record = session
    table = tmp_path / "study.csv"
    # the command line: two lesions, no session id in the manifest (the rule derives it from the series' study)
    manifest = _manifest(tmp_path / "manifest.csv", out, patient, entry, lesions[:2])
    assert main(["quantify", manifest, "--table", str(table), "--jobs", "1"]) == 0
    cli_rows = StudyTable(str(table)).read()
    derived = schema.record_session_id(record)
    assert {r["session_id"] for r in cli_rows} == {derived}
    assert derived.startswith("DOTATATE-PETCT-")
    # Slicer: the same PET, the same two lesions and a third, the same reader, labels given per lesion
    pet = NETPETReaderLogic().loadPET(record)
    logic = SUVQuantLogic()
    regions = {t["lesion_id"]: t["region"] for t in lesions}
    types = {t["lesion_id"]: t["kind"] for t in lesions}
    result = logic.segmentLesions(pet, _seeds(lesions), reader="R1", liverRAS=entry["liver_reference_center_ras"])
    assert logic.sessionIDFor(pet, str(table)) == (derived, "")
    summary = logic.exportToStudyTable(result["rows"], str(table), pet, result["segmentation"], reader="R1",
                                       regions=regions, lesionTypes=types)
    assert (summary["inserted"], summary["updated"]) == (1, 2), summary  # upsert: the CLI's two rows updated
    assert summary["session_id"] == derived and summary["warnings"] == []
    rows = StudyTable(str(table)).read()
    assert len(rows) == 3 and len(set(_keys(rows))) == 3
    assert _keys(cli_rows) == [k for k in _keys(rows) if k[-1] in {t["lesion_id"] for t in lesions[:2]}]
    for row in rows:  # region and lesion type filled alike by both paths
        assert (row["region"], row["lesion_type"]) == (regions[row["lesion_id"]], types[row["lesion_id"]])
        assert row["modality"] == "PET/CT" and row["tracer"] == "dotatate" and row["reader"] == "R1"
    # one .seg.nrrd, named alike by both paths, holding both paths' segments (each merge keeps the other's)
    assert {r["segmentation_file"] for r in rows} == {f"segmentations/{schema.segmentation_file_name(patient, derived, 'R1')}"}
    seg_path = tmp_path / rows[0]["segmentation_file"]
    assert _segments(seg_path) == {t["lesion_id"] for t in lesions}
    # the command line again over the Slicer export: updates only, and the Slicer-only lesion's segment is kept
    assert main(["quantify", manifest, "--table", str(table), "--jobs", "1"]) == 0
    again = StudyTable(str(table)).read()
    assert _keys(again) == _keys(rows) and _segments(seg_path) == {t["lesion_id"] for t in lesions}
    # netpet stats reads the table: no duplicated key
    report = tmp_path / "stats"
    assert main(["stats", str(table), "--reference", str(out / "reference_standard.csv"), "--out", str(report),
                 "--bootstrap", "200"]) == 0
    # a Slicer export of fewer segments into the file keeps the others too
    single = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "one lesion")
    single.SetReferenceImageGeometryParameterFromVolumeNode(pet)
    single.GetSegmentation().CopySegmentFromSegmentation(result["segmentation"].GetSegmentation(), lesions[0]["lesion_id"])
    one = [r for r in result["rows"] if r["lesion_id"] == lesions[0]["lesion_id"]]
    assert logic.exportToStudyTable(one, str(table), pet, single, reader="R1")["updated"] == 1
    assert _segments(seg_path) == {t["lesion_id"] for t in lesions}


def test_manifest_session_ids_reach_slicer(session, tmp_path, caplog):
    """A manifest that names its sessions (as the synthetic study does: S1-DOTATATE-PETCT): Slicer writes into
    that session, from the table's record of the series or from the id given to the Logic."""
    from NETPETReader import NETPETReaderLogic

    from SUVQuant import SUVQuantLogic

    out, patient, entry, lesions, index, record = session
    table = tmp_path / "study.sqlite"
    manifest = _manifest(tmp_path / "manifest.csv", out, patient, entry, lesions[:1], session_id=entry["session_id"])
    assert main(["quantify", manifest, "--table", str(table), "--jobs", "1"]) == 0
    pet = NETPETReaderLogic().loadPET(record)
    logic = SUVQuantLogic()
    result = logic.segmentLesions(pet, _seeds(lesions[:2]), reader="R1")
    # no id given: the table's id for this patient's series
    summary = logic.exportToStudyTable(result["rows"], str(table), pet, result["segmentation"], reader="R1")
    assert summary["session_id"] == entry["session_id"] and (summary["inserted"], summary["updated"]) == (1, 1)
    # the same id given explicitly, as the manifest gives it: the same rows
    assert logic.setSessionID(pet, f"  {entry['session_id']} ") == entry["session_id"]
    assert logic.exportToStudyTable(result["rows"], str(table), pet, result["segmentation"], reader="R1")["updated"] == 2
    # another explicit id for the same series is written as given, and said
    other = logic.exportToStudyTable(result["rows"], str(table), pet, result["segmentation"], reader="R1",
                                     sessionID="S1-renamed")
    assert other["inserted"] == 2 and "already in the study table as session" in other["warnings"][0]
    # the command line says it too, and derives nothing where the manifest names the session
    with caplog.at_level("WARNING"):
        _manifest(tmp_path / "renamed.csv", out, patient, entry, lesions[:1], session_id="S1-other")
        main(["quantify", str(tmp_path / "renamed.csv"), "--table", str(table), "--jobs", "1"])
    assert any("already in the study table as session" in r.getMessage() for r in caplog.records)
    assert {r["session_id"] for r in StudyTable(str(table)).read()} == {entry["session_id"], "S1-renamed", "S1-other"}


def test_review_by_patient_session_and_lesion_with_the_ct_and_one_index(session, tmp_path, monkeypatch):
    import netpet.dicom.index

    from NETPETReader import NETPETReaderLogic

    from SUVQuant import SUVQuantLogic

    out, patient, entry, lesions, index, record = session
    table = tmp_path / "study.csv"
    manifest = _manifest(tmp_path / "manifest.csv", out, patient, entry, lesions)
    assert main(["quantify", manifest, "--table", str(table), "--jobs", "1"]) == 0
    derived = schema.record_session_id(record)
    logic = SUVQuantLogic()
    targets = logic.reviewTargets(str(table))
    assert [(t["patient_id"], t["session_id"], t["lesion_id"]) for t in targets] == sorted(
        (patient, derived, t["lesion_id"]) for t in lesions)
    calls = []
    real = netpet.dicom.index.index_tree
    monkeypatch.setattr(netpet.dicom.index, "index_tree", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = logic.review(str(table), patient, derived, lesions[0]["lesion_id"], dicomFolder=str(out / "dicom"))
    assert first.anatomicalNode is not None and first.anatomicalNode.GetAttribute("NETPET.SeriesInstanceUID") == \
        record.partner_series_uid
    assert first.petNode.GetAttribute("NETPET.SeriesInstanceUID") == record.series_uid
    assert first.segmentationNode.GetSegmentation().GetSegment(lesions[0]["lesion_id"]) is not None
    assert first.row["lesion_id"] == lesions[0]["lesion_id"] and first.centroid is not None
    # the next lesion: no session id needed (one session holds it), the folder's index and the loaded PET reused
    second = logic.review(str(table), patient, lesion_id=lesions[1]["lesion_id"], dicomFolder=str(out / "dicom"))
    assert second.petNode is first.petNode and second.anatomicalNode is first.anatomicalNode
    assert second.segmentationNode is first.segmentationNode
    assert len(calls) == 1, "the DICOM folder is indexed once for every review"
    # the session alone: centred on its first lesion
    whole = logic.review(str(table), patient, derived)
    assert whole.row["lesion_id"] == min(t["lesion_id"] for t in lesions) and len(calls) == 1
    # refusals name the choices
    with pytest.raises(ValueError, match="no rows of patient 'nobody'"):
        logic.review(str(table), "nobody")
    with pytest.raises(ValueError, match="no session 'S9'"):
        logic.review(str(table), patient, "S9")
    with pytest.raises(ValueError, match="not a row number"):
        logic.review(str(table), 0)
    # an export after the review lands in the reviewed rows (the PET node carries the row's session)
    result = logic.measureSegmentation(first.petNode, first.segmentationNode, reader="R1")
    summary = logic.exportToStudyTable(result, str(table), first.petNode, first.segmentationNode, reader="R1")
    assert summary["inserted"] == 0 and summary["updated"] == len(lesions)
    assert NETPETReaderLogic  # (NETPET Reader's loadSession loaded the PET with its CT above)
    assert os.path.exists(tmp_path / first.row["segmentation_file"])
