"""Suite `resources`: one full host + process + GPU sample and a scrape, against psutil called directly."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from common import Row, per_call_us

if TYPE_CHECKING:
    from mlscope.resources import FakeNVML


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


def nvml_direct(nvml: FakeNVML, count: int) -> Callable[[], None]:
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
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

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



