"""Errors NETPET raises on purpose.

Every error here carries a message written for the user: it names the file, series, tag or
row concerned and says what would fix it. The command line prints the message alone (no
traceback) and exits non-zero.
"""

from __future__ import annotations


class NetpetError(Exception):
    """Base class of every deliberate NETPET error; ``str(error)`` is the user message."""


class DicomInputError(NetpetError):
    """A path, file or series cannot be used (not found, unreadable, ambiguous)."""


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
