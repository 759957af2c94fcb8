"""House style over grafanalib: datasources by fixed uid, units, panel helpers, modern dashboard JSON.

grafanalib 0.7 emits ``schemaVersion`` 12, datasources as plain strings and
``null`` fields, which current Grafana no longer migrates. :func:`to_json`
fixes all of that in one place, so dashboard modules stay small and declarative.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import attr
from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

SCHEMA_VERSION = 39  # Grafana 11
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
DATASOURCES = {"prometheus": PROMETHEUS, "loki": LOKI}
PROVISIONED_UIDS = frozenset({"prometheus", "loki", "alertmanager"})
ROW_HEIGHT = 8
GRID_WIDTH = 24

# Selectors every panel of a model-scoped dashboard uses.
MODEL_SELECTOR = 'model=~"$model",model_version=~"$model_version"'
LOG_APP = "mlscope"


@attr.s
class PromTarget:
    """A Prometheus query (``exemplar`` asks Grafana to draw the histogram's exemplars)."""

    expr: str = attr.ib()
    legend: str = attr.ib(default="")
    ref_id: str = attr.ib(default="A")
    instant: bool = attr.ib(default=False)
    exemplar: bool = attr.ib(default=False)
    table: bool = attr.ib(default=False)

    def to_json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"datasource": PROMETHEUS, "expr": self.expr, "refId": self.ref_id,
                                "legendFormat": self.legend or "__auto", "exemplar": self.exemplar,
                                "instant": self.instant, "range": not self.instant}
        if self.table:
            data["format"] = "table"
        return data


@attr.s
class LokiTarget:
    """A LogQL query."""

    expr: str = attr.ib()
    legend: str = attr.ib(default="")
    ref_id: str = attr.ib(default="A")

    def to_json_data(self) -> dict[str, Any]:
        return {"datasource": LOKI, "expr": self.expr, "refId": self.ref_id, "legendFormat": self.legend,
                "queryType": "range"}


def prom(*queries: tuple[str, str] | str, exemplar: bool = False) -> list[PromTarget]:
    """Targets from ``expr`` or ``(expr, legend)`` items, with refIds A, B, ..."""
    targets = []
    for i, query in enumerate(queries):
        expr, legend = (query, "") if isinstance(query, str) else query
        targets.append(PromTarget(expr, legend, chr(ord("A") + i), exemplar=exemplar))
    return targets


def timeseries(title: str, targets: list[Any], unit: str = "short", *, description: str = "",
               stacked: bool = False, links: Sequence[dict[str, Any]] = (), **kwargs: Any) -> g.TimeSeries:
    return g.TimeSeries(title=title, targets=targets, unit=unit, description=description,
                        stacking={"mode": "normal" if stacked else "none", "group": "A"},
                        legendDisplayMode="list", legendPlacement="bottom", tooltipMode="multi",
                        links=list(links), **kwargs)


def stat(title: str, targets: list[Any], unit: str = "short", *, description: str = "",
         decimals: int | None = None, **kwargs: Any) -> g.Stat:
    return g.Stat(title=title, targets=targets, format=unit, description=description, decimals=decimals,
                  reduceCalc="lastNotNull", graphMode="area", **kwargs)


def table(title: str, targets: list[PromTarget], unit: str = "short", *, description: str = "",
          sort_by: str | None = None, **kwargs: Any) -> g.Table:
    for target in targets:
        target.instant, target.table = True, True
    transformations = [{"id": "merge", "options": {}},
                       {"id": "organize", "options": {"excludeByName": {"Time": True}}}]
    sort = [g.TableSortByField(displayName=sort_by, desc=True)] if sort_by else []
    return g.Table(title=title, targets=targets, unit=unit, description=description,
                   transformations=transformations, sortBy=sort, **kwargs)


def logs(title: str, expr: str, *, description: str = "", **kwargs: Any) -> g.Logs:
    return g.Logs(title=title, targets=[LokiTarget(expr)], description=description, showTime=True,
                  wrapLogMessages=True, enableLogDetails=True, prettifyLogMessage=False,
                  dedupStrategy="none", sortOrder="Descending", **kwargs)


def logs_link(title: str = "Logs of this model version") -> dict[str, Any]:
    """A panel link to Explore on Loki for the selected model version and time range."""
    state = {"datasource": "loki", "range": {"from": "${__from}", "to": "${__to}"}, "queries": [
        {"refId": "A", "expr": '{app="%s",model=~"$model",model_version=~"$model_version"}' % LOG_APP}]}
    return {"title": title, "url": "/explore?left=" + json.dumps(state, separators=(",", ":")),
            "targetBlank": True}


def model_variables() -> list[g.Template]:
    """``$model`` and ``$model_version`` from the label values of ``mlscope_model_info``."""
    common = dict(dataSource="prometheus", includeAll=True, multi=True, allValue=".+", refresh=2, sort=1)
    return [
        g.Template(name="model", label="Model", query="label_values(mlscope_model_info, model)", **common),
        g.Template(name="model_version", label="Version",
                   query='label_values(mlscope_model_info{model=~"$model"}, model_version)', **common),
    ]


def layout(rows: Iterable[Sequence[Any]], height: int = ROW_HEIGHT) -> list[Any]:
    """Place panels row by row (each row splits the width evenly) and number them 1, 2, ..."""
    panels, y, next_id = [], 0, 1
    for row in rows:
        if isinstance(row, g.RowPanel):
            row.gridPos, row.id = g.GridPos(h=1, w=GRID_WIDTH, x=0, y=y), next_id
            panels.append(row)
            y, next_id = y + 1, next_id + 1
            continue
        width = GRID_WIDTH // len(row)
        for i, panel in enumerate(row):
            panel.gridPos = g.GridPos(h=height, w=width, x=i * width, y=y)
            panel.id = next_id
            next_id += 1
            panels.append(panel)
        y += height
    return panels


def dashboard(uid: str, title: str, rows: Iterable[Sequence[Any]], *, description: str = "",
              variables: Sequence[g.Template] | None = None, tags: Sequence[str] = ()) -> g.Dashboard:
    return g.Dashboard(uid=uid, title=title, description=description, tags=["mlscope", *tags],
                       panels=layout(rows), templating=g.Templating(list=list(
                           model_variables() if variables is None else variables)),
                       time=g.Time("now-1h", "now"), refresh="30s", timezone="utc", editable=False,
                       graphTooltip=1)


def _modernise(node: Any) -> Any:
    """Datasource strings -> ``{type, uid}`` objects; drop ``null`` fields, recursively."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if value is None:
                continue
            if key == "datasource" and isinstance(value, str):
                value = DATASOURCES.get(value, {"uid": value})
            out[key] = _modernise(value)
        return out
    if isinstance(node, list):
        return [_modernise(v) for v in node]
    return node


def to_json(board: g.Dashboard, version: int = 1) -> dict[str, Any]:
    """The dashboard as modern Grafana JSON (a plain dict)."""
    data = json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder))
    data = _modernise(data)
    data.pop("rows", None)
    data["schemaVersion"] = SCHEMA_VERSION
    data["version"] = version
    data.pop("id", None)
    return data


def dumps(data: dict[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
