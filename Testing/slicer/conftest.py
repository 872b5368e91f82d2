"""A Slicer runtime without the application: real MRML from the ``slicer-core`` package.

The fixture ``mrml`` builds what the Slicer application would: an MRML scene with the
application logic and the module logics NETPET's Logic classes use (Colors, Volumes,
Segmentations, Subject hierarchy, Tables, Plots, Markups), exposed as ``slicer.mrmlScene`` and
``slicer.modules.<name>.logic()``. slicer-core has no ScriptedLoadableModule, parameter-node
wrapper or i18n, so minimal stand-ins of those base classes are installed in ``sys.modules``:
the module files import, their Logic classes run for real on MRML, and their Widgets (which need
Qt and the application) are not exercised here; Testing/Python runs the modules inside a real
Slicer.
"""

import os
import sys
import types
import unittest

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_DIRS = [os.path.join(ROOT, name) for name in ("NETPETReader", "SUVQuant", "StudyStats")]

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install -e .[test])")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the installed 'slicer' package is not slicer-core", allow_module_level=True)


def _install_shims():
    """Stand-ins for the Slicer application's pure-Python base classes (not in slicer-core)."""
    if "slicer.ScriptedLoadableModule" in sys.modules:
        return
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent=None):
            self.moduleName = type(self).__name__[:-len("Logic")]

        def getParameterNode(self):
            scene = slicer.mrmlScene
            node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
            if node is None:
                node = slicer.vtkMRMLScriptedModuleNode()
                node.SetSingletonTag(self.moduleName)
                node.SetModuleName(self.moduleName)
                node.SetName(self.moduleName)
                node = scene.AddNode(node)
            return node

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def delayDisplay(self, message, msec=0):
            pass

    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
                ScriptedLoadableModuleTest):
        setattr(scripted, cls.__name__, cls)
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")

    def parameterNodeWrapper(cls):
        """Stand-in: the class keeps its annotations (checked against the .ui); wrapping returns the
        plain scripted-module node, which the headless tests do not bind to a GUI."""
        original = cls

        class Wrapped:
            __annotations__ = getattr(original, "__annotations__", {})
            __wrapped__ = original

            def __init__(self, node):
                self.parameterNode = node

        Wrapped.__name__ = original.__name__
        return Wrapped

    class _Annotation:
        def __init__(self, *args, **kwargs):
            self.args = args

    wrapper.parameterNodeWrapper = parameterNodeWrapper
    for name in ("Choice", "WithinRange", "Default", "Minimum", "Maximum", "Decimals", "SingleStep"):
        setattr(wrapper, name, type(name, (_Annotation,), {}))
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text
    for module in (scripted, wrapper, i18n):
        sys.modules[module.__name__] = module
        setattr(slicer, module.__name__.split(".")[-1], module)
    for folder in MODULE_DIRS:
        if folder not in sys.path:
            sys.path.insert(0, folder)


_install_shims()


@pytest.fixture()
def mrml():
    """A fresh scene with the module logics registered; returns the scene."""
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    colors = slicer.vtkSlicerColorLogic()
    app_logic.SetColorLogic(colors)
    colors.SetMRMLApplicationLogic(app_logic)
    colors.SetMRMLScene(scene)
    app_logic.SetMRMLScene(scene)
    modules = types.SimpleNamespace()

    def register(name, logic):
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        setattr(modules, name.lower(), types.SimpleNamespace(logic=lambda l=logic: l))
        return logic

    app_logic.SetModuleLogic("Colors", colors)
    modules.colors = types.SimpleNamespace(logic=lambda: colors)
    register("Volumes", slicer.vtkSlicerVolumesLogic())
    register("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic())
    register("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic())
    register("Tables", slicer.vtkSlicerTablesLogic())
    register("Plots", slicer.vtkSlicerPlotsLogic())
    register("Markups", slicer.vtkSlicerMarkupsLogic())
    previous = (getattr(slicer, "mrmlScene", None), getattr(slicer, "modules", None), getattr(slicer, "app", None))
    slicer.mrmlScene, slicer.modules, slicer.app = scene, modules, None
    scene._netpet_keepalive = (app_logic, colors, modules)  # the logics live as long as the scene
    for name in ("Red", "Yellow", "Green"):  # the slice views the application layout would create
        slice_node = slicer.vtkMRMLSliceNode()
        slice_node.SetName(name)
        slice_node.SetLayoutName(name)
        slice_node.SetSingletonTag(name)
        scene.AddNode(slice_node)
        composite = slicer.vtkMRMLSliceCompositeNode()
        composite.SetLayoutName(name)
        composite.SetSingletonTag(name)
        scene.AddNode(composite)
    yield scene
    slicer.mrmlScene, slicer.modules, slicer.app = previous
    scene.Clear(1)
