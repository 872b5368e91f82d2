"""From a PET and the reader's clicks to rows of the study table.

:func:`open_session` gets the SUV volume of a session (a PET DICOM series, converted with its
provenance, or an SUV image); :func:`quantify` places the liver (and, for SSTR PET, spleen)
reference, segments each clicked lesion, measures it against its background, makes the
liver-threshold call and the Krenning score, and returns one study-table row per lesion;
:func:`run_manifest` does it in batch for a CSV manifest.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import SimpleITK as sitk

from netpet import __version__, schema
from netpet.dicom.convert import convert_to_suv
from netpet.dicom.image import read_image
from netpet.dicom.files import default_jobs, process_context
from netpet.dicom.index import SeriesRecord, index_tree
from netpet.dicom.suv import Overrides
from netpet.errors import DicomInputError, NetpetError, printable
from netpet.quant import references
from netpet.quant.classify import liver_call
from netpet.quant.export import write_dicom_seg, write_seg_nrrd
from netpet.quant.measure import measure
from netpet.quant.segment import LesionMask, ReferenceStats, SegmentOptions, segment
from netpet.quant.table import StudyTable, check_lesion_id
from netpet.quant.volume import QuantError, SUVVolume

if TYPE_CHECKING:  # the scikit-learn estimator, only named in signatures: quantifying needs no scikit-learn
    from netpet.quant.cutoff import LiverThresholdClassifier

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
#: Lesions whose longest diameter is below this (mm) are flagged: at clinical PET resolution
#: (5-8 mm FWHM) partial volume lowers SUVpeak and SUVmax of lesions smaller than 2-3 x FWHM
#: (Soret M, Bacharach SL, Buvat I, J Nucl Med 2007;48:932).
SMALL_LESION_MM = 15.0
#: ... or whose volume is below that of a 20 mm sphere (mL), about 2.5-3 x the FWHM of clinical PET.
SMALL_LESION_ML = 4.19
MANIFEST_REQUIRED = ("patient_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s")
#: Manifest columns that may be empty or absent: session_id (empty: the session id rule of netpet.schema, as
#: in Slicer), the reader's labels region and lesion_type
MANIFEST_OPTIONAL_KEYS = ("session_id", "region", "lesion_type")
#: Manifest columns that place a session on the follow-up time axis (optional; one value per session): the
#: ``time_point`` label (baseline, FU1...; empty = baseline) and ``days_from_baseline`` (days >= 0, may be empty).
#: Written to the study table's columns of the same names (netpet.schema) only when the manifest has the column,
#: so that a table whose time points were filled in by hand keeps them on a re-run without it.
MANIFEST_TIME_COLUMNS = ("time_point", "days_from_baseline")


@dataclass
class Session:
    """One PET session ready for quantification."""

    volume: SUVVolume
    patient_id: str
    session_id: str
    modality: str
    tracer: str
    series_uid: str = ""
    suv_type: str = "bw"
    provenance: Optional[Dict[str, Any]] = None
    source_paths: List[str] = field(default_factory=list)
    source: str = ""
    _bone: Optional[Any] = None
    dicom_patient_id: str = ""
    study_uid: str = ""
    #: the follow-up time-point cells of the session's rows (``time_point``, ``days_from_baseline``: those the
    #: manifest gives; a column not given is left out, so that an upsert keeps what the table holds)
    time_columns: Dict[str, Any] = field(default_factory=dict)

    def bone_mask(self, jobs: Optional[int] = 1):
        """Bone of the session's CT (HU >= :data:`references.BONE_HU`) on the PET grid, [z, y, x] bool.

        Raises
        ------
        QuantError
            No CT partner (PET/MR, or an SUV image without DICOM): a normal-bone background then
            needs a background point placed in normal bone.
        """
        if self._bone is None:
            ct = _ct_partner(self, jobs)
            if ct is None:
                raise QuantError(f"A normal-bone background needs the session's CT, and {self.volume.name} has none "
                                 f"({self.modality or 'no anatomical partner'}); place a background point in normal bone "
                                 "instead (--background R,A,S, or background_r/a/s in the manifest).")
            self._bone = references.bone_mask(self.volume, read_image(ct))
        return self._bone


@dataclass
class LesionRequest:
    """One clicked lesion: its id and seed (RAS mm), region and lesion type (the reader's words, cleaned by
    :func:`netpet.schema.clean_label`), and the background the reader chose:
    ``background`` "shell" (automatic, default), "bone" (normal bone of the CT around the lesion),
    or a point ``background_ras`` (a sphere of ``background_diameter_mm`` there)."""

    lesion_id: str
    seed_ras: Tuple[float, float, float]
    region: str = ""
    background_ras: Optional[Tuple[float, float, float]] = None
    background: str = "shell"
    background_diameter_mm: float = references.BACKGROUND_POINT_SPHERE_MM
    lesion_type: str = ""


@dataclass
class QuantResult:
    rows: List[Dict[str, Any]]
    lesions: Dict[str, LesionMask]
    calls: Dict[str, str]
    liver: ReferenceStats
    spleen: Optional[ReferenceStats]
    errors: Dict[str, str] = field(default_factory=dict)


def _is_image(path: str) -> bool:
    return os.path.isfile(path) and path.lower().endswith(IMAGE_SUFFIXES)


def read_suv_image(path: str) -> SUVVolume:
    """An SUV image file as a volume; one sentence naming the file when it is not a readable 3D image.

    Raises
    ------
    DicomInputError
        Not a readable image (a damaged .nrrd, a file named .nii.gz that is none).
    QuantError
        Not a 3D scalar image, or no usable SUV in it (see :meth:`SUVVolume.from_image`).
    """
    try:
        image = sitk.ReadImage(path)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1].split("ERROR:", 1)[-1].strip() if lines else "unreadable"
        raise DicomInputError(f"{printable(path)} is not a readable image ({printable(reason)[:200]}); give an SUV "
                              f"image ({', '.join(IMAGE_SUFFIXES)}) or a PET DICOM folder.") from None
    return SUVVolume.from_image(image, os.path.basename(path))


def open_session(source, patient_id: str = "", session_id: str = "", modality: str = "", tracer: str = "",
                 series_uid: Optional[str] = None, suv_type: str = "bw", overrides: Optional[Overrides] = None,
                 jobs: Optional[int] = 1, dicom_patient: Optional[str] = None,
                 hints: Tuple[str, str] = ("--series UID", "--patient ID")) -> Session:
    """The SUV volume of a session from a SeriesRecord, a PET DICOM folder/file, or an SUV image file.

    For an SUV image the modality and tracer must be given; for DICOM they come from the index, and the
    session id, when not given, is derived from the series' study (:func:`netpet.schema.record_session_id`,
    the same rule as in Slicer; an SUV image has no derived id).
    ``series_uid`` chooses among several PET series, ``dicom_patient`` (a PatientID) among copies of
    one series under several patients; without it, a ``patient_id`` that is one of those PatientIDs
    chooses. ``hints`` name, in the caller's terms, how a user gives the series and the patient.

    Raises
    ------
    AmbiguousInputError
        Several PET series, or one under several patients, and nothing chose one.
    DicomInputError, SUVConversionError, QuantError
        A path, image or series that cannot be used.
    """
    if isinstance(source, str) and _is_image(source):
        return Session(read_suv_image(source), patient_id, session_id, modality or "", tracer or "", series_uid or "",
                       suv_type)
    record = source
    if not isinstance(source, SeriesRecord):
        if not os.path.exists(source):
            raise DicomInputError(f"{printable(source)} does not exist; give a PET DICOM folder or an SUV image "
                                  f"({', '.join(IMAGE_SUFFIXES)}).")
        index = index_tree(source, jobs=jobs, pet_headers=True)  # PET headers read once: conversion reads the pixels
        if dicom_patient is None and patient_id:
            owners = {r.patient_id for r in index.pet_series() if not series_uid or r.series_uid == series_uid}
            if len(owners) > 1 and patient_id in owners:
                dicom_patient = patient_id  # the study's patient id is one of the DICOM PatientIDs: that copy
        record = index.choose_pet(series_uid, dicom_patient, *hints)
        if record.hybrid is None and not modality:
            record = _with_partner(source, record, jobs)
    result = convert_to_suv(record, suv_type, overrides, jobs=jobs)
    modality = schema.clean_label(modality) or schema.record_modality(record)
    tracer = schema.clean_label(tracer) or schema.record_tracer(record)
    session_id = schema.check_session_id(session_id) or schema.derive_session_id(record.study_uid, tracer, modality)
    return Session(SUVVolume.from_image(result.image, f"PET series {record.series_uid}"), patient_id or record.patient_id,
                   session_id, modality, tracer, record.series_uid, suv_type,
                   result.provenance.to_dict(), list(record.files), source if isinstance(source, str) else "",
                   dicom_patient_id=record.patient_id, study_uid=record.study_uid)


def _ct_partner(session: Session, jobs: Optional[int]) -> Optional[SeriesRecord]:
    """The CT series paired with the session's PET (same frame of reference or study), if any."""
    if not session.source_paths or not session.series_uid:
        return None
    folder = session.source if session.source and os.path.isdir(session.source) else os.path.dirname(session.source_paths[0])
    for root in (folder, os.path.dirname(os.path.abspath(folder))):
        try:
            index = index_tree(root, jobs=jobs)
            pet = index.series(session.series_uid, session.dicom_patient_id or None)
        except NetpetError:
            continue
        if pet.partner_series_uid:
            partner = index.series(pet.partner_series_uid, pet.patient_id)
            return partner if partner.modality == "CT" else None
    return None


def _with_partner(source: str, record: SeriesRecord, jobs: Optional[int]) -> SeriesRecord:
    """The PET as indexed with its session's folder, where its CT or MR partner usually lies
    (a PET folder alone cannot tell PET/CT from PET/MR)."""
    parent = os.path.dirname(os.path.abspath(source if os.path.isdir(source) else os.path.dirname(source)))
    try:
        # the copy the folder holds: the parent may hold the same series under another patient too
        found = index_tree(parent, jobs=jobs).series(record.series_uid, record.patient_id, record.study_uid)
    except NetpetError:
        return record
    found.prepared = found.prepared or record.prepared  # the PET files' headers, read already (keyed by path)
    return found


def _provenance_columns(provenance: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if not provenance:
        return {"suv_units": "SUV image (no DICOM provenance)"}
    factor = provenance.get("factor")
    if factor is None and provenance.get("factor_per_frame"):
        values = provenance["factor_per_frame"]
        factor = f"{min(values):.6g}..{max(values):.6g}"
    return {
        "suv_units": provenance.get("units"), "suv_decay_correction": provenance.get("decay_correction"),
        "suv_reference_time": provenance.get("reference_time"), "suv_reference_rule": provenance.get("reference_time_rule"),
        "suv_injection_time": provenance.get("injection_time"),
        "suv_dose_mbq": (provenance.get("dose_bq") or 0) / 1e6 if provenance.get("dose_bq") else None,
        "suv_weight_kg": provenance.get("weight_kg"), "suv_factor": factor,
        "suv_warnings": " | ".join(provenance.get("warnings") or []),
    }


def _time_columns(session: Session) -> Dict[str, Any]:
    """The time-point cells of a session's rows (:attr:`Session.time_columns`): only the columns given, '' when empty."""
    return {k: "" if v is None else v for k, v in session.time_columns.items()}


def quantify(session: Session, requests: Sequence[LesionRequest], reader: str,
             options: Optional[SegmentOptions] = None, liver_ras: Optional[Sequence[float]] = None,
             spleen_ras: Optional[Sequence[float]] = None, classifier: Optional[LiverThresholdClassifier] = None,
             segmentation_file: str = "", skip_failed: bool = False) -> QuantResult:
    """Segment, measure and classify the requested lesions of one session (see module docstring).

    With ``skip_failed``, a lesion that cannot be segmented (seed outside the image or in
    background) is left out and its message kept in ``errors``; otherwise it raises.

    Raises
    ------
    QuantError
        A seed outside the image or in background, or a liver reference that cannot be placed.
    """
    options = options or SegmentOptions()
    volume = session.volume
    liver = references.liver_reference(volume, liver_ras)
    seeds = [r.seed_ras for r in requests]
    lesions: Dict[str, LesionMask] = {}
    errors: Dict[str, str] = {}
    for i, request in enumerate(requests):
        others = [s for j, s in enumerate(seeds) if j != i]
        try:
            # a reader-placed background also sets the adaptive threshold's background level
            level = (references.background_point(volume, request.background_ras, request.background_diameter_mm).mean
                     if request.background_ras else None)
            lesions[request.lesion_id] = segment(volume, request.seed_ras, options, liver, others, level)
        except QuantError as exc:
            if not skip_failed:
                raise
            errors[request.lesion_id] = str(exc)
    result = quantify_lesions(session, lesions, reader, liver=liver, spleen_ras=spleen_ras, classifier=classifier,
                              segmentation_file=segmentation_file,
                              requests={r.lesion_id: r for r in requests if r.lesion_id in lesions})
    result.errors = errors
    return result


def quantify_lesions(session: Session, lesions: Dict[str, LesionMask], reader: str,
                     liver_ras: Optional[Sequence[float]] = None, spleen_ras: Optional[Sequence[float]] = None,
                     classifier: Optional[LiverThresholdClassifier] = None, segmentation_file: str = "",
                     requests: Optional[Dict[str, LesionRequest]] = None,
                     liver: Optional[ReferenceStats] = None) -> QuantResult:
    """Measure and classify lesions already segmented (by :func:`quantify`, or edited by a reader in
    Slicer's Segment Editor): references, measurements, call and Krenning score, one table row each.

    ``requests`` gives each lesion's seed, region, lesion type and background point where known. The rows'
    key and labels are filled by the rules of :mod:`netpet.schema` (the reader id cleaned as a label).
    """
    volume = session.volume
    requests = requests or {}
    reader = schema.clean_label(reader)
    liver = liver or references.liver_reference(volume, liver_ras)
    spleen = None
    if session.tracer == "dotatate":
        try:
            spleen = references.spleen_reference(volume, spleen_ras)
        except QuantError:
            spleen = None
    cutoff = float(getattr(classifier, "cutoff_", classifier.margin)) if classifier is not None else 1.0
    rows, calls = [], {}
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    for lesion_id, lesion in lesions.items():
        request = requests.get(lesion_id)
        others = [m for k, m in lesions.items() if k != lesion_id]
        warnings = list(lesion.notes)
        flags = list(lesion.flags)
        background, source = None, "shell"
        try:
            if request is not None and request.background_ras:
                background, source = references.background_point(
                    volume, request.background_ras, request.background_diameter_mm), "point"
            elif request is not None and request.background == "bone":
                background, source = references.background_bone(volume, lesion, session.bone_mask(),
                                                                others=others), "bone"
            else:
                background = references.background_shell(volume, lesion, others=others)
                if request is not None and schema.clean_label(request.region).lower() == "bone":
                    flags.append("soft-tissue-background")
                    warnings.append("T/B of a bone lesion against the soft tissue around it; choose a normal-bone "
                                    "background (background=bone, or a background point in normal bone)")
        except QuantError as exc:
            flags.append("no-background")
            warnings.append(f"no background: {exc}")
        values = measure(volume, lesion, liver, background, spleen)
        verdict = liver_call(values["suv_max"], lesion.voxels * volume.voxel_ml if lesion.separable else 1.0,
                             volume.voxel_ml, liver.mean, liver.sd, liver.peak_sd,
                             (spleen.mean, spleen.sd, spleen.peak_sd) if spleen is not None else None, lesion.separable,
                             background.mean if background is not None else None,
                             krenning=session.tracer == "dotatate", cutoff=cutoff)
        if lesion.separable and (values["longest_diameter_mm"] < SMALL_LESION_MM or values["mtv_ml"] < SMALL_LESION_ML):
            flags.append("partial-volume")
            warnings.append(f"small (under {SMALL_LESION_MM:.0f} mm across or {SMALL_LESION_ML:.1f} mL): partial volume lowers "
                            "its SUVs, so the call may understate it, and its volume is uncertain (a lesion about the "
                            "size of the blur reads larger than it is)")
        if verdict.call == "equivocal":
            warnings.append(f"uptake equal to the liver within its noise (SUVmax {verdict.uptake:.2f}; liver tissue of this "
                            f"size reaches {verdict.low:.2f}-{verdict.high:.2f} by noise alone)")
        calls[lesion_id] = verdict.call
        seed = request.seed_ras if request is not None else (values["suv_peak_center_r"], values["suv_peak_center_a"],
                                                              values["suv_peak_center_s"])
        row = {
            "patient_id": session.patient_id, "session_id": session.session_id, "modality": session.modality,
            "tracer": session.tracer, "reader": reader, "lesion_id": lesion_id,
            "region": schema.clean_label(request.region) if request is not None else "",
            "lesion_type": schema.clean_label(request.lesion_type) if request is not None else "",
            **{k: v for k, v in values.items()},
            "krenning": verdict.krenning if verdict.krenning is not None else "", "call": verdict.call,
            "call_low_suv": verdict.low, "call_high_suv": verdict.high, "call_samples": round(verdict.independent, 2),
            "segmentation_status": lesion.status, "flags": ";".join(dict.fromkeys(flags)),
            "warnings": " | ".join(warnings), "peak_shift_mm": lesion.peak_shift_mm,
            "contrast_to_noise": lesion.contrast_to_noise if lesion.contrast_to_noise is not None else "",
            "background_source": source if background is not None else "",
            "segmentation_file": segmentation_file, "suv_type": session.suv_type, "method": lesion.method,
            "liver_center_r": liver.center_ras[0], "liver_center_a": liver.center_ras[1],
            "liver_center_s": liver.center_ras[2], "seed_r": seed[0], "seed_a": seed[1],
            "seed_s": seed[2], "series_uid": session.series_uid, "netpet_version": __version__,
            "updated": now, **_provenance_columns(session.provenance), **_time_columns(session),
        }
        rows.append(row)
    return QuantResult(rows, dict(lesions), calls, liver, spleen, {})


def session_row(session: Session, reader: str, liver_ras: Optional[Sequence[float]] = None) -> Dict[str, Any]:
    """The study-table row of a session read without any finding: an empty lesion_id.

    StudyStats needs it to count the session's patient (and regions) as read and negative. The
    liver reference is measured when it can be placed (left empty otherwise).
    """
    row: Dict[str, Any] = {
        "patient_id": session.patient_id, "session_id": session.session_id, "modality": session.modality,
        "tracer": session.tracer, "reader": schema.clean_label(reader), "lesion_id": "", "region": "",
        "lesion_type": "", "call": "",
        "suv_type": session.suv_type, "series_uid": session.series_uid, "netpet_version": __version__,
        "updated": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        **_provenance_columns(session.provenance), **_time_columns(session),
    }
    try:
        liver = references.liver_reference(session.volume, liver_ras)
    except QuantError:
        return row
    row.update({"liver_suv_mean": liver.mean, "liver_suv_sd": liver.sd, "liver_suv_max": liver.max,
                "liver_center_r": liver.center_ras[0], "liver_center_a": liver.center_ras[1],
                "liver_center_s": liver.center_ras[2]})
    return row


# -- manifest batch ----------------------------------------------------------------------------------


def _is_read_row(values: Dict[str, str]) -> bool:
    """A manifest row that records a session read without findings: lesion_id and seed empty."""
    return not values.get("lesion_id") and not any(values.get(f"seed_{axis}") for axis in "ras")

@dataclass
class ManifestRow:
    number: int
    values: Dict[str, str]


def read_manifest(path: str) -> List[ManifestRow]:
    """Rows of a quantification manifest (CSV, UTF-8). Relative series paths are relative to it.

    Raises
    ------
    NetpetError
        No such file, a folder, a file that is not UTF-8 CSV text (NUL bytes, UTF-16, another
        encoding: the line named), a cell over the CSV reader's limit, required columns missing.
    """
    shown = printable(path)
    if not os.path.exists(path):
        raise NetpetError(f"The manifest {shown} does not exist.")
    if os.path.isdir(path):
        raise NetpetError(f"The manifest {shown} is a folder; give the CSV file.")
    with open(path, "rb") as handle:
        data = handle.read()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NetpetError(f"The manifest {shown} is UTF-16 text; save it as CSV UTF-8.")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise NetpetError(f"The manifest {shown} holds a NUL byte on line {line}: it is not CSV text; save it as CSV "
                          "UTF-8.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise NetpetError(f"The manifest {shown} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save "
                          "it as CSV UTF-8.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        missing = [c for c in MANIFEST_REQUIRED if c not in header]
        if missing:
            raise NetpetError(f"The manifest {shown} lacks the column(s) {', '.join(missing)}; it needs "
                              f"{', '.join(MANIFEST_REQUIRED)} (and may give session_id, time_point, "
                              "days_from_baseline, region, lesion_type, liver_r, "
                              "liver_a, liver_s, method, "
                              "modality, tracer, background (shell or bone), background_r, background_a, background_s, "
                              "background_diameter_mm, series_uid, dicom_patient_id, and the SUV overrides "
                              f"{', '.join(MANIFEST_OVERRIDES)}).")
        # (a row longer than the header keeps its extra cells under the key None: left out)
        rows = [ManifestRow(reader.line_num, {k: (v or "").strip() for k, v in r.items() if k}) for r in reader]
    except csv.Error as exc:
        raise NetpetError(f"The manifest {shown} is not a readable CSV (line {reader.line_num}: {exc}).") from None
    base = os.path.dirname(os.path.abspath(path))
    for row in rows:
        series = row.values.get("series", "")
        if series and not os.path.isabs(series):
            row.values["series"] = os.path.normpath(os.path.join(base, series))
    return rows


#: Manifest columns that override SUV header values for a session (as ``netpet suv``'s options do)
MANIFEST_OVERRIDES = ("weight_kg", "height_m", "sex", "dose_mbq", "injection_time", "half_life_s")
#: How a command-line option of a message reads for a manifest
_AS_COLUMN = {"--weight": "weight_kg", "--height": "height_m", "--sex": "sex", "--dose": "dose_mbq",
              "--injection-time": "injection_time", "--half-life": "half_life_s", "--series": "series_uid",
              "--patient": "dicom_patient_id"}
_OPTION = re.compile(r"--(weight|height|sex|dose|injection-time|half-life|series|patient)\b"
                     r"(?: (?:KG|M\|F\|O|MBQ|ISO8601|S|M|UID|ID)\b)?")
_POINT_OPTION = re.compile(r"--(liver|background) R,A,S")


def for_manifest(message: str) -> str:
    """A message written for the command line, with its options named as the manifest's columns."""
    message = _OPTION.sub(lambda m: f"the manifest column {_AS_COLUMN['--' + m.group(1)]}", message)
    return _POINT_OPTION.sub(lambda m: f"{m.group(1)}_r, {m.group(1)}_a, {m.group(1)}_s in the manifest", message)


def _session_choices(rows: Sequence["ManifestRow"]) -> Tuple[Optional[str], Optional[str], Optional[Overrides]]:
    """(series_uid, dicom_patient_id, SUV overrides) of one session's manifest rows.

    Raises
    ------
    NetpetError
        A value that differs between the rows of the session (modality and tracer: also given on
        some rows and empty on others), or that is not a finite positive number (an ISO 8601 time,
        M/F/O for sex), the rows and the column named.
    """
    chosen: Dict[str, str] = {}
    for column in ("modality", "tracer"):  # the session's labels come from its first row: the others must agree
        labels = {r.values.get(column, "") for r in rows}
        if len(labels) > 1:
            raise NetpetError(f"column {column} differs between the rows of one session "
                              f"({', '.join(repr(printable(v)) for v in sorted(labels))}); give one value on every "
                              "row (for a DICOM series, or leave it empty on every row).")
    for column in ("series_uid", "dicom_patient_id", *MANIFEST_OVERRIDES):
        values = {r.values.get(column, "") for r in rows} - {""}
        if len(values) > 1:
            raise NetpetError(f"column {column} differs between the rows of one session "
                              f"({', '.join(printable(v) for v in sorted(values))}); give one value.")
        if values:
            chosen[column] = values.pop()
    if not any(c in chosen for c in MANIFEST_OVERRIDES):
        return chosen.get("series_uid"), chosen.get("dicom_patient_id"), None
    given: Dict[str, Any] = {}
    units = {"weight_kg": "kg", "height_m": "m", "dose_mbq": "MBq", "half_life_s": "s"}
    for column, unit in units.items():
        if column in chosen:
            try:
                value = float(chosen[column])
            except ValueError:
                value = float("nan")
            if not (math.isfinite(value) and value > 0):
                raise NetpetError(f"column {column} is {printable(chosen[column])!r}; give a "
                                  f"positive number of {unit}.")
            given[column] = value
    sex = chosen.get("sex", "").upper() or None
    if sex is not None and sex not in ("M", "F", "O"):
        raise NetpetError(f"column sex is {printable(chosen['sex'])!r}; write M, F or O.")
    injection = None
    if "injection_time" in chosen:
        text = chosen["injection_time"]
        try:
            injection = dt.datetime.fromisoformat(text)
        except ValueError:
            try:
                injection = dt.time.fromisoformat(text)
            except ValueError:
                raise NetpetError(f"column injection_time is {printable(text)!r}; write ISO "
                                  "8601, e.g. 2024-03-05T09:02:31 or 09:02:31 (local time).") from None
        if injection.tzinfo is not None:
            raise NetpetError(f"column injection_time {printable(text)!r} carries a time zone; "
                              "DICOM times are local, give the local time without one.")
    overrides = Overrides(weight_kg=given.get("weight_kg"), height_m=given.get("height_m"), sex=sex,
                          dose_bq=given["dose_mbq"] * 1e6 if "dose_mbq" in given else None,
                          injection_time=injection, half_life_s=given.get("half_life_s"))
    return chosen.get("series_uid"), chosen.get("dicom_patient_id"), overrides


def _session_time_point(rows: Sequence["ManifestRow"]) -> Dict[str, Any]:
    """{column: value} of the time-point columns (:data:`MANIFEST_TIME_COLUMNS`) the manifest gives for one
    session: ``time_point`` a cleaned label ('' = baseline), ``days_from_baseline`` days or None (empty); {} when
    the manifest has neither column (the table's cells are then left as they are).

    Raises
    ------
    NetpetError
        A label with a control character, days that are not a finite number >= 0 (the row named), or a value
        that differs between the rows of the session (the rows named).
    """
    given = [c for c in MANIFEST_TIME_COLUMNS if any(c in r.values for r in rows)]
    if not given:
        return {}
    labels: Dict[str, List[int]] = {}
    days: Dict[Optional[float], List[int]] = {}
    for row in rows:
        where = f"manifest row {row.number}: "
        try:
            labels.setdefault(schema.check_time_point(row.values.get("time_point", ""), where), []).append(row.number)
            days.setdefault(schema.check_days_from_baseline(row.values.get("days_from_baseline", ""), where),
                            []).append(row.number)
        except schema.SchemaError as exc:
            raise NetpetError(str(exc)) from None
    for column, seen in (("time_point", labels), ("days_from_baseline", days)):
        if len(seen) > 1:
            shown = "; ".join(f"{'empty' if v in ('', None) else printable(f'{v:g}' if isinstance(v, float) else v)} on "
                              f"row(s) {', '.join(str(n) for n in numbers)}" for v, numbers in seen.items())
            raise NetpetError(f"manifest rows {', '.join(str(r.number) for r in rows)}: column {column} differs between "
                              f"the rows of one session ({shown}); give one value on every row of the session.")
    day = next(iter(days))
    values = {"time_point": next(iter(labels)),
              "days_from_baseline": int(day) if day is not None and day.is_integer() else day}  # 91, not 91.0
    return {c: values[c] for c in given}


def _point(values: Dict[str, str], prefix: str, number: int, required: bool) -> Optional[Tuple[float, float, float]]:
    texts = [values.get(f"{prefix}_{axis}", "") for axis in "ras"]
    if not any(texts):
        if required:
            raise NetpetError(f"manifest row {number}: {prefix}_r, {prefix}_a, {prefix}_s are empty")
        return None
    try:
        point = tuple(float(t) for t in texts)
    except ValueError as exc:
        raise NetpetError(f"manifest row {number}: {prefix}_r/a/s must be numbers (RAS mm), got {texts}") from exc
    if not all(math.isfinite(v) for v in point):
        raise NetpetError(f"manifest row {number}: {prefix}_r/a/s must be finite numbers (RAS mm), got {texts}")
    return point  # type: ignore[return-value]


BACKGROUND_KINDS = ("shell", "bone")


def _lesion_request(row: ManifestRow) -> LesionRequest:
    """The lesion request of a manifest row: seed, region, and the reader's background choice
    (``background_r/a/s`` a point; ``background`` shell or bone; ``background_diameter_mm``)."""
    values = row.values
    # checked before any work, so that one bad id skips its own row and not its session's segmentation file
    lesion_id = check_lesion_id(values["lesion_id"], f"manifest row {row.number}: ")
    if not lesion_id.isascii():  # the .seg.nrrd's header is ASCII (pynrrd writes nothing else, and drops the rest)
        raise NetpetError(f"manifest row {row.number}: the lesion id {printable(lesion_id)!r} is not ASCII, which the "
                          "segmentation file (.seg.nrrd) cannot hold; write it with ASCII letters, digits and signs.")
    seed = _point(values, "seed", row.number, True)
    point = _point(values, "background", row.number, False)
    kind = (values.get("background") or "shell").strip().lower()
    if kind not in BACKGROUND_KINDS:
        raise NetpetError(f"manifest row {row.number}: background is {values.get('background')!r}; write shell or bone, "
                          "or give a point in background_r, background_a, background_s.")
    diameter = references.BACKGROUND_POINT_SPHERE_MM
    if values.get("background_diameter_mm"):
        try:
            diameter = float(values["background_diameter_mm"])
        except ValueError:
            diameter = float("nan")
        if not (math.isfinite(diameter) and 4.0 <= diameter <= 60.0):
            raise NetpetError(f"manifest row {row.number}: background_diameter_mm is {values['background_diameter_mm']!r}; "
                              "give a diameter from 4 to 60 mm.")
    return LesionRequest(values["lesion_id"], seed, schema.clean_label(values.get("region")), point, kind, diameter,
                         schema.clean_label(values.get("lesion_type")))


def _group_job(job) -> Tuple[List[Dict[str, Any]], List[str], Dict[str, List[str]]]:
    """:func:`quantify_session` of one job tuple (what a worker process of :func:`run_manifest` runs)."""
    return quantify_session(*job)


def quantify_session(rows: Sequence["ManifestRow"], table_dir: str, options: SegmentOptions, suv_type: str = "bw",
                     dicom_seg: bool = False, pseudonymiser=None, known: Optional[dict] = None,
                     record: Optional[SeriesRecord] = None
                     ) -> Tuple[List[Dict[str, Any]], List[str], Dict[str, List[str]]]:
    """Quantify one session's manifest rows (one group of :func:`plan_manifest`): (table rows, errors, seg files).

    The session is converted in this process (``jobs=1``: safe inside a worker); segmentation files are written
    under ``table_dir/segmentations`` (one per session and reader), the table is not written: the caller upserts
    the rows. Bad rows are reported in the errors (one sentence each, naming the manifest rows), not raised.
    ``record``: the session's PET series as an index of the whole study already found it (the only PET series
    under the rows' series folder, the one their series_uid and dicom_patient_id choose), so that the folder is
    not indexed again; None: the series path is indexed here, as ``netpet quantify`` does.

    A group without a session id gets the id of :func:`netpet.schema.choose_session_id`: the one the table
    already holds for this patient's series (``known``, as the table writes them: pseudonymised when the
    run is), else the derived id (of the pseudonymised StudyInstanceUID when the run is pseudonymised)."""
    known = {} if known is None else known
    first = rows[0].values
    errors: List[str] = []
    out: List[Dict[str, Any]] = []
    segs: Dict[str, List[str]] = {}
    try:
        time_columns = _session_time_point(rows)
    except NetpetError as exc:
        return [], [str(exc)], {}
    try:
        series_uid, dicom_patient, overrides = _session_choices(rows)
        if _is_image(first["series"]) and (series_uid or dicom_patient or overrides):
            given = [c for c in ("series_uid", "dicom_patient_id", *MANIFEST_OVERRIDES)
                     if any(r.values.get(c) for r in rows)]
            raise NetpetError(f"{printable(first['series'])} is an SUV image already; the column(s) {', '.join(given)} "
                              "apply to a PET DICOM series: leave them empty.")
        session = open_session(record if record is not None else first["series"], first["patient_id"], first.get("session_id", ""), first.get("modality", ""),
                               first.get("tracer", ""), series_uid=series_uid, suv_type=suv_type, overrides=overrides,
                               dicom_patient=dicom_patient,
                               hints=("a series_uid column in the manifest",
                                      "a dicom_patient_id column in the manifest"))
        session.time_columns = time_columns
        if not session.modality or not session.tracer:
            raise NetpetError(f"{printable(first['series'])} is an SUV image, which does not say how it was made: give "
                              "the manifest columns modality (PET/CT or PET/MR) and tracer (dotatate, fdg...).")
        if not schema.clean_label(first.get("session_id")):
            patient, series, study = session.patient_id, session.series_uid, session.study_uid
            if pseudonymiser is not None and study:
                patient = pseudonymiser.patient(patient)
                series, study = pseudonymiser.uid(series), pseudonymiser.uid(study)
            session.session_id = schema.choose_session_id(
                "", schema.derive_session_id(study, session.tracer, session.modality), patient, series, known)
        if not session.session_id:
            raise NetpetError(f"{printable(first['series'])} is an SUV image without DICOM identity, from which no "
                              "session id can be derived: give the manifest column session_id.")
    except NetpetError as exc:
        return [], [f"manifest rows {', '.join(str(r.number) for r in rows)}: {for_manifest(str(exc))}"], {}
    by_reader: Dict[Tuple[str, str], List[ManifestRow]] = {}
    for row in rows:
        by_reader.setdefault((row.values["reader"], row.values.get("method", "")), []).append(row)
    for (reader, method), group in by_reader.items():
        good: List[Tuple[ManifestRow, LesionRequest]] = []
        read_only = [row for row in group if _is_read_row(row.values)]
        group = [row for row in group if not _is_read_row(row.values)]
        if read_only and not group and not any(
                not _is_read_row(r.values) for r in rows if r.values["reader"] == reader):
            liver_point = None
            try:
                liver_point = _point(read_only[0].values, "liver", read_only[0].number, False)
            except NetpetError as exc:
                errors.append(str(exc))
            read = session_row(session, reader, liver_point)
            out.append(pseudonymiser.row(read) if pseudonymiser else read)
            continue
        for row in group:
            try:
                good.append((row, _lesion_request(row)))
            except NetpetError as exc:
                errors.append(str(exc))
        liver = None
        for row, request in list(good):
            try:
                liver = liver or _point(row.values, "liver", row.number, False)
            except NetpetError as exc:  # this row's liver point is unusable: the row is skipped, said
                errors.append(str(exc))
                good.remove((row, request))
        named = pseudonymiser.patient(session.patient_id) if pseudonymiser else session.patient_id
        name = schema.segmentation_file_name(named, session.session_id, schema.clean_label(reader))
        seg_rel = os.path.join("segmentations", name)
        requested = SegmentOptions(method=method) if method else options
        if not good:
            continue
        try:
            result = quantify(session, [r for _, r in good], reader, requested, liver,
                              segmentation_file=seg_rel.replace(os.sep, "/"), skip_failed=True)
        except NetpetError as exc:
            errors.append(f"manifest rows {', '.join(str(r.number) for r, _ in good)}: {for_manifest(str(exc))}")
            continue
        numbers = {request.lesion_id: row.number for row, request in good}
        for lesion_id, message in result.errors.items():
            errors.append(f"manifest row {numbers[lesion_id]} ({printable(lesion_id)}): {for_manifest(message)}")
        if not result.lesions:
            continue
        seg_path = os.path.join(table_dir, seg_rel)
        try:
            segs[seg_rel] = write_seg_nrrd(seg_path, session.volume, result.lesions, result.calls)
            if dicom_seg and session.source_paths:
                write_dicom_seg(seg_path.replace(".seg.nrrd", ".dcm"), session.source_paths, session.volume,
                                result.lesions, reader=reader, pseudonymiser=pseudonymiser,
                                patient_id=session.patient_id)
        except NetpetError as exc:  # rows without their segmentation are not written: the session's rows are skipped
            which = ", ".join(str(numbers[k]) for k in result.lesions)
            errors.append(f"manifest rows {which}: {for_manifest(str(exc))}")
            continue
        out.extend(pseudonymiser.row(r) if pseudonymiser else r for r in result.rows)
    return out, errors, segs


def plan_manifest(rows: Sequence[ManifestRow]) -> Tuple[List[Tuple[Tuple[str, str, str], List[ManifestRow]]], List[str]]:
    """The work of a manifest: its rows grouped by session, ``[((series, patient_id, session_id), rows)]`` in the
    manifest's order, and the messages of the rows left out (required cells empty; one lesion id given twice for a
    session and reader, where neither row is quantified).
    """
    groups: Dict[Tuple[str, str, str], List[ManifestRow]] = {}
    errors: List[str] = []
    complete: List[ManifestRow] = []
    for row in rows:
        missing = [c for c in MANIFEST_REQUIRED if not row.values.get(c)]
        if _is_read_row(row.values):
            missing = [c for c in ("patient_id", "series", "reader") if not row.values.get(c)]
        if missing:
            errors.append(f"manifest row {row.number}: empty {', '.join(missing)}")
            continue
        complete.append(row)
    # one lesion id twice in a session for one reader: the table holds one row per lesion, so one click
    # would silently replace the other; neither is guessed at, both are reported
    same: Dict[Tuple[str, str, str, str], List[ManifestRow]] = {}
    for row in complete:
        if row.values["lesion_id"]:
            v = row.values
            session = v.get("session_id") or v["series"]  # no id given: its series tells the session
            same.setdefault((v["patient_id"], session, v["reader"], v["lesion_id"]), []).append(row)
    twice = {id(r) for group in same.values() if len(group) > 1 for r in group}
    for (patient, session, reader, lesion), group in same.items():
        if len(group) > 1:
            errors.append(f"manifest rows {', '.join(str(r.number) for r in group)}: lesion id {printable(lesion)} is given "
                          f"{len(group)} times for patient {printable(patient)} session {printable(session)} reader "
                          f"{printable(reader)}; none of these rows is quantified (the table keeps one row per lesion): "
                          "give each lesion its own id.")
    for row in complete:
        if id(row) in twice:
            continue
        key = (row.values["series"], row.values["patient_id"], row.values.get("session_id", ""))
        groups.setdefault(key, []).append(row)
    return list(groups.items()), errors


def session_id_warnings(out: Sequence[Dict[str, Any]], known: dict) -> List[str]:
    """The warnings of one session's rows whose explicit session id differs from the one the table holds for the same
    patient and PET series (``known``, :func:`netpet.schema.known_session_ids`), each said once."""
    said, warnings = set(), []
    for row in out:
        where = (row.get("patient_id", ""), row.get("series_uid", ""), row.get("session_id", ""))
        conflict = schema.session_id_conflict(where[2], where[0], where[1], known) if where not in said else ""
        said.add(where)
        if conflict:
            warnings.append(conflict)
    return warnings


def run_manifest(manifest: str, table_path: str, options: Optional[SegmentOptions] = None, suv_type: str = "bw",
                 jobs: Optional[int] = None, dicom_seg: bool = False,
                 progress: Optional[Callable[[float, str], bool]] = None, pseudonymiser=None) -> Dict[str, Any]:
    """Quantify every row of a manifest into the study table; bad rows are reported, not fatal.

    With a ``pseudonymiser`` (:class:`netpet.privacy.Pseudonymiser`) the table rows, the
    segmentation files' names and the DICOM SEG carry the patients' pseudonyms, shifted dates and
    replaced UIDs (:meth:`~netpet.privacy.Pseudonymiser.row`) instead of the manifest's ids.

    A row's ``session_id`` may be empty: the session id rule of :mod:`netpet.schema` then gives it, as
    SUVQuant does in Slicer (the id the table already holds for the patient's PET series, else the id
    derived from the series' study). An explicit id different from the one the table holds for the same
    patient and series is written as given, with a warning.

    Returns {"rows": written, "errors": [messages], "segmentations": {file: [segment ids]},
    "warnings": [messages]}.
    """
    options = options or SegmentOptions()
    rows = read_manifest(manifest)
    table = StudyTable(table_path)
    table.check()  # refuse a file that is not a study table, or cannot be written, before any work (header only)
    known = schema.known_session_ids(table.read())  # (patient, PET series) -> the session ids the table holds
    plan, errors = plan_manifest(rows)
    groups = {key: group for key, group in plan}
    table_dir = os.path.dirname(os.path.abspath(table_path))
    jobs = default_jobs() if jobs is None else max(1, jobs)
    work = [(group, table_dir, options, suv_type, dicom_seg, pseudonymiser, known) for group in groups.values()]
    written, segmentations = 0, {}
    done = 0
    warnings: List[str] = []

    def collect(result) -> None:
        nonlocal written, done
        out, group_errors, segs = result
        for conflict in session_id_warnings(out, known):  # an explicit id beside the one the table holds: said once
            warnings.append(conflict)
            log.warning("%s", conflict)
        if out:
            table.upsert(out)
            written += len(out)
            for (patient, series), sessions in schema.known_session_ids(out).items():
                known.setdefault((patient, series), set()).update(sessions)
        errors.extend(group_errors)
        segmentations.update(segs)
        done += 1
        if progress:
            progress(done / max(len(work), 1), f"{done}/{len(work)} series quantified")

    if jobs == 1 or len(work) <= 1:
        for job in work:
            collect(_group_job(job))
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=process_context()) as pool:
            for result in pool.map(_group_job, work):
                collect(result)
    return {"rows": written, "errors": errors, "segmentations": segmentations, "warnings": warnings}

