"""An Alertmanager webhook payload builder shared by the alerting tests."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(labels: dict[str, str]) -> str:
    """A stand-in for Alertmanager's fingerprint: 16 hex digits, a function of the label set only."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def webhook_payload(alertname: str = "ModelErrorRateHigh", status: str = "firing", *,
                    starts_at: str = "2026-11-24T10:00:00Z", **labels: str) -> dict[str, Any]:
    """A payload shaped as Alertmanager 0.25 sends it (version 4)."""
    alert_labels = {"alertname": alertname, "severity": "critical", **labels}
    return {
        "version": "4", "groupKey": f'{{}}:{{alertname="{alertname}"}}', "truncatedAlerts": 0, "status": status,
        "receiver": "mlscope-default", "groupLabels": {"alertname": alertname}, "commonLabels": alert_labels,
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "alerts": [{"status": status, "labels": alert_labels,
                    "annotations": {"summary": "s", "runbook_url": f"https://x/runbooks/{alertname}.md",
                                    "dashboard": "http://127.0.0.1:3000/d/x"},
                    "startsAt": starts_at,
                    "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-24T10:05:00Z",
                    "generatorURL": "http://prometheus/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
                    "fingerprint": fingerprint(alert_labels)}],
    }


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()
