"""Follow-up time point of the digital reference study: response, stable disease, progression, recurrence.

With ``follow_up`` (``netpet phantom --follow-up``) every NET and TIO patient gets a second time
point ``FU1``: one 68Ga-DOTATATE PET/CT session (``S4-DOTATATE-PETCT-FU1``) 90-200 days after the
first baseline day (drawn), on the baseline PET/CT scanner, with the patient positioned anew
(rotation and shift drawn like every non-first session: registration has to recover them).
Everything is drawn from new random streams of the patient (``(seed, patient, 6)`` for the changes,
``(seed, patient, 200)`` for the session), so the baseline sessions stay byte-identical.

Scenario (per patient)
    NET patients cycle through :data:`SCENARIOS` (response, progression, mixed, stable) in the order
    of the study's NET patients, from a start drawn per study (stream ``(seed, 6)``): every study
    of four NET patients has all four, of three at least three. TIO patients: the culprit tumour
    was resected after baseline (curative, the treatment of TIO); at FU1 it is gone (``resected``)
    or has recurred at the resected site (``recurrence``: a new lesion), alternating over the
    study's TIO patients from the same drawn start.
Per lesion (malignant, NET)
    ``response``: the diameter shrinks to 0.40-0.70 x (at least the -30 % of a RECIST 1.1 partial
    response, there of the sum of diameters; Eisenhauer EA et al., Eur J Cancer 2009;45:228) and the
    68Ga-DOTATATE uptake to 0.40-0.70 x (at least the -30 % of a PERCIST 1.0 metabolic response, there
    of SULpeak; Wahl RL et al., J Nucl Med 2009;50 Suppl 1:122S); a lesion under 12 mm at baseline
    disappears with probability 0.5, and any lesion left under 4 mm (the study's smallest)
    disappears: complete response.
    ``stable``: diameter 0.90-1.10 x, uptake 0.85-1.15 x (well inside RECIST stable disease,
    -30 %..+20 %, and PERCIST's +-30 %).
    ``progression``: diameter 1.20-1.50 x (at least the +20 % of RECIST progression), uptake 1.00-1.40 x
    (up to the +30 % of PERCIST progression and beyond), and 1-3 new lesions (liver or bone metastases;
    a new lesion is progression in RECIST and PERCIST alike).
    ``mixed``: each lesion draws response or progression (probability 0.5 each), and 0-1 new lesion.
    Growth is capped where the lesion would leave its organ (liver: 3 mm inside the right lobe and
    3 mm clear of the 3 cm liver reference sphere; bone: the site's largest size), come within 2 mm
    of another lesion or pass 40 mm (the study's largest); such a lesion is marked ``capped``.
Benign look-alikes
    Physiological uncinate uptake is unchanged; a reactive inflammatory node resolves (probability
    0.5) or shrinks (0.8-1.0 x, uptake 0.6-1.0 x); a healing fracture fades (uptake 0.5-0.9 x).

The truth of every change is in ``truth/follow_up.csv`` (one row per lesion of either time point).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from netpet.phantom.anatomy import LIVER_REFERENCE_CENTER
from netpet.phantom.patients import (
    _BONE_MAX_RADIUS, _TIO_BONE_MAX_RADIUS, FU1, HISTOPATHOLOGY, PATIENT_KINDS, SCANNERS, Lesion, Patient,
    TimePoint, _radii, _rng, make_session,
)
from netpet.phantom.stages import new_bone_metastasis, new_liver_metastasis, set_uptake

SCENARIOS = ("response", "progression", "mixed", "stable")
TIO_SCENARIOS = ("recurrence", "resected")
#: (diameter factor range, 68Ga-DOTATATE uptake factor range) of a malignant lesion per arm (module docstring)
CHANGE: Dict[str, Tuple[Tuple[float, float], Tuple[float, float]]] = {
    "response": ((0.40, 0.70), (0.40, 0.70)),
    "stable": ((0.90, 1.10), (0.85, 1.15)),
    "progression": ((1.20, 1.50), (1.00, 1.40)),
}
#: new lesions at FU1: (fewest, most) per scenario
NEW_LESIONS = {"response": (0, 0), "stable": (0, 0), "progression": (1, 3), "mixed": (0, 1)}
#: days from the first baseline day to the follow-up scan
FOLLOW_UP_DAYS = (90, 200)
#: a lesion below this diameter at baseline may disappear under response (probability COMPLETE_RESPONSE)
SMALL_MM, COMPLETE_RESPONSE = 12.0, 0.5
SMALLEST_MM, LARGEST_MM = 4.0, 40.0
FOLLOW_UP_SESSION = "S4-DOTATATE-PETCT-FU1"
#: columns of truth/follow_up.csv
CHANGE_COLUMNS = ["patient_id", "time_point", "days_from_baseline", "scenario", "lesion_id", "kind", "malignant",
                  "status", "arm", "diameter_factor_drawn", "diameter_factor", "uptake_factor", "capped",
                  "baseline_diameter_mm", "diameter_mm", "baseline_suv_dotatate", "suv_dotatate"]


def _ordinal(index: int, kind: str) -> int:
    cycle = sum(k == kind for k in PATIENT_KINDS)
    whole, rest = divmod(index, len(PATIENT_KINDS))
    return whole * cycle + sum(k == kind for k in PATIENT_KINDS[:rest])


def scenario_of(seed: int, index: int, kind: str) -> Optional[str]:
    """The follow-up scenario of patient ``index`` of kind ``kind`` (None for patients without follow-up)."""
    start = int(_rng(seed, 6).integers(0, 4))  # per study, so that the study's patients share one cycle
    if kind == "NET":
        return SCENARIOS[(_ordinal(index, "NET") + start) % len(SCENARIOS)]
    if kind == "TIO":
        return TIO_SCENARIOS[(_ordinal(index, "TIO") + start) % len(TIO_SCENARIOS)]
    return None


def _room(lesion: Lesion, others: Sequence[Lesion], patient: Patient) -> float:
    """The largest radius (mm) the lesion may grow to at its centre (module docstring)."""
    center = np.asarray(lesion.center)
    limit = LARGEST_MM / 2.0 * max(lesion.radii) / (lesion.diameter_mm / 2.0)
    for other in others:
        limit = min(limit, float(np.linalg.norm(center - np.asarray(other.center))) - max(other.radii) - 2.0)
    if lesion.in_bone and lesion.site in _BONE_MAX_RADIUS:
        limit = min(limit, _BONE_MAX_RADIUS[lesion.site] * max(lesion.radii) / (lesion.diameter_mm / 2.0))
    if lesion.region == "liver":
        body = patient.body
        liver_center, liver_radii = np.asarray(body.p(-70.0, 0.0, -615.0)), np.asarray(body.r(95.0, 85.0, 80.0))
        reference = np.asarray(body.p(*LIVER_REFERENCE_CENTER))
        limit = min(limit, float(np.linalg.norm(center - reference)) - 15.0 - 3.0)
        offset = np.abs(center - liver_center)
        low, high = 0.0, limit
        if np.sum(((offset + high + 3.0) / liver_radii) ** 2) > 1.0:
            for _ in range(40):  # the box of the grown sphere stays 3 mm inside the right lobe (sufficient)
                mid = (low + high) / 2.0
                low, high = (mid, high) if np.sum(((offset + mid + 3.0) / liver_radii) ** 2) <= 1.0 else (low, mid)
            limit = low
    return limit


def add_follow_up(patient: Patient, seed: int, tracers: Sequence[str], modalities: Sequence[str],
                  start: dt.datetime) -> None:
    """Add the FU1 time point and its DOTATATE PET/CT session to a NET or TIO patient (module docstring).

    Nothing is added for lesion-free work-ups, or when the study has no DOTATATE PET/CT.
    """
    scenario = scenario_of(seed, patient.index, patient.kind)
    if scenario is None or "dotatate" not in tracers or "petct" not in modalities:
        return
    rng = _rng(seed, patient.index, 6)
    days = int(rng.integers(FOLLOW_UP_DAYS[0], FOLLOW_UP_DAYS[1] + 1))
    later: List[Lesion] = []
    changes: List[Dict[str, object]] = []
    present = [replace(lesion, suv=dict(lesion.suv)) for lesion in patient.lesions]
    for lesion, copy in zip(patient.lesions, present):
        # the same four draws for every lesion, so one lesion's fate does not shift another's
        arm_draw, size_draw, uptake_draw, gone_draw = rng.uniform(size=4)
        row = {"lesion_id": lesion.lesion_id, "kind": lesion.kind, "malignant": int(lesion.malignant),
               "baseline_diameter_mm": round(lesion.diameter_mm, 2),
               "baseline_suv_dotatate": lesion.suv["dotatate"], "capped": 0}
        if lesion.kind == "TIO culprit tumour":
            changes.append({**row, "status": "resected", "arm": "resected"})
            continue
        if not lesion.malignant:
            arm = "benign"
            size, uptake, gone = 1.0, 1.0, False
            if lesion.kind == "reactive inflammatory node":
                gone = bool(gone_draw < 0.5)
                size, uptake = float(0.8 + 0.2 * size_draw), float(0.6 + 0.4 * uptake_draw)
            elif lesion.kind == "healing rib fracture":
                uptake = float(0.5 + 0.4 * uptake_draw)
            drawn = size
        else:
            arm = scenario if scenario != "mixed" else ("response" if arm_draw < 0.5 else "progression")
            (d_low, d_high), (u_low, u_high) = CHANGE[arm]
            drawn = float(d_low + (d_high - d_low) * size_draw)
            size, uptake = drawn, float(u_low + (u_high - u_low) * uptake_draw)
            gone = arm == "response" and lesion.diameter_mm < SMALL_MM and gone_draw < COMPLETE_RESPONSE
            gone = bool(gone or lesion.diameter_mm * size < SMALLEST_MM)
        if gone:
            changes.append({**row, "status": "disappeared", "arm": arm, "diameter_factor_drawn": round(drawn, 4),
                            "uptake_factor": round(uptake, 4)})
            continue
        if size > 1.0:
            others = [o for o in present if o is not copy and o.lesion_id != copy.lesion_id]
            room = _room(copy, others, patient)
            size_cap = max(1.0, float(room) / max(copy.radii))
            if size > size_cap:
                size, row["capped"] = size_cap, 1
        copy.radii = tuple(float(r * size) for r in lesion.radii)
        copy.suv = {tracer: round(value * uptake, 2) for tracer, value in lesion.suv.items()}
        later.append(copy)
        changes.append({**row, "status": "present", "arm": arm, "diameter_factor_drawn": round(drawn, 4),
                        "diameter_factor": round(size, 4), "uptake_factor": round(uptake, 4),
                        "diameter_mm": round(copy.diameter_mm, 2), "suv_dotatate": copy.suv["dotatate"]})
    present = later
    new: List[Lesion] = []
    if patient.kind == "TIO":
        culprit = next((lesion for lesion in patient.lesions if lesion.kind == "TIO culprit tumour"), None)
        if scenario == "recurrence" and culprit is not None:
            diameter = float(rng.uniform(6.0, 12.0))
            if culprit.in_bone:
                diameter = min(diameter, 2 * _TIO_BONE_MAX_RADIUS.get(culprit.site, 6.0))
            fdg_negative = rng.uniform() < 0.35
            background = 0.6 if culprit.in_bone else 0.8
            recurrence = Lesion("", "TIO recurrence", culprit.region, culprit.site, culprit.center,
                                _radii(rng, diameter), True, HISTOPATHOLOGY,
                                {"dotatate": round(float(np.clip(rng.normal(7.2, 4.3), 2.5, 25.0)), 2),
                                 "fdg": round(float(background * rng.uniform(0.9, 1.2) if fdg_negative
                                                    else rng.uniform(2.0, 5.0)), 2)},
                                in_bone=culprit.in_bone, hu=culprit.hu, t1_ms=culprit.t1_ms,
                                petmr_bias=culprit.petmr_bias)
            new.append(recurrence)
    else:
        fewest, most = NEW_LESIONS[scenario]
        for _ in range(int(rng.integers(fewest, most + 1))):
            lesion = None
            if rng.uniform() < 0.6:
                # clear of every lesion of either time point: a new lesion is not where an old one was
                lesion = new_liver_metastasis(rng, patient, patient.lesions + present + new,
                                              float(np.clip(rng.lognormal(np.log(9.0), 0.35), 5.0, 15.0)))
            if lesion is None:
                lesion = new_bone_metastasis(rng, patient, patient.lesions + present + new, largest=14.0)
            if lesion is not None:
                set_uptake(rng, lesion, patient.grade or "G1")
                new.append(lesion)
    first_new = 1 + max((int(lesion.lesion_id[1:]) for lesion in patient.lesions), default=0)
    for number, i in enumerate(rng.permutation(len(new))):
        new[i].lesion_id = f"L{first_new + number:02d}"
    new.sort(key=lambda lesion: lesion.lesion_id)
    for lesion in new:
        changes.append({"lesion_id": lesion.lesion_id, "kind": lesion.kind, "malignant": int(lesion.malignant),
                        "status": "new", "arm": "new", "capped": 0, "diameter_mm": round(lesion.diameter_mm, 2),
                        "suv_dotatate": lesion.suv["dotatate"]})
    lesions = sorted(present + new, key=lambda lesion: lesion.lesion_id)
    for row in changes:
        row.update({"patient_id": patient.patient_id, "time_point": FU1, "days_from_baseline": days,
                    "scenario": scenario})
    patient.follow_up[FU1] = TimePoint(FU1, days, scenario, lesions, changes)
    patient.sessions.append(make_session(FOLLOW_UP_SESSION, "dotatate", SCANNERS["petct"], start, days,
                                         patient.weight_kg, (seed, patient.index, 200), first=False, time_point=FU1))
