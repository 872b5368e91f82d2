"""The end-to-end demo: write a small hybrid study, index it, convert every PET to SUV.

The study holds three vendor-shaped PET series (Siemens BQML PET/CT, Siemens PET/MR, GE with a
Series Time rewritten by post-processing, Philips CNTS with private scale factors), each beside
its CT or MR in the same frame of reference, and non-DICOM files mixed in. The PET volumes are
digital reference objects (:mod:`netpet.dicom.dro`), so every converted SUV is checked against
the truth: background 1.00, hot sphere 4.00, cold sphere 0.20.
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
from netpet.progress import ProgressCallback, report

#: Demo SUVs must match the truth to within this (int16 quantisation is about 1e-4 SUV).
TOLERANCE = 1e-3


def _anatomy(case: dro.Case, modality: str, folder: str, datasets_pet) -> List[str]:
    """CT (HU) or MR (signal) of the same body, frame of reference and extent as the PET."""
    suv = dro.dro_suv(case.shape)
    body = suv > 0
    if modality == "CT":
        values = np.where(body, 40.0, -1000.0)
        values[suv == dro.HOT] = 60.0
        values[suv == dro.COLD] = -80.0
    else:
        values = np.where(body, 900.0, 0.0)
        values[suv == dro.HOT] = 500.0
        values[suv == dro.COLD] = 1400.0
    first = datasets_pet[0]
    uid = dro.uid_factory(case.seed + modality)
    geometry = writer.VolumeGeometry(case.origin, case.spacing)
    patient = writer.PatientInfo(first.PatientID, str(first.PatientName), case.sex, None, case.weight_kg,
                                 case.height_m)
    study = writer.StudyInfo(first.StudyInstanceUID, case.scan - dt.timedelta(minutes=70), "PET demo")
    series = writer.SeriesInfo(uid("series"), first.FrameOfReferenceUID, 2, f"{modality} for PET",
                               case.scan - dt.timedelta(minutes=3), first.Manufacturer, first.ManufacturerModelName)
    if modality == "CT":
        datasets = writer.ct_datasets(values, geometry, patient, study, series, uid)
    else:
        datasets = writer.mr_datasets(values, geometry, patient, study, series, uid)
    return writer.save_datasets(datasets, folder, prefix=modality)


def _sessions() -> List[Dict[str, Any]]:
    base = dro.Case(nuclide="Ga-68", agent_text="Ga68-DOTATATE", agent_code=("SCT", "724025002", "Dotatate Ga^68^"),
                    dose_bq=152.0e6)
    fdg = dro.Case(seed="fdg", injection=dt.datetime(2024, 3, 7, 8, 31, 0), scan=dt.datetime(2024, 3, 7, 9, 33, 40))
    return [
        {"name": "DEMO-001/dotatate-petct", "case": replace(base, seed="s1"), "vendor": "siemens", "anatomy": "CT"},
        {"name": "DEMO-001/dotatate-petmr", "case": replace(base, seed="s2", scan=dt.datetime(2024, 3, 6, 11, 10, 5),
                                                           injection=dt.datetime(2024, 3, 6, 10, 9, 40)),
         "vendor": "siemens-mr", "anatomy": "MR"},
        {"name": "DEMO-001/fdg-petct", "case": fdg, "vendor": "ge", "anatomy": "CT"},
        {"name": "DEMO-002/dotatate-petct", "case": replace(base, seed="p2", weight_kg=58.0, sex="M"),
         "vendor": "philips", "anatomy": "CT"},
    ]


def write_study(out: str) -> List[Dict[str, Any]]:
    """Write the demo's DICOM tree under ``out``; return the sessions written."""
    sessions = _sessions()
    for number, session in enumerate(sessions):
        case = session["case"]
        datasets, _suv = dro.build(case)
        patient_id = session["name"].split("/")[0]
        for ds in datasets:
            ds.PatientID = patient_id
            ds.PatientName = f"Demo^{patient_id}"
        vendor = session["vendor"]
        if vendor.startswith("siemens"):
            dro.siemens(datasets, case)
            if vendor == "siemens-mr":
                for ds in datasets:
                    ds.ManufacturerModelName = "Biograph_mMR"
                    ds.AttenuationCorrectionMethod = "MR Dixon"
        elif vendor == "ge":
            # post-processed series: Series Time rewritten to the reconstruction time
            for ds in datasets:
                dro.set_dt(ds, "Series", case.scan + dt.timedelta(minutes=25))
            dro.ge(datasets, case, private_scan=case.scan)
        elif vendor == "philips":
            dro.philips(datasets, case)
        folder = os.path.join(out, "dicom", session["name"])
        writer.save_datasets(datasets, os.path.join(folder, "PET"), prefix="PT")
        # the anatomical partner shares the session's patient, study and frame of reference
        _anatomy(case, session["anatomy"], os.path.join(folder, session["anatomy"]), datasets)
        session["series_uid"] = str(datasets[0].SeriesInstanceUID)
        with open(os.path.join(folder, "notes.txt"), "w", encoding="utf-8") as handle:
            handle.write(f"session {number + 1}: {vendor} PET with its {session['anatomy']}\n")
    return sessions


def run(out: str, progress: Optional[ProgressCallback] = None) -> Dict[str, Any]:
    """Write, index and convert the demo study; return the report (also saved as JSON)."""
    os.makedirs(out, exist_ok=True)
    report(progress, 0.0, "Writing the demo study")
    sessions = write_study(out)
    report(progress, 0.3, "Indexing")
    index = index_tree(os.path.join(out, "dicom"))
    results = []
    for i, record in enumerate(index.pet_series()):
        report(progress, 0.4 + 0.5 * i / max(1, len(index.pet_series())), f"SUV of {record.description}")
        session = next(s for s in sessions if s["series_uid"] == record.series_uid)
        result = convert_to_suv(record, "bw")
        path = os.path.join(out, "suv", session["name"].replace("/", "_") + "_SUVbw.nrrd")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sitk.WriteImage(result.image, path, useCompression=True)
        values = sitk.GetArrayFromImage(result.image)
        truth = dro.dro_suv(session["case"].shape)
        measured = {
            "background_median": float(np.median(values[truth == dro.BACKGROUND])),
            "hot_max": float(values[truth == dro.HOT].max()),
            "cold_min": float(values[truth == dro.COLD].min()),
        }
        expected = {"background_median": dro.BACKGROUND, "hot_max": dro.HOT, "cold_min": dro.COLD}
        ok = all(abs(measured[k] - expected[k]) <= TOLERANCE for k in expected)
        results.append({
            "session": session["name"], "series_uid": record.series_uid, "tracer": record.tracer.label,
            "hybrid": record.hybrid, "units": record.units, "suv_file": path, "measured": measured,
            "expected": expected, "ok": ok, "reference_time_rule": result.provenance.reference_time_rule,
            "warnings": result.provenance.warnings,
        })
    summary = {"index": describe(index), "results": results, "all_ok": all(r["ok"] for r in results)}
    with open(os.path.join(out, "demo-report.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    report(progress, 1.0, "Demo done")
    return summary
