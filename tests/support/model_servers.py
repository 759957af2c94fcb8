"""Fixture expositions of the supported model-server versions, and a fake server that serves them.

Each fixture mirrors one server version's metric names, labels and buckets as its source defines them (read from
the wheels on PyPI: vLLM 0.6.3 ``vllm/engine/metrics.py``, vLLM 0.11.0 ``vllm/v1/metrics/loggers.py``, SGLang
0.4.6 ``sglang/srt/metrics/collector.py``), typed here by hand so the catalog is checked against them. Counters and
histogram buckets grow linearly: at ``t`` seconds after the start they hold ``per_second * t``, so every rate is
``per_second`` exactly and every quantile that of the per-second bucket counts. Gauges are constant.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.utils import floatToGoString

from mlscope import targets as sd
from mlscope.stack import promconfig
from mlscope.stack.modelservers import model_server_relabelling


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter, gauge, histogram
    labels: dict[str, str]
    value: float = 0.0  # gauge value, or counter increase per second
    #: histogram: (upper bound, observations per second in that bucket, not cumulative); sum per second
    buckets: tuple[tuple[float, float], ...] = ()
    sum_per_second: float = 0.0
    by_label: dict[str, dict[str, float]] = field(default_factory=dict)  # counter: label -> value -> per second


def _histogram(name: str, labels: dict[str, str], bounds: tuple[float, ...], counts: dict[float, float],
               mean: float) -> Family:
    assert set(counts) <= set(bounds), (name, set(counts) - set(bounds))
    per_bucket = tuple((b, counts.get(b, 0.0)) for b in bounds)
    return Family(name, "histogram", labels, buckets=per_bucket, sum_per_second=mean * sum(counts.values()))


# Buckets as each version's source lists them.
V0_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
V0_TPOT = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
V0_E2E = (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
V1_TTFT = V0_TTFT + (20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
V1_ITL = V0_TPOT + (5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
V1_LATENCY = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
              960.0, 1920.0, 7680.0)
SGL_TTFT = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
SGL_ITL = (0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080, 0.100, 0.200,
           0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000)
SGL_E2E = SGL_TTFT + (800,)


def vllm_0_11_0(model_name: str = "llama-v1") -> list[Family]:
    """vLLM 0.11.0 (v1 engine): labels model_name and engine; both ITL and the deprecated TPOT histograms."""
    lb = {"model_name": model_name, "engine": "0"}
    itl = {0.025: 200.0, 0.05: 150.0, 0.1: 40.0, 0.2: 10.0}
    return [Family("vllm:num_requests_running", "gauge", lb, 8), Family("vllm:num_requests_waiting", "gauge", lb, 3),
            Family("vllm:kv_cache_usage_perc", "gauge", lb, 0.97),
            Family("vllm:num_preemptions", "counter", lb, 0.5),
            Family("vllm:prompt_tokens", "counter", lb, 900), Family("vllm:generation_tokens", "counter", lb, 400),
            Family("vllm:request_success", "counter", lb,
                   by_label={"finished_reason": {"stop": 8.5, "length": 0.5, "abort": 1.0}}),
            _histogram("vllm:time_to_first_token_seconds", lb, V1_TTFT,
                       {0.1: 4, 0.25: 3, 0.5: 1, 1.0: 1, 2.5: 1}, 0.4),
            _histogram("vllm:inter_token_latency_seconds", lb, V1_ITL, itl, 0.04),
            _histogram("vllm:time_per_output_token_seconds", lb, V1_ITL, itl, 0.04),
            _histogram("vllm:e2e_request_latency_seconds", lb, V1_LATENCY, {2.5: 6, 5.0: 4}, 3.0),
            _histogram("vllm:request_queue_time_seconds", lb, V1_LATENCY, {0.3: 8, 1.0: 2}, 0.2)]


def vllm_0_6_3(model_name: str = "llama-v0") -> list[Family]:
    """vLLM 0.6.3 (pre-v1): label model_name only; gpu_cache_usage_perc, time_per_output_token_seconds."""
    lb = {"model_name": model_name}
    return [Family("vllm:num_requests_running", "gauge", lb, 4), Family("vllm:num_requests_waiting", "gauge", lb, 0),
            Family("vllm:num_requests_swapped", "gauge", lb, 0),
            Family("vllm:gpu_cache_usage_perc", "gauge", lb, 0.5),
            Family("vllm:num_preemptions_total", "counter", lb, 0.0),
            Family("vllm:prompt_tokens_total", "counter", lb, 300),
            Family("vllm:generation_tokens_total", "counter", lb, 100),
            Family("vllm:request_success_total", "counter", lb, by_label={"finished_reason": {"stop": 5.0}}),
            _histogram("vllm:time_to_first_token_seconds", lb, V0_TTFT, {0.04: 2, 0.08: 2, 0.25: 1}, 0.07),
            _histogram("vllm:time_per_output_token_seconds", lb, V0_TPOT, {0.01: 50, 0.025: 40, 0.05: 10}, 0.02),
            _histogram("vllm:e2e_request_latency_seconds", lb, V0_E2E, {1.0: 3, 2.5: 2}, 1.2)]


def sglang_0_4_6(model_name: str = "qwen") -> list[Family]:
    """SGLang 0.4.6: scheduler gauges labelled model_name and engine_type, tokenizer series model_name."""
    sched, tok = {"model_name": model_name, "engine_type": "unified"}, {"model_name": model_name}
    return [Family("sglang:num_running_reqs", "gauge", sched, 6), Family("sglang:num_queue_reqs", "gauge", sched, 2),
            Family("sglang:num_used_tokens", "gauge", sched, 12000), Family("sglang:token_usage", "gauge", sched, 0.6),
            Family("sglang:gen_throughput", "gauge", sched, 250),
            Family("sglang:avg_request_queue_latency", "gauge", sched, 0.3),
            Family("sglang:prompt_tokens_total", "counter", tok, 500),
            Family("sglang:generation_tokens_total", "counter", tok, 250),
            Family("sglang:num_requests_total", "counter", tok, 5),
            _histogram("sglang:time_to_first_token_seconds", tok, SGL_TTFT, {0.2: 2, 0.4: 2, 2: 1}, 0.5),
            _histogram("sglang:inter_token_latency_seconds", tok, SGL_ITL, {0.010: 150, 0.020: 80, 0.200: 20},
                       0.02),
            _histogram("sglang:e2e_request_latency_seconds", tok, SGL_E2E, {4: 3, 8: 2}, 5.0)]


def _gpu(gpu: str) -> dict[str, str]:
    return {"gpu": gpu, "gpu_uuid": f"GPU-fake-{gpu}", "gpu_name": "Fake H100", "simulated": "true"}


def nvml_side() -> list[Family]:
    """The resource exporter's NVML series (fake: no GPU here). GPUs 0 and 1 serve chat 2 (tensor parallel);
    GPU 2 is shared by qa 1 (30 GB) and llama-v0 (10 GB); GPU 2 has no energy counter, only power."""
    def memory(gpu: str, pid: str, model: str, version: str, value: float) -> Family:
        return Family("mlscope_gpu_process_memory_bytes", "gauge",
                      {**_gpu(gpu), "pid": pid, "process": "python3", "model": model, "model_version": version},
                      value)
    return [memory("0", "11", "chat", "2", 60e9), memory("1", "12", "chat", "2", 60e9),
            memory("2", "21", "qa", "1", 30e9), memory("2", "31", "llama-v0", "unversioned", 10e9),
            Family("mlscope_gpu_energy_joules_total", "counter", _gpu("0"), 300.0),
            Family("mlscope_gpu_energy_joules_total", "counter", _gpu("1"), 300.0),
            *(Family("mlscope_gpu_power_watts", "gauge", _gpu(g), w) for g, w in (("0", 300.0), ("1", 300.0),
                                                                                  ("2", 200.0)))]


FIXTURES = {"vllm-0.6.3": vllm_0_6_3, "vllm-0.11.0": vllm_0_11_0, "sglang-0.4.6": sglang_0_4_6}


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def exposition(families: list[Family], seconds: float, timestamp_ms: int | None = None) -> str:
    """The text exposition ``seconds`` after the start (prometheus-client's formatting of names and ``le``), each
    sample stamped ``timestamp_ms`` when given (Prometheus then takes the value's own time, not the scrape's)."""
    lines: list[str] = []
    typed: set[str] = set()
    for f in families:
        base = f.name.removesuffix("_total") if f.kind == "counter" else f.name
        if base not in typed:
            typed.add(base)
            lines += [f"# HELP {base} fixture", f"# TYPE {base} {f.kind}"]
        if f.kind == "gauge":
            lines.append(f"{f.name}{_labels(f.labels)} {f.value!r}")
        elif f.kind == "counter":
            pairs = [({}, f.value)] if not f.by_label else [
                ({k: v}, per) for k, values in f.by_label.items() for v, per in values.items()]
            lines += [f"{base}_total{_labels({**f.labels, **extra})} {per * seconds!r}" for extra, per in pairs]
        else:
            cumulative = 0.0
            for bound, per in f.buckets:
                cumulative += per
                lines.append(f"{f.name}_bucket{_labels({**f.labels, 'le': floatToGoString(bound)})} "
                             f"{cumulative * seconds!r}")
            lines.append(f"{f.name}_bucket{_labels({**f.labels, 'le': '+Inf'})} {cumulative * seconds!r}")
            lines.append(f"{f.name}_count{_labels(f.labels)} {cumulative * seconds!r}")
            lines.append(f"{f.name}_sum{_labels(f.labels)} {f.sum_per_second * seconds!r}")
    if timestamp_ms is not None:
        lines = [line if line.startswith("#") else f"{line} {timestamp_ms}" for line in lines]
    return "\n".join(lines) + "\n"


class FakeServer:
    """Serves ``families`` on a free loopback port (``/metrics``), growing from the moment it starts.

    Samples carry the time their value was computed: on a loaded machine a scrape's own timestamp may lag the
    moment the server answered by tens of milliseconds, which is a few per cent of a 1 s scrape interval's rate."""

    def __init__(self, families: list[Family]) -> None:
        self.families = families
        self.started = time.time()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                now_ms = int(time.time() * 1000)  # the value at exactly the stamped millisecond
                body = exposition(outer.families, now_ms / 1000 - outer.started, now_ms).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


#: fixture -> (server kind, the target's model/model_version mapping: "" lets the job map model_name)
MAPPING = {"vllm-0.11.0": ("vllm", "chat", "2"), "vllm-0.6.3": ("vllm", "", ""), "sglang-0.4.6": ("sglang", "qa", "1")}


def start_model_servers(folder: Path) -> tuple[dict[str, Any], list[FakeServer]]:
    """A fake server per fixture and one with the NVML-side series, their file_sd files in ``folder`` (servers
    marked with their kind and mapping, as ``mlscope targets add --kind`` writes them), and the scrape job that
    reads them with the model-server relabelling."""
    fakes = {name: FakeServer(build()) for name, build in FIXTURES.items()}
    fakes["nvml"] = FakeServer(nvml_side())
    for name, fake in fakes.items():
        plain = sd.parse(f"{name}={fake.target}")
        sd.write(folder, sd.server_target(plain, *MAPPING[name]) if name in MAPPING else plain)
    job = promconfig.scrape_job("model-servers", file_sd=folder / "*.yml",
                                metric_relabel_configs=model_server_relabelling())
    return job, list(fakes.values())
