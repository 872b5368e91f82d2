"""An SUV volume as the quantification code sees it: a [z, y, x] array with its geometry.

Coordinates handed in by users (seeds, reference points) are RAS millimetres, as in Slicer;
the volume converts them to voxel indices through its LPS geometry (netpet.geometry is the
one place that flips between the two).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from netpet.errors import NetpetError
from netpet.geometry import lps_to_ras, ras_to_lps

Box = Tuple[slice, slice, slice]


class QuantError(NetpetError):
    """A quantification request that cannot be carried out (seed outside the image, no lesion...)."""


@dataclass
class SUVVolume:
    """SUV values (float32, [z, y, x]) with the image geometry (LPS)."""

    values: np.ndarray
    origin: Tuple[float, float, float]
    spacing: Tuple[float, float, float]
    direction: Tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    name: str = "SUV volume"

    @classmethod
    def from_image(cls, image: sitk.Image, name: str = "SUV volume") -> "SUVVolume":
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise QuantError(f"{name} is not a 3D scalar image (dimension {image.GetDimension()}, "
                             f"{image.GetNumberOfComponentsPerPixel()} components per voxel).")
        values = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
        if values.size == 0:
            raise QuantError(f"{name} holds no voxels.")
        finite = np.isfinite(values)
        if not finite.any():
            raise QuantError(f"{name} holds no finite value (every voxel is NaN or infinite): the image is damaged; "
                             "convert the PET again.")
        if not (values[finite] > 0).any():
            raise QuantError(f"{name} holds no SUV above 0 (an empty image); give the PET's SUV image.")
        spacing = np.asarray(image.GetSpacing(), dtype=float)
        if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0)):
            raise QuantError(f"{name} has voxel spacing {tuple(image.GetSpacing())} mm; every spacing must be a "
                             "positive number.")
        if not np.all(np.isfinite(image.GetOrigin())) or not np.all(np.isfinite(image.GetDirection())) or \
                abs(np.linalg.det(np.asarray(image.GetDirection(), dtype=float).reshape(3, 3))) < 1e-6:
            raise QuantError(f"{name} has no usable geometry (origin {tuple(image.GetOrigin())}, direction "
                             f"{tuple(image.GetDirection())}); the image is damaged.")
        return cls(values, image.GetOrigin(), image.GetSpacing(), image.GetDirection(), name)

    def to_image(self, array: Optional[np.ndarray] = None) -> sitk.Image:
        image = sitk.GetImageFromArray(self.values if array is None else array)
        image.SetOrigin(self.origin)
        image.SetSpacing(self.spacing)
        image.SetDirection(self.direction)
        return image

    @property
    def shape(self) -> Tuple[int, int, int]:
        return self.values.shape  # type: ignore[return-value]

    @property
    def spacing_zyx(self) -> np.ndarray:
        return np.asarray(self.spacing[::-1], dtype=float)

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def _matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3) * np.asarray(self.spacing, dtype=float)

    def ras_to_index(self, ras: Sequence[float]) -> np.ndarray:
        """Continuous [z, y, x] index of a RAS point (mm)."""
        lps = np.asarray(ras_to_lps(ras), dtype=float)
        ijk = np.linalg.solve(self._matrix(), lps - np.asarray(self.origin, dtype=float))
        return ijk[::-1]

    def index_to_ras(self, zyx: Sequence[float]) -> Tuple[float, float, float]:
        ijk = np.asarray(zyx, dtype=float)[::-1]
        return lps_to_ras(self._matrix() @ ijk + np.asarray(self.origin, dtype=float))

    def contains_index(self, zyx: np.ndarray) -> bool:
        return bool(np.all(zyx >= -0.5) and np.all(zyx <= np.asarray(self.shape) - 0.5))

    def voxel_of(self, ras: Sequence[float], what: str = "point") -> Tuple[int, int, int]:
        """Nearest voxel of a RAS point; QuantError when it lies outside the image."""
        zyx = self.ras_to_index(ras)
        if not self.contains_index(zyx):
            shown = ",".join(f"{v:.1f}" if abs(v) < 1e6 else f"{v:.3g}" for v in (float(v) for v in ras))
            raise QuantError(f"The {what} R,A,S = {shown} mm lies outside {self.name}; "
                             "give a point inside the image (RAS millimetres, as Slicer shows them).")
        return tuple(int(v) for v in np.clip(np.rint(zyx), 0, np.asarray(self.shape) - 1))  # type: ignore[return-value]

    def box_around(self, zyx: Sequence[float], radius_mm: float) -> Box:
        """[z, y, x] slices of the voxels within ``radius_mm`` (per axis) of an index, clipped."""
        reach = np.ceil(radius_mm / self.spacing_zyx).astype(int)
        center = np.rint(np.asarray(zyx)).astype(int)
        low = np.maximum(center - reach, 0)
        high = np.minimum(center + reach + 1, self.shape)
        return tuple(slice(int(a), int(b)) for a, b in zip(low, high))  # type: ignore[return-value]

    def distance_mm(self, box: Box, zyx: Sequence[float]) -> np.ndarray:
        """Distance (mm) of every voxel centre of a box from an index position."""
        axes = [(np.arange(s.start, s.stop) - c) * d for s, c, d in zip(box, zyx, self.spacing_zyx)]
        z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
        return np.sqrt(z * z + y * y + x * x)
