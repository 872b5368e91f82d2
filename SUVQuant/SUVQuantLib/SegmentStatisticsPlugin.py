"""SegmentStatistics plugin: SUVmax, SUVpeak, SUVmean, SUVmin, SD, MTV, TLA, T/B and T/L of each
segment, with DICOM-coded measurement info (SUVQuantLib.measurements), computed by SUVQuantLogic.

Registered with Slicer's Segment Statistics module at startup; its input is the Segment
Statistics "scalar volume" (the SUV volume), optionally with a liver point from SUVQuant.
"""

from SegmentStatisticsPlugins import SegmentStatisticsPluginBase

from SUVQuantLib import measurements


class SUVSegmentStatisticsPlugin(SegmentStatisticsPluginBase):
    name = "NETPET SUV"
    keys = list(measurements.MEASUREMENTS)
    defaultKeys = ["suv_max", "suv_peak", "suv_mean", "mtv_ml", "tla", "tb_ratio", "tl_ratio"]

    def computeStatistics(self, segmentID):
        from SUVQuant import SUVQuantLogic

        segmentationNode = self.getParameterNode().GetParameter("Segmentation")
        volumeNode = self.getParameterNode().GetParameter("ScalarVolume")
        import slicer

        segmentationNode = slicer.mrmlScene.GetNodeByID(segmentationNode)
        volumeNode = slicer.mrmlScene.GetNodeByID(volumeNode)
        if volumeNode is None or not volumeNode.GetAttribute("NETPET.SUVType"):
            return {}
        values = SUVQuantLogic().measureSegment(volumeNode, segmentationNode, segmentID)
        requested = [k for k in self.keys if self.getParameterNode().GetParameter(self.toLongKey(k) + ".enabled") == "True"]
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
        return self.createMeasurementInfo(name=info["name"], description=info["title"], units=info["units"],
                                          quantityDicomCode=info["DICOM.QuantityCode"],
                                          unitsDicomCode=info["DICOM.UnitsCode"],
                                          derivationDicomCode=info["DICOM.DerivationCode"])
