"""The time the image values refer to: the START decay reference, or each frame's own time (NONE).

START reference candidates, in order: DecayCorrectionDateTime (0018,9701); the vendors' private
datetimes (Siemens decay correction (0071,1022), GE scan start (0009,100D)); Series Date/Time
(QIBA's first rule); the time back-computed from FrameReferenceTime (0054,1300) (the manual's
option B); the time DecayFactor (0054,1321) implies; the earliest acquisition (QIBA's last resort).
The first candidate that is trusted wins. A candidate is not trusted when

- it lies after the earliest acquisition start (by more than the time resolution): a START
  reference is the start of the acquisition or earlier. This catches a Series Time rewritten by
  post-processing (QIBA) and a back-computation from a FrameReferenceTime left 0 (CPS, older
  Siemens, Philips), which puts the reference at the first frame's average count-rate time. The
  explicit decay-correction datetimes state the reference and are exempt;
- it disagrees with DecayFactor (its SUV effect above SUV_WARNING), when DecayFactor is present
  and itself credible. DecayFactor is the factor each image was scaled by:
  exp(lambda (t_ave - t_ref)), t_ave the frame's average count-rate time (real GE and Siemens files
  include the within-frame factor: STS_001 and ACRIN-FLT-Breast in shared/realdata), so
  t_ref = t_acq + T_ave - ln(DecayFactor) / lambda. A DecayFactor that implies a reference after
  the acquisition start (e.g. written as 1.0) is not credible and is not used.

DecayFactor also settles the FrameReferenceTime convention where present (offset of the average
count-rate time, as the standard defines it, or of the frame start, as GE writes it); without it
the vendor's convention is assumed and the back-computation is "unverified". Discrepancies are
warned about only when their SUV effect exceeds SUV_WARNING and both sides are credible; the
provenance rules record every candidate's verdict and why the winner won.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from netpet.dicom.dates import iso
from netpet.dicom.suv.base import Base, from_ts, summary, ts
from netpet.dicom.suv.bounds import (
    DECAY_FACTOR_PRECISION, SESSION_DATE_GAP_S, SUV_AGREEMENT, SUV_WARNING, TIME_RESOLUTION_S,
)
from netpet.dicom.suv.record import average_count_rate_offset_s


@dataclass
class Timing:
    """A reference time derived from frame timing, or why none could be derived."""

    when_s: Optional[float]
    how: str
    verified: bool = False


@dataclass
class Candidate:
    """One candidate START reference time."""

    name: str
    when_s: float
    kind: str  # "explicit", "private", "series", "back", "decay", "earliest"
    note: str = ""

    def when(self) -> str:
        return from_ts(self.when_s).isoformat()


class DecayReference(Base):
    """Decay reference time (manual, "Decay correction = START" and "= NONE"; see module docstring)."""

    # -- helpers ---------------------------------------------------------------------------
    def decay_constant(self) -> float:
        return math.log(2.0) / self.half_life_s()

    def suv_change(self, seconds: float) -> float:
        """Relative SUV change of moving the decay reference by ``seconds``: exp(lambda dt) - 1.

        SUV is proportional to exp(lambda (t_ref - t_inj)), so a later reference raises it.
        """
        return math.expm1(max(-700.0, min(700.0, self.decay_constant() * seconds)))  # clamped: no overflow

    def suv_effect(self, seconds: float) -> float:
        """Size of :meth:`suv_change`."""
        return abs(self.suv_change(seconds))

    def same_time(self, a: float, b: float, slack: float = TIME_RESOLUTION_S) -> bool:
        """Two times agree: within ``slack`` seconds, or within SUV_AGREEMENT in their SUV effect."""
        return abs(a - b) <= slack or self.suv_effect(a - b) <= SUV_AGREEMENT

    def _one_reference(self, refs: Sequence[float], order: Sequence[float], what: str) -> Tuple[Optional[float], str]:
        """One reference from per-frame values: their median when they agree.

        When they spread but every frame carries one and the same AcquisitionTime, that time is
        the series start, not each frame's (GE Discovery ST writes it so: STS_001), and only the
        frames acquired first (smallest ``order``) have the acquisition time as their start.
        """
        low, high = min(refs), max(refs)
        if self.same_time(low, high):
            return float(np.median(refs)), ""
        times = {a for a in self.acq if a is not None}
        if len(times) == 1:
            first = min(order)
            chosen = [r for r, k in zip(refs, order) if abs(k - first) <= 1e-9 * max(1.0, abs(first))]
            if chosen and self.same_time(min(chosen), max(chosen)):
                return float(np.median(chosen)), (
                    f"{what} spread over {high - low:.0f} s but every frame carries one AcquisitionTime, the series "
                    f"start: taken from the {len(chosen)} frame(s) acquired first")
        return None, f"{what} spread over {high - low:.1f} s between frames"

    # -- DecayFactor -----------------------------------------------------------------------
    def _decay_factor_reference(self) -> Tuple[Timing, Optional[List[float]]]:
        """The reference DecayFactor implies, and each frame's offset ln(DecayFactor)/lambda (s)."""
        frames = self.h.frames
        if all(f.decay_factor is None for f in frames):
            return Timing(None, "DecayFactor (0054,1321) is absent"), None
        lam = self.decay_constant()
        refs, factors, offsets = [], [], []
        for frame, acquisition in zip(frames, self.acq):
            factor = frame.decay_factor
            if factor is None or not math.isfinite(factor) or factor <= 0:
                state = "missing" if factor is None else f"{factor:g}"
                return Timing(None, f"DecayFactor (0054,1321) is {state} in {frame.label}"), None
            duration = frame.frame_duration_ms
            if (acquisition is None or duration is None or not math.isfinite(duration) or duration <= 0
                    or duration / 1000.0 > SESSION_DATE_GAP_S):
                return Timing(None, f"{frame.label} lacks the AcquisitionTime (0008,0032) or ActualFrameDuration "
                                    "(0018,1242) that place its DecayFactor in time"), None
            offset = math.log(factor) / lam
            if abs(offset) > SESSION_DATE_GAP_S:
                return Timing(None, f"DecayFactor (0054,1321) {factor:g} in {frame.label} implies a decay over "
                                    f"{offset / 3600:.3g} h, more than a session"), None
            offsets.append(offset)
            factors.append(factor)
            refs.append(ts(acquisition) + average_count_rate_offset_s(duration / 1000.0, lam) - offset)
        one, how = self._one_reference(refs, factors, "DecayFactor-implied references")
        if one is None:
            return Timing(None, how), None
        text = "acquisition time + average count-rate time - ln(DecayFactor) / lambda"
        return Timing(one, text + (f"; {how}" if how else ""), verified=True), offsets

    # -- FrameReferenceTime ----------------------------------------------------------------
    def _convention(self, offsets: Optional[List[float]]) -> Tuple[Optional[str], bool, str]:
        """FrameReferenceTime convention: ("average", verified, note), ("start", ...) or (None, False, why)."""
        if offsets is None:
            if self.h.vendor == "GE":
                return "start", False, ("GE frame reference times count from the frame start (assumed: no credible "
                                        "DecayFactor confirms it)")
            return "average", False, ("frame reference times count to the average count-rate time, as the standard "
                                      "defines them (assumed: no credible DecayFactor confirms it)")
        lam = self.decay_constant()
        fits = {"average": True, "start": True}
        for frame, offset in zip(self.h.frames, offsets):
            frt = frame.frame_reference_time_ms
            if frt is None or not math.isfinite(frt):
                return None, False, f"FrameReferenceTime (0054,1300) is {'missing' if frt is None else frt} in {frame.label}"
            t_ave = average_count_rate_offset_s((frame.frame_duration_ms or 0.0) / 1000.0, lam)
            fits["average"] &= self.same_time(frt / 1000.0, offset)
            fits["start"] &= self.same_time(frt / 1000.0 + t_ave, offset)
        if fits["average"]:
            return "average", True, "DecayFactor = exp(lambda x FrameReferenceTime): the standard convention"
        if fits["start"]:
            return "start", True, ("DecayFactor = exp(lambda x (FrameReferenceTime + average count-rate time)): "
                                   "FrameReferenceTime counts from the frame start (GE convention)")
        frame = self.h.frames[0]
        return None, False, (
            f"FrameReferenceTime (0054,1300) {frame.frame_reference_time_ms:g} ms of {frame.label} is not the offset "
            f"its DecayFactor implies ({1000 * offsets[0]:.0f} ms to the average count-rate time): "
            "FrameReferenceTime was not set by the scanner")

    def _back_computed(self, offsets: Optional[List[float]]) -> Timing:
        """The reference back-computed from AcquisitionTime, FrameReferenceTime and ActualFrameDuration."""
        convention, verified, note = self._convention(offsets)
        if convention is None:
            return Timing(None, note)
        lam = self.decay_constant()
        refs, order = [], []
        for frame, acquisition in zip(self.h.frames, self.acq):
            frt = frame.frame_reference_time_ms
            if acquisition is None or frt is None:
                return Timing(None, f"{frame.label} lacks AcquisitionTime (0008,0032) or FrameReferenceTime (0054,1300)")
            if not math.isfinite(frt) or frt < 0 or frt / 1000.0 > SESSION_DATE_GAP_S:
                return Timing(None, f"{frame.label} has FrameReferenceTime (0054,1300) {frt:g} ms, not a time offset "
                                    "within a session")
            if convention == "start":
                refs.append(ts(acquisition) - frt / 1000.0)
            else:
                duration = frame.frame_duration_ms
                if duration is None or not math.isfinite(duration) or duration <= 0 or duration / 1000.0 > SESSION_DATE_GAP_S:
                    return Timing(None, f"{frame.label} lacks a usable ActualFrameDuration (0018,1242)")
                refs.append(ts(acquisition) + average_count_rate_offset_s(duration / 1000.0, lam) - frt / 1000.0)
            order.append(frt)
        formula = ("acquisition time - frame reference time" if convention == "start"
                   else "acquisition time + average count-rate time - frame reference time")
        one, how = self._one_reference(refs, order, "back-computed references")
        if one is None:
            return Timing(None, how)
        return Timing(one, f"{formula}; {note}" + (f"; {how}" if how else ""), verified)

    # -- START -----------------------------------------------------------------------------
    def start_reference(self) -> np.ndarray:
        """Reference time of START decay correction, seconds since epoch, per frame (one value)."""
        n = len(self.h.frames)
        acq = [a for a in self.acq if a is not None]
        earliest = min(acq) if acq else None
        earliest_s = ts(earliest) if earliest is not None else None
        series = self.h.series_datetime
        self.p.inputs["SeriesDate/SeriesTime (0008,0021)/(0008,0031)"] = iso(series)
        self.p.inputs["earliest AcquisitionDate/Time (0008,0022)/(0008,0032)"] = iso(earliest)
        self.p.inputs["DecayFactor (0054,1321)"] = summary([f.decay_factor for f in self.h.frames])

        decay, offsets = self._decay_factor_reference()
        if decay.when_s is not None and earliest_s is not None:
            slack = max(TIME_RESOLUTION_S, DECAY_FACTOR_PRECISION / self.decay_constant())
            late = decay.when_s - earliest_s
            if late > slack:
                self.rule(f"DecayFactor (0054,1321) not used: it implies a reference {late:.0f} s after the earliest "
                          "acquisition start, which a START correction cannot have (a factor written as 1.0, or not the "
                          "factor applied)")
                decay, offsets = Timing(None, "not credible"), None
        elif decay.when_s is None and "absent" not in decay.how:
            self.rule(f"DecayFactor (0054,1321) not used for the cross-check: {decay.how}")
        back = self._back_computed(offsets)

        candidates: List[Candidate] = []
        if self.h.decay_correction_datetime is not None:
            self.p.inputs["DecayCorrectionDateTime (0018,9701)"] = iso(self.h.decay_correction_datetime)
            candidates.append(Candidate("DecayCorrectionDateTime (0018,9701)", ts(self.h.decay_correction_datetime),
                                        "explicit"))
        if self.h.siemens_dc_datetime is not None:
            self.p.inputs[self.h.siemens_source] = iso(self.h.siemens_dc_datetime)
            candidates.append(Candidate(self.h.siemens_source, ts(self.h.siemens_dc_datetime), "explicit"))
        if self.h.ge_scan_datetime is not None:
            self.p.inputs[self.h.ge_source] = iso(self.h.ge_scan_datetime)
            candidates.append(Candidate(self.h.ge_source, ts(self.h.ge_scan_datetime), "private"))
        if series is not None:
            candidates.append(Candidate("Series Date/Time (0008,0021)/(0008,0031)", ts(series), "series"))
        if back.when_s is not None:
            candidates.append(Candidate(f"back-computed from frame timing ({back.how})", back.when_s, "back"))
        else:
            self.rule(f"no back-computed reference: {back.how}")
        if decay.when_s is not None:
            candidates.append(Candidate(f"DecayFactor (0054,1321) ({decay.how})", decay.when_s, "decay"))
        if earliest_s is not None:
            candidates.append(Candidate("earliest AcquisitionDate/Time (0008,0022)/(0008,0032)", earliest_s, "earliest"))

        winner = None
        rejected: List[Tuple[Candidate, str, bool]] = []
        for candidate in candidates:
            reason, contradicts = self._distrust(candidate, earliest_s, decay, back)
            if reason is None:
                winner = candidate
                break
            rejected.append((candidate, reason, contradicts))
            self.rule(f"decay reference candidate {candidate.name} = {candidate.when()} not used: {reason}")
        if winner is None:
            raise self.refuse(
                "DecayCorrection is START but neither a decay correction datetime, nor a usable Series "
                "Date/Time (0008,0021)/(0008,0031), nor AcquisitionTime (0008,0032) gives the reference time",
                "convert the original scanner export, which carries these times",
            )
        for candidate in candidates[candidates.index(winner) + 1:]:
            if candidate.kind == "series":  # said even when a better candidate won: a reader checks the Series Time
                reason, _ = self._distrust(candidate, earliest_s, Timing(None, ""), back)
                if reason is not None:
                    self.rule(f"{candidate.name} = {candidate.when()} is not the reference either: {reason}")
        for candidate, reason, contradicts in rejected:
            diff = candidate.when_s - winner.when_s
            if contradicts and self.suv_effect(diff) > SUV_WARNING:
                self.warn(f"{candidate.name} {candidate.when()} {reason}; {winner.name.split(' (')[0]} "
                          f"{winner.when()} was used instead (the other would change SUV by "
                          f"{100 * self.suv_change(diff):+.1f} %)")
        self._cross_check(winner, earliest_s, decay, back, [c for c in (
            Candidate("reference back-computed from frame timing", back.when_s, "back") if back.when_s is not None else None,
            Candidate("reference implied by DecayFactor (0054,1321)", decay.when_s, "decay") if decay.when_s is not None else None,
        ) if c is not None and c.kind != winner.kind], back.verified)
        rule = winner.name
        if winner.kind == "series":
            if earliest_s is None:
                self.warn("no AcquisitionTime to check the Series Time against; Series Date/Time used as it is")
            elif abs(winner.when_s - earliest_s) <= TIME_RESOLUTION_S:
                rule += f", equal to the earliest acquisition (within {TIME_RESOLUTION_S:g} s)"
            else:
                rule += ", not after the earliest acquisition"
        if winner.kind == "earliest":
            self.warn(
                "decay reference taken as the earliest acquisition time: wrong if the series was "
                f"cropped or the study had several injections (QIBA); frame timing unusable: {back.how}"
            )
        if decay.when_s is not None and winner.kind != "decay":
            rule += ", confirmed by DecayFactor (0054,1321)"
        self.p.reference_time = from_ts(winner.when_s).isoformat()
        self.p.reference_time_rule = rule
        self.rule(f"decay reference time: {rule}")
        return np.full(n, winner.when_s)

    def _distrust(self, candidate: Candidate, earliest_s: Optional[float], decay: Timing,
                  back: Timing) -> Tuple[Optional[str], bool]:
        """Why a candidate is not trusted (None when it is), and whether that is a contradiction worth a warning."""
        if earliest_s is not None and candidate.kind not in ("explicit", "earliest"):
            late = candidate.when_s - earliest_s
            slack = TIME_RESOLUTION_S
            if candidate.kind == "decay":
                slack = max(slack, DECAY_FACTOR_PRECISION / self.decay_constant())
            if late > slack:
                why = {
                    "series": "rewritten by post-processing (QIBA)",
                    "back": ("FrameReferenceTime (0054,1300) is 0, not set by the scanner"
                             if all((f.frame_reference_time_ms or 0) == 0 for f in self.h.frames)
                             else "the FrameReferenceTime convention does not fit this scanner"),
                    "private": "not the scan start",
                }.get(candidate.kind, "")
                return (f"it lies {late:.0f} s after the earliest acquisition start "
                        f"{from_ts(earliest_s).isoformat()}, which a START reference cannot" + (f" ({why})" if why else ""),
                        False)
        if decay.when_s is not None and candidate.kind != "decay":
            diff = candidate.when_s - decay.when_s
            if self.suv_effect(diff) > SUV_WARNING:
                return (f"disagrees with DecayFactor (0054,1321), the factor the scanner scaled the images by, which "
                        f"implies {from_ts(decay.when_s).isoformat()} ({diff:+.0f} s, {100 * self.suv_change(diff):+.1f} % "
                        "in SUV)",
                        candidate.kind in ("explicit", "private", "series"))
        return None, False

    def _cross_check(self, winner: Candidate, earliest_s: Optional[float], decay: Timing, back: Timing,
                     others: List[Candidate], back_verified: bool) -> None:
        """Compare the winner with the frame-timing references; warn only where the effect is real."""
        for other in others:
            reason, _ = self._distrust(other, earliest_s, Timing(None, ""), back)
            if reason is not None:
                self.rule(f"cross-check: the {other.name} = {other.when()} is not compared: {reason}")
                continue
            diff = other.when_s - winner.when_s
            effect, change = self.suv_effect(diff), 100 * self.suv_change(diff)
            credible = other.kind == "decay" or back_verified
            if effect <= SUV_AGREEMENT or abs(diff) <= TIME_RESOLUTION_S:
                self.rule(f"cross-check: the {other.name} agrees ({diff:+.1f} s)")
            elif effect <= SUV_WARNING:
                self.rule(f"cross-check: the {other.name} differs by {diff:+.0f} s ({change:+.2f} % in SUV, "
                          f"under the {100 * SUV_WARNING:g} % warning bound)")
            elif not credible:
                self.rule(f"cross-check: the {other.name} differs by {diff:+.0f} s ({change:+.1f} % in SUV), "
                          "but its FrameReferenceTime convention is assumed, not confirmed by DecayFactor: not warned")
            else:
                self.warn(f"the {other.name} differs from the reference time used by {diff:+.0f} s, "
                          f"which would change SUV by {change:+.1f} %")

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
            duration = frame.frame_duration_ms
            if duration is None or not math.isfinite(duration) or duration <= 0 or duration / 1000.0 > SESSION_DATE_GAP_S:
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
