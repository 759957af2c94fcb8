"""Host readings through psutil: CPU, load, memory, swap, file systems, disk and network I/O, file handles.

psutil is reached through the ``ps`` argument (the module by default) so that
tests replay recorded readings with the same function names and field names.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from ..catalog import resources as cat
from .sampler import Sample

# Pseudo and container-internal mounts and devices that node_exporter leaves out too.
EXCLUDED_MOUNTS = re.compile(
    r"^/(dev|proc|sys|run/credentials/.+|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
EXCLUDED_DEVICES = re.compile(r"^(ram|loop|fd)\d+$")
MAX_DEVICES = 64


def linux_file_handles(path: Path = Path("/proc/sys/fs/file-nr")) -> tuple[int, int] | None:
    """(allocated, maximum) file handles of a Linux host; None elsewhere."""
    try:
        allocated, _unused, maximum = path.read_text().split()[:3]
    except (OSError, ValueError):
        return None
    return int(allocated), int(maximum)


class HostSource:
    """Samples the host. CPU utilisation is measured between two consecutive samples."""

    name = "host"

    def __init__(self, ps: ModuleType | Any = psutil,
                 file_handles: Callable[[], tuple[int, int] | None] = linux_file_handles,
                 max_devices: int = MAX_DEVICES) -> None:
        self.ps = ps
        self.file_handles = file_handles
        self.max_devices = max_devices
        self.ps.cpu_percent(percpu=True)  # starts the first measurement interval

    def sample(self) -> Sample:
        s = Sample()
        self._cpu(s)
        self._memory(s)
        self._filesystems(s)
        self._disks(s)
        self._network(s)
        handles = self.file_handles()
        if handles is not None:
            s.add(cat.HOST_FDS, (), handles[0])
            s.add(cat.HOST_FDS_LIMIT, (), handles[1])
        return s

    def _cpu(self, s: Sample) -> None:
        per_cpu = self.ps.cpu_percent(percpu=True)
        s.add(cat.HOST_CPUS, (), self.ps.cpu_count())
        if per_cpu:
            s.add(cat.HOST_CPU_UTILIZATION, (), sum(per_cpu) / len(per_cpu) / 100.0)
        for index, percent in enumerate(per_cpu):
            s.add(cat.HOST_CPU_CORE_UTILIZATION, (str(index),), percent / 100.0)
        for period, value in zip(("1m", "5m", "15m"), self.ps.getloadavg(), strict=True):
            s.add(cat.HOST_LOAD, (period,), value)

    def _memory(self, s: Sample) -> None:
        vm, swap = self.ps.virtual_memory(), self.ps.swap_memory()
        s.add(cat.HOST_MEMORY_TOTAL, (), vm.total)
        s.add(cat.HOST_MEMORY_AVAILABLE, (), vm.available)
        s.add(cat.HOST_MEMORY_USED, (), vm.used)
        s.add(cat.HOST_SWAP_TOTAL, (), swap.total)
        s.add(cat.HOST_SWAP_USED, (), swap.used)

    def _filesystems(self, s: Sample) -> None:
        parts = {p.mountpoint: p.device for p in self.ps.disk_partitions(all=False)
                 if not EXCLUDED_MOUNTS.match(p.mountpoint)}
        for mountpoint in s.capped("mountpoint", sorted(parts), self.max_devices):
            try:
                usage = self.ps.disk_usage(mountpoint)
            except OSError:  # unmounted since listing, or not readable: nothing to report
                continue
            labels = (parts[mountpoint], mountpoint)
            s.add(cat.HOST_FS_SIZE, labels, usage.total)
            s.add(cat.HOST_FS_FREE, labels, usage.free)

    def _disks(self, s: Sample) -> None:
        disks = self.ps.disk_io_counters(perdisk=True) or {}
        names = [d for d in sorted(disks) if not EXCLUDED_DEVICES.match(d)]
        for device in s.capped("device", names, self.max_devices):
            io = disks[device]
            for direction, nbytes, ops, ms in (("read", io.read_bytes, io.read_count, io.read_time),
                                               ("write", io.write_bytes, io.write_count, io.write_time)):
                s.add(cat.HOST_DISK_BYTES, (device, direction), nbytes)
                s.add(cat.HOST_DISK_OPS, (device, direction), ops)
                s.add(cat.HOST_DISK_TIME, (device, direction), ms / 1000.0)

    def _network(self, s: Sample) -> None:
        nics = self.ps.net_io_counters(pernic=True) or {}
        for nic in s.capped("interface", sorted(nics), self.max_devices):
            io = nics[nic]
            for direction, nbytes, packets, errors, drops in (
                    ("receive", io.bytes_recv, io.packets_recv, io.errin, io.dropin),
                    ("transmit", io.bytes_sent, io.packets_sent, io.errout, io.dropout)):
                s.add(cat.HOST_NET_BYTES, (nic, direction), nbytes)
                s.add(cat.HOST_NET_PACKETS, (nic, direction), packets)
                s.add(cat.HOST_NET_ERRORS, (nic, direction), errors)
                s.add(cat.HOST_NET_DROPS, (nic, direction), drops)
