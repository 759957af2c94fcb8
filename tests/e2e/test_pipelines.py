"""Pipelines end to end: a real Pushgateway (Debian's, persistence file) and Prometheus with the fast rules,
Alertmanager and the alert receiver. One stack for the module: pushes, alerts, lineage gauges and the feedback
loop from a drift alert to a retrained version."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mlscope.demo import retrain
from mlscope.lineage import FileSource, PrometheusSource, trace
from mlscope.pipelines import PipelineMonitor, training_data_fingerprint
from mlscope.pipelines.push import PipelineGroup
from mlscope.stack import promconfig, servers
from mlscope.stack.alertreceiver import AlertCommand
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


# A job in its own process: a run with an open step, then (mode) `wait` to be killed, or `exit` without ending it.
JOB = """
import sys, time
from prometheus_client import CollectorRegistry
from mlscope.pipelines import PipelineMonitor
name, gateway, mode = sys.argv[1:]
monitor = PipelineMonitor(name, registry=CollectorRegistry(), expected_interval_s=1, pushgateway=gateway)
run = monitor.run("b1")
run.step("load")
print("started", flush=True)
if mode == "wait":
    time.sleep(60)
"""


def start_job(gateway: servers.Server, name: str, mode: str) -> subprocess.Popen[str]:
    job = subprocess.Popen([sys.executable, "-c", JOB, name, address(gateway), mode], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert job.stdout is not None and job.stdout.readline().strip() == "started"
    return job


def firing_by_pipeline(receiver: Any, alertname: str, expected: set[str]) -> dict[str, dict] | None:
    """The firing alerts of ``alertname`` by pipeline, once every one of ``expected`` is there (else None)."""
    found = {a["labels"]["pipeline"]: a for _, a in receiver.alerts(alertname, "firing")}
    return found if expected <= set(found) else None


def test_a_failed_and_a_stale_pipeline_alert_the_receiver(stack: tuple[AlertingStack, servers.Server]) -> None:
    alerting, gateway = stack
    first = start_job(gateway, "first-killed", "wait")  # its first run: only its start is pushed
    first.kill()
    failing = PipelineMonitor("failing", registry=CollectorRegistry(), owner="ml-platform",
                              pushgateway=address(gateway))
    with pytest.raises(OSError, match="source unavailable"), failing.run("b1") as run, run.step("extract"):
        raise OSError("source unavailable")
    # Shard 0 of a fixed set fails, shard 1 succeeds 0.2 s later: shard 0 still alerts.
    for shard, error in (("shard-0", OSError("disk full")), ("shard-1", None)):
        sharded = PipelineMonitor("sharded", registry=CollectorRegistry(), owner="ml-platform", instance=shard,
                                  pushgateway=address(gateway))
        shard_run = sharded.run("b1")
        shard_run.step("s").end(error)
        assert shard_run.end() == ("failure" if error else "success") and shard_run.push_result.ok  # type: ignore[union-attr]
        time.sleep(0.2)
    stale = PipelineMonitor("stale", registry=CollectorRegistry(), expected_interval_s=1,
                            pushgateway=address(gateway))
    healthy = PipelineMonitor("healthy", registry=CollectorRegistry(), expected_interval_s=3600,
                              pushgateway=address(gateway))
    for monitor in (stale, healthy):
        with monitor.run("b1") as ok_run:
            ok_run.step("load").end()
        assert ok_run.push_result is not None and ok_run.push_result.ok
    receiver = alerting.receiver
    failed = wait_until(lambda: firing_by_pipeline(receiver, "PipelineRunFailed", {"failing", "sharded"}), timeout=30)
    labels = failed["failing"]["labels"]
    assert (labels["pipeline"], labels["owner"], labels["severity"]) == ("failing", "ml-platform", "critical")
    assert "with error type OSError" in failed["failing"]["annotations"]["description"]
    assert failed["sharded"]["labels"]["instance"] == "shard-0"
    assert not [a for _, a in receiver.alerts("PipelineRunFailed") if a["labels"].get("instance") == "shard-1"]
    routed = [n.payload["receiver"] for n in receiver.notifications
              if any(a["labels"]["alertname"] == "PipelineRunFailed" for a in n.payload["alerts"])]
    assert routed and set(routed) == {"team-ml-platform"}  # the owner's route, as for model alerts
    stale_alerts = wait_until(lambda: firing_by_pipeline(receiver, "PipelineStale", {"stale", "first-killed"}),
                              timeout=30)
    assert set(stale_alerts) == {"stale", "first-killed"}
    assert "last reached the Pushgateway" in stale_alerts["stale"]["annotations"]["description"]
    killed = stale_alerts["first-killed"]["annotations"]["description"]
    assert "has never succeeded; its last run started" in killed and "has not ended" in killed
    assert first.wait(5) == -signal.SIGKILL
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
    # The Pushgateway applies a delete asynchronously (it answers 202 Accepted): the group goes soon after.
    wait_until(lambda: not [k for k in pushed_groups(gateway) if ("pipeline", "kept") in k[1]], timeout=10)


def test_a_run_killed_by_sigterm_or_never_ended_pushes_its_failure(stack: tuple[AlertingStack, servers.Server]) -> None:
    _, gateway = stack
    terminated, abandoned = start_job(gateway, "terminated", "wait"), start_job(gateway, "abandoned", "exit")
    terminated.send_signal(signal.SIGTERM)
    # SIGTERM: the run ends as failed and pushes, then the default action (terminate by the signal).
    assert terminated.wait(10) == -signal.SIGTERM
    assert abandoned.wait(10) == 0
    warning = abandoned.communicate()[1]
    assert "a run still open when the process exited" in warning and "RunNotEnded" in warning
    groups = pushed_groups(gateway)
    for name, error in (("terminated", "SIGTERM"), ("abandoned", "RunNotEnded")):
        key = (("instance", ""), ("job", "mlscope-pipelines"), ("pipeline", name))
        assert groups[("mlscope_pipeline_runs_total", key + (("status", "failure"),))] == 1
        assert groups[("mlscope_pipeline_last_error_info", (("error_type", error),) + key)] == 1
        assert groups[("mlscope_pipeline_step_failures_total",
                       (("error_type", "StepNotEnded"),) + key + (("step", "load"),))] == 1
        started = groups[("mlscope_pipeline_last_start_timestamp_seconds", key)]
        assert started <= groups[("mlscope_pipeline_last_failure_timestamp_seconds", key)] <= time.time()


def test_a_training_runs_model_version_reaches_the_pushgateway(stack: tuple[AlertingStack, servers.Server]) -> None:
    _, gateway = stack
    monitor = PipelineMonitor("training", registry=CollectorRegistry(), owner="ml-platform",
                              pushgateway=address(gateway))
    with monitor.training_run("wine2", dataset_version="v1", fingerprint="sha256:ab") as run:
        run.model_monitor("3.2.0")  # no registry=: the pipeline's, so the run's push carries it
    late = monitor.training_run("wine2", dataset_version="v2", fingerprint="sha256:cd")
    late.end()
    late.model_monitor("3.3.0")  # after the end: pushed again
    assert late.push_result is not None and late.push_result.ok
    info = {dict(labels)["model_version"]: dict(labels) for (name, labels) in pushed_groups(gateway)
            if name == "mlscope_model_info" and ("pipeline", "training") in labels}
    assert {v: (i["training_data_fingerprint"], i["owner"]) for v, i in info.items()} == {
        "3.2.0": ("sha256:ab", "ml-platform"), "3.3.0": ("sha256:cd", "ml-platform")}


def test_lineage_gauges_read_back_through_prometheus(stack: tuple[AlertingStack, servers.Server]) -> None:
    """mlscope_training_info and the version's mlscope_model_info, pushed by a training job, are what `mlscope
    lineage` reads back from Prometheus: equal to what the run recorded."""
    alerting, gateway = stack
    registry = CollectorRegistry()
    monitor = PipelineMonitor("trainer", registry=registry, owner="ml-platform", pushgateway=address(gateway))
    data = np.random.default_rng(4).normal(size=(50, 3))
    with monitor.training_run("churn", dataset_version="2026-12-01", training_data=data, columns=["a", "b", "c"],
                              hyperparameters={"C": 0.5}, data_batch_ids=["b-1", "b-2"]) as run:
        run.model_monitor("3.1.0")
    assert run.push_result is not None and run.push_result.ok
    alerting.api.wait_for('mlscope_training_info{model="churn"}', timeout=15)
    found = trace("churn", "3.1.0", prometheus=PrometheusSource(alerting.prometheus.url))
    assert [(s["pipeline"], s["dataset_version"], s["training_data_fingerprint"]) for s in found.trained] == [
        ("trainer", "2026-12-01", run.fingerprint)]
    # Pushed by the training job: registered, not serving (no service exposes it).
    assert [s["training_data_fingerprint"] for s in found.pushed] == [run.fingerprint] and found.serving == []
    assert run.fingerprint == training_data_fingerprint(data, ["a", "b", "c"]) and found.consistent
    assert trace("churn", "9.9.9", prometheus=PrometheusSource(alerting.prometheus.url)).trained == []


RETRAIN_BUDGET_S = 45.0  # alert rule evaluation + Alertmanager's group_wait + the job (imports, fit, push) + scrape


def test_a_drift_alert_retrains_and_the_new_version_appears(stack: tuple[AlertingStack, servers.Server],
                                                            tmp_path: Path) -> None:
    """The feedback loop end to end: a batch fails its drift check -> PipelineBatchChecksFailing -> Alertmanager
    -> the receiver's per-alert command (the demo's retraining job, the alert on stdin) -> a training run
    pushed -> the new version's mlscope_model_info in Prometheus, its lineage naming the alert."""
    alerting, gateway = stack
    receiver = alerting.receiver.receiver
    argv = (sys.executable, "-m", "mlscope.cli", "demo", "retrain", "--state-dir", str(tmp_path),
            "--pushgateway", address(gateway))
    receiver.commands = {"PipelineBatchChecksFailing": AlertCommand(argv, timeout_s=RETRAIN_BUDGET_S)}
    try:
        profile = small_profile("scored", "1")
        # The demo's feature pipeline by name: the demo's job leaves other pipelines' alerts alone.
        monitor = PipelineMonitor(retrain.FEATURE_PIPELINE, registry=CollectorRegistry(), reference=profile,
                                  pushgateway=address(gateway))
        rng = np.random.default_rng(9)
        start = time.monotonic()
        with monitor.run("b-drift") as run:
            check = run.check_batch({"income": rng.lognormal(13, 0.5, 400), "age": rng.normal(40, 10, 400),
                                     "plan": rng.choice(["basic", "plus", "pro"], 400).astype(object)})
        assert "drift" in check.failed_checks and run.push_result is not None and run.push_result.ok
        found = alerting.api.wait_for(f'mlscope_model_info{{model="{retrain.MODEL}",model_version="1.0.1"}}',
                                      timeout=RETRAIN_BUDGET_S)
        elapsed = time.monotonic() - start
        receiver.wait_for_commands(RETRAIN_BUDGET_S)
    finally:
        receiver.commands = {}
    fired = [a for _, a in alerting.receiver.alerts("PipelineBatchChecksFailing", "firing")
             if a["labels"]["pipeline"] == retrain.FEATURE_PIPELINE]
    assert fired and elapsed < RETRAIN_BUDGET_S
    manifest = json.loads((tmp_path / "models" / "1.0.1" / "manifest.json").read_text())
    assert found[0]["metric"]["training_data_fingerprint"] == manifest["training_data_fingerprint"]
    # The batch failed its drift and its out_of_range checks: one alert each, at once. Only the drift check's
    # retrains (deterministic: not whichever reaches the receiver first); the other has nothing to do.
    (drift,) = [a for a in fired if a["labels"]["check"] == "drift"]
    assert manifest["triggered_by"]["fingerprint"] == drift["fingerprint"]
    assert {a["labels"]["check"] for a in fired} >= {"drift", "out_of_range"}
    lineage = trace(retrain.MODEL, "1.0.1", prometheus=PrometheusSource(alerting.prometheus.url),
                    logs=[FileSource([tmp_path / retrain.LOG_FILE])])
    (training,) = lineage.training_runs
    assert training["triggered_by"]["alertname"] == "PipelineBatchChecksFailing" and lineage.consistent
    assert [s["pipeline"] for s in lineage.trained] == [retrain.PIPELINE]
    # Every drift and data-quality alert of the batch ran the command; one retrained, the others had nothing to do.
    results = {dict(labels)["result"]: value for (name, labels), value in series_of(receiver.registry).items()
               if name == "mlscope_alert_commands_total" and dict(labels)["alertname"] == "PipelineBatchChecksFailing"}
    assert results.get("done") == 1 and results.get("not_applicable", 0) >= 1 and not results.get("failed"), results
    print(f"alert -> retrained version in Prometheus: {elapsed:.1f} s")


def series_of(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in registry.collect() for s in f.samples}
