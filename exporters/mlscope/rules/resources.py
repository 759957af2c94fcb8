"""Alert rules on resources: GPU memory, temperature, throttling and errors; host memory; collector health."""
from __future__ import annotations

from typing import Any

from ..catalog import resources as cat
from .builders import alert, group, selector
from .config import RuleConfig

DASHBOARD = "mlscope-resources"
GPU = "{{ $labels.instance }} GPU {{ $labels.gpu }} ({{ $labels.gpu_name }})"


def gpu_alerts(cfg: RuleConfig) -> list[dict[str, Any]]:
    r, w, for_ = cfg.resources, cfg.profile.alert_window, cfg.profile.for_symptom
    sel = selector(r.selector)
    throttled = selector(r.selector, 'reason=~"' + "|".join(r.gpu_throttle_reasons) + '"')
    uncorrected = selector(r.selector, 'ecc_type="uncorrected"')
    xid = f"{cat.GPU_XID_ERRORS.name}{sel}"
    return [
        alert(cfg, "GPUMemoryNearlyFull",
              f"{cat.GPU_MEMORY_USED.name}{sel} / {cat.GPU_MEMORY_TOTAL.name}{sel} > {r.gpu_memory_used_ratio}",
              severity="warning", for_=for_, dashboard=DASHBOARD,
              summary=f"{GPU}: memory above {r.gpu_memory_used_ratio:.0%}",
              description="{{ $value | humanizePercentage }} of the memory of " + GPU + " is in use "
                          f"(threshold {r.gpu_memory_used_ratio:.0%}); new batches or model loads may fail with "
                          "out-of-memory errors."),
        alert(cfg, "GPUTemperatureHigh",
              f"{cat.GPU_TEMPERATURE.name}{sel} > {r.gpu_temperature_celsius:g}",
              severity="warning", for_=for_, dashboard=DASHBOARD,
              summary=f"{GPU}: hotter than {r.gpu_temperature_celsius:g} °C",
              description=GPU + " runs at {{ $value }} °C (threshold " + f"{r.gpu_temperature_celsius:g}"
                          + " °C); it will slow its clocks to cool down."),
        alert(cfg, "GPUThrottling",
              f"{cat.GPU_THROTTLE.name}{throttled} == 1",
              severity="warning", for_=for_, dashboard=DASHBOARD,
              summary=GPU + ": clocks held down ({{ $labels.reason }})",
              description=GPU + " has been throttled for {{ $labels.reason }} for " + for_ + "; "
                          "latency of the models on it rises."),
        alert(cfg, "GPUUncorrectableECCErrors",
              f"increase({cat.GPU_ECC_ERRORS.name}{uncorrected}[{w}]) > 0",
              severity="critical", dashboard=DASHBOARD,
              summary=GPU + ": uncorrectable ECC memory errors",
              description="{{ $value }} uncorrectable ECC errors on " + GPU + " over the last " + w + "; "
                          "results computed on it may be wrong."),
        # A new XID series appears at 1 and `increase` cannot see that first error: the `unless` part can.
        alert(cfg, "GPUXidErrors",
              f"increase({xid}[{w}]) > 0 or ({xid} unless {xid} offset {w})",
              severity="critical", dashboard=DASHBOARD,
              summary=GPU + ": XID {{ $labels.xid }} errors",
              description="NVML reported XID {{ $labels.xid }} on " + GPU + " in the last " + w + "."),
    ]


def host_alerts(cfg: RuleConfig) -> list[dict[str, Any]]:
    r, for_ = cfg.resources, cfg.profile.for_symptom
    sel = selector(r.selector)
    return [
        alert(cfg, "HostMemoryPressure",
              f"{cat.HOST_MEMORY_AVAILABLE.name}{sel} / {cat.HOST_MEMORY_TOTAL.name}{sel} "
              f"< {r.host_memory_available_ratio}",
              severity="warning", for_=for_, dashboard=DASHBOARD,
              summary="{{ $labels.instance }}: less than " + f"{r.host_memory_available_ratio:.0%}"
                      + " of memory available",
              description="Only {{ $value | humanizePercentage }} of the memory of {{ $labels.instance }} is "
                          "available (threshold " + f"{r.host_memory_available_ratio:.0%}"
                          + "); the kernel will swap or kill processes."),
        alert(cfg, "ResourceCollectorDown",
              f"{cat.COLLECTOR_UP.name}{sel} == 0",
              severity="warning", for_=for_, dashboard=DASHBOARD,
              summary="{{ $labels.instance }}: resource collector {{ $labels.collector }} is failing",
              description="The {{ $labels.collector }} collector of {{ $labels.instance }} has failed, hung or "
                          "gone stale for " + for_ + "; its metrics are missing or old."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-resources-alerts", cfg, gpu_alerts(cfg) + host_alerts(cfg))]
