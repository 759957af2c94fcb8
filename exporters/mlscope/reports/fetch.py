"""Reading a page's panels from Prometheus: range queries at a step that keeps every chart small, the threshold
beside the signal, and a note for each query that could not be answered (the page is written all the same)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..lineage.sources import PrometheusSource, SourceError
from .signals import Panel

MAX_POINTS = 240  # samples per line at most: the charts' downsampling and the page's size budget


def promql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(model: str, version: str) -> str:
    return f"model={promql_string(model)},model_version={promql_string(version)}"


def step_for(start: float, end: float, points: int = MAX_POINTS) -> float:
    """The range query step (whole seconds, at least 1) that gives at most ``points`` samples."""
    return float(max(1, math.ceil((end - start) / max(points - 1, 1))))


@dataclass
class Line:
    """One series of a panel: its label, the query that gave it, its samples ``[(unix s, value)]``."""

    label: str
    expr: str
    values: list[tuple[float, float]]

    @property
    def finite(self) -> list[float]:
        return [v for _, v in self.values if math.isfinite(v)]

    def stats(self) -> dict[str, float | None]:
        got = self.finite
        return {"last": got[-1] if got else None, "min": min(got) if got else None,
                "max": max(got) if got else None, "mean": sum(got) / len(got) if got else None}


@dataclass
class PanelData:
    """A panel as read: its lines (ranked when the panel ranks), threshold lines, what is missing."""

    panel: Panel
    lines: list[Line] = field(default_factory=list)
    thresholds: list[Line] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    more: int = 0  # lines ranked below the panel's ``top`` (listed in the table, not drawn)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.panel.key, "title": self.panel.title, "unit": self.panel.unit, "drawn": self.panel.top,
                "threshold_setting": self.panel.threshold_label,
                "lines": [{"label": x.label, "expr": x.expr, "stats": x.stats(), "values": x.values}
                          for x in self.lines],
                "thresholds": [{"label": x.label, "expr": x.expr, "stats": x.stats(), "values": x.values}
                               for x in self.thresholds],
                "missing": self.missing}


@dataclass
class Fetcher:
    """Range queries of one Prometheus; ``query_s`` sums the time spent waiting on it."""

    prometheus: PrometheusSource | None
    query_s: float = 0.0
    queries: int = 0

    down: str = ""  # why Prometheus stopped answering: later queries are not sent (each would wait its timeout)

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self._call(lambda p: p.query_range(expr, start, end, step))

    def instant(self, expr: str, at: float) -> list[dict[str, Any]]:
        return self._call(lambda p: p.query(expr, at))

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return self._call(lambda p: p.exemplars(expr, start, end))

    def _call(self, ask: Callable[[PrometheusSource], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        if self.prometheus is None:
            raise SourceError("no Prometheus URL given")
        if self.down:
            raise SourceError(f"not asked: {self.down}")
        began = time.perf_counter()
        try:
            return ask(self.prometheus)
        except SourceError as exc:
            if "did not answer" in str(exc):
                self.down = str(exc)
            raise
        finally:
            self.query_s += time.perf_counter() - began
            self.queries += 1

    def panel(self, panel: Panel, sel: str, start: float, end: float) -> PanelData:
        """Every line of ``panel`` for the version matched by ``sel`` between ``start`` and ``end``."""
        data, step = PanelData(panel), step_for(start, end)
        for query in panel.queries:
            expr = query.expr.replace("{sel}", sel)
            try:
                result = self.range(expr, start, end, step)
            except SourceError as exc:
                data.missing.append(f"{query.label}: {exc}")
                continue
            if not result:
                data.missing.append(f"{query.label}: no data for {expr} in this period")
            for series in result:
                name = series["metric"].get(panel.by, "") if panel.by else ""
                extra = series["metric"].get("issue", "") if panel.by and panel.key == "data_quality" else ""
                label = " ".join(x for x in (name, extra) if x) or query.label
                data.lines.append(Line(label, expr, _values(series)))
        if panel.top:
            data.lines.sort(key=lambda x: -max(x.finite, default=-math.inf))
        if isinstance(panel.threshold, str) and data.lines:
            expr = panel.threshold.replace("{sel}", sel)
            try:
                for series in self.range(expr, start, end, step):
                    label = series["metric"].get(panel.by, "") if panel.by else ""
                    data.thresholds.append(Line(f"threshold {label}".strip(), expr, _values(series)))
            except SourceError as exc:
                data.missing.append(f"threshold: {exc}")
        elif isinstance(panel.threshold, float) and data.lines:
            data.thresholds.append(Line(f"threshold ({panel.threshold_label})", f"{panel.threshold:g}",
                                        [(start, panel.threshold), (end, panel.threshold)]))
        return data


def _values(series: dict[str, Any]) -> list[tuple[float, float]]:
    return [(float(t), float(v)) for t, v in series.get("values", [])]
