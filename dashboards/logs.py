"""Logs: the Loki lines of the selected model versions, errors, log volume, a request-id search (with the
request's traces), a trace-id lookup, and the alert notifications about those versions beside their lines.

Queries use only the stream labels the log shipper sets (app, env, model, model_version, level); the
request id stays in the line, so the search box filters on the line's JSON field (exactly, not a substring).
Each line's trace id links to its trace in Tempo (the Loki datasource's derived field ``trace_id``).
Volumes are per second and come from Prometheus: the shipper's own counters (each line once) and the
prediction log's decisions, never from counting lines in Loki (a push retried after a timeout that had in
fact landed is stored twice, and Loki's metric queries count both).
"""
from mlscope import grafana as gf
from mlscope.catalog import alerting as alerts_cat
from mlscope.catalog import logs as cat

STREAM = gf.log_selector(env="$env")
ERRORS = gf.log_selector(env="$env", level="error")
BY_VERSION = "model, model_version"
# The alert receiver's lines share the model versions' streams (app, model, model_version): its event marks them.
ALERTS = f'{STREAM} |= "{alerts_cat.ALERT_EVENT}" | json | event="{alerts_cat.ALERT_EVENT}"'

dashboard = gf.dashboard(
    "mlscope-logs", "mlscope / Logs",
    description="Structured prediction logs in Loki for the selected model versions; search by request id.",
    variables=[*gf.model_variables(), gf.loki_variable("env", "Environment"),
               gf.textbox("request_id", "Request id"), gf.textbox("trace_id", "Trace id")],
    rows=[
        [gf.log_shipper_rates("Log lines per second: sent to Loki, retried, dropped (all handlers)"),
         gf.timeseries("Predictions seen by the prediction log, by decision", gf.prom(
             (f"sum by ({BY_VERSION}, decision) (rate({cat.PREDICTION_LOG_RECORDS.name}{{{gf.MODEL_SELECTOR}}}"
              f"[$__rate_interval]))", "{{model_version}} {{decision}}")), "ops",
             description="error and slow predictions are always logged; others are sampled or only counted.")],
        [gf.logs("Lines of request id $request_id (type it in the search box above)",
                 f"{STREAM} {cat.request_id_filter('$request_id')}", links=[gf.request_traces_link()],
                 description="A line's trace id opens its trace (log details); the panel link opens the traces "
                             "of this request id.")],
        [gf.traces("Trace $trace_id (type a trace id in the box above, or open one from a line)", "$trace_id",
                   description="The spans of one trace from Tempo: where the request's time went.")],
        [gf.logs("Error lines", ERRORS)],
        [gf.logs("Alert notifications of the selected versions", ALERTS,
                 description="One line per alert state change, shipped by the alert receiver: summary, the "
                             "number and its threshold, runbook, dashboard and logs links.")],
        [gf.logs("All lines of the selected versions", STREAM)],
    ])
