"""The radionuclide: which one the header names, its half-life, and whether the series is PET or SPECT.

The half-life is the header's RadionuclideHalfLife (0018,1075), checked against the nuclide the
header names (RadionuclideCodeSequence (0054,0300), else the nuclide named in the code meaning or
in Radiopharmaceutical (0018,0031), or FDG's F-18): a header value more than
radionuclides.HALF_LIFE_MATCH_TOLERANCE (3 %) from that nuclide's reference half-life is refused
(67.7 s on an F-18 series is Ga-68's 67.7 min), unless --half-life confirms a value; the override
is then used, with a warning when it disagrees. A header value that matches no known nuclide
while 60 or 3600 times it does is refused as minutes or hours. Without a header value the named
nuclide's reference half-life is used (warned). NaN and infinite values are refused.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

from netpet.dicom import radionuclides
from netpet.dicom.radionuclides import HALF_LIFE_MATCH_TOLERANCE, Radionuclide
from netpet.dicom.suv.base import Base
from netpet.dicom.suv.bounds import HALF_LIFE_RANGE_S
from netpet.dicom.tracer import agent_named, imaging_of

_TAG = "RadionuclideHalfLife (0018,1075)"
_FIX = "confirm the half-life with --half-life S"


def _off(value: float, nuclide: Radionuclide) -> bool:
    return abs(value - nuclide.half_life_s) / nuclide.half_life_s > HALF_LIFE_MATCH_TOLERANCE


class NuclideRules(Base):
    """Radionuclide, half-life and imaging kind (see module docstring)."""

    def named_nuclide(self) -> Tuple[Optional[Radionuclide], str]:
        """The nuclide the header names, and where it is named (None, "" when it names none)."""
        if "named" in self._cache:
            return self._cache["named"]
        rp = self.h.radiopharmaceutical
        found: Tuple[Optional[Radionuclide], str] = (None, "")
        if rp.nuclide_code is not None:
            nuclide = radionuclides.named(rp.nuclide_code.scheme, rp.nuclide_code.value, rp.nuclide_code.meaning)
            if nuclide is not None:
                found = (nuclide, f"RadionuclideCodeSequence (0054,0300) {rp.nuclide_code.text()}")
        if found[0] is None:
            for where, text in (("Radiopharmaceutical (0018,0031)", rp.text),
                                ("RadiopharmaceuticalCodeSequence (0054,0304)",
                                 rp.agent_code.meaning if rp.agent_code else None)):
                nuclide = radionuclides.from_text(text)
                if nuclide is not None:
                    found = (nuclide, f"{where} {text!r}")
                    break
        if found[0] is None and agent_named(rp) == "FDG":
            found = (radionuclides.by_name("F-18"), "the agent FDG, which is labelled with F-18")
        self._cache["named"] = found
        return found

    def imaging(self) -> Tuple[str, List[str]]:
        """("PET" or "SPECT", evidence): a quantitative SPECT stored with Modality PT is recognised."""
        if "imaging" not in self._cache:
            nuclide = self.named_nuclide()[0]
            raw = self.h.radiopharmaceutical.half_life_s
            if nuclide is None and raw is not None and math.isfinite(raw):
                nuclide = radionuclides.from_half_life(raw)
            self._cache["imaging"] = imaging_of(nuclide, self.h.model, self.h.description)
        return self._cache["imaging"]

    def half_life_s(self) -> float:
        if "half_life" in self._cache:
            return self._cache["half_life"]
        rp = self.h.radiopharmaceutical
        named, where = self.named_nuclide()
        raw = rp.half_life_s
        self.p.inputs[_TAG] = raw
        if self.ov.half_life_s is not None:
            value, source = float(self.ov.half_life_s), "override"
            if not math.isfinite(value):
                raise self.refuse(f"the half-life override is {value}", "give --half-life in seconds")
            if value <= 0:
                raise self.refuse(f"the half-life override {value:g} s is not positive", "give --half-life in seconds")
            if named is not None and _off(value, named):
                self.warn(f"the half-life override {value:g} s disagrees with {named.name} ({named.half_life_s:g} s), "
                          f"named by {where}; used as given")
            elif not HALF_LIFE_RANGE_S[0] <= value <= HALF_LIFE_RANGE_S[1]:
                self.warn(f"the half-life override {value:g} s lies outside the {HALF_LIFE_RANGE_S[0]:g}-"
                          f"{HALF_LIFE_RANGE_S[1]:g} s of imaging radionuclides; used as given")
        elif raw is not None and not math.isfinite(raw):
            raise self.refuse(f"{_TAG} is {raw}", "give the half-life with --half-life S")
        elif raw is not None and raw > 0:
            value, source = raw, _TAG
            if named is not None and _off(value, named):
                ratio = value / named.half_life_s
                unit = next((name for factor, name in ((60.0, "minutes"), (3600.0, "hours"))
                             if not _off(value * factor, named)), None)
                hint = f", as if written in {unit}" if unit else f" ({ratio:.3g} times it)"
                raise self.refuse(
                    f"{_TAG} is {value:g} s but {where} names {named.name}, whose half-life is "
                    f"{named.half_life_s:g} s{hint}", _FIX)
            if named is None and radionuclides.from_half_life(value) is None:
                low, high = HALF_LIFE_RANGE_S
                for factor, unit in ((60.0, "minutes"), (3600.0, "hours")):
                    scaled = radionuclides.from_half_life(value * factor)
                    if scaled is not None:
                        raise self.refuse(
                            f"{_TAG} is {value:g} s, the half-life of no known radionuclide, but {value:g} {unit} is "
                            f"{scaled.name}'s", _FIX)
                if not low <= value <= high:
                    raise self.refuse(f"{_TAG} is {value:g} s, outside the {low:g}-{high:g} s of imaging radionuclides",
                                      _FIX)
                self.warn(f"{_TAG} {value:g} s is the half-life of no radionuclide NETPET knows and no radionuclide is "
                          "named to check it against; used as given")
        elif named is not None:
            value = named.half_life_s
            source = f"{named.name} reference half-life, radionuclide from {where}"
            self.warn(f"{_TAG} is {'missing' if raw is None else f'{raw:g}'}; the half-life of {named.name} "
                      f"({named.half_life_s:g} s), named by {where}, was used")
        else:
            state = "missing" if raw is None else f"{raw:g}"
            raise self.refuse(
                f"{_TAG} is {state} and RadionuclideCodeSequence (0054,0300) names no known radionuclide",
                "give the half-life with --half-life S",
            )
        nuclide = named or radionuclides.from_half_life(value)
        self.p.radionuclide = nuclide.name if nuclide else None
        self.p.half_life_s, self.p.half_life_source = value, source
        self._cache["half_life"] = value
        return value
