"""What a PET series says about its quantification, normalised over files and frames.

A PET series arrives either as one file per slice (PET Image Storage) or as one or more
multi-frame files (Enhanced PET Image Storage, Legacy Converted Enhanced PET). This module
reads the attributes SUV conversion needs into :class:`PetHeader` (series level) and
:class:`PetFrame` (one per image plane), so that the SUV rules in :mod:`netpet.dicom.suv`
never deal with file layouts. Nothing here decides anything about SUV; it only reads,
and notes values it had to ignore.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pydicom.dataset import Dataset

from netpet.dicom import dates, tags

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
ENHANCED_PET_STORAGE = "1.2.840.10008.5.1.4.1.1.130"
LEGACY_ENHANCED_PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128.1"

GE_CREATOR = "GEMS_PETD_01"
SIEMENS_CREATOR = "SIEMENS MED PT"
PHILIPS_CREATOR = "Philips PET Private Group"

#: UCUM codes of DICOM CID 84 "PET Units" -> (Units (0054,1001) term, SUVType term)
UCUM_UNITS: Dict[str, Tuple[str, Optional[str]]] = {
    "Bq/ml": ("BQML", None),
    "{counts}": ("CNTS", None),
    "{counts}/s": ("CPS", None),
    "g/ml{SUVbw}": ("GML", "BW"),
    "g/ml{SUVlbm}": ("GML", "LBM"),
    "g/ml{SUVlbm(James128)}": ("GML", "LBMJAMES128"),
    "g/ml{SUVlbm(Janma)}": ("GML", "LBMJANMA"),
    "g/ml{SUVibw}": ("GML", "IBW"),
    "cm2/ml{SUVbsa}": ("CM2ML", "BSA"),
    "{propcounts}": ("PROPCNTS", None),
    "{propcounts}/s": ("PROPCPS", None),
    "/cm": ("1CM", None),
}


@dataclass
class PetFrame:
    """One image plane: a single-frame file, or one frame of a multi-frame file.

    Times are local datetimes; durations and offsets keep DICOM's milliseconds.
    """

    path: str
    frame: Optional[int]
    instance_number: Optional[int]
    position: Optional[Tuple[float, float, float]]
    orientation: Optional[Tuple[float, ...]]
    pixel_spacing: Optional[Tuple[float, float]]
    slice_thickness: Optional[float]
    rows: int
    columns: int
    slope: Optional[float]
    intercept: Optional[float]
    acquisition: Optional[_dt.datetime] = None
    frame_reference_time_ms: Optional[float] = None
    frame_duration_ms: Optional[float] = None
    frame_reference_datetime: Optional[_dt.datetime] = None
    philips_suv_factor: Optional[float] = None
    philips_activity_factor: Optional[float] = None
    decay_factor: Optional[float] = None
    bits_stored: Optional[int] = None

    @property
    def label(self) -> str:
        return self.path if self.frame is None else f"{self.path} frame {self.frame + 1}"


@dataclass
class CodedValue:
    """A code from a code sequence item."""

    scheme: Optional[str]
    value: Optional[str]
    meaning: Optional[str]

    def text(self) -> str:
        return f"({self.value}, {self.scheme}, \"{self.meaning}\")"


@dataclass
class Radiopharmaceutical:
    """The first item of RadiopharmaceuticalInformationSequence (0054,0016)."""

    text: Optional[str] = None
    dose_raw: Optional[float] = None
    half_life_s: Optional[float] = None
    start_datetime: Optional[_dt.datetime] = None
    start_time: Optional[_dt.time] = None
    nuclide_code: Optional[CodedValue] = None
    agent_code: Optional[CodedValue] = None
    items: int = 0


@dataclass
class PetHeader:
    """Series-level quantification attributes of a PET series (see module docstring)."""

    label: str
    series_uid: str
    description: Optional[str]
    sop_class_uid: Optional[str]
    enhanced: bool
    manufacturer: Optional[str]
    model: Optional[str]
    units: Optional[str]
    units_source: str
    suv_type: Optional[str]
    decay_correction: Optional[str]
    decay_correction_source: str
    decay_correction_datetime: Optional[_dt.datetime]
    corrected_image: Tuple[str, ...]
    dose_calibration_factor: Optional[float]
    series_datetime: Optional[_dt.datetime]
    weight_raw: Optional[float]
    size_raw: Optional[float]
    sex_raw: Optional[str]
    radiopharmaceutical: Radiopharmaceutical
    ge_scan_datetime: Optional[_dt.datetime]
    ge_source: Optional[str]
    siemens_dc_datetime: Optional[_dt.datetime]
    siemens_source: Optional[str]
    photometric: Optional[str]
    frames: List[PetFrame] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    conflicts: Dict[str, List[Any]] = field(default_factory=dict)
    private_creators: Tuple[str, ...] = ()

    @property
    def vendor(self) -> str:
        """``GE``, ``SIEMENS``, ``PHILIPS`` or ``OTHER`` from Manufacturer (0008,0070), else from the
        vendors' private creators when anonymisation blanked Manufacturer (see :func:`vendor_from_creators`)."""
        vendor = vendor_of(self.manufacturer)
        return vendor if vendor != "OTHER" else vendor_from_creators(self.private_creators)

    @property
    def scanner(self) -> str:
        """The scanner as messages name it: Manufacturer and model, or what stands for them."""
        maker = (self.manufacturer or "").strip()
        model = (self.model or "").strip()
        if not maker:
            vendor = self.vendor
            maker = f"{vendor.title() if vendor != 'GE' else 'GE'} (from its private creators; Manufacturer empty)" \
                if vendor != "OTHER" else "an unnamed manufacturer's"
        return f"{maker} {model}".strip() if model else maker


#: Private creator prefixes (0029,0010)... that only one vendor writes, checked in order.
_VENDOR_CREATORS = (("GEMS_", "GE"), ("GE_", "GE"), ("SIEMENS", "SIEMENS"), ("CTI", "SIEMENS"),
                    ("PHILIPS", "PHILIPS"), ("SPI-P", "PHILIPS"), ("ELSCINT", "PHILIPS"))


def vendor_from_creators(creators: Sequence[str]) -> str:
    """Vendor from private creator elements (e.g. ``SIEMENS MEDCOM HEADER``, ``GEMS_PETD_01``), or OTHER.

    Private creators of other parties (anonymisers' ``CTP``, a treatment-planning system's) are ignored;
    creators of two vendors give OTHER.
    """
    found = set()
    for creator in creators:
        text = (creator or "").strip().upper()
        for prefix, vendor in _VENDOR_CREATORS:
            if text.startswith(prefix):
                found.add(vendor)
                break
    return found.pop() if len(found) == 1 else "OTHER"


def vendor_of(manufacturer: Optional[str]) -> str:
    """Normalise Manufacturer (0008,0070) to GE, SIEMENS, PHILIPS or OTHER."""
    text = (manufacturer or "").upper()
    if "SIEMENS" in text or text.startswith("CPS") or text.startswith("CTI"):
        return "SIEMENS"
    if text.startswith("GE") or "GENERAL ELECTRIC" in text or "GEMS" in text:
        return "GE"
    if "PHILIPS" in text or "ADAC" in text:
        return "PHILIPS"
    return "OTHER"


def _code(seq: Any) -> Optional[CodedValue]:
    if not seq:
        return None
    item = seq[0]
    value = tags.get_text(item, "CodeValue") or tags.get_text(item, "LongCodeValue") or tags.get_text(item, "URNCodeValue")
    return CodedValue(
        tags.get_text(item, "CodingSchemeDesignator"), value, tags.get_text(item, "CodeMeaning")
    )


def _radiopharmaceutical(ds: Dataset, notes: List[str]) -> Radiopharmaceutical:
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        return Radiopharmaceutical()
    item = seq[0]
    start_time = None
    try:
        start_time = dates.parse_tm(item.get("RadiopharmaceuticalStartTime", None))
    except ValueError as exc:
        notes.append(f"RadiopharmaceuticalStartTime (0018,1072) ignored: {exc}")
    return Radiopharmaceutical(
        text=tags.get_text(item, "Radiopharmaceutical"),
        dose_raw=tags.get_float(item, "RadionuclideTotalDose"),
        half_life_s=tags.get_float(item, "RadionuclideHalfLife"),
        start_datetime=tags.get_dt(item, "RadiopharmaceuticalStartDateTime", notes),
        start_time=start_time,
        nuclide_code=_code(item.get("RadionuclideCodeSequence")),
        agent_code=_code(item.get("RadiopharmaceuticalCodeSequence")),
        items=len(seq),
    )


def _tuple(value: Any, n: int) -> Optional[Tuple[float, ...]]:
    if value is None:
        return None
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return values if len(values) == n else None


def _functional(ds: Dataset, frame: int, sequence: str) -> Optional[Dataset]:
    """Item of a functional group macro for a frame: per-frame first, then shared."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        group = per_frame[frame].get(sequence)
        if group:
            return group[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        group = shared[0].get(sequence)
        if group:
            return group[0]
    return None


#: Standard tags read by :func:`_series_level`; their stored bytes fingerprint a file's
#: series-level attributes so that the files of one series are interpreted only once.
_LEVEL_TAGS = (
    0x00541001, 0x00541006, 0x00541102, 0x00189758, 0x00189701, 0x00280051, 0x00541322, 0x00080021,
    0x00080031, 0x00101030, 0x00101020, 0x00100040, 0x00540016, 0x00080070, 0x00081090, 0x00280004,
)
_LEVEL_CACHE: Dict[tuple, Tuple[Dict[str, Any], List[str]]] = {}


def _sequence_text(ds: Dataset, tag: int) -> Any:
    """The whole content of a sequence element, for a fingerprint (its repr only says "<Sequence, length 1>").

    Every item's elements as (tag, stored value), nested sequences likewise: the stored bytes,
    not pydicom's text rendering of the items (which cost a fifth of a PET file's reading).
    """
    value = tags.raw_bytes(ds, tag)
    if isinstance(value, str) and value.startswith("<Sequence"):
        return _items_fingerprint(ds[tag].value)
    return value


def _items_fingerprint(items: Any) -> tuple:
    out = []
    for item in items:
        for element_tag in item.keys():
            stored = tags.raw_bytes(item, element_tag)
            if isinstance(stored, str) and stored.startswith("<Sequence"):
                stored = _items_fingerprint(item[element_tag].value)
            out.append((int(element_tag), stored))
        out.append(None)  # item boundary
    return tuple(out)


def _level_fingerprint(ds: Dataset) -> tuple:
    """What the series-level reading depends on, so that the cache returns a reading only for the same values.

    Sequences are fingerprinted by their content: two series differing only inside their
    RadiopharmaceuticalInformationSequence (dose, times, half-life) must not share a reading.
    """
    private = tuple(
        (int(tag), tags.raw_bytes(ds, tag)) for tag in ds.keys()
        if tag.group in (0x0009, 0x0071) or (tag.group % 2 == 1 and 0x10 <= tag.element <= 0xFF)
    )
    return tuple(_sequence_text(ds, tag) if tag == 0x00540016 else tags.raw_bytes(ds, tag) for tag in _LEVEL_TAGS) + private


def _series_level(ds: Dataset, path: str, notes: List[str]) -> Dict[str, Any]:
    """Attributes that must agree across the files of a series (interpreted once per content)."""
    key = _level_fingerprint(ds)
    cached = _LEVEL_CACHE.get(key)
    if cached is None:
        level_notes: List[str] = []
        cached = (_read_series_level(ds, level_notes), level_notes)
        if len(_LEVEL_CACHE) > 32:
            _LEVEL_CACHE.clear()
        _LEVEL_CACHE[key] = cached
    for note in cached[1]:
        if note not in notes:
            notes.append(note)
    return cached[0]


def _read_series_level(ds: Dataset, notes: List[str]) -> Dict[str, Any]:
    ge_dt, ge_found = tags.private_datetime(ds, 0x0009, GE_CREATOR, 0x0D)
    sie_dt, sie_found = tags.private_datetime(ds, 0x0071, SIEMENS_CREATOR, 0x22)
    units = tags.get_text(ds, "Units")
    return {
        "units": units.upper() if units else None,
        "suv_type": (tags.get_text(ds, "SUVType") or "").upper() or None,
        "decay_correction": (tags.get_text(ds, "DecayCorrection") or "").upper() or None,
        "decay_corrected": (tags.get_text(ds, "DecayCorrected") or "").upper() or None,
        "decay_correction_datetime": tags.get_dt(ds, "DecayCorrectionDateTime", notes),
        "corrected_image": tags.get_multi_text(ds, "CorrectedImage"),
        "dose_calibration_factor": tags.get_float(ds, "DoseCalibrationFactor"),
        "series_datetime": tags.get_datetime(ds, "SeriesDate", "SeriesTime", notes),
        "weight_raw": tags.get_float(ds, "PatientWeight"),
        "size_raw": tags.get_float(ds, "PatientSize"),
        "sex_raw": tags.get_text(ds, "PatientSex"),
        "radiopharmaceutical": _radiopharmaceutical(ds, notes),
        "ge_scan_datetime": ge_dt,
        "ge_source": ge_found.describe("GE PET scan datetime", GE_CREATOR) if ge_found else None,
        "siemens_dc_datetime": sie_dt,
        "siemens_source": sie_found.describe("Siemens decay correction datetime", SIEMENS_CREATOR)
        if sie_found else None,
        "manufacturer": tags.get_text(ds, "Manufacturer"),
        "model": tags.get_text(ds, "ManufacturerModelName"),
        "photometric": tags.get_text(ds, "PhotometricInterpretation"),
        "private_creators": tuple(
            text for tag in ds.keys() if tag.group % 2 == 1 and 0x10 <= tag.element <= 0xFF
            for text in [tags.raw_text(ds, int(tag))] if text
        ),
    }


#: Series-level attributes compared across files; a disagreement is recorded as a conflict.
_COMPARED = (
    "units", "suv_type", "decay_correction", "decay_corrected", "weight_raw", "size_raw",
    "sex_raw", "series_datetime", "ge_scan_datetime", "siemens_dc_datetime",
    "decay_correction_datetime", "radiopharmaceutical",
)


def _raw_datetime(ds: Dataset, date_tag: int, time_tag: int, what: str, notes: List[str]) -> Optional[_dt.datetime]:
    try:
        return dates.combine(dates.parse_da(tags.raw_text(ds, date_tag)), dates.parse_tm(tags.raw_text(ds, time_tag)))
    except ValueError as exc:
        note = f"{what} ignored: {exc}"
        if note not in notes:
            notes.append(note)
        return None


def _acquisition(ds: Dataset, notes: List[str]) -> Optional[_dt.datetime]:
    """AcquisitionDate/Time, else AcquisitionDateTime, else AcquisitionTime on the series date."""
    acquisition = _raw_datetime(ds, 0x00080022, 0x00080032, "AcquisitionDate/Time", notes)
    if acquisition is None:
        acquisition = tags.get_dt(ds, "AcquisitionDateTime", notes)
    if acquisition is None and tags.raw_text(ds, 0x00080032):
        for date_tag, date_kw in ((0x00080021, "SeriesDate"), (0x00080020, "StudyDate")):
            acquisition = _raw_datetime(ds, date_tag, 0x00080032, "AcquisitionTime", notes)
            if acquisition is not None:
                series = _raw_datetime(ds, 0x00080021, 0x00080031, "SeriesDate/Time", notes)
                if series is not None and (series - acquisition).total_seconds() > 12 * 3600:
                    acquisition += _dt.timedelta(days=1)  # acquired after midnight
                note = f"AcquisitionDate (0008,0022) missing: AcquisitionTime placed on the {date_kw}"
                if note not in notes:
                    notes.append(note)
                break
    return acquisition


def _frames_classic(ds: Dataset, path: str, notes: List[str]) -> List[PetFrame]:
    philips_suv = philips_acsf = None
    if any(tag in ds for tag in ((0x7053, 0x0010), (0x7053, 0x1000), (0x7053, 0x1009))):
        philips_suv, _ = tags.private_float(ds, 0x7053, PHILIPS_CREATOR, 0x00)
        philips_acsf, _ = tags.private_float(ds, 0x7053, PHILIPS_CREATOR, 0x09)
    spacing = tags.raw_floats(ds, 0x00280030)
    position = tags.raw_floats(ds, 0x00200032)
    orientation = tags.raw_floats(ds, 0x00200037)
    instance = tags.raw_float(ds, 0x00200013)
    return [
        PetFrame(
            path=path,
            frame=None,
            instance_number=int(instance) if instance is not None else None,
            position=position if position and len(position) == 3 else None,
            orientation=orientation if orientation and len(orientation) == 6 else None,
            pixel_spacing=(spacing[0], spacing[1]) if spacing and len(spacing) == 2 else None,
            slice_thickness=tags.raw_float(ds, 0x00180050),
            rows=int(ds.get("Rows", 0) or 0),
            columns=int(ds.get("Columns", 0) or 0),
            slope=tags.raw_float(ds, 0x00281053),
            intercept=tags.raw_float(ds, 0x00281052),
            acquisition=_acquisition(ds, notes),
            frame_reference_time_ms=tags.raw_float(ds, 0x00541300),
            frame_duration_ms=tags.raw_float(ds, 0x00181242),
            philips_suv_factor=philips_suv,
            philips_activity_factor=philips_acsf,
            decay_factor=tags.raw_float(ds, 0x00541321),
            bits_stored=_bits_stored(ds),
        )
    ]


def _bits_stored(ds: Dataset) -> Optional[int]:
    """BitsStored (0028,0101) when it is a usable bit count (1-64), else None."""
    try:
        value = int(ds.get("BitsStored", 0) or 0)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= 64 else None


def _frames_enhanced(ds: Dataset, path: str, notes: List[str]) -> Tuple[List[PetFrame], Optional[str], Optional[str], str]:
    """Frames of a multi-frame file, plus the units found in its Real World Value Mapping."""
    n = int(tags.get_float(ds, "NumberOfFrames") or 1)
    frames: List[PetFrame] = []
    units_seen: List[Tuple[Optional[str], Optional[str]]] = []
    rwv_used = False
    for i in range(n):
        plane = _functional(ds, i, "PlanePositionSequence")
        orient = _functional(ds, i, "PlaneOrientationSequence")
        measures = _functional(ds, i, "PixelMeasuresSequence")
        content = _functional(ds, i, "FrameContentSequence")
        transform = _functional(ds, i, "PixelValueTransformationSequence")
        rwv = _functional(ds, i, "RealWorldValueMappingSequence")
        corrections = _functional(ds, i, "PETFrameCorrectionFactorsSequence")
        slope = intercept = None
        if rwv is not None and (
            rwv.get("RealWorldValueSlope") is not None or rwv.get("RealWorldValueIntercept") is not None
        ):
            slope = tags.get_float(rwv, "RealWorldValueSlope")
            intercept = tags.get_float(rwv, "RealWorldValueIntercept")
            rwv_used = True
            unit_code = _code(rwv.get("MeasurementUnitsCodeSequence"))
            ucum = unit_code.value if unit_code else None
            units_seen.append(UCUM_UNITS.get(ucum or "", (None, None)) if ucum in UCUM_UNITS else (ucum, None))
        elif transform is not None:
            slope = tags.get_float(transform, "RescaleSlope")
            intercept = tags.get_float(transform, "RescaleIntercept")
        else:
            slope = tags.get_float(ds, "RescaleSlope")
            intercept = tags.get_float(ds, "RescaleIntercept")
        spacing = _tuple(measures.get("PixelSpacing"), 2) if measures is not None else None
        acquisition = tags.get_dt(content, "FrameAcquisitionDateTime", notes) if content is not None else None
        frames.append(
            PetFrame(
                path=path,
                frame=i,
                instance_number=i + 1,
                position=_tuple(plane.get("ImagePositionPatient"), 3) if plane is not None else None,
                orientation=_tuple(orient.get("ImageOrientationPatient"), 6) if orient is not None else None,
                pixel_spacing=(spacing[0], spacing[1]) if spacing else None,
                slice_thickness=tags.get_float(measures, "SliceThickness") if measures is not None else None,
                rows=int(ds.get("Rows", 0) or 0),
                columns=int(ds.get("Columns", 0) or 0),
                slope=slope,
                intercept=intercept,
                acquisition=acquisition,
                frame_reference_time_ms=None,
                frame_duration_ms=tags.get_float(content, "FrameAcquisitionDuration") if content is not None else None,
                frame_reference_datetime=tags.get_dt(content, "FrameReferenceDateTime", notes)
                if content is not None else None,
                decay_factor=tags.get_float(corrections, "DecayFactor") if corrections is not None else None,
                bits_stored=_bits_stored(ds),
            )
        )
    distinct = sorted({u for u in units_seen}, key=str)
    if len(distinct) > 1:
        return frames, "CONFLICT:" + ",".join(str(u[0]) for u in distinct), None, "Real World Value Mapping"
    if distinct:
        units, suv_type = distinct[0]
        return frames, units, suv_type, "MeasurementUnitsCodeSequence (0040,08EA) of the Real World Value Mapping"
    return frames, None, None, "Units (0054,1001)" if not rwv_used else "Real World Value Mapping"


@dataclass
class FileHeader:
    """What one file says: its series-level attributes and its image planes (picklable)."""

    path: str
    level: Dict[str, Any]
    frames: List[PetFrame]
    enhanced: bool
    rwv_units: Optional[str]
    rwv_suv_type: Optional[str]
    rwv_source: str
    sop_class_uid: Optional[str]
    series_uid: str
    description: Optional[str]
    modality: Optional[str]
    notes: List[str]


def read_file_header(path: str, ds: Dataset) -> FileHeader:
    """Read one file of a PET series (headers only; pixel data is not touched)."""
    notes: List[str] = []
    level = _series_level(ds, path, notes)
    sop_class = _ascii_text(ds, 0x00080016)
    enhanced = sop_class in (ENHANCED_PET_STORAGE, LEGACY_ENHANCED_PET_STORAGE) or (
        "PerFrameFunctionalGroupsSequence" in ds
    )
    rwv_units = rwv_type = None
    rwv_source = "Units (0054,1001)"
    if enhanced:
        frames, rwv_units, rwv_type, rwv_source = _frames_enhanced(ds, path, notes)
    else:
        frames = _frames_classic(ds, path, notes)
    return FileHeader(
        path=path, level=level, frames=frames, enhanced=enhanced, rwv_units=rwv_units, rwv_suv_type=rwv_type,
        rwv_source=rwv_source, sop_class_uid=sop_class, series_uid=_ascii_text(ds, 0x0020000E) or "",
        description=tags.get_text(ds, "SeriesDescription"), modality=_ascii_text(ds, 0x00080060), notes=notes,
    )


def _ascii_text(ds: Dataset, tag: int) -> Optional[str]:
    """The first value of a UID or code string, read from its stored bytes (ASCII by definition, PS3.5 6.2):
    what :func:`tags.get_text` returns, without pydicom's conversion and validation of every file's UIDs."""
    text = tags.raw_text(ds, tag)
    if text is None:
        return None
    return text.split("\\")[0].strip().strip("\x00").strip() or None


def read_pet_header(datasets: Sequence[Tuple[str, Dataset]], label: str) -> PetHeader:
    """Read the quantification attributes of one PET series from its datasets.

    Parameters
    ----------
    datasets : sequence of (path, pydicom Dataset)
        Every file of the series (headers suffice; pixel data is not touched).
    label : str
        How errors and notes name the series.
    """
    return combine([read_file_header(path, ds) for path, ds in datasets], label)


def _same(a: Any, b: Any) -> bool:
    """Equal values; NaN equals NaN here (a NaN written in every file is one value, refused later as such)."""
    return a == b or repr(a) == repr(b)


def combine(files: Sequence[FileHeader], label: str) -> PetHeader:
    """One series header from the headers of its files.

    Returns
    -------
    PetHeader
        With one :class:`PetFrame` per image plane, in file order. Attributes that differ
        between files are listed in ``conflicts``.
    """
    if not files:
        raise ValueError("no files")
    first = files[0]
    level = first.level
    notes: List[str] = []
    conflicts: Dict[str, List[Any]] = {}
    frames: List[PetFrame] = []
    units = level["units"]
    units_source = "Units (0054,1001)"
    suv_type = level["suv_type"]
    for index, header in enumerate(files):
        for note in header.notes:
            if note not in notes:
                notes.append(note)
        if index:
            for key in _COMPARED:
                if not _same(header.level[key], level[key]):
                    conflicts.setdefault(key, [level[key]])
                    if not any(_same(header.level[key], seen) for seen in conflicts[key]):
                        conflicts[key].append(header.level[key])
        frames.extend(header.frames)
        if header.enhanced and header.rwv_units is not None:
            units, units_source = header.rwv_units, header.rwv_source
            suv_type = header.rwv_suv_type or suv_type
    enhanced = first.enhanced
    sop_class = first.sop_class_uid

    decay = level["decay_correction"]
    decay_source = "DecayCorrection (0054,1102)"
    if enhanced and level["decay_corrected"] in ("YES", "NO"):
        # Enhanced PET Corrections module: DecayCorrected (0018,9758) YES means decay corrected to
        # DecayCorrectionDateTime (0018,9701); NO means each frame is at its own time.
        decay = "START" if level["decay_corrected"] == "YES" else "NONE"
        decay_source = f"DecayCorrected (0018,9758) = {level['decay_corrected']}"
    return PetHeader(
        label=label,
        series_uid=first.series_uid,
        description=first.description,
        sop_class_uid=sop_class,
        enhanced=enhanced,
        manufacturer=level["manufacturer"],
        model=level["model"],
        units=units,
        units_source=units_source,
        suv_type=suv_type,
        decay_correction=decay,
        decay_correction_source=decay_source,
        decay_correction_datetime=level["decay_correction_datetime"],
        corrected_image=level["corrected_image"],
        dose_calibration_factor=level["dose_calibration_factor"],
        series_datetime=level["series_datetime"],
        weight_raw=level["weight_raw"],
        size_raw=level["size_raw"],
        sex_raw=level["sex_raw"],
        radiopharmaceutical=level["radiopharmaceutical"],
        ge_scan_datetime=level["ge_scan_datetime"],
        ge_source=level["ge_source"],
        siemens_dc_datetime=level["siemens_dc_datetime"],
        siemens_source=level["siemens_source"],
        photometric=level["photometric"],
        frames=frames,
        notes=notes,
        conflicts=conflicts,
        private_creators=level.get("private_creators", ()),
    )
