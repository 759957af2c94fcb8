"""The PromQL checks of ``mlscope dashboards check``: parse every query (promtool), run it (a Prometheus).

Queries are taken as Grafana sends them: template variables as their "All" value (else their current value,
else ``.+``), ``$__rate_interval`` and friends substituted (:func:`check.substitute`). Parsing uses
``promtool check rules`` on one temporary rule file holding each expression as a recording rule (one
process for every query; promtool parses and type-checks each rule's expression); without promtool on PATH
nothing is parsed and the summary says so.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import check

_RULE_ERROR = re.compile(r'rule (?P<index>\d+), "[^"]*": (?P<error>.+)$')


@dataclass(frozen=True)
class PromQuery:
    """One Prometheus query of a dashboard, as Grafana would send it."""

    where: str  # "<dashboard source>: <panel or variable>"
    expr: str


def _variable_values(data: dict[str, Any]) -> dict[str, str]:
    values = {}
    for variable in data.get("templating", {}).get("list", []):
        current = (variable.get("current") or {}).get("value")
        if variable.get("includeAll"):
            values[variable["name"]] = variable.get("allValue") or ".+"
        else:
            values[variable["name"]] = current if isinstance(current, str) and current else ".+"
    return values


def prometheus_queries(name: str, data: dict[str, Any]) -> list[PromQuery]:
    """Every PromQL expression of a dashboard's panels and variables, variables substituted."""
    values, found = _variable_values(data), []
    for query in check.queries(data):
        if query.datasource != "prometheus":
            continue
        selector = check.variable_selector(query.expr) if query.variable else None
        expr = selector[0] if selector else query.expr
        if expr:  # label_values(label) selects no series: nothing to parse
            found.append(PromQuery(f"{name}: {query.where}", check.substitute(expr, values)))
    return found


def promtool() -> str | None:
    return shutil.which("promtool")


def parse_problems(queries: list[PromQuery], binary: str) -> list[str]:
    """One line per query that promtool cannot parse (``promtool check rules`` on a temporary file)."""
    if not queries:
        return []
    rules = [{"record": f"mlscope_dashboard_check:query_{i}", "expr": q.expr} for i, q in enumerate(queries)]
    with tempfile.TemporaryDirectory(prefix="mlscope-dashboards-") as tmp:
        path = Path(tmp) / "queries.yml"  # JSON is YAML
        path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
        result = subprocess.run([binary, "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    found = []
    for line in (result.stdout + result.stderr).splitlines():
        match = _RULE_ERROR.search(line)
        if match:
            query = queries[int(match.group("index")) - 1]
            found.append(f"{query.where}: PromQL does not parse ({match.group('error')}): {query.expr}")
    if result.returncode != 0 and not found:
        found.append(f"promtool check rules failed ({result.returncode}): {(result.stderr or result.stdout).strip()}")
    return found


def live_problems(queries: list[PromQuery], url: str) -> list[str]:
    """One line per query the Prometheus at ``url`` answers with an error."""
    import requests

    found: list[str] = []
    for query in queries:
        try:
            response = requests.get(url.rstrip("/") + "/api/v1/query", params={"query": query.expr}, timeout=10)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            return found + [f"no Prometheus answers at {url} ({type(exc).__name__}): is --prometheus-url right?"]
        if body.get("status") != "success":
            found.append(f"{query.where}: {url} answered {body.get('errorType')}: {body.get('error')}: {query.expr}")
    return found


__all__ = ["PromQuery", "live_problems", "parse_problems", "prometheus_queries", "promtool"]
