"""Write PET, CT and MR image series as standard single-frame DICOM.

Used by the digital reference study, the demo and the tests: volumes in LPS geometry become
files a PACS, 3D Slicer and a DICOM validator accept. PET is written as the scanners write
it: int16 stored values with a rescale slope per slice, Units BQML, DecayCorrection START,
per-bed acquisition times with FrameReferenceTime and ActualFrameDuration, and the
radiopharmaceutical information with its code sequences.

Builders return pydicom Datasets (callers may still alter them, as the SUV tests do to mimic
vendors); :func:`save_datasets` writes them.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr_element, write_data_element, write_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

from netpet.dicom.radionuclides import Radionuclide
from netpet.dicom.suv import average_count_rate_offset_s

PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
IMPLEMENTATION_VERSION = "NETPET_010"


@dataclass
class VolumeGeometry:
    """LPS placement of a (z, y, x) array: origin (mm), spacing (x, y, z mm), direction.

    ``direction`` is row-major 3x3 as in SimpleITK: its columns are the x (row), y (column)
    and z (slice) axes in LPS.
    """

    origin: Tuple[float, float, float]
    spacing: Tuple[float, float, float]
    direction: Tuple[float, ...] = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)

    def axes(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def slice_position(self, k: int) -> Tuple[float, float, float]:
        axes = self.axes()
        pos = np.asarray(self.origin) + axes[:, 2] * self.spacing[2] * k
        return tuple(float(v) for v in pos)

    def orientation(self) -> List[float]:
        axes = self.axes()
        return [float(v) for v in np.concatenate([axes[:, 0], axes[:, 1]])]


@dataclass
class PatientInfo:
    patient_id: str
    name: str
    sex: str
    birth_date: Optional[_dt.date] = None
    weight_kg: Optional[float] = None
    height_m: Optional[float] = None


@dataclass
class StudyInfo:
    study_uid: str
    start: _dt.datetime
    description: str = ""
    accession: str = ""
    study_id: str = "1"


@dataclass
class SeriesInfo:
    series_uid: str
    frame_of_reference_uid: str
    number: int
    description: str
    start: _dt.datetime
    manufacturer: str
    model: str
    station: str = "NETPET"
    software: str = "NETPET"
    body_part: str = ""


@dataclass
class PetAcquisition:
    """How a PET series was acquired and what was injected.

    ``bed_of_slice[k]`` is the bed position of slice k; beds are acquired one after another
    from ``series.start``, each for ``frame_duration_s``.
    """

    injection: _dt.datetime
    dose_bq: float
    nuclide: Radionuclide
    agent_text: str
    agent_code: Optional[Tuple[str, str, str]]
    frame_duration_s: float
    bed_of_slice: Sequence[int]
    corrected_image: Tuple[str, ...] = ("DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM")
    reconstruction: str = "OSEM"
    attenuation_method: str = "CT"


UidFactory = Callable[[str], str]

#: Namespace of NETPET's name-based UUIDs (RFC 4122 version 5).
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "netpet.invalid")


def deterministic_uid(*keys: object) -> str:
    """A UID derived from ``keys`` alone: 2.25 followed by the decimal form of a name-based UUID
    (PS3.5 B.2), so that generated data are the same, byte for byte, every time."""
    name = "\x1f".join(str(k) for k in keys)
    return "2.25." + str(uuid.uuid5(_UID_NAMESPACE, name).int)


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return meta


def _da(value: _dt.date) -> str:
    return value.strftime("%Y%m%d")


def _tm(value: _dt.datetime) -> str:
    return value.strftime("%H%M%S") + (f".{value.microsecond:06d}" if value.microsecond else "")


def _ds_text(value: float) -> str:
    """A DS value of at most 16 characters keeping about 10 significant digits."""
    for digits in range(12, 4, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.4g}"


def _template(modality: str, sop_class: str, patient: PatientInfo, study: StudyInfo, series: SeriesInfo,
              geometry: VolumeGeometry, rows: int, cols: int) -> Dataset:
    """The attributes every image of a series shares."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.StudyDate = _da(study.start)
    ds.SeriesDate = _da(series.start)
    ds.StudyTime = _tm(study.start)
    ds.SeriesTime = _tm(series.start)
    ds.AccessionNumber = study.accession
    ds.Modality = modality
    ds.Manufacturer = series.manufacturer
    ds.InstitutionName = "NETPET digital reference"
    ds.ReferringPhysicianName = ""
    ds.StationName = series.station
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = series.model
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = _da(patient.birth_date) if patient.birth_date else ""
    ds.PatientSex = patient.sex
    if patient.birth_date:
        age = (study.start.date() - patient.birth_date).days // 365
        ds.PatientAge = f"{age:03d}Y"
    ds.PatientSize = _ds_text(patient.height_m) if patient.height_m else ""
    ds.PatientWeight = _ds_text(patient.weight_kg) if patient.weight_kg else ""
    if series.body_part:
        ds.BodyPartExamined = series.body_part
    ds.SoftwareVersions = series.software
    if modality != "PT":  # PET carries PatientOrientationCodeSequence instead
        ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    ds.ImageOrientationPatient = [_ds_text(round(v, 10)) for v in geometry.orientation()]
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [_ds_text(geometry.spacing[1]), _ds_text(geometry.spacing[0])]
    ds.SliceThickness = _ds_text(geometry.spacing[2])
    ds.BitsAllocated = 16
    return ds


def _image(template: Dataset, sop_instance: str, geometry: VolumeGeometry, k: int,
           content: _dt.datetime) -> Dataset:
    """One image of a series: copies of the template's elements plus this slice's own.

    The element copies share their values with the template (strings, lists, sequences), so
    that writing encodes a shared value once; assigning an attribute of one image replaces
    its value there only.
    """
    ds = Dataset()
    for elem in template:
        ds.add(copy.copy(elem))
    ds.file_meta = _file_meta(str(template.SOPClassUID), sop_instance)
    ds.SOPInstanceUID = sop_instance
    ds.ContentDate = _da(content)
    ds.ContentTime = _tm(content)
    ds.InstanceNumber = k + 1
    position = geometry.slice_position(k)
    ds.ImagePositionPatient = [_ds_text(v) for v in position]
    ds.SliceLocation = _ds_text(position[2])
    return ds


def _code_item(scheme: str, value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def pet_datasets(activity_bqml: np.ndarray, geometry: VolumeGeometry, patient: PatientInfo, study: StudyInfo,
                 series: SeriesInfo, acquisition: PetAcquisition, uid: UidFactory) -> List[Dataset]:
    """PET slices (Units BQML, DecayCorrection START) from activity concentration, Bq/mL.

    ``activity_bqml`` is (z, y, x), decay corrected to ``series.start``. Each slice gets its own
    RescaleSlope so that its maximum uses the int16 range.
    """
    nz, ny, nx = activity_bqml.shape
    nuclide = acquisition.nuclide
    lam = math.log(2.0) / nuclide.half_life_s
    t_ave = average_count_rate_offset_s(acquisition.frame_duration_s, lam)
    beds = sorted(set(int(b) for b in acquisition.bed_of_slice))
    template = _template("PT", PET_STORAGE, patient, study, series, geometry, ny, nx)
    template.ImageType = ["ORIGINAL", "PRIMARY"]
    template.SeriesType = ["WHOLE BODY", "IMAGE"]
    template.Units = "BQML"
    template.CountsSource = "EMISSION"
    template.CorrectedImage = list(acquisition.corrected_image)
    template.RandomsCorrectionMethod = "DLYD"
    template.DecayCorrection = "START"
    template.ReconstructionMethod = acquisition.reconstruction
    template.AttenuationCorrectionMethod = acquisition.attenuation_method
    template.CollimatorType = "RING"
    template.NumberOfSlices = nz
    template.ActualFrameDuration = int(round(acquisition.frame_duration_s * 1000))
    template.DoseCalibrationFactor = "1"
    template.PatientOrientationCodeSequence = DicomSequence([_code_item("SCT", "102538003", "recumbent")])
    template.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence = DicomSequence(
        [_code_item("SCT", "40199007", "supine")])
    template.PatientGantryRelationshipCodeSequence = DicomSequence([_code_item("SCT", "399488007", "headfirst")])
    template.BitsStored = 16
    template.HighBit = 15
    template.PixelRepresentation = 1
    template.RescaleIntercept = "0"
    template.LossyImageCompression = "00"
    rp = Dataset()
    rp.Radiopharmaceutical = acquisition.agent_text
    rp.RadiopharmaceuticalStartTime = _tm(acquisition.injection)
    rp.RadiopharmaceuticalStartDateTime = acquisition.injection.strftime("%Y%m%d%H%M%S")
    rp.RadionuclideTotalDose = _ds_text(acquisition.dose_bq)
    rp.RadionuclideHalfLife = _ds_text(nuclide.half_life_s)
    rp.RadionuclidePositronFraction = _ds_text(_POSITRON_FRACTION.get(nuclide.name, 1.0))
    scheme, value = nuclide.codes[0]
    rp.RadionuclideCodeSequence = DicomSequence([_code_item(scheme, value, _nuclide_meaning(nuclide))])
    if acquisition.agent_code is not None:
        rp.RadiopharmaceuticalCodeSequence = DicomSequence([_code_item(*acquisition.agent_code)])
    sequence = DicomSequence([rp])  # one object for every slice (shared: see _image)
    datasets = []
    for k in range(nz):
        plane = np.asarray(activity_bqml[k], dtype=np.float64)
        peak = float(np.max(np.abs(plane)))
        slope = float(_ds_text(peak / 32767.0)) if peak > 0 else 1.0
        stored = np.clip(np.rint(plane / slope), -32768, 32767).astype(np.int16)
        bed = beds.index(int(acquisition.bed_of_slice[k]))
        bed_start = series.start + _dt.timedelta(seconds=bed * acquisition.frame_duration_s)
        ds = _image(template, uid(f"pet-instance-{k}"), geometry, k,
                    bed_start + _dt.timedelta(seconds=acquisition.frame_duration_s))
        ds.AcquisitionDate = _da(bed_start)
        ds.AcquisitionTime = _tm(bed_start)
        ds.ImageIndex = k + 1
        ds.FrameReferenceTime = _ds_text(1000.0 * (bed * acquisition.frame_duration_s + t_ave))
        ds.DecayFactor = _ds_text(math.exp(lam * bed * acquisition.frame_duration_s))
        ds.RadiopharmaceuticalInformationSequence = sequence
        ds.RescaleSlope = _ds_text(slope)
        ds.PixelData = stored.tobytes()
        datasets.append(ds)
    return datasets


# Positron branching fractions (DDEP): F-18 0.9686, Ga-68 0.8891, C-11 0.9976, Cu-64 0.1752,
# Zr-89 0.2274, N-13 0.9980, O-15 0.9990, Rb-82 0.9545.
_POSITRON_FRACTION = {"F-18": 0.9686, "Ga-68": 0.8891, "C-11": 0.9976, "Cu-64": 0.1752, "Zr-89": 0.2274,
                      "N-13": 0.9980, "O-15": 0.9990, "Rb-82": 0.9545}


def _nuclide_meaning(nuclide: Radionuclide) -> str:
    names = {"F": "Fluorine", "Ga": "Gallium", "C": "Carbon", "N": "Nitrogen", "O": "Oxygen", "Cu": "Copper",
             "Zr": "Zirconium", "Rb": "Rubidium", "I": "Iodine", "Sc": "Scandium", "Y": "Yttrium",
             "Ge": "Germanium"}
    return f"^{nuclide.mass_number}^{names[nuclide.symbol]}"


def ct_datasets(hu: np.ndarray, geometry: VolumeGeometry, patient: PatientInfo, study: StudyInfo,
                series: SeriesInfo, uid: UidFactory, kvp: float = 120.0) -> List[Dataset]:
    """CT slices from Hounsfield units (stored = HU + 1024, unsigned 12 bit)."""
    nz, ny, nx = hu.shape
    template = _template("CT", CT_STORAGE, patient, study, series, geometry, ny, nx)
    template.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    template.AcquisitionDate = _da(series.start)
    template.AcquisitionTime = _tm(series.start)
    template.AcquisitionNumber = 1
    template.KVP = _ds_text(kvp)
    template.BitsStored = 12
    template.HighBit = 11
    template.PixelRepresentation = 0
    template.RescaleIntercept = "-1024"
    template.RescaleSlope = "1"
    template.RescaleType = "HU"
    template.WindowCenter = "40"
    template.WindowWidth = "400"
    datasets = []
    for k in range(nz):
        ds = _image(template, uid(f"ct-instance-{k}"), geometry, k, series.start)
        ds.PixelData = np.clip(np.rint(hu[k] + 1024.0), 0, 4095).astype(np.uint16).tobytes()
        datasets.append(ds)
    return datasets


def mr_datasets(signal: np.ndarray, geometry: VolumeGeometry, patient: PatientInfo, study: StudyInfo,
                series: SeriesInfo, uid: UidFactory, field_strength_t: float = 3.0,
                repetition_ms: float = 4.0, echo_ms: float = 1.3, flip_deg: float = 9.0) -> List[Dataset]:
    """MR slices (T1-weighted gradient echo, as the Dixon sequence of PET/MR) from signal 0..4095."""
    nz, ny, nx = signal.shape
    template = _template("MR", MR_STORAGE, patient, study, series, geometry, ny, nx)
    template.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    template.AcquisitionDate = _da(series.start)
    template.AcquisitionTime = _tm(series.start)
    template.AcquisitionNumber = 1
    template.ScanningSequence = "GR"
    template.SequenceVariant = "SP"
    template.ScanOptions = ""
    template.MRAcquisitionType = "3D"
    template.RepetitionTime = _ds_text(repetition_ms)
    template.EchoTime = _ds_text(echo_ms)
    template.EchoTrainLength = 1
    template.FlipAngle = _ds_text(flip_deg)
    template.MagneticFieldStrength = _ds_text(field_strength_t)
    template.ImagingFrequency = _ds_text(42.577478 * field_strength_t)
    template.ImagedNucleus = "1H"
    template.BitsStored = 12
    template.HighBit = 11
    template.PixelRepresentation = 0
    datasets = []
    for k in range(nz):
        ds = _image(template, uid(f"mr-instance-{k}"), geometry, k, series.start)
        ds.PixelData = np.clip(np.rint(signal[k]), 0, 4095).astype(np.uint16).tobytes()
        datasets.append(ds)
    return datasets


def save_datasets(datasets: Sequence[Dataset], folder: str, prefix: str = "IM") -> List[str]:
    """Write datasets as ``<folder>/<prefix>NNNN`` (no suffix, as scanners do); return paths.

    Files are standard DICOM (preamble, file meta, explicit VR little endian). An element whose
    value object several datasets share (as the series builders here make them) is encoded
    once, which makes writing a series several times faster than saving each dataset.
    """
    os.makedirs(folder, exist_ok=True)
    encoded: Dict[tuple, bytes] = {}
    paths = []
    for i, ds in enumerate(datasets):
        path = os.path.join(folder, f"{prefix}{i + 1:04d}")
        encodings = _encodings(ds)
        body = []
        for elem in ds:
            key = (elem.tag, elem.VR, id(elem.value))
            chunk = encoded.get(key)
            if chunk is None:
                if " or " in elem.VR:  # e.g. PixelData 'OB or OW': resolved from this dataset
                    correct_ambiguous_vr_element(elem, ds, True)
                chunk = _encode(elem, encodings)
                encoded[key] = chunk
            body.append(chunk)
        meta = _buffer()
        write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
        with open(path, "wb") as handle:
            handle.write(b"\x00" * 128 + b"DICM")
            handle.write(meta.getvalue())
            handle.write(b"".join(body))
        paths.append(path)
    return paths


def _buffer() -> DicomBytesIO:
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    return buffer


def _encodings(ds: Dataset):
    return convert_encodings(ds.get("SpecificCharacterSet", "ISO_IR 6"))


def _encode(elem, encodings) -> bytes:
    buffer = _buffer()
    write_data_element(buffer, elem, encodings)
    return buffer.getvalue()


