"""The generation mode (mlscope.genai): streaming timings, tokens, cost, feedback, drift, privacy and bad input.

Reference: numpy on the timings the fake clock produced, and the price table applied by hand.
"""
from __future__ import annotations

import asyncio
import gc
import json
import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString

from mlscope.catalog import genai as cat
from mlscope.genai import GenerationMonitor, PriceError, PriceTable, length_profile, wrap_async_stream, wrap_stream
from mlscope.logs import JsonFormatter, PredictionLog, Privacy
from mlscope.quality import Quality
from support.clock import FakeClock
from support.logs_helpers import JsonLines

M = {"model": "bot", "model_version": "1"}



def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, {**M, **labels})
    return 0.0 if found is None else found


def invalid(registry: CollectorRegistry, reason: str) -> float:
    return value(registry, "mlscope_invalid_inputs_total", reason=reason)


def buckets(registry: CollectorRegistry, name: str, bounds: tuple[float, ...]) -> list[float]:
    return [value(registry, name + "_bucket", le=floatToGoString(b)) for b in bounds]


def monitor(**kwargs: object) -> tuple[GenerationMonitor, CollectorRegistry, FakeClock]:
    registry, clock = CollectorRegistry(), FakeClock(100.0)
    return GenerationMonitor("bot", "1", registry=registry, clock=clock, **kwargs), registry, clock  # type: ignore[arg-type]


def test_streamed_timings_and_tokens_equal_numpy_on_the_same_timings() -> None:
    gm, registry, clock = monitor()
    rng = np.random.default_rng(5)
    n = 40
    ttft = rng.lognormal(np.log(0.3), 0.5, n)
    outputs = rng.integers(1, 60, n)
    inputs = rng.integers(5, 2000, n)
    gaps = [rng.gamma(8.0, 0.03 / 8.0, k - 1) for k in outputs]
    for i in range(n):
        with gm.generation(input_tokens=int(inputs[i])) as g:
            clock.sleep(float(ttft[i]))
            g.token()
            for gap in gaps[i]:
                clock.sleep(float(gap))
                g.token()
            g.finish("stop")
    duration = ttft + np.array([g.sum() for g in gaps])
    several = outputs >= 2
    tpot = np.array([g.mean() for g in gaps if g.size])
    for name, observed, bounds in (
            ("mlscope_genai_time_to_first_token_seconds", ttft, cat.TTFT_BUCKETS),
            ("mlscope_genai_operation_duration_seconds", duration, cat.DURATION_BUCKETS),
            ("mlscope_genai_time_per_output_token_seconds", tpot, cat.TPOT_BUCKETS),
            ("mlscope_genai_output_tokens_per_second", outputs / duration, cat.TOKENS_PER_SECOND_BUCKETS)):
        assert value(registry, name + "_count") == observed.size, name
        assert value(registry, name + "_sum") == pytest.approx(observed.sum(), rel=1e-9), name
        assert buckets(registry, name, bounds) == [float((observed <= b).sum()) for b in bounds], name
    assert several.sum() == tpot.size
    for token_type, counts in (("input", inputs), ("output", outputs)):
        name = "mlscope_genai_token_usage"
        assert value(registry, name + "_sum", token_type=token_type) == counts.sum()
        assert [value(registry, name + "_bucket", token_type=token_type, le=floatToGoString(b))
                for b in cat.TOKEN_BUCKETS] \
            == [float((counts <= b).sum()) for b in cat.TOKEN_BUCKETS]
        assert value(registry, "mlscope_genai_tokens_total", token_type=token_type, tenant="default") == counts.sum()
    assert value(registry, "mlscope_genai_generations_total", finish_reason="stop") == n
    assert value(registry, "mlscope_predictions_total") == n  # traffic alerts see generations too
    assert value(registry, "mlscope_genai_streams_in_flight") == 0


def test_cost_equals_the_price_table_by_hand_and_a_later_price_keeps_history() -> None:
    prices = PriceTable({"bot": {"input": 3.0, "output": 15.0}}, per_tokens=1_000_000)
    gm, registry, _ = monitor(prices=prices)
    calls = [(120, 48, "acme"), (900, 300, "acme"), (40, 2, "globex"), (7, 0, None)]
    for n_in, n_out, tenant in calls:
        gm.record_generation(n_in, n_out, 1.0, tenant=tenant)
    prices.set("bot", {"input": 6.0, "output": 30.0})  # a price rise: only later generations pay it
    gm.record_generation(1000, 1000, 1.0, tenant="acme")
    expected = {"acme": ((120 + 900) * 3 + 1000 * 6, (48 + 300) * 15 + 1000 * 30), "globex": (40 * 3, 2 * 15),
                "default": (7 * 3, 0)}
    for tenant, (cost_in, cost_out) in expected.items():
        assert value(registry, "mlscope_genai_cost_total", tenant=tenant, token_type="input") \
            == pytest.approx(cost_in / 1e6)
        assert value(registry, "mlscope_genai_cost_total", tenant=tenant, token_type="output") \
            == pytest.approx(cost_out / 1e6)


def test_price_table_from_a_file_and_refused_prices(tmp_path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"currency": "EUR", "per_tokens": 1000, "models": {"bot": {"input": 1, "output": 2}}}))
    table = PriceTable.from_file(path)
    assert (table.currency, table.price("bot").input_per_token, table.price("bot").output_per_token) \
        == ("EUR", 0.001, 0.002)
    gm, registry, _ = monitor(prices=str(path))
    gm.record_generation(1000, 500, 1.0)
    assert value(registry, "mlscope_genai_cost_total", tenant="default", token_type="output") == pytest.approx(1.0)
    for bad in ({"input": -1, "output": 1}, {"input": float("nan"), "output": 1}, {"input": 1}):
        with pytest.raises(PriceError):
            PriceTable({"bot": bad})  # type: ignore[dict-item]
    path.write_text("{not json")
    with pytest.raises(PriceError, match="prices.json"):
        PriceTable.from_file(path)


def test_bad_input_is_counted_and_never_raises() -> None:
    gm, registry, _ = monitor(prices=PriceTable({"other": {"input": 1, "output": 1}}))
    gm.record_generation(float("nan"), -3, 1.0)  # both counts refused, the generation still counts
    gm.record_generation("many", 2.5, float("inf"), ttft_s=-1)  # type: ignore[arg-type]
    gm.record_generation(10, 10, 1.0, finish_reason="weird")
    gm.record_generation(10, 10, 1.0, error=TimeoutError("slow"))
    assert invalid(registry, "tokens_invalid") == 4
    assert invalid(registry, "latency_not_finite_or_negative") == 2
    assert invalid(registry, "finish_reason_unknown") == 1
    assert invalid(registry, "price_unknown_model") == 2  # "bot" is not in the table: counted, not priced
    assert value(registry, "mlscope_genai_generations_total", finish_reason="other") == 1
    assert value(registry, "mlscope_genai_generations_total", finish_reason="error") == 1
    assert value(registry, "mlscope_genai_errors_total", error_type="TimeoutError") == 1
    assert value(registry, "mlscope_prediction_errors_total", error_type="TimeoutError") == 1
    assert value(registry, "mlscope_genai_generations_total", finish_reason="stop") == 2
    assert value(registry, "mlscope_genai_token_usage_count", token_type="input") == 2  # only the valid counts
    assert value(registry, "mlscope_genai_cost_total", tenant="default", token_type="input") == 0
    g = gm.generation(input_tokens=3)
    g.token()
    g.finish()
    g.finish()  # closed twice: counted and ignored
    g.close()
    assert invalid(registry, "stream_closed_twice") == 2
    assert value(registry, "mlscope_genai_generations_total", finish_reason="stop") == 3
    gm.record_feedback("x", None)
    gm.record_feedback("x", score=1.5)
    gm.record_feedback("x", True)  # no quality=: counted as an outcome without quality
    assert invalid(registry, "feedback_invalid") == 2
    assert invalid(registry, "outcome_without_quality") == 1
    assert value(registry, "mlscope_monitor_errors_total") == 0


def test_implausible_counts_and_inconsistent_timings_are_refused() -> None:
    """10**30 input tokens made the token and cost totals 1e+30 and 2e+24 for good; a first token later than
    the end was observed as TTFT; a TTFT was observed for a generation without any output token."""
    gm, registry, _ = monitor(prices=PriceTable({"bot": {"input": 1, "output": 1}}))
    gm.record_generation(10**30, 5, 1.0)
    gm.record_generation(1, 5, 1.0, ttft_s=5.0)
    gm.record_generation(1, 0, 1.0, ttft_s=0.5)
    assert invalid(registry, "tokens_implausible") == 1 and invalid(registry, "ttft_after_end") == 1
    assert value(registry, "mlscope_genai_tokens_total", tenant="default", token_type="input") == 2
    assert value(registry, "mlscope_genai_cost_total", tenant="default", token_type="input") == 2
    assert value(registry, "mlscope_genai_time_to_first_token_seconds_count") == 0
    assert value(registry, "mlscope_genai_time_per_output_token_seconds_count") == 0
    assert value(registry, "mlscope_genai_no_first_token_total", finish_reason="stop") == 1


def test_a_failing_clock_is_a_monitor_error_not_the_services() -> None:
    registry = CollectorRegistry()
    calls = iter([1.0, 2.0])

    def clock() -> float:
        return next(calls)  # raises StopIteration on the third read

    gm = GenerationMonitor("bot", "1", registry=registry, clock=clock)
    g = gm.generation(input_tokens=1)
    g.token()
    g.finish()
    assert registry.get_sample_value("mlscope_monitor_errors_total",
                                     {"operation": "generation", "exception": "StopIteration"}) == 1


def test_abandoned_streams_and_streams_without_a_first_token() -> None:
    gm, registry, clock = monitor()
    stream = wrap_stream(gm.generation(input_tokens=5), iter(range(100)))
    for item in stream:
        clock.sleep(0.1)
        if item == 2:
            break  # the client went away: the wrapper is closed when collected
    del stream
    gc.collect()
    forgotten = gm.generation(input_tokens=5)  # never finished nor closed: garbage-collected
    forgotten.token()
    del forgotten
    gc.collect()
    never = gm.generation(input_tokens=5)
    clock.sleep(30.0)
    never.close()  # no first token, ever
    with pytest.raises(RuntimeError):
        for _ in wrap_stream(gm.generation(input_tokens=5), _failing()):
            pass
    assert value(registry, "mlscope_genai_generations_total", finish_reason="abandoned") == 3
    assert value(registry, "mlscope_genai_generations_total", finish_reason="error") == 1
    assert value(registry, "mlscope_genai_errors_total", error_type="RuntimeError") == 1
    assert value(registry, "mlscope_genai_no_first_token_total", finish_reason="abandoned") == 1
    assert value(registry, "mlscope_genai_no_first_token_total", finish_reason="error") == 1
    assert value(registry, "mlscope_genai_time_to_first_token_seconds_count") == 2
    assert value(registry, "mlscope_genai_token_usage_sum", token_type="output") == 3 + 1 + 0 + 0
    assert value(registry, "mlscope_genai_streams_in_flight") == 0


def _failing():
    raise RuntimeError("provider down")
    yield  # pragma: no cover


def test_async_stream_wrapper_and_provider_counts() -> None:
    gm, registry, clock = monitor()

    async def chunks():
        for text, reason in (("Hel", None), ("lo", None), ("!", "length")):
            clock.sleep(0.05)
            yield {"text": text, "tokens": 2, "finish_reason": reason}

    async def consume() -> list[str]:
        return [c["text"] async for c in wrap_async_stream(
            gm.generation(input_tokens=9), chunks(), tokens_of=lambda c: c["tokens"],
            finish_reason_of=lambda c: c["finish_reason"])]

    assert asyncio.run(consume()) == ["Hel", "lo", "!"]
    assert value(registry, "mlscope_genai_generations_total", finish_reason="length") == 1
    assert value(registry, "mlscope_genai_token_usage_sum", token_type="output") == 6
    assert value(registry, "mlscope_genai_time_to_first_token_seconds_sum") == pytest.approx(0.05)
    # Chunks of 2 tokens at 50 ms: (last - first) / (6 - 1) per token after the first.
    assert value(registry, "mlscope_genai_time_per_output_token_seconds_sum") == pytest.approx(0.1 / 5)
    with gm.generation(input_tokens=1) as g:
        g.chunk(3)
        g.finish("stop", output_tokens=10)  # the provider's billable count wins
    assert value(registry, "mlscope_genai_token_usage_sum", token_type="output") == 16


def test_feedback_joins_through_the_quality_store() -> None:
    registry = CollectorRegistry()
    quality = Quality(registry=registry, flush_interval_s=0.01)
    try:
        gm = GenerationMonitor("bot", "1", registry=registry, quality=quality)
        ids = [gm.record_generation(10, 20, 1.0, ttft_s=0.2) for _ in range(10)]
        quality.flush()
        for i, rid in enumerate(ids[:8]):
            if i < 5:
                gm.record_feedback(rid, i < 3)  # 3 up, 2 down
            else:
                gm.record_feedback(rid, score=[0.9, 0.2, 0.5][i - 5])  # up, down, up (threshold 0.5)
        quality.flush()
        labels = {**M, "segment": ""}
        assert registry.get_sample_value("mlscope_quality_labelled_total", labels) == 8
        assert registry.get_sample_value("mlscope_quality_predictions_stored_total", labels) == 10
        assert registry.get_sample_value("mlscope_quality_correct_total", {**labels, "class": "1"}) == 5
    finally:
        quality.close()


def test_prompt_and_response_lengths_are_drift_features() -> None:
    rng = np.random.default_rng(1)
    reference = length_profile(rng.lognormal(5, 0.5, 2000), rng.lognormal(4, 0.5, 2000), model="bot",
                               model_version="1")
    gm, registry, _ = monitor(reference=reference)
    for n_in, n_out in zip(rng.lognormal(6, 0.5, 200).astype(int), rng.lognormal(4, 0.5, 200).astype(int),
                           strict=True):
        gm.record_generation(int(n_in), int(n_out), 1.0)
    features = {s.labels.get("feature") for family in registry.collect() for s in family.samples
                if family.name.startswith("mlscope_drift")}
    assert {"input_tokens", "output_tokens"} <= features


def test_text_is_never_logged_by_default_and_privacy_rules_apply_when_opted_in() -> None:
    lines = JsonLines()
    gm, _, _ = monitor(prediction_log=PredictionLog(lines.logger("genai-default"), sample_rate=1.0))
    gm.record_generation(5, 5, 0.5, prompt="my card is 4111", response="ok")
    assert "prompt" not in lines.lines[0] and "response" not in lines.lines[0]
    assert lines.lines[0]["finish_reason"] == "stop" and lines.lines[0]["output_tokens"] == 5

    private = JsonLines()
    private.setFormatter(JsonFormatter(privacy=Privacy(hash={"prompt"}, key="k")))
    gm2 = GenerationMonitor("bot", "2", registry=CollectorRegistry(), log_text=True, max_text_chars=10,
                            prediction_log=PredictionLog(private.logger("genai-private"), sample_rate=1.0))
    gm2.record_generation(5, 5, 0.5, prompt="my card is 4111", response="a" * 50)
    line = private.lines[0]
    assert line["prompt"].startswith("hmac-sha256:") and "4111" not in json.dumps(line)
    assert line["response"] == "a" * 10 + "…[truncated 40 chars]"


def test_every_genai_metric_is_created_from_the_catalog() -> None:
    gm, registry, _ = monitor()
    gm.record_generation(1, 1, 0.1, ttft_s=0.05)
    exposed = {family.name for family in registry.collect()}
    for spec in cat.METRICS:
        assert spec.name.removesuffix("_total") in exposed, spec.name
    assert all(math.isfinite(b) for b in cat.TOKEN_BUCKETS)
