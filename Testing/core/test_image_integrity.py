"""Image integrity checks (issue 11, item 3): every image NETPET reads from DICOM, the PET and its
CT/MR partner, is refused when its pixel header disagrees with its pixel data or its plane cannot be
placed in patient space, with one sentence naming the file, the tag (gggg,eeee), its value and what
to do, and through the command line with exit code 3 and no traceback.

Each broken series is built here from a valid synthetic one (the digital reference PET of
:mod:`netpet.dicom.dro`, a CT written by :func:`netpet.dicom.writer.ct_datasets` in the same study)
by changing the one header value under test. The rules and their sources are in
:func:`netpet.dicom.files.pixel_layout` (PS3.3 C.7.6.3, PS3.5 8.1.1) and
:mod:`netpet.dicom.volume` (PS3.3 C.7.6.2).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.uid import RLELossless

from netpet.cli.main import main
from netpet.dicom import convert_to_suv, dro, writer
from netpet.dicom.image import read_image
from netpet.errors import DicomInputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASE = dro.Case()
NZ, NY, NX = CASE.shape  # 18 planes of 20 rows x 22 columns
PLANE_BYTES = NY * NX * 2


# -- builders: one header value changed in a valid series ---------------------------------------------

def raw(keyword, text, index=None):
    """Store ``text`` as the value of ``keyword`` without pydicom's validation (NaN, letters...)."""
    def change(datasets):
        tag = tag_for_keyword(keyword)
        with warnings.catch_warnings():  # pydicom's remark that 'nan' is no valid DS: the point of the test
            warnings.simplefilter("ignore")
            for ds in datasets if index is None else [datasets[index]]:
                ds[tag] = DataElement(tag, dictionary_VR(tag), text)
    return change


def garbled(keyword, index):
    """Letters where numbers belong: a marker value is written, then its bytes are overwritten in the file
    (pydicom refuses to hold such a value)."""
    marker, letters = "111.25\\222.25\\333.25", "abc.de\\fgh.ij\\klm.no"

    def change(datasets):
        setattr(datasets[index], keyword, marker.split("\\"))

    def after(paths):
        with open(paths[index], "rb") as handle:
            data = handle.read()
        assert data.count(marker.encode()) == 1
        with open(paths[index], "wb") as handle:
            handle.write(data.replace(marker.encode(), letters.encode()))
    change.after = after
    return change


def set_value(keyword, value, index=None):
    def change(datasets):
        for ds in datasets if index is None else [datasets[index]]:
            setattr(ds, keyword, value)
    return change


def delete(keyword, index=None):
    def change(datasets):
        for ds in datasets if index is None else [datasets[index]]:
            delattr(ds, keyword)
    return change


def both(*changes):
    def change(datasets):
        for c in changes:
            c(datasets)
    return change


def pixel_bytes(edit, index=None):
    def change(datasets):
        for ds in datasets if index is None else [datasets[index]]:
            ds.PixelData = edit(ds.PixelData)
    return change


def eight_bits(datasets):
    """The header says 8 bits (all three of BitsAllocated, BitsStored, HighBit) on 16-bit data."""
    for ds in datasets:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7


def tilted(degrees):
    """Gantry tilt: each plane shifted along y by tan(tilt) x its distance along z, as a tilted CT is."""
    def change(datasets):
        shift = math.tan(math.radians(degrees))
        z0 = float(datasets[0].ImagePositionPatient[2])
        for ds in datasets:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [f"{x:.4f}", f"{y + (z - z0) * shift:.4f}", f"{z:.4f}"]
            ds.GantryDetectorTilt = f"{degrees:g}"
    return change


def compressed_with(keyword, value):
    def change(datasets):
        for ds in datasets:
            ds.compress(RLELossless)
            setattr(ds, keyword, value)
    return change


def pet_series(tmp_path, change=None):
    datasets, truth = dro.build(CASE)
    if change:
        change(datasets)
    paths = writer.save_datasets(datasets, str(tmp_path / "session" / "pet"))
    if hasattr(change, "after"):
        change.after(paths)
    return paths, truth


def ct_datasets(pet):
    """A CT of the PET's study, frame of reference and grid: water with a bone slab (700 HU)."""
    first = pet[0]
    hu = np.full(CASE.shape, 40.0)
    hu[:, :3, :] = 700.0
    geometry = writer.VolumeGeometry(CASE.origin, CASE.spacing)
    patient = writer.PatientInfo(str(first.PatientID), str(first.PatientName), "F")
    study = writer.StudyInfo(str(first.StudyInstanceUID), CASE.scan - dt.timedelta(minutes=70))
    series = writer.SeriesInfo(writer.deterministic_uid("integrity-ct"), str(first.FrameOfReferenceUID), 2, "CT test",
                               CASE.scan - dt.timedelta(minutes=5), "NETPET", "Synthetic")
    return writer.ct_datasets(hu, geometry, patient, study, series, lambda key: writer.deterministic_uid("ct", key)), hu


def pet_ct_session(tmp_path, change=None):
    """A PET/CT session folder; ``change`` alters the CT. Returns (pet folder, CT paths, HU truth)."""
    pet, _ = dro.build(CASE)
    ct, hu = ct_datasets(pet)
    if change:
        change(ct)
    writer.save_datasets(pet, str(tmp_path / "session" / "pet"))
    paths = writer.save_datasets(ct, str(tmp_path / "session" / "ct"))
    return str(tmp_path / "session" / "pet"), paths, hu


def assert_one_sentence(text, file, message):
    assert re.search(message, text), text
    assert os.path.basename(file) in text, f"the file is not named: {text}"
    assert re.search(r"\([0-9A-F]{4},[0-9A-F]{4}\)", text), f"no tag: {text}"
    assert text.endswith(".") and text.count(". ") == 0, f"not one sentence: {text}"
    assert "\n" not in text


def assert_cli_refuses(capsys, argv, file, message):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 3, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("netpet: error: ")]
    assert len(errors) == 1, err  # (segment may print a note before it)
    assert_one_sentence(errors[0][len("netpet: error: "):], file, message)


# -- PET: pixel module --------------------------------------------------------------------------------
# (name, change, index of the file named (1-based), the message: tag and value)

PET_PIXEL = [
    ("pixel data longer", pixel_bytes(lambda b: b + b"\0" * 44, 2), 3,
     rf"has {PLANE_BYTES + 44} bytes of PixelData \(7FE0,0010\) where Rows \(0028,0010\) 20 x Columns \(0028,0011\) 22 "
     rf"at BitsAllocated \(0028,0100\) 16 need {PLANE_BYTES}"),
    ("pixel data shorter", pixel_bytes(lambda b: b[:-44], 2), 3, rf"has {PLANE_BYTES - 44} bytes of PixelData \(7FE0,0010\)"),
    ("BitsAllocated 8 on 16-bit data", eight_bits, 1,
     rf"has {PLANE_BYTES} bytes of PixelData \(7FE0,0010\) .* BitsAllocated \(0028,0100\) 8 need {PLANE_BYTES // 2} "
     r"\(the data hold 16 bits per pixel\)"),
    ("BitsAllocated 8 with BitsStored 16", set_value("BitsAllocated", 8), 1,
     r"BitsStored \(0028,0101\) 16 with BitsAllocated \(0028,0100\) 8"),
    ("BitsAllocated 12", set_value("BitsAllocated", 12, 0), 1, r"BitsAllocated \(0028,0100\) 12, where PixelData"),
    ("BitsAllocated missing", both(delete("BitsAllocated", 5), lambda d: setattr(d[5]["PixelData"], "VR", "OW")), 6,
     r"BitsAllocated \(0028,0100\) missing"),
    ("BitsStored above BitsAllocated", set_value("BitsStored", 17, 5), 6,
     r"BitsStored \(0028,0101\) 17 with BitsAllocated \(0028,0100\) 16"),
    ("BitsStored 0", set_value("BitsStored", 0, 5), 6, r"BitsStored \(0028,0101\) 0 with"),
    ("BitsStored missing", delete("BitsStored", 5), 6, r"BitsStored \(0028,0101\) missing with"),
    ("HighBit inconsistent", set_value("HighBit", 11, 4), 5,
     r"HighBit \(0028,0102\) 11 with BitsStored \(0028,0101\) 16, where the high bit must be 15"),
    ("PixelRepresentation 2", set_value("PixelRepresentation", 2, 7), 8, r"PixelRepresentation \(0028,0103\) 2, neither"),
    ("PixelRepresentation missing", delete("PixelRepresentation", 7), 8, r"PixelRepresentation \(0028,0103\) missing"),
    ("SamplesPerPixel 3", set_value("SamplesPerPixel", 3, 1), 2,
     r"SamplesPerPixel \(0028,0002\) 3, but a PET image has one grey-scale sample"),
    ("PhotometricInterpretation RGB", set_value("PhotometricInterpretation", "RGB", 1), 2,
     r"PhotometricInterpretation \(0028,0004\) 'RGB', not MONOCHROME2"),
    ("Rows 0", set_value("Rows", 0, 3), 4, r"Rows \(0028,0010\) 0, not a positive number"),
    ("Columns 0", set_value("Columns", 0, 3), 4, r"Columns \(0028,0011\) 0, not a positive number"),
    ("Rows missing", delete("Rows", 3), 4, r"Rows \(0028,0010\) missing"),
    ("no pixel data", delete("PixelData", 4), 5, r"has no PixelData \(7FE0,0010\)"),
    ("NumberOfFrames 0", raw("NumberOfFrames", "0", 6), 7, r"NumberOfFrames \(0028,0008\) '0', not a positive number"),
    ("compressed, fewer rows than the data", compressed_with("Rows", 10), 1,
     r"compressed PixelData \(7FE0,0010\) that decodes to 440 bytes per RLE segment where Rows \(0028,0010\) 10"),
    ("compressed, more rows than the data", compressed_with("Rows", 30), 1,
     r"decodes to 440 bytes per RLE segment where Rows \(0028,0010\) 30 x Columns \(0028,0011\) 22 give 660"),
]

# -- PET: image plane -------------------------------------------------------------------------------------

PET_PLANE = [
    ("position NaN", raw("ImagePositionPatient", "nan\\0\\-800", 3), 4,
     r"ImagePositionPatient \(0020,0032\) \[nan, 0, -800\], not three finite numbers"),
    ("position infinite", raw("ImagePositionPatient", "-44.77\\inf\\-800", 3), 4,
     r"ImagePositionPatient \(0020,0032\) \[-44\.77, inf, -800\], not three finite"),
    ("position missing", delete("ImagePositionPatient", 1), 2,
     r"lacks ImagePositionPatient \(0020,0032\) \(found missing, where 3 numbers are needed\)"),
    ("position not numbers", garbled("ImagePositionPatient", 1), 2,
     r"lacks ImagePositionPatient \(0020,0032\) \(found 'abc\.de\\fgh\.ij\\klm\.no', where 3 numbers"),
    ("position two numbers", raw("ImagePositionPatient", "1\\2", 1), 2,
     r"lacks ImagePositionPatient \(0020,0032\) \(found '1\\2', where 3"),
    ("pixel spacing NaN", raw("PixelSpacing", "nan\\4.07"), 1, r"PixelSpacing \(0028,0030\) \[nan, 4\.07\], not two finite"),
    ("pixel spacing 0", raw("PixelSpacing", "0\\0"), 1, r"PixelSpacing \(0028,0030\) \[0, 0\], but a pixel spacing is"),
    ("pixel spacing negative", raw("PixelSpacing", "-4.07\\4.07"), 1, r"PixelSpacing \(0028,0030\) \[-4\.07, 4\.07\], but"),
    ("pixel spacing missing", delete("PixelSpacing"), 1, r"lacks PixelSpacing \(0028,0030\) \(found missing"),
    ("orientation all zero", raw("ImageOrientationPatient", "0\\0\\0\\0\\0\\0"), 1,
     r"ImageOrientationPatient \(0020,0037\) \[0, 0, 0, 0, 0, 0\], whose row and column are not perpendicular unit"),
    ("orientation NaN", raw("ImageOrientationPatient", "1\\0\\0\\0\\nan\\0"), 1,
     r"ImageOrientationPatient \(0020,0037\) \[1, 0, 0, 0, nan, 0\], not six finite"),
    ("orientation not perpendicular", raw("ImageOrientationPatient", "1\\0\\0\\0.5\\0.8660254\\0"), 1,
     r"\[1, 0, 0, 0\.5, 0\.866025, 0\], whose row .* cosine between them 0\.5"),
    ("orientation not unit length", raw("ImageOrientationPatient", "2\\0\\0\\0\\2\\0"), 1, r"lengths 2 and 2"),
    ("orientation differs between slices", raw("ImageOrientationPatient", "1\\0\\0\\0\\0.8\\0.6", 2), 3,
     r"ImageOrientationPatient \(0020,0037\) \[1, 0, 0, 0, 0\.8, 0\.6\] but .*IM0001 has \[1, 0, 0, 0, 1, 0\]: .* "
     r"mixes image orientations"),
    ("matrix size differs between slices", both(set_value("Rows", 22, 2), set_value("Columns", 20, 2)), 3,
     r"Rows \(0028,0010\) x Columns \(0028,0011\) 22 x 20 but .*IM0001 has 20 x 22: .* mixes matrix sizes"),
    ("pixel spacing differs between slices", raw("PixelSpacing", "3\\3", 2), 3,
     r"PixelSpacing \(0028,0030\) \[3, 3\] but .* mixes pixel spacings"),
    ("gantry tilt", tilted(15.0), NZ, r"is sheared: .* has ImagePositionPatient \(0020,0032\) \[.*\], \d+\.\d+ mm in-plane off "
     r"the slice normal .* \(gantry tilt\?\)"),
    ("a missing slice", lambda d: d.pop(7), 8, r"not evenly spaced: ImagePositionPatient \(0020,0032\) steps 6\.540 mm"),
    ("two planes at one position", raw("ImagePositionPatient", "-44.77\\-40.7\\-812.5", 5), 1,
     r"IM0001 and .*IM0006 have one ImagePositionPatient \(0020,0032\) \[-44\.77, -40\.7, -812\.5\] .* two planes at one "
     r"position"),
]


@pytest.mark.parametrize("name,change,file,message", PET_PIXEL + PET_PLANE, ids=[c[0] for c in PET_PIXEL + PET_PLANE])
def test_pet_refused(tmp_path, capsys, name, change, file, message):
    paths, _ = pet_series(tmp_path, change)
    named = str(tmp_path / "session" / "pet" / f"IM{file:04d}")
    with pytest.raises(DicomInputError) as info:
        convert_to_suv(paths, jobs=1)
    assert_one_sentence(str(info.value), named, message)
    assert_cli_refuses(capsys, ["suv", str(tmp_path / "session"), "--json", "--out", str(tmp_path / "suv.nrrd")],
                       named, message)
    assert not (tmp_path / "suv.nrrd").exists()


def test_single_plane_with_unusable_thickness(tmp_path, capsys):
    """A single plane takes its depth from SliceThickness (0018,0050): NaN or 0 cannot be a voxel size."""
    datasets, _ = dro.build(CASE)
    raw("SliceThickness", "nan")(datasets)
    paths = writer.save_datasets(datasets[:1], str(tmp_path / "session" / "pet"))
    with pytest.raises(DicomInputError) as info:
        convert_to_suv(paths, jobs=1)
    assert_one_sentence(str(info.value), paths[0], r"single plane with SliceThickness \(0018,0050\) nan")


# -- accepted: rounding and narrow but consistent data -----------------------------------------------------

def test_rounded_oblique_orientation_is_accepted_and_made_orthonormal(tmp_path):
    """Cosines written with 6 decimals (a plane rotated 1 degree about the patient axis: 0.999848,
    0.017452) miss unit length by ~1e-6: accepted, and the image axes are exactly orthonormal."""
    c, s = math.cos(math.radians(1)), math.sin(math.radians(1))
    direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)  # columns: row, column, normal
    case = dro.Case(seed="oblique")
    datasets, truth = dro.build(case)
    geometry = writer.VolumeGeometry(case.origin, case.spacing, direction)
    for k, ds in enumerate(sorted(datasets, key=lambda d: int(d.InstanceNumber))):
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in geometry.orientation()]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in geometry.slice_position(k)]
    paths = writer.save_datasets(datasets, str(tmp_path / "pet"))
    image = convert_to_suv(paths, jobs=1).image
    axes = np.asarray(image.GetDirection()).reshape(3, 3)
    assert np.abs(axes.T @ axes - np.eye(3)).max() < 1e-12
    assert np.abs(axes - np.asarray(direction).reshape(3, 3)).max() < 1e-6
    assert np.abs(sitk.GetArrayFromImage(image) - truth).max() <= 1e-4


def test_eight_bit_pet_is_read_with_a_warning(tmp_path):
    """8-bit PET whose header and data agree is read as stored (refusing would lose a readable image),
    with a warning: PET images have 16 bits (PS3.3 C.8.9.4), and 8 bits quantise to 1/255 of a plane's
    maximum."""
    datasets, truth = dro.build(CASE)
    for ds in datasets:
        values = np.frombuffer(ds.PixelData, dtype=np.int16).astype(np.float64) * float(ds.RescaleSlope)
        slope = max(values.max(), 1e-9) / 255.0
        ds.PixelData = np.clip(np.rint(values / slope), 0, 255).astype(np.uint8).tobytes()
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.RescaleSlope = writer._ds_text(slope)
    paths = writer.save_datasets(datasets, str(tmp_path / "pet"))
    result = convert_to_suv(paths, jobs=1)
    values = sitk.GetArrayFromImage(result.image)
    assert np.abs(values - truth).max() <= 4.0 / 255 / 2 + 1e-4  # half a step of the hot plane's 1/255
    assert any("stored in 8 of 8 bits" in w and "1/255" in w for w in result.provenance.warnings)


def test_absent_values_the_standard_fixes_are_not_guessed(tmp_path):
    """SamplesPerPixel (1 for PET, CT, MR) and HighBit (BitsStored - 1, PS3.5 8.1.1) have one allowed
    value each: their absence is read as that value, not refused (BitsStored and PixelRepresentation,
    which have several, are refused when absent: tests above)."""
    datasets, truth = dro.build(CASE)
    for ds in datasets:
        del ds.SamplesPerPixel
        del ds.HighBit
    paths = writer.save_datasets(datasets, str(tmp_path / "pet"))
    assert np.abs(sitk.GetArrayFromImage(convert_to_suv(paths, jobs=1).image) - truth).max() <= 1e-4


def test_odd_sized_8_bit_data_may_carry_one_pad_byte(tmp_path):
    """PS3.5 7.1.1: a value of odd length is padded to even length; 8-bit data of an odd number of
    pixels carry one byte more than Rows x Columns, which is no excess."""
    case = dro.Case(shape=(6, 9, 11), seed="odd")
    datasets, truth = dro.build(case)
    for ds in datasets:
        values = np.frombuffer(ds.PixelData, dtype=np.int16).astype(np.float64) * float(ds.RescaleSlope)
        slope = max(values.max(), 1e-9) / 255.0
        ds.PixelData = np.clip(np.rint(values / slope), 0, 255).astype(np.uint8).tobytes() + b"\0"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.RescaleSlope = writer._ds_text(slope)
    paths = writer.save_datasets(datasets, str(tmp_path / "pet"))
    values = sitk.GetArrayFromImage(convert_to_suv(paths, jobs=1).image)
    assert np.abs(values - truth).max() <= 4.0 / 255 / 2 + 1e-4


# -- CT partner: the same rules ----------------------------------------------------------------------------

CT_BYTES = NY * NX * 2

CT_CASES = [
    ("pixel data longer", pixel_bytes(lambda b: b + b"\0" * 44, 2), 3, rf"has {CT_BYTES + 44} bytes of PixelData \(7FE0,0010\)"),
    ("pixel data shorter", pixel_bytes(lambda b: b[:-2], 2), 3, rf"has {CT_BYTES - 2} bytes of PixelData \(7FE0,0010\)"),
    ("BitsAllocated 8 on 16-bit data", eight_bits, 1, r"BitsAllocated \(0028,0100\) 8 need .* \(the data hold 16 bits"),
    ("BitsStored above BitsAllocated", set_value("BitsStored", 20, 4), 5, r"BitsStored \(0028,0101\) 20 with BitsAllocated"),
    ("HighBit 15 with BitsStored 12", set_value("HighBit", 15, 4), 5,
     r"HighBit \(0028,0102\) 15 with BitsStored \(0028,0101\) 12, where the high bit must be 11"),
    ("PixelRepresentation 3", set_value("PixelRepresentation", 3, 0), 1, r"PixelRepresentation \(0028,0103\) 3"),
    ("SamplesPerPixel 3", set_value("SamplesPerPixel", 3, 0), 1, r"SamplesPerPixel \(0028,0002\) 3, but a CT image"),
    ("Columns 0", set_value("Columns", 0, 6), 7, r"Columns \(0028,0011\) 0"),
    ("no pixel data", delete("PixelData", 6), 7, r"has no PixelData \(7FE0,0010\)"),
    ("position NaN", raw("ImagePositionPatient", "nan\\nan\\nan", 9), 10, r"ImagePositionPatient \(0020,0032\) \[nan, nan, nan\]"),
    ("pixel spacing 0", raw("PixelSpacing", "0\\4.07"), 1, r"PixelSpacing \(0028,0030\) \[0, 4\.07\], but"),
    ("pixel spacing negative", raw("PixelSpacing", "-1\\-1", 0), 1, r"PixelSpacing \(0028,0030\) \[-1, -1\], but"),
    ("orientation all zero", raw("ImageOrientationPatient", "0\\0\\0\\0\\0\\0", 0), 1,
     r"ImageOrientationPatient \(0020,0037\) \[0, 0, 0, 0, 0, 0\], whose row"),
    ("orientation differs between slices", raw("ImageOrientationPatient", "0\\1\\0\\1\\0\\0", 4), 5,
     r"ImageOrientationPatient \(0020,0037\) \[0, 1, 0, 1, 0, 0\] but .* mixes image orientations"),
    ("gantry tilt", tilted(12.0), NZ, r"is sheared: .*ImagePositionPatient \(0020,0032\)"),
    ("a missing slice", lambda d: d.pop(9), 10, r"not evenly spaced: ImagePositionPatient \(0020,0032\) steps"),
]


@pytest.mark.parametrize("name,change,file,message", CT_CASES, ids=[c[0] for c in CT_CASES])
def test_ct_refused(tmp_path, name, change, file, message):
    _, paths, _ = pet_ct_session(tmp_path, change)
    named = str(tmp_path / "session" / "ct" / f"IM{file:04d}")
    with pytest.raises(DicomInputError) as info:
        read_image(paths)
    assert_one_sentence(str(info.value), named, message)


def two_frames(datasets):
    datasets[2].NumberOfFrames = 2
    datasets[2].PixelData = datasets[2].PixelData * 2


@pytest.mark.parametrize("name,change,message", [
    ("MONOCHROME1", set_value("PhotometricInterpretation", "MONOCHROME1", 2),
     r"PhotometricInterpretation \(0028,0004\) MONOCHROME1, whose values would be inverted"),
    ("multi-frame", two_frames, r"is a multi-frame image \(NumberOfFrames \(0028,0008\) 2\)"),
])
def test_ct_refusals_of_the_partner_reader(tmp_path, name, change, message):
    """What only the CT/MR reader refuses (SimpleITK's series reader would invert MONOCHROME1 and
    cannot stack multi-frame files)."""
    _, paths, _ = pet_ct_session(tmp_path, change)
    with pytest.raises(DicomInputError) as info:
        read_image(paths)
    assert_one_sentence(str(info.value), paths[2], message)


def test_valid_ct_takes_the_checked_geometry(tmp_path):
    _, paths, hu = pet_ct_session(tmp_path)
    image = read_image(list(reversed(paths)))
    assert image.GetOrigin() == pytest.approx(CASE.origin)
    assert image.GetSpacing() == pytest.approx(CASE.spacing)
    assert image.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert np.abs(sitk.GetArrayFromImage(image) - hu).max() < 1e-3


def _seed():
    """RAS of the DRO's hot sphere, where `netpet segment` finds a lesion."""
    index = np.array([(NX - 1) / 2 - NX * 0.2, (NY - 1) / 2, NZ * 0.35])
    lps = np.asarray(CASE.origin) + index * np.asarray(CASE.spacing)
    return f"{-lps[0]:.1f},{-lps[1]:.1f},{lps[2]:.1f}"


CT_THROUGH_CLI = [c for c in CT_CASES if c[0] in ("position NaN", "gantry tilt", "BitsAllocated 8 on 16-bit data")]


@pytest.mark.parametrize("name,change,file,message", CT_THROUGH_CLI, ids=[c[0] for c in CT_THROUGH_CLI])
def test_ct_refused_through_the_command_line(tmp_path, capsys, name, change, file, message):
    """The CT is read for a normal-bone background (`segment --background-bone`)."""
    pet, _, _ = pet_ct_session(tmp_path, change)
    named = str(tmp_path / "session" / "ct" / f"IM{file:04d}")
    assert_cli_refuses(capsys, ["segment", pet, "--seed", _seed(), "--background-bone", "--json",
                                "--out", str(tmp_path / "mask.nrrd")], named, message)


def test_valid_ct_through_the_command_line(tmp_path, capsys):
    pet, _, _ = pet_ct_session(tmp_path)
    assert main(["segment", pet, "--seed", _seed(), "--background-bone", "--json", "--out",
                 str(tmp_path / "mask.nrrd")]) == 0


# -- a real process: exit code 3, one line, no traceback ---------------------------------------------------

@pytest.mark.parametrize("name,change", [("BitsAllocated 8 on 16-bit data", eight_bits),
                                         ("orientation all zero", raw("ImageOrientationPatient", "0\\0\\0\\0\\0\\0"))])
def test_netpet_process_exits_3_without_traceback(tmp_path, name, change):
    pet_series(tmp_path, change)
    done = subprocess.run([sys.executable, "-m", "netpet.cli.main", "suv", str(tmp_path / "session"), "--json",
                           "--out", str(tmp_path / "suv.nrrd")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("netpet: error: ") and "IM0001" in lines[0], done.stderr
