"""StudyStats: the study's diagnostic accuracy inside Slicer, as tables, plots and the HTML report.

Module / ParameterNode / Widget / Logic / Test in one file. The Logic runs ``netpet.stats`` on
the study table and the reference standard and turns the results into table nodes (accuracy,
comparisons, ROC, agreement, false findings) and plot chart nodes (ROC curves, Bland-Altman);
the Widget shows them and opens the report.
"""

import os
import pathlib
from typing import Annotated

import numpy as np

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from NETPETLib import nodes
from NETPETLib.widgets import LabelledChoice, ParameterNodeWidgetMixin, documentationLink, pathText

#: proportion intervals, by key (as the core's netpet.stats.intervals.CI_METHODS) with their labels
CIMethod = LabelledChoice("CIMethod", [
    ("wilson", _("Wilson score")),
    ("clopper-pearson", _("Clopper-Pearson (exact)")),
    ("agresti-coull", _("Agresti-Coull")),
    ("jeffreys", _("Jeffreys")),
])
CI_METHODS = CIMethod.keys()
#: how equivocal calls count, by key (netpet.stats StatsOptions.equivocal) with their labels
EquivocalRule = LabelledChoice("EquivocalRule", [
    ("negative", _("As negative (the protocol: only uptake clearly above the liver is positive)")),
    ("positive", _("As positive (sensitivity analysis)")),
])
EQUIVOCAL_RULES = EquivocalRule.keys()
#: the finding's call the accuracy counts, by key (netpet.stats.data.CALL_SOURCES) with their labels
CallSource = LabelledChoice("CallSource", [
    ("suv", _("The SUV rule's call (liver threshold)")),
    ("reader", _("The reader's visual call")),
])
CALL_SOURCES = CallSource.keys()
#: the case of the multi-reader multi-case ROC analysis, by key (netpet.stats.mrmc.study_mrmc) with their labels
MRMCLevel = LabelledChoice("MRMCLevel", [
    ("patient", _("Patient (the independent unit)")),
    ("lesion", _("Lesion (correlated within a patient)")),
])
MRMC_LEVELS = MRMCLevel.keys()
#: cluster-bootstrap replicates: limits of the panel's spin box (a test keeps the .ui equal)
BOOTSTRAP_RANGE = (0, 100000)
#: the reading-list seed: limits of the panel's spin box (a test keeps the .ui equal)
READING_SEED_RANGE = (0, 2147483647)
GROUP_COLORS = ((0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.4, 0.74),
                (0.55, 0.34, 0.29))
ACCURACY_COLUMNS = ("level", "modality", "tracer", "reader", "group_by", "n_units", "tp", "fp", "fn", "tn",
                    "equivocal_findings", "equivocal_units", "equivocal_as")
MEASURES = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "lr_pos", "lr_neg")


#
# StudyStats
#

class StudyStats(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Study Stats")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Nuclear Medicine")]
        self.parent.dependencies = ["NETPETReader"]
        self.parent.contributors = ["NETPET developers"]
        self.parent.helpText = _(
            "Sensitivity, specificity, PPV and NPV with confidence intervals per patient, lesion and region, by "
            "modality, tracer and reader (and any grouping column); paired McNemar and DeLong comparisons of PET/MR "
            "vs PET/CT and DOTATATE vs FDG; ROC, SUV agreement and Cohen's kappa; false positives and negatives with "
            "their causes; a self-contained HTML report.") + documentationLink(
                "studystats-diagnostic-accuracy-of-the-study")
        self.parent.acknowledgementText = _("Please cite NETPET; the statistics are tested against DTComPair, epiR, "
                                            "pROC and statsmodels.")


#
# Parameter node
#

@parameterNodeWrapper
class StudyStatsParameterNode:
    """
    studyTablePath - the study table (.csv or .sqlite)
    referencePath - the reference standard (.csv)
    outputFolder - where the CSV tables, figures and report.html go
    ciMethod - interval of proportions
    groupBy - comma-separated extra grouping columns (e.g. indication, region)
    bootstrap - cluster-bootstrap replicates (0 for none)
    equivocal - how equivocal calls count: negative (the protocol: only uptake clearly above the liver
        is positive) or positive
    locationsPath - optional CSV of reference lesion locations per session (netpet match --locations)
    dicomFolder - the DICOM folder holding the study's sessions (to register them)
    correspondencePath - the correspondence table (netpet match): findings matched to reference lesions by
        location; empty: the table's lesion ids must be the reference standard's
    patientID, sessionA, sessionB - the patient and the two sessions whose matched lesions are shown side by side
    callSource - which call of a finding counts: the SUV rule's (suv) or the reader's visual call (reader)
    readers - comma-separated reader ids (reading lists, adjudication; empty: every reader of the table)
    readingSeed - the seed of the randomised reading order
    mrmcLevel - the case of the MRMC ROC analysis: patient or lesion
    accuracyTable - the accuracy table node
    comparisonsTable - the paired comparisons table node
    stagingTable - per patient and group: N, M and stage group from the findings and from the reference

    Choices are LabelledChoice enums (their labels in the combo boxes, their keys in the scene); the
    bootstrap count declares its range with WithinRange, as Slicer's QSpinBox connector otherwise sets
    -2^31..2^31-1 over the .ui limits (parameterNodeWrapper/guiConnectors.py, 5.8 and 5.10).
    """

    studyTablePath: pathlib.Path
    referencePath: pathlib.Path
    outputFolder: pathlib.Path
    ciMethod: CIMethod = CIMethod["wilson"]
    groupBy: str = ""
    bootstrap: Annotated[int, WithinRange(0, 100000)] = 2000
    equivocal: EquivocalRule = EquivocalRule["negative"]
    locationsPath: pathlib.Path
    correspondencePath: pathlib.Path
    dicomFolder: pathlib.Path
    patientID: str = ""
    sessionA: str = ""
    sessionB: str = ""
    callSource: CallSource = CallSource["suv"]
    readers: str = ""
    readingSeed: Annotated[int, WithinRange(0, 2147483647)] = 1
    mrmcLevel: MRMCLevel = MRMCLevel["patient"]
    accuracyTable: slicer.vtkMRMLTableNode
    comparisonsTable: slicer.vtkMRMLTableNode
    stagingTable: slicer.vtkMRMLTableNode


#
# Widget
#

class StudyStatsWidget(ParameterNodeWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._result = None
        self._pairs = []

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/StudyStats.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = StudyStatsLogic()
        self.observeScene()
        self.ui.runButton.connect("clicked(bool)", self.onRunButton)
        self.ui.reportButton.connect("clicked(bool)", self.onReportButton)
        self.ui.registerButton.connect("clicked(bool)", self.onRegisterButton)
        self.ui.matchButton.connect("clicked(bool)", self.onMatchButton)
        self.ui.followUpButton.connect("clicked(bool)", self.onFollowUpButton)
        self.ui.listPairsButton.connect("clicked(bool)", self.onListPairsButton)
        self.ui.showPairButton.connect("clicked(bool)", self.onShowPairButton)
        self.ui.scoresButton.connect("clicked(bool)", self.onScoresButton)
        self.ui.mrmcButton.connect("clicked(bool)", self.onMRMCButton)
        self.ui.readingListsButton.connect("clicked(bool)", self.onReadingListsButton)
        self.ui.adjudicationButton.connect("clicked(bool)", self.onAdjudicationButton)
        self.initializeParameterNode()

    def onRunButton(self):
        from NETPETLib.progress import progressDialog

        with slicer.util.tryWithErrorDisplay(_("The statistics could not be computed."), waitCursor=True):
            from NETPETLib import dependencies

            if not dependencies.ensureInstalled():
                return
            p = self._parameterNode
            with progressDialog(_("Computing the study statistics")) as progress:
                result = self.logic.run(pathText(p.studyTablePath), pathText(p.referencePath),
                                        pathText(p.outputFolder), p.ciMethod.key,
                                        [c.strip() for c in p.groupBy.split(",") if c.strip()], p.bootstrap,
                                        progress=progress, equivocal=p.equivocal.key,
                                        correspondencePath=pathText(p.correspondencePath),
                                        callSource=p.callSource.key)
            if progress.cancelled:
                self.ui.statusLabel.text = _("Cancelled; nothing was written.")
                return
            self._result = result
            p.accuracyTable = self._result["tables"]["accuracy"]
            p.comparisonsTable = self._result["tables"]["comparisons"]
            p.stagingTable = self._result["tables"]["staging"]
            slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView)
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(p.accuracyTable.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
            chart = self._result["charts"].get("roc_suv_max")
            if chart is not None:
                slicer.modules.plots.logic().ShowChartInLayout(chart)
            self.ui.statusLabel.text = _("Report: ") + self._result["report"]

    def onRegisterButton(self):
        from NETPETLib.progress import progressDialog

        with slicer.util.tryWithErrorDisplay(_("The sessions could not be registered."), waitCursor=True):
            p = self._parameterNode
            with progressDialog(_("Registering the sessions")) as progress:
                records = self.logic.registerSessions(pathText(p.studyTablePath), pathText(p.dicomFolder),
                                                      progress=progress)
            self.ui.statusLabel.text = "\n".join(self.logic.registrationLines(records))

    def onFollowUpButton(self):
        with slicer.util.tryWithErrorDisplay(_("The follow-up could not be computed."), waitCursor=True):
            p = self._parameterNode
            out = self.logic.followUp(pathText(p.studyTablePath), pathText(p.correspondencePath),
                                      pathText(p.outputFolder))
            slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(out["tables"]["patients"].GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
            self.ui.statusLabel.text = _("Follow-up: ") + out["folder"] + "".join("\n" + w for w in out["warnings"])

    def onMatchButton(self):
        with slicer.util.tryWithErrorDisplay(_("The lesions could not be matched."), waitCursor=True):
            p = self._parameterNode
            out = self.logic.matchLesions(pathText(p.studyTablePath), pathText(p.referencePath),
                                          pathText(p.correspondencePath), pathText(p.locationsPath))
            p.correspondencePath = pathlib.Path(out["path"])
            counts = ", ".join(f"{k} {v}" for k, v in out["summary"]["counts"].items())
            self.ui.statusLabel.text = _("Correspondence: ") + f"{out['path']} ({counts})" + "".join(
                "\n" + w for w in out["warnings"])

    def onListPairsButton(self):
        with slicer.util.tryWithErrorDisplay(_("The matched lesions could not be listed."), waitCursor=True):
            p = self._parameterNode
            self._pairs = self.logic.pairs(pathText(p.studyTablePath), pathText(p.correspondencePath), p.patientID,
                                           p.sessionA, p.sessionB)
            from netpet.match.pairs import pair_label

            self.ui.pairComboBox.clear()
            for pair in self._pairs:
                self.ui.pairComboBox.addItem(pair_label(pair))

    def onShowPairButton(self):
        with slicer.util.tryWithErrorDisplay(_("The pair could not be shown."), waitCursor=True):
            index = self.ui.pairComboBox.currentIndex
            if not self._pairs or index < 0:
                raise ValueError(_("List the matched lesions of a patient's two sessions first."))
            shown = self.logic.showPair(self._pairs[index], pathText(self._parameterNode.studyTablePath))
            self.ui.statusLabel.text = "\n".join(shown["notes"]) or _("Left: session a; right: session b.")

    def _readers(self):
        return [r.strip() for r in self._parameterNode.readers.split(",") if r.strip()]

    def _showTable(self, tableNode):
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(tableNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()

    def onScoresButton(self):
        with slicer.util.tryWithErrorDisplay(_("The reading standards could not be computed."), waitCursor=True):
            p = self._parameterNode
            out = self.logic.readingStandards(pathText(p.studyTablePath), pathText(p.correspondencePath),
                                              pathText(p.outputFolder), pathText(p.referencePath))
            self._showTable(out["tables"]["netpet_scores"])
            self.ui.statusLabel.text = _("Reading standards: ") + out["folder"] + "".join(
                "\n" + w for w in out["result"]["warnings"])

    def onMRMCButton(self):
        with slicer.util.tryWithErrorDisplay(_("The multi-reader analysis could not be computed."), waitCursor=True):
            p = self._parameterNode
            out = self.logic.mrmcAnalysis(pathText(p.studyTablePath), pathText(p.referencePath),
                                          pathText(p.correspondencePath), level=p.mrmcLevel.key,
                                          outputFolder=pathText(p.outputFolder))
            self._showTable(out["table"])
            self.ui.statusLabel.text = out["summary"] + "".join(
                "\n" + w for w in out["result"]["notes"] + out["result"]["warnings"])

    def onReadingListsButton(self):
        with slicer.util.tryWithErrorDisplay(_("The reading lists could not be written."), waitCursor=True):
            p = self._parameterNode
            out = self.logic.readingLists(pathText(p.studyTablePath), self._readers(), p.readingSeed,
                                          pathText(p.outputFolder))
            self.ui.statusLabel.text = _("Reading lists: ") + ", ".join(out["files"])

    def onAdjudicationButton(self):
        with slicer.util.tryWithErrorDisplay(_("The adjudication list could not be written."), waitCursor=True):
            p = self._parameterNode
            out = self.logic.adjudicationList(pathText(p.studyTablePath), self._readers(),
                                              pathText(p.correspondencePath), pathText(p.outputFolder))
            self.ui.statusLabel.text = _("Findings to adjudicate: ") + f"{out['count']} ({out['path']})"

    def onReportButton(self):
        import qt

        with slicer.util.tryWithErrorDisplay(_("Cannot open the report."), waitCursor=False):
            if not self._result:
                raise ValueError(_("Compute the statistics first."))
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(self._result["report"]))


#
# Logic
#

class StudyStatsLogic(ScriptedLoadableModuleLogic):
    """netpet.stats as MRML table and plot nodes. No dialogs."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return StudyStatsParameterNode(super().getParameterNode())

    def run(self, studyTablePath, referencePath, outputFolder, ciMethod="wilson", groupBy=(), bootstrap=2000,
            seed=1, progress=None, figures=True, equivocal="negative", correspondencePath="", callSource="suv"):
        """Compute everything, write the outputs (CSV, figures, report.html) and build the nodes.

        ``equivocal`` says how equivocal calls count ("negative", the protocol's default, or "positive").
        ``correspondencePath``: the correspondence table of :meth:`matchLesions` (``netpet match``); empty when
        the table's lesion ids are the reference standard's. ``callSource``: which call of a finding counts, the SUV
        rule's ("suv") or the reader's visual call ("reader").
        Returns {"result": the JSON-ready result, "report": path, "tables": {...}, "charts": {...}}.
        """
        from netpet.stats import StatsOptions, analyse, load_study, write_outputs
        from netpet.stats.analysis import false_finding_key
        from netpet.stats.causes import read_cause_codes
        from netpet.stats.report import read_causes

        studyTablePath, referencePath, outputFolder = (pathText(v) for v in (studyTablePath, referencePath,
                                                                                outputFolder))
        if not studyTablePath:
            raise ValueError("No study table is chosen; choose the study table (.csv or .sqlite) SUVQuant or "
                             "netpet quantify wrote.")
        if not referencePath:
            raise ValueError("No reference standard is chosen; choose its CSV (patient_id, lesion_id, region, "
                             "truth, standard).")
        if not outputFolder:
            outputFolder = os.path.join(os.path.dirname(os.path.abspath(studyTablePath)), "statistics")
        study = load_study(studyTablePath, referencePath, list(groupBy),
                           correspondence=pathText(correspondencePath) or None, call_source=callSource)
        causes = read_causes(os.path.join(outputFolder, "false-findings.csv"))
        # the reader's confirmed cause codes of the same file (cause_code, cause_confirmed)
        codes = read_cause_codes(os.path.join(outputFolder, "false-findings.csv"), false_finding_key)
        options = StatsOptions(ci=ciMethod, bootstrap=bootstrap, seed=seed, group_by=list(groupBy), causes=causes,
                               equivocal=equivocal, cause_codes=codes)
        analysis = analyse(study, options, progress=progress)
        written = write_outputs(analysis, outputFolder, "StudyStats (3D Slicer)", previous_causes=causes,
                                figures_too=figures)
        result = analysis.result
        tables = {
            "accuracy": self.accuracyTableNode(result),
            "comparisons": self.comparisonsTableNode(result),
            "roc": nodes.tableNodeFromRows(result["roc"], ["level", "modality", "tracer", "reader", "variable",
                                                           "n_cases", "n_controls", "auc", "ci_low", "ci_high",
                                                           "youden_cutoff", "youden_sensitivity", "youden_specificity"],
                                           "StudyStats ROC", numeric={"auc", "ci_low", "ci_high", "youden_cutoff",
                                                                      "youden_sensitivity", "youden_specificity"}),
            "false_findings": self.falseFindingsTableNode(result),
            "staging": self.stagingTableNode(result),
        }
        charts = {}
        for variable in ("suv_max", "tl_ratio"):
            chart = self.rocChart(analysis, variable)
            if chart is not None:
                charts[f"roc_{variable}"] = chart
        for key, chart in self.blandAltmanCharts(analysis).items():
            charts[key] = chart
        return {"result": result, "report": written["report.html"], "folder": outputFolder, "tables": tables,
                "charts": charts}

    @staticmethod
    def accuracyTableNode(result, tableNode=None):
        """One row per level and group; each measure as estimate with its interval (and the method)."""
        rows = []
        for entry in result["accuracy"]:
            row = {k: entry.get(k) for k in ACCURACY_COLUMNS}
            row["group_by"] = " ".join(f"{k}={v}" for k, v in (entry.get("group_by") or {}).items())
            for measure in MEASURES:
                m = entry[measure]
                row[measure] = m["estimate"]
                row[f"{measure}_ci_low"] = m["ci_low"]
                row[f"{measure}_ci_high"] = m["ci_high"]
            clustered = (entry.get("clustered") or {}).get("sensitivity") or {}
            row["sensitivity_cluster_ci_low"] = clustered.get("ci_low")
            row["sensitivity_cluster_ci_high"] = clustered.get("ci_high")
            row["reason"] = entry.get("reason", "")
            rows.append(row)
        numeric = {c for c in (rows[0] if rows else {}) if c not in ("level", "modality", "tracer", "reader",
                                                                     "group_by", "equivocal_as", "reason")}
        return nodes.tableNodeFromRows(rows, name="StudyStats accuracy", tableNode=tableNode, numeric=numeric)

    @staticmethod
    def stagingTableNode(result, tableNode=None):
        """Per group and patient: N, M and stage group from the findings and from the reference (AJCC 8th /
        ENETS, netpet.stats.staging); no rows when the reference standard gives no primary or sites."""
        from netpet.stats.staging import staging_rows

        section = result.get("staging") or {}
        rows = staging_rows(section) if section.get("available") else []
        columns = list(rows[0]) if rows else ["patient_id", "primary", "findings_n", "findings_m",
                                              "findings_stage_group", "reference_n", "reference_m",
                                              "reference_stage_group"]
        return nodes.tableNodeFromRows(rows, columns, "StudyStats staging", tableNode=tableNode)

    # -- lesion correspondence ------------------------------------------------------------------------------
    def matchLesions(self, studyTablePath, referencePath, correspondencePath="", locationsPath=""):
        """Match the table's findings to the reference lesions by location (``netpet match``) and write the
        correspondence table (default: ``correspondence.csv`` beside the study table). Rows a person set to
        ``confirmed`` in an existing file are kept. Registrations are the ones stored beside the table
        (``netpet register``).

        Returns {"path", "frame" (pandas), "table" (a table node), "summary", "warnings"}.
        """
        from netpet.match.correspondence import match_study, summarise, write_correspondence

        studyTablePath, referencePath = pathText(studyTablePath), pathText(referencePath)
        if not studyTablePath or not referencePath:
            raise ValueError("Choose the study table and the reference standard (with lesion locations) first.")
        correspondencePath = pathText(correspondencePath) or os.path.join(
            os.path.dirname(os.path.abspath(studyTablePath)), "correspondence.csv")
        previous = correspondencePath if os.path.exists(correspondencePath) else None
        frame = match_study(studyTablePath, referencePath, pathText(locationsPath) or None, previous=previous)
        write_correspondence(correspondencePath, frame)
        table = nodes.tableNodeFromRows(frame.to_dict("records"), list(frame.columns), "StudyStats correspondence",
                                        numeric={"distance_mm", "gate_mm", "registration_error_mm"})
        return {"path": correspondencePath, "frame": frame, "table": table, "summary": summarise(frame),
                "warnings": list(frame.attrs.get("warnings", []))}

    def registerSessions(self, studyTablePath, dicomFolder, patients=None, referenceSession=None, progress=None,
                         gridMm=None):
        """Register every session of each patient of the study table to the patient's first one (``netpet
        register``): the DICOM folder is indexed in this process, the transforms stored in ``transforms/`` beside
        the table (reused when they fit). A registration of poor quality is refused and not written (its record
        says why). Returns the records of :func:`netpet.match.study.register_study`."""
        from netpet.match.study import register_study
        from NETPETReader import NETPETReaderLogic

        studyTablePath = pathText(studyTablePath)
        if not studyTablePath:
            raise ValueError("No study table is chosen; choose the study table whose sessions are to be registered.")
        index = NETPETReaderLogic().indexFolder(pathText(dicomFolder), progress=progress)
        return register_study(studyTablePath, index, patients, referenceSession, grid_mm=gridMm, progress=progress)

    @staticmethod
    def registrationLines(records):
        """One line per registration for the panel (refused ones say why)."""
        lines = []
        for r in records:
            head = f"{r['patient_id']} {r['moving_session']} -> {r['fixed_session']}: "
            if r["status"] == "refused":
                lines.append(head + "refused: " + r["reason"])
            else:
                lines.append(head + f"{r['status']} on the {r['basis']}, NMI {r['nmi']:.3f}")
        return lines or ["Every patient of the table has one session only: nothing to register."]

    def followUp(self, studyTablePath, correspondencePath, outputFolder=""):
        """Follow every lesion track over the time points (``netpet followup``): ``lesion_changes.csv`` and
        ``patient_response.csv`` in ``outputFolder/follow-up`` (default beside the study table) and as table
        nodes. Returns {"folder", "tables": {"lesions", "patients"}, "warnings"}."""
        from netpet.clinical.followup import LESION_COLUMNS, PATIENT_COLUMNS, follow_up, write_table
        from netpet.match.correspondence import read_correspondence

        studyTablePath, correspondencePath = pathText(studyTablePath), pathText(correspondencePath)
        if not studyTablePath or not correspondencePath:
            raise ValueError("Choose the study table and the correspondence table (match the lesions first).")
        result = follow_up(self._studyFrame(studyTablePath), read_correspondence(correspondencePath), studyTablePath,
                           correspondencePath)
        folder = os.path.join(pathText(outputFolder) or os.path.dirname(os.path.abspath(studyTablePath)), "follow-up")
        os.makedirs(folder, exist_ok=True)
        write_table(os.path.join(folder, "lesion_changes.csv"), result.lesions)
        write_table(os.path.join(folder, "patient_response.csv"), result.patients)
        text = {"patient_id", "modality", "tracer", "reader", "track_id", "time_point", "session_id", "lesion_id",
                "reference_lesion_id", "match_status", "status", "previous_time_point", "call", "region",
                "segmentation_status", "flags", "warnings", "percist", "percist_reason", "sul_formula",
                "target_track_id", "baseline_target_track_id", "liver_comparable"}
        clean = lambda frame: frame.astype(object).where(frame.notna(), None).to_dict("records")  # noqa: E731
        tables = {"lesions": nodes.tableNodeFromRows(clean(result.lesions), list(LESION_COLUMNS),
                                                     "StudyStats follow-up lesions",
                                                     numeric=set(LESION_COLUMNS) - text),
                  "patients": nodes.tableNodeFromRows(clean(result.patients), list(PATIENT_COLUMNS),
                                                      "StudyStats follow-up patients",
                                                      numeric=set(PATIENT_COLUMNS) - text)}
        return {"folder": folder, "tables": tables, "warnings": list(result.warnings)}

    @staticmethod
    def _studyFrame(studyTablePath):
        import pandas as pd

        from netpet.quant.table import StudyTable

        table = StudyTable(pathText(studyTablePath))
        return pd.DataFrame(table.read(), columns=table.columns()).fillna("")

    def pairs(self, studyTablePath, correspondencePath, patientID, sessionA, sessionB, reader=None):
        """The tracks of a patient's two sessions side by side (netpet.match.pairs.matched_pairs), as dicts."""
        from netpet.match.correspondence import read_correspondence
        from netpet.match.pairs import matched_pairs

        if not pathText(correspondencePath):
            raise ValueError("No correspondence table is chosen; match the lesions first.")
        frame = matched_pairs(self._studyFrame(studyTablePath), read_correspondence(pathText(correspondencePath)),
                              str(patientID).strip(), str(sessionA).strip(), str(sessionB).strip(), reader)
        return frame.to_dict("records")

    def showPair(self, pair, studyTablePath):
        """Show a pair of :meth:`pairs` side by side: each session's PET (loaded with NETPET Reader, found by its
        series) in its own view, centred on its own finding; the stored registration of session b to a (when
        there is one) places a side without finding. Returns what ``showSideBySide`` returns."""
        from netpet.match.registration import transform_path
        from NETPETLib import matching

        frame = self._studyFrame(studyTablePath)
        pets = []
        for side in ("a", "b"):
            session = pair[f"session_id_{side}"]
            uid = pair.get(f"series_uid_{side}") or ""
            if not uid and "series_uid" in frame:  # a side without finding: the series of the session's other rows
                rows = frame[(frame["patient_id"] == pair["patient_id"]) & (frame["session_id"] == session)]
                uid = next((u for u in rows["series_uid"] if u), "")
            node = matching.petNodeForSeries(uid)
            if node is None:
                raise ValueError(f"The PET of patient {pair['patient_id']} session {session} (series {uid or 'unknown'}) "
                                 "is not loaded; load it with NETPET Reader first.")
            pets.append(node)
        transformNode = None
        path = transform_path(os.path.dirname(os.path.abspath(pathText(studyTablePath))), pair["patient_id"],
                              pair["session_id_b"], pair["session_id_a"])
        if os.path.exists(path):
            name = os.path.splitext(os.path.basename(path))[0]
            transformNode = slicer.mrmlScene.GetFirstNodeByName(name) or matching.loadRegistration(path, name)
        return matching.showSideBySide(pair, pets[0], pets[1], transformBToA=transformNode)

    # -- reading standards and reader studies ------------------------------------------------------------------
    @staticmethod
    def _folder(studyTablePath, outputFolder, name):
        return os.path.join(pathText(outputFolder) or os.path.dirname(os.path.abspath(pathText(studyTablePath))), name)

    def readingStandards(self, studyTablePath, correspondencePath="", outputFolder="", referencePath=""):
        """The reading standards of the study table (``netpet scores``): NETPET grade per patient, FDG+/SSTR-
        lesions, SSTR-RADS 1.0 per finding and scan (proposal beside the reader's category), PRRT summary (a
        decision aid); with ``referencePath``, TIO localisation patients are not graded. Files in
        ``outputFolder/reading-standards`` (default beside the study table) and table
        nodes. Returns {"result", "folder", "files", "tables": {"netpet_scores", "discordant", "sstr_rads_scans",
        "sstr_rads_lesions", "prrt"}}."""
        from netpet.clinical.netpet_score import DISCORDANT_COLUMNS, SCORE_COLUMNS
        from netpet.clinical.prrt import PRRT_COLUMNS
        from netpet.clinical.scores import read_table_scores, write_scores
        from netpet.clinical.sstr_rads import LESION_COLUMNS, SCAN_COLUMNS

        studyTablePath = pathText(studyTablePath)
        if not studyTablePath:
            raise ValueError("No study table is chosen; choose the study table (.csv or .sqlite).")
        result = read_table_scores(studyTablePath, pathText(correspondencePath) or None,
                                   reference_path=pathText(referencePath) or None)
        folder = self._folder(studyTablePath, outputFolder, "reading-standards")
        files = write_scores(result, folder)
        made = (("netpet_scores", SCORE_COLUMNS, "NETPET score"), ("discordant", DISCORDANT_COLUMNS, "FDG+ SSTR- lesions"),
                ("sstr_rads_scans", SCAN_COLUMNS, "SSTR-RADS scans"), ("sstr_rads_lesions", LESION_COLUMNS,
                                                                       "SSTR-RADS findings"),
                ("prrt", PRRT_COLUMNS, "PRRT summary"))
        tables = {key: nodes.tableNodeFromRows(result[key], list(columns), f"StudyStats {title}")
                  for key, columns, title in made}
        return {"result": result, "folder": folder, "files": files, "tables": tables}

    def mrmcAnalysis(self, studyTablePath, referencePath, correspondencePath="", level="patient", tests=None,
                     method="jackknife", outputFolder=""):
        """Multi-reader multi-case ROC of the readers' confidence (``netpet mrmc``: Obuchowski-Rockette with
        jackknife covariances or DBM, Hillis df). ``mrmc.csv`` and ``mrmc.json`` in ``outputFolder/mrmc`` and a
        table node. Returns {"result", "summary", "folder", "table"}."""
        import pandas as pd

        from netpet.cli.mrmc import _write_json, summary
        from netpet.clinical.followup import write_table
        from netpet.stats.data import load_study, units_for
        from netpet.stats.mrmc import result_rows, study_mrmc

        studyTablePath, referencePath = pathText(studyTablePath), pathText(referencePath)
        if not studyTablePath or not referencePath:
            raise ValueError("Choose the study table and the reference standard first.")
        study = load_study(studyTablePath, referencePath, correspondence=pathText(correspondencePath) or None)
        result = study_mrmc(units_for(study), level, tests, method, notes=study.warnings)
        folder = self._folder(studyTablePath, outputFolder, "mrmc")
        os.makedirs(folder, exist_ok=True)
        rows = result_rows(result)
        write_table(os.path.join(folder, "mrmc.csv"), pd.DataFrame(rows))
        _write_json(os.path.join(folder, "mrmc.json"), result)  # as netpet mrmc writes it (atomically)
        columns = list(rows[0]) if rows else ["analysis", "quantity"]
        table = nodes.tableNodeFromRows(rows, columns, "StudyStats MRMC",
                                        numeric={c for c in columns if rows and isinstance(rows[0].get(c), float)})
        return {"result": result, "summary": summary(result), "folder": folder, "table": table}

    def readingLists(self, studyTablePath, readers, seed=1, outputFolder=""):
        """Blinded reading lists (``netpet reading-list``): per reader the table's sessions in a seeded random order,
        in rounds with a washout, nothing of any result, in ``outputFolder/reading-lists``. Returns {"folder", "files"
        (one per reader), "record" (the design, as reading-lists.json)}."""
        from netpet.quant.table import StudyTable
        from netpet.reading.lists import sessions_from_rows, write_reading_lists

        studyTablePath = pathText(studyTablePath)
        if not studyTablePath:
            raise ValueError("No study table is chosen; choose the study table whose sessions are to be read.")
        readers = [r for r in (readers or []) if str(r).strip()]
        if not readers:
            raise ValueError("No reader is given; write the reader ids, separated by commas.")
        folder = self._folder(studyTablePath, outputFolder, "reading-lists")
        record = write_reading_lists(sessions_from_rows(StudyTable(studyTablePath).read()), readers, int(seed), folder,
                                     source=studyTablePath)
        return {"folder": folder, "files": [os.path.join(folder, r["file"]) for r in record["readers"]],
                "record": record}

    def adjudicationList(self, studyTablePath, readers, correspondencePath="", outputFolder=""):
        """The findings where the readers disagree (``netpet adjudicate``): ``adjudication.csv`` for the adjudicator
        to fill. Returns {"path", "count"}."""
        from netpet.quant.table import StudyTable
        from netpet.reading.adjudication import disagreements, write_adjudication_list

        studyTablePath = pathText(studyTablePath)
        if not studyTablePath:
            raise ValueError("No study table is chosen; choose the study table the readers wrote.")
        rows = StudyTable(studyTablePath).read()
        readers = [r for r in (readers or []) if str(r).strip()] or sorted({r["reader"] for r in rows if r.get("reader")})
        items = disagreements(rows, readers, pathText(correspondencePath) or None)
        path = os.path.join(self._folder(studyTablePath, outputFolder, "adjudication"), "adjudication.csv")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_adjudication_list(items, readers, path)
        return {"path": path, "count": len(items)}

    @staticmethod
    def falseFindingsTableNode(result, tableNode=None):
        """The false positives and negatives with their call, quality (segmentation_status, flags,
        warnings) and cause; the columns are there even when there is no false finding."""
        from netpet.stats.analysis import FALSE_FINDING_COLUMNS, FALSE_FINDING_VALUES

        return nodes.tableNodeFromRows(result["false_findings"], list(FALSE_FINDING_COLUMNS),
                                       "StudyStats false findings", tableNode=tableNode,
                                       numeric=set(FALSE_FINDING_VALUES))

    @staticmethod
    def comparisonsTableNode(result, tableNode=None):
        rows = []
        for c in result["comparisons"]:
            rows.append({"level": c["level"], "measure": c["measure"], "test": c["test"],
                         "a": " ".join(c["a"].values()), "b": " ".join(c["b"].values()), "n": c["n"],
                         "estimate_a": c.get("estimate_a"), "estimate_b": c.get("estimate_b"),
                         "difference": c.get("difference"), "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"),
                         "statistic": c.get("statistic"), "p_value": c.get("p_value"), "reason": c.get("reason", "")})
        return nodes.tableNodeFromRows(rows, name="StudyStats comparisons", tableNode=tableNode,
                                       numeric={"n", "estimate_a", "estimate_b", "difference", "ci_low", "ci_high",
                                                "statistic", "p_value"})

    @staticmethod
    def rocChart(analysis, variable):
        """A line chart of the ROC curves of one variable, a series per group (1 - specificity vs sensitivity)."""
        from netpet.stats import roc

        series = []
        for number, ((group, name), (scores, truth)) in enumerate(sorted(analysis.roc_curves.items())):
            if name != variable:
                continue
            curve = roc.roc_curve(scores, truth)
            fpr = np.concatenate([[0.0], (1.0 - curve["specificity"])[::-1]])
            tpr = np.concatenate([[0.0], curve["sensitivity"][::-1]])
            label = " ".join(group)
            table = nodes.tableNodeFromRows([{"fpr": x, "tpr": y} for x, y in zip(fpr, tpr)], ["fpr", "tpr"],
                                            f"ROC {variable} {label}", numeric={"fpr", "tpr"})
            series.append((f"{label}", table, "fpr", "tpr", GROUP_COLORS[number % len(GROUP_COLORS)]))
        if not series:
            return None
        return nodes.plotChart(f"ROC of {variable}", series, "1 - specificity", "Sensitivity", kind="line")

    @staticmethod
    def blandAltmanCharts(analysis):
        """Scatter charts of the difference against the mean of SUVmax, per modality/reader pair."""
        charts = {}
        for (key, a, b, variable), both in analysis.agreement_pairs.items():
            if variable != "suv_max" or len(both) < 2:
                continue
            x, y = both[f"{variable}_a"].to_numpy(float), both[f"{variable}_b"].to_numpy(float)
            rows = [{"mean": (u + v) / 2.0, "difference": u - v, "region": r}
                    for u, v, r in zip(x, y, both["region"])]
            label = f"{' '.join(a)} vs {' '.join(b)}"
            table = nodes.tableNodeFromRows(rows, ["mean", "difference", "region"], f"Bland-Altman {label}",
                                            numeric={"mean", "difference"})
            charts[f"bland_altman_{key}_{'_'.join(a)}"] = nodes.plotChart(
                f"Bland-Altman SUVmax, {label}", [(label, table, "mean", "difference", GROUP_COLORS[0])],
                "mean SUVmax", "difference SUVmax", kind="scatter")
        return charts


#
# Test (inside Slicer; headless Logic tests are in Testing/slicer)
#

class StudyStatsTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_statistics_of_a_small_study()

    def test_statistics_of_a_small_study(self):
        import tempfile

        folder = tempfile.mkdtemp()
        reference = os.path.join(folder, "reference.csv")
        with open(reference, "w") as handle:
            handle.write("patient_id,lesion_id,region,truth,standard\nP1,L1,liver,1,histology\nP2,L1,bone,0,follow-up\n"
                         "P3,,,0,follow-up\n")
        table = os.path.join(folder, "study.csv")
        with open(table, "w") as handle:
            handle.write("patient_id,session_id,modality,tracer,reader,lesion_id,call,suv_max\n"
                         "P1,S1,PET/CT,dotatate,R1,L1,positive,12\nP2,S1,PET/CT,dotatate,R1,L1,negative,4\n"
                         "P3,S1,PET/CT,dotatate,R1,,,\n")
        out = StudyStatsLogic().run(table, reference, os.path.join(folder, "out"), bootstrap=100)
        self.assertTrue(os.path.exists(out["report"]))
        self.assertEqual(out["tables"]["accuracy"].GetNumberOfRows(), 3)
        self.assertIsNotNone(out["tables"]["false_findings"].GetTable().GetColumnByName("segmentation_status"))
        self.delayDisplay("Test passed")
