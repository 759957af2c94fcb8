"""The demo's traces end to end: the real demo process exports its spans over OTLP/HTTP (standard environment
variables) to a receiver that decodes them with the official protobuf messages; a real Prometheus scrapes the
demo, and the latency exemplars it stores name traces the receiver holds, at the prediction span, with that
request's log line carrying the same ids. The latency incident shows in one named step, errors as ERROR."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlscope import tracing
from support.helpers import free_port, wait_until
from support.otlp_receiver import OTLPReceiver, Span
from support.prometheus import PrometheusHarness

pytest.importorskip("opentelemetry.proto")
SLOW_STEP, EXTRA_S = "feature_fetch", 0.3  # the standard latency incident (mlscope.demo.standard_incidents)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, OTLPReceiver, Path]]:
    receiver = OTLPReceiver().start()
    state, port = tmp_path_factory.mktemp("demo-traces"), free_port()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    process = subprocess.Popen([sys.executable, "-m", "mlscope.cli", "demo", "--no-schedule", "--port", str(port),
                                "--state-dir", str(state), "--rate", "40"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    url = f"http://127.0.0.1:{port}"
    try:
        lines = []
        while not any("demo model on" in line for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        assert any("traces on" in line for line in lines), lines
        yield url, receiver, state
    finally:
        process.terminate()
        process.wait(20)
        receiver.close()


def inject(url: str, incident: str, seconds: float) -> None:
    body = json.dumps({"incident": incident, "seconds": seconds}).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/faults", data=body), timeout=10).close()


def predictions(receiver: OTLPReceiver) -> dict[str, list[Span]]:
    """Traces of the classifier's predictions with their steps (four; three when the model step failed)."""
    return {t: spans for t, spans in receiver.traces().items()
            if len(spans) >= 4 and any(s.name == "predict demo-classifier" for s in spans)}


def test_exemplars_in_prometheus_name_the_traces_the_demo_exported(prometheus: PrometheusHarness, demo) -> None:
    url, receiver, state = demo
    start = time.time() - 1
    prometheus.scrape("demo-traces", url.removeprefix("http://"))

    def exemplars() -> list[dict[str, str]]:
        data = prometheus.api.exemplars('mlscope_prediction_latency_seconds_bucket{model="demo-classifier"}',
                                        start, time.time() + 1)
        found = [e["labels"] for series in data for e in series["exemplars"] if "trace_id" in e["labels"]]
        traces = receiver.traces()
        return found if len(found) >= 3 and all(e["trace_id"] in traces for e in found) else []

    found = wait_until(exemplars, timeout=30)
    traces = receiver.traces()
    log_lines = {json.loads(line)["request_id"]: json.loads(line)
                 for line in (state / "predictions.jsonl").read_text().splitlines()}
    for labels in found:
        (predict,) = [s for s in traces[labels["trace_id"]] if s.name == "predict demo-classifier"]
        assert predict.span_id == labels["span_id"] and predict.attributes[tracing.REQUEST_ID] == labels["request_id"]
        line = log_lines[labels["request_id"]]
        assert (line["trace_id"], line["span_id"]) == (labels["trace_id"], labels["span_id"])
    assert receiver.errors == [] and set(receiver.statuses) == {200}


def test_a_request_is_a_small_trace_and_incidents_show_where_they_hurt(demo) -> None:
    url, receiver, _ = demo
    wait_until(lambda: len(predictions(receiver)) >= 3, timeout=20)
    calm = set(predictions(receiver))
    # Long enough for a few sampled ones (20 %): a slow request takes 0.3 s; the demo stops with the module.
    inject(url, "latency", 30)
    inject(url, "errors", 30)

    def incident_traces() -> dict[str, list[Span]]:
        new = {t: s for t, s in predictions(receiver).items() if t not in calm}
        slow = [t for t, spans in new.items() if any(s.name == SLOW_STEP and s.seconds >= EXTRA_S for s in spans)]
        failed = [t for t, spans in new.items() if any(s.status == "ERROR" for s in spans)]
        return new if slow and failed else {}

    new = wait_until(incident_traces, timeout=25)
    for spans in list(predictions(receiver).values()):
        by_name = {s.name: s for s in spans}
        root = by_name["predict demo-classifier"]
        assert root.parent_span_id == "" and root.service == "mlscope-demo"
        names = ["feature_fetch", "preprocessing", "model"] + ([] if root.status == "ERROR" else ["postprocessing"])
        steps = [by_name[n] for n in names]
        assert len(spans) == len(steps) + 1 and all(s.parent_span_id == root.span_id for s in steps)
        assert [s.start_ns for s in steps] == sorted(s.start_ns for s in steps)  # in this order
        assert "mlscope.features.out_of_range" in by_name["preprocessing"].attributes
        if root.status == "ERROR":  # the errors incident: the model step raised, and the prediction span says so
            assert by_name["model"].status == "ERROR" and root.attributes["error.type"] == "SimulatedPredictionError"
    slow = [{s.name: s for s in spans} for spans in new.values()
            if any(s.name == SLOW_STEP and s.seconds >= EXTRA_S for s in spans)]
    for by_name in slow:  # the time went into the named step, not the others
        others = [by_name[n].seconds for n in ("preprocessing", "model", "postprocessing") if n in by_name]
        assert max(others) < EXTRA_S / 3 and by_name["predict demo-classifier"].seconds >= EXTRA_S
