"""``netpet run``: the whole study pipeline (netpet.run) on the command line."""

from __future__ import annotations

import argparse
import json
import sys

from netpet.cli.common import EXIT_OK, EXIT_PARTIAL, JOBS, SUV_TYPES, check_output_folder, tqdm_progress
from netpet.errors import printable


def add_parser(sub) -> None:
    from netpet.schema import DEFAULT_SEGMENTATION_METHOD as DEFAULT_METHOD, SEGMENTATION_METHODS as METHODS

    p = sub.add_parser(
        "run", help="the whole study: index, SUV, segmentation from the manifest, study table, statistics, report",
        description="Runs a study from its DICOM tree: every PET session is a work unit (its manifest rows), run on "
                    "a local process pool or a Dask distributed scheduler; the study table is written by this "
                    "process alone; a rerun does only what changed or failed (checkpoints in OUT/checkpoints); "
                    "OUT/run-log.jsonl records every unit. Exit code 6 when a session failed or a row was skipped.")
    p.add_argument("study", help="the study folder: its DICOM tree (searched recursively), and by default its "
                                 "manifest.csv and reference_standard.csv")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: study-table.csv, segmentations/, statistics/, checkpoints/, run-log.jsonl")
    p.add_argument("--manifest", metavar="M", help="the clicks, in netpet quantify's manifest format (default: "
                                                   "STUDY/manifest.csv if it exists; without one every PET is "
                                                   "converted to SUV and checked, listed in OUT/sessions.csv)")
    p.add_argument("--reference", metavar="R", help="reference standard CSV for the statistics and report (default: "
                                                    "STUDY/reference_standard.csv if it exists)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the sessions on a Dask distributed scheduler (tcp://host:8786) instead of local "
                        "processes; its workers must see STUDY and --out at the same paths")
    p.add_argument("--jobs", type=JOBS, default=None, metavar="N",
                   help="local worker processes (default: all cores; 1 runs in this process)")
    p.add_argument("--type", choices=SUV_TYPES, default="bw", help="SUV type (default bw)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"segmentation method for rows without a method column (default {DEFAULT_METHOD}, as netpet "
                        "quantify)")
    p.add_argument("--json", action="store_true", help="print the end summary as JSON (no progress bar)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from netpet.run.driver import run_study

    check_output_folder(args.out)
    arguments = {k: v for k, v in vars(args).items() if k != "func"}
    summary = run_study(args.study, args.out, manifest=args.manifest, reference=args.reference,
                        scheduler=args.scheduler, jobs=args.jobs, suv_type=args.type, method=args.method,
                        progress=tqdm_progress(not args.json), arguments=arguments)
    for error in summary["errors"]:
        print(f"netpet: failed: {printable(error)}", file=sys.stderr)
    for warning in summary["warnings"]:
        print(f"netpet: warning: {printable(warning)}", file=sys.stderr)
    for stale in summary["stale"]:
        where = f"patient {printable(stale['patient_id'])} session {printable(stale['session_id'])}"
        if "lesion_id" in stale:  # one finding of a session the manifest still names
            print(f"netpet: warning: finding {printable(stale['lesion_id'] or '(session read)')} of reader "
                  f"{printable(stale['reader'])}, {where}, is in the study table but no longer in the manifest; left "
                  "as it is and counted by the statistics: retract it (netpet retract) if it should not count",
                  file=sys.stderr)
        else:
            print(f"netpet: note: {where} is in the study table but not in the manifest; left as it is",
                  file=sys.stderr)
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(f"{summary['units']} sessions: {summary['done']} done, {summary['unchanged']} unchanged, "
              f"{summary['failed']} failed; {summary['wall_seconds']:.1f} s")
        if "table" in summary:
            print(f"{summary['rows_written']} rows written to {summary['table']}"
                  + (f" ({summary['rows_reupserted']} restored from checkpoints)" if summary["rows_reupserted"] else "")
                  + (f"; {summary['skipped_rows']} manifest rows left out" if summary["skipped_rows"] else ""))
            stats = summary["statistics"]
            if stats.get("report"):
                print(f"statistics {stats['status']}: {stats['report']}")
            elif stats.get("reason"):
                print(f"no statistics: {stats['reason']}")
        else:
            print(f"no manifest: every PET session converted to SUV and checked; no study table. Sessions listed in "
                  f"{summary['sessions']}")
        print(f"run log: {summary['run_log']}")
    return EXIT_PARTIAL if summary["exit_code"] else EXIT_OK
