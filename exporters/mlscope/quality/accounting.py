"""What the quality side could not do, counted and logged: drops, label folds, store errors."""
from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter

from .._promclient import PerRegistry
from ..catalog import quality as cat
from ..instruments import instruments_for

log = logging.getLogger("mlscope.quality")

_dropped: PerRegistry[Counter] = PerRegistry()


def dropped_counter(registry: CollectorRegistry | None) -> Counter:
    """``mlscope_quality_dropped_total`` of ``registry`` (created once per registry)."""
    return _dropped.get(registry, cat.DROPPED.create)


class Accounting:
    """Counts drops in ``mlscope_quality_dropped_total`` and label folds; logs each kind of error once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._dropped = dropped_counter(registry)
        self._reported: set[str] = set()

    def drop(self, kind: str, reason: str, count: int = 1) -> None:
        """Count ``count`` predictions or outcomes (``kind``) not stored, by ``reason``."""
        self._dropped.labels(kind, reason).inc(count)

    def count_fold(self, label: str, reason: str) -> None:
        instruments_for(self.registry).label_overflow.labels(label, reason).inc()

    def report(self, exc: BaseException) -> None:
        """Log ``exc`` the first time an error of its kind happens (later ones are only counted)."""
        key = f"{type(exc).__name__}:{getattr(exc, 'kind', '')}"
        if key not in self._reported:
            self._reported.add(key)
            log.error("mlscope quality: %s (further errors of this kind are only counted)", exc)
