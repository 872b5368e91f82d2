"""Per-patient N and M categories of gastroenteropancreatic neuroendocrine tumours (GEP-NETs).

Sources (the rules below are written from memory of these texts; they could not be checked against
the printed pages here and are marked so):

* AJCC Cancer Staging Manual, 8th edition (Amin MB et al., eds.; Springer 2017), part
  "Neuroendocrine Tumors": chapters 29 (stomach), 30 (duodenum and ampulla of Vater),
  31 (jejunum and ileum), 32 (appendix), 33 (colon and rectum), 34 (pancreas) [from memory].
* ENETS TNM: Rindi G, Klöppel G, Alhman H, et al., "TNM staging of foregut (neuro)endocrine
  tumors: a consensus proposal including a grading system", Virchows Arch 2006;449:395-401;
  Rindi G, Klöppel G, Couvelard A, et al., "TNM staging of midgut and hindgut (neuro)endocrine
  tumors: a consensus proposal including a grading system", Virchows Arch 2007;451:757-762
  [from memory].

Rules
-----
N (regional lymph nodes)
    ``N0``: no positive regional node; ``N1``: at least one positive regional node. The AJCC 8th
    N2 of jejuno-ileal NETs (12 or more nodes, or mesenteric masses > 2 cm) needs node counts and
    sizes that a region/site call does not carry, so N2 is reported as N1 (N+) here [from memory].
    Which nodal stations are regional depends on the primary site: :data:`REGIONAL_STATIONS`
    (from memory of the AJCC 8th chapters 29-34, which refer to the regional nodes of the
    carcinomas of the same organ). A positive node at a station that is not regional for the
    primary is a distant (non-regional) node and counts as an extrahepatic metastasis (M1b);
    AJCC 8th names "nonregional lymph node" among the M1b sites [from memory].
M (distant metastasis), AJCC 8th for all GEP-NET chapters [from memory]
    ``M0`` none; ``M1a`` metastasis confined to the liver; ``M1b`` metastases in at least one
    extrahepatic site (e.g. lung, ovary, nonregional lymph node, peritoneum, bone); ``M1c`` both
    hepatic and extrahepatic metastases. ENETS 2006/2007 has M0/M1 only; the subdivision is the
    AJCC 8th edition's.
Findings
    A finding is a row with ``patient_id``, ``region``, ``site`` and ``call`` (positive, equivocal
    or negative; also 1/0, yes/no, true/false). Only positive calls count; ``equivocal`` counts as
    the ``equivocal`` argument says (default ``"negative"``, as ``netpet stats --equivocal``: the
    protocol's "clearly positive"). The region says what the finding is:
    :data:`HEPATIC_REGIONS` -> hepatic metastasis; :data:`NODAL_REGIONS` -> a lymph node, whose
    station is read from ``site`` (:data:`STATION_SYNONYMS`); the organ of the patient's own
    primary (:data:`PRIMARY_SITES`) -> the primary tumour (T, ignored for N and M; multifocal
    jejuno-ileal tumours are T as well); any other known region (:data:`EXTRAHEPATIC_REGIONS`,
    and the GEP organs other than the primary's) -> extrahepatic metastasis. With an unknown primary
    a finding in a GEP organ is read as the (candidate) primary, T, not M: a metastasis of a NET to
    the pancreas or the bowel from elsewhere is rare, and a reader who finds such a lesion in a
    patient without known primary reports it as the primary (NETPET's convention, no staging manual
    rule; counted in ``primary_candidates``). An unknown region or station is refused
    (:class:`StagingError`): a typo must not become M1b.
Primary
    ``primary`` names the patient's primary site (:data:`PRIMARY_SITES`, or a synonym). Empty (or
    "unknown", "CUP") is an unknown primary: M is still staged, N only where no positive node needs
    the primary to be told regional or distant. A primary for which the GEP-NET TNM does not apply
    (:data:`NOT_APPLICABLE_PRIMARIES`: tumour-induced osteomalacia, whose culprit is a phosphaturic
    mesenchymal tumour, not a metastasis; "not applicable") leaves the patient unstaged (N = M =
    None) with that reason: its culprit lesion in a bone would otherwise become M1b. The contract of
    the reference standard also allows an empty primary for TIO; such a patient is staged as an
    unknown primary, so write ``TIO`` to keep it out.
Patients
    A patient read with no positive finding is N0 M0. A patient not read (not in ``read``) gets
    N = M = None. A patient whose primary is unknown (carcinoma of unknown primary) or whose
    positive node has no station gets N = None (regional or distant cannot be told) and an M only
    where it does not depend on those nodes; the reason is given.
Stage group (coarse; :func:`stage_group`)
    In every AJCC 8th GEP-NET chapter any M1 is stage IV, and any N1 M0 is stage III (IIIB for
    colon/rectum), while N0 M0 is stage I, II or III by T alone [from memory]. Without T only the
    coarse group "N0M0" (stage I-III, by T), "III" (N1 M0) and "IV" (M1) is safe; that is what
    :func:`stage_group` returns.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import pandas as pd

from netpet.errors import NetpetError, printable

N_CATEGORIES = ("N0", "N1")
M_CATEGORIES = ("M0", "M1a", "M1b", "M1c")
#: the coarse stage group that needs no T (see the module docstring)
STAGE_GROUPS = ("N0M0", "III", "IV")
EQUIVOCAL_RULES = ("negative", "positive")


class StagingError(NetpetError):
    """Findings or primaries that cannot be staged as given."""


#: canonical primary sites and the words (lower case) that name them, as a region or a site
PRIMARY_SITES: Dict[str, Tuple[str, ...]] = {
    "stomach": ("stomach", "gastric"),
    "duodenum": ("duodenum", "duodenal", "ampulla", "ampulla of vater", "ampullary", "periampullary"),
    "jejunum-ileum": ("small bowel", "small intestine", "jejunum", "ileum", "terminal ileum", "jejunal", "ileal",
                      "midgut"),
    "appendix": ("appendix", "appendiceal"),
    "colon-rectum": ("colon", "rectum", "colorectal", "large bowel", "sigmoid", "caecum", "cecum", "rectal",
                     "colonic"),
    "pancreas": ("pancreas", "pancreatic", "pancreatic head", "pancreatic body", "pancreatic tail",
                 "uncinate process"),
}

#: canonical nodal stations and their synonyms (lower case; a site naming "X node(s)" or "X lymph node(s)"
#: is read as X)
STATION_SYNONYMS: Dict[str, Tuple[str, ...]] = {
    "perigastric": ("perigastric", "lesser curvature", "greater curvature", "gastroepiploic", "right gastric",
                    "left gastric", "gastric"),
    "pyloric": ("pyloric", "suprapyloric", "infrapyloric", "subpyloric"),
    "celiac": ("celiac", "coeliac", "celiac trunk", "celiac axis"),
    "common hepatic": ("common hepatic", "common hepatic artery", "hepatic artery"),
    "splenic": ("splenic", "splenic artery", "splenic hilum", "splenic hilar"),
    "hepatoduodenal": ("hepatoduodenal", "hepatoduodenal ligament", "hepatic hilum", "porta hepatis", "portal",
                       "portal vein", "pericholedochal", "common bile duct", "portocaval"),
    "peripancreatic": ("peripancreatic", "pancreaticoduodenal", "retropancreatic", "gastroduodenal",
                       "periduodenal", "duodenal"),
    "superior mesenteric": ("superior mesenteric", "superior mesenteric artery", "superior mesenteric vein", "sma",
                            "smv", "mesenteric root"),
    "mesenteric": ("mesenteric", "jejunal mesenteric", "ileal mesenteric", "small bowel mesenteric"),
    "ileocolic": ("ileocolic", "periappendiceal", "mesoappendiceal", "appendiceal", "posterior cecal",
                  "posterior caecal", "cecal", "caecal"),
    "colic": ("pericolic", "right colic", "middle colic", "left colic", "colic", "epicolic", "paracolic"),
    "inferior mesenteric": ("inferior mesenteric", "inferior mesenteric artery", "sigmoid mesenteric", "sigmoid",
                            "superior rectal", "superior hemorrhoidal"),
    "perirectal": ("perirectal", "mesorectal", "rectal"),
    "internal iliac": ("internal iliac", "hypogastric", "obturator", "lateral pelvic"),
    "para-aortic": ("para-aortic", "paraaortic", "periaortic", "aortocaval", "interaortocaval", "retroperitoneal",
                    "retrocrural", "paracaval"),
    "common iliac": ("common iliac",),
    "external iliac": ("external iliac",),
    "inguinal": ("inguinal", "femoral"),
    "thoracic": ("mediastinal", "hilar", "paratracheal", "subcarinal", "thoracic", "paraesophageal",
                 "para-oesophageal", "cardiophrenic", "internal mammary", "pulmonary hilar"),
    "supraclavicular": ("supraclavicular", "virchow", "troisier", "left supraclavicular", "scalene"),
    "cervical": ("cervical", "neck", "jugular", "submandibular"),
    "axillary": ("axillary",),
}

#: regional stations per primary (AJCC 8th chapters 29-34, from memory; the chapters' own lists are finer, e.g. by
#: pancreatic head vs body/tail or colon segment, which a region/site call does not resolve: the union is taken)
REGIONAL_STATIONS: Dict[str, frozenset] = {
    # gastric carcinoma's regional nodes: perigastric, left gastric, common hepatic, celiac, splenic, hepatoduodenal
    "stomach": frozenset({"perigastric", "pyloric", "celiac", "common hepatic", "splenic", "hepatoduodenal"}),
    # duodenal/ampullary: duodenal, hepatoduodenal (hepatic hilum, common bile duct), pancreaticoduodenal,
    # gastroduodenal, pyloric, superior mesenteric, (common hepatic)
    "duodenum": frozenset({"peripancreatic", "hepatoduodenal", "pyloric", "superior mesenteric", "common hepatic"}),
    # jejunum/ileum: mesenteric nodes including the superior mesenteric root; ileocolic and posterior caecal for the
    # terminal ileum
    "jejunum-ileum": frozenset({"mesenteric", "superior mesenteric", "ileocolic"}),
    # appendix: ileocolic (periappendiceal, mesoappendiceal) and right colic
    "appendix": frozenset({"ileocolic", "colic"}),
    # colon and rectum: pericolic/colic, ileocolic, inferior mesenteric (sigmoid, superior rectal), perirectal/
    # mesorectal and, for the rectum, internal iliac
    "colon-rectum": frozenset({"colic", "ileocolic", "inferior mesenteric", "perirectal", "internal iliac"}),
    # pancreas: peripancreatic (incl. pancreaticoduodenal), hepatoduodenal (common bile duct, portal vein), common
    # hepatic, superior mesenteric, celiac, splenic (body/tail); para-aortic (and aortocaval) is distant. "mesenteric"
    # is the node of the jejuno-ileal mesentery (the reference study's "mesenteric node" lies there, 70-90 mm caudal
    # of the pancreas): distant for a pancreatic primary, while the superior mesenteric (SMA/SMV, mesenteric root)
    # nodes are regional
    "pancreas": frozenset({"peripancreatic", "hepatoduodenal", "common hepatic", "superior mesenteric", "celiac",
                           "splenic"}),
}

#: primary names (lower case) of patients the GEP-NET TNM does not apply to: left unstaged, with the reason
NOT_APPLICABLE_PRIMARIES = ("tio", "tumour-induced osteomalacia", "tumor-induced osteomalacia",
                            "oncogenic osteomalacia", "phosphaturic mesenchymal tumour",
                            "phosphaturic mesenchymal tumor", "not applicable", "n/a", "not staged")
HEPATIC_REGIONS = ("liver", "hepatic", "liver metastasis")
NODAL_REGIONS = ("lymph nodes", "lymph node", "nodes", "node", "nodal", "ln")
EXTRAHEPATIC_REGIONS = ("bone", "skeleton", "bone marrow", "lung", "lungs", "pleura", "peritoneum", "peritoneal",
                        "omentum", "ovary", "ovaries", "brain", "meninges", "skin", "soft tissue",
                        "muscle", "breast", "adrenal", "adrenals", "kidney", "spleen", "heart", "myocardium",
                        "orbit", "thyroid", "pituitary", "other", "distant")

_POSITIVE = {"positive", "1", "pos", "true", "yes"}
_NEGATIVE = {"negative", "0", "neg", "false", "no", ""}
_EQUIVOCAL = {"equivocal"}
_NODE_WORDS = (" lymph nodes", " lymph node", " nodes", " node", " ln")


def _norm(text: Any) -> str:
    if text is None or (isinstance(text, float) and text != text):
        return ""
    return " ".join(str(text).strip().lower().replace("_", " ").split())


def _canonical(name: str, synonyms: Mapping[str, Sequence[str]]) -> Optional[str]:
    """The key of ``synonyms`` whose own name or synonyms hold ``name`` (normalised text), None when none does."""
    return next((key for key, words in synonyms.items() if name == key or name in words), None)


def primary_site(text: Any) -> Optional[str]:
    """The canonical primary site (a key of :data:`PRIMARY_SITES`) named by ``text``; None when empty.

    Raises
    ------
    StagingError
        A non-empty name that is no known GEP primary site.
    """
    name = _norm(text)
    if name in ("", "unknown", "cup", "none", "unknown primary") or name in NOT_APPLICABLE_PRIMARIES:
        return None
    site = _canonical(name, PRIMARY_SITES)
    if site is not None:
        return site
    raise StagingError(f"Unknown primary site {printable(text)}; name one of {', '.join(PRIMARY_SITES)} "
                       "(or leave it empty for an unknown primary).")


def staging_applies(primary: Any) -> bool:
    """False when ``primary`` names a tumour the GEP-NET TNM does not apply to (:data:`NOT_APPLICABLE_PRIMARIES`)."""
    return _norm(primary) not in NOT_APPLICABLE_PRIMARIES


def classify_node(site: Any) -> Optional[str]:
    """The canonical nodal station (a key of :data:`STATION_SYNONYMS`) of a node's site text; None when empty.

    Raises
    ------
    StagingError
        A site naming no known station.
    """
    name = _norm(site)
    for word in _NODE_WORDS:
        if name.endswith(word):
            name = name[: -len(word)].strip()
            break
    if not name:
        return None
    station = _canonical(name, STATION_SYNONYMS)
    if station is not None:
        return station
    raise StagingError(f"Unknown nodal station {printable(site)}; name one of {', '.join(STATION_SYNONYMS)} "
                       "(or a synonym listed in netpet.clinical.staging.STATION_SYNONYMS).")


def node_is_regional(primary: str, station: str) -> bool:
    """Whether a nodal station is regional for a (canonical) primary site."""
    if primary not in REGIONAL_STATIONS:
        raise StagingError(f"Unknown primary site {printable(primary)}; name one of {', '.join(REGIONAL_STATIONS)}.")
    if station not in STATION_SYNONYMS:
        raise StagingError(f"Unknown nodal station {printable(station)}.")
    return station in REGIONAL_STATIONS[primary]


def _call_counts(call: Any, equivocal: str, where: str) -> bool:
    text = _norm(call)
    if text in _POSITIVE:
        return True
    if text in _NEGATIVE:
        return False
    if text in _EQUIVOCAL:
        return equivocal == "positive"
    raise StagingError(f"{where}: call {printable(call)}; write positive, equivocal or negative.")


def _kind(region: str, primary: Optional[str]) -> str:
    """'hepatic', 'node', 'primary', 'primary candidate' (a GEP organ, primary unknown) or 'extrahepatic' for a
    normalised region."""
    if not region:
        raise StagingError("A finding has no region, so it cannot be staged; give its region (liver, lymph nodes, "
                           "bone, a GEP organ, ...) in the reference standard or the study table.")
    if region in HEPATIC_REGIONS:
        return "hepatic"
    if region in NODAL_REGIONS:
        return "node"
    for site, words in PRIMARY_SITES.items():
        if region == site or region in words:
            if primary is None:
                return "primary candidate"
            return "primary" if site == primary else "extrahepatic"
    if region in EXTRAHEPATIC_REGIONS:
        return "extrahepatic"
    raise StagingError(f"Unknown region {printable(region)}; name the liver ({', '.join(HEPATIC_REGIONS[:1])}), "
                       f"lymph nodes, a GEP organ ({', '.join(PRIMARY_SITES)}) or an extrahepatic site "
                       f"({', '.join(EXTRAHEPATIC_REGIONS)}).")


def _m_category(hepatic: bool, extrahepatic: bool) -> str:
    return {(False, False): "M0", (True, False): "M1a", (False, True): "M1b", (True, True): "M1c"}[(hepatic,
                                                                                                   extrahepatic)]


def stage_patient(findings: Iterable[Mapping[str, Any]], primary: Any, equivocal: str = "negative",
                  where: str = "") -> Dict[str, Any]:
    """N and M of one read patient from its findings (mappings with ``region``, ``site``, ``call``).

    Returns a dict with ``n``, ``m`` (None when undetermined), ``reason`` (None or why), and the
    counts ``regional_nodes``, ``distant_nodes``, ``hepatic``, ``extrahepatic``, ``undetermined_nodes``,
    ``primary_candidates`` of positive findings.
    """
    if equivocal not in EQUIVOCAL_RULES:
        raise StagingError(f"Unknown equivocal rule {equivocal!r}; choose negative or positive.")
    site = primary_site(primary)
    counts = {"regional_nodes": 0, "distant_nodes": 0, "hepatic": 0, "extrahepatic": 0, "undetermined_nodes": 0,
              "primary_candidates": 0}
    if not staging_applies(primary):
        return {"n": None, "m": None, "reason": f"primary {printable(primary)}: the GEP-NET TNM staging does not apply",
                **counts}
    reasons: List[str] = []
    for number, finding in enumerate(findings):
        here = f"{where} finding {number + 1}".strip()
        region = _norm(finding.get("region"))
        kind = _kind(region, site)
        station = classify_node(finding.get("site")) if kind == "node" else None
        if not _call_counts(finding.get("call"), equivocal, here):
            continue
        if kind == "primary candidate":
            counts["primary_candidates"] += 1
        elif kind == "hepatic":
            counts["hepatic"] += 1
        elif kind == "extrahepatic":
            counts["extrahepatic"] += 1
        elif kind == "node":
            if site is None or station is None:
                counts["undetermined_nodes"] += 1
                reasons.append("a positive node with no primary site" if site is None
                               else "a positive node with no station (site)")
            elif node_is_regional(site, station):
                counts["regional_nodes"] += 1
            else:
                counts["distant_nodes"] += 1
    undetermined = counts["undetermined_nodes"] > 0
    hepatic = counts["hepatic"] > 0
    extrahepatic = counts["extrahepatic"] + counts["distant_nodes"] > 0
    if counts["regional_nodes"]:
        n: Optional[str] = "N1"
    else:
        n = None if undetermined else "N0"
    if not undetermined or extrahepatic:
        m: Optional[str] = _m_category(hepatic, extrahepatic)  # an undetermined node cannot change M here
    else:
        m = None
    reason = None
    if n is None or m is None:
        reason = "; ".join(sorted(set(reasons))) + ": regional or distant cannot be told"
    return {"n": n, "m": m, "reason": reason, **counts}


def stage_patients(findings: pd.DataFrame, primaries: Mapping[str, Any], read: Optional[Iterable[str]] = None,
                   equivocal: str = "negative") -> pd.DataFrame:
    """Per-patient N and M categories from a findings table.

    Parameters
    ----------
    findings : DataFrame
        Columns ``patient_id``, ``region``, ``site``, ``call`` (one row per finding; a reference
        standard's lesions with their truth as the call work the same way).
    primaries : mapping
        patient id -> primary site (a name of :data:`PRIMARY_SITES` or a synonym; empty or None for
        an unknown primary).
    read : iterable of patient ids, optional
        The patients read (staged even without findings: N0 M0). Default: the patients with at least
        one finding row. A patient of ``primaries`` not read gets N = M = None ("not read").
    equivocal : {"negative", "positive"}
        How an equivocal call counts (default negative).

    Returns
    -------
    DataFrame
        One row per patient (sorted): ``patient_id``, ``primary``, ``read``, ``n``, ``m``,
        ``stage_group``, ``reason`` and the finding counts of :func:`stage_patient`.

    Raises
    ------
    StagingError
        A missing column, an unknown region, station, primary or call, or an equivocal rule other
        than negative/positive.
    """
    missing = [c for c in ("patient_id", "region", "site", "call") if c not in findings.columns]
    if missing:
        raise StagingError(f"The findings table lacks the column(s) {', '.join(missing)} (it has "
                           f"{', '.join(map(str, findings.columns)) or 'none'}).")
    if equivocal not in EQUIVOCAL_RULES:
        raise StagingError(f"Unknown equivocal rule {equivocal!r}; choose negative or positive.")
    ids = findings["patient_id"].astype(str)
    read_set = set(ids) if read is None else {str(p) for p in read}
    stray = sorted(set(ids) - read_set)
    if stray:
        raise StagingError(f"Patient {printable(stray[0])} has findings but is not among the patients read.")
    patients = sorted(read_set | {str(p) for p in primaries})
    primaries = {str(k): v for k, v in primaries.items()}
    rows = []
    for patient in patients:
        primary = primaries.get(patient)
        canonical = primary_site(primary)
        if patient not in read_set:
            rows.append({"patient_id": patient, "primary": canonical, "read": False, "n": None, "m": None,
                         "stage_group": None, "reason": "not read"})
            continue
        own = findings[ids == patient]
        result = stage_patient(own.to_dict("records"), primary, equivocal, where=f"patient {patient}")
        rows.append({"patient_id": patient, "primary": canonical, "read": True, **result,
                     "stage_group": stage_group(result["n"], result["m"])})
    columns = ["patient_id", "primary", "read", "n", "m", "stage_group", "reason", "regional_nodes", "distant_nodes",
               "hepatic", "extrahepatic", "undetermined_nodes", "primary_candidates"]
    frame = pd.DataFrame({c: pd.Series([row.get(c) for row in rows], dtype=object) for c in columns[:7]})
    for column in columns[7:]:  # finding counts; <NA> for a patient not read
        frame[column] = pd.array([row.get(column) for row in rows], dtype="Int64")
    return frame


def stage_group(n: Optional[str], m: Optional[str]) -> Optional[str]:
    """The coarse AJCC 8th stage group that needs no T: "IV" (any M1), "III" (N1 M0), "N0M0" (stage I-III by T).

    None when M is unknown, or when M0 and N is unknown. Any M1 is stage IV whatever N is.
    """
    if m is None:
        return None
    if m not in M_CATEGORIES:
        raise StagingError(f"Unknown M category {printable(m)}; one of {', '.join(M_CATEGORIES)}.")
    if m != "M0":
        return "IV"
    if n is None:
        return None
    if n not in N_CATEGORIES:
        raise StagingError(f"Unknown N category {printable(n)}; one of {', '.join(N_CATEGORIES)}.")
    return "III" if n == "N1" else "N0M0"


def regional_table() -> pd.DataFrame:
    """The regional-station mapping as a table (primary x station, True when regional), for the report."""
    return pd.DataFrame({p: [s in REGIONAL_STATIONS[p] for s in STATION_SYNONYMS] for p in REGIONAL_STATIONS},
                        index=list(STATION_SYNONYMS))


__all__: Sequence[str] = ("N_CATEGORIES", "M_CATEGORIES", "STAGE_GROUPS", "PRIMARY_SITES", "STATION_SYNONYMS",
                          "REGIONAL_STATIONS", "NOT_APPLICABLE_PRIMARIES", "StagingError", "primary_site",
                          "staging_applies", "classify_node", "node_is_regional", "stage_patient", "stage_patients",
                          "stage_group", "regional_table")
