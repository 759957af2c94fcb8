"""Recording and alert rules for model servers (vLLM, SGLang) and their GPU efficiency per output token.

Series names differ between server versions (catalog: :mod:`mlscope.catalog.modelservers`); each recorded series
reads every version's name joined with ``or`` (the first present wins per model version, so vLLM 0.11's
inter_token_latency_seconds wins over the deprecated time_per_output_token_seconds it still exposes). The scrape
job has already mapped the servers' ``model_name`` onto ``model``/``model_version``.
"""
from __future__ import annotations

from typing import Any

from prometheus_client.utils import floatToGoString

from ..catalog import modelservers as cat
from ..catalog import resources as rcat
from ..catalog.modelservers import ServerSeries
from ..catalog.serving import WINDOW_WARM
from .builders import Rule, alert, group, record, selector, warm_up
from .config import GPUAssignment, RuleConfig
from .genai import BY_VERSION, DASHBOARD, ON, WHO, burn_alerts, when_warm_all

BY_GPU = "instance, gpu"
BY_VERSION_GPU = f"{BY_VERSION}, {BY_GPU}"
DOMAIN, STATE, THROUGHPUT = "model_server", "model_server_state", "model_server_throughput"
TTFT, ITL = cat.TTFT_FAMILIES, cat.ITL_FAMILIES
FINISHED = (cat.VLLM_E2E, cat.SGLANG_E2E)  # every finished request is observed once: the warm-up count


def either(*exprs: str) -> str:
    """The first of ``exprs`` present per label set (one server version's name or another's)."""
    return " or ".join(exprs)


def _sum_rate(name: str, window: str, *matchers: str, by: str = BY_VERSION) -> str:
    return f"sum by ({by}) (rate({name}{selector(*matchers)}[{window}]))"


def _histogram(families: tuple[ServerSeries, ...], window: str) -> str:
    return either(*(_sum_rate(f.name + "_bucket", window, by=BY_VERSION + ", le") for f in families))


def _slow_ratio(families: tuple[ServerSeries, ...], slo: float, window: str) -> str:
    """Share of observations above ``slo``, a bucket bound of every family (``ModelServerRules`` checks it)."""
    le = floatToGoString(slo)
    parts = []
    for family in families:
        if slo not in family.buckets:
            raise ValueError(f"the SLO threshold {slo} must be a bucket of {family.name} {family.buckets}")
        fast = _sum_rate(family.name + "_bucket", window, f'le="{le}"')
        parts.append(f"(1 - {fast} / ({_sum_rate(family.name + '_count', window)} > 0))")
    return either(*parts)


def _failed_ratio(window: str) -> str:
    success = cat.VLLM_REQUEST_SUCCESS.name
    failed = _sum_rate(success, window, 'finished_reason=~"' + "|".join(cat.FAILED_REASONS) + '"')
    finished = _sum_rate(success, window)
    return f"({failed} or 0 * {finished}) / ({finished} > 0)"


def _queue_time(window: str) -> str:
    q = cat.VLLM_QUEUE_TIME.name
    vllm = f"{_sum_rate(q + '_sum', window)} / ({_sum_rate(q + '_count', window)} > 0)"
    sglang = f"avg by ({BY_VERSION}) (avg_over_time({cat.SGLANG_QUEUE_LATENCY.name}[{window}]))"
    return either(f"({vllm})", sglang)


def _gauge(op: str, *families: ServerSeries) -> str:
    return either(*(f"{op} by ({BY_VERSION}) ({f.name})" for f in families))


SCRAPED = (cat.VLLM_RUNNING.name, cat.SGLANG_RUNNING.name)  # one sample per scrape of every server: continuity


def _warm(window: str, cfg: RuleConfig, domain: str = DOMAIN) -> Rule:
    count = either(*(f"sum by ({BY_VERSION}) (increase({f.name}_count[{window}]))" for f in FINISHED))
    guard = cfg.profile.warmup.model_server_throughput if domain == THROUGHPUT else cfg.profile.warmup.model_server
    return warm_up(WINDOW_WARM, domain, window, guard, count=count, age=cat.RUNNING.name, by=BY_VERSION,
                   samples=SCRAPED, every=cfg.profile.scrape_interval)


def _state_warm(window: str, cfg: RuleConfig) -> Rule:
    gauges = (cat.WAITING, cat.KV_CACHE)
    count = f"sum by ({BY_VERSION}) ({' or '.join(f'count_over_time({g.name}[{window}])' for g in gauges)})"
    return warm_up(WINDOW_WARM, STATE, window, cfg.profile.warmup.model_server_state, count=count,
                   age=cat.WAITING.name, by=BY_VERSION, samples=SCRAPED, every=cfg.profile.scrape_interval)


def server_rules(cfg: RuleConfig) -> list[Rule]:
    p, t = cfg.profile, cfg.thresholds
    rules = [record(cat.RUNNING, _gauge("sum", cat.VLLM_RUNNING, cat.SGLANG_RUNNING)),
             record(cat.WAITING, _gauge("sum", cat.VLLM_WAITING, cat.SGLANG_QUEUE)),
             # vLLM 0.9-0.10 expose both cache names (the same value): the v1 name wins
             record(cat.KV_CACHE, _gauge("max", cat.VLLM_KV_CACHE, cat.VLLM_GPU_CACHE, cat.SGLANG_TOKEN_USAGE))]
    for w in p.traffic_windows:
        rules += [
            record(cat.OUTPUT_TOKENS, either(_sum_rate(cat.VLLM_GENERATION_TOKENS.name, w),
                                             _sum_rate(cat.SGLANG_GENERATION_TOKENS.name, w)), window=w),
            record(cat.PROMPT_TOKENS, either(_sum_rate(cat.VLLM_PROMPT_TOKENS.name, w),
                                             _sum_rate(cat.SGLANG_PROMPT_TOKENS.name, w)), window=w),
            record(cat.REQUESTS, either(*(_sum_rate(f.name + "_count", w) for f in FINISHED)), window=w),
            record(cat.FAILED, _failed_ratio(w), window=w),
            record(cat.PREEMPTIONS, _sum_rate(cat.VLLM_PREEMPTIONS.name, w), window=w),
            record(cat.QUEUE_TIME, _queue_time(w), window=w),
            record(cat.TTFT_P50, f"histogram_quantile(0.5, {_histogram(TTFT, w)})", window=w),
            record(cat.TTFT_P95, f"histogram_quantile(0.95, {_histogram(TTFT, w)})", window=w),
            record(cat.ITL_P50, f"histogram_quantile(0.5, {_histogram(ITL, w)})", window=w),
            record(cat.ITL_P95, f"histogram_quantile(0.95, {_histogram(ITL, w)})", window=w)]
    for w in p.burn_rate_windows:
        rules += [record(cat.TTFT_SLOW, _slow_ratio(TTFT, cfg.model_servers.ttft_slo(t.genai_ttft_slo_seconds), w),
                         window=w),
                  record(cat.ITL_SLOW, _slow_ratio(ITL, cfg.model_servers.tpot_slo(t.genai_tpot_slo_seconds), w),
                         window=w)]
    rules += [_warm(w, cfg) for w in dict.fromkeys(p.traffic_windows + p.burn_rate_windows)]
    rules += [_warm(w, cfg, THROUGHPUT) for w in p.traffic_windows]
    return rules + [_state_warm(p.alert_window, cfg)]


def _power(cfg: RuleConfig, window: str) -> str:
    """Watts per GPU over the window: NVML's energy counter, or its power gauge where the counter is missing."""
    sel = selector(cfg.resources.selector)
    return either(f"sum by ({BY_GPU}) (rate({rcat.GPU_ENERGY.name}{sel}[{window}]))",
                  f"sum by ({BY_GPU}) (avg_over_time({rcat.GPU_POWER.name}{sel}[{window}]))")


def _assigned(g: GPUAssignment) -> str:
    """A configured GPU assignment as a one-sample vector with its labels (values checked: no quotes)."""
    expr = f"vector({g.share:g})"
    for label in ("model", "model_version", "instance", "gpu"):
        expr = f'label_replace({expr}, "{label}", "{getattr(g, label)}", "", "")'
    return expr


def gpu_rules(cfg: RuleConfig) -> list[Rule]:
    """Which GPUs serve a version (per-process GPU memory, else the configured assignments) and their output
    tokens per GPU-second and joules per output token."""
    memory = rcat.GPU_PROCESS_MEMORY.name + selector(cfg.resources.selector, 'model!=""')
    by_version = f"sum by ({BY_VERSION_GPU}) ({memory})"
    share = f"{by_version} / on ({BY_GPU}) group_left () sum by ({BY_GPU}) ({memory})"
    assigned = [_assigned(g) for g in cfg.model_servers.gpus]
    if assigned:  # configured GPUs count for versions whose processes the resource exporter does not attribute
        share = either(share, f"({either(*assigned)}) unless on ({BY_VERSION}) ({share})")
    rules = [record(cat.GPU_SHARE, share)]
    held = f"sum by ({BY_VERSION}) ({cat.GPU_SHARE.name})"  # GPU-seconds per second
    for w in cfg.profile.traffic_windows:
        tokens = f'sum by ({BY_VERSION}) ({cat.OUTPUT_TOKENS.name}{{window="{w}"}})'
        energy = f"{cat.GPU_SHARE.name} * on ({BY_GPU}) group_left () ({_power(cfg, w)})"
        per_gpu = f'{cat.TOKENS_PER_GPU_SECOND.name}{{window="{w}"}}'
        rules += [
            record(cat.TOKENS_PER_GPU_SECOND,
                   f"{cat.GPU_SHARE.name} * 0 + on ({BY_VERSION}) group_left () ({tokens} / ({held} > 0))", window=w),
            # the GPU's energy for the version / the version's tokens attributed to this GPU (share / held)
            record(cat.ENERGY_PER_TOKEN_GPU,
                   f"({energy}) / on ({BY_VERSION_GPU}) ({cat.GPU_SHARE.name} * on ({BY_VERSION_GPU}) {per_gpu} > 0)",
                   window=w),
            record(cat.ENERGY_PER_TOKEN, f"sum by ({BY_VERSION}) ({energy}) / on ({BY_VERSION}) ({tokens} > 0)",
                   window=w)]
    return rules


def alert_rules(cfg: RuleConfig) -> list[Rule]:
    t, p, m = cfg.thresholds, cfg.profile, cfg.model_servers
    w, long = p.alert_window, p.traffic_windows[-1]

    def at(spec: Any, window: str = w) -> str:
        return f'{spec.name}{{window="{window}"}}'

    def scoped(name: str, expr: str, summary: str, description: str, severity: str = "warning") -> Rule:
        return alert(cfg, name, expr, severity=severity, for_=p.for_symptom, dashboard=DASHBOARD, model_scoped=True,
                     labels={"window": w}, summary=f"{WHO}: {summary}", description=description)

    demand = f"({cat.RUNNING.name} + {ON} {cat.WAITING.name}) > 0"
    return burn_alerts(cfg, "ModelServerTimeToFirstTokenSLOBurn", cat.TTFT_SLOW, "server time to first token",
                       m.ttft_slo(t.genai_ttft_slo_seconds), t.genai_ttft_slo_objective, domain=DOMAIN,
                       subject="the server's first tokens") + burn_alerts(
        cfg, "ModelServerInterTokenLatencySLOBurn", cat.ITL_SLOW, "per-token latency",
        m.tpot_slo(t.genai_tpot_slo_seconds), t.genai_tpot_slo_objective, domain=DOMAIN,
        subject="the server's output tokens") + [
        scoped("ModelServerRequestsFailing",
               when_warm_all(f"{at(cat.FAILED)} > {m.failed_ratio:g}", DOMAIN, w),
               "model server requests failing",
               "{{ $value | humanizePercentage }} of the requests the model servers of " + WHO + " finished over the"
               f" last {w} were aborted (finished_reason=\"abort\": an engine error or a client gone; threshold "
               f"{m.failed_ratio:.0%}).", severity="critical"),
        scoped("ModelServerQueueTimeHigh",
               when_warm_all(f"{at(cat.QUEUE_TIME)} > {m.queue_time_seconds:g}", DOMAIN, w),
               "requests wait too long in the model server's queue",
               "Requests of " + WHO + " waited {{ $value | humanizeDuration }} on average before running over the "
               f"last {w} (threshold {m.queue_time_seconds:g}s)."),
        scoped("ModelServerWaitingRequestsGrowing",
               when_warm_all(f"avg_over_time({cat.WAITING.name}[{w}]) > {m.waiting_requests:g} and {ON} "
                             f"delta({cat.WAITING.name}[{w}]) > 0", STATE, w),
               "model server queue growing",
               "{{ $value | printf \"%.0f\" }} requests of " + WHO + f" waited on average over the last {w} and the "
               f"queue is still growing (threshold {m.waiting_requests:g})."),
        scoped("ModelServerKVCacheNearlyFull",
               when_warm_all(f"min_over_time({cat.KV_CACHE.name}[{w}]) > {m.kv_cache_usage_ratio:g}", STATE, w),
               "KV cache nearly full",
               "The KV cache of " + WHO + " stayed above {{ $value | humanizePercentage }} over the last " + w
               + f" (threshold {m.kv_cache_usage_ratio:.0%}); the engine will preempt running requests."),
        scoped("ModelServerPreempting",
               when_warm_all(f"{at(cat.PREEMPTIONS)} > {m.preemptions_per_second:g}", DOMAIN, w),
               "model server preempting requests",
               "The model servers of " + WHO + " preempted {{ $value | printf \"%.2f\" }} requests per second over "
               f"the last {w} (threshold {m.preemptions_per_second:g}/s): the KV cache is too small for the load."),
        scoped("ModelServerThroughputCollapse",
               when_warm_all(f"{at(cat.OUTPUT_TOKENS)} < {ON} {m.throughput_drop_ratio:g} * "
                             f"{at(cat.OUTPUT_TOKENS, long)} and {ON} {demand}", THROUGHPUT, w, long),
               "output token throughput collapsed",
               "The model servers of " + WHO + " produced {{ $value | printf \"%.1f\" }} output tokens per second "
               f"over the last {w}, below {m.throughput_drop_ratio:.0%} of their rate over {long}, while requests "
               "run or wait.", severity="critical"),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-model-servers-recording", cfg, server_rules(cfg)),
            group("mlscope-model-servers-gpu", cfg, gpu_rules(cfg)),
            group("mlscope-model-servers-alerts", cfg, alert_rules(cfg))]
