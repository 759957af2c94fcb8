"""The alert that started a job: what the alert receiver hands a per-alert command on stdin, kept for lineage.

The receiver (``mlscope alert-receiver --config``, ``alert_commands``) runs a command once per alert state
change with the alert as JSON on stdin (Alertmanager's webhook alert: ``labels``, ``annotations``,
``fingerprint``, ``startsAt``, ``status``...). A retraining job reads it with :meth:`AlertTrigger.read`
and gives it to :meth:`PipelineMonitor.training_run` (``triggered_by=``): the training run's log lines then
carry the alert's name and fingerprint, so the new model version's lineage points back at the alert (and
at its page on the receiver, ``/alerts/<fingerprint>``). Standard library only.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any


class NotAnAlert(ValueError):
    """Input that is not one Alertmanager alert (the message says what is missing)."""


@dataclass(frozen=True)
class AlertTrigger:
    """The alert a job was started for: its name, fingerprint, status, start and labels."""

    alertname: str
    fingerprint: str
    status: str = "firing"
    starts_at: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_alert(cls, alert: Any) -> AlertTrigger:
        """From one webhook alert object (a mapping); :class:`NotAnAlert` when it is not one."""
        if not isinstance(alert, Mapping):
            raise NotAnAlert(f"an alert is a JSON object, got {type(alert).__name__}")
        labels = alert.get("labels")
        fingerprint = alert.get("fingerprint")
        if not isinstance(labels, Mapping) or not isinstance(labels.get("alertname"), str):
            raise NotAnAlert("the alert has no labels.alertname")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise NotAnAlert("the alert has no fingerprint")
        return cls(labels["alertname"], fingerprint, str(alert.get("status", "firing")),
                   str(alert.get("startsAt", "")), {str(k): str(v) for k, v in labels.items()})

    @classmethod
    def read(cls, stream: IO[str] | None = None) -> AlertTrigger:
        """The alert on ``stream`` (stdin by default), as the receiver writes it."""
        text = (stream or sys.stdin).read()
        try:
            alert = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NotAnAlert(f"stdin is not JSON ({exc}); the alert receiver writes the alert there") from None
        return cls.from_alert(alert)

    def fields(self) -> dict[str, Any]:
        """What a log line carries of it (``triggered_by``)."""
        return {"alertname": self.alertname, "fingerprint": self.fingerprint, "status": self.status,
                "starts_at": self.starts_at, "labels": dict(self.labels)}
