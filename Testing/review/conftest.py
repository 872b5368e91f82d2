"""Fixtures of the browser app's tests: a small study to review and a ``netpet review`` server on it.

The study: the first patient of the session's reference study (``reference_study``, Testing/conftest.py) with
its 68Ga-DOTATATE PET/CT and PET/MR (hard links, so nothing is copied where the file system allows), and a
study table written by ``netpet quantify`` (reader R1 clicking each avid lesion of the PET/CT at its true
centre, as the demo's reader does). The server is started as a user starts it, ``python -m netpet.cli.main
review STUDY --port N``, and the address is read from what it prints.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: how long a server may take to build (index, load the first session) and open its port on a busy 2-core machine
SERVER_START_S = 180
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def browser_or_skip():
    """Playwright's sync API, or a skip naming what to install."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("chromium is not installed (packaging/debian-packages.txt; quickstart.py installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test,gui])")
    try:
        import trame_slicer  # noqa: F401  (an install whose slicer-core does not fit fails here, not at find_spec)
    except ImportError as exc:
        pytest.skip(f"trame-slicer cannot be imported ({exc}); pip install -e .[gui]")
    from playwright import sync_api

    return sync_api


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _link_tree(source, target):
    """Hard-link a folder's files (copy where links cannot be made): the study stays a folder of its own."""
    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


@pytest.fixture(scope="session")
def review_study(reference_study, tmp_path_factory):
    """(study folder, facts): the first patient's DOTATATE PET/CT and PET/MR and a study table of reader R1 (its
    clicks on both sessions).

    facts: patient, petct and petmr session ids, petct_dir (the PET/CT's PET DICOM folder), lesions (the table's
    rows of R1 on the PET/CT, as written by netpet quantify), petmr_lesions (those on the PET/MR)."""
    from netpet.cli.main import main

    out, summary = reference_study
    patient = summary["patients"][0]["patient_id"]
    with open(out / "truth" / "sessions.csv", newline="") as handle:
        sessions = [r for r in csv.DictReader(handle) if r["patient_id"] == patient and r["tracer"] == "dotatate"]
    petct = next(r["session_id"] for r in sessions if r["modality"] == "PET/CT")
    petmr = next(r["session_id"] for r in sessions if r["modality"] == "PET/MR")
    root = tmp_path_factory.mktemp("review") / "study"
    for session in (petct, petmr):
        _link_tree(out / "dicom" / patient / session, root / "dicom" / patient / session)
    with open(out / "truth" / "lesions.csv", newline="") as handle:
        truth = [r for r in csv.DictReader(handle)
                 if r["patient_id"] == patient and r["session_id"] in (petct, petmr) and r["avid"] == "1"]
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s",
                         "region"])
        for session, prefix in ((petct, "C"), (petmr, "M")):
            for number, row in enumerate([r for r in truth if r["session_id"] == session], 1):
                writer.writerow([patient, session, f"dicom/{patient}/{session}/PET", "R1", f"{prefix}{number:02d}",
                                 row["center_r"], row["center_a"], row["center_s"], row["region"]])
    table = root / "study-table.csv"
    assert main(["quantify", str(manifest), "--table", str(table), "--jobs", "1"]) in (0, 6)
    with open(table, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["lesion_id"]]
    lesions = [r for r in rows if r["lesion_id"].startswith("C")]
    petmr_lesions = [r for r in rows if r["lesion_id"].startswith("M")]
    assert lesions and petmr_lesions, "netpet quantify wrote no lesion of the PET/CT or of the PET/MR"
    return root, {"patient": patient, "petct": petct, "petmr": petmr, "lesions": lesions,
                  "petmr_lesions": petmr_lesions,
                  "petct_dir": root / "dicom" / patient / petct / "PET"}


class Server:
    """A ``netpet`` server subprocess: its address (read from what it prints) and its output."""

    def __init__(self, args, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "w")
        environment = dict(os.environ, VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow", PYTHONUNBUFFERED="1")
        environment.update(env or {})
        environment.pop("DISPLAY", None)
        self.started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "-m", "netpet.cli.main", *args], cwd=REPOSITORY,
                                        stdout=subprocess.PIPE, stderr=self.log, text=True, env=environment)
        self.url = None
        self.lines = []
        deadline = time.time() + SERVER_START_S
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            found = re.search(r"open (http://\S+)", line)
            if found:
                self.url = found.group(1)
                break
        self.start_s = time.perf_counter() - self.started
        if self.url is None:
            self.stop()
            with open(log_path) as handle:
                raise AssertionError(f"the server printed no address: {self.lines} {handle.read()[-3000:]}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(2)  # Ctrl-C, as a user stops it
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        rest = self.process.stdout.read() if self.process.stdout else ""
        self.lines += rest.splitlines()
        self.log.close()
        return self.process.returncode


@pytest.fixture(scope="session")
def teach_case(tmp_path_factory):
    """The teaching case ``liver-threshold`` as ``netpet phantom OUT --case liver-threshold`` writes it."""
    from netpet.cli.main import main

    out = tmp_path_factory.mktemp("teach") / "liver-threshold"
    assert main(["phantom", str(out), "--case", "liver-threshold"]) == 0
    return out
