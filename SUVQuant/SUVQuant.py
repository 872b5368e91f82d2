"""SUVQuant: click lesions on PET, review the contours, measure against liver and background, export.

Module / ParameterNode / Widget / Logic / Test in one file. The Logic adapts MRML nodes (PET
volume, markups, segmentation, tables) to ``netpet.quant``; it never opens dialogs. Slicer
extension points: a Segment Editor effect "PET lesion" (SegmentEditorPETLesionLib/SegmentEditorEffect.py, in a
folder of its own because Slicer loads an effect as a module named after its folder) and a
SegmentStatistics plugin with DICOM-coded SUV measurements (SUVQuantLib/SegmentStatisticsPlugin.py).
"""

import collections
import dataclasses
import hashlib
import json
import logging
import math
import os
import pathlib
import threading
from typing import Annotated, NamedTuple

import numpy as np

import slicer
import vtk
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from NETPETLib import nodes
from NETPETLib.widgets import LabelledChoice, ParameterNodeWidgetMixin, documentationLink
from SUVQuantLib import measurements

#: threshold methods, by key (as the core's netpet.quant.segment.METHODS) with the labels the panel shows
Method = LabelledChoice("Method", [
    ("adaptive", _("Adaptive: background + calibrated fraction of SUVpeak (default)")),
    ("fixed41", _("41 % of SUVmax")),
    ("fixed50", _("50 % of SUVmax")),
    ("absolute", _("Absolute SUV 2.5")),
    ("liver-percist", _("Liver, PERCIST: 1.5 x liver mean + 2 SD")),
    ("liver-max", _("Liver SUVmax")),
    ("gradient", _("Gradient: watershed at the steepest edge")),
])
METHODS = Method.keys()
#: the reader's own reading of a finding (issue 14), keys as netpet.reading.findings.FORM_CHOICES ("unset": not recorded)
ReaderCall = LabelledChoice("ReaderCall", [
    ("unset", _("Not recorded")), ("positive", _("Positive")), ("equivocal", _("Equivocal")), ("negative", _("Negative")),
])
Confidence = LabelledChoice("Confidence", [
    ("unset", _("Not recorded")), ("1", _("1: definitely benign")), ("2", _("2: probably benign")),
    ("3", _("3: indeterminate")), ("4", _("4: probably malignant")), ("5", _("5: definitely malignant")),
])
AnatomicCorrelate = LabelledChoice("AnatomicCorrelate", [
    ("unset", _("Not recorded")), ("none", _("No correlate on CT/MR")), ("lesion", _("A lesion on CT/MR")),
    ("benign", _("A benign lesion on CT/MR")),
])
SSTRRADS = LabelledChoice("SSTRRADS", [("unset", _("Not recorded"))] + [
    (category, f"SSTR-RADS {category}") for category in ("1A", "1B", "2A", "2B", "3A", "3B", "3C", "3D", "4", "5")])
#: diameter (mm) of the sphere at a reader-placed background point: default and accepted range (as the core's manifest)
BACKGROUND_DIAMETER_MM = 20.0
BACKGROUND_DIAMETER_RANGE_MM = (4.0, 60.0)
#: segment tags, as the core's export writes them (netpet.quant.export.write_seg_nrrd)
TAG_CALL, TAG_STATUS, TAG_FLAGS = "NETPET.Call", "NETPET.Status", "NETPET.Flags"
#: SUVQuant's own record of how it made a segment (JSON: mask digest, method, threshold, seed, notes), so
#: that measuring the segment again keeps its status while the reader has not edited it
TAG_LESION = "NETPET.Lesion"
#: the PET node attribute (after nodes.ATTRIBUTE_PREFIX) holding an explicit session id (SUVQuantLogic.setSessionID)
SESSION_ID_ATTRIBUTE = "SessionID"
#: the PET node attribute holding the study's patient id where it is not the DICOM PatientID (setSessionID)
STUDY_PATIENT_ATTRIBUTE = "StudyPatientID"
NOT_SEPARABLE = measurements.NOT_SEPARABLE
#: a not-separable lesion's segment is the 1 mL sphere at the click: its name says so, and it shows as an outline
NOT_SEPARABLE_SUFFIX = " (not separable)"
#: Slicer terminology of a lesion segment (SNOMED CT: Morphologically Altered Structure / Lesion)
LESION_TERMINOLOGY = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^49755003^Morphologically "
                      "Altered Structure~SCT^52988006^Lesion~^^~Anatomic codes - DICOM master list~^^~^^")


#
# SUVQuant
#

class SUVQuant(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SUV Quant")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Nuclear Medicine")]
        self.parent.dependencies = ["NETPETReader"]
        self.parent.contributors = ["NETPET developers"]
        self.parent.helpText = _(
            "Click lesions on an SUV volume to segment them (adaptive, fixed 41 %/50 %, absolute, liver-based or "
            "gradient thresholds), review and edit the contours in the Segment Editor (effect 'PET lesion'), measure "
            "SUVmax, SUVpeak, SUVmean, MTV, TLA, T/B and T/L against the liver and background references, get the "
            "liver-threshold call (positive, equivocal = equal to the liver within its noise, or negative; segments "
            "are coloured red, amber and blue) and the Krenning score, and export the segmentation and one row per "
            "lesion into the study table. A click where no lesion stands out from its surroundings is 'not "
            "separable': its segment is only the 1 mL sphere at the click (named '(not separable)', drawn as an "
            "outline), its local uptake is reported, and its volume is left empty. Every lesion's status, flags "
            "and warnings are in the results table. Background for T/B: automatic (a shell around the lesion), or "
            "'Background points' placed in normal tissue (a sphere of the chosen diameter; a point labelled with a "
            "lesion id applies to that lesion, a single other point to all lesions), or 'Normal-bone background "
            "(CT)', which measures normal bone from the session's CT around every lesion that has no background "
            "point of its own (check it for bone lesions on PET/CT). Review mode reopens any finding of the study "
            "table (by patient, session, reader and lesion) with its PET and CT or MR, and shows its warnings. 'Reader's reading "
            "of a finding' records your own visual call, confidence of malignancy (1-5), anatomic correlate and "
            "SSTR-RADS category of an exported lesion (NETPET's SSTR-RADS proposal is shown beside it), or retracts "
            "it with a reason (the row stays, no analysis counts it); it shows and changes only your own rows of the "
            "session, and every change goes into the study table's audit trail.") + documentationLink("suvquant-lesions-references-measurements-the-study-table")
        self.parent.acknowledgementText = _("Please cite NETPET. Segmentation defaults and their accuracy: see the "
                                            "project README.")
        if getattr(slicer, "app", None) is not None:
            slicer.app.connect("startupCompleted()", registerExtensionPoints)


def registerExtensionPoints():
    """The Segment Editor effect and the SegmentStatistics plugin (need the full application)."""
    try:
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        instance = effects.qSlicerSegmentEditorScriptedEffect(None)
        path = os.path.join(os.path.dirname(__file__), "SegmentEditorPETLesionLib", "SegmentEditorEffect.py")
        instance.setPythonSource(path.replace("\\", "/"))
        instance.self().register()
    except Exception as exc:  # noqa: BLE001 - a Slicer without the Segment Editor still gets the module
        logging.warning(f"SUVQuant: the PET lesion effect was not registered ({exc})")
    try:
        from SegmentStatistics import SegmentStatisticsLogic

        from SUVQuantLib.SegmentStatisticsPlugin import SUVSegmentStatisticsPlugin

        SegmentStatisticsLogic.registerPlugin(SUVSegmentStatisticsPlugin())
    except Exception as exc:  # noqa: BLE001
        logging.warning(f"SUVQuant: the SUV segment statistics plugin was not registered ({exc})")


#
# Parameter node
#

@parameterNodeWrapper
class SUVQuantParameterNode:
    """
    petVolume - the SUV volume (from NETPET Reader or any SUV image)
    lesionPoints - markups whose control points (labelled with lesion ids) are the clicks
    liverPoint - markups with the liver reference point (empty: automatic)
    backgroundPoints - markups with reader-placed background points in normal tissue (empty: automatic shell);
        a point labelled with a lesion id applies to that lesion, a single other point to every lesion
    backgroundDiameterMm - diameter of the background sphere at each point (mm)
    boneBackground - normal bone of the session's CT around the lesion as background (PET/CT), for every
        lesion without a background point of its own
    segmentation - where the lesions go, one segment per lesion
    resultsTable - the measurements, one row per lesion
    method - threshold method
    reader - the reader's id in the study table
    studyTablePath - the study-wide table (.csv or .sqlite)
    dicomSeg - also export DICOM SEG
    readingLesionID - the lesion id of the finding the reader records, retracts or restores
    readerCall, confidence, anatomicCorrelate, sstrRads - the reader's own reading of that finding (beside the
        SUV rule's call): visual call, confidence of malignancy 1-5, anatomic correlate, SSTR-RADS 1.0
    readingWhy - why (kept in the study table's audit trail)
    retractionReason - why the finding is withdrawn (required to retract)

    The method is a LabelledChoice enum (labels in the combo box, keys in the scene); the diameter declares
    its range with WithinRange, which Slicer's spin-box connector sets on the widget (-inf..inf without
    it: parameterNodeWrapper/guiConnectors.py, 5.8 and 5.10).
    """

    petVolume: slicer.vtkMRMLScalarVolumeNode
    lesionPoints: slicer.vtkMRMLMarkupsFiducialNode
    liverPoint: slicer.vtkMRMLMarkupsFiducialNode
    backgroundPoints: slicer.vtkMRMLMarkupsFiducialNode
    backgroundDiameterMm: Annotated[float, WithinRange(4.0, 60.0)] = 20.0
    boneBackground: bool = False
    segmentation: slicer.vtkMRMLSegmentationNode
    resultsTable: slicer.vtkMRMLTableNode
    method: Method = Method["adaptive"]
    reader: str = "reader1"
    studyTablePath: pathlib.Path
    sessionID: str = ""
    timePoint: str = ""
    daysFromBaseline: str = ""
    dicomSeg: bool = False
    readingLesionID: str = ""
    readerCall: ReaderCall = ReaderCall["unset"]
    confidence: Confidence = Confidence["unset"]
    anatomicCorrelate: AnatomicCorrelate = AnatomicCorrelate["unset"]
    sstrRads: SSTRRADS = SSTRRADS["unset"]
    readingWhy: str = ""
    retractionReason: str = ""


#
# Widget
#

class SUVQuantWidget(ParameterNodeWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    helperPackages = ("NETPETLib", "SUVQuantLib")

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._rows = []

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SUVQuant.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SUVQuantLogic()
        self.ui.lesionPointsSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.ui.lesionPlaceWidget.setCurrentNode)
        self.ui.backgroundPointsSelector.connect("currentNodeChanged(vtkMRMLNode*)",
                                                 self.ui.backgroundPlaceWidget.setCurrentNode)
        self.ui.resultsTableSelector.connect("currentNodeChanged(vtkMRMLNode*)",
                                             self.ui.resultsTableView.setMRMLTableNode)
        self.observeScene()
        self.ui.segmentButton.connect("clicked(bool)", self.onSegmentButton)
        self.ui.measureButton.connect("clicked(bool)", self.onMeasureButton)
        self.ui.autoLiverButton.connect("clicked(bool)", self.onAutoLiverButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.srButton.connect("clicked(bool)", self.onSRButton)
        self.ui.reviewButton.connect("clicked(bool)", self.onReviewButton)
        self.ui.reviewRefreshButton.connect("clicked(bool)", self.onReviewRefresh)
        self._reviewTargets = []
        self.ui.editButton.connect("clicked(bool)", self.onEditButton)
        self.ui.loadReadingButton.connect("clicked(bool)", self.onLoadReading)
        self.ui.recordReadingButton.connect("clicked(bool)", self.onRecordReading)
        self.ui.retractButton.connect("clicked(bool)", self.onRetract)
        self.ui.restoreButton.connect("clicked(bool)", self.onRestore)
        self.initializeParameterNode()

    def onParameterNodeSet(self):
        p = self._parameterNode
        if not p.petVolume:
            candidates = [n for n in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
                          if n.GetAttribute("NETPET.SUVType")]
            if candidates:
                p.petVolume = candidates[-1]
        if not p.lesionPoints:
            p.lesionPoints = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Lesions")
            p.lesionPoints.GetDisplayNode().SetSelectedColor(0.95, 0.8, 0.1)
            p.lesionPoints.SetControlPointLabelFormat("L%02d")
        if not p.backgroundPoints:
            p.backgroundPoints = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Background points")
            p.backgroundPoints.GetDisplayNode().SetSelectedColor(0.3, 0.85, 0.9)
            p.backgroundPoints.SetControlPointLabelFormat("B%d")

    def _liverRAS(self):
        points = self._parameterNode.liverPoint
        if points and points.GetNumberOfControlPoints():
            return points.GetNthControlPointPositionWorld(0)
        return None

    def _background(self):
        """The reader's background choice, as the Logic takes it."""
        p = self._parameterNode
        return {"backgrounds": p.backgroundPoints, "backgroundDiameterMm": p.backgroundDiameterMm,
                "boneBackground": p.boneBackground}

    @staticmethod
    def _dependenciesReady():
        from NETPETLib import dependencies

        return dependencies.ensureInstalled()

    def _showRows(self, rows, errors=None):
        p = self._parameterNode
        p.resultsTable = self.logic.resultsTableNode(rows, p.resultsTable)
        self._rows = rows
        for lesion_id, message in (errors or {}).items():
            logging.warning(f"SUVQuant: {lesion_id} not segmented: {message}")
        for row in rows:
            if row.get("warnings"):
                logging.info(f"SUVQuant: {row.get('lesion_id')}: {row['warnings']}")
        self.ui.statusLabel.text = measurements.summary(rows, errors)

    def onAutoLiverButton(self):
        with slicer.util.tryWithErrorDisplay(_("Placing the liver reference failed."), waitCursor=True):
            if not self._dependenciesReady():
                return
            p = self._parameterNode
            if not p.liverPoint:
                p.liverPoint = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Liver reference")
            ras = self.logic.autoLiver(p.petVolume)
            p.liverPoint.RemoveAllControlPoints()
            p.liverPoint.AddControlPoint(*ras, "liver")

    def onSegmentButton(self):
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=True):
            if not self._dependenciesReady():
                return
            p = self._parameterNode
            seeds = self.logic.seedsFromMarkups(p.lesionPoints)
            result = self.logic.segmentLesions(p.petVolume, seeds, p.segmentation, p.method.key, liverRAS=self._liverRAS(),
                                               reader=p.reader, regions=self.logic.regionsFromMarkups(p.lesionPoints),
                                               **self._background())
            p.segmentation = result["segmentation"]
            self._showRows(result["rows"], result["errors"])

    def onEditButton(self):
        with slicer.util.tryWithErrorDisplay(_("Cannot open the Segment Editor."), waitCursor=False):
            editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
            slicer.util.selectModule("SegmentEditor")
            editor.setSegmentationNode(self._parameterNode.segmentation)
            editor.setSourceVolumeNode(self._parameterNode.petVolume)

    def onMeasureButton(self):
        with slicer.util.tryWithErrorDisplay(_("Measuring the segments failed."), waitCursor=True):
            if not self._dependenciesReady():
                return
            p = self._parameterNode
            rows = self.logic.measureSegmentation(p.petVolume, p.segmentation, liverRAS=self._liverRAS(),
                                                  reader=p.reader,
                                                  regions=self.logic.regionsFromMarkups(p.lesionPoints),
                                                  **self._background())
            self._showRows(rows)

    def onExportButton(self):
        with slicer.util.tryWithErrorDisplay(_("Export failed; the study table was left as it was."), waitCursor=True):
            if not self._dependenciesReady():
                return
            p = self._parameterNode
            if p.dicomSeg:
                from NETPETLib import dependencies

                reason = dependencies.unavailableReason("highdicom")
                if reason:
                    raise ValueError(reason[:1].upper() + reason[1:] + "; export without 'Also write DICOM SEG'.")
            if not self._rows:
                self.onMeasureButton()
            regions, lesionTypes = lesionLabelsFromPoints(p.lesionPoints)
            summary = self.logic.exportToStudyTable(self._rows, _path(p.studyTablePath), p.petVolume, p.segmentation,
                                                    reader=p.reader, dicomSeg=p.dicomSeg,
                                                    sessionID=p.sessionID.strip() or None, regions=regions,
                                                    lesionTypes=lesionTypes, timePoint=p.timePoint.strip() or None,
                                                    daysFromBaseline=p.daysFromBaseline.strip() or None)
            self.ui.statusLabel.text = "\n".join(
                [_("{inserted} new and {updated} updated rows of session {session_id} in {path}").format(**summary)]
                + list(summary.get("warnings") or []))

    def onSRButton(self):
        with slicer.util.tryWithErrorDisplay(_("The DICOM SR could not be written."), waitCursor=True):
            if not self._dependenciesReady():
                return
            from NETPETLib import dependencies

            reason = dependencies.unavailableReason("highdicom")
            if reason:
                raise ValueError(reason[:1].upper() + reason[1:] + ".")
            p = self._parameterNode
            out = self.logic.exportStructuredReport(_path(p.studyTablePath), p.petVolume, reader=p.reader,
                                                    sessionID=p.sessionID.strip() or None)
            self.ui.statusLabel.text = "\n".join(
                [_("DICOM SR written to {folder}").format(folder=out["folder"])] + list(out["errors"])
                + list(out["warnings"]))

    def onReviewRefresh(self):
        """List the study table's findings (patient / session / reader / lesion) to choose one to review."""
        with slicer.util.tryWithErrorDisplay(_("Listing the study table failed."), waitCursor=True):
            self._reviewTargets = self.logic.reviewTargets(_path(self._parameterNode.studyTablePath))
            combo = self.ui.reviewTargetComboBox
            combo.clear()
            for target in self._reviewTargets:
                lesion = target["lesion_id"] or _("(read, no finding)")
                combo.addItem(f"{target['patient_id']} / {target['session_id']} / {target['reader']} / {lesion}"
                              + (f" ({target['call']})" if target.get("call") else ""))
            self.ui.reviewButton.enabled = bool(self._reviewTargets)

    def onReviewButton(self):
        with slicer.util.tryWithErrorDisplay(_("Review failed."), waitCursor=True):
            if not self._dependenciesReady():
                return
            p = self._parameterNode
            index = self.ui.reviewTargetComboBox.currentIndex
            if not 0 <= index < len(self._reviewTargets):
                raise ValueError(_("Choose a finding to review (Refresh lists those of the study table)."))
            target = self._reviewTargets[index]
            folder = _path(self.ui.dicomFolderButton.directory)
            review = self.logic.review(_path(p.studyTablePath), target["patient_id"], target["session_id"],
                                       target["lesion_id"] or None, dicomFolder=folder or None, reader=target["reader"])
            p.petVolume, p.segmentation = review.petNode, review.segmentationNode
            slicer.util.setSliceViewerLayers(foreground=review.petNode, foregroundOpacity=0.5)
            self.ui.statusLabel.text = "\n".join([_("{patient} {session}: {lesion}, {call}").format(
                patient=target["patient_id"], session=target["session_id"], lesion=target["lesion_id"] or _("no finding"),
                call=review.row.get("call") or _("no call"))] + review.messages)


    # -- the reader's own reading (issue 14) ------------------------------------------------------------
    def _readingTarget(self):
        p = self._parameterNode
        return {"studyTablePath": _path(p.studyTablePath), "petNode": p.petVolume, "reader": p.reader,
                "lesionID": p.readingLesionID.strip(), "sessionID": p.sessionID.strip() or None}

    def onLoadReading(self):
        """Show the finding's recorded reading in the form (the reader's own row only: the blinded view)."""
        with slicer.util.tryWithErrorDisplay(_("Reading the finding failed."), waitCursor=True):
            p = self._parameterNode
            reading = self.logic.readingOf(**self._readingTarget())
            p.readerCall, p.confidence = ReaderCall[reading["readerCall"]], Confidence[reading["confidence"]]
            p.anatomicCorrelate, p.sstrRads = AnatomicCorrelate[reading["anatomicCorrelate"]], SSTRRADS[reading["sstrRads"]]
            self.ui.statusLabel.text = reading["summary"]

    def onRecordReading(self):
        with slicer.util.tryWithErrorDisplay(_("Recording the reading failed; the study table was left as it was."),
                                             waitCursor=True):
            p = self._parameterNode
            written = self.logic.recordReading(**self._readingTarget(), call=p.readerCall, confidence=p.confidence,
                                               correlate=p.anatomicCorrelate, sstrRads=p.sstrRads,
                                               why=p.readingWhy.strip() or None)
            self.ui.statusLabel.text = (_("{n} change(s) recorded in the audit trail.").format(n=written) if written
                                        else _("The finding already held this reading; nothing was written."))

    def onRetract(self):
        with slicer.util.tryWithErrorDisplay(_("Retracting the finding failed; the study table was left as it was."),
                                             waitCursor=True):
            written = self.logic.retractFinding(**self._readingTarget(), reason=self._parameterNode.retractionReason)
            self.ui.statusLabel.text = (_("The finding is retracted: kept in the table, counted by no analysis.")
                                        if written else _("The finding was retracted already for this reason."))

    def onRestore(self):
        with slicer.util.tryWithErrorDisplay(_("Restoring the finding failed; the study table was left as it was."),
                                             waitCursor=True):
            written = self.logic.restoreFinding(**self._readingTarget(), why=self._parameterNode.readingWhy.strip() or None)
            self.ui.statusLabel.text = (_("The finding is restored.") if written
                                        else _("The finding is not retracted; nothing was written."))


def lesionLabelsFromPoints(pointsNode):
    """({lesion id: region}, {lesion id: lesion type}) from the lesion points' descriptions, which the reader
    types in the Markups module as "region" or "region; lesion type" (e.g. "liver; metastasis"); points without
    a description keep the labels their rows were measured with."""
    regions, lesionTypes = {}, {}
    if pointsNode is None:
        return regions, lesionTypes
    for i in range(pointsNode.GetNumberOfControlPoints()):
        label = pointsNode.GetNthControlPointLabel(i)
        parts = [part.strip() for part in (pointsNode.GetNthControlPointDescription(i) or "").split(";")]
        if parts and parts[0]:
            regions[label] = parts[0]
        if len(parts) > 1 and parts[1]:
            lesionTypes[label] = parts[1]
    return regions, lesionTypes


def _path(value):
    """A path parameter as text ('' when unset: pathlib turns '' into '.')."""
    text = str(value) if value is not None else ""
    return "" if text in ("", ".") else text


#
# Logic
#

class ReviewResult(NamedTuple):
    """A study-table row reopened: its PET and segmentation nodes, the lesion centroid (RAS mm; None for a
    session read without findings), the row itself, the sentences the reader should see about it (status,
    call, warnings) and the PET's CT or MR partner (None for a PET without one)."""

    petNode: object
    segmentationNode: object
    centroid: tuple
    row: dict
    messages: list
    anatomicalNode: object = None


def callColor(call):
    """The segment colour of a call (positive red, equivocal amber, negative blue, none grey), from the one
    place the colours are defined: the core's export (netpet.quant.export.COLORS)."""
    from netpet.quant.export import COLORS

    return tuple(float(c) for c in COLORS.get(call or "", COLORS[""]))


def _maskDigest(mask):
    """A short fingerprint of a full-size boolean mask (is the segment still what NETPET wrote?)."""
    mask = np.ascontiguousarray(np.asarray(mask, dtype=bool))
    return hashlib.sha1(np.packbits(mask).tobytes() + str(mask.shape).encode()).hexdigest()[:20]


def _tagValue(segment, name):
    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else ""


def _tagText(text):
    """A tag value Slicer can store: segment tags are written as 'key:value|key:value|' in .seg.nrrd."""
    return str(text).replace("|", "/")


def _finiteOrNone(value):
    return float(value) if value is not None and math.isfinite(float(value)) else None


#: how many prepared PET volumes (SUVQuantLogic.preparePET) are kept: a session's PET and its partner
#: session's (compare mode), with room for one more
PREPARED_VOLUMES = 4
#: (node id, node address) -> (key of the node's content, prepared SUVVolume), least recently used first
_PREPARED = collections.OrderedDict()
_PREPARED_LOCK = threading.Lock()


class SUVQuantLogic(ScriptedLoadableModuleLogic):
    """Segmentation, references, measurements, call, export and review on MRML nodes. No dialogs."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        #: DICOM indexes by folder (real path): review and loading reuse them instead of indexing again
        self._indexes = {}

    def getParameterNode(self):
        return SUVQuantParameterNode(super().getParameterNode())

    # -- the session behind a PET node -----------------------------------------------------------------
    @staticmethod
    def session(petNode, patientID=None, sessionID=None):
        """The core's Session of an SUV volume node (identity and provenance from its NETPET attributes).

        Its key follows the rules of ``netpet.schema``, as ``netpet quantify`` does for the same series: the
        modality label and tracer from the node's attributes; the session id given (``sessionID``), else the
        one set on the node (:meth:`setSessionID`), else derived from the series' study (StudyInstanceUID,
        tracer, modality); '' for a volume without DICOM identity and no id given. (Where the study table
        already holds the series under another id, :meth:`exportToStudyTable` writes into that one.) The
        patient id: the one given, else the node's study patient id (:meth:`setSessionID`), else its DICOM
        PatientID.
        """
        from netpet import schema
        from netpet.quant.pipeline import Session

        if petNode is None:
            raise ValueError("Select the PET (SUV) volume first.")
        provenance = nodes.provenance(petNode)
        attribute = lambda key: petNode.GetAttribute(nodes.ATTRIBUTE_PREFIX + key) or ""  # noqa: E731
        files = json.loads(attribute("SourceFiles") or "[]")
        modality, tracer = schema.modality_label(attribute("Modality")), schema.tracer_key(attribute("Tracer"))
        study = attribute("StudyInstanceUID")
        session_id = (schema.check_session_id(sessionID or attribute(SESSION_ID_ATTRIBUTE))
                      or schema.derive_session_id(study, tracer, modality))
        patient = patientID or attribute(STUDY_PATIENT_ATTRIBUTE) or attribute("PatientID") or petNode.GetName()
        return Session(nodes.suvVolumeFromNode(petNode), patient,
                       session_id, modality, tracer, attribute("SeriesInstanceUID"), attribute("SUVType") or "bw",
                       provenance or None, files, dicom_patient_id=attribute("PatientID"), study_uid=study)

    @staticmethod
    def setSessionID(petNode, sessionID, patientID=None):
        """Give the PET node an explicit session id (the manifest's, so that Slicer and ``netpet quantify``
        write the same session); '' goes back to the rule (the table's id for the series, else derived).
        ``patientID``, when given, is the study's patient id for this PET (the manifest's patient_id, where it
        is not the DICOM PatientID; '' goes back to the PatientID). Returns the session id as it will be
        written (cleaned).

        Raises
        ------
        ValueError
            No PET node, or an id holding a control character.
        """
        from netpet import schema

        if petNode is None:
            raise ValueError("Select the PET (SUV) volume first.")
        text = schema.check_session_id(sessionID)
        for key, value in ((SESSION_ID_ATTRIBUTE, text), (STUDY_PATIENT_ATTRIBUTE, patientID)):
            if value is None:
                continue
            if schema.clean_label(value):
                petNode.SetAttribute(nodes.ATTRIBUTE_PREFIX + key, schema.clean_label(value))
            else:
                petNode.RemoveAttribute(nodes.ATTRIBUTE_PREFIX + key)
        return text

    def sessionIDFor(self, petNode, studyTablePath=None, sessionID=None, patientID=None):
        """(session id, warning) that an export of this PET into the table would write: the explicit id
        (``sessionID`` or the node's), else the one the table holds for this patient's series, else the derived
        one (``netpet.schema.choose_session_id``); the warning says when an explicit id differs from the table's
        ('' otherwise). What the panel should show beside the session id field."""
        from netpet import schema
        from netpet.quant.table import StudyTable

        attribute = lambda key: petNode.GetAttribute(nodes.ATTRIBUTE_PREFIX + key) or ""  # noqa: E731
        session = self.session(petNode, patientID=patientID)
        explicit = schema.check_session_id(sessionID or attribute(SESSION_ID_ATTRIBUTE))
        known = {}
        if studyTablePath and os.path.exists(studyTablePath):
            known = schema.known_session_ids(StudyTable(studyTablePath).read())
        derived = schema.derive_session_id(session.study_uid, session.tracer, session.modality)
        chosen = schema.choose_session_id(explicit, derived, session.patient_id, session.series_uid, known)
        warning = schema.session_id_conflict(chosen, session.patient_id, session.series_uid, known) if explicit else ""
        return chosen, warning

    def autoLiver(self, petNode):
        """The automatic liver reference point (RAS) found from the PET itself."""
        from netpet.quant.references import auto_liver

        return tuple(auto_liver(nodes.suvVolumeFromNode(petNode)))

    # -- the reader's points ----------------------------------------------------------------------------
    @staticmethod
    def _lesionPoints(markupsNode):
        """[(lesion id, RAS, description)]; labels are the lesion ids (numbered when empty or repeated)."""
        points, seen = [], set()
        if markupsNode is None:
            return points
        for i in range(markupsNode.GetNumberOfControlPoints()):
            label = markupsNode.GetNthControlPointLabel(i).strip() or f"L{i + 1:02d}"
            if label in seen:
                label = f"{label}-{i + 1}"
            seen.add(label)
            points.append((label, tuple(markupsNode.GetNthControlPointPositionWorld(i)),
                           markupsNode.GetNthControlPointDescription(i).strip()))
        return points

    @classmethod
    def seedsFromMarkups(cls, markupsNode):
        """[(lesion id, RAS)] from a point list; labels are the lesion ids (numbered when empty or repeated)."""
        return [(label, ras) for label, ras, _description in cls._lesionPoints(markupsNode)]

    @classmethod
    def regionsFromMarkups(cls, markupsNode):
        """{lesion id: region} from the points' descriptions (e.g. 'bone', 'liver'); points without one are left out."""
        return {label: description for label, _ras, description in cls._lesionPoints(markupsNode) if description}

    @staticmethod
    def backgroundsFromMarkups(markupsNode, lesionIDs):
        """{lesion id: RAS} of reader-placed background points, paired with lesions by label.

        A point labelled with a lesion id applies to that lesion; one point labelled otherwise (or not at
        all) applies to every other lesion. No points: {} (automatic background).

        Raises
        ------
        ValueError
            Two points labelled with the same lesion id, or more than one point that names no lesion (which
            lesion each belongs to cannot be told).
        """
        if markupsNode is None:
            return {}
        ids = [str(i) for i in lesionIDs]
        known = set(ids)
        paired, general = {}, []
        for i in range(markupsNode.GetNumberOfControlPoints()):
            label = markupsNode.GetNthControlPointLabel(i).strip()
            ras = tuple(markupsNode.GetNthControlPointPositionWorld(i))
            if label in known:
                if label in paired:
                    raise ValueError(f"Two background points are labelled {label}; keep one background point per "
                                     "lesion.")
                paired[label] = ras
            else:
                general.append((label, ras))
        if len(general) > 1:
            names = ", ".join(label or "unlabelled" for label, _ras in general)
            raise ValueError(f"{len(general)} background points ({names}) name no lesion ({', '.join(ids) or 'none'}); "
                             "label each background point with the id of its lesion, or keep a single point for all "
                             "lesions.")
        if general:
            for lesion_id in ids:
                paired.setdefault(lesion_id, general[0][1])
        return paired

    def lesionRequests(self, seeds, regions=None, backgrounds=None, backgroundDiameterMm=BACKGROUND_DIAMETER_MM,
                       boneBackground=False, lesionTypes=None):
        """The core's LesionRequest of each seed (lesion id, RAS): its region and lesion type (``regions``,
        ``lesionTypes``: {lesion id: text}, the reader's words, cleaned as the command line cleans the manifest's
        columns: ``netpet.schema.clean_label``), and the reader's background: a background point
        (``backgrounds``: {lesion id: RAS} or a point list paired by label), else normal bone from the CT when
        ``boneBackground``, else the automatic shell."""
        from netpet import schema
        from netpet.quant.pipeline import LesionRequest

        low, high = BACKGROUND_DIAMETER_RANGE_MM
        if not (isinstance(backgroundDiameterMm, (int, float)) and low <= backgroundDiameterMm <= high):
            raise ValueError(f"The background sphere diameter is {backgroundDiameterMm!r} mm; choose {low:g} to "
                             f"{high:g} mm.")
        points = self._backgroundPoints(backgrounds, [lesion_id for lesion_id, _ras in seeds])
        requests = []
        for lesion_id, ras in seeds:
            point = points.get(lesion_id)
            requests.append(LesionRequest(lesion_id, tuple(float(v) for v in ras),
                                          schema.clean_label((regions or {}).get(lesion_id)),
                                          tuple(float(v) for v in point) if point is not None else None,
                                          "bone" if boneBackground and point is None else "shell",
                                          float(backgroundDiameterMm),
                                          schema.clean_label((lesionTypes or {}).get(lesion_id))))
        return requests

    def _backgroundPoints(self, backgrounds, lesionIDs):
        if backgrounds is None:
            return {}
        if hasattr(backgrounds, "GetNumberOfControlPoints"):
            return self.backgroundsFromMarkups(backgrounds, lesionIDs)
        return dict(backgrounds)

    # -- segmentation ---------------------------------------------------------------------------------
    def segmentLesions(self, petNode, seeds, segmentationNode=None, method="adaptive", fraction=None, liverRAS=None,
                       reader="reader1", regions=None, backgrounds=None, backgroundDiameterMm=BACKGROUND_DIAMETER_MM,
                       boneBackground=False, lesionTypes=None):
        """Segment each seed (lesion id, RAS) into its own segment and measure it.

        ``regions`` and ``lesionTypes`` ({lesion id: text}) label the lesions (kept with their segments, so a
        later measurement and the export keep them too).
        ``backgrounds`` ({lesion id: RAS}, or a point list paired by label: see :meth:`backgroundsFromMarkups`),
        ``backgroundDiameterMm`` and ``boneBackground`` choose each lesion's background (:meth:`lesionRequests`).
        A lesion that is not separable gets the 1 mL sphere at its click as segment, tagged and named as such.

        Returns {"segmentation": node, "rows": [study-table rows], "errors": {lesion id: message}, "liver": stats}.
        """
        from netpet.quant.pipeline import quantify
        from netpet.quant.segment import SegmentOptions

        if not seeds:
            raise ValueError("Place at least one point on a lesion.")
        session = self.session(petNode)
        requests = self.lesionRequests(seeds, regions, backgrounds, backgroundDiameterMm, boneBackground, lesionTypes)
        result = quantify(session, requests, reader, SegmentOptions(method=method, fraction=fraction), liverRAS,
                          skip_failed=True)
        segmentationNode = self._segmentationFor(petNode, segmentationNode)
        byID = {r.lesion_id: r for r in requests}
        for lesion_id, lesion in result.lesions.items():
            self._writeSegment(segmentationNode, petNode, lesion_id, lesion, session.volume.shape,
                               result.calls.get(lesion_id, ""), byID[lesion_id].seed_ras, byID[lesion_id].region,
                               byID[lesion_id].lesion_type)
        return {"segmentation": segmentationNode, "rows": result.rows, "errors": result.errors,
                "liver": result.liver}

    def segmentAt(self, petNode, ras, segmentationNode, segmentID, method="adaptive", liverRAS=None,
                  backgroundRAS=None, backgroundDiameterMm=BACKGROUND_DIAMETER_MM, replaceWithSphere=False,
                  beforeWrite=None):
        """One click inside the Segment Editor: the lesion at ``ras`` replaces the segment's content.

        Returns the core's LesionMask, whose ``status``, ``flags`` and ``notes`` say what was found. Where
        no lesion is separable at the click the segment is left unchanged (the caller reports why), unless
        ``replaceWithSphere`` asks for the 1 mL sphere at the click. ``beforeWrite`` is called just before
        the segment changes (the effect saves its undo state there). The call is not made here: measure the
        segmentation for it (the segment's call tag is cleared when its content changes).

        The same as :meth:`preparePET`, :meth:`computeLesion` and :meth:`writeLesion` in a row; an
        application that keeps its views live runs the middle step in a worker thread.

        Raises
        ------
        QuantError
            A click outside the image or the body, on damaged voxels, or a liver method without a liver point.
        """
        prepared = self.preparePET(petNode)
        lesion = self.computeLesion(prepared, ras, method, liverRAS, backgroundRAS, backgroundDiameterMm)
        self.writeLesion(petNode, segmentationNode, segmentID, lesion, ras, replaceWithSphere, beforeWrite)
        return lesion

    def preparePET(self, petNode):
        """The core's SUVVolume of a PET node for :meth:`computeLesion`: a read-only copy of its values with
        its geometry (MRML access: call it on the main thread).

        Kept per node, shared by every SUVQuantLogic (the panel, the Segment Editor effect, an application),
        so that the per-volume quantities a click needs (:meth:`warmUp`) are measured once per volume. Made
        again when the node's image data, voxel values or geometry change (their modification times and
        the IJK-to-RAS matrix). The last :data:`PREPARED_VOLUMES` volumes are kept.

        Raises
        ------
        ValueError
            No PET node, or one without image data.
        """
        image = petNode.GetImageData() if petNode is not None else None
        if image is None:
            raise ValueError("Select a PET volume with image data.")
        scalars = image.GetPointData().GetScalars()
        matrix = vtk.vtkMatrix4x4()
        petNode.GetIJKToRASMatrix(matrix)
        key = (image.GetMTime(), scalars.GetMTime() if scalars is not None else 0,
               tuple(matrix.GetElement(i, j) for i in range(4) for j in range(4)), petNode.GetName())
        node = petNode.GetID() or "", petNode.__this__
        with _PREPARED_LOCK:
            kept = _PREPARED.get(node)
            if kept is not None and kept[0] == key:
                _PREPARED.move_to_end(node)
                return kept[1]
        volume = nodes.suvVolumeFromNode(petNode)
        values = np.array(volume.values, dtype=np.float32, copy=True)  # the node's array may change meanwhile
        values.flags.writeable = False
        volume = dataclasses.replace(volume, values=values)
        with _PREPARED_LOCK:
            _PREPARED[node] = (key, volume)
            _PREPARED.move_to_end(node)
            while len(_PREPARED) > PREPARED_VOLUMES:
                _PREPARED.popitem(last=False)
        return volume

    def warmUp(self, petNode):
        """Prepare the PET (:meth:`preparePET`) and measure its per-volume quantities (the body level, the
        image's resolution from the body outline, the noise correlation) now, e.g. when a session is
        loaded, so that the first click costs what later ones do. Returns the prepared volume."""
        from netpet.quant import references  # noqa: F401 (imported now rather than on the first click)
        from netpet.quant.segment import warm_up

        volume = self.preparePET(petNode)
        warm_up(volume)
        return volume

    @staticmethod
    def computeLesion(prepared, ras, method="adaptive", liverRAS=None, backgroundRAS=None,
                      backgroundDiameterMm=BACKGROUND_DIAMETER_MM, fraction=None):
        """The lesion at ``ras`` on a prepared PET (:meth:`preparePET`): the core's LesionMask, with the liver
        reference when ``method`` is a liver method or ``liverRAS`` is given, and a reader-placed background
        (``backgroundRAS``, a sphere of ``backgroundDiameterMm``). ``fraction`` replaces the method's threshold
        fraction (the core's SegmentOptions.fraction, in (0, 1)). No MRML access: safe in a worker thread.

        Raises
        ------
        QuantError
            A click outside the image or the body, on damaged voxels, or a liver method without a liver point.
        """
        from netpet.quant import references
        from netpet.quant.segment import SegmentOptions, segment

        liver = None
        if method.startswith("liver") or liverRAS is not None:
            liver = references.liver_reference(prepared, liverRAS)
        level = None
        if backgroundRAS is not None:
            level = references.background_point(prepared, tuple(backgroundRAS), backgroundDiameterMm).mean
        return segment(prepared, tuple(ras), SegmentOptions(method=method, fraction=fraction), liver, (), level)

    def writeLesion(self, petNode, segmentationNode, segmentID, lesion, ras=None, replaceWithSphere=False,
                    beforeWrite=None):
        """Write a lesion of :meth:`computeLesion` into the segment (MRML: on the main thread), keeping the
        reader's labels of the segment. A lesion that is not separable leaves the segment unchanged unless
        ``replaceWithSphere`` (its 1 mL sphere at the click); ``beforeWrite`` is called just before the segment
        changes. ``ras`` is the click, kept with the segment as its seed. Returns the segment id written, or
        None when the segment was left unchanged."""
        if not (lesion.separable or replaceWithSphere):
            return None
        if beforeWrite is not None:
            beforeWrite()
        # the reader's labels of the segment stay with it when a click replaces its content
        existing = segmentationNode.GetSegmentation().GetSegment(segmentID)
        labels = self.segmentRecord(existing) if existing is not None else {}
        dimensions = petNode.GetImageData().GetDimensions()
        self._writeSegment(segmentationNode, petNode, segmentID, lesion, tuple(dimensions[::-1]), None,
                           tuple(ras) if ras is not None else None, labels.get("region") or "",
                           labels.get("lesion_type") or "")
        return segmentID

    @staticmethod
    def clickMessage(segmentName, lesion):
        """The sentence the Segment Editor effect shows after a click."""
        notes = "; ".join(lesion.notes)
        if not lesion.separable:
            return (f"{segmentName} left unchanged: no lesion can be separated at the click "
                    f"({notes or 'no focal uptake'}).")
        text = (f"{segmentName}: segmented, {lesion.voxels} voxels ({lesion.method} threshold SUV "
                f"{lesion.threshold:.2f})")
        return text + (f"; {notes}." if notes else ". Measure the segmentation for its call.")

    def _segmentationFor(self, petNode, segmentationNode):
        if segmentationNode is None:
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                                                  f"{petNode.GetName()} lesions")
            segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(petNode)
        return segmentationNode

    @classmethod
    def _writeSegment(cls, segmentationNode, petNode, segmentID, lesion, shape, call, seed=None, region="",
                      lesionType=""):
        """The lesion's mask into its segment, with terminology, status tags and (when given) the call."""
        mask = lesion.full(shape)
        segmentation = segmentationNode.GetSegmentation()
        if segmentation.GetSegment(segmentID) is None:
            segmentation.AddEmptySegment(segmentID, segmentID)
        segment = segmentation.GetSegment(segmentID)
        segment.SetTag(segment.GetTerminologyEntryTagName(), LESION_TERMINOLOGY)
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask.astype(np.uint8), segmentationNode, segmentID, petNode)
        record = {"digest": _maskDigest(mask), "method": lesion.method,
                  "threshold_suv": _finiteOrNone(lesion.threshold),
                  "peak_shift_mm": _finiteOrNone(lesion.peak_shift_mm),
                  "contrast_to_noise": _finiteOrNone(lesion.contrast_to_noise),
                  "seed_ras": [float(v) for v in seed] if seed is not None else None, "region": region or "",
                  "lesion_type": lesionType or "", "notes": list(lesion.notes)}
        cls._markStatus(segmentationNode, segmentID, lesion.status, lesion.flags, record)
        segment.SetTag(TAG_CALL, call or "")
        if call is not None:
            segment.SetColor(*callColor(call))

    @staticmethod
    def _markStatus(segmentationNode, segmentID, status, flags, record=None):
        """Status and flags tags (as the core's export), the record, and the look of a not-separable segment:
        its name ends in '(not separable)' and it is drawn as an outline (it marks a place, not a volume)."""
        segment = segmentationNode.GetSegmentation().GetSegment(segmentID)
        was = _tagValue(segment, TAG_STATUS)
        segment.SetTag(TAG_STATUS, status)
        segment.SetTag(TAG_FLAGS, _tagText(";".join(dict.fromkeys(flags))))
        if record is not None:
            segment.SetTag(TAG_LESION, _tagText(json.dumps(record)))
        name = segment.GetName()
        base = name[:-len(NOT_SEPARABLE_SUFFIX)] if name.endswith(NOT_SEPARABLE_SUFFIX) else name
        separable = status != NOT_SEPARABLE
        segment.SetName(base if separable else base + NOT_SEPARABLE_SUFFIX)
        display = segmentationNode.GetDisplayNode()
        if display is not None and (not separable or was == NOT_SEPARABLE):
            display.SetSegmentOpacity2DFill(segmentID, 1.0 if separable else 0.0)
            display.SetSegmentOpacity3D(segmentID, 1.0 if separable else 0.3)

    @staticmethod
    def segmentRecord(segment):
        """What SUVQuant recorded when it wrote the segment ({} for a segment it did not write)."""
        text = _tagValue(segment, TAG_LESION)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {}

    def _lesionOfSegment(self, volume, segmentationNode, segmentID, petNode):
        """The core's LesionMask of a segment as it is now. A segment NETPET wrote and the reader has not
        edited keeps its status, flags and notes (a not-separable lesion stays one, with no volume); an
        edited one is measured as drawn (method 'edited')."""
        from netpet.quant.segment import lesion_from_mask
        from netpet.quant.volume import QuantError

        segment = segmentationNode.GetSegmentation().GetSegment(segmentID)
        if segment is None:
            raise ValueError(f"{segmentationNode.GetName()} has no segment {segmentID}.")
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentID, petNode) > 0
        try:
            lesion = lesion_from_mask(volume, mask)
        except QuantError as exc:
            raise QuantError(f"Segment {segmentID}: {exc}") from exc
        record = self.segmentRecord(segment)
        status = _tagValue(segment, TAG_STATUS)
        if record and record.get("digest") == _maskDigest(mask):
            threshold = record.get("threshold_suv")
            lesion = dataclasses.replace(
                lesion, status=status or lesion.status, method=record.get("method") or lesion.method,
                flags=[f for f in _tagValue(segment, TAG_FLAGS).split(";") if f],
                notes=list(record.get("notes") or []),
                threshold=float(threshold) if threshold is not None else float("nan"),
                peak_shift_mm=float(record.get("peak_shift_mm") or 0.0),
                contrast_to_noise=record.get("contrast_to_noise"))
        elif status == NOT_SEPARABLE:
            lesion.flags.append("reader-drawn")
            lesion.notes.append("drawn by the reader where NETPET found no separable lesion")
        return lesion

    # -- measurements -----------------------------------------------------------------------------------
    def measureSegmentation(self, petNode, segmentationNode, liverRAS=None, reader="reader1", segmentIDs=None,
                            backgrounds=None, backgroundDiameterMm=BACKGROUND_DIAMETER_MM, boneBackground=False,
                            regions=None, lesionTypes=None):
        """Measure every segment as it is now (after edits in the Segment Editor); recolour and tag by call.

        Segments NETPET wrote and nobody edited keep their status (a not-separable lesion is measured as its
        local uptake, without a volume); the background is chosen as in :meth:`segmentLesions`. Each lesion's
        region and lesion type are those given (``regions``, ``lesionTypes``: {segment id: text}, then kept with
        the segment: :meth:`setLesionLabels`), else those kept with its segment.
        Returns the study-table rows.
        """
        from netpet.quant.pipeline import quantify_lesions

        if segmentationNode is None:
            raise ValueError("There is no segmentation to measure; segment lesions first.")
        session = self.session(petNode)
        segmentation = segmentationNode.GetSegmentation()
        ids = segmentIDs or [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
        if not ids:
            raise ValueError(f"{segmentationNode.GetName()} has no segments to measure.")
        lesions = {segmentID: self._lesionOfSegment(session.volume, segmentationNode, segmentID, petNode)
                   for segmentID in ids}
        present = lambda labels: {k: v for k, v in (labels or {}).items() if segmentation.GetSegment(k)}  # noqa: E731
        self.setLesionLabels(segmentationNode, present(regions), present(lesionTypes))
        seeds, stored, types = [], {}, {}
        for segmentID, lesion in lesions.items():
            record = self.segmentRecord(segmentation.GetSegment(segmentID))
            seed = record.get("seed_ras") or session.volume.index_to_ras(lesion.peak)
            seeds.append((segmentID, tuple(float(v) for v in seed)))
            stored[segmentID] = record.get("region") or ""
            types[segmentID] = record.get("lesion_type") or ""
        requests = self.lesionRequests(seeds, stored, backgrounds, backgroundDiameterMm, boneBackground, types)
        result = quantify_lesions(session, lesions, reader, liver_ras=liverRAS,
                                  requests={r.lesion_id: r for r in requests})
        for segmentID, call in result.calls.items():
            segment = segmentation.GetSegment(segmentID)
            segment.SetColor(*callColor(call))
            segment.SetTag(TAG_CALL, call)
            lesion = lesions[segmentID]
            self._markStatus(segmentationNode, segmentID, lesion.status, lesion.flags)
        return result.rows

    def setLesionLabels(self, segmentationNode, regions=None, lesionTypes=None):
        """Keep each lesion's region and lesion type with its segment ({segment id: text}; ids without a
        segment are refused). Measurements and exports then fill the rows' ``region`` and ``lesion_type``
        from there, cleaned as the command line cleans the manifest's columns (``netpet.schema.clean_label``);
        an empty text clears the label.

        Raises
        ------
        ValueError
            A lesion id that is not a segment of the segmentation.
        """
        from netpet import schema

        if segmentationNode is None or not (regions or lesionTypes):
            return
        segmentation = segmentationNode.GetSegmentation()
        for field, labels in (("region", regions or {}), ("lesion_type", lesionTypes or {})):
            for segmentID, text in labels.items():
                segment = segmentation.GetSegment(segmentID)
                if segment is None:
                    raise ValueError(f"{segmentationNode.GetName()} has no segment {segmentID!r} to label; label the "
                                     "lesions it holds.")
                record = self.segmentRecord(segment)
                record[field] = schema.clean_label(text)
                segment.SetTag(TAG_LESION, _tagText(json.dumps(record)))

    def measureSegment(self, petNode, segmentationNode, segmentID, liverRAS=None):
        """The measurements of one segment as {key: value} (the SegmentStatistics plugin's source)."""
        rows = self.measureSegmentation(petNode, segmentationNode, liverRAS, segmentIDs=[segmentID])
        return rows[0]

    @staticmethod
    def resultsTableNode(rows, tableNode=None):
        """One row per lesion with its status, flags and warnings; units in each column's properties (and in
        the column titles)."""
        columns, numeric = measurements.table_columns(rows)
        tableNode = nodes.tableNodeFromRows(rows, columns, "SUVQuant results", tableNode, numeric=numeric)
        units = dict(measurements.TABLE_COLUMNS)
        for name in columns:
            unit = units.get(name) or ("SUV" if name.endswith("_suv") else "")
            if unit:
                tableNode.SetColumnUnitLabel(name, unit)
                tableNode.SetColumnTitle(name, f"{name} [{unit}]")
        return tableNode

    # -- export and review ------------------------------------------------------------------------------
    def exportStructuredReport(self, studyTablePath, petNode, reader="reader1", sessionID=None, patientID=None,
                               outputFolder=""):
        """Write the DICOM SR (TID 1500 measurement report, ``netpet sr``) of this PET's session and ``reader`` from
        the study table, with the DICOM SEG it references (the one exported beside the .seg.nrrd, else written from
        it), into ``outputFolder`` (default: ``dicom-sr`` beside the study table). The PET must come from DICOM
        (NETPET Reader): the SR references its images. Retracted findings are left out (a warning says so).

        Returns {"reports": [...], "errors": [...], "warnings": [...], "folder"} (netpet.quant.sr.write_reports).

        Raises
        ------
        ValueError
            No table path, a PET without DICOM files, an empty reader, or no row of this session and reader.
        """
        from netpet import schema
        from netpet.quant.sr import SRError, write_reports

        if not studyTablePath:
            raise ValueError("Choose the study table file (.csv or .sqlite) first.")
        reader = schema.clean_label(reader)
        if not reader:
            raise ValueError("Give the reader's id (the SR is one reader's report).")
        session = self.session(petNode, patientID=patientID)
        if not session.source_paths:
            raise ValueError("A DICOM SR needs the PET's DICOM files; load the PET with NETPET Reader.")
        sessionID, _warning = self.sessionIDFor(petNode, studyTablePath, sessionID, patientID=session.patient_id)
        root = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in session.source_paths])
        folder = outputFolder or os.path.join(os.path.dirname(os.path.abspath(studyTablePath)), "dicom-sr")
        try:
            result = write_reports(studyTablePath, root, folder, patient=session.patient_id, session=sessionID,
                                   reader=reader, jobs=1)  # never worker processes inside Slicer
        except SRError as exc:
            raise ValueError(str(exc)) from exc
        return {**result, "folder": folder}

    def exportToStudyTable(self, rows, studyTablePath, petNode, segmentationNode, reader="reader1", dicomSeg=False,
                           sessionID=None, regions=None, lesionTypes=None, patientID=None, timePoint=None,
                           daysFromBaseline=None):
        """Write the segmentation (.seg.nrrd, optionally DICOM SEG) beside the study table and upsert the rows.

        The rows' key is filled as ``netpet quantify`` fills it for the same series (``netpet.schema``): the
        session id given (``sessionID``), else the PET node's (:meth:`setSessionID`), else the one the table
        already holds for this patient's series, else the id derived from its study; the patient id given,
        else the node's study patient id, else its DICOM PatientID; the reader cleaned as a label. ``regions``
        and ``lesionTypes`` ({lesion id: text}) set the lesions' labels (kept with their segments too); rows
        without one keep the labels they were measured with. The .seg.nrrd is named as the command line names
        it (``netpet.schema.segmentation_file_name``) and merged as the core merges: segments already in the
        file with other ids (lesions written by ``netpet quantify``, say) are kept, those with the same id
        replaced. ``timePoint`` (e.g. baseline, FU1) and ``daysFromBaseline`` (days >= 0) fill the rows'
        ``time_point`` and ``days_from_baseline`` as the manifest's columns do for ``netpet quantify``
        (``netpet.schema.check_time_point``, ``check_days_from_baseline``); when not given, the cells the table
        holds are kept.

        Returns {"inserted", "updated", "path", "segmentation_file", "session_id", "warnings"}.

        Raises
        ------
        ValueError
            No table path or rows; a volume without DICOM identity and no session id; an empty reader; a time
            point with a control character or days that are not a number >= 0.
        TableError, ExportError
            A table or segmentation file that cannot be written (both left untouched).
        """
        from netpet import schema
        from netpet.quant.export import ExportError, write_dicom_seg
        from netpet.quant.segment import lesion_from_mask
        from netpet.quant.table import StudyTable, check_writable, locked, replace_atomically

        if not studyTablePath:
            raise ValueError("Choose the study table file (.csv or .sqlite) first.")
        if not rows:
            raise ValueError("There are no measurements to export.")
        reader = schema.clean_label(reader)
        if not reader:
            raise ValueError("Give the reader's id (it is part of every row's key).")
        timeColumns = {}
        try:
            if timePoint is not None:
                timeColumns["time_point"] = schema.check_time_point(timePoint, "Time point: ")
            if daysFromBaseline is not None:
                days = schema.check_days_from_baseline(daysFromBaseline, "Days from baseline: ")
                timeColumns["days_from_baseline"] = "" if days is None else (int(days) if days == int(days) else days)
        except schema.SchemaError as exc:
            raise ValueError(str(exc)) from exc
        table = StudyTable(studyTablePath)
        table.check()  # refuse a file that is not a study table, or cannot be written, before writing anything
        session = self.session(petNode, patientID=patientID)
        sessionID, warning = self.sessionIDFor(petNode, studyTablePath, sessionID, patientID=session.patient_id)
        if not sessionID:
            raise ValueError(f"{petNode.GetName()} carries no DICOM study (it was not loaded from DICOM by NETPET "
                             "Reader), so no session id can be derived; give the session id.")
        warnings = [warning] if warning else []
        for text in warnings:
            logging.warning(f"SUVQuant: {text}")
        self.setLesionLabels(segmentationNode, {k: v for k, v in (regions or {}).items()
                                                if segmentationNode.GetSegmentation().GetSegment(k)},
                             {k: v for k, v in (lesionTypes or {}).items()
                              if segmentationNode.GetSegmentation().GetSegment(k)})
        folder = os.path.dirname(os.path.abspath(studyTablePath))
        name = schema.segmentation_file_name(session.patient_id, sessionID, reader)
        relative = f"segmentations/{name}"
        path = os.path.join(folder, "segmentations", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)

        # the reader's file: locked against a batch run writing it at the same time, merged with the segments
        # the file already holds (other lesion ids), and replaced atomically (a crash leaves the old file or the
        # new one, never a part)
        target = os.path.realpath(path)
        with locked(target, "segmentation", ExportError):
            check_writable(target, path, replaced=True, what="segmentation", error=ExportError)
            merged = self._mergedSegmentation(target, path, segmentationNode, petNode)
            source = merged if merged is not None else segmentationNode
            try:
                source.AddDefaultStorageNode()
                storage = source.GetStorageNode()

                def write(temporary):
                    storage.SetFileName(temporary)
                    written = storage.WriteData(source)
                    storage.SetFileName(path)
                    if not written:
                        raise ExportError(f"Cannot write the segmentation to {path}.")

                replace_atomically(target, write, suffix=".seg.nrrd", what="segmentation", error=ExportError)
            finally:
                if merged is not None:
                    self._removeNode(merged)
        if dicomSeg:
            if not session.source_paths:
                raise ValueError("DICOM SEG needs the PET's DICOM files; load the PET with NETPET Reader.")
            lesions = {}
            for row in rows:
                mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, row["lesion_id"], petNode) > 0
                lesions[row["lesion_id"]] = lesion_from_mask(session.volume, mask)
            write_dicom_seg(path.replace(".seg.nrrd", ".dcm"), session.source_paths, session.volume, lesions,
                            reader=reader)
        labels = {}
        segmentation = segmentationNode.GetSegmentation()
        for row in rows:
            segment = segmentation.GetSegment(str(row.get("lesion_id", "")))
            record = self.segmentRecord(segment) if segment is not None else {}
            labels[row.get("lesion_id")] = {
                "region": schema.clean_label(record["region"] if "region" in record else row.get("region")),
                "lesion_type": schema.clean_label(record["lesion_type"] if "lesion_type" in record
                                                  else row.get("lesion_type"))}
        stamped = [{**row, "patient_id": session.patient_id, "session_id": sessionID, "reader": reader,
                    **labels[row.get("lesion_id")], "segmentation_file": relative, **timeColumns} for row in rows]
        inserted, updated = table.upsert(stamped)
        return {"inserted": inserted, "updated": updated, "path": studyTablePath, "segmentation_file": relative,
                "session_id": sessionID, "warnings": warnings}

    # -- the reader's own reading (issue 14) ------------------------------------------------------------
    def readingKey(self, studyTablePath, petNode, reader, sessionID=None, patientID=None):
        """The key columns of this PET's findings by ``reader`` as the export writes them (patient, session,
        modality, tracer, reader): the same rules as :meth:`exportToStudyTable`, so a reading lands in the
        exported rows.

        Raises
        ------
        ValueError
            No table path, no PET node, an empty reader, or no session id (a volume without DICOM identity).
        """
        from netpet import schema

        if not studyTablePath:
            raise ValueError("Choose the study table file (.csv or .sqlite) first.")
        reader = schema.clean_label(reader)
        if not reader:
            raise ValueError("Give the reader's id (it is part of every row's key).")
        session = self.session(petNode, patientID=patientID)
        sessionID, _warning = self.sessionIDFor(petNode, studyTablePath, sessionID, patientID=session.patient_id)
        if not sessionID:
            raise ValueError(f"{petNode.GetName()} carries no DICOM study, so no session id can be derived; give the "
                             "session id.")
        return {"patient_id": session.patient_id, "session_id": sessionID, "modality": session.modality,
                "tracer": session.tracer, "reader": reader}

    def blindedFindings(self, studyTablePath, petNode, reader, sessionID=None, patientID=None):
        """The rows the reader may see while reading this PET's session: their own rows of the session only
        (``netpet.reading.findings.blinded_rows``; nothing of other readers, other sessions or the consensus)."""
        return self._blindedRows(studyTablePath, self.readingKey(studyTablePath, petNode, reader, sessionID, patientID))

    @staticmethod
    def _blindedRows(studyTablePath, key):
        from netpet.quant.table import StudyTable
        from netpet.reading.findings import blinded_rows

        rows = StudyTable(studyTablePath).read() if os.path.exists(studyTablePath) else []
        return blinded_rows(rows, key["reader"], key["patient_id"], key["session_id"], key["modality"], key["tracer"])

    def _readingRow(self, studyTablePath, petNode, reader, lesionID, sessionID=None, patientID=None):
        from netpet.reading.findings import find_finding

        key = self.readingKey(studyTablePath, petNode, reader, sessionID, patientID)
        if not str(lesionID or "").strip():
            raise ValueError("Give the lesion id of the finding (as in the study table, e.g. L01).")
        rows = self._blindedRows(studyTablePath, key)  # (the key once: it reads the PET's DICOM and the table)
        try:
            return find_finding(rows, key["patient_id"], key["session_id"], key["reader"], str(lesionID).strip(),
                                key["modality"], key["tracer"], where=f"The study table {studyTablePath}")
        except ValueError as exc:
            raise ValueError(f"{exc} Export the lesion first.") if "has no finding" in str(exc) else exc

    def readingOf(self, studyTablePath, petNode, reader, lesionID, sessionID=None, patientID=None):
        """The reader's recorded reading of one finding as form keys ({"readerCall", "confidence",
        "anatomicCorrelate", "sstrRads"}: "unset" for not recorded), its ``row`` (the reader's own) and a
        ``summary`` sentence: the SUV rule's call, the status and, where NETPET proposes one, the SSTR-RADS
        category proposed from the row with its reason (``netpet.clinical.sstr_rads.propose``).

        Raises
        ------
        ValueError
            No such finding of this reader in this session (the sentence names the key and the reader's lesions).
        """
        from netpet import schema
        from netpet.reading.findings import form_key

        row = self._readingRow(studyTablePath, petNode, reader, lesionID, sessionID, patientID)
        parts = [f"{row['lesion_id']}: SUV rule call {row.get('call') or 'none'}"]
        if schema.is_retracted(row):
            parts.append(f"retracted ({row.get('retraction_reason') or 'no reason given'})")
        from netpet.clinical.sstr_rads import propose  # the core ships the SSTR-RADS rules with the module

        category, reason = propose(row)
        if category:
            parts.append(f"SSTR-RADS proposed {category}: {reason}")
        confidence = schema.check_confidence(row.get("confidence"))
        return {"readerCall": form_key(row.get("reader_call")), "confidence": form_key(confidence),
                "anatomicCorrelate": form_key(row.get("anatomic_correlate")), "sstrRads": form_key(row.get("sstr_rads")),
                "row": row, "summary": "; ".join(parts) + "."}

    def recordReading(self, studyTablePath, petNode, reader, lesionID, call=None, confidence=None, correlate=None,
                      sstrRads=None, why=None, by=None, sessionID=None, patientID=None):
        """Write the reader's call, confidence (1-5), anatomic correlate and SSTR-RADS category of one finding of this
        PET's session into the study table, through the same checks and table code as ``netpet record``: only the
        values given change (None leaves a cell; a form's "unset" or '' clears it), every change in the audit trail
        with ``by`` (default: the reader) and ``why``. Returns the audit entries written (0: nothing changed).

        Raises
        ------
        ValueError
            No such finding of this reader in this session, no value given, or a value outside its scale.
        TableError
            The table cannot be written (left untouched).
        """
        from netpet import schema
        from netpet.quant.table import StudyTable
        from netpet.reading.findings import form_value, reader_values, record_reading

        row = self._readingRow(studyTablePath, petNode, reader, lesionID, sessionID, patientID)
        try:
            values = reader_values(form_value(call), form_value(confidence), form_value(correlate), form_value(sstrRads))
        except schema.SchemaError as exc:
            raise ValueError(str(exc)) from exc
        return record_reading(StudyTable(studyTablePath), row, values, by=by, why=why)

    def relabelFinding(self, studyTablePath, petNode, reader, lesionID, region=None, lesionType=None, why=None,
                       by=None, sessionID=None, patientID=None):
        """Write the reader's region and lesion type of one saved finding of this PET's session into the study
        table (the same table code and audit trail as :meth:`recordReading`); None leaves a label, '' clears it.
        Returns the audit entries written (0: nothing changed).

        Raises
        ------
        ValueError
            No such finding of this reader in this session, no label given, or a label with a line break.
        TableError
            The table cannot be written (left untouched).
        """
        from netpet.quant.table import StudyTable
        from netpet.reading.findings import label_values, record_reading

        row = self._readingRow(studyTablePath, petNode, reader, lesionID, sessionID, patientID)
        return record_reading(StudyTable(studyTablePath), row, label_values(region, lesionType), by=by, why=why)

    def retractFinding(self, studyTablePath, petNode, reader, lesionID, reason, by=None, sessionID=None, patientID=None):
        """Retract one finding of this PET's session (kept in the table, counted by no analysis), with the reason
        (required), as ``netpet retract``. Returns the audit entries written (0: retracted already for it).

        Raises
        ------
        ValueError
            No reason, or no such finding of this reader in this session.
        TableError
            The table cannot be written (left untouched).
        """
        from netpet.quant.table import StudyTable
        from netpet.reading.findings import retract_finding

        if not str(reason or "").strip():
            raise ValueError("Say why the finding is retracted (a reason is required).")
        row = self._readingRow(studyTablePath, petNode, reader, lesionID, sessionID, patientID)
        return retract_finding(StudyTable(studyTablePath), row, reason, by=by)

    def restoreFinding(self, studyTablePath, petNode, reader, lesionID, why=None, by=None, sessionID=None,
                       patientID=None):
        """Undo the retraction of one finding, as ``netpet restore``; returns the audit entries written (0: it was
        not retracted).

        Raises
        ------
        ValueError
            No such finding of this reader in this session.
        TableError
            The table cannot be written (left untouched).
        """
        from netpet.quant.table import StudyTable
        from netpet.reading.findings import restore_finding

        row = self._readingRow(studyTablePath, petNode, reader, lesionID, sessionID, patientID)
        return restore_finding(StudyTable(studyTablePath), row, why=why, by=by)

    @staticmethod
    def _attribute(node, key):
        return (node.GetAttribute(nodes.ATTRIBUTE_PREFIX + key) or "") if node is not None else ""

    @staticmethod
    def _removeNode(node):
        """Remove a scratch node with its storage and display nodes."""
        scene = slicer.mrmlScene
        for other in (node.GetStorageNode(), node.GetDisplayNode()):
            if other is not None:
                scene.RemoveNode(other)
        scene.RemoveNode(node)

    def _mergedSegmentation(self, target, path, segmentationNode, petNode):
        """A scratch copy of ``segmentationNode`` that also holds the segments of the existing file ``target``
        whose ids the node lacks (None when there is no such file or segment: the node is written as it is).
        As the core's merge (netpet.quant.export): a file that cannot be read or lies on another image grid is
        refused, untouched.

        Raises
        ------
        ExportError
            The existing file cannot be read, or holds segments on another grid than the PET's.
        """
        import slicerio

        from netpet.quant.export import ExportError

        if not os.path.exists(target) or os.path.getsize(target) == 0:
            return None
        try:
            header = slicerio.read_segmentation(target, skip_voxels=True)
        except Exception as exc:  # noqa: BLE001 - slicerio/pynrrd raise many kinds on a damaged file
            raise ExportError(f"The segmentation {path} exists but cannot be read ({type(exc).__name__}: {exc}); move "
                              "it away (its segments would be lost by writing over it) and export again.") from exc
        own = segmentationNode.GetSegmentation()
        ownIDs = [own.GetNthSegmentID(i) for i in range(own.GetNumberOfSegments())]
        kept = [s["id"] for s in header.get("segments", []) if s.get("id") not in ownIDs]
        if not kept:
            return None
        volume = nodes.suvVolumeFromNode(petNode)
        matrix = np.asarray(header["ijkToLPS"], dtype=float)
        axes = np.asarray(volume.direction, dtype=float).reshape(3, 3) * np.asarray(volume.spacing, dtype=float)
        offset = np.linalg.solve(axes, matrix[:3, 3] - np.asarray(volume.origin, dtype=float))
        if not np.allclose(matrix[:3, :3], axes, atol=1e-4) or not np.allclose(offset, np.round(offset), atol=1e-3):
            raise ExportError(f"The segmentation {path} holds segments ({', '.join(kept[:5])}) on another image grid "
                              f"than {petNode.GetName()} (another spacing, orientation or origin); move it away or "
                              "give this series another session id, it was left untouched.")
        existing = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "NETPET export (existing)")
        merged = None
        try:
            existing.AddDefaultStorageNode()
            existing.GetStorageNode().SetFileName(target)
            if not existing.GetStorageNode().ReadData(existing):
                raise ExportError(f"The segmentation {path} exists but cannot be read; move it away (its segments "
                                  "would be lost by writing over it) and export again.")
            merged = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "NETPET export (merged)")
            merged.GetSegmentation().DeepCopy(own)
            merged.SetReferenceImageGeometryParameterFromVolumeNode(petNode)
            for segmentID in kept:
                if not merged.GetSegmentation().CopySegmentFromSegmentation(existing.GetSegmentation(), segmentID):
                    raise ExportError(f"Segment {segmentID} of {path} cannot be kept; the file was left untouched.")
            return merged
        except BaseException:
            if merged is not None:
                self._removeNode(merged)
            raise
        finally:
            self._removeNode(existing)

    # -- review -------------------------------------------------------------------------------------------
    def indexFor(self, folder, progress=None, refresh=False):
        """The DICOM index of ``folder``, made once and kept (``refresh`` indexes it again: after files were
        added). Review and loading reuse it instead of indexing the folder for every lesion."""
        from NETPETReader import NETPETReaderLogic

        key = os.path.realpath(folder) if folder else ""
        if refresh or key not in self._indexes:
            self._indexes[key] = NETPETReaderLogic().indexFolder(folder, progress=progress)
        return self._indexes[key]

    def rememberIndex(self, index, folder=None):
        """Keep an index made elsewhere (NETPET Reader's panel) for the reviews to come."""
        root = folder or getattr(index, "root", "") or ""
        self._indexes[os.path.realpath(root) if root else ""] = index
        return index

    @staticmethod
    def reviewTargets(studyTablePath):
        """What the table holds to review, one dict per row (sorted by patient, session, reader, lesion): its key,
        call, region and lesion type; a session read without findings has an empty lesion id. The review panel's
        patient, session and lesion choices come from here."""
        from netpet.quant.table import KEY, StudyTable

        rows = StudyTable(studyTablePath).read() if studyTablePath and os.path.exists(studyTablePath) else []
        fields = KEY + ("call", "region", "lesion_type")
        targets = [{k: row.get(k) or "" for k in fields} for row in rows]
        return sorted(targets, key=lambda t: (t["patient_id"], t["session_id"], t["reader"], t["lesion_id"]))

    @staticmethod
    def _reviewRow(rows, where, patientID, sessionID, lesionID, reader):
        """The row a review reopens (see :meth:`review`); a ValueError that names the choices otherwise."""
        def choices(values):
            values = sorted({v for v in values})
            shown = ", ".join(repr(v) for v in values[:12])
            return shown + (f" and {len(values) - 12} more" if len(values) > 12 else "")

        if not patientID:
            patients = choices(r.get("patient_id", "") for r in rows)
            raise ValueError(f"Choose a patient to review (the table {where} holds {patients or 'no rows'}).")
        found = [r for r in rows if r.get("patient_id") == patientID]
        if not found:
            raise ValueError(f"The table {where} has no rows of patient {patientID!r}; its patients: "
                             f"{choices(r.get('patient_id', '') for r in rows) or 'none'}.")
        for column, value, what in (("session_id", sessionID, "session"), ("reader", reader, "reader"),
                                    ("lesion_id", lesionID, "lesion")):
            if value:
                narrowed = [r for r in found if r.get(column) == value]
                if not narrowed:
                    raise ValueError(f"Patient {patientID} has no {what} {value!r} in {where} (with the choices made); "
                                     f"its {what}s: {choices(r.get(column, '') for r in found if r.get(column))}.")
                found = narrowed
        sessions = {(r.get("session_id", ""), r.get("modality", ""), r.get("tracer", "")) for r in found}
        if len(sessions) > 1:
            lesion = f" with lesion {lesionID!r}" if lesionID else ""
            raise ValueError(f"Patient {patientID} has {len(sessions)} sessions{lesion} in {where}; choose one: "
                             f"{choices(s for s, _m, _t in sessions)}.")
        readers = {r.get("reader", "") for r in found}
        if len(readers) > 1:
            raise ValueError(f"Session {found[0].get('session_id')} of patient {patientID} was read by "
                             f"{len(readers)} readers; choose one: {choices(readers)}.")
        lesions = sorted((r for r in found if r.get("lesion_id")), key=lambda r: r["lesion_id"])
        return lesions[0] if lesions else found[0]

    def _petRecord(self, row, index, dicomFolder):
        """(index, record) of the row's PET series: from ``index``, else the index of ``dicomFolder`` (kept),
        else any index this Logic keeps that holds the series."""
        from netpet.errors import AmbiguousInputError, NetpetError

        if index is not None:
            self.rememberIndex(index)
            candidates = [index]
        elif dicomFolder:
            candidates = [self.indexFor(dicomFolder)]
        else:
            candidates = list(self._indexes.values())
            if not candidates:
                raise ValueError("Choose the DICOM folder that holds the study's PET series.")
        uid = row.get("series_uid") or ""
        if not uid:
            raise ValueError(f"The row of lesion {row.get('lesion_id') or '(session)'} names no PET series "
                             "(series_uid); it cannot be reopened.")
        problem = None
        for candidate in candidates:
            try:
                try:
                    return candidate, candidate.series(uid)
                except AmbiguousInputError:  # one UID under two patients (an original beside its copy): the row's
                    return candidate, candidate.series(uid, patient_id=row.get("patient_id", ""))
            except NetpetError as exc:
                problem = exc
        raise ValueError(f"The PET series {uid} of patient {row.get('patient_id')} is not in the DICOM folder indexed "
                         f"({problem}); choose the folder that holds it.")

    def _loadedPET(self, record, suvType):
        """The PET of ``record`` already in the scene as an SUV volume of this type, with its CT/MR partner
        (loaded by an earlier review or by NETPET Reader), or (None, None)."""
        volumes = slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
        pet = next((n for n in volumes if self._attribute(n, "SeriesInstanceUID") == record.series_uid
                    and self._attribute(n, "SUVType") == suvType and self._attribute(n, "Provenance")
                    and self._attribute(n, "PatientID") == (record.patient_id or "")), None)
        if pet is None or not record.partner_series_uid:
            return pet, None
        partner = next((n for n in volumes if self._attribute(n, "SeriesInstanceUID") == record.partner_series_uid
                        and not self._attribute(n, "Provenance")), None)
        return (pet, partner) if partner is not None else (None, None)

    def loadSegmentationFile(self, path):
        """The segmentation node of a .seg.nrrd, read again into the node an earlier review made for it (the
        review here and the browser review app show saved findings with it)."""
        attribute = nodes.ATTRIBUTE_PREFIX + "SegmentationFile"
        node = next((n for n in slicer.util.getNodesByClass("vtkMRMLSegmentationNode")
                     if n.GetAttribute(attribute) == os.path.realpath(path)), None)
        if node is None:
            node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                                      os.path.basename(path).replace(".seg.nrrd", ""))
            node.SetAttribute(attribute, os.path.realpath(path))
            node.AddDefaultStorageNode()
        else:
            node.GetSegmentation().RemoveAllSegments()
        node.GetStorageNode().SetFileName(path)
        if not node.GetStorageNode().ReadData(node):
            raise OSError(f"Cannot read the segmentation {path}.")
        node.CreateDefaultDisplayNodes()
        return node

    def review(self, studyTablePath, patient_id=None, session_id=None, lesion_id=None, index=None, dicomFolder=None,
               reader=None, suvType=None, opacity=0.5):
        """Reopen a finding of the study table by its key: the patient, its session and lesion (and reader,
        where several read the session). ``session_id`` may be left out when the patient has one session with
        that lesion; ``lesion_id`` too, to reopen a session (centred on its first lesion, if any). A row dict
        of the table may be given instead of ``patient_id``.

        The PET is loaded as SUV with its CT or MR partner, fused in linked views (NETPET Reader's
        ``loadSession``), or reused when an earlier review or NETPET Reader loaded it; the DICOM folder is
        indexed once and the index kept (``index`` given, or :meth:`indexFor` of ``dicomFolder``; without
        either, the indexes this Logic keeps). The reopened PET node carries the row's patient and session id,
        so an export after corrections writes into the same rows.

        Returns a :class:`ReviewResult`: PET node, segmentation node, centroid RAS (None for a session read
        without findings), the row, the sentences to show the reader (not separable, equivocal, every warning
        of the row and of its SUV) and the CT/MR node.

        Raises
        ------
        ValueError
            No such patient, session, reader or lesion in the table, or several that fit (the choices named);
            no DICOM folder, or the PET series not in it.
        """
        from netpet.quant.table import StudyTable

        from NETPETReader import NETPETReaderLogic

        if isinstance(patient_id, bool) or isinstance(patient_id, int):
            raise ValueError("Review takes the patient, session and lesion ids of a finding, not a row number.")
        rows = StudyTable(studyTablePath).read()
        if isinstance(patient_id, dict):
            row = patient_id
        else:
            row = self._reviewRow(rows, studyTablePath, patient_id, session_id, lesion_id, reader)
        owner, record = self._petRecord(row, index, dicomFolder)
        suvType = suvType or row.get("suv_type") or "bw"
        petNode, anatomicalNode = self._loadedPET(record, suvType)
        if petNode is None:
            petNode, anatomicalNode = NETPETReaderLogic().loadSession(owner, record.series_uid, suvType,
                                                                      patientID=record.patient_id or None)
        else:
            nodes.fuse(petNode, anatomicalNode, opacity)
        self.setSessionID(petNode, row.get("session_id", ""), patientID=row.get("patient_id", ""))
        segmentationNode = None
        if row.get("segmentation_file"):
            segmentationNode = self.loadSegmentationFile(
                os.path.join(os.path.dirname(os.path.abspath(studyTablePath)), row["segmentation_file"]))
        centroid = None
        for columns in (("centroid_r", "centroid_a", "centroid_s"), ("seed_r", "seed_a", "seed_s")):
            try:
                point = tuple(float(row[k]) for k in columns)
            except (KeyError, TypeError, ValueError):
                continue
            if all(math.isfinite(v) for v in point):
                centroid = point
                break
        if centroid is not None:
            nodes.jumpSlicesTo(centroid)
        return ReviewResult(petNode, segmentationNode, centroid, dict(row), measurements.row_messages(row),
                            anatomicalNode)


#
# Test (inside Slicer; headless Logic tests are in Testing/slicer)
#

class SUVQuantTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_click_measure_export()

    def test_click_measure_export(self):
        import csv
        import tempfile

        from netpet.phantom import generate_study

        from NETPETReader import NETPETReaderLogic

        folder = tempfile.mkdtemp()
        generate_study(folder, patients=1, seed=3, tracers=("dotatate",), modalities=("petct",))
        with open(os.path.join(folder, "truth", "lesions.csv"), newline="") as handle:
            truth = [r for r in csv.DictReader(handle) if r["avid"] == "1"]
        reader = NETPETReaderLogic()
        index = reader.indexFolder(os.path.join(folder, "dicom"))
        pet = reader.loadPET(index.pet_series()[0])
        logic = SUVQuantLogic()
        seeds = [(t["lesion_id"], tuple(float(t[k]) for k in ("center_r", "center_a", "center_s"))) for t in truth]
        result = logic.segmentLesions(pet, seeds)
        self.assertEqual(result["segmentation"].GetSegmentation().GetNumberOfSegments(), len(result["rows"]))
        summary = logic.exportToStudyTable(result["rows"], os.path.join(folder, "study.csv"), pet,
                                           result["segmentation"])
        self.assertEqual(summary["inserted"], len(result["rows"]))
        # the reader's reading of the first lesion, and its retraction, land in the study table's audit trail
        from netpet.quant.table import StudyTable

        table = os.path.join(folder, "study.csv")
        lesionID = result["rows"][0]["lesion_id"]
        self.assertEqual(logic.recordReading(table, pet, "reader1", lesionID, call="positive", confidence="5"), 2)
        self.assertEqual(logic.retractFinding(table, pet, "reader1", lesionID, "test retraction"), 2)
        self.assertEqual([e["action"] for e in StudyTable(table).audit(lesion_id=lesionID)][-4:],
                         ["update", "update", "retract", "retract"])
        self.delayDisplay("Test passed")
