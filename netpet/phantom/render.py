"""Imaging physics of the digital reference study: from a patient model to PET, CT and MR volumes.

Per patient the anatomy is rasterised once in the body frame (2 mm voxels) with every lesion's
fractional occupancy. Per session the property maps (SUV of the tracer, HU, MR signal) are
built on that grid and resampled into the scanner's grids through the session's rigid
patient position, so PET/CT and PET/MR sessions see the same patient slightly shifted and
rotated:

* PET: SUV map (lesions blended by occupancy, so small lesions keep their activity) ->
  PET/MR bone attenuation bias (Dixon attenuation maps ignore bone) -> Gaussian resolution of
  the reconstructed image (scanner FWHM, x 1.2 for Ga-68 positron range) -> resampled into the
  PET voxels -> count-dependent noise (standard deviation proportional to the square root of
  the local value, scaled to the scanner's liver coefficient of variation, spatially
  correlated like OSEM noise) -> activity concentration (Bq/mL) decay-corrected to the scan start.
* CT: Hounsfield units with quantum noise of a low-dose attenuation CT (12 HU).
* MR: T1-weighted spoiled gradient echo (Dixon in-phase, TR 4 ms, flip 9 deg), signal
  PD (1 - E1) sin a / (1 - E1 cos a) with E1 = exp(-TR/T1), a smooth receive-coil bias field
  and Rician noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from netpet.phantom import anatomy
from netpet.phantom.patients import Lesion, Patient, Session
from netpet.phantom.shapes import Grid, occupancy

MODEL_SPACING_MM = 2.5
LIVER_REFERENCE_CENTER = anatomy.LIVER_REFERENCE_CENTER
SPLEEN_REFERENCE_CENTER = anatomy.SPLEEN_REFERENCE_CENTER
CT_NOISE_HU = 12.0
MR_TR_MS, MR_FLIP_DEG = 4.0, 9.0
MR_FULL_SCALE = 3000.0  # stored value of pure fat (0..4095 range)
NECROSIS_HU, NECROSIS_T1 = 20.0, 2500.0


@dataclass
class LesionVoxels:
    """A lesion's fractional occupancy of the model grid (and that of its necrotic core)."""

    lesion: Lesion
    box: Tuple[slice, slice, slice]
    fraction: np.ndarray
    core_box: Optional[Tuple[slice, slice, slice]] = None
    core_fraction: Optional[np.ndarray] = None


@dataclass
class Model:
    """A patient rasterised in the body frame."""

    patient: Patient
    grid: Grid
    labels: np.ndarray
    lesions: List[LesionVoxels]


def build_model(patient: Patient) -> Model:
    grid = patient.body.model_grid(MODEL_SPACING_MM)
    labels = anatomy.rasterise(patient.body, grid)
    return Model(patient, grid, labels, _lesion_voxels(patient, grid))


def with_lesions(model: Model, patient: Patient) -> Model:
    """The same body (labels shared) with another set of lesions: ``patient`` is the same person at
    another time point (e.g. ``replace(patient, lesions=patient.lesions_at("FU1"))``)."""
    if patient.body != model.patient.body:
        raise ValueError("with_lesions needs the same body: build a new model for another patient")
    return Model(patient, model.grid, model.labels, _lesion_voxels(patient, model.grid))


def _lesion_voxels(patient: Patient, grid: Grid) -> List[LesionVoxels]:
    voxels = []
    for lesion in patient.lesions:
        box, fraction = occupancy(grid, lesion.shape())
        if box is None:
            continue
        core = lesion.core()
        core_box, core_fraction = occupancy(grid, core) if core is not None else (None, None)
        voxels.append(LesionVoxels(lesion, box, fraction, core_box, core_fraction))
    return voxels


def _blend(volume: np.ndarray, box, fraction: np.ndarray, value: float) -> None:
    region = volume[box]
    region *= 1.0 - fraction
    region += fraction * value


def _image(array: np.ndarray, grid: Grid) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(grid.origin)
    image.SetSpacing(grid.spacing)
    return image


# -- session geometry ------------------------------------------------------------------------------

def pivot(patient: Patient) -> Tuple[float, float, float]:
    """Centre of the patient's rigid movements between sessions: mid-abdomen."""
    return (0.0, 0.0, -600.0 * patient.body.zf)


def body_to_scanner(patient: Patient, session: Session) -> sitk.Euler3DTransform:
    """scanner = R (body - c) + c + t: the patient's position on this session's table."""
    transform = sitk.Euler3DTransform()
    transform.SetCenter(pivot(patient))
    transform.SetRotation(*[math.radians(a) for a in session.rotation_deg])
    transform.SetTranslation(session.shift_mm)
    return transform


def to_scanner(patient: Patient, session: Session, point) -> Tuple[float, float, float]:
    return tuple(float(v) for v in body_to_scanner(patient, session).TransformPoint(tuple(float(p) for p in point)))


@dataclass(frozen=True)
class ScanGrid:
    """An axis-aligned scanner grid (LPS): origin of voxel 0, spacing (x, y, z), size (nx, ny, nz)."""

    origin: Tuple[float, float, float]
    spacing: Tuple[float, float, float]
    size: Tuple[int, int, int]

    def reference(self) -> sitk.Image:
        image = sitk.Image([int(v) for v in self.size], sitk.sitkUInt8)
        image.SetOrigin(self.origin)
        image.SetSpacing(self.spacing)
        return image


def scan_grid(patient: Patient, session: Session, spacing: Tuple[float, float, float], matrix: int) -> ScanGrid:
    """The session's field of view: centred on the table axis, from above the vertex to the lowest
    modelled level (mid-thigh, or the soles for whole-body work-ups), in the scanner frame."""
    top = 15.0 + session.shift_mm[2]
    bottom = patient.body.bottom_z + 5.0 + session.shift_mm[2]
    nz = int(math.ceil((top - bottom) / spacing[2])) + 1
    half = (matrix - 1) / 2.0
    origin = (-half * spacing[0], -half * spacing[1], bottom)
    return ScanGrid(origin, spacing, (matrix, matrix, nz))


def resample(model_image: sitk.Image, patient: Patient, session: Session, grid: ScanGrid, default: float,
             interpolator=sitk.sitkLinear) -> np.ndarray:
    """Model-frame image seen in a scanner grid through the session's patient position."""
    inverse = body_to_scanner(patient, session).GetInverse()
    out = sitk.Resample(model_image, grid.reference(), inverse, interpolator, default, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


# -- PET -------------------------------------------------------------------------------------------

def suv_model(model: Model, session: Session) -> np.ndarray:
    """The noise-free SUVbw map of the session in the body frame (before resolution)."""
    patient = model.patient
    table = anatomy.tissue_table(f"suv_{session.tracer}")
    table[anatomy.LABEL["bladder urine"]] = session.bladder_suv
    if session.tracer == "fdg":
        table[anatomy.LABEL["myocardium"]] = patient.myocardium_fdg
    petmr = session.modality == "PET/MR"
    if petmr:
        for label in anatomy.BONE_LABELS:
            table[label] *= 1.0 - bone_bias(patient)
    suv = table[model.labels]
    for voxels in model.lesions:
        lesion = voxels.lesion
        value = lesion.suv[session.tracer] * (1.0 - lesion.petmr_bias if petmr else 1.0)
        _blend(suv, voxels.box, voxels.fraction, value)
        if voxels.core_box is not None:
            _blend(suv, voxels.core_box, voxels.core_fraction, value * Lesion.CORE_UPTAKE)
    return suv


def bone_bias(patient: Patient) -> float:
    """Fraction of normal-bone uptake lost on PET/MR (Dixon attenuation without bone): about 10 %
    (Samarin A et al., EJNMMI 2012; Martinez-Moller A et al., J Nucl Med 2009: bone -8 +- 3 %)."""
    rng = np.random.default_rng(np.random.SeedSequence([patient.index, 7919]))
    return float(np.clip(rng.normal(0.09, 0.03), 0.03, 0.18))


def _noise_field(shape: Tuple[int, ...], rng: np.random.Generator, sigma_voxels: float) -> np.ndarray:
    """Unit-variance Gaussian noise with a Gaussian spatial correlation of ``sigma_voxels``."""
    white = rng.standard_normal(size=shape, dtype=np.float32)
    smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(white), sigma_voxels))
    smooth *= np.float32(1.0 / _smoothed_std(sigma_voxels))
    return smooth


_STD_CACHE: Dict[float, float] = {}


def _smoothed_std(sigma_voxels: float) -> float:
    """Standard deviation of unit white noise after the Gaussian smoothing (measured once on a
    64^3 block, as the recursive filter's discrete kernel has no exact closed form)."""
    if sigma_voxels not in _STD_CACHE:
        block = np.random.default_rng(0).standard_normal((64, 64, 64)).astype(np.float32)
        smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(block), sigma_voxels))
        _STD_CACHE[sigma_voxels] = float(np.std(smooth[8:-8, 8:-8, 8:-8]))
    return _STD_CACHE[sigma_voxels]


def pet_suv(model: Model, session: Session, grid: ScanGrid) -> Tuple[np.ndarray, np.ndarray]:
    """(noisy SUV, noise-free blurred SUV) of the session on its PET grid, [z, y, x] float32."""
    suv = suv_model(model, session)
    sigma = session.fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    # a reconstructed voxel is an average over its volume, not a sample at its centre: the voxel's box
    # (variance spacing^2 / 12 per axis) widens the blur before the image is sampled at voxel centres
    sigmas = [math.sqrt(sigma * sigma + step * step / 12.0) for step in grid.spacing]
    blurred = sitk.SmoothingRecursiveGaussian(_image(suv, model.grid), sigmas)
    del suv
    clean = resample(blurred, model.patient, session, grid, 0.0)
    rng = np.random.default_rng(np.random.SeedSequence(list(session.seed) + [1]))
    liver = anatomy.TISSUES[anatomy.LABEL["liver"]].suv_dotatate if session.tracer == "dotatate" else \
        anatomy.TISSUES[anatomy.LABEL["liver"]].suv_fdg
    # standard deviation k sqrt(value), with k giving the scanner's liver coefficient of variation
    k = session.scanner.liver_cov * math.sqrt(liver)
    noise = _noise_field(clean.shape, rng, 0.7)
    noisy = clean + k * np.sqrt(np.maximum(clean, 0.0)) * noise
    np.maximum(noisy, 0.0, out=noisy)
    return noisy.astype(np.float32), clean.astype(np.float32)


def decayed_dose_bq(session: Session, half_life_s: float) -> float:
    """The administered activity decayed to the scan start (the PET's START reference)."""
    elapsed = (session.scan_start - session.injection).total_seconds()
    return session.dose_bq * math.exp(-math.log(2.0) * elapsed / half_life_s)


# -- CT and MR -------------------------------------------------------------------------------------

def ct_hu(model: Model, session: Session, grid: ScanGrid) -> np.ndarray:
    table = anatomy.tissue_table("hu")
    table[anatomy.LABEL["red marrow"]] = model.patient.marrow_hu
    hu = table[model.labels]
    for voxels in model.lesions:
        _blend(hu, voxels.box, voxels.fraction, voxels.lesion.hu)
        if voxels.core_box is not None:
            _blend(hu, voxels.core_box, voxels.core_fraction, NECROSIS_HU)
    image = resample(_image(hu, model.grid), model.patient, session, grid, -1000.0)
    del hu
    rng = np.random.default_rng(np.random.SeedSequence(list(session.seed) + [2]))
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(CT_NOISE_HU)
    image += noise
    return image


def spgr_signal(t1_ms: np.ndarray, pd: np.ndarray) -> np.ndarray:
    """Spoiled gradient-echo signal PD (1 - E1) sin a / (1 - E1 cos a), E1 = exp(-TR/T1)."""
    alpha = math.radians(MR_FLIP_DEG)
    e1 = np.exp(-MR_TR_MS / np.maximum(t1_ms, 1.0))
    return pd * (1.0 - e1) * math.sin(alpha) / (1.0 - e1 * math.cos(alpha))


def mr_signal(model: Model, session: Session, grid: ScanGrid) -> np.ndarray:
    fat = anatomy.TISSUES[anatomy.LABEL["fat"]]
    scale = MR_FULL_SCALE / float(spgr_signal(np.array(fat.t1_ms), np.array(fat.pd)))
    table = spgr_signal(anatomy.tissue_table("t1_ms"), anatomy.tissue_table("pd")).astype(np.float32) * scale
    signal = table[model.labels]
    for voxels in model.lesions:
        value = float(spgr_signal(np.array(voxels.lesion.t1_ms), np.array(0.8))) * scale
        _blend(signal, voxels.box, voxels.fraction, value)
        if voxels.core_box is not None:
            _blend(signal, voxels.core_box, voxels.core_fraction, float(spgr_signal(np.array(NECROSIS_T1), np.array(0.9))) * scale)
    image = resample(_image(signal, model.grid), model.patient, session, grid, 0.0)
    del signal
    nz, ny, nx = image.shape
    z = np.linspace(-1.0, 1.0, nz, dtype=np.float32)[:, None, None]
    y = np.linspace(-1.0, 1.0, ny, dtype=np.float32)[None, :, None]
    x = np.linspace(-1.0, 1.0, nx, dtype=np.float32)[None, None, :]
    image *= (1.0 + 0.12 * x - 0.08 * y) * (1.0 + 0.05 * np.cos(3.0 * z))  # receive-coil bias field
    rng = np.random.default_rng(np.random.SeedSequence(list(session.seed) + [3]))
    sigma = np.float32(0.02 * MR_FULL_SCALE)
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= sigma
    image += noise  # real channel
    np.square(image, out=image)
    rng.standard_normal(dtype=np.float32, out=noise)  # imaginary channel
    noise *= sigma
    np.square(noise, out=noise)
    image += noise
    np.sqrt(image, out=image)
    return image


# -- truth masks -------------------------------------------------------------------------------------

def lesion_mask(patient: Patient, session: Session, lesion: Lesion, grid: ScanGrid) -> np.ndarray:
    """The lesion's voxels in a scanner grid ([z, y, x] bool): voxel centres inside the object,
    and at least the voxel holding its centre."""
    mask = np.zeros((grid.size[2], grid.size[1], grid.size[0]), dtype=bool)
    forward = body_to_scanner(patient, session)
    center = np.asarray(forward.TransformPoint(tuple(float(v) for v in lesion.center)))
    reach = max(lesion.radii) + 2.0 * max(grid.spacing)
    origin, spacing = np.asarray(grid.origin), np.asarray(grid.spacing)
    low = np.maximum(np.floor((center - reach - origin) / spacing).astype(int), 0)
    high = np.minimum(np.ceil((center + reach - origin) / spacing).astype(int) + 1, grid.size)
    if np.any(high <= low):
        return mask
    ks, js, is_ = (np.arange(low[a], high[a]) for a in (2, 1, 0))
    k, j, i = np.meshgrid(ks, js, is_, indexing="ij")
    points = np.stack([origin[0] + i * spacing[0], origin[1] + j * spacing[1], origin[2] + k * spacing[2]], axis=-1)
    inverse = body_to_scanner(patient, session).GetInverse()
    matrix = np.asarray(inverse.GetMatrix()).reshape(3, 3)
    offset = np.asarray(inverse.TransformPoint((0.0, 0.0, 0.0)))
    body = points @ matrix.T + offset
    inside = lesion.shape().contains(body[..., 0], body[..., 1], body[..., 2])
    mask[low[2]:high[2], low[1]:high[1], low[0]:high[0]] = inside
    center_index = np.rint((center - origin) / spacing).astype(int)
    if np.all(center_index >= 0) and np.all(center_index < np.asarray(grid.size)):
        mask[center_index[2], center_index[1], center_index[0]] = True
    return mask


def in_field_of_view(patient: Patient, session: Session, lesion: Lesion, grid: ScanGrid) -> bool:
    center = np.asarray(to_scanner(patient, session, lesion.center))
    low = np.asarray(grid.origin)
    high = low + (np.asarray(grid.size) - 1) * np.asarray(grid.spacing)
    return bool(np.all(center >= low) and np.all(center <= high))


def background_suv(model: Model, session: Session, lesion: Lesion) -> float:
    """SUV of the tissue a lesion sits in (its label at the lesion centre), as this session images it."""
    index = np.rint((np.asarray(lesion.center) - model.grid.origin) / model.grid.spacing).astype(int)
    index = np.clip(index, 0, np.asarray(model.grid.size) - 1)
    label = int(model.labels[index[2], index[1], index[0]])
    tissue = anatomy.TISSUES[label]
    value = tissue.suv_dotatate if session.tracer == "dotatate" else tissue.suv_fdg
    if session.tracer == "fdg" and label == anatomy.LABEL["myocardium"]:
        value = model.patient.myocardium_fdg
    if session.modality == "PET/MR" and label in anatomy.BONE_LABELS:
        value *= 1.0 - bone_bias(model.patient)
    return float(value)


def organ_reference(session: Session, name: str) -> float:
    """Noise-free SUV of a reference organ (liver, spleen) on this session."""
    tissue = anatomy.TISSUES[anatomy.LABEL[name]]
    return tissue.suv_dotatate if session.tracer == "dotatate" else tissue.suv_fdg


def expected_suv(lesion: Lesion, session: Session) -> Dict[str, float]:
    """Object SUVs as the session measures them without noise and blur (PET/MR bone bias applied)."""
    true_max, true_mean = lesion.true_suv(session.tracer)
    factor = 1.0 - lesion.petmr_bias if session.modality == "PET/MR" else 1.0
    return {"suv_max_true": round(true_max, 4), "suv_mean_true": round(true_mean, 4),
            "suv_max_expected": round(true_max * factor, 4), "suv_mean_expected": round(true_mean * factor, 4)}
