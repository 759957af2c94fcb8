"""Stack health: scrape targets, rule evaluation, Alertmanager notifications, the alert receiver, label caps."""
from mlscope import grafana as gf
from mlscope.catalog import alerting as alert_cat
from mlscope.catalog import serving as cat

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
                       gf.prom(("sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total[$__rate_interval]))",
                                "{{rule_group}}")), "ops")],
        [gf.timeseries("Alertmanager notifications sent / failed per second",
                       gf.prom(("sum by (integration) (rate(alertmanager_notifications_total[$__rate_interval]))",
                                "sent {{integration}}"),
                               ("sum by (integration) (rate(alertmanager_notifications_failed_total[$__rate_interval]))",
                                "failed {{integration}}")), "ops"),
         gf.timeseries("Alerts received by mlscope alert-receiver",
                       gf.prom((f"sum by (alertname, status) (increase({alert_cat.NOTIFICATIONS.name}[$__rate_interval]))",
                                "{{alertname}} {{status}}")), "short")],
        [gf.timeseries("Label values folded (cardinality caps)",
                       gf.prom((f"sum by (label, reason) (rate({cat.LABEL_OVERFLOW.name}[$__rate_interval])) "
                                "or on() vector(0)", "{{label}} {{reason}}")), "ops"),
         gf.timeseries("Samples scraped by job",
                       gf.prom(("sum by (job) (scrape_samples_scraped)", "{{job}}")), "short")],
    ])
