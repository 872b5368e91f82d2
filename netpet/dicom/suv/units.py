"""Units of the stored values and the two conversion paths (activity, stored SUV).

Also the checks of the pixel scaling: RescaleSlope (0028,1053) must be a positive finite number,
and, once the SUV factors are known, a stored unit may be worth neither more than the whole
administered activity in one voxel nor so little that the frame's whole stored range stays under
SLOPE_MIN_FULL_SCALE_SUV (bounds.py). No override can stand for a slope, so these refusals point
to the scanner export. Messages name the scanner the file comes from (Manufacturer and model, or
the vendor its private creators show) and never another vendor's.
"""

from __future__ import annotations

import math

import numpy as np

from netpet.dicom import body
from netpet.dicom.suv.base import Base, from_ts, summary
from netpet.dicom.suv.bounds import (
    CROSS_CHECK_SUV_TOLERANCE, SLOPE_MAX_DOSE_PER_VOXEL, SLOPE_MIN_FULL_SCALE_SUV, WEIGHT_RANGE_KG,
)

_KNOWN_DECAY = ("START", "ADMIN", "NONE")
_REFUSED_UNITS = {
    "PROPCNTS": "proportional to counts, with no documented conversion to activity",
    "PROPCPS": "proportional to counts per second, a non-quantitative reconstruction with no calibration to activity",
    "1CM": "a linear attenuation map (1/cm), not an emission image",
}
_SLOPE_FIX = "convert the original scanner export (no override can stand for a rescale slope)"
#: Normaliser bounds when a conversion computes none (stored SUV kept as it is): the heaviest patient
#: (WEIGHT_RANGE_KG) in g, and the Du Bois surface of 350 kg at 2.8 m in cm2 (about 5.2 m2).
_NORMALISER_BOUND = {"g": WEIGHT_RANGE_KG[1] * 1000.0, "cm2": 52000.0}


class UnitRules(Base):
    """Header checks, Units (0054,1001) and the conversion paths."""

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
        bad = [f for f in self.h.frames if not (math.isfinite(f.slope) and f.slope > 0)]
        if bad:
            what = "not positive" if math.isfinite(bad[0].slope) else "not a finite number"
            raise self.refuse(f"RescaleSlope (0028,1053) is {bad[0].slope:g} in {bad[0].label}, {what}", _SLOPE_FIX)
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
        imaging, evidence = self.imaging()
        self.p.imaging, self.p.imaging_evidence = imaging, list(evidence)
        if imaging == "SPECT":
            if units not in ("BQML", "GML", "CM2ML"):
                raise self.refuse(
                    f"the series is a SPECT stored with Modality PT ({'; '.join(evidence)}) and its Units (0054,1001) "
                    f"is {units}: only a quantitative SPECT in Bq/mL (or already in SUV) can give SUV",
                    "reconstruct the SPECT quantitatively in BQML (xSPECT Quant, for one)")
            self.rule(f"quantitative SPECT stored with Modality PT ({'; '.join(evidence)}): SUV = C x N / D is "
                      "defined by the activity concentration whatever camera measured it, so the PET rules apply")
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
        raise self.refuse(f"Units (0054,1001) is {units} in this {self.h.scanner} series: {reason}",
                          f"reconstruct the {imaging} with quantitative units (BQML)")

    def from_counts(self) -> np.ndarray:
        frames = self.h.frames
        acsf = [f.philips_activity_factor for f in frames]
        suvsf = [f.philips_suv_factor for f in frames]
        self.p.inputs["Philips activity concentration scale factor (7053,1009)"] = summary(acsf)
        self.p.inputs["Philips SUV scale factor (7053,1000)"] = summary(suvsf)
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
        bad = next((f for f in frames if f.frame_duration_ms is None or not math.isfinite(f.frame_duration_ms)
                    or f.frame_duration_ms <= 0), None)
        if bad is not None:
            state = "missing" if bad.frame_duration_ms is None else f"{bad.frame_duration_ms:g} in {bad.label}"
            raise self.refuse(
                f"Units CNTS on this {self.h.scanner} series without the Philips private scale factors "
                f"(7053,1009)/(7053,1000), and ActualFrameDuration (0018,1242) is {state}, so counts cannot be turned "
                "into counts per second", "export the series from the scanner in BQML")
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
            volume = frame.pixel_spacing[0] * frame.pixel_spacing[1] * frame.slice_thickness / 1000.0
            if not (math.isfinite(volume) and volume > 0):
                raise self.refuse(
                    f"{what}: the voxel volume from PixelSpacing (0028,0030) {list(frame.pixel_spacing)} and "
                    f"SliceThickness (0018,0050) {frame.slice_thickness:g} in {frame.label} is {volume:g} mL",
                    "convert the original scanner export")
            voxels_ml.append(volume)
        voxel = np.asarray(voxels_ml)
        dcf = self.h.dose_calibration_factor
        self.p.inputs["DoseCalibrationFactor (0054,1322)"] = dcf
        if "DCAL" in corrected:
            self.rule(f"{what}: dose calibrated (DCAL in CorrectedImage): counts/s / voxel volume (mL) = Bq/mL")
            return self.from_activity(scale / voxel)
        if dcf is not None and math.isfinite(dcf) and dcf > 0:
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
            basis = from_ts(float(refs.min()))
            t_adm = self.injection_s(basis)
            self.p.uptake_time_s = float(self.check_uptake(float(refs.min()), t_adm))
            with np.errstate(over="ignore", under="ignore"):  # an absurd decay is refused by check_scaling
                dose_ref = dose * np.exp(-lam * (refs - t_adm))
            self.rule(f"dose decayed to the reference time: D x exp(-ln2 x (t_ref - t_inj) / {half_life:g} s)")
        else:
            state = "missing" if decay is None else repr(decay)
            raise self.refuse(f"DecayCorrection (0054,1102) is {state}, not START, ADMIN or NONE",
                              "convert the original scanner export")
        self.p.dose_at_reference_bq = float(dose_ref[0]) if np.ptp(dose_ref) == 0 else float(dose_ref.max())
        norm = self.normaliser(self.target)
        self._normaliser_record(self.target)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return scale * norm / dose_ref

    def _normaliser_record(self, key: str) -> None:
        unit = "cm2" if key == "bsa" else "g"
        names = {"bw": "body weight", "lbm": "lean body mass, James 128 (LBMJAMES128)",
                 "lbmjanma": "lean body mass, Janmahasatian (LBMJANMA)", "bsa": "body surface area, Du Bois",
                 "ibw": "ideal body weight"}
        self.p.normaliser = {"type": key, "description": names[key], "value": self.normaliser(key), "unit": unit}

    # -- scaling ---------------------------------------------------------------------------------
    def check_scaling(self, factors: np.ndarray) -> None:
        """Refuse a RescaleSlope whose stored unit is physically impossible (see module docstring).

        A factor that is not a positive finite number is refused first, naming the inputs recorded: every
        input is checked where it is read, so this is the net under that rule, not the rule itself.
        """
        bad = [k for k, factor in enumerate(factors) if not (math.isfinite(float(factor)) and factor > 0)]
        if bad:
            frame = self.h.frames[bad[0]]
            raise self.refuse(
                f"the SUV factor of {frame.label} is {float(factors[bad[0]]):g}, not a positive number (inputs: "
                f"{', '.join(f'{k} = {v}' for k, v in self.p.inputs.items() if v is not None)})",
                "convert the original scanner export")
        unit = "cm2" if self.target == "bsa" else "g"
        normaliser = (self.p.normaliser or {}).get("value") or _NORMALISER_BOUND[unit]
        for frame, factor in zip(self.h.frames, factors):
            one_unit = frame.slope * float(factor)  # SUV of one stored unit
            voxel_ml = 1.0e-3  # 1 mm3 when the voxel size is unknown: smaller than any PET voxel, the loosest bound
            if frame.pixel_spacing is not None and frame.slice_thickness:
                voxel_ml = abs(frame.pixel_spacing[0] * frame.pixel_spacing[1] * frame.slice_thickness) / 1000.0 or voxel_ml
            ceiling = SLOPE_MAX_DOSE_PER_VOXEL * normaliser / voxel_ml
            if not math.isfinite(one_unit) or one_unit > ceiling:
                raise self.refuse(
                    f"RescaleSlope (0028,1053) is {frame.slope:g} in {frame.label}: one stored unit would be SUV "
                    f"{one_unit:.3g}, more than the whole administered activity in one {voxel_ml:.3g} mL voxel "
                    f"(SUV {ceiling:.3g})", _SLOPE_FIX)
            full_scale = one_unit * (2 ** (frame.bits_stored or 16) - 1)
            if full_scale < SLOPE_MIN_FULL_SCALE_SUV:
                raise self.refuse(
                    f"RescaleSlope (0028,1053) is {frame.slope:g} in {frame.label}: the largest value its "
                    f"{frame.bits_stored or 16} stored bits can hold is SUV {full_scale:.3g}, under the "
                    f"{SLOPE_MIN_FULL_SCALE_SUV:g} that any tissue exceeds by five orders of magnitude", _SLOPE_FIX)
