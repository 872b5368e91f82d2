"""``netpet stats``: StudyStats on the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List

from netpet.cli.common import (add_pseudonymise, check_input, check_output_folder, count, number, pseudonymiser,
                               tqdm_progress)


def _columns(values: List[str]) -> List[str]:
    out: List[str] = []
    for value in values:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def add_parser(sub) -> None:
    from netpet.stats.intervals import CI_METHODS

    p = sub.add_parser("stats", help="diagnostic accuracy, paired comparisons, ROC and agreement of the study table",
                       description="Sensitivity, specificity, PPV, NPV with intervals per patient, lesion and region; "
                                   "paired McNemar and DeLong comparisons; Bland-Altman and kappa; false findings; "
                                   "CSV tables, figures and an HTML report in --out.")
    p.add_argument("table", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--reference", required=True, metavar="REF",
                   help="reference standard CSV: patient_id, lesion_id, region, truth, standard")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the CSV tables, figures and report.html")
    p.add_argument("--correspondence", metavar="CORR",
                   help="the correspondence table of netpet match: findings keep the reader's own ids and count for "
                        "the reference lesion they are matched to (unmatched findings: false positives)")
    p.add_argument("--ci", choices=CI_METHODS, default="wilson", help="interval of proportions (default wilson)")
    p.add_argument("--level", type=number("", 0.5, 1.0, high_open=True), default=0.95,
                   help="confidence level, from 0.5 to below 1 (default 0.95)")
    p.add_argument("--group-by", action="append", default=[], metavar="COL",
                   help="also split the results by this column of the table or the reference standard (repeatable, "
                        "or comma-separated), e.g. indication or region")
    p.add_argument("--regions", metavar="LIST", help="comma-separated staging regions (default: every region the "
                                                     "reference standard names)")
    p.add_argument("--bootstrap", type=count(0, "a number of replicates"), default=2000, metavar="N",
                   help="cluster-bootstrap replicates for lesion and region level (default 2000; 0 for none)")
    p.add_argument("--seed", type=count(0, "a seed"), default=1, help="bootstrap seed (default 1)")
    p.add_argument("--equivocal", choices=("negative", "positive"), default="negative",
                   help="how an equivocal call (uptake equal to the liver within its noise, Krenning 2) counts: "
                        "negative (default; the study protocol says uptake above the liver is clearly positive) or "
                        "positive (a sensitivity analysis)")
    p.add_argument("--call-source", choices=("suv", "reader"), default="suv",
                   help="where each finding's call comes from: suv (default; the SUV rule's call column) or reader "
                        "(the reader's visual call, reader_call; every active finding needs one, equivocal counts as "
                        "--equivocal says); retracted findings are left out either way")
    p.add_argument("--causes", metavar="FILE",
                   help="a false-findings.csv whose filled-in causes to keep (default: the one in --out, if any): the "
                        "free-text cause, and each cause_code the reader confirmed (cause_confirmed yes, or a code "
                        "changed from proposed_cause); codes: PHYS, INFL, BONE, PVE, LOWSSTR, MOTION, MRAC, URINE, "
                        "OTHER")
    p.add_argument("--no-figures", action="store_true", help="skip the figures (the report has tables only)")
    p.add_argument("--dicom", metavar="ROOT",
                   help="the study's DICOM folder tree: the report gains a MIP of every session read (its PET found by "
                        "the table's series_uid) with the lesions marked, and a thumbnail of every false finding (also "
                        "PNGs in --out/images)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_pseudonymise(p)
    p.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from netpet.stats.analysis import StatsOptions, analyse, false_finding_key
    from netpet.stats.causes import read_cause_codes
    from netpet.stats.data import load_study
    from netpet.stats.report import read_causes, write_outputs

    group_by = _columns(args.group_by)
    regions = _columns([args.regions]) if args.regions is not None else None
    if regions is not None and not regions:
        from netpet.cli.common import UsageError

        raise UsageError("--regions is empty; name the regions, comma-separated, or leave the option out for all")
    check_input(args.table, "The study table")
    check_input(args.reference, "The reference standard")
    if args.correspondence:
        check_input(args.correspondence, "The correspondence table")
    check_output_folder(args.out)
    causes_path = args.causes or os.path.join(args.out, "false-findings.csv")
    if args.causes:
        check_input(args.causes, "--causes")
    keyed = pseudonymiser(args)
    causes = read_causes(causes_path)
    # the reader's confirmed cause codes (cause_code, cause_confirmed) of the same file
    codes = read_cause_codes(causes_path, false_finding_key)
    if keyed is not None:  # causes written against archive ids follow the pseudonyms (a pseudonym is kept)
        causes = {(key[0], keyed.patient(key[1]), *key[2:]): cause for key, cause in causes.items()}
        codes = {(key[0], keyed.patient(key[1]), *key[2:]): code for key, code in codes.items()}
    study = load_study(args.table, args.reference, group_by, regions, patient_ids=keyed.patient if keyed else None,
                       correspondence=args.correspondence, call_source=args.call_source)
    options = StatsOptions(ci=args.ci, level=args.level, bootstrap=args.bootstrap, seed=args.seed, group_by=group_by,
                           regions=regions, causes=causes, equivocal=args.equivocal, cause_codes=codes)
    analysis = analyse(study, options, progress=tqdm_progress(not args.json))
    command = "netpet stats " + " ".join(sys.argv[2:]) if sys.argv and sys.argv[0].endswith("netpet") else ""
    written = write_outputs(analysis, args.out, command, previous_causes=causes, figures_too=not args.no_figures,
                            dicom=args.dicom)
    if args.json:
        json.dump(analysis.result, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(summary(analysis.result))
    print(f"\n{len(written)} files in {args.out}; open {written['report.html']}")
    for warning in study.warnings:
        print(f"note: {warning}", file=sys.stderr)
    return 0


def summary(result) -> str:
    """A short text summary: sensitivity and specificity per level and group (with its time point when the table
    has several), the equivocal rule, the staging endpoints (when the reference standard allows them) and the
    correspondence used (with its ambiguous matches)."""
    def group_of(e) -> str:
        group = f"{e['modality']} {e['tracer']} {e['reader']}"
        return group + (f" at {e['time_point']}" if e.get("time_point") else "")

    shown = [e for e in result["accuracy"] if not e["group_by"] and e.get("tp") is not None]
    width = max([32] + [len(group_of(e)) for e in shown])  # the widest group keeps the columns aligned
    lines = [f"{'level':8} {'group':{width}} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4}  sensitivity            specificity"]

    def text(m) -> str:
        if m["estimate"] is None:
            return f"{'-':22}"
        return f"{100 * m['estimate']:5.1f} % ({100 * m['ci_low']:4.1f}-{100 * m['ci_high']:5.1f})".ljust(22)

    for e in shown:
        lines.append(f"{e['level']:8} {group_of(e):{width}} {e['tp']:4d} {e['fp']:4d} {e['fn']:4d} {e['tn']:4d}  "
                     f"{text(e['sensitivity'])} {text(e['specificity'])}")
    if "options" in result:  # netpet demo prints the accuracy rows only
        lines.append(f"{result['inputs'].get('equivocal_findings', 0)} equivocal finding(s), counted as "
                     f"{result['options'].get('equivocal', 'negative')} (--equivocal)")
        if result["options"].get("call_source", "suv") != "suv" or result["inputs"].get("retracted_findings"):
            source = ("the reader (reader_call)" if result["options"].get("call_source") == "reader"
                      else "the SUV rule (call)")
            lines.append(f"calls from {source}; {result['inputs'].get('retracted_findings', 0)} retracted finding(s) "
                         "left out")
    if (result.get("staging") or {}).get("available"):
        from netpet.stats.staging import staging_lines

        lines.extend(staging_lines(result["staging"]))
    match = result.get("correspondence")
    if match:
        counts = match.get("counts", {})
        lines.append(f"correspondence {match.get('path')}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        ambiguous = match.get("ambiguous") or []
        if ambiguous:
            lines.append(f"{len(ambiguous)} ambiguous match(es) used as proposed; confirm them (status confirmed): "
                         + "; ".join(f"{a['patient_id']} {a['session_id']} {a['lesion_id']} -> "
                                     f"{a['reference_lesion_id']}" for a in ambiguous[:10])
                         + (" ..." if len(ambiguous) > 10 else ""))
    return "\n".join(lines)
