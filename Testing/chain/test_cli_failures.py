"""Every documented failure of the ``netpet`` command line, table-driven (issue 11, item 5).

Each case runs ``netpet.cli.main.main([...])`` on small synthetic inputs and checks the documented
exit code (2 usage, 3 input error, 4 ambiguous, 5 refusal, 6 batch partly done, 130 cancelled),
that no exception escapes, that the message is one line (a batch: one line per skipped row; an
ambiguity: one sentence, then the candidates) naming the path, option or value at fault, that it
suggests only options the command has, and that nothing printed holds a raw control character. A
few cases run a real process: a reader that closes the pipe, and the absence of any traceback.
"""

from __future__ import annotations

import copy
import csv
import errno
import re
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from netpet.cli.main import main
from netpet.dicom import dro, writer

RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]")
# centre of the small DICOM PET below (8 x 10 x 10 voxels): R,A,S mm
PET_CENTRE = "26,22,-801"
MANIFEST = ("patient_id", "session_id", "series", "reader", "lesion_id", "seed_r", "seed_a", "seed_s",
            "liver_r", "liver_a", "liver_s")


def _image(path, values, spacing=4.0, origin=-78.0):
    image = sitk.GetImageFromArray(np.asarray(values, dtype=np.float32))
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin((origin,) * 3)
    sitk.WriteImage(image, str(path))


def _manifest(path, rows, extra=()):
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([*MANIFEST, *extra])
        out.writerows(rows)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Small inputs of every kind: SUV images good and damaged, a DICOM PET, one copied under a
    second patient, one without a weight and with escape sequences in its text, manifests, a study
    table and its reference standard."""
    root = tmp_path_factory.mktemp("failures")
    values = np.ones((40, 40, 40))
    values[18:23, 18:23, 18:23] = 9.0  # a hot cube at R,A,S -2,-2,2
    _image(root / "suv.nrrd", values)
    _image(root / "nan.nrrd", np.full((20, 20, 20), np.nan))
    _image(root / "zeros.nrrd", np.zeros((20, 20, 20)))
    _image(root / "small.nrrd", np.ones((20, 20, 20)))
    (root / "corrupt.nrrd").write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 10 10\n\n\x00\x01")
    (root / "fake.nii.gz").write_bytes(b"this is no image, whatever its name says")
    (root / "notes.txt").write_text("nothing here\n")
    (root / "folder").mkdir()
    (root / "folder.nrrd").mkdir()
    # a DICOM PET, and the same series again under another PatientID (a pseudonymised copy beside it)
    pet, _ = dro.build(dro.Case(seed="failures", shape=(8, 10, 10)))
    copy_ = copy.deepcopy(pet)
    for number, ds in enumerate(copy_):
        ds.PatientID = "PSEUDO-1"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{9100 + number}"
    writer.save_datasets(pet, str(root / "dup" / "orig" / "pet"))
    writer.save_datasets(copy_, str(root / "dup" / "pseudo" / "pet"))
    writer.save_datasets(pet, str(root / "pet"))
    # a PET without PatientWeight whose description and patient id carry terminal escape sequences
    bare, _ = dro.build(dro.Case(seed="noweight", shape=(8, 10, 10)))
    for ds in bare:
        del ds.PatientWeight
        ds.SeriesDescription = "PET \x1b[31mRED\x1b[0m\nforged line"
        ds.PatientID = "EVIL\x1b]0;title\x07"
    writer.save_datasets(bare, str(root / "noweight" / "pet"))
    centre = PET_CENTRE.split(",")
    seed = ["-2", "-2", "2", "-40", "0", "0"]  # the hot cube, and a liver point in uniform background
    image_row = ["P1", "S1", "suv.nrrd", "R1"]
    _manifest(root / "ok.csv", [[*image_row, "L1", *seed, "PET/CT", "fdg"]], ("modality", "tracer"))
    _manifest(root / "image_weight.csv", [[*image_row, "L1", *seed, "PET/CT", "fdg", "70"]],
              ("modality", "tracer", "weight_kg"))
    lesion = [*seed, "PET/CT", "fdg"]
    _manifest(root / "twice.csv", [[*image_row, "L1", *lesion], [*image_row, "L1", *lesion], [*image_row, "L2", *lesion]],
              ("modality", "tracer"))
    _manifest(root / "dup.csv", [["P1", "S1", "dup", "R1", "L1", *centre, *centre]])
    _manifest(root / "dup_column.csv", [["P1", "S1", "dup", "R1", "L1", *centre, *centre, "PSEUDO-1"]],
              ("dicom_patient_id",))
    _manifest(root / "dup_patient.csv", [["PSEUDO-1", "S1", "dup", "R1", "L1", *centre, *centre]])
    _manifest(root / "noweight.csv", [["P1", "S1", "noweight/pet", "R1", "L1", *centre, *centre]])
    _manifest(root / "weight.csv", [["P1", "S1", "noweight/pet", "R1", "L1", *centre, *centre, "70"]], ("weight_kg",))
    _manifest(root / "badweight.csv", [["P1", "S1", "noweight/pet", "R1", "L1", *centre, *centre, "nan"]],
              ("weight_kg",))
    _manifest(root / "badrows.csv", [["P1", "S1", "corrupt.nrrd", "R1", "L1", *seed, "PET/CT", "fdg"],
                                     ["P1", "S2", "fake.nii.gz", "R1", "L1", *seed, "PET/CT", "fdg"],
                                     ["P1", "S3", "nan.nrrd", "R1", "L1", *seed, "PET/CT", "fdg"],
                                     ["P1", "S4", "suv.nrrd", "R1", "L1", "nan", "-2", "2", "-40", "0", "0", "PET/CT",
                                      "fdg"],
                                     ["P1", "S5", "suv.nrrd", "R1", "L1", "-2", "-2", "2", "inf", "0", "0", "PET/CT",
                                      "fdg"],
                                     ["P1", "S6", "suv.nrrd", "R1", "L1", *seed, "", ""]], ("modality", "tracer"))
    ok = (root / "ok.csv").read_bytes()
    (root / "nul.csv").write_bytes(ok.replace(b"R1", b"R\x001"))
    (root / "latin1.csv").write_bytes(ok.replace(b"R1", "R\u00e9".encode("latin-1")))
    (root / "utf16.csv").write_bytes(ok.decode().encode("utf-16"))
    (root / "empty.csv").write_bytes(b"")
    (root / "huge.csv").write_bytes(ok + b'P1,S1,suv.nrrd,R1,"' + b"x" * 200_000 + b'",1,2,3,,,,,\n')
    (root / "table.csv").write_text("patient_id,session_id,modality,tracer,reader,lesion_id,region,call,suv_max\n"
                                    "P1,S1,PET/CT,fdg,R1,L1,liver,positive,5\nP2,S1,PET/CT,fdg,R1,,,,\n")
    (root / "reference.csv").write_text("patient_id,lesion_id,region,truth,standard\nP1,L1,liver,1,histology\n"
                                        "P2,,,0,follow-up\n")
    return root


STATS = ["stats", "{table.csv}", "--reference", "{reference.csv}", "--out", "{out}/stats", "--bootstrap", "0",
         "--no-figures"]
SEGMENT = ["segment", "{suv.nrrd}", "--seed", "-2,-2,2", "--out", "{out}/mask.nrrd"]
SUV = ["suv", "{pet}", "--out", "{out}/suv.nrrd"]

# (id, argv, exit code, texts the message must hold)
CASES = [
    # -- 2: usage: numbers a user cannot have meant, refused before any work, naming option and value --
    ("index-jobs-0", ["index", "{pet}", "--jobs", "0"], 2, ["--jobs", "0", "at least 1"]),
    ("index-jobs-nan", ["index", "{pet}", "--jobs", "nan"], 2, ["--jobs", "'nan'"]),
    ("suv-weight-nan", SUV + ["--weight", "nan"], 2, ["--weight", "'nan'", "kg"]),
    ("suv-weight-negative", SUV + ["--weight", "-5"], 2, ["--weight", "-5", "above 0 kg"]),
    ("suv-height-inf", SUV + ["--height", "inf"], 2, ["--height", "'inf'"]),
    ("suv-dose-nan", SUV + ["--dose", "nan"], 2, ["--dose", "'nan'", "MBq"]),
    ("suv-half-life-nan", SUV + ["--half-life", "nan"], 2, ["--half-life", "'nan'"]),
    ("suv-half-life-zero", SUV + ["--half-life", "0"], 2, ["--half-life", "above 0 s"]),
    ("suv-injection-time", SUV + ["--injection-time", "yesterday"], 2, ["--injection-time", "yesterday", "ISO 8601"]),
    ("suv-out-suffix", ["suv", "{pet}", "--out", "{out}/x.png"], 2, ["--out", "x.png", ".nrrd"]),
    ("suv-jobs-negative", SUV + ["--jobs", "-3"], 2, ["--jobs", "-3"]),
    ("segment-search-radius-negative", SEGMENT + ["--search-radius", "-1"], 2, ["--search-radius", "-1", "mm"]),
    ("segment-search-radius-nan", SEGMENT + ["--search-radius", "nan"], 2, ["--search-radius", "'nan'"]),
    ("segment-search-radius-inf", SEGMENT + ["--search-radius", "inf"], 2, ["--search-radius", "'inf'"]),
    ("segment-fraction", SEGMENT + ["--fraction", "1.5"], 2, ["--fraction", "1.5", "below 1"]),
    ("segment-fraction-nan", SEGMENT + ["--fraction", "nan"], 2, ["--fraction", "'nan'"]),
    ("segment-absolute-negative", SEGMENT + ["--absolute", "-1"], 2, ["--absolute", "-1", "SUV"]),
    ("segment-background-diameter", SEGMENT + ["--background-diameter", "100"], 2, ["--background-diameter", "100"]),
    ("segment-seed-nan", ["segment", "{suv.nrrd}", "--seed", "nan,0,0", "--out", "{out}/m.nrrd"], 2,
     ["--seed", "nan,0,0", "finite"]),
    ("segment-seed-two-numbers", ["segment", "{suv.nrrd}", "--seed", "1,2", "--out", "{out}/m.nrrd"], 2,
     ["--seed", "'1,2'", "R,A,S"]),
    ("segment-liver-inf", SEGMENT + ["--liver", "inf,0,0"], 2, ["--liver", "inf,0,0"]),
    ("segment-split-nan", SEGMENT + ["--split", "0,nan,0"], 2, ["--split", "0,nan,0"]),
    ("segment-background-nan", SEGMENT + ["--background", "0,0,nan"], 2, ["--background", "0,0,nan"]),
    ("segment-weight-nan", ["segment", "{pet}", "--seed", PET_CENTRE, "--out", "{out}/m.nrrd", "--weight", "nan"], 2,
     ["--weight", "'nan'"]),
    ("candidates-liver-nan", ["candidates", "{suv.nrrd}", "--liver", "nan,0,0"], 2, ["--liver", "nan,0,0"]),
    ("segment-suv-options-on-an-image", SEGMENT + ["--type", "bsa", "--weight", "70"], 2,
     ["--type, --weight apply", "suv.nrrd is an SUV image already"]),
    ("candidates-patient-on-an-image", ["candidates", "{suv.nrrd}", "--patient", "P1"], 2, ["--patient applies"]),
    ("quantify-jobs-0", ["quantify", "{ok.csv}", "--table", "{out}/t.csv", "--jobs", "0"], 2, ["--jobs", "0"]),
    ("quantify-table-suffix", ["quantify", "{ok.csv}", "--table", "{out}/t.xlsx"], 2, ["--table", "t.xlsx", ".csv"]),
    ("stats-level-nan", STATS + ["--level", "nan"], 2, ["--level", "'nan'"]),
    ("stats-level-2", STATS + ["--level", "2"], 2, ["--level", "2", "below 1"]),
    ("stats-bootstrap-negative", STATS[:-3] + ["--bootstrap", "-1"], 2, ["--bootstrap", "-1"]),
    ("stats-seed-negative", STATS + ["--seed", "-1"], 2, ["--seed", "-1"]),
    ("stats-regions-empty", STATS + ["--regions", ","], 2, ["--regions", "empty"]),
    ("phantom-patients-0", ["phantom", "{out}/ph", "--patients", "0"], 2, ["--patients", "0"]),
    ("phantom-tracer", ["phantom", "{out}/ph", "--tracers", "mars"], 2, ["mars"]),
    ("demo-patients-negative", ["demo", "--out", "{out}/demo", "--patients", "-1"], 2, ["--patients", "-1"]),
    ("unknown-option", ["index", "{pet}", "--nonsense"], 2, ["--nonsense"]),
    # -- 3: input errors: paths that do not exist, folders given as files, damaged files, unwritable outputs --
    ("index-missing", ["index", "{out}/nowhere"], 3, ["nowhere", "does not exist"]),
    ("index-unknown-patient", ["index", "{dup}", "--patient", "NOPE"], 3, ["NOPE", "PSEUDO-1"]),
    ("suv-missing", ["suv", "{out}/nowhere", "--out", "{out}/x.nrrd"], 3, ["nowhere", "does not exist"]),
    ("suv-no-pet", ["suv", "{notes.txt}", "--out", "{out}/x.nrrd"], 3, ["No PET series", "notes.txt"]),
    ("suv-unknown-series", SUV + ["--series", "1.2.3"], 3, ["1.2.3"]),
    ("suv-out-is-a-folder", ["suv", "{pet}", "--out", "{folder}.nrrd"], 3, ["--out", "folder.nrrd", "is a folder"]),
    ("suv-out-under-a-file", ["suv", "{pet}", "--out", "{suv.nrrd}/x.nrrd"], 3, ["--out", "suv.nrrd", "is a file"]),
    ("suv-out-unwritable", ["suv", "{pet}", "--out", "/proc/netpet/x.nrrd"], 3, ["--out", "/proc/netpet/x.nrrd"]),
    ("suv-provenance-folder", SUV + ["--provenance", "{folder}"], 3, ["--provenance", "is a folder"]),
    ("segment-missing", ["segment", "{out}/nowhere.nrrd", "--seed", "0,0,0", "--out", "{out}/m.nrrd"], 3,
     ["nowhere.nrrd", "does not exist"]),
    ("segment-corrupt-nrrd", ["segment", "{corrupt.nrrd}", "--seed", "0,0,0", "--out", "{out}/m.nrrd"], 3,
     ["corrupt.nrrd", "not a readable image"]),
    ("segment-fake-nii-gz", ["segment", "{fake.nii.gz}", "--seed", "0,0,0", "--out", "{out}/m.nrrd"], 3,
     ["fake.nii.gz", "not a readable image"]),
    ("segment-all-nan", ["segment", "{nan.nrrd}", "--seed", "0,0,0", "--out", "{out}/m.nrrd"], 3,
     ["nan.nrrd", "no finite value"]),
    ("segment-all-zero", ["segment", "{zeros.nrrd}", "--seed", "0,0,0", "--out", "{out}/m.nrrd"], 3,
     ["zeros.nrrd", "no SUV above 0"]),
    ("segment-seed-outside", ["segment", "{suv.nrrd}", "--seed", "999,0,0", "--out", "{out}/m.nrrd"], 3,
     ["999.0,0.0,0.0", "lies outside"]),
    ("segment-seed-far-outside", ["segment", "{suv.nrrd}", "--seed", "1e300,0,0", "--out", "{out}/m.nrrd"], 3,
     ["1e+300", "lies outside"]),
    ("segment-split-outside", SEGMENT + ["--split", "999,0,0"], 3, ["--split", "999.0,0.0,0.0", "lies outside"]),
    ("segment-liver-outside", SEGMENT + ["--liver", "999,0,0"], 3, ["liver", "999.0,0.0,0.0", "lies outside"]),
    ("segment-background-outside", SEGMENT + ["--background", "0,999,0"], 3, ["background", "lies outside"]),
    ("segment-bone-without-ct", SEGMENT + ["--background-bone"], 3, ["normal-bone", "--background R,A,S"]),
    ("segment-out-unwritable", SEGMENT[:-1] + ["/proc/netpet.nrrd"], 3, ["--out", "/proc/netpet.nrrd"]),
    ("segment-unknown-patient", ["segment", "{dup}", "--seed", PET_CENTRE, "--out", "{out}/m.nrrd", "--patient", "X"],
     3, ["PatientID X", "NETPET"]),
    ("candidates-organs-missing", ["candidates", "{suv.nrrd}", "--organs", "{out}/nowhere.nrrd"], 3,
     ["--organs", "nowhere.nrrd", "does not exist"]),
    ("candidates-organs-folder", ["candidates", "{suv.nrrd}", "--organs", "{folder}"], 3, ["--organs", "is a folder"]),
    ("candidates-organs-corrupt", ["candidates", "{suv.nrrd}", "--organs", "{corrupt.nrrd}"], 3,
     ["--organs", "corrupt.nrrd", "not a readable image"]),
    ("candidates-organs-grid", ["candidates", "{suv.nrrd}", "--organs", "{small.nrrd}", "--liver", "-40,0,0"], 3,
     ["--organs", "small.nrrd", "(20, 20, 20)"]),
    ("candidates-fake", ["candidates", "{fake.nii.gz}"], 3, ["fake.nii.gz", "not a readable image"]),
    ("quantify-manifest-missing", ["quantify", "{out}/nowhere.csv", "--table", "{out}/t.csv"], 3,
     ["nowhere.csv", "does not exist"]),
    ("quantify-manifest-folder", ["quantify", "{folder}", "--table", "{out}/t.csv"], 3, ["folder", "is a folder"]),
    ("quantify-manifest-nul", ["quantify", "{nul.csv}", "--table", "{out}/t.csv"], 3,
     ["nul.csv", "NUL byte", "line 2"]),
    ("quantify-manifest-latin1", ["quantify", "{latin1.csv}", "--table", "{out}/t.csv"], 3,
     ["latin1.csv", "not UTF-8", "0xe9", "line 2"]),
    ("quantify-manifest-utf16", ["quantify", "{utf16.csv}", "--table", "{out}/t.csv"], 3, ["utf16.csv", "UTF-16"]),
    ("quantify-manifest-binary", ["quantify", "{suv.nrrd}", "--table", "{out}/t.csv"], 3, ["suv.nrrd", "not CSV"]),
    ("quantify-manifest-empty", ["quantify", "{empty.csv}", "--table", "{out}/t.csv"], 3, ["empty.csv", "lacks"]),
    ("quantify-manifest-huge-cell", ["quantify", "{huge.csv}", "--table", "{out}/t.csv"], 3,
     ["huge.csv", "field larger than field limit"]),
    ("quantify-table-unwritable", ["quantify", "{ok.csv}", "--table", "/proc/netpet.csv"], 3,
     ["--table", "/proc/netpet.csv"]),
    ("stats-table-missing", STATS[:1] + ["{out}/nowhere.csv"] + STATS[2:], 3, ["nowhere.csv", "does not exist"]),
    ("stats-table-folder", STATS[:1] + ["{folder}"] + STATS[2:], 3, ["folder", "is a folder"]),
    ("stats-reference-folder", STATS[:3] + ["{folder}"] + STATS[4:], 3, ["reference standard", "is a folder"]),
    ("stats-out-is-a-file", STATS[:5] + ["{suv.nrrd}"] + STATS[6:], 3, ["--out", "suv.nrrd", "is a file"]),
    ("stats-out-unwritable", STATS[:5] + ["/proc/netpet-stats"] + STATS[6:], 3, ["--out", "/proc/netpet-stats"]),
    ("stats-causes-folder", STATS + ["--causes", "{folder}"], 3, ["--causes", "is a folder"]),
    ("stats-unknown-regions", STATS + ["--regions", "mars,venus"], 3, ["--regions mars, venus", "liver"]),
    ("stats-group-by", STATS + ["--group-by", "nope"], 3, ["--group-by nope"]),
    ("phantom-out-is-a-file", ["phantom", "{suv.nrrd}", "--patients", "1"], 3, ["suv.nrrd", "is a file"]),
    ("demo-out-unwritable", ["demo", "--out", "/proc/netpet-demo", "--patients", "1"], 3,
     ["--out", "/proc/netpet-demo"]),
    # -- 4: ambiguous: one series under two patients (an original beside its pseudonymised copy) --
    ("suv-series-under-two-patients", ["suv", "{dup}", "--out", "{out}/x.nrrd"], 4,
     ["appears under 2 patients", "NETPET", "PSEUDO-1", "--patient ID"]),
    ("segment-series-under-two-patients", ["segment", "{dup}", "--seed", PET_CENTRE, "--out", "{out}/m.nrrd"], 4,
     ["appears under 2 patients", "PSEUDO-1", "--patient ID"]),
    ("candidates-series-under-two-patients", ["candidates", "{dup}"], 4, ["PSEUDO-1", "--patient ID"]),
    # -- 5: refusals name an override the command has --
    ("suv-no-weight", ["suv", "{noweight}", "--out", "{out}/x.nrrd"], 5, ["PatientWeight", "--weight KG"]),
    ("segment-no-weight", ["segment", "{noweight}", "--seed", PET_CENTRE, "--out", "{out}/m.nrrd"], 5,
     ["PatientWeight", "--weight KG"]),
    ("candidates-no-weight", ["candidates", "{noweight}"], 5, ["PatientWeight", "--weight KG"]),
    # -- 6: a batch partly done: each bad row named, with what to put in the manifest --
    ("quantify-duplicate-lesion-id", ["quantify", "{twice.csv}", "--table", "{out}/twice/t.csv", "--jobs", "1"], 6,
     ["manifest rows 2, 3", "lesion id L1 is given 2 times"]),
    ("quantify-series-under-two-patients", ["quantify", "{dup.csv}", "--table", "{out}/dup/t.csv", "--jobs", "1"], 6,
     ["manifest rows 2", "PSEUDO-1", "dicom_patient_id column"]),
    ("quantify-no-weight", ["quantify", "{noweight.csv}", "--table", "{out}/noweight/t.csv", "--jobs", "1"], 6,
     ["manifest rows 2", "PatientWeight", "the manifest column weight_kg"]),
    ("quantify-bad-weight", ["quantify", "{badweight.csv}", "--table", "{out}/badweight/t.csv", "--jobs", "1"], 6,
     ["manifest rows 2", "weight_kg", "'nan'"]),
    ("quantify-overrides-for-an-image", ["quantify", "{image_weight.csv}", "--table", "{out}/iw/t.csv", "--jobs", "1"],
     6,
     ["manifest rows 2", "suv.nrrd is an SUV image already", "weight_kg"]),
    ("quantify-bad-rows", ["quantify", "{badrows.csv}", "--table", "{out}/badrows/t.csv", "--jobs", "1"], 6,
     ["rows 2: ", "corrupt.nrrd", "rows 3: ", "fake.nii.gz", "rows 4: ", "nan.nrrd", "row 5: seed_r/a/s",
      "row 6: liver_r/a/s", "rows 7: ", "modality"]),
]


def _argv(template, root):
    """The arguments with {name} replaced by the input of that name (a file of the fixture, or out)."""
    names = {p.name: str(p) for p in root.iterdir()}
    names["out"] = str(root / "out")
    return [re.sub(r"\{([^}]+)\}", lambda m: names[m.group(1)], t) for t in template]


@pytest.mark.parametrize("args,code,texts", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_failure(inputs, capsys, args, code, texts):
    argv = _argv(args, inputs)
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and not RAW_CONTROL.search(out + err)
    lines = [line for line in err.splitlines() if line.strip()]
    if code in (2, 3, 5):
        assert len(lines) == 1, err  # one sentence
    elif code == 4:
        assert lines[0].rstrip().endswith((".", ":")), err
    else:
        assert all(line.startswith("netpet: skipped: manifest row") for line in lines), err
    for text in texts:
        assert text in err, (text, err)
    command = argv[0]
    if command in ("quantify",):  # suggests only what the command has: a batch has no --weight or --patient
        assert not re.search(r"--(weight|height|dose|half-life|injection-time|patient|series|liver)\b", err), err


def test_segment_and_quantify_choose_a_copy(inputs, capsys):
    """The copy is chosen with --patient, a dicom_patient_id column, or a patient_id that is one of
    the PatientIDs; a folder that holds one copy is that copy, whatever its parent holds."""
    out = inputs / "out"
    common = ["--seed", PET_CENTRE, "--liver", PET_CENTRE, "--json"]
    assert main(["segment", str(inputs / "dup"), "--out", str(out / "c1.nrrd"), "--patient", "PSEUDO-1", *common]) == 0
    assert main(["segment", str(inputs / "dup" / "orig" / "pet"), "--out", str(out / "c2.nrrd"), *common]) == 0
    assert main(["suv", str(inputs / "dup"), "--out", str(out / "c3.nrrd"), "--patient", "PSEUDO-1"]) == 0
    for manifest in ("dup_column.csv", "dup_patient.csv", "weight.csv", "ok.csv"):
        table = out / manifest.replace(".csv", "") / "table.csv"  # a table folder each: their grids differ
        assert main(["quantify", str(inputs / manifest), "--table", str(table), "--jobs", "1"]) == 0, manifest
        assert "1 lesion rows written" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["segment", str(inputs / "noweight"), "--out", str(out / "c4.nrrd"), "--weight", "70", *common]) == 0


def test_index_lists_both_copies_and_restricts_to_one(inputs, capsys):
    assert main(["index", str(inputs / "dup")]) == 0
    text = capsys.readouterr().out
    assert "patient PSEUDO-1" in text and "also appears under patient" in text
    assert main(["index", str(inputs / "dup"), "--patient", "PSEUDO-1"]) == 0
    patients = [line for line in capsys.readouterr().out.splitlines() if line.startswith("patient ")]
    assert patients == ["patient PSEUDO-1"]


def test_dicom_text_reaches_the_terminal_escaped(inputs, capsys):
    """Escape sequences and newlines in a PatientID or SeriesDescription are shown, not obeyed."""
    assert main(["index", str(inputs / "noweight")]) == 0
    out, err = capsys.readouterr()
    assert not RAW_CONTROL.search(out + err)
    assert "EVIL\\x1b]0;title\\x07" in out and "PET \\x1b[31mRED\\x1b[0m\\nforged line" in out
    assert not any(line.lstrip().startswith("forged line") for line in out.splitlines())  # no line of its own
    assert main(["suv", str(inputs / "noweight"), "--out", str(inputs / "out" / "x.nrrd")]) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\\x1b[31m" in err and "\\nforged line" in err


def test_cancel_and_last_resort_errors(inputs, capsys, monkeypatch):
    """Ctrl-C (130), a cancelled core function (130), an operating-system error no check foresaw
    (disk full: 3, one sentence naming the path)."""
    from netpet.dicom import index as index_module
    from netpet.progress import Cancelled

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(index_module, "index_tree", interrupted)
    assert main(["index", str(inputs / "pet")]) == 130
    assert capsys.readouterr().err == "netpet: interrupted\n"

    def cancelled(*args, **kwargs):
        raise Cancelled("Indexing cancelled")

    monkeypatch.setattr(index_module, "index_tree", cancelled)
    assert main(["index", str(inputs / "pet")]) == 130
    assert capsys.readouterr().err == "netpet: Indexing cancelled\n"

    def failing(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/netpet.tmp")

    monkeypatch.setattr(index_module, "index_tree", failing)
    assert main(["index", str(inputs / "pet")]) == 3
    assert capsys.readouterr().err == "netpet: error: /data/netpet.tmp: No space left on device.\n"
    monkeypatch.undo()

    def full(image, path, useCompression=False):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(sitk, "WriteImage", full)
    out = str(inputs / "out" / "f.nrrd")
    assert main(["segment", str(inputs / "suv.nrrd"), "--seed", "-2,-2,2", "--out", out]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "f.nrrd" in err and "No space left on device" in err


def _netpet(*args):
    return [sys.executable, "-m", "netpet.cli.main", *args]


def test_closed_pipe_ends_quietly(inputs):
    """`netpet index DIR | head -1`: the reader leaves early; no traceback, no complaint, exit 0."""
    done = subprocess.Popen(_netpet("index", str(inputs)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done.stdout.close()  # the reader is gone before the first line is written
    err = done.stderr.read().decode()
    done.stderr.close()
    assert done.wait() == 0 and err == ""
    shell = subprocess.run(f"{' '.join(_netpet('index', str(inputs)))} | head -1", shell=True, capture_output=True,
                           text=True)
    assert shell.stdout.count("\n") == 1 and shell.stderr == ""


@pytest.mark.parametrize("args,code,text", [
    (["segment", "{corrupt.nrrd}", "--seed", "0,0,0", "--out", "{out}/m.nrrd"], 3, "not a readable image"),
    (["quantify", "{nul.csv}", "--table", "{out}/t.csv"], 3, "NUL byte"),
    (["segment", "{suv.nrrd}", "--seed", "-2,-2,2", "--out", "{out}/m.nrrd", "--search-radius", "nan"], 2,
     "--search-radius"),
], ids=["corrupt-nrrd", "nul-manifest", "search-radius-nan"])
def test_real_process_prints_one_line_and_no_traceback(inputs, args, code, text):
    done = subprocess.run(_netpet(*_argv(args, inputs)), capture_output=True, text=True)
    assert done.returncode == code
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1 and text in done.stderr
