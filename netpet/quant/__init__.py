"""SUVQuant core: click-to-segment lesions, references, measurements, classifier, study table.

segment / segment_seeds
    Lesions from seed points (netpet.quant.segment).
liver_reference, spleen_reference, background_shell
    Reference regions (netpet.quant.references).
measure
    SUVmax, SUVpeak, SUVmean, MTV, TLA, ratios (netpet.quant.measure).
LiverThresholdClassifier, krenning_score
    The study's call (netpet.quant.classify).
StudyTable
    The study-wide table with atomic upserts (netpet.quant.table).
quantify, run_manifest
    Whole sessions and batch manifests (netpet.quant.pipeline).
"""

from netpet.quant.classify import LiverThresholdClassifier, krenning_score
from netpet.quant.measure import measure
from netpet.quant.references import background_shell, liver_reference, spleen_reference
from netpet.quant.segment import METHODS, SegmentOptions, segment, segment_seeds
from netpet.quant.table import StudyTable
from netpet.quant.volume import QuantError, SUVVolume

__all__ = ["LiverThresholdClassifier", "krenning_score", "measure", "background_shell", "liver_reference",
           "spleen_reference", "METHODS", "SegmentOptions", "segment", "segment_seeds", "StudyTable",
           "QuantError", "SUVVolume"]
