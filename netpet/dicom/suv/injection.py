"""The administration time, placed relative to the decay reference, and the uptake it gives.

RadiopharmaceuticalStartDateTime (0018,1078) carries the date; RadiopharmaceuticalStartTime
(0018,1072) only the time of day, placed on the reference date (or the day before, for an
injection before midnight). A value is *plausible* when the uptake it gives lies between
-INJECTION_AFTER_REFERENCE_S and UPTAKE_MAX_HALF_LIVES half-lives. When both are present:

- equal times of day: the DateTime is used if plausible; otherwise its date is not trusted
  (anonymisation shifts dates) and the time of day is placed as for StartTime;
- different times of day: the plausible one wins; if both are plausible and their difference
  changes SUV by more than SUV_WARNING the conversion is refused (nothing tells which is right),
  as it is when neither is plausible. An implausible DateTime never displaces a plausible
  StartTime, so it cannot move the injection to another day.

Whatever the source, an uptake beyond UPTAKE_MAX_HALF_LIVES half-lives, or an injection more
than INJECTION_AFTER_REFERENCE_S after the reference, is refused unless the injection time is an
override (then it is used, with a warning).
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Tuple

from netpet.dicom.dates import iso
from netpet.dicom.suv.base import Base, from_ts, ts
from netpet.dicom.suv.bounds import (
    INJECTION_AFTER_REFERENCE_S, SUV_WARNING, TIME_OF_DAY_MAX_HALF_LIFE_S, TIME_RESOLUTION_S, UPTAKE_MAX_HALF_LIVES,
)

_DATETIME = "RadiopharmaceuticalStartDateTime (0018,1078)"
_TIME = "RadiopharmaceuticalStartTime (0018,1072)"
_FIX = "confirm or correct the injection time with --injection-time ISO8601"


class InjectionTime(Base):
    """Administration time (manual, "Radiopharmaceutical dose", t_adm; see module docstring)."""

    def _plausible(self, basis: _dt.datetime, when: _dt.datetime) -> bool:
        uptake = (basis - when).total_seconds()
        return -INJECTION_AFTER_REFERENCE_S <= uptake <= UPTAKE_MAX_HALF_LIVES * self.half_life_s()

    def injection_s(self, basis: _dt.datetime) -> float:
        """Administration time, seconds since epoch, placed relative to the reference ``basis``."""
        half_life = self.half_life_s()
        rp = self.h.radiopharmaceutical
        self.p.inputs[_DATETIME] = iso(rp.start_datetime)
        self.p.inputs[_TIME] = rp.start_time.isoformat() if rp.start_time else None
        override = self.ov.injection_time
        if isinstance(override, _dt.datetime):
            return self._injection(override, "override")
        if isinstance(override, _dt.time):
            return self._time_of_day(basis, override, "override (time of day)", half_life, check_half_life=False)
        stamp, tod = rp.start_datetime, rp.start_time
        if stamp is None and tod is None:
            raise self.refuse(f"{_DATETIME} and {_TIME} are both missing",
                              "give the injection time with --injection-time ISO8601")
        if stamp is not None and self._plausible(basis, stamp) and (tod is None or _same_time_of_day(stamp.time(), tod)):
            rule = _DATETIME if tod is None else f"{_DATETIME}, its time of day equal to {_TIME}"
            return self._injection(stamp, rule)
        if stamp is None:
            return self._time_of_day(basis, tod, _TIME, half_life)
        if tod is None or _same_time_of_day(stamp.time(), tod):
            # the date is what is wrong: keep the time of day (the manual's flowchart)
            source = f"time of day of {_DATETIME}" if tod is None else f"{_TIME} (equal to the time of day of {_DATETIME})"
            self.warn(f"{_DATETIME} {stamp.isoformat()} lies {self._hours(basis, stamp)} before the reference time "
                      f"{basis.isoformat()}, outside the plausible uptake: its date is not trusted (anonymised?) and "
                      "only its time of day is used")
            return self._time_of_day(basis, stamp.time(), source, half_life)
        # the two disagree in their time of day
        placed, _rule = self._placed(basis, tod)
        dt_ok, tod_ok = self._plausible(basis, stamp), self._plausible(basis, placed)
        lam = math.log(2.0) / half_life
        if dt_ok and tod_ok:
            diff = (placed - stamp).total_seconds()
            change = math.expm1(-lam * diff)  # SUV of the StartTime against the DateTime: exp(-lambda dt_inj) - 1
            if abs(change) <= SUV_WARNING:
                self.rule(f"{_TIME} {tod.isoformat()} differs from {_DATETIME} by {diff:+.0f} s, "
                          f"{100 * change:+.2f} % in SUV (under {100 * SUV_WARNING:g} %)")
                return self._injection(stamp, _DATETIME)
            raise self.refuse(
                f"{_DATETIME} is {stamp.isoformat()} but {_TIME} is {tod.isoformat()}, {abs(diff) / 60:.0f} min apart "
                f"({100 * change:+.1f} % in SUV) and both give a plausible uptake", _FIX)
        if dt_ok:
            self.warn(f"{_TIME} {tod.isoformat()} disagrees with {_DATETIME} {stamp.isoformat()} and would give an "
                      f"implausible uptake ({self._hours(basis, placed)}): the DateTime was used")
            return self._injection(stamp, f"{_DATETIME} (the time of day in {_TIME} gives no plausible uptake)")
        if tod_ok:
            self.warn(f"{_DATETIME} {stamp.isoformat()} gives an implausible uptake ({self._hours(basis, stamp)}) and "
                      f"disagrees with {_TIME} {tod.isoformat()}: the StartTime was used")
            return self._time_of_day(basis, tod, f"{_TIME} ({_DATETIME} gives no plausible uptake)", half_life)
        raise self.refuse(
            f"neither {_DATETIME} {stamp.isoformat()} nor {_TIME} {tod.isoformat()} gives a plausible uptake before the "
            f"reference time {basis.isoformat()} ({self._hours(basis, stamp)} and {self._hours(basis, placed)})", _FIX)

    @staticmethod
    def _hours(basis: _dt.datetime, when: _dt.datetime) -> str:
        uptake = (basis - when).total_seconds()
        return f"{uptake / 3600:.1f} h" if uptake >= 0 else f"{-uptake / 3600:.1f} h after it"

    def _injection(self, when: _dt.datetime, rule: str) -> float:
        self.p.injection_time, self.p.injection_time_rule = iso(when), rule
        self.rule(f"injection time: {rule}")
        return ts(when)

    @staticmethod
    def _placed(basis: _dt.datetime, tod: _dt.time) -> Tuple[_dt.datetime, str]:
        """A time of day on the reference date, or the day before when it is more than an hour after the reference."""
        when = _dt.datetime.combine(basis.date(), tod)
        if (basis - when).total_seconds() < -INJECTION_AFTER_REFERENCE_S:
            return when - _dt.timedelta(days=1), "on the day before the reference date (injection before midnight)"
        return when, "on the reference date"

    def _time_of_day(self, basis: _dt.datetime, tod: _dt.time, source: str, half_life: float,
                     check_half_life: bool = True) -> float:
        if check_half_life and half_life >= TIME_OF_DAY_MAX_HALF_LIFE_S:
            raise self.refuse(
                f"only the time of day of injection is known ({source}) and the half-life "
                f"{half_life / 3600:.1f} h makes an uptake of more than a day possible",
                "give the injection date and time with --injection-time ISO8601",
            )
        when, where = self._placed(basis, tod)
        if when.date() != basis.date():
            self.rule(f"injection time {tod.isoformat()} is after the reference's time of day: taken as the previous day")
        return self._injection(when, f"{source} {where}")

    def check_uptake(self, reference_s: float, injection_s: float) -> float:
        """The uptake time (s), refused when implausible for the nuclide (see module docstring)."""
        uptake = reference_s - injection_s
        half_life = self.half_life_s()
        lam = math.log(2.0) / half_life
        confirmed = self.ov.injection_time is not None
        nuclide = self.p.radionuclide or "the radionuclide"
        where = (f"from injection {from_ts(injection_s).isoformat()} to the decay reference "
                 f"{from_ts(reference_s).isoformat()}")
        problem = None
        if uptake > UPTAKE_MAX_HALF_LIVES * half_life:
            problem = (f"the uptake time {where} is {uptake / 3600:.1f} h, {uptake / half_life:.1f} half-lives of "
                       f"{nuclide}, longer than the {UPTAKE_MAX_HALF_LIVES:g} half-lives any imaging protocol waits "
                       f"(SUV x{math.exp(min(lam * uptake, 700.0)):.3g})")
        elif uptake < -INJECTION_AFTER_REFERENCE_S:
            problem = (f"the injection lies {-uptake / 60:.0f} min after the decay reference ({where}), more than a "
                       f"dynamic scan starts before its injection ({INJECTION_AFTER_REFERENCE_S / 60:.0f} min)")
        if problem is not None:
            if not confirmed:
                raise self.refuse(problem, _FIX)
            self.warn(f"{problem}; used as the injection-time override confirms it")
        elif uptake < -TIME_RESOLUTION_S:
            change = math.expm1(-lam * uptake)
            text = (f"injection is {-uptake:.0f} s after the reference time: the scan started before the injection "
                    f"(a dynamic scan), or a clock or date is wrong ({100 * change:+.1f} % in SUV against an injection "
                    "at the reference time)")
            if abs(change) > SUV_WARNING:
                self.warn(text)
            else:
                self.rule(text)
        return uptake


def _same_time_of_day(a: _dt.time, b: _dt.time) -> bool:
    """Times of day within TIME_RESOLUTION_S of each other (across midnight too)."""
    seconds = abs((a.hour * 3600 + a.minute * 60 + a.second + a.microsecond / 1e6)
                  - (b.hour * 3600 + b.minute * 60 + b.second + b.microsecond / 1e6))
    return min(seconds, 86400.0 - seconds) <= TIME_RESOLUTION_S

