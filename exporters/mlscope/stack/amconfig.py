"""Alertmanager configuration for natively run stacks and tests, derived from alerting/alertmanager.yml."""
from __future__ import annotations

import re
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
# The notification templates' one definition of the alert receiver as people reach it (the snapshots' base).
RECEIVER_URL_DEFINE = re.compile(r'(\{\{ define "mlscope\.receiver_url" \}\})[^{]*(\{\{ end \}\})')


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


def with_receiver_url(template: str, page_url: str) -> str:
    """A notification template with ``mlscope.receiver_url`` defined as ``page_url``."""
    return RECEIVER_URL_DEFINE.sub(lambda m: f"{m.group(1)}{page_url.rstrip('/')}{m.group(2)}", template)


def _own_templates(config: dict[str, Any], folder: Path, page_url: str) -> None:
    """Copy the configuration's templates into ``folder`` with the receiver's address set, and point at them."""
    folder.mkdir(parents=True, exist_ok=True)
    for pattern in config.get("templates", []):
        for found in sorted(Path(pattern).parent.glob(Path(pattern).name)):
            (folder / found.name).write_text(with_receiver_url(found.read_text(), page_url))
    config["templates"] = [str(folder / Path(p).name) for p in config.get("templates", [])]


def write_alertmanager_config(path: Path, source: Path, receiver_url: str, *, fast: bool = False,
                              receiver_page_url: str = "") -> Path:
    """Write the configuration to ``path``; with ``receiver_page_url`` (the receiver as people reach it) its
    templates are copied beside it (``templates/``) with that address as ``mlscope.receiver_url``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = alertmanager_config(source, receiver_url, fast=fast)
    if receiver_page_url:
        _own_templates(config, path.parent / "templates", receiver_page_url)
    # Anchors in the source are expanded: each receiver gets its own copy.
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
