"""End to end with real servers: a monitored model's error spike reaches the webhook receiver, then resolves:
one line per state change (two Alertmanagers notify twice), with its number and links that resolve.

Also the faults: a receiver answering 500 for a while, one answering 400, and a broken rule file on reload.
"""
from __future__ import annotations

import html
import io
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests

from mlscope import ModelMonitor
from mlscope.alerts.pages import generator_expr
from mlscope.rules.config import Links
from mlscope.stack.alertreceiver import AlertReceiver
from support import ROOT
from support.alerting_stack import FAST, SHORT, AlertingStack, ErrorSpike, TestReceiver
from support.helpers import Exporter, require_binary, wait_until
from support.loki_receiver import LokiReceiver, parse_label_string


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path, exporter: Exporter) -> Iterator[AlertingStack]:
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    stack = AlertingStack(tmp_path, [exporter.target], profile=getattr(request, "param", FAST)).start()
    yield stack
    stack.stop()


@pytest.fixture
def noisy(tmp_path: Path, exporter: Exporter) -> Iterator[tuple[AlertingStack, LokiReceiver, io.StringIO]]:
    """Two Alertmanagers that do not gossip (each notification arrives twice), the short window, rules whose
    runbook links point at the receiver, and the receiver's lines shipped to the tests' Loki receiver."""
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    loki, out = LokiReceiver(allowed_labels={"app", "env", "model", "model_version", "level"}), io.StringIO()
    test_receiver = TestReceiver(AlertReceiver(output=out, loki_url=loki.url))
    test_receiver.receiver.page_url = test_receiver.base_url
    links = Links(runbook_base_url=f"{test_receiver.base_url}/runbooks")
    stack = AlertingStack(tmp_path, [exporter.target], receiver=test_receiver, profile=SHORT, links=links,
                          replicas=2, clustered=False).start()
    yield stack, loki, out
    stack.stop()
    test_receiver.receiver.close()
    loki.close()


@pytest.mark.slow(seconds=47)
def test_error_spike_notifies_once_with_its_number_and_links_then_resolves_once(
        noisy: tuple[AlertingStack, LokiReceiver, io.StringIO], exporter: Exporter) -> None:
    stack, loki, out = noisy
    window = stack.profile.alert_window
    traffic = ErrorSpike(ModelMonitor("churn", "3.2.0", registry=exporter.registry, metadata={"owner": "risk"}))
    try:
        stack.api.wait_for('up{job="model-service"} == 1', timeout=30)
        stack.api.wait_for(f'model_version:mlscope_predictions:rate{{model="churn",window="{window}"}} > 10',
                           timeout=30)
        injected = time.time()
        traffic.error_share = 0.5
        firing = wait_until(lambda: stack.receiver.alerts("ModelErrorRateHigh", "firing"), timeout=60)
        fired_at, alert = firing[0]
        assert alert["labels"] == {"alertname": "ModelErrorRateHigh", "model": "churn", "model_version": "3.2.0",
                                   "owner": "risk", "severity": "critical", "window": window}
        notification = next(n for n in stack.receiver.notifications if n.payload["alerts"][0] is alert)
        assert notification.payload["receiver"] == "mlscope-critical"
        cleared = time.time()
        traffic.error_share = 0.0
        resolved = wait_until(lambda: stack.receiver.alerts("ModelErrorRateHigh", "resolved"), timeout=150)
        resolved_at = resolved[0][0]
        time.sleep(3)  # the second Alertmanager's copy, and any re-send, arrive meanwhile
        print(f"\nerror spike -> firing notification: {fired_at - injected:.1f} s; "
              f"errors cleared -> resolved notification: {resolved_at - cleared:.1f} s")
    finally:
        traffic.stop()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    received = Counter((a["labels"]["alertname"], a["status"]) for _, a in stack.receiver.alerts("ModelErrorRateHigh"))
    assert received[("ModelErrorRateHigh", "firing")] >= 2  # each Alertmanager sent it: the dedup is tested
    # One line per state change of each alert, whatever Alertmanager re-sent.
    changes = Counter((line["fingerprint"], line["status"], line["starts_at"]) for line in lines)
    assert set(changes.values()) == {1}
    spike = [line for line in lines if line["alertname"] == "ModelErrorRateHigh"]
    assert [line["status"] for line in spike] == ["firing", "resolved"]
    assert [line["status"] for line in lines if line["alertname"] == "MLScopeWatchdog"] == ["firing"]
    line = spike[0]
    assert (line["level"], line["owner"], line["severity"], line["model"]) == ("warning", "risk", "critical", "churn")
    # The number in the description is what Prometheus computed (its PromQL, from the alert's page, at that time).
    page = requests.get(line["page_url"], timeout=5)
    assert page.status_code == 200 and "mlscope-model-overview" in page.text
    expr = generator_expr(stack.receiver.alerts("ModelErrorRateHigh", "firing")[0][1]["generatorURL"])
    assert html.escape(expr) in page.text
    stated = float(re.match(r"([\d.]+)% of prediction requests", line["description"]).group(1))  # type: ignore[union-attr]
    [sample] = [r for r in stack.api.query(expr, fired_at) if r["metric"]["model_version"] == "3.2.0"]
    assert stated == pytest.approx(100 * float(sample["value"][1]), abs=8)  # evaluated up to a few s apart
    assert 5 < stated <= 50 and "(threshold 5%" in line["description"]  # the window fills with 50% errors
    # Links resolve: the runbook from the receiver, the dashboard to a provisioned one, logs to the shipped lines.
    runbook = requests.get(line["runbook_url"], timeout=5)
    assert runbook.status_code == 200 and runbook.text == (ROOT / "alerting/runbooks/ModelErrorRateHigh.md").read_text()
    assert (ROOT / "provisioning/grafana/dashboards" / f"{line['dashboard_uid']}.json").exists()
    assert "var-model=churn&var-model_version=3.2.0" in line["dashboard"]
    logs_expr = json.loads(unquote(line["logs_url"].split("left=", 1)[1]))["queries"][0]["expr"]
    wanted = parse_label_string(logs_expr[logs_expr.index("{"):logs_expr.index("}") + 1])  # its stream selector
    assert wait_until(lambda: len(loki.lines) == len(lines), timeout=10)
    shipped = [e for e in loki.lines if json.loads(e.line)["alertname"] == "ModelErrorRateHigh"]
    assert [json.loads(e.line)["status"] for e in shipped] == ["firing", "resolved"]
    assert all(wanted.items() <= e.labels.items() for e in shipped), (wanted, [e.labels for e in shipped])


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
