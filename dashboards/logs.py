"""Logs: the Loki lines of the selected model versions, errors, log volume, and a request-id search.

Queries use only the stream labels the log shipper sets (app, env, model, model_version, level); the
request id stays in the line, so the search box filters on the line's JSON field (exactly, not a substring).
Volumes are per second and come from Prometheus: the shipper's own counters (each line once) and the
prediction log's decisions, never from counting lines in Loki (a push retried after a timeout that had in
fact landed is stored twice, and Loki's metric queries count both).
"""
from mlscope import grafana as gf
from mlscope.catalog import logs as cat

STREAM = gf.log_selector(env="$env")
ERRORS = gf.log_selector(env="$env", level="error")
BY_VERSION = "model, model_version"

dashboard = gf.dashboard(
    "mlscope-logs", "mlscope / Logs",
    description="Structured prediction logs in Loki for the selected model versions; search by request id.",
    variables=[*gf.model_variables(), gf.loki_variable("env", "Environment"),
               gf.textbox("request_id", "Request id")],
    rows=[
        [gf.log_shipper_rates("Log lines per second: sent to Loki, retried, dropped (all handlers)"),
         gf.timeseries("Predictions seen by the prediction log, by decision", gf.prom(
             (f"sum by ({BY_VERSION}, decision) (rate({cat.PREDICTION_LOG_RECORDS.name}{{{gf.MODEL_SELECTOR}}}"
              f"[$__rate_interval]))", "{{model_version}} {{decision}}")), "ops",
             description="error and slow predictions are always logged; others are sampled or only counted.")],
        [gf.logs("Lines of request id $request_id (type it in the search box above)",
                 f"{STREAM} {cat.request_id_filter('$request_id')}")],
        [gf.logs("Error lines", ERRORS)],
        [gf.logs("All lines of the selected versions", STREAM)],
    ])
