"""Teaching mode: open a teaching case, score a trainee's marks against its truth, and say what they teach.

A teaching case is the folder ``netpet phantom OUT --case NAME`` writes (:mod:`netpet.phantom.cases`):
``dicom/``, ``truth/`` (``truth.json``, ``lesions.csv``), ``reference_standard.csv``,
``reference_locations.csv``, ``CASE.md`` (the teacher's version: lesson, questions and answers) and
``QUIZ.md`` (the trainee's: questions only). :func:`open_case` reads it; the truth stays on the
server until the trainee finishes. The trainee's findings are study-table rows (their own ids,
``T01`` ...; written by the review app to ``<case>/teaching/<trainee>/study-table.csv``,
:func:`trainee_table`).

Scoring (:func:`score`) uses the study's own code, so that a trainee's sensitivity means what the
study's means:

* Matching: :func:`netpet.match.correspondence.match_study`, the matcher of ``netpet match``.
  Each mark (its segmented centroid, else its click) goes to at most one truth lesion, by an optimal
  assignment (Kuhn-Munkres, :func:`scipy.optimize.linear_sum_assignment`) minimising the summed
  centroid distance over the pairs within the gate
  ``max(lesion radius, mark radius, FLOOR_MM)`` (plus twice a registration error, none here: the
  case gives every lesion's place in every session, ``reference_locations.csv``). Lesion radius: half
  the truth diameter; mark radius: the radius of the sphere of its volume ``mtv_ml``;
  :data:`netpet.match.correspondence.FLOOR_MM` (5 mm): about one PET voxel (4 mm on the case's PET/CT)
  plus a millimetre, the uncertainty of a small segmented centroid. Why this rule: a mark inside a
  lesion's extent (or whose own segmented extent reaches the lesion's centre) is a mark on that lesion;
  one farther away is elsewhere. An 18 mm liver metastasis thus takes a mark up to 9 mm from its
  centre (2 mm off: matched; 40 mm off: not).
* Statistics: :func:`netpet.stats.data.load_study` with that correspondence, and the units of
  :func:`netpet.stats.data.units_for` (lesion and patient level, the study protocol's equivocal rule:
  equivocal counts as negative unless asked otherwise). A mark on no truth lesion becomes a lesion of
  its own with truth 0 (as in the study): a false positive when called positive, a true negative when
  the trainee marked it and called it negative. A truth lesion without a mark is a negative call (a
  false negative when malignant). Counts are pooled over the sessions the trainee read; per session
  in ``by_session``. Sensitivity and specificity with Wilson intervals
  (:func:`netpet.stats.intervals.accuracy_measures`).
* Calls: the trainee's own visual call (``reader_call``; ``call_source="reader"``, the default) or the
  SUV rule's ``call`` (``call_source="suv"``: what the liver-threshold rule makes of the trainee's
  segmentations).

Pure: imports only the core (scipy and pandas through it), never Slicer, VTK or trame.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from netpet.errors import printable
from netpet.review.study import ReviewError, inside
from netpet.schema import clean_label, is_retracted

log = logging.getLogger(__name__)

#: the files a teaching case must have (relative to its folder)
CASE_FILES = ("CASE.md", "QUIZ.md", os.path.join("truth", "truth.json"), os.path.join("truth", "lesions.csv"),
              "reference_standard.csv")
LOCATIONS = "reference_locations.csv"
#: where the review app keeps a trainee's findings: <case>/teaching/<trainee>/study-table.csv
TEACHING_FOLDER = "teaching"
TRAINEE_TABLE = "study-table.csv"
DEFAULT_TRAINEE = "trainee"
CALL_SOURCES = ("reader", "suv")
_TRAINEE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
#: keys of session_lesions() dicts that are not study-table columns
_NOT_COLUMNS = ("retracted", "row")


@dataclass
class TeachingCase:
    """A teaching case read from its folder (:func:`open_case`).

    Attributes
    ----------
    root : str
        The case folder (real path).
    name, title, patient_id : str
        The case's name (``liver-threshold``), title and patient id (``TEACH-LIVER-THRESHOLD``).
    quiz_markdown : str
        QUIZ.md: what the trainee may see (presentation, objectives, sessions, questions).
    case_markdown : str
        CASE.md: the teacher's version, shown only with the feedback.
    lesson : str
        The case's lesson (the paragraph of CASE.md under the presentation).
    lesions : list of dict
        The truth, one dict per lesion: ``lesion_id``, ``kind``, ``region``, ``site``, ``malignant`` (bool),
        ``standard``, ``diameter_mm`` and ``sessions``: {session_id: {``centre`` (RAS mm), ``suv_max`` (the
        expected, noise-free SUVmax), ``liver_suv``, ``spleen_suv``, ``tl_ratio``, ``krenning`` and ``call``
        (the liver-threshold rule: positive above the liver) on 68Ga-DOTATATE, None on other tracers}}.
    sessions : list of dict
        ``session_id``, ``modality``, ``tracer``, ``pet_series_uid``, ``liver_suv``, ``spleen_suv``.
    reference : str
        The case's reference standard CSV.
    locations : str or None
        Its locations per session (``reference_locations.csv``).
    """

    root: str
    name: str
    title: str
    patient_id: str
    quiz_markdown: str
    case_markdown: str
    lesson: str
    lesions: List[Dict[str, Any]] = field(default_factory=list)
    sessions: List[Dict[str, Any]] = field(default_factory=list)
    reference: str = ""
    locations: Optional[str] = None

    def lesion(self, lesion_id: str) -> Dict[str, Any]:
        """The truth lesion ``lesion_id``."""
        for lesion in self.lesions:
            if lesion["lesion_id"] == lesion_id:
                return lesion
        raise KeyError(lesion_id)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _section(markdown: str, heading: str, until: Sequence[str]) -> str:
    """The text of ``markdown`` from the line ``heading`` up to the first line among ``until`` (exclusive)."""
    lines = markdown.splitlines()
    if heading not in lines:
        return ""
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i] in until), len(lines))
    return "\n".join(lines[start:end]).strip() + "\n"


def _lesson(name: str, markdown: str) -> str:
    """The case's lesson: the registry's text (:data:`netpet.phantom.cases.CASES`), else the paragraph of CASE.md
    before its learning objectives."""
    from netpet.phantom.cases import CASES

    if name in CASES:
        return CASES[name].lesson
    head = markdown.split("\n## ", 1)[0]
    paragraphs = [p.strip() for p in head.split("\n\n") if p.strip() and not p.startswith("#")]
    return paragraphs[-1] if len(paragraphs) > 1 else ""


def _float(value: str, path: str, line: int, column: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ReviewError(f"The truth file {printable(path)} row {line}: column {column} is {printable(value)!r}, "
                          "not a number; write the case again with netpet phantom.") from None


def open_case(folder: str) -> TeachingCase:
    """Read the teaching case in ``folder`` (see the module docstring).

    Raises
    ------
    ReviewError
        ``folder`` missing; a required file (:data:`CASE_FILES`) missing, naming it; a reference study
        (truth.json names no case) instead of a teaching case; a damaged truth file.
    """
    if not os.path.isdir(folder):
        raise ReviewError(f"The teaching case {printable(folder)} is not a folder; write one with netpet phantom OUT "
                          "--case NAME (netpet phantom --list-cases lists them).")
    root = os.path.realpath(folder)
    for name in CASE_FILES:
        if not os.path.isfile(inside(root, name)):
            raise ReviewError(f"The teaching case {printable(root)} lacks {name}; write the case again with netpet "
                              "phantom OUT --case NAME.")
    truth_json = inside(root, os.path.join("truth", "truth.json"))
    try:
        truth = json.loads(_read_text(truth_json))
        name = str(truth["parameters"].get("case") or "")
        (patient,) = truth["patients"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReviewError(f"The truth file {printable(truth_json)} is damaged ({printable(exc)}); write the case "
                          "again with netpet phantom OUT --case NAME.") from None
    if not name:
        raise ReviewError(f"The folder {printable(root)} is a reference study, not a teaching case (its truth.json "
                          "names no case); write a case with netpet phantom OUT --case NAME.")
    case_markdown = _read_text(inside(root, "CASE.md"))
    sessions = [{"session_id": s["session_id"], "modality": s["modality"], "tracer": s["tracer"],
                 "pet_series_uid": s.get("pet_series_uid", ""), "liver_suv": s.get("liver_suv"),
                 "spleen_suv": s.get("spleen_suv")} for s in patient["sessions"]]
    lesions = _truth_lesions(inside(root, os.path.join("truth", "lesions.csv")), patient["patient_id"])
    locations = inside(root, LOCATIONS)
    return TeachingCase(root=root, name=name, title=str(patient.get("description") or name),
                        patient_id=str(patient["patient_id"]), quiz_markdown=_read_text(inside(root, "QUIZ.md")),
                        case_markdown=case_markdown, lesson=_lesson(name, case_markdown), lesions=lesions,
                        sessions=sessions, reference=inside(root, "reference_standard.csv"),
                        locations=locations if os.path.isfile(locations) else None)


def _truth_lesions(path: str, patient_id: str) -> List[Dict[str, Any]]:
    """The truth lesions of truth/lesions.csv with their place and expected reading per session (the expected
    Krenning score and liver-threshold call as :func:`netpet.phantom.cases.reading_rows` gives them for CASE.md)."""
    from netpet.quant.classify import krenning_score

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    lesions: Dict[str, Dict[str, Any]] = {}
    for line, row in enumerate(rows, 2):
        if row.get("patient_id") != patient_id:
            continue
        number = lambda column: _float(row.get(column), path, line, column)  # noqa: E731
        lesion = lesions.setdefault(row["lesion_id"], {
            "lesion_id": row["lesion_id"], "kind": row["kind"], "region": row["region"], "site": row["site"],
            "malignant": row["malignant"].strip() in ("1", "True", "true"), "standard": row.get("standard", ""),
            "diameter_mm": number("diameter_mm"), "sessions": {}})
        suv, liver, spleen = number("suv_max_expected"), number("liver_suv"), number("spleen_suv")
        dotatate = row["tracer"] == "dotatate"
        lesion["sessions"][row["session_id"]] = {
            "modality": row["modality"], "tracer": row["tracer"],
            "centre": [number("center_r"), number("center_a"), number("center_s")],
            "suv_max": suv, "liver_suv": liver, "spleen_suv": spleen, "tl_ratio": suv / liver if liver > 0 else None,
            "krenning": krenning_score(suv, liver, spleen) if dotatate else None,
            "call": ("positive" if suv > liver else "negative") if dotatate else None}
    return list(lesions.values())


def trainee_table(case: TeachingCase, trainee: str = DEFAULT_TRAINEE) -> str:
    """The study table of a trainee's marks: ``<case>/teaching/<trainee>/study-table.csv`` (checked to lie in the case
    folder; the folder is not created here).

    Raises
    ------
    ReviewError
        A trainee name other than 1-64 letters, digits, ``.``, ``_`` or ``-`` (starting with a letter or digit).
    """
    if not _TRAINEE_NAME.match(trainee or ""):
        raise ReviewError(f"The trainee name {printable(trainee)!r} cannot name a folder; use 1-64 letters, digits, "
                          "'.', '_' or '-', starting with a letter or digit.")
    return inside(case.root, os.path.join(TEACHING_FOLDER, trainee, TRAINEE_TABLE))


# -- scoring ---------------------------------------------------------------------------------------------------


def _rows_of(case: TeachingCase, trainee: Union[str, os.PathLike, Sequence[Mapping[str, Any]]],
             reader: Optional[str]) -> List[Dict[str, Any]]:
    """The trainee's rows as study-table rows: from a table file (its segmentation paths made absolute, so the
    copy scored elsewhere still finds them) or as given."""
    from netpet.quant.table import StudyTable

    if isinstance(trainee, (str, os.PathLike)):
        path = os.fspath(trainee)
        if not os.path.isfile(path):
            raise ReviewError(f"The trainee's table {printable(path)} does not exist; mark lesions in the teaching "
                              "app (or give the table the trainee wrote).")
        folder = os.path.dirname(os.path.realpath(path))
        rows: List[Dict[str, Any]] = []
        for row in StudyTable(path).read():
            row = dict(row)
            if row.get("segmentation_file"):
                row["segmentation_file"] = os.path.join(folder, row["segmentation_file"])
            rows.append(row)
    else:
        rows = [{k: v for k, v in dict(r).items() if k not in _NOT_COLUMNS} for r in trainee]
    if reader is not None:
        mine = [r for r in rows if clean_label(r.get("reader")) == clean_label(reader)]
        if rows and not mine:  # a misspelt reader must not score as "nothing found"
            readers = sorted({clean_label(r.get("reader")) for r in rows})
            raise ReviewError(f"The trainee's rows hold no row of reader {printable(reader)!r} (readers: "
                              f"{', '.join(printable(r) or '(none)' for r in readers)}); give one of them.")
        rows = mine
    return rows


def _session_of(case: TeachingCase, row: Mapping[str, Any], number: int) -> Dict[str, Any]:
    """The case session of a trainee's row: by its session id, else its PET series UID, else its modality and
    tracer when the case has one such session."""
    by_id = {s["session_id"]: s for s in case.sessions}
    session_id = str(row.get("session_id") or "").strip()
    if session_id in by_id:
        return by_id[session_id]
    uid = str(row.get("series_uid") or "").strip()
    same = [s for s in case.sessions if uid and s["pet_series_uid"] == uid]
    if uid and not same and any(s["pet_series_uid"] for s in case.sessions):
        # a PET series the case does not have: a mark on other images, never the case's session of that modality
        raise ReviewError(f"The trainee's row {number} (mark {printable(row.get('lesion_id'))}) is on the PET series "
                          f"{printable(uid)}, which is none of the case's ({', '.join(s['session_id'] for s in case.sessions)}"
                          "); mark lesions on the case's own images.")
    if not same:
        same = [s for s in case.sessions if s["modality"] == str(row.get("modality") or "").strip()
                and s["tracer"] == str(row.get("tracer") or "").strip()]
    if len(same) != 1:
        raise ReviewError(f"The trainee's row {number} (session {printable(session_id)}, "
                          f"{printable(row.get('modality'))} {printable(row.get('tracer'))}) is none of the case's "
                          f"sessions ({', '.join(s['session_id'] for s in case.sessions)}); mark lesions on the case's "
                          "own images.")
    return same[0]


def _number(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


def _named(message: str, table: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The study code's message with the scratch table's "<path> line N" (a file gone once scoring ends) told as
    the trainee's mark of that line."""
    def mark(found) -> str:
        index = int(found.group(1)) - 2  # line 1 is the header; the rows were written in order
        if 0 <= index < len(rows):
            return (f"the mark {printable(rows[index].get('lesion_id')) or '(no id)'} on "
                    f"{printable(rows[index].get('session_id'))}")
        return "a mark"
    return re.sub(re.escape(table) + r",? (?:line|row) (\d+)", mark, message).replace(table, "the trainee's marks")


def _outcome(truth: int, call: int) -> str:
    return {(1, 1): "TP", (0, 1): "FP", (1, 0): "FN", (0, 0): "TN"}[(int(truth), int(call))]


_OUTCOME_TEXT = {"TP": "a true positive", "FP": "a false positive", "FN": "a false negative", "TN": "a true negative"}


def _counts(units) -> Dict[str, Any]:
    """TP/FP/FN/TN of a frame of units (netpet.stats.analysis.confusion_counts) and their measures."""
    from netpet.stats.analysis import confusion_counts
    from netpet.stats.intervals import accuracy_measures

    tp, fp, fn, tn = confusion_counts(units)
    measures = accuracy_measures(tp, fp, fn, tn)
    out: Dict[str, Any] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "units": int(len(units))}
    for name in ("sensitivity", "specificity", "ppv", "npv"):
        out[name] = measures[name].estimate
        out[name + "_ci"] = [measures[name].ci_low, measures[name].ci_high]
    return out


def _describe(lesion: Mapping[str, Any]) -> str:
    nature = "malignant" if lesion["malignant"] else "benign"
    return f"{lesion['lesion_id']} ({lesion['kind']}, {lesion['site']}, {nature}, {lesion['diameter_mm']:.0f} mm)"


def score(case: TeachingCase, trainee: Union[str, os.PathLike, Sequence[Mapping[str, Any]]],
          reader: Optional[str] = None, sessions: Optional[Sequence[str]] = None, call_source: str = "reader",
          equivocal: str = "negative", folder: Optional[str] = None) -> Dict[str, Any]:
    """Score a trainee's marks against the case's truth (see the module docstring for the rules).

    Parameters
    ----------
    case : TeachingCase
        The case (:func:`open_case`).
    trainee : str, path or sequence of dict
        The trainee's study table (file), or its rows (study-table rows, or :func:`netpet.review.study.
        session_lesions` dicts). Rows of another patient are refused; retracted marks are left out (a mark the
        trainee withdrew is no mark).
    reader : str, optional
        Score only this reader's rows (default: every row).
    sessions : sequence of str, optional
        The case's sessions the trainee read (default: those of the marks; every session of the case when there
        is no mark). A session read without a mark counts every truth lesion in it as not found.
    call_source : {"reader", "suv"}
        The trainee's visual call (``reader_call``, default) or the SUV rule's ``call``.
    equivocal : {"negative", "positive"}
        How an equivocal call counts (the study's rule; default negative).
    folder : str, optional
        The folder that relative ``segmentation_file`` paths of given rows are relative to (the masks break
        ties of the matching, as in ``netpet match``); default the trainee's folder
        ``<case>/teaching/<reader>`` (:func:`trainee_table`). A table file's own folder is used for its rows.

    Returns
    -------
    dict
        JSON-able: ``case``, ``title``, ``patient_id``, ``reader``, ``sessions``, ``call_source``,
        ``equivocal``; ``matched`` (one per mark on a truth lesion: ``mark``, ``session_id``, ``lesion_id``,
        ``kind``, ``site``, ``malignant``, ``distance_mm``, ``gate_mm``, ``status``, ``call``, ``outcome``
        TP/FP/FN/TN, ``krenning``, ``expected_krenning``, ``expected_call``, ``tl_ratio``, ``expected_tl_ratio``);
        ``missed`` (truth lesions without a mark, per session); ``extra`` (marks on no truth lesion: ``mark``,
        ``session_id``, ``centre``, ``call``, ``outcome``, ``note``); ``lesion`` and ``patient`` ({tp, fp, fn,
        tn, units, sensitivity, specificity, ppv, npv and their ``_ci``}); ``by_session``;
        ``krenning_agreement`` ({compared, agreed, fraction, disagreements}); ``feedback`` (sentences);
        ``lesson``; ``answers_markdown`` (questions, answers, expected reading and the truth from CASE.md);
        ``retracted`` (marks left out); ``warnings``.

    Raises
    ------
    ReviewError
        A row of another patient or session (or PET series), marks without a call (naming them), a reader with
        no row, a mark on a session outside ``sessions``, a mark id given twice on one session, two sessions of
        one modality and tracer scored together, an unknown call source, no session to score; the study code's
        errors (a mark without a place, a bad cell) as ReviewError too.
    """
    from netpet.errors import NetpetError
    from netpet.match.correspondence import match_study, write_correspondence
    from netpet.quant.table import StudyTable
    from netpet.stats.data import UNMATCHED_STANDARD, load_study, units_for

    if call_source not in CALL_SOURCES:
        raise ReviewError(f"Unknown call source {printable(call_source)!r}; choose reader (the trainee's calls) or suv "
                          "(the SUV rule's).")
    rows = _rows_of(case, trainee, reader)
    active, retracted = [], []
    for number, row in enumerate(rows, 1):
        if str(row.get("patient_id") or "").strip() != case.patient_id:
            raise ReviewError(f"The trainee's row {number} is of patient {printable(row.get('patient_id'))}, not of "
                              f"the case's patient {case.patient_id}; score a table of this case only.")
        session = _session_of(case, row, number)
        row = {**row, "session_id": session["session_id"], "modality": session["modality"],
               "tracer": session["tracer"]}
        (retracted if is_retracted(row) else active).append(row)
    marks = [r for r in active if str(r.get("lesion_id") or "").strip()]
    readers = sorted({clean_label(r.get("reader")) for r in rows if clean_label(r.get("reader"))})
    if len(readers) > 1:
        raise ReviewError(f"The trainee's rows are of several readers ({', '.join(printable(r) for r in readers)}); "
                          "score one reader at a time.")
    name = reader or (readers[0] if readers else DEFAULT_TRAINEE)
    column = "reader_call" if call_source == "reader" else "call"
    uncalled = [str(r["lesion_id"]) for r in marks if not str(r.get(column) or "").strip()]
    if uncalled:
        raise ReviewError(f"Mark(s) {', '.join(printable(m) for m in uncalled)} have no call; record a call (positive, "
                          "equivocal or negative) for each mark before scoring.")
    known = [s["session_id"] for s in case.sessions]
    read = list(dict.fromkeys(sessions if sessions is not None else [r["session_id"] for r in active])) or known
    unknown = [s for s in read if s not in known]
    if unknown:
        raise ReviewError(f"Session {printable(unknown[0])} is not a session of the case ({', '.join(known)}).")
    by_id = {s["session_id"]: s for s in case.sessions}
    elsewhere = [r for r in marks if r["session_id"] not in read]
    if elsewhere:  # a mark must count or be refused, never be dropped unsaid
        raise ReviewError(f"Mark {printable(elsewhere[0]['lesion_id'])} is on session {elsewhere[0]['session_id']}, "
                          f"which is not among the sessions scored ({', '.join(read)}); score that session too, or "
                          "leave sessions out to score every session marked.")
    seen: Dict[Any, int] = {}
    for row in marks:
        key = (row["session_id"], str(row["lesion_id"]).strip())
        seen[key] = seen.get(key, 0) + 1
    twice = [k for k, n in seen.items() if n > 1]
    if twice:  # the study table keeps one row per mark id: the later row would replace the earlier unsaid
        raise ReviewError(f"Mark {printable(twice[0][1])} is given {seen[twice[0]]} times on session {twice[0][0]}; "
                          "give each mark its own id.")
    pairs: Dict[Any, str] = {}
    for session_id in read:  # the study groups units by modality and tracer: one session of each per score
        other = pairs.setdefault((by_id[session_id]["modality"], by_id[session_id]["tracer"]), session_id)
        if other != session_id:
            raise ReviewError(f"Sessions {other} and {session_id} are both {by_id[session_id]['modality']} "
                              f"{by_id[session_id]['tracer']}; score them one at a time (sessions=[...]).")
    table_rows = [dict(r) for r in marks]
    for session_id in read:  # a session read without a mark: a row without lesion id (nothing found)
        if not any(r["session_id"] == session_id for r in table_rows):
            session = by_id[session_id]
            table_rows.append({"patient_id": case.patient_id, "session_id": session_id,
                               "modality": session["modality"], "tracer": session["tracer"], "reader": name,
                               "lesion_id": "", "call": ""})
    # segmentations of given rows: relative to the trainee's folder (<case>/teaching/<trainee>, where the review app
    # writes them beside the table), not to the scratch copy's; a table file's were made absolute when read
    home = folder if folder is not None else (
        os.path.dirname(trainee_table(case, name)) if _TRAINEE_NAME.match(name) else case.root)
    for row in table_rows:
        row["reader"] = name
        path = str(row.get("segmentation_file") or "")
        if path and not os.path.isabs(path):
            row["segmentation_file"] = os.path.join(home, path)
    with tempfile.TemporaryDirectory(prefix="netpet-teach-") as work:
        table = os.path.join(work, "study-table.csv")
        correspondence_path = os.path.join(work, "correspondence.csv")
        try:
            StudyTable(table).upsert(table_rows, by=name, why="teaching score")
            correspondence = match_study(table, case.reference, case.locations,
                                         transforms_folder=os.path.join(work, "transforms"))
            write_correspondence(correspondence_path, correspondence)
            study = load_study(table, case.reference, correspondence=correspondence_path, call_source=call_source)
            units = units_for(study, equivocal)
        except ReviewError:
            raise
        except NetpetError as exc:
            raise ReviewError(f"Cannot score the trainee's marks: {_named(str(exc), table, table_rows)}") from exc
    lesions, patients = units["lesion"], units["patient"]
    links = {(r["session_id"], r["lesion_id"]): r for r in correspondence.to_dict("records") if r["lesion_id"]}
    centre_of = {(r["session_id"], r["lesion_id"]): [_number(r.get(c)) for c in ("centroid_r", "centroid_a",
                                                                                    "centroid_s")]
                 for r in table_rows if r["lesion_id"]}
    by_mark = {(r["session_id"], r["lesion_id"]): r for r in table_rows if r["lesion_id"]}
    matched, missed, extra, feedback = [], [], [], []
    compared = agreed = 0
    disagreements = []
    # a group of the study (modality, tracer, reader) is one session of the case: a lesion without a mark has no
    # session of its own in the units, its group names it
    session_of = {(by_id[s]["modality"], by_id[s]["tracer"]): s for s in read}
    order = {s: i for i, s in enumerate(read)}
    units_in_order = sorted(lesions.to_dict("records"), key=lambda u: (
        order.get(session_of.get((u["modality"], u["tracer"]), ""), 0), u["standard"] == UNMATCHED_STANDARD,
        str(u["lesion_id"])))
    for unit in units_in_order:
        outcome = _outcome(unit["truth"], unit["call"])
        unit["session_id"] = session_of[(unit["modality"], unit["tracer"])]
        if unit.get("standard") == UNMATCHED_STANDARD:
            mark = str(unit["finding_id"])
            link = links.get((unit["session_id"], mark), {})
            called = unit["finding_call"]
            extra.append({"mark": mark, "session_id": unit["session_id"],
                          "centre": centre_of.get((unit["session_id"], mark)), "call": called, "outcome": outcome,
                          "note": link.get("note", "")})
            where = link.get("note") or "no truth lesion near"
            feedback.append(f"Mark {mark} on {unit['session_id']} lies on no truth lesion ({where}); you called it "
                            f"{called}: {_OUTCOME_TEXT[outcome]}" + (" (a false finding)." if outcome == "FP" else "."))
            continue
        truth = case.lesion(unit["lesion_id"])
        expected = truth["sessions"].get(unit["session_id"], {})
        if not unit["found"]:
            session_id = unit["session_id"]
            missed.append({"lesion_id": truth["lesion_id"], "session_id": session_id, "kind": truth["kind"],
                           "site": truth["site"], "malignant": truth["malignant"], "outcome": outcome,
                           "expected_krenning": truth["sessions"].get(session_id, {}).get("krenning")})
            what = ("a false negative" if truth["malignant"] else
                    "rightly left alone (a true negative)")
            feedback.append(f"{_describe(truth)} on {session_id}: not marked: {what}.")
            continue
        mark = str(unit["finding_id"])
        link = links.get((unit["session_id"], mark), {})
        row = by_mark.get((unit["session_id"], mark), {})
        krenning = _number(row.get("krenning"))
        entry = {"mark": mark, "session_id": unit["session_id"], "lesion_id": truth["lesion_id"],
                 "kind": truth["kind"], "site": truth["site"], "malignant": truth["malignant"],
                 "distance_mm": _number(link.get("distance_mm")), "gate_mm": _number(link.get("gate_mm")),
                 "status": link.get("status", ""), "call": unit["finding_call"], "outcome": outcome,
                 "krenning": None if krenning is None else int(krenning),
                 "expected_krenning": expected.get("krenning"), "expected_call": expected.get("call"),
                 "tl_ratio": _number(row.get("tl_ratio")), "expected_tl_ratio": expected.get("tl_ratio")}
        matched.append(entry)
        sentence = (f"{_describe(truth)} on {unit['session_id']}: marked as {mark} "
                    f"({entry['distance_mm']:.1f} mm from its centre) and called {entry['call']}: "
                    f"{_OUTCOME_TEXT[outcome]}")
        if not truth["malignant"] and outcome == "FP":
            sentence += f" (a benign look-alike: {truth['kind']})"
        if entry["status"] == "ambiguous":
            sentence += f" (matched by distance with a rival near: {link.get('note', '')})"
        if entry["expected_krenning"] is not None and entry["krenning"] is not None:
            compared += 1
            if entry["expected_krenning"] == entry["krenning"]:
                agreed += 1
                sentence += f"; Krenning {entry['krenning']}, as expected"
            else:
                disagreements.append({"mark": mark, "lesion_id": truth["lesion_id"], "krenning": entry["krenning"],
                                      "expected_krenning": entry["expected_krenning"]})
                sentence += (f"; Krenning {entry['krenning']}, expected {entry['expected_krenning']} "
                             f"(T/L {expected['tl_ratio']:.2f} against the liver {expected['liver_suv']:.1f} and "
                             f"spleen {expected['spleen_suv']:.1f})")
        feedback.append(sentence + ".")
    by_session = {}
    for session_id in read:
        session = by_id[session_id]
        by_session[session_id] = {level: _counts(frame[(frame["modality"] == session["modality"])
                                                       & (frame["tracer"] == session["tracer"])])
                                  for level, frame in (("lesion", lesions), ("patient", patients))}
    lesion_counts, patient_counts = _counts(lesions), _counts(patients)
    summary = (f"Lesions: {lesion_counts['tp']} true positive, {lesion_counts['fp']} false positive, "
               f"{lesion_counts['fn']} false negative, {lesion_counts['tn']} true negative.")
    # the scratch copies are gone when the trainee reads this: say what they were
    warnings = [w.replace(f"correspondence table {correspondence_path}", "matching of the trainee's marks")
                .replace(correspondence_path, "the matching of the trainee's marks").replace(table, "the trainee's marks")
                for w in list(study.warnings) + list(correspondence.attrs.get("warnings", []))]
    return {
        "case": case.name, "title": case.title, "patient_id": case.patient_id, "reader": name, "sessions": read,
        "call_source": call_source, "equivocal": equivocal,
        "matched": matched, "missed": missed, "extra": extra,
        "lesion": lesion_counts, "patient": patient_counts, "by_session": by_session,
        "krenning_agreement": {"compared": compared, "agreed": agreed,
                               "fraction": agreed / compared if compared else None,
                               "disagreements": disagreements},
        "feedback": [summary] + feedback,
        "lesson": case.lesson,
        "answers_markdown": _section(case.case_markdown, "## Questions", ("## Sessions",)),
        "retracted": [str(r.get("lesion_id")) for r in retracted if r.get("lesion_id")],
        "warnings": warnings,
    }


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def format_feedback(result: Mapping[str, Any]) -> str:
    """The score of :func:`score` as text for a terminal (``netpet teach CASE --score TABLE``): the counts and
    sensitivity/specificity at lesion and patient level, Krenning agreement, one line per truth lesion and mark,
    the lesson, and the answers of CASE.md. Every value from the files is made printable."""
    from netpet.errors import printable_text

    lines = [f"Teaching case {result['case']}: {result['title']}",
             f"Trainee {result['reader']}, sessions {', '.join(result['sessions'])}, calls: "
             f"{'your own' if result['call_source'] == 'reader' else 'the SUV rule'} "
             f"(equivocal counts as {result['equivocal']})", ""]
    for level in ("lesion", "patient"):
        c = result[level]
        lines.append(f"{level.capitalize()} level: TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}  "
                     f"sensitivity {_percent(c['sensitivity'])}  specificity {_percent(c['specificity'])}")
    agreement = result["krenning_agreement"]
    if agreement["compared"]:
        lines.append(f"Krenning score as expected on {agreement['agreed']} of {agreement['compared']} marked lesions.")
    if result.get("retracted"):
        lines.append(f"Withdrawn marks left out: {', '.join(result['retracted'])}.")
    lines += ["", "Findings:"] + [f"- {sentence}" for sentence in result["feedback"][1:]]
    lines += ["", "Lesson:", result["lesson"], "", result["answers_markdown"].rstrip()]
    if result.get("warnings"):
        lines += ["", "Notes:"] + [f"- {w}" for w in result["warnings"]]
    return printable_text("\n".join(lines)) + "\n"
