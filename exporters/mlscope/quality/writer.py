"""The background writer: a bounded queue of predictions and outcomes, written in batches, retried.

The request path only appends to a deque (:class:`Sink`); a daemon thread
writes what is queued every ``flush_interval_s``, in order, and runs the
maintenance callback every ``maintenance_interval_s``.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .accounting import Accounting
from .items import Outcome, OutcomeItem, PredictionItem, QueueItem
from .join import Joiner
from .store import StoreError


class Writer:
    """Writes queued items through the joiner; a failed batch is retried ``max_retries`` times in all."""

    def __init__(self, joiner: Joiner, accounting: Accounting, maintain: Callable[[], None], *,
                 queue_size: int, flush_interval_s: float, maintenance_interval_s: float,
                 max_retries: int) -> None:
        self.joiner = joiner
        self.accounting = accounting
        self.maintain = maintain
        self.queue_size = queue_size
        self.flush_interval_s = flush_interval_s
        self.maintenance_interval_s = maintenance_interval_s
        self.max_retries = max_retries
        self.queue: deque[QueueItem] = deque()
        self._retry: list[tuple[list[QueueItem], int]] = []
        self._busy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- queueing (never blocks, never raises) ---------------------------------------------------

    def room(self) -> int:
        return max(0, self.queue_size - len(self.queue))

    def put_outcome(self, outcome: Outcome) -> None:
        if len(self.queue) >= self.queue_size:
            self.accounting.drop("outcome", "queue_full")
            return
        self.queue.append(OutcomeItem(outcome))

    # -- the thread -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mlscope-quality", daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue and not self._busy and not self._retry:
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
            while self.queue:
                batch = []
                while self.queue and len(batch) < max_items:
                    batch.append(self.queue.popleft())
                self._write(batch, 0)
        finally:
            self._busy = False

    def _write(self, batch: list[QueueItem], attempts: int) -> None:
        start = 0
        while start < len(batch):  # consecutive runs of one kind keep predictions before their outcomes
            kind = type(batch[start])
            end = start
            while end < len(batch) and type(batch[end]) is kind:
                end += 1
            run = batch[start:end]
            label = "outcome" if kind is OutcomeItem else "prediction"
            try:
                if kind is OutcomeItem:
                    self.joiner.record_outcomes([item.outcome for item in run if isinstance(item, OutcomeItem)])
                else:
                    self.joiner.store_predictions([item for item in run if isinstance(item, PredictionItem)])
            except StoreError as exc:
                self.accounting.report(exc)
                if attempts + 1 < self.max_retries:
                    self._retry.append((batch[start:], attempts + 1))
                    return
                self.accounting.drop(label, f"store_{exc.kind}", len(run))
            except Exception as exc:  # never let the writer thread die
                self.accounting.report(exc)
                self.accounting.drop(label, "store_error", len(run))
            start = end


class Sink:
    """The monitor's handle on the quality store: one deque append per prediction."""

    __slots__ = ("key", "_writer")

    def __init__(self, writer: Writer, key: tuple[str, str]) -> None:
        self.key = key
        self._writer = writer

    def put(self, request_id: str, output: Any, proba: Any = None, segment: Any = None) -> None:
        writer = self._writer
        if len(writer.queue) >= writer.queue_size:
            writer.accounting.drop("prediction", "queue_full")
            return
        writer.queue.append(PredictionItem(self.key, request_id, time.time(), output, proba, segment))

    def put_many(self, request_ids: Any, outputs: Any, proba: Any = None, segments: Any = None) -> bool:
        """Queue a batch (rows of ``proba`` aligned with ``outputs``); False when the lengths differ."""
        ids, outs = list(request_ids), np.asarray(outputs).tolist()
        n = len(ids)
        if len(outs) != n or (proba is not None and len(proba) != n) or (segments is not None
                                                                          and len(segments) != n):
            return False
        writer = self._writer
        room = writer.room()
        if n > room:
            writer.accounting.drop("prediction", "queue_full", n - room)
        now, key = time.time(), self.key
        segs = segments if segments is not None else [None] * n
        probs = proba if proba is not None else [None] * n
        writer.queue.extend(PredictionItem(key, ids[i], now, outs[i], probs[i], segs[i]) for i in range(min(n, room)))
        return True
