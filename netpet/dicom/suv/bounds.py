"""Plausibility bounds and tolerances of the SUV rules, each with its source.

A header value outside its bound is refused, in one sentence naming the series, the tag, the value
and the override that confirms it; an override outside the bound is used as given, with a warning
(the override is how a reader confirms what the check questions). NaN and infinite values are
refused everywhere, overrides included. Times are compared through the SUV effect of their
difference (SUV_AGREEMENT, SUV_WARNING), so that a threshold means the same for every nuclide.
"""

from __future__ import annotations

#: Dose values below this are megabecquerels (manual: MBq doses sit near 4e2, Bq near 4e8).
MBQ_THRESHOLD = 1.0e4
#: Weight values of this or more are grams (manual, section "Patient's weight").
GRAMS_THRESHOLD = 1000.0
#: Administered activities a diagnostic PET can have, Bq: 10 MBq (below the paediatric minimum of
#: EANM's dosage card for FDG, 26 MBq, and the SSTR-PET guideline's 14 MBq: Bozkurt MF et al., EJNMMI
#: 2017;44:1588) to 2 GBq (twice the largest adult activities of the FDG and SSTR guidelines,
#: Boellaard R et al., EJNMMI 2015;42:328). Outside them a header value is refused; an override confirms it.
DOSE_RANGE_BQ = (1.0e7, 2.0e9)
#: A header dose that reads as 0.3-60 MBq is most likely millicuries (US sites record doses in mCi:
#: 5 mCi = 185 MBq); the refusal says so.
MCI_LIKE_MBQ = (0.27, 60.0)
MBQ_PER_MCI = 37.0

# -- patient and administration -------------------------------------------------------------------
#: Body weights a patient can have, kg (a newborn 2 kg; the heaviest patients scanners take, 350 kg).
WEIGHT_RANGE_KG = (2.0, 350.0)
#: Administered activities of radionuclide therapy, imaged by quantitative SPECT (Lu-177, I-131, Y-90):
#: up to 15 GBq, twice the largest standard activity per cycle, 7.4 GBq (177Lu-DOTATATE: Zaknun JJ et al.,
#: EJNMMI 2013;40:800; 177Lu-PSMA-617: Kratochwil C et al., EJNMMI 2019;46:2536; I-131 ablation and
#: therapy: Luster M et al., EJNMMI 2008;35:1941).
THERAPY_DOSE_RANGE_BQ = (1.0e7, 1.5e10)
#: Heights a patient can have, m: 0.3 m (a newborn of 24 weeks' gestation measures about 30 cm, and the
#: 2 kg lower weight bound is a newborn's) to 2.8 m (above the tallest person measured, 2.72 m, R. Wadlow).
#: A header value outside is refused (30-280 reads as centimetres); an override outside is used with a warning
#: below 0.3 m, refused above 2.8 m (no person is that tall: metres were not meant).
HEIGHT_RANGE_M = (0.3, 2.8)

# -- times --------------------------------------------------------------------------------------------
#: Resolution of the times compared, s: DICOM TM values are written to the whole second by many scanners
#: (e.g. "112011.00") and to micro-seconds by others, so one instant written by two of them differs by up to 1 s.
#: Two times closer than this are the same time (a Series Time 5 microseconds after the acquisition is not
#: "later"). One second changes SUV by lambda x 1 s: under 0.1 % for every nuclide with a half-life of 11.6 min
#: or more, 0.92 % for Rb-82 (75 s), the shortest listed.
TIME_RESOLUTION_S = 1.0
#: Two reference times agree when they differ by under TIME_RESOLUTION_S or when the SUV effect of the
#: difference, |exp(lambda dt) - 1|, is at most 0.1 %: ten times under SUV_WARNING, and above the rounding
#: of DecayFactor (DS values carry 6 or more significant digits: 5e-6 relative).
SUV_AGREEMENT = 0.001
#: A discrepancy is warned about only when its SUV effect exceeds 1 %: the effect of a one-minute timing
#: error for Ga-68 (1.0 %; F-18 0.63 %), the clock synchronisation the EANM guideline asks of scanner and
#: dose-calibrator clocks (Boellaard R et al., EJNMMI 2015;42:328), and a tenth of SUV's test-retest
#: variation (within-subject CV about 10 %, the claim of the QIBA FDG-PET/CT Profile). Smaller discrepancies
#: are recorded as rules. The same bound decides when a decay reference "disagrees" with DecayFactor.
SUV_WARNING = 0.01
#: Relative precision of a DecayFactor (0054,1321) value: DS with 6 or more significant digits rounds by
#: 5e-6 at most; twice that, divided by lambda, is how far (s) a DecayFactor-implied time may be trusted
#: (0.1 s for F-18, 8.6 s for Lu-177).
DECAY_FACTOR_PRECISION = 1.0e-5
#: Series and acquisition datetimes of one session lie within the longest PET acquisition (a dynamic scan
#: of at most about 2 h); a gap of more than half a day means a date was altered (anonymisation), and the
#: gap is then a whole number of days plus that acquisition offset, so rounding it to whole days is unambiguous.
SESSION_DATE_GAP_S = 12 * 3600.0
#: Injection may be recorded up to this long after the reference time (a dynamic scan starts at or just
#: before the injection) before the time of day is read as the previous day; an injection later than this
#: after the reference is refused (no acquisition starts an hour before its injection).
INJECTION_AFTER_REFERENCE_S = 3600.0
#: Longest plausible uptake, in half-lives of the nuclide. The longest standard protocols wait about 2
#: half-lives (89Zr immuno-PET up to 7 d = 2.1 T1/2; FDG delayed imaging 3 h = 1.6 T1/2; 68Ga-SSTR
#: 45-90 min = 0.7-1.3 T1/2; 177Lu dosimetry SPECT up to 7 d = 1.05 T1/2; EANM procedure guidelines);
#: after 5 half-lives 3 % of the activity is left, and the SUV factor exp(lambda t) exceeds 32. A longer
#: header uptake (the usual cause: a date off by a day) is refused; an injection-time override confirms it.
UPTAKE_MAX_HALF_LIVES = 5.0
#: Half-lives an imaging radionuclide can have, s: from 60 s (under Rb-82's 75 s, the shortest in clinical PET)
#: to one year (above Ge-68's 271 d, the calibration sources'). A header value outside is refused, an override
#: outside is used with a warning.
HALF_LIFE_RANGE_S = (60.0, 3.16e7)
#: Shortest half-life for which a time of day alone is refused (manual flowchart: 41,400 s).
TIME_OF_DAY_MAX_HALF_LIFE_S = 41400.0

# -- pixel scaling ------------------------------------------------------------------------------------
#: A frame whose whole stored range (RescaleSlope x (2^BitsStored - 1)) stays under this SUV holds nothing:
#: the lowest tissue SUVs are about 0.1 (lung, fat), five orders of magnitude higher.
SLOPE_MIN_FULL_SCALE_SUV = 1.0e-6
#: A stored unit worth more than this many times the whole administered activity in one voxel is refused:
#: no voxel can hold more than the dose (the bound is exact physics; no tolerance is needed beyond 1).
SLOPE_MAX_DOSE_PER_VOXEL = 1.0

# -- names kept for callers of earlier versions ----------------------------------------------------------
REFERENCE_SPREAD_TOLERANCE_S = TIME_RESOLUTION_S
CROSS_CHECK_SUV_TOLERANCE = SUV_WARNING
