"""Known series for the report and snapshot tests (and their benchmark): the catalog's recorded series of one
model as the rules would have recorded them, every 15 s over a few hours, written as OpenMetrics and backfilled
into a real Prometheus with ``promtool tsdb create-blocks-from openmetrics``."""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlscope.catalog import drift as drift_cat
from mlscope.catalog import pipelines as pipelines_cat
from mlscope.catalog import quality as quality_cat
from mlscope.catalog import serving as serving_cat
from mlscope.rules import config_for

STEP_S = 15
Q = quality_cat.RECORDED_BY_LEVEL["model_version"]


@dataclass
class Scenario:
    """One model, one version, ``features`` features over ``[start, end)``; drift on ``drifted`` from ``incident``
    (``FeatureDriftHigh`` pending for 15 min, then firing for 30 min)."""

    start: int
    end: int
    model: str = "fraud"
    version: str = "v7"
    features: int = 4
    drifted: str = "f2"
    fingerprint: str = "sha256:5e1f0c"
    owner: str = "team-fraud"
    profile: str = "default"
    step_s: int = STEP_S
    incident: int = field(init=False)

    def __post_init__(self) -> None:
        self.incident = self.start + (self.end - self.start) * 2 // 3 // self.step_s * self.step_s

    @property
    def pending_until(self) -> int:
        return self.incident + 900

    @property
    def firing_until(self) -> int:
        return self.incident + 2700

    def psi(self, feature: str, t: int) -> float:
        base = 0.02 + 0.01 * int(feature[1:])
        return base + (0.45 if feature == self.drifted and t >= self.incident else 0.0)

    def error_ratio(self, t: int) -> float:
        return 0.01 + (0.002 * ((t // STEP_S) % 5))

    def families(self) -> Iterator[tuple[str, Callable[[int], list[tuple[dict[str, str], float]]]]]:
        """(metric name, t -> [(labels, value)]) of every series."""
        p = config_for(self.profile).profile
        w_t, w_d, w_q = p.alert_window, p.drift_windows[0], p.quality_windows[-1]
        mv = {"model": self.model, "model_version": self.version}
        feats = [f"f{i}" for i in range(self.features)]
        yield serving_cat.REQUEST_RATE.name, lambda t: [({**mv, "window": w_t}, 20.0 + (t // STEP_S) % 7)]
        yield serving_cat.ERROR_RATIO.name, lambda t: [({**mv, "window": w_t}, self.error_ratio(t))]
        for spec, base in ((serving_cat.LATENCY_P50, 0.02), (serving_cat.LATENCY_P95, 0.08),
                           (serving_cat.LATENCY_P99, 0.15)):
            yield spec.name, lambda t, b=base: [({**mv, "window": w_t}, b + 0.001 * ((t // STEP_S) % 3))]
        yield drift_cat.PSI.name, lambda t: [({**mv, "feature": f, "window": w_d}, self.psi(f, t)) for f in feats]
        yield drift_cat.PSI_THRESHOLD.name, lambda t: [({**mv, "feature": f, "window": w_d}, 0.15) for f in feats]
        yield drift_cat.PREDICTION_PSI.name, lambda t: [({**mv, "window": w_d}, 0.03)]
        yield drift_cat.PREDICTION_PSI_THRESHOLD.name, lambda t: [({**mv, "window": w_d}, 0.12)]
        yield drift_cat.ISSUE_RATIO.name, lambda t: [({**mv, "feature": f, "issue": "missing", "window": w_d},
                                                      0.001 * (i + 1)) for i, f in enumerate(feats)]
        for op, value in (("mlscope_quality_accuracy:ratio", 0.91), ("mlscope_quality_estimated_accuracy:ratio", 0.9),
                          ("mlscope_quality_f1:macro", 0.88), ("mlscope_quality_estimated_f1:macro", 0.87),
                          ("mlscope_quality_coverage:ratio", 0.7), ("mlscope_quality_label_delay_seconds:p50", 40.0),
                          ("mlscope_quality_label_delay_seconds:p90", 95.0)):
            yield Q[op].name, lambda t, v=value: [({**mv, "window": w_q}, v)]
        yield quality_cat.BASELINE.name, lambda t: [({**mv, "metric": "accuracy"}, 0.93)]
        yield serving_cat.MODEL_INFO.name, lambda t: [({**mv, "training_data_fingerprint": self.fingerprint,
                                                        "owner": self.owner}, 1.0)]
        yield pipelines_cat.TRAINING_INFO.name, lambda t: [({**mv, "training_data_fingerprint": self.fingerprint,
                                                             "pipeline": "fraud-train", "dataset_version": "2026-11"},
                                                            1.0)]
        alert = {"alertname": "FeatureDriftHigh", **mv, "feature": self.drifted, "severity": "warning"}

        def alerts(t: int) -> list[tuple[dict[str, str], float]]:
            if self.incident <= t < self.pending_until:
                return [({**alert, "alertstate": "pending"}, 1.0)]
            if self.pending_until <= t < self.firing_until:
                return [({**alert, "alertstate": "firing"}, 1.0)]
            return []
        yield "ALERTS", alerts

    def openmetrics(self) -> str:
        out = []
        for name, values in self.families():
            out.append(f"# TYPE {name} gauge")
            series: dict[tuple[tuple[str, str], ...], list[str]] = {}
            for t in range(self.start, self.end, self.step_s):
                for labels, value in values(t):
                    series.setdefault(tuple(sorted(labels.items())), []).append(f"{value!r} {t}")
            for key, samples in series.items():
                text = ",".join(f'{k}="{v}"' for k, v in key)
                out += [f"{name}{{{text}}} {s}" for s in samples]
        out.append("# EOF")
        return "\n".join(out) + "\n"


def backfill(scenario: Scenario, data_dir: Path) -> None:
    """Write the scenario's blocks into a Prometheus data directory (before Prometheus starts)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / "backfill.om"
    source.write_text(scenario.openmetrics())
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
                   check=True, capture_output=True, timeout=120)


def demo_sized(versions: int = 3, features: int = 30, issues: int = 123) -> Any:
    """A page of the demo's size (``mlscope up --demo``: 3 versions, each with the PSI of 30 features and 123
    data-quality lines, 240 samples a line), built from known lines without Prometheus."""
    from mlscope.reports import page
    from mlscope.reports.fetch import Line, PanelData
    from mlscope.reports.signals import panels

    known = panels(config_for("fast"))

    def lines(n: int, name: str) -> list[Line]:
        return [Line(f"{name}{i}", "x", [(float(t), i / n + t * 1e-6) for t in range(0, 240 * 15, 15)])
                for i in range(n, 0, -1)]

    contexts, twins = [], []
    for v in range(versions):
        read = [PanelData(known["drift"], lines=lines(features, "f")),
                PanelData(known["data_quality"], lines=lines(issues, "f"))]
        contexts.append({"model": "m", "model_version": str(v), "panels": [page.panel_context(p) for p in read]})
        twins.append({"panels": [p.as_dict() for p in read]})
    return page.Page("report", "t", "s", {"versions": contexts}, {"versions": twins})
