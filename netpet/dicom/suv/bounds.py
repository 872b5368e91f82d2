"""Plausibility bounds and tolerances of the SUV rules, each with its source."""

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
#: Body weights a patient can have, kg (a newborn 2 kg; the heaviest patients scanners take, 350 kg).
WEIGHT_RANGE_KG = (2.0, 350.0)
#: Injection may be recorded up to this long after the reference time (dynamic scans start
#: before injection; clocks drift) before the time of day is read as the previous day.
INJECTION_AFTER_REFERENCE_S = 3600.0
#: Shortest half-life for which a time of day alone is refused (manual flowchart: 41,400 s).
TIME_OF_DAY_MAX_HALF_LIFE_S = 41400.0
#: Per-frame back-computed reference times closer than this are one reference time.
REFERENCE_SPREAD_TOLERANCE_S = 1.0
#: A cross-check between two reference times is warned about above this SUV difference.
CROSS_CHECK_SUV_TOLERANCE = 0.005
