"""The digital reference study: synthetic NET/TIO patients with known truth, as real DICOM.

``generate_study(out, patients, seed, ...)`` writes a deterministic study (options
``distant_sites``: the staging design of :mod:`netpet.phantom.stages`; ``follow_up``: the FU1
time point of :mod:`netpet.phantom.followup`); ``generate_case(out, name)`` one teaching case.
See :mod:`netpet.phantom.study` for the output layout, :mod:`netpet.phantom.anatomy` and
:mod:`netpet.phantom.patients` for the model and its sources, :mod:`netpet.phantom.render` for the
imaging physics and :mod:`netpet.phantom.poses` for the patient's pose per session (the movement
registration must recover: ``map_points`` maps RAS points between two sessions' truth rows).
"""

from netpet.phantom.patients import MODALITIES, TRACERS
from netpet.phantom.poses import map_points, read_sessions
from netpet.phantom.study import generate_case, generate_study

__all__ = ["generate_study", "generate_case", "map_points", "read_sessions", "TRACERS", "MODALITIES"]
