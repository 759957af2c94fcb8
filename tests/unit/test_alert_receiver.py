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

from mlscope.stack.alertreceiver import AlertCommand, AlertReceiver, load_commands, make_server
from mlscope.stack.servers import free_port
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
    assert get("mlscope_alert_commands_total", {"alertname": "ModelErrorRateHigh", "result": "ok"}) == 1
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
