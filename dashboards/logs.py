"""Logs: the Loki lines of the selected model versions, errors, volume by level, and a request-id search.

Queries use only the stream labels the log shipper sets (app, env, model, model_version, level); the
request id stays in the line, so the search box filters on the line's JSON field (exactly, not a substring).
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
        [gf.timeseries("Log lines per second by level", [gf.LokiTarget(
            f"sum by (level) (count_over_time({STREAM} [$__auto]))", "{{level}}")], "short", stacked=True),
         gf.timeseries("Error lines per second by version", [gf.LokiTarget(
             f"sum by ({BY_VERSION}) (count_over_time({ERRORS} [$__auto]))", "{{model}} {{model_version}}")],
             "short"),
         gf.timeseries("Predictions seen by the prediction log, by decision", gf.prom(
             (f"sum by ({BY_VERSION}, decision) (rate({cat.PREDICTION_LOG_RECORDS.name}{{{gf.MODEL_SELECTOR}}}"
              f"[$__rate_interval]))", "{{model_version}} {{decision}}")), "ops",
             description="error and slow predictions are always logged; others are sampled or only counted.")],
        [gf.logs("Lines of request id $request_id (type it in the search box above)",
                 f"{STREAM} {cat.request_id_filter('$request_id')}")],
        [gf.logs("Error lines", ERRORS)],
        [gf.logs("All lines of the selected versions", STREAM)],
    ])
