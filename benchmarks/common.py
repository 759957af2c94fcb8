"""Shared pieces of the benchmark suites: a result row and a timer."""
from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    suite: str
    case: str
    value: float
    unit: str
    reference: str = ""
    reference_value: float | None = None
    target: str = ""

    @property
    def ratio(self) -> str:
        if not self.reference_value:
            return ""
        return f"{self.value / self.reference_value:.2f}x"


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Median microseconds per call over ``repeat`` runs of ``number`` calls."""
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


