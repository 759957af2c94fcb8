"""Shared set-up of the drift tests: a trained workload, its profile, and independent numpy references."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.drift import (
    ReferenceProfile,
    build_profile,
    refresh_snapshots,
)
from mlscope.drift.profile import CategoricalFeature, NumericFeature

from .helpers import series

if TYPE_CHECKING:
    from mlscope.demo.workload import SyntheticService, TrainedModel


@functools.cache
def trained(dataset: str = "breast_cancer") -> TrainedModel:
    from mlscope.demo.workload import train  # scikit-learn: imported by the tests that train

    return train(dataset)  # type: ignore[arg-type]


def workload_profile(model: str = "drift", version: str = "1", dataset: str = "breast_cancer",
                     **settings: object) -> ReferenceProfile:
    """The profile of a bundled data set's training split, with the model's predicted classes as output.

    Estimates are calibrated on the model's probabilities on the held-out split.
    """
    t = trained(dataset)
    return build_profile(t.x_train, model=model, model_version=version, columns=t.feature_names,
                         output=t.pipeline.predict(t.x_train), labels=t.y_test,
                         proba=t.pipeline.predict_proba(t.x_test), classes=t.pipeline.classes_, **settings)


def shifted_service(monitor: ModelMonitor, shift_std: float, dataset: str = "breast_cancer",
                    seed: int = 0) -> SyntheticService:
    from mlscope.demo.workload import SyntheticService

    service = SyntheticService(trained(dataset), monitor, seed=seed)
    service.faults.drift_shift_std = shift_std
    return service


def numeric_counts(feature: NumericFeature, values: np.ndarray) -> np.ndarray:
    """Counts of the finite ``values`` in the PSI bins, by np.digitize (right-closed bins)."""
    v = values[np.isfinite(values)]
    return np.bincount(np.digitize(v, feature.psi_edges, right=True), minlength=len(feature.psi_edges) + 1)


def numeric_shares(feature: NumericFeature, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(PSI-bin shares, CDF at the fine edges) of ``values``, by np.digitize (right-closed bins)."""
    v = values[np.isfinite(values)]
    cdf = np.array([np.count_nonzero(v <= e) for e in feature.fine_edges]) / v.size
    return numeric_counts(feature, values) / v.size, cdf


def category_counts(feature: CategoricalFeature, values: list[str | None]) -> np.ndarray:
    """Counts per category, then __other__, of the present ``values`` (None is missing)."""
    present = [v for v in values if v is not None]
    return np.array([sum(1 for v in present if v == c) for c in feature.categories]
                    + [sum(1 for v in present if v not in feature.categories)], dtype=float)


def category_shares(feature: CategoricalFeature, values: list[str | None]) -> np.ndarray:
    counts = category_counts(feature, values)
    return counts / counts.sum()


def homogeneity(window: np.ndarray, reference: np.ndarray) -> float:
    """scipy's chi-square homogeneity statistic of two count rows, the columns empty in both left out."""
    from scipy.stats import chi2_contingency

    table = np.stack([window, reference]).astype(float)
    return float(chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False).statistic)


def monitor_with(profile: ReferenceProfile, registry: CollectorRegistry | None = None,
                 **kwargs: object) -> ModelMonitor:
    return ModelMonitor(profile.model, profile.model_version, registry=registry or CollectorRegistry(),
                        reference=profile, **kwargs)  # type: ignore[arg-type]


def small_profile(model: str = "small", version: str = "1", rows: int = 2000, seed: int = 0) -> ReferenceProfile:
    """Two numeric features (one with missing values), one categorical, a numeric score output."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, rows)
    age = rng.normal(40, 10, rows)
    age[rng.random(rows) < 0.05] = np.nan
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1]).astype(object)
    data = {"income": income, "age": age, "plan": plan}
    return build_profile(data, model=model, model_version=version, output=rng.random(rows), sample_size=500)


def populate_drift(registry: CollectorRegistry) -> ModelMonitor:
    """A monitor with a profile that has exposed every drift family (used by the catalog tests)."""
    monitor = monitor_with(small_profile("drifted", "1"), registry, task="classification")
    rng = np.random.default_rng(1)
    monitor.record_batch(np.zeros(100), scores=rng.random(100),
                         features={"income": rng.lognormal(10, 0.5, 100), "age": rng.normal(45, 10, 100),
                                   "plan": np.array(["basic", "plus", "gold"] * 33 + ["pro"], dtype=object)})
    monitor.record_features({"income": "not a number", "age": float("inf"), "plan": None, "extra": 1})
    refresh_snapshots(registry)
    return monitor


def drift_series(registry: CollectorRegistry) -> dict:
    return {k: v for k, v in series(registry).items()
            if k[0].startswith(("mlscope_feature_", "mlscope_reference_", "mlscope_drift_"))}
