"""One run of the SUV rules over one series header: state, refusal, rules and warnings."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List, Optional, Sequence

from netpet.dicom import body
from netpet.dicom.pet_header import PetHeader
from netpet.dicom.suv.record import SUV_TYPES, Overrides, Provenance, output_unit
from netpet.errors import SUVConversionError


class Base:
    """One run of the rules over one series header (see :mod:`netpet.dicom.suv`); the rule
    modules add their methods as mixins."""

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


def ts(when: _dt.datetime) -> float:
    """Seconds since 1970 of a naive local datetime (time arithmetic only, no time zone)."""
    return (when - EPOCH).total_seconds()


def from_ts(seconds: float) -> _dt.datetime:
    return EPOCH + _dt.timedelta(seconds=seconds)


EPOCH = _dt.datetime(1970, 1, 1)


def summary(values: Sequence[Optional[float]]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if len(set(present)) == 1 and len(present) == len(values):
        return present[0]
    return {"min": min(present), "max": max(present), "present_in": f"{len(present)}/{len(values)} frames"}

