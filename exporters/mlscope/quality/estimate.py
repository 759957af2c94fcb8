"""Performance estimated without labels from predicted probabilities (confidence-based, as NannyML's CBPE).

If the model is calibrated, row ``i`` is of class ``k`` with probability
``p_ik``. The expected confusion matrix is then
``E[C[a, k]] = sum of p_ia over rows predicted as k``, and

- expected accuracy = ``sum_k E[C[k, k]] / n`` (the mean probability of the predicted class),
- expected F1 of class ``k`` = ``2 E[TP_k] / (E[actual_k] + predicted_k)``, with
  ``E[actual_k] = sum_i p_ik`` (a ratio of expectations, consistent as n grows),
- expected macro F1 = their mean over classes seen (predicted, or expected actual > 0).

Binary and multiclass work the same way. The exporter keeps ``E[C]`` as counters
(``mlscope_quality_expected_confusion_total``), added when a prediction is
stored, so recording rules compute the estimate over any window next to the
realised metric. This module is the same computation on arrays, for offline
use and as the reference in tests. It is only as good as the calibration, and
says nothing about concept drift (``P(y | x)`` changing): that needs labels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    accuracy: float
    f1: dict[Any, float]
    f1_macro: float
    rows: int


def expected_confusion(proba: Any, y_pred: Any, classes: Sequence[Any]) -> np.ndarray:
    """``E[C]`` with rows = actual class, columns = predicted class (in ``classes`` order)."""
    p = np.asarray(proba, dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    predicted = np.array([index[c] for c in np.asarray(y_pred).tolist()])
    matrix = np.zeros((len(classes), len(classes)))
    for k in range(len(classes)):
        matrix[:, k] = p[predicted == k].sum(axis=0)
    return matrix


def from_confusion(matrix: np.ndarray, classes: Sequence[Any]) -> Estimate:
    """Accuracy and F1 (per class, macro; zero_division=0) of a (possibly expected) confusion matrix."""
    total = float(matrix.sum())
    tp = np.diag(matrix)
    actual, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    seen = (actual + predicted) > 0
    f1 = np.where(seen, 2 * tp / np.where(seen, actual + predicted, 1.0), 0.0)
    return Estimate(accuracy=float(tp.sum() / total) if total else float("nan"),
                    f1={c: float(v) for c, v, s in zip(classes, f1, seen, strict=True) if s},
                    f1_macro=float(f1[seen].mean()) if seen.any() else float("nan"),
                    rows=int(round(total)))


def estimate(proba: Any, y_pred: Any, classes: Sequence[Any]) -> Estimate:
    """Expected accuracy and F1 of predictions ``y_pred`` with probabilities ``proba`` (no labels)."""
    return from_confusion(expected_confusion(proba, y_pred, classes), classes)
