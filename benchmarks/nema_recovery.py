"""Recovery coefficients of the simulated NEMA IEC phantom against the EARL bands.

    python benchmarks/nema_recovery.py [--seeds 3] [--voxels 2,3,4] [--recon earl1,earl2]

For each reconstruction preset at 4:1 and 8:1 it simulates and reconstructs ``--seeds`` noise
realisations and prints, per sphere, RCmax, RCmean (VOI-A50) and RCpeak as mean +- sd next to
the preset's EARL band, "in band" when every realisation lies inside it and "OUT" otherwise,
then the background COV and the time per reconstruction. ``--voxels`` adds the presets
reconstructed with isotropic voxels of those sizes (mm), which EARL does not prescribe: those
rows are printed against the same bands for comparison only.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from netpet.phantom.nema import SPHERE_DIAMETERS_MM, bands, nema_phantom, recovery_coefficients  # noqa: E402


def run(recon: str, contrast: float, seeds: int, overrides: dict) -> None:
    results, covs, seconds = [], [], []
    for seed in range(seeds):
        start = time.perf_counter()
        phantom = nema_phantom(contrast, recon, seed=seed, **overrides)
        seconds.append(time.perf_counter() - start)
        results.append(recovery_coefficients(phantom))
        covs.append(phantom.background_cov)
    band = bands(recon)
    voxel = phantom.parameters["voxel_mm"]
    label = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "preset"
    print(f"\n{recon} {contrast:g}:1 ({label}; voxel {voxel[0]:g} x {voxel[1]:g} x {voxel[2]:g} mm, "
          f"{phantom.parameters['iterations']} it x {phantom.parameters['subsets']} subsets, "
          f"PSF {'on' if phantom.parameters['psf'] else 'off'}, post-filter {phantom.parameters['post_filter_mm']} mm)")
    print(f"{'sphere':>8} {'RCmax':>13} {'EARL':>11} {'':7} {'RCmean':>13} {'EARL':>11} {'':7} {'RCpeak':>13}")
    for i, diameter in enumerate(SPHERE_DIAMETERS_MM):
        cells = []
        for key in ("rc_max", "rc_mean"):
            values = np.array([r[i][key] for r in results])
            low, high = band[key][i]
            verdict = "in band" if np.all((values >= low) & (values <= high)) else "OUT"
            cells.append(f"{values.mean():6.3f}+-{values.std():.3f} {low:4.2f}-{high:4.2f}  {verdict:7}")
        peak = np.array([r[i]["rc_peak"] for r in results])
        print(f"{diameter:6.0f}mm " + " ".join(cells) + f" {peak.mean():6.3f}+-{peak.std():.3f}")
    print(f"background COV {np.mean(covs):.3f} +- {np.std(covs):.3f}; {np.mean(seconds):.1f} s per reconstruction "
          f"(first {seconds[0]:.1f} s, with the system matrix)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="noise realisations per setting")
    parser.add_argument("--recon", default="earl1,earl2", help="presets, comma-separated")
    parser.add_argument("--voxels", default="",
                        help="also reconstruct with these isotropic voxel sizes (mm), e.g. 2,3,4")
    args = parser.parse_args()
    for recon in args.recon.split(","):
        for contrast in (4.0, 8.0):
            run(recon, contrast, args.seeds, {})
            for voxel in filter(None, args.voxels.split(",")):
                run(recon, contrast, args.seeds, {"voxel_mm": float(voxel)})
    print(f"\npeak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0:.0f} MB")


if __name__ == "__main__":
    main()
