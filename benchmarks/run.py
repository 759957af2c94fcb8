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
from typing import Any
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



# -- suite: drift ---------------------------------------------------------------------------------

def _scraped_statistics(registry: CollectorRegistry, profile: Any) -> dict[str, np.ndarray]:
    """What the recording rules compute, from one scrape of the monitor: PSI, JS, chi-square, binned KS."""
    from prometheus_client.parser import text_string_to_metric_families

    from mlscope.drift import stats

    bins: dict[str, dict[int, float]] = {}
    cdf: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            feature = sample.labels.get("feature")
            if sample.name == "mlscope_feature_bin_total":
                bins.setdefault(feature, {})[int(sample.labels["bin"])] = sample.value
            elif sample.name == "mlscope_feature_value_bucket" and sample.labels["le"] != "+Inf":
                cdf.setdefault(feature, []).append(sample.value)
    out: dict[str, list[float]] = {"psi": [], "js": [], "chi_square": [], "ks": []}
    for feature in profile.features:
        counts = np.array([bins[feature.name][k] for k in range(len(feature.reference_bins))])
        shares, ref = counts / counts.sum(), np.asarray(feature.reference_bins)
        out["psi"].append(stats.psi(shares, ref))
        out["js"].append(stats.js_distance(shares, ref))
        out["chi_square"].append(stats.chi_square(counts, ref))
        out["ks"].append(stats.ks_on_edges(np.asarray(cdf[feature.name]) / counts.sum(), feature.reference_cdf))
    return {k: np.asarray(v) for k, v in out.items()}


def suite_drift(quick: bool) -> list[Row]:
    from scipy import stats as scipy_stats

    from mlscope.drift import build_profile

    rows: list[Row] = []
    rng = np.random.default_rng(0)
    n_features, n_ref, n_cur = 20, 100_000, 1_000_000
    names = [f"f{i}" for i in range(n_features)]
    reference = rng.normal(size=(n_ref, n_features))
    current = rng.normal(size=(n_cur, n_features)) + np.linspace(0, 0.5, n_features)
    profile = build_profile(reference, model="bench", model_version="1", columns=names)

    # Batch ingestion: 1M rows x 20 features, row-major float64 array and a data frame.
    monitor = ModelMonitor("bench", "1", registry=CollectorRegistry(), reference=profile)
    batch_s = min(timeit.repeat(lambda: monitor.record_feature_batch(current), number=1, repeat=2 if quick else 3))
    columns = np.ascontiguousarray(current.T)
    edges = [np.asarray(f.fine_edges) for f in profile.features]

    def raw_numpy() -> None:
        for j in range(n_features):
            np.bincount(np.searchsorted(edges[j], columns[j]), minlength=edges[j].size + 1)

    raw_s = min(timeit.repeat(raw_numpy, number=1, repeat=2 if quick else 3))
    rows.append(Row("drift", "batch ingestion, 1M rows x 20 features (2-D float64)", n_cur / batch_s / 1e6,
                    "M rows/s", "numpy searchsorted+bincount alone", n_cur / raw_s / 1e6, ">= 1 M rows/s"))
    try:
        import pandas as pd

        frame = pd.DataFrame(current, columns=names)
        frame_s = min(timeit.repeat(lambda: monitor.record_feature_batch(frame), number=1, repeat=2))
        rows.append(Row("drift", "batch ingestion, 1M rows x 20 features (pandas DataFrame)", n_cur / frame_s / 1e6,
                        "M rows/s", "numpy searchsorted+bincount alone", n_cur / raw_s / 1e6, ">= 1 M rows/s"))
    except ImportError:
        pass

    # Single rows: track() with 20 features against track() of the same prediction without a profile.
    row = dict(zip(names, current[0].tolist()))
    plain = ModelMonitor("bench-plain", "1", registry=CollectorRegistry())
    with_profile = ModelMonitor("bench", "1", registry=CollectorRegistry(), reference=profile)

    def tracked(m: ModelMonitor, features: object) -> Callable[[], None]:
        def call() -> None:
            with m.track() as p:
                p.output, p.score, p.features = 1, 0.8, features
        return call

    number, repeat = (5_000, 3) if quick else (20_000, 5)
    rows.append(Row("drift", "track() + 20 features per prediction", per_call_us(tracked(with_profile, row), number,
                    repeat), "us", "track() without profile", per_call_us(tracked(plain, None), number, repeat)))

    # End to end: 100k reference vs 1M current rows, 20 features. mlscope: profile + streaming counts +
    # one scrape + every statistic; scipy: ks_2samp per feature on the raw data.
    def mlscope_drift() -> None:
        prof = build_profile(reference, model="e2e", model_version="1", columns=names)
        registry = CollectorRegistry()
        ModelMonitor("e2e", "1", registry=registry, reference=prof).record_feature_batch(current)
        _scraped_statistics(registry, prof)

    ours = min(timeit.repeat(mlscope_drift, number=1, repeat=1 if quick else 2))
    scipy_s = min(timeit.repeat(lambda: [scipy_stats.ks_2samp(reference[:, j], current[:, j])
                                         for j in range(n_features)], number=1, repeat=1))
    rows.append(Row("drift", "end-to-end drift, 100k ref vs 1M current x 20 (profile+ingest+scrape+stats)", ours,
                    "s", "scipy ks_2samp per feature", scipy_s))
    rows += _evidently_row(reference, current, names, ours, quick)

    # Approximation: KS at the 19 fine edges against the exact KS (scipy) on all the data.
    registry = CollectorRegistry()
    ModelMonitor("bench", "1", registry=registry, reference=profile).record_feature_batch(current)
    binned = _scraped_statistics(registry, profile)["ks"]
    exact = np.array([scipy_stats.ks_2samp(reference[:, j], current[:, j]).statistic for j in range(n_features)])
    rows.append(Row("drift", "binned KS (19 edges) - exact KS, max over 20 features (shift 0..0.5 sd)",
                    float(np.max(exact - binned)), "", "exact KS, max", float(exact.max())))
    # Profile build: 1M rows x 50 features.
    wide = rng.normal(size=(n_cur, 50))
    build_s = min(timeit.repeat(lambda: build_profile(wide, model="b", model_version="1",
                                                      columns=[f"c{i}" for i in range(50)]), number=1, repeat=1))
    rows.append(Row("drift", "reference profile build, 1M rows x 50 features", build_s, "s", target="seconds"))
    return rows


def _evidently_row(reference: np.ndarray, current: np.ndarray, names: list[str], ours: float,
                   quick: bool) -> list[Row]:
    """Evidently's data drift preset on the same data (the `bench` extra), or a row saying it is missing."""
    try:
        import pandas as pd
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except Exception as exc:  # noqa: BLE001 - any import failure means: not measured
        return [Row("drift", f"Evidently data drift preset: not measured ({type(exc).__name__}: {exc})"[:120],
                    0.0, "s")]
    rows = current.shape[0] // 10 if quick else current.shape[0]
    ref_frame, cur_frame = pd.DataFrame(reference, columns=names), pd.DataFrame(current[:rows], columns=names)
    start = time.perf_counter()
    Report([DataDriftPreset()]).run(current_data=cur_frame, reference_data=ref_frame)
    evidently_s = time.perf_counter() - start
    return [Row("drift", f"end-to-end drift, mlscope vs Evidently DataDriftPreset ({rows:,} current rows)", ours,
                "s", "Evidently DataDriftPreset", evidently_s, "<= 0.1x")]


SUITES: dict[str, Callable[[bool], list[Row]]] = {
    "monitor": suite_monitor, "resources": suite_resources, "drift": suite_drift}


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
