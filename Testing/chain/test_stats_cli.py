"""`netpet stats` end to end on the digital reference study's truth: JSON schema, files, figures,
the self-contained report, causes kept across runs, and bad input."""

from __future__ import annotations

import csv
import json
import re

import pytest

from netpet.cli.main import main

SUVS = ("suv_max", "suv_peak", "suv_mean", "tl_ratio", "tb_ratio")


def _reader_table(out, path, extra_patient="NETPET-900"):
    """A study table as two readers would fill it from the truth: every avid lesion found; the call
    is the truth's tumour/liver side; reader R2 (PET/CT DOTATATE only) also calls the lesions just
    below the liver positive. Plus a lesion-free patient read without findings."""
    with open(out / "truth" / "lesions.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    rows = []
    for t in truth:
        if t["avid"] != "1":
            continue  # not visible on this tracer: no finding, a negative call
        ratio = float(t["tl_ratio_true"])
        base = {"patient_id": t["patient_id"], "session_id": t["session_id"], "modality": t["modality"],
                "tracer": t["tracer"], "lesion_id": t["lesion_id"], "region": t["region"],
                "suv_max": float(t["suv_max_true"]), "suv_peak": 0.9 * float(t["suv_max_true"]),
                "suv_mean": float(t["suv_mean_true"]), "tl_ratio": ratio,
                "tb_ratio": float(t["suv_max_true"]) / max(float(t["background_suv"]), 0.1),
                "segmentation_file": f"segmentations/{t['patient_id']}_{t['session_id']}.seg.nrrd"}
        rows.append({**base, "reader": "R1", "call": "positive" if ratio > 1.0 else "negative"})
        if t["modality"] == "PET/CT" and t["tracer"] == "dotatate":
            rows.append({**base, "reader": "R2", "call": "positive" if ratio > 0.8 else "negative"})
    sessions = {(t["patient_id"], t["session_id"], t["modality"], t["tracer"]) for t in truth}
    sessions |= {(extra_patient, f"S-{m}-{tr}", m, tr) for m, tr in (("PET/CT", "dotatate"), ("PET/MR", "dotatate"),
                                                                     ("PET/CT", "fdg"))}
    for patient, session, modality, tracer in sorted(sessions):  # every session read (some without findings)
        for reader in ("R1", "R2") if (modality, tracer) == ("PET/CT", "dotatate") else ("R1",):
            rows.append({"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer,
                         "reader": reader, "lesion_id": "", "call": ""})
    columns = ["patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "call", *SUVS,
               "segmentation_file"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return truth, rows


def _reference(out, path, extra_patient="NETPET-900"):
    text = (out / "reference_standard.csv").read_text()
    path.write_text(text.rstrip("\n") + f"\n{extra_patient},,,0,follow-up\n")
    return str(path)


@pytest.fixture(scope="module")
def stats_run(reference_study, tmp_path_factory):
    out, summary = reference_study
    folder = tmp_path_factory.mktemp("stats")
    truth, rows = _reader_table(out, folder / "table.csv")
    reference = _reference(out, folder / "reference.csv")
    return folder, truth, rows, reference


def test_json_schema_and_counts(stats_run, capsys):
    folder, truth, rows, reference = stats_run
    assert main(["stats", str(folder / "table.csv"), "--reference", reference, "--out", str(folder / "out"),
                 "--json", "--bootstrap", "500"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "comparisons", "roc", "roc_comparisons"):
        assert result[key], key
    for entry in result["accuracy"]:
        assert {"level", "modality", "tracer", "reader", "tp", "fp", "fn", "tn"} <= set(entry)
        for measure in ("sensitivity", "specificity", "ppv", "npv", "accuracy"):
            assert set(entry[measure]) >= {"estimate", "ci_low", "ci_high", "method"}
    for entry in result["comparisons"]:
        assert {"level", "measure", "a", "b", "test", "statistic", "p_value", "difference", "ci_low", "ci_high"} <= set(entry)
        assert set(entry["a"]) == {"modality", "tracer", "reader"}
    for entry in result["roc"]:
        assert {"level", "modality", "tracer", "variable", "auc", "ci_low", "ci_high", "youden_cutoff"} <= set(entry)
    for entry in result["roc_comparisons"]:
        assert {"level", "variable", "a", "b", "z", "p_value"} <= set(entry)
    # lesion-level counts recomputed here from the truth and the table
    lesion = {(e["modality"], e["tracer"], e["reader"]): e for e in result["accuracy"]
              if e["level"] == "lesion" and not e["group_by"]}
    reference_lesions = [t for t in truth if t["modality"] == "PET/CT" and t["tracer"] == "dotatate"]
    calls = {(r["patient_id"], r["lesion_id"]): r["call"] for r in rows
             if r["reader"] == "R1" and r["modality"] == "PET/CT" and r["tracer"] == "dotatate" and r["lesion_id"]}
    expected = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for t in reference_lesions:
        positive = calls.get((t["patient_id"], t["lesion_id"])) == "positive"
        malignant = t["malignant"] == "1"
        expected[("tp" if positive else "fn") if malignant else ("fp" if positive else "tn")] += 1
    assert {k: lesion[("PET/CT", "dotatate", "R1")][k] for k in expected} == expected
    # the patient level has its lesion-free patient as a true negative
    patient = next(e for e in result["accuracy"] if e["level"] == "patient" and e["modality"] == "PET/CT"
                   and e["tracer"] == "dotatate" and e["reader"] == "R1")
    assert patient["tn"] + patient["fp"] == 1 and patient["tp"] + patient["fn"] == 2
    # clustered intervals at lesion level, R2 calls more lesions positive than R1, and kappa exists
    assert lesion[("PET/CT", "dotatate", "R1")]["clustered"]["sensitivity"]["ci_low"] is not None
    assert lesion[("PET/CT", "dotatate", "R2")]["tp"] >= lesion[("PET/CT", "dotatate", "R1")]["tp"]
    assert {k["level"] for k in result["kappa"]} == {"patient", "lesion"}
    # paired PET/MR vs PET/CT and DOTATATE vs FDG comparisons at every level
    kinds = {(c["level"], c["a"]["modality"], c["b"]["modality"], c["a"]["tracer"], c["b"]["tracer"])
             for c in result["comparisons"]}
    for level in ("patient", "lesion", "region"):
        assert (level, "PET/MR", "PET/CT", "dotatate", "dotatate") in kinds
        assert (level, "PET/CT", "PET/CT", "dotatate", "fdg") in kinds
    assert any(c["test"] == "mcnemar-clustered" and c["p_value"] is not None for c in result["comparisons"])
    # the FDG PET/CT: malignant but FDG-negative lesions count as false negatives
    fdg = lesion[("PET/CT", "fdg", "R1")]
    assert fdg["fn"] >= sum(1 for t in truth if t["tracer"] == "fdg" and t["malignant"] == "1" and t["avid"] == "0")
    # ROC of SUVmax on the same lesions: AUC in range, Youden cut-off between observed values
    entry = next(e for e in result["roc"] if e["variable"] == "suv_max" and e["modality"] == "PET/CT"
                 and e["tracer"] == "dotatate" and e["reader"] == "R1")
    assert entry["auc"] is None or 0.0 <= entry["ci_low"] <= entry["auc"] <= entry["ci_high"] <= 1.0


def test_outputs_figures_and_self_contained_report(stats_run, capsys):
    folder, *_ , reference = stats_run
    out = folder / "files"
    assert main(["stats", str(folder / "table.csv"), "--reference", reference, "--out", str(out),
                 "--ci", "clopper-pearson", "--bootstrap", "200"]) == 0
    printed = capsys.readouterr().out
    assert "sensitivity" in printed and "report.html" in printed
    for name in ("accuracy.csv", "comparisons.csv", "roc.csv", "roc-comparisons.csv", "agreement.csv", "kappa.csv",
                 "false-findings.csv", "causes.csv", "units-lesion.csv", "stats.json", "report.html"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "accuracy.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["sensitivity_method"] for r in rows if r["sensitivity_method"]} == {"clopper-pearson"}
    figures = sorted(p.name for p in (out / "figures").iterdir())
    for stem in ("forest_patient", "forest_lesion", "roc_suv_max"):
        assert f"{stem}.png" in figures and f"{stem}.svg" in figures
    assert any(name.startswith("bland_altman_suv_max_modality") for name in figures)
    assert (out / "figures" / "roc_suv_max.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figures" / "roc_suv_max.svg").read_text().lstrip().startswith("<?xml")
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4
    assert not re.search(r"""(src|href)=['"]?(https?:|//|/|file:)""", page)  # nothing outside the file
    for heading in ("Accuracy, patient level", "Accuracy, lesion level", "Accuracy, region level", "Paired comparisons",
                    "ROC analysis", "Agreement of SUVs", "Inter-reader agreement", "False positives and false negatives"):
        assert heading in page


def test_causes_are_kept_and_tallied(stats_run, capsys):
    folder, *_, reference = stats_run
    out = folder / "causes"
    args = ["stats", str(folder / "table.csv"), "--reference", reference, "--out", str(out), "--bootstrap", "0",
            "--no-figures"]
    assert main(args) == 0
    path = out / "false-findings.csv"
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames, list(reader)
    assert rows and "cause" in columns
    fp = [r for r in rows if r["kind"] == "false positive"]
    fn = [r for r in rows if r["kind"] == "false negative"]
    assert fn
    for row in fn:
        row["cause"] = "small lesion (partial volume)" if row["found"] == "yes" else "not avid on this tracer"
    for row in fp:
        row["cause"] = "physiological uptake"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    assert main(args) == 0
    with open(path, newline="") as handle:
        again = list(csv.DictReader(handle))
    assert [r["cause"] for r in again] == [r["cause"] for r in rows]
    with open(out / "causes.csv", newline="") as handle:
        tally = {(r["kind"], r["cause"]): int(r["count"]) for r in csv.DictReader(handle)}
    assert sum(tally.values()) == len(rows) and ("false positive", "(not given yet)") not in tally
    assert "not avid on this tracer" in (out / "report.html").read_text()
    capsys.readouterr()


def test_bad_input_exit_codes(stats_run, tmp_path, capsys):
    folder, *_, reference = stats_run
    bad = tmp_path / "table.csv"
    bad.write_text("patient_id,session_id,modality,tracer,reader,lesion_id,call\n"
                   "NETPET-001,S1,PET/CT,dotatate,R1,L99,positive\n")
    assert main(["stats", str(bad), "--reference", reference, "--out", str(tmp_path / "o")]) == 3
    assert "table.csv line 2: unknown id: lesion L99 of patient NETPET-001" in capsys.readouterr().err
    assert main(["stats", str(folder / "table.csv"), "--reference", str(tmp_path / "none.csv"),
                 "--out", str(tmp_path / "o")]) == 3
    assert "does not exist" in capsys.readouterr().err
    assert main(["stats", str(folder / "table.csv"), "--reference", reference, "--out", str(tmp_path / "o"),
                 "--ci", "wald"]) == 2
    assert main(["stats", str(folder / "table.csv"), "--reference", reference, "--out", str(tmp_path / "o"),
                 "--group-by", "ward"]) == 3
    assert "has a column 'ward'" in capsys.readouterr().err
    # the reference standard's lesion locations (for netpet match) are no groups
    assert main(["stats", str(folder / "table.csv"), "--reference", reference, "--out", str(tmp_path / "o"),
                 "--group-by", "center_r"]) == 3
    assert "center_r is one of the reference standard's location columns" in capsys.readouterr().err


def test_bootstrap_is_reproducible_across_processes(tmp_path):
    """The same --seed gives the same clustered intervals in separate processes (whose str hashes differ)."""
    import os
    import subprocess
    import sys

    import numpy as np

    rng = np.random.default_rng(3)
    reference = ["patient_id,lesion_id,region,truth,standard"]
    table = ["patient_id,session_id,modality,tracer,reader,lesion_id,call"]
    for p in range(40):  # enough patients that the bootstrap percentiles depend on the replicates drawn
        for lesion in range(int(rng.integers(1, 6))):
            truth = int(rng.random() < 0.7)
            reference.append(f"P{p},L{lesion},liver,{truth},follow-up")
            call = "positive" if rng.random() < (0.8 if truth else 0.3) else "negative"
            table.append(f"P{p},S1,PET/CT,dotatate,R1,L{lesion},{call}")
    (tmp_path / "reference.csv").write_text("\n".join(reference) + "\n")
    (tmp_path / "table.csv").write_text("\n".join(table) + "\n")
    outputs = []
    for run in range(2):
        result = subprocess.run([sys.executable, "-m", "netpet.cli.main", "stats", str(tmp_path / "table.csv"),
                                 "--reference", str(tmp_path / "reference.csv"), "--out", str(tmp_path / f"run{run}"),
                                 "--bootstrap", "300", "--seed", "7", "--no-figures", "--json"],
                                capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONHASHSEED": str(run + 1)})
        outputs.append(json.loads(result.stdout))
    lesion = [next(e for e in o["accuracy"] if e["level"] == "lesion") for o in outputs]
    assert lesion[0]["clustered"] == lesion[1]["clustered"]
    # and another seed gives other replicates (the intervals do depend on them)
    other = subprocess.run([sys.executable, "-m", "netpet.cli.main", "stats", str(tmp_path / "table.csv"),
                            "--reference", str(tmp_path / "reference.csv"), "--out", str(tmp_path / "run2"),
                            "--bootstrap", "300", "--seed", "8", "--no-figures", "--json"],
                           capture_output=True, text=True, check=True)
    changed = next(e for e in json.loads(other.stdout)["accuracy"] if e["level"] == "lesion")
    assert changed["clustered"] != lesion[0]["clustered"]


def _equivocal_table(folder, rows):
    """The readers' table with NETPET's three-way call and quality columns: R1's calls of lesions whose true T/L lies
    within 0.9-1.1 become equivocal; the first such lesion is also not separable (no volume, no SUVmean, flagged)."""
    out, first = [], True
    for row in rows:
        row = {**row, "segmentation_status": "segmented" if row["lesion_id"] else "", "flags": "", "warnings": ""}
        if row["lesion_id"] and row["reader"] == "R1" and 0.9 < row["tl_ratio"] <= 1.1:
            row["call"] = "equivocal"
            row["warnings"] = "uptake equal to the liver within its measurement noise"
            if first:
                first = False
                row.update({"segmentation_status": "not separable", "flags": "not-separable;low-contrast",
                            "suv_mean": "", "warnings": "not separable: low contrast | " + row["warnings"]})
        out.append(row)
    columns = list(out[0]) + [c for c in ("segmentation_status", "flags", "warnings") if c not in out[0]]
    with open(folder / "equivocal.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(out)
    return str(folder / "equivocal.csv"), out


def test_equivocal_rule_and_quality_columns(stats_run, capsys):
    folder, truth, rows, reference = stats_run
    table, written = _equivocal_table(folder, rows)
    equivocal = [r for r in written if r["call"] == "equivocal"]
    assert equivocal, "the reference study has lesions near the liver's uptake"
    results = {}
    for rule in ("negative", "positive"):
        out = folder / f"equivocal-{rule}"
        args = ["stats", table, "--reference", reference, "--out", str(out), "--bootstrap", "0", "--no-figures",
                "--json"] + (["--equivocal", rule] if rule == "positive" else [])
        assert main(args) == 0
        results[rule] = json.loads(capsys.readouterr().out)
        assert results[rule]["options"]["equivocal"] == rule
        assert f"were counted as {rule}" in (out / "report.html").read_text()
    group = ("PET/CT", "dotatate", "R1")
    in_group = [r for r in equivocal if (r["modality"], r["tracer"], r["reader"]) == group]
    malignant = {(t["patient_id"], t["lesion_id"]): t["malignant"] == "1" for t in truth
                 if (t["modality"], t["tracer"]) == group[:2]}
    moved_tp = sum(malignant[(r["patient_id"], r["lesion_id"])] for r in in_group)
    moved_fp = len(in_group) - moved_tp
    lesion = {rule: next(e for e in results[rule]["accuracy"] if e["level"] == "lesion" and not e["group_by"]
                         and (e["modality"], e["tracer"], e["reader"]) == group) for rule in results}
    negative, positive = lesion["negative"], lesion["positive"]
    assert negative["equivocal_findings"] == positive["equivocal_findings"] == len(in_group)
    assert positive["tp"] - negative["tp"] == moved_tp and negative["fn"] - positive["fn"] == moved_tp
    assert positive["fp"] - negative["fp"] == moved_fp and negative["tn"] - positive["tn"] == moved_fp
    cases = negative["tp"] + negative["fn"]
    assert (positive["sensitivity"]["estimate"] - negative["sensitivity"]["estimate"]) == pytest.approx(moved_tp / cases)
    # every group reports its own equivocal findings; R2 wrote none
    for entry in results["negative"]["accuracy"]:
        if entry["level"] == "lesion" and not entry["group_by"]:
            expected = sum(1 for r in equivocal if (r["modality"], r["tracer"], r["reader"]) ==
                           (entry["modality"], entry["tracer"], entry["reader"]))
            assert entry["equivocal_findings"] == expected
    assert results["negative"]["inputs"]["not_separable_findings"] == 1
    # SUVmean agreement leaves out the finding that is not separable (when its lesion was found in a paired group)
    dropped = [e for e in results["negative"]["agreement"] if e["variable"] == "suv_mean" and e["region"] == "all"]
    assert all(e["n_dropped"] == e["dropped_not_separable"] for e in dropped)
    assert any(e["dropped_not_separable"] == 1 for e in dropped)
    # the false findings carry the finding's call and quality
    with open(folder / "equivocal-negative" / "false-findings.csv", newline="") as handle:
        falses = list(csv.DictReader(handle))
    by_key = {(r["patient_id"], r["session_id"], r["modality"], r["tracer"], r["reader"], r["lesion_id"]): r
              for r in written if r["lesion_id"]}
    for row in falses:
        source = by_key.get((row["patient_id"], row["session_id"], row["modality"], row["tracer"], row["reader"],
                             row["lesion_id"]))
        if source is None:
            assert row["found"].startswith("no") and row["segmentation_status"] == row["flags"] == ""
            continue
        assert (row["call"], row["segmentation_status"], row["flags"], row["warnings"]) == (
            source["call"], source["segmentation_status"], source["flags"], source["warnings"])
    assert any(r["call"] == "equivocal" and r["kind"] == "false negative" for r in falses) == bool(moved_tp)


def test_equivocal_rule_is_checked(stats_run, tmp_path, capsys):
    folder, *_, reference = stats_run
    assert main(["stats", str(folder / "table.csv"), "--reference", reference, "--out", str(tmp_path / "o"),
                 "--equivocal", "maybe"]) == 2
    assert "invalid choice: 'maybe'" in capsys.readouterr().err


# -- netpet match's correspondence table and time points (issue 13) ------------------------------------------

def _small_match_study(folder):
    """The hand-checked study of Testing/core/test_stats_correspondence.py: readers' own ids, a correspondence."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "core" / "test_stats_correspondence.py"
    spec = importlib.util.spec_from_file_location("stats_correspondence_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module._study(folder)


def test_correspondence_option_end_to_end(tmp_path, capsys):
    module, (table, reference, corr) = _small_match_study(tmp_path)
    out = tmp_path / "out"
    assert main(["stats", table, "--reference", reference, "--out", str(out), "--correspondence", corr,
                 "--bootstrap", "0", "--no-figures"]) == 0
    captured = capsys.readouterr()
    assert "correspondence " + corr + ": 4 matched, 1 ambiguous, 1 confirmed, 2 unmatched, 1 missed" in captured.out
    assert "1 ambiguous match(es) used as proposed; confirm them (status confirmed): P1 S1 A02 -> L2" in captured.out
    assert "note: 1 ambiguous match(es) of the correspondence table" in captured.err
    lesion_ct = next(line for line in captured.out.splitlines() if line.startswith("lesion   PET/CT"))
    assert lesion_ct.split()[4:8] == ["2", "2", "1", "1"]  # TP FP FN TN, hand-checked in the core test
    result = json.loads((out / "stats.json").read_text())
    assert result["correspondence"]["counts"]["unmatched"] == 2
    page = (out / "report.html").read_text()
    assert "Lesion correspondence" in page and "1 ambiguous match(es)" in page and "L3:7.5" in page
    # without the option the readers' ids are unknown, and the sentence says what to do
    assert main(["stats", table, "--reference", reference, "--out", str(tmp_path / "o2"), "--bootstrap", "0",
                 "--no-figures"]) == 3
    assert "with netpet match and give its table with --correspondence" in capsys.readouterr().err
    # a bad correspondence table is refused with exit code 3
    rows = module._replace(module.CORRESPONDENCE, 0, status="maybe")
    bad = module._write(tmp_path / "bad.csv", module.CORR_HEADER, rows)
    assert main(["stats", table, "--reference", reference, "--out", str(tmp_path / "o3"), "--correspondence", bad,
                 "--bootstrap", "0", "--no-figures"]) == 3
    assert "bad.csv row 2: column status is maybe" in capsys.readouterr().err
    assert main(["stats", table, "--reference", reference, "--out", str(tmp_path / "o4"), "--correspondence",
                 str(tmp_path / "none.csv")]) == 3
    capsys.readouterr()


def test_time_points_end_to_end(tmp_path, capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "core" / "test_stats_timepoints.py"
    spec = importlib.util.spec_from_file_location("stats_timepoint_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module._write(tmp_path / "t.csv", module.COLUMNS, module.TABLE)
    reference = module._write(tmp_path / "r.csv", module.REF_HEADER, module.REFERENCE)
    assert main(["stats", table, "--reference", reference, "--out", str(tmp_path / "out"), "--bootstrap", "0",
                 "--no-figures"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # recurrence / disease detection per time point at the patient level (hand-checked in the core test)
    fu1 = next(line for line in lines if line.startswith("patient  PET/CT dotatate R1 at FU1"))
    assert fu1.split()[6:10] == ["1", "0", "0", "3"]  # TP FP FN TN
    baseline = next(line for line in lines if line.startswith("patient  PET/CT dotatate R1 at baseline"))
    assert baseline.split()[6:10] == ["2", "1", "0", "1"]


def test_match_then_stats_gives_the_counts_of_typed_ids(stats_run, reference_study, tmp_path, capsys):
    """The readers' table with their own ids (F01, F02 ... in a shuffled click order, centroids 1.5 mm off the true
    centre: a segmented centroid's uncertainty, under half a PET voxel), matched by netpet match through the
    reference study's per-session locations, gives netpet stats the very counts of the table whose findings carry the
    reference ids; a spurious finding far from every lesion becomes one more false positive."""
    import numpy as np

    folder, truth, rows, reference = stats_run
    study_folder, _ = reference_study
    centres = {(t["patient_id"], t["session_id"], t["lesion_id"]): (t["center_r"], t["center_a"], t["center_s"],
                                                                    t["volume_ml"]) for t in truth}
    rng = np.random.default_rng(11)
    own, counter = [], {}
    for row in rows:
        row = dict(row)
        if row["lesion_id"]:
            *centre, volume = centres[(row["patient_id"], row["session_id"], row["lesion_id"])]
            direction = rng.normal(size=3)
            centre = np.array(centre, dtype=float) + 1.5 * direction / np.linalg.norm(direction)
            read = (row["patient_id"], row["session_id"], row["reader"])
            counter[read] = counter.get(read, 0) + 1
            row.update(lesion_id=f"F{counter[read]:02d}", centroid_r=round(centre[0], 2),
                       centroid_a=round(centre[1], 2), centroid_s=round(centre[2], 2), mtv_ml=volume)
        own.append(row)
    spurious = next(r for r in own if r["lesion_id"] and r["reader"] == "R1" and r["modality"] == "PET/MR")
    own.append({**spurious, "lesion_id": "F99", "call": "positive", "centroid_r": float(spurious["centroid_r"]) + 80.0})
    columns = list(dict.fromkeys(k for r in own for k in r))
    with open(tmp_path / "own.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(own)
    corr = str(tmp_path / "correspondence.csv")
    assert main(["match", "--table", str(tmp_path / "own.csv"), "--reference", reference, "--locations",
                 str(study_folder / "reference_locations.csv"), "--out", corr]) == 0
    printed = capsys.readouterr().out
    assert "unmatched findings 1 (false positives)" in printed and "ambiguous 0" in printed
    results = {}
    for name, table, extra in (("typed", str(folder / "table.csv"), []),
                               ("matched", str(tmp_path / "own.csv"), ["--correspondence", corr])):
        assert main(["stats", table, "--reference", reference, "--out", str(tmp_path / name), "--bootstrap", "0",
                     "--no-figures", "--json", *extra]) == 0
        results[name] = json.loads(capsys.readouterr().out)

    def counts(result):
        return {(e["level"], e["modality"], e["tracer"], e["reader"]): [e[k] for k in ("tp", "fp", "fn", "tn")]
                for e in result["accuracy"] if not e["group_by"]}

    typed, matched = counts(results["typed"]), counts(results["matched"])
    group = ("PET/MR", "dotatate", "R1")
    # the spurious finding: one more lesion unit, a false positive in its group, a true negative in the others
    assert matched[("lesion", *group)] == [typed[("lesion", *group)][0], typed[("lesion", *group)][1] + 1,
                                           *typed[("lesion", *group)][2:]]
    for key in typed:
        if key[0] == "lesion" and key[1:] != group:
            assert matched[key] == typed[key][:3] + [typed[key][3] + 1], key
        elif key[0] == "patient":
            assert matched[key] == typed[key], key  # its patient has disease and was called positive already
    assert results["matched"]["correspondence"]["counts"]["unmatched"] == 1

