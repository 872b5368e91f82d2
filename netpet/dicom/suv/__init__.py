"""Vendor-neutral SUV conversion of PET series, with provenance.

The package splits along the rules: :mod:`.record` (overrides and the provenance record),
:mod:`.bounds` (plausibility bounds, each with its source), :mod:`.base` (one conversion run),
:mod:`.patient` (weight, height, sex, dose), :mod:`.nuclide` (half-life), :mod:`.reference`
(decay reference time), :mod:`.injection` (administration time), :mod:`.units` (units and the
two conversion paths) and :mod:`.conversion` (the entry point).

The rules follow ``shared/reference/suv-computation-manual.txt`` (Vácha et al., OncoRay/HZDR,
CC BY 4.0) section by section, and the QIBA vendor-neutral pseudo-code it cites:

1. *Rescale slope and intercept* -- the slope is applied per slice (per frame); the intercept
   must be 0; a missing slope is refused.
2. *Units* -- BQML is activity concentration; GML (with SUVType, BW when empty) and CM2ML
   (SUVbsa) are already normalised and are re-normalised to the requested SUV type; CNTS uses
   the Philips activity concentration scale factor (7053,1009) first, else the Philips SUV
   scale factor (7053,1000), else counts / frame duration = CPS; CPS is converted when dose
   calibrated (DCAL in CorrectedImage) or when DoseCalibrationFactor is given; PROPCNTS,
   PROPCPS, 1CM and every other unit are refused.
3. *Weight* -- PatientWeight in kg; a value of 1000 or more is grams.
4. *Dose* -- RadionuclideTotalDose in Bq; a value below 10^4 is MBq.
5. *Decay correction* -- ADMIN: the dose as administered; START: the dose decayed to the
   reference time; NONE: each frame decayed to its own average-count-rate time.
   START reference time, in order: DecayCorrectionDateTime (0018,9701) when given; a vendor's
   private decay datetime (Siemens (0071,1022), GE (0009,100D)); Series Date/Time unless it is
   later than the earliest acquisition (then it was rewritten by post-processing); the time
   back-computed from each frame's acquisition time, frame reference time and duration
   (GE frame reference times count from the frame start, others from the average count-rate
   time); the earliest acquisition time as last resort (warned: QIBA notes it is wrong for
   multi-injection studies and cropped series).
6. *Administration time* -- RadiopharmaceuticalStartDateTime when it is consistent with the
   scan (from one hour after the reference back to max(24 h, 4 half-lives) before it);
   otherwise only its time of day, as with RadiopharmaceuticalStartTime: on the scan's date,
   or the day before when that time of day is more than an hour after the scan's (injection
   before midnight). The time of day alone is refused for nuclides with half-lives of 11.5 h
   or more (a multi-day uptake is then possible), as the manual's flowchart does.
7. *Half-life* -- RadionuclideHalfLife, else the coded radionuclide's reference half-life.

Every rule that fires is recorded in the :class:`Provenance`; everything that cannot be
decided raises :class:`~netpet.errors.SUVConversionError` naming the series, the tag and the
override that would fix it.
"""

from netpet.dicom.suv.bounds import (  # noqa: F401  (public constants)
    CROSS_CHECK_SUV_TOLERANCE, DOSE_RANGE_BQ, GRAMS_THRESHOLD, INJECTION_AFTER_REFERENCE_S, MBQ_PER_MCI,
    MBQ_THRESHOLD, MCI_LIKE_MBQ, REFERENCE_SPREAD_TOLERANCE_S, TIME_OF_DAY_MAX_HALF_LIFE_S, WEIGHT_RANGE_KG,
)
from netpet.dicom.suv.conversion import compute_suv_factors
from netpet.dicom.suv.record import (
    SUV_TYPES, Overrides, Provenance, average_count_rate_offset_s, describe_provenance, output_unit,
)

__all__ = [
    "SUV_TYPES", "Overrides", "Provenance", "compute_suv_factors", "describe_provenance", "output_unit",
    "average_count_rate_offset_s",
]
