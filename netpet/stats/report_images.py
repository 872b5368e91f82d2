"""Images of the StudyStats report: a MIP per session read with its lesions marked, and a thumbnail of
every false finding.

``netpet stats --dicom ROOT`` indexes the DICOM tree (:func:`netpet.dicom.index.index_tree`), finds
each session's PET by the study table's ``series_uid`` and converts it to SUV
(:func:`netpet.dicom.convert.convert_to_suv`, body weight). Then, per session:

MIP
    The coronal maximum-intensity projection of the SUV volume (the maximum along the
    anterior-posterior voxel axis; Wallis JW et al., IEEE Trans Med Imaging 1989 on MIPs in nuclear
    medicine), inverted grey scale from SUV 0 to the 99.5th percentile of the body, in radiological
    orientation (the patient's right on the viewer's left, head up). Each lesion unit of the session
    is a numbered ring at its place, coloured by its result: true positive, false positive, false
    negative, true negative (colour-blind-safe palette of Wong B, Nat Methods 2011;8:441). A found
    lesion sits at its finding's centroid (``centroid_r/a/s``, else the click ``seed_r/a/s``); a lesion
    without a finding at the reference standard's location when that location was given in this
    session (``location_session``); lesions with no place in this scan are counted under the image.
Thumbnail
    Every false positive and false negative with a place: the axial SUV slice through it, 80 mm
    square around it, with a ring of the lesion's diameter (or 10 mm).

The PNGs are written to ``images/`` and embedded in the report, which stays one file. A session
whose PET cannot be found or converted is named in a note (one sentence), never a traceback.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from netpet.errors import NetpetError, printable
from netpet.stats.intervals import StatsError

log = logging.getLogger(__name__)

#: colours of the results (Wong 2011): true positive bluish green, false positive vermilion, false negative blue,
#: true negative grey
KIND_COLOURS = {"TP": "#009E73", "FP": "#D55E00", "FN": "#0072B2", "TN": "#7f7f7f"}
KIND_NAMES = {"TP": "true positive", "FP": "false positive", "FN": "false negative", "TN": "true negative"}
#: the half side of a thumbnail, mm
THUMB_HALF_MM = 40.0
#: the upper end of the grey scale: this percentile of the voxels above SUV 0.1
WINDOW_PERCENTILE = 99.5
CENTROID_SETS = (("centroid_r", "centroid_a", "centroid_s"), ("seed_r", "seed_a", "seed_s"))


def _kind(truth: int, call: int) -> str:
    return ("TP" if call else "FN") if truth else ("FP" if call else "TN")


def _point(row: Mapping[str, Any], columns: Sequence[str]) -> Optional[Tuple[float, float, float]]:
    try:
        values = [float(row.get(c, "")) for c in columns]
    except (TypeError, ValueError):
        return None
    return tuple(values) if all(np.isfinite(values)) else None  # type: ignore[return-value]


def lesion_places(analysis: Any, table: pd.DataFrame) -> pd.DataFrame:
    """Every lesion unit with its session, result (TP/FP/FN/TN) and place (RAS mm, NaN when unknown).

    A found lesion takes its finding's session and centroid (the study-table row named by ``table_row``);
    a lesion without a finding takes the session of the group's reads whose ``session_id`` equals the
    reference standard's ``location_session`` and the reference centre there.
    """
    lesions = analysis.units["lesion"].copy()
    by_row = table.set_index("table_row") if "table_row" in table else pd.DataFrame()
    places, sessions = [], []
    for unit in lesions.to_dict("records"):
        point = None
        session = unit.get("session_id") if isinstance(unit.get("session_id"), str) else ""
        if unit.get("found") and isinstance(unit.get("table_row"), str) and unit["table_row"] in by_row.index:
            row = by_row.loc[unit["table_row"]]
            row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
            for columns in CENTROID_SETS:
                point = _point(row, columns)
                if point:
                    break
        elif str(unit.get("location_session") or ""):
            session = str(unit["location_session"])
            point = _point(unit, ("center_r", "center_a", "center_s"))
        places.append(point or (np.nan, np.nan, np.nan))
        sessions.append(session)
    lesions["image_session"] = sessions
    lesions[["place_r", "place_a", "place_s"]] = np.asarray(places, dtype=float).reshape(-1, 3)
    lesions["result"] = [_kind(int(t), int(c)) for t, c in zip(lesions["truth"], lesions["call"])]
    return lesions


def _series_of(table: pd.DataFrame) -> Dict[Tuple[str, str], str]:
    """(patient_id, session_id) -> the session's PET series UID (the first given in its rows)."""
    if "series_uid" not in table:
        return {}
    out: Dict[Tuple[str, str], str] = {}
    for row in table[["patient_id", "session_id", "series_uid"]].itertuples(index=False):
        uid = str(row.series_uid or "").strip()
        if uid:
            out.setdefault((str(row.patient_id).strip(), str(row.session_id).strip()), uid)
    return out


def _save(figure, path: str) -> None:
    from netpet.stats.report import _atomic_write

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=130, metadata={"Software": None})
    _atomic_write(path, buffer.getvalue())


def _to_index(image, ras: Tuple[float, float, float]) -> Tuple[float, float, float]:
    """Continuous (i, j, k) voxel index of a RAS point in a SimpleITK (LPS) image."""
    return image.TransformPhysicalPointToContinuousIndex((-ras[0], -ras[1], ras[2]))


def _window(array: np.ndarray) -> float:
    body = array[array > 0.1]
    return float(np.percentile(body, WINDOW_PERCENTILE)) if body.size else float(max(array.max(), 1.0))


def _place_labels(points: Sequence[Tuple[float, float]], size: Tuple[float, float]) -> List[Tuple[float, float]]:
    """Label positions next to ``points`` (data units) that do not overlap each other: the first free of eight
    offsets around each point, farther out when all are taken."""
    width, height = size
    placed: List[Tuple[float, float]] = []
    out = []
    for x, y in points:
        chosen = None
        for distance in (1.0, 1.8, 2.6, 3.4):
            for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)):
                cx, cy = x + dx * distance * width, y + dy * distance * height
                if all(abs(cx - px) >= width or abs(cy - py) >= height for px, py in placed):
                    chosen = (cx, cy)
                    break
            if chosen:
                break
        chosen = chosen or (x + width, y + height * (1 + len(placed)))
        placed.append(chosen)
        out.append(chosen)
    return out


def mip_figure(array: np.ndarray, spacing: Sequence[float], flips: Tuple[bool, bool],
               markers: Sequence[Tuple[int, float, float, str]], title: str):
    """The coronal MIP figure of an SUV array (z, y, x) with numbered rings (number, i, k, result)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mip = array.max(axis=1)  # (z, x): the maximum along the anterior-posterior axis
    nz, nx = mip.shape
    aspect = float(spacing[2]) / float(spacing[0])
    height_in = 5.2
    width_in = max(min(height_in * nx / max(nz * aspect, 1) + 0.6, 5.2), 2.4)
    fig, ax = plt.subplots(figsize=(width_in, height_in), layout="constrained")
    ax.imshow(mip, cmap="Greys", vmin=0.0, vmax=_window(array), origin="lower", aspect=aspect,
              interpolation="nearest")
    if flips[0]:
        ax.invert_xaxis()
    if flips[1]:
        ax.invert_yaxis()
    font = 7.0
    label_w, label_h = 0.045 * nx, 0.022 * nz
    positions = _place_labels([(i, k) for _, i, k, _ in markers], (label_w, label_h))
    for (number, i, k, result), (lx, ly) in zip(markers, positions):
        colour = KIND_COLOURS[result]
        ax.plot([i], [k], marker="o", ms=9, mfc="none", mec=colour, mew=1.6)
        ax.text(lx, ly, str(number), color=colour, fontsize=font, fontweight="bold", ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    ax.text(0.02, 0.01, "R", transform=ax.transAxes, fontsize=7, color="0.3", ha="left", va="bottom")
    ax.text(0.98, 0.01, "L", transform=ax.transAxes, fontsize=7, color="0.3", ha="right", va="bottom")
    return fig


def thumbnail_figure(plane: np.ndarray, centre: Tuple[float, float], radius_px: float, vmax: float, result: str,
                     title: str):
    """An axial thumbnail: the cropped plane with a ring around the lesion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, ax = plt.subplots(figsize=(2.2, 2.4), layout="constrained")
    ax.imshow(plane, cmap="Greys", vmin=0.0, vmax=vmax, origin="upper", interpolation="nearest")
    ax.add_patch(Circle(centre, max(radius_px, 2.0), fill=False, ec=KIND_COLOURS[result], lw=1.5))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)
    return fig


def _embed(path: str) -> str:
    with open(path, "rb") as handle:
        return "data:image/png;base64," + base64.b64encode(handle.read()).decode("ascii")


def check_dicom_root(dicom_root: str) -> None:
    """Refuse a ``--dicom`` that is not a folder (before any output is written).

    Raises
    ------
    StatsError
        Naming the path and what to give.
    """
    if not os.path.isdir(dicom_root):
        raise StatsError(f"--dicom {printable(dicom_root)} is not a folder; give the folder tree of the study's DICOM "
                         "files (the one netpet index reads).")


def session_images(analysis: Any, dicom_root: str, folder: str) -> Dict[str, Any]:
    """MIPs and false-finding thumbnails of every session read (see the module docstring).

    Parameters
    ----------
    analysis : netpet.stats.analysis.Analysis
        The analysis (its lesion units and the study table named in its result).
    dicom_root : str
        The folder tree of the study's DICOM files.
    folder : str
        Where the PNGs go (created).

    Returns
    -------
    dict
        ``mips`` and ``thumbnails`` (lists of {title, png, caption, legend}), ``notes`` (sentences on the
        sessions without an image), ``root``.

    Raises
    ------
    StatsError
        ``dicom_root`` is no folder or holds no DICOM series.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    from netpet.dicom.convert import convert_to_suv
    from netpet.dicom.index import index_tree
    from netpet.stats.data import read_table

    check_dicom_root(dicom_root)
    try:
        index = index_tree(dicom_root)
    except NetpetError as exc:
        raise StatsError(f"--dicom {printable(dicom_root)}: {exc}") from exc
    if not index.all_series():
        raise StatsError(f"--dicom {printable(dicom_root)} holds no DICOM series; give the folder tree of the "
                         "study's DICOM files.")
    table, _ = read_table(analysis.result["inputs"]["table"])
    lesions = lesion_places(analysis, table)
    series = _series_of(table)
    os.makedirs(folder, exist_ok=True)
    out: Dict[str, Any] = {"mips": [], "thumbnails": [], "notes": [], "root": dicom_root}
    keys = [k for k in ("modality", "tracer", "reader", "time_point") if k in lesions]
    sessions = lesions[lesions["image_session"] != ""].drop_duplicates(["patient_id", "image_session", *keys])
    cache: Dict[str, Any] = {}
    for session in sessions.sort_values(["patient_id", *keys, "image_session"]).to_dict("records"):
        patient, session_id = session["patient_id"], session["image_session"]
        group = " ".join(str(session[k]) for k in keys if str(session[k]) not in ("", "baseline"))
        name = f"{patient} {session_id} {session['reader']}"
        uid = series.get((patient, session_id))
        if not uid:
            out["notes"].append(f"{name}: the study table gives no series_uid for this session: no image.")
            continue
        if uid not in cache:
            log.info("report images: converting the PET of %s (series %s)", name, uid)
            try:
                record = index.series(uid)
                cache[uid] = convert_to_suv(record).image
            except NetpetError as exc:
                cache[uid] = str(exc)
        image = cache[uid]
        if isinstance(image, str):
            out["notes"].append(f"{name}: PET series {printable(uid)} gives no image: {image}")
            continue
        array = sitk.GetArrayFromImage(image)
        direction = image.GetDirection()
        flips = (direction[0] < 0, direction[8] < 0)
        mask = (lesions["patient_id"] == patient) & (lesions["image_session"] == session_id)
        for k in keys:
            mask &= lesions[k].astype(str) == str(session[k])
        units = lesions[mask].sort_values(["result", "lesion_id"]).reset_index(drop=True)
        markers, legend, unplaced = [], [], 0
        for number, unit in enumerate(units.to_dict("records"), start=1):
            place = (unit["place_r"], unit["place_a"], unit["place_s"])
            if not np.all(np.isfinite(place)):
                unplaced += 1
                continue
            i, j, k = _to_index(image, place)
            markers.append((number, i, k, unit["result"]))
            legend.append({"number": number, "lesion": unit["lesion_id"], "result": unit["result"],
                           "region": unit.get("region", ""), "call": unit.get("finding_call") or "no finding",
                           "ijk": (i, j, k), "unit": unit})
        slug = f"{patient}_{session_id}_{session['reader']}".replace("/", "").replace(" ", "_")
        figure = mip_figure(array, image.GetSpacing(), flips, markers, f"{patient} {group}")
        path = os.path.join(folder, f"mip_{slug}.png")
        _save(figure, path)
        plt.close(figure)
        caption = f"Coronal MIP (SUV), {patient}, session {session_id}, {group}."
        if unplaced:
            caption += f" {unplaced} lesion(s) without a place in this scan are not marked."
        out["mips"].append({"title": f"MIP {name}", "png": path, "caption": caption,
                            "legend": [{k: v for k, v in e.items() if k not in ("ijk", "unit")} for e in legend]})
        vmax = _window(array)
        spacing = image.GetSpacing()
        for entry in legend:
            if entry["result"] not in ("FP", "FN"):
                continue
            i, j, k = entry["ijk"]
            plane_index = int(round(k))
            if not 0 <= plane_index < array.shape[0]:
                continue
            half_i, half_j = int(THUMB_HALF_MM / spacing[0]), int(THUMB_HALF_MM / spacing[1])
            ci, cj = int(round(i)), int(round(j))
            i0, j0 = max(ci - half_i, 0), max(cj - half_j, 0)
            plane = array[plane_index, j0:cj + half_j + 1, i0:ci + half_i + 1]
            unit = entry["unit"]
            diameter = unit.get("diameter_mm")
            try:
                radius = float(diameter) / 2.0 / spacing[0] + 1.5
            except (TypeError, ValueError):
                radius = 5.0 / spacing[0] + 1.5
            if not np.isfinite(radius):
                radius = 5.0 / spacing[0] + 1.5
            title = f"{entry['result']} {entry['number']}: {unit['lesion_id']}"
            figure = thumbnail_figure(plane, (i - i0, j - j0), radius, vmax, entry["result"], title)
            path = os.path.join(folder, f"thumb_{slug}_{entry['number']}_{unit['lesion_id']}.png".replace("/", ""))
            _save(figure, path)
            plt.close(figure)
            out["thumbnails"].append({
                "title": title, "png": path,
                "caption": f"{KIND_NAMES[entry['result']]}, {patient} {session_id} {group}, lesion "
                           f"{unit['lesion_id']} ({entry['region'] or 'no region'}; call {entry['call']}; "
                           f"SUVmax {_value(unit.get('suv_max'))}). Axial slice, {int(2 * THUMB_HALF_MM)} mm square."})
    return out


def _value(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "none"
    return f"{number:.1f}" if np.isfinite(number) else "none"


def images_html(images: Optional[Mapping[str, Any]]) -> str:
    """The report's image section: MIPs with their legends, thumbnails of the false findings, notes; or the
    sentence that images were not requested."""
    parts = ["<h2 id='images'>Images</h2>"]
    if images is None:
        parts.append("<p class='note'>Images were not requested: give <code>netpet stats --dicom ROOT</code> (the "
                     "folder tree of the study's DICOM files) for a MIP of every session with its lesions marked and a "
                     "thumbnail of every false finding.</p>")
        return "".join(parts)
    parts.append("<p class='note'>Coronal maximum-intensity projections of the SUV PET (inverted grey, radiological "
                 "orientation); rings: <span style='color:#009E73'>true positive</span>, "
                 "<span style='color:#D55E00'>false positive</span>, <span style='color:#0072B2'>false negative"
                 "</span>, <span style='color:#7f7f7f'>true negative</span>; the numbers are those of the table under "
                 f"each image. DICOM: <code>{html.escape(str(images.get('root', '')))}</code>.</p>")
    parts.append("<div class='mips'>")
    for item in images.get("mips", []):
        legend = "".join(f"<tr><td>{e['number']}</td><td>{html.escape(str(e['lesion']))}</td>"
                         f"<td style='color:{KIND_COLOURS[e['result']]}'>{e['result']}</td>"
                         f"<td>{html.escape(str(e['region']))}</td><td>{html.escape(str(e['call']))}</td></tr>"
                         for e in item["legend"])
        parts.append(f"<figure><img src='{_embed(item['png'])}' alt='{html.escape(item['title'])}'>"
                     f"<figcaption>{html.escape(item['caption'])}</figcaption>"
                     "<table class='legend'><thead><tr><th>#</th><th>Lesion</th><th>Result</th><th>Region</th>"
                     f"<th>Call</th></tr></thead><tbody>{legend}</tbody></table></figure>")
    parts.append("</div>")
    thumbs = images.get("thumbnails", [])
    parts.append(f"<h3>False findings ({len(thumbs)})</h3>")
    if thumbs:
        parts.append("<div class='thumbs'>" + "".join(
            f"<figure><img src='{_embed(t['png'])}' alt='{html.escape(t['title'])}'>"
            f"<figcaption>{html.escape(t['caption'])}</figcaption></figure>" for t in thumbs) + "</div>")
    else:
        parts.append("<p class='note'>No false finding with a place in a scan.</p>")
    for note in images.get("notes", []):
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    return "".join(parts)


__all__ = ["check_dicom_root", "session_images", "images_html", "lesion_places", "mip_figure", "thumbnail_figure", "KIND_COLOURS"]
