"""Resource metrics: host (psutil), model-service processes and GPUs (NVML), sampled in the background.

    from mlscope.resources import start_resource_monitor
    resources = start_resource_monitor()          # in a model service, beside its ModelMonitors

or standalone: ``mlscope resource-exporter`` (see ``exporter``). Needs the ``resources`` extra
(``pip install 'mlscope[resources]'``, the same as ``mlscope[gpu]``: psutil and nvidia-ml-py).
"""
from .._runtime import require_extra

require_extra("resources", "mlscope.resources", "psutil", "pynvml")

# The imports below need the extra checked above.
from .collector import ResourceCollector
from .fake_nvml import FakeGPU, FakeNVML
from .gpu import GpuSource
from .host import HostSource
from .monitor import ResourceMonitor, start_resource_monitor
from .process import ProcessSource
from .sampler import Sample, Sampler

__all__ = ["FakeGPU", "FakeNVML", "GpuSource", "HostSource", "ProcessSource", "ResourceCollector",
           "ResourceMonitor", "Sample", "Sampler", "start_resource_monitor"]
