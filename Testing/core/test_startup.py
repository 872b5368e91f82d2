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
