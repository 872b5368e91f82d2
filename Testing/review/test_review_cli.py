"""``netpet review`` and ``netpet teach`` on the command line, without a browser: what is refused before any
server starts (exit code 3, one sentence), the headless scoring, and that the other commands never load the
app's GUI stack (trame, VTK, slicer-core)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from netpet.cli.main import main
from Testing.review.conftest import REPOSITORY

EXIT_USAGE, EXIT_INPUT = 2, 3


def _one_sentence(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_help_imports_no_gui_stack():
    code = ("import sys\nfrom netpet.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "try:\n    main(['review', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'trame', 'trame_slicer', 'vtk', 'vtkmodules', "
            "'slicer'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, check=True)
    assert "review" in out.stdout and "teach" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture()
def small_study(tmp_path):
    """A study folder the refusals are checked on (they come before it is indexed: no DICOM needed)."""
    root = tmp_path / "study"
    root.mkdir()
    return root


def test_a_network_address_without_a_token_is_refused(small_study, capsys):
    assert main(["review", str(small_study), "--host", "0.0.0.0"]) == EXIT_INPUT
    line = _one_sentence(capsys.readouterr().err)
    assert "0.0.0.0" in line and "--token" in line and "127.0.0.1" in line


def test_a_short_token_is_refused(small_study, capsys):
    assert main(["review", str(small_study), "--host", "0.0.0.0", "--token", "short"]) == EXIT_INPUT
    assert "at least 16" in _one_sentence(capsys.readouterr().err)


def test_the_token_may_come_from_the_environment(small_study, capsys, monkeypatch):
    """NETPET_REVIEW_TOKEN stands for --token (kept out of the process list) and is checked the same way; --token
    given on the command line wins."""
    from netpet.cli.main import build_parser

    monkeypatch.setenv("NETPET_REVIEW_TOKEN", "short")
    assert main(["review", str(small_study), "--host", "0.0.0.0"]) == EXIT_INPUT
    assert "at least 16" in _one_sentence(capsys.readouterr().err)
    monkeypatch.setenv("NETPET_REVIEW_TOKEN", "a-token-of-24-characters")
    assert build_parser().parse_args(["review", str(small_study)]).token == "a-token-of-24-characters"
    assert build_parser().parse_args(["review", str(small_study), "--token", "x" * 16]).token == "x" * 16


def test_a_table_outside_the_study_is_refused(small_study, tmp_path, capsys):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("patient_id\n")
    assert main(["review", str(small_study), "--table", str(outside)]) == EXIT_INPUT
    assert "outside" in _one_sentence(capsys.readouterr().err)


def test_a_table_reached_through_a_link_out_of_the_study_is_refused(small_study, tmp_path, capsys):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "study-table.csv").write_text("patient_id\n")
    os.symlink(outside, small_study / "tables")
    assert main(["review", str(small_study), "--table", str(small_study / "tables" / "study-table.csv")]) == EXIT_INPUT
    assert "outside" in _one_sentence(capsys.readouterr().err)


def test_a_missing_study_is_refused(tmp_path, capsys):
    assert main(["review", str(tmp_path / "nowhere")]) == EXIT_INPUT
    assert "nowhere" in _one_sentence(capsys.readouterr().err)


def test_a_port_in_use_is_refused(small_study, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["review", str(small_study), "--port", str(port)]) == EXIT_INPUT
    assert f"port {port}" in _one_sentence(capsys.readouterr().err)


def test_teach_refuses_a_trainee_name_that_is_a_path(teach_case, capsys):
    assert main(["teach", str(teach_case), "--trainee", "../../x"]) == EXIT_INPUT
    assert "trainee" in _one_sentence(capsys.readouterr().err)


def test_teach_refuses_an_unknown_case_name(tmp_path, capsys):
    assert main(["teach", "no-such-case", "--out", str(tmp_path / "x")]) == EXIT_USAGE
    assert "liver-threshold" in _one_sentence(capsys.readouterr().err)


def test_teach_score_headless_is_teaching_score(teach_case, tmp_path, capsys):
    """A trainee's table (two marks at true centres, one called positive) scored without a server: the text is
    teaching.format_feedback of teaching.score, and --json is the result itself."""
    from netpet.review import teaching

    case = teaching.open_case(str(teach_case))
    session = case.sessions[0]
    rows = []
    for number, lesion in enumerate(case.lesions[:2], 1):
        centre = lesion["sessions"][session["session_id"]]["centre"]
        rows.append({"patient_id": case.patient_id, "session_id": session["session_id"],
                     "modality": session["modality"], "tracer": session["tracer"], "reader": "bob",
                     "lesion_id": f"T{number:02d}", "reader_call": "positive" if number == 1 else "negative",
                     "centroid_r": centre[0], "centroid_a": centre[1], "centroid_s": centre[2]})
    table = tmp_path / "bob.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    expected = teaching.score(case, str(table))
    assert main(["teach", str(teach_case), "--score", str(table)]) == 0
    assert capsys.readouterr().out == teaching.format_feedback(expected)
    assert main(["teach", str(teach_case), "--score", str(table), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["lesion"] == json.loads(json.dumps(expected["lesion"]))
    assert result["lesion"]["tp"] + result["lesion"]["fn"] + result["lesion"]["fp"] + result["lesion"]["tn"] >= 2


def test_teach_score_of_a_missing_table_is_one_sentence(teach_case, tmp_path, capsys):
    assert main(["teach", str(teach_case), "--score", str(tmp_path / "none.csv")]) == EXIT_INPUT
    assert "none.csv" in _one_sentence(capsys.readouterr().err)


@pytest.mark.parametrize("reader", ["", "   ", "R\x1b[2J1"])
def test_review_refuses_a_reader_that_names_no_one(small_study, reader, capsys):
    assert main(["review", str(small_study), "--reader", reader]) == EXIT_USAGE
    assert "--reader" in _one_sentence(capsys.readouterr().err)


def test_teach_refuses_another_case_written_where_a_name_would_go(teach_case, capsys):
    """``netpet teach NAME --out FOLDER`` opens a case written there before only when it is that case."""
    assert main(["teach", "lesion-free", "--out", str(teach_case)]) == EXIT_USAGE
    line = _one_sentence(capsys.readouterr().err)
    assert "liver-threshold" in line and "--out" in line


def test_teach_refuses_out_with_a_case_folder(teach_case, tmp_path, capsys):
    assert main(["teach", str(teach_case), "--out", str(tmp_path / "x")]) == EXIT_USAGE
    assert "--out" in _one_sentence(capsys.readouterr().err)
