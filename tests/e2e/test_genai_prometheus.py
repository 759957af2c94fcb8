"""The simulated streaming endpoint through a real Prometheus: token, timing and cost series, and the recorded
TTFT slow ratio and truncation ratio, equal numpy and the price table applied by hand on the same plans."""
from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client.utils import floatToGoString

from mlscope.catalog import genai as cat
from mlscope.demo.incidents import INCIDENTS
from mlscope.demo.textgen import PRICES, TextGenerator, serve_plan
from mlscope.genai import GenerationMonitor
from mlscope.rules import config_for
from support.clock import FakeClock
from support.helpers import Exporter, wait_until
from support.prometheus import PrometheusHarness

SLO = config_for("fast").thresholds.genai_ttft_slo_seconds



def scalar(prometheus: PrometheusHarness, expr: str) -> float | None:
    result = prometheus.api.query(expr)
    return float(result[0]["value"][1]) if result else None


def test_stream_metrics_and_rules_equal_numpy_on_the_planned_timings(prometheus: PrometheusHarness,
                                                                      exporter: Exporter) -> None:
    clock, generator = FakeClock(), TextGenerator(seed=11)
    gm = GenerationMonitor("e2e-gen", "1", registry=exporter.registry, prices=PRICES, price_model="demo-assistant",
                           clock=clock)
    first = [generator.plan() for _ in range(300)]
    for plan in first:
        serve_plan(gm, plan, clock.sleep)
    sel = '{model="e2e-gen",model_version="1"}'
    prometheus.scrape("e2e-gen", exporter.target)
    wait_until(lambda: scalar(prometheus, f"sum({cat.GENERATIONS.name}{sel})") == len(first))
    generator.faults.extra_ttft_s = 0.7  # the second burst: a share of first tokens over the 1 s SLO
    second = [generator.plan() for _ in range(150)]
    for plan in second:
        serve_plan(gm, plan, clock.sleep)
    plans = first + second
    total = float(len(plans))
    wait_until(lambda: scalar(prometheus, f"sum(mlscope_genai_generations_total{sel})") == total)

    ttft = np.array([p.ttft_s for p in plans])
    outputs = np.array([p.output_tokens for p in plans])
    inputs = np.array([p.input_tokens for p in plans])
    name = cat.TIME_TO_FIRST_TOKEN.name
    for bound in cat.TTFT_BUCKETS:
        assert scalar(prometheus, f'{name}_bucket{{model="e2e-gen",le="{floatToGoString(bound)}"}}') \
            == (ttft <= bound).sum(), bound
    assert scalar(prometheus, f"{name}_sum{sel}") == pytest.approx(ttft.sum(), rel=1e-9)
    tpot = np.array([np.mean(p.gaps_s) for p in plans if p.gaps_s])
    assert scalar(prometheus, f"{cat.TIME_PER_OUTPUT_TOKEN.name}_sum{sel}") == pytest.approx(tpot.sum(), rel=1e-9)
    duration = ttft + np.array([sum(p.gaps_s) for p in plans])
    assert scalar(prometheus, f"{cat.DURATION.name}_sum{sel}") == pytest.approx(duration.sum(), rel=1e-9)
    for token_type, counts in (("input", inputs), ("output", outputs)):
        assert scalar(prometheus, f'sum({cat.TOKENS.name}{{model="e2e-gen",token_type="{token_type}"}})') \
            == counts.sum()
    length = np.array([p.finish_reason == "length" for p in plans])
    assert scalar(prometheus, f'{cat.GENERATIONS.name}{{model="e2e-gen",finish_reason="length"}}') == length.sum()
    # Cost: the price table applied by hand (3 and 15 per million tokens), per tenant.
    for tenant in {p.tenant for p in plans}:
        mine = [p for p in plans if p.tenant == tenant]
        by_hand = sum(p.input_tokens * 3.0 + p.output_tokens * 15.0 for p in mine) / 1e6
        assert scalar(prometheus, f'sum({cat.COST.name}{{model="e2e-gen",tenant="{tenant}"}})') \
            == pytest.approx(by_hand, rel=1e-9)
    # Recorded ratios over the window hold the second burst only (the first is the window's first sample). Rules
    # evaluate every second: wait for an evaluation after the whole burst was scraped (a scrape may fall inside it).
    late = np.array([p.ttft_s for p in second])
    expected = {cat.TTFT_SLOW_RATIO.name: (late > SLO).mean(),
                cat.TRUNCATED_RATIO.name: np.mean([p.finish_reason == "length" for p in second])}
    assert 0 < expected[cat.TTFT_SLOW_RATIO.name] < 1

    def recorded() -> dict[str, float | None]:
        return {n: scalar(prometheus, f'{n}{{model="e2e-gen",window="1m"}}') for n in expected}

    def settled() -> bool:
        got = recorded()
        return all(v is not None and math.isfinite(v) and v == pytest.approx(expected[n], rel=1e-6)
                   for n, v in got.items())

    try:
        wait_until(settled, timeout=10)
    except pytest.fail.Exception:
        pytest.fail(f"recorded {recorded()}, numpy {expected}")


def test_the_demo_ttft_incident_fires_its_alert_and_it_resolves(prometheus: PrometheusHarness,
                                                                exporter: Exporter) -> None:
    """The demo's `ttft` incident (first tokens 2 s late) fires GenAITimeToFirstTokenSLOBurn on the fast rules
    and the page resolves once the incident ends; traffic paced in real time, each stream on a fake clock."""
    clock, generator = FakeClock(), TextGenerator(seed=12)
    gm = GenerationMonitor("e2e-ttft", "1", registry=exporter.registry, clock=clock)
    demo = SimpleNamespace(text=SimpleNamespace(generator=generator))
    stop = threading.Event()

    def traffic() -> None:
        while not stop.wait(0.05):
            serve_plan(gm, generator.plan(), clock.sleep)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    # The page (critical: 1m and 15s windows); the ticket (warning, 5m and 1m) resolves a minute later.
    firing = ('ALERTS{alertname="GenAITimeToFirstTokenSLOBurn",alertstate="firing",severity="critical",'
              'model="e2e-ttft"}')
    try:
        prometheus.scrape("e2e-ttft", exporter.target)
        time.sleep(3)  # calm: the windows hold fast first tokens
        assert not prometheus.api.query(firing)
        INCIDENTS.get("ttft").apply(demo)
        started = time.monotonic()
        wait_until(lambda: prometheus.api.query(firing), timeout=30)
        fired_after = time.monotonic() - started
        INCIDENTS.get("ttft").revert(demo)
        ended = time.monotonic()
        wait_until(lambda: not prometheus.api.query(firing), timeout=45)
        print(f"fired {fired_after:.0f} s after the incident started, resolved {time.monotonic() - ended:.0f} s "
              "after it ended")
    finally:
        stop.set()
        thread.join(5)
