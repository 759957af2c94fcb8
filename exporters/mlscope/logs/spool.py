"""A bounded FIFO of encoded push bodies: in memory first, spilled to disk files when Loki is slow or down.

Order is strict: a new batch goes to disk whenever something is already on
disk, so the sender always pushes the oldest batch first and per-stream
timestamps stay in order across an outage. Files written before a restart are
picked up by the next process using the same directory (one directory per
process: a lock file enforces it). When the disk bound is reached the oldest
batch is dropped and counted.
"""
from __future__ import annotations

import fcntl
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DropCallback = Callable[[int, str], None]  # (lines, reason)


@dataclass(eq=False)
class Batch:
    """One push body and the number of log lines in it; ``path`` is set once it lives on disk."""

    seq: int
    lines: int
    body: bytes | None
    path: Path | None = None
    size: int = 0


class SpoolLockedError(RuntimeError):
    """Another live process uses this spool directory."""


class Spool:
    def __init__(self, directory: str | Path | None, *, memory_bytes: int, disk_bytes: int,
                 on_drop: DropCallback, suffix: str = "json") -> None:
        self._memory: deque[Batch] = deque()
        self._disk: deque[Batch] = deque()
        self.memory_bytes_max = memory_bytes
        self.disk_bytes_max = disk_bytes
        self._memory_bytes = 0
        self._disk_bytes = 0
        self._on_drop = on_drop
        self._suffix = suffix
        self._lock = threading.Condition()
        self._seq = itertools.count(1)
        self._lock_file: int | None = None
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self._open(self.directory)

    # -- disk ---------------------------------------------------------------------------------------

    def _open(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpoolLockedError(f"spool directory {directory} is in use by another handler or process; "
                                   "give each one its own directory") from None
        self._lock_file = fd
        found = []
        for path in directory.glob(f"*.{self._suffix}"):
            try:
                seq, lines = (int(part) for part in path.stem.split("-"))
                found.append(Batch(seq, lines, None, path, path.stat().st_size))
            except (ValueError, OSError):
                continue  # not ours, or half-written (temporary names have another suffix)
        found.sort(key=lambda b: b.seq)
        self._disk.extend(found)
        self._disk_bytes = sum(b.size for b in found)
        self._seq = itertools.count(found[-1].seq + 1 if found else 1)

    def _write(self, batch: Batch) -> None:
        assert self.directory is not None and batch.body is not None
        path = self.directory / f"{batch.seq:016d}-{batch.lines}.{self._suffix}"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(batch.body)
        os.replace(tmp, path)
        batch.path, batch.size, batch.body = path, len(batch.body), None
        self._disk.append(batch)
        self._disk_bytes += batch.size

    def _unlink(self, batch: Batch) -> None:
        if batch.path is not None:
            batch.path.unlink(missing_ok=True)

    def detach_disk(self) -> None:
        """Forget the disk (after fork: the files belong to the parent); keep working in memory."""
        self._lock = threading.Condition()  # the parent's may have been held by a thread that is gone
        with self._lock:
            self.directory, self._lock_file = None, None
            self._disk.clear()
            self._disk_bytes = 0

    # -- queue --------------------------------------------------------------------------------------

    def put(self, body: bytes, lines: int) -> None:
        """Append a batch at the tail, spilling to disk or dropping the oldest to stay within bounds."""
        batch = Batch(next(self._seq), lines, body, size=len(body))
        with self._lock:
            spill = self.directory is not None and (
                self._disk or self._memory_bytes + batch.size > self.memory_bytes_max)
            if spill:
                try:
                    self._write(batch)
                except OSError:
                    self._on_drop(lines, "spool_error")
                    return
                while self._disk_bytes > self.disk_bytes_max and len(self._disk) > 1:
                    oldest = self._disk.popleft()
                    self._disk_bytes -= oldest.size
                    self._unlink(oldest)
                    self._on_drop(oldest.lines, "spool_full")
            else:
                self._memory.append(batch)
                self._memory_bytes += batch.size
                while self._memory_bytes > self.memory_bytes_max and len(self._memory) > 1:
                    oldest = self._memory.popleft()
                    self._memory_bytes -= oldest.size
                    self._on_drop(oldest.lines, "spool_full")
            self._lock.notify_all()

    def head(self, timeout: float) -> Batch | None:
        """The oldest batch (not removed), waiting up to ``timeout`` seconds for one."""
        with self._lock:
            if not (self._memory or self._disk):
                self._lock.wait(timeout)
            if self._memory:
                return self._memory[0]
            while self._disk:
                batch = self._disk[0]
                assert batch.path is not None  # a batch is on disk once _write or _open gave it its file
                try:
                    return Batch(batch.seq, batch.lines, batch.path.read_bytes(), batch.path, batch.size)
                except OSError:
                    self._disk.popleft()
                    self._disk_bytes -= batch.size
                    self._on_drop(batch.lines, "spool_error")
            return None

    def pop(self, batch: Batch) -> bool:
        """Remove ``batch`` if it is still the head (it may have been dropped meanwhile)."""
        with self._lock:
            if self._memory and self._memory[0] is batch:
                self._memory.popleft()
                self._memory_bytes -= batch.size
                return True
            if self._disk and self._disk[0].seq == batch.seq:
                done = self._disk.popleft()
                self._disk_bytes -= done.size
                self._unlink(done)
                return True
            return False

    def persist(self) -> int:
        """Write the batches held in memory to disk (shutdown); return the lines that had to be dropped."""
        with self._lock:
            pending = list(self._memory)
            self._memory.clear()
            self._memory_bytes = 0
            if self.directory is None:
                return sum(b.lines for b in pending)
            dropped = 0
            for batch in pending:  # memory batches are older than disk ones; their seq keeps the order
                try:
                    self._write(batch)
                except OSError:
                    dropped += batch.lines
            self._disk = deque(sorted(self._disk, key=lambda b: b.seq))
            return dropped

    def close(self) -> None:
        """Release the directory lock (the files stay for the next process)."""
        with self._lock:
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None

    # -- state --------------------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not (self._memory or self._disk)

    @property
    def memory_lines(self) -> int:
        return sum(b.lines for b in list(self._memory))

    @property
    def disk_bytes(self) -> int:
        return self._disk_bytes

    @property
    def lines(self) -> int:
        return self.memory_lines + sum(b.lines for b in list(self._disk))

    def wake(self) -> None:
        with self._lock:
            self._lock.notify_all()
