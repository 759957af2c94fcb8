"""The generation mode: one :class:`GenerationMonitor` per generative model version.

Two ways to record::

    gm = GenerationMonitor("assistant", "2024-06", prices=PriceTable({"assistant": {"input": 3, "output": 15}},
                                                                      per_tokens=1_000_000))
    gm.record_generation(input_tokens=120, output_tokens=48, duration_s=1.9, ttft_s=0.21)   # after the fact
    with gm.generation(input_tokens=120, tenant="acme") as g:                               # streaming
        for chunk in llm.stream(prompt):
            g.chunk(chunk.tokens)
        g.finish(chunk.finish_reason)

A token or chunk costs a clock read and two additions; every metric is updated once, when the generation
ends. Nothing raises into the service: bad values are counted in ``mlscope_invalid_inputs_total`` and
skipped, an exception inside the monitor in ``mlscope_monitor_errors_total``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from .. import tracing as _tracing
from ..catalog import genai as cat
from ..ids import clean_request_id, new_request_id
from ..instruments import instruments_for
from ..monitor import ModelMonitor, error_name
from .instruments import GenAIInstruments, genai_instruments
from .prices import PriceTable

if TYPE_CHECKING:
    from ..drift.profile import ReferenceProfile
    from ..logs import PredictionLog
    from ..quality import Quality

#: The reference-profile columns of prompt and response lengths (see :func:`mlscope.genai.length_profile`).
LENGTH_FEATURES = ("input_tokens", "output_tokens")
DEFAULT_TENANT = "default"  # the tenant of requests that name none
POSITIVE = 1  # what a generation is stored as for feedback: the "prediction" that the user is satisfied
_FINISH = frozenset(cat.FINISH_REASONS)
_NO_DRIFT = frozenset({"error", "abandoned"})  # their output length is not the response's


# At most this many tokens in one generation (far beyond any context window): a larger count is refused.
MAX_TOKENS = 100_000_000

class GenerationMonitor:
    """Metrics of one generative model version (names in :mod:`mlscope.catalog.genai`).

    ``prices`` (a :class:`PriceTable` or its JSON path) prices tokens when recorded; ``price_model`` is the
    table's key for this version's tokens (default: ``model``). ``reference`` (a profile of
    :data:`LENGTH_FEATURES`, :func:`length_profile`) tracks prompt and response lengths as drift; ``quality``
    stores each generation so :meth:`record_feedback` (or the quality exporter's ``POST /outcomes`` with
    ``y_true`` 1 or 0) joins user feedback. ``prediction_log`` writes one record per generation; prompt and
    response text are in it only with ``log_text=True``, cut to ``max_text_chars`` (the log's
    :class:`~mlscope.logs.Privacy` rules drop or hash the ``prompt`` and ``response`` fields). ``tracing`` as
    :class:`~mlscope.ModelMonitor`'s: one span per generation with the GenAI conventions' attributes.
    ``clock`` (seconds, monotonic) times streams.
    """

    def __init__(self, model: str, model_version: str, *, registry: CollectorRegistry | None = None,
                 prices: PriceTable | str | Path | None = None, price_model: str | None = None,
                 label_caps: Mapping[str, int] | None = None,
                 reference: ReferenceProfile | str | Path | None = None, quality: Quality | None = None,
                 prediction_log: PredictionLog | None = None, log_text: bool = False, max_text_chars: int = 1000,
                 tracing: Any = None, operation: str = "chat", feedback_threshold: float = 0.5,
                 metadata: Mapping[str, object] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.monitor = ModelMonitor(model, model_version, registry=registry, label_caps=label_caps,
                                    reference=reference, quality=quality, classes=(0, 1), metadata=metadata,
                                    tracing=False)
        self.model, self.model_version = self.monitor.model, self.monitor.model_version
        self.registry = self.monitor.registry
        self.prices = PriceTable.from_file(prices) if isinstance(prices, (str, Path)) else prices
        self.price_model = price_model or model
        self.clock = clock
        self.operation = operation
        self.log_text, self.max_text_chars = log_text, max_text_chars
        self.feedback_threshold = feedback_threshold
        self._guard = instruments_for(self.registry).guard
        self._report = self.monitor.report_internal_error
        self._spans = _tracing.PredictionSpans(tracing, self.model, self.model_version)
        self._span_name = f"{operation} {self.model}"
        self._log = None if prediction_log is None else prediction_log.bind(self.model, self.model_version,
                                                                              self.registry)
        self._bind(genai_instruments(self.registry))

    def _bind(self, ins: GenAIInstruments) -> None:
        labels = (self.model, self.model_version)
        self._ins = ins
        self._finish = {r: ins.generations.labels(*labels, r) for r in cat.FINISH_REASONS}
        self._usage = {t: ins.token_usage.labels(*labels, t) for t in cat.TOKEN_TYPES}
        self._duration = ins.duration.labels(*labels)
        self._ttft = ins.ttft.labels(*labels)
        self._tpot = ins.tpot.labels(*labels)
        self._tps = ins.tokens_per_second.labels(*labels)
        self._in_flight = ins.in_flight.labels(*labels)
        self._by_tenant: dict[str, tuple[Any, Any, Any, Any]] = {}
        # The default tenant exists from 0, so rates and ratios read 0 rather than nothing before the first request.
        self._tenant_children(DEFAULT_TENANT)

    # -- recording ------------------------------------------------------------------------------

    def generation(self, *, input_tokens: Any = None, tenant: str | None = None, request_id: str | None = None,
                   prompt: str | None = None, price_model: str | None = None) -> Generation:
        """A streaming generation that starts now: call :meth:`Generation.token` or :meth:`Generation.chunk`
        as output arrives and :meth:`Generation.finish` at the end (a context manager: an exception inside
        the block records an error, leaving the block unfinished a ``stop``)."""
        return Generation(self, request_id, input_tokens, tenant, prompt, price_model)

    def record_generation(self, input_tokens: Any, output_tokens: Any, duration_s: Any, *, ttft_s: Any = None,
                          finish_reason: str = "stop", error: BaseException | type[BaseException] | str | None = None,
                          tenant: str | None = None, request_id: str | None = None, prompt: str | None = None,
                          response: str | None = None, price_model: str | None = None) -> str:
        """Record one generation served elsewhere (or not streamed); returns its request id.

        Without ``ttft_s`` no time to first token or per output token is observed (a non-streamed response
        has no first token of its own). ``error`` sets the finish reason to ``error``.
        """
        rid = new_request_id() if request_id is None else clean_request_id(request_id)
        self._record(rid, input_tokens, output_tokens, duration_s, ttft_s, None, finish_reason, error, tenant,
                     prompt, response, price_model)
        return rid

    def record_feedback(self, request_id: str, positive: bool | None = None, *, score: float | None = None,
                        time: float | None = None) -> None:
        """A user's feedback on a generation: thumbs up/down (``positive``) or a ``score`` in [0, 1] (positive
        from ``feedback_threshold``), joined with the generation in the quality store (needs ``quality=``)."""
        value: int | None = None
        if isinstance(positive, bool) and score is None:
            value = int(positive)
        elif positive is None and isinstance(score, (int, float)) and not isinstance(score, bool) \
                and 0.0 <= score <= 1.0:
            value = int(score >= self.feedback_threshold)
        if value is None:
            self.monitor.count_invalid("feedback_invalid")
            return
        self.monitor.record_outcome(request_id, value, time=time)

    # -- internals ------------------------------------------------------------------------------

    def _tenant_children(self, tenant: str) -> tuple[Any, Any, Any, Any]:
        found = self._by_tenant.get(tenant)
        if found is None:
            admitted = self._guard.admit("tenant", tenant)
            labels = (self.model, self.model_version)
            ins = self._ins
            found = (ins.tokens.labels(*labels, "input", admitted), ins.tokens.labels(*labels, "output", admitted),
                     ins.cost.labels(*labels, "input", admitted), ins.cost.labels(*labels, "output", admitted))
            if len(self._by_tenant) < 4 * self._guard.cap("tenant"):
                self._by_tenant[tenant] = found
        return found

    def _tokens(self, value: Any) -> int | None:
        if type(value) is int and 0 <= value <= MAX_TOKENS:
            return value
        if value is None:
            return None
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else _number(value)
        if number is None or not math.isfinite(number) or number < 0 or not float(number).is_integer():
            self.monitor.count_invalid("tokens_invalid")
            return None
        if number > MAX_TOKENS:  # a provider's garbage count would spoil the token and cost totals for good
            self.monitor.count_invalid("tokens_implausible")
            return None
        return int(number)

    def _seconds(self, value: Any) -> float | None:
        if value is None:
            return None
        number = value if type(value) is float else _number(value)
        if number is None or not 0.0 <= number < math.inf:
            self.monitor.count_invalid("latency_not_finite_or_negative")
            return None
        return float(number)

    def _record(self, request_id: str, input_tokens: Any, output_tokens: Any, duration: Any, ttft: Any,
                tpot: float | None, reason: str, error: BaseException | type[BaseException] | str | None,
                tenant: str | None, prompt: str | None, response: str | None, price_model: str | None) -> None:
        try:
            n_in, n_out = self._tokens(input_tokens), self._tokens(output_tokens)
            seconds, first = self._seconds(duration), self._seconds(ttft)
            if first is not None and seconds is not None and first > seconds:
                self.monitor.count_invalid("ttft_after_end")  # inconsistent timings: no TTFT, no TPOT
                first = None
            elif first is not None and n_out == 0:
                first = None  # no output token, so no first token: counted as such below
            if error is not None:
                reason = "error"
                self._ins.errors.labels(self.model, self.model_version, self._guard.admit(
                    "error_type", error_name(error))).inc()
            elif reason not in _FINISH:
                self.monitor.count_invalid("finish_reason_unknown")
                reason = "other"
            self._finish[reason].inc()
            self.monitor.record_request(request_id, error=error, stored_output=POSITIVE)
            tokens_in, tokens_out, cost_in, cost_out = self._tenant_children(tenant or DEFAULT_TENANT)
            for count, usage, total in ((n_in, self._usage["input"], tokens_in),
                                        (n_out, self._usage["output"], tokens_out)):
                if count is not None:
                    usage.observe(count)
                    total.inc(count)
            cost = self._cost(n_in, n_out, cost_in, cost_out, price_model or self.price_model)
            if seconds is not None:
                self._duration.observe(seconds)
                if n_out and seconds > 0:
                    self._tps.observe(n_out / seconds)
            if first is not None:
                self._ttft.observe(first)
                if tpot is None and n_out is not None and n_out >= 2 and seconds is not None and seconds >= first:
                    tpot = (seconds - first) / (n_out - 1)
            elif not n_out or reason in _NO_DRIFT:
                self._ins.no_first_token.labels(self.model, self.model_version, reason).inc()
            if tpot is not None:
                self._tpot.observe(tpot)
            if reason not in _NO_DRIFT and self.monitor.drift_enabled:
                self.monitor.record_features({"input_tokens": n_in, "output_tokens": n_out})
            ids = None
            if self._spans.tracer() is not None:
                ids = self._span(request_id, seconds, n_in, n_out, first, reason, error, cost, tenant)
            if self._log is not None:
                self._write_log(request_id, seconds, error, reason, n_in, n_out, first, cost, tenant, prompt,
                                response, ids)
        except Exception as exc:
            self._report("record_generation", exc)

    def _cost(self, n_in: int | None, n_out: int | None, cost_in: Any, cost_out: Any, model: str) -> float | None:
        if self.prices is None or (not n_in and not n_out):
            return None
        price = self.prices.price(model)
        if price is None:
            self.monitor.count_invalid("price_unknown_model")
            return None
        total = 0.0
        for count, child, per_token in ((n_in, cost_in, price.input_per_token),
                                        (n_out, cost_out, price.output_per_token)):
            if count:
                child.inc(count * per_token)
                total += count * per_token
        return total

    def _span(self, request_id: str, seconds: float | None, n_in: int | None, n_out: int | None,
              first: float | None, reason: str, error: Any, cost: float | None, tenant: str | None) -> Any:
        attributes: dict[str, Any] = {_tracing.GEN_AI_OPERATION: self.operation,
                                      _tracing.GEN_AI_REQUEST_MODEL: self.model,
                                      _tracing.GEN_AI_FINISH_REASONS: (reason,)}
        for key, value in ((_tracing.GEN_AI_INPUT_TOKENS, n_in), (_tracing.GEN_AI_OUTPUT_TOKENS, n_out),
                           (_tracing.GEN_AI_TIME_TO_FIRST_CHUNK, first), (_tracing.GEN_AI_COST, cost),
                           (_tracing.TENANT, tenant)):
            if value is not None:
                attributes[key] = value
        try:
            return self._spans.record(self._span_name, request_id, seconds, attributes, error)
        except Exception as exc:
            self._report("span", exc)
            return None

    def _write_log(self, request_id: str, seconds: float | None, error: Any, reason: str, n_in: int | None,
                   n_out: int | None, first: float | None, cost: float | None, tenant: str | None,
                   prompt: str | None, response: str | None, ids: Any) -> None:
        assert self._log is not None
        fields: dict[str, Any] = {"finish_reason": reason, "input_tokens": n_in, "output_tokens": n_out,
                                  "time_to_first_token_seconds": first, "cost": cost, "tenant": tenant}
        if self.log_text:  # opt-in only: never by default
            for name, text in (("prompt", prompt), ("response", response)):
                if text is not None:
                    fields[name] = _cut(str(text), self.max_text_chars)
        self._log.prediction(request_id, seconds, None if error is None else error_name(error), None, None,
                             fields, ids=ids, sampled=None if ids is None else True)


class Generation:
    """One streaming generation (from :meth:`GenerationMonitor.generation`); ends exactly once.

    Ending it a second time is counted (``stream_closed_twice``) and ignored. A generation closed
    (:meth:`close`) or garbage-collected before it finished is recorded as ``abandoned``.
    """

    __slots__ = ("_gm", "request_id", "input_tokens", "tenant", "prompt", "price_model", "output_tokens", "_start",
                 "_first", "_last", "_done", "__weakref__")

    def __init__(self, gm: GenerationMonitor, request_id: str | None, input_tokens: Any, tenant: str | None,
                 prompt: str | None, price_model: str | None) -> None:
        self._gm = gm
        self.request_id = new_request_id() if request_id is None else clean_request_id(request_id)
        self.input_tokens, self.tenant, self.prompt, self.price_model = input_tokens, tenant, prompt, price_model
        self.output_tokens = 0
        self._first: float | None = None
        self._last: float | None = None
        self._done = False
        try:
            gm._in_flight.inc()
        except Exception as exc:
            gm._report("generation", exc)
        self._start = gm.clock()

    @property
    def done(self) -> bool:
        return self._done

    def token(self) -> None:
        """One output token arrived now."""
        now = self._gm.clock()
        if self._first is None:
            self._first = now
        self._last = now
        self.output_tokens += 1

    def chunk(self, tokens: int = 1) -> None:
        """A chunk of ``tokens`` output tokens arrived now (0: a chunk without tokens, e.g. a role header)."""
        now = self._gm.clock()
        if type(tokens) is not int or tokens < 0:
            tokens = self._gm._tokens(tokens) or 0
        if tokens:
            if self._first is None:
                self._first = now
            self._last = now
            self.output_tokens += tokens

    def finish(self, reason: str | None = "stop", *, output_tokens: Any = None, input_tokens: Any = None,
               response: str | None = None) -> None:
        """End it with ``reason`` (None: ``stop``). ``output_tokens``/``input_tokens``: the provider's (billable)
        counts, when they differ from the chunks counted."""
        self._end(reason or "stop", None, output_tokens, input_tokens, response)

    def fail(self, error: BaseException | type[BaseException] | str) -> None:
        """End it with an error (finish reason ``error``)."""
        self._end("error", error, None, None, None)

    def close(self) -> None:
        """End it as ``abandoned`` (the client went away); closing an ended generation is counted, and ignored."""
        self._end("abandoned", None, None, None, None)

    def __enter__(self) -> Generation:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._done:
            return
        if exc is not None:
            self._end("abandoned" if isinstance(exc, GeneratorExit) else "error",
                      None if isinstance(exc, GeneratorExit) else exc, None, None, None)
        else:
            self._end("stop", None, None, None, None)

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self._end("abandoned", None, None, None, None)

    def _end(self, reason: str, error: Any, output_tokens: Any, input_tokens: Any, response: str | None) -> None:
        gm = self._gm
        if self._done:
            gm.monitor.count_invalid("stream_closed_twice")
            return
        self._done = True
        try:
            end = gm.clock()
            gm._in_flight.dec()
            n_out = self.output_tokens if output_tokens is None else output_tokens
            first_at, last_at, counted = self._first, self._last, self.output_tokens
            first = None if first_at is None else first_at - self._start
            tpot = None
            if first_at is not None and last_at is not None and counted >= 2 and output_tokens is None:
                tpot = (last_at - first_at) / (counted - 1)
            gm._record(self.request_id, self.input_tokens if input_tokens is None else input_tokens, n_out,
                       end - self._start, first, tpot, reason, error, self.tenant, self.prompt, response,
                       self.price_model)
        except Exception as exc:
            gm._report("generation", exc)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"…[truncated {len(text) - limit} chars]"
