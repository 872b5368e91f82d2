"""Write the digital reference study: DICOM per session, truth tables and masks, previews.

Layout under the output folder::

    dicom/<patient>/<session>/PET/IMnnnn      PET (BQML, START) of the session
    dicom/<patient>/<session>/CT|MR/IMnnnn    its anatomical partner, same frame of reference
    truth/<patient>/<session>_lesions.seg.nrrd  one segment per lesion, in the PET's geometry
    truth/lesions.csv                         one row per lesion and session (+ time_point with follow-up)
    truth/sessions.csv                        the patient's pose per session (netpet.phantom.poses)
    truth/staging.csv                         N, M and stage group per patient and time point
    truth/netpet_scores.csv                   the expected NETPET grade per patient (netpet.phantom.reading)
    truth/readers.csv                         two simulated readers' call and confidence (netpet.phantom.readers)
    truth/follow_up.csv                       with follow-up: what changed per lesion (netpet.phantom.followup)
    truth/truth.json                          everything: study, patients, sessions, lesions
    reference_standard.csv                    patient_id, lesion_id, region, truth, standard, site, primary,
                                              location (first session), time_point, indication, culprit,
                                              sstr_expression, fdg_avid, fdg_only
    reference_locations.csv                   every lesion's location in every session that shows it
    preview/<patient>_<session>.png           with --preview
    README.txt                                what the study is and how it was made

The study is a deterministic function of its parameters: the same seed gives the same bytes
(UIDs are derived from the seed), however many processes write it. ``distant_sites`` (the staging
design, :mod:`netpet.phantom.stages`), ``follow_up`` (time point FU1, :mod:`netpet.phantom.followup`) and
``reading_design`` (NETPET grades P0-P5, FDG-only lesions, TIO decoys: :mod:`netpet.phantom.reading`) are off by
default; without them the DICOM, masks, truth/lesions.csv and truth.json are those of earlier versions byte for
byte (the new files are added, reference_standard.csv gains columns).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from netpet import __version__
from netpet.dicom import radionuclides, writer
from netpet.dicom.files import default_jobs, process_context
from netpet.geometry import lps_to_ras
from netpet.phantom import reading, readers, render
from netpet.phantom.patients import BASELINE, FOLLOW_UP, MODALITIES, TRACERS, Patient, Session, make_patient
from netpet.phantom.poses import SESSION_COLUMNS, pose_row
from netpet.progress import ProgressCallback, report

log = logging.getLogger(__name__)

NUCLIDE = {"dotatate": "Ga-68", "fdg": "F-18"}
AGENT = {"dotatate": ("Ga68-DOTATATE", ("SCT", "724025002", "Dotatate Ga^68^")),
         "fdg": ("Fludeoxyglucose F^18^", ("SCT", "35321007", "Fluorodeoxyglucose F^18^"))}
LESION_COLUMNS = [
    "patient_id", "session_id", "tracer", "modality", "lesion_id", "kind", "region", "site", "malignant",
    "standard", "diameter_mm", "volume_ml", "in_bone", "center_r", "center_a", "center_s", "suv_max_true",
    "suv_mean_true", "suv_max_expected", "suv_mean_expected", "background_suv", "avid", "liver_suv", "spleen_suv",
    "tl_ratio_true", "above_liver", "petmr_bias", "mask_voxels", "segmentation_file",
]
#: truth/lesions.csv of a study with follow-up: the same, and the session's time point
LESION_COLUMNS_FOLLOW_UP = LESION_COLUMNS + ["time_point"]
REFERENCE_COLUMNS = ["patient_id", "lesion_id", "region", "truth", "standard", "site", "primary", "location_session",
                     "center_r", "center_a", "center_s", "diameter_mm", "time_point", "indication", "culprit",
                     "sstr_expression", "fdg_avid", "fdg_only"]
LOCATION_COLUMNS = ["patient_id", "lesion_id", "session_id", "center_r", "center_a", "center_s", "diameter_mm"]
STAGING_COLUMNS = ["patient_id", "time_point", "primary", "n", "m", "stage_group"]
#: A lesion is called avid for a tracer when its uptake is at least this multiple of the
#: uptake of the tissue it sits in.
AVIDITY_CONTRAST = 1.5


@dataclass
class StudyParameters:
    patients: int
    seed: int
    tracers: Sequence[str] = TRACERS
    modalities: Sequence[str] = MODALITIES
    preview: bool = False
    case: Optional[str] = None
    #: NET patients get the nodal and distant sites of the staging design (netpet.phantom.stages)
    distant_sites: bool = False
    #: NET and TIO patients get a follow-up time point FU1 (netpet.phantom.followup)
    follow_up: bool = False
    #: NETPET grades by design, FDG-only lesions and TIO decoys (netpet.phantom.reading)
    reading_design: bool = False


@dataclass
class PatientResult:
    """What writing one patient produced (picklable, returned by worker processes)."""

    patient_id: str
    summary: Dict[str, Any]
    lesion_rows: List[Dict[str, Any]] = field(default_factory=list)
    reference_rows: List[Dict[str, Any]] = field(default_factory=list)
    location_rows: List[Dict[str, Any]] = field(default_factory=list)
    session_rows: List[Dict[str, Any]] = field(default_factory=list)
    staging_rows: List[Dict[str, Any]] = field(default_factory=list)
    change_rows: List[Dict[str, Any]] = field(default_factory=list)
    score_rows: List[Dict[str, Any]] = field(default_factory=list)
    reader_rows: List[Dict[str, Any]] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def _uid(seed: int, *keys: Any) -> str:
    return writer.deterministic_uid("netpet-phantom", seed, *keys)


def _beds(grid: render.ScanGrid, bed_mm: float) -> List[int]:
    """Bed position of each slice: beds of ``bed_mm`` with 25 % overlap, from the head down."""
    step = bed_mm * 0.75
    top = grid.origin[2] + (grid.size[2] - 1) * grid.spacing[2]
    return [int((top - (grid.origin[2] + k * grid.spacing[2])) // step) for k in range(grid.size[2])]


def _vendor_private(datasets, session: Session) -> None:
    """Vendor-like private attributes carrying the decay reference (see netpet.dicom.suv)."""
    stamp = session.scan_start.strftime("%Y%m%d%H%M%S.000000")
    for ds in datasets:
        if session.scanner.manufacturer == "SIEMENS":
            block = ds.private_block(0x0071, "SIEMENS MED PT", create=True)
            block.add_new(0x22, "DT", stamp)
        elif session.scanner.manufacturer.startswith("GE"):
            block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
            block.add_new(0x0D, "DT", stamp)


def _seg_file(path: str, masks: Dict[str, np.ndarray], patient: Patient, grid: render.ScanGrid) -> None:
    """Write lesion masks as a Slicer segmentation (one segment per lesion, named by its id)."""
    import slicerio

    ijk_to_lps = np.eye(4)
    ijk_to_lps[0, 0], ijk_to_lps[1, 1], ijk_to_lps[2, 2] = grid.spacing
    ijk_to_lps[:3, 3] = grid.origin
    by_id = {lesion.lesion_id: lesion for lesion in patient.lesions}
    layers: List[np.ndarray] = []
    segments = []
    for lesion_id, mask in masks.items():
        zyx = np.nonzero(mask)
        # a lesion touching an earlier one goes to a new layer, as Slicer stores overlapping segments
        layer = next((i for i, lab in enumerate(layers) if not lab[zyx].any()), None)
        if layer is None:
            layers.append(np.zeros(mask.shape, dtype=np.uint8))
            layer = len(layers) - 1
        label = int(layers[layer].max()) + 1
        layers[layer][zyx] = label
        lesion = by_id[lesion_id]
        extent = [int(v) for axis in (2, 1, 0) for v in (zyx[axis].min(), zyx[axis].max())] if len(zyx[0]) else [0, -1] * 3
        segments.append({"id": lesion_id, "name": lesion_id, "labelValue": label, "layer": layer, "extent": extent,
                         "color": (0.9, 0.2, 0.2) if lesion.malignant else (0.2, 0.7, 0.3)})
    if not layers:
        layers.append(np.zeros((grid.size[2], grid.size[1], grid.size[0]), dtype=np.uint8))
    voxels = np.stack([np.transpose(lab, (2, 1, 0)) for lab in layers]) if len(layers) > 1 else np.transpose(layers[0], (2, 1, 0))
    segmentation = {"voxels": voxels, "ijkToLPS": ijk_to_lps, "segments": segments,
                    "containedRepresentationNames": ["Binary labelmap"], "masterRepresentation": "Binary labelmap",
                    "referenceImageExtentOffset": [0, 0, 0]}
    slicerio.write_segmentation(path, segmentation)
    _drop_timestamp(path)


def _drop_timestamp(path: str) -> None:
    """pynrrd writes the current time as a header comment; remove it so the file depends on its
    content only (the header is text up to the first empty line; comments carry no data)."""
    with open(path, "rb") as handle:
        data = handle.read()
    end = data.index(b"\n\n")
    lines = [line for line in data[:end].split(b"\n") if not line.startswith(b"# on ")]
    with open(path, "wb") as handle:
        handle.write(b"\n".join(lines) + data[end:])


def _session(model: render.Model, session: Session, seed: int, out: str, preview: bool,
             result: PatientResult, follow_up: bool = False, quiz: bool = False) -> Dict[str, Any]:
    patient = model.patient
    scanner = session.scanner
    uid = lambda key: _uid(seed, patient.patient_id, session.session_id, key)  # noqa: E731
    nuclide = radionuclides.by_name(NUCLIDE[session.tracer])
    pet_grid = render.scan_grid(patient, session, scanner.pet_spacing, scanner.pet_matrix)
    anat_grid = render.scan_grid(patient, session, scanner.anatomy_spacing, scanner.anatomy_matrix)
    person = writer.PatientInfo(patient.patient_id, f"Synthetic^{patient.patient_id}", patient.sex,
                                patient.birth_date, patient.weight_kg, patient.height_m)
    study = writer.StudyInfo(uid("study"), session.injection - dt.timedelta(minutes=10),
                             f"{AGENT[session.tracer][0]} {session.modality}", f"A{seed % 1000:03d}{patient.index:03d}"
                             f"{session.session_id[1]}", session.session_id[:2])
    frame_of_reference = uid("frame-of-reference")
    folder = os.path.join(out, "dicom", patient.patient_id, session.session_id)

    suv, clean = render.pet_suv(model, session, pet_grid)
    activity = suv * (render.decayed_dose_bq(session, nuclide.half_life_s) / (patient.weight_kg * 1000.0))
    pet_series = writer.SeriesInfo(uid("pet-series"), frame_of_reference, 3,
                                   f"PET WB {AGENT[session.tracer][0]} AC", session.scan_start,
                                   scanner.manufacturer, scanner.model, station=scanner.key.upper(),
                                   body_part="WHOLEBODY")
    acquisition = writer.PetAcquisition(
        injection=session.injection, dose_bq=session.dose_bq, nuclide=nuclide, agent_text=AGENT[session.tracer][0],
        agent_code=AGENT[session.tracer][1], frame_duration_s=scanner.frame_s, bed_of_slice=_beds(pet_grid, scanner.bed_mm),
        attenuation_method="MR Dixon 4-class" if scanner.anatomy == "MR" else "CT-based",
    )
    pet_geometry = writer.VolumeGeometry(pet_grid.origin, pet_grid.spacing)
    datasets = writer.pet_datasets(activity, pet_geometry, person, study, pet_series, acquisition, uid)
    _vendor_private(datasets, session)
    paths = writer.save_datasets(datasets, os.path.join(folder, "PET"))
    del activity
    anat_geometry = writer.VolumeGeometry(anat_grid.origin, anat_grid.spacing)
    anat_series = writer.SeriesInfo(uid("anatomy-series"), frame_of_reference, 2,
                                    "CT WB low dose AC" if scanner.anatomy == "CT" else "MR Dixon in-phase WB",
                                    session.scan_start - dt.timedelta(minutes=3), scanner.manufacturer, scanner.model,
                                    station=scanner.key.upper(), body_part="WHOLEBODY")
    if scanner.anatomy == "CT":
        anatomy_image = render.ct_hu(model, session, anat_grid)
        anat = writer.ct_datasets(anatomy_image, anat_geometry, person, study, anat_series, uid)
    else:
        anatomy_image = render.mr_signal(model, session, anat_grid)
        anat = writer.mr_datasets(anatomy_image, anat_geometry, person, study, anat_series, uid)
    paths += writer.save_datasets(anat, os.path.join(folder, scanner.anatomy))
    result.files += len(paths)
    result.bytes += sum(os.path.getsize(p) for p in paths)

    liver = render.organ_reference(session, "liver")
    spleen = render.organ_reference(session, "spleen")
    masks: Dict[str, np.ndarray] = {}
    seg_rel = os.path.join("truth", patient.patient_id, f"{session.session_id}_lesions.seg.nrrd")
    for lesion in patient.lesions:
        if not render.in_field_of_view(patient, session, lesion, pet_grid):
            continue
        mask = render.lesion_mask(patient, session, lesion, pet_grid)
        masks[lesion.lesion_id] = mask
        center = lps_to_ras(render.to_scanner(patient, session, lesion.center))
        suvs = render.expected_suv(lesion, session)
        background = render.background_suv(model, session, lesion)
        result.lesion_rows.append({
            "patient_id": patient.patient_id, "session_id": session.session_id, "tracer": session.tracer,
            "modality": session.modality, "lesion_id": lesion.lesion_id, "kind": lesion.kind, "region": lesion.region,
            "site": lesion.site, "malignant": int(lesion.malignant), "standard": lesion.standard,
            "diameter_mm": round(lesion.diameter_mm, 2), "volume_ml": round(lesion.shape().volume_ml, 4),
            "in_bone": int(lesion.in_bone), "center_r": round(center[0], 2), "center_a": round(center[1], 2),
            "center_s": round(center[2], 2), **suvs, "background_suv": round(background, 4),
            # avid: at least 1.5 x the uptake of the tissue around it (a visible focus)
            "avid": int(suvs["suv_max_expected"] >= AVIDITY_CONTRAST * background), "liver_suv": liver, "spleen_suv": spleen,
            "tl_ratio_true": round(suvs["suv_max_expected"] / liver, 4),
            "above_liver": int(suvs["suv_max_expected"] > liver),
            "petmr_bias": round(lesion.petmr_bias if session.modality == "PET/MR" else 0.0, 4),
            "mask_voxels": int(mask.sum()), "segmentation_file": seg_rel.replace(os.sep, "/"),
            "time_point": session.time_point,
        })
    os.makedirs(os.path.join(out, "truth", patient.patient_id), exist_ok=True)
    _seg_file(os.path.join(out, seg_rel), masks, patient, pet_grid)
    if preview:
        from netpet.phantom.preview import session_preview

        name = f"{patient.patient_id}_{session.session_id}.png"
        session_preview(os.path.join(out, "preview", name), suv, anatomy_image, pet_grid, anat_grid, masks, session,
                        patient)
        if quiz:  # teaching cases: the same images without the truth (no contours, no description)
            session_preview(os.path.join(out, "preview", "quiz", name), suv, anatomy_image, pet_grid, anat_grid, masks,
                            session, patient, truth=False)
    timing = {"time_point": session.time_point, "days_from_baseline": session.days_from_baseline} if follow_up else {}
    return {
        "session_id": session.session_id, "tracer": session.tracer, "modality": session.modality, **timing,
        "scanner": {"manufacturer": scanner.manufacturer, "model": scanner.model, "pet_voxel_mm": scanner.pet_spacing,
                    "fwhm_mm": round(session.fwhm_mm, 2), "anatomy": scanner.anatomy,
                    "anatomy_voxel_mm": scanner.anatomy_spacing},
        "scan_start": session.scan_start.isoformat(), "injection": session.injection.isoformat(),
        "uptake_min": round((session.scan_start - session.injection).total_seconds() / 60.0, 2),
        "dose_mbq": round(session.dose_bq / 1e6, 3), "position_rotation_deg": session.rotation_deg,
        "position_shift_mm": session.shift_mm, "pet_series_uid": pet_series.series_uid,
        "anatomy_series_uid": anat_series.series_uid, "frame_of_reference_uid": frame_of_reference,
        "liver_suv": liver, "spleen_suv": spleen, "bladder_suv": round(session.bladder_suv, 3),
        # centres of reference regions that fit the organ (PERCIST: 3 cm sphere in the right liver lobe)
        "liver_reference_center_ras": [round(v, 2) for v in lps_to_ras(render.to_scanner(
            patient, session, patient.body.p(*render.LIVER_REFERENCE_CENTER)))],
        "spleen_reference_center_ras": [round(v, 2) for v in lps_to_ras(render.to_scanner(
            patient, session, patient.body.p(*render.SPLEEN_REFERENCE_CENTER)))],
        "segmentation_file": seg_rel.replace(os.sep, "/"),
    }


def render_patient(patient: Patient, seed: int, out: str, preview: bool, follow_up: bool = False,
                   extended: bool = False, reading_design: bool = False, quiz: bool = False) -> PatientResult:
    """Model, image and write one patient's sessions (runs in a worker process).

    ``follow_up``: the study has time points (time_point columns and fields); ``extended``: the
    study uses a new option (distant sites or follow-up), so truth.json carries the patient's
    primary, staging and follow-up; ``reading_design``: the study uses the reading design (truth.json
    carries the patient's indication and designed NETPET grade); ``quiz``: with ``preview``, also write
    previews without the truth under ``preview/quiz/`` (teaching cases).
    """
    result = render_sessions(patient, range(len(patient.sessions)), seed, out, preview, follow_up, quiz)
    return finish_patient(patient, result, seed, follow_up, extended, reading_design)


def render_sessions(patient: Patient, indices: Sequence[int], seed: int, out: str, preview: bool,
                    follow_up: bool = False, quiz: bool = False) -> PatientResult:
    """Model, image and write the sessions ``indices`` (positions in ``patient.sessions``) of one patient: their
    files, truth lesion rows and session summaries (``summary["sessions"]``), in that order. Each session depends on
    the patient and its own seed only, so its sessions can be written in any order or process (the same bytes)."""
    baseline = render.build_model(patient)
    models = {BASELINE: baseline}
    result = PatientResult(patient.patient_id, {"sessions": []})
    for index in indices:
        session = patient.sessions[index]
        if session.time_point not in models:
            models[session.time_point] = render.with_lesions(
                baseline, replace(patient, lesions=patient.lesions_at(session.time_point)))
        result.summary["sessions"].append(_session(models[session.time_point], session, seed, out, preview, result,
                                                   follow_up, quiz))
    return result


def merge_sessions(patient_id: str, parts: Sequence[PatientResult]) -> PatientResult:
    """The results of :func:`render_sessions` of one patient's sessions, given in session order, as one."""
    result = PatientResult(patient_id, {"sessions": [s for part in parts for s in part.summary["sessions"]]})
    for part in parts:
        result.lesion_rows += part.lesion_rows
        result.files += part.files
        result.bytes += part.bytes
    return result


def finish_patient(patient: Patient, result: PatientResult, seed: int, follow_up: bool = False,
                   extended: bool = False, reading_design: bool = False) -> PatientResult:
    """The patient's summary and truth tables from its written sessions (``result``: :func:`render_sessions` of all
    of them); ``follow_up``, ``extended``, ``reading_design`` as :func:`render_patient`'s."""
    sessions = result.summary["sessions"]
    result.summary = {
        "patient_id": patient.patient_id, "kind": patient.kind, "description": patient.description,
        "sex": patient.sex, "age": patient.age, "height_m": patient.height_m, "weight_kg": patient.weight_kg,
        "grade": patient.grade, "whole_body": patient.body.whole_body, "myocardium_fdg_suv": round(patient.myocardium_fdg, 3),
        "sessions": sessions,
        "lesions": [_lesion_summary(lesion) for lesion in patient.lesions],
    }
    result.reference_rows = reference_rows(patient, result.lesion_rows, follow_up)
    result.location_rows = [{k: row[k] for k in LOCATION_COLUMNS} for row in result.lesion_rows]
    result.session_rows = [pose_row(patient, session) for session in patient.sessions]
    result.staging_rows = staging_rows(patient)
    result.change_rows = [row for point in patient.follow_up.values() for row in point.changes]
    result.score_rows = reading.score_rows(patient, reading_design)
    result.reader_rows = readers.read(patient, seed, _read_pairs(patient, result.lesion_rows))
    if extended:
        result.summary["primary"] = patient.primary
        result.summary["staging"] = result.staging_rows
        result.summary["follow_up"] = [
            {"time_point": point.time_point, "days_from_baseline": point.days_from_baseline,
             "scenario": point.scenario, "lesions": [_lesion_summary(lesion) for lesion in point.lesions],
             "changes": point.changes} for point in patient.follow_up.values()]
    if reading_design:
        result.summary["indication"] = reading.indication_of(patient)
        result.summary["netpet_grade"] = {k: result.score_rows[0][k] for k in ("designed_grade", "netpet_grade",
                                                                                 "deciding_lesion")}
    return result


def _read_pairs(patient: Patient, lesion_rows: Sequence[Dict[str, Any]]):
    """(session, lesion) of every truth row (a lesion in a session's field of view), in the rows' order."""
    sessions = {session.session_id: session for session in patient.sessions}
    pairs = []
    for row in lesion_rows:
        session = sessions[row["session_id"]]
        lesion = next(les for les in patient.lesions_at(session.time_point) if les.lesion_id == row["lesion_id"])
        pairs.append((session, lesion))
    return pairs


def _lesion_summary(lesion) -> Dict[str, Any]:
    return {"lesion_id": lesion.lesion_id, "kind": lesion.kind, "region": lesion.region, "site": lesion.site,
            "malignant": lesion.malignant, "standard": lesion.standard,
            "diameter_mm": round(lesion.diameter_mm, 2), "body_frame_center_mm": [round(v, 2) for v in lesion.center],
            "radii_mm": [round(v, 2) for v in lesion.radii], "suv_object": lesion.suv,
            "necrosis_fraction": lesion.necrosis, "in_bone": lesion.in_bone,
            "petmr_bias": lesion.petmr_bias}


def reference_rows(patient: Patient, lesion_rows: Sequence[Dict[str, Any]] = (), follow_up: bool = False
                   ) -> List[Dict[str, Any]]:
    """The patient's rows of the reference-standard table (the format StudyStats reads).

    One row per finding, or, for a patient without any finding, one row with an empty lesion_id
    and truth 0. ``site`` is the lesion's site (a nodal station for nodes), ``primary`` the
    patient's primary (constant; "TIO" for TIO, to which GEP-NET staging does not apply; "" for lesion-free
    work-ups); the location columns give
    the lesion's centre (RAS, mm) and diameter in the first session of ``lesion_rows`` (the
    truth/lesions.csv rows of the patient, in session order) that shows it, empty without one.
    With ``follow_up`` there is one row per lesion and time point at which it is present (a lesion
    new at FU1 has only its FU1 row, one that disappeared only its baseline row; a time point
    without any lesion has the patient row), ``time_point`` naming it; without, ``time_point`` is
    empty (every time point). ``indication``, ``culprit``, ``sstr_expression``, ``fdg_avid`` and ``fdg_only``:
    :mod:`netpet.phantom.reading` (the uptake columns empty on a patient row; ``fdg_avid`` and ``fdg_only``
    empty at a follow-up time point, which has no FDG scan).
    """
    first: Dict[str, Dict[str, Any]] = {}
    for row in lesion_rows:
        first.setdefault(row["lesion_id"], row)
    # TIO: "TIO" (a primary staging does not apply to, netpet.clinical.staging.NOT_APPLICABLE_PRIMARIES): an empty
    # primary would be staged as an unknown primary, its culprit in a bone read as M1b
    primary = "TIO" if patient.kind == "TIO" else patient.primary
    indication = reading.indication_of(patient)
    rows = []
    for time_point in (patient.time_points if follow_up else [""]):
        lesions = patient.lesions_at(time_point)
        # FDG is imaged at baseline only (a follow-up time point is a 68Ga-DOTATATE PET/CT): empty after it
        fdg_columns = (lambda lesion: {"fdg_avid": reading.fdg_avid(lesion), "fdg_only": reading.fdg_only(lesion)}) \
            if time_point in ("", BASELINE) else (lambda lesion: {"fdg_avid": "", "fdg_only": ""})
        if not lesions:
            rows.append({"patient_id": patient.patient_id, "lesion_id": "", "region": "", "truth": 0,
                         "standard": FOLLOW_UP, "site": "", "primary": primary, "location_session": "",
                         "center_r": "", "center_a": "", "center_s": "", "diameter_mm": "", "time_point": time_point,
                         "indication": indication, "culprit": 0, "sstr_expression": "", "fdg_avid": "",
                         "fdg_only": ""})
        for lesion in lesions:
            seen = first.get(lesion.lesion_id)
            location = {"location_session": seen["session_id"], **{k: seen[k] for k in
                                                                      ("center_r", "center_a", "center_s", "diameter_mm")}} \
                if seen else {k: "" for k in ("location_session", "center_r", "center_a", "center_s", "diameter_mm")}
            rows.append({"patient_id": patient.patient_id, "lesion_id": lesion.lesion_id, "region": lesion.region,
                         "truth": int(lesion.malignant), "standard": lesion.standard, "site": lesion.site,
                         "primary": primary, **location, "time_point": time_point, "indication": indication,
                         "culprit": reading.culprit(lesion), "sstr_expression": reading.sstr_expression(lesion),
                         **fdg_columns(lesion)})
    return rows


def staging_rows(patient: Patient) -> List[Dict[str, Any]]:
    """truth/staging.csv rows of a patient: N, M and stage group per time point from its truth lesions
    (call = truth) by :func:`netpet.clinical.staging.stage_patients`. TIO work-ups are not staged (the
    culprit is no GEP-NET): their N, M and stage group are empty, as is the primary of TIO and
    lesion-free work-ups (staged N0 M0 when lesion-free or with benign findings only)."""
    import pandas as pd

    from netpet.clinical.staging import stage_patients

    rows = []
    for time_point in patient.time_points:
        if patient.kind == "TIO":
            rows.append({"patient_id": patient.patient_id, "time_point": time_point, "primary": "", "n": "", "m": "",
                         "stage_group": ""})
            continue
        findings = pd.DataFrame([{"patient_id": patient.patient_id, "region": lesion.region, "site": lesion.site,
                                  "call": int(lesion.malignant)} for lesion in patient.lesions_at(time_point)],
                                columns=["patient_id", "region", "site", "call"])
        staged = stage_patients(findings, {patient.patient_id: patient.primary}, read=[patient.patient_id]).iloc[0]
        rows.append({"patient_id": patient.patient_id, "time_point": time_point, "primary": staged["primary"] or "",
                     "n": staged["n"] or "", "m": staged["m"] or "", "stage_group": staged["stage_group"] or ""})
    return rows


def _work(job) -> PatientResult:  # pragma: no cover - runs in worker processes
    return render_sessions(*job)


def _one_thread() -> None:  # pragma: no cover - runs in worker processes
    """Sessions run in parallel processes: each keeps to one ITK thread (no oversubscription)."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def _cost(patient: Patient) -> float:
    return len(patient.sessions) * (1.6 if patient.body.whole_body else 1.0)


def generate(out: str, patients: Sequence[Patient], parameters: StudyParameters, jobs: Optional[int] = None,
             progress: Optional[ProgressCallback] = None, extra_readme: str = "") -> Dict[str, Any]:
    """Write the given patients as the study under ``out``; return the study summary."""
    os.makedirs(out, exist_ok=True)
    jobs = default_jobs() if jobs is None else max(1, jobs)
    order = sorted(patients, key=_cost, reverse=True)
    results: Dict[str, PatientResult] = {}
    report(progress, 0.0, f"Writing {len(patients)} synthetic patients")
    extended = parameters.follow_up or parameters.distant_sites
    quiz = parameters.case is not None
    # the work units are sessions (a patient's 3-4 sessions would leave a worker idle at the end), the costliest
    # patients' first; each patient's summary and truth tables are made here from its sessions, in session order
    work = [(p, [i], parameters.seed, out, parameters.preview, parameters.follow_up, quiz)
            for p in order for i in range(len(p.sessions))]
    if jobs == 1 or len(work) == 1:
        parts = []
        for i, job in enumerate(work):
            parts.append(render_sessions(*job))
            report(progress, (i + 1) / len(work), f"Wrote {job[0].patient_id} {job[0].sessions[job[1][0]].session_id}")
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=process_context(),
                                 initializer=_one_thread) as pool:
            parts = []
            for i, (job, part) in enumerate(zip(work, pool.map(_work, work))):
                parts.append(part)
                report(progress, (i + 1) / len(work), f"Wrote {job[0].patient_id} {job[0].sessions[job[1][0]].session_id}")
    for patient in order:
        mine = [part for job, part in zip(work, parts) if job[0] is patient]
        results[patient.patient_id] = finish_patient(patient, merge_sessions(patient.patient_id, mine), parameters.seed,
                                                     parameters.follow_up, extended, parameters.reading_design)
    ordered = [results[p.patient_id] for p in patients]
    _write_tables(out, ordered, parameters.follow_up)
    options = {k: True for k in ("distant_sites", "follow_up", "reading_design") if getattr(parameters, k)}
    summary = {
        "netpet_version": __version__,
        "parameters": {"patients": parameters.patients, "seed": parameters.seed, "tracers": list(parameters.tracers),
                       "modalities": list(parameters.modalities), "case": parameters.case, **options},
        "files": sum(r.files for r in ordered), "bytes": sum(r.bytes for r in ordered),
        "patients": [r.summary for r in ordered],
    }
    with open(os.path.join(out, "truth", "truth.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1, default=str)
    _readme(out, summary, extra_readme, parameters.follow_up)
    return summary


def _csv(path: str, columns: Sequence[str], rows: Sequence[Dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer_ = csv.DictWriter(handle, list(columns), lineterminator="\n", extrasaction="ignore")
        writer_.writeheader()
        writer_.writerows(rows)


def _write_tables(out: str, results: Sequence[PatientResult], follow_up: bool = False) -> None:
    os.makedirs(os.path.join(out, "truth"), exist_ok=True)
    rows = lambda name: [row for result in results for row in getattr(result, name)]  # noqa: E731
    _csv(os.path.join(out, "truth", "lesions.csv"), LESION_COLUMNS_FOLLOW_UP if follow_up else LESION_COLUMNS,
         rows("lesion_rows"))
    _csv(os.path.join(out, "reference_standard.csv"), REFERENCE_COLUMNS, rows("reference_rows"))
    _csv(os.path.join(out, "reference_locations.csv"), LOCATION_COLUMNS, rows("location_rows"))
    _csv(os.path.join(out, "truth", "sessions.csv"), SESSION_COLUMNS, rows("session_rows"))
    _csv(os.path.join(out, "truth", "staging.csv"), STAGING_COLUMNS, rows("staging_rows"))
    if follow_up:
        from netpet.phantom.followup import CHANGE_COLUMNS

        _csv(os.path.join(out, "truth", "follow_up.csv"), CHANGE_COLUMNS, rows("change_rows"))
    _csv(os.path.join(out, "truth", "netpet_scores.csv"), reading.SCORE_COLUMNS, rows("score_rows"))
    _csv(os.path.join(out, "truth", "readers.csv"), readers.READER_COLUMNS, rows("reader_rows"))


def _readme(out: str, summary: Dict[str, Any], extra: str, follow_up: bool = False) -> None:
    p = summary["parameters"]
    options = [name for name, on in (("distant sites (staging design)", p.get("distant_sites")),
                                     ("follow-up time point FU1", p.get("follow_up")),
                                     ("reading design (NETPET grades, FDG-only lesions, TIO decoys)",
                                      p.get("reading_design"))) if on]
    lines = [
        "NETPET digital reference study",
        "==============================",
        "",
        f"Synthetic patients with known truth, written by netpet {summary['netpet_version']}"
        f" (seed {p['seed']}, {len(summary['patients'])} patients, tracers {', '.join(p['tracers'])},"
        f" modalities {', '.join(p['modalities'])}{'; ' + ', '.join(options) if options else ''})."
        " Not real patients: every name, date and value is made up.",
        "",
        "dicom/              PET with its CT or MR per patient and session (same frame of reference)",
        "truth/lesions.csv   one row per lesion and session: location (RAS, mm), size, region, truth, true SUVs"
        + ("; time_point: the session's time point" if follow_up else ""),
        "truth/truth.json    study parameters, patients, sessions (times, dose, position), lesions",
        "truth/<patient>/    lesion masks per session as Slicer segmentations (.seg.nrrd, PET geometry)",
        "reference_standard.csv  the reference standard table StudyStats reads",
        "reference_locations.csv every lesion's location in every session that shows it",
        "truth/sessions.csv  the patient's pose per session (the movement registration must recover)",
        "truth/staging.csv   N, M and stage group of every patient per time point (the staging truth)",
        "truth/netpet_scores.csv  the expected NETPET grade (P0-P5) of every patient from the true uptake",
        "truth/readers.csv   two simulated readers' visual call, confidence and anatomic correlate per lesion"
        " and session",
    ]
    if follow_up:
        lines.append("truth/follow_up.csv what changed per lesion from baseline to FU1 (scenario, factors, status)")
    lines += [
        "",
        "reference_standard.csv columns",
        "  patient_id, lesion_id, region, truth (1 malignant, 0 benign), standard (histopathology or follow-up)",
        "  site: the lesion's site; for lymph nodes the nodal station (netpet.clinical.staging.STATION_SYNONYMS)",
        "  primary: the patient's primary site (pancreas, small bowel); TIO for TIO work-ups (not staged: the culprit",
        "    is no GEP-NET), empty for work-ups without tumour",
        "  location_session, center_r, center_a, center_s (RAS mm), diameter_mm: the lesion in the first session",
        "    of the patient that shows it (the other sessions: reference_locations.csv or registration)",
        "  time_point: " + ("the time point the row's truth applies to (baseline, FU1): a lesion present at both"
                            " has two rows, a new lesion only its FU1 row, a disappeared (or resected) lesion only"
                            " its baseline row; a time point without any lesion has the patient row (empty"
                            " lesion_id, truth 0)" if follow_up else "empty: the truth applies to every time point"),
        "  A patient without any finding has one row with empty lesion_id and region, truth 0.",
        "  indication: the patient's (the same on every row): NET staging, NET work-up (a suspected NET; the",
        "    lesion-free work-ups), TIO localisation (TIO work-ups), follow-up (a known NET restaged); NET patients",
        "    cycle NET staging, NET staging, follow-up in study order",
        "  culprit: 1 on the TIO culprit tumour's row (the phosphaturic mesenchymal tumour whose removal cures the",
        "    osteomalacia), 0 elsewhere; a recurrence at FU1 is a new lesion, not the culprit",
        "  sstr_expression: 68Ga-DOTATATE object SUV against the liver (6.8) on the Krenning scale, liver +-10 %",
        "    equal: high (above, Krenning 3-4), moderate (equal, 2), low (below, 1), absent (at most half the liver)",
        "  fdg_avid: 1 when the FDG object SUV is above the liver's (2.2); fdg_only: 1 for a tumour that is FDG-avid",
        "    with low or absent SSTR expression (FDG+/SSTR-, dedifferentiated: it makes the patient NETPET P5).",
        "    Both from the truth (noise-free object uptake); empty on a patient row, and fdg_avid and fdg_only at",
        "    a follow-up time point (68Ga-DOTATATE only)",
        "",
        "truth/netpet_scores.csv columns",
        "  patient_id, time_point (baseline), netpet_grade (P0-P5: netpet.clinical.netpet_score.netpet_grade on the",
        "  patient's malignant lesions: Krenning from the true 68Ga-DOTATATE SUV, FDG positive above the liver, T/L",
        "  of each tracer), deciding_lesion (the lesion ids of that grade, space-separated), indication,",
        "  designed_grade (the reading design's target, empty without it), reason (the grade's sentence; for an",
        "  empty grade why: a TIO work-up, or no FDG session). Follow-up time points (DOTATATE only) have no row.",
        "",
        "truth/readers.csv columns",
        "  patient_id, session_id, lesion_id, reader (reader1, reader2), reader_call (positive, equivocal,",
        "  negative), confidence (1 definitely benign ... 5 definitely malignant), anatomic_correlate (none, lesion,",
        "  benign): one row per truth lesion, session and reader, from a binormal latent reader model with the",
        "  Roe & Metz (1997) variance structure (netpet.phantom.readers: uptake conspicuity against the liver,",
        "  partial volume, the anatomic correlate, reader-specific separation and thresholds; seeded)",
        "",
        "reference_locations.csv columns",
        "  patient_id, lesion_id, session_id, center_r, center_a, center_s (RAS mm of that session), diameter_mm",
        "  (the same centres as truth/lesions.csv; only sessions whose field of view holds the lesion)",
        "",
        "truth/sessions.csv columns",
        "  patient_id, session_id, tracer, modality, time_point, days_from_baseline (calendar days after the",
        "  patient's first baseline session), rotation_x_deg, rotation_y_deg, rotation_z_deg, shift_r_mm, shift_a_mm,",
        "  shift_s_mm, pivot_r_mm, pivot_a_mm, pivot_s_mm. The session images the body frame moved as",
        "    p_session = R (p_body - c) + c + t, all RAS mm: c the pivot, t the shift,",
        "    R = R_S(rotation_z) R_R(rotation_x) R_A(rotation_y) (right-handed rotations about the R, A, S axes,",
        "    the A rotation applied first). The first session of a patient is the body frame (all zero), so a point",
        "    of session A lies in session B at T_B T_A^-1 p (netpet.phantom.poses.map_points).",
        "",
        "truth/staging.csv columns",
        "  patient_id, time_point, primary (netpet.clinical.staging site: pancreas, jejunum-ileum), n (N0/N1),",
        "  m (M0/M1a/M1b/M1c), stage_group (N0M0, III, IV): netpet.clinical.staging.stage_patients on the",
        "  patient's malignant truth lesions at that time point (AJCC 8th). TIO work-ups are not staged (empty).",
    ]
    if follow_up:
        lines += [
            "",
            "Follow-up: every NET and TIO patient has a 68Ga-DOTATATE PET/CT at time point FU1 (session",
            "S4-DOTATATE-PETCT-FU1, 90-200 days after baseline). NET scenarios: response, stable, progression",
            "(with new lesions), mixed; TIO: resected culprit, or recurrence at the resected site (a new lesion).",
            "Lesions keep their ids across time points; new lesions get new ids. See netpet.phantom.followup.",
        ]
    if p.get("reading_design"):
        lines += [
            "",
            "Reading design (netpet.phantom.reading): NET patients cycle the NETPET grades P1, P5, P3, P2, P4, P3",
            "(histological grade G1, G3, G2, G2, G3, G2), lesion-free work-ups are P0; every NET and lesion-free",
            "patient has the FDG PET/CT. P5 patients have an FDG-only lesion (68Ga-DOTATATE 0.3-0.7 x liver, FDG",
            "2.5-4.5 x liver). TIO patients' culprits sit with SSTR-avid decoys: a physiological uncinate focus, a",
            "healing rib fracture and a reactive inflammatory node.",
        ]
    lines.append("")
    for patient in summary["patients"]:
        sessions = ", ".join(s["session_id"] for s in patient["sessions"])
        scenario = "".join(f"; {point['time_point']} day {point['days_from_baseline']}: {point['scenario']}"
                           for point in patient.get("follow_up", []))
        grade = patient.get("netpet_grade", {}).get("netpet_grade")
        grade = f"; NETPET {grade}" if grade else ""
        lines.append(f"{patient['patient_id']}: {patient['description']} ({sessions}){scenario}{grade}")
    if extra:
        lines += ["", extra]
    with open(os.path.join(out, "README.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def study_patients(parameters: StudyParameters) -> List[Patient]:
    return [make_patient(parameters.seed, i, parameters.tracers, parameters.modalities,
                         distant_sites=parameters.distant_sites, follow_up=parameters.follow_up,
                         reading_design=parameters.reading_design)
            for i in range(parameters.patients)]


def generate_study(out: str, patients: int = 3, seed: int = 1, tracers: Sequence[str] = TRACERS,
                   modalities: Sequence[str] = MODALITIES, preview: bool = False, jobs: Optional[int] = None,
                   progress: Optional[ProgressCallback] = None, distant_sites: bool = False,
                   follow_up: bool = False, reading_design: bool = False) -> Dict[str, Any]:
    """Generate a digital reference study of ``patients`` patients (see the module docstring).

    ``distant_sites``: NET patients get the nodal and distant sites of the staging design
    (:mod:`netpet.phantom.stages`); ``follow_up``: NET and TIO patients get a 68Ga-DOTATATE PET/CT
    follow-up at time point FU1 (:mod:`netpet.phantom.followup`); ``reading_design``: NETPET grades P0-P5 by
    design, FDG-only lesions and TIO culprits with decoys (:mod:`netpet.phantom.reading`; every NET and lesion-free
    patient gets the FDG PET/CT).

    Raises
    ------
    ValueError
        For unknown tracers or modalities, fewer than one patient, or follow-up without
        68Ga-DOTATATE PET/CT among the tracers and modalities.
    """
    unknown = [t for t in tracers if t not in TRACERS] + [m for m in modalities if m not in MODALITIES]
    if unknown or not tracers or not modalities:
        raise ValueError(f"tracers must be among {TRACERS} and modalities among {MODALITIES}; got {unknown or 'none'}")
    if patients < 1:
        raise ValueError("at least one patient is needed")
    if follow_up and ("dotatate" not in tracers or "petct" not in modalities):
        raise ValueError("the follow-up time point is a 68Ga-DOTATATE PET/CT: include dotatate among the tracers "
                         "and petct among the modalities")
    parameters = StudyParameters(patients, seed, tuple(tracers), tuple(modalities), preview,
                                 distant_sites=distant_sites, follow_up=follow_up, reading_design=reading_design)
    people = study_patients(parameters)
    if not any(p.sessions for p in people):
        raise ValueError("no session to write: FDG sessions are PET/CT only, choose --modalities petct too")
    return generate(out, people, parameters, jobs, progress)


def generate_case(out: str, name: str, preview: bool = False, progress: Optional[ProgressCallback] = None
                  ) -> Dict[str, Any]:
    """Write the teaching case ``name`` (see :mod:`netpet.phantom.cases`) with its CASE.md.

    Raises
    ------
    ValueError
        For an unknown case name.
    """
    from netpet.phantom.cases import CASE_SEED, CASES, case_markdown, case_patient, quiz_markdown

    patient = case_patient(name)  # ValueError for an unknown name
    case = CASES[name]
    tracers = tuple(sorted({s.tracer for s in patient.sessions}))
    modalities = tuple(sorted({"petmr" if s.modality == "PET/MR" else "petct" for s in patient.sessions}))
    parameters = StudyParameters(1, CASE_SEED, tracers, modalities, preview, case=name)
    summary = generate(out, [patient], parameters, jobs=1, progress=progress,
                       extra_readme=f"# {case.title}\n\n{case.lesson}\n\nTeaching notes with answers: CASE.md; "
                                    f"the trainee's version: QUIZ.md.")
    with open(os.path.join(out, "CASE.md"), "w", encoding="utf-8") as handle:
        handle.write(case_markdown(name, patient))
    with open(os.path.join(out, "QUIZ.md"), "w", encoding="utf-8") as handle:
        handle.write(quiz_markdown(name, patient))
    return summary
