"""StudyStats outputs: CSV tables, figures (PNG and SVG) and one self-contained HTML report.

:func:`write_outputs` writes into ``out``:

``stats.json``                      the analysis (the object ``netpet stats --json`` prints)
``accuracy.csv``                    one row per level and group; every measure with its interval
``comparisons.csv``                 paired tests (McNemar exact, chi-square, clustered)
``roc.csv``, ``roc-comparisons.csv``  AUCs with DeLong intervals, Youden cut-offs, paired DeLong
``agreement.csv``, ``kappa.csv``    Bland-Altman, Lin's CCC, Spearman; Cohen's kappa
``false-findings.csv``              false positives and negatives with the finding's call and quality
                                     (``segmentation_status``, ``flags``, ``warnings``) and a ``cause``
                                     column to fill in (causes already given there are kept on the next run)
``causes.csv``                      the tally of causes
``stard.csv``                       the counts of the STARD 2015 flow diagrams per level and group
                                     (:mod:`netpet.stats.stard`)
``staging-patients.csv``,           per group and patient: N, M, stage group from the findings and the reference;
``staging-accuracy.csv``            per group: correct N, M, N and M, stage group with intervals (when the
                                     reference standard gives ``primary`` and/or ``site``; :mod:`netpet.stats.staging`)
``units-patient.csv`` ...           the units analysed, for audit
``figures/*.png``, ``figures/*.svg`` ROC with bootstrap band, Bland-Altman, forest plots
``images/*.png``                    with ``dicom``: a coronal MIP per session with the lesions marked and a
                                     thumbnail of every false finding (:mod:`netpet.stats.report_images`)
``report.html``                     everything above in one file (figures and images embedded): key results
                                     (only what the data support), STARD flows, accuracy with small-sample
                                     marks, per-patient table, staging, Krenning, the sections other modules
                                     add (:mod:`netpet.stats.report_sections`), images, false findings; a
                                     print stylesheet for A4

Every file is written to a temporary name and renamed, so a crash leaves the previous one.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import logging
import os
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from netpet import __version__
from netpet.stats.analysis import Analysis, false_finding_key
from netpet.stats.data import GROUP_KEYS, NOT_SEPARABLE, TIME_POINT
from netpet.stats.intervals import StatsError
from netpet.stats.report_sections import (MIN_CLUSTERS, MIN_EVENTS, SMALL_SAMPLE_SOURCES, auc_flags, events_of,
                                          extra_sections_html, headline_html, interval_warning, krenning_html,
                                          krenning_rows, not_estimable, number, patient_rows, patient_table_html,
                                          unit_indications, warn_mark)

log = logging.getLogger(__name__)

MEASURES = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "lr_pos", "lr_neg")
TRACER_NAMES = {"dotatate": "68Ga-DOTATATE", "fdg": "18F-FDG"}


# -- files -------------------------------------------------------------------------------------------

def _atomic_write(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".netpet-", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _csv_bytes(rows: Sequence[Dict[str, Any]], columns: Optional[Sequence[str]] = None) -> bytes:
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not np.isfinite(value) else f"{value:.10g}"
    if isinstance(value, dict):
        return " ".join(f"{v}" for v in value.values())
    if isinstance(value, (list, tuple)):
        return ";".join(map(str, value))
    return value


def _flatten(entry: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in entry.items():
        if key == "group_by":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key in ("a", "b"):  # a group: modality tracer reader [time point]
            out[name] = " ".join(str(v) for v in value.values())
        elif isinstance(value, dict):
            out.update(_flatten(value, f"{name}_"))
        else:
            out[name] = value
    return out


def read_causes(path: str) -> Dict[Tuple[str, ...], str]:
    """Causes a reader wrote into a previous ``false-findings.csv`` (key -> cause)."""
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("kind", "patient_id", "modality", "tracer", "reader", "lesion_id", "cause")
                       if c not in (reader.fieldnames or [])]
            if missing:
                raise StatsError(f"{path} is not a NETPET false-findings list: it lacks {', '.join(missing)}; move it "
                                 "or give --causes another file.")
            return {false_finding_key(row): row["cause"].strip() for row in reader if (row.get("cause") or "").strip()}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StatsError(f"Cannot read the causes in {path}: {exc}.") from exc


# -- figures -----------------------------------------------------------------------------------------

def _group_name(group: Dict[str, Any]) -> str:
    name = f"{group['modality']} {TRACER_NAMES.get(group['tracer'], group['tracer'])} {group['reader']}"
    if group.get(TIME_POINT):
        name += f" at {group[TIME_POINT]}"
    extra = group.get("group_by") or {}
    return name + "".join(f" [{k} {v}]" for k, v in extra.items())


def text_overlaps(figure) -> List[Tuple[str, str]]:
    """The pairs of texts of ``figure`` whose drawn boxes overlap (titles, axis and tick labels, legend entries,
    annotations): each pair by their strings. Only texts that are drawn count (visible, non-empty, inside the figure).
    """
    from itertools import combinations

    from matplotlib.text import Text

    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    page = figure.bbox
    boxes = []
    for text in figure.findobj(Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        box = text.get_window_extent(renderer)
        if box.width <= 0 or box.height <= 0 or box.x1 < page.x0 or box.x0 > page.x1 or box.y1 < page.y0 \
                or box.y0 > page.y1:
            continue
        boxes.append((text.get_text(), box))
    pairs = []
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > 0.5 and height > 0.5:  # half a pixel: touching edges are no overlap
            pairs.append((a, b))
    return pairs


def _declutter(figure, name: str = "") -> None:
    """Rotate the tick labels of every axis whose labels overlap, then shrink the texts that still do, then move tick
    labels away from their axes (an x and a y tick label meeting at an axes' corner); log what still overlaps."""
    if not text_overlaps(figure):
        return
    for ax in figure.axes:
        for label in ax.get_xticklabels():
            label.set_rotation(45)
            label.set_horizontalalignment("right")
    for _ in range(4):
        pairs = text_overlaps(figure)
        if not pairs:
            return
        crowded = {t for pair in pairs for t in pair}
        for text in figure.findobj(lambda artist: hasattr(artist, "get_text") and hasattr(artist, "set_fontsize")):
            if text.get_text() in crowded:
                text.set_fontsize(max(text.get_fontsize() * 0.85, 5))
    for pad in (6.0, 10.0):
        if not text_overlaps(figure):
            return
        for ax in figure.axes:
            ax.tick_params(axis="both", pad=pad)
    left = text_overlaps(figure)
    if left:
        log.warning("figure %s: texts still overlap after decluttering: %s", name or figure.get_label(), left[:3])


def _save(figure, folder: str, name: str) -> Dict[str, str]:
    _declutter(figure, name)
    paths = {}
    for suffix in ("png", "svg"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix, dpi=110, bbox_inches="tight",
                       metadata={"Date": None} if suffix == "svg" else None)
        path = os.path.join(folder, f"{name}.{suffix}")
        _atomic_write(path, buffer.getvalue())
        paths[suffix] = path
    return paths


def figures(analysis: Analysis, folder: str, band_replicates: int = 300, seed: int = 1) -> List[Dict[str, str]]:
    """ROC (with a bootstrap band), Bland-Altman and forest plots; returns [{title, png, svg}]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from netpet.stats import roc

    os.makedirs(folder, exist_ok=True)
    made: List[Dict[str, str]] = []
    result = analysis.result
    # forest plots of sensitivity and specificity by group, one per level
    for level in ("patient", "lesion", "region"):
        rows = [e for e in result["accuracy"] if e["level"] == level and e.get("tp") is not None]
        if not rows:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(rows) + 1.6), sharey=True, layout="constrained")
        labels = [_group_name(e) for e in rows]
        y = np.arange(len(rows))[::-1]
        for ax, measure in zip(axes, ("sensitivity", "specificity")):
            for yi, entry in zip(y, rows):
                m = entry[measure]
                if m["estimate"] is None:
                    continue
                ax.plot([m["ci_low"], m["ci_high"]], [yi, yi], color="0.3", lw=1.5)
                ax.plot(m["estimate"], yi, "s", color="tab:blue", ms=6)
                clustered = (entry.get("clustered") or {}).get(measure)
                if clustered and clustered.get("ci_low") is not None:
                    ax.plot([clustered["ci_low"], clustered["ci_high"]], [yi - 0.18, yi - 0.18], color="tab:orange",
                            lw=1.2)
            ax.set_xlim(0, 1.02)
            ax.set_title(f"{measure.capitalize()} ({level} level)")
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(y)
        axes[0].set_yticklabels(labels, fontsize=8)
        note = f"{result['options']['ci']} {int(100 * result['options']['level'])} % CI"
        if level != "patient":
            note += "; orange: cluster bootstrap CI"
        fig.suptitle(note, fontsize=8)
        made.append({"title": f"Forest plot, {level} level", **_save(fig, folder, f"forest_{level}")})
        plt.close(fig)
    # ROC per variable, a curve per group with its band
    by_variable: Dict[str, List] = {}
    for (group_key, variable), (scores, truth) in analysis.roc_curves.items():
        by_variable.setdefault(variable, []).append((group_key, scores, truth))
    auc = {(tuple(e[k] for k in (*GROUP_KEYS, TIME_POINT) if k in e), e["variable"]): e for e in result["roc"]}
    for variable, curves in by_variable.items():
        fig, ax = plt.subplots(figsize=(5.5, 5.2), layout="constrained")
        for number, (group_key, scores, truth) in enumerate(curves):
            curve = roc.roc_curve(scores, truth)
            color = f"C{number % 10}"
            entry = auc[(group_key, variable)]
            label = f"{_group_name(dict(zip((*GROUP_KEYS, TIME_POINT), group_key)))}: AUC {entry['auc']:.2f}"
            if entry.get("ci_low") is not None:
                label += f" ({entry['ci_low']:.2f}-{entry['ci_high']:.2f})"
            fpr, tpr = (1.0 - curve["specificity"])[::-1], curve["sensitivity"][::-1]  # increasing
            ax.plot(np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr]), color=color, lw=1.6, label=label)
            if truth.sum() >= 2 and (~truth).sum() >= 2 and band_replicates:
                band = roc.bootstrap_band(scores, truth, band_replicates, seed + number)
                ax.fill_between(1.0 - band["specificity"], band["sensitivity_low"], band["sensitivity_high"],
                                color=color, alpha=0.12, step=None, lw=0)
        ax.plot([0, 1], [0, 1], ls=":", color="0.6")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("Sensitivity")
        ax.set_title(f"ROC of {variable} (lesion level; band: bootstrap 95 %)", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        made.append({"title": f"ROC of {variable}", **_save(fig, folder, f"roc_{variable}")})
        plt.close(fig)
    # Bland-Altman of SUVmax and SUVpeak for each modality or reader pair, coloured by region
    for (key, a, b, variable), both in analysis.agreement_pairs.items():
        if variable not in ("suv_max", "suv_peak") or len(both) < 2:
            continue
        x, y = both[f"{variable}_a"].to_numpy(float), both[f"{variable}_b"].to_numpy(float)
        mean, diff = (x + y) / 2.0, x - y
        fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
        for number, region in enumerate(sorted(both["region"].unique())):
            mask = (both["region"] == region).to_numpy()
            ax.scatter(mean[mask], diff[mask], s=18, color=f"C{number % 10}", label=region or "(no region)")
        bias, sd = diff.mean(), diff.std(ddof=1)
        for value, style in ((bias, "-"), (bias - 1.96 * sd, "--"), (bias + 1.96 * sd, "--")):
            ax.axhline(value, color="0.3", ls=style, lw=1)
        ax.axhline(0, color="0.7", lw=0.8)
        a_name, b_name = " ".join(a), " ".join(b)
        ax.set_xlabel(f"mean {variable}")
        ax.set_ylabel(f"{variable}: {a_name} - {b_name}")
        ax.set_title(f"Bland-Altman, {variable}: bias {bias:.2f}, limits {bias - 1.96 * sd:.2f} to "
                     f"{bias + 1.96 * sd:.2f}", fontsize=9)
        ax.legend(fontsize=7)
        name = f"bland_altman_{variable}_{key}_{'_'.join(a)}_vs_{'_'.join(b)}".replace("/", "").replace(" ", "")
        made.append({"title": f"Bland-Altman of {variable}, {a_name} vs {b_name}", **_save(fig, folder, name)})
        plt.close(fig)
    return made


# -- HTML --------------------------------------------------------------------------------------------

def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        if not np.isfinite(value):
            return "&ndash;"
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _p(value: Optional[float]) -> str:
    if value is None:
        return "&ndash;"
    return "&lt;0.001" if value < 0.001 else f"{value:.3f}"


def _ci(m: Optional[Dict[str, Any]], percent: bool = True) -> str:
    if not m or m.get("estimate") is None:
        reason = (m or {}).get("reason")
        return f"<span title='{html.escape(reason or '')}'>&ndash;</span>"
    scale, unit = (100.0, " %") if percent else (1.0, "")
    if not_estimable(m) and "bootstrap" in str(m.get("method", "")):
        return (f"{m['estimate'] * scale:.1f}{unit} (not estimable: zero-width bootstrap interval)" if percent
                else f"{m['estimate']:.2f} (not estimable: zero-width bootstrap interval)")
    text = f"{m['estimate'] * scale:.1f}{unit}" if percent else number(m["estimate"])
    if m.get("ci_low") is not None:
        text += (f" ({m['ci_low'] * scale:.1f}&ndash;{m['ci_high'] * scale:.1f})" if percent
                 else f" ({number(m['ci_low'])}&ndash;{number(m['ci_high'])})")
    return text


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    header = list(header)
    head = f"<thead><tr>{''.join(f'<th>{h}</th>' for h in header)}</tr></thead>" if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    kind = f" class='{css}'" if css else ""
    return f"<div class='table-wrap'><table{kind}>{head}<tbody>{body}</tbody></table></div>"


def _ci_warned(entry: Dict[str, Any], measure: str, interval: Optional[Dict[str, Any]] = None,
               clustered: bool = False, percent: bool = True) -> str:
    """An interval with the mark of :func:`netpet.stats.report_sections.interval_warning` when it is unreliable."""
    m = entry.get(measure) if interval is None else interval
    if not m or m.get("estimate") is None:
        return _ci(m, percent)
    events = events_of(entry, measure) if measure in ("sensitivity", "specificity", "ppv", "npv", "accuracy") else None
    if measure in ("lr_pos", "lr_neg"):
        events = min(events_of(entry, "sensitivity") or 0, events_of(entry, "specificity") or 0)
    reason = interval_warning(entry.get("n_patients"), events, m, clustered)
    naive = entry.get(measure) if clustered else None
    if reason and naive and naive.get("ci_low") is not None and m.get("ci_low") is not None \
            and m["ci_high"] - m["ci_low"] < naive["ci_high"] - naive["ci_low"] - 1e-12:
        reason += (f"; narrower than the unclustered {naive.get('method', '')} interval, which few clusters cannot "
                   "justify")
    return _ci(m, percent) + warn_mark(reason)


def _group_cell(entry: Dict[str, Any]) -> str:
    return html.escape(_group_name(entry))


def _embed(path: str) -> str:
    with open(path, "rb") as handle:
        return "data:image/png;base64," + base64.b64encode(handle.read()).decode("ascii")


STYLE = """
body{font-family:"DejaVu Sans",system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
.table-wrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em;max-width:100%}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere;
word-break:normal;hyphens:auto;min-width:3.5em}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
.note{color:#555;font-size:.9em}tr.not-separable td{background:#fff4e0}tr.discordant td{background:#fdecea}
figure{margin:1em 0}figcaption{font-size:.85em;color:#444}
img{max-width:100%;height:auto}
.warn{color:#a05a00;cursor:help}.warn-text{display:none}
.stard-row{display:flex;flex-wrap:wrap;gap:1em}.stard-figure{margin:.5em 0}svg.stard{max-width:100%;height:auto}
.mips{display:flex;flex-wrap:wrap;gap:.8em}.mips figure{width:22em;margin:0}
th.long{min-width:18em}table.legend{font-size:.75em}table.legend td,table.legend th{overflow-wrap:normal;word-break:keep-all}
.thumbs{display:flex;flex-wrap:wrap;gap:.6em}.thumbs figure{width:11em;margin:0}
ul.headline li{margin:.2em 0}ul.withheld{color:#555;font-size:.9em}
@page{size:A4;margin:12mm}
@media print{
 body{max-width:none;margin:0;padding:0;font-size:9pt}
 h2{break-before:auto;break-after:avoid;margin-top:1.2em}h3,h4{break-after:avoid}
 h2#stard,h2#patients,h2#images,h2#false-findings{break-before:page}
 table{font-size:7pt;width:100%;table-layout:auto}th,td{padding:.15em .25em}
 thead{display:table-header-group}tr,figure,svg{break-inside:avoid}
 .table-wrap{overflow:visible}
 .warn-text{display:inline;font-size:.9em}
 img{max-height:230mm}
 .mips figure{width:48%}.thumbs figure{width:23%}th.long{min-width:11em}
}
"""


def html_report(analysis: Analysis, made: List[Dict[str, str]], command: str = "",
                images: Optional[Dict[str, Any]] = None) -> str:
    """The self-contained report (figures and images embedded; see the module docstring).

    ``images`` is :func:`netpet.stats.report_images.session_images`'s result (None: images were not
    requested, and the report says so).
    """
    from netpet.stats.stard import stard_counts, stard_html

    r = analysis.result
    inputs, options = r["inputs"], r["options"]
    level_pct = int(round(100 * options["level"]))
    rule = options.get("equivocal", "negative")  # a result of an earlier NETPET has no rule: its calls were two-way
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>NETPET study statistics</title>"
             f"<style>{STYLE}</style></head><body>",
             "<h1>NETPET study statistics</h1>",
             f"<p class='note'>Generated {dt.datetime.now().replace(microsecond=0).isoformat()} by netpet "
             f"{html.escape(__version__)}{(' &mdash; <code>' + html.escape(command) + '</code>') if command else ''}</p>"]
    # inputs
    parts.append("<h2>Data</h2>")
    parts.append(_table(["", ""], [
        ["Study table", html.escape(str(inputs["table"]))], ["Reference standard", html.escape(str(inputs["reference"]))],
        ["Patients in the reference standard", str(inputs["patients"])],
        ["Reference lesions", str(inputs["reference_lesions"])], ["Findings in the study table", str(inputs["findings"])],
        ["Groups", "<br>".join(_group_cell({**g, "group_by": {}}) for g in inputs["groups"])],
        ["Regions", html.escape(", ".join(inputs["regions"]) or "none")],
        ["Equivocal findings", f"{inputs.get('equivocal_findings', 0)} (counted as {html.escape(rule)})"],
        ["Findings not separable", str(inputs.get("not_separable_findings", 0))],
        *([["Time points", html.escape(", ".join(inputs["time_points"]))]] if inputs.get("time_points") else []),
    ]))
    for warning in inputs["warnings"]:
        parts.append(f"<p class='note'>Note: {html.escape(warning)}</p>")
    for group, patients in inputs.get("not_read", {}).items():
        if patients:
            parts.append(f"<p class='note'>Not read in {html.escape(group)} (no row in the study table, left out of "
                         f"this group): {html.escape(', '.join(patients))}</p>")
    parts.append(headline_html(r, analysis.units.get("lesion")))
    parts.append(stard_html(stard_counts(r, analysis.units), rule))
    parts.append(
        "<h2>Methods</h2><p>Units: a patient is positive by the reference standard when any of its lesions is "
        "malignant and positive by a reader when any finding is called positive; a reference lesion without a finding "
        "in a group counts as a negative call; regions are the study's anatomical regions within each patient. "
        f"{_equivocal_rule(rule)} "
        f"Proportions carry {level_pct} % {html.escape(options['ci'])} intervals; likelihood ratios the log-method "
        "interval (Simel 1991). Lesion- and region-level intervals that respect clustering within patients are a "
        f"patient-level cluster bootstrap ({options['bootstrap']} replicates, percentile, seed {options['seed']}) and "
        "GEE (logit link, independence, robust SE). Paired comparisons: exact McNemar, McNemar chi-square without "
        "and with continuity correction, the difference with Tango's score interval; for lesions and regions the "
        "clustered McNemar test of Durkalski et al. (2003) with a cluster-bootstrap interval of the difference. "
        "ROC: AUC with DeLong's interval, Youden cut-off, paired DeLong test. Agreement: Bland&ndash;Altman, Lin's "
        "concordance correlation, Spearman; Cohen's kappa between readers. ROC and agreement use the findings with a "
        "value of the variable; findings without one (an empty cell, or the volume, mean and TLA of a lesion that is "
        "not separable, which has no segmented volume) are left out and counted in the tables.</p>"
        f"<p>Small samples: an interval is marked &#9888; when fewer than {MIN_CLUSTERS} patients (the clusters) or "
        f"fewer than {MIN_EVENTS} units in its denominator stand behind it, as the coverage of binomial and "
        "clustered intervals is then unreliable; with few patients a cluster-bootstrap or GEE interval can even be "
        "narrower than the unclustered one. A bootstrap interval of zero width (every resample gives the same value) "
        f"is reported as not estimable. Sources: {SMALL_SAMPLE_SOURCES}. The thresholds are this report's "
        "conventions.</p>")
    parts.append(_endpoint_methods((r.get("methods") or {}).get("endpoints")))
    if inputs.get("time_points"):
        parts.append(
            "<p>Time points: each group is a modality, tracer and reader at one time point "
            f"({html.escape(', '.join(inputs['time_points']))}); its units take the reference standard's rows for that "
            "time point and those for every time point, so the patient level is disease (recurrence) detection at "
            "each time point. Paired comparisons are made within a time point only; change over time is the "
            "follow-up analysis's.</p>")
    if r.get("correspondence"):
        parts.append(_correspondence_section(r["correspondence"]))
    # accuracy
    for level in ("patient", "lesion", "region"):
        rows = [e for e in r["accuracy"] if e["level"] == level]
        if not rows:
            continue
        parts.append(f"<h2>Accuracy, {level} level</h2>")
        header = ["Group", "n", "TP", "FP", "FN", "TN", "Equivocal findings (units)", "Sensitivity", "Specificity",
                  "PPV", "NPV", "Accuracy", "LR+", "LR&minus;"]
        if level != "patient":
            header += ["Sensitivity, cluster bootstrap CI", "Specificity, cluster bootstrap CI", "Sensitivity, GEE CI"]
        body = []
        for e in rows:
            row = [_group_cell(e), str(e["n_units"]), *(_fmt(e[k]) for k in ("tp", "fp", "fn", "tn")),
                   (f"{e['equivocal_findings']} ({e['equivocal_units']})" if e.get("equivocal_findings") is not None
                    else "&ndash;"),
                   *(_ci_warned(e, m) for m in ("sensitivity", "specificity", "ppv", "npv", "accuracy")),
                   _ci_warned(e, "lr_pos", percent=False), _ci_warned(e, "lr_neg", percent=False)]
            if level != "patient":
                clustered = e.get("clustered") or {}
                row += [_ci_warned(e, "sensitivity", clustered.get("sensitivity"), True),
                        _ci_warned(e, "specificity", clustered.get("specificity"), True),
                        _ci_warned(e, "sensitivity", (e.get("gee") or {}).get("sensitivity"), True)]
            body.append(row)
        parts.append(_table(header, body, "accuracy"))
        parts.append(f"<p class='note'>Equivocal findings counted as {html.escape(rule)}"
                     "; in brackets the units whose call rests on them (an equivocal finding and no positive one). "
                     "&#9888; marks an interval that few patients or units make unreliable (the reason in the mark; "
                     "see Methods).</p>")
        parts.extend(_figure(f) for f in made if f["title"] == f"Forest plot, {level} level")
        if level == "patient" and r.get("endpoints"):
            parts.append(_endpoint_table(r["endpoints"]))
    # comparisons
    parts.append("<h2>Paired comparisons</h2>")
    compared = {}
    for c in r["comparisons"]:
        compared.setdefault((c["level"], c["measure"], _group_name({**c["a"], "group_by": {}}),
                             _group_name({**c["b"], "group_by": {}})), {})[c["test"]] = c
    body = []
    for (level, measure, a, b), tests in compared.items():
        first = next(iter(tests.values()))
        diff = (f"{100 * first['difference']:+.1f} % ({100 * first['ci_low']:+.1f} to {100 * first['ci_high']:+.1f})"
                if first.get("difference") is not None and first.get("ci_low") is not None else "&ndash;")
        clustered = tests.get("mcnemar-clustered")
        body.append([level, measure, html.escape(a), html.escape(b), str(first["n"]),
                     _fmt(first.get("estimate_a")), _fmt(first.get("estimate_b")), diff,
                     _p(tests.get("mcnemar-exact", {}).get("p_value")), _p(tests.get("mcnemar-chi2", {}).get("p_value")),
                     _p(clustered.get("p_value")) if clustered else "&ndash;",
                     _clustered_difference(clustered)])
    parts.append(_table(["Level", "Measure", "A", "B", "n", "A", "B", "A &minus; B (Tango CI)", "Exact McNemar p",
                         "McNemar &chi;&sup2; p", "Clustered p (Durkalski)", "Clustered CI of A &minus; B"], body))
    # ROC
    parts.append("<h2>ROC analysis (lesion level)</h2>")
    lesions = analysis.units.get("lesion")
    parts.append(_table(["Group", "Variable", "Malignant", "Benign", "Left out (no value)", "AUC (DeLong CI)",
                         "Caveats", "Youden cut-off", "Sensitivity", "Specificity"],
                        [[_group_cell({**e, "group_by": {}}), html.escape(e["variable"]), str(e["n_cases"]),
                          str(e["n_controls"]), _dropped(e),
                          (f"{e['auc']:.3f} ({_fmt(e['ci_low'])}&ndash;{_fmt(e['ci_high'])})" if e["auc"] is not None
                           else f"&ndash; <span class='note'>{html.escape(e.get('reason', ''))}</span>"),
                          ("; ".join(html.escape(f) for f in auc_flags({**e, "n_patients": _patients_of(lesions, e)},
                                                                        lesions)) if e["auc"] is not None else ""),
                          _fmt(e["youden_cutoff"], 2), _fmt(e["youden_sensitivity"]), _fmt(e["youden_specificity"])]
                         for e in r["roc"]], "roc"))
    if r["roc_comparisons"]:
        parts.append(_table(["Variable", "A", "B", "n", "Left out (no value)", "AUC A", "AUC B", "z",
                             "p (paired DeLong)"],
                            [[html.escape(c["variable"]), _group_cell({**c["a"], "group_by": {}}),
                              _group_cell({**c["b"], "group_by": {}}), str(c["n"]), _dropped(c), _fmt(c["auc_a"]),
                              _fmt(c["auc_b"]),
                              _fmt(c["z"], 2), _p(c["p_value"])] for c in r["roc_comparisons"]]))
    parts.extend(_figure(f) for f in made if f["title"].startswith("ROC"))
    # agreement
    if r["agreement"]:
        parts.append("<h2>Agreement of SUVs</h2>")
        body = []
        for e in r["agreement"]:
            ba, ccc, rho = e["bland_altman"], e["ccc"], e["spearman"]
            body.append([html.escape(e["variable"]), _group_cell({**e["a"], "group_by": {}}),
                         _group_cell({**e["b"], "group_by": {}}), html.escape(e["region"]), str(e["n"]), _dropped(e),
                         (f"{ba['bias']:.2f} ({ba['bias_ci_low']:.2f}&ndash;{ba['bias_ci_high']:.2f})"
                          if "bias" in ba else "&ndash;"),
                         f"{ba['bias_percent']:.1f} %" if ba.get("bias_percent") is not None else "&ndash;",
                         f"{ba['loa_low']:.2f} to {ba['loa_high']:.2f}" if "loa_low" in ba else "&ndash;",
                         (f"{ccc['ccc']:.3f} ({_fmt(ccc['ci_low'])}&ndash;{_fmt(ccc['ci_high'])})"
                          if ccc.get("ccc") is not None else "&ndash;"),
                         _fmt(rho.get("rho"))])
        parts.append(_table(["Variable", "A", "B", "Region", "n", "Left out (no value)", "Bias A &minus; B (CI)",
                             "Bias %", "Limits of agreement", "Lin's CCC (CI)", "Spearman &rho;"], body))
        parts.extend(_figure(f) for f in made if f["title"].startswith("Bland-Altman"))
    if r["kappa"]:
        parts.append("<h2>Inter-reader agreement of calls</h2>")
        parts.append(_table(["Level", "Modality", "Tracer", "Readers", "n", "Observed agreement", "Cohen's kappa (CI)"],
                            [[k["level"], html.escape(k["modality"] + (f" at {k[TIME_POINT]}" if k.get(TIME_POINT)
                                                                       else "")), html.escape(k["tracer"]),
                              f"{html.escape(k['reader_a'])} vs {html.escape(k['reader_b'])}", str(k["n"]),
                              _fmt(k.get("observed_agreement")),
                              (f"{k['kappa']:.3f} ({k['ci_low']:.3f}&ndash;{k['ci_high']:.3f})"
                               if k.get("kappa") is not None else html.escape(k.get("reason", "")))]
                             for k in r["kappa"]]))
    # staging (netpet.stats.staging): the section, or the sentence saying why it is not available
    staging = r.get("staging") or analysis.staging
    if staging:
        from netpet.stats.staging import staging_html  # not at module level: see netpet.stats.analysis.analyse

        parts.append(staging_html(staging))
    parts.append(patient_table_html(patient_rows(analysis.units, staging if (staging or {}).get("available") else None,
                                                 unit_indications(analysis.units, inputs.get("reference")))))
    parts.append(krenning_html(krenning_rows(analysis.units.get("lesion"))))
    parts.append(extra_sections_html(r))
    from netpet.stats.report_images import images_html

    parts.append(images_html(images))
    # false findings
    parts.append("<h2 id='false-findings'>False positives and false negatives (lesion level)</h2>")
    if r["causes"]:
        parts.append(_table(["Kind", "Cause", "Count"],
                            [[html.escape(c["kind"]), html.escape(str(c["cause"])), str(c["count"])] for c in r["causes"]]))
    parts.append("<p class='note'>Fill in the <code>cause</code> column of <code>false-findings.csv</code>; the next "
                 "run keeps it and tallies it here.</p>")
    parts.append(_cause_codes((r.get("methods") or {}).get("causes")))
    parts.append(_false_findings_table(r["false_findings"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _cause_codes(methods: Optional[Dict[str, Any]]) -> str:
    """The fixed list of cause codes with their definitions and sources (netpet.stats.causes), and how many causes
    are confirmed."""
    if not methods or not methods.get("codes"):
        return ""
    rows = [[html.escape(str(c.get("code", ""))), html.escape(str(c.get("name", ""))),
             html.escape(str(c.get("definition", "")))] for c in methods["codes"]]
    text = (f"<p class='note'>Coded causes: {number(methods.get('confirmed'))} confirmed by a reader, "
            f"{number(methods.get('proposed_only'))} proposed only (the proposal's reason is given; a reader confirms "
            "it in <code>false-findings.csv</code>).</p>")
    references = methods.get("references") or []
    sources = ("<p class='note'>Sources: " + "; ".join(html.escape(str(x)) for x in references) + "</p>"
               if references else "")
    return text + _table(["Code", "Cause", "Definition"], rows, "cause-codes") + sources


def _endpoint_methods(methods: Optional[Dict[str, Any]]) -> str:
    """The Methods paragraph of the patient-level endpoints (netpet.stats.analysis.endpoint_methods)."""
    if not methods or not methods.get("text"):
        return ""
    parts = [f"<p>{html.escape(methods['text'])}</p>"]
    definitions = [d for d in methods.get("definitions") or [] if d.get("indication")]
    if definitions:
        parts.append("<ul class='endpoints'>" + "".join(
            f"<li><strong>{html.escape(d['indication'])}</strong>: {html.escape(d['definition'])}</li>"
            for d in definitions) + "</ul>")
    references = methods.get("references") or []
    if references:
        parts.append("<p class='note'>Endpoint references: " + "; ".join(html.escape(str(x)) for x in references)
                     + "</p>")
    return "".join(parts)


def _endpoint_table(entries: Sequence[Dict[str, Any]]) -> str:
    """Patient-level accuracy per group and indication, each under its indication's endpoint."""
    body = []
    for e in entries:
        body.append([_group_cell({**e, "group_by": {}}), html.escape(str(e.get("indication", ""))),
                     str(e["n_units"]), *(number(e[k]) for k in ("tp", "fp", "fn", "tn")),
                     *(_ci_warned(e, m) for m in ("sensitivity", "specificity", "ppv", "npv")),
                     number(e.get("positive_elsewhere_only"))])
    return ("<h3>Patient level per indication</h3>"
            "<p class='note'>Each patient under the endpoint of its indication (Methods); the last column counts the "
            "patients with disease called negative by the endpoint although another finding of theirs is called "
            "positive (for TIO localisation: the culprit missed, a decoy called positive).</p>"
            + _table(["Group", "Indication", "n", "TP", "FP", "FN", "TN", "Sensitivity", "Specificity", "PPV", "NPV",
                      "Positive elsewhere only"], body, "endpoints"))


def _patients_of(lesions: Optional[Any], entry: Dict[str, Any]) -> Optional[int]:
    """The patients behind an ROC entry (of its group, lesions found)."""
    if lesions is None or not len(lesions):
        return None
    mask = np.ones(len(lesions), dtype=bool)
    for key in (*GROUP_KEYS, TIME_POINT):
        if key in entry and key in lesions:
            mask &= (lesions[key].astype(str) == str(entry[key])).to_numpy()
    if "found" in lesions:
        mask &= lesions["found"].astype(bool).to_numpy()
    return int(lesions.loc[mask, "patient_id"].nunique())


def _clustered_difference(entry: Optional[Dict[str, Any]]) -> str:
    """The cluster-bootstrap interval of a paired difference; zero width is not estimable; few patients marked."""
    if not entry or entry.get("ci_low") is None:
        return "&ndash;"
    if not_estimable(entry):
        return "not estimable (zero-width bootstrap interval)" + warn_mark(
            interval_warning(entry.get("n_patients"), entry.get("n"), entry, True))
    return (f"{100 * entry['ci_low']:+.1f} to {100 * entry['ci_high']:+.1f} %"
            + warn_mark(interval_warning(entry.get("n_patients"), entry.get("n"), entry, True)))


def _correspondence_section(summary: Dict[str, Any]) -> str:
    """The lesion correspondence used (netpet match): counts per status and the ambiguous matches to confirm."""
    counts = summary.get("counts", {})
    parts = ["<h2>Lesion correspondence</h2>",
             f"<p>Findings were joined to the reference lesions by the correspondence table "
             f"<code>{html.escape(str(summary.get('path', '')))}</code> (<code>netpet match</code>): "
             + ", ".join(f"{int(counts.get(s, 0))} {html.escape(s)}" for s in counts)
             + ". A matched, ambiguous or confirmed finding counts for the reference lesion it is matched to; an "
               "unmatched finding is a lesion of its own with truth 0 (a false positive where called positive, a true "
               f"negative in the groups that did not report it): {int(summary.get('unmatched_tracks', 0))} such "
               "lesion(s). A missed reference lesion is a negative call in its group.</p>"]
    ambiguous = summary.get("ambiguous") or []
    if ambiguous:
        parts.append(f"<p class='note'><strong>{len(ambiguous)} ambiguous match(es)</strong> were used as proposed; "
                     "a reader must confirm each (status <code>confirmed</code> in the correspondence table, which "
                     "netpet match keeps) or correct it.</p>")
        columns = ("row", "patient_id", "session_id", "modality", "tracer", "reader", TIME_POINT, "lesion_id",
                   "reference_lesion_id", "distance_mm", "candidates", "note")
        parts.append(_table(columns, [[html.escape(str(a.get(c, ""))) for c in columns] for a in ambiguous]))
    return "".join(parts)


def _equivocal_rule(rule: str) -> str:
    """The sentence of the methods that states how equivocal calls were counted."""
    if rule == "positive":
        return ("Equivocal calls (uptake equal to the liver within its measurement noise, Krenning 2) were counted as "
                "positive (<code>--equivocal positive</code>), a sensitivity analysis: the study protocol calls only "
                "uptake clearly above the liver positive.")
    return ("Equivocal calls (uptake equal to the liver within its measurement noise, Krenning 2) were counted as "
            "negative (<code>--equivocal negative</code>, the default): the study protocol calls only uptake clearly "
            "above the liver positive.")


def _dropped(entry: Dict[str, Any]) -> str:
    """Findings left out of an ROC or agreement entry for want of a value (of which not separable)."""
    count = entry.get("n_dropped") or 0
    apart = entry.get("dropped_not_separable") or 0
    return f"{count} ({apart} not separable)" if apart else str(count)


def _cause_cell(row: Dict[str, Any]) -> str:
    """The cause of a false finding: the reader's, else the code proposed (marked as not confirmed), with its
    reason when the analysis gives one."""
    cause = str(row.get("cause") or "").strip()
    code = str(row.get("cause_code") or "").strip()
    confirmed = str(row.get("cause_confirmed") or "").strip() == "yes"
    reason = str(row.get("proposed_reason") or "").strip()
    if cause and (confirmed or not code):
        return html.escape(cause) + (f" <span class='note'>({html.escape(code)})</span>" if code and code != cause
                                     else "")
    if code:
        text = f"{html.escape(code)} <span class='note'>(proposed, not confirmed)</span>"
        return text + (f"<br><span class='note'>{html.escape(reason)}</span>" if reason else "")
    return html.escape(cause)


def _false_findings_table(rows: Sequence[Dict[str, Any]]) -> str:
    """The false findings with their quality; findings that are not separable are marked."""
    apart = [str(row.get("segmentation_status") or "").strip().lower().replace("-", " ") == NOT_SEPARABLE
             for row in rows]
    parts = []
    if any(apart):
        parts.append(f"<p class='note'>{sum(apart)} of these findings are <strong>not separable</strong> (marked): no "
                     "volume could be segmented; their SUVmax and SUVpeak are the local uptake at the click, and they "
                     "have no volume, SUVmean or TLA.</p>")
    # grouped cells keep the table within a printed page: which finding, where, the call and values, its quality
    timed = any(row.get(TIME_POINT) for row in rows)
    matched = any("finding_id" in row for row in rows)  # joined by a correspondence table: the reader's own id too
    head = "".join(f"<th>{h}</th>" for h in ("Kind", "Finding", *([TIME_POINT] if timed else []),
                                              *(["finding_id"] if matched else []), "Region (standard)", "Call",
                                              "SUVmax, T/L, Krenning", "Segmentation", "Warnings", "Cause"))
    body = []
    for row, marked in zip(rows, apart):
        def get(column: str) -> str:
            value = row.get(column, "")
            return "" if value is None else html.escape(str(value))

        finding = (f"{get('patient_id')} {get('session_id')}<br>{get('modality')} {get('tracer')} {get('reader')}"
                   f"<br>lesion {get('lesion_id')}")
        values = ", ".join(number(row.get(c), 2) for c in ("suv_max", "tl_ratio", "krenning"))
        status = get("segmentation_status")
        if marked:
            status = f"<strong>&#9888; {status}</strong>"
        flags = get("flags").replace(";", "; ")
        cells = [get("kind"), finding, *([get(TIME_POINT)] if timed else []), *([get("finding_id")] if matched else []),
                 f"{get('region')} ({get('standard')})",
                 f"{get('call') or '&ndash;'}<br><span class='note'>found: {get('found')}</span>", values,
                 f"{status}<br><span class='note'>{flags}</span>", get("warnings").replace(" | ", "<br>"),
                 _cause_cell(row)]
        body.append(("<tr class='not-separable'>" if marked else "<tr>")
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append(f"<div class='table-wrap'><table class='false-findings'><thead><tr>{head}</tr></thead>"
                 f"<tbody>{''.join(body)}</tbody></table></div>")
    return "".join(parts)


def _figure(made: Dict[str, str]) -> str:
    return (f"<figure><img src='{_embed(made['png'])}' alt='{html.escape(made['title'])}'>"
            f"<figcaption>{html.escape(made['title'])} (also {html.escape(os.path.basename(made['svg']))})"
            "</figcaption></figure>")


def write_outputs(analysis: Analysis, out: str, command: str = "", previous_causes: Optional[Dict] = None,
                  figures_too: bool = True, dicom: Optional[str] = None) -> Dict[str, str]:
    """Write every output (see module docstring) into ``out``; returns {name: path}.

    ``dicom``: the folder tree of the study's DICOM files; when given, the PET of every session read
    (found by the table's ``series_uid``) is converted to SUV and the report gains MIPs with the
    lesions marked and thumbnails of every false finding (:mod:`netpet.stats.report_images`), also
    written as PNG files under ``images/``.

    Raises
    ------
    StatsError
        A ``dicom`` folder that does not exist or holds no DICOM file.
    """
    import json

    if dicom:
        from netpet.stats.report_images import check_dicom_root

        check_dicom_root(dicom)  # before any file is written
    os.makedirs(out, exist_ok=True)
    r = analysis.result
    written: Dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        path = os.path.join(out, name)
        _atomic_write(path, data)
        written[name] = path

    put("stats.json", json.dumps(r, indent=1).encode("utf-8"))
    put("accuracy.csv", _csv_bytes([_flatten(e) for e in r["accuracy"]]))
    put("comparisons.csv", _csv_bytes([_flatten(e) for e in r["comparisons"]]))
    put("roc.csv", _csv_bytes([_flatten(e) for e in r["roc"]]))
    put("roc-comparisons.csv", _csv_bytes([_flatten(e) for e in r["roc_comparisons"]]))
    put("agreement.csv", _csv_bytes([_flatten(e) for e in r["agreement"]]))
    put("kappa.csv", _csv_bytes([_flatten(e) for e in r["kappa"]]))
    put("false-findings.csv", _csv_bytes(r["false_findings"], list(analysis.false_findings.columns)))
    put("causes.csv", _csv_bytes(r["causes"], ["kind", "cause", "count"]))
    if (r.get("staging") or {}).get("available"):
        from netpet.stats.staging import accuracy_rows, staging_rows

        put("staging-patients.csv", _csv_bytes(staging_rows(r["staging"])))
        put("staging-accuracy.csv", _csv_bytes(accuracy_rows(r["staging"])))
    if previous_causes:
        current = {false_finding_key(row) for row in r["false_findings"]}
        orphans = [dict(zip(("kind", "patient_id", "modality", "tracer", "reader", "lesion_id", TIME_POINT), key),
                            cause=cause)
                   for key, cause in previous_causes.items() if key not in current]
        if orphans:  # causes of findings that are no longer false: kept, never lost
            put("false-findings-previous-causes.csv", _csv_bytes(orphans))
    for level, frame in analysis.units.items():
        put(f"units-{level}.csv", frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    from netpet.stats.stard import counts_rows, stard_counts

    put("stard.csv", _csv_bytes(counts_rows(stard_counts(r, analysis.units))))
    made = figures(analysis, os.path.join(out, "figures"), seed=r["options"]["seed"]) if figures_too else []
    for f in made:
        written[f"figures/{os.path.basename(f['png'])}"] = f["png"]
        written[f"figures/{os.path.basename(f['svg'])}"] = f["svg"]
    images = None
    if dicom:
        from netpet.stats.report_images import session_images

        images = session_images(analysis, dicom, os.path.join(out, "images"))
        for item in images.get("mips", []) + images.get("thumbnails", []):
            written[f"images/{os.path.basename(item['png'])}"] = item["png"]
    put("report.html", html_report(analysis, made, command, images).encode("utf-8"))
    return written


__all__ = ["write_outputs", "read_causes", "figures", "html_report", "MEASURES"]
