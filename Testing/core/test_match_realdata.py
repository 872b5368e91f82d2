"""NETPET's registration on a real pair: the CT of a PET/CT session against an MR of another session.

Data: Testing/data/STS_001_registration (TCIA Soft-tissue-Sarcoma STS_001, CC BY 3.0; see its
README.md): the thigh CT of the PET/CT session (fixed), the T1 MR of an earlier MR study in another
frame of reference (moving), both about 4 mm isotropic, and the truth transform: the raw MR registered
mono-modally to the same MR after the collection's curators resampled it onto the PET/CT frame
(correlation 0.98 after resampling, forward and backward registrations within 0.23 mm; the curators'
alignment itself agrees with the CT femur to about 5 mm, judged by eye on four slices).

What real data shows that the synthetic reference study does not: the hip is flexed about 35 degrees
in the PET/CT and straight in the MR. NETPET's rigid registration (Mattes MI, geometry or moments
initialisation, 15-degree rotation gate) refuses this pair, and its transform would be 14-25 mm off
(mean target error) if it did not; mutual information does not peak at the reference here (README.md
has the figures). These tests pin that down: a refusal, never a silent wrong transform; and
an expected failure that turns into a pass, to be updated, when the registration learns such pairs.
"""

import math
import os

import numpy as np
import pytest
import SimpleITK as sitk

import netpet.match.registration as registration
from netpet.match.registration import RegistrationError, SessionImages, register_sessions

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "STS_001_registration")
#: One PET voxel of this study (4.69 mm in plane): the error below which a lesion's mapped centre stays
#: within the voxel it belongs to; the truth itself is good to about 5 mm (the curators' alignment).
TOLERANCE_MM = 4.7


def _read(name):
    return sitk.Cast(sitk.ReadImage(os.path.join(DATA, name)), sitk.sitkFloat32)


@pytest.fixture(scope="module")
def pair():
    ct, mr = _read("ct_fixed.nrrd"), _read("mr_moving.nrrd")
    truth = sitk.Euler3DTransform(sitk.ReadTransform(os.path.join(DATA, "truth_ct_to_mr.tfm")))
    # target points: the body in the CT (above -500 HU) that the truth maps inside the MR
    array = sitk.GetArrayViewFromImage(ct)
    points = []
    for index in np.argwhere(array > -500):
        p = ct.TransformContinuousIndexToPhysicalPoint([float(i) for i in index[::-1]])
        c = mr.TransformPhysicalPointToContinuousIndex(truth.TransformPoint(p))
        if all(-0.5 <= v <= n - 0.5 for v, n in zip(c, mr.GetSize())):
            points.append(p)
    fixed = SessionImages(pet=ct, anatomy=ct, anatomy_modality="CT", label="PET/CT")  # the PET only feeds pet_ncc
    moving = SessionImages(pet=mr, anatomy=mr, anatomy_modality="MR", label="MR")
    return fixed, moving, truth, np.asarray(points)


def _tre(transform, truth, points):
    return np.array([np.linalg.norm(np.subtract(transform.TransformPoint(p), truth.TransformPoint(p)))
                     for p in points.tolist()])


def test_truth_is_consistent(pair):
    """The truth brings the raw MR onto the curators' MR (same images): correlation near 1."""
    fixed, moving, truth, points = pair
    reference = _read("mr_curated_reference.nrrd")
    resampled = sitk.GetArrayFromImage(sitk.Resample(moving.anatomy, reference, truth, sitk.sitkLinear, -1.0))
    inside = resampled >= 0
    r = np.corrcoef(sitk.GetArrayViewFromImage(reference)[inside], resampled[inside])[0, 1]
    assert r > 0.95
    assert len(points) > 10000
    assert 30 < math.degrees(truth.GetAngleX()) < 40  # the hip flexion the gate does not expect


@pytest.mark.parametrize("initialisation", ["geometry", "moments"])
def test_refused_not_silently_wrong(pair, initialisation):
    """NETPET as it runs (defaults) refuses this pair rather than returning a transform 14-25 mm off."""
    fixed, moving, truth, points = pair
    with pytest.raises(RegistrationError, match="Cannot register"):
        register_sessions(fixed, moving, basis="anatomy", initialisation=initialisation)


@pytest.mark.xfail(strict=True, reason="35-degree hip flexion between the sessions: mutual information does not "
                                       "peak at the reference and the rotation is beyond the 15-degree gate (README.md)")
@pytest.mark.parametrize("initialisation", ["geometry", "moments"])
def test_target_registration_error(pair, initialisation):
    fixed, moving, truth, points = pair
    result = register_sessions(fixed, moving, basis="anatomy", initialisation=initialisation)
    errors = _tre(result.transform, truth, points)
    assert result.nmi >= registration.MIN_NMI
    assert np.percentile(errors, 95) < TOLERANCE_MM
