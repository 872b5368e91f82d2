"""NETPETReader: hybrid PET/CT and PET/MR studies into Slicer, PET in SUV with its provenance.

Module / ParameterNode / Widget / Logic / Test in one file, as Slicer's scripted-module template.
The Logic is an adapter over the ``netpet`` core (index, vendor-neutral SUV): MRML nodes out,
no dialogs. The DICOM plugin (NETPETLib/DICOMPlugin.py) offers PET series as SUV volumes in
Slicer's DICOM browser through the same Logic.

Inside Slicer every core call runs in this process (``jobs=1``): the core's worker processes are for the
command line; started from the Slicer GUI they would be copies of the whole application.
"""

import json
import logging
import os
import pathlib
from typing import Annotated

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from NETPETLib import nodes
from NETPETLib.widgets import LabelledChoice, ParameterNodeWidgetMixin, documentationLink, pathText

#: the SUV normalisations, by key (as the core's netpet.dicom.suv.record.SUV_TYPES) with their labels
SUVType = LabelledChoice("SUVType", [
    ("bw", _("Body weight (SUVbw)")),
    ("lbm", _("Lean body mass, James (SUVlbm)")),
    ("lbmjanma", _("Lean body mass, Janmahasatian (SUVlbm)")),
    ("bsa", _("Body surface area, Du Bois (SUVbsa)")),
    ("ibw", _("Ideal body weight (SUVibw)")),
])
SUV_TYPES = SUVType.keys()
SETTINGS_SUV_TYPE = "NETPET/SUVType"
#: the SUV window and PET opacity limits (the .ui spin boxes show the same; a test keeps them equal)
SUV_WINDOW_MAX_RANGE = (0.5, 100.0)
OPACITY_RANGE = (0.0, 1.0)
#: worker processes of every core call made from Slicer (see the module docstring)
JOBS = 1
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
            "loaded from Slicer's DICOM browser are offered as SUV volumes too.") + documentationLink("in-3d-slicer")
        self.parent.acknowledgementText = _("Please cite: ") + CITATION
        registerDICOMPlugin()


def registerDICOMPlugin():
    """Offer PET series as SUV volumes in the DICOM browser.

    Registered when the module is constructed, as Slicer's bundled plugins are
    (Modules/Scripted/DICOMPlugins/*.py: the module class's __init__ adds the plugin class to
    slicer.modules.dicomPlugins, creating the dict if the DICOM module has not yet). The DICOM module
    reads the dict at startupCompleted() to pre-cache every plugin's tags (DICOM.py
    performPostModuleDiscoveryTasks, DICOMLib setDatabasePrecacheTags) and its plugin selector lists the
    plugins present when it is built (DICOMLib/DICOMPluginSelector.py): a plugin registered on
    startupCompleted() itself may come after both.
    """
    try:
        from NETPETLib.DICOMPlugin import NETPETSUVPlugin
    except ImportError as exc:  # a Slicer built without DICOM support, or no Qt (headless tests)
        (logging.warning if getattr(slicer, "app", None) is not None else logging.debug)(
            f"NETPET: DICOM plugin not registered ({exc})")
        return False
    try:
        slicer.modules.dicomPlugins
    except AttributeError:
        slicer.modules.dicomPlugins = {}
    slicer.modules.dicomPlugins["NETPETSUVPlugin"] = NETPETSUVPlugin
    return True


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

    Ranged fields declare their limits with WithinRange: Slicer's connectors of spin boxes set the widget's
    range from the annotation, -inf..inf without one, overwriting the .ui limits
    (parameterNodeWrapper/guiConnectors.py QDoubleSpinBoxCtkSliderWidgetToFloatConnector, 5.8 and 5.10).
    """

    folder: pathlib.Path
    suvType: SUVType = SUVType["bw"]
    petSeriesUID: str = ""
    petPatientID: str = ""
    suvWindowMax: Annotated[float, WithinRange(0.5, 100.0)] = 10.0
    fusionOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5


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
        unavailable = dependencies.unavailable()
        self.ui.installButton.visible = bool(missing)
        lines = [_("Python packages to install first: ") + ", ".join(missing)] if missing else []
        lines += [reason[:1].upper() + reason[1:] + "." for reason in unavailable.values()]
        self.ui.statusLabel.text = "\n".join(lines)

    def onInstallButton(self):
        from NETPETLib import dependencies

        with slicer.util.tryWithErrorDisplay(_("Installing the Python packages failed."), waitCursor=True):
            try:
                dependencies.ensureInstalled()
            finally:
                self.updateDependencyStatus()

    def onIndexButton(self):
        import qt

        from NETPETLib import dependencies
        from NETPETLib.progress import progressDialog

        with slicer.util.tryWithErrorDisplay(_("Indexing the folder failed."), waitCursor=True):
            if not dependencies.ensureInstalled():
                return
            folder = pathText(self._parameterNode.folder)
            if not folder:
                raise ValueError(_("Choose the folder that holds the DICOM files first (the folder button)."))
            with progressDialog(_("Indexing DICOM")) as progress:
                index = self.logic.indexFolder(folder, progress=progress)
            if progress.cancelled:
                self.ui.statusLabel.text = _("Indexing cancelled; the table shows the previous index.")
                return
            self._index = index
            sessions = self.logic.sessions(index)
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
            self.ui.statusLabel.text = _("{count} PET series indexed.").format(count=len(sessions))

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
            suvType = p.suvType.key
            qt.QSettings().setValue(SETTINGS_SUV_TYPE, suvType)  # the DICOM plugin's SUV type
            with progressDialog(_("Loading PET as SUV")) as progress:
                pet, anatomical = self.logic.loadSession(self._index, p.petSeriesUID, suvType, progress=progress,
                                                         window=(0.0, p.suvWindowMax), opacity=p.fusionOpacity,
                                                         patientID=p.petPatientID or None)
            if progress.cancelled:
                self.ui.statusLabel.text = _("Loading cancelled.")
                return
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
    def indexFolder(self, folder, progress=None):
        """Index every DICOM file under ``folder`` (headers only), in this process (``JOBS``).

        Raises
        ------
        ValueError
            ``folder`` is unset ('' or '.', what an unset path parameter reads as: it would index Slicer's
            working directory) or is not a folder.
        """
        from netpet.dicom.index import index_tree

        if not pathText(folder):
            raise ValueError("No DICOM folder is chosen; choose the folder that holds the DICOM files (an unset "
                             "folder would index Slicer's working directory).")
        if not os.path.isdir(folder):
            raise ValueError(f"{folder!r} is not a folder; choose the folder that holds the DICOM files.")
        return index_tree(folder, jobs=JOBS, progress=progress)

    @staticmethod
    def sessions(index):
        """One dict per PET series: patient, session (what the table shows: date, hybrid and PET series, so
        a patient's PET/CT and PET/MR sessions read differently), study, hybrid, tracer, anatomical partner."""
        studies = {(patient.patient_id, study.study_uid): study for patient in index.patients for study in patient.studies}
        out = []
        for pet in index.pet_series():
            partner = index.series(pet.partner_series_uid, patient_id=pet.patient_id) if pet.partner_series_uid else None
            study = studies.get((pet.patient_id, pet.study_uid))
            out.append({
                "patient_id": pet.patient_id, "session": _sessionText(pet, study),
                "study_uid": pet.study_uid, "study_description": (study.description if study else "") or "",
                "pet_series_uid": pet.series_uid, "pet_description": pet.description,
                "hybrid": pet.hybrid or "PET only", "tracer": pet.tracer.label if pet.tracer else "unknown",
                "partner_series_uid": pet.partner_series_uid or "", "partner_modality": partner.modality if partner else "",
                "files": pet.instance_count,
            })
        seen = {}
        for row in out:
            seen.setdefault((row["patient_id"], row["session"]), []).append(row)
        for rows in seen.values():
            if len(rows) > 1:  # two PET series of one patient that still read alike: their series tell them apart
                for row in rows:
                    row["session"] += f" [{row['pet_series_uid'][-8:]}]"
        return out

    def sessionsTableNode(self, index, tableNode=None):
        """The index as a table node (what the panel shows)."""
        return nodes.tableNodeFromRows(self.sessions(index), name="NETPET sessions", tableNode=tableNode)

    # -- loading -------------------------------------------------------------------------------------
    def loadPET(self, record, suvType="bw", overrides=None, progress=None, window=(0.0, 10.0), name=None):
        """Convert a PET series (SeriesRecord, or a list of files) to an SUV volume node with its provenance and,
        for a SeriesRecord, its identity (patient, study, series, modality, tracer: nodes.setProvenance).
        The files are read in this process (``JOBS``)."""
        from netpet.dicom.convert import convert_to_suv

        result = convert_to_suv(record, suvType, overrides, jobs=JOBS, progress=progress)
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
        """Load a PET (as SUV) and its anatomical partner, PET fused over CT/MR in linked views. A cancel while
        the partner is read removes the PET loaded before it (nothing half-loaded stays in the scene)."""
        from netpet.progress import report

        pet = index.series(petSeriesUID, patient_id=patientID)  # patientID chooses between copies of one UID
        if not pet.is_pet:
            raise ValueError(f"Series {petSeriesUID} is {pet.modality}, not PET.")

        def part(start, width):
            return (lambda f, m: progress(start + width * f, m)) if progress else None

        petNode = self.loadPET(pet, suvType, progress=part(0.0, 0.7), window=window)
        anatomicalNode = None
        try:
            if pet.partner_series_uid:
                report(progress, 0.7, "Reading the anatomical series")
                anatomicalNode = self.loadAnatomical(index.series(pet.partner_series_uid, patient_id=pet.patient_id),
                                                     progress=part(0.7, 0.3))
        except BaseException:
            slicer.mrmlScene.RemoveNode(petNode)
            raise
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
    #: the DICOM tags the plugin reads through Slicer's DICOM database (tag: "gggg,eeee")
    MODALITY_TAG, SERIES_UID_TAG = "0008,0060", "0020,000E"

    def examineFiles(self, fileLists, fileValue=None):
        """What the DICOM plugin offers: one SUV loadable per PET series among the file lists.

        ``fileValue(path, tag)`` reads a tag of a file, as Slicer's DICOM database does from its cache
        (``slicer.dicomDatabase.fileValue``, DICOMLib/DICOMPlugin.py). With it a series that is not PET
        costs no file read at all; without it one header is read per list. A PET series is read from one
        header (its first file: identity, units, tracer), never file by file.
        """
        loadables = []
        for files in fileLists:
            files = list(files)
            if not files:
                continue
            groups = [files]
            if fileValue is not None:
                if (fileValue(files[0], self.MODALITY_TAG) or "").strip().upper() != "PT":
                    continue
                bySeries = {}
                for path in files:  # the database's cached values: no file is opened
                    bySeries.setdefault(fileValue(path, self.SERIES_UID_TAG), []).append(path)
                groups = list(bySeries.values())
            for group in groups:
                pet = self.seriesRecordOfFiles(group)
                if pet is None or not pet.is_pet:
                    continue
                problem = "" if pet.units else "Units (0054,1001) missing"
                tracer = pet.tracer.label if pet.tracer else "unknown"
                loadables.append({
                    "files": list(pet.files), "series_uid": pet.series_uid, "patient_id": pet.patient_id,
                    "study_uid": pet.study_uid, "name": f"{pet.description or 'PET'} (SUV)", "tracer": tracer,
                    "confidence": self.DICOM_CONFIDENCE if not problem else 0.1,
                    "tooltip": f"PET as SUV with provenance; units {pet.units or '?'}; tracer {tracer}",
                    "warning": problem,
                })
        return loadables

    @staticmethod
    def seriesRecordOfFiles(files, studyModalities=()):
        """The SeriesRecord of the files of one series, from the header of its first file (patient, study,
        series, units, tracer) and the modalities of the other series of its study (``studyModalities``:
        CT makes it PET/CT, MR PET/MR), or None when the first file is not a DICOM image."""
        from netpet.dicom.index import index_files

        files = list(files)
        index = index_files(files[:1], jobs=JOBS)
        records = index.all_series()
        if not records:
            return None
        record = records[0]
        record.files = files
        record.instance_count = len(files)
        modalities = {str(m).upper() for m in studyModalities}
        if record.is_pet and not record.hybrid:
            record.hybrid = "PET/CT" if "CT" in modalities else "PET/MR" if "MR" in modalities else None
        return record

    def loadFiles(self, files, suvType="bw", name=None, studyModalities=()):
        """Load the files of one PET series as an SUV volume node (the DICOM plugin's load), with the same
        identity on the node as a load from the panel: patient, study, series, modality (PET/CT or PET/MR from
        the study's other series) and tracer, so SUVQuant can export and review it."""
        record = self.seriesRecordOfFiles(files, studyModalities)
        if record is None:
            raise ValueError(f"{list(files)[0]} is not a DICOM image.")
        if not record.is_pet:
            raise ValueError(f"Series {record.series_uid} is {record.modality}, not PET.")
        return self.loadPET(record, suvType, name=name)


def _sessionText(pet, study):
    """A session as the table shows it: date, hybrid and the PET series' description."""
    date = (study.date if study else "") or (pet.acquisition_datetime or pet.series_datetime or "")[:10].replace("-", "")
    day = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) >= 8 and date[:8].isdigit() else date
    text = " ".join(part for part in (day, pet.hybrid or "PET") if part)
    description = pet.description or (study.description if study else "")
    return f"{text}: {description}" if description else text


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
