"""SegmentStatistics plugin: SUVmax, SUVpeak, SUVmean, SUVmin, SD, MTV, TLA, T/B and T/L of each
segment, with DICOM-coded measurement info (SUVQuantLib.measurements), computed by SUVQuantLogic;
and, on request (not by default), the liver-threshold call (positive, equivocal or negative) and the
segmentation status (segmented or not separable), which have no DICOM code: their measurement info
has a name and a description only, and the numeric measurements keep their codes.

Registered with Slicer's Segment Statistics module at startup (SUVQuant.registerExtensionPoints); its
input is the Segment Statistics "scalar volume" (the SUV volume), with the liver point of the SUV Quant
panel when one is placed (otherwise the liver reference is found automatically, as SUV Quant does).

Initialised as Slicer's bundled plugins are (Modules/Scripted/SegmentStatistics/SegmentStatisticsPlugins/
ScalarVolumeSegmentStatisticsPlugin.py): SegmentStatisticsPluginBase.__init__ sets ``name``, ``title``,
``keys`` and ``defaultKeys`` on the instance, so they are set after it; SegmentStatisticsLogic makes its
own instances from the registered class, so only what the instance carries counts. Measurement info is
made with ``createMeasurementInfo(name, title, description, units, ...)`` (title required, 5.8 and 5.10).
"""

import logging

from slicer.i18n import tr as _
from SegmentStatisticsPlugins import SegmentStatisticsPluginBase

from SUVQuantLib import measurements

NAME = "NETPET SUV"
KEYS = list(measurements.MEASUREMENTS) + list(measurements.CATEGORICAL)
DEFAULT_KEYS = ["suv_max", "suv_peak", "suv_mean", "mtv_ml", "tla", "tb_ratio", "tl_ratio"]


class SUVSegmentStatisticsPlugin(SegmentStatisticsPluginBase):
    """SUV measurements of each segment of an SUV volume (a volume NETPET Reader made: ``NETPET.SUVType``)."""

    def __init__(self):
        super().__init__()
        self.name = NAME
        self.title = _("NETPET SUV")
        self.keys = list(KEYS)
        self.defaultKeys = list(DEFAULT_KEYS)

    def _nodes(self):
        import slicer

        parameters = self.getParameterNode()
        segmentationNode = slicer.mrmlScene.GetNodeByID(parameters.GetParameter("Segmentation"))
        volumeNode = slicer.mrmlScene.GetNodeByID(parameters.GetParameter("ScalarVolume"))
        return segmentationNode, volumeNode

    @staticmethod
    def _liverRAS(logic):
        """The SUV Quant panel's liver point, if one is placed (None: automatic, as SUV Quant measures)."""
        liverPoint = logic.getParameterNode().liverPoint
        if liverPoint is not None and liverPoint.GetNumberOfControlPoints():
            return tuple(liverPoint.GetNthControlPointPositionWorld(0))
        return None

    def computeStatistics(self, segmentID):
        requested = self.getRequestedKeys()
        if not requested:
            return {}
        segmentationNode, volumeNode = self._nodes()
        if segmentationNode is None or volumeNode is None or not volumeNode.GetAttribute("NETPET.SUVType"):
            return {}
        from NETPETLib import dependencies

        if dependencies.missing():
            logging.warning("NETPET SUV statistics need Python packages that are not installed yet; open the SUV Quant "
                            "module once to install them.")
            return {}
        from netpet.quant.volume import QuantError

        from SUVQuant import SUVQuantLogic

        logic = SUVQuantLogic()
        try:
            values = logic.measureSegment(volumeNode, segmentationNode, segmentID, liverRAS=self._liverRAS(logic))
        except (QuantError, ValueError) as exc:  # one empty or unmeasurable segment must not stop the others
            logging.warning(f"NETPET SUV statistics of segment {segmentID}: {exc}")
            return {}
        return {key: values.get(key) for key in requested}

    def getMeasurementInfo(self, key):
        if key not in self.keys:
            return None
        suvType = "bw"
        volumeNode = self._nodes()[1] if self.getParameterNode() else None
        if volumeNode is not None and volumeNode.GetAttribute("NETPET.SUVType"):
            suvType = volumeNode.GetAttribute("NETPET.SUVType")
        info = measurements.measurement_info(key, suvType)
        return self.createMeasurementInfo(name=info["name"], title=info["title"], description=info["description"],
                                          units=info["units"], quantityDicomCode=info["DICOM.QuantityCode"],
                                          unitsDicomCode=info["DICOM.UnitsCode"],
                                          derivationDicomCode=info["DICOM.DerivationCode"])
