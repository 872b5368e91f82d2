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

import datetime as _dt
import math
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
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


def _common(ds: Dataset, modality: str, sop_class: str, sop_instance: str, patient: PatientInfo,
            study: StudyInfo, series: SeriesInfo, geometry: VolumeGeometry, k: int, rows: int, cols: int,
            content: _dt.datetime) -> None:
    ds.file_meta = _file_meta(sop_class, sop_instance)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyDate = _da(study.start)
    ds.SeriesDate = _da(series.start)
    ds.ContentDate = _da(content)
    ds.StudyTime = _tm(study.start)
    ds.SeriesTime = _tm(series.start)
    ds.ContentTime = _tm(content)
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
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [_ds_text(v) for v in geometry.slice_position(k)]
    ds.ImageOrientationPatient = [_ds_text(round(v, 10)) for v in geometry.orientation()]
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds_text(geometry.slice_position(k)[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [_ds_text(geometry.spacing[1]), _ds_text(geometry.spacing[0])]
    ds.SliceThickness = _ds_text(geometry.spacing[2])


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
    datasets = []
    for k in range(nz):
        plane = np.asarray(activity_bqml[k], dtype=np.float64)
        peak = float(np.max(np.abs(plane)))
        slope = peak / 32767.0 if peak > 0 else 1.0
        stored = np.clip(np.rint(plane / slope), -32768, 32767).astype(np.int16)
        bed = beds.index(int(acquisition.bed_of_slice[k]))
        bed_start = series.start + _dt.timedelta(seconds=bed * acquisition.frame_duration_s)
        ds = Dataset()
        _common(ds, "PT", PET_STORAGE, uid(f"pet-instance-{k}"), patient, study, series, geometry, k, ny, nx,
                bed_start + _dt.timedelta(seconds=acquisition.frame_duration_s))
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.AcquisitionDate = _da(bed_start)
        ds.AcquisitionTime = _tm(bed_start)
        ds.SeriesType = ["WHOLE BODY", "IMAGE"]
        ds.Units = "BQML"
        ds.CountsSource = "EMISSION"
        ds.CorrectedImage = list(acquisition.corrected_image)
        ds.RandomsCorrectionMethod = "DLYD"
        ds.DecayCorrection = "START"
        ds.ReconstructionMethod = acquisition.reconstruction
        ds.AttenuationCorrectionMethod = acquisition.attenuation_method
        ds.NumberOfSlices = nz
        ds.NumberOfTimeSlices = 1
        ds.ImageIndex = k + 1
        ds.FrameReferenceTime = _ds_text(1000.0 * (bed * acquisition.frame_duration_s + t_ave))
        ds.ActualFrameDuration = int(round(acquisition.frame_duration_s * 1000))
        ds.DecayFactor = _ds_text(math.exp(lam * bed * acquisition.frame_duration_s))
        ds.DoseCalibrationFactor = "1"
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
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([rp])
        ds.PatientOrientationCodeSequence = DicomSequence([_code_item("SCT", "102538003", "recumbent")])
        ds.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence = DicomSequence(
            [_code_item("SCT", "40199007", "supine")])
        ds.PatientGantryRelationshipCodeSequence = DicomSequence([_code_item("SCT", "399488007", "headfirst")])
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = _ds_text(slope)
        ds.RescaleType = "BQML"
        ds.LossyImageCompression = "00"
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
    """CT slices from Hounsfield units (stored = HU + 1024, unsigned)."""
    nz, ny, nx = hu.shape
    datasets = []
    for k in range(nz):
        stored = np.clip(np.rint(hu[k] + 1024.0), 0, 4095).astype(np.uint16)
        ds = Dataset()
        _common(ds, "CT", CT_STORAGE, uid(f"ct-instance-{k}"), patient, study, series, geometry, k, ny, nx,
                series.start)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.AcquisitionDate = _da(series.start)
        ds.AcquisitionTime = _tm(series.start)
        ds.AcquisitionNumber = 1
        ds.KVP = _ds_text(kvp)
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.PixelData = stored.tobytes()
        datasets.append(ds)
    return datasets


def mr_datasets(signal: np.ndarray, geometry: VolumeGeometry, patient: PatientInfo, study: StudyInfo,
                series: SeriesInfo, uid: UidFactory, field_strength_t: float = 3.0,
                repetition_ms: float = 4.0, echo_ms: float = 1.3) -> List[Dataset]:
    """MR slices (T1-weighted gradient echo, as the Dixon sequence of PET/MR) from signal 0..4095."""
    nz, ny, nx = signal.shape
    datasets = []
    for k in range(nz):
        stored = np.clip(np.rint(signal[k]), 0, 4095).astype(np.uint16)
        ds = Dataset()
        _common(ds, "MR", MR_STORAGE, uid(f"mr-instance-{k}"), patient, study, series, geometry, k, ny, nx,
                series.start)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "DIXON", "IN_PHASE"]
        ds.AcquisitionDate = _da(series.start)
        ds.AcquisitionTime = _tm(series.start)
        ds.AcquisitionNumber = 1
        ds.ScanningSequence = "GR"
        ds.SequenceVariant = "SP"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.RepetitionTime = _ds_text(repetition_ms)
        ds.EchoTime = _ds_text(echo_ms)
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = _ds_text(field_strength_t)
        ds.ImagingFrequency = _ds_text(42.577478 * field_strength_t)
        ds.ImagedNucleus = "1H"
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.PixelData = stored.tobytes()
        datasets.append(ds)
    return datasets


def save_datasets(datasets: Sequence[Dataset], folder: str, prefix: str = "IM") -> List[str]:
    """Write datasets as ``<folder>/<prefix>NNNN`` (no suffix, as scanners do); return paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets):
        path = os.path.join(folder, f"{prefix}{i + 1:04d}")
        ds.save_as(path, enforce_file_format=True) if _PYDICOM3 else ds.save_as(path, write_like_original=False)
        paths.append(path)
    return paths


def _pydicom_major() -> int:
    import pydicom

    return int(pydicom.__version__.split(".")[0])


_PYDICOM3 = _pydicom_major() >= 3
