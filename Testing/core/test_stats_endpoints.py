"""Patient-level endpoints per indication (NET staging, NET work-up, TIO localisation, follow-up): a hand-built study
whose every patient's outcome is derived in the comments, the old rule kept for reference standards without the
columns, and every bad indication or culprit refused in one sentence. Counts are exact integers (no tolerance)."""

from __future__ import annotations

import pytest

from netpet.stats.analysis import StatsOptions, analyse
from netpet.stats.data import (ENDPOINT_ANY, ENDPOINT_CULPRIT, ENDPOINT_MALIGNANT, ENDPOINTS, INDICATIONS, load_study,
                               read_reference, units_for)
from netpet.stats.intervals import StatsError
from Testing.core.test_stats_inputs import finding, write_reference, write_table

HEADER = ("patient_id", "lesion_id", "region", "truth", "standard", "indication", "culprit")
REFERENCE = [
    ("T1", "L1", "bone", "1", "histopathology", "TIO localisation", "1"),   # culprit
    ("T1", "L2", "pancreas", "0", "follow-up", "", "0"),                    # decoy: uncinate focus
    ("T2", "L1", "bone", "1", "histopathology", "tio  Localization", "1"),  # spelling and case ignored
    ("T2", "L2", "bone", "0", "follow-up", "", ""),                         # decoy: fracture
    ("T3", "L1", "soft tissue", "1", "histopathology", "TIO localisation", "1"),
    ("N1", "L1", "liver", "1", "histopathology", "", ""),                   # empty: NET staging
    ("N1", "L2", "bone", "0", "follow-up", "", ""),
    ("N2", "L1", "pancreas", "0", "follow-up", "NET work-up", ""),
    ("N3", "", "", "1", "clinical", "NET staging", ""),                      # disease without a lesion id
    ("N3", "L1", "bone", "0", "follow-up", "", ""),
    ("F1", "L1", "liver", "1", "histopathology", "follow-up", ""),
    ("F1", "L2", "liver", "0", "follow-up", "follow-up", ""),
]
FINDINGS = [
    finding("T1", "L1", "negative", suv=3), finding("T1", "L2", "positive", suv=9),   # culprit missed, decoy +
    finding("T2", "L1", "positive", suv=8), finding("T2", "L2", "positive", suv=6),   # culprit found (and a decoy)
    finding("T3", "", ""),                                                             # read, nothing found
    finding("N1", "L1", "negative", suv=3), finding("N1", "L2", "positive", suv=7),   # + on the benign lesion only
    finding("N2", "L1", "positive", suv=8),                                            # disease-free, called +
    finding("N3", "L1", "positive", suv=6),                                            # disease from a patient row
    finding("F1", "L1", "positive", suv=10),
]


def study_files(tmp_path, reference=REFERENCE, header=HEADER, findings=FINDINGS):
    return write_table(tmp_path / "table.csv", findings), write_reference(tmp_path / "ref.csv", reference, header)


def counts(entry):
    return [entry[k] for k in ("tp", "fp", "fn", "tn")]


def test_each_patient_under_its_indication(tmp_path):
    study = load_study(*study_files(tmp_path))
    assert study.reference.indications
    patients = units_for(study)["patient"].set_index("patient_id")
    expected = {
        # patient: (indication, endpoint, truth, call, any_positive)
        "T1": ("TIO localisation", ENDPOINT_CULPRIT, 1, 0, 1),   # the culprit missed: FN though the decoy is +
        "T2": ("TIO localisation", ENDPOINT_CULPRIT, 1, 1, 1),   # the culprit called +: TP
        "T3": ("TIO localisation", ENDPOINT_CULPRIT, 1, 0, 0),   # nothing found: FN
        "N1": ("NET staging", ENDPOINT_MALIGNANT, 1, 0, 1),      # + on a benign lesion only: FN
        "N2": ("NET work-up", ENDPOINT_ANY, 0, 1, 1),            # disease-free and called +: FP
        "N3": ("NET staging", ENDPOINT_ANY, 1, 1, 1),            # no malignant lesion to check: any positive, TP
        "F1": ("follow-up", ENDPOINT_MALIGNANT, 1, 1, 1),        # the malignant lesion called +: TP
    }
    for patient, (indication, endpoint, truth, call, any_positive) in expected.items():
        row = patients.loc[patient]
        assert (row["indication"], row["endpoint"], row["truth"], row["call"], row["any_positive"]) == (
            indication, endpoint, truth, call, any_positive), patient
    # the lesion level is the same under every indication: T1 L2 (decoy) is a false positive finding
    lesions = units_for(study)["lesion"].set_index(["patient_id", "lesion_id"])
    assert lesions.loc[("T1", "L2"), "call"] == 1 and lesions.loc[("T1", "L2"), "truth"] == 0
    assert lesions.loc[("T1", "L1"), "culprit"] == 1 and lesions.loc[("T2", "L2"), "culprit"] == 0


def test_accuracy_per_indication_and_methods(tmp_path):
    result = analyse(load_study(*study_files(tmp_path)), StatsOptions(bootstrap=0)).result
    patient = next(e for e in result["accuracy"] if e["level"] == "patient" and not e["group_by"])
    # all patients: TP T2, N3, F1 = 3; FP N2 = 1; FN T1, T3, N1 = 3; TN 0
    assert counts(patient) == [3, 1, 3, 0]
    by = {e["indication"]: e for e in result["endpoints"]}
    assert list(by) == ["NET staging", "NET work-up", "TIO localisation", "follow-up"]  # INDICATIONS order
    # TIO localisation: T2 TP, T1 and T3 FN -> sensitivity 1/3; T1 is the culprit-missed, decoy-positive patient
    assert counts(by["TIO localisation"]) == [1, 0, 2, 0]
    assert by["TIO localisation"]["sensitivity"]["estimate"] == pytest.approx(1 / 3, abs=1e-12)  # 1/3 exactly
    assert by["TIO localisation"]["positive_elsewhere_only"] == 1
    # NET staging: N3 TP (judged by any positive finding), N1 FN (positive elsewhere only)
    assert counts(by["NET staging"]) == [1, 0, 1, 0]
    assert by["NET staging"]["positive_elsewhere_only"] == 1 and by["NET staging"]["judged_by_any_positive"] == 1
    assert counts(by["NET work-up"]) == [0, 1, 0, 0] and counts(by["follow-up"]) == [1, 0, 0, 0]
    assert by["TIO localisation"]["endpoint"] == ENDPOINTS["TIO localisation"]
    methods = result["methods"]["endpoints"]
    assert methods["applied"] and methods["indications"] == list(INDICATIONS)
    assert [d["indication"] for d in methods["definitions"]] == list(INDICATIONS)
    assert any("El-Maouche" in r for r in methods["references"]) and "Starr SJ" in methods["references"][0]
    assert "culprit" in ENDPOINTS["TIO localisation"] and methods["call_source"] == "suv"
    # a group_by of indication gives the same patient-level counts in the accuracy table
    grouped = analyse(load_study(*study_files(tmp_path), group_by=["indication"]),
                      StatsOptions(bootstrap=0, group_by=["indication"])).result
    tio = next(e for e in grouped["accuracy"] if e["level"] == "patient"
               and e["group_by"] == {"indication": "TIO localisation"})
    assert counts(tio) == [1, 0, 2, 0]
    # lesion level by indication: TIO lesions T1 L1 FN, T1 L2 FP, T2 L1 TP, T2 L2 FP, T3 L1 FN
    tio_lesions = next(e for e in grouped["accuracy"] if e["level"] == "lesion"
                       and e["group_by"] == {"indication": "TIO localisation"})
    assert counts(tio_lesions) == [1, 2, 2, 0]


def test_old_tables_keep_the_any_positive_rule(tmp_path):
    plain = [r[:5] for r in REFERENCE]
    result = analyse(load_study(*study_files(tmp_path, plain, HEADER[:5])), StatsOptions(bootstrap=0)).result
    patient = next(e for e in result["accuracy"] if e["level"] == "patient" and not e["group_by"])
    # any positive finding: T1, T2, N1, N3, F1 TP (5); T3 FN; N2 FP
    assert counts(patient) == [5, 1, 1, 0]
    assert "endpoints" not in result and not result["methods"]["endpoints"]["applied"]
    assert result["methods"]["endpoints"]["definitions"][0]["definition"].startswith("Any positive finding")
    # an indication column of other labels (an earlier study's NET / TIO) stays a plain column, with a note
    labels = [(*r[:5], "TIO" if r[0].startswith("T") else "NET") for r in REFERENCE]
    study = load_study(*study_files(tmp_path, labels, HEADER[:6]), group_by=["indication"])
    assert not study.reference.indications
    assert any("read as a plain column" in w for w in study.warnings)
    result = analyse(study, StatsOptions(bootstrap=0, group_by=["indication"])).result
    tio = next(e for e in result["accuracy"] if e["level"] == "patient" and e["group_by"] == {"indication": "TIO"})
    assert counts(tio) == [2, 0, 1, 0]  # T1 and T2 TP (any positive), T3 FN


def test_culprit_without_indication_column_means_net_staging(tmp_path):
    # a culprit column alone declares the endpoints; every patient is NET staging, so no culprit may be 1
    rows = [(*r[:5], "0") for r in REFERENCE if r[0].startswith("N")]
    reference = read_reference(write_reference(tmp_path / "ref.csv", rows, (*HEADER[:5], "culprit")))
    assert reference.indications and set(reference.patients["indication"]) == {"NET staging"}


@pytest.mark.parametrize("edit, message", [
    ({1: ("T1", "L2", "pancreas", "0", "follow-up", "NET staging", "0")},
     "ref.csv row 3: column indication is NET staging but row 2 gives patient T1 the indication TIO localisation"),
    ({7: ("N2", "L1", "pancreas", "0", "follow-up", "NET", "")},
     "ref.csv row 9: column indication is NET; write one of NET staging, NET work-up, TIO localisation, follow-up"),
    ({4: ("T3", "L1", "soft tissue", "1", "histopathology", "TIO localisation", "0")},
     "patient T3 has the indication TIO localisation but no lesion is marked culprit"),
    ({3: ("T2", "L2", "bone", "0", "follow-up", "", "1")}, "ref.csv row 5: column culprit is 1 but truth is 0; "),
    ({5: ("N1", "L1", "liver", "1", "histopathology", "", "1")},
     "ref.csv row 7: lesion L1 of patient N1 is marked culprit but the patient's indication is NET staging"),
    ({0: ("T1", "L1", "bone", "1", "histopathology", "TIO localisation", "maybe")},
     "ref.csv row 2: column culprit is 'maybe'; write 1 or 0"),
    ({8: ("N3", "", "", "1", "clinical", "NET staging", "1")}, "ref.csv row 10: column culprit is 1 on a row without"),
])
def test_bad_indication_or_culprit_refused(tmp_path, edit, message):
    rows = [edit.get(i, r) for i, r in enumerate(REFERENCE)]
    with pytest.raises(StatsError) as error:
        read_reference(write_reference(tmp_path / "ref.csv", rows, HEADER))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_two_culprits_refused(tmp_path):
    rows = list(REFERENCE) + [("T3", "L9", "bone", "1", "histopathology", "", "1")]
    with pytest.raises(StatsError, match="patient T3 has the indication TIO localisation but lesions L1, L9 are all "
                                         "marked culprit"):
        read_reference(write_reference(tmp_path / "ref.csv", rows, HEADER))


def test_tio_at_a_follow_up_without_the_culprit(tmp_path):
    # T1's culprit was resected: its rows are for baseline only; at FU1 a new malignant lesion L3 (recurrence) is
    # found and the decoy is called positive again. At FU1 the culprit has no row: the NET staging rule applies,
    # L3 called positive -> TP (endpoint "a malignant lesion called positive")
    header = (*HEADER, "time_point")
    rows = [("T1", "L1", "bone", "1", "histopathology", "TIO localisation", "1", "baseline"),
            ("T1", "L2", "pancreas", "0", "follow-up", "", "0", ""),
            ("T1", "L3", "bone", "1", "histopathology", "", "0", "FU1")]
    findings = [finding("T1", "L1", "negative", suv=3, time_point="baseline"),
                finding("T1", "L2", "positive", suv=9, time_point="baseline"),
                finding("T1", "L2", "positive", suv=9, session="T1-fu", time_point="FU1"),
                finding("T1", "L3", "positive", suv=7, session="T1-fu", time_point="FU1")]
    study = load_study(*study_files(tmp_path, rows, header, findings))
    patients = units_for(study)["patient"].set_index("time_point")
    assert (patients.loc["baseline", "endpoint"], patients.loc["baseline", "call"]) == (ENDPOINT_CULPRIT, 0)
    assert (patients.loc["FU1", "endpoint"], patients.loc["FU1", "call"]) == (ENDPOINT_MALIGNANT, 1)
