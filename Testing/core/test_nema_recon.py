"""The NEMA IEC phantom simulated by acquisition + OSEM: EARL recovery, noise, physics, OSEM.

Phantoms are cached per (preset, contrast, seed, overrides) for the module, so every test that
needs the same reconstruction shares it.
"""

import functools
import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from netpet.phantom import nema
from netpet.phantom.nema import (BACKGROUND_SUV, EARL1_BANDS, EARL2_BANDS, SPHERE_DIAMETERS_MM, background_mask,
                                 nema_phantom, recovery_coefficients, sphere_mask)
from netpet.phantom.osem import Geometry, forward_project

SEEDS = (0, 1)


@functools.lru_cache(maxsize=None)
def phantom(recon, contrast, seed, **overrides):
    return nema_phantom(contrast, recon, seed=seed, **overrides)


@functools.lru_cache(maxsize=None)
def coefficients(recon, contrast, seed):
    return recovery_coefficients(phantom(recon, contrast, seed))


@pytest.mark.parametrize("recon,bands", [("earl1", EARL1_BANDS), ("earl2", EARL2_BANDS)])
@pytest.mark.parametrize("contrast", [4.0, 8.0])
def test_recovery_inside_earl_bands(recon, bands, contrast):
    # The bands are the published EARL limits themselves (nema.EARL1_BANDS / EARL2_BANDS, with
    # their citations), with no added tolerance. EARL specifies them for one measurement of a
    # 10:1 phantom; here the mean of two noise realisations must lie inside them at 4:1 and
    # 8:1, and each single realisation inside them up to 0.03 (about one standard deviation of
    # a single realisation's RC for the smallest spheres, measured over 12 seeds by
    # benchmarks/nema_recovery.py). The tolerance is needed at 4:1: the A50 mean includes the
    # background under each sphere's blurred edge, a share that grows as the contrast falls
    # (about (1 - g) / C for a blurred profile g), so at 4:1 the large spheres' RCmean sits
    # higher than at EARL's 10:1 and single noisy realisations graze the upper limits.
    results = [coefficients(recon, contrast, seed) for seed in SEEDS]
    for i, diameter in enumerate(SPHERE_DIAMETERS_MM):
        for key in ("rc_max", "rc_mean"):
            low, high = bands[key][i]
            values = [r[i][key] for r in results]
            assert low <= np.mean(values) <= high, (recon, contrast, diameter, key, values, (low, high))
            for value in values:
                assert low - 0.03 <= value <= high + 0.03, (recon, contrast, diameter, key, value, (low, high))


def radial_profile(image, centre, radius_mm, step_mm=1.0):
    """Mean value in spherical shells around ``centre``, from 0 to ``radius_mm``."""
    values = sitk.GetArrayViewFromImage(image)
    x, y, z = nema._voxel_axes(image, centre)
    distance = np.sqrt(x * x + y * y + z * z)
    edges = np.arange(0.0, radius_mm + step_mm, step_mm)
    return np.array([values[(distance >= a) & (distance < b)].mean() if ((distance >= a) & (distance < b)).any()
                     else np.nan for a, b in zip(edges[:-1], edges[1:])]), edges[:-1] + step_mm / 2


def test_psf_reconstruction_overshoots_at_the_edge_and_plain_osem_does_not():
    # Gibbs ringing of resolution-modelled OSEM: in the noise-free earl2 image the shell-mean
    # profile of the 37 mm sphere peaks near its edge above its centre (by 3.7 %); in earl1 (no
    # PSF, filtered) the rim stays below the centre. Noise-free, so not a noise accident.
    sphere = phantom("earl2", 4.0, 0, noise=False).spheres[-1]
    radius = sphere["diameter_mm"] / 2.0
    psf, r = radial_profile(phantom("earl2", 4.0, 0, noise=False).image, sphere["center_lps"], radius)
    centre = np.nanmean(psf[r < 4.0])
    rim = psf[(r > 0.5 * radius) & (r < radius)]
    assert np.nanmax(rim) > centre * 1.02
    plain, r = radial_profile(phantom("earl1", 4.0, 0, noise=False).image, sphere["center_lps"], radius)
    assert np.nanmax(plain[(r > 0.5 * radius) & (r < radius)]) < np.nanmean(plain[r < 4.0])
    # and in the noisy images RCmax > 1 for the 17-28 mm spheres with PSF; without, the 17 mm
    # sphere stays below 1
    for seed in SEEDS:
        assert all(c["rc_max"] > 1.0 for c in coefficients("earl2", 4.0, seed)[2:5])
        assert all(c["rc_max"] < 1.0 for c in coefficients("earl1", 8.0, seed)[2:3])


@pytest.mark.parametrize("recon", ["earl1", "earl2"])
def test_background_noise_is_clinical_and_correlated(recon):
    for contrast in (4.0, 8.0):
        image = phantom(recon, contrast, 0).image
        # upper limit: EARL accreditation requires a background COV below 15 % (Boellaard
        # 2015, EANM guideline 2.0); lower limit: the presets are calibrated to about 10 %
        # (9.7-10.9 % over 12 seeds), and a much quieter image would not be clinical
        cov = phantom(recon, contrast, 0).background_cov
        assert 0.09 <= cov < 0.15, cov
        values = sitk.GetArrayFromImage(image).astype(np.float64)
        mask = background_mask(image)
        # EARL's calibration QC accepts a uniform phantom's mean within 10 % of the truth (Boellaard
        # 2015); the simulation has no calibration error, only OSEM's low-count bias (under 0.4 %
        # over 2 seeds x 2 contrasts x 2 presets): 3 % catches a normalisation or attenuation error
        assert abs(values[mask].mean() - BACKGROUND_SUV) < 0.03
        # iterative reconstruction + filtering correlates neighbouring voxels (white noise: 0;
        # measured 0.63-0.65 for earl1, 0.83-0.84 for earl2 over the same 8 images)
        pair = mask[:, :, :-1] & mask[:, :, 1:]
        left, right = values[:, :, :-1][pair], values[:, :, 1:][pair]
        assert np.corrcoef(left, right)[0, 1] > 0.3


def test_cold_wall_removes_its_volume_of_background():
    # the activity in the analytic sinograms (unattenuated: sum over bins x bin width x slice
    # thickness = activity integral of the slab) drops by the walls' volume x background
    geometry = Geometry(1, 2.0, nema.SINOGRAM_BINS, nema.BIN_MM, 24)
    slices = nema.SPHERE_PLANE_Z_MM + np.arange(-12, 13) * 2.0
    totals = []
    for wall in (1.0, 0.0):
        trues, attenuation = nema.analytic_sinograms(4.0, geometry, slices, 2.0, 4.5, wall, attenuate=False)
        assert np.all(attenuation == 1.0)
        totals.append(trues.sum(axis=1).mean(axis=0) * nema.BIN_MM * 2.0)
    wall_volume = sum(4.0 / 3.0 * math.pi * ((d / 2 + 1.0) ** 3 - (d / 2) ** 3) for d in SPHERE_DIAMETERS_MM)
    assert totals[0].sum() - totals[1].sum() == pytest.approx(-wall_volume * BACKGROUND_SUV, rel=2e-3)


def test_analytic_sinogram_matches_a_voxelised_projection():
    # far from the spheres the slice holds body - lung; project a supersampled voxelisation of
    # it (and of the mu-map) with the OSEM system matrix and compare with the analytic data.
    # Tolerances: the voxelisation error, which halves with 1 mm pixels (so it is not the
    # analytic side's): 0.1 % RMS of the peak, and 3 % at its worst, the lines grazing the flat
    # posterior side of the body, which 2 mm pixels smear.
    geometry = Geometry(161, 2.0, nema.SINOGRAM_BINS, nema.BIN_MM, 24)
    trues, _ = nema.analytic_sinograms(4.0, geometry, np.array([75.0]), 2.0, 4.5, attenuate=False)
    x = geometry.pixel_centres
    steps = (np.arange(5) + 0.5) / 5 - 0.5
    body = np.zeros((161, 161))
    mu = np.zeros((161, 161))
    for dy in steps:
        for dx in steps:
            px, py = x[None, :] + dx * 2.0, x[:, None] + dy * 2.0
            inner = nema.IECBody().contains(px, py, 0.0)
            outer = nema.IECBody(inset=-nema.BODY_WALL_MM).contains(px, py, 0.0)
            lung = px * px + py * py <= nema.LUNG_RADIUS_MM ** 2
            core = px * px + py * py <= (nema.LUNG_RADIUS_MM - nema.LUNG_WALL_MM) ** 2
            body += (inner & ~lung) / 25.0
            mu += (nema.MU_PMMA * (outer & ~inner) + nema.MU_WATER * (inner & ~lung)
                   + nema.MU_PMMA * (lung & ~core) + nema.MU_LUNG * core) / 25.0
    blurred = ndimage.gaussian_filter(body, 4.5 / 2.3548 / 2.0, mode="constant")
    numeric = forward_project(blurred.reshape(-1, 1), geometry)[:, :, 0]
    error = numeric - trues[:, :, 0]
    assert np.sqrt(np.mean(error ** 2)) < 0.002 * trues.max()
    assert np.abs(error).max() < 0.04 * trues.max()
    assert numeric.sum() == pytest.approx(trues.sum(), rel=2e-3)
    line_integrals = nema._bin_mean(nema.attenuation_line_integrals(geometry))
    error = forward_project(mu.reshape(-1, 1), geometry)[:, :, 0] - line_integrals
    assert np.sqrt(np.mean(error ** 2)) < 0.002 * line_integrals.max()
    assert np.abs(error).max() < 0.04 * line_integrals.max()


def test_osem_converges_on_noise_free_data():
    # many iterations on expected (noise-free) data, no PSF, no filter: the background and the
    # centre of the 37 mm sphere (much larger than the 4.5 mm resolution) reach their truth
    # (measured: 0.00 % and 0.15 % off; a wrong sensitivity image or attenuation shifts them by
    # well over the 2 % and 5 % allowed, the sphere's also bearing its residual edge blur)
    p = phantom("earl1", 4.0, 0, noise=False, iterations=25, post_filter_mm=0.0)
    values = sitk.GetArrayViewFromImage(p.image)
    assert values[background_mask(p.image)].mean() == pytest.approx(BACKGROUND_SUV, rel=0.02)
    sphere = p.spheres[-1]
    centre = values[sphere_mask(p.image, sphere["center_lps"], 10.0)].mean()
    assert centre == pytest.approx(sphere["suv"], rel=0.05)


def test_seed_reproduces_and_differs():
    a = sitk.GetArrayFromImage(phantom("earl1", 4.0, 0).image)
    b = sitk.GetArrayFromImage(nema_phantom(4.0, "earl1", seed=0).image)
    c = sitk.GetArrayFromImage(phantom("earl1", 4.0, 1).image)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_image_geometry_and_truth():
    p = phantom("earl2", 8.0, 0)
    assert p.image.GetPixelID() == sitk.sitkFloat32
    assert p.image.GetSpacing() == pytest.approx(p.parameters["voxel_mm"])
    assert p.recon == "earl2" and p.contrast == 8.0
    assert [s["diameter_mm"] for s in p.spheres] == list(SPHERE_DIAMETERS_MM)
    for s in p.spheres:
        assert s["suv"] == 8.0 * BACKGROUND_SUV
        assert s["center_ras"] == pytest.approx((-s["center_lps"][0], -s["center_lps"][1], s["center_lps"][2]))
        assert s["volume_ml"] == pytest.approx(math.pi * s["diameter_mm"] ** 3 / 6000.0)
        assert sphere_mask(p.image, s["center_lps"], s["diameter_mm"]).any()


def test_overrides_and_the_gaussian_model():
    p = phantom("earl1", 4.0, 0, voxel_mm=3.0, iterations=2, subsets=12)
    assert p.image.GetSpacing() == pytest.approx((3.0, 3.0, 3.0))
    assert p.parameters["iterations"] == 2 and p.parameters["subsets"] == 12
    with pytest.raises(TypeError):
        nema_phantom(4.0, "earl1", liver_cov=0.1)
    with pytest.raises(ValueError):
        nema_phantom(4.0, "fbp")
    old = nema_phantom(4.0, "gauss", seed=0, voxel_mm=(4.0, 4.0, 3.0), fwhm_mm=6.5, liver_cov=0.10)
    assert old.image.GetSpacing() == pytest.approx((4.0, 4.0, 3.0))
    # the requested 10 % (measured 9.7 % over 3 seeds: the post-blur noise is scaled to it)
    assert old.background_cov == pytest.approx(0.10, rel=0.10)
    assert len(recovery_coefficients(old)) == 6
