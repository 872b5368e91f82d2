"""A manifest of clicks at every truth lesion of a digital reference study (:mod:`netpet.phantom`), in
``netpet quantify``'s format: for trying ``netpet run`` on a synthetic study, its tests and its benchmark.

One reader clicks every lesion of every session at its truth centre, with the truth lesion id (so that the
study's reference_standard.csv names every finding), and every session gets a row without lesion (the reader read
it: a lesion-free patient counts as a true negative), as :mod:`netpet.demo` writes its reader's clicks.
"""

from __future__ import annotations

import csv
import os
from typing import List

COLUMNS = ["patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s", "region"]


def write_truth_manifest(study: str, path: str, reader: str = "reader1") -> List[List[str]]:
    """Write the manifest of ``study`` (a folder written by :func:`netpet.phantom.generate_study`) to ``path``,
    series paths relative to the manifest's folder; returns the rows written (header first)."""
    with open(os.path.join(study, "truth", "lesions.csv"), newline="", encoding="utf-8") as handle:
        lesions = list(csv.DictReader(handle))
    with open(os.path.join(study, "truth", "sessions.csv"), newline="", encoding="utf-8") as handle:
        sessions = [(r["patient_id"], r["session_id"]) for r in csv.DictReader(handle)]
    base = os.path.dirname(os.path.abspath(path))

    def series(patient: str, session: str) -> str:
        return os.path.relpath(os.path.join(os.path.abspath(study), "dicom", patient, session, "PET"), base)

    rows = [COLUMNS]
    for patient, session in sessions:
        rows.append([patient, session, series(patient, session), reader, "", "", "", "", ""])
    for lesion in lesions:
        rows.append([lesion["patient_id"], lesion["session_id"], series(lesion["patient_id"], lesion["session_id"]),
                     reader, lesion["lesion_id"], lesion["center_r"], lesion["center_a"], lesion["center_s"],
                     lesion["region"]])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return rows
