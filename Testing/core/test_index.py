"""The study index on a tree with mixed junk, split series, a DICOMDIR and hybrid pairs."""

from __future__ import annotations

import copy
import datetime as dt
import os
from dataclasses import replace

import numpy as np
import pytest

from netpet.dicom import dro, writer
from netpet.dicom.index import describe, index_tree
from netpet.dicom.pet_header import Radiopharmaceutical, CodedValue
from netpet.dicom.tracer import identify
from netpet.errors import AmbiguousInputError, DicomInputError, printable, printable_text


def _anatomical(case, modality, pet_ds, frame_of_reference=None, start=None):
    uid = dro.uid_factory(case.seed + modality)
    geometry = writer.VolumeGeometry(case.origin, case.spacing)
    patient = writer.PatientInfo(pet_ds.PatientID, str(pet_ds.PatientName), case.sex)
    study = writer.StudyInfo(pet_ds.StudyInstanceUID, case.scan)
    series = writer.SeriesInfo(uid("series"), frame_of_reference or pet_ds.FrameOfReferenceUID, 2, modality,
                               start or case.scan - dt.timedelta(minutes=2), "X", "Y")
    values = np.zeros((4, case.shape[1], case.shape[2]))
    if modality == "CT":
        return writer.ct_datasets(values, geometry, patient, study, series, uid)
    return writer.mr_datasets(values, geometry, patient, study, series, uid)


@pytest.fixture
def tree(tmp_path):
    """Two patients; PET/CT (shared frame of reference) split over two folders, PET/MR paired by
    study and time, an FDG PET/CT with two CTs, junk files, a duplicate file and a DICOMDIR."""
    root = tmp_path / "tree"
    # patient A, session 1: DOTATATE PET/CT, PET split over two nested folders, files named .dcm
    ga = dro.Case(seed="a1", nuclide="Ga-68", agent_text="Ga68 DOTA-TATE", agent_code=None, shape=(8, 10, 10))
    pet, _ = dro.build(ga)
    for ds in pet:
        ds.PatientID, ds.PatientName = "PAT-A", "Alpha^A"
    writer.save_datasets(pet[:4], str(root / "A" / "s1" / "pet_part1"), prefix="slice_")
    writer.save_datasets(pet[4:], str(root / "A" / "s1" / "deeper" / "pet_part2"), prefix="other_")
    for name in os.listdir(root / "A" / "s1" / "pet_part1"):
        os.rename(root / "A" / "s1" / "pet_part1" / name, root / "A" / "s1" / "pet_part1" / (name + ".dcm"))
    writer.save_datasets(_anatomical(ga, "CT", pet[0]), str(root / "A" / "s1" / "ct"))
    # a duplicate copy of one PET file elsewhere
    writer.save_datasets([copy.deepcopy(pet[0])], str(root / "A" / "copies"), prefix="dup")
    # patient A, session 2: PET/MR; the MR has its own frame of reference (paired by study and time)
    mr_case = replace(ga, seed="a2", scan=dt.datetime(2024, 3, 6, 11, 0, 0), injection=dt.datetime(2024, 3, 6, 10, 0, 0))
    pet2, _ = dro.build(mr_case)
    for ds in pet2:
        ds.PatientID, ds.PatientName = "PAT-A", "Alpha^A"
        ds.SeriesDescription = "PET MRAC"
    writer.save_datasets(pet2, str(root / "A" / "s2" / "pet"))
    writer.save_datasets(_anatomical(mr_case, "MR", pet2[0], frame_of_reference="2.25.999"), str(root / "A" / "s2" / "mr"))
    # a far-away MR of the same study (3 h earlier) that must not be chosen
    writer.save_datasets(_anatomical(replace(mr_case, seed="a2b"), "MR", pet2[0], frame_of_reference="2.25.998",
                                     start=mr_case.scan - dt.timedelta(hours=3)), str(root / "A" / "s2" / "mr_early"))
    # patient B: FDG PET/CT with a low-dose CT (shared frame of reference) and a diagnostic CT
    fdg = dro.Case(seed="b1", shape=(8, 10, 10))
    pet3, _ = dro.build(fdg)
    for ds in pet3:
        ds.PatientID, ds.PatientName = "PAT-B", "Beta^B"
    writer.save_datasets(pet3, str(root / "B" / "pet"))
    writer.save_datasets(_anatomical(fdg, "CT", pet3[0]), str(root / "B" / "ct_ac"))
    writer.save_datasets(_anatomical(replace(fdg, seed="b2"), "CT", pet3[0], frame_of_reference="2.25.997"),
                         str(root / "B" / "ct_diag"))
    # junk
    (root / "README.txt").write_text("study notes\n")
    (root / "B" / "empty").write_bytes(b"")
    (root / "B" / "noise.bin").write_bytes(np.random.default_rng(1).bytes(5000))
    (root / "B" / "truncated.dcm").write_bytes((root / "B" / "pet" / "IM0001").read_bytes()[:300])
    (root / "A" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 200)
    return root


def test_index_groups_pairs_and_labels(tree):
    index = index_tree(str(tree), jobs=1)
    assert [p.patient_id for p in index.patients] == ["PAT-A", "PAT-B"]
    pets = index.pet_series()
    assert len(pets) == 3
    a1, a2, b1 = sorted(pets, key=lambda s: (s.patient_id, s.start()))
    # split series: one record, 8 instances from two folders, duplicate dropped with a warning
    assert a1.instance_count == 8 and len(a1.folders) == 2
    assert any("duplicate instance" in w for w in a1.warnings)
    assert a1.tracer.label == "68Ga-DOTATATE" and a1.tracer.key == "dotatate"
    assert a1.hybrid == "PET/CT" and a1.partner_rule == "same FrameOfReferenceUID"
    assert a2.hybrid == "PET/MR" and a2.partner_rule.startswith("same study, closest in time")
    partner = index.series(a2.partner_series_uid)
    assert partner.modality == "MR" and partner.start() > a2.start() - dt.timedelta(hours=1)
    assert b1.tracer.label == "18F-FDG" and b1.hybrid == "PET/CT"
    assert index.series(b1.partner_series_uid).frame_of_reference_uid == b1.frame_of_reference_uid
    # junk: README, empty, noise, truncated DICOM, PNG
    assert index.skipped == {"not a DICOM image (or a DICOMDIR)": 5}
    assert index.dicom_files == index.files_seen - 5


def test_index_json_leaves_identity_out(tree):
    index = index_tree(str(tree), jobs=1)
    text = str(index.to_dict())
    assert "Alpha" not in text and "Beta" not in text
    assert "Alpha^A" in str(index.to_dict(include_identity=True))


def test_index_parallel_equals_serial(tree, monkeypatch):
    from netpet.dicom import index as index_module

    monkeypatch.setattr(index_module, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(index_module, "_CHUNK", 7)
    parallel = index_tree(str(tree), jobs=2).to_dict(include_files=True)
    serial = index_tree(str(tree), jobs=1).to_dict(include_files=True)
    assert parallel == serial


def test_index_with_dicomdir(tmp_path):
    from pydicom.fileset import FileSet

    case = dro.Case(seed="dd", shape=(5, 8, 8))
    pet, _ = dro.build(case)
    staging = writer.save_datasets(pet, str(tmp_path / "staging"))
    fileset = FileSet()
    for path in staging:
        fileset.add(path)
    fileset.write(str(tmp_path / "media"))
    assert (tmp_path / "media" / "DICOMDIR").exists()
    index = index_tree(str(tmp_path / "media"), jobs=1)
    assert len(index.pet_series()) == 1 and index.pet_series()[0].instance_count == 5
    assert index.skipped == {"not a DICOM image (or a DICOMDIR)": 1}


def test_one_series_uid_under_two_patients_is_listed_twice_and_said(tmp_path):
    """A SeriesInstanceUID that appears under two PatientIDs (a broken anonymisation): the index used
    to stop with StopIteration; both are listed, each with a warning naming the other."""
    case = dro.Case(seed="twice", shape=(4, 6, 6))
    first, _ = dro.build(case)
    second = copy.deepcopy(first)
    for number, ds in enumerate(second):
        ds.PatientID = "OTHER"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{9000 + number}"
    writer.save_datasets(first, str(tmp_path / "a"))
    writer.save_datasets(second, str(tmp_path / "b"))
    index = index_tree(str(tmp_path), jobs=1)
    pets = index.pet_series()
    assert len(pets) == 2 and {p.patient_id for p in pets} == {first[0].PatientID, "OTHER"}
    assert all(p.instance_count == 4 and any("also appears under patient" in w for w in p.warnings) for p in pets)
    # choosing: nothing chosen is ambiguous (both patients and the way to choose named); a patient chooses
    uid = pets[0].series_uid
    for choose in (lambda: index.choose_pet(), lambda: index.series(uid),
                   lambda: index.choose_pet(uid, patient_hint="a dicom_patient_id column")):
        with pytest.raises(AmbiguousInputError) as caught:
            choose()
        message = str(caught.value)
        assert "appears under 2 patients" in message and first[0].PatientID in message and "OTHER" in message
    assert "a dicom_patient_id column" in message and "--patient" not in message
    assert index.choose_pet(patient_id="OTHER").patient_id == "OTHER"
    assert index.series(uid, "OTHER").folders == [str(tmp_path / "b")]
    assert index.for_patient("OTHER").patient_ids() == ["OTHER"]
    with pytest.raises(DicomInputError, match="No patient with PatientID NOPE .* there are: .*OTHER"):
        index.for_patient("NOPE")
    # a folder holding one copy is unambiguous
    assert index_tree(str(tmp_path / "a"), jobs=1).choose_pet().patient_id == first[0].PatientID


def test_several_pet_series_are_listed_with_their_patients(tmp_path):
    for seed in ("one", "two"):
        datasets, _ = dro.build(dro.Case(seed=seed, shape=(4, 6, 6)))
        writer.save_datasets(datasets, str(tmp_path / seed))
    with pytest.raises(AmbiguousInputError) as caught:
        index_tree(str(tmp_path), jobs=1).choose_pet()
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("choose one with --series UID:") and len(lines) == 3
    assert all("patient " in line for line in lines[1:])


def test_describe_escapes_control_characters(tmp_path):
    """A SeriesDescription or PatientID with terminal escape sequences or a newline is shown escaped."""
    datasets, _ = dro.build(dro.Case(seed="esc", shape=(4, 6, 6)))
    for ds in datasets:
        ds.SeriesDescription = "PET \x1b[2J\nsecond line"
        ds.PatientID = "P\x9b1"
    writer.save_datasets(datasets, str(tmp_path))
    text = describe(index_tree(str(tmp_path), jobs=1))
    assert "\\x1b[2J\\nsecond line" in text and "P\\x9b1" in text
    assert not any(ch in text for ch in "\x1b\x9b")
    # bidirectional overrides too (a DICOM value decoded from UTF-8 may hold them)
    assert printable("abc\u202edef\ttab") == "abc\\u202edef\\ttab"
    assert printable_text("line 1\n\tline 2\r\x07") == "line 1\n\tline 2\\r\\x07"


def test_index_missing_path():
    with pytest.raises(DicomInputError, match="does not exist"):
        index_tree("/no/such/folder")


def test_index_progress_and_cancel(tree):
    seen = []
    index_tree(str(tree), jobs=1, progress=lambda f, m: seen.append(f) or False)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    from netpet.progress import Cancelled

    with pytest.raises(Cancelled):
        index_tree(str(tree), jobs=1, progress=lambda f, m: f > 0.5)


# -- tracer identification ------------------------------------------------------------------------

@pytest.mark.parametrize("text,label,key", [
    ("Ga68-DOTATATE", "68Ga-DOTATATE", "dotatate"),
    ("68Ga-DOTA-TATE", "68Ga-DOTATATE", "dotatate"),
    ("Gallium Ga 68 Dotatate (NETSPOT)", "68Ga-DOTATATE", "dotatate"),
    ("Ga-68 DOTATOC", "68Ga-DOTATOC", "dotatate"),
    ("68Ga-DOTANOC", "68Ga-DOTANOC", "dotatate"),
    ("FDG -- fluorodeoxyglucose", "18F-FDG", "fdg"),
    ("Fludeoxyglucose F^18^", "18F-FDG", "fdg"),
    ("18F-FDG", "18F-FDG", "fdg"),
    ("Ga68-PSMA-11", "68Ga-PSMA", "other"),
    ("F18-Fluoride", "18F-NaF", "other"),
])
def test_tracer_from_text(text, label, key):
    tracer = identify(Radiopharmaceutical(text=text))
    assert (tracer.label, tracer.key) == (label, key)
    assert not tracer.inferred


def test_tracer_from_codes():
    rp = Radiopharmaceutical(
        agent_code=CodedValue("SCT", "724025002", "Dotatate Ga^68^"),
        nuclide_code=CodedValue("SRT", "C-131A3", "^68^Gallium"),
    )
    tracer = identify(rp)
    assert tracer.label == "68Ga-DOTATATE" and len(tracer.evidence) == 2
    fdg = identify(Radiopharmaceutical(agent_code=CodedValue("SRT", "C-B1031", "FDG")))
    assert fdg.label == "18F-FDG"


@pytest.mark.parametrize("half_life,label,key", [(4057.74, "68Ga-(agent not stated)", "dotatate"),
                                                 (6588.0, "18F-(agent not stated)", "fdg"),
                                                 (1223.0, "11C-(agent not stated)", "other"),
                                                 (None, "unknown", "unknown")])
def test_tracer_from_half_life_alone(half_life, label, key):
    tracer = identify(Radiopharmaceutical(half_life_s=half_life))
    assert (tracer.label, tracer.key) == (label, key)
    assert tracer.inferred == (key in ("dotatate", "fdg"))
