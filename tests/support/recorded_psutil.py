"""A psutil stand-in that replays recorded readings (same function, field and exception names as psutil)."""
from __future__ import annotations

import contextlib
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

import psutil

svmem = namedtuple("svmem", "total available percent used free")
sswap = namedtuple("sswap", "total used free percent sin sout")
sdiskpart = namedtuple("sdiskpart", "device mountpoint fstype opts")
sdiskusage = namedtuple("sdiskusage", "total used free percent")
sdiskio = namedtuple("sdiskio", "read_count write_count read_bytes write_bytes read_time write_time busy_time")
snetio = namedtuple("snetio", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin dropout")
pcputimes = namedtuple("pcputimes", "user system children_user children_system")
pmem = namedtuple("pmem", "rss vms")

# Readings recorded on a 4-CPU Linux host (values rounded), replayed by the tests.
PER_CPU = [[12.5, 37.5, 100.0, 0.0], [50.0, 50.0, 25.0, 75.0]]
LOAD = (1.25, 0.75, 0.5)
MEMORY = svmem(total=25_276_502_016, available=24_638_607_360, percent=2.5, used=637_894_656, free=23_162_224_640)
SWAP = sswap(total=2_147_479_552, used=1_048_576, free=2_146_430_976, percent=0.0, sin=0, sout=0)
PARTITIONS = [sdiskpart("/dev/vda", "/", "ext4", "rw"), sdiskpart("/dev/vdb", "/data", "xfs", "rw"),
              sdiskpart("proc", "/proc/sys", "proc", "rw"), sdiskpart("/dev/vdc", "/gone", "ext4", "rw")]
USAGE = {"/": sdiskusage(107_374_182_400, 53_687_091_200, 48_318_382_080, 52.6),
         "/data": sdiskusage(1_099_511_627_776, 1_000_000, 1_099_510_627_776, 0.1)}
DISKS = {"vda": sdiskio(1200, 3400, 524_288_000, 1_048_576_000, 5_500, 12_250, 9_000),
         "vdb": sdiskio(10, 20, 40_960, 81_920, 3, 7, 9),
         "loop0": sdiskio(1, 1, 1, 1, 1, 1, 1)}
NICS = {"eth0": snetio(1_000_000, 9_000_000, 1_000, 9_000, 1, 2, 3, 4),
        "lo": snetio(5_000, 5_000, 50, 50, 0, 0, 0, 0)}
FILE_HANDLES = (1_856, 9_223_372_036_854_775_807)


@dataclass
class RecordedProcess:
    pid: int
    recorded_name: str
    cpu: tuple[float, float] = (1.5, 0.25)
    rss: int = 104_857_600
    threads: int = 7
    fds: int = 42
    kids: list[RecordedProcess] = field(default_factory=list)
    denied: bool = False
    gone: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def oneshot(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def _check(self) -> None:
        if self.gone:
            raise psutil.NoSuchProcess(self.pid)
        if self.denied:
            raise psutil.AccessDenied(self.pid)

    def name(self) -> str:
        self._check()
        return self.recorded_name

    def cpu_times(self) -> pcputimes:
        self._check()
        return pcputimes(self.cpu[0], self.cpu[1], 0.0, 0.0)

    def memory_info(self) -> pmem:
        return pmem(self.rss, 4 * self.rss)

    def num_threads(self) -> int:
        return self.threads

    def num_fds(self) -> int:
        return self.fds

    def children(self, recursive: bool = False) -> list[RecordedProcess]:
        assert recursive
        return list(self.kids)


class RecordedPsutil:
    """Module-like: the psutil functions mlscope calls, answering the recorded readings in turn."""

    NoSuchProcess = psutil.NoSuchProcess
    AccessDenied = psutil.AccessDenied

    def __init__(self, processes: list[RecordedProcess] = ()) -> None:  # type: ignore[assignment]
        self._cpu = iter(PER_CPU)
        self.processes = {p.pid: p for p in processes}

    def cpu_percent(self, percpu: bool = False) -> list[float]:
        assert percpu
        return list(next(self._cpu, PER_CPU[-1]))

    def cpu_count(self) -> int:
        return len(PER_CPU[0])

    def getloadavg(self) -> tuple[float, float, float]:
        return LOAD

    def virtual_memory(self) -> svmem:
        return MEMORY

    def swap_memory(self) -> sswap:
        return SWAP

    def disk_partitions(self, all: bool = False) -> list[sdiskpart]:
        return PARTITIONS

    def disk_usage(self, path: str) -> sdiskusage:
        if path not in USAGE:
            raise FileNotFoundError(path)
        return USAGE[path]

    def disk_io_counters(self, perdisk: bool = False) -> dict[str, sdiskio]:
        return DISKS

    def net_io_counters(self, pernic: bool = False) -> dict[str, snetio]:
        return NICS

    def Process(self, pid: int | None = None) -> RecordedProcess:
        if pid not in self.processes:
            raise psutil.NoSuchProcess(pid)
        return self.processes[pid]

    def process_iter(self, attrs: list[str]) -> list[RecordedProcess]:
        for proc in self.processes.values():
            proc.info = {"name": proc.recorded_name, "cmdline": [proc.recorded_name, "--serve"]}
        return list(self.processes.values())
