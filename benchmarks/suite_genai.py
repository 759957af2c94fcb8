"""Suite `genai`: the generation mode's cost against the raw prometheus-client updates it makes.

- per token: ``Generation.token()`` (a clock read and two additions; no metric is touched until the end)
  against one bound ``Counter.inc()``, the least a per-token metric update costs;
- per request: ``record_generation()`` with a price table against the 13 bound-child updates it makes
  (generations, predictions, 2 token histograms, 2 token counters, 2 cost counters, duration, TTFT, TPOT,
  tokens/s), and a streamed generation of 100 tokens against the same updates plus the in-flight gauge's two.
"""
from __future__ import annotations

import statistics
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common import Row, per_call_us
from mlscope.catalog import genai as cat
from mlscope.genai import GenerationMonitor, PriceTable

TOKENS = 100


def _raw() -> tuple[list[Counter], list[Histogram], Gauge]:
    registry = CollectorRegistry()
    counters = [Counter(f"c{i}_total", "c", ["m"], registry=registry).labels("x") for i in range(6)]
    histograms = [Histogram(f"h{i}", "h", ["m"], registry=registry, buckets=b).labels("x")
                  for i, b in enumerate((cat.TOKEN_BUCKETS, cat.TOKEN_BUCKETS, cat.DURATION_BUCKETS,
                                         cat.TTFT_BUCKETS, cat.TPOT_BUCKETS, cat.TOKENS_PER_SECOND_BUCKETS))]
    gauge = Gauge("g", "g", ["m"], registry=registry).labels("x")
    return counters, histograms, gauge


def suite_genai(quick: bool) -> list[Row]:
    number, repeat = (20_000, 5) if quick else (50_000, 15)
    prices = PriceTable({"bench": {"input": 3.0, "output": 15.0}}, per_tokens=1_000_000)
    gm = GenerationMonitor("bench", "1", registry=CollectorRegistry(), prices=prices)
    counters, histograms, gauge = _raw()
    values = (120.0, 48.0, 1.9, 0.21, 0.035, 25.0)
    streaming = gm.generation(input_tokens=10)

    def raw_request() -> None:
        for c in counters:
            c.inc()
        counters[0].inc(0.0004)  # the second cost counter
        for h, v in zip(histograms, values, strict=True):
            h.observe(v)

    def raw_stream() -> None:
        gauge.inc()
        raw_request()
        gauge.dec()

    def streamed() -> None:
        g = gm.generation(input_tokens=120, tenant="acme")
        for _ in range(TOKENS):
            g.token()
        g.finish("stop")

    cases = {"token": streaming.token, "raw_inc": counters[0].inc,
             "request": lambda: gm.record_generation(120, 48, 1.9, ttft_s=0.21, tenant="acme"),
             "raw_request": raw_request}
    runs: dict[str, list[float]] = {name: [] for name in cases}
    stream_runs: dict[str, list[float]] = {"stream": [], "raw_stream": []}
    for _ in range(repeat):  # interleaved rounds: a shared machine's load lands on both sides
        for name, fn in cases.items():
            runs[name].append(per_call_us(fn, number, 1))
        stream_runs["stream"].append(per_call_us(streamed, number // 50, 1))
        stream_runs["raw_stream"].append(per_call_us(raw_stream, number // 50, 1))
    streaming.finish()
    med = {name: statistics.median(v) for name, v in {**runs, **stream_runs}.items()}
    clock = time.get_clock_info("perf_counter").implementation
    return [
        Row("genai", f"Generation.token(), per token ({clock})", med["token"], "us",
            "bound Counter.inc() (one raw update per token)", med["raw_inc"], "<= 2x"),
        Row("genai", "record_generation() with prices, per request", med["request"], "us",
            "its 13 raw prometheus-client updates", med["raw_request"], "<= 3x"),
        Row("genai", f"streamed generation of {TOKENS} tokens, per request", med["stream"], "us",
            "its 15 raw updates (per-token cost: none)", med["raw_stream"], ""),
    ]
