"""Synthetic patients of the digital reference study: who they are, what they have, how scanned.

A study of N patients is a deterministic function of (N, seed): patient kinds cycle through
NET, TIO and lesion-free work-ups; everything else (body size, lesions, uptake, scan times,
patient position) is drawn from random generators seeded by (seed, patient, purpose), so one
patient never depends on how many others are generated or in which process. The streams of
patient ``i``: ``(seed, i, 1)`` body, sex, age, grade; ``(seed, i, 2)`` lesions and their uptake;
``(seed, i, 3)`` the session plan of teaching cases; ``(seed, i, 5)`` the staging design's sites
(:mod:`netpet.phantom.stages`, option ``distant_sites``); ``(seed, i, 6)`` the follow-up changes
(:mod:`netpet.phantom.followup`, option ``follow_up``); ``(seed, i, 100 + k)`` baseline session k
(times, dose, position, image noise); ``(seed, i, 200)`` the follow-up session; per study,
``(seed, 6)`` where the follow-up scenarios start their cycle. An option only adds streams, so
without it every draw is what it was.

Lesions (sizes 4-40 mm) carry their truth: malignant or benign, region, the reference
standard that would establish it (histopathology, follow-up), and their uptake on each tracer
as an SUVbw of the object. Uptake values follow the literature:

* 68Ga-DOTATATE NET lesions: mean SUVmax liver metastases 28.7, pancreas 25.2, bone 18.3, lymph
  nodes 12.6 (Kuyumcu S et al., Ann Nucl Med 2013); G1 median 9.5 (range 4.2-43.6), G2 34.9
  (Komek H et al., Asia Ocean J Nucl Med Biol 2019;7:141). Here the tumour/liver ratio is drawn
  so that some lesions fall below, near and above the liver, which the liver-threshold
  classifier must face.
* FDG in well-differentiated NET: positive in about half (52 % with Ki-67 < 10 %, 72 % with
  Ki-67 >= 10 %; Zhang P et al., Contrast Media Mol Imaging 2018:2340389); G3 avid.
* TIO culprit tumours (phosphaturic mesenchymal tumours): 68Ga-DOTATATE SUVmax 7.2 +- 4.3, size
  1.9 +- 0.7 cm (Zhang S et al., Acta Acad Med Sin 2018;40:757); FDG mild to moderate (median
  SUVmax 4.0) and missed in some (4 of 6 localised on FDG vs 6 of 6 on DOTATATE; Jadhav S et al.,
  J Clin Endocrinol Metab 2016;101:3575).
* Pitfalls: physiological uncinate process uptake reaching tumour level in 70 % (Jacobsson H et
  al., Clin Nucl Med 2012); SSTR uptake of healing fractures and inflammation (Hofman MS et al.,
  RadioGraphics 2015;35:500, 68Ga-DOTATATE pitfalls).
* PET/MR Dixon attenuation correction without bone: osseous lesions read 11.2 +- 5.4 % lower
  (range 1.5-30.8 %), sclerotic spine lesions 15.9 % (Samarin A et al., EJNMMI 2012;39:1154).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from netpet.phantom.anatomy import LIVER_REFERENCE_CENTER, Body
from netpet.phantom.shapes import Ellipsoid

TRACERS = ("dotatate", "fdg")
MODALITIES = ("petct", "petmr")
PATIENT_KINDS = ("NET", "NET", "TIO", "NET", "none", "NET", "TIO", "NET", "NET", "none")

#: Reference-standard terms used in the reference table (StudyStats reads them).
HISTOPATHOLOGY, FOLLOW_UP = "histopathology", "follow-up"
#: Time point labels of the study (netpet.schema reads them: baseline, FU1)
BASELINE, FU1 = "baseline", "FU1"


@dataclass
class Lesion:
    """One finding with its truth. Uptake is the SUVbw of the object (noise-free, no blur)."""

    lesion_id: str
    kind: str
    region: str
    site: str
    center: Tuple[float, float, float]
    radii: Tuple[float, float, float]
    malignant: bool
    standard: str
    suv: Dict[str, float]
    in_bone: bool = False
    necrosis: float = 0.0
    hu: float = 45.0
    t1_ms: float = 1100.0
    petmr_bias: float = 0.0

    @property
    def diameter_mm(self) -> float:
        """Diameter of the sphere of the same volume, mm."""
        return 2.0 * float(np.cbrt(np.prod(self.radii)))

    def shape(self) -> Ellipsoid:
        return Ellipsoid(self.center, self.radii)

    def core(self) -> Optional[Ellipsoid]:
        """The necrotic core, if any (a concentric ellipsoid with ``necrosis`` x the radii)."""
        if self.necrosis <= 0:
            return None
        return Ellipsoid(self.center, tuple(r * self.necrosis for r in self.radii))

    #: uptake of a necrotic core relative to the viable rim
    CORE_UPTAKE = 0.25

    def true_suv(self, tracer: str) -> Tuple[float, float]:
        """(SUVmax, SUVmean) of the noise-free object for a tracer."""
        rim = self.suv[tracer]
        if self.necrosis <= 0:
            return rim, rim
        core_fraction = self.necrosis ** 3
        return rim, rim * (1.0 - core_fraction) + rim * self.CORE_UPTAKE * core_fraction


@dataclass(frozen=True)
class Scanner:
    """A hybrid scanner and how it reconstructs.

    ``fwhm_f18_mm``: resolution of the reconstructed PET image for F-18 (NEMA NU-2 resolution near
    the centre combined with the usual Gaussian post-filter: sqrt(NEMA^2 + filter^2)).
    """

    key: str
    modality: str  # PET/CT or PET/MR
    manufacturer: str
    model: str
    pet_spacing: Tuple[float, float, float]
    pet_matrix: int
    fwhm_f18_mm: float
    frame_s: float
    bed_mm: float
    liver_cov: float
    anatomy: str  # CT or MR
    anatomy_spacing: Tuple[float, float, float]
    anatomy_matrix: int


# NEMA FWHM near the centre: Biograph mCT 4.3 mm, Biograph mMR 4.3 mm, Discovery MI 4.1 mm
# (comparison table in Hsu DFC et al., J Nucl Med 2017;58:1511). Post-filters: 4 mm (Siemens
# whole-body default), 3 mm (GE). Voxels: GE 192 x 192, 3.65 x 3.65 x 3.27 mm (Eur Radiol
# 2022;32:7237); Siemens reconstructions kept within 2-4 mm as the study requires. Fields of view
# are about 510 mm, enough for the trunk and legs of BMI up to 34 with the arms raised.
SCANNERS: Dict[str, Scanner] = {
    "petct": Scanner("petct", "PET/CT", "SIEMENS", "Biograph64_mCT", (4.0, 4.0, 3.0), 128, 5.9, 180.0, 216.0,
                     0.14, "CT", (1.5, 1.5, 5.0), 340),
    "petmr": Scanner("petmr", "PET/MR", "SIEMENS", "Biograph_mMR", (3.0, 3.0, 3.0), 170, 5.9, 240.0, 258.0,
                     0.12, "MR", (2.0, 2.0, 4.0), 256),
    "fdg-petct": Scanner("fdg-petct", "PET/CT", "GE MEDICAL SYSTEMS", "Discovery MI", (3.65, 3.65, 3.27), 140, 5.1,
                         120.0, 200.0, 0.10, "CT", (1.5, 1.5, 5.0), 340),
}

#: Ga-68 images are 18-23 % less sharp than F-18 on clinical scanners (positron range: mean
#: 3.5 mm vs 0.6 mm in tissue; EJNMMI Phys 2022;9:62, Biograph Vision study).
GA68_RESOLUTION_FACTOR = 1.2


@dataclass
class Session:
    """One imaging session: tracer, hybrid scanner, times, dose and patient position."""

    session_id: str
    tracer: str
    scanner: Scanner
    scan_start: dt.datetime
    injection: dt.datetime
    dose_bq: float
    rotation_deg: Tuple[float, float, float]
    shift_mm: Tuple[float, float, float]
    bladder_suv: float
    seed: Tuple[int, ...]
    #: the time point the session belongs to (``baseline``, ``FU1``) and its calendar days after the
    #: patient's first baseline day
    time_point: str = "baseline"
    days_from_baseline: int = 0

    @property
    def modality(self) -> str:
        return self.scanner.modality

    @property
    def fwhm_mm(self) -> float:
        factor = GA68_RESOLUTION_FACTOR if self.tracer == "dotatate" else 1.0
        return self.scanner.fwhm_f18_mm * factor


@dataclass
class Patient:
    patient_id: str
    index: int
    kind: str
    sex: str
    age: int
    height_m: float
    weight_kg: float
    grade: Optional[str]
    body: Body
    lesions: List[Lesion]
    sessions: List[Session] = field(default_factory=list)
    myocardium_fdg: float = 3.5
    marrow_hu: float = 226.0
    birth_date: dt.date = dt.date(1960, 1, 1)
    description: str = ""
    #: later time points (``FU1``): what changed since baseline (see :mod:`netpet.phantom.followup`)
    follow_up: Dict[str, "TimePoint"] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        """The region of the patient's NET primary (``pancreas``, ``small bowel``); "" for TIO or no tumour."""
        return next((lesion.region for lesion in self.lesions if lesion.kind == "NET primary" and lesion.malignant), "")

    @property
    def time_points(self) -> List[str]:
        """``baseline`` and the follow-up time points, in order."""
        return [BASELINE, *self.follow_up]

    def lesions_at(self, time_point: str) -> List[Lesion]:
        """The lesions present at a time point (baseline: :attr:`lesions`)."""
        if time_point in ("", BASELINE):
            return self.lesions
        return self.follow_up[time_point].lesions


@dataclass
class TimePoint:
    """A follow-up time point of a patient: the lesions then present and how each changed.

    ``changes``: one dict per lesion of either time point (see :mod:`netpet.phantom.followup`).
    """

    time_point: str
    days_from_baseline: int
    scenario: str
    lesions: List[Lesion]
    changes: List[Dict[str, object]] = field(default_factory=list)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


# -- lesion sites (reference-body coordinates, mm; scaled per patient by Body.p) -------------------
_PANCREAS = {"pancreatic head": (-30, -5, -672), "pancreatic body": (20, -12, -656), "pancreatic tail": (72, 18, -645)}
_SMALL_BOWEL = {"terminal ileum": (-78, -12, -803), "jejunum": (55, -48, -736), "ileum": (-60, -34, -768)}
_NODES = {"mesenteric node": (10, -28, -742), "para-aortic node": (28, 32, -712), "portocaval node": (-22, 4, -648),
          "aortocaval node": (-8, 28, -730)}
_BONE = {"L1 vertebral body": (0, 57, -640), "L3 vertebral body": (0, 45, -700), "T10 vertebral body": (0, 62, -560),
         "right iliac bone": (-95, 25, -795), "left iliac bone": (95, 25, -805), "sternum": (0, -104, -450),
         "right femoral head": (-88, 5, -882)}
_BONE_MAX_RADIUS = {"L1 vertebral body": 13, "L3 vertebral body": 13, "T10 vertebral body": 13, "right iliac bone": 14,
                    "left iliac bone": 14, "sternum": 6, "right femoral head": 17}
_TIO_BONE = {"left calcaneus": (80, 30, -1668), "right calcaneus": (-80, 30, -1668), "left distal femur": (84, 5, -1190),
             "right proximal tibia": (-80, 2, -1290), "right femoral neck": (-93, 9, -905),
             "left metatarsals": (80, -72, -1672)}
_TIO_BONE_MAX_RADIUS = {"left calcaneus": 11, "right calcaneus": 11, "left distal femur": 8, "right proximal tibia": 8,
                        "right femoral neck": 9, "left metatarsals": 6}
_TIO_SOFT = {"right thigh muscle": (-110, -20, -1050), "left calf muscle": (70, 35, -1420),
             "right foot sole": (-80, -20, -1690), "right buttock": (-70, 85, -880)}
#: Sites placed with the limb (body-outline) scaling of netpet.phantom.anatomy rather than the organ scaling.
LIMB_SITES = set(_TIO_SOFT) | set(_TIO_BONE)


def _liver_point(rng: np.random.Generator, radius: float, taken: Sequence[Lesion]) -> Optional[Tuple[float, float, float]]:
    """A random point of the right liver lobe at least ``radius`` + 6 mm inside its surface and
    5 mm clear of the lesions already placed; None when 200 tries find no room."""
    center, radii = np.array([-70.0, 0.0, -615.0]), np.array([95.0, 85.0, 80.0])
    for _ in range(200):
        u = rng.uniform(-1, 1, 3)
        if np.sum(u ** 2) > 1:
            continue
        point = center + u * (radii - radius - 6.0)
        if np.linalg.norm(point - np.asarray(LIVER_REFERENCE_CENTER)) < radius + 15.0 + 5.0:
            continue  # keep the liver reference sphere (3 cm) free of lesions
        if all(np.linalg.norm(point - np.asarray(other.center)) > radius + max(other.radii) + 5.0 for other in taken):
            return tuple(float(v) for v in point)
    return None


def _radii(rng: np.random.Generator, diameter: float) -> Tuple[float, float, float]:
    """Slightly ellipsoidal: axes within +-12 % of the mean radius."""
    r = diameter / 2.0
    axes = r * rng.uniform(0.88, 1.12, 3)
    return tuple(float(v) for v in axes * r / np.cbrt(np.prod(axes)))


def _tl_ratio(rng: np.random.Generator, grade: str) -> float:
    """Tumour/liver ratio of a NET lesion on DOTATATE: mostly above, some near or below 1."""
    draw = rng.uniform()
    if draw < 0.15:
        return float(rng.uniform(0.35, 0.85))
    if draw < 0.30:
        return float(rng.uniform(0.85, 1.3))
    high = 6.0 if grade == "G2" else (2.5 if grade == "G3" else 4.5)
    return float(rng.uniform(1.3, high))


def _fdg_suv(rng: np.random.Generator, grade: str, background: float) -> float:
    """FDG uptake of a NET lesion: grade-dependent avidity (see module docstring)."""
    avid = {"G1": 0.3, "G2": 0.6, "G3": 0.95}[grade]
    if rng.uniform() < avid:
        return float(rng.uniform(3.0, 12.0) if grade == "G3" else rng.uniform(2.5, 7.0))
    return float(background * rng.uniform(0.9, 1.3))


def net_lesions(rng: np.random.Generator, grade: str, liver_suv: float, count_scale: float = 1.0) -> List[Lesion]:
    """A NET primary with metastases to liver, nodes and bone."""
    lesions: List[Lesion] = []
    if rng.uniform() < 0.55:
        site = str(rng.choice(list(_PANCREAS)))
        diameter = float(rng.uniform(12, 38))
        lesions.append(Lesion("", "NET primary", "pancreas", site, _PANCREAS[site], _radii(rng, diameter), True,
                              HISTOPATHOLOGY, {}, hu=45.0, t1_ms=1100.0,
                              necrosis=0.45 if diameter > 28 else 0.0))
    else:
        site = str(rng.choice(list(_SMALL_BOWEL)))
        lesions.append(Lesion("", "NET primary", "small bowel", site, _SMALL_BOWEL[site],
                              _radii(rng, float(rng.uniform(8, 20))), True, HISTOPATHOLOGY, {}, hu=45.0, t1_ms=1100.0))
    for _ in range(int(rng.integers(0, 6) * count_scale)):
        diameter = float(np.clip(rng.lognormal(np.log(14), 0.55), 4, 40))
        radii = _radii(rng, diameter)
        point = _liver_point(rng, max(radii), [les for les in lesions if les.region == "liver"])
        if point is None:
            continue
        lesions.append(Lesion("", "liver metastasis", "liver", "liver", point, radii, True, FOLLOW_UP, {},
                              hu=38.0, t1_ms=1150.0, necrosis=0.5 if diameter > 30 else 0.0))
    for site in rng.permutation(list(_NODES))[: int(rng.integers(0, 3) * count_scale)]:
        lesions.append(Lesion("", "lymph node metastasis", "lymph nodes", str(site), _NODES[str(site)],
                              _radii(rng, float(rng.uniform(6, 22))), True, FOLLOW_UP, {}, hu=40.0, t1_ms=1100.0))
    for site in rng.permutation(list(_BONE))[: int(rng.integers(0, 3) * count_scale)]:
        site = str(site)
        diameter = float(rng.uniform(6, 2 * _BONE_MAX_RADIUS[site]))
        lesions.append(Lesion("", "bone metastasis", "bone", site, _BONE[site], _radii(rng, diameter), True, FOLLOW_UP,
                              {}, in_bone=True, hu=650.0, t1_ms=1200.0,
                              petmr_bias=float(np.clip(rng.normal(0.13, 0.05), 0.05, 0.30))))
    fdg_background = {"pancreas": 1.5, "small bowel": 1.8, "liver": 2.2, "lymph nodes": 0.9, "bone": 1.5}
    for lesion in lesions:
        lesion.suv["dotatate"] = round(liver_suv * _tl_ratio(rng, grade), 2)
        lesion.suv["fdg"] = round(_fdg_suv(rng, grade, fdg_background[lesion.region]), 2)
    return lesions


def tio_lesion(rng: np.random.Generator, in_bone: Optional[bool] = None, site: Optional[str] = None,
               fdg_negative: Optional[bool] = None) -> Lesion:
    """The culprit tumour of tumour-induced osteomalacia: small, in bone or limb soft tissue."""
    if in_bone is None:
        in_bone = bool(rng.uniform() < 0.55)
    catalogue = _TIO_BONE if in_bone else _TIO_SOFT
    site = site or str(rng.choice(list(catalogue)))
    diameter = float(np.clip(rng.normal(19, 7), 8, 2 * _TIO_BONE_MAX_RADIUS[site] if in_bone else 32))
    if fdg_negative is None:
        fdg_negative = bool(rng.uniform() < 0.35)
    background = 0.6 if in_bone else 0.8
    fdg = background * rng.uniform(0.9, 1.2) if fdg_negative else rng.uniform(2.0, 5.0)
    dotatate = float(np.clip(rng.normal(7.2, 4.3), 2.5, 25.0))
    return Lesion("", "TIO culprit tumour", "bone" if in_bone else "soft tissue", site, catalogue[site],
                  _radii(rng, diameter), True, HISTOPATHOLOGY, {"dotatate": round(dotatate, 2), "fdg": round(float(fdg), 2)},
                  in_bone=in_bone, hu=(90.0 if in_bone else 50.0), t1_ms=1300.0,
                  petmr_bias=float(np.clip(rng.normal(0.11, 0.05), 0.03, 0.30)) if in_bone else 0.0)


def look_alikes(rng: np.random.Generator, kinds: Sequence[str]) -> List[Lesion]:
    """Benign findings that mimic tumour: false-positive traps of the study."""
    out = []
    for kind in kinds:
        if kind == "uncinate":
            out.append(Lesion("", "physiological uncinate process uptake", "pancreas", "uncinate process",
                              (-24, 8, -702), (9.0, 8.0, 9.0), False, FOLLOW_UP,
                              {"dotatate": round(float(rng.uniform(9, 14)), 2), "fdg": 1.5}, hu=42.0, t1_ms=725.0))
        elif kind == "inflammation":
            side = float(rng.choice([-1.0, 1.0]))
            out.append(Lesion("", "reactive inflammatory node", "lymph nodes", "inguinal node",
                              (side * 75, -45, -905), _radii(rng, float(rng.uniform(10, 16))), False, FOLLOW_UP,
                              {"dotatate": round(float(rng.uniform(3.0, 6.0)), 2), "fdg": round(float(rng.uniform(3.0, 6.5)), 2)},
                              hu=35.0, t1_ms=1100.0))
        elif kind == "fracture":
            side = float(rng.choice([-1.0, 1.0]))
            out.append(Lesion("", "healing rib fracture", "bone", "lateral rib",
                              (side * 136, 10, -447), (7.0, 7.0, 7.0), False, FOLLOW_UP,
                              {"dotatate": round(float(rng.uniform(3.0, 6.0)), 2), "fdg": round(float(rng.uniform(2.0, 4.0)), 2)},
                              in_bone=True, hu=450.0, t1_ms=1200.0, petmr_bias=0.1))
    return out


def _body(rng: np.random.Generator, sex: str, whole_body: bool) -> Tuple[Body, float, float]:
    height = float(np.clip(rng.normal(1.76 if sex == "M" else 1.63, 0.07), 1.50, 1.98))
    bmi = float(np.clip(rng.normal(25.5, 3.5), 18.5, 34.0))
    weight = round(bmi * height ** 2, 1)
    height = round(height, 2)
    return Body(height * 1000.0, weight / height ** 2, whole_body), height, weight


def _sessions(seed: int, index: int, rng: np.random.Generator, tracers: Sequence[str], modalities: Sequence[str],
              fdg: bool, start: dt.datetime, weight_kg: float) -> List[Session]:
    plan = []
    if "dotatate" in tracers:
        if "petct" in modalities:
            plan.append(("S1-DOTATATE-PETCT", "dotatate", SCANNERS["petct"], 0))
        if "petmr" in modalities:
            plan.append(("S2-DOTATATE-PETMR", "dotatate", SCANNERS["petmr"], 1))
    if "fdg" in tracers and fdg and "petct" in modalities:
        plan.append(("S3-FDG-PETCT", "fdg", SCANNERS["fdg-petct"], int(rng.integers(2, 8))))
    return [make_session(session_id, tracer, scanner, start, day, weight_kg, (seed, index, 100 + number),
                         first=number == 0)
            for number, (session_id, tracer, scanner, day) in enumerate(plan)]


def make_session(session_id: str, tracer: str, scanner: Scanner, start: dt.datetime, day: int, weight_kg: float,
                 stream: Tuple[int, ...], first: bool, time_point: str = BASELINE) -> Session:
    """One session ``day`` days after ``start`` (08:00 of the patient's first baseline day), its times, dose,
    bladder and patient position drawn from the random stream ``stream`` (which also seeds its image noise).

    The first session of a patient defines the body frame (no rotation, no shift); every other session
    is rotated by up to 2.5 degrees about each axis and shifted by up to 10, 8 and 20 mm (x, y, z,
    LPS; see :func:`netpet.phantom.render.body_to_scanner` for how they apply).
    """
    srng = _rng(*stream)
    scan = start + dt.timedelta(days=day, minutes=int(srng.integers(0, 240)), seconds=int(srng.integers(0, 60)))
    uptake = dt.timedelta(minutes=float(srng.uniform(50, 70)))
    injection = (scan - uptake).replace(microsecond=0)
    # 68Ga-DOTATATE 100-200 MBq (Bozkurt MF et al., EJNMMI 2017;44:1588); FDG about 4 MBq/kg
    # (mean 4.1 MBq/kg in Boktor RR et al., J Nucl Med 2013;54:677)
    dose = float(srng.uniform(130e6, 190e6)) if tracer == "dotatate" else weight_kg * float(srng.uniform(3.3, 4.5)) * 1e6
    rotation = (0.0, 0.0, 0.0) if first else tuple(float(v) for v in srng.uniform(-2.5, 2.5, 3))
    shift = (0.0, 0.0, 0.0) if first else (float(srng.uniform(-10, 10)), float(srng.uniform(-8, 8)),
                                             float(srng.uniform(-20, 20)))
    bladder = float(srng.uniform(12, 45)) if tracer == "dotatate" else float(srng.uniform(10, 35))
    return Session(session_id, tracer, scanner, scan, injection, dose, rotation, shift, bladder, tuple(stream),
                   time_point, int(day))


def make_patient(seed: int, index: int, tracers: Sequence[str] = TRACERS, modalities: Sequence[str] = MODALITIES,
                 kind: Optional[str] = None, distant_sites: bool = False, follow_up: bool = False,
                 reading_design: bool = False) -> Patient:
    """Patient ``index`` (0-based) of the study with this seed.

    ``distant_sites``: NET patients get the nodal and distant sites of the study's staging design
    (:func:`netpet.phantom.stages.apply_stage_design`); ``follow_up``: NET and TIO patients get a
    68Ga-DOTATATE PET/CT follow-up time point FU1 (:func:`netpet.phantom.followup.add_follow_up`;
    needs dotatate and petct among the tracers and modalities); ``reading_design``: the NETPET-grade design,
    FDG-only lesions and TIO decoys of :mod:`netpet.phantom.reading` (the histological grade follows the
    design's NETPET grade, NET and lesion-free patients get the FDG session). Each draws from its own random
    streams, so every other draw of the patient stays the same (with ``reading_design`` the grade and FDG
    session a NET patient is given change what depends on them).
    """
    rng = _rng(seed, index, 1)
    kind = kind or PATIENT_KINDS[index % len(PATIENT_KINDS)]
    sex = "M" if rng.uniform() < 0.5 else "F"
    body, height, weight = _body(rng, sex, whole_body=(kind == "TIO"))
    age = int(rng.integers(28, 78))
    grade = str(rng.choice(["G1", "G2", "G3"], p=[0.45, 0.45, 0.10])) if kind == "NET" else None
    if reading_design and kind == "NET":
        from netpet.phantom.reading import HISTOLOGY, target_grade

        grade = HISTOLOGY[target_grade(index, kind)]
    lrng = _rng(seed, index, 2)
    liver_suv = 6.8
    lesions: List[Lesion] = []
    if kind == "NET":
        lesions = net_lesions(lrng, grade, liver_suv)
    elif kind == "TIO":
        lesions = [tio_lesion(lrng)]
    traps = [t for t, p in (("uncinate", 0.35), ("inflammation", 0.25), ("fracture", 0.15)) if lrng.uniform() < p]
    lesions += look_alikes(lrng, traps)
    for lesion in lesions:
        lesion.center = body.p(*lesion.center, organ=lesion.site not in LIMB_SITES)
    _number(lesions, lrng)
    fdg = kind == "TIO" or (grade in ("G2", "G3")) or (kind != "TIO" and lrng.uniform() < 0.3)
    fdg = fdg or reading_design  # a NETPET grade needs both scans
    start = dt.datetime(2025, 1, 6, 8, 0) + dt.timedelta(days=int(index * 9 + seed % 50))
    sessions = _sessions(seed, index, rng, tracers, modalities, fdg, start, weight)
    myocardium = 1.5 if rng.uniform() < 0.3 else float(rng.uniform(2.5, 8.0))
    patient = Patient(
        patient_id=f"NETPET-{index + 1:03d}", index=index, kind=kind, sex=sex, age=age, height_m=height,
        weight_kg=weight, grade=grade, body=body, lesions=lesions, sessions=sessions,
        myocardium_fdg=myocardium, marrow_hu=max(90.0, 226.0 - 2.5 * (age - 30)),
        birth_date=dt.date(start.year - age, int(rng.integers(1, 13)), int(rng.integers(1, 29))),
    )
    if distant_sites and kind == "NET":
        from netpet.phantom.stages import apply_stage_design

        apply_stage_design(patient, seed)
    if reading_design:
        from netpet.phantom.reading import apply_grade_design

        apply_grade_design(patient, seed)
    if follow_up:
        from netpet.phantom.followup import add_follow_up

        add_follow_up(patient, seed, tracers, modalities, start)
    patient.description = describe(patient)
    return patient


def _number(lesions: List[Lesion], rng: np.random.Generator) -> None:
    """Lesion ids L01, L02... in a random order, so an id says nothing about the truth."""
    order = rng.permutation(len(lesions))
    for number, i in enumerate(order):
        lesions[i].lesion_id = f"L{number + 1:02d}"
    lesions.sort(key=lambda lesion: lesion.lesion_id)


def describe(patient: Patient) -> str:
    if patient.kind == "NET":
        head = f"NET work-up ({patient.grade})"
    elif patient.kind == "TIO":
        head = "tumour-induced osteomalacia work-up"
    else:
        head = "work-up without tumour"
    malignant = sum(lesion.malignant for lesion in patient.lesions)
    return f"{head}: {malignant} malignant, {len(patient.lesions) - malignant} benign findings"


def with_sessions(patient: Patient, seed: int, tracers: Sequence[str], modalities: Sequence[str], fdg: bool) -> Patient:
    """The patient with a different session plan (teaching cases)."""
    start = min(s.scan_start for s in patient.sessions).replace(hour=8, minute=0, second=0) if patient.sessions else \
        dt.datetime(2025, 1, 6, 8, 0)
    sessions = _sessions(seed, patient.index, _rng(seed, patient.index, 3), tracers, modalities, fdg, start,
                         patient.weight_kg)
    return replace(patient, sessions=sessions)
