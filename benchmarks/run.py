"""mlscope benchmarks: one command, a table with ratios to references measured in the same run.

    python benchmarks/run.py            # prints the table and rewrites benchmarks/README.md
    python benchmarks/run.py --quick    # fewer repetitions, prints only

Each suite is a function returning rows; suites of later parts register below.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mlscope import ModelMonitor
from mlscope.catalog import serving as cat
from mlscope.ids import new_request_id

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    suite: str
    case: str
    value: float
    unit: str
    reference: str = ""
    reference_value: float | None = None
    target: str = ""

    @property
    def ratio(self) -> str:
        if not self.reference_value:
            return ""
        return f"{self.value / self.reference_value:.2f}x"


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Median microseconds per call over ``repeat`` runs of ``number`` calls."""
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


# -- suite: the in-process monitor ------------------------------------------------------------------

def raw_prometheus_client(registry: CollectorRegistry) -> Callable[[int, float], None]:
    """The prometheus-client updates one tracked prediction needs, on pre-bound children."""
    labels = ("raw", "1")
    predictions = Counter("raw_predictions", "h", ["model", "model_version"], registry=registry).labels(*labels)
    in_flight = Gauge("raw_in_flight", "h", ["model", "model_version"], registry=registry).labels(*labels)
    latency = Histogram("raw_latency_seconds", "h", ["model", "model_version"], registry=registry,
                        buckets=cat.LATENCY_BUCKETS).labels(*labels)
    classes = Counter("raw_class", "h", ["model", "model_version", "class"], registry=registry)
    class_children = {c: classes.labels(*labels, str(c)) for c in range(3)}
    score = Histogram("raw_score", "h", ["model", "model_version"], registry=registry,
                      buckets=cat.SCORE_BUCKETS).labels(*labels)
    counter = iter(range(10**12))

    def predict(cls: int, s: float) -> None:
        in_flight.inc()
        start = time.perf_counter()
        elapsed = time.perf_counter() - start
        in_flight.dec()
        predictions.inc()
        latency.observe(elapsed, {"request_id": f"ab12cd34-{next(counter):x}"})
        class_children[cls].inc()
        score.observe(s)

    return predict


def suite_monitor(quick: bool) -> list[Row]:
    number, repeat = (20_000, 5) if quick else (100_000, 7)
    rows = []
    raw = raw_prometheus_client(CollectorRegistry())
    monitor = ModelMonitor("bench", "1", registry=CollectorRegistry())

    def tracked() -> None:
        with monitor.track() as p:
            p.output = 1
            p.score = 0.8

    def explicit() -> None:
        monitor.record_prediction(0.0123, output=1, score=0.8)

    ref = per_call_us(lambda: raw(1, 0.8), number, repeat)
    rows.append(Row("monitor", "track() per prediction (latency+exemplar, in-flight, class, score)",
                    per_call_us(tracked, number, repeat), "us", "raw prometheus-client, same updates", ref,
                    "<= 1.5x"))
    rows.append(Row("monitor", "record_prediction() per prediction",
                    per_call_us(explicit, number, repeat), "us", "raw prometheus-client, same updates", ref,
                    "<= 1.5x"))
    rows.append(Row("monitor", "new_request_id()", per_call_us(new_request_id, number, repeat), "us"))

    # Batches: cost per row of record_batch against the raw per-row updates.
    rng = np.random.default_rng(0)
    n = 100_000
    classes, scores = rng.integers(0, 3, n), rng.random(n)
    batch_monitor = ModelMonitor("bench-batch", "1", registry=CollectorRegistry())
    batch_s = min(timeit.repeat(lambda: batch_monitor.record_batch(classes, scores=scores, latency_seconds=0.1),
                                number=1, repeat=3 if quick else 5))
    class_list, score_list = classes.tolist(), scores.tolist()
    raw_batch = raw_prometheus_client(CollectorRegistry())

    def raw_rows() -> None:
        for c, s in zip(class_list, score_list):
            raw_batch(c, s)

    raw_s = min(timeit.repeat(raw_rows, number=1, repeat=1 if quick else 3))
    rows.append(Row("monitor", f"record_batch() per row ({n:,} rows, classes + scores)",
                    batch_s / n * 1e6, "us", "raw per-row updates", raw_s / n * 1e6))

    # Scrape: /metrics of 10 models x 5 versions, each with 3 classes and a score histogram.
    registry = CollectorRegistry()
    for m in range(10):
        for v in range(5):
            mon = ModelMonitor(f"model-{m}", f"{v}.0.0", registry=registry)
            mon.record_batch(np.array([0, 1, 2]), scores=np.array([0.1, 0.5, 0.9]), latency_seconds=0.01)
            mon.record_prediction(0.01, output=1)
            mon.record_error(ValueError())
    text = generate_latest(registry)
    n_series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
    scrape_ms = per_call_us(lambda: generate_latest(registry), 20, 5 if quick else 10) / 1000
    rows.append(Row("monitor", f"scrape /metrics, 10 models x 5 versions ({n_series:,} series, text)",
                    scrape_ms, "ms"))
    return rows


# -- suite: the resource exporter -------------------------------------------------------------------

def psutil_direct() -> None:
    """The psutil calls behind one host + process sample, with nothing around them (the reference)."""
    import psutil

    psutil.cpu_percent(percpu=True)
    psutil.cpu_count()
    psutil.getloadavg()
    psutil.virtual_memory()
    psutil.swap_memory()
    for part in psutil.disk_partitions(all=False):
        psutil.disk_usage(part.mountpoint)
    psutil.disk_io_counters(perdisk=True)
    psutil.net_io_counters(pernic=True)
    Path("/proc/sys/fs/file-nr").read_text()
    proc = psutil.Process()
    with proc.oneshot():
        proc.name(), proc.cpu_times(), proc.memory_info(), proc.num_threads(), proc.num_fds()
    proc.children(recursive=True)


def nvml_direct(nvml: object, count: int) -> Callable[[], None]:
    """The NVML calls behind one GPU sample, called directly on the same fake NVML (the reference)."""
    import pynvml

    calls = [("nvmlDeviceGetUtilizationRates", ()), ("nvmlDeviceGetEncoderUtilization", ()),
             ("nvmlDeviceGetDecoderUtilization", ()), ("nvmlDeviceGetMemoryInfo", ()),
             ("nvmlDeviceGetFieldValues", ((pynvml.NVML_FI_DEV_MEMORY_TEMP,),)),
             ("nvmlDeviceGetTemperature", (pynvml.NVML_TEMPERATURE_GPU,)), ("nvmlDeviceGetPowerUsage", ()),
             ("nvmlDeviceGetEnforcedPowerLimit", ()), ("nvmlDeviceGetTotalEnergyConsumption", ()),
             ("nvmlDeviceGetClockInfo", (pynvml.NVML_CLOCK_SM,)), ("nvmlDeviceGetClockInfo", (pynvml.NVML_CLOCK_MEM,)),
             ("nvmlDeviceGetFanSpeed", ()), ("nvmlDeviceGetPcieThroughput", (pynvml.NVML_PCIE_UTIL_TX_BYTES,)),
             ("nvmlDeviceGetPcieThroughput", (pynvml.NVML_PCIE_UTIL_RX_BYTES,)),
             ("nvmlDeviceGetPcieReplayCounter", ()),
             ("nvmlDeviceGetTotalEccErrors", (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC)),
             ("nvmlDeviceGetTotalEccErrors", (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC)),
             ("nvmlDeviceGetRemappedRows", ()), ("nvmlDeviceGetCurrentClocksEventReasons", ()),
             ("nvmlDeviceGetComputeRunningProcesses", ())]
    bound = [(getattr(nvml, name), args) for name, args in calls]
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]  # type: ignore[attr-defined]

    def sample() -> None:
        for handle in handles:
            for fn, args in bound:
                fn(handle, *args)
    return sample


def plain_gauges(registry: CollectorRegistry) -> CollectorRegistry:
    """The same families and series as ``registry``, as ordinary prometheus-client Gauges."""
    from prometheus_client.parser import text_string_to_metric_families

    plain = CollectorRegistry()
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        labelnames = sorted({k for sample in fam.samples for k in sample.labels})
        gauge = Gauge(fam.name + "_plain", fam.documentation, labelnames, registry=plain)
        for sample in fam.samples:
            (gauge.labels(**sample.labels) if labelnames else gauge).set(sample.value)
    return plain


def suite_resources(quick: bool) -> list[Row]:
    from mlscope.resources import FakeNVML, GpuSource, ResourceMonitor, Sampler

    number, repeat = (20, 3) if quick else (100, 7)
    gpus = 8
    nvml = FakeNVML.demo(gpus, animate=False)
    full = ResourceMonitor(CollectorRegistry(), nvml=nvml, children=True).sample_once()
    host_process = ResourceMonitor(CollectorRegistry(), gpu=False, children=True).sample_once()
    gpu_only = Sampler([GpuSource(FakeNVML.demo(gpus, animate=False))])
    gpu_only.sample_once()
    direct_ms = per_call_us(psutil_direct, number, repeat) / 1000
    rows = [
        Row("resources", f"one full sample: host + process + {gpus} simulated GPUs",
            per_call_us(full.sample_once, number, repeat) / 1000, "ms", "psutil called directly (host + process)",
            direct_ms),
        Row("resources", "host + process sample", per_call_us(host_process.sample_once, number, repeat) / 1000,
            "ms", "psutil called directly, same values", direct_ms, "<= 1.5x"),
        Row("resources", f"GPU sample, {gpus} simulated GPUs (fake NVML)",
            per_call_us(gpu_only.sample_once, number, repeat) / 1000, "ms",
            "the same NVML calls made directly", per_call_us(nvml_direct(nvml, gpus), number, repeat) / 1000),
    ]
    text = generate_latest(full.registry)
    n_series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
    plain = plain_gauges(full.registry)
    rows.append(Row("resources", f"scrape /metrics after a full sample ({n_series} series)",
                    per_call_us(lambda: generate_latest(full.registry), number, repeat) / 1000, "ms",
                    "plain prometheus-client Gauges, same series",
                    per_call_us(lambda: generate_latest(plain), number, repeat) / 1000))
    return rows


SUITES: dict[str, Callable[[bool], list[Row]]] = {"monitor": suite_monitor}
SUITES["resources"] = suite_resources


def suite_scale(quick: bool) -> list[Row]:
    import scale

    number, repeat = (200, 3) if quick else (1000, 7)
    replica = scale.one_replica()
    n_series = sum(1 for line in generate_latest(replica).decode().splitlines() if line and not line.startswith("#"))
    plain = scale.plain_gauges(replica)
    rows = [Row("scale", f"scrape /metrics of one replica ({n_series} series, typical classifier)",
                per_call_us(lambda: generate_latest(replica), number, repeat) / 1000, "ms",
                "plain prometheus-client Gauges, same series", per_call_us(lambda: generate_latest(plain), number,
                                                                            repeat) / 1000)]
    results = {n: scale.measure(n, replica) for n in ((10, 100) if quick else (10, 100, 1000))}
    base = results[10]
    for n, r in results.items():
        rows += [
            Row("scale", f"{n:,} simulated replicas: Prometheus head series", r["head_series"], "series",
                "computed from the catalog (scaling.py)", scale.expected_series(n), "1.00x"),
            Row("scale", f"{n:,} simulated replicas: serving recording-rule group evaluation", r["rule_ms"], "ms",
                "10 replicas", base["rule_ms"]),
            Row("scale", f"{n:,} simulated replicas: scrape of all replicas (one target)", r["scrape_ms"], "ms",
                "10 replicas", base["scrape_ms"]),
            Row("scale", f"{n:,} simulated replicas: Prometheus resident memory", r["rss_mib"], "MiB",
                "10 replicas", base["rss_mib"]),
        ]
    return rows


SUITES["scale"] = suite_scale


def table(rows: list[Row]) -> str:
    lines = ["| suite | case | value | reference | reference value | ratio | target |",
             "|---|---|---:|---|---:|---:|---|"]
    for r in rows:
        ref_value = f"{r.reference_value:.3f} {r.unit}" if r.reference_value is not None else ""
        lines.append(f"| {r.suite} | {r.case} | {r.value:.3f} {r.unit} | {r.reference} | {ref_value} | "
                     f"{r.ratio} | {r.target} |")
    return "\n".join(lines)


def environment() -> str:
    from importlib.metadata import version

    import psutil

    return (f"Python {platform.python_version()}, prometheus-client {version('prometheus-client')}, "
            f"numpy {np.__version__}, {psutil.cpu_count()} CPUs ({platform.machine()}), "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; do not rewrite README.md")
    parser.add_argument("--suite", action="append", choices=sorted(SUITES), help="run only these suites")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for name in args.suite or SUITES:
        print(f"running suite {name}...", file=sys.stderr, flush=True)
        rows += SUITES[name](args.quick)
    result = table(rows)
    print(result)
    if not args.quick and not args.suite:
        (HERE / "README.md").write_text(
            "# Benchmarks\n\nRun `make bench` (or `python benchmarks/run.py`). Medians; references measured in the "
            "same run; ratio = value / reference (lower is better for times).\n\n"
            f"Environment: {environment()}\n\n{result}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
