"""Reading DICOM values robustly: numbers, dates and vendor private tags.

Real PET files carry values that pydicom cannot always interpret: private elements without
their private creator (e.g. Philips (7053,1000) with no (7053,0010)), private elements read
as raw bytes (VR UN) from implicit-VR files, numbers with stray padding. The helpers here
turn such values into Python numbers and datetimes or None, never raising on odd values;
they report what they did through an optional notes list.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from pydicom.dataset import Dataset

from netpet.dicom import dates


def tag_text(group: int, element: int) -> str:
    """``(gggg,eeee)`` text of a tag, as DICOM writes it."""
    return f"({group:04X},{element:04X})"


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def to_float(value: Any) -> Optional[float]:
    """A number from a DICOM value (DS, IS, FD, str, bytes); None when empty or not a number."""
    value = _first(value)
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        text = raw.decode("ascii", "ignore").strip().strip("\x00").strip()
        try:
            return float(text.split("\\")[0]) if text else None
        except ValueError:
            if len(raw) == 8:  # FD written as binary in an implicit-VR private element
                return float(struct.unpack("<d", raw)[0])
            if len(raw) == 4:
                return float(struct.unpack("<f", raw)[0])
            return None
    if isinstance(value, str):
        text = value.strip().strip("\x00").strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def to_text(value: Any) -> Optional[str]:
    """Stripped text of a DICOM value (first value of a multi-value); None when empty."""
    value = _first(value)
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1", "ignore")
    text = str(value).strip().strip("\x00").strip()
    return text or None


def _stored_value(ds: Dataset, tag: int) -> Any:
    """The element's value as stored (undecoded bytes until pydicom converts it); None when absent."""
    try:
        elem = ds.get_item(tag)
    except KeyError:
        return None
    return None if elem is None else elem.value


def raw_text(ds: Dataset, tag: int) -> Optional[str]:
    """Text of an element without pydicom's value conversion (fast path for text VRs).

    Reads the undecoded bytes when the element has not been converted yet; multiple values
    stay joined by backslashes. None when absent or empty.
    """
    value = _stored_value(ds, tag)
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("latin-1").strip(" \x00")
    elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value).strip()
    return text or None


def raw_floats(ds: Dataset, tag: int) -> Optional[Tuple[float, ...]]:
    """All numbers of a DS/IS element (fast path); None when absent, empty or not numeric."""
    text = raw_text(ds, tag)
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split("\\"))
    except ValueError:
        return None


def raw_float(ds: Dataset, tag: int) -> Optional[float]:
    """First number of a DS/IS element (fast path)."""
    values = raw_floats(ds, tag)
    return values[0] if values else None


def raw_bytes(ds: Dataset, tag: int) -> Any:
    """The element's stored value as found (bytes before conversion), for fingerprints."""
    value = _stored_value(ds, tag)
    return value if isinstance(value, (bytes, bytearray, str, int, float)) or value is None else repr(value)


def get_float(ds: Dataset, keyword: str) -> Optional[float]:
    """Float value of a standard attribute by keyword, or None when absent or empty."""
    elem = ds.get(keyword)
    if elem is None:
        return None
    return to_float(elem)


def get_text(ds: Dataset, keyword: str) -> Optional[str]:
    """Text value of a standard attribute by keyword, or None when absent or empty."""
    elem = ds.get(keyword)
    if elem is None:
        return None
    return to_text(elem)


def get_multi_text(ds: Dataset, keyword: str) -> Tuple[str, ...]:
    """All values of a multi-valued text attribute (e.g. CorrectedImage), upper-cased."""
    value = ds.get(keyword)
    if value is None:
        return ()
    values = [value] if isinstance(value, (str, bytes)) else list(value)
    out = []
    for item in values:
        text = to_text(item)
        if text:
            out.extend(part.strip().upper() for part in text.split("\\") if part.strip())
    return tuple(out)


def get_datetime(ds: Dataset, date_kw: str, time_kw: str, notes: Optional[List[str]] = None):
    """Combine a DA and a TM attribute; None when either is missing or malformed."""
    try:
        date = dates.parse_da(ds.get(date_kw, None))
        time = dates.parse_tm(ds.get(time_kw, None))
    except ValueError as exc:
        if notes is not None:
            notes.append(f"{date_kw}/{time_kw} ignored: {exc}")
        return None
    return dates.combine(date, time)


def get_dt(ds: Dataset, keyword: str, notes: Optional[List[str]] = None):
    """Parse a DT attribute; None when missing or malformed (noted)."""
    try:
        return dates.parse_dt(ds.get(keyword, None))
    except ValueError as exc:
        if notes is not None:
            notes.append(f"{keyword} ignored: {exc}")
        return None


@dataclass(frozen=True)
class PrivateValue:
    """A private element's value and how it was found."""

    value: Any
    tag: str
    creator_found: bool

    def describe(self, name: str, creator: str) -> str:
        if self.creator_found:
            return f"{name} {self.tag} under private creator '{creator}'"
        return (
            f"{name} {self.tag} read without its private creator '{creator}' "
            "(creator element absent; the element was taken at its usual place)"
        )


def find_private(
    ds: Dataset, group: int, creator: str, offset: int
) -> Optional[PrivateValue]:
    """Find a private element by creator and element offset (the low byte).

    The private block is located through the creator element (gggg,00xx). When the group has
    no creator element at all (a common export fault), the element is read at block 0x10,
    where every vendor NETPET knows places it. When block 0x10 belongs to another creator,
    the value is not guessed.

    Returns
    -------
    PrivateValue or None
        None when the element is absent.
    """
    wanted = creator.strip().upper()
    creators_present = False
    blocks = [tag.element for tag in ds.keys() if tag.group == group and 0x10 <= tag.element <= 0xFF]
    for block in blocks:
        elem = ds.get((group, block))
        creators_present = True
        if (to_text(elem.value) or "").upper() == wanted:
            tag = (group, (block << 8) | offset)
            found = ds.get(tag)
            if found is None or found.value in (None, b"", ""):
                return None
            return PrivateValue(found.value, tag_text(*tag), True)
    if creators_present:
        return None
    tag = (group, 0x1000 | offset)
    found = ds.get(tag)
    if found is None or found.value in (None, b"", ""):
        return None
    return PrivateValue(found.value, tag_text(*tag), False)


def private_float(ds: Dataset, group: int, creator: str, offset: int) -> Tuple[Optional[float], Optional[PrivateValue]]:
    """Private element as float, with its PrivateValue (None, None when absent)."""
    found = find_private(ds, group, creator, offset)
    if found is None:
        return None, None
    return to_float(found.value), found


def private_datetime(ds: Dataset, group: int, creator: str, offset: int):
    """Private DT element as datetime (None when absent or unparseable), with its PrivateValue."""
    found = find_private(ds, group, creator, offset)
    if found is None:
        return None, None
    try:
        return dates.parse_dt(to_text(found.value)), found
    except ValueError:
        return None, found
