"""Shadow agreement: a shadow model's answer compared with the served answer of the same request.

The served version's monitor keeps its recent answers (``ModelMonitor(shadow_pending=N)``), at most ``N`` and
for at most ``ttl_s`` seconds each, in request order; :meth:`ShadowAgreement.shadow` compares a shadow
version's answer with the one waiting under its request id: the same class (a classifier, labels normalised
as :func:`mlscope.labels.class_label` does) or values at most ``tolerance`` apart (regression). An answer
dropped unanswered is counted by reason; a shadow answer without a waiting served answer is counted as
invalid (``shadow_unknown_request``). Nothing here raises into the service.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from ._promclient import PerRegistry, remove_matching
from .catalog import versions as cat
from .labels import MAX_VALUE_LENGTH, OVERFLOW, LabelGuard, class_label

Answer = str | float
PAIR_SEPARATOR = " -> "


def valid_version(version: Any) -> bool:
    """A shadow version usable as a label value: a non-blank printable string of at most MAX_VALUE_LENGTH."""
    return (isinstance(version, str) and bool(version.strip()) and len(version) <= MAX_VALUE_LENGTH
            and version.isprintable())


class _Counters:
    """The shadow counters of one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.comparisons = cat.SHADOW_COMPARISONS.create(registry)
        self.disagreements = cat.SHADOW_DISAGREEMENTS.create(registry)
        self.evicted = cat.SHADOW_PENDING_EVICTED.create(registry)


_counters: PerRegistry[_Counters] = PerRegistry()


class ShadowAgreement:
    """Served answers of one model version waiting for shadow answers, and the agreement counters."""

    def __init__(self, model: str, model_version: str, *, regression: bool, registry: CollectorRegistry,
                 guard: LabelGuard, count_invalid: Callable[[str], None], capacity: int, ttl_s: float,
                 tolerance: float) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"shadow_pending must be a positive integer, got {capacity!r}")
        if not 0 < ttl_s < math.inf:
            raise ValueError(f"shadow_ttl_s must be a positive number of seconds, got {ttl_s!r}")
        if not 0 <= tolerance < math.inf:
            raise ValueError(f"shadow_tolerance must be a finite number >= 0, got {tolerance!r}")
        self.model, self.model_version, self.regression = model, model_version, regression
        self.capacity, self.ttl_s, self.tolerance = capacity, float(ttl_s), float(tolerance)
        self._guard, self._invalid = guard, count_invalid
        counters = _counters.get(registry, _Counters)
        self._counters = counters
        self._evicted = {r: counters.evicted.labels(model, model_version, r) for r in ("capacity", "expired")}
        self._pending: OrderedDict[str, tuple[float, Answer, set[str] | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._results: dict[str, tuple[Counter, Counter]] = {}
        self._pairs: dict[tuple[str, str, str], Counter] = {}

    def answer_of(self, output: Any) -> Answer | None:
        """``output`` as compared: a normalised class label, or a finite float (None when unusable)."""
        if not self.regression:
            return class_label(output)
        try:
            value = float(output)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    def served(self, request_id: str, output: Any) -> None:
        """Keep the served answer of ``request_id`` until shadows answer (or it is evicted)."""
        self.served_many(((request_id, output),))

    def served_many(self, answers: Iterable[tuple[str, Any]]) -> None:
        """Keep served answers (request id, output), in order: a batch's rows as single predictions'."""
        kept = [(rid, a) for rid, a in ((rid, self.answer_of(o)) for rid, o in answers) if a is not None]
        if not kept:
            return
        now = time.monotonic()
        expired = capacity = 0
        with self._lock:
            pending = self._pending
            for request_id, answer in kept:
                pending.pop(request_id, None)
                pending[request_id] = (now, answer, None)
            limit = now - self.ttl_s
            while pending:
                first = next(iter(pending.values()))
                if first[0] >= limit:
                    break
                expired += pending.popitem(last=False)[1][2] is None
            while len(pending) > self.capacity:
                capacity += pending.popitem(last=False)[1][2] is None
        if expired:
            self._evicted["expired"].inc(expired)
        if capacity:
            self._evicted["capacity"].inc(capacity)

    def pending(self) -> int:
        """Served answers waiting now."""
        return len(self._pending)

    def shadow(self, request_id: str, version: str, prediction: Any) -> bool | None:
        """Compare ``version``'s answer for ``request_id``; returns whether they agree (None: not compared)."""
        if not valid_version(version):
            self._invalid("shadow_version_invalid")
            return None
        answer = self.answer_of(prediction)
        if answer is None:
            self._invalid("shadow_answer_invalid")
            return None
        with self._lock:
            found = self._pending.get(request_id)
            if found is None or (found[2] is not None and version in found[2]):
                found = None
            else:
                answered = found[2] if found[2] is not None else set()
                answered.add(version)
                self._pending[request_id] = (found[0], found[1], answered)
        if found is None or time.monotonic() - found[0] > self.ttl_s:
            self._invalid("shadow_unknown_request")
            return None
        served = found[1]
        agree = (abs(float(served) - float(answer)) <= self.tolerance if self.regression
                 else served == answer)
        counters = self._results.get(version) or self._result_children(version)
        counters[0 if agree else 1].inc()
        if not agree and not self.regression:
            self._pair(version, str(served), str(answer)).inc()
        return agree

    def retire(self) -> None:
        """Remove the version's shadow series (comparisons, disagreement pairs, evictions) and its waiting answers."""
        with self._lock:
            self._pending.clear()
        self._results.clear()
        self._pairs.clear()
        for family in (self._counters.comparisons, self._counters.disagreements, self._counters.evicted):
            remove_matching(family, {"model": self.model, "model_version": self.model_version})

    def _result_children(self, version: str) -> tuple[Counter, Counter]:
        """Both results of a shadow version, created together (so each window's ratio has both at 0 first)."""
        shadow = self._guard.admit("shadow_version", version)
        family = self._counters.comparisons
        found = (family.labels(self.model, self.model_version, shadow, "agree"),
                 family.labels(self.model, self.model_version, shadow, "disagree"))
        if len(self._results) < self._guard.cap("shadow_version"):
            self._results[version] = found
        return found

    def _pair(self, version: str, served: str, shadow_class: str) -> Counter:
        key = (version, served, shadow_class)
        child = self._pairs.get(key)
        if child is None:
            admitted = self._guard.admit("class_pair", served + PAIR_SEPARATOR + shadow_class)
            if admitted != served + PAIR_SEPARATOR + shadow_class:  # folded: __overflow__ or __invalid__
                served = shadow_class = admitted
            child = self._counters.disagreements.labels(
                self.model, self.model_version, self._guard.admit("shadow_version", version), served, shadow_class)
            if len(self._pairs) < 4 * self._guard.cap("class_pair"):
                self._pairs[key] = child
        return child


__all__ = ["OVERFLOW", "ShadowAgreement"]
