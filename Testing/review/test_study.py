"""netpet.review.study: the study folder's files, the path boundary, a session's rows and its partner session."""

import os
import re

import pytest

from netpet.quant.table import StudyTable
from netpet.review.study import ReviewError, StudyFolder, inside, open_study, partner_sessions, session_lesions

KEY = {"patient_id": "NETPET-001", "session_id": "S1-DOTATATE-PETCT", "modality": "PET/CT", "tracer": "dotatate"}


def _row(reader, lesion_id, **values):
    # values as netpet quantify writes them for the demo's first liver metastasis (study-table.csv of netpet demo)
    row = {**KEY, "reader": reader, "lesion_id": lesion_id, "region": "liver", "suv_max": 30.098944,
           "suv_peak": 23.910368, "tl_ratio": 4.435051, "krenning": 4, "call": "positive", "centroid_r": 78.971429,
           "centroid_a": 13.6, "centroid_s": -655.528571, "mtv_ml": 3.36,
           "segmentation_file": f"segmentations/NETPET-001_S1-DOTATATE-PETCT_{reader}.seg.nrrd", "suv_type": "bw"}
    row.update(values)
    return row


@pytest.fixture(params=["study-table.csv", "study.sqlite"])
def study(tmp_path, request):
    root = tmp_path / "study"
    (root / "dicom").mkdir(parents=True)
    table = root / request.param
    rows = [
        _row("reader1", "C01", reader_call="positive", confidence=5, flags="", warnings=""),
        _row("reader1", "C02", region="=HYPERLINK(1)", suv_max=5.2, tl_ratio=0.77, krenning=1, call="negative",
             centroid_r=-12.5, centroid_a="", centroid_s=-700.25, lesion_type="metastasis",
             flags="near liver", warnings="SUVmax below the liver"),
        _row("reader2", "L01", reader_call="equivocal", confidence=3),
        _row("reader1", "C03", suv_max=2.0, krenning=0, call="negative"),
        {**KEY, "reader": "reader1", "lesion_id": "", "call": ""},        # another session read without findings
        {**KEY, "session_id": "S2-DOTATATE-PETMR", "modality": "PET/MR", "reader": "reader1", "lesion_id": "M01",
         "call": "positive", "suv_max": 20.0},
    ]
    store = StudyTable(str(table))
    store.upsert(rows)
    store.retract({**KEY, "reader": "reader1", "lesion_id": "C03"}, reason="physiological bowel")
    return root, table


def test_session_lesions_reads_the_rows_of_one_session(study):
    root, table = study
    lesions = session_lesions(str(table), "NETPET-001", "S1-DOTATATE-PETCT")
    assert [(l["reader"], l["lesion_id"]) for l in lesions] == [("reader1", "C01"), ("reader1", "C02"),
                                                              ("reader2", "L01"), ("reader1", "C03")]
    c01, c02, l01, c03 = lesions
    assert c01["suv_max"] == pytest.approx(30.098944) and isinstance(c01["suv_max"], float)
    assert c01["tl_ratio"] == pytest.approx(4.435051)
    assert (c01["centroid_r"], c01["centroid_a"], c01["centroid_s"]) == pytest.approx((78.971429, 13.6, -655.528571))
    assert c01["krenning"] == 4 and isinstance(c01["krenning"], int)
    assert c01["confidence"] == 5 and c01["reader_call"] == "positive" and c01["call"] == "positive"
    assert c01["finding_status"] == "active" and not c01["retracted"]
    assert c01["segmentation_file"] == "segmentations/NETPET-001_S1-DOTATATE-PETCT_reader1.seg.nrrd"
    assert c02["region"] == "=HYPERLINK(1)"  # stored with the formula escape, read back as written
    assert c02["centroid_a"] is None and c02["confidence"] is None and c02["reader_call"] == ""
    assert (c02["flags"], c02["warnings"], c02["lesion_type"]) == ("near liver", "SUVmax below the liver", "metastasis")
    assert l01["reader_call"] == "equivocal" and l01["confidence"] == 3
    assert c03["retracted"] and c03["finding_status"] == "retracted"
    assert c03["retraction_reason"] == "physiological bowel"
    assert [l["row"] for l in lesions] == sorted(l["row"] for l in lesions)


def test_session_lesions_filters(study):
    root, table = study
    mine = session_lesions(str(table), "NETPET-001", "S1-DOTATATE-PETCT", reader="reader1", include_retracted=False)
    assert [l["lesion_id"] for l in mine] == ["C01", "C02"]
    assert [l["lesion_id"] for l in session_lesions(str(table), "NETPET-001", "S2-DOTATATE-PETMR")] == ["M01"]
    assert session_lesions(str(table), "NETPET-002", "S1-DOTATATE-PETCT") == []
    assert session_lesions(str(root / "absent.csv"), "NETPET-001", "S1-DOTATATE-PETCT") == []


def test_session_lesions_refuses_text_in_a_number(tmp_path):
    table = tmp_path / "study-table.csv"
    StudyTable(str(table)).upsert([_row("reader1", "C01", suv_max="high")])
    with pytest.raises(ReviewError, match=r"row 2: column suv_max is 'high', not a number"):
        session_lesions(str(table), "NETPET-001", "S1-DOTATATE-PETCT")
    StudyTable(str(table)).upsert([_row("reader1", "C01", krenning="3.5")])
    with pytest.raises(ReviewError, match=r"column krenning is '3.5', not an integer"):
        session_lesions(str(table), "NETPET-001", "S1-DOTATATE-PETCT")


def test_open_study_defaults(tmp_path):
    root = tmp_path / "study"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "nested" / "deeper" / "reference_standard.csv").write_text("patient_id,lesion_id,region,truth,standard\n")
    folder = open_study(str(root))
    real = os.path.realpath(root)
    assert folder == StudyFolder(root=real, table=os.path.join(real, "study-table.csv"),
                                 reference=os.path.join(real, "nested", "deeper", "reference_standard.csv"),
                                 dicom=real, segmentations=os.path.join(real, "segmentations"))
    # the one table under the root is found, and the segmentations go beside it
    (root / "nested" / "study-table.csv").write_text("patient_id,session_id,modality,tracer,reader,lesion_id\n")
    folder = open_study(str(root))
    assert folder.table == os.path.join(real, "nested", "study-table.csv")
    assert folder.segmentations == os.path.join(real, "nested", "segmentations")
    # two: refused unless one is named; a table at the root wins
    (root / "nested" / "deeper" / "study-table.csv").write_text("x\n")
    with pytest.raises(ReviewError, match="holds 2 study tables .*choose one with --table"):
        open_study(str(root))
    assert open_study(str(root), table="nested/deeper/study-table.csv").table == \
        os.path.join(real, "nested", "deeper", "study-table.csv")
    (root / "study-table.csv").write_text("x\n")
    assert open_study(str(root)).table == os.path.join(real, "study-table.csv")
    (root / "reference_standard.csv").write_text("x\n")
    assert open_study(str(root)).reference == os.path.join(real, "reference_standard.csv")


def test_open_study_refusals(tmp_path, monkeypatch):
    root = tmp_path / "study"
    root.mkdir()
    with pytest.raises(ReviewError, match="does not exist; give the folder"):
        open_study(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("")
    with pytest.raises(ReviewError, match="is not a folder"):
        open_study(str(tmp_path / "file"))
    with pytest.raises(ReviewError, match="is outside the study folder"):
        open_study(str(root), table=str(tmp_path / "elsewhere.csv"))
    with pytest.raises(ReviewError, match="contains '..'"):
        open_study(str(root), table="../study/study-table.csv")
    with pytest.raises(ReviewError, match="not a .csv or .sqlite file"):
        open_study(str(root), table="notes.txt")
    with pytest.raises(ReviewError, match="reference standard ref.csv does not exist"):
        open_study(str(root), reference="ref.csv")
    # a relative --table from the current folder that lands inside the study is taken as it is
    monkeypatch.chdir(tmp_path)
    assert open_study("study", table="study/t.sqlite").table == os.path.join(os.path.realpath(root), "t.sqlite")


def test_inside_refuses_dotdot_and_symlinks_that_leave(tmp_path):
    root = tmp_path / "study"
    (root / "segmentations").mkdir(parents=True)
    outside = tmp_path / "secret.csv"
    outside.write_text("x\n")
    real = os.path.realpath(root)
    assert inside(str(root), "segmentations/a.seg.nrrd") == os.path.join(real, "segmentations", "a.seg.nrrd")
    assert inside(str(root), str(root / "new.csv")) == os.path.join(real, "new.csv")  # need not exist
    assert inside(str(root), str(root)) == real
    for bad in ("../secret.csv", "segmentations/../../secret.csv", "segmentations/../a.csv",
                str(root / ".." / "secret.csv"), "segmentations\\..\\..\\secret.csv"):
        with pytest.raises(ReviewError, match="contains '..'"):
            inside(str(root), bad)
    with pytest.raises(ReviewError, match="is outside the study folder"):
        inside(str(root), str(outside))
    with pytest.raises(ReviewError, match="is outside the study folder"):
        inside(str(root), "/etc/passwd")
    # a link inside the root that points out of it: refused, whether to a file or through a folder
    os.symlink(outside, root / "link.csv")
    os.symlink(tmp_path, root / "up")
    for bad in ("link.csv", "up/secret.csv", str(root / "up" / "secret.csv")):
        with pytest.raises(ReviewError, match=r"is outside the study folder .*resolves to .*secret.csv"):
            inside(str(root), bad)
    # a link that stays inside is followed
    os.symlink(root / "segmentations", root / "segs")
    assert inside(str(root), "segs/x.seg.nrrd") == os.path.join(real, "segmentations", "x.seg.nrrd")
    # a study folder reached through a link: paths are checked against its real path
    os.symlink(root, tmp_path / "alias")
    assert inside(str(tmp_path / "alias"), "segs") == os.path.join(real, "segmentations")
    with pytest.raises(ReviewError, match="NUL"):
        inside(str(root), "a\x00b")


def test_inside_refuses_a_sibling_that_shares_the_prefix_and_other_letter_case(tmp_path):
    """/x/study2 starts with the characters of /x/study but is not inside it; on a case-sensitive file system
    /x/STUDY is another folder (on a case-insensitive one the check refuses it too: safe, never an escape)."""
    root = tmp_path / "study"
    root.mkdir()
    (tmp_path / "study2").mkdir()
    (tmp_path / "study2" / "t.csv").write_text("x\n")
    for bad in (str(tmp_path / "study2" / "t.csv"), str(tmp_path / "study2"), str(tmp_path / "STUDY" / "t.csv"),
                str(tmp_path)):
        with pytest.raises(ReviewError, match="is outside the study folder"):
            inside(str(root), bad)
    os.symlink(tmp_path / "study2", root / "s2")  # a link to the sibling: its real path is outside
    with pytest.raises(ReviewError, match="resolves to .*study2"):
        inside(str(root), "s2/t.csv")
    assert inside(str(root), str(root) + os.sep) == os.path.realpath(root)  # the root with a trailing separator


@pytest.mark.parametrize("content, what", [(b"\x00\x01\xff not a table", "Cannot read the study table .*: 'utf-8' "
                                           "codec can't decode byte 0xff .*; fix or move the file."),
                                          (b"a,b\n1,2,3\n", "is not a NETPET study table: it lacks the column.*give "
                                           "another table path")])
def test_session_lesions_of_a_garbled_table_is_one_sentence(tmp_path, content, what):
    from netpet.errors import NetpetError

    table = tmp_path / "study-table.csv"
    table.write_bytes(content)
    with pytest.raises(NetpetError) as raised:
        session_lesions(str(table), "NETPET-001", "S1-DOTATATE-PETCT")
    message = str(raised.value)
    assert str(table) in message and re.search(what, message)
    assert "\n" not in message
    sqlite = tmp_path / "study.sqlite"
    sqlite.write_bytes(b"not a database " * 20)
    with pytest.raises(NetpetError, match=r"Cannot read the study table .*study.sqlite: file is not a database"):
        session_lesions(str(sqlite), "NETPET-001", "S1-DOTATATE-PETCT")


def test_open_study_refuses_a_found_table_that_links_out(tmp_path):
    root = tmp_path / "study"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "study-table.csv").write_text("x\n")
    os.symlink(tmp_path / "study-table.csv", root / "sub" / "study-table.csv")
    with pytest.raises(ReviewError, match="outside the study folder"):
        open_study(str(root))


def _session(patient, hybrid, tracer, uid, session="2025-01-07"):
    # the record shape of NETPETReaderLogic.sessions(index)
    return {"patient_id": patient, "session": f"{session} {hybrid}", "study_uid": "2.25.1" + uid,
            "study_description": "", "pet_series_uid": uid, "pet_description": "PET WB", "hybrid": hybrid,
            "tracer": tracer, "partner_series_uid": uid + ".9", "partner_modality": hybrid[-2:], "files": 100}


def test_partner_sessions():
    ct = _session("NETPET-001", "PET/CT", "68Ga-DOTATATE", "1.1")
    mr = _session("NETPET-001", "PET/MR", "68Ga-DOTATATE", "1.2")
    fdg = _session("NETPET-001", "PET/CT", "18F-FDG", "1.3")
    other = _session("NETPET-002", "PET/MR", "68Ga-DOTATATE", "2.2")
    unknown = _session("NETPET-001", "PET/CT", "unknown", "1.4")
    mr_unknown = _session("NETPET-001", "PET/MR", "unknown", "1.5")
    only = _session("NETPET-001", "PET only", "68Ga-DOTATATE", "1.6")
    sessions = [ct, mr, fdg, other, unknown, mr_unknown, only]
    assert partner_sessions(sessions, ct) == [mr]
    assert partner_sessions(sessions, "1.2") == [ct]  # by PET series UID
    assert partner_sessions(sessions, fdg) == []      # no FDG PET/MR
    assert partner_sessions(sessions, unknown) == []  # an unknown tracer is no "same tracer"
    assert partner_sessions(sessions, only) == []
    # study-table rows (modality, tracer key, series_uid) pair the same way
    rows = [{"patient_id": "P", "session_id": "S1", "modality": "PET/CT", "tracer": "dotatate", "series_uid": "a"},
            {"patient_id": "P", "session_id": "S2", "modality": "PET/MR", "tracer": "dotatate", "series_uid": "b"}]
    assert partner_sessions(rows, rows[1]) == [rows[0]]
    with pytest.raises(ReviewError, match="No session has the PET series 9.9"):
        partner_sessions(sessions, "9.9")


def test_a_default_table_or_reference_linked_out_of_the_folder_is_refused(tmp_path):
    """The study-table.csv or reference_standard.csv found at the top of the folder is a link to a file
    elsewhere: refused as a given path would be (one sentence naming it), not followed."""
    root = tmp_path / "study"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("study-table.csv", "reference_standard.csv"):
        (elsewhere / name).write_text("patient_id\n")
        (root / name).symlink_to(elsewhere / name)
        with pytest.raises(ReviewError, match="outside the study folder"):
            open_study(str(root))
        (root / name).unlink()
        (root / name).write_text("patient_id\n")
    assert open_study(str(root)).reference == str(root / "reference_standard.csv")
