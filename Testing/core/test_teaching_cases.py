"""Teaching cases (issue 15, item 2): titles that say what each case is, CASE.md with learning objectives,
questions and answers derived from the truth, QUIZ.md without answers, quiz previews without truth
contours, and patient ids in their own namespace (never a study's).

Two cases are rendered fully (one PET/CT + PET/MR, one DOTATATE + FDG); the text of every case is
checked through the functions that write CASE.md and QUIZ.md, without rendering.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from netpet.cli.main import main
from netpet.phantom import generate_case
from netpet.phantom.cases import (
    CASE_ID_PREFIX, CASES, case_markdown, case_names, case_patient, case_patient_id, quiz_markdown, reading_rows,
)
from netpet.phantom.study import StudyParameters, study_patients

RENDERED = ("uncinate-pitfall", "healing-fracture")
RED, LIME = (255, 0, 0), (0, 255, 0)


def _listed_cases(capsys):
    assert main(["phantom", "--list-cases"]) == 0
    return [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]


def _demo_like_ids():
    """Patient ids of studies as netpet phantom and the demo write them (every option, up to 60 patients)."""
    ids = set()
    for seed in (1, 8, 2026):
        for options in ({}, {"distant_sites": True, "follow_up": True, "reading_design": True}):
            parameters = StudyParameters(60, seed, ("dotatate", "fdg"), ("petct", "petmr"), False, **options)
            ids |= {p.patient_id for p in study_patients(parameters)}
    return ids


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("teaching-cases")
    for name in RENDERED:
        assert main(["phantom", str(root / name), "--case", name, "--preview"]) == 0
    return root


def test_every_listed_case_has_its_own_title_and_text(capsys):
    names = _listed_cases(capsys)
    assert names == list(case_names()) and len(names) == 6
    titles = [CASES[n].title for n in names]
    assert len(set(titles)) == len(titles)
    for name in names:
        case, patient = CASES[name], case_patient(name)
        assert "work-up without tumour" not in case.title and "malignant" not in case.title
        assert patient.description == case.title
        text, quiz = case_markdown(name, patient), quiz_markdown(name, patient)
        assert text.startswith(f"# {case.title}\n")
        # objectives (2-4 bullets), then questions, then answers, as many answers as questions
        sections = re.split(r"^## ", text, flags=re.M)
        by_head = {s.split("\n", 1)[0]: s for s in sections[1:]}
        objectives = [l for l in by_head["Learning objectives"].splitlines() if l.startswith("- ")]
        assert 2 <= len(objectives) <= 4
        assert text.index("## Questions") < text.index("## Answers") < text.index("## Findings (truth)")
        questions = re.findall(r"^\d+\. ", by_head["Questions"], flags=re.M)
        answers = re.findall(r"^\d+\. ", by_head["Answers"].split("###")[0], flags=re.M)
        assert len(questions) == len(answers) >= 2
        assert "Facts used" in text and ("design notes, section 5" in text)
        # QUIZ.md: the questions, no answer, no truth table, nothing of the teacher's title or lesson
        assert "## Questions" in quiz and "## Learning objectives" in quiz
        for forbidden in ("Answers", "truth)", "| lesion |", "T/L ", case.lesson[:40], case.title):
            assert forbidden not in quiz, (name, forbidden)
        asked = quiz.split("## Questions")[1]
        for forbidden in ("true positive", "false positive", "false negative", "Tumour:", "Benign:"):
            assert forbidden not in asked, (name, forbidden)
        for _, answer in CASES[name].questions:
            assert answer not in quiz
        assert "| session | lesion |" not in quiz and "Expected reading" not in quiz


def test_answers_agree_with_the_truth():
    for name in case_names():
        patient = case_patient(name)
        text = case_markdown(name, patient)
        answers = text.split("## Answers")[1].split("## Findings")[0]
        by_id = {lesion.lesion_id: lesion for lesion in patient.lesions}
        # every lesion an answer names exists; the ones the case's own answer calls benign are benign in the truth
        for _, answer in CASES[name].questions:
            for lesion_id in re.findall(r"\bL\d\d\b", answer):
                assert lesion_id in by_id, (name, lesion_id)
        for row in reading_rows(patient):
            lesion = by_id[row["lesion_id"]]
            assert row["malignant"] == lesion.malignant
            assert (row["call"] == "positive") == (row["suv_max"] > row["liver"])
            if row["outcome"] in ("false positive", "false negative"):
                assert f"{row['lesion_id']} on {row['session_id']}: {row['outcome']}" in answers
    # the cases' lessons, recomputed from the truth
    liver = {r["lesion_id"]: r for r in reading_rows(case_patient("liver-threshold"))}
    assert [liver[i]["krenning"] for i in ("L01", "L02", "L03", "L04")] == [1, 2, 3, 4]
    assert [liver[i]["outcome"] for i in ("L01", "L02")] == ["false negative"] * 2
    uncinate = [r for r in reading_rows(case_patient("uncinate-pitfall")) if r["lesion_id"] == "L03"]
    assert uncinate and all(r["outcome"] == "false positive" and r["krenning"] == 3 for r in uncinate)
    bone = {(r["session_id"][:2], r["lesion_id"]): r["suv_max"] for r in reading_rows(case_patient("bone-petmr-vs-petct"))}
    # PET/MR (Dixon attenuation correction ignores bone) reads bone lesions 10-30 % lower than PET/CT (NETPET
    # design notes, section 5): at least the smallest documented deficit
    assert all(bone[("S2", l)] < 0.9 * bone[("S1", l)] for l in ("L02", "L03", "L04"))
    assert bone[("S2", "L01")] == bone[("S1", "L01")]
    assert "None: the truth has no lesion" in case_markdown("lesion-free", case_patient("lesion-free"))


def test_case_patient_ids_never_a_study_id():
    study_ids = _demo_like_ids()
    assert all(i.startswith("NETPET-") for i in study_ids)
    ids = [case_patient(n).patient_id for n in case_names()]
    assert len(set(ids)) == len(ids)
    for name, patient_id in zip(case_names(), ids):
        assert patient_id == case_patient_id(name) == CASE_ID_PREFIX + name.upper()
        assert patient_id not in study_ids and len(patient_id) <= 64  # DICOM LO


def test_unknown_case_is_one_clear_sentence(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"^no teaching case 'nothing'; the cases are: uncinate-pitfall, "):
        case_patient("nothing")
    with pytest.raises(ValueError, match="no teaching case"):
        generate_case(str(tmp_path / "x"), "nothing")
    assert main(["phantom", str(tmp_path / "y"), "--case", "nothing"]) == 2
    assert "no teaching case 'nothing'" in capsys.readouterr().err


def _colour_pixels(path):
    import matplotlib.image

    image = (matplotlib.image.imread(path)[..., :3] * 255).round().astype(int)
    # red: the exact contour colour (the hot PET colour map blends red-like shades); green-dominant: the benign
    # contour, antialiased (no colour map of the previews has green above red)
    red = int(np.all(image == RED, axis=-1).sum())
    lime = int(((image[..., 1] > 150) & (image[..., 0] < 100) & (image[..., 2] < 100)).sum())
    return {RED: red, LIME: lime}


def test_rendered_cases(rendered):
    study_ids = _demo_like_ids()
    for name in RENDERED:
        out = rendered / name
        patient = case_patient(name)
        case = CASES[name]
        assert (out / "CASE.md").read_text() == case_markdown(name, patient)
        assert (out / "QUIZ.md").read_text() == quiz_markdown(name, patient)
        readme = (out / "README.txt").read_text()
        assert f"{patient.patient_id}: {case.title} (" in readme and "work-up without tumour" not in readme
        truth = json.loads((out / "truth" / "truth.json").read_text())
        assert truth["parameters"]["case"] == name
        assert [p["patient_id"] for p in truth["patients"]] == [patient.patient_id]
        assert truth["patients"][0]["description"] == case.title
        # quiz previews: the same sessions, with no truth-contour colour where the annotated ones have it
        annotated = sorted(os.listdir(out / "preview"))
        quiz = sorted(os.listdir(out / "preview" / "quiz"))
        assert quiz == [f for f in annotated if f.endswith(".png")] and len(quiz) == len(patient.sessions)
        benign = any(not lesion.malignant for lesion in patient.lesions)
        for png in quiz:
            marked, plain = _colour_pixels(out / "preview" / png), _colour_pixels(out / "preview" / "quiz" / png)
            assert marked[RED] > 0 and plain[RED] == 0 and plain[LIME] == 0, (name, png, marked, plain)
            if benign and "FDG" not in png:
                assert marked[LIME] > 0
        # DICOM: the case's own patient, never a study's
        files = [os.path.join(f, n) for f, _, names in os.walk(out / "dicom") for n in names]
        seen = set()
        for path in files[::50]:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert ds.PatientID == patient.patient_id and ds.PatientID not in study_ids
            assert str(ds.PatientName) == f"Synthetic^{patient.patient_id}"
            seen.add(ds.StudyInstanceUID)
        assert os.listdir(out / "dicom") == [patient.patient_id]
    uids = [{pydicom.dcmread(os.path.join(f, n), stop_before_pixels=True).StudyInstanceUID
             for f, _, names in os.walk(rendered / name / "dicom") for n in names[:1]} for name in RENDERED]
    assert not uids[0] & uids[1]


def test_rendered_dicom_valid_by_dciodvfy(rendered):
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: install the Debian package dicom3tools (python3 quickstart.py test does)")
    files = [os.path.join(f, n) for name in RENDERED for f, _, names in os.walk(rendered / name / "dicom")
             for n in sorted(names)[:3]]
    assert len(files) >= 12
    for path in files:
        report = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
        text = report.stdout + report.stderr
        assert "Error" not in text and "Warning" not in text, (path, text[:500])
