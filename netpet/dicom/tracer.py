"""Which tracer a PET series shows: 68Ga-DOTATATE/TOC/NOC, 18F-FDG, or something else.

Evidence, strongest first: the radiopharmaceutical code (DICOM CID 4021), the radionuclide
code (CID 4020), the free-text Radiopharmaceutical (0018,0031) and code meanings, and the
half-life. Each conclusion records the evidence it rests on. A series whose agent is not
stated but whose nuclide is Ga-68 (or F-18) is classed as the study's SSTR (or FDG) tracer,
flagged as inferred.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from netpet.dicom import radionuclides
from netpet.dicom.pet_header import CodedValue, Radiopharmaceutical

#: Agent codes of CID 4021 "PET Radiopharmaceutical" (SCT with legacy SRT, UMLS, NCIt, DCM).
_AGENT_CODES = {
    ("SCT", "35321007"): "FDG", ("SRT", "C-B1031"): "FDG",
    ("SCT", "724025002"): "DOTATATE",
    ("UMLS", "C2713594"): "DOTATOC",
    ("SCT", "129501009"): "NaF", ("SRT", "C-B1032"): "NaF",
    ("NCIT", "C118961"): "PSMA-11", ("DCM", "126759"): "PSMA-617", ("DCM", "126758"): "PSMA-1007",
    ("SCT", "456992002"): "choline", ("SRT", "C-E0273"): "choline",
    ("SCT", "5811000122108"): "FDOPA", ("SRT", "C-E0241"): "FDOPA",
}

#: Agent names in free text, checked in order (SSTR analogues before generic words).
_AGENT_TEXT = (
    ("DOTATATE", r"dota[\s\-_]*tate|dotatate|oxodotreotide|netspot|ga[\s\-_]*tate|\btate\b"),
    ("DOTATOC", r"dota[\s\-_]*toc|edotreotide|\btoc\b"),
    ("DOTANOC", r"dota[\s\-_]*noc|\bnoc\b"),
    ("FDG", r"fdg|fluoro[\s\-]*deoxy[\s\-]*glucose|fludeoxyglucose|fluorodeoxyglucose|deoxyglucose"),
    ("PSMA", r"psma"),
    ("FDOPA", r"dopa"),
    ("NaF", r"\bnaf\b|sodium fluoride|fluoride"),
    ("choline", r"choline"),
    ("FAPI", r"fapi"),
)

SSTR_AGENTS = ("DOTATATE", "DOTATOC", "DOTANOC")


@dataclass
class Tracer:
    """A PET tracer and the evidence for it.

    Attributes
    ----------
    label : str
        E.g. ``"68Ga-DOTATATE"``, ``"18F-FDG"``, ``"68Ga-(agent not stated)"``.
    key : str
        ``"dotatate"`` for the SSTR analogues (DOTATATE, DOTATOC, DOTANOC), ``"fdg"``,
        ``"other"`` or ``"unknown"``: the grouping the study statistics use.
    nuclide : str or None
        ``"Ga-68"``, ``"F-18"``...
    agent : str or None
        ``"DOTATATE"``, ``"FDG"``...
    inferred : bool
        True when the agent was not stated and the key rests on the nuclide alone.
    evidence : list of str
    """

    label: str
    key: str
    nuclide: Optional[str]
    agent: Optional[str]
    inferred: bool = False
    evidence: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _agent_from_code(code: Optional[CodedValue]) -> Optional[str]:
    if code is None or not code.value:
        return None
    return _AGENT_CODES.get(((code.scheme or "").upper(), code.value.strip()))


def _agent_from_text(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    lowered = text.lower()
    for agent, pattern in _AGENT_TEXT:
        if re.search(pattern, lowered):
            return agent
    return None


def identify(rp: Radiopharmaceutical) -> Tracer:
    """Identify the tracer from a series' radiopharmaceutical information."""
    evidence: List[str] = []
    nuclide = None
    if rp.nuclide_code is not None:
        nuclide = radionuclides.from_code(rp.nuclide_code.scheme, rp.nuclide_code.value)
        if nuclide is None:
            nuclide = radionuclides.from_text(rp.nuclide_code.meaning)
        if nuclide is not None:
            evidence.append(f"RadionuclideCodeSequence {rp.nuclide_code.text()}")
    agent = _agent_from_code(rp.agent_code)
    if agent is not None:
        evidence.append(f"RadiopharmaceuticalCodeSequence {rp.agent_code.text()}")
    texts = [t for t in (rp.text, rp.agent_code.meaning if rp.agent_code else None) if t]
    for text in texts:
        if agent is None:
            agent = _agent_from_text(text)
            if agent is not None:
                evidence.append(f"Radiopharmaceutical text {text!r}")
        if nuclide is None:
            nuclide = radionuclides.from_text(text)
            if nuclide is not None:
                evidence.append(f"nuclide named in {text!r}")
    if nuclide is None and rp.half_life_s:
        nuclide = radionuclides.from_half_life(rp.half_life_s)
        if nuclide is not None:
            evidence.append(f"RadionuclideHalfLife {rp.half_life_s:g} s matches {nuclide.name}")
    if agent == "FDG" and nuclide is None:
        nuclide = radionuclides.by_name("F-18")
    if agent in SSTR_AGENTS and nuclide is None:
        nuclide = radionuclides.by_name("Ga-68")
    nuclide_name = nuclide.name if nuclide else None
    prefix = f"{nuclide.mass_number}{nuclide.symbol}" if nuclide else "?"
    inferred = False
    if agent in SSTR_AGENTS:
        key = "dotatate"
    elif agent == "FDG":
        key = "fdg"
    elif agent is not None:
        key = "other"
    elif nuclide_name == "Ga-68":
        key, inferred = "dotatate", True
        evidence.append("agent not stated: Ga-68 taken as the study's somatostatin-receptor tracer")
    elif nuclide_name == "F-18":
        key, inferred = "fdg", True
        evidence.append("agent not stated: F-18 taken as the study's FDG")
    elif nuclide_name is not None:
        key = "other"
    else:
        key = "unknown"
    agent_text = agent if agent else "(agent not stated)"
    label = f"{prefix}-{agent_text}" if nuclide or agent else "unknown"
    return Tracer(label=label, key=key, nuclide=nuclide_name, agent=agent, inferred=inferred, evidence=evidence)
