"""alerting/alertmanager.yml: amtool check-config, a routing test per route, template rendering."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from mlscope.reports import ids
from mlscope.stack.amconfig import FAST_TIMINGS, alertmanager_config, write_alertmanager_config
from support import ROOT
from support.alerting_helpers import webhook_payload
from support.helpers import require_binary

CONFIG = ROOT / "alerting" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    require_binary("amtool")
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=30)


def test_check_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout


@pytest.mark.parametrize("labels, receiver", [
    ({"alertname": "MLScopeWatchdog", "severity": "none"}, "watchdog"),
    ({"alertname": "ModelErrorRateHigh", "severity": "critical", "model": "m"}, "mlscope-critical"),
    ({"alertname": "ModelErrorRateHigh", "severity": "critical", "owner": "ml-platform"}, "team-ml-platform"),
    ({"alertname": "FeatureDriftHigh", "severity": "warning", "model": "m"}, "mlscope-warning"),
    ({"alertname": "FeatureDriftHigh", "severity": "warning", "owner": "ml-platform"}, "team-ml-platform"),
    ({"alertname": "Other", "severity": "info"}, "mlscope-default"),
])
def test_routes(labels: dict[str, str], receiver: str) -> None:
    args = [f"{k}={v}" for k, v in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={receiver}", *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_route_expectation_fails() -> None:
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", "--verify.receivers=watchdog",
                    "alertname=X", "severity=critical")
    assert result.returncode != 0


def test_template_renders_runbook_dashboard_and_logs_links(tmp_path: Path) -> None:
    payload = webhook_payload(model="churn", model_version="3.2.0")
    alert = payload["alerts"][0]
    alert["annotations"].update({"description": "12% failed", "logs_url": "http://127.0.0.1:3000/explore?left=x"})
    data = {"receiver": payload["receiver"], "status": "firing", "alerts": [{
        "status": "firing", "labels": alert["labels"], "annotations": alert["annotations"],
        "startsAt": alert["startsAt"], "endsAt": alert["endsAt"], "generatorURL": "", "fingerprint": "f"}],
        "groupLabels": payload["groupLabels"], "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"], "externalURL": "http://127.0.0.1:9093"}
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data))
    glob = str(ROOT / "alerting" / "templates" / "*.tmpl")
    title = amtool("template", "render", f"--template.glob={glob}", '--template.text={{ template "mlscope.title" . }}',
                   f"--template.data={data_file}")
    assert title.returncode == 0, title.stderr
    assert title.stdout.strip() == "[FIRING:1] ModelErrorRateHigh churn 3.2.0"
    text = amtool("template", "render", f"--template.glob={glob}", '--template.text={{ template "mlscope.text" . }}',
                  f"--template.data={data_file}")
    assert text.returncode == 0, text.stderr
    for line in ("*CRITICAL* s", "12% failed", "Runbook: https://x/runbooks/ModelErrorRateHigh.md",
                 "Dashboard: http://127.0.0.1:3000/d/x", "Logs: http://127.0.0.1:3000/explore?left=x"):
        assert line in text.stdout
    # The snapshot link names the page the receiver writes for this notification (docs/reports.md).
    link = urlsplit(text.stdout.split("Snapshot: ", 1)[1].split()[0])
    query = parse_qs(link.query)
    assert link.path == "/snapshots/group"
    assert ids.snapshot_id(query["labels"][0], float(query["start"][0])) == ids.page_id(data)


def test_fast_config_points_at_the_local_receiver_and_checks(tmp_path: Path) -> None:
    path = write_alertmanager_config(tmp_path / "am.yml", CONFIG, "http://127.0.0.1:1/alerts", fast=True)
    config = yaml.safe_load(path.read_text())
    urls = {w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])}
    assert urls == {"http://127.0.0.1:1/alerts"}
    # Every route's timings capped at the fast ceilings, a route's own shorter ones kept (the Watchdog's).
    assert {k: config["route"][k] for k in FAST_TIMINGS} == FAST_TIMINGS == {
        "group_wait": "1s", "group_interval": "5s", "repeat_interval": "10m"}
    watchdog, critical = config["route"]["routes"][0], config["route"]["routes"][1]
    assert (watchdog["group_wait"], watchdog["repeat_interval"]) == ("0s", "1m")
    assert (critical["group_wait"], critical["repeat_interval"]) == ("1s", "10m")
    assert alertmanager_config(CONFIG, "x")["route"]["group_interval"] == "5m"  # the source is untouched
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_teams_route_as_the_docs_add_it_routes_its_owner(tmp_path: Path) -> None:
    """docs/alerting.md's block for a team of its own, applied to the project's file: both severities reach it."""
    import re

    text = (ROOT / "docs" / "alerting.md").read_text()
    section = text.split("### Routing to your own team", 1)[1]
    addition = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))  # type: ignore[union-attr]
    config = yaml.safe_load(CONFIG.read_text())
    for added in addition["route"]["routes"]:
        existing = next(r for r in config["route"]["routes"] if r["matchers"] == added["matchers"])
        existing["routes"] = [*added["routes"], *existing.get("routes", [])]
    config["receivers"] += addition["receivers"]
    edited = tmp_path / "alerting" / "alertmanager.yml"
    edited.parent.mkdir()
    edited.write_text(yaml.safe_dump(config, sort_keys=False))
    (tmp_path / "alerting" / "templates").symlink_to(ROOT / "alerting" / "templates")
    native = write_alertmanager_config(tmp_path / "native.yml", edited, "http://127.0.0.1:1/alerts", fast=True)
    for path in (edited, native):
        assert amtool("check-config", str(path)).returncode == 0
        for severity in ("critical", "warning"):
            routed = amtool("config", "routes", "test", f"--config.file={path}", "--verify.receivers=team-data-eng",
                            f"severity={severity}", "owner=data-eng", "alertname=PipelineRunFailed")
            assert routed.returncode == 0, routed.stdout + routed.stderr
    unrouted = amtool("config", "routes", "test", f"--config.file={CONFIG}", "--verify.receivers=team-data-eng",
                      "severity=critical", "owner=data-eng")
    assert unrouted.returncode != 0  # the project's file as shipped: mlscope-critical
