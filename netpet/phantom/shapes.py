"""Analytic shapes for the digital reference study, rasterised on axis-aligned grids.

Shapes live in the *body frame*: LPS millimetres with x = 0 on the midline (+ towards the
patient's left), y = 0 in the mid-coronal plane of the torso (+ posterior) and z = 0 at the
vertex (+ superior, so the body lies at negative z). Every shape can say which points it
contains and gives an axis-aligned bounding box, so rasterising costs only the voxels near
it. Fractional occupancy (for partial-volume-correct small lesions) is computed by
supersampling each voxel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

Box = Tuple[np.ndarray, np.ndarray]  # (low corner, high corner), mm


class Shape(ABC):
    """Base class: a region of the body frame."""

    @abstractmethod
    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Boolean array: which points lie inside; x, y, z (mm) are mutually broadcastable."""

    @abstractmethod
    def bbox(self) -> Box:
        """Axis-aligned (low, high) corners enclosing the shape, mm."""


@dataclass
class Ellipsoid(Shape):
    """Axis-aligned ellipsoid, optionally rotated about z by ``yaw_deg``."""

    center: Tuple[float, float, float]
    radii: Tuple[float, float, float]
    yaw_deg: float = 0.0

    def contains(self, x, y, z):
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        if self.yaw_deg:
            c, s = np.cos(np.radians(self.yaw_deg)), np.sin(np.radians(self.yaw_deg))
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        rx, ry, rz = self.radii
        return (dx / rx) ** 2 + (dy / ry) ** 2 + (dz / rz) ** 2 <= 1.0

    def bbox(self) -> Box:
        c, r = np.asarray(self.center, dtype=float), np.asarray(self.radii, dtype=float)
        if self.yaw_deg:
            reach = max(r[0], r[1])
            r = np.array([reach, reach, r[2]])
        return c - r, c + r

    @property
    def volume_ml(self) -> float:
        return 4.0 / 3.0 * np.pi * float(np.prod(self.radii)) / 1000.0


@dataclass
class Capsule(Shape):
    """Points within ``radius`` of the segment a-b (a tube with round ends)."""

    a: Tuple[float, float, float]
    b: Tuple[float, float, float]
    radius: float

    def contains(self, x, y, z):
        ax, ay, az = self.a
        ux, uy, uz = (self.b[0] - ax, self.b[1] - ay, self.b[2] - az)
        length_sq = ux * ux + uy * uy + uz * uz
        px, py, pz = x - ax, y - ay, z - az
        t = np.clip((px * ux + py * uy + pz * uz) / length_sq, 0.0, 1.0)
        return (px - t * ux) ** 2 + (py - t * uy) ** 2 + (pz - t * uz) ** 2 <= self.radius ** 2

    def bbox(self) -> Box:
        a, b = np.asarray(self.a, dtype=float), np.asarray(self.b, dtype=float)
        return np.minimum(a, b) - self.radius, np.maximum(a, b) + self.radius


@dataclass
class Tube(Shape):
    """A tube along a polyline: the union of capsules between consecutive points."""

    points_mm: Sequence[Tuple[float, float, float]]
    radius: float

    def parts(self) -> List[Shape]:
        return [Capsule(a, b, self.radius) for a, b in zip(self.points_mm[:-1], self.points_mm[1:])]

    def contains(self, x, y, z):
        inside = None
        for capsule in self.parts():
            part = capsule.contains(x, y, z)
            inside = part if inside is None else inside | part
        return inside

    def bbox(self) -> Box:
        boxes = [c.bbox() for c in self.parts()]
        return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


@dataclass
class ProfileCylinder(Shape):
    """An elliptic cylinder along z whose centre and half-axes vary linearly between knots.

    ``knots`` are (z, cx, cy, ax, ay): at height z the cross-section is the ellipse centred at
    (cx, cy) with half-axes ax (left-right) and ay (anterior-posterior); ``inset`` shrinks
    every half-axis (to make the inner surface of a layer).
    """

    knots: Sequence[Tuple[float, float, float, float, float]]
    inset: float = 0.0

    def contains(self, x, y, z):
        k = np.asarray(sorted(self.knots), dtype=np.float64)
        cx, cy, ax, ay = (np.interp(z, k[:, 0], k[:, i], left=np.nan, right=np.nan) for i in range(1, 5))
        ax = ax - self.inset
        ay = ay - self.inset
        with np.errstate(invalid="ignore", divide="ignore"):
            inside = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0
        return inside & (ax > 0) & (ay > 0)

    def bbox(self) -> Box:
        k = np.asarray(self.knots, dtype=float)
        low = np.array([np.min(k[:, 1] - k[:, 3]), np.min(k[:, 2] - k[:, 4]), k[:, 0].min()])
        high = np.array([np.max(k[:, 1] + k[:, 3]), np.max(k[:, 2] + k[:, 4]), k[:, 0].max()])
        return low, high


@dataclass
class Union(Shape):
    shapes: Sequence[Shape]

    def parts(self) -> List[Shape]:
        return list(self.shapes)

    def contains(self, x, y, z):
        inside = None
        for part in self.shapes:
            got = part.contains(x, y, z)
            inside = got if inside is None else inside | got
        return inside

    def bbox(self) -> Box:
        boxes = [p.bbox() for p in self.shapes]
        return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


@dataclass
class Grid:
    """An axis-aligned grid in the body frame: origin (mm, centre of voxel 0), spacing (x, y, z mm)
    and size (nx, ny, nz); arrays on it are indexed [z, y, x]."""

    origin: Tuple[float, float, float]
    spacing: Tuple[float, float, float]
    size: Tuple[int, int, int]

    def index_box(self, box: Box, margin: int = 1) -> Optional[Tuple[slice, slice, slice]]:
        """The [z, y, x] slices of voxels whose centres may fall in ``box`` (None when outside)."""
        low = np.floor((np.asarray(box[0]) - self.origin) / self.spacing).astype(int) - margin
        high = np.ceil((np.asarray(box[1]) - self.origin) / self.spacing).astype(int) + margin + 1
        low = np.maximum(low, 0)
        high = np.minimum(high, self.size)
        if np.any(high <= low):
            return None
        return (slice(low[2], high[2]), slice(low[1], high[1]), slice(low[0], high[0]))

    def axes(self, box: Tuple[slice, slice, slice], offset=(0.0, 0.0, 0.0)):
        """Voxel-centre coordinates (+ offset, in voxels) of a [z, y, x] box as broadcastable
        x (1, 1, nx), y (1, ny, 1), z (nz, 1, 1) float32 arrays, mm."""
        zs = self.origin[2] + (np.arange(box[0].start, box[0].stop) + offset[2]) * self.spacing[2]
        ys = self.origin[1] + (np.arange(box[1].start, box[1].stop) + offset[1]) * self.spacing[1]
        xs = self.origin[0] + (np.arange(box[2].start, box[2].stop) + offset[0]) * self.spacing[0]
        return (xs.astype(np.float32)[None, None, :], ys.astype(np.float32)[None, :, None],
                zs.astype(np.float32)[:, None, None])


def _pieces(shape: Shape) -> List[Shape]:
    """A union's or tube's parts, painted one by one so each costs only its own box."""
    parts = getattr(shape, "parts", None)
    return [p for part in parts() for p in _pieces(part)] if parts else [shape]


def paint(labels: np.ndarray, grid: Grid, shape: Shape, value: int, chunk: int = 32,
          only_inside: Optional[Sequence[int]] = None) -> None:
    """Set ``labels`` to ``value`` at voxel centres inside ``shape`` (z-chunks bound memory).

    With ``only_inside``, only voxels currently holding one of those labels are painted.
    """
    for piece in _pieces(shape):
        box = grid.index_box(piece.bbox())
        if box is None:
            continue
        for z0 in range(box[0].start, box[0].stop, chunk):
            sub = (slice(z0, min(z0 + chunk, box[0].stop)), box[1], box[2])
            inside = np.broadcast_to(piece.contains(*grid.axes(sub)), labels[sub].shape)
            if only_inside is not None:
                inside = inside & np.isin(labels[sub], only_inside)
            labels[sub][inside] = value


def occupancy(grid: Grid, shape: Shape, samples: int = 4) -> Tuple[Optional[Tuple[slice, slice, slice]], np.ndarray]:
    """Fraction of each voxel inside ``shape`` (samples^3 points per voxel), over its box."""
    box = grid.index_box(shape.bbox())
    if box is None:
        return None, np.zeros((0, 0, 0), dtype=np.float32)
    shape_zyx = tuple(s.stop - s.start for s in box)
    total = np.zeros(shape_zyx, dtype=np.float32)
    steps = (np.arange(samples) + 0.5) / samples - 0.5
    for dz in steps:
        for dy in steps:
            for dx in steps:
                total += np.broadcast_to(shape.contains(*grid.axes(box, (dx, dy, dz))), shape_zyx)
    return box, total / samples ** 3


@dataclass
class Structure:
    """A named anatomical structure: shape and label, painted in list order."""

    name: str
    label: int
    shape: Shape
    only_inside: Optional[Sequence[int]] = field(default=None)
