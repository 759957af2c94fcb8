"""GPU readings through NVML (nvidia-ml-py's ``pynvml``), converted to base units.

Coverage follows the DCGM exporter's default counters: clocks, GPU and memory
temperature, power and energy, PCIe throughput and replays, GPU / memory-copy /
encoder / decoder utilisation, XID errors, framebuffer memory, remapped rows;
plus ECC errors, fan, power limit, throttle reasons and per-process GPU memory.
Not covered: NVLink bandwidth and vGPU licence status (DCGM-only fields).

NVML is reached through the ``nvml`` argument (the ``pynvml`` module by
default, or a :class:`~mlscope.resources.fake_nvml.FakeNVML`), so a field a
GPU does not support is skipped from then on, a lost GPU is left out of the
sample and counted, and any other NVML error is counted by class name.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pynvml

from ..catalog import resources as cat
from .sampler import Sample

log = logging.getLogger("mlscope.resources")

# pid -> (process name, model, model_version) for the model service's processes.
Attribution = Callable[[], Mapping[int, tuple[str, str, str]]]

THROTTLE_REASONS = (
    ("gpu_idle", pynvml.nvmlClocksEventReasonGpuIdle),
    ("applications_clocks_setting", pynvml.nvmlClocksEventReasonApplicationsClocksSetting),
    ("sw_power_cap", pynvml.nvmlClocksEventReasonSwPowerCap),
    ("hw_slowdown", pynvml.nvmlClocksEventReasonHwSlowdown),
    ("sync_boost", pynvml.nvmlClocksEventReasonSyncBoost),
    ("sw_thermal_slowdown", pynvml.nvmlClocksEventReasonSwThermalSlowdown),
    ("hw_thermal_slowdown", pynvml.nvmlClocksEventReasonHwThermalSlowdown),
    ("hw_power_brake_slowdown", pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown),
    ("display_clock_setting", pynvml.nvmlClocksEventReasonDisplayClockSetting),
)

# (spec, extra label values, pynvml function, extra arguments, factor to the base unit)
SCALARS: tuple[tuple[Any, tuple[str, ...], str, tuple[int, ...], float], ...] = (
    (cat.GPU_TEMPERATURE, (), "nvmlDeviceGetTemperature", (pynvml.NVML_TEMPERATURE_GPU,), 1.0),
    (cat.GPU_POWER, (), "nvmlDeviceGetPowerUsage", (), 1e-3),                       # mW -> W
    (cat.GPU_POWER_LIMIT, (), "nvmlDeviceGetEnforcedPowerLimit", (), 1e-3),         # mW -> W
    (cat.GPU_ENERGY, (), "nvmlDeviceGetTotalEnergyConsumption", (), 1e-3),          # mJ -> J
    (cat.GPU_SM_CLOCK, (), "nvmlDeviceGetClockInfo", (pynvml.NVML_CLOCK_SM,), 1e6),    # MHz -> Hz
    (cat.GPU_MEMORY_CLOCK, (), "nvmlDeviceGetClockInfo", (pynvml.NVML_CLOCK_MEM,), 1e6),
    (cat.GPU_FAN, (), "nvmlDeviceGetFanSpeed", (), 0.01),                           # percent -> ratio
    (cat.GPU_PCIE_THROUGHPUT, ("transmit",), "nvmlDeviceGetPcieThroughput",
     (pynvml.NVML_PCIE_UTIL_TX_BYTES,), 1024.0),                                     # KB/s -> B/s
    (cat.GPU_PCIE_THROUGHPUT, ("receive",), "nvmlDeviceGetPcieThroughput", (pynvml.NVML_PCIE_UTIL_RX_BYTES,), 1024.0),
    (cat.GPU_PCIE_REPLAYS, (), "nvmlDeviceGetPcieReplayCounter", (), 1.0),
    (cat.GPU_ECC_ERRORS, ("corrected",), "nvmlDeviceGetTotalEccErrors",
     (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC), 1.0),
    (cat.GPU_ECC_ERRORS, ("uncorrected",), "nvmlDeviceGetTotalEccErrors",
     (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC), 1.0),
)
_FIELD_READERS = {
    pynvml.NVML_VALUE_TYPE_DOUBLE: "dVal", pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal", pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal", pynvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
}
# Errors that mean "this field is not available here", not "something is wrong".
_UNAVAILABLE = (pynvml.NVMLError_NotSupported, pynvml.NVMLError_FunctionNotFound, AttributeError)


class GpuLost(Exception):
    """A GPU answered NVML_ERROR_GPU_IS_LOST: the rest of its sample is abandoned."""


def open_nvml(nvml: Any = pynvml) -> tuple[Any | None, str]:
    """``nvml`` (the ``pynvml`` module by default) once initialised, or None and why not."""
    try:
        nvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"NVML unavailable ({type(exc).__name__}: {exc})"
    except OSError as exc:
        return None, f"NVML library could not be loaded ({exc})"
    return nvml, ""


@dataclass
class Device:
    index: int
    handle: Any
    uuid: str
    name: str
    xid_supported: bool = False
    unsupported: set[tuple[str, tuple[Any, ...]]] = field(default_factory=set)


class GpuSource:
    """Samples every GPU NVML reports; with no NVML it reports zero GPUs and says why, once."""

    name = "gpu"

    def __init__(self, nvml: Any | None = None, attribution: Attribution | None = None) -> None:
        self.nvml: Any = nvml  # None until opened when no NVML object was given
        self.attribution = attribution
        self.simulated = "true" if getattr(nvml, "SIMULATED", False) else "false"
        self.off_reason: str | None = None
        self.driver_version = ""
        self.count = 0
        self.devices: dict[int, Device] = {}
        self._initialised = False
        self._opened = False
        self._event_set: Any = None
        self._xids: Counter[tuple[int, int]] = Counter()

    # -- set-up (in the sampling thread, so a hanging nvmlInit cannot block start-up) -------------

    def _open(self) -> None:
        """Initialise NVML once, then read the driver and GPU count (retried next sample if that raises)."""
        if not self._initialised:
            self._initialised = True
            self.nvml, reason = open_nvml(pynvml if self.nvml is None else self.nvml)
            if self.nvml is None:
                self.off_reason = reason
                self._opened = True
                log.warning("mlscope: GPU metrics are off: %s; exporting mlscope_gpus 0", reason)
                return
        self.driver_version = _text(self.nvml.nvmlSystemGetDriverVersion())
        self.count = int(self.nvml.nvmlDeviceGetCount())
        self._opened = True
        try:
            self._event_set = self.nvml.nvmlEventSetCreate()
        except (pynvml.NVMLError, AttributeError) as exc:
            log.warning("mlscope: NVML event API unavailable (%s): XID errors are not reported", exc)
        log.info("mlscope: NVML driver %s, %d GPU(s)", self.driver_version, self.count)

    def _discover(self, s: Sample) -> None:
        """Open devices not yet opened (a device that failed is retried at the next sample)."""
        for index in range(self.count):
            if index in self.devices:
                continue
            try:
                handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
                device = Device(index, handle, _text(self.nvml.nvmlDeviceGetUUID(handle)),
                                _text(self.nvml.nvmlDeviceGetName(handle)))
            except pynvml.NVMLError as exc:
                s.error(type(exc).__name__)
                continue
            self.devices[index] = device
            self._register_xid(device)

    def _register_xid(self, device: Device) -> None:
        if self._event_set is None:
            return
        try:
            self.nvml.nvmlDeviceRegisterEvents(device.handle, pynvml.nvmlEventTypeXidCriticalError, self._event_set)
            device.xid_supported = True
        except pynvml.NVMLError as exc:
            log.warning("mlscope: GPU %d (%s): XID events not available from NVML (%s); "
                        "mlscope_gpu_xid_events_supported is 0", device.index, device.uuid, exc)

    def close(self) -> None:
        if self.nvml is None or not self._opened:
            return
        try:
            if self._event_set is not None:
                self.nvml.nvmlEventSetFree(self._event_set)
            self.nvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass

    # -- sampling -------------------------------------------------------------------------------

    def sample(self) -> Sample:
        s = Sample()
        if not self._opened:
            self._open()
        s.add(cat.GPUS, (self.simulated,), self.count)
        if not self.count:
            return s
        self._discover(s)
        self._drain_xids(s)
        watched = self.attribution() if self.attribution is not None else {}
        for device in list(self.devices.values()):
            part = Sample()
            try:
                self._sample_device(part, device, watched)
            except GpuLost:
                s.error("NVMLError_GpuIsLost")
                continue
            s.merge(part)
        return s

    def _call(self, s: Sample, device: Device, function: str, *args: Any) -> Any:
        """One NVML reading, or None when unsupported (remembered) or failed (counted)."""
        key = (function, args)
        if key in device.unsupported:
            return None
        try:
            return getattr(self.nvml, function)(device.handle, *args)
        except _UNAVAILABLE:
            device.unsupported.add(key)
            return None
        except pynvml.NVMLError_GpuIsLost as exc:
            raise GpuLost(device.index) from exc
        except pynvml.NVMLError as exc:
            s.error(type(exc).__name__)
            return None

    def _sample_device(self, s: Sample, d: Device, watched: Mapping[int, tuple[str, str, str]]) -> None:
        gpu = (str(d.index), d.uuid, d.name, self.simulated)
        s.add(cat.GPU_INFO, gpu + (self.driver_version,), 1)
        util = self._call(s, d, "nvmlDeviceGetUtilizationRates")
        if util is not None:
            s.add(cat.GPU_UTILIZATION, gpu, util.gpu / 100)
            s.add(cat.GPU_MEMORY_UTILIZATION, gpu, util.memory / 100)
        for spec, function in ((cat.GPU_ENCODER_UTILIZATION, "nvmlDeviceGetEncoderUtilization"),
                               (cat.GPU_DECODER_UTILIZATION, "nvmlDeviceGetDecoderUtilization")):
            value = self._call(s, d, function)  # [percent, sampling period in us]
            if value is not None:
                s.add(spec, gpu, value[0] / 100)
        memory = self._call(s, d, "nvmlDeviceGetMemoryInfo")
        if memory is not None:
            s.add(cat.GPU_MEMORY_USED, gpu, memory.used)
            s.add(cat.GPU_MEMORY_FREE, gpu, memory.free)
            s.add(cat.GPU_MEMORY_TOTAL, gpu, memory.total)
        s.add(cat.GPU_MEMORY_TEMPERATURE, gpu, self._field(s, d, pynvml.NVML_FI_DEV_MEMORY_TEMP))
        for spec, extra, function, args, factor in SCALARS:
            value = self._call(s, d, function, *args)
            if value is not None:
                s.add(spec, gpu + extra, value * factor)
        self._remapped_rows(s, d, gpu)
        self._throttle(s, d, gpu)
        self._processes(s, d, gpu, watched)
        s.add(cat.GPU_XID_SUPPORTED, gpu, 1 if d.xid_supported else 0)
        for (index, xid), count in sorted(self._xids.items()):
            if index == d.index:
                s.add(cat.GPU_XID_ERRORS, gpu + (str(xid),), count)

    def _field(self, s: Sample, d: Device, field_id: int) -> float | None:
        values = self._call(s, d, "nvmlDeviceGetFieldValues", (field_id,))
        if values is None:
            return None
        value = values[0]
        if value.nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED:
            d.unsupported.add(("nvmlDeviceGetFieldValues", ((field_id,),)))
        if value.nvmlReturn != pynvml.NVML_SUCCESS or value.valueType not in _FIELD_READERS:
            return None
        return float(getattr(value.value, _FIELD_READERS[value.valueType]))

    def _remapped_rows(self, s: Sample, d: Device, gpu: tuple[str, ...]) -> None:
        rows = self._call(s, d, "nvmlDeviceGetRemappedRows")  # (corrected, uncorrected, pending, failure)
        if rows is not None:
            s.add(cat.GPU_REMAPPED_ROWS, gpu + ("corrected",), rows[0])
            s.add(cat.GPU_REMAPPED_ROWS, gpu + ("uncorrected",), rows[1])
            s.add(cat.GPU_ROW_REMAP_FAILURE, gpu, 1 if rows[3] else 0)

    def _throttle(self, s: Sample, d: Device, gpu: tuple[str, ...]) -> None:
        # "EventReasons" since driver 535; "ThrottleReasons" before (and in older nvidia-ml-py).
        for function in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            mask = self._call(s, d, function)
            if mask is not None or (function, ()) not in d.unsupported:
                break
        if mask is not None:
            for reason, bit in THROTTLE_REASONS:
                s.add(cat.GPU_THROTTLE, gpu + (reason,), 1 if mask & bit else 0)

    def _processes(self, s: Sample, d: Device, gpu: tuple[str, ...],
                   watched: Mapping[int, tuple[str, str, str]]) -> None:
        if not watched:
            return
        for proc in self._call(s, d, "nvmlDeviceGetComputeRunningProcesses") or ():
            known = watched.get(proc.pid)
            if known is not None and proc.usedGpuMemory is not None:
                s.add(cat.GPU_PROCESS_MEMORY, gpu + (str(proc.pid),) + known, proc.usedGpuMemory)

    def _drain_xids(self, s: Sample) -> None:
        """Count the XID events NVML queued since the last sample (non-blocking wait)."""
        if self._event_set is None:
            return
        by_uuid = {d.uuid: d.index for d in self.devices.values()}
        for _ in range(1024):
            try:
                event = self.nvml.nvmlEventSetWait_v2(self._event_set, 0)
                if event.eventType != pynvml.nvmlEventTypeXidCriticalError:
                    continue
                index = by_uuid.get(_text(self.nvml.nvmlDeviceGetUUID(event.device)))
            except pynvml.NVMLError_Timeout:
                return
            except pynvml.NVMLError as exc:
                s.error(type(exc).__name__)
                return
            if index is not None:
                self._xids[(index, int(event.eventData))] += 1


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
