"""Page assembly: the Jinja2 template, the panels' tables and charts, the JSON twin, the size budget.

A page is one HTML file: CSS in a ``<style>``, charts as inline ``<svg>``, the JSON twin of every number in a
``<script type="application/json">`` (data, never run), links the only URLs.

Budget-aware by design, whatever the number of features: a chart draws at most its panel's ``top`` lines of at
most :data:`mlscope.reports.fetch.MAX_POINTS` samples each; a ranked panel's table lists at most
:data:`TABLE_ROWS` lines (the rest are counted, and in the JSON twin); the embedded twin holds every line's
statistics but only the drawn lines' samples. A report's JSON twin file (``report --out``'s ``.json``) is
complete (every sample of every line) and has no budget. Over its budget all the same, a page drops the embedded
twin's samples, then log lines, then its charts, and says so.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from . import charts
from .fetch import Line, PanelData

TEMPLATES = Path(__file__).resolve().parent / "templates"
BUDGET_BYTES = 1_000_000
TABLE_ROWS = 20  # lines a ranked panel's table lists (the top of the ranking: the drawn ones first)
MANY_ALERTS = 10  # more rows than this and the alerts' table is folded (the charts stay near the top)


def iso(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(value: float | None) -> str:
    """A number as the page prints it (4 significant digits); the exact value is in ``data-value``."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4g}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _threshold_of(data: PanelData, line: Line) -> float | None:
    if data.panel.threshold_for and line.label not in data.panel.threshold_for:
        return None
    for candidate in data.thresholds:
        owner = candidate.label.removeprefix("threshold").strip()
        if not data.panel.by or owner == line.label.split(" ")[0] or len(data.thresholds) == 1:
            return candidate.stats()["last"]
    return None


def panel_context(data: PanelData, marks: tuple[float, ...] = (), draw: bool = True,
                  window: tuple[float, float] | None = None) -> dict[str, Any]:
    """What the template shows of one panel: its chart (over ``window``: every chart of a page spans the
    same), one table row per line, its notes."""
    rows = []
    listed = data.lines[:max(TABLE_ROWS, data.panel.top)] if data.panel.top else data.lines
    for line in listed:
        stats, threshold = line.stats(), _threshold_of(data, line)
        rows.append({"label": line.label, "expr": line.expr, "stats": stats,
                     "shown": {k: shown(v) for k, v in stats.items()},
                     "at": iso(line.values[-1][0]) if line.values else "",
                     "threshold": threshold, "threshold_shown": shown(threshold)})
    more = max(0, len(data.lines) - data.panel.top) if data.panel.top else 0
    return {"key": data.panel.key, "title": data.panel.title, "rows": rows, "missing": data.missing,
            "svg": charts.svg(data, marks, window) if draw and data.lines else "", "more": more,
            "top": data.panel.top, "unlisted": len(data.lines) - len(listed)}


@dataclass
class Page:
    """What a page holds, before rendering: the template's context and the JSON twin."""

    kind: str  # "snapshot" or "report"
    title: str
    subtitle: str
    context: dict[str, Any] = field(default_factory=dict)
    twin: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the budget took out
    embedded_samples: bool = True  # the embedded twin carries the drawn lines' samples (the budget may say no)


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def twin_json(twin: dict[str, Any]) -> str:
    """The JSON twin as it sits in the page: ``</`` escaped so no value can end the script element."""
    return json.dumps(twin, sort_keys=True, default=str, allow_nan=False).replace("</", "<\\/")


def clean(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def render(page: Page) -> str:
    """The page's HTML."""
    context = {"alerts": [], "alerts_title": "Alerts", "many_alerts": MANY_ALERTS, "alerts_note": "",
               "versions": [], "lineage": [],
               "logs": None, "runbooks": [], "links": [], "missing": [], **page.context}
    context["missing"] = list(context["missing"]) + page.notes
    twin = embedded(clean({**page.twin, "kind": page.kind, "title": page.title,
                           "written_by": f"mlscope {__version__}", "budget_notes": page.notes}),
                    page.embedded_samples)
    return environment().get_template("page.html.j2").render(
        kind=page.kind, title=page.title, subtitle=page.subtitle, version=__version__,
        generated_at=iso(page.twin.get("generated_at")), data_json=twin_json(twin), **context)


def embedded(twin: dict[str, Any], samples: bool = True) -> dict[str, Any]:
    """The twin as the page embeds it (a copy: ``clean`` made one): every line's statistics, the samples of the
    drawn lines only (of none without ``samples``)."""
    for version in twin.get("versions", []):
        for panel in version.get("panels", []):
            drawn = panel.get("drawn") or len(panel.get("lines", []))
            for i, line in enumerate(panel.get("lines", [])):
                if not samples or i >= drawn:
                    line["values"] = []
            for line in panel.get("thresholds", []) if not samples else []:
                line["values"] = []
    return twin


def within_budget(page: Page, budget: int = BUDGET_BYTES) -> str:
    """Render ``page`` within ``budget`` bytes (UTF-8), taking out what weighs most first, and saying so."""
    html = render(page)
    steps = [("the JSON twin's samples were left out (their statistics are kept)", "twin"),
             ("log lines were left out", "logs"),
             ("charts were left out (their tables are kept)", "charts")]
    for note, part in steps:
        if len(html.encode()) <= budget:
            return html
        page.notes.append(f"size budget {budget} bytes: {note}")
        if part == "twin":
            page.embedded_samples = False
        elif part == "logs" and page.context.get("logs") is not None:
            logs = page.context["logs"]
            logs["truncated"] = logs.get("truncated", 0) + len(logs.get("lines", []))
            logs["lines"] = []
        elif part == "charts":
            for version in page.context.get("versions", []):
                for panel in version["panels"]:
                    panel["svg"] = ""
        html = render(page)
    return html
