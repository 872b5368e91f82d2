"""A small synthetic study for ``netpet run``: three NET patients with a 68Ga-DOTATATE PET/CT each (three sessions),
a manifest of one reader's clicks at every truth lesion (netpet.run.phantom_manifest), and one uninterrupted run of
it with statistics, made once per test session.

The study's reference_standard.csv is moved out of the study folder (to ``reference``): ``netpet run`` would find it
there and make the statistics on every run; the tests that want them pass it with --reference.
"""

import os
import shutil

import pytest

RUN_SEED, RUN_PATIENTS = 8, 3


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """(study folder, manifest path, reference standard path)."""
    from netpet.phantom import generate_study
    from netpet.run.phantom_manifest import write_truth_manifest

    base = tmp_path_factory.mktemp("run-study")
    study = base / "study"
    generate_study(str(study), RUN_PATIENTS, RUN_SEED, tracers=("dotatate",), modalities=("petct",), jobs=2)
    reference = base / "reference_standard.csv"
    shutil.move(str(study / "reference_standard.csv"), str(reference))
    manifest = base / "manifest.csv"
    write_truth_manifest(str(study), str(manifest))
    return study, manifest, reference


@pytest.fixture(scope="session")
def baseline_run(small_study, tmp_path_factory):
    """One uninterrupted run (2 local workers, statistics) whose table every other run is compared with. The driver's
    writes of the table are recorded (its pid and the rows of each upsert) through StudyTable.upsert."""
    from netpet.quant.table import StudyTable
    from netpet.run.driver import run_study as run

    study, manifest, reference = small_study
    out = tmp_path_factory.mktemp("run-baseline") / "out"
    writers = tmp_path_factory.mktemp("run-writers") / "upserts.txt"
    original = StudyTable.upsert

    def recorded(self, rows, *args, **kwargs):
        rows = list(rows)
        with open(writers, "a") as handle:
            handle.write(f"{os.getpid()} {len(rows)}\n")
        return original(self, rows, *args, **kwargs)

    StudyTable.upsert = recorded
    try:
        summary = run(str(study), str(out), manifest=str(manifest), reference=str(reference), jobs=2)
    finally:
        StudyTable.upsert = original
    with open(writers) as handle:
        upserts = [tuple(int(v) for v in line.split()) for line in handle]
    return out, summary, upserts, os.getpid()
