"""Host, process and GPU collectors wired together: in-process or in the standalone exporter."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import psutil
from prometheus_client import REGISTRY, CollectorRegistry

from ..instruments import registered_versions
from ..labels import MAX_VALUE_LENGTH
from .collector import ResourceCollector
from .gpu import GpuSource
from .host import HostSource
from .process import ProcessSource
from .sampler import Sampler, Source

DEFAULT_INTERVAL = 5.0


def joined(values: list[str]) -> str:
    """Distinct values joined by commas ("" when none), bounded like every label value."""
    return ",".join(sorted(set(values)))[:MAX_VALUE_LENGTH]


def versions_of(registry: CollectorRegistry | None) -> Callable[[], tuple[str, str]]:
    """(model, model_version) served by this process: the ModelMonitors registered in ``registry``."""
    def labels() -> tuple[str, str]:
        pairs = registered_versions(registry)
        return joined([m for m, _ in pairs]), joined([v for _, v in pairs])
    return labels


class ResourceMonitor:
    """Samples resources in the background and serves them from a registry's collector.

    ``model_labels`` says which model versions the watched processes serve
    (for per-process GPU memory); by default the ModelMonitors registered in
    ``registry``. ``nvml`` is the pynvml-like object to use (a FakeNVML to
    simulate GPUs); None means the real NVML, when there is one.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, host: bool = True, process: bool = True,
                 gpu: bool = True, interval: float = DEFAULT_INTERVAL, timeout: float | None = None,
                 pids: Sequence[int] = (), process_pattern: str | None = None, children: bool = False,
                 nvml: Any | None = None, model_labels: Callable[[], tuple[str, str]] | None = None,
                 ps: Any = psutil) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.model_labels = model_labels or versions_of(self.registry)
        sources: list[Source] = []
        self.host = HostSource(ps) if host else None
        self.process = ProcessSource(ps, pids, process_pattern, children) if process else None
        self.gpu = GpuSource(nvml, self._attribution) if gpu else None
        sources += [s for s in (self.host, self.process, self.gpu) if s is not None]
        self._ps = ps
        self.sampler = Sampler(sources, interval=interval, timeout=timeout)
        self.collector = ResourceCollector(self.sampler)
        self.registry.register(self.collector)

    def _attribution(self) -> dict[int, tuple[str, str, str]]:
        if self.process is not None and self.process.watched:
            watched = self.process.watched
        else:
            watched = {os.getpid(): self._ps.Process().name()[:MAX_VALUE_LENGTH]}
        model, version = self.model_labels()
        return {pid: (name, model, version) for pid, name in watched.items()}

    def start(self) -> ResourceMonitor:
        self.sampler.start()
        return self

    def sample_once(self) -> ResourceMonitor:
        self.sampler.sample_once()
        return self

    def stop(self) -> None:
        """Stop sampling and unregister the collector (NVML is shut down unless a call is hung)."""
        self.sampler.stop()
        with contextlib.suppress(KeyError):
            self.registry.unregister(self.collector)
        if self.gpu is not None and not self.sampler.stuck:
            self.gpu.close()


def start_resource_monitor(registry: CollectorRegistry | None = None, **options: Any) -> ResourceMonitor:
    """Start sampling host, process and GPU resources in the background for ``registry``'s /metrics.

    Inside a model service: ``start_resource_monitor()`` after creating its
    ModelMonitors (GPU memory of this process is then attributed to them).
    """
    return ResourceMonitor(registry, **options).start()
