"""The Slicer runtime of these tests: real MRML from the ``slicer-core`` package, made to run as in the
application by ``netpet.slicer_runtime`` (the same module the review app uses): a scene with the module
logics registered (fixture ``mrml``), and stand-ins of the pure-Python parts of Slicer slicer-core lacks
(ScriptedLoadableModule, parameterNodeWrapper, i18n, Segment Statistics, Segment Editor effects), each
following Slicer's own source where the modules depend on it. The module files import, their Logic
classes run for real on MRML; their Widgets (which need Qt and the application) are not exercised here:
each module's Testing/Python self-test runs them inside a real Slicer.
"""

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
