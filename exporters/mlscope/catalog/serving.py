"""Metrics of the in-process model monitor: traffic, latency, errors, outputs."""
from __future__ import annotations

from .spec import WARM_HELP, MetricSpec, RecordedSpec

MODEL = ("model", "model_version")

# Buckets for online model serving: sub-millisecond tabular models up to
# multi-second generative ones.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0)
BATCH_ROWS_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)

PREDICTIONS = MetricSpec(
    "mlscope_predictions_total", "counter",
    "Prediction requests handled by the model, failed ones included (batch rows count one each).",
    MODEL)
PREDICTION_ERRORS = MetricSpec(
    "mlscope_prediction_errors_total", "counter",
    "Prediction requests that raised, by exception type.",
    MODEL + ("error_type",))
PREDICTION_LATENCY = MetricSpec(
    "mlscope_prediction_latency_seconds", "histogram",
    "Time to serve one prediction request; exemplars carry the request id.",
    MODEL, unit="seconds", buckets=LATENCY_BUCKETS)
PREDICTIONS_IN_FLIGHT = MetricSpec(
    "mlscope_predictions_in_flight", "gauge",
    "Prediction requests currently being served.",
    MODEL, multiprocess_mode="livesum")
PREDICTED_CLASSES = MetricSpec(
    "mlscope_predicted_class_total", "counter",
    "Predicted classes of a classifier (bounded set of class labels).",
    MODEL + ("class",))
PREDICTION_SCORE = MetricSpec(
    "mlscope_prediction_score", "histogram",
    "Score (probability of the predicted or positive class) output by a classifier.",
    MODEL, buckets=SCORE_BUCKETS)
PREDICTION_VALUE = MetricSpec(
    "mlscope_prediction_value", "histogram",
    "Value output by a regression model.",
    MODEL, buckets=VALUE_BUCKETS)
BATCHES = MetricSpec(
    "mlscope_batches_total", "counter",
    "Batch prediction calls recorded.",
    MODEL)
BATCH_LATENCY = MetricSpec(
    "mlscope_batch_latency_seconds", "histogram",
    "Time to serve one batch prediction call.",
    MODEL, unit="seconds", buckets=LATENCY_BUCKETS + (30.0, 60.0, 300.0))
MODEL_INFO = MetricSpec(
    "mlscope_model_info", "gauge",
    "Always 1: the model version's training data fingerprint and user metadata as labels.",
    MODEL + ("training_data_fingerprint",), unit="info", multiprocess_mode="max")
MODEL_RETIRED = MetricSpec(
    "mlscope_model_retired_info", "gauge",
    "Always 1: a version this process retired (a newer one replaced it); no per-version alert fires for it.",
    MODEL, unit="info", multiprocess_mode="max")
#: Every reason ``mlscope_invalid_inputs_total`` can count, and what was skipped (docs/instrumenting.md).
INVALID_REASONS = {
    "latency_not_finite_or_negative": "a latency that is NaN, infinite or negative",
    "latency_wrong_type": "a latency that is not a number",
    "class_not_finite": "a NaN or infinite class label",
    "value_not_finite": "a NaN or infinite regression output",
    "value_wrong_type": "a regression output that is not a number",
    "score_not_finite": "a NaN or infinite score",
    "score_wrong_type": "a score that is not a number",
    "batch_without_rows": ("record_batch() with neither outputs nor rows: its latency, scores and request ids "
                           "(its features are still recorded)"),
    "batch_rows_invalid": "record_batch() with rows that is not an integer >= 0",
    "batch_request_ids_mismatch": ("request ids of a batch that do not match its outputs (not stored for quality or "
                                   "shadows)"),
    "batch_attributions_mismatch": "batch attributions whose rows are not the batch's rows (none counted)",
    "outcome_without_quality": "record_outcome() on a monitor without quality=",
    "no_reference_profile": "features given to a monitor without a reference profile",
    "feature_unknown": "values of features the profile does not have (one per value)",
    "row_length_mismatch": "a feature row (sequence) whose length is not the profile's number of features",
    "batch_empty": "a feature batch with no rows",
    "batch_shape_mismatch": "a feature batch that is not a table of the profile's width (ragged, wrong width)",
    "drift_version_not_serving": "features of a version whose drift was detached or displaced (max_versions)",
    # Generation mode (mlscope.genai)
    "tokens_invalid": "a token count that is negative, NaN, infinite, fractional or not a number (not recorded)",
    "tokens_implausible": "a token count above 100,000,000 in one generation (not recorded: it would spoil the totals)",
    "ttft_after_end": "a time to first token longer than the whole generation (no TTFT or TPOT recorded)",
    "price_unknown_model": "tokens of a model the price table has no price for (counted, not priced)",
    "stream_closed_twice": "a generation ended again after it had ended (ignored)",
    "finish_reason_unknown": "a finish reason outside the bounded set (counted as other)",
    "feedback_invalid": "feedback that is neither positive/negative nor a score within [0, 1]",
    # Shadow agreement and attributions (docs/versions.md)
    "shadow_not_enabled": "a shadow answer to a monitor without shadow_pending= (nothing to compare it with)",
    "shadow_unknown_request": ("a shadow answer for a request id with no served answer waiting (never served, "
                               "failed, evicted, or answered by this shadow version already)"),
    "shadow_answer_invalid": "a shadow answer that is not a usable class (classifier) or finite number (regression)",
    "shadow_version_invalid": ("a shadow answer whose version= is empty, blank, not a string, not printable or over "
                               "128 characters (not compared)"),
    "attributions_wrong_type": "attributions that are not a mapping of feature name to number (all skipped)",
    "attributions_too_many": "attributions with more features than the profile (or the cap) holds (all skipped)",
    "attribution_feature_unknown": ("an attribution of a feature outside the profile (or beyond the cap without "
                                    "one), one per value"),
    "attribution_not_finite": "a NaN, infinite or non-numeric attribution (one per value)",
}
INVALID_INPUTS = MetricSpec(
    "mlscope_invalid_inputs_total", "counter",
    "Values handed to the monitor that were rejected (counted and skipped), by reason: "
    + ", ".join(INVALID_REASONS) + ".",
    MODEL + ("reason",))
MONITOR_ERRORS = MetricSpec(
    "mlscope_monitor_errors_total", "counter",
    "Exceptions raised inside the monitor itself, caught so the service keeps serving.",
    ("operation", "exception"))
LABEL_OVERFLOW = MetricSpec(
    "mlscope_label_overflow_total", "counter",
    "Label values folded into __overflow__ (cap reached) or __invalid__ (unusable value), by label.",
    ("label", "reason"))

METRICS = (
    PREDICTIONS, PREDICTION_ERRORS, PREDICTION_LATENCY, PREDICTIONS_IN_FLIGHT, PREDICTED_CLASSES,
    PREDICTION_SCORE, PREDICTION_VALUE, BATCHES, BATCH_LATENCY, MODEL_INFO, MODEL_RETIRED, INVALID_INPUTS,
    MONITOR_ERRORS, LABEL_OVERFLOW,
)

# Recorded series (recording rules in mlscope.rules) for traffic.
REQUEST_RATE = RecordedSpec(
    "model_version:mlscope_predictions:rate", "Prediction requests per second, per model version.")
ERROR_RATIO = RecordedSpec(
    "model_version:mlscope_prediction_errors:ratio_rate", "Share of prediction requests that failed.")
LATENCY_P50 = RecordedSpec(
    "model_version:mlscope_prediction_latency_seconds:p50", "Median prediction latency.")
LATENCY_P95 = RecordedSpec(
    "model_version:mlscope_prediction_latency_seconds:p95", "95th percentile prediction latency.")
LATENCY_P99 = RecordedSpec(
    "model_version:mlscope_prediction_latency_seconds:p99", "99th percentile prediction latency.")

LATENCY_SLOW_RATIO = RecordedSpec(
    "model_version:mlscope_prediction_latency_seconds:slow_ratio_rate",
    "Share of requests slower than the latency SLO threshold (the SLO's error ratio).")

# The warm-up guard's state (mlscope.rules.builders.warm_up), one series per domain and window.
WINDOW_WARM = RecordedSpec(
    "model_version:mlscope_window_warm:bool", WARM_HELP.format(domain="model version's"),
    MODEL + ("domain", "window"))

RECORDED = (REQUEST_RATE, ERROR_RATIO, LATENCY_P50, LATENCY_P95, LATENCY_P99, LATENCY_SLOW_RATIO, WINDOW_WARM)
