"""A simulated NEMA NU-2 / IEC 61675-1 body phantom, acquired and reconstructed like a real scan.

Geometry (LPS mm; x, y = 0 on the axis of the lung insert, which is the centre of the phantom's
bounding box; z = 0 half-way along the 180 mm long body):

* body: the IEC "D" cross-section - anterior half a semicircle of 147 mm inner radius, posterior
  half a 294 x 77 mm box with 77 mm rounded corners (inner size 294 x 224 mm), the arc's
  centre 35 mm posterior of the lung insert's axis; 3 mm PMMA wall;
* lung insert: a cold cylinder of 51 mm outer diameter (4 mm PMMA wall, low-density fill);
* six spheres of inner diameter 10, 13, 17, 22, 28 and 37 mm, centres on a 57.2 mm circle in
  the transverse plane z = 20 mm (70 mm from the lid), each with a cold 1 mm plastic wall.
  Background activity 1.0 (values are SUV-like), sphere activity ``contrast``.

Acquisition (``recon="earl1"``/``"earl2"`` or any parameters): 2D sinograms per slice, the
Fourier-rebinned (FORE) 2D data that clinical scanners reconstructed, 168 angles over 180
degrees and 2 mm radial bins. True sinograms are analytic - chord lengths through the body,
insert and spheres, sampled 8 times per bin, Gaussian detector blur along s (equivalent to an
isotropic 2D Gaussian in the image), slice sensitivity = slice box x axial Gaussian - so no
voxel grid enters the data. Attenuation is analytic too (water 0.0096/mm, PMMA 0.0111/mm,
lung fill 0.0026/mm; sphere walls taken as water). Scatter (30 % of trues + scatter, a broadly
smoothed copy of the trues) and randoms (10 % of prompts, flat) are added, then Poisson noise.
Time of flight is not modelled: its noise gain is part of the ``counts`` level, which is
calibrated to a clinically realistic background noise.

Reconstruction: attenuation-weighted OSEM with the additive term in the model
(:mod:`netpet.phantom.osem`), optionally with image-space resolution modelling ("PSF"),
then a 3D Gaussian post-filter. Both presets reconstruct the same simulated scanner (4.5 mm
FWHM) and are tuned so that RCmax and RCmean (VOI-A50) of all six spheres lie inside the EARL
bands at 4:1 and 8:1 (see benchmarks/nema_recovery.py):

* ``earl1``: OSEM without PSF, 4.07 x 4.07 x 2.03 mm voxels, 4 iterations x 21 subsets,
  7.5 mm Gaussian post-filter (EARL 1: older scanners, harmonised reconstructions);
* ``earl2``: PSF OSEM (a 4.0 mm Gaussian model of the 4.5 mm system, approximate as vendors'
  models are), 2.04 x 2.04 x 2.0 mm voxels, 4 iterations x 21 subsets, 4.5 mm post-filter;
  it shows the edge overshoot (Gibbs ringing) of resolution modelling: RCmax > 1 for the
  17-37 mm spheres (EARL 2).

Both are calibrated to a background voxel COV of about 10 % (EARL requires < 15 %).
The sphere plane lies on a slice centre and the phantom axis on a voxel centre. ``earl2``'s
higher count level stands for the sensitivity and time-of-flight gain of the digital systems
EARL 2 was made for.

``recon="gauss"`` keeps the earlier, idealised image (Gaussian blur + correlated noise).

Recovery coefficients follow the EARL definitions (:func:`recovery_coefficients`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.special import ndtr

from netpet.geometry import lps_to_ras
from netpet.phantom.osem import FWHM_PER_SIGMA, Geometry, GaussianBlur, gaussian_post_filter, osem
from netpet.phantom.shapes import Box, Ellipsoid, Grid, ProfileCylinder, Shape, occupancy, paint

log = logging.getLogger(__name__)

SPHERE_DIAMETERS_MM = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)
RING_RADIUS_MM = 57.2
SPHERE_PLANE_Z_MM = 20.0
SPHERE_WALL_MM = 1.0
BACKGROUND_SUV = 1.0
BODY_LENGTH_MM = 180.0
BODY_ARC_RADIUS_MM = 147.0      # inner surface
BODY_CORNER_RADIUS_MM = 77.0    # inner surface
BODY_ARC_CENTRE_Y_MM = 35.0     # LPS y of the arc's centre (posterior of the lung insert axis)
BODY_WALL_MM = 3.0
LUNG_RADIUS_MM = 25.5
LUNG_WALL_MM = 4.0
MU_WATER, MU_PMMA, MU_LUNG = 0.0096, 0.0111, 0.0026  # linear attenuation at 511 keV, 1/mm
SCATTER_FRACTION = 0.30  # scatter / (trues + scatter)
RANDOMS_FRACTION = 0.10  # randoms / prompts
SCATTER_FWHM_MM = 150.0  # width of the smoothing that turns trues into the scatter shape
PEAK_DIAMETER_MM = 12.4  # a 1 mL sphere, the SUVpeak VOI

# EARL recovery-coefficient bands, (min, max) per sphere in SPHERE_DIAMETERS_MM order.
# EARL1: EARL FDG-PET/CT accreditation specifications (R. Boellaard, Jan 2017), identical to
# Boellaard R et al., FDG PET/CT: EANM procedure guidelines for tumour imaging, version 2.0,
# EJNMMI 2015;42:328-354. RCmean is the mean of the VOI-A50 (50 % background-corrected isocontour).
EARL1_BANDS: Dict[str, List[Tuple[float, float]]] = {
    "rc_max": [(0.34, 0.57), (0.59, 0.85), (0.73, 1.01), (0.83, 1.09), (0.91, 1.13), (0.95, 1.16)],
    "rc_mean": [(0.27, 0.43), (0.44, 0.60), (0.57, 0.73), (0.63, 0.78), (0.72, 0.85), (0.76, 0.89)],
}
# EARL2: Kaalep A, Sera T, Rijnsdorp S et al., Feasibility of state of the art PET/CT systems
# performance harmonisation, EJNMMI 2018;45:1344-1361 (EARL 18F standards 2).
EARL2_BANDS: Dict[str, List[Tuple[float, float]]] = {
    "rc_max": [(0.52, 0.88), (0.85, 1.22), (1.00, 1.38), (1.01, 1.32), (1.01, 1.26), (1.05, 1.29)],
    "rc_mean": [(0.39, 0.61), (0.63, 0.86), (0.76, 0.97), (0.80, 0.99), (0.82, 0.97), (0.85, 1.00)],
}
# RCpeak is computed and reported, but no band is given: its published EARL bands could not be
# checked against the primary sources offline, so none is asserted.

# The scanner: 2D sinograms of 166 bins x 2 mm (a 332 mm field) and 168 angles (21 subsets of
# 8, the subset count of many clinical protocols); 8 analytic samples per bin.
SINOGRAM_BINS, BIN_MM, ANGLES, OVERSAMPLE = 166, 2.0, 168, 8
SLAB_HALF_MM = 40.0  # slices simulated on each side of the sphere plane

# The simulated scanner (both EARL presets reconstruct its data) and the acquisition defaults.
SCANNER: Dict[str, object] = dict(fwhm_mm=4.5, noise=True, sphere_wall_mm=SPHERE_WALL_MM)
PRESETS: Dict[str, Dict[str, object]] = {
    "earl1": dict(voxel_mm=(4.07, 4.07, 2.03), iterations=4, subsets=21, psf=False, psf_fwhm_mm=4.0,
                  post_filter_mm=7.5, counts=1.8e5),
    "earl2": dict(voxel_mm=(2.04, 2.04, 2.0), iterations=4, subsets=21, psf=True, psf_fwhm_mm=4.0,
                  post_filter_mm=4.5, counts=5.0e5),
    "gauss": dict(voxel_mm=(4.0, 4.0, 3.0), fwhm_mm=6.5, liver_cov=0.10),
}
_RECON_KEYS = ("voxel_mm", "iterations", "subsets", "psf", "psf_fwhm_mm", "post_filter_mm", "counts") + tuple(SCANNER)


@dataclass
class NemaPhantom:
    """A reconstructed phantom and its truth.

    Attributes
    ----------
    image : SimpleITK.Image
        float32, LPS geometry, SUV-like values (background activity 1.0).
    spheres : list of dict
        Per sphere: diameter_mm (inner), center_ras, center_lps (mm), suv (true activity),
        volume_ml (inner volume).
    contrast : float
        Sphere-to-background activity ratio.
    recon : str
        Preset name ("earl1", "earl2", "gauss") the parameters started from.
    parameters : dict
        Every parameter used (voxel_mm, iterations, counts, ... and the time taken, s).
    background_cov : float
        Coefficient of variation of the voxels of the uniform background (see
        :func:`background_mask`).
    """

    image: sitk.Image
    spheres: List[Dict[str, object]]
    contrast: float
    recon: str
    parameters: Dict[str, object] = field(default_factory=dict)
    background_cov: float = float("nan")


# ---------------------------------------------------------------------------------------------
# geometry


@dataclass(frozen=True)
class IECBody(Shape):
    """The IEC body's D-shaped cross-section (inner surface shrunk by ``inset`` mm), extruded along z.

    The union of the anterior half (y <= arc centre) of a disc and a posterior box with rounded
    corners; it equals disc  intersect  (the half-strip |x| <= arc - corner, y <= arc centre,
    grown by the corner radius), both convex, which gives its chord lengths in closed form.
    """

    inset: float = 0.0
    radius: float = BODY_ARC_RADIUS_MM
    corner: float = BODY_CORNER_RADIUS_MM
    centre_y: float = BODY_ARC_CENTRE_Y_MM
    half_length: float = BODY_LENGTH_MM / 2.0

    @property
    def _r(self) -> float:
        return self.radius - self.inset

    @property
    def _c(self) -> float:
        return self.corner - self.inset

    def contains(self, x, y, z):
        r, c, flat = self._r, self._c, self.radius - self.corner
        dy = y - self.centre_y
        in_disc = x * x + dy * dy <= r * r
        lower = (dy <= 0) | ((np.abs(x) <= flat) & (dy <= c)) | ((np.abs(x) - flat) ** 2 + dy * dy <= c * c)
        return in_disc & lower & (np.abs(z) <= self.half_length)

    def bbox(self) -> Box:
        r = self._r
        return (np.array([-r, self.centre_y - r, -self.half_length]),
                np.array([r, self.centre_y + self._c, self.half_length]))

    def chord(self, s: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """Length (mm) of the line x cos + y sin = s inside the cross-section (broadcasting)."""
        px, py = s * cos, s * sin
        dx, dy = -sin, cos
        r, c, flat = self._r, self._c, self.radius - self.corner
        disc = _disc_interval(px, py - self.centre_y, dx, dy, r)
        strip = _intersect(_slab_interval(px, dx, -r, r), _slab_interval(py, dy, -np.inf, self.centre_y))
        box = _intersect(_slab_interval(px, dx, -flat, flat),
                         _slab_interval(py, dy, self.centre_y - c, self.centre_y + c))
        left = _disc_interval(px + flat, py - self.centre_y, dx, dy, c)
        right = _disc_interval(px - flat, py - self.centre_y, dx, dy, c)
        grown = _hull(strip, box, left, right)
        low, high = _intersect(disc, grown)
        return np.maximum(high - low, 0.0)


def _normalise(low, high):
    empty = ~(low <= high)
    return np.where(empty, np.inf, low), np.where(empty, -np.inf, high)


def _intersect(a, b):
    return _normalise(np.maximum(a[0], b[0]), np.minimum(a[1], b[1]))


def _hull(*intervals):
    """The smallest interval holding every (non-empty) interval: their union, for convex sets."""
    return np.min([i[0] for i in intervals], axis=0), np.max([i[1] for i in intervals], axis=0)


def _slab_interval(p, d, low, high):
    """Parameters t where low <= p + t d <= high (one coordinate of a line)."""
    p, d = np.broadcast_arrays(p, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (low - p) / d, (high - p) / d
    parallel = np.abs(d) < 1e-12
    inside = (p >= low) & (p <= high)
    lo = np.where(parallel, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
    hi = np.where(parallel, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
    return _normalise(lo, hi)


def _disc_interval(qx, qy, dx, dy, radius):
    """Parameters t where the line q + t d (q relative to the centre, |d| = 1) is in the disc."""
    middle = -(qx * dx + qy * dy)
    half_sq = radius * radius - (qx * qx + qy * qy - middle * middle)
    half = np.sqrt(np.maximum(half_sq, 0.0))
    return _normalise(np.where(half_sq > 0, middle - half, np.inf), np.where(half_sq > 0, middle + half, -np.inf))


def _disc_chord(s, radius):
    return 2.0 * np.sqrt(np.maximum(radius * radius - s * s, 0.0))


def _disc_chord_integral(u, radius):
    """Integral of the chord length 2 sqrt(r^2 - t^2) from -r to u (mm^2)."""
    radius = np.asarray(radius, dtype=np.float64)
    t = np.clip(u, -radius, radius)
    ratio = np.divide(t, radius, out=np.zeros(np.broadcast(t, radius).shape), where=radius > 0)
    return t * np.sqrt(np.maximum(radius * radius - t * t, 0.0)) + radius * radius * (np.arcsin(ratio) + 0.5 * math.pi)


def sphere_centres() -> List[Tuple[float, float, float]]:
    """The six sphere centres (LPS mm), in SPHERE_DIAMETERS_MM order."""
    out = []
    for i in range(len(SPHERE_DIAMETERS_MM)):
        angle = math.radians(30.0 + 60.0 * i)
        out.append((RING_RADIUS_MM * math.cos(angle), RING_RADIUS_MM * math.sin(angle), SPHERE_PLANE_Z_MM))
    return out


def _sphere_truth(contrast: float) -> List[Dict[str, object]]:
    return [{"diameter_mm": d, "center_ras": lps_to_ras(c), "center_lps": c, "suv": contrast * BACKGROUND_SUV,
             "volume_ml": math.pi * d ** 3 / 6000.0} for d, c in zip(SPHERE_DIAMETERS_MM, sphere_centres())]


# ---------------------------------------------------------------------------------------------
# acquisition


def _fine_samples(geometry: Geometry) -> np.ndarray:
    h = geometry.bin_mm / OVERSAMPLE
    return geometry.bin_centres[0] - geometry.bin_mm / 2.0 + (np.arange(geometry.bins * OVERSAMPLE) + 0.5) * h


def _bin_mean(fine: np.ndarray) -> np.ndarray:
    """Average the OVERSAMPLE fine samples of each bin (last axis)."""
    return fine.reshape(fine.shape[:-1] + (-1, OVERSAMPLE)).mean(axis=-1)


def attenuation_line_integrals(geometry: Geometry) -> np.ndarray:
    """Integral of mu along every fine line, [angles, bins * OVERSAMPLE] (dimensionless)."""
    s = _fine_samples(geometry)[None, :]
    cos, sin = np.cos(geometry.theta)[:, None], np.sin(geometry.theta)[:, None]
    inner = IECBody().chord(s, cos, sin)
    outer = IECBody(inset=-BODY_WALL_MM).chord(s, cos, sin)
    lung = _disc_chord(s, LUNG_RADIUS_MM)
    fill = _disc_chord(s, LUNG_RADIUS_MM - LUNG_WALL_MM)
    return (MU_PMMA * (outer - inner) + MU_WATER * (inner - lung) + MU_PMMA * (lung - fill) + MU_LUNG * fill)


def analytic_sinograms(contrast: float, geometry: Geometry, slice_z: np.ndarray, slice_mm: float,
                       fwhm_mm: float, sphere_wall_mm: float = SPHERE_WALL_MM,
                       attenuate: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Noise-free true sinograms of the phantom, computed analytically.

    Parameters
    ----------
    contrast : float
        Sphere activity (background 1.0).
    geometry : Geometry
        Sinogram geometry (bins, bin width, angles).
    slice_z : ndarray
        Slice centres, mm (LPS z).
    slice_mm : float
        Slice thickness, mm.
    fwhm_mm : float
        The scanner's resolution, FWHM of an isotropic 3D Gaussian, mm: it blurs every
        projection along s (exactly a 2D Gaussian blur of the image) and the slices axially.
    sphere_wall_mm : float
        Cold wall thickness of the spheres, mm.
    attenuate : bool
        Multiply every line by its attenuation factor.

    Returns
    -------
    trues : ndarray, [angles, bins, slices]
        Mean over each bin of the (attenuated) line integral of activity, activity x mm.
    attenuation : ndarray, [angles, bins]
        Mean attenuation factor over each bin (ones when ``attenuate`` is False).
    """
    sigma = fwhm_mm / FWHM_PER_SIGMA
    h = geometry.bin_mm / OVERSAMPLE
    s = _fine_samples(geometry)
    theta = geometry.theta
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    factor = np.exp(-attenuation_line_integrals(geometry)) if attenuate else np.ones((theta.size, s.size))
    background = BACKGROUND_SUV * (IECBody().chord(s[None, :], cos, sin) - _disc_chord(s[None, :], LUNG_RADIUS_MM))
    background = ndimage.gaussian_filter1d(background, sigma / h, axis=1, mode="constant", truncate=5.0)
    common = _bin_mean(background * factor)
    spheres = np.zeros((slice_z.size, theta.size, s.size))
    touched = np.zeros(slice_z.size, dtype=bool)
    for diameter, centre in zip(SPHERE_DIAMETERS_MM, sphere_centres()):
        inner, outer = diameter / 2.0, diameter / 2.0 + sphere_wall_mm
        reach = int(math.ceil((outer + 5.0 * sigma) / h)) + 2
        u = np.arange(-reach, reach + 1) * h
        # sub-slices through the ball; slice k averages the axially blurred object over its thickness
        z = np.arange(-outer + h / 2.0, outer, h)
        offset = slice_z[:, None] - centre[2] - z[None, :]
        weights = (ndtr((offset + slice_mm / 2.0) / sigma) - ndtr((offset - slice_mm / 2.0) / sigma)) / slice_mm * h
        chords = np.zeros((z.size, u.size))
        for radius, activity in ((inner, contrast * BACKGROUND_SUV), (outer, -BACKGROUND_SUV)):
            rho = np.sqrt(np.maximum(radius * radius - z * z, 0.0))[:, None]
            chords += activity * (_disc_chord_integral(u + h / 2.0, rho) - _disc_chord_integral(u - h / 2.0, rho)) / h
        table = ndimage.gaussian_filter1d(weights @ chords, sigma / h, axis=1, mode="constant", truncate=5.0)
        rows = np.flatnonzero(np.abs(table).max(axis=1) > 1e-9 * contrast)
        touched[rows] = True
        shift = centre[0] * np.cos(theta) + centre[1] * np.sin(theta)
        first = np.floor((shift - u[-1] - s[0]) / h).astype(np.int64)
        index = first[:, None] + np.arange(2 * reach + 3)[None, :]
        valid = (index >= 0) & (index < s.size)
        index = np.clip(index, 0, s.size - 1)
        offsets = s[index] - shift[:, None]
        angle_index = np.broadcast_to(np.arange(theta.size)[:, None], index.shape)
        for k in rows:
            values = np.where(valid, np.interp(offsets, u, table[k], left=0.0, right=0.0), 0.0)
            np.add.at(spheres[k], (angle_index, index), values)
    trues = np.repeat(common[:, :, None], slice_z.size, axis=2)
    for k in np.flatnonzero(touched):
        trues[:, :, k] += _bin_mean(spheres[k] * factor)
    return trues, _bin_mean(factor)


def _additive(trues: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Expected scatter + randoms for true sinograms [angles, bins, slices] (same units)."""
    scatter = ndimage.gaussian_filter1d(trues, SCATTER_FWHM_MM / FWHM_PER_SIGMA / geometry.bin_mm, axis=1,
                                        mode="constant", truncate=4.0)
    scatter *= SCATTER_FRACTION / (1.0 - SCATTER_FRACTION) * trues.sum(axis=(0, 1)) / scatter.sum(axis=(0, 1))
    randoms_per_slice = RANDOMS_FRACTION / (1.0 - RANDOMS_FRACTION) * (trues + scatter).sum(axis=(0, 1))
    return scatter + randoms_per_slice / (geometry.angles * geometry.bins)


# ---------------------------------------------------------------------------------------------
# the phantom


def _reconstructed(contrast: float, seed: int, p: Dict[str, object]) -> Tuple[sitk.Image, Dict[str, object]]:
    voxel = p["voxel_mm"]
    pixel, thickness = float(voxel[0]), float(voxel[2])
    half = int(math.ceil(SLAB_HALF_MM / thickness))
    slice_z = SPHERE_PLANE_Z_MM + np.arange(-half, half + 1) * thickness
    size = 2 * int(math.ceil(152.0 / pixel)) + 1  # odd: the phantom axis on a voxel centre
    geometry = Geometry(size, pixel, SINOGRAM_BINS, BIN_MM, ANGLES)
    trues, attenuation = analytic_sinograms(contrast, geometry, slice_z, thickness, float(p["fwhm_mm"]),
                                            float(p["sphere_wall_mm"]))
    additive = _additive(trues, geometry)
    expected = trues + additive
    scale = float(p["counts"]) * thickness / float(expected.sum(axis=(0, 1)).mean())
    if p["noise"]:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(round(contrast * 1000))]))
        prompts = rng.poisson(scale * expected).astype(np.float32)
    else:
        prompts = (scale * expected).astype(np.float32)
    psf = None
    if p["psf"]:
        sigma = float(p["psf_fwhm_mm"]) / FWHM_PER_SIGMA
        psf = GaussianBlur(size, slice_z.size, sigma / pixel, sigma / thickness)
    image = osem(prompts, scale * attenuation[:, :, None], scale * additive, geometry,
                 int(p["iterations"]), int(p["subsets"]), psf)
    volume = np.transpose(image.reshape(size, size, slice_z.size), (2, 0, 1))
    volume = gaussian_post_filter(volume, float(p["post_filter_mm"]), (thickness, pixel, pixel))
    out = sitk.GetImageFromArray(volume.astype(np.float32))
    out.SetSpacing((pixel, pixel, thickness))
    origin = float(geometry.pixel_centres[0])
    out.SetOrigin((origin, origin, float(slice_z[0])))
    derived = {"matrix": size, "slices": int(slice_z.size), "prompts_per_slice": float(prompts.sum(axis=(0, 1)).mean()),
               "scatter_fraction": SCATTER_FRACTION, "randoms_fraction": RANDOMS_FRACTION,
               "angles": ANGLES, "bins": SINOGRAM_BINS, "bin_mm": BIN_MM}
    return out, derived


def _gaussian(contrast: float, seed: int, voxel_mm, fwhm_mm: float, liver_cov: float) -> sitk.Image:
    """The idealised image: activity on a 1 mm grid, Gaussian blur, voxelisation, correlated noise."""
    fine = Grid(origin=(-160.0, -125.0, -100.0), spacing=(1.0, 1.0, 1.0), size=(321, 251, 201))
    labels = np.zeros((fine.size[2], fine.size[1], fine.size[0]), dtype=np.uint8)
    paint(labels, fine, IECBody(), 1)
    lung = ProfileCylinder([(-90.0, 0.0, 0.0, LUNG_RADIUS_MM, LUNG_RADIUS_MM),
                            (90.0, 0.0, 0.0, LUNG_RADIUS_MM, LUNG_RADIUS_MM)])
    paint(labels, fine, lung, 2)
    activity = np.where(labels == 1, BACKGROUND_SUV, 0.0).astype(np.float32)
    for diameter, centre in zip(SPHERE_DIAMETERS_MM, sphere_centres()):
        box, fraction = occupancy(fine, Ellipsoid(centre, (diameter / 2,) * 3), samples=3)
        region = activity[box]
        region *= 1.0 - fraction
        region += fraction * contrast * BACKGROUND_SUV
    fine_image = sitk.GetImageFromArray(activity)
    fine_image.SetOrigin(fine.origin)
    fine_image.SetSpacing(fine.spacing)
    blurred = sitk.SmoothingRecursiveGaussian(fine_image, fwhm_mm / FWHM_PER_SIGMA)
    size = [int(round(320.0 / voxel_mm[0])), int(round(250.0 / voxel_mm[1])), int(round(190.0 / voxel_mm[2]))]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing(tuple(float(v) for v in voxel_mm))
    reference.SetOrigin(tuple(-(n - 1) * s / 2.0 for n, s in zip(size, voxel_mm)))
    # voxelise: average the fine grid over each voxel (block mean), then sample at the voxel centre
    averaged = sitk.SmoothingRecursiveGaussian(blurred, [s / math.sqrt(12.0) for s in voxel_mm])
    clean = sitk.Resample(averaged, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    values = sitk.GetArrayFromImage(clean)
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(contrast * 100)]))
    white = rng.standard_normal(values.shape).astype(np.float32)
    noise = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(white), 0.7))
    noise /= float(np.std(noise))
    noisy = np.maximum(values + liver_cov * np.sqrt(BACKGROUND_SUV) * np.sqrt(np.maximum(values, 0.0)) * noise, 0.0)
    image = sitk.GetImageFromArray(noisy.astype(np.float32))
    image.CopyInformation(clean)
    return image


def nema_phantom(contrast: float = 4.0, recon: str = "earl1", seed: int = 0, **overrides) -> NemaPhantom:
    """Simulate and reconstruct the phantom at sphere-to-background ratio ``contrast``.

    Parameters
    ----------
    contrast : float
        Sphere-to-background activity ratio (4 and 8 are the usual settings; any float > 0).
    recon : {"earl1", "earl2", "gauss"}
        The preset the parameters start from (see the module docstring).
    seed : int
        Noise seed; the noise also depends on ``contrast``.
    **overrides
        For "earl1"/"earl2": ``voxel_mm`` (float or (x, y, z) with x = y, mm), ``iterations``,
        ``subsets`` (a divisor of 168), ``psf`` (bool), ``psf_fwhm_mm`` (the resolution model,
        mm), ``post_filter_mm`` (FWHM, mm; 0 for none), ``fwhm_mm`` (the scanner's resolution,
        mm), ``counts`` (expected prompts of a 2D sinogram per mm of slice thickness: the
        noise level; EARL1 1.8e5, EARL2 5e5 give a background COV of about 10 %),
        ``noise`` (False: reconstruct the expected data), ``sphere_wall_mm``.
        For "gauss": ``voxel_mm``, ``fwhm_mm`` and ``liver_cov`` (noise COV of the background).

    Returns
    -------
    NemaPhantom
    """
    if recon not in PRESETS:
        raise ValueError(f"recon must be one of {sorted(PRESETS)}, not {recon!r}")
    allowed = tuple(PRESETS["gauss"]) if recon == "gauss" else _RECON_KEYS
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(f"unknown parameters for recon={recon!r}: {unknown}; allowed: {list(allowed)}")
    parameters: Dict[str, object] = {} if recon == "gauss" else dict(SCANNER)
    parameters.update(PRESETS[recon])
    parameters.update(overrides)
    voxel = parameters["voxel_mm"]
    voxel = (float(voxel),) * 3 if np.isscalar(voxel) else tuple(float(v) for v in voxel)
    parameters["voxel_mm"] = voxel
    started = time.perf_counter()
    if recon == "gauss":
        image = _gaussian(contrast, seed, voxel, float(parameters["fwhm_mm"]), float(parameters["liver_cov"]))
    else:
        if abs(voxel[0] - voxel[1]) > 1e-9:
            raise ValueError("the in-plane voxel must be square")
        image, derived = _reconstructed(float(contrast), seed, parameters)
        parameters.update(derived)
    parameters["seconds"] = time.perf_counter() - started
    values = sitk.GetArrayViewFromImage(image)
    background = values[background_mask(image)]
    phantom = NemaPhantom(image, _sphere_truth(contrast), float(contrast), recon, parameters,
                          float(background.std() / background.mean()))
    log.info("NEMA phantom %s contrast %.1f seed %d: background COV %.3f, %.1f s", recon, contrast, seed,
             phantom.background_cov, parameters["seconds"])
    return phantom


# ---------------------------------------------------------------------------------------------
# measurement


def _voxel_axes(image: sitk.Image, centre) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = image.GetSize()
    origin, spacing = np.asarray(image.GetOrigin()), np.asarray(image.GetSpacing())
    axes = [origin[a] + np.arange(size[a]) * spacing[a] - centre[a] for a in range(3)]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij", sparse=True)
    return x, y, z


def sphere_mask(image: sitk.Image, center_lps, diameter_mm: float) -> np.ndarray:
    """Voxels of ``image`` ([z, y, x] bool) whose centres lie inside the sphere."""
    x, y, z = _voxel_axes(image, center_lps)
    return x * x + y * y + z * z <= (diameter_mm / 2.0) ** 2


def background_mask(image: sitk.Image, margin_mm: float = 15.0, half_height_mm: float = 20.0) -> np.ndarray:
    """The uniform background ([z, y, x] bool): voxels within ``half_height_mm`` of the sphere
    plane, at least ``margin_mm`` inside the body wall and from the lung insert and every sphere's
    outer wall."""
    x, y, z = _voxel_axes(image, (0.0, 0.0, 0.0))
    mask = IECBody(inset=margin_mm).contains(x, y, z) & (np.abs(z - SPHERE_PLANE_Z_MM) <= half_height_mm)
    mask &= x * x + y * y > (LUNG_RADIUS_MM + margin_mm) ** 2
    for diameter, centre in zip(SPHERE_DIAMETERS_MM, sphere_centres()):
        reach = diameter / 2.0 + SPHERE_WALL_MM + margin_mm
        mask &= (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 > reach * reach
    return mask


def _peak_kernel(spacing_zyx: Sequence[float], samples: int = 7) -> np.ndarray:
    """Weights of a 1 mL sphere (12.4 mm) on the voxel grid: the fraction of each voxel inside,
    by supersampling, normalised to sum 1."""
    radius = PEAK_DIAMETER_MM / 2.0
    reach = [int(math.ceil(radius / s + 0.5)) for s in spacing_zyx]
    steps = (np.arange(samples) + 0.5) / samples - 0.5
    grids = [(np.arange(-r, r + 1)[:, None] + steps[None, :]).ravel() * s for r, s in zip(reach, spacing_zyx)]
    z, y, x = np.meshgrid(*grids, indexing="ij", sparse=True)
    inside = (x * x + y * y + z * z <= radius * radius).astype(np.float64)
    shape = [2 * r + 1 for r in reach]
    weights = inside.reshape(shape[0], samples, shape[1], samples, shape[2], samples).sum(axis=(1, 3, 5))
    return weights / weights.sum()


def recovery_coefficients(phantom: NemaPhantom) -> List[Dict[str, float]]:
    """EARL recovery coefficients of every sphere.

    * RCmax: the maximum voxel within the sphere (voxel centres within the inner radius plus
      half the largest voxel side) / true activity;
    * RCmean: the mean of the VOI-A50 - the voxels face-connected to that maximum with values
      >= bg + 0.5 (max - bg), bg the mean of :func:`background_mask`, kept within 5 mm of the
      sphere's inner surface - / true activity;
    * RCpeak: the highest mean of a 1 mL sphere (12.4 mm, partial-volume weights) centred on a
      voxel inside the sphere / true activity.

    Returns
    -------
    list of dict
        diameter_mm, rc_max, rc_mean, rc_peak per sphere, smallest first.
    """
    image = phantom.image
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    spacing_zyx = tuple(reversed(image.GetSpacing()))
    background = float(values[background_mask(image)].mean())
    kernel = _peak_kernel(spacing_zyx)
    out = []
    for sphere in phantom.spheres:
        radius = float(sphere["diameter_mm"]) / 2.0
        truth = float(sphere["suv"])
        x, y, z = _voxel_axes(image, sphere["center_lps"])
        distance_sq = x * x + y * y + z * z
        search = distance_sq <= (radius + 0.5 * max(spacing_zyx)) ** 2
        peak_index = np.unravel_index(np.argmax(np.where(search, values, -np.inf)), values.shape)
        maximum = values[peak_index]
        near = distance_sq <= (radius + 5.0) ** 2
        above = near & (values >= background + 0.5 * (maximum - background))
        labels, _ = ndimage.label(above)
        a50 = labels == labels[peak_index]
        inside = distance_sq <= radius * radius
        if not inside.any():
            inside = distance_sq == distance_sq.min()
        box = tuple(slice(max(int(i.min()) - k, 0), int(i.max()) + k + 1)
                    for i, k in zip(np.nonzero(inside), (s // 2 for s in kernel.shape)))
        means = ndimage.correlate(values[box], kernel, mode="nearest")
        out.append({"diameter_mm": float(sphere["diameter_mm"]), "rc_max": float(maximum) / truth,
                    "rc_mean": float(values[a50].mean()) / truth,
                    "rc_peak": float(means[inside[box]].max()) / truth})
    return out


def bands(recon: str) -> Optional[Dict[str, List[Tuple[float, float]]]]:
    """The EARL bands a preset is made to meet (None for "gauss")."""
    return {"earl1": EARL1_BANDS, "earl2": EARL2_BANDS}.get(recon)
