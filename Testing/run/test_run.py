"""``netpet run`` on a small synthetic study (Testing/run/conftest.py: three DOTATATE PET/CT sessions, one reader's
clicks at every truth lesion): the table equals ``netpet quantify``'s on the same manifest, a rerun recomputes
nothing, a changed session alone is recomputed, a broken session is reported and isolated, a crash loses nothing,
Dask gives the same table as the local pool, the run log records every unit, the driver alone writes the table,
and bad input is refused in one sentence.

Tables are compared cell by cell on every column but ``updated`` (the time of the write, which differs between
any two runs by design); the comparison is exact, since every run computes the same values from the same files.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from netpet.cli.main import main
from netpet.run.driver import CRASH_ENV, EXIT_PARTIAL, LOG_NAME, TABLE_NAME, run_study
from netpet.run.phantom_manifest import write_truth_manifest
from netpet.schema import KEY

#: the cells that differ between two runs of the same inputs: the time of the write
VOLATILE = ("updated",)


def _table(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {tuple(r[k] for k in KEY): {k: v for k, v in r.items() if k not in VOLATILE} for r in rows}


def _events(out):
    with open(os.path.join(out, LOG_NAME), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _last_run(out):
    """The events of the last run in the log (from its last start event)."""
    events = _events(out)
    start = max(i for i, e in enumerate(events) if e["event"] == "start")
    return events[start:]


def _units(events):
    return [e for e in events if e["event"] == "unit"]


def _manifest_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write_rows(path, rows, extra=()):
    columns = list(rows[0].keys()) + [c for c in extra if c not in rows[0]]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def _copy_manifest(study, folder, name="manifest.csv"):
    path = folder / name
    write_truth_manifest(str(study), str(path))
    return path


def test_exit_code_is_the_command_lines():
    from netpet.cli.common import EXIT_PARTIAL as CLI_PARTIAL

    assert EXIT_PARTIAL == CLI_PARTIAL == 6


def test_run_table_equals_quantify_and_report_written(small_study, baseline_run, tmp_path):
    study, manifest, _ = small_study
    out, summary, _, _ = baseline_run
    assert summary["exit_code"] == 0 and summary["units"] == 3 and summary["done"] == 3 and summary["failed"] == 0
    ours = _table(out / TABLE_NAME)
    assert len(ours) == summary["rows_written"]
    lesions = [r for r in _manifest_rows(manifest) if r["lesion_id"]]
    assert len([k for k in ours if k[5]]) == len(lesions)  # every click gave its row (the others: sessions read)
    quantified = tmp_path / "quantify" / "study-table.csv"
    assert main(["quantify", str(manifest), "--table", str(quantified), "--jobs", "1", "--json"]) == 0
    theirs = _table(quantified)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == theirs[key], key
    segs = sorted(os.listdir(out / "segmentations"))
    assert [s for s in segs if s.endswith(".seg.nrrd")] == sorted(
        s for s in os.listdir(quantified.parent / "segmentations") if s.endswith(".seg.nrrd"))
    assert len([s for s in segs if s.endswith(".seg.nrrd")]) == 3  # one per session and reader
    report = out / "statistics" / "report.html"
    assert summary["statistics"]["status"] == "done" and report.stat().st_size > 1000


def test_run_log_and_the_driver_alone_writes_the_table(baseline_run):
    out, summary, upserts, driver = baseline_run
    events = _events(out)
    assert [e["event"] for e in events] == ["start", "unit", "unit", "unit", "stats", "end"]
    start, end = events[0], events[-1]
    assert start["units"] == 3 and start["jobs"] == 2 and start["netpet_version"]
    units = _units(events)
    assert len({u["key"] for u in units}) == 3 and all(u["status"] == "done" for u in units)
    assert sorted(f[:-5] for f in os.listdir(out / "checkpoints") if not f.startswith("_")) == sorted(
        u["key"] for u in units)
    assert all(u["worker"]["pid"] != driver and u["worker"]["peak_rss_mb"] > 0 for u in units)
    assert sum(u["rows"] for u in units) == summary["rows_written"] == end["rows_written"]
    assert end["counts"] == {"done": 3, "unchanged": 0, "failed": 0} and end["exit_code"] == 0
    # every write of the table came from the driver's process, one upsert per unit with rows
    assert {pid for pid, _ in upserts} == {driver}
    assert len(upserts) == 3 and sum(n for _, n in upserts) == summary["rows_written"]
    checkpoint = json.loads(open(out / "checkpoints" / f"{units[0]['key']}.json").read())
    assert checkpoint["status"] == "done" and checkpoint["inputs"]["files"] and checkpoint["inputs"]["rows"]
    assert all(len(entry) == 3 for entry in checkpoint["inputs"]["files"])  # path, size, mtime_ns


def test_rerun_recomputes_nothing_and_keeps_the_table_byte_identical(small_study, baseline_run, tmp_path):
    study, manifest, reference = small_study
    out = tmp_path / "out"
    shutil.copytree(baseline_run[0], out)
    before = {name: (out / name).read_bytes() for name in (TABLE_NAME, "study-table.audit.csv")}
    summary = run_study(str(study), str(out), manifest=str(manifest), reference=str(reference), jobs=2)
    assert (summary["unchanged"], summary["done"], summary["failed"], summary["rows_written"]) == (3, 0, 0, 0)
    assert summary["statistics"]["status"] == "unchanged" and summary["exit_code"] == 0
    assert all((out / name).read_bytes() == data for name, data in before.items())
    assert [u["status"] for u in _units(_last_run(out))] == ["unchanged"] * 3
    # a reader's edit of the report's false-findings.csv (its causes are read back) is an input of the statistics
    causes = out / "statistics" / "false-findings.csv"
    causes.write_bytes(causes.read_bytes() + b"\n")
    again = run_study(str(study), str(out), manifest=str(manifest), reference=str(reference), jobs=1)
    assert again["statistics"]["status"] == "done" and again["unchanged"] == 3


def test_a_changed_session_alone_is_recomputed(small_study, baseline_run, tmp_path):
    study, _, _ = small_study
    out = tmp_path / "out"
    shutil.copytree(baseline_run[0], out)
    manifest = _copy_manifest(study, tmp_path)
    rows = _manifest_rows(manifest)
    changed = next(r for r in rows if r["lesion_id"] and r["patient_id"] == "NETPET-002")
    changed["seed_r"] = f"{float(changed['seed_r']) + 1.0:.2f}"  # a click 1 mm to the left
    _write_rows(manifest, rows)
    summary = run_study(str(study), str(out), manifest=str(manifest), jobs=2)
    assert (summary["done"], summary["unchanged"], summary["failed"]) == (1, 2, 0)
    assert [u["patient"] for u in _units(_last_run(out)) if u["status"] == "done"] == ["NETPET-002"]
    before, after = _table(baseline_run[0] / TABLE_NAME), _table(out / TABLE_NAME)
    assert before.keys() == after.keys()
    assert all(before[k] == after[k] for k in before if k[0] != "NETPET-002")
    moved = next(k for k in after if k[0] == "NETPET-002" and k[5] == changed["lesion_id"])
    assert float(after[moved]["seed_r"]) == pytest.approx(float(changed["seed_r"]), abs=1e-9)
    assert summary["stale"] == []


def test_a_finding_dropped_from_the_manifest_is_reported_not_silently_kept(small_study, baseline_run, tmp_path):
    """A lesion row taken out of a session the manifest still names: the session is redone, the old finding stays in
    the table (a reader's row is never deleted) but is reported as stale, by reader and lesion, for retraction."""
    study, _, _ = small_study
    out = tmp_path / "out"
    shutil.copytree(baseline_run[0], out)
    manifest = _copy_manifest(study, tmp_path)
    rows = _manifest_rows(manifest)
    dropped = next(r for r in rows if r["lesion_id"] and r["patient_id"] == "NETPET-002")
    _write_rows(manifest, [r for r in rows if r is not dropped])
    summary = run_study(str(study), str(out), manifest=str(manifest), jobs=1)
    assert (summary["done"], summary["unchanged"], summary["failed"]) == (1, 2, 0)
    assert [s for s in summary["stale"] if s.get("lesion_id")] == [
        {"patient_id": "NETPET-002", "session_id": next(k[1] for k in _table(out / TABLE_NAME) if k[0] == "NETPET-002"),
         "reader": dropped["reader"], "lesion_id": dropped["lesion_id"]}]
    assert _table(out / TABLE_NAME).keys() == _table(baseline_run[0] / TABLE_NAME).keys()


def test_a_broken_session_is_reported_and_isolated_then_fixed(small_study, baseline_run, tmp_path, capsys):
    """An implausible dose override (0.001 MBq, below the 10^4 Bq under which a dose cannot be Bq) in one session's
    rows: that session fails, named with its rows; the others are done; exit 6. Fixed, a rerun recomputes it alone."""
    study, _, _ = small_study
    out = tmp_path / "out"
    manifest = _copy_manifest(study, tmp_path)
    rows = _manifest_rows(manifest)
    for row in rows:
        row["dose_mbq"] = "0.001" if row["patient_id"] == "NETPET-003" else ""
    _write_rows(manifest, rows)
    code = main(["run", str(study), "--out", str(out), "--manifest", str(manifest), "--jobs", "2"])
    err = capsys.readouterr().err
    assert code == 6
    failed = [line for line in err.splitlines() if line.startswith("netpet: failed:")]
    numbers = [str(i + 2) for i, r in enumerate(rows) if r["patient_id"] == "NETPET-003"]
    assert len(failed) == 1 and "NETPET-003" in failed[0] and "dose" in failed[0]
    assert all(n in failed[0] for n in numbers) and "Traceback" not in err
    units = _units(_last_run(out))
    assert sorted((u["patient"], u["status"]) for u in units) == [
        ("NETPET-001", "done"), ("NETPET-002", "done"), ("NETPET-003", "failed")]
    for row in rows:
        row["dose_mbq"] = ""
    _write_rows(manifest, rows)
    code = main(["run", str(study), "--out", str(out), "--manifest", str(manifest), "--jobs", "2"])
    assert code == 0
    units = _units(_last_run(out))
    assert sorted((u["patient"], u["status"]) for u in units) == [
        ("NETPET-001", "unchanged"), ("NETPET-002", "unchanged"), ("NETPET-003", "done")]
    assert _table(out / TABLE_NAME) == _table(baseline_run[0] / TABLE_NAME)


def test_a_crash_mid_run_loses_nothing(small_study, baseline_run, tmp_path):
    """The driver ends abruptly after its 2nd upsert, before that unit's checkpoint (the test hook CRASH_ENV); the
    rerun recomputes that unit and the third, and the table equals the uninterrupted run's."""
    study, manifest, _ = small_study
    out = tmp_path / "out"
    env = {**os.environ, CRASH_ENV: "2"}
    done = subprocess.run([sys.executable, "-m", "netpet.cli.main", "run", str(study), "--out", str(out), "--manifest",
                           str(manifest), "--jobs", "1", "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 70, done.stderr
    checkpoints = [f for f in os.listdir(out / "checkpoints") if f.endswith(".json")]
    assert len(checkpoints) == 1  # the first unit's; the second reached the table only
    assert len({k[:2] for k in _table(out / TABLE_NAME)}) == 2
    summary = run_study(str(study), str(out), manifest=str(manifest), jobs=2)
    assert (summary["unchanged"], summary["done"], summary["exit_code"]) == (1, 2, 0)
    assert _table(out / TABLE_NAME) == _table(baseline_run[0] / TABLE_NAME)


def test_dask_scheduler_gives_the_local_pools_table(small_study, baseline_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    study, manifest, _ = small_study
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            pids = set(client.run(os.getpid).values())
        summary = run_study(str(study), str(out), manifest=str(manifest), scheduler=cluster.scheduler_address)
    assert summary["done"] == 3 and summary["exit_code"] == 0
    assert _table(out / TABLE_NAME) == _table(baseline_run[0] / TABLE_NAME)
    events = _last_run(out)
    assert events[0]["scheduler"] == cluster.scheduler_address
    assert {u["worker"]["pid"] for u in _units(events)} <= pids and os.getpid() not in pids


def test_without_a_manifest_every_pet_is_converted_and_listed(small_study, tmp_path, capsys):
    study, _, _ = small_study
    out = tmp_path / "out"
    assert main(["run", str(study), "--out", str(out), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "no manifest" in printed and "no study table" in printed
    with open(out / "sessions.csv", newline="") as handle:
        sessions = list(csv.DictReader(handle))
    assert [s["patient_id"] for s in sessions] == ["NETPET-001", "NETPET-002", "NETPET-003"]
    assert all(s["status"] == "converted" and s["tracer"] == "dotatate" and s["modality"] == "PET/CT"
               for s in sessions)
    assert not (out / TABLE_NAME).exists()
    assert len(_units(_last_run(out))) == 3


def _one_sentence(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("netpet: error: ") and "Traceback" not in err, err
    return lines[0]


def test_bad_input_is_refused_in_one_sentence(small_study, tmp_path, capsys):
    study, _, _ = small_study
    assert main(["run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o1")]) == 3
    assert "does not exist" in _one_sentence(capsys.readouterr().err)
    manifest = tmp_path / "no-seed.csv"
    manifest.write_text("patient_id,series,reader,lesion_id\nP,x,r,L1\n")
    assert main(["run", str(study), "--out", str(tmp_path / "o2"), "--manifest", str(manifest)]) == 3
    assert "seed_r" in _one_sentence(capsys.readouterr().err)
    assert main(["run", str(study), "--out", str(tmp_path / "o3"), "--manifest", str(tmp_path / "absent.csv")]) == 3
    assert "absent.csv" in _one_sentence(capsys.readouterr().err)
    code = main(["run", str(study), "--out", str(tmp_path / "o4"), "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 3
    assert "cannot be reached" in _one_sentence(capsys.readouterr().err)


def test_a_bad_manifest_row_is_named_and_the_run_partial(small_study, tmp_path, capsys):
    study, _, _ = small_study
    manifest = _copy_manifest(study, tmp_path)
    rows = [r for r in _manifest_rows(manifest) if r["patient_id"] == "NETPET-001"][:2]
    rows[1]["seed_a"] = "abc"
    _write_rows(manifest, rows)
    assert main(["run", str(study), "--out", str(tmp_path / "out"), "--manifest", str(manifest), "--jobs", "1"]) == 6
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("netpet: failed:")]
    assert len(failed) == 1 and "manifest row 3" in failed[0] and "seed_r/a/s" in failed[0] and "Traceback" not in err
