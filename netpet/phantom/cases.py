"""Teaching cases: single synthetic patients that each show one lesson of NET/TIO imaging.

Each case is a patient of the digital reference study with hand-placed findings and a short
description (written as ``CASE.md`` beside the data). ``netpet phantom OUT --case NAME``
writes one; ``netpet phantom --list-cases`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Tuple

import numpy as np

from netpet.phantom.patients import (
    FOLLOW_UP, HISTOPATHOLOGY, LIMB_SITES, Lesion, Patient, describe, look_alikes, make_patient, tio_lesion,
    with_sessions,
)

CASE_SEED = 2026


#: teaching-case patients live in their own id namespace (``TEACH-<CASE-NAME>``): a study's patients
#: are ``NETPET-001`` ..., so a case and a study loaded into one DICOM database never share a patient
CASE_ID_PREFIX = "TEACH-"

#: the facts the answers rest on (NETPET design notes, section 5, and the study protocol)
KRENNING_FACT = ("Krenning score (uptake against liver and spleen): 0 none, 1 lower than liver, 2 equal to liver, "
                 "3 above liver, 4 above spleen/kidneys (NETPET design notes, section 5, domain facts)")
LIVER_RULE_FACT = ("study protocol: \"The lesion intake is higher than the liver and is classified as clearly "
                   "positive\"; \"Special attention should be paid to the analysis of the causes of false positives "
                   "and false negative results\" (reference/study-protocol.txt)")
PHYSIOLOGY_FACT = ("DOTATATE physiology, pitfalls for false positives: spleen > kidneys/adrenals > liver, pituitary, "
                   "uncinate process of the pancreas, urinary tract; FDG: brain, heart, urinary tract (NETPET design "
                   "notes, section 5)")
PETMR_FACT = ("PET/MR attenuation correction (Dixon) ignores bone: bone-lesion SUV on PET/MR reads about 10-30 % lower "
              "than on PET/CT; the liver reference is measured per scan, never shared across modalities; matters for "
              "TIO, whose culprits often sit in bone (NETPET design notes, section 5)")


@dataclass(frozen=True)
class Case:
    name: str
    #: what the case is (the teacher's title: CASE.md, README.txt, truth.json, the annotated previews)
    title: str
    lesson: str
    build: Callable[[], Patient]
    #: the clinical question without the answer (QUIZ.md)
    presentation: str = ""
    objectives: Tuple[str, ...] = ()
    #: case-specific questions and their answers (the answers cite the facts they use)
    questions: Tuple[Tuple[str, str], ...] = ()
    facts: Tuple[str, ...] = ()


def _finish(patient: Patient, lesions: List[Lesion], tracers, modalities, fdg: bool) -> Patient:
    for number, lesion in enumerate(lesions):
        lesion.lesion_id = f"L{number + 1:02d}"
        lesion.center = patient.body.p(*lesion.center, organ=lesion.site not in LIMB_SITES)
    patient = replace(patient, lesions=lesions)
    patient = with_sessions(patient, CASE_SEED, tracers, modalities, fdg)
    patient.description = describe(patient)
    return patient


def _uncinate() -> Patient:
    patient = make_patient(CASE_SEED, 0, kind="none")
    rng = np.random.default_rng(1)
    lesions = [
        Lesion("", "NET primary", "small bowel", "terminal ileum", (-78, -12, -803), (7.5, 7.0, 8.0), True,
               HISTOPATHOLOGY, {"dotatate": 21.0, "fdg": 2.0}, hu=45.0, t1_ms=1100.0),
        Lesion("", "lymph node metastasis", "lymph nodes", "mesenteric node", (10, -28, -742), (9.0, 8.5, 9.5), True,
               FOLLOW_UP, {"dotatate": 17.0, "fdg": 1.4}, hu=40.0, t1_ms=1100.0),
    ] + look_alikes(rng, ["uncinate"])
    lesions[-1].suv["dotatate"] = 13.0
    return _finish(patient, lesions, ("dotatate",), ("petct", "petmr"), False)


def _tio_foot() -> Patient:
    patient = make_patient(CASE_SEED, 1, kind="TIO")
    culprit = tio_lesion(np.random.default_rng(2), in_bone=False, site="right foot sole", fdg_negative=True)
    culprit.suv["dotatate"] = 9.5
    culprit.radii = (7.0, 9.0, 6.5)
    return _finish(patient, [culprit], ("dotatate", "fdg"), ("petct",), True)


def _bone_petmr() -> Patient:
    patient = make_patient(CASE_SEED, 2, kind="none")
    sites = [("L1 vertebral body", (0, 57, -640), 11.0, 0.22), ("left iliac bone", (95, 25, -805), 12.0, 0.18),
             ("sternum", (0, -104, -450), 5.5, 0.12)]
    lesions = [Lesion("", "NET primary", "pancreas", "pancreatic tail", (72, 18, -645), (11.0, 10.0, 12.0), True,
                      HISTOPATHOLOGY, {"dotatate": 30.0, "fdg": 3.0}, hu=45.0, t1_ms=1100.0)]
    for site, center, radius, bias in sites:
        lesions.append(Lesion("", "bone metastasis", "bone", site, center, (radius, radius, radius), True, FOLLOW_UP,
                              {"dotatate": 24.0, "fdg": 2.0}, in_bone=True, hu=700.0, t1_ms=1200.0, petmr_bias=bias))
    return _finish(patient, lesions, ("dotatate",), ("petct", "petmr"), False)


def _liver_threshold() -> Patient:
    patient = make_patient(CASE_SEED, 3, kind="none")
    ratios = [0.6, 1.0, 1.6, 3.5]  # below, equal to, above the liver (6.8), and above the spleen (18.5)
    centers = [(-95, -30, -600), (-40, 20, -640), (-90, 35, -570), (-55, -20, -660)]
    lesions = [Lesion("", "liver metastasis", "liver", "liver", c, (9.0, 9.0, 9.0), True, FOLLOW_UP,
                      {"dotatate": round(6.8 * r, 2), "fdg": 2.5}, hu=38.0, t1_ms=1150.0)
               for c, r in zip(centers, ratios)]
    lesions.append(Lesion("", "NET primary", "pancreas", "pancreatic head", (-30, -5, -672), (10.0, 9.0, 10.0), True,
                          HISTOPATHOLOGY, {"dotatate": 27.0, "fdg": 2.0}, hu=45.0, t1_ms=1100.0))
    return _finish(patient, lesions, ("dotatate",), ("petct",), False)


def _lesion_free() -> Patient:
    patient = make_patient(CASE_SEED, 4, kind="none")
    return _finish(patient, [], ("dotatate", "fdg"), ("petct", "petmr"), True)


def _fracture() -> Patient:
    patient = make_patient(CASE_SEED, 5, kind="none")
    rng = np.random.default_rng(3)
    lesions = [Lesion("", "liver metastasis", "liver", "liver", (-40, -15, -632), (8.0, 8.0, 8.0), True, FOLLOW_UP,
                      {"dotatate": 19.0, "fdg": 2.6}, hu=38.0, t1_ms=1150.0)] + look_alikes(rng, ["fracture", "inflammation"])
    return _finish(patient, lesions, ("dotatate", "fdg"), ("petct",), True)


CASES: Dict[str, Case] = {case.name: case for case in (
    Case("uncinate-pitfall", "Small-bowel NET with a mesenteric node and a physiological uncinate focus",
         "A small-bowel NET with a mesenteric node metastasis, and intense but physiological SSTR uptake in the "
         "uncinate process of the pancreas (SUV about 13, above the liver). The uncinate focus is benign "
         "(lesion marked benign in the truth): reading it as a pancreatic NET is a classic false positive. "
         "Clues: typical site in the pancreatic head, no CT/MR correlate, shape of the uncinate process.", _uncinate,
         presentation="Known small-bowel NET: staging with 68Ga-DOTATATE PET/CT and PET/MR.",
         objectives=("Recognise physiological SSTR uptake of the uncinate process of the pancreas.",
                     "Tell a small-bowel primary and its mesenteric node from physiological foci.",
                     "Know that uptake above the liver alone does not make a focus malignant."),
         questions=(("Is there a second primary in the pancreas?",
                     "No. L03, the focus in the uncinate process, is physiological SSTR uptake (benign in the truth): "
                     "the uncinate process is a known site of physiological DOTATATE uptake with no CT/MR correlate. "
                     "Its SUV (13) is above the liver, so the liver-threshold rule calls it positive: a false "
                     "positive."),),
         facts=(PHYSIOLOGY_FACT, KRENNING_FACT, LIVER_RULE_FACT)),
    Case("tio-foot-fdg-negative", "Tumour-induced osteomalacia: DOTATATE-avid culprit in the sole of the foot, "
         "missed on FDG",
         "A phosphaturic mesenchymal tumour in the soft tissue of the right sole, avid on 68Ga-DOTATATE (SUV 9.5) "
         "and at background on 18F-FDG. Whole-body imaging down to the feet is needed for TIO; FDG alone misses "
         "such culprits.", _tio_foot,
         presentation="Hypophosphataemic osteomalacia, suspected tumour-induced: search for the culprit with "
                      "68Ga-DOTATATE PET/CT and 18F-FDG PET/CT.",
         objectives=("Search the whole body, feet included, for the culprit of tumour-induced osteomalacia.",
                     "Know that a TIO culprit may be SSTR-avid and at background on FDG.",
                     "Grade the culprit's SSTR uptake against the liver (Krenning)."),
         questions=(("Where is the culprit, and which scan shows it?",
                     "L01, in the soft tissue of the right sole: avid on 68Ga-DOTATATE (SUV 9.5, above the liver) "
                     "and at background on 18F-FDG, so the FDG scan alone misses it. The field of view must reach "
                     "the feet."),),
         facts=(KRENNING_FACT, LIVER_RULE_FACT, PETMR_FACT)),
    Case("bone-petmr-vs-petct", "Pancreatic-tail NET with bone metastases that read lower on PET/MR",
         "A pancreatic-tail NET with three bone metastases (L1, left iliac bone, sternum), all equally avid "
         "(SUV 24 on PET/CT). PET/MR attenuation correction from Dixon MR ignores bone, so the same lesions "
         "read 12-22 % lower on PET/MR. Never share a liver reference or SUV thresholds across modalities.",
         _bone_petmr,
         presentation="Known pancreatic NET: staging with 68Ga-DOTATATE PET/CT and PET/MR on the same day.",
         objectives=("Find the bone metastases of a pancreatic NET on both PET/CT and PET/MR.",
                     "Explain why bone lesions read lower on PET/MR (Dixon attenuation correction ignores bone).",
                     "Measure the liver reference on each scan; never share it across modalities."),
         questions=(("The bone lesions have a lower SUV on PET/MR than on PET/CT. Has the disease responded?",
                     "Not from these numbers: the lesions' uptake is the same in the truth for both sessions. PET/MR "
                     "attenuation correction from Dixon MR ignores bone, so L02-L04 read 12-22 % lower on PET/MR (truth: petmr_bias 0.22, 0.18, 0.12); the pancreatic "
                     "primary L01, in soft tissue, does not."),),
         facts=(PETMR_FACT, KRENNING_FACT, LIVER_RULE_FACT)),
    Case("liver-threshold", "Pancreatic-head NET with liver metastases below, at and above the liver reference",
         "Four equal-sized liver metastases with tumour/liver ratios 0.6, 1.0, 1.6 and 3.5 (Krenning scores 1, 2, "
         "3 and 4: the last above the spleen), plus a pancreatic-head primary. The study's liver-threshold "
         "classifier calls only lesions above the liver positive: the first two are its false negatives.",
         _liver_threshold,
         presentation="Known pancreatic NET: staging with 68Ga-DOTATATE PET/CT.",
         objectives=("Grade SSTR uptake with the Krenning score against the liver and the spleen.",
                     "Apply the study's liver-threshold rule and name its false negatives.",
                     "Know that hypo-avid metastases (Krenning 1-2) are still disease."),
         questions=(("Which liver metastases does the liver-threshold rule miss, and why?",
                     "L01 and L02: their uptake is below (T/L 0.6) and equal to (T/L 1.0) the liver, so the rule, "
                     "which calls positive only uptake above the liver, calls them negative; both are malignant in "
                     "the truth (false negatives). L03 (T/L 1.6) and L04 (T/L 3.5, above the spleen) are called "
                     "positive."),),
         facts=(KRENNING_FACT, LIVER_RULE_FACT)),
    Case("lesion-free", "No tumour: normal biodistribution of 68Ga-DOTATATE and 18F-FDG",
         "No tumour. DOTATATE: spleen > kidneys and adrenals > liver, pituitary, uncinate process, urinary tract; "
         "FDG: brain, myocardium, urinary tract, liver about 2. Every focus here is physiological.", _lesion_free,
         presentation="Suspected NET: work-up with 68Ga-DOTATATE PET/CT and PET/MR and 18F-FDG PET/CT.",
         objectives=("Know the normal biodistribution of 68Ga-DOTATATE and of 18F-FDG.",
                     "Report a scan without tumour without calling physiological foci."),
         questions=(("Which foci are tumour?",
                     "None: the truth has no lesion. The foci are physiological: DOTATATE in spleen, kidneys, "
                     "adrenals, liver, pituitary, uncinate process and urinary tract; FDG in brain, myocardium and "
                     "urinary tract."),),
         facts=(PHYSIOLOGY_FACT,)),
    Case("healing-fracture", "NET liver metastasis with a healing rib fracture and an inflamed node",
         "A liver metastasis of a NET, and two benign look-alikes: a healing rib fracture (osteoblastic callus, "
         "mild DOTATATE and FDG uptake, dense on CT) and a reactive inguinal node (FDG-avid). Both are false-positive "
         "traps.", _fracture,
         presentation="Known NET: staging with 68Ga-DOTATATE PET/CT and 18F-FDG PET/CT.",
         objectives=("Tell benign SSTR- and FDG-avid look-alikes (fracture callus, inflammation) from metastases.",
                     "Use the CT correlate (dense callus in a rib) before calling a bone focus.",
                     "Know that FDG uptake in a node may be inflammatory."),
         questions=(("Are there bone or nodal metastases?",
                     "No. L02 is a healing rib fracture (osteoblastic callus, dense on CT) and L03 a reactive "
                     "inflammatory node (FDG-avid): both benign in the truth. Only L01, in the liver, is a "
                     "metastasis."),),
         facts=(PHYSIOLOGY_FACT, KRENNING_FACT, LIVER_RULE_FACT)),
)}


def case_names() -> Tuple[str, ...]:
    return tuple(CASES)


def case_patient_id(name: str) -> str:
    """The patient id of teaching case ``name``: ``TEACH-`` and the case name in capitals (never a study's
    ``NETPET-nnn``)."""
    return CASE_ID_PREFIX + name.upper()


def case_patient(name: str) -> Patient:
    """The patient of teaching case ``name`` with its own id and the case's title as its description.

    Raises
    ------
    ValueError
        For an unknown case name.
    """
    if name not in CASES:
        raise ValueError(f"no teaching case {name!r}; the cases are: {', '.join(CASES)}")
    case = CASES[name]
    return replace(case.build(), patient_id=case_patient_id(name), description=case.title)


def reading_rows(patient: Patient) -> List[Dict[str, object]]:
    """The expected reading of each lesion on each 68Ga-DOTATATE session, from the truth (noise-free SUVs):
    SUVmax, tumour/liver ratio, Krenning score against the session's liver and spleen, and the call of the
    liver-threshold rule (positive when the uptake is above the liver) with its outcome against the truth."""
    from netpet.phantom import render
    from netpet.quant.classify import krenning_score

    rows: List[Dict[str, object]] = []
    for session in patient.sessions:
        if session.tracer != "dotatate":
            continue
        liver = render.organ_reference(session, "liver")
        spleen = render.organ_reference(session, "spleen")
        for lesion in patient.lesions:
            suv = render.expected_suv(lesion, session)["suv_max_expected"]
            positive = suv > liver
            outcome = ("true positive" if lesion.malignant else "false positive") if positive else \
                ("false negative" if lesion.malignant else "true negative")
            rows.append({"session_id": session.session_id, "modality": session.modality, "lesion_id": lesion.lesion_id,
                         "finding": lesion.kind, "site": lesion.site, "malignant": lesion.malignant,
                         "suv_max": suv, "liver": liver, "spleen": spleen, "tl": suv / liver,
                         "krenning": krenning_score(suv, liver, spleen), "call": "positive" if positive else "negative",
                         "outcome": outcome})
    return rows


def _sessions_md(patient: Patient) -> List[str]:
    return [f"- {s.session_id}: {s.scanner.model} {s.modality}, "
            f"{(s.scan_start - s.injection).total_seconds() / 60:.0f} min after injection" for s in patient.sessions]


def _generic_questions(patient: Patient) -> List[Tuple[str, str]]:
    """Questions every case asks, answered from the truth."""
    benign = [lesion for lesion in patient.lesions if not lesion.malignant]
    malignant = [lesion for lesion in patient.lesions if lesion.malignant]
    listing = lambda lesions: "; ".join(f"{l.lesion_id} ({l.kind}, {l.site})" for l in lesions)  # noqa: E731
    pairs = [("Which findings are tumour and which are benign?",
              (f"Tumour: {listing(malignant)}." if malignant else "No tumour.")
              + (f" Benign: {listing(benign)}." if benign else " No benign look-alike is placed."))]
    rows = reading_rows(patient)
    if rows:
        misses = [r for r in rows if r["outcome"] in ("false positive", "false negative")]
        answer = ("See the expected reading table below (Krenning score and liver-threshold call of each finding on "
                  "each 68Ga-DOTATATE session). ")
        answer += ("Errors of the liver-threshold rule: " + "; ".join(
            f"{r['lesion_id']} on {r['session_id']}: {r['outcome']} (T/L {r['tl']:.2f})" for r in misses) + "."
                   if misses else "The liver-threshold rule makes no error in this case.")
        pairs.append(("What is the Krenning score of each finding on 68Ga-DOTATATE, and what does the "
                      "liver-threshold rule (positive when uptake is above the liver) call it?", answer))
    return pairs


def _questions(name: str, patient: Patient) -> List[Tuple[str, str]]:
    return list(CASES[name].questions) + _generic_questions(patient)


def case_markdown(name: str, patient: Patient) -> str:
    """CASE.md of teaching case ``name`` (the teacher's version: objectives, questions, answers, truth)."""
    case = CASES[name]
    questions = _questions(name, patient)
    lines = [f"# {case.title}", "", f"Patient {patient.patient_id}. {case.presentation}", "", case.lesson, "",
             "## Learning objectives", ""]
    lines += [f"- {objective}" for objective in case.objectives]
    lines += ["", "## Questions", ""]
    lines += [f"{i}. {question}" for i, (question, _) in enumerate(questions, 1)]
    lines += ["", "## Answers", ""]
    lines += [f"{i}. {answer}" for i, (_, answer) in enumerate(questions, 1)]
    rows = reading_rows(patient)
    if rows:
        lines += ["", "### Expected reading (from the truth, noise-free SUVs)", "",
                  "| session | lesion | finding | malignant | SUVmax | liver | spleen | T/L | Krenning | liver-threshold "
                  "call | outcome |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['session_id']} | {r['lesion_id']} | {r['finding']} | {'yes' if r['malignant'] else 'no'} | "
                  f"{r['suv_max']:.1f} | {r['liver']:.1f} | {r['spleen']:.1f} | {r['tl']:.2f} | {r['krenning']} | "
                  f"{r['call']} | {r['outcome']} |" for r in rows]
    lines += ["", "### Facts used", ""] + [f"- {fact}" for fact in case.facts]
    lines += ["", "## Findings (truth)", "", "| lesion | finding | site | malignant | diameter (mm) |", "|---|---|---|---|---|"]
    lines += [f"| {l.lesion_id} | {l.kind} | {l.site} | {'yes' if l.malignant else 'no'} | {l.diameter_mm:.0f} |"
              for l in patient.lesions]
    lines += ["", "## Sessions", ""] + _sessions_md(patient)
    lines += ["", "Quiz version without answers: QUIZ.md (previews without truth contours: preview/quiz/, with "
              "--preview)."]
    return "\n".join(lines) + "\n"


def quiz_markdown(name: str, patient: Patient) -> str:
    """QUIZ.md of teaching case ``name``: the presentation, objectives and questions, without answers or truth."""
    case = CASES[name]
    lines = [f"# Teaching case {patient.patient_id}", "", case.presentation, "", "## Learning objectives", ""]
    lines += [f"- {objective}" for objective in case.objectives]
    lines += ["", "## Sessions", ""] + _sessions_md(patient)
    lines += ["", "## Questions", ""]
    lines += [f"{i}. {question}" for i, (question, _) in enumerate(_questions(name, patient), 1)]
    lines += ["", "Images: the DICOM under dicom/; previews without truth contours under preview/quiz/ (with "
              "--preview). The truth/ folder, README.txt and CASE.md hold the answers: keep them from the trainee."]
    return "\n".join(lines) + "\n"
