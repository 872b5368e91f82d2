"""The study table and StudyStats stay linear in the size of the study (issue 16): counted, never timed.

The study is the scale benchmark's (``benchmarks/bench_table_stats_scale.py``, ``make_study``: every column
NETPET writes, two modalities, two tracers, two readers, session reads, retracted, equivocal and not-separable
findings, indications with a TIO culprit, region rows), made at two sizes four times apart. What is counted:

* the table: how often a write reads and replaces the file and appends to the audit trail (once each per write,
  whatever the number of rows), the SQL statements of a bulk SQLite upsert per row, and the function calls of a
  bulk upsert (Python and built-in, by :mod:`cProfile`);
* the statistics (``load_study``, ``analyse`` without bootstrap, ``write_outputs`` without figures): the
  function calls, in all and of each function called often, and the elements pandas compares or masks (``Series``
  comparisons and logical operations, boolean row selections), summed over every call. A scan of the whole study
  per patient or per false finding (the quadratic paths fixed in issue 16: the report's patient table masked every
  lesion unit per patient row, which multiplied the elements by 13 for 4 times the rows; the patient- and
  region-level false findings scanned every lesion-level one per unit, which multiplied the calls of that scan by
  17) shows in these counts.

Bound: 1.3 x the ratio of the rows (the benchmark's target band for a flat cost per lesion); counts of linear code
grow by less than the ratio of the rows (fixed costs), a quadratic path by about its square.
"""

from __future__ import annotations

import cProfile
import importlib.util
import os
import pstats

import pandas as pd
import pytest

from netpet.quant import table as table_module
from netpet.quant.table import StudyTable

#: the per-row band of the benchmark's target (flat within 30 %)
BAND = 1.3
SMALL, LARGE = 1200, 4800
#: functions called fewer times than this at the larger size are not checked one by one (their counts follow the
#: data's draws, not the size; a quadratic path at these sizes makes hundreds of thousands of calls)
MANY = 1000

_BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "bench_table_stats_scale.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_table_stats_scale", _BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def studies(bench, tmp_path_factory):
    """{size: (rows, reference path, folder)} at the two sizes."""
    out = {}
    for size in (SMALL, LARGE):
        folder = str(tmp_path_factory.mktemp(f"study{size}"))
        rows, reference, _patients = bench.make_study(folder, size)
        out[size] = (rows, reference, folder)
    return out


def _calls(function):
    """(all function calls, {function: its calls}) made by ``function()`` (Python and built-in functions)."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        function()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    return stats.total_calls, {f"{name} ({path}:{line})": v[1] for (path, line, name), v in stats.stats.items()}


def _check_growth(small_rows: int, small, large_rows: int, large, what: str) -> None:
    """No more than BAND x the ratio of the rows: all calls, and the calls of each function called at least
    MANY times at the larger size (a function called per pair of units grows by the square)."""
    bound = BAND * large_rows / small_rows
    assert large[0] / small[0] <= bound, f"function calls of {what} grow from {small[0]} to {large[0]} for " \
                                         f"{small_rows} -> {large_rows} rows"
    faster = {f: (small[1].get(f, 0), n) for f, n in large[1].items()
              if n >= MANY and n / max(small[1].get(f, 0), 1) > bound}
    assert not faster, f"{what}: calls grow faster than the rows ({small_rows} -> {large_rows}) in {faster}"


class _Counter:
    """Counts calls of module-level functions of the table module (wrapping them in place)."""

    def __init__(self, monkeypatch, *names) -> None:
        self.counts = dict.fromkeys(names, 0)
        for name in names:
            original = getattr(table_module, name) if hasattr(table_module, name) else getattr(StudyTable, name)

            def counted(*args, _original=original, _name=name, **kwargs):
                self.counts[_name] += 1
                return _original(*args, **kwargs)

            if hasattr(table_module, name):
                monkeypatch.setattr(table_module, name, counted)
            else:
                monkeypatch.setattr(StudyTable, name, counted)

    def take(self):
        counts, self.counts = dict(self.counts), dict.fromkeys(self.counts, 0)
        return counts


def test_a_csv_write_reads_and_replaces_the_table_once_whatever_its_rows(studies, tmp_path, monkeypatch):
    rows = studies[SMALL][0]
    counter = _Counter(monkeypatch, "_read_raw", "replace_atomically", "_append_audit")
    table = StudyTable(str(tmp_path / "study.csv"))
    assert table.upsert(rows) == (len(rows), 0)
    assert counter.take() == {"_read_raw": 1, "replace_atomically": 1, "_append_audit": 1}
    # one session's rows into the full table, then one reader's call: each one read, one replace, one append
    first = rows[len(rows) // 2]
    session = [dict(r, suv_max="9.999") for r in rows if (r["patient_id"], r["session_id"], r["reader"]) ==
               (first["patient_id"], first["session_id"], first["reader"])]
    assert table.upsert(session) == (0, len(session))
    assert counter.take() == {"_read_raw": 1, "replace_atomically": 1, "_append_audit": 1}
    finding = next(r for r in rows if r["lesion_id"] and r["reader_call"] != "equivocal")
    assert table.record(finding, {"reader_call": "equivocal"}, by="test") == 1
    assert counter.take() == {"_read_raw": 1, "replace_atomically": 1, "_append_audit": 1}
    assert len(table.read()) == len(rows)
    assert counter.take()["_read_raw"] == 1


def test_a_bulk_upsert_costs_the_same_per_row_at_both_sizes(studies, tmp_path):
    calls = {}
    for size in (SMALL, LARGE):
        rows = studies[size][0]
        calls[size] = (len(rows), _calls(lambda: StudyTable(str(tmp_path / f"study{size}.csv")).upsert(rows)))
    _check_growth(*calls[SMALL], *calls[LARGE], "a bulk CSV upsert")


def test_a_bulk_sqlite_upsert_runs_a_bounded_number_of_statements_per_row(studies, tmp_path, sqlite_statements):
    statements = sqlite_statements
    rows = studies[SMALL][0]
    StudyTable(str(tmp_path / "study.sqlite")).upsert(rows)
    # per row: is the key there, and the insert (an update reads the old cells too); the audit trail is one
    # executemany (its rows are traced one by one: about one entry per non-empty cell)
    per_row = sum(1 for s in statements if not s.startswith("INSERT INTO audit")) / len(rows)
    assert per_row <= 3.0, per_row


def test_statistics_count_linear_work(studies, monkeypatch):
    from netpet.stats import StatsOptions, analyse, load_study, write_outputs

    elements = {"n": 0}
    for owner, name in ((pd.Series, "_cmp_method"), (pd.Series, "_logical_method"),
                        (pd.DataFrame, "_getitem_bool_array")):
        original = getattr(owner, name)

        def counted(self, *args, _original=original, **kwargs):
            elements["n"] += len(self)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
    counts = {}
    for size in (SMALL, LARGE):
        rows, reference, folder = studies[size]
        path = os.path.join(folder, "study.csv")
        StudyTable(path).upsert(rows)
        elements["n"] = 0

        def run() -> None:
            study = load_study(path, reference)
            analysis = analyse(study, StatsOptions(bootstrap=0))
            write_outputs(analysis, os.path.join(folder, "out"), figures_too=False)

        calls = _calls(run)
        counts[size] = (len(rows), calls, elements["n"])
    (small_rows, small_calls, small_elements), (large_rows, large_calls, large_elements) = counts[SMALL], counts[LARGE]
    _check_growth(small_rows, small_calls, large_rows, large_calls, "load_study, analyse and write_outputs")
    assert large_elements / small_elements <= BAND * large_rows / small_rows, (
        f"elements compared or masked by pandas grow from {small_elements} to {large_elements} for {small_rows} -> "
        f"{large_rows} rows")


def test_statistics_read_a_csv_table_once(studies, tmp_path, monkeypatch):
    from netpet.stats import load_study

    rows, reference, _folder = studies[SMALL]
    path = str(tmp_path / "study.csv")
    StudyTable(path).upsert(rows)
    counter = _Counter(monkeypatch, "_read_raw")
    study = load_study(path, reference)
    assert counter.take() == {"_read_raw": 1}
    assert len(study.findings) > 0


def test_reading_a_table_leaves_the_garbage_collector_as_it_was(tmp_path):
    import gc

    path = str(tmp_path / "study.csv")
    table = StudyTable(path)
    table.upsert([{"patient_id": "P1", "session_id": "S1", "modality": "PET/CT", "tracer": "dotatate",
                   "reader": "R1", "lesion_id": "L01", "call": "positive"}])
    assert gc.isenabled()
    assert len(table.read()) == 1 and gc.isenabled()
    with open(path, "a", encoding="utf-8") as handle:  # a row longer than the header: refused, collector back on
        handle.write("P2,S1,PET/CT,dotatate,R1,L02" + ",x" * 200 + "\r\n")
    with pytest.raises(table_module.TableError):
        table.read()
    assert gc.isenabled()
    gc.disable()
    try:
        table_module.StudyTable(str(tmp_path / "other.csv")).read()
        assert not gc.isenabled()  # a collector switched off by the caller stays off
    finally:
        gc.enable()
