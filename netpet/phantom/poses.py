"""Where the patient lay in each session: the known movement that registration must recover.

Every session images the same body model (the patient's body frame) moved rigidly onto the
scanner's table (:func:`netpet.phantom.render.body_to_scanner`). Written as ``truth/sessions.csv``,
one row per session, in RAS millimetres and degrees::

    p_session = R (p_body - c) + c + t
    R = R_S(rotation_z_deg) . R_R(rotation_x_deg) . R_A(rotation_y_deg)

with ``c`` = (pivot_r_mm, pivot_a_mm, pivot_s_mm), ``t`` = (shift_r_mm, shift_a_mm, shift_s_mm) and
R_R, R_A, R_S right-handed rotations about the R, A and S axes (first the A rotation, then R,
then S, as ITK's Euler3DTransform composes Z.X.Y). The renderer works in LPS with the generator's
angles (θx, θy, θz) and shift (tx, ty, tz); in RAS these are (-θx, -θy, θz) and (-tx, -ty, tz),
which is what the file holds. The patient's first session defines the body frame (zero rotation
and shift), so a point of session A maps to session B by ``T_B . T_A^-1`` (:func:`map_points`):
the transform registration of A (moving) to B (fixed) must recover.
"""

from __future__ import annotations

import csv
import math
from typing import Any, Dict, Iterable, List, Mapping

import numpy as np

from netpet.phantom.patients import Patient, Session

#: columns of truth/sessions.csv
SESSION_COLUMNS = ["patient_id", "session_id", "tracer", "modality", "time_point", "days_from_baseline",
                   "rotation_x_deg", "rotation_y_deg", "rotation_z_deg", "shift_r_mm", "shift_a_mm", "shift_s_mm",
                   "pivot_r_mm", "pivot_a_mm", "pivot_s_mm"]


def _zero(value: float) -> float:
    return float(value) + 0.0  # no "-0.0" in the table


def pose_row(patient: Patient, session: Session) -> Dict[str, Any]:
    """The sessions.csv row of a session (RAS, see the module docstring)."""
    from netpet.phantom.render import pivot

    tx, ty, tz = session.shift_mm
    ax, ay, az = session.rotation_deg
    c = pivot(patient)
    return {"patient_id": patient.patient_id, "session_id": session.session_id, "tracer": session.tracer,
            "modality": session.modality, "time_point": session.time_point,
            "days_from_baseline": session.days_from_baseline,
            "rotation_x_deg": _zero(round(-ax, 6)), "rotation_y_deg": _zero(round(-ay, 6)),
            "rotation_z_deg": _zero(round(az, 6)), "shift_r_mm": _zero(round(-tx, 6)),
            "shift_a_mm": _zero(round(-ty, 6)), "shift_s_mm": _zero(round(tz, 6)),
            "pivot_r_mm": _zero(round(-c[0], 6)), "pivot_a_mm": _zero(round(-c[1], 6)), "pivot_s_mm": _zero(round(c[2], 6))}


def _rotation(axis: int, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def pose_matrix(row: Mapping[str, Any]) -> np.ndarray:
    """The 4 x 4 RAS matrix body frame -> session of a sessions.csv row (values as numbers or text)."""
    value = {k: float(row[k]) for k in SESSION_COLUMNS[6:]}
    rotation = (_rotation(2, value["rotation_z_deg"]) @ _rotation(0, value["rotation_x_deg"])
                @ _rotation(1, value["rotation_y_deg"]))
    center = np.array([value["pivot_r_mm"], value["pivot_a_mm"], value["pivot_s_mm"]])
    shift = np.array([value["shift_r_mm"], value["shift_a_mm"], value["shift_s_mm"]])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = center + shift - rotation @ center
    return matrix


def map_points(moving: Mapping[str, Any], fixed: Mapping[str, Any], points_ras: Iterable) -> np.ndarray:
    """RAS points of the ``moving`` session (its sessions.csv row) in the ``fixed`` session of the same patient."""
    points = np.atleast_2d(np.asarray(list(points_ras), dtype=float))
    transform = pose_matrix(fixed) @ np.linalg.inv(pose_matrix(moving))
    return points @ transform[:3, :3].T + transform[:3, 3]


def read_sessions(path: str) -> List[Dict[str, str]]:
    """The rows of a study's truth/sessions.csv."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
