"""Stack health: scrape targets, rules, notifications, the log shipper, the quality and resource exporters."""
from mlscope import grafana as gf
from mlscope.catalog import alerting as alert_cat
from mlscope.catalog import drift as drift_cat
from mlscope.catalog import logs as logs_cat
from mlscope.catalog import quality as quality_cat
from mlscope.catalog import resources as res_cat
from mlscope.catalog import serving as cat

rate = gf.counter_rate


def lost(metric: str) -> str:
    """What was given up on over the dashboard's range (0, not "no data", when nothing was)."""
    return f"sum(increase({metric}[$__range])) or on() vector(0)"


dashboard = gf.dashboard(
    "mlscope-stack-health", "mlscope / Stack health",
    description="Is the monitoring itself working? Targets, rules, notifications, label caps.",
    variables=[],
    rows=[
        [gf.stat("Targets down", gf.prom("count(up == 0) or vector(0)"), "short"),
         gf.stat("Targets up", gf.prom("count(up == 1)"), "short"),
         gf.stat("Firing alerts", gf.prom('count(ALERTS{alertstate="firing"})'), "short"),
         gf.stat("Rule evaluation failures (1h)",
                 gf.prom("sum(increase(prometheus_rule_evaluation_failures_total[1h]))"), "short")],
        [gf.table("Scrape targets", gf.prom(("up", "")), sort_by="Value"),
         gf.timeseries("Scrape duration by job",
                       gf.prom(("max by (job) (scrape_duration_seconds)", "{{job}}")), "s")],
        [gf.timeseries("Rule group evaluation duration",
                       gf.prom(("max by (rule_group) (prometheus_rule_group_last_duration_seconds)",
                                "{{rule_group}}")), "s"),
         gf.timeseries("Rule evaluation failures per second",
                       gf.prom(("sum by (rule_group) "
                                "(rate(prometheus_rule_evaluation_failures_total[$__rate_interval]))",
                                "{{rule_group}}")), "ops")],
        [gf.timeseries("Alertmanager notifications sent / failed per second",
                       gf.prom(("sum by (integration) (rate(alertmanager_notifications_total[$__rate_interval]))",
                                "sent {{integration}}"),
                               ("sum by (integration) "
                                "(rate(alertmanager_notifications_failed_total[$__rate_interval]))",
                                "failed {{integration}}")), "ops"),
         gf.timeseries("Alerts received by mlscope alert-receiver",
                       gf.prom((f"sum by (alertname, status) "
                                f"(increase({alert_cat.NOTIFICATIONS.name}[$__rate_interval]))",
                                "{{alertname}} {{status}}")), "short")],
        [gf.timeseries("Label values folded (cardinality caps)",
                       gf.prom((f"sum by (label, reason) (rate({cat.LABEL_OVERFLOW.name}[$__rate_interval])) "
                                "or on() vector(0)", "{{label}} {{reason}}")), "ops"),
         gf.timeseries("Samples scraped by job",
                       gf.prom(("sum by (job) (scrape_samples_scraped)", "{{job}}")), "short")],
        gf.row("Log shipper (LokiHandler)"),
        [gf.stat("Log lines dropped (range)", gf.prom(lost(logs_cat.LOG_LINES_DROPPED.name)), "short"),
         gf.stat("Log pushes retried (range)", gf.prom(lost(logs_cat.LOG_PUSH_RETRIES.name)), "short"),
         gf.stat("Lines waiting in memory", gf.prom(f"sum({logs_cat.LOG_QUEUE_LINES.name}) or on() vector(0)"),
                 "short"),
         gf.stat("Spooled to disk", gf.prom(f"sum({logs_cat.LOG_SPOOL_BYTES.name}) or on() vector(0)"), "bytes")],
        [gf.log_shipper_rates(),
         gf.timeseries("Log queue (lines) and spool (bytes)", gf.prom(
             (f"sum by (handler) ({logs_cat.LOG_QUEUE_LINES.name}) or on() vector(0)", "queue lines {{handler}}"),
             (f"sum by (handler) ({logs_cat.LOG_SPOOL_BYTES.name}) or on() vector(0)", "spool bytes {{handler}}")),
             "short")],
        gf.row("Quality exporter"),
        [gf.timeseries("Prediction store and pending outcomes", gf.prom(
            (f"sum by (instance) ({quality_cat.STORE_PREDICTIONS.name})", "stored predictions {{instance}}"),
            (f"sum by (instance) ({quality_cat.OUTCOMES_PENDING.name})", "pending outcomes {{instance}}")), "short"),
         gf.timeseries("Quality writer: items not stored per second", gf.prom(
             (rate(quality_cat.DROPPED.name, "kind, reason"), "{{kind}} {{reason}}")), "ops"),
         gf.timeseries("Outcomes not joined per second", gf.prom(
             (rate(quality_cat.OUTCOMES_REJECTED.name, "reason"), "{{reason}}")), "ops"),
         gf.timeseries("Monitor internal errors per second", gf.prom(
             (rate(cat.MONITOR_ERRORS.name, 'operation, exception'),
              "{{operation}} {{exception}}")), "ops")],
        gf.row("Alert warm-up guard"),
        [gf.table("Model windows warm (1) or warming up (0)", gf.prom(
            (f"min by (model, model_version, domain, window) ({cat.WINDOW_WARM.name})", "")), "none",
            sort_by="Value", description="An alert reads a window only once it is warm: it holds the domain's "
                                         "minimum count and, where the profile asks, its series are a window old."),
         gf.table("Share of features whose window is warm", gf.prom(
             (f"avg by (model, model_version, domain, window) ({drift_cat.FEATURE_WINDOW_WARM.name})", "")),
             "percentunit", sort_by="Value",
             description="Drift and data-quality alerts of a feature wait for its own window to be warm.")],
        gf.row("Resource exporter"),
        [gf.table("Resource collectors (1 = up)", gf.prom(
            (f"min by (instance, collector) ({res_cat.COLLECTOR_UP.name})", ""),
            (f"time() - max by (instance, collector) ({res_cat.COLLECTOR_LAST_SAMPLE.name})", ""),
            (f"max by (instance, collector) ({res_cat.COLLECTOR_DURATION.name})", "")),
            "none", columns=["up", "seconds since last sample", "last sample took (s)"], sort_by="up"),
         gf.timeseries("Collector errors per second", gf.prom(
             (rate(res_cat.COLLECTOR_ERRORS.name, "instance, collector, error"), "{{collector}} {{error}}")), "ops"),
         gf.timeseries("Series left out by caps per second", gf.prom(
             (rate(res_cat.SERIES_DROPPED.name, 'collector, label'), "{{collector}} {{label}}")),
             "ops")],
    ])
