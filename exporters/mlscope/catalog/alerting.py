"""Metrics of `mlscope alert-receiver`, the default Alertmanager webhook receiver."""
from __future__ import annotations

from .spec import MetricSpec

# The `event` of the receiver's lines (one per alert state change), in its output and in Loki.
ALERT_EVENT = "alert_notification"
# The `event` of the line written when a per-alert command ends (done, not_applicable, failed, timeout) or is
# skipped (skipped_running).
COMMAND_EVENT = "alert_command"
# The `event` of the line written when a person marks a notification a false positive.
FALSE_POSITIVE_EVENT = "alert_false_positive"

NOTIFICATIONS = MetricSpec(
    "mlscope_alert_notifications_total", "counter",
    "Alerts received in valid Alertmanager webhook notifications, by alert name and status.",
    ("receiver", "alertname", "status"))
STATE_CHANGES = MetricSpec(
    "mlscope_alert_state_changes_total", "counter",
    "Alert state changes the receiver wrote a line for (new fingerprint, status and startsAt); the rest of "
    "mlscope_alert_notifications_total were re-sends.",
    ("alertname", "status"))
INVALID_PAYLOADS = MetricSpec(
    "mlscope_alert_receiver_invalid_payloads_total", "counter",
    "Webhook requests rejected with HTTP 400, by reason.",
    ("reason",))
COMMANDS = MetricSpec(
    "mlscope_alert_commands_total", "counter",
    "Commands run for an alert (alert_commands in the receiver's configuration), by result: done (exit 0), "
    "not_applicable (exit 3), failed (any other exit, or it could not start), timeout (killed), skipped_running "
    "(not started: the same command was still running for the same alert, its labels). Every "
    "configured alert name's results start at 0, so increase() sees the first run.",
    ("alertname", "result"))
COMMAND_DURATION = MetricSpec(
    "mlscope_alert_command_duration_seconds", "histogram",
    "Run time of commands started for alerts.",
    ("alertname",), unit="seconds", buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300))
SNAPSHOTS = MetricSpec(
    "mlscope_alert_snapshots_total", "counter",
    "Incident snapshot pages written by the receiver (one per alert group notification that changed state, "
    "rate-limited per group), by the group's status.",
    ("status",))
SNAPSHOTS_SKIPPED = MetricSpec(
    "mlscope_alert_snapshots_skipped_total", "counter",
    "Snapshots not built, by reason: rate_limited (the group had one within the configured interval), "
    "queue_full (the background worker's bounded queue was full), disabled (the mlscope[reports] extra is missing).",
    ("reason",))
SNAPSHOT_FAILURES = MetricSpec(
    "mlscope_alert_snapshot_failures_total", "counter",
    "Snapshots that failed, by stage: build (an error while reading or rendering), write (the page or manifest "
    "could not be written). A page whose sources did not answer is still written and not counted here.",
    ("stage",))
SNAPSHOT_DURATION = MetricSpec(
    "mlscope_alert_snapshot_duration_seconds", "histogram",
    "Time to build and write one snapshot page, off the notification path.",
    (), unit="seconds", buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))

FALSE_POSITIVES = MetricSpec(
    "mlscope_alert_false_positives_total", "counter",
    "Notifications a person marked as false positives (POST /feedback/false-positive on the receiver), by alert "
    "name: divided by mlscope_alert_state_changes_total{status=\"firing\"}, the alert's false-positive rate.",
    ("alertname",))
FEEDBACK_REJECTED = MetricSpec(
    "mlscope_alert_feedback_rejected_total", "counter",
    "False-positive reports refused, by reason (unauthorised, no_token, invalid, unknown_alert: no such fingerprint "
    "on record, not_notified: an alert name the receiver was never notified of).",
    ("reason",))

METRICS = (NOTIFICATIONS, STATE_CHANGES, INVALID_PAYLOADS, COMMANDS, COMMAND_DURATION, SNAPSHOTS,
           SNAPSHOTS_SKIPPED, SNAPSHOT_FAILURES, SNAPSHOT_DURATION, FALSE_POSITIVES, FEEDBACK_REJECTED)
RECORDED = ()
