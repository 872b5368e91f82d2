"""How precisely can one noise realisation of the NEMA IEC phantom tell a sphere's volume?

    python benchmarks/nema_precision.py [--seeds 20] [--first-seed 20] [--contrasts 4,8,10]
                                        [--diameters 17,22,28,37] [--recon earl1,earl2] [--sphere-wall 1]

The default method's volume error per sphere over many noise realisations of the realistic NEMA
phantom (netpet.phantom.nema: OSEM like EARL1 and EARL2 systems), with its calibration for phantom
spheres in cold walls (``--cold-walls``) and with its default calibration for lesions (which have
no wall: on the phantom as built it shows the walls' bias; with ``--sphere-wall 0`` the spheres are
wall-less and this is the column that counts), beside two ORACLES that know what no method can
know, which bound what any method could reach on the same images:

``fixed threshold``
    one absolute threshold per sphere, reconstruction and contrast: the mean over the realisations
    of the threshold that reproduces each one's true volume exactly. Its spread is the spread of the
    images' own iso-contours: a threshold method, however its level is found, does no better unless
    it guesses each realisation's noise.
``ball fit``
    a uniform ball blurred by the image's resolution (its body outline), fitted by least squares to
    the voxels within the sphere's radius + 3 sigma + 4 mm, with the true centre and the measured
    background given, amplitude and radius free. Its bias is left out (the model has no cold wall and
    no edge overshoot): only its spread (sd) is printed.

Per sphere: mean, sd and range of the signed volume error, and the share of realisations within
10 %. Default seeds 20-39: the adaptive method is calibrated on seeds 0-19
(``python benchmarks/eval_segmentation.py --calibrate 20 [--sphere-wall 0]``), so these are held out.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.eval_segmentation import sphere_threshold  # noqa: E402
from netpet.phantom.nema import nema_phantom  # noqa: E402
from netpet.quant.segment import (SegmentOptions, _blurred_ball, _component, noise_correlation,  # noqa: E402
                                  outline_sigma, segment)
from netpet.quant.volume import SUVVolume  # noqa: E402


def ball_fit_volume(found, sigma: float, diameter: float) -> float:
    """The volume (mL) of the blurred ball fitted with the true centre and the measured background."""
    from scipy.optimize import least_squares

    values, truth, spacing = found["values"], found["truth"], np.asarray(found["spacing"], dtype=float)
    centre = np.array(np.nonzero(truth)).mean(axis=1) * spacing
    grid = np.indices(values.shape).reshape(3, -1).T * spacing
    distance = np.linalg.norm(grid - centre, axis=1)
    use = distance <= diameter / 2.0 + 3.0 * sigma + 4.0
    r, y, background = distance[use], values.reshape(-1)[use], found["background"]
    fit = least_squares(lambda p: _blurred_ball(r, p[0], p[1], sigma, background) - y,
                        [1.2 * found["top"], diameter / 2.0], bounds=([background, 0.5], [np.inf, 60.0]))
    return 4.0 / 3.0 * math.pi * fit.x[1] ** 3 / 1000.0


def stats(errors) -> str:
    e = np.array([x for x in errors if x is not None and np.isfinite(x)])
    if e.size == 0:
        return f"{'n/s':>31}"
    return (f"{100 * e.mean():+6.1f} {100 * e.std():5.1f} {100 * e.min():+6.1f}..{100 * e.max():+5.1f} "
            f"{np.mean(np.abs(e) <= 0.10):4.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=20)
    parser.add_argument("--contrasts", default="4,8,10")
    parser.add_argument("--diameters", default="17,22,28,37")
    parser.add_argument("--recon", default="earl1,earl2")
    parser.add_argument("--sphere-wall", type=float, default=1.0, help="cold wall of the spheres, mm (0: none)")
    args = parser.parse_args()
    walls = args.sphere_wall > 0
    diameters = [float(d) for d in args.diameters.split(",")]
    started = time.time()
    print("signed volume error over the realisations: mean sd min..max (%), share within 10 %")
    for recon in args.recon.split(","):
        for contrast in (float(c) for c in args.contrasts.split(",")):
            found_all = {d: [] for d in diameters}
            adaptive = {d: [] for d in diameters}
            lesion_calibration = {d: [] for d in diameters}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                phantom = nema_phantom(contrast, recon=recon, seed=seed, sphere_wall_mm=args.sphere_wall)
                volume = SUVVolume.from_image(phantom.image)
                sigma, correlation = outline_sigma(volume), noise_correlation(volume)
                for sphere in phantom.spheres:
                    d = sphere["diameter_mm"]
                    if d not in found_all:
                        continue
                    for options, errors in ((SegmentOptions(cold_walls=True), adaptive),
                                            (SegmentOptions(), lesion_calibration)):
                        lesion = segment(volume, sphere["center_ras"], options)
                        errors[d].append(lesion.voxels * volume.voxel_ml / sphere["volume_ml"] - 1.0
                                         if lesion.separable else None)
                    found = sphere_threshold(phantom, volume, sphere, sigma, correlation, walls)
                    if found is not None:
                        found["sigma"], found["true_ml"] = sigma, sphere["volume_ml"]
                        found_all[d].append(found)
            print(f"\n{recon} {contrast:g}:1, sphere walls {args.sphere_wall:g} mm ({args.seeds} realisations from seed "
                  f"{args.first_seed})")
            print(f"{'sphere':>8}  {'adaptive --cold-walls':>31}  {'adaptive, lesion calibration':>31}  "
                  f"{'oracle: fixed threshold':>31}  {'oracle: ball fit sd':>20}")
            for d in diameters:
                found = found_all[d]
                level = float(np.mean([f["exact"] for f in found]))
                fixed = []
                fitted = []
                for f in found:
                    wanted = int(f["truth"].sum())
                    fixed.append(_component(f["allowed"] & (f["values"] >= level), f["peak"]).sum() / wanted - 1.0)
                    fitted.append(ball_fit_volume(f, f["sigma"], d) / f["true_ml"] - 1.0)
                print(f"{d:6.0f}mm  {stats(adaptive[d])}  {stats(lesion_calibration[d])}  {stats(fixed)}  "
                      f"{100 * np.std(fitted):19.1f}")
    print(f"\ntotal {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
