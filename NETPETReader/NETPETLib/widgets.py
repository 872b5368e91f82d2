"""The Widget plumbing every NETPET module shares, as Slicer's scripted-module template does it, with the
fixes a real Slicer 5.8 / 5.10 needs (each checked against Slicer's own source, named below).

``ParameterNodeWidgetMixin``
    binds the panel to the Logic's parameter node on enter, releases it on exit and around scene close.
    A Widget lists it first among its bases (so its cleanup/enter/exit/onReload win over
    ScriptedLoadableModuleWidget's), then ScriptedLoadableModuleWidget and VTKObservationMixin; sets
    ``self.logic`` and ``self.ui`` in setup, calls ``observeScene()`` and ``initializeParameterNode()``;
    ``onParameterNodeSet()`` is its hook for defaults; ``helperPackages`` names the packages Reload
    reloads with the module file.
``LabelledChoice``
    a choice shown in its combo box by a readable label and stored in the parameter node by its key.
``pathText``
    a path parameter as text, '' when unset (pathlib turns '' into '.').
"""

import enum
import importlib
import logging
import sys

#: the dynamic property a .ui widget carries to name its parameter
#: (Slicer: Base/Python/slicer/parameterNodeWrapper/wrapper.py, SlicerParameterNamePropertyName)
SLICER_PARAMETER_NAME = "SlicerParameterName"


class LabelledChoice(enum.Enum):
    """Base of the NETPET choice enums: member name = the key stored in the parameter node, value = the
    label shown in the combo box.

    Slicer's QComboBox connector for a ``str`` with ``Choice`` fills the combo box with ``str(choice)``,
    the raw keys; its connector for an ``enum.Enum`` shows ``label(member)`` when the enum defines
    ``label`` (Base/Python/slicer/parameterNodeWrapper/guiConnectors.py, QComboBoxToStringableConnector
    and QComboBoxToEnumConnector, 5.8 and 5.10; documented in Docs/developer_guide/parameter_nodes/
    gui_connection.md). Its EnumSerializer stores ``member.name`` (serializers.py), so the keys saved in
    scenes before (e.g. "bw", "liver-percist") are read back unchanged.

    Make one with ``LabelledChoice("Name", [(key, label), ...])`` (keys may contain '-').
    """

    def label(self):
        return self.value

    @property
    def key(self):
        return self.name

    @classmethod
    def keys(cls):
        return tuple(member.name for member in cls)


def pathText(value):
    """A path parameter as text: '' when unset. The parameter node wrapper's default pathlib.Path() is '.'
    (serializers.py PathSerializer.default) and ctkDirectoryButton/ctkPathLineEdit show it as the working
    directory of Slicer; an unset folder must never become that."""
    text = str(value) if value is not None else ""
    return "" if text.strip() in ("", ".") else text


def parameterWidgets(ui):
    """{parameter name: widget} of the widgets that carry a SlicerParameterName, as Slicer builds the mapping
    in wrapper.py ``_connectGui`` (the branch for ``self.ui`` from slicer.util.childWidgetVariables)."""
    mapping = {}
    for widget in vars(ui).values():
        getter = getattr(widget, "property", None)
        name = getter(SLICER_PARAMETER_NAME) if callable(getter) else None
        if name:
            mapping[str(name)] = widget
    return mapping


def connectParameterNode(parameterNode, ui):
    """Bind the .ui widgets to the parameter node; returns the tag that disconnects them.

    Slicer 5.8's ``connectGui`` loses this tag: wrapper.py ``_connectGui`` calls ``_connectParametersToGui``
    without returning its result (still so in the 5.10-era source; Slicer issue #7547, fix proposed in PR
    #8667). ``disconnectGui(None)`` then disconnects nothing, every module entry adds another live set of
    connectors, and each new QComboBox connector's ``clear()``/``addItem`` fires the old connectors, which
    write the first item into the parameter: SUV type, method and interval reset on every entry. The
    documented manual connection ``connectParametersToGui(mapping)`` returns the tag in every version, so
    the mapping is built here as ``_connectGui`` builds it.
    """
    return parameterNode.connectParametersToGui(parameterWidgets(ui))


def reloadPackages(names, modules=None):
    """Reload every loaded module of the packages ``names`` (submodules first, deepest first, then the
    package), in place, so that the module file re-executed by Slicer's Reload imports their new code.

    Slicer's ScriptedLoadableModuleWidget.onReload calls slicer.util.reloadScriptedModule(moduleName), which
    re-executes the module's own .py only (Base/Python/slicer/ScriptedLoadableModule.py, util.py): helper
    packages stay as first imported. Returns the names reloaded.
    """
    modules = sys.modules if modules is None else modules
    reloaded = []
    for package in names:
        loaded = [name for name in list(modules) if name == package or name.startswith(package + ".")]
        for name in sorted(loaded, key=lambda n: (-n.count("."), n)):
            module = modules.get(name)
            if module is None:
                continue
            importlib.reload(module)
            reloaded.append(name)
    return reloaded


class ParameterNodeWidgetMixin:
    _parameterNode = None
    _parameterNodeGuiTag = None
    #: packages reloaded with the module file by the Reload button (developer mode)
    helperPackages = ("NETPETLib",)

    def observeScene(self):
        import slicer

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

    def cleanup(self):
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if self._parameterNode:
            self.onParameterNodeSet()

    def onParameterNodeSet(self):
        """Hook: fill in defaults once the parameter node is bound."""

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = connectParameterNode(self._parameterNode, self.ui)

    def onReload(self):
        """Reload the helper packages, then the module as Slicer does (ScriptedLoadableModuleWidget.onReload)."""
        logging.info(f"Reloading {', '.join(reloadPackages(self.helperPackages))}")
        super().onReload()


def documentationLink(section):
    """The help text's link to NETPET's documentation, worded as Slicer's getDefaultModuleDocumentationLink
    (ScriptedLoadableModule.py), which itself links to Slicer's documentation of core modules only.
    ``section`` is the README heading's anchor."""
    from NETPETLib import HOMEPAGE

    return f'<p>For more information see the <a href="{HOMEPAGE}#{section}">online documentation</a>.</p>'
