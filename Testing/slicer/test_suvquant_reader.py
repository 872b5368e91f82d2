"""SUVQuant's reading of a finding (issue 14) on real MRML (slicer-core): the Logic records the reader's call,
confidence, anatomic correlate and SSTR-RADS, retracts and restores, through the same table code as the command
line (same keys, same audit trail); its view of the table is blinded (the reader's own rows of the session).
The Widget (Qt) is not exercised here: its .ui fields and slots are checked statically below, and the module's
Testing/Python self-test runs it inside Slicer. Values compared are text, exact (no tolerance applies)."""

import ast
import os
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import slicer

from netpet.quant.table import AUDIT_COLUMNS, StudyTable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pet(name="PET", patient="P1", study="1.2.826.0.1.3680043.8.498.1", modality="PET/CT", tracer="dotatate"):
    """A small SUV volume node carrying the identity NETPET Reader sets (the attributes the Logic reads)."""
    node = slicer.util.addVolumeFromArray(np.ones((4, 5, 6), np.float32), name=name)
    for key, value in (("PatientID", patient), ("StudyInstanceUID", study), ("Modality", modality), ("Tracer", tracer),
                       ("SeriesInstanceUID", study + ".2"), ("SUVType", "bw")):
        node.SetAttribute("NETPET." + key, value)
    return node


@pytest.fixture()
def study(mrml, tmp_path):
    from SUVQuant import SUVQuantLogic

    logic = SUVQuantLogic()
    pet = _pet()
    path = str(tmp_path / "study.csv")
    key = logic.readingKey(path, pet, "R1")
    other = {**key, "session_id": "OTHER", "modality": "PET/MR"}
    StudyTable(path).upsert([{**key, "lesion_id": "L01", "call": "positive", "region": "liver"},
                             {**key, "lesion_id": "L02", "call": "equivocal", "region": "pancreas",
                              "lesion_type": "physiological uptake"},
                             {**key, "reader": "R2", "lesion_id": "L01", "call": "negative"},
                             {**key, "reader": "consensus", "lesion_id": "L01", "reader_call": "negative"},
                             {**other, "lesion_id": "L01", "call": "positive"}])
    return logic, pet, path, key


def test_the_key_is_the_exports(study):
    from netpet import schema

    logic, pet, path, key = study
    assert key == {"patient_id": "P1", "modality": "PET/CT", "tracer": "dotatate", "reader": "R1",
                   "session_id": schema.derive_session_id("1.2.826.0.1.3680043.8.498.1", "dotatate", "PET/CT")}
    logic.setSessionID(pet, "CT-1")
    assert logic.readingKey(path, pet, " R1 ")["session_id"] == "CT-1"


def test_blinded_findings_are_the_readers_own_rows_of_the_session(study):
    logic, pet, path, key = study
    rows = logic.blindedFindings(path, pet, "R1")
    assert [(r["reader"], r["session_id"], r["lesion_id"]) for r in rows] == [
        ("R1", key["session_id"], "L01"), ("R1", key["session_id"], "L02")]
    assert [r["lesion_id"] for r in logic.blindedFindings(path, pet, "R2")] == ["L01"]
    assert logic.blindedFindings(path, pet, "R3") == []


def test_record_retract_restore_write_the_same_trail_as_the_command_line(study, tmp_path, capsys):
    from SUVQuant import AnatomicCorrelate, Confidence, ReaderCall, SSTRRADS

    from netpet.cli.main import main

    logic, pet, path, key = study
    reading = logic.readingOf(path, pet, "R1", "L02")
    assert {k: reading[k] for k in ("readerCall", "confidence", "anatomicCorrelate", "sstrRads")} == {
        "readerCall": "unset", "confidence": "unset", "anatomicCorrelate": "unset", "sstrRads": "unset"}
    assert reading["summary"].startswith("L02: SUV rule call equivocal; SSTR-RADS proposed 1A: ")
    # the form's enum members, as the parameter node holds them
    written = logic.recordReading(path, pet, "R1", "L02", call=ReaderCall["negative"], confidence=Confidence["2"],
                                  correlate=AnatomicCorrelate["unset"], sstrRads=SSTRRADS["1A"], why="uncinate process")
    assert written == 3  # correlate "unset" on an empty cell: no change
    assert logic.recordReading(path, pet, "R1", "L02", call=ReaderCall["negative"]) == 0
    reading = logic.readingOf(path, pet, "R1", "L02")
    assert (reading["readerCall"], reading["confidence"], reading["sstrRads"]) == ("negative", "2", "1A")
    assert logic.retractFinding(path, pet, "R1", "L02", "physiological uptake, not a lesion", by="Dr B") == 2
    assert "retracted (physiological uptake, not a lesion)" in logic.readingOf(path, pet, "R1", "L02")["summary"]
    assert logic.restoreFinding(path, pet, "R1", "L02", why="second look") == 2
    assert logic.restoreFinding(path, pet, "R1", "L02") == 0
    slicer_trail = [tuple(e[c] for c in AUDIT_COLUMNS[1:]) for e in StudyTable(path).audit(lesion_id="L02", reader="R1")]
    s = key["session_id"]
    assert slicer_trail == [
        ("R1", "insert", "P1", s, "PET/CT", "dotatate", "R1", "L02", column, "", value, "")
        for column, value in (("call", "equivocal"), ("region", "pancreas"), ("lesion_type", "physiological uptake"))
    ] + [
        ("R1", "update", "P1", s, "PET/CT", "dotatate", "R1", "L02", "reader_call", "", "negative", "uncinate process"),
        ("R1", "update", "P1", s, "PET/CT", "dotatate", "R1", "L02", "confidence", "", "2", "uncinate process"),
        ("R1", "update", "P1", s, "PET/CT", "dotatate", "R1", "L02", "sstr_rads", "", "1A", "uncinate process"),
        ("Dr B", "retract", "P1", s, "PET/CT", "dotatate", "R1", "L02", "finding_status", "", "retracted",
         "physiological uptake, not a lesion"),
        ("Dr B", "retract", "P1", s, "PET/CT", "dotatate", "R1", "L02", "retraction_reason", "",
         "physiological uptake, not a lesion", "physiological uptake, not a lesion"),
        ("R1", "restore", "P1", s, "PET/CT", "dotatate", "R1", "L02", "finding_status", "retracted", "active",
         "second look"),
        ("R1", "restore", "P1", s, "PET/CT", "dotatate", "R1", "L02", "retraction_reason",
         "physiological uptake, not a lesion", "", "second look"),
    ]
    # the same requests on the command line, on a copy of the table before them, give the same trail
    copy = str(tmp_path / "copy.csv")
    StudyTable(copy).upsert([{k: v for k, v in r.items() if k not in ("reader_call", "confidence", "sstr_rads",
                                                                     "finding_status", "retraction_reason")}
                             for r in StudyTable(path).read() if r["reader"] != "R1" or r["lesion_id"] != "L02"]
                            + [{**key, "lesion_id": "L02", "call": "equivocal", "region": "pancreas",
                                "lesion_type": "physiological uptake"}])
    finding = ["--table", copy, "--patient", "P1", "--session", s, "--reader", "R1", "--lesion", "L02"]
    assert main(["record", *finding, "--call", "negative", "--confidence", "2", "--sstr-rads", "1A", "--why",
                 "uncinate process"]) == 0
    assert main(["retract", *finding, "--why", "physiological uptake, not a lesion", "--by", "Dr B"]) == 0
    assert main(["restore", *finding, "--why", "second look"]) == 0
    capsys.readouterr()
    cli_trail = [tuple(e[c] for c in AUDIT_COLUMNS[1:]) for e in StudyTable(copy).audit(lesion_id="L02", reader="R1")]
    assert cli_trail == slicer_trail
    assert [r for r in StudyTable(copy).read() if r["lesion_id"] == "L02" and r["reader"] == "R1"][0]["sstr_rads"] == "1A"


def test_refusals_are_one_sentence(study):
    from SUVQuant import Confidence

    logic, pet, path, key = study
    before = (StudyTable(path).read(), StudyTable(path).audit())
    cases = [
        (lambda: logic.recordReading(path, pet, "R1", "L09", confidence=Confidence["3"]),
         f"The study table {path} has no finding patient P1, session {key['session_id']}, reader R1, lesion L09, "
         "modality PET/CT, tracer dotatate; reader R1's lesions in this session: L01, L02. Export the lesion first."),
        (lambda: logic.recordReading(path, pet, "R1", "L01"),
         "Nothing to record for the finding patient P1, session " + key["session_id"] + ", PET/CT, dotatate, reader R1, "
         "lesion L01: give a call, a confidence, an anatomic correlate, an SSTR-RADS category, a region or a "
         "lesion type."),
        (lambda: logic.recordReading(path, pet, "R1", "L01", confidence="7"), "confidence is '7'; give a whole number"),
        (lambda: logic.retractFinding(path, pet, "R1", "L01", "  "),
         "Say why the finding is retracted (a reason is required)."),
        (lambda: logic.recordReading(path, pet, "", "L01", confidence="3"),
         "Give the reader's id (it is part of every row's key)."),
        (lambda: logic.recordReading("", pet, "R1", "L01", confidence="3"),
         "Choose the study table file (.csv or .sqlite) first."),
        (lambda: logic.readingOf(path, pet, "R1", " "), "Give the lesion id of the finding"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as error:
            call()
        assert str(error.value).startswith(message) and "\n" not in str(error.value), str(error.value)
    # each reader acts on their own rows only: R2 has no L02 (R1's), whatever R1 holds
    with pytest.raises(ValueError, match="reader R2's lesions in this session: L01. Export the lesion first.$"):
        logic.retractFinding(path, pet, "R2", "L02", "not mine")
    assert (StudyTable(path).read(), StudyTable(path).audit()) == before


def test_ui_fields_and_slots_exist_and_bind_to_parameters():
    """Every ``self.ui.<name>`` of SUVQuant.py is a widget of its .ui; the reading form's widgets carry the
    parameter names of the reading fields (test_module_files.py checks every binding and combo box)."""
    source = open(os.path.join(ROOT, "SUVQuant", "SUVQuant.py"), encoding="utf-8").read()
    tree = ET.parse(os.path.join(ROOT, "SUVQuant", "Resources", "UI", "SUVQuant.ui"))
    widgets = {w.get("name"): w for w in tree.iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    assert used <= set(widgets), sorted(used - set(widgets))
    bound = {}
    for name, widget in widgets.items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[name] = prop.find("string").text
    assert {bound[w] for w in ("readingLesionIDLineEdit", "readerCallComboBox", "confidenceComboBox",
                               "anatomicCorrelateComboBox", "sstrRadsComboBox", "readingWhyLineEdit",
                               "retractionReasonLineEdit")} == {
        "readingLesionID", "readerCall", "confidence", "anatomicCorrelate", "sstrRads", "readingWhy", "retractionReason"}
    for button, slot in (("loadReadingButton", "onLoadReading"), ("recordReadingButton", "onRecordReading"),
                         ("retractButton", "onRetract"), ("restoreButton", "onRestore")):
        assert f'self.ui.{button}.connect("clicked(bool)", self.{slot})' in source
        assert any(isinstance(n, ast.FunctionDef) and n.name == slot for n in ast.walk(ast.parse(source)))


def test_relabel_a_saved_finding_as_the_command_line_does(study, tmp_path):
    """relabelFinding writes region and lesion type through the table code: the same cells and audit entries as
    ``netpet record --region --lesion-type`` on a copy of the table; a label with a line break is refused."""
    import shutil

    from netpet.cli.main import main
    from netpet.quant.table import audit_path

    logic, pet, path, key = study
    copy = str(tmp_path / "copy.csv")
    shutil.copy(path, copy)
    shutil.copy(audit_path(path), audit_path(copy))
    assert logic.relabelFinding(path, pet, "R1", "L02", region="uncinate  process", lesionType="", why="on CT") == 2
    assert logic.relabelFinding(path, pet, "R1", "L02", region="uncinate process") == 0
    assert main(["record", "--table", copy, "--patient", "P1", "--session", key["session_id"], "--reader", "R1",
                 "--lesion", "L02", "--modality", "PET/CT", "--region", "uncinate process", "--lesion-type", "",
                 "--why", "on CT"]) == 0
    mine = [r for r in StudyTable(path).read() if r["reader"] == "R1" and r["lesion_id"] == "L02"][0]
    theirs = [r for r in StudyTable(copy).read() if r["reader"] == "R1" and r["lesion_id"] == "L02"][0]
    assert (mine["region"], mine["lesion_type"]) == ("uncinate process", "") and \
        {k: v for k, v in mine.items() if k != "updated"} == {k: v for k, v in theirs.items() if k != "updated"}
    trail = lambda p: [tuple(e[c] for c in ("action", "column", "old", "new", "why"))  # noqa: E731
                       for e in StudyTable(p).audit(lesion_id="L02", reader="R1") if e["action"] == "update"]
    assert trail(path) == trail(copy) == [("update", "region", "pancreas", "uncinate process", "on CT"),
                                          ("update", "lesion_type", "physiological uptake", "", "on CT")]
    with pytest.raises(ValueError, match="has a control character"):
        logic.relabelFinding(path, pet, "R1", "L02", region="liver\nsegment 7")
    with pytest.raises(ValueError, match="Nothing to record"):
        logic.relabelFinding(path, pet, "R1", "L02")
