"""A version's quality on validation data, to publish as its baseline: numpy only (the tests compare scikit-learn).

Classification: accuracy, precision/recall/F1 macro over every label seen in ``y_true`` or ``y_pred``
(a class with no prediction or no instance scores 0, as scikit-learn's ``zero_division=0``) and, with
``proba`` (columns aligned with ``classes``), the exact ROC AUC (binary, or one-vs-rest macro).
Regression: MAE, RMSE and MAPE (rows with ``y_true == 0`` skipped, as the recorded MAPE does).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC: the Mann-Whitney U statistic from average ranks (ties count one half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0  # 1-based average rank of the tied run
    n_pos = int(positive.sum())
    n_neg = len(scores) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _classification(y_true: Any, y_pred: Any, proba: Any, classes: Sequence[Any] | None) -> dict[str, float]:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    labels = np.unique(np.concatenate([yt, yp]))
    out = {"accuracy": float(np.mean(yt == yp))}
    precision, recall, f1 = [], [], []
    for label in labels:
        tp = float(np.sum((yp == label) & (yt == label)))
        predicted, actual = float(np.sum(yp == label)), float(np.sum(yt == label))
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        precision.append(p)
        recall.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    out.update(precision_macro=float(np.mean(precision)), recall_macro=float(np.mean(recall)),
               f1_macro=float(np.mean(f1)))
    if proba is not None and classes is not None:
        scores = np.asarray(proba, dtype=np.float64)
        if len(classes) == 2:
            out["roc_auc"] = roc_auc(yt == classes[1], scores[:, 1])
        else:
            out["roc_auc"] = float(np.mean([roc_auc(yt == c, scores[:, k]) for k, c in enumerate(classes)]))
    return out


def _regression(y_true: Any, y_pred: Any) -> dict[str, float]:
    yt, yp = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    error = yp - yt
    out = {"mae": float(np.mean(np.abs(error))), "rmse": float(math.sqrt(np.mean(error ** 2)))}
    nonzero = yt != 0
    if nonzero.any():
        out["mape"] = float(np.mean(np.abs(error[nonzero]) / np.abs(yt[nonzero])))
    return out


def baseline_metrics(task: str, y_true: Any, y_pred: Any, proba: Any = None,
                     classes: Sequence[Any] | None = None) -> dict[str, float]:
    """The metrics of ``task`` ("classification" or "regression") on validation data (see the module doc)."""
    if task == "regression":
        return _regression(y_true, y_pred)
    return _classification(y_true, y_pred, proba, classes)
