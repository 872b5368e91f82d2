"""Lesion measurement over every stratum: the digital reference study, the teaching cases and
realistic NEMA IEC phantoms (OSEM reconstructions like EARL1 and EARL2 systems).

    python benchmarks/eval_segmentation.py [--patients 10] [--seed 11] [--methods adaptive,fixed41]
                                           [--nema-repeats 2] [--json FILE]

For each method, every truth lesion is clicked at its true centre and measured by the product's
own path (automatic liver reference, segmentation with the separability tests, three-way
liver-threshold call), and scored per stratum (netpet.quant.evaluate): median Dice, median and
maximum |volume error|, floods (MTV > 3 x truth), share not separable, call agreement. The NEMA
spheres (10-37 mm, 4:1 and 8:1; ``--cold-walls``, the calibration for spheres in cold walls) are
scored per reconstruction with the volume error of every sphere. The last table ranks the methods
by their WORST case over the EARL1-like and EARL2-like reconstructions and the reference study,
the criterion the default method is chosen by.
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
    """The NEMA spheres, measured as a physicist measures the phantom: with the adaptive method's
    calibration for spheres inside cold walls (``--cold-walls``)."""
    import dataclasses

    options = dataclasses.replace(options, cold_walls=True)
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


def sphere_threshold(phantom, volume, sphere, sigma: float, correlation: float, cold_walls: bool = True):
    """What the adaptive method sees of one NEMA sphere, and the threshold it should have taken: the
    background, the SUVpeak it scales by ("top"), the size it measures (mL), the threshold whose
    connected region has exactly the sphere's true voxel count ("exact", by bisection), and the
    local arrays to threshold again (values, allowed, peak) with the truth mask; None when the
    method found no size. ``cold_walls``: which of the method's calibrations the first look uses."""
    import importlib

    seg = importlib.import_module("netpet.quant.segment")  # the module (netpet.quant exports a function of that name)
    frame = seg._frame(volume, volume.voxel_of(sphere["center_ras"]), 80.0)
    peak = seg._local(seg.find_peak(volume, sphere["center_ras"], 20.0)[0], frame.box)
    values, spacing = frame.values, frame.spacing
    inside = seg._sphere(values.shape, peak, spacing, 60.0)
    background = seg._local_background(values, inside, peak, float(values[peak]), 0.44, spacing, (8.0, 20.0))
    trace = {}
    seg._adaptive_region(values, frame.means, inside, peak, background, None, spacing, sigma, correlation, trace,
                         cold_walls)
    if "size_ml" not in trace:
        return None
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
    return {"background": background, "top": trace["top"], "size_ml": trace["size_ml"], "exact": 0.5 * (low + high),
            "values": local, "allowed": allowed, "peak": local_peak, "truth": truth, "spacing": spacing}


def calibrate(seeds: int, contrasts=(4.0, 8.0, 10.0), first_seed: int = 0, wall_mm: float = 1.0) -> None:
    """Measure the adaptive method's calibration (netpet.quant.segment.ADAPTIVE_CALIBRATION) on the
    realistic NEMA phantoms, per reconstruction: the image resolution (body outline) and, for every
    sphere, contrast and noise realisation, the size the method measures (the fitted blurred ball's
    volume) and the fraction of (SUVpeak - background) whose threshold reproduces the true volume.

    The curve is piecewise linear in log size (constant beyond its ends), one knot per sphere at
    its median measured size; each knot's fraction is set so that, over that sphere's realisations,
    the MEAN of the fraction the curve gives at each realisation's measured size equals the mean of
    the fractions that reproduce its true volume (a few fixed-point rounds, since neighbouring knots
    share the segments between them). The measured size scatters (sd about 10 % in volume at 17 mm
    on EARL1-like images) on a curve that is steep there, so the curve's value at the mean size is
    not what the sphere gets on average; and a least-squares fit over all spheres lets the
    scattered sizes of one sphere pull the knot of the next (13 mm spheres measured at 1.5 mL
    raised the 17 mm knot by 0.015, -4 % in volume). A sphere whose measured size scatters by more
    than half its median keeps its mean fraction unmatched.
    """
    import importlib

    seg = importlib.import_module("netpet.quant.segment")  # the module (netpet.quant exports a function of that name)

    print(f"\ncalibration over {seeds} realisations from seed {first_seed}, contrasts "
          f"{', '.join(f'{c:g}:1' for c in contrasts)}, sphere walls {wall_mm:g} mm")
    table = {}
    for recon in RECONS:
        samples = []  # (diameter, measured size mL, fraction)
        sigmas = []
        for contrast in contrasts:
            for seed in range(first_seed, first_seed + seeds):
                phantom = nema_phantom(contrast, recon=recon, seed=seed, sphere_wall_mm=wall_mm)
                volume = SUVVolume.from_image(phantom.image)
                sigmas.append(seg.outline_sigma(volume))
                correlation = seg.noise_correlation(volume)
                for sphere in phantom.spheres:
                    found = sphere_threshold(phantom, volume, sphere, sigmas[-1], correlation, wall_mm > 0)
                    if found is not None:
                        samples.append((sphere["diameter_mm"], found["size_ml"],
                                        (found["exact"] - found["background"]) / (found["top"] - found["background"])))
        diameters = sorted({d for d, _, _ in samples})
        knots = np.log([np.median([s for d, s, _ in samples if d == diameter]) for diameter in diameters])
        per_sphere = [(np.log([s for d, s, _ in samples if d == diameter]),
                       float(np.mean([f for d, _, f in samples if d == diameter]))) for diameter in diameters]
        fractions = np.array([wanted for _, wanted in per_sphere])
        # a sphere whose measured size scatters by more than half its median (10 mm: the size of a
        # blur-sized ball is mostly noise) keeps its mean fraction: matching it would push its knot
        # to wherever the scatter lands (1.0 at 10 mm, a threshold at SUVpeak for any small lesion)
        matched = np.array([np.std(np.exp(x)) < 0.5 * np.exp(np.median(x)) for x, _ in per_sphere])
        for _ in range(50):  # np.interp of the knot values, as netpet.quant.segment.adaptive_fraction evaluates them
            fractions = fractions + matched * np.array([wanted - float(np.mean(np.interp(x, knots, fractions)))
                                                        for x, wanted in per_sphere])
        residual = max(abs(wanted - float(np.mean(np.interp(x, knots, fractions))))
                       for (x, wanted), match in zip(per_sphere, matched) if match)
        sigma = float(np.mean(sigmas))
        table[round(sigma, 2)] = tuple((round(float(np.exp(k)), 2), round(float(f), 3)) for k, f in zip(knots, fractions))
        print(f"  {recon}: sigma {sigma:.2f} mm (sd {np.std(sigmas):.2f}); largest residual of the mean fraction "
              f"{residual:.1e}")
        for diameter, knot, fraction in zip(diameters, knots, fractions):
            mine = [(s, f) for d, s, f in samples if d == diameter]
            print(f"    {diameter:4.0f} mm  measured size {np.exp(knot):6.2f} mL (sd {np.std([s for s, _ in mine]):.2f})  "
                  f"fraction {fraction:.3f} (sphere mean {np.mean([f for _, f in mine]):.3f} +- "
                  f"{np.std([f for _, f in mine]):.3f})")
    print(f"\nADAPTIVE_CALIBRATION{'_COLD_WALLS' if wall_mm > 0 else ''} = {{")
    for sigma, pairs in sorted(table.items()):
        print(f"    {sigma:.2f}: ({', '.join(f'({v:.2f}, {f:.3f})' for v, f in pairs)}),")
    print("}")


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
    parser.add_argument("--contrasts", help="sphere-to-background ratios of the NEMA phantoms, comma-separated "
                                            "(default 4,8; with --calibrate 4,8,10)")
    parser.add_argument("--sphere-wall", type=float, default=1.0,
                        help="cold wall of the NEMA spheres, mm (0: wall-less spheres, like lesions)")
    parser.add_argument("--nema-first-seed", type=int, default=0,
                        help="noise realisations start here (held-out seeds for a calibration made on 0..N-1)")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.calibrate, tuple(float(c) for c in (args.contrasts or "4,8,10").split(",")), args.nema_first_seed,
                  args.sphere_wall)
        return
    started = time.time()
    phantoms = {}
    for recon in RECONS:
        for contrast in (float(c) for c in (args.contrasts or "4,8").split(",")):
            for repeat in range(args.nema_repeats):
                phantoms[(recon, contrast, repeat)] = nema_phantom(contrast, recon=recon,
                                                                    seed=args.nema_first_seed + repeat)
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
