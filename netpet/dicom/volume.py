"""Stack image planes into a 3D SimpleITK image in DICOM patient (LPS) geometry.

The planes (files or frames) are ordered along the slice normal (row x column direction
cosines), not by file name or InstanceNumber. The stack is refused when it is not one regular
volume: mixed orientations or matrix sizes, two planes at one position (dynamic or gated
series), gaps (missing files) or a sheared stack (gantry tilt). Positions that scanners round at
bed joins are accepted when every slice lies near an even grid (:data:`SPACING_TOLERANCE`), and
the provenance says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from netpet.dicom.pet_header import PetFrame
from netpet.errors import DicomInputError

#: Orientation cosines may differ by this much between planes of one volume.
ORIENTATION_TOLERANCE = 1e-4
#: Every slice must lie within this fraction of the slice spacing of an even grid fitted to the
#: positions (least squares). Scanners round positions at bed joins (a GE Discovery ST whole-body
#: PET: steps of 3.19/3.27/3.29 mm, every slice within 0.04 mm of an even 3.27 mm grid, 1.2 %); a
#: missing slice leaves residuals of up to half a spacing and is still refused. 3 % of a 3-4 mm
#: spacing (0.1 mm) is far below the PET's resolution.
SPACING_TOLERANCE = 0.03
#: In-plane shift allowed between consecutive planes, mm.
SHEAR_TOLERANCE_MM = 0.05


@dataclass
class Geometry:
    """Where a volume lies: LPS origin (mm), spacing (x, y, z mm), direction (row-major 3x3)."""

    order: List[int]
    origin: Tuple[float, float, float]
    spacing: Tuple[float, float, float]
    direction: Tuple[float, ...]
    size: Tuple[int, int, int]
    warnings: List[str] = field(default_factory=list)


def plane_geometry(frames: Sequence[PetFrame], label: str) -> Geometry:
    """Order planes along their normal and check they form one regular volume.

    Parameters
    ----------
    frames : sequence of PetFrame
    label : str
        Names the series in errors.

    Raises
    ------
    DicomInputError
        When the planes are not one regular volume (see module docstring).
    """
    if not frames:
        raise DicomInputError(f"Series {label} has no image planes.")
    missing = [f for f in frames if f.position is None or f.orientation is None or f.pixel_spacing is None]
    if missing:
        raise DicomInputError(
            f"Series {label}: {missing[0].label} lacks ImagePositionPatient, ImageOrientationPatient or "
            "PixelSpacing, so the volume cannot be placed in patient space; convert the original export."
        )
    first = frames[0]
    orientation = np.asarray(first.orientation, dtype=float)
    for frame in frames[1:]:
        if np.max(np.abs(np.asarray(frame.orientation) - orientation)) > ORIENTATION_TOLERANCE:
            raise DicomInputError(
                f"Series {label} mixes image orientations ({first.label} vs {frame.label}); "
                "it is not one volume."
            )
        if (frame.rows, frame.columns) != (first.rows, first.columns):
            raise DicomInputError(
                f"Series {label} mixes matrix sizes ({first.rows}x{first.columns} in {first.label}, "
                f"{frame.rows}x{frame.columns} in {frame.label}); it is not one volume."
            )
        if np.max(np.abs(np.asarray(frame.pixel_spacing) - np.asarray(first.pixel_spacing))) > 1e-4:
            raise DicomInputError(
                f"Series {label} mixes pixel spacings ({first.label} vs {frame.label}); it is not one volume."
            )
    row = orientation[:3] / np.linalg.norm(orientation[:3])
    col = orientation[3:] / np.linalg.norm(orientation[3:])
    normal = np.cross(row, col)
    positions = np.asarray([f.position for f in frames], dtype=float)
    distance = positions @ normal
    order = list(np.argsort(distance, kind="stable"))
    sorted_distance = distance[order]
    warnings: List[str] = []
    if len(frames) > 1:
        steps = np.diff(sorted_distance)
        duplicates = np.flatnonzero(steps < 1e-3)
        if duplicates.size:
            a, b = frames[order[duplicates[0]]], frames[order[duplicates[0] + 1]]
            raise DicomInputError(
                f"Series {label} has two planes at one position ({a.label} and {b.label}): a dynamic, gated or "
                "duplicated series, not one static volume; select one time frame or remove the duplicates."
            )
        # an even grid fitted to the positions: d_k = d_0 + k x spacing (least squares)
        k = np.arange(len(frames), dtype=float)
        spacing_z, start = np.polyfit(k, sorted_distance, 1)
        residual = sorted_distance - (start + k * spacing_z)
        worst = int(np.argmax(np.abs(residual)))
        if abs(residual[worst]) > SPACING_TOLERANCE * spacing_z:
            median = float(np.median(steps))
            i = int(np.argmax(np.abs(steps - median)))
            raise DicomInputError(
                f"Series {label} is not evenly spaced: {steps[i]:.3f} mm between {frames[order[i]].label} and "
                f"{frames[order[i + 1]].label} against {median:.3f} mm elsewhere, and {frames[order[worst]].label} lies "
                f"{abs(residual[worst]):.2f} mm off an even grid (missing files?)."
            )
        spacing_z = float(spacing_z)
        if np.max(np.abs(steps - spacing_z)) > 0.01 * spacing_z:
            warnings.append(f"slice positions are rounded (steps {steps.min():.3f}-{steps.max():.3f} mm); every slice lies "
                            f"within {np.max(np.abs(residual)):.3f} mm of an even {spacing_z:.4f} mm grid, which is used")
        origin = positions[order[0]]
        expected = origin + np.outer(sorted_distance - sorted_distance[0], normal)
        shear = np.linalg.norm(positions[order] - expected, axis=1)
        if shear.max() > SHEAR_TOLERANCE_MM:
            worst = int(np.argmax(shear))
            raise DicomInputError(
                f"Series {label} is sheared: {frames[order[worst]].label} is shifted {shear[worst]:.2f} mm "
                "in-plane (gantry tilt?); NETPET does not resample tilted stacks."
            )
    else:
        spacing_z = float(first.slice_thickness or 1.0)
    direction = np.column_stack([row, col, normal])
    row_spacing, column_spacing = first.pixel_spacing
    return Geometry(
        order=[int(i) for i in order],
        origin=tuple(float(v) for v in positions[order[0]]),
        spacing=(float(column_spacing), float(row_spacing), spacing_z),
        direction=tuple(float(v) for v in direction.ravel()),
        size=(first.columns, first.rows, len(frames)),
        warnings=warnings,
    )


def to_image(array_zyx: np.ndarray, geometry: Geometry) -> sitk.Image:
    """A SimpleITK image from a (z, y, x) array already in ``geometry.order``."""
    image = sitk.GetImageFromArray(array_zyx, isVector=False)
    image.SetOrigin(geometry.origin)
    image.SetSpacing(geometry.spacing)
    image.SetDirection(geometry.direction)
    return image


def scaled_stack(planes: Sequence[np.ndarray], scales: np.ndarray, geometry: Geometry,
                 out: Optional[np.ndarray] = None) -> np.ndarray:
    """Stack planes in geometry order as float32, each multiplied by its scale."""
    nz = len(geometry.order)
    ny, nx = geometry.size[1], geometry.size[0]
    if out is None:
        out = np.empty((nz, ny, nx), dtype=np.float32)
    for z, index in enumerate(geometry.order):
        np.multiply(planes[index], np.float32(scales[index]), out=out[z], casting="unsafe")
    return out
