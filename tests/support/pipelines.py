"""Pipelines for the tests: a real Pushgateway on a free port, and a registry with every pipeline family."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from mlscope.pipelines import PipelineMonitor

from .drift_support import small_profile


def populate_pipelines(registry: CollectorRegistry) -> PipelineMonitor:
    """Runs (a failed one), steps, records, bytes, freshness, a batch check, bad input and a training run."""
    monitor = PipelineMonitor("populated", registry=registry, owner="data-eng", expected_interval_s=3600,
                              max_data_age_s=600, reference=small_profile("populated", "1"),
                              pushgateway="127.0.0.1:1", push_timeout=0.5)
    rng = np.random.default_rng(0)
    with monitor.run("batch-1") as run:
        with run.step("ingest") as step:
            step.records(read=10, written=9, rejected={"bad_schema": 1})
            step.records(read=-1)
            step.bytes(read=100, written=90)
            step.event_times([1.7e9])
            step.check_batch({"income": rng.lognormal(10, 0.5, 200), "age": rng.normal(40, 10, 200),
                              "plan": np.array(["basic"] * 200, dtype=object)})
        run.step("open")  # never ended: the run fails with StepNotEnded
    training = monitor.training_run("model", dataset_version="v1", fingerprint="sha256:0")
    training.epoch(1, loss=0.5)
    training.final(accuracy=0.9)
    training.end()
    return monitor


def unanswering_port() -> tuple[socket.socket, int]:
    """A listening socket that accepts connections and never answers (a hung Pushgateway)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, int(sock.getsockname()[1])


@contextmanager
def pushgateway(tmp: Path) -> Iterator[str]:
    """A real Pushgateway (Debian's prometheus-pushgateway) on a free port with a persistence file: ``host:port``."""
    from mlscope.stack import servers

    server = servers.pushgateway(tmp, persistence_interval="1s").start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()


__all__ = ["populate_pipelines", "pushgateway", "unanswering_port"]
