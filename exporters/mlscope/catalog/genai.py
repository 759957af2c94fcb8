"""Generative models (``mlscope.genai``): tokens, time to first token, time per output token, cost, finish reasons.

Each histogram maps one to one onto an OpenTelemetry GenAI semantic-conventions metric (``otel_name``), with
the conventions' recommended bucket boundaries; labels map onto its attributes (:data:`OTEL_ATTRIBUTES`).
Names from ``opentelemetry-semantic-conventions`` 0.66b2 (``opentelemetry.semconv._incubating.metrics.
gen_ai_metrics``); that package carries no buckets, so the boundaries are the specification's
(``docs/gen-ai/gen-ai-metrics.md``, "SHOULD be specified with ExplicitBucketBoundaries").
"""
from __future__ import annotations

from .serving import MODEL
from .spec import MetricSpec, RecordedSpec

#: Why a generation ended (a bounded set; anything else counts as ``other``). ``abandoned``: the stream was
#: closed or garbage-collected before it finished (the client went away); ``error``: it raised.
FINISH_REASONS = ("stop", "length", "content_filter", "tool_call", "error", "abandoned", "other")
TOKEN_TYPES = ("input", "output")  # gen_ai.token.type values

#: mlscope label -> OpenTelemetry GenAI attribute (metrics and the generation's span).
OTEL_ATTRIBUTES = {"model": "gen_ai.request.model", "token_type": "gen_ai.token.type",
                   "finish_reason": "gen_ai.response.finish_reasons", "error_type": "error.type",
                   "model_version": "mlscope.model.version (no convention)", "tenant": "mlscope.tenant (no convention)"}

# The conventions' recommended boundaries (semantic-conventions docs/gen-ai/gen-ai-metrics.md).
TOKEN_BUCKETS = (1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
                 16777216.0, 67108864.0)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
# mlscope's own (no convention): decode speed from a slow CPU model to a fast served one.
TOKENS_PER_SECOND_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 500.0, 1000.0)

GENERATIONS = MetricSpec(
    "mlscope_genai_generations_total", "counter",
    "Generations that ended, by finish reason (stop, length, content_filter, tool_call, error, abandoned, other).",
    MODEL + ("finish_reason",))
TOKEN_USAGE = MetricSpec(
    "mlscope_genai_token_usage", "histogram",
    "Tokens per generation, by token_type (input: the prompt, output: the response); billable counts when the "
    "provider reports both.",
    MODEL + ("token_type",), buckets=TOKEN_BUCKETS, otel_name="gen_ai.client.token.usage")
TOKENS = MetricSpec(
    "mlscope_genai_tokens_total", "counter",
    "Tokens processed, by token_type and tenant (bounded like every label: the cap folds the rest).",
    MODEL + ("token_type", "tenant"))
DURATION = MetricSpec(
    "mlscope_genai_operation_duration_seconds", "histogram",
    "End-to-end time of one generation, from the request to its last token (or its error or abandonment).",
    MODEL, unit="seconds", buckets=DURATION_BUCKETS, otel_name="gen_ai.client.operation.duration")
TIME_TO_FIRST_TOKEN = MetricSpec(
    "mlscope_genai_time_to_first_token_seconds", "histogram",
    "Time from the request to the first output token; streams that never yield one are counted in "
    "mlscope_genai_no_first_token_total instead.",
    MODEL, unit="seconds", buckets=TTFT_BUCKETS, otel_name="gen_ai.server.time_to_first_token")
TIME_PER_OUTPUT_TOKEN = MetricSpec(
    "mlscope_genai_time_per_output_token_seconds", "histogram",
    "Mean time per output token after the first, per generation with 2 tokens or more: (end - first token) / "
    "(output tokens - 1).",
    MODEL, unit="seconds", buckets=TPOT_BUCKETS, otel_name="gen_ai.server.time_per_output_token")
OUTPUT_TOKENS_PER_SECOND = MetricSpec(
    "mlscope_genai_output_tokens_per_second", "histogram",
    "Output tokens per second of one generation (output tokens / end-to-end duration).",
    MODEL, buckets=TOKENS_PER_SECOND_BUCKETS)
NO_FIRST_TOKEN = MetricSpec(
    "mlscope_genai_no_first_token_total", "counter",
    "Generations that ended (error, abandoned, or finished empty) without yielding a first output token.",
    MODEL + ("finish_reason",))
ERRORS = MetricSpec(
    "mlscope_genai_errors_total", "counter",
    "Generations that raised, by exception type (also counted as finish_reason=\"error\").",
    MODEL + ("error_type",))
COST = MetricSpec(
    "mlscope_genai_cost_total", "counter",
    "Cost of the tokens processed, in the price table's currency, priced when recorded (a later price change "
    "does not rewrite it), by token_type and tenant.",
    MODEL + ("token_type", "tenant"))
STREAMS_IN_FLIGHT = MetricSpec(
    "mlscope_genai_streams_in_flight", "gauge",
    "Generations started and not yet ended.", MODEL, multiprocess_mode="livesum")

METRICS = (GENERATIONS, TOKEN_USAGE, TOKENS, DURATION, TIME_TO_FIRST_TOKEN, TIME_PER_OUTPUT_TOKEN,
           OUTPUT_TOKENS_PER_SECOND, NO_FIRST_TOKEN, ERRORS, COST, STREAMS_IN_FLIGHT)

# Recorded series (mlscope.rules.genai).
GENERATION_RATE = RecordedSpec(
    "model_version:mlscope_genai_generations:rate", "Generations per second, per model version.")
OUTPUT_TOKEN_RATE = RecordedSpec(
    "model_version:mlscope_genai_output_tokens:rate", "Output tokens per second, per model version.")
TTFT_P50 = RecordedSpec("model_version:mlscope_genai_time_to_first_token_seconds:p50", "Median time to first token.")
TTFT_P95 = RecordedSpec("model_version:mlscope_genai_time_to_first_token_seconds:p95",
                        "95th percentile time to first token.")
TPOT_P50 = RecordedSpec("model_version:mlscope_genai_time_per_output_token_seconds:p50",
                        "Median time per output token.")
TPOT_P95 = RecordedSpec("model_version:mlscope_genai_time_per_output_token_seconds:p95",
                        "95th percentile time per output token.")
TTFT_SLOW_RATIO = RecordedSpec(
    "model_version:mlscope_genai_time_to_first_token_seconds:slow_ratio_rate",
    "Share of first tokens slower than the TTFT SLO threshold (the SLO's error ratio).")
TPOT_SLOW_RATIO = RecordedSpec(
    "model_version:mlscope_genai_time_per_output_token_seconds:slow_ratio_rate",
    "Share of generations whose time per output token is above the TPOT SLO threshold.")
TRUNCATED_RATIO = RecordedSpec(
    "model_version:mlscope_genai_truncated:ratio_rate",
    "Share of generations cut at the token limit (finish_reason=\"length\").")
FEEDBACK_POSITIVE = RecordedSpec(
    "model_version:mlscope_genai_feedback_positive:ratio",
    "Share of user feedback that was positive over the window (feedback joined through the quality store: "
    "coverage and delay are the version's model_version:mlscope_quality_coverage:ratio and label delay).",
    MODEL + ("window",))
TENANT_COST_RATE = RecordedSpec(
    "tenant:mlscope_genai_cost:rate", "Cost per second per tenant (every model and version), in the price "
    "table's currency.", ("tenant", "window"))
VERSION_COST_RATE = RecordedSpec(
    "model_version:mlscope_genai_cost:rate", "Cost per second per model version, in the price table's currency.",
    MODEL + ("window",))

RECORDED = (GENERATION_RATE, OUTPUT_TOKEN_RATE, TTFT_P50, TTFT_P95, TPOT_P50, TPOT_P95, TTFT_SLOW_RATIO,
            TPOT_SLOW_RATIO, TRUNCATED_RATIO, FEEDBACK_POSITIVE, TENANT_COST_RATE, VERSION_COST_RATE)
