"""Make Testing/data/STS_001_registration: a real PET/CT-session CT and an MR of another session, with a truth.

Reads /work/shared/realdata (see its README): the CT of the PET/CT session of STS_001 (the fixed
session), the raw T1 MR of an earlier MR study in another frame of reference (the moving session), and
the same MR after the collection's curators resampled it onto the PET/CT frame of reference (same
FrameOfReferenceUID as the CT, MIM Software). The truth transform is the raw MR registered to the
curators' MR: same images, same contrast, so a mono-modal registration (correlation) after a search over
rotations about the left-right axis (the hip is flexed about 35 degrees in the PET/CT and straight in
the MR). Its consistency is checked by registering the other way (forward vs inverse of backward over
the body) and by the correlation after resampling.

Writes (about 4 mm isotropic, smoothed first, int16, compressed NRRD):
``ct_fixed.nrrd``, ``mr_moving.nrrd``, ``mr_curated_reference.nrrd`` and ``truth_ct_to_mr.tfm``
(ITK convention as NETPET's: maps CT-frame LPS points to raw-MR LPS points).

Usage: python benchmarks/make_realdata_registration.py [realdata folder] [output folder]
"""

from __future__ import annotations

import glob
import math
import os
import sys
import time

import numpy as np
import SimpleITK as sitk

from netpet.dicom.image import read_image

GRID_MM = 4.0


def downsample(image: sitk.Image, grid_mm: float) -> sitk.Image:
    """Gaussian-smoothed (sigma grid/2 in total) and resampled to an isotropic grid, same extent."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    spacing = np.asarray(image.GetSpacing(), float)
    sigma = [max(math.sqrt(max((grid_mm / 2) ** 2 - (s / 2) ** 2, 0.0)), 1e-3) for s in spacing]
    image = sitk.SmoothingRecursiveGaussian(image, sigma)
    size = [max(int(round(n * s / grid_mm)), 1) for n, s in zip(image.GetSize(), spacing)]
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    origin = np.asarray(image.GetOrigin()) + direction @ ((grid_mm - spacing) / 2)
    low = float(sitk.GetArrayViewFromImage(image).min())
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, origin.tolist(), (grid_mm,) * 3,
                         image.GetDirection(), low, sitk.sitkFloat32)


def correlation_registration(fixed, moving, transform, shrink, seed=1):
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsCorrelation()
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.2, seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(0.5, 0.001, 300, relaxationFactor=0.7)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(transform, inPlace=True)
    method.SetShrinkFactorsPerLevel(shrink)
    method.SetSmoothingSigmasPerLevel([s - 1 for s in shrink])
    method.Execute(fixed, moving)
    return method.GetMetricValue()


def ncc(fixed, moving, transform):
    resampled = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32))
    ones = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving)
    inside = sitk.GetArrayFromImage(sitk.Resample(ones, fixed, transform, sitk.sitkNearestNeighbor, 0)).astype(bool)
    return float(np.corrcoef(sitk.GetArrayFromImage(fixed)[inside], resampled[inside])[0, 1])


def truth_transform(curated: sitk.Image, raw: sitk.Image):
    """Raw MR registered to the curated MR (curated frame -> raw MR, ITK), with its consistency checks."""
    coarse_f, coarse_m = downsample(curated, 4.0), downsample(raw, 4.0)
    start = sitk.CenteredTransformInitializer(coarse_f, coarse_m, sitk.Euler3DTransform(),
                                              sitk.CenteredTransformInitializerFilter.MOMENTS)
    best = None
    for angle in range(-90, 91, 10):  # rotation about the left-right axis (hip flexion)
        candidate = sitk.Euler3DTransform(start)
        candidate.SetRotation(math.radians(angle), 0.0, 0.0)
        try:
            value = correlation_registration(coarse_f, coarse_m, candidate, [2, 1])
        except RuntimeError:
            continue
        if best is None or value < best[0]:
            best = (value, candidate)
    fine_f, fine_m = downsample(curated, 1.5), downsample(raw, 1.5)
    forward = sitk.Euler3DTransform(best[1])
    correlation_registration(fine_f, fine_m, forward, [2, 1])
    # backward: the curated MR onto the raw one, started 3 degrees and 5 mm away from the inverse
    centre = np.asarray(fine_m.TransformContinuousIndexToPhysicalPoint([s / 2 for s in fine_m.GetSize()]))
    backward = sitk.Euler3DTransform()
    backward.SetCenter(centre.tolist())
    backward.SetMatrix(np.asarray(forward.GetMatrix()).reshape(3, 3).T.ravel().tolist())
    backward.SetTranslation((np.asarray(forward.GetInverse().TransformPoint(centre.tolist())) - centre).tolist())
    p = list(backward.GetParameters())
    backward.SetParameters([p[0] + 0.05, p[1] - 0.05, p[2] + 0.05, p[3] + 5, p[4] - 5, p[5] + 5])
    correlation_registration(fine_m, fine_f, backward, [2, 1], seed=7)
    array = sitk.GetArrayFromImage(curated)
    low, high = np.percentile(array, [1, 99.5])
    points = [curated.TransformIndexToPhysicalPoint([int(i) for i in q[::-1]])
              for q in np.argwhere(array > low + 0.05 * (high - low))[::50]]
    inverse = backward.GetInverse()
    gaps = np.array([np.linalg.norm(np.subtract(forward.TransformPoint(q), inverse.TransformPoint(q))) for q in points])
    checks = {"ncc_1p5mm": ncc(fine_f, fine_m, forward), "symmetric_gap_mean_mm": float(gaps.mean()),
              "symmetric_gap_max_mm": float(gaps.max()),
              "rotation_deg": [round(math.degrees(a), 2) for a in forward.GetParameters()[:3]]}
    return forward, checks


def main(source: str = "/work/shared/realdata", target: str = "") -> None:
    target = target or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "Testing", "data", "STS_001_registration")
    os.makedirs(target, exist_ok=True)
    started = time.perf_counter()

    def series(folder):
        return read_image(sorted(glob.glob(os.path.join(source, folder, "*"))))

    ct = series("STS_001/CT")
    raw = series("STS_001/MR_T1_other_FoR")
    curated = series("STS_GML/STS_001/MR_T1")
    forward, checks = truth_transform(curated, raw)
    print("truth:", checks)
    sitk.WriteTransform(forward, os.path.join(target, "truth_ct_to_mr.tfm"))
    for name, image in (("ct_fixed", ct), ("mr_moving", raw), ("mr_curated_reference", curated)):
        small = sitk.Cast(sitk.Round(downsample(image, GRID_MM)), sitk.sitkInt16)
        sitk.WriteImage(small, os.path.join(target, name + ".nrrd"), useCompression=True)
        print(name, small.GetSize(), os.path.getsize(os.path.join(target, name + ".nrrd")), "bytes")
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
