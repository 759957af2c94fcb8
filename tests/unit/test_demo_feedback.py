"""The demo's feedback loop in one process: its feature pipeline's runs and batches, a retraining job started by
an alert (the receiver's JSON on stdin), the new version served with the fingerprint of what it was trained on,
and the lineage read back from the JSON-lines files and from the Loki receiver (the same lines)."""
from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from mlscope.demo import retrain
from mlscope.demo.pipeline import BATCHES, PIPELINE, batch_id, newest_batches
from mlscope.demo.service import MODEL, VERSION, DemoService, serve
from mlscope.demo.workload import train
from mlscope.lineage import FileSource, LokiSource, trace
from mlscope.lineage.render import text
from mlscope.logs import LokiHandler
from mlscope.pipelines import LOGGER, training_data_fingerprint
from mlscope.stack.servers import free_port
from support.helpers import series
from support.loki_receiver import LokiReceiver

ALERT = {"status": "firing", "labels": {"alertname": "FeatureDriftHigh", "model": MODEL, "model_version": VERSION,
                                        "feature": "mean radius", "severity": "warning"},
         "annotations": {"summary": "drift"}, "startsAt": "2026-12-02T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "", "fingerprint": "0f1e2d3c4b5a6978"}


def info(registry, name: str) -> dict[str, dict[str, str]]:
    """The demo classifier's versions in ``name`` and their labels."""
    return {dict(labels)["model_version"]: dict(labels) for (n, labels), _ in series(registry).items()
            if n == name and dict(labels)["model"] == MODEL}


@pytest.fixture
def loki() -> LokiReceiver:
    receiver = LokiReceiver(allowed_labels={"app", "env", "model", "model_version", "level"})
    yield receiver
    receiver.close()


def test_an_alert_retrains_and_the_new_version_serves_with_its_lineage(tmp_path: Path, loki: LokiReceiver) -> None:
    shipped = LokiHandler(loki.url, flush_interval=0.05, shutdown_timeout=2.0)
    logging.getLogger(LOGGER).addHandler(shipped)
    demo = DemoService(state_dir=tmp_path, schedule=False, rate=5, host_resources=False, simulated_gpus=0,
                       say=lambda line: None).start()
    server = serve(demo, port := free_port())
    try:
        demo.pipeline.paused = True  # no scheduled runs: the test makes them (one may have run at start)
        first = batch_id(time.time())
        statuses = [demo.pipeline.run_once() for _ in range(2)]
        demo.pipeline.failing = True
        statuses.append(demo.pipeline.run_once())
        demo.pipeline.failing = False
        assert statuses == ["success", "success", "failure"]
        batches = newest_batches(tmp_path / BATCHES, 5)
        assert len(batches) >= 2 and all(b[0] >= first for b in batches[-2:])  # the failed run wrote none
        stdin = io.StringIO(json.dumps(ALERT))
        first_shadow = demo.service.shadow
        assert retrain.main(tmp_path, f"http://127.0.0.1:{port}", None, None, 300.0, stdin=stdin) == retrain.DONE
        # A second alert of the episode (another feature's drift) retrains nothing.
        assert retrain.main(tmp_path, f"http://127.0.0.1:{port}", None, None, 300.0,
                            stdin=io.StringIO(json.dumps({**ALERT, "fingerprint": "aa"}))) == retrain.NOT_APPLICABLE
        served = info(demo.registry, "mlscope_model_info")
        weights = info(demo.registry, "mlscope_traffic_weight_ratio")
        shares = demo.split.shares()
        retired = {name for (name, labels), _ in series(demo.registry).items()
                   if ("model", MODEL) in labels and ("model_version", VERSION) in labels}
        new = {name for (name, labels), _ in series(demo.registry).items() if ("model_version", "1.0.1") in labels}
        shadow_now = demo.service.shadow
        assert shipped.drain(10)
    finally:
        logging.getLogger(LOGGER).removeHandler(shipped)
        shipped.close()
        server.shutdown()
        server.server_close()
        demo.stop()
    # The reference: the fingerprint of the bundled training set and the batch files, computed here.
    base = train("breast_cancer")
    x = np.vstack([base.x_train, *(b["x"] for _, b in batches)])
    x = np.where(np.isnan(x), np.nanmean(base.x_train, axis=0), x)  # the job's mean imputation
    expected = training_data_fingerprint(x, base.feature_names)
    assert demo.monitor.model_version == "1.0.1" and VERSION not in served  # 1.0.0 retired: no ModelNoPredictions
    # Its serving and drift series went; mlscope_model_retired_info names it, so no per-version alert judges it.
    assert "mlscope_model_retired_info" in retired and "mlscope_predictions_total" not in retired, retired
    assert not {name for name in retired if name.startswith("mlscope_feature_")}, retired
    assert not {name for name in retired if "shadow" in name or "attribution" in name}, retired
    assert "mlscope_reference_attribution_abs_mean" in new, new  # retrained with attributions: a rank gauge
    # The shadow, retrained on the same data, is compared with the new stable (a new pair, warming up again).
    assert first_shadow is not None and shadow_now is not None and shadow_now[0] == first_shadow[0]
    assert shadow_now[1] is not first_shadow[1]
    assert demo.split.changes[-1].fingerprint == ALERT["fingerprint"]  # the split's change names the alert
    assert served["1.0.1"]["training_data_fingerprint"] == expected and served["1.0.1"]["role"] == "stable"
    # The split sends the stable share to the new version under its own name; the canary compares with it.
    assert shares["1.0.1"] == 1.0 and VERSION not in shares and VERSION not in weights and demo.canary.stable == "1.0.1"
    manifest = json.loads((tmp_path / "models" / "1.0.1" / "manifest.json").read_text())
    assert manifest["training_data_fingerprint"] == expected and manifest["triggered_by"]["fingerprint"] == ALERT[
        "fingerprint"]

    files = FileSource([tmp_path / "predictions.jsonl", tmp_path / retrain.LOG_FILE])
    for source in (files, LokiSource(loki.url)):
        found = trace(MODEL, "1.0.1", logs=[source])
        (run,) = found.training_runs
        assert run["status"] == "success" and run["run_id"] == manifest["run_id"], source.name
        assert run["training_data_fingerprint"] == expected and run["triggered_by"]["fingerprint"] == ALERT[
            "fingerprint"]
        assert found.batch_ids == [batch for batch, _ in batches]
        assert [(r["pipeline"], r["data_batch_id"], r["status"]) for r in found.pipeline_runs] == [
            (PIPELINE, batch, "success") for batch, _ in batches]
        assert found.consistent and "triggered by alert FeatureDriftHigh" in text(found)
    assert any("Prometheus: no --prometheus URL given" in m for m in found.missing)
    # The lineage can say no: a version nobody trained has no training run in either source.
    for source in (files, LokiSource(loki.url)):
        assert trace(MODEL, "9.9.9", logs=[source]).training_runs == []


def test_cooldown_0_means_no_cooldown_and_a_negative_one_names_its_flag(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from mlscope.cli import parser

    assert parser(only="demo").parse_args(["demo", "retrain", "--cooldown", "0"]).cooldown == 0
    with pytest.raises(SystemExit):
        parser(only="demo").parse_args(["demo", "retrain", "--cooldown", "-5"])
    err = capsys.readouterr().err
    assert "--cooldown" in err and "a cooldown is 0 (none) or more seconds" in err and "an incident lasts" not in err
    (tmp_path / retrain.LAST_RUN).write_text(json.dumps({"ended_at": time.time(), "version": "1.0.1"}))
    assert retrain.Retraining(tmp_path, cooldown_s=0).not_applicable() is None  # retrained 0 s ago: again
    assert "cooldown 300 s" in str(retrain.Retraining(tmp_path, cooldown_s=300).not_applicable())


def test_only_a_batchs_drift_check_retrains_not_its_data_quality_checks(tmp_path: Path) -> None:
    from mlscope.pipelines import AlertTrigger

    def check(name: str) -> AlertTrigger:
        return AlertTrigger("PipelineBatchChecksFailing", f"fp-{name}", labels={
            "alertname": "PipelineBatchChecksFailing", "pipeline": PIPELINE, "check": name})

    said: list[str] = []
    job = retrain.Retraining(tmp_path, check("out_of_range"), say=said.append)
    assert job.run() == retrain.NOT_APPLICABLE and not (tmp_path / retrain.MODELS).exists()
    assert "is the batch's out_of_range check: only a drift check retrains" in said[0]
    assert retrain.Retraining(tmp_path, check("drift")).not_applicable() is None
    assert retrain.Retraining(tmp_path, retrain.AlertTrigger("FeatureDriftHigh", "f")).not_applicable() is None
    # The compose receiver runs the job on every model's and pipeline's alerts: only the demo's retrain.
    other = retrain.AlertTrigger("FeatureDriftHigh", "o", labels={"alertname": "FeatureDriftHigh", "model": "churn"})
    assert "is about churn, not the demo's demo-classifier" in str(retrain.Retraining(tmp_path, other).not_applicable())
    assert retrain.FEATURE_PIPELINE == PIPELINE
    theirs = retrain.AlertTrigger("PipelineBatchChecksFailing", "p", labels={"pipeline": "etl", "check": "drift"})
    assert "is about pipeline etl" in str(retrain.Retraining(tmp_path, theirs).not_applicable())


def test_the_native_demo_receiver_retrains_on_drift_and_quality_alerts(tmp_path: Path) -> None:
    from mlscope.cli import parser
    from mlscope.stack.alertreceiver import load_commands
    from mlscope.stack.native import NativeStack

    stack = NativeStack(tmp_path, demo=True)
    stack.receiver_commands("127.0.0.1:3100")  # writes the state folder's alert-receiver.yml
    commands = load_commands(tmp_path / "alert-receiver.yml")
    assert set(commands) == {*retrain.TRIGGERS, "ModelCandidateWorseThanBaseline"}  # retraining beside the rollback
    assert {"FeatureDriftHigh", "PipelineBatchChecksFailing"} <= set(retrain.TRIGGERS)
    argv = commands["FeatureDriftHigh"].argv
    assert argv[1:3] == ("-m", "mlscope.cli") and commands["FeatureDriftHigh"].statuses == ("firing",)
    args = parser(only="demo").parse_args(list(argv[3:]))
    assert (args.action, Path(args.state_dir), args.url) == ("retrain", tmp_path.resolve() / "demo",
                                                             "http://127.0.0.1:8000")
    assert args.loki_url == "http://127.0.0.1:3100/loki/api/v1/push"
    assert not (tmp_path / "other").exists()
    NativeStack(tmp_path / "other", demo=False).receiver_commands()
    assert not (tmp_path / "other" / "alert-receiver.yml").exists()  # without the demo nothing is written
