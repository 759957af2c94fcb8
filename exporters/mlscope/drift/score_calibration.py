"""Probability calibration for confidence-based estimates, applied with numpy alone (the service side).

CBPE (``mlscope.quality.estimate``) is right only for calibrated probabilities. A
:class:`Calibration` is fitted on the reference's labelled predictions when the profile
is built (``mlscope.drift.proba_calibration``) and stored in the profile as plain numbers: one
isotonic curve (breakpoints, linear in between, clipped at the ends, as scikit-learn's
``IsotonicRegression(out_of_bounds="clip")``) for the positive class of a binary model,
or one per class (one-vs-rest) for a multiclass model, whose outputs are renormalised to
sum to 1 (uniform where every curve gives 0, as ``CalibratedClassifierCV``). Where the raw
probabilities were better calibrated than the isotonic ones on held-out folds (an already
calibrated model on a small reference), the curves are the identity (``method="identity"``).

Its quality is stated as the top-label expected calibration error (:func:`calibration_error`)
of the raw and of the calibrated probabilities on held-out reference folds. A reference that
cannot calibrate the model (too few labelled rows, a single class) carries ``refused`` with
the reason instead of curves, and estimates are refused for it.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ISOTONIC = "isotonic"
IDENTITY = "identity"  # the raw probabilities were better calibrated on held-out folds than the isotonic ones
ECE_BINS = 10
# Reasons an estimate is refused (label values of mlscope_quality_estimates_refused_total).
TOO_FEW_LABELLED_ROWS = "too_few_labelled_rows"
SINGLE_CLASS = "single_class"
CLASS_TOO_RARE = "class_too_rare"
ERROR_ABOVE_BOUND = "calibration_error_above_bound"
CLASSES_MISMATCH = "calibration_classes_mismatch"
REFUSALS = (TOO_FEW_LABELLED_ROWS, SINGLE_CLASS, CLASS_TOO_RARE, ERROR_ABOVE_BOUND, CLASSES_MISMATCH)

Curve = tuple[tuple[float, ...], tuple[float, ...]]  # (x breakpoints, calibrated values), x increasing


class CalibrationError(ValueError):
    """A stored calibration is malformed, or does not fit the probabilities it is applied to."""


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration (``curves``) or a refusal (``refused``, ``detail``), with its measured quality."""

    classes: tuple[str, ...]
    curves: tuple[Curve, ...]
    rows: int                            # labelled reference rows it was fitted on
    folds: int                           # cross-fitting folds its errors were measured on
    error_raw: float | None              # held-out top-label ECE of the raw probabilities
    error_calibrated: float | None       # held-out top-label ECE of the cross-fitted calibrated probabilities
    refused: str | None = None           # why the reference cannot calibrate the model (one of REFUSALS)
    detail: str = ""                     # the refusal, in words: what was found and what to do
    method: str = ISOTONIC

    def __post_init__(self) -> None:
        if self.refused is not None:
            if self.refused not in REFUSALS:
                raise CalibrationError(f"unknown calibration refusal {self.refused!r}")
            return
        expected = 1 if len(self.classes) == 2 else len(self.classes)
        if self.method not in (ISOTONIC, IDENTITY) or len(self.classes) < 2 or len(self.curves) != expected:
            raise CalibrationError(f"calibration of {len(self.classes)} classes needs {expected} curves, "
                                   f"got {len(self.curves)} ({self.method})")
        for x, y in self.curves:
            steps = itertools.chain(itertools.pairwise(x), itertools.pairwise(y))
            if not x or len(x) != len(y) or any(b < a for a, b in steps):
                raise CalibrationError("an isotonic curve needs as many values as breakpoints, both non-decreasing")
            if not all(math.isfinite(v) for v in x + y) or min(y) < 0 or max(y) > 1:
                raise CalibrationError("isotonic breakpoints must be finite, values within [0, 1]")

    def refusal(self, max_error: float) -> str | None:
        """Why estimates must not use this calibration (refused, or held-out error above ``max_error``), or None."""
        if self.refused is not None:
            return self.refused
        if self.error_calibrated is None or self.error_calibrated > max_error:
            return ERROR_ABOVE_BOUND
        return None

    def explain(self, reason: str, max_error: float) -> str:
        """The refusal ``reason`` in words, with what to do."""
        if reason == self.refused:
            return self.detail or reason
        if reason == ERROR_ABOVE_BOUND:
            error = "unknown" if self.error_calibrated is None else f"{self.error_calibrated:.3f}"
            return (f"held-out calibration error of the calibrated probabilities is {error}, above "
                    f"thresholds.calibration_max_error ({max_error:g}): calibrate on more labelled predictions")
        return (f"the calibration's classes ({', '.join(self.classes)}) are not the version's: rebuild the "
                "profile with the model's classes in predict_proba order")

    def apply(self, proba: Any) -> np.ndarray:
        """Calibrated probabilities of ``proba`` (rows x classes, or one row), each row summing to 1."""
        if self.refused is not None:
            raise CalibrationError(f"no calibration to apply: {self.detail or self.refused}")
        p = np.asarray(proba, dtype=np.float64)
        one = p.ndim == 1
        p = np.atleast_2d(p)
        if p.shape[1] != len(self.classes):
            raise CalibrationError(f"probabilities of {p.shape[1]} classes, calibration of {len(self.classes)}")
        if len(self.classes) == 2:
            x, y = self.curves[0]
            positive = np.interp(p[:, 1], x, y)
            out = np.column_stack([1.0 - positive, positive])
        else:
            out = np.column_stack([np.interp(p[:, k], x, y) for k, (x, y) in enumerate(self.curves)])
            total = out.sum(axis=1, keepdims=True)
            out = np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / out.shape[1])
        return out[0] if one else out

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "classes": list(self.classes), "rows": self.rows, "folds": self.folds,
                "error_raw": self.error_raw, "error_calibrated": self.error_calibrated, "refused": self.refused,
                "detail": self.detail, "curves": [{"x": list(x), "y": list(y)} for x, y in self.curves]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        try:
            return cls(classes=tuple(str(c) for c in data["classes"]),
                       curves=tuple((tuple(float(v) for v in c["x"]), tuple(float(v) for v in c["y"]))
                                    for c in data["curves"]),
                       rows=int(data["rows"]), folds=int(data["folds"]),
                       error_raw=_optional(data.get("error_raw")),
                       error_calibrated=_optional(data.get("error_calibrated")),
                       refused=None if data.get("refused") is None else str(data["refused"]),
                       detail=str(data.get("detail", "")), method=str(data.get("method", ISOTONIC)))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"malformed calibration: {type(exc).__name__}: {exc}") from exc


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def calibration_error(proba: Any, predicted: Any, actual: Any, bins: int = ECE_BINS) -> float:
    """Top-label expected calibration error: ``sum_b n_b / n * |accuracy_b - confidence_b|``.

    ``predicted`` and ``actual`` are class indices; the confidence of a row is its probability
    of the predicted class (what CBPE's accuracy averages), binned in ``bins`` equal-width bins.
    """
    p = np.asarray(proba, dtype=np.float64)
    predicted, actual = np.asarray(predicted), np.asarray(actual)
    if p.shape[0] == 0:
        return float("nan")
    confidence = p[np.arange(p.shape[0]), predicted]
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    gap = np.bincount(which, weights=(predicted == actual) - confidence, minlength=bins)
    return float(np.abs(gap).sum() / p.shape[0])
