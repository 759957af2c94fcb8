"""Model overview: traffic, errors, latency (with exemplars -> trace and logs), outputs and active alerts."""
from mlscope import grafana as gf
from mlscope.catalog import serving as cat

S = gf.MODEL_SELECTOR
BY = "model, model_version"


def rate(metric: str, by: str = BY, extra: str = "") -> str:
    return f"sum by ({by}) (rate({metric}{{{S}{extra}}}[$__rate_interval]))"


def quantile(q: str) -> tuple[str, str]:
    return (f"histogram_quantile({q}, {rate(cat.PREDICTION_LATENCY.name + '_bucket', BY + ', le')})",
            f"p{q[2:]} {{{{model}}}} {{{{model_version}}}}")


REQUESTS = rate(cat.PREDICTIONS.name)
ERRORS = rate(cat.PREDICTION_ERRORS.name)

dashboard = gf.dashboard(
    "mlscope-model-overview", "mlscope / Model overview",
    description="Request rate, errors, latency with exemplars, outputs and active alerts per model version.",
    rows=[
        [gf.stat("Requests/s", gf.prom(f"sum({REQUESTS})"), "reqps"),
         gf.stat("Error ratio", gf.prom(f"sum({ERRORS}) / sum({REQUESTS})"), "percentunit", decimals=2),
         gf.stat("p95 latency", gf.prom(f"max({quantile('0.95')[0]})"), "s"),
         gf.stat("In flight", gf.prom(f"sum({cat.PREDICTIONS_IN_FLIGHT.name}{{{S}}})"), "short"),
         gf.stat("Versions serving", gf.prom(f"count(count by ({BY}) ({cat.MODEL_INFO.name}{{{S}}}))"), "short")],
        [gf.with_logs(gf.timeseries("Requests per second by version",
                       gf.prom((REQUESTS, "{{model}} {{model_version}}")), "reqps")),
         gf.with_logs(gf.timeseries("Errors per second by type",
                       gf.prom((rate(cat.PREDICTION_ERRORS.name, BY + ", error_type"),
                                "{{model_version}} {{error_type}}")), "reqps"))],
        [gf.with_logs(gf.timeseries("Latency p50 / p95 / p99 (exemplars open the request's trace and logs)",
                       gf.prom(quantile("0.5"), quantile("0.95"), quantile("0.99"), exemplar=True), "s",
                       description="Each exemplar is one request: its trace (Tempo, by trace id) and its log "
                                   "lines (Loki, by request id) are a click away.")),
         gf.with_logs(gf.timeseries("Error ratio by version",
                       gf.prom((f"{ERRORS} / {REQUESTS}", "{{model}} {{model_version}}")), "percentunit"))],
        [gf.timeseries("Predicted classes (share)",
                       gf.prom((f"{rate(cat.PREDICTED_CLASSES.name, BY + ', class')} / ignoring(class) "
                                f"group_left {REQUESTS}", "{{model_version}} class {{class}}")),
                       "percentunit", stacked=True),
         gf.timeseries("Median and p90 classifier score",
                       gf.prom((f"histogram_quantile(0.5, {rate(cat.PREDICTION_SCORE.name + '_bucket', BY + ', le')})",
                                "median {{model_version}}"),
                               (f"histogram_quantile(0.9, {rate(cat.PREDICTION_SCORE.name + '_bucket', BY + ', le')})",
                                "p90 {{model_version}}")), "percentunit")],
        [gf.anomaly_band("Request rate vs its seasonal band", "traffic", "reqps"),
         gf.anomaly_band("Error ratio vs its seasonal band", "errors", "percentunit", judged="value"),
         gf.anomaly_band("p95 latency vs its seasonal band", "latency", "s"),
         gf.anomaly_warmup()],
        [gf.table("Active alerts",
                  gf.prom(('ALERTS{alertstate="firing",model=~"$model|"}', "")), sort_by="severity"),
         gf.timeseries("Rejected inputs and monitor errors per second",
                       gf.prom((rate(cat.INVALID_INPUTS.name, BY + ", reason"), "{{model_version}} {{reason}}"),
                               (f"sum by (operation) (rate({cat.MONITOR_ERRORS.name}[$__rate_interval])) "
                                "or on() vector(0)", "monitor errors {{operation}}")), "reqps")],
    ])
