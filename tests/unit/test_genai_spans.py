"""A generation's span carries the OpenTelemetry GenAI attributes (optional extra, tested with opentelemetry-sdk);
the demo's simulated streaming endpoint is deterministic and its ttft incident moves the first token."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from mlscope.demo.incidents import INCIDENTS
from mlscope.demo.textgen import TextGenerator, serve_plan
from mlscope.genai import GenerationMonitor
from support.clock import FakeClock

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as otel  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402


def test_generation_span_has_the_genai_attributes() -> None:
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gm = GenerationMonitor("bot", "1", registry=CollectorRegistry(), tracing=provider)
    gm.record_generation(120, 48, 1.5, ttft_s=0.2, finish_reason="length", tenant="acme", request_id="r-1")
    gm.record_generation(10, 0, 0.3, error=TimeoutError("late"), request_id="r-2")
    ok, failed = exporter.get_finished_spans()
    assert ok.name == "chat bot"
    attributes = dict(ok.attributes or {})
    assert attributes[otel.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[otel.GEN_AI_REQUEST_MODEL] == "bot"
    assert (attributes[otel.GEN_AI_USAGE_INPUT_TOKENS], attributes[otel.GEN_AI_USAGE_OUTPUT_TOKENS]) == (120, 48)
    assert attributes[otel.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)
    assert attributes[otel.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == pytest.approx(0.2)
    assert attributes["mlscope.request.id"] == "r-1" and attributes["mlscope.tenant"] == "acme"
    assert (ok.end_time - ok.start_time) / 1e9 == pytest.approx(1.5, abs=0.01)
    assert failed.status.status_code == StatusCode.ERROR and failed.attributes["error.type"] == "TimeoutError"



def test_simulated_endpoint_is_deterministic_and_the_ttft_incident_delays_the_first_token() -> None:
    plans = [TextGenerator(seed=3).plan() for _ in range(2)]
    assert plans[0] == plans[1]
    generator = TextGenerator(seed=4)
    calm = [generator.plan() for _ in range(300)]
    assert 0.1 < np.median([p.ttft_s for p in calm]) < 0.5
    assert {p.finish_reason for p in calm} == {"stop", "length"}
    demo = SimpleNamespace(text=SimpleNamespace(generator=generator))
    INCIDENTS.get("ttft").apply(demo)
    late = [generator.plan() for _ in range(50)]
    INCIDENTS.get("ttft").revert(demo)
    assert min(p.ttft_s for p in late) > 2.0 and generator.faults.extra_ttft_s == 0.0
    clock, registry = FakeClock(), CollectorRegistry()
    gm = GenerationMonitor("bot", "1", registry=registry, clock=clock)
    text = serve_plan(gm, calm[0], clock.sleep)
    assert text.split() == [f"w{i}" for i in range(calm[0].output_tokens)]
    assert registry.get_sample_value("mlscope_genai_time_to_first_token_seconds_sum", {
        "model": "bot", "model_version": "1"}) == pytest.approx(calm[0].ttft_s)


def test_the_demos_normal_traffic_stays_below_the_truncation_alert() -> None:
    """The demo cut 14 % of its answers at 256 tokens: GenAITruncationRatioHigh fired in normal traffic."""
    from mlscope.demo.textgen import TextGenerator
    from mlscope.rules.config import Thresholds

    generator = TextGenerator(seed=0)
    plans = [generator.plan() for _ in range(5000)]
    truncated = sum(p.finish_reason == "length" for p in plans) / len(plans)
    assert truncated < Thresholds().genai_truncation_ratio / 2, truncated
