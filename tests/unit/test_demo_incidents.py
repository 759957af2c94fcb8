"""Demo incidents are pluggable: a registered one runs on the schedule and through `POST /faults` /
`mlscope demo inject`, with one console line as it starts and one as it ends; the standard four are as before."""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from mlscope.cli import main
from mlscope.demo.incidents import INCIDENTS, Incident, IncidentRegistry, IncidentRunner, ScheduleEntry
from mlscope.demo.service import DemoService, serve
from mlscope.stack.servers import free_port

LINE = re.compile(r"^\d\d:\d\d:\d\d incident canary ")


def canary(schedule: ScheduleEntry | None = None) -> Incident:
    def flip(demo: Any, on: bool) -> str:
        old, demo.canary_share = getattr(demo, "canary_share", 0.0), 0.5 if on else 0.0
        return f"canary_share {old:g} -> {demo.canary_share:g}"
    return Incident("canary", "half the traffic to a canary", lambda d: flip(d, True), lambda d: flip(d, False),
                    schedule)


def wait_for(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_registered_incident_runs_on_the_schedule_and_says_so() -> None:
    registry, lines, target = IncidentRegistry(), [], SimpleNamespace(canary_share=0.0)
    registry.register(canary(ScheduleEntry(order=1, seconds=0.3, calm_s=10)))
    runner = IncidentRunner(target, registry=registry, say=lines.append, first_calm_s=0.1, tick_s=0.02)
    stop = threading.Event()
    threads = [threading.Thread(target=loop, args=(stop,), daemon=True) for loop in (runner.run_schedule,
                                                                                     runner.expire)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    wait_for(lambda: target.canary_share == 0.5)
    assert 0.1 <= time.monotonic() - started < 1.0  # after the first calm
    wait_for(lambda: target.canary_share == 0.0 and len(lines) == 2)
    assert time.monotonic() - started >= 0.3  # it lasted its scheduled time
    stop.set()
    for thread in threads:
        thread.join(2)
    assert all(LINE.match(line) for line in lines), lines
    assert lines[0].endswith("started for 0.3s: half the traffic to a canary (canary_share 0 -> 0.5)")
    assert lines[1].endswith("ended (canary_share 0.5 -> 0)")


@pytest.fixture
def demo_http() -> Iterator[tuple[DemoService, str, list[str]]]:
    INCIDENTS.register(canary())
    lines: list[str] = []
    demo = DemoService(say=lines.append)  # not started: only its incidents are exercised
    port = free_port()
    server = serve(demo, port)
    yield demo, f"http://127.0.0.1:{port}", lines
    server.shutdown()
    server.server_close()
    INCIDENTS.unregister("canary")


def test_a_registered_incident_is_injected_over_http_and_the_cli(
        demo_http: tuple[DemoService, str, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    demo, url, lines = demo_http
    listed = requests.get(url + "/faults", timeout=5).json()
    assert listed["incidents"]["canary"] == "half the traffic to a canary"
    assert "canary" not in [entry["incident"] for entry in listed["schedule"]]  # inject-only: no schedule entry
    assert main(["demo", "inject", "canary", "--seconds", "0.2", "--url", url]) == 0
    assert "'canary'" in capsys.readouterr().out and demo.canary_share == 0.5  # type: ignore[attr-defined]
    time.sleep(0.25)
    demo.incidents.end_due()
    assert demo.canary_share == 0.0 and demo.active() == {}  # type: ignore[attr-defined]
    assert [LINE.match(line) is not None for line in lines] == [True, True], lines
    refused = requests.post(url + "/faults", json={"incident": "canery"}, timeout=5)
    assert refused.status_code == 400
    registered = ("unknown incident 'canery'; registered: canary, canary-defect, drift, errors, latency, "
                  "pipeline-failure, pipeline-stale, quality, shadow-disagree, traffic-drop, ttft")
    assert refused.json()["error"] == registered
    assert main(["demo", "inject", "canery", "--url", url]) == 1
    assert capsys.readouterr().err == f"mlscope: {registered}\n"


def test_the_standard_four_keep_their_schedule_and_changes() -> None:
    # The schedule before incidents were pluggable: (name, seconds, calm) in turn, each change and its calm value.
    # The demo's canary (mlscope.demo.canary) and the generative endpoint's ttft (mlscope.demo.textgen) come after.
    old_schedule = [("drift", 90, 60), ("errors", 60, 60), ("latency", 60, 60), ("quality", 120, 60),
                    ("canary-defect", 120, 60), ("ttft", 60, 60)]
    offsets = [0, 150, 270, 390, 570, 750]
    assert [(offset, i.name, i.schedule.seconds, i.schedule.calm_s) for offset, i in INCIDENTS.plan()  # type: ignore[union-attr]
            ] == [(o, n, s, c) for o, (n, s, c) in zip(offsets, old_schedule, strict=True)]
    faults = SimpleNamespace(drift_shift_std=0.0, error_rate=0.01, extra_latency_s=0.0, shadow_flip_rate=0.0)
    demo = SimpleNamespace(service=SimpleNamespace(faults=faults), truth=SimpleNamespace(flip_rate=0.0),
                           base_error_rate=0.01, regressor_traffic=SimpleNamespace(scale=1.0))
    for name, where, attribute, on, off in [("drift", faults, "drift_shift_std", 1.5, 0.0),
                                            ("errors", faults, "error_rate", 0.3, 0.01),
                                            ("latency", faults, "extra_latency_s", 0.3, 0.0),
                                            ("quality", demo.truth, "flip_rate", 0.4, 0.0),
                                            ("shadow-disagree", faults, "shadow_flip_rate", 0.5, 0.0),
                                            ("traffic-drop", demo.regressor_traffic, "scale", 0.2, 1.0)]:
        INCIDENTS.get(name).apply(demo)
        assert getattr(where, attribute) == on, name
        INCIDENTS.get(name).revert(demo)
        assert getattr(where, attribute) == off, name


def test_the_console_reads_the_schedule_from_the_registry() -> None:
    from mlscope.demo.incidents import schedule_summary

    # Each start is the first calm plus the durations and calms before it (drift 90 s, errors 60 s, latency 60 s,
    # quality 120 s, each with 60 s of calm: the canary at 10m30s, which the console omitted).
    start, expected = 60.0, []
    for _, incident in INCIDENTS.plan():
        assert incident.schedule is not None
        expected.append(f"{incident.name} at {int(start // 60)}m{int(start % 60):02d}s")
        start += incident.schedule.seconds + incident.schedule.calm_s
    cycle = start - 60
    summary = schedule_summary()
    on_demand = sorted(i.name for i in INCIDENTS if not i.schedule)
    assert on_demand == ["pipeline-failure", "pipeline-stale", "shadow-disagree", "traffic-drop"]
    assert summary == (f"{', '.join(expected)} after the start, then again every "
                       f"{int(cycle // 60)}m{int(cycle % 60):02d}s; on demand: {', '.join(on_demand)}")
    assert "quality at 7m30s, canary-defect at 10m30s" in summary
    assert schedule_summary(IncidentRegistry()).startswith("no scheduled incidents")


def test_the_pipeline_runs_at_once_when_the_stale_incident_ends_not_an_interval_later(tmp_path) -> None:
    from mlscope.demo.pipeline import DemoPipeline

    pipeline = DemoPipeline(service=None, monitor=None, folder=tmp_path)  # type: ignore[arg-type]
    demo = SimpleNamespace(pipeline=pipeline)
    stale, failure = INCIDENTS.get("pipeline-stale"), INCIDENTS.get("pipeline-failure")
    stale.apply(demo)
    assert pipeline.paused and not pipeline._poke.is_set()  # paused: no run
    stale.revert(demo)
    assert not pipeline.paused and pipeline._poke.is_set()  # the loop's wait ends: it runs now
    pipeline._poke.clear()
    failure.apply(demo)
    assert pipeline._poke.is_set()
    pipeline._poke.clear()
    failure.revert(demo)
    assert pipeline._poke.is_set()  # the recovered run too
    assert "PipelineStale" in failure.description and "PipelineRunFailed" in failure.description


def test_shadow_disagree_turns_the_shadows_answers() -> None:
    from prometheus_client import CollectorRegistry

    from mlscope import ModelMonitor
    from mlscope.demo.workload import SyntheticService, train
    from support.helpers import series

    trained = train("breast_cancer")
    registry = CollectorRegistry()
    service = SyntheticService(trained, ModelMonitor("m", "1", registry=registry, shadow_pending=100), seed=0,
                               shadow=("s", trained.pipeline))  # the served model itself: agrees on every request
    x, _ = service.sample(40)
    for row in x[:20]:
        service.predict_one(row)
    INCIDENTS.get("shadow-disagree").apply(SimpleNamespace(service=service))
    for row in x[20:]:
        service.predict_one(row)
    counted = {dict(labels)["result"]: v for (name, labels), v in series(registry).items()
               if name == "mlscope_shadow_comparisons_total"}
    assert counted["agree"] + counted["disagree"] == 40 and counted["agree"] >= 20 and 3 <= counted["disagree"] <= 17


def test_a_traffic_drop_slows_a_running_traffic_loop() -> None:
    """``Traffic.scale`` set while the loop runs (the traffic-drop incident) changes its request rate."""
    from mlscope.demo.workload import Traffic

    class Counting:
        def sample(self, rows: int) -> tuple[list[int], list[int]]:
            return [0], [0]

        def predict_one(self, x: object, y: object) -> object:
            return object()

    traffic = Traffic(Counting(), rate=400.0).start()  # type: ignore[arg-type]
    try:
        time.sleep(0.5)
        before = traffic.served
        traffic.scale = 0.05  # 20 requests a second
        time.sleep(0.05)
        start = traffic.served
        time.sleep(0.5)
        after = traffic.served - start
    finally:
        traffic.stop()
    assert before > 4 * after and after <= 15, (before, after)
