"""Per-lesion measurements: SUVmax, SUVpeak, SUVmean, SUVmin, SD, MTV, TLA, size and position.

SUVpeak is the highest mean SUV in a 1 mL sphere (radius 6.2035 mm) centred on a voxel of the
lesion (PERCIST: Wahl RL et al., J Nucl Med 2009;50 Suppl 1:122S; Boellaard R, J Nucl Med
2009;50 Suppl 1:11S). Each voxel counts with the fraction of its volume inside the sphere:
the fraction is 1 for voxels entirely inside, 0 for voxels entirely outside, and computed by
32 x 32 x 32 sub-voxel sampling for the voxels the sphere's surface crosses (weights good to
3e-5), so the sphere's volume is honoured exactly rather than as a set of whole voxels.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Dict, Optional, Tuple

import numpy as np
from scipy import ndimage

from netpet.quant.segment import LesionMask, ReferenceStats
from netpet.quant.volume import SUVVolume

PEAK_VOLUME_ML = 1.0
PEAK_RADIUS_MM = (3.0 * PEAK_VOLUME_ML * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
_SUBSAMPLES = 32

#: Units of every measurement NETPET reports (SUV is g/mL for bw/lbm/ibw SUVs, cm2/mL for bsa).
UNITS: Dict[str, str] = {
    "suv_max": "SUV", "suv_peak": "SUV", "suv_mean": "SUV", "suv_min": "SUV", "suv_sd": "SUV",
    "mtv_ml": "mL", "tla": "SUV x mL", "voxels": "count", "longest_diameter_mm": "mm",
    "centroid_r": "mm (RAS)", "centroid_a": "mm (RAS)", "centroid_s": "mm (RAS)", "tb_ratio": "ratio",
    "tl_ratio": "ratio", "tl_peak_ratio": "ratio", "liver_peak_sd": "SUV", "liver_suv_mean": "SUV", "liver_suv_sd": "SUV", "liver_suv_max": "SUV",
    "spleen_suv_mean": "SUV", "background_suv_mean": "SUV", "background_suv_sd": "SUV", "threshold_suv": "SUV",
}


@lru_cache(maxsize=16)
def peak_kernel(spacing_zyx: Tuple[float, float, float], radius_mm: float = PEAK_RADIUS_MM) -> np.ndarray:
    """Weights (sum = sphere volume / voxel volume) of the voxels around a centre voxel."""
    spacing = np.asarray(spacing_zyx, dtype=float)
    reach = np.ceil(radius_mm / spacing + 0.5).astype(int)
    axes = [np.arange(-r, r + 1) * d for r, d in zip(reach, spacing)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    half = spacing / 2.0
    # nearest and farthest point of each voxel from the centre
    near = np.sqrt(sum(np.maximum(np.abs(c) - h, 0.0) ** 2 for c, h in zip((z, y, x), half)))
    far = np.sqrt(sum((np.abs(c) + h) ** 2 for c, h in zip((z, y, x), half)))
    weights = np.where(far <= radius_mm, 1.0, 0.0)
    partial = (near < radius_mm) & (far > radius_mm)
    offsets = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES - 0.5
    sz, sy, sx = np.meshgrid(*(offsets * d for d in spacing), indexing="ij")
    for index in np.argwhere(partial):
        cz, cy, cx = (axes[a][index[a]] for a in range(3))
        inside = (cz + sz) ** 2 + (cy + sy) ** 2 + (cx + sx) ** 2 <= radius_mm ** 2
        weights[tuple(index)] = inside.mean()
    return weights


def suv_peak(volume: SUVVolume, lesion: LesionMask) -> Tuple[float, Tuple[int, int, int]]:
    """(SUVpeak, [z, y, x] of the sphere centre): the highest 1 mL sphere mean centred in the lesion."""
    kernel = peak_kernel(tuple(float(v) for v in volume.spacing_zyx))
    reach = [k // 2 for k in kernel.shape]
    low = [max(s.start - r, 0) for s, r in zip(lesion.box, reach)]
    high = [min(s.stop + r, n) for s, r, n in zip(lesion.box, reach, volume.shape)]
    values = volume.values[tuple(slice(a, b) for a, b in zip(low, high))].astype(np.float64)
    weights = np.ones_like(values)
    means = ndimage.correlate(values, kernel, mode="constant", cval=0.0)
    # near the image edge part of the sphere is outside: divide by the weight that is inside
    covered = ndimage.correlate(weights, kernel, mode="constant", cval=0.0)
    means /= covered
    inside = np.zeros(values.shape, dtype=bool)
    offset = [s.start - a for s, a in zip(lesion.box, low)]
    inside[tuple(slice(o, o + n) for o, n in zip(offset, lesion.mask.shape))] = lesion.mask
    candidates = np.where(inside, means, -np.inf)
    best = np.unravel_index(int(np.argmax(candidates)), candidates.shape)
    return float(means[best]), tuple(int(b + a) for b, a in zip(best, low))  # type: ignore[return-value]


def longest_diameter_mm(indices: np.ndarray, spacing_zyx: np.ndarray) -> float:
    """Largest distance between two voxel centres of the lesion (0 for one voxel)."""
    if len(indices) < 2:
        return 0.0
    points = indices * spacing_zyx
    if len(points) > 1500:
        from scipy.spatial import ConvexHull

        try:
            points = points[ConvexHull(points).vertices]
        except Exception:  # noqa: BLE001 - flat (coplanar) lesions: fall back on all points
            points = points[:: max(1, len(points) // 1500)]
    difference = points[:, None, :] - points[None, :, :]
    return float(np.sqrt((difference ** 2).sum(axis=-1)).max())


def measure(volume: SUVVolume, lesion: LesionMask, liver: Optional[ReferenceStats] = None,
            background: Optional[ReferenceStats] = None, spleen: Optional[ReferenceStats] = None) -> Dict[str, float]:
    """All measurements of a lesion (see :data:`UNITS` for their units).

    A lesion that is not separable (``lesion.status``) has no volume: its SUVmax is the hottest
    voxel and its SUVpeak the best 1 mL sphere within the 1 mL sphere at the click, its position
    the click; the volume, mean, TLA and diameter are NaN.
    """
    values = volume.values[lesion.box][lesion.mask].astype(np.float64)
    indices = lesion.indices()
    peak, peak_at = suv_peak(volume, lesion)
    out: Dict[str, float] = {"suv_max": float(values.max()), "suv_peak": peak}
    centroid = volume.index_to_ras(indices.mean(axis=0))
    if lesion.separable:
        suv_mean = float(values.mean())
        mtv = lesion.voxels * volume.voxel_ml
        out.update({
            "suv_mean": suv_mean, "suv_min": float(values.min()),
            "suv_sd": float(values.std(ddof=1)) if values.size > 1 else 0.0, "mtv_ml": mtv, "tla": suv_mean * mtv,
            "voxels": lesion.voxels, "longest_diameter_mm": longest_diameter_mm(indices, volume.spacing_zyx),
        })
    else:
        nan = float("nan")
        out.update({"suv_mean": nan, "suv_min": nan, "suv_sd": nan, "mtv_ml": nan, "tla": nan, "voxels": 0,
                    "longest_diameter_mm": nan})
    out.update({"centroid_r": centroid[0], "centroid_a": centroid[1], "centroid_s": centroid[2],
                "threshold_suv": lesion.threshold})
    if liver is not None:
        out.update({"liver_suv_mean": liver.mean, "liver_suv_sd": liver.sd, "liver_suv_max": liver.max,
                    "tl_ratio": out["suv_max"] / liver.mean if liver.mean > 0 else float("nan"),
                    "tl_peak_ratio": out["suv_peak"] / liver.mean if liver.mean > 0 else float("nan")})
        if liver.peak_sd is not None:
            out["liver_peak_sd"] = liver.peak_sd
    if background is not None:
        out.update({"background_suv_mean": background.mean, "background_suv_sd": background.sd,
                    "tb_ratio": out["suv_max"] / background.mean if background.mean > 0 else float("nan")})
    if spleen is not None:
        out["spleen_suv_mean"] = spleen.mean
    out["suv_peak_center_r"], out["suv_peak_center_a"], out["suv_peak_center_s"] = volume.index_to_ras(peak_at)
    return out
