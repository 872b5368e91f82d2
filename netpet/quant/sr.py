"""DICOM Structured Reports of a reader's measurements: one TID 1500 Measurement Report per session and reader.

:func:`write_reports` turns the study-table rows of each (patient, session, reader) into a
Comprehensive 3D SR (PS3.3 A.35.13) holding a TID 1500 "Imaging Measurement Report" (PS3.16
TID 1500), written with highdicom (``hd.sr.MeasurementReport``). Each finding is one TID 1411
"Volumetric ROI Measurements" group that

- is tracked by the lesion id (Tracking Identifier) and a Tracking UID that is the same for the same
  PET series, reader and lesion in every SEG and SR (:func:`netpet.quant.export.finding_uid`; the
  UID of the referenced SEG segment when that SEG holds another);
- is of finding type Lesion (SCT 52988006), category Morphologically Altered Structure (SCT 49755003),
  the terms of the DICOM SEG's segments;
- names its finding site when the reader's region has a SNOMED CT code (:data:`REGION_CODES`; free
  text without a code, such as ``other``, gives no site rather than a guessed one);
- references its segment in the DICOM SEG (Referenced Segment, DCM 121191, with the PET images
  the segment was drawn on as Source images for segmentation, DCM 121233);
- carries the measurements of the row (:func:`measurements`): SUVmax, SUVpeak and SUVmean as the
  SUV quantity of the table's ``suv_type`` (SUVbw DCM 126401, ...; PS3.16 CID 7180) with the
  derivation Maximum (SCT 56851009), Peak Value Within ROI (DCM 126031) or Mean (SCT 373098007) and
  the unit of CID 85 (``g/ml{SUVbw}``, ...), the metabolic tumour volume (Metabolic Volume, DCM 126032,
  ml), the total lesion activity SUVmean x MTV (Total Lesion Glycolysis, DCM 126033, for FDG; the
  private code ``TLA`` for other tracers, whose uptake is not glycolysis), the tumour-to-liver ratio
  (Lesion to Background SUV Ratio, DCM 126039, with the method ``TLR-LIVER``: SUVmax over the liver's
  SUVmean) — as the QIICR dcmqi PET examples code them;
- carries the qualitative evaluations of the row (:func:`evaluations`): the SUV rule's call and the
  reader's visual call (Positive SCT 10828004, Equivocal SCT 42425007, Negative SCT 260385009), the
  Krenning score, the reader's 5-point confidence of malignancy, the SSTR-RADS 1.0 category (Werner
  et al., J Nucl Med 2018;59:1085-1091) and the anatomic correlate on CT/MR (Correlation to other
  Findings, DCM 111380: DCM 111385 / 111386, a private code for a benign correlate).

Concepts DICOM has no code for are coded in the private scheme ``99NETPET`` (PS3.16 section 8:
designators beginning with ``99`` are private), declared in the SR's Coding Scheme Identification
Sequence (:data:`PRIVATE_CODES` lists them all).

The observer context names the reader (Person Observer Name: the reader id as a person name,
:func:`netpet.quant.export.person_name`, ``R1`` written ``R1^``) and NETPET as the
device observer (its name and version). Retracted findings (``finding_status`` retracted) are left
out of the report and counted in the result. The SR's patient and study modules are those of the
PET (PS3.3 C.7.1.1); with a pseudonymiser (:class:`netpet.privacy.Pseudonymiser`) the patient is
named by the pseudonym and identifying attributes are emptied and dates shifted, as in the SEG
(:func:`netpet.quant.export.write_dicom_seg`); UIDs are kept so that the references resolve.

When the session has no DICOM SEG yet (``netpet quantify --dicom-seg`` writes one beside the
``.seg.nrrd``), one is written from the rows' ``.seg.nrrd`` and the PET found in the DICOM tree by
the rows' ``series_uid``, and the SR references it.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from netpet import __version__, schema
from netpet.errors import NetpetError, printable
from netpet.quant.export import ExportError, person_name
from netpet.quant.table import check_writable, replace_atomically

log = logging.getLogger(__name__)

#: the private coding scheme of NETPET's own concepts (PS3.16 section 8: a designator starting ``99``)
PRIVATE_SCHEME = "99NETPET"
SR_SERIES_NUMBER = 901
SEG_SERIES_NUMBER = 900

#: the SUV quantity and its unit per ``suv_type`` (PS3.16 CID 7180 and CID 85)
SUV_CODES: Dict[str, Tuple[Tuple[str, str, str], Tuple[str, str, str]]] = {
    "bw": (("126401", "DCM", "SUVbw"), ("g/ml{SUVbw}", "UCUM", "Standardized Uptake Value body weight")),
    "lbm_morgan": (("126402", "DCM", "SUVlbm"), ("g/ml{SUVlbm}", "UCUM", "Standardized Uptake Value lean body mass (James)")),
    "lbm": (("126406", "DCM", "SUVlbm(James128)"),
            ("g/ml{SUVlbm(James128)}", "UCUM", "Standardized Uptake Value lean body mass (James 128 multiplier)")),
    "lbmjames128": (("126406", "DCM", "SUVlbm(James128)"),
                    ("g/ml{SUVlbm(James128)}", "UCUM", "Standardized Uptake Value lean body mass (James 128 multiplier)")),
    "lbmjanma": (("126405", "DCM", "SUVlbm(Janma)"),
                 ("g/ml{SUVlbm(Janma)}", "UCUM", "Standardized Uptake Value lean body mass (Janma)")),
    "bsa": (("126403", "DCM", "SUVbsa"), ("cm2/ml{SUVbsa}", "UCUM", "Standardized Uptake Value body surface area")),
    "ibw": (("126404", "DCM", "SUVibw"), ("g/ml{SUVibw}", "UCUM", "Standardized Uptake Value ideal body weight")),
}
MAXIMUM = ("56851009", "SCT", "Maximum")
MEAN = ("373098007", "SCT", "Mean")
PEAK = ("126031", "DCM", "Peak Value Within ROI")
METABOLIC_VOLUME = ("126032", "DCM", "Metabolic Volume")
MILLILITER = ("ml", "UCUM", "milliliter")
TLG = ("126033", "DCM", "Total Lesion Glycolysis")
LESION_TO_BACKGROUND = ("126039", "DCM", "Lesion to Background SUV Ratio")
NO_UNITS = ("1", "UCUM", "no units")
LESION = ("52988006", "SCT", "Lesion")
ALTERED_STRUCTURE = ("49755003", "SCT", "Morphologically Altered Structure")
CALL_VALUES = {"positive": ("10828004", "SCT", "Positive"), "equivocal": ("42425007", "SCT", "Equivocal"),
               "negative": ("260385009", "SCT", "Negative")}
CORRELATION = ("111380", "DCM", "Correlation to other Findings")
CORRELATE_VALUES = {"lesion": ("111385", "DCM", "Correlates to other imaging findings"),
                    "none": ("111386", "DCM", "No correlation to other imaging findings"),
                    "benign": ("CORR-BENIGN", PRIVATE_SCHEME, "Correlates to a lesion benign on CT or MR")}
PROCEDURE_FDG_PETCT = ("443271005", "SCT", "PET/CT FDG imaging of whole body")
PROCEDURE_PET = ("44136-0", "LN", "PET unspecified body region")

#: SNOMED CT codes of the regions a reader may name (:data:`netpet.schema.REGION_SUGGESTIONS` and their
#: plain synonyms), as PS3.16 CID 4 (anatomic regions) lists them. "colon and rectum" is the large
#: intestine (SCT 14742008); "other" and any text not listed has no code and gives no finding site.
REGION_CODES: Dict[str, Tuple[str, str, str]] = {
    "pancreas": ("15776009", "SCT", "Pancreas"),
    "small bowel": ("30315005", "SCT", "Small intestine"),
    "small intestine": ("30315005", "SCT", "Small intestine"),
    "stomach": ("69695003", "SCT", "Stomach"),
    "colon and rectum": ("14742008", "SCT", "Large intestine"),
    "large intestine": ("14742008", "SCT", "Large intestine"),
    "colon": ("71854001", "SCT", "Colon"),
    "rectum": ("34402009", "SCT", "Rectum"),
    "liver": ("10200004", "SCT", "Liver"),
    "lymph nodes": ("59441001", "SCT", "Lymph node"),
    "lymph node": ("59441001", "SCT", "Lymph node"),
    "bone": ("272673000", "SCT", "Bone"),
    "lung": ("39607008", "SCT", "Lung"),
    "soft tissue": ("87784001", "SCT", "Soft tissue"),
    "adrenal": ("23451007", "SCT", "Adrenal gland"),
    "adrenal gland": ("23451007", "SCT", "Adrenal gland"),
}

#: NETPET's private concepts (scheme 99NETPET): code value -> meaning
PRIVATE_CODES: Dict[str, str] = {
    "TLA": "Total lesion activity (SUVmean x metabolic volume)",
    "TLR-LIVER": "SUVmax over the liver reference SUVmean",
    "SUV-RULE-CALL": "Call of the liver-threshold SUV rule",
    "READER-CALL": "Reader's visual call",
    "KRENNING": "Krenning score",
    **{f"KRENNING-{k}": f"Krenning score {k}" for k in range(5)},
    "CONFIDENCE": "Reader's confidence of malignancy (5-point scale)",
    **{f"CONFIDENCE-{k}": f"{k} {text}" for k, text in schema.CONFIDENCE_SCALE.items()},
    "SSTR-RADS": "SSTR-RADS 1.0 category",
    **{f"SSTR-RADS-{c}": f"SSTR-RADS {c}" for c in schema.SSTR_RADS_CATEGORIES},
    "CORR-BENIGN": CORRELATE_VALUES["benign"][2],
}


class SRError(NetpetError, ValueError):
    """A structured report cannot be written (the message names the table row or the file, and what to do)."""


def _code(triple: Tuple[str, str, str]):
    import highdicom as hd

    value, scheme, meaning = triple
    return hd.sr.CodedConcept(value, scheme, meaning)


def _private(value: str):
    return _code((value, PRIVATE_SCHEME, PRIVATE_CODES[value]))


def _number(row: Mapping[str, Any], column: str, where: str) -> Optional[float]:
    """A cell as a finite number, or None when empty or not a number (NaN: nothing was measured)."""
    text = str(row.get(column) or "").strip()
    if not text or text.lower() == "nan":
        return None
    try:
        value = float(text)
    except ValueError:
        raise SRError(f"{where}: {column} is {printable(text)!r}, not a number; correct the cell or leave it "
                      "empty.") from None
    if not math.isfinite(value):
        raise SRError(f"{where}: {column} is {printable(text)!r}; give a finite number or leave it empty.")
    return value


def where_row(table: str, row: Mapping[str, Any]) -> str:
    """How a message names a row: the table and the row's key."""
    return (f"study table {table}, row of patient {printable(row.get('patient_id', ''))} session "
            f"{printable(row.get('session_id', ''))} reader {printable(row.get('reader', ''))} lesion "
            f"{printable(row.get('lesion_id', ''))}")


def measurements(row: Mapping[str, Any], where: str = "the row") -> List[Any]:
    """The TID 300 measurements of a study-table row (highdicom ``Measurement``), those it has a value for.

    Raises
    ------
    SRError
        A measurement cell that is not a finite number; an unknown ``suv_type``.
    """
    import highdicom as hd

    suv_type = str(row.get("suv_type") or "bw").strip().lower()
    if suv_type not in SUV_CODES:
        raise SRError(f"{where}: suv_type is {printable(suv_type)!r}, which has no DICOM SUV code; write one of "
                      f"{', '.join(SUV_CODES)}.")
    quantity, unit = SUV_CODES[suv_type]
    out = []
    for column, derivation in (("suv_max", MAXIMUM), ("suv_peak", PEAK), ("suv_mean", MEAN)):
        value = _number(row, column, where)
        if value is not None:
            out.append(hd.sr.Measurement(name=_code(quantity), value=value, unit=_code(unit),
                                         derivation=_code(derivation)))
    mtv = _number(row, "mtv_ml", where)
    if mtv is not None:
        out.append(hd.sr.Measurement(name=_code(METABOLIC_VOLUME), value=mtv, unit=_code(MILLILITER)))
    tla = _number(row, "tla", where)
    if tla is not None:
        name = _code(TLG) if str(row.get("tracer", "")).strip().lower() == "fdg" else _private("TLA")
        # SUV x ml: (g/ml) x ml, written in UCUM as the SUV unit times ml
        tla_unit = (f"{unit[0]}.ml", "UCUM", f"{quantity[2]} times milliliter")
        out.append(hd.sr.Measurement(name=name, value=tla, unit=_code(tla_unit)))
    ratio = _number(row, "tl_ratio", where)
    if ratio is not None:
        out.append(hd.sr.Measurement(name=_code(LESION_TO_BACKGROUND), value=ratio, unit=_code(NO_UNITS),
                                     method=_private("TLR-LIVER")))
    return out


def evaluations(row: Mapping[str, Any], where: str = "the row") -> List[Any]:
    """The qualitative evaluations of a study-table row (highdicom ``QualitativeEvaluation``), those recorded.

    Raises
    ------
    SRError
        A call, Krenning score, confidence, SSTR-RADS category or anatomic correlate that the study table does
        not allow (the sentence of :mod:`netpet.schema`).
    """
    import highdicom as hd

    prefix = f"{where}: "
    out = []
    call = schema.clean_label(row.get("call")).lower()
    if call and call not in CALL_VALUES:
        raise SRError(f"{where}: call is {printable(row.get('call'))!r}; the SUV rule's call is positive, equivocal or "
                      "negative, or empty.")
    try:
        reader_call = schema.check_reader_call(row.get("reader_call"), prefix)
        confidence = schema.check_confidence(row.get("confidence"), prefix)
        correlate = schema.check_anatomic_correlate(row.get("anatomic_correlate"), prefix)
        rads = schema.check_sstr_rads(row.get("sstr_rads"), prefix)
    except schema.SchemaError as exc:
        raise SRError(str(exc)) from None
    if call:
        out.append(hd.sr.QualitativeEvaluation(_private("SUV-RULE-CALL"), _code(CALL_VALUES[call])))
    krenning = _number(row, "krenning", where)
    if krenning is not None:
        if krenning not in (0, 1, 2, 3, 4):
            raise SRError(f"{where}: krenning is {row.get('krenning')!r}; the Krenning score is a whole number from 0 "
                          "to 4, or empty.")
        out.append(hd.sr.QualitativeEvaluation(_private("KRENNING"), _private(f"KRENNING-{int(krenning)}")))
    if reader_call:
        out.append(hd.sr.QualitativeEvaluation(_private("READER-CALL"), _code(CALL_VALUES[reader_call])))
    if confidence is not None:
        out.append(hd.sr.QualitativeEvaluation(_private("CONFIDENCE"), _private(f"CONFIDENCE-{confidence}")))
    if rads:
        out.append(hd.sr.QualitativeEvaluation(_private("SSTR-RADS"), _private(f"SSTR-RADS-{rads}")))
    if correlate:
        out.append(hd.sr.QualitativeEvaluation(_code(CORRELATION), _code(CORRELATE_VALUES[correlate])))
    return out


def region_code(region: Any) -> Optional[Tuple[str, str, str]]:
    """The SNOMED CT code of a reader's region (case and spacing ignored), or None without one."""
    return REGION_CODES.get(schema.clean_label(region).lower())


def build_report(rows: Sequence[Mapping[str, Any]], pet: Sequence[Any], seg: Any, reader: str,
                 table: str = "the study table", series_uid: Optional[str] = None, instance_number: int = 1):
    """The Comprehensive 3D SR of one session and reader (see the module docstring).

    Parameters
    ----------
    rows
        The active study-table rows of the session and reader, one per finding (retracted rows left out by
        the caller); each ``lesion_id`` must label a segment of ``seg``.
    pet
        The PET datasets (headers suffice) the SEG references: the SR's evidence and patient/study identity.
    seg
        The DICOM SEG (pydicom dataset) holding the findings' segments.
    reader
        The reader id: the person observer's name.
    table
        The study table's name, for messages.

    Returns
    -------
    highdicom.sr.Comprehensive3DSR

    Raises
    ------
    SRError
        A row whose lesion has no segment in the SEG, or whose cells cannot be coded (the row is named).
    """
    import highdicom as hd
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    labels = {str(item.SegmentLabel): item for item in seg.SegmentSequence}
    groups = []
    for row in sorted(rows, key=lambda r: str(r.get("lesion_id", ""))):
        where = where_row(table, row)
        lesion_id = str(row.get("lesion_id", ""))
        item = labels.get(lesion_id)
        if item is None:
            raise SRError(f"{where}: the DICOM SEG {seg.SOPInstanceUID} holds no segment labelled {printable(lesion_id)} "
                          "(its segments: " + (", ".join(printable(k) for k in sorted(labels)) or "none") + "); write "
                          "the SEG again (netpet quantify --dicom-seg) or move it away so that netpet sr writes one from "
                          "the .seg.nrrd.")
        site = region_code(row.get("region"))
        time_point = schema.clean_label(row.get("time_point"))
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=str(item.TrackingUID), identifier=lesion_id),
            referenced_segment=referenced_segment(seg, int(item.SegmentNumber)),
            finding_type=_code(LESION), finding_category=_code(ALTERED_STRUCTURE),
            algorithm_id=hd.sr.AlgorithmIdentification(name="NETPET SUVQuant", version=__version__),
            finding_sites=[hd.sr.FindingSite(_code(site))] if site else None,
            session=str(row.get("session_id", "")) or None,
            time_point_context=hd.sr.TimePointContext(time_point=time_point) if time_point else None,
            measurements=measurements(row, where) or None,
            qualitative_evaluations=evaluations(row, where) or None,
        ))
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121006", "DCM", "Person"),
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=person_name(reader)))
    device = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_device_uid(), name=f"NETPET {__version__}", manufacturer_name="NETPET", model_name="SUVQuant"))
    tracer = str(rows[0].get("tracer", "")).strip().lower() if rows else ""
    modality = str(rows[0].get("modality", "")).strip().upper() if rows else ""
    procedure = PROCEDURE_FDG_PETCT if tracer == "fdg" and modality == "PET/CT" else PROCEDURE_PET
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer, observer_device_context=device),
        procedure_reported=_code(procedure), imaging_measurements=groups or None)
    sources = list(pet) + [seg]
    return hd.sr.Comprehensive3DSR(
        evidence=sources, content=report[0], series_instance_uid=series_uid or hd.UID(),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=instance_number,
        manufacturer="NETPET", manufacturer_model_name="SUVQuant", software_versions=__version__,
        series_description=f"NETPET measurements {reader}"[:64], is_complete=True,
        coding_schemes=[CodingSchemeIdentificationItem(
            designator=PRIVATE_SCHEME, name="NETPET private codes",
            responsible_organization="NETPET project")],
    )


def referenced_segment(seg, number: int):
    """The Referenced Segment content (DCM 121191) of segment ``number`` of a SEG: the whole segment (no frame
    numbers: PS3.3 C.18.3.1.1 allows ReferencedSegmentNumber only without ReferencedFrameNumber) and the source
    images of its frames (DCM 121233), read from the SEG's functional groups.

    (highdicom's ``ReferencedSegment.from_segmentation`` reads the segment number from the per-frame groups
    only; a SEG of one segment carries it in the shared group, as highdicom itself writes it.)
    """
    import highdicom as hd

    shared = seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None
    frames, sources = [], []
    for position, item in enumerate(getattr(seg, "PerFrameFunctionalGroupsSequence", []), start=1):
        ident = item.get("SegmentIdentificationSequence") or (shared.get("SegmentIdentificationSequence")
                                                              if shared is not None else None)
        if ident is None or int(ident[0].ReferencedSegmentNumber) != number:
            continue
        frames.append(position)
        derivation = item.get("DerivationImageSequence") or (shared.get("DerivationImageSequence")
                                                             if shared is not None else None)
        for derived in derivation or []:
            for source in derived.get("SourceImageSequence", []):
                pair = (str(source.ReferencedSOPClassUID), str(source.ReferencedSOPInstanceUID))
                if pair not in sources:
                    sources.append(pair)
    if not sources:
        return hd.sr.ReferencedSegment(
            sop_class_uid=str(seg.SOPClassUID), sop_instance_uid=str(seg.SOPInstanceUID), segment_number=number,
            source_series=hd.sr.SourceSeriesForSegmentation(str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)))
    return hd.sr.ReferencedSegment(
        sop_class_uid=str(seg.SOPClassUID), sop_instance_uid=str(seg.SOPInstanceUID), segment_number=number,
        source_images=[hd.sr.SourceImageForSegmentation(c, u) for c, u in sources])


def _device_uid() -> str:
    """NETPET's device observer UID: the same for every report of one NETPET version (the ``2.25.`` form of a
    name-based UUID, PS3.5 B.2)."""
    import uuid

    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, 'netpet-device-' + __version__).int}"


# -- the study table's sessions ------------------------------------------------------------------------------

@dataclass
class SessionRows:
    """The rows of one (patient, session, reader): active findings and the count of retracted ones."""

    patient_id: str
    session_id: str
    reader: str
    rows: List[Dict[str, str]] = field(default_factory=list)
    retracted: int = 0
    empty: int = 0

    @property
    def name(self) -> str:
        """The file-name stem of its SR and SEG: ``<patient>_<session>_<reader>`` (as the .seg.nrrd is named)."""
        return schema.segmentation_file_name(self.patient_id, self.session_id, self.reader)[:-len(".seg.nrrd")]


def session_rows(rows: Iterable[Mapping[str, Any]], patient: Optional[str] = None, session: Optional[str] = None,
                 reader: Optional[str] = None) -> List[SessionRows]:
    """The table's rows grouped by (patient, session, reader), restricted to those named; retracted findings and
    session rows without a lesion are counted, not kept."""
    groups: Dict[Tuple[str, str, str], SessionRows] = {}
    for row in rows:
        key = tuple(schema.clean_label(row.get(c)) for c in ("patient_id", "session_id", "reader"))
        if (patient is not None and key[0] != patient) or (session is not None and key[1] != session) or \
                (reader is not None and key[2] != reader):
            continue
        group = groups.setdefault(key, SessionRows(*key))
        if not schema.clean_label(row.get("lesion_id")):
            group.empty += 1
        elif schema.is_retracted(row):
            group.retracted += 1
        else:
            group.rows.append(dict(row))
    return [groups[k] for k in sorted(groups)]


# -- the PET, the SEG -------------------------------------------------------------------------------------------

def find_pet(index, group: SessionRows, table: str, pseudonymiser=None):
    """The PET series record of a session in an index of the DICOM tree, found by the rows' ``series_uid``, and
    whether the table names it by its own UID (True) or, with a pseudonymiser, by its pseudonymised UID (False: a
    table written with ``--pseudonymise``); of several copies, the one whose PatientID is the rows' patient id (the
    table's patient id may be the manifest's, not the DICOM PatientID).

    Raises
    ------
    SRError
        The rows name no series or several; no PET series of that UID (and patient) in the tree.
    """
    uids = sorted({schema.clean_label(r.get("series_uid")) for r in group.rows})
    where = (f"study table {table}, rows of patient {printable(group.patient_id)} session "
             f"{printable(group.session_id)} reader {printable(group.reader)}")
    if uids == [""]:
        raise SRError(f"{where}: no series_uid, the rows were measured on an SUV image, not a DICOM PET: a DICOM SR "
                      "and SEG need the PET series; quantify the session from its DICOM files.")
    if len(uids) != 1 or not uids[0]:
        raise SRError(f"{where}: the rows name {len([u for u in uids if u])} PET series "
                      f"({', '.join(printable(u) for u in uids if u)}{' and empty cells' if '' in uids else ''}); a "
                      "session is one PET series: correct the series_uid cells or give the rows their own session ids.")
    uid = uids[0]
    found = [r for r in index.pet_series() if r.series_uid == uid]  # a table written without pseudonyms
    plain = bool(found)
    if not found and pseudonymiser is not None:  # a pseudonymised table names the series by its pseudonymised UID
        found = [r for r in index.pet_series() if pseudonymiser.uid(r.series_uid) == uid]
    if len(found) > 1:  # an original beside a pseudonymised copy: the one of the table's patient id
        found = [r for r in found if (r.patient_id if plain else pseudonymiser.patient(r.patient_id))
                 == group.patient_id] or found
    if not found:
        hint = (" (the table's patient ids are pseudonyms: give --pseudonymise with the study's key)"
                if group.patient_id.startswith("PSN-") and pseudonymiser is None else "")
        raise SRError(f"{where}: no PET series {printable(uid)} under {printable(index.root)}{hint}; give the DICOM "
                      "folder that holds the session's PET.")
    if len(found) > 1:
        raise SRError(f"{where}: the PET series {printable(uid)} appears {len(found)} times under "
                      f"{printable(index.root)} (patients {', '.join(printable(r.patient_id) for r in found)}); give a "
                      "folder that holds one copy.")
    return found[0], plain


def existing_seg_path(group: SessionRows, table: str) -> Optional[str]:
    """The DICOM SEG ``netpet quantify --dicom-seg`` writes beside the rows' ``.seg.nrrd``, when it exists."""
    for row in group.rows:
        name = schema.clean_label(row.get("segmentation_file"))
        if name.endswith(".seg.nrrd"):
            path = os.path.join(os.path.dirname(os.path.abspath(table)), name[:-len(".seg.nrrd")] + ".dcm")
            if os.path.isfile(path):
                return path
    return None


def seg_from_nrrd(group: SessionRows, table: str, record, path: str, pseudonymiser=None) -> str:
    """Write the session's DICOM SEG at ``path`` from its ``.seg.nrrd`` (the segments of the rows' lesions)
    and the PET files of ``record``; returns ``path``.

    Raises
    ------
    SRError
        No or several segmentation files named by the rows; a file that is missing or cannot be read; a lesion
        without its segment; a segmentation on another grid than the PET (the SEG writer's sentence).
    """
    import slicerio

    from netpet.quant.export import write_dicom_seg
    from netpet.quant.segment import lesion_from_mask
    from netpet.quant.volume import SUVVolume

    where = (f"study table {table}, rows of patient {printable(group.patient_id)} session "
             f"{printable(group.session_id)} reader {printable(group.reader)}")
    names = sorted({schema.clean_label(r.get("segmentation_file")) for r in group.rows})
    if len(names) != 1 or not names[0]:
        raise SRError(f"{where}: the segmentation_file cells name {len([n for n in names if n])} files; the findings of "
                      "a session and reader lie in one .seg.nrrd: correct the cells.")
    source = os.path.join(os.path.dirname(os.path.abspath(table)), names[0])
    if not os.path.isfile(source):
        raise SRError(f"{where}: the segmentation file {source} does not exist; quantify the session again or put the "
                      "file back beside the table.")
    try:
        segmentation = slicerio.read_segmentation(source)
    except Exception as exc:  # noqa: BLE001 - slicerio/pynrrd raise many kinds on a damaged file
        raise SRError(f"The segmentation file {source} cannot be read ({type(exc).__name__}: {exc}); quantify the "
                      "session again.") from exc
    matrix = np.asarray(segmentation["ijkToLPS"], dtype=float)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    direction = (matrix[:3, :3] / spacing).reshape(-1)
    shape = tuple(segmentation["voxels"].shape[-3:])[::-1]
    volume = SUVVolume(np.zeros(shape, np.float32), tuple(matrix[:3, 3]), tuple(spacing), tuple(direction),
                       name=f"the segmentation file {source}")
    ids = {s["id"]: s for s in segmentation["segments"]}
    lesions = {}
    for row in group.rows:
        lesion_id = str(row["lesion_id"])
        if lesion_id not in ids:
            raise SRError(f"{where_row(table, row)}: the segmentation file {source} holds no segment {printable(lesion_id)}; "
                          "quantify the lesion again.")
        mask = np.transpose(slicerio.segment_mask(segmentation, ids[lesion_id]), (2, 1, 0)) > 0
        if not mask.any():
            raise SRError(f"{where_row(table, row)}: its segment in {source} is empty; quantify the lesion again.")
        lesions[lesion_id] = lesion_from_mask(volume, mask)
    try:
        write_dicom_seg(path, record.files, volume, lesions, series_number=SEG_SERIES_NUMBER, reader=group.reader,
                        keep_existing=False, pseudonymiser=pseudonymiser, patient_id=record.patient_id)
    except ExportError as exc:
        message = str(exc)
        if message.startswith("the source PET files do not match"):
            message = (f"the segmentation file {source} does not lie on the slices of the PET series "
                       f"{record.series_uid}; quantify the session again on this PET")
        raise SRError(f"{where}: {message}") from None
    return path


# -- writing -----------------------------------------------------------------------------------------------------

class _TablePatient:
    """The pseudonymiser of one session's SR and SEG: the patient is named by ``pseudonym``, dates are shifted by
    ``days`` (the table's shift), identifying attributes emptied or removed as
    :meth:`netpet.privacy.Pseudonymiser.dataset` does."""

    def __init__(self, pseudonymiser, pseudonym: str, days: int) -> None:
        import copy

        self.keyed = copy.copy(pseudonymiser)
        self.keyed.shift_days = lambda patient_id: days  # the table's shift, whatever id the SEG writer passes
        self.pseudonym = pseudonym

    def dataset(self, ds, patient_id=None) -> None:
        self.keyed.dataset(ds, self.pseudonym)
        ds.PatientID = self.pseudonym
        ds.PatientName = self.pseudonym


def _table_shift(pseudonymiser, group: SessionRows, record, plain: bool, pet) -> int:
    """The days the table's dates of this patient were shifted back: those of the table's patient id for a plain
    table; for a pseudonymised table those of the DICOM PatientID when its pseudonym is the table's, else (the
    manifest named the patient by another id, which the table no longer holds) the difference between the PET's
    SeriesDate and the date of the rows' shifted ``suv_reference_time`` (the scan's time: the same day), so that
    the SR's dates agree with the table's.

    Raises
    ------
    SRError
        A pseudonymised table whose shift cannot be found that way (no dates to compare).
    """
    import datetime as _dt

    from netpet.privacy import MAX_SHIFT_DAYS

    if plain:
        return pseudonymiser.shift_days(group.patient_id)
    if pseudonymiser.patient(record.patient_id) == group.patient_id:
        return pseudonymiser.shift_days(record.patient_id)
    shifted = sorted({str(r.get("suv_reference_time") or "")[:10] for r in group.rows} - {""})
    real = str(pet[0].get("SeriesDate") or pet[0].get("AcquisitionDate") or "") if pet else ""
    try:
        days = (_dt.datetime.strptime(real, "%Y%m%d").date() - _dt.date.fromisoformat(shifted[0])).days
    except (ValueError, IndexError):
        days = 0
    if len(shifted) != 1 or not 1 <= days <= MAX_SHIFT_DAYS:
        raise SRError(f"patient {printable(group.patient_id)} session {printable(group.session_id)} reader "
                      f"{printable(group.reader)}: the table is pseudonymised under another id than the PET's PatientID "
                      "and its suv_reference_time does not tell by how many days its dates were shifted; write the SR "
                      "from a table quantified without --pseudonymise, with --pseudonymise here.")
    return days


def write_session(group: SessionRows, index, table: str, out_dir: str, pseudonymiser=None) -> Dict[str, Any]:
    """Write the SR of one session and reader into ``out_dir`` (and its SEG when the session has none, or, with a
    pseudonymiser, when its SEG carries the patient's identity).

    With a pseudonymiser the SR and SEG name the patient by the pseudonym (the table's, or the one of the table's
    patient id for a table written without pseudonyms), and so do their file names.

    Returns {"patient_id", "session_id", "reader", "sr", "seg", "seg_written", "findings", "retracted"}.

    Raises
    ------
    SRError, netpet.quant.export.ExportError
        See :func:`find_pet`, :func:`seg_from_nrrd`, :func:`build_report`; a file that cannot be written.
    """
    record, plain = _checked_pet(group, index, table, pseudonymiser)
    return _write_found(group, record, plain, table, out_dir, pseudonymiser)


def _checked_pet(group: SessionRows, index, table: str, pseudonymiser=None):
    """Every cell of the rows codable (before any file is written), then the session's PET: :func:`find_pet`."""
    for row in group.rows:
        measurements(row, where_row(table, row))
        evaluations(row, where_row(table, row))
    return find_pet(index, group, table, pseudonymiser)


def _pet_headers(files: Sequence[str]) -> list:
    import pydicom

    return [pydicom.dcmread(p, stop_before_pixels=True) for p in files]


def _write_found(group: SessionRows, record, plain: bool, table: str, out_dir: str, pseudonymiser=None,
                 pet: Optional[list] = None) -> Dict[str, Any]:
    """:func:`write_session` once the PET is found (``record``, ``plain``: :func:`find_pet`); ``pet``: its headers
    when already read (by the session's other reader), read here otherwise."""
    import highdicom as hd
    import pydicom

    pet = _pet_headers(record.files) if pet is None else pet
    name = group.name
    if pseudonymiser is not None:
        pseudonym = pseudonymiser.patient(group.patient_id) if plain else group.patient_id
        days = _table_shift(pseudonymiser, group, record, plain, pet)
        pseudonymiser = _TablePatient(pseudonymiser, pseudonym, days)
        name = schema.segmentation_file_name(pseudonym, group.session_id, group.reader)[:-len(".seg.nrrd")]
    seg_path = existing_seg_path(group, table)
    if seg_path is not None and pseudonymiser is not None:  # a SEG with the patient's identity is not referenced
        if str(pydicom.dcmread(seg_path, stop_before_pixels=True, specific_tags=["PatientIdentityRemoved"])
               .get("PatientIdentityRemoved", "")).upper() != "YES":
            seg_path = None
    written = seg_path is None
    if written:
        seg_path = seg_from_nrrd(group, table, record, os.path.join(out_dir, name + "_seg.dcm"), pseudonymiser)
    try:
        seg = hd.seg.segread(seg_path)
    except Exception as exc:  # noqa: BLE001 - pydicom/highdicom raise many kinds on a damaged file
        raise SRError(f"The DICOM SEG {seg_path} cannot be read ({type(exc).__name__}: {exc}); move it away so that "
                      "netpet sr writes one from the .seg.nrrd.") from exc
    referenced = {str(s.SeriesInstanceUID) for s in getattr(seg, "ReferencedSeriesSequence", [])}
    if referenced != {record.series_uid}:
        raise SRError(f"The DICOM SEG {seg_path} references the series {', '.join(sorted(referenced)) or 'none'}, not the "
                      f"session's PET {record.series_uid}; move it away so that netpet sr writes one from the .seg.nrrd.")
    sr = build_report(group.rows, pet, seg, group.reader, table)
    if pseudonymiser is not None:
        pseudonymiser.dataset(sr)
    path = os.path.join(out_dir, name + "_sr.dcm")
    check_writable(os.path.realpath(path), path, "DICOM SR", SRError)
    replace_atomically(os.path.realpath(path), lambda temporary: sr.save_as(temporary), suffix=".dcm", what="DICOM SR",
                       error=SRError)
    log.info("%s: %d findings, %d retracted left out%s", path, len(group.rows), group.retracted,
             f"; SEG written: {seg_path}" if written else "")
    return {"patient_id": group.patient_id, "session_id": group.session_id, "reader": group.reader, "sr": path,
            "seg": seg_path, "seg_written": written, "findings": len(group.rows), "retracted": group.retracted}


def write_reports(table: str, dicom_root: str, out_dir: str, patient: Optional[str] = None,
                  session: Optional[str] = None, reader: Optional[str] = None, pseudonymiser=None,
                  jobs: Optional[int] = None, index=None) -> Dict[str, Any]:
    """One DICOM SR (and SEG where the session has none) per session and reader of a study table.

    Parameters
    ----------
    table
        The study table (.csv, .sqlite/.db).
    dicom_root
        The DICOM folder that holds the sessions' PET series (searched recursively).
    out_dir
        Where ``<patient>_<session>_<reader>_sr.dcm`` (and ``..._seg.dcm``) are written.
    patient, session, reader
        Only the rows of this patient, session, reader.
    pseudonymiser
        A :class:`netpet.privacy.Pseudonymiser`: for a table written with ``--pseudonymise`` (its PET series are
        found by their pseudonymised UIDs) and to pseudonymise the SR and SEG.
    jobs
        Worker processes for indexing ``dicom_root`` and for writing (the sessions' PET series in parallel;
        default: the cores of this machine; 1: all in this process).
    index
        The index of ``dicom_root`` when the caller has it (:func:`netpet.dicom.index.index_tree`): not indexed
        again.

    Returns
    -------
    dict
        {"reports": [per session, see :func:`write_session`], "errors": [sentences], "warnings": [sentences]}.
        A session that cannot be reported is an error sentence, the others are written; retracted findings left
        out and sessions without an active finding (no SR) are warnings.

    Raises
    ------
    SRError
        No row of the table is left to report (none at all, none of the patient/session/reader named).
    """
    from netpet.dicom.index import index_tree
    from netpet.dicom.files import default_jobs
    from netpet.quant.table import StudyTable

    groups = session_rows(StudyTable(table).read(), patient, session, reader)
    chosen = ", ".join(f"{k} {printable(v)}" for k, v in (("patient", patient), ("session", session),
                                                          ("reader", reader)) if v is not None)
    if not groups:
        raise SRError(f"The study table {table} holds no rows{' of ' + chosen if chosen else ''}; nothing to report.")
    warnings: List[str] = []
    errors: List[str] = []
    reports: List[Dict[str, Any]] = []
    todo = []
    for group in groups:
        if group.retracted:
            warnings.append(f"patient {printable(group.patient_id)} session {printable(group.session_id)} reader "
                            f"{printable(group.reader)}: {group.retracted} retracted finding(s) left out of the report")
        if not group.rows:  # nothing to measure or reference: said, not an error
            warnings.append(f"patient {printable(group.patient_id)} session {printable(group.session_id)} reader "
                            f"{printable(group.reader)}: no active finding (a session read without findings, or every "
                            "finding retracted), so no SR: a measurement report needs a finding to measure")
            continue
        todo.append(group)
    if todo:
        os.makedirs(out_dir, exist_ok=True)
        if index is None:
            index = index_tree(dicom_root, jobs=jobs)
        # each group's PET found here (in the groups' order); the groups of one PET series (its readers) are written
        # together, their PET headers read once; the series in parallel processes with several jobs
        outcomes: List[Any] = [None] * len(todo)
        series: Dict[str, List[int]] = {}
        found: Dict[int, Any] = {}
        for number, group in enumerate(todo):
            try:
                found[number] = _checked_pet(group, index, table, pseudonymiser)
            except NetpetError as exc:
                outcomes[number] = ("error", str(exc))
                continue
            series.setdefault(found[number][0].series_uid, []).append(number)
        work = [[(number, todo[number], *found[number]) for number in numbers] for numbers in series.values()]
        jobs = min(default_jobs() if jobs is None else max(1, jobs), len(work))
        if jobs <= 1:
            results = [_write_series(part, table, out_dir, pseudonymiser) for part in work]
        else:
            from concurrent.futures import ProcessPoolExecutor

            from netpet.dicom.files import process_context

            with ProcessPoolExecutor(max_workers=jobs, mp_context=process_context()) as pool:
                results = list(pool.map(_write_series, work, *([v] * len(work) for v in (table, out_dir,
                                                                                            pseudonymiser))))
        for part in results:
            for number, outcome in part:
                outcomes[number] = outcome
        for kind, value in outcomes:
            (reports if kind == "report" else errors).append(value)
    for message in warnings:
        log.info("%s", message)
    return {"reports": reports, "errors": errors, "warnings": warnings}


def _write_series(part, table: str, out_dir: str, pseudonymiser=None) -> List[Tuple[int, Tuple[str, Any]]]:
    """Write the groups of one PET series (``part``: (number, group, record, plain) each), its headers read once;
    (number, ("report", result) or ("error", sentence)) per group. Runs in a worker process with several jobs."""
    pet = None
    outcomes = []
    for number, group, record, plain in part:
        try:
            pet = _pet_headers(record.files) if pet is None else pet
            outcomes.append((number, ("report", _write_found(group, record, plain, table, out_dir, pseudonymiser,
                                                              pet))))
        except NetpetError as exc:
            outcomes.append((number, ("error", str(exc))))
    return outcomes
