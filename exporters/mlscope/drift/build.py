"""Build a reference profile from a training or validation set (numpy, data frames, CSV, Parquet).

Everything is vectorised per column: 1M rows x 50 features take seconds. Thresholds
are calibrated the way NannyML does it: the reference is cut into consecutive
chunks of about the size a production window holds, each chunk is compared with
the whole reference, and the threshold is mean + ``sigmas`` standard deviations
of the chunk statistics.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import stats
from .calibrate import fit_calibration
from .columns import as_columns, category_column, is_frame, numeric_column
from .profile import (
    CATEGORICAL,
    NUMERIC,
    OTHER,
    PREDICTION,
    CategoricalFeature,
    Feature,
    NumericFeature,
    ProfileError,
    ReferenceProfile,
)

DEFAULTS: dict[str, Any] = {
    "psi_bins": 10,           # quantile bins for PSI, JS and chi-square
    "fine_bins": 20,          # quantile bins for KS (a multiple of psi_bins: PSI edges are fine edges)
    "top_k": 20,              # categories kept per categorical feature (the rest is __other__)
    "sample_size": 1000,      # reference values kept per numeric feature for exact KS / Wasserstein
    "chunk_size": 5000,       # rows per calibration chunk: what one production window is expected to hold
    "threshold_sigmas": 3.0,  # threshold = mean + sigmas * std of the chunk statistics
    "known_categories": 1000,  # categories listed for new-category detection (beyond: not detected)
}
MIN_CHUNKS = 10
MIN_CHUNK_ROWS = 20
MAX_CATEGORY_LENGTH = 100


def build_profile(data: Any, *, model: str, model_version: str, columns: Sequence[str] | None = None,
                  output: Any = None, output_kind: str = "auto", categorical: Collection[str] = (),
                  source_hash: str | None = None, labels: Any = None, proba: Any = None, classes: Any = None,
                  seed: int = 0, **settings: Any) -> ReferenceProfile:
    """Profile every column of ``data`` (a data frame, a mapping of columns, or a 2-D array with ``columns``).

    ``output`` is the model's output on the same rows; it is profiled as ``__prediction__``:
    floats (scores, regression values) as numeric, integers, strings and booleans (class labels) as
    categorical, unless ``output_kind`` is ``"numeric"`` or ``"categorical"``. Columns of numeric
    dtype are numeric unless listed in ``categorical``; other dtypes are categorical. ``settings``
    override :data:`DEFAULTS`.

    ``labels`` and ``proba`` (the true classes and the model's ``predict_proba`` on labelled rows it was
    not trained on, columns in ``classes`` order, by default the sorted labels) fit the calibration that
    confidence-based estimates use (:func:`mlscope.drift.calibrate.fit_calibration`).
    """
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown profile settings: {sorted(unknown)}")
    cfg = {**DEFAULTS, **settings}
    if cfg["psi_bins"] < 2 or cfg["fine_bins"] % cfg["psi_bins"]:
        raise ProfileError("fine_bins must be a multiple of psi_bins (>= 2), so PSI edges are also fine edges")
    if is_frame(data) or isinstance(data, Mapping):
        names = [str(c) for c in (data.columns if is_frame(data) else data.keys())]
    elif columns is None:
        raise ProfileError("pass `columns` (the feature names, in order) with a 2-D array")
    else:
        names = [str(c) for c in columns]
    found, _, rows = as_columns(data, names)
    if rows == 0:
        raise ProfileError("cannot build a reference profile from zero rows")
    cfg["chunk_size"] = min(int(cfg["chunk_size"]), rows // MIN_CHUNKS)
    rng = np.random.default_rng(seed)
    features = tuple(_profile_column(name, found[name], name in categorical, cfg, rng) for name in names)
    out = None
    if output is not None:
        values = np.asarray(output)
        if values.ndim != 1 or values.shape[0] != rows:
            raise ProfileError(f"output must be 1-D with one value per row ({rows}), got shape {values.shape}")
        if output_kind not in ("auto", NUMERIC, CATEGORICAL):
            raise ProfileError(f"output_kind must be 'auto', 'numeric' or 'categorical', got {output_kind!r}")
        as_category = output_kind == CATEGORICAL or (output_kind == "auto" and values.dtype.kind != "f")
        out = _profile_column(PREDICTION, values, as_category, cfg, rng)
    if (labels is None) != (proba is None):
        raise ProfileError("pass both `labels` and `proba` (the labelled predictions to calibrate on), or neither")
    calibration = None if labels is None else fit_calibration(proba, labels, classes, seed=seed)
    return ReferenceProfile(
        model=model, model_version=model_version, features=features, output=out, rows=rows,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        source_hash=source_hash or array_hash(found, names), settings=cfg, calibration=calibration)


def _profile_column(name: str, column: np.ndarray, force_categorical: bool, cfg: Mapping[str, Any],
                    rng: np.random.Generator) -> Feature:
    if force_categorical or column.dtype.kind not in "fiu":
        return _categorical(name, column, cfg)
    return _numeric(name, column, cfg, rng)


def _numeric(name: str, column: np.ndarray, cfg: Mapping[str, Any], rng: np.random.Generator) -> NumericFeature:
    values, _ = numeric_column(column)
    present = np.isfinite(values)
    v = values if present.all() else values[present]
    rows = values.shape[0]
    missing_ratio = float(1.0 - v.size / rows)
    if v.size == 0:
        return NumericFeature(name, (), (), (1.0,), (), None, None, None, None, missing_ratio, rows)
    fine_q = np.quantile(v, np.arange(1, cfg["fine_bins"]) / cfg["fine_bins"])
    step = cfg["fine_bins"] // cfg["psi_bins"]
    fine_edges = np.unique(fine_q)
    psi_edges = np.unique(fine_q[step - 1::step])
    fine_index = np.searchsorted(fine_edges, v, side="left")
    to_psi = _fine_to_psi(psi_edges, fine_edges)
    fine_counts = np.bincount(fine_index, minlength=fine_edges.size + 1)
    psi_counts = np.bincount(to_psi, weights=fine_counts, minlength=psi_edges.size + 1)
    ref_bins, ref_cdf = stats.proportions(psi_counts), stats.cumulative(fine_counts)
    chunks = _chunk_counts(np.flatnonzero(present), fine_index, fine_edges.size + 1, rows, cfg["chunk_size"])
    thresholds = {}
    if chunks is not None:
        psi_chunks = np.stack([np.bincount(to_psi, weights=c, minlength=psi_edges.size + 1) for c in chunks])
        thresholds = _thresholds(cfg, {
            "psi": stats.psi(stats.proportions(psi_chunks), ref_bins),
            "js_distance": stats.js_distance(stats.proportions(psi_chunks), ref_bins),
            "ks": stats.ks_on_edges(stats.cumulative(chunks), ref_cdf),
        })
    sample = rng.choice(v, size=min(int(cfg["sample_size"]), v.size), replace=False)
    return NumericFeature(
        name, tuple(psi_edges.tolist()), tuple(fine_edges.tolist()), tuple(ref_bins.tolist()),
        tuple(ref_cdf.tolist()), float(v.min()), float(v.max()), float(v.mean()), float(v.std()),
        missing_ratio, rows, sample=tuple(sample.tolist()), thresholds=thresholds)


def _fine_to_psi(psi_edges: np.ndarray, fine_edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(psi_edges, np.append(fine_edges, np.inf), side="left")


def _categorical(name: str, column: np.ndarray, cfg: Mapping[str, Any]) -> CategoricalFeature:
    keys, missing, wrong = category_column(column)
    usable = ~missing if wrong is None else ~(missing | wrong)
    rows = keys.shape[0]
    uniques, inverse, counts = np.unique(keys[usable], return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    top = [str(uniques[i]) for i in order if len(uniques[i]) <= MAX_CATEGORY_LENGTH and uniques[i] != OTHER]
    top = top[:int(cfg["top_k"])]
    index = {c: i for i, c in enumerate(top)}
    lookup = np.array([index.get(str(u), len(top)) for u in uniques.tolist()], dtype=np.int64)
    bins = lookup[inverse] if inverse.size else np.empty(0, dtype=np.int64)
    ref_counts = np.bincount(bins, minlength=len(top) + 1)
    ref_bins = stats.proportions(ref_counts)
    thresholds = {}
    chunks = _chunk_counts(np.flatnonzero(usable), bins, len(top) + 1, rows, cfg["chunk_size"])
    if chunks is not None:
        shares = stats.proportions(chunks)
        thresholds = _thresholds(cfg, {"psi": stats.psi(shares, ref_bins),
                                       "js_distance": stats.js_distance(shares, ref_bins)})
    known = tuple(str(u) for u in uniques.tolist()) if uniques.size <= cfg["known_categories"] else None
    return CategoricalFeature(name, tuple(top), tuple(ref_bins.tolist()), known,
                              float(1.0 - np.count_nonzero(usable) / rows) if rows else 0.0, rows,
                              thresholds=thresholds)


def _chunk_counts(rows_of_values: np.ndarray, bins: np.ndarray, n_bins: int, rows: int,
                  chunk_size: int) -> np.ndarray | None:
    """Bin counts per consecutive chunk of ``chunk_size`` rows (incomplete last chunk dropped), or None."""
    if chunk_size < MIN_CHUNK_ROWS:
        return None
    n_chunks = rows // chunk_size
    chunk = rows_of_values // chunk_size
    keep = chunk < n_chunks
    flat = np.bincount(chunk[keep] * n_bins + bins[keep], minlength=n_chunks * n_bins)
    counts = flat.reshape(n_chunks, n_bins)
    counts = counts[counts.sum(axis=1) > 0]
    return counts if counts.shape[0] >= 2 else None


def _thresholds(cfg: Mapping[str, Any], values: Mapping[str, np.ndarray]) -> dict[str, float]:
    sigmas = float(cfg["threshold_sigmas"])
    return {k: float(v.mean() + sigmas * v.std()) for k, v in values.items()}


def array_hash(columns: Mapping[str, np.ndarray], names: Sequence[str]) -> str:
    """``sha256:<hex>`` of the columns' names, dtypes and bytes (for data that did not come from a file)."""
    digest = hashlib.sha256()
    for name in names:
        column = np.ascontiguousarray(columns[name])
        digest.update(f"{name}\0{column.dtype.str}\0".encode())
        digest.update(column.tobytes() if column.dtype.kind != "O" else repr(column.tolist()).encode())
    return "sha256:" + digest.hexdigest()


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> tuple[Any, list[str]]:
    """Read a CSV or Parquet file (pandas/pyarrow: the ``data`` extra) or a ``.npy`` 2-D array.

    Returns ``(data, column names)``; ``.npy`` columns are named by ``columns`` or ``f0, f1...``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim != 2:
            raise ProfileError(f"{path}: a 2-D array is expected, got shape {array.shape}")
        names = list(columns) if columns else [f"f{i}" for i in range(array.shape[1])]
        if len(names) != array.shape[1]:
            raise ProfileError(f"{path}: {array.shape[1]} columns but {len(names)} names")
        return {n: array[:, i] for i, n in enumerate(names)}, names
    try:
        import pandas as pd
    except ImportError as exc:
        raise ProfileError("reading CSV/Parquet needs pandas: pip install 'mlscope[data]'") from exc
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path, columns=list(columns) if columns else None)
    elif suffix in (".csv", ".gz", ".tsv"):
        frame = pd.read_csv(path, usecols=list(columns) if columns else None,
                            sep="\t" if suffix == ".tsv" else ",")
    else:
        raise ProfileError(f"{path}: unsupported file type {suffix!r} (use .csv, .tsv, .parquet or .npy)")
    return frame, [str(c) for c in frame.columns]


__all__ = ["DEFAULTS", "build_profile", "read_table", "file_hash", "array_hash", "NUMERIC", "CATEGORICAL"]
