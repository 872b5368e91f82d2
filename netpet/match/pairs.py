"""Matched lesions of two sessions side by side: what the Slicer modules show and the review lists.

:func:`matched_pairs` joins the correspondence table (``netpet match``: one row per finding, with the
reference lesion and the patient's ``track_id`` across sessions) with the study table's findings
(centroid, SUVmax, MTV, call) and lays two sessions of one patient next to each other: one row per
track present in either session. A track found in one session only is a row with the other side
empty: the lesion one session shows and the other does not (a false negative of that session when
the track is a reference lesion, or a finding of its own when it is not).

Each side keeps its own session's coordinates (RAS mm of that session's PET): a viewer shows each
session in its own frame and centres each view on its own finding, so no registration is needed to
look at a pair; registrations decide which findings are paired (``netpet match``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from netpet.errors import NetpetError, printable

#: the columns of a side of a pair (``_a`` and ``_b`` suffixes), from the study table
SIDE_COLUMNS = ("lesion_id", "status", "call", "suv_max", "mtv_ml", "tl_ratio", "centroid_r", "centroid_a",
                "centroid_s", "series_uid", "session_id", "modality", "tracer", "time_point")
#: the columns of :func:`matched_pairs`
PAIR_COLUMNS = ("patient_id", "track_id", "reference_lesion_id", "reader", "pair_status",
                *[f"{c}_a" for c in SIDE_COLUMNS], *[f"{c}_b" for c in SIDE_COLUMNS])
#: statuses that pair a finding with a track (a person must look at ``ambiguous`` ones)
PAIRED_STATUSES = ("matched", "confirmed", "ambiguous", "unmatched")


class PairsError(NetpetError):
    """A correspondence and a study table that do not fit together, or sessions the patient lacks."""


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number if np.isfinite(number) else float("nan")


def _side(rows: pd.DataFrame, session: str) -> Dict[str, Dict[str, Any]]:
    """track id -> the finding of this session on it (the first in the correspondence's order when a track holds
    two, e.g. two unmatched findings clustered together; a missed row only where no finding is)."""
    out: Dict[str, Dict[str, Any]] = {}
    for row in rows[rows["session_id"] == session].to_dict("records"):
        track = row.get("track_id") or ""
        if not track:
            continue
        if row.get("status") == "missed":
            out.setdefault(track, {"session_id": session, "status": "missed", "modality": row.get("modality", ""),
                                   "tracer": row.get("tracer", ""), "time_point": row.get("time_point", "")})
            continue
        held = out.get(track)
        if held is None or held.get("status") == "missed":
            out[track] = row
    return out


def matched_pairs(table: pd.DataFrame, correspondence: pd.DataFrame, patient_id: str, session_a: str,
                  session_b: str, reader: Optional[str] = None) -> pd.DataFrame:
    """The tracks of one patient in two sessions, side by side.

    Parameters
    ----------
    table : pandas.DataFrame
        The study table (columns of :data:`netpet.schema.COLUMNS`; text is fine: values are read as
        numbers here). Needs ``patient_id``, ``session_id``, ``reader``, ``lesion_id``.
    correspondence : pandas.DataFrame
        The correspondence table of ``netpet match`` (``track_id`` and ``status`` per finding;
        ``missed`` rows for reference lesions without finding).
    patient_id, session_a, session_b : str
        The patient and the two sessions to lay side by side (``a`` left, ``b`` right).
    reader : str, optional
        The reader whose findings are shown (default: the only reader of the patient's two sessions).

    Returns
    -------
    pandas.DataFrame
        :data:`PAIR_COLUMNS`: one row per track found (or missed) in either session, sorted by track;
        ``pair_status`` is ``both`` (found in both sessions), ``a only``, ``b only``, or ``ambiguous``
        when either side's match awaits a person's confirmation. Centroids are RAS mm of each side's
        own session; SUVmax, MTV (mL) and T/L are the table's.

    Raises
    ------
    PairsError
        A session the correspondence does not hold for the patient, several readers and none chosen,
        or a correspondence row naming a finding the table lacks.
    """
    for name, frame, needed in (("study table", table, ("patient_id", "session_id", "reader", "lesion_id")),
                                ("correspondence", correspondence,
                                 ("patient_id", "session_id", "reader", "lesion_id", "track_id", "status"))):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise PairsError(f"The {name} lacks the column(s) {', '.join(missing)}.")
    text = lambda frame: frame.astype(object).where(frame.notna(), "").astype(str)  # noqa: E731
    corr = text(correspondence)
    corr = corr[corr["patient_id"] == patient_id]
    sessions = set(corr["session_id"])
    for session in (session_a, session_b):
        if session not in sessions:
            known = ", ".join(sorted(sessions)) or "none"
            raise PairsError(f"The correspondence has no session {printable(session)} for patient "
                             f"{printable(patient_id)} (its sessions: {printable(known)}); run netpet match on a "
                             "table holding that session.")
    corr = corr[corr["session_id"].isin((session_a, session_b))]
    readers = sorted(set(corr["reader"]))
    if reader is None:
        if len(readers) > 1:
            raise PairsError(f"Patient {printable(patient_id)} was read by {printable(', '.join(readers))} in these "
                             "sessions; choose one reader.")
        reader = readers[0] if readers else ""
    corr = corr[corr["reader"] == reader]
    rows = text(table)
    rows = rows[(rows["patient_id"] == patient_id) & (rows["reader"] == reader) & (rows["lesion_id"] != "")]
    findings = {(r["session_id"], r["lesion_id"]): r for r in rows.to_dict("records")}
    joined: List[Dict[str, Any]] = []
    for row in corr.to_dict("records"):
        if row["status"] != "missed":
            finding = findings.get((row["session_id"], row["lesion_id"]))
            if finding is None:
                raise PairsError(f"The correspondence names finding {printable(row['lesion_id'])} of patient "
                                 f"{printable(patient_id)}, session {printable(row['session_id'])}, reader "
                                 f"{printable(reader)}, which the study table lacks; run netpet match again.")
            row = {**finding, **{k: row[k] for k in ("track_id", "status", "reference_lesion_id")}}
        joined.append(row)
    frame = pd.DataFrame(joined, columns=sorted({k for r in joined for k in r}) or ["session_id"])
    a, b = _side(frame, session_a), _side(frame, session_b)
    out = []
    for track in sorted(set(a) | set(b)):
        left, right = a.get(track, {}), b.get(track, {})
        present = [bool(side) and side.get("status") != "missed" for side in (left, right)]
        if "ambiguous" in (left.get("status"), right.get("status")):
            status = "ambiguous"
        elif all(present):
            status = "both"
        elif present[0]:
            status = "a only"
        elif present[1]:
            status = "b only"
        else:
            status = "neither"
        reference = left.get("reference_lesion_id") or right.get("reference_lesion_id") or ""
        record: Dict[str, Any] = {"patient_id": patient_id, "track_id": track, "reference_lesion_id": reference,
                                  "reader": reader, "pair_status": status}
        for suffix, side, session in (("a", left, session_a), ("b", right, session_b)):
            for column in SIDE_COLUMNS:
                value = side.get(column, "")
                if column in ("suv_max", "mtv_ml", "tl_ratio", "centroid_r", "centroid_a", "centroid_s"):
                    value = _number(value)
                record[f"{column}_{suffix}"] = value
            record[f"session_id_{suffix}"] = session
            if side.get("status") == "missed":
                record[f"lesion_id_{suffix}"] = ""
        out.append(record)
    return pd.DataFrame(out, columns=list(PAIR_COLUMNS))


def pair_label(pair: Dict[str, Any]) -> str:
    """One line naming a pair for a list: ``T03 (reference L02): L01 <-> L04, both``."""
    reference = f" (reference {pair['reference_lesion_id']})" if pair.get("reference_lesion_id") and \
        pair.get("reference_lesion_id") != pair.get("track_id") else ""
    left = pair.get("lesion_id_a") or "-"
    right = pair.get("lesion_id_b") or "-"
    return f"{pair['track_id']}{reference}: {left} <-> {right}, {pair['pair_status']}"
