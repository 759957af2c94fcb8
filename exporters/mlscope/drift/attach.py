"""Glue between a model monitor and its drift tracker (kept out of monitor.py).

Drift depends on the monitor only through :class:`Monitored` (what
:class:`~mlscope.ModelMonitor` offers publicly), so ``mlscope.monitor`` imports
``mlscope.drift`` (lazily, when a profile is attached) and never the reverse.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry

from .collector import DEFAULT_MAX_VERSIONS, DEFAULT_SERIES_BUDGET, collector_for
from .profile import ProfileMismatchError, ReferenceProfile, load_profile
from .tracker import DEFAULT_SNAPSHOT_INTERVAL_S, DEFAULT_WINDOW, DriftTracker

log = logging.getLogger("mlscope")


class Monitored(Protocol):
    """What drift needs of a model monitor: its identity, its registry and where to count problems."""

    model: str
    model_version: str
    registry: CollectorRegistry

    def count_invalid(self, reason: str, count: int = 1) -> None: ...
    def report_internal_error(self, operation: str, exc: BaseException) -> None: ...


def attach(monitor: Monitored, profile: ReferenceProfile | str | Path, *,
           schema: Mapping[str, str] | None = None, series_budget: int = DEFAULT_SERIES_BUDGET,
           max_versions: int = DEFAULT_MAX_VERSIONS, window_size: int = DEFAULT_WINDOW,
           snapshot_interval: float = DEFAULT_SNAPSHOT_INTERVAL_S) -> DriftTracker:
    """Load ``profile`` for ``monitor``, check it, and start publishing its drift series.

    Raises ``ProfileError`` (unreadable or corrupted file), ``ProfileMismatchError`` (schema or
    model name differs) or ``SeriesBudgetError`` (too many series): all at start-up, never
    while serving.
    """
    profile = load_profile(profile)
    if profile.model != monitor.model:
        raise ProfileMismatchError(f"reference profile was built for model {profile.model!r}, "
                                   f"not {monitor.model!r}")
    if profile.model_version != monitor.model_version:
        log.warning("mlscope: reference profile of %s %s used for version %s", profile.model,
                    profile.model_version, monitor.model_version)
    if schema is not None:
        profile.check_schema(schema)
    tracker = DriftTracker(profile, monitor.model, monitor.model_version, monitor.count_invalid, window_size,
                           snapshot_interval)
    collector = collector_for(monitor.registry, monitor.report_internal_error)
    for stale in collector.attach(tracker, series_budget=series_budget, max_versions=max_versions):
        log.warning("mlscope: drift series of %s %s dropped: more than %d versions of %s attached "
                    "(the least recently used goes)", stale.model, stale.model_version, max_versions, stale.model)
    return tracker


def detach(monitor: Monitored, tracker: DriftTracker) -> None:
    """Stop publishing ``tracker``'s series."""
    collector_for(monitor.registry, monitor.report_internal_error).detach(tracker)
