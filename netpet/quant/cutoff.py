"""The liver-threshold cut-off as a scikit-learn estimator, for research on the cut-off.

:class:`LiverThresholdClassifier` is the study's comparison (a lesion statistic over a liver
reference statistic, positive when the ratio exceeds the cut-off) as a two-way estimator that
follows scikit-learn's conventions, so that it can be cross-validated; the three-way call every
lesion gets is :func:`netpet.quant.classify.liver_call`. Kept apart from it so that measuring and
calling a lesion does not import scikit-learn.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Optional, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

_FORMAT = "netpet.LiverThresholdClassifier/1"


class LiverThresholdClassifier(ClassifierMixin, BaseEstimator):
    """Positive when ``statistic / reference > cutoff``.

    Parameters
    ----------
    statistic : str
        Column of X holding the lesion uptake (``suv_max``, ``suv_peak``, ``suv_mean``...).
    reference : str
        Column of X holding the liver reference (``liver_suv_mean``, ``liver_suv_max``...).
    margin : float
        The ratio cut-off of the rule (1.0: above the liver).
    learn_cutoff : bool
        When fitted with labels, learn the cut-off by Youden's J instead of using ``margin``.

    X may be a pandas DataFrame with those columns, a dict of arrays, or an (n, 2) array of
    (statistic, reference) pairs. Labels are 1 (malignant) and 0 (benign).

    Attributes
    ----------
    cutoff_ : float
        The ratio cut-off in use.
    classes_ : ndarray
        ``[0, 1]``.
    """

    def __init__(self, statistic: str = "suv_max", reference: str = "liver_suv_mean", margin: float = 1.0,
                 learn_cutoff: bool = True) -> None:
        self.statistic = statistic
        self.reference = reference
        self.margin = margin
        self.learn_cutoff = learn_cutoff

    # -- helpers ------------------------------------------------------------------------------
    def ratios(self, X: Any) -> np.ndarray:
        """The statistic / reference ratio of every lesion."""
        if hasattr(X, "columns") or isinstance(X, dict):
            missing = [c for c in (self.statistic, self.reference) if c not in X]
            if missing:
                raise ValueError(f"X lacks the column(s) {missing} needed by the classifier")
            statistic = np.asarray(X[self.statistic], dtype=float)
            reference = np.asarray(X[self.reference], dtype=float)
        else:
            array = np.asarray(X, dtype=float)
            if array.ndim != 2 or array.shape[1] != 2:
                raise ValueError(f"X must be a table with columns {self.statistic!r} and {self.reference!r}, or an "
                                 f"(n, 2) array of (statistic, reference); got shape {array.shape}")
            statistic, reference = array[:, 0], array[:, 1]
        if np.any(reference <= 0) or np.any(~np.isfinite(reference)):
            raise ValueError("the liver reference must be a positive number for every lesion")
        return statistic / reference

    # -- estimator API ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Optional[Sequence[int]] = None) -> "LiverThresholdClassifier":
        ratios = self.ratios(X)
        self.classes_ = np.array([0, 1])
        if y is None or not self.learn_cutoff:
            self.cutoff_ = float(self.margin)
            return self
        labels = np.asarray(y).astype(int)
        if labels.shape != ratios.shape:
            raise ValueError(f"y has {labels.size} labels for {ratios.size} lesions")
        if not set(np.unique(labels)) <= {0, 1}:
            raise ValueError("labels must be 0 (benign) and 1 (malignant)")
        if labels.min() == labels.max():
            self.cutoff_ = float(self.margin)  # one class only: Youden's J is undefined; keep the rule
            return self
        self.cutoff_ = youden_cutoff(ratios, labels)
        return self

    def _check(self) -> None:
        if not hasattr(self, "cutoff_"):
            raise NotFittedError("call fit(X, y) to learn the cut-off, or fit(X) to use the protocol rule "
                                 f"(ratio > {self.margin})")

    def decision_function(self, X: Any) -> np.ndarray:
        self._check()
        return self.ratios(X) - self.cutoff_

    def predict(self, X: Any) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(int)

    def predict_proba(self, X: Any) -> np.ndarray:
        """A monotone score in [0, 1] (logistic of the log ratio over the cut-off), for ROC use."""
        self._check()
        ratio = np.maximum(self.ratios(X), 1e-12)
        score = 1.0 / (1.0 + np.exp(-8.0 * np.log(ratio / self.cutoff_)))
        return np.column_stack([1.0 - score, score])

    # -- persistence -------------------------------------------------------------------------------
    def to_json(self) -> str:
        payload: Dict[str, Any] = {"format": _FORMAT, "params": self.get_params()}
        if hasattr(self, "cutoff_"):
            payload["cutoff"] = self.cutoff_
        return json.dumps(payload, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "LiverThresholdClassifier":
        payload = json.loads(text)
        if payload.get("format") != _FORMAT:
            raise ValueError(f"not a NETPET liver-threshold classifier (format {payload.get('format')!r})")
        model = cls(**payload["params"])
        if "cutoff" in payload:
            model.cutoff_ = float(payload["cutoff"])
            model.classes_ = np.array([0, 1])
        return model

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())

    @classmethod
    def load(cls, path: str) -> "LiverThresholdClassifier":
        with open(path, encoding="utf-8") as handle:
            return cls.from_json(handle.read())


def youden_cutoff(scores: np.ndarray, labels: np.ndarray) -> float:
    """The cut-off c maximising sensitivity + specificity - 1 for the rule ``score > c``.

    Candidates are midpoints between consecutive distinct scores (and just below the lowest), so
    the cut-off separates the training lesions as well as possible; ties of J keep the lowest
    cut-off (the most sensitive rule). The same rule as StudyStats' ROC analysis.
    """
    from netpet.stats.roc import youden

    return youden(np.asarray(scores, dtype=float), np.asarray(labels) == 1)[0]
