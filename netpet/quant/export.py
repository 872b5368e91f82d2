"""Export lesion segmentations: Slicer .seg.nrrd and DICOM SEG referencing the source PET.

Segments are named by lesion id, coloured by the liver-threshold call (positive red, equivocal
amber, negative blue, no call grey), tagged with the call, the segmentation status and the quality
flags (``NETPET.Call``, ``NETPET.Status``, ``NETPET.Flags``; a lesion that is not separable is stored
as the 1 mL sphere at the click where its uptake was measured) and coded with the DICOM/Slicer terminology "Morphologically Altered
Structure / Lesion" (SCT 49755003 / 52988006) so that Slicer and PACS viewers show what they are.
A .seg.nrrd or DICOM SEG that already holds segments keeps those with other ids (a reader's earlier
lesions, another method group of the session); a segment with the same id is replaced.

Both writes are safe beside other writers (DESIGN section 2): the read-merge-write holds an
exclusive lock on ``<file>.lock`` (POSIX ``flock``; the lock of the study table, see
:func:`netpet.quant.table.locked`), and the file is written to a temporary file in the same folder,
flushed and renamed over the target, so concurrent runs for one session keep every segment and a
crash never leaves half a file. An existing file that cannot be read, that lies on another image
grid or references another PET series is refused, untouched (merging would lose its segments).
A symbolic link stays a link (its target is written); a read-only file is refused. Lesion ids are
checked first (:func:`netpet.quant.table.check_lesion_id`: at most 64 characters, no control
characters, the limits of DICOM's SegmentLabel and of the .seg.nrrd header).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from netpet import __version__
from netpet.errors import NetpetError, printable
from netpet.quant.segment import LesionMask
from netpet.quant.table import TableError, check_lesion_id, check_writable, locked, replace_atomically
from netpet.quant.volume import SUVVolume

CATEGORY = ("SCT", "49755003", "Morphologically Altered Structure")
LESION_TYPE = ("SCT", "52988006", "Lesion")
COLORS = {"positive": (0.85, 0.15, 0.15), "equivocal": (0.95, 0.65, 0.1), "negative": (0.2, 0.4, 0.85),
          "": (0.6, 0.6, 0.6)}


class ExportError(NetpetError, ValueError):
    """A segmentation file cannot be written without losing what it holds (the message names the file)."""


def _check_ids(lesion_ids) -> None:
    for lesion_id in lesion_ids:
        try:
            check_lesion_id(lesion_id)
        except TableError as exc:
            raise ExportError(str(exc)) from None
        if not lesion_id:
            raise ExportError("A segment needs a lesion id; an empty id is a session read without findings, which has "
                              "no segment.")


def _check_ascii(lesion_ids, path: str) -> None:
    """A .seg.nrrd's header is ASCII: pynrrd (under slicerio) cannot write other characters and drops them on
    reading, so a segment would come back under another id."""
    for lesion_id in lesion_ids:
        if not str(lesion_id).isascii():
            raise ExportError(f"The lesion id {printable(str(lesion_id))!r} is not ASCII, which the segmentation file "
                              f"{path} (.seg.nrrd) cannot hold; write it with ASCII letters, digits and signs.")


def _check_encodable(lesion_ids, character_set, what: str = "lesion id") -> None:
    """Every id must be writable in the character set the SEG inherits from the PET (pydicom would
    write '?' for the rest, silently)."""
    from pydicom.charset import convert_encodings

    sets = [character_set] if isinstance(character_set, str) else list(character_set or [])
    encodings = convert_encodings(sets) if sets else ["ascii"]
    encodings = ["ascii" if e == "iso8859" else e for e in encodings]  # no Specific Character Set: ASCII (ISO-IR 6)
    for lesion_id in lesion_ids:
        for encoding in encodings:
            try:
                lesion_id.encode(encoding)
                break
            except (UnicodeEncodeError, LookupError):
                continue
        else:
            raise ExportError(f"The {what} {lesion_id!r} cannot be written in the character set of the PET "
                              f"({'/'.join(sets) or 'ISO-IR 6, plain ASCII'}) that its DICOM SEG inherits; use "
                              "letters, digits and signs of that set.")


def finding_uid(series_uid: str, reader: str, lesion_id: str) -> str:
    """The tracking UID of a finding: the same for the same PET series, reader and lesion id, in every SEG
    and SR written of it (PS3.3 C.8.20.4: a Tracking UID identifies one finding across instances).

    The ``2.25.`` form of a name-based UUID (PS3.5 B.2; RFC 4122 version 5, SHA-1 of the three values),
    so no identifying value can be read from it.
    """
    import uuid

    name = "\x00".join(["netpet-finding", str(series_uid), str(reader), str(lesion_id)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def person_name(reader: Optional[str]) -> Optional[str]:
    """The reader id as a DICOM person name (PN), or None without a reader: the SEG's ContentCreatorName and the
    SR's Person Observer Name.

    An id without ``^`` is written as a family name with a trailing ``^`` (``R1`` as ``R1^``): PS3.5 6.2.1 reads a
    value without the delimiter as the retired ACR-NEMA form, and the trailing delimiter marks one component meant
    as the whole name; the id reads back as the name's family name (``PersonName.family_name``). An id with ``^``
    is taken as the reader wrote it (family^given...).

    Raises
    ------
    ExportError
        A reader id longer than 64 characters (a PN component group's limit) or holding a backslash (DICOM's value
        separator).
    """
    if not reader:
        return None
    text = str(reader)
    if len(text) > 63 or "\\" in text:
        raise ExportError(f"The reader id {printable(text)!r} cannot be a DICOM person name (at most 63 characters "
                          "and no backslash); shorten it or write it without one.")
    return text if "^" in text else text + "^"


def _ijk_to_lps(volume: SUVVolume) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(volume.direction, dtype=float).reshape(3, 3) * np.asarray(volume.spacing, dtype=float)
    matrix[:3, 3] = volume.origin
    return matrix


def write_seg_nrrd(path: str, volume: SUVVolume, lesions: Dict[str, LesionMask], calls: Dict[str, str],
                   keep_existing: bool = True) -> List[str]:
    """Write (or update) a Slicer segmentation file; returns the segment ids it holds.

    Locked, merged and atomic (see the module docstring). With ``keep_existing`` (default) the
    segments already in the file whose ids are not in ``lesions`` are kept.

    Raises
    ------
    ExportError
        An invalid lesion id; an existing file that cannot be read, lies on another grid, or is
        read-only; a lock held by another writer for too long. The file is left untouched.
    """
    _check_ids(lesions)
    _check_ascii(lesions, path)
    target = os.path.realpath(path)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create the folder of the segmentation {path}: {exc.strerror or exc}.") from exc
    with locked(target, "segmentation", ExportError):
        check_writable(target, path, "segmentation", ExportError)
        return _merge_seg_nrrd(path, target, volume, lesions, calls, keep_existing)


def _merge_seg_nrrd(path: str, target: str, volume: SUVVolume, lesions: Dict[str, LesionMask],
                    calls: Dict[str, str], keep_existing: bool) -> List[str]:
    import slicerio

    masks: Dict[str, np.ndarray] = {}
    colors: Dict[str, Sequence[float]] = {}
    tags: Dict[str, Dict[str, str]] = {}
    if keep_existing and os.path.exists(target) and os.path.getsize(target) > 0:
        try:
            existing = slicerio.read_segmentation(target)
        except Exception as exc:  # noqa: BLE001 - slicerio/pynrrd raise many kinds on a damaged file
            raise ExportError(f"The segmentation {path} exists but cannot be read ({type(exc).__name__}: {exc}); move it "
                              "away (its segments would be lost by writing over it) and run again.") from exc
        shape = tuple(existing["voxels"].shape[-3:])
        if not np.allclose(existing["ijkToLPS"], _ijk_to_lps(volume), atol=1e-4) or shape != tuple(volume.shape[::-1]):
            raise ExportError(f"The segmentation {path} holds segments on another image grid ({'x'.join(map(str, shape))} "
                              f"voxels, not {'x'.join(map(str, volume.shape[::-1]))} of this PET, or another origin, "
                              "spacing or orientation); move it away or give this series another session id, it was "
                              "left untouched.")
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
    replace_atomically(target, lambda temporary: slicerio.write_segmentation(temporary, segmentation),
                       suffix=".seg.nrrd", what="segmentation", error=ExportError)
    return sorted(masks)


def write_dicom_seg(path: str, source_paths: Sequence[str], volume: SUVVolume, lesions: Dict[str, LesionMask],
                    series_number: int = 900, series_description: str = "NETPET lesions",
                    reader: Optional[str] = None, keep_existing: bool = True, pseudonymiser=None,
                    patient_id: str = "") -> str:
    """Write (or update) a DICOM Segmentation (binary) referencing the source PET images; returns its path.

    The SEG carries the source's patient and study identity, as the standard requires (PS3.3
    C.7.1.1, C.7.2.1: the patient and study modules are those of the images it segments); with a
    ``pseudonymiser`` (:class:`netpet.privacy.Pseudonymiser`) the patient's id and name are the
    pseudonym of ``patient_id``, identifying attributes are emptied and dates shifted (UIDs kept,
    so the SEG still references its images).

    The SEG's frames follow the PET's own slices: the SUV volume is in the PET series' geometry,
    and its slices are matched to the source files by position along the slice normal. Locked,
    merged and atomic (see the module docstring): with ``keep_existing`` (default) the segments of
    an existing SEG at ``path`` whose labels are not in ``lesions`` are kept (with their
    descriptions and tracking UIDs), and the new instance joins the existing SEG's series. The reader
    is the SEG's ContentCreatorName (:func:`person_name`); a segment's TrackingUID is :func:`finding_uid` of the PET series,
    the reader and the lesion id (the same finding keeps its UID in every SEG and SR written of it).

    Raises
    ------
    ExportError
        An invalid lesion id or reader id; source files that do not match the volume's slices; an existing SEG
        that cannot be read or references other images; a read-only file; a lock held too long.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    _check_ids(lesions)
    creator = person_name(reader)
    sources = [pydicom.dcmread(p) for p in source_paths]
    normal = np.asarray(volume.direction, dtype=float).reshape(3, 3)[:, 2]
    origin = np.asarray(volume.origin, dtype=float)
    step = float(volume.spacing[2])
    by_slice = {}
    for ds in sources:
        k = int(round(float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=float) - origin, normal)) / step))
        by_slice[k] = ds
    if sorted(by_slice) != list(range(volume.shape[0])):
        raise ExportError("the source PET files do not match the SUV volume's slices")
    ordered = [by_slice[k] for k in range(volume.shape[0])]
    _check_encodable(lesions, ordered[0].get("SpecificCharacterSet"))
    if creator:
        _check_encodable([creator], ordered[0].get("SpecificCharacterSet"), "reader id")
    target = os.path.realpath(path)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create the folder of the DICOM SEG {path}: {exc.strerror or exc}.") from exc

    def description(number: int, lesion_id: str):
        return hd.seg.SegmentDescription(
            segment_number=number, segment_label=lesion_id,
            segmented_property_category=hd.sr.CodedConcept(CATEGORY[1], CATEGORY[0], CATEGORY[2]),
            segmented_property_type=hd.sr.CodedConcept(LESION_TYPE[1], LESION_TYPE[0], LESION_TYPE[2]),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name="NETPET SUVQuant", version=__version__, family=codes.cid7162.HistogramAnalysis),
            tracking_uid=finding_uid(str(ordered[0].SeriesInstanceUID), reader or "", lesion_id),
            tracking_id=f"{reader or 'reader'}:{lesion_id}",
        )

    with locked(target, "DICOM SEG", ExportError):
        check_writable(target, path, "DICOM SEG", ExportError)
        kept: Dict[str, tuple] = {}  # label -> (mask, description dataset)
        series_uid, instance_number = hd.UID(), 1
        if keep_existing and os.path.exists(target) and os.path.getsize(target) > 0:
            try:
                old = hd.seg.segread(target)
            except Exception as exc:  # noqa: BLE001 - pydicom/highdicom raise many kinds on a damaged file
                raise ExportError(f"The DICOM SEG {path} exists but cannot be read ({type(exc).__name__}: {exc}); move it "
                                  "away (its segments would be lost by writing over it) and run again.") from exc
            ours = {str(ds.SOPInstanceUID) for ds in ordered}
            theirs = {str(uid) for _, _, uid in old.get_source_image_uids()}
            if not theirs <= ours:
                raise ExportError(f"The DICOM SEG {path} references {len(theirs - ours)} image(s) outside this PET series "
                                  f"{ordered[0].SeriesInstanceUID}; move it away or give this series another session "
                                  "id, it was left untouched.")
            keep = [item for item in old.SegmentSequence if str(item.SegmentLabel) not in lesions]
            if keep:
                try:
                    pixels = old.get_pixels_by_source_instance(
                        [str(ds.SOPInstanceUID) for ds in ordered], segment_numbers=[int(i.SegmentNumber) for i in keep],
                        assert_missing_frames_are_empty=True)
                except Exception as exc:  # noqa: BLE001
                    raise ExportError(f"The DICOM SEG {path} exists but its segments cannot be read ({exc}); move it "
                                      "away and run again.") from exc
                for number, item in enumerate(keep):
                    kept[str(item.SegmentLabel)] = (pixels[..., number] > 0, item)
            series_uid = old.SeriesInstanceUID
            instance_number = int(getattr(old, "InstanceNumber", 0) or 0) + 1
        ids = sorted(set(lesions) | set(kept))
        pixels = np.zeros((volume.shape[0], volume.shape[1], volume.shape[2], len(ids)), dtype=bool)
        descriptions = []
        for number, lesion_id in enumerate(ids):
            if lesion_id in lesions:
                pixels[..., number] = lesions[lesion_id].full(volume.shape)
                descriptions.append(description(number + 1, lesion_id))
            else:
                mask, item = kept[lesion_id]
                pixels[..., number] = mask
                copied = hd.seg.SegmentDescription.from_dataset(item, copy=True)
                copied.SegmentNumber = number + 1
                descriptions.append(copied)
        seg = hd.seg.Segmentation(
            source_images=ordered, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions, series_instance_uid=series_uid, series_number=series_number,
            sop_instance_uid=hd.UID(), instance_number=instance_number, manufacturer="NETPET",
            manufacturer_model_name="SUVQuant", software_versions=__version__, device_serial_number="0",
            series_description=series_description, omit_empty_frames=True,
            content_creator_name=creator,
        )
        if pseudonymiser is not None:
            pseudonymiser.dataset(seg, patient_id or str(getattr(ordered[0], "PatientID", "")))
        replace_atomically(target, lambda temporary: seg.save_as(temporary), suffix=".dcm", what="DICOM SEG",
                           error=ExportError)
    return path
