"""Nodal stations and distant sites of the digital reference study: N and M categories by design.

With ``distant_sites`` (``netpet phantom --distant-sites``) each NET patient is given the N and M
category of the study's staging design (:data:`STAGE_DESIGN`, cycling over the NET patients of a
study as :data:`netpet.phantom.patients.PATIENT_KINDS` cycles over all patients), so that every
study of three or more NET patients has N0 and N1, and M1a, M1b and M1c; six or more also M0
(stage III and N0 M0). The categories follow :mod:`netpet.clinical.staging` (AJCC 8th edition:
M1a hepatic only, M1b extrahepatic only, M1c both; a node at a station that is not regional for
the primary is a distant node, M1b):

* the patient's own draws are kept (sizes, places, uptake of every lesion of
  :func:`netpet.phantom.patients.net_lesions`), except that the metastases the design excludes are
  left out (e.g. the liver metastases of an M1b patient, the regional nodes of an N0 patient);
* what the design needs and the patient lacks is added from the patient's own new random stream
  (``(seed, patient, 5)``): a regional node (station regional for the primary), liver metastases,
  and the design's extrahepatic distant sites: a distant node (left supraclavicular, the
  Virchow node, or mediastinal) and lung metastases;
* lesion ids are drawn again over the patient's lesions (L01, L02... in a random order).

Sites are given in the reference body (1.70 m; scaled per patient like every organ) and were placed
in the anatomy of :mod:`netpet.phantom.anatomy`: the lung sites inside the lungs (at least 20 mm from
the lung surface for the largest lung lesion), the supraclavicular node in the soft tissue of the
left supraclavicular fossa above the lung apex, the mediastinal node in the soft tissue between the lungs
above the heart (checked by ``Testing/core/test_phantom_followup.py`` on the rasterised body).

Uptake of the new lesions, as the other NET metastases of :func:`netpet.phantom.patients.net_lesions`:
the tumour/liver ratio of 68Ga-DOTATATE drawn by grade (lymph-node metastases mean SUVmax 12.6,
Kuyumcu S et al., Ann Nucl Med 2013); lung metastases of well-differentiated NETs express SSTR like
the other metastases and are drawn alike [from memory]; their apparent SUV is lowered only by the
partial-volume effect of their small size (6-16 mm) here, since breathing is not modelled. FDG by
grade (Zhang P et al., Contrast Media Mol Imaging 2018:2340389), over the lung's FDG background.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from netpet.clinical import staging
from netpet.phantom.patients import (
    _BONE, _NODES, FOLLOW_UP, PATIENT_KINDS, Lesion, Patient, _fdg_suv, _liver_point, _radii, _rng, _tl_ratio,
)

#: (N, M, extrahepatic distant sites to add) per NET patient, in the order of the NET patients of a study
STAGE_DESIGN: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    ("N1", "M1a", ()),
    ("N0", "M1b", ("distant node",)),
    ("N1", "M1c", ("lung",)),
    ("N0", "M0", ()),
    ("N1", "M0", ()),
    ("N0", "M1c", ("distant node", "lung")),
)

#: regional nodal stations added for an N1 design when the patient has no regional node (reference body, mm):
#: celiac and superior mesenteric (mesenteric root) for a pancreatic primary; mesenteric and superior mesenteric
#: for a small-bowel primary (AJCC 8th regional nodes, see netpet.clinical.staging.REGIONAL_STATIONS). The
#: generator's portocaval site lies within the liver outline of the body model, so it is not used for new nodes.
_SUPERIOR_MESENTERIC = (5.0, 0.0, -700.0)
REGIONAL_NODES: Dict[str, Dict[str, Tuple[float, float, float]]] = {
    "pancreas": {"celiac node": (30.0, 20.0, -640.0), "superior mesenteric node": _SUPERIOR_MESENTERIC},
    "small bowel": {"mesenteric node": _NODES["mesenteric node"], "superior mesenteric node": _SUPERIOR_MESENTERIC},
}
#: distant (non-regional) nodes for every GEP primary: supraclavicular (Virchow) and mediastinal
DISTANT_NODES: Dict[str, Tuple[float, float, float]] = {
    "left supraclavicular node": (45.0, 5.0, -298.0),
    "mediastinal node": (-5.0, -10.0, -425.0),
}
#: lung metastasis sites: the upper and lower lobes of both lungs
LUNG_SITES: Dict[str, Tuple[float, float, float]] = {
    "right upper lobe": (-80.0, 20.0, -400.0), "right lower lobe": (-88.0, 40.0, -505.0),
    "left upper lobe": (80.0, 15.0, -400.0), "left lower lobe": (92.0, 45.0, -505.0),
}
#: FDG uptake of the tissue around new lesions (anatomy: lung 0.5, soft tissue and fat about 0.8, liver 2.2)
FDG_BACKGROUND = {"lung": 0.5, "lymph nodes": 0.9, "liver": 2.2, "bone": 1.5}


def net_ordinal(index: int) -> int:
    """How many NET patients precede patient ``index`` in the study's kind cycle."""
    cycle = sum(kind == "NET" for kind in PATIENT_KINDS)
    whole, rest = divmod(index, len(PATIENT_KINDS))
    return whole * cycle + sum(kind == "NET" for kind in PATIENT_KINDS[:rest])


def lesion_role(lesion: Lesion, primary: str) -> str:
    """What a lesion is for staging (:mod:`netpet.clinical.staging`'s rules): ``benign``, ``primary``,
    ``regional node``, ``distant node``, ``hepatic`` or ``extrahepatic``."""
    if not lesion.malignant:
        return "benign"
    region = lesion.region.strip().lower()
    canonical = staging.primary_site(primary) if primary else None
    if region in staging.HEPATIC_REGIONS:
        return "hepatic"
    if region in staging.NODAL_REGIONS:
        station = staging.classify_node(lesion.site)
        if canonical is None or station is None:
            raise ValueError(f"node {lesion.lesion_id} ({lesion.site}) cannot be staged without a primary and station")
        return "regional node" if staging.node_is_regional(canonical, station) else "distant node"
    if canonical is not None and lesion.kind == "NET primary" and staging.primary_site(region) == canonical:
        return "primary"
    return "extrahepatic"


def _clear(center: Sequence[float], radius: float, lesions: Sequence[Lesion], gap: float = 5.0) -> bool:
    """Whether a sphere of ``radius`` at ``center`` keeps ``gap`` mm from every lesion."""
    return all(np.linalg.norm(np.asarray(center) - np.asarray(other.center)) > radius + max(other.radii) + gap
               for other in lesions)


def _node(rng: np.random.Generator, patient: Patient, site: str, reference_center, taken: Sequence[Lesion],
          diameter: Tuple[float, float]) -> Optional[Lesion]:
    size = float(rng.uniform(*diameter))
    radii = _radii(rng, size)
    center = patient.body.p(*reference_center)
    if not _clear(center, max(radii), taken):
        return None
    return Lesion("", "lymph node metastasis", "lymph nodes", site, center, radii, True, FOLLOW_UP, {}, hu=40.0,
                  t1_ms=1100.0)


def to_reference(patient: Patient, center: Sequence[float]) -> Tuple[float, float, float]:
    """A patient-frame point back in the reference body (the inverse of ``Body.p`` with organ scaling)."""
    body = patient.body
    return (center[0] / body.organ_w, center[1] / body.organ_w, center[2] / body.zf)


def new_liver_metastasis(rng: np.random.Generator, patient: Patient, taken: Sequence[Lesion],
                         diameter: float) -> Optional[Lesion]:
    """A liver metastasis of ``diameter`` mm placed as :func:`netpet.phantom.patients.net_lesions` places them
    (right lobe, clear of the liver reference sphere and of the liver lesions in ``taken``); None without room."""
    radii = _radii(rng, diameter)
    liver = [Lesion(o.lesion_id, o.kind, o.region, o.site, to_reference(patient, o.center), o.radii, o.malignant,
                    o.standard, {}) for o in taken if o.region == "liver"]
    point = _liver_point(rng, max(radii), liver)
    if point is None:
        return None
    center = patient.body.p(*point)
    if not _clear(center, max(radii), taken):
        return None
    return Lesion("", "liver metastasis", "liver", "liver", center, radii, True, FOLLOW_UP, {}, hu=38.0, t1_ms=1150.0)


def new_bone_metastasis(rng: np.random.Generator, patient: Patient, taken: Sequence[Lesion],
                        largest: float = 16.0) -> Optional[Lesion]:
    """A bone metastasis at a skeletal site of :func:`netpet.phantom.patients.net_lesions` not yet taken."""
    from netpet.phantom.patients import _BONE_MAX_RADIUS

    used = {lesion.site for lesion in taken}
    free = [site for site in _BONE if site not in used]
    for site in rng.permutation(free) if free else []:
        site = str(site)
        diameter = float(rng.uniform(6, min(largest, 2 * _BONE_MAX_RADIUS[site])))
        radii = _radii(rng, diameter)
        center = patient.body.p(*_BONE[site])
        if _clear(center, max(radii), taken):
            return Lesion("", "bone metastasis", "bone", site, center, radii, True, FOLLOW_UP, {}, in_bone=True,
                          hu=650.0, t1_ms=1200.0, petmr_bias=float(np.clip(rng.normal(0.13, 0.05), 0.05, 0.30)))
    return None


def set_uptake(rng: np.random.Generator, lesion: Lesion, grade: str, liver_suv: float = 6.8) -> None:
    """68Ga-DOTATATE and FDG uptake of a new NET lesion (as net_lesions draws them)."""
    lesion.suv["dotatate"] = round(liver_suv * _tl_ratio(rng, grade), 2)
    lesion.suv["fdg"] = round(_fdg_suv(rng, grade, FDG_BACKGROUND.get(lesion.region, 1.0)), 2)


def apply_stage_design(patient: Patient, seed: int) -> None:
    """Give a NET patient the N and M category of :data:`STAGE_DESIGN` (see the module docstring).

    Raises
    ------
    ValueError
        A patient without a NET primary (only NET patients are staged by design).
    """
    primary = patient.primary
    if not primary:
        raise ValueError(f"{patient.patient_id} has no NET primary: the staging design applies to NET patients")
    n_target, m_target, extra = STAGE_DESIGN[net_ordinal(patient.index) % len(STAGE_DESIGN)]
    rng = _rng(seed, patient.index, 5)
    drop = set()
    if n_target == "N0":
        drop.add("regional node")
    if m_target in ("M0", "M1b"):
        drop.add("hepatic")
    if m_target in ("M0", "M1a"):
        drop |= {"extrahepatic", "distant node"}
    lesions = [lesion for lesion in patient.lesions if lesion_role(lesion, primary) not in drop]
    added: List[Lesion] = []

    def present(role: str) -> bool:
        return any(lesion_role(lesion, primary) == role for lesion in lesions + added)

    if n_target == "N1" and not present("regional node"):
        # a node of 8-18 mm at a regional station with room; 5-8 mm where only a small one fits
        for sizes in ((8.0, 18.0), (5.0, 8.0)):
            for site in rng.permutation(list(REGIONAL_NODES[primary])):
                node = _node(rng, patient, str(site), REGIONAL_NODES[primary][str(site)], lesions + added, sizes)
                if node is not None:
                    added.append(node)
                    break
            if present("regional node"):
                break
    if m_target in ("M1a", "M1c") and not present("hepatic"):
        for attempt in range(int(rng.integers(1, 4)) + 5):
            if attempt >= 3 and present("hepatic"):
                break
            diameter = float(np.clip(rng.lognormal(np.log(14), 0.45), 6, 30))
            liver = new_liver_metastasis(rng, patient, lesions + added, diameter)
            if liver is not None:
                added.append(liver)
    if "distant node" in extra:
        for site in rng.permutation(list(DISTANT_NODES)):
            node = _node(rng, patient, str(site), DISTANT_NODES[str(site)], lesions + added, (8.0, 18.0))
            if node is not None:
                added.append(node)
                break
    if "lung" in extra:
        for site in rng.permutation(list(LUNG_SITES))[: int(rng.integers(1, 3))]:
            size = float(rng.uniform(6, 16))
            radii = _radii(rng, size)
            center = patient.body.p(*LUNG_SITES[str(site)])
            if _clear(center, max(radii), lesions + added):
                added.append(Lesion("", "lung metastasis", "lung", str(site), center, radii, True, FOLLOW_UP, {},
                                    hu=40.0, t1_ms=1100.0))
    if m_target in ("M1b", "M1c") and not (present("extrahepatic") or present("distant node")):
        bone = new_bone_metastasis(rng, patient, lesions + added)  # the design's sites had no room
        if bone is not None:
            added.append(bone)
    for lesion in added:
        set_uptake(rng, lesion, patient.grade or "G1")
    n, m, _ = stage_of(lesions + added, primary)
    if (n, m) != (n_target, m_target):
        raise RuntimeError(f"{patient.patient_id}: the staging design {n_target} {m_target} could not be placed "
                           f"(got {n} {m}); report this seed")
    lesions += added
    order = rng.permutation(len(lesions))
    for number, i in enumerate(order):
        lesions[i].lesion_id = f"L{number + 1:02d}"
    lesions.sort(key=lambda lesion: lesion.lesion_id)
    patient.lesions = lesions


def stage_of(lesions: Sequence[Lesion], primary: str) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(N, M, stage group) of a patient's truth lesions (call = truth) by :func:`netpet.clinical.staging.stage_patient`."""
    findings = [{"region": lesion.region, "site": lesion.site, "call": int(lesion.malignant)} for lesion in lesions]
    result = staging.stage_patient(findings, primary or None)
    return result["n"], result["m"], staging.stage_group(result["n"], result["m"])
