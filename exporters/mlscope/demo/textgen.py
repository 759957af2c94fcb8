"""A simulated streaming text endpoint: a deterministic generator with realistic token timing and counts.

No model is downloaded: each request draws a plan from a seeded generator (prompt length, time to first
token, the gap before every further token, the number of output tokens, capped at ``max_tokens`` so some
answers finish with ``length``) and the stream yields words on that schedule. The same plan drives the
monitor in tests, with a fake clock instead of sleeping, so the recorded metrics can be compared with numpy
on the planned timings. The demo serves it at a steady rate (:class:`TextTraffic`), with user feedback on a
share of the answers; its incident (``ttft``) makes the first token late.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..genai import GenerationMonitor, PriceTable, wrap_stream
from .incidents import ScheduleEntry, register, setting

MODEL, VERSION = "demo-assistant", "1.0.0"
TENANTS = ("acme", "globex", "initech")
# Prices per 1,000,000 tokens, in the demo's currency (a made-up provider's list price).
PRICES = PriceTable({MODEL: {"input": 3.0, "output": 15.0}}, currency="USD", per_tokens=1_000_000)


class SimulatedGenerationError(RuntimeError):
    """Raised mid-stream by the simulated endpoint when a fault injects an error."""


@dataclass
class TextFaults:
    """What the endpoint does wrong right now; change the fields while traffic runs."""

    extra_ttft_s: float = 0.0  # added to every time to first token (a queue in front of the model)
    error_rate: float = 0.0  # share of streams that fail after a few tokens
    slow_token_factor: float = 1.0  # multiplies every gap between tokens
    abandon_rate: float = 0.0  # share of clients that go away mid-stream (some before the first token)


@dataclass(frozen=True)
class StreamPlan:
    """One request's planned stream: what the generator will do, in seconds and tokens."""

    request_id: str
    tenant: str
    input_tokens: int
    ttft_s: float
    gaps_s: tuple[float, ...]  # before each token after the first (len = output tokens - 1)
    finish_reason: str
    fail_after: int | None  # tokens yielded before the stream raises (None: it does not)
    abandon_after: int | None = None  # tokens the client reads before it goes away (None: it reads them all)

    @property
    def output_tokens(self) -> int:
        return min([len(self.gaps_s) + 1] + [n for n in (self.fail_after, self.abandon_after) if n is not None])


@dataclass
class TextGenerator:
    """Deterministic stream plans from ``seed``: lognormal prompt and answer lengths, a lognormal time to
    first token around 0.25 s, about 25 ms per further token with jitter."""

    seed: int = 0
    max_tokens: int = 512  # about 2 % of answers reach it (lognormal around 120 tokens): below the 10 % alert
    faults: TextFaults = field(default_factory=TextFaults)
    _n: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._lock = threading.Lock()

    def plan(self) -> StreamPlan:
        with self._lock:
            rng, self._n = self._rng, self._n + 1
            n = self._n
            input_tokens = int(np.clip(rng.lognormal(np.log(300), 0.6), 5, 8000))
            wanted = int(np.clip(rng.lognormal(np.log(120), 0.7), 1, 4 * self.max_tokens))
            output = min(wanted, self.max_tokens)
            ttft = float(rng.lognormal(np.log(0.25), 0.35)) + self.faults.extra_ttft_s
            gaps = rng.gamma(8.0, 0.025 / 8.0, output - 1) * self.faults.slow_token_factor
            fails = rng.random() < self.faults.error_rate
            fail_after = int(rng.integers(0, max(output, 1))) if fails else None
            tenant = TENANTS[int(rng.choice(len(TENANTS), p=(0.6, 0.3, 0.1)))]
            leaves = rng.random() < self.faults.abandon_rate
            # Half of those who leave do so while waiting for the first token.
            abandon_after = (0 if rng.random() < 0.5 else int(rng.integers(1, output + 1))) if leaves else None
        return StreamPlan(f"gen-{self.seed}-{n}", tenant, input_tokens, ttft, tuple(float(g) for g in gaps),
                          "length" if wanted > self.max_tokens else "stop", fail_after, abandon_after)

    @staticmethod
    def stream(plan: StreamPlan, sleep: Callable[[float], None] = time.sleep) -> Iterator[tuple[str, str | None]]:
        """Yield ``(word, finish_reason or None)`` on the plan's schedule; the last item carries the reason."""
        sleep(plan.ttft_s)
        total = len(plan.gaps_s) + 1
        for i in range(total):
            if plan.fail_after is not None and i == plan.fail_after:
                raise SimulatedGenerationError(f"{plan.request_id}: the simulated model failed after {i} tokens")
            if i:
                sleep(plan.gaps_s[i - 1])
            yield f"w{i} ", (plan.finish_reason if i == total - 1 else None)


def finish_reason_of(item: tuple[str, str | None]) -> str | None:
    return item[1]


def serve_plan(gm: GenerationMonitor, plan: StreamPlan, sleep: Callable[[float], None] = time.sleep) -> str:
    """Stream one planned answer through the monitor's iterator wrapper (as a service would); returns the text."""
    generation = gm.generation(input_tokens=plan.input_tokens, tenant=plan.tenant, request_id=plan.request_id)
    words: list[str] = []
    if plan.abandon_after == 0:  # the client went away before the first token
        sleep(plan.ttft_s / 2)
        generation.close()
        return ""
    stream = wrap_stream(generation, TextGenerator.stream(plan, sleep), finish_reason_of=finish_reason_of)
    try:
        for word, _ in stream:
            words.append(word)
            if len(words) == plan.abandon_after:
                stream.close()  # the client went away mid-stream
                break
    except SimulatedGenerationError:
        pass
    return "".join(words)


@dataclass
class TextTraffic:
    """Serve ``rate`` streams per second (each in a worker thread, sleeping on its plan) and give feedback on
    ``feedback_fraction`` of the answers ``feedback_delay_s`` later, positive with ``positive_rate``."""

    gm: GenerationMonitor
    generator: TextGenerator
    rate: float = 4.0
    feedback_fraction: float = 0.5
    feedback_delay_s: float = 2.0
    positive_rate: float = 0.85
    seed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> TextTraffic:
        self._rng = np.random.default_rng(self.seed + 1)
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="mlscope-textgen")
        self._feedback: list[tuple[float, str, bool]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mlscope-text-traffic", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._pool.submit(self._one, self.generator.plan())
            self._give_feedback()
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _one(self, plan: StreamPlan) -> None:
        serve_plan(self.gm, plan, self._sleep)
        if plan.fail_after is None and plan.abandon_after is None:
            with self._lock:
                if self._rng.random() < self.feedback_fraction:
                    positive = bool(self._rng.random() < self.positive_rate)
                    self._feedback.append((time.monotonic() + self.feedback_delay_s, plan.request_id, positive))

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _give_feedback(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [f for f in self._feedback if f[0] <= now]
            self._feedback = [f for f in self._feedback if f[0] > now]
        for _, request_id, positive in due:
            self.gm.record_feedback(request_id, positive)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)


def start_text_endpoint(registry: Any, quality: Any = None, *, rate: float = 4.0, seed: int = 0,
                        max_tokens: int = 512, error_rate: float = 0.01, abandon_rate: float = 0.02,
                        **monitor: Any) -> TextTraffic:
    """The demo's generative endpoint: a monitored simulated model served at ``rate`` streams per second
    (answers capped at ``max_tokens``, ``error_rate`` of them failing and ``abandon_rate`` abandoned mid-stream)."""
    gm = GenerationMonitor(MODEL, VERSION, registry=registry, prices=PRICES, quality=quality,
                           metadata={"owner": "demo", "simulated": "true"}, **monitor)
    if quality is not None:
        quality.set_baseline(MODEL, VERSION, {"feedback_positive": 0.85})
    generator = TextGenerator(seed=seed, max_tokens=max_tokens, faults=TextFaults(error_rate=error_rate,
                                                                                  abandon_rate=abandon_rate))
    return TextTraffic(gm, generator, rate=rate, seed=seed).start()


# The endpoint's incident (registered on import, like the standard four): the first token is 2 s late, over the
# 1 s TTFT SLO, so GenAITimeToFirstTokenSLOBurn fires, and resolves a short window after it ends.
register(setting("ttft", "the generative endpoint's first token is 2 s late (a queue in front of the model)",
                 "text.generator.faults.extra_ttft_s", 2.0, 0.0, ScheduleEntry(60, 60)))
