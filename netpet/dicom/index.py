"""Index a DICOM folder tree: patients -> studies -> series, with PET tracer and partner.

The tree may nest folders, name files without a ``.dcm`` suffix, hold a DICOMDIR or not, and
mix in non-DICOM files; a series may be split over several folders. Only headers are read,
in parallel processes for large trees. Each PET series is labelled with its tracer and paired
with the anatomical series (CT or MR) of the same hybrid session: the one sharing its
FrameOfReferenceUID, else the one of the same study closest in time; the pair makes the PET a
``PET/CT`` or a ``PET/MR``.

Patient names and birth dates are read for grouping only and are left out of every export
unless asked for (``include_identity=True``).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence

from pydicom.tag import Tag

from netpet.dicom import dates, files, tags
from netpet.dicom.dates import iso
from netpet.dicom.pet_header import _radiopharmaceutical
from netpet.dicom.tracer import Tracer, identify
from netpet.errors import AmbiguousInputError, DicomInputError, printable
from netpet.progress import ProgressCallback, report

log = logging.getLogger(__name__)

ANATOMICAL = ("CT", "MR")
#: Trees smaller than this are read in this process (starting workers costs more): 400 files of the index's
#: few tags, or 128 files when PET headers are read whole (``pet_headers``: about twice the work per file).
PARALLEL_MIN_FILES = 400
PARALLEL_MIN_FILES_PET = 128
_CHUNK = 200
_CHUNK_PET = 64

#: Header tags the index needs; reading only these keeps a header read well under a millisecond.
_TAGS = [Tag(k) for k in (
    "SOPClassUID", "SOPInstanceUID", "Modality", "PatientID", "PatientName", "StudyInstanceUID",
    "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber", "SeriesInstanceUID",
    "SeriesNumber", "SeriesDescription", "SeriesDate", "SeriesTime", "AcquisitionDate",
    "AcquisitionTime", "AcquisitionDateTime", "FrameOfReferenceUID", "Manufacturer",
    "ManufacturerModelName", "NumberOfFrames", "ImageType", "Units", "DecayCorrection",
    "CorrectedImage", "RadiopharmaceuticalInformationSequence", "SpecificCharacterSet",
)]


@dataclass
class SeriesRecord:
    """One series of the tree (all its files, wherever they lie)."""

    series_uid: str
    modality: str
    description: Optional[str]
    series_number: Optional[int]
    sop_class_uid: Optional[str]
    frame_of_reference_uid: Optional[str]
    manufacturer: Optional[str]
    model: Optional[str]
    series_datetime: Optional[str]
    acquisition_datetime: Optional[str]
    instance_count: int
    frame_count: int
    files: List[str] = field(default_factory=list)
    folders: List[str] = field(default_factory=list)
    image_type: List[str] = field(default_factory=list)
    units: Optional[str] = None
    decay_correction: Optional[str] = None
    corrected_image: List[str] = field(default_factory=list)
    tracer: Optional[Tracer] = None
    partner_series_uid: Optional[str] = None
    partner_rule: Optional[str] = None
    hybrid: Optional[str] = None
    warnings: List[str] = field(default_factory=list)
    study_uid: str = ""
    patient_id: str = ""
    #: PET files read once while indexing with ``pet_headers=True`` (path -> netpet.dicom.convert.PreparedFile):
    #: a conversion then reads only their pixel values. Not part of the index's record (``to_dict``).
    prepared: Optional[Dict[str, Any]] = field(default=None, repr=False, compare=False)

    @property
    def is_pet(self) -> bool:
        return self.modality == "PT"

    def start(self) -> Optional[_dt.datetime]:
        text = self.acquisition_datetime or self.series_datetime
        return _dt.datetime.fromisoformat(text) if text else None

    def to_dict(self, include_files: bool = False) -> Dict[str, Any]:
        out = asdict(replace(self, prepared=None))
        out.pop("prepared")
        out["tracer"] = self.tracer.to_dict() if self.tracer else None
        if not include_files:
            out.pop("files")
        return out


@dataclass
class StudyRecord:
    study_uid: str
    date: Optional[str]
    description: Optional[str]
    accession: Optional[str]
    series: List[SeriesRecord] = field(default_factory=list)


@dataclass
class PatientRecord:
    patient_id: str
    name: Optional[str]
    studies: List[StudyRecord] = field(default_factory=list)


@dataclass
class StudyIndex:
    """The grouped index of a tree; see :func:`index_tree`."""

    root: str
    patients: List[PatientRecord]
    files_seen: int
    dicom_files: int
    skipped: Dict[str, int]

    def all_series(self) -> List[SeriesRecord]:
        return [s for p in self.patients for st in p.studies for s in st.series]

    def pet_series(self) -> List[SeriesRecord]:
        return [s for s in self.all_series() if s.is_pet]

    def series(self, uid: str, patient_id: Optional[str] = None, study_uid: Optional[str] = None,
               patient_hint: str = "--patient ID") -> SeriesRecord:
        """The series ``uid`` (of patient ``patient_id`` and study ``study_uid`` when given).

        Raises
        ------
        DicomInputError
            No such series.
        AmbiguousInputError
            The SeriesInstanceUID appears under several patients (an original beside its
            pseudonymised copy) and ``patient_id`` does not choose one; the message names the
            patients and ``patient_hint``, the way to choose.
        """
        found = [r for r in self.all_series() if r.series_uid == uid
                 and (patient_id is None or r.patient_id == patient_id)
                 and (study_uid is None or r.study_uid == study_uid)]
        if not found:
            of = f" of patient {printable(patient_id)}" if patient_id is not None else ""
            raise DicomInputError(f"No series with SeriesInstanceUID {printable(uid)}{of} under {printable(self.root)}.")
        if len(found) > 1:
            raise AmbiguousInputError(_copies_message(found, patient_hint))
        return found[0]

    def patient_ids(self) -> List[str]:
        return [p.patient_id for p in self.patients]

    def for_patient(self, patient_id: str) -> "StudyIndex":
        """The index of one patient (PatientID (0010,0020)) of the tree.

        Raises
        ------
        DicomInputError
            No patient of that id under the root (the ids there are listed).
        """
        chosen = [p for p in self.patients if p.patient_id == patient_id]
        if not chosen:
            ids = [printable(p) for p in self.patient_ids()]
            listed = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            raise DicomInputError(f"No patient with PatientID {printable(patient_id)} under {printable(self.root)}; "
                                  f"the PatientIDs there are: {listed or 'none'}.")
        return replace(self, patients=chosen)

    def choose_pet(self, series_uid: Optional[str] = None, patient_id: Optional[str] = None,
                   series_hint: str = "--series UID", patient_hint: str = "--patient ID") -> SeriesRecord:
        """The one PET series of the tree, or the one named; restricted to a patient when given.

        ``series_hint`` and ``patient_hint`` say, in the caller's terms, how a user names the series
        or the patient (a command-line option, a manifest column).

        Raises
        ------
        DicomInputError
            No PET series; the series named is missing or not PET; no such patient.
        AmbiguousInputError
            Several PET series (listed), or one PET series under several patients (an original
            beside a pseudonymised copy: both named) and nothing chose one.
        """
        index = self.for_patient(patient_id) if patient_id is not None else self
        if series_uid:
            record = index.series(series_uid, patient_hint=patient_hint)
            if not record.is_pet:
                raise DicomInputError(f"Series {printable(series_uid)} under {printable(self.root)} is "
                                      f"{printable(record.modality)}, not PET.")
            return record
        pets = index.pet_series()
        if not pets:
            of = f" of patient {printable(patient_id)}" if patient_id is not None else ""
            raise DicomInputError(f"No PET series{of} under {printable(self.root)} ({self.dicom_files} DICOM files, "
                                  f"{len(self.all_series())} series); give the folder that holds the PET.")
        uids = list(dict.fromkeys(p.series_uid for p in pets))
        if len(uids) > 1:
            copies = len(pets) > len(uids)
            hint = f"{series_hint} (and {patient_hint})" if copies else series_hint
            lines = [f"{len(uids)} PET series under {printable(self.root)}; choose one with {hint}:"]
            for record in pets:
                tracer = record.tracer.label if record.tracer else "tracer unknown"
                lines.append(f"  {printable(record.series_uid)}  patient {printable(record.patient_id)}  "
                             f"{printable(record.description or '')}  {printable(tracer)}  "
                             f"{record.hybrid or (record.tracer.imaging if record.tracer else 'PET') + ' only'}  "
                             f"{record.instance_count} files")
            raise AmbiguousInputError("\n".join(lines))
        if len(pets) > 1:
            raise AmbiguousInputError(_copies_message(pets, patient_hint))
        return pets[0]

    def to_dict(self, include_identity: bool = False, include_files: bool = False) -> Dict[str, Any]:
        """JSON-ready index. Patient names are left out unless ``include_identity``."""
        return {
            "root": self.root,
            "files_seen": self.files_seen,
            "dicom_files": self.dicom_files,
            "skipped": dict(self.skipped),
            "patients": [
                {
                    "patient_id": p.patient_id,
                    **({"patient_name": p.name} if include_identity else {}),
                    "studies": [
                        {
                            "study_uid": st.study_uid,
                            "date": st.date,
                            "description": st.description,
                            **({"accession": st.accession} if include_identity else {}),
                            "series": [s.to_dict(include_files) for s in st.series],
                        }
                        for st in p.studies
                    ],
                }
                for p in self.patients
            ],
        }


def _copies_message(records: Sequence[SeriesRecord], patient_hint: str) -> str:
    """One sentence naming the patients one SeriesInstanceUID appears under, and how to choose."""
    copies = "; ".join(f"patient {printable(r.patient_id)} (study {printable(r.study_uid)}, {r.instance_count} files in "
                       f"{printable(r.folders[0] if r.folders else '?')}{' ...' if len(r.folders) > 1 else ''})"
                       for r in records)
    modality = "PET" if records[0].modality == "PT" else printable(records[0].modality)
    return (f"The {modality} series {printable(records[0].series_uid)} appears under "
            f"{len(records)} patients, {copies} (an original beside a pseudonymised copy?); choose one with "
            f"{patient_hint}.")


def _raw_dt(ds, date_tag: int, time_tag: int) -> Optional[_dt.datetime]:
    try:
        return dates.combine(dates.parse_da(tags.raw_text(ds, date_tag)), dates.parse_tm(tags.raw_text(ds, time_tag)))
    except ValueError:
        return None


def _summaries(paths: Sequence[str], pet_headers: bool = False) -> List[Optional[Dict[str, Any]]]:
    """Per-file header summary (picklable), None for files that are not DICOM images.

    Identifiers, dates and numbers are read from the stored bytes (they are ASCII); the
    descriptive attributes, decoded with the file's character set, and the radiopharmaceutical
    are read once per series (``series_level``), from its first file in this chunk.

    With ``pet_headers`` every header is read whole (pixel data left on disk) and each PET file's
    reading for the SUV conversion is kept (``prepared``: :func:`netpet.dicom.convert.prepare_file`),
    so that a conversion after the index reads no header twice.
    """
    prepare = None
    if pet_headers:
        from netpet.dicom.convert import DEFER_BYTES, prepare_file as prepare
    out: List[Optional[Dict[str, Any]]] = []
    seen_series = set()
    for path in paths:
        if prepare is None:
            ds = files.read_header(path, specific_tags=_TAGS)
        else:
            ds = files.read_header(path, defer_size=DEFER_BYTES)
        if ds is None:
            out.append(None)
            continue
        modality = (tags.raw_text(ds, 0x00080060) or "OT").upper()
        series_uid = tags.raw_text(ds, 0x0020000E) or ""
        acquisition = _raw_dt(ds, 0x00080022, 0x00080032)
        if acquisition is None:
            try:
                acquisition = dates.parse_dt(tags.raw_text(ds, 0x0008002A))
            except ValueError:
                acquisition = None
        summary: Dict[str, Any] = {
            "path": path,
            "sop_instance_uid": tags.raw_text(ds, 0x00080018),
            "modality": modality,
            "patient_id": tags.raw_text(ds, 0x00100020) or "",
            "study_uid": tags.raw_text(ds, 0x0020000D) or "",
            "series_uid": series_uid,
            "series_datetime": _raw_dt(ds, 0x00080021, 0x00080031),
            "acquisition": acquisition,
            "frames": int(tags.raw_float(ds, 0x00280008) or 1),
            "series_level": None,
        }
        # per patient, study and series: one SeriesInstanceUID may (wrongly) appear under two patients
        group = (summary["patient_id"], summary["study_uid"], series_uid)
        if group not in seen_series:
            seen_series.add(group)
            notes: List[str] = []
            summary["series_level"] = {
                "sop_class_uid": tags.get_text(ds, "SOPClassUID"),
                "patient_name": tags.get_text(ds, "PatientName"),
                "study_date": tags.get_text(ds, "StudyDate"),
                "study_description": tags.get_text(ds, "StudyDescription"),
                "accession": tags.get_text(ds, "AccessionNumber"),
                "series_number": tags.get_float(ds, "SeriesNumber"),
                "description": tags.get_text(ds, "SeriesDescription"),
                "for_uid": tags.get_text(ds, "FrameOfReferenceUID"),
                "manufacturer": tags.get_text(ds, "Manufacturer"),
                "model": tags.get_text(ds, "ManufacturerModelName"),
                "image_type": list(tags.get_multi_text(ds, "ImageType")),
                "units": tags.get_text(ds, "Units"),
                "decay_correction": tags.get_text(ds, "DecayCorrection"),
                "corrected_image": list(tags.get_multi_text(ds, "CorrectedImage")),
                "radiopharmaceutical": _radiopharmaceutical(ds, notes) if modality == "PT" else None,
            }
        if prepare is not None and modality == "PT":
            try:
                summary["prepared"] = prepare(path, ds)
            except Exception:  # noqa: BLE001 - the conversion reads this file again and refuses it in its own words
                summary["prepared"] = None
        out.append(summary)
    return out


def _summaries_with_pet_headers(paths: Sequence[str]) -> List[Optional[Dict[str, Any]]]:
    return _summaries(paths, pet_headers=True)


def index_tree(root: str, jobs: Optional[int] = None, progress: Optional[ProgressCallback] = None,
               pet_headers: bool = False) -> StudyIndex:
    """Index every DICOM file under ``root``.

    Parameters
    ----------
    root : str
        A folder (searched recursively) or a single file.
    jobs : int, optional
        Worker processes for reading headers; default: all cores for large trees.
    progress : callable, optional
        ``progress(fraction, message) -> cancel`` (see :mod:`netpet.progress`).
    pet_headers : bool
        Read PET headers whole and keep their reading on each PET :class:`SeriesRecord` (``prepared``),
        for a conversion that follows (``netpet suv``): every header is read once in all.

    Returns
    -------
    StudyIndex

    Raises
    ------
    DicomInputError
        When ``root`` does not exist.
    """
    if not os.path.exists(root):
        raise DicomInputError(f"{root} does not exist; give a folder or file of DICOM data.")
    report(progress, 0.0, f"Listing files under {root}")
    paths = files.walk_files(root)
    total = len(paths)
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        report(progress, 0.05 + 0.9 * done[0] / max(total, 1), f"Read {done[0]}/{total} headers")

    jobs = files.default_jobs() if jobs is None else max(1, jobs)
    if total < (PARALLEL_MIN_FILES_PET if pet_headers else PARALLEL_MIN_FILES):
        jobs = 1
    # whole PET headers cost more per file: smaller chunks keep both workers busy to the end
    summaries = files.parallel_map(_summaries_with_pet_headers if pet_headers else _summaries, paths, jobs,
                                   _CHUNK_PET if pet_headers else _CHUNK, advance)
    report(progress, 0.97, "Grouping series")
    index = _group(root, paths, summaries)
    report(progress, 1.0, f"Indexed {index.dicom_files} DICOM files in {len(index.all_series())} series")
    return index


def index_files(paths: Sequence[str], jobs: Optional[int] = 1) -> StudyIndex:
    """Index a given list of files (as Slicer's DICOM browser hands them to a plugin)."""
    paths = [os.path.abspath(p) for p in paths]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DicomInputError(f"{missing[0]} does not exist ({len(missing)} of {len(paths)} files missing).")
    jobs = 1 if jobs is None or len(paths) < PARALLEL_MIN_FILES else max(1, jobs)
    summaries = files.parallel_map(_summaries, paths, jobs, _CHUNK, lambda count: None)
    root = os.path.commonpath(paths) if paths else ""
    return _group(root, paths, summaries)


def _group(root: str, paths: Sequence[str], summaries: Sequence[Optional[Dict[str, Any]]]) -> StudyIndex:
    skipped: Dict[str, int] = {}
    by_series: Dict[tuple, List[Dict[str, Any]]] = {}
    dicom_files = 0
    for _path, summary in zip(paths, summaries):
        if summary is None:
            skipped["not a DICOM image (or a DICOMDIR)"] = skipped.get("not a DICOM image (or a DICOMDIR)", 0) + 1
            continue
        if not summary["series_uid"]:
            skipped["DICOM without SeriesInstanceUID"] = skipped.get("DICOM without SeriesInstanceUID", 0) + 1
            continue
        dicom_files += 1
        key = (summary["patient_id"], summary["study_uid"], summary["series_uid"])
        by_series.setdefault(key, []).append(summary)

    patients: Dict[str, PatientRecord] = {}
    studies: Dict[tuple, StudyRecord] = {}
    for (patient_id, study_uid, series_uid), items in sorted(by_series.items(), key=lambda kv: kv[0]):
        record = _series_record(series_uid, items)
        record.patient_id, record.study_uid = patient_id, study_uid
        first = next(i["series_level"] for i in items if i["series_level"] is not None)
        patient = patients.setdefault(patient_id, PatientRecord(patient_id, first["patient_name"]))
        study = studies.get((patient_id, study_uid))
        if study is None:
            study = StudyRecord(study_uid, first["study_date"], first["study_description"], first["accession"])
            studies[(patient_id, study_uid)] = study
            patient.studies.append(study)
        study.series.append(record)
    owners: Dict[str, List[tuple]] = {}
    for patient_id, study_uid, series_uid in by_series:
        owners.setdefault(series_uid, []).append((patient_id, study_uid))
    for (patient_id, study_uid, series_uid), _items in by_series.items():
        if len(owners[series_uid]) > 1:
            others = ", ".join(f"patient {p} study {s}" for p, s in owners[series_uid] if (p, s) != (patient_id, study_uid))
            record = next(r for r in studies[(patient_id, study_uid)].series if r.series_uid == series_uid)
            record.warnings.append(f"the same SeriesInstanceUID also appears under {others}: both are listed; check "
                                   "the anonymisation or the archive before using either")
    for patient in patients.values():
        patient.studies.sort(key=lambda s: (s.date or "", s.study_uid))
        for study in patient.studies:
            study.series.sort(key=lambda s: (s.series_number if s.series_number is not None else 1e9, s.series_uid))
        _pair(patient)
    return StudyIndex(root, [patients[k] for k in sorted(patients)], len(paths), dicom_files, skipped)


def _series_record(series_uid: str, items: List[Dict[str, Any]]) -> SeriesRecord:
    warnings: List[str] = []
    # of duplicated instances keep the copy in the folder holding most of the series
    per_folder: Dict[str, int] = {}
    for item in items:
        folder = os.path.dirname(item["path"])
        per_folder[folder] = per_folder.get(folder, 0) + 1
    unique: Dict[str, Dict[str, Any]] = {}
    for item in sorted(items, key=lambda i: (-per_folder[os.path.dirname(i["path"])], i["path"])):
        uid = item["sop_instance_uid"] or item["path"]
        if uid in unique:
            warnings.append(f"duplicate instance {uid}: {item['path']} ignored (same as {unique[uid]['path']})")
            continue
        unique[uid] = item
    kept = list(unique.values())
    level = next(i["series_level"] for i in items if i["series_level"] is not None)
    modalities = sorted({i["modality"] for i in kept})
    if len(modalities) > 1:
        warnings.append(f"series mixes modalities {modalities}")
    acquisitions = [i["acquisition"] for i in kept if i["acquisition"] is not None]
    series_times = [i["series_datetime"] for i in kept if i["series_datetime"] is not None]
    folders = sorted({os.path.dirname(i["path"]) for i in kept})
    record = SeriesRecord(
        series_uid=series_uid,
        modality=kept[0]["modality"],
        description=level["description"],
        series_number=int(level["series_number"]) if level["series_number"] is not None else None,
        sop_class_uid=level["sop_class_uid"],
        frame_of_reference_uid=level["for_uid"],
        manufacturer=level["manufacturer"],
        model=level["model"],
        series_datetime=iso(min(series_times)) if series_times else None,
        acquisition_datetime=iso(min(acquisitions)) if acquisitions else None,
        instance_count=len(kept),
        frame_count=sum(i["frames"] for i in kept),
        files=sorted(i["path"] for i in kept),
        folders=folders,
        image_type=level["image_type"],
        units=level["units"],
        decay_correction=level["decay_correction"],
        corrected_image=level["corrected_image"],
        warnings=warnings,
    )
    if "prepared" in kept[0]:
        record.prepared = {i["path"]: i["prepared"] for i in kept if i.get("prepared") is not None}
    if len(folders) > 1:
        record.warnings.append(f"series split over {len(folders)} folders")
    if record.is_pet and level["radiopharmaceutical"] is not None:
        record.tracer = identify(level["radiopharmaceutical"], level["model"], level["description"])
    return record


def _time_gap(start: Optional[_dt.datetime]):
    """Seconds between ``start`` and a series' start (infinite when either is unknown)."""

    def gap(candidate: SeriesRecord) -> float:
        other = candidate.start()
        if start is None or other is None:
            return float("inf")
        return abs((other - start).total_seconds())

    return gap


def _pair(patient: PatientRecord) -> None:
    """Pair each PET series of a patient with its anatomical series (see module docstring)."""
    everything = [(study, s) for study in patient.studies for s in study.series]
    anatomical = [(study, s) for study, s in everything if s.modality in ANATOMICAL]
    for study, pet in everything:
        if not pet.is_pet:
            continue
        gap = _time_gap(pet.start())

        same_for = [s for _st, s in anatomical if pet.frame_of_reference_uid and s.frame_of_reference_uid == pet.frame_of_reference_uid]
        if same_for:
            partner = min(same_for, key=lambda s: (gap(s), -s.instance_count))
            rule = "same FrameOfReferenceUID"
            if len(same_for) > 1:
                rule += f" (closest in time of {len(same_for)})"
        else:
            same_study = [s for st, s in anatomical if st is study]
            if not same_study:
                continue
            partner = min(same_study, key=lambda s: (gap(s), -s.instance_count))
            rule = "same study, closest in time (no shared FrameOfReferenceUID)"
            if gap(partner) > 6 * 3600:
                pet.warnings.append("the anatomical partner was acquired more than 6 h apart")
        pet.partner_series_uid = partner.series_uid
        pet.partner_rule = rule
        pet.hybrid = f"{pet.tracer.imaging if pet.tracer else 'PET'}/{partner.modality}"  # SPECT stored as PT: SPECT/CT


def describe(index: StudyIndex) -> str:
    """Human-readable text of an index (no patient names)."""
    # every value read from the files goes through printable(): control characters in a description
    # or a patient id are shown escaped, never sent to the terminal
    p = printable
    lines = [f"{p(index.root)}: {index.dicom_files} DICOM files in {len(index.all_series())} series, "
             f"{len(index.patients)} patients ({index.files_seen - index.dicom_files} other files skipped)"]
    for patient in index.patients:
        lines.append(f"patient {p(patient.patient_id)}")
        for study in patient.studies:
            lines.append(f"  study {p(study.study_uid)} {p(study.date or '')} {p(study.description or '')}".rstrip())
            for s in study.series:
                head = f"    {p(s.modality):3} #{s.series_number if s.series_number is not None else '-':<4} " \
                       f"{p((s.description or '')[:40]):40} {s.instance_count:5} files"
                if s.is_pet:
                    tracer = s.tracer.label if s.tracer else "tracer unknown"
                    kind = s.hybrid or (s.tracer.imaging if s.tracer else "PET") + " only"  # never PET for a SPECT
                    head += f"  {p(tracer)}  {kind}  {p(s.units or '?')}"
                lines.append(head)
                lines.append(f"        {p(s.series_uid)}")
                for warning in s.warnings:
                    lines.append(f"        ! {p(warning)}")
    return "\n".join(lines)
