"""The reading standards and the reader study in ``netpet stats``: what :mod:`netpet.clinical.scores` (NETPET grade,
FDG+/SSTR- lesions, SSTR-RADS 1.0, PRRT summary) and :mod:`netpet.stats.mrmc` (multi-reader multi-case ROC of the
readers' confidence) say of the study that the accuracy analysis reads, so that the report carries them beside the
accuracy with their warnings.

* ``scores``: :func:`netpet.clinical.scores.read_table_scores` of the study table, with the correspondence the
  study was read with and the reference standard's indications (TIO localisation patients are not graded); patient
  ids pseudonymised as the study's are. A table the standards cannot read gives ``{"not_analysed": reason}``.
* ``mrmc``: per comparison of two tests (the same tracer on two modalities, PET/CT vs PET/MR; two tracers on the
  same modality, DOTATATE vs FDG), patients as cases (the independent unit the methods assume; Obuchowski,
  Radiology 2004;230:22-28) and lesions as cases (with the analysis' warning that they are correlated), the Obuchowski-Rockette analysis with jackknife covariances and Hillis' degrees of
  freedom (:func:`netpet.stats.mrmc.study_mrmc`). A comparison the data cannot support (no confidence recorded,
  fewer than two readers, no case read by every reader under both tests, one truth class only) is listed with its
  reason, never left out silently.
"""

from __future__ import annotations

import logging
from itertools import combinations
from typing import Any, Dict, List, Sequence

import pandas as pd

from netpet.errors import NetpetError

log = logging.getLogger(__name__)


def reading_standards(study) -> Dict[str, Any]:
    """The reading standards of ``study`` (:class:`netpet.stats.data.Study`; module docstring)."""
    from netpet.clinical.scores import read_table_scores

    try:
        result = read_table_scores(study.table_path, study.correspondence_path,
                                   reference_path=study.reference.path)
    except (NetpetError, ValueError, OSError) as exc:
        return {"not_analysed": str(exc)}
    if study.patient_ids is not None:
        for key, rows in result.items():
            if isinstance(rows, list):
                for row in rows:
                    if isinstance(row, dict) and "patient_id" in row:
                        row["patient_id"] = study.patient_ids(str(row["patient_id"]))
    return result


def _comparisons(units: pd.DataFrame) -> List[List[str]]:
    """Pairs of tests (modality, tracer) to compare: one tracer on two modalities, two tracers on one modality."""
    tests = sorted({(str(m), str(t)) for m, t in zip(units["modality"], units["tracer"])})
    pairs = []
    for (m1, t1), (m2, t2) in combinations(tests, 2):
        if t1 == t2 or m1 == m2:
            pairs.append([f"{m1} {t1}", f"{m2} {t2}"])
    return pairs


def reader_study(units: Dict[str, pd.DataFrame], levels: Sequence[str] = ("patient", "lesion")) -> Dict[str, Any]:
    """The MRMC analyses of the study's readers' confidence (module docstring), per level (patients, the independent
    unit, and lesions, which carry the analysis' own warning that they are correlated within a patient):
    {"comparisons": [{"level", "tests", "result"} or {"level", "tests", "not_analysed"}], "note"}. The consensus
    reader of an adjudication (:data:`netpet.reading.CONSENSUS_READER`) is no reader of its own here."""
    from netpet.reading import CONSENSUS_READER
    from netpet.stats.intervals import StatsError
    from netpet.stats.mrmc import study_mrmc

    readers = {level: units[level][units[level]["reader"] != CONSENSUS_READER] for level in levels}
    out: Dict[str, Any] = {"comparisons": []}
    first = readers[levels[0]]
    if "confidence" not in first.columns or first["reader"].nunique() < 2:
        out["note"] = ("No multi-reader analysis: it needs at least two readers who recorded a confidence (1-5) per "
                       "finding.")
        return out
    for level in levels:
        for tests in _comparisons(readers[level]):
            try:
                out["comparisons"].append({"level": level, "tests": tests,
                                           "result": study_mrmc(readers, level, tests)})
            except StatsError as exc:
                out["comparisons"].append({"level": level, "tests": tests, "not_analysed": str(exc)})
    if not out["comparisons"]:
        out["note"] = "No two tests share a tracer or a modality: nothing to compare."
    return out
