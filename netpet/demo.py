"""The end-to-end demo on the built-in synthetic study.

1. Write the digital reference study (:mod:`netpet.phantom`): synthetic NET/TIO patients with
   68Ga-DOTATATE PET/CT and PET/MR and 18F-FDG PET/CT, with known truth.
2. Index its DICOM tree: tracer and PET/CT vs PET/MR pairing of every PET.
3. Convert every PET to SUVbw and check it against the truth: the liver reference (3 cm sphere,
   PERCIST) and the SUVmax inside each truth lesion mask.
4. Quantify: a reader's clicks (one per truth lesion) go through ``netpet quantify`` into the
   study table: segmentation, references, measurements, the liver-threshold call, Krenning
   score, .seg.nrrd per session; every lesion is scored against the truth per stratum (avid,
   non-avid, benign traps, borderline, cold or iso-intense liver lesions, small, bone).
5. Check the SUV conversion on vendor-shaped digital reference objects (GE with a rewritten
   Series Time, Siemens, Philips counts with private scale factors).
6. StudyStats: sensitivity and specificity per patient, lesion and region, PET/MR vs PET/CT and
   DOTATATE vs FDG, ROC, agreement, false findings: ``statistics/report.html``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import replace
from typing import Any, Dict, List, Optional

import numpy as np
import SimpleITK as sitk

from netpet.dicom import dro, writer
from netpet.dicom.convert import convert_to_suv
from netpet.dicom.index import describe, index_tree
from netpet.geometry import ras_to_lps
from netpet.phantom import generate_study
from netpet.progress import ProgressCallback, report

#: Demo SUVs of the reference objects must match the truth to within this (int16 storage: 6e-5 SUV).
TOLERANCE = 1e-3
#: The liver reference of a session must match the truth within this fraction: the noise of a
#: 3 cm sphere mean (about 14 % per voxel over ~100 correlated voxels) stays well below 5 %.
LIVER_TOLERANCE = 0.05


def _sphere_mean(image: sitk.Image, values: np.ndarray, center_ras, diameter_mm: float) -> float:
    center = np.asarray(image.TransformPhysicalPointToContinuousIndex(ras_to_lps(center_ras)))
    spacing = np.asarray(image.GetSpacing())
    k, j, i = np.meshgrid(*(np.arange(n) for n in values.shape), indexing="ij")
    distance = np.sqrt(((i - center[0]) * spacing[0]) ** 2 + ((j - center[1]) * spacing[1]) ** 2
                       + ((k - center[2]) * spacing[2]) ** 2)
    return float(values[distance <= diameter_mm / 2].mean())


def _check_study(out: str, summary: Dict[str, Any], progress: Optional[ProgressCallback]) -> List[Dict[str, Any]]:
    import csv

    import slicerio

    with open(os.path.join(out, "truth", "lesions.csv"), newline="", encoding="utf-8") as handle:
        lesions = list(csv.DictReader(handle))
    index = index_tree(os.path.join(out, "dicom"))
    by_uid = {s.series_uid: s for s in index.pet_series()}
    sessions = [(p, s) for p in summary["patients"] for s in p["sessions"]]
    results = []
    for number, (patient, session) in enumerate(sessions):
        report(progress, 0.5 + 0.35 * number / len(sessions), f"SUV of {patient['patient_id']} {session['session_id']}")
        record = by_uid[session["pet_series_uid"]]
        result = convert_to_suv(record, "bw")
        path = os.path.join(out, "suv", f"{patient['patient_id']}_{session['session_id']}_SUVbw.nrrd")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sitk.WriteImage(result.image, path, useCompression=True)
        values = sitk.GetArrayFromImage(result.image)
        liver = _sphere_mean(result.image, values, session["liver_reference_center_ras"], 30.0)
        segmentation = slicerio.read_segmentation(os.path.join(out, session["segmentation_file"]))
        rows = [r for r in lesions if r["patient_id"] == patient["patient_id"] and r["session_id"] == session["session_id"]]
        found = []
        for row in rows:
            mask = slicerio.segment_mask(segmentation, slicerio.segment_from_id(segmentation, row["lesion_id"]))
            measured = float(values[np.transpose(mask, (2, 1, 0)) > 0].max())
            found.append({"lesion_id": row["lesion_id"], "diameter_mm": float(row["diameter_mm"]),
                          "suv_max_measured": round(measured, 2), "suv_max_true": float(row["suv_max_expected"]),
                          "malignant": row["malignant"] == "1"})
        results.append({
            "patient_id": patient["patient_id"], "session_id": session["session_id"], "tracer": record.tracer.label,
            "hybrid": record.hybrid, "liver_suv_measured": round(liver, 3), "liver_suv_true": session["liver_suv"],
            "liver_ok": abs(liver - session["liver_suv"]) <= LIVER_TOLERANCE * session["liver_suv"],
            "lesions": found, "suv_file": path, "reference_time_rule": result.provenance.reference_time_rule,
        })
    return results


def _check_reference_objects(out: str) -> List[Dict[str, Any]]:
    base = dro.Case(nuclide="Ga-68", agent_text="Ga68-DOTATATE", agent_code=("SCT", "724025002", "Dotatate Ga^68^"),
                    dose_bq=152.0e6)
    plans = [("siemens", replace(base, seed="siemens")), ("ge-rewritten-series-time", replace(base, seed="ge")),
             ("philips-counts", replace(base, seed="philips"))]
    results = []
    for name, case in plans:
        datasets, truth = dro.build(case)
        if name.startswith("siemens"):
            dro.siemens(datasets, case)
        elif name.startswith("ge"):
            for ds in datasets:  # post-processed: Series Time rewritten to the reconstruction time
                dro.set_dt(ds, "Series", case.scan + dt.timedelta(minutes=25))
            dro.ge(datasets, case, private_scan=case.scan)
        else:
            dro.philips(datasets, case, activity=dro.activity(case, truth))
        paths = writer.save_datasets(datasets, os.path.join(out, "reference-objects", name))
        result = convert_to_suv(paths, "bw")
        values = sitk.GetArrayFromImage(result.image)
        measured = {"background_median": float(np.median(values[truth == dro.BACKGROUND])),
                    "hot_max": float(values[truth == dro.HOT].max()),
                    "cold_min": float(values[truth == dro.COLD].min())}
        expected = {"background_median": dro.BACKGROUND, "hot_max": dro.HOT, "cold_min": dro.COLD}
        results.append({"object": name, "units": result.provenance.units, "measured": measured, "expected": expected,
                        "ok": all(abs(measured[k] - expected[k]) <= TOLERANCE for k in expected),
                        "reference_time_rule": result.provenance.reference_time_rule})
    return results


def _quantify(out: str, study_dir: str, summary_: Dict[str, Any], progress: Optional[ProgressCallback]) -> Dict[str, Any]:
    """Reader clicks at every truth lesion -> study table; every lesion scored against the truth per
    stratum (netpet.quant.evaluate: avid, non-avid, benign traps, borderline, cold or iso-intense
    liver lesions, small, bone): Dice, volume error, floods, share not separable, call agreement.

    Every session also gets a row without lesion and seed: the reader read it (for a lesion-free
    patient that is the only row, and StudyStats counts the patient as a true negative)."""
    import csv

    import slicerio

    from netpet.quant.evaluate import format_summary, lesion_record, summarize
    from netpet.quant.pipeline import run_manifest

    with open(os.path.join(study_dir, "truth", "lesions.csv"), newline="", encoding="utf-8") as handle:
        lesions = list(csv.DictReader(handle))
    manifest = os.path.join(out, "manifest.csv")
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s", "region"])
        for patient in summary_["patients"]:
            for session in patient["sessions"]:
                writer.writerow([patient["patient_id"], session["session_id"],
                                 os.path.join("study", "dicom", patient["patient_id"], session["session_id"], "PET"),
                                 "demo-reader", "", "", "", "", ""])
        for row in lesions:
            writer.writerow([row["patient_id"], row["session_id"],
                             os.path.join("study", "dicom", row["patient_id"], row["session_id"], "PET"), "demo-reader",
                             row["lesion_id"], row["center_r"], row["center_a"], row["center_s"], row["region"]])
    table = os.path.join(out, "study-table.csv")
    if os.path.exists(table):
        os.remove(table)
    summary = run_manifest(manifest, table, progress=lambda f, m: report(progress, 0.9 + 0.05 * f, m) or False)
    truth = {(r["patient_id"], r["session_id"], r["lesion_id"]): r for r in lesions}
    with open(table, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["lesion_id"]]
    records = []
    cache: Dict[str, Any] = {}
    for row in rows:
        key = (row["patient_id"], row["session_id"], row["lesion_id"])
        expected = truth[key]
        seg_path = os.path.join(out, row["segmentation_file"])
        truth_path = os.path.join(study_dir, expected["segmentation_file"])
        for path in (seg_path, truth_path):
            if path not in cache:
                cache[path] = slicerio.read_segmentation(path)
        ours = slicerio.segment_mask(cache[seg_path], slicerio.segment_from_id(cache[seg_path], row["lesion_id"])) > 0
        theirs = slicerio.segment_mask(cache[truth_path], slicerio.segment_from_id(cache[truth_path], row["lesion_id"])) > 0
        records.append(lesion_record(expected, row, ours, theirs))
    measured = {(r["patient_id"], r["session_id"], r["lesion_id"]) for r in rows}
    # a truth lesion the pipeline refused (its error is in "skipped") still counts in its strata
    records += [lesion_record(expected, {"segmentation_status": "refused", "call": ""}, None, None)
                for key, expected in truth.items() if key not in measured]
    strata = summarize(records)
    return {"table": table, "rows": len(rows), "skipped": summary["errors"], "strata": strata,
            "strata_text": format_summary(strata, "every lesion clicked at its centre, per stratum"),
            "floods": [r["lesion"] for r in records if r["flood"]]}


def _statistics(out: str, study_dir: str, table: str, progress: Optional[ProgressCallback]) -> Dict[str, Any]:
    """StudyStats on the demo's study table against the study's reference standard: CSV tables,
    figures and the HTML report in ``out/statistics``."""
    from netpet.stats import StatsOptions, analyse, load_study, write_outputs
    from netpet.stats.report import read_causes

    folder = os.path.join(out, "statistics")
    study = load_study(table, os.path.join(study_dir, "reference_standard.csv"))
    causes = read_causes(os.path.join(folder, "false-findings.csv"))
    analysis = analyse(study, StatsOptions(causes=causes),
                       progress=lambda f, m: report(progress, 0.95 + 0.04 * f, m) or False)
    written = write_outputs(analysis, folder, "netpet demo", previous_causes=causes)
    return {"report": written["report.html"], "folder": folder, "accuracy": [
        {k: e[k] for k in ("level", "modality", "tracer", "reader", "tp", "fp", "fn", "tn", "sensitivity", "specificity")}
        for e in analysis.result["accuracy"] if not e["group_by"]],
        "comparisons": len(analysis.result["comparisons"]), "false_findings": len(analysis.result["false_findings"])}


def run(out: str, patients: int = 5, seed: int = 1, progress: Optional[ProgressCallback] = None) -> Dict[str, Any]:
    """Run the demo into ``out``; return its report (also written to ``out/demo-report.json``)."""
    os.makedirs(out, exist_ok=True)
    study_dir = os.path.join(out, "study")
    report(progress, 0.0, "Writing the synthetic study")
    summary = generate_study(study_dir, patients=patients, seed=seed, preview=True,
                             progress=lambda f, m: report(progress, 0.45 * f, m) or False)
    sessions = _check_study(study_dir, summary, progress)
    quantification = _quantify(out, study_dir, summary, progress)
    report(progress, 0.93, "Checking SUV on vendor-shaped reference objects")
    objects = _check_reference_objects(out)
    statistics = _statistics(out, study_dir, quantification["table"], progress)
    index = index_tree(os.path.join(study_dir, "dicom"))
    result = {
        "study": study_dir, "patients": patients, "seed": seed, "files": summary["files"],
        "index": describe(index), "sessions": sessions, "quantification": quantification, "reference_objects": objects,
        "statistics": statistics,
        "all_ok": all(s["liver_ok"] for s in sessions) and all(o["ok"] for o in objects),
    }
    with open(os.path.join(out, "demo-report.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    report(progress, 1.0, "Demo done")
    return result
