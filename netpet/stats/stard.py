"""The STARD 2015 flow diagram of a StudyStats analysis, per group, for patients and for lesions.

STARD 2015 (Bossuyt PM et al., BMJ 2015;351:h5527; explanation and elaboration: Cohen JF et al.,
BMJ Open 2016;6:e012799, item 19) asks for a diagram of the flow of participants: the eligible
participants, those excluded with the reasons, those who received the index test, its results
(positive, negative, inconclusive) and, under each, the reference standard's result (target
condition present or absent, or no reference standard).

Here the index test is one group (modality, tracer, reader, and time point when the study has
several) and the participants are the patients, or the lesions:

patients
    eligible: every patient of the reference standard; excluded: patients without a scan read in
    the group (no row of the study table for it); index test: the patients read; positive: any
    finding called positive; inconclusive: the patients whose call rests on equivocal findings
    only (counted as the ``--equivocal`` rule says, so they are also in positive or negative);
    reference positive: a malignant lesion (or a positive patient row) at the group's time point.
lesions
    eligible: the reference standard's lesions plus the findings that match none (``netpet match``:
    a lesion of their own with truth 0); excluded: the lesions of patients not read in the group
    (and, with time points, lesions of another time point) and the retracted findings (kept in the
    study table, in no analysis); positive: a finding called positive; negative: a finding called
    negative or no finding at all (a missed lesion is a negative call).

Every count comes from the analysis units (:attr:`netpet.stats.analysis.Analysis.units`), so the
diagram and the accuracy tables cannot disagree: TP + FP + FN + TN of a box equals the units read.

The diagram is inline SVG (no external file, no script): boxes whose text is wrapped to the box
width from a conservative estimate of the glyph width (0.62 em for DejaVu Sans and the system
sans-serif faces; the browser test measures the real boxes).
"""

from __future__ import annotations

import html
import logging
from typing import Any, Dict, List, Mapping, Optional

import pandas as pd

log = logging.getLogger(__name__)

#: the standards StudyStats gives the lesions it makes (netpet.stats.data.MADE_STANDARDS), by value so that this
#: module imports nothing heavy
_UNMATCHED = "no reference lesion (netpet match)"

#: conservative glyph width in em (DejaVu Sans averages about 0.55 em for lower-case text, digits 0.64)
GLYPH_EM = 0.62
FONT_PX = 12
LINE_PX = 15
PAD_PX = 6
WIDTH_PX = 640


def _group_keys(units: pd.DataFrame) -> List[str]:
    keys = ["modality", "tracer", "reader"]
    if "time_point" in units.columns and units["time_point"].nunique() > 1:
        keys.append("time_point")
    return keys


def group_label(group: Mapping[str, Any]) -> str:
    """"PET/CT dotatate R1" (and " at FU1" with a time point)."""
    text = f"{group['modality']} {group['tracer']} {group['reader']}"
    return text + (f" at {group['time_point']}" if group.get("time_point") else "")


def _retracted(result: Mapping[str, Any], group: Mapping[str, Any]) -> Optional[int]:
    """The retracted findings of a group, when the analysis says (an int for all groups is not split)."""
    inputs = result.get("inputs") or {}
    value = inputs.get("retracted_by_group")
    if isinstance(value, Mapping):
        return int(value.get(group_label(group), 0))
    return None


def _count(frame: pd.DataFrame, column: str, value: int) -> int:
    return int((frame[column].astype(int) == value).sum())


def stard_counts(result: Mapping[str, Any], units: Mapping[str, pd.DataFrame]) -> Dict[str, Any]:
    """The counts of the flow diagram per level and group.

    Parameters
    ----------
    result : mapping
        The analysis result (``inputs.patients``, ``inputs.not_read``, ``inputs.reference_lesions``; optionally
        ``inputs.retracted_findings`` and ``inputs.retracted_by_group``).
    units : mapping of str to pandas.DataFrame
        The ``patient`` and ``lesion`` units (columns patient_id, the group keys, truth, call, equivocal; lesions
        also standard and found).

    Returns
    -------
    dict
        ``patient`` and ``lesion``: a list of one dict per group with ``group``, ``label``, ``eligible``,
        ``excluded`` (a list of (reason, count, ids)), ``read``, ``positive``, ``negative``, ``inconclusive``,
        ``tp``, ``fp``, ``fn``, ``tn``, ``no_reference`` (always 0: a unit without a reference standard is refused
        by :func:`netpet.stats.data.load_study`); ``retracted_findings`` (the table's, all groups; None when the
        analysis does not say).
    """
    inputs = result.get("inputs") or {}
    patients_total = int(inputs.get("patients") or 0)
    lesions_total = int(inputs.get("reference_lesions") or 0)
    not_read = inputs.get("not_read") or {}
    retracted_total = inputs.get("retracted_findings")
    out: Dict[str, Any] = {"patient": [], "lesion": [],
                           "retracted_findings": None if retracted_total is None else int(retracted_total)}
    patient_units, lesion_units = units.get("patient"), units.get("lesion")
    if patient_units is None or not len(patient_units):
        return out
    keys = _group_keys(patient_units)
    for key, frame in patient_units.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        group = dict(zip(keys, key))
        label = group_label(group)
        missing = sorted(not_read.get(_analysis_label(group), []))
        read = int(len(frame))
        entry = {"group": group, "label": label, "eligible": patients_total,
                 "excluded": [("no scan read in this group", len(missing), missing)] if missing else [],
                 "read": read, **_cells(frame)}
        # patients never read at all in this group but absent from not_read (a timed study): the arithmetic closes
        unexplained = patients_total - read - len(missing)
        if unexplained > 0:
            entry["excluded"].append(("not read at this time point", unexplained, []))
        out["patient"].append(entry)
    if lesion_units is None or not len(lesion_units):
        return out
    for key, frame in lesion_units.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        group = dict(zip(keys, key))
        standards = frame["standard"].astype(str) if "standard" in frame else pd.Series("", index=frame.index)
        made = int((standards == _UNMATCHED).sum())
        own = frame[standards != _UNMATCHED].drop_duplicates(["patient_id", "lesion_id"])
        excluded = []
        outside = max(lesions_total - int(len(own)), 0)
        if outside:
            excluded.append(("lesions of patients not read in this group" + (" or of another time point"
                                                                            if "time_point" in group else ""),
                             outside, []))
        retracted = _retracted(result, group)
        found = frame["found"].astype(bool) if "found" in frame else pd.Series(True, index=frame.index)
        entry = {"group": group, "label": group_label(group), "eligible": lesions_total + made,
                 "made": made, "excluded": excluded, "retracted": retracted, "read": int(len(frame)),
                 "not_found": int((~found).sum()),
                 **_cells(frame)}
        out["lesion"].append(entry)
    return out


def _analysis_label(group: Mapping[str, Any]) -> str:
    """The label :mod:`netpet.stats.analysis` gives a group in ``inputs.not_read``."""
    parts = [str(group[k]) for k in ("modality", "tracer", "reader")]
    if group.get("time_point"):
        parts.append(f"at {group['time_point']}")
    return " ".join(parts)


def _cells(frame: pd.DataFrame) -> Dict[str, int]:
    truth = frame["truth"].astype(int).to_numpy() == 1
    call = frame["call"].astype(int).to_numpy() == 1
    equivocal = frame["equivocal"].astype(bool).to_numpy() if "equivocal" in frame else call & False
    return {"positive": int(call.sum()), "negative": int((~call).sum()),
            "inconclusive": int(equivocal.sum()),
            "tp": int((truth & call).sum()), "fp": int((~truth & call).sum()),
            "fn": int((truth & ~call).sum()), "tn": int((~truth & ~call).sum()), "no_reference": 0}


# -- drawing -----------------------------------------------------------------------------------------

def wrap(text: str, width_px: float, font_px: float = FONT_PX) -> List[str]:
    """Lines of ``text`` that fit ``width_px`` at ``font_px`` (by :data:`GLYPH_EM`; a word too long is cut)."""
    limit = max(int(width_px / (GLYPH_EM * font_px)), 4)
    lines: List[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            while len(word) > limit:
                if line:
                    lines.append(line)
                    line = ""
                lines.append(word[:limit])
                word = word[limit:]
            candidate = f"{line} {word}".strip()
            if len(candidate) <= limit:
                line = candidate
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


class _Box:
    def __init__(self, x: float, y: float, width: float, text: str, bold_first: bool = True,
                 fill: str = "#ffffff") -> None:
        self.x, self.y, self.width, self.fill, self.bold_first = x, y, width, fill, bold_first
        self.lines = wrap(text, width - 2 * PAD_PX)
        self.height = len(self.lines) * LINE_PX + 2 * PAD_PX

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def centre(self) -> float:
        return self.x + self.width / 2

    def svg(self) -> str:
        parts = [f"<rect x='{self.x:.0f}' y='{self.y:.0f}' width='{self.width:.0f}' height='{self.height:.0f}' "
                 f"rx='4' fill='{self.fill}' stroke='#444' stroke-width='1'/>"]
        for number, line in enumerate(self.lines):
            weight = " font-weight='bold'" if number == 0 and self.bold_first else ""
            baseline = self.y + PAD_PX + (number + 1) * LINE_PX - 4
            parts.append(f"<text class='stard-text' x='{self.x + PAD_PX:.0f}' y='{baseline:.0f}'{weight}>"
                         f"{html.escape(line)}</text>")
        return "".join(parts)


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return (f"<line x1='{x1:.0f}' y1='{y1:.0f}' x2='{x2:.0f}' y2='{y2:.0f}' stroke='#444' stroke-width='1.2' "
            "marker-end='url(#stard-arrow)'/>")


def _n(count: int, unit: str) -> str:
    return f"n = {count} {unit}{'' if count == 1 else 's'}"


def flow_svg(entry: Mapping[str, Any], level: str, rule: str = "negative") -> str:
    """One STARD flow diagram (inline SVG) of a group at ``level`` ("patient" or "lesion")."""
    unit = "patient" if level == "patient" else "lesion"
    gap, margin = 26, 8
    left_width = 330
    boxes: List[_Box] = []
    arrows: List[str] = []
    eligible_text = (f"Eligible: in the reference standard\n{_n(entry['eligible'], unit)}" if level == "patient" else
                     f"Eligible: reference lesions and findings matching none\n{_n(entry['eligible'], unit)}"
                     + (f" ({entry['made']} findings matching no reference lesion)" if entry.get("made") else ""))
    eligible = _Box(margin, margin, left_width, eligible_text, fill="#f3f3f3")
    boxes.append(eligible)
    excluded_lines = [f"Excluded: {sum(c for _, c, _ in entry['excluded'])}"]
    for reason, count, ids in entry["excluded"]:
        names = f" ({', '.join(ids[:6])}{' ...' if len(ids) > 6 else ''})" if ids else ""
        excluded_lines.append(f"{reason}: {count}{names}")
    if len(excluded_lines) == 1:
        excluded_lines.append("none")
    if entry.get("retracted"):
        excluded_lines.append(f"Retracted findings set aside: {entry['retracted']} (their lesions stay, as not found)")
    excluded = _Box(left_width + 2 * margin + 30, eligible.bottom + gap / 2 - 8,
                    WIDTH_PX - left_width - 3 * margin - 30, "\n".join(excluded_lines))
    read = _Box(margin, max(eligible.bottom, excluded.bottom) + gap, left_width,
                f"Index test: {entry['label']}\n{_n(entry['read'], unit)} read"
                + ("" if level == "patient" else f" ({entry.get('not_found', 0)} without a finding: a negative call)"),
                fill="#eef4fb")
    boxes += [excluded, read]
    arrows.append(_arrow(eligible.centre - 60, eligible.bottom, eligible.centre - 60, read.y))
    split_y = (eligible.bottom + read.y) / 2
    arrows.append(_arrow(eligible.centre - 60, split_y, excluded.x, split_y))
    half = (WIDTH_PX - 3 * margin) / 2
    inconclusive = entry.get("inconclusive", 0)
    note = (f"; {inconclusive} inconclusive (equivocal findings only), counted as {rule}" if inconclusive else "")
    positive = _Box(margin, read.bottom + gap, half, f"Index test positive\n{_n(entry['positive'], unit)}"
                    + (note if rule == "positive" else ""), fill="#fdf0e6")
    negative = _Box(2 * margin + half, read.bottom + gap, half, f"Index test negative\n{_n(entry['negative'], unit)}"
                    + (note if rule != "positive" else ""), fill="#eef7ee")
    boxes += [positive, negative]
    arrows.append(_arrow(read.centre - 60, read.bottom, positive.centre, positive.y))
    arrows.append(_arrow(read.centre + 60, read.bottom, negative.centre, negative.y))
    quarter = (half - margin) / 2
    row_y = max(positive.bottom, negative.bottom) + gap
    cells = [(positive, "tp", "fp"), (negative, "fn", "tn")]
    for parent, first, second in cells:
        for number, (cell, name) in enumerate(((first, "Reference positive"), (second, "Reference negative"))):
            x = parent.x + number * (quarter + margin)
            box = _Box(x, row_y, quarter, f"{name}\n{cell.upper()}: {_n(entry[cell], unit)}")
            boxes.append(box)
            arrows.append(_arrow(parent.x + parent.width * (0.3 + 0.4 * number), parent.bottom, box.centre, box.y))
    no_reference = _Box(margin, max(b.bottom for b in boxes) + gap / 2, WIDTH_PX - 2 * margin,
                        f"No reference standard: {entry.get('no_reference', 0)} (a {unit} without one is refused by "
                        "the analysis, never counted)", bold_first=False, fill="#ffffff")
    boxes.append(no_reference)
    height = int(max(b.bottom for b in boxes) + margin)
    title = f"STARD flow of {unit}s, {entry['label']}"
    return (f"<svg class='stard' xmlns='http://www.w3.org/2000/svg' width='{WIDTH_PX}' height='{height}' "
            f"viewBox='0 0 {WIDTH_PX} {height}' role='img' aria-label='{html.escape(title)}' "
            f"font-family='DejaVu Sans, Verdana, sans-serif' font-size='{FONT_PX}'>"
            "<defs><marker id='stard-arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
            "orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' fill='#444'/></marker></defs>"
            f"<title>{html.escape(title)}</title>" + "".join(arrows) + "".join(b.svg() for b in boxes) + "</svg>")


def stard_html(counts: Mapping[str, Any], rule: str = "negative") -> str:
    """The report section: the diagrams of every group, patients first, then lesions, and how to read them."""
    parts = ["<h2 id='stard'>Flow of patients and lesions (STARD 2015)</h2>",
             "<p class='note'>Flow diagrams after STARD 2015 (Bossuyt et al., BMJ 2015; Cohen et al., BMJ Open 2016, "
             "item 19), one per group (the index test: modality, tracer and reader). A unit is positive by the index "
             "test when a finding is called positive; a lesion without a finding is a negative call. Inconclusive "
             "units rest on equivocal findings only and are counted as the equivocal rule says "
             f"(<code>--equivocal {html.escape(rule)}</code>).</p>"]
    retracted = counts.get("retracted_findings")
    if retracted is not None:
        parts.append(f"<p class='note'>Retracted findings excluded from every analysis (all groups): "
                     f"{int(retracted)}.</p>")
    for level, name in (("patient", "Patients"), ("lesion", "Lesions")):
        entries = counts.get(level) or []
        if not entries:
            continue
        parts.append(f"<h3>{name}</h3><div class='stard-row'>")
        for entry in entries:
            parts.append(f"<figure class='stard-figure'>{flow_svg(entry, level, rule)}"
                         f"<figcaption>{name}, {html.escape(entry['label'])}: TP {entry['tp']}, FP {entry['fp']}, "
                         f"FN {entry['fn']}, TN {entry['tn']}</figcaption></figure>")
        parts.append("</div>")
    return "".join(parts)


def counts_rows(counts: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The counts as flat rows (one per level and group), for a CSV."""
    rows = []
    for level in ("patient", "lesion"):
        for entry in counts.get(level) or []:
            rows.append({"level": level, **entry["group"], "eligible": entry["eligible"],
                         "excluded": sum(c for _, c, _ in entry["excluded"]),
                         "excluded_reasons": "; ".join(f"{r}: {c}" for r, c, _ in entry["excluded"]),
                         **{k: entry[k] for k in ("read", "positive", "negative", "inconclusive", "tp", "fp", "fn",
                                                  "tn", "no_reference")}})
    return rows


__all__ = ["stard_counts", "flow_svg", "stard_html", "counts_rows", "wrap", "group_label"]
