"""``netpet record / retract / restore / audit / reading-list / adjudicate`` end to end (issue 14): what each
writes into the table and its audit trail (text, exact), the exit codes and one-sentence errors of bad input,
CSV and SQLite alike."""

from __future__ import annotations

import csv
import json

import pytest

from netpet.cli.main import main
from netpet.quant.table import StudyTable


def finding(patient="P1", session="CT1", modality="PET/CT", reader="R1", lesion="L01", **values):
    return {"patient_id": patient, "session_id": session, "modality": modality, "tracer": "dotatate", "reader": reader,
            "lesion_id": lesion, **values}


@pytest.fixture(params=["study.csv", "study.sqlite"])
def table(request, tmp_path):
    path = str(tmp_path / request.param)
    rows = []
    for p in range(4):
        for session, modality in ((f"CT{p}", "PET/CT"), (f"MR{p}", "PET/MR")):
            for reader in ("R1", "R2"):
                rows.append(finding(f"P{p}", session, modality, reader, "L01", call="positive", suv_max=9.5,
                                    region="pancreas"))
                rows.append(finding(f"P{p}", session, modality, reader, "L02", region="liver",
                                    call="positive" if reader == "R1" else "negative"))
    StudyTable(path).upsert(rows)
    return path


KEY = ["--patient", "P1", "--session", "CT1", "--reader", "R1", "--lesion", "L02"]


def _one_line_error(capsys, code_expected, code):
    captured = capsys.readouterr()
    assert code == code_expected, captured
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_record_retract_restore_and_the_trail(table, capsys):
    assert main(["record", "--table", table, *KEY, "--call", "negative", "--confidence", "2", "--correlate", "benign",
                 "--sstr-rads", "sstr-rads 2a", "--why", "haemangioma on MR"]) == 0
    assert capsys.readouterr().out == ("Recorded for the finding patient P1, session CT1, PET/CT, dotatate, reader R1, "
                                       "lesion L02 (4 changes in the audit trail).\n")
    assert main(["record", "--table", table, *KEY, "--call", "NEGATIVE"]) == 0  # the same value: nothing written
    assert "already held these values; nothing was written" in capsys.readouterr().out
    assert main(["retract", "--table", table, *KEY, "--why", "the same lesion as L01", "--by", "Dr B"]) == 0
    capsys.readouterr()
    row = next(r for r in StudyTable(table).read() if r["patient_id"] == "P1" and r["session_id"] == "CT1"
               and r["reader"] == "R1" and r["lesion_id"] == "L02")
    assert (row["reader_call"], row["confidence"], row["anatomic_correlate"], row["sstr_rads"], row["finding_status"],
            row["retraction_reason"]) == ("negative", "2", "benign", "2A", "retracted", "the same lesion as L01")
    assert main(["restore", "--table", table, *KEY, "--why", "checked again"]) == 0
    assert main(["restore", "--table", table, *KEY]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == ("The finding patient P1, session CT1, PET/CT, dotatate, reader "
                                                        "R1, lesion L02 is not retracted; nothing was written.")
    assert main(["audit", "--table", table, "--patient", "P1", "--session", "CT1", "--reader", "R1", "--lesion", "L02",
                 "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["who"], e["action"], e["column"], e["old"], e["new"], e["why"]) for e in entries] == [
        ("R1", "insert", "region", "", "liver", ""),
        ("R1", "insert", "call", "", "positive", ""),
        ("R1", "update", "reader_call", "", "negative", "haemangioma on MR"),
        ("R1", "update", "confidence", "", "2", "haemangioma on MR"),
        ("R1", "update", "anatomic_correlate", "", "benign", "haemangioma on MR"),
        ("R1", "update", "sstr_rads", "", "2A", "haemangioma on MR"),
        ("Dr B", "retract", "finding_status", "", "retracted", "the same lesion as L01"),
        ("Dr B", "retract", "retraction_reason", "", "the same lesion as L01", "the same lesion as L01"),
        ("R1", "restore", "finding_status", "retracted", "active", "checked again"),
        ("R1", "restore", "retraction_reason", "the same lesion as L01", "", "checked again"),
    ]
    assert main(["audit", "--table", table, "--action", "retract"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split("  ", 1)[1] == (
        "Dr B  retract  P1/CT1/PET/CT/dotatate/R1/L02  finding_status: (empty) -> retracted  why: the same lesion as L01")


def test_region_and_lesion_type_are_relabelled_with_the_trail(table, capsys):
    assert main(["record", "--table", table, *KEY, "--region", "  liver   segment 7 ", "--lesion-type", "metastasis",
                 "--why", "seen on MR"]) == 0
    assert "(2 changes in the audit trail)" in capsys.readouterr().out
    row = next(r for r in StudyTable(table).read() if r["patient_id"] == "P1" and r["session_id"] == "CT1"
               and r["reader"] == "R1" and r["lesion_id"] == "L02")
    assert (row["region"], row["lesion_type"], row["call"]) == ("liver segment 7", "metastasis", "positive")
    changes = [(e["column"], e["old"], e["new"], e["why"]) for e in StudyTable(table).audit()
               if e["action"] == "update"]
    assert changes == [("region", "liver", "liver segment 7", "seen on MR"), ("lesion_type", "", "metastasis",
                                                                             "seen on MR")]


@pytest.mark.parametrize("arguments, code, message", [
    (["record", *KEY[:-1], "L09", "--call", "positive"], 3,
     "netpet: error: The study table {table} has no finding patient P1, session CT1, reader R1, lesion L09; reader R1's "
     "lesions in this session: L01, L02."),
    (["record", "--patient", "P7", *KEY[2:], "--call", "positive"], 3,
     "netpet: error: The study table {table} has no finding patient P7, session CT1, reader R1, lesion L02: it holds no "
     "session CT1 of patient P7 (its patients: P0, P1, P2, P3)."),
    (["record", *KEY, "--confidence", "7"], 2,
     "netpet: error: --confidence is '7'; give a whole number from 1 to 5 (1 definitely benign; 2 probably benign; 3 "
     "indeterminate; 4 probably malignant; 5 definitely malignant), or leave it empty."),
    (["record", *KEY, "--call", "likely"], 2,
     "netpet: error: --call is 'likely'; write one of positive, equivocal, negative (the reader's visual call), or "
     "leave it empty."),
    (["record", *KEY, "--sstr-rads", "6"], 2,
     "netpet: error: --sstr-rads is '6'; write one of 1A, 1B, 2A, 2B, 3A, 3B, 3C, 3D, 4, 5 (SSTR-RADS 1.0, Werner et "
     "al. 2018), or leave it empty."),
    (["record", *KEY], 2, "netpet: error: give at least one of --call, --confidence, --correlate, --sstr-rads, "
     "--region, --lesion-type"),
    (["record", *KEY, "--region", "liver\nsegment 7"], 3,
     "netpet: error: --region/--lesion-type: the region 'liver\\nsegment 7' has a control character (line break, "
     "tab); give it as one line of words."),
    (["retract", *KEY, "--why", "  "], 2, "netpet: error: --why is empty; say why the finding is retracted"),
    (["adjudicate", "--readers", "R1,R2"], 2,
     "netpet: error: give --readers R1,R2 and --out adjudication.csv to list the disagreements, or --apply "
     "adjudication.csv --by NAME to write the consensus"),
    (["adjudicate", "--apply", "x.csv"], 2,
     "netpet: error: --apply needs --by NAME: the adjudicator, recorded in the audit trail"),
    (["adjudicate", "--readers", "R1", "--out", "{folder}/a.csv"], 3,
     "netpet: error: Adjudication compares two or more different readers; --readers gave R1."),
    (["reading-list", "--readers", " , ", "--seed", "1", "--out", "{folder}/lists"], 2,
     "netpet: error: --readers is empty; give the reader ids, comma-separated (R1,R2)"),
])
def test_bad_input_is_one_sentence_with_its_exit_code(table, tmp_path, capsys, arguments, code, message):
    before = (StudyTable(table).read(), StudyTable(table).audit())
    arguments = [a.replace("{folder}", str(tmp_path)) for a in arguments]
    line = _one_line_error(capsys, code, main([arguments[0], "--table", table, *arguments[1:]]))
    assert line == message.replace("{table}", table)
    assert (StudyTable(table).read(), StudyTable(table).audit()) == before


def test_an_ambiguous_finding_names_the_choices_exit_4(tmp_path, capsys):
    path = str(tmp_path / "study.csv")
    StudyTable(path).upsert([finding(), {**finding(), "tracer": "fdg"}])
    code = main(["record", "--table", path, *KEY[:-1], "L01", "--call", "positive"])
    assert _one_line_error(capsys, 4, code) == (
        f"The study table {path} has 2 findings patient P1, session CT1, reader R1, lesion L01 (modality and tracer: "
        "PET/CT dotatate, PET/CT fdg); give the modality and the tracer too.")
    assert main(["record", "--table", path, *KEY[:-1], "L01", "--tracer", "fdg", "--call", "positive"]) == 0
    assert [r["reader_call"] for r in StudyTable(path).read()] == ["", "positive"]


def test_retract_needs_why_and_a_missing_or_foreign_table_is_refused(tmp_path, capsys):
    assert main(["retract", "--table", "x.csv", *KEY]) == 2
    assert "the following arguments are required: --why" in capsys.readouterr().err
    line = _one_line_error(capsys, 3, main(["record", "--table", str(tmp_path / "none.csv"), *KEY, "--call", "positive"]))
    assert line == f"netpet: error: The study table {tmp_path / 'none.csv'} does not exist."
    (tmp_path / "other.csv").write_text("name,score\nalice,3\n")
    line = _one_line_error(capsys, 3, main(["audit", "--table", str(tmp_path / "other.csv")]))
    assert "is not a NETPET study table" in line


def test_reading_lists_from_the_table_and_a_manifest(table, tmp_path, capsys):
    out = tmp_path / "lists"
    assert main(["reading-list", "--table", table, "--readers", "R1,R2", "--seed", "42", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("R1: 8 sessions in 2 round(s), least gap ")
    first = (out / "reading-list-R1.csv").read_bytes()
    for secret in ("pancreas", "liver", "9.5", "positive", "negative", "L01", "L02", ",R2,"):
        assert secret.encode() not in first
    # reproducible: the same seed writes the same bytes
    assert main(["reading-list", "--table", table, "--readers", "R1,R2", "--seed", "42", "--out", str(out)]) == 0
    assert (out / "reading-list-R1.csv").read_bytes() == first
    capsys.readouterr()
    record = json.loads((out / "reading-lists.json").read_text())
    assert (record["seed"], record["min_gap"], record["washout_days"]) == (42, 3, 28)
    manifest = tmp_path / "sessions.csv"
    manifest.write_text("patient_id,session_id,series\nA,CT,dicom/A/ct\nA,MR,dicom/A/mr\nB,CT,dicom/B/ct\n")
    assert main(["reading-list", "--manifest", str(manifest), "--readers", "R9", "--seed", "1", "--gap", "1",
                 "--washout-days", "14", "--out", str(tmp_path / "m"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["readers"][0]["sessions"] == 3 and record["readers"][0]["rounds"] == 2
    with open(tmp_path / "m" / "reading-list-R9.csv", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert [r["round"] for r in listed] == ["1", "1", "2"] and listed[2]["not_before_day"] == "14"
    assert [r["patient_id"] for r in listed] == ["A", "B", "A"]  # never back to back where it can be avoided
    assert record["readers"][0]["gap_shortfalls"] == 0 and record["readers"][0]["least_gap"] == 1
    assert main(["reading-list", "--table", table, "--manifest", str(manifest), "--readers", "R1", "--seed", "1",
                 "--out", str(out)]) == 2


def test_adjudication_round_trip(table, tmp_path, capsys):
    out = tmp_path / "adjudication.csv"
    assert main(["adjudicate", "--table", table, "--readers", "R1,R2", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"8 finding(s) where R1, R2 disagree -> {out}\n"
    with open(out, newline="") as handle:
        items = list(csv.DictReader(handle))
    assert {(i["finding_id"], i["disagreement"]) for i in items} == {("L02", "call R1 positive, R2 negative")}
    for item in items[:5]:
        item["consensus_reader_call"], item["consensus_confidence"] = "negative", "2"
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(items[0]))
        writer.writeheader()
        writer.writerows(items)
    assert main(["adjudicate", "--table", table, "--apply", str(out)]) == 2  # no adjudicator named
    capsys.readouterr()
    assert main(["adjudicate", "--table", table, "--apply", str(out), "--by", "Dr A"]) == 6  # 3 left undecided
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "5 consensus finding(s) written (5 new, 0 updated) by Dr A."
    assert len(text) == 4 and all(line.startswith("not decided (no consensus value): ") for line in text[1:])
    consensus = [r for r in StudyTable(table).read() if r["reader"] == "consensus"]
    assert len(consensus) == 5 and {(r["reader_call"], r["confidence"]) for r in consensus} == {("negative", "2")}
    entries = StudyTable(table).audit(action="adjudicate")
    assert len(entries) == 15 and {e["who"] for e in entries} == {"Dr A"}
    assert entries[0]["why"] == ("R1 L02: call positive, reader_call (none), confidence (none); R2 L02: call negative, "
                                 "reader_call (none), confidence (none) (adjudication.csv)")


def test_reading_list_from_a_dicom_folder_keys_sessions_as_quantify_does(tmp_path, capsys):
    from netpet import schema
    from netpet.dicom import dro, writer
    from netpet.dicom.index import index_tree

    for name in ("a", "b"):
        datasets, _ = dro.build(dro.Case(seed=f"reading-{name}", shape=(4, 8, 8)))
        writer.save_datasets(datasets, str(tmp_path / "dicom" / name), prefix="PT")
    records = index_tree(str(tmp_path / "dicom"), jobs=1).pet_series()
    assert main(["reading-list", "--index", str(tmp_path / "dicom"), "--readers", "R1", "--seed", "3", "--jobs", "1",
                 "--out", str(tmp_path / "lists")]) == 0
    capsys.readouterr()
    with open(tmp_path / "lists" / "reading-list-R1.csv", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert sorted((r["patient_id"], r["session_id"], r["series_uid"]) for r in listed) == sorted(
        (x.patient_id, schema.record_session_id(x), x.series_uid) for x in records)
    assert len(listed) == len(records) == 2
