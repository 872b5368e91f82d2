"""The digital reference study's staging design, follow-up time point and location truth (issue 13, item 5).

Three one-patient studies are written once (seed 4, NETPET-001, a pancreatic NET whose FU1 is a
progression with new lesions and a resolved inflamed node; 68Ga-DOTATATE PET/CT only, so each
takes seconds): without options, with --follow-up (through the CLI), and with both options.
Everything else is checked on the patient model, which costs milliseconds.
"""

from __future__ import annotations

import csv
import filecmp
import hashlib
import os

import numpy as np
import pytest

from netpet.cli.main import main
from netpet.clinical.staging import classify_node, node_is_regional, primary_site
from netpet.phantom import anatomy, generate_study
from netpet.phantom.anatomy import Body
from netpet.phantom.followup import CHANGE, NEW_LESIONS, SCENARIOS, scenario_of
from netpet.phantom.patients import _NODES, PATIENT_KINDS, make_patient
from netpet.phantom.poses import map_points, read_sessions
from netpet.phantom.stages import DISTANT_NODES, LUNG_SITES, REGIONAL_NODES, STAGE_DESIGN, net_ordinal, stage_of
from netpet.phantom.study import (
    LESION_COLUMNS, LESION_COLUMNS_FOLLOW_UP, LOCATION_COLUMNS, REFERENCE_COLUMNS, STAGING_COLUMNS, reference_rows,
    staging_rows,
)

SEED, ONE = 4, dict(tracers=("dotatate",), modalities=("petct",))
FU = "S4-DOTATATE-PETCT-FU1"
#: truth/lesions.csv of `netpet phantom OUT --patients 1 --seed 4 --tracers dotatate --modalities petct` as written
#: by the code before the options existed (commit c93165d): the options must leave it as it was
PLAIN_LESIONS_SHA256 = "a97a0353547a0aa5693cad065cde81b0a09e4a1ee1ac59245074f5340698e608"
PLAIN_REFERENCE = [("NETPET-001", "L01", "bone", "1", "follow-up"), ("NETPET-001", "L02", "lymph nodes", "1", "follow-up"),
                   ("NETPET-001", "L03", "lymph nodes", "0", "follow-up"), ("NETPET-001", "L04", "pancreas", "0", "follow-up"),
                   ("NETPET-001", "L05", "pancreas", "1", "histopathology")]


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _files(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root)
                  for name in names)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom-followup")
    generate_study(str(root / "plain"), 1, SEED, jobs=1, **ONE)
    assert main(["phantom", str(root / "followup"), "--patients", "1", "--seed", str(SEED), "--tracers", "dotatate",
                 "--modalities", "petct", "--follow-up", "--jobs", "1"]) == 0
    generate_study(str(root / "full"), 1, SEED, jobs=1, distant_sites=True, follow_up=True, **ONE)
    return root


def test_without_options_the_study_is_unchanged(studies):
    plain = studies / "plain"
    lesions = (plain / "truth" / "lesions.csv").read_bytes()
    assert hashlib.sha256(lesions).hexdigest() == PLAIN_LESIONS_SHA256
    assert list(_rows(plain / "truth" / "lesions.csv")[0]) == LESION_COLUMNS
    reference = _rows(plain / "reference_standard.csv")
    assert list(reference[0]) == REFERENCE_COLUMNS
    assert [tuple(r[c] for c in REFERENCE_COLUMNS[:5]) for r in reference] == PLAIN_REFERENCE
    assert {r["time_point"] for r in reference} == {""} and {r["primary"] for r in reference} == {"pancreas"}
    assert not (plain / "truth" / "follow_up.csv").exists()
    assert [r["time_point"] for r in _rows(plain / "truth" / "staging.csv")] == ["baseline"]


def test_follow_up_keeps_the_baseline_bytes(studies):
    """--follow-up adds a session from new random streams: the baseline session is byte-identical."""
    plain, followup = studies / "plain", studies / "followup"
    session = os.path.join("dicom", "NETPET-001", "S1-DOTATATE-PETCT")
    files = _files(plain / session)
    assert files and files == _files(followup / session)
    assert all(filecmp.cmp(plain / session / f, followup / session / f, shallow=False) for f in files)
    seg = os.path.join("truth", "NETPET-001", "S1-DOTATATE-PETCT_lesions.seg.nrrd")
    assert filecmp.cmp(plain / seg, followup / seg, shallow=False)
    rows = _rows(followup / "truth" / "lesions.csv")
    assert list(rows[0]) == LESION_COLUMNS_FOLLOW_UP
    baseline = [{k: r[k] for k in LESION_COLUMNS} for r in rows if r["time_point"] == "baseline"]
    assert baseline == _rows(plain / "truth" / "lesions.csv")
    assert {r["session_id"] for r in rows if r["time_point"] == "FU1"} == {FU}


def test_same_seed_same_bytes_with_both_options(studies, tmp_path):
    again = tmp_path / "again"
    generate_study(str(again), 1, SEED, jobs=1, distant_sites=True, follow_up=True, **ONE)
    files = _files(studies / "full")
    assert files == _files(again) and len(files) > 500
    assert all(filecmp.cmp(studies / "full" / f, again / f, shallow=False) for f in files)


def test_new_lesions_only_at_follow_up_and_disappeared_only_at_baseline(studies):
    for name in ("followup", "full"):
        out = studies / name
        rows = _rows(out / "truth" / "lesions.csv")
        changes = _rows(out / "truth" / "follow_up.csv")
        status = {c["lesion_id"]: c["status"] for c in changes}
        at = {tp: {r["lesion_id"] for r in rows if r["time_point"] == tp} for tp in ("baseline", "FU1")}
        new = {k for k, v in status.items() if v == "new"}
        gone = {k for k, v in status.items() if v in ("disappeared", "resected")}
        assert new and gone  # seed 4: a progression with new lesions, and an inflamed node that resolved
        assert not new & at["baseline"] and new <= at["FU1"]
        assert gone <= at["baseline"] and not gone & at["FU1"]
        assert at["FU1"] == (at["baseline"] - gone) | new
        # every present lesion's FU1 diameter is its baseline diameter x the applied factor: diameters are written to
        # 0.01 mm (the baseline one and the FU1 one each up to 0.005 mm off) and the factor to 4 decimals (at most
        # 5e-5 off a factor >= 0.40: 1.25e-4 relative, as below)
        size = {(r["lesion_id"], r["time_point"]): float(r["diameter_mm"]) for r in rows}
        for change in changes:
            if change["status"] == "present":
                expected = size[(change["lesion_id"], "baseline")] * float(change["diameter_factor"])
                assert size[(change["lesion_id"], "FU1")] == pytest.approx(expected, abs=0.01 + 1.25e-4 * expected)
        reference = _rows(out / "reference_standard.csv")
        keys = {(r["lesion_id"], r["time_point"]) for r in reference}
        assert keys == {(r["lesion_id"], r["time_point"]) for r in rows}  # one row per lesion and time point
        for row in reference:
            if row["lesion_id"] in new:
                assert row["location_session"] == FU and row["time_point"] == "FU1"


def test_reference_locations_equal_truth_centres(studies):
    out = studies / "full"
    truth = _rows(out / "truth" / "lesions.csv")
    locations = _rows(out / "reference_locations.csv")
    assert list(locations[0]) == LOCATION_COLUMNS
    assert [{k: r[k] for k in LOCATION_COLUMNS} for r in truth] == locations
    first = {}
    for row in truth:
        first.setdefault(row["lesion_id"], row)
    for row in _rows(out / "reference_standard.csv"):
        seen = first[row["lesion_id"]]
        assert row["location_session"] == seen["session_id"]
        assert [row[k] for k in ("center_r", "center_a", "center_s", "diameter_mm")] == \
            [seen[k] for k in ("center_r", "center_a", "center_s", "diameter_mm")]
        assert row["site"] == seen["site"] and row["primary"] == "pancreas"


def test_sessions_truth_maps_lesion_centres_between_sessions(studies):
    """truth/sessions.csv (RAS convention of netpet.phantom.poses) moves each lesion's centre of the baseline
    session onto its centre in the follow-up session: the known movement, sign and frame included."""
    out = studies / "full"
    sessions = {r["session_id"]: r for r in read_sessions(str(out / "truth" / "sessions.csv"))}
    assert sessions["S1-DOTATATE-PETCT"]["time_point"] == "baseline" and sessions[FU]["time_point"] == "FU1"
    assert 90 <= int(sessions[FU]["days_from_baseline"]) <= 200
    assert any(abs(float(sessions[FU][k])) > 0.5 for k in ("rotation_x_deg", "rotation_y_deg", "rotation_z_deg"))
    centre = {(r["session_id"], r["lesion_id"]): [float(r[k]) for k in ("center_r", "center_a", "center_s")]
              for r in _rows(out / "truth" / "lesions.csv")}
    both = [lesion for (session, lesion) in centre if session == FU and ("S1-DOTATATE-PETCT", lesion) in centre]
    assert len(both) >= 4
    mapped = map_points(sessions["S1-DOTATATE-PETCT"], sessions[FU], [centre[("S1-DOTATATE-PETCT", l)] for l in both])
    moved = np.abs(np.array([centre[("S1-DOTATATE-PETCT", l)] for l in both]) - [centre[(FU, l)] for l in both])
    assert moved.max() > 5  # the patient moved
    # both centres are rounded to 0.01 mm: at most 0.005 mm per coordinate each, rotated: 0.005 (1 + sqrt 3)
    assert np.abs(mapped - [centre[(FU, l)] for l in both]).max() <= 0.005 * (1 + np.sqrt(3)) + 1e-9


def test_staging_truth_hand_checked(studies):
    """Two patients of the seed-1 study with the staging design, by hand (AJCC 8th; netpet.clinical.staging)."""
    first = make_patient(1, 0, distant_sites=True, follow_up=True)
    # NETPET-001, pancreatic tail NET: a superior mesenteric node (regional for the pancreas: N1), five liver
    # metastases and no extrahepatic site (M1a); FU1 (mixed) loses one liver metastasis and gains one: N1 M1a, IV
    expected_sites = sorted([("NET primary", "pancreatic tail"), ("lymph node metastasis", "superior mesenteric node")]
                            + [("liver metastasis", "liver")] * 5)
    for time_point in ("baseline", "FU1"):
        sites = sorted((lesion.kind, lesion.site) for lesion in first.lesions_at(time_point) if lesion.malignant)
        assert sites == expected_sites
    assert {c["status"] for c in first.follow_up["FU1"].changes if c["kind"] == "liver metastasis"} == \
        {"present", "disappeared", "new"}
    assert node_is_regional("pancreas", classify_node("superior mesenteric node"))
    second = make_patient(1, 1, distant_sites=True, follow_up=True)
    # NETPET-002, terminal-ileum NET: a mediastinal node (thoracic station: not regional for jejunum-ileum, a
    # distant node, M1b) and two vertebral metastases (extrahepatic, M1b); no regional node (N0); no liver: M1b
    sites = sorted((lesion.kind, lesion.site) for lesion in second.lesions if lesion.malignant)
    assert sites == [("NET primary", "terminal ileum"), ("bone metastasis", "L3 vertebral body"),
                     ("bone metastasis", "T10 vertebral body"), ("lymph node metastasis", "mediastinal node")]
    assert not node_is_regional("jejunum-ileum", classify_node("mediastinal node"))
    expected = [
        {"patient_id": "NETPET-001", "time_point": "baseline", "primary": "pancreas", "n": "N1", "m": "M1a", "stage_group": "IV"},
        {"patient_id": "NETPET-001", "time_point": "FU1", "primary": "pancreas", "n": "N1", "m": "M1a", "stage_group": "IV"},
        {"patient_id": "NETPET-002", "time_point": "baseline", "primary": "jejunum-ileum", "n": "N0", "m": "M1b",
         "stage_group": "IV"},
        {"patient_id": "NETPET-002", "time_point": "FU1", "primary": "jejunum-ileum", "n": "N0", "m": "M1b",
         "stage_group": "IV"},
    ]
    assert staging_rows(first) + staging_rows(second) == expected
    # TIO is not staged; a work-up without tumour is N0 M0 without a primary
    assert staging_rows(make_patient(1, 2, follow_up=True)) == [
        {"patient_id": "NETPET-003", "time_point": tp, "primary": "", "n": "", "m": "", "stage_group": ""}
        for tp in ("baseline", "FU1")]
    assert staging_rows(make_patient(1, 4)) == [
        {"patient_id": "NETPET-005", "time_point": "baseline", "primary": "", "n": "N0", "m": "M0", "stage_group": "N0M0"}]
    # the written table: seed 4's pancreatic-head NET, N1 M1a at baseline (a celiac node, regional; three liver
    # metastases), M1c at FU1 (progression: two new liver metastases and a new sternal metastasis, extrahepatic)
    fourth = make_patient(SEED, 0, distant_sites=True, follow_up=True, **ONE)
    assert sorted((lesion.kind, lesion.site) for lesion in fourth.lesions_at("FU1") if lesion.malignant) == sorted(
        [("NET primary", "pancreatic head"), ("bone metastasis", "sternum"), ("lymph node metastasis", "celiac node")]
        + [("liver metastasis", "liver")] * 5)
    assert node_is_regional("pancreas", classify_node("celiac node"))
    written = _rows(studies / "full" / "truth" / "staging.csv")
    assert list(written[0]) == STAGING_COLUMNS
    assert [(r["time_point"], r["n"], r["m"], r["stage_group"]) for r in written] == [
        ("baseline", "N1", "M1a", "IV"), ("FU1", "N1", "M1c", "IV")]


def test_stage_design_spread():
    """Every NET patient gets its design's N and M, for any seed; the 5-patient seed-1 study has N0, N1, M1a, M1b,
    M1c; ten patients also M0 (NET) and stage III."""
    for seed in range(6):
        for index in range(10):
            patient = make_patient(seed, index, distant_sites=True)
            if patient.kind != "NET":
                continue
            n, m, _ = stage_of(patient.lesions, patient.primary)
            assert (n, m) == STAGE_DESIGN[net_ordinal(index) % len(STAGE_DESIGN)][:2], (seed, index)
    five = [stage_of(p.lesions, p.primary) for p in (make_patient(1, i, distant_sites=True) for i in range(5))
            if p.kind != "TIO"]
    assert {s[0] for s in five} == {"N0", "N1"} and {s[1] for s in five} >= {"M1a", "M1b", "M1c", "M0"}
    ten = [stage_of(p.lesions, p.primary) for p in (make_patient(1, i, distant_sites=True) for i in range(10))
           if p.kind == "NET"]
    assert {s[1] for s in ten} == {"M0", "M1a", "M1b", "M1c"} and {s[2] for s in ten} == {"N0M0", "III", "IV"}
    # the design's new sites appear: a distant node and lung metastases
    sites = {lesion.site for i in range(10) for lesion in make_patient(1, i, distant_sites=True).lesions}
    assert sites & set(DISTANT_NODES) and sites & set(LUNG_SITES)
    # without the option nothing changes (the same lesions as before)
    for index in range(5):
        assert [vars(a) for a in make_patient(1, index).lesions] == \
            [vars(b) for b in make_patient(1, index, follow_up=True).lesions]


def _label_at(body, points):
    points = np.asarray(points, dtype=float)
    labels = np.zeros(len(points), dtype=int)
    for structure in anatomy.structures(body):  # painted in order: the last structure holding a point wins
        labels[structure.shape.contains(points[:, 0], points[:, 1], points[:, 2])] = structure.label
    return labels


def test_new_sites_lie_in_plausible_tissue():
    """Lung sites inside the lungs with 20 mm to spare all round (the largest lung lesion is 16 mm); new nodes in
    soft tissue, never inside an organ, for small and large bodies."""
    directions = np.random.default_rng(0).normal(size=(300, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    nodes = {**DISTANT_NODES, **{k: v for sites in REGIONAL_NODES.values() for k, v in sites.items()
                                  if k not in _NODES}}
    for height, bmi in ((1500, 18.5), (1700, 25.0), (1980, 34.0)):
        body = Body(height, bmi, False)
        for site, centre in LUNG_SITES.items():
            points = np.asarray(body.p(*centre)) + directions * 20.0
            assert set(_label_at(body, points)) == {anatomy.LABEL["lung"]}, (site, height, bmi)
        for site, centre in nodes.items():
            points = np.vstack([body.p(*centre), np.asarray(body.p(*centre)) + directions * 5.0])
            assert set(_label_at(body, points)) == {anatomy.LABEL["soft tissue"]}, (site, height, bmi)
    for station in list(DISTANT_NODES) + [k for s in REGIONAL_NODES.values() for k in s]:
        classify_node(station)  # every node site names a station


def test_follow_up_changes_within_the_drawn_scenario():
    """Over 8 seeds x 10 patients: every change lies within its scenario's ranges (RECIST/PERCIST-like), new
    lesions only under progression or mixed and never where a lesion was, TIO culprits resected or recurred."""
    scenarios = set()
    for seed in range(8):
        for index in range(10):
            patient = make_patient(seed, index, follow_up=True)
            if patient.kind == "none":
                assert not patient.follow_up and len(patient.sessions) <= 3
                continue
            point = patient.follow_up["FU1"]
            scenarios.add(point.scenario)
            assert point.scenario == scenario_of(seed, index, patient.kind)
            assert [s.session_id for s in patient.sessions][-1] == FU and 90 <= point.days_from_baseline <= 200
            baseline = {lesion.lesion_id: lesion for lesion in patient.lesions}
            later = {lesion.lesion_id: lesion for lesion in point.lesions}
            new = [c for c in point.changes if c["status"] == "new"]
            assert {c["lesion_id"] for c in new} == set(later) - set(baseline)
            for change in point.changes:
                if change["status"] != "present" or not change["malignant"]:
                    continue
                low, high = CHANGE[change["arm"]][0]
                assert low <= change["diameter_factor_drawn"] <= high
                if change["capped"]:
                    assert 1.0 <= change["diameter_factor"] < change["diameter_factor_drawn"]
                else:
                    assert change["diameter_factor"] == change["diameter_factor_drawn"]
                low, high = CHANGE[change["arm"]][1]
                assert low <= change["uptake_factor"] <= high
                before, after = baseline[change["lesion_id"]], later[change["lesion_id"]]
                # factors are recorded to 4 decimals (at most 5e-5 off, >= 0.40: 1.25e-4 relative); SUVs to 2
                assert after.diameter_mm == pytest.approx(before.diameter_mm * change["diameter_factor"], rel=1.25e-4)
                assert after.suv["dotatate"] == pytest.approx(before.suv["dotatate"] * change["uptake_factor"],
                                                              abs=0.005 + 1.25e-4 * before.suv["dotatate"])
                assert after.center == before.center
                assert change["arm"] == point.scenario or point.scenario == "mixed"
            for change in point.changes:
                if change["status"] == "disappeared" and change["malignant"]:
                    assert change["arm"] == "response"  # complete response
            if patient.kind == "NET":
                fewest, most = NEW_LESIONS[point.scenario]
                assert len(new) <= most and (len(new) >= fewest or point.scenario == "progression")
                # growth is capped 2 mm short of any other lesion: lesions apart at baseline stay apart
                for a, one in enumerate(point.lesions):
                    for two in point.lesions[a + 1:]:
                        apart = np.linalg.norm(np.subtract(one.center, two.center))
                        if one.lesion_id in baseline and two.lesion_id in baseline and apart <= \
                                max(baseline[one.lesion_id].radii) + max(baseline[two.lesion_id].radii):
                            continue  # touching at baseline already (the baseline generator allows it)
                        assert apart > max(one.radii) + max(two.radii), (seed, index, one.lesion_id, two.lesion_id)
                for lesion in new:
                    placed = later[lesion["lesion_id"]]
                    assert all(np.linalg.norm(np.subtract(placed.center, old.center)) > max(old.radii)
                               for old in patient.lesions)
            else:  # TIO: the culprit was resected; a recurrence is a new lesion at its place
                assert all(lesion.kind != "TIO culprit tumour" for lesion in point.lesions)
                culprit = next(lesion for lesion in patient.lesions if lesion.kind == "TIO culprit tumour")
                recurrences = [later[c["lesion_id"]] for c in new]
                assert len(recurrences) == (point.scenario == "recurrence")
                assert all(r.center == culprit.center and r.kind == "TIO recurrence" for r in recurrences)
    assert scenarios == set(SCENARIOS) | {"recurrence", "resected"}


def test_reference_rows_per_time_point():
    patient = make_patient(1, 6, follow_up=True)  # NETPET-007: TIO, culprit resected, nothing at FU1
    assert patient.follow_up["FU1"].scenario == "resected" and not patient.lesions_at("FU1")
    rows = reference_rows(patient, follow_up=True)
    assert [(r["lesion_id"], r["time_point"], r["truth"]) for r in rows] == [("L01", "baseline", 1), ("", "FU1", 0)]
    # "TIO": GEP-NET staging does not apply (netpet.clinical.staging.NOT_APPLICABLE_PRIMARIES); an empty primary
    # would be staged as an unknown primary and its bone culprit read as M1b
    assert {r["primary"] for r in rows} == {"TIO"}
    from netpet.clinical.staging import stage_patients
    import pandas as pd

    staged = stage_patients(pd.DataFrame([{**r, "call": r["truth"]} for r in rows if r["lesion_id"]]),
                            {patient.patient_id: "TIO"}).iloc[0]
    assert staged["n"] is None and staged["m"] is None and "does not apply" in staged["reason"]
    assert [r["time_point"] for r in reference_rows(patient)] == [""] * len(patient.lesions)


def test_phantom_options_refused_where_they_cannot_apply(tmp_path, capsys):
    assert main(["phantom", str(tmp_path / "x"), "--tracers", "fdg", "--modalities", "petct", "--follow-up"]) == 2
    assert "follow-up time point is a 68Ga-DOTATATE PET/CT" in capsys.readouterr().err
    assert main(["phantom", str(tmp_path / "y"), "--case", "lesion-free", "--follow-up"]) == 2
    assert "not to a teaching case" in capsys.readouterr().err
    assert primary_site("small bowel") == "jejunum-ileum"
    assert PATIENT_KINDS.count("NET") == 6  # the staging design's cycle of six matches the NET patients of ten
