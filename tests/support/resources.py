"""Readers of the resource metrics and fake GPUs shared by the resource tests."""
from __future__ import annotations

import os

import pynvml
from prometheus_client import CollectorRegistry

from mlscope.resources import FakeGPU, FakeNVML

GIB = 1024**3


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def fake_gpus() -> FakeNVML:
    """Three GPUs: a healthy busy one, one without some fields, one that is lost mid-sample."""
    busy = FakeGPU(name="NVIDIA H100 80GB HBM3", uuid="GPU-aaaa", memory_total=80 * GIB, memory_used=79 * GIB,
                   utilization_gpu=97, utilization_memory=61, encoder=3, decoder=4, temperature=88,
                   memory_temperature=91, power_mw=612_345, power_limit_mw=700_000, energy_mj=123_456_789,
                   sm_clock_mhz=1980, memory_clock_mhz=2619, fan_percent=0, pcie_tx_kbs=1_500, pcie_rx_kbs=25_000,
                   pcie_replays=2, ecc_corrected=5, ecc_uncorrected=1, remapped_rows=(3, 1, 0, 1),
                   throttle_reasons=pynvml.nvmlClocksEventReasonSwPowerCap
                   | pynvml.nvmlClocksEventReasonHwThermalSlowdown,
                   processes=[(os.getpid(), 6 * GIB), (424242, GIB), (os.getpid() + 10**6, None)],
                   pending_xids=[79, 79, 48])
    unsupported = dict.fromkeys(("nvmlDeviceGetFanSpeed", "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetRemappedRows",
                                 "nvmlDeviceGetEncoderUtilization", "nvmlDeviceRegisterEvents"),
                                pynvml.NVMLError_NotSupported)
    partial = FakeGPU(name="Tesla T4", uuid="GPU-bbbb", memory_total=16 * GIB, memory_used=GIB,
                      utilization_gpu=5, utilization_memory=1, temperature=40, power_mw=27_500,
                      power_limit_mw=70_000, failures=unsupported)
    lost = FakeGPU(name="Tesla T4", uuid="GPU-cccc", failures={"nvmlDeviceGetPowerUsage": pynvml.NVMLError_GpuIsLost})
    return FakeNVML([busy, partial, lost])
