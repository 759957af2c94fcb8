"""Rows of suite `drift`: the scrape of a drift-enabled service against plain prometheus-client gauges.

Two versions x 20 numeric features with live traffic between scrapes and every exact snapshot
present, against one Gauge family with as many series and as many labels per series (4), both
rendered by ``generate_latest`` and timed alternately in the same run.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from common import Row
from mlscope import ModelMonitor


def _drift_service(rng: np.random.Generator) -> tuple[CollectorRegistry, Callable[[], None]]:
    from mlscope.drift import build_profile, refresh_snapshots

    names = [f"f{i}" for i in range(20)]
    reference = rng.normal(size=(20_000, 20))
    registry = CollectorRegistry()
    monitors = [ModelMonitor("bench", version, registry=registry,
                             reference=build_profile(reference, model="bench", model_version=version, columns=names))
                for version in ("1", "2")]

    def traffic() -> None:
        for monitor in monitors:
            monitor.record_feature_batch(rng.normal(size=(50, 20)))

    traffic()
    refresh_snapshots(registry)  # every snapshot series present, as in steady state
    return registry, traffic


def _plain_gauges(series: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    gauge = Gauge("plain_series", "Plain gauges.", ["model", "model_version", "feature", "bin"], registry=registry)
    for i in range(series):
        gauge.labels("bench", str(i % 2), f"f{i % 20}", str(i)).set(i * 0.5)
    return registry


def scrape_rows(quick: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    drift, traffic = _drift_service(rng)
    lines = [line for line in generate_latest(drift).decode().splitlines() if line and not line.startswith("#")]
    plain = _plain_gauges(len(lines))
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(30 if quick else 200):
        traffic()
        for registry, times in ((drift, ours), (plain, theirs)):
            start = time.perf_counter()
            generate_latest(registry)
            times.append((time.perf_counter() - start) * 1e3)
    case = f"scrape of a drift-enabled service, 2 versions x 20 features ({len(lines):,} series)"
    return [Row("drift", case + ", median", statistics.median(ours), "ms",
                "plain prometheus-client gauges, as many series", statistics.median(theirs), "<= 1.5x"),
            Row("drift", case + ", max", max(ours), "ms", "plain gauges, max", max(theirs))]
