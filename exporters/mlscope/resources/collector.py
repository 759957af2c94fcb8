"""The prometheus-client Collector that serves the sampler's last samples and the collectors' health."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..catalog import AnyMetricSpec
from ..catalog import resources as cat
from .sampler import Sampler, Snapshot

log = logging.getLogger("mlscope.resources")


def family(spec: AnyMetricSpec) -> CounterMetricFamily | GaugeMetricFamily:
    """An empty metric family for ``spec`` (counters and gauges only)."""
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind == "gauge":
        return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
    raise ValueError(f"{spec.name}: resource metrics are counters or gauges, not {spec.kind}")


class ResourceCollector(Collector):
    """Yields the last fresh sample of every source; computes nothing and never blocks on a source.

    A failure while building the families is counted under the collector
    ``exporter`` and that part is left out: ``/metrics`` never answers 500.
    """

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self._own_errors: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        try:
            snapshots = self.sampler.snapshot()
        except Exception as exc:
            self._count(exc)
            snapshots = []
        yield from self._values(snapshots)
        yield from self._health(snapshots)

    def _values(self, snapshots: Iterable[Snapshot]) -> Iterator[Metric]:
        families: dict[AnyMetricSpec, CounterMetricFamily | GaugeMetricFamily] = {}
        for snap in snapshots:
            if snap.sample is None:
                continue
            for spec, series in snap.sample.values.items():
                try:
                    fam = families.get(spec) or families.setdefault(spec, family(spec))
                    for labels, value in series.items():
                        if len(labels) != len(spec.labels):
                            raise ValueError(f"{spec.name}: label values {labels} for labels {spec.labels}")
                        fam.add_metric(labels, float(value))
                except Exception as exc:
                    self._count(exc)
                    families.pop(spec, None)
        yield from families.values()

    def _health(self, snapshots: list[Snapshot]) -> Iterator[Metric]:
        up, errors = family(cat.COLLECTOR_UP), family(cat.COLLECTOR_ERRORS)
        last, duration = family(cat.COLLECTOR_LAST_SAMPLE), family(cat.COLLECTOR_DURATION)
        dropped = family(cat.SERIES_DROPPED)
        for snap in snapshots:
            up.add_metric((snap.name,), 1.0 if snap.up else 0.0)
            for error, count in sorted(snap.errors.items()):
                errors.add_metric((snap.name, error), count)
            for label, count in sorted(snap.dropped.items()):
                dropped.add_metric((snap.name, label), count)
            if snap.last_success_unix is not None:
                last.add_metric((snap.name,), snap.last_success_unix)
            if snap.duration_s is not None:
                duration.add_metric((snap.name,), snap.duration_s)
        for error, count in sorted(self._own_errors.items()):
            errors.add_metric(("exporter", error), count)
        yield from (up, errors, last, duration, dropped)

    def _count(self, exc: BaseException) -> None:
        kind = type(exc).__name__
        if kind not in self._own_errors:
            log.warning("mlscope: building resource metrics failed with %s: %s (counted; logged once)", kind, exc)
        self._own_errors[kind] = self._own_errors.get(kind, 0) + 1
