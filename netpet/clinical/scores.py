"""The reading standards of a study table in one call: NETPET score, FDG+/SSTR- lesions, SSTR-RADS 1.0 per finding and
per scan, PRRT summary, and their statistics (``netpet scores``, StudyStats and the report use it).

* :mod:`netpet.clinical.netpet_score` (Chan et al., Theranostics 2017): per patient, reader, time point and DOTATATE
  session;
* :mod:`netpet.clinical.sstr_rads` (Werner et al., J Nucl Med 2018): proposal, reader's category, agreement;
* :mod:`netpet.clinical.prrt`: the PRRT summary and its imaging-eligibility statement (a decision aid);
* :mod:`netpet.clinical.scores_stats`: distributions per group and weighted kappa between readers and modalities.

Retracted rows (:func:`netpet.schema.is_retracted`) are kept out of everything and counted in the warnings.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional

from netpet.clinical.netpet_score import EQUAL_RATIO, score_patients
from netpet.clinical.prrt import prrt_rows
from netpet.clinical.scores_stats import statistics
from netpet.clinical.sstr_rads import lesion_rows, scan_rows

KEYS = ("netpet_scores", "discordant", "sstr_rads_lesions", "sstr_rads_scans", "prrt", "statistics", "warnings")


def _records(rows: Any) -> List[Dict[str, Any]]:
    if rows is None:
        return []
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        rows = rows.to_dict("records")
    return [dict(r) for r in rows]


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinity as None, numpy scalars as Python numbers, tuples as lists (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def study_scores(table_rows: Any, correspondence_rows: Optional[Iterable[Mapping[str, Any]]] = None,
                 equal_ratio: float = EQUAL_RATIO) -> Dict[str, Any]:
    """Every reading standard of a study table (module docstring).

    Parameters
    ----------
    table_rows : iterable of mappings or pandas.DataFrame
        The study table's rows (:mod:`netpet.schema`).
    correspondence_rows : iterable of mappings or pandas.DataFrame, optional
        ``netpet match``'s correspondence table; without it, DOTATATE and FDG findings correspond by ``lesion_id``.
    equal_ratio : float
        The NETPET P3 band (:data:`netpet.clinical.netpet_score.EQUAL_RATIO`).

    Returns
    -------
    dict
        JSON-safe: ``netpet_scores``, ``discordant``, ``sstr_rads_lesions``, ``sstr_rads_scans``, ``prrt`` (lists of
        row dicts), ``statistics`` (``distribution``, ``agreement``: lists of row dicts) and ``warnings`` (sentences).

    Raises
    ------
    ValueError
        ``equal_ratio`` not a finite number >= 1.
    """
    rows = _records(table_rows)
    correspondence = _records(correspondence_rows) if correspondence_rows is not None else None
    scored = score_patients(rows, correspondence, equal_ratio)
    warnings: List[str] = list(scored["warnings"])
    lesions = lesion_rows(rows, warnings)
    scans = scan_rows(lesions)
    prrt = prrt_rows(rows, scored["scores"], scored["discordant"])
    stats = statistics(scored["scores"], scans, warnings)
    return json_safe({"netpet_scores": scored["scores"], "discordant": scored["discordant"],
                      "sstr_rads_lesions": lesions, "sstr_rads_scans": scans, "prrt": prrt, "statistics": stats,
                      "warnings": warnings})
