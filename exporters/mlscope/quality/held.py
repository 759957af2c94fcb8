"""Outcomes that arrived before their prediction was stored, held for a while (bounded)."""
from __future__ import annotations

import threading
import time

from .items import Outcome

Held = tuple[Outcome, float]  # the outcome and when it was held (monotonic seconds)


class HeldOutcomes:
    """At most ``max_held`` outcomes by request id, each for ``ttl_s`` seconds (0: none are held)."""

    def __init__(self, ttl_s: float, max_held: int) -> None:
        self.ttl_s = ttl_s
        self.max_held = max_held
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, request_id: str, outcome: Outcome) -> str | None:
        """Hold the outcome; returns None when held, else why not (duplicate, pending_full, unknown_request)."""
        if self.ttl_s <= 0:
            return "unknown_request"
        with self._lock:
            if request_id in self._held:
                return "duplicate"
            if len(self._held) >= self.max_held:
                return "pending_full"
            self._held[request_id] = (outcome, time.monotonic())
            return None

    def take(self, ids: set[str] | None = None) -> tuple[dict[str, Held], float]:
        """Remove and return the outcomes of ``ids`` (every one when None) and those held too long.

        Also returns the deadline: an outcome held before it has waited ``ttl_s``.
        """
        deadline = time.monotonic() - self.ttl_s
        with self._lock:
            chosen = {rid: item for rid, item in self._held.items()
                      if ids is None or rid in ids or item[1] < deadline}
            for rid in chosen:
                del self._held[rid]
        return chosen, deadline

    def restore(self, items: dict[str, Held]) -> None:
        """Hold again outcomes taken out (their original holding time kept)."""
        with self._lock:
            for rid, item in items.items():
                self._held.setdefault(rid, item)
