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
    # the reference standard's own columns other than region are not groups, and the message says so
    with pytest.raises(StatsError, match="standard is one of the reference standard's own columns"):
        load_study(table, reference, group_by=["standard"])


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
    ([finding("P1", "L1", "probably")], "t.csv line 2: column call is 'probably'; write positive, equivocal or "
                                        "negative."),
    ([finding("P1", "L1", "positive"), finding("P2", "L1", "borderline")],
     "t.csv line 3: column call is 'borderline'; write positive, equivocal or negative."),
    ([finding("P1", "L1", "")], "t.csv line 2: column call is ''; write positive, equivocal or negative."),
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


# -- equivocal calls, quality columns, missing values ---------------------------------------------------

QUALITY = {"segmentation_status": "not separable", "flags": "not-separable;low-contrast",
           "warnings": "not separable: no edge above the background, the local uptake is reported | uptake equal to "
                       "the liver within its measurement noise (SUVpeak 5.10 vs liver 5.00 +- 0.30)"}


def equivocal_study(tmp_path):
    """PET/CT: three equivocal findings (P1 L2 and P2 L1 malignant, P4 L1 benign); PET/MR: one (P1 L1)."""
    rows = [
        finding("P1", "L1", "positive", suv=12, segmentation_status="segmented", flags="", warnings=""),
        finding("P1", "L2", "equivocal", suv=5.5, segmentation_status="segmented", flags="partial-volume",
                warnings="smaller than 10 mm: partial volume lowers its SUVs"),
        finding("P1", "L3", "negative", suv=3, segmentation_status="segmented", flags="", warnings=""),
        finding("P2", "L1", "equivocal", suv=5.1, **QUALITY),
        finding("P3", "", ""),
        finding("P4", "L1", "Equivocal", suv=5.2, segmentation_status="segmented", flags="peak-moved", warnings=""),
        finding("P1", "L1", "equivocal", "PET/MR", suv=5.0), finding("P2", "L1", "positive", "PET/MR", suv=8),
        finding("P3", "", "", "PET/MR"), finding("P4", "L1", "negative", "PET/MR", suv=3),
    ]
    return write_table(tmp_path / "table.csv", rows), write_reference(tmp_path / "reference.csv")


def _counts(result, level, modality):
    entry = next(e for e in result["accuracy"] if e["level"] == level and e["modality"] == modality
                 and not e["group_by"])
    return entry, [entry[k] for k in ("tp", "fp", "fn", "tn")]


def test_equivocal_counts_negative_by_default_and_positive_on_request(tmp_path):
    table, reference = equivocal_study(tmp_path)
    study = load_study(table, reference)
    assert sorted(study.findings["finding_call"]) == ["equivocal"] * 4 + ["negative"] * 2 + ["positive"] * 2
    default = analyse(study, StatsOptions(bootstrap=0)).result
    assert default["options"]["equivocal"] == "negative" and default["inputs"]["equivocal_findings"] == 4
    # lesions, PET/CT: P1 L1 TP; P1 L2 and P2 L1 (equivocal, malignant) FN; P1 L3 and P4 L1 (equivocal, benign) TN
    lesion, counts = _counts(default, "lesion", "PET/CT")
    assert counts == [1, 0, 2, 2] and lesion["sensitivity"]["estimate"] == pytest.approx(1 / 3)
    assert lesion["specificity"]["estimate"] == 1.0 and lesion["equivocal_as"] == "negative"
    assert lesion["equivocal_findings"] == 3 and lesion["equivocal_units"] == 3
    # patients, PET/CT: P1 TP (L1 positive), P2 FN (only equivocal), P3 and P4 TN
    patient, counts = _counts(default, "patient", "PET/CT")
    assert counts == [1, 0, 1, 2]
    assert patient["equivocal_findings"] == 3 and patient["equivocal_units"] == 2  # P1 has a positive finding too
    # regions, PET/CT: P1 liver TP, P2 bone FN, the other 10 of 4 patients x 3 regions TN
    region, counts = _counts(default, "region", "PET/CT")
    assert counts == [1, 0, 1, 10] and region["equivocal_findings"] == 3 and region["equivocal_units"] == 2
    # the other group counts its own: PET/MR has one equivocal finding (P1 L1, P1's only finding)
    lesion_mr, counts = _counts(default, "lesion", "PET/MR")
    assert counts == [1, 0, 2, 2] and lesion_mr["equivocal_findings"] == 1 and lesion_mr["equivocal_units"] == 1
    patient_mr, _ = _counts(default, "patient", "PET/MR")
    assert patient_mr["equivocal_findings"] == 1 and patient_mr["equivocal_units"] == 1

    positive = analyse(load_study(table, reference), StatsOptions(bootstrap=0, equivocal="positive")).result
    assert positive["options"]["equivocal"] == "positive"
    # the two equivocal malignant lesions become TP, the equivocal benign P4 L1 a FP: sensitivity 1/3 -> 3/3
    lesion_pos, counts = _counts(positive, "lesion", "PET/CT")
    assert counts == [3, 1, 0, 1] and lesion_pos["equivocal_as"] == "positive"
    assert lesion_pos["sensitivity"]["estimate"] - lesion["sensitivity"]["estimate"] == pytest.approx(2 / 3)
    assert lesion_pos["specificity"]["estimate"] == 0.5
    assert _counts(positive, "patient", "PET/CT")[1] == [2, 1, 0, 1]   # P2 TP, P4 FP
    assert _counts(positive, "region", "PET/CT")[1] == [2, 1, 0, 9]    # P2 bone TP, P4 pancreas FP
    assert _counts(positive, "lesion", "PET/MR")[1] == [2, 0, 1, 2]    # P1 L1 TP
    # false findings say the call was equivocal
    falses = {(f["modality"], f["patient_id"], f["lesion_id"]): f for f in default["false_findings"]}
    assert falses[("PET/CT", "P1", "L2")]["call"] == "equivocal" and falses[("PET/CT", "P1", "L2")]["kind"] == (
        "false negative")
    assert falses[("PET/MR", "P1", "L2")]["call"] == "" and falses[("PET/MR", "P1", "L2")]["found"].startswith("no")
    falses = {(f["modality"], f["patient_id"], f["lesion_id"]): f for f in positive["false_findings"]}
    assert falses[("PET/CT", "P4", "L1")]["kind"] == "false positive" and falses[("PET/CT", "P4", "L1")]["call"] == (
        "equivocal")
    with pytest.raises(StatsError, match="Unknown --equivocal 'maybe'; choose negative"):
        analyse(study, StatsOptions(equivocal="maybe"))


def test_quality_columns_travel_to_the_false_findings(tmp_path):
    from netpet.stats.report import write_outputs

    table, reference = equivocal_study(tmp_path)
    analysis = analyse(load_study(table, reference), StatsOptions(bootstrap=0))
    out = tmp_path / "out"
    write_outputs(analysis, str(out), figures_too=False)
    with open(out / "false-findings.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames, list(reader)
    assert columns[-4:] == ["segmentation_status", "flags", "warnings", "cause"] and "call" in columns
    found = {(r["modality"], r["patient_id"], r["lesion_id"]): r for r in rows}
    assert set(found) == {("PET/CT", "P1", "L2"), ("PET/CT", "P2", "L1"), ("PET/MR", "P1", "L1"),
                          ("PET/MR", "P1", "L2")}
    p2 = found[("PET/CT", "P2", "L1")]
    assert {k: p2[k] for k in QUALITY} == QUALITY and p2["call"] == "equivocal" and p2["suv_max"] == "5.1"
    p1 = found[("PET/CT", "P1", "L2")]
    assert (p1["segmentation_status"], p1["flags"], p1["warnings"]) == (
        "segmented", "partial-volume", "smaller than 10 mm: partial volume lowers its SUVs")
    missed = found[("PET/MR", "P1", "L2")]  # no finding: no quality either
    assert (missed["call"], missed["segmentation_status"], missed["flags"], missed["warnings"]) == ("", "", "", "")
    # the JSON has them too, and the report marks the finding that is not separable and states the rule
    stats = analysis.result["false_findings"]
    assert next(f for f in stats if f["patient_id"] == "P2")["flags"] == "not-separable;low-contrast"
    page = (out / "report.html").read_text()
    assert "1 of these findings are <strong>not separable</strong>" in page
    assert "<tr class='not-separable'>" in page and "&#9888; not separable" in page
    assert "Equivocal calls (uptake equal to the liver within its measurement noise, Krenning 2) were counted as " \
           "negative" in page
    with open(out / "accuracy.csv", newline="") as handle:
        accuracy = list(csv.DictReader(handle))
    lesion_ct = next(r for r in accuracy if r["level"] == "lesion" and r["modality"] == "PET/CT")
    assert (lesion_ct["equivocal_findings"], lesion_ct["equivocal_units"], lesion_ct["equivocal_as"]) == (
        "3", "3", "negative")


def test_old_table_without_quality_columns_still_works(tmp_path):
    from netpet.stats.report import read_causes, write_outputs

    table, reference = small_study(tmp_path)
    study = load_study(table, reference)
    assert {"segmentation_status", "flags", "warnings"} <= set(study.findings.columns)
    analysis = analyse(study, StatsOptions(bootstrap=0))
    assert analysis.result["inputs"]["equivocal_findings"] == 0
    assert analysis.result["inputs"]["not_separable_findings"] == 0
    out = tmp_path / "out"
    # a false-findings.csv of an earlier NETPET (without the quality columns) with a cause filled in
    out.mkdir()
    (out / "false-findings.csv").write_text(
        "kind,patient_id,session_id,modality,tracer,reader,lesion_id,region,standard,found,suv_max,cause\n"
        "false positive,P4,P4-CT-dotatate,PET/CT,dotatate,R1,L1,pancreas,follow-up,yes,9,uncinate process\n")
    causes = read_causes(str(out / "false-findings.csv"))
    analysis = analyse(load_study(table, reference), StatsOptions(bootstrap=0, causes=causes))
    write_outputs(analysis, str(out), previous_causes=causes, figures_too=False)
    with open(out / "false-findings.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5  # lesion level: PET/CT 2 FP + 2 FN, PET/MR 1 FN
    assert all(r["segmentation_status"] == r["flags"] == r["warnings"] == "" for r in rows)
    assert {r["call"] for r in rows} == {"positive", "negative", ""}
    p4 = next(r for r in rows if r["patient_id"] == "P4")
    assert p4["cause"] == "uncinate process"  # the cause is kept across runs


def missing_values_study(tmp_path):
    """Six lesions (P1-P3 malignant, P4-P6 benign) read on PET/CT and PET/MR, some without an SUVmax; PET/CT P3 is
    not separable but its (stale) mtv_ml is filled in."""
    reference = write_reference(tmp_path / "r.csv", [(f"P{i}", "L1", "liver", "1" if i <= 3 else "0", "x", "")
                                                     for i in range(1, 7)])
    ct = {1: 10, 2: 8, 3: "", 4: 3, 5: 9, 6: ""}
    mr = {1: 11, 2: "", 3: 7, 4: 2, 5: 6, 6: 4}
    rows = []
    for i in range(1, 7):
        rows.append(finding(f"P{i}", "L1", "positive" if i in (1, 2, 3, 5) else "negative", suv=1.0,
                            segmentation_status="not separable" if i == 3 else "segmented",
                            mtv_ml="1.5" if i == 3 else "", tl_ratio=""))
        rows[-1]["suv_max"] = ct[i]
    for i in range(1, 7):
        rows.append(finding(f"P{i}", "L1", "positive" if i <= 3 else "negative", "PET/MR", suv=1.0,
                            segmentation_status="segmented", mtv_ml="", tl_ratio=""))
        rows[-1]["suv_max"] = mr[i]
    return write_table(tmp_path / "t.csv", rows), reference


def test_missing_values_are_dropped_and_counted(tmp_path):
    table, reference = missing_values_study(tmp_path)
    study = load_study(table, reference)
    assert np.isnan(study.findings["mtv_ml"]).all()  # the not-separable finding's volume is set aside
    assert any(w == "1 finding(s) not separable hold values of mtv_ml (first " + table + " line 4): set aside, as "
               "no volume was segmented." for w in study.warnings)
    result = analyse(study, StatsOptions(bootstrap=0, roc_variables=("suv_max", "mtv_ml"))).result
    assert result["inputs"]["not_separable_findings"] == 1
    roc = {(e["modality"], e["variable"]): e for e in result["roc"]}
    # PET/CT SUVmax: malignant 10, 8; benign 3, 9 -> AUC 3/4; P3 (not separable) and P6 (empty) left out
    ct = roc[("PET/CT", "suv_max")]
    assert (ct["n_cases"], ct["n_controls"], ct["n_dropped"], ct["dropped_not_separable"]) == (2, 2, 2, 1)
    assert ct["auc"] == pytest.approx(0.75)
    # PET/MR SUVmax: malignant 11, 7; benign 2, 6, 4 -> AUC 1; P2 left out
    mr = roc[("PET/MR", "suv_max")]
    assert (mr["n_cases"], mr["n_controls"], mr["n_dropped"], mr["dropped_not_separable"]) == (2, 3, 1, 0)
    assert mr["auc"] == pytest.approx(1.0)
    # MTV: no value left at all, every finding counted as left out
    volume = roc[("PET/CT", "mtv_ml")]
    assert volume["auc"] is None and volume["reason"] == "no lesions measured"
    assert (volume["n_dropped"], volume["dropped_not_separable"]) == (6, 1)
    # paired: found in both 6, a value missing in either for P2 (MR), P3 (CT, not separable), P6 (CT)
    paired = next(c for c in result["roc_comparisons"] if c["variable"] == "suv_max")
    assert (paired["n"], paired["n_dropped"], paired["dropped_not_separable"]) == (3, 3, 1)
    assert "fewer than two malignant" in paired["reason"]
    # agreement PET/MR - PET/CT on P1, P4, P5: differences 1, -1, -3
    for region in ("all", "liver"):
        entry = next(e for e in result["agreement"] if e["variable"] == "suv_max" and e["region"] == region)
        assert (entry["n"], entry["n_dropped"], entry["dropped_not_separable"]) == (3, 3, 1)
        assert entry["bland_altman"]["bias"] == pytest.approx(-1.0)
    # accuracy does not need the values: every finding counts
    assert _counts(result, "lesion", "PET/CT")[1] == [3, 1, 0, 2]


def test_empty_and_text_values_are_no_values(tmp_path):
    reference = write_reference(tmp_path / "r.csv", [(f"P{i}", "L1", "liver", "1" if i <= 2 else "0", "x", "")
                                                     for i in range(1, 5)])
    rows = [finding(f"P{i}", "L1", "positive", suv=float(10 - i)) for i in range(1, 5)]
    # (inf and NaN are refused: Testing/core/test_table_safety.py)
    rows[0]["tb_ratio"], rows[1]["tb_ratio"], rows[2]["tb_ratio"], rows[3]["tb_ratio"] = "", "n/a", "2.0", "1.0"
    result = analyse(load_study(write_table(tmp_path / "t.csv", rows), reference), StatsOptions(bootstrap=0)).result
    entry = next(e for e in result["roc"] if e["variable"] == "tb_ratio")
    assert (entry["n_cases"], entry["n_controls"], entry["n_dropped"]) == (0, 2, 2)
    assert entry["reason"] == "no malignant lesions measured"


def test_a_control_character_in_a_key_is_refused_with_its_row(tmp_path):
    """A NUL or escape in a key of a hand-edited table made a group of its own that the report could not
    show as written (found by the reference-standard property suite): refused, row and column named."""
    rows = [finding("P1", "L1", "positive", suv=12), finding("P2", "", "", "PET\x00/CT")]
    table = write_table(tmp_path / "table.csv", rows)
    reference = write_reference(tmp_path / "reference.csv")
    with pytest.raises(StatsError, match=r"line 3: column modality holds a control character \(PET\\x00/CT\)"):
        load_study(table, reference)


def test_finding_against_a_reference_without_lesion_rows_is_refused_in_one_sentence(tmp_path):
    """A reference standard with a patient-level truth only (no lesion rows) and a finding naming a lesion: the
    unknown id is refused with the row named (the property suite found a pandas error here: an empty assignment)."""
    from netpet.stats import load_study
    from netpet.stats.intervals import StatsError

    reference = tmp_path / "ref.csv"
    reference.write_text("patient_id,lesion_id,region,truth,standard,cohort\r\nP1,,,1,histology,NET\r\n")
    table = tmp_path / "t.csv"
    table.write_text("patient_id,session_id,modality,tracer,reader,lesion_id,call\r\n"
                     "P1,P1-PET/CT,PET/CT,dotatate,R1,L1,\r\n")
    with pytest.raises(StatsError, match=r"t.csv line 2: unknown id: lesion L1 of patient P1"):
        load_study(str(table), str(reference))
