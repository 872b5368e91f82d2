"""Reference regions: liver (and its automatic placement), spleen, and lesion background.

* Liver: a 3 cm diameter sphere in the right lobe (PERCIST: Wahl RL et al., J Nucl Med 2009;50
  Suppl 1:122S; O JH, Lodge MA, Wahl RL, Radiology 2016 "Practical PERCIST"), at a point given
  by the reader or placed automatically from the PET itself.
* Spleen: a sphere in the spleen, the upper reference of the Krenning score.
* Background: a shell around the lesion (``inner_mm`` to ``outer_mm`` from its surface), free of
  other lesions and of anything as hot as the lesion's threshold; or a sphere at a point the
  reader gives.

Automatic liver placement looks for the largest homogeneous region of intermediate-to-high
uptake on the patient's right side of the trunk: local mean and variation are computed over
3 cm cubes (box filters), homogeneous voxels are those whose coefficient of variation is
close to the image's lowest (the noise floor), the liver is the largest such region right of
the midline with uptake well above the body's typical soft tissue, and the sphere goes where
it fits entirely, varies least and keeps clear of lesions.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from netpet.quant.segment import LOCAL_SIGMA_MM, LesionMask, ReferenceStats
from netpet.quant.volume import QuantError, SUVVolume

LIVER_SPHERE_MM = 30.0
SPLEEN_SPHERE_MM = 20.0
BACKGROUND_POINT_SPHERE_MM = 20.0
#: CT numbers of bone (trabecular bone reads about 150-400 HU, cortical bone above 700 HU).
BONE_HU = 150.0


def _stats(values: np.ndarray, kind: str, center=None, peak_sd: Optional[float] = None) -> ReferenceStats:
    return ReferenceStats(float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0,
                          float(values.max()), float(np.median(values)), int(values.size), center, kind, peak_sd)


def sphere_stats(volume: SUVVolume, center_ras: Sequence[float], diameter_mm: float, kind: str,
                 exclude: Optional[np.ndarray] = None) -> ReferenceStats:
    """Statistics of the voxels whose centres lie in a sphere (RAS centre, diameter in mm)."""
    center = volume.voxel_of(center_ras, f"{kind} reference point")
    zyx = volume.ras_to_index(center_ras)
    box = volume.box_around(center, diameter_mm / 2 + 1.0)
    inside = volume.distance_mm(box, zyx) <= diameter_mm / 2
    if exclude is not None:
        inside &= ~exclude[box]
    if inside.sum() < 3:
        raise QuantError(f"The {kind} reference sphere at R,A,S {tuple(round(v, 1) for v in center_ras)} holds fewer "
                         "than 3 voxels (outside the image, or all excluded); place it elsewhere.")
    values = volume.values[box]
    if not np.isfinite(values[inside]).all():
        raise QuantError(f"The {kind} reference sphere at R,A,S {tuple(round(v, 1) for v in center_ras)} covers "
                         "non-finite (NaN or infinite) voxels; the image is damaged: convert the PET again.")
    # the spread of 1 mL local means inside the sphere: the uncertainty of an SUVpeak-sized
    # measurement at this uptake (noise and heterogeneity at the scale of SUVpeak)
    big = volume.box_around(center, diameter_mm / 2 + 3.0 * LOCAL_SIGMA_MM + 1.0)
    means = ndimage.gaussian_filter(volume.values[big].astype(np.float32), LOCAL_SIGMA_MM / volume.spacing_zyx,
                                    mode="nearest")
    offset = [b.start - s.start for b, s in zip(box, big)]
    means = means[tuple(slice(o, o + n) for o, n in zip(offset, inside.shape))]
    peak_sd = float(means[inside].std(ddof=1)) if inside.sum() > 1 else None
    return _stats(values[inside], kind, tuple(float(v) for v in center_ras), peak_sd)


def _local_stats(values: np.ndarray, size: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    mean = ndimage.uniform_filter(values, size=size, mode="constant")
    square = ndimage.uniform_filter(values * values, size=size, mode="constant")
    sd = np.sqrt(np.maximum(square - mean * mean, 0.0))
    return mean, sd


def _organ_candidates(volume: SUVVolume):
    """Homogeneous regions of uptake clearly above soft tissue on a ~6 mm working grid:
    (labels, local mean, local cv, midline column, step, working spacing, body mask)."""
    step = np.maximum(np.rint(6.0 / volume.spacing_zyx).astype(int), 1)  # work on ~6 mm voxels
    values = volume.values[::step[0], ::step[1], ::step[2]].astype(np.float32)
    spacing = volume.spacing_zyx * step
    size = np.maximum(np.rint(LIVER_SPHERE_MM / spacing).astype(int), 3)
    mean, sd = _local_stats(values, size)
    body = mean > 0.05 * float(np.percentile(mean, 99.5))
    if body.sum() < 100:
        raise QuantError(f"{volume.name} shows no body to place a liver reference in; give the liver point.")
    soft = float(np.median(values[body]))
    cv = np.where(mean > 0, sd / np.maximum(mean, 1e-6), np.inf)
    uptake = body & (mean > 2.0 * soft)
    if not uptake.any():
        raise QuantError(f"{volume.name}: no region of uptake above soft tissue for a liver reference; give the liver point.")
    floor = float(np.percentile(cv[uptake], 5))
    homogeneous = uptake & (cv <= 1.6 * floor)
    labels, _count = ndimage.label(homogeneous)
    midline = float(ndimage.center_of_mass(body)[2])
    return labels, mean, cv, midline, step, spacing, body


def _rightward(volume: SUVVolume) -> float:
    """+1 when a larger column index is towards the patient's right, -1 when towards the left.

    The patient's right is -x in LPS; a column step moves by direction[0][0] in x.
    """
    return -1.0 if np.asarray(volume.direction, dtype=float).reshape(3, 3)[0, 0] > 0 else 1.0


def auto_liver(volume: SUVVolume, exclude: Optional[np.ndarray] = None) -> Tuple[float, float, float]:
    """A RAS point for the liver reference sphere, found from the PET (see module docstring)."""
    labels, mean, cv, midline, step, spacing, body = _organ_candidates(volume)
    to_right = _rightward(volume)
    zs = np.nonzero(body.any(axis=(1, 2)))[0]
    top, bottom = zs.max(), zs.min()
    best, best_size = 0, 0
    for label in range(1, labels.max() + 1):
        component = labels == label
        size = int(component.sum())
        cz, _cy, cx = ndimage.center_of_mass(component)
        lateral = (cx - midline) * spacing[2] * to_right  # mm towards the patient's right
        height = (cz - bottom) / max(top - bottom, 1)
        if lateral > 20.0 and 0.3 < height < 0.85 and size > best_size:
            best, best_size = label, size
    if not best:
        raise QuantError(f"{volume.name}: no liver-like region found automatically; give the liver point (--liver R,A,S).")
    liver = labels == best
    depth = ndimage.distance_transform_edt(liver, sampling=spacing)
    # a working voxel of margin: the region's edge is only known to that precision
    fits = liver & (depth >= LIVER_SPHERE_MM / 2 + float(spacing.max()))
    if exclude is not None:
        clear = ndimage.distance_transform_edt(~exclude[::step[0], ::step[1], ::step[2]], sampling=spacing)
        fits &= clear > LIVER_SPHERE_MM / 2 + 5.0
    if not fits.any():
        fits = liver & (depth >= depth[liver].max() - 1e-6)
    # the least varying place, with a slight preference for the lateral (right) lobe
    candidates = np.argwhere(fits)
    lateral = (candidates[:, 2] - midline) * spacing[2] * to_right
    score = cv[fits] - 0.0005 * lateral
    # check the 12 best places with the true sphere at full resolution: of those as homogeneous as
    # the best (relative SD within 15 %), the most lateral (the right lobe). Not simply the lowest
    # relative SD: with count noise that would favour spheres whose mean happens to be high.
    order = np.argsort(score)[:12]
    checked = []
    for i in order:
        point = volume.index_to_ras(candidates[i] * step)
        stats = sphere_stats(volume, point, LIVER_SPHERE_MM, "liver", exclude)
        checked.append((stats.sd / stats.mean if stats.mean > 0 else np.inf, float(lateral[i]), point))
    best_cv = min(c[0] for c in checked)
    homogeneous = [c for c in checked if c[0] <= 1.15 * best_cv]
    return max(homogeneous, key=lambda c: c[1])[2]


def auto_spleen(volume: SUVVolume) -> Tuple[float, float, float]:
    """A RAS point in the spleen: the hottest homogeneous region left of the midline (SSTR PET)."""
    labels, mean, cv, midline, step, spacing, body = _organ_candidates(volume)
    to_right = _rightward(volume)
    best, best_mean = 0, 0.0
    for label in range(1, labels.max() + 1):
        component = labels == label
        if component.sum() * float(np.prod(spacing)) / 1000.0 < 30.0:
            continue  # under 30 mL: not a spleen
        cx = ndimage.center_of_mass(component)[2]
        lateral = -(cx - midline) * spacing[2] * to_right  # mm towards the patient's left
        uptake = float(mean[component].mean())
        if lateral > 40.0 and uptake > best_mean:
            best, best_mean = label, uptake
    if not best:
        raise QuantError(f"{volume.name}: no spleen-like region found automatically; give the spleen point.")
    spleen = labels == best
    depth = ndimage.distance_transform_edt(spleen, sampling=spacing)
    choice = np.argwhere(depth >= depth[spleen].max() - 1e-6)[0] * step
    return volume.index_to_ras(choice)


def liver_reference(volume: SUVVolume, center_ras: Optional[Sequence[float]] = None,
                    exclude: Optional[np.ndarray] = None) -> ReferenceStats:
    """The liver reference: a 3 cm sphere at ``center_ras``, or placed automatically."""
    if center_ras is None:
        center_ras = auto_liver(volume, exclude)
    return sphere_stats(volume, center_ras, LIVER_SPHERE_MM, "liver", exclude)


def spleen_reference(volume: SUVVolume, center_ras: Optional[Sequence[float]] = None,
                     exclude: Optional[np.ndarray] = None) -> ReferenceStats:
    if center_ras is None:
        center_ras = auto_spleen(volume)
    return sphere_stats(volume, center_ras, SPLEEN_SPHERE_MM, "spleen", exclude)


def _lesion_shell(volume: SUVVolume, lesion: LesionMask, inner_mm: float, outer_mm: float,
                  others: Sequence[LesionMask], tissue: Optional[np.ndarray] = None):
    """(values, shell) in a box around the lesion: voxels ``inner_mm``-``outer_mm`` from its surface,
    cooler than the lesion (its threshold; for a lesion that is not separable, its SUVmax), inside
    the body, off other lesions, and within ``tissue`` (a full-size mask) when given."""
    reach = outer_mm + 2.0 * float(volume.spacing_zyx.max())
    low = [max(s.start - int(np.ceil(reach / d)), 0) for s, d in zip(lesion.box, volume.spacing_zyx)]
    high = [min(s.stop + int(np.ceil(reach / d)), n) for s, d, n in zip(lesion.box, volume.spacing_zyx, volume.shape)]
    box = tuple(slice(a, b) for a, b in zip(low, high))
    mask = np.zeros(tuple(b - a for a, b in zip(low, high)), dtype=bool)
    offset = [s.start - a for s, a in zip(lesion.box, low)]
    mask[tuple(slice(o, o + n) for o, n in zip(offset, lesion.mask.shape))] = lesion.mask
    values = volume.values[box]
    distance = ndimage.distance_transform_edt(~mask, sampling=volume.spacing_zyx)
    hot = lesion.threshold if np.isfinite(lesion.threshold) else lesion.suv_max
    shell = (distance > inner_mm) & (distance <= outer_mm) & (values < hot) & (values > 0)
    if tissue is not None:
        shell &= tissue[box]
    for other in others:
        if other is lesion:
            continue
        full = np.zeros(volume.shape, dtype=bool)
        full[other.box] = other.mask
        shell &= ~ndimage.binary_dilation(full[box], iterations=1)
    return values, shell


def background_shell(volume: SUVVolume, lesion: LesionMask, inner_mm: float = 10.0, outer_mm: float = 20.0,
                     others: Sequence[LesionMask] = ()) -> ReferenceStats:
    """Background around a lesion: voxels ``inner_mm``-``outer_mm`` from its surface, excluding
    other lesions, voxels as hot as the lesion's threshold, and voxels outside the body (zero)."""
    values, shell = _lesion_shell(volume, lesion, inner_mm, outer_mm, others)
    if shell.sum() < 10:
        raise QuantError("Too few background voxels around the lesion (fewer than 10 in the shell); give a background "
                         "point instead.")
    return _stats(values[shell], "background")


def background_point(volume: SUVVolume, center_ras: Sequence[float], diameter_mm: float = BACKGROUND_POINT_SPHERE_MM
                     ) -> ReferenceStats:
    return sphere_stats(volume, center_ras, diameter_mm, "background")


def bone_mask(volume: SUVVolume, ct) -> np.ndarray:
    """[z, y, x] bool mask of bone (CT >= :data:`BONE_HU`) on the PET grid; ``ct`` a SimpleITK image in
    the same frame of reference (PET/CT), resampled linearly onto the PET's voxels."""
    import SimpleITK as sitk

    resampled = sitk.Resample(ct, volume.to_image(), sitk.Transform(), sitk.sitkLinear, -1000.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(resampled) >= BONE_HU


def background_bone(volume: SUVVolume, lesion: LesionMask, bone: np.ndarray, inner_mm: float = 10.0,
                    outer_mm: float = 30.0, others: Sequence[LesionMask] = ()) -> ReferenceStats:
    """Normal-bone background of a bone lesion: the bone voxels (``bone``, full-size mask) ``inner_mm``
    to ``outer_mm`` from the lesion, outside it and other lesions, and cooler than the lesion.

    For a bone lesion the soft-tissue shell is the wrong reference (paravertebral muscle reads far
    lower than marrow, and T/B then exaggerates the contrast); normal bone is the tissue the lesion
    replaces. A wider shell than for soft tissue (30 mm) finds enough bone in thin bones.
    """
    values, shell = _lesion_shell(volume, lesion, inner_mm, outer_mm, others, bone)
    if shell.sum() < 10:
        raise QuantError(f"Fewer than 10 normal-bone voxels lie {inner_mm:.0f}-{outer_mm:.0f} mm from the lesion; place a "
                         "background point in normal bone instead.")
    return _stats(values[shell], "background")
