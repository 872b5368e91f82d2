"""Accuracy of every segmentation method on the digital reference study and the NEMA phantom.

    python benchmarks/eval_segmentation.py [--patients 8] [--seed 11]

For every avid truth lesion of the digital reference study (seeded at its true centre, liver
reference at the truth's liver point) and every sphere of simulated NEMA IEC phantoms (4:1 and
8:1, PET/CT-like 4 mm voxels and PET/MR-like 3 mm voxels), each method segments the lesion; the
script prints the median Dice coefficient against the truth mask and the median absolute
volume error (MTV vs true volume, %) by lesion-size band. The default method is the one with
the best overall Dice on both (netpet.quant.segment.DEFAULT_METHOD).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from benchmarks._data import CACHE  # noqa: E402
from netpet.dicom.convert import convert_to_suv  # noqa: E402
from netpet.phantom import generate_study  # noqa: E402
from netpet.phantom.nema import nema_phantom, sphere_mask  # noqa: E402
from netpet.quant.references import sphere_stats  # noqa: E402
from netpet.quant.segment import METHODS, QuantError, SegmentOptions, segment  # noqa: E402
from netpet.quant.volume import SUVVolume  # noqa: E402

BANDS = ((0, 10), (10, 20), (20, 30), (30, 99))


def band(diameter: float) -> str:
    for low, high in BANDS:
        if low <= diameter < high:
            return f"{low}-{high} mm" if high < 99 else f">={low} mm"
    return "?"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 2.0 * float((a & b).sum()) / total if total else 1.0


def evaluate_study(patients: int, seed: int, methods, results) -> None:
    import slicerio

    folder = os.path.join(CACHE, f"drs_seed{seed}_n{patients}")
    if not os.path.exists(os.path.join(folder, "truth", "truth.json")):
        generate_study(folder, patients, seed)
    summary = json.load(open(os.path.join(folder, "truth", "truth.json")))
    with open(os.path.join(folder, "truth", "lesions.csv"), newline="") as handle:
        lesions = list(csv.DictReader(handle))
    for patient in summary["patients"]:
        for session in patient["sessions"]:
            pet = os.path.join(folder, "dicom", patient["patient_id"], session["session_id"], "PET")
            cached = os.path.join(folder, "suv", f"{patient['patient_id']}_{session['session_id']}.nrrd")
            if not os.path.exists(cached):
                os.makedirs(os.path.dirname(cached), exist_ok=True)
                sitk.WriteImage(convert_to_suv(sorted(os.path.join(pet, f) for f in os.listdir(pet))).image, cached)
            volume = SUVVolume.from_image(sitk.ReadImage(cached))
            liver = sphere_stats(volume, session["liver_reference_center_ras"], 30.0, "liver")
            segmentation = slicerio.read_segmentation(os.path.join(folder, session["segmentation_file"]))
            rows = [r for r in lesions if r["patient_id"] == patient["patient_id"]
                    and r["session_id"] == session["session_id"] and r["avid"] == "1"]
            for row in rows:
                truth = np.transpose(slicerio.segment_mask(
                    segmentation, slicerio.segment_from_id(segmentation, row["lesion_id"])), (2, 1, 0)) > 0
                seed_ras = [float(row[k]) for k in ("center_r", "center_a", "center_s")]
                for method in methods:
                    key = ("study", method, band(float(row["diameter_mm"])))
                    try:
                        lesion = segment(volume, seed_ras, SegmentOptions(method=method), liver)
                    except QuantError:
                        results[key].append((0.0, 100.0))
                        continue
                    mask = lesion.full(volume.shape)
                    volume_error = 100.0 * abs(lesion.voxels * volume.voxel_ml - float(row["volume_ml"])) / float(row["volume_ml"])
                    results[key].append((dice(mask, truth), volume_error))


def evaluate_nema(methods, results) -> None:
    for voxel, fwhm in (((4.0, 4.0, 3.0), 7.1), ((3.0, 3.0, 3.0), 7.1), ((3.65, 3.65, 3.27), 5.1)):
        for contrast in (4.0, 8.0):
            for repeat in range(3):
                phantom = nema_phantom(contrast, voxel, fwhm, seed=repeat)
                volume = SUVVolume.from_image(phantom.image)
                for sphere in phantom.spheres:
                    truth = sphere_mask(phantom.image, sphere["center_lps"], sphere["diameter_mm"])
                    for method in methods:
                        key = ("nema", method, band(sphere["diameter_mm"]))
                        options = SegmentOptions(method=method, absolute_suv=0.5 * (1.0 + contrast))
                        try:
                            lesion = segment(volume, sphere["center_ras"], options, None)
                        except QuantError:
                            results[key].append((0.0, 100.0))
                            continue
                        mask = lesion.full(volume.shape)
                        error = 100.0 * abs(lesion.voxels * volume.voxel_ml - sphere["volume_ml"]) / sphere["volume_ml"]
                        results[key].append((dice(mask, truth), error))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    methods = args.methods.split(",")
    results = defaultdict(list)
    evaluate_study(args.patients, args.seed, methods, results)
    evaluate_nema([m for m in methods if not m.startswith("liver")], results)
    bands = [band(low + 0.5) for low, _ in BANDS]
    table = {}
    for data in ("study", "nema"):
        print(f"\n{data}: median Dice / median |volume error| % (n) by lesion diameter")
        print(f"{'method':14}" + "".join(f"{b:>22}" for b in bands) + f"{'all':>22}")
        for method in methods:
            cells = []
            every = []
            for b in bands:
                values = results.get((data, method, b), [])
                every += values
                if values:
                    d = np.median([v[0] for v in values])
                    e = np.median([v[1] for v in values])
                    cells.append(f"{d:.2f} / {e:5.1f}% ({len(values)})")
                    table[f"{data}|{method}|{b}"] = {"dice": float(d), "volume_error_pct": float(e), "n": len(values)}
                else:
                    cells.append("-")
            if every:
                d = np.median([v[0] for v in every])
                e = np.median([v[1] for v in every])
                cells.append(f"{d:.2f} / {e:5.1f}% ({len(every)})")
                table[f"{data}|{method}|all"] = {"dice": float(d), "volume_error_pct": float(e), "n": len(every)}
            print(f"{method:14}" + "".join(f"{c:>22}" for c in cells))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(table, handle, indent=1)


if __name__ == "__main__":
    main()
