"""The study table: upsert by key, kept columns, refusals, concurrent writers, crash safety."""

from __future__ import annotations

import csv
import multiprocessing
import os

import pytest

from netpet.quant import table as table_module
from netpet.quant.table import KEY, REQUIRED, StudyTable, TableError


def row(patient="P1", session="S1", lesion="L01", reader="R1", **values):
    base = {"patient_id": patient, "session_id": session, "modality": "PET/CT", "tracer": "dotatate",
            "reader": reader, "lesion_id": lesion, "region": "liver", "suv_max": 12.5, "call": "positive"}
    base.update(values)
    return base


@pytest.fixture(params=["study.csv", "study.sqlite"])
def path(request, tmp_path):
    return str(tmp_path / request.param)


def test_upsert_inserts_updates_and_is_idempotent(path):
    table = StudyTable(path)
    assert table.read() == []
    assert table.upsert([row(), row(lesion="L02")]) == (2, 0)
    assert table.upsert([row(suv_max=13.0), row(lesion="L03")]) == (1, 1)
    rows = {r["lesion_id"]: r for r in table.read()}
    assert set(rows) == {"L01", "L02", "L03"} and rows["L01"]["suv_max"] == "13.0"
    assert table.upsert([row(suv_max=13.0)]) == (0, 1)
    assert len(table.read()) == 3
    # another reader, modality or tracer is another row
    table.upsert([row(reader="R2"), row(tracer="fdg")])
    assert len(table.read()) == 5
    assert all(c in table.columns() for c in REQUIRED)


def test_foreign_columns_are_kept(tmp_path):
    path = tmp_path / "study.csv"
    StudyTable(str(path)).upsert([row(), row(lesion="L02")])
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for r in rows:
        r["cause"] = "physiological uptake" if r["lesion_id"] == "L02" else ""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    StudyTable(str(path)).upsert([row(lesion="L02", suv_max=7.0), row(lesion="L03")])
    rows = {r["lesion_id"]: r for r in StudyTable(str(path)).read()}
    assert rows["L02"]["cause"] == "physiological uptake" and rows["L02"]["suv_max"] == "7.0"
    assert rows["L03"]["cause"] == ""


def test_not_a_study_table_is_refused_untouched(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("name,score\nalice,3\n")
    before = path.read_bytes()
    with pytest.raises(TableError, match=r"other.csv is not a NETPET study table: it lacks the column\(s\) patient_id"):
        StudyTable(str(path)).upsert([row()])
    assert path.read_bytes() == before
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(",".join(KEY) + "\nP1,S1,PET/CT,dotatate,R1,L01,extra\n")
    with pytest.raises(TableError, match="row 2 has more fields than the header"):
        StudyTable(str(ragged)).read()
    sqlite = tmp_path / "other.db"
    import sqlite3

    with sqlite3.connect(sqlite) as db:
        db.execute("CREATE TABLE people (name)")
    with pytest.raises(TableError, match="without a 'lesions' table"):
        StudyTable(str(sqlite)).upsert([row()])


def test_empty_file_is_an_empty_table(tmp_path):
    path = tmp_path / "study.csv"
    path.write_bytes(b"")
    assert StudyTable(str(path)).read() == []
    assert StudyTable(str(path)).upsert([row()]) == (1, 0)


def test_rows_without_key_are_refused(path):
    with pytest.raises(TableError, match="lacks the key column"):
        StudyTable(path).upsert([{"patient_id": "P1", "lesion_id": "L1"}])


def test_a_crash_while_writing_leaves_the_old_table(tmp_path, monkeypatch):
    path = tmp_path / "study.csv"
    table = StudyTable(str(path))
    table.upsert([row(), row(lesion="L02")])
    before = path.read_bytes()

    class Boom(RuntimeError):
        pass

    def crash(*_args, **_kwargs):
        raise Boom("power cut")

    monkeypatch.setattr(table_module.os, "replace", crash)
    with pytest.raises(Boom):
        table.upsert([row(lesion="L03")])
    assert path.read_bytes() == before
    assert [f for f in os.listdir(tmp_path) if f.startswith(".netpet-")] == []


def _writer(arguments):
    path, worker = arguments
    table = StudyTable(path)
    for i in range(15):
        table.upsert([row(patient=f"P{worker}", lesion=f"L{i:02d}", suv_max=float(i))])
    return worker


@pytest.mark.parametrize("name", ["study.csv", "study.sqlite"])
def test_concurrent_writers_lose_nothing(tmp_path, name):
    path = str(tmp_path / name)
    context = multiprocessing.get_context("spawn" if "spawn" in multiprocessing.get_all_start_methods() else None)
    with context.Pool(4) as pool:
        assert sorted(pool.map(_writer, [(path, w) for w in range(4)])) == [0, 1, 2, 3]
    rows = StudyTable(path).read()
    assert len(rows) == 60
    assert {(r["patient_id"], r["lesion_id"]) for r in rows} == {(f"P{w}", f"L{i:02d}") for w in range(4) for i in range(15)}
