"""Semi-automatic lesion segmentation from a click, and the decision whether a lesion can be segmented.

Finding the lesion
    From the click the segmentation climbs the image (steepest ascent on a lightly smoothed copy)
    to the nearest local maximum connected to it: the lesion's peak. It is the maximum of the
    structure the reader clicked, never the hottest voxel of a neighbour that happens to lie within
    some radius. When the peak lies more than a voxel from the click the result says how far it
    moved. A click on a noise bump at the flank of a lesion climbs again on a smoother copy (the
    1 mL local mean) so that it reaches the lesion's own maximum.

Growing the region
    The lesion is the connected region (face connectivity) of voxels above the method's threshold
    that contains the peak, inside a limit sphere of ``max_radius_mm`` around it, and inside the
    peak's watershed basin: other significant maxima (a neighbouring kidney, spleen, bladder or
    lesion, and any other clicked seed) are markers of their own, so the lesion cannot leak into
    them through a thin bridge of hot voxels. All work happens in a box around the peak.

Separable or not (the criterion, in the order it is applied)
    A lesion is ``segmented`` only when all four tests pass; otherwise its status is
    ``not separable``, no region is kept, and the local uptake at the click (SUVmax and SUVpeak in
    a 1 mL sphere) and the background around it are measured and reported instead:

    1. *It is what the reader clicked.* The region (holes filled: a click in a necrotic centre
       counts) must come within 5 mm of the click; a climb that ended on a noise maximum of an organ
       10-15 mm away does not.
    2. *Focal contrast over the local noise.* The lesion's highest 1 mL local mean must exceed the
       uptake it stands on by ``min_contrast`` (default 3) times the noise of such means. That
       uptake is the saddle towards whatever extends beyond a box of 1.5 x the region's radius (at
       least 25 mm): soft tissue around a node, or the liver, bowel or bone a lesion is embedded
       in, less one noise SD (in noisy tissue the saddle is the highest path noise opens), and never
       below the median of the shell around the region. The noise comes from differences of local
       means 12 mm apart in the shell (1.4826 x MAD / sqrt 2), so edges between tissues do not
       inflate it. This refuses iso-intense and cold lesions inside an organ, whose "peak" is a
       noise maximum of the organ, and non-avid lesions in bone.
    3. *No organ-sized growth.* The region must not reach the limit sphere (it would be part of a
       structure larger than ``2 x max_radius_mm``, an organ, or the background itself).
    4. *No flooding as the threshold falls.* Raising the threshold by 10 % of the lesion's contrast
       must not shrink the region to less than a third of its volume: a lesion has an edge, and its
       volume changes smoothly with the threshold; a region that collapses when the threshold rises a
       little had spilled over a shallow saddle into its surroundings.

Threshold methods (``method``):

``adaptive``
    background + f x (SUVpeak - background), with f calibrated on realistic NEMA IEC phantoms (their
    spheres without the cold walls lesions do not have; ``cold_walls`` for a phantom's own spheres)
    for the lesion's size (a blurred ball fitted to its radial profile) at the image's resolution
    (its body outline): see :func:`_adaptive_region` and :data:`ADAPTIVE_CALIBRATION`. The background is
    the median of a shell around the region (after Nestle U et al., J Nucl Med 2005;46:1342), or the
    uptake of the organ or bone the lesion is embedded in; the threshold keeps 3 noise SD above it,
    rises above plateaus the region would take in and out of threads of noise, and a small region is
    also cut at its steepest edge. With ``fraction`` given, f is that fixed fraction.
``fixed41``, ``fixed50``
    41 % or 50 % of SUVmax (EANM procedure guideline for tumour PET imaging: Boellaard R et al.,
    EJNMMI 2015;42:328).
``absolute``
    A fixed SUV (default 2.5).
``liver-percist``
    1.5 x liver SUVmean + 2 x liver SD (PERCIST threshold of measurability: Wahl RL et al., J Nucl
    Med 2009;50 Suppl 1:122S).
``liver-max``
    The liver reference's SUVmax.
``gradient``
    Watershed of the gradient magnitude between an inner marker (the hot core) and an outer
    marker (background), which puts the contour where the image changes fastest.
"""

from __future__ import annotations

import contextlib
import math
import threading
import zlib
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from netpet.quant.volume import Box, QuantError, SUVVolume
from netpet.schema import DEFAULT_SEGMENTATION_METHOD, SEGMENTATION_METHODS

METHODS = SEGMENTATION_METHODS
DEFAULT_METHOD = DEFAULT_SEGMENTATION_METHOD
ADAPTIVE_FRACTION = 0.44
#: The ``adaptive`` method's calibration: for an image of resolution sigma (Gaussian width, mm), pairs
#: (lesion size, fraction f of SUVpeak - background at which the thresholded volume equals the true
#: volume). The size is the volume (mL) of the blurred ball fitted to the lesion's radial profile
#: (:func:`ball_radius`), as the method measures it, so the fit's own bias is part of the calibration.
#: Measured on the realistic NEMA IEC phantom (netpet.phantom.nema: OSEM like EARL1 and EARL2
#: systems, 4:1, 8:1 and 10:1; noise realisations 0-19 of each; spheres 10-37 mm) with its spheres'
#: cold walls left out (``sphere_wall_mm=0``): lesions have none. The images have sigma 3.51 mm
#: (EARL1-like) and 2.26 mm (EARL2-like) as :func:`outline_sigma` measures them. One knot per sphere
#: at its median measured size, its fraction set so that the mean over the sphere's realisations of
#: the fraction the curve gives at each one's measured size equals the mean fraction that reproduces
#: the true volume (the measured size scatters on a steep curve; ``python
#: benchmarks/eval_segmentation.py --calibrate 20 --sphere-wall 0`` reproduces the table; the sizes
#: depend on the table through the method's first look, and a second pass moved no fraction by more
#: than 0.002). Between and beyond the two resolutions the fraction is interpolated linearly in
#: sigma (and clamped); between sizes, linearly in log volume (and clamped). Smaller lesions and
#: blurrier images need higher fractions: a Gaussian blur moves the half-contrast surface of a sphere
#: inwards by about sigma^2 / R, and partial volume lowers SUVpeak more than the edge (Jentzen W et
#: al., J Nucl Med 2007;48:108 calibrate the same way, on SUVmax).
ADAPTIVE_CALIBRATION = {
    2.26: ((0.46, 0.823), (0.89, 0.488), (2.14, 0.405), (5.04, 0.382), (10.80, 0.398), (25.66, 0.400)),
    3.51: ((0.55, 0.970), (1.27, 0.613), (2.41, 0.487), (5.30, 0.404), (11.19, 0.393), (26.10, 0.407)),
}
#: The same calibration on the phantom as it is built, each sphere inside a 1 mm cold plastic wall
#: (``python benchmarks/eval_segmentation.py --calibrate 20``, second pass: no fraction moved by more
#: than 0.005): for measuring a phantom's spheres
#: (``SegmentOptions(cold_walls=True)``, ``netpet segment --cold-walls``). A cold wall between a
#: sphere and its background pulls the blurred edge inwards and lowers the threshold that reproduces
#: the sphere's volume, the more the lower the contrast (Hofheinz F et al., Phys Med Biol
#: 2010;55:1099): measured on the noiseless simulation, 17-37 mm spheres want a fraction 0.03-0.05
#: lower with the walls at 4:1 and 0.01-0.02 lower at 10:1. A lesion measured with this table reads
#: too large; a phantom sphere measured with the default, too small at low contrast.
ADAPTIVE_CALIBRATION_COLD_WALLS = {
    2.26: ((0.44, 0.775), (0.85, 0.465), (1.93, 0.372), (4.79, 0.353), (10.48, 0.373), (25.02, 0.373)),
    3.52: ((0.58, 0.908), (1.17, 0.579), (2.26, 0.469), (5.04, 0.388), (10.65, 0.371), (25.24, 0.384)),
}
#: The saddle a lesion stands on, in noisy tissue, lies above the tissue's mean by the highest path noise
#: opens (1-2 noise SD): the contrast test takes this many SD off, the cautious end (see :func:`_grow`).
SADDLE_NOISE = 1.0
#: An adaptive region below this volume (mL) is also delimited at its steepest edge, and the smaller
#: of the two is kept (see :func:`_grow`).
SMALL_LESION_ML = 1.1
#: A lesion stands on the uptake of tissue that extends farther than this from its peak (mm):
#: organs, bowel and bone do, lesions of up to about 5 cm do not (see :func:`_grow`).
EMBEDDING_MM = 40.0
#: A lesion whose half-SUVmax region is below the first volume (mL) keeps the adaptive threshold at
#: or above half of SUVmax over the background; the floor fades out linearly up to the second volume
#: (see :func:`_adaptive_region`).
SMALL_REGION_ML = (0.25, 0.6)
SEGMENTED = "segmented"
NOT_SEPARABLE = "not separable"
#: 1 mL sphere radius (mm): the local uptake of a lesion that cannot be segmented is measured in it.
LOCAL_RADIUS_MM = (3.0 * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
#: Gaussian with the second moment of the 1 mL sphere (sigma^2 = r^2 / 5): the "1 mL local mean".
LOCAL_SIGMA_MM = LOCAL_RADIUS_MM / math.sqrt(5.0)
#: Two 1 mL means this far apart do not share voxels: their difference measures the noise.
NOISE_LAG_MM = 12.0
#: The segmented region must come this close to the click (mm): it is the structure the reader clicked.
CLICK_TOLERANCE_MM = 5.0
_FACES = ndimage.generate_binary_structure(3, 1)
_CUBE = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class ReferenceStats:
    """Statistics of a reference region (liver, spleen, background), SUV.

    ``peak_sd`` is the standard deviation of 1 mL local means inside the region (its measurement
    noise at the scale of SUVpeak), when it was measured.
    """

    mean: float
    sd: float
    max: float
    median: float
    voxels: int
    center_ras: Optional[Tuple[float, float, float]] = None
    kind: str = "liver"
    peak_sd: Optional[float] = None

    def to_dict(self, prefix: str) -> dict:
        return {f"{prefix}_suv_mean": round(self.mean, 4), f"{prefix}_suv_sd": round(self.sd, 4),
                f"{prefix}_suv_max": round(self.max, 4), f"{prefix}_voxels": self.voxels}


@dataclass(frozen=True)
class SegmentOptions:
    """How to segment.

    method : one of :data:`METHODS`
    search_radius_mm : how far (mm) the peak may lie from the click; a climb that leaves this
        sphere finds no focal maximum at the click
    max_radius_mm : the lesion cannot reach farther than this from its peak (mm)
    fraction : f of the fixed methods (default 0.41/0.50), in (0, 1); for ``adaptive``, a fixed
        fraction of (SUVpeak - background) in place of the calibrated one
    absolute_suv : threshold of the ``absolute`` method (SUV, > 0)
    shell_mm : (inner, outer) distance of the background shell from the region, mm
    split : separate the lesion from other significant maxima (watershed)
    split_depth : (share of SUVmax - threshold, share of SUVmax): how far a maximum must rise
        above its surroundings to count as another structure
    min_contrast : focal contrast, in noise standard deviations of 1 mL local means, below which a
        structure is not separable from its background
    cold_walls : the ``adaptive`` calibration of phantom spheres inside cold plastic walls (NEMA IEC
        quality control), instead of the default one for lesions, which have no wall
    """

    method: str = DEFAULT_METHOD
    search_radius_mm: float = 20.0
    max_radius_mm: float = 60.0
    fraction: Optional[float] = None
    absolute_suv: float = 2.5
    shell_mm: Tuple[float, float] = (8.0, 20.0)
    split: bool = True
    split_depth: Tuple[float, float] = (0.35, 0.07)
    min_contrast: float = 3.0
    cold_walls: bool = False

    def effective_fraction(self) -> float:
        if self.fraction is not None:
            return float(self.fraction)
        return {"fixed41": 0.41, "fixed50": 0.50}.get(self.method, ADAPTIVE_FRACTION)

    def validate(self) -> None:
        """Refuse degenerate parameters with one sentence (QuantError)."""
        if self.method not in METHODS:
            raise QuantError(f"Unknown segmentation method {self.method!r}; choose one of {', '.join(METHODS)}.")

        def finite(name: str, value: float, low: float, high: float = math.inf, open_low: bool = True) -> None:
            ok = isinstance(value, (int, float)) and math.isfinite(value) and value < high and (
                value > low if open_low else value >= low)
            if not ok:
                bound = f"above {low:g}" if open_low else f"at least {low:g}"
                bound += f" and below {high:g}" if math.isfinite(high) else ""
                raise QuantError(f"The segmentation parameter {name} is {value!r}; it must be a number {bound}.")

        if self.fraction is not None:
            finite("fraction", self.fraction, 0.0, 1.0)
        finite("absolute SUV", self.absolute_suv, 0.0)
        finite("search radius (mm)", self.search_radius_mm, 0.0, 200.0, open_low=False)
        finite("limit radius (mm)", self.max_radius_mm, 5.0, 300.0)
        finite("minimum contrast", self.min_contrast, 0.0, open_low=False)
        inner, outer = self.shell_mm
        finite("background shell inner distance (mm)", inner, 0.0, open_low=False)
        finite("background shell outer distance (mm)", outer, inner)


@dataclass
class LesionMask:
    """A lesion: its mask in a box of the volume, how it was obtained, and how much to trust it.

    ``status`` is :data:`SEGMENTED` or :data:`NOT_SEPARABLE`; for a lesion that is not separable the
    mask is the 1 mL sphere at the click in which its local uptake was measured. ``flags`` are short
    machine-readable codes, ``notes`` the sentences a reader sees.
    """

    box: Box
    mask: np.ndarray
    peak: Tuple[int, int, int]
    suv_max: float
    threshold: float
    method: str
    background: Optional[float] = None
    notes: List[str] = field(default_factory=list)
    status: str = SEGMENTED
    flags: List[str] = field(default_factory=list)
    peak_shift_mm: float = 0.0
    contrast_to_noise: Optional[float] = None

    @property
    def voxels(self) -> int:
        return int(self.mask.sum())

    @property
    def separable(self) -> bool:
        return self.status == SEGMENTED

    def full(self, shape: Sequence[int]) -> np.ndarray:
        out = np.zeros(tuple(shape), dtype=bool)
        out[self.box] = self.mask
        return out

    def indices(self) -> np.ndarray:
        """(n, 3) absolute [z, y, x] indices of the lesion's voxels."""
        local = np.argwhere(self.mask)
        return local + np.array([s.start for s in self.box])


def _local(zyx: Sequence[int], box: Box) -> Tuple[int, int, int]:
    return tuple(int(p - s.start) for p, s in zip(zyx, box))  # type: ignore[return-value]


def _absolute(zyx: Sequence[int], box: Box) -> Tuple[int, int, int]:
    return tuple(int(p + s.start) for p, s in zip(zyx, box))  # type: ignore[return-value]


def _climb(image: np.ndarray, start: Tuple[int, int, int], allowed: np.ndarray) -> Tuple[Tuple[int, int, int], bool]:
    """Steepest ascent (26-neighbourhood) from ``start`` while inside ``allowed``.

    Returns (the maximum reached, whether the climb stayed inside ``allowed``).
    """
    here = start
    shape = image.shape
    for _ in range(int(sum(shape))):
        low = [max(c - 1, 0) for c in here]
        high = [min(c + 2, n) for c, n in zip(here, shape)]
        window = image[low[0]:high[0], low[1]:high[1], low[2]:high[2]]
        step = np.unravel_index(int(np.argmax(window)), window.shape)
        best = tuple(int(a + b) for a, b in zip(low, step))
        if image[best] <= image[here]:
            return here, True  # type: ignore[return-value]
        if not allowed[best]:
            return here, False  # type: ignore[return-value]
        here = best  # type: ignore[assignment]
    return here, True  # type: ignore[return-value]


def _component(region: np.ndarray, at: Tuple[int, ...]) -> np.ndarray:
    labels, _count = ndimage.label(region, structure=_FACES)
    label = labels[at]
    return labels == label if label else np.zeros_like(region)


def _sphere(shape: Sequence[int], center: Sequence[float], spacing: np.ndarray, radius_mm: float) -> np.ndarray:
    axes = [(np.arange(n) - c) * d for n, c, d in zip(shape, center, spacing)]
    z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
    return z * z + y * y + x * x <= radius_mm * radius_mm


def _shell(region: np.ndarray, spacing: np.ndarray, inner: float, outer: float) -> np.ndarray:
    """Voxels between ``inner`` and ``outer`` mm from ``region`` (computed in its padded bounding box)."""
    out = np.zeros_like(region)
    if not region.any():
        return out
    found = ndimage.find_objects(region.astype(np.uint8))[0]
    pad = np.ceil(outer / spacing).astype(int) + 1
    box = tuple(slice(max(b.start - p, 0), min(b.stop + p, n)) for b, p, n in zip(found, pad, region.shape))
    distance = ndimage.distance_transform_edt(~region[box], sampling=spacing)
    out[box] = (distance > inner) & (distance <= outer)
    return out


def _shell_median(values: np.ndarray, region: np.ndarray, spacing: np.ndarray, inner: float, outer: float,
                  exclude: np.ndarray) -> Optional[float]:
    """Median of the voxels between ``inner`` and ``outer`` mm from ``region``, outside ``exclude``."""
    shell = _shell(region, spacing, inner, outer) & ~exclude
    if shell.sum() < 10:
        return None
    return float(np.median(values[shell]))


def local_noise(means: np.ndarray, where: np.ndarray, spacing: np.ndarray) -> Optional[float]:
    """Noise SD of 1 mL local means over ``where``: 1.4826 x MAD of differences ``NOISE_LAG_MM``
    apart along each axis, / sqrt 2 (a difference-based estimator: edges between tissues are few
    pairs and do not move the median). None with fewer than 20 pairs."""
    differences = []
    for axis in range(3):
        lag = max(int(round(NOISE_LAG_MM / spacing[axis])), 1)
        if means.shape[axis] <= lag:
            continue
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis], b[axis] = slice(0, -lag), slice(lag, None)
        both = where[tuple(a)] & where[tuple(b)]
        differences.append((means[tuple(a)] - means[tuple(b)])[both])
    values = np.concatenate(differences) if differences else np.empty(0)
    if values.size < 20:
        return None
    return float(1.4826 * np.median(np.abs(values - np.median(values))) / math.sqrt(2.0))


#: A region that loses more than this share of its voxels to a morphological opening (one voxel)
#: is mostly threads that noise lifted above the threshold, not a lesion's body.
THREAD_SHARE = 0.4


def _untangle(values: np.ndarray, region: np.ndarray, peak: Tuple[int, ...], threshold: float, suv_max: float) -> float:
    """The lowest threshold (in steps of 2 % of the contrast above ``threshold``) at which the region
    is a body rather than threads: an opening with the 6-neighbour cross keeps at least
    1 - :data:`THREAD_SHARE` of it. Regions of fewer than 30 voxels are left alone (an opening would
    erase a small lesion whatever it is)."""
    step = 0.02 * max(suv_max - threshold, 0.0)
    current = threshold
    box = _crop(region, 1)
    region, values = region[box], values[box]
    peak = tuple(p - b.start for p, b in zip(peak, box))
    for _ in range(40):
        part = _component(region & (values >= current), peak)
        voxels = int(part.sum())
        if voxels < 30:
            return current
        opened = ndimage.binary_opening(part, structure=_FACES)
        if opened.sum() >= (1.0 - THREAD_SHARE) * voxels:
            return current
        current += step
        if current >= suv_max:
            return threshold
    return threshold


def voxel_noise(values: np.ndarray, means: np.ndarray, where: np.ndarray, correlation: float = 1.0) -> float:
    """Noise SD of single voxels over ``where``: 1.4826 x MAD of the voxels' departures from their
    1 mL local means (robust to the edges between tissues, which are few voxels), times the image's
    ``correlation`` factor (:func:`noise_correlation`): the smoother the noise, the more of it the
    local mean takes along. 0 with fewer than 20 voxels."""
    if int(where.sum()) < 20:
        return 0.0
    residual = (values[where] - means[where]).astype(np.float64)
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))) * correlation)


def noise_correlation(volume: SUVVolume) -> float:
    """How much of the voxel noise a 1 mL local mean keeps, as the factor (noise SD) / (SD of the
    departures from the local mean), measured once per image and cached: in 200 cubes of 36 mm
    inside the body, the noise SD from differences 12 mm apart (:func:`local_noise`, which spatial
    correlation does not bias) over the SD of departures; the median ratio of the most uniform
    quarter of the cubes. About 1.2 for uncorrelated noise on 4 mm voxels (a voxel is part of its own
    local mean), 2 or more for a post-filtered OSEM image (1.0 when it cannot be measured). Cached per
    volume (:func:`per_volume`)."""
    return per_volume(volume, "noise_correlation", _noise_correlation)


def _noise_correlation(volume: SUVVolume) -> float:
    factor = 1.0
    level = _body_level(volume)
    spacing = volume.spacing_zyx
    half = np.ceil(18.0 / spacing).astype(int)
    inside = np.argwhere(np.nan_to_num(volume.values[::4, ::4, ::4]) > level) * 4
    ratios = []
    if len(inside):
        for index in np.random.default_rng(1).permutation(len(inside))[:200]:
            centre = inside[index]
            box = tuple(slice(max(c - h, 0), c + h + 1) for c, h in zip(centre, half))
            cube = np.nan_to_num(volume.values[box]).astype(np.float32)
            if min(cube.shape) < 5:
                continue
            means = ndimage.gaussian_filter(cube, LOCAL_SIGMA_MM / spacing, mode="nearest")
            body = cube > 0.3 * level
            departure = voxel_noise(cube, means, body)
            lagged = local_noise(cube, body, spacing)
            if departure > 0 and lagged and body.sum() > 0.8 * body.size:
                spread = float(np.std(means[body]) / max(np.median(means[body]), 1e-6))
                ratios.append((spread, lagged / departure))
    if len(ratios) >= 20:
        # the most uniform quarter of the cubes: across the edges of organs the lagged differences
        # also measure anatomy, not noise
        ratios.sort()
        uniform = [ratio for _spread, ratio in ratios[:max(len(ratios) // 4, 5)]]
        factor = float(min(max(np.median(uniform), 1.0), 4.0))
    return factor


def _markers(relief: np.ndarray, region: np.ndarray, peak: Tuple[int, ...], depth: float,
             others: Sequence[Tuple[int, ...]]) -> np.ndarray:
    """Marker image: 1 at the lesion peak, 2 at every other significant maximum or other seed."""
    image = sitk.GetImageFromArray(np.where(region, relief, relief.min()).astype(np.float32))
    hmax = sitk.GetArrayFromImage(sitk.RegionalMaxima(sitk.HMaxima(image, float(depth)), 0, 1, True)) > 0
    components, count = ndimage.label(hmax & region, structure=_CUBE)
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


def _crop(region: np.ndarray, pad: int = 2) -> Box:
    """The bounding box of ``region`` grown by ``pad`` voxels (clipped to the array)."""
    found = ndimage.find_objects(region.astype(np.uint8))
    if not found or found[0] is None:
        return tuple(slice(0, n) for n in region.shape)  # type: ignore[return-value]
    return tuple(slice(max(b.start - pad, 0), min(b.stop + pad, n)) for b, n in zip(found[0], region.shape))  # type: ignore[return-value]


def _split(values: np.ndarray, region: np.ndarray, peak: Tuple[int, ...], depth: float,
           others: Sequence[Tuple[int, ...]], means: Optional[np.ndarray] = None) -> np.ndarray:
    """The part of ``region`` in the watershed basin of ``peak`` (other maxima compete); computed in
    the region's bounding box. Competing maxima are found on the 1 mL local ``means`` when given."""
    box = _crop(region)
    local_peak = tuple(p - b.start for p, b in zip(peak, box))
    local_others = [tuple(o - b.start for o, b in zip(other, box)) for other in others
                    if all(b.start <= o < b.stop for o, b in zip(other, box))]
    out = np.zeros_like(region)
    out[box] = _split_local(values[box], region[box], local_peak, depth, local_others,
                            means[box] if means is not None else None)
    return out


def _split_local(values: np.ndarray, region: np.ndarray, peak: Tuple[int, ...], depth: float,
                 others: Sequence[Tuple[int, ...]], means: Optional[np.ndarray] = None) -> np.ndarray:
    relief = ndimage.gaussian_filter(values.astype(np.float32), 0.8)
    # a competing structure (a neighbouring lesion, a kidney) stands out on the 1 mL means as well;
    # hot spots of noise on one lesion (the rim of a necrotic one) do not: the watershed still runs on
    # the lightly smoothed image, which places the cut
    markers = _markers(relief if means is None else means.astype(np.float32), region, peak, depth, others)
    if not np.any(markers == 2):
        return region
    floor = float(relief[region].min()) if region.any() else 0.0
    # watershed floods from the markers over the inverted image; outside the region is a wall
    terrain = np.where(region, -relief, -floor + 1.0).astype(np.float32)
    basins = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(
        sitk.GetImageFromArray(terrain), sitk.GetImageFromArray(markers), markWatershedLine=False, fullyConnected=False))
    return _component(region & (basins == 1), peak)


def _gradient_region(values: np.ndarray, inside: np.ndarray, peak: Tuple[int, ...], suv_max: float,
                     background: float) -> np.ndarray:
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


def adaptive_fraction(volume_ml: float, sigma_mm: Optional[float] = None, cold_walls: bool = False) -> float:
    """The calibrated fraction of the ``adaptive`` method (:data:`ADAPTIVE_CALIBRATION`, or
    :data:`ADAPTIVE_CALIBRATION_COLD_WALLS` for phantom spheres in cold walls) for a lesion of
    ``volume_ml`` in an image of resolution ``sigma_mm`` (the mean of the two calibrated resolutions
    when unknown). Constant outside the calibrated volumes: below the smallest sphere
    the curve is not continued, since an ever higher fraction would make any core of a few voxels a
    consistent answer."""
    x = math.log(max(volume_ml, 1e-3))
    table = ADAPTIVE_CALIBRATION_COLD_WALLS if cold_walls else ADAPTIVE_CALIBRATION
    (low, low_curve), (high, high_curve) = sorted(table.items())
    at_low = float(np.interp(x, np.log([v for v, _ in low_curve]), [f for _, f in low_curve]))
    at_high = float(np.interp(x, np.log([v for v, _ in high_curve]), [f for _, f in high_curve]))
    if sigma_mm is None:
        return 0.5 * (at_low + at_high)
    weight = min(max((sigma_mm - low) / (high - low), 0.0), 1.0)
    return (1.0 - weight) * at_low + weight * at_high


def _blurred_ball(r: np.ndarray, amplitude: float, radius: float, sigma: float, background: float) -> np.ndarray:
    """A uniform ball of ``radius`` (mm) blurred by a Gaussian of ``sigma`` (mm), at distance ``r``."""
    from scipy.special import erf

    r = np.maximum(r, 1e-6)
    root = math.sqrt(2.0) * sigma
    shape = 0.5 * (erf((radius - r) / root) + erf((radius + r) / root)) - sigma / (r * math.sqrt(2.0 * math.pi)) * (
        np.exp(-((r - radius) ** 2) / (2.0 * sigma * sigma)) - np.exp(-((r + radius) ** 2) / (2.0 * sigma * sigma)))
    return background + (amplitude - background) * shape


def _radial_profile(values: np.ndarray, region: np.ndarray, spacing: np.ndarray, threshold: float):
    """(radii mm, mean values, counts, the region's equivalent radius, top, floor): the mean values in
    1 mm shells around the region's intensity centroid, out to its radius + 20 mm, leaving out other
    structures above the threshold, their highest and the median of the outer five (the floor); None
    with fewer than 6 shells or no contrast (top not above the floor)."""
    voxels = int(region.sum())
    if voxels < 4:
        return None
    centre = np.array(ndimage.center_of_mass(np.where(region, values, 0.0)))
    radius0 = (voxels * float(np.prod(spacing)) * 3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    axes = [(np.arange(n) - c) * d for n, c, d in zip(values.shape, centre, spacing)]
    z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
    distance = np.sqrt(z * z + y * y + x * x)
    usable = (distance <= radius0 + 20.0) & ~((values >= threshold) & ~region)
    bins = np.floor(distance[usable]).astype(int)
    counts = np.bincount(bins)
    sums = np.bincount(bins, weights=values[usable].astype(np.float64))
    keep = counts > 0
    if keep.sum() < 6:
        return None
    means = sums[keep] / counts[keep]
    top, floor = float(means.max()), float(np.median(means[-5:]))
    if top <= floor:
        return None
    return np.arange(counts.size)[keep] + 0.5, means, counts[keep], radius0, top, floor


def ball_radius(values: np.ndarray, region: np.ndarray, spacing: np.ndarray, threshold: float,
                sigma: float) -> Optional[float]:
    """The radius (mm) of the uniform ball that, blurred by the image's resolution ``sigma`` (mm),
    best fits the lesion's radial profile (least squares, weighted by voxel counts; amplitude, radius
    and background free). None when the fit fails."""
    from scipy.optimize import curve_fit

    profile = _radial_profile(values, region, spacing, threshold)
    if profile is None:
        return None
    radii, means, counts, radius0, top, floor = profile
    try:
        (_amplitude, radius, _background), _ = curve_fit(
            lambda r, a, rad, b: _blurred_ball(r, a, rad, sigma, b), radii, means, p0=[top, radius0, floor],
            sigma=1.0 / np.sqrt(counts), bounds=([floor, 0.5, floor - abs(floor) - 1.0],
                                                 [floor + 4.0 * (top - floor), 100.0, top]), maxfev=2000)
    except (RuntimeError, ValueError):
        return None
    return float(radius)


def edge_sigma(values: np.ndarray, region: np.ndarray, spacing: np.ndarray, threshold: float) -> Optional[float]:
    """The image's resolution at a lesion: the Gaussian width (mm) of a blurred uniform ball fitted
    (least squares, weighted by voxel counts) to the lesion's radial profile around its centroid,
    leaving out other structures above the threshold. None when the fit fails or is implausible
    (sigma outside 0.7-12 mm, or the ball smaller than half its blur, where size and blur cannot be
    told apart)."""
    from scipy.optimize import curve_fit

    found = _radial_profile(values, region, spacing, threshold)
    if found is None:
        return None
    radii, profile, counts, radius0, top, floor = found
    # a lesion's true uptake is at most 4 x its blurred contrast (recovery of SUVmax >= 0.25, the
    # lowest of EARL's bands, for 10 mm spheres): without this bound a small lesion's fit slides
    # to an ever smaller, hotter ball, where size and blur cannot be told apart
    try:
        (amplitude, radius, sigma, background), _ = curve_fit(
            _blurred_ball, radii, profile, p0=[top, radius0, 3.0, floor], sigma=1.0 / np.sqrt(counts),
            bounds=([floor, 0.5, 0.5, floor - abs(floor) - 1.0], [floor + 4.0 * (top - floor), 100.0, 20.0, top]),
            maxfev=2000)
    except (RuntimeError, ValueError):
        return None
    if not (0.7 <= sigma <= 12.0) or radius < 0.5 * sigma or amplitude <= background:
        return None
    return float(sigma)


def _adaptive_region(values: np.ndarray, means: np.ndarray, allowed: np.ndarray, peak: Tuple[int, ...],
                     background: float, fraction: Optional[float], spacing: np.ndarray,
                     image_sigma: Optional[float] = None, correlation: float = 1.0,
                     trace: Optional[dict] = None, cold_walls: bool = False) -> Tuple[np.ndarray, float]:
    """The ``adaptive`` method: threshold = background + f x (SUVpeak - background), SUVpeak the
    highest 1 mL local mean of the region, f the calibrated fraction (:func:`adaptive_fraction`) for
    the lesion's size at the image's resolution; or a fixed ``fraction`` when one is given.

    1. A first look: the threshold is lowered from SUVmax in steps of 2 % of the contrast until it
       first falls to the fraction (for an unknown resolution) of the region it delimits.
    2. The lesion's size: the blurred ball of the image's resolution (``image_sigma``, from the body
       outline; else fitted to the lesion itself) that fits the first region's radial profile.
    3. The threshold: the calibrated fraction for that size and resolution. Volume and fraction depend
       on each other, and a blurred ball's core looks like a smaller ball, so a search for a
       "consistent" threshold has many answers; the fitted size gives one.

    Never below the background's noise floor (3 noise SD) and, for lesions far smaller than the 1 mL
    SUVpeak sphere, never below half of SUVmax over the background. SUVpeak rather than SUVmax: the
    maximum voxel carries the noise and the edge overshoot of resolution-modelled reconstructions,
    SUVpeak much less of both. ``trace`` (a dict) receives the intermediate values, for calibration.
    ``cold_walls``: the calibration of phantom spheres in cold walls (:data:`ADAPTIVE_CALIBRATION_COLD_WALLS`).
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    suv_max = float(values[peak])
    level = float(means[peak])
    if fraction is not None:
        threshold = min(background + fraction * (level - background), suv_max)
        return _component(allowed & (values >= threshold), peak), float(threshold)
    if level <= background:
        return np.zeros_like(allowed), suv_max
    # never below the background's own noise: a threshold within 3 noise SD of the background lets the
    # region wander through background voxels that noise lifted above it (even at 3 SD, 0.13 % of them)
    near = _sphere(values.shape, peak, spacing, 30.0) & (values < background + 0.3 * (level - background)) & (values > 0)
    noise = voxel_noise(values, means, near, correlation)
    floor = background + 3.0 * noise
    lowest = _component(allowed & (values >= max(background + 0.2 * (level - background), floor)), peak)
    found = ndimage.find_objects(lowest.astype(np.uint8))
    box = found[0] if found and found[0] is not None else tuple(slice(0, n) for n in values.shape)
    local_values, local_allowed = values[box], lowest[box]
    local_means = means[box]
    local_peak = tuple(p - s.start for p, s in zip(peak, box))
    # a first look with the calibration of an unknown resolution
    chosen = _sweep(local_values, local_means, local_allowed, local_peak, background, level, suv_max, voxel_ml, None,
                    floor, cold_walls)
    sigma = image_sigma
    if chosen is not None and sigma is None:
        sigma = edge_sigma(local_values, chosen[1], spacing, chosen[0])  # no body outline: the lesion's own profile
    if chosen is not None and sigma is not None:
        # the lesion's size from its radial profile (a blurred ball of the image's resolution), and the
        # threshold calibrated for that size at that resolution: one step, no search among the many
        # thresholds whose region is "consistent" with the curve (a blurred ball's core looks like a
        # smaller ball)
        radius = ball_radius(local_values, chosen[1], spacing, chosen[0], sigma)
        if radius is not None:
            size_ml = 4.0 / 3.0 * math.pi * radius ** 3 / 1000.0
            top = max(float(np.max(local_means[chosen[1]])), level)
            if trace is not None:
                trace.update(size_ml=size_ml, top=top, sigma=sigma, floor=floor, box=box, allowed=local_allowed,
                             peak=local_peak)
            threshold = max(background + adaptive_fraction(size_ml, sigma, cold_walls) * (top - background), floor)
            if threshold < suv_max:
                chosen = (threshold, _component(local_allowed & (local_values >= threshold), local_peak))
    if chosen is None:
        threshold = max(background + 0.2 * (level - background), floor)
        chosen = (threshold, local_allowed)
    # lesions far smaller than the 1 mL SUVpeak sphere: their SUVpeak falls with partial volume faster
    # than their edge does, and a fraction of it lets them swell to the size of the blur; a lesion whose
    # half-SUVmax region is tiny keeps the threshold at least there (:data:`SMALL_REGION_ML`)
    half = background + 0.5 * (suv_max - background)
    if half > chosen[0]:
        half_ml = int(_component(local_allowed & (local_values >= half), local_peak).sum()) * voxel_ml
        full, none = SMALL_REGION_ML
        share = 0.5 * min(1.0, max(0.0, (none - half_ml) / (none - full)))
        raised = background + share * (suv_max - background)
        if raised > chosen[0]:
            chosen = (raised, _component(local_allowed & (local_values >= raised), local_peak))
    out = np.zeros_like(allowed)
    out[box] = chosen[1]
    return out, float(chosen[0])


def _sweep(values: np.ndarray, means: np.ndarray, allowed: np.ndarray, peak: Tuple[int, ...], background: float,
           level: float, suv_max: float, voxel_ml: float, sigma: Optional[float], floor: float,
           cold_walls: bool = False):
    """Lower the threshold from SUVmax in steps of 2 % of the contrast until it first falls to the
    calibrated fraction of the region it delimits, or reaches the noise ``floor``; (threshold,
    region), or None when the region never rose above the calibration."""
    crossed = False
    start = (suv_max - background) / (level - background)
    for share in np.arange(start - 0.02, 0.199, -0.02):
        threshold = background + share * (level - background)
        if threshold < floor:
            return (floor, _component(allowed & (values >= floor), peak)) if crossed else None
        region = _component(allowed & (values >= threshold), peak)
        voxels = int(region.sum())
        top = max(float(np.max(means[region])), level) if voxels else level
        needed = adaptive_fraction(voxels * voxel_ml, sigma, cold_walls)
        # the threshold as a share of the region's own SUVpeak contrast; the solution is where it
        # first falls from above the calibrated fraction to it (a core of a few voxels at the top can
        # be "consistent" by the curve's extrapolation: that is not a crossing)
        above = (threshold - background) > needed * (top - background)
        if above:
            crossed = True
        elif crossed:
            return threshold, region
    return None


def _threshold(method: str, suv_max: float, f: float, liver: Optional[ReferenceStats], options: SegmentOptions) -> float:
    """The threshold of the fixed-fraction, absolute and liver methods (the adaptive and gradient
    methods find theirs from the image: :func:`_adaptive_region`, :func:`_gradient_region`)."""
    if method in ("fixed41", "fixed50"):
        return f * suv_max
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
    near = _sphere(values.shape, peak, spacing, 20.0)
    far = inside & ~near & (values > 0.02 * suv_max)
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


def _ras_text(volume: SUVVolume, zyx: Sequence[float]) -> str:
    return ",".join(f"{v:.1f}" for v in volume.index_to_ras(zyx))


@dataclass
class _Frame:
    """The working box around a click: values, 1 mL local means, geometry."""

    box: Box
    values: np.ndarray
    means: np.ndarray
    smooth: np.ndarray
    spacing: np.ndarray
    sigma: Optional[float] = None  # the image's resolution (Gaussian width, mm) from its body outline
    correlation: float = 1.0  # the image's noise correlation factor (noise_correlation)


def _frame(volume: SUVVolume, center: Sequence[int], radius_mm: float) -> _Frame:
    box = volume.box_around(center, radius_mm)
    values = volume.values[box]
    finite = np.isfinite(values)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise QuantError(f"{volume.name} holds {int((~finite).sum())} non-finite (NaN or infinite) voxels within "
                         f"{radius_mm:.0f} mm of the click, the first at R,A,S {_ras_text(volume, _absolute(bad, box))}; "
                         "the image is damaged: convert the PET again or repair it before segmenting.")
    spacing = volume.spacing_zyx
    values32 = values.astype(np.float32, copy=False)
    means = ndimage.gaussian_filter(values32, LOCAL_SIGMA_MM / spacing, mode="nearest")
    # light smoothing (0.7 of the finest voxel) for the climb: single noisy voxels do not stop it
    smooth = ndimage.gaussian_filter(values32, 0.7 * float(spacing.min()) / spacing, mode="nearest")
    return _Frame(box, values, means, smooth, spacing, outline_sigma(volume), noise_correlation(volume))


def outline_sigma(volume: SUVVolume) -> Optional[float]:
    """The image's resolution as a Gaussian width (mm), measured on the body's outline, cached.

    The edge between the body (or a phantom) and the air around it is the one sharp step every PET
    image has. Profiles across it, along the outward normal at up to 3000 outline voxels, are
    normalised to their inside and outside levels; their median is fitted with a blurred step
    (0.5 erfc((s - s0) / (sqrt 2 sigma))). None when the image shows no outline (an image cropped to
    the body) or the fit fails. It serves as the resolution of a lesion whose own profile cannot be
    fitted (:func:`edge_sigma`): the blur of the body's edge is the reconstruction's, though near
    the edge of the field of view resolution is somewhat worse than at its centre. Cached per volume
    (:func:`per_volume`).
    """
    return per_volume(volume, "outline_sigma", _outline_sigma)


def _outline_sigma(volume: SUVVolume) -> Optional[float]:
    from scipy.optimize import curve_fit
    from scipy.special import erfc

    values = volume.values
    level = _body_level(volume)
    if level <= 0:
        return None
    # the outline and its normals on every second voxel (fast on a whole body); profiles at full resolution
    coarse = np.nan_to_num(values[::2, ::2, ::2]).astype(np.float32)
    spacing = volume.spacing_zyx
    body = coarse > 0.3 * level
    labels, count = ndimage.label(body)
    if not count:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = ndimage.binary_fill_holes(labels == int(np.argmax(sizes)))
    outline = body & ~ndimage.binary_erosion(body)
    # the outline inside the image, away from its borders (a body cut by the field of view has no air there)
    margin = np.zeros_like(outline)
    reach = np.ceil(15.0 / (2.0 * spacing)).astype(int) + 1
    margin[reach[0]:-reach[0] or None, reach[1]:-reach[1] or None, reach[2]:-reach[2] or None] = True
    points = np.argwhere(outline & margin)
    if len(points) < 50:
        return None
    points = points[np.random.default_rng(0).permutation(len(points))[:3000]]
    smooth = ndimage.gaussian_filter(coarse, 1.0)
    normals = -np.stack([ndimage.sobel(smooth, axis=a)[points[:, 0], points[:, 1], points[:, 2]] / (2.0 * spacing[a])
                         for a in range(3)], axis=1)
    points = points * 2
    length = np.linalg.norm(normals, axis=1)
    keep = length > 0
    points, normals = points[keep], normals[keep] / length[keep, None]
    offsets = np.arange(-15.0, 15.5, 1.0)
    coordinates = points[:, None, :] + offsets[None, :, None] * normals[:, None, :] / spacing[None, None, :]
    # cubic-spline sampling: linear interpolation between voxels would blur the edge itself (by up
    # to 23 % in sigma for a 2 mm blur on 4 mm voxels), and by an amount that depends on the voxel size
    spline = ndimage.spline_filter(np.nan_to_num(values).astype(np.float32), order=3, output=np.float32,
                                   mode="nearest")
    samples = ndimage.map_coordinates(spline, coordinates.reshape(-1, 3).T, order=3, mode="nearest",
                                      prefilter=False).reshape(len(points), -1)
    inside = samples[:, offsets <= -8.0].mean(axis=1)
    outside = samples[:, offsets >= 8.0].mean(axis=1)
    step = inside - outside
    good = step > 0.5 * level * 0.3
    if good.sum() < 50:
        return None
    normalised = (samples[good] - outside[good, None]) / step[good, None]
    # align the profiles at their half-way crossing (outline voxels lie up to a voxel off the edge)
    grid = np.arange(-10.0, 10.5, 1.0)
    aligned = []
    for row in normalised:
        below = np.flatnonzero(row < 0.5)
        if not below.size or below[0] == 0:
            continue
        k = int(below[0])
        half = offsets[k - 1] + (row[k - 1] - 0.5) / (row[k - 1] - row[k]) * (offsets[k] - offsets[k - 1])
        aligned.append(np.interp(grid + half, offsets, row))
    if len(aligned) < 50:
        return None
    offsets = grid
    profile = np.median(np.array(aligned), axis=0)
    try:
        (centre, sigma), _ = curve_fit(lambda s, s0, w: 0.5 * erfc((s - s0) / (math.sqrt(2.0) * w)), offsets, profile,
                                       p0=[0.0, 3.0], bounds=([-10.0, 0.3], [10.0, 15.0]))
    except (RuntimeError, ValueError):
        return None
    return float(sigma) if 0.7 <= sigma <= 12.0 else None


def find_peak(volume: SUVVolume, seed_ras: Sequence[float], search_radius_mm: float = 20.0
              ) -> Tuple[Tuple[int, int, int], float, bool]:
    """The lesion's peak from a click: (voxel [z, y, x], distance moved in mm, found).

    Climbs from the click to the nearest local maximum of a lightly smoothed copy, then to the
    hottest voxel next to it. ``found`` is False when the climb would leave the search sphere
    (uptake keeps rising away from the click: no focal maximum there); the peak is then the last
    voxel inside it.
    """
    seed = volume.voxel_of(seed_ras, "seed")
    frame = _frame(volume, seed, search_radius_mm + 2.0 * float(volume.spacing_zyx.max()))
    return _peak_in(frame, _local(seed, frame.box), search_radius_mm, volume)


def _peak_in(frame: _Frame, seed: Tuple[int, int, int], radius_mm: float, volume: SUVVolume
             ) -> Tuple[Tuple[int, int, int], float, bool]:
    allowed = _sphere(frame.values.shape, seed, frame.spacing, max(radius_mm, 0.51 * float(frame.spacing.max())))
    top, found = _climb(frame.smooth, seed, allowed)
    # the hottest original voxel next to the smoothed maximum is the lesion's SUVmax voxel
    low = [max(c - 1, 0) for c in top]
    high = [min(c + 2, n) for c, n in zip(top, frame.values.shape)]
    window = np.where(allowed[low[0]:high[0], low[1]:high[1], low[2]:high[2]],
                      frame.values[low[0]:high[0], low[1]:high[1], low[2]:high[2]], -np.inf)
    step = np.unravel_index(int(np.argmax(window)), window.shape)
    peak = tuple(int(a + b) for a, b in zip(low, step))
    moved = float(np.linalg.norm((np.subtract(peak, seed)) * frame.spacing))
    return _absolute(peak, frame.box), moved, found


def _body_level(volume: SUVVolume) -> float:
    """Typical uptake of the body (median of voxels above 2 % of the 99.9th percentile), cached per volume."""
    return per_volume(volume, "body_level", _measure_body_level)


def _measure_body_level(volume: SUVVolume) -> float:
    sample = volume.values[::2, ::2, ::2]
    sample = sample[np.isfinite(sample)]
    top = float(np.percentile(sample, 99.9)) if sample.size else 0.0
    body = sample[sample > 0.02 * top]
    return float(np.median(body)) if body.size else 0.0


#: the attribute of an SUVVolume that holds its per-volume quantities: (fingerprint, {name: value})
_PER_VOLUME = "_netpet_per_volume"


def volume_fingerprint(volume: SUVVolume) -> tuple:
    """What the per-volume quantities of ``volume`` depend on: the shape, type and CRC-32 of its values
    and its voxel spacing. A change of any voxel (in place or by a new array) changes it, except with the
    chance of a CRC-32 collision (2^-32). About 5 ms for a whole-body PET of 6 million voxels."""
    values = volume.values
    data = values if values.flags.c_contiguous else np.ascontiguousarray(values)
    return (values.shape, values.dtype.str, tuple(float(v) for v in volume.spacing),
            zlib.crc32(memoryview(data).cast("B")) if data.size else 0)


#: per thread: (volume, fingerprint) while one call works on a volume that does not change meanwhile
_HELD = threading.local()


@contextlib.contextmanager
def _fingerprinted(volume: SUVVolume):
    """Within one call (a segmentation) the volume does not change: its fingerprint is taken once."""
    outer = getattr(_HELD, "value", None)
    if outer is not None and outer[0] is volume:
        yield
        return
    _HELD.value = (volume, volume_fingerprint(volume))
    try:
        yield
    finally:
        _HELD.value = outer


def per_volume(volume: SUVVolume, name: str, compute):
    """The per-volume quantity ``name`` of ``volume`` (``compute(volume)``), measured once and kept on the
    volume object with the fingerprint of the content it was measured on (:func:`volume_fingerprint`).
    When the values or the spacing change, every kept quantity is measured again, so a result is the
    same with or without the cache. Safe to call from a worker thread (two threads may both measure)."""
    held = getattr(_HELD, "value", None)
    fingerprint = held[1] if held is not None and held[0] is volume else volume_fingerprint(volume)
    kept = volume.__dict__.get(_PER_VOLUME)
    if kept is None or kept[0] != fingerprint:
        kept = (fingerprint, {})
        object.__setattr__(volume, _PER_VOLUME, kept)
    store = kept[1]
    if name not in store:
        store[name] = compute(volume)
    return store[name]


def warm_up(volume: SUVVolume) -> None:
    """Measure the per-volume quantities a click needs (body level, outline sigma, noise correlation) now,
    so that the first click on the volume costs what later ones do."""
    with _fingerprinted(volume):
        _body_level(volume)
        outline_sigma(volume)
        noise_correlation(volume)


def segment(volume: SUVVolume, seed_ras: Sequence[float], options: Optional[SegmentOptions] = None,
            liver: Optional[ReferenceStats] = None, others_ras: Sequence[Sequence[float]] = (),
            background: Optional[float] = None) -> LesionMask:
    """Segment the lesion at a seed point, or say that it is not separable (see module docstring).

    Parameters
    ----------
    volume : SUVVolume
    seed_ras : (R, A, S) mm, a point on or near the lesion
    options : SegmentOptions
    liver : ReferenceStats, optional
        Needed by the ``liver-percist`` and ``liver-max`` methods.
    others_ras : points of other lesions or structures the lesion must be separated from
        (other seeds, or a second click in a neighbouring hot structure)
    background : float, optional
        A background SUV (a reader-placed normal-tissue reference) to use instead of the local
        shell estimate (adaptive and gradient methods).

    Returns
    -------
    LesionMask
        ``status`` :data:`SEGMENTED`, or :data:`NOT_SEPARABLE` with the 1 mL sphere at the click.

    Raises
    ------
    QuantError
        Degenerate options, a seed that is not a finite point inside the image, a click outside the
        body (air), non-finite voxels near the click, or a liver method without the liver reference.
    """
    with _fingerprinted(volume):
        return _segment(volume, seed_ras, options, liver, others_ras, background)


def _segment(volume: SUVVolume, seed_ras: Sequence[float], options: Optional[SegmentOptions],
             liver: Optional[ReferenceStats], others_ras: Sequence[Sequence[float]], background: Optional[float]
             ) -> LesionMask:
    options = options or SegmentOptions()
    options.validate()
    if len(seed_ras) != 3 or not all(math.isfinite(float(v)) for v in seed_ras):
        raise QuantError(f"The seed {tuple(seed_ras)} is not a point R,A,S of three finite numbers (mm).")
    if background is not None and not (math.isfinite(background) and background >= 0):
        raise QuantError(f"The background SUV {background!r} must be a finite number of at least 0.")
    method = options.method
    if method.startswith("liver") and liver is None:
        _threshold(method, 1.0, 0.5, None, options)  # raises the one-sentence error
    seed = volume.voxel_of(seed_ras, "seed")
    spacing = volume.spacing_zyx
    reach = options.max_radius_mm + options.shell_mm[1] + 2.0 * float(spacing.max())
    frame = _frame(volume, seed, max(reach, options.search_radius_mm + 2.0 * float(spacing.max())))
    local_seed = _local(seed, frame.box)
    level = _body_level(volume)
    near_seed = _sphere(frame.values.shape, local_seed, spacing, 5.0)
    if level > 0 and float(frame.values[near_seed].max()) < 0.1 * level:
        raise QuantError(f"The seed R,A,S {_ras_text(volume, seed)} lies outside the body (the SUV within 5 mm is at "
                         f"most {float(frame.values[near_seed].max()):.3f}, under a tenth of the body's "
                         f"{level:.2f}); click on the lesion.")
    peak, moved, found = _peak_in(frame, local_seed, options.search_radius_mm, volume)
    peak_local = _local(peak, frame.box)
    others = _other_peaks(volume, frame, others_ras, options, peak)
    result = _grow(frame, peak_local, local_seed, options, liver, others, background) if found else None
    if not isinstance(result, LesionMask):
        # a second look on the 1 mL local means: a click on a noise bump at a lesion's flank
        allowed = _sphere(frame.values.shape, local_seed, spacing, options.search_radius_mm)
        top, found_smooth = _climb(frame.means, local_seed, allowed)
        if found_smooth and np.linalg.norm(np.subtract(top, peak_local) * spacing) > 1.5 * float(spacing.max()):
            low = [max(c - 1, 0) for c in top]
            window = frame.values[low[0]:top[0] + 2, low[1]:top[1] + 2, low[2]:top[2] + 2]
            step = np.unravel_index(int(np.argmax(window)), window.shape)
            second = tuple(int(a + b) for a, b in zip(low, step))
            retry = _grow(frame, second, local_seed, options, liver, others, background)
            if isinstance(retry, LesionMask):
                result, peak_local = retry, second
                moved = float(np.linalg.norm(np.subtract(second, local_seed) * spacing))
    if not isinstance(result, LesionMask):
        if result is None:
            result = ("no-focal-maximum", f"uptake keeps rising beyond {options.search_radius_mm:.0f} mm from the click: "
                      "no focal maximum there (click on the lesion's centre, or raise the search radius)")
        return _not_separable(volume, frame, local_seed, options, method, *result)
    if moved > 1.01 * float(spacing.max()):
        result.peak_shift_mm = moved
        result.flags.append("peak-moved")
        result.notes.append(f"the peak lies {moved:.1f} mm from the click, at R,A,S "
                            f"{_ras_text(volume, _absolute(peak_local, frame.box))}")
    return result


def _other_peaks(volume: SUVVolume, frame: _Frame, others_ras: Sequence[Sequence[float]], options: SegmentOptions,
                 peak: Tuple[int, int, int]) -> List[Tuple[int, int, int]]:
    """Peaks of the competing points, in the frame's coordinates (those inside it)."""
    others = []
    for point in others_ras:
        if not volume.contains_index(volume.ras_to_index(point)):
            continue  # a competing point outside the image separates nothing
        other, _moved, _found = find_peak(volume, point, options.search_radius_mm)
        if other == peak:
            raise QuantError(f"Two seeds lead to the same lesion maximum at R,A,S {_ras_text(volume, peak)}; "
                             "give one seed per lesion.")
        local = _local(other, frame.box)
        if all(0 <= c < n for c, n in zip(local, frame.values.shape)):
            others.append(local)
    return others


def _grow(frame: _Frame, peak: Tuple[int, int, int], click: Tuple[int, int, int], options: SegmentOptions,
          liver: Optional[ReferenceStats], others: Sequence[Tuple[int, int, int]],
          background: Optional[float]):
    """The region of the lesion at ``peak`` (frame coordinates) if it passes the separability tests,
    else (flag, reason)."""
    values, spacing = frame.values, frame.spacing
    method = options.method
    suv_max = float(values[peak])
    inside = _sphere(values.shape, peak, spacing, options.max_radius_mm)
    f = options.effective_fraction()
    bg = background
    notes: List[str] = []
    flags: List[str] = []
    if method in ("adaptive", "gradient") and bg is None:
        bg = _local_background(values, inside, peak, suv_max, f, spacing, options.shell_mm)
        # a lesion inside an organ, bowel or bone stands on that tissue's uptake, not on the tissue
        # beyond it that the shell also reaches: the saddle towards what extends past EMBEDDING_MM
        # (a lesion larger than that would take its own rim for its background: said by the flag)
        standing = _saddle(frame.means, peak, spacing, EMBEDDING_MM)
        level = float(frame.means[peak])
        calm = inside & (frame.means < bg + 0.3 * (level - bg)) & (values > 0)
        wobble = 2.0 * (local_noise(frame.means, calm, spacing) or 0.0)
        standing -= wobble  # in noisy tissue the saddle is the highest path noise opens, ~2 noise SD up
        if bg < standing < level - 1.5 * wobble:
            notes.append(f"background taken from the uptake the lesion sits in (SUV {standing:.2f}) rather than from "
                         f"the tissue around it (SUV {bg:.2f})")
            flags.append("embedded")
            bg = standing
    if method == "gradient":
        region = _gradient_region(values, inside, peak, suv_max, bg)
        threshold = float(values[region].min()) if region.any() else suv_max
    elif method == "adaptive":
        trace: dict = {}
        region, threshold = _adaptive_region(values, frame.means, inside, peak, bg, options.fraction, spacing,
                                             frame.sigma, frame.correlation, trace, options.cold_walls)
        if options.cold_walls and options.fraction is None:
            notes.append("measured with the calibration for phantom spheres inside cold walls (cold_walls, "
                         "--cold-walls): a lesion, which has no wall, reads too large with it")
            flags.append("cold-walls")
        raised = _untangle(values, region, peak, threshold, suv_max)
        if raised > threshold:
            notes.append(f"threshold raised from {threshold:.2f} to {raised:.2f}: the region ran out into the "
                         "surroundings through threads of noise")
            flags.append("noise-leak")
            threshold = raised
            region = _component(region & (values >= threshold), peak)
        if options.fraction is None and 0 < region.sum() * float(np.prod(spacing)) / 1000.0 < SMALL_LESION_ML:
            # a lesion of about the blur's size: its edge is where the image changes fastest; when the
            # calibrated threshold reaches beyond that edge, the edge wins (partial volume swells a
            # thresholded small lesion; the gradient's watershed does not)
            edge = _gradient_region(values, inside, peak, suv_max, bg)
            if 0 < edge.sum() < region.sum():
                notes.append(f"small lesion: delimited at its steepest edge ({int(edge.sum())} voxels) rather than at "
                             f"the calibrated threshold ({int(region.sum())} voxels)")
                flags.append("edge")
                region = edge
                threshold = float(values[region].min())
    else:
        threshold = _threshold(method, suv_max, f, liver, options)
        region = _component(inside & (values >= threshold), peak) if threshold < suv_max else np.zeros_like(inside)
    if not region.any():
        return "below-threshold", f"no voxel above the {method} threshold (SUV {threshold:.2f}) at the peak (SUV {suv_max:.2f})"
    if options.split and method != "gradient":
        # a competing maximum must stand out by a share of the lesion's contrast over the threshold
        # (or of SUVmax): noise bumps inside one lesion do not, a neighbouring kidney or lesion does
        depth = max(options.split_depth[0] * (suv_max - threshold), options.split_depth[1] * suv_max)
        split = _split(values, region, peak, depth, others, frame.means)
        if split.sum() < region.sum():
            notes.append(f"separated from {int(region.sum() - split.sum())} voxels of a neighbouring maximum")
            flags.append("split")
        region = split
    if method != "gradient":
        # a lesion on a plateau of uptake (marrow, liver, an organ) would take the plateau with it
        for _ in range(3):
            plateau = _plateau(values, frame.means, region, threshold)
            if plateau is None:
                break
            if method == "adaptive":
                raised = _adaptive_region(values, frame.means, region, peak, plateau, options.fraction, spacing,
                                          frame.sigma, frame.correlation)[1]
            else:
                raised = max(threshold, plateau + f * (suv_max - plateau)) if method != "absolute" else max(threshold, plateau)
            if raised >= suv_max or raised <= threshold:
                break
            kept = _component(region & (values >= raised), peak)
            if not _reaches(kept, click, spacing) and _reaches(region, click, spacing):
                break  # the raise would lose the structure the reader clicked: it was the lesion, not a plateau
            notes.append(f"set apart from surrounding uptake at SUV {plateau:.2f} (threshold raised from {threshold:.2f} to "
                         f"{raised:.2f})")
            if "plateau" not in flags:
                flags.append("plateau")
            threshold, bg = raised, plateau if method == "adaptive" else bg
            region = _component(region & (values >= threshold), peak)
    # --- separability (see the module docstring) ---------------------------------------------------
    if not _reaches(region, click, spacing):
        distance = ndimage.distance_transform_edt(~ndimage.binary_fill_holes(region), sampling=spacing)
        return "not-at-click", (f"the nearest maximum (SUV {suv_max:.2f}) lies {float(distance[click]):.0f} mm beyond the "
                                "click and its region does not reach it: nothing focal where the reader clicked")
    shell = _shell(region, spacing, *options.shell_mm) & (values < threshold) & (values > 0.02 * max(suv_max, 1e-6))
    cnr = None
    if shell.sum() >= 10:
        top = np.unravel_index(int(np.argmax(np.where(region, frame.means, -np.inf))), region.shape)
        level = float(frame.means[top])
        # the uptake the lesion stands on: the saddle towards anything that extends beyond a box of
        # 1.5 x the region's radius (at least 25 mm): its own surroundings, or the organ or bone it
        # sits in. In noisy tissue the saddle is the highest path that noise opens, above the tissue's
        # mean: SADDLE_NOISE noise SD are taken off (never below the shell's median).
        radius = (int(region.sum()) * float(np.prod(spacing)) * 3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
        saddle = _saddle(frame.means, top, spacing, max(25.0, 1.5 * radius))
        noise = local_noise(frame.means, shell, spacing) or 0.0
        standing = max(float(np.median(frame.means[shell])), saddle - SADDLE_NOISE * noise)
        cnr = (level - standing) / max(noise, 1e-3 * max(abs(standing), 1e-3))
        if cnr < options.min_contrast:
            return "low-contrast", (f"its 1 mL local uptake ({level:.2f}) stands only {cnr:.1f} noise SD above the uptake "
                                    f"it sits on ({standing:.2f}); {options.min_contrast:g} are needed")
    from_peak = ndimage.distance_transform_edt(~_point(values.shape, peak), sampling=spacing)
    if float(from_peak[region].max()) > options.max_radius_mm - float(spacing.max()):
        return "organ-sized", (f"the region above SUV {threshold:.2f} reaches the {options.max_radius_mm:.0f} mm limit "
                               "sphere: it is organ-sized or part of its surroundings")
    if method != "gradient" and region.sum() >= 30:
        contrast = suv_max - (bg if bg is not None else float(np.median(values[shell])) if shell.any() else 0.0)
        tighter = _component(region & (values >= threshold + 0.1 * max(contrast, 0.0)), peak)
        if tighter.sum() * 3 < region.sum():
            return "flooding", (f"the region collapses from {int(region.sum())} to {int(tighter.sum())} voxels when the "
                                "threshold rises by a tenth of the contrast: it spills over into its surroundings")
    return LesionMask(frame.box, region, _absolute(peak, frame.box), suv_max, float(threshold), method, bg, notes,
                      SEGMENTED, flags, 0.0, cnr)


#: Thresholds between the lesion's threshold and its peak at which the region is followed.
PLATEAU_LEVELS = 12
#: A region that grows by more than this factor over one step of ``PLATEAU_LEVELS`` has taken in
#: a structure of its own (a plateau of uptake), not the next shell of its own edge.
PLATEAU_JUMP = 3.0


def _plateau(values: np.ndarray, means: np.ndarray, region: np.ndarray, threshold: float) -> Optional[float]:
    """The uptake level of a plateau that ``region`` took in, or None.

    The region is followed on the 1 mL local means (so that noise on a flat lesion's top does not
    look like structure) from their maximum in the region down to the threshold, in
    :data:`PLATEAU_LEVELS` steps. A lesion's volume grows smoothly as the level falls (its edge
    moves outwards); when one step multiplies it by more than :data:`PLATEAU_JUMP` (and by at least
    8 voxels) the region has spilled into surrounding uptake, whose level is the median of the
    voxels taken in at that step.
    """
    found = ndimage.find_objects(region.astype(np.uint8))
    if not found or found[0] is None:
        return None
    box = found[0]
    local_means, local_region = means[box], region[box]
    inside = np.where(local_region, local_means, -np.inf)
    top = np.unravel_index(int(np.argmax(inside)), inside.shape)
    high = float(inside[top])
    if high <= threshold:
        return None
    levels = threshold + (high - threshold) * np.arange(PLATEAU_LEVELS, -1, -1) / PLATEAU_LEVELS
    previous = None
    for level in levels[1:]:
        current = _component(local_region & (local_means >= level), top)
        if previous is not None:
            grown, before = int(current.sum()), int(previous.sum())
            if grown > PLATEAU_JUMP * before and grown - before >= 8:
                taken = float(np.median(local_means[current & ~previous]))
                level = float(np.median(values[box][current & ~previous]))
                # a flat-topped lesion also jumps, near its own top, and so does the ring of a necrotic
                # lesion as its hot spots join (its 1 mL means are diluted by the cold centre, its voxels
                # are not): only uptake in the lower half of the contrast, by both measures, is
                # surrounding tissue the region spilled into
                half = threshold + 0.5 * (high - threshold)
                return level if taken < half and level < half else None
        previous = current
    return None


def _saddle(means: np.ndarray, top: Tuple[int, ...], spacing: np.ndarray, radius_mm: float) -> float:
    """The highest level at which the region of 1 mL means around ``top`` reaches the border of a
    box of ``radius_mm`` around it: the uptake of whatever the lesion stands on that extends beyond
    the box (soft tissue, an organ, bone). The lesion's prominence is its peak minus this level."""
    reach = np.ceil(radius_mm / spacing).astype(int)
    low = [max(c - r, 0) for c, r in zip(top, reach)]
    high = [min(c + r + 1, n) for c, r, n in zip(top, reach, means.shape)]
    box = means[low[0]:high[0], low[1]:high[1], low[2]:high[2]]
    at = tuple(c - l for c, l in zip(top, low))
    # the faces of the box inside the image (where the box meets the edge of an image cropped around
    # the lesion, nothing is known of what lies beyond, so that face does not count)
    border = np.zeros(box.shape, dtype=bool)
    for axis in range(3):
        first = [slice(None)] * 3
        last = [slice(None)] * 3
        first[axis], last[axis] = 0, -1
        if low[axis] > 0:
            border[tuple(first)] = True
        if high[axis] < means.shape[axis]:
            border[tuple(last)] = True
    if not border.any():
        return float(box.min())
    lo, hi = float(box.min()), float(box[at])
    for _ in range(16):
        mid = 0.5 * (lo + hi)
        if (_component(box >= mid, at) & border).any():
            lo = mid
        else:
            hi = mid
    return lo


#: The 26 directions from a voxel to its neighbours, as unit vectors in voxel index space.
_DIRECTIONS = np.array([d for d in np.ndindex(3, 3, 3) if d != (1, 1, 1)], dtype=float) - 1.0
#: A click lies inside a ring of uptake (a necrotic lesion's rim) when at least this share of the
#: 26 rays from it meet the region: the ring may be open on a side (noise, or where it touches
#: cold tissue) and its centre then is no hole to fill.
ENCLOSED_SHARE = 0.85


def _reaches(region: np.ndarray, click: Tuple[int, ...], spacing: np.ndarray) -> bool:
    """Whether ``region`` comes within :data:`CLICK_TOLERANCE_MM` (at least 1.5 voxels) of the click,
    or encloses it: a click in a necrotic (cold) centre lies inside the lesion's ring of uptake
    (holes count as the lesion, and so does a centre that rays in :data:`ENCLOSED_SHARE` of the
    26 directions leave through the region)."""
    distance = ndimage.distance_transform_edt(~ndimage.binary_fill_holes(region), sampling=spacing)
    if float(distance[tuple(click)]) <= max(CLICK_TOLERANCE_MM, 1.5 * float(spacing.max())):
        return True
    voxels = np.argwhere(region)
    if not len(voxels):
        return False
    reach_mm = float(np.sqrt((((voxels - np.asarray(click)) * spacing) ** 2).sum(axis=1)).max())
    directions = _DIRECTIONS * (float(spacing.min()) / spacing)  # equal steps in mm along every direction
    directions /= np.linalg.norm(directions * spacing, axis=1, keepdims=True) / (0.5 * float(spacing.min()))
    steps = np.arange(1, int(reach_mm / (0.5 * float(spacing.min()))) + 2)
    points = np.rint(np.asarray(click, dtype=float) + steps[None, :, None] * directions[:, None, :]).astype(int)
    valid = np.all((points >= 0) & (points < np.asarray(region.shape)), axis=2)
    hit = np.zeros(valid.shape, dtype=bool)
    hit[valid] = region[tuple(points[valid].T)]
    return float(hit.any(axis=1).mean()) >= ENCLOSED_SHARE


def _point(shape, at) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(at)] = True
    return mask


def _not_separable(volume: SUVVolume, frame: _Frame, click: Tuple[int, int, int], options: SegmentOptions,
                   method: str, code: str, reason: str) -> LesionMask:
    """The record of a lesion that is not separable: the 1 mL sphere at the click, where its local
    uptake is measured, with the reason."""
    sphere = _sphere(frame.values.shape, click, frame.spacing, max(LOCAL_RADIUS_MM, 0.51 * float(frame.spacing.max())))
    sphere &= frame.values > 0
    if not sphere.any():
        sphere = _point(frame.values.shape, click)
    values = np.where(sphere, frame.values, -np.inf)
    hottest = np.unravel_index(int(np.argmax(values)), values.shape)
    note = f"not separable: {reason}; the local uptake in a 1 mL sphere at the click is reported instead of a volume"
    return LesionMask(frame.box, sphere, _absolute(hottest, frame.box), float(frame.values[hottest]), float("nan"),
                      method, None, [note], NOT_SEPARABLE, ["not-separable", code], 0.0, None)


def lesion_from_mask(volume: SUVVolume, mask: np.ndarray, method: str = "edited") -> LesionMask:
    """A lesion from a full-size boolean mask (a segment drawn or edited by a reader).

    Raises
    ------
    QuantError
        An empty mask, one whose shape differs from the volume's, or non-finite voxels inside it.
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
    inside = volume.values[box][local]
    if not np.isfinite(inside).all():
        raise QuantError(f"The segment covers {int((~np.isfinite(inside)).sum())} non-finite (NaN or infinite) voxels of "
                         f"{volume.name}; the image is damaged: convert the PET again.")
    values = np.where(local, volume.values[box], -np.inf)
    peak_local = np.unravel_index(int(np.argmax(values)), local.shape)
    peak = tuple(int(p + s.start) for p, s in zip(peak_local, box))
    return LesionMask(box, local.copy(), peak, float(inside.max()), float(inside.min()), method)


def segment_seeds(volume: SUVVolume, seeds_ras: Sequence[Sequence[float]], options: Optional[SegmentOptions] = None,
                  liver: Optional[ReferenceStats] = None, split_ras: Sequence[Sequence[float]] = (),
                  backgrounds: Optional[Sequence[Optional[float]]] = None) -> List[LesionMask]:
    """Segment several lesions; each seed competes with the others (and with ``split_ras``)."""
    options = options or SegmentOptions()
    results = []
    for i, seed in enumerate(seeds_ras):
        others = [s for j, s in enumerate(seeds_ras) if j != i] + list(split_ras)
        bg = backgrounds[i] if backgrounds is not None else None
        results.append(segment(volume, seed, options, liver, others, bg))
    return results


def label_image(volume: SUVVolume, lesions: Sequence[LesionMask]) -> np.ndarray:
    """uint16 [z, y, x] labels: i + 1 for lesion i (a voxel claimed twice keeps the first label)."""
    labels = np.zeros(volume.shape, dtype=np.uint16)
    for i, lesion in enumerate(lesions):
        region = labels[lesion.box]
        region[lesion.mask & (region == 0)] = i + 1
    return labels
