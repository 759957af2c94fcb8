"""A registry in which every family of the catalog has a sample, through real use of each domain."""
from __future__ import annotations

import os

import numpy as np
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.resources import FakeGPU, FakeNVML, ResourceMonitor

from .drift_support import populate_drift
from .logs_helpers import populate_log_metrics
from .pipelines import populate_pipelines
from .quality_helpers import populate_quality


def populated_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    clf = ModelMonitor("clf", "1", registry=registry, metadata={"team": "t"})
    reg = ModelMonitor("reg", "1", task="regression", registry=registry)
    with clf.track() as p:
        p.output, p.score = 1, 0.9
    clf.record_error(ValueError())
    clf.record_prediction(float("nan"))
    clf.record_batch(np.array([0, 1]), scores=np.array([0.2, 0.8]), latency_seconds=0.1)
    reg.record_batch(np.array([1.5, -3.0]), latency_seconds=0.1)
    ModelMonitor("capped", "1", registry=registry, label_caps={"class": 1}).record_batch(["a", "b"])
    ModelMonitor("clf", "0", registry=registry).retire()  # a version a newer one replaced
    clf._instruments.report_internal_error("test", RuntimeError())
    # Shadow agreement (a disagreement) and attributions (no profile: learned features).
    served = ModelMonitor("shadowed", "1", registry=registry, shadow_pending=10)
    served.record_prediction(0.01, output="a", request_id="r1", attributions={"x": 0.5, "y": -1.0})
    served.shadow("r1", version="2", prediction="b")
    # Resources: a simulated GPU with an XID, a PID that cannot exist (an error), a device cap of 1 (drops).
    gpus = FakeNVML([FakeGPU(pending_xids=[79], processes=[(os.getpid(), 2**30)])])
    resources = ResourceMonitor(registry, nvml=gpus, pids=[os.getpid(), 2**22 + 1], children=True)
    resources.host.max_devices = 1  # type: ignore[union-attr]
    resources.sample_once()
    populate_drift(registry)
    populate_quality(registry)
    populate_pipelines(registry)
    _keep_alive.append(populate_log_metrics(registry))
    return registry


_keep_alive: list[object] = []
