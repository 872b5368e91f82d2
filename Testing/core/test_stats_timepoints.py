"""StudyStats over several time points: a follow-up session is a group of its own, units take the reference
rows of their time point, comparisons stay within a time point, and tables without time points give the
same output as before, byte for byte."""

from __future__ import annotations

import csv
import json

import pytest

from netpet.stats.analysis import StatsOptions, analyse, group_pairs
from netpet.stats.data import load_study, read_reference
from netpet.stats.intervals import StatsError
from netpet.stats.report import write_outputs

REF_HEADER = ("patient_id", "lesion_id", "region", "truth", "standard", "time_point")
REFERENCE = [
    ("P1", "L1", "liver", "1", "histopathology", ""),       # present at every time point
    ("P1", "L2", "liver", "1", "follow-up", "FU1"),          # new at FU1: no unit at baseline
    ("P2", "L1", "bone", "1", "histopathology", "baseline"),  # resolved: no FU1 row
    ("P2", "", "", "0", "follow-up", "FU1"),                 # disease-free at FU1
    ("P3", "", "", "0", "follow-up", ""),                    # lesion-free throughout
    ("P4", "L1", "pancreas", "0", "follow-up", ""),          # uncinate process: benign look-alike
]
COLUMNS = ("patient_id", "session_id", "modality", "tracer", "reader", "time_point", "days_from_baseline",
           "lesion_id", "region", "call", "suv_max")


def _row(patient, session, modality, time_point, lesion, call, suv="", days=""):
    return (patient, session, modality, "dotatate", "R1", time_point, days, lesion, "", call, suv)


TABLE = [
    # baseline PET/CT (time_point empty = baseline)
    _row("P1", "B-CT", "PET/CT", "", "L1", "positive", "12"), _row("P2", "B-CT", "PET/CT", "", "L1", "positive", "9"),
    _row("P3", "B-CT", "PET/CT", "", "", ""), _row("P4", "B-CT", "PET/CT", "", "L1", "positive", "7"),
    # baseline PET/MR, same day
    _row("P1", "B-MR", "PET/MR", "baseline", "L1", "positive", "11"),
    _row("P2", "B-MR", "PET/MR", "baseline", "L1", "negative", "3"),
    _row("P3", "B-MR", "PET/MR", "baseline", "", ""), _row("P4", "B-MR", "PET/MR", "baseline", "L1", "negative", "4"),
    # the follow-up PET/CT, 180 days later: same modality and tracer as the baseline PET/CT
    _row("P1", "F-CT", "PET/CT", "FU1", "L1", "positive", "8", "180"),
    _row("P1", "F-CT", "PET/CT", "FU1", "L2", "negative", "3", "180"),
    _row("P2", "F-CT", "PET/CT", "FU1", "", "", "", "180"), _row("P3", "F-CT", "PET/CT", "FU1", "", "", "", "180"),
    _row("P4", "F-CT", "PET/CT", "FU1", "L1", "negative", "5", "180"),
]


def _write(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _counts(result, level, modality, time_point):
    entry = next(e for e in result["accuracy"] if e["level"] == level and e["modality"] == modality
                 and e["time_point"] == time_point and not e["group_by"])
    return [entry[k] for k in ("tp", "fp", "fn", "tn")]


def test_a_follow_up_is_a_group_of_its_own(tmp_path):
    study = load_study(_write(tmp_path / "t.csv", COLUMNS, TABLE), _write(tmp_path / "r.csv", REF_HEADER, REFERENCE))
    assert study.time_points == ["baseline", "FU1"] and study.timed
    assert study.groups() == [("PET/CT", "dotatate", "R1", "baseline"), ("PET/CT", "dotatate", "R1", "FU1"),
                              ("PET/MR", "dotatate", "R1", "baseline")]
    result = analyse(study, StatsOptions(bootstrap=0)).result
    assert result["inputs"]["time_points"] == ["baseline", "FU1"]
    assert result["inputs"]["groups"][1] == {"modality": "PET/CT", "tracer": "dotatate", "reader": "R1",
                                             "time_point": "FU1"}
    # lesions. PET/CT baseline: P1 L1 TP, P2 L1 TP, P4 L1 FP (P1 L2 is FU1's only)     -> 2, 1, 0, 0
    #          PET/MR baseline: P1 L1 TP, P2 L1 FN, P4 L1 TN                             -> 1, 0, 1, 1
    #          PET/CT FU1: P1 L1 TP, P1 L2 FN (called negative), P4 L1 TN (P2 L1 gone)  -> 1, 0, 1, 1
    assert _counts(result, "lesion", "PET/CT", "baseline") == [2, 1, 0, 0]
    assert _counts(result, "lesion", "PET/MR", "baseline") == [1, 0, 1, 1]
    assert _counts(result, "lesion", "PET/CT", "FU1") == [1, 0, 1, 1]
    # patients: disease detection per time point. Baseline PET/CT: P1 TP, P2 TP, P3 TN, P4 FP -> 2, 1, 0, 1;
    # PET/MR: P1 TP, P2 FN, P3 TN, P4 TN -> 1, 0, 1, 2; FU1 (P2 disease-free by its FU1 patient row): P1 TP (the
    # persisting L1), P2 TN, P3 TN, P4 TN -> 1, 0, 0, 3
    assert _counts(result, "patient", "PET/CT", "baseline") == [2, 1, 0, 1]
    assert _counts(result, "patient", "PET/MR", "baseline") == [1, 0, 1, 2]
    assert _counts(result, "patient", "PET/CT", "FU1") == [1, 0, 0, 3]
    fu1 = next(e for e in result["accuracy"] if e["level"] == "patient" and e["time_point"] == "FU1")
    assert fu1["sensitivity"]["estimate"] == 1.0 and fu1["specificity"]["estimate"] == 1.0
    # regions at FU1 (bone, liver, pancreas x 4 patients): P1 liver TP, the other 11 TN (P2 bone resolved)
    assert _counts(result, "region", "PET/CT", "FU1") == [1, 0, 0, 11]
    # comparisons pair groups of one time point only: PET/MR vs PET/CT at baseline
    pairs = {(c["differs_in"], c["a"]["time_point"], c["b"]["time_point"]) for c in result["comparisons"]}
    assert pairs == {("modality", "baseline", "baseline")}
    assert all(c["a"]["time_point"] == c["b"]["time_point"] for c in result["roc_comparisons"] + result["agreement"])
    # false findings name their time point
    falses = {(f["kind"], f["modality"], f["time_point"], f["patient_id"], f["lesion_id"])
              for f in result["false_findings"]}
    assert falses == {("false positive", "PET/CT", "baseline", "P4", "L1"),
                      ("false negative", "PET/MR", "baseline", "P2", "L1"),
                      ("false negative", "PET/CT", "FU1", "P1", "L2")}
    assert "PET/CT dotatate R1 at FU1" in result["inputs"]["not_read"]


def test_report_and_summary_show_the_time_point(tmp_path):
    from netpet.cli.stats import summary

    study = load_study(_write(tmp_path / "t.csv", COLUMNS, TABLE), _write(tmp_path / "r.csv", REF_HEADER, REFERENCE))
    analysis = analyse(study, StatsOptions(bootstrap=0))
    written = write_outputs(analysis, str(tmp_path / "out"), figures_too=False)
    page = open(written["report.html"]).read()
    assert "PET/CT 68Ga-DOTATATE R1 at FU1" in page and "Time points" in page and "<th>time_point</th>" in page
    assert "Paired comparisons are made within a time point only" in page
    text = summary(analysis.result)
    assert "patient  PET/CT dotatate R1 at FU1" in text
    with open(tmp_path / "out" / "false-findings.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames[5:7] == ["reader", "time_point"]
        assert {r["time_point"] for r in reader} == {"baseline", "FU1"}


def test_group_pairs_never_pair_two_time_points():
    keys = ("modality", "tracer", "reader", "time_point")
    groups = [("PET/CT", "dotatate", "R1", "baseline"), ("PET/CT", "dotatate", "R1", "FU1"),
              ("PET/MR", "dotatate", "R1", "baseline"), ("PET/MR", "dotatate", "R1", "FU1"),
              ("PET/CT", "fdg", "R1", "FU1")]
    pairs = {(k, a["modality"], a["tracer"], a["time_point"], b["modality"], b["tracer"], b["time_point"])
             for k, a, b in group_pairs(groups, keys)}
    assert pairs == {("modality", "PET/MR", "dotatate", "baseline", "PET/CT", "dotatate", "baseline"),
                     ("modality", "PET/MR", "dotatate", "FU1", "PET/CT", "dotatate", "FU1"),
                     ("tracer", "PET/CT", "dotatate", "FU1", "PET/CT", "fdg", "FU1")}


def test_without_time_points_a_follow_up_is_still_refused_as_before(tmp_path):
    rows = [r[:5] + ("",) + r[6:] for r in TABLE]  # the FU1 label dropped: two PET/CT sessions of one group
    with pytest.raises(StatsError) as error:
        load_study(_write(tmp_path / "t.csv", COLUMNS, rows), _write(tmp_path / "r.csv", REF_HEADER[:5],
                                                                    [r[:5] for r in REFERENCE[:1]] +
                                                                    [("P1", "L2", "liver", "1", "x"),
                                                                     ("P2", "L1", "bone", "1", "x"),
                                                                     ("P3", "", "", "0", "x"),
                                                                     ("P4", "L1", "pancreas", "0", "x")]))
    text = str(error.value)
    assert "duplicated key: lesion L1 of patient P1 has 2 findings for PET/CT dotatate reader R1" in text
    assert "(or, for a follow-up, a time_point)" in text


@pytest.mark.parametrize("rows,message", [
    ([("P1", "L1", "liver", "1", "x", ""), ("P1", "L1", "liver", "1", "x", "FU1")],
     "r.csv row 3: duplicated key: patient P1 lesion L1 at time point FU1 is also on row 2 (every time point)"),
    ([("P1", "L1", "liver", "1", "x", "FU1"), ("P1", "L1", "liver", "0", "x", "FU1")],
     "r.csv row 3: conflicting truth: patient P1 lesion L1 at time point FU1 is also on row 2 at time point FU1"),
    ([("P1", "L1", "liver", "1", "x", "FU1"), ("P1", "", "", "0", "x", "FU1")],
     "r.csv row 3: conflicting truth: patient P1 is 0 (no disease) at time point FU1 but L1 are malignant"),
    ([("P1", "L1", "liver", "1", "x", "FU1"), ("P1", "", "liver", "0", "x", "")],
     "r.csv row 3: conflicting truth: region liver of patient P1 is 0 (every time point) but its lesion(s) L1"),
    ([("P1", "", "liver", "0", "x", "baseline"), ("P1", "", "liver", "1", "x", "")],
     "r.csv row 3: duplicated key: patient P1 region liver (every time point), also on row 2 at time point baseline"),
    ([("P1", "", "", "0", "x", "FU1"), ("P1", "", "", "0", "x", "FU1")],
     "r.csv row 3: duplicated key: patient P1 has a patient row (empty lesion_id and region) at time point FU1"),
])
def test_reference_time_point_clashes_are_named(tmp_path, rows, message):
    with pytest.raises(StatsError) as error:
        read_reference(_write(tmp_path / "r.csv", REF_HEADER, rows))
    assert message in str(error.value)


def test_rows_of_different_time_points_are_no_clash(tmp_path):
    rows = [("P1", "L1", "liver", "1", "x", "baseline"), ("P1", "L1", "liver", "0", "x", "FU1"),
            ("P1", "", "liver", "0", "x", "FU1"), ("P1", "", "", "0", "x", "FU1")]
    reference = read_reference(_write(tmp_path / "r.csv", REF_HEADER, rows))
    assert reference.at("baseline").patients["truth"].tolist() == [1]
    assert reference.at("FU1").patients["truth"].tolist() == [0]
    assert reference.at("FU2").lesions.empty  # no row applies at a time point the file does not name


def test_a_finding_of_a_lesion_not_there_at_its_time_point_is_refused(tmp_path):
    rows = [_row("P1", "B-CT", "PET/CT", "", "L2", "positive", "5"),
            _row("P1", "F-CT", "PET/CT", "FU1", "L2", "positive")]
    with pytest.raises(StatsError) as error:
        load_study(_write(tmp_path / "t.csv", COLUMNS, rows), _write(tmp_path / "r.csv", REF_HEADER, REFERENCE))
    assert ("t.csv line 2: lesion L2 of patient P1 has no row for time point baseline in the reference standard" in
            str(error.value))
    assert "its rows are for FU1" in str(error.value)


def test_time_point_is_no_group_by_column(tmp_path):
    with pytest.raises(StatsError, match="--group-by time_point: the time point is a group key by itself"):
        load_study(_write(tmp_path / "t.csv", COLUMNS, TABLE), _write(tmp_path / "r.csv", REF_HEADER, REFERENCE),
                   group_by=["time_point"])


def test_time_points_follow_days_from_baseline(tmp_path):
    rows = [_row("P1", "F2", "PET/CT", "late", "", "", "", "400"),
            _row("P1", "F1", "PET/CT", "early", "", "", "", "90"),
            _row("P1", "B", "PET/CT", "", "", "")]
    study = load_study(_write(tmp_path / "t.csv", COLUMNS, rows), _write(tmp_path / "r.csv", REF_HEADER, REFERENCE))
    assert study.time_points == ["baseline", "early", "late"]


def _json(tmp_path, name, table_header, table_rows, ref_header, ref_rows):
    folder = tmp_path / name
    folder.mkdir()
    table = _write(folder / "t.csv", table_header, table_rows)
    reference = _write(folder / "r.csv", ref_header, ref_rows)
    analysis = analyse(load_study(table, reference), StatsOptions(bootstrap=100))
    write_outputs(analysis, str(folder / "out"), figures_too=False)
    files = {name: (folder / "out" / name).read_text().replace(str(folder), "FOLDER")
             for name in ("stats.json", "accuracy.csv", "false-findings.csv", "units-lesion.csv", "units-patient.csv",
                          "units-region.csv", "comparisons.csv")}
    return json.dumps(analysis.result, indent=1).replace(str(folder), "FOLDER"), files


def test_a_single_time_point_gives_the_same_output_byte_for_byte(tmp_path):
    base = [r for r in TABLE if r[5] != "FU1"]
    plain_columns = tuple(c for c in COLUMNS if c not in ("time_point", "days_from_baseline"))
    plain_rows = [tuple(v for c, v in zip(COLUMNS, r) if c not in ("time_point", "days_from_baseline")) for r in base]
    reference = [r[:5] for r in REFERENCE if r[5] != "FU1"]
    old = _json(tmp_path, "plain", plain_columns, plain_rows, REF_HEADER[:5], reference)
    # the same study with a time_point column (empty or "baseline") in the table and an empty one in the reference
    new = _json(tmp_path, "labelled", COLUMNS, base, REF_HEADER, [r + ("",) for r in reference])
    assert new == old
    # the accuracy, units and comparisons carry no time point; the reading standards (netpet scores' rows, which name
    # their time point whatever the study) are left out of this check
    accuracy_part = {k: v for k, v in json.loads(old[0]).items() if k != "scores"}
    assert "time_point" not in json.dumps(accuracy_part) and old[0].count('"tp"') > 0
    assert '"staging"' not in old[0]  # no primary or site column: no staging key, as before


CORR_HEADER = ("patient_id", "session_id", "modality", "tracer", "reader", "time_point", "lesion_id",
               "reference_lesion_id", "track_id", "status")


def test_correspondence_at_several_time_points(tmp_path):
    """Readers' own ids at baseline and FU1, joined by a correspondence table."""
    own = [
        _row("P1", "B-CT", "PET/CT", "", "A01", "positive", "12"), _row("P2", "B-CT", "PET/CT", "", "A01", "positive"),
        _row("P3", "B-CT", "PET/CT", "", "", ""), _row("P4", "B-CT", "PET/CT", "", "A01", "positive"),
        _row("P1", "B-MR", "PET/MR", "", "M01", "positive"), _row("P2", "B-MR", "PET/MR", "", "M01", "negative"),
        _row("P3", "B-MR", "PET/MR", "", "", ""), _row("P4", "B-MR", "PET/MR", "", "M01", "negative"),
        _row("P1", "F-CT", "PET/CT", "FU1", "F01", "positive"), _row("P1", "F-CT", "PET/CT", "FU1", "F02", "negative"),
        _row("P2", "F-CT", "PET/CT", "FU1", "F01", "positive"), _row("P3", "F-CT", "PET/CT", "FU1", "F01", "positive"),
        _row("P4", "F-CT", "PET/CT", "FU1", "F01", "negative"),
    ]

    def corr(patient, session, modality, when, lesion, target, status="matched", track=None):
        return (patient, session, modality, "dotatate", "R1", when, lesion, target, track or target, status)

    rows = [corr("P1", "B-CT", "PET/CT", "", "A01", "L1"), corr("P2", "B-CT", "PET/CT", "baseline", "A01", "L1"),
            corr("P4", "B-CT", "PET/CT", "", "A01", "L1"), corr("P1", "B-MR", "PET/MR", "", "M01", "L1"),
            corr("P2", "B-MR", "PET/MR", "", "M01", "L1"), corr("P4", "B-MR", "PET/MR", "", "M01", "L1"),
            corr("P1", "F-CT", "PET/CT", "FU1", "F01", "L1"), corr("P1", "F-CT", "PET/CT", "FU1", "F02", "L2"),
            corr("P2", "F-CT", "PET/CT", "FU1", "F01", "L1", "confirmed"),  # P2 L1 resolved: no FU1 row
            corr("P3", "F-CT", "PET/CT", "FU1", "F01", "", "unmatched", "X01"),
            corr("P4", "F-CT", "PET/CT", "FU1", "F01", "L1")]
    table = _write(tmp_path / "t.csv", COLUMNS, own)
    reference = _write(tmp_path / "r.csv", REF_HEADER, REFERENCE)
    study = load_study(table, reference, correspondence=_write(tmp_path / "c.csv", CORR_HEADER, rows))
    result = analyse(study, StatsOptions(bootstrap=0)).result
    # baseline as with typed ids; the unmatched P3 X01 is a lesion at FU1 only
    assert _counts(result, "lesion", "PET/CT", "baseline") == [2, 1, 0, 0]
    assert _counts(result, "lesion", "PET/MR", "baseline") == [1, 0, 1, 1]
    # FU1: P1 L1 TP, P1 L2 FN, P2 L1 (gone at FU1 by the reference: truth 0 there) FP, P3 X01 FP, P4 L1 TN
    assert _counts(result, "lesion", "PET/CT", "FU1") == [1, 2, 1, 1]
    # patients at FU1: P1 TP, P2 FP (disease-free, called), P3 FP, P4 TN
    assert _counts(result, "patient", "PET/CT", "FU1") == [1, 2, 0, 1]
    assert any(w.startswith("1 finding(s) are matched by the correspondence table to reference lesions that have no "
                            "row at their time point") and "lesion L1 of patient P2 at FU1" in w
               for w in result["inputs"]["warnings"])
    assert result["inputs"]["reference_lesions"] == 4  # the reference standard's own: P1 L1, L2, P2 L1, P4 L1


def test_a_table_time_point_the_reference_never_names_is_noted(tmp_path):
    rows = [r[:5] + ("FU-1" if r[5] == "FU1" else r[5],) + r[6:] for r in TABLE if r[7] != "L2"]
    study = load_study(_write(tmp_path / "t.csv", COLUMNS, rows), _write(tmp_path / "r.csv", REF_HEADER, REFERENCE))
    assert any("has no row for time point(s) FU-1 of the study table (its time points: FU1, baseline)" in w
               for w in study.warnings)


def test_a_session_has_one_time_point(tmp_path):
    rows = TABLE[:8] + [_row("P1", "B-CT", "PET/CT", "FU1", "L2", "negative")]  # the baseline session, labelled FU1
    with pytest.raises(StatsError) as error:
        load_study(_write(tmp_path / "t.csv", COLUMNS, rows), _write(tmp_path / "r.csv", REF_HEADER, REFERENCE))
    assert ("t.csv line 10: column time_point is FU1 but an earlier row gives session B-CT of patient P1 the time "
            "point baseline; a session has one time point") in str(error.value)
