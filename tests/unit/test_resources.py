"""Resource collectors against replayed readings: recorded psutil values and a fake NVML.

Every exported series is compared with the replayed value converted to base
units by hand here (W = mW / 1000, Hz = MHz * 1e6, ratio = percent / 100...).
"""
from __future__ import annotations

import logging
import os
import time

import psutil
import pynvml
import pytest
import requests
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.catalog import resources as cat
from mlscope.resources import FakeGPU, FakeNVML, ResourceMonitor, Sample, Sampler
from mlscope.resources.collector import ResourceCollector
from mlscope.resources.host import HostSource
from mlscope.resources.process import ProcessSource
from support import recorded_psutil as rec
from support.helpers import Exporter, series, wait_until
from support.recorded_psutil import RecordedProcess, RecordedPsutil
from support.resources import GIB, fake_gpus, value

SIM = {"simulated": "true"}


def names_of(registry: CollectorRegistry, prefix: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {key for key in series(registry) if key[0].startswith(prefix)}


# -- host -------------------------------------------------------------------------------------------

def host_registry(samples: int = 1) -> tuple[CollectorRegistry, Sampler]:
    registry = CollectorRegistry()
    sampler = Sampler([HostSource(RecordedPsutil(), file_handles=lambda: rec.FILE_HANDLES)])
    registry.register(ResourceCollector(sampler))
    for _ in range(samples):
        sampler.sample_once()
    return registry, sampler


def test_host_series_equal_the_replayed_readings() -> None:
    registry, _ = host_registry()
    per_cpu = rec.PER_CPU[1]  # the constructor's priming call consumed the first reading
    assert value(registry, "mlscope_host_cpus") == 4
    assert value(registry, "mlscope_host_cpu_utilization_ratio") == pytest.approx(sum(per_cpu) / 400)
    for i, percent in enumerate(per_cpu):
        assert value(registry, "mlscope_host_cpu_core_utilization_ratio", cpu=str(i)) == percent / 100
    for period, load in zip(("1m", "5m", "15m"), rec.LOAD, strict=True):
        assert value(registry, "mlscope_host_load_average", period=period) == load
    assert value(registry, "mlscope_host_memory_total_bytes") == rec.MEMORY.total
    assert value(registry, "mlscope_host_memory_available_bytes") == rec.MEMORY.available
    assert value(registry, "mlscope_host_memory_used_bytes") == rec.MEMORY.used
    assert value(registry, "mlscope_host_swap_total_bytes") == rec.SWAP.total
    assert value(registry, "mlscope_host_swap_used_bytes") == rec.SWAP.used
    for mountpoint, device in (("/", "/dev/vda"), ("/data", "/dev/vdb")):
        usage = rec.USAGE[mountpoint]
        assert value(registry, "mlscope_host_filesystem_size_bytes", device=device, mountpoint=mountpoint) \
            == usage.total
        assert value(registry, "mlscope_host_filesystem_free_bytes", device=device, mountpoint=mountpoint) \
            == usage.free
    for device in ("vda", "vdb"):
        io = rec.DISKS[device]
        for direction, nbytes, ops, ms in (("read", io.read_bytes, io.read_count, io.read_time),
                                           ("write", io.write_bytes, io.write_count, io.write_time)):
            labels = dict(device=device, direction=direction)
            assert value(registry, "mlscope_host_disk_io_bytes_total", **labels) == nbytes
            assert value(registry, "mlscope_host_disk_io_operations_total", **labels) == ops
            assert value(registry, "mlscope_host_disk_io_time_seconds_total", **labels) == ms / 1000
    for nic, io in rec.NICS.items():
        for direction, nbytes, packets, errors, drops in (
                ("receive", io.bytes_recv, io.packets_recv, io.errin, io.dropin),
                ("transmit", io.bytes_sent, io.packets_sent, io.errout, io.dropout)):
            labels = dict(interface=nic, direction=direction)
            assert value(registry, "mlscope_host_network_bytes_total", **labels) == nbytes
            assert value(registry, "mlscope_host_network_packets_total", **labels) == packets
            assert value(registry, "mlscope_host_network_errors_total", **labels) == errors
            assert value(registry, "mlscope_host_network_drops_total", **labels) == drops
    assert value(registry, "mlscope_host_open_file_descriptors") == rec.FILE_HANDLES[0]
    assert value(registry, "mlscope_host_open_file_descriptors_limit") == float(rec.FILE_HANDLES[1])  # float64
    # Exactly these series, nothing from excluded mounts (/proc/sys), vanished mounts (/gone) or loop devices.
    host = names_of(registry, "mlscope_host_")
    assert len(host) == 1 + 1 + 4 + 3 + 5 + 2 * 2 + 2 * 3 * 2 + 2 * 4 * 2 + 2
    assert not [k for k in host if dict(k[1]).get("mountpoint") in ("/proc/sys", "/gone")
                or dict(k[1]).get("device") == "loop0"]


def test_device_caps_drop_and_count_series() -> None:
    registry = CollectorRegistry()
    sampler = Sampler([HostSource(RecordedPsutil(), file_handles=lambda: None, max_devices=1)])
    registry.register(ResourceCollector(sampler))
    sampler.sample_once()
    assert value(registry, "mlscope_host_network_bytes_total", interface="eth0", direction="receive") is not None
    assert value(registry, "mlscope_host_network_bytes_total", interface="lo", direction="receive") is None
    assert value(registry, "mlscope_resource_series_dropped_total", collector="host", label="interface") == 1
    assert value(registry, "mlscope_resource_series_dropped_total", collector="host", label="device") == 1
    # /data and /gone; /proc/sys is excluded, not dropped.
    assert value(registry, "mlscope_resource_series_dropped_total", collector="host", label="mountpoint") == 2
    assert value(registry, "mlscope_host_open_file_descriptors") is None  # not Linux: absent, not 0


# -- processes --------------------------------------------------------------------------------------

def process_tree() -> list[RecordedProcess]:
    worker_a = RecordedProcess(101, "gunicorn", cpu=(3.0, 0.5), rss=300_000_000, threads=4, fds=12)
    worker_b = RecordedProcess(102, "gunicorn", cpu=(2.0, 0.25), rss=200_000_000, threads=3, fds=11)
    main = RecordedProcess(100, "gunicorn", cpu=(0.5, 0.125), rss=50_000_000, threads=2, fds=9,
                           kids=[worker_a, worker_b])
    other = RecordedProcess(200, "postgres", cpu=(9.0, 9.0))
    return [main, worker_a, worker_b, other]


def process_registry(**options: object) -> tuple[CollectorRegistry, ProcessSource, Sampler]:
    registry = CollectorRegistry()
    source = ProcessSource(RecordedPsutil(process_tree()), **options)  # type: ignore[arg-type]
    sampler = Sampler([source])
    registry.register(ResourceCollector(sampler))
    sampler.sample_once()
    return registry, source, sampler


@pytest.mark.parametrize("options", [dict(pids=[100]), dict(pattern="^gunicorn")])
def test_process_series_equal_the_replayed_readings(options: dict) -> None:
    registry, source, _ = process_registry(children=True, **options)
    for proc in process_tree()[:3]:
        labels = dict(pid=str(proc.pid), process=proc.recorded_name)
        assert value(registry, "mlscope_process_cpu_seconds_total", mode="user", **labels) == proc.cpu[0]
        assert value(registry, "mlscope_process_cpu_seconds_total", mode="system", **labels) == proc.cpu[1]
        assert value(registry, "mlscope_process_resident_memory_bytes", **labels) == proc.rss
        assert value(registry, "mlscope_process_threads", **labels) == proc.threads
        assert value(registry, "mlscope_process_open_file_descriptors", **labels) == proc.fds
    assert value(registry, "mlscope_process_children", pid="100", process="gunicorn") == 2
    assert value(registry, "mlscope_process_resident_memory_bytes", pid="200", process="postgres") is None
    assert source.watched == {100: "gunicorn", 101: "gunicorn", 102: "gunicorn"}
    assert value(registry, "mlscope_resource_collector_up", collector="process") == 1


def test_children_only_when_asked() -> None:
    registry, source, _ = process_registry(pids=[100])
    assert value(registry, "mlscope_process_children", pid="100", process="gunicorn") == 2
    assert value(registry, "mlscope_process_threads", pid="101", process="gunicorn") is None
    assert source.watched == {100: "gunicorn"}


def test_a_missing_or_forbidden_process_is_counted_not_raised() -> None:
    tree = process_tree()
    tree[3].denied = True
    registry = CollectorRegistry()
    sampler = Sampler([ProcessSource(RecordedPsutil(tree), pids=[100, 200, 999])])
    registry.register(ResourceCollector(sampler))
    sampler.sample_once()
    assert value(registry, "mlscope_process_threads", pid="100", process="gunicorn") == 2
    assert value(registry, "mlscope_resource_collector_errors_total", collector="process",
                 error="NoSuchProcess") == 1
    assert value(registry, "mlscope_resource_collector_errors_total", collector="process",
                 error="AccessDenied") == 1
    assert value(registry, "mlscope_resource_collector_up", collector="process") == 0


# -- GPUs -------------------------------------------------------------------------------------------


def gpu_registry(nvml: FakeNVML, samples: int = 1, **options: object) -> tuple[CollectorRegistry, ResourceMonitor]:
    registry = CollectorRegistry()
    ModelMonitor("llm", "2.1.0", registry=registry)
    monitor = ResourceMonitor(registry, host=False, nvml=nvml, **options)  # type: ignore[arg-type]
    for _ in range(samples):
        monitor.sample_once()
    return registry, monitor


def test_gpu_series_equal_the_replayed_readings_in_base_units() -> None:
    nvml = fake_gpus()
    registry, _ = gpu_registry(nvml, samples=2)
    g = dict(gpu="0", gpu_uuid="GPU-aaaa", gpu_name="NVIDIA H100 80GB HBM3", **SIM)
    expected = {
        "mlscope_gpu_utilization_ratio": 0.97, "mlscope_gpu_memory_utilization_ratio": 0.61,
        "mlscope_gpu_encoder_utilization_ratio": 0.03, "mlscope_gpu_decoder_utilization_ratio": 0.04,
        "mlscope_gpu_memory_used_bytes": 79 * GIB, "mlscope_gpu_memory_free_bytes": GIB,
        "mlscope_gpu_memory_total_bytes": 80 * GIB, "mlscope_gpu_temperature_celsius": 88,
        "mlscope_gpu_memory_temperature_celsius": 91, "mlscope_gpu_power_watts": 612.345,
        "mlscope_gpu_power_limit_watts": 700.0, "mlscope_gpu_energy_joules_total": 123_456.789,
        "mlscope_gpu_sm_clock_hertz": 1.98e9, "mlscope_gpu_memory_clock_hertz": 2.619e9,
        "mlscope_gpu_fan_speed_ratio": 0.0, "mlscope_gpu_pcie_replays_total": 2,
        "mlscope_gpu_row_remap_failure": 1, "mlscope_gpu_xid_events_supported": 1,
    }
    for name, want in expected.items():
        assert value(registry, name, **g) == pytest.approx(want), name
    assert value(registry, "mlscope_gpu_info", driver_version="550.54.15", **g) == 1
    assert value(registry, "mlscope_gpu_pcie_throughput_bytes_per_second", direction="transmit", **g) == 1_536_000
    assert value(registry, "mlscope_gpu_pcie_throughput_bytes_per_second", direction="receive", **g) == 25_600_000
    assert value(registry, "mlscope_gpu_ecc_errors_total", ecc_type="corrected", **g) == 5
    assert value(registry, "mlscope_gpu_ecc_errors_total", ecc_type="uncorrected", **g) == 1
    assert value(registry, "mlscope_gpu_remapped_rows_total", ecc_type="corrected", **g) == 3
    assert value(registry, "mlscope_gpu_remapped_rows_total", ecc_type="uncorrected", **g) == 1
    for reason in ("gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost",
                   "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown", "display_clock_setting"):
        want = 1 if reason in ("sw_power_cap", "hw_thermal_slowdown") else 0
        assert value(registry, "mlscope_gpu_throttle_reason", reason=reason, **g) == want, reason
    # XID events drained once each, accumulated over samples.
    assert value(registry, "mlscope_gpu_xid_errors_total", xid="79", **g) == 2
    assert value(registry, "mlscope_gpu_xid_errors_total", xid="48", **g) == 1
    # Only this process's GPU memory is reported, attributed to the registered model version.
    own = psutil.Process().name()
    assert value(registry, "mlscope_gpu_process_memory_bytes", pid=str(os.getpid()), process=own, model="llm",
                 model_version="2.1.0", **g) == 6 * GIB
    assert value(registry, "mlscope_gpus", **SIM) == 3
    # Nothing unchecked: GPU 0 exposes exactly the series asserted above.
    gpu0 = [k for k in series(registry) if dict(k[1]).get("gpu_uuid") == "GPU-aaaa"]
    assert len(gpu0) == len(expected) + 1 + 2 + 2 + 2 + 9 + 2 + 1


def test_unsupported_fields_are_skipped_and_not_asked_again() -> None:
    nvml = fake_gpus()
    registry, _ = gpu_registry(nvml, samples=3)
    g = dict(gpu="1", gpu_uuid="GPU-bbbb", gpu_name="Tesla T4", **SIM)
    assert value(registry, "mlscope_gpu_power_watts", **g) == 27.5
    assert value(registry, "mlscope_gpu_utilization_ratio", **g) == 0.05
    for name in ("mlscope_gpu_fan_speed_ratio", "mlscope_gpu_encoder_utilization_ratio",
                 "mlscope_gpu_row_remap_failure"):
        assert value(registry, name, **g) is None, name
    assert value(registry, "mlscope_gpu_ecc_errors_total", ecc_type="corrected", **g) is None
    assert value(registry, "mlscope_gpu_xid_events_supported", **g) == 0
    # Asked once on GPU 1 (then remembered), three times on GPU 0; GPU 2 is lost before the fan is read.
    assert nvml.calls["nvmlDeviceGetFanSpeed"] == 3 + 1
    assert "NotSupported" not in str(series(registry))  # not supported is not an error


def test_a_lost_gpu_is_left_out_counted_and_marks_the_collector_down() -> None:
    registry, _ = gpu_registry(fake_gpus(), samples=2)
    lost = [k for k in series(registry) if dict(k[1]).get("gpu_uuid") == "GPU-cccc"]
    assert lost == []
    assert value(registry, "mlscope_resource_collector_errors_total", collector="gpu",
                 error="NVMLError_GpuIsLost") == 2
    assert value(registry, "mlscope_resource_collector_up", collector="gpu") == 0
    assert value(registry, "mlscope_gpus", **SIM) == 3  # found, even if one is lost


def test_no_nvml_exports_zero_gpus_and_says_why_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "mlscope.resources")
    registry, monitor = gpu_registry(FakeNVML([FakeGPU()], init_error=pynvml.NVMLError_DriverNotLoaded), samples=3)
    assert value(registry, "mlscope_gpus", simulated="true") == 0
    assert value(registry, "mlscope_resource_collector_up", collector="gpu") == 1
    assert names_of(registry, "mlscope_gpu_") == set()
    off = [r for r in caplog.records if "GPU metrics are off" in r.getMessage()]
    assert len(off) == 1 and "Driver Not Loaded" in off[0].getMessage()
    assert monitor.gpu is not None and "NVMLError_DriverNotLoaded" in (monitor.gpu.off_reason or "")


def test_this_machine_without_a_gpu_driver_exports_zero_real_gpus() -> None:
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    except pynvml.NVMLError:
        pass
    registry, monitor = gpu_registry(None)  # type: ignore[arg-type]
    assert value(registry, "mlscope_gpus", simulated="false") == 0
    assert monitor.gpu is not None and monitor.gpu.off_reason


def test_every_simulated_series_says_so_and_labels_are_bounded() -> None:
    registry, _ = gpu_registry(fake_gpus())
    gpu_series = names_of(registry, "mlscope_gpu")
    assert gpu_series and all(dict(labels).get("simulated") == "true" for _, labels in gpu_series)
    assert not any("model" in dict(labels) and name != "mlscope_gpu_process_memory_bytes"
                   for name, labels in gpu_series), "the GPU model is gpu_name, never model"


def test_gpu_memory_of_a_process_serving_several_versions_names_them_all() -> None:
    nvml = fake_gpus()
    registry = CollectorRegistry()
    ModelMonitor("llm", "2.1.0", registry=registry).for_version("2.2.0-canary")
    ResourceMonitor(registry, host=False, nvml=nvml).sample_once()
    memory = [dict(k[1]) for k in series(registry) if k[0] == "mlscope_gpu_process_memory_bytes"]
    assert [(m["model"], m["model_version"]) for m in memory] == [("llm", "2.1.0,2.2.0-canary")]


# -- sampling and serving ---------------------------------------------------------------------------


def test_a_hung_nvml_call_does_not_slow_the_scrape(exporter: Exporter) -> None:
    nvml = fake_gpus()
    del nvml.gpus[2]  # no lost GPU here: the collector is healthy until the hang
    monitor = ResourceMonitor(exporter.registry, nvml=nvml, interval=0.05, timeout=0.5).start()
    r = exporter.registry
    busy = dict(gpu="0", gpu_uuid="GPU-aaaa", gpu_name="NVIDIA H100 80GB HBM3", **SIM)
    try:
        wait_until(lambda: value(r, "mlscope_gpu_memory_used_bytes", **busy) == 79 * GIB)
        assert value(r, "mlscope_resource_collector_up", collector="gpu") == 1
        nvml.gpus[1].hangs.add("nvmlDeviceGetTemperature")
        wait_until(lambda: value(r, "mlscope_resource_collector_errors_total", collector="gpu", error="timeout"))
        started = time.monotonic()
        response = requests.get(exporter.url, timeout=5)
        scrape_s = time.monotonic() - started
        assert response.status_code == 200 and scrape_s < 2.0
        assert value(r, "mlscope_resource_collector_up", collector="gpu") == 0
        assert value(r, "mlscope_resource_collector_errors_total", collector="gpu", error="timeout") == 1
        # The other collectors keep sampling while the GPU thread is stuck.
        first = value(r, "mlscope_resource_last_sample_timestamp_seconds", collector="host")
        wait_until(lambda: value(r, "mlscope_resource_last_sample_timestamp_seconds", collector="host") > first)
        assert value(r, "mlscope_resource_collector_up", collector="host") == 1
        # Stale GPU values are no longer served: a gap, not a frozen reading.
        wait_until(lambda: value(r, "mlscope_gpu_memory_used_bytes", **busy) is None, timeout=5)
        assert value(r, "mlscope_gpus", **SIM) is None
    finally:
        nvml.gpus[1].hangs.clear()
        nvml.release()
    wait_until(lambda: value(r, "mlscope_gpu_memory_used_bytes", **busy) == 79 * GIB, timeout=5)
    wait_until(lambda: value(r, "mlscope_resource_collector_up", collector="gpu") == 1, timeout=5)
    monitor.stop()
    assert value(r, "mlscope_resource_collector_up", collector="gpu") is None  # unregistered


def test_health_series_report_each_collector() -> None:
    before = time.time()
    registry, _ = gpu_registry(fake_gpus())
    after = time.time()
    for collector in ("process", "gpu"):
        stamp = value(registry, "mlscope_resource_last_sample_timestamp_seconds", collector=collector)
        assert stamp is not None and before <= stamp <= after
        duration = value(registry, "mlscope_resource_sample_duration_seconds", collector=collector)
        assert duration is not None and 0 < duration <= after - before
    assert value(registry, "mlscope_resource_collector_up", collector="process") == 1
    assert value(registry, "mlscope_resource_collector_up", collector="host") is None  # switched off


def test_sampler_rejects_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        Sampler([], interval=0)


def test_sample_checks_label_counts() -> None:
    with pytest.raises(ValueError, match="label values"):
        Sample().add(cat.HOST_LOAD, (), 1.0)


def test_a_failing_gpu_count_is_counted_and_retried() -> None:
    def failing_count() -> int:
        raise pynvml.NVMLError_Unknown()

    nvml = FakeNVML([FakeGPU(uuid="GPU-x")])
    real_count = nvml.nvmlDeviceGetCount
    nvml.nvmlDeviceGetCount = failing_count  # type: ignore[method-assign]
    registry, monitor = gpu_registry(nvml)
    assert value(registry, "mlscope_resource_collector_errors_total", collector="gpu", error="NVMLError_Unknown") == 1
    assert value(registry, "mlscope_gpus", **SIM) is None  # no sample yet, not a false 0
    nvml.nvmlDeviceGetCount = real_count  # type: ignore[method-assign]
    monitor.sample_once()
    assert value(registry, "mlscope_gpus", **SIM) == 1
    assert value(registry, "mlscope_resource_collector_up", collector="gpu") == 1


def test_old_drivers_report_throttle_reasons_under_their_old_name() -> None:
    class OldDriver(FakeNVML):
        def nvmlDeviceGetCurrentClocksEventReasons(self, handle: object) -> int:
            raise pynvml.NVMLError_FunctionNotFound()

        def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: object) -> int:
            return pynvml.nvmlClocksThrottleReasonHwSlowdown

    registry, _ = gpu_registry(OldDriver([FakeGPU(uuid="GPU-old", name="Tesla V100")]), samples=2)
    g = dict(gpu="0", gpu_uuid="GPU-old", gpu_name="Tesla V100", **SIM)
    assert value(registry, "mlscope_gpu_throttle_reason", reason="hw_slowdown", **g) == 1
    assert value(registry, "mlscope_gpu_throttle_reason", reason="gpu_idle", **g) == 0
