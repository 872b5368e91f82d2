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
import errno
import json
import logging
import os
import re
import sys
import warnings
from typing import Any, List, Optional, Sequence

from netpet import __version__
from netpet.cli.common import (EXIT_AMBIGUOUS, EXIT_CANCELLED, EXIT_INPUT, EXIT_OK, EXIT_PARTIAL,  # noqa: F401
                               EXIT_REFUSED, EXIT_USAGE, JOBS, Ambiguous, Parser, SafeStream, UsageError,
                               add_pseudonymise, add_suv_options, check_output, overrides, parse_injection,
                               pseudonymiser, tqdm_progress, write_image)
from netpet.errors import DicomInputError, NetpetError, SUVConversionError, printable
from netpet.progress import Cancelled

log = logging.getLogger("netpet")

_tqdm_progress = tqdm_progress  # the name the subcommand modules used
_parse_injection = parse_injection
_overrides = overrides


def _print_json(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


# -- index -------------------------------------------------------------------------------------

def cmd_index(args: argparse.Namespace) -> int:
    from netpet.dicom.index import describe, index_tree

    if args.pseudonymise and args.include_identity:
        raise UsageError("--include-identity and --pseudonymise contradict each other; choose one")
    keyed = pseudonymiser(args)
    index = index_tree(args.path, jobs=args.jobs, progress=_tqdm_progress(not args.json))
    if args.patient is not None:
        index = index.for_patient(args.patient)
    if keyed is not None:
        index = keyed.index(index)
    if args.json:
        _print_json(index.to_dict(include_identity=args.include_identity, include_files=args.files))
    else:
        print(describe(index))
    return EXIT_OK


# -- suv ---------------------------------------------------------------------------------------

def _choose_pet(path: str, series_uid: Optional[str], jobs: Optional[int], progress, patient_id: Optional[str] = None):
    from netpet.dicom.index import index_tree

    # the PET headers are read once, while indexing: the conversion then reads only their pixel values
    return index_tree(path, jobs=jobs, progress=progress, pet_headers=True).choose_pet(series_uid, patient_id)


def cmd_suv(args: argparse.Namespace) -> int:
    from netpet.dicom.convert import convert_to_suv

    check_output(args.out)
    if args.provenance:
        check_output(args.provenance, "--provenance", ())
    suv_overrides = _overrides(args)
    keyed = pseudonymiser(args)
    progress = _tqdm_progress(not args.json)
    record = _choose_pet(args.path, args.series, args.jobs, progress, args.patient)
    result = convert_to_suv(record, args.type, suv_overrides, jobs=args.jobs, progress=progress)
    write_image(result.image, args.out)
    provenance = result.provenance.to_dict()
    provenance["output"] = os.path.abspath(args.out)
    provenance["hybrid"] = record.hybrid
    provenance["partner_series_uid"] = record.partner_series_uid
    if keyed is not None:
        provenance = keyed.record(provenance, record.patient_id)
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
    parser = Parser(
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
    p.add_argument("--patient", metavar="ID", help="list only the patient of this PatientID (0010,0020)")
    p.add_argument("--jobs", type=JOBS, default=None, help="worker processes (default: all cores)")
    add_pseudonymise(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("suv", help="convert a PET series to an SUV image with its provenance")
    p.add_argument("path", help="folder or file holding the PET series (and possibly others)")
    p.add_argument("--out", required=True, metavar="FILE", help="output image: .nrrd, .nii.gz, .nii, .mha")
    p.add_argument("--json", action="store_true", help="print the provenance as JSON")
    p.add_argument("--provenance", metavar="FILE", help="also write the provenance JSON to FILE")
    add_suv_options(p)
    p.add_argument("--jobs", type=JOBS, default=None, help="worker processes (default: all cores)")
    add_pseudonymise(p)
    p.set_defaults(func=cmd_suv)

    from netpet.cli import demo, followup, match, phantom, quant, stats
    from netpet.cli import reading as reading_cli
    from netpet.cli import scores as scores_cli
    from netpet.cli import mrmc as mrmc_cli
    from netpet.cli import sr as sr_cli
    from netpet.cli import review as review_cli
    from netpet.cli import run as run_cli

    quant.add_parsers(sub)
    match.add_parsers(sub)
    stats.add_parser(sub)
    phantom.add_parser(sub)
    demo.add_parser(sub)
    followup.add_parser(sub)
    reading_cli.add_parsers(sub)
    scores_cli.add_parser(sub)
    mrmc_cli.add_parser(sub)
    sr_cli.add_parser(sub)
    review_cli.add_parsers(sub)
    run_cli.add_parser(sub)
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
    """Run one ``netpet`` command; returns its exit code (see the module docstring).

    Everything printed goes through :class:`~netpet.cli.common.SafeStream` (control characters of
    DICOM text or CSV cells escaped). Deliberate errors print their one-sentence message; an
    operating-system error that no check foresaw (disk full, permission) prints one sentence naming
    the path. A reader that closes the pipe early (``netpet index DIR | head -1``) ends the command
    quietly with the code it would have had (0 when the work was done).
    """
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _run(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(_join_points(sys.argv[1:] if argv is None else list(argv)))
    except SystemExit as exc:  # argparse has printed the usage error (2) or the help (0)
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="netpet: %(levelname)s: %(message)s")
    code = EXIT_OK
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:
        return _closed_pipe(code)
    except Ambiguous as exc:  # a sentence, then the candidates one a line (their values made printable)
        _say(str(exc))
        return EXIT_AMBIGUOUS
    except UsageError as exc:
        _say(f"netpet: error: {printable(exc)}")
        return EXIT_USAGE
    except SUVConversionError as exc:
        _say(f"netpet: refused: {printable(exc)}")
        return EXIT_REFUSED
    except Cancelled as exc:
        _say(f"netpet: {printable(exc)}")
        return EXIT_CANCELLED
    except (DicomInputError, NetpetError) as exc:  # one line: a newline in a DICOM value cannot start another
        _say(f"netpet: error: {printable(exc)}")
        return EXIT_INPUT
    except OSError as exc:  # last resort: a disk that fills up, a permission that changes under us
        if exc.errno == errno.EPIPE:
            return _closed_pipe(code)
        where = exc.filename if exc.filename is not None else getattr(exc, "filename2", None)
        reason = exc.strerror or str(exc) or type(exc).__name__
        _say(f"netpet: error: {printable(where)}: {reason}." if where is not None else f"netpet: error: {reason}.")
        return EXIT_INPUT
    except KeyboardInterrupt:
        _say("netpet: interrupted")
        return EXIT_CANCELLED


def _dispatch(args: argparse.Namespace) -> int:
    """The command, with library warnings (numpy arithmetic, pydicom's notes on odd character sets)
    kept for ``--verbose``: they are for developers, and NETPET says what matters itself."""
    pydicom_log = logging.getLogger("pydicom")  # a filter, not a level: importing pydicom resets its level

    def quiet(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    with warnings.catch_warnings():
        if not args.verbose:
            warnings.simplefilter("ignore")
            pydicom_log.addFilter(quiet)
        try:
            return args.func(args)
        finally:
            pydicom_log.removeFilter(quiet)


def _say(message: str) -> None:
    try:
        print(message, file=sys.stderr)
    except OSError:
        pass


def _closed_pipe(code: int) -> int:
    """The reader of our output went away: stop writing, quietly (as ``head`` expects)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
    except (OSError, AttributeError, ValueError):
        pass
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
