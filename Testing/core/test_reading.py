"""Reader studies (issue 14): finding look-up, the reader's values, the blinded view, reading lists (seeded,
rounds, counterbalanced, the gap kept when it can be, nothing of any result), adjudication round trip.
Every figure asserted is a count or an order, exact (no tolerance applies)."""

from __future__ import annotations

import csv
import itertools
import os

import pytest

from netpet import schema
from netpet.quant.table import StudyTable
from netpet.reading import adjudication, lists
from netpet.reading.findings import (ReadingError, blinded_rows, find_finding, reader_values, record_reading,
                                     retract_finding)

#: markers that stand for results: none may reach a reading list
SECRETS = {"call": "positive-SECRET", "region": "REGION-SECRET", "lesion_type": "TYPE-SECRET", "suv_max": "987.654",
           "reader_call": "CALL-SECRET", "retraction_reason": "REASON-SECRET", "segmentation_file": "SEG-SECRET"}


def finding(patient="P1", session="CT1", modality="PET/CT", reader="R1", lesion="L01", tracer="dotatate", **values):
    return {"patient_id": patient, "session_id": session, "modality": modality, "tracer": tracer, "reader": reader,
            "lesion_id": lesion, **values}


def study_rows(patients=10, readers=("R1", "R2")):
    rows = []
    for p in range(patients):
        for session, modality in ((f"CT{p}", "PET/CT"), (f"MR{p}", "PET/MR")):
            for reader in readers:
                rows.append(finding(f"P{p:02d}", session, modality, reader, f"LX{p}{reader}", series_uid=f"1.2.{p}.{modality[-2:]}",
                                    time_point="baseline", **SECRETS))
    return rows


# -- finding look-up and values -----------------------------------------------------------------------------

def test_find_finding_names_what_is_missing_in_one_sentence():
    rows = [finding(), finding(lesion="L02"), finding(tracer="fdg"), finding(reader="R2")]
    assert find_finding(rows, "P1", "CT1", "R1", "L02")["lesion_id"] == "L02"
    assert find_finding(rows, "P1", "CT1", "R1", "L01", tracer="fdg")["tracer"] == "fdg"
    cases = {
        ("P9", "CT1", "R1", "L01"): "the table has no finding patient P9, session CT1, reader R1, lesion L01: it holds no "
                                    "session CT1 of patient P9 (its patients: P1).",
        ("P1", "CT1", "R7", "L01"): "the table has no finding patient P1, session CT1, reader R7, lesion L01: reader R7 "
                                    "has no rows in this session (its readers: R1, R2).",
        ("P1", "CT1", "R1", "L09"): "the table has no finding patient P1, session CT1, reader R1, lesion L09; reader "
                                    "R1's lesions in this session: L01, L02.",
        ("P1", "CT1", "R1", "L01"): "the table has 2 findings patient P1, session CT1, reader R1, lesion L01 (modality "
                                    "and tracer: PET/CT dotatate, PET/CT fdg); give the modality and the tracer too.",
    }
    for arguments, message in cases.items():
        with pytest.raises(ReadingError) as error:
            find_finding(rows, *arguments, where="the table")
        assert str(error.value) == message


def test_reader_values_are_checked_and_cleaned():
    assert reader_values("Positive", "4.0", "LESION", "sstr-rads 3a") == {
        "reader_call": "positive", "confidence": 4, "anatomic_correlate": "lesion", "sstr_rads": "3A"}
    assert reader_values(confidence="") == {"confidence": ""}  # '' clears, None leaves as is
    assert reader_values() == {}
    for bad in ({"call": "likely"}, {"confidence": "4.5"}, {"confidence": "0"}, {"correlate": "cyst"},
                {"sstr_rads": "6"}):
        with pytest.raises(schema.SchemaError):
            reader_values(**bad)


def test_record_and_retract_through_the_table(tmp_path):
    table = StudyTable(str(tmp_path / "study.csv"))
    table.upsert([finding(), finding(lesion="L02")])
    row = find_finding(table.read(), "P1", "CT1", "R1", "L02")
    assert record_reading(table, row, reader_values("negative", 2, "benign", "2A"), why="haemangioma on MR") == 4
    with pytest.raises(ReadingError, match="Nothing to record for the finding patient P1"):
        record_reading(table, row, {})
    assert retract_finding(table, row, "double-counted: the same lesion as L01") == 2
    got = {r["lesion_id"]: r for r in table.read()}["L02"]
    assert (got["reader_call"], got["confidence"], got["anatomic_correlate"], got["sstr_rads"]) == ("negative", "2",
                                                                                                     "benign", "2A")
    assert schema.is_retracted(got) and got["retraction_reason"] == "double-counted: the same lesion as L01"
    assert [e["action"] for e in table.audit(lesion_id="L02")] == ["insert"] + ["update"] * 4 + ["retract"] * 2


def test_the_blinded_view_is_the_readers_own_rows_of_the_session():
    rows = study_rows(3) + [finding("P00", "CT0", "PET/CT", "consensus", "LX0R1"),
                            finding("P00", "CT0", "PET/CT", "R1", "L9", finding_status="retracted")]
    view = blinded_rows(rows, "R1", "P00", "CT0")
    assert [(r["reader"], r["session_id"], r["lesion_id"]) for r in view] == [("R1", "CT0", "L9"), ("R1", "CT0", "LX0R1")]
    assert blinded_rows(rows, "R1", "P00", "CT0", modality="PET/MR") == []
    assert [r["reader"] for r in blinded_rows(rows, "consensus", "P00", "CT0")] == ["consensus"]
    with pytest.raises(ReadingError, match="needs the reader, the patient and the session"):
        blinded_rows(rows, "", "P00", "CT0")


# -- reading lists ------------------------------------------------------------------------------------------

def _positions(rows):
    out = {}
    for r in rows:
        out.setdefault(r["patient_id"], []).append(r["order"] - 1)
    return out


def test_reading_order_is_reproducible_and_differs_by_seed_and_reader():
    sessions = lists.sessions_from_rows(study_rows(10))
    first, _ = lists.reading_order(sessions, "R1", seed=11)
    again, _ = lists.reading_order(list(reversed(sessions)), "R1", seed=11)
    assert first == again  # the same seed and reader: the same list, whatever the input order
    other_seed, _ = lists.reading_order(sessions, "R1", seed=12)
    other_reader, _ = lists.reading_order(sessions, "R2", seed=11)
    key = lambda rows: [(r["patient_id"], r["session_id"]) for r in rows]  # noqa: E731
    assert key(first) != key(other_seed) and key(first) != key(other_reader)
    assert sorted(key(first)) == sorted((s["patient_id"], s["session_id"]) for s in sessions)


@pytest.mark.parametrize("seed", range(8))
def test_rounds_washout_gap_and_counterbalance(seed):
    sessions = lists.sessions_from_rows(study_rows(10))
    rows, summary = lists.reading_order(sessions, "R1", seed=seed, min_gap=3, washout_days=28)
    assert [r["order"] for r in rows] == list(range(1, 21))
    # one session of each patient per round; the rounds in order; the washout as the day a round may start
    assert [r["round"] for r in rows] == [1] * 10 + [2] * 10
    assert {r["not_before_day"] for r in rows[:10]} == {0} and {r["not_before_day"] for r in rows[10:]} == {28}
    for patient, positions in _positions(rows).items():
        assert len(positions) == 2 and positions[1] - positions[0] - 1 >= 3, (patient, positions)
    assert summary == {"reader": "R1", "sessions": 20, "rounds": 2, "gap_shortfalls": 0,
                       "least_gap": min(p[1] - p[0] - 1 for p in _positions(rows).values())}
    # counterbalanced: 5 patients read PET/CT first, 5 PET/MR first
    first = [r["modality"] for r in rows[:10]]
    assert first.count("PET/CT") == 5 and first.count("PET/MR") == 5


def test_few_patients_the_gap_is_the_best_possible_and_the_shortfall_said():
    sessions = lists.sessions_from_rows(study_rows(3))
    rows, summary = lists.reading_order(sessions, "R1", seed=1, min_gap=3)
    # 3 patients, 2 sessions each in 2 rounds: at most 2 other sessions between a patient's two (A B C A B C)
    best = max(min(b - a - 1 for a, b in _positions([{"patient_id": p, "order": i + 1} for i, p in enumerate(order)])
                   .values()) for order in itertools.permutations("AABBCC")
               if all(set(order[:3]) == set("ABC") for _ in [0]))
    assert best == 2
    assert summary["least_gap"] == 2 and summary["gap_shortfalls"] == 3
    assert all(b - a - 1 == 2 for a, b in _positions(rows).values())
    one, summary = lists.reading_order(lists.sessions_from_rows(study_rows(1)), "R1", seed=1)
    assert summary["least_gap"] == 0 and summary["gap_shortfalls"] == 1 and len(one) == 2  # a patient alone: back to
    # back (unavoidable, and said), but in two rounds
    assert [r["round"] for r in one] == [1, 2]
    single = [s for s in sessions if s["modality"] == "PET/CT"]
    assert lists.reading_order(single, "R1", seed=1)[1]["least_gap"] is None


def test_reading_lists_hold_nothing_of_any_result(tmp_path):
    table = StudyTable(str(tmp_path / "study.csv"))
    table.upsert(study_rows(4))
    record = lists.write_reading_lists(lists.sessions_from_rows(table.read()), ["R1", "R2"], 5, str(tmp_path / "out"))
    assert [r["file"] for r in record["readers"]] == ["reading-list-R1.csv", "reading-list-R2.csv"]
    assert sorted(os.listdir(tmp_path / "out")) == ["reading-list-R1.csv", "reading-list-R2.csv", "reading-lists.json"]
    for name in ("reading-list-R1.csv", "reading-list-R2.csv"):
        data = (tmp_path / "out" / name).read_text()
        with open(tmp_path / "out" / name, newline="") as handle:
            listed = list(csv.DictReader(handle))
        assert list(listed[0]) == list(lists.LIST_COLUMNS) and len(listed) == 8
        for secret in list(SECRETS.values()) + ["LX0R1", "LX0R2"]:
            assert secret not in data
        assert {r["reader"] for r in listed} == {name[13:15]}  # nothing of the other reader
    assert "SECRET" not in (tmp_path / "out" / "reading-lists.json").read_text()


def test_a_manifest_source_keeps_only_what_opens_a_session(tmp_path):
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "series", "session_id", "lesion_id", "seed_r", "seed_a", "seed_s", "region"])
        writer.writerow(["P1", "dicom/P1/CT", "CT1", "L01", "1", "2", "3", "REGION-SECRET"])
        writer.writerow(["P1", "dicom/P1/CT", "CT1", "L02", "4", "5", "6", "liver"])
        writer.writerow(["P1", "dicom/P1/MR", "MR1", "L01", "7", "8", "9", "liver"])
    sessions = lists.sessions_from_manifest(str(manifest))
    assert [(s["patient_id"], s["session_id"], os.path.relpath(s["series"], tmp_path)) for s in sessions] == [
        ("P1", "CT1", "dicom/P1/CT"), ("P1", "MR1", "dicom/P1/MR")]
    assert set(sessions[0]) == set(lists.IDENTITY_COLUMNS)
    with open(manifest, "a", newline="") as handle:
        csv.writer(handle).writerow(["P2", "", "", "L01", "1", "2", "3", ""])
    with pytest.raises(ReadingError) as error:
        lists.sessions_from_manifest(str(manifest))
    assert str(error.value) == (f"The manifest {manifest} line 5: a session needs patient_id and one of session_id, "
                                "series_uid or series; fill them in.")


@pytest.mark.parametrize("readers, message", [
    ([], "Give the readers (--readers R1,R2); an empty reader id is not one."),
    (["R1", "R1"], "The readers R1, R1 name one reader twice; list each once."),
    (["consensus"], "'consensus' is the adjudicator's reader id, not a reader's; it reads no list."),
    (["R 1", "R/1"], "The readers R 1, R/1 give the same file name (['reading-list-R_1.csv', 'reading-list-R_1.csv']); "
                     "use ids that differ in letters or digits."),
])
def test_reading_list_refusals(tmp_path, readers, message):
    with pytest.raises(ReadingError) as error:
        lists.write_reading_lists(lists.sessions_from_rows(study_rows(2)), readers, 1, str(tmp_path / "out"))
    assert str(error.value) == message
    with pytest.raises(ReadingError, match="give a gap of at least 1"):
        lists.reading_order(lists.sessions_from_rows(study_rows(2)), "R1", seed=1, min_gap=0)
    with pytest.raises(ReadingError, match="There are no sessions to read in study.csv"):
        lists.write_reading_lists([], ["R1"], 1, str(tmp_path / "out"), source="study.csv")


# -- adjudication -------------------------------------------------------------------------------------------

def _two_readers(tmp_path):
    table = StudyTable(str(tmp_path / "study.csv"))
    table.upsert([
        finding(reader="R1", lesion="L01", call="positive", reader_call="positive", confidence=5),
        finding(reader="R2", lesion="L01", call="positive", reader_call="positive", confidence=5),
        finding(reader="R1", lesion="L02", call="positive", reader_call="positive", confidence=4),
        finding(reader="R2", lesion="L02", call="positive", reader_call="negative", confidence=2),
        finding(reader="R1", lesion="L03", call="equivocal", reader_call="equivocal", confidence=3),
        finding(reader="R2", lesion="L04", call="negative", reader_call="negative", confidence=1),
        finding(reader="R2", lesion="L05", call="positive", reader_call="positive", confidence=4,
                finding_status="retracted", retraction_reason="duplicate"),
    ])
    return table


def test_disagreements_by_shared_lesion_id(tmp_path):
    table = _two_readers(tmp_path)
    items = adjudication.disagreements(table.read(), ["R1", "R2"])
    assert [(i["finding_id"], i["disagreement"]) for i in items] == [
        ("L02", "reader_call R1 positive, R2 negative"),
        ("L03", "reported by R1 only"),
        ("L04", "reported by R2 only"),
    ]  # L01 agrees; L05 is retracted, so not a finding
    assert items[0]["R1.confidence"] == "4" and items[0]["R2.confidence"] == "2" and items[1]["R2.lesion_id"] == ""
    assert all(i["consensus_reader_call"] == "" for i in items)
    every = adjudication.disagreements(table.read(), ["R1", "R2"], include_agreed=True)
    agreed = next(i for i in every if i["finding_id"] == "L01")
    assert (agreed["disagreement"], agreed["consensus_reader_call"], agreed["consensus_confidence"]) == ("", "positive",
                                                                                                          "5")
    with pytest.raises(ReadingError, match="compares two or more different readers"):
        adjudication.disagreements(table.read(), ["R1"])


def test_disagreements_through_the_correspondence_table(tmp_path):
    from netpet.match.correspondence import COLUMNS

    table = _two_readers(tmp_path)
    path = tmp_path / "correspondence.csv"
    matches = [("R1", "L01", "A", "matched"), ("R2", "L01", "A", "matched"), ("R1", "L02", "B", "matched"),
               ("R2", "L02", "C", "matched"), ("R1", "L03", "D", "confirmed"), ("R2", "L04", "D", "matched")]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for reader, lesion, reference, status in matches:
            writer.writerow({**{c: "" for c in COLUMNS}, **finding(reader=reader, lesion=lesion),
                             "reference_lesion_id": reference, "status": status})
    items = adjudication.disagreements(table.read(), ["R1", "R2"], str(path))
    # B and C: each reported by one reader; D: R1's L03 and R2's L04 are one lesion, their calls differ
    assert [(i["finding_id"], i["disagreement"]) for i in items] == [
        ("B", "reported by R1 only"), ("C", "reported by R2 only"),
        ("D", "call R1 equivocal, R2 negative; reader_call R1 equivocal, R2 negative"),
    ]
    assert (items[2]["R1.lesion_id"], items[2]["R2.lesion_id"]) == ("L03", "L04")
    # two findings of one reader confirmed to one lesion: both shown, and listed for the adjudicator
    rows = [r for r in table.read() if not (r["reader"] == "R1" and r["lesion_id"] == "L02")]
    rows.append(finding(reader="R1", lesion="L02b", call="negative", reader_call="negative", confidence=2))
    with open(path, "a", newline="") as handle:
        csv.DictWriter(handle, COLUMNS).writerow({**{c: "" for c in COLUMNS}, **finding(reader="R1", lesion="L02b"),
                                                  "reference_lesion_id": "A", "status": "confirmed"})
    double = next(i for i in adjudication.disagreements(rows, ["R1", "R2"], str(path)) if i["finding_id"] == "A")
    assert (double["R1.lesion_id"], double["R1.reader_call"], double["disagreement"]) == (
        "L01 + L02b", "positive + negative",
        "R1 reported it more than once; call R1 positive + negative, R2 positive; reader_call R1 positive + negative, "
        "R2 positive")


def test_adjudication_round_trip(tmp_path):
    table = _two_readers(tmp_path)
    out = tmp_path / "adjudication.csv"
    adjudication.write_adjudication_list(adjudication.disagreements(table.read(), ["R1", "R2"]), ["R1", "R2"], str(out))
    header, items = adjudication.read_adjudication_list(str(out))
    assert header == adjudication.adjudication_columns(["R1", "R2"])
    items[0].update(consensus_reader_call="negative", consensus_confidence="2", note="physiological uncinate uptake")
    items[1].update(consensus_reader_call="Equivocal")
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(items)
    result = adjudication.apply_adjudication(table, str(out), "Dr A")
    assert result == {"inserted": 2, "updated": 0, "decided": 2,
                      "undecided": ["P1 / CT1 / PET/CT / dotatate finding L04"]}
    consensus = {r["lesion_id"]: r for r in table.read() if r["reader"] == "consensus"}
    assert {k: (v["reader_call"], v["confidence"], v["finding_status"]) for k, v in consensus.items()} == {
        "L02": ("negative", "2", "active"), "L03": ("equivocal", "", "active")}
    entries = table.audit(action="adjudicate")
    why_l02 = ("R1 L02: call positive, reader_call positive, confidence 4; R2 L02: call positive, reader_call "
               "negative, confidence 2; note: physiological uncinate uptake (adjudication.csv)")
    assert [(e["who"], e["reader"], e["lesion_id"], e["column"], e["old"], e["new"], e["why"]) for e in entries] == [
        ("Dr A", "consensus", "L02", "finding_status", "", "active", why_l02),
        ("Dr A", "consensus", "L02", "reader_call", "", "negative", why_l02),
        ("Dr A", "consensus", "L02", "confidence", "", "2", why_l02),
        ("Dr A", "consensus", "L03", "finding_status", "", "active",
         "R1 L03: call equivocal, reader_call equivocal, confidence 3; R2 (not reported): call (none), reader_call "
         "(none), confidence (none) (adjudication.csv)"),
        ("Dr A", "consensus", "L03", "reader_call", "", "equivocal",
         "R1 L03: call equivocal, reader_call equivocal, confidence 3; R2 (not reported): call (none), reader_call "
         "(none), confidence (none) (adjudication.csv)"),
    ]
    # applying the same decisions again changes nothing and records nothing
    assert adjudication.apply_adjudication(table, str(out), "Dr A")["updated"] == 2
    assert len(table.audit(action="adjudicate")) == 5
    # the consensus is not a reader to compare, and a reader never sees it while reading
    assert blinded_rows(table.read(), "R1", "P1", "CT1") == [r for r in table.read() if r["reader"] == "R1"]


@pytest.mark.parametrize("edit, message", [
    ({"consensus_confidence": "6"}, "row 2: consensus_confidence is '6'; give a whole number from 1 to 5"),
    ({"consensus_call": "maybe"}, "row 2: consensus_call is 'maybe'; write one of positive, equivocal, negative"),
    ({"consensus_reader_call": "positive", "session_id": "CT9"}, "row 2: the study table has no session P1 / CT9 / "
                                                                  "PET/CT / dotatate; the list belongs to another table."),
])
def test_apply_refuses_bad_rows_writing_nothing(tmp_path, edit, message):
    table = _two_readers(tmp_path)
    out = tmp_path / "adjudication.csv"
    adjudication.write_adjudication_list(adjudication.disagreements(table.read(), ["R1", "R2"]), ["R1", "R2"], str(out))
    header, items = adjudication.read_adjudication_list(str(out))
    items[0].update(edit)
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(items)
    before = (table.read(), table.audit())
    with pytest.raises(ReadingError) as error:
        adjudication.apply_adjudication(table, str(out), "Dr A")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert (table.read(), table.audit()) == before
    with pytest.raises(ReadingError, match="Name the adjudicator"):
        adjudication.apply_adjudication(table, str(out), " ")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ReadingError, match="lacks the column"):
        adjudication.apply_adjudication(table, str(tmp_path / "other.csv"), "Dr A")
