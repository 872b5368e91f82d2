"""Time from a click on a PET to the lesion in its segment, as the Slicer module and the review app see it.

    python benchmarks/click_to_lesion.py PET.nrrd R,A,S [R,A,S ...] [--repeat 3]

Loads the SUV volume into a scene of ``netpet.slicer_runtime`` (slicer-core, no application) and
calls ``SUVQuantLogic.segmentAt`` at each point (RAS mm, e.g. the ``seed_r/a/s`` of a study-table row).
Each scenario runs in a fresh Python process, so "cold" includes the first imports of the core:

- ``cold``: the first click on a freshly loaded volume, then ``--repeat`` clicks at every point (warm);
- ``warm-up``: ``SUVQuantLogic.warmUp`` when the volume is loaded (as the review app does), then the
  same clicks: the first click should cost what a warm one does.

Prints one line per click and a summary (seconds, wall clock). Target: a warm click under 0.3 s on a
whole-body PET, so that click to lesion on the screen stays under 1 s with a slice-view frame.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _point(text):
    values = [float(v) for v in text.split(",")]
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not a point R,A,S (three numbers separated by commas)")
    return values


def run(pet, points, repeat, warm_up):
    """One scenario in this process; returns {"load", "warm_up", "clicks": [(point, seconds, status)]}."""
    from netpet import slicer_runtime

    slicer = slicer_runtime.install()
    with slicer_runtime.start():
        started = time.perf_counter()
        node = slicer.modules.volumes.logic().AddArchetypeVolume(pet, "PET", 0)
        if node is None:
            raise SystemExit(f"{pet} could not be read as a volume.")
        load = time.perf_counter() - started
        import SUVQuant

        logic = SUVQuant.SUVQuantLogic()
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lesions")
        segmentation.CreateDefaultDisplayNodes()
        warm = None
        if warm_up:
            started = time.perf_counter()
            logic.warmUp(node)
            warm = time.perf_counter() - started
        clicks = []
        for round_ in range(1 + repeat):
            for index, point in enumerate(points):
                started = time.perf_counter()
                lesion = logic.segmentAt(node, point, segmentation, f"L{index + 1}")
                clicks.append((point, time.perf_counter() - started, lesion.status))
    return {"load": load, "warm_up": warm, "clicks": clicks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pet", help="an SUV volume (.nrrd, .nii.gz: what Slicer's volumes logic reads)")
    parser.add_argument("points", nargs="+", type=_point, help="click points R,A,S (mm)")
    parser.add_argument("--repeat", type=int, default=3, help="warm clicks at every point after the first round")
    parser.add_argument("--scenario", choices=("cold", "warm-up"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(run(args.pet, args.points, args.repeat, args.scenario == "warm-up")))
        return
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    for scenario in ("cold", "warm-up"):
        command = [sys.executable, os.path.abspath(__file__), args.pet, *(",".join(map(str, p)) for p in args.points),
                   "--repeat", str(args.repeat), "--scenario", scenario]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        print(f"{scenario}: volume loaded in {result['load']:.2f} s" +
              (f", warm-up {result['warm_up']:.2f} s" if result["warm_up"] is not None else ""))
        for point, seconds, status in result["clicks"]:
            print(f"  click at {','.join(f'{v:g}' for v in point)}: {seconds:.3f} s ({status})")
        times = [seconds for _point_, seconds, _status in result["clicks"]]
        print(f"  first click {times[0]:.3f} s; later clicks median {statistics.median(times[1:]):.3f} s, "
              f"max {max(times[1:]):.3f} s")


if __name__ == "__main__":
    main()
