"""The soak, short: from a first start, normal traffic raises no alert besides the Watchdog; an incident
injected once the windows are warm still fires (the warm-up guard delays alerts, it does not mute them).

85 s of normal traffic: every 15 s and 1 m window of the fast profile (serving, burn, drift, data quality,
realised and estimated quality, logs) fills and its guard turns warm, and `for` (5 s) passes on each, so a
false alarm of those alerts would have fired. The 5 m windows (the 6x burn, coverage, label delay) stay
warming up here: the 30-minute soak (`python benchmarks/run.py --suite soak`) covers them.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlscope.demo.service import MODEL, VERSION
from mlscope.rules.config import duration_seconds
from support.alerting_stack import FAST
from support.helpers import require_binary, wait_until
from support.soak import Soak, describe

NORMAL_S = 85.0


@pytest.fixture
def soak(tmp_path: Path) -> Iterator[Soak]:
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    running = Soak(tmp_path).start()
    yield running
    running.stop()


@pytest.mark.slow(seconds=95)
def test_normal_traffic_raises_nothing_but_the_watchdog_then_drift_fires(soak: Soak) -> None:
    assert duration_seconds(FAST.drift_windows[0]) + duration_seconds(FAST.for_drift) + 15 < NORMAL_S
    api = soak.stack.api
    api.wait_for('count(up{job="model-service"} == 1) == 2', timeout=30)
    time.sleep(NORMAL_S)
    # Every 1m window of the serving version is warm now (the guards say so), so the quiet below is the rules'
    # verdict, not the guard's. The demo's canary is registered with no traffic until its incident: cold.
    serving = f'window="1m",model="{MODEL}",model_version="{VERSION}"'
    warm = api.query(f"min by (domain) (model_version:mlscope_window_warm:bool{{{serving}}})")
    assert {r["metric"]["domain"]: r["value"][1] for r in warm} == {
        "serving": "1", "quality": "1", "estimated": "1", "coverage": "1", "attributions": "1"}
    assert api.query(f"min(feature:mlscope_window_warm:bool{{{serving}}})")[0]["value"][1] == "1"
    raised, notified = soak.firing(), soak.notified()
    print(f"\nsoak {NORMAL_S:.0f} s: firing besides the Watchdog: {describe(raised)}; "
          f"notified: {describe([a['labels'] for a in notified])}")
    assert raised == [] and notified == []
    assert soak.watchdog_arrived()

    soak.demo.inject("drift", 30)
    injected = time.time()
    alert = wait_until(lambda: [a for a in soak.notified() if a["labels"]["alertname"] == "FeatureDriftHigh"],
                       timeout=40)[0]
    print(f"drift injected into a warm window -> FeatureDriftHigh at the receiver: {time.time() - injected:.1f} s")
    assert alert["labels"]["model"] == "demo-classifier" and alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["runbook_url"].endswith("/FeatureDriftHigh.md")
