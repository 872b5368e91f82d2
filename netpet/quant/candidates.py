"""Whole-body candidate detection: every hot region above the liver threshold, for review.

A candidate is a connected region (26-connectivity) of voxels above the threshold: by default
the PERCIST threshold of measurability, 1.5 x liver SUVmean + 2 x liver SD (Wahl RL et al., J
Nucl Med 2009;50 Suppl 1:122S), or the liver SUVmean itself. Regions that lie mostly inside a
given mask of physiological organs (spleen, kidneys, bladder...) are set aside as
physiological. The reader accepts or rejects each remaining candidate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy import ndimage

from netpet.quant.segment import ReferenceStats
from netpet.quant.volume import QuantError, SUVVolume

RULES = ("percist", "liver-mean", "liver-max")


@dataclass
class Candidate:
    """One hot region: where, how hot, how big, and whether it is physiological."""

    candidate_id: str
    peak_r: float
    peak_a: float
    peak_s: float
    suv_max: float
    voxels: int
    volume_ml: float
    tl_ratio: float
    physiological: bool
    organ_fraction: float

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)

    @property
    def peak_ras(self) -> Tuple[float, float, float]:
        return (self.peak_r, self.peak_a, self.peak_s)


def threshold(liver: ReferenceStats, rule: str = "percist") -> float:
    if rule == "percist":
        return 1.5 * liver.mean + 2.0 * liver.sd
    if rule == "liver-mean":
        return liver.mean
    if rule == "liver-max":
        return liver.max
    raise QuantError(f"Unknown candidate rule {rule!r}; choose one of {', '.join(RULES)}.")


def detect(volume: SUVVolume, liver: ReferenceStats, rule: str = "percist", organs: Optional[np.ndarray] = None,
           min_voxels: int = 2, organ_share: float = 0.5) -> List[Candidate]:
    """Hot regions above the liver threshold, hottest first.

    Parameters
    ----------
    volume : SUVVolume
    liver : ReferenceStats of the liver reference
    rule : ``percist`` (default), ``liver-mean`` or ``liver-max``
    organs : bool [z, y, x] mask of physiological uptake (optional)
    min_voxels : smaller regions are noise and left out
    organ_share : a region with at least this share of its voxels in ``organs`` is physiological
    """
    cut = threshold(liver, rule)
    hot = volume.values > cut
    labels, count = ndimage.label(hot, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return []
    found = []
    # per-region statistics inside each region's bounding box (whole-volume labelled statistics
    # would visit every voxel once per statistic)
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        region = labels[box] == label
        size = int(region.sum())
        if size < min_voxels:
            continue
        values = np.where(region, volume.values[box], -np.inf)
        local = np.unravel_index(int(np.argmax(values)), values.shape)
        position = tuple(int(i + s.start) for i, s in zip(local, box))
        peak_value = float(values[local])
        share = float(organs[box][region].sum()) / size if organs is not None else 0.0
        r, a, s_ = volume.index_to_ras(position)
        found.append(Candidate("", round(r, 2), round(a, 2), round(s_, 2), peak_value, size, size * volume.voxel_ml,
                               peak_value / liver.mean, share >= organ_share, round(share, 3)))
    found.sort(key=lambda c: -c.suv_max)
    for number, candidate in enumerate(found):
        candidate.candidate_id = f"C{number + 1:03d}"
    return found
