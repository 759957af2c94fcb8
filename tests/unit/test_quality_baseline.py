"""Baseline metrics (numpy) against scikit-learn on the same validation data."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from mlscope.quality import baseline_metrics


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_classification_baseline_equals_sklearn(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    classes = [f"c{k}" for k in range(n_classes)]
    y_true = rng.choice(classes, 600)
    proba = rng.dirichlet(np.ones(n_classes), 600)
    proba = np.round(proba, 2)  # ties in the scores
    proba[:, -1] = 1 - proba[:, :-1].sum(axis=1)  # rows still sum to 1 (scikit-learn checks)
    y_pred = np.where(rng.random(600) < 0.7, y_true, rng.choice(classes[:-1], 600))  # last class under-predicted
    got = baseline_metrics("classification", y_true, y_pred, proba, classes)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred), abs=1e-12)
    for name, fn in (("precision", metrics.precision_score), ("recall", metrics.recall_score),
                     ("f1", metrics.f1_score)):
        assert got[f"{name}_macro"] == pytest.approx(fn(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    expected_auc = (metrics.roc_auc_score(y_true == classes[1], proba[:, 1]) if n_classes == 2 else
                    metrics.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes))
    assert got["roc_auc"] == pytest.approx(expected_auc, abs=1e-12)


def test_a_label_never_predicted_scores_zero_as_sklearn_zero_division() -> None:
    y_true, y_pred = ["a", "b", "c", "c"], ["a", "b", "b", "b"]
    got = baseline_metrics("classification", y_true, y_pred)
    assert got["precision_macro"] == pytest.approx(
        metrics.precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert got["f1_macro"] == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_regression_baseline_equals_sklearn() -> None:
    rng = np.random.default_rng(7)
    y_true = np.r_[rng.normal(10, 3, 500), np.zeros(5)]
    y_pred = y_true + rng.normal(0, 1, 505)
    got = baseline_metrics("regression", y_true, y_pred)
    nonzero = y_true != 0
    assert got["mae"] == pytest.approx(metrics.mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert got["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y_true, y_pred)), rel=1e-12)
    assert got["mape"] == pytest.approx(
        metrics.mean_absolute_percentage_error(y_true[nonzero], y_pred[nonzero]), rel=1e-12)
