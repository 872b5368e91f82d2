"""``netpet suv`` reads each PET header once: while indexing (index_tree(pet_headers=True)), the PET files' headers
are interpreted and their pixel data located; the conversion then reads only the pixel bytes. The result must be the
conversion of the files read whole, voxel for voxel and rule for rule, and a file that changes in between is
refused, never read sheared."""

import os

import numpy as np
import pytest
import SimpleITK as sitk

from netpet.dicom import dro, writer
from netpet.dicom.convert import convert_to_suv
from netpet.dicom.index import index_tree
from netpet.errors import DicomInputError


@pytest.fixture()
def pet_folder(tmp_path):
    case = dro.Case(shape=(30, 24, 20), beds=3, seed="single-pass")
    rng = np.random.default_rng(3)
    suv = dro.dro_suv(case.shape) * rng.gamma(20.0, 1 / 20.0, size=case.shape)  # slopes differ per slice
    datasets, _ = dro.build(case, suv)
    ct, _ = dro.build(dro.Case(shape=(6, 24, 20), seed="single-pass-ct"))
    for ds in ct:  # a CT beside the PET: read whole too, but never prepared as PET
        ds.Modality = "CT"
    folder = tmp_path / "session"
    writer.save_datasets(datasets, str(folder / "PET"), prefix="PT")
    writer.save_datasets(ct, str(folder / "CT"), prefix="CT")
    return folder


def test_prepared_conversion_equals_the_whole_file_reading(pet_folder):
    index = index_tree(str(pet_folder), jobs=1, pet_headers=True)
    pet = index.choose_pet()
    assert pet.prepared is not None and sorted(pet.prepared) == sorted(pet.files) and len(pet.files) == 30
    assert all(s.prepared is None or not s.prepared for s in index.all_series() if not s.is_pet)
    assert "prepared" not in pet.to_dict(include_files=True)
    once = convert_to_suv(pet, "bw", jobs=1)
    whole = convert_to_suv(list(pet.files), "bw", jobs=1)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(once.image), sitk.GetArrayFromImage(whole.image))
    assert once.image.GetOrigin() == whole.image.GetOrigin() and once.image.GetSpacing() == whole.image.GetSpacing()
    assert once.provenance.to_dict() == whole.provenance.to_dict()
    # the plain index keeps no PET reading (netpet index reads only the tags it lists)
    assert index_tree(str(pet_folder), jobs=1).choose_pet().prepared is None


def test_a_file_truncated_after_indexing_is_refused(pet_folder):
    pet = index_tree(str(pet_folder), jobs=1, pet_headers=True).choose_pet()
    victim = pet.files[7]
    size = os.path.getsize(victim)
    with open(victim, "r+b") as handle:
        handle.truncate(size - 100)
    with pytest.raises(DicomInputError, match="short of its header's Rows x Columns"):
        convert_to_suv(pet, "bw", jobs=1)


def test_worker_processes_read_headers_and_the_caller_the_pixels(tmp_path):
    """A series of PARALLEL_MIN_FILES or more is read by two workers (headers) and the caller (pixel bytes): the
    same image and provenance as one process; RLE-compressed files are decoded in the workers."""
    from pydicom.uid import RLELossless

    from netpet.dicom import convert

    case = dro.Case(shape=(convert.PARALLEL_MIN_FILES + 4, 12, 10), beds=4, seed="parallel-read")
    rng = np.random.default_rng(5)
    datasets, _ = dro.build(case, dro.dro_suv(case.shape) * rng.gamma(20.0, 1 / 20.0, size=case.shape))
    for ds in datasets[::9]:  # every ninth file compressed: decoded, not read from an offset
        ds.compress(RLELossless)
    writer.save_datasets(datasets, str(tmp_path / "pet"), prefix="PT")
    paths = sorted(str(p) for p in (tmp_path / "pet").iterdir())
    one = convert_to_suv(paths, "bw", jobs=1)
    two = convert_to_suv(paths, "bw", jobs=2)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(one.image), sitk.GetArrayFromImage(two.image))
    assert one.provenance.to_dict() == two.provenance.to_dict()
    prepared = index_tree(str(tmp_path / "pet"), jobs=2, pet_headers=True).choose_pet()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(convert_to_suv(prepared, "bw").image),
                                  sitk.GetArrayFromImage(one.image))
