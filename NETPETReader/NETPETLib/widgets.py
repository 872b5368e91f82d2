"""The parameter-node plumbing every NETPET Widget shares (as in Slicer's scripted-module template):
bind the panel to the Logic's parameter node on enter, release it on exit and around scene close.

A Widget lists ``ParameterNodeWidgetMixin`` first among its bases (so its cleanup/enter/exit win
over ScriptedLoadableModuleWidget's), then ScriptedLoadableModuleWidget and VTKObservationMixin; sets ``self.logic`` and ``self.ui`` in setup, calls ``observeScene()`` and
``initializeParameterNode()``; ``onParameterNodeSet()`` is its hook for defaults.
"""


class ParameterNodeWidgetMixin:
    _parameterNode = None
    _parameterNodeGuiTag = None

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
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
