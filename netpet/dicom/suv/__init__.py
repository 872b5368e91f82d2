"""Vendor-neutral SUV conversion of PET series, with provenance.

The package splits along the rules: :mod:`.record` (overrides and the provenance record),
:mod:`.bounds` (plausibility bounds, each with its source), :mod:`.base` (one conversion run),
:mod:`.patient` (weight, height, sex, dose), :mod:`.nuclide` (half-life), :mod:`.reference`
(decay reference time), :mod:`.injection` (administration time), :mod:`.units` (units and the
two conversion paths) and :mod:`.conversion` (the entry point).

The rules follow ``shared/reference/suv-computation-manual.txt`` (Vácha et al., OncoRay/HZDR,
CC BY 4.0) section by section, and the QIBA vendor-neutral pseudo-code it cites:

1. *Rescale slope and intercept* -- the slope is applied per slice (per frame); the intercept
   must be 0; a missing, non-finite or non-positive slope is refused, and so is one whose stored
   unit would exceed the whole dose in one voxel or whose full range stays under SUV 1e-6.
2. *Units* -- BQML is activity concentration; GML (with SUVType, BW when empty) and CM2ML
   (SUVbsa) are already normalised and are re-normalised to the requested SUV type; CNTS uses
   the Philips activity concentration scale factor (7053,1009) first, else the Philips SUV
   scale factor (7053,1000), else counts / frame duration = CPS; CPS is converted when dose
   calibrated (DCAL in CorrectedImage) or when DoseCalibrationFactor is given; PROPCNTS,
   PROPCPS, 1CM and every other unit are refused, naming the file's own scanner. A quantitative
   SPECT stored as PT (a nuclide without positrons, a SPECT camera, "SPECT" in the description)
   is labelled SPECT and converted only from Bq/mL or stored SUV.
3. *Weight* -- PatientWeight in kg; a value of 1000 or more is grams; 2-350 kg. *Height* 0.3-2.8 m.
4. *Dose* -- RadionuclideTotalDose in Bq; a value below 10^4 is MBq; 10-2000 MBq (diagnostic),
   10-15000 MBq (Lu-177, I-131, Y-90 therapy); a value that reads as millicuries is named so.
5. *Decay correction* -- ADMIN: the dose as administered; START: the dose decayed to the
   reference time; NONE: each frame decayed to its own average-count-rate time. START reference
   candidates (:mod:`.reference`): DecayCorrectionDateTime (0018,9701); the vendors' private
   datetimes (Siemens (0071,1022), GE (0009,100D)); Series Date/Time; the time back-computed
   from AcquisitionTime, FrameReferenceTime and ActualFrameDuration; the time DecayFactor
   (0054,1321) implies; the earliest acquisition (QIBA's last resort, warned). The first one
   trusted wins: none may lie after the earliest acquisition start (by more than 1 s), and none
   may disagree with a credible DecayFactor by more than 1 % in SUV. DecayFactor also settles
   the FrameReferenceTime convention (to the average count-rate time, or from the frame start
   as GE writes it). The rules record every candidate's verdict; warnings only where the SUV
   effect exceeds 1 % and both sides are credible.
6. *Administration time* (:mod:`.injection`) -- RadiopharmaceuticalStartDateTime against
   RadiopharmaceuticalStartTime: the one giving a plausible uptake wins, both plausible and
   more than 1 % apart in SUV is refused; a DateTime whose date is implausible keeps only its
   time of day, placed on the reference date or the day before. The time of day alone is
   refused for half-lives of 11.5 h or more. An uptake of more than 5 half-lives, or an
   injection over an hour after the reference, is refused unless --injection-time confirms it.
7. *Half-life* (:mod:`.nuclide`) -- RadionuclideHalfLife, checked against the nuclide the header
   names (refused beyond 3 %, minutes and hours hinted), else that nuclide's reference value.

NaN and infinite values are refused wherever they enter, overrides included; bounds and their
sources are in :mod:`.bounds`. An override outside a bound is used with a warning.

Every rule that fires is recorded in the :class:`Provenance`; everything that cannot be
decided raises :class:`~netpet.errors.SUVConversionError` naming the series, the tag and the
override that would fix it.
"""

from netpet.dicom.suv.bounds import (  # noqa: F401  (public constants)
    CROSS_CHECK_SUV_TOLERANCE, DOSE_RANGE_BQ, GRAMS_THRESHOLD, HEIGHT_RANGE_M, INJECTION_AFTER_REFERENCE_S, MBQ_PER_MCI,
    MBQ_THRESHOLD, MCI_LIKE_MBQ, REFERENCE_SPREAD_TOLERANCE_S, SUV_AGREEMENT, SUV_WARNING, THERAPY_DOSE_RANGE_BQ,
    TIME_OF_DAY_MAX_HALF_LIFE_S, TIME_RESOLUTION_S, UPTAKE_MAX_HALF_LIVES, WEIGHT_RANGE_KG,
)
from netpet.dicom.suv.conversion import compute_suv_factors
from netpet.dicom.suv.record import (
    SUV_TYPES, Overrides, Provenance, average_count_rate_offset_s, describe_provenance, output_unit,
)

__all__ = [
    "SUV_TYPES", "Overrides", "Provenance", "compute_suv_factors", "describe_provenance", "output_unit",
    "average_count_rate_offset_s",
]
