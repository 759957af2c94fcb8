"""Model quality with late ground truth: joined-pair counters, estimates, coverage, label delay.

Every counter here is kept in the prediction store (``mlscope.quality.store``)
and updated in the same transaction as the join that causes it, so the values
survive the exporter's restarts and a pair is never counted twice, even when
several processes share one store file. Statistics (accuracy, F1, MAE...) are
recorded by Prometheus rules; ROC AUC, which PromQL cannot express cleanly from
histograms, is computed by the exporter.
"""
from __future__ import annotations

from .spec import MetricSpec, RecordedSpec

QV = ("model", "model_version", "segment")

# Finer near 0 and 1, where a calibrated classifier puts most of its scores: the
# binned ROC AUC's error is at most half the share of positive/negative pairs that
# fall in the same bucket (see mlscope.quality.scoring.binned_auc).
CLASS_SCORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4,
                       0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 0.995,
                       0.9975, 0.999, 1.0)
# Seconds to months, dense enough that interpolated quantiles stay within ~30 % of the true delay.
LABEL_DELAY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
                       3600.0, 2 * 3600.0, 4 * 3600.0, 8 * 3600.0, 12 * 3600.0, 86400.0, 2 * 86400.0,
                       3 * 86400.0, 7 * 86400.0, 14 * 86400.0, 30 * 86400.0)

PREDICTIONS_STORED = MetricSpec(
    "mlscope_quality_predictions_stored_total", "counter",
    "Predictions kept in the prediction store for later scoring (denominator of ground-truth coverage).", QV)
LABELLED = MetricSpec(
    "mlscope_quality_labelled_total", "counter",
    "Predictions joined with their ground truth (each request id counted once).", QV)
CONFUSION = MetricSpec(
    "mlscope_quality_confusion_total", "counter",
    "Joined classification pairs by (actual_class, predicted_class): the confusion matrix.",
    QV + ("actual_class", "predicted_class"))
CORRECT = MetricSpec(
    "mlscope_quality_correct_total", "counter",
    "Joined pairs whose predicted class was right, by class (the confusion matrix's diagonal; "
    "0 for every class seen).", QV + ("class",))
CLASS_SCORE = MetricSpec(
    "mlscope_quality_class_score", "histogram",
    "Predicted probability of `class` in joined pairs, split by whether `class` was the actual class "
    "(actual=positive|negative); for ROC AUC.", QV + ("class", "actual"), buckets=CLASS_SCORE_BUCKETS)
EXPECTED_CONFUSION = MetricSpec(
    "mlscope_quality_expected_confusion_total", "counter",
    "Sum of predicted probabilities of each actual_class by predicted_class, over stored predictions: the "
    "expected confusion matrix of confidence-based performance estimation (no labels needed).",
    QV + ("actual_class", "predicted_class"))
EXPECTED_CORRECT = MetricSpec(
    "mlscope_quality_expected_correct_total", "counter",
    "Sum of the predicted class's probability over stored predictions, by class (expected diagonal).",
    QV + ("class",))
ESTIMATES_REFUSED = MetricSpec(
    "mlscope_quality_estimates_refused_total", "counter",
    "Stored predictions with probabilities left out of the expected confusion matrix because the version's "
    "reference cannot calibrate the model, by reason (too_few_labelled_rows, single_class, class_too_rare, "
    "calibration_error_above_bound, calibration_classes_mismatch): no estimate is published for them.",
    QV + ("reason",))
CALIBRATION_ERROR = MetricSpec(
    "mlscope_quality_calibration_error", "gauge",
    "Top-label expected calibration error (10 equal-width bins) on held-out folds of the version's labelled "
    "reference, of the model's raw probabilities (scores=raw) and of the calibrated ones estimates use "
    "(scores=calibrated).", ("model", "model_version", "scores"))
REGRESSION_PAIRS = MetricSpec(
    "mlscope_quality_regression_pairs_total", "counter", "Joined regression pairs.", QV)
ABSOLUTE_ERROR = MetricSpec(
    "mlscope_quality_absolute_error_total", "counter",
    "Sum of |y_true - y_pred| over joined regression pairs.", QV)
SQUARED_ERROR = MetricSpec(
    "mlscope_quality_squared_error_total", "counter",
    "Sum of (y_true - y_pred)^2 over joined regression pairs.", QV)
ABSOLUTE_PERCENTAGE_ERROR = MetricSpec(
    "mlscope_quality_absolute_percentage_error_total", "counter",
    "Sum of |y_true - y_pred| / |y_true| over joined regression pairs with y_true != 0 (a ratio, not %).", QV)
ZERO_TARGETS = MetricSpec(
    "mlscope_quality_zero_target_pairs_total", "counter",
    "Joined regression pairs with y_true == 0, skipped by MAPE.", QV)
LABEL_DELAY = MetricSpec(
    "mlscope_quality_label_delay_seconds", "histogram",
    "Time from a prediction to the arrival of its ground truth.", QV, unit="seconds",
    buckets=LABEL_DELAY_BUCKETS)
OUTCOMES_REJECTED = MetricSpec(
    "mlscope_quality_outcomes_rejected_total", "counter",
    "Outcomes not joined, by reason (unknown_request, expired_request, duplicate, invalid_target, "
    "wrong_type, unknown_class, pending_full, invalid_request_id); model is __unknown__ when the request id "
    "is unknown.",
    ("model", "model_version", "reason"))
OUTCOMES_PENDING = MetricSpec(
    "mlscope_quality_outcomes_pending", "gauge",
    "Outcomes held because their prediction is not stored yet (joined or counted as unknown later).", ())
STORE_PREDICTIONS = MetricSpec(
    "mlscope_quality_store_predictions", "gauge",
    "Predictions currently held in the prediction store (bounded by count and age).", ())
DROPPED = MetricSpec(
    "mlscope_quality_dropped_total", "counter",
    "Predictions or outcomes the quality side did not store, and version registrations it refused (kind "
    "version: invalid, conflict), by kind and reason (queue_full, store_locked, store_full, store_corrupt, "
    "store_error, duplicate_request_id, invalid_request_id, unknown_version, invalid_output, invalid_proba: "
    "stored without probabilities).",
    ("kind", "reason"))
BASELINE = MetricSpec(
    "mlscope_quality_baseline", "gauge",
    "The model version's quality on its validation data (accuracy, f1_macro, roc_auc, mae, rmse, mape...).",
    ("model", "model_version", "metric"))
ROC_AUC = MetricSpec(
    "mlscope_quality_roc_auc", "gauge",
    "One-vs-rest ROC AUC of `class` over the window, from the binned class scores of joined pairs.",
    QV + ("class", "window"))
ROC_AUC_MAX_ERROR = MetricSpec(
    "mlscope_quality_roc_auc_max_error", "gauge",
    "Bound on |binned - exact| ROC AUC of `class` over the window: half the share of positive/negative "
    "pairs whose scores share a bucket (large when scores crowd into one bucket).", QV + ("class", "window"))
ROC_AUC_MACRO = MetricSpec(
    "mlscope_quality_roc_auc_macro", "gauge",
    "Mean one-vs-rest ROC AUC over the classes with both outcomes in the window (binary: the positive class).",
    QV + ("window",))

# Counters and histograms persisted in the store (the custom collector exposes them from there).
STORED_FAMILIES = (PREDICTIONS_STORED, LABELLED, CONFUSION, CORRECT, CLASS_SCORE, EXPECTED_CONFUSION,
                   EXPECTED_CORRECT, ESTIMATES_REFUSED, REGRESSION_PAIRS, ABSOLUTE_ERROR, SQUARED_ERROR,
                   ABSOLUTE_PERCENTAGE_ERROR, ZERO_TARGETS, LABEL_DELAY, OUTCOMES_REJECTED)

METRICS = STORED_FAMILIES + (OUTCOMES_PENDING, STORE_PREDICTIONS, DROPPED, BASELINE, CALIBRATION_ERROR, ROC_AUC,
                             ROC_AUC_MAX_ERROR, ROC_AUC_MACRO)

# -- recorded series -----------------------------------------------------------------------------
# Each is recorded at two levels: per model version, and per model version and segment.
LEVELS = {"model_version": ("model", "model_version"),
          "model_version_segment": ("model", "model_version", "segment")}

# (metric:operation, help, per class?)
_RECORDED = (
    ("mlscope_quality_actual:increase", "Joined pairs whose actual class is `class`, over the window.", True),
    ("mlscope_quality_predicted:increase", "Joined pairs predicted as `class`, over the window.", True),
    ("mlscope_quality_correct:increase", "Joined pairs correctly predicted as `class`, over the window.", True),
    ("mlscope_quality_precision:ratio", "Precision of `class` (0 when never predicted), as scikit-learn.", True),
    ("mlscope_quality_recall:ratio", "Recall of `class` (0 when never actual), as scikit-learn.", True),
    ("mlscope_quality_f1:ratio", "F1 of `class`, as scikit-learn with zero_division=0.", True),
    ("mlscope_quality_accuracy:ratio", "Accuracy of joined pairs over the window.", False),
    ("mlscope_quality_precision:macro", "Macro precision over every class seen (actual or predicted).", False),
    ("mlscope_quality_recall:macro", "Macro recall over every class seen (actual or predicted).", False),
    ("mlscope_quality_f1:macro", "Macro F1 over every class seen (actual or predicted), zero_division=0.", False),
    ("mlscope_quality_expected_actual:increase", "Expected count of actual `class` (sum of probabilities).", True),
    ("mlscope_quality_expected_predicted:increase", "Predictions with probabilities predicted as `class`.", True),
    ("mlscope_quality_expected_correct:increase", "Expected correct predictions of `class`.", True),
    ("mlscope_quality_estimated_f1:ratio", "Estimated F1 of `class` without labels (confidence-based).", True),
    ("mlscope_quality_estimated_accuracy:ratio", "Estimated accuracy without labels (confidence-based).", False),
    ("mlscope_quality_estimated_f1:macro", "Estimated macro F1 without labels (confidence-based).", False),
    ("mlscope_quality_expected_predictions:increase", "Predictions with probabilities over the window.", False),
    ("mlscope_quality_labelled:increase", "Predictions joined with ground truth over the window.", False),
    ("mlscope_quality_predictions_stored:increase", "Predictions stored for scoring over the window.", False),
    ("mlscope_quality_coverage:ratio", "Ground-truth coverage: joined / stored predictions over the window.", False),
    ("mlscope_quality_label_delay_seconds:p50", "Median delay from prediction to ground truth.", False),
    ("mlscope_quality_label_delay_seconds:p90", "90th percentile delay from prediction to ground truth.", False),
    ("mlscope_quality_absolute_error:mean", "MAE of joined regression pairs over the window.", False),
    ("mlscope_quality_squared_error:root_mean", "RMSE of joined regression pairs over the window.", False),
    ("mlscope_quality_absolute_percentage_error:mean",
     "MAPE (a ratio) of joined regression pairs with y_true != 0 over the window.", False),
    ("mlscope_quality_regression_pairs:increase", "Joined regression pairs over the window.", False),
)


def recorded_name(level: str, metric_op: str, per_class: bool = False) -> str:
    """``level[_class]:metric:op`` for one of the two quality levels."""
    return f"{level}{'_class' if per_class else ''}:{metric_op}"


RECORDED_BY_LEVEL: dict[str, dict[str, RecordedSpec]] = {
    level: {metric_op: RecordedSpec(recorded_name(level, metric_op, per_class), help_,
                                    labels + (("class",) if per_class else ()) + ("window",))
            for metric_op, help_, per_class in _RECORDED}
    for level, labels in LEVELS.items()}

RECORDED = tuple(spec for specs in RECORDED_BY_LEVEL.values() for spec in specs.values())
