"""``netpet scores`` end to end through netpet.cli.main.main: the files it writes, their hand-checked contents, the
correspondence option and the exit codes of bad input (netpet.cli.common: 0 done, 2 usage, 3 input).
"""

from __future__ import annotations

import csv
import json
import os

import pytest

from netpet.cli.main import main
from netpet.match.correspondence import COLUMNS as CORR_COLUMNS

TABLE_COLUMNS = ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "suv_max",
                 "liver_suv_mean", "spleen_suv_mean", "krenning", "call", "anatomic_correlate", "sstr_rads",
                 "finding_status")


def _write(path, columns, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def _read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _row(patient, session, tracer, lesion, suv, krenning="", call="", liver=5.0, **extra):
    row = {"patient_id": patient, "session_id": session, "modality": "PET/CT", "tracer": tracer, "reader": "r1",
           "lesion_id": lesion, "region": "liver", "suv_max": suv, "liver_suv_mean": liver, "spleen_suv_mean": 20.0,
           "krenning": krenning, "call": call}
    row.update(extra)
    return row


@pytest.fixture()
def study(tmp_path):
    rows = [
        # A: DOTATATE K4 (T/L 30/5 = 6.0); FDG positive T/L 6/2.5 = 2.4: A = 0.4 < 1/1.3 -> P2; PRRT eligible
        _row("A", "D1", "dotatate", "L1", 30.0, 4, "positive", anatomic_correlate="lesion", sstr_rads="5"),
        _row("A", "F1", "fdg", "L1", 6.0, call="positive", liver=2.5),
        # B: DOTATATE K3 (T/L 15/5 = 3.0); FDG L1 negative; the FDG reader named the discordant lesion L5, the
        # DOTATATE reader has none there -> P5 (by lesion id); PRRT not eligible (discordant L5)
        _row("B", "D1", "dotatate", "L1", 15.0, 3, "positive", sstr_rads="4"),
        _row("B", "F1", "fdg", "L1", 2.0, call="negative", liver=2.5),
        _row("B", "F1", "fdg", "L5", 10.0, call="positive", liver=2.5),
        # a retracted finding: not counted, one warning
        _row("B", "D1", "dotatate", "L9", 2.0, 1, "negative", finding_status="retracted"),
    ]
    table = tmp_path / "table.csv"
    _write(table, TABLE_COLUMNS, rows)
    return tmp_path, table


def test_scores_writes_every_file(study, capsys):
    folder, table = study
    out = folder / "out"
    assert main(["scores", "--table", str(table), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == sorted(["netpet-scores.csv", "fdg-sstr-discordant.csv", "sstr-rads-lesions.csv",
                                              "sstr-rads-scans.csv", "prrt-summary.csv", "scores.json"])
    scores = {r["patient_id"]: r for r in _read(out / "netpet-scores.csv")}
    assert (scores["A"]["grade"], scores["B"]["grade"]) == ("P2", "P5")
    assert scores["B"]["deciding_lesions"] == "L5"
    discordant = _read(out / "fdg-sstr-discordant.csv")
    assert [(d["patient_id"], d["track_id"], d["fdg_tl_ratio"]) for d in discordant] == [("B", "L5", "4")]  # 10/2.5
    lesions = {(r["patient_id"], r["lesion_id"]): r for r in _read(out / "sstr-rads-lesions.csv")}
    assert set(lesions) == {("A", "L1"), ("B", "L1")}  # L9 retracted
    # A L1: K4 at the liver with an anatomic lesion -> 5 = the reader's 5; B L1: K3, correlate not recorded -> 4 = 4
    assert (lesions[("A", "L1")]["proposed"], lesions[("A", "L1")]["agrees"]) == ("5", "true")
    assert (lesions[("B", "L1")]["proposed"], lesions[("B", "L1")]["agrees"]) == ("4", "true")
    prrt = {r["patient_id"]: r for r in _read(out / "prrt-summary.csv")}
    assert prrt["A"]["meets_criteria"] == "true" and prrt["B"]["meets_criteria"] == "false"
    assert prrt["A"]["tl_ratio_min"] == "6" and prrt["A"]["ts_ratio_min"] == "1.5"  # 30/5, 30/20
    payload = json.loads((out / "scores.json").read_text())
    assert payload["warnings"] == ["1 retracted finding left out of the NETPET score"]
    captured = capsys.readouterr()
    assert "2 of 2 dual readings graded, 1 FDG+/SSTR- lesions" in captured.out
    assert "note: 1 retracted finding" in captured.err


def test_scores_with_a_correspondence_and_json(study, capsys):
    folder, table = study
    # link B's FDG L5 to its DOTATATE L1 (track T1): then B's only lesion is K3 with FDG positive, A = (10/2.5) /
    # (15/5) = 4/3 = 1.333 > 1.3 -> P4 instead of P5; FDG L1 (negative) is unmatched, a track of its own (X01)
    corr = []
    for session, tracer, lesion, track, status in (("D1", "dotatate", "L1", "T1", "matched"),
                                                    ("F1", "fdg", "L5", "T1", "matched"),
                                                    ("F1", "fdg", "L1", "X01", "unmatched")):
        row = {c: "" for c in CORR_COLUMNS}
        row.update(patient_id="B", session_id=session, modality="PET/CT", tracer=tracer, reader="r1",
                   lesion_id=lesion, reference_lesion_id=track if status == "matched" else "", track_id=track,
                   status=status)
        corr.append(row)
    corr_path = folder / "corr.csv"
    _write(corr_path, CORR_COLUMNS, corr)
    out = folder / "out2"
    assert main(["scores", "--table", str(table), "--correspondence", str(corr_path), "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    grades = {s["patient_id"]: s["grade"] for s in payload["netpet_scores"]}
    # A is not in the correspondence: its findings are lesions of their own (a warning each) -> D1:L1 (K4, FDG
    # negative: P1) and F1:L1 (FDG positive, no DOTATATE: P5)
    assert grades == {"A": "P5", "B": "P4"}
    assert sum("not in the correspondence" in w for w in payload["warnings"]) == 2
    assert payload["outputs"]["scores.json"].endswith("scores.json")


def test_exit_codes(study, capsys):
    folder, table = study
    # 3: a table that does not exist
    assert main(["scores", "--table", str(folder / "nope.csv"), "--out", str(folder / "o")]) == 3
    assert "does not exist" in capsys.readouterr().err
    # 2: --out missing (usage)
    assert main(["scores", "--table", str(table)]) == 2
    capsys.readouterr()
    # 3: a Krenning score that is not 0-4, named by file and line
    bad = folder / "bad.csv"
    _write(bad, TABLE_COLUMNS, [_row("A", "D1", "dotatate", "L1", 30.0, 7)])
    assert main(["scores", "--table", str(bad), "--out", str(folder / "o")]) == 3
    err = capsys.readouterr().err
    assert "bad.csv line 2: krenning is '7'" in err and err.count("\n") == 1
    # 3: a correspondence that is not netpet match's (missing columns)
    wrong = folder / "wrong.csv"
    _write(wrong, ("patient_id", "lesion_id"), [{"patient_id": "A", "lesion_id": "L1"}])
    assert main(["scores", "--table", str(table), "--correspondence", str(wrong), "--out", str(folder / "o")]) == 3
    assert "lacks the column" in capsys.readouterr().err
    # 3: --out is a file
    afile = folder / "afile"
    afile.write_text("x")
    assert main(["scores", "--table", str(table), "--out", str(afile)]) == 3
    assert "is a file" in capsys.readouterr().err
    # 2: --equal-ratio below 1
    assert main(["scores", "--table", str(table), "--out", str(folder / "o"), "--equal-ratio", "0.5"]) == 2
    # nothing was written by the refused runs
    assert not (folder / "o").exists()
