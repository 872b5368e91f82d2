"""SSTR-RADS 1.0 per finding and per scan: the software's proposal beside the reader's category.

Source: Werner RA, Solnes LB, Javadi MS, et al., "SSTR-RADS version 1.0 as a reporting system for SSTR PET imaging
and selection of potential PRRT candidates: a proposed standardization framework", J Nucl Med 2018;59:1085-1091;
its interobserver study, Werner RA, Derlin T, Rowe SP, et al., J Nucl Med 2021;62:514-520 [from memory]; and the
sister system PSMA-RADS 1.0 (Rowe SP, Pienta KJ, Pomper MG, Gorin MA, J Nucl Med 2018;59:479-485), which SSTR-RADS
mirrors category by category (Werner RA et al., J Clin Med 2019;8:1060, "structured in a reciprocal fashion"). The
paper's full text could not be read here; the category meanings below are from memory of it and marked so. The
ten categories agree with :data:`netpet.schema.SSTR_RADS_CATEGORIES`.

Categories (Werner 2018 [from memory])
--------------------------------------
* **1A** normal biodistribution, no abnormal uptake; **1B** benign lesion characterised on biopsy or anatomic
  imaging (with or without uptake);
* **2A** likely benign: low-level uptake in a soft-tissue site atypical for NET; **2B** likely benign: low-level
  uptake in bone, not suggestive of metastasis;
* **3A** equivocal uptake in a soft-tissue site typical of NET (e.g. a lymph node); **3B** equivocal uptake in bone;
  **3C** intense uptake in a site highly atypical for NET (a non-NET tumour or a benign process to work up);
  **3D** a lesion suggestive of malignancy on anatomic imaging without uptake (possibly dedifferentiated tumour);
* **4** NET highly likely: intense uptake in a site typical of NET without a definite anatomic finding;
* **5** NET almost certainly present: intense uptake in a site typical of NET with a corresponding anatomic lesion.

Overall scan impression: the highest category among the scan's findings, ordered as the categories are listed
(1A < 1B < 2A < 2B < 3A < 3B < 3C < 3D < 4 < 5) [from memory of Werner 2018, as PSMA-RADS 1.0 bases the overall
impression on the highest-scoring finding]. The three-C/D letters have no order of NET likelihood among themselves;
NETPET's order (the listed one) is a tie-break only, and the reason names every category-3 letter present.

Operational rule of the proposal (:func:`propose`; NETPET's reading of the verbal categories)
--------------------------------------------------------------------------------------------
Uptake, from the row's Krenning score (or its liver ``call`` when no score is given, as
:func:`netpet.clinical.netpet_score.row_krenning`): **intense** is Krenning 3-4 (above the liver: the study's
"clearly positive"); **equivocal** is Krenning 2 (equal to the liver); **low** is Krenning 1 (below the liver);
**none** is Krenning 0.

Site, from ``region`` and ``lesion_type``: **bone** when either names a bone (``bone``, ``skeleton``,
``vertebra``, ``bone metastasis``...); otherwise soft tissue. A soft-tissue site is **typical** of NET when it is a
gastroenteropancreatic organ (:data:`netpet.clinical.staging.PRIMARY_SITES` and their synonyms), the liver, a lymph
node, the lung, the peritoneum or mesentery (the usual sites of primary NETs and their metastases); any other
region (soft tissue, muscle, breast, brain, thyroid, adrenal, other, or text NETPET does not know) is **atypical**.
Bone is a typical NET site. A finding whose ``lesion_type`` is ``TIO culprit tumour`` is atypical for NET (a
phosphaturic mesenchymal tumour, not a NET).

The anatomic correlate is the reader's ``anatomic_correlate`` (none, lesion, benign; empty: not recorded).

Rules, first that applies:

1. ``lesion_type`` physiological uptake -> 1A (normal biodistribution);
2. ``anatomic_correlate`` benign (or ``lesion_type`` benign) -> 1B;
3. uptake none: an anatomic lesion -> 3D; otherwise 1A (nothing abnormal);
4. uptake intense: atypical site -> 3C; typical site with an anatomic lesion -> 5; otherwise -> 4 (without a
   recorded correlate the reason says that 5 needs one);
5. uptake equivocal (Krenning 2): atypical soft-tissue site -> 2A; typical soft-tissue site -> 3A; bone -> 3B;
6. uptake low (Krenning 1): with an anatomic lesion (or correlate not recorded), typical soft tissue -> 3A, bone ->
   3B; without one (correlate none), or at an atypical soft-tissue site -> 2A (soft tissue) / 2B (bone).

A row without Krenning and call gets no proposal ('' with the reason). The reader's ``sstr_rads`` confirms or
overrides: both are kept (``proposed``, ``reader``, ``agrees``), and the **final** category is the reader's when
given, else the proposal.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from netpet.clinical.netpet_score import row_krenning, time_point_of, tracer_kind
from netpet.clinical.staging import PRIMARY_SITES
from netpet.schema import SSTR_RADS_CATEGORIES, SchemaError, check_sstr_rads, clean_label, is_retracted

#: category order for the scan impression (the listed order of SSTR-RADS 1.0)
ORDER: Dict[str, int] = {c: i for i, c in enumerate(SSTR_RADS_CATEGORIES)}

BONE_WORDS = ("bone", "skelet", "vertebra", "spine", "spinal", "sacrum", "sacral", "pelvis", "pelvic bone", "ilium",
              "iliac bone", "rib", "sternum", "skull", "femur", "femoral", "humerus", "scapula", "clavicle", "tibia",
              "fibula", "radius", "ulna", "marrow", "osseous")
_TYPICAL_SOFT = {"liver", "hepatic", "liver metastasis", "lymph nodes", "lymph node", "nodes", "node", "nodal",
                 "lymph node metastasis", "lung", "lungs", "bronchus", "bronchial", "peritoneum", "peritoneal",
                 "mesentery", "mesenteric", "omentum"}
_TYPICAL_SOFT |= set(PRIMARY_SITES) | {w for words in PRIMARY_SITES.values() for w in words}
_ATYPICAL_TYPES = ("tio culprit tumour", "tio culprit tumor", "tio culprit", "phosphaturic mesenchymal tumour",
                   "phosphaturic mesenchymal tumor")

LESION_COLUMNS: Tuple[str, ...] = (
    "patient_id", "session_id", "modality", "tracer", "reader", "time_point", "lesion_id", "region", "lesion_type",
    "krenning", "anatomic_correlate", "proposed", "reason", "reader_sstr_rads", "agrees", "final",
)
SCAN_COLUMNS: Tuple[str, ...] = (
    "patient_id", "session_id", "modality", "tracer", "reader", "time_point", "n_findings", "proposed",
    "proposed_reason", "reader_impression", "reader_reason", "agrees", "final", "deciding_lesions",
)


def _words(text: Any) -> str:
    return " ".join(clean_label(text).lower().replace("_", " ").split())


def is_bone(row: Mapping[str, Any]) -> bool:
    """True when the row's region or lesion type names a bone (:data:`BONE_WORDS`)."""
    text = f"{_words(row.get('region'))} | {_words(row.get('lesion_type'))}"
    return any(word in text for word in BONE_WORDS)


def is_typical_site(row: Mapping[str, Any]) -> bool:
    """True when the row's site is typical of NET (module docstring): bone, or a typical soft-tissue region."""
    if _words(row.get("lesion_type")) in _ATYPICAL_TYPES:
        return False
    if is_bone(row):
        return True
    region = _words(row.get("region"))
    if region in _TYPICAL_SOFT:
        return True
    lesion_type = _words(row.get("lesion_type"))
    return lesion_type in ("liver metastasis", "lymph node metastasis", "primary")


def propose(row: Mapping[str, Any]) -> Tuple[str, str]:
    """The proposed SSTR-RADS 1.0 category of one SSTR PET finding and the reason (module docstring).

    Parameters
    ----------
    row : mapping
        A study-table row (``krenning`` or ``call``, ``region``, ``lesion_type``, ``anatomic_correlate``).

    Returns
    -------
    (str, str)
        The category (one of :data:`netpet.schema.SSTR_RADS_CATEGORIES`), or '' when the row carries neither a
        Krenning score nor a call; and the reason sentence.
    """
    lesion_type = _words(row.get("lesion_type"))
    correlate = _words(row.get("anatomic_correlate"))
    if lesion_type in ("physiological uptake", "physiological"):
        return "1A", "physiological uptake (normal biodistribution)"
    if correlate == "benign" or lesion_type == "benign":
        what = "anatomic correlate" if correlate == "benign" else "lesion type"
        return "1B", f"benign lesion characterised on anatomic imaging (reader's {what} benign)"
    krenning = row_krenning(row)
    if krenning is None:
        return "", "no Krenning score and no call to read the uptake from"
    bone = is_bone(row)
    typical = is_typical_site(row)
    site = "bone" if bone else f"{'typical' if typical else 'atypical'} soft-tissue site"
    region = clean_label(row.get("region")) or "region not given"
    where = f"{site} ({region})"
    lesion = correlate == "lesion"
    if krenning == 0:
        if lesion:
            return "3D", f"anatomic lesion without uptake (Krenning 0) at {where}"
        return "1A", f"no uptake (Krenning 0) and no anatomic lesion at {where}"
    if krenning >= 3:
        uptake = f"intense uptake (Krenning {krenning}, above the liver)"
        if not typical:
            return "3C", f"{uptake} at a site atypical for NET: {where}"
        if lesion:
            return "5", f"{uptake} at a {where} with a corresponding anatomic lesion"
        if correlate == "none":
            return "4", f"{uptake} at a {where} without an anatomic finding"
        return "4", f"{uptake} at a {where}; anatomic correlate not recorded (5 needs a corresponding lesion)"
    if krenning == 2:
        uptake = "equivocal uptake (Krenning 2, equal to the liver)"
        if bone:
            return "3B", f"{uptake} in {where}"
        if typical:
            return "3A", f"{uptake} at a {where}"
        return "2A", f"{uptake} at an {where}"
    uptake = "low-level uptake (Krenning 1, below the liver)"
    if bone:
        if correlate == "none":
            return "2B", f"{uptake} in {where} without an anatomic lesion"
        return "3B", f"{uptake} in {where} {'with an anatomic lesion' if lesion else '(anatomic correlate not recorded)'}"
    if typical and correlate != "none":
        return "3A", f"{uptake} at a {where} {'with an anatomic lesion' if lesion else '(anatomic correlate not recorded)'}"
    qualifier = "without an anatomic lesion" if correlate == "none" else "at a site atypical for NET"
    return "2A", f"{uptake} at a {where}, {qualifier}"


def scan_impression(categories: Iterable[Any]) -> Tuple[str, str]:
    """The overall SSTR-RADS impression of one scan: the highest of its findings' categories (module docstring).

    Parameters
    ----------
    categories : iterable
        The findings' categories (text; '' and None are skipped), or ``(lesion_id, category)`` pairs, or row
        mappings with ``lesion_id`` and ``sstr_rads``.

    Returns
    -------
    (str, str)
        The impression ('' when no finding has a category) and the reason naming the deciding findings.

    Raises
    ------
    netpet.schema.SchemaError
        A category that is not SSTR-RADS 1.0.
    """
    items: List[Tuple[str, str]] = []
    for i, item in enumerate(categories):
        if isinstance(item, Mapping):
            lesion, value = clean_label(item.get("lesion_id")) or f"#{i + 1}", item.get("sstr_rads")
        elif isinstance(item, (tuple, list)):
            lesion, value = clean_label(item[0]), item[1]
        else:
            lesion, value = f"#{i + 1}", item
        category = check_sstr_rads(value)
        if category:
            items.append((lesion, category))
    if not items:
        return "", "no finding with an SSTR-RADS category"
    top = max(items, key=lambda x: ORDER[x[1]])[1]
    deciding = [lesion for lesion, c in items if c == top]
    threes = sorted({c for _, c in items if c.startswith("3")}, key=ORDER.get)
    note = f"; category 3 findings: {', '.join(threes)}" if len(threes) > 1 or (threes and top != threes[0]) else ""
    plural = "s" if len(deciding) > 1 else ""
    return top, f"highest category {top} of {len(items)} finding{'s' if len(items) != 1 else ''} (finding{plural} " \
                f"{', '.join(deciding)}){note}"


def lesion_rows(rows: Iterable[Mapping[str, Any]], warnings: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """The proposal beside the reader's category for every active SSTR PET finding (rows of :data:`LESION_COLUMNS`).

    A reader's ``sstr_rads`` that is not SSTR-RADS 1.0 is kept out (empty) with a warning naming the finding.
    """
    out: List[Dict[str, Any]] = []
    for row in rows:
        if is_retracted(row) or tracer_kind(row.get("tracer")) != "sstr":
            continue
        proposed, reason = propose(row)
        where = (f"patient {clean_label(row.get('patient_id'))}, session {clean_label(row.get('session_id'))}, "
                 f"reader {clean_label(row.get('reader'))}, finding {clean_label(row.get('lesion_id'))}: ")
        try:
            reader = check_sstr_rads(row.get("sstr_rads"), where)
        except SchemaError as exc:
            reader = ""
            if warnings is not None:
                warnings.append(f"{exc} (left out of the comparison)")
        krenning = row_krenning(row)
        out.append({
            "patient_id": clean_label(row.get("patient_id")), "session_id": clean_label(row.get("session_id")),
            "modality": clean_label(row.get("modality")), "tracer": clean_label(row.get("tracer")),
            "reader": clean_label(row.get("reader")), "time_point": time_point_of(row),
            "lesion_id": clean_label(row.get("lesion_id")), "region": clean_label(row.get("region")),
            "lesion_type": clean_label(row.get("lesion_type")), "krenning": "" if krenning is None else krenning,
            "anatomic_correlate": clean_label(row.get("anatomic_correlate")).lower(), "proposed": proposed,
            "reason": reason, "reader_sstr_rads": reader,
            "agrees": (reader == proposed) if reader and proposed else None,
            "final": reader or proposed,
        })
    return out


def scan_rows(lesions: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The scan impression of every SSTR PET read (patient, session, reader) from :func:`lesion_rows` output: the
    impression of the proposals, of the reader's categories (where the reader gave any), their agreement and the final
    impression (of the final categories). Rows of :data:`SCAN_COLUMNS`."""
    groups: Dict[Tuple[str, ...], List[Mapping[str, Any]]] = {}
    for row in lesions:
        key = tuple(row[c] for c in ("patient_id", "session_id", "modality", "tracer", "reader", "time_point"))
        groups.setdefault(key, []).append(row)
    out: List[Dict[str, Any]] = []
    for key, items in sorted(groups.items()):
        proposed, proposed_reason = scan_impression((r["lesion_id"], r["proposed"]) for r in items)
        reader, reader_reason = scan_impression((r["lesion_id"], r["reader_sstr_rads"]) for r in items)
        missing = sum(1 for r in items if not r["reader_sstr_rads"])
        if reader and missing:
            reader_reason += f"; {missing} finding{'s' if missing != 1 else ''} without the reader's category"
        final, _ = scan_impression((r["lesion_id"], r["final"]) for r in items)
        final_lesions = [r["lesion_id"] for r in items if r["final"] == final] if final else []
        out.append(dict(zip(("patient_id", "session_id", "modality", "tracer", "reader", "time_point"), key),
                        n_findings=len(items), proposed=proposed, proposed_reason=proposed_reason,
                        reader_impression=reader, reader_reason=reader_reason,
                        agrees=(reader == proposed) if reader and proposed else None, final=final,
                        deciding_lesions=";".join(final_lesions)))
    return out
