"""PRRT summary per patient and SSTR PET read: Krenning distribution, the lowest-scoring target lesion, tumour-to-liver
and tumour-to-spleen ratios, the FDG+/SSTR- lesions, and an imaging-eligibility statement (a decision aid).

What a read's *target lesions* are: every tumour finding of the SSTR PET read (DOTATATE, DOTATOC, DOTANOC), active
(not retracted) and not marked by the reader as not tumour (:func:`netpet.clinical.netpet_score.non_tumour`:
physiological uptake, benign lesion type or anatomic correlate, reader's SSTR-RADS 1A-2B). Every one is a target:
a lesion left out of the PRRT assessment must be marked so by the reader.

Per lesion: Krenning score (:func:`netpet.clinical.netpet_score.row_krenning`), tumour-to-liver ratio T/L =
``suv_max / liver_suv_mean`` (the table's ``tl_ratio`` when given) and tumour-to-spleen ratio T/S =
``suv_max / spleen_suv_mean`` (empty without a spleen reference).

Criteria applied (each reported True/False/None and named in the statement)
--------------------------------------------------------------------------
1. ``uptake_ge_liver``: every target lesion has uptake at least equal to the normal liver (Krenning >= 2). The
   inclusion criterion of NETTER-1 (Strosberg J et al., N Engl J Med 2017;376:125-135: somatostatin-receptor
   expression of all target lesions on planar scintigraphy at least that of normal liver [from memory]) and of the
   EANM/IAEA/SNMMI practical guidance (Zaknun JJ et al., Eur J Nucl Med Mol Imaging 2013;40:800-816 [from memory]).
2. ``uptake_gt_liver``: every target lesion has uptake above the liver (Krenning >= 3). On PET, which shows more
   than planar scintigraphy, the NANETS/SNMMI documents on 177Lu-DOTATATE (procedure standard, Hope TA et al., J Nucl
   Med 2019;60:937-943, patient screening; consensus statement on patient selection, Hope TA et al., J Nucl Med
   2020;61:222-227) read sufficient expression as uptake above the normal liver [the exact wording from memory];
   NETPET reports both criteria and states which holds.
3. ``no_fdg_discordance``: no FDG-positive lesion without SSTR expression (NETPET grade P5, Chan et al.,
   Theranostics 2017;7:1149-1158: such disease would not be reached by PRRT); None when the patient has no FDG read
   at that time point (the statement says it was not assessed).

``meets_criteria`` is True when 1, 2 and 3 hold, None when 1 and 2 hold and 3 was not assessed (no FDG read),
False otherwise. Statement: "Meets the imaging criteria for PRRT (...)" when 1 and 2 hold and 3 does not fail; "meets ... criterion 1 but not 2"
names the lesions at liver level; otherwise "Does not meet ..." with the failing criteria and lesions. Always
followed by: "a decision aid from imaging alone, not a treatment decision" (the decision needs histology, grade,
organ function and the tumour board).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from netpet.clinical.netpet_score import non_tumour, number, row_krenning, row_tl, time_point_of, tracer_kind
from netpet.schema import clean_label, is_retracted

PRRT_COLUMNS: Tuple[str, ...] = (
    "patient_id", "session_id", "modality", "reader", "time_point", "n_targets", "krenning_0", "krenning_1",
    "krenning_2", "krenning_3", "krenning_4", "krenning_unknown", "lowest_lesion", "lowest_krenning", "lowest_tl_ratio",
    "tl_ratio_min", "tl_ratio_max", "ts_ratio_min", "ts_ratio_max", "fdg_session", "fdg_sstr_discordant",
    "uptake_ge_liver", "uptake_gt_liver", "no_fdg_discordance", "meets_criteria", "statement", "n_excluded",
)
DECISION_AID = "a decision aid from imaging alone, not a treatment decision"


def ts_ratio(row: Mapping[str, Any]) -> Optional[float]:
    """Tumour-to-spleen ratio ``suv_max / spleen_suv_mean``; None without both."""
    suv, spleen = number(row.get("suv_max")), number(row.get("spleen_suv_mean"))
    if suv is None or spleen is None or spleen <= 0:
        return None
    return suv / spleen


def prrt_summary(rows: Sequence[Mapping[str, Any]], discordant: Optional[Sequence[str]] = None,
                 fdg_session: str = "") -> Dict[str, Any]:
    """The PRRT summary of one SSTR PET read (module docstring).

    Parameters
    ----------
    rows : sequence of mappings
        The read's study-table rows (one patient, session, reader); retracted rows and non-tumour findings are
        left out (``n_excluded`` counts the latter).
    discordant : sequence of str, optional
        The FDG+/SSTR- lesions of the patient at this time point (track ids, :mod:`netpet.clinical.netpet_score`);
        None when no FDG read is available (criterion 3 not assessed).
    fdg_session : str
        The FDG session the discordance was read from ('' when none).

    Returns
    -------
    dict
        A row of :data:`PRRT_COLUMNS` (identity columns from the first row).
    """
    active = [r for r in rows if not is_retracted(r)]
    first = active[0] if active else (rows[0] if rows else {})
    targets, excluded = [], 0
    for row in active:
        if non_tumour(row):
            excluded += 1
        else:
            targets.append(row)
    counts = {k: 0 for k in range(5)}
    unknown = 0
    lesions = []
    for row in targets:
        k = row_krenning(row)
        if k is None:
            unknown += 1
        else:
            counts[k] += 1
        lesions.append((clean_label(row.get("lesion_id")), k, row_tl(row), ts_ratio(row)))
    out: Dict[str, Any] = {
        "patient_id": clean_label(first.get("patient_id")), "session_id": clean_label(first.get("session_id")),
        "modality": clean_label(first.get("modality")), "reader": clean_label(first.get("reader")),
        "time_point": time_point_of(first), "n_targets": len(targets),
        **{f"krenning_{k}": counts[k] for k in range(5)}, "krenning_unknown": unknown, "n_excluded": excluded,
        "fdg_session": fdg_session,
        "fdg_sstr_discordant": ";".join(discordant) if discordant else "",
    }
    tls = [t for _, _, t, _ in lesions if t is not None]
    tss = [s for _, _, _, s in lesions if s is not None]
    out.update(tl_ratio_min=min(tls) if tls else "", tl_ratio_max=max(tls) if tls else "",
               ts_ratio_min=min(tss) if tss else "", ts_ratio_max=max(tss) if tss else "")
    scored = [x for x in lesions if x[1] is not None]
    if scored:
        # the lowest Krenning score; among equal scores the lowest T/L (unknown T/L last)
        low = min(scored, key=lambda x: (x[1], x[2] if x[2] is not None else float("inf"), x[0]))
        out.update(lowest_lesion=low[0], lowest_krenning=low[1], lowest_tl_ratio=low[2] if low[2] is not None else "")
    else:
        out.update(lowest_lesion="", lowest_krenning="", lowest_tl_ratio="")
    if not targets:
        out.update(uptake_ge_liver=None, uptake_gt_liver=None,
                   no_fdg_discordance=None if discordant is None else not discordant, meets_criteria=None,
                   statement="No SSTR tumour lesion recorded in this read: the PRRT imaging criteria do not apply "
                             f"({DECISION_AID}).")
        return out
    below = [x[0] for x in lesions if x[1] is None or x[1] < 2]
    at_liver = [x[0] for x in lesions if x[1] == 2]
    ge = not below
    gt = ge and not at_liver
    no_disc = None if discordant is None else not discordant
    out.update(uptake_ge_liver=ge, uptake_gt_liver=gt, no_fdg_discordance=no_disc)
    n = len(targets)
    lesions_text = "the only target lesion" if n == 1 else f"all {n} target lesions"
    fdg_text = ("no FDG-positive lesion without SSTR expression" if no_disc else
                "FDG not read at this time point, so FDG+/SSTR- disease was not assessed" if no_disc is None else "")
    if ge and no_disc is not False:
        level = "above the liver (Krenning >= 3)" if gt else "at least equal to the liver (Krenning >= 2)"
        if gt:
            head = f"Meets the imaging criteria for PRRT: {lesions_text} with uptake {level}"
        else:
            head = (f"Meets the planar criterion (uptake at least equal to the liver, Krenning >= 2; NETTER-1, Zaknun "
                    f"2013) but not the PET criterion of uptake above the liver (Hope 2019, 2020): lesion"
                    f"{'s' if len(at_liver) > 1 else ''} {', '.join(at_liver)} at liver level")
        out["meets_criteria"] = (None if no_disc is None else True) if gt else False
        out["statement"] = f"{head}; {fdg_text} ({DECISION_AID})."
        return out
    reasons = []
    if below:
        reasons.append(f"uptake below the liver (Krenning 0-1 or not scored) in lesion{'s' if len(below) > 1 else ''} "
                       f"{', '.join(below)} (criterion: all target lesions at least equal to the liver, NETTER-1)")
    if no_disc is False:
        reasons.append(f"FDG-positive lesion{'s' if len(discordant) > 1 else ''} without SSTR expression "
                       f"({', '.join(discordant)}; NETPET P5, Chan 2017), disease PRRT would not reach")
    out["meets_criteria"] = False
    tail = f"; {fdg_text}" if no_disc is None else ""
    out["statement"] = f"Does not meet the imaging criteria for PRRT: {'; '.join(reasons)}{tail} ({DECISION_AID})."
    return out


def prrt_rows(rows: Iterable[Mapping[str, Any]], scores: Sequence[Mapping[str, Any]],
              discordant: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """:func:`prrt_summary` of every SSTR PET read of a study table, with the FDG+/SSTR- lesions of the NETPET score
    (:func:`netpet.clinical.netpet_score.score_patients` output ``scores`` and ``discordant``) of the same patient,
    reader, time point and SSTR session."""
    reads: Dict[Tuple[str, str, str], List[Mapping[str, Any]]] = {}
    for row in rows:
        if is_retracted(row) or tracer_kind(row.get("tracer")) != "sstr":
            continue
        key = (clean_label(row.get("patient_id")), clean_label(row.get("session_id")), clean_label(row.get("reader")))
        reads.setdefault(key, []).append(row)
    paired = {(s["patient_id"], s["sstr_session"], s["reader"]): s["fdg_session"] for s in scores
              if s.get("sstr_session") and s.get("fdg_session")}
    lists: Dict[Tuple[str, str, str], List[str]] = {}
    for d in discordant:
        lists.setdefault((d["patient_id"], d["sstr_session"], d["reader"]), []).append(d["track_id"])
    out = []
    for key, items in sorted(reads.items()):
        fdg = paired.get(key)
        out.append(prrt_summary(items, lists.get(key, []) if fdg else None, fdg or ""))
    return out
