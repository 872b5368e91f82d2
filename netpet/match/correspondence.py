"""Lesion correspondence: the study table's findings matched to the reference lesions by location.

Readers keep their own lesion ids (Slicer numbers points L01, L02 ... in click order); a finding is
matched to a reference lesion by where it lies, not by its name.

Where the reference lesions are
-------------------------------
The reference standard (:func:`netpet.stats.data.read_reference`) may give each lesion ONE location
in a named session of its patient: columns ``location_session``, ``center_r``, ``center_a``,
``center_s`` (RAS mm of that session) and ``diameter_mm``. A locations CSV (``patient_id, lesion_id,
session_id, center_r, center_a, center_s, diameter_mm``) gives a lesion's location in every session
where it is visible; for that session it takes precedence over the reference standard's location.

A reference lesion is placed in the session S of a finding (:func:`place`):

1. its location in S itself, when there is one (``via`` = ``location``, no registration error);
2. else its location in another session R mapped into S through the registrations stored in
   ``<table folder>/transforms`` (:func:`netpet.match.registration.transform_path`): the one
   between S and R in either direction (a transform registers a moving session to a fixed one;
   the other direction applies it the other way), or a chain through other sessions of the
   patient, e.g. a common reference session registered to both (``via`` = ``registration <file>``,
   files joined by `` + ``); of several ways, the one of least summed registration error;
3. else it is refused, naming the patient, the sessions and the command that registers them
   (``netpet register``).

Assignment (per read: patient, session, modality, tracer, reader)
-----------------------------------------------------------------
The read's findings (``centroid_r/a/s``, RAS mm of the session's PET) are matched to the patient's
reference lesions present at the session's ``time_point`` (a reference row without time point applies
to every time point) by an optimal assignment (:func:`scipy.optimize.linear_sum_assignment`,
Kuhn-Munkres) minimising the summed centroid distance over the pairs within their gate:

``gate_mm = max(reference radius, finding radius, FLOOR_MM) + GATE_K * registration_error_mm``

* reference radius: ``diameter_mm / 2`` of its location (:data:`DEFAULT_DIAMETER_MM` when none is given);
* finding radius: the radius of the sphere of the finding's volume ``mtv_ml`` (0 when empty);
* :data:`FLOOR_MM`: the least gate, for the smallest lesions (a segmented centroid is uncertain by
  about a PET voxel, 4 mm on the reference study's PET/CT);
* ``registration_error_mm``: 0 for a location in the session itself; for a registration its
  :attr:`netpet.match.registration.Registration.error_mm` (measured on the reference study,
  :data:`netpet.match.registration.REGISTRATION_ERROR_MM`), summed along a chain; a caller may give
  a measured figure for real data instead.

A finding inside the gate of a lesion lies within the lesion's (or its own) extent, widened by twice
the registration error (:data:`GATE_K`: 2 standard errors [from memory: the usual 95 % margin]).

Ambiguity rule: a matched pair (finding f, lesion l, distance d) is ``ambiguous`` when another
candidate is within its gate and closer than ``d + registration_error_mm + AMBIGUITY_MARGIN_MM``:
another reference lesion within f's gate, or another finding of the read within l's gate. Such an
assignment could flip within the registration error and a centroid's uncertainty; the reader
confirms it (status ``confirmed``). A finding with no lesion in its gate is ``unmatched`` (a false
positive); a lesion left without a finding is ``missed`` (a false negative).

Masks as tie-breaker: when the findings have segmentations (the table's ``segmentation_file``, a
``.seg.nrrd`` beside the table with one segment per finding id), an ambiguous pair (f, l) becomes
``matched`` when f's segment holds the (mapped) centre of l and of none of the rival lesions, and no
rival finding's segment holds l's centre (every rival finding's segment read). Otherwise it stays
ambiguous, its note saying which centres f's segment holds.

Tracks
------
``track_id`` follows a lesion across the sessions and time points of a patient: the reference lesion
id when matched (or confirmed to one). Unmatched findings of a patient are mapped into the patient's
first session (by time point, then session id) through the stored registrations and clustered:
in the order of their sessions, each joins the nearest cluster within the gate (the rule above, with
both findings' radii and registration errors) that holds no finding of its own read, or opens a new
one: ``X01``, ``X02`` ... (ids that are reference lesion ids are skipped). A finding whose session
cannot be mapped to the first one is a track of its own (the note says so).

Confirmed rows
--------------
A row whose ``status`` a person set to ``confirmed`` (``reference_lesion_id`` possibly edited, empty
for a confirmed false positive) is kept on every re-run: every column as written except
``track_id``, which is derived (its reference lesion, or its cluster). Its finding is not assigned
again, and the reference lesion it names is taken out of the assignment of the others of its read.
A confirmed ``missed`` row (empty ``lesion_id``) keeps its lesion out of that read's assignment.

Rows are keyed by their first 7 columns (:data:`KEY_COLUMNS`), plus ``reference_lesion_id`` on a
``missed`` row (which has no finding id).

Measured on the digital reference study
---------------------------------------
* Truth centres jittered by 3 mm, reader ids in a shuffled click order (Testing/core/
  test_match_correspondence.py, seed 8, 2 patients, lesions at least 52 mm apart): 33/33 findings
  assigned to their own lesion with per-session locations, 18/18 (one patient) with each lesion's
  location in one session reached through the stored registrations (direct, inverse and chained).
* Quantified findings of ``netpet demo`` (5 patients, seed 1, 74 findings; their centroids lie
  median 0.9 mm, max 5.7 mm from the true centres): 73/74 with per-session locations. The miss is an
  11 mm T10 bone metastasis without FDG uptake whose FDG segmentation settled 5.7 mm from its centre,
  beyond its 5.5 mm gate: it counts as an unmatched finding and a missed lesion. With each lesion's
  location in S1 only and ``netpet register``'s transforms (4 mm grid), 74/74: the registration error
  widens the gate by 2 mm. Lesion-centre error of those 9 registrations (CT/MR basis, 49 centres):
  mean 0.16 mm, 95th percentile 0.30 mm, max 0.32 mm.
"""

from __future__ import annotations

import csv
import heapq
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import pandas as pd

from netpet.errors import NetpetError, printable
from netpet.geometry import ras_to_lps_array
from netpet.schema import is_retracted

#: The correspondence CSV's columns, in order.
COLUMNS: Tuple[str, ...] = (
    "patient_id", "session_id", "modality", "tracer", "reader", "time_point", "lesion_id", "reference_lesion_id",
    "track_id", "status", "distance_mm", "gate_mm", "registration_error_mm", "via", "candidates", "note",
)
#: The columns that key a row (a ``missed`` row adds its ``reference_lesion_id``).
KEY_COLUMNS: Tuple[str, ...] = COLUMNS[:7]
READ_COLUMNS: Tuple[str, ...] = ("patient_id", "session_id", "modality", "tracer", "reader")
STATUSES: Tuple[str, ...] = ("matched", "ambiguous", "confirmed", "unmatched", "missed")
#: The time point of a session (or reference row) that names none.
BASELINE = "baseline"
#: Least gate radius (mm): about a PET voxel (4 mm on the reference study's PET/CT) plus a millimetre,
#: the uncertainty of the centroid of a small segmented lesion.
FLOOR_MM = 5.0
#: Diameter (mm) assumed for a reference lesion whose location gives none: 15 mm, about the median
#: diameter of the liver metastases of the reference study (drawn log-normal about 14 mm,
#: netpet.phantom.patients); the finding's own size widens the gate when it is larger.
DEFAULT_DIAMETER_MM = 15.0
#: Multiple of the registration error added to the gate (two standard errors [from memory: the usual
#: 95 % margin of a normal error]).
GATE_K = 2.0
#: Margin (mm) of the ambiguity rule, added to the registration error: one PET voxel (4 mm in plane on
#: the reference study's PET/CT), the uncertainty of a segmented lesion's centroid.
AMBIGUITY_MARGIN_MM = 4.0
#: Optional location columns of the reference standard.
LOCATION_COLUMNS: Tuple[str, ...] = ("location_session", "center_r", "center_a", "center_s", "diameter_mm")
#: Columns a locations CSV needs (``diameter_mm`` is optional).
LOCATIONS_REQUIRED: Tuple[str, ...] = ("patient_id", "lesion_id", "session_id", "center_r", "center_a", "center_s")
_CENTRE = ("center_r", "center_a", "center_s")
_CENTROID = ("centroid_r", "centroid_a", "centroid_s")
_SEED = ("seed_r", "seed_a", "seed_s")


class CorrespondenceError(NetpetError):
    """An input of the correspondence cannot be used (one sentence naming file, row, column and value)."""


class MissingRegistrationError(CorrespondenceError):
    """A reference lesion cannot be placed in a session: no location there and no registration leads there."""


# -- small readers --------------------------------------------------------------------------------

def _read_csv(path: str, what: str) -> Tuple[List[str], List[Dict[str, str]]]:
    if not os.path.isfile(path):
        state = "is a folder" if os.path.isdir(path) else "does not exist"
        raise CorrespondenceError(f"The {what} {printable(path)} {state}; give the CSV file.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [(h or "").strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorrespondenceError(f"Cannot read the {what} {printable(path)} ({printable(exc)}); save it as a UTF-8 "
                                  "CSV file.") from None
    return header, rows


def _number(value: str, where: str, column: str, positive: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number) or (positive and number <= 0):
        kind = "a positive number of mm" if positive else "a finite number of mm"
        raise CorrespondenceError(f"{where}: column {column} is {printable(repr(value))}, not {kind}; correct it "
                                  "(or leave the whole location empty).")
    return number


def sphere_radius_mm(volume_ml: float) -> float:
    """Radius (mm) of the sphere of ``volume_ml`` millilitres (cm^3); 0 for no or a non-positive volume."""
    if volume_ml is None or not math.isfinite(volume_ml) or volume_ml <= 0:
        return 0.0
    return 10.0 * (3.0 * volume_ml / (4.0 * math.pi)) ** (1.0 / 3.0)


# -- reference locations --------------------------------------------------------------------------

@dataclass
class Location:
    """A lesion's centre (RAS mm) in one session, its diameter (mm, NaN when not given) and where it was read."""

    centre: np.ndarray
    diameter_mm: float
    source: str


@dataclass
class ReferenceLesion:
    """A lesion of the reference standard: its time points ("" = every one) and its locations per session."""

    patient_id: str
    lesion_id: str
    time_points: List[str] = field(default_factory=list)
    locations: Dict[str, Location] = field(default_factory=dict)
    row: str = ""

    def present_at(self, time_point: str) -> bool:
        """Whether the lesion is a unit at ``time_point`` (a row without time point: at every one)."""
        return any(t in ("", time_point) for t in self.time_points) or not self.time_points

    @property
    def diameter_mm(self) -> float:
        """The first diameter given by one of its locations, else :data:`DEFAULT_DIAMETER_MM`."""
        for location in self.locations.values():
            if math.isfinite(location.diameter_mm):
                return location.diameter_mm
        return DEFAULT_DIAMETER_MM


def read_locations(reference_path: str, locations_path: Optional[str] = None) -> Dict[Tuple[str, str], ReferenceLesion]:
    """The reference lesions with their locations per session.

    Parameters
    ----------
    reference_path : str
        The reference standard (read and checked by :func:`netpet.stats.data.read_reference`); its
        optional columns :data:`LOCATION_COLUMNS` give one location per row.
    locations_path : str, optional
        A locations CSV (:data:`LOCATIONS_REQUIRED`, optional ``diameter_mm``): a lesion's location per
        session, taking precedence over the reference standard's for that session.

    Returns
    -------
    dict
        (patient_id, lesion_id) -> :class:`ReferenceLesion`.

    Raises
    ------
    CorrespondenceError
        A location partly given, a coordinate or diameter that is not a (positive) finite number, a
        locations row for a lesion the reference standard lacks, two different locations of a lesion in
        one session; each naming the file, row, column and value.
    StatsError
        From :func:`netpet.stats.data.read_reference`.
    """
    lesions, _ = _reference(reference_path, locations_path)
    return lesions


def _lesions(reference, reference_path: str) -> Dict[Tuple[str, str], ReferenceLesion]:
    """The reference lesions with the reference standard's own locations."""
    lesions: Dict[Tuple[str, str], ReferenceLesion] = {}
    for record in reference.lesions.to_dict("records"):
        key = (str(record["patient_id"]), str(record["lesion_id"]))
        where = f"{printable(reference_path)} row {record['reference_row']}"
        lesion = lesions.setdefault(key, ReferenceLesion(*key, row=where))
        lesion.time_points.append(str(record.get("time_point", "") or ""))
        values = {c: str(record.get(c, "") or "").strip() for c in LOCATION_COLUMNS}
        if not any(values[c] for c in ("location_session", *_CENTRE)):
            if values["diameter_mm"]:
                _number(values["diameter_mm"], where, "diameter_mm", positive=True)
            continue
        missing = [c for c in ("location_session", *_CENTRE) if not values[c]]
        if missing:
            raise CorrespondenceError(f"{where}: lesion {printable(key[1])} of patient {printable(key[0])} has a "
                                      f"location without {', '.join(missing)}; give location_session, center_r, "
                                      "center_a and center_s together, or none of them.")
        location = Location(np.array([_number(values[c], where, c) for c in _CENTRE]),
                            _number(values["diameter_mm"], where, "diameter_mm", positive=True)
                            if values["diameter_mm"] else float("nan"), where)
        _add_location(lesion, values["location_session"], location, where)
    return lesions


def _add_location(lesion: ReferenceLesion, session: str, location: Location, where: str,
                  replace: bool = False) -> None:
    other = lesion.locations.get(session)
    if other is not None and not replace:
        same = np.allclose(other.centre, location.centre) and (
            other.diameter_mm == location.diameter_mm or not math.isfinite(location.diameter_mm)
            or not math.isfinite(other.diameter_mm))
        if not same:
            raise CorrespondenceError(f"{where}: lesion {printable(lesion.lesion_id)} of patient "
                                      f"{printable(lesion.patient_id)} has another location in session "
                                      f"{printable(session)} on {other.source}; keep one location per session.")
        return
    lesion.locations[session] = location


def _read_locations_file(path: str, lesions: Dict[Tuple[str, str], ReferenceLesion]) -> None:
    header, rows = _read_csv(path, "locations file")
    missing = [c for c in LOCATIONS_REQUIRED if c not in header]
    if missing:
        raise CorrespondenceError(f"The locations file {printable(path)} lacks the column(s) {', '.join(missing)}; it "
                                  f"needs {', '.join(LOCATIONS_REQUIRED)} (and may have diameter_mm).")
    seen: Dict[Tuple[str, str, str], int] = {}
    for i, row in enumerate(rows):
        line = i + 2
        where = f"{printable(path)} row {line}"
        for column in ("patient_id", "lesion_id", "session_id"):
            if not row.get(column, ""):
                raise CorrespondenceError(f"{where}: column {column} is empty; every location names its patient, "
                                          "lesion and session.")
        key = (row["patient_id"], row["lesion_id"])
        lesion = lesions.get(key)
        if lesion is None:
            raise CorrespondenceError(f"{where}: lesion {printable(key[1])} of patient {printable(key[0])} is not in "
                                      "the reference standard; add it there or correct the id.")
        full = (*key, row["session_id"])
        if full in seen:
            raise CorrespondenceError(f"{where}: duplicated key: lesion {printable(key[1])} of patient "
                                      f"{printable(key[0])} in session {printable(row['session_id'])} is also on row "
                                      f"{seen[full]}; keep one location per lesion and session.")
        seen[full] = line
        diameter = row.get("diameter_mm", "")
        location = Location(np.array([_number(row.get(c, ""), where, c) for c in _CENTRE]),
                            _number(diameter, where, "diameter_mm", positive=True) if diameter else float("nan"), where)
        # the file takes precedence over the reference standard's single location for its session
        _add_location(lesion, row["session_id"], location, where, replace=True)


# -- registrations between sessions ---------------------------------------------------------------

@dataclass
class _Edge:
    path: str
    registration: Any
    inverse: bool  # True: apply the transform as stored (fixed -> moving)


class SessionLinks:
    """The stored registrations between the sessions of the patients, read once, found both ways.

    Parameters
    ----------
    transforms : str
        The folder of the transform files (``<table folder>/transforms``), each ``.h5`` with its
        ``.json`` sidecar as :func:`netpet.match.registration.register_and_store` writes them.
    registration_error_mm : float, optional
        The error (mm) of every registration; default each one's
        :attr:`~netpet.match.registration.Registration.error_mm`.
    """

    def __init__(self, transforms: str, registration_error_mm: Optional[float] = None) -> None:
        self.transforms = transforms
        self.error_override = registration_error_mm
        self._edges: Dict[str, Dict[Tuple[str, str], Tuple[str, str]]] = {}  # patient -> (moving, fixed) -> path
        self._read: Dict[str, Any] = {}
        self._routes: Dict[Tuple[str, str, str], Optional[Tuple[List[_Edge], float]]] = {}
        self._scan()

    def _scan(self) -> None:
        from netpet.match.registration import transform_path

        if not os.path.isdir(self.transforms):
            return
        for name in sorted(os.listdir(self.transforms)):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.transforms, name), encoding="utf-8") as handle:
                    record = json.load(handle)
                patient, moving, fixed = (str(record[k]) for k in ("patient_id", "moving_session", "fixed_session"))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a sidecar of ours
            path = os.path.join(self.transforms, name[:-5] + ".h5")
            ours = os.path.basename(transform_path("", patient, moving, fixed)) == name[:-5] + ".h5"
            if ours and os.path.exists(path):
                self._edges.setdefault(patient, {})[(moving, fixed)] = (path, name)

    def sessions(self, patient_id: str) -> List[str]:
        """The sessions of a patient that some stored registration links."""
        return sorted({s for pair in self._edges.get(patient_id, {}) for s in pair})

    def _registration(self, path: str):
        from netpet.match.registration import read_registration

        if path not in self._read:
            self._read[path] = read_registration(path)
        return self._read[path]

    def _error(self, registration) -> float:
        return float(self.error_override) if self.error_override is not None else float(registration.error_mm)

    def route(self, patient_id: str, source: str, target: str) -> Optional[Tuple[List[_Edge], float]]:
        """The chain of registrations of least summed error that maps ``source`` points into ``target``
        (Dijkstra over the patient's registered sessions); ([], 0) for the same session, None when none."""
        if source == target:
            return [], 0.0
        key = (patient_id, source, target)
        if key in self._routes:
            return self._routes[key]
        edges = self._edges.get(patient_id, {})
        neighbours: Dict[str, List[Tuple[str, str, bool]]] = {}
        for (moving, fixed), (path, _) in edges.items():
            neighbours.setdefault(moving, []).append((fixed, path, False))  # moving -> fixed: map_points_ras
            neighbours.setdefault(fixed, []).append((moving, path, True))   # fixed -> moving: the transform itself
        best: Dict[str, float] = {source: 0.0}
        previous: Dict[str, Tuple[str, str, bool]] = {}
        queue = [(0.0, source)]
        while queue:
            cost, node = heapq.heappop(queue)
            if node == target or cost > best.get(node, math.inf):
                continue
            for other, path, inverse in sorted(neighbours.get(node, [])):
                step = cost + self._error(self._registration(path))
                if step < best.get(other, math.inf) - 1e-12:
                    best[other] = step
                    previous[other] = (node, path, inverse)
                    heapq.heappush(queue, (step, other))
        if target not in best:
            self._routes[key] = None
            return None
        chain: List[_Edge] = []
        node = target
        while node != source:
            before, path, inverse = previous[node]
            chain.append(_Edge(path, self._registration(path), inverse))
            node = before
        chain.reverse()
        self._routes[key] = (chain, best[target])
        return self._routes[key]

    @staticmethod
    def apply(chain: Sequence[_Edge], points: np.ndarray) -> np.ndarray:
        """Map RAS points (mm) along a chain of registrations."""
        from netpet.match.registration import map_points_ras

        out = np.atleast_2d(np.asarray(points, dtype=float))
        for edge in chain:
            out = map_points_ras(edge.registration, out, inverse=edge.inverse)
        return out

    def via(self, chain: Sequence[_Edge]) -> str:
        """How a chain is written in the ``via`` column."""
        if not chain:
            return "location"
        parent = os.path.dirname(os.path.abspath(self.transforms))
        return "registration " + " + ".join(os.path.relpath(e.path, parent) for e in chain)


@dataclass
class Placement:
    """A reference lesion placed in a session: centre (RAS mm), registration error (mm) and ``via``."""

    centre: np.ndarray
    error_mm: float
    via: str
    radius_mm: float


def place(lesion: ReferenceLesion, session_id: str, links: SessionLinks, session_order: Sequence[str] = (),
          table_path: str = "TABLE") -> Placement:
    """Place a reference lesion in ``session_id`` (see the module docstring).

    Raises
    ------
    MissingRegistrationError
        No location in the session and no stored registration links it to a session where the
        lesion has one (the message names the command that registers them).
    CorrespondenceError
        The lesion has no location at all.
    """
    if not lesion.locations:
        raise CorrespondenceError(f"Lesion {printable(lesion.lesion_id)} of patient {printable(lesion.patient_id)} "
                                  f"({lesion.row}) has no location; give location_session and center_r/a/s in the "
                                  "reference standard, or its place per session with --locations.")
    own = lesion.locations.get(session_id)
    if own is not None:
        radius = own.diameter_mm / 2 if math.isfinite(own.diameter_mm) else lesion.diameter_mm / 2
        return Placement(own.centre.copy(), 0.0, "location", radius)
    rank = {s: i for i, s in enumerate(session_order)}
    options = []
    for source in sorted(lesion.locations, key=lambda s: (rank.get(s, len(rank)), s)):
        found = links.route(lesion.patient_id, source, session_id)
        if found is not None:
            options.append((found[1], source, found[0]))
    if not options:
        sources = ", ".join(printable(s) for s in sorted(lesion.locations))
        raise MissingRegistrationError(
            f"Cannot place lesion {printable(lesion.lesion_id)} of patient {printable(lesion.patient_id)} in session "
            f"{printable(session_id)}: it has a location only in session(s) {sources} and no registration under "
            f"{printable(links.transforms)} links them, so run netpet register --table {printable(table_path)} --dicom "
            f"DICOM_FOLDER --patient {printable(lesion.patient_id)} (or give the lesion's location in session "
            f"{printable(session_id)} with --locations).")
    error, source, chain = min(options, key=lambda o: o[0])
    location = lesion.locations[source]
    centre = links.apply(chain, location.centre)[0]
    radius = location.diameter_mm / 2 if math.isfinite(location.diameter_mm) else lesion.diameter_mm / 2
    return Placement(centre, error, links.via(chain), radius)


# -- the study table's findings -------------------------------------------------------------------

def _time_point(value: Any) -> str:
    text = str(value or "").strip()
    return text or BASELINE


def _findings(table_path: str, reader: Optional[str]) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(findings with centroid, radius and time point; reads) of the study table."""
    from netpet.stats.data import read_table

    frame, _ = read_table(table_path)
    if reader is not None:
        frame = frame[frame["reader"] == reader]
        if frame.empty:
            raise CorrespondenceError(f"The study table {printable(table_path)} has no row of reader "
                                      f"{printable(reader)}; choose one of its readers.")
    frame = frame.copy()
    frame["time_point"] = [_time_point(v) for v in frame["time_point"]] if "time_point" in frame else BASELINE
    sessions = frame.groupby(["patient_id", "session_id"])["time_point"].agg(lambda s: sorted(set(s)))
    for (patient, session), values in sessions.items():
        if len(values) > 1:
            rows = frame[(frame["patient_id"] == patient) & (frame["session_id"] == session)]
            first = rows.iloc[0]
            other = rows[rows["time_point"] != first["time_point"]].iloc[0]
            raise CorrespondenceError(f"{other['table_row']}: column time_point is {printable(other['time_point'])} "
                                      f"but {first['table_row']} gives session {printable(session)} of patient "
                                      f"{printable(patient)} the time point {printable(first['time_point'])}; a "
                                      "session has one time point.")
    # a retracted finding stays in the table but is no finding: it must not take a reference lesion from an
    # active finding beside it (the session itself still counts as read)
    retracted = [is_retracted(row) for row in frame.to_dict("records")] if "finding_status" in frame else \
        [False] * len(frame)
    findings = frame[(frame["lesion_id"] != "") & ~pd.Series(retracted, index=frame.index, dtype=bool)].copy()
    centres, radii, places = [], [], []
    for row in findings.to_dict("records"):
        names = _CENTROID if all(row.get(c, "") for c in _CENTROID) else (
            _SEED if all(row.get(c, "") for c in _SEED) else _CENTROID)
        where = row["table_row"]
        if not all(c in row for c in names) or not all(row.get(c, "") for c in names):
            raise CorrespondenceError(f"{where}: finding {printable(row['lesion_id'])} has no centroid_r/a/s (nor "
                                      "seed_r/a/s); quantify it again with netpet quantify or SUV Quant so that it "
                                      "has a place.")
        centres.append([_number(row[c], where, c) for c in names])
        # the click stands for the lesion's place when there is no centroid: said, as it may lie off the centre
        places.append("placed at the reader's click (no centroid in the table)" if names == _SEED else "")
        volume = str(row.get("mtv_ml", "") or "").strip()
        try:
            number = float(volume) if volume else 0.0
        except ValueError:
            number = float("nan")
        if not (math.isfinite(number) and number >= 0):  # a damaged cell must not shrink the gate unsaid
            raise CorrespondenceError(f"{where}: column mtv_ml is {printable(repr(volume))}, not a volume in mL; "
                                      "measure the finding again, or leave the cell empty (no volume).")
        radii.append(sphere_radius_mm(number) if number else 0.0)
    findings["_centre"] = list(np.asarray(centres, dtype=float).reshape(-1, 3))
    findings["_radius"] = radii
    findings["_place"] = places
    folder = os.path.dirname(os.path.abspath(table_path))
    if "segmentation_file" in findings:
        findings["_segmentation"] = [os.path.join(folder, v) if v else "" for v in findings["segmentation_file"]]
    else:
        findings["_segmentation"] = ""
    return findings.reset_index(drop=True), table_reads(frame)


def table_reads(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per read (:data:`READ_COLUMNS`) of a study table read by :func:`netpet.stats.data.read_table`,
    with its ``time_point`` (empty: :data:`BASELINE`) and ``days`` (``days_from_baseline`` as a number or None)."""
    frame = frame.copy()
    frame["time_point"] = [_time_point(v) for v in frame["time_point"]] if "time_point" in frame else BASELINE
    frame["days"] = [_days(v) for v in frame["days_from_baseline"]] if "days_from_baseline" in frame else None
    return frame[[*READ_COLUMNS, "time_point", "days"]].drop_duplicates(list(READ_COLUMNS)).reset_index(drop=True)


def _days(value: Any) -> Optional[float]:
    """``days_from_baseline`` as a number (None when empty or not a number: the order then uses the labels)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _session_order(reads: pd.DataFrame, patient_id: str, extra: Sequence[str] = ()) -> List[str]:
    """The patient's sessions in time order, then by session id: by ``days_from_baseline`` when every
    session has it, else by the time point label's rank (:func:`netpet.schema.time_point_rank`: baseline 0,
    FU1 1...; unknown labels after those, in the table's order of appearance)."""
    from netpet.schema import time_point_rank

    rows = reads[reads["patient_id"] == patient_id]
    times: Dict[str, str] = dict(zip(rows["session_id"], rows["time_point"]))
    days: Dict[str, Optional[float]] = {}
    for session, value in zip(rows["session_id"], rows["days"] if "days" in rows else [None] * len(rows)):
        days.setdefault(session, value)
    appearance = {t: i for i, t in reversed(list(enumerate(rows["time_point"])))}
    every_day = all(days.get(s) is not None for s in times)

    def rank(session: str):
        label = time_point_rank(times[session])
        by_label = (0, label, 0) if label is not None else (1, 0, appearance[times[session]])
        return ((days[session],) if every_day else ()) + by_label + (session,)

    sessions = sorted(times, key=rank)
    return sessions + sorted(set(extra) - set(sessions))


# -- the correspondence file ----------------------------------------------------------------------

def _row_key(row: Dict[str, str]) -> Tuple[str, ...]:
    key = tuple(str(row.get(c, "")) for c in KEY_COLUMNS)
    return key + ((str(row.get("reference_lesion_id", "")),) if not row.get("lesion_id") else ("",))


def read_correspondence(path: str) -> pd.DataFrame:
    """Read and check a correspondence CSV (written by :func:`write_correspondence`, maybe edited).

    Returns
    -------
    pandas.DataFrame
        Text columns :data:`COLUMNS` (further columns dropped), one row per line of the file.

    Raises
    ------
    CorrespondenceError
        A missing file or column; a status other than :data:`STATUSES`; a row whose ids do not fit its
        status (a matched row without reference lesion, an unmatched one with one, a missed one with a
        finding id); a number that is not finite; a duplicated key. Each names the file, the row and
        the column.
    """
    header, rows = _read_csv(path, "correspondence file")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise CorrespondenceError(f"The correspondence file {printable(path)} lacks the column(s) "
                                  f"{', '.join(missing)}; write it with netpet match (columns: {', '.join(COLUMNS)}).")
    seen: Dict[Tuple[str, ...], int] = {}
    for i, row in enumerate(rows):
        line = i + 2
        where = f"{printable(path)} row {line}"
        status = row["status"].lower()
        if status not in STATUSES:
            raise CorrespondenceError(f"{where}: column status is {printable(repr(row['status']))}; write one of "
                                      f"{', '.join(STATUSES)}.")
        row["status"] = status
        for column in READ_COLUMNS:
            if not row[column]:
                raise CorrespondenceError(f"{where}: column {column} is empty; every row names its read (patient, "
                                          "session, modality, tracer, reader).")
        finding, reference = row["lesion_id"], row["reference_lesion_id"]
        problem = None
        if status in ("matched", "ambiguous") and not (finding and reference):
            problem = "needs both lesion_id and reference_lesion_id"
        elif status == "unmatched" and (not finding or reference):
            problem = "needs a lesion_id and an empty reference_lesion_id"
        elif status == "missed" and (finding or not reference):
            problem = "needs an empty lesion_id and a reference_lesion_id"
        elif status == "confirmed" and not (finding or reference):
            problem = "needs a lesion_id, a reference_lesion_id or both"
        if problem:
            raise CorrespondenceError(f"{where}: a {status} row {problem} (lesion_id {printable(repr(finding))}, "
                                      f"reference_lesion_id {printable(repr(reference))}); correct the row.")
        for column in ("distance_mm", "gate_mm", "registration_error_mm"):
            if row[column]:
                _number(row[column], where, column)
        key = _row_key(row)
        if key in seen:
            raise CorrespondenceError(f"{where}: duplicated key: {printable(' '.join(k for k in key if k))} is also on "
                                      f"row {seen[key]}; keep one row.")
        seen[key] = line
    return pd.DataFrame([{c: r[c] for c in COLUMNS} for r in rows], columns=list(COLUMNS)).fillna("")


def write_correspondence(path: str, frame: pd.DataFrame) -> None:
    """Write the correspondence CSV atomically (:func:`netpet.quant.table.replace_atomically`: a flushed temporary
    file in its folder renamed over the old one, which keeps its permissions; a crash leaves the old file or the
    new one).

    Raises
    ------
    CorrespondenceError
        The file cannot be written (the message says why and what to do); the old file is left as it was.
    """
    from netpet.quant.table import replace_atomically

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            for row in frame[list(COLUMNS)].itertuples(index=False):
                writer.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row])

    replace_atomically(os.path.realpath(path), write, suffix=".csv", what="correspondence table",
                       error=CorrespondenceError)


# -- matching -------------------------------------------------------------------------------------

def _mm(value: Optional[float]) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.2f}"


def _gate(lesion_radius: float, finding_radius: float, error_mm: float) -> float:
    return max(lesion_radius, finding_radius, FLOOR_MM) + GATE_K * error_mm


def match_study(table_path: str, reference_path: str, locations_path: Optional[str] = None,
                transforms_folder: Optional[str] = None, reader: Optional[str] = None,
                previous: Union[None, str, pd.DataFrame] = None,
                registration_error_mm: Optional[float] = None) -> pd.DataFrame:
    """Match every finding of the study table to the reference lesions (see the module docstring).

    Parameters
    ----------
    table_path : str
        The study table (CSV or SQLite), with ``centroid_r/a/s`` (RAS mm) per finding.
    reference_path : str
        The reference standard CSV with location columns (:data:`LOCATION_COLUMNS`).
    locations_path : str, optional
        The locations CSV (per lesion and session).
    transforms_folder : str, optional
        The folder of the stored registrations (default: ``transforms`` beside the study table).
    reader : str, optional
        Match only this reader's findings; the rows of the other readers in ``previous`` are kept as
        they are.
    previous : str or pandas.DataFrame, optional
        An earlier correspondence (file or frame) whose ``confirmed`` rows are kept.
    registration_error_mm : float, optional
        The registration error (mm) of every stored registration, instead of the per-basis figure
        measured on the reference study (:data:`netpet.match.registration.REGISTRATION_ERROR_MM`).

    Returns
    -------
    pandas.DataFrame
        The correspondence (:data:`COLUMNS`, text), one row per finding and one per missed reference
        lesion of each read; ``frame.attrs["warnings"]`` lists what the user should know.

    Raises
    ------
    CorrespondenceError, MissingRegistrationError, StatsError, RegistrationError
        Bad inputs, each in one sentence naming the file, row and column.
    """
    from scipy.optimize import linear_sum_assignment

    if registration_error_mm is not None and not (math.isfinite(registration_error_mm) and registration_error_mm >= 0):
        raise CorrespondenceError(f"The registration error {registration_error_mm!r} mm is not a non-negative number; "
                                  "give the error in mm (0 or more).")
    lesions, known_patients = _reference(reference_path, locations_path)
    findings, reads = _findings(table_path, reader)
    folder = transforms_folder if transforms_folder is not None else os.path.join(
        os.path.dirname(os.path.abspath(table_path)), "transforms")
    links = SessionLinks(folder, registration_error_mm)
    warnings: List[str] = []
    masks = _Masks(warnings)
    unknown = [p for p in dict.fromkeys(reads["patient_id"]) if p not in known_patients]
    if unknown:
        raise CorrespondenceError(f"Patient {printable(unknown[0])} of the study table {printable(table_path)} is not "
                                  f"in the reference standard {printable(reference_path)}; add the patient (a patient "
                                  "row with empty lesion_id if lesion-free).")
    confirmed, other_readers = _previous_rows(previous, lesions, reader)
    confirmed_of_read: Dict[Tuple[str, ...], List[Dict[str, str]]] = {}
    for r in confirmed:
        confirmed_of_read.setdefault(tuple(r[c] for c in READ_COLUMNS), []).append(r)
    findings_of_read = {key: group for key, group in findings.groupby(list(READ_COLUMNS), sort=False)}
    rows: List[Dict[str, Any]] = []
    kept = set()
    order = {p: _session_order(reads, p) for p in reads["patient_id"].unique()}
    for read in reads.to_dict("records"):
        read_key = tuple(read[c] for c in READ_COLUMNS)
        patient, session, time_point = read["patient_id"], read["session_id"], read["time_point"]
        base = {**{c: read[c] for c in READ_COLUMNS}, "time_point": time_point}
        mine = findings_of_read.get(read_key, findings.iloc[0:0])
        fixed = {r["lesion_id"]: r for r in confirmed_of_read.get(read_key, []) if r["lesion_id"]}
        for r in confirmed_of_read.get(read_key, []):  # kept as written (their time point follows the table)
            if not r["lesion_id"] or r["lesion_id"] in set(mine["lesion_id"]):
                rows.append({**r, "time_point": time_point})
                kept.add(id(r))
        taken = {r["reference_lesion_id"] for r in confirmed_of_read.get(read_key, []) if r["reference_lesion_id"]}
        free = mine[~mine["lesion_id"].isin(list(fixed))]
        candidates = [l for (p, _), l in lesions.items() if p == patient and l.present_at(time_point)
                      and l.lesion_id not in taken]
        if free.empty:  # nothing to place: every candidate lesion is missed in this read
            for lesion in candidates:
                rows.append({**base, "lesion_id": "", "reference_lesion_id": lesion.lesion_id, "status": "missed",
                             "distance_mm": "", "gate_mm": "", "registration_error_mm": "", "via": "",
                             "candidates": "", "note": "no finding to assign in this read"})
            continue
        placed = [place(l, session, links, order[patient], table_path) for l in candidates]
        rows.extend(_assign(base, free, candidates, placed, linear_sum_assignment, masks))
    for r in confirmed:
        if id(r) not in kept:
            what = f"finding {printable(r['lesion_id'])}" if r["lesion_id"] else \
                f"lesion {printable(r['reference_lesion_id'])}"
            warnings.append(f"The confirmed row of {what} ({printable(' '.join(r[c] for c in READ_COLUMNS))}) has no "
                            "read or finding in the study table any more; it is kept as confirmed.")
            rows.append(dict(r))
    # the cluster ids of the other readers' kept rows are taken: a new X01 must not name another place
    taken = {(r["patient_id"], r["track_id"]) for r in other_readers if r.get("track_id")}
    frame = _tracks(rows, findings, lesions, links, reads, taken)
    if other_readers:  # rows of the readers not matched this time stay as they were
        frame = pd.concat([frame, pd.DataFrame(other_readers, columns=list(COLUMNS))], ignore_index=True)
        frame = frame.sort_values(["patient_id", "reader"], kind="stable").reset_index(drop=True)
    frame.attrs["warnings"] = warnings
    frame.attrs["transforms"] = links.transforms
    return frame


def _reference(reference_path: str, locations_path: Optional[str]):
    from netpet.stats.data import read_reference

    reference = read_reference(reference_path)
    lesions = _lesions(reference, reference_path)
    if locations_path:
        _read_locations_file(locations_path, lesions)
    return lesions, set(reference.patients["patient_id"])


def _previous_rows(previous, lesions, reader: Optional[str]) -> Tuple[List[Dict[str, str]], List[Dict[str, str]]]:
    """(the confirmed rows of the earlier correspondence, its rows of readers other than ``reader``)."""
    if previous is None:
        return [], []
    frame = read_correspondence(previous) if isinstance(previous, str) else previous.fillna("").astype(str)
    where = printable(previous) if isinstance(previous, str) else "the previous correspondence"
    out, others = [], []
    for i, row in enumerate(frame.to_dict("records")):
        if reader is not None and row.get("reader") != reader:
            others.append({c: str(row.get(c, "")) for c in COLUMNS})
            continue
        if str(row.get("status", "")).lower() != "confirmed":
            continue
        reference = row.get("reference_lesion_id", "")
        if reference and (row["patient_id"], reference) not in lesions:
            raise CorrespondenceError(f"{where} row {i + 2}: column reference_lesion_id is {printable(reference)}, not "
                                      f"a lesion of patient {printable(row['patient_id'])} in the reference standard; "
                                      "correct the confirmed row.")
        out.append({c: str(row.get(c, "")) for c in COLUMNS})
    return out, others


class _Masks:
    """The findings' segmentations (``.seg.nrrd``, one segment per finding id), read once, asked whether
    they hold given RAS points; None when a finding has no readable segment."""

    def __init__(self, warnings: List[str]) -> None:
        self.warnings = warnings
        self._files: Dict[str, Any] = {}
        self._masks: Dict[Tuple[str, str], Optional[np.ndarray]] = {}

    def holds(self, path: str, segment_id: str, points_ras: np.ndarray) -> Optional[np.ndarray]:
        import slicerio

        if not path:
            return None
        if path not in self._files:
            try:
                self._files[path] = slicerio.read_segmentation(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable file: the masks are not used, and it is said
                self._files[path] = None
                self.warnings.append(f"The segmentation {printable(path)} could not be read ({printable(exc)}); "
                                     "matching used centroids only for its findings.")
        segmentation = self._files[path]
        if segmentation is None:
            return None
        key = (path, segment_id)
        if key not in self._masks:  # each segment's mask once, however many rivals ask
            try:
                segment = slicerio.segment_from_id(segmentation, segment_id)
            except KeyError:  # no segment of that id (e.g. a finding not separable): centroids only, said
                self.warnings.append(f"The segmentation {printable(path)} has no segment {printable(segment_id)}; "
                                     "matching used its centroid only.")
                self._masks[key] = None
            else:
                self._masks[key] = slicerio.segment_mask(segmentation, segment) > 0
        mask = self._masks[key]
        if mask is None:
            return None
        points = np.atleast_2d(np.asarray(points_ras, dtype=float))
        homogeneous = np.c_[ras_to_lps_array(points), np.ones(len(points))]
        to_ijk = np.linalg.inv(np.asarray(segmentation["ijkToLPS"], dtype=float))
        ijk = np.rint((to_ijk @ homogeneous.T).T[:, :3]).astype(int)  # slicerio's mask is indexed [i, j, k]
        inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
        out = np.zeros(len(ijk), dtype=bool)
        out[inside] = mask[tuple(ijk[inside].T)]
        return out


def _by_masks(masks: _Masks, free: pd.DataFrame, i: int, j: int, rival_lesions: List[int], rival_findings: List[int],
              lesions: List[ReferenceLesion], placed: List[Placement], rivals: List[str], note: str) -> Tuple[str, str]:
    """The masks' tie-break of an ambiguous pair (finding i, lesion j): (status, note); see the module docstring."""
    paths, ids = list(free["_segmentation"]), list(free["lesion_id"])
    held = masks.holds(paths[i], ids[i], np.stack([placed[k].centre for k in [j, *rival_lesions]]))
    if held is None:
        return "ambiguous", note
    others = [masks.holds(paths[k], ids[k], placed[j].centre) for k in rival_findings]
    if held[0] and not held[1:].any() and all(o is not None and not o[0] for o in others):
        return "matched", (f"by distance it could flip ({'; '.join(rivals)}); resolved by the segmentations: "
                           f"finding {ids[i]}'s segment holds the centre of {lesions[j].lesion_id} only")
    inside = [lesions[k].lesion_id for k, h in zip([j, *rival_lesions], held) if h]
    holds = (f"its segment holds the centre of {', '.join(inside)}" if inside
             else "its segment holds no candidate's centre")
    return "ambiguous", f"{note}; {holds}"


def _assign(base, free: pd.DataFrame, lesions: List[ReferenceLesion], placed: List[Placement], solver,
            masks: Optional[_Masks] = None) -> List[Dict[str, Any]]:
    """Rows of one read: its free findings assigned to its candidate lesions (see the module docstring)."""
    centres = np.stack(list(free["_centre"])) if len(free) else np.zeros((0, 3))
    radii = free["_radius"].to_numpy(dtype=float)
    ids = list(free["lesion_id"])
    n, m = len(ids), len(lesions)
    if m:
        points = np.stack([p.centre for p in placed])
        distance = np.linalg.norm(centres[:, None, :] - points[None, :, :], axis=2)
        gate = np.array([[_gate(p.radius_mm, radii[i], p.error_mm) for p in placed] for i in range(n)])
    else:
        distance = gate = np.zeros((n, 0))
    inside = distance <= gate
    assigned: Dict[int, int] = {}
    if inside.any():
        big = float(distance[inside].max() + 1.0) * (n + m + 1)
        cost = np.where(inside, distance, big)
        for i, j in zip(*solver(cost)):
            if inside[i, j]:
                assigned[int(i)] = int(j)
    of_lesion = {j: i for i, j in assigned.items()}
    rows = []
    for i, finding in enumerate(ids):
        others = sorted(((distance[i, j], lesions[j].lesion_id) for j in range(m) if inside[i, j]
                         and assigned.get(i) != j), key=lambda t: (t[0], t[1]))
        listed = ";".join(f"{lid}:{d:.1f}" for d, lid in others)
        if i in assigned:
            j = assigned[i]
            d, error = distance[i, j], placed[j].error_mm
            limit = d + error + AMBIGUITY_MARGIN_MM
            rival_lesions = [k for k in range(m) if k != j and inside[i, k]
                             and distance[i, k] < d + max(error, placed[k].error_mm) + AMBIGUITY_MARGIN_MM]
            rival_findings = [k for k in range(n) if k != i and inside[k, j] and distance[k, j] < limit]
            rivals = [f"reference lesion {lesions[k].lesion_id} at {distance[i, k]:.1f} mm" for k in rival_lesions]
            rivals += [f"finding {ids[k]} of this read at {distance[k, j]:.1f} mm" for k in rival_findings]
            status = "ambiguous" if rivals else "matched"
            note = (f"could flip: {'; '.join(rivals)} (within {d:.1f} + {error:.1f} + {AMBIGUITY_MARGIN_MM:.0f} mm); "
                    "confirm it") if rivals else ""
            if rivals and masks is not None:
                status, note = _by_masks(masks, free, i, j, rival_lesions, rival_findings, lesions, placed, rivals,
                                         note)
            rows.append({**base, "lesion_id": finding, "reference_lesion_id": lesions[j].lesion_id,
                         "status": status, "distance_mm": _mm(d), "gate_mm": _mm(gate[i, j]),
                         "registration_error_mm": _mm(error), "via": placed[j].via, "candidates": listed,
                         "note": "; ".join(t for t in (note, free["_place"].iloc[i]) if t), "_finding": i})
        else:
            near = [(distance[i, j], j) for j in range(m) if inside[i, j]]
            note = ""
            if near:
                d, j = min(near)
                other = of_lesion.get(j)
                taken_by = f" (assigned to finding {ids[other]})" if other is not None else ""
                note = f"within the gate of reference lesion {lesions[j].lesion_id} at {d:.1f} mm{taken_by}"
            elif m:
                j = int(np.argmin(distance[i]))
                note = f"nearest reference lesion {lesions[j].lesion_id} at {distance[i, j]:.1f} mm, beyond its gate"
            rows.append({**base, "lesion_id": finding, "reference_lesion_id": "", "status": "unmatched",
                         "distance_mm": "", "gate_mm": "", "registration_error_mm": "", "via": "",
                         "candidates": listed, "note": "; ".join(t for t in (note, free["_place"].iloc[i]) if t),
                         "_finding": i})
    for j, lesion in enumerate(lesions):
        if j in of_lesion:
            continue
        near = sorted((distance[i, j], ids[i]) for i in range(n) if inside[i, j])
        nearest = (f"nearest finding {ids[int(np.argmin(distance[:, j]))]} at {distance[:, j].min():.1f} mm"
                   if n else "no finding in this read")
        rows.append({**base, "lesion_id": "", "reference_lesion_id": lesion.lesion_id, "status": "missed",
                     "distance_mm": "", "gate_mm": _mm(_gate(placed[j].radius_mm, 0.0, placed[j].error_mm)),
                     "registration_error_mm": _mm(placed[j].error_mm), "via": placed[j].via,
                     "candidates": ";".join(f"{fid}:{d:.1f}" for d, fid in near),
                     "note": nearest if not near else "its findings in the gate went to other lesions"})
    return rows


def _tracks(rows: List[Dict[str, Any]], findings: pd.DataFrame, lesions, links: SessionLinks, reads: pd.DataFrame,
            taken: Set[Tuple[str, str]] = frozenset()) -> pd.DataFrame:
    """Fill ``track_id`` (reference lesion, or a cluster X01... of unmatched findings) and order the rows.
    ``taken``: (patient, track id) already used by rows kept as they were (other readers' rows of a ``reader``
    run); new clusters skip those ids, so two places never share one (a finding of this reader at the place of
    another reader's kept cluster gets a cluster of its own)."""
    centre_of = {tuple(r[c] for c in READ_COLUMNS) + (r["lesion_id"],): (r["_centre"], r["_radius"])
                 for r in findings.to_dict("records")}
    for row in rows:
        if row.get("reference_lesion_id") and row["status"] != "unmatched":
            row["track_id"] = row["reference_lesion_id"]
    pending = [r for r in rows if not r.get("reference_lesion_id") and r.get("lesion_id")]
    by_patient: Dict[str, List[Dict[str, Any]]] = {}
    for row in pending:
        by_patient.setdefault(row["patient_id"], []).append(row)
    for patient, members in by_patient.items():
        order = _session_order(reads, patient)
        rank = {s: i for i, s in enumerate(order)}
        hub = order[0] if order else ""
        used = {lid for (p, lid) in lesions if p == patient} | {t for (p, t) in taken if p == patient}
        clusters: List[Dict[str, Any]] = []
        members.sort(key=lambda r: (rank.get(r["session_id"], len(rank)), r["session_id"], r["modality"],
                                    r["tracer"], r["reader"], r["lesion_id"]))
        number = 0
        for row in members:
            key = tuple(row[c] for c in READ_COLUMNS) + (row["lesion_id"],)
            point = None
            if key in centre_of:
                centre, radius = centre_of[key]
                route = links.route(patient, row["session_id"], hub)
                if route is not None:
                    point = (links.apply(route[0], centre)[0], radius, route[1])
                else:
                    row["note"] = "; ".join(t for t in (row.get("note", ""), f"not compared with the findings of other "
                                            f"sessions: no registration links session {row['session_id']} to "
                                            f"{hub}") if t)
            best = None
            if point is not None:
                for cluster in clusters:
                    if cluster["point"] is None or key[:5] in cluster["reads"]:
                        continue
                    p, r, e = cluster["point"]
                    d = float(np.linalg.norm(point[0] - p))
                    if d <= _gate(r, point[1], e + point[2]) and (best is None or d < best[0]):
                        best = (d, cluster)
            if best is None:
                number += 1
                name = f"X{number:02d}"
                while name in used:
                    number += 1
                    name = f"X{number:02d}"
                used.add(name)
                best = (0.0, {"id": name, "point": point, "reads": set()})
                clusters.append(best[1])
            best[1]["reads"].add(key[:5])
            row["track_id"] = best[1]["id"]
    order_rank = {}
    for patient in reads["patient_id"].unique():
        for i, s in enumerate(_session_order(reads, patient)):
            order_rank[(patient, s)] = i
    status_rank = {s: i for i, s in enumerate(STATUSES)}
    rows.sort(key=lambda r: (r["patient_id"], order_rank.get((r["patient_id"], r["session_id"]), 10 ** 6),
                             r["session_id"], r["modality"], r["tracer"], r["reader"], not r.get("lesion_id"),
                             r.get("_finding", 0), r.get("lesion_id", ""), r.get("reference_lesion_id", ""),
                             status_rank.get(r["status"], 9)))
    frame = pd.DataFrame([{c: ("" if r.get(c) is None else str(r.get(c, ""))) for c in COLUMNS} for r in rows],
                         columns=list(COLUMNS))
    return frame


def summarise(frame: pd.DataFrame) -> Dict[str, Any]:
    """Counts of a correspondence: per status, per patient and status, the ambiguous rows to confirm.

    Returns
    -------
    dict
        ``counts`` ({status: n}, also ``false_positives`` = unmatched, ``false_negatives`` = missed),
        ``patients`` ({patient: {status: n}}), ``ambiguous`` (one dict per row to confirm: its key,
        reference lesion, distance and note), ``warnings``.
    """
    counts = {s: int((frame["status"] == s).sum()) for s in STATUSES}
    counts["findings"] = int((frame["lesion_id"] != "").sum())
    counts["false_positives"] = counts["unmatched"]
    counts["false_negatives"] = counts["missed"]
    patients = {p: {s: int((group["status"] == s).sum()) for s in STATUSES}
                for p, group in frame.groupby("patient_id", sort=True)}
    ambiguous = [{c: r[c] for c in (*KEY_COLUMNS, "reference_lesion_id", "distance_mm", "candidates", "note")}
                 for r in frame[frame["status"] == "ambiguous"].to_dict("records")]
    return {"counts": counts, "patients": patients, "ambiguous": ambiguous,
            "warnings": list(frame.attrs.get("warnings", []))}
