"""``netpet scores``: the reading standards of a study table (:mod:`netpet.clinical.scores`).

Writes into ``--out``, each atomically (a temporary file in the folder, flushed, then renamed over the old one):
``netpet-scores.csv`` (NETPET grade per patient, reader, time point and DOTATATE session), ``fdg-sstr-discordant.csv``
(the FDG+/SSTR- lesions), ``sstr-rads-lesions.csv`` and ``sstr-rads-scans.csv`` (SSTR-RADS 1.0 proposal beside the
reader's category), ``prrt-summary.csv`` (PRRT summary and imaging-eligibility statement, a decision aid) and
``scores.json`` (all of it with the statistics and warnings). Prints a summary (``--json``: the whole result).

Exit codes (:mod:`netpet.cli.common`): 0 done; 2 a usage error; 3 an input that cannot be used (a missing file or
column, a cell that is not a number, a correspondence that is not netpet match's), one sentence naming it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from netpet.cli.common import EXIT_OK, check_input, check_output_folder, number
from netpet.errors import printable

OUTPUTS = ("netpet-scores.csv", "fdg-sstr-discordant.csv", "sstr-rads-lesions.csv", "sstr-rads-scans.csv",
           "prrt-summary.csv", "scores.json")


def add_parser(sub) -> None:
    p = sub.add_parser("scores", help="reading standards: NETPET score, FDG+/SSTR- lesions, SSTR-RADS 1.0, PRRT summary",
                       description="Score a study table by the reading standards: the NETPET grade P0-P5 of each "
                                   "patient's dual DOTATATE/FDG reading (Chan et al. 2017) with its deciding lesions "
                                   "and the FDG-positive/SSTR-negative lesions, SSTR-RADS 1.0 per finding and per scan "
                                   "(Werner et al. 2018; the software's proposal beside the reader's category), the "
                                   "PRRT summary with an imaging-eligibility statement (a decision aid, not a "
                                   "treatment decision), and their distributions and weighted kappa between readers "
                                   "and between modalities. Retracted findings are left out.")
    p.add_argument("--table", required=True, metavar="T", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--correspondence", metavar="C",
                   help="the correspondence CSV of netpet match (DOTATATE and FDG findings linked by track_id); "
                        "without it, findings of the two sessions correspond by a shared lesion_id")
    p.add_argument("--reference", metavar="R",
                   help="the reference standard CSV: its indication column leaves TIO localisation patients ungraded "
                        "(the NETPET grade is defined for NET)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the CSV files and scores.json")
    p.add_argument("--equal-ratio", type=number("", 1.0), default=None, metavar="R",
                   help="NETPET P3 band: FDG T/L over DOTATATE T/L within 1/R to R is equal avidity (default 1.3)")
    p.add_argument("--json", action="store_true", help="print the whole result as one JSON object")
    p.set_defaults(func=cmd_scores)


def cmd_scores(args: argparse.Namespace) -> int:
    from netpet.clinical.netpet_score import EQUAL_RATIO
    from netpet.clinical.scores import read_table_scores, write_scores

    check_input(args.table, "The study table")
    if args.correspondence:
        check_input(args.correspondence, "The correspondence")
    if args.reference:
        check_input(args.reference, "The reference standard")
    check_output_folder(args.out)
    result = read_table_scores(args.table, args.correspondence,
                               args.equal_ratio if args.equal_ratio is not None else EQUAL_RATIO, args.reference)
    written = write_scores(result, args.out)
    if args.json:
        json.dump({"outputs": written, **result}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for s in result["netpet_scores"]:
            print(f"{s['patient_id']} {s['reader']} {s['time_point']} {s['modality'] or '-'}: "
                  f"{s['grade'] or 'no grade'} ({s['reason']})")
        for p in result["prrt"]:
            print(f"{p['patient_id']} {p['reader']} {p['time_point']} {p['modality']} PRRT: {p['statement']}")
        graded = sum(1 for s in result["netpet_scores"] if s["grade"])
        print(f"{graded} of {len(result['netpet_scores'])} dual readings graded, {len(result['discordant'])} FDG+/SSTR- "
              f"lesions, {len(result['sstr_rads_lesions'])} SSTR-RADS findings in {len(result['sstr_rads_scans'])} "
              f"scans; written {', '.join(written.values())}")
    for warning in result["warnings"]:
        print(f"note: {printable(warning)}", file=sys.stderr)
    return EXIT_OK
