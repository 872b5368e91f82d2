"""SUV conversion against the data-movement baselines: a whole process against dcm2niix, in process against SimpleITK.

    pip install dcm2niix          # the PyPI wheel of Chris Rorden's converter (pyproject extra `bench`)
    python benchmarks/bench_suv.py [--repeat 7] [--series DIR ...]

Series (each printed on its own):
- a Siemens-shaped whole-body PET of 545 slices of 200 x 200 (int16, a rescale slope per slice, 8 beds; written
  once by code and cached under benchmarks/.data), the size of the series the issue measured;
- the real GE Discovery ST whole-body PET of ../shared/realdata/STS_001/PET (267 slices of 128 x 128), when present;
- any --series folder.

Whole process (targets of issue 16): ``netpet suv DIR --out x.nii`` against ``dcm2niix -z n`` writing the same
series to NIfTI, median wall time of --repeat runs each (warm file cache), ratio netpet / dcm2niix (target <= 3).
dcm2niix only rescales and writes; netpet also reads every header rule, computes and checks the SUV factors and the
geometry and writes float32 SUV with its provenance.

In process: ``convert_to_suv(files)`` against SimpleITK's ImageSeriesReader (GDCM, slopes applied), median of
--repeat, ratio (target <= 0.5). Both with the default jobs (all cores) and with jobs=1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import SimpleITK as sitk  # noqa: E402

from benchmarks._data import whole_body_pet  # noqa: E402
from netpet.dicom.convert import convert_to_suv  # noqa: E402
from netpet.dicom.files import default_jobs, walk_files  # noqa: E402

REALDATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared",
                        "realdata", "STS_001", "PET")


def _median_wall(command, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _median_call(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _dcm2niix() -> str:
    found = shutil.which("dcm2niix") or os.path.join(os.path.dirname(sys.executable), "dcm2niix")
    if not os.path.exists(found):
        sys.exit("dcm2niix is not installed: pip install dcm2niix (or pip install -e .[bench])")
    return found


def plain_simpleitk(folder: str) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    return reader.Execute()


def bench(folder: str, label: str, repeat: int, scratch: str) -> None:
    files = [f for f in walk_files(folder) if not f.endswith(".complete")]
    netpet = [sys.executable, "-m", "netpet.cli.main", "suv", folder, "--out", os.path.join(scratch, "suv.nii")]
    baseline = [_dcm2niix(), "-z", "n", "-b", "n", "-o", scratch, "-f", "dcm2niix_%s", folder]
    for command in (baseline, netpet):  # warm the file cache and the interpreter's
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = _median_wall(baseline, repeat)
    n = _median_wall(netpet, repeat)
    n1 = _median_wall(netpet + ["--jobs", "1"], repeat)
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK's "non uniform sampling" of rounded bed joins
    s = _median_call(lambda: plain_simpleitk(folder), repeat)
    c = _median_call(lambda: convert_to_suv(files, "bw"), repeat)
    c1 = _median_call(lambda: convert_to_suv(files, "bw", jobs=1), repeat)
    size = plain_simpleitk(folder).GetSize()
    print(f"\n{label}: {size[0]} x {size[1]} x {size[2]}, {len(files)} files; {default_jobs()} cores; median of {repeat}")
    print(f"  whole process  dcm2niix -z n (baseline)       {d:6.3f} s")
    print(f"                 netpet suv (all cores)          {n:6.3f} s   ratio {n / d:5.2f}  (target <= 3)")
    print(f"                 netpet suv --jobs 1             {n1:6.3f} s   ratio {n1 / d:5.2f}")
    print(f"  in process     SimpleITK series read (baseline) {s:6.3f} s")
    print(f"                 convert_to_suv (all cores)      {c:6.3f} s   ratio {c / s:5.2f}  (target <= 0.5)")
    print(f"                 convert_to_suv (jobs=1)         {c1:6.3f} s   ratio {c1 / s:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--series", action="append", default=[], metavar="DIR", help="another PET series folder")
    args = parser.parse_args()
    series = [(whole_body_pet((545, 200, 200), vendor="siemens"), "Siemens-shaped whole-body PET (synthetic)")]
    if os.path.isdir(REALDATA):
        series.append((REALDATA, "GE Discovery ST whole-body PET (real, TCIA STS_001)"))
    series += [(folder, folder) for folder in args.series]
    with tempfile.TemporaryDirectory() as scratch:
        for folder, label in series:
            bench(folder, label, args.repeat, scratch)


if __name__ == "__main__":
    main()
