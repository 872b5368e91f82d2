"""SUVQuant: click lesions on PET, review the contours, measure against liver and background, export.

Module / ParameterNode / Widget / Logic / Test in one file. The Logic adapts MRML nodes (PET
volume, markups, segmentation, tables) to ``netpet.quant``; it never opens dialogs. Slicer
extension points: a Segment Editor effect "PET lesion" (SUVQuantLib/SegmentEditorEffect.py) and a
SegmentStatistics plugin with DICOM-coded SUV measurements (SUVQuantLib/SegmentStatisticsPlugin.py).
"""

import json
import logging
import os
import pathlib
from typing import Annotated

import numpy as np

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from NETPETLib import nodes
from NETPETLib.widgets import ParameterNodeWidgetMixin
from SUVQuantLib import measurements

METHODS = ("adaptive", "fixed41", "fixed50", "absolute", "liver-percist", "liver-max", "gradient")
CALL_COLORS = {"positive": (0.85, 0.15, 0.15), "negative": (0.2, 0.4, 0.85), "": (0.6, 0.6, 0.6)}
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
            "liver-threshold call and the Krenning score, and export the segmentation and one row per lesion into "
            "the study table. Review mode reopens any row of the study table.")
        self.parent.acknowledgementText = _("Please cite NETPET. Segmentation defaults and their accuracy: see the "
                                            "project README.")
        if getattr(slicer, "app", None) is not None:
            slicer.app.connect("startupCompleted()", registerExtensionPoints)


def registerExtensionPoints():
    """The Segment Editor effect and the SegmentStatistics plugin (need the full application)."""
    try:
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        instance = effects.qSlicerSegmentEditorScriptedEffect(None)
        path = os.path.join(os.path.dirname(__file__), "SUVQuantLib", "SegmentEditorEffect.py")
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
    segmentation - where the lesions go, one segment per lesion
    resultsTable - the measurements, one row per lesion
    method - threshold method
    reader - the reader's id in the study table
    studyTablePath - the study-wide table (.csv or .sqlite)
    dicomSeg - also export DICOM SEG
    """

    petVolume: slicer.vtkMRMLScalarVolumeNode
    lesionPoints: slicer.vtkMRMLMarkupsFiducialNode
    liverPoint: slicer.vtkMRMLMarkupsFiducialNode
    segmentation: slicer.vtkMRMLSegmentationNode
    resultsTable: slicer.vtkMRMLTableNode
    method: Annotated[str, Choice(list(METHODS))] = "adaptive"
    reader: str = "reader1"
    studyTablePath: pathlib.Path
    dicomSeg: bool = False


#
# Widget
#

class SUVQuantWidget(ParameterNodeWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
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
        self.ui.resultsTableSelector.connect("currentNodeChanged(vtkMRMLNode*)",
                                             self.ui.resultsTableView.setMRMLTableNode)
        self.observeScene()
        self.ui.segmentButton.connect("clicked(bool)", self.onSegmentButton)
        self.ui.measureButton.connect("clicked(bool)", self.onMeasureButton)
        self.ui.autoLiverButton.connect("clicked(bool)", self.onAutoLiverButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.reviewButton.connect("clicked(bool)", self.onReviewButton)
        self.ui.editButton.connect("clicked(bool)", self.onEditButton)
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

    def _liverRAS(self):
        points = self._parameterNode.liverPoint
        if points and points.GetNumberOfControlPoints():
            return points.GetNthControlPointPositionWorld(0)
        return None

    def onAutoLiverButton(self):
        with slicer.util.tryWithErrorDisplay(_("Placing the liver reference failed."), waitCursor=True):
            p = self._parameterNode
            if not p.liverPoint:
                p.liverPoint = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Liver reference")
            ras = self.logic.autoLiver(p.petVolume)
            p.liverPoint.RemoveAllControlPoints()
            p.liverPoint.AddControlPoint(*ras, "liver")

    def onSegmentButton(self):
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=True):
            from NETPETLib import dependencies

            if not dependencies.ensureInstalled():
                return
            p = self._parameterNode
            seeds = self.logic.seedsFromMarkups(p.lesionPoints)
            result = self.logic.segmentLesions(p.petVolume, seeds, p.segmentation, p.method, liverRAS=self._liverRAS(),
                                               reader=p.reader)
            p.segmentation = result["segmentation"]
            p.resultsTable = self.logic.resultsTableNode(result["rows"], p.resultsTable)
            self._rows = result["rows"]
            for message in result["errors"].values():
                logging.warning(message)
            self.ui.statusLabel.text = _("{n} lesion(s) segmented").format(n=len(result["rows"]))

    def onEditButton(self):
        with slicer.util.tryWithErrorDisplay(_("Cannot open the Segment Editor."), waitCursor=False):
            editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
            slicer.util.selectModule("SegmentEditor")
            editor.setSegmentationNode(self._parameterNode.segmentation)
            editor.setSourceVolumeNode(self._parameterNode.petVolume)

    def onMeasureButton(self):
        with slicer.util.tryWithErrorDisplay(_("Measuring the segments failed."), waitCursor=True):
            p = self._parameterNode
            rows = self.logic.measureSegmentation(p.petVolume, p.segmentation, liverRAS=self._liverRAS(),
                                                  reader=p.reader)
            p.resultsTable = self.logic.resultsTableNode(rows, p.resultsTable)
            self._rows = rows

    def onExportButton(self):
        with slicer.util.tryWithErrorDisplay(_("Export failed; the study table was left as it was."), waitCursor=True):
            p = self._parameterNode
            if not self._rows:
                self.onMeasureButton()
            summary = self.logic.exportToStudyTable(self._rows, _path(p.studyTablePath), p.petVolume, p.segmentation,
                                                    reader=p.reader, dicomSeg=p.dicomSeg)
            self.ui.statusLabel.text = _("{inserted} new and {updated} updated rows in {path}").format(**summary)

    def onReviewButton(self):
        with slicer.util.tryWithErrorDisplay(_("Review failed."), waitCursor=True):
            p = self._parameterNode
            row = self.ui.reviewRowSpinBox.value
            pet, segmentation, centroid = self.logic.review(_path(p.studyTablePath), row,
                                                            self.ui.dicomFolderButton.directory)
            p.petVolume, p.segmentation = pet, segmentation
            slicer.util.setSliceViewerLayers(foreground=pet, foregroundOpacity=0.5)


def _path(value):
    """A path parameter as text ('' when unset: pathlib turns '' into '.')."""
    text = str(value) if value is not None else ""
    return "" if text in ("", ".") else text


#
# Logic
#

class SUVQuantLogic(ScriptedLoadableModuleLogic):
    """Segmentation, references, measurements, call, export and review on MRML nodes. No dialogs."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SUVQuantParameterNode(super().getParameterNode())

    # -- the session behind a PET node -----------------------------------------------------------------
    @staticmethod
    def session(petNode, patientID=None, sessionID=None):
        """The core's Session of an SUV volume node (identity and provenance from its NETPET attributes)."""
        from netpet.quant.pipeline import Session

        if petNode is None:
            raise ValueError("Select the PET (SUV) volume first.")
        provenance = nodes.provenance(petNode)
        attribute = lambda key: petNode.GetAttribute(nodes.ATTRIBUTE_PREFIX + key) or ""  # noqa: E731
        files = json.loads(attribute("SourceFiles") or "[]")
        return Session(nodes.suvVolumeFromNode(petNode), patientID or attribute("PatientID") or petNode.GetName(),
                       sessionID or attribute("StudyInstanceUID") or petNode.GetName(),
                       attribute("Modality") or "PET", attribute("Tracer") or "unknown",
                       attribute("SeriesInstanceUID"), attribute("SUVType") or "bw", provenance or None, files)

    def autoLiver(self, petNode):
        """The automatic liver reference point (RAS) found from the PET itself."""
        from netpet.quant.references import auto_liver

        return tuple(auto_liver(nodes.suvVolumeFromNode(petNode)))

    @staticmethod
    def seedsFromMarkups(markupsNode):
        """[(lesion id, RAS)] from a point list; labels are the lesion ids (numbered when empty or repeated)."""
        seeds, seen = [], set()
        if markupsNode is None:
            return seeds
        for i in range(markupsNode.GetNumberOfControlPoints()):
            label = markupsNode.GetNthControlPointLabel(i).strip() or f"L{i + 1:02d}"
            if label in seen:
                label = f"{label}-{i + 1}"
            seen.add(label)
            seeds.append((label, tuple(markupsNode.GetNthControlPointPositionWorld(i))))
        return seeds

    # -- segmentation ---------------------------------------------------------------------------------
    def segmentLesions(self, petNode, seeds, segmentationNode=None, method="adaptive", fraction=None, liverRAS=None,
                       reader="reader1", regions=None):
        """Segment each seed (lesion id, RAS) into its own segment and measure it.

        Returns {"segmentation": node, "rows": [study-table rows], "errors": {lesion id: message}}.
        """
        from netpet.quant.pipeline import LesionRequest, quantify
        from netpet.quant.segment import SegmentOptions

        if not seeds:
            raise ValueError("Place at least one point on a lesion.")
        session = self.session(petNode)
        requests = [LesionRequest(lesion_id, tuple(ras), (regions or {}).get(lesion_id, "")) for lesion_id, ras in seeds]
        result = quantify(session, requests, reader, SegmentOptions(method=method, fraction=fraction), liverRAS,
                          skip_failed=True)
        segmentationNode = self._segmentationFor(petNode, segmentationNode)
        for lesion_id, lesion in result.lesions.items():
            self._writeSegment(segmentationNode, petNode, lesion_id, lesion.full(session.volume.shape),
                               result.calls.get(lesion_id, ""))
        return {"segmentation": segmentationNode, "rows": result.rows, "errors": result.errors,
                "liver": result.liver}

    def segmentAt(self, petNode, ras, segmentationNode, segmentID, method="adaptive", liverRAS=None):
        """One click inside the Segment Editor: the lesion at ``ras`` replaces the segment's content."""
        from netpet.quant import references
        from netpet.quant.segment import SegmentOptions, segment

        volume = nodes.suvVolumeFromNode(petNode)
        liver = None
        if method.startswith("liver") or liverRAS is not None:
            liver = references.liver_reference(volume, liverRAS)
        lesion = segment(volume, tuple(ras), SegmentOptions(method=method), liver)
        self._writeSegment(segmentationNode, petNode, segmentID, lesion.full(volume.shape), None)
        return lesion

    def _segmentationFor(self, petNode, segmentationNode):
        if segmentationNode is None:
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                                                  f"{petNode.GetName()} lesions")
            segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(petNode)
        return segmentationNode

    @staticmethod
    def _writeSegment(segmentationNode, petNode, segmentID, mask, call):
        segmentation = segmentationNode.GetSegmentation()
        if segmentation.GetSegment(segmentID) is None:
            segmentation.AddEmptySegment(segmentID, segmentID)
        segment = segmentation.GetSegment(segmentID)
        if call is not None:
            segment.SetColor(*CALL_COLORS.get(call, CALL_COLORS[""]))
            segment.SetTag("NETPET.Call", call)
        segment.SetTag(segment.GetTerminologyEntryTagName(), LESION_TERMINOLOGY)
        slicer.util.updateSegmentBinaryLabelmapFromArray(np.asarray(mask, dtype=np.uint8), segmentationNode, segmentID,
                                                         petNode)

    # -- measurements -----------------------------------------------------------------------------------
    def measureSegmentation(self, petNode, segmentationNode, liverRAS=None, reader="reader1", segmentIDs=None):
        """Measure every segment as it is now (after edits in the Segment Editor); recolour by call."""
        from netpet.quant.pipeline import quantify_lesions
        from netpet.quant.segment import lesion_from_mask

        if segmentationNode is None:
            raise ValueError("There is no segmentation to measure; segment lesions first.")
        session = self.session(petNode)
        segmentation = segmentationNode.GetSegmentation()
        ids = segmentIDs or [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
        lesions = {}
        for segmentID in ids:
            mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentID, petNode) > 0
            lesions[segmentID] = lesion_from_mask(session.volume, mask)
        result = quantify_lesions(session, lesions, reader, liver_ras=liverRAS)
        for segmentID, call in result.calls.items():
            segment = segmentation.GetSegment(segmentID)
            segment.SetColor(*CALL_COLORS[call])
            segment.SetTag("NETPET.Call", call)
        return result.rows

    def measureSegment(self, petNode, segmentationNode, segmentID, liverRAS=None):
        """The measurements of one segment as {key: value} (the SegmentStatistics plugin's source)."""
        rows = self.measureSegmentation(petNode, segmentationNode, liverRAS, segmentIDs=[segmentID])
        return rows[0]

    @staticmethod
    def resultsTableNode(rows, tableNode=None):
        """One row per lesion, units in each column's properties (and in the column titles)."""
        columns = [name for name, _unit in measurements.TABLE_COLUMNS]
        tableNode = nodes.tableNodeFromRows(rows, columns, "SUVQuant results", tableNode, numeric=measurements.NUMERIC)
        for name, unit in measurements.TABLE_COLUMNS:
            if unit:
                tableNode.SetColumnUnitLabel(name, unit)
                tableNode.SetColumnTitle(name, f"{name} [{unit}]")
        return tableNode

    # -- export and review ------------------------------------------------------------------------------
    def exportToStudyTable(self, rows, studyTablePath, petNode, segmentationNode, reader="reader1", dicomSeg=False):
        """Write the segmentation (.seg.nrrd, optionally DICOM SEG) beside the study table and upsert the rows.

        Returns {"inserted", "updated", "path", "segmentation_file"}.
        """
        from netpet.quant.export import write_dicom_seg
        from netpet.quant.segment import lesion_from_mask
        from netpet.quant.table import StudyTable

        if not studyTablePath:
            raise ValueError("Choose the study table file (.csv or .sqlite) first.")
        if not rows:
            raise ValueError("There are no measurements to export.")
        table = StudyTable(studyTablePath)
        table.read()  # refuse a file that is not a study table before writing anything
        session = self.session(petNode)
        folder = os.path.dirname(os.path.abspath(studyTablePath))
        name = f"{session.patient_id}_{session.session_id}_{reader}.seg.nrrd".replace(os.sep, "_").replace(" ", "_")
        relative = f"segmentations/{name}"
        path = os.path.join(folder, "segmentations", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        segmentationNode.AddDefaultStorageNode()
        storage = segmentationNode.GetStorageNode()
        storage.SetFileName(path)
        if not storage.WriteData(segmentationNode):
            raise OSError(f"Cannot write the segmentation to {path}.")
        if dicomSeg:
            if not session.source_paths:
                raise ValueError("DICOM SEG needs the PET's DICOM files; load the PET with NETPET Reader.")
            lesions = {}
            for row in rows:
                mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, row["lesion_id"], petNode) > 0
                lesions[row["lesion_id"]] = lesion_from_mask(session.volume, mask)
            write_dicom_seg(path.replace(".seg.nrrd", ".dcm"), session.source_paths, session.volume, lesions,
                            reader=reader)
        stamped = [{**row, "reader": reader, "segmentation_file": relative} for row in rows]
        inserted, updated = table.upsert(stamped)
        return {"inserted": inserted, "updated": updated, "path": studyTablePath, "segmentation_file": relative}

    def review(self, studyTablePath, row, dicomFolder=None, index=None, suvType=None):
        """Reopen a row of the study table: its PET (by series UID under ``dicomFolder``), its segmentation,
        and the views centred on the lesion. ``row`` is a 0-based row number or a row dict.

        Returns (PET node, segmentation node, centroid RAS).
        """
        from netpet.quant.table import StudyTable

        from NETPETReader import NETPETReaderLogic

        rows = StudyTable(studyTablePath).read()
        if isinstance(row, int):
            lesion_rows = [r for r in rows if r.get("lesion_id")]
            if not 0 <= row < len(lesion_rows):
                raise ValueError(f"{studyTablePath} has {len(lesion_rows)} lesion rows; choose 0 to {len(lesion_rows) - 1}.")
            row = lesion_rows[row]
        reader = NETPETReaderLogic()
        if index is None:
            if not dicomFolder:
                raise ValueError("Choose the DICOM folder that holds the study's PET series.")
            index = reader.indexFolder(dicomFolder)
        record = index.series(row["series_uid"])
        petNode = reader.loadPET(record, suvType or row.get("suv_type") or "bw")
        segmentationNode = None
        if row.get("segmentation_file"):
            path = os.path.join(os.path.dirname(os.path.abspath(studyTablePath)), row["segmentation_file"])
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                                                  os.path.basename(path).replace(".seg.nrrd", ""))
            segmentationNode.AddDefaultStorageNode()
            segmentationNode.GetStorageNode().SetFileName(path)
            if not segmentationNode.GetStorageNode().ReadData(segmentationNode):
                raise OSError(f"Cannot read the segmentation {path}.")
            segmentationNode.CreateDefaultDisplayNodes()
        centroid = tuple(float(row[k]) for k in ("centroid_r", "centroid_a", "centroid_s"))
        nodes.jumpSlicesTo(centroid)
        return petNode, segmentationNode, centroid


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
        self.delayDisplay("Test passed")
