"""The end-to-end demo on the built-in synthetic study.

1. Write the digital reference study (:mod:`netpet.phantom`): synthetic NET/TIO patients with
   68Ga-DOTATATE PET/CT and PET/MR and 18F-FDG PET/CT, the nodal stations and distant sites that make
   N and M categories, and a 68Ga-DOTATATE PET/CT follow-up (FU1), with known truth.
2. Index its DICOM tree: tracer and PET/CT vs PET/MR pairing of every PET.
3. Convert every PET to SUVbw and check it against the truth: the liver reference (3 cm sphere,
   PERCIST) and the SUVmax inside each truth lesion mask.
4. Quantify: a reader's clicks (one per truth lesion) go through ``netpet quantify`` into the
   study table: segmentation, references, measurements, the liver-threshold call, Krenning
   score, .seg.nrrd per session; every lesion is scored against the truth per stratum (avid,
   non-avid, benign traps, borderline, cold or iso-intense liver lesions, small, bone).
5. Check the SUV conversion on vendor-shaped digital reference objects (GE with a rewritten
   Series Time, Siemens, Philips counts with private scale factors).
6. Register every session of a patient to its first one (``netpet register``), each registration
   checked against the patient's known movement (truth/sessions.csv).
7. Match the reader's findings (the reader's own ids, C01, C02 ... in click order) to the reference
   lesions by location (``netpet match``): matching accuracy against the truth of every click.
8. StudyStats through the correspondence: sensitivity and specificity per patient, lesion and region
   at each time point, PET/MR vs PET/CT and DOTATATE vs FDG, ROC, agreement, false findings, and
   staging (N, M, stage group, AJCC 8th / ENETS) against the reference: ``statistics/report.html``.
9. Follow-up (``netpet followup``): baseline to FU1 along the tracks: changes per lesion, new and
   disappeared lesions, SSTR tumour volume, against the study's follow-up truth.
10. Reader studies (issue 14): two readers click every lesion (the second 2 mm off its centre) and record their
    own visual call, confidence and anatomical correlate (the study's simulated readers, truth/readers.csv) through
    the table's audit trail; the reading standards (NETPET grade against the expected grade, SSTR-RADS, PRRT
    summary); the multi-reader ROC of their confidence; blinded reading lists; the findings to adjudicate; the DICOM
    SR with SEG of the first patient's sessions. The study is the reading design's (every NET patient with FDG,
    NETPET grades by design, TIO culprits among decoys).
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
#: The demo's two readers (the digital reference study's simulated readers, truth/readers.csv). Both click every
#: truth lesion (the first at its centre, the second CLICK_JITTER_MM off it, in a random direction) and record their
#: own visual call, confidence and anatomical correlate.
READERS = ("reader1", "reader2")
#: how far the second reader's click lies from the lesion's centre (mm): under half a PET voxel (4 mm) to a voxel
CLICK_JITTER_MM = 2.0
#: The liver reference of a session must match the truth within this fraction: the noise of a
#: 3 cm sphere mean (about 14 % per voxel over ~100 correlated voxels) stays well below 5 %.
LIVER_TOLERANCE = 0.05


def _sphere_mean(image: sitk.Image, values: np.ndarray, center_ras, diameter_mm: float) -> float:
    """Mean of the voxels whose centres lie within the sphere (axis-aligned image: the distance is measured in the
    box around the sphere only, the same voxels in the same order as over the whole image)."""
    center = np.asarray(image.TransformPhysicalPointToContinuousIndex(ras_to_lps(center_ras)))
    spacing = np.asarray(image.GetSpacing())
    radius = diameter_mm / 2
    # the box of voxel indices that can hold a centre within the radius, per axis (x, y, z), clipped to the image
    low = [max(int(np.floor(c - radius / s)), 0) for c, s in zip(center, spacing)]
    high = [min(int(np.ceil(c + radius / s)) + 1, n) for c, s, n in zip(center, spacing, values.shape[::-1])]
    k, j, i = np.meshgrid(*(np.arange(lo, hi) for lo, hi in zip(low[::-1], high[::-1])), indexing="ij")
    distance = np.sqrt(((i - center[0]) * spacing[0]) ** 2 + ((j - center[1]) * spacing[1]) ** 2
                       + ((k - center[2]) * spacing[2]) ** 2)
    box = values[low[2]:high[2], low[1]:high[1], low[0]:high[0]]
    return float(box[distance <= radius].mean())


def _check_study(out: str, summary: Dict[str, Any], index, progress: Optional[ProgressCallback],
                 jobs: Optional[int] = None) -> List[Dict[str, Any]]:
    """Every session's PET converted to SUVbw (written to ``out/suv``) and checked against the truth: the liver
    reference and the SUVmax in each truth lesion mask. The sessions in parallel processes (``jobs``, default one
    per core), each conversion in its worker alone."""
    import csv

    from netpet.dicom.files import default_jobs, process_context

    with open(os.path.join(out, "truth", "lesions.csv"), newline="", encoding="utf-8") as handle:
        lesions = list(csv.DictReader(handle))
    by_uid = {s.series_uid: s for s in index.pet_series()}
    sessions = [(p, s) for p in summary["patients"] for s in p["sessions"]]
    work = [(out, patient["patient_id"], session, by_uid[session["pet_series_uid"]],
             [r for r in lesions if r["patient_id"] == patient["patient_id"] and r["session_id"] == session["session_id"]])
            for patient, session in sessions]
    jobs = min(default_jobs() if jobs is None else max(1, jobs), len(work))
    results = []
    if jobs <= 1:
        for number, job in enumerate(work):
            report(progress, 0.5 + 0.35 * number / len(work), f"SUV of {job[1]} {job[2]['session_id']}")
            results.append(_check_session(job))
        return results
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=process_context()) as pool:
        for number, result in enumerate(pool.map(_check_session, work)):
            report(progress, 0.5 + 0.35 * (number + 1) / len(work), f"SUV of {result['patient_id']} "
                                                                     f"{result['session_id']}")
            results.append(result)
    return results


def _check_session(job) -> Dict[str, Any]:
    """One session of :func:`_check_study` (in a worker process with several jobs)."""
    import slicerio

    out, patient_id, session, record, rows = job
    result = convert_to_suv(record, "bw", jobs=1)
    path = os.path.join(out, "suv", f"{patient_id}_{session['session_id']}_SUVbw.nrrd")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sitk.WriteImage(result.image, path, useCompression=True)
    values = sitk.GetArrayFromImage(result.image)
    liver = _sphere_mean(result.image, values, session["liver_reference_center_ras"], 30.0)
    segmentation = slicerio.read_segmentation(os.path.join(out, session["segmentation_file"]))
    found = []
    for row in rows:
        mask = slicerio.segment_mask(segmentation, slicerio.segment_from_id(segmentation, row["lesion_id"]))
        measured = float(values[np.transpose(mask, (2, 1, 0)) > 0].max())
        found.append({"lesion_id": row["lesion_id"], "diameter_mm": float(row["diameter_mm"]),
                      "suv_max_measured": round(measured, 2), "suv_max_true": float(row["suv_max_expected"]),
                      "malignant": row["malignant"] == "1"})
    return {
        "patient_id": patient_id, "session_id": session["session_id"], "tracer": record.tracer.label,
        "hybrid": record.hybrid, "liver_suv_measured": round(liver, 3), "liver_suv_true": session["liver_suv"],
        "liver_ok": abs(liver - session["liver_suv"]) <= LIVER_TOLERANCE * session["liver_suv"],
        "lesions": found, "suv_file": path, "reference_time_rule": result.provenance.reference_time_rule,
    }


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


def _quantify(out: str, study_dir: str, summary_: Dict[str, Any], progress: Optional[ProgressCallback],
              seed: int = 1) -> Dict[str, Any]:
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
    with open(os.path.join(study_dir, "truth", "sessions.csv"), newline="", encoding="utf-8") as handle:
        times = {(r["patient_id"], r["session_id"]): (r["time_point"], r["days_from_baseline"])
                 for r in csv.DictReader(handle)}
    # the reader's own ids, as Slicer numbers points: C01, C02 ... in the order the lesions were clicked (a random
    # order per session), never the reference standard's ids; netpet match finds which lesion each one is
    rng = np.random.default_rng(seed)
    jitter = np.random.default_rng(seed + 1000)
    reader_ids: Dict[Any, str] = {}
    clicks = []
    for patient in summary_["patients"]:
        for session in patient["sessions"]:
            rows = [r for r in lesions if r["patient_id"] == patient["patient_id"] and r["session_id"] == session["session_id"]]
            for number, index in enumerate(rng.permutation(len(rows))):
                row = rows[index]
                reader_ids[(row["patient_id"], row["session_id"], f"C{number + 1:02d}")] = row["lesion_id"]
                clicks.append((f"C{number + 1:02d}", row))
    manifest = os.path.join(out, "manifest.csv")
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s", "region",
                         "time_point", "days_from_baseline"])
        for reader in READERS:
            for patient in summary_["patients"]:
                for session in patient["sessions"]:
                    writer.writerow([patient["patient_id"], session["session_id"],
                                     os.path.join("study", "dicom", patient["patient_id"], session["session_id"], "PET"),
                                     reader, "", "", "", "", "", *times[(patient["patient_id"], session["session_id"])]])
            for finding, row in clicks:
                centre = np.array([float(row["center_r"]), float(row["center_a"]), float(row["center_s"])])
                if reader != READERS[0]:  # the second reader clicks near the centre, not on it
                    step = jitter.normal(size=3)
                    centre = centre + CLICK_JITTER_MM * step / np.linalg.norm(step)
                writer.writerow([row["patient_id"], row["session_id"],
                                 os.path.join("study", "dicom", row["patient_id"], row["session_id"], "PET"), reader,
                                 finding, *(f"{v:.2f}" for v in centre), row["region"],
                                 *times[(row["patient_id"], row["session_id"])]])
    table = os.path.join(out, "study-table.csv")
    if os.path.exists(table):
        os.remove(table)
    summary = run_manifest(manifest, table, progress=lambda f, m: report(progress, 0.9 + 0.05 * f, m) or False)
    truth = {(r["patient_id"], r["session_id"], r["lesion_id"]): r for r in lesions}
    with open(table, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["lesion_id"] and r["reader"] == READERS[0]]
    records = []
    cache: Dict[str, Any] = {}
    for row in rows:
        key = (row["patient_id"], row["session_id"], reader_ids[(row["patient_id"], row["session_id"], row["lesion_id"])])
        expected = truth[key]
        seg_path = os.path.join(out, row["segmentation_file"])
        truth_path = os.path.join(study_dir, expected["segmentation_file"])
        for path in (seg_path, truth_path):
            if path not in cache:
                cache[path] = slicerio.read_segmentation(path)
        ours = slicerio.segment_mask(cache[seg_path], slicerio.segment_from_id(cache[seg_path], row["lesion_id"])) > 0
        theirs = slicerio.segment_mask(cache[truth_path], slicerio.segment_from_id(cache[truth_path], key[2])) > 0
        records.append(lesion_record(expected, row, ours, theirs))
    measured = {(r["patient_id"], r["session_id"], reader_ids[(r["patient_id"], r["session_id"], r["lesion_id"])])
                for r in rows}
    # a truth lesion the pipeline refused (its error is in "skipped") still counts in its strata
    records += [lesion_record(expected, {"segmentation_status": "refused", "call": ""}, None, None)
                for key, expected in truth.items() if key not in measured]
    strata = summarize(records)
    return {"table": table, "rows": len(rows), "skipped": summary["errors"], "strata": strata,
            "reader_ids": {"|".join(k): v for k, v in reader_ids.items()},
            "strata_text": format_summary(strata, f"{READERS[0]}: every lesion clicked at its centre, per stratum"),
            "readers": list(READERS),
            "floods": [r["lesion"] for r in records if r["flood"]]}


def _register(out: str, study_dir: str, table: str, index, progress: Optional[ProgressCallback]) -> Dict[str, Any]:
    """``netpet register``'s core on the demo table: every session of a patient registered to its first one,
    transforms beside the table. Each registration is checked against the known movement of the patient
    between sessions (truth/sessions.csv): every truth lesion centre of the moving session mapped into the fixed
    one, against its truth centre there."""
    import csv

    from netpet.match.registration import map_points_ras, read_registration
    from netpet.match.study import register_study

    records = register_study(table, index, progress=lambda f, m: report(progress, 0.955 + 0.01 * f, m) or False)
    with open(os.path.join(study_dir, "truth", "lesions.csv"), newline="", encoding="utf-8") as handle:
        lesions = list(csv.DictReader(handle))
    centres: Dict[Any, Dict[str, np.ndarray]] = {}
    for row in lesions:
        centres.setdefault((row["patient_id"], row["session_id"]), {})[row["lesion_id"]] = np.array(
            [float(row["center_r"]), float(row["center_a"]), float(row["center_s"])])
    pairs, errors = [], []
    for record in records:
        entry = {k: record.get(k) for k in ("patient_id", "moving_session", "fixed_session", "status", "basis", "nmi",
                                            "reason")}
        if record["status"] != "refused":
            moving = centres.get((record["patient_id"], record["moving_session"]), {})
            fixed = centres.get((record["patient_id"], record["fixed_session"]), {})
            common = sorted(set(moving) & set(fixed))
            if common:
                mapped = map_points_ras(read_registration(record["file"]), [moving[k] for k in common])
                error = np.linalg.norm(mapped - np.array([fixed[k] for k in common]), axis=1)
                errors.extend(error.tolist())
                entry.update({"lesions": len(common), "error_mean_mm": round(float(error.mean()), 2),
                              "error_max_mm": round(float(error.max()), 2)})
        pairs.append(entry)
    return {"pairs": pairs, "refused": sum(r["status"] == "refused" for r in records),
            "lesion_centres": len(errors), "error_mean_mm": round(float(np.mean(errors)), 2) if errors else None,
            "error_max_mm": round(float(np.max(errors)), 2) if errors else None}


def _match(out: str, study_dir: str, table: str, reader_ids: Dict[str, str]) -> Dict[str, Any]:
    """``netpet match``'s core: the reader's findings (own ids) matched to the reference lesions by location, the
    way a study does it: each lesion's one location in the reference standard, brought into the other sessions by
    the registrations. Scored against what the demo knows: which truth lesion each click was on. The same with
    the per-session locations (reference_locations.csv, no registration) for comparison."""
    from netpet.match.correspondence import match_study, summarise, write_correspondence

    reference = os.path.join(study_dir, "reference_standard.csv")
    results = {}
    for name, locations in (("registration", None),
                            ("per-session locations", os.path.join(study_dir, "reference_locations.csv"))):
        frame = match_study(table, reference, locations_path=locations)
        path = os.path.join(out, "correspondence.csv" if locations is None else "correspondence-locations.csv")
        write_correspondence(path, frame)
        findings = frame[frame["lesion_id"] != ""]
        truth = ["|".join((r["patient_id"], r["session_id"], r["lesion_id"])) for r in findings.to_dict("records")]
        correct = int(sum(reader_ids.get(t) == ref for t, ref in zip(truth, findings["reference_lesion_id"])))
        wrong = [f"{t} -> {ref or 'unmatched'} (truth {reader_ids.get(t)})"
                 for t, ref in zip(truth, findings["reference_lesion_id"]) if reader_ids.get(t) != ref]
        summary = summarise(frame)
        results[name] = {"file": path, "findings": len(findings), "correct": correct,
                         "accuracy": round(correct / len(findings), 4) if len(findings) else None,
                         "counts": summary["counts"], "wrong": wrong, "warnings": summary["warnings"]}
    return results


def _statistics(out: str, study_dir: str, table: str, progress: Optional[ProgressCallback],
                correspondence: Optional[str] = None) -> Dict[str, Any]:
    """StudyStats on the demo's study table against the study's reference standard, the findings joined to the
    reference lesions through the correspondence: accuracy per time point, staging (N, M, stage group against the
    reference, PET/MR vs PET/CT and DOTATATE vs FDG), CSV tables, figures and the HTML report in
    ``out/statistics``. The reference side of the staging is checked against the study's staging truth
    (truth/staging.csv)."""
    import csv

    from netpet.stats import StatsOptions, analyse, load_study, write_outputs
    from netpet.stats.analysis import false_finding_key
    from netpet.stats.causes import read_cause_codes
    from netpet.stats.report import read_causes
    from netpet.stats.staging import staging_lines

    folder = os.path.join(out, "statistics")
    study = load_study(table, os.path.join(study_dir, "reference_standard.csv"), correspondence=correspondence)
    causes = read_causes(os.path.join(folder, "false-findings.csv"))
    codes = read_cause_codes(os.path.join(folder, "false-findings.csv"), false_finding_key)
    analysis = analyse(study, StatsOptions(causes=causes, cause_codes=codes),
                       progress=lambda f, m: report(progress, 0.97 + 0.02 * f, m) or False)
    written = write_outputs(analysis, folder, "netpet demo", previous_causes=causes,
                            dicom=os.path.join(study_dir, "dicom"))
    staging = analysis.result.get("staging") or {}
    with open(os.path.join(study_dir, "truth", "staging.csv"), newline="", encoding="utf-8") as handle:
        truth = {(r["patient_id"], r["time_point"]): r for r in csv.DictReader(handle)}
    checked, disagree = 0, []
    for group in staging.get("groups", []):
        time_point = group["group"].get("time_point") or "baseline"
        for patient in group["patients"]:
            expected = truth.get((patient["patient_id"], time_point))
            if expected is None:
                continue
            checked += 1
            got = patient["reference"]
            # TIO work-ups are not staged: empty in the truth, None in the analysis
            if tuple(got[k] or "" for k in ("n", "m", "stage_group")) != (expected["n"], expected["m"],
                                                                          expected["stage_group"]):
                disagree.append(f"{patient['patient_id']} {time_point}: reference {got['n']} {got['m']} "
                                f"{got['stage_group']}, truth {expected['n']} {expected['m']} {expected['stage_group']}")
    return {"report": written["report.html"], "folder": folder, "accuracy": [
        {k: e.get(k) for k in ("level", "modality", "tracer", "reader", "time_point", "tp", "fp", "fn", "tn",
                               "sensitivity", "specificity")}
        for e in analysis.result["accuracy"] if not e["group_by"]],
        "comparisons": len(analysis.result["comparisons"]), "false_findings": len(analysis.result["false_findings"]),
        "staging_lines": staging_lines(staging) if staging else [],
        "staging_truth_checked": checked, "staging_truth_disagreements": disagree,
        "warnings": list(analysis.result.get("warnings", []))}


def _follow_up(out: str, study_dir: str, table: str, correspondence: str) -> Dict[str, Any]:
    """``netpet followup``'s core: lesions followed from baseline to FU1 along the correspondence's tracks; new and
    disappeared lesions per patient against the study's follow-up truth (truth/follow_up.csv)."""
    import csv

    import pandas as pd

    from netpet.clinical.followup import follow_up, write_table
    from netpet.match.correspondence import read_correspondence
    from netpet.quant.table import StudyTable

    path = os.path.join(study_dir, "truth", "follow_up.csv")
    if not os.path.exists(path):
        return {"available": False}
    frame = StudyTable(table)
    result = follow_up(pd.DataFrame(frame.read(), columns=frame.columns()).fillna(""),
                       read_correspondence(correspondence), table, correspondence)
    folder = os.path.join(out, "follow-up")
    os.makedirs(folder, exist_ok=True)
    write_table(os.path.join(folder, "lesion_changes.csv"), result.lesions)
    write_table(os.path.join(folder, "patient_response.csv"), result.patients)
    with open(path, newline="", encoding="utf-8") as handle:
        changes = list(csv.DictReader(handle))
    expected: Dict[str, Dict[str, int]] = {}
    for row in changes:
        counts = expected.setdefault(row["patient_id"], {"new": 0, "disappeared": 0})
        # a resected TIO culprit is gone at FU1 as a lesion that resolved is: both are "disappeared" to a reader
        status = "disappeared" if row["status"] == "resected" else row["status"]
        if status in counts:
            counts[status] += 1
    patients = []
    dotatate = result.patients[(result.patients["tracer"] == "dotatate") & (result.patients["modality"] == "PET/CT")]
    for row in dotatate[dotatate["time_point"] == "FU1"].to_dict("records"):
        truth = expected.get(row["patient_id"], {"new": 0, "disappeared": 0})
        patients.append({"patient_id": row["patient_id"], "reader": row["reader"], "days": row["days_from_baseline"],
                         "new": int(row["n_new"]), "new_true": truth["new"],
                         "disappeared": int(row["n_disappeared"]), "disappeared_true": truth["disappeared"],
                         "sstr_tv_change_pct": row["sstr_tv_change_from_baseline_pct"],
                         "scenario": next((c["scenario"] for c in changes if c["patient_id"] == row["patient_id"]), "")})
    # every patient of the follow-up truth must have been followed (none left out by a failed match or read)
    followed = all({p["patient_id"] for p in patients if p["reader"] == reader}
                   == {c["patient_id"] for c in changes if c["time_point"] == "FU1"} for reader in READERS)
    return {"available": True, "folder": folder, "patients": patients, "all_followed": followed,
            "agree": followed and all(p["new"] == p["new_true"] and p["disappeared"] == p["disappeared_true"]
                                      for p in patients),
            "warnings": list(result.warnings)}


def _record_readings(study_dir: str, table: str, reader_ids: Dict[str, str]) -> Dict[str, Any]:
    """Each reader's own reading of every finding (the study's simulated readers, truth/readers.csv: visual call,
    5-point confidence, anatomical correlate) written into the study table as ``netpet record`` and SUVQuant write
    it: through the table, with the audit trail (who, when, what, why)."""
    import csv

    from netpet.quant.table import StudyTable
    from netpet.schema import KEY

    path = os.path.join(study_dir, "truth", "readers.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        readings = list(csv.DictReader(handle))
    finding_of = {(k.split("|")[0], k.split("|")[1], truth): k.split("|")[2] for k, truth in reader_ids.items()}
    study = StudyTable(table)
    rows = {(r["patient_id"], r["session_id"], r["reader"], r["lesion_id"]): r for r in study.read() if r["lesion_id"]}
    written, unread = 0, []
    for reader in READERS:
        updates = []
        for reading in (r for r in readings if r["reader"] == reader):
            finding = finding_of.get((reading["patient_id"], reading["session_id"], reading["lesion_id"]))
            row = rows.get((reading["patient_id"], reading["session_id"], reader, finding)) if finding else None
            if row is None:
                unread.append(f"{reader} {reading['patient_id']} {reading['session_id']} {reading['lesion_id']}")
                continue
            updates.append({**{k: row[k] for k in KEY}, "reader_call": reading["reader_call"],
                            "confidence": reading["confidence"], "anatomic_correlate": reading["anatomic_correlate"]})
        study.upsert(updates, by=reader, why="the reader's reading (netpet demo: the study's simulated reader, "
                                             "truth/readers.csv)")
        written += len(updates)
    return {"findings": written, "not_in_table": unread, "audit_entries": len(study.audit())}


def _grade_check(scores, expected) -> Dict[str, Any]:
    """NETPET grades against the expected ones: counts, the differences (with their flags and reasons)."""
    checked, differ, uncertain = 0, [], 0
    for score in scores:
        want = expected.get((score["patient_id"], score["time_point"] or "baseline"))
        if want is None:
            continue
        checked += 1
        uncertain += bool(score.get("flags"))
        if (score["grade"] or "") != want:
            flag = f" [{score['flags']}]" if score.get("flags") else ""
            differ.append(f"{score['patient_id']} {score['reader']} {score['modality']}: {score['grade'] or 'no grade'}"
                          f"{flag} (expected {want or 'no grade'}; {score['reason']})")
    return {"checked": checked, "differ": differ, "uncertain": uncertain,
            "differ_certain": sum(1 for line in differ if "[uncertain-avidity]" not in line)}


def _reading_standards(out: str, study_dir: str, table: str, correspondence: str,
                       reader_ids: Dict[str, str]) -> Dict[str, Any]:
    """The reading standards of the demo's table (``netpet scores``): NETPET grade per patient, reader and DOTATATE
    modality, FDG+/SSTR- lesions, SSTR-RADS 1.0 and the PRRT summary.

    The grades are checked against the study's expected grade (truth/netpet_scores.csv, from the true uptake of the
    malignant lesions) twice: as the readers read (their confidence and lesion types decide which findings are
    disease: a benign node read as malignant is the readers' error, shown with its reason), and with the truth's
    malignancy in place of the readers' belief (benign and physiological findings marked so, the readers' confidence
    set aside), which checks the measurements and the scoring alone."""
    import csv

    from netpet.clinical.scores import read_indications, study_scores, write_scores
    from netpet.match.correspondence import read_correspondence
    from netpet.quant.table import StudyTable

    # each input read once, for both scorings; the indications as netpet scores spells them
    indications = read_indications(os.path.join(study_dir, "reference_standard.csv"))
    links = read_correspondence(correspondence).to_dict("records")
    rows = StudyTable(table).read()
    result = study_scores(rows, links, indications=indications)
    folder = os.path.join(out, "reading-standards")
    write_scores(result, folder)
    with open(os.path.join(study_dir, "truth", "netpet_scores.csv"), newline="", encoding="utf-8") as handle:
        expected = {(r["patient_id"], r["time_point"] or "baseline"): r["netpet_grade"] for r in csv.DictReader(handle)}
    with open(os.path.join(study_dir, "truth", "lesions.csv"), newline="", encoding="utf-8") as handle:
        malignant = {(r["patient_id"], r["session_id"], r["lesion_id"]): r["malignant"] == "1"
                     for r in csv.DictReader(handle)}
    truthful = []
    for row in rows:
        truth = malignant.get((row["patient_id"], row["session_id"],
                               reader_ids.get(f"{row['patient_id']}|{row['session_id']}|{row['lesion_id']}", "")))
        truthful.append({**row, "confidence": "", "reader_call": "", "sstr_rads": "", "anatomic_correlate": "",
                         "lesion_type": "benign" if truth is False else row.get("lesion_type", "")})
    on_truth = study_scores(truthful, links, indications=indications)
    as_read, by_truth = _grade_check(result["netpet_scores"], expected), _grade_check(on_truth["netpet_scores"],
                                                                                     expected)
    grades: Dict[str, int] = {}
    for score in result["netpet_scores"]:
        grades[score["grade"] or "no grade"] = grades.get(score["grade"] or "no grade", 0) + 1
    eligible = sum(1 for p in result["prrt"] if p.get("meets_criteria") is True)
    return {"folder": folder, "grades": dict(sorted(grades.items())), "as_read": as_read, "on_truth": by_truth,
            "discordant_lesions": len(result["discordant"]), "sstr_rads_scans": len(result["sstr_rads_scans"]),
            "prrt_summaries": len(result["prrt"]), "prrt_meeting_criteria": eligible,
            "warnings": list(result["warnings"])}


def _reader_study(out: str, study_dir: str, table: str, correspondence: str, seed: int) -> Dict[str, Any]:
    """The reader-study tools on the demo's two readers: the multi-reader multi-case ROC of their confidence
    (patients as cases, DOTATATE PET/CT vs PET/MR: ``netpet mrmc``), blinded reading lists (``netpet
    reading-list``) and the findings where the readers disagree, for adjudication (``netpet adjudicate``)."""
    from netpet.quant.table import StudyTable
    from netpet.reading.adjudication import disagreements, write_adjudication_list
    from netpet.reading.lists import sessions_from_rows, write_reading_lists
    from netpet.stats.data import load_study, units_for
    from netpet.stats.mrmc import study_mrmc

    from netpet.stats.intervals import StatsError

    study = load_study(table, os.path.join(study_dir, "reference_standard.csv"), correspondence=correspondence)
    units = units_for(study)
    analyses = {}
    for level in ("patient", "lesion"):  # a small study may lack patients without malignancy: then lesions only
        try:
            mrmc = study_mrmc(units, level, ["PET/CT dotatate", "PET/MR dotatate"])
        except StatsError as exc:
            analyses[level] = {"level": level, "not_analysed": str(exc)}
            continue
        rrrc = mrmc["rrrc"]
        analyses[level] = {
            "level": level, "f": rrrc.get("f"), "ddf": rrrc.get("ddf"), "p": rrrc.get("p"),
            "tests": [{"test": t["test"], "auc": t["estimate"], "ci_low": t["ci_low"], "ci_high": t["ci_high"]}
                      for t in rrrc["tests"]],
            "differences": [{k: d.get(k) for k in ("test_a", "test_b", "estimate", "ci_low", "ci_high")}
                            for d in rrrc["differences"]],
            "design": mrmc["design"], "notes": mrmc["notes"], "warnings": mrmc["warnings"]}
    rows = StudyTable(table).read()
    lists = write_reading_lists(sessions_from_rows(rows), list(READERS), seed, os.path.join(out, "reading-lists"),
                                source=table)
    items = disagreements(rows, list(READERS), correspondence)
    path = os.path.join(out, "adjudication.csv")
    write_adjudication_list(items, list(READERS), path)
    return {"mrmc": analyses,
            "reading_lists": [os.path.join(out, "reading-lists", r["file"]) for r in lists["readers"]],
            "adjudication": {"file": path, "findings": len(items)}}


def _background_reports(out: str, study_dir: str, table: str, index) -> Dict[str, Any]:
    """:func:`_structured_reports` in one process (the demo's background process)."""
    return _structured_reports(out, study_dir, table, index, jobs=1)


def _structured_reports(out: str, study_dir: str, table: str, index=None, jobs: Optional[int] = None
                        ) -> Dict[str, Any]:
    """DICOM SR (TID 1500) with the SEG it references, per session and reader (``netpet sr``), for the study's first
    patient (``netpet sr`` writes them for every patient), from the demo's index of the study (``index``)."""
    from netpet.quant.sr import write_reports

    from netpet.quant.table import StudyTable

    folder = os.path.join(out, "dicom-sr")
    patient = min(r["patient_id"] for r in StudyTable(table).read())
    result = write_reports(table, os.path.join(study_dir, "dicom"), folder, patient=patient, index=index, jobs=jobs)
    return {"folder": folder, "patient": patient, "reports": len(result["reports"]), "errors": list(result["errors"]),
            "warnings": list(result["warnings"])}


def run(out: str, patients: int = 5, seed: int = 1, progress: Optional[ProgressCallback] = None) -> Dict[str, Any]:
    """Run the demo into ``out``; return its report (also written to ``out/demo-report.json``)."""
    os.makedirs(out, exist_ok=True)
    study_dir = os.path.join(out, "study")
    report(progress, 0.0, "Writing the synthetic study")
    summary = generate_study(study_dir, patients=patients, seed=seed, preview=True, distant_sites=True, follow_up=True,
                             reading_design=True,
                             progress=lambda f, m: report(progress, 0.45 * f, m) or False)
    index = index_tree(os.path.join(study_dir, "dicom"))  # once: the SUV checks, registrations, DICOM SR, summary
    sessions = _check_study(study_dir, summary, index, progress)
    quantification = _quantify(out, study_dir, summary, progress, seed)
    report(progress, 0.95, "Checking SUV on vendor-shaped reference objects")
    objects = _check_reference_objects(out)
    quantification["reading"] = _record_readings(study_dir, quantification["table"], quantification["reader_ids"])
    registration = _register(out, study_dir, quantification["table"], index, progress)
    report(progress, 0.965, "Matching the findings to the reference lesions")
    matching = _match(out, study_dir, quantification["table"], quantification["reader_ids"])
    correspondence = matching["registration"]["file"]
    # the DICOM SR needs the table with the readers' readings only: written by a background process while the
    # statistics, which keep to one core most of their time, run here. The stages below only read the study table
    # (keep it so: the background process reads it at the same time)
    from concurrent.futures import ProcessPoolExecutor

    from netpet.dicom.files import process_context

    with ProcessPoolExecutor(max_workers=1, mp_context=process_context()) as background:
        reports = background.submit(_background_reports, out, study_dir, quantification["table"], index)
        statistics = _statistics(out, study_dir, quantification["table"], progress, correspondence)
        follow = _follow_up(out, study_dir, quantification["table"], correspondence)
        report(progress, 0.99, "Reading standards, reader study, DICOM SR")
        standards = _reading_standards(out, study_dir, quantification["table"], correspondence,
                                       quantification["reader_ids"])
        reader_study = _reader_study(out, study_dir, quantification["table"], correspondence, seed)
        structured = reports.result()
    result = {
        "study": study_dir, "patients": patients, "seed": seed, "files": summary["files"],
        "index": describe(index), "sessions": sessions, "quantification": quantification, "reference_objects": objects,
        "registration": registration, "matching": matching, "statistics": statistics, "follow_up": follow,
        "reading_standards": standards, "reader_study": reader_study, "structured_reports": structured,
        # the exit code says whether the checks of correctness held: SUV, reference objects, every registration
        # accepted, the reference standard's staging equal to the staging truth; matching and follow-up are
        # accuracy figures (a lesion segmented off its centre may be missed), printed against the truth
        "all_ok": (all(s["liver_ok"] for s in sessions) and all(o["ok"] for o in objects)
                   and registration["refused"] == 0 and not statistics["staging_truth_disagreements"]
                   and not structured["errors"]),
    }
    with open(os.path.join(out, "demo-report.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1, default=str)
    report(progress, 1.0, "Demo done")
    return result
