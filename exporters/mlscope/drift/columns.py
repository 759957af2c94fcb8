"""Turn user input (data frames, column mappings, 2-D arrays, rows) into typed numpy columns.

Numeric columns become float64 arrays (NaN = missing) with a mask of values of
the wrong type; categorical columns become arrays of category keys (strings)
with masks of missing and unusable values. Only ``object`` columns need a
Python-level pass per element; numeric dtypes and data frames do not.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_UNUSABLE = (list, tuple, dict, set, np.ndarray, bytes, bytearray)


class Missing:
    """Sentinel of an absent value (a feature missing from a row)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()
WRONG_TYPE = object()


def is_frame(data: Any) -> bool:
    """Duck-typed pandas (or pandas-like) data frame."""
    return hasattr(data, "columns") and hasattr(data, "iloc") and not isinstance(data, np.ndarray)


def _frame_column(series: Any) -> np.ndarray:
    if isinstance(series.dtype, np.dtype):  # numpy-backed: a (possibly strided) view, made contiguous once
        return np.ascontiguousarray(series.to_numpy())
    if getattr(series.dtype, "kind", "O") in "iufb":  # nullable pandas numeric dtypes: NA becomes NaN
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.asarray(series.to_numpy())


def column_names(data: Any, columns: Sequence[str] | None = None) -> list[str]:
    """The column names of a table: a data frame's or a mapping's own, else ``columns`` (a 2-D array's)."""
    if is_frame(data) or isinstance(data, Mapping):
        return [str(c) for c in (data.columns if is_frame(data) else data.keys())]
    if columns is None:
        raise ValueError("pass `columns` (the feature names, in order) with a 2-D array")
    return [str(c) for c in columns]


def as_columns(data: Any, names: Sequence[str]) -> tuple[dict[str, np.ndarray], list[str], int]:
    """``(columns found among names, unknown column names, rows)`` of a batch.

    ``data`` is a data frame, a mapping of column name -> 1-D array, or a 2-D
    array whose columns are ``names`` in order. Raises ``ValueError`` when the
    shape is unusable (different column lengths, wrong width, not 2-D).
    """
    if is_frame(data):
        wanted = set(names)
        columns = {str(c): _frame_column(data[c]) for c in data.columns if str(c) in wanted}
        unknown = [str(c) for c in data.columns if str(c) not in wanted]
        return columns, unknown, len(data)
    if isinstance(data, Mapping):
        wanted = set(names)
        columns = {str(k): np.asarray(v) for k, v in data.items() if str(k) in wanted}
        unknown = [str(k) for k in data if str(k) not in wanted]
        lengths = {c.shape[0] if c.ndim == 1 else -1 for c in columns.values()}
        if len(lengths) > 1 or -1 in lengths:
            raise ValueError("columns must be 1-D and of equal length")
        return columns, unknown, lengths.pop() if lengths else 0
    array = np.asarray(data)
    if array.ndim != 2 or array.shape[1] != len(names):
        raise ValueError(f"a 2-D array with {len(names)} columns (the profile's features, in order) is expected, "
                         f"got shape {array.shape}")
    by_position = _column_major(array)
    return {name: by_position[j] for j, name in enumerate(names)}, [], array.shape[0]


def _column_major(array: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """The columns of a 2-D array as contiguous rows: a row-major array is transposed in cache-sized
    blocks (2x faster than one big transpose; every later pass over a column then reads contiguous
    memory instead of striding through the whole matrix)."""
    if array.flags.f_contiguous or array.shape[0] <= block:
        return np.transpose(array)
    out = np.empty(array.shape[::-1], dtype=array.dtype)
    for start in range(0, array.shape[0], block):
        out[:, start:start + block] = array[start:start + block].T
    return out


def number_or_nan(value: Any) -> tuple[float, bool]:
    """``(value as float, wrong_type)``; missing values give NaN, unusable ones NaN and True."""
    if value is None or value is MISSING:
        return math.nan, False
    if isinstance(value, numbers.Real):  # int, float, bool, numpy scalars
        return float(value), False
    return math.nan, True


def numeric_column(column: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(float64 values, wrong-type mask or None)``; NaN marks missing (and wrong-type) values."""
    kind = column.dtype.kind
    if kind in "fiub":
        return column.astype(np.float64, copy=False), None
    if kind != "O":  # strings, dates...: nothing numeric in there
        return np.full(column.shape[0], np.nan), np.ones(column.shape[0], dtype=bool)
    pairs = [number_or_nan(v) for v in column.tolist()]  # object columns only: values are Python objects
    values = np.fromiter((p[0] for p in pairs), dtype=np.float64, count=len(pairs))
    wrong = np.fromiter((p[1] for p in pairs), dtype=bool, count=len(pairs))
    return values, (wrong if wrong.any() else None)


def category_key(value: Any) -> Any:
    """The category string of one value, ``MISSING`` (None, NaN, absent) or ``WRONG_TYPE`` (unhashable...)."""
    if type(value) is str:
        return value
    if value is None or value is MISSING:
        return MISSING
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING if math.isnan(value) else WRONG_TYPE
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, _UNUSABLE) or not isinstance(value, numbers.Number):
        return WRONG_TYPE
    return str(value)


def category_column(column: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(category keys as a str array, missing mask, wrong-type mask or None)`` of a column."""
    n = column.shape[0]
    kind = column.dtype.kind
    if kind in "US":
        return column.astype(str), np.zeros(n, dtype=bool), None
    if kind == "b":
        return np.where(column, "True", "False"), np.zeros(n, dtype=bool), None
    if kind in "iu":
        return column.astype(str), np.zeros(n, dtype=bool), None
    if kind == "f":
        values = column.astype(np.float64, copy=False)
        missing = np.isnan(values)
        wrong = np.isinf(values)
        finite = ~(missing | wrong)
        keys = np.empty(n, dtype=object)
        safe = np.where(finite, values, 0.0)
        integral = finite & (safe == np.floor(safe)) & (np.abs(safe) < 2.0**53)
        keys[integral] = values[integral].astype(np.int64).astype(str)
        other = finite & ~integral
        keys[other] = [repr(v) for v in values[other].tolist()]
        keys[~finite] = ""
        return keys.astype(str), missing, (wrong if wrong.any() else None)
    found = [category_key(v) for v in column.tolist()]  # object columns: Python objects already
    missing = np.fromiter((k is MISSING for k in found), dtype=bool, count=n)
    wrong = np.fromiter((k is WRONG_TYPE for k in found), dtype=bool, count=n)
    keys = np.array([k if isinstance(k, str) else "" for k in found], dtype=str) if n else np.empty(0, dtype=str)
    return keys, missing, (wrong if wrong.any() else None)
