"""Matching across the sessions of a patient: registration (this part), later lesion correspondence.

:mod:`netpet.match.registration` registers one session of a patient to another (rigid, SimpleITK,
Mattes mutual information), stores the transform as a standard ITK file beside the study table
with a JSON sidecar, reuses it when the inputs have not changed, and maps user (RAS) points from
the moving session to the fixed one.
"""

from netpet.match.registration import (
    RegistrationError,
    Registration,
    SessionImages,
    map_points_ras,
    read_registration,
    read_session,
    register_and_store,
    register_sessions,
    transform_path,
)

__all__ = [
    "RegistrationError", "Registration", "SessionImages", "map_points_ras", "read_registration", "read_session",
    "register_and_store", "register_sessions", "transform_path",
]
