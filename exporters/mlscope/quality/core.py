"""The joiner: stores predictions, joins outcomes with them, keeps the quality counters.

One :class:`Quality` per process that holds a store. Predictions and outcomes
handed over by a :class:`~mlscope.ModelMonitor` go through a bounded queue to a
background thread that writes them in batches (the request path only appends
to a deque). Outcomes posted to the quality exporter or imported from a file
are joined synchronously with :meth:`Quality.record_outcomes`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry

from ..catalog import quality as cat
from ..labels import LabelGuard
from . import scoring
from .store import Counts, Store, StoredPrediction, StoreError, VersionInfo, add_counts
from .store import open_store

log = logging.getLogger("mlscope.quality")

UNKNOWN = "__unknown__"
MAX_REQUEST_ID = 256
DEFAULT_WINDOWS_S = {"1h": 3600.0, "1d": 86400.0}


@dataclass(frozen=True)
class Outcome:
    """The ground truth of one prediction; ``time`` (unix seconds) defaults to when it is received."""

    request_id: Any
    y_true: Any
    time: float | None = None


class Sink:
    """The monitor's handle on a :class:`Quality`: one deque append per prediction."""

    __slots__ = ("key", "_quality")

    def __init__(self, quality: "Quality", key: tuple[str, str]) -> None:
        self.key = key
        self._quality = quality

    def put(self, request_id: str, output: Any, proba: Any = None, segment: Any = None) -> None:
        q = self._quality
        if len(q._queue) >= q.queue_size:
            q._drop("prediction", "queue_full")
            return
        q._queue.append((self.key, request_id, time.time(), output, proba, segment))

    def put_many(self, request_ids: Any, outputs: Any, proba: Any = None, segments: Any = None) -> bool:
        """Queue a batch (rows of ``proba`` aligned with ``outputs``); False when the lengths differ."""
        ids, outs = list(request_ids), np.asarray(outputs).tolist()
        n = len(ids)
        if len(outs) != n or (proba is not None and len(proba) != n) or (segments is not None
                                                                          and len(segments) != n):
            return False
        q = self._quality
        room = max(0, q.queue_size - len(q._queue))
        if n > room:
            q._drop("prediction", "queue_full", n - room)
        now, key = time.time(), self.key
        segs = segments if segments is not None else [None] * n
        probs = proba if proba is not None else [None] * n
        q._queue.extend((key, ids[i], now, outs[i], probs[i], segs[i]) for i in range(min(n, room)))
        return True


class Quality:
    """Joins late ground truth with stored predictions and exposes the quality counters.

    ``store`` is a :class:`Store`, a path to a SQLite file, or None for memory.
    ``expose`` registers the collector of quality metrics in ``registry``: set
    it in exactly one process per store (the quality exporter, or the service
    itself when it owns the store), so Prometheus does not count pairs twice.
    ``windows`` ({name: seconds}) are the ROC AUC windows; ``pending_ttl_s`` is
    how long an outcome waits for its prediction before it counts as
    ``unknown_request``.
    """

    def __init__(self, store: Store | str | None = None, *, registry: CollectorRegistry | None = None,
                 expose: bool = True, windows: Mapping[str, float] | None = None,
                 pending_ttl_s: float = 300.0, max_pending: int = 100_000, queue_size: int = 100_000,
                 label_caps: Mapping[str, int] | None = None, flush_interval_s: float = 0.05,
                 maintenance_interval_s: float = 1.0, max_retries: int = 3, start: bool = True) -> None:
        self.store: Store = store if isinstance(store, Store) else open_store(store)
        self.windows = dict(windows or DEFAULT_WINDOWS_S)
        self.pending_ttl_s = pending_ttl_s
        self.max_pending = max_pending
        self.queue_size = queue_size
        self.flush_interval_s = flush_interval_s
        self.maintenance_interval_s = maintenance_interval_s
        self.max_retries = max_retries
        from .collector import QualityCollector, dropped_counter  # noqa: PLC0415 - avoid a cycle

        self.registry = registry if registry is not None else REGISTRY
        self._dropped = dropped_counter(self.registry)
        self.guard = LabelGuard({"class": 50, "segment": 20, **(label_caps or {})}, on_fold=self._count_fold)
        self._versions: dict[tuple[str, str], VersionInfo] = {}
        self._queue: deque[tuple[Any, ...]] = deque()
        self._pending: dict[str, tuple[Outcome, float]] = {}
        self._pending_lock = threading.Lock()
        self._retry: list[tuple[list[tuple[Any, ...]], int]] = []
        self._busy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.store_size = 0
        self.collector = QualityCollector(self)
        if expose:
            self.registry.register(self.collector)
        self._reported: set[str] = set()
        self._unsaved: set[tuple[str, str]] = set()
        try:
            self.store_size = self.store.size()
            self.collector.snapshot()  # the start of the ROC AUC windows
        except Exception as exc:  # noqa: BLE001
            self._report(exc)
        if start:
            self.start()

    # -- versions ---------------------------------------------------------------------------------

    def register(self, model: str, model_version: str, task: str = "classification",
                 classes: Sequence[Any] | None = None) -> VersionInfo:
        """Declare a version (its task and, for classifiers, its classes in ``predict_proba`` order).

        With ``classes``, every counter of the version exists from 0 (exact
        windows from the first pair) and outcomes of other classes are
        rejected as ``unknown_class``.
        """
        labels = None
        if classes is not None:
            labels = tuple(self.guard.admit("class", scoring.class_label(c) or "__invalid__") for c in classes)
        known = self.store.versions().get((model, model_version))
        info = VersionInfo(model, model_version, task, labels, dict(known.baseline) if known else {})
        self.store.put_version(info)
        self.store.add(scoring.zero_counts(info))
        self._versions[(model, model_version)] = info
        return info

    def set_baseline(self, model: str, model_version: str, metrics: Mapping[str, float]) -> None:
        """Publish the version's quality on validation data (see ``scoring.baseline_metrics``)."""
        info = self._version(model, model_version) or self.register(model, model_version)
        info.baseline = {str(k): float(v) for k, v in metrics.items()}
        self.store.put_version(info)

    def _version(self, model: str, model_version: str) -> VersionInfo | None:
        info = self._versions.get((model, model_version))
        if info is None:
            info = self.store.versions().get((model, model_version))
            if info is not None:
                self._versions[(model, model_version)] = info
        return info

    def sink(self, model: str, model_version: str, task: str = "classification",
             classes: Sequence[Any] | None = None) -> Sink:
        """The handle a monitor stores predictions through; a failing store only delays registration."""
        try:
            self.register(model, model_version, task, classes)
        except StoreError as exc:
            self._report(exc)
            labels = None if classes is None else tuple(
                self.guard.admit("class", scoring.class_label(c) or "__invalid__") for c in classes)
            self._versions[(model, model_version)] = VersionInfo(model, model_version, task, labels)
            self._unsaved.add((model, model_version))
        return Sink(self, (model, model_version))

    # -- predictions ------------------------------------------------------------------------------

    def store_predictions(self, items: Iterable[tuple[Any, ...]]) -> int:
        """Store ``(key, request_id, time, output, proba, segment)`` items in one transaction.

        Returns how many were stored; the others are counted in
        ``mlscope_quality_dropped_total``. Raises StoreError when the store fails.
        """
        rows: dict[str, StoredPrediction] = {}
        for item in items:
            row = self._row(*item)
            if row is None:
                continue
            if row.request_id in rows:
                self._drop("prediction", "duplicate_request_id")
                continue
            rows[row.request_id] = row
        if not rows:
            return 0
        with self.store.transaction() as tx:
            for request_id in tx.existing(list(rows)):
                del rows[request_id]
                self._drop("prediction", "duplicate_request_id")
            counts: Counts = {}
            for row in rows.values():
                scoring.prediction_counts(row, self._versions.get((row.model, row.model_version)), counts)
            tx.insert(list(rows.values()))
            tx.add(counts)
        self.store_size += len(rows)
        if self._pending:
            self._retry_pending(set(rows))
        return len(rows)

    def _row(self, key: tuple[str, str], request_id: Any, at: float, output: Any, proba: Any,
             segment: Any) -> StoredPrediction | None:
        info = self._versions.get(key)
        if info is None or not isinstance(request_id, str) or not request_id:
            self._drop("prediction", "invalid_output")
            return None
        segment_label = "" if segment is None else self.guard.admit("segment", segment)
        if info.task == "regression":
            value = scoring.number(output)
            if value is None:
                self._drop("prediction", "invalid_output")
                return None
            return StoredPrediction(request_id, key[0], key[1], segment_label, at, None, value, None)
        predicted = scoring.class_label(output)
        if predicted is None:
            self._drop("prediction", "invalid_output")
            return None
        predicted = self.guard.admit("class", predicted)
        probs = None
        if proba is not None:
            probs = scoring.probabilities(proba, len(info.classes)) if info.classes else None
            if probs is None:
                self._drop("prediction", "invalid_proba")
        return StoredPrediction(request_id, key[0], key[1], segment_label, at, predicted, None, probs)

    # -- outcomes ---------------------------------------------------------------------------------

    def submit_outcome(self, request_id: Any, y_true: Any, at: float | None = None) -> None:
        """Queue an outcome for the background thread (never blocks, never raises)."""
        if len(self._queue) >= self.queue_size:
            self._drop("outcome", "queue_full")
            return
        self._queue.append((None, Outcome(request_id, y_true, at)))

    def record_outcome(self, request_id: Any, y_true: Any, at: float | None = None) -> dict[str, int]:
        return self.record_outcomes([Outcome(request_id, y_true, at)])

    def record_outcomes(self, outcomes: Iterable[Outcome], *, hold: bool = True,
                        now: float | None = None) -> dict[str, int]:
        """Join outcomes now; returns counts by result (joined, pending, or the rejection reason).

        Outcomes whose prediction is not stored yet are held (``hold``) for
        ``pending_ttl_s``; without ``hold`` they count as unknown at once.
        Raises StoreError when the store fails (nothing is counted then).
        """
        now = time.time() if now is None else now
        summary: dict[str, int] = {}
        rejected: Counts = {}
        batch: dict[str, Outcome] = {}
        for outcome in outcomes:
            rid = outcome.request_id
            if not isinstance(rid, str) or not rid or len(rid) > MAX_REQUEST_ID:
                self._reject(rejected, summary, None, "wrong_type")
            elif rid in batch:
                self._reject(rejected, summary, None, "duplicate")
            else:
                batch[rid] = outcome
        missing = self._join(batch, now, summary, rejected)
        for rid, outcome in missing.items():
            self._hold_or_reject(outcome, hold, rejected, summary)
        if rejected:
            self.store.add(rejected)
        return summary

    def _join(self, batch: dict[str, Outcome], now: float, summary: dict[str, int],
              rejected: Counts) -> dict[str, Outcome]:
        """Join what the store has, in one transaction; return the outcomes whose prediction is missing."""
        if not batch:
            return {}
        missing: dict[str, Outcome] = {}
        with self.store.transaction() as tx:
            rows = tx.fetch(list(batch))
            counts: Counts = {}
            labelled = []
            for rid, outcome in batch.items():
                row = rows.get(rid)
                if row is None:
                    missing[rid] = outcome
                    continue
                if row.labelled_at is not None:
                    self._reject(rejected, summary, row, "duplicate")
                    continue
                info = self._version(row.model, row.model_version) or VersionInfo(
                    row.model, row.model_version, "regression" if row.predicted is None else "classification")
                at = now if outcome.time is None else scoring.timestamp(outcome.time)
                if at is None:
                    self._reject(rejected, summary, row, "invalid_time")
                    continue
                pair: Counts = {}
                reason = scoring.pair_counts(row, info, outcome.y_true, at - row.predicted_at, pair,
                                             self.guard.admit)
                if reason is not None:
                    self._reject(rejected, summary, row, reason)
                    continue
                add_counts(counts, pair)
                labelled.append((rid, at))
                summary["joined"] = summary.get("joined", 0) + 1
            for rid in tx.expired(list(missing)):
                del missing[rid]
                self._reject(rejected, summary, None, "expired_request")
            tx.mark_labelled(labelled)
            tx.add(counts)
        return missing

    def _reject(self, into: Counts, summary: dict[str, int], row: StoredPrediction | None, reason: str) -> None:
        labels = (row.model, row.model_version) if row is not None else (UNKNOWN, UNKNOWN)
        key = (cat.OUTCOMES_REJECTED.name, labels + (reason,))
        into[key] = into.get(key, 0.0) + 1.0
        summary[reason] = summary.get(reason, 0) + 1

    def _hold_or_reject(self, outcome: Outcome, hold: bool, rejected: Counts, summary: dict[str, int]) -> None:
        if hold and self.pending_ttl_s > 0:
            with self._pending_lock:
                if outcome.request_id in self._pending:
                    reason = "duplicate"
                elif len(self._pending) >= self.max_pending:
                    reason = "pending_full"
                else:
                    self._pending[outcome.request_id] = (outcome, time.monotonic())
                    summary["pending"] = summary.get("pending", 0) + 1
                    return
            self._reject(rejected, summary, None, reason)
        else:
            self._reject(rejected, summary, None, "unknown_request")

    def _retry_pending(self, ids: set[str] | None = None) -> None:
        """Join held outcomes whose prediction has arrived; count those held too long as unknown."""
        deadline = time.monotonic() - self.pending_ttl_s
        with self._pending_lock:
            chosen = {rid: item for rid, item in self._pending.items()
                      if (ids is None or rid in ids or item[1] < deadline)}
            for rid in chosen:
                del self._pending[rid]
        if not chosen:
            return
        summary: dict[str, int] = {}
        rejected: Counts = {}
        try:
            missing = self._join({rid: o for rid, (o, _) in chosen.items()}, time.time(), summary, rejected)
        except StoreError:
            with self._pending_lock:
                self._pending.update(chosen)
            raise
        for rid, outcome in missing.items():
            if chosen[rid][1] < deadline:
                self._reject(rejected, summary, None, "unknown_request")
            else:
                with self._pending_lock:
                    self._pending.setdefault(rid, chosen[rid])
        if rejected:
            self.store.add(rejected)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- background thread ------------------------------------------------------------------------

    def start(self) -> "Quality":
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mlscope-quality", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the thread and close the store."""
        self.flush(timeout)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._queue and not self._busy and not self._retry:
                return True
            if self._thread is None or not self._thread.is_alive():
                self.process_queue()
                continue
            time.sleep(0.005)
        return False

    def _run(self) -> None:
        next_maintenance = 0.0
        while not self._stop.wait(self.flush_interval_s):
            self.process_queue()
            if time.monotonic() >= next_maintenance:
                next_maintenance = time.monotonic() + self.maintenance_interval_s
                self.maintain()

    def process_queue(self, max_items: int = 10_000) -> None:
        """Write queued predictions and outcomes in order, in batches; retry failed batches."""
        self._busy = True
        try:
            retry, self._retry = self._retry, []
            for batch, attempts in retry:
                self._write(batch, attempts)
            while self._queue:
                batch = []
                while self._queue and len(batch) < max_items:
                    batch.append(self._queue.popleft())
                self._write(batch, 0)
        finally:
            self._busy = False

    def _write(self, batch: list[tuple[Any, ...]], attempts: int) -> None:
        start = 0
        while start < len(batch):  # consecutive runs of one kind keep predictions before their outcomes
            is_outcome = batch[start][0] is None
            end = start
            while end < len(batch) and (batch[end][0] is None) == is_outcome:
                end += 1
            run = batch[start:end]
            try:
                if is_outcome:
                    self.record_outcomes([item[1] for item in run])
                else:
                    self.store_predictions(run)
            except StoreError as exc:
                self._report(exc)
                if attempts + 1 < self.max_retries:
                    self._retry.append((batch[start:], attempts + 1))
                    return
                for item in run:
                    self._drop("outcome" if is_outcome else "prediction", f"store_{exc.kind}")
            except Exception as exc:  # noqa: BLE001 - never let the writer thread die
                self._report(exc)
                for item in run:
                    self._drop("outcome" if is_outcome else "prediction", "store_error")
            start = end

    def maintain(self) -> None:
        """Purge old predictions, retry held outcomes, snapshot scores for windowed ROC AUC."""
        try:
            for key in list(self._unsaved):
                info = self._versions[key]
                self.register(info.model, info.model_version, info.task, info.classes)
                self._unsaved.discard(key)
            self.store.purge()
            self.store_size = self.store.size()
            self._retry_pending()
            self.collector.snapshot()
        except Exception as exc:  # noqa: BLE001
            self._report(exc)

    # -- accounting -------------------------------------------------------------------------------

    def _drop(self, kind: str, reason: str, count: int = 1) -> None:
        self._dropped.labels(kind, reason).inc(count)

    def _count_fold(self, label: str, reason: str) -> None:
        from ..instruments import instruments_for  # noqa: PLC0415 - only when a label folds

        instruments_for(self.registry).label_overflow.labels(label, reason).inc()

    def _report(self, exc: BaseException) -> None:
        key = f"{type(exc).__name__}:{getattr(exc, 'kind', '')}"
        if key not in self._reported:
            self._reported.add(key)
            log.error("mlscope quality: %s (further errors of this kind are only counted)", exc)
