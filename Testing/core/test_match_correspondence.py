"""Lesion correspondence (netpet.match.correspondence): hand-built cases, then the reference study.

Hand-built cases place findings and reference lesions at chosen RAS points (mm), so every distance,
gate and status below is computed by hand from the module's rules: gate = max(reference radius,
finding radius, FLOOR_MM 5 mm) + GATE_K 2 x registration error; ambiguous when another candidate in
the gate is closer than distance + registration error + AMBIGUITY_MARGIN_MM 4 mm.

The reference-study cases take every lesion centre of truth/lesions.csv (per session, RAS), jitter
it by 2 mm in a random direction (a segmented centroid is within about half a PET voxel of the
true centre) and name the findings L01, L02 ... in a shuffled order per session (Slicer's click
order, unrelated to the reference ids). Matching accuracy (findings assigned to their own lesion)
is expected to be 100 %: the lesions of a patient lie at least 25 mm apart in the reference study
(printed), far beyond a 2 mm jitter plus the registration error (max 0.61 mm on the CT/MR,
test_match_registration.py).
"""

import csv
import glob
import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from netpet.errors import NetpetError
from netpet.match import correspondence as corr
from netpet.match.correspondence import (COLUMNS, CorrespondenceError, MissingRegistrationError, match_study,
                                         read_correspondence, summarise, write_correspondence)
from netpet.match.registration import REGISTRATION_ERROR_MM, read_session, register_and_store, transform_path

TABLE_COLUMNS = ["patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "call",
                 "centroid_r", "centroid_a", "centroid_s", "mtv_ml", "time_point", "segmentation_file"]
REFERENCE_COLUMNS = ["patient_id", "lesion_id", "region", "truth", "standard", "location_session", "center_r",
                     "center_a", "center_s", "diameter_mm", "time_point"]


def _write(path, columns, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return str(path)


def finding(lesion_id, r, a=0.0, s=0.0, session="S1", mtv="", reader="r1", patient="P1", time_point=""):
    return {"patient_id": patient, "session_id": session, "modality": "PET/CT", "tracer": "dotatate",
            "reader": reader, "lesion_id": lesion_id, "region": "liver", "call": "positive",
            "centroid_r": r, "centroid_a": a, "centroid_s": s, "mtv_ml": mtv, "time_point": time_point}


def lesion(lesion_id, r, a=0.0, s=0.0, session="S1", diameter=10.0, patient="P1", time_point=""):
    return {"patient_id": patient, "lesion_id": lesion_id, "region": "liver", "truth": 1, "standard": "histology",
            "location_session": session, "center_r": r, "center_a": a, "center_s": s, "diameter_mm": diameter,
            "time_point": time_point}


def run(tmp_path, findings, lesions, **kwargs):
    table = _write(tmp_path / "table.csv", TABLE_COLUMNS, findings)
    reference = _write(tmp_path / "reference.csv", REFERENCE_COLUMNS, lesions)
    return match_study(table, reference, **kwargs)


def by_finding(frame):
    return {r["lesion_id"]: r for r in frame.to_dict("records") if r["lesion_id"]}


def missed(frame):
    return sorted(frame.loc[frame["status"] == "missed", "reference_lesion_id"])


# -- hand-built cases ---------------------------------------------------------------------------------

def test_exact_assignment_with_distances_and_gates(tmp_path):
    frame = run(tmp_path, [finding("L01", 31.0), finding("L02", 1.0, 1.0)],
                [lesion("A", 0.0), lesion("B", 30.0, diameter=16.0)])
    assert list(frame.columns) == list(COLUMNS)
    rows = by_finding(frame)
    assert rows["L01"]["reference_lesion_id"] == "B" and rows["L01"]["status"] == "matched"
    assert rows["L01"]["distance_mm"] == "1.00" and rows["L01"]["gate_mm"] == "8.00"  # radius 8 of 16 mm
    assert rows["L02"]["reference_lesion_id"] == "A" and rows["L02"]["distance_mm"] == f"{math.sqrt(2):.2f}"
    assert rows["L02"]["gate_mm"] == "5.00" and rows["L02"]["via"] == "location"  # radius 5 = floor
    assert rows["L02"]["registration_error_mm"] == "0.00" and rows["L02"]["track_id"] == "A"
    assert missed(frame) == [] and rows["L02"]["time_point"] == "baseline"


def test_optimal_assignment_beats_nearest_first(tmp_path):
    """A at 0, B at 5 (gates 7.5 mm); L01 at 3 is nearer B (2 mm) but only it can take A: L02 at 9 is 9 mm
    from A (beyond the gate) and 4 mm from B. Nearest-first would leave L02 unmatched and A missed."""
    frame = run(tmp_path, [finding("L01", 3.0), finding("L02", 9.0)],
                [lesion("A", 0.0, diameter=15.0), lesion("B", 5.0, diameter=15.0)])
    rows = by_finding(frame)
    assert (rows["L01"]["reference_lesion_id"], rows["L02"]["reference_lesion_id"]) == ("A", "B")
    assert missed(frame) == []
    # and both could flip: B is 2 mm from L01 (< 3 + 0 + 4), L01 is 2 mm from B (< 4 + 0 + 4)
    assert rows["L01"]["status"] == rows["L02"]["status"] == "ambiguous"
    assert rows["L01"]["candidates"] == "B:2.0" and "finding L01 of this read at 2.0 mm" in rows["L02"]["note"]


def test_gate_is_the_larger_of_lesion_finding_and_floor(tmp_path):
    # 6 mm from a 10 mm lesion: gate max(5, 0, 5) = 5 mm -> unmatched and missed
    frame = run(tmp_path, [finding("L01", 6.0)], [lesion("A", 0.0)])
    rows = by_finding(frame)
    assert rows["L01"]["status"] == "unmatched" and rows["L01"]["track_id"] == "X01" and missed(frame) == ["A"]
    assert "nearest reference lesion A at 6.0 mm, beyond its gate" == rows["L01"]["note"]
    # the finding's own volume: a 1.4368 mL sphere has a 7.00 mm radius -> gate 7 mm -> matched
    volume = 4.0 / 3.0 * math.pi * 0.7 ** 3
    frame = run(tmp_path, [finding("L01", 6.0, mtv=f"{volume:.6f}")], [lesion("A", 0.0)])
    assert by_finding(frame)["L01"]["status"] == "matched" and by_finding(frame)["L01"]["gate_mm"] == "7.00"
    # a missing diameter is DEFAULT_DIAMETER_MM (15): gate 7.5 mm
    frame = run(tmp_path, [finding("L01", 7.0)], [lesion("A", 0.0, diameter="")])
    assert by_finding(frame)["L01"]["gate_mm"] == f"{corr.DEFAULT_DIAMETER_MM / 2:.2f}"


def test_ambiguity_rule(tmp_path):
    # two 10 mm lesions 6 mm apart; the finding 2 mm from A and 4 mm from B (inside B's 5 mm gate, 4 < 2 + 0 + 4)
    frame = run(tmp_path, [finding("L01", 2.0)], [lesion("A", 0.0), lesion("B", 6.0)])
    row = by_finding(frame)["L01"]
    assert row["status"] == "ambiguous" and row["reference_lesion_id"] == "A" and row["candidates"] == "B:4.0"
    assert "reference lesion B at 4.0 mm" in row["note"] and missed(frame) == ["B"]
    # 20 mm apart: B is outside the gate, the match is unique
    frame = run(tmp_path, [finding("L01", 2.0)], [lesion("A", 0.0), lesion("B", 20.0)])
    row = by_finding(frame)["L01"]
    assert row["status"] == "matched" and row["candidates"] == "" and row["note"] == ""
    # inside the gate but clearly farther (larger lesion B: gate 12 mm; 11.5 > 0.5 + 0 + 4): matched, B listed
    frame = run(tmp_path, [finding("L01", 0.5)], [lesion("A", 0.0), lesion("B", 12.0, diameter=24.0)])
    row = by_finding(frame)["L01"]
    assert row["status"] == "matched" and row["candidates"] == "B:11.5"


def _segmentation(path, centre_r, radius=2.5):
    """A .seg.nrrd (1 mm voxels, LPS x -20..19, y and z -10..9) holding segment L01: a ball about R centre_r, A 0, S 0."""
    import slicerio

    i, j, k = np.meshgrid(np.arange(40), np.arange(20), np.arange(20), indexing="ij")
    ball = ((i - 20 + centre_r) ** 2 + (j - 10) ** 2 + (k - 10) ** 2 <= radius ** 2).astype(np.uint8)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, 3] = (-20.0, -10.0, -10.0)
    slicerio.write_segmentation(str(path), {
        "voxels": ball, "ijkToLPS": ijk_to_lps, "containedRepresentationNames": ["Binary labelmap"],
        "masterRepresentation": "Binary labelmap", "referenceImageExtentOffset": [0, 0, 0],
        "segments": [{"id": "L01", "name": "L01", "labelValue": 1, "layer": 0, "extent": [0, 39, 0, 19, 0, 19],
                      "color": (0.9, 0.2, 0.2)}]})
    return os.path.basename(str(path))


def test_masks_break_a_tie_only_when_they_tell(tmp_path):
    """The ambiguous case above (finding 2 mm from A, 4 mm from B): a segment around A holds A's centre only
    (matched); a segment around B holds B's (still ambiguous, said in the note); no segment: ambiguous."""
    lesions = [lesion("A", 0.0), lesion("B", 6.0)]
    near_a = {**finding("L01", 2.0), "segmentation_file": _segmentation(tmp_path / "a.seg.nrrd", 0.0)}
    row = by_finding(run(tmp_path, [near_a], lesions))["L01"]
    assert (row["status"], row["reference_lesion_id"]) == ("matched", "A")
    assert "resolved by the segmentations: finding L01's segment holds the centre of A only" in row["note"]
    near_b = {**finding("L01", 2.0), "segmentation_file": _segmentation(tmp_path / "b.seg.nrrd", 6.0)}
    row = by_finding(run(tmp_path, [near_b], lesions))["L01"]
    assert row["status"] == "ambiguous" and row["note"].endswith("its segment holds the centre of B")
    broken = {**finding("L01", 2.0), "segmentation_file": "missing.seg.nrrd"}
    frame = run(tmp_path, [broken], lesions)
    assert by_finding(frame)["L01"]["status"] == "ambiguous"
    assert "missing.seg.nrrd could not be read" in frame.attrs["warnings"][0]


def test_unmatched_findings_and_missed_lesions(tmp_path):
    frame = run(tmp_path, [finding("L01", 0.0), finding("L02", 100.0), finding("L03", 0.0, reader="r2"),
                           {**finding("", 0.0, session="S2", time_point="FU1"), "centroid_r": ""}],
                [lesion("A", 0.0), lesion("B", -50.0), lesion("C", 0.0, session="S2", time_point="FU1")])
    rows = frame.to_dict("records")
    statuses = {(r["session_id"], r["reader"], r["lesion_id"], r["reference_lesion_id"]): r["status"] for r in rows}
    assert statuses == {
        ("S1", "r1", "L01", "A"): "matched", ("S1", "r1", "L02", ""): "unmatched", ("S1", "r1", "", "B"): "missed",
        ("S1", "r2", "L03", "A"): "matched", ("S1", "r2", "", "B"): "missed",
        # a session read without findings: every lesion of its time point is missed there (C is a FU1 lesion only)
        ("S2", "r1", "", "A"): "missed", ("S2", "r1", "", "B"): "missed", ("S2", "r1", "", "C"): "missed"}
    counts = summarise(frame)["counts"]
    assert (counts["matched"], counts["false_positives"], counts["false_negatives"], counts["findings"]) == (2, 1, 5, 3)
    assert summarise(frame)["patients"]["P1"]["missed"] == 5


def test_a_retracted_finding_takes_no_reference_lesion(tmp_path):
    """L01 (retracted, right on A) stays in the table but is no finding: L02 beside it is A's match, not an
    unmatched false positive with A missed."""
    columns = TABLE_COLUMNS + ["finding_status"]
    table = _write(tmp_path / "table.csv", columns,
                   [{**finding("L01", 0.0), "finding_status": "retracted"}, finding("L02", 2.0)])
    reference = _write(tmp_path / "reference.csv", REFERENCE_COLUMNS, [lesion("A", 0.0)])
    rows = by_finding(match_study(table, reference))
    assert set(rows) == {"L02"} and rows["L02"]["reference_lesion_id"] == "A" and rows["L02"]["status"] == "matched"
    # with every finding retracted the session still counts as read: A is missed there
    table = _write(tmp_path / "table.csv", columns, [{**finding("L01", 0.0), "finding_status": "Retracted "}])
    frame = match_study(table, reference)
    assert by_finding(frame) == {} and missed(frame) == ["A"]


def test_missing_registration_is_refused_naming_the_command(tmp_path):
    with pytest.raises(MissingRegistrationError) as caught:
        run(tmp_path, [finding("L01", 0.0, session="S2")], [lesion("A", 0.0, session="S1")])
    message = str(caught.value)
    assert isinstance(caught.value, NetpetError) and "\n" not in message and message.endswith(".")
    assert "lesion A of patient P1 in session S2" in message and "only in session(s) S1" in message
    assert "netpet register --table" in message and "--patient P1" in message


def test_bad_inputs_are_refused_naming_row_and_column(tmp_path):
    with pytest.raises(CorrespondenceError, match=r"reference\.csv row 3: column center_a is 'abc', not a finite "
                                                  r"number of mm"):
        run(tmp_path, [finding("L01", 0.0)], [lesion("A", 0.0), lesion("B", 5.0, a="abc")])
    with pytest.raises(CorrespondenceError, match=r"row 2: lesion A of patient P1 has a location without center_s"):
        run(tmp_path, [finding("L01", 0.0)], [lesion("A", 0.0, s="")])
    with pytest.raises(CorrespondenceError, match=r"row 2: column diameter_mm is '-4', not a positive number"):
        run(tmp_path, [finding("L01", 0.0)], [lesion("A", 0.0, diameter=-4)])
    locations = _write(tmp_path / "locations.csv", ["patient_id", "lesion_id", "session_id", "center_r", "center_a",
                                                    "center_s"], [{"patient_id": "P1", "lesion_id": "Z",
                                                                   "session_id": "S1", "center_r": 0, "center_a": 0,
                                                                   "center_s": 0}])
    with pytest.raises(CorrespondenceError, match=r"locations\.csv row 2: lesion Z of patient P1 is not in the "
                                                  r"reference standard"):
        run(tmp_path, [finding("L01", 0.0)], [lesion("A", 0.0)], locations_path=locations)
    with pytest.raises(CorrespondenceError, match=r"table\.csv line 2: finding L01 has no centroid_r/a/s"):
        run(tmp_path, [finding("L01", "")], [lesion("A", 0.0)])
    with pytest.raises(CorrespondenceError, match=r"^Patient P9 of the study table .* is not in the reference"):
        run(tmp_path, [finding("L01", 0.0, patient="P9")], [lesion("A", 0.0)])


def test_locations_file_takes_precedence_and_time_points_select_lesions(tmp_path):
    locations = _write(tmp_path / "locations.csv", ["patient_id", "lesion_id", "session_id", "center_r", "center_a",
                                                    "center_s", "diameter_mm"],
                       [{"patient_id": "P1", "lesion_id": "A", "session_id": "S1", "center_r": 40, "center_a": 0,
                         "center_s": 0, "diameter_mm": 10},
                        {"patient_id": "P1", "lesion_id": "N", "session_id": "S2", "center_r": 0, "center_a": 0,
                         "center_s": 0, "diameter_mm": 10}])
    frame = run(tmp_path, [finding("L01", 40.0), finding("L01", 0.5, session="S2", time_point="FU1")],
                [lesion("A", 0.0, time_point="baseline"), lesion("N", "", "", "", session="", time_point="FU1")],
                locations_path=locations)
    rows = frame.to_dict("records")
    s1 = [r for r in rows if r["session_id"] == "S1"]
    s2 = [r for r in rows if r["session_id"] == "S2"]
    # S1 (baseline): the file's A at R 40 wins over the reference standard's R 0; N is not a lesion at baseline
    assert [(r["lesion_id"], r["reference_lesion_id"], r["status"]) for r in s1] == [("L01", "A", "matched")]
    # S2 (FU1): only N, placed by the file; A is a baseline lesion
    assert [(r["lesion_id"], r["reference_lesion_id"], r["status"], r["time_point"]) for r in s2][0] == (
        "L01", "N", "matched", "FU1")


def _store(folder, patient, moving, fixed, translation_lps, basis="anatomy"):
    """A stored registration as register_and_store writes it: fixed LPS -> moving LPS = + translation."""
    path = transform_path(str(folder), patient, moving, fixed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    transform = sitk.Euler3DTransform()
    transform.SetTranslation(tuple(float(v) for v in translation_lps))
    sitk.WriteTransform(transform, path)
    with open(path[:-3] + ".json", "w") as handle:
        json.dump({"patient_id": patient, "fixed_session": fixed, "moving_session": moving,
                   "parameters": {"basis": basis}, "quality": {"nmi": 1.3, "converged": True}}, handle)
    return path


def test_registrations_map_both_ways_and_chain(tmp_path):
    # moving S2 = fixed S1 + (10 L, 0, 0) LPS, i.e. R - 10: a lesion at R 0 in S1 lies at R -10 in S2
    _store(tmp_path, "P1", "S2", "S1", (10.0, 0.0, 0.0))
    # S3 registered to S1 too: S3 = S1 + (0, 0, 20) LPS (S + 20)
    _store(tmp_path, "P1", "S3", "S1", (0.0, 0.0, 20.0), basis="pet")
    findings = [finding("L01", 0.0, session="S1"), finding("L01", -10.0, session="S2"),
                finding("L01", 0.0, 0.0, 20.0, session="S3")]
    frame = run(tmp_path, findings, [lesion("A", 0.0, session="S1"), lesion("B", -9.0, 0.0, 0.0, session="S2")])
    rows = {(r["session_id"], r["lesion_id"]): r for r in frame.to_dict("records") if r["lesion_id"]}
    assert rows[("S1", "L01")]["reference_lesion_id"] == "A" and rows[("S1", "L01")]["via"] == "location"
    # S1 -> S2: the stored transform applied as it is (fixed -> moving)
    row = rows[("S2", "L01")]
    assert row["reference_lesion_id"] == "A" and row["distance_mm"] == "0.00"
    assert row["via"] == "registration transforms/P1_S2_to_S1.h5"
    assert row["registration_error_mm"] == f"{REGISTRATION_ERROR_MM['anatomy']:.2f}"
    # B (S2) seen from S1: mapped moving -> fixed, R -9 -> R +1: 1 mm from L01, inside A's gate ... the finding
    # at S1 matched A (0 mm); B at 1 mm is a rival within the registration error: ambiguous
    assert rows[("S1", "L01")]["status"] == "ambiguous" and rows[("S1", "L01")]["candidates"] == "B:1.0"
    # S2 -> S1 -> S3: a chain through the common reference session, errors summed (anatomy 1 + pet 2 mm)
    row = rows[("S3", "L01")]
    assert row["reference_lesion_id"] == "A" and row["distance_mm"] == "0.00"
    missed_b = frame[(frame["session_id"] == "S3") & (frame["reference_lesion_id"] == "B")].iloc[0]
    assert missed_b["via"] == "registration transforms/P1_S2_to_S1.h5 + transforms/P1_S3_to_S1.h5"
    assert float(missed_b["registration_error_mm"]) == REGISTRATION_ERROR_MM["anatomy"] + REGISTRATION_ERROR_MM["pet"]
    # a figure given for real data replaces the per-basis error
    frame = run(tmp_path, findings, [lesion("A", 0.0, session="S1")], registration_error_mm=3.0)
    assert set(frame.loc[frame["session_id"] != "S1", "registration_error_mm"]) == {"3.00"}


def test_unmatched_findings_form_tracks_across_sessions(tmp_path):
    _store(tmp_path, "P1", "S2", "S1", (10.0, 0.0, 0.0))
    findings = [finding("L01", 60.0, session="S1"), finding("L02", -60.0, session="S1"),
                finding("L07", 51.0, session="S2"), finding("L08", 0.0, 100.0, session="S2"),
                finding("L01", 60.5, session="S1", reader="r2")]
    frame = run(tmp_path, findings, [lesion("A", 0.0, session="S1")])
    tracks = {(r["session_id"], r["reader"], r["lesion_id"]): r["track_id"] for r in frame.to_dict("records")
              if r["lesion_id"]}
    # S2's L07 at R 51 is R 61 in S1: 1 mm from S1's L01 -> same track; r2's L01 (same session) joins too
    assert tracks == {("S1", "r1", "L01"): "X01", ("S1", "r1", "L02"): "X02", ("S1", "r2", "L01"): "X01",
                      ("S2", "r1", "L07"): "X01", ("S2", "r1", "L08"): "X03"}


def test_confirmed_rows_are_kept_on_rerun(tmp_path):
    findings, lesions = [finding("L01", 2.0), finding("L02", 40.0)], [lesion("A", 0.0), lesion("B", 6.0)]
    first = run(tmp_path, findings, lesions)
    assert by_finding(first)["L01"]["status"] == "ambiguous"
    path = str(tmp_path / "correspondence.csv")
    write_correspondence(path, first)
    # the reader decides L01 is B, writes a note; and confirms L02 as a false positive
    edited = read_correspondence(path)
    edited.loc[edited["lesion_id"] == "L01", ["status", "reference_lesion_id", "note"]] = ["confirmed", "B", "seen: B"]
    edited.loc[edited["lesion_id"] == "L02", "status"] = "confirmed"
    write_correspondence(path, edited)
    again = run(tmp_path, findings, lesions, previous=path)
    rows = by_finding(again)
    assert (rows["L01"]["status"], rows["L01"]["reference_lesion_id"], rows["L01"]["note"]) == ("confirmed", "B",
                                                                                              "seen: B")
    assert rows["L01"]["track_id"] == "B" and rows["L01"]["distance_mm"] == "2.00"  # as written before
    assert (rows["L02"]["status"], rows["L02"]["reference_lesion_id"]) == ("confirmed", "")
    # B is taken by the confirmed row: A is missed, not given to anything
    assert missed(again) == ["A"] and summarise(again)["counts"]["confirmed"] == 2
    # a third run keeps them again (re-running is stable), and the file round-trips
    write_correspondence(path, again)
    assert read_correspondence(path).equals(run(tmp_path, findings, lesions, previous=path))


def test_bad_correspondence_file_is_refused(tmp_path):
    frame = run(tmp_path, [finding("L01", 0.0)], [lesion("A", 0.0)])
    path = str(tmp_path / "c.csv")
    write_correspondence(path, frame)
    edited = read_correspondence(path)
    edited.loc[0, "status"] = "maybe"
    write_correspondence(path, edited)
    with pytest.raises(CorrespondenceError, match=r"c\.csv row 2: column status is 'maybe'; write one of matched, "
                                                  r"ambiguous, confirmed, unmatched, missed\.$"):
        read_correspondence(path)
    edited.loc[0, ["status", "reference_lesion_id"]] = ["matched", ""]
    write_correspondence(path, edited)
    with pytest.raises(CorrespondenceError, match=r"row 2: a matched row needs both lesion_id and reference_lesion_id"):
        read_correspondence(path)
    pd.DataFrame({"patient_id": ["P1"]}).to_csv(path, index=False)
    with pytest.raises(CorrespondenceError, match=r"lacks the column\(s\) session_id, modality"):
        read_correspondence(path)
    edited.loc[0, "reference_lesion_id"] = "Q"
    edited.loc[0, "status"] = "confirmed"
    write_correspondence(path, edited)
    with pytest.raises(CorrespondenceError, match=r"row 2: column reference_lesion_id is Q, not a lesion of patient P1"):
        run(tmp_path, [finding("L01", 0.0)], [lesion("A", 0.0)], previous=path)


# -- the digital reference study --------------------------------------------------------------------

FIXED = "S1-DOTATATE-PETCT"
SESSIONS = (FIXED, "S2-DOTATATE-PETMR", "S3-FDG-PETCT")
PATIENT = "NETPET-001"  # registration is slow: the registered cases use one patient
JITTER_MM = 3.0
#: a false positive per read, this far (mm) from the read's first lesion, towards the patient's front
FALSE_POSITIVE_OFFSET_MM = (0.0, 30.0, 0.0)


def _truth(truth_lesions, patients=None):
    rows = [r for r in truth_lesions if r["session_id"] in SESSIONS and (patients is None or r["patient_id"] in patients)]
    assert rows, "the reference study has none of the sessions these tests read"
    return rows


def _centre(row):
    return np.array([float(row["center_r"]), float(row["center_a"]), float(row["center_s"])])


def _study_table(path, truth_rows, seed=13):
    """Findings at the truth centres jittered by JITTER_MM, ids L01.. in a shuffled (click) order per session;
    the last lesion of each read left out (a missed lesion) and a false positive added. Returns the table
    path and {(patient, session, finding id): true lesion id or ''}."""
    rng = np.random.default_rng(seed)
    reads = {}
    for row in truth_rows:
        reads.setdefault((row["patient_id"], row["session_id"]), []).append(row)
    rows, truth = [], {}
    for (patient, session), lesions in sorted(reads.items()):
        shown = lesions[:-1]
        order = rng.permutation(len(shown) + 1)
        for k, index in enumerate(order):
            fid = f"L{k + 1:02d}"
            if index < len(shown):
                row = shown[index]
                direction = rng.normal(size=3)
                centre = _centre(row) + JITTER_MM * direction / np.linalg.norm(direction)
                mtv, truth[(patient, session, fid)] = row["volume_ml"], row["lesion_id"]
            else:
                centre, mtv, truth[(patient, session, fid)] = _centre(lesions[0]) + FALSE_POSITIVE_OFFSET_MM, "", ""
            rows.append({"patient_id": patient, "session_id": session, "modality": lesions[0]["modality"],
                         "tracer": lesions[0]["tracer"], "reader": "r1", "lesion_id": fid, "region": "liver",
                         "call": "positive", "centroid_r": f"{centre[0]:.2f}", "centroid_a": f"{centre[1]:.2f}",
                         "centroid_s": f"{centre[2]:.2f}", "mtv_ml": mtv, "time_point": ""})
    return _write(path, TABLE_COLUMNS, rows), truth


def _reference(path, truth_rows, location_session=None):
    """The reference standard (one row per lesion), with its location in ``location_session`` if given."""
    rows = {}
    for row in truth_rows:
        key = (row["patient_id"], row["lesion_id"])
        entry = rows.setdefault(key, {"patient_id": key[0], "lesion_id": key[1], "region": row["region"],
                                      "truth": row["malignant"], "standard": row["standard"]})
        if row["session_id"] == location_session:
            entry.update({"location_session": location_session, "center_r": row["center_r"],
                          "center_a": row["center_a"], "center_s": row["center_s"], "diameter_mm": row["diameter_mm"]})
    return _write(path, REFERENCE_COLUMNS, list(rows.values()))


def _locations(path, truth_rows):
    return _write(path, ["patient_id", "lesion_id", "session_id", "center_r", "center_a", "center_s", "diameter_mm"],
                  truth_rows)


def _accuracy(frame, truth, label):
    """Fraction of findings assigned to their true lesion (a false positive: left unmatched)."""
    rows = [r for r in frame.to_dict("records") if r["lesion_id"]]
    right = [r for r in rows if r["reference_lesion_id"] == truth[(r["patient_id"], r["session_id"], r["lesion_id"])]]
    ambiguous = [r for r in rows if r["status"] == "ambiguous"]
    wrong_clear = [r for r in rows if r not in right and r["status"] != "ambiguous"]
    print(f"{label}: {len(right)}/{len(rows)} findings assigned to their true lesion "
          f"({100.0 * len(right) / len(rows):.1f} %), {len(ambiguous)} ambiguous; statuses "
          f"{summarise(frame)['counts']}")
    return len(right) / len(rows), ambiguous, wrong_clear


def test_reference_study_with_per_session_locations(tmp_path, truth_lesions):
    truth_rows = _truth(truth_lesions)
    table, truth = _study_table(tmp_path / "table.csv", truth_rows)
    frame = match_study(table, _reference(tmp_path / "reference.csv", truth_rows),
                        locations_path=_locations(tmp_path / "locations.csv", truth_rows))
    for (patient, session), group in pd.DataFrame(truth_rows).groupby(["patient_id", "session_id"]):
        centres = group[["center_r", "center_a", "center_s"]].astype(float).to_numpy()
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2) + np.eye(len(centres)) * 1e9
        print(f"{patient} {session}: {len(group)} lesions, closest two {gaps.min():.1f} mm apart")
    accuracy, ambiguous, wrong = _accuracy(frame, truth, "per-session locations")
    assert wrong == [] and accuracy >= 1.0 - len(ambiguous) / len(truth)
    assert set(frame.loc[frame["lesion_id"] != "", "via"]) <= {"location", ""}
    # every read: one false positive (unmatched) and its left-out lesion missed, no more
    counts = summarise(frame)["counts"]
    reads = len({(r["patient_id"], r["session_id"]) for r in truth_rows})
    assert counts["unmatched"] == reads and counts["missed"] == reads
    missed_rows = frame[frame["status"] == "missed"]
    for row in missed_rows.to_dict("records"):
        last = [r for r in truth_rows if (r["patient_id"], r["session_id"]) == (row["patient_id"], row["session_id"])][-1]
        assert row["reference_lesion_id"] == last["lesion_id"]
    # the tracks follow the true lesions across the three sessions: one track per reference lesion
    matched = frame[frame["status"].isin(["matched", "ambiguous"])]
    assert (matched["track_id"] == matched["reference_lesion_id"]).all()


@pytest.fixture(scope="module")
def registered_table(reference_study, truth_lesions, tmp_path_factory):
    """One patient's S2 and S3 registered to S1 and stored beside a study table: (folder, errors mm per session)."""
    out, summary = reference_study
    folder = tmp_path_factory.mktemp("registered")
    images = {}
    for session in SESSIONS:
        base = out / "dicom" / PATIENT / session
        anatomy = next(p for p in ("CT", "MR") if (base / p).is_dir())
        images[session] = read_session(sorted(glob.glob(str(base / "PET" / "*"))),
                                       sorted(glob.glob(str(base / anatomy / "*"))), label=session)
    rows = _truth(truth_lesions, {PATIENT})
    centres = {(r["session_id"], r["lesion_id"]): _centre(r) for r in rows}
    errors = {}
    for session in SESSIONS[1:]:
        result = register_and_store(images[FIXED], images[session], str(folder), PATIENT, FIXED, session, grid_mm=6.0)
        ids = [lid for (s, lid) in centres if s == session]
        mapped = corr.SessionLinks.apply([corr._Edge("", result, False)], [centres[(session, i)] for i in ids])
        errors[session] = (result.basis, np.linalg.norm(mapped - [centres[(FIXED, i)] for i in ids], axis=1))
        print(f"{PATIENT} {session} -> {FIXED} ({result.basis}): lesion centre error mean "
              f"{errors[session][1].mean():.2f} mm, max {errors[session][1].max():.2f} mm")
    return folder, errors


def test_registration_error_figure_covers_the_measured_errors(registered_table):
    """REGISTRATION_ERROR_MM (per basis) is at least every lesion-centre error measured here."""
    _folder, errors = registered_table
    for session, (basis, e) in errors.items():
        assert e.max() <= REGISTRATION_ERROR_MM[basis], (session, basis, e.max())


@pytest.mark.parametrize("location_session", [FIXED, "S2-DOTATATE-PETMR"])
def test_reference_study_with_one_location_and_registrations(registered_table, truth_lesions, location_session):
    """Each lesion's location in one session only; the others reached through the stored registrations
    (from S2: S1 through S2->S1 applied as stored, S3 through the chain S2 -> S1 -> S3)."""
    folder, _errors = registered_table
    truth_rows = _truth(truth_lesions, {PATIENT})
    table, truth = _study_table(folder / "table.csv", truth_rows)
    frame = match_study(table, _reference(folder / "reference.csv", truth_rows, location_session))
    accuracy, ambiguous, wrong = _accuracy(frame, truth, f"location in {location_session} + registrations")
    assert wrong == [] and accuracy >= 1.0 - len(ambiguous) / len(truth)
    vias = set(frame.loc[frame["status"] == "matched", "via"])
    if location_session == FIXED:
        assert vias == {"location", f"registration transforms/{PATIENT}_S2-DOTATATE-PETMR_to_{FIXED}.h5",
                        f"registration transforms/{PATIENT}_S3-FDG-PETCT_to_{FIXED}.h5"}
    else:
        assert f"registration transforms/{PATIENT}_S2-DOTATATE-PETMR_to_{FIXED}.h5 + transforms/{PATIENT}_S3-FDG-PETCT_to_{FIXED}.h5" in vias
    # the distance of a matched finding is its jitter plus the registration error: under 3 + 1 mm
    distances = frame.loc[frame["status"] == "matched", "distance_mm"].astype(float)
    assert distances.max() <= JITTER_MM + REGISTRATION_ERROR_MM["anatomy"]


def test_one_reader_rerun_keeps_the_other_readers_rows(tmp_path):
    findings = [finding("L01", 0.5), finding("L01", 0.5, reader="r2"), finding("L02", 70.0, reader="r2")]
    first = run(tmp_path, findings, [lesion("A", 0.0)])
    assert len(first) == 3
    path = str(tmp_path / "c.csv")
    write_correspondence(path, first)
    again = run(tmp_path, [finding("L01", 0.5), finding("L03", 0.5, reader="r2")], [lesion("A", 0.0)], reader="r1",
                previous=path)
    assert sorted(zip(again["reader"], again["lesion_id"], again["status"])) == [
        ("r1", "L01", "matched"), ("r2", "L01", "matched"), ("r2", "L02", "unmatched")]
    with pytest.raises(CorrespondenceError, match=r"has no row of reader r9"):
        run(tmp_path, findings, [lesion("A", 0.0)], reader="r9")
    # r1 re-run with a finding of its own far from the lesion (140 mm) and from r2's kept cluster X01 (70 mm):
    # its new cluster must not be called X01 too (stats joins unmatched findings by track id: two places, one lesion)
    kept = again.loc[again["lesion_id"] == "L02", "track_id"].iloc[0]
    third = run(tmp_path, [finding("L01", 0.5), finding("L05", 140.0)], [lesion("A", 0.0)], reader="r1",
                previous=path)
    new = third.loc[(third["reader"] == "r1") & (third["lesion_id"] == "L05")].iloc[0]
    assert kept == "X01" and new["status"] == "unmatched" and new["track_id"] not in ("", kept)


def test_sessions_are_ordered_by_days_then_labels():
    """The first session (netpet register's default reference, the hub of the tracks) is the earliest."""
    frame = pd.DataFrame([
        {"patient_id": "P1", "session_id": "SB", "modality": "PET/CT", "tracer": "fdg", "reader": "r1",
         "time_point": "FU1", "days_from_baseline": ""},
        {"patient_id": "P1", "session_id": "SC", "modality": "PET/CT", "tracer": "fdg", "reader": "r1",
         "time_point": "", "days_from_baseline": ""},
        {"patient_id": "P1", "session_id": "SA", "modality": "PET/MR", "tracer": "fdg", "reader": "r1",
         "time_point": "FU2", "days_from_baseline": ""}])
    assert corr._session_order(corr.table_reads(frame), "P1") == ["SC", "SB", "SA"]
    # days, when every session has them, decide (labels second); unknown labels come after the ranked ones
    frame["days_from_baseline"] = ["30", "0", "10"]
    assert corr._session_order(corr.table_reads(frame), "P1") == ["SC", "SA", "SB"]
    frame["days_from_baseline"] = ["", "", ""]
    frame["time_point"] = ["restaging", "FU1", "baseline"]
    assert corr._session_order(corr.table_reads(frame), "P1") == ["SA", "SC", "SB"]


def test_register_orders_sessions_by_days_as_match_does(tmp_path):
    """netpet register's default reference session is the earliest by days_from_baseline when every session has it
    (labels unranked here): the order netpet match uses for its tracks. It used the labels' order of appearance."""
    from netpet.match.study import table_sessions

    path = tmp_path / "t.csv"
    path.write_text("patient_id,session_id,modality,tracer,reader,lesion_id,call,series_uid,time_point,"
                    "days_from_baseline\nP1,SB,PET/CT,fdg,r1,,,u1,restaging,30\nP1,SA,PET/CT,fdg,r1,,,u2,work-up,0\n")
    uids, order = table_sessions(str(path))
    assert order == {"P1": ["SA", "SB"]} and uids == {("P1", "SB"): "u1", ("P1", "SA"): "u2"}


def test_a_damaged_volume_is_refused_and_a_click_for_a_place_is_said(tmp_path):
    """An mtv_ml that is not a volume used to become radius 0 silently (a narrower gate); a finding without
    centroid is placed at the reader's click, and its row now says so."""
    with pytest.raises(CorrespondenceError, match=r"line 2: column mtv_ml is 'n/a', not a volume in mL"):
        run(tmp_path, [finding("L01", 0.5, mtv="n/a")], [lesion("A", 0.0)])
    columns = TABLE_COLUMNS + ["seed_r", "seed_a", "seed_s"]
    row = {**finding("L01", "", a="", s=""), "seed_r": 1.0, "seed_a": 0.0, "seed_s": 0.0}
    table = _write(tmp_path / "seeds.csv", columns, [row])
    reference = _write(tmp_path / "ref.csv", REFERENCE_COLUMNS, [lesion("A", 0.0)])
    frame = match_study(table, reference)
    assert frame.iloc[0]["reference_lesion_id"] == "A" and "reader's click" in frame.iloc[0]["note"]
