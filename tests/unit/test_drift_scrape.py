"""What a scrape of a drift-enabled registry computes: counts into samples, nothing computable once, no snapshot."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from scipy import stats as scipy_stats

from mlscope import ModelMonitor
from mlscope.drift import ReferenceProfile, refresh_snapshots
from mlscope.drift import snapshots as snapshots_module
from support.drift_support import monitor_with, small_profile
from support.helpers import series, wait_until

INCOME = (("feature", "income"), ("model", "small"), ("model_version", "1"))


def test_a_scrape_neither_hashes_the_profile_nor_computes_a_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    computed: list[threading.Thread] = []
    content_hash = ReferenceProfile.content_hash

    def counting_hash(profile: ReferenceProfile) -> str:
        hashed.append(threading.current_thread().name)
        return content_hash.fget(profile)  # type: ignore[attr-defined]

    def counting_exact(*args: object) -> tuple[float, float, float, int]:
        computed.append(threading.current_thread())
        return (0.0, 1.0, 0.0, 0)

    monkeypatch.setattr(ReferenceProfile, "content_hash", property(counting_hash))
    monkeypatch.setattr(snapshots_module, "exact_statistics", counting_exact)
    profile = small_profile()
    registry = CollectorRegistry()
    monitor = monitor_with(profile, registry)
    assert len(hashed) == 1  # once, when the profile is attached
    rng = np.random.default_rng(0)
    for _ in range(5):
        monitor.record_feature_batch({"income": rng.lognormal(10, 0.5, 200), "age": rng.normal(40, 10, 200)})
        generate_latest(registry)
    assert len(hashed) == 1
    assert threading.current_thread() not in computed  # no scrape computed a snapshot
    refresh_snapshots(registry)
    assert computed.count(threading.current_thread()) == 2  # income and age (the output's ring is empty)


def test_the_background_thread_publishes_snapshots_within_the_interval() -> None:
    profile = small_profile()
    registry = CollectorRegistry()
    monitor = ModelMonitor("small", "1", registry=registry)
    monitor.attach_profile(profile, snapshot_interval=0.2)
    values = np.random.default_rng(1).lognormal(10.2, 0.5, 500)
    monitor.record_feature_batch({"income": values})
    start = time.monotonic()
    exposed = wait_until(lambda: (s := series(registry)).get(("mlscope_drift_snapshot_values", INCOME)) and s,
                         timeout=8, interval=0.05)
    assert time.monotonic() - start < 5.0  # the interval plus one tick (0.4 s), well before the 10 s default
    sample = np.asarray(profile.features[0].sample)
    assert exposed[("mlscope_drift_snapshot_ks_statistic", INCOME)] == pytest.approx(
        scipy_stats.ks_2samp(values, sample).statistic, rel=1e-12)
    more = np.random.default_rng(2).lognormal(10.2, 0.5, 300)
    monitor.record_feature_batch({"income": more})
    wait_until(lambda: series(registry)[("mlscope_drift_snapshot_values", INCOME)] == 800, timeout=8, interval=0.05)


def test_snapshot_interval_must_be_positive() -> None:
    monitor = monitor_with(small_profile(), CollectorRegistry())
    with pytest.raises(ValueError, match="snapshot_interval"):
        monitor.attach_profile(small_profile(), snapshot_interval=0)
