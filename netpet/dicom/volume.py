"""Stack image planes into a 3D SimpleITK image in DICOM patient (LPS) geometry.

The planes (files or frames) are ordered along the slice normal (row x column direction
cosines), not by file name or InstanceNumber. Each plane's ImagePositionPatient, ImageOrientationPatient
and PixelSpacing must be usable numbers (finite; cosines orthonormal; spacing positive: PS3.3 C.7.6.2).
The stack is refused when it is not one regular volume: mixed orientations, matrix sizes or pixel
spacings, two planes at one position (dynamic or gated series), gaps (missing files) or a sheared
stack (gantry tilt). Positions that scanners round at bed joins are accepted when every slice lies
near an even grid (:data:`SPACING_TOLERANCE`), and the provenance says so. Every refusal is one
sentence naming the file, the tag and its value. PET (:mod:`netpet.dicom.convert`) and its CT/MR
partner (:mod:`netpet.dicom.image`) go through the same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pydicom
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
#: Direction cosines may miss unit length, and row and column may miss a right angle, by this much
#: (1e-3: an angle error of 0.06 degrees, 0.3 mm at 300 mm from the origin). Headers write cosines with
#: 4-6 decimals, whose rounding is 1e-4 or less; an all-zero or skewed orientation is far outside it.
ORTHONORMAL_TOLERANCE = 1e-3
#: What to do when a header value cannot be used.
REEXPORT = "re-export the series from the scanner or PACS"


@dataclass
class Geometry:
    """Where a volume lies: LPS origin (mm), spacing (x, y, z mm), direction (row-major 3x3)."""

    order: List[int]
    origin: Tuple[float, float, float]
    spacing: Tuple[float, float, float]
    direction: Tuple[float, ...]
    size: Tuple[int, int, int]
    warnings: List[str] = field(default_factory=list)


@dataclass
class Plane:
    """The geometry of one image plane of a CT or MR file (PET planes are :class:`PetFrame`)."""

    path: str
    position: Optional[Tuple[float, ...]]
    orientation: Optional[Tuple[float, ...]]
    pixel_spacing: Optional[Tuple[float, ...]]
    slice_thickness: Optional[float]
    rows: int
    columns: int

    @property
    def label(self) -> str:
        return self.path


def _fmt(values) -> str:
    """Numbers as a header shows them: ``[1, 0, 0, 0, 1, 0]``."""
    return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"


def _check_plane_values(frames: Sequence[PetFrame]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every plane's ImagePositionPatient, ImageOrientationPatient and PixelSpacing as numbers a volume can use.

    Rules (PS3.3 C.7.6.2 Image Plane module, C.7.6.2.1.1): the position is three finite mm values;
    the orientation is two direction cosines (row, column): unit vectors, and perpendicular since
    they are an image's row and column; the pixel spacing is two positive finite mm values. Any
    other value cannot place the image (NaN put it at the origin with a wrong spacing; 0 or a
    negative spacing stopped SimpleITK with a traceback), so it is refused, naming the file.

    Returns
    -------
    positions (n, 3), orientations (n, 6), spacings (n, 2), as float arrays.
    """
    for attribute, keyword, tag, count in (("position", "ImagePositionPatient (0020,0032)", 0x00200032, 3),
                                           ("orientation", "ImageOrientationPatient (0020,0037)", 0x00200037, 6),
                                           ("pixel_spacing", "PixelSpacing (0028,0030)", 0x00280030, 2)):
        for frame in frames:
            value = getattr(frame, attribute)
            if value is None or len(value) != count:
                raise DicomInputError(
                    f"{frame.label} lacks {keyword} (found {_found(frame, tag)}, where {count} numbers are needed), so the "
                    f"image cannot be placed in patient space; {REEXPORT}."
                )
    positions = np.asarray([f.position for f in frames], dtype=float)
    orientations = np.asarray([f.orientation for f in frames], dtype=float)
    spacings = np.asarray([f.pixel_spacing for f in frames], dtype=float)
    for values, keyword, what in ((positions, "ImagePositionPatient (0020,0032)", "three finite numbers (mm)"),
                                  (orientations, "ImageOrientationPatient (0020,0037)", "six finite direction cosines"),
                                  (spacings, "PixelSpacing (0028,0030)", "two finite numbers (mm)")):
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if bad.size:
            frame = frames[int(bad[0])]
            raise DicomInputError(
                f"{frame.label} has {keyword} {_fmt(values[bad[0]])}, not {what}, so the image cannot be placed in "
                f"patient space; correct the header or {REEXPORT}."
            )
    bad = np.flatnonzero((spacings <= 0).any(axis=1))
    if bad.size:
        frame = frames[int(bad[0])]
        raise DicomInputError(
            f"{frame.label} has PixelSpacing (0028,0030) {_fmt(spacings[bad[0]])}, but a pixel spacing is the distance "
            f"between pixel centres in mm (PS3.3 10.7.1.3), so it must be positive; correct the header or {REEXPORT}."
        )
    # Direction cosines are unit vectors, and an image's row and column are perpendicular. Values are
    # written with a few decimals (0.999848 for cos 1 deg), so ORTHONORMAL_TOLERANCE allows rounding; the
    # axes are then made exactly orthonormal. An all-zero or skewed orientation is refused: no axes can
    # be guessed from it.
    row, col = orientations[:, :3], orientations[:, 3:]
    row_norm, col_norm = np.linalg.norm(row, axis=1), np.linalg.norm(col, axis=1)
    cosine = np.einsum("ij,ij->i", row, col) / np.maximum(row_norm * col_norm, 1e-12)
    skewed = (np.abs(row_norm - 1) > ORTHONORMAL_TOLERANCE) | (np.abs(col_norm - 1) > ORTHONORMAL_TOLERANCE) | (
        np.abs(cosine) > ORTHONORMAL_TOLERANCE)
    bad = np.flatnonzero(skewed)
    if bad.size:
        i = int(bad[0])
        raise DicomInputError(
            f"{frames[i].label} has ImageOrientationPatient (0020,0037) {_fmt(orientations[i])}, whose row and column "
            f"are not perpendicular unit vectors (lengths {row_norm[i]:.4g} and {col_norm[i]:.4g}, cosine between them "
            f"{cosine[i]:.4g}; PS3.3 C.7.6.2.1.1), so the image axes are unknown; correct the header or {REEXPORT}."
        )
    return positions, orientations, spacings


def _found(frame, tag: int) -> str:
    """What a single-frame file holds at ``tag`` (read again: this is the error path), for the message."""
    if getattr(frame, "frame", None) is not None:  # a frame of a multi-frame file: in its functional groups
        return "missing or unreadable"
    try:
        ds = pydicom.dcmread(frame.path, stop_before_pixels=True, force=True, specific_tags=[tag])
        elem = ds.get_item(tag)
    except Exception:  # noqa: BLE001 - only the message depends on it
        return "missing or unreadable"
    value = getattr(elem, "value", None)
    if value is None or value == b"" or value == "":
        return "missing" if elem is None else "empty"
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1").strip(" \x00")
    return f"'{value}'"


def _orthonormal_axes(orientation: np.ndarray) -> np.ndarray:
    """Row, column and normal (rows of a 3x3) from near-orthonormal cosines (Gram-Schmidt)."""
    row = orientation[:3] / np.linalg.norm(orientation[:3])
    col = orientation[3:] - np.dot(orientation[3:], row) * row
    col = col / np.linalg.norm(col)
    return np.vstack([row, col, np.cross(row, col)])


def plane_geometry(frames: Sequence[PetFrame], label: str) -> Geometry:
    """Order planes along their normal and check they form one regular volume.

    Parameters
    ----------
    frames : sequence of PetFrame or Plane
        Anything with ``label``, ``position``, ``orientation``, ``pixel_spacing``,
        ``slice_thickness``, ``rows`` and ``columns``.
    label : str
        Names the series in errors.

    Raises
    ------
    DicomInputError
        When a plane's position, orientation or spacing is unusable (:func:`_check_plane_values`),
        or the planes are not one regular volume (see module docstring); one sentence naming the
        file, the tag and its value.
    """
    if not frames:
        raise DicomInputError(f"Series {label} has no image planes.")
    positions, orientations, spacings = _check_plane_values(frames)
    first = frames[0]
    orientation = orientations[0]
    for index, frame in enumerate(frames[1:], start=1):
        # One volume has one orientation (refused, not resampled: the planes of a scout, a second stack
        # or a reformat in one series are different images, not slices of this one).
        if np.max(np.abs(orientations[index] - orientation)) > ORIENTATION_TOLERANCE:
            raise DicomInputError(
                f"{frame.label} has ImageOrientationPatient (0020,0037) {_fmt(orientations[index])} but {first.label} "
                f"has {_fmt(orientation)}: series {label} mixes image orientations and is not one volume, so select "
                "the files of one stack."
            )
        if (frame.rows, frame.columns) != (first.rows, first.columns):
            raise DicomInputError(
                f"{frame.label} has Rows (0028,0010) x Columns (0028,0011) {frame.rows} x {frame.columns} but "
                f"{first.label} has {first.rows} x {first.columns}: series {label} mixes matrix sizes and is not one "
                "volume, so select the files of one stack."
            )
        if np.max(np.abs(spacings[index] - spacings[0])) > 1e-4:
            raise DicomInputError(
                f"{frame.label} has PixelSpacing (0028,0030) {_fmt(spacings[index])} but {first.label} has "
                f"{_fmt(spacings[0])}: series {label} mixes pixel spacings and is not one volume, so select the files "
                "of one stack."
            )
    axes = _orthonormal_axes(orientation)
    normal = axes[2]
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
                f"{a.label} and {b.label} have one ImagePositionPatient (0020,0032) {_fmt(positions[order[duplicates[0]]])}"
                f" along the slice normal: series {label} has two planes at one position, a dynamic, gated or duplicated "
                "series, not one static volume, so select one time frame or remove the duplicates."
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
                f"Series {label} is not evenly spaced: ImagePositionPatient (0020,0032) steps {steps[i]:.3f} mm between "
                f"{frames[order[i]].label} and {frames[order[i + 1]].label} against {median:.3f} mm elsewhere, and "
                f"{frames[order[worst]].label} lies {abs(residual[worst]):.2f} mm off an even grid (missing files?), so "
                "add the missing files or select one complete series."
            )
        spacing_z = float(spacing_z)
        if np.max(np.abs(steps - spacing_z)) > 0.01 * spacing_z:
            warnings.append(f"slice positions are rounded (steps {steps.min():.3f}-{steps.max():.3f} mm); every slice lies "
                            f"within {np.max(np.abs(residual)):.3f} mm of an even {spacing_z:.4f} mm grid, which is used")
        # Planes must lie along the normal of their orientation. A tilted gantry (CT GantryDetectorTilt
        # (0018,1120)) shifts each plane in-plane; a volume stored as an orthogonal grid would then
        # misplace every slice by tan(tilt) x its distance (27 mm at 100 mm for 15 degrees), silently.
        # Refused rather than resampled: resampling would interpolate (change) PET values, and a
        # tilt-corrected CT is a standard export option (or dcm2niix / Slicer's geometry regularisation).
        origin = positions[order[0]]
        expected = origin + np.outer(sorted_distance - sorted_distance[0], normal)
        shear = np.linalg.norm(positions[order] - expected, axis=1)
        if shear.max() > SHEAR_TOLERANCE_MM:
            worst = int(np.argmax(shear))
            raise DicomInputError(
                f"Series {label} is sheared: {frames[order[worst]].label} has ImagePositionPatient (0020,0032) "
                f"{_fmt(positions[order[worst]])}, {shear[worst]:.2f} mm in-plane off the slice normal through "
                f"{frames[order[0]].label} (gantry tilt?), and NETPET does not resample tilted stacks, so export the "
                "series without tilt (or tilt-corrected) first."
            )
    else:
        thickness = first.slice_thickness
        if thickness is not None and not (math.isfinite(thickness) and thickness > 0):
            raise DicomInputError(
                f"{first.label} is a single plane with SliceThickness (0018,0050) {thickness:g}, so its voxel depth is "
                f"unknown; correct the header or {REEXPORT}."
            )
        spacing_z = float(thickness or 1.0)
    direction = axes.T
    row_spacing, column_spacing = spacings[0]
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
