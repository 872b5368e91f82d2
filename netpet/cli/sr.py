"""``netpet sr``: DICOM SR measurement reports (TID 1500) of the study table, one per session and reader."""

from __future__ import annotations

import argparse
import json
import sys

from netpet.cli.common import (EXIT_INPUT, EXIT_OK, EXIT_PARTIAL, JOBS, add_pseudonymise, check_input,
                               check_output_folder, pseudonymiser)
from netpet.errors import printable


def add_parser(sub) -> None:
    p = sub.add_parser("sr", help="DICOM SR measurement reports (TID 1500) per session and reader, with their DICOM SEG",
                       description="One Comprehensive 3D SR per session and reader of the study table: a measurement "
                                   "group per finding (SUVmax, SUVpeak, SUVmean, MTV, TLA, T/L ratio; the SUV rule's "
                                   "call, Krenning, the reader's call, confidence, SSTR-RADS, anatomic correlate), "
                                   "referencing the finding's segment in the DICOM SEG and the PET images, the reader "
                                   "as observer. A session without a DICOM SEG gets one from its .seg.nrrd. Retracted "
                                   "findings are left out. Files: <patient>_<session>_<reader>_sr.dcm (and _seg.dcm).")
    p.add_argument("--table", required=True, metavar="T", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--dicom", required=True, metavar="ROOT", help="the DICOM folder holding the sessions' PET series")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the SR (and SEG) files")
    p.add_argument("--patient", metavar="P", help="only this patient (the table's patient_id)")
    p.add_argument("--session", metavar="S", help="only this session (the table's session_id)")
    p.add_argument("--reader", metavar="R", help="only this reader")
    p.add_argument("--jobs", type=JOBS, default=None, help="worker processes for indexing the DICOM tree")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_pseudonymise(p)
    p.set_defaults(func=cmd_sr)


def cmd_sr(args: argparse.Namespace) -> int:
    from netpet.quant.sr import write_reports

    check_input(args.table, "The study table")
    check_input(args.dicom, "The DICOM folder", folder=True)
    check_output_folder(args.out)
    keyed = pseudonymiser(args)
    result = write_reports(args.table, args.dicom, args.out, args.patient, args.session, args.reader,
                           pseudonymiser=keyed, jobs=args.jobs)
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        for report in result["reports"]:
            seg = f", SEG written: {report['seg']}" if report["seg_written"] else f", SEG {report['seg']}"
            print(f"{report['sr']}: {report['findings']} finding(s){seg}")
        for warning in result["warnings"]:
            print(f"netpet: note: {printable(warning)}", file=sys.stderr)
    for error in result["errors"]:
        print(f"netpet: skipped: {printable(error)}", file=sys.stderr)
    if result["errors"]:
        return EXIT_PARTIAL if result["reports"] else EXIT_INPUT
    return EXIT_OK
