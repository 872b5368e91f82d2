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


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    lesson: str
    build: Callable[[], Patient]


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
    Case("uncinate-pitfall", "Physiological uptake of the uncinate process",
         "A small-bowel NET with a mesenteric node metastasis, and intense but physiological SSTR uptake in the "
         "uncinate process of the pancreas (SUV about 13, above the liver). The uncinate focus is benign "
         "(lesion marked benign in the truth): reading it as a pancreatic NET is a classic false positive. "
         "Clues: typical site in the pancreatic head, no CT/MR correlate, shape of the uncinate process.", _uncinate),
    Case("tio-foot-fdg-negative", "Tumour-induced osteomalacia: culprit in the foot, missed on FDG",
         "A phosphaturic mesenchymal tumour in the soft tissue of the right sole, avid on 68Ga-DOTATATE (SUV 9.5) "
         "and at background on 18F-FDG. Whole-body imaging down to the feet is needed for TIO; FDG alone misses "
         "such culprits.", _tio_foot),
    Case("bone-petmr-vs-petct", "Bone metastases read lower on PET/MR",
         "A pancreatic-tail NET with three bone metastases (L1, left iliac bone, sternum), all equally avid "
         "(SUV 24 on PET/CT). PET/MR attenuation correction from Dixon MR ignores bone, so the same lesions "
         "read 12-22 % lower on PET/MR. Never share a liver reference or SUV thresholds across modalities.",
         _bone_petmr),
    Case("liver-threshold", "Liver metastases below, at and above the liver reference",
         "Four equal-sized liver metastases with tumour/liver ratios 0.6, 1.0, 1.6 and 3.5 (Krenning scores 1, 2, "
         "3 and 4: the last above the spleen), plus a pancreatic-head primary. The study's liver-threshold "
         "classifier calls only lesions above the liver positive: the first two are its false negatives.",
         _liver_threshold),
    Case("lesion-free", "Normal biodistribution of 68Ga-DOTATATE and 18F-FDG",
         "No tumour. DOTATATE: spleen > kidneys and adrenals > liver, pituitary, uncinate process, urinary tract; "
         "FDG: brain, myocardium, urinary tract, liver about 2. Every focus here is physiological.", _lesion_free),
    Case("healing-fracture", "Benign SSTR uptake: healing rib fracture and an inflamed node",
         "A liver metastasis of a NET, and two benign look-alikes: a healing rib fracture (osteoblastic callus, "
         "mild DOTATATE and FDG uptake, dense on CT) and a reactive inguinal node (FDG-avid). Both are false-positive "
         "traps.", _fracture),
)}


def case_names() -> Tuple[str, ...]:
    return tuple(CASES)
