"""The ``netpet`` command line: a thin layer over the core.

Exit codes
----------
0  success
2  usage error (bad or missing arguments)
3  input error: a path, file or series that cannot be used
4  ambiguous input: several candidates and nothing chose one (the candidates are listed)
5  refusal: the data cannot be converted or measured without guessing (the reason is printed)
6  partly done: a batch finished, but some rows were skipped (each one is reported)
130  cancelled
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import re
import sys
from typing import Any, Callable, List, Optional, Sequence

from netpet import __version__
from netpet.errors import DicomInputError, NetpetError, SUVConversionError
from netpet.progress import Cancelled

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_AMBIGUOUS, EXIT_REFUSED, EXIT_CANCELLED = 0, 2, 3, 4, 5, 130

log = logging.getLogger("netpet")


class Ambiguous(NetpetError):
    """Several candidates and nothing to choose between them."""


class UsageError(NetpetError):
    """An argument has the wrong form."""


def _tqdm_progress(enabled: bool) -> Optional[Callable[[float, str], bool]]:
    """A progress callback drawing a tqdm bar on stderr (only on a terminal)."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=1000, file=sys.stderr, leave=False, bar_format="{l_bar}{bar}| {elapsed}")

    def update(fraction: float, message: str) -> bool:
        bar.set_description_str(message[:50])
        bar.n = int(fraction * 1000)
        bar.refresh()
        if fraction >= 1.0:
            bar.close()
        return False

    return update


def _print_json(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


# -- index -------------------------------------------------------------------------------------

def cmd_index(args: argparse.Namespace) -> int:
    from netpet.dicom.index import describe, index_tree

    index = index_tree(args.path, jobs=args.jobs, progress=_tqdm_progress(not args.json))
    if args.json:
        _print_json(index.to_dict(include_identity=args.include_identity, include_files=args.files))
    else:
        print(describe(index))
    return EXIT_OK


# -- suv ---------------------------------------------------------------------------------------

def _parse_injection(text: Optional[str]):
    if text is None:
        return None
    value = text.strip()
    try:
        when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = _dt.time.fromisoformat(value)
        except ValueError as exc:
            raise UsageError(
                f"--injection-time {text!r} is not ISO 8601; write e.g. 2024-03-05T09:02:31 or 09:02:31"
            ) from exc
    if getattr(when, "tzinfo", None) is not None:
        raise UsageError(
            f"--injection-time {text!r} carries a time zone; DICOM times are local, give the local time without one"
        )
    return when


def _overrides(args: argparse.Namespace):
    from netpet.dicom.suv import Overrides

    sex = args.sex.upper() if args.sex else None
    return Overrides(
        weight_kg=args.weight,
        height_m=args.height,
        sex=sex,
        dose_bq=args.dose * 1.0e6 if args.dose is not None else None,
        injection_time=_parse_injection(args.injection_time),
        half_life_s=args.half_life,
    )


def _choose_pet(path: str, series_uid: Optional[str], jobs: Optional[int], progress):
    from netpet.dicom.index import index_tree

    index = index_tree(path, jobs=jobs, progress=progress)
    pets = index.pet_series()
    if series_uid:
        record = index.series(series_uid)
        if not record.is_pet:
            raise DicomInputError(f"Series {series_uid} under {path} is {record.modality}, not PET.")
        return record
    if not pets:
        raise DicomInputError(
            f"No PET series under {path} ({index.dicom_files} DICOM files, {len(index.all_series())} series); "
            "give the folder that holds the PET."
        )
    if len(pets) > 1:
        lines = [f"{len(pets)} PET series under {path}; choose one with --series UID:"]
        for record in pets:
            tracer = record.tracer.label if record.tracer else "tracer unknown"
            lines.append(f"  {record.series_uid}  {record.description or ''}  {tracer}  "
                         f"{record.hybrid or 'PET only'}  {record.instance_count} files")
        raise Ambiguous("\n".join(lines))
    return pets[0]


_WRITABLE = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")


def cmd_suv(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from netpet.dicom.convert import convert_to_suv

    if not args.out.lower().endswith(_WRITABLE):
        raise UsageError(f"--out {args.out!r}: use one of {', '.join(_WRITABLE)}")
    overrides = _overrides(args)
    progress = _tqdm_progress(not args.json)
    record = _choose_pet(args.path, args.series, args.jobs, progress)
    result = convert_to_suv(record, args.type, overrides, jobs=args.jobs, progress=progress)
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    sitk.WriteImage(result.image, args.out, useCompression=True)
    provenance = result.provenance.to_dict()
    provenance["output"] = os.path.abspath(args.out)
    provenance["hybrid"] = record.hybrid
    provenance["partner_series_uid"] = record.partner_series_uid
    if args.provenance:
        with open(args.provenance, "w", encoding="utf-8") as handle:
            json.dump(provenance, handle, indent=2, default=str)
    if args.json:
        _print_json(provenance)
    else:
        print(_describe_provenance(provenance))
    return EXIT_OK


def _describe_provenance(p: dict) -> str:
    from netpet.dicom.suv import describe_provenance

    return describe_provenance(p, p.get("output"))


# -- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from netpet.dicom.suv import SUV_TYPES

    parser = argparse.ArgumentParser(
        prog="netpet",
        description="NETPET: hybrid PET/CT and PET/MR quantification for NET and TIO studies.",
        epilog="Exit codes: 0 ok, 2 usage, 3 input error, 4 ambiguous input, 5 refusal, 6 batch with skipped rows, "
               "130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"netpet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("index", help="index a DICOM tree: patients, studies, series, PET tracer and partner")
    p.add_argument("path", help="folder (searched recursively) or file")
    p.add_argument("--json", action="store_true", help="print the index as JSON")
    p.add_argument("--files", action="store_true", help="with --json, list every file of every series")
    p.add_argument("--include-identity", action="store_true",
                   help="include patient names and accession numbers (left out by default)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("suv", help="convert a PET series to an SUV image with its provenance")
    p.add_argument("path", help="folder or file holding the PET series (and possibly others)")
    p.add_argument("--series", metavar="UID", help="SeriesInstanceUID of the PET series to convert")
    p.add_argument("--type", choices=SUV_TYPES, default="bw",
                   help="SUV normalisation: body weight, lean body mass (James 128 / Janmahasatian), "
                        "body surface area (Du Bois), ideal body weight (default: bw)")
    p.add_argument("--out", required=True, metavar="FILE", help="output image: .nrrd, .nii.gz, .nii, .mha")
    p.add_argument("--json", action="store_true", help="print the provenance as JSON")
    p.add_argument("--provenance", metavar="FILE", help="also write the provenance JSON to FILE")
    p.add_argument("--weight", type=float, metavar="KG", help="patient weight override, kg")
    p.add_argument("--height", type=float, metavar="M", help="patient height override, m")
    p.add_argument("--sex", choices=["M", "F", "O", "m", "f", "o"], help="patient sex override")
    p.add_argument("--dose", type=float, metavar="MBQ", help="administered activity override, MBq")
    p.add_argument("--injection-time", metavar="ISO8601",
                   help="injection date and time (2024-03-05T09:02:31) or time of day (09:02:31)")
    p.add_argument("--half-life", type=float, metavar="S", help="radionuclide half-life override, s")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(func=cmd_suv)

    from netpet.cli import demo, phantom, quant, stats

    quant.add_parsers(sub)
    stats.add_parser(sub)
    phantom.add_parser(sub)
    demo.add_parser(sub)
    return parser


#: Options whose value is a point R,A,S: a value such as -55,-3.7,-5.7 starts with a minus sign,
#: which argparse would take for an option of its own.
POINT_OPTIONS = ("--seed", "--liver", "--split", "--background")
_NEGATIVE_POINT = re.compile(r"^-[0-9.]")


def _join_points(argv: Sequence[str]) -> List[str]:
    """``--seed -55,-3.7,-5.7`` as ``--seed=-55,-3.7,-5.7``, so negative coordinates parse."""
    out: List[str] = []
    pending = False
    for token in argv:
        if pending and _NEGATIVE_POINT.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
        pending = token in POINT_OPTIONS
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(_join_points(sys.argv[1:] if argv is None else list(argv)))
    except SystemExit as exc:  # argparse has printed the usage error (2) or the help (0)
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="netpet: %(levelname)s: %(message)s")
    try:
        return args.func(args)
    except Ambiguous as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_AMBIGUOUS
    except UsageError as exc:
        print(f"netpet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SUVConversionError as exc:
        print(f"netpet: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Cancelled as exc:
        print(f"netpet: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    except (DicomInputError, NetpetError) as exc:
        print(f"netpet: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"netpet: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("netpet: interrupted", file=sys.stderr)
        return EXIT_CANCELLED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
