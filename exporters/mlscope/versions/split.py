"""A model's traffic split: which version serves each request, changed at run time (a rollback)."""
from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge

from .._promclient import PerRegistry
from ..catalog import versions as cat

log = logging.getLogger("mlscope.versions")
_weights: PerRegistry[Gauge] = PerRegistry()


class UnknownVersion(KeyError):
    """A version the split does not route to."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown version"


@dataclass(frozen=True)
class Change:
    """One change of a split: the weights after it, why (``reason``), for which alert (``fingerprint``), when."""

    weights: dict[str, float]
    changed: bool
    reason: str
    fingerprint: str
    at: float = field(default_factory=time.time)


def _checked(weights: Mapping[str, float]) -> dict[str, float]:
    clean = {}
    for version, weight in weights.items():
        if not isinstance(version, str) or not version:
            raise ValueError(f"a traffic split's versions are non-empty strings, got {version!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight < 0:
            raise ValueError(f"the weight of version {version!r} must be a finite number >= 0, got {weight!r}")
        clean[version] = float(weight)
    if not clean or sum(clean.values()) <= 0:
        raise ValueError("a traffic split needs at least one version with a weight above 0")
    return clean


def _normalised(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {v: w / total for v, w in weights.items()}


class TrafficSplit:
    """Weights of ``model``'s versions; :meth:`pick` chooses the version of one request (thread-safe).

    Each version's share is published as ``mlscope_traffic_weight_ratio`` on ``registry`` (the default
    one unless given). :meth:`rollback` sends a candidate's share to the baseline; it is idempotent.
    """

    def __init__(self, model: str, weights: Mapping[str, float], *, registry: CollectorRegistry | None = None,
                 seed: int | None = None) -> None:
        self.model = model
        self._weights = _checked(weights)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._gauge = _weights.get(registry, cat.TRAFFIC_WEIGHT.create)
        self.changes: list[Change] = []
        self._publish()

    def pick(self) -> str:
        """The version that serves the next request."""
        with self._lock:
            versions, weights = list(self._weights), list(self._weights.values())
            return self._rng.choices(versions, weights)[0]

    def shares(self) -> dict[str, float]:
        """Each version's share of requests (weights normalised to sum 1)."""
        with self._lock:
            return _normalised(self._weights)

    def set_weights(self, weights: Mapping[str, float], *, reason: str = "set", fingerprint: str = "") -> Change:
        """Set the weights: every version named must be one of the split's; a version not named gets 0 (a
        body naming one version sends all traffic to it, it never merges with the weights in place)."""
        clean = _checked(weights)
        unknown = sorted(set(clean) - set(self._weights))
        if unknown:
            raise UnknownVersion(f"{self.model} has no version {', '.join(unknown)} in its split "
                                 f"(versions: {', '.join(self._weights)})")
        with self._lock:
            new = {v: clean.get(v, 0.0) for v in self._weights}
            changed = _normalised(new) != _normalised(self._weights)  # the shares: {"1": 5} is {"1": 1}
            self._weights = new
        return self._record(changed, reason, fingerprint)

    def rollback(self, candidate: str, baseline: str, *, fingerprint: str = "") -> Change:
        """Send ``candidate``'s traffic to ``baseline`` (``changed`` False when it had none already)."""
        with self._lock:
            missing = [v for v in (candidate, baseline) if v not in self._weights]
            if missing or candidate == baseline:
                raise UnknownVersion(f"{self.model}: cannot roll {candidate} back to {baseline} "
                                     f"(versions in the split: {', '.join(self._weights)})")
            moved = self._weights[candidate]
            self._weights[baseline] += moved
            self._weights[candidate] = 0.0
        return self._record(moved > 0, f"rollback {candidate} -> {baseline}", fingerprint)

    def replace(self, old: str, new: str, *, reason: str = "replaced", fingerprint: str = "") -> Change:
        """``new`` takes ``old``'s place and share (a retrained version in place of the one it replaces);
        ``old``'s weight series goes."""
        with self._lock:
            if old not in self._weights or new in self._weights:
                raise UnknownVersion(f"{self.model}: cannot replace {old} by {new} "
                                     f"(versions in the split: {', '.join(self._weights)})")
            self._weights = {new if v == old else v: w for v, w in self._weights.items()}
        self._gauge.remove(self.model, old)
        return self._record(True, f"{old} replaced by {new}" + (f" ({reason})" if reason else ""), fingerprint)

    def _record(self, changed: bool, reason: str, fingerprint: str) -> Change:
        change = Change(self.shares(), changed, reason, fingerprint)
        self.changes.append(change)
        self._publish()
        log.warning("traffic split of %s %s (%s; alert fingerprint %s): %s", self.model,
                    "changed" if changed else "unchanged", reason, fingerprint or "none", change.weights)
        return change

    def _publish(self) -> None:
        for version, share in self.shares().items():
            self._gauge.labels(self.model, version).set(share)
