"""Dashboards as code: fresh and deterministic JSON, structural checks, Grafana's SDK and grammar, PromQL syntax."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from mlscope.dashboards import check as dashcheck
from mlscope.stack.servers import ServerError
from support import HERE, ROOT
from support.dashboards import FIXTURES, committed
from support.prometheus import PrometheusHarness

LOG_STREAM_LABELS = {"app", "model", "model_version", "env", "level"}
VARIABLES = {"model": ".+", "model_version": ".+", "window": "1m", "request_id": "abc-1", "env": ".*",
             "__field.labels.model": "m", "__field.labels.model_version": "1", "__data.fields.model": "m",
             "__data.fields.model_version": "1"}


def promql_error(api, expr: str) -> str | None:
    try:
        api.query(expr)
    except ServerError as exc:
        return str(exc)
    return None


def test_every_promql_query_parses_on_real_prometheus(prometheus: PrometheusHarness) -> None:
    checked = 0
    for name, data in committed().items():
        for query in dashcheck.queries(data):
            if query.datasource != "prometheus":
                continue
            selector = dashcheck.variable_selector(query.expr) if query.variable else None
            expr = dashcheck.substitute(selector[0] or "up" if selector else query.expr, VARIABLES)
            assert promql_error(prometheus.api, expr) is None, f"{name} {query.where}: {expr}"
            checked += 1
    assert checked > 10
    bad = json.loads((FIXTURES / "promql_syntax.json").read_text())
    errors = [promql_error(prometheus.api, dashcheck.substitute(q.expr, VARIABLES)) for q in dashcheck.queries(bad)
              if q.datasource == "prometheus" and not q.variable]
    assert any(e and "bad_data" in e for e in errors)


def logql_parse(exprs: list[str]) -> list[dict]:
    node_modules = ROOT / ".node" / "node_modules"
    if not shutil.which("node") or not (node_modules / "@grafana" / "lezer-logql").exists():
        message = "node and .node/node_modules/@grafana/lezer-logql are needed (make setup installs them)"
        if os.environ.get("MLSCOPE_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(["node", str(HERE / "logql" / "parse.cjs")], input=json.dumps(exprs),
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "NODE_PATH": str(node_modules)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def logql_expressions() -> list[str]:
    """Every LogQL query the stack ships: Loki panels, panel links, datasource links."""
    import yaml

    exprs = [q.expr for data in committed().values() for q in dashcheck.queries(data) + dashcheck.link_queries(data)
             if q.datasource == "loki"]
    sources = yaml.safe_load((ROOT / "provisioning" / "grafana" / "datasources" / "datasources.yml").read_text())
    for source in sources["datasources"]:
        links = source.get("jsonData", {}).get("exemplarTraceIdDestinations", []) + \
            source.get("jsonData", {}).get("derivedFields", [])
        exprs += [link["url"].replace("$${__value.raw}", "abc-1") for link in links]
    return [dashcheck.substitute(e, VARIABLES) for e in exprs]


def test_logql_parses_with_grafanas_grammar_and_uses_only_stream_labels() -> None:
    results = logql_parse(logql_expressions())
    assert len(results) >= 3
    for result in results:
        assert result["error"] is None, result
        assert set(result["streamLabels"]) <= LOG_STREAM_LABELS, result
    bad = logql_parse(['{app="mlscope" |= "x"', '{request_id="abc"}'])
    assert bad[0]["error"] is not None
    assert not set(bad[1]["streamLabels"]) <= LOG_STREAM_LABELS
