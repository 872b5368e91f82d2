"""What a SUV conversion takes (overrides) and what it reports (provenance)."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

SUV_TYPES: Tuple[str, ...] = ("bw", "lbm", "lbmjanma", "bsa", "ibw")


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
    imaging: str = "PET"
    imaging_evidence: List[str] = field(default_factory=list)
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



def describe_provenance(p: Dict[str, Any], output: Optional[str] = None) -> str:
    """The provenance record as text: one line per input value with its source, then rules and warnings."""
    lines = [
        f"SUV{p['suv_type']} ({p['output_unit']})" + (f" written to {output}" if output else ""),
        f"series    {p['series']}",
        f"tracer    {(p.get('tracer') or {}).get('label')}  {p.get('hybrid') or ''}".rstrip(),
        *([f"imaging   quantitative SPECT stored as PT ({'; '.join(p.get('imaging_evidence') or [])})"]
          if p.get("imaging") == "SPECT" else []),
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
