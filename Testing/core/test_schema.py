"""netpet.schema: the key and the rules that fill it, shared by the command line and Slicer."""

import types

import pytest

from netpet import schema


def _record(study="1.2.826.0.1.3680043.8.498.1", hybrid="PET/CT", tracer="dotatate", imaging="PET", series="1.2.3"):
    return types.SimpleNamespace(study_uid=study, hybrid=hybrid, series_uid=series,
                                 tracer=types.SimpleNamespace(key=tracer, imaging=imaging) if tracer else None)


def test_derived_session_id_is_readable_stable_and_holds_nothing_identifying():
    record = _record()
    sid = schema.record_session_id(record)
    assert sid == schema.derive_session_id(record.study_uid, "dotatate", "PET/CT")  # the same from the parts
    assert sid.startswith("DOTATATE-PETCT-") and len(sid.rsplit("-", 1)[1]) == schema.SESSION_DIGEST_DIGITS
    assert record.study_uid not in sid and "." not in sid
    assert schema.record_session_id(_record(hybrid="PET/MR")) == "DOTATATE-PETMR-" + sid.rsplit("-", 1)[1]
    assert schema.record_session_id(_record(study="1.2.3.4")) != sid  # another study, another session
    assert schema.record_session_id(_record(tracer=None, hybrid=None)).startswith("UNKNOWN-PET-")
    assert schema.record_session_id(_record(hybrid=None, tracer="other", imaging="SPECT")).startswith("OTHER-SPECT-")
    assert schema.derive_session_id("", "fdg", "PET/CT") == ""  # an image without DICOM identity


def test_modality_tracer_and_labels():
    assert schema.record_modality(_record()) == "PET/CT"
    assert schema.record_modality(_record(hybrid=None)) == "PET"
    assert schema.record_tracer(_record(tracer=None)) == schema.UNKNOWN_TRACER
    assert schema.clean_label("  bone \n metastasis\t") == "bone metastasis"
    assert schema.clean_label(None) == ""
    assert schema.segmentation_file_name("P 1", "S/1", "R\\1") == "P_1_S_1_R_1.seg.nrrd"
    assert schema.KEY == ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id")
    assert set(schema.KEY) <= set(schema.REQUIRED) <= set(schema.COLUMNS) and "lesion_type" in schema.COLUMNS


def test_session_id_rules_in_order():
    derived = "DOTATATE-PETCT-ABC123"
    table = [{"patient_id": "P1", "series_uid": "1.2.3", "session_id": "S1-DOTATATE-PETCT"},
             {"patient_id": "P1", "series_uid": "1.2.3", "session_id": "S1-DOTATATE-PETCT"},
             {"patient_id": "P2", "series_uid": "1.2.3", "session_id": "other"},
             {"patient_id": "P1", "series_uid": "", "session_id": "no series"}]
    known = schema.known_session_ids(table)
    assert known == {("P1", "1.2.3"): {"S1-DOTATATE-PETCT"}, ("P2", "1.2.3"): {"other"}}
    # 1. explicit wins; 2. else the table's id for the patient's series; 3. else derived
    assert schema.choose_session_id(" S9 ", derived, "P1", "1.2.3", known) == "S9"
    assert schema.choose_session_id("", derived, "P1", "1.2.3", known) == "S1-DOTATATE-PETCT"
    assert schema.choose_session_id("", derived, "P3", "1.2.3", known) == derived
    assert schema.choose_session_id(None, derived) == derived
    # an explicit id beside the table's is said, the same one is not
    assert "already in the study table as session S1-DOTATATE-PETCT" in schema.session_id_conflict(
        "S9", "P1", "1.2.3", known)
    assert schema.session_id_conflict("S1-DOTATATE-PETCT", "P1", "1.2.3", known) == ""
    assert schema.check_session_id("x" * 80) == "x" * 80
    with pytest.raises(schema.SchemaError, match="control character"):
        schema.choose_session_id("S\x011", derived)


def test_quant_table_and_stats_read_the_schema():
    from netpet.quant import table
    from netpet.stats import data

    assert table.KEY is schema.KEY and table.COLUMNS is schema.COLUMNS and table.REQUIRED is schema.REQUIRED
    assert data.TABLE_REQUIRED == schema.KEY + ("call",)


def test_time_point_columns_are_columns_not_key():
    # every time point is its own session: the session id tells them apart, the key stays as it was
    assert "time_point" in schema.COLUMNS and "days_from_baseline" in schema.COLUMNS
    assert "time_point" not in schema.KEY and "days_from_baseline" not in schema.REQUIRED
    assert schema.BASELINE == "baseline"


def test_time_point_and_days_are_validated():
    assert schema.check_time_point("  FU 1\u00a0") == "FU 1"
    assert schema.check_time_point(None) == "" and schema.check_time_point("") == ""
    for bad in ("FU\t1", "FU1\n", "\x1b[31mFU1", "FU\u20281"):
        with pytest.raises(schema.SchemaError, match="manifest row 4: time_point .* control character"):
            schema.check_time_point(bad, "manifest row 4: ")
    assert schema.check_days_from_baseline("  91 ") == 91.0
    assert schema.check_days_from_baseline(0) == 0.0
    assert schema.check_days_from_baseline("") is None and schema.check_days_from_baseline(None) is None
    assert schema.check_days_from_baseline(float("nan")) is None  # an empty cell of a pandas frame
    for bad in ("-1", "nan", "inf", "three months", "1e999"):
        with pytest.raises(schema.SchemaError, match="row 7: days_from_baseline is .*finite number of days >= 0"):
            schema.check_days_from_baseline(bad, "row 7: ")


@pytest.mark.parametrize("label, rank", [("", 0), ("baseline", 0), ("BL", 0), ("T0", 0), ("FU1", 1), ("fu 2", 2),
                                         ("FU-3", 3), ("follow-up 4", 4), ("Followup5", 5), ("T6", 6), ("visit 7", 7),
                                         ("restaging", None), ("FU", None), ("after PRRT", None)])
def test_time_point_rank(label, rank):
    assert schema.time_point_rank(label) == rank
