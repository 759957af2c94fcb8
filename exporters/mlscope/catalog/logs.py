"""The structured-log pipeline: the Loki stream the services write, the shipper's health, prediction-log volume."""
from __future__ import annotations

from .spec import WARM_HELP, MetricSpec, RecordedSpec

# The `app` stream label of every line mlscope ships to Loki: the log handler's default, and what rules,
# dashboards and the Grafana datasources' links select (tests/unit/test_log_app.py checks the datasources file).
LOG_APP = "mlscope"

HANDLER = ("handler",)

LOG_LINES_SENT = MetricSpec(
    "mlscope_log_lines_sent_total", "counter",
    "Log lines accepted by Loki (2xx answer to a push).",
    HANDLER)
LOG_PUSH_RETRIES = MetricSpec(
    "mlscope_log_push_retries_total", "counter",
    "Pushes to Loki that failed and will be retried (429, 5xx, timeout, refused connection), by reason.",
    HANDLER + ("reason",))
LOG_LINES_DROPPED = MetricSpec(
    "mlscope_log_lines_dropped_total", "counter",
    "Log lines given up on, by reason (queue_full, spool_full, rejected_<status>, shutdown, encode_error).",
    HANDLER + ("reason",))
LOG_LINES_OVERSIZE = MetricSpec(
    "mlscope_log_lines_oversize_total", "counter",
    "Log lines over Loki's line size limit, by what was done (split or truncated).",
    HANDLER + ("action",))
LOG_QUEUE_LINES = MetricSpec(
    "mlscope_log_queue_lines", "gauge",
    "Log lines waiting in memory (queue and pending batches) to be pushed to Loki.",
    HANDLER)
LOG_SPOOL_BYTES = MetricSpec(
    "mlscope_log_spool_bytes", "gauge",
    "Bytes of log batches spilled to the on-disk spool while Loki is slow or down.",
    HANDLER, unit="bytes")
PREDICTION_LOG_RECORDS = MetricSpec(
    "mlscope_prediction_log_records_total", "counter",
    "Predictions seen by the prediction log, by decision: logged as error, slow, sampled or debug, "
    "or only counted.",
    ("model", "model_version", "decision"))

METRICS = (LOG_LINES_SENT, LOG_PUSH_RETRIES, LOG_LINES_DROPPED, LOG_LINES_OVERSIZE, LOG_QUEUE_LINES,
           LOG_SPOOL_BYTES, PREDICTION_LOG_RECORDS)
HANDLER_WINDOW_WARM = RecordedSpec(
    "handler:mlscope_window_warm:bool", WARM_HELP.format(domain="log shipper's"),
    ("job", "instance") + HANDLER + ("domain", "window"))

RECORDED: tuple[RecordedSpec, ...] = (HANDLER_WINDOW_WARM,)
