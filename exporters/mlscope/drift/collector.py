"""The Prometheus side of drift: one custom Collector per registry, publishing every version's series.

Everything that does not change while serving (label sets, reference shares, thresholds, the
profile info with its content hash, which fine bin feeds which PSI bin) is laid out once, when a
version is attached (:class:`_Layout`); a scrape copies the trackers' counts and turns them into
samples with a few numpy operations. The exact snapshot statistics (KS with p-value, Wasserstein)
are computed off the scrape path by :mod:`mlscope.drift.snapshots`; a scrape publishes the last
ones. A failure for one model version is counted in ``mlscope_monitor_errors_total`` and leaves
the others (and the rest of ``/metrics``) intact.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from .._promclient import PerRegistry, go_float
from ..catalog import drift as cat
from ..catalog.spec import AnyMetricSpec
from .profile import NumericFeature, SeriesBudgetError
from .snapshots import Exact, Snapshots
from .tracker import CATEGORICAL_ISSUES, ISSUES, N_ISSUES, NUMERIC_ISSUES, Counts, DriftTracker

DEFAULT_SERIES_BUDGET = 5_000
DEFAULT_MAX_VERSIONS = 3
Samples = dict[str, list[Sample]]  # metric family name -> its samples


class _Layout:
    """Every series of one model version: label sets and constant samples built once, counts per scrape."""

    def __init__(self, tracker: DriftTracker) -> None:
        model, version, profile = tracker.model, tracker.model_version, tracker.profile
        self.static: Samples = {spec.name: [] for spec in cat.METRICS}
        self._static(cat.PROFILE_INFO, {"model": model, "model_version": version,
                                        "profile_hash": profile.content_hash,
                                        "source_hash": profile.source_hash[:80],
                                        "created_at": profile.created_at}, 1.0)
        self.observations: list[dict[str, str]] = []
        issues: list[int] = []
        self.issue_labels: list[dict[str, str]] = []
        bin_series: list[int] = []              # series index of each fine bin (categorical: each bin)
        self.bin_labels: list[dict[str, str]] = []
        high: list[int] = []                    # cumulative bucket k of a feature at offset o: C[o+k+1] - C[o]
        low: list[int] = []
        self.bucket_labels: list[dict[str, str]] = []
        self.counted: list[tuple[int, int, dict[str, str]]] = []  # (spec, +Inf bucket, labels): _count, _sum
        self.snapshot_labels: dict[int, dict[str, str]] = {}
        for spec in tracker.specs:
            feature, j = spec.feature, spec.index
            key = {"model": model, "model_version": version, "feature": feature.name}
            self.observations.append(key)
            for issue in (NUMERIC_ISSUES if spec.numeric else CATEGORICAL_ISSUES):
                issues.append(j * N_ISSUES + ISSUES.index(issue))
                self.issue_labels.append({**key, "issue": issue})
            self._static(cat.REFERENCE_VALUES, key, feature.present)
            self._static(cat.REFERENCE_MISSING, key, feature.missing_ratio)
            for statistic, value in sorted(feature.thresholds.items()):
                self._static(cat.DRIFT_THRESHOLD, {**key, "statistic": statistic}, value)
            first = len(self.bin_labels)
            if isinstance(feature, NumericFeature):
                labels = [str(k) for k in range(len(feature.reference_bins))]
                bin_series += (first + spec.fine_to_psi).tolist()
                finite = [go_float(e) for e in feature.fine_edges]
                edges = finite + ["+Inf"]
                for k, edge in enumerate(edges):
                    high.append(spec.offset + k + 1)
                    low.append(spec.offset)
                    self.bucket_labels.append({**key, "le": edge})
                if float(edges[0]) >= 0:  # prometheus-client's rule: no _count/_sum below a negative bound
                    self.counted.append((j, len(self.bucket_labels) - 1, key))
                for edge, share in zip(finite, feature.reference_cdf, strict=True):
                    self._static(cat.REFERENCE_CDF, {**key, "edge": edge}, share)
                if spec.ring is not None:
                    self.snapshot_labels[j] = key
            else:
                labels = list(feature.bins)
                bin_series += range(first, first + len(labels))
            for label, share in zip(labels, feature.reference_bins, strict=True):
                self.bin_labels.append({**key, "bin": label})
                self._static(cat.REFERENCE_BIN, {**key, "bin": label}, share)
        self.issue_index = np.asarray(issues, dtype=np.intp)
        self.bin_series = np.asarray(bin_series, dtype=np.intp)
        self.high, self.low = np.asarray(high, dtype=np.intp), np.asarray(low, dtype=np.intp)

    def _static(self, spec: AnyMetricSpec, labels: dict[str, str], value: float) -> None:
        self.static[spec.name].append(Sample(spec.name, labels, float(value)))

    def samples(self, counts: Counts, exact: Exact) -> Samples:
        """The samples of one scrape: the constant ones and those of ``counts`` and ``exact``."""
        out = {name: list(samples) for name, samples in self.static.items()}
        _fill(out, cat.FEATURE_OBSERVATIONS.name, self.observations, counts.observations.tolist())
        _fill(out, cat.FEATURE_ISSUES.name, self.issue_labels, counts.issues.ravel()[self.issue_index].tolist())
        per_bin = np.bincount(self.bin_series, weights=counts.bins, minlength=len(self.bin_labels))
        _fill(out, cat.FEATURE_BIN.name, self.bin_labels, per_bin.tolist())
        cumulative = np.concatenate(([0.0], np.cumsum(counts.bins, dtype=np.float64)))
        buckets = (cumulative[self.high] - cumulative[self.low]).tolist()
        name = cat.FEATURE_VALUE.name
        _fill(out, name, self.bucket_labels, buckets, "_bucket")
        values = out[name]
        values += [Sample(name + "_count", labels, buckets[k]) for _, k, labels in self.counted]
        values += [Sample(name + "_sum", labels, float(counts.sums[j])) for j, _, labels in self.counted]
        for j, (ks, pvalue, wasserstein, n) in exact.items():
            labels = self.snapshot_labels[j]
            for spec, value in ((cat.SNAPSHOT_KS, ks), (cat.SNAPSHOT_KS_PVALUE, pvalue),
                                (cat.SNAPSHOT_WASSERSTEIN, wasserstein), (cat.SNAPSHOT_VALUES, float(n))):
                out[spec.name].append(Sample(spec.name, labels, value))
        return out

    def series(self) -> int:
        """Series published at most (every exact snapshot present): what the budget limits."""
        counted = len(self.observations) + len(self.issue_labels) + len(self.bin_labels) + len(self.bucket_labels)
        return (sum(len(s) for s in self.static.values()) + counted + 2 * len(self.counted)
                + 4 * len(self.snapshot_labels))


def _fill(out: Samples, name: str, labels: list[dict[str, str]], values: list[float], suffix: str = "") -> None:
    sample = name + suffix
    out[name] += [Sample(sample, key, float(value)) for key, value in zip(labels, values, strict=True)]


def _families(samples: Samples) -> Iterable[Metric]:
    """Metric families in catalog order (the empty ones left out)."""
    for spec in cat.METRICS:
        found = samples.get(spec.name)
        if found:
            family = Metric(spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name,
                            spec.help, spec.kind)
            family.samples = found
            yield family


def series_count(tracker: DriftTracker) -> int:
    """Series the tracker publishes at most (every exact snapshot present): what the budget limits."""
    return _Layout(tracker).series()


class DriftCollector(Collector):
    """Publishes the drift series of every attached model version of one registry."""

    def __init__(self, report_error: Callable[[str, BaseException], None]) -> None:
        self._report_error = report_error
        self._trackers: dict[tuple[str, str], tuple[DriftTracker, _Layout]] = {}
        self._lock = threading.Lock()
        self.snapshots = Snapshots(self.trackers, report_error)

    def attach(self, tracker: DriftTracker, *, series_budget: int = DEFAULT_SERIES_BUDGET,
               max_versions: int = DEFAULT_MAX_VERSIONS) -> list[DriftTracker]:
        """Start publishing ``tracker``; returns the versions it displaced (least recently used first).

        Raises :class:`SeriesBudgetError` when the profile needs more series than ``series_budget``.
        """
        layout = _Layout(tracker)
        needed = layout.series()
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
                old[0].active = False
            same_model = sorted((t for t, _ in self._trackers.values() if t.model == tracker.model),
                                key=lambda t: t.last_used)
            evicted = same_model[:max(0, len(same_model) - max_versions + 1)]
            for stale in evicted:
                stale.active = False
                del self._trackers[(stale.model, stale.model_version)]
            self._trackers[key] = (tracker, layout)
        self.snapshots.ensure_running()
        return evicted

    def detach(self, tracker: DriftTracker) -> None:
        with self._lock:
            key = (tracker.model, tracker.model_version)
            found = self._trackers.get(key)
            if found is not None and found[0] is tracker:
                del self._trackers[key]
            tracker.active = False

    def trackers(self) -> list[DriftTracker]:
        with self._lock:
            return [tracker for tracker, _ in self._trackers.values()]

    def collect(self) -> Iterable[Any]:
        self.snapshots.ensure_running()  # again in a forked child, where the thread did not survive
        with self._lock:
            attached = list(self._trackers.values())
        samples: Samples = {}
        for tracker, layout in attached:
            try:
                mine = layout.samples(tracker.snapshot(), self.snapshots.results(tracker))
            except Exception as exc:
                self._report_error("drift_collect", exc)
                continue
            for name, found in mine.items():
                samples.setdefault(name, []).extend(found)
        yield from _families(samples)


_by_registry: PerRegistry[DriftCollector] = PerRegistry()


def collector_for(registry: CollectorRegistry, report_error: Callable[[str, BaseException], None]) -> DriftCollector:
    """The registry's drift collector, registered on first use."""
    return _by_registry.collector(registry, lambda: DriftCollector(report_error))


def refresh_snapshots(registry: CollectorRegistry | None) -> None:
    """Compute the exact snapshots of ``registry``'s drift now (the background thread does it every
    ``snapshot_interval``); nothing when no profile is attached there."""
    collector = _by_registry.find(registry)
    if collector is not None:
        collector.snapshots.refresh()
