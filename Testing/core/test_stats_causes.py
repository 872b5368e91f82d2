"""Coded causes of false findings: every code proposed from a hand-built row (with the reason naming the cells), the
reader's confirmation read back from the false-findings list, and the tallies per level of a hand-built study. Codes
and counts are exact (no tolerance); the partial-volume limits are exact products (2 x 6 mm = 12 mm)."""

from __future__ import annotations

import csv

import pytest

from netpet.stats.analysis import StatsOptions, analyse, false_finding_key
from netpet.stats.causes import CAUSES, CODES, DEFAULT_FWHM_MM, propose, read_cause_codes
from netpet.stats.data import load_study
from netpet.stats.intervals import StatsError
from Testing.core.test_stats_inputs import finding, write_reference, write_table

FP, FN = "false positive", "false negative"
CT = {"modality": "PET/CT", "tracer": "dotatate"}


@pytest.mark.parametrize("row, code, reason", [
    # physiological uptake by site: the site's or the lesion type's words
    ({"kind": FP, **CT, "region": "pancreas", "site": "uncinate process"}, "PHYS",
     "site uncinate process names physiological uptake by site ('uncinate'), read as a lesion."),
    ({"kind": FP, **CT, "region": "abdomen", "lesion_type": "splenule"}, "PHYS", "lesion_type splenule names"),
    # inflammation
    ({"kind": FP, **CT, "region": "lymph node", "standard": "histology: reactive lymph node"}, "INFL",
     "standard histology: reactive lymph node names inflammation ('reactive')"),
    ({"kind": FP, **CT, "region": "pancreas", "site": "focal pancreatitis"}, "INFL", "('pancreatitis')"),
    # fracture or degenerative change
    ({"kind": FP, **CT, "region": "bone", "site": "L4 vertebra", "standard": "MRI: degenerative endplate"}, "BONE",
     "standard MRI: degenerative endplate names fracture or degenerative change ('degenerat')"),
    ({"kind": FP, **CT, "region": "bone", "lesion_type": "rib fracture"}, "BONE", "('fractur')"),
    # urinary activity (before the other words: a ureter is no physiological SSTR site)
    ({"kind": FP, **CT, "region": "lymph node", "site": "left ureter"}, "URINE", "names urinary activity ('ureter')"),
    # motion or misregistration: the quality flags
    ({"kind": FP, **CT, "region": "liver", "flags": "respiratory motion"}, "MOTION",
     "flags respiratory motion names motion or misregistration."),
    ({"kind": FN, **CT, "region": "liver", "warnings": "PET-CT misregistration", "krenning": "1"}, "MOTION",
     "warnings PET-CT misregistration"),
    # PET/MR attenuation in bone (before size and uptake for a miss)
    ({"kind": FN, "modality": "PET/MR", "tracer": "dotatate", "region": "bone", "krenning": "1",
      "longest_diameter_mm": "5"}, "MRAC", "PET/MR (PET/MR) and region bone: MR-based attenuation without bone "
                                            "underestimates its uptake."),
    # partial volume: 9 mm < 2 x 6 mm (default FWHM) = 12 mm
    ({"kind": FN, **CT, "region": "liver", "longest_diameter_mm": "9", "krenning": "3"}, "PVE",
     "longest_diameter_mm 9 mm < 2 x FWHM = 12 mm (FWHM 6 mm, the default for PET/CT (no fwhm_mm column)): partial "
     "volume."),
    # the reference standard's diameter when the table has none: 5 mm < 12 mm
    ({"kind": FN, **CT, "region": "liver", "diameter_mm": "5"}, "PVE", "diameter_mm 5 mm < 2 x FWHM = 12 mm"),
    ({"kind": FN, **CT, "region": "liver", "flags": "partial-volume"}, "PVE", "flags name partial-volume"),
    # low SSTR expression: Krenning <= 1; an equivocal call counted negative; T/L <= 1 without Krenning
    ({"kind": FN, **CT, "region": "bone", "krenning": "1", "longest_diameter_mm": "30"}, "LOWSSTR",
     "Krenning 1 on dotatate (uptake below the liver): low somatostatin-receptor expression."),
    ({"kind": FN, **CT, "region": "liver", "call": "equivocal", "krenning": "2"}, "LOWSSTR",
     "equivocal call on dotatate (uptake equal to the liver, Krenning 2) counted negative"),
    ({"kind": FN, **CT, "region": "liver", "tl_ratio": "0.8"}, "LOWSSTR", "tumour-to-liver ratio 0.80 <= 1"),
    # other: nothing applies; Krenning 1 on FDG is no SSTR expression; a FWHM column lifts the size rule
    ({"kind": FP, **CT, "region": "liver"}, "OTHER", "no rule of the list applies"),
    ({"kind": FN, "modality": "PET/CT", "tracer": "fdg", "region": "liver", "krenning": "1"}, "OTHER", "no rule"),
    ({"kind": FN, **CT, "region": "liver", "longest_diameter_mm": "9", "fwhm_mm": "4", "krenning": "3"}, "OTHER",
     "no rule"),  # 9 mm >= 2 x 4 mm = 8 mm
])
def test_every_code_is_proposed_from_a_hand_built_row(row, code, reason):
    proposed, sentence = propose(row)
    assert proposed == code and reason in sentence, (proposed, sentence)


def test_the_list_and_its_order():
    assert CODES == ("PHYS", "INFL", "BONE", "PVE", "LOWSSTR", "MOTION", "MRAC", "URINE", "OTHER")
    assert all(c.definition and c.name for c in CAUSES) and DEFAULT_FWHM_MM == 6.0
    # the words of a false positive come before PET/MR bone: a fracture read on PET/MR is a fracture
    assert propose({"kind": FP, "modality": "PET/MR", "tracer": "dotatate", "region": "bone",
                    "site": "rib fracture"})[0] == "BONE"
    # the same small bone lesion missed on PET/CT is partial volume (no MR attenuation)
    assert propose({"kind": FN, **CT, "region": "bone", "longest_diameter_mm": "5"})[0] == "PVE"


REFERENCE = [
    # patient, lesion, region, truth, standard, site, indication
    ("P1", "L1", "pancreas", "0", "follow-up", "uncinate process", "NET staging"),
    ("P1", "L2", "liver", "1", "histopathology", "segment 7", ""),
    ("P2", "L1", "bone", "1", "histopathology", "femur", ""),
    ("P2", "L2", "bone", "0", "follow-up", "rib fracture", ""),
    ("P3", "L1", "lymph node", "1", "histopathology", "mesenteric", ""),
    ("P4", "", "", "0", "follow-up", "", ""),
    ("P4", "L1", "pelvis", "0", "follow-up", "bladder diverticulum", ""),
]
HEADER = ("patient_id", "lesion_id", "region", "truth", "standard", "site", "indication")


def causes_study(tmp_path):
    rows = [
        finding("P1", "L1", "positive", suv=9, krenning="3"),                                 # FP PHYS
        finding("P1", "L2", "negative", suv=3, krenning="3", longest_diameter_mm="8"),       # FN PVE (8 < 12)
        finding("P2", "L1", "negative", suv=2, krenning="1", longest_diameter_mm="25"),      # FN LOWSSTR
        finding("P2", "L2", "positive", suv=6, krenning="3", longest_diameter_mm="15"),      # FP BONE
        finding("P3", "L1", "positive", suv=12, krenning="4", longest_diameter_mm="20"),     # TP
        finding("P4", "L1", "positive", suv=30, krenning="4", longest_diameter_mm="20"),     # FP URINE
    ]
    return write_table(tmp_path / "table.csv", rows), write_reference(tmp_path / "ref.csv", REFERENCE, HEADER)


def _tally(result, level):
    return {(t["kind"], t["cause_code"]): (t["count"], t["confirmed"]) for t in result["cause_tally"]
            if t["level"] == level}


def test_tallies_per_level(tmp_path):
    analysis = analyse(load_study(*causes_study(tmp_path)), StatsOptions(bootstrap=0))
    result = analysis.result
    proposed = {(r["patient_id"], r["lesion_id"]): (r["kind"], r["proposed_cause"], r["cause_code"],
                                                    r["cause_confirmed"]) for r in result["false_findings"]}
    assert proposed == {("P1", "L1"): (FP, "PHYS", "PHYS", "no"), ("P1", "L2"): (FN, "PVE", "PVE", "no"),
                        ("P2", "L1"): (FN, "LOWSSTR", "LOWSSTR", "no"), ("P2", "L2"): (FP, "BONE", "BONE", "no"),
                        ("P4", "L1"): (FP, "URINE", "URINE", "no")}
    # lesion level: one false finding per code
    assert _tally(result, "lesion") == {(FN, "PVE"): (1, 0), (FN, "LOWSSTR"): (1, 0), (FP, "PHYS"): (1, 0),
                                        (FP, "BONE"): (1, 0), (FP, "URINE"): (1, 0)}
    # patient level (NET staging: a malignant lesion must be called positive): P1 FN (L2 missed, L1 FP: PVE and
    # PHYS), P2 FN (L1 missed, L2 FP: LOWSSTR and BONE), P3 TP, P4 FP (URINE)
    patients = {r["patient_id"]: (r["kind"], r["cause_codes"]) for r in result["false_findings_by_level"]["patient"]}
    assert patients == {"P1": (FN, "PVE; PHYS"), "P2": (FN, "LOWSSTR; BONE"), "P4": (FP, "URINE")}
    assert _tally(result, "patient") == {(FN, "PVE"): (1, 0), (FN, "PHYS"): (1, 0), (FN, "LOWSSTR"): (1, 0),
                                         (FN, "BONE"): (1, 0), (FP, "URINE"): (1, 0)}
    # region level (any positive finding in the region): P1 pancreas FP (PHYS), P1 liver FN (PVE); P2 bone is a TP
    # (L2 called positive in a bone with the malignant L1); P4 pelvis FP (URINE)
    regions = {(r["patient_id"], r["region"]): (r["kind"], r["cause_codes"])
               for r in result["false_findings_by_level"]["region"]}
    assert regions == {("P1", "pancreas"): (FP, "PHYS"), ("P1", "liver"): (FN, "PVE"), ("P4", "pelvis"): (FP, "URINE")}
    assert _tally(result, "region") == {(FP, "PHYS"): (1, 0), (FN, "PVE"): (1, 0), (FP, "URINE"): (1, 0)}
    # the tally is per group: here the one group
    assert {(t["modality"], t["tracer"], t["reader"]) for t in result["cause_tally"]} == {("PET/CT", "dotatate", "R1")}
    assert result["methods"]["causes"]["proposed_only"] == 5 and result["methods"]["causes"]["confirmed"] == 0
    assert [c["code"] for c in result["cause_codes"]] == list(CODES)


def test_reader_confirmation_round_trip(tmp_path):
    table, reference = causes_study(tmp_path)
    analysis = analyse(load_study(table, reference), StatsOptions(bootstrap=0))
    path = tmp_path / "false-findings.csv"
    rows = analysis.false_findings.to_dict("records")
    for row in rows:
        if row["lesion_id"] == "L1" and row["patient_id"] == "P1":
            row["cause_confirmed"] = "yes"        # the proposal confirmed
        if row["patient_id"] == "P2" and row["lesion_id"] == "L2":
            row["cause_code"] = "infl"            # changed by the reader: confirmed without a yes
        if row["patient_id"] == "P4":
            row["cause_code"], row["cause_confirmed"] = "other", "Yes"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(analysis.false_findings.columns))
        writer.writeheader()
        writer.writerows(rows)
    codes = read_cause_codes(str(path), false_finding_key)
    assert sorted((k[1], k[5], v) for k, v in codes.items()) == [
        ("P1", "L1", ("PHYS", True)), ("P2", "L2", ("INFL", True)), ("P4", "L1", ("OTHER", True))]
    again = analyse(load_study(table, reference), StatsOptions(bootstrap=0, cause_codes=codes)).result
    kept = {(r["patient_id"], r["lesion_id"]): (r["proposed_cause"], r["cause_code"], r["cause_confirmed"])
            for r in again["false_findings"]}
    assert kept[("P2", "L2")] == ("BONE", "INFL", "yes") and kept[("P1", "L1")] == ("PHYS", "PHYS", "yes")
    assert kept[("P4", "L1")] == ("URINE", "OTHER", "yes") and kept[("P1", "L2")] == ("PVE", "PVE", "no")
    patients = {r["patient_id"]: (r["cause_codes"], r["confirmed"])
                for r in again["false_findings_by_level"]["patient"]}
    # P2: LOWSSTR (unconfirmed) and INFL (confirmed): not all confirmed; P4 OTHER confirmed
    assert patients == {"P1": ("PVE; PHYS", False), "P2": ("LOWSSTR; INFL", False), "P4": ("OTHER", True)}
    assert _tally(again, "lesion")[(FP, "INFL")] == (1, 1) and (FP, "BONE") not in _tally(again, "lesion")
    assert _tally(again, "patient")[(FP, "OTHER")] == (1, 1)
    assert again["methods"]["causes"]["confirmed"] == 3 and again["methods"]["causes"]["proposed_only"] == 2


@pytest.mark.parametrize("column, value, message", [
    ("cause_code", "XYZ", "row 2: column cause_code is XYZ; write one of PHYS, INFL"),
    ("cause_confirmed", "maybe", "row 2: column cause_confirmed is maybe; write yes"),
])
def test_bad_cause_cells_refused(tmp_path, column, value, message):
    table, reference = causes_study(tmp_path)
    analysis = analyse(load_study(table, reference), StatsOptions(bootstrap=0))
    path = tmp_path / "false-findings.csv"
    frame = analysis.false_findings.copy()
    frame.loc[0, column] = value
    frame.to_csv(path, index=False)
    with pytest.raises(StatsError, match=message):
        read_cause_codes(str(path), false_finding_key)


def test_a_list_without_cause_codes_or_no_list_gives_none(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("kind,patient_id,modality,tracer,reader,lesion_id,cause\nfalse positive,P1,PET/CT,dotatate,R1,L1,"
                    "uncinate\n")
    assert read_cause_codes(str(path), false_finding_key) == {}
    assert read_cause_codes(str(tmp_path / "none.csv"), false_finding_key) == {}


def test_a_confirmed_code_of_a_finding_no_longer_false_is_returned(tmp_path):
    table, reference = causes_study(tmp_path)
    study = load_study(table, reference)
    # a confirmation for P3 L1, a true positive in this study (e.g. written when it was read negative)
    key = ("false negative", "P3", "PET/CT", "dotatate", "R1", "L1")
    result = analyse(study, StatsOptions(bootstrap=0, cause_codes={key: ("PVE", True)})).result
    assert result["previous_cause_codes"] == [{"kind": "false negative", "patient_id": "P3", "modality": "PET/CT",
                                               "tracer": "dotatate", "reader": "R1", "lesion_id": "L1",
                                               "cause_code": "PVE"}]
    assert "previous_cause_codes" not in analyse(study, StatsOptions(bootstrap=0)).result
