"""Quality counters and estimates against scikit-learn on the same pairs."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn import metrics as skm

from mlscope import ModelMonitor
from mlscope.catalog import quality as cat
from mlscope.demo.workload import train
from mlscope.quality import Outcome, Quality, baseline_metrics, estimate
from mlscope.quality.scoring import binned_auc
from support.helpers import series
from support.quality_helpers import make_pairs, series_value

AUC_TOLERANCE = 0.01  # stated: binned ROC AUC vs exact, on these data sets (the exporter also bounds it)


def joined(y_true: Any, y_pred: Any, proba: Any = None, classes: Any = None, task: str = "classification",
           segments: Any = None, **quality_kwargs: Any) -> tuple[CollectorRegistry, Quality]:
    registry = CollectorRegistry()
    quality = Quality(registry=registry, start=False, **quality_kwargs)
    monitor = ModelMonitor("m", "1", registry=registry, quality=quality, classes=classes, task=task)
    for i, output in enumerate(y_pred):
        monitor.record_prediction(0.001, output=output, request_id=f"r{i}",
                                  proba=None if proba is None else proba[i],
                                  segment=None if segments is None else segments[i])
    quality.process_queue()
    summary = quality.record_outcomes([Outcome(f"r{i}", y) for i, y in enumerate(y_true)])
    assert summary == {"joined": len(y_true)}
    return registry, quality


def confusion(registry: CollectorRegistry, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)))
    for (name, labels), value in series(registry).items():
        if name == cat.CONFUSION.name:
            d = dict(labels)
            matrix[index[d["actual_class"]], index[d["predicted_class"]]] += value
    return matrix


def rule_metrics(matrix: np.ndarray) -> dict[str, Any]:
    """The recording rules' definitions, on a confusion matrix (rows actual, columns predicted)."""
    tp, actual, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    seen = actual + predicted > 0
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)[seen]
    recall = np.where(actual > 0, tp / np.maximum(actual, 1), 0.0)[seen]
    f1 = (2 * tp / np.maximum(actual + predicted, 1))[seen]
    return {"accuracy": tp.sum() / matrix.sum(), "precision": precision, "recall": recall, "f1": f1}


CASES = {
    "binary-balanced": dict(classes=["0", "1"], imbalance=None, never_predicted=None),
    "multiclass-imbalanced-never-predicted": dict(classes=["a", "b", "c", "d"], imbalance=[0.7, 0.2, 0.07, 0.03],
                                                  never_predicted="d"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_confusion_counts_are_exact_and_metrics_match_sklearn(case: str) -> None:
    spec = CASES[case]
    classes = spec["classes"]
    y_true, y_pred, proba = make_pairs(3000, classes, seed=1, imbalance=spec["imbalance"],
                                       never_predicted=spec["never_predicted"])
    registry, _ = joined(y_true, y_pred, proba, classes)
    matrix = confusion(registry, classes)
    np.testing.assert_array_equal(matrix, skm.confusion_matrix(y_true, y_pred, labels=classes))
    if spec["never_predicted"]:
        assert matrix[:, classes.index(spec["never_predicted"])].sum() == 0 < matrix[classes.index("d")].sum()
    got = rule_metrics(matrix)
    labels = sorted(set(y_true) | set(y_pred))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        expected = fn(y_true, y_pred, labels=labels, average=None, zero_division=0)
        np.testing.assert_allclose(got[name], expected, atol=1e-12)
        assert got[name].mean() == pytest.approx(fn(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    correct = {c: series_value(registry, cat.CORRECT.name, model="m", model_version="1", segment="", **{"class": c})
               for c in classes}
    assert correct == {c: float(np.sum((y_true == c) & (y_pred == c))) for c in classes}
    assert series_value(registry, cat.LABELLED.name, model="m", model_version="1", segment="") == 3000


def auc_gauges(registry: CollectorRegistry) -> dict[str, float]:
    return {dict(labels).get("class", "macro"): value for (name, labels), value in series(registry).items()
            if name in (cat.ROC_AUC.name, cat.ROC_AUC_MACRO.name) and dict(labels)["window"] == "1h"}


@pytest.mark.parametrize("dataset", ["breast_cancer", "wine"])
def test_binned_roc_auc_is_within_its_bound_of_sklearn(dataset: str) -> None:
    trained = train(dataset)
    x, y = np.vstack([trained.x_train, trained.x_test]), np.concatenate([trained.y_train, trained.y_test])
    classes = [str(c) for c in trained.pipeline.classes_]
    proba, y_pred = trained.pipeline.predict_proba(x), trained.pipeline.predict(x)
    registry, _ = joined(y, y_pred, proba, trained.pipeline.classes_)
    gauges = auc_gauges(registry)
    if len(classes) == 2:
        exact = skm.roc_auc_score(y, proba[:, 1])
        assert set(gauges) == {"1", "macro"}
    else:
        exact = skm.roc_auc_score(y, proba, multi_class="ovr")
        for k, cls in enumerate(classes):
            assert gauges[cls] == pytest.approx(skm.roc_auc_score(y == k, proba[:, k]), abs=AUC_TOLERANCE)
    assert gauges["macro"] == pytest.approx(exact, abs=AUC_TOLERANCE)


def test_binned_roc_auc_multiclass_imbalanced_matches_sklearn() -> None:
    classes = ["a", "b", "c", "d"]
    y_true, y_pred, proba = make_pairs(5000, classes, seed=4, imbalance=[0.6, 0.25, 0.1, 0.05], accuracy=0.3)
    registry, _ = joined(y_true, y_pred, proba, classes)
    gauges = auc_gauges(registry)
    exact = skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
    assert 0.7 < exact < 0.95  # a model far from perfect, so binning matters
    assert gauges["macro"] == pytest.approx(exact, abs=AUC_TOLERANCE)
    for k, cls in enumerate(classes):
        assert gauges[cls] == pytest.approx(skm.roc_auc_score(y_true == cls, proba[:, k]), abs=AUC_TOLERANCE)


def test_binned_auc_bound_holds_and_the_check_can_fail() -> None:
    rng = np.random.default_rng(3)
    bounds = np.array(cat.CLASS_SCORE_BUCKETS)

    def counts(scores: np.ndarray) -> np.ndarray:  # per bucket, as the exporter's histogram (le is inclusive)
        return np.bincount(np.searchsorted(bounds, scores, side="left"), minlength=len(bounds) + 1)

    for _ in range(20):
        pos, neg = rng.beta(3, 2, 500), rng.beta(2, 3, 700)
        auc, bound = binned_auc(counts(pos), counts(neg))
        exact = skm.roc_auc_score(np.r_[np.ones(500), np.zeros(700)], np.r_[pos, neg])
        assert abs(auc - exact) <= bound + 1e-12
    assert binned_auc([0, 5], [0, 0]) is None
    # One bucket for everything: AUC 0.5 and a bound of 0.5, which a good model's exact AUC exceeds.
    auc, bound = binned_auc([10], [10])
    assert (auc, bound) == (0.5, 0.5)


def test_regression_sums_match_sklearn_with_zero_targets() -> None:
    trained = train("diabetes")
    y_true = trained.y_test.astype(float).copy()
    y_true[:7] = 0.0  # MAPE skips zero targets and counts them
    y_pred = trained.pipeline.predict(trained.x_test)
    registry, _ = joined(y_true, y_pred, task="regression")
    labels = dict(model="m", model_version="1", segment="")
    n = series_value(registry, cat.REGRESSION_PAIRS.name, **labels)
    zero = series_value(registry, cat.ZERO_TARGETS.name, **labels)
    assert (n, zero) == (len(y_true), 7)
    assert series_value(registry, cat.ABSOLUTE_ERROR.name, **labels) / n == pytest.approx(
        skm.mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert np.sqrt(series_value(registry, cat.SQUARED_ERROR.name, **labels) / n) == pytest.approx(
        np.sqrt(skm.mean_squared_error(y_true, y_pred)), rel=1e-12)
    nonzero = y_true != 0
    assert series_value(registry, cat.ABSOLUTE_PERCENTAGE_ERROR.name, **labels) / (n - zero) == pytest.approx(
        skm.mean_absolute_percentage_error(y_true[nonzero], y_pred[nonzero]), rel=1e-12)
    # scikit-learn's own MAPE divides by eps for zeros: the reason they are skipped.
    assert skm.mean_absolute_percentage_error(y_true, y_pred) > 1e10


def test_label_delay_coverage_and_segments() -> None:
    registry = CollectorRegistry()
    quality = Quality(registry=registry, start=False, label_caps={"segment": 2})
    monitor = ModelMonitor("m", "1", registry=registry, quality=quality, classes=[0, 1])
    for i, segment in enumerate(["eu", "us", "apac", "eu"]):
        monitor.record_prediction(0.001, output=1, proba=[0.4, 0.6], request_id=f"r{i}", segment=segment)
    quality.process_queue()
    with quality.store.transaction() as tx:
        at = tx.fetch(["r0"])["r0"].predicted_at
    quality.record_outcomes([Outcome("r0", 1, at + 3.0), Outcome("r1", 0, at + 100.0), Outcome("r2", 1, at - 5)])
    values = series(registry)
    by_segment = {dict(labels)["segment"]: v for (n, labels), v in values.items() if n == cat.PREDICTIONS_STORED.name}
    assert by_segment == {"": 0.0, "eu": 2.0, "us": 1.0, "__overflow__": 1.0}
    delay = {(dict(labels)["segment"], dict(labels)["le"]): v for (n, labels), v in values.items()
             if n == cat.LABEL_DELAY.name + "_bucket"}
    assert delay[("eu", "1.0")] == 0 and delay[("eu", "5.0")] == 1   # 3 s
    assert delay[("us", "60.0")] == 0 and delay[("us", "300.0")] == 1  # 100 s
    assert delay[("__overflow__", "1.0")] == 1  # clock skew: negative delays count as 0
    assert series_value(registry, "mlscope_label_overflow_total", label="segment", reason="cap_reached") == 1
    labelled = sum(v for (n, _), v in values.items() if n == cat.LABELLED.name)
    stored = sum(v for (n, _), v in values.items() if n == cat.PREDICTIONS_STORED.name)
    assert labelled / stored == 0.75


def test_baseline_is_published_from_validation_data() -> None:
    trained = train("wine")
    proba = trained.pipeline.predict_proba(trained.x_test)
    y_pred = trained.pipeline.predict(trained.x_test)
    base = baseline_metrics("classification", trained.y_test, y_pred, proba, trained.pipeline.classes_)
    assert base["accuracy"] == skm.accuracy_score(trained.y_test, y_pred)
    assert base["roc_auc"] == skm.roc_auc_score(trained.y_test, proba, multi_class="ovr")
    registry = CollectorRegistry()
    quality = Quality(registry=registry, start=False)
    quality.set_baseline("wine", "1", base)
    assert series_value(registry, cat.BASELINE.name, model="wine", model_version="1", metric="f1_macro") == \
        pytest.approx(skm.f1_score(trained.y_test, y_pred, average="macro"))
    reg = train("diabetes")
    base = baseline_metrics("regression", reg.y_test, reg.pipeline.predict(reg.x_test))
    assert set(base) == {"mae", "rmse", "mape"}


# -- estimated performance (confidence-based) ----------------------------------------------------

ESTIMATE_TOLERANCE = {"accuracy": 0.05, "f1_macro": 0.06}  # stated: bundled data sets, held-out rows


@pytest.mark.parametrize("dataset", ["breast_cancer", "wine"])
def test_estimated_accuracy_lands_near_realised_on_held_out_data(dataset: str) -> None:
    trained = train(dataset)
    proba = trained.pipeline.predict_proba(trained.x_test)
    y_pred = trained.pipeline.predict(trained.x_test)
    est = estimate(proba, y_pred, trained.pipeline.classes_)
    assert abs(est.accuracy - skm.accuracy_score(trained.y_test, y_pred)) <= ESTIMATE_TOLERANCE["accuracy"]
    assert abs(est.f1_macro - skm.f1_score(trained.y_test, y_pred, average="macro")) <= ESTIMATE_TOLERANCE["f1_macro"]


@pytest.mark.parametrize("classes", [["no", "yes"], ["a", "b", "c", "d", "e"]], ids=["binary", "multiclass"])
def test_estimate_is_unbiased_for_a_perfectly_calibrated_model(classes: list[str]) -> None:
    """Labels drawn from the model's own probabilities: the estimate must match within sampling error."""
    rng = np.random.default_rng(7)
    _, y_pred, proba = make_pairs(20_000, classes, seed=7, imbalance=None)
    y_true = np.array(classes, dtype=object)[[rng.choice(len(classes), p=p) for p in proba]]
    est = estimate(proba, y_pred, classes)
    assert abs(est.accuracy - skm.accuracy_score(y_true, y_pred)) < 0.015
    assert abs(est.f1_macro - skm.f1_score(y_true, y_pred, average="macro")) < 0.02
    # and a miscalibrated model (overconfident) is caught out: the check can fail
    sharp = proba ** 4 / (proba ** 4).sum(axis=1, keepdims=True)
    assert estimate(sharp, y_pred, classes).accuracy - skm.accuracy_score(y_true, y_pred) > 0.05


def test_exported_expected_confusion_equals_the_reference() -> None:
    classes = ["a", "b", "c"]
    _, y_pred, proba = make_pairs(500, classes, seed=2)
    registry, _ = joined(y_pred, y_pred, proba, classes)
    matrix = np.zeros((3, 3))
    for (name, labels), value in series(registry).items():
        if name == cat.EXPECTED_CONFUSION.name:
            d = dict(labels)
            matrix[classes.index(d["actual_class"]), classes.index(d["predicted_class"])] += value
    from mlscope.quality.estimate import expected_confusion

    np.testing.assert_allclose(matrix, expected_confusion(proba, y_pred, classes), rtol=1e-12)
    expected_correct = sum(series_value(registry, cat.EXPECTED_CORRECT.name, model="m", model_version="1",
                                        segment="", **{"class": c}) for c in classes)
    assert expected_correct / 500 == pytest.approx(estimate(proba, y_pred, classes).accuracy, rel=1e-12)
