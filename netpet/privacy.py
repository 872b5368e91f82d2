"""Pseudonymisation of everything NETPET exports (``--pseudonymise KEYFILE``).

A study's exports (the study table, segmentation files, DICOM SEG, SUV provenance, the index and
the statistics report) name patients by their archive ids and carry dates. With a key they carry
instead:

- **patient ids**: a keyed hash, ``PSN-`` and 16 base-32 characters of HMAC-SHA256(key, id) (80
  bits: collisions are negligible for any study, and without the key the id cannot be recovered or
  tested by guessing, unlike a plain hash of a short, structured id). Whoever holds the key
  re-identifies by hashing the archive's ids again; the key never leaves the site.
- **dates and date-times**: shifted back by a whole number of days, 1-1095, that the key draws for
  each patient. All of one patient's dates move together, so intervals (follow-up, injection to
  scan) and times of day (decay correction) are kept. This is the "date shifting" option of DICOM
  PS3.15 E.3.6 (Retain Longitudinal Temporal Information with Modified Dates Option).
- **UIDs** (series, study, SOP instance): replaced consistently by ``2.25.`` + a keyed 128-bit
  number, the UUID-derived form of DICOM PS3.5 B.2, so that rows of one series still group.
- **names, birth dates, addresses, other ids**: never written (birth date, sex and age are not
  needed by any NETPET result; the SUV weight and height stay, they are measurements).

The key is a file of at least 32 random bytes (``netpet`` refuses shorter keys: HMAC's security
is bounded by the key's entropy). Make one with ``python3 -c "import secrets;
print(secrets.token_hex(32))" > study.key`` and keep it apart from the exports.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import os
import re
from typing import Any, Dict, Mapping, Optional, Sequence

from netpet.errors import NetpetError

PREFIX = "PSN-"
#: The shift moves dates back by 1 to this many days (3 years).
MAX_SHIFT_DAYS = 1095
MIN_KEY_BYTES = 32
#: DICOM attributes of the patient and of people that a pseudonymised export leaves empty (type 2)
#: or removes (type 3): the identifying attributes of PS3.15 Table E.1-1 that a SEG can carry.
EMPTIED = ("PatientBirthDate", "PatientSex", "ReferringPhysicianName", "AccessionNumber", "StudyID")
REMOVED = ("OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientAddress",
           "PatientBirthTime", "PatientTelephoneNumbers", "PatientMotherBirthName", "MilitaryRank",
           "EthnicGroup", "PatientComments", "IssuerOfPatientID", "InstitutionName", "InstitutionAddress",
           "InstitutionalDepartmentName", "PhysiciansOfRecord", "PerformingPhysicianName",
           "NameOfPhysiciansReadingStudy", "OperatorsName", "RequestingPhysician", "PatientAge",
           "PatientSize", "PatientWeight", "StationName", "DeviceSerialNumber")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})([T ][0-9:.]+)?$")
_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2,6}(\.\d{1,6})?)?$")
#: an absolute path inside text (POSIX or Windows), up to a space, quote or bracket
_PATH = re.compile(r"(?<![\w.])(?:/|[A-Za-z]:\\)[^\s'\")\]]+")
_DROPPED = ("patient_name", "patientname", "birth_date", "patient_birth_date", "accession_number", "institution")


class PrivacyError(NetpetError):
    """The pseudonymisation key cannot be used."""


def load_key(path: str) -> bytes:
    """The key in ``path`` (its bytes, surrounding whitespace removed).

    Raises
    ------
    PrivacyError
        The file is missing, unreadable or shorter than :data:`MIN_KEY_BYTES`.
    """
    hint = ('make one with: python3 -c "import secrets; print(secrets.token_hex(32))" > KEYFILE, and keep it '
            "apart from the exports")
    try:
        with open(path, "rb") as handle:
            key = handle.read().strip()
    except FileNotFoundError:
        raise PrivacyError(f"pseudonymisation key {path} does not exist; {hint}.") from None
    except OSError as exc:
        raise PrivacyError(f"pseudonymisation key {path} cannot be read ({exc.strerror}).") from None
    if len(key) < MIN_KEY_BYTES:
        raise PrivacyError(f"pseudonymisation key {path} holds {len(key)} bytes, fewer than {MIN_KEY_BYTES}; "
                           f"a short key lets patient ids be guessed back; {hint}.")
    return key


class Pseudonymiser:
    """Keyed, consistent replacement of patient ids, dates and UIDs (see the module docstring)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise PrivacyError(f"a pseudonymisation key needs at least {MIN_KEY_BYTES} bytes, not {len(key)}.")
        self._key = bytes(key)

    @classmethod
    def from_file(cls, path: Optional[str]) -> Optional["Pseudonymiser"]:
        """The pseudonymiser of the key in ``path``; None when no path is given."""
        return None if not path else cls(load_key(path))

    def _mac(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._key, f"{purpose}\x00{value}".encode("utf-8"), hashlib.sha256).digest()

    def patient(self, patient_id: Any) -> str:
        """The pseudonym of ``patient_id`` (an empty id stays empty; a pseudonym is kept as it is)."""
        text = "" if patient_id is None else str(patient_id)
        if text == "" or text.startswith(PREFIX):
            return text
        return PREFIX + base64.b32encode(self._mac("patient", text)[:10]).decode("ascii")

    def shift_days(self, patient_id: Any) -> int:
        """Days (1-:data:`MAX_SHIFT_DAYS`) the dates of ``patient_id`` move back."""
        return 1 + int.from_bytes(self._mac("shift", str(patient_id))[:8], "big") % MAX_SHIFT_DAYS

    def uid(self, uid: Any) -> str:
        """A consistent replacement of a DICOM UID (``2.25.`` form, PS3.5 B.2); empty stays empty."""
        text = "" if uid is None else str(uid).strip()
        if not text:
            return text
        return "2.25." + str(int.from_bytes(self._mac("uid", text)[:16], "big"))

    def date(self, value: Any, patient_id: Any) -> Any:
        """``value`` (an ISO date/date-time string, a DICOM DA/DT string, or a datetime/date)
        shifted by the patient's days; other values are returned unchanged."""
        delta = _dt.timedelta(days=self.shift_days(patient_id))
        if isinstance(value, (_dt.datetime, _dt.date)):
            return value - delta
        if not isinstance(value, str):
            return value
        text = value.strip()
        match = _ISO.match(text)
        if match:
            day = _dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3))) - delta
            return day.isoformat() + (match.group(4) or "")
        match = _DA.match(text)
        if match:
            try:
                day = _dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3))) - delta
            except ValueError:
                return value
            return day.strftime("%Y%m%d") + (match.group(4) or "")
        return value

    # --- the exports ------------------------------------------------------------------------

    def row(self, row: Mapping[str, Any]) -> Dict[str, Any]:
        """A study-table row: patient id hashed, UIDs replaced, dates shifted, and the patient id
        replaced inside file names (exports are named after the patient)."""
        patient = row.get("patient_id", "")
        out = dict(row)
        for key, value in row.items():
            if key == "patient_id":
                out[key] = self.patient(value)
            elif key.endswith("_uid") or key.endswith("UID"):
                out[key] = self.uid(value)
            elif isinstance(value, str) and (key.endswith("_time") or key.endswith("_date")):
                out[key] = self.date(value, patient)
            elif isinstance(value, str) and patient and str(patient) in value and key.endswith("_file"):
                out[key] = value.replace(str(patient), self.patient(patient))
        return out

    def record(self, value: Any, patient_id: Any, keep: Sequence[str] = ("output",)) -> Any:
        """A JSON-like record (provenance, index): recursively, keys naming a patient id hashed, UIDs
        replaced (wherever they also appear inside text), dates shifted, names and birth dates
        dropped, and paths inside text replaced by ``(path)`` (archive folders are often named after
        the patient); the values of the keys in ``keep`` (the user's own output path) are left."""
        uids: Dict[str, str] = {}

        def collect(item: Any, key: str = "") -> None:
            if isinstance(item, Mapping):
                for k, v in item.items():
                    collect(v, str(k).lower())
            elif isinstance(item, (list, tuple)):
                for v in item:
                    collect(v, key)
            elif isinstance(item, str) and item.strip() and (key.endswith("uid") or key.endswith("uids")):
                uids[item.strip()] = self.uid(item)

        def text(item: str) -> str:
            for old, new in uids.items():
                item = item.replace(old, new)
            if patient_id:
                item = item.replace(str(patient_id), self.patient(patient_id))
            return _PATH.sub("(path)", self.date(item, patient_id))

        def walk(item: Any) -> Any:
            if isinstance(item, Mapping):
                out = {}
                for key, v in item.items():
                    lowered = str(key).lower()
                    if lowered in _DROPPED:
                        continue
                    if lowered in ("patient_id", "patientid", "patient") and isinstance(v, str):
                        out[key] = self.patient(v)
                    elif key in keep:
                        out[key] = v
                    else:
                        out[key] = walk(v)
                return out
            if isinstance(item, (list, tuple)):
                return [walk(v) for v in item]
            if isinstance(item, str):
                return text(item)
            return self.date(item, patient_id)

        collect(value)
        return walk(value)

    def dataset(self, ds, patient_id: Any) -> None:
        """Pseudonymise a pydicom dataset in place (a DICOM SEG NETPET writes): patient id and name
        replaced by the pseudonym, identifying attributes emptied or removed, top-level dates and
        date-times shifted. UIDs are kept: the SEG must reference its source images, whose UIDs the
        archive holds."""
        pseudonym = self.patient(patient_id if patient_id else ds.get("PatientID", ""))
        ds.PatientID = pseudonym
        ds.PatientName = pseudonym
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "NETPET keyed pseudonym; dates shifted (PS3.15 E.3.6)"
        for keyword in EMPTIED:
            if keyword in ds:
                setattr(ds, keyword, "")
        for keyword in REMOVED:
            if keyword in ds:
                delattr(ds, keyword)
        for element in ds:
            if element.VR in ("DA", "DT") and element.value:
                element.value = self.date(str(element.value), patient_id)

    def index(self, index):
        """A pseudonymised copy of a :class:`netpet.dicom.index.StudyIndex`: patient ids hashed,
        names and accession numbers dropped, study and series dates shifted, UIDs replaced, file
        and folder lists emptied (archive paths are often named after the patient), and in the
        series' warnings the patient id, the UIDs and the tree's root replaced."""
        import copy

        out = copy.deepcopy(index)
        root = str(index.root)
        out.root = "(pseudonymised)"
        for patient in out.patients:
            original = patient.patient_id
            pseudonym = self.patient(original)
            patient.patient_id, patient.name = pseudonym, None
            for study in patient.studies:
                new_uid = self.uid(study.study_uid)
                replaced = {study.study_uid: new_uid}
                study.study_uid = new_uid
                study.date = self.date(study.date, original) if study.date else study.date
                study.accession = None
                for series in study.series:
                    series.patient_id, series.study_uid = pseudonym, study.study_uid
                    for name in ("series_uid", "frame_of_reference_uid", "partner_series_uid"):
                        value = getattr(series, name)
                        if value:
                            replaced[value] = self.uid(value)
                            setattr(series, name, replaced[value])
                    for name in ("series_datetime", "acquisition_datetime"):
                        value = getattr(series, name)
                        if value:
                            setattr(series, name, self.date(value, original))
                    series.files, series.folders = [], []
                    texts = []
                    for warning in series.warnings:
                        for old, new in [(root, "(root)"), *replaced.items()] + ([(original, pseudonym)] if original else []):
                            warning = warning.replace(old, new)
                        texts.append(warning)
                    series.warnings = texts
        return out
