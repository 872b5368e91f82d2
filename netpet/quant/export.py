"""Export lesion segmentations: Slicer .seg.nrrd and DICOM SEG referencing the source PET.

Segments are named by lesion id, coloured by the liver-threshold call (positive red, equivocal
amber, negative blue, no call grey), tagged with the call, the segmentation status and the quality
flags (``NETPET.Call``, ``NETPET.Status``, ``NETPET.Flags``; a lesion that is not separable is stored
as the 1 mL sphere at the click where its uptake was measured) and coded with the DICOM/Slicer terminology "Morphologically Altered
Structure / Lesion" (SCT 49755003 / 52988006) so that Slicer and PACS viewers show what they are.
A .seg.nrrd that already holds segments keeps those with other ids (a reader's earlier lesions).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from netpet import __version__
from netpet.quant.segment import LesionMask
from netpet.quant.volume import SUVVolume

CATEGORY = ("SCT", "49755003", "Morphologically Altered Structure")
LESION_TYPE = ("SCT", "52988006", "Lesion")
COLORS = {"positive": (0.85, 0.15, 0.15), "equivocal": (0.95, 0.65, 0.1), "negative": (0.2, 0.4, 0.85),
          "": (0.6, 0.6, 0.6)}


def _ijk_to_lps(volume: SUVVolume) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(volume.direction, dtype=float).reshape(3, 3) * np.asarray(volume.spacing, dtype=float)
    matrix[:3, 3] = volume.origin
    return matrix


def write_seg_nrrd(path: str, volume: SUVVolume, lesions: Dict[str, LesionMask], calls: Dict[str, str],
                   keep_existing: bool = True) -> List[str]:
    """Write (or update) a Slicer segmentation file; returns the segment ids it holds."""
    import slicerio

    masks: Dict[str, np.ndarray] = {}
    colors: Dict[str, Sequence[float]] = {}
    tags: Dict[str, Dict[str, str]] = {}
    if keep_existing and os.path.exists(path):
        existing = slicerio.read_segmentation(path)
        if np.allclose(existing["ijkToLPS"], _ijk_to_lps(volume)) and existing["voxels"].shape[-3:] == volume.shape[::-1]:
            for segment in existing["segments"]:
                if segment["id"] not in lesions:
                    masks[segment["id"]] = np.transpose(slicerio.segment_mask(existing, segment), (2, 1, 0)) > 0
                    colors[segment["id"]] = segment.get("color", COLORS[""])
                    tags[segment["id"]] = {k: v for k, v in (segment.get("tags") or {}).items() if k.startswith("NETPET.")}
    for lesion_id, lesion in lesions.items():
        masks[lesion_id] = lesion.full(volume.shape)
        colors[lesion_id] = COLORS.get(calls.get(lesion_id, ""), COLORS[""])
        tags[lesion_id] = {"NETPET.Call": calls.get(lesion_id, ""), "NETPET.Status": lesion.status,
                           "NETPET.Flags": ";".join(lesion.flags)}
    segmentation = slicerio.create_segmentation(tuple(volume.shape[::-1]), _ijk_to_lps(volume))
    for lesion_id in sorted(masks):
        slicerio.add_segment(segmentation, np.transpose(masks[lesion_id], (2, 1, 0)), {
            "id": lesion_id, "name": lesion_id, "color": tuple(float(c) for c in colors[lesion_id]),
            "terminology": {"contextName": "Segmentation category and type - 3D Slicer General Anatomy list",
                            "category": list(CATEGORY), "type": list(LESION_TYPE)},
            "tags": dict(tags.get(lesion_id, {})),
        })
    segmentation["containedRepresentationNames"] = ["Binary labelmap"]
    segmentation["masterRepresentation"] = "Binary labelmap"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    slicerio.write_segmentation(path, segmentation)
    return sorted(masks)


def write_dicom_seg(path: str, source_paths: Sequence[str], volume: SUVVolume, lesions: Dict[str, LesionMask],
                    series_number: int = 900, series_description: str = "NETPET lesions",
                    reader: Optional[str] = None) -> str:
    """Write a DICOM Segmentation (binary) referencing the source PET images; returns its path.

    The SEG's frames follow the PET's own slices: the SUV volume is in the PET series' geometry,
    and its slices are matched to the source files by position along the slice normal.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(p) for p in source_paths]
    normal = np.asarray(volume.direction, dtype=float).reshape(3, 3)[:, 2]
    origin = np.asarray(volume.origin, dtype=float)
    step = float(volume.spacing[2])
    by_slice = {}
    for ds in sources:
        k = int(round(float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=float) - origin, normal)) / step))
        by_slice[k] = ds
    if sorted(by_slice) != list(range(volume.shape[0])):
        raise ValueError("the source PET files do not match the SUV volume's slices")
    ordered = [by_slice[k] for k in range(volume.shape[0])]
    ids = sorted(lesions)
    pixels = np.zeros((volume.shape[0], volume.shape[1], volume.shape[2], len(ids)), dtype=bool)
    descriptions = []
    for number, lesion_id in enumerate(ids):
        pixels[..., number] = lesions[lesion_id].full(volume.shape)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number + 1, segment_label=lesion_id,
            segmented_property_category=hd.sr.CodedConcept(CATEGORY[1], CATEGORY[0], CATEGORY[2]),
            segmented_property_type=hd.sr.CodedConcept(LESION_TYPE[1], LESION_TYPE[0], LESION_TYPE[2]),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name="NETPET SUVQuant", version=__version__, family=codes.cid7162.HistogramAnalysis),
            tracking_uid=hd.UID(), tracking_id=f"{reader or 'reader'}:{lesion_id}",
        ))
    seg = hd.seg.Segmentation(
        source_images=ordered, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="NETPET", manufacturer_model_name="SUVQuant",
        software_versions=__version__, device_serial_number="0", series_description=series_description,
        omit_empty_frames=True,
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    seg.save_as(path)
    return path
