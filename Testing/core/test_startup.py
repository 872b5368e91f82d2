"""Start-up cost of the command line: ``netpet --help`` (building every subcommand's parser) imports none of the
scientific libraries; each command imports what it needs when it runs. Measured by the modules loaded, not by
time (tests do not time): before the package exports were made lazy, ``netpet --help`` loaded scikit-learn,
scipy.stats, pandas and SimpleITK (2.4 s, 254 MB)."""

import subprocess
import sys

HEAVY = ("numpy", "scipy", "pandas", "sklearn", "matplotlib", "statsmodels", "SimpleITK", "pydicom", "highdicom",
         "vtk", "slicer", "trame", "trame_slicer")


def _loaded_after(code):
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sorted({m.split('.')[0] for m "
                          "in sys.modules})))"], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_help_loads_no_scientific_library():
    loaded = _loaded_after("from netpet.cli.main import build_parser; build_parser().format_help()")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    done = subprocess.run([sys.executable, "-m", "netpet.cli.main", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage: netpet" in done.stdout


def test_package_exports_still_resolve_on_first_use():
    """The lazy exports of netpet.quant, netpet.stats and netpet.clinical give the same objects as their modules."""
    import netpet.clinical
    import netpet.quant
    import netpet.stats
    from netpet.clinical.staging_stats import weighted_kappa
    from netpet.quant.table import StudyTable
    from netpet.stats.analysis import analyse

    assert netpet.quant.StudyTable is StudyTable and netpet.stats.analyse is analyse
    assert netpet.clinical.weighted_kappa is weighted_kappa
    for package in (netpet.quant, netpet.stats, netpet.clinical):
        assert all(getattr(package, name) is not None for name in package.__all__)
        assert set(package.__all__) <= set(dir(package))


#: What issue 16 names: index, suv and segment must not import the statistics and plotting stack.
STATISTICS_STACK = ("sklearn", "pandas", "matplotlib", "statsmodels", "highdicom")


def _command_loads(argv):
    """The top-level packages loaded by ``netpet ARGV`` run in a fresh interpreter (exit code, packages)."""
    code = ("import sys\nfrom netpet.cli.main import main\nsys.argv = ['netpet'] + %r\ntry:\n    main()\n"
            "except SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
            "print('LOADED', code, ' '.join(sorted({m.split('.')[0] for m in sys.modules})))" % (list(argv),))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("LOADED "))
    _, code, *names = line.split()
    return int(code), set(names)


def test_index_suv_and_segment_load_only_what_they_need(tmp_path):
    """index reads headers (pydicom, which brings numpy) and nothing of the image stack; suv adds numpy and SimpleITK; segment adds
    scipy (ndimage, special) but none of the statistics stack, not even scikit-learn for the call."""
    import SimpleITK as sitk
    import numpy as np

    from netpet.dicom import dro, writer

    case = dro.Case(shape=(24, 32, 32), beds=2, seed="startup")
    suv = dro.dro_suv(case.shape)
    suv[10:14, 14:18, 14:18] = 12.0  # a hot lesion of 4 x 4 x 4 voxels
    datasets, _ = dro.build(case, suv)
    folder = tmp_path / "pet"
    writer.save_datasets(datasets, str(folder), prefix="PT")

    code, loaded = _command_loads(["index", str(folder)])
    assert code == 0 and not loaded & set(STATISTICS_STACK + ("SimpleITK", "scipy")), sorted(loaded & set(HEAVY))
    out = tmp_path / "suv.nrrd"
    code, loaded = _command_loads(["suv", str(folder), "--out", str(out), "--jobs", "1"])
    assert code == 0 and not loaded & set(STATISTICS_STACK + ("scipy",)), sorted(loaded & set(HEAVY))
    image = sitk.ReadImage(str(out))
    lps = image.TransformContinuousIndexToPhysicalPoint((15.5, 15.5, 11.5))
    seed = f"{-lps[0]:.1f},{-lps[1]:.1f},{lps[2]:.1f}"
    assert float(np.max(sitk.GetArrayViewFromImage(image))) > 10.0
    code, loaded = _command_loads(["segment", str(out), "--seed=" + seed, "--out", str(tmp_path / "mask.nrrd")])
    assert code == 0 and not loaded & set(STATISTICS_STACK), sorted(loaded & set(HEAVY))
