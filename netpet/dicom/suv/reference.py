"""The time the image values refer to: the START decay reference, or each frame's own time (NONE)."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Optional, Tuple

import numpy as np

from netpet.dicom.dates import iso
from netpet.dicom.suv.base import Base, from_ts, ts
from netpet.dicom.suv.bounds import CROSS_CHECK_SUV_TOLERANCE, REFERENCE_SPREAD_TOLERANCE_S
from netpet.dicom.suv.record import average_count_rate_offset_s


class DecayReference(Base):
    """Decay reference time (manual, "Decay correction = START" and "= NONE")."""

    # -- times -----------------------------------------------------------------------------
    def _back_computed(self) -> Tuple[Optional[np.ndarray], str]:
        """Per-frame reference times back-computed from frame timing, seconds since epoch."""
        lam = math.log(2.0) / self.half_life_s()
        ge = self.h.vendor == "GE"
        out = []
        for frame, acquisition in zip(self.h.frames, self.acq):
            if acquisition is None or frame.frame_reference_time_ms is None:
                return None, f"{frame.label} lacks AcquisitionTime (0008,0032) or FrameReferenceTime (0054,1300)"
            if frame.frame_reference_time_ms < 0:
                return None, f"{frame.label} has a negative FrameReferenceTime (0054,1300)"
            t_acq = ts(acquisition)
            delta = frame.frame_reference_time_ms / 1000.0
            if ge:
                out.append(t_acq - delta)
            else:
                if frame.frame_duration_ms is None or frame.frame_duration_ms <= 0:
                    return None, f"{frame.label} lacks ActualFrameDuration (0018,1242)"
                out.append(t_acq + average_count_rate_offset_s(frame.frame_duration_ms / 1000.0, lam) - delta)
        formula = (
            "acquisition time - frame reference time (GE frame reference times count from the frame start)"
            if ge else
            "acquisition time + average count-rate time - frame reference time"
        )
        return np.asarray(out), formula

    def start_reference(self) -> np.ndarray:
        """Reference time(s) of START decay correction, seconds since epoch, per frame."""
        n = len(self.h.frames)
        acq = [a for a in self.acq if a is not None]
        earliest = min(acq) if acq else None
        self.p.inputs["SeriesDate/SeriesTime (0008,0021)/(0008,0031)"] = iso(self.h.series_datetime)
        self.p.inputs["earliest AcquisitionDate/Time (0008,0022)/(0008,0032)"] = iso(earliest)

        def chosen(when: _dt.datetime, rule: str) -> np.ndarray:
            self.p.reference_time = iso(when)
            self.p.reference_time_rule = rule
            self.rule(f"decay reference time: {rule}")
            return np.full(n, ts(when))

        series = self.h.series_datetime
        if series is not None and earliest is not None and series > earliest:
            self.warn(
                f"Series Date/Time {series.isoformat()} is later than the earliest acquisition "
                f"{earliest.isoformat()}: rewritten by post-processing, not used as the decay reference"
            )
        if self.h.decay_correction_datetime is not None:
            self.p.inputs["DecayCorrectionDateTime (0018,9701)"] = iso(self.h.decay_correction_datetime)
            return self._cross_checked(chosen(self.h.decay_correction_datetime, "DecayCorrectionDateTime (0018,9701)"))
        if self.h.siemens_dc_datetime is not None:
            self.p.inputs[self.h.siemens_source] = iso(self.h.siemens_dc_datetime)
            return self._cross_checked(chosen(self.h.siemens_dc_datetime, self.h.siemens_source))
        if self.h.ge_scan_datetime is not None:
            self.p.inputs[self.h.ge_source] = iso(self.h.ge_scan_datetime)
            return self._cross_checked(chosen(self.h.ge_scan_datetime, self.h.ge_source))
        if series is not None and (earliest is None or series <= earliest):
            if earliest is None:
                self.warn("no AcquisitionTime to check the Series Time against; Series Date/Time used as it is")
                rule = "Series Date/Time (0008,0021)/(0008,0031)"
            elif series == earliest:
                rule = "Series Date/Time (0008,0021)/(0008,0031), equal to the earliest acquisition"
            else:
                rule = "Series Date/Time (0008,0021)/(0008,0031), not after the earliest acquisition"
            return self._cross_checked(chosen(series, rule))
        refs, how = self._back_computed()
        if refs is not None:
            spread = float(refs.max() - refs.min())
            if spread <= REFERENCE_SPREAD_TOLERANCE_S:
                when = from_ts(float(np.median(refs)))
                rule = f"back-computed from frame timing ({how})"
                if earliest is not None:
                    self._compare("earliest acquisition time", ts(earliest), float(np.median(refs)))
                return chosen(when, rule)
            self.warn(
                f"frame timing back-computes to reference times spread over {spread:.1f} s; "
                "each frame was decay-corrected to its own back-computed reference"
            )
            self.p.reference_time = iso(from_ts(float(refs.min())))
            self.p.reference_time_rule = f"back-computed per frame ({how})"
            self.rule(f"decay reference time: {self.p.reference_time_rule}")
            return refs
        if earliest is not None:
            self.warn(
                "decay reference taken as the earliest acquisition time: wrong if the series was "
                f"cropped or the study had several injections (QIBA); frame timing unusable: {how}"
            )
            return chosen(earliest, "earliest AcquisitionDate/Time (0008,0022)/(0008,0032)")
        raise self.refuse(
            "DecayCorrection is START but neither a decay correction datetime, nor a usable Series "
            "Date/Time (0008,0021)/(0008,0031), nor AcquisitionTime (0008,0032) gives the reference time",
            "convert the original scanner export, which carries these times",
        )

    def _compare(self, name: str, other_s: float, used_s: float) -> None:
        lam = math.log(2.0) / self.half_life_s()
        diff = other_s - used_s
        effect = abs(math.expm1(lam * diff))
        if effect > CROSS_CHECK_SUV_TOLERANCE:
            self.warn(
                f"the {name} differs from the reference time used by {diff:+.0f} s, "
                f"which would change SUV by {100 * effect:.1f} %"
            )

    def _cross_checked(self, refs: np.ndarray) -> np.ndarray:
        back, _ = self._back_computed()
        if back is not None and float(back.max() - back.min()) <= REFERENCE_SPREAD_TOLERANCE_S:
            self._compare("reference time back-computed from frame timing", float(np.median(back)), float(refs[0]))
        return refs

    def none_reference(self) -> np.ndarray:
        """Per-frame times the values of non-decay-corrected frames refer to, s since epoch."""
        lam = math.log(2.0) / self.half_life_s()
        out = []
        for frame, acquisition in zip(self.h.frames, self.acq):
            if frame.frame_reference_datetime is not None:
                out.append(ts(frame.frame_reference_datetime))
                continue
            if acquisition is None:
                raise self.refuse(
                    f"DecayCorrection is NONE and {frame.label} has no AcquisitionDate/Time (0008,0022)/(0008,0032)",
                    "convert the original scanner export, which carries per-frame times",
                )
            if frame.frame_duration_ms is None or frame.frame_duration_ms <= 0:
                raise self.refuse(
                    f"DecayCorrection is NONE and ActualFrameDuration (0018,1242) of {frame.label} is "
                    f"{'missing' if frame.frame_duration_ms is None else frame.frame_duration_ms}",
                    "convert the original scanner export, which carries the frame duration",
                )
            t_ave = average_count_rate_offset_s(frame.frame_duration_ms / 1000.0, lam)
            out.append(ts(acquisition) + t_ave)
        refs = np.asarray(out)
        self.p.reference_time = iso(from_ts(float(refs.min())))
        self.p.reference_time_rule = (
            "DecayCorrection NONE: each frame at its own acquisition time + average count-rate time"
            if all(f.frame_reference_datetime is None for f in self.h.frames)
            else "DecayCorrection NONE: each frame at its FrameReferenceDateTime (0018,9151)"
        )
        self.rule(self.p.reference_time_rule)
        return refs

