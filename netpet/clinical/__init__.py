"""Clinical rules over study tables: staging categories and their accuracy and agreement.

Pure functions over pandas tables (no image, no Slicer, no I/O):

* :mod:`netpet.clinical.staging`: per-patient N and M categories of gastroenteropancreatic
  neuroendocrine tumours (AJCC 8th edition / ENETS) from a reader's findings or from the reference
  standard, with the regional nodal stations of each primary site.
* :mod:`netpet.clinical.staging_stats`: staging accuracy (correct N, M, both, stage group) with
  Wilson intervals, agreement between two readings (weighted kappa, Bowker, Stuart-Maxwell) and
  up-/down-staging counts with the exact McNemar test.
* :mod:`netpet.clinical.followup`: lesions tracked over time points (changes of SUVmax, SUVpeak, MTV, T/L;
  new, persisting and disappeared lesions), per-patient SSTR-TV and TL-SSTR and, for FDG, PERCIST 1.0.
"""

from netpet.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "followup": ("FollowUp", "FollowUpError", "FollowUpRefusal", "follow_up", "lesion_changes", "order_time_points",
                 "patient_response", "percist", "sul_factor"),
    "staging": ("M_CATEGORIES", "N_CATEGORIES", "PRIMARY_SITES", "STAGE_GROUPS", "StagingError", "classify_node",
                "node_is_regional", "primary_site", "stage_group", "stage_patients"),
    "staging_stats": ("compare_m", "compare_n", "compare_stage_group", "contingency", "marginal_homogeneity",
                      "staging_accuracy", "staging_agreement", "up_down_staging", "weighted_kappa"),
})
