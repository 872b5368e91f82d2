"""Segment Editor effect "PET lesion": click a lesion in a slice view, get its contour in the
selected segment (the SUVQuant click-to-segment inside Slicer's Segment Editor).

Loaded by Slicer from this file (qSlicerSegmentEditorScriptedEffect.setPythonSource), which runs it
as a module named after its folder (SegmentEditorPETLesionLib), as Slicer's scripted-effect template
lays it out (Utilities/Templates/Modules/ScriptedSegmentEditorEffect): so the file lives in a folder of
its own, never in a package that is imported (SUVQuantLib), which loading it would replace (5.10) or
overwrite (5.8).

The threshold method is the effect's parameter "Method" (a key of the core's methods, stored on the
Segment Editor node as Slicer's effects store theirs; the combo box shows the SUV Quant panel's labels).
A click is turned into RAS by the slice view and segmented by :meth:`SegmentEditorEffect.segmentClick`,
which uses the SUV Quant panel's liver point, background points (paired with the segment by its id) and
background sphere diameter; the work is SUVQuantLogic.segmentAt. A click where no lesion can be
separated from its surroundings leaves the segment unchanged: the effect says why in its options panel
and in the status bar (no dialog); errors (a click outside the body, no SUV volume) are shown by
slicer.util.tryWithErrorDisplay.
"""

import os

import vtk

import slicer
from slicer.i18n import tr as _
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

#: the effect's parameter holding the threshold method's key, and its default
METHOD_PARAMETER = "Method"
DEFAULT_METHOD = "adaptive"


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "PET lesion"
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.methodComboBox = None
        self.messageLabel = None
        #: the sentence shown after the last click
        self.lastMessage = ""

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        clonedEffect = effects.qSlicerSegmentEditorScriptedEffect(None)
        clonedEffect.setPythonSource(__file__.replace("\\", "/"))
        return clonedEffect

    def icon(self):
        import qt

        path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "Resources", "Icons", "SegmentEditorPETLesion.png")
        return qt.QIcon(path) if os.path.exists(path) else qt.QIcon()

    def helpText(self):
        return _("<html>Click a lesion on the PET (source volume) to segment it into the selected segment.<br>"
                 "The threshold method is chosen below; the source volume must be in SUV (NETPET Reader). "
                 "Where no lesion stands out from its surroundings (not separable) the segment is left unchanged "
                 "and the reason is shown below. Measure the segmentation in SUV Quant for the call.</html>")

    # -- options panel (Qt: inside Slicer only) ---------------------------------------------------------
    def setupOptionsFrame(self):
        import qt

        from SUVQuant import Method

        self.methodComboBox = qt.QComboBox()
        for member in Method:
            self.methodComboBox.addItem(member.label(), member.name)
        self.methodComboBox.toolTip = _("Threshold method of the lesion contour (as in the SUV Quant panel).")
        self.scriptedEffect.addLabeledOptionsWidget(_("Method:"), self.methodComboBox)
        self.methodComboBox.connect("currentIndexChanged(int)", self.updateMRMLFromGUI)
        self.messageLabel = qt.QLabel(self.lastMessage)
        self.messageLabel.wordWrap = True
        self.scriptedEffect.addOptionsWidget(self.messageLabel)

    def setMRMLDefaults(self):
        self.scriptedEffect.setParameterDefault(METHOD_PARAMETER, DEFAULT_METHOD)

    def updateGUIFromMRML(self):
        if self.methodComboBox is None:
            return
        index = self.methodComboBox.findData(self.method())
        wasBlocked = self.methodComboBox.blockSignals(True)
        self.methodComboBox.currentIndex = max(index, 0)
        self.methodComboBox.blockSignals(wasBlocked)

    def updateMRMLFromGUI(self):
        if self.methodComboBox is None:
            return
        self.scriptedEffect.setParameter(METHOD_PARAMETER, self.methodComboBox.currentData)

    def activate(self):
        self._show("")

    def deactivate(self):
        pass

    # -- the click ----------------------------------------------------------------------------------------
    def method(self):
        """The threshold method's key (the effect's parameter; the default where none is stored)."""
        return self.scriptedEffect.parameter(METHOD_PARAMETER) or DEFAULT_METHOD

    def _show(self, text):
        self.lastMessage = text
        if self.messageLabel is not None:
            self.messageLabel.text = text

    def _panelChoices(self, segmentID):
        """The SUV Quant panel's liver point, the background point of this segment and its diameter."""
        from SUVQuant import SUVQuantLogic

        logic = SUVQuantLogic()
        parameters = logic.getParameterNode()
        liver = None
        if parameters.liverPoint and parameters.liverPoint.GetNumberOfControlPoints():
            liver = tuple(parameters.liverPoint.GetNthControlPointPositionWorld(0))
        background = logic.backgroundsFromMarkups(parameters.backgroundPoints, [segmentID]).get(segmentID)
        return logic, liver, background, parameters.backgroundDiameterMm

    def segmentClick(self, ras):
        """Segment the lesion at ``ras`` (RAS, mm) into the Segment Editor's selected segment of its
        segmentation, on its source volume (an SUV volume), with the effect's method and the SUV Quant
        panel's references. Saves the undo state just before the segment changes; a click where nothing is
        separable leaves the segment unchanged. Returns the core's LesionMask; the sentence shown is
        ``lastMessage``.

        Raises
        ------
        ValueError
            No segment is selected.
        QuantError
            A click outside the image or the body, on damaged voxels, or a liver method without a liver point.
        """
        parameterSetNode = self.scriptedEffect.parameterSetNode()
        segmentationNode = parameterSetNode.GetSegmentationNode()
        segmentID = parameterSetNode.GetSelectedSegmentID()
        if segmentationNode is None or not segmentID:
            raise ValueError(_("Select a segment to segment the lesion into."))
        petNode = parameterSetNode.GetSourceVolumeNode()
        logic, liver, background, diameter = self._panelChoices(segmentID)
        lesion = logic.segmentAt(petNode, tuple(ras), segmentationNode, segmentID, self.method(), liverRAS=liver,
                                 backgroundRAS=background, backgroundDiameterMm=diameter,
                                 beforeWrite=self.scriptedEffect.saveStateForUndo)
        segment = segmentationNode.GetSegmentation().GetSegment(segmentID)
        self._show(logic.clickMessage(segment.GetName() if segment else segmentID, lesion))
        return lesion

    def processInteractionEvents(self, callerInteractor, eventId, viewWidget):
        if eventId != vtk.vtkCommand.LeftButtonPressEvent or viewWidget.className() != "qMRMLSliceWidget":
            return False
        ras = self.xyToRas(callerInteractor.GetEventPosition(), viewWidget)
        with slicer.util.tryWithErrorDisplay(_("PET lesion: no lesion could be segmented here."), waitCursor=True):
            from NETPETLib import dependencies

            if not dependencies.ensureInstalled():
                return True
            self.segmentClick(ras)
            slicer.util.showStatusMessage(self.lastMessage, 10000)
        return True
