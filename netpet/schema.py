"""The study table's schema and the rules that fill its key: one place for the command line and Slicer.

A study-table row is one lesion finding, keyed by :data:`KEY` (patient, session, modality, tracer,
reader, lesion id). ``netpet quantify`` (:mod:`netpet.quant.pipeline`) and SUVQuant's Logic in
Slicer both fill the key and the reader's labels through the functions here, so that the same
PET series read through either path gives the same keys (an upsert then updates the row instead
of adding a second one, which ``netpet stats`` would refuse as a duplicated key). The table's
file format and its safe writes are in :mod:`netpet.quant.table`; StudyStats
(:mod:`netpet.stats.data`) reads the key from here. This module imports nothing of NETPET but its errors.

The rules
---------
Session id (:func:`choose_session_id`), first that applies:

1. an **explicit** id: the manifest's ``session_id`` cell on the command line; in Slicer the
   ``sessionID`` given to the Logic or stored on the PET node (attribute ``NETPET.SessionID``);
2. the id the **table already holds** for this patient's PET series (rows with the same
   ``patient_id`` and ``series_uid`` under one session id): a session first written by a batch
   run with the manifest's names and then corrected in Slicer lands in the same rows;
3. the **derived** id (:func:`derive_session_id`) from the series' index record:
   ``<TRACER>-<MODALITY>-<6 hex digits>``, e.g. ``DOTATATE-PETCT-3F9A2C``: the tracer key and the
   modality label (:func:`tracer_key`, :func:`modality_label`) in capitals without ``/``, and the
   first six hexadecimal digits of the SHA-1 of the StudyInstanceUID (one PET study, one session;
   two PET series of one study with the same tracer, such as a dual-time-point scan, need explicit
   ids). It holds no date or UID: nothing identifying enters the table through it (with
   ``--pseudonymise`` the digest is taken of the pseudonymised UID).

An explicit id that differs from the one the table already holds for the same patient and series
is used as given, with a warning (:func:`session_id_conflict`): the series then has rows under two
session ids.

Modality label: the index's hybrid label (``PET/CT``, ``PET/MR``, ``SPECT/CT``), else the imaging
kind alone (``PET``, or ``SPECT`` for a quantitative SPECT stored as PT). Tracer: the tracer key
the index found (``dotatate``, ``fdg``, ``other``), else ``unknown``.

Region and lesion type (``region``, ``lesion_type``) are the reader's words, as given (the
manifest's columns on the command line; per lesion in Slicer): :func:`clean_label` trims them and
folds runs of white space to one space, in both paths alike. :data:`REGION_SUGGESTIONS` and
:data:`LESION_TYPE_SUGGESTIONS` are the words a form offers (free text is accepted). The reader id
is cleaned the same way; :data:`DEFAULT_READER` is the reader of a form left as it opened.

Time point (``time_point``, ``days_from_baseline``): the follow-up time axis of a session
(:mod:`netpet.clinical.followup`). ``time_point`` is a plain-text label (``baseline``, ``FU1``,
``FU2``...; empty reads as :data:`BASELINE`), ``days_from_baseline`` a number of days >= 0 (may be
empty). Both are columns, not part of :data:`KEY`: every time point is its own session, so the
session id already tells two time points of a patient apart (a follow-up scan is another PET
study, hence another derived session id), and a key that changed with a corrected time point would
orphan the rows written before. :func:`check_time_point` and :func:`check_days_from_baseline`
validate them (``netpet quantify`` reads them from the manifest's optional columns of the same
names); :func:`time_point_rank` orders the usual labels when days are not given.

The segmentation of a (patient, session, reader) is one ``.seg.nrrd`` beside the table, named by
:func:`segmentation_file_name` in both paths (the writes merge: each path keeps the other's segments).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Iterable, Mapping, Optional, Tuple

from netpet.errors import NetpetError

KEY: Tuple[str, ...] = ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id")
REQUIRED: Tuple[str, ...] = KEY + (
    "region", "suv_max", "suv_peak", "suv_mean", "mtv_ml", "tla", "tb_ratio", "tl_ratio", "liver_suv_mean",
    "liver_suv_sd", "krenning", "call", "centroid_r", "centroid_a", "centroid_s", "segmentation_file", "suv_type",
)
#: The columns NETPET writes, in order (REQUIRED first); further columns of a table are kept after them.
COLUMNS: Tuple[str, ...] = REQUIRED + (
    "lesion_type", "time_point", "days_from_baseline", "suv_min", "suv_sd", "voxels", "longest_diameter_mm", "threshold_suv", "method",
    "background_suv_mean", "background_suv_sd", "spleen_suv_mean", "liver_suv_max", "liver_center_r", "liver_center_a",
    "liver_center_s", "seed_r", "seed_a", "seed_s", "suv_peak_center_r", "suv_peak_center_a", "suv_peak_center_s",
    "series_uid", "suv_units", "suv_decay_correction", "suv_reference_time", "suv_reference_rule",
    "suv_injection_time", "suv_dose_mbq", "suv_weight_kg", "suv_factor", "suv_warnings", "netpet_version", "updated",
) + (
    # the reader's own reading (issue 14): written by ``netpet record`` / ``netpet retract`` and SUVQuant, never by
    # the SUV rule; see READER_COLUMNS
    "finding_status", "reader_call", "confidence", "anatomic_correlate", "sstr_rads", "retraction_reason",
)

#: The reader-study columns of a row (issue 14), beside the SUV rule's ``call`` and ``krenning``:
#:
#: * ``finding_status``: :data:`FINDING_STATUSES`; empty reads as ``active``. A ``retracted`` finding is withdrawn by
#:   its reader: it stays in the table (with its audit trail) and no analysis counts it;
#: * ``reader_call``: the reader's visual call, one of :data:`READER_CALLS`, or empty (not recorded);
#: * ``confidence``: the reader's confidence that the finding is malignant, :data:`CONFIDENCE_SCALE` (1-5), or empty;
#: * ``anatomic_correlate``: what the reader sees on the CT or MR at the finding, :data:`ANATOMIC_CORRELATES`, or empty;
#: * ``sstr_rads``: the SSTR-RADS 1.0 category the reader confirmed or chose (:data:`SSTR_RADS_CATEGORIES`), or empty;
#:   the software's proposal is computed from the row (:mod:`netpet.clinical.sstr_rads`) and shown beside it;
#: * ``retraction_reason``: why the finding was retracted (free text), empty otherwise.
READER_COLUMNS: Tuple[str, ...] = (
    "finding_status", "reader_call", "confidence", "anatomic_correlate", "sstr_rads", "retraction_reason",
)
#: The ``method`` column: the segmentation methods (:mod:`netpet.quant.segment`) and the default. Kept here, in the
#: light schema module, so that a command's choices can be listed without importing the segmentation and its
#: scientific libraries.
SEGMENTATION_METHODS = ("adaptive", "fixed41", "fixed50", "absolute", "liver-percist", "liver-max", "gradient")
DEFAULT_SEGMENTATION_METHOD = "adaptive"

ACTIVE = "active"
RETRACTED = "retracted"
FINDING_STATUSES: Tuple[str, ...] = (ACTIVE, RETRACTED)
READER_CALLS: Tuple[str, ...] = ("positive", "equivocal", "negative")
#: the 5-point confidence of malignancy a reader records per finding (the scale of reader ROC studies)
CONFIDENCE_SCALE = {1: "definitely benign", 2: "probably benign", 3: "indeterminate", 4: "probably malignant",
                    5: "definitely malignant"}
#: the reader's anatomical correlate on CT/MR: ``none`` (no correlate), ``lesion`` (a lesion consistent with the finding),
#: ``benign`` (a lesion characterised as benign on anatomical imaging, e.g. haemangioma, degenerative change)
ANATOMIC_CORRELATES: Tuple[str, ...] = ("none", "lesion", "benign")
#: SSTR-RADS 1.0 categories (Werner et al., J Nucl Med 2018;59:1085-1091)
SSTR_RADS_CATEGORIES: Tuple[str, ...] = ("1A", "1B", "2A", "2B", "3A", "3B", "3C", "3D", "4", "5")

#: the reader id of a Slicer form left as it opened
DEFAULT_READER = "reader1"
#: the tracer of a series whose tracer is not known
UNKNOWN_TRACER = "unknown"
#: the digits of the StudyInstanceUID's SHA-1 in a derived session id
SESSION_DIGEST_DIGITS = 6

#: Regions a form offers (the study's body regions; free text is accepted)
REGION_SUGGESTIONS: Tuple[str, ...] = (
    "pancreas", "small bowel", "stomach", "colon and rectum", "liver", "lymph nodes", "bone", "lung", "soft tissue",
    "adrenal", "other",
)
#: Lesion types a form offers (free text is accepted)
LESION_TYPE_SUGGESTIONS: Tuple[str, ...] = (
    "primary", "lymph node metastasis", "liver metastasis", "bone metastasis", "other metastasis",
    "TIO culprit tumour", "physiological uptake", "benign", "indeterminate",
)

#: the time point of a session whose ``time_point`` is empty
BASELINE = "baseline"
#: Labels :func:`time_point_rank` orders without days: baseline (BL, T0, pre) is 0; FU1, FU 1, FU-1, follow-up 1,
#: followup1, T1, TP1, V1... is 1; and so on
_BASELINE_LABELS = frozenset({"baseline", "bl", "t0", "tp0", "v0", "fu0", "pre", "pretreatment", "pre-treatment"})
_RANKED_LABEL = re.compile(r"(?:fu|f/u|follow[- ]?up|followup|t|tp|v|visit|time point|timepoint)[ _-]?(\d{1,3})\Z")

_SPACES = re.compile(r"\s+")
_NOT_ID = re.compile(r"[^A-Z0-9]+")
_FILE_UNSAFE = re.compile(r"[\s/\\]+")


class SchemaError(NetpetError, ValueError):
    """A value cannot fill a study-table field (the message names it and says what is accepted)."""


def clean_label(value: Any) -> str:
    """A reader's label (region, lesion type, reader, explicit session id) as the table keeps it: text,
    trimmed, every run of white space (line breaks and tabs too) one space; None is ''."""
    if value is None:
        return ""
    return _SPACES.sub(" ", str(value)).strip()


def modality_label(hybrid: Optional[str], imaging: Optional[str] = None) -> str:
    """The ``modality`` of a row: the hybrid label (``PET/CT``, ``PET/MR``, ``SPECT/CT``), else the
    imaging kind alone (``PET``; ``SPECT`` for a quantitative SPECT stored as PT)."""
    return clean_label(hybrid) or clean_label(imaging) or "PET"


def tracer_key(key: Optional[str]) -> str:
    """The ``tracer`` of a row: the index's tracer key (``dotatate``, ``fdg``, ``other``), else ``unknown``."""
    return clean_label(key) or UNKNOWN_TRACER


def record_modality(record: Any) -> str:
    """:func:`modality_label` of an index record (:class:`netpet.dicom.index.SeriesRecord`)."""
    tracer = getattr(record, "tracer", None)
    return modality_label(getattr(record, "hybrid", None), getattr(tracer, "imaging", None) if tracer else None)


def record_tracer(record: Any) -> str:
    """:func:`tracer_key` of an index record."""
    tracer = getattr(record, "tracer", None)
    return tracer_key(getattr(tracer, "key", None) if tracer else None)


def derive_session_id(study_uid: str, tracer: str, modality: str) -> str:
    """The derived session id of a PET series (rule 3 of the module docstring): ``<TRACER>-<MODALITY>-<digest>``,
    e.g. ``DOTATATE-PETCT-3F9A2C``; '' without a StudyInstanceUID (an image that is not DICOM)."""
    study_uid = (study_uid or "").strip()
    if not study_uid:
        return ""
    digest = hashlib.sha1(study_uid.encode("utf-8")).hexdigest()[:SESSION_DIGEST_DIGITS].upper()
    parts = [_NOT_ID.sub("", tracer_key(tracer).upper()), _NOT_ID.sub("", modality_label(modality).upper()), digest]
    return "-".join(p for p in parts if p)


def record_session_id(record: Any) -> str:
    """:func:`derive_session_id` of an index record: its study, tracer and modality label."""
    return derive_session_id(getattr(record, "study_uid", ""), record_tracer(record), record_modality(record))


def check_session_id(value: Any, where: str = "") -> str:
    """An explicit session id, cleaned (:func:`clean_label`).

    Raises
    ------
    SchemaError
        A control character in the id (it becomes part of a file name and of messages).
    """
    text = clean_label(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SchemaError(f"{where}The session id {text!r} holds a control character; remove it.")
    return text


def check_time_point(value: Any, where: str = "") -> str:
    """A session's time point label, cleaned (:func:`clean_label`); '' stays '' (read as :data:`BASELINE`).

    Raises
    ------
    SchemaError
        A control character in the label (it goes into CSV tables and messages as plain text).
    """
    text = "" if value is None else str(value)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in text.strip(" ")):
        shown = text.encode("unicode_escape").decode("ascii")
        raise SchemaError(f"{where}time_point {shown!r} holds a control character (a tab, line break or escape); write "
                          "plain text such as baseline, FU1, FU2.")
    return clean_label(text)


def check_days_from_baseline(value: Any, where: str = "") -> Optional[float]:
    """A session's ``days_from_baseline``: a finite number >= 0 (days), or None when empty.

    Raises
    ------
    SchemaError
        Text that is not a number, NaN, infinity or a negative number.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip()):
        return None
    try:
        days = float(str(value).strip())
    except ValueError:
        days = float("nan")
    if not (math.isfinite(days) and days >= 0.0):
        shown = str(value).encode("unicode_escape").decode("ascii")
        raise SchemaError(f"{where}days_from_baseline is {shown!r}; give a finite number of days >= 0 (0 for the "
                          "baseline), or leave it empty.")
    return days


def time_point_rank(label: Any) -> Optional[int]:
    """The order of a usual time point label without days: 0 for '' and baseline (BL, T0, pre), n for FU<n>
    (FU 1, FU-1, follow-up 1, T1, TP1, V1, visit 1...); None for a label it does not know (case ignored)."""
    text = clean_label(label).lower()
    if not text or text in _BASELINE_LABELS:
        return 0
    match = _RANKED_LABEL.match(text)
    return int(match.group(1)) if match else None


def known_session_ids(rows: Iterable[Mapping[str, Any]]) -> dict:
    """{(patient_id, series_uid): {session ids}} of a study table's rows (rows without a series UID are left out)."""
    known: dict = {}
    for row in rows:
        series = clean_label(row.get("series_uid"))
        session = clean_label(row.get("session_id"))
        if series and session:
            known.setdefault((clean_label(row.get("patient_id")), series), set()).add(session)
    return known


def choose_session_id(explicit: Any, derived: str, patient_id: str = "", series_uid: str = "",
                      known: Optional[Mapping[Tuple[str, str], Any]] = None) -> str:
    """The session id of a row (the rules of the module docstring): ``explicit`` when given, else the one
    id ``known`` (:func:`known_session_ids` of the table) holds for (patient, series), else ``derived``.
    '' when none applies (an SUV image without DICOM identity and no id given)."""
    text = check_session_id(explicit)
    if text:
        return text
    held = sorted((known or {}).get((clean_label(patient_id), clean_label(series_uid)), ()))
    if len(held) == 1:
        return held[0]
    if derived in held or not held:
        return derived
    return held[0]  # several already (written by hand): the first, sorted, every time the same


def session_id_conflict(session_id: str, patient_id: str, series_uid: str,
                        known: Optional[Mapping[Tuple[str, str], Any]] = None) -> str:
    """A sentence when the table already holds this patient's series under other session ids ('' if not)."""
    held = sorted(set((known or {}).get((clean_label(patient_id), clean_label(series_uid)), ())) - {session_id})
    if not held:
        return ""
    return (f"patient {patient_id}: PET series {series_uid} is already in the study table as session "
            f"{', '.join(held)}; its rows are now also written as session {session_id} (leave the session id empty "
            "to write into the existing session, or remove the old rows)")


def _choice(value: Any, allowed: Iterable[str], column: str, where: str, meaning: str) -> str:
    text = clean_label(value)
    if not text:
        return ""
    for option in allowed:
        if text.lower() == option.lower():
            return option
    shown = text.encode("unicode_escape").decode("ascii")
    raise SchemaError(f"{where}{column} is {shown!r}; write one of {', '.join(allowed)} ({meaning}), or leave it empty.")


def check_finding_status(value: Any, where: str = "") -> str:
    """``finding_status`` cleaned: ``active`` or ``retracted`` (case ignored); '' stays '' (read as active).

    Raises
    ------
    SchemaError
        Any other text.
    """
    return _choice(value, FINDING_STATUSES, "finding_status", where, "a retracted finding is kept but not counted")


def is_retracted(row: Mapping[str, Any]) -> bool:
    """True when a row's ``finding_status`` reads ``retracted`` (case and white space ignored)."""
    return clean_label(row.get("finding_status")).lower() == RETRACTED


def check_reader_call(value: Any, where: str = "") -> str:
    """The reader's visual call cleaned: positive, equivocal or negative (case ignored); '' when not recorded.

    Raises
    ------
    SchemaError
        Any other text.
    """
    return _choice(value, READER_CALLS, "reader_call", where, "the reader's visual call")


def check_confidence(value: Any, where: str = "") -> Optional[int]:
    """The reader's confidence of malignancy: an integer 1-5 (:data:`CONFIDENCE_SCALE`), or None when empty.

    Raises
    ------
    SchemaError
        Text that is not a whole number from 1 to 5 (``4.0`` is read as 4; ``4.5``, ``0``, ``6`` are refused).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        number = float("nan")
    if not (math.isfinite(number) and number == int(number) and 1 <= number <= 5):
        shown = str(value).encode("unicode_escape").decode("ascii")
        scale = "; ".join(f"{k} {v}" for k, v in CONFIDENCE_SCALE.items())
        raise SchemaError(f"{where}confidence is {shown!r}; give a whole number from 1 to 5 ({scale}), or leave it empty.")
    return int(number)


def check_anatomic_correlate(value: Any, where: str = "") -> str:
    """The reader's anatomical correlate cleaned: none, lesion or benign (case ignored); '' when not recorded.

    Raises
    ------
    SchemaError
        Any other text.
    """
    return _choice(value, ANATOMIC_CORRELATES, "anatomic_correlate", where,
                   "none: nothing on CT/MR; lesion: a lesion at the finding; benign: a lesion characterised as benign")


def check_sstr_rads(value: Any, where: str = "") -> str:
    """An SSTR-RADS 1.0 category cleaned (``3a`` reads as ``3A``; ``SSTR-RADS 4`` as ``4``); '' when empty.

    Raises
    ------
    SchemaError
        Anything that is not one of :data:`SSTR_RADS_CATEGORIES`.
    """
    text = clean_label(value)
    text = re.sub(r"(?i)^sstr[- ]?rads[- ]?", "", text).strip()
    return _choice(text, SSTR_RADS_CATEGORIES, "sstr_rads", where, "SSTR-RADS 1.0, Werner et al. 2018")


def segmentation_file_name(patient_id: str, session_id: str, reader: str) -> str:
    """The ``.seg.nrrd`` file name of a (patient, session, reader): the same in both paths; white space and
    path separators become ``_``."""
    return _FILE_UNSAFE.sub("_", f"{patient_id}_{session_id}_{reader}") + ".seg.nrrd"


#: The reading lists' washout between a patient's sessions (days) and the minimum gap between them (sessions), as
#: documented in netpet.reading.lists; kept here, a module without imports, so that the command line's help names
#: them without importing the reading package.
DEFAULT_WASHOUT_DAYS = 28
DEFAULT_MIN_GAP = 3
