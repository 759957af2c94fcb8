"""vLLM (0.6.3, 0.11.0) and SGLang (0.4.6) fixture expositions and fake NVML-side series, scraped by one real
Prometheus through the model-server relabelling, on the fast rule profile: the recorded series equal numpy on the
fixtures' per-second samples, the mapping puts model_name onto model/model_version, alerts fire for the versions
whose fixture breaks an SLO and for no other, and the dashboard's model-server queries all return data.

No GPU here: the efficiency join reads fake NVML series (tests/support/model_servers.nvml_side)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import yaml

from mlscope.catalog import modelservers as cat
from mlscope.dashboards import check as dashcheck
from mlscope.rules import config_for, modelservers
from mlscope.rules.config import BurnWindow, GPUAssignment, ModelServerRules
from mlscope.stack import promconfig, servers
from mlscope.stack.modelservers import UNVERSIONED
from support.helpers import ROOT, require_binary, wait_until
from support.model_servers import FIXTURES, MAPPING, Family, start_model_servers

# The fast profile with second-scale windows (rate() divides by the whole window: a 1m window would need a minute
# of samples to read the fixtures' rates exactly). 5m: the window the dashboard's GPU panels read.
FAST = config_for("fast")
# A configured GPU for a version the resource exporter does not attribute (ghost), and one it does (chat: ignored).
GPUS = (GPUAssignment("ghost", "1", "gpu-node:9839", "7", 0.5), GPUAssignment("chat", "2", "gpu-node:9839", "8"))
CFG = replace(FAST, profile=replace(FAST.profile, traffic_windows=("4s", "5m"), burn_windows=(
    BurnWindow("8s", "4s", 14.4, "critical"), BurnWindow("8s", "4s", 6.0, "warning"))),
    model_servers=ModelServerRules(gpus=GPUS))
W = CFG.profile.alert_window
# fixture -> the model and version its series get (MAPPING: the target's own mapping, or none)
EXPECTED_LABELS = {"vllm-0.11.0": ("chat", "2"), "vllm-0.6.3": ("llama-v0", UNVERSIONED), "sglang-0.4.6": ("qa", "1")}


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.PrometheusAPI]:
    require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("model-servers")
    job, fakes = start_model_servers(tmp / "targets")
    rules = tmp / "mlscope-model-servers.yml"
    rules.write_text(yaml.safe_dump({"groups": modelservers.groups(CFG)}, sort_keys=False))
    config = promconfig.prometheus_config(CFG.profile, [job], [rules])
    server = servers.prometheus(promconfig.write_config(tmp / "prometheus.yml", config), tmp / "data")
    server.start()
    api = servers.PrometheusAPI(server.url)
    # rates need a few scrapes; wait for the last recording rule of the GPU group
    api.wait_for(f'count({cat.ENERGY_PER_TOKEN.name}{{window="{W}"}}) == 3', timeout=30)
    wait_until(lambda: _span(api) >= 10, timeout=20)  # every window but 5m full
    yield api
    server.stop()
    for fake in fakes:
        fake.close()


def _span(api: servers.PrometheusAPI) -> float:
    """Scrapes of the fake servers within the window (1 s apart)."""
    counts = api.query("min(count_over_time(vllm:num_requests_running[1m]))")
    return float(counts[0]["value"][1]) if counts else 0.0


def values(api: servers.PrometheusAPI, expr: str) -> dict[tuple[str, ...], float]:
    """(model, model_version[, gpu]) -> value."""
    out = {}
    for item in api.query(expr):
        m = item["metric"]
        key = (m["model"], m["model_version"]) + ((m["gpu"],) if "gpu" in m else ())
        out[key] = float(item["value"][1])
    return out


def family(fixture: str, name: str) -> Family:
    return next(f for f in FIXTURES[fixture]() if f.name == name)


def quantile(f: Family, q: float) -> float:
    """Prometheus's histogram_quantile on the per-second bucket counts (linear within the bucket), with numpy."""
    bounds = np.array([0.0] + [b for b, _ in f.buckets])
    cumulative = np.concatenate([[0.0], np.cumsum([c for _, c in f.buckets])])
    rank = q * cumulative[-1]
    i = int(np.searchsorted(cumulative[1:], rank, side="left"))
    lower, upper = bounds[i], bounds[i + 1]
    below, inside = cumulative[i], cumulative[i + 1] - cumulative[i]
    return float(lower + (upper - lower) * (rank - below) / inside)


def slow_ratio(f: Family, slo: float) -> float:
    counts = np.array([c for _, c in f.buckets])
    bounds = np.array([b for b, _ in f.buckets])
    return float(1 - counts[bounds <= slo].sum() / counts.sum())


def rate(f: Family) -> float:
    return f.value if not f.by_label else sum(sum(v.values()) for v in f.by_label.values())


def test_model_name_is_mapped_onto_model_and_version(prom: servers.PrometheusAPI) -> None:
    for fixture, (model, version) in EXPECTED_LABELS.items():
        name = "vllm:num_requests_running" if fixture.startswith("vllm") else "sglang:num_running_reqs"
        found = prom.query(f'{name}{{model="{model}",model_version="{version}"}}')
        assert len(found) == 1, (fixture, found)
        assert found[0]["metric"]["server"] == MAPPING[fixture][0]
    # the NVML target is no model server: its series keep their own labels (no model_version invented)
    assert {m["metric"]["model"] for m in prom.query("mlscope_gpu_process_memory_bytes")} == {"chat", "qa", "llama-v0"}


def test_recorded_series_equal_numpy_on_the_fixtures(prom: servers.PrometheusAPI) -> None:
    t = CFG.thresholds
    sel = f'{{window="{W}"}}'
    v1, v0, sgl = (EXPECTED_LABELS[k] for k in ("vllm-0.11.0", "vllm-0.6.3", "sglang-0.4.6"))
    assert values(prom, cat.RUNNING.name) == {v1: 8, v0: 4, sgl: 6}
    assert values(prom, cat.WAITING.name) == {v1: 3, v0: 0, sgl: 2}
    assert values(prom, cat.KV_CACHE.name) == {v1: 0.97, v0: 0.5, sgl: 0.6}  # three names, one series each
    expected_rates = {
        cat.OUTPUT_TOKENS: {v1: 400, v0: 100, sgl: 250}, cat.PROMPT_TOKENS: {v1: 900, v0: 300, sgl: 500},
        cat.REQUESTS: {v1: 10, v0: 5, sgl: 5}, cat.PREEMPTIONS: {v1: 0.5, v0: 0.0}}
    for spec, expected in expected_rates.items():
        got = values(prom, spec.name + sel)
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), spec.name
    ttft = ((v1, "vllm-0.11.0", "vllm:time_to_first_token_seconds"),
            (v0, "vllm-0.6.3", "vllm:time_to_first_token_seconds"),
            (sgl, "sglang-0.4.6", "sglang:time_to_first_token_seconds"))
    exact = {
        cat.FAILED: {v1: 0.1, v0: 0.0},
        cat.QUEUE_TIME: {v1: 0.2, sgl: 0.3},
        cat.TTFT_P50: {k: quantile(family(f, n), 0.5) for k, f, n in ttft},
        cat.ITL_P95: {k: quantile(family(f, n), 0.95) for k, f, n in (
            (v1, "vllm-0.11.0", "vllm:inter_token_latency_seconds"),
            (v0, "vllm-0.6.3", "vllm:time_per_output_token_seconds"),
            (sgl, "sglang-0.4.6", "sglang:inter_token_latency_seconds"))},
        cat.TTFT_SLOW: {k: slow_ratio(family(f, n), t.genai_ttft_slo_seconds) for k, f, n in ttft},
        cat.ITL_SLOW: {k: slow_ratio(family(f, n), t.genai_tpot_slo_seconds) for k, f, n in (
            (v1, "vllm-0.11.0", "vllm:inter_token_latency_seconds"),
            (v0, "vllm-0.6.3", "vllm:time_per_output_token_seconds"),
            (sgl, "sglang-0.4.6", "sglang:inter_token_latency_seconds"))},
    }
    for spec, expected in exact.items():
        assert values(prom, spec.name + sel) == pytest.approx(expected, rel=1e-6, abs=1e-9), spec.name


def test_gpu_efficiency_joins_the_nvml_series(prom: servers.PrometheusAPI) -> None:
    """chat 2 holds GPUs 0 and 1 (300 W each, energy counter); qa 1 and llama-v0 share GPU 2 (30 and 10 GB of
    its memory, 200 W, power gauge only)."""
    sel = f'{{window="{W}"}}'
    share = {("chat", "2", "0"): 1.0, ("chat", "2", "1"): 1.0, ("qa", "1", "2"): 0.75,
             ("llama-v0", UNVERSIONED, "2"): 0.25}
    assert values(prom, cat.GPU_SHARE.name) == pytest.approx({**share, ("ghost", "1", "7"): 0.5})
    tokens = {("chat", "2"): 400.0, ("qa", "1"): 250.0, ("llama-v0", UNVERSIONED): 100.0}
    watts = {"0": 300.0, "1": 300.0, "2": 200.0}
    held = {v: sum(s for k, s in share.items() if k[:2] == v) for v in tokens}
    per_gpu = {k: tokens[k[:2]] / held[k[:2]] for k in share}
    assert values(prom, cat.TOKENS_PER_GPU_SECOND.name + sel) == pytest.approx(per_gpu, rel=1e-6)
    energy_gpu = {k: watts[k[2]] * s / (s * per_gpu[k]) for k, s in share.items()}
    assert values(prom, cat.ENERGY_PER_TOKEN_GPU.name + sel) == pytest.approx(energy_gpu, rel=1e-6)
    energy = {v: sum(watts[k[2]] * s for k, s in share.items() if k[:2] == v) / tokens[v] for v in tokens}
    assert values(prom, cat.ENERGY_PER_TOKEN.name + sel) == pytest.approx(energy, rel=1e-6)


def test_alerts_fire_for_the_broken_fixtures_only(prom: servers.PrometheusAPI) -> None:
    """chat 2 aborts 10 % of its requests, preempts 0.5/s, keeps its KV cache at 97 % and misses the TTFT SLO for
    10 % of first tokens (6x burn); qa 1 for 20 % (14.4x) and its inter-token gaps for 8 %; llama-v0 is healthy."""
    expected = {("ModelServerRequestsFailing", "chat"), ("ModelServerPreempting", "chat"),
                ("ModelServerKVCacheNearlyFull", "chat"),
                ("ModelServerTimeToFirstTokenSLOBurn", "chat"), ("ModelServerTimeToFirstTokenSLOBurn", "qa"),
                ("ModelServerInterTokenLatencySLOBurn", "qa")}

    def firing() -> set[tuple[str, str]]:
        return {(a["metric"]["alertname"], a["metric"]["model"])
                for a in prom.query('ALERTS{alertstate="firing",alertname=~"ModelServer.*"}')}
    wait_until(lambda: firing() >= expected, timeout=30)
    assert firing() == expected


def test_dashboard_server_queries_return_data(prom: servers.PrometheusAPI) -> None:
    board = json.loads((ROOT / "provisioning" / "grafana" / "dashboards" / "mlscope-genai.json").read_text())
    server_names = ("vllm:", "sglang:", "mlscope_server_")
    queries = [q for q in dashcheck.queries(board) if q.datasource == "prometheus" and not q.variable
               and any(n in q.expr for n in server_names)]
    assert len(queries) >= 10
    variables = {"model": ".+", "model_version": ".+", "window": W}
    empty = [q.where for q in queries
             if not prom.query(dashcheck.substitute(q.expr, variables, rate_interval="5s", interval="1s"))]
    assert not empty


def test_fixtures_hold_the_catalog_names_of_their_version() -> None:
    """Every catalog series a version lists is in that version's fixture, with the same labels and buckets."""
    for version, build in FIXTURES.items():
        fixture = {f.name.removesuffix("_total"): f for f in build()}
        for series in cat.SERVER_SERIES:
            if version not in series.versions:
                continue
            f = fixture[series.name.removesuffix("_total")]
            assert f.kind == series.kind, series.name
            assert tuple(f.labels) + tuple(f.by_label) == series.labels_in(version), series.name
            if series.kind == "histogram":
                assert tuple(b for b, _ in f.buckets) == cat.buckets_in(series, version), series.name


def test_nothing_left_out(prom: servers.PrometheusAPI) -> None:
    """Every recorded model-server series is produced against the fixtures."""
    missing = [s.name for s in cat.RECORDED if not prom.query(s.name)]
    assert not missing
