"""Series budgets computed from the catalog: what one model version costs, and what N replicas cost.

Every count follows from the specs (kind, buckets, labels) and the label caps: a histogram child is one
series per bucket plus ``+Inf``, ``_count``, ``_created`` and ``_sum`` (unless a bucket is negative); a
counter child its value and ``_created``; a gauge child one series. Tested against real expositions
(tests/unit/test_scaling.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import prod

from .. import catalog
from ..catalog import serving as cat
from ..labels import DEFAULT_CAPS
from ..rules.config import config_for
from ..rules.promql import duration_seconds

MODEL = ("model", "model_version")
# Labels with one value per model version whatever the traffic (the info series' identity).
SINGLE_VALUED = frozenset({"training_data_fingerprint"})
# Families a monitor of one task never binds.
UNUSED_BY_TASK = {"classification": frozenset({cat.PREDICTION_VALUE.name}),
                  "regression": frozenset({cat.PREDICTION_SCORE.name, cat.PREDICTED_CLASSES.name})}
# A serving version never exposes these (a retired one exposes them in place of its other families).
NOT_WHILE_SERVING = frozenset({cat.MODEL_RETIRED.name})
# Series Prometheus adds per target: up, scrape_duration_seconds, scrape_samples_scraped,
# scrape_samples_post_metric_relabeling, scrape_series_added.
PER_TARGET = 5
# Every capped label at its cap plus the overflow child the label guard folds the rest into; the monitor's
# invalid-input reasons are a fixed set of fewer than ten.
WORST_CASE = {**{label: cap + 1 for label, cap in DEFAULT_CAPS.items()}, "reason": 10}


@dataclass(frozen=True)
class Workload:
    """What one model version of one replica exposes: its task and how many values its extra labels take."""

    task: str = "classification"
    label_values: Mapping[str, int] | None = None

    def values(self, label: str) -> int:
        if label in SINGLE_VALUED:
            return 1
        return (self.label_values or {}).get(label, 0)


TYPICAL = Workload("classification", {"class": 2, "error_type": 2, "reason": 1})
WORST = Workload("classification", WORST_CASE)


def series_per_child(spec: catalog.MetricSpec, *, created: bool = True) -> int:
    if spec.kind == "histogram":
        buckets = spec.buckets or ()
        # prometheus-client (as OpenMetrics says) has no _sum for a histogram with a negative bucket.
        has_sum = not buckets or min(buckets) >= 0
        return len(buckets) + 2 + int(has_sum) + int(created)  # buckets, +Inf, _count, _sum, _created
    if spec.kind == "counter":
        return 1 + int(created)
    return 1


def model_version_specs() -> list[catalog.MetricSpec]:
    """The model monitor's families labelled by model and model version.

    Drift and quality publish per feature and per class on top of these; drift checks its own series
    budget when a profile is loaded (5,000 per version by default), quality is bounded by its class and
    segment caps.
    """
    return [s for s in cat.METRICS if s.labels[:2] == MODEL]


def series_per_model_version(workload: Workload = TYPICAL, *, created: bool = True) -> dict[str, int]:
    """Family -> series one replica exposes for one model version; 0 for families the workload leaves empty."""
    out = {}
    for spec in model_version_specs():
        if spec.name in UNUSED_BY_TASK.get(workload.task, frozenset()) or spec.name in NOT_WHILE_SERVING:
            out[spec.name] = 0
            continue
        children = prod(workload.values(label) for label in spec.labels[2:])
        out[spec.name] = children * series_per_child(spec, created=created)
    return out


def recorded_per_model_version(profile: str = "default") -> int:
    """Series the traffic recording rules produce per model version (independent of the replica count).

    Drift and quality rules add series per feature and per class (docs/drift.md, docs/quality.md), and the
    warm-up guards of other domains (quality, coverage, estimates) only exist where those domains have data.
    """
    from ..rules.generate import FILES

    names = {r.name for r in cat.RECORDED if r.labels[:2] == MODEL}
    cfg = config_for(profile)
    return sum(1 for build in FILES.values() for group in build(cfg) for rule in group["rules"]
               if rule.get("record") in names and rule.get("labels", {}).get("domain", "serving") == "serving")


@dataclass(frozen=True)
class Budget:
    replicas: int
    scraped: int          # active series in Prometheus from the replicas (targets' series included)
    worst_case: int       # the same with every label at its cap
    samples_per_second: float
    remote_write_per_second: float  # without the _created series remote write drops
    recorded: int


def budget(replicas: int, versions: int = 1, workload: Workload = TYPICAL, profile: str = "default") -> Budget:
    """What ``replicas`` replicas serving ``versions`` model versions each cost one Prometheus."""
    interval = duration_seconds(config_for(profile).profile.scrape_interval)
    per_version = sum(series_per_model_version(workload).values())
    shipped = sum(series_per_model_version(workload, created=False).values())
    worst = sum(series_per_model_version(WORST).values())
    scraped = replicas * (versions * per_version + PER_TARGET)
    recorded = versions * recorded_per_model_version(profile)
    return Budget(replicas, scraped, replicas * (versions * worst + PER_TARGET), scraped / interval,
                  (replicas * (versions * shipped + PER_TARGET) + recorded) / interval, recorded)


def markdown_table(replica_counts: tuple[int, ...] = (1, 10, 100, 1000)) -> str:
    """The README's table: one model version per replica, default profile (15 s scrape)."""
    lines = ["| replicas | series scraped | worst case (label caps) | samples/s ingested | "
             "remote-write samples/s | recorded series |", "|---:|---:|---:|---:|---:|---:|"]
    for n in replica_counts:
        b = budget(n)
        lines.append(f"| {n:,} | {b.scraped:,} | {b.worst_case:,} | {b.samples_per_second:,.0f} | "
                     f"{b.remote_write_per_second:,.0f} | {b.recorded} |")
    return "\n".join(lines)
