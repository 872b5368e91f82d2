"""Data safety of the study table and the segmentation exports (issue 11, items 6 and 7).

Each rule is tested by its exact outcome: links, read-only files and modes; values that must
round-trip (CR, LF, long cells) or be refused; spreadsheet formula prefixes (OWASP CSV injection);
lesion ids (DICOM LO: 64 characters, no control characters); many processes writing one table,
one .seg.nrrd or one DICOM SEG at once; a crash or a damaged file never loses data; the SQLite
upsert finds its row through the key's index (its cost does not grow with the table: timed in
benchmarks/bench_table.py, as tests do not time); ``netpet stats`` refuses inf and NaN scores.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import sqlite3
import stat

import numpy as np
import pytest

from netpet.quant import table as table_module
from netpet.quant.table import KEY, StudyTable, TableError, escape_cell, unescape_cell


from Testing.core.test_table import path, row  # noqa: E402,F401  (the same row builder and per-backend path fixture)


def _context():
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


# -- links, permissions, modes ------------------------------------------------------------------------

def test_a_table_reached_through_a_symlink_stays_a_link(path, tmp_path):
    real = tmp_path / "data" / os.path.basename(path)
    real.parent.mkdir()
    StudyTable(str(real)).upsert([row()])
    link = tmp_path / ("link" + os.path.splitext(path)[1])
    link.symlink_to(real)
    StudyTable(str(link)).upsert([row(lesion="L02")])
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert sorted(r["lesion_id"] for r in StudyTable(str(real)).read()) == ["L01", "L02"]
    if path.endswith(".csv"):  # the lock sits beside the target, shared by every name of the table
        assert (tmp_path / "data" / "study.csv.lock").exists() and not (tmp_path / "link.csv.lock").exists()


def test_a_read_only_table_is_refused_untouched(path):
    table = StudyTable(path)
    table.upsert([row()])
    os.chmod(path, 0o444)
    before = open(path, "rb").read()
    with pytest.raises(TableError) as error:
        table.upsert([row(lesion="L02")])
    assert str(error.value) == (f"The study table {path} is read-only; make it writable (chmod u+w) or give another "
                                "path, it was left untouched.")
    with pytest.raises(TableError, match="is read-only"):
        table.check()
    assert open(path, "rb").read() == before and stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert [r["lesion_id"] for r in table.read()] == ["L01"]  # reading a read-only table is fine


def test_the_file_mode_is_kept_on_rewrite(tmp_path):
    path = tmp_path / "study.csv"
    StudyTable(str(path)).upsert([row()])
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # a new table: the process's default, not 0600
    for mode in (0o640, 0o664, 0o600):
        os.chmod(path, mode)
        StudyTable(str(path)).upsert([row(suv_max=float(mode))])
        assert stat.S_IMODE(os.stat(path).st_mode) == mode


def test_a_hard_linked_csv_table_is_refused(tmp_path):
    path = tmp_path / "study.csv"
    StudyTable(str(path)).upsert([row()])
    os.link(path, tmp_path / "other-name.csv")
    with pytest.raises(TableError) as error:
        StudyTable(str(path)).upsert([row(lesion="L02")])
    assert str(error.value) == (f"The study table {path} has 2 hard links, which a safe rewrite (a new file renamed "
                                "over it) would detach from each other; keep one name (a symbolic link is fine), it "
                                "was left untouched.")


# -- values ------------------------------------------------------------------------------------------

VALUES = {
    "note_cr": "before\rafter", "note_lf": "line 1\nline 2", "note_crlf": "a\r\nb", "note_quote": 'say "hi", twice',
    "note_long": "x" * 200_000, "note_unicode": "Zürich – 病変", "note_spaces": "  padded  ", "note_tab": "a\tb",
}


def test_every_value_round_trips(path):
    table = StudyTable(path)
    table.upsert([row(**VALUES), row(lesion="L02")])
    table.upsert([row(lesion="L02", suv_max=1.0)])  # a rewrite keeps them too
    got = {r["lesion_id"]: r for r in table.read()}["L01"]
    assert {k: got[k] for k in VALUES} == VALUES
    assert len(table.read()) == 2


def test_the_csv_table_is_standard_csv(tmp_path):
    """Any CSV reader (pandas here) reads what NETPET writes: CRLF rows, quoted CR and LF."""
    import pandas as pd

    path = tmp_path / "study.csv"
    StudyTable(str(path)).upsert([row(note="a\rb\nc"), row(lesion="L02", note="plain")])
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame["note"]) == ["a\rb\nc", "plain"] and list(frame["lesion_id"]) == ["L01", "L02"]


def test_long_cells_written_elsewhere_are_read(tmp_path):
    path = tmp_path / "study.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*KEY, "note"])
        writer.writerow(["P1", "S1", "PET/CT", "dotatate", "R1", "L01", "y" * 300_000])
    assert StudyTable(str(path)).read()[0]["note"] == "y" * 300_000
    assert csv.field_size_limit() == 131072  # the reader's limit is lifted for its own read only


@pytest.mark.parametrize("value, message", [
    ("a\x00b", "Row 1 to write: column note holds a NUL character, which a CSV or SQLite table cannot keep; remove it."),
    ("a\udc80b", "Row 1 to write: column note holds text that is not valid Unicode (surrogates not allowed at "
                 "character 1); fix the value."),
])
def test_values_a_table_cannot_keep_are_refused(path, value, message):
    table = StudyTable(path)
    table.upsert([row()])
    before = open(path, "rb").read()
    with pytest.raises(TableError) as error:
        table.upsert([row(lesion="L02", note=value)])
    assert str(error.value) == message
    assert open(path, "rb").read() == before


FORMULAS = ["=1+1", "=HYPERLINK(\"http://x\")", "+A1", "-2+3", "@SUM(A1:A2)", "\tx", "\rx", "-", "-inf", "'=1",
            "''+x", "'plain", "''", "'"]
NUMBERS = ["-3.5", "-1e-3", "+2", "-0", "12", ".5", "-.5", "1E+5"]


def test_formula_prefixes_are_neutralised_and_round_trip(tmp_path):
    path = tmp_path / "study.csv"
    values = {f"c{i}": v for i, v in enumerate(FORMULAS + NUMBERS)}
    StudyTable(str(path)).upsert([row(**values, centroid_r=-55.2)])
    with open(path, newline="", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))[0]
    for name, value in values.items():
        cell = raw[name]
        if value in NUMBERS:
            assert cell == value  # a negative number stays a number
        else:
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")  # no cell opens as a formula
    assert raw["c0"] == "'=1+1" and raw["c9"] == "''=1" and raw["c11"] == "'plain" and raw["centroid_r"] == "-55.2"
    got = StudyTable(str(path)).read()[0]
    assert {k: got[k] for k in values} == values
    for value in FORMULAS + NUMBERS + ["", "x", "'", "a'b"]:
        assert unescape_cell(escape_cell(value)) == value


def test_formula_column_names_and_keys_round_trip(tmp_path):
    path = tmp_path / "study.csv"
    table = StudyTable(str(path))
    table.upsert([row(patient="=P1", lesion="-L1", **{"=cmd": "x", "@note": "y"})])
    table.upsert([row(patient="=P1", lesion="-L1", suv_max=3.0)])  # the same key, escaped on disk: an update
    rows = table.read()
    assert len(rows) == 1 and rows[0]["patient_id"] == "=P1" and rows[0]["lesion_id"] == "-L1"
    assert rows[0]["=cmd"] == "x" and rows[0]["@note"] == "y" and rows[0]["suv_max"] == "3.0"
    header = open(path, encoding="utf-8").readline()
    assert "'=cmd" in header and "'@note" in header


def test_a_bare_formula_written_by_hand_is_neutralised_on_the_next_write(tmp_path):
    path = tmp_path / "study.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*KEY, "note"])
        writer.writerow(["P1", "S1", "PET/CT", "dotatate", "R1", "L01", "=2*3"])
    assert StudyTable(str(path)).read()[0]["note"] == "=2*3"
    StudyTable(str(path)).upsert([row(lesion="L02")])
    with open(path, newline="") as handle:
        assert next(r for r in csv.DictReader(handle) if r["lesion_id"] == "L01")["note"] == "'=2*3"
    assert next(r for r in StudyTable(str(path)).read() if r["lesion_id"] == "L01")["note"] == "=2*3"


@pytest.mark.parametrize("lesion, problem", [
    ("L" * 65, "is 65 characters long, over the 64 of DICOM SEG's SegmentLabel (VR LO)"),
    ("L1\nL2", "holds the control character U+000A"),
    ("L1\r", "holds the control character U+000D"),
    ("L\t1", "holds the control character U+0009"),
    ("L\x7f", "holds the control character U+007F"),
    ("L\u2028", "holds the control character U+2028"),
    ("L\\1", "holds a backslash, the value separator of DICOM"),
    (" L1", "has leading or trailing spaces, which DICOM drops"),
])
def test_lesion_ids_are_validated(path, lesion, problem):
    table = StudyTable(path)
    table.upsert([row()])
    before = open(path, "rb").read()
    with pytest.raises(TableError) as error:
        table.upsert([row(lesion="L02"), row(lesion=lesion)])
    assert str(error.value) == (f"Row 2 to write: The lesion id {lesion!r} {problem}; give ids of at most 64 characters "
                                "without control characters, backslashes or surrounding spaces.")
    assert open(path, "rb").read() == before


def test_a_lesion_id_of_64_characters_and_numpy_values_are_kept(path):
    table = StudyTable(path)
    table.upsert([row(lesion="L" * 64, suv_max=np.float32(2.5), tb_ratio=np.float32("nan"), voxels=np.int64(7))])
    got = table.read()[0]
    assert got["lesion_id"] == "L" * 64 and got["suv_max"] == "2.5" and got["tb_ratio"] == "" and got["voxels"] == "7"


# -- concurrency and crashes ----------------------------------------------------------------------------

def _table_writer(path, worker, barrier):
    barrier.wait()
    table = StudyTable(path)
    for i in range(20):
        table.upsert([row(patient=f"P{worker}", lesion=f"L{i:02d}", suv_max=float(i), note="a,b\r\nc")])


@pytest.mark.parametrize("name", ["study.csv", "study.sqlite"])
def test_eight_processes_writing_at_once_lose_nothing(tmp_path, name):
    real = tmp_path / name
    link = tmp_path / ("link-" + name)
    link.symlink_to(real)
    context = _context()
    barrier = context.Barrier(8)
    workers = [context.Process(target=_table_writer, args=(str(link if w % 2 else real), w, barrier))
               for w in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * 8
    rows = StudyTable(str(real)).read()
    assert sorted((r["patient_id"], r["lesion_id"]) for r in rows) == sorted(
        (f"P{w}", f"L{i:02d}") for w in range(8) for i in range(20))
    assert {r["note"] for r in rows} == {"a,b\r\nc"} and link.is_symlink()
    assert [f for f in os.listdir(tmp_path) if f.startswith(".netpet-")] == []


def test_a_crash_while_writing_leaves_the_old_table_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "study.csv"
    table = StudyTable(str(path))
    table.upsert([row(), row(lesion="L02")])
    before = path.read_bytes()
    trail = (tmp_path / "study.audit.csv").read_bytes()

    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(table_module.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        table.upsert([row(lesion="L03")])
    assert path.read_bytes() == before
    assert (tmp_path / "study.audit.csv").read_bytes() == trail  # the trail's entries of the failed write taken back
    assert sorted(os.listdir(tmp_path)) == ["study.audit.csv", "study.csv", "study.csv.lock"]


def test_sqlite_is_in_wal_mode_and_finds_a_row_through_the_key_index(tmp_path, monkeypatch, sqlite_statements):
    """The upsert's cost does not grow with the table: no statement reads the whole table, and the
    existence check and the conflict target use the primary key's index (timed in bench_table.py)."""
    path = str(tmp_path / "study.sqlite")
    StudyTable(path).upsert([row(lesion=f"L{i:03d}") for i in range(200)])
    statements = sqlite_statements
    statements.clear()  # the table's making is not counted
    assert StudyTable(path).upsert([row(lesion="L100", suv_max=1.0), row(lesion="N1")]) == (1, 1)
    monkeypatch.undo()
    assert not [s for s in statements if s.lstrip().upper().startswith("SELECT *")]
    lookups = [s for s in statements if s.startswith("SELECT 1 FROM lesions WHERE")]
    assert len(lookups) == 2
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = db.execute("EXPLAIN QUERY PLAN SELECT 1 FROM lesions WHERE " + " AND ".join(f"{k} = ?" for k in KEY),
                          ["P1", "S1", "PET/CT", "dotatate", "R1", "L100"]).fetchall()
    assert "USING" in plan[0][-1] and "INDEX" in plan[0][-1] and "SCAN" not in plan[0][-1]
    assert len(StudyTable(path).read()) == 201


def test_check_reads_only_the_header(tmp_path, monkeypatch):
    path = tmp_path / "study.csv"
    StudyTable(str(path)).upsert([row(lesion=f"L{i}") for i in range(50)])
    StudyTable(str(path)).check()
    (tmp_path / "other.csv").write_text("name,score\nalice,3\n")
    with pytest.raises(TableError, match="is not a NETPET study table"):
        StudyTable(str(tmp_path / "other.csv")).check()


# -- segmentation exports ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pet(tmp_path_factory):
    from netpet.dicom import dro, writer
    from netpet.quant.pipeline import open_session

    folder = tmp_path_factory.mktemp("pet")
    datasets, _ = dro.build(dro.Case(seed="safety", shape=(8, 12, 12)))
    writer.save_datasets(datasets, str(folder / "PET"), prefix="PT")
    return open_session(str(folder / "PET"), "P1", "S1")


def _lesion(volume, k, j=3):
    from netpet.quant.segment import lesion_from_mask

    mask = np.zeros(volume.shape, bool)
    mask[k, j:j + 2, 3:5] = True
    return lesion_from_mask(volume, mask)


def _seg_writer(path, volume, worker, barrier):
    from netpet.quant.export import write_seg_nrrd

    barrier.wait()
    for i in range(6):
        write_seg_nrrd(path, volume, {f"W{worker}L{i}": _lesion(volume, i % 8, worker)}, {f"W{worker}L{i}": "positive"})


def test_concurrent_seg_nrrd_writes_keep_every_segment(pet, tmp_path):
    import slicerio

    path = str(tmp_path / "segmentations" / "P1_S1_R1.seg.nrrd")
    context = _context()
    barrier = context.Barrier(6)
    workers = [context.Process(target=_seg_writer, args=(path, pet.volume, w, barrier)) for w in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * 6
    segmentation = slicerio.read_segmentation(path)
    assert sorted(s["id"] for s in segmentation["segments"]) == sorted(f"W{w}L{i}" for w in range(6) for i in range(6))
    assert sorted(os.listdir(tmp_path / "segmentations")) == ["P1_S1_R1.seg.nrrd", "P1_S1_R1.seg.nrrd.lock"]


def test_seg_nrrd_merge_crash_damage_link_and_ids(pet, tmp_path, monkeypatch):
    import slicerio

    from netpet.quant.export import ExportError, write_seg_nrrd

    real = tmp_path / "real.seg.nrrd"
    link = tmp_path / "link.seg.nrrd"
    link.symlink_to(real)
    volume = pet.volume
    assert write_seg_nrrd(str(link), volume, {"L1": _lesion(volume, 1)}, {"L1": "positive"}) == ["L1"]
    assert write_seg_nrrd(str(link), volume, {"L2": _lesion(volume, 2)}, {}) == ["L1", "L2"]
    assert link.is_symlink()
    # a crash while writing leaves the previous file whole
    before = real.read_bytes()

    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(table_module.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_seg_nrrd(str(real), volume, {"L3": _lesion(volume, 3)}, {})
    monkeypatch.undo()
    assert real.read_bytes() == before and not [f for f in os.listdir(tmp_path) if f.startswith(".netpet-")]
    # an invalid id is refused before anything is written
    with pytest.raises(ExportError, match=r"The lesion id 'L1\\nL2' holds the control character U\+000A"):
        write_seg_nrrd(str(real), volume, {"L1\nL2": _lesion(volume, 3)}, {})
    # a non-ASCII id: the .seg.nrrd header cannot hold it (pynrrd drops it on reading), refused untouched
    with pytest.raises(ExportError, match="lesion id 'Lé' is not ASCII"):
        write_seg_nrrd(str(real), volume, {"Lé": _lesion(volume, 3)}, {})
    assert real.read_bytes() == before
    # a damaged file (half written by an older version) is refused, untouched, not overwritten
    damaged = tmp_path / "damaged.seg.nrrd"
    damaged.write_bytes(before[: len(before) // 2])
    with pytest.raises(ExportError) as error:
        write_seg_nrrd(str(damaged), volume, {"L3": _lesion(volume, 3)}, {})
    assert str(error.value).startswith(f"The segmentation {damaged} exists but cannot be read (")
    assert str(error.value).endswith("; move it away (its segments would be lost by writing over it) and run again.")
    assert damaged.read_bytes() == before[: len(before) // 2]
    # segments on another grid are not dropped in silence
    from netpet.quant.volume import SUVVolume

    other = SUVVolume(volume.values, volume.origin, (9.0, 9.0, 9.0), volume.direction)
    with pytest.raises(ExportError, match="holds segments on another image grid"):
        write_seg_nrrd(str(real), other, {"L3": _lesion(other, 3)}, {})
    # read-only
    os.chmod(real, 0o444)
    with pytest.raises(ExportError) as error:
        write_seg_nrrd(str(real), volume, {"L3": _lesion(volume, 3)}, {})
    assert str(error.value) == (f"The segmentation {real} is read-only; make it writable (chmod u+w) or give another "
                                "path, it was left untouched.")
    assert [s["id"] for s in slicerio.read_segmentation(str(real))["segments"]] == ["L1", "L2"]


def _dicom_writer(path, session, worker, barrier):
    from netpet.quant.export import write_dicom_seg

    barrier.wait()
    for i in range(2):
        write_dicom_seg(path, session.source_paths, session.volume, {f"W{worker}L{i}": _lesion(session.volume, i, worker)},
                        reader="R1")


def test_dicom_seg_two_method_groups_and_concurrent_writers_keep_every_segment(pet, tmp_path):
    import highdicom as hd
    import pydicom

    from netpet.quant.export import write_dicom_seg

    path = str(tmp_path / "P1_S1_R1.dcm")
    volume = pet.volume
    # two method groups of one session write the same file one after the other
    write_dicom_seg(path, pet.source_paths, volume, {"A1": _lesion(volume, 1), "A2": _lesion(volume, 2)}, reader="R1")
    first = pydicom.dcmread(path)
    write_dicom_seg(path, pet.source_paths, volume, {"B1": _lesion(volume, 5), "A2": _lesion(volume, 6)}, reader="R1")
    seg = hd.seg.segread(path)
    labels = [str(i.SegmentLabel) for i in seg.SegmentSequence]
    assert labels == ["A1", "A2", "B1"] and [int(i.SegmentNumber) for i in seg.SegmentSequence] == [1, 2, 3]
    assert seg.SeriesInstanceUID == first.SeriesInstanceUID and seg.SOPInstanceUID != first.SOPInstanceUID
    assert int(seg.InstanceNumber) == 2
    kept = next(i for i in seg.SegmentSequence if i.SegmentLabel == "A1")
    assert kept.TrackingUID == next(i for i in first.SegmentSequence if i.SegmentLabel == "A1").TrackingUID
    sources = [pydicom.dcmread(p) for p in pet.source_paths]
    pixels = seg.get_pixels_by_source_instance([str(ds.SOPInstanceUID) for ds in sources],
                                               assert_missing_frames_are_empty=True)
    expected = {"A1": 1, "A2": 6, "B1": 5}  # A2 was replaced by the second group's mask
    for number, label in enumerate(labels):
        mask = pixels[..., number] > 0  # frames in the order of the source files given
        assert mask.sum() == 4
        frame = int(np.flatnonzero(mask.any(axis=(1, 2)))[0])
        k = int(round((float(sources[frame].ImagePositionPatient[2]) - volume.origin[2]) / volume.spacing[2]))
        assert k == expected[label]
    # four processes writing at once
    context = _context()
    barrier = context.Barrier(4)
    workers = [context.Process(target=_dicom_writer, args=(path, pet, w, barrier)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(180)
    assert [w.exitcode for w in workers] == [0] * 4
    labels = sorted(str(i.SegmentLabel) for i in pydicom.dcmread(path).SegmentSequence)
    assert labels == sorted(["A1", "A2", "B1"] + [f"W{w}L{i}" for w in range(4) for i in range(2)])


def test_dicom_seg_refusals(pet, tmp_path):
    from netpet.quant.export import ExportError, write_dicom_seg

    volume = pet.volume
    path = tmp_path / "seg.dcm"
    with pytest.raises(ExportError, match="is 65 characters long, over the 64 of DICOM SEG's SegmentLabel"):
        write_dicom_seg(str(path), pet.source_paths, volume, {"L" * 65: _lesion(volume, 1)})
    with pytest.raises(ExportError) as error:
        write_dicom_seg(str(path), pet.source_paths, volume, {"病変1": _lesion(volume, 1)})
    assert str(error.value) == ("The lesion id '病変1' cannot be written in the character set of the PET (ISO_IR 100) "
                                "that its DICOM SEG inherits; use letters, digits and signs of that set.")
    assert not path.exists()
    path.write_bytes(b"not a DICOM file")
    with pytest.raises(ExportError, match=f"The DICOM SEG {path} exists but cannot be read"):
        write_dicom_seg(str(path), pet.source_paths, volume, {"L1": _lesion(volume, 1)})
    assert path.read_bytes() == b"not a DICOM file"


# -- netpet stats: inf and NaN scores ----------------------------------------------------------------------

@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "1e400", "1e308", "Infinity"])
def test_stats_refuses_infinite_and_nan_scores(tmp_path, value, capsys):
    from netpet.cli.main import main
    from netpet.stats.data import load_study
    from netpet.stats.intervals import StatsError

    reference = tmp_path / "reference.csv"
    reference.write_text("patient_id,lesion_id,region,truth,standard\nP1,L1,liver,1,x\nP1,L2,liver,0,x\n")
    table = StudyTable(str(tmp_path / "study.csv"))
    table.upsert([row(lesion="L1", suv_max=5.0), row(lesion="L2", suv_max=value)])
    message = (f"{tmp_path / 'study.csv'} line 3: column suv_max is {value!r}, not a finite number of at most 1e+09 "
               "in size; measure the lesion again, or leave the cell empty for no value.")
    with pytest.raises(StatsError) as error:
        load_study(str(tmp_path / "study.csv"), str(reference))
    assert str(error.value) == message
    assert main(["stats", str(tmp_path / "study.csv"), "--reference", str(reference), "--out",
                 str(tmp_path / "out"), "--no-figures", "--bootstrap", "0"]) == 3
    assert capsys.readouterr().err.strip() == f"netpet: error: {message}"


def test_stats_sets_aside_a_not_separable_volume_whatever_it_holds(tmp_path):
    from netpet.stats.data import load_study

    reference = tmp_path / "reference.csv"
    reference.write_text("patient_id,lesion_id,region,truth,standard\nP1,L1,liver,1,x\n")
    table = StudyTable(str(tmp_path / "study.sqlite"))
    table.upsert([row(lesion="L1", suv_max=5.0, mtv_ml="nan", segmentation_status="not separable")])
    study = load_study(str(tmp_path / "study.sqlite"), str(reference))
    assert np.isnan(study.findings["mtv_ml"].iloc[0]) and study.findings["suv_max"].iloc[0] == 5.0


def test_escaping_is_exact_over_many_strings():
    """escape_cell/unescape_cell are inverse over strings made of the characters that matter, and the
    row-level pre-filters (bare formulas; the rows a bulk write, or an audit-trail append, writes as they are)
    agree with escape_cell / _audit_cell cell by cell."""
    rng = np.random.default_rng(11)
    alphabet = list("'=+-@\t\r\n.eE0123456789ax ,\"\\")
    for _ in range(5000):
        value = "".join(rng.choice(alphabet, int(rng.integers(0, 7))))
        escaped = escape_cell(value)
        assert unescape_cell(escaped) == value
        assert escaped[:1] not in ("=", "+", "-", "@", "\t", "\r") or table_module._NUMBER.match(value)
        bare = escaped != value and not value.startswith("'")
        assert bool(table_module._BARE_FORMULA.search("\x00" + "\x00".join(["x", value, "y"]))) == bare
        cells = ["x", value, "=y" if len(value) % 2 else "y"]
        assert table_module._escaped_row(cells) == [escape_cell(c) for c in cells]
        assert table_module._escaped_row(cells, table_module._AUDIT_ESCAPED_CELL, table_module._audit_cell) == \
            [table_module._audit_cell(c) for c in cells]
