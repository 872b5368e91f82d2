"""Coded causes of false findings: a fixed list, a proposal per false finding with its reason, the
reader's confirmation, and the tally per group and level.

The list (:data:`CAUSES`, one code each) follows the pitfalls of somatostatin-receptor and FDG
PET the guidelines and reviews name (Hofman et al., RadioGraphics 2015;35:500-516; Bozkurt et al.,
EANM/SNMMI guideline, Eur J Nucl Med Mol Imaging 2017;44:1588-1601) and the physics of the
measurement (partial volume: Soret et al., J Nucl Med 2007;48:932-945; motion: Nehmeh and Erdi,
Semin Nucl Med 2008;38:167-176; MR-based attenuation in bone: Samarin et al., Eur J Nucl Med Mol
Imaging 2012;39:1154-1160).

Proposal (:func:`propose`): the first rule that applies, in the order of the finding's kind,
gives the code and a sentence naming the cells that made it:

* false positive: the words of the site, lesion type, region and reference standard (urinary
  activity; physiological uptake by site; fracture or degenerative change; inflammation), then a
  motion or registration flag, then PET/MR with the lesion in bone, else other;
* false negative: a motion or registration flag, PET/MR with the lesion in bone, a diameter below
  2 x FWHM or NETPET's ``partial-volume`` flag (partial volume), low SSTR expression (an SSTR tracer
  with Krenning <= 1, the ``non-avid`` flag, or an uptake ratio to the liver <= 1 without Krenning;
  an equivocal call counted negative, Krenning 2, is named as such), then the words, else other.

The diameter is the table's ``longest_diameter_mm`` (the segmented lesion), else the reference
standard's ``diameter_mm``. The FWHM is a ``fwhm_mm`` column of the table or the reference when
given, else :data:`DEFAULT_FWHM_MM` (6 mm: the order of the reconstructed resolution of clinical
whole-body PET/CT and PET/MR with the usual post-filter and the 68Ga positron range; give the
column for the scanner's measured value). Recovery is incomplete below about 2-3 x FWHM (Soret et
al. 2007), hence the 2 x FWHM limit.

Confirmation: ``false-findings.csv`` carries ``proposed_cause`` and ``proposed_reason`` (the
software's, recomputed on every run), ``cause_code`` (the code counted: the proposal until the
reader changes it) and ``cause_confirmed`` (yes/no). The reader confirms a row by writing ``yes``
in ``cause_confirmed`` (keeping or changing ``cause_code``); a ``cause_code`` other than the
proposal counts as the reader's choice and is confirmed too. The next run reads the file back
(:func:`read_cause_codes`) and keeps every confirmed code; unconfirmed rows take the new proposal.

Levels (:func:`level_false_findings`): a lesion-level false finding is a lesion unit whose call
differs from its truth. A patient-level (region-level) false finding is a patient (region) unit
whose call differs from its truth; its causes are the codes of the lesion-level false findings of
the same group within it (a TIO patient whose culprit was missed while a decoy was called positive
has both), or other when none lies within (disease known from a patient or region row only). The
tally (:func:`tally`) counts units per (level, group, kind, code): a unit with several causes counts
under each, so the counts of a level may add up to more than its false findings; ``confirmed``
counts those whose codes the reader confirmed (all of them, for a patient or region).
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import pandas as pd

from netpet.errors import printable
from netpet.stats.intervals import StatsError


@dataclass(frozen=True)
class Cause:
    """One coded cause: its code, name and definition."""

    code: str
    name: str
    definition: str


PHYSIOLOGICAL, INFLAMMATION, BONE_CHANGE, PARTIAL_VOLUME = "PHYS", "INFL", "BONE", "PVE"
LOW_SSTR, MOTION, PETMR_BONE, URINARY, OTHER = "LOWSSTR", "MOTION", "MRAC", "URINE", "OTHER"

#: the fixed list of causes, in the order of the report
CAUSES: Tuple[Cause, ...] = (
    Cause(PHYSIOLOGICAL, "physiological uptake by site",
          "Uptake of the normal tissue at a known site read as a lesion, or a lesion read as such uptake: uncinate "
          "process of the pancreas, accessory spleen (splenule), adrenal glands, pituitary, brown fat."),
    Cause(INFLAMMATION, "inflammation",
          "Uptake of inflammatory or infectious tissue (activated leucocytes express somatostatin receptors and take "
          "up FDG): reactive lymph nodes, granulomatous disease, -itis of an organ."),
    Cause(BONE_CHANGE, "fracture or degenerative change",
          "Bone remodelling: a healing fracture, degenerative change (osteophytes, arthrosis), a haemangioma or "
          "fibrous dysplasia."),
    Cause(PARTIAL_VOLUME, "partial volume below 2x FWHM",
          "A lesion smaller than twice the PET resolution (FWHM) whose uptake is underestimated by the partial-volume "
          "effect, so that it falls below the positivity rule."),
    Cause(LOW_SSTR, "low SSTR expression",
          "A tumour with somatostatin-receptor uptake at or below the liver (Krenning <= 1, or an equivocal Krenning 2 "
          "counted negative): dedifferentiated or receptor-poor disease on an SSTR tracer."),
    Cause(MOTION, "misregistration or motion",
          "Respiratory or patient motion, or misregistration between PET and CT/MR or between sessions, moving uptake "
          "off the lesion or creating a focus where there is none."),
    Cause(PETMR_BONE, "PET/MR attenuation in bone",
          "MR-based attenuation correction without bone (Dixon) underestimates the uptake of bone lesions on PET/MR "
          "(or misplaces it near bone)."),
    Cause(URINARY, "urinary activity",
          "Excreted tracer in the renal pelvis, ureter or bladder read as a lesion, or masking one."),
    Cause(OTHER, "other", "None of the above; the reader describes it in the cause column."),
)
CODES: Tuple[str, ...] = tuple(c.code for c in CAUSES)
BY_CODE: Dict[str, Cause] = {c.code: c for c in CAUSES}
#: the literature of the list (printed with it)
CAUSE_REFERENCES: Tuple[str, ...] = (
    "Hofman MS, Lau WF, Hicks RJ. Somatostatin receptor imaging with 68Ga DOTATATE PET/CT: clinical utility, normal "
    "patterns, pearls, and pitfalls in interpretation. RadioGraphics 2015;35:500-516.",
    "Bozkurt MF, Virgolini I, Balogova S, et al. Guideline for PET/CT imaging of neuroendocrine neoplasms with "
    "68Ga-DOTA-conjugated somatostatin receptor targeting peptides and 18F-DOPA. Eur J Nucl Med Mol Imaging "
    "2017;44:1588-1601.",
    "Soret M, Bacharach SL, Buvat I. Partial-volume effect in PET tumor imaging. J Nucl Med 2007;48:932-945.",
    "Nehmeh SA, Erdi YE. Respiratory motion in positron emission tomography/computed tomography: a review. Semin Nucl "
    "Med 2008;38:167-176.",
    "Samarin A, Burger C, Wollenweber SD, et al. PET/MR imaging of bone lesions - implications for PET quantification "
    "from imperfect attenuation correction. Eur J Nucl Med Mol Imaging 2012;39:1154-1160.",
    "Krenning EP, Kwekkeboom DJ, Bakker WH, et al. Somatostatin receptor scintigraphy with [111In-DTPA-D-Phe1]- and "
    "[123I-Tyr3]-octreotide. Eur J Nucl Med 1993;20:716-731 (the uptake scale against liver and spleen).",
)
#: the FWHM (mm) used when neither file gives a ``fwhm_mm`` column (see the module docstring)
DEFAULT_FWHM_MM = 6.0
#: the partial-volume limit as a multiple of the FWHM
PARTIAL_VOLUME_FACTOR = 2.0
#: tracers that image somatostatin receptors (lower case substrings of the tracer label)
SSTR_TRACERS = ("dotatate", "dotatoc", "dotanoc", "dota", "sstr", "octreo", "jr11", "somatostatin")
#: the columns whose words are read (site, lesion type, region, reference standard), in this order
TEXT_COLUMNS = ("site", "lesion_type", "table_lesion_type", "table_site", "region", "standard")
#: the columns whose words name motion or misregistration
FLAG_COLUMNS = ("flags", "warnings", "table_flags")
#: (code, pattern) of the word rules, in their order: the first match wins
WORD_RULES: Tuple[Tuple[str, str], ...] = (
    (URINARY, r"urin|bladder|ureter|renal pelvis|collecting system"),
    (PHYSIOLOGICAL, r"uncinate|splenule|splenosis|accessory spleen|physiolog|adrenal|pituitar|brown fat"),
    (BONE_CHANGE, r"fractur|degenerat|osteophyt|arthros|osteoarthr|ha?emangioma|fibrous dysplasia|schmorl"),
    (INFLAMMATION, r"inflamm|infect|sarcoid|granulom|abscess|reactive|\w+itis\b"),
)
MOTION_WORDS = r"motion|misregist|registration|respirat|breathing"
BONE_WORDS = r"\bbone|osseous|skelet|vertebra|spine|rib\b|pelvi[cs]\b|femur|humerus|skull|sacrum|ilium|iliac"
_YES = {"yes", "y", "1", "true", "confirmed"}
_NO = {"", "no", "n", "0", "false"}
#: the columns a false-findings list gains (after ``cause``)
CAUSE_COLUMNS = ("cause_code", "proposed_cause", "proposed_reason", "cause_confirmed")


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _number(value: Any) -> Optional[float]:
    text = _text(value)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _words(row: Mapping[str, Any]) -> Optional[Tuple[str, str, str, str]]:
    """(code, column, value, matched word) of the first word rule that applies to the row's text columns."""
    for code, pattern in WORD_RULES:
        for column in TEXT_COLUMNS:
            value = _text(row.get(column))
            if code != URINARY and column == "standard" and value.startswith("no reference lesion"):
                continue
            match = re.search(pattern, value, flags=re.IGNORECASE)
            if match:
                return code, column, value, match.group(0)
    return None


def _motion(row: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    for column in FLAG_COLUMNS:
        value = _text(row.get(column))
        if value and re.search(MOTION_WORDS, value, flags=re.IGNORECASE):
            return column, value
    return None


def _in_bone(row: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    for column in ("region", "site", "lesion_type", "table_lesion_type"):
        value = _text(row.get(column))
        if value and re.search(BONE_WORDS, value, flags=re.IGNORECASE):
            return column, value
    return None


def fwhm_mm(row: Mapping[str, Any]) -> Tuple[float, str]:
    """(FWHM in mm, where it came from) of a row: a ``fwhm_mm`` cell of the table or the reference standard,
    else :data:`DEFAULT_FWHM_MM`."""
    for column in ("table_fwhm_mm", "fwhm_mm"):
        value = _number(row.get(column))
        if value is not None and value > 0:
            return value, f"column {column}"
    return DEFAULT_FWHM_MM, f"the default for {_text(row.get('modality')) or 'PET'} (no fwhm_mm column)"


def _diameter(row: Mapping[str, Any]) -> Optional[Tuple[float, str]]:
    for column in ("longest_diameter_mm", "table_longest_diameter_mm", "diameter_mm"):
        value = _number(row.get(column))
        if value is not None and value > 0:
            return value, column
    return None


def _sstr(row: Mapping[str, Any]) -> bool:
    tracer = _text(row.get("tracer")).lower()
    return any(t in tracer for t in SSTR_TRACERS)


def _low_sstr(row: Mapping[str, Any]) -> Optional[str]:
    """The reason sentence when a missed lesion on an SSTR tracer has low receptor expression, else None."""
    if not _sstr(row):
        return None
    tracer = _text(row.get("tracer"))
    krenning = _number(row.get("krenning"))
    call = _text(row.get("call")).lower() or _text(row.get("finding_call")).lower()
    if krenning is not None and krenning <= 1:
        return (f"Krenning {krenning:g} on {tracer} (uptake below the liver): low somatostatin-receptor expression.")
    if call == "equivocal":
        return (f"equivocal call on {tracer} (uptake equal to the liver, Krenning 2) counted negative: low "
                "somatostatin-receptor expression at the positivity limit.")
    flags = " ".join(_text(row.get(c)) for c in FLAG_COLUMNS).lower()
    if "non-avid" in flags:
        return f"flags name non-avid on {tracer}: low somatostatin-receptor expression."
    if krenning is None:
        ratio = _number(row.get("tl_ratio"))
        if ratio is not None and ratio <= 1:
            return (f"tumour-to-liver ratio {ratio:.2f} <= 1 on {tracer} (no Krenning score): uptake at or below the "
                    "liver, low somatostatin-receptor expression.")
    return None


def propose(row: Mapping[str, Any]) -> Tuple[str, str]:
    """The proposed cause of a false finding: (code of :data:`CAUSES`, a reason sentence naming the cells).

    Parameters
    ----------
    row : mapping
        A false finding with its unit's columns: ``kind`` (``false positive`` / ``false negative``),
        ``modality``, ``tracer``, ``region``, ``standard``, and when known ``site``, ``lesion_type``,
        ``krenning``, ``tl_ratio``, ``call``, ``flags``, ``warnings``, ``longest_diameter_mm`` or
        ``diameter_mm`` (mm) and ``fwhm_mm`` (mm).

    Returns
    -------
    (str, str)
        The code and the reason (the rules of the module docstring); :data:`OTHER` with the reason
        that no rule applied.
    """
    negative = _text(row.get("kind")) == "false negative"
    modality = _text(row.get("modality"))
    words = _words(row)

    def by_words() -> Optional[Tuple[str, str]]:
        if not words:
            return None
        code, column, value, word = words
        verb = "the lesion taken for it or masked by it" if negative else "read as a lesion"
        return code, f"{column} {printable(value)} names {BY_CODE[code].name} ('{word}'), {verb}."

    def by_motion() -> Optional[Tuple[str, str]]:
        flagged = _motion(row)
        if not flagged:
            return None
        return MOTION, f"{flagged[0]} {printable(flagged[1])} names motion or misregistration."

    def by_petmr_bone() -> Optional[Tuple[str, str]]:
        bone = _in_bone(row)
        if "MR" not in modality.upper() or not bone:
            return None
        effect = "underestimates its uptake" if negative else "can misplace uptake near it"
        return PETMR_BONE, (f"PET/MR ({printable(modality)}) and {bone[0]} {printable(bone[1])}: MR-based attenuation "
                            f"without bone {effect}.")

    if negative:
        rules = [by_motion, by_petmr_bone]
    else:
        rules = [by_words, by_motion, by_petmr_bone]
    for rule in rules:
        found = rule()
        if found:
            return found
    if negative:
        flags = " ".join(_text(row.get(c)) for c in FLAG_COLUMNS).lower()
        if "partial-volume" in flags or "partial volume" in flags:
            return PARTIAL_VOLUME, "flags name partial-volume (NETPET's segmentation flag): partial volume."
        diameter = _diameter(row)
        if diameter is not None:
            fwhm, source = fwhm_mm(row)
            limit = PARTIAL_VOLUME_FACTOR * fwhm
            if diameter[0] < limit:
                return PARTIAL_VOLUME, (f"{diameter[1]} {diameter[0]:g} mm < {PARTIAL_VOLUME_FACTOR:g} x FWHM = "
                                        f"{limit:g} mm (FWHM {fwhm:g} mm, {source}): partial volume.")
        low = _low_sstr(row)
        if low:
            return LOW_SSTR, low
        found = by_words()
        if found:
            return found
    return OTHER, ("no rule of the list applies (site, lesion type, flags, size, uptake): the reader describes the "
                   "cause.")


def _confirmed(value: Any, where: str) -> bool:
    text = _text(value).lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise StatsError(f"{where}: column cause_confirmed is {printable(_text(value))}; write yes (the reader confirms "
                     "cause_code) or no, or leave it empty.")


def check_code(value: Any, where: str) -> str:
    """A cause code cleaned (case ignored; the name of a cause reads as its code); '' stays ''.

    Raises
    ------
    StatsError
        Any other text, naming ``where`` and the codes.
    """
    text = _text(value)
    if not text:
        return ""
    for cause in CAUSES:
        if text.upper() == cause.code or text.lower() == cause.name.lower():
            return cause.code
    raise StatsError(f"{where}: column cause_code is {printable(text)}; write one of {', '.join(CODES)} "
                     f"({'; '.join(f'{c.code} {c.name}' for c in CAUSES)}), or leave it empty.")


def read_cause_codes(path: str, key) -> Dict[Tuple[str, ...], Tuple[str, bool]]:
    """The reader's codes in a previous ``false-findings.csv``: {key: (code, confirmed)} of its confirmed rows.

    A row is confirmed when ``cause_confirmed`` says yes or its ``cause_code`` differs from
    ``proposed_cause`` (the reader changed it). A file without the cause-code columns (written before
    them) gives nothing; a missing file gives nothing.

    Parameters
    ----------
    path : str
        The false-findings CSV.
    key : callable
        The key of a row (:func:`netpet.stats.analysis.false_finding_key`).

    Raises
    ------
    StatsError
        An unreadable file, an unknown cause code or a cause_confirmed that is not yes/no, naming the
        file, row and value.
    """
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StatsError(f"Cannot read the causes in {path}: {exc}.") from exc
    out: Dict[Tuple[str, ...], Tuple[str, bool]] = {}
    for i, row in enumerate(rows):
        if "cause_code" not in row:
            return {}
        where = f"{path} row {i + 2}"
        code = check_code(row.get("cause_code"), where)
        proposed = check_code(row.get("proposed_cause"), where) if row.get("proposed_cause") else ""
        confirmed = _confirmed(row.get("cause_confirmed"), where)
        if code and (confirmed or code != proposed):
            out[key(row)] = (code, True)
    return out


def annotate(row: Dict[str, Any], unit: Mapping[str, Any], confirmed: Mapping[Tuple[str, ...], Tuple[str, bool]],
             key: Tuple[str, ...]) -> None:
    """Fill :data:`CAUSE_COLUMNS` of a false-finding row (in place) from its unit and the reader's codes."""
    # the row's cells first (its call as written), the unit's other columns (site, diameter, fwhm_mm ...) behind
    merged = {**unit, **{k: v for k, v in row.items() if v not in ("", None)}, "call": row.get("call", "")}
    code, reason = propose(merged)
    row["proposed_cause"], row["proposed_reason"] = code, reason
    kept = confirmed.get(key)
    if kept:
        row["cause_code"], row["cause_confirmed"] = kept[0], "yes"
    else:
        row["cause_code"], row["cause_confirmed"] = code, "no"


def level_false_findings(units: Mapping[str, pd.DataFrame], lesion_falses: pd.DataFrame,
                         group_keys: Sequence[str]) -> Dict[str, List[Dict[str, Any]]]:
    """The patient- and region-level false findings with their causes (the module docstring's definition).

    Returns
    -------
    dict
        ``patient`` and ``region``: rows with the group keys, ``patient_id`` (and ``region``),
        ``kind``, ``cause_codes`` (the codes of the lesion-level false findings within, ``;``-joined,
        :data:`OTHER` when none), ``lesions`` (their lesion ids) and ``confirmed`` (bool: all confirmed).
    """
    out: Dict[str, List[Dict[str, Any]]] = {}
    falses = lesion_falses.to_dict("records") if len(lesion_falses) else []
    for level, extra in (("patient", ()), ("region", ("region",))):
        frame = units.get(level)
        rows: List[Dict[str, Any]] = []
        if frame is not None and len(frame):
            keys = ("patient_id", *group_keys, *extra)
            # the lesion-level false findings of each unit, in their order, found by key (one pass over them: a scan
            # of every false finding per wrong unit was quadratic in the size of the study)
            of_unit: Dict[Tuple[str, ...], List[Dict[str, Any]]] = {}
            for f in falses:
                of_unit.setdefault(tuple(str(f.get(k, "")) for k in keys), []).append(f)
            wrong = frame[frame["truth"] != frame["call"]]
            for unit in wrong.to_dict("records"):
                within = of_unit.get(tuple(str(unit.get(k, "")) for k in keys), [])
                codes = list(dict.fromkeys(f["cause_code"] for f in within)) or [OTHER]
                rows.append({**{k: unit[k] for k in (*group_keys, "patient_id", *extra)},
                             "kind": "false negative" if unit["truth"] == 1 else "false positive",
                             "cause_codes": "; ".join(codes),
                             "lesions": "; ".join(str(f["lesion_id"]) for f in within),
                             "confirmed": bool(within) and all(f["cause_confirmed"] == "yes" for f in within)})
        out[level] = rows
    return out


def tally(lesion_falses: pd.DataFrame, levels: Mapping[str, List[Dict[str, Any]]],
          group_keys: Sequence[str]) -> List[Dict[str, Any]]:
    """Counts per (level, group, kind, cause code): ``count`` units, ``confirmed`` of them confirmed.

    A patient or region with several causes counts under each (see the module docstring)."""
    records: List[Dict[str, Any]] = []
    for row in (lesion_falses.to_dict("records") if len(lesion_falses) else []):
        records.append({"level": "lesion", **{k: row.get(k, "") for k in group_keys}, "kind": row["kind"],
                        "cause_code": row["cause_code"], "confirmed": row["cause_confirmed"] == "yes"})
    for level in ("patient", "region"):
        for row in levels.get(level, []):
            for code in row["cause_codes"].split("; "):
                records.append({"level": level, **{k: row[k] for k in group_keys}, "kind": row["kind"],
                                "cause_code": code, "confirmed": row["confirmed"]})
    if not records:
        return []
    frame = pd.DataFrame(records)
    columns = ["level", *group_keys, "kind", "cause_code"]
    counted = frame.groupby(columns, sort=False).agg(count=("confirmed", "size"), confirmed=("confirmed", "sum"))
    counted = counted.reset_index()
    counted["level_order"] = counted["level"].map({"patient": 0, "lesion": 1, "region": 2})
    counted["code_order"] = counted["cause_code"].map({c: i for i, c in enumerate(CODES)})
    counted = counted.sort_values(["level_order", *group_keys, "kind", "code_order"]).drop(
        columns=["level_order", "code_order"])
    counted["cause_name"] = counted["cause_code"].map(lambda c: BY_CODE[c].name)
    return [{**r, "count": int(r["count"]), "confirmed": int(r["confirmed"])} for r in counted.to_dict("records")]


def cause_list() -> List[Dict[str, str]]:
    """The fixed list as rows (code, name, definition) for the report."""
    return [{"code": c.code, "name": c.name, "definition": c.definition} for c in CAUSES]


__all__ = ["CAUSES", "CODES", "CAUSE_COLUMNS", "CAUSE_REFERENCES", "DEFAULT_FWHM_MM", "propose", "read_cause_codes",
           "annotate", "level_false_findings", "tally", "cause_list", "check_code", "fwhm_mm"]
