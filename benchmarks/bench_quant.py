"""Speed of a click-to-segment and of whole-body candidate detection.

    python benchmarks/bench_quant.py [--patients 6] [--seed 11]

On the whole-body PETs of the digital reference study (cached by eval_segmentation.py), times
(median over every lesion) NETPET's segmentation from a click at the lesion, the measurements
(including SUVpeak), and whole-body candidate detection; the baseline is SimpleITK's
ConnectedThreshold region growing over the whole volume at the same threshold. Targets: a click
under 100 ms, candidate detection under 2 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import SimpleITK as sitk  # noqa: E402

from benchmarks._data import CACHE  # noqa: E402
from netpet.phantom import generate_study  # noqa: E402
from netpet.quant.candidates import detect  # noqa: E402
from netpet.quant.measure import measure  # noqa: E402
from netpet.quant.references import liver_reference  # noqa: E402
from netpet.quant.segment import noise_correlation, outline_sigma, segment  # noqa: E402
from netpet.quant.volume import SUVVolume  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    folder = os.path.join(CACHE, f"drs_seed{args.seed}_n{args.patients}")
    if not os.path.exists(os.path.join(folder, "truth", "truth.json")):
        generate_study(folder, args.patients, args.seed)
    summary = json.load(open(os.path.join(folder, "truth", "truth.json")))
    with open(os.path.join(folder, "truth", "lesions.csv"), newline="") as handle:
        lesions = list(csv.DictReader(handle))
    from netpet.dicom.convert import convert_to_suv

    clicks, measures, baselines, detections, livers, sizes, firsts = [], [], [], [], [], [], []
    for patient in summary["patients"]:
        for session in patient["sessions"]:
            cached = os.path.join(folder, "suv", f"{patient['patient_id']}_{session['session_id']}.nrrd")
            if not os.path.exists(cached):
                pet = os.path.join(folder, "dicom", patient["patient_id"], session["session_id"], "PET")
                os.makedirs(os.path.dirname(cached), exist_ok=True)
                sitk.WriteImage(convert_to_suv(sorted(os.path.join(pet, f) for f in os.listdir(pet))).image, cached)
            image = sitk.ReadImage(cached)
            volume = SUVVolume.from_image(image)
            sizes.append(volume.values.size)
            start = time.perf_counter()
            outline_sigma(volume), noise_correlation(volume)  # measured once per image, on the first click
            firsts.append(time.perf_counter() - start)
            start = time.perf_counter()
            liver = liver_reference(volume)
            livers.append(time.perf_counter() - start)
            start = time.perf_counter()
            detect(volume, liver)
            detections.append(time.perf_counter() - start)
            for row in lesions:
                if row["patient_id"] != patient["patient_id"] or row["session_id"] != session["session_id"]:
                    continue  # every lesion: avid, not avid, benign, small
                seed = [float(row[k]) for k in ("center_r", "center_a", "center_s")]
                start = time.perf_counter()
                lesion = segment(volume, seed)
                clicks.append(time.perf_counter() - start)
                start = time.perf_counter()
                measure(volume, lesion, liver)
                measures.append(time.perf_counter() - start)
                if not lesion.separable:
                    continue
                index = [int(v) for v in lesion.peak[::-1]]
                start = time.perf_counter()
                sitk.ConnectedThreshold(image, seedList=[index], lower=lesion.threshold, upper=1e9)
                baselines.append(time.perf_counter() - start)
    click, base = statistics.median(clicks), statistics.median(baselines)
    print(f"whole-body PETs: {len(sizes)} sessions, {statistics.median(sizes) / 1e6:.1f} M voxels (median)")
    print(f"click to segment:  median {1000 * click:.1f} ms, max {1000 * max(clicks):.1f} ms over {len(clicks)} lesions "
          f"(target < 100 ms)")
    print(f"  + measurements:  median {1000 * statistics.median(measures):.1f} ms")
    print(f"first click on an image: + {statistics.median(firsts):.2f} s median, {max(firsts):.2f} s max (its resolution "
          "from the body outline and its noise correlation, measured once and kept)")
    print(f"SimpleITK ConnectedThreshold, whole volume: median {1000 * base:.1f} ms; ratio NETPET / SimpleITK "
          f"{click / base:.2f}")
    print(f"automatic liver reference: median {statistics.median(livers):.2f} s")
    print(f"candidate detection: median {statistics.median(detections):.2f} s, max {max(detections):.2f} s "
          f"(target < 2 s)")


if __name__ == "__main__":
    main()
