"""Cost of the study table and of the reference standard as they grow.

    python benchmarks/bench_table.py [--rows 1000,10000,50000] [--lesions 10000,40000]

Study table: a table of N rows with every column NETPET writes (COLUMNS, realistic values) is
made once per backend; then timed: one single-row upsert of a new lesion (median of several), one
single-row update of an existing lesion, and reading the whole table. CSV rewrites the file on every
write (its cost grows with the table); SQLite (``.sqlite``/``.db``, WAL, ``INSERT ... ON CONFLICT``)
does not. Baseline: the plain pandas way to add one row to a CSV table (``read_csv`` + ``concat`` +
``to_csv`` of the same file, no lock, no fsync, not atomic); the ratio NETPET / baseline is printed.

Wall-clock times include the wait for ``fsync`` (both backends flush every write to disk), which
varies with what else uses the disk; the processor time of the insert is printed beside it.

Reference standard: a reference CSV of N lesions (about 5 per patient, 6 regions, some region and
patient rows) is read and checked with ``netpet.stats.data.read_reference``. Baseline: plain
``pandas.read_csv`` of the same file (reading only, no checks).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from netpet.quant.table import COLUMNS, StudyTable  # noqa: E402
from netpet.stats.data import read_reference  # noqa: E402

REGIONS = ("liver", "lymph nodes", "bone", "pancreas", "small bowel", "lung")


def table_row(i: int, rng: np.random.Generator) -> dict:
    row = {c: f"{rng.normal(5, 2):.4f}" for c in COLUMNS}
    row.update({"patient_id": f"P{i // 10:05d}", "session_id": f"S{i // 10:05d}", "modality": "PET/CT",
                "tracer": "dotatate", "reader": "R1", "lesion_id": f"L{i % 10:02d}", "region": REGIONS[i % 6],
                "call": "positive", "method": "adaptive", "suv_type": "bw", "suv_units": "g/ml",
                "segmentation_file": f"segmentations/P{i // 10:05d}_S{i // 10:05d}_R1.seg.nrrd",
                "series_uid": f"1.2.826.0.1.3680043.8.498.{i}", "suv_warnings": "", "netpet_version": "0.1.0",
                "updated": "2026-05-09T12:00:00", "centroid_r": "-55.2", "suv_decay_correction": "START"})
    return row


def median_time(function, repeats: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        function()
        times.append(clock() - start)
    return statistics.median(times)


def bench_table(folder: str, sizes) -> None:
    rng = np.random.default_rng(5)
    print("study table: one single-row write (median), and a whole read")
    print("(wall-clock medians; 'cpu' is the insert's processor time, without the wait for fsync, which varies "
          "with the disk's load)")
    print(f"{'rows':>7} {'backend':8} {'insert 1':>10} {'cpu':>9} {'update 1':>10} {'read all':>10} "
          f"{'pandas 1 row':>13} {'ratio':>7}")
    for size in sizes:
        rows = [table_row(i, rng) for i in range(size)]
        for suffix in (".csv", ".sqlite"):
            path = os.path.join(folder, f"table{size}{suffix}")
            table = StudyTable(path)
            table.upsert(rows)
            counter = iter(range(10 ** 9))
            repeats = 5 if suffix == ".csv" and size >= 10000 else 15

            def insert() -> None:
                new = table_row(size + next(counter) * 10 + 10 ** 7, rng)
                table.upsert([new])

            def update() -> None:
                table.upsert([{**rows[size // 2], "suv_max": f"{rng.normal(5, 2):.4f}"}])

            inserted = median_time(insert, repeats)
            cpu = median_time(insert, repeats, time.process_time)
            updated = median_time(update, repeats)
            read = median_time(table.read, 3)
            if suffix == ".csv":
                plain_path = os.path.join(folder, f"plain{size}.csv")
                pd.DataFrame(rows).to_csv(plain_path, index=False)

                def plain() -> None:
                    frame = pd.read_csv(plain_path, dtype=str, keep_default_na=False)
                    frame = pd.concat([frame, pd.DataFrame([table_row(size + 10 ** 8, rng)])], ignore_index=True)
                    frame.to_csv(plain_path, index=False)

                baseline = median_time(plain, 3)
            print(f"{size:7d} {suffix[1:]:8} {inserted * 1000:8.1f} ms {cpu * 1000:6.1f} ms {updated * 1000:8.1f} ms "
                  f"{read * 1000:8.1f} ms "
                  f"{baseline * 1000:10.1f} ms {inserted / baseline:7.3f}")


def make_reference(path: str, lesions: int, seed: int = 3, indication: str = "NET") -> None:
    """A reference standard of ``lesions`` lesion rows (1-9 per patient, region and patient rows between)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "lesion_id", "region", "truth", "standard", "indication"])
        written, patient = 0, 0
        while written < lesions:
            count = min(int(rng.integers(1, 10)), lesions - written)
            name = f"P{patient:06d}"
            for i in range(count):
                writer.writerow([name, f"L{i + 1:02d}", REGIONS[int(rng.integers(6))], int(rng.random() < 0.8),
                                 "follow-up", indication])
            if patient % 7 == 0:
                writer.writerow([name, "", "lung", 1, "follow-up", indication] if patient % 2 else
                                [name, "", "", 1, "histopathology", indication])
            written += count
            patient += 1


def bench_reference(folder: str, sizes) -> None:
    print("reference standard: read and check (read_reference) vs plain pandas.read_csv")
    print(f"{'lesions':>8} {'netpet':>10} {'pandas':>10} {'ratio':>7}")
    for size in sizes:
        path = os.path.join(folder, f"reference{size}.csv")
        make_reference(path, size)
        ours = median_time(lambda: read_reference(path), 3)
        plain = median_time(lambda: pd.read_csv(path, dtype=str, keep_default_na=False), 3)
        print(f"{size:8d} {ours:8.3f} s {plain:8.3f} s {ours / plain:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000,10000,50000")
    parser.add_argument("--lesions", default="10000,40000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.rows:
            bench_table(folder, [int(v) for v in args.rows.split(",")])
        if args.lesions:
            bench_reference(folder, [int(v) for v in args.lesions.split(",")])


if __name__ == "__main__":
    main()
