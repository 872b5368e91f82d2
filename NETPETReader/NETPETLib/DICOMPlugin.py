"""The DICOM-browser plugin "NETPET SUV": PET series are offered as SUV volumes, above the generic loader.

Thin by design: ``examineForImport`` and ``load`` hand the files to NETPETReaderLogic
(``examineFiles`` / ``loadFiles``), which the headless tests exercise on real MRML. The SUV type is the
one chosen in the NETPET Reader panel (stored in the application settings).

As Slicer's bundled plugins do (Modules/Scripted/DICOMLib/DICOMPlugin.py, DICOMPlugins/*.py):

- the tags read are declared in ``self.tags``, which the DICOM module pre-caches on import
  (DICOMLib setDatabasePrecacheTags), and read with ``slicer.dicomDatabase.fileValue``: a series that
  is not PET is skipped without opening a file (DICOMImageSequencePlugin's "quick check ... without
  parsing the file");
- the loadables of a file list are kept (the browser keeps its plugin instances between examinations,
  DICOMLib/DICOMWidgets.py ``pluginInstances``), so re-selecting a series reads nothing again;
- a failure to load is raised to the DICOM module, which logs it and reports "Could not load"
  (DICOMLib/DICOMUtils.py loadLoadables); a failure to examine one list is logged and the other lists
  are still offered.
"""

import logging

import qt

import slicer
from DICOMLib import DICOMLoadable, DICOMPlugin


class NETPETSUVPlugin(DICOMPlugin):
    def __init__(self):
        super().__init__()
        self.loadType = "NETPET SUV"
        self.tags["modality"] = "0008,0060"
        self.tags["seriesInstanceUID"] = "0020,000E"
        self.tags["studyInstanceUID"] = "0020,000D"
        self.tags["patientID"] = "0010,0020"
        self.tags["units"] = "0054,1001"
        self._examined = {}

    @staticmethod
    def _logic():
        from NETPETReader import NETPETReaderLogic

        return NETPETReaderLogic()

    @staticmethod
    def suvType():
        from NETPETReader import SETTINGS_SUV_TYPE, SUV_TYPES

        value = str(qt.QSettings().value(SETTINGS_SUV_TYPE, "bw") or "bw")
        return value if value in SUV_TYPES else "bw"

    @staticmethod
    def _database():
        return getattr(slicer, "dicomDatabase", None)

    def _fileValue(self):
        """slicer.dicomDatabase.fileValue, or None when there is no open database (then the Logic reads one
        header per file list)."""
        database = self._database()
        if database is None or not getattr(database, "isOpen", True):
            return None
        return database.fileValue

    def studyModalities(self, path):
        """The modalities of the other series of the study of ``path``, from the database (CT or MR there
        tells a PET/CT from a PET/MR session)."""
        database, fileValue = self._database(), self._fileValue()
        if fileValue is None:
            return ()
        study = fileValue(path, self.tags["studyInstanceUID"])
        modalities = set()
        for series in (database.seriesForStudy(study) if study else ()):
            files = database.filesForSeries(series)
            if files:
                modalities.add((fileValue(files[0], self.tags["modality"]) or "").strip().upper())
        return tuple(sorted(m for m in modalities if m))

    def examineForImport(self, fileLists):
        loadables = []
        logic = None
        for files in fileLists:
            key = tuple(files)
            if key not in self._examined:
                logic = logic or self._logic()
                try:
                    self._examined[key] = logic.examineFiles([list(files)], fileValue=self._fileValue())
                except Exception as exc:  # noqa: BLE001 - the browser must keep working when one series is odd
                    logging.warning(f"NETPET: examining {len(files)} files as PET failed: {exc}")
                    self._examined[key] = []
            for offer in self._examined[key]:
                loadable = DICOMLoadable()
                loadable.files = list(offer["files"])
                loadable.name = offer["name"].replace("(SUV)", f"(SUV{self.suvType()})")
                loadable.tooltip = offer["tooltip"]
                loadable.warning = offer["warning"]
                loadable.selected = True
                loadable.confidence = offer["confidence"]
                loadable.seriesInstanceUID = offer["series_uid"]
                loadables.append(loadable)
        return loadables

    def load(self, loadable):
        """The SUV volume of the loadable's PET, with its identity and provenance on the node."""
        volumeNode = self._logic().loadFiles(loadable.files, self.suvType(), name=loadable.name,
                                             studyModalities=self.studyModalities(loadable.files[0]))
        self.addSeriesInSubjectHierarchy(loadable, volumeNode)
        return volumeNode
