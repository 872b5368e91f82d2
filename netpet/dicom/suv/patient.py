"""Patient and administration inputs: weight, height, sex, the SUV normaliser, and the dose."""

from __future__ import annotations

import math

from netpet.dicom import body, radionuclides
from netpet.dicom.suv.base import Base
from netpet.dicom.suv.bounds import (
    DOSE_RANGE_BQ, GRAMS_THRESHOLD, HEIGHT_RANGE_M, MBQ_PER_MCI, MBQ_THRESHOLD, MCI_LIKE_MBQ, THERAPY_DOSE_RANGE_BQ,
    WEIGHT_RANGE_KG,
)


class PatientRules(Base):
    """Weight, height, sex, normaliser and dose (manual sections "Patient's weight", "Radiopharmaceutical dose")."""

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
        low, high = HEIGHT_RANGE_M
        if self.ov.height_m is not None:
            value, source = float(self.ov.height_m), "override"
            if not (math.isfinite(value) and 0 < value <= high):
                raise self.refuse(
                    f"the height override {value:g} m is not a height in metres",
                    "give --height in metres, such as 1.72",
                )
            if value < low:
                self.warn(f"the height override {value:g} m lies under the {low:g} m a patient measures; used as given")
        else:
            raw = self.h.size_raw
            self.p.inputs["PatientSize (0010,1020)"] = raw
            if raw is None or raw == 0:
                state = "missing" if raw is None else f"{raw:g}"
                raise self.refuse(
                    f"PatientSize (0010,1020) is {state} and SUV{self.target} needs the height",
                    "give the height with --height M",
                )
            if not (math.isfinite(raw) and low <= raw <= high):
                hint = (" (centimetres, or a weight in kg entered in the wrong field?)" if 100 * low <= raw <= 100 * high
                        else " (millimetres?)" if 1000 * low <= raw <= 1000 * high else "")
                raise self.refuse(
                    f"PatientSize (0010,1020) is {raw:g}, not a height in metres within the {low:g}-{high:g} m a patient "
                    f"measures{hint}", "confirm or correct it with --height M",
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
                "use another SUV type (--type lbmjanma, for one) or check --weight/--height",
            )
        self._cache[cache_key] = value
        return value

    # -- dose ------------------------------------------------------------------------------
    def dose_range(self):
        """((low, high) Bq, what it is the range of): therapy nuclides have their own upper bound."""
        nuclide = self.named_nuclide()[0] or radionuclides.from_half_life(self.h.radiopharmaceutical.half_life_s)
        if nuclide is not None and nuclide.therapy:
            return THERAPY_DOSE_RANGE_BQ, f"{nuclide.name} therapy"
        return DOSE_RANGE_BQ, f"diagnostic {self.imaging()[0]}"

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
            (low, high), what = self.dose_range()
            if not low <= value <= high:
                self.warn(f"the dose override {value / 1e6:g} MBq lies outside the {low / 1e6:g}-"
                          f"{high / 1e6:g} MBq of {what}; used as given")
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
        (low, high), what = self.dose_range()
        if not low <= value <= high:
            mbq = value / 1e6
            hint = (f" ({raw:g} looks like millicuries: {raw:g} mCi = {raw * MBQ_PER_MCI:g} MBq)"
                    if raw < MBQ_THRESHOLD and MCI_LIKE_MBQ[0] <= raw <= MCI_LIKE_MBQ[1] else "")
            raise self.refuse(f"RadionuclideTotalDose (0018,1074) is {raw:g}, read as {mbq:g} MBq, outside the "
                              f"{low / 1e6:g}-{high / 1e6:g} MBq of {what}{hint}",
                              "confirm or correct it with --dose MBQ")
        if not header_only or self.p.dose_bq is None:
            self.p.dose_bq, self.p.dose_source = value, source
        self._cache[key] = value
        return value

