"""Metrics of the resource exporter: host (psutil), model-service processes and GPUs (NVML).

Host series are prefixed ``mlscope_host_`` so they never clash with
node_exporter's ``node_*`` when both run. GPU series follow the DCGM
exporter's default counter set (etc/default-counters.csv) in base units:
NVML's milliwatts become watts, MHz hertz, percent ratios, mJ joules.
"""
from __future__ import annotations

from typing import TypeVar

from .spec import MetricKind, MetricSpec, RecordedSpec

_Kind = TypeVar("_Kind", bound=MetricKind)

GPU = ("gpu", "gpu_uuid", "gpu_name", "simulated")
PROCESS = ("pid", "process")
FILESYSTEM = ("device", "mountpoint")
DISK = ("device", "direction")
NIC = ("interface", "direction")
COLLECTOR = ("collector",)


def _gpu(name: str, kind: _Kind, help_: str, labels: tuple[str, ...] = (), unit: str = "") -> MetricSpec[_Kind]:
    return MetricSpec(name, kind, help_, GPU + labels, unit=unit)


def _process(name: str, kind: _Kind, help_: str, labels: tuple[str, ...] = (), unit: str = "") -> MetricSpec[_Kind]:
    return MetricSpec(name, kind, help_, PROCESS + labels, unit=unit)


# -- host ------------------------------------------------------------------------------------------
HOST_CPUS = MetricSpec(
    "mlscope_host_cpus", "gauge",
    "Logical CPUs of the host.",
    ())
HOST_CPU_UTILIZATION = MetricSpec(
    "mlscope_host_cpu_utilization_ratio", "gauge",
    "Share of all CPUs' time busy over the last sampling interval.",
    (), unit="ratio")
HOST_CPU_CORE_UTILIZATION = MetricSpec(
    "mlscope_host_cpu_core_utilization_ratio", "gauge",
    "Share of one logical CPU's time busy over the last sampling interval.",
    ("cpu",), unit="ratio")
HOST_LOAD = MetricSpec(
    "mlscope_host_load_average", "gauge",
    "Run-queue load average over 1, 5 and 15 minutes.",
    ("period",))
HOST_MEMORY_TOTAL = MetricSpec(
    "mlscope_host_memory_total_bytes", "gauge",
    "Physical memory of the host.",
    (), unit="bytes")
HOST_MEMORY_AVAILABLE = MetricSpec(
    "mlscope_host_memory_available_bytes", "gauge",
    "Memory available to new processes without swapping.",
    (), unit="bytes")
HOST_MEMORY_USED = MetricSpec(
    "mlscope_host_memory_used_bytes", "gauge",
    "Memory in use (psutil's definition).",
    (), unit="bytes")
HOST_SWAP_TOTAL = MetricSpec(
    "mlscope_host_swap_total_bytes", "gauge",
    "Swap space of the host.",
    (), unit="bytes")
HOST_SWAP_USED = MetricSpec(
    "mlscope_host_swap_used_bytes", "gauge",
    "Swap space in use.",
    (), unit="bytes")
HOST_FS_SIZE = MetricSpec(
    "mlscope_host_filesystem_size_bytes", "gauge",
    "Size of a mounted file system.",
    FILESYSTEM, unit="bytes")
HOST_FS_FREE = MetricSpec(
    "mlscope_host_filesystem_free_bytes", "gauge",
    "Free space of a mounted file system for unprivileged users.",
    FILESYSTEM, unit="bytes")
HOST_DISK_BYTES = MetricSpec(
    "mlscope_host_disk_io_bytes_total", "counter",
    "Bytes read from or written to a block device.",
    DISK)
HOST_DISK_OPS = MetricSpec(
    "mlscope_host_disk_io_operations_total", "counter",
    "Completed reads or writes of a block device.",
    DISK)
HOST_DISK_TIME = MetricSpec(
    "mlscope_host_disk_io_time_seconds_total", "counter",
    "Time a block device spent reading or writing.",
    DISK, unit="seconds")
HOST_NET_BYTES = MetricSpec(
    "mlscope_host_network_bytes_total", "counter",
    "Bytes received or transmitted by a network interface.",
    NIC)
HOST_NET_PACKETS = MetricSpec(
    "mlscope_host_network_packets_total", "counter",
    "Packets received or transmitted by a network interface.",
    NIC)
HOST_NET_ERRORS = MetricSpec(
    "mlscope_host_network_errors_total", "counter",
    "Receive or transmit errors of a network interface.",
    NIC)
HOST_NET_DROPS = MetricSpec(
    "mlscope_host_network_drops_total", "counter",
    "Packets dropped on receive or transmit by a network interface.",
    NIC)
HOST_FDS = MetricSpec(
    "mlscope_host_open_file_descriptors", "gauge",
    "File handles allocated on the host (Linux /proc/sys/fs/file-nr).",
    ())
HOST_FDS_LIMIT = MetricSpec(
    "mlscope_host_open_file_descriptors_limit", "gauge",
    "Maximum file handles of the host (fs.file-max).",
    ())

# -- processes of the model service ----------------------------------------------------------------
PROCESS_CPU = _process(
    "mlscope_process_cpu_seconds_total", "counter",
    "CPU time of a model-service process, by mode.",
    ("mode",), unit="seconds")
PROCESS_RSS = _process(
    "mlscope_process_resident_memory_bytes", "gauge",
    "Resident memory of a model-service process.",
    unit="bytes")
PROCESS_THREADS = _process(
    "mlscope_process_threads", "gauge",
    "Threads of a model-service process.")
PROCESS_FDS = _process(
    "mlscope_process_open_file_descriptors", "gauge",
    "Open file descriptors (handles on Windows) of a model-service process.")
PROCESS_CHILDREN = _process(
    "mlscope_process_children", "gauge",
    "Live child processes (recursive) of a watched process.")

# -- GPUs (NVML) -----------------------------------------------------------------------------------
GPUS = MetricSpec(
    "mlscope_gpus", "gauge",
    "GPUs found by NVML (0 when there is no GPU, driver or NVML library).",
    ("simulated",))
GPU_INFO = _gpu(
    "mlscope_gpu_info", "gauge",
    "Always 1: a GPU and the NVIDIA driver version.",
    ("driver_version",), unit="info")
GPU_UTILIZATION = _gpu(
    "mlscope_gpu_utilization_ratio", "gauge",
    "Share of time a kernel ran on the GPU over NVML's last sample period.",
    unit="ratio")
GPU_MEMORY_UTILIZATION = _gpu(
    "mlscope_gpu_memory_utilization_ratio", "gauge",
    "Share of time the GPU memory was read or written (memory copy utilisation).",
    unit="ratio")
GPU_ENCODER_UTILIZATION = _gpu(
    "mlscope_gpu_encoder_utilization_ratio", "gauge",
    "Video encoder utilisation.",
    unit="ratio")
GPU_DECODER_UTILIZATION = _gpu(
    "mlscope_gpu_decoder_utilization_ratio", "gauge",
    "Video decoder utilisation.",
    unit="ratio")
GPU_MEMORY_USED = _gpu(
    "mlscope_gpu_memory_used_bytes", "gauge",
    "GPU (framebuffer) memory in use.",
    unit="bytes")
GPU_MEMORY_FREE = _gpu(
    "mlscope_gpu_memory_free_bytes", "gauge",
    "GPU (framebuffer) memory free.",
    unit="bytes")
GPU_MEMORY_TOTAL = _gpu(
    "mlscope_gpu_memory_total_bytes", "gauge",
    "GPU (framebuffer) memory installed.",
    unit="bytes")
GPU_TEMPERATURE = _gpu(
    "mlscope_gpu_temperature_celsius", "gauge",
    "GPU die temperature.",
    unit="celsius")
GPU_MEMORY_TEMPERATURE = _gpu(
    "mlscope_gpu_memory_temperature_celsius", "gauge",
    "GPU memory (HBM) temperature.",
    unit="celsius")
GPU_POWER = _gpu(
    "mlscope_gpu_power_watts", "gauge",
    "Power drawn by the GPU board.",
    unit="watts")
GPU_POWER_LIMIT = _gpu(
    "mlscope_gpu_power_limit_watts", "gauge",
    "Power limit enforced on the GPU board.",
    unit="watts")
GPU_ENERGY = _gpu(
    "mlscope_gpu_energy_joules_total", "counter",
    "Energy consumed by the GPU since the driver loaded.",
    unit="joules")
GPU_SM_CLOCK = _gpu(
    "mlscope_gpu_sm_clock_hertz", "gauge",
    "Current streaming-multiprocessor clock.",
    unit="hertz")
GPU_MEMORY_CLOCK = _gpu(
    "mlscope_gpu_memory_clock_hertz", "gauge",
    "Current memory clock.",
    unit="hertz")
GPU_FAN = _gpu(
    "mlscope_gpu_fan_speed_ratio", "gauge",
    "Fan speed as a share of its maximum.",
    unit="ratio")
GPU_PCIE_THROUGHPUT = _gpu(
    "mlscope_gpu_pcie_throughput_bytes_per_second", "gauge",
    "PCIe throughput over NVML's last 20 ms sample, by direction.",
    ("direction",))
GPU_PCIE_REPLAYS = _gpu(
    "mlscope_gpu_pcie_replays_total", "counter",
    "PCIe replays (retries) of the GPU.")
GPU_ECC_ERRORS = _gpu(
    "mlscope_gpu_ecc_errors_total", "counter",
    "ECC memory errors since the driver loaded (volatile counters), by type.",
    ("ecc_type",))
GPU_REMAPPED_ROWS = _gpu(
    "mlscope_gpu_remapped_rows_total", "counter",
    "Memory rows remapped after correctable or uncorrectable errors.",
    ("ecc_type",))
GPU_ROW_REMAP_FAILURE = _gpu(
    "mlscope_gpu_row_remap_failure", "gauge",
    "1 when remapping a memory row has failed.")
GPU_THROTTLE = _gpu(
    "mlscope_gpu_throttle_reason", "gauge",
    "1 while clocks are held down for this reason (NVML clock event reasons).",
    ("reason",))
GPU_XID_ERRORS = _gpu(
    "mlscope_gpu_xid_errors_total", "counter",
    "XID critical errors reported by NVML's event API since the exporter started, by XID code.",
    ("xid",))
GPU_XID_SUPPORTED = _gpu(
    "mlscope_gpu_xid_events_supported", "gauge",
    "1 when NVML's event API reports XID errors for this GPU; 0 when it cannot, and then no XID series "
    "exist.")
GPU_PROCESS_MEMORY = _gpu(
    "mlscope_gpu_process_memory_bytes", "gauge",
    "GPU memory used by a model-service process, attributed to the model versions it serves when known.",
    ("pid", "process", "model", "model_version"), unit="bytes")

# -- the exporter's own health ---------------------------------------------------------------------
COLLECTOR_UP = MetricSpec(
    "mlscope_resource_collector_up", "gauge",
    "1 when the collector's last sample succeeded and is fresh, else 0.",
    COLLECTOR)
COLLECTOR_ERRORS = MetricSpec(
    "mlscope_resource_collector_errors_total", "counter",
    "Failed samples or reads of a resource collector, by error.",
    COLLECTOR + ("error",))
COLLECTOR_LAST_SAMPLE = MetricSpec(
    "mlscope_resource_last_sample_timestamp_seconds", "gauge",
    "Unix time of the collector's last successful sample.",
    COLLECTOR, unit="seconds")
COLLECTOR_DURATION = MetricSpec(
    "mlscope_resource_sample_duration_seconds", "gauge",
    "Time the collector's last completed sample took.",
    COLLECTOR, unit="seconds")
SERIES_DROPPED = MetricSpec(
    "mlscope_resource_series_dropped_total", "counter",
    "Series left out of samples because a label's per-sample cap was reached (devices, interfaces, mount "
    "points, processes).",
    COLLECTOR + ("label",))

HOST = (HOST_CPUS, HOST_CPU_UTILIZATION, HOST_CPU_CORE_UTILIZATION, HOST_LOAD, HOST_MEMORY_TOTAL,
        HOST_MEMORY_AVAILABLE, HOST_MEMORY_USED, HOST_SWAP_TOTAL, HOST_SWAP_USED, HOST_FS_SIZE, HOST_FS_FREE,
        HOST_DISK_BYTES, HOST_DISK_OPS, HOST_DISK_TIME, HOST_NET_BYTES, HOST_NET_PACKETS, HOST_NET_ERRORS,
        HOST_NET_DROPS, HOST_FDS, HOST_FDS_LIMIT)
PROCESS_METRICS = (PROCESS_CPU, PROCESS_RSS, PROCESS_THREADS, PROCESS_FDS, PROCESS_CHILDREN)
GPU_METRICS = (GPUS, GPU_INFO, GPU_UTILIZATION, GPU_MEMORY_UTILIZATION, GPU_ENCODER_UTILIZATION,
               GPU_DECODER_UTILIZATION, GPU_MEMORY_USED, GPU_MEMORY_FREE, GPU_MEMORY_TOTAL, GPU_TEMPERATURE,
               GPU_MEMORY_TEMPERATURE, GPU_POWER, GPU_POWER_LIMIT, GPU_ENERGY, GPU_SM_CLOCK, GPU_MEMORY_CLOCK,
               GPU_FAN, GPU_PCIE_THROUGHPUT, GPU_PCIE_REPLAYS, GPU_ECC_ERRORS, GPU_REMAPPED_ROWS,
               GPU_ROW_REMAP_FAILURE, GPU_THROTTLE, GPU_XID_ERRORS, GPU_XID_SUPPORTED, GPU_PROCESS_MEMORY)
HEALTH = (COLLECTOR_UP, COLLECTOR_ERRORS, COLLECTOR_LAST_SAMPLE, COLLECTOR_DURATION, SERIES_DROPPED)

METRICS = HOST + PROCESS_METRICS + GPU_METRICS + HEALTH
RECORDED: tuple[RecordedSpec, ...] = ()
