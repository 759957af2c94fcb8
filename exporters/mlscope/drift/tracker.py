"""Streaming drift and data-quality counts of one model version against its reference profile.

Per prediction: for each feature one dictionary look-up, a type check, one
``bisect`` into the feature's fine edges (or one dict look-up of its category)
and list increments, under one lock per row: O(features), nothing else.
Batches are counted column by column with ``searchsorted`` + ``bincount``, no
Python loop per row. Counts of both paths are summed at scrape time
(:mod:`mlscope.drift.collector`). Each numeric feature also keeps its last
``window_size`` values in a ring for the exact in-process statistics (computed off the
scrape path, :mod:`mlscope.drift.snapshots`).
"""
from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .columns import MISSING, WRONG_TYPE, as_columns, category_column, category_key, number_or_nan, numeric_column
from .profile import CategoricalFeature, Feature, NumericFeature, ReferenceProfile

ISSUES = ("missing", "infinite", "out_of_range", "wrong_type", "new_category")
MISSING_I, INFINITE_I, OUT_OF_RANGE_I, WRONG_TYPE_I, NEW_CATEGORY_I = range(len(ISSUES))
NUMERIC_ISSUES = ISSUES[:4]
CATEGORICAL_ISSUES = ("missing", "wrong_type", "new_category")
N_ISSUES = len(ISSUES)
DEFAULT_WINDOW = 2000
DEFAULT_SNAPSHOT_INTERVAL_S = 10.0  # how often the exact snapshot of the ring is recomputed, at most
_INF = math.inf
_NONE = np.empty(0)


class Ring:
    """The last ``size`` values of one feature (a Python list: cheap single writes)."""

    __slots__ = ("buf", "pos", "filled", "size", "writes")

    def __init__(self, size: int) -> None:
        self.buf: list[float] = [0.0] * size
        self.pos = 0
        self.filled = 0
        self.size = size
        self.writes = 0

    def extend(self, values: np.ndarray) -> None:
        tail = values[-self.size:].tolist()
        k = len(tail)
        first = min(k, self.size - self.pos)
        self.buf[self.pos:self.pos + first] = tail[:first]
        if k > first:
            self.buf[:k - first] = tail[first:]
        self.pos = (self.pos + k) % self.size
        self.filled = min(self.size, self.filled + k)
        self.writes += k

    def values(self) -> np.ndarray:
        return np.asarray(self.buf[:self.filled], dtype=np.float64)


@dataclass
class _Spec:
    """What the hot path needs of one feature, precomputed."""

    feature: Feature
    index: int                 # position among the tracked features
    offset: int                # first bin in the flat count arrays
    n_bins: int
    numeric: bool
    edges: list[float]         # numeric: fine edges
    lo: float
    hi: float
    ring: Ring | None
    categories: dict[str, int]  # categorical: category -> bin
    other: int
    known: frozenset[str] | None
    fine_to_psi: np.ndarray     # numeric: PSI bin of each fine bin
    sample: np.ndarray          # numeric: the reference sample for the exact statistics


def _spec(feature: Feature, index: int, offset: int, window: int) -> _Spec:
    if isinstance(feature, NumericFeature):
        lo = feature.min if feature.min is not None else -_INF
        hi = feature.max if feature.max is not None else _INF
        ring = Ring(window) if feature.sample and window > 0 else None
        return _Spec(feature, index, offset, len(feature.fine_edges) + 1, True, list(feature.fine_edges),
                     lo, hi, ring, {}, 0, None, feature.fine_to_psi(), np.asarray(feature.sample))
    assert isinstance(feature, CategoricalFeature)
    return _Spec(feature, index, offset, len(feature.bins), False, [], 0.0, 0.0, None,
                 {c: i for i, c in enumerate(feature.categories)}, len(feature.categories),
                 None if feature.known is None else frozenset(feature.known), _NONE, _NONE)


class DriftTracker:
    """Counts of one model version's features (and output) in its reference profile's bins.

    ``invalid(reason, count)`` is called for input that cannot be attributed to a
    profile feature (unknown features, empty or misshapen batches).
    """

    def __init__(self, profile: ReferenceProfile, model: str, model_version: str,
                 invalid: Callable[[str, int], None], window_size: int = DEFAULT_WINDOW,
                 snapshot_interval: float = DEFAULT_SNAPSHOT_INTERVAL_S) -> None:
        if not snapshot_interval > 0:
            raise ValueError(f"snapshot_interval must be > 0 seconds, got {snapshot_interval!r}")
        self.profile = profile
        self.snapshot_interval = float(snapshot_interval)
        self.model = model
        self.model_version = model_version
        self._invalid = invalid
        self.active = True
        self.last_used = time.monotonic()
        tracked = list(profile.features) + ([profile.output] if profile.output is not None else [])
        self.specs: list[_Spec] = []
        offset = 0
        for i, feature in enumerate(tracked):
            self.specs.append(_spec(feature, i, offset, window_size))
            offset += self.specs[-1].n_bins
        self.feature_specs = self.specs[:len(profile.features)]
        self.output_spec = self.specs[-1] if profile.output is not None else None
        self.names = [s.feature.name for s in self.feature_specs]
        self._position = {name: i for i, name in enumerate(self.names)}
        n = len(self.specs)
        self._lock = threading.Lock()
        # Single-row path: Python lists (cheap increments). Batch path: numpy arrays.
        self._bins1 = [0] * offset
        self._issues1 = [0] * (n * N_ISSUES)
        self._obs1 = [0] * n
        self._sums1 = [0.0] * n
        self._bins = np.zeros(offset, dtype=np.int64)
        self._issues = np.zeros(n * N_ISSUES, dtype=np.int64)
        self._obs = np.zeros(n, dtype=np.int64)
        self._sums = np.zeros(n, dtype=np.float64)

    # -- single rows ----------------------------------------------------------------------------

    def record_row(self, row: Mapping[str, Any] | Sequence[Any] | np.ndarray) -> None:
        """Count one row: a mapping name -> value, or a sequence in the profile's feature order."""
        if not self.active:
            self._invalid("drift_version_not_serving", 1)
            return
        self.last_used = time.monotonic()
        if isinstance(row, Mapping):
            get = row.get
            values = [get(name, MISSING) for name in self.names]
            extra = len(row) - sum(1 for v in values if v is not MISSING)
            if extra > 0:
                self._invalid("feature_unknown", extra)
        else:
            values = row.tolist() if isinstance(row, np.ndarray) else list(row)
            if len(values) != len(self.names):
                self._invalid("row_length_mismatch", 1)
                return
        with self._lock:
            self._count(self.feature_specs, values)

    def record_output(self, value: Any) -> None:
        """Count one model output (score, value or class) into the ``__prediction__`` bins."""
        if self.output_spec is None or not self.active:
            return
        with self._lock:
            self._count((self.output_spec,), (value,))

    def output_of(self, task: str, output: Any, score: Any) -> Any:
        """What feeds ``__prediction__``: a classifier's score when the profiled output was numeric
        (scores), else the output itself (class label or regression value); None without an output profile."""
        spec = self.output_spec
        if spec is None:
            return None
        return score if spec.numeric and task == "classification" else output

    def _count(self, specs: Sequence[_Spec], values: Sequence[Any]) -> None:
        bins, issues, obs, sums = self._bins1, self._issues1, self._obs1, self._sums1
        for spec, value in zip(specs, values, strict=False):
            j = spec.index
            obs[j] += 1
            base = j * N_ISSUES
            if spec.numeric:
                kind = type(value)
                if kind is float or kind is int:
                    x = float(value)
                elif value is MISSING or value is None:
                    issues[base + MISSING_I] += 1
                    continue
                else:
                    x, wrong = number_or_nan(value)
                    if wrong:
                        issues[base + WRONG_TYPE_I] += 1
                        continue
                if x != x:
                    issues[base + MISSING_I] += 1
                    continue
                if x == _INF or x == -_INF:
                    issues[base + INFINITE_I] += 1
                    continue
                bins[spec.offset + bisect_left(spec.edges, x)] += 1
                sums[j] += x
                if x < spec.lo or x > spec.hi:
                    issues[base + OUT_OF_RANGE_I] += 1
                ring = spec.ring
                if ring is not None:
                    ring.buf[ring.pos] = x
                    ring.pos = (ring.pos + 1) % ring.size
                    ring.writes += 1
                    if ring.filled < ring.size:
                        ring.filled += 1
            else:
                key = value if type(value) is str else category_key(value)
                if key is MISSING:
                    issues[base + MISSING_I] += 1
                    continue
                if key is WRONG_TYPE:
                    issues[base + WRONG_TYPE_I] += 1
                    continue
                i = spec.categories.get(key)
                if i is None:
                    i = spec.other
                    if spec.known is not None and key not in spec.known:
                        issues[base + NEW_CATEGORY_I] += 1
                bins[spec.offset + i] += 1

    # -- batches --------------------------------------------------------------------------------

    def record_batch(self, data: Any) -> None:
        """Count a batch: a data frame, a mapping of columns, or a 2-D array in the profile's order."""
        if not self.active:
            self._invalid("drift_version_not_serving", 1)
            return
        self.last_used = time.monotonic()
        try:
            columns, unknown, rows = as_columns(data, self.names)
        except ValueError:
            self._invalid("batch_shape_mismatch", 1)
            return
        if rows == 0:
            self._invalid("batch_empty", 1)
            return
        if unknown:
            self._invalid("feature_unknown", len(unknown) * rows)
        parts = [_count_column(spec, columns.get(spec.feature.name), rows) for spec in self.feature_specs]
        with self._lock:
            for spec, part in zip(self.feature_specs, parts, strict=True):
                self._add(spec, part, rows)

    def record_outputs(self, values: Any) -> None:
        """Count a batch of model outputs into the ``__prediction__`` bins."""
        spec = self.output_spec
        if spec is None or not self.active:
            return
        column = np.asarray(values)
        if column.ndim != 1 or column.shape[0] == 0:
            return
        part = _count_column(spec, column, column.shape[0])
        with self._lock:
            self._add(spec, part, column.shape[0])

    def _add(self, spec: _Spec, part: _Counted, rows: int) -> None:
        self._bins[spec.offset:spec.offset + spec.n_bins] += part.bins
        base = spec.index * N_ISSUES
        self._issues[base:base + N_ISSUES] += part.issues
        self._obs[spec.index] += rows
        self._sums[spec.index] += part.total
        if spec.ring is not None and part.values is not None and part.values.size:
            spec.ring.extend(part.values)

    # -- reading --------------------------------------------------------------------------------

    def snapshot(self) -> Counts:
        """A consistent copy of every count (both paths summed), for one scrape (no recent values)."""
        with self._lock:
            return Counts(self._bins + np.asarray(self._bins1, dtype=np.int64),
                          (self._issues + np.asarray(self._issues1, dtype=np.int64)).reshape(-1, N_ISSUES),
                          self._obs + np.asarray(self._obs1, dtype=np.int64),
                          self._sums + np.asarray(self._sums1))

    def recent_values(self, seen: Mapping[int, int]) -> dict[int, tuple[int, np.ndarray]]:
        """``index -> (writes, last values)`` of each ring written since ``seen[index]`` writes."""
        with self._lock:
            return {s.index: (s.ring.writes, s.ring.values()) for s in self.specs
                    if s.ring is not None and s.ring.writes != seen.get(s.index)}


@dataclass
class Counts:
    bins: np.ndarray
    issues: np.ndarray      # [feature, issue]
    observations: np.ndarray
    sums: np.ndarray


@dataclass
class _Counted:
    bins: np.ndarray
    issues: np.ndarray
    total: float
    values: np.ndarray | None


def _count_column(spec: _Spec, column: np.ndarray | None, rows: int) -> _Counted:
    """Bin counts and issue counts of one column (vectorised)."""
    issues = np.zeros(N_ISSUES, dtype=np.int64)
    if column is None:
        issues[MISSING_I] = rows
        return _Counted(np.zeros(spec.n_bins, dtype=np.int64), issues, 0.0, None)
    if spec.numeric:
        values, wrong = numeric_column(column)
        finite = np.isfinite(values)
        present = values
        if not finite.all():
            nan = np.isnan(values)
            issues[INFINITE_I] = rows - np.count_nonzero(finite) - np.count_nonzero(nan)
            if wrong is not None:
                issues[WRONG_TYPE_I] = np.count_nonzero(wrong)
            issues[MISSING_I] = np.count_nonzero(nan) - issues[WRONG_TYPE_I]
            present = values[finite]
        index = np.searchsorted(np.asarray(spec.edges), present, side="left")
        issues[OUT_OF_RANGE_I] = np.count_nonzero(present < spec.lo) + np.count_nonzero(present > spec.hi)
        return _Counted(np.bincount(index, minlength=spec.n_bins), issues, float(present.sum()), present)
    keys, missing, wrong = category_column(column)
    issues[MISSING_I] = np.count_nonzero(missing)
    usable = ~missing
    if wrong is not None:
        issues[WRONG_TYPE_I] = np.count_nonzero(wrong)
        usable &= ~wrong
    uniques, inverse = np.unique(keys[usable], return_inverse=True)
    lookup = np.array([spec.categories.get(u, spec.other) for u in uniques.tolist()], dtype=np.int64)
    counts = np.bincount(lookup[inverse], minlength=spec.n_bins) if inverse.size else \
        np.zeros(spec.n_bins, dtype=np.int64)
    if spec.known is not None:
        new = np.array([u not in spec.known for u in uniques.tolist()], dtype=bool)
        issues[NEW_CATEGORY_I] = int(np.count_nonzero(new[inverse])) if inverse.size else 0
    return _Counted(counts, issues, 0.0, None)
