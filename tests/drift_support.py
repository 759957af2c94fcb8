"""Shared set-up of the drift tests: a trained workload, its profile, and independent numpy references."""
from __future__ import annotations

import functools

import numpy as np
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.drift import ReferenceProfile, build_profile
from mlscope.drift.profile import CategoricalFeature, NumericFeature
from mlscope.workload import SyntheticService, TrainedModel, train


@functools.lru_cache(maxsize=None)
def trained(dataset: str = "breast_cancer") -> TrainedModel:
    return train(dataset)  # type: ignore[arg-type]


def workload_profile(model: str = "drift", version: str = "1", dataset: str = "breast_cancer",
                     **settings: object) -> ReferenceProfile:
    """The profile of a bundled data set's training split, with the model's predicted classes as output."""
    t = trained(dataset)
    return build_profile(t.x_train, model=model, model_version=version, columns=t.feature_names,
                         output=t.pipeline.predict(t.x_train), **settings)


def shifted_service(monitor: ModelMonitor, shift_std: float, dataset: str = "breast_cancer",
                    seed: int = 0) -> SyntheticService:
    service = SyntheticService(trained(dataset), monitor, seed=seed)
    service.faults.drift_shift_std = shift_std
    return service


def numeric_shares(feature: NumericFeature, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(PSI-bin shares, CDF at the fine edges) of ``values``, by np.digitize (right-closed bins)."""
    v = values[np.isfinite(values)]
    psi = np.bincount(np.digitize(v, feature.psi_edges, right=True), minlength=len(feature.psi_edges) + 1)
    cdf = np.array([np.count_nonzero(v <= e) for e in feature.fine_edges]) / v.size
    return psi / v.size, cdf


def category_shares(feature: CategoricalFeature, values: list[str]) -> np.ndarray:
    counts = np.array([sum(1 for v in values if v == c) for c in feature.categories]
                      + [sum(1 for v in values if v not in feature.categories)], dtype=float)
    return counts / counts.sum()


def monitor_with(profile: ReferenceProfile, registry: CollectorRegistry | None = None,
                 **kwargs: object) -> ModelMonitor:
    return ModelMonitor(profile.model, profile.model_version, registry=registry or CollectorRegistry(),
                        reference=profile, **kwargs)  # type: ignore[arg-type]
