"""Clinical rules over study tables: staging categories and their accuracy and agreement.

Pure functions over pandas tables (no image, no Slicer, no I/O):

* :mod:`netpet.clinical.staging`: per-patient N and M categories of gastroenteropancreatic
  neuroendocrine tumours (AJCC 8th edition / ENETS) from a reader's findings or from the reference
  standard, with the regional nodal stations of each primary site.
* :mod:`netpet.clinical.staging_stats`: staging accuracy (correct N, M, both, stage group) with
  Wilson intervals, agreement between two readings (weighted kappa, Bowker, Stuart-Maxwell) and
  up-/down-staging counts with the exact McNemar test.
"""

from netpet.clinical.staging import (M_CATEGORIES, N_CATEGORIES, PRIMARY_SITES, STAGE_GROUPS, StagingError,
                                     classify_node, node_is_regional, primary_site, stage_group, stage_patients)
from netpet.clinical.staging_stats import (compare_m, compare_n, compare_stage_group, contingency, marginal_homogeneity,
                                           staging_accuracy, staging_agreement, up_down_staging, weighted_kappa)

__all__ = ["M_CATEGORIES", "N_CATEGORIES", "PRIMARY_SITES", "STAGE_GROUPS", "StagingError", "classify_node",
           "node_is_regional", "primary_site", "stage_group", "stage_patients", "compare_m", "compare_n",
           "compare_stage_group", "contingency", "marginal_homogeneity", "staging_accuracy", "staging_agreement",
           "up_down_staging", "weighted_kappa"]
