"""Preview images of a session: the PET coronal MIP beside a fused PET-over-CT/MR slice.

The coronal maximum-intensity projection is what nuclear physicians read first; the fused
slice passes through the session's largest lesion (or the liver when there is none). Truth
lesions are outlined in both (red malignant, green benign); with ``truth=False`` (the quiz previews of
the teaching cases) the same images carry no contour and no description of the patient, and the fused slice lies at
the liver level rather than through the largest lesion.
"""

from __future__ import annotations

import os
from typing import Dict

import numpy as np

from netpet.phantom import render
from netpet.phantom.patients import Patient, Session


def _resample_nearest(values: np.ndarray, source: render.ScanGrid, target: render.ScanGrid) -> np.ndarray:
    """Values of a [z, y, x] array on another axis-aligned grid of the same frame (nearest voxel)."""
    index = []
    for axis, array_axis in ((2, 0), (1, 1), (0, 2)):
        coords = target.origin[axis] + np.arange(target.size[axis]) * target.spacing[axis]
        i = np.rint((coords - source.origin[axis]) / source.spacing[axis]).astype(int)
        index.append(np.clip(i, 0, values.shape[array_axis] - 1))
    return values[np.ix_(index[0], index[1], index[2])]


def session_preview(path: str, suv: np.ndarray, anatomy: np.ndarray, pet_grid: render.ScanGrid,
                    anatomy_grid: render.ScanGrid, masks: Dict[str, np.ndarray], session: Session,
                    patient: Patient, truth: bool = True) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(path), exist_ok=True)
    malignant = {lesion.lesion_id: lesion.malignant for lesion in patient.lesions}
    vmax = 15.0 if session.tracer == "dotatate" else 8.0
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 7.5), dpi=80)
    fig.patch.set_facecolor("white")
    aspect_coronal = pet_grid.spacing[2] / pet_grid.spacing[0]
    # coronal MIP: max over the anterior-posterior axis; z grows upward in LPS, so flip rows
    mip = suv.max(axis=1)[::-1]
    left.imshow(mip, cmap="gray_r", vmin=0, vmax=vmax, aspect=aspect_coronal, interpolation="bilinear")
    for lesion_id, mask in (masks.items() if truth else ()):
        outline = mask.any(axis=1)[::-1].astype(float)
        left.contour(outline, levels=[0.5], colors=["red" if malignant[lesion_id] else "lime"], linewidths=1.0)
    left.set_title(f"{session.session_id}: coronal MIP (SUV 0-{vmax:g})", fontsize=9)
    left.axis("off")
    # fused axial slice through the largest lesion (or the liver dome level); a quiz preview always takes the liver
    # level, so that its slice does not point at a lesion the trainee is to find
    if masks and truth:
        biggest = max(masks, key=lambda k: masks[k].sum())
        k = int(np.round(np.mean(np.nonzero(masks[biggest])[0])))
    else:
        liver_z = render.to_scanner(patient, session, (0.0, 0.0, -615.0 * patient.body.zf))[2]
        k = int(np.clip(round((liver_z - pet_grid.origin[2]) / pet_grid.spacing[2]), 0, pet_grid.size[2] - 1))
    z = pet_grid.origin[2] + k * pet_grid.spacing[2]
    kk = int(np.clip(round((z - anatomy_grid.origin[2]) / anatomy_grid.spacing[2]), 0, anatomy_grid.size[2] - 1))
    background = anatomy[kk]
    if session.scanner.anatomy == "CT":
        right.imshow(background, cmap="gray", vmin=-200, vmax=300)
    else:
        right.imshow(background, cmap="gray", vmin=0, vmax=float(np.percentile(background, 99.5)))
    single = render.ScanGrid((pet_grid.origin[0], pet_grid.origin[1], z), pet_grid.spacing, (pet_grid.size[0], pet_grid.size[1], 1))
    target = render.ScanGrid((anatomy_grid.origin[0], anatomy_grid.origin[1], z), anatomy_grid.spacing,
                             (anatomy_grid.size[0], anatomy_grid.size[1], 1))
    pet_slice = _resample_nearest(suv[k:k + 1], single, target)[0]
    overlay = np.ma.masked_less(pet_slice, 0.1 * vmax)
    right.imshow(overlay, cmap="hot", vmin=0, vmax=vmax, alpha=0.55)
    for lesion_id, mask in (masks.items() if truth else ()):
        outline = _resample_nearest(mask[k:k + 1].astype(float), single, target)[0]
        if outline.any():
            right.contour(outline, levels=[0.5], colors=["red" if malignant[lesion_id] else "lime"], linewidths=1.2)
    right.set_title(f"PET over {session.scanner.anatomy}, z = {z:.0f} mm", fontsize=9)
    right.axis("off")
    fig.suptitle(f"{patient.patient_id} - {patient.description}" if truth else f"{patient.patient_id} (quiz)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
