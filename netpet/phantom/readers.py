"""Two simulated readers of the digital reference study: a visual call and a 5-point confidence per lesion and session.

``truth/readers.csv`` gives, for every truth lesion in every session whose field of view holds it, what the
readers ``reader1`` and ``reader2`` would record (:data:`netpet.schema.READER_COLUMNS`): ``reader_call``
(positive, equivocal, negative), ``confidence`` (1 definitely benign ... 5 definitely malignant,
:data:`netpet.schema.CONFIDENCE_SCALE`) and ``anatomic_correlate`` (none, lesion, benign).

The reader model
----------------
A binormal latent-decision-variable model with the variance structure of the Roe and Metz simulation model
for multi-reader multi-case (MRMC) ROC studies (Roe CA, Metz CE, Acad Radiol 1997;4:298 and 4:587; as
generalised by Gallas BD, Hillis SL, J Med Imaging 2014;1:031006, iMRMC's ``sim.gRoeMetz``). Reader ``r``
reading lesion ``c`` in session ``s`` forms the latent value

    z = mu_r(c, s) + C_c + TC_cs + RC_rc + E_rcs,

with independent normal random effects: the lesion (case) ``C`` (variance 0.3), lesion x session ``TC`` (0.3,
the session plays the part of the modality), reader x lesion ``RC`` (0.2) and the residual ``E`` (0.2). Case 0.3
and reader x case 0.2 are the Roe-Metz "HH" configuration as iMRMC's ``sim.gRoeMetz.config`` gives it by
default; the session x case and residual variances are NETPET's choice, so that the four sum to 1, the unit
scale of the model (the thresholds and separations below are in its units). Roe and Metz's reader effect
(a shift of all of one reader's values) is each reader's own set of thresholds here. Fixed part:

    mu_r = d_r * truth + b_r * u + shift(anatomic correlate),

* ``truth`` 1 for a malignant lesion, 0 for a benign one: ``d_r`` is what the reader knows beyond the uptake
  (morphology, the clinical picture): the reader's separation;
* ``u`` the lesion's conspicuity on the session: the natural logarithm of its apparent tumour-to-liver ratio,
  the object SUVmax (PET/MR bone bias applied) times the recovery of a sphere of the lesion's diameter under the
  session's Gaussian resolution, over the liver of the tracer (Krenning-style reading against the liver;
  recovery at the centre of a uniform sphere, erf(a) - 2 a exp(-a^2) / sqrt(pi), a = R / (sigma sqrt 2); the
  partial-volume effect of Soret M et al., J Nucl Med 2007;48:932), clipped to [ln 0.1, ln 10]; ``b_r`` its
  weight. FDG-only lesions are thus faint on 68Ga-DOTATATE and bright on FDG; the uncinate focus and the
  healing fracture are bright on 68Ga-DOTATATE although benign;
* ``shift``: what the CT or MR shows at the focus (:func:`anatomic_correlate`, from the lesion's kind): 0 for a
  lesion, :data:`CORRELATE_SHIFT` ``none`` (no correlate: the uncinate process, a physiological focus) and
  ``benign`` (the callus of a healing fracture).

The confidence is the category of ``z`` among the reader's four increasing thresholds (1 below the first ... 5
above the last); the visual call follows it: 4-5 positive, 3 equivocal, 1-2 negative (a coherent reader).
Random effects are drawn from the patient's stream ``(seed, patient, 7)`` (lesions in the order of the
patient's truth rows), so the readings are a deterministic function of the study's seed.

Because every random effect is normal with unit total variance, the probability of each confidence category of
a lesion-session is known in closed form (:func:`category_probabilities`), and so is the expected area under the
empirical ROC curve of a set of malignant and benign lesion-sessions (:func:`expected_auc`: the Mann-Whitney
probability P(X+ > X-) + P(X+ = X-) / 2 over independent pairs). With :data:`READERS`, on the 10-patient
study with the reading design (seed 1), reader1's expected AUC is about 0.9 and reader2's about 0.8
(``Testing/core/test_phantom_readers.py`` measures them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from netpet.phantom.patients import Lesion, Patient, Session, _rng
from netpet.phantom.reading import LIVER

#: variances of the random effects: case, case x session, reader x case, residual (sum 1)
VARIANCES = {"case": 0.3, "case_session": 0.3, "reader_case": 0.2, "residual": 0.2}
#: latent shift of the anatomic correlate (none: no correlate; benign: a benign cause seen on CT/MR)
CORRELATE_SHIFT = {"lesion": 0.0, "none": -0.6, "benign": -1.2}
#: what the CT or MR shows at a benign look-alike (every tumour is a lesion)
BENIGN_CORRELATE = {"physiological uncinate process uptake": "none", "healing rib fracture": "benign",
                    "reactive inflammatory node": "lesion"}
READER_COLUMNS = ["patient_id", "session_id", "lesion_id", "reader", "reader_call", "confidence", "anatomic_correlate"]
CONSPICUITY_LIMITS = (math.log(0.1), math.log(10.0))


@dataclass(frozen=True)
class Reader:
    """One simulated reader: separation ``d`` (latent units), conspicuity weight ``b`` and four increasing
    confidence thresholds (latent units)."""

    name: str
    d: float
    b: float
    thresholds: Tuple[float, float, float, float]


READERS: Tuple[Reader, ...] = (
    Reader("reader1", 1.6, 0.8, (-0.2, 0.5, 1.1, 1.8)),
    Reader("reader2", 0.9, 0.7, (-0.5, 0.2, 0.8, 1.4)),
)


def anatomic_correlate(lesion: Lesion) -> str:
    """``lesion`` for a tumour, else what its kind shows on CT/MR (:data:`BENIGN_CORRELATE`, default ``lesion``)."""
    if lesion.malignant:
        return "lesion"
    return BENIGN_CORRELATE.get(lesion.kind, "lesion")


def sphere_recovery(diameter_mm: float, fwhm_mm: float) -> float:
    """Centre value of a uniform sphere blurred by an isotropic Gaussian of ``fwhm_mm``, relative to the sphere's."""
    sigma = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    a = (diameter_mm / 2.0) / (sigma * math.sqrt(2.0))
    return math.erf(a) - 2.0 * a * math.exp(-a * a) / math.sqrt(math.pi)


def conspicuity(lesion: Lesion, session: Session) -> float:
    """ln of the lesion's apparent tumour-to-liver ratio on the session (module docstring), clipped."""
    suv = lesion.suv.get(session.tracer, 0.0) * (1.0 - lesion.petmr_bias if session.modality == "PET/MR" else 1.0)
    ratio = suv * sphere_recovery(lesion.diameter_mm, session.fwhm_mm) / LIVER[session.tracer]
    low, high = CONSPICUITY_LIMITS
    return float(np.clip(math.log(max(ratio, 1e-6)), low, high))


def latent_mean(reader: Reader, lesion: Lesion, session: Session) -> float:
    """mu_r of the module docstring for one lesion in one session."""
    return reader.d * float(lesion.malignant) + reader.b * conspicuity(lesion, session) + \
        CORRELATE_SHIFT[anatomic_correlate(lesion)]


def _phi(x: np.ndarray) -> np.ndarray:
    from scipy.stats import norm

    return norm.cdf(x)


def category_probabilities(means: Sequence[float], thresholds: Sequence[float]) -> np.ndarray:
    """P(confidence = 1..5) per latent mean (rows), for unit total variance."""
    means = np.asarray(means, dtype=float)[:, None]
    cuts = _phi(np.asarray(thresholds, dtype=float)[None, :] - means)
    cumulative = np.hstack([np.zeros((len(means), 1)), cuts, np.ones((len(means), 1))])
    return np.diff(cumulative, axis=1)


def expected_auc(positive_means: Sequence[float], negative_means: Sequence[float],
                 thresholds: Sequence[float]) -> float:
    """Expected area under the empirical ROC curve of 5-point confidences (ties count one half) over every pair of
    a positive and a negative lesion-session, whose latent values are independent given their means."""
    pos = category_probabilities(positive_means, thresholds)
    neg = category_probabilities(negative_means, thresholds)
    below = np.cumsum(neg, axis=1) - neg  # P(X- < k) per negative and category k
    win = pos @ below.T + 0.5 * (pos @ neg.T)
    return float(win.mean())


def empirical_auc(scores: Sequence[float], truths: Sequence[int]) -> float:
    """Mann-Whitney area under the ROC curve of scores against 1/0 truth (ties count one half).

    Raises
    ------
    ValueError
        Without both a positive and a negative.
    """
    scores, truths = np.asarray(scores, dtype=float), np.asarray(truths, dtype=int)
    pos, neg = scores[truths == 1], scores[truths == 0]
    if not len(pos) or not len(neg):
        raise ValueError("the AUC needs malignant and benign lesions")
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) /
                 (len(pos) * len(neg)))


def confidence_of(z: float, thresholds: Sequence[float]) -> int:
    return 1 + int(np.searchsorted(np.asarray(thresholds), z, side="right"))


def call_of(confidence: int) -> str:
    return "positive" if confidence >= 4 else ("equivocal" if confidence == 3 else "negative")


def read(patient: Patient, seed: int, pairs: Sequence[Tuple[Session, Lesion]],
         readers: Sequence[Reader] = READERS) -> List[Dict[str, Any]]:
    """truth/readers.csv rows of a patient: every (session, lesion) pair read by every reader (module docstring)."""
    rng = _rng(seed, patient.index, 7)
    lesion_ids: List[str] = []
    for _, lesion in pairs:
        if lesion.lesion_id not in lesion_ids:
            lesion_ids.append(lesion.lesion_id)
    sd = {k: math.sqrt(v) for k, v in VARIANCES.items()}
    case = dict(zip(lesion_ids, rng.standard_normal(len(lesion_ids)) * sd["case"]))
    case_session = rng.standard_normal(len(pairs)) * sd["case_session"]
    reader_case = rng.standard_normal((len(readers), len(lesion_ids))) * sd["reader_case"]
    residual = rng.standard_normal((len(readers), len(pairs))) * sd["residual"]
    rows = []
    for r, reader in enumerate(readers):
        for p, (session, lesion) in enumerate(pairs):
            z = latent_mean(reader, lesion, session) + case[lesion.lesion_id] + case_session[p] + \
                reader_case[r, lesion_ids.index(lesion.lesion_id)] + residual[r, p]
            confidence = confidence_of(z, reader.thresholds)
            rows.append({"patient_id": patient.patient_id, "session_id": session.session_id,
                         "lesion_id": lesion.lesion_id, "reader": reader.name, "reader_call": call_of(confidence),
                         "confidence": confidence, "anatomic_correlate": anatomic_correlate(lesion)})
    return rows
