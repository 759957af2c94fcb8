"""What mlscope relies on in prometheus-client beyond its public API (``mlscope._promclient``).

The reference is prometheus-client itself: the same values observed one by
one with the public ``observe`` must give the same exposition.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest

from mlscope._promclient import PerRegistry, add_to_histogram, go_float, histogram_internals

BUCKETS = (-1.0, 0.0, 0.25, 0.5, 1.0, 10.0)
# Every bucket bound exactly (a bound belongs to its own bucket), values between, beyond the last bound.
VALUES = np.array([-5.0, -1.0, 0.0, 0.1, 0.25, 0.25, 0.3, 0.5, 0.9999, 1.0, 3.0, 10.0, 11.0, 1e9])


def exposition(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("h_seconds", "h", ["model"], buckets=BUCKETS, registry=registry)


def test_checked_version_range() -> None:
    """The internals below were verified with this range; re-check them before widening it."""
    major, minor = (int(part) for part in version("prometheus-client").split(".")[:2])
    assert (0, 20) <= (major, minor) <= (0, 26)


def test_histogram_children_have_the_internals_relied_on() -> None:
    child = histogram(CollectorRegistry()).labels("m")
    internals = histogram_internals(child)
    assert internals is not None
    bounds, buckets, total = internals
    assert list(bounds) == [*BUCKETS, float("inf")] and len(buckets) == len(bounds)
    child.observe(0.25)
    assert [b.get() for b in buckets] == [0, 0, 1, 0, 0, 0, 0] and total.get() == 0.25  # non-cumulative


@pytest.mark.parametrize("values", [VALUES, np.full(1000, 0.5), np.array([7.0])])
def test_adding_by_bucket_equals_observing_each_value(values: np.ndarray) -> None:
    bulk, single = CollectorRegistry(), CollectorRegistry()
    add_to_histogram(histogram(bulk).labels("m"), values)
    child = histogram(single).labels("m")
    for value in values.tolist():
        child.observe(value)
    assert exposition(bulk) == exposition(single)
    assert bulk.get_sample_value("h_seconds_count", {"model": "m"}) == len(values)


def test_falls_back_to_observe_when_the_internals_are_missing() -> None:
    class Plain:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    plain = Plain()
    add_to_histogram(plain, VALUES)  # type: ignore[arg-type]
    assert plain.seen == VALUES.tolist()


def test_multiprocess_mode_adds_the_same_as_observe(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import numpy as np, sys
        from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
        from mlscope._promclient import add_to_histogram
        values = np.array(%r)
        bulk = Histogram("bulk_seconds", "h", buckets=%r)
        one = Histogram("one_seconds", "h", buckets=%r)
        add_to_histogram(bulk, values)
        for v in values.tolist():
            one.observe(v)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        sys.stdout.write(generate_latest(registry).decode())
    """) % (VALUES.tolist(), BUCKETS, BUCKETS)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    lines = sorted(line for line in out.splitlines() if not line.startswith("#"))
    bulk = [line.replace("bulk_seconds", "X") for line in lines if line.startswith("bulk_seconds")]
    one = [line.replace("one_seconds", "X") for line in lines if line.startswith("one_seconds")]
    assert bulk == one and any('le="+Inf"} 14.0' in line for line in bulk)


@pytest.mark.parametrize(("value", "text"), [(0.5, "0.5"), (1, "1.0"), (10.0, "10.0"), (float("inf"), "+Inf"),
                                             (-1.0, "-1.0"), (0.005, "0.005")])
def test_go_float_writes_le_values_like_the_exposition(value: float, text: str) -> None:
    assert go_float(value) == text


def test_per_registry_memo_gives_one_object_per_registry() -> None:
    memo: PerRegistry[object] = PerRegistry()
    first, second = CollectorRegistry(), CollectorRegistry()
    made: list[CollectorRegistry] = []

    def create(registry: CollectorRegistry) -> object:
        made.append(registry)
        return object()

    a = memo.get(first, create)
    assert memo.get(first, create) is a and memo.get(second, create) is not a and made == [first, second]
    assert memo.find(first) is a and memo.find(CollectorRegistry()) is None
    assert memo.get(None, create) is memo.find(REGISTRY) is not None


def test_per_registry_memo_forgets_a_collected_registry() -> None:
    class Thing:
        pass

    memo: PerRegistry[Thing] = PerRegistry()
    registry = CollectorRegistry()
    thing = weakref.ref(memo.get(registry, lambda r: Thing()))
    gc.collect()
    assert thing() is not None  # kept while the registry lives
    del registry
    gc.collect()
    assert thing() is None


def test_per_registry_memo_creates_once_under_concurrency() -> None:
    memo: PerRegistry[object] = PerRegistry()
    registry = CollectorRegistry()
    calls: list[int] = []
    start = threading.Barrier(8)
    results: list[object] = []

    def create(_: CollectorRegistry) -> object:
        calls.append(1)
        return object()

    def worker() -> None:
        start.wait()
        results.append(memo.get(registry, create))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1
