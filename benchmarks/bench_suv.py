"""SUV conversion of a whole-body PET (200 x 200 x 400) against a plain SimpleITK series read.

    python benchmarks/bench_suv.py [--repeat 5]

Prints the median wall time of each and the ratio NETPET / SimpleITK (target: <= 1.3).
The baseline only reads the series (GDCM, slopes applied); NETPET also reads every header
rule, computes and checks the SUV factors and the geometry.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import SimpleITK as sitk  # noqa: E402

from benchmarks._data import whole_body_pet  # noqa: E402
from netpet.dicom.convert import convert_to_suv  # noqa: E402
from netpet.dicom.files import walk_files  # noqa: E402


def plain_simpleitk(folder: str) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    return reader.Execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=None, help="NETPET worker processes (default: all cores)")
    args = parser.parse_args()
    folder = whole_body_pet()
    files = walk_files(folder)
    files = [f for f in files if not f.endswith(".complete")]
    plain_simpleitk(folder)  # warm the file cache
    base, ours = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        reference = plain_simpleitk(folder)
        base.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = convert_to_suv(files, "bw", jobs=args.jobs)
        ours.append(time.perf_counter() - start)
    size = reference.GetSize()
    b, o = statistics.median(base), statistics.median(ours)
    print(f"series: {size[0]} x {size[1]} x {size[2]} int16, {len(files)} files; cores: {os.cpu_count()}")
    print(f"SimpleITK ImageSeriesReader: {b:.3f} s (median of {args.repeat})")
    print(f"NETPET convert_to_suv:       {o:.3f} s (median of {args.repeat}), jobs={args.jobs or 'all cores'}")
    print(f"ratio NETPET / SimpleITK:    {o / b:.2f}  (target <= 1.30)")
    assert result.image.GetSize() == size


if __name__ == "__main__":
    main()
