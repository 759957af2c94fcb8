"""Streaming drift in the monitor: single rows and batches agree, bad input is counted, limits hold."""
from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from mlscope.drift import refresh_snapshots, series_count
from support.drift_support import drift_series, monitor_with, small_profile
from support.helpers import exposition, promtool_check_metrics, require_binary


def test_exposition_is_valid_and_its_size_is_what_the_budget_counts() -> None:
    require_binary("promtool")
    registry = CollectorRegistry()
    monitor = monitor_with(small_profile(), registry, task="classification")
    monitor.record_batch(np.zeros(300), scores=np.random.default_rng(2).random(300),
                         features={"income": np.full(300, 3e4), "age": np.full(300, 30.0),
                                   "plan": np.array(["basic"] * 300)})
    refresh_snapshots(registry)  # the exact snapshots are computed off the scrape path; the budget counts them
    result = promtool_check_metrics(exposition(registry))
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    assert len(drift_series(registry)) == series_count(monitor._drift)
