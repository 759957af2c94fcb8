"""Structural checks of generated dashboard JSON, and extraction of its queries for live checks.

What Grafana would only show as a broken panel at run time is caught here:
duplicate panel ids, overlapping panels, datasources that are strings or not
provisioned, units Grafana does not know, "per second" panels that are not
rates, LogQL metric queries (log volume comes from the shipper's counters), and
metric names missing from the catalog. PromQL syntax and data are checked against a real Prometheus by the
tests; LogQL with Grafana's own grammar.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import catalog
from ..rules.config import duration_seconds
from ..rules.promql import metric_names
from .style import PROVISIONED_UIDS

# Units of Grafana's value formats (packages/grafana-data/src/valueFormats/categories.ts) that mlscope uses
# or a contributor is likely to reach for.
GRAFANA_UNITS = frozenset({
    "none", "short", "percent", "percentunit", "humidity", "dB", "hex0x", "hex", "sci", "locale", "pixel",
    "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms", "dtdhms", "clockms", "clocks",
    "pps", "bits", "bytes", "kbytes", "mbytes", "gbytes", "tbytes", "decbits", "decbytes", "deckbytes", "decmbytes",
    "decgbytes", "dectbytes", "bps", "Bps", "KBs", "MBs", "GBs", "binBps", "binbps",
    "ops", "reqps", "rps", "wps", "iops", "opm", "rpm", "wpm", "cps", "eps", "mps", "rds", "wrps",
    "celsius", "fahrenheit", "kelvin", "watt", "kwatt", "mwatt", "Wh", "kWh", "joule", "volt", "amp",
    "hertz", "rotkhz", "rotmhz", "rotghz", "rothz", "rotrpm", "string", "bool", "bool_yes_no", "bool_on_off",
    "dateTimeAsIso", "dateTimeFromNow",
})
# Units that are per second: a panel whose title says "per second" (or "/s") must use one of them.
PER_SECOND_UNITS = frozenset({"pps", "bps", "Bps", "KBs", "MBs", "GBs", "binBps", "binbps", "ops", "reqps", "rps",
                              "wps", "iops", "cps", "eps", "mps", "rds", "wrps"})
_SAYS_PER_SECOND = re.compile(r"per second|/s\b", re.IGNORECASE)
_PER_SECOND = re.compile(r"\b(?:rate|irate|deriv)\s*\(")  # PromQL and LogQL functions that return per-second values
# LogQL metric queries: they count what Loki stores, where a push re-sent after a timeout is stored twice.
_LOKI_METRIC = re.compile(r"\b(?:\w+_over_time|rate|bytes_rate|rate_counter)\s*\(")
_LABEL_VALUES = re.compile(r"label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)")


@dataclass(frozen=True)
class Query:
    """One query of a dashboard: where it is, which datasource, the expression."""

    where: str
    datasource: str
    expr: str
    variable: bool = False


def _panels(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in data.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def _uid(datasource: Any, where: str, problems: list[str]) -> str | None:
    if datasource is None:
        return None
    if not isinstance(datasource, dict):
        problems.append(f"{where}: datasource {datasource!r} must be an object {{type, uid}}")
        return None
    uid = datasource.get("uid")
    if uid not in PROVISIONED_UIDS and not str(uid).startswith("-- "):
        problems.append(f"{where}: datasource uid {uid!r} is not provisioned ({sorted(PROVISIONED_UIDS)})")
    return uid


def queries(data: dict[str, Any]) -> list[Query]:
    """Every panel target and template-variable query, with its datasource uid."""
    found = []
    for panel in _panels(data):
        panel_uid = (panel.get("datasource") or {}).get("uid") if isinstance(panel.get("datasource"), dict) else None
        for target in panel.get("targets", []):
            ds = target.get("datasource")
            uid = ds.get("uid") if isinstance(ds, dict) else panel_uid
            if target.get("expr"):
                found.append(Query(f"panel {panel.get('id')} {panel.get('title')!r}", uid or "", target["expr"]))
    for variable in data.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = (query.get("query") or query.get("stream")) if isinstance(query, dict) else query
        ds = variable.get("datasource")
        if variable.get("type") == "query" and query:
            found.append(Query(f"variable ${variable.get('name')}", ds.get("uid", "") if isinstance(ds, dict) else "",
                               query, variable=True))
    return found


def link_queries(data: dict[str, Any]) -> list[Query]:
    """The queries of every Explore link (LogQL on Loki, TraceQL on Tempo): panel, data and dashboard links."""
    links = list(data.get("links", []))
    for panel in _panels(data):
        links += panel.get("links", [])
        links += panel.get("fieldConfig", {}).get("defaults", {}).get("links", [])
    found = []
    for link in links:
        url = link.get("url", "")
        if "/explore?left=" in url:
            state = json.loads(url.split("/explore?left=", 1)[1])
            found += [Query(f"link {link.get('title')!r}", (state.get("datasource") or ""),
                            q.get("expr") or q.get("query", "")) for q in state.get("queries", [])]
    return found


def variable_selector(expr: str) -> tuple[str, str] | None:
    """``label_values(selector, label)`` -> (selector or "", label); None for other variable queries."""
    match = _LABEL_VALUES.fullmatch(expr.strip())
    return (match.group("selector") or "", match.group("label")) if match else None


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def _rate_problems(panel: dict[str, Any], where: str, unit: str | None) -> list[str]:
    """A "per second" panel computes a rate in a per-second unit; no panel counts log lines in Loki."""
    found = []
    targets = [t for t in panel.get("targets", []) if t.get("expr")]
    if _SAYS_PER_SECOND.search(str(panel.get("title", ""))) and targets:
        if unit not in PER_SECOND_UNITS:
            found.append(f"{where}: says per second but its unit {unit!r} is not a per-second unit")
        found += [f"{where}: says per second but {t['expr']!r} is not a rate (a count over an interval is "
                  "per interval)" for t in targets if not _PER_SECOND.search(t["expr"])]
    for target in targets:
        ds = target.get("datasource")
        if isinstance(ds, dict) and ds.get("uid") == "loki" and _LOKI_METRIC.search(target["expr"]):
            found.append(f"{where}: {target['expr']!r} counts lines stored in Loki, where a push re-sent after "
                         "a timeout is stored twice: read the log shipper's counters (gf.log_shipper_rates)")
    return found


ALLOWED_FILE = "allowed-metrics.txt"


def allowed_names(source_dir: Path, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """Metric names (``NAME``) and prefixes (``PREFIX*``) outside the catalog that dashboards may use: your
    own service's metrics, listed one per line in ``<sources>/allowed-metrics.txt`` (``#`` comments) and ``extra``."""
    path = Path(source_dir) / ALLOWED_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    names = [line.split("#", 1)[0].strip() for line in lines]
    return tuple(n for n in (*names, *extra) if n)


def _allowed(name: str, allowed: Sequence[str]) -> bool:
    return any(name == a or (a.endswith("*") and name.startswith(a[:-1])) for a in allowed)


def problems(data: dict[str, Any], allowed: Sequence[str] = ()) -> list[str]:
    """Everything wrong with a dashboard's JSON that can be seen without running Grafana.

    ``allowed``: names and ``PREFIX*`` outside the catalog that are not problems (:func:`allowed_names`).
    """
    found: list[str] = []
    if not isinstance(data.get("schemaVersion"), int) or data["schemaVersion"] < 36:
        found.append(f"schemaVersion {data.get('schemaVersion')!r} is older than Grafana 9's 36")
    if not data.get("uid"):
        found.append("dashboard has no uid")
    panels = list(_panels(data))
    ids = [p.get("id") for p in panels]
    repeated = {i for i in ids if ids.count(i) > 1}
    found += [f"panel id {i} is used more than once" for i in sorted(repeated, key=lambda i: (i is None, i))]
    for i, a in enumerate(panels):
        for b in panels[i + 1:]:
            if "gridPos" in a and "gridPos" in b and _overlaps(a["gridPos"], b["gridPos"]):
                found.append(f"panels {a.get('id')} and {b.get('id')} overlap")
    for panel in panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        _uid(panel.get("datasource"), where, found)
        for target in panel.get("targets", []):
            _uid(target.get("datasource"), where, found)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if unit is not None and unit not in GRAFANA_UNITS:
            found.append(f"{where}: unit {unit!r} is not a Grafana unit")
        found += _rate_problems(panel, where, unit)
    for variable in data.get("templating", {}).get("list", []):
        _uid(variable.get("datasource"), f"variable ${variable.get('name')}", found)
    for query in queries(data):
        if query.datasource != "prometheus":
            continue
        selector = variable_selector(query.expr) if query.variable else None
        expr = selector[0] if selector else query.expr
        for name in sorted(metric_names(expr)):
            if not catalog.is_known(name) and not _allowed(name, allowed):
                found.append(f"{query.where}: metric {name!r} is not in the catalog (a metric of your own? "
                             f"list it in {ALLOWED_FILE} beside the sources, or pass --allow {name})")
    return found


# Grafana's interval rounding (packages/grafana-data/src/datetime/rangeutil.ts, roundInterval): up to each
# bound (ms), the interval used.
_ROUNDING = ((15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000),
             (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000), (90000, 60000),
             (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
             (2700000, 1800000), (5400000, 3600000), (9000000, 7200000), (16200000, 10800000),
             (32400000, 21600000), (86400000, 43200000))


def grafana_intervals(range_s: float, scrape_s: float, max_data_points: int = 1000) -> dict[str, str]:
    """``$__interval`` and ``$__rate_interval`` as Grafana computes them for a Prometheus panel.

    ``$__interval`` is the range over the panel's data points, rounded, at least the datasource's scrape
    interval; ``$__rate_interval`` is max(``$__interval`` + scrape interval, 4 x scrape interval).
    """
    raw_ms = range_s * 1000 / max_data_points
    interval_ms = next((v for bound, v in _ROUNDING if raw_ms <= bound), 86400000)
    interval_ms = max(interval_ms, int(scrape_s * 1000))
    rate_ms = max(interval_ms + int(scrape_s * 1000), int(4 * scrape_s * 1000))
    return {"interval": f"{interval_ms}ms", "rate_interval": f"{rate_ms}ms", "range_": f"{int(range_s)}s"}


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement that inserts ``text`` as is (no backslash escapes)."""
    return lambda _match: text


def substitute(expr: str, variables: dict[str, str] | None = None, *, rate_interval: str = "1m",
               interval: str = "15s", range_: str = "1h") -> str:
    """Replace Grafana's variables as Grafana would before sending the query (``$x``, ``${x}``, ``[[x]]``)."""
    values = {"__rate_interval": rate_interval, "__interval": interval, "__auto": interval,
              "__range": range_, "__range_s": f"{duration_seconds(range_):g}",
              "__interval_ms": f"{duration_seconds(interval) * 1000:g}", **(variables or {})}
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("[[" + name + "]]", values[name])
        expr = re.sub(r"\$" + re.escape(name) + r"(?![A-Za-z0-9_])", _literal(values[name]), expr)
    return expr
