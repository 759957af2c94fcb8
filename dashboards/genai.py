"""Generative models: tokens, time to first token, time per output token, tokens/s, cost, finish reasons, feedback."""
from mlscope import grafana as gf
from mlscope.catalog import genai as cat
from mlscope.catalog import modelservers as srv
from mlscope.catalog import quality as qcat
from mlscope.catalog.spec import HistogramSpec
from mlscope.rules import genai as genai_rules
from mlscope.rules import modelservers as server_rules
from mlscope.rules.config import config_for

# Its alerts by name, from the rule generator: a regex of alternatives (`.*` matches newlines in Prometheus 3).
GENAI_ALERTS = "|".join(dict.fromkeys(r["alert"] for module in (genai_rules, server_rules)
                                      for r in module.alert_rules(config_for("default"))))

S = gf.MODEL_SELECTOR
BY = "model, model_version"
V = "{{model}} {{model_version}}"
GENERATIVE = f"group by ({BY}) ({cat.GENERATIONS.name}{{{S}}})"
QUALITY = qcat.RECORDED_BY_LEVEL["model_version"]


def rate(metric: str, by: str = BY, extra: str = "") -> str:
    return f"sum by ({by}) (rate({metric}{{{S}{extra}}}[$__rate_interval]))"


def quantile(spec: HistogramSpec, q: str, by: str = BY) -> str:
    return f"histogram_quantile({q}, {rate(spec.name + '_bucket', by + ', le')})"


def quality(metric_op: str) -> str:
    """A per-version recorded quality series over $window, for generative versions only (their feedback)."""
    return f'{QUALITY[metric_op].name}{{{S},window="$window"}} and on ({BY}) {GENERATIVE}'


def server_quantile(families: tuple[srv.ServerSeries, ...], q: str) -> str:
    """A server-side quantile over every supported version's histogram (the first present wins)."""
    return f"histogram_quantile({q}, " + " or ".join(rate(f.name + "_bucket", BY + ", le") for f in families) + ")"


def server_gauge(op: str, spec: srv.RecordedSpec) -> str:
    return f"{op} by ({BY}) ({spec.name}{{{S}}})"


QUEUE = srv.VLLM_QUEUE_TIME.name
SERVER_QUEUE_TIME = (f"{rate(QUEUE + '_sum')} / {rate(QUEUE + '_count')} or avg by ({BY}) "
                     f"(avg_over_time({srv.SGLANG_QUEUE_LATENCY.name}{{{S}}}[$__rate_interval]))")
GPU_WINDOW = "5m"  # a traffic window of both rule profiles
GPU_V = "{{model}} {{model_version}} GPU {{gpu}} ({{instance}})"
SERVER_ROWS = [
    gf.row("Model servers (vLLM, SGLang): load"),
    [gf.timeseries("Model server: requests running and waiting", gf.prom(
        (server_gauge("sum", srv.RUNNING), f"running {V}"), (server_gauge("sum", srv.WAITING), f"waiting {V}")),
        "short", description="vLLM num_requests_running/num_requests_waiting, SGLang num_running_reqs/"
                             "num_queue_reqs, summed over engines and replicas."),
     gf.timeseries("Model server: queue time (mean)", gf.prom((SERVER_QUEUE_TIME, V)), "s",
                   description="vLLM v1 request_queue_time_seconds; SGLang avg_request_queue_latency."),
     gf.timeseries("Model server: KV-cache usage", gf.prom((server_gauge("max", srv.KV_CACHE), V)), "percentunit"),
     gf.timeseries("Model server: preemptions/s", gf.prom((rate(srv.VLLM_PREEMPTIONS.name), V)), "ops",
                   description="vLLM only (SGLang 0.4.6 exposes no preemption counter).")],
    gf.row("Model servers: latency and GPU efficiency per output token"),
    [gf.timeseries("Time to first token p95: server and application", gf.prom(
        (server_quantile(server_rules.TTFT, "0.95"), f"server {V}"),
        (quantile(cat.TIME_TO_FIRST_TOKEN, "0.95"), f"application {V}")), "s"),
     gf.timeseries("Inter-token latency p50 / p95: server, and application time per output token", gf.prom(
         (server_quantile(server_rules.ITL, "0.5"), f"server p50 {V}"),
         (server_quantile(server_rules.ITL, "0.95"), f"server p95 {V}"),
         (quantile(cat.TIME_PER_OUTPUT_TOKEN, "0.95"), f"application p95 {V}")), "s"),
     gf.timeseries("Output tokens per GPU-second", gf.prom(
         (f'{srv.TOKENS_PER_GPU_SECOND.name}{{{S},window="{GPU_WINDOW}"}}', GPU_V)), "short",
         description="The version's output tokens over the GPU-seconds it holds (per-process GPU memory share "
                     f"on each GPU), over {GPU_WINDOW}. A shared GPU counts for its memory share."),
     gf.timeseries("Energy per output token", gf.prom(
         (f'{srv.ENERGY_PER_TOKEN_GPU.name}{{{S},window="{GPU_WINDOW}"}}', GPU_V)), "joule",
         description=f"NVML energy (or power) of each GPU times the version's share, per output token, over "
                     f"{GPU_WINDOW}.")],
]
# The versions of the application's generations and of the model servers (a server no application reports).
VERSIONS = f'__name__=~"{cat.GENERATIONS.name}|{srv.RUNNING.name}"'
GENERATIONS = rate(cat.GENERATIONS.name)
OUTPUT_TOKENS = rate(cat.TOKENS.name, BY, ',token_type="output"')
FEEDBACK = f'{cat.FEEDBACK_POSITIVE.name}{{{S},window="$window"}}'
BASELINE = f'max by ({BY}) ({qcat.BASELINE.name}{{{S},metric="feedback_positive"}})'

dashboard = gf.dashboard(
    "mlscope-genai", "mlscope / Generative models",
    description="Tokens, time to first token, time per output token, tokens per second, cost per version and "
                "tenant, finish reasons and user feedback of generative model versions (mlscope.genai).",
    variables=[gf.label_variable("model", "Model", "", VERSIONS),
               gf.label_variable("model_version", "Version", "", f'{VERSIONS},model=~"$model"'),
               gf.window_variable(cat.FEEDBACK_POSITIVE.name)],
    rows=[
        [gf.stat("Generations/s", gf.prom(f"sum({GENERATIONS})"), "reqps"),
         gf.stat("Output tokens/s", gf.prom(f"sum({OUTPUT_TOKENS})"),
                 "ops"),
         gf.stat("p95 time to first token", gf.prom(f"max({quantile(cat.TIME_TO_FIRST_TOKEN, '0.95')})"), "s"),
         gf.stat("p95 time per output token", gf.prom(f"max({quantile(cat.TIME_PER_OUTPUT_TOKEN, '0.95')})"),
                 "s"),
         gf.stat("Cost per hour", gf.prom(f"3600 * sum({rate(cat.COST.name)})"), "short",
                 description="In the price table's currency, priced when each generation was recorded.")],
        [gf.with_logs(gf.timeseries("Time to first token p50 / p95 / p99", gf.prom(
            *((quantile(cat.TIME_TO_FIRST_TOKEN, q), f"p{q[2:]} {V}") for q in ("0.5", "0.95", "0.99"))), "s")),
         gf.with_logs(gf.timeseries("Time per output token p50 / p95", gf.prom(
             *((quantile(cat.TIME_PER_OUTPUT_TOKEN, q), f"p{q[2:]} {V}") for q in ("0.5", "0.95"))), "s"))],
        [gf.timeseries("Tokens per second by type", gf.prom(
            (rate(cat.TOKENS.name, BY + ", token_type"), "{{model_version}} {{token_type}}")), "ops"),
         gf.timeseries("Tokens per generation p50 / p95 by type", gf.prom(
             *((quantile(cat.TOKEN_USAGE, q, BY + ", token_type"), f"p{q[2:]} {{{{model_version}}}} {{{{token_type}}}}")
               for q in ("0.5", "0.95"))), "short"),
         gf.timeseries("Decode speed: median output tokens/s of a generation", gf.prom(
             (quantile(cat.OUTPUT_TOKENS_PER_SECOND, "0.5"), V)), "ops")],
        [gf.timeseries("Cost per hour by version", gf.prom((f"3600 * {rate(cat.COST.name)}", V)), "short"),
         gf.timeseries("Cost per hour by tenant", gf.prom(
             (f"3600 * {rate(cat.COST.name, 'tenant')}", "{{tenant}}")), "short", stacked=True)],
        [gf.timeseries("Finish reasons (share)", gf.prom(
            (f"{rate(cat.GENERATIONS.name, BY + ', finish_reason')} / ignoring (finish_reason) group_left "
             f"{GENERATIONS}", "{{model_version}} {{finish_reason}}")), "percentunit", stacked=True),
         gf.timeseries("Streams in flight", gf.prom(
             (f"sum by ({BY}) ({cat.STREAMS_IN_FLIGHT.name}{{{S}}})", f"in flight {V}")), "short"),
         gf.timeseries("Generations without a first token per second", gf.prom(
             (rate(cat.NO_FIRST_TOKEN.name, BY + ", finish_reason"), "{{model_version}} {{finish_reason}}")),
             "reqps")],
        [gf.timeseries("Feedback-positive ratio and baseline", gf.prom(
            (FEEDBACK, f"positive {V}"), (f"{BASELINE} and on ({BY}) {GENERATIVE}", f"baseline {V}")),
            "percentunit", description="Share of the user feedback joined over $window that was positive, "
                                       "next to the version's feedback_positive baseline."),
         gf.timeseries("Feedback coverage and delay", gf.prom(
             (quality("mlscope_quality_coverage:ratio"), f"coverage {V}")), "percentunit",
             description="Coverage: generations with feedback / generations stored over $window."),
         gf.timeseries("Feedback delay p90", gf.prom(
             (quality("mlscope_quality_label_delay_seconds:p90"), f"p90 {V}")), "s")],
        *SERVER_ROWS,
        [gf.table("Active generative-model alerts",
                  gf.prom((f'ALERTS{{alertstate="firing",alertname=~"{GENAI_ALERTS}"}}', "")), sort_by="severity")],
    ])
