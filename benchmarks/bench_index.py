"""Index a tree of 10,000 DICOM files (25 PET series of 400 files, nested folders).

    python benchmarks/bench_index.py [--repeat 3]

Prints the median wall time of ``netpet index`` as a whole process (start-up included; issue 16: <= 3 s) and
in process (headers only, all cores), and, as a baseline, of a plain serial pydicom header read of the same files
(``dcmread(stop_before_pixels=True)``), with the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pydicom  # noqa: E402

from benchmarks._data import ten_thousand_files  # noqa: E402
from netpet.dicom.files import walk_files  # noqa: E402
from netpet.dicom.index import index_tree  # noqa: E402


def plain_pydicom(files):
    return [pydicom.dcmread(path, stop_before_pixels=True) for path in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    folder = ten_thousand_files()
    made = time.perf_counter() - start
    files = [f for f in walk_files(folder) if not f.endswith(".complete")]
    plain_pydicom(files[:500])  # warm the file cache
    index_tree(folder, jobs=args.jobs)
    command = [sys.executable, "-m", "netpet.cli.main", "index", folder] + (["--jobs", str(args.jobs)] if args.jobs else [])
    ours, base, whole = [], [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        whole.append(time.perf_counter() - start)
        start = time.perf_counter()
        index = index_tree(folder, jobs=args.jobs)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        plain_pydicom(files)
        base.append(time.perf_counter() - start)
    o, b, w = statistics.median(ours), statistics.median(base), statistics.median(whole)
    print(f"tree: {len(files)} files, {len(index.all_series())} series, {len(index.patients)} patients "
          f"(written in {made:.1f} s, cached in {folder})")
    print(f"plain pydicom header loop (serial): {b:.2f} s")
    print(f"netpet index (jobs={args.jobs or 'all cores'}):        {o:.2f} s  = {len(files) / o:,.0f} files/s")
    print(f"ratio netpet / plain pydicom:        {o / b:.2f}")
    print(f"netpet index, whole process:         {w:.2f} s  (target <= 3 s; start-up and output included)")


if __name__ == "__main__":
    main()
