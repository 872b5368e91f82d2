"""The administration time, placed relative to the decay reference."""

from __future__ import annotations

import datetime as _dt

from netpet.dicom.dates import iso
from netpet.dicom.suv.base import Base, ts
from netpet.dicom.suv.bounds import INJECTION_AFTER_REFERENCE_S, TIME_OF_DAY_MAX_HALF_LIFE_S


class InjectionTime(Base):
    """Administration time (manual, "Radiopharmaceutical dose", t_adm)."""

    def injection_s(self, basis: _dt.datetime) -> float:
        """Administration time, seconds since epoch, placed relative to the reference ``basis``."""
        half_life = self.half_life_s()
        rp = self.h.radiopharmaceutical
        self.p.inputs["RadiopharmaceuticalStartDateTime (0018,1078)"] = iso(rp.start_datetime)
        self.p.inputs["RadiopharmaceuticalStartTime (0018,1072)"] = rp.start_time.isoformat() if rp.start_time else None
        override = self.ov.injection_time
        if isinstance(override, _dt.datetime):
            return self._injection(override, "override")
        if isinstance(override, _dt.time):
            return self._time_of_day(basis, override, "override (time of day)", half_life, check_half_life=False)
        if rp.start_datetime is not None:
            uptake = (basis - rp.start_datetime).total_seconds()
            window = max(86400.0, 4.0 * half_life)
            if -INJECTION_AFTER_REFERENCE_S <= uptake < window:
                return self._injection(rp.start_datetime, "RadiopharmaceuticalStartDateTime (0018,1078)")
            self.warn(
                f"RadiopharmaceuticalStartDateTime {rp.start_datetime.isoformat()} lies {uptake / 3600:.1f} h "
                f"before the reference time {basis.isoformat()}, outside the plausible window: its date "
                "is not trusted (anonymised?) and only its time of day is used"
            )
            return self._time_of_day(
                basis, rp.start_datetime.time(),
                "time of day of RadiopharmaceuticalStartDateTime (0018,1078)", half_life,
            )
        if rp.start_time is not None:
            return self._time_of_day(basis, rp.start_time, "RadiopharmaceuticalStartTime (0018,1072)", half_life)
        raise self.refuse(
            "RadiopharmaceuticalStartDateTime (0018,1078) and RadiopharmaceuticalStartTime (0018,1072) "
            "are both missing",
            "give the injection time with --injection-time ISO8601",
        )

    def _injection(self, when: _dt.datetime, rule: str) -> float:
        self.p.injection_time, self.p.injection_time_rule = iso(when), rule
        self.rule(f"injection time: {rule}")
        return ts(when)

    def _time_of_day(self, basis: _dt.datetime, tod: _dt.time, source: str, half_life: float,
                     check_half_life: bool = True) -> float:
        if check_half_life and half_life >= TIME_OF_DAY_MAX_HALF_LIFE_S:
            raise self.refuse(
                f"only the time of day of injection is known ({source}) and the half-life "
                f"{half_life / 3600:.1f} h makes an uptake of more than a day possible",
                "give the injection date and time with --injection-time ISO8601",
            )
        when = _dt.datetime.combine(basis.date(), tod)
        rule = f"{source} on the reference date"
        if (basis - when).total_seconds() < -INJECTION_AFTER_REFERENCE_S:
            when -= _dt.timedelta(days=1)
            rule = f"{source} on the day before the reference date (injection before midnight)"
            self.warn(f"injection time {tod.isoformat()} is after the scan's time of day: taken as the previous day")
        return self._injection(when, rule)

