"""Every event of a run reaches Loki through mlscope's handler: one JSON line each, run and batch ids in the line,
never in a stream label; the pipeline alerts' logs_url query finds them."""
from __future__ import annotations

import json
import logging

from prometheus_client import CollectorRegistry

from mlscope.logs import LokiHandler
from mlscope.pipelines import LOGGER, PipelineMonitor
from support.loki_receiver import LokiReceiver


def test_a_runs_events_are_loki_lines_with_its_ids(receiver: LokiReceiver) -> None:
    registry = CollectorRegistry()
    handler = LokiHandler(receiver.url, env="test", registry=registry, flush_interval=0.05)
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        monitor = PipelineMonitor("nightly-features", registry=registry)
        with monitor.run("2026-12-01", model="churn", model_version="3.2.0") as run:
            with run.step("ingest") as step:
                step.records(read=10, written=10)
            run.step("publish").end(RuntimeError("bucket gone"))
        training = monitor.training_run("churn", dataset_version="2026-11-30", fingerprint="sha256:ab",
                                        hyperparameters={"C": 1.0}, transformations=["scale"])
        training.epoch(1, loss=0.4)
        training.end()
        assert handler.drain(10)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        handler.close()
    assert receiver.errors == []
    lines = receiver.select(f'{{app="mlscope"}} | json | pipeline="nightly-features" | run_id="{run.run_id}"')
    events = [json.loads(e.line)["event"] for e in lines]
    assert events == ["pipeline_run_start", "pipeline_step_end", "pipeline_step_end", "pipeline_run_end"]
    for entry in lines:
        line = json.loads(entry.line)
        assert (line["data_batch_id"], line["model"], line["model_version"]) == ("2026-12-01", "churn", "3.2.0")
        assert set(entry.labels) <= {"app", "env", "model", "model_version", "level"}
    publish = json.loads(lines[2].line)
    assert (publish["step"], publish["status"], publish["error_type"], lines[2].labels["level"]) == (
        "publish", "failure", "RuntimeError", "error")
    start = json.loads(receiver.select(f'{{app="mlscope"}} | json | run_id="{training.run_id}"')[0].line)
    assert (start["event"], start["hyperparameters"], start["transformations"], start["dataset_version"],
            start["training_data_fingerprint"]) == ("training_run_start", {"C": 1.0}, ["scale"], "2026-11-30",
                                                    "sha256:ab")
