"""Pipelines end to end: a real Pushgateway (Debian's, persistence file) and Prometheus with the fast rules,
Alertmanager and the alert receiver. One stack for the module."""
from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mlscope.pipelines import PipelineMonitor
from mlscope.pipelines.push import PipelineGroup
from mlscope.stack import promconfig, servers
from support import ROOT
from support.alerting_stack import AlertingStack
from support.drift_support import small_profile
from support.helpers import require_binary, series, wait_until


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AlertingStack, servers.Server]]:
    require_binary(*servers.PUSHGATEWAY_BINARIES)
    tmp = tmp_path_factory.mktemp("pipelines")
    gateway = servers.pushgateway(tmp / "pushgateway", persistence_interval="1s").start()
    alerting = AlertingStack(tmp, targets=[], jobs=[promconfig.pushgateway_job(f"127.0.0.1:{gateway.port}")]).start()
    yield alerting, gateway
    alerting.stop()
    gateway.stop()


def address(gateway: servers.Server) -> str:
    return f"127.0.0.1:{gateway.port}"


def pushed_groups(gateway: servers.Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(gateway.url + "/metrics", timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.labels.get("job") == "mlscope-pipelines"}


def test_pushed_values_read_back_equal_what_the_job_recorded(stack: tuple[AlertingStack, servers.Server]) -> None:
    alerting, gateway = stack
    registry = CollectorRegistry()
    profile = small_profile("scorer", "1")
    monitor = PipelineMonitor("values", registry=registry, owner="data-eng", expected_interval_s=3600,
                              reference=profile, pushgateway=address(gateway))
    scorer = monitor.model_monitor("scorer", "1", reference=profile)
    rng = np.random.default_rng(3)
    features = {"income": rng.lognormal(10, 0.5, 300), "age": rng.normal(40, 10, 300),
                "plan": rng.choice(["basic", "plus", "pro"], 300).astype(object)}
    with monitor.run("batch-7") as run:
        with run.step("ingest") as step:
            step.records(read=321, written=300, rejected={"bad_row": 21})
            step.bytes(read=4096)
            step.event_times([1.7e9, 1.7e9 + 30])
            step.check_batch(features)
        with run.step("score"):
            scorer.record_batch(rng.integers(0, 2, 300), scores=rng.random(300), features=features)
    assert run.push_result is not None and run.push_result.ok
    recorded = {key: v for key, v in series(PipelineGroup(registry, "values")).items()  # type: ignore[arg-type]
                if key[0].startswith(("mlscope_pipeline_", "mlscope_predictions_total", "mlscope_feature_issues"))
                and not key[0].endswith("_created")}
    assert len(recorded) > 30
    at_gateway = pushed_groups(gateway)
    api = alerting.api
    api.wait_for('mlscope_pipeline_runs_total{pipeline="values"}', timeout=15)
    # The group's key labels every sample of it: the scoring model's series carry pipeline="values" too.
    key = {"job": "mlscope-pipelines", "instance": "", "pipeline": "values"}
    for (name, labels), value in recorded.items():
        assert at_gateway[(name, tuple(sorted({**dict(labels), **key}.items())))] == value
        matchers = ",".join(f'{k}="{v}"' for k, v in labels)
        found = api.query(f"{name}{{{matchers}}}")
        assert len(found) == 1, (name, labels, found)
        assert found[0]["metric"]["job"] == "mlscope-pipelines" and "instance" not in found[0]["metric"]
        assert float(found[0]["value"][1]) == pytest.approx(value, rel=1e-12), (name, labels)
    scored = api.query('mlscope_predictions_total{model="scorer"}')
    assert [(s["metric"]["pipeline"], s["value"][1]) for s in scored] == [("values", "300")]
    assert api.query('push_time_seconds{pipeline="values"}')


def test_a_failed_and_a_stale_pipeline_alert_the_receiver(stack: tuple[AlertingStack, servers.Server]) -> None:
    alerting, gateway = stack
    failing = PipelineMonitor("failing", registry=CollectorRegistry(), owner="ml-platform",
                              pushgateway=address(gateway))
    with pytest.raises(OSError, match="source unavailable"), failing.run("b1") as run, run.step("extract"):
        raise OSError("source unavailable")
    stale = PipelineMonitor("stale", registry=CollectorRegistry(), expected_interval_s=1,
                            pushgateway=address(gateway))
    healthy = PipelineMonitor("healthy", registry=CollectorRegistry(), expected_interval_s=3600,
                              pushgateway=address(gateway))
    for monitor in (stale, healthy):
        with monitor.run("b1") as ok_run:
            ok_run.step("load").end()
        assert ok_run.push_result is not None and ok_run.push_result.ok
    receiver = alerting.receiver
    failed = wait_until(lambda: receiver.alerts("PipelineRunFailed", "firing"), timeout=30)
    labels = failed[0][1]["labels"]
    assert (labels["pipeline"], labels["owner"], labels["severity"]) == ("failing", "ml-platform", "critical")
    routed = [n.payload["receiver"] for n in receiver.notifications
              if any(a["labels"]["alertname"] == "PipelineRunFailed" for a in n.payload["alerts"])]
    assert routed and set(routed) == {"team-ml-platform"}  # the owner's route, as for model alerts
    stale_alerts = wait_until(lambda: receiver.alerts("PipelineStale", "firing"), timeout=30)
    assert {a["labels"]["pipeline"] for _, a in stale_alerts} == {"stale"}
    assert "last reached the Pushgateway" in stale_alerts[0][1]["annotations"]["description"]
    notified = {a["labels"].get("pipeline") for n in receiver.notifications for a in n.payload["alerts"]}
    assert "healthy" not in notified


def test_the_docs_example_job_pushes_to_a_real_pushgateway(stack: tuple[AlertingStack, servers.Server],
                                                           tmp_path: Path) -> None:
    _, gateway = stack
    text = (ROOT / "docs" / "pipelines.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "PipelineMonitor(" in block
                and "<!-- fragment -->" not in block)
    code = code.replace("127.0.0.1:8001", address(gateway)).replace("and not run.push_result.ok",
                                                                    "and run.push_result.ok")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    groups = pushed_groups(gateway)
    assert groups[("mlscope_pipeline_runs_total", (("instance", ""), ("job", "mlscope-pipelines"),
                                                   ("pipeline", "fraud-scoring"), ("status", "success")))] == 1


def test_groups_survive_a_pushgateway_restart_and_go_when_deleted(stack: tuple[AlertingStack, servers.Server]) -> None:
    _, gateway = stack
    monitor = PipelineMonitor("kept", registry=CollectorRegistry(), pushgateway=address(gateway))
    with monitor.run("b") as run:
        run.step("s").end()
    before = {k: v for k, v in pushed_groups(gateway).items() if ("pipeline", "kept") in k[1]}
    assert before
    gateway.stop()  # writes the persistence file at shutdown
    with monitor.run("while-down") as down:
        pass
    assert down.status == "success" and down.push_result is not None and down.push_result.reason == "connection"
    gateway.start()
    assert {k: v for k, v in pushed_groups(gateway).items() if ("pipeline", "kept") in k[1]} == before
    assert monitor.delete_pushed().ok
    assert not [k for k in pushed_groups(gateway) if ("pipeline", "kept") in k[1]]
