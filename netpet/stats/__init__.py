"""StudyStats core: diagnostic accuracy of the study table against the reference standard.

load_study
    Read and check the study table and the reference standard (netpet.stats.data), optionally
    joined by netpet match's correspondence table (``correspondence=``); time points of the
    table become groups when there are several.
read_reference, read_correspondence
    The reference standard and the correspondence table, checked (netpet.stats.data).
analyse, StatsOptions
    Accuracy per patient, lesion and region with intervals (naive and clustered), paired
    comparisons, ROC, agreement, false findings, staging (netpet.stats.analysis,
    netpet.stats.staging).
write_outputs
    CSV tables, PNG/SVG figures and the self-contained HTML report (netpet.stats.report).
proportion_ci, accuracy_measures, tango_interval, mcnemar_exact, auc_ci, delong_paired, lin_ccc
    The statistics themselves, each checked against its reference implementation.
"""

from netpet.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "agreement": ("bland_altman", "cohen_kappa", "lin_ccc", "spearman"),
    "analysis": ("Analysis", "StatsOptions", "analyse"),
    "data": ("load_study", "read_correspondence", "read_reference"),
    "intervals": ("CI_METHODS", "Measure", "StatsError", "accuracy_measures", "proportion_ci"),
    "paired": ("PairedCounts", "mcnemar_chi2", "mcnemar_exact", "tango_interval"),
    "report": ("write_outputs",),
    "roc": ("auc_ci", "delong_paired", "youden"),
})
