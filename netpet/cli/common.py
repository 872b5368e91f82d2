"""What the ``netpet`` subcommands share: exit codes, the command line's own errors, option types
that refuse a value a user cannot have meant (NaN, infinity, a negative size), the SUV overrides,
writing an image, and a terminal-safe output stream.

Kept apart from :mod:`netpet.cli.main` so that the subcommand modules import it without an
import circle.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import sys
from typing import Callable, Optional, Sequence, Tuple

from netpet.errors import AmbiguousInputError, DicomInputError, NetpetError, printable, printable_text

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_AMBIGUOUS, EXIT_REFUSED, EXIT_PARTIAL, EXIT_CANCELLED = 0, 2, 3, 4, 5, 6, 130

#: Several candidates and nothing to choose between them (exit code 4).
Ambiguous = AmbiguousInputError

IMAGE_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")


class UsageError(NetpetError):
    """An argument has the wrong form (exit code 2)."""


class Parser(argparse.ArgumentParser):
    """argparse with a usage error in one line (the option, the value, where to read more)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


# -- option types --------------------------------------------------------------------------------

def number(unit: str = "", low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number within [low, high] (open ends where asked), in ``unit``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = None
        unit_text = f" {unit}" if unit else ""
        if value is None or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number{unit_text and ' of' + unit_text}")
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            if low is not None and high is not None:
                if low_open or high_open:
                    bound = (f"{'above' if low_open else 'at least'} {low:g} and {'below' if high_open else 'at most'} "
                             f"{high:g}{unit_text}")
                else:
                    bound = f"from {low:g} to {high:g}{unit_text}"
            elif low is not None:
                bound = f"{'above' if low_open else 'at least'} {low:g}{unit_text}"
            else:
                bound = f"{'below' if high_open else 'at most'} {high:g}{unit_text}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: give a number {bound}")
        return value

    parse.__name__ = "number"
    return parse


def count(low: int = 1, what: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number, at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            what_ = what or "a whole number"
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {what_} of at least {low}")
        return value

    parse.__name__ = "count"
    return parse


JOBS = count(1, "a number of worker processes")


def ras(text: str) -> Tuple[float, float, float]:
    """An argparse type: a point R,A,S of three finite numbers (mm)."""
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not R,A,S (three numbers in mm, e.g. -12.5,40,-600)")
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not R,A,S: every coordinate must be a finite number of mm")
    return values  # type: ignore[return-value]


# -- the SUV conversion's options, for every command that converts a PET ------------------------

SUV_TYPES = ("bw", "lbm", "lbmjanma", "bsa", "ibw")


def add_suv_options(p: argparse.ArgumentParser, overrides: bool = True, type_default: Optional[str] = "bw") -> None:
    """``--series``, ``--patient`` and ``--type`` (and, with ``overrides``, the header overrides).

    ``type_default`` None: a command that also reads SUV images leaves ``--type`` unset unless
    given, so that it can refuse it for an image that is SUV already (:func:`dicom_only`)."""
    p.add_argument("--series", metavar="UID", help="SeriesInstanceUID of the PET series (when the path holds several)")
    p.add_argument("--patient", metavar="ID",
                   help="PatientID (0010,0020) whose copy to use when one series appears under several patients "
                        "(an original beside its pseudonymised copy)")
    p.add_argument("--type", choices=SUV_TYPES, default=type_default,
                   help="SUV normalisation: body weight, lean body mass (James 128 / Janmahasatian), "
                        "body surface area (Du Bois), ideal body weight (default: bw)")
    if not overrides:
        return
    p.add_argument("--weight", type=number("kg", 0.0, low_open=True), metavar="KG", help="patient weight override, kg")
    p.add_argument("--height", type=number("m", 0.0, low_open=True), metavar="M", help="patient height override, m")
    p.add_argument("--sex", choices=["M", "F", "O", "m", "f", "o"], help="patient sex override")
    p.add_argument("--dose", type=number("MBq", 0.0, low_open=True), metavar="MBQ",
                   help="administered activity override, MBq")
    p.add_argument("--injection-time", metavar="ISO8601",
                   help="injection date and time (2024-03-05T09:02:31) or time of day (09:02:31)")
    p.add_argument("--half-life", type=number("s", 0.0, low_open=True), metavar="S",
                   help="radionuclide half-life override, s")


SUV_OPTIONS = ("series", "patient", "type", "weight", "height", "sex", "dose", "injection_time", "half_life")


def add_pseudonymise(p: argparse.ArgumentParser) -> None:
    """The ``--pseudonymise KEYFILE`` option of every command that exports patient data."""
    p.add_argument("--pseudonymise", metavar="KEYFILE",
                   help="write keyed pseudonyms instead of patient ids, shift dates and replace UIDs in every output "
                        "(KEYFILE: at least 32 random bytes, kept apart from the exports; README, Privacy)")


def pseudonymiser(args: argparse.Namespace):
    """The :class:`netpet.privacy.Pseudonymiser` of ``--pseudonymise``, or None."""
    from netpet.privacy import Pseudonymiser

    return Pseudonymiser.from_file(getattr(args, "pseudonymise", None))


def dicom_only(args: argparse.Namespace, path: str) -> None:
    """Refuse SUV options given for an SUV image (they apply to a DICOM conversion only)."""
    given = [name for name in SUV_OPTIONS if getattr(args, name, None) is not None]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        verb = "applies" if len(given) == 1 else "apply"
        raise UsageError(f"{options} {verb} to a PET DICOM series; {printable(path)} is an SUV image already")


def parse_injection(text: Optional[str], option: str = "--injection-time"):
    """An ISO 8601 date and time, or time of day, without a time zone (DICOM times are local)."""
    if text is None or text == "":
        return None
    value = text.strip()
    try:
        when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = _dt.time.fromisoformat(value)
        except ValueError as exc:
            raise UsageError(f"{option} {printable(repr(text))} is not ISO 8601; write e.g. 2024-03-05T09:02:31 "
                             "or 09:02:31") from exc
    if getattr(when, "tzinfo", None) is not None:
        raise UsageError(f"{option} {printable(repr(text))} carries a time zone; DICOM times are local, give the local "
                         "time without one")
    return when


def overrides(args: argparse.Namespace):
    """The SUV overrides of the command line (None when the command has none)."""
    from netpet.dicom.suv import Overrides

    if not hasattr(args, "weight"):
        return None
    return Overrides(
        weight_kg=args.weight,
        height_m=args.height,
        sex=args.sex.upper() if args.sex else None,
        dose_bq=args.dose * 1.0e6 if args.dose is not None else None,
        injection_time=parse_injection(args.injection_time),
        half_life_s=args.half_life,
    )


# -- files ---------------------------------------------------------------------------------------

def check_output(path: str, option: str = "--out", suffixes: Sequence[str] = IMAGE_SUFFIXES) -> None:
    """Refuse an output path before any work: a wrong suffix (2), a folder, a file in the way of its
    folder, a folder that cannot be written (3)."""
    if suffixes and not path.lower().endswith(tuple(suffixes)):
        raise UsageError(f"{option} {printable(path)}: use one of {', '.join(suffixes)}")
    if os.path.isdir(path):
        raise DicomInputError(f"{option} {printable(path)} is a folder; give a file name.")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise DicomInputError(f"{option} {printable(path)}: {printable(existing)} is a file, not a folder.")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise DicomInputError(f"{option} {printable(path)} cannot be written (permission).")
    _probe(existing, f"{option} {printable(path)}")


def _probe(folder: str, what: str) -> None:
    """Refuse a folder where no file can be made (permission, a read-only or pseudo file system)
    before any work, rather than after it."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".netpet-probe-"):
            pass
    except OSError as exc:
        raise DicomInputError(f"{what}: nothing can be written in {printable(folder)} "
                              f"({exc.strerror or exc}).") from None


def check_output_folder(path: str, option: str = "--out") -> None:
    """Refuse an output folder that is a file, or lies under one (exit code 3)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        where = "is a file" if existing == os.path.abspath(path) else f"lies under the file {printable(existing)}"
        raise DicomInputError(f"{option} {printable(path)} {where}; give a folder.")
    _probe(existing, f"{option} {printable(path)}")


def check_input(path: str, what: str, folder: bool = False) -> None:
    """Refuse a missing input, or a folder where a file is needed (exit code 3)."""
    if not os.path.exists(path):
        raise DicomInputError(f"{what} {printable(path)} does not exist.")
    if not folder and os.path.isdir(path):
        raise DicomInputError(f"{what} {printable(path)} is a folder; give a file.")


def write_image(image, path: str, option: str = "--out") -> None:
    """Write an image (compressed), its folder made; one sentence naming the path when it fails."""
    import SimpleITK as sitk

    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        sitk.WriteImage(image, path, useCompression=True)
    except (RuntimeError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or _sitk_reason(str(exc))
        raise DicomInputError(f"Cannot write {option} {printable(path)}: {reason}.") from None


def read_image(path: str, what: str):
    """Read an image file; one sentence naming the file when it is not a readable image."""
    import SimpleITK as sitk

    check_input(path, what)
    try:
        return sitk.ReadImage(path)
    except RuntimeError as exc:
        raise DicomInputError(f"{what} {printable(path)} is not a readable image ({_sitk_reason(str(exc))}).") from None


def _sitk_reason(text: str) -> str:
    """The last line of a SimpleITK/ITK exception, the one that says what went wrong (without the
    library's source paths and object addresses)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "unreadable"
    last = lines[-1].split("ERROR:", 1)[-1].strip()
    last = last.split("): ", 1)[-1] if last.startswith(("NrrdImageIO(", "ImageIO(")) else last
    if last.startswith("[") and "] " in last:  # "[nrrd] nrrdSave: couldn't fopen(...)"
        last = last.split("] ", 1)[1].split(": ", 1)[-1]
    return printable(last)[:200]


# -- output safe for a terminal ------------------------------------------------------------------

class SafeStream:
    """A text stream whose writes have their control characters escaped (newlines and tabs kept).

    Everything the command prints passes through it: DICOM text (names, descriptions) and CSV cells
    that hold escape sequences reach the terminal as ``\\x1b[...`` and never act on it. ``raw`` is
    the stream underneath (for the progress bar, which draws with carriage returns).
    """

    def __init__(self, raw) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(printable_text(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self.raw, name)


def raw_stderr():
    return getattr(sys.stderr, "raw", sys.stderr)


def tqdm_progress(enabled: bool) -> Optional[Callable[[float, str], bool]]:
    """A progress callback drawing a tqdm bar on stderr (only on a terminal)."""
    stream = raw_stderr()
    if not enabled or not stream.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=1000, file=stream, leave=False, bar_format="{l_bar}{bar}| {elapsed}")

    def update(fraction: float, message: str) -> bool:
        bar.set_description_str(printable(message[:50]))
        bar.n = int(fraction * 1000)
        bar.refresh()
        if fraction >= 1.0:
            bar.close()
        return False

    return update
