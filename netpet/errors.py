"""Errors NETPET raises on purpose.

Every error here carries a message written for the user: it names the file, series, tag or
row concerned and says what would fix it. The command line prints the message alone (no
traceback) and exits non-zero.
"""

from __future__ import annotations

import re

#: Characters that would act on a terminal instead of showing: C0 controls (tab and newline included:
#: a value must not start a line of its own), DEL, C1 controls (ESC [ and CSI among them), the
#: bidirectional overrides and isolates (which reorder what is shown), line and paragraph separators.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: The same for a whole text of several lines: newline and tab kept.
_UNPRINTABLE_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e"
                                  "\u2066-\u2069]")


def _escape(match: "re.Match[str]") -> str:
    return match.group(0).encode("unicode_escape").decode("ascii")


def printable(value: object) -> str:
    """``value`` as text safe to show on a terminal: every control character escaped (``\\x1b``).

    For values read from files (DICOM names and descriptions, CSV cells) before they go into a
    message or a listing: an escape sequence in a SeriesDescription must not recolour, move the
    cursor or rewrite the terminal's title, and a newline must not forge a line of its own.
    """
    return _UNPRINTABLE.sub(_escape, value if isinstance(value, str) else str(value))


def printable_text(text: str) -> str:
    """A text of several lines safe to show: as :func:`printable`, but newlines and tabs kept."""
    return _UNPRINTABLE_IN_TEXT.sub(_escape, text)


class NetpetError(Exception):
    """Base class of every deliberate NETPET error; ``str(error)`` is the user message."""


class DicomInputError(NetpetError):
    """A path, file or series cannot be used (not found, unreadable, ambiguous)."""


class AmbiguousInputError(DicomInputError):
    """Several candidates (series, or copies of one series under several patients) and nothing chose
    one; the message lists them and names the choice that settles it."""


class SUVConversionError(NetpetError):
    """A PET series cannot be converted to SUV without guessing.

    Parameters
    ----------
    series : str
        Human label of the series (UID and description).
    problem : str
        What is missing or contradictory, naming the DICOM tag, e.g.
        ``"PatientWeight (0010,1030) is missing"``.
    fix : str
        What the user can do, naming the override when one exists, e.g.
        ``"give the weight with --weight KG (weight_kg)"``.
    """

    def __init__(self, series: str, problem: str, fix: str) -> None:
        self.series = series
        self.problem = problem
        self.fix = fix
        super().__init__(f"Cannot convert PET series {series} to SUV: {problem}; {fix}.")
