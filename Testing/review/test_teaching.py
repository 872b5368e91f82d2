"""netpet.review.teaching on teaching cases written by the project's own generator.

``liver-threshold`` (about 5 s to write on 2 cores) is the session's (conftest.teach_case) and
``healing-fracture`` (about 11 s) is generated once per module. The trainee's marks are placed at the truth centres (truth/lesions.csv, RAS mm) with
deliberate errors; the expected counts below follow from the study's rules by hand.
"""

import os
import shutil

import pytest

from netpet.quant.table import StudyTable
from netpet.review.study import ReviewError
from netpet.review.teaching import format_feedback, open_case, score, trainee_table

S1 = "S1-DOTATATE-PETCT"
S3 = "S3-FDG-PETCT"
#: an 18 mm liver metastasis segmented as a sphere: 3.05 mL (truth/lesions.csv volume_ml), radius 9 mm
MTV_ML = 3.0


@pytest.fixture(scope="module")
def liver_case(teach_case):
    # the session's case (conftest.teach_case, shared with the CLI and browser tests: written once per run); these
    # tests write only under teaching/anna, which no other test uses
    return open_case(str(teach_case))


@pytest.fixture(scope="module")
def fracture_case(tmp_path_factory):
    from netpet.phantom import generate_case

    out = tmp_path_factory.mktemp("teach") / "healing-fracture"
    generate_case(str(out), "healing-fracture")
    return open_case(str(out))


def _at(case, lesion_id, session=S1, dr=0.0):
    r, a, s = case.lesion(lesion_id)["sessions"][session]["centre"]
    return [r + dr, a, s]


def _mark(case, mark, centre, reader_call, krenning=None, session=S1, **values):
    # as the review app writes a mark: the app's own session id (derived, not the case's), the PET series UID
    info = {s["session_id"]: s for s in case.sessions}[session]
    row = {"patient_id": case.patient_id, "session_id": "DOTATATE-PETCT-3F9A2C", "modality": info["modality"],
           "tracer": info["tracer"], "reader": "anna", "lesion_id": mark, "region": "liver", "call": "positive",
           "reader_call": reader_call, "centroid_r": centre[0], "centroid_a": centre[1], "centroid_s": centre[2],
           "mtv_ml": MTV_ML, "krenning": krenning, "series_uid": info["pet_series_uid"]}
    row.update(values)
    return row


def _liver_marks(case):
    return [
        _mark(case, "T01", _at(case, "L01"), "negative", 1),        # wrong call: malignant, T/L 0.6
        _mark(case, "T02", _at(case, "L02", dr=2.0), "positive", 3),  # 2 mm off; Krenning 3 where 2 is expected
        _mark(case, "T03", _at(case, "L03"), "positive", 3),
        _mark(case, "T04", _at(case, "L05"), "positive", 4, region="pancreas"),
        # L04 not marked (missed); two marks in plain liver, about 40 mm from the nearest lesion
        _mark(case, "T05", [60.0, -10.0, -600.0], "positive"),
        _mark(case, "T06", [100.0, 0.0, -640.0], "negative"),
    ]


def test_open_case(liver_case):
    case = liver_case
    assert (case.name, case.patient_id) == ("liver-threshold", "TEACH-LIVER-THRESHOLD")
    assert case.title == "Pancreatic-head NET with liver metastases below, at and above the liver reference"
    assert "liver-threshold classifier calls only lesions above the liver positive" in case.lesson
    assert case.locations == os.path.join(case.root, "reference_locations.csv")
    assert [s["session_id"] for s in case.sessions] == [S1]
    # the quiz holds the questions and no answer; CASE.md holds both
    assert "Which liver metastases does the liver-threshold rule miss" in case.quiz_markdown
    assert "## Answers" not in case.quiz_markdown and "L01 and L02" not in case.quiz_markdown
    assert "## Answers" in case.case_markdown
    # the expected reading of CASE.md's table: T/L 0.6, 1.0, 1.6, 3.5 and the primary; Krenning 1, 2, 3, 4, 4
    reading = [(l["lesion_id"], l["sessions"][S1]["krenning"], l["sessions"][S1]["call"], l["malignant"])
               for l in case.lesions]
    assert reading == [("L01", 1, "negative", True), ("L02", 2, "negative", True), ("L03", 3, "positive", True),
                       ("L04", 4, "positive", True), ("L05", 4, "positive", True)]
    assert [round(l["sessions"][S1]["tl_ratio"], 2) for l in case.lesions] == [0.6, 1.0, 1.6, 3.5, 3.97]
    assert case.lesion("L01")["sessions"][S1]["centre"] == [94.33, 29.79, -614.12]  # RAS (LPS x -1, -1, 1)
    assert case.lesion("L05")["diameter_mm"] == 19.31


def test_open_case_refusals(liver_case, tmp_path):
    with pytest.raises(ReviewError, match="is not a folder; write one with netpet phantom OUT --case NAME"):
        open_case(str(tmp_path / "missing"))
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("CASE.md", "QUIZ.md", "reference_standard.csv"):
        shutil.copy(os.path.join(liver_case.root, name), copy / name)
    with pytest.raises(ReviewError, match=r"lacks truth/truth.json; write the case again"):
        open_case(str(copy))
    shutil.copytree(os.path.join(liver_case.root, "truth"), copy / "truth",
                    ignore=shutil.ignore_patterns("TEACH-*"))
    os.remove(copy / "QUIZ.md")
    with pytest.raises(ReviewError, match="lacks QUIZ.md"):
        open_case(str(copy))
    shutil.copy(os.path.join(liver_case.root, "QUIZ.md"), copy / "QUIZ.md")
    assert open_case(str(copy)).name == "liver-threshold"  # no DICOM needed to score
    text = (copy / "truth" / "truth.json").read_text().replace('"case": "liver-threshold"', '"case": null')
    (copy / "truth" / "truth.json").write_text(text)
    with pytest.raises(ReviewError, match="is a reference study, not a teaching case"):
        open_case(str(copy))


def test_score_liver_threshold(liver_case):
    result = score(liver_case, _liver_marks(liver_case))
    # lesion level: TP L02, L03, L05; FN L01 (called negative) and L04 (missed); FP T05; TN T06 (a mark on no lesion
    # called negative is a benign unit called negative, as in the study)
    lesion = result["lesion"]
    assert (lesion["tp"], lesion["fp"], lesion["fn"], lesion["tn"], lesion["units"]) == (3, 1, 2, 1, 7)
    assert lesion["sensitivity"] == pytest.approx(3 / 5) and lesion["specificity"] == pytest.approx(1 / 2)
    assert lesion["ppv"] == pytest.approx(3 / 4) and lesion["npv"] == pytest.approx(1 / 3)
    # Wilson 95 % interval of 3/5 (netpet.stats.intervals, the study's default), written to 4 decimals: within
    # half a unit of the last one
    assert lesion["sensitivity_ci"] == pytest.approx([0.2307, 0.8824], abs=5e-5)
    # patient level (indication NET work-up): a malignant lesion called positive -> one true positive
    patient = result["patient"]
    assert (patient["tp"], patient["fp"], patient["fn"], patient["tn"]) == (1, 0, 0, 0)
    assert patient["sensitivity"] == 1.0 and patient["specificity"] is None
    assert result["by_session"][S1]["lesion"]["tp"] == 3
    assert result["sessions"] == [S1] and result["reader"] == "anna"
    assert [(m["mark"], m["lesion_id"], m["outcome"]) for m in result["matched"]] == [
        ("T01", "L01", "FN"), ("T02", "L02", "TP"), ("T03", "L03", "TP"), ("T04", "L05", "TP")]
    t02 = result["matched"][1]
    assert t02["distance_mm"] == pytest.approx(2.0) and t02["gate_mm"] == pytest.approx(9.0)  # 18 mm / 2
    assert [(m["lesion_id"], m["session_id"], m["outcome"]) for m in result["missed"]] == [("L04", S1, "FN")]
    assert [(e["mark"], e["call"], e["outcome"]) for e in result["extra"]] == [("T05", "positive", "FP"),
                                                                               ("T06", "negative", "TN")]
    assert "nearest reference lesion L03 at 41.8 mm, beyond its gate" in result["extra"][0]["note"]
    assert result["krenning_agreement"] == {"compared": 4, "agreed": 3, "fraction": 0.75, "disagreements": [
        {"mark": "T02", "lesion_id": "L02", "krenning": 3, "expected_krenning": 2}]}
    feedback = "\n".join(result["feedback"])
    assert result["feedback"][0] == ("Lesions: 3 true positive, 1 false positive, 2 false negative, "
                                     "1 true negative.")
    assert ("L01 (liver metastasis, liver, malignant, 18 mm) on S1-DOTATATE-PETCT: marked as T01 (0.0 mm from its "
            "centre) and called negative: a false negative; Krenning 1, as expected.") in feedback
    assert "Krenning 3, expected 2 (T/L 1.00 against the liver 6.8 and spleen 18.5)" in feedback
    assert "L04 (liver metastasis, liver, malignant, 18 mm) on S1-DOTATATE-PETCT: not marked: a false negative." \
        in feedback
    assert "Mark T05 on S1-DOTATATE-PETCT lies on no truth lesion" in feedback
    assert result["lesson"] == liver_case.lesson
    answers = result["answers_markdown"]
    assert answers.startswith("## Questions") and "## Answers" in answers and "## Findings (truth)" in answers
    assert "## Sessions" not in answers
    import json

    json.dumps(result)  # JSON-able as the page and --json need it


def test_match_tolerance(liver_case):
    """A mark 2 mm from a lesion's centre is on it; 40 mm off is not (the gate of an 18 mm lesion is 9 mm)."""
    near = score(liver_case, [_mark(liver_case, "T01", _at(liver_case, "L03", dr=2.0), "positive")])
    assert [(m["mark"], m["lesion_id"]) for m in near["matched"]] == [("T01", "L03")]
    assert (near["lesion"]["tp"], near["lesion"]["fn"], near["lesion"]["fp"]) == (1, 4, 0)
    far = score(liver_case, [_mark(liver_case, "T01", _at(liver_case, "L03", dr=40.0), "positive")])
    assert far["matched"] == [] and [e["mark"] for e in far["extra"]] == ["T01"]
    assert (far["lesion"]["tp"], far["lesion"]["fn"], far["lesion"]["fp"]) == (0, 5, 1)
    # the edge of the gate: 8.9 mm in, 9.1 mm out (no volume given: the lesion's radius is the gate)
    inner = score(liver_case, [_mark(liver_case, "T01", _at(liver_case, "L03", dr=8.9), "positive", mtv_ml="")])
    outer = score(liver_case, [_mark(liver_case, "T01", _at(liver_case, "L03", dr=9.1), "positive", mtv_ml="")])
    assert len(inner["matched"]) == 1 and len(outer["matched"]) == 0


def test_score_from_the_trainee_table_and_retracted_marks(liver_case):
    path = trainee_table(liver_case, "anna")
    assert path == os.path.join(liver_case.root, "teaching", "anna", "study-table.csv")
    os.makedirs(os.path.dirname(path))
    table = StudyTable(path)
    marks = _liver_marks(liver_case)
    # a mark on L04 that the trainee withdrew is no mark: L04 stays missed
    marks.append(_mark(liver_case, "T07", _at(liver_case, "L04"), "positive", 4))
    table.upsert(marks)
    table.retract({k: marks[-1][k] for k in ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id")},
                  reason="misclick")
    result = score(liver_case, path)
    assert (result["lesion"]["tp"], result["lesion"]["fp"], result["lesion"]["fn"], result["lesion"]["tn"]) == \
        (3, 1, 2, 1)
    assert result["retracted"] == ["T07"]
    assert [m["lesion_id"] for m in result["missed"]] == ["L04"]
    with pytest.raises(ReviewError, match="cannot name a folder"):
        trainee_table(liver_case, "../anna")


def test_suv_rule_reproduces_the_case_answer(liver_case):
    """Marks on all five lesions, called by the liver-threshold rule (``call``): the errors CASE.md names."""
    marks = [_mark(liver_case, f"T{i:02d}", _at(liver_case, l["lesion_id"]), "", call=l["sessions"][S1]["call"])
             for i, l in enumerate(liver_case.lesions, 1)]
    result = score(liver_case, marks, call_source="suv")
    assert {m["lesion_id"]: m["outcome"] for m in result["matched"]} == {
        "L01": "FN", "L02": "FN", "L03": "TP", "L04": "TP", "L05": "TP"}
    assert (result["lesion"]["tp"], result["lesion"]["fn"]) == (3, 2)
    with pytest.raises(ReviewError, match=r"Mark\(s\) T01, T02, T03, T04, T05 have no call; record a call"):
        score(liver_case, marks)  # the trainee's own calls were not recorded
    # equivocal counted positive (the study's sensitivity analysis)
    marks[1]["reader_call"] = "equivocal"
    for m in marks[:1] + marks[2:]:
        m["reader_call"] = m["call"]
    assert score(liver_case, marks)["lesion"]["tp"] == 3
    assert score(liver_case, marks, equivocal="positive")["lesion"]["tp"] == 4


def test_no_marks_and_refusals(liver_case):
    empty = score(liver_case, [])
    assert empty["sessions"] == [S1] and empty["matched"] == [] and len(empty["missed"]) == 5
    assert (empty["lesion"]["tp"], empty["lesion"]["fn"], empty["patient"]["fn"]) == (0, 5, 1)
    assert empty["lesion"]["sensitivity"] == 0.0
    other = _mark(liver_case, "T01", _at(liver_case, "L01"), "positive", patient_id="NETPET-001")
    with pytest.raises(ReviewError, match="is of patient NETPET-001, not of the case's patient TEACH-LIVER-THRESHOLD"):
        score(liver_case, [other])
    stray = _mark(liver_case, "T01", _at(liver_case, "L01"), "positive", series_uid="", modality="PET/MR")
    with pytest.raises(ReviewError, match="is none of the case's sessions"):
        score(liver_case, [stray])
    with pytest.raises(ReviewError, match="Unknown call source"):
        score(liver_case, [], call_source="visual")
    with pytest.raises(ReviewError, match="not a session of the case"):
        score(liver_case, [], sessions=["S9"])
    two = [_mark(liver_case, "T01", _at(liver_case, "L01"), "positive"),
           _mark(liver_case, "T02", _at(liver_case, "L02"), "positive", reader="ben")]
    with pytest.raises(ReviewError, match="several readers"):
        score(liver_case, two)
    assert score(liver_case, two, reader="ben")["matched"][0]["lesion_id"] == "L02"


def test_benign_trap_and_a_session_read_without_marks(fracture_case):
    case = fracture_case
    assert [(l["lesion_id"], l["kind"], l["malignant"]) for l in case.lesions] == [
        ("L01", "liver metastasis", True), ("L02", "healing rib fracture", False),
        ("L03", "reactive inflammatory node", False)]
    marks = [_mark(case, "T01", _at(case, "L01"), "positive", 4),
             _mark(case, "T02", _at(case, "L02", dr=-3.0), "positive", 2, region="bone")]  # the trap, 3 mm off
    result = score(case, marks, sessions=[S1, S3])  # the FDG scan was read too, and nothing marked on it
    assert [(m["mark"], m["lesion_id"], m["outcome"]) for m in result["matched"]] == [("T01", "L01", "TP"),
                                                                                   ("T02", "L02", "FP")]
    assert [(m["lesion_id"], m["session_id"], m["outcome"]) for m in result["missed"]] == [
        ("L03", S1, "TN"), ("L01", S3, "FN"), ("L02", S3, "TN"), ("L03", S3, "TN")]
    assert {s: (c["lesion"]["tp"], c["lesion"]["fp"], c["lesion"]["fn"], c["lesion"]["tn"])
            for s, c in result["by_session"].items()} == {S1: (1, 1, 0, 1), S3: (0, 0, 1, 2)}
    lesion = result["lesion"]
    assert (lesion["tp"], lesion["fp"], lesion["fn"], lesion["tn"]) == (1, 1, 1, 3)
    assert lesion["sensitivity"] == pytest.approx(1 / 2) and lesion["specificity"] == pytest.approx(3 / 4)
    # patient level per session: DOTATATE finds the metastasis (TP), the unmarked FDG scan does not (FN)
    assert (result["patient"]["tp"], result["patient"]["fn"]) == (1, 1)
    feedback = "\n".join(result["feedback"])
    assert ("L02 (healing rib fracture, lateral rib, benign, 14 mm) on S1-DOTATATE-PETCT: marked as T02 (3.0 mm from "
            "its centre) and called positive: a false positive (a benign look-alike: healing rib fracture)") in feedback
    assert "L03 (reactive inflammatory node, inguinal node, benign, 13 mm) on S3-FDG-PETCT: not marked: rightly left " \
        "alone (a true negative)." in feedback
    # the expected Krenning score exists on 68Ga-DOTATATE only
    assert result["krenning_agreement"]["compared"] == 2


def test_format_feedback(liver_case):
    text = format_feedback(score(liver_case, _liver_marks(liver_case)))
    lines = text.splitlines()
    assert lines[0] == ("Teaching case liver-threshold: Pancreatic-head NET with liver metastases below, at and above "
                        "the liver reference")
    assert "Lesion level: TP 3  FP 1  FN 2  TN 1  sensitivity 60 %  specificity 50 %" in lines
    assert "Patient level: TP 1  FP 0  FN 0  TN 0  sensitivity 100 %  specificity n/a" in lines
    assert "Krenning score as expected on 3 of 4 marked lesions." in lines
    assert "Lesson:" in lines and liver_case.lesson in lines
    assert "## Answers" in lines
    assert sum(line.startswith("- L0") or line.startswith("- Mark") for line in lines) == 7


def test_two_marks_on_one_lesion_count_once(liver_case):
    """The second mark on L03 is not a second true positive: the assignment gives L03 one mark, the other is a
    finding on no lesion (a false positive when called positive), as netpet match and netpet stats count it."""
    marks = [_mark(liver_case, "T01", _at(liver_case, "L03"), "positive", segmentation_file="segmentations/a.seg.nrrd"),
             _mark(liver_case, "T02", _at(liver_case, "L03", dr=1.0), "positive",
                   segmentation_file="segmentations/a.seg.nrrd")]
    result = score(liver_case, marks)
    assert (result["lesion"]["tp"], result["lesion"]["fp"], result["lesion"]["fn"], result["lesion"]["units"]) == \
        (1, 1, 4, 6)
    assert [(m["mark"], m["lesion_id"], m["status"]) for m in result["matched"]] == [("T01", "L03", "ambiguous")]
    assert [(e["mark"], e["outcome"]) for e in result["extra"]] == [("T02", "FP")]
    assert "assigned to finding T01" in result["extra"][0]["note"]
    # the rival's segmentation is looked for where the review app writes it (the trainee's folder), and no
    # scratch file of the scoring is named to the trainee
    warnings = "\n".join(result["warnings"])
    assert os.path.join(liver_case.root, "teaching", "anna", "segmentations", "a.seg.nrrd") in warnings
    assert "netpet-teach-" not in warnings
    # called negative, the second mark is a true negative (a benign unit called negative): still no double count
    marks[1]["reader_call"] = "negative"
    again = score(liver_case, marks)["lesion"]
    assert (again["tp"], again["fp"], again["tn"]) == (1, 0, 1)


def test_equivocal_mark_on_no_lesion(liver_case):
    """An equivocal mark in plain liver: a true negative under the study's default rule, a false positive when
    equivocal counts as positive."""
    mark = [_mark(liver_case, "T01", [60.0, -10.0, -600.0], "equivocal")]
    default, strict = score(liver_case, mark)["lesion"], score(liver_case, mark, equivocal="positive")["lesion"]
    assert (default["fp"], default["tn"], default["fn"]) == (0, 1, 5)
    assert (strict["fp"], strict["tn"], strict["fn"]) == (1, 0, 5)


def test_marks_that_would_be_scored_silently_wrong_are_refused(liver_case, fracture_case):
    mark = _mark(liver_case, "T01", _at(liver_case, "L03"), "positive")
    # a misspelt reader is not "a trainee who found nothing" (0 of 5)
    with pytest.raises(ReviewError, match=r"hold no row of reader 'Anna' \(readers: anna\); give one of them"):
        score(liver_case, [mark], reader="Anna")
    # a PET series the case does not have: another patient's or study's images of the same modality and tracer
    with pytest.raises(ReviewError, match=r"row 1 \(mark T01\) is on the PET series 9.9, which is none of the case's"):
        score(liver_case, [dict(mark, series_uid="9.9")])
    # one mark id twice on a session: the study table would keep the later row only
    with pytest.raises(ReviewError, match="Mark T01 is given 2 times on session S1-DOTATATE-PETCT"):
        score(liver_case, [mark, _mark(liver_case, "T01", _at(liver_case, "L04"), "positive")])
    # a mark on a session left out of the score is not dropped
    case = fracture_case
    both = [_mark(case, "T01", _at(case, "L01"), "positive"),
            _mark(case, "T02", _at(case, "L01", session=S3), "positive", session=S3)]
    with pytest.raises(ReviewError, match=f"Mark T02 is on session {S3}, which is not among the sessions scored"):
        score(case, both, sessions=[S1])
    assert score(case, both)["by_session"][S3]["lesion"]["tp"] == 1
    # the study's errors name the trainee's mark, not the scoring's scratch table
    placeless = _mark(liver_case, "T02", ["", "", ""], "positive", mtv_ml="")
    with pytest.raises(ReviewError) as raised:
        score(liver_case, [mark, placeless])
    assert "the mark T02 on S1-DOTATATE-PETCT: finding T02 has no centroid" in str(raised.value)
    assert "netpet-teach-" not in str(raised.value)
    # two sessions of one modality and tracer cannot be told apart by the study's groups
    twin = dict(liver_case.sessions[0], session_id="S9-DOTATATE-PETCT", pet_series_uid="")
    from dataclasses import replace

    with pytest.raises(ReviewError, match="are both PET/CT dotatate; score them one at a time"):
        score(replace(liver_case, sessions=liver_case.sessions + [twin]), [], sessions=[S1, "S9-DOTATATE-PETCT"])


def test_empty_trainee_table_file(liver_case, tmp_path):
    """A table with its header only (the app's before the first mark) scores as nothing found: 5 false negatives."""
    path = tmp_path / "study-table.csv"
    path.write_text("patient_id,session_id,modality,tracer,reader,lesion_id\n")
    result = score(liver_case, str(path))
    assert (result["lesion"]["fn"], result["lesion"]["tp"], result["patient"]["fn"]) == (5, 0, 1)
    assert result["reader"] == "trainee" and result["sessions"] == [S1]
