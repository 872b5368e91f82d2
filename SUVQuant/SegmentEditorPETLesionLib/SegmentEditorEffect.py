"""Segment Editor effect "PET lesion": click a lesion in a slice view, get its contour in the
selected segment (the SUVQuant click-to-segment inside Slicer's Segment Editor).

Loaded by Slicer from this file (qSlicerSegmentEditorScriptedEffect.setPythonSource), which runs it
as a module named after its folder: so the file lives in a folder of its own, never in a package
that is imported (SUVQuantLib). The work is done by SUVQuantLogic.segmentAt, which the headless
tests exercise. The effect uses the SUV Quant panel's liver point, background points (paired with
the segment by its id) and background sphere diameter.

A click where no lesion can be separated from its surroundings leaves the segment unchanged: the
effect says why in its options panel and in the status bar (no dialog); errors (a click outside
the body, no SUV volume) are shown by slicer.util.tryWithErrorDisplay.
"""

import os

import qt
import vtk

import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

METHODS = ["adaptive", "fixed41", "fixed50", "absolute", "liver-percist", "liver-max", "gradient"]


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "PET lesion"
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        clonedEffect = effects.qSlicerSegmentEditorScriptedEffect(None)
        clonedEffect.setPythonSource(__file__.replace("\\", "/"))
        return clonedEffect

    def icon(self):
        path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "Resources", "Icons", "SegmentEditorPETLesion.png")
        return qt.QIcon(path) if os.path.exists(path) else qt.QIcon()

    def helpText(self):
        return ("<html>Click a lesion on the PET (source volume) to segment it into the selected segment.<br>"
                "The threshold method is chosen below; the source volume must be in SUV (NETPET Reader). "
                "Where no lesion stands out from its surroundings (not separable) the segment is left unchanged "
                "and the reason is shown below. Measure the segmentation in SUV Quant for the call.</html>")

    def setupOptionsFrame(self):
        self.methodComboBox = qt.QComboBox()
        self.methodComboBox.addItems(METHODS)
        self.scriptedEffect.addLabeledOptionsWidget("Method:", self.methodComboBox)
        self.messageLabel = qt.QLabel("")
        self.messageLabel.wordWrap = True
        self.scriptedEffect.addOptionsWidget(self.messageLabel)

    def activate(self):
        self.messageLabel.text = ""

    def deactivate(self):
        pass

    def _panelChoices(self, segmentID):
        """The SUV Quant panel's liver point, the background point of this segment and its diameter."""
        from SUVQuant import SUVQuantLogic

        logic = SUVQuantLogic()
        parameters = logic.getParameterNode()
        liver = None
        if parameters.liverPoint and parameters.liverPoint.GetNumberOfControlPoints():
            liver = parameters.liverPoint.GetNthControlPointPositionWorld(0)
        background = logic.backgroundsFromMarkups(parameters.backgroundPoints, [segmentID]).get(segmentID)
        return logic, liver, background, parameters.backgroundDiameterMm

    def _report(self, text):
        self.messageLabel.text = text
        slicer.util.showStatusMessage(text, 10000)

    def processInteractionEvents(self, callerInteractor, eventId, viewWidget):
        if eventId != vtk.vtkCommand.LeftButtonPressEvent or viewWidget.className() != "qMRMLSliceWidget":
            return False
        xy = callerInteractor.GetEventPosition()
        ras = self.xyToRas(xy, viewWidget)
        parameterSetNode = self.scriptedEffect.parameterSetNode()
        segmentationNode = parameterSetNode.GetSegmentationNode()
        segmentID = parameterSetNode.GetSelectedSegmentID()
        petNode = parameterSetNode.GetSourceVolumeNode() if hasattr(parameterSetNode, "GetSourceVolumeNode") \
            else parameterSetNode.GetMasterVolumeNode()
        with slicer.util.tryWithErrorDisplay("PET lesion: no lesion could be segmented here.", waitCursor=True):
            from NETPETLib import dependencies

            if not dependencies.ensureInstalled():
                return True
            logic, liver, background, diameter = self._panelChoices(segmentID)
            lesion = logic.segmentAt(petNode, ras, segmentationNode, segmentID, self.methodComboBox.currentText,
                                     liverRAS=liver, backgroundRAS=background, backgroundDiameterMm=diameter,
                                     beforeWrite=self.scriptedEffect.saveStateForUndo)
            segment = segmentationNode.GetSegmentation().GetSegment(segmentID)
            self._report(logic.clickMessage(segment.GetName() if segment else segmentID, lesion))
        return True
