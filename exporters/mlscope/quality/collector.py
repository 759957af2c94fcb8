"""Exposes the store's quality counters, baselines and the windowed ROC AUC at scrape time."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .._promclient import go_float
from ..catalog import quality as cat
from ..catalog.spec import MetricSpec
from ..instruments import instruments_for
from .scoring import binned_auc
from .store import Counts, Store

_SERIES: dict[str, tuple[MetricSpec, str]] = {}
for _spec in cat.STORED_FAMILIES:
    if _spec.kind == "histogram":
        _SERIES[_spec.name + "_bucket"] = (_spec, "bucket")
        _SERIES[_spec.name + "_sum"] = (_spec, "sum")
    else:
        _SERIES[_spec.name] = (_spec, "value")

_SCORE_LE = [go_float(b) for b in cat.CLASS_SCORE_BUCKETS] + ["+Inf"]
_SCORE_INDEX = {le: i for i, le in enumerate(_SCORE_LE)}
_SCORE_BUCKET = cat.CLASS_SCORE.name + "_bucket"


class QualitySource(Protocol):
    """What the collector reads of a :class:`~mlscope.quality.Quality`."""

    @property
    def store(self) -> Store: ...
    @property
    def windows(self) -> Mapping[str, float]: ...
    @property
    def registry(self) -> CollectorRegistry: ...
    @property
    def pending(self) -> int: ...
    @property
    def store_size(self) -> int: ...
    def report_error(self, exc: BaseException) -> None: ...


def _histogram(spec: MetricSpec, series: dict[tuple[str, ...], dict[str, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
    bounds = [go_float(b) for b in spec.buckets or ()] + ["+Inf"]
    for labels, values in sorted(series.items()):
        running, buckets = 0.0, []
        for le in bounds:
            running += values.get(le, 0.0)
            buckets.append((le, running))
        family.add_metric(list(labels), buckets, values.get("__sum__", 0.0))
    return family


def families(counts: Counts) -> Iterator[Metric]:
    """The counter and histogram families of the store's counters, in catalog order."""
    plain: dict[str, list[tuple[tuple[str, ...], float]]] = {}
    hists: dict[str, dict[tuple[str, ...], dict[str, float]]] = {}
    for (series, labels), value in counts.items():
        found = _SERIES.get(series)
        if found is None:
            continue
        spec, part = found
        if part == "value":
            plain.setdefault(spec.name, []).append((labels, value))
        elif part == "bucket":
            hists.setdefault(spec.name, {}).setdefault(labels[:-1], {})[labels[-1]] = value
        else:
            hists.setdefault(spec.name, {}).setdefault(labels, {})["__sum__"] = value
    for spec in cat.STORED_FAMILIES:
        if spec.kind == "histogram" and spec.name in hists:
            yield _histogram(spec, hists[spec.name])
        elif spec.name in plain:
            family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
            for labels, value in sorted(plain[spec.name]):
                family.add_metric(list(labels), value)
            yield family


def _score_arrays(counts: Counts) -> dict[tuple[str, ...], np.ndarray]:
    """(model, version, segment, class) -> array[2, buckets] of positive/negative score counts."""
    out: dict[tuple[str, ...], np.ndarray] = {}
    for (series, labels), value in counts.items():
        if series != _SCORE_BUCKET:
            continue
        key = labels[:4]
        array = out.get(key)
        if array is None:
            array = out[key] = np.zeros((2, len(_SCORE_LE)))
        array[0 if labels[4] == "positive" else 1, _SCORE_INDEX[labels[5]]] += value
    return out


def window_auc(now_counts: dict[tuple[str, ...], np.ndarray], base: dict[tuple[str, ...], np.ndarray]
               ) -> dict[tuple[str, ...], tuple[float, float]]:
    """One-vs-rest (AUC, error bound) per (model, version, segment, class) between two snapshots.

    Segment "" is the version as a whole (every segment summed); named
    segments are reported on their own too.
    """
    grouped: dict[tuple[str, ...], np.ndarray] = {}
    for key, array in now_counts.items():
        delta = array - base.get(key, 0.0)
        model, version, segment, cls = key
        total = (model, version, "", cls)
        grouped[total] = grouped.get(total, 0.0) + delta
        if segment:
            grouped[key] = delta
    out = {}
    for key, delta in grouped.items():
        result = binned_auc(delta[0], delta[1])
        if result is not None:
            out[key] = result
    return out


class QualityCollector(Collector):
    """Reads the counters from the store at each scrape; computes ROC AUC over the configured windows.

    For the AUC windows it keeps in memory snapshots of the class-score
    histograms (one per ``snapshot_interval_s``); after a restart a window
    covers the time since the restart until it has filled.
    """

    def __init__(self, quality: QualitySource) -> None:
        self.q = quality
        self._snapshots: deque[tuple[float, dict[tuple[str, ...], np.ndarray]]] = deque()
        windows = list(quality.windows.values()) or [60.0]
        self.snapshot_interval_s = max(1.0, min(windows) / 60.0)
        self._horizon = max(windows) + self.snapshot_interval_s
        self._lock = threading.Lock()

    def snapshot(self, now: float | None = None, counts: Counts | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._snapshots and now - self._snapshots[-1][0] < self.snapshot_interval_s:
                return
        arrays = _score_arrays(self.q.store.counters() if counts is None else counts)
        with self._lock:
            self._snapshots.append((now, arrays))
            while len(self._snapshots) > 1 and self._snapshots[1][0] <= now - self._horizon:
                self._snapshots.popleft()

    def _base(self, now: float, window_s: float) -> dict[tuple[str, ...], np.ndarray]:
        with self._lock:
            base = self._snapshots[0][1] if self._snapshots else {}
            for at, arrays in self._snapshots:
                if at > now - window_s:
                    break
                base = arrays
            return base

    def collect(self) -> Iterable[Metric]:
        out: list[Metric] = []
        for part in (self._counters, self._gauges):
            try:
                out.extend(part())
            except Exception as exc:  # a failing part must not 500 the whole /metrics
                self._report(exc)
        return out

    def _counters(self) -> list[Metric]:
        counts = self.q.store.counters()
        out = list(families(counts))
        out.extend(self._auc(counts))
        return out

    def _auc(self, counts: Counts) -> list[Metric]:
        now = time.monotonic()
        current = _score_arrays(counts)
        per_class = GaugeMetricFamily(cat.ROC_AUC.name, cat.ROC_AUC.help, labels=cat.ROC_AUC.labels)
        bound = GaugeMetricFamily(cat.ROC_AUC_MAX_ERROR.name, cat.ROC_AUC_MAX_ERROR.help,
                                  labels=cat.ROC_AUC_MAX_ERROR.labels)
        macro = GaugeMetricFamily(cat.ROC_AUC_MACRO.name, cat.ROC_AUC_MACRO.help, labels=cat.ROC_AUC_MACRO.labels)
        for window, seconds in self.q.windows.items():
            by_version: dict[tuple[str, ...], list[float]] = {}
            for key, (auc, max_error) in sorted(window_auc(current, self._base(now, seconds)).items()):
                per_class.add_metric([*key, window], auc)
                bound.add_metric([*key, window], max_error)
                by_version.setdefault(key[:3], []).append(auc)
            for key, values in by_version.items():
                macro.add_metric([*key, window], float(np.mean(values)))
        return [per_class, bound, macro]

    def _gauges(self) -> list[Metric]:
        baseline = GaugeMetricFamily(cat.BASELINE.name, cat.BASELINE.help, labels=cat.BASELINE.labels)
        calibration = GaugeMetricFamily(cat.CALIBRATION_ERROR.name, cat.CALIBRATION_ERROR.help,
                                        labels=cat.CALIBRATION_ERROR.labels)
        for (model, version), info in sorted(self.q.store.versions().items()):
            for metric, value in sorted(info.baseline.items()):
                baseline.add_metric([model, version, metric], value)
            fitted = info.calibration
            for scores, error in (() if fitted is None else (("raw", fitted.error_raw),
                                                              ("calibrated", fitted.error_calibrated))):
                if error is not None:
                    calibration.add_metric([model, version, scores], error)
        return [baseline, calibration,
                GaugeMetricFamily(cat.OUTCOMES_PENDING.name, cat.OUTCOMES_PENDING.help, value=self.q.pending),
                GaugeMetricFamily(cat.STORE_PREDICTIONS.name, cat.STORE_PREDICTIONS.help,
                                  value=self.q.store_size)]

    def _report(self, exc: BaseException) -> None:
        self.q.report_error(exc)
        instruments_for(self.q.registry).report_internal_error("quality_collect", exc)
