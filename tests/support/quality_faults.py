"""A monitor with quality tracking and readers of its rejection and drop counters."""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.catalog import quality as cat
from mlscope.quality import Quality

from .quality_helpers import series_value

V = dict(model="m", model_version="1")


def rejected(registry: CollectorRegistry, reason: str, known: bool = True) -> float:
    labels = V if known else dict(model="__unknown__", model_version="__unknown__")
    return series_value(registry, cat.OUTCOMES_REJECTED.name, reason=reason, **labels)


def dropped(registry: CollectorRegistry, reason: str, kind: str = "prediction") -> float:
    return series_value(registry, cat.DROPPED.name, kind=kind, reason=reason)


def setup(store: object = None, task: str = "classification", classes: object = (0, 1), **kwargs: object
          ) -> tuple[CollectorRegistry, Quality, ModelMonitor]:
    registry = CollectorRegistry()
    quality = Quality(store, registry=registry, start=False, **kwargs)  # type: ignore[arg-type]
    monitor = ModelMonitor("m", "1", registry=registry, quality=quality, task=task,  # type: ignore[arg-type]
                           classes=None if task == "regression" else classes)
    return registry, quality, monitor
