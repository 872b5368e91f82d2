"""``netpet followup``: lesions over time points, tumour burden and PERCIST from the study table and the
correspondence (:mod:`netpet.clinical.followup`).

Writes ``lesion_changes.csv`` (:data:`netpet.clinical.followup.LESION_COLUMNS`) and ``patient_response.csv``
(:data:`netpet.clinical.followup.PATIENT_COLUMNS`) into ``--out``, each atomically (a temporary file in the folder,
flushed, then renamed over the old one), and prints a summary (``--json``: one JSON object).

Exit codes (:mod:`netpet.cli.common`): 0 done; 3 an input that cannot be used (a missing file or column, a finding
without a track, a cell that is not a number); 5 refused: the time points of a patient cannot be ordered without
guessing (no ``days_from_baseline`` and labels that are not baseline, FU1, FU2...).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from typing import Any, Dict, List

from netpet.cli.common import EXIT_OK, EXIT_REFUSED, check_input, check_output_folder
from netpet.errors import NetpetError, printable

OUTPUTS = ("lesion_changes.csv", "patient_response.csv")


def add_parser(sub) -> None:
    p = sub.add_parser("followup", help="lesions over time points: changes, new and disappeared lesions, SSTR-TV, "
                                        "TL-SSTR and PERCIST 1.0",
                       description="Follow every lesion track of the correspondence (netpet match) over the time points "
                                   "of the study table (columns time_point, days_from_baseline): SUVmax, SUVpeak, MTV "
                                   "and T/L changes, new and disappeared lesions; per patient and time point the "
                                   "lesion counts, whole-body SSTR-expressing tumour volume (SSTR-TV) and total lesion "
                                   "SSTR expression (TL-SSTR) for DOTATATE, and the PERCIST 1.0 category for FDG. "
                                   "Writes lesion_changes.csv and patient_response.csv in --out.")
    p.add_argument("--table", required=True, metavar="T", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--correspondence", required=True, metavar="C",
                   help="the correspondence CSV written by netpet match (a track_id for every finding)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for lesion_changes.csv and patient_response.csv")
    p.add_argument("--json", action="store_true", help="print the summary and the per-patient rows as one JSON object")
    p.set_defaults(func=cmd_followup)


def read_correspondence_csv(path: str):
    """The correspondence CSV as text columns with a ``table_row`` label (``<path> line N``) for messages.

    Raises
    ------
    NetpetError
        Not UTF-8 CSV text (the line named), or an unreadable CSV.
    """
    import pandas as pd

    with open(path, "rb") as handle:
        data = handle.read()
    shown = printable(path)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NetpetError(f"The correspondence {shown} is UTF-16 text; save it as CSV UTF-8.")
    newline = b"\n"
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(newline, 0, nul) + 1
        raise NetpetError(f"The correspondence {shown} holds a NUL byte on line {line}: it is not CSV text; write it "
                          "with netpet match.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(newline, 0, exc.start) + 1
        raise NetpetError(f"The correspondence {shown} is not UTF-8 text (line {line}); save it as CSV UTF-8.") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise NetpetError(f"The correspondence {shown} is not a readable CSV (line {reader.line_num}: {exc}).") from None
    if not rows:
        raise NetpetError(f"The correspondence {shown} is empty; write it with netpet match.")
    header = [h.strip() for h in rows[0]]
    records, labels = [], []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        records.append({h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header) if h})
        labels.append(f"{path} line {number}")
    frame = pd.DataFrame(records, columns=[h for h in header if h])
    frame["table_row"] = labels
    return frame


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if type(value).__name__ in ("bool_", "bool"):
        return bool(value)
    if isinstance(value, (int, float)) or type(value).__name__.startswith(("float", "int")):
        number = float(value)
        if not math.isfinite(number):
            return None
        return int(number) if type(value).__name__.startswith("int") else number
    return value


def summary_lines(patients) -> List[str]:
    """One line per patient, series and time point: counts, SSTR-TV / TL-SSTR or the PERCIST category."""
    lines = []
    for r in patients.to_dict("records"):
        day = "" if not math.isfinite(r["days_from_baseline"]) else " (day %g)" % r["days_from_baseline"]
        head = (f"{r['patient_id']} {r['tracer']} {r['modality']} {r['reader']} {r['time_point']}{day}: "
                f"{r['n_lesions']} lesion{'' if r['n_lesions'] == 1 else 's'}, {r['n_new']} new, "
                f"{r['n_disappeared']} disappeared")
        if isinstance(r.get("sstr_tv_ml"), float) and math.isfinite(r["sstr_tv_ml"]):
            head += f"; SSTR-TV {r['sstr_tv_ml']:.2f} mL, TL-SSTR {r['tl_sstr']:.1f}"
            if isinstance(r.get("sstr_tv_change_pct"), float) and math.isfinite(r["sstr_tv_change_pct"]):
                head += f" ({r['sstr_tv_change_pct']:+.0f} % SSTR-TV)"
        if isinstance(r.get("percist"), str) and r["percist"] and r["percist"] != "baseline":
            head += f"; PERCIST {r['percist']} ({r['percist_reason']})"
        lines.append(head)
    return lines


def cmd_followup(args: argparse.Namespace) -> int:
    from netpet.clinical.followup import FollowUpRefusal, follow_up, write_table
    from netpet.stats.data import read_table

    check_input(args.table, "The study table")
    check_input(args.correspondence, "The correspondence")
    check_output_folder(args.out)
    table, _ = read_table(args.table)
    correspondence = read_correspondence_csv(args.correspondence)
    try:
        result = follow_up(table, correspondence, f"study table {args.table}", f"correspondence {args.correspondence}")
    except FollowUpRefusal as exc:
        print(f"netpet: refused: {printable(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    os.makedirs(args.out, exist_ok=True)
    written: Dict[str, str] = {}
    for name, frame in zip(OUTPUTS, (result.lesions, result.patients)):
        path = os.path.join(args.out, name)
        write_table(path, frame)
        written[name] = path
    counts = {"tracks": int(result.lesions[["patient_id", "modality", "tracer", "reader", "track_id"]]
                            .drop_duplicates().shape[0]) if len(result.lesions) else 0,
              "patients": int(result.patients["patient_id"].nunique()) if len(result.patients) else 0,
              "time_points": int(len(result.patients)),
              "new": int(result.patients["n_new"].sum()) if len(result.patients) else 0,
              "disappeared": int(result.patients["n_disappeared"].sum()) if len(result.patients) else 0}
    if args.json:
        payload = {"outputs": written, "counts": counts, "warnings": result.warnings,
                   "patients": [{k: _plain(v) for k, v in r.items()} for r in result.patients.to_dict("records")]}
        json.dump(payload, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for line in summary_lines(result.patients):
            print(line)
        print(f"{counts['tracks']} lesion tracks of {counts['patients']} patients over {counts['time_points']} "
              f"patient time points; written {', '.join(written.values())}")
    for warning in result.warnings:
        print(f"note: {printable(warning)}", file=sys.stderr)
    return EXIT_OK
