"""The receiver's pages: an index of alerts and runbooks, one page per alert, the runbooks themselves.

An alert's page says where to look whether or not Grafana runs: the dashboard link and its uid (the JSON
file to import into any Grafana), the PromQL Prometheus evaluated (from the alert's generator URL, to paste
into Prometheus's own UI), the logs link and the runbook. Plain HTML, no script, no external resource.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .record import AlertRecord

RUNBOOK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
         "td,th{padding:.2em .6em;text-align:left;vertical-align:top}code,pre{background:#f4f4f4}"
         ".firing{color:#b00}.resolved{color:#070}")


DOC_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


def runbook_path(folder: Path, name: str, pattern: re.Pattern[str] = RUNBOOK_NAME) -> Path | None:
    """``folder/<name>.md`` when ``name`` matches ``pattern`` (an alert name; :data:`DOC_NAME` for the docs'
    pages) and the file is there: no path tricks."""
    if not pattern.match(name):
        return None
    path = folder / f"{name}.md"
    return path if path.is_file() else None


def runbook_names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.md") if RUNBOOK_NAME.match(p.stem))


def dashboard_uid(url: str) -> str:
    """The dashboard uid of a Grafana ``.../d/<uid>[/slug][?vars]`` link ("" when it is none)."""
    parts = urlsplit(url).path.split("/")
    return parts[parts.index("d") + 1] if "d" in parts[:-1] else ""


def generator_expr(url: str) -> str:
    """The PromQL of Prometheus's generator URL (``/graph?g0.expr=...``), "" when it has none."""
    return parse_qs(urlsplit(url).query).get("g0.expr", [""])[0]


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _link(url: str, text: str | None = None) -> str:
    if not url:
        return "<em>none</em>"
    return f"<a href='{html.escape(url, quote=True)}'>{html.escape(text or url)}</a>"


def index_page(records: Iterable[AlertRecord], runbooks: Iterable[str]) -> str:
    """``GET /``: the alerts on record (latest change first) and every runbook."""
    rows = "".join(
        f"<tr><td class='{html.escape(r.status)}'>{html.escape(r.status)}</td>"
        f"<td>{_link('/alerts/' + r.fingerprint, r.alertname)}</td>"
        f"<td>{html.escape(' '.join(v for k, v in sorted(r.labels.items()) if k != 'alertname'))}</td>"
        f"<td>{html.escape(r.starts_at)}</td><td>{html.escape(r.annotations.get('summary', ''))}</td></tr>"
        for r in records)
    books = " · ".join(_link(f"/runbooks/{name}.md", name) for name in runbooks)
    return _page("mlscope alert receiver", (
        "<h2>Alerts</h2><table><tr><th>status</th><th>alert</th><th>labels</th><th>since</th><th>summary</th></tr>"
        f"{rows or '<tr><td colspan=5>none received yet</td></tr>'}</table>"
        f"<h2>Runbooks</h2><p>{books}</p><p>JSON: {_link('/api/alerts')}, one alert: /api/alerts/FINGERPRINT; "
        f"metrics: {_link('/metrics')}</p>"))


def alert_page(record: AlertRecord, *, grafana_running: bool | None = None, dashboards: Path | None = None,
               prometheus_url: str = "") -> str:
    """``GET /alerts/<fingerprint>``: what fired, its number, and every place to look.

    ``dashboards``: the folder of the dashboards' JSON, named in full for a person without Grafana.
    """
    a = record.annotations
    uid, expr = dashboard_uid(a.get("dashboard", "")), generator_expr(record.generator_url)
    grafana_note = {True: "", None: " (when Grafana runs there)",
                    False: " &mdash; Grafana is not running here: import the JSON below or use the PromQL"}
    folder = str(dashboards) if dashboards is not None else "provisioning/grafana/dashboards"
    where = (f"<p>Dashboard uid <code>{html.escape(uid)}</code>: "
             f"<code>{html.escape(folder)}/{html.escape(uid)}.json</code> to import into any Grafana."
             "</p>") if uid else ""
    ends = "" if record.status == "firing" else f"; ended {html.escape(record.ends_at)}"
    query = ""
    if expr:
        graph = record.generator_url
        if prometheus_url:
            graph = f"{prometheus_url.rstrip('/')}/graph?{urlsplit(record.generator_url).query}"
        query = (f"<h2>PromQL</h2><p>What Prometheus evaluates (its value is the number in the description); "
                 f"{_link(graph, 'open in Prometheus')}:</p><pre>{html.escape(expr)}</pre>")
    labels = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                     for k, v in sorted(record.labels.items()))
    body = (f"<p class='{html.escape(record.status)}'><b>{html.escape(record.status)}</b> since "
            f"{html.escape(record.starts_at)}{ends}; "
            f"{record.notifications} notification(s) received</p>"
            f"<p><b>{html.escape(a.get('summary', ''))}</b></p><p>{html.escape(a.get('description', ''))}</p>"
            f"<h2>Links</h2><ul><li>Runbook: {_link(a.get('runbook_url', ''))}</li>"
            f"<li>Dashboard: {_link(a.get('dashboard', ''))}{grafana_note[grafana_running]}</li>"
            f"<li>Logs: {_link(a.get('logs_url', ''), 'Loki lines (Grafana Explore)')}</li></ul>{where}{query}"
            f"<h2>Labels</h2><table>{labels}</table>")
    return _page(f"{record.alertname} ({record.status})", body)
