"""``netpet register`` and ``netpet match``: registration between a patient's sessions and lesion correspondence.

``netpet register --table T --dicom ROOT`` finds each session of the study table in the DICOM tree
(its PET by the table's ``series_uid``, and the PET's CT or MR partner), registers every other session
of each patient to the patient's reference session (default: the first by time point, then session
id) and stores the transforms in ``transforms/`` beside the table (:mod:`netpet.match.registration`).
A registration of poor quality is refused (exit 5) and nothing is written for it; the other pairs
are still registered.

``netpet match --table T --reference R --out CORR.csv`` writes the correspondence table
(:mod:`netpet.match.correspondence`); an existing ``--out`` keeps its ``confirmed`` rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from netpet.cli.common import (EXIT_OK, EXIT_REFUSED, JOBS, UsageError, check_input, check_output, number,
                               tqdm_progress)
from netpet.errors import DicomInputError, printable


def add_parsers(sub) -> None:
    p = sub.add_parser("register",
                       help="register the sessions of each patient of the study table to a reference session",
                       description="Register every session of each patient of the study table to the patient's "
                                   "reference session (rigid, on the CT/MR or the PET) and store the transforms in "
                                   "transforms/ beside the table, where netpet match and Slicer find them.")
    p.add_argument("--table", required=True, metavar="TABLE", help="the study table (.csv, or .sqlite/.db) with "
                                                                   "series_uid per session")
    p.add_argument("--dicom", required=True, metavar="ROOT", help="folder (searched recursively) holding the sessions' "
                                                                  "DICOM series")
    p.add_argument("--patient", metavar="ID", help="register this patient of the table only")
    p.add_argument("--reference-session", metavar="ID",
                   help="the session the others are registered to (default: the patient's first session by time "
                        "point, then session id)")
    p.add_argument("--basis", choices=("auto", "anatomy", "pet"), default="auto",
                   help="series registered: auto (CT/MR when both sessions have one, else the PET), anatomy or pet")
    p.add_argument("--grid", type=number("mm", 1.0, 20.0), default=None, metavar="MM",
                   help="isotropic working grid of the registration, mm (default 4, about a PET voxel; 6 is about "
                        "twice as fast)")
    p.add_argument("--recompute", action="store_true", help="register again even when a stored transform fits")
    p.add_argument("--jobs", type=JOBS, default=None, help="worker processes for indexing (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the registrations as JSON")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("match", help="match the study table's findings to the reference lesions by location",
                       description="Match each finding of the study table to a reference lesion by location (mapped "
                                   "centroids, optimal assignment within a gate tied to lesion size and registration "
                                   "error) and write the correspondence table: matched, ambiguous (to confirm), "
                                   "confirmed, unmatched findings (false positives) and missed lesions (false "
                                   "negatives). Rows set to confirmed in an existing --out are kept.")
    p.add_argument("--table", required=True, metavar="TABLE", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--reference", required=True, metavar="REF",
                   help="reference standard CSV with location_session, center_r/a/s, diameter_mm")
    p.add_argument("--locations", metavar="FILE", help="locations CSV: patient_id, lesion_id, session_id, "
                                                       "center_r/a/s, diameter_mm (per session; takes precedence)")
    p.add_argument("--transforms", metavar="DIR", help="folder of the stored registrations (default: transforms "
                                                       "beside the table)")
    p.add_argument("--reader", metavar="ID", help="match this reader's findings only")
    p.add_argument("--registration-error", type=number("mm", 0.0), metavar="MM",
                   help="registration error (mm) of every stored registration, for the gate (default: the figure per "
                        "basis measured on the reference study, 1 mm CT/MR, 2 mm PET)")
    p.add_argument("--out", required=True, metavar="CSV", help="the correspondence table to write (.csv)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_match)


# -- register ------------------------------------------------------------------------------------

def cmd_register(args: argparse.Namespace) -> int:
    from netpet.dicom.index import index_tree
    from netpet.match.study import register_study, table_sessions

    check_input(args.table, "The study table")
    check_input(args.dicom, "--dicom", folder=True)
    _, order = table_sessions(args.table)
    patients = list(order)
    if args.patient is not None:
        if args.patient not in order:
            raise DicomInputError(f"Patient {printable(args.patient)} is not in the study table "
                                  f"{printable(args.table)}; its patients are: "
                                  f"{', '.join(printable(p) for p in patients[:10])}.")
        patients = [args.patient]
    if args.reference_session is not None:
        without = [p for p in patients if args.reference_session not in order[p]]
        if without:
            raise UsageError(f"--reference-session {printable(args.reference_session)} is not a session of patient "
                             f"{printable(without[0])} in the table (its sessions: "
                             f"{', '.join(printable(s) for s in order[without[0]])}); choose one of them, or --patient")
    index = index_tree(args.dicom, jobs=args.jobs, progress=tqdm_progress(not args.json))
    folder = os.path.dirname(os.path.abspath(args.table))
    results = register_study(args.table, index, patients, args.reference_session, args.basis, args.recompute,
                             args.grid)
    refused = [r["reason"] for r in results if r["status"] == "refused"]
    if args.json:
        json.dump({"table": os.path.abspath(args.table), "transforms": os.path.join(folder, "transforms"),
                   "registrations": results}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        shown = set()
        for record in results:
            patient, session, reference = record["patient_id"], record["moving_session"], record["fixed_session"]
            if patient not in shown:
                shown.add(patient)
                print(f"{printable(patient)}: reference session {printable(reference)} ({record['reference_rule']}); "
                      f"{len(order[patient]) - 1} other session(s)")
            if record["status"] == "refused":
                print(f"  {printable(session)} -> {printable(reference)}: refused: {printable(record['reason'])}")
                continue
            rotation = ", ".join(f"{v:.2f}" for v in record["rotation_deg"])
            translation = ", ".join(f"{v:.1f}" for v in record["translation_mm"])
            how = "reused" if record["status"] == "reused" else f"registered in {record['seconds']:.1f} s"
            print(f"  {printable(session)} -> {printable(reference)} on the {record['basis']}: NMI {record['nmi']:.3f} "
                  f"(refused below {record['min_nmi']:.2f}), rotation {rotation} deg, translation {translation} mm, "
                  f"{how}; {printable(os.path.relpath(record['file'], folder))}")
        for patient in patients:
            if patient not in shown:
                print(f"{printable(patient)}: one session only; nothing to register")
    if refused:
        print(f"netpet: refused: {len(refused)} registration(s) of poor quality were not written: "
              f"{printable(refused[0])}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


# -- match ---------------------------------------------------------------------------------------

def cmd_match(args: argparse.Namespace) -> int:
    from netpet.match.correspondence import match_study, summarise, write_correspondence

    check_input(args.table, "The study table")
    check_input(args.reference, "The reference standard")
    if args.locations:
        check_input(args.locations, "--locations")
    if args.transforms:
        check_input(args.transforms, "--transforms", folder=True)
    check_output(args.out, "--out", (".csv",))
    previous = args.out if os.path.exists(args.out) else None
    frame = match_study(args.table, args.reference, locations_path=args.locations, transforms_folder=args.transforms,
                        reader=args.reader, previous=previous, registration_error_mm=args.registration_error)
    write_correspondence(args.out, frame)
    summary = summarise(frame)
    summary["out"] = os.path.abspath(args.out)
    summary["kept_confirmed_from"] = os.path.abspath(previous) if previous else None
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return EXIT_OK
    counts = summary["counts"]
    print(f"Correspondence of {counts['findings']} finding(s) written to {printable(args.out)}"
          f"{' (confirmed rows kept)' if previous else ''}:")
    print(f"  matched {counts['matched']}, ambiguous {counts['ambiguous']} (to confirm), confirmed "
          f"{counts['confirmed']}, unmatched findings {counts['unmatched']} (false positives), missed lesions "
          f"{counts['missed']} (false negatives)")
    for patient, per in summary["patients"].items():
        print(f"  {printable(patient)}: " + ", ".join(f"{k} {v}" for k, v in per.items() if v))
    if summary["ambiguous"]:
        print("To confirm (set status to confirmed, and reference_lesion_id if another lesion is meant, then run "
              "netpet match again):")
        for row in summary["ambiguous"]:
            print(f"  {printable(row['patient_id'])} {printable(row['session_id'])} reader {printable(row['reader'])} "
                  f"finding {printable(row['lesion_id'])} -> {printable(row['reference_lesion_id'])} at "
                  f"{row['distance_mm']} mm; {printable(row['note'])}")
    for warning in summary["warnings"]:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    return EXIT_OK

