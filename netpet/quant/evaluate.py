"""Evaluation of lesion measurement against a known truth, over every stratum of lesions.

A segmentation method is only as good as its worst lesions, and the worst are the ones an
evaluation of avid lesions never sees: lesions that are not avid, iso-intense or cold liver
lesions, benign traps, small and bone lesions. :func:`lesion_record` scores one lesion measured by
NETPET (a study-table row and its mask) against its truth; :func:`summarize` tallies the records per
stratum: Dice, volume error, floods (MTV more than 3 x the true volume), the share found not
separable, and the agreement of the liver-threshold call with the truth. The demo, the tests and
``benchmarks/eval_segmentation.py`` all use it, so they report the same strata the same way.

Strata of a truth lesion (a lesion belongs to every stratum that applies, and to "all"):

``avid``        malignant and avid (true uptake >= 1.5 x its surroundings)
``non-avid``    malignant but not avid for the tracer
``benign``      a benign look-alike (physiological or inflammatory uptake)
``borderline``  true uptake within 0.75-1.33 x the liver's (the liver threshold is hard there)
``liver-cold-iso`` a liver lesion whose true uptake is at most the liver's (cold or iso-intense)
``small``       diameter below 10 mm
``bone``        in bone
``nema-*``      spheres of a simulated NEMA IEC phantom, per reconstruction

Call agreement: the call agrees with the truth when it is "positive" exactly for lesions whose
true uptake is above the liver's (equivocal and negative both count as "not positive").
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

FLOOD_FACTOR = 3.0
STRATA_ORDER = ("all", "avid", "non-avid", "benign", "borderline", "liver-cold-iso", "small", "bone")


def strata_of(truth: Mapping[str, Any]) -> List[str]:
    """The strata (see module docstring) of one row of the digital reference study's lesions.csv."""
    out = ["all"]
    malignant = str(truth.get("malignant", "1")) == "1"
    avid = str(truth.get("avid", "1")) == "1"
    if not malignant:
        out.append("benign")
    elif avid:
        out.append("avid")
    else:
        out.append("non-avid")
    ratio = _float(truth.get("tl_ratio_true"))
    if ratio is not None and 0.75 <= ratio <= 1.0 / 0.75:
        out.append("borderline")
    if truth.get("region") == "liver" and ratio is not None and ratio <= 1.0:
        out.append("liver-cold-iso")
    diameter = _float(truth.get("diameter_mm"))
    if diameter is not None and diameter < 10.0:
        out.append("small")
    if str(truth.get("in_bone", "0")) == "1":
        out.append("bone")
    return out


def _float(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * float((a & b).sum()) / total if total else 1.0


def lesion_record(truth: Mapping[str, Any], row: Mapping[str, Any], mask: Optional[np.ndarray],
                  truth_mask: Optional[np.ndarray], strata: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """One lesion scored against its truth.

    Parameters
    ----------
    truth : the truth (a lesions.csv row: volume_ml, diameter_mm, above_liver...)
    row : NETPET's measurement (a study-table row: segmentation_status, mtv_ml, call...)
    mask, truth_mask : the lesion's mask and the truth mask on the same grid (for Dice), or None
    strata : the lesion's strata (default :func:`strata_of` of ``truth``)
    """
    status = row.get("segmentation_status") or "segmented"
    separable = status == "segmented"
    true_ml = _float(truth.get("volume_ml"))
    mtv = _float(row.get("mtv_ml")) if separable else None
    error = abs(mtv / true_ml - 1.0) if (mtv is not None and true_ml) else None
    above = truth.get("above_liver")
    call = row.get("call") or ""
    record = {
        "lesion": f"{truth.get('patient_id', '')}/{truth.get('session_id', '')}/{truth.get('lesion_id', '')}",
        "strata": list(strata or strata_of(truth)), "status": status, "call": call,
        "true_ml": true_ml, "mtv_ml": mtv, "volume_error": error,
        "dice": dice(mask, truth_mask) if (separable and mask is not None and truth_mask is not None) else None,
        "flood": bool(mtv is not None and true_ml and mtv > FLOOD_FACTOR * true_ml),
        "call_agrees": None if above in (None, "") or not call else (call == "positive") == (str(above) == "1"),
        "equivocal": call == "equivocal",
        "flags": [f for f in str(row.get("flags") or "").split(";") if f],
    }
    return record


def summarize(records: Iterable[Mapping[str, Any]], order: Sequence[str] = STRATA_ORDER) -> List[Dict[str, Any]]:
    """One summary per stratum (those in ``order`` first, then any other in the records)."""
    records = list(records)
    names = list(order) + sorted({s for r in records for s in r["strata"]} - set(order))
    out = []
    for name in names:
        group = [r for r in records if name in r["strata"]]
        if not group:
            continue
        dices = [r["dice"] for r in group if r["dice"] is not None]
        errors = [r["volume_error"] for r in group if r["volume_error"] is not None]
        agreement = [r["call_agrees"] for r in group if r["call_agrees"] is not None]
        out.append({
            "stratum": name, "lesions": len(group),
            "segmented": sum(r["status"] == "segmented" for r in group),
            "not_separable_share": float(np.mean([r["status"] != "segmented" for r in group])),
            "median_dice": float(np.median(dices)) if dices else None,
            "median_volume_error": float(np.median(errors)) if errors else None,
            "max_volume_error": float(np.max(errors)) if errors else None,
            "floods": sum(bool(r["flood"]) for r in group),
            "call_agreement": float(np.mean(agreement)) if agreement else None,
            "called": len(agreement),
            "equivocal_share": float(np.mean([r["equivocal"] for r in group])),
        })
    return out


def format_summary(summary: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """A fixed-width text table of :func:`summarize`'s output (percentages rounded)."""
    def cell(value, width, scale=1.0, fmt=".2f", unit=""):
        text = "-" if value is None else format(scale * value, fmt) + unit
        return text.rjust(width)

    lines = [title] if title else []
    lines.append(f"{'stratum':16}{'n':>5}{'not sep.':>10}{'Dice':>7}{'|vol err|':>11}{'max err':>9}{'floods':>8}"
                 f"{'call agree':>12}{'equivocal':>11}")
    for s in summary:
        lines.append(f"{s['stratum']:16}{s['lesions']:>5}{cell(s['not_separable_share'], 10, 100, '.0f', '%')}"
                     f"{cell(s['median_dice'], 7)}{cell(s['median_volume_error'], 11, 100, '.0f', '%')}"
                     f"{cell(s['max_volume_error'], 9, 100, '.0f', '%')}{s['floods']:>8}"
                     f"{cell(s['call_agreement'], 12, 100, '.0f', '%')}{cell(s['equivocal_share'], 11, 100, '.0f', '%')}")
    return "\n".join(lines)


def evaluate_reference_study(folder: str, options=None, suv_cache: Optional[str] = None,
                             liver_from_truth: bool = False) -> List[Dict[str, Any]]:
    """Every truth lesion of a digital reference study (or teaching case) written by
    ``netpet phantom``, clicked at its true centre and measured by the product's own path
    (:func:`netpet.quant.pipeline.quantify`: automatic liver reference, segmentation, call),
    scored against the truth. ``suv_cache``: a folder to keep the converted SUV volumes in.
    """
    import csv
    import json
    import os

    import SimpleITK as sitk
    import slicerio

    from netpet.dicom.convert import convert_to_suv
    from netpet.quant.pipeline import LesionRequest, Session, quantify
    from netpet.quant.volume import SUVVolume

    with open(os.path.join(folder, "truth", "truth.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    with open(os.path.join(folder, "truth", "lesions.csv"), newline="", encoding="utf-8") as handle:
        lesions = list(csv.DictReader(handle))
    records: List[Dict[str, Any]] = []
    for patient in summary["patients"]:
        for session in patient["sessions"]:
            rows = [r for r in lesions if r["patient_id"] == patient["patient_id"]
                    and r["session_id"] == session["session_id"]]
            if not rows:
                continue
            pet = os.path.join(folder, "dicom", patient["patient_id"], session["session_id"], "PET")
            cached = os.path.join(suv_cache, f"{patient['patient_id']}_{session['session_id']}.nrrd") if suv_cache else None
            if cached and os.path.exists(cached):
                image = sitk.ReadImage(cached)
            else:
                image = convert_to_suv(sorted(os.path.join(pet, f) for f in os.listdir(pet))).image
                if cached:
                    os.makedirs(suv_cache, exist_ok=True)
                    sitk.WriteImage(image, cached)
            volume = SUVVolume.from_image(image, f"{patient['patient_id']} {session['session_id']}")
            quant_session = Session(volume, patient["patient_id"], session["session_id"], session.get("modality", ""),
                                    session.get("tracer", rows[0]["tracer"]))
            requests = [LesionRequest(r["lesion_id"], tuple(float(r[k]) for k in ("center_r", "center_a", "center_s")),
                                      r["region"]) for r in rows]
            liver = session["liver_reference_center_ras"] if liver_from_truth else None
            result = quantify(quant_session, requests, "evaluation", options, liver, skip_failed=True)
            segmentation = slicerio.read_segmentation(os.path.join(folder, session["segmentation_file"]))
            by_id = {r["lesion_id"]: r for r in result.rows}
            for truth in rows:
                row = by_id.get(truth["lesion_id"])
                if row is None:  # refused outright (a click outside the image or body): a failure to report
                    records.append({**lesion_record(truth, {"segmentation_status": "refused", "call": ""}, None, None),
                                    "error": result.errors.get(truth["lesion_id"], "")})
                    continue
                expected = np.transpose(slicerio.segment_mask(
                    segmentation, slicerio.segment_from_id(segmentation, truth["lesion_id"])), (2, 1, 0)) > 0
                mask = result.lesions[truth["lesion_id"]].full(volume.shape)
                records.append(lesion_record(truth, row, mask, expected))
    return records
