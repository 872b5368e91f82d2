"""SegmentStatistics plugin: SUVmax, SUVpeak, SUVmean, SUVmin, SD, MTV, TLA, T/B and T/L of each
segment, with DICOM-coded measurement info (SUVQuantLib.measurements), computed by SUVQuantLogic;
and, on request (not by default), the liver-threshold call (positive, equivocal or negative) and the
segmentation status (segmented or not separable), which have no DICOM code: their measurement info
has a name and a description only, and the numeric measurements keep their codes.

Registered with Slicer's Segment Statistics module at startup; its input is the Segment
Statistics "scalar volume" (the SUV volume), optionally with a liver point from SUVQuant.
"""

import logging

from SegmentStatisticsPlugins import SegmentStatisticsPluginBase

from SUVQuantLib import measurements

NAME = "NETPET SUV"
KEYS = list(measurements.MEASUREMENTS) + list(measurements.CATEGORICAL)
DEFAULT_KEYS = ["suv_max", "suv_peak", "suv_mean", "mtv_ml", "tla", "tb_ratio", "tl_ratio"]


class SUVSegmentStatisticsPlugin(SegmentStatisticsPluginBase):
    # class attributes: SegmentStatisticsLogic.registeredPlugins holds classes and readers ask them for their name
    name = NAME
    keys = KEYS
    defaultKeys = DEFAULT_KEYS

    def __init__(self):
        # the base class sets name, keys and defaultKeys on the instance (empty): set ours after it
        SegmentStatisticsPluginBase.__init__(self)
        self.name = NAME
        self.keys = list(KEYS)
        self.defaultKeys = list(DEFAULT_KEYS)

    def computeStatistics(self, segmentID):
        import slicer

        from NETPETLib import dependencies
        from SUVQuant import SUVQuantLogic

        parameters = self.getParameterNode()
        requested = [k for k in self.keys if parameters.GetParameter(self.toLongKey(k) + ".enabled") == "True"]
        segmentationNode = slicer.mrmlScene.GetNodeByID(parameters.GetParameter("Segmentation"))
        volumeNode = slicer.mrmlScene.GetNodeByID(parameters.GetParameter("ScalarVolume"))
        if not requested or volumeNode is None or not volumeNode.GetAttribute("NETPET.SUVType"):
            return {}
        if dependencies.missing():
            logging.warning("NETPET SUV statistics need Python packages that are not installed yet; open the SUV Quant "
                            "module once to install them.")
            return {}
        from netpet.quant.volume import QuantError

        try:
            values = SUVQuantLogic().measureSegment(volumeNode, segmentationNode, segmentID)
        except (QuantError, ValueError) as exc:  # one empty or unmeasurable segment must not stop the others
            logging.warning(f"NETPET SUV statistics of segment {segmentID}: {exc}")
            return {}
        return {k: values.get(k) for k in requested}

    def getMeasurementInfo(self, key):
        if key not in self.keys:
            return None
        import slicer

        suvType = "bw"
        volumeID = self.getParameterNode().GetParameter("ScalarVolume") if self.getParameterNode() else None
        volumeNode = slicer.mrmlScene.GetNodeByID(volumeID) if volumeID else None
        if volumeNode is not None and volumeNode.GetAttribute("NETPET.SUVType"):
            suvType = volumeNode.GetAttribute("NETPET.SUVType")
        info = measurements.measurement_info(key, suvType)
        return self.createMeasurementInfo(name=info["name"], description=info["description"], units=info["units"],
                                          quantityDicomCode=info["DICOM.QuantityCode"],
                                          unitsDicomCode=info["DICOM.UnitsCode"],
                                          derivationDicomCode=info["DICOM.DerivationCode"])
