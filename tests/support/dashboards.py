"""The committed dashboards and the known-bad dashboard fixtures."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from . import HERE, ROOT

OUTPUT = ROOT / "provisioning" / "grafana" / "dashboards"


FIXTURES = HERE / "fixtures" / "dashboards"


def committed() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(OUTPUT.glob("mlscope-*.json"))}


DATASOURCES = ROOT / "provisioning" / "grafana" / "datasources" / "datasources.yml"
ALERT_RULES = ROOT / "alerting" / "rules"


def datasource_links(target: str = "loki") -> list[dict]:
    """The Grafana datasources' links into ``target`` (a datasource uid): exemplar destinations and derived
    fields (those into Loki carry LogQL; those into Tempo, a trace id)."""
    import yaml

    links = []
    for source in yaml.safe_load(DATASOURCES.read_text())["datasources"]:
        data = source.get("jsonData", {})
        links += data.get("exemplarTraceIdDestinations", []) + data.get("derivedFields", [])
    return [link for link in links if link.get("datasourceUid") == target]


@functools.lru_cache(maxsize=1)
def shipped_logql() -> tuple[tuple[str, str], ...]:
    """``(where, expr)`` of every LogQL query the stack ships, variables unsubstituted: the dashboards'
    Loki panels, variables and links, the datasources' links, the alerts' ``logs_url``."""
    from urllib.parse import unquote

    import yaml

    from mlscope.dashboards import check as dashcheck

    found = [(f"{name} {q.where}", q.expr) for name, data in committed().items()
             for q in dashcheck.queries(data) + dashcheck.link_queries(data) if q.datasource == "loki"]
    found += [(f"datasource link {link['name']}", link["url"]) for link in datasource_links()]
    for path in sorted(ALERT_RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                url = rule.get("annotations", {}).get("logs_url")
                if url:
                    state = json.loads(unquote(url.split("/explore?left=", 1)[1]))
                    found += [(f"{path.name} {rule['alert']} logs_url", q["expr"]) for q in state["queries"]]
    return tuple(found)


def bad_source(folder: Path, expr: str) -> Path:
    """A dashboards folder holding one source whose only panel queries ``expr``; returns the source."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "bad.py"
    panel = f"gf.stat('Requests', gf.prom({expr!r}))"
    source.write_text("from mlscope import grafana as gf\n\n"
                      f"dashboard = gf.dashboard('mlscope-bad', 'bad', rows=[[{panel}]])\n")
    return source
