"""The digital reference study: synthetic NET/TIO patients with known truth, as real DICOM.

``generate_study(out, patients, seed, ...)`` writes a deterministic study; ``generate_case(out,
name)`` one teaching case. See :mod:`netpet.phantom.study` for the output layout,
:mod:`netpet.phantom.anatomy` and :mod:`netpet.phantom.patients` for the model and its sources,
:mod:`netpet.phantom.render` for the imaging physics.
"""

from netpet.phantom.patients import MODALITIES, TRACERS
from netpet.phantom.study import generate_case, generate_study

__all__ = ["generate_study", "generate_case", "TRACERS", "MODALITIES"]
