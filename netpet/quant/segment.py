"""Semi-automatic lesion segmentation from a click.

From a seed point the hottest voxel within ``search_radius_mm`` is the lesion's peak. The
lesion is the connected region (face connectivity) of voxels above a threshold that contains
the peak, limited to a sphere of ``max_radius_mm`` around it, and limited to the peak's
watershed basin: other significant maxima in the region (a neighbouring kidney, spleen, bladder
or lesion, and any other clicked seed) are markers of their own, so the lesion cannot leak into
them through a thin bridge of hot voxels. All work happens in a box around the peak, so a click
costs milliseconds on a whole-body PET.

Threshold methods (``method``):

``fixed41``, ``fixed50``
    41 % or 50 % of SUVmax (EANM procedure guideline for tumour PET imaging: Boellaard R et al.,
    EJNMMI 2015;42:328).
``adaptive``
    Background-adapted: background + f x (SUVmax - background), with the background the median of
    a shell around the current region (air excluded), iterated to convergence (after Nestle U et
    al., J Nucl Med 2005;46:1342, and the iterative scheme of Jentzen W et al., J Nucl Med
    2007;48:108); f = 0.44 by default, the value that measured best (see ``DEFAULT_METHOD``).
``absolute``
    A fixed SUV (default 2.5).
``liver-percist``
    1.5 x liver SUVmean + 2 x liver SD (PERCIST threshold of measurability: Wahl RL et al., J Nucl
    Med 2009;50 Suppl 1:122S).
``liver-max``
    The liver reference's SUVmax.
``gradient``
    Watershed of the gradient magnitude between an inner marker (the hot core) and an outer
    marker (background), which puts the contour where the image changes fastest; suited to small
    lesions whose maximum the partial-volume effect lowers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from netpet.quant.volume import Box, QuantError, SUVVolume

METHODS = ("adaptive", "fixed41", "fixed50", "absolute", "liver-percist", "liver-max", "gradient")
#: The default method and its fraction: the best median Dice over the digital reference study and
#: simulated NEMA IEC phantoms (benchmarks/eval_segmentation.py; figures in the README).
DEFAULT_METHOD = "adaptive"
ADAPTIVE_FRACTION = 0.44
_FACES = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class ReferenceStats:
    """Statistics of a reference region (liver, spleen, background), SUV."""

    mean: float
    sd: float
    max: float
    median: float
    voxels: int
    center_ras: Optional[Tuple[float, float, float]] = None
    kind: str = "liver"

    def to_dict(self, prefix: str) -> dict:
        return {f"{prefix}_suv_mean": round(self.mean, 4), f"{prefix}_suv_sd": round(self.sd, 4),
                f"{prefix}_suv_max": round(self.max, 4), f"{prefix}_voxels": self.voxels}


@dataclass(frozen=True)
class SegmentOptions:
    """How to segment.

    method : one of :data:`METHODS`
    search_radius_mm : where to look for the hottest voxel around the seed
    max_radius_mm : the lesion cannot reach farther than this from its peak
    fraction : f of the fixed (default 0.41/0.50) and adaptive (default 0.44) methods
    absolute_suv : threshold of the ``absolute`` method
    shell_mm : (inner, outer) distance of the background shell from the region, mm
    split : separate the lesion from other significant maxima (watershed)
    split_depth : (share of SUVmax - threshold, share of SUVmax): how far a maximum must rise
        above its surroundings to count as another structure
    """

    method: str = DEFAULT_METHOD
    search_radius_mm: float = 10.0
    max_radius_mm: float = 45.0
    fraction: Optional[float] = None
    absolute_suv: float = 2.5
    shell_mm: Tuple[float, float] = (8.0, 20.0)
    split: bool = True
    split_depth: Tuple[float, float] = (0.35, 0.07)

    def effective_fraction(self) -> float:
        if self.fraction is not None:
            return float(self.fraction)
        return {"fixed41": 0.41, "fixed50": 0.50}.get(self.method, ADAPTIVE_FRACTION)


@dataclass
class LesionMask:
    """A segmented lesion: its mask in a box of the volume, and how it was obtained."""

    box: Box
    mask: np.ndarray
    peak: Tuple[int, int, int]
    suv_max: float
    threshold: float
    method: str
    background: Optional[float] = None
    notes: List[str] = field(default_factory=list)

    @property
    def voxels(self) -> int:
        return int(self.mask.sum())

    def full(self, shape: Sequence[int]) -> np.ndarray:
        out = np.zeros(tuple(shape), dtype=bool)
        out[self.box] = self.mask
        return out

    def indices(self) -> np.ndarray:
        """(n, 3) absolute [z, y, x] indices of the lesion's voxels."""
        local = np.argwhere(self.mask)
        return local + np.array([s.start for s in self.box])


def find_peak(volume: SUVVolume, seed_ras: Sequence[float], search_radius_mm: float) -> Tuple[int, int, int]:
    """The hottest voxel within ``search_radius_mm`` of the seed (RAS mm)."""
    seed = volume.voxel_of(seed_ras, "seed")
    box = volume.box_around(seed, search_radius_mm)
    values = volume.values[box]
    inside = volume.distance_mm(box, seed) <= max(search_radius_mm, 0.51 * float(volume.spacing_zyx.max()))
    local = np.where(inside, values, -np.inf)
    peak = np.unravel_index(int(np.argmax(local)), local.shape)
    return tuple(int(p + s.start) for p, s in zip(peak, box))  # type: ignore[return-value]


def _component(region: np.ndarray, at: Tuple[int, ...]) -> np.ndarray:
    labels, _count = ndimage.label(region, structure=_FACES)
    label = labels[at]
    return labels == label if label else np.zeros_like(region)


def _shell_median(values: np.ndarray, region: np.ndarray, spacing: np.ndarray, inner: float, outer: float,
                  exclude: np.ndarray) -> Optional[float]:
    """Median of the voxels between ``inner`` and ``outer`` mm from ``region``, outside ``exclude``."""
    distance = ndimage.distance_transform_edt(~region, sampling=spacing)
    shell = (distance > inner) & (distance <= outer) & ~exclude
    if shell.sum() < 10:
        return None
    return float(np.median(values[shell]))


def _markers(relief: np.ndarray, region: np.ndarray, peak: Tuple[int, ...], depth: float,
             others: Sequence[Tuple[int, ...]]) -> np.ndarray:
    """Marker image: 1 at the lesion peak, 2 at every other significant maximum or other seed."""
    image = sitk.GetImageFromArray(np.where(region, relief, relief.min()).astype(np.float32))
    hmax = sitk.GetArrayFromImage(sitk.RegionalMaxima(sitk.HMaxima(image, float(depth)), 0, 1, True)) > 0
    components, count = ndimage.label(hmax & region, structure=np.ones((3, 3, 3), dtype=bool))
    markers = np.where(components > 0, 2, 0).astype(np.uint16)
    if count:
        # the maximum nearest the clicked peak (smoothing may move it a voxel or two) is the lesion's own
        positions = ndimage.center_of_mass(hmax, components, range(1, count + 1))
        distances = [float(np.linalg.norm(np.subtract(p, peak))) for p in positions]
        nearest = int(np.argmin(distances))
        if components[peak] or distances[nearest] <= 3.0:
            own = components[peak] if components[peak] else nearest + 1
            markers[components == own] = 1
    for other in others:
        markers[other] = 2
    markers[peak] = 1
    return markers


def _split(values: np.ndarray, region: np.ndarray, peak: Tuple[int, ...], depth: float,
           others: Sequence[Tuple[int, ...]]) -> np.ndarray:
    """The part of ``region`` in the watershed basin of ``peak`` (other maxima compete)."""
    relief = ndimage.gaussian_filter(values.astype(np.float32), 0.8)
    markers = _markers(relief, region, peak, depth, others)
    if not np.any(markers == 2):
        return region
    floor = float(relief[region].min()) if region.any() else 0.0
    # watershed floods from the markers over the inverted image; outside the region is a wall
    terrain = np.where(region, -relief, -floor + 1.0).astype(np.float32)
    basins = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(
        sitk.GetImageFromArray(terrain), sitk.GetImageFromArray(markers), markWatershedLine=False, fullyConnected=False))
    return _component(region & (basins == 1), peak)


def _gradient_region(values: np.ndarray, inside: np.ndarray, peak: Tuple[int, ...], suv_max: float,
                     background: float, spacing: np.ndarray) -> np.ndarray:
    smooth = ndimage.gaussian_filter(values.astype(np.float32), 0.7)
    gradient = ndimage.gaussian_gradient_magnitude(values.astype(np.float32), 0.7)
    contrast = suv_max - background
    markers = np.zeros(values.shape, dtype=np.uint16)
    markers[_component(inside & (smooth >= background + 0.75 * contrast), peak)] = 1
    markers[peak] = 1
    markers[(~inside) | (smooth <= background + 0.15 * contrast)] = 2
    basins = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(
        sitk.GetImageFromArray(gradient.astype(np.float32)), sitk.GetImageFromArray(markers),
        markWatershedLine=True, fullyConnected=False))
    # the watershed line follows the steepest slope; its median value is the lesion's own
    # threshold (voxels on the line are shared by both sides, so a plain basin under-segments)
    line = (basins == 0) & ndimage.binary_dilation(basins == 1, structure=_FACES) & inside
    if not line.any():
        return _component((basins == 1) & inside, peak)
    level = float(np.median(values[line]))
    return _component(inside & (values >= level) & ((basins == 1) | line), peak)


def segment(volume: SUVVolume, seed_ras: Sequence[float], options: Optional[SegmentOptions] = None,
            liver: Optional[ReferenceStats] = None, others_ras: Sequence[Sequence[float]] = (),
            background: Optional[float] = None) -> LesionMask:
    """Segment the lesion at a seed point.

    Parameters
    ----------
    volume : SUVVolume
    seed_ras : (R, A, S) mm, a point on or near the lesion
    options : SegmentOptions
    liver : ReferenceStats, optional
        Needed by the ``liver-percist`` and ``liver-max`` methods.
    others_ras : points of other lesions or structures the lesion must be separated from
        (other seeds, or a second click in a neighbouring hot organ)
    background : float, optional
        A background SUV to use instead of the local shell estimate (adaptive and gradient).

    Raises
    ------
    QuantError
        Seed outside the image, unknown method, missing liver reference, or no voxel of the lesion
        above the method's threshold (a seed in background).
    """
    options = options or SegmentOptions()
    if options.method not in METHODS:
        raise QuantError(f"Unknown segmentation method {options.method!r}; choose one of {', '.join(METHODS)}.")
    peak = find_peak(volume, seed_ras, options.search_radius_mm)
    suv_max = float(volume.values[peak])
    box = volume.box_around(peak, options.max_radius_mm)
    values = volume.values[box]
    local_peak = tuple(p - s.start for p, s in zip(peak, box))
    spacing = volume.spacing_zyx
    inside = volume.distance_mm(box, peak) <= options.max_radius_mm
    others = []
    for point in others_ras:
        if not volume.contains_index(volume.ras_to_index(point)):
            continue  # a competing point outside the image separates nothing
        other = find_peak(volume, point, options.search_radius_mm)
        if other == peak:
            raise QuantError(f"Two seeds lead to the same lesion maximum at R,A,S {volume.index_to_ras(peak)}; "
                             "give one seed per lesion.")
        local = tuple(o - s.start for o, s in zip(other, box))
        if all(0 <= c < n for c, n in zip(local, values.shape)):
            others.append(local)
    notes: List[str] = []
    method = options.method
    f = options.effective_fraction()
    bg = background
    if method in ("adaptive", "gradient") and bg is None:
        bg = _local_background(values, inside, local_peak, suv_max, f, spacing, options.shell_mm)
    if method == "gradient":
        region = _gradient_region(values, inside, local_peak, suv_max, bg, spacing)
        threshold = float(values[region].min()) if region.any() else suv_max
    else:
        threshold = _threshold(method, suv_max, f, bg, liver, options)
        if threshold >= suv_max:
            r, a, s = volume.index_to_ras(peak)
            raise QuantError(
                f"No lesion at the seed: the hottest voxel nearby (SUV {suv_max:.2f} at R,A,S {r:.1f},{a:.1f},{s:.1f}) "
                f"does not exceed the {method} threshold (SUV {threshold:.2f}); click on the lesion or choose another method."
            )
        region = _component(inside & (values >= threshold), local_peak)
    if options.split and method != "gradient":
        # a competing maximum must stand out by a share of the lesion's contrast over the threshold
        # (or of SUVmax): noise bumps inside one lesion do not, a neighbouring kidney or lesion does
        depth = max(options.split_depth[0] * (suv_max - threshold), options.split_depth[1] * suv_max)
        split = _split(values, region, local_peak, depth, others)
        if split.sum() < region.sum():
            notes.append(f"separated from {int(region.sum() - split.sum())} voxels of a neighbouring maximum")
        region = split
    if not region.any():
        region[local_peak] = True
    if region.sum() > 1 and np.any(region & ~inside):
        notes.append("reaches the limit sphere")
    return LesionMask(box, region, peak, suv_max, float(threshold), method, bg, notes)


def _threshold(method: str, suv_max: float, f: float, background: Optional[float], liver: Optional[ReferenceStats],
               options: SegmentOptions) -> float:
    if method in ("fixed41", "fixed50"):
        return f * suv_max
    if method == "adaptive":
        return background + f * (suv_max - background)
    if method == "absolute":
        return options.absolute_suv
    if liver is None:
        raise QuantError(f"The {method} method needs the liver reference: give a liver point (--liver R,A,S) or "
                         "let NETPET place the liver reference automatically.")
    if method == "liver-percist":
        return 1.5 * liver.mean + 2.0 * liver.sd
    return liver.max


def _local_background(values: np.ndarray, inside: np.ndarray, peak: Tuple[int, ...], suv_max: float, f: float,
                      spacing: np.ndarray, shell_mm: Tuple[float, float]) -> float:
    """Background SUV around a lesion: the median of a shell around the thresholded region,
    iterated with the threshold it implies (at most 8 times, until it moves < 1 %)."""
    far = inside & ~(ndimage.distance_transform_edt(~_peak_mask(values.shape, peak), sampling=spacing) <= 20.0)
    far &= values > 0.02 * suv_max
    background = float(np.median(values[far])) if far.any() else 0.0
    for _ in range(8):
        threshold = background + f * (suv_max - background)
        region = _component(inside & (values >= threshold), peak)
        # exclude what is as hot as the lesion, and air outside the body (near-zero values)
        excluded = (values >= threshold) | ~inside | (values <= 0.02 * suv_max)
        estimate = _shell_median(values, region, spacing, shell_mm[0], shell_mm[1], excluded)
        if estimate is None:
            break
        estimate = min(estimate, suv_max)
        if abs(estimate - background) <= 0.01 * max(abs(background), 1e-3):
            background = estimate
            break
        background = estimate
    return max(background, 0.0)


def _peak_mask(shape, peak) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[peak] = True
    return mask


def lesion_from_mask(volume: SUVVolume, mask: np.ndarray, method: str = "edited") -> LesionMask:
    """A lesion from a full-size boolean mask (a segment drawn or edited by a reader).

    Raises
    ------
    QuantError
        An empty mask, or one whose shape differs from the volume's.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != volume.shape:
        raise QuantError(f"The mask has shape {mask.shape} but {volume.name} has {volume.shape}; resample it to the "
                         "PET geometry first.")
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        raise QuantError("The segment is empty: paint or segment the lesion first.")
    box = found[0]
    local = mask[box]
    values = np.where(local, volume.values[box], -np.inf)
    peak_local = np.unravel_index(int(np.argmax(values)), local.shape)
    peak = tuple(int(p + s.start) for p, s in zip(peak_local, box))
    inside = volume.values[box][local]
    return LesionMask(box, local.copy(), peak, float(inside.max()), float(inside.min()), method)


def segment_seeds(volume: SUVVolume, seeds_ras: Sequence[Sequence[float]], options: Optional[SegmentOptions] = None,
                  liver: Optional[ReferenceStats] = None, split_ras: Sequence[Sequence[float]] = ()) -> List[LesionMask]:
    """Segment several lesions; each seed competes with the others (and with ``split_ras``)."""
    options = options or SegmentOptions()
    results = []
    for i, seed in enumerate(seeds_ras):
        others = [s for j, s in enumerate(seeds_ras) if j != i] + list(split_ras)
        results.append(segment(volume, seed, options, liver, others))
    return results


def label_image(volume: SUVVolume, lesions: Sequence[LesionMask]) -> np.ndarray:
    """uint16 [z, y, x] labels: i + 1 for lesion i (a voxel claimed twice keeps the first label)."""
    labels = np.zeros(volume.shape, dtype=np.uint16)
    for i, lesion in enumerate(lesions):
        region = labels[lesion.box]
        region[lesion.mask & (region == 0)] = i + 1
    return labels
