"""Reading standards in the digital reference study: indications, TIO culprits, SSTR/FDG biology, NETPET grades.

What the study's truth says for testing reading standards (issue 14):

Indication (``reference_standard.csv`` column ``indication``, one per patient)
    TIO work-ups ``TIO localisation``; lesion-free work-ups (a suspected NET, none found) ``NET work-up``;
    NET patients cycle over :data:`NET_INDICATIONS` (``NET staging``, ``NET staging``, ``follow-up``: a
    known NET restaged) in the order of the study's NET patients, so a study of three or more NET patients
    has every indication. The indication is the patient's, the same at every time point.
Culprit (column ``culprit``)
    1 on the row of the TIO culprit tumour (the phosphaturic mesenchymal tumour whose removal cures the
    osteomalacia; Folpe AL et al., Am J Surg Pathol 2004;28:1), 0 on every other row. A recurrence at
    follow-up (``TIO recurrence``) is a new lesion, not the culprit of the localisation.
SSTR expression and FDG avidity (columns ``sstr_expression``, ``fdg_avid``, ``fdg_only``)
    From the lesion's object SUVs (noise-free uptake, the truth) against the liver of the body model
    (68Ga-DOTATATE SUV 6.8, FDG 2.2; :mod:`netpet.phantom.anatomy`), on the Krenning scale as
    :func:`netpet.quant.classify.krenning_score` reads it (liver +-10 % is "equal"; Krenning EP et al., Eur J
    Nucl Med 1993;20:716): ``high`` above the liver (Krenning 3-4), ``moderate`` equal to it (2), ``low`` below
    it (1), ``absent`` at or below half of it (NETPET's convention: a liver lesion reads photopenic, one elsewhere
    at most faint). ``fdg_avid`` 1 when the FDG uptake is above the liver's; ``fdg_only`` 1 for an FDG-avid
    tumour with ``low`` or ``absent`` SSTR expression: the FDG+/SSTR- (dedifferentiated) lesion that makes a
    patient NETPET P5 (:mod:`netpet.clinical.netpet_score`: SSTR positive is Krenning 2-4).

With the study option ``reading_design`` (``netpet phantom --reading-design``):

NETPET grade by design (:data:`GRADE_DESIGN`)
    Each NET patient is given a target grade, cycling over the study's NET patients like the staging
    design (:mod:`netpet.phantom.stages`): P1, P5, P3, P2, P4, P3, so a study of three NET patients has
    P1, P5 and P3, one of six every grade P1-P5; lesion-free work-ups are P0. The patient's histological
    grade follows the target (:data:`HISTOLOGY`: P1 G1, P2 and P3 G2, P4 and P5 G3; FDG avidity rises with
    grade and Ki-67, Zhang P et al., Contrast Media Mol Imaging 2018:2340389; dedifferentiated FDG+/SSTR-
    disease in G2/G3, Chan 2017). The patient's lesions keep their draws, then the uptake that decides the
    grade is set (see :func:`apply_grade_design`), with margins of at least 15 % around every threshold of
    :mod:`netpet.clinical.netpet_score` (SSTR positive from 0.9 x the liver; avidity index FDG T/L over SSTR T/L
    below 0.77 P2, above 1.3 P4) so that the expected grade does not hinge on rounding or on measurement:

    * P1: every malignant lesion FDG-negative (FDG at its tissue's background, at most the liver's);
    * P2, P3, P4: one deciding lesion (the largest malignant lesion) dual-positive with FDG to SSTR
      lesion-to-liver ratios of about 0.3, 1 and 3 (FDG well below, like, well above the SSTR
      intensity); every other FDG-avid lesion SSTR-positive (at least 1.3 x the liver) with an FDG/SSTR
      ratio and an FDG uptake at most 0.8 x the deciding lesion's and a ratio at most 0.6 (clearly P2), else
      FDG-negative;
    * P5: the deciding lesion FDG-only (dedifferentiated): 68Ga-DOTATATE 0.3-0.7 x the liver, FDG
      2.5-4.5 x the liver; the patient's other lesions as drawn, except that an FDG-avid lesion near
      the liver on SSTR (0.8-1.3 x) is made FDG-negative (no lesion is ambiguous between dual-positive
      and FDG-only).

    The FDG session: every NET and lesion-free patient gets the FDG PET/CT (a grade needs both scans).
TIO decoys
    Each TIO patient's culprit sits with SSTR-avid benign look-alikes (:func:`netpet.phantom.patients.look_alikes`)
    it lacks: a physiological uncinate focus (Jacobsson H et al., Clin Nucl Med 2012), a healing rib fracture
    (the insufficiency fractures of osteomalacia; SSTR uptake of fracture healing, Hofman MS et al.,
    RadioGraphics 2015;35:500) and a reactive inflammatory node; the fracture and the node take 68Ga-DOTATATE
    SUV 4.5-8, in the culprit's range (SUVmax 7.2 +- 4.3).

Everything new is drawn from the patient's own stream ``(seed, patient, 8)``; the option also sets the NET
patient's histological grade and the FDG session, so the lesions drawn after them differ from the study without
it. Without the option nothing changes.

The expected NETPET grade of each patient (``truth/netpet_scores.csv``) is computed by
:func:`netpet.clinical.netpet_score.netpet_grade` from the true uptake (see :func:`score_rows`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from netpet.phantom.anatomy import TISSUES
from netpet.phantom.patients import BASELINE, PATIENT_KINDS, Lesion, Patient, _rng, look_alikes

#: liver SUVmean of the body model per tracer (noise-free)
LIVER = {"dotatate": next(t.suv_dotatate for t in TISSUES if t.name == "liver"),
         "fdg": next(t.suv_fdg for t in TISSUES if t.name == "liver")}
SPLEEN_DOTATATE = next(t.suv_dotatate for t in TISSUES if t.name == "spleen")
#: FDG uptake of the tissue a NET lesion sits in (as netpet.phantom.patients.net_lesions and stages draw it)
FDG_BACKGROUND = {"pancreas": 1.5, "small bowel": 1.8, "liver": 2.2, "lymph nodes": 0.9, "bone": 1.5, "lung": 0.5,
                  "soft tissue": 0.8}

INDICATIONS = ("NET staging", "NET work-up", "TIO localisation", "follow-up")
NET_INDICATIONS = ("NET staging", "NET staging", "follow-up")
TIO_CULPRIT = "TIO culprit tumour"

#: target NETPET grade per NET patient, in the order of the study's NET patients
GRADE_DESIGN = ("P1", "P5", "P3", "P2", "P4", "P3")
#: the histological grade of a NET patient with that target
HISTOLOGY = {"P1": "G1", "P2": "G2", "P3": "G2", "P4": "G3", "P5": "G3"}
#: (SSTR lesion/liver range, FDG lesion/liver range) of the deciding lesion per target grade
#: (P3: FDG/liver = SSTR/liver x 0.9-1.1). Avidity index FDG T/L / SSTR T/L: P2 0.23-0.40, P3 0.9-1.1, P4 2.4-4.0,
#: against netpet_score's bands (< 0.77 P2, 0.77-1.3 P3, > 1.3 P4); P5 SSTR T/L < 0.9 is Krenning 1 or less.
DECIDING_UPTAKE = {"P2": ((4.5, 6.0), (1.4, 1.8)), "P3": ((2.0, 2.6), (0.9, 1.1)), "P4": ((1.5, 1.9), (4.5, 6.0)),
                   "P5": ((0.3, 0.7), (2.5, 4.5))}
#: largest avidity index of the other FDG-avid lesions of a P2-P4 patient: 20 % below netpet_score's P2/P3 bound
#: (1 / 1.3 = 0.77)
OTHER_INDEX = 0.6
#: the benign look-alikes every TIO patient gets with the reading design
TIO_DECOYS = (("uncinate", "physiological uncinate process uptake"), ("fracture", "healing rib fracture"),
              ("inflammation", "reactive inflammatory node"))


def ordinal(index: int, kind: str) -> int:
    """How many patients of ``kind`` precede patient ``index`` in the study's kind cycle."""
    cycle = sum(k == kind for k in PATIENT_KINDS)
    whole, rest = divmod(index, len(PATIENT_KINDS))
    return whole * cycle + sum(k == kind for k in PATIENT_KINDS[:rest])


def indication_of(patient: Patient) -> str:
    """The patient's indication, one of :data:`INDICATIONS` (module docstring)."""
    if patient.kind == "TIO":
        return "TIO localisation"
    if patient.kind == "NET":
        return NET_INDICATIONS[ordinal(patient.index, "NET") % len(NET_INDICATIONS)]
    return "NET work-up"


def target_grade(index: int, kind: str) -> Optional[str]:
    """The design's NETPET grade of patient ``index`` (None for TIO work-ups, which are not NETs)."""
    if kind == "NET":
        return GRADE_DESIGN[ordinal(index, "NET") % len(GRADE_DESIGN)]
    if kind == "none":
        return "P0"
    return None


def krenning_true(lesion: Lesion) -> int:
    """The Krenning score (1-4) of the lesion's 68Ga-DOTATATE object SUV against the model's liver and spleen."""
    from netpet.quant.classify import krenning_score

    return krenning_score(lesion.suv.get("dotatate", 0.0), LIVER["dotatate"], SPLEEN_DOTATATE)


def sstr_expression(lesion: Lesion) -> str:
    """``high``, ``moderate``, ``low`` or ``absent`` from the lesion's 68Ga-DOTATATE object SUV (module docstring)."""
    if lesion.suv.get("dotatate", 0.0) <= 0.5 * LIVER["dotatate"]:
        return "absent"
    return {1: "low", 2: "moderate"}.get(krenning_true(lesion), "high")


def fdg_avid(lesion: Lesion) -> int:
    """1 when the lesion's FDG object SUV is above the liver's, else 0."""
    return int(lesion.suv.get("fdg", 0.0) > LIVER["fdg"])


def fdg_only(lesion: Lesion) -> int:
    """1 for an FDG-avid tumour with low or absent SSTR expression (FDG+/SSTR-), else 0 (benign findings: 0)."""
    return int(lesion.malignant and bool(fdg_avid(lesion)) and sstr_expression(lesion) in ("low", "absent"))


def culprit(lesion: Lesion) -> int:
    return int(lesion.kind == TIO_CULPRIT and lesion.malignant)


def _fdg_negative(rng: np.random.Generator, lesion: Lesion) -> float:
    background = FDG_BACKGROUND.get(lesion.region, 1.0)
    return round(min(background, LIVER["fdg"]) * float(rng.uniform(0.85, 1.0)), 2)


def apply_grade_design(patient: Patient, seed: int) -> None:
    """Set the uptake that gives a NET patient its target grade (module docstring); TIO patients get their decoys.

    Draws from the patient's stream ``(seed, patient, 8)``. Lesion-free work-ups (P0) are left as they are.

    Raises
    ------
    ValueError
        A NET patient without a malignant lesion (every NET patient has its primary).
    """
    rng = _rng(seed, patient.index, 8)
    if patient.kind == "TIO":
        _add_decoys(patient, rng)
        return
    target = target_grade(patient.index, patient.kind)
    if patient.kind != "NET" or target is None:
        return
    malignant = [lesion for lesion in patient.lesions if lesion.malignant]
    if not malignant:
        raise ValueError(f"{patient.patient_id} has no malignant lesion: the grade design needs the NET's lesions")
    liver_d, liver_f = LIVER["dotatate"], LIVER["fdg"]
    if target == "P1":
        for lesion in malignant:
            lesion.suv["fdg"] = _fdg_negative(rng, lesion)
        largest = max(malignant, key=lambda lesion: lesion.diameter_mm)
        if largest.suv["dotatate"] < 1.5 * liver_d:
            largest.suv["dotatate"] = round(liver_d * float(rng.uniform(2.0, 4.0)), 2)
        return
    deciding = max(malignant, key=lambda lesion: lesion.diameter_mm)
    (s_low, s_high), (f_low, f_high) = DECIDING_UPTAKE[target]
    sstr = float(rng.uniform(s_low, s_high))
    fdg = float(rng.uniform(f_low, f_high)) * (sstr if target == "P3" else 1.0)
    deciding.suv["dotatate"] = round(liver_d * sstr, 2)
    deciding.suv["fdg"] = round(liver_f * fdg, 2)
    deciding.necrosis = 0.0  # the deciding uptake is the whole lesion's
    limit = (deciding.suv["fdg"] / liver_f) / (deciding.suv["dotatate"] / liver_d)
    for lesion in malignant:
        if lesion is deciding:
            continue
        sstr = lesion.suv["dotatate"] / liver_d
        fdg = lesion.suv["fdg"] / liver_f
        if fdg <= 1.0:
            continue
        if target == "P5":
            if 0.8 < sstr < 1.3:
                lesion.suv["fdg"] = _fdg_negative(rng, lesion)
            continue
        # an FDG-avid lesion of a dual-positive patient: clearly SSTR-positive, FDG/liver at least 1.3, an avidity
        # index (FDG/SSTR) at most 0.8 x the deciding lesion's and at most OTHER_INDEX (clearly P2), and FDG/liver at
        # most 0.8 x the deciding lesion's; else FDG-negative
        ceiling = min(0.8 * limit * sstr, OTHER_INDEX * sstr, 0.8 * deciding.suv["fdg"] / liver_f)
        if sstr < 1.3 or ceiling <= 1.4 or fdg < 1.3:
            lesion.suv["fdg"] = _fdg_negative(rng, lesion)
        elif fdg > ceiling:
            lesion.suv["fdg"] = round(liver_f * float(rng.uniform(1.3, ceiling)), 2)


def _add_decoys(patient: Patient, rng: np.random.Generator) -> None:
    """The TIO decoys the patient lacks (module docstring); every fracture and inflamed node SSTR-avid."""
    have = {lesion.kind for lesion in patient.lesions}
    new = look_alikes(rng, [key for key, kind in TIO_DECOYS if kind not in have])
    for lesion in new:
        lesion.center = patient.body.p(*lesion.center, organ=True)
    lesions = patient.lesions + new
    for lesion in lesions:
        # SSTR-avid decoys: 68Ga-DOTATATE SUV 4.5-8, several times their tissue (marrow 1.0, soft tissue below 1)
        # and within the culprit's range (SUVmax 7.2 +- 4.3, Zhang S et al. 2018; netpet.phantom.patients)
        if lesion.kind in ("reactive inflammatory node", "healing rib fracture"):
            lesion.suv["dotatate"] = round(float(rng.uniform(4.5, 8.0)), 2)
    order = rng.permutation(len(lesions))
    for number, i in enumerate(order):
        lesions[i].lesion_id = f"L{number + 1:02d}"
    lesions.sort(key=lambda lesion: lesion.lesion_id)
    patient.lesions = lesions


# -- expected NETPET grade from the truth ------------------------------------------------------------------
SCORE_COLUMNS = ["patient_id", "time_point", "netpet_grade", "deciding_lesion", "indication", "designed_grade",
                 "reason"]


def grade_lesions(patient: Patient, time_point: str = BASELINE) -> List[Dict[str, Any]]:
    """The patient's malignant lesions at a time point as :func:`netpet.clinical.netpet_score.netpet_grade` takes
    them, from the truth: ``krenning`` of the 68Ga-DOTATATE object SUV (:func:`krenning_true`), ``fdg_positive``
    the FDG object SUV above the liver's, ``sstr_tl`` and ``fdg_tl`` object SUV over the liver SUV per tracer."""
    return [{"track_id": lesion.lesion_id, "krenning": krenning_true(lesion), "fdg_positive": bool(fdg_avid(lesion)),
             "sstr_tl": lesion.suv.get("dotatate", 0.0) / LIVER["dotatate"],
             "fdg_tl": lesion.suv.get("fdg", 0.0) / LIVER["fdg"]}
            for lesion in patient.lesions_at(time_point) if lesion.malignant]


def score_rows(patient: Patient, reading_design: bool = False) -> List[Dict[str, Any]]:
    """truth/netpet_scores.csv rows of a patient: the expected NETPET grade at baseline from the true uptake
    (:func:`grade_lesions`), by :func:`netpet.clinical.netpet_score.netpet_grade`.

    The grade needs both scans: a patient without a baseline FDG or 68Ga-DOTATATE session, and a TIO work-up (no
    NET), has an empty grade and the reason. Follow-up time points have 68Ga-DOTATATE only and get no row.
    ``deciding_lesion``: the lesion ids of the grade (space-separated when several). ``designed_grade``: the
    reading design's target (:data:`GRADE_DESIGN`), empty without the design.
    """
    from netpet.clinical.netpet_score import netpet_grade

    designed = (target_grade(patient.index, patient.kind) or "") if reading_design else ""
    row = {"patient_id": patient.patient_id, "time_point": BASELINE, "netpet_grade": "", "deciding_lesion": "",
           "indication": indication_of(patient), "designed_grade": designed, "reason": ""}
    tracers = {session.tracer for session in patient.sessions if session.time_point == BASELINE}
    if patient.kind == "TIO":
        row["reason"] = "TIO work-up: the NETPET grade is a grade of neuroendocrine tumours"
    elif not {"dotatate", "fdg"} <= tracers:
        row["reason"] = "no " + " and no ".join(sorted({"dotatate", "fdg"} - tracers)) + " session at baseline"
    else:
        result = netpet_grade(grade_lesions(patient))
        row.update(netpet_grade=result.grade or "", deciding_lesion=" ".join(result.deciding), reason=result.reason)
    return [row]
