"""False-positive reports on notifications: ``POST /feedback/false-positive`` on the alert receiver.

A person who judged a notification a false alarm posts ``{"fingerprint": "<alert fingerprint>"}`` (or
``{"alertname": "<Alert>"}``, optionally with a ``comment``) with ``Authorization: Bearer <token>``; the receiver
counts it in ``mlscope_alert_false_positives_total{alertname}`` once per firing episode (fingerprint and startsAt:
a repeat answers 200 "already counted"; by alert name, the latest episode of that name on record; a name the
receiver was never notified of is refused, 404 ``not_notified``), so
``increase(mlscope_alert_false_positives_total[1w]) / increase(mlscope_alert_state_changes_total{status="firing"}[1w])``
is each alert's false-positive rate. Without a configured token the endpoint refuses every report.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .._http import bearer_authorised
from .record import AlertStore

PATH = "/feedback/false-positive"
ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
FINGERPRINT = re.compile(r"^[0-9a-f]{1,32}$")
MAX_COMMENT = 500


class FeedbackRejected(ValueError):
    """A report the receiver refuses: ``status`` is the HTTP answer, ``reason`` the counted label."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class FalsePositive:
    alertname: str
    fingerprint: str
    starts_at: str
    comment: str


def parse(body: bytes, authorization: str | None, token: str | None, store: AlertStore) -> FalsePositive:
    """The report in ``body``, or FeedbackRejected (no token configured, wrong token, bad body, unknown alert)."""
    if not token:
        raise FeedbackRejected(403, "no_token", "false-positive feedback is off: start the receiver with "
                                                "--feedback-token-file")
    if not bearer_authorised(token, authorization):
        raise FeedbackRejected(401, "unauthorised", "missing or wrong bearer token")
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise FeedbackRejected(400, "invalid", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise FeedbackRejected(400, "invalid", 'expected {"fingerprint": "..."} or {"alertname": "..."}')
    fingerprint, name, comment = (data.get(k, "") for k in ("fingerprint", "alertname", "comment"))
    if not all(isinstance(v, str) for v in (fingerprint, name, comment)):
        raise FeedbackRejected(400, "invalid", "fingerprint, alertname and comment are strings")
    if fingerprint:
        record = store.get(fingerprint) if FINGERPRINT.match(fingerprint) else None
        if record is None:
            raise FeedbackRejected(404, "unknown_alert", f"no alert with fingerprint {fingerprint!r} on record")
        if name and name != record.alertname:
            raise FeedbackRejected(400, "invalid", f"fingerprint {fingerprint} is {record.alertname}, not {name}")
    elif not ALERT_NAME.match(name):
        raise FeedbackRejected(400, "invalid", 'expected {"fingerprint": "..."} or {"alertname": "<AlertName>"}')
    else:
        latest = store.records(alertname=name, limit=1)
        if not latest:
            raise FeedbackRejected(404, "not_notified", f"the receiver was never notified of an alert {name!r}")
        record = latest[0]
    return FalsePositive(record.alertname, record.fingerprint, record.starts_at, comment[:MAX_COMMENT])
