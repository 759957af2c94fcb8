"""Resources: host CPU, memory, disk and network; model-service processes; per-GPU load, memory, heat, power.

Simulated GPUs (the demo's, ``mlscope resource-exporter --simulate-gpus``) carry ``simulated="true"``: every
GPU legend says so, and a stat counts them.
"""
from mlscope import grafana as gf
from mlscope.catalog import AnyMetricSpec
from mlscope.catalog import resources as cat

INSTANCE = 'instance=~"$instance"'
G = INSTANCE + ',gpu=~"$gpu"'
GPU = "GPU {{gpu}} {{gpu_name}} simulated={{simulated}}"
BY_GPU = "instance, gpu, gpu_name, simulated"


def rate(metric: str, by: str, selector: str = INSTANCE) -> str:
    return f"sum by ({by}) (rate({metric}{{{selector}}}[$__rate_interval]))"


def instance(spec: AnyMetricSpec) -> str:
    return f"{spec.name}{{{INSTANCE}}}"


def gpu(spec: AnyMetricSpec) -> str:
    return f"{spec.name}{{{G}}}"


dashboard = gf.dashboard(
    "mlscope-resources", "mlscope / Resources",
    description="Host, model-service processes and GPUs (NVML) from the mlscope resource exporter.",
    variables=[*gf.model_variables(), gf.label_variable("instance", "Instance", cat.HOST_CPUS.name),
               gf.label_variable("gpu", "GPU", cat.GPU_INFO.name, INSTANCE)],
    rows=[
        [gf.stat("CPU busy", gf.prom(f"avg({instance(cat.HOST_CPU_UTILIZATION)})"), "percentunit", decimals=1),
         gf.stat("Memory available", gf.prom(
             f"sum({instance(cat.HOST_MEMORY_AVAILABLE)}) / sum({instance(cat.HOST_MEMORY_TOTAL)})"),
             "percentunit", decimals=1),
         gf.stat("GPUs", gf.prom(f"sum({instance(cat.GPUS)})"), "short"),
         gf.stat("Simulated GPUs", gf.prom(f'sum({cat.GPUS.name}{{{INSTANCE},simulated="true"}}) or vector(0)'),
                 "short",
                 description="GPUs answered by mlscope's fake NVML (demo, tests): not real hardware."),
         gf.stat("Collectors down", gf.prom(f"count({instance(cat.COLLECTOR_UP)} == 0) or vector(0)"), "short")],
        [gf.timeseries("Host CPU busy (overall and per core)", gf.prom(
            (instance(cat.HOST_CPU_UTILIZATION), "all CPUs {{instance}}"),
            (instance(cat.HOST_CPU_CORE_UTILIZATION), "cpu {{cpu}}")), "percentunit"),
         gf.timeseries("Load average", gf.prom((instance(cat.HOST_LOAD), "{{period}} {{instance}}"),
                                               (instance(cat.HOST_CPUS), "CPUs {{instance}}")), "short"),
         gf.timeseries("Host memory and swap", gf.prom(
             (instance(cat.HOST_MEMORY_USED), "used"), (instance(cat.HOST_MEMORY_AVAILABLE), "available"),
             (instance(cat.HOST_MEMORY_TOTAL), "total"), (instance(cat.HOST_SWAP_USED), "swap used")),
             "bytes")],
        [gf.timeseries("File systems used", gf.prom(
            (f"1 - {instance(cat.HOST_FS_FREE)} / {instance(cat.HOST_FS_SIZE)}", "{{mountpoint}} ({{device}})")),
            "percentunit"),
         gf.timeseries("Disk I/O", gf.prom((rate(cat.HOST_DISK_BYTES.name, "device, direction"),
                                            "{{device}} {{direction}}")), "Bps"),
         gf.timeseries("Network I/O", gf.prom((rate(cat.HOST_NET_BYTES.name, "interface, direction"),
                                               "{{interface}} {{direction}}")), "Bps"),
         gf.timeseries("Network errors and drops", gf.prom(
             (rate(cat.HOST_NET_ERRORS.name, "interface, direction"), "errors {{interface}} {{direction}}"),
             (rate(cat.HOST_NET_DROPS.name, "interface, direction"), "drops {{interface}} {{direction}}")), "pps")],
        [gf.timeseries("Model-service processes: CPU", gf.prom(
            (rate(cat.PROCESS_CPU.name, "pid, process, mode"), "{{process}} ({{pid}}) {{mode}}")), "percentunit",
            stacked=True, description="CPU seconds per second: 1 = one core busy."),
         gf.timeseries("Model-service processes: resident memory", gf.prom(
             (instance(cat.PROCESS_RSS), "{{process}} ({{pid}})")), "bytes"),
         gf.timeseries("Threads and open file descriptors", gf.prom(
             (instance(cat.PROCESS_THREADS), "threads {{process}} ({{pid}})"),
             (instance(cat.PROCESS_FDS), "fds {{process}} ({{pid}})"),
             (instance(cat.HOST_FDS), "host file handles")), "short")],
        [gf.timeseries("GPU utilisation", gf.prom((gpu(cat.GPU_UTILIZATION), GPU)), "percentunit"),
         gf.timeseries("GPU memory used (share of total)", gf.prom(
             (f"{gpu(cat.GPU_MEMORY_USED)} / {gpu(cat.GPU_MEMORY_TOTAL)}", GPU)), "percentunit"),
         gf.timeseries("GPU memory copy utilisation", gf.prom((gpu(cat.GPU_MEMORY_UTILIZATION), GPU)),
                       "percentunit")],
        [gf.timeseries("GPU temperature", gf.prom((gpu(cat.GPU_TEMPERATURE), GPU),
                                                  (gpu(cat.GPU_MEMORY_TEMPERATURE), "memory " + GPU)), "celsius"),
         gf.timeseries("GPU power draw and limit", gf.prom(
             (gpu(cat.GPU_POWER), GPU), (gpu(cat.GPU_POWER_LIMIT), "limit " + GPU)), "watt"),
         gf.timeseries("GPU clocks held down, by reason (1 = throttling)", gf.prom(
             (f"max by ({BY_GPU}, reason) ({gpu(cat.GPU_THROTTLE)})", GPU + " {{reason}}")), "short",
             stacked=True)],
        [gf.timeseries("GPU SM clock", gf.prom((gpu(cat.GPU_SM_CLOCK), GPU)), "hertz"),
         gf.timeseries("GPU ECC and XID errors", gf.prom(
             (rate(cat.GPU_ECC_ERRORS.name, BY_GPU + ", ecc_type", G), GPU + " ECC {{ecc_type}}"),
             (f"{rate(cat.GPU_XID_ERRORS.name, BY_GPU + ', xid', G)} or vector(0)", GPU + " XID {{xid}}")), "ops",
             description="XID errors need NVML's event API (mlscope_gpu_xid_events_supported = 1)."),
         gf.with_logs(gf.timeseries("GPU memory by model version", gf.prom(
             (f"sum by (model, model_version, gpu, simulated) ({cat.GPU_PROCESS_MEMORY.name}{{{G},"
              f"{gf.MODEL_SELECTOR}}})", "{{model}} {{model_version}} on GPU {{gpu}} simulated={{simulated}}")),
             "bytes"))],
    ])
