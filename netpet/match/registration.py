"""Rigid registration between two sessions of one patient, stored as ITK transform files and reused.

Method
------
* Basis: the anatomical series (CT or MR) when both sessions have one, the PET otherwise (or when
  asked with ``basis="pet"``). CT against MR and DOTATATE against FDG PET are multi-modal pairs, so
  the metric is Mattes mutual information (32 bins, random sampling of
  :data:`SAMPLING_FRACTION` of the voxels, at most :data:`MAX_SAMPLES` per level, with a fixed seed
  :data:`SEED`: the same inputs give the same result; a regular sampling grid was tried and was less
  accurate on the reference study); the moving image's gradient is taken at the sampled points only
  (:data:`GRADIENT`).
* Both images are first smoothed (Gaussian, sigma half the grid) and resampled to an isotropic
  :data:`GRID_MM` grid (once per session and grid: :attr:`SessionImages.prepared`); PETs are clamped at the 99th percentile of the body (bladder, kidneys and
  spleen would otherwise squeeze the rest of the body into the lowest histogram bins: registering
  DOTATATE to FDG PET took 3 times longer without it); a rigid :class:`SimpleITK.Euler3DTransform` is initialised by centring the
  two volumes (``"geometry"``, the default: the fields of view follow the table) or their
  intensity centres of mass (``"moments"``), then optimised by regular-step gradient descent over
  three resolution levels (shrink factors 4, 2, 1; smoothing sigmas 2, 1, 0 voxels).
* Quality: after the optimiser stops, the moving series is resampled onto the fixed one and the
  normalised mutual information NMI = (H(F) + H(M)) / H(F, M) (Studholme C et al., Pattern
  Recognit 1999;32:71) is computed over the overlap, restricted to voxels where either image shows
  the body. NMI is 1 for independent images and 2 for identical ones. The registration is refused
  (:class:`RegistrationError`, one sentence) when the optimiser did not converge (it ran out of
  iterations at the finest level), when NMI is below :data:`MIN_NMI`, or when the rotation found is
  beyond :data:`MAX_ROTATION_DEG` (a patient lies on the table within a few degrees). The
  normalised cross-correlation of the two PETs after resampling is reported too (information
  only: DOTATATE and FDG differ in their uptake by design).

Convention
----------
The transform is ITK's (LPS millimetres, resampling convention): it maps a point of the *fixed*
session to the *moving* one, so it resamples the moving image onto the fixed grid as it is.
:func:`map_points_ras` applies its inverse to bring user points (RAS) of the moving session into
the fixed one, converting RAS <-> LPS in :mod:`netpet.geometry` only.

Files
-----
``<table folder>/transforms/<patient>_<moving session>_to_<fixed session>.h5`` (written by
``sitk.WriteTransform``) and a ``.json`` sidecar with the series UIDs, the parameters and the
quality. Slicer loads the ``.h5`` as a linear transform: it reads ITK transform files through its
``vtkITKTransformConverter``, which converts ITK's LPS to Slicer's RAS, and keeps the file's
resampling direction as the node's "from parent" transform, so putting the moving PET, CT or MR
under that transform node shows it aligned with the fixed session (Slicer developer guide,
"Transforms: transform files", slicer.readthedocs.io/en/latest/developer_guide/modules/transforms.html).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from netpet.errors import NetpetError, printable
from netpet.geometry import lps_to_ras_array, ras_to_lps_array
from netpet.progress import ProgressCallback, report

log = logging.getLogger(__name__)

#: Isotropic grid (mm) both series are resampled to before registration: about a PET voxel.
GRID_MM = 4.0
#: Fraction of the voxels of each level sampled by the metric (random, fixed seed), up to :data:`MAX_SAMPLES`.
SAMPLING_FRACTION = 0.05
#: Most voxels the metric samples at a level: a 32 x 32 joint histogram is well estimated from 10^5 samples. A
#: whole-body CT on the 4 mm grid has about 4 million voxels: 5 % of them (2 x 10^5) at the finest level took half
#: the registration's time. Measured on the demo study (5 patients, 14 pairs on the CT/MR, 74 lesion centres) against
#: 5 % at every level with a Gaussian-derivative gradient: netpet register's CPU time 179 -> 106 s (with each
#: reference session prepared once), lesion-centre error mean 0.13 -> 0.11 mm, max 0.38 -> 0.42 mm.
MAX_SAMPLES = 100_000
#: How the metric takes the images' gradients: "sampled" (central differences at the sampled points only; the
#: images are smoothed to the grid already) or "filtered" (ITK's Gaussian-derivative image of every voxel at every
#: level, the slower former choice). Stored with each transform's parameters, so a change registers again.
GRADIENT = "sampled"
_GRADIENTS = ("sampled", "filtered")
#: Seed of the metric's random sampling: the same inputs give the same transform.
SEED = 1309
#: Iterations per resolution level; running out of them at the finest level means not converged.
MAX_ITERATIONS = 300
#: Normalised mutual information below which a registration is refused. Measured on the reference
#: study (seed 8, 4 mm grid), correctly registered pairs: MR vs CT 1.25-1.27, CT vs CT 1.54-1.61,
#: DOTATATE PET vs PET 1.25, FDG vs DOTATATE PET 1.13-1.14 (PETs clamped as registered); a PET or
#: CT against pure noise 1.000-1.001. Another patient's CT or MR registered to this one still reached 1.10-1.15 (the
#: synthetic bodies are alike, and so are real ones): the image measure does not replace checking
#: that both sessions belong to the same patient.
MIN_NMI = 1.05
#: Largest rotation (degrees, any axis) accepted between two sessions of a patient on a table.
MAX_ROTATION_DEG = 15.0
#: Histogram bins of the Mattes metric and of the NMI quality measure.
BINS = 32
#: Registration error (mm) of a stored registration, per basis: the target error the matching gate of
#: :mod:`netpet.match.correspondence` allows for. Measured on the digital reference study as the error of
#: every lesion centre mapped from the moving session to the fixed one against its known place
#: (Testing/core/test_match_registration.py, seed 8, 2 patients, 11 lesion centres per pair): CT/MR basis
#: max 0.61 mm (6 mm grid; 0.34 mm on the default 4 mm grid), PETs alone max 1.75 mm; rounded up to
#: 1 and 2 mm. The reference study moves its patients rigidly: a real abdomen also breathes and its
#: bowel moves, so real errors are larger (give a measured figure with ``registration_error_mm``).
REGISTRATION_ERROR_MM = {"anatomy": 1.0, "pet": 2.0}
#: Parameters that change the result; a stored transform is reused only if they match.
_PARAMETER_KEYS = ("basis", "initialisation", "grid_mm", "sampling_fraction", "max_samples", "gradient", "seed",
                   "max_iterations")
#: Shrink factors and smoothing sigmas (voxels) of the three resolution levels.
SHRINK_FACTORS, SMOOTHING_SIGMAS = (4, 2, 1), (2, 1, 0)


class RegistrationError(NetpetError):
    """Two sessions could not be registered well enough to be used (one sentence, with the measure)."""


@dataclass
class SessionImages:
    """The images of one session used for registration (LPS geometry, any pixel type).

    ``pet`` is the PET (activity or SUV: the metric does not care about scale); ``anatomy`` its CT
    or MR partner in the same frame of reference, if any. The series UIDs identify the inputs of a
    stored transform, so that it is reused only for the same series.
    """

    pet: sitk.Image
    anatomy: Optional[sitk.Image] = None
    anatomy_modality: str = ""
    pet_series_uid: str = ""
    anatomy_series_uid: str = ""
    label: str = ""
    #: the images as registered (smoothed, resampled, the PET clamped), by (series, grid): made once per session
    #: and grid, so a session that is the fixed one of several pairs is prepared once (:func:`_prepared`); copies
    #: made by :func:`dataclasses.replace` share it
    prepared: Dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class Registration:
    """A rigid registration of a moving session to a fixed one, with its quality.

    ``transform`` maps fixed LPS points (mm) to moving LPS points (ITK's resampling convention).
    ``metric_value`` is the final Mattes value (negative mutual information: lower is better);
    ``iterations`` those of the finest level; ``nmi`` the gating quality (see :data:`MIN_NMI`);
    ``pet_ncc`` the PETs' correlation after resampling (information only); ``reused`` True when
    read from a stored file.
    """

    transform: sitk.Euler3DTransform
    basis: str
    metric_value: float
    converged: bool
    stop_condition: str
    iterations: int
    nmi: float
    pet_ncc: float
    seconds: float
    parameters: Dict[str, Any] = field(default_factory=dict)
    fixed_uids: Dict[str, str] = field(default_factory=dict)
    moving_uids: Dict[str, str] = field(default_factory=dict)
    reused: bool = False

    @property
    def rotation_deg(self) -> tuple:
        """Rotation about x, y, z (degrees, LPS axes, about the transform's centre)."""
        return tuple(math.degrees(a) for a in (self.transform.GetAngleX(), self.transform.GetAngleY(),
                                               self.transform.GetAngleZ()))

    @property
    def translation_mm(self) -> tuple:
        """Translation (mm, LPS)."""
        return tuple(float(v) for v in self.transform.GetTranslation())

    @property
    def error_mm(self) -> float:
        """The registration error (mm) allowed for when matching lesions: :data:`REGISTRATION_ERROR_MM`
        of the basis (the PET figure, the larger, when the basis is not recorded)."""
        return REGISTRATION_ERROR_MM.get(self.basis, max(REGISTRATION_ERROR_MM.values()))

    def quality(self) -> Dict[str, Any]:
        """The quality record written to the sidecar and shown to users."""
        return {"nmi": round(self.nmi, 4), "min_nmi": MIN_NMI, "pet_ncc": round(self.pet_ncc, 4),
                "metric_value": round(self.metric_value, 6), "converged": self.converged,
                "stop_condition": self.stop_condition, "iterations": self.iterations,
                "rotation_deg": [round(v, 3) for v in self.rotation_deg],
                "translation_mm": [round(v, 3) for v in self.translation_mm], "seconds": round(self.seconds, 2)}


# -- reading --------------------------------------------------------------------------------------

def _series_uid(paths: Sequence[str]) -> str:
    import pydicom

    ds = pydicom.dcmread(paths[0], stop_before_pixels=True, force=True, specific_tags=["SeriesInstanceUID"])
    return str(ds.get("SeriesInstanceUID", "") or "")


def read_session(pet: Sequence[str], anatomy: Optional[Sequence[str]] = None, label: str = "") -> SessionImages:
    """Read a session's PET (and CT/MR partner) DICOM files for registration.

    Parameters
    ----------
    pet, anatomy : sequence of str or SeriesRecord
        The files of the PET and of its anatomical partner (None: PET only).
    label : str
        How messages name the session.

    Raises
    ------
    DicomInputError
        From :func:`netpet.dicom.image.read_image` when a series cannot be read.
    """
    from netpet.dicom.image import read_image

    def files(source) -> list:
        return list(getattr(source, "files", source))

    pet_files = files(pet)
    pet_image = read_image(pet_files)
    images = SessionImages(pet_image, pet_series_uid=_series_uid(pet_files), label=label)
    if anatomy is not None:
        anatomy_files = files(anatomy)
        import pydicom

        ds = pydicom.dcmread(anatomy_files[0], stop_before_pixels=True, force=True, specific_tags=["Modality"])
        images.anatomy = read_image(anatomy_files)
        images.anatomy_modality = str(ds.get("Modality", "") or "")
        images.anatomy_series_uid = _series_uid(anatomy_files)
    return images


# -- registration ---------------------------------------------------------------------------------

def _prepare(image: sitk.Image, grid_mm: float) -> sitk.Image:
    """Smoothed (sigma grid/2) and resampled to an isotropic grid in the image's own orientation."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    size = np.asarray(image.GetSize(), dtype=float)
    sigma = [math.sqrt(max((grid_mm / 2.0) ** 2 - (s / 2.0) ** 2, 0.0)) for s in spacing]
    if all(s > 0 for s in sigma):
        image = sitk.SmoothingRecursiveGaussian(image, sigma)
    else:  # an axis already as coarse as the grid's half is left alone (the same values, one pass less per axis)
        for axis, s in enumerate(sigma):
            if s > 0:
                image = sitk.RecursiveGaussian(image, s, False, sitk.RecursiveGaussianImageFilter.ZeroOrder, axis)
    new_size = [max(int(round(n * s / grid_mm)), 1) for n, s in zip(size, spacing)]
    # keep the physical extent: the first voxel centre moves by half the change of voxel size
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    origin = np.asarray(image.GetOrigin()) + direction @ ((grid_mm - spacing) / 2.0)
    low = float(sitk.GetArrayViewFromImage(image).min())
    return sitk.Resample(image, new_size, sitk.Transform(), sitk.sitkLinear, origin.tolist(), (grid_mm,) * 3,
                         image.GetDirection(), low, sitk.sitkFloat32)


def _prepared(images: SessionImages, which: str, grid_mm: float) -> sitk.Image:
    """The session's PET (``which="pet"``: prepared and clamped) or anatomy (prepared) on the isotropic grid,
    computed on first use and kept in ``images.prepared`` (recomputed when the image was replaced since)."""
    source = images.pet if which == "pet" else images.anatomy
    key = (which, float(grid_mm))
    cached = images.prepared.get(key)
    if cached is None or cached[0] is not source:
        image = _prepare(source, grid_mm)
        cached = images.prepared[key] = (source, _clamp(image) if which == "pet" else image)
    return cached[1]


def _clamp(pet: sitk.Image) -> sitk.Image:
    """A PET with its hottest voxels (bladder, kidneys, spleen: above the 99th percentile of the body)
    clamped, so that the histogram bins of the metric resolve the uptake of the rest of the body."""
    array = sitk.GetArrayViewFromImage(pet)
    body = array[array > _body_threshold(array)]
    if body.size == 0:
        return pet
    return sitk.Clamp(pet, sitk.sitkFloat32, float(array.min()), float(np.percentile(body, 99.0)))


def _body_threshold(array: np.ndarray) -> float:
    """A value above the background (air) of a CT, MR or PET: 5 % of the way from the 1st to the 99.5th percentile
    of the image (CT: about -870 HU; MR and PET: a few per cent of the tissue signal)."""
    low, high = np.percentile(array, [1.0, 99.5])
    return float(low + 0.05 * (high - low))


def normalised_mutual_information(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform,
                                  bins: int = BINS) -> float:
    """NMI = (H(F) + H(M)) / H(F, M) of ``moving`` resampled onto ``fixed`` through ``transform``.

    Computed over the voxels of ``fixed`` that map inside ``moving`` and where either image is above
    its background (so that the air around the patient, identical in any two images, does not count);
    1 for independent images, 2 for identical ones; 1.0 when they do not overlap.
    """
    resampled, inside = _resample_with_mask(fixed, moving, transform)
    f = sitk.GetArrayViewFromImage(fixed).ravel()
    m = resampled.ravel()
    keep = inside.ravel() & ((f > _body_threshold(f)) | (m > _body_threshold(m)))
    if keep.sum() < 100:
        return 1.0
    f, m = f[keep], m[keep]
    joint, _, _ = np.histogram2d(f, m, bins=bins, range=[[f.min(), f.max() + 1e-6], [m.min(), m.max() + 1e-6]])
    p = joint / joint.sum()

    def entropy(q: np.ndarray) -> float:
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    h_joint = entropy(p.ravel())
    return (entropy(p.sum(axis=1)) + entropy(p.sum(axis=0))) / h_joint if h_joint > 0 else 1.0


def _resample_with_mask(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform):
    resampled = sitk.Resample(moving, fixed, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    ones = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving)
    inside = sitk.Resample(ones, fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(resampled), sitk.GetArrayViewFromImage(inside).astype(bool)


def _pet_ncc(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    """Normalised cross-correlation of the PETs over their overlap (information only)."""
    resampled, inside = _resample_with_mask(fixed, moving, transform)
    f = sitk.GetArrayViewFromImage(fixed)[inside].astype(float)
    m = resampled[inside].astype(float)
    if f.size < 100 or f.std() == 0 or m.std() == 0:
        return 0.0
    return float(np.corrcoef(f, m)[0, 1])


def _uids(images: SessionImages) -> Dict[str, str]:
    return {"pet_series_uid": images.pet_series_uid, "anatomy_series_uid": images.anatomy_series_uid}


def _choose_basis(fixed: SessionImages, moving: SessionImages, basis: str) -> str:
    if basis not in ("auto", "anatomy", "pet"):
        raise ValueError(f"basis must be 'auto', 'anatomy' or 'pet', not {basis!r}")
    both = fixed.anatomy is not None and moving.anatomy is not None
    if basis == "anatomy" and not both:
        which = fixed.label if fixed.anatomy is None else moving.label
        raise RegistrationError(f"Session {printable(which or '?')} has no CT or MR series, so register on the PET "
                                "(basis 'pet') instead.")
    return "anatomy" if basis == "anatomy" or (basis == "auto" and both) else "pet"


def register_sessions(fixed: SessionImages, moving: SessionImages, basis: str = "auto",
                      initialisation: str = "geometry", grid_mm: float = GRID_MM,
                      sampling_fraction: float = SAMPLING_FRACTION, seed: int = SEED,
                      max_iterations: int = MAX_ITERATIONS, min_nmi: float = MIN_NMI,
                      progress: Optional[ProgressCallback] = None) -> Registration:
    """Register ``moving`` to ``fixed`` rigidly (see the module docstring for the method).

    Parameters
    ----------
    fixed, moving : SessionImages
        The reference session and the session brought onto it.
    basis : {"auto", "anatomy", "pet"}
        Series registered: "auto" uses CT/MR when both sessions have one, the PET otherwise.
    initialisation : {"geometry", "moments"}
        Centring of the initial transform: volume centres, or intensity centres of mass.
    grid_mm, sampling_fraction, seed, max_iterations
        Isotropic working grid (mm), fraction of voxels sampled by the metric, its random seed, and
        the optimiser's iterations per resolution level.
    min_nmi : float
        Refusal threshold of the normalised mutual information (default :data:`MIN_NMI`).

    Returns
    -------
    Registration
        The transform (fixed LPS -> moving LPS) with its quality.

    Raises
    ------
    RegistrationError
        The optimiser did not converge, the NMI after registration is below ``min_nmi``, or the
        rotation exceeds :data:`MAX_ROTATION_DEG`; or ``basis="anatomy"`` without CT/MR.
    """
    if initialisation not in ("geometry", "moments"):
        raise ValueError(f"initialisation must be 'geometry' or 'moments', not {initialisation!r}")
    started = time.perf_counter()
    used = _choose_basis(fixed, moving, basis)
    name = f"session {printable(moving.label or '?')} to session {printable(fixed.label or '?')}"
    report(progress, 0.0, f"Registering {name} on the {used}")
    fixed_pet, moving_pet = _prepared(fixed, "pet", grid_mm), _prepared(moving, "pet", grid_mm)
    fixed_image = _prepared(fixed, "anatomy", grid_mm) if used == "anatomy" else fixed_pet
    moving_image = _prepared(moving, "anatomy", grid_mm) if used == "anatomy" else moving_pet
    report(progress, 0.1, "Images resampled")

    mode = (sitk.CenteredTransformInitializerFilter.GEOMETRY if initialisation == "geometry"
            else sitk.CenteredTransformInitializerFilter.MOMENTS)
    if initialisation == "moments":  # centres of mass need non-negative masses (CT air is -1000 HU)
        shift = lambda im: im - float(sitk.GetArrayViewFromImage(im).min())  # noqa: E731
        initial = sitk.CenteredTransformInitializer(shift(fixed_image), shift(moving_image),
                                                    sitk.Euler3DTransform(), mode)
    else:
        initial = sitk.CenteredTransformInitializer(fixed_image, moving_image, sitk.Euler3DTransform(), mode)
    transform = sitk.Euler3DTransform(initial)

    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=BINS)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentagePerLevel(_level_fractions(fixed_image, sampling_fraction), seed)
    if GRADIENT not in _GRADIENTS:
        raise ValueError(f"GRADIENT is {GRADIENT!r}; it must be one of {_GRADIENTS}")
    method.SetMetricUseMovingImageGradientFilter(GRADIENT == "filtered")
    method.SetMetricUseFixedImageGradientFilter(GRADIENT == "filtered")
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=0.01, numberOfIterations=max_iterations,
                                                    relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(SHRINK_FACTORS))
    method.SetSmoothingSigmasPerLevel(list(SMOOTHING_SIGMAS))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetInitialTransform(transform, inPlace=True)
    levels = [0]

    def next_level() -> None:
        levels[0] += 1
        report(progress, 0.1 + 0.25 * levels[0], f"Registration level {levels[0]} of 3")

    method.AddCommand(sitk.sitkMultiResolutionIterationEvent, next_level)
    method.Execute(fixed_image, moving_image)
    stop = method.GetOptimizerStopConditionDescription()
    iterations = int(method.GetOptimizerIteration())
    converged = "Maximum number of iterations" not in stop
    report(progress, 0.9, "Measuring the registration")
    nmi = normalised_mutual_information(fixed_image, moving_image, transform)
    pet_ncc = _pet_ncc(fixed_pet, moving_pet, transform)
    result = Registration(
        transform=transform, basis=used, metric_value=float(method.GetMetricValue()), converged=converged,
        stop_condition=stop, iterations=iterations, nmi=float(nmi), pet_ncc=pet_ncc,
        seconds=time.perf_counter() - started,
        parameters={"basis": used, "initialisation": initialisation, "grid_mm": grid_mm,
                    "sampling_fraction": sampling_fraction, "max_samples": MAX_SAMPLES, "gradient": GRADIENT,
                    "seed": seed, "max_iterations": max_iterations},
        fixed_uids=_uids(fixed), moving_uids=_uids(moving))
    log.info("Registered %s on the %s: NMI %.3f, PET NCC %.3f, rotation %s deg, translation %s mm, %.1f s",
             name, used, nmi, pet_ncc, [round(v, 2) for v in result.rotation_deg],
             [round(v, 1) for v in result.translation_mm], result.seconds)
    _check(result, name, min_nmi)
    report(progress, 1.0, f"Registered {name}")
    return result


def _level_fractions(fixed: sitk.Image, sampling_fraction: float) -> list:
    """The metric's sampling fraction per resolution level: ``sampling_fraction``, lowered where that would sample
    more than :data:`MAX_SAMPLES` voxels of the level's (shrunk) fixed image."""
    voxels = float(np.prod(fixed.GetSize()))
    return [min(sampling_fraction, MAX_SAMPLES * shrink ** 3 / voxels) for shrink in SHRINK_FACTORS]


def _check(result: Registration, name: str, min_nmi: float) -> None:
    series = "CT/MR series" if result.basis == "anatomy" else "PETs"
    if not result.converged:
        raise RegistrationError(f"Cannot register {name}: the optimiser did not converge in {result.iterations} "
                                f"iterations on the {series}, so check that both show the same patient and body part.")
    if result.nmi < min_nmi:
        raise RegistrationError(f"Cannot register {name}: the {series} agree too little after registration "
                                f"(normalised mutual information {result.nmi:.3f}, below {min_nmi:.2f}), so check "
                                "that both show the same patient and body part.")
    worst = max(abs(v) for v in result.rotation_deg)
    if worst > MAX_ROTATION_DEG:
        raise RegistrationError(f"Cannot register {name}: the rotation found ({worst:.1f} degrees) is beyond the "
                                f"{MAX_ROTATION_DEG:.0f} degrees a patient turns on a table, so check that both "
                                "series show the same patient and body part.")


# -- files ----------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def transform_path(folder: str, patient_id: str, moving_session: str, fixed_session: str) -> str:
    """``<folder>/transforms/<patient>_<moving>_to_<fixed>.h5`` (characters other than letters, digits,
    ``.``, ``_``, ``-`` in the names become ``_``)."""
    parts = [_UNSAFE.sub("_", str(v)).strip(".") or "_" for v in (patient_id, moving_session, fixed_session)]
    return os.path.join(folder, "transforms", f"{parts[0]}_{parts[1]}_to_{parts[2]}.h5")


def _sidecar(path: str) -> str:
    return os.path.splitext(path)[0] + ".json"


def read_registration(path: str) -> Registration:
    """Read a stored transform and its sidecar (written by :func:`register_and_store`).

    Raises
    ------
    RegistrationError
        The file or its sidecar is missing or unreadable, or the transform is not rigid.
    """
    try:
        with open(_sidecar(path), encoding="utf-8") as handle:
            record = json.load(handle)
        transform = sitk.ReadTransform(path)
    except (OSError, ValueError, RuntimeError) as exc:
        raise RegistrationError(f"Cannot read the stored registration {printable(path)} ({printable(exc)}); delete "
                                "it and its .json sidecar to register again.") from exc
    if transform.GetName() == "CompositeTransform":  # an .h5 holds a composite of one transform
        transform = sitk.CompositeTransform(transform).GetNthTransform(0)
    try:
        euler = sitk.Euler3DTransform(transform)
    except (RuntimeError, TypeError) as exc:
        raise RegistrationError(f"The stored registration {printable(path)} is a {transform.GetName()}, not a rigid "
                                "transform; delete it and its .json sidecar to register again.") from exc
    quality = record.get("quality", {})
    return Registration(
        transform=euler, basis=record.get("parameters", {}).get("basis", ""),
        metric_value=float(quality.get("metric_value", float("nan"))), converged=bool(quality.get("converged")),
        stop_condition=str(quality.get("stop_condition", "")), iterations=int(quality.get("iterations", 0)),
        nmi=float(quality.get("nmi", float("nan"))), pet_ncc=float(quality.get("pet_ncc", float("nan"))),
        seconds=float(quality.get("seconds", 0.0)), parameters=dict(record.get("parameters", {})),
        fixed_uids=dict(record.get("fixed", {})), moving_uids=dict(record.get("moving", {})), reused=True)


def _parameters(basis_used: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    defaults = {"initialisation": "geometry", "grid_mm": GRID_MM, "sampling_fraction": SAMPLING_FRACTION,
                "seed": SEED, "max_iterations": MAX_ITERATIONS}
    defaults.update({k: v for k, v in kwargs.items() if k in defaults})
    defaults.update({"max_samples": MAX_SAMPLES, "gradient": GRADIENT})  # fixed by this version
    defaults["basis"] = basis_used
    return defaults


def stored_registration(folder: str, patient_id: str, fixed_session: str, moving_session: str,
                        fixed_uids: Dict[str, str], moving_uids: Dict[str, str], basis: str = "auto",
                        **kwargs: Any) -> Optional[Registration]:
    """The stored registration of these sessions when it was made from the same series and parameters.

    Only the transform file and its sidecar are read (no image): a caller that knows the series
    UIDs (``pet_series_uid``, ``anatomy_series_uid``: "" without CT/MR) from an index learns whether
    :func:`register_and_store` would reuse it.

    Returns
    -------
    Registration or None
        None when there is no stored file, it cannot be read, or it was made from other series or
        parameters (``kwargs`` as :func:`register_sessions`'s).
    """
    if basis not in ("auto", "anatomy", "pet"):
        raise ValueError(f"basis must be 'auto', 'anatomy' or 'pet', not {basis!r}")
    both = bool(fixed_uids.get("anatomy_series_uid")) and bool(moving_uids.get("anatomy_series_uid"))
    if basis == "anatomy" and not both:
        return None
    wanted = _parameters("anatomy" if basis == "anatomy" or (basis == "auto" and both) else "pet", kwargs)
    path = transform_path(folder, patient_id, moving_session, fixed_session)
    if not (os.path.exists(path) and os.path.exists(_sidecar(path))):
        return None
    try:
        stored = read_registration(path)
    except RegistrationError as exc:
        log.warning("%s; registering again", exc)
        return None
    same = (stored.fixed_uids == dict(fixed_uids) and stored.moving_uids == dict(moving_uids)
            and all(stored.parameters.get(k) == wanted[k] for k in _PARAMETER_KEYS))
    if not same:
        log.info("The stored registration %s was made from other series or parameters; registering again", path)
        return None
    return stored


def register_and_store(fixed: SessionImages, moving: SessionImages, folder: str, patient_id: str,
                       fixed_session: str, moving_session: str, basis: str = "auto", recompute: bool = False,
                       progress: Optional[ProgressCallback] = None, **kwargs: Any) -> Registration:
    """Register ``moving`` to ``fixed`` and store the transform beside the study table, or reuse it.

    The transform goes to :func:`transform_path` (``.h5``) with a ``.json`` sidecar holding the
    series UIDs of both sessions, the parameters and the quality. When that file exists and its
    sidecar names the same series and parameters (:func:`stored_registration`), it is read instead
    of registering again (``Registration.reused`` is True); ``recompute=True`` registers anyway. A
    refused registration writes nothing. Extra keyword arguments go to :func:`register_sessions`.

    Raises
    ------
    RegistrationError
        As :func:`register_sessions`.
    """
    path = transform_path(folder, patient_id, moving_session, fixed_session)
    fixed = replace(fixed, label=fixed.label or fixed_session)
    moving = replace(moving, label=moving.label or moving_session)
    _choose_basis(fixed, moving, basis)  # refuses basis "anatomy" without CT/MR before anything else
    if not recompute:
        stored = stored_registration(folder, patient_id, fixed_session, moving_session, _uids(fixed), _uids(moving),
                                     basis, **kwargs)
        if stored is not None:
            log.info("Reusing the registration %s", path)
            report(progress, 1.0, f"Reused {os.path.basename(path)}")
            return stored
    result = register_sessions(fixed, moving, basis=basis, progress=progress, **kwargs)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    record = {"patient_id": patient_id, "fixed_session": fixed_session, "moving_session": moving_session,
              "convention": "ITK, LPS mm, maps fixed-session points to moving-session points (resampling)",
              "fixed": result.fixed_uids, "moving": result.moving_uids, "parameters": result.parameters,
              "quality": result.quality()}
    # write both to temporary names first: a crash never leaves a transform without its sidecar
    temporary = path + ".part.h5"
    sitk.WriteTransform(result.transform, temporary)
    with open(_sidecar(path) + ".part", "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    os.replace(temporary, path)
    os.replace(_sidecar(path) + ".part", _sidecar(path))
    return result


# -- points ---------------------------------------------------------------------------------------

def map_points_ras(registration: Union[Registration, sitk.Transform], points_ras, inverse: bool = False) -> np.ndarray:
    """Map points given in the moving session (RAS mm, as users and tables give them) into the fixed one.

    The stored transform maps fixed to moving (LPS); its inverse is applied here, and the RAS <->
    LPS flip is done by :mod:`netpet.geometry`. With ``inverse=True`` the other way: points of the
    fixed session into the moving one (the transform itself).

    Returns
    -------
    numpy.ndarray
        (N, 3) RAS points (mm) in the fixed session (the moving one with ``inverse``); one point gives
        shape (1, 3).
    """
    transform = registration.transform if isinstance(registration, Registration) else registration
    applied = transform if inverse else transform.GetInverse()
    lps = ras_to_lps_array(np.atleast_2d(np.asarray(points_ras, dtype=float)))
    mapped = np.array([applied.TransformPoint(tuple(float(v) for v in p)) for p in lps], dtype=float).reshape(-1, 3)
    return lps_to_ras_array(mapped)
