"""StudyStats inputs and units: hand-checked small studies, and every bad input named clearly."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from netpet.stats.analysis import StatsOptions, analyse, group_pairs
from netpet.stats.data import load_study, read_reference, units_for
from netpet.stats.intervals import StatsError

REFERENCE = [
    # patient, lesion, region, truth, standard, indication
    ("P1", "L1", "liver", "malignant", "histopathology", "NET"),
    ("P1", "L2", "liver", "1", "follow-up", "NET"),
    ("P1", "L3", "bone", "benign", "follow-up", "NET"),
    ("P2", "L1", "bone", "1", "histopathology", "TIO"),
    ("P3", "", "", "0", "follow-up", "NET"),          # lesion-free patient
    ("P4", "L1", "pancreas", "0", "follow-up", "NET"),  # uncinate process: benign look-alike
    ("P4", "", "bone", "0", "follow-up", "NET"),       # bone proven free
]


def write_reference(path, rows=REFERENCE, header=("patient_id", "lesion_id", "region", "truth", "standard",
                                                  "indication")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def finding(patient, lesion, call, modality="PET/CT", tracer="dotatate", reader="R1", session=None, suv=5.0, **extra):
    return {"patient_id": patient, "session_id": session or f"{patient}-{modality[-2:]}-{tracer}", "modality": modality,
            "tracer": tracer, "reader": reader, "lesion_id": lesion, "call": call, "suv_max": suv,
            "tl_ratio": suv / 5.0, "region": "", **extra}


def write_table(path, rows):
    columns = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def small_study(tmp_path):
    rows = [
        finding("P1", "L1", "positive", suv=12), finding("P1", "L3", "positive", suv=7),  # L2 missed: FN
        finding("P2", "L1", "negative", suv=3),
        finding("P3", "", ""),                                                       # read, nothing found
        finding("P4", "L1", "positive", suv=9),
        # PET/MR of the same patients: L2 found, the bone lesion of P2 read lower (Dixon AC)
        finding("P1", "L1", "positive", "PET/MR", suv=11), finding("P1", "L2", "positive", "PET/MR", suv=6),
        finding("P2", "L1", "negative", "PET/MR", suv=2.5), finding("P3", "", "", "PET/MR"),
        finding("P4", "L1", "negative", "PET/MR", suv=4),
    ]
    return write_table(tmp_path / "table.csv", rows), write_reference(tmp_path / "reference.csv")


def test_units_and_counts_by_hand(tmp_path):
    table, reference = small_study(tmp_path)
    study = load_study(table, reference)
    units = units_for(study)
    patient = units["patient"].set_index(["modality", "patient_id"])
    assert patient.loc[("PET/CT", "P1"), "truth"] == 1 and patient.loc[("PET/CT", "P1"), "call"] == 1
    assert patient.loc[("PET/CT", "P2"), "call"] == 0                      # false negative patient
    assert patient.loc[("PET/CT", "P3"), ["truth", "call"]].tolist() == [0, 0]  # read without findings: TN
    assert patient.loc[("PET/CT", "P4"), ["truth", "call"]].tolist() == [0, 1]  # uncinate: FP patient
    lesion = units["lesion"].set_index(["modality", "patient_id", "lesion_id"])
    assert not lesion.loc[("PET/CT", "P1", "L2"), "found"] and lesion.loc[("PET/CT", "P1", "L2"), "call"] == 0
    assert len(units["lesion"]) == 2 * 5  # every reference lesion of the read patients, in both groups
    region = units["region"]
    assert sorted(study.regions) == ["bone", "liver", "pancreas"]
    assert len(region) == 2 * 4 * 3       # 4 patients read x 3 regions x 2 groups
    r = region.set_index(["modality", "patient_id", "region"])
    assert r.loc[("PET/CT", "P1", "bone"), ["truth", "call"]].tolist() == [0, 1]   # benign L3 called: FP region
    assert r.loc[("PET/CT", "P4", "bone"), "truth"] == 0

    result = analyse(study, StatsOptions(bootstrap=200)).result
    acc = {(e["level"], e["modality"]): e for e in result["accuracy"] if not e["group_by"]}
    assert [acc[("patient", "PET/CT")][k] for k in ("tp", "fp", "fn", "tn")] == [1, 1, 1, 1]
    assert [acc[("lesion", "PET/CT")][k] for k in ("tp", "fp", "fn", "tn")] == [1, 2, 2, 0]
    assert [acc[("lesion", "PET/MR")][k] for k in ("tp", "fp", "fn", "tn")] == [2, 0, 1, 2]
    # region level PET/CT: P1 liver TP, P1 bone FP, P2 bone FN, P4 pancreas FP, the other 8 TN
    assert [acc[("region", "PET/CT")][k] for k in ("tp", "fp", "fn", "tn")] == [1, 2, 1, 8]
    lesion_ct = acc[("lesion", "PET/CT")]
    assert lesion_ct["sensitivity"]["estimate"] == pytest.approx(1 / 3)
    assert lesion_ct["specificity"]["estimate"] == 0.0 and lesion_ct["n_patients"] == 3  # P3 has no lesions
    assert lesion_ct["clustered"]["sensitivity"]["method"].startswith("cluster bootstrap (200")
    # false findings link back to the finding, and the missed lesion says so
    falses = {(f["modality"], f["patient_id"], f["lesion_id"]): f for f in result["false_findings"]}
    assert falses[("PET/CT", "P1", "L2")]["kind"] == "false negative"
    assert falses[("PET/CT", "P1", "L2")]["found"].startswith("no")
    assert falses[("PET/CT", "P4", "L1")]["kind"] == "false positive" and falses[("PET/CT", "P4", "L1")]["suv_max"] == 9
    assert result["inputs"]["not_read"]["PET/CT dotatate R1"] == []


def test_paired_comparison_of_modalities(tmp_path):
    table, reference = small_study(tmp_path)
    result = analyse(load_study(table, reference), StatsOptions(bootstrap=100)).result
    entries = [c for c in result["comparisons"] if c["level"] == "lesion" and c["measure"] == "sensitivity"]
    assert {c["test"] for c in entries} == {"mcnemar-exact", "mcnemar-chi2", "mcnemar-chi2-cc", "mcnemar-clustered"}
    exact = next(c for c in entries if c["test"] == "mcnemar-exact")
    # the PET/MR group comes first; malignant lesions P1 L1 (both), P1 L2 (MR only), P2 L1 (neither)
    assert exact["a"]["modality"] == "PET/MR" and exact["b"]["modality"] == "PET/CT"
    assert exact["discordant"] == [1, 0] and exact["p_value"] == 1.0 and exact["difference"] == pytest.approx(1 / 3)
    assert exact["n"] == 3 and exact["ci_low"] < 1 / 3 < exact["ci_high"]
    spec = next(c for c in result["comparisons"] if c["level"] == "patient" and c["measure"] == "specificity"
                and c["test"] == "mcnemar-exact")
    assert spec["n"] == 2 and spec["estimate_a"] == 1.0 and spec["estimate_b"] == 0.5
    # SUV agreement by region: the bone lesion reads lower on PET/MR
    bone = next(e for e in result["agreement"] if e["variable"] == "suv_max" and e["region"] == "bone")
    assert bone["n"] == 1 and bone["bland_altman"]["reason"]
    overall = next(e for e in result["agreement"] if e["variable"] == "suv_max" and e["region"] == "all")
    assert overall["n"] == 3 and overall["bland_altman"]["bias"] == pytest.approx(((11 - 12) + (2.5 - 3) + (4 - 9)) / 3)


def test_group_by_reference_column_and_region(tmp_path):
    table, reference = small_study(tmp_path)
    study = load_study(table, reference, group_by=["indication", "region"])
    result = analyse(study, StatsOptions(bootstrap=0, group_by=["indication", "region"])).result
    by = [e for e in result["accuracy"] if e["group_by"] == {"indication": "TIO"} and e["level"] == "patient"
          and e["modality"] == "PET/CT"]
    assert len(by) == 1 and [by[0][k] for k in ("tp", "fp", "fn", "tn")] == [0, 0, 1, 0]
    assert by[0]["sensitivity"]["estimate"] == 0.0 and by[0]["specificity"]["estimate"] is None
    varies = [e for e in result["accuracy"] if e["level"] == "patient" and "region" in e["group_by"]]
    assert varies and all("varies within a patient" in e["reason"] for e in varies)
    liver = [e for e in result["accuracy"] if e["level"] == "lesion" and e["group_by"] == {"region": "liver"}
             and e["modality"] == "PET/CT"]
    assert [liver[0][k] for k in ("tp", "fp", "fn", "tn")] == [1, 0, 1, 0]
    assert "clustered" not in liver[0]  # --bootstrap 0: no cluster bootstrap, GEE only
    assert liver[0]["gee"]["sensitivity"]["estimate"] == 0.5


def test_pairs_of_groups():
    groups = [("PET/CT", "dotatate", "R1"), ("PET/MR", "dotatate", "R1"), ("PET/CT", "fdg", "R1"),
              ("PET/CT", "dotatate", "R2"), ("PET/MR", "fdg", "R2")]
    pairs = {(k, tuple(a.values()), tuple(b.values())) for k, a, b in group_pairs(groups)}
    assert ("modality", ("PET/MR", "dotatate", "R1"), ("PET/CT", "dotatate", "R1")) in pairs
    assert ("tracer", ("PET/CT", "dotatate", "R1"), ("PET/CT", "fdg", "R1")) in pairs
    assert ("reader", ("PET/CT", "dotatate", "R1"), ("PET/CT", "dotatate", "R2")) in pairs
    assert len(pairs) == 3  # (PET/MR fdg R2) differs from every other group in two keys


def test_patients_not_read_are_left_out_and_listed(tmp_path):
    rows = [finding("P1", "L1", "positive"), finding("P2", "L1", "positive"), finding("P1", "L1", "positive", "PET/MR")]
    study = load_study(write_table(tmp_path / "t.csv", rows), write_reference(tmp_path / "r.csv"))
    assert any("P3, P4" in w for w in study.warnings)
    result = analyse(study, StatsOptions(bootstrap=0)).result
    assert result["inputs"]["not_read"]["PET/MR dotatate R1"] == ["P2", "P3", "P4"]
    mr = next(e for e in result["accuracy"] if e["level"] == "patient" and e["modality"] == "PET/MR")
    assert mr["n_units"] == 1 and mr["specificity"]["estimate"] is None and "no reference-negative" in (
        mr["specificity"]["reason"])


def test_sqlite_table_and_truth_spellings(tmp_path):
    from netpet.quant.table import StudyTable

    table = StudyTable(str(tmp_path / "study.sqlite"))
    table.upsert([finding("P1", "L1", "positive"), finding("P2", "L1", "negative"), finding("P3", "", "")])
    reference = write_reference(tmp_path / "r.csv", [("P1", "L1", "liver", "TRUE", "histo", ""),
                                                     ("P2", "L1", "bone", "Yes", "histo", ""),
                                                     ("P3", "", "", "no", "follow-up", "")])
    result = analyse(load_study(table.path, reference), StatsOptions(bootstrap=0)).result
    patient = next(e for e in result["accuracy"] if e["level"] == "patient")
    assert [patient[k] for k in ("tp", "fp", "fn", "tn")] == [1, 0, 1, 1]


# -- bad input --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows,message", [
    ([("P1", "L1", "liver", "maybe", "x", "")], "row 2: column truth is 'maybe'"),
    ([("P1", "L1", "liver", "1", "x", ""), ("P1", "L1", "liver", "0", "x", "")], "row 3: conflicting truth"),
    ([("P1", "L1", "liver", "1", "x", ""), ("P1", "L1", "bone", "1", "x", "")], "row 3: duplicated key"),
    ([("P1", "L1", "liver", "1", "x", ""), ("P1", "", "liver", "0", "x", "")], "conflicting truth: region liver"),
    ([("P1", "L1", "liver", "1", "x", ""), ("P1", "", "", "0", "x", "")], "conflicting truth: patient P1"),
    ([("", "L1", "liver", "1", "x", "")], "column patient_id is empty"),
    ([("P1", "", "", "0", "x", ""), ("P1", "", "", "0", "x", "")], "duplicated key: patient P1"),
])
def test_bad_reference_standard_is_named(tmp_path, rows, message):
    path = write_reference(tmp_path / "ref.csv", rows)
    with pytest.raises(StatsError) as error:
        read_reference(path)
    assert message in str(error.value) and "ref.csv" in str(error.value)


def test_missing_columns_and_files_are_named(tmp_path):
    path = write_reference(tmp_path / "ref.csv", [("P1", "L1", "1")], header=("patient_id", "lesion_id", "truth"))
    with pytest.raises(StatsError, match=r"ref.csv lacks the column\(s\) region, standard"):
        read_reference(path)
    with pytest.raises(StatsError, match="does not exist"):
        read_reference(str(tmp_path / "nowhere.csv"))
    reference = write_reference(tmp_path / "r.csv")
    table = tmp_path / "t.csv"
    table.write_text("patient_id,session_id,modality,tracer,reader,lesion_id\nP1,S,PET/CT,dotatate,R1,L1\n")
    with pytest.raises(StatsError, match=r"t.csv lacks the column\(s\) call"):
        load_study(str(table), reference)
    table.write_text("patient_id,session_id,modality,tracer,reader,lesion_id,call\n")
    with pytest.raises(StatsError, match="has no rows"):
        load_study(str(table), reference)
    table.write_text("a,b\n1,2\n")
    with pytest.raises(StatsError, match="not a NETPET study table"):
        load_study(str(table), reference)


@pytest.mark.parametrize("rows,message", [
    ([finding("P9", "L1", "positive")], "t.csv line 2: unknown id: patient P9"),
    ([finding("P1", "L1", "positive"), finding("P1", "L7", "positive")], "t.csv line 3: unknown id: lesion L7 of patient P1"),
    ([finding("P1", "L1", "probably")], "t.csv line 2: column call is 'probably'"),
    ([finding("P1", "L1", "positive", session="S1"), finding("P1", "L1", "negative", session="S2")],
     "duplicated key: lesion L1 of patient P1 has 2 findings for PET/CT dotatate reader R1 (sessions S1, S2"),
    ([finding("P1", "L1", "positive", reader="")], "reader must all be given"),
])
def test_bad_study_table_rows_are_named(tmp_path, rows, message):
    reference = write_reference(tmp_path / "r.csv")
    with pytest.raises(StatsError) as error:
        load_study(write_table(tmp_path / "t.csv", rows), reference)
    assert message in str(error.value)


def test_unknown_group_by_and_options(tmp_path):
    table, reference = small_study(tmp_path)
    with pytest.raises(StatsError, match="has a column 'site'"):
        load_study(table, reference, group_by=["site"])
    with pytest.raises(StatsError, match="always split by"):
        load_study(table, reference, group_by=["reader"])
    study = load_study(table, reference)
    with pytest.raises(StatsError, match="Unknown --ci"):
        analyse(study, StatsOptions(ci="wald"))


def test_all_positive_study_degenerates_gracefully(tmp_path):
    reference = write_reference(tmp_path / "r.csv", [(f"P{i}", "L1", "liver", "1", "x", "") for i in range(6)])
    rows = [finding(f"P{i}", "L1", "positive", suv=float(5 + i)) for i in range(6)]
    result = analyse(load_study(write_table(tmp_path / "t.csv", rows), reference), StatsOptions(bootstrap=50)).result
    lesion = next(e for e in result["accuracy"] if e["level"] == "lesion")
    assert lesion["sensitivity"]["estimate"] == 1.0 and lesion["sensitivity"]["ci_high"] == 1.0
    assert lesion["specificity"]["estimate"] is None and lesion["gee"]["sensitivity"]["ci_low"] is None
    assert "logit is infinite" in lesion["gee"]["sensitivity"]["reason"]
    roc = next(e for e in result["roc"] if e["variable"] == "suv_max")
    assert roc["auc"] is None and roc["reason"] == "no benign lesions measured"
    assert not np.isnan(lesion["clustered"]["sensitivity"]["ci_low"])
