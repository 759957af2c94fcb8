"""Feature attributions over time: bounded sums of |attribution| per feature, and the rank agreement.

A prediction may carry attributions (feature name -> value: SHAP values, a linear model's contributions, ...).
The version's :class:`AttributionTracker` adds each finite value's absolute value and a count per feature, for
the features of the version's reference profile (or the first :data:`MAX_FEATURES` names without one); one
custom collector per registry publishes them as counters (every feature of the profile, from the first
prediction that carried attributions), so Prometheus records the mean |attribution| per
feature and window. A background thread (every :data:`REFRESH_S` seconds, off the scrape path) keeps snapshots
of those sums, takes the difference over the monitor's ``attribution_window_s`` and publishes the Spearman rank
correlation between the window's mean |attribution| and the reference's of the reference's top
``TOP_K`` features (``mlscope_attribution_rank_agreement``), once each of them has :data:`MIN_PREDICTIONS`
values in the window. Where Spearman is undefined because the window's means are all equal (the features stopped
contributing: all 0), the agreement is 0 (no agreement, so the alert fires); a reference whose top features are
all equal has no ranking to compare, and no gauge. ``mlscope_attribution_window_coverage_ratio`` says how much
of the window this process's data covers (a restarted process starts at 0). numpy only: the light core.
"""
from __future__ import annotations

import heapq
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from ._promclient import PerRegistry
from .catalog import versions as cat
from .labels import MAX_VALUE_LENGTH

MAX_FEATURES = 50  # features of a version without a reference profile: the first names seen
TOP_K = 10  # reference features the rank agreement compares
LOG_TOP = 3  # attributions of a prediction written into its log line
MIN_PREDICTIONS = 30  # values of each compared feature in the window before a rank agreement is published
REFRESH_S = 5.0


def window_label(seconds: float) -> str:
    """``3600`` -> ``"1h"``: the window as the rule configuration writes it."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole == seconds and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{seconds:g}s"


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (scipy.stats.rankdata's ``average``)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.concatenate((starts[1:], [values.size]))
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (NaN when either is constant)."""
    rx, ry = rank(np.asarray(x, dtype=np.float64)), rank(np.asarray(y, dtype=np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denominator if denominator > 0 else math.nan


class AttributionTracker:
    """The attribution sums of one model version (thread-safe), and its last rank agreement."""

    def __init__(self, model: str, model_version: str, *, features: Sequence[str] | None,
                 reference: Mapping[str, float] | None, window_s: float,
                 count_invalid: Callable[[str, int], None]) -> None:
        if not 0 < window_s < math.inf:
            raise ValueError(f"attribution_window_s must be a positive number of seconds, got {window_s!r}")
        self.model, self.model_version, self.window_s = model, model_version, float(window_s)
        self.fixed = features is not None
        self.names: list[str] = list(features) if features is not None else []
        self.capacity = len(self.names) if features is not None else MAX_FEATURES
        self.index = {name: i for i, name in enumerate(self.names)}
        self.reference = {k: float(v) for k, v in (reference or {}).items() if k in self.index}
        self._sums = [0.0] * self.capacity
        self._counts = [0] * self.capacity
        self._lock = threading.Lock()
        self._invalid = count_invalid
        self._history: deque[tuple[float, np.ndarray, np.ndarray]] = deque()
        self.started = time.monotonic()
        self._history.append((self.started, np.zeros(self.capacity), np.zeros(self.capacity)))
        self.rank_agreement: float | None = None
        self.used = False  # no series until a prediction carried attributions: most versions never send any

    def record(self, attributions: Any, top: bool = False) -> list[list[Any]] | None:
        """Add one prediction's attributions; with ``top``, returns its :data:`LOG_TOP` largest by |value|."""
        if not isinstance(attributions, Mapping):
            self._invalid("attributions_wrong_type", 1)
            return None
        if len(attributions) > self.capacity:
            self._invalid("attributions_too_many", 1)
            return None
        index, kept, unknown, bad = self.index, [], 0, 0
        for name, value in attributions.items():
            i = index.get(name)
            if i is None:
                i = self._learn(name)
                if i is None:
                    unknown += 1
                    continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                bad += 1
                continue
            if number - number != 0.0:  # NaN or infinite
                bad += 1
                continue
            kept.append((i, number))
        with self._lock:
            self.used = self.used or bool(kept)
            sums, counts = self._sums, self._counts
            for i, number in kept:
                sums[i] += abs(number)
                counts[i] += 1
        if unknown:
            self._invalid("attribution_feature_unknown", unknown)
        if bad:
            self._invalid("attribution_not_finite", bad)
        if not top or not kept:
            return None
        names = self.names
        return [[names[i], round(v, 6)] for i, v in heapq.nlargest(LOG_TOP, kept, key=lambda p: abs(p[1]))]

    def _learn(self, name: Any) -> int | None:
        """A new feature of a version without a profile: its index, or None (a profile's, or the cap)."""
        if (self.fixed or not isinstance(name, str) or not name or len(name) > MAX_VALUE_LENGTH
                or not name.isprintable()):
            return None
        with self._lock:
            if name in self.index:
                return self.index[name]
            if len(self.names) >= self.capacity:
                return None
            self.names.append(name)
            self.index = {**self.index, name: len(self.names) - 1}
            return len(self.names) - 1

    def snapshot(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The features seen so far, their sums of |attribution| and their counts."""
        with self._lock:
            n = len(self.names)
            return list(self.names), np.array(self._sums[:n]), np.array(self._counts[:n], dtype=np.float64)

    def window(self, now: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sums and counts over the last ``window_s`` seconds (since the newest snapshot at least that old)."""
        now = time.monotonic() if now is None else now
        _, sums, counts = self.snapshot()
        sums, counts = _padded(sums, self.capacity), _padded(counts, self.capacity)
        history = self._history
        history.append((now, sums, counts))
        while len(history) > 1 and history[1][0] <= now - self.window_s:
            history.popleft()
        _, base_sums, base_counts = history[0]
        return sums - base_sums, counts - base_counts

    def refresh(self, now: float | None = None) -> float | None:
        """Recompute the rank agreement (None until the reference's top features have enough values)."""
        sums, counts = self.window(now)
        if len(self.reference) < 2:
            self.rank_agreement = None
            return None
        top = sorted(self.reference, key=lambda f: (-self.reference[f], f))[:TOP_K]
        at = np.array([self.index[f] for f in top])
        if counts[at].min() < MIN_PREDICTIONS:
            self.rank_agreement = None
            return None
        reference, means = np.array([self.reference[f] for f in top]), sums[at] / counts[at]
        if np.all(reference == reference[0]):  # no ranking to compare with
            self.rank_agreement = None
            return None
        value = spearman(reference, means)
        self.rank_agreement = 0.0 if math.isnan(value) else value  # NaN here: the window's means are all equal
        return self.rank_agreement

    def coverage(self, now: float | None = None) -> float:
        """Share of the window this process's data covers: the seconds since the tracker started, at most 1."""
        now = time.monotonic() if now is None else now
        return min((now - self.started) / self.window_s, 1.0)


def _padded(values: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate((values, np.zeros(size - values.size))) if values.size < size else values


class AttributionCollector(Collector):
    """Publishes the attribution series of every tracker of one registry; refreshes rank agreements."""

    def __init__(self, report_error: Callable[[str, BaseException], None]) -> None:
        self._trackers: dict[tuple[str, str], AttributionTracker] = {}
        self._lock = threading.Lock()
        self._report_error = report_error
        self._thread: threading.Thread | None = None
        self._pid = 0

    def attach(self, tracker: AttributionTracker) -> None:
        with self._lock:
            self._trackers[(tracker.model, tracker.model_version)] = tracker
        self.ensure_running()

    def detach(self, tracker: AttributionTracker) -> None:
        with self._lock:
            if self._trackers.get((tracker.model, tracker.model_version)) is tracker:
                del self._trackers[(tracker.model, tracker.model_version)]

    def trackers(self) -> list[AttributionTracker]:
        with self._lock:
            return list(self._trackers.values())

    def refresh(self) -> None:
        for tracker in self.trackers():
            try:
                tracker.refresh()
            except Exception as exc:
                self._report_error("attribution_rank", exc)

    def ensure_running(self) -> None:
        """Start the refreshing thread (again in a forked child, where it did not survive)."""
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=_refresh_loop, args=(weakref.ref(self),), daemon=True,
                                            name="mlscope-attribution-rank")
            self._thread.start()
            self._pid = os.getpid()

    def collect(self) -> Iterable[Metric]:
        self.ensure_running()
        out: dict[str, list[Sample]] = {spec.name: [] for spec in _SPECS}
        for tracker in self.trackers():
            try:
                model, version = tracker.model, tracker.model_version
                names, sums, counts = tracker.snapshot() if tracker.used else ([], np.zeros(0), np.zeros(0))
                for name, total, count in zip(names, sums.tolist(), counts.tolist(), strict=True):
                    labels = {"model": model, "model_version": version, "feature": name}
                    out[cat.ATTRIBUTION_ABS.name].append(Sample(cat.ATTRIBUTION_ABS.name, labels, total))
                    out[cat.ATTRIBUTIONS.name].append(Sample(cat.ATTRIBUTIONS.name, labels, count))
                for name, mean in tracker.reference.items():
                    labels = {"model": model, "model_version": version, "feature": name}
                    out[cat.REFERENCE_ATTRIBUTION.name].append(Sample(cat.REFERENCE_ATTRIBUTION.name, labels, mean))
                labels = {"model": model, "model_version": version, "window": window_label(tracker.window_s)}
                if tracker.used:
                    out[cat.ATTRIBUTION_WINDOW.name].append(
                        Sample(cat.ATTRIBUTION_WINDOW.name, labels, round(tracker.coverage(), 4)))
                if tracker.rank_agreement is not None:
                    out[cat.ATTRIBUTION_RANK_AGREEMENT.name].append(
                        Sample(cat.ATTRIBUTION_RANK_AGREEMENT.name, labels, tracker.rank_agreement))
            except Exception as exc:
                self._report_error("attribution_collect", exc)
        for spec in _SPECS:
            if out[spec.name]:
                family = Metric(spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name,
                                spec.help, spec.kind)
                family.samples = out[spec.name]
                yield family


_SPECS = (cat.ATTRIBUTION_ABS, cat.ATTRIBUTIONS, cat.REFERENCE_ATTRIBUTION, cat.ATTRIBUTION_RANK_AGREEMENT,
          cat.ATTRIBUTION_WINDOW)


def _refresh_loop(ref: weakref.ref[AttributionCollector]) -> None:
    while True:
        collector = ref()
        if collector is None:
            return
        collector.refresh()
        del collector
        time.sleep(REFRESH_S)


_by_registry: PerRegistry[AttributionCollector] = PerRegistry()


def collector_for(registry: CollectorRegistry,
                  report_error: Callable[[str, BaseException], None]) -> AttributionCollector:
    """The registry's attribution collector, registered on first use."""
    return _by_registry.collector(registry, lambda: AttributionCollector(report_error))


def refresh_attributions(registry: CollectorRegistry | None) -> None:
    """Recompute the rank agreements of ``registry`` now (the background thread does it every REFRESH_S)."""
    collector = _by_registry.find(registry)
    if collector is not None:
        collector.refresh()
