"""Metrics of `mlscope alert-receiver`, the default Alertmanager webhook receiver."""
from __future__ import annotations

from .spec import MetricSpec

NOTIFICATIONS = MetricSpec(
    "mlscope_alert_notifications_total", "counter",
    "Alerts received in valid Alertmanager webhook notifications, by alert name and status.",
    ("receiver", "alertname", "status"))
INVALID_PAYLOADS = MetricSpec(
    "mlscope_alert_receiver_invalid_payloads_total", "counter",
    "Webhook requests rejected with HTTP 400, by reason.",
    ("reason",))
COMMANDS = MetricSpec(
    "mlscope_alert_commands_total", "counter",
    "Commands run for an alert (alert_commands in the receiver's configuration), by result.",
    ("alertname", "result"))
COMMAND_DURATION = MetricSpec(
    "mlscope_alert_command_duration_seconds", "histogram",
    "Run time of commands started for alerts.",
    ("alertname",), unit="seconds", buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300))

METRICS = (NOTIFICATIONS, INVALID_PAYLOADS, COMMANDS, COMMAND_DURATION)
RECORDED = ()
