"""Build a reference profile from a training or validation set (numpy, data frames, CSV, Parquet).

Everything is vectorised per column: 1M rows x 50 features take seconds. Thresholds
keep a stated false-alarm rate for windows of at least ``window_values`` values
(:mod:`mlscope.drift.calibrate`). Integer-valued features get their edges half-way
between integers, so Prometheus' right-closed ``le`` bins and numpy's left-closed
ones count the same.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import stats
from .calibrate import Calibration, categorical_statistics, chunk_counts, numeric_statistics, thresholds
from .columns import as_columns, category_column, column_names, numeric_column
from .fingerprint import array_hash, file_hash
from .proba_calibration import fit_calibration
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
    "sample_size": 1000,      # reference quantiles kept per numeric feature for exact KS / Wasserstein
    # The smallest window the thresholds hold for, and the chunk size of leave-one-chunk-out: the alerts'
    # minimum count, warmup.drift.min_count of every profile in mlscope.rules.config (a test checks they agree).
    "window_values": 100,
    "false_alarm_rate": 0.01,  # share of windows from the reference's distribution above a threshold
    "simulations": 4000,      # simulated (reference, window) pairs per feature
    "known_categories": 1000,  # categories listed for new-category detection (beyond: not detected)
}
THRESHOLD_METHOD = ("the larger of the 1 - false_alarm_rate quantiles of leave-one-chunk-out statistics (chunks "
                    "of window_values rows against the rest of the reference, with at least 1 / false_alarm_rate "
                    "chunks) and of simulated windows of window_values values drawn from the bin probabilities "
                    "the reference's counts allow (Dirichlet(counts + 1/2)), against the reference's shares")
MIN_VALUES_PER_BIN = 5  # present reference values per fine bin (or category) below which a feature is refused
MAX_CATEGORY_LENGTH = 100
INTEGER_LIMIT = 2.0 ** 52  # beyond, floats are not exact integers and k + 0.5 is not representable


def build_profile(data: Any, *, model: str, model_version: str, columns: Sequence[str] | None = None,
                  output: Any = None, output_kind: str = "auto", categorical: Collection[str] = (),
                  source_hash: str | None = None, labels: Any = None, proba: Any = None, classes: Any = None,
                  seed: int = 0, attributions: Any = None, **settings: Any) -> ReferenceProfile:
    """Profile every column of ``data`` (a data frame, a mapping of columns, or a 2-D array with ``columns``).

    ``output`` is the model's output on the same rows; it is profiled as ``__prediction__``:
    floats (scores, regression values) as numeric, integers, strings and booleans (class labels) as
    categorical, unless ``output_kind`` is ``"numeric"`` or ``"categorical"``. Columns of numeric
    dtype are numeric unless listed in ``categorical``; other dtypes are categorical. ``settings``
    override :data:`DEFAULTS`.

    ``labels`` and ``proba`` (the true classes and the model's ``predict_proba`` on labelled rows it was
    not trained on, columns in ``classes`` order, by default the sorted labels) fit the probability
    calibration that quality estimates use (:func:`mlscope.drift.proba_calibration.fit_calibration`).

    ``attributions`` (the model's attributions on reference rows: a 2-D array with one column per feature in
    column order, or a mapping of feature name to its column) stores each feature's mean absolute attribution,
    the ranking the live attributions are compared with (docs/versions.md).
    """
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown profile settings: {sorted(unknown)}")
    cfg = {**DEFAULTS, **settings}
    if cfg["psi_bins"] < 2 or cfg["fine_bins"] % cfg["psi_bins"]:
        raise ProfileError("fine_bins must be a multiple of psi_bins (>= 2), so PSI edges are also fine edges")
    try:
        names = column_names(data, columns)
    except ValueError as exc:
        raise ProfileError(str(exc)) from None
    found, _, rows = as_columns(data, names)
    if rows == 0:
        raise ProfileError("cannot build a reference profile from zero rows")
    calibration = _calibration(cfg)
    rng = np.random.default_rng(seed)
    features = tuple(_profile_column(name, found[name], name in categorical, cfg, calibration, rng)
                     for name in names)
    out = None
    if output is not None:
        values = np.asarray(output)
        if values.ndim != 1 or values.shape[0] != rows:
            raise ProfileError(f"output must be 1-D with one value per row ({rows}), got shape {values.shape}")
        if output_kind not in ("auto", NUMERIC, CATEGORICAL):
            raise ProfileError(f"output_kind must be 'auto', 'numeric' or 'categorical', got {output_kind!r}")
        as_category = output_kind == CATEGORICAL or (output_kind == "auto" and values.dtype.kind != "f")
        out = _profile_column(PREDICTION, values, as_category, cfg, calibration, rng)
    if (labels is None) != (proba is None):
        raise ProfileError("pass both `labels` and `proba` (the labelled predictions to calibrate on), or neither")
    cfg["threshold_method"] = THRESHOLD_METHOD
    cfg["leave_one_chunk_out"] = rows // calibration.window_values >= calibration.min_chunks
    profile = ReferenceProfile(
        model=model, model_version=model_version, features=features, output=out, rows=rows,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # training_data_fingerprint(data) of the same table: its inner hash, on the columns already read.
        source_hash=source_hash or array_hash(found, names), settings=cfg,
        calibration=None if labels is None else fit_calibration(proba, labels, classes, seed=seed),
        attributions=None if attributions is None else mean_abs_attributions(attributions, names))
    _refuse_too_small(features + ((out,) if out is not None else ()), cfg)
    return profile


def mean_abs_attributions(attributions: Any, names: Sequence[str]) -> dict[str, float]:
    """Mean absolute attribution per feature of a 2-D array (columns in ``names`` order) or a mapping of columns."""
    if isinstance(attributions, Mapping):
        columns = {str(k): np.asarray(v, dtype=np.float64).ravel() for k, v in attributions.items()}
    else:
        table = np.asarray(attributions, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] != len(names):
            raise ProfileError(f"attributions must be a 2-D array with one column per feature ({len(names)}), "
                               f"got shape {table.shape}")
        columns = {name: table[:, j] for j, name in enumerate(names)}
    unknown = sorted(set(columns) - set(names))
    empty = [k for k, v in columns.items() if v.size == 0]
    bad = [k for k, v in columns.items() if not np.isfinite(v).all()]
    if unknown or empty or bad:
        raise ProfileError(f"attributions: features not in the profile {unknown[:5]}, empty columns {empty[:5]}, "
                           f"NaN or infinite values in {bad[:5]}")
    return {name: float(np.mean(np.abs(column))) for name, column in columns.items()}


def _calibration(cfg: Mapping[str, Any]) -> Calibration:
    try:
        return Calibration(rate=float(cfg["false_alarm_rate"]), window_values=int(cfg["window_values"]),
                           simulations=int(cfg["simulations"]))
    except ValueError as exc:
        raise ProfileError(str(exc)) from None


def _profile_column(name: str, column: np.ndarray, force_categorical: bool, cfg: Mapping[str, Any],
                    calibration: Calibration, rng: np.random.Generator) -> Feature:
    if force_categorical or column.dtype.kind not in "fiu":
        return _categorical(name, column, cfg, calibration, rng)
    return _numeric(name, column, cfg, calibration, rng)


def is_integer_valued(values: np.ndarray) -> bool:
    """Every value is an exactly representable integer (counts, ratings, integer dtypes)."""
    return bool(values.size) and bool(np.all(np.abs(values) < INTEGER_LIMIT)) and bool(
        np.all(values == np.round(values)))


def quantile_edges(values: np.ndarray, fine_bins: int, psi_bins: int, discrete: bool) -> tuple[np.ndarray, ...]:
    """(PSI edges, fine edges): quantiles, moved to ``floor(q) + 0.5`` for integer-valued features."""
    fine_q = np.quantile(values, np.arange(1, fine_bins) / fine_bins)
    if discrete:  # between observed integers: no value is ever on an edge
        fine_q = np.floor(fine_q) + 0.5
    step = fine_bins // psi_bins
    return np.unique(fine_q[step - 1::step]), np.unique(fine_q)


def quantile_sample(ordered: np.ndarray, size: int) -> np.ndarray:
    """The ``(i + 0.5) / size`` quantiles of sorted values (numpy's ``inverted_cdf``: observed values),
    or every value when there are fewer."""
    if ordered.size <= size:
        return ordered
    index = np.ceil((np.arange(size) + 0.5) / size * ordered.size).astype(np.int64) - 1
    return ordered[index]


def _numeric(name: str, column: np.ndarray, cfg: Mapping[str, Any], calibration: Calibration,
             rng: np.random.Generator) -> NumericFeature:
    values, _ = numeric_column(column)
    present = np.isfinite(values)
    v = values if present.all() else values[present]
    rows = values.shape[0]
    missing_ratio = float(1.0 - v.size / rows)
    if v.size == 0:
        return NumericFeature(name, (), (), (1.0,), (), None, None, None, None, missing_ratio, rows)
    discrete = is_integer_valued(v)
    ordered = np.sort(v)  # quantiles of sorted values are several times cheaper
    psi_edges, fine_edges = quantile_edges(ordered, cfg["fine_bins"], cfg["psi_bins"], discrete)
    fine_index = np.searchsorted(fine_edges, v, side="left")
    to_psi = _fine_to_psi(psi_edges, fine_edges)
    fine_counts = np.bincount(fine_index, minlength=fine_edges.size + 1)
    psi_counts = np.bincount(to_psi, weights=fine_counts, minlength=psi_edges.size + 1)
    ref_bins, ref_cdf = stats.proportions(psi_counts), stats.cumulative(fine_counts)
    chunks = chunk_counts(np.flatnonzero(present), fine_index, fine_edges.size + 1, rows,
                          calibration.window_values)
    limits, _ = thresholds(fine_counts, chunks, numeric_statistics(to_psi, psi_edges.size + 1), calibration, rng)
    sample = quantile_sample(ordered, int(cfg["sample_size"]))
    return NumericFeature(
        name, tuple(psi_edges.tolist()), tuple(fine_edges.tolist()), tuple(ref_bins.tolist()),
        tuple(ref_cdf.tolist()), float(v.min()), float(v.max()), float(v.mean()), float(v.std()),
        missing_ratio, rows, sample=tuple(sample.tolist()), thresholds=limits, discrete=discrete)


def _fine_to_psi(psi_edges: np.ndarray, fine_edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(psi_edges, np.append(fine_edges, np.inf), side="left")


def _categorical(name: str, column: np.ndarray, cfg: Mapping[str, Any], calibration: Calibration,
                 rng: np.random.Generator) -> CategoricalFeature:
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
    limits: dict[str, float] = {}
    if ref_counts.sum():
        chunks = chunk_counts(np.flatnonzero(usable), bins, len(top) + 1, rows, calibration.window_values)
        limits, _ = thresholds(ref_counts, chunks, categorical_statistics, calibration, rng)
    known = tuple(str(u) for u in uniques.tolist()) if uniques.size <= cfg["known_categories"] else None
    return CategoricalFeature(name, tuple(top), tuple(ref_bins.tolist()), known,
                              float(1.0 - np.count_nonzero(usable) / rows) if rows else 0.0, rows,
                              thresholds=limits)


def _refuse_too_small(features: Sequence[Feature], cfg: Mapping[str, Any]) -> None:
    """Refuse features with too few reference values for their thresholds to keep the stated rate."""
    small = []
    for f in features:
        present = round(f.rows * (1.0 - f.missing_ratio))
        bins = cfg["fine_bins"] if f.kind == NUMERIC else len(f.reference_bins)
        if present < MIN_VALUES_PER_BIN * bins:
            small.append(f"{f.name} ({present:,} values, needs {MIN_VALUES_PER_BIN * bins:,})")
    if small:
        raise ProfileError(
            f"too few reference values to calibrate drift thresholds that keep a {cfg['false_alarm_rate']:.0%} "
            f"false-alarm rate (at least {MIN_VALUES_PER_BIN} per bin): {', '.join(small)}. Build the profile "
            "from more rows, use fewer bins (`--fine-bins 10 --psi-bins 5`, `--top-k 5`), or leave those "
            "columns out (`--columns`)")


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
