"""Suite `drift`: ingestion rate, per-prediction cost, scrape cost, end-to-end drift against scipy and Evidently."""
from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from common import Row, per_call_us
from drift_scrape import scrape_rows
from mlscope import ModelMonitor


def _scraped_statistics(registry: CollectorRegistry, profile: Any) -> dict[str, np.ndarray]:
    """What the recording rules compute, from one scrape of the monitor: PSI, JS, chi-square, binned KS."""
    from prometheus_client.parser import text_string_to_metric_families

    from mlscope.drift import stats

    bins: dict[str, dict[int, float]] = {}
    cdf: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            feature = sample.labels.get("feature")
            if sample.name == "mlscope_feature_bin_total":
                bins.setdefault(feature, {})[int(sample.labels["bin"])] = sample.value
            elif sample.name == "mlscope_feature_value_bucket" and sample.labels["le"] != "+Inf":
                cdf.setdefault(feature, []).append(sample.value)
    out: dict[str, list[float]] = {"psi": [], "js": [], "chi_square": [], "ks": []}
    for feature in profile.features:
        counts = np.array([bins[feature.name][k] for k in range(len(feature.reference_bins))])
        shares, ref = counts / counts.sum(), np.asarray(feature.reference_bins)
        out["psi"].append(stats.psi(shares, ref))
        out["js"].append(stats.js_distance(shares, ref))
        out["chi_square"].append(stats.chi_square(counts, ref * feature.present))
        out["ks"].append(stats.ks_on_edges(np.asarray(cdf[feature.name]) / counts.sum(), feature.reference_cdf))
    return {k: np.asarray(v) for k, v in out.items()}


def suite_drift(quick: bool) -> list[Row]:
    from scipy import stats as scipy_stats

    from mlscope.drift import build_profile

    rows: list[Row] = []
    rng = np.random.default_rng(0)
    n_features, n_ref, n_cur = 20, 100_000, 1_000_000
    names = [f"f{i}" for i in range(n_features)]
    reference = rng.normal(size=(n_ref, n_features))
    current = rng.normal(size=(n_cur, n_features)) + np.linspace(0, 0.5, n_features)
    profile = build_profile(reference, model="bench", model_version="1", columns=names)

    # Batch ingestion: 1M rows x 20 features, row-major float64 array and a data frame.
    monitor = ModelMonitor("bench", "1", registry=CollectorRegistry(), reference=profile)
    batch_s = min(timeit.repeat(lambda: monitor.record_feature_batch(current), number=1, repeat=2 if quick else 3))
    columns = np.ascontiguousarray(current.T)
    edges = [np.asarray(f.fine_edges) for f in profile.features]

    def raw_numpy() -> None:
        for j in range(n_features):
            np.bincount(np.searchsorted(edges[j], columns[j]), minlength=edges[j].size + 1)

    raw_s = min(timeit.repeat(raw_numpy, number=1, repeat=2 if quick else 3))
    rows.append(Row("drift", "batch ingestion, 1M rows x 20 features (2-D float64)", n_cur / batch_s / 1e6,
                    "M rows/s", "numpy searchsorted+bincount alone", n_cur / raw_s / 1e6, ">= 1 M rows/s"))
    try:
        import pandas as pd

        frame = pd.DataFrame(current, columns=names)
        frame_s = min(timeit.repeat(lambda: monitor.record_feature_batch(frame), number=1, repeat=2))
        rows.append(Row("drift", "batch ingestion, 1M rows x 20 features (pandas DataFrame)", n_cur / frame_s / 1e6,
                        "M rows/s", "numpy searchsorted+bincount alone", n_cur / raw_s / 1e6, ">= 1 M rows/s"))
    except ImportError:
        pass

    # Single rows: track() with 20 features against track() of the same prediction without a profile.
    row = dict(zip(names, current[0].tolist(), strict=True))
    plain = ModelMonitor("bench-plain", "1", registry=CollectorRegistry())
    with_profile = ModelMonitor("bench", "1", registry=CollectorRegistry(), reference=profile)

    def tracked(m: ModelMonitor, features: object) -> Callable[[], None]:
        def call() -> None:
            with m.track() as p:
                p.output, p.score, p.features = 1, 0.8, features
        return call

    number, repeat = (5_000, 3) if quick else (20_000, 5)
    rows.append(Row("drift", "track() + 20 features per prediction", per_call_us(tracked(with_profile, row), number,
                    repeat), "us", "track() without profile", per_call_us(tracked(plain, None), number, repeat)))
    rows += scrape_rows(quick)

    # End to end: 100k reference vs 1M current rows, 20 features. mlscope: profile + streaming counts +
    # one scrape + every statistic; scipy: ks_2samp per feature on the raw data.
    def mlscope_drift() -> None:
        prof = build_profile(reference, model="e2e", model_version="1", columns=names)
        registry = CollectorRegistry()
        ModelMonitor("e2e", "1", registry=registry, reference=prof).record_feature_batch(current)
        _scraped_statistics(registry, prof)

    ours = min(timeit.repeat(mlscope_drift, number=1, repeat=1 if quick else 2))
    scipy_s = min(timeit.repeat(lambda: [scipy_stats.ks_2samp(reference[:, j], current[:, j])
                                         for j in range(n_features)], number=1, repeat=1))
    rows.append(Row("drift", "end-to-end drift, 100k ref vs 1M current x 20 (profile+ingest+scrape+stats)", ours,
                    "s", "scipy ks_2samp per feature", scipy_s))
    rows += _evidently_row(reference, current, names, ours, quick)

    # Approximation: KS at the 19 fine edges against the exact KS (scipy) on all the data.
    registry = CollectorRegistry()
    ModelMonitor("bench", "1", registry=registry, reference=profile).record_feature_batch(current)
    binned = _scraped_statistics(registry, profile)["ks"]
    exact = np.array([scipy_stats.ks_2samp(reference[:, j], current[:, j]).statistic for j in range(n_features)])
    rows.append(Row("drift", "binned KS (19 edges) - exact KS, max over 20 features (shift 0..0.5 sd)",
                    float(np.max(exact - binned)), "", "exact KS, max", float(exact.max())))
    # Profile build: 1M rows x 50 features.
    wide = rng.normal(size=(n_cur, 50))
    build_s = min(timeit.repeat(lambda: build_profile(wide, model="b", model_version="1",
                                                      columns=[f"c{i}" for i in range(50)]), number=1, repeat=1))
    rows.append(Row("drift", "reference profile build, 1M rows x 50 features", build_s, "s", target="seconds"))
    return rows


def _evidently_row(reference: np.ndarray, current: np.ndarray, names: list[str], ours: float,
                   quick: bool) -> list[Row]:
    """Evidently's data drift preset on the same data (the `bench` extra), or a row saying it is missing."""
    try:
        import pandas as pd
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except Exception as exc:  # any import failure means: not measured
        return [Row("drift", f"Evidently data drift preset: not measured ({type(exc).__name__}: {exc})"[:120],
                    0.0, "s")]
    rows = current.shape[0] // 10 if quick else current.shape[0]
    ref_frame, cur_frame = pd.DataFrame(reference, columns=names), pd.DataFrame(current[:rows], columns=names)
    start = time.perf_counter()
    Report([DataDriftPreset()]).run(current_data=cur_frame, reference_data=ref_frame)
    evidently_s = time.perf_counter() - start
    return [Row("drift", f"end-to-end drift, mlscope vs Evidently DataDriftPreset ({rows:,} current rows)", ours,
                "s", "Evidently DataDriftPreset", evidently_s, "<= 0.1x")]


