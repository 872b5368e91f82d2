"""``netpet demo``: the main job end to end on the built-in synthetic study."""

from __future__ import annotations

import argparse

from netpet.cli.common import check_output_folder, count, tqdm_progress

EXIT_OK, EXIT_MISMATCH = 0, 5


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run NETPET end to end on the built-in synthetic study")
    p.add_argument("--out", default="demo-output", help="output folder (default: ./demo-output)")
    p.add_argument("--patients", type=count(1, "a number of patients"), default=5, help="synthetic patients (default 5: NET, TIO and a lesion-free work-up)")
    p.add_argument("--seed", type=count(0, "a seed"), default=1, help="random seed of the study (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from netpet import demo

    check_output_folder(args.out)
    result = demo.run(args.out, args.patients, args.seed, progress=tqdm_progress(True))
    print(result["index"])
    print()
    print("SUV of every PET against the truth (liver: 3 cm sphere SUVmean; lesions: SUVmax in the truth mask)")
    print(f"{'patient':11} {'session':19} {'tracer':14} {'hybrid':6} {'liver':>6} {'truth':>6}  lesions (id measured/true)")
    for s in result["sessions"]:
        lesions = " ".join(f"{les['lesion_id']}:{les['suv_max_measured']:.1f}/{les['suv_max_true']:.1f}"
                           for les in s["lesions"][:6])
        more = f" +{len(s['lesions']) - 6}" if len(s["lesions"]) > 6 else ""
        flag = "" if s["liver_ok"] else "  LIVER MISMATCH"
        print(f"{s['patient_id']:11} {s['session_id']:19} {s['tracer']:14} {s['hybrid']:6} "
              f"{s['liver_suv_measured']:6.2f} {s['liver_suv_true']:6.2f}  {lesions}{more}{flag}")
    q = result["quantification"]
    print()
    print(f"Quantification (a click per truth lesion, netpet quantify): {q['rows']} rows in {q['table']}")
    print("  " + q["strata_text"].replace("\n", "\n  "))
    if q["floods"]:
        print(f"  read over 3 x their true volume: {', '.join(q['floods'])}")
    for problem in q["skipped"]:
        print(f"  skipped (as a reader would see): {problem}")
    print()
    print("SUV conversion of vendor-shaped reference objects (expected background 1.00, hot 4.00, cold 0.20)")
    for o in result["reference_objects"]:
        m = o["measured"]
        print(f"  {o['object']:26} {o['units']:5} bg {m['background_median']:.4f} hot {m['hot_max']:.4f} "
              f"cold {m['cold_min']:.4f}  {'ok' if o['ok'] else 'MISMATCH'}  [{o['reference_time_rule']}]")
    reg = result["registration"]
    print()
    print("Registration of each session to the patient's first one (netpet register), against the known movement")
    for pair in reg["pairs"]:
        if pair["status"] == "refused":
            print(f"  {pair['patient_id']} {pair['moving_session']} -> {pair['fixed_session']}: REFUSED {pair['reason']}")
        elif "lesions" in pair:
            print(f"  {pair['patient_id']} {pair['moving_session']} -> {pair['fixed_session']} on the {pair['basis']}: "
                  f"NMI {pair['nmi']:.3f}, lesion centres {pair['error_mean_mm']:.2f} mm mean, "
                  f"{pair['error_max_mm']:.2f} mm max ({pair['lesions']} lesions)")
    if reg["lesion_centres"]:
        print(f"  all: {reg['lesion_centres']} lesion centres, error {reg['error_mean_mm']:.2f} mm mean, "
              f"{reg['error_max_mm']:.2f} mm max")
    print()
    print("Lesion correspondence (netpet match: the reader's own ids matched to the reference lesions by location)")
    for name, m in result["matching"].items():
        c = m["counts"]
        accuracy = f"{100 * m['accuracy']:.1f} %" if m["accuracy"] is not None else "n/a"
        print(f"  via {name}: {m['correct']}/{m['findings']} findings on their true lesion ({accuracy}); matched "
              f"{c['matched']}, ambiguous {c['ambiguous']}, unmatched {c['unmatched']}, missed {c['missed']}")
        for wrong in m["wrong"]:
            print(f"    not on its true lesion: {wrong}")
    from netpet.cli.stats import summary

    st = result["statistics"]
    print()
    print("Study statistics (netpet stats --correspondence: the study table against the reference standard, "
          "Wilson 95 % CI)")
    print(summary({"accuracy": [{**e, "group_by": {}} for e in st["accuracy"]]}))
    if st["staging_lines"]:
        print()
        print("Staging (AJCC 8th / ENETS N and M from the findings, against the reference standard)")
        for line in st["staging_lines"]:
            print(f"  {line}")
        print(f"  reference staging equal to the study's staging truth for {st['staging_truth_checked']} patient "
              f"time points" + (f"; DIFFERS: {'; '.join(st['staging_truth_disagreements'])}"
                                if st["staging_truth_disagreements"] else ""))
    fu = result["follow_up"]
    if fu.get("available"):
        print()
        print("Follow-up (netpet followup: baseline to FU1 on DOTATATE PET/CT; truth in brackets)")
        for p in fu["patients"]:
            change = p["sstr_tv_change_pct"]
            change = f"{float(change):+.0f} %" if change not in ("", None) and change == change else "n/a"
            days = f"{float(p['days']):.0f}" if p["days"] not in ("", None) else "?"
            print(f"  {p['patient_id']} {p['reader']} day {days} ({p['scenario']}): new {p['new']} [{p['new_true']}], "
                  f"disappeared {p['disappeared']} [{p['disappeared_true']}], SSTR tumour volume {change}")
    reading = result["quantification"].get("reading") or {}
    if reading:
        print()
        print(f"Readers' own reading (netpet record: visual call, confidence 1-5, anatomical correlate of "
              f"{', '.join(result['quantification']['readers'])}): {reading['findings']} findings recorded, "
              f"{reading['audit_entries']} audit-trail entries")
    rs = result.get("reading_standards") or {}
    if rs:
        print()
        print("Reading standards (netpet scores)")
        print(f"  NETPET grade per patient, reader and DOTATATE modality: "
              f"{', '.join(f'{k} {v}' for k, v in rs['grades'].items())}")
        for name, title in (("on_truth", "with the truth's malignancy (measurements and scoring)"),
                            ("as_read", "as the readers read (their confidence decides what is disease)")):
            c = rs[name]
            print(f"  {title}: equal to the expected grade (true uptake) in {c['checked'] - len(c['differ'])} of "
                  f"{c['checked']}; {c['uncertain']} flagged uncertain-avidity (a deciding lesion under partial "
                  f"volume), {c['differ_certain']} differences among the others")
            for line in c["differ"]:
                print(f"    differs: {line}")
        print(f"  FDG+/SSTR- lesions {rs['discordant_lesions']}; SSTR-RADS scan impressions {rs['sstr_rads_scans']}; "
              f"PRRT summaries {rs['prrt_summaries']} ({rs['prrt_meeting_criteria']} meet the imaging criteria, "
              f"a decision aid); files in {rs['folder']}")
    rd = result.get("reader_study") or {}
    if rd:
        print()
        print("Reader study (netpet mrmc: Obuchowski-Rockette with jackknife covariances and Hillis df, the readers' "
              "confidence, DOTATATE PET/CT vs PET/MR)")
        for m in rd["mrmc"].values():
            if "not_analysed" in m:
                print(f"  {m['level']}s as cases: not analysed: {m['not_analysed']}")
                continue
            d = m["design"]
            print(f"  {m['level']}s as cases: {len(d['readers'])} readers, {d['cases']} cases ({d['abnormal']} with "
                  f"and {d['normal']} without malignancy)")
            for t in m["tests"]:
                low = "-" if t["ci_low"] is None else f"{t['ci_low']:.3f}"
                high = "-" if t["ci_high"] is None else f"{t['ci_high']:.3f}"
                print(f"    {t['test']}: AUC {t['auc']:.3f} (95 % CI {low} to {high})")
            for diff in m["differences"]:
                p_text = "n/a" if m["p"] is None else f"{m['p']:.3f}"
                print(f"    {diff['test_a']} - {diff['test_b']}: {diff['estimate']:+.3f}, p = {p_text}")
            for note in m["notes"] + m["warnings"]:
                print(f"    note: {note}")
        print(f"  blinded reading lists: {', '.join(rd['reading_lists'])}")
        print(f"  findings where the readers disagree (for adjudication): {rd['adjudication']['findings']} in "
              f"{rd['adjudication']['file']}")
    sr = result.get("structured_reports") or {}
    if sr:
        print()
        print(f"DICOM SR (TID 1500) with SEG per session and reader of {sr['patient']} (netpet sr): {sr['reports']} in "
              f"{sr['folder']}"
              + "".join(f"\n  error: {e}" for e in sr["errors"]))
    print(f"\n{result['files']} DICOM files in {result['study']}; previews in {result['study']}/preview; "
          f"checks in {args.out}/demo-report.json")
    print(f"Review the study in a web browser: netpet review {args.out} (then open the address it prints); a teaching "
          "case: netpet teach liver-threshold")
    print(f"Study report: {st['report']}")
    return EXIT_OK if result["all_ok"] else EXIT_MISMATCH
