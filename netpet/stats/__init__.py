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

from netpet.stats.agreement import bland_altman, cohen_kappa, lin_ccc, spearman
from netpet.stats.analysis import Analysis, StatsOptions, analyse
from netpet.stats.data import load_study, read_correspondence, read_reference
from netpet.stats.intervals import CI_METHODS, Measure, StatsError, accuracy_measures, proportion_ci
from netpet.stats.paired import PairedCounts, mcnemar_chi2, mcnemar_exact, tango_interval
from netpet.stats.report import write_outputs
from netpet.stats.roc import auc_ci, delong_paired, youden

__all__ = ["bland_altman", "cohen_kappa", "lin_ccc", "spearman", "Analysis", "StatsOptions", "analyse", "load_study",
           "read_correspondence", "read_reference",
           "CI_METHODS", "Measure", "StatsError", "accuracy_measures", "proportion_ci", "PairedCounts", "mcnemar_chi2",
           "mcnemar_exact", "tango_interval", "write_outputs", "auc_ci", "delong_paired", "youden"]
