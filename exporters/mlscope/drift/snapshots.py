"""Exact drift snapshots (KS with its p-value, Wasserstein-1) computed off the scrape path.

A daemon thread per drift collector recomputes, at most every ``snapshot_interval`` seconds per
model version (10 s by default), the statistics of each numeric feature whose recent values
changed; a scrape only reads the last results. A published snapshot therefore describes the
values recorded up to ``snapshot_interval`` + one second (the thread's tick) + one computation
before the scrape. :meth:`Snapshots.refresh` computes them at once. After a fork (gunicorn), the
next scrape or attach starts the thread again in the child.
"""
from __future__ import annotations

import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from .exact import exact_statistics
from .tracker import DriftTracker

MIN_SNAPSHOT_VALUES = 30
MAX_TICK_S = 1.0
Exact = dict[int, tuple[float, float, float, int]]  # feature index -> (KS, p-value, Wasserstein, values)


@dataclass
class _State:
    """What was last computed for one model version, and from how many writes of each ring."""

    seen: dict[int, int] = field(default_factory=dict)
    results: Exact = field(default_factory=dict)
    at: float = -math.inf


class Snapshots:
    """The exact statistics of every tracker ``trackers()`` returns, refreshed by a background thread."""

    def __init__(self, trackers: Callable[[], list[DriftTracker]],
                 report_error: Callable[[str, BaseException], None]) -> None:
        self._trackers = trackers
        self._report_error = report_error
        self._states: dict[DriftTracker, _State] = {}
        self._refresh_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def results(self, tracker: DriftTracker) -> Exact:
        """The last statistics computed for ``tracker`` (empty before the first computation)."""
        state = self._states.get(tracker)
        return {} if state is None else state.results

    def refresh(self, *, due_only: bool = False) -> None:
        """Compute the statistics of every ring written since the last computation (``due_only``: only
        for versions whose interval has passed)."""
        with self._refresh_lock:
            now = time.monotonic()
            trackers = self._trackers()
            self._states = {t: self._states.get(t) or _State() for t in trackers}
            for tracker in trackers:
                state = self._states[tracker]
                if due_only and now - state.at < tracker.snapshot_interval:
                    continue
                try:
                    if _update(tracker, state):
                        state.at = now
                except Exception as exc:
                    self._report_error("drift_snapshot", exc)

    def tick(self) -> float:
        """Seconds between the thread's checks: the shortest interval, at most one second."""
        return min([MAX_TICK_S] + [t.snapshot_interval for t in self._trackers()])

    def ensure_running(self) -> None:
        """Start the background thread, or start it again in a forked child."""
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            thread = threading.Thread(target=_run, args=(weakref.ref(self),), name="mlscope-drift-snapshots",
                                      daemon=True)
            thread.start()
            self._thread, self._pid = thread, os.getpid()


def _update(tracker: DriftTracker, state: _State) -> bool:
    """Recompute the features whose ring changed; False when none did."""
    changed = tracker.recent_values(state.seen)
    if not changed:
        return False
    results = dict(state.results)
    for index, (writes, values) in changed.items():
        state.seen[index] = writes
        if values.size < MIN_SNAPSHOT_VALUES:
            results.pop(index, None)
        else:
            feature = tracker.specs[index].feature  # the sample stands for every present reference value
            results[index] = exact_statistics(values, tracker.specs[index].sample, feature.present)
    state.results = results  # one assignment: a concurrent scrape reads the old or the new dict
    return True


def _run(ref: weakref.ref[Snapshots]) -> None:
    """The thread: refresh what is due, then sleep a tick; ends when its collector is gone."""
    while True:
        snapshots = ref()
        if snapshots is None:
            return
        snapshots.refresh(due_only=True)
        tick = snapshots.tick()
        del snapshots
        time.sleep(tick)
