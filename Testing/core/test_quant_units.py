"""SUVQuant on analytic volumes: exact voxel counts, SUVpeak, leak prevention, bad input,
the classifier and the Krenning score."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from netpet.geometry import lps_to_ras
from netpet.quant import references
from netpet.quant.candidates import detect
from netpet.quant.classify import LiverThresholdClassifier, krenning_score, youden_cutoff
from netpet.quant.measure import PEAK_RADIUS_MM, measure, peak_kernel, suv_peak
from netpet.quant.segment import METHODS, LesionMask, ReferenceStats, SegmentOptions, segment
from netpet.quant.volume import QuantError, SUVVolume

SPACING = (2.0, 2.0, 2.0)
ORIGIN = (-60.0, -60.0, -60.0)


def grid(shape=(61, 61, 61), spacing=SPACING, origin=ORIGIN):
    z, y, x = np.meshgrid(*(origin[2 - a] + np.arange(n) * spacing[2 - a] for a, n in enumerate(shape)), indexing="ij")
    return x, y, z


def volume_of(values, spacing=SPACING, origin=ORIGIN):
    return SUVVolume(values.astype(np.float32), origin, spacing)


def sphere(x, y, z, center, radius):
    return (x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2 <= radius ** 2


@pytest.mark.parametrize("method", ["fixed41", "fixed50", "adaptive", "absolute"])
def test_noise_free_sphere_exact_voxels(method):
    """A sharp sphere of SUV 10 in a background of 1: the mask is exactly the voxels whose centres
    lie in the sphere, whatever the threshold between 1 and 10."""
    x, y, z = grid()
    center, radius = (4.0, -6.0, 2.0), 13.0
    truth = sphere(x, y, z, center, radius)
    values = np.where(truth, 10.0, 1.0)
    lesion = segment(volume_of(values), lps_to_ras(center), SegmentOptions(method=method, absolute_suv=3.0))
    mask = lesion.full(values.shape)
    assert np.array_equal(mask, truth)
    m = measure(volume_of(values), lesion)
    assert m["suv_max"] == m["suv_mean"] == m["suv_min"] == 10.0
    assert m["mtv_ml"] == pytest.approx(truth.sum() * 8.0 / 1000.0)
    assert m["tla"] == pytest.approx(10.0 * m["mtv_ml"])
    points = np.argwhere(truth) * 2.0
    brute = max(np.linalg.norm(points[:, None] - points[None], axis=-1).max(axis=1))
    assert m["longest_diameter_mm"] == pytest.approx(brute)
    assert (m["centroid_r"], m["centroid_a"], m["centroid_s"]) == pytest.approx(lps_to_ras(center), abs=1e-9)


def test_peak_kernel_volume_is_one_millilitre():
    for spacing in ((2.0, 2.0, 2.0), (3.0, 4.07, 4.07), (3.27, 3.65, 3.65)):
        weights = peak_kernel(spacing)
        # 32^3 sub-samples per surface voxel: the volume error is below 1e-3 mL
        assert weights.sum() * np.prod(spacing) / 1000.0 == pytest.approx(1.0, abs=1e-3)
        assert weights.max() == 1.0 and weights.min() == 0.0


def test_suv_peak_of_a_linear_ramp_is_exact():
    """The mean of any sphere over a linear field is the field at the sphere's centre; with
    symmetric exact weights SUVpeak equals the ramp at the best centre to rounding."""
    x, y, z = grid()
    values = 5.0 + 0.1 * x - 0.05 * y + 0.02 * z
    volume = volume_of(values)
    region = sphere(x, y, z, (0.0, 0.0, 0.0), 10.0)
    lesion = LesionMask((slice(0, 61),) * 3, region, (30, 30, 30), float(values[region].max()), 0.0, "test")
    peak, at = suv_peak(volume, lesion)
    candidates = np.where(region, values, -np.inf)
    best = np.unravel_index(np.argmax(candidates), values.shape)
    assert at == tuple(int(v) for v in best)
    # the volume holds float32 values: linearity, and so the equality, holds to about 1e-7 relative
    assert peak == pytest.approx(values[best], abs=1e-6)


def test_gradient_method_on_a_blurred_sphere():
    x, y, z = grid()
    truth = sphere(x, y, z, (0.0, 0.0, 0.0), 9.0)
    values = ndimage.gaussian_filter(np.where(truth, 8.0, 1.0), 1.2)
    lesion = segment(volume_of(values), (0.0, 0.0, 0.0), SegmentOptions(method="gradient"))
    mask = lesion.full(values.shape)
    # the steepest slope of a blurred sphere lies slightly inside its surface (the blurred profile
    # is convex there), so the contour runs a little inside: Dice 0.88 here, all voxels inside the truth
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.85
    assert not (mask & ~truth).any()


def test_suv_peak_against_brute_force_monte_carlo():
    rng = np.random.default_rng(4)
    values = ndimage.gaussian_filter(rng.gamma(4.0, 1.0, (40, 40, 40)), 1.0)
    spacing = (3.0, 4.0, 4.0)[::-1]  # x, y, z spacing in mm
    volume = SUVVolume(values.astype(np.float32), (0.0, 0.0, 0.0), spacing)
    region = np.zeros(values.shape, bool)
    region[15:25, 15:25, 15:25] = True
    lesion = LesionMask((slice(0, 40),) * 3, region, (20, 20, 20), float(values[region].max()), 0.0, "test")
    peak, at = suv_peak(volume, lesion)
    # independent: 2 million uniform points in the sphere around the chosen centre, nearest voxel
    points = rng.uniform(-1, 1, (4_000_000, 3))
    points = points[np.sum(points ** 2, axis=1) <= 1][:2_000_000] * PEAK_RADIUS_MM
    spacing_zyx = np.array(spacing[::-1])
    index = np.rint(np.array(at) + points / spacing_zyx).astype(int)
    brute = values[index[:, 0], index[:, 1], index[:, 2]].mean()
    # Monte Carlo standard error: sd(values) / sqrt(2e6) ~ 1e-3; allow 4 standard errors
    assert peak == pytest.approx(brute, abs=4 * values.std() / math.sqrt(len(points)))


def _kidney_scene(kidney_suv=10.0, blur=2.5, noise=0.0, seed=0, bridge_share=0.75, bridge_half_mm=3.0):
    x, y, z = grid((50, 50, 70))
    lesion_center, kidney_center = (-20.0, 0.0, 0.0), (22.0, 0.0, 0.0)
    lesion = sphere(x, y, z, lesion_center, 8.0)
    kidney = ((x - kidney_center[0]) / 14.0) ** 2 + (y / 12.0) ** 2 + (z / 25.0) ** 2 <= 1.0
    bridge = (np.abs(y) <= bridge_half_mm) & (np.abs(z) <= bridge_half_mm) & (x > lesion_center[0]) & (x < kidney_center[0])
    values = np.full(x.shape, 1.0)
    values[bridge] = bridge_share * kidney_suv
    values[kidney] = kidney_suv
    values[lesion] = 12.0
    values = ndimage.gaussian_filter(values, blur / 2.0)
    if noise:
        values = values * (1 + noise * np.random.default_rng(seed).standard_normal(values.shape))
    return volume_of(values), lesion, lesion_center, kidney_center


def test_no_leak_into_a_kidney_through_a_thin_bridge():
    volume, truth, lesion_center, kidney_center = _kidney_scene()
    options = SegmentOptions(method="fixed41")
    leaked = segment(volume, lps_to_ras(lesion_center), SegmentOptions(method="fixed41", split=False))
    split = segment(volume, lps_to_ras(lesion_center), options)
    # without the watershed the region would run into the kidney: the flooding test refuses it
    # (the kidney's uptake is in the upper half of the lesion's contrast, so it is no plateau to set apart)
    assert leaked.status == "not separable" and "flooding" in leaked.flags
    mask = split.full(volume.shape)
    assert not mask[:, :, 33:].any()  # nothing right of the bridge's middle
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.7 and any("separated" in n for n in split.notes)


def test_second_click_splits_what_the_automatic_split_keeps():
    # a faint neighbour: its maximum does not stand out enough to split automatically
    volume, truth, lesion_center, kidney_center = _kidney_scene(kidney_suv=6.0, bridge_share=1.0, bridge_half_mm=5.0)
    alone = segment(volume, lps_to_ras(lesion_center), SegmentOptions(method="fixed41"))
    # alone, the region would spill over the broad bridge into the kidney: refused, never flooded
    assert alone.status == "not separable" and "flooding" in alone.flags and alone.voxels < truth.sum()
    clicked = segment(volume, lps_to_ras(lesion_center), SegmentOptions(method="fixed41"),
                      others_ras=[lps_to_ras(kidney_center)])
    assert clicked.status == "segmented" and "split" in clicked.flags
    assert not clicked.full(volume.shape)[:, :, 36:].any()
    assert clicked.voxels < 2 * truth.sum()


def test_refusals_of_bad_clicks_images_and_parameters():
    x, y, z = grid()
    body = sphere(x, y, z, (0, 0, 0), 50.0)
    values = np.where(body, 1.0, 0.0)
    values[sphere(x, y, z, (0, 0, 0), 8.0)] = 8.0
    volume = volume_of(values)
    with pytest.raises(QuantError, match=r"seed R,A,S = 500.0,0.0,0.0 mm lies outside"):
        segment(volume, (500.0, 0.0, 0.0))
    with pytest.raises(QuantError, match="outside the body"):
        segment(volume, lps_to_ras((-58.0, -58.0, -58.0)))  # air in a corner of the image
    with pytest.raises(QuantError, match="needs the liver reference"):
        segment(volume, (0.0, 0.0, 0.0), SegmentOptions(method="liver-percist"))
    with pytest.raises(QuantError, match="Unknown segmentation method"):
        segment(volume, (0.0, 0.0, 0.0), SegmentOptions(method="magic"))
    for options, name in ((SegmentOptions(method="fixed41", fraction=0.0), "fraction"),
                          (SegmentOptions(fraction=1.5), "fraction"), (SegmentOptions(fraction=float("nan")), "fraction"),
                          (SegmentOptions(method="absolute", absolute_suv=-1.0), "absolute SUV"),
                          (SegmentOptions(search_radius_mm=float("inf")), "search radius"),
                          (SegmentOptions(max_radius_mm=0.0), "limit radius"),
                          (SegmentOptions(shell_mm=(20.0, 8.0)), "background shell outer")):
        with pytest.raises(QuantError, match=f"The segmentation parameter {name}"):
            segment(volume, (0.0, 0.0, 0.0), options)
    with pytest.raises(QuantError, match="three finite numbers"):
        segment(volume, (float("nan"), 0.0, 0.0))
    damaged = values.copy()
    damaged[30, 30, 33] = np.nan
    with pytest.raises(QuantError, match=r"non-finite \(NaN or infinite\) voxels within"):
        segment(volume_of(damaged), (0.0, 0.0, 0.0))


def test_a_click_in_flat_tissue_is_not_separable_and_reports_local_uptake():
    """A click in uniform tissue (noise-free, or noisy) finds no lesion: no organ-sized mask, the
    1 mL sphere at the click is the record, and its uptake is the tissue's."""
    x, y, z = grid()
    values = np.where(sphere(x, y, z, (0, 0, 0), 58.0), 2.0, 0.0)
    values[sphere(x, y, z, (25.0, 0, 0), 8.0)] = 9.0
    noisy = values * (1 + 0.1 * ndimage.gaussian_filter(np.random.default_rng(2).standard_normal(values.shape), 1.0) * 3)
    for image in (values, noisy):
        volume = volume_of(image)
        click = lps_to_ras((-20.0, 6.0, 0.0))
        lesion = segment(volume, click)
        assert lesion.status == "not separable" and "not-separable" in lesion.flags
        expected = sphere(x, y, z, (-20.0, 6.0, 0.0), 6.2035)
        assert np.array_equal(lesion.full(image.shape), expected)  # the 1 mL sphere at the click
        m = measure(volume, lesion)
        assert math.isnan(m["mtv_ml"]) and math.isnan(m["suv_mean"]) and m["voxels"] == 0
        assert m["suv_max"] == pytest.approx(image[expected].max())
        # the lesion 45 mm away is never what a click here measures
        assert m["suv_peak"] < 3.0


def test_liver_methods_use_the_reference():
    x, y, z = grid()
    values = np.where(sphere(x, y, z, (0, 0, 0), 10.0), 12.0, 1.0)
    liver = ReferenceStats(mean=4.0, sd=0.5, max=5.5, median=4.0, voxels=100)
    percist = segment(volume_of(values), (0.0, 0.0, 0.0), SegmentOptions(method="liver-percist"), liver)
    assert percist.threshold == pytest.approx(1.5 * 4.0 + 2 * 0.5)
    assert segment(volume_of(values), (0.0, 0.0, 0.0), SegmentOptions(method="liver-max"), liver).threshold == 5.5
    assert set(METHODS) == {"adaptive", "fixed41", "fixed50", "absolute", "liver-percist", "liver-max", "gradient"}


def test_reference_spheres_and_background_shell():
    x, y, z = grid()
    values = np.full(x.shape, 2.0)
    values[x > 20] = 4.0  # warm, below the lesion's threshold: background
    values[x > 36] = 7.0  # hot, above the lesion's threshold: never background
    lesion_mask = sphere(x, y, z, (-10.0, 0.0, 0.0), 6.0)
    values[lesion_mask] = 9.0
    volume = volume_of(values)
    stats = references.sphere_stats(volume, lps_to_ras((-40.0, -30.0, 0.0)), 30.0, "liver")
    assert stats.mean == 2.0 and stats.sd == 0.0
    assert stats.voxels == int(sphere(x, y, z, (-40.0, -30.0, 0.0), 15.0).sum())
    lesion = segment(volume, lps_to_ras((-10.0, 0.0, 0.0)), SegmentOptions(method="fixed50"))
    assert lesion.threshold == 4.5
    near = references.background_shell(volume, lesion, 4.0, 12.0)
    assert near.median == 2.0 and near.max == 2.0  # the warm region is farther than 12 mm
    wide = references.background_shell(volume, lesion, 4.0, 60.0)
    assert wide.max == 4.0  # the warm region counts, the hot one (7.0 >= threshold) does not
    with pytest.raises(QuantError, match="fewer than 3 voxels"):
        references.sphere_stats(volume, lps_to_ras((58.0, 58.0, 58.0)), 1.0, "liver")


def test_candidate_detection_with_physiological_mask():
    x, y, z = grid()
    values = np.full(x.shape, 1.0)
    hot_a = sphere(x, y, z, (-30.0, 0.0, 0.0), 6.0)
    hot_b = sphere(x, y, z, (30.0, 0.0, 0.0), 8.0)
    values[hot_a] = 15.0
    values[hot_b] = 9.0
    liver = ReferenceStats(mean=4.0, sd=0.4, max=5.0, median=4.0, voxels=100)
    found = detect(volume_of(values), liver)
    assert [c.candidate_id for c in found] == ["C001", "C002"] and found[0].suv_max == 15.0
    assert found[1].voxels == hot_b.sum() and found[1].tl_ratio == pytest.approx(9.0 / 4.0)
    flagged = detect(volume_of(values), liver, organs=hot_b)
    assert [c.physiological for c in flagged] == [False, True]


# -- classifier ----------------------------------------------------------------------------------------

def test_classifier_rule_and_youden():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.model_selection import cross_val_score

    X = {"suv_max": np.array([3.0, 6.0, 7.0, 8.0, 12.0, 20.0]), "liver_suv_mean": np.full(6, 6.8)}
    y = np.array([0, 0, 1, 0, 1, 1])
    rule = LiverThresholdClassifier().fit(X)
    assert list(rule.predict(X)) == [0, 0, 1, 1, 1, 1] and rule.cutoff_ == 1.0
    learned = LiverThresholdClassifier().fit(X, y)
    # ratios 0.88 (neg) 1.03 (pos) 1.18 (neg) 1.76 (pos): J = 2/3 both between 0.88 and 1.03 and between
    # 1.18 and 1.76; the tie goes to the lower, more sensitive cut-off
    assert learned.cutoff_ == pytest.approx((6.0 / 6.8 + 7.0 / 6.8) / 2)
    assert list(learned.predict(X)) == [0, 0, 1, 1, 1, 1]
    strict = LiverThresholdClassifier().fit(X, np.array([0, 0, 1, 0, 1, 1]) * 0 + np.array([0, 0, 0, 0, 1, 1]))
    assert strict.cutoff_ == pytest.approx((8.0 / 6.8 + 12.0 / 6.8) / 2)
    with pytest.raises(NotFittedError, match="protocol rule"):
        LiverThresholdClassifier().predict(X)
    import pandas as pd

    frame = pd.DataFrame({"suv_max": np.tile(X["suv_max"], 5), "liver_suv_mean": 6.8})
    scores = cross_val_score(LiverThresholdClassifier(), frame, np.tile(y, 5), cv=5)
    assert scores.shape == (5,)
    assert clone(learned).get_params() == learned.get_params()
    again = LiverThresholdClassifier.from_json(learned.to_json())
    assert again.cutoff_ == learned.cutoff_ and list(again.predict(X)) == list(learned.predict(X))
    with pytest.raises(ValueError, match="not a NETPET"):
        LiverThresholdClassifier.from_json('{"format": "pickle"}')
    assert youden_cutoff(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])) == 2.5


@pytest.mark.parametrize("suv,expected", [(2.0, 0), (4.0, 1), (6.8, 2), (7.4, 2), (10.0, 3), (21.0, 4)])
def test_krenning_score(suv, expected):
    assert krenning_score(suv, liver=6.8, spleen=18.5, background=1.8) == expected


def test_krenning_without_spleen_tops_at_three():
    assert krenning_score(40.0, liver=6.8) == 3


def test_noise_maximum_band_matches_simulated_maxima():
    """The band of SUVmax that uniform tissue reaches by noise alone: for n independent samples the
    2.5th/97.5th percentiles of the maximum, checked against 200,000 simulated maxima (the Monte
    Carlo error of a tail percentile is about 0.01 SD here, so 0.03 SD is allowed)."""
    from netpet.quant.classify import noise_maximum_band

    rng = np.random.default_rng(7)
    low, high, n = noise_maximum_band(6.8, 0.85, None, 1.0, 1.0)  # one voxel, no correlation: +-1.96 SD
    assert n == 1.0 and low == pytest.approx(6.8 - 1.959964 * 0.85, abs=1e-5) and high == pytest.approx(6.8 + 1.959964 * 0.85, abs=1e-5)
    # 3 mL, voxel SD 0.85 and 1 mL-mean SD 0.44: (0.85/0.44)^2 = 3.73 independent samples per mL
    low, high, n = noise_maximum_band(6.8, 0.85, 0.44, 3.0, 0.048)
    assert n == pytest.approx(3.0 * (0.85 / 0.44) ** 2)
    maxima = 6.8 + 0.85 * rng.standard_normal((200_000, 11)).max(axis=1)  # n rounds to 11 samples
    assert low == pytest.approx(np.percentile(maxima, 2.5), abs=0.03 * 0.85 + 0.85 * 0.02)
    assert high == pytest.approx(np.percentile(maxima, 97.5), abs=0.03 * 0.85 + 0.85 * 0.02)
    # never more samples than voxels
    assert noise_maximum_band(6.8, 0.85, 0.01, 1.0, 0.5)[2] == 2.0


def test_liver_call_and_krenning_always_agree():
    from netpet.quant.classify import liver_call

    rng = np.random.default_rng(3)
    for _ in range(2000):
        liver_mean = rng.uniform(1.0, 10.0)
        verdict = liver_call(rng.uniform(0.1, 40.0), rng.uniform(0.1, 30.0), 0.064, liver_mean, rng.uniform(0.05, 2.0),
                             rng.uniform(0.02, 1.0), (liver_mean * 2.7, 1.0, 0.5) if rng.uniform() < 0.5 else None,
                             bool(rng.uniform() < 0.7), rng.uniform(0.2, 3.0) if rng.uniform() < 0.5 else None)
        expected = {0: "negative", 1: "negative", 2: "equivocal", 3: "positive", 4: "positive"}[verdict.krenning]
        assert verdict.call == expected
        assert verdict.low <= verdict.high


def test_liver_call_grades():
    from netpet.quant.classify import liver_call

    # liver 6.8, voxel SD 0.8, 1 mL SD 0.4: a 2 mL lesion holds 8 independent samples
    band = liver_call(7.5, 2.0, 0.064, 6.8, 0.8, 0.4)
    assert band.independent == pytest.approx(8.0)
    assert band.call == "equivocal" and band.krenning == 2 and band.low < 7.5 < band.high
    assert liver_call(band.high + 0.01, 2.0, 0.064, 6.8, 0.8, 0.4).call == "positive"
    assert liver_call(band.low - 0.01, 2.0, 0.064, 6.8, 0.8, 0.4).krenning == 1
    assert liver_call(30.0, 2.0, 0.064, 6.8, 0.8, 0.4, spleen=(18.5, 1.5, 0.7)).krenning == 4
    assert liver_call(19.0, 2.0, 0.064, 6.8, 0.8, 0.4, spleen=(18.5, 1.5, 0.7)).krenning == 3  # within the spleen's band
    # not separable: never above "equal to liver", and 0 when not above its background
    assert liver_call(30.0, 1.0, 0.064, 6.8, 0.8, 0.4, separable=False).call == "equivocal"
    assert liver_call(1.0, 1.0, 0.064, 6.8, 0.8, 0.4, separable=False, background=1.2).krenning == 0
    assert liver_call(30.0, 2.0, 0.064, 6.8, 0.8, 0.4, krenning=False).krenning is None
    with pytest.raises(ValueError, match="positive liver SUVmean"):
        liver_call(5.0, 1.0, 0.064, 0.0, 0.8)
