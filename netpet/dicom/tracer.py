"""Which tracer a PET series shows: 68Ga-DOTATATE/TOC/NOC, 18F-FDG, or something else.

Evidence, strongest first: the radiopharmaceutical code (DICOM CID 4021), the radionuclide
code (CID 4020), the free-text Radiopharmaceutical (0018,0031) and code meanings, and the
half-life. Each conclusion records the evidence it rests on. A series whose agent is not
stated but whose nuclide is Ga-68 (or F-18) is classed as the study's SSTR (or FDG) tracer,
flagged as inferred.

Not every series stored with Modality PT is a PET: quantitative SPECT reconstructions (Siemens
xSPECT Quant, for one) are stored as PT in Bq/mL. :func:`imaging_of` recognises them, from a
nuclide without a positron branch (Tc-99m, Lu-177, In-111...), a SPECT camera in
ManufacturerModelName (0008,1090) or "SPECT" in the SeriesDescription, and labels the tracer's
``imaging`` as ``"SPECT"``; such a series is never grouped with the study's PET tracers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

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
    ("DOTATATE", r"dota[\s\-_]*tate|dotatate|oxodotreotide|netspot|lutathera|ga[\s\-_]*tate|\btate\b"),
    ("DOTATOC", r"dota[\s\-_]*toc|edotreotide|\btoc\b"),
    ("DOTANOC", r"dota[\s\-_]*noc|\bnoc\b"),
    ("FDG", r"fdg|fluoro[\s\-]*deoxy[\s\-]*glucose|fludeoxyglucose|fluorodeoxyglucose|deoxyglucose"),
    ("PSMA", r"psma|pluvicto|vipivotide"),
    ("FDOPA", r"dopa"),
    ("NaF", r"\bnaf\b|sodium fluoride|fluoride"),
    ("choline", r"choline"),
    ("FAPI", r"fapi"),
)

SSTR_AGENTS = ("DOTATATE", "DOTATOC", "DOTANOC")

#: Product names that fix the nuclide when no nuclide is named: Lutathera (177Lu-oxodotreotide),
#: Pluvicto (177Lu-vipivotide tetraxetan), Octreoscan (111In-pentetreotide), NETSPOT (68Ga-DOTATATE),
#: Detectnet (64Cu-DOTATATE).
_PRODUCT_NUCLIDES = (
    (r"lutathera|pluvicto|vipivotide", "Lu-177"), (r"octreoscan|pentetreotide", "In-111"),
    (r"netspot", "Ga-68"), (r"detectnet", "Cu-64"),
)

#: SPECT (gamma camera) models as ManufacturerModelName (0008,1090) names them: Siemens Symbia
#: (T, E, S, Intevo, Pro.specta), e.cam, ECAT-free Orbiter; GE Discovery NM, NM/CT 670/860/870,
#: NM 830, Infinia, Millennium, Optima NM/CT 640, Ventri, StarGuide; Philips BrightView,
#: Precedence, SKYLight, Forte, Irix; Spectrum Dynamics Veriton and D-SPECT; Mediso AnyScan SC
#: and Nucline; MiE Scintron. PET/CT models never carry these words.
_SPECT_MODELS = re.compile(
    r"symbia|intevo|pro\.?\s*specta|e\.?\s*cam\b|orbiter|discovery\s*nm|\bnm\s*/?\s*ct|\bnm\s*8[3-9]0|infinia|"
    r"millennium|optima\s*nm|ventri|starguide|brightview|precedence|skylight|\bforte\b|\birix\b|veriton|"
    r"d-?spect|anyscan\s*s|nucline|scintron|\bspect\b",
    re.I,
)
#: SPECT named in a SeriesDescription (0008,103E): "xSPECT Quant", "SPECT/CT", "Lu177 SPECT".
_SPECT_DESCRIPTION = re.compile(r"(?<![a-z])x?spect(?![a-z])", re.I)


def agent_named(rp: Radiopharmaceutical) -> Optional[str]:
    """The agent the radiopharmaceutical code or text names (``"FDG"``, ``"DOTATATE"``...), or None."""
    agent = _agent_from_code(rp.agent_code)
    for text in (rp.text, rp.agent_code.meaning if rp.agent_code else None):
        agent = agent or _agent_from_text(text)
    return agent


def imaging_of(nuclide: Optional[radionuclides.Radionuclide], model: Optional[str] = None,
               description: Optional[str] = None) -> Tuple[str, List[str]]:
    """``("SPECT", evidence)`` for a quantitative SPECT stored as PT, else ``("PET", evidence)``.

    A nuclide without a positron branch decides alone (PET cannot image it); otherwise a SPECT
    camera model or "SPECT" in the series description does. Y-90, imaged both ways, is SPECT
    only on that scanner evidence.
    """
    evidence: List[str] = []
    if nuclide is not None and not nuclide.positron:
        evidence.append(f"{nuclide.name} has no positron emission ({nuclide.emission}): PET cannot image it")
    if model and _SPECT_MODELS.search(model):
        evidence.append(f"ManufacturerModelName {model!r} is a SPECT camera")
    if description and _SPECT_DESCRIPTION.search(description):
        evidence.append(f"SeriesDescription {description!r} names SPECT")
    return ("SPECT" if evidence else "PET"), evidence


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
    imaging : str
        ``"PET"``, or ``"SPECT"`` for a quantitative SPECT stored as PT (see :func:`imaging_of`).
    imaging_evidence : list of str
    """

    label: str
    key: str
    nuclide: Optional[str]
    agent: Optional[str]
    inferred: bool = False
    evidence: List[str] = field(default_factory=list)
    imaging: str = "PET"
    imaging_evidence: List[str] = field(default_factory=list)

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


def identify(rp: Radiopharmaceutical, model: Optional[str] = None, description: Optional[str] = None) -> Tracer:
    """Identify the tracer from a series' radiopharmaceutical information.

    ``model`` (ManufacturerModelName) and ``description`` (SeriesDescription) let a quantitative
    SPECT stored as PT be recognised by its camera when its nuclide does not tell (see
    :func:`imaging_of`). A SPECT tracer's key is ``"other"``: the study's SSTR and FDG groups are PET.
    """
    evidence: List[str] = []
    nuclide = None
    if rp.nuclide_code is not None:
        nuclide = radionuclides.named(rp.nuclide_code.scheme, rp.nuclide_code.value, rp.nuclide_code.meaning)
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
    if nuclide is None:
        for text in texts:
            product = next((name for word, name in _PRODUCT_NUCLIDES if re.search(word, text, re.I)), None)
            if product is not None:
                nuclide = radionuclides.by_name(product)
                evidence.append(f"{text!r} is a {product} product")
                break
    imaging, imaging_evidence = imaging_of(nuclide, model, description)
    if imaging == "PET" and agent == "FDG" and nuclide is None:
        nuclide = radionuclides.by_name("F-18")
    if imaging == "PET" and agent in SSTR_AGENTS and nuclide is None:
        nuclide = radionuclides.by_name("Ga-68")
    nuclide_name = nuclide.name if nuclide else None
    prefix = f"{nuclide.mass_number}{nuclide.symbol}" if nuclide else "?"
    inferred = False
    if imaging == "SPECT":
        key = "other"
    elif agent in SSTR_AGENTS:
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
    return Tracer(label=label, key=key, nuclide=nuclide_name, agent=agent, inferred=inferred, evidence=evidence,
                  imaging=imaging, imaging_evidence=imaging_evidence)
