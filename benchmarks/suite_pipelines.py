"""Suite `pipelines`: a step's bookkeeping against the raw prometheus-client updates it makes, and a push's
wall time against the Pushgateway's own HTTP round trip (a real Debian prometheus-pushgateway)."""
from __future__ import annotations

import io
import logging
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest

from common import Row, per_call_us
from mlscope.logs import JsonFormatter
from mlscope.pipelines import LOGGER, PipelineMonitor
from mlscope.pipelines.push import PipelineGroup
from mlscope.stack import servers


def raw_step(registry: CollectorRegistry) -> Callable[[], None]:
    """The updates one step with read/written/one rejection reason makes, on pre-bound children."""
    labels = ("raw", "s")
    steps = Counter("raw_steps", "h", ["pipeline", "step", "status"], registry=registry).labels(*labels, "success")
    records = Counter("raw_records", "h", ["pipeline", "step", "direction"], registry=registry)
    read, written = records.labels(*labels, "in"), records.labels(*labels, "out")
    rejected = Counter("raw_rejected", "h", ["pipeline", "step", "reason"], registry=registry).labels(*labels, "bad")
    duration = Gauge("raw_duration", "h", ["pipeline", "step"], registry=registry).labels(*labels)
    last = Gauge("raw_last", "h", ["pipeline", "step", "kind"], registry=registry)
    last_in, last_out, last_rejected = (last.labels(*labels, k) for k in ("in", "out", "rejected"))

    def step() -> None:
        start = time.perf_counter()
        read.inc(1000)
        written.inc(990)
        rejected.inc(10)
        steps.inc()
        duration.set(time.perf_counter() - start)
        last_in.set(1000)
        last_out.set(990)
        last_rejected.set(10)

    return step


def _pipeline_step(run) -> Callable[[], None]:  # type: ignore[no-untyped-def]
    def step() -> None:
        with run.step("s") as s:
            s.records(read=1000, written=990, rejected={"bad": 10})
        run.steps.clear()

    return step


def suite_pipelines(quick: bool) -> list[Row]:
    number, repeat = (2_000, 5) if quick else (20_000, 7)
    raw = per_call_us(raw_step(CollectorRegistry()), number, repeat)
    run = PipelineMonitor("bench", registry=CollectorRegistry()).run("b")
    quiet = per_call_us(_pipeline_step(run), number, repeat)
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logged = per_call_us(_pipeline_step(run), number, repeat)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    run.end()  # a run left open is warned about (and ended) at exit
    rows = [
        Row("pipelines", "step bookkeeping (records, 1 rejection reason, end; no log handler)", quiet, "µs",
            "raw prometheus-client updates of a step", raw, "< 10x raw"),
        Row("pipelines", "step bookkeeping with its JSON log line (StreamHandler + JsonFormatter)", logged, "µs",
            "raw prometheus-client updates of a step", raw, ""),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        gateway = servers.pushgateway(Path(tmp)).start()
        try:
            rows.append(_push_row(gateway, 20 if quick else 200))
        finally:
            gateway.stop()
    return rows


def _push_row(gateway: servers.Server, pushes: int) -> Row:
    registry = CollectorRegistry()
    monitor = PipelineMonitor("bench-push", registry=registry, owner="o", expected_interval_s=60,
                              pushgateway=f"127.0.0.1:{gateway.port}")
    with monitor.run("b") as run:
        for name in ("ingest", "transform", "load"):
            with run.step(name) as step:
                step.records(read=1000, written=990, rejected={"bad": 10})
                step.bytes(read=4096)
    body = generate_latest(PipelineGroup(registry, "bench-push"))  # type: ignore[arg-type]
    url = f"{gateway.url}/metrics/job/mlscope-pipelines/pipeline/bench-push"

    def raw_post() -> None:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def timed(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(pushes):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    timed(raw_post)  # warm both paths (connections, the gateway's first group)
    results = [monitor.push() for _ in range(3)]
    assert all(r.ok for r in results), results
    raw = timed(raw_post)
    pushed = timed(monitor.push)
    return Row("pipelines", f"push of a 3-step run's group ({len(body):,} bytes)", pushed, "ms",
               "the same body POSTed with urllib (the Pushgateway's round trip)", raw, "")
