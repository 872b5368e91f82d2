"""``netpet phantom``: write the digital reference study or a teaching case."""

from __future__ import annotations

import argparse

from netpet.cli.common import JOBS, check_output_folder, count


def add_parser(sub) -> None:
    p = sub.add_parser("phantom", help="write the digital reference study (synthetic patients with known truth)")
    p.add_argument("out", nargs="?", help="output folder")
    p.add_argument("--patients", type=count(1, "a number of patients"), default=3, help="number of patients (default 3)")
    p.add_argument("--seed", type=count(0, "a seed"), default=1, help="random seed: the same seed gives the same study (default 1)")
    p.add_argument("--tracers", default="dotatate,fdg", help="comma-separated: dotatate, fdg (default both)")
    p.add_argument("--modalities", default="petct,petmr", help="comma-separated: petct, petmr (default both)")
    p.add_argument("--preview", action="store_true", help="write a PNG per session: PET MIP and fused slice")
    p.add_argument("--distant-sites", action="store_true",
                   help="give NET patients the nodal stations and distant sites of the staging design (N0/N1, "
                        "M0/M1a/M1b/M1c: regional and distant nodes, liver, bone, lung)")
    p.add_argument("--follow-up", action="store_true",
                   help="add a 68Ga-DOTATATE PET/CT follow-up (time point FU1, 90-200 days later) for NET and TIO "
                        "patients: response, stable disease, progression with new lesions, recurrence")
    p.add_argument("--reading-design", action="store_true",
                   help="NETPET grades P0-P5 by design, FDG-only lesions, TIO culprits with SSTR-avid decoys "
                        "(every NET and lesion-free patient gets the FDG PET/CT; see netpet.phantom.reading)")
    p.add_argument("--case", metavar="NAME", help="write one teaching case instead (see --list-cases): patient TEACH-<NAME>, CASE.md with "
                        "answers, QUIZ.md without; with --preview also preview/quiz/ without truth contours")
    p.add_argument("--list-cases", action="store_true", help="list the teaching cases and exit")
    p.add_argument("--jobs", type=JOBS, default=None, help="worker processes (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from netpet.cli.main import EXIT_OK, UsageError, _tqdm_progress
    from netpet.phantom import generate_case, generate_study
    from netpet.phantom.cases import CASES

    if args.list_cases:
        for name, case in CASES.items():
            print(f"{name:24} {case.title}")
        return EXIT_OK
    if not args.out:
        raise UsageError("give the output folder: netpet phantom OUT [--patients N --seed S | --case NAME]")
    check_output_folder(args.out, "the output folder")
    progress = _tqdm_progress(True)
    try:
        if args.case:
            if args.distant_sites or args.follow_up or args.reading_design:
                raise UsageError("--distant-sites, --follow-up and --reading-design apply to the study (--patients), not to a "
                                 "teaching case")
            summary = generate_case(args.out, args.case, args.preview, progress)
        else:
            tracers = [t.strip().lower() for t in args.tracers.split(",") if t.strip()]
            modalities = [m.strip().lower() for m in args.modalities.split(",") if m.strip()]
            summary = generate_study(args.out, args.patients, args.seed, tracers, modalities, args.preview,
                                     args.jobs, progress, distant_sites=args.distant_sites,
                                     follow_up=args.follow_up, reading_design=args.reading_design)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    sessions = sum(len(p["sessions"]) for p in summary["patients"])
    lesions = sum(len(p["lesions"]) for p in summary["patients"])
    print(f"wrote {len(summary['patients'])} patients, {sessions} sessions, {lesions} lesions: "
          f"{summary['files']} DICOM files, {summary['bytes'] / 1e6:.0f} MB in {args.out}")
    print(f"truth: {args.out}/truth/lesions.csv, {args.out}/reference_standard.csv, "
          f"{args.out}/reference_locations.csv, {args.out}/truth/staging.csv, {args.out}/truth/sessions.csv, "
          f"{args.out}/truth/netpet_scores.csv, {args.out}/truth/readers.csv"
          + (f", {args.out}/truth/follow_up.csv" if summary["parameters"].get("follow_up") else ""))
    if args.case:
        print(f"teaching notes with answers: {args.out}/CASE.md; the trainee's questions: {args.out}/QUIZ.md"
              + (f"; previews without the truth: {args.out}/preview/quiz/" if args.preview else ""))
    return EXIT_OK
