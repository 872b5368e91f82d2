"""The entry point: every rule module combined into one conversion."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from netpet.dicom.pet_header import PetHeader
from netpet.dicom.suv.injection import InjectionTime
from netpet.dicom.suv.nuclide import NuclideRules
from netpet.dicom.suv.patient import PatientRules
from netpet.dicom.suv.record import Overrides, Provenance
from netpet.dicom.suv.reference import DecayReference
from netpet.dicom.suv.units import UnitRules


class _Conversion(UnitRules, DecayReference, InjectionTime, NuclideRules, PatientRules):
    """One run of every rule over one series header."""


def compute_suv_factors(header: PetHeader, suv_type: str = "bw",
                        overrides: Optional[Overrides] = None) -> Tuple[np.ndarray, Provenance]:
    """Per-frame factors that turn rescaled pixel values into SUV, with their provenance.

    Parameters
    ----------
    header : PetHeader
        The series as read by :func:`netpet.dicom.pet_header.read_pet_header`.
    suv_type : {"bw", "lbm", "lbmjanma", "bsa", "ibw"}
        SUV normalisation: body weight, lean body mass (James 128 / Janmahasatian), body
        surface area (Du Bois) or ideal body weight.
    overrides : Overrides, optional
        User values replacing header values.

    Returns
    -------
    factors : numpy.ndarray
        One float64 per frame, in ``header.frames`` order: SUV (g/mL, or cm2/mL for BSA) =
        (stored value x RescaleSlope) x factor.
    provenance : Provenance

    Raises
    ------
    SUVConversionError
        When a needed value is missing or contradictory; the message names the series, the
        tag and the override that would fix it.
    """
    conversion = _Conversion(header, suv_type, overrides or Overrides())
    factors = np.asarray(conversion.run(), dtype=float)
    conversion.check_scaling(factors)
    p = conversion.p
    if np.ptp(factors) == 0:
        p.factor = float(factors[0])
    else:
        p.factor_per_frame = [float(v) for v in factors]
    return factors, p

