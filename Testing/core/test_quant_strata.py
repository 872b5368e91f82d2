"""Lesion measurement where it used to go wrong: the teaching cases (every stratum, the liver-threshold
lesson), realistic NEMA IEC phantoms (OSEM like EARL1 and EARL2 systems), neighbours, organs and bone
the lesion sits in, reader-placed backgrounds, and the image properties the segmentation measures."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy import ndimage

from netpet.geometry import lps_to_ras
from netpet.quant import references
from netpet.quant.evaluate import evaluate_reference_study, format_summary, summarize
from netpet.quant.pipeline import LesionRequest, Session, quantify
from netpet.quant.segment import LOCAL_SIGMA_MM, SegmentOptions, noise_correlation, outline_sigma, segment
from netpet.quant.volume import SUVVolume


@pytest.fixture(scope="module")
def teaching_cases(tmp_path_factory):
    from netpet.phantom import generate_case
    from netpet.phantom.cases import CASES

    root = tmp_path_factory.mktemp("teaching-cases")
    folders = {}
    for name in CASES:
        generate_case(str(root / name), name)
        folders[name] = root / name
    return folders


def test_liver_threshold_case_teaches_its_lesson(teaching_cases, tmp_path):
    """CASE.md: the lesions with tumour/liver ratio 0.6 and 1.0 are not above the liver; 1.6 and 3.5
    are (the last above the spleen). Before, clicks on the first two flooded the liver (206-357 mL)
    and were called positive; now they are not separable and not positive, and StudyStats counts
    them as the classifier's false negatives."""
    folder = teaching_cases["liver-threshold"]
    records = {r["lesion"].split("/")[-1]: r for r in evaluate_reference_study(str(folder))}
    with open(folder / "truth" / "lesions.csv", newline="") as handle:
        truth = {r["lesion_id"]: r for r in csv.DictReader(handle)}
    by_ratio = {float(truth[k]["tl_ratio_true"]): records[k] for k in truth if truth[k]["region"] == "liver"}
    assert by_ratio[0.6]["status"] == "not separable" and by_ratio[0.6]["call"] == "negative"
    assert by_ratio[1.0]["status"] == "not separable" and by_ratio[1.0]["call"] == "equivocal"
    assert by_ratio[1.6]["call"] == "positive" and by_ratio[3.5]["call"] == "positive"
    assert all(r["status"] == "segmented" for ratio, r in by_ratio.items() if ratio > 1.0)
    assert not any(r["flood"] for r in records.values())
    # through the command line and StudyStats: the two lesions are false negatives, not true positives
    from netpet.cli.main import main

    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s",
                         "region"])
        for row in truth.values():
            series = folder / "dicom" / row["patient_id"] / row["session_id"] / "PET"
            writer.writerow([row["patient_id"], row["session_id"], str(series), "R1", row["lesion_id"], row["center_r"],
                             row["center_a"], row["center_s"], row["region"]])
    table = tmp_path / "table.csv"
    assert main(["quantify", str(manifest), "--table", str(table), "--jobs", "1"]) == 0
    out = tmp_path / "stats"
    assert main(["stats", str(table), "--reference", str(folder / "reference_standard.csv"), "--out", str(out),
                 "--no-figures", "--bootstrap", "50"]) == 0
    with open(out / "false-findings.csv", newline="") as handle:
        false = {r["lesion_id"]: r for r in csv.DictReader(handle)}
    low = {k for k in truth if truth[k]["region"] == "liver" and float(truth[k]["tl_ratio_true"]) <= 1.0}
    assert low <= set(false) and all(false[k]["kind"].lower().startswith("false neg") or "negative" in
                                     false[k]["kind"].lower() for k in low), false


def test_teaching_cases_every_stratum_without_a_flood(teaching_cases):
    records = []
    for name, folder in teaching_cases.items():
        for record in evaluate_reference_study(str(folder)):
            record["strata"].append(f"case {name}")
            records.append(record)
    summary = summarize(records)
    print(format_summary(summary, "teaching cases"))
    assert all(s["floods"] == 0 for s in summary), summary
    strata = {s["stratum"]: s for s in summary}
    assert {"avid", "non-avid", "benign", "borderline", "liver-cold-iso", "bone"} <= set(strata)
    # measured 0.85 / 0.92 on the cases; the margin is for other numpy/scipy versions
    assert strata["avid"]["median_dice"] >= 0.8 and strata["bone"]["median_dice"] >= 0.75
    # the small TIO culprit in the sole of the foot is found on DOTATATE and segmented
    tio = [r for r in records if "case tio-foot-fdg-negative" in r["strata"] and "DOTATATE" in r["lesion"]]
    assert tio and all(r["status"] == "segmented" for r in tio)


NEMA_SEEDS = (20, 21)  # held out: the adaptive calibrations were measured on realisations 0-19


@pytest.fixture(scope="module")
def nema_errors():
    """Signed volume errors of the adaptive method on every sphere of realistic NEMA phantoms: the
    phantom as built (1 mm cold sphere walls) measured with the calibration for such spheres
    (``cold_walls``) and with the default one for lesions, and the same phantom with wall-less
    spheres measured with the default."""
    from netpet.phantom.nema import nema_phantom

    errors = {}
    for walls in (1.0, 0.0):
        for recon in ("earl1", "earl2"):
            for contrast in (4.0, 8.0):
                for seed in NEMA_SEEDS:
                    phantom = nema_phantom(contrast, recon=recon, seed=seed, sphere_wall_mm=walls)
                    volume = SUVVolume.from_image(phantom.image)
                    for sphere in phantom.spheres:
                        for cold_walls in ((True, False) if walls else (False,)):
                            lesion = segment(volume, sphere["center_ras"], SegmentOptions(cold_walls=cold_walls))
                            error = (lesion.voxels * volume.voxel_ml / sphere["volume_ml"] - 1.0) if lesion.separable else None
                            errors[(walls, cold_walls, recon, contrast, seed, sphere["diameter_mm"])] = error
    return errors


def _check_nema(errors):
    table = {}
    for (recon, contrast, seed, diameter), error in sorted(errors.items()):
        table.setdefault((recon, contrast), []).append(f"{diameter:.0f}:{'n/s' if error is None else f'{error:+.0%}'}")
    for key, cells in table.items():
        print(key, " ".join(cells))
    assert all(e is not None for e in errors.values())
    big = [abs(e) for (r, c, s, d), e in errors.items() if d >= 22]
    seventeen = [abs(e) for (r, c, s, d), e in errors.items() if d == 17]
    assert max(big) <= 0.10, big
    assert max(seventeen) <= 0.30, seventeen
    assert float(np.median([abs(e) for e in errors.values()])) < 0.08
    assert all(e < 2.0 for (r, c, s, d), e in errors.items() if d >= 13)


def test_nema_volumes_on_realistic_reconstructions(nema_errors):
    """The adaptive method on OSEM reconstructions calibrated to EARL1 and EARL2 (recovery
    coefficients inside the accreditation bands, Testing/core/test_nema_recon.py), 4:1 and 8:1, two
    held-out noise realisations, spheres in 1 mm cold walls measured with ``cold_walls``: every
    sphere >= 22 mm within 10 %, 17 mm within 30 % (a 2.6 mL sphere's volume is noise at these
    counts: over 20 realisations of EARL1-like 4:1 it reads -20 % to +28 %, sd 14 %, and even the
    threshold that is exact on average reads -14 % to +21 %: benchmarks/nema_precision.py), median
    |error| over all spheres < 8 %, no sphere of 13 mm or more read over 3 x its volume, and every
    sphere found."""
    _check_nema({key[2:]: e for key, e in nema_errors.items() if key[0] and key[1]})


def test_lesion_calibration_on_wall_less_spheres(nema_errors):
    """The default calibration is for lesions, which have no wall: the same phantom with wall-less
    spheres meets the same bounds as the walled one with its own calibration."""
    _check_nema({key[2:]: e for key, e in nema_errors.items() if not key[0]})


def test_cold_walls_read_smaller_with_the_lesion_calibration(nema_errors):
    """On spheres in cold walls the default (lesion) calibration takes a higher fraction than the
    cold-wall one at every size from 17 mm (the walls pull the blurred edge inwards: Hofheinz F et
    al., Phys Med Biol 2010;55:1099), so it reads each such sphere no larger, and smaller on
    average, more so at 4:1 than at 8:1."""
    def mean(contrast, cold_walls):
        return float(np.mean([e for (w, cw, r, c, s, d), e in nema_errors.items()
                              if w and cw == cold_walls and c == contrast and d >= 17]))

    for (w, cw, r, c, s, d), e in nema_errors.items():
        if w and cw and d >= 17:
            assert nema_errors[(w, False, r, c, s, d)] <= e + 1e-9
    # over 20 realisations (benchmarks/nema_precision.py) the lesion calibration reads walled 17-37 mm
    # spheres at 4:1 3.3-9.7 points smaller than cold_walls, 5.5 on average; 3 points leaves room for
    # the noise of two realisations
    assert mean(4.0, False) < mean(4.0, True) - 0.03
    assert mean(4.0, True) - mean(4.0, False) > mean(8.0, True) - mean(8.0, False)


def _grid(shape=(61, 61, 61), spacing=2.0):
    """[z, y, x] LPS coordinates (mm) of a grid centred on the origin."""
    axes = [(np.arange(n) - (n - 1) / 2.0) * spacing for n in shape]
    return np.meshgrid(*axes, indexing="ij")


def _volume(values, spacing=2.0):
    n = values.shape
    origin = tuple(-(m - 1) / 2.0 * spacing for m in n[::-1])
    return SUVVolume(values.astype(np.float32), origin, (spacing,) * 3)


def test_a_small_lesion_next_to_a_hotter_one_keeps_its_own_peak():
    """A click on a small lesion (SUV 5) 11 mm from a hotter one (SUV 12): the climb from the click
    ends at the small lesion's own maximum (the old 10 mm search radius moved it to the neighbour's)."""
    z, y, x = _grid()
    values = np.full(z.shape, 1.0)
    values[(x - 0.0) ** 2 + y ** 2 + z ** 2 <= 4.0 ** 2] = 5.0
    values[(x - 11.0) ** 2 + y ** 2 + z ** 2 <= 5.0 ** 2] = 12.0
    values = ndimage.gaussian_filter(values, 1.0)
    volume = _volume(values)
    lesion = segment(volume, lps_to_ras((0.0, 0.0, 0.0)))
    peak = np.array(lesion.peak) - (np.array(values.shape) - 1) / 2.0
    assert np.linalg.norm(peak * 2.0) <= 2.0 + 1e-9  # within a voxel of the small lesion's centre
    assert lesion.suv_max < 6.0
    assert not lesion.full(values.shape)[:, :, 33:].any()  # nothing of the neighbour (x >= 6 mm, where it begins)


def test_a_lesion_in_an_organ_uses_the_organ_as_its_background():
    """A 16 mm lesion (SUV 14) inside a large organ of SUV 6 in soft tissue of SUV 1: the background
    of the adaptive threshold is the organ it sits in (flag "embedded"), so the lesion does not take
    the organ with it; its volume is within 25 % (the blur of sigma 3 mm on a 2 mm grid), and the
    background within 10 % of the organ's 6.0 (the saddle less one noise SD, 5 % here, is taken)."""
    z, y, x = _grid((81, 81, 81))
    values = np.full(z.shape, 1.0)
    organ = (x / 13.0) ** 2 + (y / 70.0) ** 2 + (z / 70.0) ** 2 <= 1.0  # a slab: the shell reaches beyond it
    values[organ] = 6.0
    lesion_mask = x ** 2 + y ** 2 + z ** 2 <= 8.0 ** 2
    values[lesion_mask] = 14.0
    values = ndimage.gaussian_filter(values, 1.5) * (1 + 0.05 * np.random.default_rng(5).standard_normal(z.shape))
    volume = _volume(values)
    lesion = segment(volume, (0.0, 0.0, 0.0))
    assert lesion.status == "segmented" and "embedded" in lesion.flags
    assert lesion.background == pytest.approx(6.0, rel=0.1)
    assert lesion.voxels == pytest.approx(lesion_mask.sum(), rel=0.25)


def test_reader_placed_and_normal_bone_backgrounds():
    """T/B against a background point (a sphere of the given diameter there) and against normal bone
    around a bone lesion; a bone lesion measured against soft tissue says so."""
    z, y, x = _grid((61, 61, 61))
    values = np.full(z.shape, 0.8)
    bone = np.abs(x) <= 25.0  # a slab of bone (marrow SUV 2.5) through the middle
    values[bone] = 2.5
    values[x ** 2 + y ** 2 + z ** 2 <= 6.0 ** 2] = 12.0
    values = ndimage.gaussian_filter(values, 1.2)
    volume = _volume(values)
    session = Session(volume, "P", "S", "PET/CT", "dotatate")
    point = lps_to_ras((0.0, 40.0, 40.0))
    result = quantify(session, [LesionRequest("L1", (0.0, 0.0, 0.0), "bone", point, "shell", 10.0)], "R",
                      liver_ras=lps_to_ras((-45.0, -45.0, 0.0)))
    row = result.rows[0]
    expected = references.background_point(volume, point, 10.0)
    assert row["background_source"] == "point"
    assert row["background_suv_mean"] == pytest.approx(expected.mean)
    assert row["tb_ratio"] == pytest.approx(row["suv_max"] / expected.mean)
    # normal bone around the lesion: the marrow, not the soft tissue
    lesion = result.lesions["L1"]
    marrow = references.background_bone(volume, lesion, bone)
    assert marrow.mean == pytest.approx(2.5, rel=0.05)
    # the default shell for a lesion in the bone region is flagged
    shell = quantify(session, [LesionRequest("L1", (0.0, 0.0, 0.0), "bone")], "R",
                     liver_ras=lps_to_ras((-45.0, -45.0, 0.0))).rows[0]
    assert "soft-tissue-background" in shell["flags"] and "normal-bone background" in shell["warnings"]
    # a normal-bone background without a CT (an SUV image): the row says why T/B is missing
    no_ct = quantify(session, [LesionRequest("L1", (0.0, 0.0, 0.0), "bone", None, "bone")], "R",
                     liver_ras=lps_to_ras((-45.0, -45.0, 0.0))).rows[0]
    assert "no-background" in no_ct["flags"] and "needs the session's CT" in no_ct["warnings"]
    assert "tb_ratio" not in no_ct


def _cylinder(sigma_mm: float, voxel_mm: int) -> np.ndarray:
    """An elliptic cylinder (SUV 2) blurred by ``sigma_mm`` on a 1 mm grid, then averaged over
    ``voxel_mm`` cubes, as a scanner's voxels average the blurred activity."""
    fine = np.zeros((120, 200, 200), dtype=np.float32)
    zz, yy, xx = np.meshgrid(*(np.arange(n) - n / 2.0 for n in fine.shape), indexing="ij")
    fine[(xx / 70.0) ** 2 + (yy / 55.0) ** 2 <= 1.0] = 2.0
    blurred = ndimage.gaussian_filter(fine, sigma_mm)
    n = voxel_mm
    return blurred.reshape(120 // n, n, 200 // n, n, 200 // n, n).mean(axis=(1, 3, 5))


@pytest.mark.parametrize("voxel_mm", [2, 4])
@pytest.mark.parametrize("sigma_mm", [2.0, 3.0, 4.0])
def test_image_resolution_is_measured_on_the_body_outline(sigma_mm, voxel_mm):
    """The outline of a uniform cylinder blurred by sigma and averaged over voxels of side h has the
    Gaussian width sqrt(sigma^2 + h^2 / 12) (the voxel's box adds its variance). Measured within
    -3.2 % to +4.1 % over these six images; 5 % allowed. (Linear interpolation along the profiles,
    used before, read 23 % high for sigma 2 mm on 4 mm voxels.)"""
    coarse = _cylinder(sigma_mm, voxel_mm)
    volume = SUVVolume(coarse, (0.0, 0.0, 0.0), (float(voxel_mm),) * 3)
    assert outline_sigma(volume) == pytest.approx(math.sqrt(sigma_mm ** 2 + voxel_mm ** 2 / 12.0), rel=0.05)


def test_noise_correlation_is_measured():
    """Uncorrelated noise: a voxel departs from its 1 mL local mean (Gaussian weights w, w0 its own)
    with SD sigma x sqrt(1 - 2 w0 + sum w^2), so the factor is 1 / that (1.20 on 4 mm voxels); the
    estimator reads it 1.7-5.3 % high over 12 noise seeds, 8 % allowed. Noise smoothed over 1.5
    voxels keeps more than the local mean takes: factor above 1.5."""
    coarse = _cylinder(3.0, 4)
    body = coarse > 1.0
    delta = np.zeros((21, 21, 21), dtype=np.float32)
    delta[10, 10, 10] = 1.0
    weights = ndimage.gaussian_filter(delta, LOCAL_SIGMA_MM / 4.0)
    uncorrelated = 1.0 / math.sqrt(1.0 - 2.0 * float(weights[10, 10, 10]) + float((weights ** 2).sum()))
    rng = np.random.default_rng(3)
    white = np.where(body, 2.0 + 0.2 * rng.standard_normal(coarse.shape), 0.0).astype(np.float32)
    assert noise_correlation(SUVVolume(white, (0.0, 0.0, 0.0), (4.0, 4.0, 4.0))) == pytest.approx(uncorrelated, rel=0.08)
    smooth_noise = ndimage.gaussian_filter(rng.standard_normal(coarse.shape), 1.5)
    smooth = np.where(body, 2.0 + 0.2 * smooth_noise / smooth_noise.std(), 0.0).astype(np.float32)
    assert noise_correlation(SUVVolume(smooth, (0.0, 0.0, 0.0), (4.0, 4.0, 4.0))) > 1.5


def test_a_necrotic_lesion_clicked_in_its_cold_centre_is_segmented():
    """A 30 mm lesion with a cold necrotic centre, clicked in the centre: the climb reaches its rim,
    the ring of uptake is segmented without the necrosis (which is not metabolically active tumour
    volume), and the ring with its hole filled contains the click. Its volume lies between the
    ring's true volume and 1.5 x it (measured 1.41 x: a blur of sigma 3 mm thickens a ring 8 mm
    thick on both faces, as it swells NEMA spheres smaller than 2.5 x the FWHM)."""
    z, y, x = _grid()
    r = np.sqrt(x ** 2 + y ** 2 + z ** 2)
    values = np.full(z.shape, 1.0)
    values[r <= 15.0] = 10.0
    values[r <= 7.0] = 2.0
    values = ndimage.gaussian_filter(values, 1.5)
    lesion = segment(_volume(values), (0.0, 0.0, 0.0), SegmentOptions())
    assert lesion.status == "segmented", lesion.notes
    mask = lesion.full(values.shape)
    centre = (30, 30, 30)
    assert not mask[centre] and ndimage.binary_fill_holes(mask)[centre]
    ring = int((r <= 15.0).sum() - (r <= 7.0).sum())
    assert ring <= lesion.voxels <= 1.5 * ring


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_large_necrotic_liver_metastasis_open_on_one_side_is_segmented(seed):
    """A 40 mm liver metastasis (rim SUV 12) in liver of SUV 6.8, its necrotic core (SUV 3.3, half
    the radius) reaching the surface through a 6 mm channel, noise of 12 % (liver COV of clinical
    scans), clicked in the cold centre: the rim is not a closed shell, so the centre is no hole to
    fill, and the noisy hot spots along the rim are not competing lesions. It is segmented (it was
    'not separable, nothing focal at the click' before, the rim cut at a watershed between its own
    hot spots), the necrosis left out. Its volume reads 13-27 % below the viable rim's over these seeds
    (measured -15, -27, -13 %): the threshold is a fraction of SUVpeak, which 12 % noise lifts on a rim
    only 10 mm thick (the noise limit also seen on 17 mm NEMA spheres, issue 10); held to -35..+10 %, so
    that a flood into the liver or a collapse to a hot spot fails."""
    z, y, x = _grid((61, 61, 61), 2.0)
    r = np.sqrt(x ** 2 + y ** 2 + z ** 2)
    body = np.full(z.shape, 6.8)
    lesion_mask = r <= 20.0
    core = (r <= 10.0) | ((np.abs(y) <= 3.0) & (np.abs(z) <= 3.0) & (x > 0) & lesion_mask)
    body[lesion_mask] = 12.0
    body[core] = 3.3
    values = ndimage.gaussian_filter(body, 1.5)
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal(values.shape), 0.7)
    values = values * (1.0 + 0.12 * noise / noise.std())
    lesion = segment(_volume(values), (0.0, 0.0, 0.0), SegmentOptions())
    assert lesion.status == "segmented", lesion.notes
    mask = lesion.full(values.shape)
    assert not mask[30, 30, 30]  # the necrotic centre is not metabolic tumour volume
    viable = int((lesion_mask & ~core).sum())
    assert 0.65 * viable <= lesion.voxels <= 1.10 * viable


def test_a_lesion_in_an_image_cropped_around_it_is_segmented():
    """Images cropped tightly around a tumour (as radiomics collections store them): the crop's edge
    says nothing about what lies beyond, so a lesion reaching it is not taken for tissue it sits in.
    Its volume within 15 % (measured +8 %: a blur of sigma 2.4 mm on a 32 mm ball; NEMA spheres of 22 mm
    and more are held to 10 %, and the crop leaves the background only a thin shell)."""
    z, y, x = _grid((21, 21, 21))
    values = np.full(z.shape, 1.0)
    values[x ** 2 + y ** 2 + z ** 2 <= 16.0 ** 2] = 12.0  # reaches within 4 mm of the crop's faces
    values = ndimage.gaussian_filter(values, 1.2)
    lesion = segment(_volume(values), (0.0, 0.0, 0.0))
    assert lesion.status == "segmented", lesion.notes
    assert lesion.voxels == pytest.approx(int((x ** 2 + y ** 2 + z ** 2 <= 16.0 ** 2).sum()), rel=0.15)
