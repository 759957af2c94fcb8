"""Background sampling: each source runs in its own thread; scrapes read the last sample.

A slow or hung call (an NVML call can block for seconds) delays only its own
source: the other sources keep sampling, a scrape never waits, and the hung
source is reported by its health gauge and a ``timeout`` error once its
sample overruns ``timeout``. Values older than ``stale_after`` are no longer
served, so a dashboard shows a gap rather than a frozen reading.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..catalog import AnyMetricSpec

log = logging.getLogger("mlscope.resources")

Labels = tuple[str, ...]


class Sample:
    """The values of one collection pass: spec -> {label values -> value}, plus errors met on the way."""

    __slots__ = ("values", "errors", "dropped")

    def __init__(self) -> None:
        self.values: dict[AnyMetricSpec, dict[Labels, float]] = {}
        self.errors: list[str] = []
        self.dropped: Counter[str] = Counter()

    def add(self, spec: AnyMetricSpec, labels: Labels, value: float | None) -> None:
        """Record one series; ``None`` (no reading) is skipped."""
        if value is None:
            return
        if len(labels) != len(spec.labels):
            raise ValueError(f"{spec.name}: {len(labels)} label values for labels {spec.labels}")
        self.values.setdefault(spec, {})[labels] = float(value)

    def error(self, name: str) -> None:
        self.errors.append(name)

    def capped(self, label: str, items: Sequence[str], cap: int) -> Sequence[str]:
        """The first ``cap`` of ``items``; the rest are dropped and counted under ``label``."""
        if len(items) > cap:
            self.dropped[label] += len(items) - cap
            return items[:cap]
        return items

    def merge(self, other: Sample) -> None:
        for spec, series in other.values.items():
            self.values.setdefault(spec, {}).update(series)
        self.errors += other.errors
        self.dropped.update(other.dropped)

    def get(self, spec: AnyMetricSpec, *labels: str) -> float | None:
        return self.values.get(spec, {}).get(labels)


class Source(Protocol):
    """Something that reads resources: ``sample()`` may be slow and may raise."""

    name: str

    def sample(self) -> Sample: ...


@dataclass
class SourceState:
    """What the sampler knows about one source; read by the collector under the sampler's lock."""

    source: Source
    sample: Sample | None = None
    last_success_unix: float | None = None
    last_success_mono: float | None = None
    duration_s: float | None = None
    running_since: float | None = None
    ok: bool = False
    timed_out: bool = False
    errors: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Snapshot:
    """One source's state as a scrape sees it."""

    name: str
    sample: Sample | None
    up: bool
    errors: dict[str, int]
    dropped: dict[str, int]
    last_success_unix: float | None
    duration_s: float | None


class Sampler:
    """Samples every source every ``interval`` seconds in background threads."""

    def __init__(self, sources: Iterable[Source], interval: float = 5.0, timeout: float | None = None,
                 stale_after: float | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self.timeout = timeout if timeout is not None else max(2 * interval, 5.0)
        self.stale_after = stale_after if stale_after is not None else self.timeout + interval
        self.states = {source.name: SourceState(source) for source in sources}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._logged: set[tuple[str, str]] = set()

    # -- sampling -------------------------------------------------------------------------------

    def sample_once(self) -> None:
        """Sample every source once, in this thread (for ``--once``, tests and benchmarks)."""
        for state in self.states.values():
            self._run(state)

    def _run(self, state: SourceState) -> None:
        start = time.monotonic()
        with self._lock:
            state.running_since = start
        try:
            sample = state.source.sample()
        except Exception as exc:  # a failing source is reported, never raised
            self._failed(state, [type(exc).__name__], exc)
            return
        finally:
            with self._lock:
                state.running_since = None
                state.timed_out = False
        end = time.monotonic()
        with self._lock:
            state.sample = sample
            state.duration_s = end - start
            state.last_success_unix = time.time()
            state.last_success_mono = end
            state.ok = not sample.errors
            state.errors.update(sample.errors)
            state.dropped.update(sample.dropped)
        if sample.errors:
            self._log_once(state.source.name, sample.errors)

    def _failed(self, state: SourceState, errors: list[str], exc: BaseException | None = None) -> None:
        with self._lock:
            state.ok = False
            state.errors.update(errors)
        self._log_once(state.source.name, errors, exc)

    def _log_once(self, source: str, errors: list[str], exc: BaseException | None = None) -> None:
        for error in errors:
            if (source, error) not in self._logged:
                self._logged.add((source, error))
                log.warning("mlscope: resource collector %s: %s%s (counted in mlscope_resource_collector_errors_total;"
                            " logged once per kind)", source, error, f": {exc}" if exc else "")

    def _loop(self, state: SourceState) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            self._run(state)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - start)))

    def start(self) -> Sampler:
        """Start one daemon thread per source (idempotent)."""
        if not self._threads:
            self._stop.clear()
            for state in self.states.values():
                thread = threading.Thread(target=self._loop, args=(state,), daemon=True,
                                          name=f"mlscope-resources-{state.source.name}")
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the threads to stop; a thread stuck in a hung call is left behind (it is a daemon)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    @property
    def stuck(self) -> bool:
        """Whether a sampling thread is still inside a call after ``stop()``."""
        return any(thread.is_alive() for thread in self._threads)

    # -- reading --------------------------------------------------------------------------------

    def snapshot(self) -> list[Snapshot]:
        """Each source's last fresh sample and health, detecting hung samples. Never blocks on a source."""
        now = time.monotonic()
        out = []
        with self._lock:
            hung = []
            for name, state in self.states.items():
                if state.running_since is not None and now - state.running_since > self.timeout:
                    if not state.timed_out:
                        state.timed_out = True
                        state.errors["timeout"] += 1
                        hung.append(name)
                    state.ok = False
                fresh = state.last_success_mono is not None and now - state.last_success_mono <= self.stale_after
                out.append(Snapshot(name, state.sample if fresh else None, state.ok and fresh and not state.timed_out,
                                    dict(state.errors), dict(state.dropped), state.last_success_unix,
                                    state.duration_s))
        for name in hung:
            self._log_once(name, ["timeout"])
        return out
