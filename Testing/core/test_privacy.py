"""Pseudonymisation (netpet.privacy): keyed, consistent, interval-preserving."""

import datetime as dt

import pydicom
import pytest

from netpet.privacy import MAX_SHIFT_DAYS, PREFIX, PrivacyError, Pseudonymiser, load_key

KEY = b"0123456789abcdef0123456789abcdef"


def test_patient_ids_are_keyed_consistent_and_distinct():
    p, other = Pseudonymiser(KEY), Pseudonymiser(KEY[::-1])
    assert p.patient("NETPET-001") == Pseudonymiser(KEY).patient("NETPET-001")
    assert p.patient("NETPET-001") != other.patient("NETPET-001")  # another key, another pseudonym
    ids = {p.patient(f"NETPET-{i:03d}") for i in range(2000)}
    assert len(ids) == 2000 and all(i.startswith(PREFIX) and len(i) == len(PREFIX) + 16 for i in ids)
    assert "NETPET" not in "".join(ids)
    assert p.patient(p.patient("X")) == p.patient("X")  # applying twice does not hash again
    assert p.patient("") == ""


def test_dates_shift_by_one_amount_per_patient_keeping_intervals_and_times():
    p = Pseudonymiser(KEY)
    shifts = {p.shift_days(f"P{i}") for i in range(500)}
    assert min(shifts) >= 1 and max(shifts) <= MAX_SHIFT_DAYS and len(shifts) > 300
    baseline, follow_up = "2024-03-01T09:15:00", "2024-09-12T10:40:30"
    a, b = p.date(baseline, "P1"), p.date(follow_up, "P1")
    assert a[10:] == "T09:15:00" and b[10:] == "T10:40:30"  # time of day kept (decay correction)
    interval = dt.datetime.fromisoformat(follow_up) - dt.datetime.fromisoformat(baseline)
    assert dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a) == interval
    assert (dt.date(2024, 3, 1) - dt.date.fromisoformat(a[:10])).days == p.shift_days("P1")
    assert p.date("20240301", "P1") == dt.date.fromisoformat(a[:10]).strftime("%Y%m%d")
    assert p.date("20240301093000.5", "P1").endswith("093000.5")
    assert p.date("not a date", "P1") == "not a date" and p.date(3.5, "P1") == 3.5


def test_uids_are_replaced_consistently_in_the_uuid_form():
    p = Pseudonymiser(KEY)
    uid = "1.2.826.0.1.3680043.8.498.1"
    assert p.uid(uid) == p.uid(uid) != uid
    assert p.uid(uid).startswith("2.25.") and len(p.uid(uid)) <= 64  # PS3.5 9.1: at most 64 characters
    assert p.uid("") == ""


def test_a_table_row_carries_no_archive_id_or_date():
    p = Pseudonymiser(KEY)
    row = {"patient_id": "NETPET-004", "session_id": "S1", "lesion_id": "L1", "series_uid": "1.2.3.4",
           "suv_reference_time": "2025-01-02T10:00:00", "suv_injection_time": "2025-01-02T09:00:00",
           "segmentation_file": "segmentations/NETPET-004_S1_reader.seg.nrrd", "suv_max": 12.5}
    out = p.row(row)
    assert out["patient_id"] == p.patient("NETPET-004")
    assert "NETPET-004" not in str(out) and "1.2.3.4" not in str(out) and "2025-01-02" not in str(out)
    assert out["suv_max"] == 12.5 and out["lesion_id"] == "L1"


def test_a_provenance_record_is_walked_recursively():
    p = Pseudonymiser(KEY)
    record = {"series_uid": "1.2.3", "patient_name": "DOE^JANE", "inputs": {"acquisition": "2025-01-02T10:00:00",
              "patient_id": "P9"}, "frames": [{"start": "2025-01-02T10:05:00"}], "dose_mbq": 150.0}
    out = p.record(record, "P9")
    assert "patient_name" not in out and "DOE" not in str(out) and "2025-01-02" not in str(out)
    assert out["inputs"]["patient_id"] == p.patient("P9") and out["dose_mbq"] == 150.0


def test_a_dicom_dataset_loses_its_identity_but_keeps_its_references():
    p = Pseudonymiser(KEY)
    ds = pydicom.Dataset()
    ds.PatientID, ds.PatientName, ds.PatientBirthDate = "NETPET-002", "DOE^JOHN", "19600101"
    ds.StudyDate, ds.InstitutionName, ds.StudyInstanceUID = "20250102", "Hospital", "1.2.3"
    p.dataset(ds, "NETPET-002")
    assert ds.PatientID == ds.PatientName == p.patient("NETPET-002")
    assert ds.PatientBirthDate == "" and "InstitutionName" not in ds and ds.PatientIdentityRemoved == "YES"
    assert ds.StudyDate == p.date("20250102", "NETPET-002") != "20250102"
    assert ds.StudyInstanceUID == "1.2.3"


def test_short_or_missing_keys_are_refused_with_a_sentence(tmp_path):
    short = tmp_path / "short.key"
    short.write_text("secret\n")
    with pytest.raises(PrivacyError, match="short.key holds 6 bytes"):
        load_key(str(short))
    with pytest.raises(PrivacyError, match="does not exist; make one with"):
        load_key(str(tmp_path / "missing.key"))
    good = tmp_path / "good.key"
    good.write_text(KEY.decode() + "\n")
    assert Pseudonymiser.from_file(str(good)).patient("A") == Pseudonymiser(KEY).patient("A")
    assert Pseudonymiser.from_file(None) is None
