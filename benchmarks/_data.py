"""Benchmark data made by code: a whole-body PET series and a 10,000-file tree."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace

import numpy as np

from netpet.dicom import dro, writer

CACHE = os.environ.get("NETPET_BENCH_DATA", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".data"))


def whole_body_pet(shape=(400, 200, 200), vendor: str = "") -> str:
    """A whole-body PET series of ``shape`` (slices, rows, columns; int16, a slope per slice), written once and cached.

    ``vendor="siemens"`` adds what a Siemens PET carries (Manufacturer, the private decay-correction start time).
    """
    name = f"pet_{shape[2]}x{shape[1]}x{shape[0]}" + (f"_{vendor}" if vendor else "")
    folder = os.path.join(CACHE, name)
    if os.path.exists(os.path.join(folder, ".complete")):
        return folder
    case = dro.Case(shape=shape, spacing=(4.0, 4.0, 2.5), origin=(-398.0, -398.0, -1200.0), beds=8, seed="bench")
    rng = np.random.default_rng(7)
    suv = dro.dro_suv(shape) * rng.gamma(20.0, 1 / 20.0, size=shape)  # noisy, so slopes differ per slice
    datasets, _ = dro.build(case, suv)
    if vendor == "siemens":
        dro.siemens(datasets, case)
    elif vendor:
        raise ValueError(f"vendor {vendor!r}: only 'siemens' is made here")
    writer.save_datasets(datasets, folder, prefix="PT")
    open(os.path.join(folder, ".complete"), "w").close()
    return folder


def ten_thousand_files(count=10000, per_series=400) -> str:
    """A tree of ``count`` small PET/CT files in series of ``per_series``, nested two levels."""
    folder = os.path.join(CACHE, f"tree_{count}")
    if os.path.exists(os.path.join(folder, ".complete")):
        return folder
    base = dro.Case(shape=(per_series, 32, 32), beds=5, seed="tree")
    series_count = count // per_series
    for s in range(series_count):
        case = replace(base, seed=f"tree{s}", scan=base.scan + dt.timedelta(days=s))
        datasets, _ = dro.build(case)
        for ds in datasets:
            ds.PatientID = f"P{s // 4:03d}"
        writer.save_datasets(datasets, os.path.join(folder, f"patient{s // 4:03d}", f"series{s:03d}"), prefix="f")
    open(os.path.join(folder, ".complete"), "w").close()
    return folder
