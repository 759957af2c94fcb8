"""A record's one timestamp: whole microseconds, rounded once, shared by the line's ``ts`` and Loki's entry.

``record.created`` is a float. Its fraction of a second is a multiple of 2⁻²¹ s
(any time before 2106), so ``fraction * 1e6`` is exact and ``round()`` gives
the microsecond nearest to the float's exact value (half to even), with the
carry into the next second that truncation never needed.
"""
from __future__ import annotations

import time


def record_time_us(created: float) -> int:
    """``created`` (float Unix seconds) as integer microseconds, rounded to nearest."""
    second = int(created)
    return second * 1_000_000 + round((created - second) * 1e6)


def record_time_ns(created: float) -> int:
    """The same instant as :func:`record_time_us`, in the nanoseconds Loki's push API takes."""
    return record_time_us(created) * 1000


class Clock:
    """RFC 3339 UTC text of :func:`record_time_us`, formatting the date part once per second."""

    __slots__ = ("_second", "_prefix")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format(self, created: float) -> str:
        second, micros = divmod(record_time_us(created), 1_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{micros:06d}Z"
