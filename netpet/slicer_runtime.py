"""The one module that makes NETPET's Slicer-side Logic run on slicer-core outside the Slicer application.

``pip install slicer-core`` gives Slicer's real MRML and module logics (scenes, volumes, segmentations,
markups, tables, storage) but not the application: no ``slicer.mrmlScene`` or ``slicer.modules``, no Qt,
and none of the pure-Python parts of Slicer the NETPET modules build on. This module supplies both:

:func:`start`
    a scene with the application logic and the module logics NETPET's Logic classes use (Colors,
    Volumes, Segmentations, Subject hierarchy, Tables, Plots, Markups) and the Red/Yellow/Green slice
    views of the default layout, exposed as ``slicer.mrmlScene`` and ``slicer.modules.<name>.logic()``.
    ``slicer.app`` stays ``None``: there is no application (and no Qt); code that needs one is Widget code.
:func:`attach`
    the same for an application's existing scene and application logic (trame-slicer's ``SlicerApp``, as
    the review app uses it): its module logics published, Tables and Plots registered where missing.
:func:`install`
    stand-ins of the Slicer parts slicer-core lacks, put in ``sys.modules`` only where the real module
    cannot be imported, each following Slicer's own source where the NETPET modules depend on its
    behaviour (the source files are named in each class, as of Slicer 5.8 and 5.10):

    - ``slicer.ScriptedLoadableModule`` (:class:`ScriptedLoadableModule`, ``...Widget``, ``...Logic``,
      ``...Test``)
    - ``slicer.parameterNodeWrapper`` (:func:`parameterNodeWrapper` with Slicer's serializers, defaults and
      validators; :func:`guiConnectorRange` says which range Slicer's GUI connectors give a ranged widget)
    - ``slicer.i18n`` (``tr``/``translate`` without a catalogue)
    - ``SegmentStatisticsPlugins`` / ``SegmentStatistics`` (:class:`SegmentStatisticsPluginBase`,
      :class:`SegmentStatisticsLogic`)
    - ``SegmentEditorEffects`` (:class:`AbstractScriptedSegmentEditorEffect`) and
      ``qSlicerSegmentationsEditorEffectsPythonQt`` (:class:`qSlicerSegmentEditorScriptedEffect`: a scripted
      effect is loaded as Slicer loads it, as a module named after its folder) with
      ``slicer.qSlicerSegmentEditorEffectFactory``

What is not here is Qt: Widgets, options panels, dialogs and the DICOM browser run only inside Slicer,
and the module self-tests in each module's ``Testing/Python`` exercise them there.

Used by the tests (``Testing/slicer/conftest.py``) and by the review app alike. Importing this module
imports neither ``slicer`` nor ``vtk``: they are imported when a function that needs them is called, so
``import netpet`` stays free of them.
"""

from __future__ import annotations

import enum
import importlib.util
import logging
import os
import pathlib
import sys
import types
import typing
import unittest

#: the Slicer releases whose source the stand-ins follow
SLICER_VERSIONS = ("5.8", "5.10")
#: the NETPET Slicer modules (folders of the repository, each with <name>.py)
MODULE_NAMES = ("NETPETReader", "SUVQuant", "StudyStats")
#: the module logics the application registers that NETPET's Logic classes use (besides Colors): module
#: name -> slicer-core class
MODULE_LOGICS = {"Volumes": "vtkSlicerVolumesLogic", "Segmentations": "vtkSlicerSegmentationsModuleLogic",
                 "SubjectHierarchy": "vtkSlicerSubjectHierarchyModuleLogic", "Tables": "vtkSlicerTablesLogic",
                 "Plots": "vtkSlicerPlotsLogic", "Markups": "vtkSlicerMarkupsLogic"}
#: the module logics :func:`attach` publishes when the application logic holds them: NETPET's (above) and
#: those an application such as trame-slicer's SlicerApp registers besides
PUBLISHED_LOGICS = ("Colors", *MODULE_LOGICS, "Terminologies", "Data", "VolumeRendering", "Sequences")
#: the module logics :func:`attach` registers on an application logic that lacks them (NETPET's Logic classes
#: write tables and plots; trame-slicer's SlicerApp registers neither)
ATTACH_REGISTERS = ("Tables", "Plots")
#: the slice views of Slicer's default layout
SLICE_VIEWS = ("Red", "Yellow", "Green")

logger = logging.getLogger(__name__)


def repositoryRoot():
    """The folder that holds ``netpet/`` and the module folders (a source checkout)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def moduleDirectories(root=None):
    """The module folders of a source checkout, as Slicer's *Additional module paths* would list them."""
    root = root or repositoryRoot()
    return [os.path.join(root, name) for name in MODULE_NAMES if os.path.isfile(os.path.join(root, name, name + ".py"))]


def _slicer():
    import slicer

    if not hasattr(slicer, "vtkMRMLScene"):
        raise ImportError("the installed 'slicer' package is not slicer-core (pip install slicer-core): it has no MRML")
    return slicer


# ---------------------------------------------------------------------------------------------------------
# The application: a scene with its logics
# ---------------------------------------------------------------------------------------------------------

class Runtime:
    """A running scene: ``scene``, ``appLogic`` and ``modules`` (what ``slicer.modules`` exposes).

    :func:`start` makes one and publishes it as ``slicer.mrmlScene`` / ``slicer.modules``; :meth:`close`
    clears the scene and puts back what was published before. :func:`attach` publishes an application's
    existing scene; its :meth:`close` puts back what was published before and leaves the scene to its
    application. Usable as a context manager.
    """

    def __init__(self, scene, appLogic, modules, previous, ownsScene=True):
        self.scene = scene
        self.appLogic = appLogic
        self.modules = modules
        self.ownsScene = ownsScene
        self._previous = previous

    def close(self):
        slicer = _slicer()
        if self._previous is not None:
            slicer.mrmlScene, slicer.modules, slicer.app = self._previous
            self._previous = None
            if not self.ownsScene:
                return
            # the layout logic first lets go of the scene (as the layout manager does when the application closes):
            # clearing a scene it still observes crashes in its view-node callbacks
            for logic in getattr(self.scene, "_netpetRuntime", ((), ()))[1]:
                if logic.IsA("vtkMRMLLayoutLogic"):
                    logic.SetMRMLScene(None)
            self.scene.Clear(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start():
    """A fresh scene with the application logic, the module logics NETPET uses and the default slice views,
    published as ``slicer.mrmlScene`` and ``slicer.modules.<name>.logic()`` (the application's own set-up,
    qSlicerCoreApplication and each module's logic, done without Qt). ``slicer.app`` is ``None``."""
    slicer = _slicer()
    scene = slicer.vtkMRMLScene()
    appLogic = slicer.vtkSlicerApplicationLogic()
    colors = slicer.vtkSlicerColorLogic()
    appLogic.SetColorLogic(colors)
    colors.SetMRMLApplicationLogic(appLogic)
    colors.SetMRMLScene(scene)
    appLogic.SetMRMLScene(scene)
    appLogic.SetModuleLogic("Colors", colors)
    modules = types.SimpleNamespace(colors=types.SimpleNamespace(logic=lambda: colors))
    logics = [colors]
    for name, className in MODULE_LOGICS.items():
        logic = getattr(slicer, className)()
        logic.SetMRMLApplicationLogic(appLogic)
        logic.SetMRMLScene(scene)
        appLogic.SetModuleLogic(name, logic)
        setattr(modules, name.lower(), types.SimpleNamespace(logic=lambda l=logic: l))
        logics.append(logic)
    previous = (getattr(slicer, "mrmlScene", None), getattr(slicer, "modules", None), getattr(slicer, "app", None))
    slicer.mrmlScene, slicer.modules, slicer.app = scene, modules, None
    # the slice orientation presets qSlicerCoreApplication adds to every scene (DefaultSliceView settings), then
    # the layout logic qMRMLLayoutManager owns: it adds the layout node (a singleton) and the views of the default
    # layout, with their orientations (Slicer's vtkMRMLLayoutLogic)
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)
    layoutLogic = slicer.vtkMRMLLayoutLogic()
    layoutLogic.SetMRMLScene(scene)
    logics.append(layoutLogic)
    scene._netpetRuntime = (appLogic, logics, modules)  # the logics live as long as the scene
    for name in SLICE_VIEWS:  # the slice views of the default layout; their composite nodes (as the slice logics)
        sliceNode = scene.GetSingletonNode(name, "vtkMRMLSliceNode")
        if sliceNode is None:
            sliceNode = slicer.vtkMRMLSliceNode()
            sliceNode.SetName(name)
            sliceNode.SetLayoutName(name)
            sliceNode.SetSingletonTag(name)
            scene.AddNode(sliceNode)
        if scene.GetSingletonNode(name, "vtkMRMLSliceCompositeNode") is not None:
            continue
        composite = slicer.vtkMRMLSliceCompositeNode()
        composite.SetLayoutName(name)
        composite.SetSingletonTag(name)
        scene.AddNode(composite)
    return Runtime(scene, appLogic, modules, previous)


def attach(scene, appLogic):
    """Publish an application's existing scene and application logic (e.g. trame-slicer's
    ``SlicerApp().scene`` and ``.app_logic``) as :func:`start` publishes its own: the stand-ins are
    installed (:func:`install`), ``slicer.mrmlScene`` is the scene, ``slicer.app`` is ``None``, and
    ``slicer.modules.<name>.logic()`` is each module logic the application logic holds
    (:data:`PUBLISHED_LOGICS`). The Tables and Plots logics NETPET's Logic classes need are registered on
    the application logic when it lacks them, and kept alive as long as the scene.

    Returns a :class:`Runtime` whose :meth:`Runtime.close` puts back the previously published
    ``slicer.mrmlScene``, ``slicer.modules`` and ``slicer.app``; the scene and its nodes stay, they belong
    to the application.

    Raises
    ------
    ValueError
        ``scene`` is not an MRML scene, or ``appLogic`` is not an application logic of that scene.
    """
    slicer = install()
    if scene is None or not scene.IsA("vtkMRMLScene"):
        raise ValueError(f"attach needs the application's MRML scene, not {type(scene).__name__}.")
    if appLogic is None or not appLogic.IsA("vtkMRMLApplicationLogic"):
        raise ValueError(f"attach needs the application logic of the scene, not {type(appLogic).__name__}.")
    if appLogic.GetMRMLScene() is not scene:
        raise ValueError("The application logic given to attach works on another scene than the one given; pass "
                         "the scene and the application logic of the same application.")
    registered = list(getattr(scene, "_netpetAttached", ()))
    for name in ATTACH_REGISTERS:
        if appLogic.GetModuleLogic(name) is not None:
            continue
        logic = getattr(slicer, MODULE_LOGICS[name])()
        logic.SetMRMLApplicationLogic(appLogic)
        logic.SetMRMLScene(scene)
        appLogic.SetModuleLogic(name, logic)
        registered.append(logic)
    # the application logic holds its module logics by weak pointer: the scene keeps the ones made here alive
    scene._netpetAttached = tuple(registered)
    modules = types.SimpleNamespace()
    for name in PUBLISHED_LOGICS:
        logic = appLogic.GetModuleLogic(name)
        if logic is not None:
            setattr(modules, name.lower(), types.SimpleNamespace(logic=lambda l=logic: l))
    previous = (getattr(slicer, "mrmlScene", None), getattr(slicer, "modules", None), getattr(slicer, "app", None))
    slicer.mrmlScene, slicer.modules, slicer.app = scene, modules, None
    return Runtime(scene, appLogic, modules, previous, ownsScene=False)


def install(moduleDirs=None):
    """Install the stand-ins of the Slicer modules slicer-core lacks (only those that cannot be imported)
    and put the NETPET module folders on ``sys.path``, as Slicer does with its module paths. Idempotent.
    Returns the ``slicer`` package."""
    slicer = _slicer()
    for name, build in _STAND_INS:
        if name in sys.modules or _importable(name):
            continue
        module = build()
        module.__netpet_stand_in__ = True
        sys.modules[name] = module
        if name.startswith("slicer."):
            setattr(slicer, name.split(".", 1)[1], module)
    if not hasattr(slicer, "qSlicerSegmentEditorEffectFactory"):
        slicer.qSlicerSegmentEditorEffectFactory = qSlicerSegmentEditorEffectFactory
    for folder in moduleDirs if moduleDirs is not None else moduleDirectories():
        if folder not in sys.path:
            sys.path.insert(0, folder)
    return slicer


def isStandIn(moduleName):
    """Whether ``sys.modules[moduleName]`` is one of these stand-ins (not Slicer's own)."""
    return bool(getattr(sys.modules.get(moduleName), "__netpet_stand_in__", False))


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------
# slicer.ScriptedLoadableModule (Base/Python/slicer/ScriptedLoadableModule.py)
# ---------------------------------------------------------------------------------------------------------

class ScriptedLoadableModule:
    """Mirrors Base/Python/slicer/ScriptedLoadableModule.py ``ScriptedLoadableModule`` (5.8, 5.10): resets the
    parent's metadata to the template's before the module sets its own, names the module after its class
    and registers ``runTest`` in ``slicer.selfTests``. Not mirrored: the icon (a QIcon)."""

    def __init__(self, parent):
        super().__init__()
        self.parent = parent
        self.moduleName = self.__class__.__name__
        parent.title = ""
        parent.categories = []
        parent.dependencies = []
        parent.contributors = ["Andras Lasso (PerkLab, Queen's University), Steve Pieper (Isomics)"]
        parent.helpText = "\nThis module was created from a template and the help section has not yet been updated.\n"
        parent.acknowledgementText = "\nThis work is supported by NA-MIC, NAC, BIRN, NCIGT, and the Slicer Community.\n"
        slicer = _slicer()
        if not hasattr(slicer, "selfTests"):
            slicer.selfTests = {}
        slicer.selfTests[self.moduleName] = self.runTest

    def resourcePath(self, filename):
        return os.path.join(os.path.dirname(self.parent.path), "Resources", filename)

    def getDefaultModuleDocumentationLink(self, docPage=None):
        """As Slicer's, with the documentation URL the application would give (no application here)."""
        base = "https://slicer.readthedocs.io/en/latest/"
        url = base + docPage if docPage else f"{base}user_guide/modules/{self.moduleName.lower()}.html"
        return f'<p>For more information see the <a href="{url}">online documentation</a>.</p>'

    def runTest(self, msec=100, **kwargs):
        module = importlib.import_module(self.__module__)
        className = self.moduleName + "Test"
        try:
            testCaseClass = getattr(module, className)
        except AttributeError:
            raise AssertionError(f"Test case class not found: {self.__module__}.{className} ") from None
        testCase = testCaseClass()
        testCase.messageDelay = msec
        testCase.runTest(**kwargs)


class ScriptedLoadableModuleWidget:
    """Mirrors ``ScriptedLoadableModuleWidget``'s naming only: Widgets need Qt and the application, which
    slicer-core does not have; they are not exercised outside Slicer (``setup`` does nothing here)."""

    def __init__(self, parent=None):
        super().__init__()
        self.moduleName = self.__class__.__name__
        if self.moduleName.endswith("Widget"):
            self.moduleName = self.moduleName[:-6]
        self.developerMode = False
        self.parent = parent
        self.layout = parent.layout() if parent is not None and hasattr(parent, "layout") else None

    def resourcePath(self, filename):
        module = sys.modules.get(self.moduleName)
        return os.path.join(os.path.dirname(module.__file__), "Resources", filename)

    def cleanup(self):
        pass

    def setup(self):
        pass


class ScriptedLoadableModuleLogic:
    """Mirrors ``ScriptedLoadableModuleLogic`` (5.8, 5.10): module name from the class name without "Logic";
    the parameter node is the scene's singleton scripted-module node tagged with it (or, with
    ``isSingletonParameterNode = False``, the first node whose ModuleName attribute is the module's)."""

    def __init__(self, parent=None):
        super().__init__()
        self.moduleName = self.__class__.__name__
        if self.moduleName.endswith("Logic"):
            self.moduleName = self.moduleName[:-5]
        self.isSingletonParameterNode = True

    def getParameterNode(self):
        slicer = _slicer()
        if self.isSingletonParameterNode:
            parameterNode = slicer.mrmlScene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
            if parameterNode:
                if parameterNode.GetAttribute("ModuleName") != self.moduleName:
                    parameterNode.SetAttribute("ModuleName", self.moduleName)
                return parameterNode
        else:
            for parameterNode in self.getAllParameterNodes():
                return parameterNode
        return slicer.mrmlScene.AddNode(self.createParameterNode())

    def getAllParameterNodes(self):
        slicer = _slicer()
        found = []
        for index in range(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode")):
            parameterNode = slicer.mrmlScene.GetNthNodeByClass(index, "vtkMRMLScriptedModuleNode")
            if parameterNode.GetAttribute("ModuleName") == self.moduleName:
                found.append(parameterNode)
        return found

    def createParameterNode(self):
        slicer = _slicer()
        if slicer.mrmlScene is None:
            return None
        node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)
        if self.isSingletonParameterNode:
            node.SetSingletonTag(self.moduleName)
        node.SetAttribute("ModuleName", self.moduleName)
        node.SetName(slicer.mrmlScene.GenerateUniqueName(self.moduleName))
        return node


class ScriptedLoadableModuleTest(unittest.TestCase):
    """Mirrors ``ScriptedLoadableModuleTest``: a TestCase with ``delayDisplay`` (logged here: no window)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.enableScreenshots = False
        self.screenshotScaleFactor = 1.0

    def delayDisplay(self, message, requestedDelay=None, msec=None):
        logger.info(message)

    def takeScreenshot(self, name, description, type=-1):
        self.delayDisplay(description)

    def runTest(self):
        logger.warning("No test is defined in " + self.__class__.__name__)


def _buildScriptedLoadableModule():
    module = types.ModuleType("slicer.ScriptedLoadableModule", "Stand-in (netpet.slicer_runtime)")
    module.__all__ = ["ScriptedLoadableModule", "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleLogic",
                      "ScriptedLoadableModuleTest"]
    for name in module.__all__:
        setattr(module, name, globals()[name])
    return module


def _buildI18n():
    """slicer.i18n (Base/Python/slicer/i18n.py): ``tr`` and ``translate`` return the source text (no catalogue)."""
    module = types.ModuleType("slicer.i18n", "Stand-in (netpet.slicer_runtime)")
    module.tr = lambda text: text
    module.translate = lambda context, text: text
    module.getContext = lambda sourceFile: os.path.splitext(os.path.basename(sourceFile))[0]
    return module


# ---------------------------------------------------------------------------------------------------------
# slicer.parameterNodeWrapper (Base/Python/slicer/parameterNodeWrapper/: wrapper.py, serializers.py,
# validators.py, default.py, guiConnectors.py)
# ---------------------------------------------------------------------------------------------------------

class Validator:
    """validators.py ``Validator``: ``validate(value)`` raises on an invalid value."""

    def validate(self, value):
        raise NotImplementedError


class NotNone(Validator):
    def validate(self, value):
        if value is None:
            raise ValueError("Value must not be None")


class IsInstance(Validator):
    def __init__(self, classtype):
        self.classtype = classtype

    def validate(self, value):
        if value is not None and not isinstance(value, self.classtype):
            raise TypeError(f"Value must be of type '{self.classtype}', is type '{type(value)}' value '{value}'")


class IsNone(Validator):
    def validate(self, value):
        if value is not None:
            raise ValueError("Value must be None")


class WithinRange(Validator):
    def __init__(self, minimum, maximum):
        self.minimum = minimum
        self.maximum = maximum

    def __repr__(self):
        return f"WithinRange({self.minimum}, {self.maximum})"

    def validate(self, value):
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"Value must be within range [{self.minimum}, {self.maximum}], is {value}")


class Minimum(Validator):
    def __init__(self, minimum):
        self.minimum = minimum

    def validate(self, value):
        if value < self.minimum:
            raise ValueError(f"Value must be greater than {self.minimum}, is {value}")


class Maximum(Validator):
    def __init__(self, maximum):
        self.maximum = maximum

    def validate(self, value):
        if value > self.maximum:
            raise ValueError(f"Value must be greater than {self.maximum}, is {value}")


class Choice(Validator):
    def __init__(self, choices):
        self.choices = choices

    def __repr__(self):
        return f"Choice({self.choices})"

    def validate(self, value):
        if value not in self.choices:
            raise ValueError(f"Value is {value}, but must be in one of the following: {self.choices}")


class Exclude(Validator):
    def __init__(self, excludedValues):
        self.excludedValues = excludedValues

    def validate(self, value):
        if value in self.excludedValues:
            raise ValueError(f"Value is {value}, but must not be an excluded value: excluded values "
                             f"{self.excludedValues}")


class Default:
    """default.py ``Default``: the default value of a parameter (or a generator of it)."""

    def __init__(self, value=None, *, generator=None):
        self._value = value
        self._generator = generator

    @property
    def value(self):
        return self._generator() if self._generator else self._value

    def __repr__(self):
        return f"Default(value={self._value}, generator={self._generator})"


class Decimals:
    """guiConnectors.py ``Decimals`` (a GUI annotation)."""

    def __init__(self, value):
        self.value = value


class SingleStep:
    """guiConnectors.py ``SingleStep`` (a GUI annotation)."""

    def __init__(self, value):
        self.value = value


def _splitAnnotations(datatype):
    """util.py ``splitAnnotations``: (the bare type, [annotations]) of a possibly Annotated[...] type."""
    annotations = []
    while typing.get_origin(datatype) is typing.Annotated:
        annotations = list(datatype.__metadata__) + annotations
        datatype = typing.get_args(datatype)[0]
    return datatype, annotations


def _first(annotations, kind):
    return next((a for a in annotations if isinstance(a, kind)), None)


class _Serializer:
    """serializers.py's serializers for the types the NETPET parameter nodes use: int, float, str, bool,
    pathlib paths, MRML nodes, enums, Optional/Union and lists; each writes exactly the parameters (and node
    references) Slicer's writes, and validates as Slicer's ValidatedSerializer does."""

    def __init__(self, kind, type_, validators, inner=None):
        self.kind, self.type, self.validators, self.inner = kind, type_, validators, inner

    def default(self):
        """The default of a field declared without one (each serializer's ``default``)."""
        if self.kind == "path":
            return self.type()  # pathlib.Path() is "."
        if self.kind == "enum":
            return next(iter(self.type))  # the first member
        if self.kind == "union":  # Optional[X] defaults to None, another Union to its first type's default
            return None if len(self.inner) == 2 and self.inner[1].kind == "none" else self.inner[0].default()
        return {"number": 0, "str": "", "bool": False, "none": None, "node": None, "list": []}[self.kind]

    def validate(self, value):
        for validator in self.validators:
            validator.validate(value)

    def isIn(self, node, name):
        if self.kind == "union":
            return any(s.isIn(node, f"{name}_{i}") for i, s in enumerate(self.inner))
        if self.kind == "list":
            return node.HasParameter(f"{name}_len")
        return node.HasParameter(name)

    def write(self, node, name, value):
        self.validate(value)
        if self.kind in ("number", "str", "path"):
            node.SetParameter(name, str(value))
        elif self.kind == "bool":
            node.SetParameter(name, "True" if value else "False")
        elif self.kind == "none":
            node.SetParameter(name, "True")
        elif self.kind == "enum":
            node.SetParameter(name, value.name)
        elif self.kind == "node":
            node.SetParameter(name, "")
            node.SetNodeReferenceID(name, value.GetID() if value is not None else None)
        elif self.kind == "list":
            old = self.read(node, name) if self.isIn(node, name) else []
            for index, item in enumerate(value):
                self.inner[0].write(node, f"{name}_{index}", item)
            node.SetParameter(f"{name}_len", str(len(value)))
            for index in range(len(value), len(old)):
                self.inner[0].remove(node, f"{name}_{index}")
        elif self.kind == "union":
            for index, serializer in enumerate(self.inner):
                if serializer.accepts(value):
                    self.remove(node, name)
                    serializer.write(node, f"{name}_{index}", value)
                    return
            raise TypeError(f"Unable to write value '{value}' of type '{type(value)}'")

    def accepts(self, value):
        try:
            self.validate(value)
        except (TypeError, ValueError):
            return False
        return True

    def read(self, node, name):
        if self.kind == "number":
            return self.type(node.GetParameter(name))
        if self.kind == "str":
            return node.GetParameter(name)
        if self.kind == "path":
            return self.type(node.GetParameter(name))
        if self.kind == "bool":
            return node.GetParameter(name) == "True"
        if self.kind == "none":
            return None
        if self.kind == "enum":
            key = node.GetParameter(name)
            try:
                return self.type[key]
            except KeyError as exc:
                raise ValueError(f"Found {key!r} in parameter node but it is not a name in {self.type!r}") from exc
        if self.kind == "node":
            return node.GetNodeReference(name)
        if self.kind == "list":
            return [self.inner[0].read(node, f"{name}_{i}") for i in range(int(node.GetParameter(f"{name}_len") or 0))]
        for index, serializer in enumerate(self.inner):
            if serializer.isIn(node, f"{name}_{index}"):
                return serializer.read(node, f"{name}_{index}")
        raise KeyError(f"Unable to find value for name: {name}")

    def remove(self, node, name):
        if self.kind == "union":
            for index, serializer in enumerate(self.inner):
                serializer.remove(node, f"{name}_{index}")
            return
        if self.kind == "list":
            for index in range(int(node.GetParameter(f"{name}_len") or 0)):
                self.inner[0].remove(node, f"{name}_{index}")
            node.UnsetParameter(f"{name}_len")
            return
        node.UnsetParameter(name)
        if self.kind == "node":
            node.RemoveNodeReferenceIDs(name)


def _createSerializer(type_, annotations):
    """serializers.py ``createSerializer``: the serializer of a bare type, with the annotations' validators
    after the type's own (NotNone, IsInstance); returns (serializer, the annotations left)."""
    validators = [a() if isinstance(a, type) else a for a in annotations
                  if isinstance(a, Validator) or (isinstance(a, type) and issubclass(a, Validator))]
    rest = [a for a in annotations if not (isinstance(a, Validator) or (isinstance(a, type) and issubclass(a, Validator)))]
    return _serializerOf(type_, validators), rest


def _serializerOf(type_, validators=()):
    slicer = _slicer()
    validators = list(validators)
    if type_ in (int, float):
        return _Serializer("number", type_, [NotNone(), IsInstance((int, float) if type_ is float else int)] + validators)
    if type_ is str:
        return _Serializer("str", str, [NotNone(), IsInstance(str)] + validators)
    if type_ is bool:
        return _Serializer("bool", bool, [NotNone(), IsInstance(bool)] + validators)
    if type_ in (pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePath, pathlib.PurePosixPath,
                 pathlib.PureWindowsPath):
        return _Serializer("path", type_, [NotNone(), IsInstance(type_)] + validators)
    if type_ is type(None):
        return _Serializer("none", type_, [IsNone()] + validators)
    if isinstance(type_, type) and issubclass(type_, enum.Enum):
        if len(type_) == 0:
            raise ValueError("Cannot serialize empty Enum.")
        return _Serializer("enum", type_, [IsInstance(type_)] + validators)
    if isinstance(type_, type) and issubclass(type_, slicer.vtkMRMLNode):
        return _Serializer("node", type_, [IsInstance(type_)] + validators)
    origin = typing.get_origin(type_)
    if origin is list:
        element, _rest = _createSerializer(*_splitAnnotations(typing.get_args(type_)[0]))
        return _Serializer("list", list, validators, [element])
    if origin is typing.Union:
        inner = []
        for argument in typing.get_args(type_):
            bare, annotations = _splitAnnotations(argument)
            inner.append(_createSerializer(bare, annotations)[0])
        return _Serializer("union", type_, validators, inner)
    raise TypeError(f"The parameter-node stand-in cannot serialize {type_!r} (netpet.slicer_runtime supports int, "
                    "float, str, bool, pathlib paths, MRML nodes, enums, lists and Optional/Union of these)")


class _ParameterInfo:
    def __init__(self, basename, serializer, default, unalteredType):
        self.basename, self.serializer, self.default, self.unalteredType = basename, serializer, default, unalteredType


def _makeProperty(name):
    def getter(self):
        info = self.allParameters[name]
        if not info.serializer.isIn(self.parameterNode, name):
            info.serializer.write(self.parameterNode, name, info.default.value)
        return info.serializer.read(self.parameterNode, name)

    def setter(self, value):
        self.allParameters[name].serializer.write(self.parameterNode, name, value)

    return property(getter, setter)


def _initMethod(self, parameterNode, prefix=None):
    """wrapper.py ``_initMethod``: every parameter missing from the node is written with its default."""
    self.parameterNode = parameterNode
    self._parameterGUIs = {}
    for info in self.allParameters.values():
        if not info.serializer.isIn(parameterNode, info.basename):
            info.serializer.write(parameterNode, info.basename, info.default.value)


def _needsQt(self, *args, **kwargs):
    raise RuntimeError("Binding a parameter node to widgets needs Slicer's Qt: Widgets run only inside Slicer "
                       "(netpet.slicer_runtime has no GUI connectors; see guiConnectorRange for their ranges).")


def _disconnectGui(self, tag):
    self._parameterGUIs.pop(tag, None)


def parameterNodeWrapper(classtype=None):
    """wrapper.py ``parameterNodeWrapper``: typed properties read from and written to the scripted-module node
    (parameters named after the fields, node references for MRML nodes, defaults written on wrapping,
    validators checked on every write). ``connectGui``/``connectParametersToGui`` need Qt and raise here."""

    def wrap(cls):
        members = typing.get_type_hints(cls, include_extras=True)
        allParameters = {}
        for name, nametype in members.items():
            membertype, annotations = _splitAnnotations(nametype)
            serializer, annotations = _createSerializer(membertype, annotations)
            if hasattr(cls, name):
                default = Default(getattr(cls, name))
            else:
                defaults = [a for a in annotations if isinstance(a, Default)]
                annotations = [a for a in annotations if not isinstance(a, Default)]
                default = defaults[0] if defaults else Default(serializer.default())
            unused = [a for a in annotations if not isinstance(a, (Decimals, SingleStep))]
            if unused:
                logger.warning(f"Unused annotations: {unused}")
            allParameters[name] = _ParameterInfo(name, serializer, default, nametype)
            setattr(cls, name, _makeProperty(name))
        cls.allParameters = allParameters
        cls._is_parameter_node_wrapper = True
        cls.__init__ = _initMethod
        cls.default = lambda self, name: self.allParameters[name].default
        cls.dataType = staticmethod(lambda name: allParameters[name].unalteredType)
        cls.getValue = lambda self, name: getattr(self, name)
        cls.setValue = lambda self, name, value: setattr(self, name, value)
        cls.connectGui = _needsQt
        cls.connectParametersToGui = _needsQt
        cls.disconnectGui = _disconnectGui
        cls.StartModify = lambda self: self.parameterNode.StartModify()
        cls.EndModify = lambda self, wasModified: self.parameterNode.EndModify(wasModified)
        cls.AddObserver = lambda self, event, callback, priority=0.0: self.parameterNode.AddObserver(event, callback,
                                                                                                     priority)
        cls.RemoveObserver = lambda self, tag: self.parameterNode.RemoveObserver(tag)
        cls.Modified = lambda self: self.parameterNode.Modified()
        return cls

    return wrap if classtype is None else wrap(classtype)


def isParameterNodeWrapper(classOrObj):
    return getattr(classOrObj, "_is_parameter_node_wrapper", False)


#: the widget classes whose value range Slicer's GUI connectors set (guiConnectors.py)
RANGED_WIDGETS = ("QSpinBox", "QSlider", "QDoubleSpinBox", "ctkSliderWidget")


def guiConnectorRange(widgetClassName, datatype):
    """The (minimum, maximum) Slicer's GUI connector sets on a ranged widget bound to ``datatype``, whatever
    the .ui says (guiConnectors.py ``QSliderOrSpinBoxToIntConnector`` and
    ``QDoubleSpinBoxCtkSliderWidgetToFloatConnector``, 5.8 and 5.10): ``WithinRange`` or ``Minimum``/
    ``Maximum`` where declared, otherwise -2**31..2**31-1 for an int and -inf..inf for a float.

    Raises
    ------
    TypeError
        The widget cannot show the type (Slicer finds no connector).
    RuntimeError
        A slider bound to an unbounded type (Slicer refuses to connect it).
    """
    base, annotations = _splitAnnotations(datatype)
    if widgetClassName in ("QSlider", "QSpinBox"):
        if base is not int:
            raise TypeError(f"Unable to create GUI connector from datatype '{datatype}' to widget type "
                            f"'{widgetClassName}'")
        lowest, highest = -2 ** 31, 2 ** 31 - 1
    elif widgetClassName in ("QDoubleSpinBox", "ctkSliderWidget"):
        if base is not float:
            raise TypeError(f"Unable to create GUI connector from datatype '{datatype}' to widget type "
                            f"'{widgetClassName}'")
        lowest, highest = float("-inf"), float("inf")
    else:
        raise TypeError(f"{widgetClassName} is not a ranged widget ({', '.join(RANGED_WIDGETS)})")
    withinRange = _first(annotations, WithinRange)
    minimum, maximum = _first(annotations, Minimum), _first(annotations, Maximum)
    bounded = withinRange is not None or (minimum is not None and maximum is not None)
    if widgetClassName in ("QSlider", "ctkSliderWidget") and not bounded:
        raise RuntimeError("Cannot have a connection to ctkSliderWidget where the float types is unbounded.")
    if withinRange is not None:
        return withinRange.minimum, withinRange.maximum
    return (minimum.minimum if minimum is not None else lowest, maximum.maximum if maximum is not None else highest)


def _buildParameterNodeWrapper():
    module = types.ModuleType("slicer.parameterNodeWrapper", "Stand-in (netpet.slicer_runtime)")
    for name in ("parameterNodeWrapper", "isParameterNodeWrapper", "Default", "Validator", "NotNone", "IsInstance",
                 "WithinRange", "Minimum", "Maximum", "Choice", "Exclude", "Decimals", "SingleStep"):
        setattr(module, name, globals()[name])
    module.SlicerParameterNamePropertyName = "SlicerParameterName"
    return module


# ---------------------------------------------------------------------------------------------------------
# Segment Statistics (Modules/Scripted/SegmentStatistics/SegmentStatisticsPlugins/SegmentStatisticsPluginBase.py
# and Modules/Scripted/SegmentStatistics/SegmentStatistics.py)
# ---------------------------------------------------------------------------------------------------------

class SegmentStatisticsPluginBase:
    """Mirrors SegmentStatisticsPluginBase.py (5.8, 5.10). What plugins depend on:

    - ``__init__`` sets ``name``, ``title``, ``keys`` and ``defaultKeys`` **on the instance** (empty), hiding
      class attributes of the same names: a plugin sets its own after calling it, as Slicer's bundled
      plugins do;
    - ``createMeasurementInfo(name, title, description, units, ...)``: ``title`` (the translated name)
      is required;
    - keys are enabled per plugin class in the parameter node (``<Class>.<key>.enabled``), defaults from
      ``defaultKeys``.

    Not mirrored: the options widget (Qt) that ``setParameterNode`` builds in Slicer.
    """

    @staticmethod
    def createCodedEntry(codeValue, codingScheme, codeMeaning, returnAsString=False):
        slicer = _slicer()
        entry = slicer.vtkCodedEntry()
        entry.SetValueSchemeMeaning(codeValue, codingScheme, codeMeaning)
        return entry if not returnAsString else entry.GetAsString()

    @staticmethod
    def createMeasurementInfo(name, title, description, units, quantityDicomCode=None, unitsDicomCode=None,
                              measurementMethodDicomCode=None, derivationDicomCode=None, componentNames=None):
        info = {"name": name, "title": title, "description": description, "units": units}
        if componentNames:
            info["componentNames"] = componentNames
        if quantityDicomCode:
            info["DICOM.QuantityCode"] = quantityDicomCode
        if unitsDicomCode:
            info["DICOM.UnitsCode"] = unitsDicomCode
        if measurementMethodDicomCode:
            info["DICOM.MeasurementMethodCode"] = measurementMethodDicomCode
        if derivationDicomCode:
            info["DICOM.DerivationCode"] = derivationDicomCode
        return info

    def __init__(self):
        self.name = ""
        self.title = ""
        self.keys = []
        self.defaultKeys = []
        self.requestedKeysCheckboxes = {}
        self.parameterNode = None
        self.parameterNodeObserver = None

    def computeStatistics(self, segmentID):
        pass

    def getMeasurementInfo(self, key):
        if key not in self.keys:
            return None
        return self.createMeasurementInfo(key, key, key, None)

    def setDefaultParameters(self, parameterNode, overwriteExisting=False):
        pluginName = self.__class__.__name__
        if not parameterNode.GetParameter(pluginName + ".enabled"):
            parameterNode.SetParameter(pluginName + ".enabled", str(True))
        for key in self.keys:
            parameter = self.toLongKey(key) + ".enabled"
            if not parameterNode.GetParameter(parameter) or overwriteExisting:
                parameterNode.SetParameter(parameter, str(key in self.defaultKeys))

    def getRequestedKeys(self):
        if not self.parameterNode:
            return ()
        return [key for key in self.keys if self.parameterNode.GetParameter(self.toLongKey(key) + ".enabled") == "True"]

    def toLongKey(self, key):
        return self.__class__.__name__ + "." + key

    def toShortKey(self, key):
        pluginName = self.__class__.__name__
        return key[len(pluginName) + 1:] if key.startswith(pluginName + ".") else ""

    def setParameterNode(self, parameterNode):
        if self.parameterNode == parameterNode:
            return
        self.parameterNode = parameterNode
        if self.parameterNode:
            self.setDefaultParameters(self.parameterNode)

    def getParameterNode(self):
        return self.parameterNode


class SegmentStatisticsLogic(ScriptedLoadableModuleLogic):
    """Mirrors ``SegmentStatisticsLogic`` in SegmentStatistics.py (5.8, 5.10): ``registerPlugin`` takes an
    instance and keeps its **class**; every logic makes its own instances (``self.plugins``), which is why
    a plugin's name and keys must be set on the instance; ``computeStatistics`` asks every enabled plugin
    for every (visible) segment and stores values and measurement info under ``<Class>.<key>``.

    Slicer's bundled plugins (Labelmap, Scalar Volume, Closed Surface) are not registered here.
    Not mirrored: ``exportToTable``'s column naming and ``showTable`` (needs the layout).
    """

    registeredPlugins = []

    @staticmethod
    def registerPlugin(plugin):
        if not isinstance(plugin, SegmentStatisticsPluginBase):
            return
        for key in plugin.keys:
            if key.count(".") > 0:
                logger.warning("Plugin keys should not contain extra '.' as it might mix pluginname.measurementkey in "
                               "the parameter node")
        if plugin.__class__ not in SegmentStatisticsLogic.registeredPlugins:
            SegmentStatisticsLogic.registeredPlugins.append(plugin.__class__)
        else:
            logger.warning("SegmentStatisticsLogic.registerPlugin will not register plugin because another plugin "
                           "with the same name has already been registered")

    def __init__(self, parent=None):
        ScriptedLoadableModuleLogic.__init__(self, parent)
        self.plugins = [x() for x in SegmentStatisticsLogic.registeredPlugins]
        self.isSingletonParameterNode = False
        self.parameterNode = None
        self.keys = ["Segment"]
        self.notAvailableValueString = ""
        self.reset()

    def getParameterNode(self):
        if not self.parameterNode:
            self.setParameterNode(ScriptedLoadableModuleLogic.getParameterNode(self))
        return self.parameterNode

    def setParameterNode(self, parameterNode):
        if self.parameterNode == parameterNode:
            return
        self.setDefaultParameters(parameterNode)
        self.parameterNode = parameterNode
        for plugin in self.plugins:
            plugin.setParameterNode(parameterNode)

    def setDefaultParameters(self, parameterNode):
        for plugin in self.plugins:
            plugin.setDefaultParameters(parameterNode)
        if not parameterNode.GetParameter("visibleSegmentsOnly"):
            parameterNode.SetParameter("visibleSegmentsOnly", str(True))

    def getStatistics(self):
        params = self.getParameterNode()
        if not hasattr(params, "statistics"):
            params.statistics = {"SegmentIDs": [], "MeasurementInfo": {}}
        return params.statistics

    def reset(self):
        self.keys = ["Segment"]
        for plugin in self.plugins:
            self.keys += [plugin.toLongKey(k) for k in plugin.keys]
        self.getParameterNode().statistics = {"SegmentIDs": [], "MeasurementInfo": {}}

    def computeStatistics(self):
        import vtk

        slicer = _slicer()
        self.reset()
        segmentationNode = slicer.mrmlScene.GetNodeByID(self.getParameterNode().GetParameter("Segmentation"))
        visibleSegmentIds = vtk.vtkStringArray()
        if self.getParameterNode().GetParameter("visibleSegmentsOnly") == "True":
            segmentationNode.GetDisplayNode().GetVisibleSegmentIDs(visibleSegmentIds)
        else:
            segmentationNode.GetSegmentation().GetSegmentIDs(visibleSegmentIds)
        for index in range(visibleSegmentIds.GetNumberOfValues()):
            self.updateStatisticsForSegment(visibleSegmentIds.GetValue(index))

    def updateStatisticsForSegment(self, segmentID):
        slicer = _slicer()
        segmentationNode = slicer.mrmlScene.GetNodeByID(self.getParameterNode().GetParameter("Segmentation"))
        segment = segmentationNode.GetSegmentation().GetSegment(segmentID)
        if not segment:
            return
        statistics = self.getStatistics()
        if segmentID not in statistics["SegmentIDs"]:
            statistics["SegmentIDs"].append(segmentID)
        statistics[segmentID, "Segment"] = segment.GetName()
        for plugin in self.plugins:
            pluginName = plugin.__class__.__name__
            if self.getParameterNode().GetParameter(pluginName + ".enabled") == "True":
                stats = plugin.computeStatistics(segmentID)
                for key in stats:
                    statistics[segmentID, pluginName + "." + key] = stats[key]
                    statistics["MeasurementInfo"][pluginName + "." + key] = plugin.getMeasurementInfo(key)

    def getPluginByKey(self, key):
        for plugin in self.plugins:
            if plugin.toShortKey(key) in plugin.keys:
                return plugin
        return None

    def getMeasurementInfo(self, key):
        plugin = self.getPluginByKey(key)
        return plugin.getMeasurementInfo(plugin.toShortKey(key)) if plugin else None


def _buildSegmentStatisticsPlugins():
    module = types.ModuleType("SegmentStatisticsPlugins", "Stand-in (netpet.slicer_runtime)")
    module.SegmentStatisticsPluginBase = SegmentStatisticsPluginBase
    module.__all__ = ["SegmentStatisticsPluginBase"]
    return module


def _buildSegmentStatistics():
    module = types.ModuleType("SegmentStatistics", "Stand-in (netpet.slicer_runtime)")
    module.SegmentStatisticsLogic = SegmentStatisticsLogic
    module.SegmentStatisticsPluginBase = SegmentStatisticsPluginBase
    return module


# ---------------------------------------------------------------------------------------------------------
# Segment Editor effects (Modules/Loadable/Segmentations/EditorEffects: qSlicerSegmentEditorScriptedEffect.cxx,
# qSlicerSegmentEditorAbstractEffect.cxx, qSlicerSegmentEditorEffectFactory.cxx,
# Python/SegmentEditorEffects/AbstractScriptedSegmentEditorEffect.py; Base/QTCore/qSlicerScriptedUtils.cxx)
# ---------------------------------------------------------------------------------------------------------

class qSlicerSegmentEditorEffectFactory:
    """qSlicerSegmentEditorEffectFactory.cxx: the singleton every effect registers with; an effect whose name
    is already registered is refused."""

    _instance = None

    def __init__(self):
        self._effects = []

    @classmethod
    def instance(cls):
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def registerEffect(self, effect):
        if effect is None or any(e.name == effect.name for e in self._effects):
            return False
        self._effects.append(effect)
        return True

    def registeredEffects(self):
        return list(self._effects)


def loadSourceAsModule(moduleName, path, version=SLICER_VERSIONS[-1]):
    """qSlicerScriptedUtils::loadSourceAsModule: run ``path`` as the module ``moduleName``.

    5.10 (Python 3.12, importlib): a new module from the file is put in ``sys.modules[moduleName]``,
    replacing whatever was there (a package of that name is lost). 5.8 (Python 3.9,
    ``imp.load_source``): the file runs inside the module already in ``sys.modules`` if there is one (a
    package of that name gets the file's ``__file__``/``__spec__`` and names), else in a new one.
    """
    spec = importlib.util.spec_from_file_location(moduleName, path)
    existing = sys.modules.get(moduleName)
    if version == "5.8" and existing is not None:
        module = existing
        module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, path
    else:
        module = importlib.util.module_from_spec(spec)
        sys.modules[moduleName] = module
    spec.loader.exec_module(module)
    return module


class qSlicerSegmentEditorScriptedEffect:
    """The C++ adaptor of a scripted effect, qSlicerSegmentEditorScriptedEffect (+ the parts of
    qSlicerSegmentEditorAbstractEffect effects call through ``self.scriptedEffect``).

    ``setPythonSource(path)`` loads the effect as Slicer does: the module name is the **file's folder**, the
    class name the file's name (+ "Effect"); a module of that name already in ``sys.modules`` holding the
    class is reused, otherwise the file is loaded with :func:`loadSourceAsModule` (which replaces a module
    of that name); the instance is published as ``slicer.<folder>``.

    Effect parameters are attributes ``<effect name>.<parameter>`` of the Segment Editor node
    (``parameterSetNode()``), as qSlicerSegmentEditorAbstractEffect stores them; ``xyToRas`` maps view
    coordinates through the slice node's XYToRAS, as vtkSlicerSegmentEditorLogic::XyzToRas does.
    Not mirrored: options widgets, cursors, rendering (Qt).
    """

    def __init__(self, parent=None, version=SLICER_VERSIONS[-1]):
        self.name = "UnnamedScriptedEffect"
        self.perSegment = True
        self.requireSegments = True
        self._version = version
        self._self = None
        self._source = ""
        self._parameterSetNode = None
        self.undoStatesSaved = 0

    def setPythonSource(self, path):
        if not (path.endswith(".py") or path.endswith(".pyc")):
            return False
        moduleName = os.path.basename(os.path.dirname(path))
        className = os.path.splitext(os.path.basename(path))[0]
        if not className.endswith("Effect"):
            className += "Effect"
        module = sys.modules.get(moduleName)
        if self._version == "5.8" and module is None:  # PyImport_AddModule: an empty module of that name
            module = sys.modules[moduleName] = types.ModuleType(moduleName)
        classToInstantiate = getattr(module, className, None) if module is not None else None
        if classToInstantiate is None:
            module = loadSourceAsModule(moduleName, path, self._version)
            if self._version != "5.8":
                module = sys.modules[moduleName]  # re-fetched after loading, as 5.10 does
            classToInstantiate = getattr(module, className, None)
        if classToInstantiate is None:
            raise RuntimeError(f"qSlicerSegmentEditorScriptedEffect::setPythonSource - Failed to load segment editor "
                               f"scripted effect: class {className} was not found in {path}")
        self._self = classToInstantiate(self)
        self._source = path
        setattr(_slicer(), moduleName, self._self)
        return True

    def pythonSource(self):
        return self._source

    def self(self):
        return self._self

    # -- the Segment Editor node and the effect's parameters (qSlicerSegmentEditorAbstractEffect.cxx) -----
    def parameterSetNode(self):
        return self._parameterSetNode

    def setParameterSetNode(self, node):
        """The Segment Editor widget gives every effect its node, then asks it for its defaults."""
        self._parameterSetNode = node
        if node is not None and hasattr(self._self, "setMRMLDefaults"):
            self._self.setMRMLDefaults()

    def _attribute(self, name):
        return f"{self.name}.{name}"

    def parameterDefined(self, name):
        return self._parameterSetNode.GetAttribute(self._attribute(name)) is not None

    def parameter(self, name):
        value = self._parameterSetNode.GetAttribute(self._attribute(name))
        if value is None:
            value = self._parameterSetNode.GetAttribute(name)
        return value if value is not None else ""

    def integerParameter(self, name):
        text = self.parameter(name)
        return int(text) if text else 0

    def doubleParameter(self, name):
        text = self.parameter(name)
        return float(text) if text else 0.0

    def setParameter(self, name, value):
        self._parameterSetNode.SetAttribute(self._attribute(name), str(value))

    def setParameterDefault(self, name, value):
        if not self.parameterDefined(name):
            self.setParameter(name, value)

    def saveStateForUndo(self):
        self.undoStatesSaved += 1

    # -- coordinates (vtkSlicerSegmentEditorLogic::XyzToRas through the slice node) ---------------------
    def xyToRas(self, xy, viewWidget):
        slicer = _slicer()
        ras = [0.0, 0.0, 0.0]
        slicer.vtkSlicerSegmentEditorLogic.XyzToRas([float(xy[0]), float(xy[1]), 0.0], ras, viewWidget.mrmlSliceNode())
        return ras

    def rasToXy(self, ras, viewWidget):
        import vtk

        rasToXy = vtk.vtkMatrix4x4()
        rasToXy.DeepCopy(viewWidget.mrmlSliceNode().GetXYToRAS())
        rasToXy.Invert()
        xyzw = rasToXy.MultiplyPoint((ras[0], ras[1], ras[2], 1.0))
        return [xyzw[0], xyzw[1]]


class SliceWidget:
    """The part of qMRMLSliceWidget a scripted effect uses: its class name and its slice node."""

    def __init__(self, sliceNode):
        self._sliceNode = sliceNode

    def className(self):
        return "qMRMLSliceWidget"

    def mrmlSliceNode(self):
        return self._sliceNode


class AbstractScriptedSegmentEditorEffect:
    """Mirrors Python/SegmentEditorEffects/AbstractScriptedSegmentEditorEffect.py: keeps the adaptor as
    ``self.scriptedEffect``, registers it with the effect factory, and converts coordinates through it
    (points as (x, y) pairs instead of QPoint/QVector3D)."""

    def __init__(self, scriptedEffect):
        self.scriptedEffect = scriptedEffect

    def register(self):
        qSlicerSegmentEditorEffectFactory.instance().registerEffect(self.scriptedEffect)

    def cleanup(self):
        pass

    def xyToRas(self, xy, viewWidget):
        return list(self.scriptedEffect.xyToRas((xy[0], xy[1]), viewWidget))

    def rasToXy(self, ras, viewWidget):
        return list(self.scriptedEffect.rasToXy(ras, viewWidget))


def _buildSegmentEditorEffects():
    module = types.ModuleType("SegmentEditorEffects", "Stand-in (netpet.slicer_runtime)")
    module.AbstractScriptedSegmentEditorEffect = AbstractScriptedSegmentEditorEffect
    module.__all__ = ["AbstractScriptedSegmentEditorEffect"]
    return module


def _buildEditorEffectsPythonQt():
    module = types.ModuleType("qSlicerSegmentationsEditorEffectsPythonQt", "Stand-in (netpet.slicer_runtime)")
    module.qSlicerSegmentEditorScriptedEffect = qSlicerSegmentEditorScriptedEffect
    module.qSlicerSegmentEditorEffectFactory = qSlicerSegmentEditorEffectFactory
    return module


#: (module name, builder), in the order the modules import each other
_STAND_INS = (
    ("slicer.i18n", _buildI18n),
    ("slicer.ScriptedLoadableModule", _buildScriptedLoadableModule),
    ("slicer.parameterNodeWrapper", _buildParameterNodeWrapper),
    ("SegmentStatisticsPlugins", _buildSegmentStatisticsPlugins),
    ("SegmentStatistics", _buildSegmentStatistics),
    ("SegmentEditorEffects", _buildSegmentEditorEffects),
    ("qSlicerSegmentationsEditorEffectsPythonQt", _buildEditorEffectsPythonQt),
)
