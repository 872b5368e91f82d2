"""Speed of StudyStats on a large study: 10,000 lesions x 4 groups, 2,000 cluster-bootstrap replicates.

    python benchmarks/bench_stats.py [--lesions 10000] [--bootstrap 2000]

A synthetic study (2,000 patients with 1-9 lesions each, 10,000 reference lesions in all; groups
PET/CT DOTATATE R1 and R2, PET/MR DOTATATE R1, PET/CT FDG R1; about 85 % of lesions found per
group, calls driven by a per-patient detectability so lesions cluster) is written as a study
table CSV and a reference standard. Timed: reading and checking both files, the whole analysis
(accuracy at three levels with naive, GEE and cluster-bootstrap intervals, paired comparisons with
the clustered McNemar test and bootstrap differences, ROC with DeLong, agreement, false findings),
and the outputs with figures and the HTML report. Target: the analysis under 10 s.

Baseline: the same cluster bootstrap written the plain way (a loop over replicates that draws
patients with numpy and sums their lesions with pandas), timed on 100 replicates of one group and
level and scaled to the full work; the ratio NETPET / baseline is printed.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from netpet.stats import StatsOptions, analyse, load_study, write_outputs  # noqa: E402

GROUPS = (("PET/CT", "dotatate", "R1"), ("PET/CT", "dotatate", "R2"), ("PET/MR", "dotatate", "R1"),
          ("PET/CT", "fdg", "R1"))
REGIONS = ("liver", "lymph nodes", "bone", "pancreas", "small bowel", "lung")


def make_study(folder: str, lesions: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    patients, counts = [], []
    while sum(counts) < lesions:
        counts.append(int(rng.integers(1, 10)))
        patients.append(f"P{len(patients):05d}")
    counts[-1] -= sum(counts) - lesions
    reference_rows, table_rows = [], []
    for patient, n in zip(patients, counts):
        detectability = rng.normal(1.5, 1.2)
        truths = rng.random(n) < 0.8
        regions = rng.choice(REGIONS, n)
        uptake = np.exp(rng.normal(1.8, 0.5, n) + 0.6 * truths)
        for i in range(n):
            reference_rows.append((patient, f"L{i + 1:02d}", regions[i], int(truths[i]), "follow-up"))
        for modality, tracer, reader in GROUPS:
            table_rows.append((patient, f"{patient}-{modality}-{tracer}", modality, tracer, reader, "", "", "", ""))
            for i in range(n):
                if rng.random() > 1 / (1 + np.exp(-(detectability + 1.0))):
                    continue  # not found by this reader in this session
                score = uptake[i] * np.exp(rng.normal(0, 0.15))
                call = "positive" if rng.random() < 1 / (1 + np.exp(-(detectability + (2.0 if truths[i] else -2.0)))) \
                    else "negative"
                table_rows.append((patient, f"{patient}-{modality}-{tracer}", modality, tracer, reader, f"L{i + 1:02d}",
                                   call, f"{score:.3f}", f"{score / 6.5:.4f}"))
    reference = os.path.join(folder, "reference.csv")
    with open(reference, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "lesion_id", "region", "truth", "standard"])
        writer.writerows(reference_rows)
    table = os.path.join(folder, "table.csv")
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "call", "suv_max",
                         "tl_ratio"])
        writer.writerows(table_rows)
    return table, reference, len(patients), len(table_rows)


def baseline_bootstrap(units: pd.DataFrame, replicates: int, seed: int = 0) -> float:
    """The plain way: per replicate, draw patients and sum their lesions' cells with pandas."""
    rng = np.random.default_rng(seed)
    per_patient = {p: frame for p, frame in units.groupby("patient_id")}
    names = list(per_patient)
    start = time.perf_counter()
    values = []
    for _ in range(replicates):
        drawn = rng.choice(len(names), len(names))
        sample = pd.concat([per_patient[names[i]] for i in drawn])
        positives = sample[sample["truth"] == 1]
        values.append(positives["call"].mean())
    np.percentile(values, [2.5, 97.5])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lesions", type=int, default=10_000)
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        table, reference, patients, rows = make_study(folder, args.lesions)
        print(f"study: {args.lesions} reference lesions, {patients} patients, {len(GROUPS)} groups, {rows} table rows")
        start = time.perf_counter()
        study = load_study(table, reference)
        read = time.perf_counter() - start
        start = time.perf_counter()
        analysis = analyse(study, StatsOptions(bootstrap=args.bootstrap))
        analysed = time.perf_counter() - start
        start = time.perf_counter()
        write_outputs(analysis, os.path.join(folder, "out"))
        written = time.perf_counter() - start
        bootstraps = sum(1 for e in analysis.result["accuracy"] if "clustered" in e)
        bootstraps += sum(1 for c in analysis.result["comparisons"] if c["test"] == "mcnemar-clustered")
        print(f"read and check both files: {read:.2f} s")
        print(f"analysis ({bootstraps} cluster bootstraps of {args.bootstrap} replicates): {analysed:.2f} s "
              f"(target < 10 s)")
        print(f"outputs (CSV, {len([k for k in os.listdir(os.path.join(folder, 'out', 'figures'))])} figure files, "
              f"HTML): {written:.2f} s")
        lesion_units = analysis.units["lesion"]
        one = lesion_units[(lesion_units["modality"] == "PET/CT") & (lesion_units["tracer"] == "dotatate")
                           & (lesion_units["reader"] == "R1")]
        sample = 100
        plain = baseline_bootstrap(one, sample) * (args.bootstrap / sample) * bootstraps
        print(f"baseline (plain pandas loop, scaled from {sample} replicates x {bootstraps} bootstraps): {plain:.1f} s; "
              f"ratio NETPET analysis / baseline {analysed / plain:.3f}")


if __name__ == "__main__":
    main()
