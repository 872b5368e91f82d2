"""StudyStats with the reader's own reading: confidence and reader call in the units, retracted findings left out
(with their count), and ``--call-source reader``. Every expected value is derived by hand in the comments; counts are
exact integers (no tolerance), confidences exact small integers."""

from __future__ import annotations

import csv
import json
import math

import pytest

from netpet.cli.main import main
from netpet.stats.analysis import StatsOptions, analyse
from netpet.stats.data import load_study, units_for
from netpet.stats.intervals import StatsError
from Testing.core.test_stats_inputs import finding, write_reference, write_table

REFERENCE = [
    # patient, lesion, region, truth, standard
    ("P1", "L1", "liver", "1", "histopathology"),
    ("P1", "L2", "liver", "1", "follow-up"),
    ("P1", "L3", "bone", "0", "follow-up"),
    ("P2", "L1", "pancreas", "0", "follow-up"),   # uncinate focus
    ("P3", "", "", "0", "follow-up"),              # lesion-free
]
HEADER = ("patient_id", "lesion_id", "region", "truth", "standard")


def reader_study(tmp_path, **changes):
    """P1: L1 SUV-positive, reader positive, 5; L2 SUV-negative, reader equivocal, 3; L3 SUV-positive, reader
    negative, 2, and a second L3 finding retracted (a re-read of the same lesion withdrawn). P2: L1 SUV-positive,
    reader positive, 4. P3: read, nothing found."""
    rows = [
        finding("P1", "L1", "positive", suv=12, reader_call="positive", confidence="5", finding_status=""),
        finding("P1", "L2", "negative", suv=4, reader_call="equivocal", confidence="3", finding_status="active"),
        finding("P1", "L3", "positive", suv=7, reader_call="negative", confidence="2", finding_status=""),
        finding("P1", "L3", "positive", suv=7, session="P1-old", reader_call="positive", confidence="4",
                finding_status="retracted"),
        finding("P2", "L1", "positive", suv=9, reader_call="positive", confidence="4", finding_status=""),
        finding("P3", "", "", reader_call="", confidence="", finding_status=""),
    ]
    for index, change in changes.items():
        rows[int(index[1:])].update(change)
    return write_table(tmp_path / "table.csv", rows), write_reference(tmp_path / "ref.csv", REFERENCE, HEADER)


def test_confidence_and_reader_call_in_the_units(tmp_path):
    table, reference = reader_study(tmp_path)
    study = load_study(table, reference)
    units = units_for(study)
    lesions = units["lesion"].set_index(["patient_id", "lesion_id"])
    # each lesion carries its (active) finding's confidence and reader call; the retracted L3 finding (4, positive)
    # is not among them: L3 keeps its active finding's 2 and negative
    assert lesions.loc[("P1", "L1"), "confidence"] == 5 and lesions.loc[("P1", "L1"), "reader_call"] == "positive"
    assert lesions.loc[("P1", "L2"), "confidence"] == 3 and lesions.loc[("P1", "L2"), "reader_call"] == "equivocal"
    assert lesions.loc[("P1", "L3"), "confidence"] == 2 and lesions.loc[("P1", "L3"), "reader_call"] == "negative"
    patients = units["patient"].set_index("patient_id")
    # patient: the highest confidence of its findings (P1: max(5, 3, 2) = 5; P2: 4); P3 has no finding: 1
    assert patients.loc["P1", "confidence"] == 5 and patients.loc["P2", "confidence"] == 4
    assert patients.loc["P3", "confidence"] == 1
    # patient reader call: the strongest of its findings; P3 none recorded
    assert patients.loc["P1", "reader_call"] == "positive" and patients.loc["P3", "reader_call"] == ""


def test_a_lesion_without_finding_has_confidence_one_and_a_finding_without_confidence_none(tmp_path):
    table, reference = reader_study(tmp_path, r1={"confidence": ""})
    study = load_study(table, reference)
    units = units_for(study)
    lesions = units["lesion"].set_index(["patient_id", "lesion_id"])
    assert math.isnan(lesions.loc[("P1", "L2"), "confidence"])  # a finding without confidence: no value
    # P1's patient confidence is still the max over the findings that have one: max(5, 2) = 5
    assert units["patient"].set_index("patient_id").loc["P1", "confidence"] == 5


def test_retracted_findings_are_excluded_with_a_count(tmp_path):
    table, reference = reader_study(tmp_path)
    study = load_study(table, reference)
    assert study.retracted == 1 and len(study.findings) == 4  # 5 findings, 1 retracted
    assert any(w.startswith("1 retracted finding(s) are kept in the study table but excluded") for w in study.warnings)
    result = analyse(study, StatsOptions(bootstrap=0)).result
    assert result["inputs"]["retracted_findings"] == 1
    assert any("retracted" in w for w in result["inputs"]["warnings"])
    # without the retraction the duplicated L3 finding would be refused (two findings of a lesion in one group)
    table, reference = reader_study(tmp_path, r3={"finding_status": ""})
    with pytest.raises(StatsError, match="duplicated key"):
        load_study(table, reference)


def test_retracting_the_only_finding_of_a_lesion_makes_it_a_negative_call(tmp_path):
    # P2 L1 (benign, SUV-positive) retracted: at lesion level P2 L1 goes from FP to TN; P2 is still read
    table, reference = reader_study(tmp_path, r4={"finding_status": "Retracted"})
    study = load_study(table, reference)
    lesions = units_for(study)["lesion"].set_index(["patient_id", "lesion_id"])
    assert lesions.loc[("P2", "L1"), "call"] == 0 and not lesions.loc[("P2", "L1"), "found"]
    assert lesions.loc[("P2", "L1"), "confidence"] == 1
    assert "P2" in set(units_for(study)["patient"]["patient_id"])


@pytest.mark.parametrize("column, value, expected", [
    ("confidence", "7", "column confidence is '7'; give a whole number from 1 to 5"),
    ("confidence", "4.5", "column confidence is '4.5'"),
    ("reader_call", "maybe", "column reader_call is 'maybe'"),
    ("finding_status", "deleted", "column finding_status is 'deleted'"),
])
def test_bad_reader_cells_are_refused_with_row_and_column(tmp_path, column, value, expected):
    table, reference = reader_study(tmp_path, r1={column: value})
    with pytest.raises(StatsError) as error:
        load_study(table, reference)
    message = str(error.value)
    assert "table.csv line 3: " in message and expected in message and "\n" not in message  # row 1 is line 3


def test_call_source_reader(tmp_path):
    table, reference = reader_study(tmp_path)
    suv = analyse(load_study(table, reference), StatsOptions(bootstrap=0)).result
    reader = analyse(load_study(table, reference, call_source="reader"), StatsOptions(bootstrap=0)).result
    assert suv["options"]["call_source"] == "suv" and reader["options"]["call_source"] == "reader"

    def counts(result, level):
        entry = next(e for e in result["accuracy"] if e["level"] == level and not e["group_by"])
        return [entry[k] for k in ("tp", "fp", "fn", "tn")]

    # SUV calls: L1 +, L2 -, L3 +, P2 L1 + -> malignant L1 TP, L2 FN; benign L3 FP, P2 L1 FP
    assert counts(suv, "lesion") == [1, 2, 1, 0]
    # reader calls: L1 +, L2 equivocal (negative by default), L3 -, P2 L1 + -> TP 1, FN 1, FP 1 (P2 L1), TN 1 (L3)
    assert counts(reader, "lesion") == [1, 1, 1, 1]
    # equivocal counted positive: L2 becomes TP
    positive = analyse(load_study(table, reference, call_source="reader"),
                       StatsOptions(bootstrap=0, equivocal="positive")).result
    assert counts(positive, "lesion") == [2, 1, 0, 1]
    # patients (any positive): P1 (disease) +, P2 (no disease) +, P3 - under both sources -> TP 1, FP 1, TN 1
    assert counts(reader, "patient") == [1, 1, 0, 1]


def test_call_source_reader_refuses_findings_without_reader_call(tmp_path):
    table, reference = reader_study(tmp_path, r1={"reader_call": ""}, r4={"reader_call": ""})
    with pytest.raises(StatsError) as error:
        load_study(table, reference, call_source="reader")
    message = str(error.value)
    assert message.startswith("--call-source reader: 2 finding(s) have no reader_call (first: ")
    assert "table.csv line 3, " in message and "table.csv line 6)" in message and "--call-source suv" in message
    # the SUV source does not need them
    load_study(table, reference)
    with pytest.raises(StatsError, match="Unknown --call-source 'visual'"):
        load_study(table, reference, call_source="visual")


def test_call_source_reader_does_not_read_the_suv_call(tmp_path):
    # a table of visual reads only: the SUV rule's call column empty
    table, reference = reader_study(tmp_path, r0={"call": ""}, r1={"call": ""})
    with pytest.raises(StatsError, match="column call is ''"):
        load_study(table, reference)
    study = load_study(table, reference, call_source="reader")
    lesions = units_for(study)["lesion"].set_index(["patient_id", "lesion_id"])
    assert lesions.loc[("P1", "L1"), "call"] == 1 and lesions.loc[("P1", "L1"), "suv_call"] == ""


def test_cli_call_source_and_confirmed_causes(tmp_path, capsys):
    table, reference = reader_study(tmp_path)
    out = tmp_path / "out"
    base = ["stats", table, "--reference", reference, "--out", str(out), "--bootstrap", "0", "--no-figures", "--json"]
    assert main([*base, "--call-source", "reader"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["options"]["call_source"] == "reader" and result["inputs"]["retracted_findings"] == 1
    assert result["methods"]["endpoints"]["call_source"] == "reader"
    # the reader's calls: lesion TP 1, FP 1, FN 1, TN 1 (test_call_source_reader)
    lesion = next(e for e in result["accuracy"] if e["level"] == "lesion" and not e["group_by"])
    assert [lesion[k] for k in ("tp", "fp", "fn", "tn")] == [1, 1, 1, 1]
    # the reader confirms a cause in the written list; the next run keeps it
    path = out / "false-findings.csv"
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames, list(reader)
    assert {"cause_code", "proposed_cause", "proposed_reason", "cause_confirmed"} <= set(columns)
    # P2 L1 (benign, reader positive): the false positive; no rule applies (region pancreas, no site): OTHER
    row = next(r for r in rows if r["patient_id"] == "P2")
    assert (row["kind"], row["proposed_cause"], row["cause_confirmed"]) == ("false positive", "OTHER", "no")
    row["cause_code"] = "PHYS"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    assert main([*base, "--call-source", "reader"]) == 0
    again = json.loads(capsys.readouterr().out)
    kept = next(r for r in again["false_findings"] if r["patient_id"] == "P2")
    assert (kept["cause_code"], kept["cause_confirmed"], kept["proposed_cause"]) == ("PHYS", "yes", "OTHER")
    # refusal: one sentence, exit code 3 (bad input)
    table, reference = reader_study(tmp_path, r1={"reader_call": ""})
    assert main(["stats", table, "--reference", reference, "--out", str(tmp_path / "o"), "--call-source",
                 "reader"]) == 3
    assert "--call-source reader: 1 finding(s) have no reader_call" in capsys.readouterr().err


def test_a_retracted_finding_with_a_correspondence_row(tmp_path):
    from Testing.core.test_stats_correspondence import (CORR_HEADER, CORRESPONDENCE, REF_HEADER, REFERENCE as CORR_REF,
                                                        TABLE, TABLE_COLUMNS, _counts, _write)

    def files(status_of_a03, indication=False):
        table = [(*row, status_of_a03 if row[5] == "A03" else "") for row in TABLE]
        header, reference = REF_HEADER, CORR_REF
        if indication:
            header, reference = (*REF_HEADER, "indication"), [(*r, "NET staging") for r in CORR_REF]
        return (_write(tmp_path / "table.csv", (*TABLE_COLUMNS, "finding_status"), table),
                _write(tmp_path / "reference.csv", header, reference),
                _write(tmp_path / "corr.csv", CORR_HEADER, CORRESPONDENCE))

    table, reference, corr = files("")
    result = analyse(load_study(table, reference, correspondence=corr), StatsOptions(bootstrap=0)).result
    # PET/CT lesions: L1, L2 TP; the unmatched A03 (track X01 of P1) and C01 (X01 of P3) FP; P2 L1 FN; L3 TN
    assert _counts(result, "lesion", "PET/CT") == [2, 2, 1, 1]
    table, reference, corr = files("retracted")
    study = load_study(table, reference, correspondence=corr)  # A03's correspondence row is skipped, not refused
    result = analyse(study, StatsOptions(bootstrap=0)).result
    # A03 retracted: P1 has no track X01 any more; P3's X01 stays the one false positive
    assert _counts(result, "lesion", "PET/CT") == [2, 1, 1, 1] and study.retracted == 1
    # with indications, the lesion made for an unmatched finding is of its patient's indication and no culprit
    table, reference, corr = files("", indication=True)
    lesions = units_for(load_study(table, reference, correspondence=corr))["lesion"]
    made = lesions[lesions["lesion_id"] == "X01"]
    assert len(made) and set(made["indication"]) == {"NET staging"} and set(made["culprit"]) == {0}
