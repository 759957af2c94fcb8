"""The model service's processes through psutil: CPU seconds, resident memory, threads, file descriptors.

Watched processes are this process (the default), given PIDs, or every
process whose name or command line matches a pattern; their children
(recursive) are sampled too when asked.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import psutil

from ..catalog import resources as cat
from ..labels import MAX_VALUE_LENGTH
from .sampler import Sample

MAX_PROCESSES = 64


class ProcessSource:
    """Samples the watched processes; ``watched`` maps their PIDs to names after each sample."""

    name = "process"

    def __init__(self, ps: ModuleType | Any = psutil, pids: Sequence[int] = (), pattern: str | None = None,
                 children: bool = False, max_processes: int = MAX_PROCESSES) -> None:
        self.ps = ps
        self.pids = tuple(pids) or (() if pattern else (os.getpid(),))
        self.pattern = re.compile(pattern) if pattern else None
        self.children = children
        self.max_processes = max_processes
        self.watched: dict[int, str] = {}

    def _targets(self, s: Sample) -> list[Any]:
        procs = []
        for pid in self.pids:
            try:
                procs.append(self.ps.Process(pid))
            except self.ps.NoSuchProcess:
                s.error("NoSuchProcess")
        if self.pattern is not None:
            own = os.getpid()  # the exporter's own command line names the pattern
            for proc in self.ps.process_iter(["name", "cmdline"]):
                text = f"{proc.info.get('name') or ''} {' '.join(proc.info.get('cmdline') or ())}"
                if proc.pid != own and self.pattern.search(text):
                    procs.append(proc)
        return procs

    def sample(self) -> Sample:
        s = Sample()
        watched: dict[int, str] = {}
        procs = self._targets(s)
        for proc in procs:
            kids = self._read(s, proc, watched)
            if kids is None or not self.children:
                continue
            for child in kids:
                if child.pid not in watched:
                    self._read(s, child, watched, count_children=False)
        self.watched = watched
        return s

    def _read(self, s: Sample, proc: Any, watched: dict[int, str], count_children: bool = True) -> list[Any] | None:
        """Add one process's series; returns its children, or None when it vanished."""
        if len(watched) >= self.max_processes:
            s.dropped["pid"] += 1
            return None
        try:
            with proc.oneshot():
                name = (proc.name() or "?")[:MAX_VALUE_LENGTH]
                times, memory, threads = proc.cpu_times(), proc.memory_info(), proc.num_threads()
                fds = proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()
            kids = proc.children(recursive=True) if count_children else []
        except self.ps.NoSuchProcess:  # exited between listing and reading: nothing to report
            return None
        except self.ps.AccessDenied:
            s.error("AccessDenied")
            return None
        labels = (str(proc.pid), name)
        watched[proc.pid] = name
        s.add(cat.PROCESS_CPU, labels + ("user",), times.user)
        s.add(cat.PROCESS_CPU, labels + ("system",), times.system)
        s.add(cat.PROCESS_RSS, labels, memory.rss)
        s.add(cat.PROCESS_THREADS, labels, threads)
        s.add(cat.PROCESS_FDS, labels, fds)
        if count_children:
            s.add(cat.PROCESS_CHILDREN, labels, len(kids))
        return kids
