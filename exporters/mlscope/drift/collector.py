"""The Prometheus side of drift: one custom Collector per registry, computing families at scrape time.

Counts come from the trackers' snapshots; reference shares, thresholds and
the profile info come from the profiles; the exact snapshot statistics (scipy
KS with p-value, Wasserstein) are computed over each feature's ring of recent
values and cached until new values arrive. A failure for one model version is
counted in ``mlscope_monitor_errors_total`` and leaves the others (and the rest
of ``/metrics``) intact.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .._promclient import PerRegistry, go_float
from ..catalog import drift as cat
from ..catalog.spec import MetricSpec
from .exact import exact_statistics
from .profile import NumericFeature, SeriesBudgetError
from .tracker import CATEGORICAL_ISSUES, ISSUES, NUMERIC_ISSUES, Counts, DriftTracker

DEFAULT_SERIES_BUDGET = 5_000
DEFAULT_MAX_VERSIONS = 3
MIN_SNAPSHOT_VALUES = 30
Exact = dict[int, tuple[float, float, float, int]]


class _Families:
    """Metric families of one scrape, created on first use, in catalog order."""

    def __init__(self) -> None:
        self.by_name: dict[str, Any] = {}

    def _family(self, spec: MetricSpec) -> Any:
        family = self.by_name.get(spec.name)
        if family is None:
            kind = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
                    "histogram": HistogramMetricFamily}[spec.kind]
            family = self.by_name[spec.name] = kind(spec.name, spec.help, labels=spec.labels)
        return family

    def add(self, spec: MetricSpec, labels: list[str], value: float) -> None:
        self._family(spec).add_metric(labels, float(value))

    def add_histogram(self, spec: MetricSpec, labels: list[str], buckets: list[tuple[str, float]],
                      total: float) -> None:
        self._family(spec).add_metric(labels, buckets, total)

    def merge(self, other: _Families) -> None:
        for name, family in other.by_name.items():
            if name in self.by_name:
                self.by_name[name].samples.extend(family.samples)
            else:
                self.by_name[name] = family

    def series(self) -> int:
        return sum(len(f.samples) for f in self.by_name.values())


def tracker_families(tracker: DriftTracker, counts: Counts, exact: Exact) -> _Families:
    """Every series of one model version (all bins, zeros included, so rates start from the first scrape)."""
    out = _Families()
    model, version = tracker.model, tracker.model_version
    profile = tracker.profile
    out.add(cat.PROFILE_INFO, [model, version, profile.content_hash, profile.source_hash[:80],
                               profile.created_at], 1)
    for spec in tracker.specs:
        feature, j = spec.feature, spec.index
        key = [model, version, feature.name]
        out.add(cat.FEATURE_OBSERVATIONS, key, counts.observations[j])
        for issue in (NUMERIC_ISSUES if spec.numeric else CATEGORICAL_ISSUES):
            out.add(cat.FEATURE_ISSUES, key + [issue], counts.issues[j, ISSUES.index(issue)])
        out.add(cat.REFERENCE_MISSING, key, feature.missing_ratio)
        for statistic, value in sorted(feature.thresholds.items()):
            out.add(cat.DRIFT_THRESHOLD, key + [statistic], value)
        bins = counts.bins[spec.offset:spec.offset + spec.n_bins]
        if isinstance(feature, NumericFeature):
            psi_counts = np.bincount(spec.fine_to_psi, weights=bins, minlength=len(feature.reference_bins))
            labels = [str(k) for k in range(len(feature.reference_bins))]
            cumulative = np.cumsum(bins)
            edges = [go_float(e) for e in feature.fine_edges]
            out.add_histogram(cat.FEATURE_VALUE, key,
                              list(zip(edges + ["+Inf"], cumulative.tolist(), strict=True)), counts.sums[j])
            for edge, share in zip(edges, feature.reference_cdf, strict=True):
                out.add(cat.REFERENCE_CDF, key + [edge], share)
        else:
            psi_counts, labels = bins, list(feature.bins)
        for label, count, share in zip(labels, psi_counts.tolist(), feature.reference_bins, strict=True):
            out.add(cat.FEATURE_BIN, key + [label], count)
            out.add(cat.REFERENCE_BIN, key + [label], share)
        if j in exact:
            ks, pvalue, wasserstein, n = exact[j]
            out.add(cat.SNAPSHOT_KS, key, ks)
            out.add(cat.SNAPSHOT_KS_PVALUE, key, pvalue)
            out.add(cat.SNAPSHOT_WASSERSTEIN, key, wasserstein)
            out.add(cat.SNAPSHOT_VALUES, key, n)
    return out


def series_count(tracker: DriftTracker) -> int:
    """Series the tracker publishes at most (every exact snapshot present): what the budget limits."""
    empty = tracker.snapshot()
    full: Exact = {s.index: (0.0, 1.0, 0.0, 0) for s in tracker.specs if s.ring is not None}
    return tracker_families(tracker, empty, full).series()


class DriftCollector(Collector):
    """Publishes the drift series of every attached model version of one registry."""

    def __init__(self, report_error: Callable[[str, BaseException], None]) -> None:
        self._report_error = report_error
        self._trackers: dict[tuple[str, str], DriftTracker] = {}
        self._exact: dict[tuple[str, str], dict[int, tuple[int, tuple[float, float, float, int]]]] = {}
        self._lock = threading.Lock()

    def attach(self, tracker: DriftTracker, *, series_budget: int = DEFAULT_SERIES_BUDGET,
               max_versions: int = DEFAULT_MAX_VERSIONS) -> list[DriftTracker]:
        """Start publishing ``tracker``; returns the versions it displaced (least recently used first).

        Raises :class:`SeriesBudgetError` when the profile needs more series than ``series_budget``.
        """
        needed = series_count(tracker)
        if needed > series_budget:
            profile = tracker.profile
            kinds = {k: sum(1 for f in profile.features if f.kind == k) for k in ("numeric", "categorical")}
            raise SeriesBudgetError(
                f"drift of {tracker.model} {tracker.model_version} needs {needed:,} series ({kinds['numeric']} "
                f"numeric and {kinds['categorical']} categorical features, fine_bins="
                f"{profile.settings.get('fine_bins')}, top_k={profile.settings.get('top_k')}); the budget is "
                f"{series_budget:,} per model version. Rebuild the profile with fewer fine bins or categories "
                "(`mlscope reference build --fine-bins 10 --top-k 10`), profile fewer features, or raise "
                "the budget (attach_profile(..., series_budget=N)) if Prometheus can afford it.")
        if max_versions < 1:
            raise ValueError(f"max_versions must be >= 1, got {max_versions}")
        with self._lock:
            key = (tracker.model, tracker.model_version)
            old = self._trackers.pop(key, None)
            if old is not None:
                old.active = False
            same_model = sorted((t for t in self._trackers.values() if t.model == tracker.model),
                                key=lambda t: t.last_used)
            evicted = same_model[:max(0, len(same_model) - max_versions + 1)]
            for stale in evicted:
                stale.active = False
                del self._trackers[(stale.model, stale.model_version)]
                self._exact.pop((stale.model, stale.model_version), None)
            self._trackers[key] = tracker
            self._exact.pop(key, None)
        return evicted

    def detach(self, tracker: DriftTracker) -> None:
        with self._lock:
            key = (tracker.model, tracker.model_version)
            if self._trackers.get(key) is tracker:
                del self._trackers[key]
                self._exact.pop(key, None)
            tracker.active = False

    def trackers(self) -> list[DriftTracker]:
        with self._lock:
            return list(self._trackers.values())

    def _exact_for(self, tracker: DriftTracker, counts: Counts) -> Exact:
        cache = self._exact.setdefault((tracker.model, tracker.model_version), {})
        out: Exact = {}
        for spec in tracker.specs:
            values = counts.rings.get(spec.index)
            if values is None or values.size < MIN_SNAPSHOT_VALUES:
                continue
            writes = counts.ring_writes[spec.index]
            cached = cache.get(spec.index)
            if cached is None or cached[0] != writes:
                cached = cache[spec.index] = (writes, exact_statistics(values, spec.sample, _present(spec.feature)))
            out[spec.index] = cached[1]
        return out

    def collect(self) -> Iterable[Any]:
        families = _Families()
        for tracker in self.trackers():
            try:
                counts = tracker.snapshot()
                families.merge(tracker_families(tracker, counts, self._exact_for(tracker, counts)))
            except Exception as exc:
                self._report_error("drift_collect", exc)
        yield from families.by_name.values()


def _present(feature: object) -> int | None:
    """The reference values a numeric feature's sample stands for."""
    return feature.present if isinstance(feature, NumericFeature) else None


_by_registry: PerRegistry[DriftCollector] = PerRegistry()


def collector_for(registry: CollectorRegistry, report_error: Callable[[str, BaseException], None]) -> DriftCollector:
    """The registry's drift collector, registered on first use."""
    def create(target: CollectorRegistry) -> DriftCollector:
        collector = DriftCollector(report_error)
        target.register(collector)
        return collector

    return _by_registry.get(registry, create)
