"""The DICOM-browser plugin: PET series are offered as SUV volumes, above the generic scalar loader.

Thin by design: ``examineForImport`` and ``load`` hand the files to NETPETReaderLogic
(``examineFiles`` / ``loadFiles``), which the headless tests exercise on real MRML. The SUV type
is the one chosen in the NETPET Reader panel (stored in the application settings).
"""

import logging

import qt

import slicer
from DICOMLib import DICOMLoadable, DICOMPlugin


class NETPETSUVPlugin(DICOMPlugin):
    def __init__(self):
        super().__init__()
        self.loadType = "NETPET SUV"

    @staticmethod
    def _logic():
        from NETPETReader import NETPETReaderLogic

        return NETPETReaderLogic()

    @staticmethod
    def suvType():
        from NETPETReader import SETTINGS_SUV_TYPE, SUV_TYPES

        value = str(qt.QSettings().value(SETTINGS_SUV_TYPE, "bw") or "bw")
        return value if value in SUV_TYPES else "bw"

    def examineForImport(self, fileLists):
        loadables = []
        try:
            offers = self._logic().examineFiles(fileLists)
        except Exception as exc:  # the browser must keep working when one series is odd
            logging.warning(f"NETPET: examining PET series failed: {exc}")
            return loadables
        for offer in offers:
            loadable = DICOMLoadable()
            loadable.files = offer["files"]
            loadable.name = offer["name"].replace("(SUV)", f"(SUV{self.suvType()})")
            loadable.tooltip = offer["tooltip"]
            loadable.warning = offer["warning"]
            loadable.selected = True
            loadable.confidence = offer["confidence"]
            loadable.seriesInstanceUID = offer["series_uid"]
            loadables.append(loadable)
        return loadables

    def load(self, loadable):
        with slicer.util.tryWithErrorDisplay("NETPET could not load the PET series as SUV.", waitCursor=True):
            volumeNode = self._logic().loadFiles(loadable.files, self.suvType(), name=loadable.name)
            self.addSeriesInSubjectHierarchy(loadable, volumeNode)
            return volumeNode
        return None
