"""Matching across the sessions of a patient: registration and lesion correspondence.

:mod:`netpet.match.registration` registers one session of a patient to another (rigid, SimpleITK,
Mattes mutual information), stores the transform as a standard ITK file beside the study table
with a JSON sidecar, reuses it when the inputs have not changed, and maps user (RAS) points between
the sessions. :mod:`netpet.match.correspondence` matches the study table's findings to the reference
lesions by location (optimal assignment within a gate tied to lesion size and registration error),
tracks lesions across sessions and writes the correspondence table.
"""

from netpet.match.correspondence import (
    CorrespondenceError,
    MissingRegistrationError,
    match_study,
    read_correspondence,
    read_locations,
    summarise,
    write_correspondence,
)
from netpet.match.registration import (
    REGISTRATION_ERROR_MM,
    RegistrationError,
    Registration,
    SessionImages,
    map_points_ras,
    read_registration,
    read_session,
    register_and_store,
    register_sessions,
    stored_registration,
    transform_path,
)

__all__ = [
    "CorrespondenceError", "MissingRegistrationError", "REGISTRATION_ERROR_MM", "RegistrationError", "Registration",
    "SessionImages", "map_points_ras", "match_study", "read_correspondence", "read_locations", "read_registration",
    "read_session", "register_and_store", "register_sessions", "stored_registration", "summarise", "transform_path", "write_correspondence",
]
