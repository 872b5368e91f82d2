"""``netpet followup`` end to end through netpet.cli.main.main, and ``netpet quantify``'s time-point columns.

A small study table (CSV, written by netpet's own table writer) and a correspondence CSV are built by hand;
the numbers asserted are worked out in the comments.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from netpet.cli.main import main
from netpet.quant.table import StudyTable

CORR_COLUMNS = ("patient_id", "session_id", "modality", "tracer", "reader", "time_point", "lesion_id",
                "reference_lesion_id", "track_id", "status", "distance_mm", "gate_mm", "registration_error_mm", "via",
                "candidates", "note")


def _row(patient, session, tp, days, lesion, tracer, suv_peak, mtv, mean, call="positive", liver=2.0):
    return {"patient_id": patient, "session_id": session, "modality": "PET/CT", "tracer": tracer, "reader": "r1",
            "lesion_id": lesion, "time_point": tp, "days_from_baseline": days, "suv_max": suv_peak * 1.25,
            "suv_peak": suv_peak, "mtv_ml": mtv, "suv_mean": mean, "tla": mtv * mean, "tl_ratio": suv_peak / liver,
            "call": call, "liver_suv_mean": liver, "liver_suv_sd": 0.3, "suv_type": "lbmjanma",
            "segmentation_status": "segmented", "region": "liver"}


def _corr(row, track, status="matched"):
    out = {c: "" for c in CORR_COLUMNS}
    out.update({c: row[c] for c in ("patient_id", "session_id", "modality", "tracer", "reader", "time_point",
                                     "lesion_id")})
    out.update({"reference_lesion_id": track, "track_id": track, "status": status})
    return out


@pytest.fixture()
def study(tmp_path):
    """D1 (DOTATATE): A 10 mL x 8 -> 5 mL x 6; B 2 mL x 5 -> gone; C new 3 mL x 6.
    F1 (FDG): T1 SULpeak 10 -> 6.5 (-35 %, -3.5 SUL: PMR). F2 (FDG): T1 8 -> 7, new N1 (PMD)."""
    rows = [_row("D1", "D1-0", "baseline", 0, "L01", "dotatate", 15, 10, 8),
            _row("D1", "D1-0", "baseline", 0, "L02", "dotatate", 6, 2, 5),
            _row("D1", "D1-1", "FU1", 91, "L01", "dotatate", 7.5, 5, 6),
            _row("D1", "D1-1", "FU1", 91, "L02", "dotatate", 7, 3, 6),
            _row("F1", "F1-0", "baseline", 0, "L01", "fdg", 10, 20, 5),
            _row("F1", "F1-1", "FU1", 60, "L01", "fdg", 6.5, 12, 3),
            _row("F2", "F2-0", "", "", "L01", "fdg", 8, 20, 5),
            _row("F2", "F2-1", "FU1", "", "L01", "fdg", 7, 20, 5),
            _row("F2", "F2-1", "FU1", "", "L02", "fdg", 5, 4, 3)]
    tracks = ["A", "B", "A", "C", "T1", "T1", "T1", "T1", "N1"]
    table = tmp_path / "study.csv"
    StudyTable(str(table)).upsert(rows)
    corr = [_corr(r, t) for r, t in zip(rows, tracks)]
    missed = {c: "" for c in CORR_COLUMNS}
    missed.update({"patient_id": "D1", "session_id": "D1-1", "modality": "PET/CT", "tracer": "dotatate",
                   "reader": "r1", "time_point": "FU1", "reference_lesion_id": "B", "track_id": "B",
                   "status": "missed"})
    corr.append(missed)
    path = tmp_path / "correspondence.csv"
    _write_corr(path, corr)
    return table, path, corr


def _write_corr(path, rows, columns=CORR_COLUMNS):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_followup_writes_both_tables_and_a_summary(study, tmp_path, capsys):
    table, corr, _ = study
    out = tmp_path / "fu"
    assert main(["followup", "--table", str(table), "--correspondence", str(corr), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "D1 dotatate PET/CT r1 FU1 (day 91): 2 lesions, 1 new, 1 disappeared; SSTR-TV 8.00 mL, TL-SSTR 48.0 (-33 % " \
           "SSTR-TV)" in text
    assert "F1 fdg PET/CT r1 FU1 (day 60): 1 lesion, 0 new, 0 disappeared; PERCIST PMR" in text
    assert "F2 fdg PET/CT r1 FU1: 2 lesions, 1 new, 0 disappeared; PERCIST PMD (new FDG-avid lesion(s) N1" in text
    patients = {(r["patient_id"], r["time_point"]): r for r in _read(out / "patient_response.csv")}
    # D1: baseline 10 x 8 + 2 x 5 = 90, 12 mL; FU1 5 x 6 + 3 x 6 = 48, 8 mL
    assert float(patients["D1", "baseline"]["sstr_tv_ml"]) == 12 and float(patients["D1", "baseline"]["tl_sstr"]) == 90
    assert float(patients["D1", "FU1"]["tl_sstr_change"]) == -42
    assert float(patients["F1", "FU1"]["sul_peak_change_pct"]) == pytest.approx(-35.0)
    assert patients["F1", "FU1"]["liver_comparable"] == "true"
    lesions = _read(out / "lesion_changes.csv")
    a1 = next(r for r in lesions if r["patient_id"] == "D1" and r["track_id"] == "A" and r["time_point"] == "FU1")
    assert float(a1["mtv_ml_change_pct"]) == -50 and float(a1["suv_peak_change"]) == -7.5
    b1 = next(r for r in lesions if r["track_id"] == "B" and r["time_point"] == "FU1")
    assert b1["status"] == "disappeared" and b1["match_status"] == "missed"
    assert not [n for n in os.listdir(out) if n.startswith(".netpet-")]  # no temporary file left
    assert main(["followup", "--table", str(table), "--correspondence", str(corr), "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["counts"] == {"tracks": 6, "patients": 3, "time_points": 6, "new": 2, "disappeared": 1}
    f2 = next(p for p in payload["patients"] if p["patient_id"] == "F2" and p["time_point"] == "FU1")
    assert f2["percist"] == "PMD" and f2["new_avid_lesions"] == "N1" and f2["days_from_baseline"] is None


def test_followup_refusals(study, tmp_path, capsys):
    table, corr_path, corr = study
    out = str(tmp_path / "fu")

    def run(table_path=table, corr_file=corr_path, out_dir=out):
        code = main(["followup", "--table", str(table_path), "--correspondence", str(corr_file), "--out", str(out_dir)])
        return code, capsys.readouterr().err.strip()

    code, err = run(corr_file=tmp_path / "none.csv")
    assert code == 3 and "does not exist" in err
    # a finding without a track: the table row named, the fix said
    _write_corr(tmp_path / "short.csv", corr[1:])
    code, err = run(corr_file=tmp_path / "short.csv")
    assert code == 3 and "study.csv line 2: finding L01 of patient D1 session D1-0 reader r1 has no row" in err
    assert err.count("\n") == 0
    # a column missing
    _write_corr(tmp_path / "cols.csv", corr, [c for c in CORR_COLUMNS if c != "track_id"])
    code, err = run(corr_file=tmp_path / "cols.csv")
    assert code == 3 and "lacks the column(s) track_id" in err
    # time points that cannot be ordered: exit 5, nothing written
    rows = StudyTable(str(table)).read()
    for r in rows:
        if r["patient_id"] == "F2" and r["session_id"] == "F2-1":
            r["time_point"] = "after PRRT"
    StudyTable(str(table)).upsert(rows)
    code, err = run()
    assert code == 5 and err.startswith("netpet: refused: patient F2") and "after PRRT" in err
    assert not os.path.exists(out)
    (tmp_path / "file").write_text("x")
    assert run(out_dir=tmp_path / "file")[0] == 3


# -- netpet quantify fills the time point from the manifest -------------------------------------------------------

SIZE, SPACING = 24, 6.0


def _image(path):
    rng = np.random.default_rng(3)
    values = 1.0 + rng.normal(0.0, 0.05, (SIZE,) * 3)
    values[16:23, 16:23, 16:23] = 2.0 + rng.normal(0.0, 0.05, (7, 7, 7))  # liver-like block near RAS (-45, -45, 45)
    c = SIZE // 2
    values[c - 2:c + 1, c - 2:c + 1, c - 2:c + 1] = 9.0  # the lesion at the origin
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing((SPACING,) * 3)
    image.SetOrigin((-(SIZE - 1) * SPACING / 2,) * 3)
    sitk.WriteImage(image, str(path))


def test_quantify_writes_time_point_columns(tmp_path, capsys):
    _image(tmp_path / "suv.nrrd")
    header = ["patient_id", "series", "session_id", "reader", "lesion_id", "seed_r", "seed_a", "seed_s", "liver_r",
              "liver_a", "liver_s", "modality", "tracer", "time_point", "days_from_baseline"]
    good = [["P1", "suv.nrrd", "S0", "r1", "L01", "0", "0", "0", "-45", "-45", "45", "PET/CT", "dotatate", "baseline",
             "0"],
            ["P1", "suv.nrrd", "S1", "r1", "L01", "0", "0", "0", "-45", "-45", "45", "PET/CT", "dotatate", " FU1 ",
             "91.5"]]
    bad = [["P2", "suv.nrrd", "S0", "r1", "L01", "0", "0", "0", "-45", "-45", "45", "PET/CT", "dotatate", "baseline",
            "-3"],
           ["P3", "suv.nrrd", "S0", "r1", "L01", "0", "0", "0", "-45", "-45", "45", "PET/CT", "dotatate", "FU1", "10"],
           ["P3", "suv.nrrd", "S0", "r1", "L02", "0", "0", "0", "-45", "-45", "45", "PET/CT", "dotatate", "FU2", "10"]]
    with open(tmp_path / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(good + bad)
    table = tmp_path / "study.csv"
    assert main(["quantify", str(tmp_path / "manifest.csv"), "--table", str(table), "--jobs", "1"]) == 6
    err = capsys.readouterr().err
    assert "manifest row 4: days_from_baseline is '-3'; give a finite number of days >= 0" in err
    assert ("manifest rows 5, 6: column time_point differs between the rows of one session (FU1 on row(s) 5; FU2 on "
            "row(s) 6)") in err
    rows = {(r["patient_id"], r["session_id"]): r for r in StudyTable(str(table)).read()}
    assert set(rows) == {("P1", "S0"), ("P1", "S1")}
    assert (rows["P1", "S0"]["time_point"], rows["P1", "S0"]["days_from_baseline"]) == ("baseline", "0")
    assert (rows["P1", "S1"]["time_point"], rows["P1", "S1"]["days_from_baseline"]) == ("FU1", "91.5")
    # a manifest without the columns leaves the table's time points as they are
    with open(tmp_path / "again.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header[:-2])
        writer.writerow(good[1][:-2])
    assert main(["quantify", str(tmp_path / "again.csv"), "--table", str(table), "--jobs", "1"]) == 0
    rows = {(r["patient_id"], r["session_id"]): r for r in StudyTable(str(table)).read()}
    assert (rows["P1", "S1"]["time_point"], rows["P1", "S1"]["days_from_baseline"]) == ("FU1", "91.5")


# -- with the correspondence netpet match writes ------------------------------------------------------------------

def test_followup_on_the_correspondence_of_netpet_match(tmp_path, capsys):
    """P1, DOTATATE PET/CT, S0 (baseline, day 0) and S1 (FU1, day 90); reference lesions placed per session:
    A in both (R 0 mm, then R 2 mm), B at baseline only (resolved: no FU1 row), C at FU1 only (new), D in both but
    not found at FU1 (a missed row). The reader's own ids (L01...) differ between the sessions."""
    from netpet.match.correspondence import match_study, write_correspondence

    def row(session, tp, days, lesion, r, mtv, mean):
        return {**_row("P1", session, tp, days, lesion, "dotatate", 2.0 * mean, mtv, mean),
                "centroid_r": r, "centroid_a": 0.0, "centroid_s": 0.0}

    table = tmp_path / "study.csv"
    StudyTable(str(table)).upsert([row("S0", "baseline", 0, "L01", 0.0, 10, 8), row("S0", "baseline", 0, "L02", 30.0, 2, 5),
                                   row("S0", "baseline", 0, "L03", -40.0, 4, 6), row("S1", "FU1", 90, "L01", 60.0, 3, 6),
                                   row("S1", "FU1", 90, "L02", 2.0, 5, 6)])
    reference = tmp_path / "reference.csv"
    with open(reference, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "lesion_id", "region", "truth", "standard", "time_point"])
        for lesion, tp in (("A", "baseline"), ("A", "FU1"), ("B", "baseline"), ("C", "FU1"), ("D", "baseline"),
                           ("D", "FU1")):
            writer.writerow(["P1", lesion, "liver", 1, "histology", tp])
    locations = tmp_path / "locations.csv"
    with open(locations, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "lesion_id", "session_id", "center_r", "center_a", "center_s", "diameter_mm"])
        for lesion, session, r in (("A", "S0", 0), ("A", "S1", 2), ("B", "S0", 30), ("C", "S1", 60), ("D", "S0", -40),
                                   ("D", "S1", -40)):
            writer.writerow(["P1", lesion, session, r, 0, 0, 10])
    corr = tmp_path / "correspondence.csv"
    write_correspondence(str(corr), match_study(str(table), str(reference), str(locations)))
    out = tmp_path / "fu"
    assert main(["followup", "--table", str(table), "--correspondence", str(corr), "--out", str(out)]) == 0
    lesions = {(r["track_id"], r["time_point"]): r for r in _read(out / "lesion_changes.csv")}
    assert {k: v["status"] for k, v in lesions.items()} == {
        ("A", "baseline"): "baseline", ("A", "FU1"): "persisting", ("B", "baseline"): "baseline",
        ("B", "FU1"): "disappeared", ("C", "FU1"): "new", ("D", "baseline"): "baseline", ("D", "FU1"): "disappeared"}
    assert lesions["D", "FU1"]["match_status"] == "missed" and lesions["B", "FU1"]["match_status"] == ""
    assert float(lesions["A", "FU1"]["mtv_ml_change_pct"]) == -50.0  # 10 -> 5 mL
    fu1 = next(r for r in _read(out / "patient_response.csv") if r["time_point"] == "FU1")
    # SSTR-TV 10 + 2 + 4 = 16 mL -> 3 + 5 = 8 mL (-50 %); TL-SSTR 80 + 10 + 24 = 114 -> 18 + 30 = 48
    assert (fu1["n_lesions"], fu1["n_new"], fu1["n_disappeared"], fu1["n_persisting"]) == ("2", "1", "2", "1")
    assert float(fu1["sstr_tv_change_pct"]) == -50.0 and float(fu1["tl_sstr_change"]) == -66.0
