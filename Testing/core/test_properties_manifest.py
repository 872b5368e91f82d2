"""Property-based tests of ``netpet quantify``'s manifests (issue 11, item 8).

Hypothesis writes manifest CSV files: plain rows (a small SUV image with one hot blob and a
liver-like block, seeds on the blob, a liver point) mixed with hostile ones: unknown, missing,
duplicated or case-changed columns; ids with line breaks, backslashes, over 64 characters,
surrounding spaces; seeds that are NaN, infinite, huge, empty, text, ``"1,2"`` or outside the
image; a liver point that is none; one lesion id twice in a session; series that do not exist,
relative paths that lead elsewhere, folders, a folder named like an image, a damaged .nrrd, a
file named .nii.gz that is none, an all-NaN image, a PET DICOM folder with SUV overrides good and
bad; unknown methods and backgrounds; and as bytes: a byte-order mark, UTF-16, Latin-1, NUL,
CR-only line ends, a cut-short file, a cell over the CSV reader's limit. The whole batch runs
(``run_manifest``, one process) into a fresh table.

Property: the run either raises a NetpetError of one line (a manifest that is not readable as a
whole: exit code 3), or returns; then every problem is one line naming its manifest row(s), the
documented batch report (exit code 6); every row of the manifest is accounted for: its lesion is
in the table, or its row is named in a problem (a session read without findings: its patient is
in the table, or its row is named, or the reader gave findings in that session); the table reads
back, with no more rows than were written.
Any other exception is a failure. 1,000 examples; a row that reaches segmentation costs about
20 ms on this image.
"""

from __future__ import annotations

import codecs
import copy
import csv
import io
import os
import re
import tempfile

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netpet.dicom import dro, writer
from netpet.errors import NetpetError
from netpet.quant import pipeline
from netpet.quant.pipeline import MANIFEST_OVERRIDES, read_manifest, run_manifest
from netpet.quant.table import StudyTable

EXAMPLES = 1000
#: the SUV image: 24^3 voxels of 6 mm centred on the origin (RAS), a hot blob at the centre, a liver-like block
SIZE, SPACING = 24, 6.0
BLOB = ("0", "0", "0")
LIVER = ("-45", "-45", "45")  # RAS mm: inside the uniform block of SUV 2 (LPS x, y = +45, z = +45)
OUTSIDE = ("500", "0", "0")
OPTIONAL = ("session_id", "liver_r", "liver_a", "liver_s", "region", "lesion_type", "method", "modality", "tracer",
            "background", "background_r", "background_a", "background_s", "background_diameter_mm", "series_uid",
            "dicom_patient_id", *MANIFEST_OVERRIDES)
UNKNOWN_COLUMNS = ("notes", "Patient_ID", "seed_r ", "", "lesion id", "=cmd", "\u00e9tiquette")


def _write_image(path, values, spacing=SPACING):
    image = sitk.GetImageFromArray(np.asarray(values, dtype=np.float32))
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin((-(SIZE - 1) * spacing / 2,) * 3)
    sitk.WriteImage(image, str(path))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The inputs a manifest may name, in one folder beside it (never written by a run)."""
    root = tmp_path_factory.mktemp("manifest-inputs")
    rng = np.random.default_rng(11)
    values = 1.0 + rng.normal(0.0, 0.05, (SIZE,) * 3)
    values[16:23, 16:23, 16:23] = 2.0 + rng.normal(0.0, 0.05, (7, 7, 7))  # liver-like: [z, y, x] near +45 mm LPS
    centre = SIZE // 2
    values[centre - 2:centre + 1, centre - 2:centre + 1, centre - 2:centre + 1] = 9.0  # the blob, at the origin
    _write_image(root / "img.nrrd", values)
    _write_image(root / "nan.nrrd", np.full((SIZE,) * 3, np.nan))
    (root / "corrupt.nrrd").write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 10 10\n\n\x00\x01")
    (root / "fake.nii.gz").write_bytes(b"no image, whatever its name says")
    (root / "notes.txt").write_text("nothing here\n")
    (root / "folder").mkdir()
    (root / "folder.nrrd").mkdir()
    (root / "sub").mkdir()
    pet, _ = dro.build(dro.Case(seed="manifest-properties", shape=(4, 8, 8)))
    writer.save_datasets(pet, str(root / "dicom" / "pet"))
    bare = copy.deepcopy(pet)
    for ds in bare:
        del ds.PatientWeight
    writer.save_datasets(bare, str(root / "noweight" / "pet"))
    return root


# -- cells ------------------------------------------------------------------------------------------

hostile = st.one_of(st.text(max_size=6), st.sampled_from(
    ["", " ", "\n", "a\r\nb", "\r", "\u2028", "\x1b[31m", "\\", '"', ",", "1,2", "=1+1", "x" * 70, "\u00e9"]))
numbers = st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e308", "-1e400", "", "abc", "1,2", " 3 ", "0x10", "1e-320",
                                     "-0", "500", "-500"]),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr), hostile)
SERIES = {"image": "img.nrrd", "absolute": None, "dot": "./sub/../img.nrrd", "missing": "missing.nrrd",
          "elsewhere": "../img.nrrd", "folder": "folder", "folder-image": "folder.nrrd", "corrupt": "corrupt.nrrd",
          "fake": "fake.nii.gz", "text": "notes.txt", "nan": "nan.nrrd", "dicom": "dicom/pet",
          "noweight": "noweight/pet", "empty": ""}
plain = {
    "patient_id": st.sampled_from(["P1", "P2"]), "session_id": st.sampled_from(["S1", "S2"]),
    "reader": st.sampled_from(["R1", "R2"]), "lesion_id": st.sampled_from(["L1", "L2", "L3"]),
    "region": st.sampled_from(["liver", "bone", ""]), "lesion_type": st.sampled_from(["", "primary"]),
    "method": st.sampled_from(["", "", "adaptive", "fixed41"]), "modality": st.just("PET/CT"),
    "tracer": st.sampled_from(["fdg", "dotatate"]), "background": st.sampled_from(["", "", "shell"]),
}
bad = {
    "patient_id": hostile, "session_id": hostile, "reader": hostile, "modality": hostile, "tracer": hostile,
    "lesion_id": st.one_of(hostile, st.sampled_from(["L\n1", " L1", "L\\1", "L" * 65, "L1"])),
    "method": st.sampled_from(["bogus", "ADAPTIVE", "gradient", "liver-max"]),
    "background": st.sampled_from(["bone", "Bone", "point", "x"]),
    "background_diameter_mm": numbers, "series_uid": st.sampled_from(["1.2.3", "", "x"]),
    "dicom_patient_id": st.sampled_from(["nobody", ""]), "weight_kg": numbers, "height_m": numbers,
    "dose_mbq": numbers, "half_life_s": numbers, "sex": st.sampled_from(["M", "F", "O", "x", ""]),
    "injection_time": st.sampled_from(["09:00:00", "2024-03-05T09:02:31", "25:00", "09:00+01:00", "x", ""]),
}


@st.composite
def manifests(draw, root):
    header = list(pipeline.MANIFEST_REQUIRED) + draw(st.lists(st.sampled_from(OPTIONAL), max_size=8, unique=True))
    for column in ("session_id", "liver_r", "liver_a", "liver_s", "modality", "tracer"):  # mostly complete rows
        if column not in header and draw(st.integers(0, 19)):
            header.append(column)
    if draw(st.integers(0, 19)) == 0:
        header.remove(draw(st.sampled_from(header)))  # a column missing (a required one, now and then)
    header += draw(st.lists(st.sampled_from(UNKNOWN_COLUMNS), max_size=2))  # unknown columns, maybe twice
    if draw(st.integers(0, 19)) == 0 and header:
        header.append(draw(st.sampled_from(header)))  # a column given twice
    header = draw(st.permutations(header))
    tracer = draw(plain["tracer"])  # the manifest's tracer; now and then a row names another
    rows = []
    for _ in range(draw(st.integers(0, 3)) or draw(st.integers(0, 1))):  # (few manifests without rows)
        series = draw(st.sampled_from(["image"] * 30 + sorted(SERIES)))
        values = {column: draw(strategy) for column, strategy in plain.items()}
        values["tracer"] = tracer if draw(st.integers(0, 9)) else values["tracer"]
        values["series"] = str(root / "img.nrrd") if series == "absolute" else SERIES[series]
        values.update(zip(("seed_r", "seed_a", "seed_s"), draw(st.sampled_from([BLOB] * 6 + [OUTSIDE, LIVER]))))
        values.update(zip(("liver_r", "liver_a", "liver_s"), LIVER if draw(st.integers(0, 9)) else ("", "", "")))
        if draw(st.integers(0, 5)) == 0:  # a session read without findings
            values.update({"lesion_id": "", "seed_r": "", "seed_a": "", "seed_s": ""})
        for _ in range(draw(st.integers(0, 2))):  # hostile cells
            column = draw(st.sampled_from(sorted(set(header) | {"seed_r", "seed_a", "seed_s"})))
            strategy = bad.get(column, numbers if column[-2:] in ("_r", "_a", "_s") else hostile)
            values[column] = draw(strategy)
        rows.append([values.get(column, "") for column in header])
    if rows and draw(st.integers(0, 7)) == 0:
        rows.append(list(draw(st.sampled_from(rows))))  # a row twice: one lesion id twice in a session
    if rows and draw(st.integers(0, 14)) == 0:
        row = draw(st.sampled_from(rows))
        row[:] = row[:draw(st.integers(0, len(row)))] if draw(st.booleans()) else row + ["extra"]
    text = io.StringIO()
    csv.writer(text, lineterminator=draw(st.sampled_from(["\r\n", "\r\n", "\n", "\r"]))).writerows([header, *rows])
    data = text.getvalue().encode("utf-8", "surrogatepass")
    kind = draw(st.integers(0, 80))  # (hypothesis favours the ends of a range: the damages lie inside it)
    if kind == 11:
        data = codecs.BOM_UTF8 + data
    elif kind == 17:
        data = codecs.BOM_UTF16_LE + text.getvalue().encode("utf-16-le", "surrogatepass")
    elif kind == 23:
        data = data.replace(b"1", "\u00e9".encode("latin-1"), 1)
    elif kind == 29:
        data = data.replace(b",", b"\x00", 1)
    elif kind == 37:
        data = data[:draw(st.integers(0, len(data)))]
    elif kind == 41:
        data += b'P1,S1,img.nrrd,R1,"' + b"x" * 140_000 + b'"\r\n'
    elif kind == 47:
        data = b""
    return data


# -- the property -----------------------------------------------------------------------------------

def _words(text):
    return " ".join(str(text).split())


def _named(errors):
    """The manifest row numbers the problems name."""
    numbers = set()
    for error in errors:
        match = re.match(r"manifest rows? ([\d, ]+)", error)
        assert match, f"a problem that names no manifest row: {error!r}"
        numbers.update(int(n) for n in re.findall(r"\d+", match.group(1)))
    return numbers


def _run(root, data, outcomes):
    manifest = root / "manifest.csv"
    manifest.write_bytes(data)
    with tempfile.TemporaryDirectory() as folder:
        table_path = os.path.join(folder, "study.csv")
        try:
            result = run_manifest(str(manifest), table_path, jobs=1)
        except NetpetError as error:
            message = str(error)
            assert message and "\n" not in message.strip() and "Traceback" not in message, message
            outcomes["refused (exit 3)"] += 1
            return
        assert isinstance(result["rows"], int) and result["rows"] >= 0, result
        for error in result["errors"]:
            assert isinstance(error, str) and error and "\n" not in error.strip(), error
        table = StudyTable(table_path).read()
        assert len(table) <= result["rows"], (len(table), result["rows"])
        named = _named(result["errors"])
        lesions = {(r["patient_id"], r["lesion_id"]): r for r in table}
        patients = {r["patient_id"] for r in table}
        rows = read_manifest(str(manifest))
        session = ("patient_id", "session_id", "series", "reader")
        with_findings = {tuple(r.values.get(c) for c in session) for r in rows if r.values.get("lesion_id")}
        for row in rows:
            values = row.values
            if row.number in named:
                continue
            if values.get("lesion_id"):
                written = lesions.get((values.get("patient_id"), values["lesion_id"]))
                assert written is not None, (
                    f"manifest row {row.number} is neither in the table nor named in a problem", values, result)
                for column in ("modality", "tracer"):  # the row's own labels, never another row's
                    if values.get(column):
                        assert _words(written[column]) == _words(values[column]), (row.number, column, written[column],
                                                                                    values[column])
            elif tuple(values.get(c) for c in session) not in with_findings:  # (else its findings' rows stand for it)
                assert values.get("patient_id") in patients, (
                    f"manifest row {row.number} (a read without findings) is neither in the table nor named", values,
                    result)
        outcomes["partly done (exit 6)" if result["errors"] else "done (exit 0)"] += 1
        outcomes["table rows"] += len(table)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's notes on an all-NaN image; its refusal is checked
def test_any_manifest_is_quantified_or_its_bad_rows_reported_in_one_line_each(inputs):
    @settings(max_examples=EXAMPLES, deadline=5000, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=manifests(inputs))
    def check(data):
        _run(inputs, data, outcomes)

    outcomes = {"refused (exit 3)": 0, "partly done (exit 6)": 0, "done (exit 0)": 0, "table rows": 0}
    check()
    # every outcome is exercised: neither "refuse everything" nor "skip every row" passes
    assert outcomes["refused (exit 3)"] >= 50 and outcomes["partly done (exit 6)"] >= 200, outcomes
    assert outcomes["done (exit 0)"] >= 100 and outcomes["table rows"] >= 150, outcomes


# -- regressions found by the property ----------------------------------------------------------------

def _manifest_bytes(rows, header=("patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a",
                                  "seed_s", "liver_r", "liver_a", "liver_s", "modality", "tracer")):
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows([header, *rows])
    return text.getvalue().encode("utf-8")


def _plain_row(lesion="L1", tracer="fdg", session="S1"):
    return ["P1", session, "img.nrrd", "R1", lesion, *BLOB, *LIVER, "PET/CT", tracer]


def _quantify(inputs, rows):
    (inputs / "manifest.csv").write_bytes(_manifest_bytes(rows))
    with tempfile.TemporaryDirectory() as folder:
        result = run_manifest(str(inputs / "manifest.csv"), os.path.join(folder, "study.csv"), jobs=1)
        return result, StudyTable(os.path.join(folder, "study.csv")).read()


def test_a_lesion_id_that_is_not_ascii_skips_its_row_in_one_sentence(inputs):
    """A non-ASCII lesion id crashed the batch (UnicodeEncodeError from the .seg.nrrd header, which pynrrd writes
    as ASCII); an id against the lesion-id rules skipped every row of its session. Each is its row's problem now."""
    result, table = _quantify(inputs, [_plain_row("L\u00e4sion1"), _plain_row("L\\2", session="S2"),
                                       _plain_row("L3", session="S2")])
    assert [r["lesion_id"] for r in table] == ["L3"], table
    assert result["errors"] == [
        "manifest row 2: the lesion id 'L\u00e4sion1' is not ASCII, which the segmentation file (.seg.nrrd) cannot "
        "hold; write it with ASCII letters, digits and signs.",
        "manifest row 3: The lesion id 'L\\\\2' holds a backslash, the value separator of DICOM; give ids of at most 64 "
        "characters without control characters, backslashes or surrounding spaces."], result["errors"]


def test_rows_of_one_session_naming_different_tracers_or_modalities_are_refused(inputs):
    """The session's labels came from its first row: a second row's tracer (or modality) was silently replaced by
    the first's, and its lesion written under the other tracer. Rows that disagree are named now, none written."""
    result, table = _quantify(inputs, [_plain_row("L1"), _plain_row("L2", tracer="dotatate")])
    assert table == [] and result["errors"] == [
        "manifest rows 2, 3: column tracer differs between the rows of one session ('dotatate', 'fdg'); give one "
        "value on every row (for a DICOM series, or leave it empty on every row)."], result
    row = _plain_row("L2")
    row[-2] = ""
    result, table = _quantify(inputs, [_plain_row("L1"), row])
    assert table == [] and "column modality differs between the rows of one session ('', 'PET/CT')" in \
        result["errors"][0], result
    result, table = _quantify(inputs, [_plain_row("L1"), _plain_row("L2", tracer="dotatate", session="S2")])
    assert sorted((r["lesion_id"], r["tracer"]) for r in table) == [("L1", "fdg"), ("L2", "dotatate")], result
