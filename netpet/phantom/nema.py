"""A simulated NEMA NU-2 / IEC 61675-1 body phantom: the standard test of PET segmentation.

Six hot spheres of inner diameter 10, 13, 17, 22, 28 and 37 mm lie on a circle of 57.2 mm
radius in the transverse plane 70 mm from the phantom's end, in a body-shaped background with
a cold lung insert (a 51 mm cylinder along the axis), as in the NEMA NU-2 image-quality test.
The image is made with the physics of the digital reference study: partial-volume-exact
activity on a fine grid, Gaussian resolution, voxelisation and count-dependent correlated
noise. Sphere-to-background ratios of 4:1 and 8:1 are the test's usual settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import SimpleITK as sitk

from netpet.geometry import lps_to_ras
from netpet.phantom.shapes import Ellipsoid, Grid, ProfileCylinder, occupancy, paint

SPHERE_DIAMETERS_MM = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)
RING_RADIUS_MM = 57.2
BACKGROUND_SUV = 1.0


@dataclass
class NemaPhantom:
    """The noisy image (SUV, float32 SimpleITK image in LPS) and the true spheres."""

    image: sitk.Image
    clean: sitk.Image
    spheres: List[Dict[str, object]]  # diameter_mm, center_ras, suv, volume_ml
    contrast: float


def nema_phantom(contrast: float = 4.0, voxel_mm: Tuple[float, float, float] = (4.0, 4.0, 3.0),
                 fwhm_mm: float = 6.5, liver_cov: float = 0.10, seed: int = 0) -> NemaPhantom:
    """Simulate the phantom at a sphere-to-background ratio ``contrast``.

    ``liver_cov`` is the noise coefficient of variation of the background voxels.
    """
    fine = Grid(origin=(-160.0, -125.0, -100.0), spacing=(1.0, 1.0, 1.0), size=(321, 251, 201))
    labels = np.zeros((fine.size[2], fine.size[1], fine.size[0]), dtype=np.uint8)
    # body: an ellipse 300 x 230 mm (the IEC phantom's D shape, rounded), 180 mm long
    body = ProfileCylinder([(-90.0, 0.0, 0.0, 150.0, 115.0), (90.0, 0.0, 0.0, 150.0, 115.0)])
    paint(labels, fine, body, 1)
    lung = ProfileCylinder([(-90.0, 0.0, 0.0, 25.5, 25.5), (90.0, 0.0, 0.0, 25.5, 25.5)])
    paint(labels, fine, lung, 2)
    activity = np.where(labels == 1, BACKGROUND_SUV, 0.0).astype(np.float32)
    spheres = []
    z_plane = 20.0  # 70 mm from the end at z = -90 ... (phantom ends at +-90 mm)
    for i, diameter in enumerate(SPHERE_DIAMETERS_MM):
        angle = math.radians(30.0 + 60.0 * i)
        center = (RING_RADIUS_MM * math.cos(angle), RING_RADIUS_MM * math.sin(angle), z_plane)
        shape = Ellipsoid(center, (diameter / 2,) * 3)
        box, fraction = occupancy(fine, shape, samples=3)
        region = activity[box]
        region *= 1.0 - fraction
        region += fraction * contrast * BACKGROUND_SUV
        spheres.append({"diameter_mm": diameter, "center_ras": lps_to_ras(center), "center_lps": center,
                        "suv": contrast * BACKGROUND_SUV, "volume_ml": shape.volume_ml})
    fine_image = sitk.GetImageFromArray(activity)
    fine_image.SetOrigin(fine.origin)
    fine_image.SetSpacing(fine.spacing)
    blurred = sitk.SmoothingRecursiveGaussian(fine_image, fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0))))
    size = [int(round(320.0 / voxel_mm[0])), int(round(250.0 / voxel_mm[1])), int(round(190.0 / voxel_mm[2]))]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing(voxel_mm)
    reference.SetOrigin(tuple(-(n - 1) * s / 2.0 for n, s in zip(size, voxel_mm)))
    # voxelise: average the fine grid over each voxel (block mean), then sample at the voxel centre
    box_sigma = [s / math.sqrt(12.0) for s in voxel_mm]
    averaged = sitk.SmoothingRecursiveGaussian(blurred, box_sigma)
    clean = sitk.Resample(averaged, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    values = sitk.GetArrayFromImage(clean)
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(contrast * 100)]))
    white = rng.standard_normal(values.shape).astype(np.float32)
    noise = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(white), 0.7))
    noise /= float(np.std(noise))
    noisy = np.maximum(values + liver_cov * np.sqrt(BACKGROUND_SUV) * np.sqrt(np.maximum(values, 0.0)) * noise, 0.0)
    image = sitk.GetImageFromArray(noisy.astype(np.float32))
    image.CopyInformation(clean)
    return NemaPhantom(image, clean, spheres, contrast)


def sphere_mask(image: sitk.Image, center_lps, diameter_mm: float) -> np.ndarray:
    """Voxels of ``image`` ([z, y, x] bool) whose centres lie inside the sphere."""
    size = image.GetSize()
    origin, spacing = np.asarray(image.GetOrigin()), np.asarray(image.GetSpacing())
    axes = [origin[a] + np.arange(size[a]) * spacing[a] - center_lps[a] for a in range(3)]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij", sparse=True)
    return x * x + y * y + z * z <= (diameter_mm / 2.0) ** 2
