"""NETPETReader: hybrid PET/CT and PET/MR studies into Slicer, PET in SUV with its provenance.

Module / ParameterNode / Widget / Logic / Test in one file, as Slicer's scripted-module template.
The Logic is an adapter over the ``netpet`` core (index, vendor-neutral SUV): MRML nodes out,
no dialogs. The DICOM plugin (NETPETLib/DICOMPlugin.py) offers PET series as SUV volumes in
Slicer's DICOM browser through the same Logic.
"""

import json
import logging
import os
import pathlib
from typing import Annotated


import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from NETPETLib import nodes
from NETPETLib.widgets import ParameterNodeWidgetMixin

SUV_TYPES = ("bw", "lbm", "lbmjanma", "bsa", "ibw")
SETTINGS_SUV_TYPE = "NETPET/SUVType"
CITATION = ("NETPET: hybrid PET/CT and PET/MR quantification for neuroendocrine tumours and tumour-induced "
            "osteomalacia. SUV rules: Vácha et al., Comprehensive Manual for SUV Computation (OncoRay/HZDR, CC BY 4.0).")


#
# NETPETReader
#

class NETPETReader(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("NETPET Reader")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Nuclear Medicine")]
        self.parent.dependencies = []
        self.parent.contributors = ["NETPET developers"]
        self.parent.helpText = _(
            "Index a folder of DICOM (patients, sessions, PET/CT or PET/MR, 68Ga-DOTATATE or 18F-FDG), load a hybrid "
            "session with PET converted to SUV (bw, lbm, bsa, ibw) and fused over its CT or MR. Every SUV factor "
            "carries its provenance (the tags used and why), shown in the panel and stored on the volume. PET series "
            "loaded from Slicer's DICOM browser are offered as SUV volumes too.")
        self.parent.acknowledgementText = _("Please cite: ") + CITATION
        if getattr(slicer, "app", None) is not None:
            slicer.app.connect("startupCompleted()", registerDICOMPlugin)


def registerDICOMPlugin():
    """Offer PET series as SUV volumes in the DICOM browser (needs Slicer's DICOM module)."""
    try:
        from NETPETLib.DICOMPlugin import NETPETSUVPlugin
    except ImportError as exc:  # a Slicer built without DICOM support
        logging.warning(f"NETPET: DICOM plugin not registered ({exc})")
        return
    if not hasattr(slicer.modules, "dicomPlugins"):
        slicer.modules.dicomPlugins = {}
    slicer.modules.dicomPlugins["NETPETSUVPlugin"] = NETPETSUVPlugin


#
# Parameter node
#

@parameterNodeWrapper
class NETPETReaderParameterNode:
    """
    folder - the DICOM folder indexed
    suvType - SUV normalisation of loaded PET (also used by the DICOM plugin)
    petSeriesUID - the PET series chosen in the index
    suvWindowMax - upper end of the SUV window (0 to this)
    fusionOpacity - PET opacity over CT/MR
    """

    folder: pathlib.Path
    suvType: Annotated[str, Choice(list(SUV_TYPES))] = "bw"
    petSeriesUID: str = ""
    petPatientID: str = ""
    suvWindowMax: float = 10.0
    fusionOpacity: float = 0.5


#
# Widget
#

class NETPETReaderWidget(ParameterNodeWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._index = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/NETPETReader.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = NETPETReaderLogic()
        self.observeScene()
        self.ui.indexButton.connect("clicked(bool)", self.onIndexButton)
        self.ui.loadButton.connect("clicked(bool)", self.onLoadButton)
        self.ui.sessionTable.connect("itemSelectionChanged()", self.onSessionSelected)
        self.ui.installButton.connect("clicked(bool)", self.onInstallButton)
        self.initializeParameterNode()
        self.updateDependencyStatus()

    def updateDependencyStatus(self):
        from NETPETLib import dependencies

        missing = dependencies.missing()
        self.ui.installButton.visible = bool(missing)
        self.ui.statusLabel.text = (_("Python packages to install first: ") + ", ".join(missing)) if missing else ""

    def onInstallButton(self):
        from NETPETLib import dependencies

        with slicer.util.tryWithErrorDisplay(_("Installing the Python packages failed."), waitCursor=True):
            missing = dependencies.missing()
            if missing and slicer.util.confirmOkCancelDisplay(
                    _("NETPET needs these Python packages: ") + ", ".join(missing) + _(". Install them now?")):
                dependencies.install(missing)
            self.updateDependencyStatus()

    def onIndexButton(self):
        import qt

        from NETPETLib import dependencies
        from NETPETLib.progress import progressDialog

        with slicer.util.tryWithErrorDisplay(_("Indexing the folder failed."), waitCursor=True):
            if not dependencies.ensureInstalled():
                return
            folder = str(self._parameterNode.folder)
            with progressDialog(_("Indexing DICOM")) as progress:
                self._index = self.logic.indexFolder(folder, progress=progress)
            sessions = self.logic.sessions(self._index)
            table = self.ui.sessionTable
            columns = ["patient_id", "session", "hybrid", "tracer", "files"]
            table.setColumnCount(len(columns))
            table.setHorizontalHeaderLabels([_("Patient"), _("Session"), _("Hybrid"), _("Tracer"), _("Files")])
            table.setRowCount(len(sessions))
            for row, session in enumerate(sessions):
                for column, key in enumerate(columns):
                    item = qt.QTableWidgetItem(str(session.get(key) or ""))
                    item.setData(qt.Qt.UserRole, session["pet_series_uid"])
                    item.setData(qt.Qt.UserRole + 1, session["patient_id"])  # one UID may sit under two patients
                    item.setToolTip(f"{session['pet_description']} ({session['pet_series_uid']}); "
                                    f"partner {session['partner_modality'] or 'none'}")
                    table.setItem(row, column, item)
            table.resizeColumnsToContents()

    def onSessionSelected(self):
        import qt

        with slicer.util.tryWithErrorDisplay(_("Selecting the session failed."), waitCursor=False):
            items = self.ui.sessionTable.selectedItems()
            if items:
                self._parameterNode.petSeriesUID = items[0].data(qt.Qt.UserRole)
                self._parameterNode.petPatientID = items[0].data(qt.Qt.UserRole + 1) or ""
            self.ui.loadButton.enabled = bool(items)

    def onLoadButton(self):
        import qt

        from NETPETLib.progress import progressDialog

        with slicer.util.tryWithErrorDisplay(_("Loading the session failed."), waitCursor=True):
            p = self._parameterNode
            if self._index is None:
                raise ValueError(_("Index a DICOM folder first."))
            qt.QSettings().setValue(SETTINGS_SUV_TYPE, p.suvType)
            with progressDialog(_("Loading PET as SUV")) as progress:
                pet, anatomical = self.logic.loadSession(self._index, p.petSeriesUID, p.suvType, progress=progress,
                                                         window=(0.0, p.suvWindowMax), opacity=p.fusionOpacity,
                                                         patientID=p.petPatientID or None)
            self.ui.provenanceText.plainText = self.logic.provenanceText(pet)
            slicer.util.setSliceViewerLayers(background=anatomical, foreground=pet, foregroundOpacity=p.fusionOpacity,
                                             fit=True)


#
# Logic
#

class NETPETReaderLogic(ScriptedLoadableModuleLogic):
    """Index, SUV conversion and hybrid display, as MRML nodes. No dialogs."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return NETPETReaderParameterNode(super().getParameterNode())

    # -- index ---------------------------------------------------------------------------------------
    def indexFolder(self, folder, progress=None, jobs=None):
        """Index every DICOM file under ``folder`` (headers only)."""
        from netpet.dicom.index import index_tree

        if not folder or not os.path.isdir(folder):
            raise ValueError(f"{folder!r} is not a folder; choose the folder that holds the DICOM files.")
        return index_tree(folder, jobs=jobs, progress=progress)

    @staticmethod
    def sessions(index):
        """One dict per PET series: patient, session (study), hybrid, tracer, anatomical partner."""
        out = []
        for pet in index.pet_series():
            partner = index.series(pet.partner_series_uid, patient_id=pet.patient_id) if pet.partner_series_uid else None
            out.append({
                "patient_id": pet.patient_id, "session": pet.description or pet.study_uid,
                "study_uid": pet.study_uid, "pet_series_uid": pet.series_uid, "pet_description": pet.description,
                "hybrid": pet.hybrid or "PET only", "tracer": pet.tracer.label if pet.tracer else "unknown",
                "partner_series_uid": pet.partner_series_uid or "", "partner_modality": partner.modality if partner else "",
                "files": pet.instance_count,
            })
        return out

    def sessionsTableNode(self, index, tableNode=None):
        """The index as a table node (what the panel shows)."""
        return nodes.tableNodeFromRows(self.sessions(index), name="NETPET sessions", tableNode=tableNode)

    # -- loading -------------------------------------------------------------------------------------
    def loadPET(self, record, suvType="bw", overrides=None, progress=None, window=(0.0, 10.0), name=None):
        """Convert a PET series (SeriesRecord or list of files) to an SUV volume node with its provenance."""
        from netpet.dicom.convert import convert_to_suv

        result = convert_to_suv(record, suvType, overrides, progress=progress)
        provenance = result.provenance.to_dict()
        label = name or f"{getattr(record, 'patient_id', '') or 'PET'} {getattr(record, 'hybrid', '') or ''} SUV{suvType}"
        volumeNode = nodes.volumeNodeFromImage(result.image, label.strip())
        nodes.setProvenance(volumeNode, provenance, record if hasattr(record, "series_uid") else None)
        nodes.showAsPET(volumeNode, window)
        return volumeNode

    def loadAnatomical(self, record, progress=None):
        """The CT or MR partner as a volume node (CT in HU with an abdominal window)."""
        from netpet.dicom.image import read_image

        image = read_image(record, progress=progress)
        volumeNode = nodes.volumeNodeFromImage(image, f"{record.patient_id} {record.modality} {record.description or ''}".strip())
        volumeNode.CreateDefaultDisplayNodes()
        display = volumeNode.GetDisplayNode()
        grey = slicer.mrmlScene.GetFirstNodeByName("Grey")
        if grey is not None:
            display.SetAndObserveColorNodeID(grey.GetID())
        if record.modality == "CT":
            display.AutoWindowLevelOff()
            display.SetWindowLevel(400.0, 40.0)
        volumeNode.SetAttribute(nodes.ATTRIBUTE_PREFIX + "SeriesInstanceUID", record.series_uid)
        volumeNode.SetAttribute(nodes.ATTRIBUTE_PREFIX + "SourceFiles", json.dumps(list(record.files)))
        return volumeNode

    def loadSession(self, index, petSeriesUID, suvType="bw", progress=None, window=(0.0, 10.0), opacity=0.5,
                    patientID=None):
        """Load a PET (as SUV) and its anatomical partner, PET fused over CT/MR in linked views."""
        from netpet.progress import report

        pet = index.series(petSeriesUID, patient_id=patientID)  # patientID chooses between copies of one UID
        if not pet.is_pet:
            raise ValueError(f"Series {petSeriesUID} is {pet.modality}, not PET.")

        def part(start, width):
            return (lambda f, m: progress(start + width * f, m)) if progress else None

        petNode = self.loadPET(pet, suvType, progress=part(0.0, 0.7), window=window)
        anatomicalNode = None
        if pet.partner_series_uid:
            report(progress, 0.7, "Reading the anatomical series")
            anatomicalNode = self.loadAnatomical(index.series(pet.partner_series_uid, patient_id=pet.patient_id),
                                                 progress=part(0.7, 0.3))
        nodes.fuse(petNode, anatomicalNode, opacity)
        return petNode, anatomicalNode

    @staticmethod
    def provenanceText(volumeNode):
        from netpet.dicom.suv import describe_provenance

        provenance = nodes.provenance(volumeNode)
        return describe_provenance(provenance) if provenance else "No SUV provenance on this volume."

    # -- DICOM browser ----------------------------------------------------------------------------------
    #: above the generic scalar-volume plugin (0.5) so PET is offered as SUV first
    DICOM_CONFIDENCE = 0.9

    def examineFiles(self, fileLists):
        """What the DICOM plugin offers: one SUV loadable per PET series found in the file lists."""
        from netpet.dicom.index import index_files

        loadables = []
        for files in fileLists:
            index = index_files(files)
            for pet in index.pet_series():
                problem = "" if pet.units else "Units (0054,1001) missing"
                loadables.append({
                    "files": list(pet.files), "series_uid": pet.series_uid,
                    "name": f"{pet.description or 'PET'} (SUV)", "tracer": pet.tracer.label if pet.tracer else "unknown",
                    "confidence": self.DICOM_CONFIDENCE if not problem else 0.1,
                    "tooltip": f"PET as SUV with provenance; units {pet.units or '?'}; "
                               f"tracer {pet.tracer.label if pet.tracer else 'unknown'}",
                    "warning": problem,
                })
        return loadables

    def loadFiles(self, files, suvType="bw", name=None):
        """Load the files of one PET series as an SUV volume node (the DICOM plugin's load)."""
        return self.loadPET(list(files), suvType, name=name)


#
# Test (runs inside Slicer: Testing/Python registers it; headless tests of the Logic are in Testing/slicer)
#

class NETPETReaderTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_load_session_as_suv()

    def test_load_session_as_suv(self):
        import tempfile

        import numpy as np

        from netpet.phantom import generate_study

        self.delayDisplay("Writing a synthetic patient")
        folder = tempfile.mkdtemp()
        summary = generate_study(folder, patients=1, seed=3, tracers=("dotatate",), modalities=("petct",))
        logic = NETPETReaderLogic()
        index = logic.indexFolder(os.path.join(folder, "dicom"))
        sessions = logic.sessions(index)
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0]["hybrid"], "PET/CT")
        pet, ct = logic.loadSession(index, sessions[0]["pet_series_uid"])
        liver = summary["patients"][0]["sessions"][0]["liver_suv"]
        values = slicer.util.arrayFromVolume(pet)
        self.assertGreater(float(np.percentile(values, 99.9)), liver)
        self.assertEqual(pet.GetAttribute("NETPET.SUVType"), "bw")
        self.assertIsNotNone(ct)
        self.delayDisplay("Test passed")
