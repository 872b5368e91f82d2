"""Shared pytest fixtures.

``reference_study`` writes one small digital reference study for the whole test session
(seed 8, two NET patients, each with 68Ga-DOTATATE PET/CT and PET/MR and 18F-FDG PET/CT: six
sessions) and converts every PET to SUV once; the phantom, quantification and statistics tests
all read it.
"""

import json
import os
import sys

# Offscreen rendering (trame-slicer's views, the review app's browser tests) goes through Mesa's EGL: with no
# display VTK would otherwise pick OSMesa, which is not installed. Set before anything imports vtk.
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

STUDY_SEED, STUDY_PATIENTS = 8, 2


@pytest.fixture(scope="session")
def reference_study(tmp_path_factory):
    from netpet.phantom import generate_study

    out = tmp_path_factory.mktemp("reference-study") / "study"
    summary = generate_study(str(out), STUDY_PATIENTS, STUDY_SEED, preview=True, jobs=2)
    return out, summary


@pytest.fixture(scope="session")
def truth_lesions(reference_study):
    """The reference study's truth/lesions.csv: one dict per lesion and session."""
    import csv

    out, _ = reference_study
    with open(out / "truth" / "lesions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def reference_suv(reference_study, tmp_path_factory):
    """Every PET of the reference study converted by `netpet suv`: {(patient, session): (path, provenance)}."""
    from netpet.cli.main import main

    out, summary = reference_study
    folder = tmp_path_factory.mktemp("reference-suv")
    images = {}
    for patient in summary["patients"]:
        for session in patient["sessions"]:
            path = folder / f"{patient['patient_id']}_{session['session_id']}.nrrd"
            pet = out / "dicom" / patient["patient_id"] / session["session_id"] / "PET"
            assert main(["suv", str(pet), "--out", str(path), "--provenance", str(path) + ".json"]) == 0
            with open(str(path) + ".json") as handle:
                images[(patient["patient_id"], session["session_id"])] = (path, json.load(handle))
    return images


@pytest.fixture()
def sqlite_statements(monkeypatch):
    """Every SQL statement the study table's SQLite connections run from now on (netpet.quant.table's
    ``sqlite3.connect`` traced; ``monkeypatch.undo()`` stops the tracing)."""
    import sqlite3

    from netpet.quant import table as table_module

    statements = []
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(table_module.sqlite3, "connect", traced)
    return statements
