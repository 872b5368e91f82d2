"""Property-based tests of StudyStats' inputs: reference standards and study tables (issue 11, item 8).

Hypothesis writes a reference standard (patient_id, lesion_id, region, truth, standard and extra
columns, in any order, some missing) and a study table that matches it or not, with hostile
values: truths other than 0/1 and their documented words, empty or duplicated ids, conflicting
truths, unknown regions, calls other than positive/equivocal/negative, scores that read as inf,
NaN, huge, negative or text, "not separable" findings holding volumes, unicode and control
characters, quoted line breaks, a byte-order mark, bytes that are not UTF-8, NUL; and the
analysis' options (group-by columns, regions, the equivocal rule, the interval method). Property:
``load_study`` and the analysis ``netpet stats`` runs (``analyse``, without bootstrap or figures)
either return or raise a NetpetError of one line; any other exception is a failure. When they
return, every accuracy entry's counts are non-negative integers adding up to its units, every
proportion and its interval lie within [0, 1], likelihood ratios are non-negative, and the units
are the ones the inputs define (each patient read in a group, each of their reference lesions).
1,000 examples, each in its own temporary folder.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netpet.errors import NetpetError
from netpet.stats.analysis import StatsOptions, analyse
from netpet.stats.data import REFERENCE_REQUIRED, TABLE_REQUIRED, load_study
from netpet.stats.intervals import CI_METHODS

EXAMPLES = 1000
PROPORTIONS = ("sensitivity", "specificity", "ppv", "npv", "accuracy")
RATIOS = ("lr_pos", "lr_neg")

hostile_text = st.one_of(st.text(max_size=8), st.sampled_from(
    ["", " ", "\n", "a\r\nb", "\u00e9", "\U0001F600", "\u2028", "\x1b[31m", "=1+1", "'", '"', ",", "x" * 300]))
patients = st.one_of(st.sampled_from(["P1", "P2", "P3"]), st.sampled_from(["P1", "P2", "P3"]),
                     st.sampled_from(["", " P1", "p1", "P\u00e9", "P\n1"]), hostile_text)
lesions = st.one_of(st.sampled_from(["L1", "L2", "L3", ""]), st.sampled_from(["L1", "L2", "L3", ""]), hostile_text)
regions = st.one_of(st.sampled_from(["liver", "bone", "lymph node", ""]), st.sampled_from(["liver", "bone", ""]),
                    st.sampled_from(["mars", "Liver", "bone\u00a0", "\u65e5\u672c"]), hostile_text)
truths = st.one_of(st.sampled_from(["1", "0", "1", "0", "malignant", "benign", "yes", "no", "TRUE", " 1 "]),
                   st.sampled_from(["2", "-1", "", "nan", "inf", "0.5", "1.0", "maybe"]), hostile_text)
calls = st.one_of(st.sampled_from(["positive", "negative", "equivocal", "positive", "negative", "1", "0", "POS",
                                   "Yes"]), st.sampled_from(["", "maybe", "nan", "+"]), hostile_text)
scores = st.one_of(st.floats(min_value=0, max_value=50).map(repr), st.floats(min_value=0, max_value=50).map(repr),
                   st.sampled_from(["", "inf", "-inf", "nan", "NaN", "Infinity", "1e10", "1e400", "-5", "n/a",
                                    "0", "1e-300", "  7 ", "1,5"]),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr), hostile_text)
statuses = st.sampled_from(["", "", "separable", "not separable", "not-separable", "Not Separable"])
groups = st.sampled_from([("PET/CT", "dotatate", "R1"), ("PET/MR", "dotatate", "R1"), ("PET/CT", "fdg", "R1"),
                          ("PET/CT", "dotatate", "R2"), ("PET/CT", "fdg", "R\u00e9")])


def _csv_bytes(header, rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """Now and then, the bytes of a file as a careless tool leaves them."""
    kind = draw(st.integers(0, 60))  # (hypothesis favours the ends of a range: the damages lie inside it)
    if kind == 11:
        return b"\xef\xbb\xbf" + data  # a byte-order mark (Excel's "CSV UTF-8")
    if kind == 23:
        return data.replace(b"1", "\u00e9".encode("latin-1"), 1)  # another encoding
    if kind == 31:
        return data.replace(b",", b"\x00", 1)
    if kind == 37:
        return data[:draw(st.integers(0, len(data)))]  # cut short
    if kind == 47:
        return data.replace(b"\r\n", b"\n")
    return data


TABLE_COLUMNS = ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "call", "region",
                 "suv_max", "suv_peak", "suv_mean", "tl_ratio", "tb_ratio", "mtv_ml", "tla", "liver_suv_mean",
                 "krenning", "segmentation_status", "flags", "cohort")
SCORE_COLUMNS = ("suv_max", "suv_peak", "suv_mean", "tl_ratio", "tb_ratio", "mtv_ml", "tla", "liver_suv_mean",
                 "krenning")
#: the hostile values of each column (a cell of a plain file is replaced by one of them)
HOSTILE = {"patient_id": patients, "lesion_id": lesions, "region": regions, "truth": truths, "call": calls,
           "standard": hostile_text, "session_id": hostile_text, "modality": hostile_text, "tracer": hostile_text,
           "reader": hostile_text, "segmentation_status": statuses, "cohort": hostile_text, "indication": hostile_text,
           **{c: scores for c in SCORE_COLUMNS}}


@st.composite
def _mutated(draw, header, rows):
    """The rows with up to three hostile edits: a cell, a duplicated, short or long row, a column left out."""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.integers(0, 9))
        if kind <= 5 and rows:
            row = draw(st.sampled_from(rows))
            column = draw(st.sampled_from(header))
            if header.index(column) < len(row):
                row[header.index(column)] = draw(HOSTILE.get(column, hostile_text))
        elif kind == 6 and rows:
            rows.insert(draw(st.integers(0, len(rows))), list(draw(st.sampled_from(rows))))
        elif kind == 7 and rows:
            row = draw(st.sampled_from(rows))
            if draw(st.booleans()):
                del row[draw(st.integers(0, len(row) - 1)):]
            else:
                row.append("extra")
        elif kind == 8 and draw(st.integers(0, 3)) == 0:
            position = draw(st.integers(0, len(header) - 1))
            del header[position]
            for row in rows:
                del row[position:position + 1]
    return header, rows


@st.composite
def study_files(draw):
    """(reference standard bytes, study table bytes): a plain study of up to three patients, each file
    edited by :func:`_mutated` and now and then damaged as bytes."""
    extras = draw(st.lists(st.sampled_from(["cohort", "indication", "notes", "Region", ""]), max_size=2, unique=True))
    header = draw(st.permutations(list(REFERENCE_REQUIRED) + extras))
    truth_words = st.sampled_from(["1", "0", "1", "0", "malignant", "benign", "yes", "no", "TRUE", " 1 "])
    reference, lesions_of = [], {}
    malignant = {"1", "malignant", "yes", "TRUE", " 1 "}
    for patient in draw(st.lists(st.sampled_from(["P1", "P2", "P3"]), min_size=1, max_size=3, unique=True)):
        lesions_of[patient] = draw(st.lists(st.sampled_from(["L1", "L2", "L3"]), max_size=3, unique=True))
        involved = set()
        for lesion in lesions_of[patient]:
            truth, region = draw(truth_words), draw(st.sampled_from(["liver", "bone", "lymph node"]))
            reference.append({"patient_id": patient, "lesion_id": lesion, "truth": truth, "region": region})
            involved |= {region} if truth in malignant else set()
        if not lesions_of[patient] or draw(st.integers(0, 3)) == 0:  # a patient row: disease or none
            reference.append({"patient_id": patient, "lesion_id": "", "region": "",
                              "truth": "1" if involved or draw(st.integers(0, 3)) == 0 else "0"})
        if draw(st.integers(0, 3)) == 0:  # a region row: proven free, or involved without a lesion id
            region = draw(st.sampled_from(["liver", "bone", "lymph node"]))
            reference.append({"patient_id": patient, "lesion_id": "", "region": region,
                              "truth": "1" if region in involved else draw(st.sampled_from(["0", "1", "benign"]))})
    rows = [[r.get(c, draw(st.sampled_from(["histology", "follow-up"])) if c == "standard" else
             draw(st.sampled_from(["NET", "TIO", ""]))) for c in header] for r in reference]
    header, rows = draw(_mutated(header, rows))
    reference_bytes = draw(damaged(_csv_bytes(header, rows)))

    header = [c for c in TABLE_COLUMNS if c in TABLE_REQUIRED or draw(st.booleans())]
    rows = []
    for group in draw(st.lists(groups, min_size=1, max_size=2, unique=True)):
        modality, tracer, reader = group
        for patient in draw(st.lists(st.sampled_from(sorted(lesions_of)), min_size=1, unique=True)):
            found = draw(st.lists(st.sampled_from(lesions_of[patient]), unique=True)) if lesions_of[patient] else []
            for lesion in found or [""]:
                values = {"patient_id": patient, "session_id": f"{patient}-{modality}", "modality": modality,
                          "tracer": tracer, "reader": reader, "lesion_id": lesion,
                          "call": draw(st.sampled_from(["positive", "negative", "equivocal", "1", "0", "POS", "Yes"]))
                          if lesion else "", "region": draw(st.sampled_from(["liver", "bone", ""])),
                          "segmentation_status": draw(statuses), "flags": "",
                          "cohort": draw(st.sampled_from(["NET", "TIO", ""]))}
                for column in SCORE_COLUMNS:
                    values[column] = repr(draw(st.floats(0.1, 20)))
                rows.append([values[c] for c in header])
    header, rows = draw(_mutated(header, rows))
    return reference_bytes, draw(damaged(_csv_bytes(header, rows)))


options = st.builds(
    StatsOptions, ci=st.sampled_from(CI_METHODS), bootstrap=st.just(0),
    group_by=st.sampled_from([(), (), ("region",), ("cohort",), ("indication",), ("standard",), ("nowhere",)]),
    regions=st.sampled_from([None, None, ["liver"], ["liver", "bone"], ["mars"], []]),
    equivocal=st.sampled_from(["negative", "positive"]),
    roc_variables=st.just(("suv_max",)), agreement_variables=st.just(("tl_ratio",)))


def _one_line(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message.strip() and "Traceback" not in message, message


def _check_measure(name: str, measure) -> None:
    values = [measure.get(k) for k in ("estimate", "ci_low", "ci_high")]
    if measure.get("estimate") is None:
        return
    for value in values:
        assert value is None or (isinstance(value, float) and not math.isnan(value)), (name, measure)
    estimate, low, high = values
    if name in PROPORTIONS:
        assert all(v is None or 0.0 <= v <= 1.0 for v in values), (name, measure)
    else:
        assert all(v is None or v >= 0.0 for v in values), (name, measure)
    if low is not None and high is not None:
        assert low <= estimate + 1e-12 and estimate <= high + 1e-12, (name, measure)


def _check_analysis(study, analysis) -> None:
    result = analysis.result
    for entry in result["accuracy"]:
        counts = [entry[k] for k in ("tp", "fp", "fn", "tn")]
        if entry["tp"] is None:
            assert entry.get("reason"), entry
        else:
            assert all(isinstance(c, int) and c >= 0 for c in counts), entry
            assert sum(counts) == entry["n_units"], entry
            assert 0 <= entry["n_patients"] <= len(study.reference.patients), entry
            assert entry["equivocal_findings"] >= 0 and 0 <= entry["equivocal_units"] <= entry["n_units"], entry
        for name in (*PROPORTIONS, *RATIOS):
            _check_measure(name, entry[name])
    for level, units in analysis.units.items():
        if len(units):
            assert set(units["truth"].unique()) <= {0, 1} and set(units["call"].unique()) <= {0, 1}, level
    # the units are the inputs': a patient unit per patient read in each group, a lesion unit per reference
    # lesion of those patients
    lesions_per_patient = study.reference.lesions.groupby("patient_id").size().to_dict()
    for entry in result["accuracy"]:
        if entry["group_by"] or entry["tp"] is None or entry["level"] == "region":
            continue
        read = study.reads
        read = read[(read["modality"] == entry["modality"]) & (read["tracer"] == entry["tracer"])
                    & (read["reader"] == entry["reader"])]
        patients_read = set(read["patient_id"])
        expected = (len(patients_read) if entry["level"] == "patient"
                    else sum(lesions_per_patient.get(p, 0) for p in patients_read))
        assert entry["n_units"] == expected, (entry["level"], entry["n_units"], expected)


def _run(reference: bytes, table: bytes, chosen: StatsOptions, outcomes, raise_refusal: bool = False) -> None:
    with tempfile.TemporaryDirectory() as folder:
        reference_path = os.path.join(folder, "reference.csv")
        table_path = os.path.join(folder, "table.csv")
        with open(reference_path, "wb") as handle:
            handle.write(reference)
        with open(table_path, "wb") as handle:
            handle.write(table)
        try:
            study = load_study(table_path, reference_path, chosen.group_by, chosen.regions)
            analysis = analyse(study, chosen)
        except NetpetError as error:
            if raise_refusal:
                raise
            _one_line(error)
            outcomes["refused"] += 1
            return
        outcomes["analysed"] += 1
        _check_analysis(study, analysis)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's notes on empty groups; results are checked instead
def test_any_reference_and_table_is_analysed_within_bounds_or_refused_in_one_sentence():
    @settings(max_examples=EXAMPLES, deadline=5000, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(files=study_files(), chosen=options)
    def check(files, chosen):
        _run(*files, chosen, outcomes)

    outcomes = {"analysed": 0, "refused": 0}
    check()
    # both outcomes are exercised: neither "refuse everything" nor "analyse everything" passes
    assert outcomes["analysed"] >= 100 and outcomes["refused"] >= 100, outcomes


@pytest.mark.parametrize("reference,table,expected", [
    # found by the property: an id holding a line break (a quoted cell) broke the message over two lines
    ([["P\n1", "L1", "liver", "1", "histology"], ["P\n1", "L1", "liver", "0", "histology"]], None,
     "patient P\\n1 lesion L1 is also on row 2"),
    ([["P1", "L\u20282", "bone", "1", "histology"], ["P1", "", "", "0", "follow-up"]], None,
     "patient P1 is 0 (no disease) but L\\u20282 are malignant"),
    ([["P1", "", "b\rone", "0", "follow-up"], ["P1", "L1", "b\rone", "1", "histology"]], None,
     "region b\\rone of patient P1 is 0 but its lesion(s) L1"),
    ([["P1", "L1", "liver", "1", "histology"]], [["P\x1b[31m", "L1"]],
     "column patient_id holds a control character (P\\x1b[31m)"),
    ([["P1", "L1", "liver", "1", "histology"]], [["P1", "L\n2"]], "column lesion_id holds a control character (L\\n2)"),
    ([["P1", "L1", "liver", "1", "histology"]], [["P1", "L1", "S\n1"], ["P1", "L1", "S2"]],
     "column session_id holds a control character (S\\n1)"),
])
def test_refusals_naming_a_value_of_the_files_stay_on_one_line(reference, table, expected):
    """The reference standard's and the table's own values are shown escaped in a refusal (netpet.errors.printable):
    a line break, line separator or escape sequence in an id cannot break the one-line message or act on a terminal."""
    header = ["patient_id", "lesion_id", "region", "truth", "standard"]
    table_rows = [[p, s[0] if s else "S1", "PET/CT", "fdg", "R1", lesion, "positive"]
                  for p, lesion, *s in (table or [["P1", "L1"]])]
    with pytest.raises(NetpetError) as caught:
        _run(_csv_bytes(header, reference), _csv_bytes(TABLE_REQUIRED, table_rows), StatsOptions(bootstrap=0),
             {"analysed": 0, "refused": 0}, raise_refusal=True)
    message = str(caught.value)
    assert expected in message and "\n" not in message and "\r" not in message and "\x1b" not in message, message
