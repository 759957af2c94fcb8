"""Two real Alertmanagers gossip-clustered on 127.0.0.1, one Prometheus sending every alert to both:
exactly one notification per alert group reaches the webhook (the notification log is shared by gossip).

The control: the same pair with clustering off notifies every group twice, so the count can fail.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlscope import ModelMonitor
from support.alerting_stack import AlertingStack, ErrorSpike
from support.helpers import Exporter, require_binary, wait_until

VERSIONS = ("1.0.0", "2.0.0")
# After the last expected group arrived, how long duplicates get to show up: more than the second
# replica's wait (peer_timeout 2 s) and Prometheus's resend delay (2 s); a group_interval (5 s) re-sends only changes.
DUPLICATE_WINDOW_S = 8.0


def cluster_ready(stack: AlertingStack) -> bool:
    for am in stack.alertmanagers:
        status = requests.get(am.url + "/api/v2/status", timeout=5).json()["cluster"]
        if status["status"] != "ready" or len(status.get("peers", [])) != len(stack.alertmanagers):
            return False
    return True


def firing_groups(stack: AlertingStack) -> Counter[str]:
    """groupKey -> delivered firing notifications, for the groups this test creates."""
    wanted = {"ModelErrorRateHigh", "MLScopeWatchdog"}
    return Counter(n.payload["groupKey"] for n in stack.receiver.notifications
                   if n.status_code < 300 and n.payload["status"] == "firing"
                   and n.payload["groupLabels"].get("alertname") in wanted)


@pytest.fixture
def pairs(tmp_path: Path, exporter: Exporter) -> Iterator[dict[bool, AlertingStack]]:
    """{clustered: its pair}: the clustered pair and its control side by side, on the same traffic (their waits
    overlap: one test's time for both)."""
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    started: dict[bool, AlertingStack] = {}
    try:
        for clustered in (True, False):
            started[clustered] = AlertingStack(tmp_path / f"clustered-{clustered}", [exporter.target], replicas=2,
                                               clustered=clustered).start()
        yield started
    finally:
        for stack in started.values():
            stack.stop()


def all_groups_arrived(pair: AlertingStack) -> bool:
    versions = {a["labels"]["model_version"] for _, a in pair.receiver.alerts("ModelErrorRateHigh", "firing")}
    return versions == set(VERSIONS) and bool(pair.receiver.alerts("MLScopeWatchdog", "firing"))


@pytest.mark.slow(seconds=22)
def test_one_notification_per_group_from_a_clustered_pair_two_without_clustering(
        pairs: dict[bool, AlertingStack], exporter: Exporter) -> None:
    wait_until(lambda: cluster_ready(pairs[True]), timeout=30)
    spikes = [ErrorSpike(ModelMonitor("churn", v, registry=exporter.registry), error_share=0.5) for v in VERSIONS]
    try:
        wait_until(lambda: all(all_groups_arrived(pair) for pair in pairs.values()), timeout=90)
        time.sleep(DUPLICATE_WINDOW_S)
        counts = {clustered: firing_groups(pair) for clustered, pair in pairs.items()}
    finally:
        for spike in spikes:
            spike.stop()
    for clustered, pair in pairs.items():
        assert len(counts[clustered]) == len(VERSIONS) + 1, counts  # one group per model version, plus the watchdog
        expected = 1 if clustered else 2
        assert set(counts[clustered].values()) == {expected}, (clustered, counts)
        # Both replicas received every alert from Prometheus: deduplication happened in Alertmanager.
        for am in pair.alertmanagers:
            alerts = requests.get(am.url + "/api/v2/alerts", timeout=5).json()
            assert {a["labels"]["model_version"] for a in alerts
                    if a["labels"]["alertname"] == "ModelErrorRateHigh"} == set(VERSIONS)
