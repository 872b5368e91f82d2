"""Tolerant parsing of DICOM DA, TM and DT values (PS3.5 section 6.2).

DICOM times are local wall-clock times. NETPET compares times of one imaging session, so a
UTC offset suffix on a DT value is read and dropped: the value is kept as written locally.
Malformed values raise ``ValueError`` with the offending text; callers turn it into an error
that names the tag.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Optional

_TM_RE = re.compile(r"^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?$")
_DT_RE = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$"
)


def _clean(value: object) -> str:
    if value is None:
        return ""
    return str(value).strip().rstrip("\x00").strip()


def parse_da(value: object) -> Optional[_dt.date]:
    """Parse a DA value (``YYYYMMDD``; the old ``YYYY.MM.DD`` form too). Empty gives None."""
    text = _clean(value).replace(".", "").replace("-", "")
    if not text:
        return None
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"not a DICOM date (YYYYMMDD): {str(value)!r}")
    try:
        return _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError as exc:
        raise ValueError(f"not a valid calendar date: {str(value)!r}") from exc


def parse_tm(value: object) -> Optional[_dt.time]:
    """Parse a TM value (``HHMMSS.FFFFFF``, shorter forms, or ACR-NEMA ``HH:MM:SS``)."""
    text = _clean(value)
    if not text:
        return None
    match = _TM_RE.match(text)
    if not match:
        raise ValueError(f"not a DICOM time (HHMMSS.FFFFFF): {str(value)!r}")
    hh, mm, ss, frac = match.groups()
    micro = int((frac or "0").ljust(6, "0"))
    second = int(ss or 0)
    if second == 60:  # leap second allowed by the standard; clamp
        second = 59
    try:
        return _dt.time(int(hh), int(mm or 0), second, micro)
    except ValueError as exc:
        raise ValueError(f"not a valid time of day: {str(value)!r}") from exc


def parse_dt(value: object) -> Optional[_dt.datetime]:
    """Parse a DT value (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``); the UTC offset is dropped."""
    text = _clean(value)
    if not text:
        return None
    match = _DT_RE.match(text)
    if not match:
        raise ValueError(f"not a DICOM date-time (YYYYMMDDHHMMSS.FFFFFF): {str(value)!r}")
    year, month, day, hh, mm, ss, frac, _offset = match.groups()
    micro = int((frac or "0").ljust(6, "0"))
    try:
        return _dt.datetime(
            int(year), int(month or 1), int(day or 1), int(hh or 0), int(mm or 0),
            min(int(ss or 0), 59), micro,
        )
    except ValueError as exc:
        raise ValueError(f"not a valid date-time: {str(value)!r}") from exc


def combine(date: Optional[_dt.date], time: Optional[_dt.time]) -> Optional[_dt.datetime]:
    """Join a date and a time; None when either is missing."""
    if date is None or time is None:
        return None
    return _dt.datetime.combine(date, time)


def iso(value: Optional[_dt.datetime]) -> Optional[str]:
    """ISO 8601 text of a datetime, or None."""
    return None if value is None else value.isoformat()
