"""Monitors driven to known label values, and their series counted in a real exposition, family by family."""
from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mlscope import ModelMonitor
from mlscope.labels import DEFAULT_CAPS

from .helpers import exposition


def classifier(registry: CollectorRegistry, model: str = "cls", version: str = "1.0.0") -> ModelMonitor:
    """Two classes, two error types, one invalid-input reason."""
    monitor = ModelMonitor(model, version, registry=registry)
    for cls in (0, 1, 1):
        monitor.record_prediction(0.01, output=cls, score=0.7)
    monitor.record_error(ValueError("x"))
    monitor.record_error(KeyError("y"))
    monitor.record_prediction(float("nan"))  # one invalid-input reason
    return monitor


def past_the_caps(registry: CollectorRegistry, model: str = "worst") -> ModelMonitor:
    """More classes and error types than the label caps admit, and several invalid-input reasons."""
    monitor = ModelMonitor(model, "1", registry=registry)
    for cls in range(DEFAULT_CAPS["class"] + 50):
        monitor.record_prediction(0.01, output=f"c{cls}", score=0.5)
    for n in range(DEFAULT_CAPS["error_type"] + 30):
        monitor.record_error(type(f"Error{n}", (Exception,), {})())
    # Every invalid-input reason a classifier without quality tracking can meet (nine of them).
    for latency, kwargs in [(float("nan"), {}), ("slow", {}), (0.1, {"score": float("nan")}), (0.1, {"score": "s"}),
                            (0.1, {"output": float("nan")})]:
        monitor.record_prediction(latency, **kwargs)  # type: ignore[arg-type]
    monitor.record_batch(latency_seconds=0.1)
    monitor.record_batch(rows=-1)
    monitor.record_features({"x": 1.0})
    monitor.record_outcome("r1", 1)
    return monitor


SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created", "_info")


def family_of(sample_name: str, families: list[str]) -> str | None:
    """The catalog family a sample belongs to (``x_bucket`` and ``x_created`` to ``x``, ``y_total`` to itself)."""
    for family in families:
        base = family.removesuffix("_total")
        if any(sample_name == base + suffix for suffix in SUFFIXES):
            return family
    return None


def exposed_by_family(registry: CollectorRegistry, model: str, *, created: bool = True) -> Counter[str]:
    """Catalog family -> samples labelled ``model`` in the text exposition (``_created`` series optional)."""
    from mlscope.stack.scaling import model_version_specs

    families = [spec.name for spec in model_version_specs()]
    out: Counter[str] = Counter()
    for family in text_string_to_metric_families(exposition(registry)):
        for sample in family.samples:
            if sample.labels.get("model") == model and (created or not sample.name.endswith("_created")):
                out[family_of(sample.name, families) or sample.name] += 1
    return out
