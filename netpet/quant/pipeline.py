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
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import SimpleITK as sitk

from netpet import __version__
from netpet.dicom.convert import convert_to_suv
from netpet.dicom.files import default_jobs, process_context
from netpet.dicom.index import SeriesRecord, index_tree
from netpet.dicom.suv import Overrides
from netpet.errors import DicomInputError, NetpetError
from netpet.quant import references
from netpet.quant.classify import LiverThresholdClassifier, krenning_score
from netpet.quant.export import write_dicom_seg, write_seg_nrrd
from netpet.quant.measure import measure
from netpet.quant.segment import LesionMask, ReferenceStats, SegmentOptions, segment
from netpet.quant.table import StudyTable
from netpet.quant.volume import QuantError, SUVVolume

IMAGE_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
MANIFEST_REQUIRED = ("patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s")


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


@dataclass
class LesionRequest:
    lesion_id: str
    seed_ras: Tuple[float, float, float]
    region: str = ""
    background_ras: Optional[Tuple[float, float, float]] = None


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


def open_session(source, patient_id: str = "", session_id: str = "", modality: str = "", tracer: str = "",
                 series_uid: Optional[str] = None, suv_type: str = "bw", overrides: Optional[Overrides] = None,
                 jobs: Optional[int] = 1) -> Session:
    """The SUV volume of a session from a SeriesRecord, a PET DICOM folder/file, or an SUV image file.

    For an SUV image the modality and tracer must be given; for DICOM they come from the index.
    """
    if isinstance(source, str) and _is_image(source):
        image = sitk.ReadImage(source)
        return Session(SUVVolume.from_image(image, os.path.basename(source)), patient_id, session_id,
                       modality or "", tracer or "", series_uid or "", suv_type)
    record = source
    if not isinstance(source, SeriesRecord):
        if not os.path.exists(source):
            raise DicomInputError(f"{source} does not exist; give a PET DICOM folder or an SUV image "
                                  f"({', '.join(IMAGE_SUFFIXES)}).")
        index = index_tree(source, jobs=jobs)
        pets = index.pet_series()
        if series_uid:
            record = index.series(series_uid)
        elif len(pets) == 1:
            record = pets[0]
        else:
            raise DicomInputError(f"{source} holds {len(pets)} PET series; name one (series uid) or give its folder.")
        if record.hybrid is None and not modality:
            record = _with_partner(source, record, jobs)
    result = convert_to_suv(record, suv_type, overrides, jobs=jobs)
    modality = modality or (record.hybrid or "PET")
    tracer = tracer or (record.tracer.key if record.tracer else "unknown")
    return Session(SUVVolume.from_image(result.image, f"PET series {record.series_uid}"), patient_id or record.patient_id,
                   session_id or record.study_uid, modality, tracer, record.series_uid, suv_type,
                   result.provenance.to_dict(), list(record.files))


def _with_partner(source: str, record: SeriesRecord, jobs: Optional[int]) -> SeriesRecord:
    """The PET as indexed with its session's folder, where its CT or MR partner usually lies
    (a PET folder alone cannot tell PET/CT from PET/MR)."""
    parent = os.path.dirname(os.path.abspath(source if os.path.isdir(source) else os.path.dirname(source)))
    try:
        return index_tree(parent, jobs=jobs).series(record.series_uid)
    except NetpetError:
        return record


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
            lesions[request.lesion_id] = segment(volume, request.seed_ras, options, liver, others)
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

    ``requests`` gives each lesion's seed, region and background point where known.
    """
    volume = session.volume
    requests = requests or {}
    liver = liver or references.liver_reference(volume, liver_ras)
    spleen = None
    if session.tracer == "dotatate":
        try:
            spleen = references.spleen_reference(volume, spleen_ras)
        except QuantError:
            spleen = None
    model = classifier if classifier is not None else LiverThresholdClassifier().fit(
        {"suv_max": [1.0], "liver_suv_mean": [1.0]})
    rows, calls = [], {}
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    for lesion_id, lesion in lesions.items():
        request = requests.get(lesion_id)
        others = [m for k, m in lesions.items() if k != lesion_id]
        try:
            background = (references.background_point(volume, request.background_ras)
                          if request is not None and request.background_ras
                          else references.background_shell(volume, lesion, others=others))
        except QuantError:
            background = None
        values = measure(volume, lesion, liver, background, spleen)
        call = "positive" if int(model.predict({model.statistic: [values[model.statistic]],
                                                 model.reference: [values[model.reference]]})[0]) else "negative"
        calls[lesion_id] = call
        krenning = krenning_score(values["suv_max"], liver.mean, spleen.mean if spleen else None,
                                  background.mean if background else None) if session.tracer == "dotatate" else ""
        seed = request.seed_ras if request is not None else (values["suv_peak_center_r"], values["suv_peak_center_a"],
                                                              values["suv_peak_center_s"])
        row = {
            "patient_id": session.patient_id, "session_id": session.session_id, "modality": session.modality,
            "tracer": session.tracer, "reader": reader, "lesion_id": lesion_id,
            "region": request.region if request is not None else "",
            **{k: v for k, v in values.items()}, "krenning": krenning, "call": call,
            "segmentation_file": segmentation_file, "suv_type": session.suv_type, "method": lesion.method,
            "liver_center_r": liver.center_ras[0], "liver_center_a": liver.center_ras[1],
            "liver_center_s": liver.center_ras[2], "seed_r": seed[0], "seed_a": seed[1],
            "seed_s": seed[2], "series_uid": session.series_uid, "netpet_version": __version__,
            "updated": now, **_provenance_columns(session.provenance),
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
        "tracer": session.tracer, "reader": reader, "lesion_id": "", "region": "", "call": "",
        "suv_type": session.suv_type, "series_uid": session.series_uid, "netpet_version": __version__,
        "updated": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        **_provenance_columns(session.provenance),
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
    """Rows of a quantification manifest (CSV). Relative series paths are relative to it."""
    if not os.path.exists(path):
        raise NetpetError(f"The manifest {path} does not exist.")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in MANIFEST_REQUIRED if c not in header]
        if missing:
            raise NetpetError(f"The manifest {path} lacks the column(s) {', '.join(missing)}; it needs "
                              f"{', '.join(MANIFEST_REQUIRED)} (and may give liver_r, liver_a, liver_s, region, method, "
                              "modality, tracer).")
        rows = [ManifestRow(i + 2, {k: (v or "").strip() for k, v in r.items() if k}) for i, r in enumerate(reader)]
    base = os.path.dirname(os.path.abspath(path))
    for row in rows:
        series = row.values.get("series", "")
        if series and not os.path.isabs(series):
            row.values["series"] = os.path.normpath(os.path.join(base, series))
    return rows


def _point(values: Dict[str, str], prefix: str, number: int, required: bool) -> Optional[Tuple[float, float, float]]:
    texts = [values.get(f"{prefix}_{axis}", "") for axis in "ras"]
    if not any(texts):
        if required:
            raise NetpetError(f"manifest row {number}: {prefix}_r, {prefix}_a, {prefix}_s are empty")
        return None
    try:
        return tuple(float(t) for t in texts)  # type: ignore[return-value]
    except ValueError as exc:
        raise NetpetError(f"manifest row {number}: {prefix}_r/a/s must be numbers (RAS mm), got {texts}") from exc


def _group_job(job) -> Tuple[List[Dict[str, Any]], List[str], Dict[str, List[str]]]:
    """Quantify one series' rows (runs in a worker process): (table rows, errors, seg files)."""
    rows, table_dir, options, suv_type, dicom_seg = job
    first = rows[0].values
    errors: List[str] = []
    out: List[Dict[str, Any]] = []
    segs: Dict[str, List[str]] = {}
    try:
        session = open_session(first["series"], first["patient_id"], first["session_id"], first.get("modality", ""),
                               first.get("tracer", ""), suv_type=suv_type)
    except NetpetError as exc:
        return [], [f"manifest rows {', '.join(str(r.number) for r in rows)}: {exc}"], {}
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
            out.append(session_row(session, reader, liver_point))
            continue
        for row in group:
            try:
                seed = _point(row.values, "seed", row.number, True)
                good.append((row, LesionRequest(row.values["lesion_id"], seed, row.values.get("region", ""))))
            except NetpetError as exc:
                errors.append(str(exc))
        liver = None
        for row, _request in good:
            liver = liver or _point(row.values, "liver", row.number, False)
        name = f"{session.patient_id}_{session.session_id}_{reader}.seg.nrrd".replace(os.sep, "_")
        seg_rel = os.path.join("segmentations", name)
        requested = SegmentOptions(method=method) if method else options
        if not good:
            continue
        try:
            result = quantify(session, [r for _, r in good], reader, requested, liver,
                              segmentation_file=seg_rel.replace(os.sep, "/"), skip_failed=True)
        except NetpetError as exc:
            errors.append(f"manifest rows {', '.join(str(r.number) for r, _ in good)}: {exc}")
            continue
        numbers = {request.lesion_id: row.number for row, request in good}
        for lesion_id, message in result.errors.items():
            errors.append(f"manifest row {numbers[lesion_id]} ({lesion_id}): {message}")
        if not result.lesions:
            continue
        seg_path = os.path.join(table_dir, seg_rel)
        segs[seg_rel] = write_seg_nrrd(seg_path, session.volume, result.lesions, result.calls)
        if dicom_seg and session.source_paths:
            write_dicom_seg(seg_path.replace(".seg.nrrd", ".dcm"), session.source_paths, session.volume, result.lesions,
                            reader=reader)
        out.extend(result.rows)
    return out, errors, segs


def run_manifest(manifest: str, table_path: str, options: Optional[SegmentOptions] = None, suv_type: str = "bw",
                 jobs: Optional[int] = None, dicom_seg: bool = False,
                 progress: Optional[Callable[[float, str], bool]] = None) -> Dict[str, Any]:
    """Quantify every row of a manifest into the study table; bad rows are reported, not fatal.

    Returns {"rows": written, "errors": [messages], "segmentations": {file: [segment ids]}}.
    """
    options = options or SegmentOptions()
    rows = read_manifest(manifest)
    table = StudyTable(table_path)
    table.read()  # refuse a file that is not a study table before any work
    groups: Dict[Tuple[str, str, str], List[ManifestRow]] = {}
    errors: List[str] = []
    for row in rows:
        missing = [c for c in MANIFEST_REQUIRED if not row.values.get(c)]
        if _is_read_row(row.values):
            missing = [c for c in ("patient_id", "session_id", "series", "reader") if not row.values.get(c)]
        if missing:
            errors.append(f"manifest row {row.number}: empty {', '.join(missing)}")
            continue
        key = (row.values["series"], row.values["patient_id"], row.values["session_id"])
        groups.setdefault(key, []).append(row)
    table_dir = os.path.dirname(os.path.abspath(table_path))
    jobs = default_jobs() if jobs is None else max(1, jobs)
    work = [(group, table_dir, options, suv_type, dicom_seg) for group in groups.values()]
    written, segmentations = 0, {}
    done = 0

    def collect(result) -> None:
        nonlocal written, done
        out, group_errors, segs = result
        if out:
            table.upsert(out)
            written += len(out)
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
    return {"rows": written, "errors": errors, "segmentations": segmentations}

