"""End to end with real servers: a monitored model's error spike reaches the webhook receiver, then resolves.

Also the faults: a receiver answering 500 for a while, one answering 400, and a broken rule file on reload.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlscope import ModelMonitor
from support.alerting_stack import FAST, SHORT, AlertingStack, ErrorSpike
from support.helpers import Exporter, require_binary, wait_until


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path, exporter: Exporter) -> Iterator[AlertingStack]:
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    stack = AlertingStack(tmp_path, [exporter.target], profile=getattr(request, "param", FAST)).start()
    yield stack
    stack.stop()


@pytest.mark.parametrize("stack", [SHORT], ids=["short-window"], indirect=True)
def test_error_spike_notifies_with_runbook_then_resolves(stack: AlertingStack, exporter: Exporter) -> None:
    window = stack.profile.alert_window
    traffic = ErrorSpike(ModelMonitor("churn", "3.2.0", registry=exporter.registry, metadata={"team": "risk"}))
    try:
        stack.api.wait_for('up{job="model-service"} == 1', timeout=30)
        stack.api.wait_for(f'model_version:mlscope_predictions:rate{{model="churn",window="{window}"}} > 10',
                           timeout=30)
        injected = time.time()
        traffic.error_share = 0.5
        firing = wait_until(lambda: stack.receiver.alerts("ModelErrorRateHigh", "firing"), timeout=60)
        fired_at, alert = firing[0]
        assert alert["labels"] == {"alertname": "ModelErrorRateHigh", "model": "churn", "model_version": "3.2.0",
                                   "severity": "critical", "window": window}
        assert alert["annotations"]["runbook_url"].endswith("/alerting/runbooks/ModelErrorRateHigh.md")
        assert "var-model=churn&var-model_version=3.2.0" in alert["annotations"]["dashboard"]
        assert f"failed over the last {window}" in alert["annotations"]["description"]
        notification = next(n for n in stack.receiver.notifications if n.payload["alerts"][0] is alert)
        assert notification.payload["receiver"] == "mlscope-critical"
        cleared = time.time()
        traffic.error_share = 0.0
        resolved = wait_until(lambda: stack.receiver.alerts("ModelErrorRateHigh", "resolved"), timeout=150)
        resolved_at = resolved[0][0]
        print(f"\nerror spike -> firing notification: {fired_at - injected:.1f} s; "
              f"errors cleared -> resolved notification: {resolved_at - cleared:.1f} s")
        assert stack.receiver.receiver.registry.get_sample_value("mlscope_alert_notifications_total", {
            "receiver": "mlscope-critical", "alertname": "ModelErrorRateHigh", "status": "resolved"}) >= 1
    finally:
        traffic.stop()


def test_receiver_500_then_recovery_delivers(stack: AlertingStack) -> None:
    stack.receiver.fail_with = 500
    wait_until(lambda: len(stack.receiver.alerts("MLScopeWatchdog", delivered=False)) >= 2, timeout=60)
    assert stack.receiver.alerts("MLScopeWatchdog") == []  # retried, not delivered yet
    assert am_counter(stack, "alertmanager_notification_requests_failed_total") >= 2
    stack.receiver.fail_with = None
    wait_until(lambda: stack.receiver.alerts("MLScopeWatchdog"), timeout=60)


def am_counter(stack: AlertingStack, name: str) -> float:
    text = requests.get(stack.alertmanager.url + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and 'integration="webhook"' in line)


def test_receiver_400_is_not_retried_and_raises_a_meta_alert(stack: AlertingStack) -> None:
    stack.receiver.fail_with = 400
    wait_until(lambda: len(stack.receiver.alerts("MLScopeWatchdog", delivered=False)) >= 3, timeout=60)
    # Each failed notification cost exactly one request: a 4xx is not retried (a 5xx would be, with backoff).
    failed_notifications = am_counter(stack, "alertmanager_notifications_failed_total")
    failed_requests = am_counter(stack, "alertmanager_notification_requests_failed_total")
    assert failed_notifications >= 2 and failed_requests == pytest.approx(failed_notifications, abs=1)
    stack.api.wait_for('ALERTS{alertname="AlertmanagerNotificationsFailing",alertstate="firing"}', timeout=60)


def last_evaluation(stack: AlertingStack, group: str) -> str:
    return next(g["lastEvaluation"] for g in stack.api.rules() if g["name"] == group)


def test_broken_rule_file_keeps_last_good_rules_on_reload(stack: AlertingStack) -> None:
    stack.api.wait_for('ALERTS{alertname="MLScopeWatchdog"}', timeout=30)
    before = {g["name"] for g in stack.api.rules()}
    assert "mlscope-serving-alerts" in before
    broken = stack.rules_dir / "mlscope-serving.yml"
    broken.write_text(broken.read_text().replace("expr: vector(1)", "expr: vector(1"))
    response = requests.post(stack.prometheus.url + "/-/reload", timeout=10)
    assert response.status_code == 500
    assert "mlscope-serving.yml" in stack.prometheus.log_path.read_text()  # the log names the broken file
    assert {g["name"] for g in stack.api.rules()} == before
    evaluated = last_evaluation(stack, "mlscope-stack-alerts")
    wait_until(lambda: last_evaluation(stack, "mlscope-stack-alerts") != evaluated, timeout=10)  # still evaluating
