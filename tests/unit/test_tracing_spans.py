"""The monitor's prediction spans, read back with the SDK's in-memory exporter: attributes, parents, status, and
the ids the exemplar (parsed with prometheus-client's OpenMetrics parser) and the log line carry."""
from __future__ import annotations

import time
import zlib

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from mlscope import ModelMonitor, tracing
from mlscope.ids import clean_request_id
from mlscope.labels import OVERFLOW
from mlscope.logs import PredictionLog
from mlscope.quality import Quality
from support.logs_helpers import JsonLines

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased  # noqa: E402
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE  # noqa: E402
from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_TYPE  # noqa: E402


def provider_with_memory(sampler=None):
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def hexes(context) -> tuple[str, str]:
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def latency_exemplars(registry: CollectorRegistry) -> list[dict[str, str]]:
    """Exemplar labels of the latency histogram, parsed from the OpenMetrics exposition."""
    text = generate_latest(registry).decode()
    return [dict(s.exemplar.labels) for f in text_string_to_metric_families(text)
            if f.name == "mlscope_prediction_latency_seconds" for s in f.samples if s.exemplar is not None]


def test_semantic_convention_keys_are_the_packages() -> None:
    assert tracing.ERROR_TYPE == ERROR_TYPE


def test_a_prediction_span_is_the_child_of_the_request_span_and_names_the_same_request() -> None:
    provider, exporter = provider_with_memory()
    lines = JsonLines()
    registry = CollectorRegistry()
    monitor = ModelMonitor("churn", "3.2.0", registry=registry, tracing=provider,
                           prediction_log=PredictionLog(lines.logger("spans"), sample_rate=0.0))
    request_tracer = provider.get_tracer("test")
    with request_tracer.start_as_current_span("POST /predict", kind=trace.SpanKind.SERVER) as request:
        with monitor.track(request_id="req-1", data_batch_id="batch-7") as p, \
                request_tracer.start_as_current_span("model"):  # a step inside the block: its child
            p.output = 1
        assert trace.get_current_span() is request  # the monitor restored the request's context
    model, predict, server = exporter.get_finished_spans()
    assert predict.name == "predict churn" and predict.kind is trace.SpanKind.INTERNAL
    assert predict.parent.span_id == server.context.span_id and predict.context.trace_id == server.context.trace_id
    assert model.parent.span_id == predict.context.span_id
    assert dict(predict.attributes) == {
        tracing.MODEL: "churn", tracing.MODEL_VERSION: "3.2.0", tracing.REQUEST_ID: "req-1",
        tracing.DATA_BATCH_ID: "batch-7", tracing.PREDICTED_CLASS: "1"}
    assert predict.status.status_code is trace.StatusCode.UNSET
    trace_id, span_id = hexes(predict.context)
    (line,) = lines.lines  # sample_rate 0 but a sampled trace: the trace's decision is the sample
    assert (line["request_id"], line["trace_id"], line["span_id"], line["data_batch_id"]) == \
        ("req-1", trace_id, span_id, "batch-7")
    assert latency_exemplars(registry) == [{"request_id": "req-1", "trace_id": trace_id, "span_id": span_id}]


def test_a_failed_prediction_records_the_exception_with_status_error() -> None:
    provider, exporter = provider_with_memory()
    monitor = ModelMonitor("churn", "1", registry=CollectorRegistry(), tracing=provider)
    with pytest.raises(KeyError), monitor.track(request_id="req-err"):
        raise KeyError("feature 'age' missing")
    monitor.record_error(TimeoutError("store"), latency_seconds=0.2, request_id="req-late")
    (failed, reported) = exporter.get_finished_spans()
    for span, name in ((failed, "KeyError"), (reported, "TimeoutError")):
        assert span.status.status_code is trace.StatusCode.ERROR and span.attributes[ERROR_TYPE] == name
        assert tracing.PREDICTED_CLASS not in span.attributes
        (event,) = span.events
        assert event.name == "exception" and event.attributes[EXCEPTION_TYPE] == name
    assert (reported.end_time - reported.start_time) / 1e9 == pytest.approx(0.2, abs=0.01)


def test_batch_and_after_the_fact_spans_last_their_latency() -> None:
    provider, exporter = provider_with_memory()
    monitor = ModelMonitor("churn", "1", registry=CollectorRegistry(), tracing=provider)
    monitor.record_batch([0, 1, 1], latency_seconds=0.25, data_batch_id="nightly-2026-12-01")
    monitor.record_prediction(0.05, output=0, request_id="r-9")
    batch, single = exporter.get_finished_spans()
    assert batch.name == "predict_batch churn" and batch.attributes[tracing.BATCH_ROWS] == 3
    assert batch.attributes[tracing.DATA_BATCH_ID] == "nightly-2026-12-01"
    assert (batch.end_time - batch.start_time) / 1e9 == pytest.approx(0.25, abs=0.01)
    assert single.attributes[tracing.REQUEST_ID] == "r-9" and single.attributes[tracing.PREDICTED_CLASS] == "0"
    assert (single.end_time - single.start_time) / 1e9 == pytest.approx(0.05, abs=0.01)


def test_predicted_class_on_the_span_is_the_capped_metric_label() -> None:
    provider, exporter = provider_with_memory()
    monitor = ModelMonitor("m", "1", registry=CollectorRegistry(), tracing=provider, label_caps={"class": 2})
    for output in ("a", "b", "c"):
        with monitor.track() as p:
            p.output = output
    assert [s.attributes[tracing.PREDICTED_CLASS] for s in exporter.get_finished_spans()] == ["a", "b", OVERFLOW]


def test_log_lines_are_the_sampled_traces_plus_the_logs_own_sample() -> None:
    """A line for every exported (sampled) trace, and for every request id in the log's own CRC sample; only
    the lines of exported traces carry their ids, and every exemplar names a logged request."""
    provider, exporter = provider_with_memory(ParentBased(TraceIdRatioBased(0.3)))
    lines = JsonLines()
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry, tracing=provider,
                           prediction_log=PredictionLog(lines.logger("tie"), sample_rate=0.2))
    requests = [f"req-{i}" for i in range(300)]
    for request_id in requests:
        with monitor.track(request_id=request_id) as p:
            p.output = 1
    exported = {s.attributes[tracing.REQUEST_ID]: hexes(s.context) for s in exporter.get_finished_spans()}
    own_sample = {r for r in requests if zlib.crc32(r.encode()) < 0.2 * 2**32}  # the log's CRC-32 sample
    assert 40 < len(exported) < 150 and 30 < len(own_sample) < 90
    assert {line["request_id"] for line in lines.lines} == set(exported) | own_sample
    assert {line["request_id"]: (line["trace_id"], line["span_id"]) for line in lines.lines if "trace_id" in line} \
        == exported
    exemplars = latency_exemplars(registry)
    assert exemplars and all(exported[e["request_id"]] == (e["trace_id"], e["span_id"]) for e in exemplars
                             if "trace_id" in e)


@pytest.mark.parametrize("variable", [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_SAMPLER", "always_off")])
def test_traces_off_leave_the_log_its_own_rate(monkeypatch: pytest.MonkeyPatch, variable: tuple[str, str]) -> None:
    """Traces switched off (the SDK disabled, or nothing sampled) never take the log below its own rate."""
    from mlscope.otel import configure_tracing

    monkeypatch.setenv(*variable)
    registry = CollectorRegistry()
    traced = configure_tracing("off", registry=registry, exporter=InMemorySpanExporter(), set_global=False)
    lines = JsonLines()
    monitor = ModelMonitor("m", "1", registry=registry, tracing=traced.provider,
                           prediction_log=PredictionLog(lines.logger("sdk-off"), sample_rate=1.0))
    for i in range(200):
        with monitor.track(request_id=f"r{i}") as p:
            p.output = 1
    traced.shutdown()
    assert len(lines.lines) == 200 and not any("trace_id" in line for line in lines.lines)
    assert latency_exemplars(registry) and all("trace_id" not in e for e in latency_exemplars(registry))


def test_an_unsampled_trace_gives_no_trace_id_to_exemplars_or_lines() -> None:
    provider, exporter = provider_with_memory(ALWAYS_OFF)
    lines = JsonLines()
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry, tracing=provider,
                           prediction_log=PredictionLog(lines.logger("off"), slow_seconds=0.01))
    with monitor.track(request_id="slow-1") as p:  # slow: logged whatever the sample says
        time.sleep(0.02)
        p.output = 1
    assert exporter.get_finished_spans() == ()
    (line,) = lines.lines
    assert line["request_id"] == "slow-1" and "trace_id" not in line
    assert latency_exemplars(registry) == [{"request_id": "slow-1"}]


def test_a_long_request_id_is_one_key_for_span_exemplar_line_and_late_outcome() -> None:
    provider, exporter = provider_with_memory()
    lines = JsonLines()
    registry = CollectorRegistry()
    quality = Quality(registry=registry, start=False)
    monitor = ModelMonitor("m", "1", registry=registry, tracing=provider, quality=quality, classes=["a", "b"],
                           prediction_log=PredictionLog(lines.logger("long"), sample_rate=1.0))
    long_id = "checkout-session-" + "9" * 100
    with monitor.track(request_id=long_id) as p:
        p.output = "a"
    key = clean_request_id(long_id)
    (span,) = exporter.get_finished_spans()
    (exemplar,) = latency_exemplars(registry)
    assert span.attributes[tracing.REQUEST_ID] == lines.lines[0]["request_id"] == exemplar["request_id"] == key
    assert exemplar["trace_id"] == hexes(span.context)[0]  # the old code dropped trace_id for such an id
    quality.process_queue()
    assert quality.record_outcome(long_id, "a") == {"joined": 1}  # the outcome, sent with the raw id, joins


def test_auto_mode_waits_for_a_real_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default tracing=None: nothing under the API's placeholder provider, spans once an SDK one is global."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)  # the API's default: a proxy, no SDK
    monitor = ModelMonitor("m", "1", registry=CollectorRegistry())
    with monitor.track() as p:
        p.output = 1
        assert not trace.get_current_span().get_span_context().is_valid
    provider, exporter = provider_with_memory()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    with monitor.track():
        pass
    assert len(exporter.get_finished_spans()) == 1
    off = ModelMonitor("m", "2", registry=CollectorRegistry(), tracing=False)
    with off.track():
        pass
    assert len(exporter.get_finished_spans()) == 1
