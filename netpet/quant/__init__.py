"""SUVQuant core: click-to-segment lesions, references, measurements, classifier, study table.

segment_seeds, SegmentOptions
    Lesions from seed points (netpet.quant.segment; its function ``segment`` is imported from there: the
    package's attribute ``segment`` is that module).
liver_reference, spleen_reference, background_shell
    Reference regions (netpet.quant.references).
measure
    SUVmax, SUVpeak, SUVmean, MTV, TLA, ratios (netpet.quant.measure).
LiverThresholdClassifier, krenning_score
    The study's call (netpet.quant.classify) and its cut-off as a scikit-learn estimator (netpet.quant.cutoff).
StudyTable
    The study-wide table with atomic upserts (netpet.quant.table).
quantify, run_manifest
    Whole sessions and batch manifests (netpet.quant.pipeline).
"""

from netpet.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "classify": ("krenning_score",),
    "cutoff": ("LiverThresholdClassifier",),
    "measure": ("measure",),
    "references": ("background_shell", "liver_reference", "spleen_reference"),
    "segment": ("METHODS", "SegmentOptions", "segment_seeds"),
    "table": ("StudyTable",),
    "volume": ("QuantError", "SUVVolume"),
})
