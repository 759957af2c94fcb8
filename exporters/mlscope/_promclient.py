"""The one module that knows prometheus-client beyond its public API, and the per-registry memo.

Beyond the public API, it relies on ``prometheus_client.utils.floatToGoString``
(untyped; :func:`go_float`) and on these histogram internals (verified with
prometheus-client 0.26; ``tests/unit/test_promclient.py`` pins them): a histogram child keeps its bucket bounds in
``_upper_bounds`` (ascending, ``+Inf`` last), one value per bucket in
``_buckets`` (non-cumulative: ``observe(x)`` adds 1 to the first bucket whose
bound is >= x) and the sum in ``_sum``; each value has ``inc(amount)``, in
multiprocess mode too. prometheus-client has no public way to add many
observations at once; when these attributes are missing, :func:`add_to_histogram`
falls back to one public ``observe`` per value.
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.utils import floatToGoString

T = TypeVar("T")
_float_to_go_string: Callable[[float], str] = floatToGoString  # a typed view of an untyped function


def go_float(value: float) -> str:
    """A float as prometheus-client writes it in samples and ``le`` labels (``0.5``, ``1.0``, ``+Inf``)."""
    return _float_to_go_string(value)


def histogram_internals(child: Histogram) -> tuple[Any, Any, Any] | None:
    """``(upper bounds, bucket values, sum value)`` of a histogram child, or None if the client differs."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        return None
    return bounds, buckets, total


def add_to_histogram(child: Histogram, values: np.ndarray[Any, Any]) -> None:
    """Add many finite observations to a histogram child in O(buckets) updates (same result as ``observe``)."""
    internals = histogram_internals(child)
    if internals is None:
        for value in values.tolist():
            child.observe(value)
        return
    bounds, buckets, total = internals
    index = np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left")
    counts = np.bincount(index, minlength=len(bounds))
    for i in np.flatnonzero(counts).tolist():
        buckets[i].inc(int(counts[i]))
    total.inc(float(values.sum()))


class PerRegistry(Generic[T]):
    """One object per :class:`CollectorRegistry`, created on first use and forgotten with the registry.

    ``None`` means prometheus-client's default ``REGISTRY``. Thread-safe: two
    threads asking at once get the same object.
    """

    def __init__(self) -> None:
        self._objects: weakref.WeakKeyDictionary[CollectorRegistry, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, registry: CollectorRegistry | None, create: Callable[[CollectorRegistry], T]) -> T:
        """The registry's object; ``create(registry)`` makes it the first time."""
        registry = REGISTRY if registry is None else registry
        with self._lock:
            found = self._objects.get(registry)
            if found is None:
                found = self._objects[registry] = create(registry)
            return found

    def collector(self, registry: CollectorRegistry | None, create: Callable[[], T]) -> T:
        """The registry's collector; ``create()`` makes it and it is registered there the first time."""
        def make(target: CollectorRegistry) -> T:
            made = create()
            target.register(made)  # type: ignore[arg-type]  # T is a Collector here
            return made

        return self.get(registry, make)

    def find(self, registry: CollectorRegistry | None) -> T | None:
        """The registry's object if one was created, without creating it."""
        return self._objects.get(REGISTRY if registry is None else registry)


def remove_matching(metric: Any, labels: dict[str, str]) -> None:
    """Remove every child of a labelled metric whose labels include ``labels`` (prometheus-client's
    ``remove_by_labels`` where it has it, 0.22+; else its children map ``_metrics``, verified with 0.26)."""
    names = tuple(getattr(metric, "_labelnames", ()))
    if not labels or any(k not in names for k in labels):
        return
    remove_by_labels = getattr(metric, "remove_by_labels", None)
    if remove_by_labels is not None:
        remove_by_labels(labels)
        return
    positions = {names.index(k): v for k, v in labels.items()}
    for values in list(getattr(metric, "_metrics", {})):
        if all(values[i] == v for i, v in positions.items()):
            metric.remove(*values)
