"""A logging handler that ships JSON lines to Loki without ever blocking the caller.

The caller formats the record (JSON, privacy applied) and appends it to a
bounded in-memory queue: nothing else happens on the logging thread. A
batcher thread groups queued lines into push bodies and hands them to the
spool (memory, then disk); a sender thread pushes the oldest body, retrying
429/5xx/timeouts with exponential backoff (honouring ``Retry-After``) and
dropping bodies Loki rejects with another 4xx (counted by reason).
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from ..catalog.logs import LOG_APP
from ..labels import LabelGuard
from .formatter import JsonFormatter, json_line, utf8_text
from .metrics import log_metrics
from .payload import Entry, Labels, OversizeAction, encode, fit_line, group
from .privacy import Privacy
from .spool import Spool
from .timestamps import record_time_ns
from .transport import HttpTransport

# The only stream labels: a bounded set, never a request id.
STREAM_LABELS = ("app", "env", "model", "model_version", "level")
LOKI_MAX_LINE_BYTES = 256 * 1024

log = logging.getLogger("mlscope.logs")


class LokiHandler(logging.Handler):
    """Ship records to Loki as JSON lines, batched, bounded, retried, spilled to disk.

    Stream labels are ``app``, ``env`` (static), ``model``, ``model_version``
    (from the record's ``extra``, capped per handler) and ``level``; the
    request id and everything else stay in the line. ``structured_metadata``
    names fields also sent as Loki structured metadata (Loki 3 with
    ``allow_structured_metadata``). With ``spool_dir`` set, batches that
    cannot be sent go to disk (up to ``spool_bytes``) and survive a restart.
    ``close()`` (also run at interpreter exit) waits at most
    ``shutdown_timeout`` seconds for delivery, then spools what is left.
    """

    def __init__(self, url: str | HttpTransport, *, app: str = LOG_APP, env: str = "",
                 name: str = "loki", privacy: Privacy | None = None,
                 static_fields: Mapping[str, Any] | None = None,
                 structured_metadata: Iterable[str] = (),
                 queue_lines: int = 10_000, batch_lines: int = 1_000, batch_bytes: int = 1 << 20,
                 flush_interval: float = 1.0, memory_bytes: int = 16 << 20,
                 spool_dir: str | Path | None = None, spool_bytes: int = 256 << 20,
                 max_line_bytes: int = LOKI_MAX_LINE_BYTES, oversize: OversizeAction = "truncate",
                 min_backoff: float = 0.5, max_backoff: float = 30.0, max_retry_after: float = 300.0,
                 shutdown_timeout: float = 5.0, registry: CollectorRegistry | None = None,
                 level: int = logging.NOTSET) -> None:
        super().__init__(level)
        if max_line_bytes < 1024:
            raise ValueError(f"max_line_bytes must be at least 1024, got {max_line_bytes}")
        if oversize not in ("truncate", "split"):
            raise ValueError(f"oversize must be 'truncate' or 'split', got {oversize!r}")
        self.name = name
        self.transport = url if isinstance(url, HttpTransport) else HttpTransport(url)
        self.setFormatter(JsonFormatter(static=static_fields, privacy=privacy))
        self._static_labels: Labels = tuple((k, v) for k, v in (("app", app), ("env", env)) if v)
        self._guard = LabelGuard()
        self._labels: dict[tuple[Any, Any, str], Labels] = {}
        self._metadata_keys = tuple(structured_metadata)
        self._queue: deque[tuple[Labels, Entry]] = deque()
        self._queue_lines, self._batch_lines, self._batch_bytes = queue_lines, batch_lines, batch_bytes
        self._flush_interval = flush_interval
        self._max_line_bytes, self._oversize = max_line_bytes, oversize
        self._backoff = (min_backoff, max_backoff, max_retry_after)
        self.shutdown_timeout = shutdown_timeout
        self._metrics = log_metrics(registry)
        self._sent = self._metrics.sent.labels(name)
        self._spool = Spool(spool_dir, memory_bytes=memory_bytes, disk_bytes=spool_bytes, on_drop=self._drop,
                            suffix="json" if self.transport.encoding == "json" else "pb")
        self._wake = threading.Event()
        self._batch_lock = threading.Lock()  # held while lines are between the queue and the spool
        self._failing = False           # the last push failed and will be retried
        self._closed = False
        self._metrics.depth.handlers.add(self)
        _live.add(self)
        self._start_threads()

    # -- the caller's side: format and enqueue, nothing else ----------------------------------------

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # logging's name
        if not isinstance(fmt, JsonFormatter):
            raise TypeError("LokiHandler formats with a mlscope.logs.JsonFormatter (stream labels and "
                            "structured metadata come from its fields)")
        super().setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._closed:
                self._drop(1, "closed")
                return
            fields = self.formatter.fields(record)  # type: ignore[union-attr]
            key = (fields["model"], fields["model_version"], fields["level"])
            labels = self._labels.get(key)
            if labels is None:
                labels = self._stream_labels(key)
            metadata = tuple((k, utf8_text(str(fields[k]))) for k in self._metadata_keys
                             if fields.get(k) is not None) if self._metadata_keys else ()
            queue = self._queue
            if len(queue) >= self._queue_lines:
                self._drop(1, "queue_full")
                return
            line, escaped = json_line(fields)
            if escaped:  # a label or metadata value with a lone surrogate is in the line too: counted here
                self._metrics.escaped.labels(self.name, "lone_surrogate").inc()
            queue.append((labels, (record_time_ns(record.created), line, metadata)))
            if len(queue) >= self._batch_lines:
                self._wake.set()
        except Exception:  # logging must never raise into the service
            self._drop(1, "encode_error")

    def _stream_labels(self, key: tuple[Any, Any, str]) -> Labels:
        model, version, level = key
        labels = list(self._static_labels)
        if model is not None:
            labels.append(("model", utf8_text(self._guard.admit("model", model))))
        if version is not None:
            labels.append(("model_version", utf8_text(self._guard.admit("model_version", version))))
        labels.append(("level", level))
        found = tuple(labels)
        if len(self._labels) < 10_000:
            self._labels[key] = found
        return found

    # -- background: batcher and sender -------------------------------------------------------------

    def _start_threads(self) -> None:
        self._stop = threading.Event()
        for target, role in ((self._batch_loop, "batcher"), (self._send_loop, "sender")):
            threading.Thread(target=target, name=f"mlscope-loki-{role}", daemon=True).start()

    def _batch_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._drain_queue()

    def _drain_queue(self) -> None:
        """Move everything queued into the spool, as batches of bounded lines and bytes."""
        with self._batch_lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        queue, pending, size = self._queue, [], 0
        while queue:
            try:
                labels, (ts, line, metadata) = queue.popleft()
            except IndexError:
                break
            parts = fit_line(line, self._max_line_bytes, self._oversize)
            if len(parts) > 1 or parts[0] is not line:
                self._metrics.oversize.labels(self.name, "split" if len(parts) > 1 else "truncated").inc()
            for offset, part in enumerate(parts):  # split parts get consecutive nanoseconds, in order
                pending.append((labels, (ts + offset, part, metadata)))
                size += len(part) + 40
            if len(pending) >= self._batch_lines or size >= self._batch_bytes:
                self._spool_batch(pending)
                pending, size = [], 0
        if pending:
            self._spool_batch(pending)

    def _spool_batch(self, pending: list[tuple[Labels, Entry]]) -> None:
        """Encode and spool a batch; an entry that cannot be encoded is dropped alone, counted."""
        try:
            body = encode(group(pending), self.transport.encoding)
        except Exception:
            kept = [item for item in pending if self._encodes(item)]
            self._drop(len(pending) - len(kept), "encode_error")
            if 0 < len(kept) < len(pending):
                self._spool_batch(kept)  # each of these encodes alone
            elif kept:  # every entry encodes alone but not together: nothing left to isolate
                self._drop(len(kept), "encode_error")
            return
        self._spool.put(body, len(pending))

    def _encodes(self, item: tuple[Labels, Entry]) -> bool:
        try:
            encode(group([item]), self.transport.encoding)
        except Exception:
            return False
        return True

    def _send_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            batch = self._spool.head(timeout=0.5)
            if batch is None:
                continue
            result = self.transport.push(batch.body or b"")
            if result.ok:
                attempt, self._failing = 0, False
                if self._spool.pop(batch):
                    self._sent.inc(batch.lines)
            elif result.retry:
                attempt += 1
                self._failing = True
                self._metrics.retries.labels(self.name, result.reason).inc()
                self._stop.wait(self._delay(attempt, result.retry_after))
            else:
                attempt, self._failing = 0, False
                if self._spool.pop(batch):
                    self._drop(batch.lines, result.reason)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; a server's ``Retry-After`` is honoured up to its cap."""
        low, high, cap = self._backoff
        delay = min(high, low * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, cap))
        return delay

    def _drop(self, lines: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            self._metrics.dropped.labels(self.name, reason).inc(lines)

    # -- state, flush, shutdown ---------------------------------------------------------------------

    def queue_lines(self) -> int:
        return len(self._queue) + self._spool.memory_lines

    def spool_bytes(self) -> int:
        return self._spool.disk_bytes

    def flush(self) -> None:
        """Hand queued lines to the spool now (no wait for delivery: see :meth:`drain`)."""
        self._wake.set()

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until every queued line was pushed (or given up); True if so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._wake.set()
            with self._batch_lock:
                if not self._queue and self._spool.empty:
                    return True
            if self._failing and self._closed and self._spool.directory is not None:
                return False  # Loki is down and the disk keeps the lines: do not spend the shutdown budget
            time.sleep(0.02)
        return False

    def close(self) -> None:
        """Stop accepting lines, push what is queued within ``shutdown_timeout``, spool the rest to disk."""
        if self._closed:
            return
        self._closed = True
        try:
            self._drain_queue()
            self.drain(self.shutdown_timeout)
            self._stop.set()
            dropped = self._spool.persist()
            if dropped:
                self._drop(dropped, "shutdown")
            self._spool.wake()
            self._spool.close()
            self.transport.close()
        finally:
            super().close()

    def _after_fork(self) -> None:
        """In a forked child: fresh queue and threads; the disk spool stays the parent's."""
        self._queue = deque()
        self._wake, self._batch_lock = threading.Event(), threading.Lock()
        self._spool.detach_disk()
        self.transport.forget_connection()
        if not self._closed:
            self._start_threads()


_live: weakref.WeakSet[LokiHandler] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Interpreter exit: close every live handler (each bounded by its shutdown_timeout)."""
    for handler in list(_live):
        with contextlib.suppress(Exception):
            handler.close()


def _reset_after_fork() -> None:
    for handler in list(_live):
        handler._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
