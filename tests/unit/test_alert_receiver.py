"""`mlscope alert-receiver`: payload validation, JSON log lines, per-alert commands, HTTP server."""
from __future__ import annotations

import io
import json
import sys
import threading
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry

from mlscope.alerts.contract import RESULTS
from mlscope.stack.alertreceiver import AlertCommand, AlertReceiver, load_commands, make_server
from mlscope.stack.servers import free_port
from support import ROOT
from support.alerting_helpers import body, webhook_payload


def receiver(**kwargs) -> tuple[AlertReceiver, io.StringIO]:
    out = io.StringIO()
    return AlertReceiver(registry=CollectorRegistry(), output=out, **kwargs), out


def test_valid_notification_is_logged_as_json_and_counted() -> None:
    rcv, out = receiver()
    status, _ = rcv.handle(body(webhook_payload(model="churn", model_version="3")))
    assert status == 200
    record = json.loads(out.getvalue())
    assert record["event"] == "alert_notification" and record["alertname"] == "ModelErrorRateHigh"
    assert record["model"] == "churn" and record["runbook_url"].endswith("/ModelErrorRateHigh.md")
    assert rcv.registry.get_sample_value("mlscope_alert_notifications_total", {
        "receiver": "mlscope-default", "alertname": "ModelErrorRateHigh", "status": "firing"}) == 1


@pytest.mark.parametrize("raw, reason", [
    (b"{not json", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (body({"version": "4"}), "missing_field"),
    (body({**webhook_payload(), "version": "3"}), "unsupported_version"),
    (body({**webhook_payload(), "alerts": "x"}), "alerts_not_a_list"),
    (body({**webhook_payload(), "alerts": [{"status": "firing"}]}), "invalid_alert"),
])
def test_invalid_payloads_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    rcv, out = receiver()
    status, message = rcv.handle(raw)
    assert status == 400 and message.startswith(reason)
    assert rcv.registry.get_sample_value("mlscope_alert_receiver_invalid_payloads_total", {"reason": reason}) == 1
    assert out.getvalue() == ""


def test_command_runs_with_the_alert_and_times_out(tmp_path: Path) -> None:
    marker = tmp_path / "ran.json"
    script = (f"import sys, os, json; open({str(marker)!r}, 'w')"
              ".write(sys.stdin.read() + os.environ['MLSCOPE_LABEL_MODEL'])")
    commands = {
        "ModelErrorRateHigh": AlertCommand((sys.executable, "-c", script), timeout_s=30),
        "Slow": AlertCommand((sys.executable, "-c", "import time; time.sleep(30)"), timeout_s=0.5),
    }
    rcv, _ = receiver(commands=commands)
    rcv.handle(body(webhook_payload(model="churn")))
    rcv.handle(body(webhook_payload("Slow")))
    rcv.handle(body(webhook_payload("ModelErrorRateHigh", status="resolved", model="churn")))  # not on resolved
    rcv.wait_for_commands()
    assert json.loads(marker.read_text().removesuffix("churn"))["labels"]["alertname"] == "ModelErrorRateHigh"
    get = rcv.registry.get_sample_value
    assert get("mlscope_alert_commands_total", {"alertname": "ModelErrorRateHigh", "result": "done"}) == 1
    assert get("mlscope_alert_commands_total", {"alertname": "Slow", "result": "timeout"}) == 1


def test_load_commands_validates(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("alert_commands:\n  FeatureDriftHigh:\n    command: [echo, retrain]\n    timeout: 5\n"
                    "    on: [firing, resolved]\n")
    assert load_commands(good) == {"FeatureDriftHigh": AlertCommand(("echo", "retrain"), 5.0, ("firing", "resolved"))}
    bad = tmp_path / "bad.yml"
    bad.write_text("alert_commands:\n  X:\n    command: echo retrain\n")
    with pytest.raises(ValueError, match="non-empty list"):
        load_commands(bad)


def test_http_server_on_loopback() -> None:
    port = free_port()
    rcv, out = receiver()
    server = make_server(rcv, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{port}"
        assert server.server_address[0] == "127.0.0.1"
        assert requests.post(url + "/alerts", data=body(webhook_payload()), timeout=5).status_code == 200
        assert requests.post(url + "/alerts", data=b"nope", timeout=5).status_code == 400
        assert requests.post(url + "/elsewhere", data=b"{}", timeout=5).status_code == 404
        assert requests.get(url + "/-/ready", timeout=5).status_code == 200
        assert "mlscope_alert_notifications_total" in requests.get(url + "/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("spec, message", [
    ("command: [echo]\n    on: firing", "must be a list of firing"),
    ("command: [echo]\n    timout: 5", "unknown key"),
    ("command: [echo]\n    timeout: 0", "positive number"),
    ("[echo]", "must be a mapping"),
])
def test_load_commands_rejects_mistakes(tmp_path: Path, spec: str, message: str) -> None:
    config = tmp_path / "receiver.yml"
    config.write_text(f"alert_commands:\n  X:\n    {spec}\n" if not spec.startswith("[")
                      else f"alert_commands:\n  X: {spec}\n")
    with pytest.raises(ValueError, match=message):
        load_commands(config)


ANNOTATIONS = {
    "summary": "churn 3: prediction errors above 5%",
    "description": "12% of prediction requests of churn 3 failed over the last 5m (threshold 5%, ...).",
    "runbook_url": "http://127.0.0.1:9095/runbooks/ModelErrorRateHigh.md",
    "dashboard": "http://127.0.0.1:3000/d/mlscope-model-overview?var-model=churn&var-model_version=3",
    "logs_url": "http://127.0.0.1:3000/explore?left=x",
}


def rich_payload(alertname: str = "ModelErrorRateHigh", status: str = "firing", **labels: str) -> dict:
    payload = webhook_payload(alertname, status, **labels)
    payload["alerts"][0]["annotations"] = ANNOTATIONS
    return payload


def test_a_line_carries_what_a_person_acts_on() -> None:
    rcv, out = receiver(page_url="http://127.0.0.1:9095")
    payload = rich_payload(model="churn", model_version="3", owner="risk")
    rcv.handle(body(payload))
    rcv.handle(body(payload))  # a re-send: no second line
    [line] = [json.loads(x) for x in out.getvalue().splitlines()]
    fingerprint = payload["alerts"][0]["fingerprint"]
    assert line["level"] == "warning" and line["event"] == "alert_notification"
    assert (line["model"], line["model_version"], line["owner"], line["severity"]) == ("churn", "3", "risk", "critical")
    assert line["description"] == ANNOTATIONS["description"] and line["logs_url"] == ANNOTATIONS["logs_url"]
    assert line["dashboard_uid"] == "mlscope-model-overview"
    assert line["page_url"] == f"http://127.0.0.1:9095/alerts/{fingerprint}"
    assert rcv.registry.get_sample_value("mlscope_alert_notifications_total", {
        "receiver": "mlscope-default", "alertname": "ModelErrorRateHigh", "status": "firing"}) == 2


@pytest.mark.parametrize("alertname, severity, status, level", [
    ("MLScopeWatchdog", "none", "firing", "info"),
    ("ModelErrorRateHigh", "critical", "firing", "warning"),
    ("ModelErrorRateHigh", "critical", "resolved", "info"),
])
def test_line_levels(alertname: str, severity: str, status: str, level: str) -> None:
    rcv, out = receiver()
    rcv.handle(body(webhook_payload(alertname, status, severity=severity)))
    assert json.loads(out.getvalue())["level"] == level


def test_one_server_serves_runbooks_pages_and_the_record() -> None:
    runbooks = ROOT / "alerting" / "runbooks"
    port = free_port()
    rcv, _ = receiver(runbooks=runbooks, grafana_running=False, prometheus_url="http://127.0.0.1:9090")
    server = make_server(rcv, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        payload = rich_payload(model="churn", model_version="3")
        assert requests.post(url + "/alerts", data=body(payload), timeout=5).status_code == 200
        book = requests.get(url + "/runbooks/ModelErrorRateHigh.md", timeout=5)
        assert book.status_code == 200 and book.headers["Content-Type"].startswith("text/plain")
        assert book.text == (runbooks / "ModelErrorRateHigh.md").read_text()
        for bad in ("../../pyproject.toml", "NoSuchAlert.md", "..%2f..%2fpyproject.toml"):
            assert requests.get(f"{url}/runbooks/{bad}", timeout=5).status_code == 404
        # a runbook's link to the docs (../../docs/drift.md from /runbooks/) resolves at the receiver
        assert "../../docs/drift.md" in (runbooks / "FeatureDriftHigh.md").read_text()
        docs = requests.get(url + "/docs/drift.md", timeout=5)
        assert docs.status_code == 200 and docs.text == (ROOT / "docs/drift.md").read_text()
        for bad in ("../README.md", "Drift.md", "nosuchpage.md"):
            assert requests.get(f"{url}/docs/{bad}", timeout=5).status_code == 404
        index = requests.get(url + "/", timeout=5).text
        fingerprint = payload["alerts"][0]["fingerprint"]
        assert f"/alerts/{fingerprint}" in index and "/runbooks/MLScopeWatchdog.md" in index
        page = requests.get(f"{url}/alerts/{fingerprint}", timeout=5).text
        assert "mlscope-model-overview" in page and "Grafana is not running here" in page
        # the dashboards' JSON named in full (relative to a folder the user may not have), no 0001 "end"
        assert f"{ROOT / 'provisioning/grafana/dashboards'}/mlscope-model-overview.json" in page
        assert "0001-01-01" not in page and "ended" not in page
        assert "<pre>up == 0</pre>" in page  # the generator URL's PromQL, decoded
        assert "http://127.0.0.1:9090/graph?g0.expr=up+%3D%3D+0" in page
        record = requests.get(f"{url}/api/alerts/{fingerprint}", timeout=5).json()
        assert record["status"] == "firing" and [c["status"] for c in record["changes"]] == ["firing"]
        assert requests.get(f"{url}/alerts/{'f' * 16}", timeout=5).status_code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_lines_ship_to_loki_in_the_model_versions_streams(request: pytest.FixtureRequest) -> None:
    loki = request.getfixturevalue("receiver")  # the tests' Loki receiver (tests/conftest.py)
    rcv, out = receiver(loki_url=loki.url)
    rcv.handle(body(rich_payload(model="churn", model_version="3")))
    rcv.handle(body(rich_payload("MLScopeWatchdog", severity="none")))
    rcv.handle(body(rich_payload(model="churn", model_version="3")))  # a re-send: not shipped again
    assert rcv.loki is not None and rcv.loki.drain(10)
    assert loki.errors == []
    assert [e.labels for e in loki.lines] == [
        {"app": "mlscope", "model": "churn", "model_version": "3", "level": "warning"},
        {"app": "mlscope", "level": "info"}]
    assert [e.line for e in loki.lines] == out.getvalue().splitlines()  # the same line as the output's
    assert rcv.registry.get_sample_value("mlscope_log_lines_sent_total", {"handler": "alert-receiver"}) == 2
    rcv.close()


def test_false_positive_reports_are_token_protected_and_counted_per_alert() -> None:
    """POST /feedback/false-positive: refused without a configured token or with a wrong one, counted by alert name
    (found from the fingerprint on record), so false-positive rates are a series."""
    port, token = free_port(), "s3cret-token"
    rcv, out = receiver(feedback_token=token)
    server = make_server(rcv, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    payload = webhook_payload("ModelTrafficAnomalous", model="churn", model_version="3")
    fingerprint = payload["alerts"][0]["fingerprint"]
    url = f"http://127.0.0.1:{port}/feedback/false-positive"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        assert rcv.handle(body(payload))[0] == 200
        assert requests.post(url, json={"fingerprint": fingerprint}, timeout=5).status_code == 401
        assert requests.post(url, json={"fingerprint": fingerprint}, headers={"Authorization": "Bearer nope"},
                             timeout=5).status_code == 401
        assert requests.post(url, json={"fingerprint": "ffff"}, headers=auth, timeout=5).status_code == 404
        assert requests.post(url, data=b"[1]", headers=auth, timeout=5).status_code == 400
        assert requests.post(url, json={"alertname": "bad name!"}, headers=auth, timeout=5).status_code == 400
        assert requests.post(url, json={"fingerprint": fingerprint, "comment": "deploy window"}, headers=auth,
                             timeout=5).status_code == 200
        again = requests.post(url, json={"alertname": "ModelTrafficAnomalous"}, headers=auth, timeout=5)
        assert again.status_code == 200 and "already counted" in again.text  # the same firing episode
        typo = requests.post(url, json={"alertname": "NoSuchAlertTypo"}, headers=auth, timeout=5)
        assert typo.status_code == 404 and "never notified" in typo.text
        assert rcv.handle(body(webhook_payload("ModelTrafficAnomalous", model="churn", model_version="3",
                                               starts_at="2026-11-24T12:00:00Z")))[0] == 200
        assert requests.post(url, json={"alertname": "ModelTrafficAnomalous"}, headers=auth, timeout=5).text \
            == "counted"  # a new firing episode of the same alert
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    assert rcv.registry.get_sample_value("mlscope_alert_false_positives_total",
                                         {"alertname": "ModelTrafficAnomalous"}) == 2
    assert 'mlscope_alert_false_positives_total{alertname="ModelTrafficAnomalous"} 2.0' in metrics
    rejected = {r: rcv.registry.get_sample_value("mlscope_alert_feedback_rejected_total", {"reason": r})
                for r in ("unauthorised", "unknown_alert", "invalid", "not_notified")}
    assert rejected == {"unauthorised": 2, "unknown_alert": 1, "invalid": 2, "not_notified": 1}
    assert 'alertname="NoSuchAlertTypo"' not in metrics
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    marked = [line for line in lines if line["event"] == "alert_false_positive"]
    assert [m["fingerprint"] for m in marked] == [fingerprint] * 2 and "deploy window" in marked[0]["message"]


def test_counters_of_known_alerts_start_at_zero_so_increase_sees_their_first_event(tmp_path: Path) -> None:
    """Firing/resolved counters exist at 0 for every alert with a runbook or on record, and the false-positive
    counter at 0 for every alert on record, before their first increment."""
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "ModelTrafficAnomalous.md").write_text("# runbook")
    rcv, _ = receiver(runbooks=books)
    value = rcv.registry.get_sample_value
    assert value("mlscope_alert_state_changes_total", {"alertname": "ModelTrafficAnomalous", "status": "firing"}) == 0
    assert value("mlscope_alert_false_positives_total", {"alertname": "ModelTrafficAnomalous"}) is None
    rcv.handle(body(webhook_payload("ModelErrorsAnomalous")))
    assert value("mlscope_alert_false_positives_total", {"alertname": "ModelErrorsAnomalous"}) == 0
    restarted, _ = receiver(runbooks=books, store=rcv.store)
    assert restarted.registry.get_sample_value("mlscope_alert_false_positives_total",
                                               {"alertname": "ModelErrorsAnomalous"}) == 0
    assert restarted.registry.get_sample_value("mlscope_alert_state_changes_total",
                                               {"alertname": "ModelErrorsAnomalous", "status": "resolved"}) == 0


def test_false_positive_feedback_is_off_without_a_token() -> None:
    rcv, _ = receiver()
    status, message = rcv.false_positive(b'{"alertname": "ModelTrafficAnomalous"}', "Bearer anything")
    assert status == 403 and "--feedback-token-file" in message
    assert rcv.registry.get_sample_value("mlscope_alert_false_positives_total",
                                         {"alertname": "ModelTrafficAnomalous"}) is None


def test_served_runbooks_show_the_thresholds_in_force() -> None:
    """With a folder's rule settings, /runbooks/<Alert>.md shows their values, not the built-in ones."""
    from mlscope.stack.alertreceiver import get
    rcv, _ = receiver(runbooks=ROOT / "alerting" / "runbooks", rules_settings={"profiles": {
        "default": {"anomaly": {"traffic": {"z_threshold": 3.5, "min_traffic": 0.2}}}}})
    status, text, _ = get(rcv, "/runbooks/ModelTrafficAnomalous.md")
    built_in, _ = receiver(runbooks=ROOT / "alerting" / "runbooks")
    assert status == 200 and text != get(built_in, "/runbooks/ModelTrafficAnomalous.md")[1]
    row = next(line for line in text.splitlines() if "`profile.anomaly.traffic.min_traffic`" in line)
    assert row.split("|")[2].strip() == "0.2"


def test_each_configured_commands_results_start_at_zero() -> None:
    """increase() sees the first run only when its series existed before it (at 0): the counters exist from the
    configuration on, for every result."""
    rcv, _ = receiver(commands={"FeatureDriftHigh": AlertCommand(("true",))})
    for result in RESULTS:
        assert rcv.registry.get_sample_value(
            "mlscope_alert_commands_total", {"alertname": "FeatureDriftHigh", "result": result}) == 0


def test_a_command_still_running_for_the_same_alert_is_not_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flapping drift: three notifications of churn's alert while its retraining runs start it once (two counted
    skipped_running), another model's alert starts its own; once it ended, the next one starts it again."""
    release, started = threading.Event(), []

    def fake_run(argv, stdin, env, timeout_s):
        started.append(env["MLSCOPE_LABEL_MODEL"])
        release.wait(10)
        return 0, ""

    monkeypatch.setattr("mlscope.stack.alertreceiver.run_bounded", fake_run)
    rcv, out = receiver(commands={"FeatureDriftHigh": AlertCommand(("retrain",))})
    for n, model in enumerate(("churn", "churn", "churn", "fraud")):
        rcv.handle(body(webhook_payload("FeatureDriftHigh", model=model, starts_at=f"2026-12-02T04:0{n}:00Z")))
    release.set()
    rcv.wait_for_commands()
    get = lambda result: rcv.registry.get_sample_value(  # noqa: E731
        "mlscope_alert_commands_total", {"alertname": "FeatureDriftHigh", "result": result})
    assert sorted(started) == ["churn", "fraud"] and (get("done"), get("skipped_running")) == (2, 2)
    skipped = [json.loads(line) for line in out.getvalue().splitlines() if '"skipped_running"' in line]
    assert len(skipped) == 2 and all(s["event"] == "alert_command" and s["level"] == "info" for s in skipped)
    rcv.handle(body(webhook_payload("FeatureDriftHigh", model="churn", starts_at="2026-12-02T04:09:00Z")))
    rcv.wait_for_commands()
    assert get("done") == 3
