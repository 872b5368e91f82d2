"""The NETPET score of dual somatostatin-receptor (SSTR) and FDG PET, per patient, from the study table.

Source: Chan DLH, Pavlakis N, Schembri GP, et al., "Dual somatostatin receptor/FDG PET/CT imaging in metastatic
neuroendocrine tumours: proposal for a novel grading scheme with prognostic significance", Theranostics
2017;7(5):1149-1158 (the grades); validated by Chan DL, Hayes AR, Karfis I, et al., Br J Cancer 2023;128:549-555
("a multicentre validation of the NETPET score": P1 DOTATATE positive / FDG negative, P2-4 both positive, P5
DOTATATE negative / FDG positive). The per-grade patterns below were checked against the abstract of the 2023
validation and the tabulation of the score in Cancer Imaging 2022;22:(doi 10.1186/s40644-022-00465-3) table 1 (SSTR
"positive" = uptake above background, modified Krenning 2-4; P2 FDG avidity lower than SSTR, P3 equal, P4 higher;
P5 SSTR negative, FDG positive). That the most advanced lesion decides the patient's grade (a single FDG-positive,
SSTR-negative lesion makes the patient P5) is from memory of Chan 2017 and marked so.

Grades (per lesion, then per patient)
-------------------------------------
* ``P0``: no SSTR-positive and no FDG-positive lesion (both scans negative);
* ``P1``: SSTR positive, FDG negative;
* ``P2``: SSTR and FDG positive, FDG avidity lower than SSTR avidity;
* ``P3``: SSTR and FDG positive, FDG avidity equal to SSTR avidity;
* ``P4``: SSTR and FDG positive, FDG avidity higher than SSTR avidity;
* ``P5``: at least one FDG-positive lesion that is SSTR negative (or low).

The patient's grade is the highest grade of its lesions (P5 > P4 > P3 > P2 > P1) [from memory of Chan 2017]; the
lesions of that grade are the *deciding* lesions.

Operational rule (what NETPET reads from the table)
---------------------------------------------------
SSTR status of a lesion (its DOTATATE/DOTATOC/DOTANOC finding): **positive** when its Krenning score is 2-4
(uptake at least equal to the liver: "above background, modified Krenning 2-4" as tabulated above); **negative or
low** when it is 0-1, or when the DOTATATE session holds no finding of the lesion at all (no uptake recorded:
Krenning 0). A row without a Krenning score uses its ``call`` instead (positive -> 3, equivocal -> 2, negative ->
1: the liver call and the Krenning score agree by construction, :func:`netpet.quant.classify.liver_call`).

FDG status (its FDG finding): **positive** when the FDG row's ``call`` is ``positive`` (SUVmax clearly above the
liver, the study's rule); ``equivocal`` (equal to the liver) and ``negative`` are FDG negative, and so is a lesion
without an FDG finding. [NETPET's convention: the tabulations give no FDG threshold; FDG uptake equal to the liver
counted as avid would make most liver metastases FDG positive by noise.]

FDG vs SSTR avidity (P2/P3/P4): the visual comparison of the two scans is operationalised on each tracer's
tumour-to-liver ratio T/L (the row's ``tl_ratio``, else ``suv_max / liver_suv_mean``), as a reader judges each scan
against its own liver: the *avidity index* ``A = T/L(FDG) / T/L(SSTR)``. ``A < 1 / EQUAL_RATIO`` is P2, ``A >
EQUAL_RATIO`` P4, in between (bounds included) P3. :data:`EQUAL_RATIO` = 1.3 is the band within which two T/L
ratios of equal true avidity fall 95 % of the time when each ratio has a within-subject coefficient of variation
of about 10 % (test-retest of lesion SUVmax, e.g. Lodge MA, J Nucl Med 2016;57:1 [from memory]): exp(1.96 x
sqrt(2) x 0.10) = 1.32, rounded. This is NETPET's operationalisation of a visual criterion, not a rule of the
paper; the band is a parameter. A dual-positive lesion without a T/L on either scan cannot be placed in P2-P4: the
patient's grade is then withheld (None, with the reason) unless a P5 lesion decides it anyway.

A P2-P4 grade whose deciding lesion is flagged ``partial-volume`` or ``not-separable`` on either scan
(:data:`UNCERTAIN_FLAGS`) carries the flag ``uncertain-avidity`` and says why: a small lesion's SUVmax recovers only
part of its uptake, by an amount that depends on its background, so the two tracers' T/L ratios are not biased alike
and the avidity index drifts (toward 1 for a lesion hot on DOTATATE and faint on FDG).

Lesions of the two sessions correspond through a correspondence table (``netpet match``; a finding's
``track_id``, else its ``reference_lesion_id``), or, without one, by a shared ``lesion_id``. Findings that the
reader marks as not tumour (``lesion_type`` physiological uptake or benign, ``anatomic_correlate`` benign, an
``sstr_rads`` of 1A/1B/2A/2B on either scan, or a ``confidence`` of 1-2, definitely or probably benign, on every scan
that shows the lesion) take their whole lesion out of the grade (counted and named in the reason): the grade is one
of the disease the reader sees.

Per patient, reader, time point and DOTATATE session (PET/CT and PET/MR each paired with the FDG session of the
same patient, reader and time point: the FDG session of the same modality when there is one, else the only FDG
session). A patient without an FDG (or without a DOTATATE) session read by that reader at that time point gets no
grade, with that reason. A session is known to the table by its rows: a scan read as entirely negative needs at
least one row (e.g. the FDG measurement of a DOTATATE lesion, called negative) to count as read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from netpet.schema import BASELINE, clean_label, is_retracted

#: The NETPET grades, in order
GRADES: Tuple[str, ...] = ("P0", "P1", "P2", "P3", "P4", "P5")
#: Least Krenning score of an SSTR-positive lesion (uptake at least equal to the liver; "modified Krenning 2-4")
SSTR_POSITIVE_KRENNING = 2
#: FDG T/L over SSTR T/L within [1/EQUAL_RATIO, EQUAL_RATIO] is "equal avidity" (P3); see the module docstring
EQUAL_RATIO = 1.3
#: tracer keys of somatostatin-receptor PET
SSTR_TRACERS = frozenset({"dotatate", "dotatoc", "dotanoc", "sstr", "ga68-dotatate", "cu64-dotatate"})
FDG_TRACERS = frozenset({"fdg", "18f-fdg", "f18-fdg"})
#: a finding with one of these lesion types is not tumour for the grade
NON_TUMOUR_TYPES = frozenset({"physiological uptake", "physiological", "benign"})
#: SSTR-RADS categories that say benign or likely benign (Werner et al. 2018)
BENIGN_SSTR_RADS = frozenset({"1A", "1B", "2A", "2B"})
_CALL_KRENNING = {"positive": 3, "equivocal": 2, "negative": 1}
#: the highest reader's confidence (netpet.schema.CONFIDENCE_SCALE) that says benign: 2, probably benign
BENIGN_CONFIDENCE = 2


def number(value: Any) -> Optional[float]:
    """A table cell as a finite float, or None (empty, text, NaN, infinity)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def tracer_kind(value: Any) -> str:
    """``sstr``, ``fdg`` or '' (another tracer) of a row's ``tracer``."""
    text = clean_label(value).lower()
    if text in SSTR_TRACERS or "dota" in text:
        return "sstr"
    if text in FDG_TRACERS or text.endswith("fdg"):
        return "fdg"
    return ""


def row_krenning(row: Mapping[str, Any]) -> Optional[int]:
    """The Krenning score of a DOTATATE row: its ``krenning`` (0-4), else from its ``call``; None when neither."""
    value = number(row.get("krenning"))
    if value is not None and value == int(value) and 0 <= value <= 4:
        return int(value)
    return _CALL_KRENNING.get(clean_label(row.get("call")).lower())


def row_tl(row: Mapping[str, Any]) -> Optional[float]:
    """A row's tumour-to-liver ratio: ``tl_ratio``, else ``suv_max / liver_suv_mean``; None when neither."""
    value = number(row.get("tl_ratio"))
    if value is not None and value >= 0:
        return value
    suv, liver = number(row.get("suv_max")), number(row.get("liver_suv_mean"))
    if suv is not None and liver is not None and liver > 0:
        return suv / liver
    return None


def fdg_positive(row: Optional[Mapping[str, Any]]) -> bool:
    """FDG positive: the FDG row's ``call`` is positive (module docstring); False without a row."""
    return row is not None and clean_label(row.get("call")).lower() == "positive"


def non_tumour(row: Optional[Mapping[str, Any]]) -> str:
    """Why the reader marks a finding as not tumour ('' when not): lesion type, anatomic correlate or SSTR-RADS."""
    if row is None:
        return ""
    lesion_type = clean_label(row.get("lesion_type")).lower()
    if lesion_type in NON_TUMOUR_TYPES:
        return f"lesion type {lesion_type}"
    if clean_label(row.get("anatomic_correlate")).lower() == "benign":
        return "benign anatomic correlate"
    rads = clean_label(row.get("sstr_rads")).upper().replace("SSTR-RADS", "").strip()
    if rads in BENIGN_SSTR_RADS:
        return f"SSTR-RADS {rads}"
    return ""


def held_benign(*rows: Optional[Mapping[str, Any]]) -> str:
    """Why the reader holds a lesion benign on every scan that shows it ('' when not): each of its findings (the
    DOTATATE and the FDG one, where present) carries a confidence of 1-2 (definitely or probably benign). One scan's
    low confidence alone says nothing of the other (an FDG-only lesion is read benign on DOTATATE, which shows it
    not)."""
    values = [number(row.get("confidence")) for row in rows if row is not None]
    if values and all(v is not None and v <= BENIGN_CONFIDENCE for v in values):
        return "reader's confidence " + "/".join(f"{v:g}" for v in values) + " (benign)"
    return ""


@dataclass(frozen=True)
class LesionPair:
    """One lesion seen through both tracers.

    track_id : the lesion's id across the sessions (correspondence track, or the shared lesion id)
    sstr_lesion_id, fdg_lesion_id : the findings' ids in the DOTATATE and FDG sessions ('' when none)
    krenning : the DOTATATE Krenning score (0-4); None when the DOTATATE session has no finding (read as 0)
    fdg_positive : the FDG finding is positive (module docstring)
    sstr_tl, fdg_tl : tumour-to-liver ratios (SUVmax / liver SUVmean) of the two findings, None when unknown
    """

    track_id: str
    krenning: Optional[int]
    fdg_positive: bool
    sstr_tl: Optional[float] = None
    fdg_tl: Optional[float] = None
    sstr_lesion_id: str = ""
    fdg_lesion_id: str = ""

    @property
    def sstr_positive(self) -> bool:
        return self.krenning is not None and self.krenning >= SSTR_POSITIVE_KRENNING


@dataclass(frozen=True)
class LesionGrade:
    """The grade of one lesion: ``grade`` P1-P5, '' (neither tracer positive) or None (P2-P4 undecidable),
    the avidity index (FDG T/L over SSTR T/L, None when not computed) and a reason."""

    track_id: str
    grade: Optional[str]
    index: Optional[float]
    reason: str


@dataclass(frozen=True)
class NetpetGrade:
    """A patient's NETPET grade (None when it cannot be given), its deciding lesions (track ids), a reason
    sentence, the per-lesion grades and the FDG+/SSTR- (P5) lesions."""

    grade: Optional[str]
    deciding: Tuple[str, ...]
    reason: str
    lesions: Tuple[LesionGrade, ...] = field(default=())
    discordant: Tuple[str, ...] = field(default=())


def _fmt(value: Optional[float]) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def lesion_grade(pair: LesionPair, equal_ratio: float = EQUAL_RATIO) -> LesionGrade:
    """The NETPET grade of one lesion (module docstring).

    Parameters
    ----------
    pair : LesionPair
        The lesion on both tracers.
    equal_ratio : float
        Upper bound (> 1, dimensionless) of the avidity index A = T/L(FDG) / T/L(SSTR) read as equal (P3);
        A < 1/equal_ratio is P2, A > equal_ratio P4.

    Raises
    ------
    ValueError
        ``equal_ratio`` not a finite number >= 1.
    """
    if not (isinstance(equal_ratio, (int, float)) and math.isfinite(equal_ratio) and equal_ratio >= 1.0):
        raise ValueError(f"equal_ratio is {equal_ratio!r}; give a finite number >= 1 (1.3 by default).")
    k = "no finding (Krenning 0)" if pair.krenning is None else f"Krenning {pair.krenning}"
    if pair.fdg_positive and not pair.sstr_positive:
        return LesionGrade(pair.track_id, "P5", None,
                           f"lesion {pair.track_id} is FDG positive (FDG T/L {_fmt(pair.fdg_tl)}) with SSTR uptake "
                           f"below the liver ({k} on DOTATATE)")
    if pair.sstr_positive and not pair.fdg_positive:
        return LesionGrade(pair.track_id, "P1", None, f"lesion {pair.track_id} is SSTR positive ({k}) and FDG negative")
    if not pair.sstr_positive:
        return LesionGrade(pair.track_id, "", None, f"lesion {pair.track_id} is positive on neither tracer ({k}, FDG "
                                                    "negative)")
    if pair.sstr_tl is None or pair.fdg_tl is None or pair.sstr_tl <= 0:
        return LesionGrade(pair.track_id, None, None,
                           f"lesion {pair.track_id} is positive on both tracers but lacks a tumour-to-liver ratio "
                           f"(DOTATATE T/L {_fmt(pair.sstr_tl)}, FDG T/L {_fmt(pair.fdg_tl)}), so P2-P4 cannot be told")
    index = pair.fdg_tl / pair.sstr_tl
    if index > equal_ratio:
        grade, words = "P4", f"higher than SSTR avidity (avidity index {index:.2f} > {equal_ratio:g}"
    elif index < 1.0 / equal_ratio:
        grade, words = "P2", f"lower than SSTR avidity (avidity index {index:.2f} < 1/{equal_ratio:g}"
    else:
        grade, words = "P3", f"equal to SSTR avidity (avidity index {index:.2f} within 1/{equal_ratio:g} to {equal_ratio:g}"
    return LesionGrade(pair.track_id, grade, index,
                       f"lesion {pair.track_id} is positive on both tracers, FDG avidity {words}: FDG T/L "
                       f"{pair.fdg_tl:.2f} over DOTATATE T/L {pair.sstr_tl:.2f}; {k})")


def _as_pair(item: Any) -> LesionPair:
    if isinstance(item, LesionPair):
        return item
    krenning = number(item.get("krenning"))
    return LesionPair(track_id=clean_label(item.get("track_id") or item.get("lesion_id")),
                      krenning=None if krenning is None else int(krenning),
                      fdg_positive=bool(item.get("fdg_positive")),
                      sstr_tl=number(item.get("sstr_tl")), fdg_tl=number(item.get("fdg_tl")),
                      sstr_lesion_id=clean_label(item.get("sstr_lesion_id")),
                      fdg_lesion_id=clean_label(item.get("fdg_lesion_id")))


def netpet_grade(lesions: Iterable[Any], equal_ratio: float = EQUAL_RATIO) -> NetpetGrade:
    """The NETPET grade of one patient's dual scan from its lesions (module docstring).

    Parameters
    ----------
    lesions : iterable of LesionPair or mappings
        Every tumour lesion of the patient seen on either scan; a mapping gives ``track_id``, ``krenning``
        (DOTATATE Krenning 0-4, None/absent when the DOTATATE scan has no finding), ``fdg_positive`` (bool),
        ``sstr_tl`` and ``fdg_tl`` (tumour-to-liver ratios, may be None).
    equal_ratio : float
        See :func:`lesion_grade`.

    Returns
    -------
    NetpetGrade
        ``grade`` P0-P5 (None when a dual-positive lesion without T/L leaves P2-P4 open and no P5 lesion decides),
        the deciding lesions (the lesions of the patient's grade; none for P0), a reason sentence, the per-lesion
        grades and the FDG+/SSTR- lesions.

    Raises
    ------
    ValueError
        ``equal_ratio`` not a finite number >= 1.
    """
    graded = [lesion_grade(_as_pair(item), equal_ratio) for item in lesions]
    discordant = tuple(g.track_id for g in graded if g.grade == "P5")
    if discordant:
        first = next(g for g in graded if g.grade == "P5")
        more = f" ({len(discordant)} such lesions: {', '.join(discordant)})" if len(discordant) > 1 else ""
        return NetpetGrade("P5", discordant, f"P5: {first.reason}{more}.", tuple(graded), discordant)
    open_ = [g for g in graded if g.grade is None]
    if open_:
        return NetpetGrade(None, tuple(g.track_id for g in open_), f"No grade: {open_[0].reason}.", tuple(graded), ())
    known = [g for g in graded if g.grade]
    if not known:
        what = f"{len(graded)} lesion{'' if len(graded) == 1 else 's'}, none" if graded else "no lesion"
        return NetpetGrade("P0", (), f"P0: {what} SSTR positive (Krenning >= {SSTR_POSITIVE_KRENNING}) or FDG "
                                     "positive.", tuple(graded), ())
    top = max(g.grade for g in known)  # "P1" < "P2" < ... as text
    deciding = [g for g in known if g.grade == top]
    more = f" ({len(deciding)} lesions of this grade: {', '.join(g.track_id for g in deciding)})" if len(deciding) > 1 else ""
    return NetpetGrade(top, tuple(g.track_id for g in deciding), f"{top}: {deciding[0].reason}{more}.", tuple(graded), ())


# -- from the study table ---------------------------------------------------------------------------------------------

SCORE_COLUMNS: Tuple[str, ...] = (
    "patient_id", "reader", "time_point", "modality", "sstr_session", "fdg_session", "fdg_modality", "grade",
    "deciding_lesions", "reason", "n_lesions", "n_sstr_positive", "n_fdg_positive", "n_discordant", "n_excluded",
    "linked_by", "flags",
)
#: segmentation flags of a finding (netpet.quant.pipeline) that make its T/L ratio, hence the avidity index of a P2-P4
#: grade, uncertain: ``partial-volume`` (a lesion below 2 x FWHM: its SUVmax recovers only part of its uptake, by an
#: amount that depends on the background, so FDG and SSTR T/L are not biased alike; Soret, Bacharach, Buvat, J Nucl
#: Med 2007;48:932-945) and ``not-separable`` (no segmented lesion: the uptake at the click only)
UNCERTAIN_FLAGS = ("partial-volume", "not-separable")
DISCORDANT_COLUMNS: Tuple[str, ...] = (
    "patient_id", "reader", "time_point", "modality", "sstr_session", "fdg_session", "track_id", "sstr_lesion_id",
    "fdg_lesion_id", "krenning", "fdg_suv_max", "fdg_tl_ratio", "sstr_suv_max", "sstr_tl_ratio", "region", "reason",
)


def time_point_of(row: Mapping[str, Any]) -> str:
    """A row's time point label; empty reads as ``baseline``."""
    return clean_label(row.get("time_point")) or BASELINE


def track_map(correspondence_rows: Optional[Iterable[Mapping[str, Any]]]) -> Optional[Dict[Tuple[str, str, str, str], str]]:
    """{(patient, session, reader, lesion_id): track} of a correspondence table (``track_id``, else
    ``reference_lesion_id``); None without a table. ``missed`` rows (no finding) are left out."""
    if correspondence_rows is None:
        return None
    tracks: Dict[Tuple[str, str, str, str], str] = {}
    for row in correspondence_rows:
        lesion = clean_label(row.get("lesion_id"))
        if not lesion:
            continue
        track = clean_label(row.get("track_id")) or clean_label(row.get("reference_lesion_id"))
        if not track:
            continue
        key = (clean_label(row.get("patient_id")), clean_label(row.get("session_id")), clean_label(row.get("reader")),
               lesion)
        tracks[key] = track
    return tracks


def _session_rows(rows: Sequence[Mapping[str, Any]]):
    """{(patient, reader, time point): {kind: {session: (modality, [rows])}}}."""
    groups: Dict[Tuple[str, str, str], Dict[str, Dict[str, Tuple[str, List[Mapping[str, Any]]]]]] = {}
    for row in rows:
        kind = tracer_kind(row.get("tracer"))
        if not kind:
            continue
        key = (clean_label(row.get("patient_id")), clean_label(row.get("reader")), time_point_of(row))
        sessions = groups.setdefault(key, {"sstr": {}, "fdg": {}})[kind]
        session = clean_label(row.get("session_id"))
        sessions.setdefault(session, (clean_label(row.get("modality")), []))[1].append(row)
    return groups


def _tracked(rows, patient, session, reader, tracks, warnings) -> Dict[str, Mapping[str, Any]]:
    out: Dict[str, Mapping[str, Any]] = {}
    for row in rows:
        lesion = clean_label(row.get("lesion_id"))
        if tracks is None:
            track = lesion
        else:
            track = tracks.get((patient, session, reader, lesion))
            if track is None:
                track = f"{session}:{lesion}"
                warnings.append(f"patient {patient}, session {session}, reader {reader}: finding {lesion} is not in "
                                f"the correspondence table; it is taken as a lesion of its own ({track}) (run netpet "
                                "match again to link it)")
        held = out.get(track)
        if held is not None:
            warnings.append(f"patient {patient}, session {session}, reader {reader}: findings {clean_label(held.get('lesion_id'))} "
                            f"and {lesion} share the lesion {track}; the one of higher SUVmax stands for it")
            if (number(row.get("suv_max")) or -1.0) <= (number(held.get("suv_max")) or -1.0):
                continue
        out[track] = row
    return out


def _pick_fdg(fdg_sessions: Mapping[str, Tuple[str, list]], modality: str) -> Tuple[Optional[str], str]:
    if not fdg_sessions:
        return None, "no FDG session"
    same = sorted(s for s, (m, _) in fdg_sessions.items() if m == modality)
    if len(same) == 1:
        return same[0], ""
    if len(fdg_sessions) == 1:
        return next(iter(fdg_sessions)), ""
    names = ", ".join(sorted(fdg_sessions))
    return None, f"several FDG sessions ({names}) and not exactly one of modality {modality or 'unknown'} to pair with"


def score_patients(rows: Iterable[Mapping[str, Any]], correspondence_rows: Optional[Iterable[Mapping[str, Any]]] = None,
                   equal_ratio: float = EQUAL_RATIO) -> Dict[str, Any]:
    """The NETPET grade of every patient, reader, time point and DOTATATE session of a study table.

    Parameters
    ----------
    rows : iterable of mappings
        Study-table rows (:mod:`netpet.schema`); retracted rows (:func:`netpet.schema.is_retracted`) are left out
        and counted in the warnings.
    correspondence_rows : iterable of mappings, optional
        The correspondence table of ``netpet match`` (patient_id, session_id, reader, lesion_id, track_id,
        reference_lesion_id); without it, findings of the two sessions correspond by a shared ``lesion_id``.
    equal_ratio : float
        See :func:`lesion_grade`.

    Returns
    -------
    dict
        ``scores`` (rows of :data:`SCORE_COLUMNS`), ``discordant`` (the FDG+/SSTR- lesions, rows of
        :data:`DISCORDANT_COLUMNS`), ``warnings`` (sentences).

    Raises
    ------
    ValueError
        ``equal_ratio`` not a finite number >= 1.
    """
    rows = list(rows)
    warnings: List[str] = []
    retracted = [r for r in rows if is_retracted(r)]
    if retracted:
        warnings.append(f"{len(retracted)} retracted finding{'' if len(retracted) == 1 else 's'} left out of the NETPET "
                        "score")
    active = [r for r in rows if not is_retracted(r)]
    others = sorted({clean_label(r.get("tracer")) or "(empty)" for r in active if not tracer_kind(r.get("tracer"))})
    if others:
        n = sum(1 for r in active if not tracer_kind(r.get("tracer")))
        warnings.append(f"{n} finding{'' if n == 1 else 's'} of tracer {', '.join(others)} (neither SSTR PET nor FDG) "
                        "left out of the NETPET score")
    tracks = track_map(correspondence_rows)
    linked_by = "correspondence" if tracks is not None else "lesion_id"
    scores: List[Dict[str, Any]] = []
    discordant: List[Dict[str, Any]] = []
    for (patient, reader, time_point), kinds in sorted(_session_rows(active).items()):
        base = {"patient_id": patient, "reader": reader, "time_point": time_point, "linked_by": linked_by}
        if not kinds["sstr"]:
            for session, (modality, _) in sorted(kinds["fdg"].items()):
                scores.append(_empty(base, "", "", session, modality,
                                     f"No grade: reader {reader} has no DOTATATE session of patient {patient} at time "
                                     f"point {time_point} (FDG session {session} only)."))
            continue
        for session, (modality, sstr_rows) in sorted(kinds["sstr"].items()):
            fdg_session, why = _pick_fdg(kinds["fdg"], modality)
            if fdg_session is None:
                scores.append(_empty(base, modality, session, "", "",
                                     f"No grade: {why} of patient {patient} read by reader {reader} at time point "
                                     f"{time_point} to pair with DOTATATE session {session}."))
                continue
            fdg_modality, fdg_rows = kinds["fdg"][fdg_session]
            sstr = _tracked(sstr_rows, patient, session, reader, tracks, warnings)
            fdg = _tracked(fdg_rows, patient, fdg_session, reader, tracks, warnings)
            pairs, excluded = [], []
            for track in sorted(set(sstr) | set(fdg)):
                s_row, f_row = sstr.get(track), fdg.get(track)
                why_not = non_tumour(s_row) or non_tumour(f_row) or held_benign(s_row, f_row)
                if why_not:
                    excluded.append(f"{track} ({why_not})")
                    continue
                pairs.append(LesionPair(track, row_krenning(s_row) if s_row is not None else None, fdg_positive(f_row),
                                        row_tl(s_row) if s_row is not None else None,
                                        row_tl(f_row) if f_row is not None else None,
                                        clean_label(s_row.get("lesion_id")) if s_row is not None else "",
                                        clean_label(f_row.get("lesion_id")) if f_row is not None else ""))
            result = netpet_grade(pairs, equal_ratio)
            reason = result.reason
            if excluded:
                reason += f" Not tumour by the reader, left out: {', '.join(excluded)}."
            flags = _uncertain(result, sstr, fdg)
            if flags:
                reason += (f" Uncertain between P2 and P4: the avidity index rests on {'; '.join(flags)} (partial volume "
                           "biases the two tracers' T/L ratios differently).")
            scores.append(dict(base, modality=modality, sstr_session=session, fdg_session=fdg_session,
                               fdg_modality=fdg_modality, grade=result.grade or "",
                               deciding_lesions=";".join(result.deciding), reason=reason, n_lesions=len(pairs),
                               n_sstr_positive=sum(p.sstr_positive for p in pairs),
                               n_fdg_positive=sum(p.fdg_positive for p in pairs),
                               n_discordant=len(result.discordant), n_excluded=len(excluded),
                               flags="uncertain-avidity" if flags else ""))
            by_track = {p.track_id: p for p in pairs}
            for g in result.lesions:
                if g.grade != "P5":
                    continue
                p = by_track[g.track_id]
                s_row, f_row = sstr.get(g.track_id), fdg.get(g.track_id)
                discordant.append(dict(
                    {k: base[k] for k in ("patient_id", "reader", "time_point")}, modality=modality,
                    sstr_session=session, fdg_session=fdg_session, track_id=g.track_id,
                    sstr_lesion_id=p.sstr_lesion_id, fdg_lesion_id=p.fdg_lesion_id,
                    krenning=p.krenning if p.krenning is not None else "",
                    fdg_suv_max=_opt(number(f_row.get("suv_max")) if f_row is not None else None),
                    fdg_tl_ratio=_opt(p.fdg_tl),
                    sstr_suv_max=_opt(number(s_row.get("suv_max")) if s_row is not None else None),
                    sstr_tl_ratio=_opt(p.sstr_tl),
                    region=clean_label((f_row or s_row or {}).get("region")), reason=g.reason))
    return {"scores": scores, "discordant": discordant, "warnings": warnings}


def _uncertain(result: NetpetGrade, sstr: Mapping[str, Mapping[str, Any]],
               fdg: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """The deciding findings of a P2-P4 grade whose segmentation flags (:data:`UNCERTAIN_FLAGS`) make the avidity
    index uncertain, as 'lesion T: DOTATATE partial-volume' phrases; none for other grades."""
    if result.grade not in ("P2", "P3", "P4"):
        return []
    found = []
    for track in result.deciding:
        for tracer, rows in (("DOTATATE", sstr), ("FDG", fdg)):
            row = rows.get(track)
            flags = {f.strip() for f in clean_label((row or {}).get("flags")).split(";")}
            hit = [f for f in UNCERTAIN_FLAGS if f in flags]
            if hit:
                found.append(f"lesion {track}: {tracer} {', '.join(hit)}")
    return found


def _opt(value: Optional[float]) -> Any:
    return "" if value is None else value


def _empty(base: Dict[str, Any], modality: str, sstr_session: str, fdg_session: str, fdg_modality: str,
           reason: str) -> Dict[str, Any]:
    return dict(base, modality=modality, sstr_session=sstr_session, fdg_session=fdg_session, fdg_modality=fdg_modality,
                grade="", deciding_lesions="", reason=reason, n_lesions=0, n_sstr_positive=0, n_fdg_positive=0,
                n_discordant=0, n_excluded=0, flags="")
