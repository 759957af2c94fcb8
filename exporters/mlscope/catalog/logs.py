"""The structured-log pipeline: the Loki stream the services write, the shipper's health, prediction-log volume."""
from __future__ import annotations

import json

from .spec import WARM_HELP, MetricSpec, RecordedSpec

# The `app` stream label of every line mlscope ships to Loki: the log handler's default, and what rules,
# dashboards and the Grafana datasources' links select (tests/unit/test_log_app.py checks the datasources file).
LOG_APP = "mlscope"


def request_id_filter(request_id: str) -> str:
    """The LogQL stages that keep exactly one request's lines: ``| json | request_id="<id>"``.

    Equality on the line's JSON field: a line filter ``|= "<id>"`` is a substring match, so ``abc-1``
    also opened the lines of ``abc-10``, ``abc-11``... When the handler also sends ``request_id`` as
    structured metadata the same label filter matches it (values are equal), and ``| request_id="<id>"``
    alone (no parser) is the faster form. ``request_id`` may be a Grafana variable (``$request_id``).
    """
    return f"| json | request_id={json.dumps(request_id, ensure_ascii=False)}"


def request_lines(request_id: str, app: str = LOG_APP) -> str:
    """LogQL for every line of one request, whatever its model version: ``{app="…"} | json | request_id="…"``."""
    return f'{{app="{app}"}} {request_id_filter(request_id)}'

HANDLER = ("handler",)

LOG_LINES_SENT = MetricSpec(
    "mlscope_log_lines_sent_total", "counter",
    "Log lines accepted by Loki (2xx answer to a push), each once even when its push was sent again after a "
    "timeout: the log volume (counting lines in Loki counts such a push twice).",
    HANDLER)
LOG_PUSH_RETRIES = MetricSpec(
    "mlscope_log_push_retries_total", "counter",
    "Pushes to Loki that failed and will be retried (429, 5xx, timeout, refused connection), by reason.",
    HANDLER + ("reason",))
LOG_LINES_DROPPED = MetricSpec(
    "mlscope_log_lines_dropped_total", "counter",
    "Log lines given up on, by reason (queue_full, spool_full, http_<status>, shutdown, closed, encode_error).",
    HANDLER + ("reason",))
LOG_LINES_OVERSIZE = MetricSpec(
    "mlscope_log_lines_oversize_total", "counter",
    "Log lines over Loki's line size limit, by what was done (split or truncated).",
    HANDLER + ("action",))
LOG_LINES_ESCAPED = MetricSpec(
    "mlscope_log_lines_escaped_total", "counter",
    "Log lines sent with characters UTF-8 cannot encode escaped, by reason (lone_surrogate: e.g. a file name "
    "decoded with surrogateescape; the line keeps it as a JSON \\uXXXX escape).",
    HANDLER + ("reason",))
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

METRICS = (LOG_LINES_SENT, LOG_PUSH_RETRIES, LOG_LINES_DROPPED, LOG_LINES_OVERSIZE, LOG_LINES_ESCAPED,
           LOG_QUEUE_LINES, LOG_SPOOL_BYTES, PREDICTION_LOG_RECORDS)
HANDLER_WINDOW_WARM = RecordedSpec(
    "handler:mlscope_window_warm:bool", WARM_HELP.format(domain="log shipper's"),
    ("job", "instance") + HANDLER + ("domain", "window"))

RECORDED: tuple[RecordedSpec, ...] = (HANDLER_WINDOW_WARM,)
