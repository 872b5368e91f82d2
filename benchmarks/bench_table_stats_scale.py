"""The study table and the statistics as the study grows: is the cost per lesion flat from 1,000 to 100,000?

    python benchmarks/bench_table_stats_scale.py [--sizes 1000,10000,100000] [--bootstrap 0] [--steps all]
                                                 [--profile STEP]

A synthetic study is made by code for each size N: N lesion rows in the study table (one row per
finding, every column NETPET writes, values drawn from netpet.schema's vocabularies: READER_CALLS,
CONFIDENCE_SCALE, ANATOMIC_CORRELATES, SSTR_RADS_CATEGORIES, REGION_SUGGESTIONS, session ids by
derive_session_id, segmentation files by segmentation_file_name) and its reference standard. Each
patient has a PET/CT and a PET/MR DOTATATE session and a PET/CT FDG session, read in five groups
(PET/CT DOTATATE R1 and R2, PET/MR DOTATATE R1, PET/CT FDG R1 and R2): two modalities, two tracers,
two readers. About 80 % of a patient's 1-9 reference lesions are malignant;
lesion-free patients have a patient row (truth 0) and a session read row (empty lesion_id) per
group; about 85 % of lesions are found per group; the calls are positive, negative or equivocal,
about 3 % of findings are not separable (no volume values) and 2 % retracted; the reference standard
names indications (NET staging, NET work-up, follow-up, TIO localisation with one culprit) and
holds region rows.

Steps timed at each size (a step's "rows" is N; the reference standard has about N / 4.3 lesions):

* ``upsert-all``: every row into an empty table (one upsert call), CSV and SQLite;
* ``upsert-session``: one session's rows (one patient, one group) into the full table;
* ``record``: one reader's call recorded as ``netpet record`` does (read the table, find the finding,
  ``netpet.reading.findings.record_reading``): O(N) for both backends, as the whole table is read to
  find the finding; a CSV write also rewrites the whole table (atomic rename), so it is O(N) by
  design: it is compared with the plain baseline of pandas reading and writing the same CSV (no
  lock, no fsync, not atomic, no audit trail);
* ``record-write``: ``record_reading`` alone (the finding's row already at hand): the write of one cell;
* ``read``: ``StudyTable.read`` of the whole table;
* ``read-reference``: ``read_reference`` of a reference standard of N lesions (its own file);
* ``load``: ``load_study`` (both files read, checked and joined; CSV table);
* ``analyse``: ``analyse`` with ``--bootstrap`` replicates (default 0: off, so that the step measures
  the analysis's own work; the cluster bootstrap is a matrix product of replicates x patients,
  linear in patients);
* ``outputs``: ``write_outputs`` without figures, and ``outputs+fig`` with figures.

Printed: seconds per step and size, seconds per 1,000 rows, and the ratio of the per-row cost at the
largest size to the smallest (target: at most 1.3, flat; the single-row CSV writes ``upsert-session``
and ``record`` are O(N) by design and compared with the pandas baseline instead). Wall-clock times
on a shared machine vary by 10-20 %; fsync waits vary with the disk's load.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import pstats
import sys
import tempfile
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from netpet import schema  # noqa: E402
from netpet.quant.table import COLUMNS, StudyTable  # noqa: E402

GROUPS = (("PET/CT", "dotatate", "R1"), ("PET/CT", "dotatate", "R2"), ("PET/MR", "dotatate", "R1"),
          ("PET/CT", "fdg", "R1"), ("PET/CT", "fdg", "R2"))
from benchmarks.bench_table import REGIONS, make_reference  # noqa: E402 - the reference standard bench_table times
INDICATIONS = ("NET staging", "NET work-up", "follow-up", "TIO localisation")
STEPS = ("upsert-all", "upsert-session", "record", "read", "read-reference", "load", "analyse", "outputs",
         "outputs+fig")
#: steps whose cost grows with the table by design (one CSV write rewrites the file)
SINGLE_WRITES = ("upsert-session", "record", "record-write")


def _session_id(patient: str, modality: str, tracer: str) -> str:
    return schema.derive_session_id(f"1.2.826.0.1.3680043.8.498.{patient}.{modality}.{tracer}", tracer, modality)


def make_study(folder: str, rows_wanted: int, seed: int = 7) -> Tuple[List[Dict[str, str]], str, int]:
    """(table rows, reference standard path, patients) of a study of about ``rows_wanted`` table rows."""
    rng = np.random.default_rng(seed)
    rows: List[Dict[str, str]] = []
    reference: List[List[str]] = []
    patient_number = 0
    updated = "2026-05-09T12:00:00+00:00"
    while len(rows) < rows_wanted:
        patient = f"P{patient_number:06d}"
        patient_number += 1
        indication = INDICATIONS[int(rng.choice(4, p=[0.6, 0.2, 0.15, 0.05]))]
        count = 0 if rng.random() < 0.08 else int(rng.integers(1, 10))
        truths = (rng.random(count) < 0.8).astype(int)
        if indication == "TIO localisation":
            count = max(count, 1)
            truths = np.concatenate([[1], truths[1:count]]) if count else np.array([1])
        regions = [REGIONS[int(r)] for r in rng.integers(0, len(REGIONS), count)]
        for i in range(count):
            culprit = "1" if indication == "TIO localisation" and i == 0 else "0"
            reference.append([patient, f"L{i + 1:02d}", regions[i], str(int(truths[i])),
                              "histopathology" if i == 0 else "follow-up", indication, culprit])
        if count == 0:
            reference.append([patient, "", "", "0", "follow-up", indication, ""])
        elif patient_number % 11 == 0:  # a region proven free of disease
            free = [r for r in REGIONS if r not in regions]
            if free:
                reference.append([patient, "", free[0], "0", "follow-up", indication, ""])
        detectability = rng.normal(1.6, 1.0)
        uptake = np.exp(rng.normal(1.8, 0.5, count) + 0.7 * truths)
        for modality, tracer, reader in GROUPS:
            session = _session_id(patient, modality, tracer)
            found = [i for i in range(count) if rng.random() < 0.85]
            base = {"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer,
                    "reader": reader, "suv_type": "bw", "series_uid": f"1.2.826.0.1.3680043.8.498.{patient_number}."
                    f"{GROUPS.index((modality, tracer, reader))}", "netpet_version": "0.1.0", "updated": updated,
                    "time_point": "baseline", "days_from_baseline": "0", "suv_units": "g/ml",
                    "suv_decay_correction": "START", "suv_reference_time": "2026-05-09T09:12:00",
                    "suv_reference_rule": "series time", "suv_injection_time": "2026-05-09T08:10:00",
                    "suv_dose_mbq": f"{rng.normal(150, 15):.1f}", "suv_weight_kg": f"{rng.normal(75, 12):.1f}",
                    "suv_factor": f"{rng.normal(5e-4, 5e-5):.6g}",
                    "liver_suv_mean": f"{rng.normal(6.5, 0.8):.3f}", "liver_suv_sd": f"{rng.normal(0.9, 0.1):.3f}",
                    "liver_suv_max": f"{rng.normal(9.0, 1.0):.3f}", "spleen_suv_mean": f"{rng.normal(18, 3):.3f}",
                    "liver_center_r": "-80.0", "liver_center_a": "20.5", "liver_center_s": "-110.0",
                    "segmentation_file": "segmentations/" + schema.segmentation_file_name(patient, session, reader),
                    "finding_status": schema.ACTIVE}
            if not found:
                rows.append({**base, "lesion_id": "", "region": "", "lesion_type": "", "call": ""})
                continue
            for i in found:
                score = float(uptake[i] * np.exp(rng.normal(0, 0.15)) * (0.85 if modality == "PET/MR" else 1.0))
                ratio = score / 6.5
                call = "positive" if ratio > 1.15 else ("equivocal" if ratio > 0.9 else "negative")
                separable = rng.random() > 0.03
                volume = float(np.exp(rng.normal(1.0, 0.8))) if separable else None
                reader_call = schema.READER_CALLS[int(rng.choice(3, p=[0.6, 0.1, 0.3]) if truths[i]
                                                      else rng.choice(3, p=[0.15, 0.15, 0.7]))]
                retracted = rng.random() < 0.02
                row = {**base, "lesion_id": f"L{i + 1:02d}", "region": regions[i],
                       "lesion_type": schema.LESION_TYPE_SUGGESTIONS[int(rng.integers(0, 5))],
                       "suv_max": f"{score:.3f}", "suv_peak": f"{score * 0.8:.3f}",
                       "suv_mean": f"{score * 0.6:.3f}" if separable else "",
                       "mtv_ml": f"{volume:.3f}" if separable else "",
                       "tla": f"{volume * score * 0.6:.3f}" if separable else "",
                       "tb_ratio": f"{score / 1.2:.3f}", "tl_ratio": f"{ratio:.4f}",
                       "krenning": str(4 if ratio > 2.5 else 3 if ratio > 1.15 else 2 if ratio > 0.9 else 1),
                       "call": call, "centroid_r": f"{rng.normal(0, 80):.1f}", "centroid_a": f"{rng.normal(0, 60):.1f}",
                       "centroid_s": f"{rng.normal(-300, 200):.1f}", "suv_min": f"{score * 0.3:.3f}",
                       "suv_sd": f"{score * 0.1:.3f}", "voxels": str(int(volume * 60)) if separable else "",
                       "longest_diameter_mm": f"{(volume * 1000) ** (1 / 3) * 1.3:.1f}" if separable else "",
                       "threshold_suv": f"{score * 0.41:.3f}", "method": schema.DEFAULT_SEGMENTATION_METHOD,
                       "background_suv_mean": "1.1", "background_suv_sd": "0.3",
                       "seed_r": "1.0", "seed_a": "2.0", "seed_s": "-300.0", "suv_peak_center_r": "1.5",
                       "suv_peak_center_a": "2.5", "suv_peak_center_s": "-301.0", "suv_warnings": "",
                       "reader_call": reader_call, "confidence": str(int(rng.integers(1, 6))),
                       "anatomic_correlate": schema.ANATOMIC_CORRELATES[int(rng.integers(0, 3))],
                       "sstr_rads": schema.SSTR_RADS_CATEGORIES[int(rng.integers(0, 10))],
                       "segmentation_status": "segmented" if separable else "not separable",
                       "flags": "" if separable else "not-separable",
                       "warnings": "" if separable else "not separable from its surroundings"}
                if retracted:
                    row.update(finding_status=schema.RETRACTED, retraction_reason="physiological uptake on review")
                rows.append(row)
    for row in rows:  # every column NETPET writes, present in every row (empty where it has no value)
        for column in COLUMNS:
            row.setdefault(column, "")
    path = os.path.join(folder, "reference.csv")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "lesion_id", "region", "truth", "standard", "indication", "culprit"])
        writer.writerows(reference)
    return rows, path, patient_number


class Timer:
    """Times steps (wall clock and the process's processor time) and, with ``profile`` naming a step, prints that
    step's cProfile. Returns ((wall s, cpu s), the step's result)."""

    def __init__(self, profile: str = "", top: int = 25) -> None:
        self.profile, self.top = profile, top

    def __call__(self, step: str, function, size: int):
        profiler = cProfile.Profile() if step == self.profile else None
        start, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        result = function()
        if profiler is not None:
            profiler.disable()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        if profiler is not None:
            print(f"--- cProfile of {step} at {size} rows ({seconds:.2f} s) ---")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(self.top)
        return (seconds, cpu), result


def run_size(folder: str, size: int, bootstrap: int, steps, timer: Timer) -> Dict[str, float]:
    from netpet.reading.findings import find_finding, record_reading, reader_values
    from netpet.stats import StatsOptions, analyse, load_study, write_outputs
    from netpet.stats.data import read_reference

    here = os.path.join(folder, str(size))
    os.makedirs(here)
    rows, reference, patients = make_study(here, size)
    out: Dict[str, float] = {"rows": len(rows), "patients": patients}
    csv_path = os.path.join(here, "study.csv")
    table_steps = {"upsert-all", "upsert-session", "record", "read"} & set(steps)
    for suffix in (".csv", ".sqlite") if table_steps else (".csv",):  # (the statistics read the CSV table)
        path = os.path.join(here, "study" + suffix)
        name = suffix[1:]
        # always: the later steps need the full table
        out[f"upsert-all {name}"] = timer("upsert-all", lambda: StudyTable(path).upsert(rows), size)[0]
        table = StudyTable(path)
        if "upsert-session" in steps:
            session = [dict(r, suv_max="9.999") for r in rows[len(rows) // 2:len(rows) // 2 + 40]
                       if (r["patient_id"], r["session_id"], r["reader"]) ==
                       (rows[len(rows) // 2]["patient_id"], rows[len(rows) // 2]["session_id"],
                        rows[len(rows) // 2]["reader"])]
            out[f"upsert-session {name}"] = timer("upsert-session", lambda: table.upsert(session), size)[0]
        if "record" in steps:
            target = next(r for r in rows[len(rows) // 3:] if r["lesion_id"] and r["finding_status"] == schema.ACTIVE)

            def record() -> None:
                row = find_finding(table.read(), target["patient_id"], target["session_id"], target["reader"],
                                   target["lesion_id"], target["modality"], target["tracer"])
                call = "equivocal" if row["reader_call"] != "equivocal" else "negative"
                written = record_reading(table, row, reader_values(call=call), by="bench")
                assert written == 1

            out[f"record {name}"] = timer("record", record, size)[0]
            # the write alone (record_reading of a finding already found), another finding of the middle
            other = next(r for r in rows[len(rows) // 2:] if r["lesion_id"] and r["finding_status"] == schema.ACTIVE)
            values = reader_values(call="equivocal" if other["reader_call"] != "equivocal" else "negative")
            out[f"record-write {name}"] = timer("record-write", lambda: record_reading(table, other, values,
                                                                                        by="bench"), size)[0]
        if "read" in steps:
            out[f"read {name}"] = timer("read", table.read, size)[0]
    if "record" in steps:  # the plain baseline of a one-row CSV write: pandas reads and writes the same file
        plain = os.path.join(here, "plain.csv")
        with open(csv_path, "rb") as source, open(plain, "wb") as copy:
            copy.write(source.read())

        def pandas_write() -> None:
            frame = pd.read_csv(plain, dtype=str, keep_default_na=False)
            frame.loc[len(frame) // 3, "reader_call"] = "positive"
            frame.to_csv(plain, index=False)

        out["pandas rewrite (baseline)"] = timer("pandas", pandas_write, size)[0]
    if "read-reference" in steps:
        path = os.path.join(here, "reference-n.csv")
        make_reference(path, size, indication="NET staging")
        out["read-reference"] = timer("read-reference", lambda: read_reference(path), size)[0]
    if {"load", "analyse", "outputs", "outputs+fig"} & set(steps):
        seconds, study = timer("load", lambda: load_study(csv_path, reference), size)
        out["load"] = seconds
        if {"analyse", "outputs", "outputs+fig"} & set(steps):
            seconds, analysis = timer("analyse", lambda: analyse(study, StatsOptions(bootstrap=bootstrap)), size)
            out["analyse"] = seconds
            if "outputs" in steps:
                out["outputs"] = timer("outputs", lambda: write_outputs(analysis, os.path.join(here, "out"),
                                                                         figures_too=False), size)[0]
            if "outputs+fig" in steps:
                out["outputs+fig"] = timer("outputs+fig", lambda: write_outputs(analysis, os.path.join(here, "outfig")),
                                           size)[0]
        out["reference lesions"] = len(study.reference.lesions)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--bootstrap", type=int, default=0, help="cluster-bootstrap replicates in analyse (0: off)")
    parser.add_argument("--steps", default="all", help=f"comma-separated steps of {', '.join(STEPS)} (default all)")
    parser.add_argument("--profile", default="", help="print the cProfile of this step at every size")
    args = parser.parse_args()
    steps = STEPS if args.steps == "all" else tuple(s.strip() for s in args.steps.split(","))
    sizes = [int(v) for v in args.sizes.split(",")]
    timer = Timer(args.profile)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            results[size] = run_size(folder, size, args.bootstrap, steps, timer)
            print(f"{size}: {results[size]}", flush=True)
    names = [k for k in results[sizes[0]] if k not in ("rows", "patients", "reference lesions")]
    studies = ", ".join(f"{results[s]['rows']} rows / {results[s]['patients']} patients / "
                        f"{results[s].get('reference lesions', '?')} reference lesions" for s in sizes)
    print(f"\nstudy: {studies}; analyse with bootstrap {args.bootstrap}")
    print("wall-clock seconds; per 1,000 rows in processor seconds of the process (steadier than the wall clock on a "
          "shared machine); ratio: per-row processor time at the largest size / at the smallest; last: at the "
          "largest / at the size before it")
    print(f"{'step':26}" + "".join(f"{'s @' + str(s):>11}" for s in sizes)
          + "".join(f"{'cpu/1k @' + str(s):>15}" for s in sizes) + f"{'ratio':>7}{'last':>6}")
    for name in names:
        wall = [results[s][name][0] for s in sizes]
        per = [1000 * results[s][name][1] / results[s]["rows"] for s in sizes]
        note = ""
        if name.startswith("record "):
            note = "  O(N): netpet record reads the whole table to find the finding" + (
                "; a CSV write rewrites it" if name.endswith("csv") else "")
        elif name.split()[0] in SINGLE_WRITES and name.endswith("csv"):
            note = "  O(N) by design: a CSV write rewrites the table"
        print(f"{name:26}" + "".join(f"{t:11.3f}" for t in wall) + "".join(f"{p:15.4f}" for p in per)
              + f"{per[-1] / per[0]:7.2f}{per[-1] / per[-2] if len(per) > 1 else 1.0:6.2f}{note}")
    if "pandas rewrite (baseline)" in names:
        for s in sizes:
            ours, plain = results[s]["record csv"], results[s]["pandas rewrite (baseline)"]
            print(f"record (CSV) / pandas rewrite of the same CSV at {s} rows: wall {ours[0] / plain[0]:.2f}, "
                  f"cpu {ours[1] / plain[1]:.2f}")

if __name__ == "__main__":
    main()
