"""netpet.slicer_runtime behaves as Slicer where the NETPET modules depend on it, and the modules' extension
points work through it as they will in Slicer:

- the Segment Statistics plugin, registered by SUVQuant as at Slicer's start, measures through Segment
  Statistics' logic, which makes its own instance (name and keys must be on the instance: a plugin with
  class attributes only comes out unnamed and measures nothing, as in Slicer);
- the Segment Editor effect is loaded as Slicer loads a scripted effect (a module named after its folder,
  with 5.8's and 5.10's loaders), leaves SUVQuantLib intact, and segments a click from a slice view;
- the parameter-node wrapper writes what Slicer's writes (defaults, enum names, node references, '.' for an
  unset path) and refuses what Slicer's refuses; the GUI connectors' ranges are what Slicer's set, and each
  ranged widget of the three panels keeps its .ui limits only where its parameter declares them.

Each stand-in names the Slicer source it mirrors (see netpet/slicer_runtime.py).
"""

import importlib
import math
import os
import pathlib
import sys
import textwrap
import xml.etree.ElementTree as ET
from typing import Annotated

import numpy as np
import pytest

import slicer
from netpet import slicer_runtime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EFFECT = os.path.join(ROOT, "SUVQuant", "SegmentEditorPETLesionLib", "SegmentEditorEffect.py")




@pytest.fixture()
def registeredPlugins(monkeypatch):
    """Segment Statistics' plugin registry, emptied for the test and restored after."""
    from SegmentStatistics import SegmentStatisticsLogic

    monkeypatch.setattr(SegmentStatisticsLogic, "registeredPlugins", [])
    return SegmentStatisticsLogic.registeredPlugins


@pytest.fixture()
def effectFactory(monkeypatch):
    """A fresh Segment Editor effect factory, and the effect module forgotten before and after the test."""
    monkeypatch.setattr(slicer_runtime.qSlicerSegmentEditorEffectFactory, "_instance", None)
    monkeypatch.delitem(sys.modules, "SegmentEditorPETLesionLib", raising=False)
    yield slicer.qSlicerSegmentEditorEffectFactory.instance()
    sys.modules.pop("SegmentEditorPETLesionLib", None)


def test_the_runtime_provides_what_slicer_core_lacks(mrml):
    for name in ("slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper", "slicer.i18n", "SegmentStatistics",
                 "SegmentStatisticsPlugins", "SegmentEditorEffects", "qSlicerSegmentationsEditorEffectsPythonQt"):
        assert slicer_runtime.isStandIn(name), name
    assert slicer.mrmlScene is mrml and slicer.app is None
    for name in ("volumes", "segmentations", "subjecthierarchy", "tables", "plots", "markups", "colors"):
        assert getattr(slicer.modules, name).logic() is not None, name
    assert mrml.GetSingletonNode("Red", "vtkMRMLSliceNode") is not None


# -- Segment Statistics -----------------------------------------------------------------------------------

def test_plugin_base_sets_name_and_keys_on_the_instance():
    """As Slicer's SegmentStatisticsPluginBase: class attributes are hidden by the instance's empty ones."""
    from SegmentStatisticsPlugins import SegmentStatisticsPluginBase

    from SUVQuantLib.SegmentStatisticsPlugin import SUVSegmentStatisticsPlugin

    class ClassAttributesOnly(SegmentStatisticsPluginBase):
        name = "Unnamed in Slicer"
        keys = ["value"]
        defaultKeys = ["value"]

    hidden = ClassAttributesOnly()
    assert (hidden.name, hidden.keys, hidden.defaultKeys) == ("", [], [])
    plugin = SUVSegmentStatisticsPlugin()
    assert plugin.name == "NETPET SUV" and plugin.title
    assert "suv_peak" in plugin.keys and "call" in plugin.keys and "call" not in plugin.defaultKeys
    # like Slicer's bundled plugins, the class itself carries no name and keys
    assert not {"name", "keys", "defaultKeys"} & set(vars(SUVSegmentStatisticsPlugin))
    with pytest.raises(TypeError):  # Slicer's createMeasurementInfo requires the title
        plugin.createMeasurementInfo(name="SUVmax", description="SUVmax", units="SUV")


def test_statistics_through_segment_statistics(synthetic, registeredPlugins, effectFactory):
    """SUVQuant registers its plugin as at Slicer's start; Segment Statistics' logic makes its own instance
    and computes every segment through it, with the SUV Quant panel's liver point."""
    import SUVQuant
    from SegmentStatistics import SegmentStatisticsLogic

    logic, pet, ras = synthetic
    liver = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Liver")
    liver.AddControlPoint(*ras("liverReference"))
    logic.getParameterNode().liverPoint = liver
    result = logic.segmentLesions(pet, [("E1", ras("E1")), ("H1", ras("H1")), ("L01", ras("flatLiver"))],
                                  liverRAS=ras("liverReference"))
    rows = {r["lesion_id"]: r for r in result["rows"]}
    SUVQuant.registerExtensionPoints()
    assert [p.__name__ for p in registeredPlugins] == ["SUVSegmentStatisticsPlugin"]
    statistics = SegmentStatisticsLogic()
    assert [p.name for p in statistics.plugins] == ["NETPET SUV"]
    parameters = statistics.getParameterNode()
    parameters.SetParameter("Segmentation", result["segmentation"].GetID())
    parameters.SetParameter("ScalarVolume", pet.GetID())
    parameters.SetParameter("visibleSegmentsOnly", "False")
    # the default keys are enabled by the logic; the call and the status on request
    assert parameters.GetParameter("SUVSegmentStatisticsPlugin.suv_peak.enabled") == "True"
    assert parameters.GetParameter("SUVSegmentStatisticsPlugin.call.enabled") == "False"
    for key in ("call", "segmentation_status"):
        parameters.SetParameter(f"SUVSegmentStatisticsPlugin.{key}.enabled", "True")
    statistics.computeStatistics()
    values = statistics.getStatistics()
    assert values["SegmentIDs"] == ["E1", "H1", "L01"]
    for lesion in ("E1", "H1"):
        for key in ("suv_max", "suv_peak", "suv_mean", "mtv_ml", "tb_ratio", "tl_ratio"):
            assert values[lesion, f"SUVSegmentStatisticsPlugin.{key}"] == pytest.approx(rows[lesion][key], rel=1e-6), key
    assert values["E1", "SUVSegmentStatisticsPlugin.call"] == "equivocal"
    assert values["H1", "SUVSegmentStatisticsPlugin.call"] == "positive"
    assert values["L01", "SUVSegmentStatisticsPlugin.segmentation_status"] == "not separable"
    info = values["MeasurementInfo"]["SUVSegmentStatisticsPlugin.suv_peak"]
    assert info["name"] == "SUVpeak" and info["title"] and info["units"] == "SUV"
    assert info["DICOM.QuantityCode"].startswith("CodeValue:126401|")
    assert info["DICOM.DerivationCode"].startswith("CodeValue:126031|")
    call = values["MeasurementInfo"]["SUVSegmentStatisticsPlugin.call"]
    assert call["title"] == "Call" and not any(k.startswith("DICOM.") for k in call)


def test_plugin_measures_nothing_on_a_volume_that_is_not_suv(synthetic, registeredPlugins):
    from SegmentStatistics import SegmentStatisticsLogic

    from SUVQuantLib.SegmentStatisticsPlugin import SUVSegmentStatisticsPlugin

    logic, pet, ras = synthetic
    result = logic.segmentLesions(pet, [("H1", ras("H1"))], liverRAS=ras("liverReference"))
    pet.RemoveAttribute("NETPET.SUVType")
    SegmentStatisticsLogic.registerPlugin(SUVSegmentStatisticsPlugin())
    statistics = SegmentStatisticsLogic()
    statistics.getParameterNode().SetParameter("Segmentation", result["segmentation"].GetID())
    statistics.getParameterNode().SetParameter("ScalarVolume", pet.GetID())
    statistics.computeStatistics()
    assert statistics.getStatistics()["MeasurementInfo"] == {}


# -- Segment Editor effect --------------------------------------------------------------------------------

@pytest.mark.parametrize("version", slicer_runtime.SLICER_VERSIONS)
def test_effect_loads_as_slicer_loads_it(mrml, effectFactory, version):
    """Slicer runs the effect file as a module named after its folder; SUVQuantLib stays the package it
    is (its plugin still imports), whichever loader the Slicer version has."""
    import SUVQuantLib

    package = sys.modules["SUVQuantLib"]
    adaptor = slicer_runtime.qSlicerSegmentEditorScriptedEffect(None, version=version)
    assert adaptor.setPythonSource(EFFECT.replace("\\", "/"))
    effect = adaptor.self()
    module = sys.modules["SegmentEditorPETLesionLib"]
    assert os.path.samefile(module.__file__, EFFECT)
    assert type(effect).__module__ == "SegmentEditorPETLesionLib" and type(effect).__name__ == "SegmentEditorEffect"
    assert adaptor.name == "PET lesion" and adaptor.perSegment and adaptor.requireSegments
    assert getattr(slicer, "SegmentEditorPETLesionLib") is effect
    assert sys.modules["SUVQuantLib"] is package is SUVQuantLib and hasattr(package, "__path__")
    assert importlib.import_module("SUVQuantLib.SegmentStatisticsPlugin").SUVSegmentStatisticsPlugin
    # registered under its name, once; a clone is loaded the same way
    effect.register()
    effect.register()
    assert [e.name for e in effectFactory.registeredEffects()] == ["PET lesion"]
    assert effect.clone().self() is not effect


@pytest.mark.parametrize("version", slicer_runtime.SLICER_VERSIONS)
def test_an_effect_inside_an_imported_package_breaks_the_package(tmp_path, monkeypatch, version):
    """Why the effect has a folder of its own: the stand-in loader reproduces what Slicer's does to a package
    that holds the effect file (5.10 replaces it by a plain module, 5.8 runs the effect inside it)."""
    folder = tmp_path / "SomeLib"
    folder.mkdir()
    (folder / "__init__.py").write_text("PACKAGE = True\n")
    (folder / "helper.py").write_text("VALUE = 1\n")
    (folder / "SegmentEditorEffect.py").write_text(textwrap.dedent("""
        from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

        class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
            def __init__(self, scriptedEffect):
                scriptedEffect.name = "Some effect"
                AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("SomeLib", "SomeLib.helper"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    package = importlib.import_module("SomeLib")
    adaptor = slicer_runtime.qSlicerSegmentEditorScriptedEffect(None, version=version)
    assert adaptor.setPythonSource(str(folder / "SegmentEditorEffect.py"))
    if version == "5.8":
        assert sys.modules["SomeLib"] is package and package.__file__.endswith("SegmentEditorEffect.py")
    else:
        assert sys.modules["SomeLib"] is not package and not hasattr(sys.modules["SomeLib"], "__path__")
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("SomeLib.helper")
    for name in [n for n in sys.modules if n == "SomeLib" or n.startswith("SomeLib.")]:
        del sys.modules[name]


def _editor(logic, pet, segmentationNode, segmentID, effectFactory):
    """The effect as the Segment Editor holds it: loaded, given the editor's node, its defaults set."""
    editorNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    editorNode.SetAndObserveSegmentationNode(segmentationNode)
    editorNode.SetAndObserveSourceVolumeNode(pet)
    editorNode.SetSelectedSegmentID(segmentID)
    adaptor = slicer_runtime.qSlicerSegmentEditorScriptedEffect(None)
    adaptor.setPythonSource(EFFECT)
    adaptor.setParameterSetNode(editorNode)
    return adaptor, adaptor.self()


def _click(effect, ras):
    """A left click in the Red view centred on ``ras``: the interactor's position, turned into RAS by the
    effect through the slice node as Slicer does."""
    import vtk

    sliceNode = slicer.mrmlScene.GetSingletonNode("Red", "vtkMRMLSliceNode")
    sliceNode.SetDimensions(256, 256, 1)
    sliceNode.SetFieldOfView(320.0, 320.0, 1.0)
    sliceNode.JumpSliceByCentering(*ras)
    view = slicer_runtime.SliceWidget(sliceNode)
    interactor = vtk.vtkRenderWindowInteractor()
    interactor.SetEventPosition(*(int(round(v)) for v in effect.rasToXy(ras, view)))
    assert effect.processInteractionEvents(interactor, vtk.vtkCommand.MouseMoveEvent, view) is False
    clicked = effect.xyToRas(interactor.GetEventPosition(), view)
    assert clicked == pytest.approx(list(ras), abs=320.0 / 256)  # within a screen pixel of the lesion
    return clicked


def test_effect_segments_a_click(synthetic, effectFactory):
    logic, pet, ras = synthetic
    segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentationNode.CreateDefaultDisplayNodes()
    segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(pet)
    segmentationNode.GetSegmentation().AddEmptySegment("H1", "H1")
    adaptor, effect = _editor(logic, pet, segmentationNode, "H1", effectFactory)
    assert adaptor.parameter("Method") == "adaptive"  # setMRMLDefaults, stored on the editor node
    assert adaptor.parameterSetNode().GetAttribute("PET lesion.Method") == "adaptive"
    lesion = effect.segmentClick(_click(effect, ras("H1")))
    mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "H1", pet) > 0
    centre = tuple(int(round(v)) for v in np.linalg.solve(
        slicer.util.arrayFromVTKMatrix(_ijkToRas(pet))[:3, :3],
        np.array(ras("H1")) - slicer.util.arrayFromVTKMatrix(_ijkToRas(pet))[:3, 3]))
    assert lesion.separable and lesion.method == "adaptive" and mask.sum() == lesion.voxels > 20
    assert mask[centre[2], centre[1], centre[0]]
    assert adaptor.undoStatesSaved == 1 and "H1: segmented" in effect.lastMessage
    # the method is the effect's parameter; a click in flat liver leaves the segment as it was
    adaptor.setParameter("Method", "fixed41")
    before = mask.copy()
    lesion = effect.segmentClick(_click(effect, ras("flatLiver")))
    assert not lesion.separable and lesion.method == "fixed41"
    assert np.array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "H1", pet) > 0, before)
    assert adaptor.undoStatesSaved == 1 and "left unchanged" in effect.lastMessage


def test_effect_needs_a_selected_segment(synthetic, effectFactory):
    logic, pet, ras = synthetic
    segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    _adaptor, effect = _editor(logic, pet, segmentationNode, "", effectFactory)
    with pytest.raises(ValueError, match="Select a segment"):
        effect.segmentClick(ras("H1"))


def _ijkToRas(volumeNode):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return matrix


# -- parameter nodes ----------------------------------------------------------------------------------------

def test_parameter_node_wrapper_writes_what_slicer_writes(mrml):
    from SUVQuant import SUVQuantLogic

    parameters = SUVQuantLogic().getParameterNode()
    node = parameters.parameterNode
    assert node.GetAttribute("ModuleName") == "SUVQuant" and node.GetSingletonTag() == "SUVQuant"
    # every field is written on wrapping: numbers as text, enums by member name, an unset path as "."
    assert node.GetParameter("backgroundDiameterMm") == "20.0"
    assert node.GetParameter("method") == "adaptive"
    assert node.GetParameter("studyTablePath") == "." and parameters.studyTablePath == pathlib.Path()
    assert node.HasParameter("petVolume") and node.GetNodeReference("petVolume") is None
    # node references by role; validators refuse what Slicer refuses
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    parameters.liverPoint = points
    assert node.GetNodeReferenceID("liverPoint") == points.GetID() and parameters.liverPoint is points
    with pytest.raises(ValueError):
        parameters.backgroundDiameterMm = 100.0
    with pytest.raises(TypeError):
        parameters.liverPoint = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode")
    assert SUVQuantLogic().getParameterNode().liverPoint is points  # the same singleton node
    with pytest.raises(RuntimeError, match="Qt"):
        parameters.connectGui(object())


def test_gui_connector_ranges_are_slicers():
    WithinRange = slicer.parameterNodeWrapper.WithinRange
    Minimum = slicer.parameterNodeWrapper.Minimum
    Maximum = slicer.parameterNodeWrapper.Maximum
    assert slicer_runtime.guiConnectorRange("QDoubleSpinBox", float) == (-math.inf, math.inf)
    assert slicer_runtime.guiConnectorRange("QSpinBox", int) == (-2 ** 31, 2 ** 31 - 1)
    assert slicer_runtime.guiConnectorRange("ctkSliderWidget", Annotated[float, WithinRange(0.0, 1.0)]) == (0.0, 1.0)
    assert slicer_runtime.guiConnectorRange("QSpinBox", Annotated[int, Minimum(10), Maximum(20)]) == (10, 20)
    assert slicer_runtime.guiConnectorRange("QDoubleSpinBox", Annotated[float, Minimum(0.5)]) == (0.5, math.inf)
    with pytest.raises(RuntimeError):
        slicer_runtime.guiConnectorRange("ctkSliderWidget", float)
    with pytest.raises(TypeError):
        slicer_runtime.guiConnectorRange("QSpinBox", float)


def _uiRanges(module):
    """{parameter: (widget class, (minimum, maximum) the .ui sets, None where it sets none)} of the ranged
    widgets bound to a parameter."""
    tree = ET.parse(os.path.join(ROOT, module, "Resources", "UI", f"{module}.ui"))
    ranges = {}
    for element in tree.iter("widget"):
        cls = element.get("class")
        props = {p.get("name"): p for p in element.findall("property")}
        if cls in slicer_runtime.RANGED_WIDGETS and "SlicerParameterName" in props:
            limits = tuple(float(props[k][0].text) if k in props else None for k in ("minimum", "maximum"))
            ranges[props["SlicerParameterName"].find("string").text] = (cls, limits)
    return ranges


@pytest.mark.parametrize("module", slicer_runtime.MODULE_NAMES)
def test_ranged_widgets_keep_their_ui_limits(mrml, module):
    """Slicer's GUI connector replaces a spin box's or slider's .ui range by the parameter's (-inf..inf or
    +-2**31 without WithinRange): the panels show the .ui limits only where the parameter declares them."""
    logic = getattr(importlib.import_module(module), module + "Logic")()
    parameters = logic.getParameterNode()
    for parameter, (cls, shown) in _uiRanges(module).items():
        assert slicer_runtime.guiConnectorRange(cls, parameters.dataType(parameter)) == shown, (module, parameter)


# -- the module self-tests (Testing/Python) ------------------------------------------------------------------

SELF_TESTS = {module: os.path.join(ROOT, module, "Testing", "Python", f"{module}SelfTest.py")
              for module in slicer_runtime.MODULE_NAMES}


@pytest.mark.parametrize("name", ["test_not_separable_equivocal_and_background_points",
                                  "test_click_measure_export_review"])
def test_suvquant_self_test_runs_on_the_runtime(mrml, registeredPlugins, effectFactory, monkeypatch, name):
    """The SUVQuant self-test's cases that need no Qt run here as inside Slicer, with the extension points
    registered as at Slicer's start (its Segment Editor case needs Slicer's widgets: see the next test)."""
    import unittest

    monkeypatch.syspath_prepend(os.path.dirname(SELF_TESTS["SUVQuant"]))
    import SUVQuant
    from SUVQuantSelfTest import SUVQuantSelfTest

    SUVQuant.registerExtensionPoints()
    outcome = unittest.TestResult()
    SUVQuantSelfTest(name).run(outcome)
    assert outcome.wasSuccessful(), "\n".join(text for _case, text in outcome.errors + outcome.failures)


def test_self_tests_use_slicers_extension_points():
    """Checked where they cannot run: the three self-tests compile; each segments through the effect in a
    Segment Editor widget and measures through Segment Statistics' logic (SUVQuantSelfTest's helpers, which
    exist and call the real API: a qMRMLSegmentEditorWidget with the "PET lesion" effect active, the Red view's
    interactor, SegmentStatisticsLogic().plugins), never through the Logic's segmentAt or the plugin class."""
    import ast
    import py_compile

    for module, path in SELF_TESTS.items():
        py_compile.compile(path, doraise=True)
        source = open(path, encoding="utf-8").read()
        tree = ast.parse(source)
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.module == "SUVQuantSelfTest" for alias in node.names}
        called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and isinstance(node.func, ast.Name)}
        assert {"segmentEditorClick", "segmentStatistics"} <= called, module
        if module != "SUVQuant":
            assert {"segmentEditorClick", "segmentStatistics"} <= imported, module
        assert ".segmentAt(" not in source and "registeredPlugins" not in source, module
    helpers = open(SELF_TESTS["SUVQuant"], encoding="utf-8").read()
    for call in ("slicer.qMRMLSegmentEditorWidget()", 'setActiveEffectByName("PET lesion")', ".setSourceVolumeNode(",
                 ".processInteractionEvents(interactor, vtk.vtkCommand.LeftButtonPressEvent, sliceWidget)",
                 "SegmentStatisticsLogic()", "statistics.plugins", "statistics.computeStatistics()",
                 "statistics.exportToTable(table)"):
        assert call in helpers, call


# -- attach: an application's own scene (trame-slicer's SlicerApp, as the review app uses it) ----------------

def _bareApplication():
    """A scene and application logic with the logics an application registers, but not Tables and Plots."""
    scene = slicer.vtkMRMLScene()
    appLogic = slicer.vtkSlicerApplicationLogic()
    appLogic.SetMRMLScene(scene)
    logics = []
    for name in ("Volumes", "Segmentations", "SubjectHierarchy"):
        logic = getattr(slicer, slicer_runtime.MODULE_LOGICS[name])()
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(appLogic)
        appLogic.SetModuleLogic(name, logic)
        logics.append(logic)
    return scene, appLogic, logics


def _clickSegmentsH1(scene):
    """SUVQuant's Logic segments the synthetic PET's positive lesion on the published scene: the segment holds
    the lesion's voxels (the same count the core reports)."""
    folder = os.path.join(ROOT, "SUVQuant", "Testing", "Python")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from SUVQuantSelfTest import syntheticPET

    from SUVQuant import SUVQuantLogic

    pet, ras = syntheticPET()
    assert pet.GetScene() is scene
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lesions")
    segmentation.CreateDefaultDisplayNodes()
    lesion = SUVQuantLogic().segmentAt(pet, ras("H1"), segmentation, "H1")
    assert lesion.separable and lesion.voxels > 0
    assert int(slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, "H1", pet).sum()) == lesion.voxels
    return segmentation


def test_attach_publishes_an_existing_scene_and_close_gives_it_back(mrml):
    scene, appLogic, logics = _bareApplication()
    with slicer_runtime.attach(scene, appLogic) as runtime:
        assert slicer.mrmlScene is scene and slicer.app is None and not runtime.ownsScene
        for name, logic in zip(("volumes", "segmentations", "subjecthierarchy"), logics):
            assert getattr(slicer.modules, name).logic() is logic
        for name in ("Tables", "Plots"):  # registered on the application logic, which lacked them
            logic = appLogic.GetModuleLogic(name)
            assert logic is not None and logic.IsA(slicer_runtime.MODULE_LOGICS[name])
            assert getattr(slicer.modules, name.lower()).logic() is logic and logic.GetMRMLScene() is scene
        assert not hasattr(slicer.modules, "markups")  # only what the application holds is published
        segmentation = _clickSegmentsH1(scene)
        count = scene.GetNumberOfNodes()
    # the previous scene (the fixture's) is published again; the attached scene keeps its nodes
    assert slicer.mrmlScene is mrml and slicer.modules.tables.logic().GetMRMLScene() is mrml
    assert scene.GetNumberOfNodes() == count and segmentation.GetScene() is scene
    tables = appLogic.GetModuleLogic("Tables")
    with slicer_runtime.attach(scene, appLogic):  # attaching again registers nothing twice
        assert appLogic.GetModuleLogic("Tables") is tables and slicer.mrmlScene is scene
    assert slicer.mrmlScene is mrml


def test_attach_refuses_a_logic_of_another_scene(mrml):
    scene, appLogic, _logics = _bareApplication()
    with pytest.raises(ValueError, match="another scene"):
        slicer_runtime.attach(slicer.vtkMRMLScene(), appLogic)
    with pytest.raises(ValueError, match="MRML scene"):
        slicer_runtime.attach(appLogic, appLogic)
    assert slicer.mrmlScene is mrml


def test_attach_to_a_trame_slicer_application(mrml):
    """The review app's case: trame-slicer's SlicerApp (offscreen EGL, see Testing/conftest.py) with its own
    scene and logics; NETPET's Logic works on it through attach, as it does on start()'s scene."""
    core = pytest.importorskip("trame_slicer.core", reason="trame-slicer is not installed (pip install -e .[gui])")
    app = core.SlicerApp()
    with slicer_runtime.attach(app.scene, app.app_logic):
        assert slicer.mrmlScene is app.scene
        assert slicer.modules.volumes.logic() is app.volumes_logic
        assert slicer.modules.segmentations.logic() is app.segmentations_logic
        assert slicer.modules.markups.logic() is app.app_logic.GetModuleLogic("Markups")
        assert slicer.modules.tables.logic() is app.app_logic.GetModuleLogic("Tables") is not None
        segmentation = _clickSegmentsH1(app.scene)
        table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "rows")
    assert slicer.mrmlScene is mrml
    assert segmentation.GetScene() is app.scene and table.GetScene() is app.scene
