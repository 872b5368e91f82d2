"""The study table's audit trail (issue 14): every write's changed cells, exactly; retraction; CSV and SQLite;
concurrent writers; crash safety. Expected rows are written out by hand from the documented rules
(netpet.quant.table, "The audit trail"): the values compared are text, exact (no tolerance: nothing numeric is
computed, a number is stored as netpet writes it, 12.5 -> "12.5")."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import sqlite3

import pytest

from netpet.quant import table as table_module
from netpet.quant.table import AUDIT_COLUMNS, KEY, StudyTable, TableError, audit_path

KEY_VALUES = ("P1", "S1", "PET/CT", "dotatate", "R1", "L01")


def row(lesion="L01", reader="R1", patient="P1", **values):
    base = {"patient_id": patient, "session_id": "S1", "modality": "PET/CT", "tracer": "dotatate", "reader": reader,
            "lesion_id": lesion}
    base.update(values)
    return base


def key(lesion="L01", reader="R1", patient="P1"):
    return {k: v for k, v in row(lesion, reader, patient).items() if k in KEY}


def trail(table, **where):
    """The trail without its time stamps (checked on their own): tuples of the other columns."""
    return [tuple(e[c] for c in AUDIT_COLUMNS[1:]) for e in table.audit(**where)]


def entry(who, action, column, old, new, why="", lesion="L01", reader="R1", patient="P1"):
    return (who, action, patient, "S1", "PET/CT", "dotatate", reader, lesion, column, old, new, why)


@pytest.fixture(params=["study.csv", "study.sqlite"])
def path(request, tmp_path):
    return str(tmp_path / request.param)


def test_every_action_records_exactly_its_changed_cells(path):
    table = StudyTable(path)
    start = dt.datetime.now(dt.timezone.utc)
    assert table.upsert([row(suv_max=12.5, call="positive", region="", updated="2026-01-01T00:00:00")]) == (1, 0)
    # an insert: each non-empty cell, the key and the time stamp 'updated' not cells of their own; by the row's reader
    assert trail(table) == [entry("R1", "insert", "suv_max", "", "12.5"), entry("R1", "insert", "call", "", "positive")]
    # an idempotent rewrite records nothing, even with a new time stamp
    assert table.upsert([row(suv_max=12.5, call="positive", updated="2026-02-02T00:00:00")]) == (0, 1)
    assert len(table.audit()) == 2
    # an update: the changed cells only, old and new, with who and why
    table.upsert([row(suv_max=13.0, call="positive", region="liver")], by="Dr B", why="re-segmented")
    assert trail(table)[2:] == [entry("Dr B", "update", "suv_max", "12.5", "13.0", "re-segmented"),
                                entry("Dr B", "update", "region", "", "liver", "re-segmented")]
    # the reader's reading
    assert table.record(key(), {"reader_call": "positive", "confidence": 4}, why="clear uptake") == 2
    assert table.record(key(), {"reader_call": "positive", "confidence": 4}) == 0
    assert trail(table)[4:] == [entry("R1", "update", "reader_call", "", "positive", "clear uptake"),
                                entry("R1", "update", "confidence", "", "4", "clear uptake")]
    # retraction keeps the row, records status and reason, the reason as why
    assert table.retract(key(), "physiological uptake of the uncinate process", by="R1") == 2
    assert table.retract(key(), "physiological uptake of the uncinate process", by="R1") == 0
    why = "physiological uptake of the uncinate process"
    assert trail(table)[6:] == [entry("R1", "retract", "finding_status", "", "retracted", why),
                                entry("R1", "retract", "retraction_reason", "", why, why)]
    kept = table.read()
    assert len(kept) == 1 and kept[0]["finding_status"] == "retracted" and kept[0]["retraction_reason"] == why
    # restore: back to active, the reason cleared (the trail keeps it); restoring again changes nothing
    assert table.restore(key(), why="it was a small bowel metastasis", by="Dr B") == 2
    assert table.restore(key(), by="Dr B") == 0
    assert trail(table)[8:] == [entry("Dr B", "restore", "finding_status", "retracted", "active",
                                      "it was a small bowel metastasis"),
                                entry("Dr B", "restore", "retraction_reason", why, "", "it was a small bowel metastasis")]
    # adjudication: a consensus row, by the adjudicator, each row with its why
    assert table.adjudicate([row(reader="consensus", reader_call="negative")], by="Dr C",
                            whys=["R1 positive; R2 negative"]) == (1, 0)
    assert trail(table)[10:] == [entry("Dr C", "adjudicate", "reader_call", "", "negative", "R1 positive; R2 negative",
                                       reader="consensus")]
    assert len(table.audit()) == 11
    # when: UTC, ISO 8601, one time per write, in order
    times = [dt.datetime.fromisoformat(e["when"].replace("Z", "+00:00")) for e in table.audit()]
    assert all(t.tzinfo == dt.timezone.utc and start <= t <= dt.datetime.now(dt.timezone.utc) for t in times)
    assert times == sorted(times) and times[0] == times[1] and times[2] == times[3]
    # the filter
    assert [e["column"] for e in table.audit(action="restore")] == ["finding_status", "retraction_reason"]
    assert table.audit(reader="consensus")[0]["who"] == "Dr C"
    with pytest.raises(TableError, match="The audit trail has no column colour"):
        table.audit(colour="red")


def test_a_row_of_its_key_alone_records_one_entry_and_new_columns_are_changes(path):
    table = StudyTable(path)
    table.upsert([row(lesion="")])  # a session read without findings
    assert trail(table) == [entry("R1", "insert", "", "", "", lesion="")]
    table.upsert([row(lesion="", note="no uptake")])
    assert trail(table)[1] == entry("R1", "update", "note", "", "no uptake", lesion="")


def test_refused_changes_name_the_finding_and_write_nothing(path):
    table = StudyTable(path)
    table.upsert([row()])
    before = table.audit()
    with pytest.raises(TableError) as error:
        table.retract(key(lesion="L09"), "wrong")
    assert str(error.value) == (f"The study table {path} has no finding patient P1, session S1, PET/CT, dotatate, "
                                "reader R1, lesion L09; check the ids (netpet audit --table lists what was written), "
                                "nothing was changed.")
    with pytest.raises(TableError, match="^Say why the finding patient P1, session S1, PET/CT, dotatate, reader R1, "
                                         "lesion L01 is retracted"):
        table.retract(key(), "  ")
    with pytest.raises(TableError, match="has no finding"):
        table.record(key(lesion="L09"), {"confidence": 3})
    with pytest.raises(TableError, match="lacks the key column"):
        table.record({"patient_id": "P1"}, {"confidence": 3})
    with pytest.raises(TableError, match="Name the adjudicator"):
        table.adjudicate([row(reader="consensus", reader_call="negative")], by=" ")
    assert table.audit() == before and len(table.read()) == 1


def test_audit_cells_are_escaped_one_line_each_and_round_trip(tmp_path):
    path = tmp_path / "study.csv"
    table = StudyTable(str(path))
    values = {"note": "a\r\nb\nc\\n", "formula": "=HYPERLINK(\"x\")", "minus": "-3.5", "tab": "\tx", "quote": "'=1"}
    table.upsert([row(**values)], by="=cmd", why="line1\nline2")
    got = {e["column"]: e for e in table.audit()}
    assert {c: got[c]["new"] for c in values} == values
    assert {e["who"] for e in got.values()} == {"=cmd"} and {e["why"] for e in got.values()} == {"line1\nline2"}
    raw = open(audit_path(str(path)), "rb").read()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and len(lines) == 1 + len(values) + 1  # header, one line per entry, the last line end
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert b"'=HYPERLINK" in raw and b",-3.5," in raw and b"'=cmd" in raw and b"a\\r\\nb\\nc\\\\n" in raw
    assert lines[0].decode() == ",".join(AUDIT_COLUMNS)


def test_sqlite_trail_is_a_table_written_in_the_same_transaction(tmp_path, monkeypatch):
    path = str(tmp_path / "study.sqlite")
    table = StudyTable(path)
    table.upsert([row(suv_max=1.0)])
    with sqlite3.connect(path) as db:
        assert [r[1] for r in db.execute("PRAGMA table_info(audit)")] == list(AUDIT_COLUMNS)
        assert db.execute("SELECT count(*) FROM audit").fetchone()[0] == 1
    assert not os.path.exists(audit_path(path))
    # a failure after the audit rows were inserted rolls both back
    original = table_module._AuditBatch.updated

    def failing(self, *args):
        original(self, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(table_module._AuditBatch, "updated", failing)
    with pytest.raises(KeyboardInterrupt):
        table.upsert([row(suv_max=2.0)])
    monkeypatch.undo()
    assert table.read()[0]["suv_max"] == "1.0" and len(table.audit()) == 1


def test_a_foreign_sqlite_audit_table_is_refused(tmp_path):
    path = tmp_path / "study.sqlite"
    StudyTable(str(path)).upsert([row()])
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE audit")
        db.execute("CREATE TABLE audit (event, stamp)")
    before = StudyTable(str(path)).read()
    with pytest.raises(TableError) as error:
        StudyTable(str(path)).upsert([row(lesion="L02")])
    assert str(error.value) == (f"{path} holds a table 'audit' that is not NETPET's audit trail (its columns are not "
                                f"{', '.join(AUDIT_COLUMNS)}); rename it, the table was left untouched.")
    assert StudyTable(str(path)).read() == before


def test_a_foreign_or_read_only_trail_is_refused_and_the_table_left_untouched(tmp_path):
    path = tmp_path / "study.csv"
    table = StudyTable(str(path))
    table.upsert([row()])
    before = path.read_bytes()
    trail_path = tmp_path / "study.audit.csv"
    saved = trail_path.read_bytes()
    trail_path.write_text("name,score\nalice,3\n")
    with pytest.raises(TableError) as error:
        table.upsert([row(lesion="L02")])
    assert str(error.value) == (f"{trail_path} is not a NETPET audit trail (its first line is not "
                                f"{','.join(AUDIT_COLUMNS)}); move it away, the table was left untouched.")
    assert path.read_bytes() == before
    with pytest.raises(TableError, match="is not a NETPET audit trail"):
        table.audit()
    trail_path.write_bytes(saved)
    os.chmod(trail_path, 0o444)  # (refused by its mode bits, also for root)
    try:
        with pytest.raises(TableError, match=r"^The audit trail .*study.audit.csv is read-only"):
            table.upsert([row(lesion="L02")])
        with pytest.raises(TableError, match=r"^The audit trail .*study.audit.csv is read-only"):
            table.check()  # refused before any work, as a read-only table is
        assert path.read_bytes() == before and trail_path.read_bytes() == saved
    finally:
        os.chmod(trail_path, 0o644)


def _killed_mid_append(path):
    """A writer killed (no clean-up, as by a power loss or SIGKILL) after half of its append reached the file."""
    write = os.write

    def torn(descriptor, data):
        write(descriptor, bytes(data)[:len(data) // 2])
        os._exit(9)

    table_module.os.write = torn
    StudyTable(path).upsert([row(suv_max=2.0, note="x" * 300)])


def test_a_writer_killed_in_the_middle_of_an_append_leaves_no_half_line(tmp_path, caplog):
    path = tmp_path / "study.csv"
    table = StudyTable(str(path))
    table.upsert([row(suv_max=1.0)])
    table_bytes = path.read_bytes()
    trail_path = audit_path(str(path))
    whole = open(trail_path, "rb").read()
    worker = _context().Process(target=_killed_mid_append, args=(str(path),))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 9
    assert path.read_bytes() == table_bytes  # the table is replaced only after its trail is on disk
    damaged = open(trail_path, "rb").read()
    assert damaged.startswith(whole) and len(damaged) > len(whole) and not damaged.endswith(b"\n")
    # the half written: the first entry (suv_max, a short line) whole, the second (note, 300 characters) cut
    with caplog.at_level(logging.WARNING, logger="netpet.quant.table"):
        assert trail(table) == [entry("R1", "insert", "suv_max", "", "1.0"),
                                entry("R1", "update", "suv_max", "1.0", "2.0")]
    assert "cut short by a crash" in caplog.text
    table.upsert([row(suv_max=3.0)])  # the next writer cuts the broken line off before appending
    repaired = open(trail_path, "rb").read()
    assert repaired.count(b"\r\n") == 4 and repaired.endswith(b"\r\n") and b"xxx" not in repaired
    assert trail(table)[2:] == [entry("R1", "update", "suv_max", "1.0", "3.0")]  # the table never held 2.0


def test_an_interrupt_in_the_middle_of_an_append_takes_it_back_whole(tmp_path, monkeypatch):
    path = tmp_path / "study.csv"
    table = StudyTable(str(path))
    table.upsert([row(suv_max=1.0)])
    table_bytes, trail_bytes = path.read_bytes(), open(audit_path(str(path)), "rb").read()
    write = os.write

    def torn(descriptor, data):
        write(descriptor, bytes(data)[:len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(table_module.os, "write", torn)
    with pytest.raises(KeyboardInterrupt):
        table.upsert([row(suv_max=2.0, note="x" * 300)])
    monkeypatch.undo()
    assert path.read_bytes() == table_bytes and open(audit_path(str(path)), "rb").read() == trail_bytes


def test_a_failed_table_write_takes_its_trail_entries_back(tmp_path, monkeypatch):
    path = tmp_path / "study.csv"
    table = StudyTable(str(path))
    table.upsert([row()])
    trail_bytes = open(audit_path(str(path)), "rb").read()

    def crash(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(table_module.os, "replace", crash)
    with pytest.raises(OSError):
        table.retract(key(), "duplicate of L02")
    monkeypatch.undo()
    assert open(audit_path(str(path)), "rb").read() == trail_bytes
    assert table.read()[0]["finding_status"] == ""


def _context():
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def _writer(path, worker, barrier):
    barrier.wait()
    table = StudyTable(path)
    for i in range(12):
        table.upsert([row(lesion=f"W{worker}L{i:02d}", suv_max=float(i))])
        table.record(key(lesion=f"W{worker}L{i:02d}"), {"confidence": 1 + i % 5}, by=f"worker{worker}")


@pytest.mark.parametrize("name", ["study.csv", "study.sqlite"])
def test_two_processes_writing_at_once_keep_every_audit_entry(tmp_path, name):
    path = str(tmp_path / name)
    context = _context()
    barrier = context.Barrier(2)
    workers = [context.Process(target=_writer, args=(path, w, barrier)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    table = StudyTable(path)
    entries = table.audit()
    # per lesion: an insert of suv_max (0.0 is a value, not empty) and an update of its confidence
    expected = sorted([(f"W{w}L{i:02d}", "insert", "suv_max", "", f"{float(i)!r}", "R1") for w in range(2) for i in range(12)]
                      + [(f"W{w}L{i:02d}", "update", "confidence", "", str(1 + i % 5), f"worker{w}")
                         for w in range(2) for i in range(12)])
    assert sorted((e["lesion_id"], e["action"], e["column"], e["old"], e["new"], e["who"]) for e in entries) == expected
    assert len(table.read()) == 24
    if name.endswith(".csv"):
        raw = open(audit_path(path), "rb").read()
        assert raw.count(b"\r\n") == 1 + 48 and raw.endswith(b"\r\n")


# -- property: the trail replays to the table ------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402

from Testing.core.test_properties_table import batches  # noqa: E402  (the table's own hostile write sequences)


def _replay(entries):
    model = {}
    for e in entries:
        cells = model.setdefault(tuple(e[k] for k in KEY), {})
        cells[e["column"]] = e["new"]  # (a row of its key alone: column '', new '', as an empty column reads)
    return model


def _check_replay(suffix, sequence):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        table = StudyTable(os.path.join(folder, "study" + suffix))
        for batch in sequence:
            before = table.audit() if os.path.exists(table.path) else []
            try:
                table.upsert(batch)
            except TableError:
                assert (table.audit() if os.path.exists(table.path) else []) == before  # a refused write: no entry
                continue
            model = _replay(table.audit())
            rows = table.read()
            assert len(rows) == len(model)
            for r in rows:
                cells = model[tuple(r[k] for k in KEY)]
                for column, value in r.items():
                    if column not in KEY and column != "updated":
                        assert value == cells.get(column, ""), (column, value[:40], cells.get(column, "")[:40])


@pytest.mark.parametrize("suffix", [".csv", ".sqlite"])
def test_the_trail_replayed_gives_the_table(suffix):
    """Hypothesis writes the property test's hostile sequences (formula prefixes, CR/LF, quotes, unicode, long
    cells, refused rows); after every write, replaying the trail's new values from an empty table gives every
    cell of the table (the key and 'updated' aside), and a refused write adds no entry. 60 examples per backend (a minute in all)."""

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batches())
    def run(sequence):
        _check_replay(suffix, sequence)

    run()
