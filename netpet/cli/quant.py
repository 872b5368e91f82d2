"""``netpet segment``, ``netpet quantify`` and ``netpet candidates``: SUVQuant on the command line."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from netpet.cli.common import (EXIT_OK, EXIT_PARTIAL, JOBS, SUV_TYPES, UsageError, add_pseudonymise, add_suv_options,
                               check_input, check_output, dicom_only, number, overrides, pseudonymiser, read_image,
                               tqdm_progress, write_image)
from netpet.cli.common import ras as _ras
from netpet.errors import DicomInputError, printable

#: --table: a CSV study table or an SQLite one
TABLE_SUFFIXES = (".csv", ".sqlite", ".sqlite3", ".db")


def add_parsers(sub) -> None:
    from netpet.schema import DEFAULT_SEGMENTATION_METHOD as DEFAULT_METHOD, SEGMENTATION_METHODS as METHODS

    p = sub.add_parser("segment", help="segment lesions from seed points and print their measurements")
    p.add_argument("volume", help="an SUV image (.nrrd, .nii.gz, .mha...) or a PET DICOM series (folder or file)")
    p.add_argument("--seed", type=_ras, action="append", required=True, metavar="R,A,S",
                   help="a point on a lesion, RAS mm (repeat for several lesions: label i for seed i)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help=f"threshold method (default {DEFAULT_METHOD})")
    p.add_argument("--fraction", type=number("", 0.0, 1.0, low_open=True, high_open=True),
                   help="fraction of the fixed and adaptive methods, between 0 and 1")
    p.add_argument("--absolute", type=number("SUV", 0.0, low_open=True), default=2.5, metavar="SUV",
                   help="threshold of the absolute method (SUV)")
    p.add_argument("--cold-walls", action="store_true",
                   help="the seeds are phantom spheres inside cold plastic walls (NEMA IEC quality control): the "
                        "adaptive method's calibration for such spheres, not the default one for lesions")
    p.add_argument("--liver", type=_ras, metavar="R,A,S", help="centre of the 3 cm liver reference (default: automatic)")
    p.add_argument("--split", type=_ras, action="append", default=[], metavar="R,A,S",
                   help="a point in a neighbouring hot structure the lesions must be separated from")
    p.add_argument("--search-radius", type=number("mm", 0.0, 200.0, high_open=True), default=20.0, metavar="MM",
                   help="how far the lesion's peak may lie from the seed (mm, 0 to 200, default 20)")
    p.add_argument("--background", type=_ras, action="append", default=[], metavar="R,A,S",
                   help="a point in normal tissue for T/B (and the adaptive threshold): once for every seed, or once "
                        "per seed in seed order")
    p.add_argument("--background-diameter", type=number("mm", 4.0, 60.0), default=20.0, metavar="MM",
                   help="diameter of the background sphere at --background (mm, 4 to 60, default 20)")
    p.add_argument("--background-bone", action="store_true",
                   help="T/B against normal bone of the session's CT around each lesion (bone lesions on PET/CT)")
    p.add_argument("--out", required=True, metavar="MASK", help="label image to write (.nrrd, .nii.gz, .mha)")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")
    add_suv_options(p, type_default=None)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("quantify", help="batch: segment, measure and classify the lesions of a manifest into the study table")
    p.add_argument("manifest", help="CSV: patient_id, series, reader, lesion_id, seed_r, seed_a, seed_s "
                                    "[, session_id (empty: derived from the series' study, as in Slicer), time_point (baseline, "
                                    "FU1...; empty = baseline), days_from_baseline (days >= 0), region, "
                                    "lesion_type, liver_r, liver_a, liver_s, method, modality, tracer, series_uid, "
                                    "dicom_patient_id, weight_kg, height_m, sex, dose_mbq, injection_time, half_life_s]")
    p.add_argument("--table", required=True, help="the study table (.csv, or .sqlite/.db)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD)
    p.add_argument("--type", choices=SUV_TYPES, default="bw", help="SUV type")
    p.add_argument("--dicom-seg", action="store_true", help="also write DICOM SEG beside each .seg.nrrd")
    p.add_argument("--jobs", type=JOBS, default=None, help="worker processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_pseudonymise(p)
    p.set_defaults(func=cmd_quantify)

    p = sub.add_parser("candidates", help="list every hot region above the liver threshold (whole body)")
    p.add_argument("volume", help="an SUV image or a PET DICOM series")
    p.add_argument("--liver", type=_ras, metavar="R,A,S", help="centre of the liver reference (default: automatic)")
    p.add_argument("--rule", choices=["percist", "liver-mean", "liver-max"], default="percist")
    p.add_argument("--organs", metavar="MASK", help="label image of physiological organs to set aside")
    p.add_argument("--json", action="store_true")
    add_suv_options(p, type_default=None)
    p.set_defaults(func=cmd_candidates)


def _volume(path: str, args: argparse.Namespace = None):
    """The session of a command's VOLUME argument, with its --series, --patient, --type and overrides."""
    from netpet.quant.pipeline import _is_image, open_session

    if args is None:
        return open_session(path, jobs=None)
    if _is_image(path):
        dicom_only(args, path)
    return open_session(path, series_uid=args.series, suv_type=args.type or "bw", overrides=overrides(args), jobs=None,
                        dicom_patient=args.patient)


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cmd_segment(args: argparse.Namespace) -> int:
    from netpet.quant import references
    from netpet.quant.classify import liver_call
    from netpet.quant.measure import UNITS, measure
    from netpet.quant.segment import SegmentOptions, label_image, segment_seeds
    from netpet.quant.volume import QuantError

    check_output(args.out)
    options = SegmentOptions(method=args.method, fraction=args.fraction, absolute_suv=args.absolute,
                             search_radius_mm=args.search_radius, cold_walls=args.cold_walls)
    options.validate()
    if args.background and len(args.background) not in (1, len(args.seed)):
        raise UsageError(f"--background is given {len(args.background)} times for {len(args.seed)} seeds; give it once, "
                         "or once per seed")
    if args.background and args.background_bone:
        raise UsageError("--background and --background-bone exclude each other; choose one")
    session = _volume(args.volume, args)
    volume = session.volume
    for point in args.split:  # a split point outside the image would be dropped without a word
        volume.voxel_of(point, "split point (--split)")
    liver, liver_note = None, None
    try:
        liver = references.liver_reference(volume, args.liver)
    except QuantError as exc:  # the liver reference is optional here unless the method needs it
        if args.method.startswith("liver") or args.liver is not None:
            raise
        liver_note = f"netpet: note: no liver reference ({exc}); T/L ratios are left out"
    bone = session.bone_mask() if args.background_bone else None  # refused before any segmentation
    points = (args.background * len(args.seed) if len(args.background) == 1 else args.background) or [None] * len(args.seed)
    spheres = [references.background_point(volume, p, args.background_diameter) if p is not None else None
               for p in points]
    lesions = segment_seeds(volume, args.seed, options, liver, args.split,
                            backgrounds=[b.mean if b is not None else None for b in spheres])
    labels = label_image(volume, lesions)
    write_image(volume.to_image(labels), args.out)
    results = []
    for number, lesion in enumerate(lesions, start=1):
        others = [m for m in lesions if m is not lesion]
        notes = list(lesion.notes)
        background = spheres[number - 1]
        try:
            if background is None and bone is not None:
                background = references.background_bone(volume, lesion, bone, others=others)
            elif background is None:
                background = references.background_shell(volume, lesion, others=others)
        except QuantError as exc:  # no background: T/B is left out, and said
            notes.append(f"no background: {exc}")
        values = {k: _clean(v) for k, v in measure(volume, lesion, liver, background).items()}
        if liver is not None:
            verdict = liver_call(values["suv_max"], lesion.voxels * volume.voxel_ml if lesion.separable else 1.0,
                                 volume.voxel_ml, liver.mean, liver.sd, liver.peak_sd, None, lesion.separable,
                                 background.mean if background is not None else None,
                                 krenning=session.tracer == "dotatate")
            values.update({"call": verdict.call, "krenning": verdict.krenning, "call_low_suv": verdict.low,
                           "call_high_suv": verdict.high})
        results.append({"label": number, "seed_ras": list(args.seed[number - 1]), "method": lesion.method,
                        "status": lesion.status, "flags": lesion.flags, "peak_shift_mm": lesion.peak_shift_mm,
                        "contrast_to_noise": _clean(lesion.contrast_to_noise), "notes": notes, **values})
    if liver_note:  # said once the command succeeds (a failure says only why it failed)
        print(liver_note, file=sys.stderr)
    payload = {"volume": args.volume, "mask": os.path.abspath(args.out), "units": UNITS,
               "liver": liver.to_dict("liver") if liver else None, "lesions": results}
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if liver:
            print(f"liver reference: SUVmean {liver.mean:.2f} SD {liver.sd:.2f} at R,A,S "
                  + ",".join(f"{v:.1f}" for v in liver.center_ras))
        for r in results:
            if r["status"] == "segmented":
                line = (f"label {r['label']}: SUVmax {r['suv_max']:.2f}  SUVpeak {r['suv_peak']:.2f}  SUVmean "
                        f"{r['suv_mean']:.2f}  MTV {r['mtv_ml']:.2f} mL  TLA {r['tla']:.2f}  diameter "
                        f"{r['longest_diameter_mm']:.1f} mm")
            else:
                line = (f"label {r['label']}: NOT SEPARABLE  local SUVmax {r['suv_max']:.2f}  SUVpeak "
                        f"{r['suv_peak']:.2f} (1 mL sphere at the seed; no volume)")
            if r.get("tl_ratio") is not None:
                line += f"  T/L {r['tl_ratio']:.2f}"
            if r.get("tb_ratio") is not None:
                line += f"  T/B {r['tb_ratio']:.2f}"
            if r.get("call"):
                line += f"  call {r['call']}" + (f" (Krenning {r['krenning']})" if r.get("krenning") is not None else "")
            print(line)
            for note in r["notes"]:
                print(f"  note: {note}")
        print(f"labels written to {args.out}")
    return EXIT_OK


def cmd_quantify(args: argparse.Namespace) -> int:
    from netpet.quant.pipeline import run_manifest
    from netpet.quant.segment import SegmentOptions

    check_input(args.manifest, "The manifest")
    check_output(args.table, "--table", TABLE_SUFFIXES)
    keyed = pseudonymiser(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.table)), exist_ok=True)
    summary = run_manifest(args.manifest, args.table, SegmentOptions(method=args.method), args.type, args.jobs,
                           args.dicom_seg, progress=tqdm_progress(not args.json), pseudonymiser=keyed)
    for error in summary["errors"]:
        print(f"netpet: skipped: {printable(error)}", file=sys.stderr)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{summary['rows']} lesion rows written to {args.table}; {len(summary['errors'])} problems; "
              f"{len(summary['segmentations'])} segmentation files")
    return EXIT_OK if not summary["errors"] else EXIT_PARTIAL


def cmd_candidates(args: argparse.Namespace) -> int:
    import numpy as np
    import SimpleITK as sitk

    from netpet.quant import references
    from netpet.quant.candidates import detect

    organ_image = read_image(args.organs, "--organs") if args.organs else None  # before the long work
    session = _volume(args.volume, args)
    organs = None
    if organ_image is not None:
        if organ_image.GetDimension() != 3 or organ_image.GetNumberOfComponentsPerPixel() != 1:
            raise DicomInputError(f"--organs {printable(args.organs)} is not a 3D label image.")
        values = sitk.GetArrayFromImage(organ_image)
        if values.shape != session.volume.shape:
            raise DicomInputError(f"--organs {printable(args.organs)} has {values.shape[::-1]} voxels, the volume "
                                  f"{session.volume.shape[::-1]}; give a label image on the PET's grid.")
        organs = np.nan_to_num(values, nan=0.0) > 0
    liver = references.liver_reference(session.volume, args.liver)
    found = detect(session.volume, liver, args.rule, organs)
    if args.json:
        json.dump({"liver": liver.to_dict("liver"), "candidates": [c.to_dict() for c in found]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"liver SUVmean {liver.mean:.2f}; {len(found)} regions above the {args.rule} threshold")
        for c in found:
            flag = "  (physiological)" if c.physiological else ""
            print(f"{c.candidate_id}  R,A,S {c.peak_r:.1f},{c.peak_a:.1f},{c.peak_s:.1f}  SUVmax {c.suv_max:.2f}  "
                  f"T/L {c.tl_ratio:.2f}  {c.volume_ml:.2f} mL{flag}")
    return EXIT_OK

