"""Segment Editor effect "PET lesion": click a lesion in a slice view, get its contour in the
selected segment (the SUVQuant click-to-segment inside Slicer's Segment Editor).

Loaded by Slicer from this file (qSlicerSegmentEditorScriptedEffect.setPythonSource); the work is
done by SUVQuantLogic.segmentAt, which the headless tests exercise.
"""

import os

import qt
import vtk

import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect


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
                "The threshold method is chosen below; the source volume must be in SUV (NETPET Reader).</html>")

    def setupOptionsFrame(self):
        self.methodComboBox = qt.QComboBox()
        self.methodComboBox.addItems(["adaptive", "fixed41", "fixed50", "absolute", "liver-percist", "liver-max",
                                      "gradient"])
        self.scriptedEffect.addLabeledOptionsWidget("Method:", self.methodComboBox)

    def activate(self):
        pass

    def deactivate(self):
        pass

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
        from SUVQuant import SUVQuantLogic

        with slicer.util.tryWithErrorDisplay("PET lesion: no lesion could be segmented here.", waitCursor=True):
            self.scriptedEffect.saveStateForUndo()
            SUVQuantLogic().segmentAt(petNode, ras, segmentationNode, segmentID, self.methodComboBox.currentText)
        return True
