"""The study's liver-threshold call and the Krenning score.

The study protocol calls a lesion clearly positive when its uptake is higher than the liver's.
:func:`liver_call` makes that call, three-way and honest about noise (positive, equivocal,
negative), together with the Krenning score that agrees with it; every lesion NETPET measures is
called with it. :class:`LiverThresholdClassifier` is the same comparison as a two-way
scikit-learn estimator, for research on the cut-off: a lesion statistic (SUVmax by default) over
a liver reference statistic (SUVmean by default), positive when the ratio exceeds the cut-off
(``margin``, 1.0 by default). It follows scikit-learn's estimator conventions so that
it can be cross-validated: ``fit(X, y)`` with reference-standard labels learns the cut-off that
maximises Youden's J (sensitivity + specificity - 1) when ``learn_cutoff`` is True; ``fit(X)``
without labels keeps the protocol's rule. Models are saved as JSON, never pickled.

Krenning score (Krenning EP et al., Eur J Nucl Med 1993; Kwekkeboom DJ, Krenning EP, Semin Nucl
Med 2002;32:84): 0 no uptake, 1 lower than liver, 2 equal to liver, 3 higher than liver, 4
higher than spleen (or kidneys).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

#: The scikit-learn estimator lives in netpet.quant.cutoff, so that calling a lesion needs no scikit-learn
#: (``netpet segment`` starts without it); its names stay importable from here (PEP 562).
_ESTIMATOR = ("LiverThresholdClassifier", "youden_cutoff")


def __getattr__(name: str):
    if name in _ESTIMATOR:
        from netpet.quant import cutoff

        return getattr(cutoff, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Two-sided level of the band of values liver tissue reaches by noise alone.
EQUAL_LEVEL = 0.95


@dataclass(frozen=True)
class LiverCall:
    """The liver-threshold call of one lesion and the Krenning score that agrees with it.

    call : "positive" (clearly above the liver), "equivocal" (what liver tissue of the lesion's
        size could show by noise alone: "equal to liver") or "negative"
    krenning : 0-4, or None where no Krenning score is given (not an SSTR tracer)
    uptake : the lesion measure compared (SUVmax, SUV)
    liver : the liver SUVmean (SUV)
    low, high : the band of SUVmax that liver tissue of the lesion's volume reaches by noise alone
        (SUV, 2.5th and 97.5th percentiles)
    independent : the number of independent noise samples the band assumes for the lesion
    """

    call: str
    krenning: Optional[int]
    uptake: float
    liver: float
    low: float
    high: float
    independent: float


def noise_maximum_band(mean: float, sd: float, sd_1ml: Optional[float], volume_ml: float, voxel_ml: float,
                       level: float = EQUAL_LEVEL) -> Tuple[float, float, float]:
    """(low, high, n): the central ``level`` band of the SUVmax that a uniform tissue of SUVmean
    ``mean`` reaches by noise alone over ``volume_ml``.

    The noise is Gaussian with voxel SD ``sd``; neighbouring voxels are correlated (reconstruction
    and filtering), which the SD of 1 mL means ``sd_1ml`` measures: 1 mL holds (sd / sd_1ml)^2
    independent samples, so ``volume_ml`` holds n = volume_ml x (sd / sd_1ml)^2 (at least 1, at most
    the number of voxels). The maximum of n independent normals has P(max <= x) = Phi(x)^n, whose
    quantiles give the band (the Gaussian extreme-value distribution; e.g. n = 1: +-1.96 SD).
    """
    from scipy.special import ndtri  # the standard normal quantile (scipy.stats.norm.ppf) without scipy.stats

    voxels = max(volume_ml / max(voxel_ml, 1e-9), 1.0)
    if sd_1ml is not None and sd_1ml > 0 and sd > 0:
        n = volume_ml * (sd / sd_1ml) ** 2
    else:
        n = voxels  # no correlation measured: every voxel independent (a wider, more cautious band)
    n = float(min(max(n, 1.0), voxels))
    tail = (1.0 - level) / 2.0
    low = mean + sd * float(ndtri(tail ** (1.0 / n)))
    high = mean + sd * float(ndtri((1.0 - tail) ** (1.0 / n)))
    return low, high, n


def liver_call(suv_max: float, volume_ml: float, voxel_ml: float, liver_mean: float, liver_sd: float,
               liver_sd_1ml: Optional[float] = None, spleen: Optional[Tuple[float, float, Optional[float]]] = None,
               separable: bool = True, background: Optional[float] = None, krenning: bool = True,
               cutoff: float = 1.0, level: float = EQUAL_LEVEL) -> LiverCall:
    """The study's liver-threshold call and the Krenning score, from one comparison.

    Definition followed: the lesion's most intense uptake, SUVmax, against the liver, as readers
    compare a lesion's most intense uptake with the liver in the Krenning score (Krenning EP et al.,
    Eur J Nucl Med 1993;20:716; for PET: Hope TA et al., J Nucl Med 2019;60:1266) and SSTR-RADS
    (Werner RA et al., J Nucl Med 2018;59:1085), and as PROMISE v2 quantifies such scores with the
    lesion SUVmax over the reference organ's SUVmean (Seifert R et al., Eur Urol 2023;83:405). A
    lesion's SUVmax is a maximum over its voxels, so liver tissue of the same volume reaches values
    above the liver SUVmean by noise alone; "equal to liver" is therefore the band
    :func:`noise_maximum_band` of the liver for the lesion's volume (its MTV; the 1 mL sphere at the
    click for a lesion that is not separable), scaled by ``cutoff``: above it the lesion is clearly
    above the liver (Krenning 3, positive), within it equal (2, equivocal), below it lower (1,
    negative). Krenning 4 (above the spleen) needs SUVmax above the spleen's band likewise. The
    Krenning grade is read from the same comparison, so call and score always agree: 3 and 4
    positive, 2 equivocal, 0 and 1 negative. A lesion that is not separable from its surroundings is
    never scored above "equal to liver" (an organ or the background is not a focal lesion); with its
    local uptake not above its background it scores 0.
    """
    if not (math.isfinite(suv_max) and math.isfinite(liver_mean) and liver_mean > 0):
        raise ValueError(f"the call needs a finite lesion SUVmax and a positive liver SUVmean (got {suv_max}, {liver_mean})")
    volume_ml = volume_ml if math.isfinite(volume_ml) and volume_ml > 0 else 1.0
    low, high, n = noise_maximum_band(cutoff * liver_mean, cutoff * max(liver_sd, 0.0),
                                      cutoff * liver_sd_1ml if liver_sd_1ml is not None else None,
                                      volume_ml, voxel_ml, level)
    if suv_max > high:
        grade = 3
        if spleen is not None:
            spleen_high = noise_maximum_band(spleen[0], max(spleen[1], 0.0), spleen[2], volume_ml, voxel_ml, level)[1]
            grade = 4 if suv_max > spleen_high else 3
    elif suv_max >= low:
        grade = 2
    else:
        grade = 1
    if not separable:
        grade = min(grade, 2)
        if background is not None and suv_max <= background:
            grade = 0
    call = "positive" if grade >= 3 else "equivocal" if grade == 2 else "negative"
    return LiverCall(call, grade if krenning else None, float(suv_max), float(liver_mean), float(low), float(high), n)


def krenning_score(suv: float, liver: float, spleen: Optional[float] = None, background: Optional[float] = None,
                   equal_band: float = 0.10) -> int:
    """Krenning score 0-4 of a lesion uptake against liver (and spleen) references, with a fixed
    relative band: within +-``equal_band`` of the liver is equal to it (2). Without a spleen
    reference no lesion scores 4. With a background, uptake not above 1.2 x background is 0.
    NETPET's own calls use :func:`liver_call`, whose band comes from the measured noise.
    """
    if background is not None and suv <= 1.2 * background:
        return 0
    if suv < (1.0 - equal_band) * liver:
        return 1
    if suv <= (1.0 + equal_band) * liver:
        return 2
    if spleen is not None and suv > spleen:
        return 4
    return 3


