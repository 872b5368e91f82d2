"""The Slicer runtime of these tests: real MRML from the ``slicer-core`` package, made to run as in the
application by ``netpet.slicer_runtime`` (the same module the review app uses): a scene with the module
logics registered (fixture ``mrml``), and stand-ins of the pure-Python parts of Slicer slicer-core lacks
(ScriptedLoadableModule, parameterNodeWrapper, i18n, Segment Statistics, Segment Editor effects), each
following Slicer's own source where the modules depend on it. The module files import, their Logic
classes run for real on MRML; their Widgets (which need Qt and the application) are not exercised here:
each module's Testing/Python self-test runs them inside a real Slicer.
"""

import os
import sys

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install -e .[test])")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the installed 'slicer' package is not slicer-core", allow_module_level=True)

from netpet import slicer_runtime  # noqa: E402

slicer_runtime.install()


@pytest.fixture()
def mrml():
    """A fresh scene with the module logics registered; returns the scene."""
    with slicer_runtime.start() as runtime:
        yield runtime.scene


@pytest.fixture()
def synthetic(mrml):
    """(SUVQuantLogic, PET node, ras(name)): the small synthetic SUV volume of the SUVQuant self-test
    (SUVQuant/Testing/Python), on the fresh scene."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "SUVQuant",
                          "Testing", "Python")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from SUVQuantSelfTest import syntheticPET

    from SUVQuant import SUVQuantLogic

    pet, ras = syntheticPET()
    return SUVQuantLogic(), pet, ras
