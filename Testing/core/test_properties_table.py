"""Property-based tests of the study table (issue 11, item 8).

Hypothesis writes sequences of upserts to a fresh table, CSV and SQLite: rows of arbitrary text
(CR, LF, quotes, commas, spreadsheet formula prefixes = + - @ tab and CR, quotes before them,
unicode, line separators, a byte-order mark, long cells and one over the CSV reader's old
131,072-character limit, numbers written as text), floats (NaN, infinities, huge and tiny),
integers and None, under keys drawn from a small pool so that rows update one another, and under
column names as hostile as the values (commas, formula prefixes, case variants of NETPET's own
columns, an empty name). A model of the table follows the documented rules
(netpet.quant.table): a write is refused, with a TableError of one line, exactly when a row lacks
a key column, holds an invalid lesion id, a NUL or text that is not valid Unicode, or (SQLite) a
column differing from another only in ASCII case; a refused write leaves the table byte-identical;
after every write the table reads back exactly the last accepted value of every cell, as text (a
number as netpet writes it), one row per key, and stays readable. 600 examples per backend, each
of one to five writes in its own temporary folder.
"""

from __future__ import annotations

import math
import os
import tempfile
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netpet.errors import NetpetError
from netpet.quant import table as table_module
from netpet.quant.table import COLUMNS, KEY, LESION_ID_MAX, StudyTable, TableError

EXAMPLES = 600  # per backend: 1,200 in all

HOSTILE = ["", " ", "\r", "\n", "\r\n", "a\rb", "a\nb", "a\r\nb", "\n\n", '"', '""', '"a"', ",", "a,b", "'", "''",
           "=SUM(A1:A9)", "=1+1", "+1", "+x", "-3.5", "-x", "-", "@x", "@", "\tx", "\t", "\rx", "'=x", "''=x", "'-3.5",
           "'+", "'@x", "'\tx", "-1e400", "1e400", "nan", "NaN", "inf", "-inf", "0x1F", " 1", "1 ", "0001", "1,5",
           "1.0", "1", "\u00e9", "\u65e5\u672c", "\U0001F600", "\u2028", "\u2029", "\u0085", "\ufeff", "\ufeffx",
           "\u202ex", "\u200b", "a\\b", "\\", "\x1b[31m", "\x7f", "x" * 70, "y" * 64, "z" * 65]
#: what no table can keep (refused): NUL, text that is not valid Unicode (lone surrogates)
POISON = ["\x00", "a\x00b", "\ud800", "x\udfffy"]
LONG = ["L" * 131_073, "\n".join(["ab,\"cd\""] * 20_000)]
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1e15, 1e-7, 123456.1234567, -3.5, 1e308, 5e-324]))
texts = st.one_of(st.text(st.characters(exclude_characters="\x00"), max_size=12), st.sampled_from(HOSTILE),
                  st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=4).map("".join))
values = st.one_of(texts, texts, floats, st.integers(-10**20, 10**20), st.none())
rare_long = st.one_of(st.just(None), st.just(None), st.just(None), st.just(None), st.sampled_from(LONG))
#: key cells: few distinct values so that rows of a sequence meet again (updates), some of them hostile
plain_keys = st.sampled_from(["P1", "P2", "S1", "PET/CT", "fdg", "R1", "L1", "L2", "1", "1.0", "=P", "-1", "'=P",
                              "P 1", "\u00e9", "a,b", '"q"'])
key_cells = st.one_of(plain_keys, plain_keys, plain_keys, plain_keys,
                      st.sampled_from(["", " L1", "L\\1", "a\nb", "\r"]), texts, floats, st.none())
lesion_cells = st.one_of(key_cells, st.sampled_from(["y" * 64, "z" * 65, "L\u2028", "L\u0085", "L\x07", "L\u00a0"]))
#: extra column names: NETPET's value columns, hostile names, case variants of NETPET's columns
column_names = st.one_of(st.sampled_from([c for c in COLUMNS if c not in KEY]),
                         st.sampled_from([c for c in COLUMNS if c not in KEY]),
                         st.sampled_from(["notes", "Notes", "NOTES", "Region", "SUV_MAX", "\u00c9", "\u00e9", "a,b",
                                          "=cmd", "'=cmd", "-x", "col\nname", "col\rname", "\"q\"", "", " ",
                                          "\u00c5", "\u212b", "cause"]),
                         st.text(st.characters(exclude_characters="\x00"), max_size=6))


@st.composite
def key_pool(draw):
    """One to three keys of plain cells, a third of them with one cell made hostile."""
    pool = []
    for _ in range(draw(st.integers(1, 3))):
        key = [draw(plain_keys) for _ in KEY]
        if draw(st.integers(0, 2)) == 0:
            position = draw(st.integers(0, len(KEY) - 1))
            key[position] = draw(lesion_cells if KEY[position] == "lesion_id" else key_cells)
        pool.append(tuple(key))
    return pool


@st.composite
def batches(draw):
    pool = draw(key_pool())
    out, used = [], set()
    for _ in range(draw(st.integers(1, 5))):
        batch = []
        for _ in range(draw(st.integers(0, 3))):
            key = list(draw(st.sampled_from(pool)))
            if draw(st.integers(0, 14)) == 0:  # a key column left out, or one cell of the key changed
                position = draw(st.integers(0, len(KEY) - 1))
                key[position] = draw(st.sampled_from([None, "", draw(key_cells)]))
            row = {k: v for k, v in zip(KEY, key) if v is not None or draw(st.booleans())}
            for name in draw(st.lists(column_names, max_size=4)):
                if used and draw(st.integers(0, 3)) == 0:  # a case variant of a column written before
                    name = draw(st.sampled_from(sorted(used))).swapcase()
                used.add(name)
                row[name] = draw(values)
            if draw(st.integers(0, 19)) == 0:  # now and then something no table can keep
                row[draw(st.sampled_from(["notes", "x\x00", "\ud800", "region"]))] = draw(st.sampled_from(POISON))
            long = draw(rare_long)
            if long is not None:
                row["warnings"] = long
            batch.append(row)
        out.append(batch)
    return out


def _text(value) -> str:
    """A value as the table holds it: text; None and NaN empty; a float as netpet writes it."""
    if isinstance(value, str):
        return value
    return table_module._text(value)  # (the documented writing of a number: rounded to 1e-6 below 1e15)


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _lesion_id_ok(text: str) -> bool:
    return (len(text) <= LESION_ID_MAX and text == text.strip() and "\\" not in text
            and not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text))


def _ascii_fold(name: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in name)


def _refused(batch, columns, sqlite: bool) -> bool:
    """Whether the documented rules refuse this write (``columns``: the table's columns before it)."""
    for row in batch:
        if any(_text(row.get(k)) == "" for k in KEY if k != "lesion_id"):
            return True
        if not _lesion_id_ok(_text(row.get("lesion_id"))):
            return True
        for name, value in row.items():
            text = _text(value)
            if "\x00" in text or "\x00" in name or not _valid_unicode(text) or not _valid_unicode(name):
                return True
    if sqlite:  # SQLite folds ASCII letters only: "Region" is "region", "\u00c9" is not "\u00e9"
        names = list(dict.fromkeys([*(columns or COLUMNS), *sorted({n for r in batch for n in r} - set(COLUMNS))]))
        folded = [_ascii_fold(n) for n in names]
        if len(set(folded)) != len(folded):
            return True
    return False


def _file_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _check_against_model(table: StudyTable, model) -> None:
    rows = table.read()
    assert len(rows) == len(model), (len(rows), len(model))
    for row in rows:
        key = tuple(row[k] for k in KEY)
        assert key in model, (key, sorted(model))
        expected = model[key]
        for column, value in row.items():
            want = expected.get(column, "")
            assert value == want, (key, column, value[:80], want[:80])
        assert set(expected) <= set(row), sorted(set(expected) - set(row))


def _run(sequence, suffix, outcomes):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "study" + suffix)
        sqlite = suffix == ".sqlite"
        table = StudyTable(path)
        model = {}
        for batch in sequence:
            before = _file_bytes(path)
            columns = table.columns() if os.path.exists(path) else []
            expect_refused = _refused(batch, columns, sqlite)
            try:
                table.upsert(batch)
            except TableError as error:
                message = str(error)
                assert message and "\n" not in message.strip(), message
                assert expect_refused, ("refused a write the rules accept", message)
                outcomes["refused"] += 1
                if before is not None or not sqlite:
                    assert _file_bytes(path) == before, "a refused write changed the table"
                _check_against_model(table, model)
                continue
            except NetpetError as error:  # pragma: no cover - the table raises TableError only
                raise AssertionError(f"{type(error).__name__} instead of TableError: {error}")
            assert not expect_refused, ("accepted a write the rules refuse", batch)
            outcomes["written"] += 1
            for row in batch:
                key = tuple(_text(row.get(k)) for k in KEY)
                cells = model.setdefault(key, {k: v for k, v in zip(KEY, key)})
                cells.update({name: _text(value) for name, value in row.items()})
            _check_against_model(table, model)
        outcomes["final rows"] += len(model)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".sqlite"])
def test_any_sequence_of_upserts_reads_back_its_last_accepted_values(suffix):
    @settings(max_examples=EXAMPLES, deadline=5000, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(sequence=batches())
    def check(sequence):
        _run(sequence, suffix, outcomes)

    outcomes = {"written": 0, "refused": 0, "final rows": 0}
    check()
    # both outcomes are exercised, and tables are not left empty: the round trip is really tested
    assert outcomes["written"] >= 300 and outcomes["refused"] >= 100 and outcomes["final rows"] >= 300, outcomes


def test_the_model_accepts_plain_rows_and_reads_them_back():
    """The property above is not met by refusing everything: plain rows round-trip on both backends."""
    for suffix in (".csv", ".sqlite"):
        outcomes = {"written": 0, "refused": 0, "final rows": 0}
        row = {"patient_id": "P1", "session_id": "S1", "modality": "PET/CT", "tracer": "fdg", "reader": "R1",
               "lesion_id": "L1", "suv_max": 3.25, "notes": "=1+1\r\nsecond line, \"quoted\""}
        _run([[row], [{**row, "suv_max": math.nan, "lesion_id": "L2"}], [{**row, "notes": "x" * 200_000}]], suffix,
             outcomes)
        assert outcomes == {"written": 3, "refused": 0, "final rows": 2}, (suffix, outcomes)


def test_sqlite_keeps_columns_apart_that_differ_in_the_case_of_non_ascii_letters():
    """Found by the property: SQLite folds the case of ASCII letters only, so a table holding a column "\u00c9" may
    gain a column "\u00e9" (a new table took both at once, an existing one refused the second); "Region" beside
    NETPET's "region" stays refused, untouched."""
    row = {"patient_id": "P1", "session_id": "S1", "modality": "PET/CT", "tracer": "fdg", "reader": "R1",
           "lesion_id": "L1"}
    with tempfile.TemporaryDirectory() as folder:
        table = StudyTable(os.path.join(folder, "study.sqlite"))
        table.upsert([{**row, "\u00c9": "upper"}])
        table.upsert([{**row, "\u00e9": "lower", "\u212a": "kelvin", "k": "k"}])
        (read,) = table.read()
        assert (read["\u00c9"], read["\u00e9"], read["\u212a"], read["k"]) == ("upper", "lower", "kelvin", "k")
        before = _file_bytes(table.path)
        with pytest.raises(TableError, match="'Region' to write differs from the table's column 'region' only in case"):
            table.upsert([{**row, "Region": "liver"}])
        assert _file_bytes(table.path) == before


def test_a_new_sqlite_table_refuses_two_columns_differing_in_case_in_one_line():
    """Found by the property in a full run: a new SQLite table given 'col\\nname' and 'COL\\nNAME' at once
    failed inside SQLite, whose message carried the line break into the refusal; now refused before SQLite
    sees it, on one line, and nothing is written."""
    row = {"patient_id": "P1", "session_id": "S1", "modality": "PET/CT", "tracer": "fdg", "reader": "R1",
           "lesion_id": "L1", "col\nname": "", "COL\nNAME": ""}
    with tempfile.TemporaryDirectory() as folder:
        table = StudyTable(os.path.join(folder, "study.sqlite"))
        with pytest.raises(TableError) as caught:
            table.upsert([row])
        message = str(caught.value)
        assert "columns 'COL\\nNAME' and 'col\\nname' to write differ only in case" in message and "\n" not in message
        assert table.read() == []
