"""``netpet record``, ``retract``, ``restore``, ``audit``, ``reading-list``, ``adjudicate``: reader studies on the
study table (issue 14; the core is :mod:`netpet.reading` and :class:`netpet.quant.table.StudyTable`)."""

from __future__ import annotations

import argparse
import json
import sys

from netpet.cli.common import (EXIT_OK, EXIT_PARTIAL, JOBS, UsageError, check_input, check_output, check_output_folder,
                               count)


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", required=True, metavar="T", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--patient", required=True, metavar="P", help="patient_id of the finding")
    p.add_argument("--session", required=True, metavar="S", help="session_id of the finding")
    p.add_argument("--reader", required=True, metavar="R", help="the reader whose finding it is")
    p.add_argument("--lesion", required=True, metavar="L", help="lesion_id of the finding")
    p.add_argument("--modality", metavar="M", help="modality (PET/CT, PET/MR...), where the session has several")
    p.add_argument("--tracer", metavar="TR", help="tracer (dotatate, fdg...), where the session has several")
    p.add_argument("--by", metavar="WHO", help="who makes the change, for the audit trail (default: the reader)")


def add_parsers(sub) -> None:
    p = sub.add_parser("record", help="record a reader's call, confidence, anatomic correlate or SSTR-RADS of a finding",
                       description="Write the reader's own reading of one finding of the study table (beside the SUV "
                                   "rule's call); every change goes into the table's audit trail.")
    _key_options(p)
    p.add_argument("--call", metavar="CALL", help="the reader's visual call: positive, equivocal or negative")
    p.add_argument("--confidence", metavar="1-5", help="confidence of malignancy: 1 definitely benign, 2 probably "
                                                       "benign, 3 indeterminate, 4 probably malignant, 5 definitely "
                                                       "malignant")
    p.add_argument("--correlate", metavar="C", help="anatomic correlate on CT/MR: none, lesion or benign")
    p.add_argument("--sstr-rads", metavar="CAT", help="SSTR-RADS 1.0 category: 1A 1B 2A 2B 3A 3B 3C 3D 4 5")
    p.add_argument("--region", metavar="WORDS", help="the finding's region, in the reader's words ('' clears it)")
    p.add_argument("--lesion-type", metavar="WORDS", help="the finding's lesion type, in the reader's words")
    p.add_argument("--why", metavar="TEXT", help="why (kept in the audit trail)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("retract", help="retract a finding (kept in the table, counted by no analysis)",
                       description="Withdraw a finding: its row stays, marked retracted with the reason, and every "
                                   "analysis leaves it out (and says how many it left out).")
    _key_options(p)
    p.add_argument("--why", required=True, metavar="TEXT", help="the reason (required)")
    p.set_defaults(func=cmd_retract)

    p = sub.add_parser("restore", help="undo the retraction of a finding")
    _key_options(p)
    p.add_argument("--why", metavar="TEXT", help="why (kept in the audit trail)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("audit", help="print the study table's audit trail (who changed what, when and why)")
    p.add_argument("--table", required=True, metavar="T", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--patient", metavar="P", help="only this patient's entries")
    p.add_argument("--session", metavar="S", help="only this session's entries")
    p.add_argument("--reader", metavar="R", help="only the findings of this reader")
    p.add_argument("--lesion", metavar="L", help="only this lesion id")
    p.add_argument("--action", choices=("insert", "update", "retract", "restore", "adjudicate"),
                   help="only this action")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")
    p.set_defaults(func=cmd_audit)

    from netpet.schema import DEFAULT_MIN_GAP, DEFAULT_WASHOUT_DAYS

    p = sub.add_parser("reading-list", help="blinded reading lists: per reader the sessions in a seeded random order",
                       description="Per reader a CSV of the sessions to read, in rounds (one session of a patient per "
                                   "round, read after a washout), in a random order reproducible from --seed, with "
                                   "nothing of any result.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--table", metavar="T", help="the sessions of this study table")
    source.add_argument("--manifest", metavar="CSV", help="the sessions of this manifest (patient_id and session_id, "
                                                          "series_uid or series per row; netpet quantify's will do)")
    source.add_argument("--index", metavar="DIR", help="the PET series of this DICOM folder, one session each (ids "
                                                       "derived as netpet quantify derives them)")
    p.add_argument("--readers", required=True, metavar="R1,R2", help="the readers, comma-separated")
    p.add_argument("--seed", required=True, type=count(0, "a seed"), help="the random seed (write it in the protocol)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for reading-list-<reader>.csv and "
                                                               "reading-lists.json")
    p.add_argument("--gap", type=count(1, "a number of sessions"), default=DEFAULT_MIN_GAP,
                   help="least number of other sessions between two sessions of a patient, at least 1 (default "
                        f"{DEFAULT_MIN_GAP}; kept wherever the number of patients allows, the shortfalls reported)")
    p.add_argument("--washout-days", type=count(0, "a number of days"), default=DEFAULT_WASHOUT_DAYS,
                   help=f"days between the rounds (default {DEFAULT_WASHOUT_DAYS})")
    p.add_argument("--jobs", type=JOBS, default=None, help="worker processes indexing --index (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=cmd_reading_list)

    p = sub.add_parser("adjudicate", help="list the findings where readers disagree; apply the consensus decided",
                       description="With --readers and --out: write the findings where the readers' call or "
                                   "reader_call differ (or that only some reported) for an adjudicator to fill in. "
                                   "With --apply and --by: write the consensus rows (reader 'consensus') into the "
                                   "table, the readers' values in the audit trail.")
    p.add_argument("--table", required=True, metavar="T", help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--readers", metavar="R1,R2", help="the readers to compare, comma-separated")
    p.add_argument("--correspondence", metavar="C", help="the correspondence table of netpet match: findings "
                                                         "correspond through their reference lesion id")
    p.add_argument("--out", metavar="CSV", help="the adjudication list to write")
    p.add_argument("--all", action="store_true", help="list every finding (agreed ones with the consensus filled in)")
    p.add_argument("--apply", metavar="CSV", help="a filled-in adjudication list to write into the table")
    p.add_argument("--by", metavar="NAME", help="the adjudicator (with --apply)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_adjudicate)


def _table(path: str, write: bool = True):
    from netpet.quant.table import StudyTable

    check_input(path, "The study table")
    table = StudyTable(path)
    if write:
        table.check()
    else:
        table.columns()  # a file that is not a study table is refused here too
    return table


def _finding(args: argparse.Namespace):
    from netpet.reading.findings import find_finding

    table = _table(args.table)
    row = find_finding(table.read(), args.patient, args.session, args.reader, args.lesion, args.modality, args.tracer,
                       where=f"The study table {args.table}")
    return table, row


def _done(written: int, what: str, row) -> int:
    from netpet.quant.table import describe_key

    if written:
        print(f"{what} the finding {describe_key(row)} ({written} change{'s' if written != 1 else ''} in the audit "
              "trail).")
    else:
        print(f"The finding {describe_key(row)} already held these values; nothing was written.")
    return EXIT_OK


def cmd_record(args: argparse.Namespace) -> int:
    from netpet import schema
    from netpet.reading.findings import label_values, reader_values, record_reading

    try:
        values = reader_values(args.call, args.confidence, args.correlate, args.sstr_rads, "--")
    except schema.SchemaError as exc:
        raise UsageError(str(exc).replace("--reader_call", "--call").replace("--anatomic_correlate", "--correlate")
                         .replace("--sstr_rads", "--sstr-rads")) from None
    values.update(label_values(args.region, args.lesion_type, "--region/--lesion-type"))
    if not values:
        raise UsageError("give at least one of --call, --confidence, --correlate, --sstr-rads, --region, --lesion-type")
    table, row = _finding(args)
    return _done(record_reading(table, row, values, by=args.by, why=args.why), "Recorded for", row)


def cmd_retract(args: argparse.Namespace) -> int:
    from netpet.reading.findings import retract_finding

    if not args.why.strip():
        raise UsageError("--why is empty; say why the finding is retracted")
    table, row = _finding(args)
    return _done(retract_finding(table, row, args.why, by=args.by), "Retracted", row)


def cmd_restore(args: argparse.Namespace) -> int:
    from netpet.reading.findings import restore_finding

    table, row = _finding(args)
    written = restore_finding(table, row, why=args.why, by=args.by)
    if not written:
        from netpet.quant.table import describe_key

        print(f"The finding {describe_key(row)} is not retracted; nothing was written.")
        return EXIT_OK
    return _done(written, "Restored", row)


def cmd_audit(args: argparse.Namespace) -> int:
    table = _table(args.table, write=False)
    where = {k: v for k, v in (("patient_id", args.patient), ("session_id", args.session), ("reader", args.reader),
                                ("lesion_id", args.lesion), ("action", args.action)) if v is not None}
    entries = table.audit(**where)
    if args.json:
        json.dump(entries, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not entries:
        print("No audit entries" + (" match" if where else "") + ".")
        return EXIT_OK
    for e in entries:
        lesion = e["lesion_id"] or "(session)"
        change = f"{e['column']}: {e['old'] or '(empty)'} -> {e['new'] or '(empty)'}" if e["column"] else "(row)"
        print(f"{e['when']}  {e['who']}  {e['action']}  {e['patient_id']}/{e['session_id']}/{e['modality']}/"
              f"{e['tracer']}/{e['reader']}/{lesion}  {change}" + (f"  why: {e['why']}" if e["why"] else ""))
    return EXIT_OK


def _readers(text: str):
    readers = [r.strip() for r in (text or "").split(",") if r.strip()]
    if not readers:
        raise UsageError("--readers is empty; give the reader ids, comma-separated (R1,R2)")
    return readers


def cmd_reading_list(args: argparse.Namespace) -> int:
    from netpet.reading.lists import sessions_from_manifest, sessions_from_rows, write_reading_lists

    readers = _readers(args.readers)
    check_output_folder(args.out)
    if args.table:
        sessions, source = sessions_from_rows(_table(args.table, write=False).read()), args.table
    elif args.index:
        from netpet.dicom.index import index_tree
        from netpet.reading.lists import sessions_from_index

        check_input(args.index, "The DICOM folder", folder=True)
        sessions, source = sessions_from_index(index_tree(args.index, jobs=args.jobs)), args.index
    else:
        check_input(args.manifest, "The manifest")
        sessions, source = sessions_from_manifest(args.manifest), args.manifest
    record = write_reading_lists(sessions, readers, args.seed, args.out, args.gap, args.washout_days, source=source)
    if args.json:
        json.dump(record, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for item in record["readers"]:
        gap = "no patient has two sessions" if item["least_gap"] is None else f"least gap {item['least_gap']}"
        short = f", the gap of {args.gap} not kept {item['gap_shortfalls']} time(s) (too few patients)" \
            if item["gap_shortfalls"] else ""
        print(f"{item['reader']}: {item['sessions']} sessions in {item['rounds']} round(s), {gap}{short} -> "
              f"{item['file']}")
    return EXIT_OK


def cmd_adjudicate(args: argparse.Namespace) -> int:
    from netpet.reading.adjudication import apply_adjudication, disagreements, write_adjudication_list

    if args.apply:
        if args.out or args.readers or args.correspondence or args.all:
            raise UsageError("--apply writes a filled-in list; --readers, --correspondence, --out and --all make one "
                             "(run them separately)")
        if not args.by or not args.by.strip():
            raise UsageError("--apply needs --by NAME: the adjudicator, recorded in the audit trail")
        table = _table(args.table)
        check_input(args.apply, "The adjudication list")
        result = apply_adjudication(table, args.apply, args.by)
        if args.json:
            json.dump(result, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(f"{result['decided']} consensus finding(s) written ({result['inserted']} new, {result['updated']} "
                  f"updated) by {args.by.strip()}.")
            for item in result["undecided"]:
                print(f"not decided (no consensus value): {item}")
        return EXIT_PARTIAL if result["undecided"] else EXIT_OK
    if not args.readers or not args.out:
        raise UsageError("give --readers R1,R2 and --out adjudication.csv to list the disagreements, or --apply "
                         "adjudication.csv --by NAME to write the consensus")
    if args.by:
        raise UsageError("--by goes with --apply (the adjudicator who decided)")
    readers = _readers(args.readers)
    check_output(args.out, "--out", (".csv",))
    table = _table(args.table, write=False)
    if args.correspondence:
        check_input(args.correspondence, "The correspondence table")
    items = disagreements(table.read(), readers, args.correspondence, include_agreed=args.all)
    write_adjudication_list(items, readers, args.out)
    disagreeing = sum(1 for item in items if item["disagreement"])
    if args.json:
        json.dump({"findings": len(items), "disagreements": disagreeing, "out": args.out}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{disagreeing} finding(s) where {', '.join(readers)} disagree" +
              (f" ({len(items)} listed)" if args.all else "") + f" -> {args.out}")
    return EXIT_OK
