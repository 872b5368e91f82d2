"""``netpet mrmc``: multi-reader multi-case ROC analysis of the readers' confidence (netpet.stats.mrmc)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from netpet.cli.common import check_input, check_output_folder, number


def add_parser(sub) -> None:
    p = sub.add_parser("mrmc", help="multi-reader multi-case ROC of the readers' confidence (Obuchowski-Rockette, DBM)",
                       description="Compares tests (modality + tracer, e.g. PET/CT vs PET/MR with DOTATATE) by the "
                                   "readers' 5-point confidence: empirical AUC per reader and test, "
                                   "Obuchowski-Rockette "
                                   "analysis with jackknife covariances (or DBM pseudovalues) and Hillis' degrees of "
                                   "freedom, for random readers and cases, fixed readers and fixed cases. Writes "
                                   "mrmc.csv and mrmc.json in --out.")
    p.add_argument("--table", required=True, metavar="T", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--reference", required=True, metavar="R", help="the reference standard CSV")
    p.add_argument("--correspondence", metavar="C", help="the correspondence table of netpet match")
    p.add_argument("--level", choices=("lesion", "patient"), default="patient",
                   help="the case: a patient (default; the independent unit the methods assume) or a reference lesion")
    p.add_argument("--tests", nargs="+", metavar="TEST",
                   help='the tests to compare, each "<modality> <tracer>" as in the table, e.g. "PET/CT dotatate" '
                        '"PET/MR dotatate" (default: every modality and tracer of the table)')
    p.add_argument("--method", choices=("jackknife", "dbm"), default="jackknife",
                   help="jackknife: Obuchowski-Rockette with jackknife covariances (default); "
                        "dbm: Dorfman-Berbaum-Metz "
                        "pseudovalue ANOVA (same random-reader result, with its mean squares)")
    p.add_argument("--ci-level", type=number("", 0.5, 1.0, high_open=True), default=0.95,
                   help="confidence level of the intervals, from 0.5 to below 1 (default 0.95)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for mrmc.csv and mrmc.json")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_mrmc)


def cmd_mrmc(args: argparse.Namespace) -> int:
    import pandas as pd

    from netpet.clinical.followup import write_table
    from netpet.stats.data import load_study, units_for
    from netpet.stats.mrmc import result_rows, study_mrmc

    check_input(args.table, "The study table")
    check_input(args.reference, "The reference standard")
    if args.correspondence:
        check_input(args.correspondence, "The correspondence table")
    check_output_folder(args.out)
    study = load_study(args.table, args.reference, correspondence=args.correspondence)
    result = study_mrmc(units_for(study), args.level, args.tests, args.method, args.ci_level, study.warnings)
    os.makedirs(args.out, exist_ok=True)
    write_table(os.path.join(args.out, "mrmc.csv"), pd.DataFrame(result_rows(result)))
    _write_json(os.path.join(args.out, "mrmc.json"), result)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(summary(result))
    for note in result["notes"] + result["warnings"]:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _write_json(path: str, payload) -> None:
    from netpet.errors import NetpetError
    from netpet.quant.table import replace_atomically

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
            handle.write("\n")

    replace_atomically(path, write, suffix=".json", what="MRMC result", error=NetpetError)


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def summary(result) -> str:
    """Per test its reader-averaged AUC, then the random-reader test and each difference with its interval."""
    design = result["design"]
    level = f"{100 * result['level']:g} %"
    kind = f" {result['case_level']}" if result.get("case_level") else ""
    lines = [f"{len(design['readers'])} readers, {design['cases']}{kind} cases ({design['abnormal']} abnormal, "
             f"{design['normal']} normal), method {result['method']}"]
    rrrc = result["rrrc"]
    for row in rrrc["tests"]:
        ci = (f"{level} CI {_fmt(row['ci_low'])} to {_fmt(row['ci_high'])}" if row["ci_low"] is not None
              else "no interval")
        lines.append(f"  {row['test']}: AUC {row['estimate']:.3f} ({ci}, random readers and cases)")
    if rrrc.get("f") is not None:
        ddf = "infinity" if rrrc.get("ddf_infinite") else _fmt(rrrc["ddf"], ".2f")
        lines.append(f"random readers and cases: F = {rrrc['f']:.3f}, df {rrrc['ndf']} and {ddf}, "
                     f"p = {_fmt(rrrc['p'], '.4f')}")
    for d in rrrc["differences"]:
        lines.append(f"  {d['test_a']} - {d['test_b']}: {d['estimate']:+.3f} ({level} CI {_fmt(d['ci_low'], '+.3f')} "
                     f"to {_fmt(d['ci_high'], '+.3f')})")
    frrc = result["frrc"]
    if frrc.get("p") is not None:
        stat = f"F = {frrc['f']:.3f}" if frrc.get("f") is not None else f"chi-square = {frrc['chisq']:.3f}"
        lines.append(f"fixed readers: {stat}, p = {frrc['p']:.4f}")
    rrfc = result["rrfc"]
    if rrfc.get("p") is not None:
        lines.append(f"fixed cases: F = {rrfc['f']:.3f}, p = {rrfc['p']:.4f}")
    elif rrfc.get("reason"):
        lines.append(f"fixed cases: {rrfc['reason']}")
    return "\n".join(lines)
