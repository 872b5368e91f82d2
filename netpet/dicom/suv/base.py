"""One run of the SUV rules over one series header: state, refusal, rules and warnings."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List, Optional, Sequence

from netpet.dicom import body
from netpet.dicom.pet_header import PetHeader
from netpet.dicom.suv.bounds import SESSION_DATE_GAP_S
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

        Series Date and Acquisition Date may differ legitimately: a scan that crosses midnight has
        its acquisitions dated the next day, minutes after the series start. Within one session the
        two lie within the longest acquisition; a gap of more than SESSION_DATE_GAP_S (12 h) means
        one date was altered (anonymisation shifts dates, sometimes not all of them). The times of
        day are then kept and the acquisition dates moved by whole days onto the series date, and a
        rule says so: the comparison of times is right again, so no SUV changes and nothing is warned.
        """
        acq = [f.acquisition for f in self.h.frames]
        present = [a for a in acq if a is not None]
        series = self.h.series_datetime
        if not present or series is None:
            return acq
        gap = (series - min(present)).total_seconds()
        if abs(gap) <= SESSION_DATE_GAP_S:
            if series.date() != min(present).date():
                self.rule(f"SeriesDate {series.date().isoformat()} and AcquisitionDate {min(present).date().isoformat()} "
                          f"differ but the times lie {abs(gap):.0f} s apart: the scan crossed midnight; used as written")
            return acq
        days = round(gap / 86400.0)
        shift = _dt.timedelta(days=days)
        self.rule(
            f"AcquisitionDate and SeriesDate disagree by {gap / 86400:.1f} days (more than {SESSION_DATE_GAP_S / 3600:g} h "
            f"apart: a date altered by anonymisation): acquisition times were moved by {days:+d} days onto the series date"
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
    """The datetime of ``seconds`` since 1970, clamped to what datetime holds (years 1-9999)."""
    try:
        return EPOCH + _dt.timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        return _dt.datetime.max if seconds > 0 else _dt.datetime.min


EPOCH = _dt.datetime(1970, 1, 1)


def summary(values: Sequence[Optional[float]]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if len(set(present)) == 1 and len(present) == len(values):
        return present[0]
    return {"min": min(present), "max": max(present), "present_in": f"{len(present)}/{len(values)} frames"}

