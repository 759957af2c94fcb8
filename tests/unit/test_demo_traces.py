"""The demo's trace story in process: the steps of a request as children of its prediction span, the latency
fault in the named step only, out-of-range features under drift (counted against numpy), and the line the
demo says without the otel extra."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor, tracing
from mlscope.demo.service import DemoService
from mlscope.demo.workload import FEATURES_OUT_OF_RANGE, STEPS, SimulatedPredictionError, SyntheticService, train

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402


@pytest.fixture(scope="module")
def traced_service():
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monitor = ModelMonitor("demo", "1", registry=CollectorRegistry(), tracing=provider)
    return SyntheticService(train("breast_cancer"), monitor, seed=3, tracer=provider.get_tracer("demo")), exporter


@contextlib.contextmanager
def fault(service: SyntheticService, name: str, value: float) -> Iterator[None]:
    """The service's fault ``name`` set to ``value`` inside the block, back to calm after."""
    setattr(service.faults, name, value)
    try:
        yield
    finally:
        setattr(service.faults, name, 0.0)


def test_steps_are_children_and_the_latency_fault_lands_in_its_step(traced_service) -> None:
    service, exporter = traced_service
    exporter.clear()
    x, _ = service.sample(1)
    with fault(service, "extra_latency_s", 0.05):
        service.predict_one(x[0])
    *steps, predict = exporter.get_finished_spans()
    assert [s.name for s in steps] == list(STEPS) and predict.name == "predict demo"
    assert all(s.parent.span_id == predict.context.span_id for s in steps)
    seconds = {s.name: (s.end_time - s.start_time) / 1e9 for s in steps}
    assert seconds["feature_fetch"] >= 0.05 and max(v for k, v in seconds.items() if k != "feature_fetch") < 0.05


def test_drift_shows_as_out_of_range_features_and_errors_as_status(traced_service) -> None:
    service, exporter = traced_service
    exporter.clear()
    with fault(service, "drift_shift_std", 4.0):
        x, _ = service.sample(1)
        service.predict_one(x[0])
    expected = int(np.count_nonzero(np.abs(x[0] - service.trained.x_train.mean(axis=0))
                                    > 3 * service.trained.x_train.std(axis=0)))
    preprocessing = next(s for s in exporter.get_finished_spans() if s.name == "preprocessing")
    assert preprocessing.attributes[FEATURES_OUT_OF_RANGE] == expected > 0
    exporter.clear()
    with fault(service, "error_rate", 1.0), pytest.raises(SimulatedPredictionError):
        service.predict_one(x[0])
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert "postprocessing" not in spans and spans["model"].status.status_code is StatusCode.ERROR
    assert spans["model"].attributes["error.type"] == "SimulatedPredictionError"  # as docs/tracing.md says
    assert [e.name for e in spans["model"].events] == ["exception"]
    assert spans["predict demo"].attributes[tracing.ERROR_TYPE] == "SimulatedPredictionError"


def test_without_the_extra_the_demo_says_so_and_runs_without_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    monkeypatch.setitem(sys.modules, "mlscope.otel", None)  # importing it raises ImportError, as without the extra
    demo = DemoService(traces=True, say=said.append)
    assert demo._tracing() is None and said and said[0].startswith("traces off")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert DemoService(say=said.append)._tracing() is None and len(said) == 1  # no endpoint: not asked
