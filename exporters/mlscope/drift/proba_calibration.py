"""Fit the probability calibration of a reference profile on its labelled predictions (build side, numpy).

Isotonic regression (pool adjacent violators, ties averaged: the fit and breakpoints of
scikit-learn's ``IsotonicRegression``) on the positive class of a binary model, or per
class one-vs-rest for a multiclass one. Its quality is measured by cross-fitting: the
rows are split into stratified folds, each fold is calibrated by curves fitted on the
others, and the top-label calibration error of those held-out probabilities is stated
next to the raw probabilities' error. The stored curves are then fitted on every row, unless the raw
probabilities had the smaller held-out error: the calibration is then the identity.

The predictions must come from rows the model was not trained on (a validation set):
a model is overconfident on its own training rows, and calibrating there would keep it so.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..labels import class_label
from .profile import ProfileError
from .score_calibration import (
    CLASS_TOO_RARE,
    IDENTITY,
    ISOTONIC,
    SINGLE_CLASS,
    TOO_FEW_LABELLED_ROWS,
    Calibration,
    Curve,
    calibration_error,
)

FOLDS = 5
MIN_LABELLED_ROWS = 100   # below, even a calibrated model's held-out error is mostly noise (0.03-0.06 at 100)
MIN_CLASS_ROWS = 10       # labelled rows each class needs for its one-vs-rest curve


def isotonic(x: np.ndarray, y: np.ndarray) -> Curve:
    """Breakpoints of the non-decreasing least-squares fit of ``y`` on ``x`` (linear in between, clipped)."""
    ux, inverse = np.unique(x, return_inverse=True)
    weights = np.bincount(inverse).astype(np.float64)
    sums = np.bincount(inverse, weights=y)
    means: list[float] = []
    sizes: list[float] = []
    starts: list[int] = []
    for i, (total, weight) in enumerate(zip(sums.tolist(), weights.tolist(), strict=True)):
        mean, size, start = total / weight, weight, i
        while means and means[-1] >= mean:
            prev_mean, prev_size = means.pop(), sizes.pop()
            start = starts.pop()
            mean = (prev_mean * prev_size + mean * size) / (prev_size + size)
            size += prev_size
        means.append(mean)
        sizes.append(size)
        starts.append(start)
    ends = [*starts[1:], ux.size]
    xs: list[float] = []
    ys: list[float] = []
    for mean, start, end in zip(means, starts, ends, strict=True):
        for index in dict.fromkeys((start, end - 1)):
            xs.append(float(ux[index]))
            ys.append(min(1.0, max(0.0, mean)))
    return tuple(xs), tuple(ys)


def _curves(p: np.ndarray, actual: np.ndarray) -> tuple[Curve, ...]:
    if p.shape[1] == 2:
        return (isotonic(p[:, 1], (actual == 1).astype(np.float64)),)
    return tuple(isotonic(p[:, k], (actual == k).astype(np.float64)) for k in range(p.shape[1]))


def _folds(actual: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A stratified fold number per row: each class's rows dealt in turn, in random order."""
    fold = np.empty(actual.size, dtype=np.int64)
    offset = 0
    for k in np.unique(actual):
        rows = rng.permutation(np.flatnonzero(actual == k))
        fold[rows] = (np.arange(rows.size) + offset) % folds
        offset += rows.size
    return fold


def _checked(proba: Any, labels: Any, classes: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(labels).ravel()
    names = [class_label(c) for c in (np.unique(y) if classes is None else classes)]
    if any(n is None for n in names) or len(set(names)) != len(names):
        raise ProfileError(f"classes must be distinct usable labels (in predict_proba order), got {names}")
    keys = tuple(n for n in names if n is not None)
    if p.ndim == 1 and len(keys) == 2:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape != (y.size, len(keys)):
        raise ProfileError(f"probabilities must have one row per label ({y.size}) and one column per class "
                           f"({len(keys)}: {', '.join(keys)}), got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any() or np.abs(p.sum(axis=1) - 1).max(initial=0) > 1e-3:
        raise ProfileError("probabilities must be finite, within [0, 1], and sum to 1 on each row")
    index = {k: i for i, k in enumerate(keys)}
    actual = np.array([index.get(class_label(v) or "", -1) for v in y.tolist()], dtype=np.int64)
    unknown = sorted({str(v) for v, a in zip(y.tolist(), actual.tolist(), strict=True) if a < 0})
    if unknown:
        raise ProfileError(f"labels outside the classes {list(keys)}: {unknown[:10]}")
    return p, actual, keys


def fit_calibration(proba: Any, labels: Any, classes: Any = None, *, folds: int = FOLDS, method: str = "auto",
                    seed: int = 0) -> Calibration:
    """Calibration of probabilities ``proba`` (rows x classes, in ``classes`` order) against ``labels``.

    ``classes`` defaults to the sorted distinct labels (scikit-learn's ``classes_``). ``method``
    ``"auto"`` keeps the raw probabilities when isotonic ones are worse on held-out folds;
    ``"isotonic"`` always calibrates. A reference that
    cannot calibrate the model gives a :class:`~mlscope.drift.score_calibration.Calibration` with ``refused`` set
    and a ``detail`` that says what to do; malformed input raises ``ProfileError``.
    """
    if method not in ("auto", ISOTONIC):
        raise ProfileError(f"calibration method must be 'auto' or 'isotonic', got {method!r}")
    p, actual, keys = _checked(proba, labels, classes)
    predicted = p.argmax(axis=1)
    rows = int(actual.size)
    error_raw = calibration_error(p, predicted, actual) if rows else None
    counts = np.bincount(actual, minlength=len(keys))
    refused = _refusal(rows, counts, keys)
    if refused is not None:
        reason, detail = refused
        return Calibration(keys, (), rows, 0, error_raw, None, refused=reason, detail=detail)
    fold = _folds(actual, folds, np.random.default_rng(seed))
    held_out = np.empty_like(p)
    for f in range(folds):
        test = fold == f
        fitted = Calibration(keys, _curves(p[~test], actual[~test]), rows, folds, None, None)
        held_out[test] = fitted.apply(p[test])
    error = calibration_error(held_out, predicted, actual)
    if method == "auto" and error_raw is not None and error_raw <= error:  # isotonic no better held out: keep raw
        identity = ((0.0, 1.0), (0.0, 1.0))
        return Calibration(keys, (identity,) * (1 if len(keys) == 2 else len(keys)), rows, folds, error_raw,
                           error_raw, method=IDENTITY)
    return Calibration(keys, _curves(p, actual), rows, folds, error_raw, error)


def _refusal(rows: int, counts: np.ndarray, keys: tuple[str, ...]) -> tuple[str, str] | None:
    if rows < MIN_LABELLED_ROWS:
        return TOO_FEW_LABELLED_ROWS, (
            f"{rows} labelled predictions; calibrating needs at least {MIN_LABELLED_ROWS}: pass more labelled "
            "predictions from rows the model was not trained on (a validation set)")
    if np.count_nonzero(counts) < 2:
        return SINGLE_CLASS, (f"every labelled prediction is of one class ({keys[int(counts.argmax())]}): the "
                              "reference cannot show how often the model is wrong; label rows of every class")
    rare = [f"{k} ({c})" for k, c in zip(keys, counts.tolist(), strict=True) if c < MIN_CLASS_ROWS]
    if rare:
        return CLASS_TOO_RARE, (f"classes with fewer than {MIN_CLASS_ROWS} labelled predictions: {', '.join(rare)}; "
                                "add labelled rows of those classes")
    return None


__all__ = ["fit_calibration", "isotonic", "FOLDS", "MIN_LABELLED_ROWS", "MIN_CLASS_ROWS"]
