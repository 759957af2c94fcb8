"""THE training-data fingerprint: one function, whatever records it.

A reference profile's ``source_hash`` (``build_profile``, ``mlscope reference build``), a training run's
fingerprint (:class:`mlscope.pipelines.TrainingRun`) and the ``training_data_fingerprint`` label of
``mlscope_model_info`` are all :func:`training_data_fingerprint` of the same training set, so a model
version's info series, its profile and its training run name the same data.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .columns import as_columns, column_names

PREFIX = "sha256:"


def training_data_fingerprint(data: Any, columns: Sequence[str] | None = None) -> str:
    """``sha256:<hex>`` of a training set.

    ``data`` is a path (CSV, Parquet, ``.npy``...: the file's bytes are hashed, so the fingerprint is the
    file's, however it is read), or a table: a data frame, a mapping of columns, or a 2-D array with
    ``columns`` (the column names, dtypes and bytes are hashed, in column order).
    """
    if isinstance(data, (str, os.PathLike)):
        return file_hash(data)
    names = column_names(data, columns)
    found, _, _ = as_columns(data, names)
    return array_hash(found, names)


def array_hash(columns: Mapping[str, np.ndarray], names: Sequence[str]) -> str:
    """``sha256:<hex>`` of the columns' names, dtypes and bytes (for data that did not come from a file)."""
    digest = hashlib.sha256()
    for name in names:
        column = np.ascontiguousarray(columns[name])
        digest.update(f"{name}\0{column.dtype.str}\0".encode())
        digest.update(column.tobytes() if column.dtype.kind != "O" else repr(column.tolist()).encode())
    return PREFIX + digest.hexdigest()


def file_hash(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return PREFIX + digest.hexdigest()
