"""``netpet stats`` carries the reading standards and the multi-reader ROC (netpet.stats.reading): the same numbers
as ``netpet scores`` and ``netpet mrmc`` on the same files, every comparison listed (with its reason when the data
cannot support it), the adjudicator's consensus rows no reader of their own, and a table without confidence said so.

The study, built by hand: six patients (P1-P4 with a malignant lesion L1, P5-P6 a benign one), read by R1 and R2 on
68Ga-DOTATATE PET/CT and PET/MR and on 18F-FDG PET/CT.
"""

import csv

import pytest

from netpet.clinical.scores import read_table_scores
from netpet.stats import StatsOptions, analyse, load_study
from netpet.stats.data import units_for
from netpet.stats.mrmc import study_mrmc

COLUMNS = ["patient_id", "session_id", "modality", "tracer", "reader", "lesion_id", "region", "lesion_type", "call",
           "krenning", "suv_max", "tl_ratio", "liver_suv_mean", "spleen_suv_mean", "confidence", "reader_call"]
#: confidence per (reader, test) for P1..P6 (P1-P4 malignant)
CONFIDENCE = {("R1", "PET/CT"): [5, 4, 4, 3, 2, 3], ("R1", "PET/MR"): [5, 5, 3, 3, 1, 2],
              ("R2", "PET/CT"): [4, 4, 5, 2, 2, 1], ("R2", "PET/MR"): [5, 4, 3, 4, 3, 1],
              ("R1", "fdg"): [4, 5, 2, 2, 1, 1], ("R2", "fdg"): [3, 5, 3, 2, 2, 1]}


def _write(path, columns, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _study(tmp_path, readers=("R1", "R2"), confidence=True, consensus=False):
    rows, reference = [], []
    for n in range(1, 7):
        patient, malignant = f"P{n}", n <= 4
        reference.append({"patient_id": patient, "lesion_id": "L1", "region": "liver" if malignant else "pancreas",
                          "truth": int(malignant), "standard": "histology"})
        for reader in readers + (("consensus",) if consensus else ()):
            source = "R1" if reader == "consensus" else reader
            for modality, tracer, key in (("PET/CT", "dotatate", "PET/CT"), ("PET/MR", "dotatate", "PET/MR"),
                                          ("PET/CT", "fdg", "fdg")):
                c = CONFIDENCE[(source, key)][n - 1]
                rows.append({"patient_id": patient, "session_id": f"S-{tracer}-{modality[-2:]}", "modality": modality,
                             "tracer": tracer, "reader": reader, "lesion_id": "L1",
                             "region": "liver" if malignant else "pancreas",
                             "lesion_type": "liver metastasis" if malignant else "physiological uptake",
                             "call": "positive" if c >= 4 else "negative",
                             "krenning": (3 if c >= 4 else 1) if tracer == "dotatate" else "",
                             "suv_max": 8.0 + c, "tl_ratio": (8.0 + c) / 6.0, "liver_suv_mean": 6.0,
                             "spleen_suv_mean": 18.0, "confidence": c if confidence else "",
                             "reader_call": "positive" if c >= 4 else "negative"})
    table = _write(tmp_path / "study.csv", COLUMNS, rows)
    ref = _write(tmp_path / "reference.csv", ["patient_id", "lesion_id", "region", "truth", "standard"], reference)
    return table, ref


def _comparison(result, level, tests):
    return next(c for c in result["mrmc"]["comparisons"] if c["level"] == level and c["tests"] == tests)


def test_stats_carries_the_reading_standards_and_the_mrmc(tmp_path):
    table, reference = _study(tmp_path)
    study = load_study(table, reference)
    result = analyse(study, StatsOptions(bootstrap=0)).result
    # the reading standards are netpet scores' own result on the same table
    assert result["scores"] == read_table_scores(table, reference_path=reference)
    # one tracer on two modalities and two tracers on one modality, at patient and lesion level
    pairs = {(c["level"], tuple(c["tests"])) for c in result["mrmc"]["comparisons"]}
    assert pairs == {(level, tests) for level in ("patient", "lesion")
                     for tests in (("PET/CT dotatate", "PET/CT fdg"), ("PET/CT dotatate", "PET/MR dotatate"))}
    modality = _comparison(result, "patient", ["PET/CT dotatate", "PET/MR dotatate"])["result"]
    expected = study_mrmc(units_for(study), "patient", ["PET/CT dotatate", "PET/MR dotatate"])
    assert modality["rrrc"]["f"] == pytest.approx(expected["rrrc"]["f"], rel=1e-12)
    auc = {(a["reader"], a["test"]): a["auc"] for a in modality["auc"]}
    # R1 PET/CT: malignant 5, 4, 4, 3 vs benign 2, 3: 7.5 of 8 pairs (a tie 1/2) = 0.9375; R2 PET/MR: 5, 4, 3, 4 vs
    # 3, 1: 7.5 / 8 = 0.9375; R1 FDG: 4, 5, 2, 2 vs 1, 1: 8 / 8 = 1
    assert auc[("R1", "PET/CT dotatate")] == pytest.approx(0.9375, abs=1e-12)
    assert auc[("R2", "PET/MR dotatate")] == pytest.approx(0.9375, abs=1e-12)
    tracer = _comparison(result, "patient", ["PET/CT dotatate", "PET/CT fdg"])["result"]
    assert {(a["reader"], a["test"]): a["auc"] for a in tracer["auc"]}[("R1", "PET/CT fdg")] == pytest.approx(1.0)


def test_consensus_is_no_reader_and_missing_confidence_is_said(tmp_path):
    table, reference = _study(tmp_path, consensus=True)
    result = analyse(load_study(table, reference), StatsOptions(bootstrap=0)).result
    modality = _comparison(result, "patient", ["PET/CT dotatate", "PET/MR dotatate"])["result"]
    assert modality["design"]["readers"] == ["R1", "R2"]
    # one reader only: no multi-reader analysis, and the result says why
    one = tmp_path / "one"
    one.mkdir()
    table, reference = _study(one, readers=("R1",))
    result = analyse(load_study(table, reference), StatsOptions(bootstrap=0)).result
    assert result["mrmc"]["comparisons"] == [] and "at least two readers" in result["mrmc"]["note"]
    # confidence not recorded: every comparison listed as not analysed, with the reason
    none = tmp_path / "none"
    none.mkdir()
    table, reference = _study(none, confidence=False)
    result = analyse(load_study(table, reference), StatsOptions(bootstrap=0)).result
    assert result["mrmc"]["comparisons"] and all("not_analysed" in c for c in result["mrmc"]["comparisons"])
    assert all("confidence" in c["not_analysed"] for c in result["mrmc"]["comparisons"])
