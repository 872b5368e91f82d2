"""The one place where NETPET converts between LPS and RAS coordinates.

The core works in ITK/DICOM LPS physical millimetres. Slicer, and every user-facing
coordinate (command-line seeds, table centroids), is RAS. RAS = (-L, -P, S) componentwise.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

_FLIP = np.array([-1.0, -1.0, 1.0])


def lps_to_ras(point: Sequence[float]) -> Tuple[float, float, float]:
    """Convert one LPS point (mm) to RAS (mm)."""
    p = np.asarray(point, dtype=float) * _FLIP
    return (float(p[0]), float(p[1]), float(p[2]))


def ras_to_lps(point: Sequence[float]) -> Tuple[float, float, float]:
    """Convert one RAS point (mm) to LPS (mm); the flip is its own inverse."""
    return lps_to_ras(point)


def lps_to_ras_array(points: np.ndarray) -> np.ndarray:
    """Convert an (N, 3) array of LPS points (mm) to RAS (mm)."""
    return np.asarray(points, dtype=float) * _FLIP


def ras_to_lps_array(points: np.ndarray) -> np.ndarray:
    """Convert an (N, 3) array of RAS points (mm) to LPS (mm); the flip is its own inverse."""
    return lps_to_ras_array(points)
