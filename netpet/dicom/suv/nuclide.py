"""The radionuclide's half-life."""

from __future__ import annotations

from netpet.dicom import radionuclides
from netpet.dicom.suv.base import Base


class NuclideRules(Base):
    """Half-life: the header's, else the coded radionuclide's reference value."""

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

