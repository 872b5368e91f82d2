"""netpet sr: the DICOM SR measurement report (TID 1500) per session and reader, and its DICOM SEG.

The study: a synthetic 68Ga-DOTATATE PET (netpet.dicom.dro, 16x24x24 voxels of 4 mm) with three hot
spheres of known SUV (8, 5 and 3 over a background of 1), quantified by ``netpet quantify --dicom-seg``
for two readers; reader columns are then filled in the table as ``netpet record`` would (a visual call,
a confidence, SSTR-RADS, an anatomic correlate) and one finding is retracted.

Checked: dciodvfy (dicom3tools) finds no error in the SR and the SEG; the values read back from the SR
equal the table's cells (the SR's NumericValue is a DS of the table's number: equal to the table's
decimals, tolerance half a unit of the cell's last decimal), the references resolve to the SEG's
segment numbers and the PET's SOP instance UIDs, the observer is the reader, the SEG names the reader.

Warnings of dciodvfy accepted (and asserted to be the only ones):
- ``Unrecognized defined term <99NETPET> ... Coding Scheme Designator``: dciodvfy knows the designators
  of PS3.16 only; 99NETPET is a private scheme (PS3.16 section 8: designators starting ``99``) and is
  declared in the SR's Coding Scheme Identification Sequence, as the standard asks.
The reader's name (ContentCreatorName, Person Observer Name) is written ``R1^`` (a family name alone, PS3.5
6.2.1), which dciodvfy accepts without the "Retired Person Name form" warning it gives ``R1``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from netpet.cli.main import main
from netpet.quant.table import StudyTable

ACCEPTED_WARNINGS = (
    re.compile(r"^Warning - Unrecognized defined term <99NETPET> for value 1 of attribute <Coding Scheme Designator>$"),
)
SPHERES = {"L1": ((5, 7, 7), 8.0, "liver"), "L2": ((10, 16, 16), 5.0, "bone"), "L3": ((11, 6, 17), 3.0, "other")}
SPACING = 4.0
ORIGIN = (-48.0, -48.0, -100.0)


def _ras(k, j, i):
    """R,A,S (mm) of voxel (k, j, i) of the DRO (identity direction, LPS origin)."""
    return -(ORIGIN[0] + i * SPACING), -(ORIGIN[1] + j * SPACING), ORIGIN[2] + k * SPACING


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from netpet.dicom import dro, writer

    root = tmp_path_factory.mktemp("sr")
    case = dro.Case(seed="sr-test", shape=(16, 24, 24), spacing=(SPACING,) * 3, origin=ORIGIN, nuclide="Ga-68",
                    dose_bq=150e6, agent_text="Ga-68 DOTATATE", agent_code=None)
    suv = np.ones(case.shape)
    z, y, x = np.meshgrid(*[np.arange(n) for n in case.shape], indexing="ij")
    for (k, j, i), value, _ in SPHERES.values():
        suv[(z - k) ** 2 + (y - j) ** 2 + (x - i) ** 2 <= 4] = value
    datasets, _ = dro.build(case, suv)
    writer.save_datasets(datasets, str(root / "dicom" / "PET"), prefix="PT")
    liver = _ras(13, 12, 12)  # background of SUV 1: the liver reference
    rows = []
    for reader, lesions in (("R1", ("L1", "L2", "L3")), ("R2", ("L1", "L2"))):
        for lesion in lesions:
            seed = _ras(*SPHERES[lesion][0])
            rows.append({"patient_id": "P1", "series": str(root / "dicom" / "PET"), "session_id": "S1", "reader": reader,
                         "lesion_id": lesion, "region": SPHERES[lesion][2], "seed_r": seed[0], "seed_a": seed[1],
                         "seed_s": seed[2], "liver_r": liver[0], "liver_a": liver[1], "liver_s": liver[2]})
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        out = csv.DictWriter(handle, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    table_path = root / "table.csv"
    assert main(["quantify", str(manifest), "--table", str(table_path), "--dicom-seg", "--jobs", "1"]) == 0
    table = StudyTable(str(table_path))
    readings = {("R1", "L1"): ("positive", "5", "4", "lesion"), ("R1", "L2"): ("equivocal", "3", "3B", "benign"),
                ("R1", "L3"): ("negative", "2", "2A", "none"), ("R2", "L1"): ("positive", "4", "4", "lesion"),
                ("R2", "L2"): ("positive", "4", "5", "none")}
    changed = []
    for row in table.read():
        call, confidence, rads, correlate = readings[(row["reader"], row["lesion_id"])]
        row.update(reader_call=call, confidence=confidence, sstr_rads=rads, anatomic_correlate=correlate)
        if (row["reader"], row["lesion_id"]) == ("R1", "L3"):
            row.update(finding_status="retracted", retraction_reason="physiological uptake on review")
        changed.append(row)
    table.upsert(changed)
    # reader R2's session has no DICOM SEG: netpet sr writes it from the .seg.nrrd
    os.remove(root / "segmentations" / "P1_S1_R2.dcm")
    out_dir = root / "out"
    assert main(["sr", "--table", str(table_path), "--dicom", str(root / "dicom"), "--out", str(out_dir)]) == 0
    return root, {(r["reader"], r["lesion_id"]): r for r in table.read()}


def _dciodvfy(path):
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: install the Debian package dicom3tools (python3 quickstart.py test does)")
    return subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True).stderr


def _files(root):
    return {"sr1": root / "out" / "P1_S1_R1_sr.dcm", "sr2": root / "out" / "P1_S1_R2_sr.dcm",
            "seg1": root / "segmentations" / "P1_S1_R1.dcm", "seg2": root / "out" / "P1_S1_R2_seg.dcm"}


def _items(items):
    """Every content item of an SR tree, depth first."""
    for item in items:
        yield item
        yield from _items(item.get("ContentSequence", []))


def _groups(sr):
    """{tracking identifier: the Measurement Group container} of a TID 1500 report."""
    out = {}
    for item in _items(sr.ContentSequence):
        if item.ValueType == "CONTAINER" and item.ConceptNameCodeSequence[0].CodeValue == "125007":
            ident = next(i.TextValue for i in item.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "112039")
            out[ident] = item
    return out


def test_sr_and_seg_are_valid_by_dciodvfy(study):
    root, _ = study
    for name, path in _files(root).items():
        assert path.exists(), name
        lines = [line for line in _dciodvfy(path).splitlines() if line.strip()]
        assert not [line for line in lines if "Error" in line], (name, lines)
        others = [line for line in lines if line.startswith("Warning")
                  and not any(p.match(line) for p in ACCEPTED_WARNINGS)]
        assert not others, (name, others)


def test_measurements_equal_the_table(study):
    root, rows = study
    for reader, sr_name in (("R1", "sr1"), ("R2", "sr2")):
        sr = pydicom.dcmread(_files(root)[sr_name])
        groups = _groups(sr)
        expected = sorted(lesion for (r, lesion), row in rows.items() if r == reader and row["finding_status"] != "retracted")
        assert sorted(groups) == expected  # R1's L3 is retracted: not in the report
        for lesion, group in groups.items():
            row = rows[(reader, lesion)]
            found = {}
            for item in group.ContentSequence:
                if item.ValueType == "NUM":
                    name = item.ConceptNameCodeSequence[0].CodeValue
                    derivation = [m.ConceptCodeSequence[0].CodeValue for m in item.get("ContentSequence", [])
                                  if m.ConceptNameCodeSequence[0].CodeValue == "121401"]
                    unit = item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue
                    found[(name, derivation[0] if derivation else "")] = (float(item.MeasuredValueSequence[0].NumericValue),
                                                                          unit)
            columns = {("126401", "56851009"): "suv_max", ("126401", "126031"): "suv_peak",
                       ("126401", "373098007"): "suv_mean", ("126032", ""): "mtv_ml", ("TLA", ""): "tla",
                       ("126039", ""): "tl_ratio"}
            assert set(found) == set(columns), lesion
            for key, column in columns.items():
                cell = row[column]
                decimals = len(cell.split(".")[1]) if "." in cell else 0
                # the table's decimals: half a unit of the cell's last digit
                assert found[key][0] == pytest.approx(float(cell), abs=0.5 * 10 ** -decimals), (lesion, column)
            assert found[("126401", "56851009")][1] == "g/ml{SUVbw}" and found[("126032", "")][1] == "ml"
            # the spheres' SUV is known: SUVmax of the noise-free sphere is its value (4 significant digits)
            assert found[("126401", "56851009")][0] == pytest.approx(SPHERES[lesion][1], rel=1e-4)
            codes = {i.ConceptNameCodeSequence[0].CodeValue: i.ConceptCodeSequence[0].CodeValue
                     for i in group.ContentSequence if i.ValueType == "CODE"}
            calls = {"positive": "10828004", "equivocal": "42425007", "negative": "260385009"}
            assert codes["READER-CALL"] == calls[row["reader_call"]]
            assert codes["SUV-RULE-CALL"] == calls[row["call"]]
            assert codes["CONFIDENCE"] == f"CONFIDENCE-{row['confidence']}"
            assert codes["SSTR-RADS"] == f"SSTR-RADS-{row['sstr_rads']}"
            assert codes["KRENNING"] == f"KRENNING-{int(float(row['krenning']))}"
            correlates = {"lesion": "111385", "none": "111386", "benign": "CORR-BENIGN"}
            assert codes["111380"] == correlates[row["anatomic_correlate"]]
            assert codes["121071"] == "52988006"  # Finding: Lesion
            assert codes.get("363698007") == {"liver": "10200004", "bone": "272673000"}.get(row["region"])
        declared = {str(i.CodingSchemeDesignator) for i in sr.CodingSchemeIdentificationSequence}
        assert "99NETPET" in declared


def test_references_resolve_to_the_seg_and_the_pet(study):
    import highdicom as hd

    from netpet.quant.export import finding_uid

    root, rows = study
    pet = [pydicom.dcmread(root / "dicom" / "PET" / n, stop_before_pixels=True)
           for n in sorted(os.listdir(root / "dicom" / "PET"))]
    pet_uids = {str(ds.SOPInstanceUID) for ds in pet}
    series = str(pet[0].SeriesInstanceUID)
    for reader, sr_name, seg_name in (("R1", "sr1", "seg1"), ("R2", "sr2", "seg2")):
        sr = pydicom.dcmread(_files(root)[sr_name])
        seg = hd.seg.segread(_files(root)[seg_name])
        assert seg.ContentCreatorName.family_name == reader and str(seg.ContentCreatorName) == reader + "^"
        segments = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
        for lesion, group in _groups(sr).items():
            images = [i for i in group.ContentSequence if i.ValueType == "IMAGE"]
            segment_ref = [i for i in images if i.ConceptNameCodeSequence[0].CodeValue == "121191"]
            assert len(segment_ref) == 1
            ref = segment_ref[0].ReferencedSOPSequence[0]
            assert ref.ReferencedSOPInstanceUID == seg.SOPInstanceUID and ref.ReferencedSOPClassUID == seg.SOPClassUID
            number = int(ref.ReferencedSegmentNumber)
            assert str(segments[number].SegmentLabel) == lesion
            tracking = next(i.UID for i in group.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "112040")
            assert tracking == segments[number].TrackingUID == finding_uid(series, reader, lesion)
            # the source images: exactly the PET instances of the segment's frames
            sources = {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images
                       if i.ConceptNameCodeSequence[0].CodeValue == "121233"}
            frames = seg.get_pixels_by_source_instance(sorted(pet_uids), segment_numbers=[number])
            drawn = {uid for uid, frame in zip(sorted(pet_uids), frames) if frame.any()}
            assert sources == drawn and sources <= pet_uids and len(sources) == 5  # a sphere of radius 2 voxels
        observers = {i.ConceptNameCodeSequence[0].CodeValue: i for i in sr.ContentSequence}
        assert observers["121008"].PersonName.family_name == reader
        assert observers["121013"].TextValue.startswith("NETPET ")
        evidence = {str(i.ReferencedSOPInstanceUID) for s in sr.CurrentRequestedProcedureEvidenceSequence
                    for r in s.ReferencedSeriesSequence for i in r.ReferencedSOPSequence}
        assert evidence == pet_uids | {str(seg.SOPInstanceUID)}
        assert sr.PatientID == pet[0].PatientID and sr.StudyInstanceUID == pet[0].StudyInstanceUID


def test_bad_input_is_one_sentence(study, tmp_path, capsys):
    root, rows = study
    capsys.readouterr()
    args = ["sr", "--table", str(root / "table.csv"), "--dicom", str(root / "dicom"), "--out", str(tmp_path / "o")]
    assert main(args + ["--reader", "R9"]) == 3
    assert capsys.readouterr().err.strip() == (f"netpet: error: The study table {root / 'table.csv'} holds no rows of "
                                               "reader R9; nothing to report.")
    # a confidence out of the scale: the session is skipped with a sentence naming the row; the other is written
    table = tmp_path / "table.csv"
    with open(root / "table.csv", newline="", encoding="utf-8") as handle:
        data = list(csv.DictReader(handle))
    for row in data:
        if row["reader"] == "R2" and row["lesion_id"] == "L2":
            row["confidence"] = "7"
        row["segmentation_file"] = os.path.relpath(root / row["segmentation_file"], tmp_path)
    with open(table, "w", newline="", encoding="utf-8") as handle:
        out = csv.DictWriter(handle, fieldnames=list(data[0]))
        out.writeheader()
        out.writerows(data)
    assert main(["sr", "--table", str(table), "--dicom", str(root / "dicom"), "--out", str(tmp_path / "o")]) == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["netpet: note: patient P1 session S1 reader R1: 1 retracted finding(s) left out of the report",
                   f"netpet: skipped: study table {table}, row of patient P1 session S1 reader R2 lesion L2: confidence "
                   "is '7'; give a whole number from 1 to 5 (1 definitely benign; 2 probably benign; 3 indeterminate; 4 "
                   "probably malignant; 5 definitely malignant), or leave it empty."]
    assert [n for n in sorted(os.listdir(tmp_path / "o")) if n.endswith(".dcm")] == ["P1_S1_R1_sr.dcm"]
    # every finding of a session retracted: said, no SR, not an error
    for row in data:
        if row["reader"] == "R2":
            row.update(finding_status="retracted", confidence="4")
    with open(table, "w", newline="", encoding="utf-8") as handle:
        out = csv.DictWriter(handle, fieldnames=list(data[0]))
        out.writeheader()
        out.writerows(data)
    assert main(["sr", "--table", str(table), "--dicom", str(root / "dicom"), "--out", str(tmp_path / "o2"), "--json",
                 "--reader", "R2"]) == 0
    assert json.loads(capsys.readouterr().out) == {"reports": [], "errors": [], "warnings": [
        "patient P1 session S1 reader R2: 2 retracted finding(s) left out of the report",
        "patient P1 session S1 reader R2: no active finding (a session read without findings, or every finding "
        "retracted), so no SR: a measurement report needs a finding to measure"]}
    # the DICOM folder without the session's PET
    (tmp_path / "empty").mkdir()
    assert main(["sr", "--table", str(table), "--dicom", str(tmp_path / "empty"), "--out", str(tmp_path / "o"),
                 "--reader", "R1"]) == 3
    uid = rows[("R1", "L1")]["series_uid"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"netpet: skipped: study table {table}, rows of patient P1 session S1 reader R1: no PET series {uid} under "
        f"{tmp_path / 'empty'}; give the DICOM folder that holds the session's PET.")


def test_pseudonymised_table_gives_pseudonymised_sr(study, tmp_path):
    """A table written with --pseudonymise: the PET is found by its pseudonymised series UID, the SR and SEG
    name the patient by the pseudonym, without the PET's name and birth date (netpet.privacy)."""
    from netpet.privacy import Pseudonymiser

    root, _ = study
    key = tmp_path / "study.key"
    key.write_text("ab" * 32)
    keyed = Pseudonymiser.from_file(str(key))
    with open(root / "manifest.csv", newline="", encoding="utf-8") as handle:
        manifest = [r for r in csv.DictReader(handle) if r["reader"] == "R1" and r["lesion_id"] == "L1"]
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.DictWriter(handle, fieldnames=list(manifest[0]))
        out.writeheader()
        out.writerows(manifest)
    table = tmp_path / "table.csv"
    assert main(["quantify", str(path), "--table", str(table), "--jobs", "1", "--pseudonymise", str(key)]) == 0
    assert main(["sr", "--table", str(table), "--dicom", str(root / "dicom"), "--out", str(tmp_path / "o")]) == 3
    assert main(["sr", "--table", str(table), "--dicom", str(root / "dicom"), "--out", str(tmp_path / "o"),
                 "--pseudonymise", str(key)]) == 0
    pseudonym = keyed.patient("P1")
    names = sorted(os.listdir(tmp_path / "o"))
    assert [n for n in names if n.endswith(".dcm")] == [f"{pseudonym}_S1_R1_seg.dcm", f"{pseudonym}_S1_R1_sr.dcm"]
    pet = pydicom.dcmread(root / "dicom" / "PET" / sorted(os.listdir(root / "dicom" / "PET"))[0])
    for name in (f"{pseudonym}_S1_R1_seg.dcm", f"{pseudonym}_S1_R1_sr.dcm"):
        ds = pydicom.dcmread(tmp_path / "o" / name)
        assert ds.PatientID == pseudonym and str(ds.PatientName) == pseudonym  # the table's patient, not the DICOM one
        assert ds.PatientBirthDate == "" and ds.PatientIdentityRemoved == "YES"
        assert "Test" not in str(ds) and "19610402" not in str(ds) and pet.PatientID not in str(ds)
        assert ds.StudyDate != pet.StudyDate and ds.StudyInstanceUID == pet.StudyInstanceUID  # shifted; UIDs kept
    # a plain table with a key: pseudonymised SR, and a pseudonymised SEG instead of the plain one beside the table
    assert main(["sr", "--table", str(root / "table.csv"), "--dicom", str(root / "dicom"), "--out", str(tmp_path / "p"),
                 "--reader", "R1", "--pseudonymise", str(key)]) == 0
    names = sorted(n for n in os.listdir(tmp_path / "p") if n.endswith(".dcm"))
    assert names == [f"{pseudonym}_S1_R1_seg.dcm", f"{pseudonym}_S1_R1_sr.dcm"]
    seg = pydicom.dcmread(tmp_path / "p" / names[0])
    sr = pydicom.dcmread(tmp_path / "p" / names[1])
    for ds in (seg, sr):
        assert ds.PatientID == pseudonym and ds.PatientBirthDate == "" and "Test" not in str(ds)
        assert ds.StudyDate == pydicom.dcmread(tmp_path / "o" / f"{pseudonym}_S1_R1_sr.dcm").StudyDate
    assert sorted(str(s.SegmentLabel) for s in seg.SegmentSequence) == ["L1", "L2"]  # L3 is retracted
    referenced = {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in _items(sr.ContentSequence)
                  if i.ValueType == "IMAGE" and i.ConceptNameCodeSequence[0].CodeValue == "121191"}
    assert referenced == {seg.SOPInstanceUID}


@pytest.mark.parametrize("suv_type", ["bw", "lbm", "lbmjanma", "bsa", "ibw"])
def test_every_suv_type_is_coded_and_valid(study, tmp_path, suv_type):
    """The SUV quantity and unit follow the table's suv_type (PS3.16 CID 7180 and CID 85), the TLA is Total Lesion
    Glycolysis for FDG only; each SR passes dciodvfy (the unit codes longer than 16 characters are LongCodeValue)."""
    from netpet.quant.sr import SUV_CODES

    root, _ = study
    with open(root / "table.csv", newline="", encoding="utf-8") as handle:
        data = [r for r in csv.DictReader(handle) if r["reader"] == "R1"]
    for row in data:
        row.update(suv_type=suv_type, tracer="fdg" if suv_type == "bw" else row["tracer"])
        row["segmentation_file"] = os.path.relpath(root / row["segmentation_file"], tmp_path)
    table = tmp_path / "table.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        out = csv.DictWriter(handle, fieldnames=list(data[0]))
        out.writeheader()
        out.writerows(data)
    assert main(["sr", "--table", str(table), "--dicom", str(root / "dicom"), "--out", str(tmp_path / "o")]) == 0
    path = tmp_path / "o" / "P1_S1_R1_sr.dcm"
    lines = [line for line in _dciodvfy(path).splitlines() if line.startswith(("Error", "Warning"))]
    assert all(any(p.match(line) for p in ACCEPTED_WARNINGS) for line in lines), lines
    quantity, unit = SUV_CODES[suv_type]
    for group in _groups(pydicom.dcmread(path)).values():
        nums = [i for i in group.ContentSequence if i.ValueType == "NUM"]
        suvs = [i for i in nums if i.ConceptNameCodeSequence[0].CodeValue == quantity[0]]
        assert len(suvs) == 3
        for item in suvs:
            code = item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
            assert code.get("CodeValue", code.get("LongCodeValue")) == unit[0]
        names = {i.ConceptNameCodeSequence[0].CodeValue for i in nums}
        assert ("126033" in names) == (suv_type == "bw") and ("TLA" in names) == (suv_type != "bw")
