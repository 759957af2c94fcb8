"""Alertmanager configuration for natively run stacks and tests, derived from alerting/alertmanager.yml."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..rules.promql import duration_seconds

COMPOSE_RECEIVER_URL = "http://alert-receiver:9095/alerts"
# The fast profile's ceilings on each route's timings: the first notification within a second, a group's
# changes (a new alert, a resolution) batched every 5 s, and re-sends of an unchanged group every 10 minutes
# (the Watchdog's own 1m stays: its heartbeat must be frequent). A route's shorter value is kept.
FAST_TIMINGS = {"group_wait": "1s", "group_interval": "5s", "repeat_interval": "10m"}


def _routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []) or []:
        yield from _routes(child)


def alertmanager_config(source: Path, receiver_url: str, *, fast: bool = False) -> dict[str, Any]:
    """The project's routing with webhooks pointed at ``receiver_url``.

    ``fast`` caps every route's grouping timings at :data:`FAST_TIMINGS` (the fast
    rule profile's counterpart), so notifications and resolutions arrive in seconds
    while an unchanged group is not re-sent more often than its route says.
    Template paths are made absolute so the result can be written anywhere.
    """
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    for receiver in config.get("receivers", []):
        for webhook in receiver.get("webhook_configs", []) or []:
            if webhook.get("url") == COMPOSE_RECEIVER_URL:
                webhook["url"] = receiver_url
    config["templates"] = [str((source.parent / t).resolve()) for t in config.get("templates", [])]
    if fast:
        root = config["route"]
        for route in _routes(root):
            for key, ceiling in FAST_TIMINGS.items():
                if key in route or route is root:
                    current = route.get(key)
                    if current is None or duration_seconds(current) > duration_seconds(ceiling):
                        route[key] = ceiling
    return config


def write_alertmanager_config(path: Path, source: Path, receiver_url: str, *, fast: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Anchors in the source are expanded: each receiver gets its own copy.
    path.write_text(yaml.safe_dump(alertmanager_config(source, receiver_url, fast=fast), sort_keys=False))
    return path
