"""``netpet review STUDY`` and ``netpet teach CASE``: the browser review and teaching app.

The server (trame-slicer, VTK, slicer-core) is imported inside the commands only, so ``netpet --help`` and
every other command stay free of it. It listens on 127.0.0.1 unless ``--host`` says otherwise, which needs
an access token (:func:`netpet.review.serving.check_bind`); one is made when none is given, and the address
printed carries it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from netpet.cli.common import EXIT_OK, UsageError, count
from netpet.errors import printable

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
#: the environment variable that may hold the access token (a --token value shows in the process list)
TOKEN_VARIABLE = "NETPET_REVIEW_TOKEN"


def add_parsers(sub) -> None:
    p = sub.add_parser("review", help="review a study in the browser: sessions, lesions, segment, accept, read")
    p.add_argument("study", help="the study folder: its DICOM, the study table and optionally the reference standard")
    p.add_argument("--table", help="the study table (.csv or .sqlite) inside STUDY (default: STUDY/study-table.csv, "
                                   "or the one study-table.csv under STUDY)")
    p.add_argument("--reference", help="the reference standard CSV inside STUDY (default: the one "
                                       "reference_standard.csv under STUDY)")
    p.add_argument("--reader", default="reader1", help="the reader id written with every finding (default reader1)")
    _serving_options(p)
    p.set_defaults(func=run_review)

    p = sub.add_parser("teach", help="a teaching case in the browser: mark lesions and calls, then see the score")
    p.add_argument("case", help="a teaching case folder (netpet phantom OUT --case NAME), or a case NAME to write "
                                "first into --out")
    p.add_argument("--trainee", default="trainee", help="the trainee's name: their table is "
                                                        "CASE/teaching/<trainee>/study-table.csv (default trainee)")
    p.add_argument("--out", help="where a case given by NAME is written (default ./teach-NAME)")
    p.add_argument("--score", metavar="TABLE", help="no server: score this study table of a trainee against the "
                                                    "case's truth and print the feedback")
    p.add_argument("--json", action="store_true", help="with --score, print the result as JSON")
    _serving_options(p)
    p.set_defaults(func=run_teach)


def _serving_options(p) -> None:
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="address to listen on (default 127.0.0.1: this computer only; any other needs --token)")
    p.add_argument("--port", type=count(1, "a port number"), default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--token", default=os.environ.get(TOKEN_VARIABLE) or None,
                   help="access token (at least 16 characters) every request must carry; default: the environment "
                        f"variable {TOKEN_VARIABLE} (kept out of the process list), else a new one, printed in the "
                        "address")


def _check_serving(args) -> str:
    """The token to serve with (checked by serving.check_bind; a new one when none is given) and a free port."""
    from netpet.review import serving

    if args.port > 65535:
        raise UsageError(f"--port {args.port} is out of range; give a port from 1 to 65535")
    token = serving.check_bind(args.host, args.token)
    if token is None:
        token = serving.new_token()
    try:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((args.host, args.port))
    except OSError as exc:
        raise serving.ServingError(f"netpet review: cannot listen on {printable(args.host)} port {args.port} "
                                   f"({exc.strerror or exc}); choose another --port or --host.") from None
    return token


def _serve(app, args, token) -> int:
    from netpet.review.app import serve

    def ready(url):
        print(f"netpet {args.command}: open {url}", flush=True)
        print("(Ctrl-C stops the server)", flush=True)

    try:
        serve(app, args.host, args.port, token, ready=ready)
    except KeyboardInterrupt:
        pass
    print(f"netpet {args.command}: stopped.", flush=True)
    return EXIT_OK


def _gui_environment() -> None:
    """Off-screen rendering through Mesa EGL: set before VTK is first imported (no display is needed)."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    # VTK's warnings here are about its own off-screen windows (e.g. "WindowResizeEvent will not be generated ...
    # after VTK 9.6", one per view): nothing a reader can act on, and they bury the command's own messages.
    # VTK's errors are still printed.
    from vtkmodules.vtkCommonCore import vtkObject

    vtkObject.GlobalWarningDisplayOff()


def _check_reader(reader: str) -> str:
    """The reader id written with every finding: refused when empty or holding a control character."""
    from netpet.schema import clean_label

    text = clean_label(reader)
    if not text or printable(text) != text:
        raise UsageError(f"--reader {printable(reader)!r} cannot name a reader; give a name such as R1 (no control "
                         "characters).")
    return text


def run_review(args: argparse.Namespace) -> int:
    from netpet.review import study

    reader = _check_reader(args.reader)
    folder = study.open_study(args.study, args.table, args.reference)
    token = _check_serving(args)
    _gui_environment()
    from netpet.review.app import build_app

    app = build_app(folder, reader)
    return _serve(app, args, token)


def _case_folder(args) -> str:
    """The case folder: CASE itself, or the case NAME written first into --out (default ./teach-NAME; a case
    written there before is opened again, with the trainees' tables, when it is that case)."""
    if os.path.isdir(args.case):
        if args.out:
            raise UsageError(f"--out goes with a case NAME; {printable(args.case)} is a case folder already.")
        return args.case
    from netpet.phantom.cases import CASES

    if args.case not in CASES:
        raise UsageError(f"{printable(args.case)} is neither a teaching case folder nor a case name; give a folder "
                         f"written by netpet phantom OUT --case NAME, or one of: {', '.join(CASES)}")
    out = args.out or f"teach-{args.case}"
    if os.path.exists(os.path.join(out, "CASE.md")):  # written before: the trainees' earlier tables stay with it
        from netpet.review.teaching import open_case

        written = open_case(out).name
        if written != args.case:
            raise UsageError(f"{printable(out)} holds the teaching case {printable(written)}, not {args.case}; give "
                             "another --out for it.")
        return out
    from netpet.cli.common import check_output_folder
    from netpet.phantom import generate_case

    check_output_folder(out)
    print(f"netpet teach: writing the case {args.case} into {out}", flush=True)
    generate_case(out, args.case)
    return out


def run_teach(args: argparse.Namespace) -> int:
    import json

    from netpet.review import study, teaching

    if args.json and not args.score:
        raise UsageError("--json goes with --score (the headless scoring)")
    case = teaching.open_case(_case_folder(args))
    if args.score:
        path = args.score
        if not os.path.isfile(path):
            raise study.ReviewError(f"The trainee's table {printable(path)} does not exist; give the study table "
                                    "the trainee wrote (CASE/teaching/<trainee>/study-table.csv).")
        # the same code as the page's Finish; the table's path, so that its segmentation files are found beside it
        result = teaching.score(case, path)
        if args.json:
            json.dump(result, sys.stdout, indent=2, default=str)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(teaching.format_feedback(result))
        return EXIT_OK
    table = teaching.trainee_table(case, args.trainee)
    folder = study.open_study(case.root, table=table)
    token = _check_serving(args)
    os.makedirs(os.path.dirname(table), exist_ok=True)
    _gui_environment()
    from netpet.review.app import build_app

    app = build_app(folder, args.trainee, mode="teach", case=case)
    return _serve(app, args, token)
