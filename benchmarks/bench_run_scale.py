"""``netpet run`` at scale: seconds per patient from 10 to 100 synthetic patients, 2 workers against 1, memory per
worker.

    python benchmarks/bench_run_scale.py [--patients 10,100] [--speedup-patients 10] [--source 100]
                                         [--generate-jobs 2]

The studies are digital reference studies (netpet.phantom: NET patients with a 68Ga-DOTATATE PET/CT each, whole
torso, PET 4 x 4 x 3 mm with its CT; about 65 MB and 5 s of generation per patient on one core) with a manifest of
one reader's clicks at every truth lesion (netpet.run.phantom_manifest); written once under benchmarks/.data
(NETPET_BENCH_DATA). The smaller studies are hard links of the largest one's first patients (no more disk; the
same patients at every size, so that seconds per patient compare the pipeline, not the patients). No reference
standard lies in the study folders: the statistics (benchmarks/bench_stats.py) are not timed here.

Each run is a whole ``netpet run`` process into a fresh output folder (the index of the study, every session's SUV,
references, segmentation and rows, the table written by the driver). Prints, each as a ratio against its named
baseline:

* seconds per patient at each size with 2 workers, against the smallest size (target: within 10 %, 0.9-1.1);
* the speed-up of 2 workers over 1 at --speedup-patients (target: about 1.9);
* the workers' peak RSS (the largest of the run log's per-unit peaks) at each size, against the smallest size
  (target: bounded, about 1.0).

Also the processor seconds per patient (the units' and the driver's, from the run log: independent of what else
runs on the machine), the fixed and per-patient parts of the wall time, and how busy the workers were.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._data import CACHE  # noqa: E402

SEED = 8


def study(patients: int, largest: int, jobs: int) -> str:
    """The folder of a ``patients``-patient study with its manifest.csv, made from the ``largest`` one."""
    from netpet.run.phantom_manifest import write_truth_manifest

    full = os.path.join(CACHE, f"run_study_{largest}")
    if not os.path.exists(os.path.join(full, ".complete")):
        from netpet.phantom import generate_study

        shutil.rmtree(full, ignore_errors=True)
        start = time.perf_counter()
        generate_study(full, largest, SEED, tracers=("dotatate",), modalities=("petct",), jobs=jobs)
        os.rename(os.path.join(full, "reference_standard.csv"), os.path.join(full, "reference_standard.csv.off"))
        write_truth_manifest(full, os.path.join(full, "manifest.csv"))
        open(os.path.join(full, ".complete"), "w").close()
        print(f"generated {largest} patients in {time.perf_counter() - start:.0f} s", flush=True)
    if patients == largest:
        return full
    folder = os.path.join(CACHE, f"run_study_{patients}_of_{largest}")
    if os.path.exists(os.path.join(folder, ".complete")):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    names = sorted(os.listdir(os.path.join(full, "dicom")))[:patients]
    for name in names:
        shutil.copytree(os.path.join(full, "dicom", name), os.path.join(folder, "dicom", name), copy_function=os.link)
    shutil.copytree(os.path.join(full, "truth"), os.path.join(folder, "truth"))
    with open(os.path.join(full, "manifest.csv"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.split(",", 1)[0] in names]
    with open(os.path.join(folder, "manifest.csv"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(kept) + "\n")
    open(os.path.join(folder, ".complete"), "w").close()
    return folder


def run(folder: str, jobs: int) -> dict:
    out = os.path.join(CACHE, "run_out")
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "netpet.cli.main", "run", folder, "--out", out, "--jobs", str(jobs),
                           "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 6):
        raise SystemExit(f"netpet run failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    with open(os.path.join(out, "run-log.jsonl"), encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle]
    units = [e for e in events if e["event"] == "unit"]
    end, driver = events[-1], events[0]["pid"]
    peaks = [u["worker"]["peak_rss_mb"] for u in units if u.get("worker")]
    return {"seconds": seconds, "units": len(units), "failed": summary["failed"], "rows": summary["rows_written"],
            # with one worker the units run in the driver's process, whose processor time includes them
            "cpu": end["driver_cpu_seconds"] + sum(u["cpu_seconds"] or 0 for u in units
                                                   if u["worker"]["pid"] != driver),
            "peak_rss_mb": max(peaks) if peaks else None, "load": load,
            # the share of the run during which the workers were running units (1.0: never idle, no serial part)
            "occupancy": sum(u["seconds"] or 0 for u in units) / (jobs * seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", default="10,100", help="study sizes, comma-separated (default 10,100)")
    parser.add_argument("--speedup-patients", type=int, default=None,
                        help="study size of the 1-worker run for the speed-up (default: the smallest size)")
    parser.add_argument("--source", type=int, default=100,
                        help="patients of the generated study the others are hard links of (default 100, at least the "
                             "largest size)")
    parser.add_argument("--generate-jobs", type=int, default=2, help="processes that write the study (default 2)")
    args = parser.parse_args()
    sizes = sorted(int(v) for v in args.patients.split(","))
    largest = max(sizes[-1], args.source)
    speedup_at = args.speedup_patients or sizes[0]
    results = {}
    for size in sizes:
        folder = study(size, largest, args.generate_jobs)
        results[size] = run(folder, 2)
        r = results[size]
        print(f"{size:4d} patients, 2 workers: {r['seconds']:7.1f} s, {r['seconds'] / size:5.2f} s/patient, "
              f"{r['cpu'] / size:5.2f} CPU s/patient, {r['rows']} rows, {r['failed']} failed, worker peak RSS "
              f"{r['peak_rss_mb']:.0f} MB, workers busy {100 * r['occupancy']:.0f} % of the run (load average {r['load']:.1f} "
              "at the start)", flush=True)
    one = run(study(speedup_at, largest, args.generate_jobs), 1)
    print(f"{speedup_at:4d} patients, 1 worker:  {one['seconds']:7.1f} s, "
          f"{one['seconds'] / speedup_at:5.2f} s/patient, {one['cpu'] / speedup_at:5.2f} CPU s/patient, "
          f"peak RSS {one['peak_rss_mb']:.0f} MB (load average {one['load']:.1f} at the start)", flush=True)
    base = results[sizes[0]]
    print()
    for size in sizes[1:]:
        r = results[size]
        print(f"seconds per patient, {size} vs {sizes[0]} patients (baseline: the {sizes[0]}-patient run): "
              f"{r['seconds'] / size:.2f} / {base['seconds'] / sizes[0]:.2f} = "
              f"{(r['seconds'] / size) / (base['seconds'] / sizes[0]):.3f} (target 0.9-1.1)")
        print(f"processor seconds per patient (units and driver), {size} vs {sizes[0]} patients: "
              f"{r['cpu'] / size:.2f} / {base['cpu'] / sizes[0]:.2f} = {(r['cpu'] / size) / (base['cpu'] / sizes[0]):.3f}")
        slope = (r["seconds"] - base["seconds"]) / (size - sizes[0])
        print(f"wall seconds = {base['seconds'] - slope * sizes[0]:.1f} s fixed (start-up, worker start) + "
              f"{slope:.2f} s per patient (from the two runs)")
        print(f"worker peak RSS, {size} vs {sizes[0]} patients (baseline: the {sizes[0]}-patient run): "
              f"{r['peak_rss_mb']:.0f} / {base['peak_rss_mb']:.0f} MB = {r['peak_rss_mb'] / base['peak_rss_mb']:.3f}")
    if len(sizes) > 2:  # the cost of each added patient over consecutive size steps: flat when nothing grows
        steps = [((results[b]["seconds"] - results[a]["seconds"]) / (b - a), a, b) for a, b in zip(sizes, sizes[1:])]
        first = steps[0][0]
        for slope, a, b in steps:
            print(f"seconds per added patient, {a} -> {b} patients: {slope:.3f} s (ratio to {steps[0][1]} -> "
                  f"{steps[0][2]}: {slope / first:.3f}; target within 10 %)")
    two = results[speedup_at] if speedup_at in results else run(study(speedup_at, largest, args.generate_jobs), 2)
    print("(on a machine shared with other sessions, Linux's autogroup scheduler shares the cores between sessions: "
          "a second worker adds no processor time while others keep the cores busy; the speed-up is meaningful at "
          "a load average below the core count)")
    print(f"speed-up of 2 workers over 1 at {speedup_at} patients (baseline: the 1-worker run): "
          f"{one['seconds']:.1f} / {two['seconds']:.1f} s = {one['seconds'] / two['seconds']:.2f}x (target about 1.9)")


if __name__ == "__main__":
    main()
