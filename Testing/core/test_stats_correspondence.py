"""StudyStats with netpet match's correspondence table: readers' own ids joined to the reference lesions,
unmatched findings as lesions of their own, ambiguous matches listed, and every bad table refused in one
sentence; the reference standard's new optional columns (site, primary, locations)."""

from __future__ import annotations

import csv

import pytest

from netpet.stats.analysis import StatsOptions, analyse
from netpet.stats.data import UNMATCHED_STANDARD, load_study, read_reference
from netpet.stats.intervals import StatsError

REF_HEADER = ("patient_id", "lesion_id", "region", "truth", "standard", "site", "primary", "location_session",
              "center_r", "center_a", "center_s", "diameter_mm")
REFERENCE = [
    ("P1", "L1", "liver", "1", "histopathology", "liver segment 7", "small bowel", "S1", "-80", "10", "120", "22"),
    ("P1", "L2", "lymph nodes", "1", "follow-up", "mesenteric node", "small bowel", "S1", "20", "30", "60", "12"),
    ("P1", "L3", "bone", "0", "follow-up", "vertebra L2", "small bowel", "S1", "0", "60", "20", "10"),
    ("P2", "L1", "pancreas", "1", "histopathology", "pancreatic head", "pancreas", "S1", "30", "5", "90", "18"),
    ("P3", "", "", "0", "follow-up", "", "", "", "", "", "", ""),  # lesion-free patient
]
TABLE_COLUMNS = ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "call", "suv_max")
#  the readers' own ids (Slicer's click order), not the reference standard's
TABLE = [
    ("P1", "S1", "PET/CT", "dotatate", "R1", "A01", "liver", "positive", "12"),
    ("P1", "S1", "PET/CT", "dotatate", "R1", "A02", "lymph nodes", "positive", "8"),
    ("P1", "S1", "PET/CT", "dotatate", "R1", "A03", "soft tissue", "positive", "6"),
    ("P2", "S1", "PET/CT", "dotatate", "R1", "B01", "pancreas", "negative", "3"),
    ("P3", "S1", "PET/CT", "dotatate", "R1", "C01", "Bone ", "positive", "7"),  # the reference's "bone"
    ("P1", "S2", "PET/MR", "dotatate", "R1", "M01", "liver", "positive", "11"),
    ("P1", "S2", "PET/MR", "dotatate", "R1", "M02", "bone", "positive", "5"),
    ("P2", "S2", "PET/MR", "dotatate", "R1", "M01", "pancreas", "positive", "9"),
    ("P3", "S2", "PET/MR", "dotatate", "R1", "", "", "", ""),  # read without findings
]
CORR_HEADER = ("patient_id", "session_id", "modality", "tracer", "reader", "time_point", "lesion_id",
               "reference_lesion_id", "track_id", "status", "distance_mm", "gate_mm", "registration_error_mm", "via",
               "candidates", "note")
CORRESPONDENCE = [
    ("P1", "S1", "PET/CT", "dotatate", "R1", "", "A01", "L1", "L1", "matched", "2.1", "15", "2", "location", "", ""),
    ("P1", "S1", "PET/CT", "dotatate", "R1", "", "A02", "L2", "L2", "ambiguous", "5.0", "10", "2", "location",
     "L3:7.5", ""),
    ("P1", "S1", "PET/CT", "dotatate", "R1", "", "A03", "", "X01", "unmatched", "", "", "", "", "", ""),
    ("P2", "S1", "PET/CT", "dotatate", "R1", "", "B01", "L1", "L1", "matched", "1.0", "12", "2", "location", "", ""),
    ("P3", "S1", "PET/CT", "dotatate", "R1", "", "C01", "", "X01", "unmatched", "", "", "", "", "", ""),
    ("P1", "S2", "PET/MR", "dotatate", "R1", "", "M01", "L1", "L1", "confirmed", "3.0", "15", "2.5",
     "registration transforms/P1_S2_to_S1.h5", "", "checked by R1"),
    ("P1", "S2", "PET/MR", "dotatate", "R1", "", "M02", "L3", "L3", "matched", "2.0", "10", "2.5", "identity", "", ""),
    ("P1", "S2", "PET/MR", "dotatate", "R1", "", "", "L2", "L2", "missed", "", "", "", "", "", ""),
    ("P2", "S2", "PET/MR", "dotatate", "R1", "", "M01", "L1", "L1", "matched", "1.5", "12", "2.5", "identity", "", ""),
]


def _write(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _study(tmp_path, correspondence=CORRESPONDENCE, table=TABLE, header=CORR_HEADER):
    return (_write(tmp_path / "table.csv", TABLE_COLUMNS, table), _write(tmp_path / "reference.csv", REF_HEADER,
                                                                          REFERENCE),
            _write(tmp_path / "corr.csv", header, correspondence))


def _counts(result, level, modality):
    entry = next(e for e in result["accuracy"] if e["level"] == level and e["modality"] == modality
                 and not e["group_by"])
    return [entry[k] for k in ("tp", "fp", "fn", "tn")]


def test_readers_own_ids_are_joined_by_the_correspondence(tmp_path):
    table, reference, corr = _study(tmp_path)
    study = load_study(table, reference, correspondence=corr)
    result = analyse(study, StatsOptions(bootstrap=0)).result
    # lesion units: P1 L1, L2, L3, P2 L1 and one lesion per unmatched track: P1 X01 (soft tissue), P3 X01 (bone)
    # PET/CT: L1 TP (A01), L2 TP (A02, ambiguous, used as proposed), L3 TN (no finding), P1 X01 FP (A03),
    #         P2 L1 FN (B01 called negative), P3 X01 FP (C01)                  -> TP 2, FP 2, FN 1, TN 1
    # PET/MR: L1 TP (M01, confirmed), L2 FN (missed), L3 FP (M02 on a benign lesion), P1 X01 TN (not reported
    #         there), P2 L1 TP, P3 X01 TN                                       -> TP 2, FP 1, FN 1, TN 2
    assert _counts(result, "lesion", "PET/CT") == [2, 2, 1, 1]
    assert _counts(result, "lesion", "PET/MR") == [2, 1, 1, 2]
    # patients (truth P1 1, P2 1, P3 0: an unmatched finding's lesion has truth 0):
    # PET/CT: P1 TP, P2 FN (negative call), P3 FP (C01) -> 1, 1, 1, 0; PET/MR: P1 TP, P2 TP, P3 TN -> 2, 0, 0, 1
    assert _counts(result, "patient", "PET/CT") == [1, 1, 1, 0]
    assert _counts(result, "patient", "PET/MR") == [2, 0, 0, 1]
    # regions: bone, liver, lymph nodes, pancreas and the unmatched finding's soft tissue; 3 patients x 5 = 15 units
    # PET/CT: P1 liver TP, P1 lymph nodes TP, P1 soft tissue FP, P2 pancreas FN, P3 bone FP, 10 TN
    # PET/MR: P1 liver TP, P1 lymph nodes FN, P1 bone FP (M02), P2 pancreas TP, 11 TN
    assert study.regions == ["bone", "liver", "lymph nodes", "pancreas", "soft tissue"]
    assert _counts(result, "region", "PET/CT") == [2, 2, 1, 10]
    assert _counts(result, "region", "PET/MR") == [2, 1, 1, 11]
    # the unmatched findings' lesions: truth 0, the standard says where they come from, region from the table
    lesions = study.reference.lesions.set_index(["patient_id", "lesion_id"])
    assert lesions.loc[("P1", "X01"), ["truth", "standard", "region"]].tolist() == [0, UNMATCHED_STANDARD,
                                                                                     "soft tissue"]
    assert lesions.loc[("P3", "X01"), "region"] == "bone"
    falses = {(f["kind"], f["modality"], f["patient_id"], f["lesion_id"]) for f in result["false_findings"]}
    assert falses == {("false positive", "PET/CT", "P1", "X01"), ("false positive", "PET/CT", "P3", "X01"),
                      ("false negative", "PET/CT", "P2", "L1"), ("false positive", "PET/MR", "P1", "L3"),
                      ("false negative", "PET/MR", "P1", "L2")}
    fp = next(f for f in result["false_findings"] if f["lesion_id"] == "X01" and f["patient_id"] == "P1")
    assert fp["standard"] == UNMATCHED_STANDARD and fp["session_id"] == "S1" and fp["suv_max"] == 6
    # ... and name the reader's own id and the match behind each finding
    assert (fp["finding_id"], fp["match_status"]) == ("A03", "unmatched")
    assert {(f["lesion_id"], f["finding_id"], f["match_status"]) for f in result["false_findings"]
            if f["modality"] == "PET/MR"} == {("L3", "M02", "matched"), ("L2", "", "")}
    # the correspondence travels with the result: counts per status and the ambiguous match to confirm
    match = result["correspondence"]
    assert match["counts"] == {"matched": 4, "ambiguous": 1, "confirmed": 1, "unmatched": 2, "missed": 1}
    assert match["unmatched_tracks"] == 2
    assert [(a["row"], a["lesion_id"], a["reference_lesion_id"], a["candidates"]) for a in match["ambiguous"]] == [
        (3, "A02", "L2", "L3:7.5")]
    warning = next(w for w in result["inputs"]["warnings"] if "ambiguous" in w)
    assert warning.startswith("1 ambiguous match(es) of the correspondence table") and "A02 -> L2" in warning
    assert "(other candidates L3:7.5)" in warning


def test_paired_comparison_uses_the_joined_lesions(tmp_path):
    table, reference, corr = _study(tmp_path)
    result = analyse(load_study(table, reference, correspondence=corr), StatsOptions(bootstrap=0)).result
    exact = next(c for c in result["comparisons"] if c["level"] == "lesion" and c["measure"] == "sensitivity"
                 and c["test"] == "mcnemar-exact")
    # malignant lesions P1 L1 (both), P1 L2 (PET/CT only: missed on PET/MR), P2 L1 (PET/MR only)
    assert exact["a"]["modality"] == "PET/MR" and exact["n"] == 3 and exact["discordant"] == [1, 1]
    spec = next(c for c in result["comparisons"] if c["level"] == "lesion" and c["measure"] == "specificity"
                and c["test"] == "mcnemar-exact")
    # benign: P1 L3 (PET/MR FP, PET/CT TN), P1 X01 (PET/CT FP, PET/MR TN), P3 X01 (PET/CT FP, PET/MR TN)
    assert spec["n"] == 3 and spec["estimate_a"] == pytest.approx(2 / 3) and spec["estimate_b"] == pytest.approx(1 / 3)


def test_without_correspondence_the_refusal_points_to_netpet_match(tmp_path):
    table, reference, _ = _study(tmp_path)
    with pytest.raises(StatsError) as error:
        load_study(table, reference)
    text = str(error.value)
    assert "table.csv line 2: unknown id: lesion A01 of patient P1 is not in the reference standard" in text
    assert "netpet match" in text and "--correspondence" in text


def _replace(rows, index, **changes):
    out = [list(r) for r in rows]
    for column, value in changes.items():
        out[index][CORR_HEADER.index(column)] = value
    return [tuple(r) for r in out]


@pytest.mark.parametrize("rows,message", [
    (_replace(CORRESPONDENCE, 0, status="probably"), "corr.csv row 2: column status is probably; write one of matched"),
    (CORRESPONDENCE[:4] + CORRESPONDENCE[5:], "table.csv line 6: finding C01 of patient P3 session S1 PET/CT dotatate "
                                              "reader R1 time point baseline has no row in the correspondence table"),
    (CORRESPONDENCE + [("P1", "S1", "PET/CT", "dotatate", "R1", "", "Z99", "L1", "L1", "matched", "", "", "", "", "",
                        "")], "corr.csv row 11: finding Z99 of patient P1 session S1 PET/CT dotatate reader R1 time "
                              "point baseline is not in the study table"),
    (CORRESPONDENCE + [("P9", "S1", "PET/CT", "dotatate", "R1", "", "", "L1", "L1", "missed", "", "", "", "", "", "")],
     "corr.csv row 11: reference_lesion_id L1 of patient P9 is not in the reference standard"),
    (_replace(CORRESPONDENCE, 0, reference_lesion_id="L9"),
     "corr.csv row 2: reference_lesion_id L9 of patient P1 is not in the reference standard"),
    (_replace(CORRESPONDENCE, 2, reference_lesion_id="L3"), "corr.csv row 4: an unmatched row needs lesion_id and "
                                                            "track_id and an empty reference_lesion_id"),
    (_replace(CORRESPONDENCE, 0, reference_lesion_id=""), "corr.csv row 2: a matched row needs both lesion_id"),
    (_replace(CORRESPONDENCE, 7, lesion_id="M09"), "corr.csv row 9: a missed row needs reference_lesion_id and an "
                                                   "empty lesion_id"),
    (_replace(CORRESPONDENCE, 2, track_id="L3"), "corr.csv row 4: track_id L3 of an unmatched finding is also a "
                                                 "lesion id of patient P1"),
    (CORRESPONDENCE + [CORRESPONDENCE[0]], "corr.csv row 11: duplicated row: finding A01 of patient P1 session S1 "
                                           "PET/CT dotatate reader R1 time point baseline is also on row 2"),
    (_replace(CORRESPONDENCE, 2, reference_lesion_id="L1", track_id="L1", status="matched"),
     "duplicated key: findings A01, A03 of patient P1 (session(s) S1) are all joined to lesion L1 for PET/CT "
     "dotatate reader R1 by the correspondence table"),
    (CORRESPONDENCE + [("P1", "S1", "PET/CT", "dotatate", "R1", "", "", "L1", "L1", "missed", "", "", "", "", "", "")],
     "corr.csv row 11: reference lesion L1 is missed in patient P1 session S1 PET/CT dotatate reader R1 time point "
     "baseline but row 2 matches a finding of that read to it"),
    (_replace(CORRESPONDENCE, 0, session_id="S7"), "corr.csv row 2: the read patient P1 session S7 PET/CT dotatate "
                                                   "reader R1 time point baseline is not in the study table"),
    (_replace(CORRESPONDENCE, 0, reader=""), "corr.csv row 2: column reader is empty"),
])
def test_bad_correspondence_is_refused_in_one_sentence(tmp_path, rows, message):
    table, reference, corr = _study(tmp_path, rows)
    with pytest.raises(StatsError) as error:
        load_study(table, reference, correspondence=corr)
    text = str(error.value)
    assert message in text, text
    assert "\n" not in text


def test_missing_columns_and_file_of_the_correspondence(tmp_path):
    header = tuple(c for c in CORR_HEADER if c != "status")
    rows = [tuple(v for c, v in zip(CORR_HEADER, r) if c != "status") for r in CORRESPONDENCE]
    table, reference, corr = _study(tmp_path, rows, header=header)
    with pytest.raises(StatsError, match=r"corr.csv lacks the column\(s\) status; it needs patient_id"):
        load_study(table, reference, correspondence=corr)
    with pytest.raises(StatsError, match="does not exist; write it with netpet match"):
        load_study(table, reference, correspondence=str(tmp_path / "none.csv"))


def test_pseudonymised_patient_ids_reach_the_correspondence(tmp_path):
    table, reference, corr = _study(tmp_path)
    study = load_study(table, reference, patient_ids=lambda p: f"PSN-{p}", correspondence=corr)
    assert set(study.findings["patient_id"]) == {"PSN-P1", "PSN-P2", "PSN-P3"}
    assert ("PSN-P1", "X01") in set(zip(study.reference.lesions["patient_id"], study.reference.lesions["lesion_id"]))


# -- the reference standard's new optional columns -------------------------------------------------------

def test_site_primary_and_location_columns_are_kept(tmp_path):
    table, reference, corr = _study(tmp_path)
    ref = read_reference(reference)
    assert {"site", "primary", "location_session", "center_r", "diameter_mm"} <= set(ref.lesions.columns)
    assert dict(zip(ref.patients["patient_id"], ref.patients["primary"])) == {"P1": "small bowel", "P2": "pancreas",
                                                                              "P3": ""}
    study = load_study(table, reference, group_by=["site", "primary"], correspondence=corr)
    result = analyse(study, StatsOptions(bootstrap=0, group_by=["site", "primary"])).result
    # primary is a patient-level value: PET/CT small bowel = P1 (TP); pancreas = P2 (FN)
    by_primary = {e["group_by"]["primary"]: [e[k] for k in ("tp", "fp", "fn", "tn")] for e in result["accuracy"]
                  if e["level"] == "patient" and e["modality"] == "PET/CT" and "primary" in e["group_by"]}
    assert by_primary == {"": [0, 1, 0, 0], "pancreas": [0, 0, 1, 0], "small bowel": [1, 0, 0, 0]}
    mesenteric = next(e for e in result["accuracy"] if e["level"] == "lesion" and e["modality"] == "PET/MR"
                      and e["group_by"] == {"site": "mesenteric node"})
    assert [mesenteric[k] for k in ("tp", "fp", "fn", "tn")] == [0, 0, 1, 0]
    for column in ("location_session", "center_r", "center_a", "center_s", "diameter_mm"):
        with pytest.raises(StatsError) as error:
            load_study(table, reference, group_by=[column], correspondence=corr)
        assert f"--group-by {column}: {column} is one of the reference standard's location columns" in str(error.value)


def test_a_patient_has_one_primary(tmp_path):
    rows = [r[:6] + ("pancreas",) + r[7:] if r[1] == "L3" else r for r in REFERENCE]
    path = _write(tmp_path / "ref.csv", REF_HEADER, rows)
    with pytest.raises(StatsError) as error:
        read_reference(path)
    assert "ref.csv row 4: column primary is pancreas but row 2 gives patient P1 the primary small bowel" in str(
        error.value)
    # given once (on the patient row) it is the patient's
    path = _write(tmp_path / "ref2.csv", ("patient_id", "lesion_id", "region", "truth", "standard", "primary"),
                  [("P1", "L1", "liver", "1", "x", ""), ("P1", "", "", "1", "x", "pancreas")])
    assert read_reference(path).patients["primary"].tolist() == ["pancreas"]


# -- staging (netpet.stats.staging) wired into the analysis, the report and the summary -------------------------

def test_staging_travels_with_the_result(tmp_path):
    from netpet.cli.stats import summary
    from netpet.stats.report import write_outputs

    table, reference, corr = _study(tmp_path)
    analysis = analyse(load_study(table, reference, correspondence=corr), StatsOptions(bootstrap=0))
    staging = analysis.result["staging"]
    assert staging["available"]
    stages = {(g["label"], p["patient_id"]): ((p["findings"]["n"], p["findings"]["m"], p["findings"]["stage_group"]),
                                              (p["reference"]["n"], p["reference"]["m"]))
              for g in staging["groups"] for p in g["patients"]}
    # reference: P1 (small bowel) liver metastasis + mesenteric node -> N1 M1a; P2 pancreas = its primary -> N0 M0;
    # P3 no disease -> N0 M0. PET/CT: P1 adds the unmatched soft-tissue finding (extrahepatic) -> N1 M1c IV;
    # P3's unmatched bone finding -> M1b IV. PET/MR: P1's node missed -> N0, the benign bone lesion called -> M1c.
    assert stages[("PET/CT dotatate R1", "P1")] == (("N1", "M1c", "IV"), ("N1", "M1a"))
    assert stages[("PET/CT dotatate R1", "P3")] == (("N0", "M1b", "IV"), ("N0", "M0"))
    assert stages[("PET/MR dotatate R1", "P1")] == (("N0", "M1c", "IV"), ("N1", "M1a"))
    assert stages[("PET/MR dotatate R1", "P2")] == (("N0", "M0", "N0M0"), ("N0", "M0"))
    ct = next(g for g in staging["groups"] if g["label"] == "PET/CT dotatate R1")
    # correct N 3/3 (P1 N1, P2 N0, P3 N0), M 1/3 (P2 only), stage group 2/3 (P1 IV, P2 N0M0)
    assert [(ct["accuracy"][k]["correct"], ct["accuracy"][k]["total"])
            for k in ("correct_n", "correct_m", "correct_stage_group")] == [(3, 3), (1, 3), (2, 3)]
    text = summary(analysis.result)
    assert "Staging per patient" in text and "PET/CT dotatate R1: 3 patients; correct N 3/3" in text
    written = write_outputs(analysis, str(tmp_path / "out"), figures_too=False)
    page = open(written["report.html"]).read()
    assert "<h2>Staging</h2>" in page and "<th>finding_id</th>" in page
    assert "staging-patients.csv" in written and "staging-accuracy.csv" in written


def test_without_primary_and_site_there_is_no_staging_key(tmp_path):
    from netpet.stats.report import write_outputs

    header = REF_HEADER[:5]
    reference = _write(tmp_path / "r.csv", header, [r[:5] for r in REFERENCE])
    table = _write(tmp_path / "t.csv", TABLE_COLUMNS, TABLE)
    analysis = analyse(load_study(table, reference, correspondence=_write(tmp_path / "c.csv", CORR_HEADER,
                                                                          CORRESPONDENCE)), StatsOptions(bootstrap=0))
    assert "staging" not in analysis.result and not analysis.staging["available"]
    written = write_outputs(analysis, str(tmp_path / "out"), figures_too=False)
    assert "Staging is not available" in open(written["report.html"]).read()
    assert "staging-patients.csv" not in written


@pytest.mark.parametrize("first", ["netpet.clinical", "netpet.clinical.staging_stats", "netpet.phantom.stages",
                                   "netpet.stats.staging"])
def test_no_import_circle_between_stats_and_clinical(first):
    """netpet.stats.staging imports netpet.clinical, whose statistics import netpet.stats.intervals: the analysis
    imports the staging lazily, so any of them can be imported first (a module-level import broke the phantom)."""
    import subprocess
    import sys

    code = f"import {first}; import netpet.stats.analysis, netpet.stats.report, netpet.cli.stats"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
