"""Model servers (vLLM, SGLang): the series they publish that mlscope reads, and what it records from them.

The servers' names are read from their source, per supported version (wheels from PyPI, not installed):
vLLM 0.6.3 (pre-v1 engine, ``vllm/engine/metrics.py``), vLLM 0.11.0 (v1 engine, ``vllm/v1/metrics/loggers.py``)
and SGLang 0.4.6 (``sglang/srt/metrics/collector.py``). Each server labels its series with ``model_name`` (the
served model name; vLLM v1 adds ``engine``, SGLang's scheduler ``engine_type``); the scrape job maps
``model_name`` onto ``model``/``model_version`` (:mod:`mlscope.stack.modelservers`) so the recorded series below
join the application's.
"""
from __future__ import annotations

from dataclasses import dataclass

from .spec import MetricKind, RecordedSpec, exposed_series

VLLM_V0, VLLM_V1, SGLANG = "vllm-0.6.3", "vllm-0.11.0", "sglang-0.4.6"
#: Every server version the fixtures, rules and dashboards are tested against.
VERSIONS = (VLLM_V0, VLLM_V1, SGLANG)
KINDS = ("vllm", "sglang")  # what a scrape target says it is (the `server` target label)
#: vLLM's finished_reason values (``FINISH_REASON_STRINGS`` of 0.11.0; ``get_finished_reason`` of 0.6.3).
VLLM_FINISHED_REASONS = ("stop", "length", "abort")
#: finished_reason values that are failures (vLLM counts engine errors and client disconnects as abort).
FAILED_REASONS = ("abort",)


@dataclass(frozen=True)
class ServerSeries:
    """One metric family a model server exposes: its exposed name, kind, labels and buckets, per version."""

    name: str
    kind: MetricKind
    help: str
    versions: tuple[str, ...]
    labels: tuple[str, ...] = ("model_name",)
    buckets: tuple[float, ...] = ()

    @property
    def series_names(self) -> frozenset[str]:
        return exposed_series(self.name, self.kind)

    def labels_in(self, version: str) -> tuple[str, ...]:
        """Labels in ``version``: vLLM v1 adds ``engine``, SGLang's scheduler gauges ``engine_type``."""
        extra = ("engine",) if version == VLLM_V1 else ("engine_type",) if version == SGLANG and self.kind == "gauge" \
            else ()
        return self.labels[:1] + extra + self.labels[1:]


V0_AND_V1 = (VLLM_V0, VLLM_V1)
VLLM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
VLLM_V1_TTFT_BUCKETS = VLLM_TTFT_BUCKETS + (20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
VLLM_TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
VLLM_V1_ITL_BUCKETS = VLLM_TPOT_BUCKETS + (5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
VLLM_E2E_BUCKETS = (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
VLLM_V1_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                           240.0, 480.0, 960.0, 1920.0, 7680.0)
SGLANG_TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0,
                       400.0)
SGLANG_ITL_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.06, 0.08, 0.1, 0.2,
                      0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0)
SGLANG_E2E_BUCKETS = SGLANG_TTFT_BUCKETS + (800.0,)

# -- vLLM --------------------------------------------------------------------------------------------------------
VLLM_RUNNING = ServerSeries("vllm:num_requests_running", "gauge", "Requests running on the GPU.", V0_AND_V1)
VLLM_WAITING = ServerSeries("vllm:num_requests_waiting", "gauge", "Requests waiting to be scheduled.", V0_AND_V1)
VLLM_KV_CACHE = ServerSeries("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage, 1 = full (v1 engine, 0.9+).",
                             (VLLM_V1,))
VLLM_GPU_CACHE = ServerSeries("vllm:gpu_cache_usage_perc", "gauge",
                              "GPU KV-cache usage, 1 = full (pre-v1; hidden in 0.11 unless show_hidden_metrics).",
                              (VLLM_V0,))
VLLM_PREEMPTIONS = ServerSeries("vllm:num_preemptions_total", "counter", "Preemptions by the engine.", V0_AND_V1)
VLLM_PROMPT_TOKENS = ServerSeries("vllm:prompt_tokens_total", "counter", "Prefill tokens processed.", V0_AND_V1)
VLLM_GENERATION_TOKENS = ServerSeries("vllm:generation_tokens_total", "counter", "Generation tokens processed.",
                                      V0_AND_V1)
VLLM_REQUEST_SUCCESS = ServerSeries("vllm:request_success_total", "counter",
                                    "Requests finished, by finished_reason (stop, length, abort).", V0_AND_V1,
                                    ("model_name", "finished_reason"))
VLLM_TTFT = ServerSeries("vllm:time_to_first_token_seconds", "histogram", "Time to first token.", V0_AND_V1,
                         buckets=VLLM_V1_TTFT_BUCKETS)
VLLM_TPOT = ServerSeries("vllm:time_per_output_token_seconds", "histogram",
                         "Time per output token (pre-v1 name; deprecated in 0.11, still exposed).", V0_AND_V1,
                         buckets=VLLM_V1_ITL_BUCKETS)
VLLM_ITL = ServerSeries("vllm:inter_token_latency_seconds", "histogram", "Inter-token latency (0.11+).",
                        (VLLM_V1,), buckets=VLLM_V1_ITL_BUCKETS)
VLLM_E2E = ServerSeries("vllm:e2e_request_latency_seconds", "histogram", "End-to-end request latency.", V0_AND_V1,
                        buckets=VLLM_V1_LATENCY_BUCKETS)
VLLM_QUEUE_TIME = ServerSeries("vllm:request_queue_time_seconds", "histogram",
                               "Time a request spent waiting (v1 engine).", (VLLM_V1,),
                               buckets=VLLM_V1_LATENCY_BUCKETS)

# -- SGLang ------------------------------------------------------------------------------------------------------
SGLANG_RUNNING = ServerSeries("sglang:num_running_reqs", "gauge", "Requests running.", (SGLANG,))
SGLANG_QUEUE = ServerSeries("sglang:num_queue_reqs", "gauge", "Requests in the waiting queue.", (SGLANG,))
SGLANG_TOKEN_USAGE = ServerSeries("sglang:token_usage", "gauge", "KV-cache (token pool) usage, 1 = full.",
                                  (SGLANG,))
SGLANG_QUEUE_LATENCY = ServerSeries("sglang:avg_request_queue_latency", "gauge",
                                    "Mean queue time of the last batch's requests, in seconds.", (SGLANG,))
SGLANG_PROMPT_TOKENS = ServerSeries("sglang:prompt_tokens_total", "counter", "Prefill tokens processed.", (SGLANG,))
SGLANG_GENERATION_TOKENS = ServerSeries("sglang:generation_tokens_total", "counter", "Generation tokens processed.",
                                        (SGLANG,))
SGLANG_REQUESTS = ServerSeries("sglang:num_requests_total", "counter", "Requests finished.", (SGLANG,))
SGLANG_TTFT = ServerSeries("sglang:time_to_first_token_seconds", "histogram", "Time to first token.", (SGLANG,),
                           buckets=SGLANG_TTFT_BUCKETS)
SGLANG_ITL = ServerSeries("sglang:inter_token_latency_seconds", "histogram", "Inter-token latency.", (SGLANG,),
                          buckets=SGLANG_ITL_BUCKETS)
SGLANG_E2E = ServerSeries("sglang:e2e_request_latency_seconds", "histogram", "End-to-end request latency.",
                          (SGLANG,), buckets=SGLANG_E2E_BUCKETS)

SERVER_SERIES = (VLLM_RUNNING, VLLM_WAITING, VLLM_KV_CACHE, VLLM_GPU_CACHE, VLLM_PREEMPTIONS, VLLM_PROMPT_TOKENS,
                 VLLM_GENERATION_TOKENS, VLLM_REQUEST_SUCCESS, VLLM_TTFT, VLLM_TPOT, VLLM_ITL, VLLM_E2E,
                 VLLM_QUEUE_TIME, SGLANG_RUNNING, SGLANG_QUEUE, SGLANG_TOKEN_USAGE, SGLANG_QUEUE_LATENCY,
                 SGLANG_PROMPT_TOKENS, SGLANG_GENERATION_TOKENS, SGLANG_REQUESTS, SGLANG_TTFT, SGLANG_ITL, SGLANG_E2E)
SERVER_SERIES_NAMES: frozenset[str] = frozenset().union(*(s.series_names for s in SERVER_SERIES))


def buckets_in(series: ServerSeries, version: str) -> tuple[float, ...]:
    """The histogram's buckets in ``version`` (vLLM 0.6.3's TTFT/TPOT/e2e buckets are shorter than 0.11's)."""
    if version == VLLM_V0:
        return {VLLM_TTFT.name: VLLM_TTFT_BUCKETS, VLLM_TPOT.name: VLLM_TPOT_BUCKETS,
                VLLM_E2E.name: VLLM_E2E_BUCKETS}.get(series.name, series.buckets)
    return series.buckets


def common_buckets(families: tuple[ServerSeries, ...]) -> tuple[float, ...]:
    """The bucket bounds every version of every one of ``families`` has: the thresholds an SLO ratio can read."""
    common = set.intersection(*(set(buckets_in(f, v)) for f in families for v in f.versions))
    return tuple(sorted(common))


TTFT_FAMILIES = (VLLM_TTFT, SGLANG_TTFT)
ITL_FAMILIES = (VLLM_ITL, VLLM_TPOT, SGLANG_ITL)  # vLLM 0.11+, vLLM before 0.11, SGLang

METRICS: tuple = ()  # mlscope publishes none here: the servers do

_TW = ("model", "model_version", "window")
_GPU = ("model", "model_version", "instance", "gpu")
RUNNING = RecordedSpec("model_version:mlscope_server_requests_running:sum",
                       "Requests running on the model servers of a version (every engine and replica).")
WAITING = RecordedSpec("model_version:mlscope_server_requests_waiting:sum",
                       "Requests waiting in the model servers' queues (vLLM num_requests_waiting, SGLang "
                       "num_queue_reqs).")
KV_CACHE = RecordedSpec("model_version:mlscope_server_kv_cache_usage:max",
                        "Fullest KV cache among the version's engines, 1 = full (vLLM kv_cache_usage_perc, or "
                        "gpu_cache_usage_perc before v1; SGLang token_usage).")
PREEMPTIONS = RecordedSpec("model_version:mlscope_server_preemptions:rate",
                           "Requests preempted per second (vLLM only: SGLang 0.4.6 exposes no such counter).", _TW)
OUTPUT_TOKENS = RecordedSpec("model_version:mlscope_server_output_tokens:rate",
                             "Output (generation) tokens per second served.", _TW)
PROMPT_TOKENS = RecordedSpec("model_version:mlscope_server_prompt_tokens:rate", "Prompt (prefill) tokens per second.",
                             _TW)
REQUESTS = RecordedSpec("model_version:mlscope_server_requests:rate", "Requests finished per second.", _TW)
FAILED = RecordedSpec("model_version:mlscope_server_requests_failed:ratio_rate",
                      "Share of finished requests that failed (vLLM finished_reason=\"abort\"; SGLang 0.4.6 "
                      "reports no finish reason).", _TW)
TTFT_P50 = RecordedSpec("model_version:mlscope_server_time_to_first_token_seconds:p50",
                        "Median server-side time to first token.", _TW)
TTFT_P95 = RecordedSpec("model_version:mlscope_server_time_to_first_token_seconds:p95",
                        "95th percentile server-side time to first token.", _TW)
ITL_P50 = RecordedSpec("model_version:mlscope_server_inter_token_latency_seconds:p50",
                       "Median inter-token latency (vLLM inter_token_latency_seconds, or time_per_output_token_"
                       "seconds before 0.11; SGLang inter_token_latency_seconds).", _TW)
ITL_P95 = RecordedSpec("model_version:mlscope_server_inter_token_latency_seconds:p95",
                       "95th percentile inter-token latency.", _TW)
QUEUE_TIME = RecordedSpec("model_version:mlscope_server_queue_time_seconds:mean",
                          "Mean time a request waited before running (vLLM v1 request_queue_time_seconds; SGLang "
                          "avg_request_queue_latency averaged over the window; vLLM 0.6.3 has none).", _TW)
TTFT_SLOW = RecordedSpec("model_version:mlscope_server_time_to_first_token_seconds:slow_ratio_rate",
                         "Share of the servers' first tokens slower than the TTFT SLO threshold.", _TW)
ITL_SLOW = RecordedSpec("model_version:mlscope_server_inter_token_latency_seconds:slow_ratio_rate",
                        "Share of inter-token gaps above the TPOT SLO threshold (the servers observe every gap).",
                        _TW)
GPU_SHARE = RecordedSpec("model_version_gpu:mlscope_server_gpu_share:ratio",
                         "Share of a GPU a model version holds: its processes' GPU memory over every watched "
                         "process's on that GPU (1: the GPU is its own), or its configured share "
                         "(model_servers.gpus) where the resource exporter attributes no process to the version.",
                         _GPU)
TOKENS_PER_GPU_SECOND = RecordedSpec(
    "model_version_gpu:mlscope_server_output_tokens_per_gpu_second:rate",
    "Output tokens per GPU-second, on each GPU of a version: its token rate over the GPU-seconds it holds "
    "(the sum of its GPU shares).", _GPU + ("window",))
ENERGY_PER_TOKEN_GPU = RecordedSpec(
    "model_version_gpu:mlscope_server_energy_joules_per_output_token:ratio",
    "Joules one GPU spent per output token of the version attributed to it (NVML energy counter rate, or power "
    "where the counter is missing, times the version's share).", _GPU + ("window",))
ENERGY_PER_TOKEN = RecordedSpec(
    "model_version:mlscope_server_energy_joules_per_output_token:ratio",
    "Joules per output token of a version: the energy of its GPU shares over its output tokens.", _TW)

RECORDED = (RUNNING, WAITING, KV_CACHE, PREEMPTIONS, OUTPUT_TOKENS, PROMPT_TOKENS, REQUESTS, FAILED, TTFT_P50,
            TTFT_P95, ITL_P50, ITL_P95, QUEUE_TIME, TTFT_SLOW, ITL_SLOW, GPU_SHARE,
            TOKENS_PER_GPU_SECOND, ENERGY_PER_TOKEN_GPU, ENERGY_PER_TOKEN)
