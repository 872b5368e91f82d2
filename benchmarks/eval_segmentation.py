"""Lesion measurement over every stratum: the digital reference study, the teaching cases and
realistic NEMA IEC phantoms (OSEM reconstructions like EARL1 and EARL2 systems).

    python benchmarks/eval_segmentation.py [--patients 10] [--seed 11] [--methods adaptive,fixed41]
                                           [--nema-repeats 2] [--json FILE]

For each method, every truth lesion is clicked at its true centre and measured by the product's
own path (automatic liver reference, segmentation with the separability tests, three-way
liver-threshold call), and scored per stratum (netpet.quant.evaluate): median Dice, median and
maximum |volume error|, floods (MTV > 3 x truth), share not separable, call agreement. The NEMA
spheres (10-37 mm, 4:1 and 8:1) are scored per reconstruction with the volume error of every
sphere. The last table ranks the methods by their WORST case over the EARL1-like and EARL2-like
reconstructions and the reference study, the criterion the default method is chosen by.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks._data import CACHE  # noqa: E402
from netpet.phantom import generate_case, generate_study  # noqa: E402
from netpet.phantom.cases import CASES  # noqa: E402
from netpet.phantom.nema import nema_phantom, sphere_mask  # noqa: E402
from netpet.quant.evaluate import (FLOOD_FACTOR, dice, evaluate_reference_study, format_summary,  # noqa: E402
                                   summarize)
from netpet.quant.segment import DEFAULT_METHOD, SegmentOptions, segment  # noqa: E402
from netpet.quant.volume import QuantError, SUVVolume  # noqa: E402

RECONS = ("earl1", "earl2")


def study_records(patients: int, seed: int, options: SegmentOptions):
    folder = os.path.join(CACHE, f"drs_seed{seed}_n{patients}")
    if not os.path.exists(os.path.join(folder, "truth", "truth.json")):
        generate_study(folder, patients, seed)
    return evaluate_reference_study(folder, options, os.path.join(folder, "suv"))


def case_records(options: SegmentOptions):
    records = []
    for name in CASES:
        folder = os.path.join(CACHE, f"case_{name}")
        if not os.path.exists(os.path.join(folder, "truth", "truth.json")):
            generate_case(folder, name)
        for record in evaluate_reference_study(folder, options, os.path.join(folder, "suv")):
            record["strata"] = record["strata"] + [f"case {name}"]
            records.append(record)
    return records


def nema_records(repeats: int, options: SegmentOptions, phantoms):
    records = []
    for (recon, contrast, repeat), phantom in phantoms.items():
        if repeat >= repeats:
            continue
        volume = SUVVolume.from_image(phantom.image)
        for sphere in phantom.spheres:
            truth = sphere_mask(phantom.image, sphere["center_lps"], sphere["diameter_mm"])
            strata = [f"nema-{recon}", f"nema-{recon} {int(sphere['diameter_mm'])} mm"]
            if sphere["diameter_mm"] >= 17:
                strata.append(f"nema-{recon} >=17 mm")
            try:
                lesion = segment(volume, sphere["center_ras"], options)
            except QuantError as exc:
                records.append({"lesion": f"{recon} {contrast}:1 {sphere['diameter_mm']}", "strata": strata,
                                "status": "refused", "call": "", "true_ml": sphere["volume_ml"], "mtv_ml": None,
                                "volume_error": None, "dice": None, "flood": False, "call_agrees": None,
                                "equivocal": False, "error": str(exc)})
                continue
            mtv = lesion.voxels * volume.voxel_ml if lesion.separable else None
            error = abs(mtv / sphere["volume_ml"] - 1.0) if mtv is not None else None
            records.append({"lesion": f"{recon} {contrast:g}:1 {sphere['diameter_mm']:g} mm #{repeat}", "strata": strata,
                            "status": lesion.status, "call": "", "true_ml": sphere["volume_ml"], "mtv_ml": mtv,
                            "signed_error": (mtv / sphere["volume_ml"] - 1.0) if mtv is not None else None,
                            "volume_error": error,
                            "dice": dice(lesion.full(volume.shape), truth) if lesion.separable else None,
                            "flood": bool(mtv is not None and mtv > FLOOD_FACTOR * sphere["volume_ml"]),
                            "call_agrees": None, "equivocal": False})
    return records


def calibrate(seeds: int) -> None:
    """Measure the adaptive method's calibration (netpet.quant.segment.ADAPTIVE_CALIBRATION) on the
    realistic NEMA phantoms: per reconstruction and sphere, the image resolution (body outline), the
    size the method measures (the fitted blurred ball's volume) and the fraction of (SUVpeak -
    background) whose threshold reproduces the true volume; means over both contrasts and the seeds."""
    from scipy import ndimage

    import importlib

    seg = importlib.import_module("netpet.quant.segment")  # the module (netpet.quant exports a function of that name)

    print("\ncalibration: recon, sphere, sigma (mm), fitted size (mL), fraction (mean +- sd)")
    for recon in RECONS:
        rows = defaultdict(list)
        sigmas = []
        for contrast in (4.0, 8.0):
            for seed in range(seeds):
                phantom = nema_phantom(contrast, recon=recon, seed=seed)
                volume = SUVVolume.from_image(phantom.image)
                sigmas.append(seg.outline_sigma(volume))
                for sphere in phantom.spheres:
                    seed_voxel = volume.voxel_of(sphere["center_ras"])
                    frame = seg._frame(volume, seed_voxel, 80.0)
                    peak = seg._local(seg.find_peak(volume, sphere["center_ras"], 20.0)[0], frame.box)
                    values, spacing = frame.values, frame.spacing
                    inside = seg._sphere(values.shape, peak, spacing, 60.0)
                    background = seg._local_background(values, inside, peak, float(values[peak]), 0.44, spacing,
                                                       (8.0, 20.0))
                    trace = {}
                    seg._adaptive_region(values, frame.means, inside, peak, background, None, spacing, sigmas[-1],
                                         seg.noise_correlation(volume), trace)
                    if "size_ml" not in trace:
                        continue
                    box, allowed, local_peak = trace["box"], trace["allowed"], trace["peak"]
                    local = values[box]
                    truth = sphere_mask(phantom.image, sphere["center_lps"], sphere["diameter_mm"])[frame.box][box]
                    wanted = int(truth.sum())
                    low, high = background, float(values[peak])
                    for _ in range(40):
                        middle = 0.5 * (low + high)
                        if seg._component(allowed & (local >= middle), local_peak).sum() > wanted:
                            low = middle
                        else:
                            high = middle
                    rows[sphere["diameter_mm"]].append(
                        (trace["size_ml"], (0.5 * (low + high) - background) / (trace["top"] - background)))
        print(f"  {recon}: sigma {np.mean(sigmas):.2f} mm")
        for diameter, values in sorted(rows.items()):
            sizes = np.array([v[0] for v in values])
            fractions = np.array([v[1] for v in values])
            print(f"    {diameter:4.0f} mm  size {np.nanmedian(sizes):6.2f} mL  fraction {fractions.mean():.3f} "
                  f"+- {fractions.std():.3f}")


REALDATA = os.environ.get("NETPET_REALDATA", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                           "..", "shared", "realdata"))


def real_data(options: SegmentOptions) -> None:
    """Real scans without a truth (TCIA Soft-tissue-Sarcoma, stored SUV): a click at each scan's
    hottest voxel (the sarcoma), and what the method makes of it; nothing to score, but a flood or a
    refusal would show."""
    from netpet.quant.pipeline import open_session

    folder = os.path.join(REALDATA, "STS_GML")
    if not os.path.isdir(folder):
        print(f"\nreal data: {folder} not found (set NETPET_REALDATA)")
        return
    print("\nreal data (TCIA Soft-tissue-Sarcoma, SUV as stored; a click at the hottest voxel):")
    for patient in sorted(os.listdir(folder)):
        session = open_session(os.path.join(folder, patient, "PET"))
        volume = session.volume
        hottest = np.unravel_index(int(np.nanargmax(volume.values)), volume.shape)
        lesion = segment(volume, volume.index_to_ras(hottest), options)
        volume_ml = lesion.voxels * volume.voxel_ml if lesion.separable else float("nan")
        print(f"  {patient}: {lesion.status}, SUVmax {lesion.suv_max:.1f}, MTV {volume_ml:.1f} mL, "
              f"contrast {lesion.contrast_to_noise or float('nan'):.0f} noise SD, flags {','.join(lesion.flags) or '-'}")


def worst_case(summary_by_source):
    """The figures the default is chosen by: per source, the median |volume error| and the worst
    sphere >= 17 mm on each reconstruction; floods anywhere."""
    out = {}
    for source, summary in summary_by_source.items():
        for s in summary:
            out[(source, s["stratum"])] = s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--methods", default=DEFAULT_METHOD)
    parser.add_argument("--nema-repeats", type=int, default=2)
    parser.add_argument("--no-study", action="store_true", help="NEMA phantoms only")
    parser.add_argument("--json", help="write every record and summary here")
    parser.add_argument("--calibrate", type=int, metavar="SEEDS",
                        help="only measure the adaptive method's calibration on SEEDS noise realisations")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.calibrate)
        return
    started = time.time()
    phantoms = {}
    for recon in RECONS:
        for contrast in (4.0, 8.0):
            for repeat in range(args.nema_repeats):
                phantoms[(recon, contrast, repeat)] = nema_phantom(contrast, recon=recon, seed=repeat)
    print(f"NEMA phantoms reconstructed in {time.time() - started:.0f} s")
    output = {}
    ranking = []
    for method in args.methods.split(","):
        options = SegmentOptions(method=method)
        sources = {"nema": nema_records(args.nema_repeats, options, phantoms)}
        if not args.no_study:
            sources["study"] = study_records(args.patients, args.seed, options)
            sources["cases"] = case_records(options)
        summaries = {name: summarize(records) for name, records in sources.items()}
        print(f"\n===== method {method} =====")
        real_data(options)
        for name, summary in summaries.items():
            print(format_summary(summary, f"\n{name}"))
        nema = sources["nema"]
        print("\nNEMA volume error per sphere (signed, mean over repeats and both contrasts):")
        per = defaultdict(list)
        for r in nema:
            recon = r["strata"][0]
            diameter = r["strata"][1].split()[-2]
            per[(recon, diameter)].append(r.get("signed_error"))
        for recon in RECONS:
            cells = []
            for diameter in ("10", "13", "17", "22", "28", "37"):
                values = [v for v in per[(f"nema-{recon}", diameter)] if v is not None]
                cells.append(f"{diameter} mm {100 * np.mean(values):+6.1f}%" if values else f"{diameter} mm    n/s")
            print(f"  {recon}: " + "  ".join(cells))
        worst = {}
        for recon in RECONS:
            errors = [r["volume_error"] for r in nema if f"nema-{recon}" in r["strata"]]
            big = [r["volume_error"] for r in nema if f"nema-{recon} >=17 mm" in r["strata"]]
            worst[recon] = (float(np.median([e if e is not None else 1.0 for e in errors])),
                            float(max(e if e is not None else 1.0 for e in big)))
        study = next((s for s in summaries.get("study", []) if s["stratum"] == "avid"), None)
        floods = sum(s["floods"] for name, summary in summaries.items() for s in summary if s["stratum"] == "all")
        ranking.append((method, worst, study, floods))
        output[method] = {"summaries": summaries, "records": sources, "worst": worst}
    print("\nworst case over EARL1-like, EARL2-like and the reference study (the default's criterion):")
    print(f"{'method':12}{'EARL1 median':>14}{'EARL1 worst>=17':>17}{'EARL2 median':>14}{'EARL2 worst>=17':>17}"
          f"{'study avid median':>19}{'floods':>8}")
    for method, worst, study, floods in ranking:
        study_error = study["median_volume_error"] if study and study["median_volume_error"] is not None else float("nan")
        print(f"{method:12}{100 * worst['earl1'][0]:13.1f}%{100 * worst['earl1'][1]:16.1f}%{100 * worst['earl2'][0]:13.1f}%"
              f"{100 * worst['earl2'][1]:16.1f}%{100 * study_error:18.1f}%{floods:>8}")
    print(f"\ntotal {time.time() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(output, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
