"""Snapshots off the notification path: the receiver hands each state-changing notification to
:meth:`SnapshotWorker.submit`, which never blocks; one background thread builds and writes the pages.

Per page name (a group and its start: :mod:`mlscope.reports.ids`), at most one write per ``min_interval_s`` while
its status stays the same (a duplicate from an Alertmanager pair, a repeat); a change of status (fired, then
resolved) always rewrites it, and a new name always gets its page, so every link a notification carried leads to
one. A full queue drops the newest and counts it. Standard library only: the page builder is passed in.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from ..catalog import alerting as cat
from ..logs.privacy import Privacy
from .ids import page_id
from .store import RETENTION_S, PageStore

log = logging.getLogger("mlscope.reports")

Builder = Callable[[Mapping[str, Any]], str]  # a notification's payload -> the page's HTML
QUEUE_SIZE = 64
MIN_INTERVAL_S = 300.0
MAX_GROUPS = 10_000  # groups remembered for the rate limit


def status_of(payload: Mapping[str, Any]) -> str:
    """The group's status as a bounded label: ``resolved`` or ``firing``."""
    return "resolved" if payload.get("status") == "resolved" else "firing"


@dataclass
class SnapshotWorker:
    store: PageStore
    build: Builder
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    min_interval_s: float = MIN_INTERVAL_S
    queue_size: int = QUEUE_SIZE

    def __post_init__(self) -> None:
        self.written = cat.SNAPSHOTS.create(self.registry)
        self.skipped = cat.SNAPSHOTS_SKIPPED.create(self.registry)
        self.failures = cat.SNAPSHOT_FAILURES.create(self.registry)
        self.duration = cat.SNAPSHOT_DURATION.create(self.registry)
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(self.queue_size)
        self._last: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="mlscope-snapshots", daemon=True)
        self._thread.start()

    def submit(self, payload: Mapping[str, Any], at: float | None = None) -> bool:
        """Queue one notification's snapshot (never blocks); False when rate-limited or the queue is full."""
        now = time.monotonic() if at is None else at
        key, status = page_id(payload), status_of(payload)
        with self._lock:
            last = self._last.get(key)
            if last is not None and last[1] == status and now - last[0] < self.min_interval_s:
                self.skipped.labels("rate_limited").inc()
                return False
            try:
                self._queue.put_nowait(payload)
            except queue.Full:
                self.skipped.labels("queue_full").inc()
                log.warning("snapshot of group %s not built: the queue of %d is full", key, self.queue_size)
                return False
            if len(self._last) >= MAX_GROUPS:
                self._last.pop(next(iter(self._last)))
            self._last[key] = (now, status)
            self._pending += 1
        return True

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            began = time.perf_counter()
            try:
                self._one(payload)
            finally:
                self.duration.observe(time.perf_counter() - began)
                with self._done:
                    self._pending -= 1
                    self._done.notify_all()

    def _one(self, payload: Mapping[str, Any]) -> None:
        ident = page_id(payload)
        try:
            html = self.build(payload)
        except Exception:
            self.failures.labels("build").inc()
            log.exception("snapshot %s could not be built", ident)
            return
        try:
            self.store.write(ident, html, status_of(payload))
        except OSError as exc:
            self.failures.labels("write").inc()
            log.error("snapshot %s could not be written in %s: %s", ident, self.store.folder, exc)
            return
        self.written.labels(status_of(payload)).inc()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every queued snapshot is written (tests, shutdown)."""
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


def snapshot_worker(folder: Path, *, prometheus_url: str, loki_url: str = "", profile: str = "default",
                    privacy: Privacy | None = None, runbooks: Path | None = None, receiver_url: str = "",
                    registry: CollectorRegistry | None = None, retention_s: float = RETENTION_S,
                    min_interval_s: float = MIN_INTERVAL_S, timeout_s: float = 5.0,
                    log_files: tuple[Path, ...] = ()) -> SnapshotWorker:
    """The receiver's worker: pages in ``folder`` read from ``prometheus_url`` (and Loki, and the JSON-lines
    ``log_files`` of the lineage). Raises
    :class:`mlscope._runtime.MissingExtra` when the ``mlscope[reports]`` extra is not installed."""
    from .._runtime import require_extra
    from . import EXTRA, MODULES

    require_extra(EXTRA, "incident snapshots", *MODULES)

    def page(payload: Mapping[str, Any]) -> str:
        # Imported on the first page (matplotlib takes a second): a receiver that never pages never loads it.
        from .page import within_budget
        from .snapshot import build
        from .sources import Sources

        sources = Sources(prometheus_url, loki_url, profile, privacy, timeout_s, log_files)  # one outage a page
        return within_budget(build(payload, sources, runbooks=runbooks, receiver_url=receiver_url))

    return SnapshotWorker(PageStore(folder, retention_s), page, registry or CollectorRegistry(), min_interval_s)
