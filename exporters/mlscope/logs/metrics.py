"""The log pipeline's own metrics, created once per registry from the catalog."""
from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .._promclient import PerRegistry
from ..catalog import logs as cat


class _Gauged(Protocol):
    name: str | None

    def queue_lines(self) -> int: ...

    def spool_bytes(self) -> int: ...


class _DepthCollector(Collector):
    """Queue depth and spool bytes of every live handler, read at scrape time."""

    def __init__(self) -> None:
        self.handlers: weakref.WeakSet[_Gauged] = weakref.WeakSet()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        queue = GaugeMetricFamily(cat.LOG_QUEUE_LINES.name, cat.LOG_QUEUE_LINES.help, labels=["handler"])
        spool = GaugeMetricFamily(cat.LOG_SPOOL_BYTES.name, cat.LOG_SPOOL_BYTES.help, labels=["handler"])
        for handler in list(self.handlers):
            try:
                name = handler.name or ""
                queue.add_metric([name], float(handler.queue_lines()))
                spool.add_metric([name], float(handler.spool_bytes()))
            except Exception:  # a scrape must never fail because of one handler
                continue
        yield queue
        yield spool


class LogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = cat.LOG_LINES_SENT.create(registry)
        self.retries = cat.LOG_PUSH_RETRIES.create(registry)
        self.dropped = cat.LOG_LINES_DROPPED.create(registry)
        self.oversize = cat.LOG_LINES_OVERSIZE.create(registry)
        self.escaped = cat.LOG_LINES_ESCAPED.create(registry)
        self.records = cat.PREDICTION_LOG_RECORDS.create(registry)
        self.depth = _DepthCollector()
        registry.register(self.depth)


_by_registry: PerRegistry[LogMetrics] = PerRegistry()


def log_metrics(registry: CollectorRegistry | None = None) -> LogMetrics:
    """The registry's log metrics, created on first use."""
    return _by_registry.get(registry, LogMetrics)
