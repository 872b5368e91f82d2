"""Digital reference objects (DROs) for SUV conversion, with vendor-shaped headers.

:func:`build` makes a small PET volume after the design of Vácha et al.'s DROs (background
SUVbw 1.00, a hot sphere of 4.00, a cold sphere of 0.20, zero outside the body) as BQML /
START datasets through :mod:`netpet.dicom.writer`. The vendor functions and :func:`reencode`
reshape the headers the way GE, Siemens and Philips scanners write them (private tags
included), or the way a rule under test needs. The tests, the demo and the benchmarks use
them; the true SUV of every voxel is known, so any SUV software can be checked against them.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset

from netpet.dicom import radionuclides, writer

HOT, COLD, BACKGROUND = 4.0, 0.2, 1.0


@dataclass
class Case:
    """Everything that defines a test PET series and its true SUVbw."""

    shape: Tuple[int, int, int] = (18, 20, 22)
    spacing: Tuple[float, float, float] = (4.07, 4.07, 3.27)
    origin: Tuple[float, float, float] = (-44.77, -40.7, -812.5)
    weight_kg: float = 72.5
    height_m: float = 1.68
    sex: str = "F"
    dose_bq: float = 184.6e6
    nuclide: str = "F-18"
    injection: dt.datetime = dt.datetime(2024, 3, 5, 9, 2, 31)
    scan: dt.datetime = dt.datetime(2024, 3, 5, 10, 4, 55)
    frame_s: float = 120.0
    beds: int = 3
    agent_text: str = "Fludeoxyglucose F^18^"
    agent_code: Optional[Tuple[str, str, str]] = ("SCT", "35321007", "Fluorodeoxyglucose F^18^")
    seed: str = "case"

    @property
    def half_life_s(self) -> float:
        return radionuclides.by_name(self.nuclide).half_life_s

    def bed_of_slice(self) -> List[int]:
        nz = self.shape[0]
        return [min(self.beds - 1, k * self.beds // nz) for k in range(nz)]

    def decayed_dose_bq(self, reference: Optional[dt.datetime] = None) -> float:
        reference = reference or self.scan
        lam = math.log(2) / self.half_life_s
        return self.dose_bq * math.exp(-lam * (reference - self.injection).total_seconds())

    def bw_factor(self) -> float:
        """SUVbw per Bq/mL at the scan start: W (g) / decayed dose (Bq)."""
        return self.weight_kg * 1000.0 / self.decayed_dose_bq()


def dro_suv(shape: Tuple[int, int, int]) -> np.ndarray:
    """SUVbw pattern: elliptic body of 1.00 with a hot (4.00) and a cold (0.20) sphere."""
    nz, ny, nx = shape
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    body = ((y - cy) / (0.42 * ny)) ** 2 + ((x - cx) / (0.45 * nx)) ** 2 <= 1.0
    suv = np.where(body, BACKGROUND, 0.0)
    hot = (z - nz * 0.35) ** 2 + (y - cy) ** 2 + (x - cx + nx * 0.2) ** 2 <= (min(ny, nx) * 0.15) ** 2
    cold = (z - nz * 0.7) ** 2 + (y - cy) ** 2 + (x - cx - nx * 0.2) ** 2 <= (min(ny, nx) * 0.15) ** 2
    suv[hot & body] = HOT
    suv[cold & body] = COLD
    return suv


def uid_factory(seed: str) -> Callable[[str], str]:
    return lambda key: writer.deterministic_uid("netpet-dro", seed, key)


def build(case: Case, suv: Optional[np.ndarray] = None) -> Tuple[List[Dataset], np.ndarray]:
    """BQML / START PET datasets whose true SUVbw is ``suv`` (default :func:`dro_suv`).

    The activity written is ``suv / case.bw_factor()`` Bq/mL (see :func:`activity`).
    """
    suv = dro_suv(case.shape) if suv is None else suv
    uid = uid_factory(case.seed)
    geometry = writer.VolumeGeometry(case.origin, case.spacing)
    patient = writer.PatientInfo("NETPET-T01", "Test^Patient", case.sex, dt.date(1961, 4, 2), case.weight_kg,
                                 case.height_m)
    study = writer.StudyInfo(uid("study"), case.scan - dt.timedelta(minutes=70), "PET test", "ACC1")
    series = writer.SeriesInfo(uid("series"), uid("for"), 3, "PET WB test", case.scan, "NETPET", "Synthetic")
    acquisition = writer.PetAcquisition(
        injection=case.injection, dose_bq=case.dose_bq, nuclide=radionuclides.by_name(case.nuclide),
        agent_text=case.agent_text, agent_code=case.agent_code, frame_duration_s=case.frame_s,
        bed_of_slice=case.bed_of_slice(),
    )
    activity = suv / case.bw_factor()
    datasets = writer.pet_datasets(activity, geometry, patient, study, series, acquisition, uid)
    for ds in datasets:  # own copies, so that a test may alter one slice's radiopharmaceutical
        ds.RadiopharmaceuticalInformationSequence = copy.deepcopy(ds.RadiopharmaceuticalInformationSequence)
    return datasets, suv


def activity(case: Case, suv: np.ndarray) -> np.ndarray:
    """Exact activity concentration (Bq/mL) at the scan start for an SUVbw array."""
    return suv / case.bw_factor()


def reencode(ds: Dataset, values: np.ndarray, dtype=np.int16) -> float:
    """Replace a slice's pixel data by ``values`` with a fresh slope; return the slope."""
    peak = float(np.max(np.abs(values)))
    info = np.iinfo(dtype)
    slope = peak / info.max if peak > 0 else 1.0
    stored = np.clip(np.rint(values / slope), info.min, info.max).astype(dtype)
    ds.PixelRepresentation = 1 if info.min < 0 else 0
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.RescaleSlope = writer._ds_text(slope)
    ds.PixelData = stored.tobytes()
    return slope


def stored_values(ds: Dataset) -> np.ndarray:
    """Rescaled values of a slice (what the header's Units describe)."""
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope)


def set_dt(ds: Dataset, prefix: str, when: dt.datetime) -> None:
    """Set <prefix>Date and <prefix>Time (Series, Acquisition, Content, Study)."""
    setattr(ds, f"{prefix}Date", when.strftime("%Y%m%d"))
    setattr(ds, f"{prefix}Time", when.strftime("%H%M%S.%f"))


def rp(ds: Dataset) -> Dataset:
    return ds.RadiopharmaceuticalInformationSequence[0]


# -- vendor shapes ---------------------------------------------------------------------------

def siemens(datasets: Sequence[Dataset], case: Case, private_dc: bool = True) -> None:
    """Siemens Biograph mCT style: SeriesTime = start, private (0071,1022) decay datetime."""
    for ds in datasets:
        ds.Manufacturer = "SIEMENS"
        ds.ManufacturerModelName = "Biograph64_mCT"
        ds.SoftwareVersions = "VG60A"
        ds.CorrectedImage = ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"]
        ds.ReconstructionMethod = "PSF+TOF 3i21s"
        ds.ConvolutionKernel = "XYZ Gauss5.00"
        if private_dc:
            block = ds.private_block(0x0071, "SIEMENS MED PT", create=True)
            block.add_new(0x22, "DT", case.scan.strftime("%Y%m%d%H%M%S.%f"))
            block.add_new(0x21, "UI", "1.3.12.2.1107.5.1.4.11012")


def ge(datasets: Sequence[Dataset], case: Case, private_scan: Optional[dt.datetime] = None,
       ge_frame_reference: bool = True) -> None:
    """GE Discovery style: private GEMS_PETD_01 block; frame reference time from frame start."""
    beds = case.bed_of_slice()
    for ds, bed in zip(datasets, beds):
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        ds.ManufacturerModelName = "Discovery MI"
        ds.SoftwareVersions = "pet_coreload.46.00"
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "DCAL", "SLSENS", "DTSLSENS", "NORM"]
        ds.ReconstructionMethod = "VPFXS"
        if ge_frame_reference:
            ds.FrameReferenceTime = writer._ds_text(bed * case.frame_s * 1000.0)
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x01, "LO", "GE_PET")
        if private_scan is not None:
            block.add_new(0x0D, "DT", private_scan.strftime("%Y%m%d%H%M%S.00"))
        block.add_new(0x3B, "DT", case.injection.strftime("%Y%m%d%H%M%S.00"))


def philips(datasets: Sequence[Dataset], case: Case, acsf: bool = True, suvsf: bool = True,
            counts_per_bqml: float = 0.37, creator: bool = True, suvsf_error: float = 1.0,
            activity: Optional[np.ndarray] = None) -> None:
    """Philips GEMINI style: Units CNTS with private scale factors in (7053,xx).

    ``activity`` (z, y, x, Bq/mL) is the exact activity to encode (default: the current values).
    """
    for k, ds in enumerate(datasets):
        activity_k = stored_values(ds) if activity is None else np.asarray(activity[k], dtype=np.float64)
        slope = reencode(ds, activity_k * counts_per_bqml)
        ds.Units = "CNTS"
        ds.RescaleType = "CNTS"
        ds.Manufacturer = "Philips Medical Systems"
        ds.ManufacturerModelName = "GEMINI TF TOF 16"
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "RAN", "NORM", "DTIM"]
        if creator:
            block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
            add = block.add_new
        else:
            def add(offset, vr, value, target=ds):
                target.add_new((0x7053, 0x1000 | offset), vr, value)
        if suvsf:
            add(0x00, "DS", writer._ds_text(case.bw_factor() / counts_per_bqml * suvsf_error))
        if acsf:
            add(0x09, "DS", writer._ds_text(1.0 / counts_per_bqml))
        assert slope > 0


def clone(datasets: Sequence[Dataset]) -> List[Dataset]:
    return [copy.deepcopy(ds) for ds in datasets]


def vary_slopes(datasets: Sequence[Dataset], values: Optional[np.ndarray] = None) -> None:
    """Re-encode each slice with its own slope, as most scanners do; values unchanged.

    Slice k uses 70 % to 100 % of the int16 range for its maximum. ``values`` (z, y, x) are the
    exact rescaled values to encode (default: the current ones, which adds a second rounding).
    """
    n = len(datasets)
    for k, ds in enumerate(datasets):
        plane = stored_values(ds) if values is None else np.asarray(values[k], dtype=np.float64)
        peak = float(np.max(np.abs(plane)))
        if peak == 0:
            continue
        target = 32767 * (0.70 + 0.30 * ((k * 7) % n) / max(1, n - 1))
        ds.RescaleSlope = writer._ds_text(peak / target)
        slope = float(ds.RescaleSlope)
        ds.PixelData = np.clip(np.rint(plane / slope), -32768, 32767).astype(np.int16).tobytes()


_UCUM_MEANINGS = {
    "Bq/ml": "Becquerels/milliliter",
    "g/ml{SUVbw}": "Standardized Uptake Value body weight",
    "g/ml{SUVlbm(James128)}": "Standardized Uptake Value lean body mass (James 128 multiplier)",
    "cm2/ml{SUVbsa}": "Standardized Uptake Value body surface area",
}


def to_enhanced(datasets: Sequence[Dataset], case: Case, decay_corrected: bool = True,
                units: str = "Bq/ml", frame_reference: bool = True) -> Dataset:
    """One Enhanced PET Image (multi-frame) dataset holding the given single-frame slices.

    Per-frame functional groups carry the plane position, the frame times (FrameContent) and
    the pixel value transformation with its Real World Value Mapping in ``units`` (UCUM).
    With ``decay_corrected`` False the caller is expected to have stored un-decay-corrected
    values; FrameReferenceDateTime is then each frame's average count-rate time (omitted
    when ``frame_reference`` is False, leaving FrameAcquisitionDateTime and duration).
    """
    from pydicom.sequence import Sequence as DicomSequence

    first = datasets[0]
    ds = Dataset()
    for keyword in ("SpecificCharacterSet", "StudyDate", "SeriesDate", "ContentDate", "StudyTime", "SeriesTime",
                    "ContentTime", "AccessionNumber", "Modality", "Manufacturer", "InstitutionName",
                    "ReferringPhysicianName", "StationName", "StudyDescription", "SeriesDescription",
                    "ManufacturerModelName", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "PatientAge", "PatientSize", "PatientWeight", "StudyInstanceUID", "SeriesInstanceUID", "StudyID",
                    "SeriesNumber", "FrameOfReferenceUID", "PositionReferenceIndicator", "SamplesPerPixel",
                    "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "RadiopharmaceuticalInformationSequence", "AcquisitionDate",
                    "AcquisitionTime"):
        if keyword in first:
            setattr(ds, keyword, copy.deepcopy(first[keyword].value))
    uid = uid_factory(case.seed + "enhanced")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.130"
    ds.SOPInstanceUID = uid("instance")
    ds.file_meta = writer._file_meta(ds.SOPClassUID, ds.SOPInstanceUID)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(datasets)
    ds.ContentQualification = "PRODUCT"
    ds.DecayCorrected = "YES" if decay_corrected else "NO"
    if decay_corrected:
        ds.DecayCorrectionDateTime = case.scan.strftime("%Y%m%d%H%M%S")
    ds.AttenuationCorrected = "YES"
    ds.ScatterCorrected = "YES"
    ds.RandomsCorrected = "YES"
    ds.AcquisitionDateTime = case.scan.strftime("%Y%m%d%H%M%S")
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = copy.deepcopy(first.ImageOrientationPatient)
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    measures = Dataset()
    measures.PixelSpacing = copy.deepcopy(first.PixelSpacing)
    measures.SliceThickness = first.SliceThickness
    shared.PixelMeasuresSequence = DicomSequence([measures])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    lam = math.log(2) / case.half_life_s
    per_frame = []
    planes = []
    for k, slice_ds in enumerate(datasets):
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = copy.deepcopy(slice_ds.ImagePositionPatient)
        item.PlanePositionSequence = DicomSequence([position])
        content = Dataset()
        start = dt.datetime.strptime(slice_ds.AcquisitionDate + slice_ds.AcquisitionTime.split(".")[0], "%Y%m%d%H%M%S")
        duration_s = float(slice_ds.ActualFrameDuration) / 1000.0
        content.FrameAcquisitionDateTime = start.strftime("%Y%m%d%H%M%S")
        if frame_reference:
            t_ave = math.log(lam * duration_s / -math.expm1(-lam * duration_s)) / lam
            reference = start + dt.timedelta(seconds=t_ave)
            content.FrameReferenceDateTime = reference.strftime("%Y%m%d%H%M%S.%f")
        content.FrameAcquisitionDuration = duration_s * 1000.0
        content.StackID = "1"
        content.InStackPositionNumber = k + 1
        item.FrameContentSequence = DicomSequence([content])
        transform = Dataset()
        transform.RescaleSlope = slice_ds.RescaleSlope
        transform.RescaleIntercept = "0"
        transform.RescaleType = "US"
        item.PixelValueTransformationSequence = DicomSequence([transform])
        rwv = Dataset()
        rwv.RealWorldValueFirstValueMapped = -32768
        rwv.RealWorldValueLastValueMapped = 32767
        rwv.RealWorldValueSlope = float(slice_ds.RescaleSlope)
        rwv.RealWorldValueIntercept = 0.0
        rwv.LUTLabel = "PET"
        rwv.LUTExplanation = units
        unit_item = Dataset()
        unit_item.CodeValue = units
        unit_item.CodingSchemeDesignator = "UCUM"
        unit_item.CodeMeaning = _UCUM_MEANINGS.get(units, units)
        rwv.MeasurementUnitsCodeSequence = DicomSequence([unit_item])
        item.RealWorldValueMappingSequence = DicomSequence([rwv])
        per_frame.append(item)
        planes.append(np.frombuffer(slice_ds.PixelData, dtype=np.int16).reshape(slice_ds.Rows, slice_ds.Columns))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.stack(planes).tobytes()
    return ds
