"""Sections of the StudyStats report a physician signs: headline, small-sample warnings, per-patient
table, Krenning summary, and a generic renderer for the results other modules add.

Honesty rules (what the report will and will not say):

Few clusters
    An interval is marked when its patients (the clusters) number fewer than :data:`MIN_CLUSTERS`
    or its denominator has fewer than :data:`MIN_EVENTS` units. Score and exact intervals of a
    proportion have erratic coverage at small n (Brown LD, Cai TT, DasGupta A, Stat Sci
    2001;16:101-133); the cluster bootstrap needs enough clusters to mimic their sampling (Field CA,
    Welsh AH, J R Stat Soc B 2007;69:369-390), and cluster-robust (GEE sandwich) standard errors are
    too small with few clusters (Cameron AC, Gelbach JB, Miller DL, Rev Econ Stat 2008;90:414-427).
    The thresholds 10 and 5 are this report's conventions (the rule of thumb of at least 5 expected
    events per cell), not values those papers derive.
Not estimable
    A bootstrap interval of zero width (every resample gives the same value, e.g. no false
    positive in any patient) carries no uncertainty information: it is reported as not estimable.
Headline
    The key results list an estimate only when it has enough patients and events. An AUC below
    0.5, or one whose benign (or malignant) class is a single kind of lesion (one site, e.g. every
    benign lesion a physiological uncinate focus), is not a discrimination result: it is listed with
    the reason and never as a headline.
"""

from __future__ import annotations

import csv
import html
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

#: fewer patients (clusters) than this: the interval is marked (a convention of this report, see module docstring)
MIN_CLUSTERS = 10
#: fewer units in the denominator than this: the interval is marked
MIN_EVENTS = 5
#: the denominator of each proportion over the cells tp, fp, fn, tn
DENOMINATORS = {"sensitivity": ("tp", "fn"), "specificity": ("fp", "tn"), "ppv": ("tp", "fp"), "npv": ("fn", "tn"),
                "accuracy": ("tp", "fp", "fn", "tn")}
#: a generic table wider than this is cut into parts (each repeating the first KEY_COLUMNS columns)
MAX_COLUMNS = 12
KEY_COLUMNS = 2
#: the reference-standard columns that name the kind of a lesion, most specific first
KIND_COLUMNS = ("site", "lesion_type", "region")
SMALL_SAMPLE_SOURCES = ("Brown, Cai &amp; DasGupta, Stat Sci 2001 (coverage of binomial intervals at small n); "
                        "Field &amp; Welsh, J R Stat Soc B 2007 (the cluster bootstrap); Cameron, Gelbach &amp; "
                        "Miller, Rev Econ Stat 2008 (cluster-robust errors with few clusters)")


# -- numbers -----------------------------------------------------------------------------------------

def number(value: Any, digits: int = 2) -> str:
    """A number as text: integers (also integral floats, e.g. a Krenning score read as 3.0) without decimals;
    others of magnitude 1 or more with ``digits`` decimals, smaller ones with three significant digits (a variance
    of 0.0012 never prints as "0.00"); None, NaN and empty as an en dash. HTML-escaped."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "&ndash;"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "&ndash;"
        value = float(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if abs(value) >= 1.0:
            return f"{value:.{digits}f}"
        return f"{value:.3g}".replace("-", "&minus;") if value < 0 else f"{value:.3g}"
    return html.escape(str(value))


def cell(value: Any) -> str:
    """Any value of a result row as HTML: numbers by :func:`number`, lists joined, dicts as key: value."""
    if isinstance(value, Mapping):
        return "; ".join(f"{html.escape(str(k))}: {cell(v)}" for k, v in value.items()) or "&ndash;"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) or "&ndash;"
    return number(value)


# -- small-sample warnings ---------------------------------------------------------------------------

def interval_warning(n_patients: Optional[int], events: Optional[int], interval: Optional[Mapping[str, Any]] = None,
                     clustered: bool = False) -> Optional[str]:
    """Why an interval is unreliable (None when it is not), in one sentence.

    Parameters
    ----------
    n_patients : int or None
        The patients (clusters) behind the interval.
    events : int or None
        The units in the proportion's denominator.
    interval : mapping, optional
        The measure (estimate, ci_low, ci_high).
    clustered : bool
        A cluster bootstrap or GEE interval (whose validity rests on the number of clusters).
    """
    reasons = []
    if interval and interval.get("ci_low") is not None and interval.get("ci_high") is not None and clustered \
            and abs(float(interval["ci_high"]) - float(interval["ci_low"])) < 1e-12:
        reasons.append("zero-width bootstrap interval: not estimable (every resample gives the same value)")
    if n_patients is not None and n_patients < MIN_CLUSTERS:
        reasons.append(f"only {n_patients} patient{'s' if n_patients != 1 else ''} (clusters)")
    if events is not None and events < MIN_EVENTS:
        reasons.append(f"only {events} unit{'s' if events != 1 else ''} in the denominator")
    if not reasons:
        return None
    return "; ".join(reasons) + ": the interval's coverage is unreliable"


def not_estimable(interval: Optional[Mapping[str, Any]]) -> bool:
    """A zero-width interval (a bootstrap whose resamples all agree)."""
    return bool(interval and interval.get("ci_low") is not None and interval.get("ci_high") is not None
                and abs(float(interval["ci_high"]) - float(interval["ci_low"])) < 1e-12)


def events_of(entry: Mapping[str, Any], measure: str) -> Optional[int]:
    """The units in a measure's denominator (None when the entry has no cells)."""
    cells = DENOMINATORS.get(measure)
    if not cells or any(entry.get(c) is None for c in cells):
        return None
    return int(sum(int(entry[c]) for c in cells))


def warn_mark(reason: Optional[str]) -> str:
    """The mark put next to an interval (its reason as a tooltip and in print as a footnote sign)."""
    if not reason:
        return ""
    return f" <span class='warn' title='{html.escape(reason)}'>&#9888;<span class='warn-text'> {html.escape(reason)}" \
           "</span></span>"


# -- ROC honesty -------------------------------------------------------------------------------------

def class_kinds(lesions: Optional[pd.DataFrame], entry: Mapping[str, Any], variable: str,
                truth: int) -> Tuple[Optional[str], List[str]]:
    """The kinds (values of the first :data:`KIND_COLUMNS` column present) of one truth class of an ROC entry."""
    if lesions is None or not len(lesions):
        return None, []
    frame = lesions
    for key in ("modality", "tracer", "reader", "time_point"):
        if key in entry and key in frame:
            frame = frame[frame[key].astype(str) == str(entry[key])]
    if "found" in frame:
        frame = frame[frame["found"].astype(bool)]
    if variable in frame:
        frame = frame[pd.to_numeric(frame[variable], errors="coerce").notna()]
    frame = frame[frame["truth"].astype(int) == truth]
    for column in KIND_COLUMNS:
        if column in frame:
            values = [str(v) for v in frame[column] if str(v).strip() and str(v) != "nan"]
            if values:
                return column, sorted(set(values))
    return None, []


def auc_flags(entry: Mapping[str, Any], lesions: Optional[pd.DataFrame] = None) -> List[str]:
    """Reasons an AUC is no headline (empty when it may be one)."""
    flags = []
    auc = entry.get("auc")
    if auc is None:
        return [entry.get("reason") or "not computed"]
    if auc < 0.5:
        flags.append(f"AUC {auc:.2f} below 0.5 (worse than chance): a property of the lesions measured, not "
                     "discrimination")
    for truth, name in ((0, "benign"), (1, "malignant")):
        column, kinds = class_kinds(lesions, entry, entry.get("variable", ""), truth)
        count = entry.get("n_controls" if truth == 0 else "n_cases")
        if len(kinds) == 1 and (count or 0) >= 1:
            flags.append(f"every {name} lesion is of one kind ({column} {kinds[0]}, n = {count}): separation from "
                         "that kind only")
    for key, name in (("n_cases", "malignant"), ("n_controls", "benign")):
        if entry.get(key) is not None and entry[key] < MIN_EVENTS:
            flags.append(f"only {entry[key]} {name} lesion{'s' if entry[key] != 1 else ''}")
    patients = entry.get("n_patients")
    if patients is not None and patients < MIN_CLUSTERS:
        flags.append(f"only {patients} patients")
    return flags


def headline(result: Mapping[str, Any], lesions: Optional[pd.DataFrame] = None,
             patients_by_group: Optional[Mapping[str, int]] = None) -> Tuple[List[str], List[str]]:
    """(supported, withheld): key results the data support, and those withheld with the reason.

    Sensitivity and specificity per level and group (no group-by split) are supported when their
    patients number at least :data:`MIN_CLUSTERS` and their denominator at least :data:`MIN_EVENTS`
    units; AUCs when :func:`auc_flags` finds nothing.
    """
    supported, withheld = [], []
    for entry in result.get("accuracy", []):
        if entry.get("group_by") or entry.get("tp") is None:
            continue
        name = _entry_name(entry)
        for measure in ("sensitivity", "specificity"):
            m = entry.get(measure) or {}
            if m.get("estimate") is None:
                continue
            text = (f"{entry['level'].capitalize()}-level {measure} of {name}: {100 * m['estimate']:.1f} % "
                    f"({100 * m['ci_low']:.1f}&ndash;{100 * m['ci_high']:.1f} %)")
            reason = interval_warning(entry.get("n_patients"), events_of(entry, measure))
            if reason:
                withheld.append(f"{text} &mdash; {html.escape(reason)}")
            else:
                supported.append(text)
    for entry in result.get("roc", []):
        if entry.get("auc") is None:
            continue
        name = _entry_name(entry)
        patients = (patients_by_group or {}).get(_entry_name(entry))
        flags = auc_flags({**entry, **({"n_patients": patients} if patients is not None else {})}, lesions)
        text = (f"AUC of {html.escape(entry['variable'])}, {name}: {entry['auc']:.2f}"
                + (f" ({entry['ci_low']:.2f}&ndash;{entry['ci_high']:.2f})" if entry.get("ci_low") is not None else ""))
        if flags:
            withheld.append(f"{text} &mdash; " + "; ".join(html.escape(f) for f in flags))
        else:
            supported.append(text)
    return supported, withheld


def _entry_name(entry: Mapping[str, Any]) -> str:
    text = f"{entry['modality']} {entry['tracer']} {entry['reader']}"
    if entry.get("time_point"):
        text += f" at {entry['time_point']}"
    return html.escape(text)


def headline_html(result: Mapping[str, Any], lesions: Optional[pd.DataFrame] = None) -> str:
    """The key-results section: what the data support, then what is withheld and why."""
    patients = {}
    for entry in result.get("accuracy", []):
        if entry.get("level") == "lesion" and not entry.get("group_by"):
            patients[_entry_name(entry)] = entry.get("n_patients")
    supported, withheld = headline(result, lesions, patients)
    parts = ["<h2 id='key-results'>Key results</h2>"]
    if supported:
        parts.append("<ul class='headline'>" + "".join(f"<li>{s}</li>" for s in supported) + "</ul>")
    else:
        parts.append("<p><strong>No result of this study is supported as a headline</strong>: every estimate rests "
                     f"on fewer than {MIN_CLUSTERS} patients or {MIN_EVENTS} units, or is flagged below.</p>")
    if withheld:
        parts.append("<p class='note'>Not headline results (reported in the tables with these caveats):</p>"
                     "<ul class='withheld'>" + "".join(f"<li>{w}</li>" for w in withheld) + "</ul>")
    parts.append(f"<p class='note'>Thresholds: at least {MIN_CLUSTERS} patients and {MIN_EVENTS} units in a "
                 f"denominator (this report's conventions; sources on small-sample coverage: {SMALL_SAMPLE_SOURCES}). "
                 "An AUC below 0.5 or one whose benign or malignant lesions are all of one kind (one site) is never "
                 "a headline.</p>")
    return "".join(parts)


# -- per-patient table and Krenning ------------------------------------------------------------------

def unit_indications(units: Mapping[str, pd.DataFrame], path: Optional[str] = None) -> Dict[str, str]:
    """patient_id -> indication as the analysis' lesion units carry it (the reference standard's ``indication``
    column, under the analysis' patient ids, pseudonymised ones included); patients the units do not name (a patient
    known only from a patient row) from the reference file itself (:func:`reference_indications`)."""
    out: Dict[str, str] = {}
    lesions = units.get("lesion")
    if lesions is not None and "indication" in lesions:
        for patient, value in zip(lesions["patient_id"], lesions["indication"]):
            if isinstance(value, str) and value.strip():
                out.setdefault(str(patient), value.strip())
    for patient, value in reference_indications(path).items():
        out.setdefault(patient, value)
    return out


def reference_indications(path: Optional[str]) -> Dict[str, str]:
    """patient_id -> indication from the reference standard's optional ``indication`` column ({} without one). The
    file was read by the analysis already, so a failure here cannot be a new problem of the input: it gives {}."""
    if not path:
        return {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if "indication" not in (reader.fieldnames or []):
                return {}
            out: Dict[str, str] = {}
            for row in reader:
                value = (row.get("indication") or "").strip()
                if value:
                    out.setdefault((row.get("patient_id") or "").strip(), value)
            return out
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}


def _group_keys(frame: pd.DataFrame) -> List[str]:
    keys = ["modality", "tracer", "reader"]
    if "time_point" in frame and frame["time_point"].nunique() > 1:
        keys.append("time_point")
    return keys


def _indication(unit: Mapping[str, Any], indications: Optional[Mapping[str, str]]) -> str:
    """The unit's indication as the analysis normalised it, else as the reference standard writes it."""
    value = unit.get("indication")
    if isinstance(value, str) and value.strip():
        return value
    return (indications or {}).get(unit["patient_id"], "")


def patient_rows(units: Mapping[str, pd.DataFrame], staging: Optional[Mapping[str, Any]] = None,
                 indications: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
    """One row per patient and group read: truth, call, lesion TP/FP/FN/TN, stage, highest Krenning score."""
    patients, lesions = units.get("patient"), units.get("lesion")
    if patients is None or not len(patients):
        return []
    keys = _group_keys(patients)
    stages: Dict[Tuple[str, ...], Dict[str, Any]] = {}
    for group in (staging or {}).get("groups", []) or []:
        label = tuple(str(group["group"].get(k, "")) for k in keys)
        for patient in group.get("patients", []):
            stages[(patient["patient_id"], *label)] = patient
    # the lesion counts and highest Krenning score of every (patient, group), in one grouping of the lesion units (a
    # mask over every lesion unit per patient was quadratic in the size of the study); the group keys compare as text
    cells: Dict[Tuple[Any, ...], Tuple[int, int, int, int, Optional[int]]] = {}
    if lesions is not None and len(lesions):
        truth, call = lesions["truth"].astype(int).to_numpy() == 1, lesions["call"].astype(int).to_numpy() == 1
        names = [f"key{i}" for i in range(len(keys))]
        frame = pd.DataFrame({"patient_id": lesions["patient_id"].to_numpy(),
                              **{n: lesions[k].astype(str).to_numpy() for n, k in zip(names, keys)},
                              "tp": truth & call, "fp": ~truth & call, "fn": truth & ~call, "tn": ~truth & ~call,
                              "krenning": (pd.to_numeric(pd.Series(list(lesions["krenning"]), dtype=object),
                                                         errors="coerce").to_numpy() if "krenning" in lesions
                                           else np.nan)})
        summed = frame.groupby(["patient_id", *names], sort=False, dropna=False).agg(
            tp=("tp", "sum"), fp=("fp", "sum"), fn=("fn", "sum"), tn=("tn", "sum"), krenning=("krenning", "max"))
        for key, tp, fp, fn, tn, krenning in summed.itertuples():
            cells[key if isinstance(key, tuple) else (key,)] = (
                int(tp), int(fp), int(fn), int(tn),
                int(krenning) if "krenning" in lesions and not pd.isna(krenning) else None)
    rows = []
    for unit in patients.sort_values(["patient_id", *keys]).to_dict("records"):
        key = tuple(str(unit[k]) for k in keys)
        row: Dict[str, Any] = {"patient": unit["patient_id"],
                               "indication": _indication(unit, indications),
                               "group": " ".join(key[:3]) + (f" at {key[3]}" if len(key) > 3 else ""),
                               "truth": "disease" if int(unit["truth"]) else "no disease",
                               "call": "positive" if int(unit["call"]) else "negative"}
        if lesions is not None and len(lesions):
            tp, fp, fn, tn, krenning = cells.get((unit["patient_id"], *key), (0, 0, 0, 0, None))
            row.update(tp=tp, fp=fp, fn=fn, tn=tn, krenning_max=krenning)
        stage = stages.get((unit["patient_id"], *key))
        if stage:
            found, reference = stage.get("findings") or {}, stage.get("reference") or {}
            row["stage"] = " ".join(str(found.get(k) or "?") for k in ("n", "m", "stage_group"))
            row["stage_reference"] = " ".join(str(reference.get(k) or "?") for k in ("n", "m", "stage_group"))
        rows.append(row)
    return rows


PATIENT_COLUMNS = (("patient", "Patient"), ("indication", "Indication"), ("group", "Group read"),
                   ("truth", "Reference"), ("call", "Call"), ("tp", "Lesions TP"), ("fp", "FP"), ("fn", "FN"),
                   ("tn", "TN"), ("stage", "Stage (N M group), findings"), ("stage_reference", "Stage, reference"),
                   ("krenning_max", "Krenning max"))


def patient_table_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-patient table (columns without a value in any row are left out)."""
    if not rows:
        return "<h2 id='patients'>Patients</h2><p class='note'>No patient was read.</p>"
    columns = [(k, t) for k, t in PATIENT_COLUMNS
               if any(row.get(k) not in (None, "") for row in rows) or k in ("patient", "group", "truth", "call")]
    head = "".join(f"<th>{t}</th>" for _, t in columns)
    body = []
    for row in rows:
        wrong = row["truth"].startswith("disease") != (row["call"] == "positive")
        body.append(("<tr class='discordant'>" if wrong else "<tr>")
                    + "".join(f"<td>{number(row.get(k))}</td>" for k, _ in columns) + "</tr>")
    return ("<h2 id='patients'>Patients</h2>"
            "<p class='note'>One row per patient and group read. Reference: disease present by the reference standard "
            "(at the group's time point); call: the patient's call under its endpoint (any finding called positive; "
            "for TIO localisation the culprit called positive; see Methods); lesion counts against the reference "
            "lesions; Krenning max: the highest Krenning score of the patient's findings in the group. Rows whose call "
            "disagrees with the reference are shaded.</p>"
            f"<div class='table-wrap'><table class='patients'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def krenning_rows(lesions: Optional[pd.DataFrame]) -> List[Dict[str, Any]]:
    """Per group and reference class: the number of found lesions of each Krenning score (0-4) and without one."""
    if lesions is None or not len(lesions) or "krenning" not in lesions:
        return []
    keys = _group_keys(lesions)
    found = lesions[lesions["found"].astype(bool)] if "found" in lesions else lesions
    rows = []
    for key, frame in found.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for truth, name in ((1, "malignant"), (0, "benign")):
            part = frame[frame["truth"].astype(int) == truth]
            if not len(part):
                continue
            scores = pd.to_numeric(part["krenning"], errors="coerce")
            row = {"group": " ".join(map(str, key[:3])) + (f" at {key[3]}" if len(key) > 3 else ""),
                   "reference": name, "lesions": int(len(part))}
            for score in range(5):
                row[f"krenning_{score}"] = int((scores == score).sum())
            row["no_score"] = int(scores.isna().sum())
            rows.append(row)
    return rows


def krenning_html(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ("<h2 id='krenning'>Krenning scores</h2><p class='note'>The study table has no Krenning scores "
                "(column <code>krenning</code>).</p>")
    header = ["Group", "Reference", "Lesions found", "0", "1", "2", "3", "4", "No score"]
    body = "".join("<tr>" + "".join(f"<td>{number(v)}</td>" for v in (
        r["group"], r["reference"], r["lesions"], *(r[f"krenning_{s}"] for s in range(5)), r["no_score"])) + "</tr>"
        for r in rows)
    return ("<h2 id='krenning'>Krenning scores</h2>"
            "<p class='note'>Found lesions per Krenning score (0 none; 1 below the liver; 2 equal to the liver; 3 "
            "above the liver; 4 above the spleen: Krenning et al., Eur J Nucl Med 1993, as "
            "<code>netpet.quant.classify.krenning_score</code> reads it), per group and reference class.</p>"
            "<div class='table-wrap'><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in header)
            + f"</tr></thead><tbody>{body}</tbody></table></div>")


# -- generic sections --------------------------------------------------------------------------------

def html_section(title: str, rows: Optional[Sequence[Mapping[str, Any]]], columns: Optional[Sequence[str]] = None,
                 note: Optional[str] = None, level: int = 2) -> str:
    """A titled table of result rows (list of dicts), whatever their columns.

    Parameters
    ----------
    title : str
        The heading (plain text; escaped).
    rows : sequence of mapping, or None
        The rows; None or empty gives "" (the section is absent) unless a note says why.
    columns : sequence of str, optional
        The columns in order (default: every key of the rows, in first-seen order).
    note : str, optional
        A sentence under the heading (HTML allowed: it comes from the code, never from data).
    level : int
        The heading level (2 or 3).

    Returns
    -------
    str
        The HTML ("" when there are no rows and no note).
    """
    rows = [r for r in (rows or []) if isinstance(r, Mapping)]
    if not rows and not note:
        return ""
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    heading = f"<h{level}>{html.escape(title)}</h{level}>"
    parts = [heading]
    if note:
        parts.append(f"<p class='note'>{note}</p>")
    if rows:
        # a column of long text (a reason, a definition) gets a minimum width so that it does not wrap a word a line
        long = {c for c in columns if max((len(str(row.get(c) or "")) for row in rows), default=0) > 60}
        # a wide table is cut into tables of at most MAX_COLUMNS columns, each repeating the first KEY_COLUMNS (which
        # name the row), so that every part fits a printed page
        columns = list(columns)
        keys, rest = columns[:KEY_COLUMNS], columns[KEY_COLUMNS:]
        step = MAX_COLUMNS - len(keys)
        chunks = [columns] if len(columns) <= MAX_COLUMNS else [keys + rest[i:i + step]
                                                                 for i in range(0, len(rest), step)]
        for number_, part in enumerate(chunks, start=1):
            head = "".join(("<th class='long'>" if c in long else "<th>") + html.escape(str(c).replace("_", " "))
                           + "</th>" for c in part)
            body = "".join("<tr>" + "".join(f"<td>{cell(row.get(c))}</td>" for c in part) + "</tr>" for row in rows)
            caption = (f"<caption class='note'>Part {number_} of {len(chunks)} (columns "
                       f"{', '.join(html.escape(str(c)) for c in part[len(keys):][:1])} to "
                       f"{html.escape(str(part[-1]))})</caption>" if len(chunks) > 1 else "")
            parts.append(f"<div class='table-wrap'><table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}"
                         "</tbody></table></div>")
    return "".join(parts)


def mapping_section(title: str, value: Mapping[str, Any], level: int = 2) -> str:
    """A dict result: its scalar entries as a two-column table, each list of dicts as a table of its own, each
    nested dict as a subsection."""
    scalars = [(k, v) for k, v in value.items() if not isinstance(v, (Mapping, list, tuple))]
    parts = [f"<h{level}>{html.escape(title)}</h{level}>"]
    if scalars:
        parts.append("<div class='table-wrap'><table><tbody>" + "".join(
            f"<tr><th>{html.escape(str(k).replace('_', ' '))}</th><td>{cell(v)}</td></tr>" for k, v in scalars)
            + "</tbody></table></div>")
    for key, item in value.items():
        name = str(key).replace("_", " ")
        if isinstance(item, (list, tuple)) and item and all(isinstance(i, Mapping) for i in item):
            parts.append(html_section(name, item, level=min(level + 1, 4)))
        elif isinstance(item, (list, tuple)) and item:
            parts.append(f"<p><strong>{html.escape(name)}</strong>: {cell(list(item))}</p>")
        elif isinstance(item, Mapping) and item:
            parts.append(mapping_section(name, item, min(level + 1, 4)))
    return "".join(parts)


#: the result keys other modules add, in report order: (path in the result, title, note, columns shown or None for
#: every column; the CSV files of netpet scores keep every column)
EXTRA_SECTIONS = (
    (("scores", "netpet_scores"), "NETPET score per patient",
     "Dual-tracer NETPET score P0&ndash;P5 (Chan et al., Theranostics 2017;7:1149-1158) from corresponding DOTATATE "
     "and FDG lesions; <em>uncertain-avidity</em>: a P2&ndash;P4 grade resting on a lesion under partial volume. "
     "Every column: netpet-scores.csv of netpet scores.",
     ("patient_id", "reader", "time_point", "modality", "grade", "flags", "deciding_lesions", "reason")),
    (("scores", "discordant"), "FDG-positive, SSTR-negative lesions",
     "Lesions avid on FDG and not on DOTATATE: the key exclusion of peptide receptor radionuclide therapy.",
     ("patient_id", "reader", "time_point", "modality", "track_id", "krenning", "fdg_suv_max", "fdg_tl_ratio",
      "region", "reason")),
    (("scores", "sstr_rads_scans"), "SSTR-RADS 1.0 per scan",
     "Overall scan impression (Werner et al., J Nucl Med 2018;59:1085-1091): proposed by the software, confirmed or "
     "overridden by the reader; both kept.",
     ("patient_id", "reader", "time_point", "modality", "tracer", "n_findings", "proposed", "reader_impression",
      "agrees", "final", "proposed_reason")),
    (("scores", "prrt"), "PRRT summary per patient",
     "A decision aid, not a decision: the Krenning distribution, the lowest-scoring target lesion, tumour-to-liver "
     "and tumour-to-spleen ratios, and the criteria applied. Every column: prrt-summary.csv of netpet scores.",
     ("patient_id", "reader", "time_point", "modality", "n_targets", "krenning_2", "krenning_3", "krenning_4",
      "lowest_lesion", "lowest_krenning", "tl_ratio_min", "ts_ratio_min", "fdg_sstr_discordant", "statement")),
    (("scores", "sstr_rads_lesions"), "SSTR-RADS 1.0 per lesion",
     "The category the software proposes from uptake, site and the anatomical correlate, and the reader's.",
     ("patient_id", "reader", "time_point", "modality", "tracer", "lesion_id", "region", "krenning",
      "anatomic_correlate", "proposed", "reader_sstr_rads", "final", "reason")),
    (("scores", "statistics", "distribution"), "Scores per group", None, None),
    (("scores", "statistics", "agreement"), "Agreement of the scores between readers and modalities", None, None),
    (("cause_tally",), "Causes of false findings (coded)", None, None),
)


def mrmc_html(mrmc: Mapping[str, Any]) -> str:
    """The multi-reader multi-case ROC comparisons (:mod:`netpet.stats.reading`): per comparison its cases, each test's
    reader-averaged AUC with its interval (random readers and cases), the difference with F, ddf and p, each reader's
    AUCs, the fixed-reader test, and every note and warning; a comparison not analysed with its reason."""
    parts = ["<h2>Multi-reader multi-case ROC</h2>",
             "<p class='note'>The readers' 5-point confidence of malignancy; Obuchowski-Rockette analysis with jackknife "
             "covariances and Hillis' denominator degrees of freedom (Obuchowski &amp; Rockette 1995; Hillis 2007, "
             "2008), as RJafroc and MRMCaov compute it. Patients are the independent cases; lesions of one patient are "
             "correlated.</p>"]
    if mrmc.get("note"):
        parts.append(f"<p>{html.escape(str(mrmc['note']))}</p>")
    for comparison in mrmc.get("comparisons") or []:
        tests = " vs ".join(html.escape(str(t)) for t in comparison.get("tests") or [])
        level = html.escape(str(comparison.get("level", "")))
        parts.append(f"<h3>{tests}, {level}s as cases</h3>")
        if "not_analysed" in comparison:
            parts.append(f"<p>Not analysed: {html.escape(str(comparison['not_analysed']))}</p>")
            continue
        result = comparison.get("result") or {}
        design = result.get("design") or {}
        rrrc = result.get("rrrc") or {}
        parts.append(f"<p>{len(design.get('readers') or [])} readers ({html.escape(', '.join(map(str, design.get('readers') or [])))}), "
                     f"{cell(design.get('cases'))} cases: {cell(design.get('abnormal'))} with and "
                     f"{cell(design.get('normal'))} without malignancy.</p>")
        rows = [{"test": t.get("test"), "AUC": t.get("estimate"), "95 % CI low": t.get("ci_low"),
                 "95 % CI high": t.get("ci_high")} for t in rrrc.get("tests") or []]
        parts.append(html_section("AUC per test (random readers and cases)", rows, level=4))
        ddf = "infinite" if rrrc.get("ddf_infinite") else rrrc.get("ddf")
        rows = [{"difference": f"{d.get('test_a')} - {d.get('test_b')}", "estimate": d.get("estimate"),
                 "95 % CI low": d.get("ci_low"), "95 % CI high": d.get("ci_high"), "F": rrrc.get("f"),
                 "ddf (Hillis)": ddf, "p": rrrc.get("p")} for d in rrrc.get("differences") or []]
        parts.append(html_section("Difference (random readers and cases)", rows,
                                  note=html.escape(str(rrrc.get("note"))) if rrrc.get("note") else None, level=4))
        rows = [{"reader": a.get("reader"), "test": a.get("test"), "AUC": a.get("auc")} for a in result.get("auc") or []]
        parts.append(html_section("AUC per reader", rows, level=4))
        frrc = result.get("frrc") or {}
        if frrc.get("p") is not None:
            statistic = (f"F = {number(frrc['f'], 3)}" if frrc.get("f") is not None
                         else f"chi-square = {number(frrc.get('chisq'), 3)}")
            parts.append(f"<p>Fixed readers, random cases: {statistic}, p = {number(frrc['p'], 4)} (a conclusion for "
                         "these readers only).</p>")
        notes = list(result.get("notes") or []) + list(result.get("warnings") or [])
        if notes:
            parts.append("<ul class='note'>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>")
    return "".join(parts)


def _at(result: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def extra_sections_html(result: Mapping[str, Any]) -> str:
    """The sections of :data:`EXTRA_SECTIONS` and ``mrmc`` that the result holds (absent keys: no section)."""
    parts = []
    for path, title, note, columns in EXTRA_SECTIONS:
        rows = _at(result, path)
        if isinstance(rows, (list, tuple)) and rows:
            shown = [c for c in columns if any(c in r for r in rows)] if columns else None
            parts.append(html_section(title, rows, shown, note=note))
    scores = result.get("scores")
    if isinstance(scores, Mapping) and scores.get("not_analysed"):
        parts.append(f"<h2>Reading standards</h2><p>Not analysed: {html.escape(str(scores['not_analysed']))}</p>")
    notes = _at(result, ("scores", "warnings"))
    if isinstance(notes, (list, tuple)) and notes:
        parts.append("".join(f"<p class='note'>Scores: {html.escape(str(n))}</p>" for n in notes))
    mrmc = result.get("mrmc")
    if isinstance(mrmc, Mapping) and mrmc:
        # the comparisons of netpet.stats.reading get their own layout; any other dict is shown as it is
        parts.append(mrmc_html(mrmc) if "comparisons" in mrmc else mapping_section("Multi-reader multi-case ROC", mrmc))
    return "".join(parts)


__all__ = ["number", "cell", "interval_warning", "not_estimable", "events_of", "warn_mark", "auc_flags", "headline",
           "headline_html", "patient_rows", "patient_table_html", "krenning_rows", "krenning_html", "html_section",
           "mapping_section", "mrmc_html", "extra_sections_html", "reference_indications", "unit_indications", "MIN_CLUSTERS", "MIN_EVENTS"]
