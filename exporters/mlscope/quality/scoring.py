"""Turn stored predictions and joined pairs into counter increments; binned ROC AUC; baselines.

Pure functions over plain values: no store, no threads. Keys follow
``mlscope.quality.store.Counts``: ``(series name, label values)`` with the
catalog's label order; a histogram adds to ``<name>_bucket`` (one bucket, not
cumulative, ``le`` last) and ``<name>_sum``.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .._promclient import go_float
from ..catalog import quality as cat
from ..drift.score_calibration import CLASSES_MISMATCH
from ..labels import class_label
from .store import Counts, StoredPrediction, VersionInfo

Labels = tuple[str, ...]


def number(value: Any) -> float | None:
    """A finite float, or None (wrong type or not finite)."""
    if isinstance(value, (bool, str)) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def timestamp(value: Any) -> float | None:
    """Unix seconds from a number, a numeric string or an ISO 8601 string (``2026-11-25T10:00:00Z``); else None."""
    out = number(value)
    if out is None and isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                return None
            out = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    return out if out is not None and math.isfinite(out) and out > 0 else None


def probabilities(proba: Any, n_classes: int) -> tuple[float, ...] | None:
    """Probabilities aligned with ``n_classes`` classes, or None when unusable.

    A binary classifier may give the positive class's probability alone.
    Probabilities must be finite, within [0, 1] and sum to 1 (±1e-3).
    """
    try:
        array = np.asarray(proba, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    if array.size == 1 and n_classes == 2:
        array = np.array([1.0 - array[0], array[0]])
    if array.size != n_classes or not np.all(np.isfinite(array)) or np.any(array < 0) or np.any(array > 1):
        return None
    if abs(float(array.sum()) - 1.0) > 1e-3:
        return None
    return tuple(array.tolist())


def _hist(out: Counts, family: str, labels: Labels, bounds: Sequence[float], value: float) -> None:
    index = bisect_left(bounds, value)
    le = go_float(bounds[index]) if index < len(bounds) else "+Inf"
    key = (family + "_bucket", labels + (le,))
    out[key] = out.get(key, 0.0) + 1.0
    key = (family + "_sum", labels)
    out[key] = out.get(key, 0.0) + value


def _add(out: Counts, key: tuple[str, Labels], value: float) -> None:
    out[key] = out.get(key, 0.0) + value


def estimate_refusal(info: VersionInfo, max_calibration_error: float) -> str | None:
    """Why the version's estimates are refused (its reference cannot calibrate the model), or None.

    A version without a calibration is estimated from its raw probabilities (and alerts ignore it).
    """
    calibration = info.calibration
    if calibration is None:
        return None
    if info.classes is not None and calibration.classes != info.classes:
        return CLASSES_MISMATCH
    return calibration.refusal(max_calibration_error)


def calibrated_probabilities(rows: Iterable[StoredPrediction], version: Callable[[str, str], VersionInfo | None],
                             max_calibration_error: float) -> dict[str, list[float]]:
    """Request id -> calibrated probabilities of the rows whose version estimates them (one numpy call per version)."""
    groups: dict[tuple[str, str], list[StoredPrediction]] = {}
    for row in rows:
        if row.proba is not None and row.predicted is not None:
            groups.setdefault((row.model, row.model_version), []).append(row)
    out: dict[str, list[float]] = {}
    for key, group in groups.items():
        info = version(*key)
        if info is None or info.calibration is None or estimate_refusal(info, max_calibration_error) is not None:
            continue
        calibrated = info.calibration.apply(np.array([r.proba for r in group])).tolist()
        out.update(zip([r.request_id for r in group], calibrated, strict=True))
    return out


def prediction_counts(row: StoredPrediction, info: VersionInfo | None, out: Counts,
                      max_calibration_error: float = math.inf, calibrated: Sequence[float] | None = None) -> None:
    """Counters of a newly stored prediction: coverage denominator and the expected confusion matrix.

    The expected confusion matrix sums the version's calibrated probabilities (``calibrated`` when
    computed for a batch already); a version whose reference cannot calibrate the model counts the
    prediction as refused instead.
    """
    labels = (row.model, row.model_version, row.segment)
    _add(out, (cat.PREDICTIONS_STORED.name, labels), 1.0)
    if row.proba is None or row.predicted is None or info is None or not info.classes:
        return
    proba: Sequence[float] = row.proba
    if info.calibration is not None:
        refused = estimate_refusal(info, max_calibration_error)
        if refused is not None:
            _add(out, (cat.ESTIMATES_REFUSED.name, labels + (refused,)), 1.0)
            return
        proba = info.calibration.apply(row.proba).tolist() if calibrated is None else calibrated
    predicted = row.predicted
    for cls, p in zip(info.classes, proba, strict=False):
        if p:
            _add(out, (cat.EXPECTED_CONFUSION.name, labels + (cls, predicted)), p)
        if cls == predicted:
            _add(out, (cat.EXPECTED_CORRECT.name, labels + (cls,)), p)


def pair_counts(row: StoredPrediction, info: VersionInfo, y_true: Any, delay_s: float, out: Counts,
                admit_class: Any = None) -> str | None:
    """Add the counters of one joined pair to ``out``; return a rejection reason instead when unusable.

    ``admit_class`` maps an actual class label to its bounded label value
    (a LabelGuard's ``admit``); classes outside a version's known class list
    are rejected as ``unknown_class``.
    """
    labels = (row.model, row.model_version, row.segment)
    if info.task == "regression":
        if isinstance(y_true, (str, bool)) or y_true is None or isinstance(y_true, (list, dict, tuple)):
            return "wrong_type"
        y = number(y_true)
        if y is None or row.value is None:
            return "invalid_target"
        error = y - row.value
        _add(out, (cat.REGRESSION_PAIRS.name, labels), 1.0)
        _add(out, (cat.ABSOLUTE_ERROR.name, labels), abs(error))
        _add(out, (cat.SQUARED_ERROR.name, labels), error * error)
        if y == 0.0:
            _add(out, (cat.ZERO_TARGETS.name, labels), 1.0)
        else:
            _add(out, (cat.ABSOLUTE_PERCENTAGE_ERROR.name, labels), abs(error) / abs(y))
    else:
        if isinstance(y_true, (list, dict, tuple)) or y_true is None:
            return "wrong_type"
        actual = class_label(y_true)
        if actual is None:
            return "invalid_target"
        if info.classes is not None and actual not in info.classes:
            return "unknown_class"
        if admit_class is not None:
            actual = admit_class("class", actual)
        predicted = row.predicted if row.predicted is not None else "__none__"
        _add(out, (cat.CONFUSION.name, labels + (actual, predicted)), 1.0)
        _add(out, (cat.CORRECT.name, labels + (actual,)), 1.0 if actual == predicted else 0.0)
        _add(out, (cat.CORRECT.name, labels + (predicted,)), 0.0)
        if row.proba is not None and info.classes:
            scored = info.classes[1:] if len(info.classes) == 2 else info.classes
            probas = row.proba[1:] if len(info.classes) == 2 else row.proba
            for cls, p in zip(scored, probas, strict=False):
                _hist(out, cat.CLASS_SCORE.name, labels + (cls, "positive" if cls == actual else "negative"),
                      cat.CLASS_SCORE_BUCKETS, p)
    _add(out, (cat.LABELLED.name, labels), 1.0)
    _hist(out, cat.LABEL_DELAY.name, labels, cat.LABEL_DELAY_BUCKETS, max(0.0, delay_s))
    return None


def zero_counts(info: VersionInfo, segment: str = "") -> Counts:
    """Every counter a version will use, at 0, so Prometheus sees them start from 0.

    ``increase()`` ignores a series' first sample: a series that first appears
    with value 5 loses those 5. Creating the series at 0 as soon as the version
    is registered (with its classes) keeps windows exact.
    """
    labels = (info.model, info.model_version, segment)
    out: Counts = {(cat.PREDICTIONS_STORED.name, labels): 0.0, (cat.LABELLED.name, labels): 0.0,
                   (cat.LABEL_DELAY.name + "_sum", labels): 0.0}
    if info.task == "regression":
        for spec in (cat.REGRESSION_PAIRS, cat.ABSOLUTE_ERROR, cat.SQUARED_ERROR, cat.ABSOLUTE_PERCENTAGE_ERROR,
                     cat.ZERO_TARGETS):
            out[(spec.name, labels)] = 0.0
        return out
    for actual in info.classes or ():
        out[(cat.CORRECT.name, labels + (actual,))] = 0.0
        out[(cat.EXPECTED_CORRECT.name, labels + (actual,))] = 0.0
        for predicted in info.classes or ():
            out[(cat.CONFUSION.name, labels + (actual, predicted))] = 0.0
            out[(cat.EXPECTED_CONFUSION.name, labels + (actual, predicted))] = 0.0
    return out


# -- ROC AUC from binned scores -------------------------------------------------------------------

def binned_auc(positive: Sequence[float], negative: Sequence[float]) -> tuple[float, float] | None:
    """ROC AUC from per-bucket counts of positives and negatives (same buckets, ascending).

    Pairs in the same bucket count as ties (1/2), so the result differs from
    the exact AUC by at most the returned bound: half the share of
    positive/negative pairs that share a bucket. None when a side is empty.
    """
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos <= 0 or n_neg <= 0:
        return None
    above = np.concatenate([np.cumsum(pos[::-1])[::-1][1:], [0.0]])  # positives in higher buckets
    same = float(np.dot(neg, pos))
    auc = (float(np.dot(neg, above)) + 0.5 * same) / (n_pos * n_neg)
    return auc, 0.5 * same / (n_pos * n_neg)
