"""Vendor-neutral SUV conversion of PET series, with provenance.

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

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from netpet.dicom import body, radionuclides
from netpet.dicom.dates import iso
from netpet.dicom.pet_header import PetHeader
from netpet.errors import SUVConversionError

SUV_TYPES: Tuple[str, ...] = ("bw", "lbm", "lbmjanma", "bsa", "ibw")

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

_KNOWN_DECAY = ("START", "ADMIN", "NONE")
_REFUSED_UNITS = {
    "PROPCNTS": "proportional to counts, with no documented conversion",
    "PROPCPS": "proportional to counts per second (Siemens non-quantitative images)",
    "1CM": "a linear attenuation map (1/cm), not an emission image",
}


@dataclass(frozen=True)
class Overrides:
    """Values the user gives instead of (or in the absence of) header values.

    Attributes
    ----------
    weight_kg : float, optional
        Patient weight, kg.
    height_m : float, optional
        Patient height, m.
    sex : str, optional
        ``M``, ``F`` or ``O``.
    dose_bq : float, optional
        Administered activity, Bq.
    injection_time : datetime.datetime or datetime.time, optional
        Administration time; a time of day is placed on the scan's date (or the day before).
    half_life_s : float, optional
        Radionuclide half-life, s.
    """

    weight_kg: Optional[float] = None
    height_m: Optional[float] = None
    sex: Optional[str] = None
    dose_bq: Optional[float] = None
    injection_time: Optional[Union[_dt.datetime, _dt.time]] = None
    half_life_s: Optional[float] = None

    def given(self) -> Dict[str, Any]:
        """The overrides that are set, JSON-ready."""
        out: Dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None:
                continue
            out[key] = value.isoformat() if hasattr(value, "isoformat") else value
        return out


@dataclass
class Provenance:
    """Everything a SUV conversion used and decided, JSON-ready through :meth:`to_dict`."""

    series_uid: str
    series: str
    suv_type: str
    suv_type_dicom: str
    output_unit: str
    manufacturer: Optional[str] = None
    model: Optional[str] = None
    units: Optional[str] = None
    units_source: Optional[str] = None
    stored_suv_type: Optional[str] = None
    decay_correction: Optional[str] = None
    reference_time: Optional[str] = None
    reference_time_rule: Optional[str] = None
    injection_time: Optional[str] = None
    injection_time_rule: Optional[str] = None
    uptake_time_s: Optional[float] = None
    half_life_s: Optional[float] = None
    half_life_source: Optional[str] = None
    radionuclide: Optional[str] = None
    dose_bq: Optional[float] = None
    dose_source: Optional[str] = None
    dose_at_reference_bq: Optional[float] = None
    weight_kg: Optional[float] = None
    weight_source: Optional[str] = None
    height_m: Optional[float] = None
    height_source: Optional[str] = None
    sex: Optional[str] = None
    sex_source: Optional[str] = None
    normaliser: Optional[Dict[str, Any]] = None
    factor: Optional[float] = None
    factor_per_frame: Optional[List[float]] = None
    rescale_slope: Optional[Dict[str, float]] = None
    frames: int = 0
    tracer: Optional[Dict[str, Any]] = None
    inputs: Dict[str, Any] = field(default_factory=dict)
    rules: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    overrides: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def output_unit(suv_type: str) -> str:
    """Unit of an SUV type: ``cm2/mL`` for BSA, ``g/mL`` otherwise."""
    return "cm2/mL" if suv_type == "bsa" else "g/mL"


def average_count_rate_offset_s(duration_s: float, decay_constant: float) -> float:
    """Time after frame start at which the decaying count rate equals its frame average, s.

    T_ave = (1/lambda) ln(lambda T / (1 - exp(-lambda T))) (manual, "Decay correction = START",
    option 4); tends to T/2 for short frames.
    """
    x = decay_constant * duration_s
    if x < 1e-9:
        return duration_s / 2.0
    return math.log(x / -math.expm1(-x)) / decay_constant


class _Conversion:
    """One run of the rules over one series header (see module docstring)."""

    def __init__(self, header: PetHeader, suv_type: str, overrides: Overrides) -> None:
        if suv_type not in SUV_TYPES:
            raise ValueError(f"suv_type must be one of {SUV_TYPES}, got {suv_type!r}")
        self.h = header
        self.ov = overrides
        self.target = suv_type
        dicom_type = body.SUV_TYPE_INFO[suv_type][0]
        self.p = Provenance(
            series_uid=header.series_uid,
            series=header.label,
            suv_type=suv_type,
            suv_type_dicom=dicom_type,
            output_unit=output_unit(suv_type),
            manufacturer=header.manufacturer,
            model=header.model,
            frames=len(header.frames),
            overrides=overrides.given(),
        )
        self.p.warnings.extend(header.notes)
        self._cache: Dict[str, Any] = {}
        self.acq: List[Optional[_dt.datetime]] = self._aligned_acquisitions()

    def _aligned_acquisitions(self) -> List[Optional[_dt.datetime]]:
        """Acquisition datetimes, re-dated onto the series date when the dates disagree.

        Within one session the series and acquisition datetimes lie hours apart at most; a
        difference of more than 12 h means one date was altered (anonymisation). The times of
        day are then kept and the acquisition dates moved by whole days to the series date.
        """
        acq = [f.acquisition for f in self.h.frames]
        present = [a for a in acq if a is not None]
        series = self.h.series_datetime
        if not present or series is None:
            return acq
        gap = (series - min(present)).total_seconds()
        if abs(gap) <= 12 * 3600:
            return acq
        days = round(gap / 86400.0)
        shift = _dt.timedelta(days=days)
        self.warn(
            f"AcquisitionDate and SeriesDate disagree by {gap / 86400:.1f} days (anonymised?): "
            f"acquisition times were compared on the series date"
        )
        return [a + shift if a is not None else None for a in acq]

    # -- refusal -------------------------------------------------------------------------
    def refuse(self, problem: str, fix: str) -> SUVConversionError:
        return SUVConversionError(self.h.label, problem, fix)

    def rule(self, text: str) -> None:
        self.p.rules.append(text)

    def warn(self, text: str) -> None:
        self.p.warnings.append(text)

    # -- patient -------------------------------------------------------------------------
    def weight_kg(self, header_only: bool = False) -> float:
        key = "weight_hdr" if header_only else "weight"
        if key in self._cache:
            return self._cache[key]
        if self.ov.weight_kg is not None and not header_only:
            value = float(self.ov.weight_kg)
            if not (math.isfinite(value) and 0 < value < GRAMS_THRESHOLD):
                raise self.refuse(
                    f"the weight override {value:g} kg is not a body weight in kg",
                    "give --weight in kilograms",
                )
            if not WEIGHT_RANGE_KG[0] <= value <= WEIGHT_RANGE_KG[1]:
                self.warn(f"the weight override {value:g} kg lies outside the {WEIGHT_RANGE_KG[0]:g}-"
                          f"{WEIGHT_RANGE_KG[1]:g} kg a patient weighs; used as given")
            self.p.weight_kg, self.p.weight_source = value, "override"
            self._cache[key] = value
            return value
        raw = self.h.weight_raw
        self.p.inputs["PatientWeight (0010,1030)"] = raw
        if header_only and (raw is None or raw <= 0) and self.ov.weight_kg is not None:
            # the scanner's own weight is unknown: the override stands for it
            self._cache[key] = float(self.ov.weight_kg)
            return self._cache[key]
        if raw is None or raw <= 0:
            state = "missing" if raw is None else f"{raw:g}"
            raise self.refuse(
                f"PatientWeight (0010,1030) is {state}", "give the weight with --weight KG"
            )
        if not math.isfinite(raw):
            raise self.refuse(f"PatientWeight (0010,1030) is {raw}", "give the weight with --weight KG")
        value = raw
        source = "PatientWeight (0010,1030)"
        if raw >= GRAMS_THRESHOLD:
            value = raw / 1000.0
            source += f" = {raw:g}, read as grams (a value of {GRAMS_THRESHOLD:g} or more)"
            self.warn(f"PatientWeight {raw:g} read as grams: {value:g} kg")
        low, high = WEIGHT_RANGE_KG
        if not low <= value <= high:
            raise self.refuse(f"PatientWeight (0010,1030) is {raw:g}, read as {value:g} kg, outside the {low:g}-{high:g} kg a "
                              "patient weighs", "confirm or correct it with --weight KG")
        if not header_only or self.p.weight_kg is None:
            self.p.weight_kg, self.p.weight_source = value, source
        self._cache[key] = value
        return value

    def height_cm(self) -> float:
        if "height" in self._cache:
            return self._cache["height"]
        if self.ov.height_m is not None:
            value, source = float(self.ov.height_m), "override"
            if not 0.3 <= value <= 2.8:
                raise self.refuse(
                    f"the height override {value:g} m is not a height in metres",
                    "give --height in metres, such as 1.72",
                )
        else:
            raw = self.h.size_raw
            self.p.inputs["PatientSize (0010,1020)"] = raw
            if raw is None or raw <= 0:
                state = "missing" if raw is None else f"{raw:g}"
                raise self.refuse(
                    f"PatientSize (0010,1020) is {state} and SUV{self.target} needs the height",
                    "give the height with --height M",
                )
            if raw > 2.8:
                raise self.refuse(
                    f"PatientSize (0010,1020) = {raw:g} is not a height in metres (centimetres, or a weight entered in the wrong field?)",
                    "give the height with --height M",
                )
            value, source = raw, "PatientSize (0010,1020)"
        self.p.height_m, self.p.height_source = value, source
        self._cache["height"] = value * 100.0
        return value * 100.0

    def sex(self) -> str:
        if "sex" in self._cache:
            return self._cache["sex"]
        if self.ov.sex is not None:
            value, source = str(self.ov.sex).strip().upper(), "override"
        else:
            raw = self.h.sex_raw
            self.p.inputs["PatientSex (0010,0040)"] = raw
            value, source = (raw or "").strip().upper(), "PatientSex (0010,0040)"
            if not value:
                raise self.refuse(
                    f"PatientSex (0010,0040) is missing and SUV{self.target} depends on sex",
                    "give it with --sex M|F|O",
                )
        if value not in body.SEXES:
            raise self.refuse(
                f"PatientSex (0010,0040) is {value!r}, not M, F or O" if source != "override"
                else f"the sex override {value!r} is not M, F or O",
                "give it with --sex M|F|O",
            )
        if value == "O":
            self.rule("sex O: mean of the male and female formulas (manual, Units = GML)")
        self.p.sex, self.p.sex_source = value, source
        self._cache["sex"] = value
        return value

    def normaliser(self, key: str, header_only: bool = False) -> float:
        """SUV normaliser N (g or cm^2) for a normalisation key (see netpet.dicom.body)."""
        cache_key = f"N:{key}:{header_only}"
        if cache_key in self._cache:
            return self._cache[cache_key]
        weight = self.weight_kg(header_only) if key != "ibw" else 0.0
        height = self.height_cm() if key in body.NEEDS_HEIGHT else 0.0
        sex = self.sex() if key in body.NEEDS_SEX else ""
        value = body.normalisation(key, weight, height, sex)
        if value <= 0:
            raise self.refuse(
                f"the {key} formula gives a non-positive normaliser ({value:.1f}) for "
                f"weight {weight:g} kg and height {height:g} cm",
                "use another SUV type (e.g. --type lbmjanma) or check --weight/--height",
            )
        self._cache[cache_key] = value
        return value

    # -- radionuclide ----------------------------------------------------------------------
    def half_life_s(self) -> float:
        if "half_life" in self._cache:
            return self._cache["half_life"]
        rp = self.h.radiopharmaceutical
        coded = None
        if rp.nuclide_code is not None:
            coded = radionuclides.from_code(rp.nuclide_code.scheme, rp.nuclide_code.value)
            if coded is None:
                coded = radionuclides.from_text(rp.nuclide_code.meaning)
        self.p.inputs["RadionuclideHalfLife (0018,1075)"] = rp.half_life_s
        if self.ov.half_life_s is not None:
            value, source = float(self.ov.half_life_s), "override"
            if value <= 0:
                raise self.refuse(f"the half-life override {value:g} s is not positive", "give --half-life in seconds")
        elif rp.half_life_s is not None and rp.half_life_s > 0:
            value, source = rp.half_life_s, "RadionuclideHalfLife (0018,1075)"
            if coded is not None and abs(value - coded.half_life_s) / coded.half_life_s > radionuclides.HALF_LIFE_MATCH_TOLERANCE:
                self.warn(
                    f"RadionuclideHalfLife {value:g} s disagrees with the coded radionuclide "
                    f"{coded.name} ({coded.half_life_s:g} s); the header value was used"
                )
        elif coded is not None:
            value = coded.half_life_s
            source = (
                f"{coded.name} reference half-life (DDEP), radionuclide from "
                f"RadionuclideCodeSequence (0054,0300) {rp.nuclide_code.text()}"
            )
            self.warn(
                "RadionuclideHalfLife (0018,1075) is missing; the half-life of the coded "
                f"radionuclide {coded.name} ({coded.half_life_s:g} s) was used"
            )
        else:
            state = "missing" if rp.half_life_s is None else f"{rp.half_life_s:g}"
            raise self.refuse(
                f"RadionuclideHalfLife (0018,1075) is {state} and RadionuclideCodeSequence "
                "(0054,0300) names no known radionuclide",
                "give the half-life with --half-life S",
            )
        nuclide = radionuclides.from_half_life(value)
        self.p.radionuclide = (coded or nuclide).name if (coded or nuclide) else None
        self.p.half_life_s, self.p.half_life_source = value, source
        self._cache["half_life"] = value
        return value

    # -- dose ------------------------------------------------------------------------------
    def dose_bq(self, header_only: bool = False) -> float:
        key = "dose_hdr" if header_only else "dose"
        if key in self._cache:
            return self._cache[key]
        if self.ov.dose_bq is not None and not header_only:
            value = float(self.ov.dose_bq)
            if not math.isfinite(value) or value < MBQ_THRESHOLD:
                raise self.refuse(
                    f"the dose override {value:g} Bq is implausibly small" if math.isfinite(value) else
                    f"the dose override is {value}",
                    "give --dose in MBq",
                )
            if not DOSE_RANGE_BQ[0] <= value <= DOSE_RANGE_BQ[1]:
                self.warn(f"the dose override {value / 1e6:g} MBq lies outside the {DOSE_RANGE_BQ[0] / 1e6:g}-"
                          f"{DOSE_RANGE_BQ[1] / 1e6:g} MBq of diagnostic PET; used as given")
            self.p.dose_bq, self.p.dose_source = value, "override"
            self._cache[key] = value
            return value
        raw = self.h.radiopharmaceutical.dose_raw
        self.p.inputs["RadionuclideTotalDose (0018,1074)"] = raw
        if raw is None or raw <= 0:
            state = "missing" if raw is None else f"{raw:g}"
            raise self.refuse(
                f"RadionuclideTotalDose (0018,1074) is {state}",
                "give the administered activity with --dose MBQ",
            )
        if not math.isfinite(raw):
            raise self.refuse(f"RadionuclideTotalDose (0018,1074) is {raw}",
                              "give the administered activity with --dose MBQ")
        value, source = raw, "RadionuclideTotalDose (0018,1074)"
        if raw < MBQ_THRESHOLD:
            value = raw * 1.0e6
            source += f" = {raw:g}, read as MBq (below {MBQ_THRESHOLD:g})"
            self.rule(f"dose {raw:g} < {MBQ_THRESHOLD:g}: megabecquerels, {value:.6g} Bq")
        low, high = DOSE_RANGE_BQ
        if not low <= value <= high:
            mbq = value / 1e6
            hint = (f" ({raw:g} looks like millicuries: {raw:g} mCi = {raw * MBQ_PER_MCI:g} MBq)"
                    if raw < MBQ_THRESHOLD and MCI_LIKE_MBQ[0] <= raw <= MCI_LIKE_MBQ[1] else "")
            raise self.refuse(f"RadionuclideTotalDose (0018,1074) is {raw:g}, read as {mbq:g} MBq, outside the "
                              f"{low / 1e6:g}-{high / 1e6:g} MBq of diagnostic PET{hint}",
                              "confirm or correct it with --dose MBQ")
        if not header_only or self.p.dose_bq is None:
            self.p.dose_bq, self.p.dose_source = value, source
        self._cache[key] = value
        return value

    # -- times -----------------------------------------------------------------------------
    def _back_computed(self) -> Tuple[Optional[np.ndarray], str]:
        """Per-frame reference times back-computed from frame timing, seconds since epoch."""
        lam = math.log(2.0) / self.half_life_s()
        ge = self.h.vendor == "GE"
        out = []
        for frame, acquisition in zip(self.h.frames, self.acq):
            if acquisition is None or frame.frame_reference_time_ms is None:
                return None, f"{frame.label} lacks AcquisitionTime (0008,0032) or FrameReferenceTime (0054,1300)"
            if frame.frame_reference_time_ms < 0:
                return None, f"{frame.label} has a negative FrameReferenceTime (0054,1300)"
            t_acq = _ts(acquisition)
            delta = frame.frame_reference_time_ms / 1000.0
            if ge:
                out.append(t_acq - delta)
            else:
                if frame.frame_duration_ms is None or frame.frame_duration_ms <= 0:
                    return None, f"{frame.label} lacks ActualFrameDuration (0018,1242)"
                out.append(t_acq + average_count_rate_offset_s(frame.frame_duration_ms / 1000.0, lam) - delta)
        formula = (
            "acquisition time - frame reference time (GE frame reference times count from the frame start)"
            if ge else
            "acquisition time + average count-rate time - frame reference time"
        )
        return np.asarray(out), formula

    def start_reference(self) -> np.ndarray:
        """Reference time(s) of START decay correction, seconds since epoch, per frame."""
        n = len(self.h.frames)
        acq = [a for a in self.acq if a is not None]
        earliest = min(acq) if acq else None
        self.p.inputs["SeriesDate/SeriesTime (0008,0021)/(0008,0031)"] = iso(self.h.series_datetime)
        self.p.inputs["earliest AcquisitionDate/Time (0008,0022)/(0008,0032)"] = iso(earliest)

        def chosen(when: _dt.datetime, rule: str) -> np.ndarray:
            self.p.reference_time = iso(when)
            self.p.reference_time_rule = rule
            self.rule(f"decay reference time: {rule}")
            return np.full(n, _ts(when))

        series = self.h.series_datetime
        if series is not None and earliest is not None and series > earliest:
            self.warn(
                f"Series Date/Time {series.isoformat()} is later than the earliest acquisition "
                f"{earliest.isoformat()}: rewritten by post-processing, not used as the decay reference"
            )
        if self.h.decay_correction_datetime is not None:
            self.p.inputs["DecayCorrectionDateTime (0018,9701)"] = iso(self.h.decay_correction_datetime)
            return self._cross_checked(chosen(self.h.decay_correction_datetime, "DecayCorrectionDateTime (0018,9701)"))
        if self.h.siemens_dc_datetime is not None:
            self.p.inputs[self.h.siemens_source] = iso(self.h.siemens_dc_datetime)
            return self._cross_checked(chosen(self.h.siemens_dc_datetime, self.h.siemens_source))
        if self.h.ge_scan_datetime is not None:
            self.p.inputs[self.h.ge_source] = iso(self.h.ge_scan_datetime)
            return self._cross_checked(chosen(self.h.ge_scan_datetime, self.h.ge_source))
        if series is not None and (earliest is None or series <= earliest):
            if earliest is None:
                self.warn("no AcquisitionTime to check the Series Time against; Series Date/Time used as it is")
                rule = "Series Date/Time (0008,0021)/(0008,0031)"
            elif series == earliest:
                rule = "Series Date/Time (0008,0021)/(0008,0031), equal to the earliest acquisition"
            else:
                rule = "Series Date/Time (0008,0021)/(0008,0031), not after the earliest acquisition"
            return self._cross_checked(chosen(series, rule))
        refs, how = self._back_computed()
        if refs is not None:
            spread = float(refs.max() - refs.min())
            if spread <= REFERENCE_SPREAD_TOLERANCE_S:
                when = _from_ts(float(np.median(refs)))
                rule = f"back-computed from frame timing ({how})"
                if earliest is not None:
                    self._compare("earliest acquisition time", _ts(earliest), float(np.median(refs)))
                return chosen(when, rule)
            self.warn(
                f"frame timing back-computes to reference times spread over {spread:.1f} s; "
                "each frame was decay-corrected to its own back-computed reference"
            )
            self.p.reference_time = iso(_from_ts(float(refs.min())))
            self.p.reference_time_rule = f"back-computed per frame ({how})"
            self.rule(f"decay reference time: {self.p.reference_time_rule}")
            return refs
        if earliest is not None:
            self.warn(
                "decay reference taken as the earliest acquisition time: wrong if the series was "
                f"cropped or the study had several injections (QIBA); frame timing unusable: {how}"
            )
            return chosen(earliest, "earliest AcquisitionDate/Time (0008,0022)/(0008,0032)")
        raise self.refuse(
            "DecayCorrection is START but neither a decay correction datetime, nor a usable Series "
            "Date/Time (0008,0021)/(0008,0031), nor AcquisitionTime (0008,0032) gives the reference time",
            "convert the original scanner export, which carries these times",
        )

    def _compare(self, name: str, other_s: float, used_s: float) -> None:
        lam = math.log(2.0) / self.half_life_s()
        diff = other_s - used_s
        effect = abs(math.expm1(lam * diff))
        if effect > CROSS_CHECK_SUV_TOLERANCE:
            self.warn(
                f"the {name} differs from the reference time used by {diff:+.0f} s, "
                f"which would change SUV by {100 * effect:.1f} %"
            )

    def _cross_checked(self, refs: np.ndarray) -> np.ndarray:
        back, _ = self._back_computed()
        if back is not None and float(back.max() - back.min()) <= REFERENCE_SPREAD_TOLERANCE_S:
            self._compare("reference time back-computed from frame timing", float(np.median(back)), float(refs[0]))
        return refs

    def none_reference(self) -> np.ndarray:
        """Per-frame times the values of non-decay-corrected frames refer to, s since epoch."""
        lam = math.log(2.0) / self.half_life_s()
        out = []
        for frame, acquisition in zip(self.h.frames, self.acq):
            if frame.frame_reference_datetime is not None:
                out.append(_ts(frame.frame_reference_datetime))
                continue
            if acquisition is None:
                raise self.refuse(
                    f"DecayCorrection is NONE and {frame.label} has no AcquisitionDate/Time (0008,0022)/(0008,0032)",
                    "convert the original scanner export, which carries per-frame times",
                )
            if frame.frame_duration_ms is None or frame.frame_duration_ms <= 0:
                raise self.refuse(
                    f"DecayCorrection is NONE and ActualFrameDuration (0018,1242) of {frame.label} is "
                    f"{'missing' if frame.frame_duration_ms is None else frame.frame_duration_ms}",
                    "convert the original scanner export, which carries the frame duration",
                )
            t_ave = average_count_rate_offset_s(frame.frame_duration_ms / 1000.0, lam)
            out.append(_ts(acquisition) + t_ave)
        refs = np.asarray(out)
        self.p.reference_time = iso(_from_ts(float(refs.min())))
        self.p.reference_time_rule = (
            "DecayCorrection NONE: each frame at its own acquisition time + average count-rate time"
            if all(f.frame_reference_datetime is None for f in self.h.frames)
            else "DecayCorrection NONE: each frame at its FrameReferenceDateTime (0018,9151)"
        )
        self.rule(self.p.reference_time_rule)
        return refs

    def injection_s(self, basis: _dt.datetime) -> float:
        """Administration time, seconds since epoch, placed relative to the reference ``basis``."""
        half_life = self.half_life_s()
        rp = self.h.radiopharmaceutical
        self.p.inputs["RadiopharmaceuticalStartDateTime (0018,1078)"] = iso(rp.start_datetime)
        self.p.inputs["RadiopharmaceuticalStartTime (0018,1072)"] = rp.start_time.isoformat() if rp.start_time else None
        override = self.ov.injection_time
        if isinstance(override, _dt.datetime):
            return self._injection(override, "override")
        if isinstance(override, _dt.time):
            return self._time_of_day(basis, override, "override (time of day)", half_life, check_half_life=False)
        if rp.start_datetime is not None:
            uptake = (basis - rp.start_datetime).total_seconds()
            window = max(86400.0, 4.0 * half_life)
            if -INJECTION_AFTER_REFERENCE_S <= uptake < window:
                return self._injection(rp.start_datetime, "RadiopharmaceuticalStartDateTime (0018,1078)")
            self.warn(
                f"RadiopharmaceuticalStartDateTime {rp.start_datetime.isoformat()} lies {uptake / 3600:.1f} h "
                f"before the reference time {basis.isoformat()}, outside the plausible window: its date "
                "is not trusted (anonymised?) and only its time of day is used"
            )
            return self._time_of_day(
                basis, rp.start_datetime.time(),
                "time of day of RadiopharmaceuticalStartDateTime (0018,1078)", half_life,
            )
        if rp.start_time is not None:
            return self._time_of_day(basis, rp.start_time, "RadiopharmaceuticalStartTime (0018,1072)", half_life)
        raise self.refuse(
            "RadiopharmaceuticalStartDateTime (0018,1078) and RadiopharmaceuticalStartTime (0018,1072) "
            "are both missing",
            "give the injection time with --injection-time ISO8601",
        )

    def _injection(self, when: _dt.datetime, rule: str) -> float:
        self.p.injection_time, self.p.injection_time_rule = iso(when), rule
        self.rule(f"injection time: {rule}")
        return _ts(when)

    def _time_of_day(self, basis: _dt.datetime, tod: _dt.time, source: str, half_life: float,
                     check_half_life: bool = True) -> float:
        if check_half_life and half_life >= TIME_OF_DAY_MAX_HALF_LIFE_S:
            raise self.refuse(
                f"only the time of day of injection is known ({source}) and the half-life "
                f"{half_life / 3600:.1f} h makes an uptake of more than a day possible",
                "give the injection date and time with --injection-time ISO8601",
            )
        when = _dt.datetime.combine(basis.date(), tod)
        rule = f"{source} on the reference date"
        if (basis - when).total_seconds() < -INJECTION_AFTER_REFERENCE_S:
            when -= _dt.timedelta(days=1)
            rule = f"{source} on the day before the reference date (injection before midnight)"
            self.warn(f"injection time {tod.isoformat()} is after the scan's time of day: taken as the previous day")
        return self._injection(when, rule)

    # -- units -----------------------------------------------------------------------------
    def check_header(self) -> None:
        if not self.h.frames:
            raise self.refuse("the series has no image frames", "check the series selection")
        critical = {
            "units": "Units (0054,1001)", "suv_type": "SUVType (0054,1006)",
            "decay_correction": "DecayCorrection (0054,1102)", "decay_corrected": "DecayCorrected (0018,9758)",
            "weight_raw": "PatientWeight (0010,1030)", "size_raw": "PatientSize (0010,1020)",
            "sex_raw": "PatientSex (0010,0040)", "radiopharmaceutical": "RadiopharmaceuticalInformationSequence (0054,0016)",
            "decay_correction_datetime": "DecayCorrectionDateTime (0018,9701)",
            "ge_scan_datetime": "GE PET scan datetime (0009,100D)",
            "siemens_dc_datetime": "Siemens decay correction datetime (0071,1022)",
            "series_datetime": "SeriesDate/SeriesTime (0008,0021)/(0008,0031)",
        }
        for key, values in self.h.conflicts.items():
            name = critical.get(key, key)
            shown = ", ".join(repr(getattr(v, "text", v)) if not hasattr(v, "isoformat") else v.isoformat() for v in values[:3])
            raise self.refuse(
                f"{name} differs between the files of the series ({shown}), so they are not one PET volume",
                "separate the files into their series (or select one with --series)",
            )
        missing_slope = [f for f in self.h.frames if f.slope is None]
        if missing_slope:
            raise self.refuse(
                f"RescaleSlope (0028,1053) is missing in {missing_slope[0].label}",
                "convert the original scanner export (a PET slope cannot be assumed)",
            )
        bad = [f for f in self.h.frames if f.slope <= 0]
        if bad:
            raise self.refuse(
                f"RescaleSlope (0028,1053) is {bad[0].slope:g} in {bad[0].label}, not positive",
                "convert the original scanner export",
            )
        if any(f.intercept is None for f in self.h.frames):
            self.warn("RescaleIntercept (0028,1052) missing in some frames: taken as 0, the only value PET allows")
        nonzero = [f for f in self.h.frames if f.intercept not in (None, 0.0)]
        if nonzero:
            raise self.refuse(
                f"RescaleIntercept (0028,1052) is {nonzero[0].intercept:g} in {nonzero[0].label}, but PET requires 0",
                "convert the original scanner export (a non-zero intercept means the values were altered)",
            )
        slopes = np.array([f.slope for f in self.h.frames], dtype=float)
        self.p.rescale_slope = {"min": float(slopes.min()), "max": float(slopes.max()), "distinct": int(len(np.unique(slopes)))}
        self.rule(f"rescale slope applied per frame ({self.p.rescale_slope['distinct']} distinct values); intercept 0")
        corrected = self.h.corrected_image
        self.p.inputs["CorrectedImage (0028,0051)"] = list(corrected)
        if corrected and "ATTN" not in corrected:
            self.warn("CorrectedImage (0028,0051) lacks ATTN: the image is not attenuation corrected, its SUV is not quantitative")
        if (self.h.photometric or "").upper() == "MONOCHROME1":
            self.warn("PhotometricInterpretation is MONOCHROME1: stored values used as they are, without display inversion")

    def run(self) -> np.ndarray:
        self.check_header()
        units = self.h.units
        self.p.units, self.p.units_source = units, self.h.units_source
        self.p.inputs["Units (0054,1001)"] = units
        self.p.inputs["SUVType (0054,1006)"] = self.h.suv_type
        self.p.inputs["DecayCorrection (0054,1102)"] = self.h.decay_correction
        if units is None:
            raise self.refuse("Units (0054,1001) is missing, so the pixel values have no known meaning",
                              "convert the original scanner export")
        if units.startswith("CONFLICT:"):
            raise self.refuse(f"the frames carry different units ({units[9:]})",
                              "convert the original scanner export")
        frames = self.h.frames
        n = len(frames)
        if units == "BQML":
            self.rule("Units BQML: pixel values are activity concentration (Bq/mL)")
            return self.from_activity(np.ones(n))
        if units == "CNTS":
            return self.from_counts()
        if units == "CPS":
            return self.from_cps(np.ones(n), "Units CPS")
        if units == "GML":
            stored = self.h.suv_type or "BW"
            if not self.h.suv_type:
                self.rule("Units GML with SUVType (0054,1006) empty: stored values are SUVbw")
            if stored not in body.DICOM_SUV_TYPES or stored == "BSA":
                raise self.refuse(
                    f"Units GML with SUVType (0054,1006) {stored!r} is not a known g/mL normalisation",
                    "convert the original scanner export",
                )
            self.rule(f"Units GML: stored values are SUV normalised by {stored}")
            return self.from_stored_suv(np.ones(n), stored)
        if units == "CM2ML":
            stored = self.h.suv_type or "BSA"
            if stored != "BSA":
                raise self.refuse(
                    f"Units CM2ML with SUVType (0054,1006) {stored!r}: cm2/mL is only a body-surface-area SUV",
                    "convert the original scanner export",
                )
            if not self.h.suv_type:
                self.warn("Units CM2ML with SUVType (0054,1006) empty: read as SUVbsa, the only cm2/mL SUV")
            self.rule("Units CM2ML: stored values are SUVbsa (Du Bois)")
            return self.from_stored_suv(np.ones(n), "BSA")
        reason = _REFUSED_UNITS.get(units, "not a unit NETPET can convert to activity concentration or SUV")
        raise self.refuse(f"Units (0054,1001) is {units}: {reason}",
                          "reconstruct the PET with quantitative units (BQML)")

    def from_counts(self) -> np.ndarray:
        frames = self.h.frames
        acsf = [f.philips_activity_factor for f in frames]
        suvsf = [f.philips_suv_factor for f in frames]
        self.p.inputs["Philips activity concentration scale factor (7053,1009)"] = _summary(acsf)
        self.p.inputs["Philips SUV scale factor (7053,1000)"] = _summary(suvsf)
        if all(v is not None and v > 0 for v in acsf):
            self.rule("Units CNTS: counts x Philips activity concentration scale factor (7053,1009) = Bq/mL")
            factors = self.from_activity(np.asarray(acsf, dtype=float))
            if self.target == "bw" and all(v is not None and v > 0 for v in suvsf):
                ratio = np.asarray(suvsf, dtype=float) / factors
                worst = float(np.max(np.abs(ratio - 1.0)))
                if worst > CROSS_CHECK_SUV_TOLERANCE:
                    self.warn(
                        f"the Philips SUV scale factor (7053,1000) disagrees with the SUVbw computed from the "
                        f"header by up to {100 * worst:.1f} % (different weight, dose or timing on the scanner)"
                    )
                else:
                    self.rule("cross-check: Philips SUV scale factor (7053,1000) agrees with the computed SUVbw")
            return factors
        if any(v is not None and v > 0 for v in acsf):
            raise self.refuse("the Philips activity concentration scale factor (7053,1009) is present in some frames only",
                              "convert the original scanner export")
        if all(v is not None and v > 0 for v in suvsf):
            if self.h.suv_type not in (None, "BW"):
                raise self.refuse(
                    f"Units CNTS with the Philips SUV scale factor but SUVType (0054,1006) {self.h.suv_type!r}",
                    "convert the original scanner export")
            if self.ov.injection_time is not None or self.ov.half_life_s is not None:
                raise self.refuse(
                    "the series is scaled by the Philips SUV scale factor (7053,1000), which already folds in "
                    "the scanner's injection time and decay, so an injection-time or half-life override cannot apply",
                    "drop --injection-time/--half-life or export the series in BQML")
            self.rule("Units CNTS: counts x Philips SUV scale factor (7053,1000) = SUVbw")
            return self.from_stored_suv(np.asarray(suvsf, dtype=float), "BW")
        durations = [f.frame_duration_ms for f in frames]
        if any(d is None or d <= 0 for d in durations):
            raise self.refuse(
                "Units CNTS without the Philips scale factors (7053,1009)/(7053,1000), and ActualFrameDuration "
                "(0018,1242) is missing to turn counts into counts per second",
                "export the series from the scanner in BQML or with the Philips scale factors")
        self.rule("Units CNTS without Philips scale factors: counts / ActualFrameDuration (0018,1242) = CPS")
        return self.from_cps(1000.0 / np.asarray(durations, dtype=float), "CNTS / frame duration")

    def from_cps(self, scale: np.ndarray, what: str) -> np.ndarray:
        corrected = self.h.corrected_image
        if "ATTN" not in corrected:
            raise self.refuse(
                f"{what} data must be attenuation corrected to be quantified, and CorrectedImage (0028,0051) "
                f"{list(corrected) or 'is missing'} lacks ATTN",
                "reconstruct the PET with attenuation correction in BQML")
        voxels_ml = []
        for frame in self.h.frames:
            if frame.pixel_spacing is None or not frame.slice_thickness:
                raise self.refuse(
                    f"{what}: the voxel volume is needed but PixelSpacing (0028,0030) or SliceThickness (0018,0050) "
                    f"is missing in {frame.label}", "convert the original scanner export")
            voxels_ml.append(frame.pixel_spacing[0] * frame.pixel_spacing[1] * frame.slice_thickness / 1000.0)
        voxel = np.asarray(voxels_ml)
        dcf = self.h.dose_calibration_factor
        self.p.inputs["DoseCalibrationFactor (0054,1322)"] = dcf
        if "DCAL" in corrected:
            self.rule(f"{what}: dose calibrated (DCAL in CorrectedImage): counts/s / voxel volume (mL) = Bq/mL")
            return self.from_activity(scale / voxel)
        if dcf is not None and dcf > 0:
            self.rule(f"{what}: not dose calibrated: counts/s x DoseCalibrationFactor (0054,1322) / voxel volume (mL) = Bq/mL")
            return self.from_activity(scale * dcf / voxel)
        raise self.refuse(
            f"{what} data are neither dose calibrated (no DCAL in CorrectedImage (0028,0051)) nor given a "
            "DoseCalibrationFactor (0054,1322)", "reconstruct the PET in BQML")

    # -- the two paths -------------------------------------------------------------------------
    def target_key(self) -> str:
        return self.target

    def from_stored_suv(self, scale: np.ndarray, stored_dicom_type: str) -> np.ndarray:
        """Factors for values already normalised by ``stored_dicom_type`` (BW, LBM..., BSA, IBW)."""
        stored_key = body.DICOM_SUV_TYPES[stored_dicom_type]
        self.p.stored_suv_type = stored_dicom_type
        if self.ov.injection_time is not None:
            raise self.refuse(
                "the stored values are already SUV, normalised on the scanner with its own injection time",
                "drop --injection-time (it cannot be re-applied) or export the series in BQML")
        factor = 1.0
        if stored_key != self.target:
            factor = self.normaliser(self.target) / self.normaliser(stored_key, header_only=self._renormalising())
            self.rule(f"re-normalised from SUV{stored_dicom_type} to SUV{self.p.suv_type_dicom}: x N_{self.target} / N_{stored_key}")
        elif self._renormalising():
            factor = self.normaliser(self.target) / self.normaliser(stored_key, header_only=True)
            self.rule("re-normalised with the overridden weight/height/sex against the header's values")
        if self.ov.dose_bq is not None:
            header_dose = self.h.radiopharmaceutical.dose_raw
            if header_dose is None or header_dose <= 0:
                raise self.refuse(
                    "the stored values are already SUV and RadionuclideTotalDose (0018,1074), the dose the "
                    "scanner normalised by, is missing, so a dose override cannot be re-applied",
                    "drop --dose or export the series in BQML")
            factor *= self.dose_bq(header_only=True) / self.ov.dose_bq
            self.p.dose_bq, self.p.dose_source = self.ov.dose_bq, "override"
            self.rule("stored SUV re-normalised to the overridden dose: x header dose / override dose")
        if factor != 1.0 or stored_key != self.target:
            self._normaliser_record(self.target)
        return scale * factor

    def _renormalising(self) -> bool:
        return any(v is not None for v in (self.ov.weight_kg, self.ov.height_m, self.ov.sex))

    def from_activity(self, scale: np.ndarray) -> np.ndarray:
        """Factors for values that are activity concentration (Bq/mL) after ``scale``."""
        n = len(self.h.frames)
        dose = self.dose_bq()
        decay = self.h.decay_correction
        self.p.decay_correction = decay
        if decay == "ADMIN":
            self.rule("DecayCorrection ADMIN: images decay-corrected to administration; dose used as administered")
            dose_ref = np.full(n, dose)
        elif decay in ("START", "NONE"):
            half_life = self.half_life_s()
            lam = math.log(2.0) / half_life
            refs = self.start_reference() if decay == "START" else self.none_reference()
            basis = _from_ts(float(refs.min()))
            t_adm = self.injection_s(basis)
            self.p.uptake_time_s = float(refs.min() - t_adm)
            if self.p.uptake_time_s < 0:
                self.warn(f"injection is {-self.p.uptake_time_s:.0f} s after the reference time")
            dose_ref = dose * np.exp(-lam * (refs - t_adm))
            self.rule(f"dose decayed to the reference time: D x exp(-ln2 x (t_ref - t_inj) / {half_life:g} s)")
        else:
            state = "missing" if decay is None else repr(decay)
            raise self.refuse(f"DecayCorrection (0054,1102) is {state}, not START, ADMIN or NONE",
                              "convert the original scanner export")
        self.p.dose_at_reference_bq = float(dose_ref[0]) if np.ptp(dose_ref) == 0 else float(dose_ref.max())
        norm = self.normaliser(self.target)
        self._normaliser_record(self.target)
        return scale * norm / dose_ref

    def _normaliser_record(self, key: str) -> None:
        unit = "cm2" if key == "bsa" else "g"
        names = {"bw": "body weight", "lbm": "lean body mass, James 128 (LBMJAMES128)",
                 "lbmjanma": "lean body mass, Janmahasatian (LBMJANMA)", "bsa": "body surface area, Du Bois",
                 "ibw": "ideal body weight"}
        self.p.normaliser = {"type": key, "description": names[key], "value": self.normaliser(key), "unit": unit}


def _ts(when: _dt.datetime) -> float:
    """Seconds since 1970 of a naive local datetime (time arithmetic only, no time zone)."""
    return (when - _EPOCH).total_seconds()


def _from_ts(seconds: float) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(seconds=seconds)


_EPOCH = _dt.datetime(1970, 1, 1)


def _summary(values: Sequence[Optional[float]]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if len(set(present)) == 1 and len(present) == len(values):
        return present[0]
    return {"min": min(present), "max": max(present), "present_in": f"{len(present)}/{len(values)} frames"}


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
    p = conversion.p
    if np.ptp(factors) == 0:
        p.factor = float(factors[0])
    else:
        p.factor_per_frame = [float(v) for v in factors]
    return factors, p


def describe_provenance(p: Dict[str, Any], output: Optional[str] = None) -> str:
    """The provenance record as text: one line per input value with its source, then rules and warnings."""
    lines = [
        f"SUV{p['suv_type']} ({p['output_unit']})" + (f" written to {output}" if output else ""),
        f"series    {p['series']}",
        f"tracer    {(p.get('tracer') or {}).get('label')}  {p.get('hybrid') or ''}".rstrip(),
        f"units     {p['units']} ({p['units_source']})" + (f", stored SUV type {p['stored_suv_type']}" if p.get('stored_suv_type') else ""),
    ]
    if p.get("decay_correction"):
        lines.append(f"decay     {p['decay_correction']}; reference {p.get('reference_time')} [{p.get('reference_time_rule')}]")
    if p.get("injection_time"):
        lines.append(f"injection {p['injection_time']} [{p.get('injection_time_rule')}], uptake {p.get('uptake_time_s', 0) / 60:.1f} min")
    if p.get("dose_bq"):
        lines.append(f"dose      {p['dose_bq'] / 1e6:.2f} MBq [{p['dose_source']}]")
    if p.get("half_life_s"):
        lines.append(f"half-life {p['half_life_s']:g} s [{p['half_life_source']}]")
    if p.get("weight_kg"):
        lines.append(f"weight    {p['weight_kg']:g} kg [{p['weight_source']}]")
    if p.get("height_m"):
        lines.append(f"height    {p['height_m']:g} m [{p['height_source']}]")
    if p.get("sex"):
        lines.append(f"sex       {p['sex']} [{p['sex_source']}]")
    if p.get("factor") is not None:
        lines.append(f"factor    {p['factor']:.8g} SUV per {p['units']} unit")
    elif p.get("factor_per_frame"):
        values = p["factor_per_frame"]
        lines.append(f"factor    per frame, {min(values):.8g} .. {max(values):.8g}")
    for rule in p.get("rules", []):
        lines.append(f"rule      {rule}")
    for warning in p.get("warnings", []):
        lines.append(f"WARNING   {warning}")
    return "\n".join(lines)
