"""SUVQuantLogic's click in three steps, as an application with live views runs it: ``preparePET`` (main thread,
kept per node), ``computeLesion`` (the core only: a worker thread), ``writeLesion`` (main thread, MRML);
``segmentAt`` is the three in a row, and ``warmUp`` measures the per-volume quantities before the first click.

The per-volume quantities (body level, outline sigma, noise correlation) are kept on the core's SUVVolume with
the fingerprint of its content (netpet.quant.segment.per_volume): results are the same, bit for bit, with and
without them kept, and a change of the values measures them again.
"""

import concurrent.futures
import dataclasses
import importlib

import numpy as np
import pytest

import slicer
from netpet.quant.volume import SUVVolume

core = importlib.import_module("netpet.quant.segment")  # the module (netpet.quant.segment is also a function's name)

#: the per-volume quantities a click needs (what warm_up measures)
PER_VOLUME = {"body_level", "outline_sigma", "noise_correlation"}




def _segmentation(name="lesions"):
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    return node


def _same(a, b):
    """Two LesionMasks equal in every field, floats bit for bit (NaN equal to NaN)."""
    assert a.box == b.box and a.peak == b.peak and np.array_equal(a.mask, b.mask)
    for name in ("suv_max", "threshold", "background", "peak_shift_mm", "contrast_to_noise"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or np.array_equal(np.float64(x), np.float64(y), equal_nan=True), name
    assert (a.method, a.status, a.flags, a.notes) == (b.method, b.status, b.flags, b.notes)


def _fresh(volume):
    """A new SUVVolume with a copy of the values: nothing measured on it yet."""
    return SUVVolume(volume.values.copy(), volume.origin, volume.spacing, volume.direction, volume.name)


def _kept(volume):
    return set(volume.__dict__.get(core._PER_VOLUME, (None, {}))[1])


def test_segment_at_is_prepare_compute_write(synthetic):
    logic, pet, ras = synthetic
    one, two = _segmentation("one"), _segmentation("two")
    expected = logic.segmentAt(pet, ras("H1"), one, "H1")
    prepared = logic.preparePET(pet)
    lesion = logic.computeLesion(prepared, ras("H1"))
    assert logic.writeLesion(pet, two, "H1", lesion, ras("H1")) == "H1"
    _same(lesion, expected)
    assert np.array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(one, "H1", pet),
                          slicer.util.arrayFromSegmentBinaryLabelmap(two, "H1", pet))
    tags = lambda node: {k: logic.segmentRecord(node.GetSegmentation().GetSegment("H1")).get(k)  # noqa: E731
                         for k in ("digest", "method", "threshold_suv", "seed_ras", "notes")}
    assert tags(one) == tags(two) and tags(one)["digest"]
    # a click where nothing is separable leaves the segment as it is, and says so by returning None
    before = slicer.util.arrayFromSegmentBinaryLabelmap(two, "H1", pet).copy()
    flat = logic.computeLesion(prepared, ras("flatLiver"))
    assert not flat.separable and logic.writeLesion(pet, two, "H1", flat, ras("flatLiver")) is None
    assert np.array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(two, "H1", pet), before)
    # the liver methods need the liver reference, as segmentAt does
    liver = logic.computeLesion(prepared, ras("H1"), "liver-percist", liverRAS=ras("liverReference"))
    _same(liver, logic.segmentAt(pet, ras("H1"), one, "H1", "liver-percist", liverRAS=ras("liverReference")))


def test_prepared_pet_is_kept_per_node_until_its_content_changes(synthetic):
    logic, pet, ras = synthetic
    prepared = logic.preparePET(pet)
    assert type(logic)().preparePET(pet) is prepared  # one per node, whichever logic asks
    assert not prepared.values.flags.writeable  # a copy nobody changes under a worker thread
    with pytest.raises(ValueError):
        prepared.values[0, 0, 0] = 1.0
    array = slicer.util.arrayFromVolume(pet)
    assert not np.shares_memory(array, prepared.values)
    # the voxels change in place (as an editor does): prepared again, with the new values
    array[:] *= 2.0
    slicer.util.arrayFromVolumeModified(pet)
    changed = logic.preparePET(pet)
    assert changed is not prepared and np.array_equal(changed.values, array)
    assert np.array_equal(changed.values, 2.0 * prepared.values)
    # so does the geometry
    pet.SetSpacing(3.0, 3.0, 3.0)
    moved = logic.preparePET(pet)
    assert moved is not changed and moved.spacing == (3.0, 3.0, 3.0)
    assert logic.preparePET(pet) is moved
    with pytest.raises(ValueError, match="Select a PET volume"):
        logic.preparePET(None)


def test_compute_lesion_runs_in_a_worker_thread_without_the_scene(synthetic, monkeypatch):
    logic, pet, ras = synthetic
    prepared = logic.preparePET(pet)
    expected = logic.computeLesion(_fresh(prepared), ras("H1"))
    monkeypatch.setattr(slicer, "mrmlScene", None)  # no MRML in the worker
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        lesions = list(pool.map(lambda point: logic.computeLesion(prepared, point), [ras("H1"), ras("H1")]))
    for lesion in lesions:
        _same(lesion, expected)


def test_warm_up_measures_before_the_first_click(synthetic, monkeypatch):
    logic, pet, ras = synthetic
    prepared = logic.warmUp(pet)
    assert prepared is logic.preparePET(pet) and _kept(prepared) == PER_VOLUME
    expected = core.segment(_fresh(prepared), ras("H1"))

    def measured(volume):
        raise AssertionError("a per-volume quantity was measured again on the click")

    for name in ("_outline_sigma", "_noise_correlation", "_measure_body_level"):
        monkeypatch.setattr(core, name, measured)
    _same(logic.segmentAt(pet, ras("H1"), _segmentation(), "H1"), expected)


def test_per_volume_cache_gives_the_same_results_bit_for_bit(synthetic):
    logic, pet, ras = synthetic
    volume = _fresh(logic.preparePET(pet))
    points = [ras(key) for key in ("H1", "E1", "flatLiver")]
    first = [core.segment(volume, point) for point in points]  # measured on the first, kept after
    assert _kept(volume) == PER_VOLUME
    for point, kept in zip(points, first):
        _same(core.segment(volume, point), kept)  # from the cache
        _same(core.segment(_fresh(volume), point), kept)  # measured anew
    for name, function in (("outline_sigma", core.outline_sigma), ("noise_correlation", core.noise_correlation),
                           ("body_level", core._body_level)):
        assert function(volume) == function(_fresh(volume)), name


def test_a_change_of_the_values_measures_the_per_volume_quantities_again(synthetic):
    logic, pet, ras = synthetic
    volume = _fresh(logic.preparePET(pet))
    level, factor = core._body_level(volume), core.noise_correlation(volume)
    fingerprint = core.volume_fingerprint(volume)
    # in place: the same array object, other values (a smoother, brighter image)
    from scipy import ndimage

    volume.values[:] = 1.5 * ndimage.gaussian_filter(volume.values, 1.5)
    assert core.volume_fingerprint(volume) != fingerprint
    assert core._body_level(volume) == core._body_level(_fresh(volume)) != level
    assert core.noise_correlation(volume) == core.noise_correlation(_fresh(volume)) != factor
    _same(core.segment(volume, ras("H1")), core.segment(_fresh(volume), ras("H1")))
    # a single voxel changes the fingerprint too; so does the spacing
    fingerprint = core.volume_fingerprint(volume)
    volume.values[3, 4, 5] += 0.001
    assert core.volume_fingerprint(volume) != fingerprint
    assert core.volume_fingerprint(dataclasses.replace(volume, spacing=(1.0, 1.0, 1.0))) != \
        core.volume_fingerprint(volume)


def test_compute_lesion_takes_the_threshold_fraction_as_the_core_does(synthetic):
    """``fraction`` reaches the core's SegmentOptions: the same mask as the core with that fraction, and a higher
    fraction never gives a larger region (a fixed-fraction threshold grows with the fraction)."""
    logic, pet, ras = synthetic
    prepared = logic.preparePET(pet)
    loose = logic.computeLesion(prepared, ras("H1"), "fixed41", fraction=0.3)
    tight = logic.computeLesion(prepared, ras("H1"), "fixed41", fraction=0.7)
    direct = core.segment(prepared, tuple(ras("H1")), core.SegmentOptions(method="fixed41", fraction=0.7), None, (),
                          None)
    _same(tight, direct)
    assert tight.threshold > loose.threshold and tight.mask.sum() <= loose.mask.sum()
    assert logic.computeLesion(prepared, ras("H1"), "fixed41").threshold != tight.threshold
