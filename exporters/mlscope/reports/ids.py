"""A snapshot's deterministic name, known before the page exists (standard library only: the receiver's line
and the notification templates carry it).

``<sha256(group labels)[:16]>-<startsAt epoch>``: the group labels as ``name=value,`` pairs sorted by name
(what ``range .GroupLabels.SortedPairs`` writes in a notification template: Alertmanager's template data has no
group key), the start that of the notification's first alert in Alertmanager's order (labels sorted), which is
``(index .Alerts 0).StartsAt.Unix``. Two routes grouping the same alerts by the same labels share one page.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

PATH = "/snapshots"


def parse_time(text: str) -> float | None:
    """An RFC 3339 time (Alertmanager's, up to nanoseconds) as Unix seconds; None for Go's zero time."""
    if not text or text.startswith("0001-"):
        return None
    text = text.replace("Z", "+00:00")
    whole, zone = text[:19], text[19:]
    fraction = ""
    if zone.startswith("."):
        digits = zone[1:].split("+")[0].split("-")[0]
        fraction, zone = digits, zone[1 + len(digits):]
    base = dt.datetime.fromisoformat(whole + (zone or "+00:00"))
    return base.timestamp() + (float("0." + fraction) if fraction else 0.0)


def group_text(group_labels: Mapping[str, Any]) -> str:
    """``name=value,`` for each group label, sorted by name: the string the template and the receiver hash."""
    return "".join(f"{k}={v}," for k, v in sorted(group_labels.items()))


def snapshot_id(group: str, starts_at: float) -> str:
    """The name of a group's snapshot: the sha256 of its :func:`group_text` (16 hex digits), its start epoch."""
    return f"{hashlib.sha256(group.encode()).hexdigest()[:16]}-{int(starts_at)}"


def group_start(payload: Mapping[str, Any]) -> float:
    """The start of the notification's first alert (Alertmanager sorts a group's alerts by their labels)."""
    alerts = payload.get("alerts") or []
    return (parse_time(str(alerts[0].get("startsAt", ""))) if alerts else None) or 0.0


def page_id(payload: Mapping[str, Any]) -> str:
    return snapshot_id(group_text(payload.get("groupLabels") or {}), group_start(payload))


def page_url(base: str, ident: str) -> str:
    """The page's address under the receiver's ``base`` URL."""
    return f"{base.rstrip('/')}{PATH}/{ident}.html"
