"""Data pipelines, batch jobs and training runs: runs of named steps, batch checks, pushes to the Pushgateway.

    monitor = PipelineMonitor("features-nightly", owner="data-eng", expected_interval_s=86400,
                              reference="profile.json", pushgateway="127.0.0.1:9091")
    with monitor.run(data_batch_id="2026-12-01") as run:
        with run.step("ingest") as step:
            step.records(read=len(rows), written=len(good), rejected={"bad_schema": len(rows) - len(good)})
            step.event_times(good["ts"])
            step.check_batch(good)

Light core: prometheus-client and numpy. See docs/pipelines.md.
"""
from __future__ import annotations

from ..drift.fingerprint import training_data_fingerprint
from .checks import BatchCheck, check_batch
from .feedback import AlertTrigger, NotAnAlert
from .monitor import LOGGER, PipelineMonitor
from .push import PushResult
from .runs import Run, Step
from .training import TrainingRun

__all__ = ["LOGGER", "AlertTrigger", "BatchCheck", "NotAnAlert", "PipelineMonitor", "PushResult", "Run", "Step",
           "TrainingRun", "check_batch", "training_data_fingerprint"]
