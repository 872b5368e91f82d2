"""Radionuclides of PET and of quantitative SPECT: half-lives, emission, and DICOM codes.

Half-lives of the PET nuclides are the recommended values of the Laboratoire National Henri
Becquerel / DDEP nuclear data tables (http://www.lnhb.fr/nuclear-data/), in seconds; those of
the single-photon (SPECT) and therapy nuclides are the ENSDF values of NNDC NuDat
(https://www.nndc.bnl.gov/nudat3/), the source the European Pharmacopoeia's table 5.7 uses.
The header's RadionuclideHalfLife (0018,1075) is always preferred; these values are the
fallback when the header lacks it and the radionuclide is coded, the reference a header value
is checked against, and the key for recognising the nuclide from a half-life alone.

Codes: SNOMED CT concept ids of DICOM CID 4020 "PET Radionuclide" and CID 18 "Isotopes in
Radiopharmaceuticals", with the legacy SNOMED-RT ("SRT") ids that older scanners still write
(PS3.16, both columns; the SPECT ids as pydicom 3.0's copy of CID 18 and its SRT-to-SCT map
list them).

Emission decides how a series stored with Modality PT was imaged: a nuclide without a positron
branch (Tc-99m, Lu-177, In-111...) cannot be imaged by PET, so such a series is a quantitative
SPECT stored as PT (Siemens xSPECT Quant does this). Y-90 is both: bremsstrahlung SPECT, or PET
through its 3.2e-5 internal-pair-production branch; the scanner decides (netpet.dicom.tracer).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple


#: Emission kinds: a positron emitter (PET), a single-photon emitter (SPECT), a beta emitter
#: imaged either way (Y-90).
POSITRON, SINGLE_PHOTON, BETA_EITHER = "positron", "single-photon", "beta (SPECT or PET)"


@dataclass(frozen=True)
class Radionuclide:
    """A radionuclide of PET or quantitative SPECT.

    Attributes
    ----------
    name : str
        Short name as NETPET reports it, e.g. ``"F-18"``.
    half_life_s : float
        Half-life in seconds (DDEP recommended value).
    codes : tuple of (scheme, value)
        Codes DICOM files use for it (SCT and legacy SRT).
    emission : str
        :data:`POSITRON`, :data:`SINGLE_PHOTON` or :data:`BETA_EITHER`.
    therapy : bool
        Used for radionuclide therapy (GBq activities; see ``netpet.dicom.suv.bounds``).
    """

    name: str
    half_life_s: float
    codes: Tuple[Tuple[str, str], ...]
    emission: str = POSITRON
    therapy: bool = False

    @property
    def positron(self) -> bool:
        """True when PET can image it (a positron branch, however small)."""
        return self.emission in (POSITRON, BETA_EITHER)

    @property
    def mass_number(self) -> str:
        return self.name.split("-")[1]

    @property
    def symbol(self) -> str:
        return self.name.split("-")[0]


# DDEP half-lives: F-18 109.77 min; Ga-68 67.71 min; C-11 20.36 min; N-13 9.965 min;
# O-15 122.24 s; Cu-64 12.701 h; Cu-62 9.67 min; Zr-89 78.41 h; Rb-82 75.45 s;
# I-124 4.176 d; Sc-44 4.042 h; Y-86 14.74 h; Ge-68 270.95 d.
RADIONUCLIDES: Tuple[Radionuclide, ...] = (
    Radionuclide("F-18", 6586.2, (("SCT", "77004003"), ("SRT", "C-111A1"))),
    Radionuclide("Ga-68", 4062.6, (("SCT", "35337001"), ("SRT", "C-131A3"))),
    Radionuclide("C-11", 1221.66, (("SCT", "40565003"), ("SRT", "C-105A1"))),
    Radionuclide("N-13", 597.9, (("SCT", "21576001"), ("SRT", "C-107A1"))),
    Radionuclide("O-15", 122.24, (("SCT", "129504001"), ("SRT", "C-B1038"))),
    Radionuclide("Cu-64", 45723.6, (("SCT", "3932008"), ("SRT", "C-127A2"))),
    Radionuclide("Cu-62", 580.2, (("SCT", "422934004"), ("SRT", "C-127A5"))),
    Radionuclide("Zr-89", 282276.0, (("SCT", "63360001"), ("SRT", "C-168A4"))),
    Radionuclide("Rb-82", 75.45, (("SCT", "79197006"), ("SRT", "C-159A2"))),
    Radionuclide("I-124", 360806.4, (("SCT", "40937006"), ("SRT", "C-114A5"))),
    Radionuclide("Sc-44", 14551.2, (("DCM", "126600"),)),
    Radionuclide("Y-86", 53064.0, (("SCT", "10738001"), ("SRT", "C-162A3"))),
    Radionuclide("Ge-68", 23410080.0, (("SCT", "53315004"), ("SRT", "C-128A2"))),
    # NNDC NuDat (ENSDF): Tc-99m 6.0067 h; In-111 2.8047 d; I-123 13.2234 h; Ga-67 3.2617 d;
    # Tl-201 3.0421 d; Lu-177 6.647 d; I-131 8.0252 d; Y-90 64.05 h. Codes: CID 18.
    Radionuclide("Tc-99m", 21624.12, (("SCT", "72454006"), ("SRT", "C-163A8")), SINGLE_PHOTON),
    Radionuclide("In-111", 242326.08, (("SCT", "56609000"), ("SRT", "C-145A4")), SINGLE_PHOTON),
    Radionuclide("I-123", 47604.24, (("SCT", "21572004"), ("SRT", "C-114A4")), SINGLE_PHOTON),
    Radionuclide("Ga-67", 281810.88, (("SCT", "2008008"), ("SRT", "C-131A2")), SINGLE_PHOTON),
    Radionuclide("Tl-201", 262837.44, (("SCT", "60057003"), ("SRT", "C-138A9")), SINGLE_PHOTON),
    Radionuclide("Lu-177", 574300.8, (("SCT", "447553000"), ("SRT", "C-101ED")), SINGLE_PHOTON, therapy=True),
    Radionuclide("I-131", 693377.28, (("SCT", "1368003"), ("SRT", "C-114B1")), SINGLE_PHOTON, therapy=True),
    Radionuclide("Y-90", 230580.0, (("SCT", "14691008"), ("SRT", "C-162A7")), BETA_EITHER, therapy=True),
)

_BY_NAME: Dict[str, Radionuclide] = {r.name: r for r in RADIONUCLIDES}
_BY_CODE: Dict[Tuple[str, str], Radionuclide] = {
    code: r for r in RADIONUCLIDES for code in r.codes
}
# Element names as they appear in code meanings ("^18^Fluorine") and free text.
_ELEMENT = {
    "F": "fluorine", "Ga": "gallium", "C": "carbon", "N": "nitrogen", "O": "oxygen",
    "Cu": "copper", "Zr": "zirconium", "Rb": "rubidium", "I": "iodine", "Sc": "scandium",
    "Y": "yttrium", "Ge": "germanium", "Tc": "technetium", "In": "indium", "Tl": "thallium", "Lu": "lutetium",
}

#: Relative tolerance for recognising a nuclide by its half-life. Header values in practice
#: differ from the reference by under 0.2 % (e.g. F-18 written as 6586 or 6588 s, Ga-68 as
#: 4057 s); the closest other PET nuclide (C-11 vs N-13, or Ga-68 vs F-18) is > 35 % away.
#: Among the SPECT nuclides Ga-67 lies 0.16 % from Zr-89 and Y-90 5 % from In-111: a half-life
#: alone is matched among the positron emitters first (the series is stored as PET).
HALF_LIFE_MATCH_TOLERANCE = 0.03


def by_name(name: str) -> Radionuclide:
    """Look up a nuclide by NETPET name (``"F-18"``)."""
    return _BY_NAME[name]


def from_code(scheme: Optional[str], value: Optional[str]) -> Optional[Radionuclide]:
    """Nuclide for a (coding scheme, code value) pair; SCT/SNM3/99SDM/SRT are interchangeable."""
    if not value:
        return None
    value = str(value).strip()
    scheme = (scheme or "").strip().upper()
    for candidate in (scheme, "SCT", "SRT", "DCM"):
        nuclide = _BY_CODE.get((candidate, value))
        if nuclide is not None:
            return nuclide
    return None


def from_text(text: Optional[str]) -> Optional[Radionuclide]:
    """Nuclide named in free text: ``"^18^Fluorine"``, ``"Ga68"``, ``"68Ga"``, ``"F-18"``."""
    if not text:
        return None
    cleaned = str(text).replace("^", " ").replace("[", " ").replace("]", " ")
    for nuclide in RADIONUCLIDES:
        mass, symbol = nuclide.mass_number, nuclide.symbol
        element = _ELEMENT[symbol]
        patterns = (
            rf"(?<![A-Za-z0-9]){mass}\s*-?\s*{symbol}(?![a-z])",  # 68Ga, 18-F
            rf"(?<![A-Za-z]){symbol}\s*-?\s*{mass}(?!\d)",  # Ga68, F-18
            rf"{mass}\s*-?\s*{element}",  # 18 fluorine
            rf"{element}\s*-?\s*{mass}(?!\d)",  # fluorine-18
        )
        for pattern in patterns:
            flags = 0 if pattern.startswith("(?<![A-Za-z0-9])") or "(?<![A-Za-z])" in pattern else re.I
            if re.search(pattern, cleaned, flags):
                return nuclide
    return None


def from_half_life(half_life_s: Optional[float]) -> Optional[Radionuclide]:
    """Nuclide whose reference half-life is within the match tolerance, if exactly one is.

    Positron emitters are matched first; the others only when no positron emitter matches.
    """
    if not half_life_s or not math.isfinite(half_life_s) or half_life_s <= 0:
        return None
    for group in ([r for r in RADIONUCLIDES if r.emission == POSITRON],
                  [r for r in RADIONUCLIDES if r.emission != POSITRON]):
        matches = [r for r in group if abs(half_life_s - r.half_life_s) / r.half_life_s <= HALF_LIFE_MATCH_TOLERANCE]
        if matches:
            return matches[0] if len(matches) == 1 else None
    return None


def named(scheme: Optional[str], value: Optional[str], meaning: Optional[str]) -> Optional[Radionuclide]:
    """Nuclide of a RadionuclideCodeSequence item: by code, else by its code meaning."""
    return from_code(scheme, value) or from_text(meaning)
