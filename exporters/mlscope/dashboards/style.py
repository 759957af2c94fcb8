"""House style over grafanalib: datasources by fixed uid, units, panel helpers, modern dashboard JSON.

grafanalib 0.7 emits ``schemaVersion`` 12, datasources as plain strings, ``null``
fields and fields Grafana's own ``Dashboard`` type (``@grafana/schema``) does not
have. :func:`to_json` fixes all of that in one place, so dashboard modules stay
small and declarative.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attr
from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from ..catalog import logs as log_catalog
from ..catalog import serving
from ..rules.config import Links
from ..tracing import REQUEST_ID

SCHEMA_VERSION = 39  # Grafana 11
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
TEMPO = {"type": "tempo", "uid": "tempo"}
DATASOURCES = {"prometheus": PROMETHEUS, "loki": LOKI, "tempo": TEMPO}
PROVISIONED_UIDS = frozenset({"prometheus", "loki", "alertmanager", "tempo"})
# The span attribute holding mlscope's request id (the one the monitor sets): trace searches by request id read
# it, as does the Tempo datasource's trace -> logs query in provisioning/grafana/datasources/datasources.yml.
SPAN_REQUEST_ID = REQUEST_ID
ROW_HEIGHT = 8
GRID_WIDTH = 24

# Selectors every panel of a model-scoped dashboard uses.
MODEL_SELECTOR = 'model=~"$model",model_version=~"$model_version"'
LOG_APP = Links().log_app  # the `app` stream label dashboards and alert links select in Loki
MODEL_INFO = serving.MODEL_INFO.name


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


@attr.s
class TempoTarget:
    """A TraceQL query, or a trace id (Tempo's trace-id lookup)."""

    query: str = attr.ib()
    ref_id: str = attr.ib(default="A")

    def to_json_data(self) -> dict[str, Any]:
        return {"datasource": TEMPO, "query": self.query, "queryType": "traceql", "refId": self.ref_id,
                "limit": 20}


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


def anomaly_band(title: str, signal: str, unit: str, *, level: str = "model_version",
                 legend: str = "{{model_version}}", judged: str = "smoothed") -> g.TimeSeries:
    """One signal as its adaptive alert sees it: the value it judges (``smoothed``; ``value`` for a signal judged
    as a count over its count window) inside its band (docs/adaptive-alerts.md)."""
    from ..catalog.anomaly import RECORDED_BY_LEVEL

    def series(op: str) -> str:
        return f'{RECORDED_BY_LEVEL[level][op].name}{{{MODEL_SELECTOR},signal="{signal}"}}'

    words = "smoothed" if judged == "smoothed" else "over its count window"
    return timeseries(title, prom((series(judged), f"{legend} value ({words})"),
                                  (series("baseline"), f"{legend} seasonal baseline"),
                                  (series("upper"), f"{legend} upper band"),
                                  (series("lower"), f"{legend} lower band")), unit,
                      description="The baseline is the median of the same time 1 day, 1 week and 2 weeks ago (the "
                                  "rule configuration's offsets); the band is z_threshold spreads around it. An "
                                  "anomaly alert fires outside it in the signal's direction, once history is old "
                                  "enough (the warm-up panel) and traffic is high enough.")


def anomaly_warmup(level: str = "model_version") -> g.Stat:
    """Per signal: 1 once the adaptive alerts have history as old as their largest offset, 0 while warming up."""
    from ..catalog.anomaly import RECORDED_BY_LEVEL

    ready = RECORDED_BY_LEVEL[level]["history_ready"].name
    return stat("Adaptive alerts: history ready (1) or warming up (0)",
                prom((f"min by (signal) ({ready}{{{MODEL_SELECTOR}}})", "{{signal}}")), "short",
                description="No anomaly alert fires while a signal warms up (docs/adaptive-alerts.md).")


def stat(title: str, targets: list[Any], unit: str = "short", *, description: str = "",
         decimals: int | None = None, steps: dict[str, Any] | None = None, **kwargs: Any) -> g.Stat:
    """A single value; ``steps`` colours it (default: one green base step)."""
    steps = steps or BASE
    return g.Stat(title=title, targets=targets, format=unit, description=description, decimals=decimals,
                  reduceCalc="lastNotNull", graphMode="area", thresholdType=steps["mode"],
                  thresholds=steps["steps"], **kwargs)


def table(title: str, targets: list[PromTarget], unit: str = "short", *, description: str = "",
          sort_by: str | None = None, columns: Sequence[str] = (), hide: Sequence[str] = (),
          **kwargs: Any) -> g.Table:
    """Instant queries merged into one row per label set; ``columns`` names each target's value column."""
    for target in targets:
        target.instant, target.table = True, True
    values = ["Value"] if len(targets) == 1 else [f"Value #{t.ref_id}" for t in targets]
    organize = {"excludeByName": {"Time": True, **dict.fromkeys(hide, True)},
                "renameByName": dict(zip(values, columns, strict=False))}
    transformations = [{"id": "merge", "options": {}}, {"id": "organize", "options": organize}]
    sort = [g.TableSortByField(displayName=sort_by, desc=True)] if sort_by else []
    return g.Table(title=title, targets=targets, unit=unit, description=description,
                   transformations=transformations, sortBy=sort, **kwargs)


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    """Absolute threshold steps ``(value, colour)``; the first value is None (base)."""
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


BASE = thresholds((None, "green"))  # no threshold: one base step, as Grafana's editor writes it
# Green below the calibrated threshold, red at or above it (for values divided by their threshold).
BELOW_ONE = thresholds((None, "green"), (0.8, "orange"), (1.0, "red"))


if TYPE_CHECKING:
    @attr.s
    class _Panel:
        """What mlscope's panels use of grafanalib's (untyped) ``Panel``: its common fields and JSON."""

        title: str = attr.ib(default="")
        targets: list[Any] = attr.ib(factory=list)
        description: str | None = attr.ib(default=None)

        def panel_json(self, overrides: dict[str, Any]) -> dict[str, Any]: ...
else:
    _Panel = g.Panel


@attr.s
class BarGauge(_Panel):
    """A modern bar gauge (grafanalib's emits Grafana 6 ``fieldOptions``)."""

    unit: str = attr.ib(default="short")
    min: float | None = attr.ib(default=None)
    max: float | None = attr.ib(default=None)
    steps: dict[str, Any] = attr.ib(default=attr.Factory(lambda: BELOW_ONE))

    def to_json_data(self) -> dict[str, Any]:
        return self.panel_json({
            "type": "bargauge",
            "fieldConfig": {"defaults": {"unit": self.unit, "min": self.min, "max": self.max,
                                         "thresholds": self.steps}, "overrides": []},
            "options": {"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
                        "valueMode": "color", "namePlacement": "left", "sizing": "auto",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        })


def bargauge(title: str, targets: list[PromTarget], unit: str = "short", *, description: str = "",
             min_: float | None = 0, max_: float | None = None, steps: dict[str, Any] | None = None,
             **kwargs: Any) -> BarGauge:
    """One bar per series (instant queries, in the order Prometheus returns them: use ``sort_desc``)."""
    for target in targets:
        target.instant = True
    return BarGauge(title=title, targets=targets, unit=unit, description=description, min=min_, max=max_,
                    steps=steps or BELOW_ONE, **kwargs)


@attr.s
class Heatmap(_Panel):
    """A modern heatmap of pre-bucketed series: one row per series (e.g. per feature), colour = value."""

    unit: str = attr.ib(default="short")
    scheme: str = attr.ib(default="Oranges")

    def to_json_data(self) -> dict[str, Any]:
        return self.panel_json({
            "type": "heatmap",
            "fieldConfig": {"defaults": {"unit": self.unit}, "overrides": []},
            "options": {"calculate": False, "cellGap": 1, "rowsFrame": {"layout": "auto"},
                        "color": {"mode": "scheme", "scheme": self.scheme, "steps": 64, "exponent": 0.5,
                                  "fill": "dark-orange", "reverse": False},
                        "yAxis": {"axisPlacement": "left"}, "cellValues": {"unit": self.unit},
                        "tooltip": {"mode": "single", "yHistogram": False}, "legend": {"show": True}},
        })


def heatmap(title: str, targets: list[PromTarget], unit: str = "short", *, description: str = "",
            **kwargs: Any) -> Heatmap:
    return Heatmap(title=title, targets=targets, unit=unit, description=description, **kwargs)


@attr.s
class Traces(_Panel):
    """Grafana's trace view (``traces`` panel) of one Tempo query: a trace id shows that trace's spans."""

    def to_json_data(self) -> dict[str, Any]:
        return self.panel_json({"type": "traces", "datasource": TEMPO, "options": {},
                                "fieldConfig": {"defaults": {}, "overrides": []}})


def traces(title: str, query: str, *, description: str = "", **kwargs: Any) -> Traces:
    return Traces(title=title, targets=[TempoTarget(query)], description=description, **kwargs)


def logs(title: str, expr: str, *, description: str = "", **kwargs: Any) -> g.Logs:
    return g.Logs(title=title, targets=[LokiTarget(expr)], description=description, showTime=True,
                  wrapLogMessages=True, enableLogDetails=True, prettifyLogMessage=False,
                  dedupStrategy="none", sortOrder="Descending", **kwargs)


def counter_rate(metric: str, by: str) -> str:
    """Per-second rate by ``by``; 0 where no series exists (nothing went wrong, or no such exporter runs)."""
    return f"sum by ({by}) (rate({metric}[$__rate_interval])) or on() vector(0)"


def log_shipper_rates(title: str = "Log lines sent / retried / dropped per second") -> g.TimeSeries:
    """The log volume from the shipper's own counters, per second: lines Loki accepted, retries, drops, repairs.

    Each line is counted once, when a push of it is answered 2xx: counting lines in Loki
    (``count_over_time``) counts a push twice when it timed out after Loki had stored it and was sent again.
    """
    return timeseries(title, prom(
        (counter_rate(log_catalog.LOG_LINES_SENT.name, "handler"), "sent {{handler}}"),
        (counter_rate(log_catalog.LOG_PUSH_RETRIES.name, "handler, reason"), "retried pushes {{handler}} {{reason}}"),
        (counter_rate(log_catalog.LOG_LINES_DROPPED.name, "handler, reason"), "dropped {{handler}} {{reason}}"),
        (counter_rate(log_catalog.LOG_LINES_OVERSIZE.name, "handler, action"), "oversize {{handler}} {{action}}"),
        (counter_rate(log_catalog.LOG_LINES_ESCAPED.name, "handler, reason"), "escaped {{handler}} {{reason}}")),
        "ops", description="The log shipper's own counters (each line once, retried or not); counting lines in "
                           "Loki would count a push retried after a timeout twice.")


def log_selector(model: str = "$model", version: str = "$model_version", op: str = "=~", **extra: str) -> str:
    """The LogQL stream selector of a model version's lines (only the shipper's stream labels)."""
    matchers = [f'app="{LOG_APP}"', f'model{op}"{model}"', f'model_version{op}"{version}"']
    matchers += [f'{label}=~"{value}"' for label, value in extra.items()]
    return "{" + ",".join(matchers) + "}"


def explore_url(expr: str) -> str:
    """Grafana Explore on Loki showing ``expr`` over the dashboard's time range."""
    state = {"datasource": "loki", "range": {"from": "${__from}", "to": "${__to}"},
             "queries": [{"refId": "A", "expr": expr}]}
    return "/explore?left=" + json.dumps(state, separators=(",", ":"))


def explore_traces_url(traceql: str) -> str:
    """Grafana Explore on Tempo searching ``traceql`` over the dashboard's time range."""
    state = {"datasource": "tempo", "range": {"from": "${__from}", "to": "${__to}"},
             "queries": [{"refId": "A", "datasource": TEMPO, "queryType": "traceql", "query": traceql}]}
    return "/explore?left=" + json.dumps(state, separators=(",", ":"))


def request_traces_link(request_id: str = "$request_id") -> dict[str, Any]:
    """A panel link to the traces whose spans carry ``request_id`` (TraceQL on mlscope's span attribute)."""
    traceql = '{ span."' + SPAN_REQUEST_ID + '" = "' + request_id + '" }'
    return {"title": f"Traces of request {request_id}", "url": explore_traces_url(traceql), "targetBlank": True}


def logs_link(title: str = "Logs of this model version") -> dict[str, Any]:
    """A panel link to Explore on Loki for the selected model version and time range."""
    return {"title": title, "url": explore_url(log_selector()), "targetBlank": True}


def logs_data_link(rows: bool = False) -> dict[str, Any]:
    """A data link from a series (or, with ``rows``, a table row) to the Loki lines of its own model version."""
    ref = "__data.fields.{}" if rows else "__field.labels.{}"
    model, version = ("${" + ref.format(label) + "}" for label in ("model", "model_version"))
    return {"title": f"Logs of {model} {version}", "url": explore_url(log_selector(model, version, op="=")),
            "targetBlank": True}


def with_logs(panel: Any) -> Any:
    """Link ``panel`` to the Loki logs: a panel link (selected versions) and a data link (each series' version)."""
    panel.links = [*panel.links, logs_link()]
    link = logs_data_link(rows=isinstance(panel, g.Table))
    panel.extraJson = {**(panel.extraJson or {}), "fieldConfig": {"defaults": {"links": [link]}}}
    return panel


def variable(name: str, label: str, query: str | dict[str, Any], *, datasource: str = "prometheus",
             all_value: str | None = ".+", multi: bool = True) -> g.Template:
    """A query variable refreshed on time-range change; with an "All" option (``all_value``) unless None."""
    return g.Template(name=name, label=label, query=query, dataSource=datasource, includeAll=all_value is not None,
                      multi=multi, allValue=all_value, refresh=2, sort=1)


def label_variable(name: str, label: str, series: str, selector: str = "", **kwargs: Any) -> g.Template:
    """``label_values(series{selector}, name)`` from Prometheus."""
    return variable(name, label, f"label_values({series}{{{selector}}}, {name})" if selector
                    else f"label_values({series}, {name})", **kwargs)


def model_variables() -> list[g.Template]:
    """``$model`` and ``$model_version`` from the label values of ``mlscope_model_info``."""
    return [label_variable("model", "Model", MODEL_INFO),
            label_variable("model_version", "Version", MODEL_INFO, 'model=~"$model"')]


def window_variable(recorded: str) -> g.Template:
    """``$window``: the windows a recorded series is computed over (one at a time)."""
    return label_variable("window", "Window", recorded, MODEL_SELECTOR, all_value=None, multi=False)


def loki_variable(name: str, label: str, stream: str = f'{{app="{LOG_APP}"}}') -> g.Template:
    """A variable from the values of a Loki stream label (``.*`` as "All": the label may be absent)."""
    query = {"label": name, "stream": stream, "type": 1, "refId": "LokiVariableQueryEditor-VariableQuery"}
    return variable(name, label, query, datasource="loki", all_value=".*")


def textbox(name: str, label: str, default: str = "") -> g.Template:
    """A free-text variable (a search box)."""
    return g.Template(name=name, label=label, query=default, default=default, type="textbox")


def row(title: str) -> g.RowPanel:
    """A full-width section heading (pass it to :func:`dashboard` in place of a list of panels)."""
    return g.RowPanel(title=title)


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
    """Datasource strings -> ``{type, uid}`` objects; drop ``null`` fields (not a base threshold's), recursively."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if value is None and not (key == "value" and "color" in node):
                continue
            if key == "datasource" and isinstance(value, str):
                value = DATASOURCES.get(value, {"uid": value})
            out[key] = _modernise(value)
        return out
    if isinstance(node, list):
        return [_modernise(v) for v in node]
    return node


# Every field of Grafana's ``DashboardLink`` (panel links are dashboard links in its schema).
LINK_DEFAULTS: dict[str, Any] = {"asDropdown": False, "icon": "external link", "includeVars": False,
                                 "keepTime": False, "tags": [], "targetBlank": False, "tooltip": "",
                                 "type": "link"}
INTERVAL_FIELDS = ("auto", "auto_count", "auto_min")  # grafanalib writes them on every variable
LEGACY_PANEL_FIELDS = ("editable", "error", "fontSize", "columns")  # grafanalib's; no field of Grafana's Panel
FIELD_DEFAULTS = ("color", "mappings")  # grafanalib's table writes them on the panel, Grafana reads fieldConfig
# grafanalib's export and pre-Grafana-7 fields; none is a field of Grafana's Dashboard
LEGACY_DASHBOARD_FIELDS = ("__inputs", "hideControls", "sharedCrosshair", "style", "rows", "id")
ROW_FIELDS = frozenset({"collapsed", "datasource", "gridPos", "id", "panels", "repeat", "title", "type"})


def _conform_panel(panel: dict[str, Any]) -> None:
    if panel.get("type") == "row":
        for key in set(panel) - ROW_FIELDS:
            del panel[key]
        return
    for key in LEGACY_PANEL_FIELDS:
        panel.pop(key, None)
    defaults = panel.setdefault("fieldConfig", {"defaults": {}, "overrides": []})["defaults"]
    for key in FIELD_DEFAULTS:
        if key in panel:
            defaults.setdefault(key, panel.pop(key))
    if "links" in panel:
        panel["links"] = [{**LINK_DEFAULTS, **link} for link in panel["links"]]


def _conform(data: dict[str, Any]) -> None:
    """Shape grafanalib's output as Grafana's ``Dashboard`` type: panels and rows with Grafana's fields only,
    complete links, variables without the removed tag and interval fields, no deprecated
    ``timepicker.time_options``."""
    for key in LEGACY_DASHBOARD_FIELDS:
        data.pop(key, None)
    data.get("timepicker", {}).pop("time_options", None)
    for panel in data.get("panels", []):
        _conform_panel(panel)
    for variable in data.get("templating", {}).get("list", []):
        for key in ("useTags", *(() if variable.get("type") == "interval" else INTERVAL_FIELDS)):
            variable.pop(key, None)
        for option in [variable.get("current", {}), *variable.get("options", [])]:
            option.pop("tags", None)
        if not {"text", "value"} <= variable.get("current", {}).keys():
            variable.pop("current", None)  # names no option: Grafana picks one, as before


def to_json(board: g.Dashboard, version: int = 1) -> dict[str, Any]:
    """The dashboard as modern Grafana JSON (a plain dict) of Grafana's ``Dashboard`` type."""
    data: dict[str, Any] = _modernise(json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder)))
    _conform(data)
    data["schemaVersion"] = SCHEMA_VERSION
    data["version"] = version
    return data


def dumps(data: dict[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
