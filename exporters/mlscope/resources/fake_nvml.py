"""A simulated NVML at the level of ``pynvml``'s functions, for tests and the demo.

It answers the pynvml calls mlscope makes with pynvml's own return types
(``c_nvmlMemory_t``, ``c_nvmlUtilization_t``, ``c_nvmlFieldValue_t``...) in
NVML's own units (milliwatts, millijoules, MHz, percent, KB/s, bytes) and
raises pynvml's real exception classes. A GPU can be told to raise for chosen
functions (``failures``) or to block in one (``hangs``, until ``release()``).
Series produced from it carry ``simulated="true"``.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pynvml

GIB = 1024**3


@dataclass
class FakeGPU:
    """One simulated GPU's readings, in NVML units."""

    name: str = "NVIDIA A100-SXM4-80GB"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_total: int = 80 * GIB
    memory_used: int = 20 * GIB
    utilization_gpu: int = 50              # percent
    utilization_memory: int = 30           # percent
    encoder: int = 0                       # percent
    decoder: int = 0                       # percent
    temperature: int = 55                  # celsius
    memory_temperature: int = 60           # celsius (field NVML_FI_DEV_MEMORY_TEMP)
    power_mw: int = 250_000
    power_limit_mw: int = 400_000
    energy_mj: int = 1_000_000_000
    sm_clock_mhz: int = 1410
    memory_clock_mhz: int = 1593
    fan_percent: int = 40
    pcie_tx_kbs: int = 2_000
    pcie_rx_kbs: int = 8_000
    pcie_replays: int = 0
    ecc_corrected: int = 0
    ecc_uncorrected: int = 0
    remapped_rows: tuple[int, int, int, int] = (0, 0, 0, 0)   # corrected, uncorrected, pending, failure
    throttle_reasons: int = 0              # bitmask of nvmlClocksEventReason*
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, used bytes or None)
    pending_xids: list[int] = field(default_factory=list)
    failures: dict[str, type[pynvml.NVMLError]] = field(default_factory=dict)  # function name -> error class
    hangs: set[str] = field(default_factory=set)  # function names that block until release()


@dataclass(frozen=True)
class FakeHandle:
    index: int


@dataclass
class FakeEventData:
    """The fields of pynvml's ``c_nvmlEventData_t`` (its ``device`` is a handle)."""

    device: FakeHandle
    eventType: int
    eventData: int
    gpuInstanceId: int = 0
    computeInstanceId: int = 0


class FakeNVML:
    """Drop-in for the ``pynvml`` module as far as mlscope uses it."""

    SIMULATED = True

    def __init__(self, gpus: list[FakeGPU], driver_version: str = "550.54.15", animate: bool = False,
                 init_error: type[pynvml.NVMLError] | None = None) -> None:
        self.gpus = gpus
        self.driver_version = driver_version
        self.animate = animate
        self.init_error = init_error
        self.calls: dict[str, int] = {}
        self._release = threading.Event()
        self._registered: set[int] = set()
        self._start = time.monotonic()

    @classmethod
    def demo(cls, count: int = 8, animate: bool = True, pids: tuple[int, ...] = ()) -> FakeNVML:
        """``count`` healthy simulated A100s whose load moves over time (for the demo).

        Each process in ``pids`` appears on every GPU, holding a few GiB.
        """
        return cls([FakeGPU(uuid=f"GPU-5a1e0000-0000-4000-8000-{i:012x}",
                            utilization_gpu=30 + 7 * i % 60, temperature=45 + 3 * i,
                            memory_used=(10 + 6 * i) * GIB,
                            processes=[(pid, (2 + i) * GIB) for pid in pids]) for i in range(count)],
                   animate=animate)

    def release(self) -> None:
        """Let every call blocked in a hang return."""
        self._release.set()

    # -- plumbing -------------------------------------------------------------------------------

    def _gpu(self, function: str, handle: FakeHandle) -> FakeGPU:
        self.calls[function] = self.calls.get(function, 0) + 1
        gpu = self.gpus[handle.index]
        if function in gpu.hangs:
            self._release.wait()
        error = gpu.failures.get(function)
        if error is not None:
            raise error()
        return gpu

    def _wave(self, index: int, period: float = 60.0) -> float:
        """0..1, moving with time when animated, so the demo's dashboards are not flat."""
        if not self.animate:
            return 0.5
        return 0.5 + 0.5 * math.sin(2 * math.pi * ((time.monotonic() - self._start) / period + index / 8))

    # -- library --------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error()

    def nvmlShutdown(self) -> None:
        pass

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return FakeHandle(index)

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        return self._gpu("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:
        return self._gpu("nvmlDeviceGetName", handle).name

    # -- readings -------------------------------------------------------------------------------

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> pynvml.c_nvmlUtilization_t:
        gpu = self._gpu("nvmlDeviceGetUtilizationRates", handle)
        util = pynvml.c_nvmlUtilization_t()
        scale = 2 * self._wave(handle.index)
        util.gpu = min(100, round(gpu.utilization_gpu * scale))
        util.memory = min(100, round(gpu.utilization_memory * scale))
        return util

    def nvmlDeviceGetEncoderUtilization(self, handle: FakeHandle) -> list[int]:
        return [self._gpu("nvmlDeviceGetEncoderUtilization", handle).encoder, 167_000]

    def nvmlDeviceGetDecoderUtilization(self, handle: FakeHandle) -> list[int]:
        return [self._gpu("nvmlDeviceGetDecoderUtilization", handle).decoder, 167_000]

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle) -> pynvml.c_nvmlMemory_t:
        gpu = self._gpu("nvmlDeviceGetMemoryInfo", handle)
        memory = pynvml.c_nvmlMemory_t()
        used = min(gpu.memory_total, round(gpu.memory_used * 2 * self._wave(handle.index, 300.0)))
        memory.total, memory.used, memory.free = gpu.memory_total, used, gpu.memory_total - used
        return memory

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        gpu = self._gpu("nvmlDeviceGetTemperature", handle)
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError_InvalidArgument()
        return gpu.temperature + round(10 * (self._wave(handle.index) - 0.5))

    def nvmlDeviceGetFieldValues(self, handle: FakeHandle, field_ids: list[int]) -> Any:
        gpu = self._gpu("nvmlDeviceGetFieldValues", handle)
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for value, field_id in zip(values, field_ids, strict=True):
            value.fieldId = field_id
            if field_id == pynvml.NVML_FI_DEV_MEMORY_TEMP:
                value.nvmlReturn = pynvml.NVML_SUCCESS
                value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                value.value.uiVal = gpu.memory_temperature
            else:
                value.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        gpu = self._gpu("nvmlDeviceGetPowerUsage", handle)
        return round(gpu.power_mw * 2 * self._wave(handle.index)) if self.animate else gpu.power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:
        gpu = self._gpu("nvmlDeviceGetTotalEnergyConsumption", handle)
        if self.animate:  # energy keeps growing at the nominal power
            return gpu.energy_mj + round((time.monotonic() - self._start) * gpu.power_mw)
        return gpu.energy_mj

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, clock: int) -> int:
        gpu = self._gpu("nvmlDeviceGetClockInfo", handle)
        return {pynvml.NVML_CLOCK_SM: gpu.sm_clock_mhz, pynvml.NVML_CLOCK_MEM: gpu.memory_clock_mhz}[clock]

    def nvmlDeviceGetFanSpeed(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetFanSpeed", handle).fan_percent

    def nvmlDeviceGetPcieThroughput(self, handle: FakeHandle, counter: int) -> int:
        gpu = self._gpu("nvmlDeviceGetPcieThroughput", handle)
        return {pynvml.NVML_PCIE_UTIL_TX_BYTES: gpu.pcie_tx_kbs,
                pynvml.NVML_PCIE_UTIL_RX_BYTES: gpu.pcie_rx_kbs}[counter]

    def nvmlDeviceGetPcieReplayCounter(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetPcieReplayCounter", handle).pcie_replays

    def nvmlDeviceGetTotalEccErrors(self, handle: FakeHandle, error_type: int, counter_type: int) -> int:
        gpu = self._gpu("nvmlDeviceGetTotalEccErrors", handle)
        if counter_type != pynvml.NVML_VOLATILE_ECC:
            raise pynvml.NVMLError_NotSupported()
        return gpu.ecc_corrected if error_type == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else gpu.ecc_uncorrected

    def nvmlDeviceGetRemappedRows(self, handle: FakeHandle) -> tuple[int, int, int, int]:
        return self._gpu("nvmlDeviceGetRemappedRows", handle).remapped_rows

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetCurrentClocksEventReasons", handle).throttle_reasons

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[Any]:
        gpu = self._gpu("nvmlDeviceGetComputeRunningProcesses", handle)
        return [pynvml.nvmlFriendlyObject({"pid": pid, "usedGpuMemory": used, "gpuInstanceId": 0xFFFFFFFF,
                                           "computeInstanceId": 0xFFFFFFFF}) for pid, used in gpu.processes]

    # -- events (XID) ---------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> object:
        return object()

    def nvmlDeviceRegisterEvents(self, handle: FakeHandle, event_types: int, event_set: object) -> None:
        self._gpu("nvmlDeviceRegisterEvents", handle)
        self._registered.add(handle.index)

    def nvmlEventSetWait_v2(self, event_set: object, timeout_ms: int) -> FakeEventData:
        for index in sorted(self._registered):
            if self.gpus[index].pending_xids:
                xid = self.gpus[index].pending_xids.pop(0)
                return FakeEventData(FakeHandle(index), pynvml.nvmlEventTypeXidCriticalError, xid)
        raise pynvml.NVMLError_Timeout()

    def nvmlEventSetFree(self, event_set: object) -> None:
        pass
