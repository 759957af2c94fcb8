"""Dashboards as code: fresh and deterministic JSON, structural checks, Grafana's SDK and grammar, PromQL syntax."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from mlscope.cli import main
from mlscope.dashboards import check as dashcheck
from mlscope.stack.servers import ServerError
from support import HERE, ROOT
from support.dashboards import FIXTURES, OUTPUT, bad_source, committed, shipped_logql
from support.helpers import require_binary, run_promtool
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


def test_check_parses_promql_with_promtool_and_runs_it_on_a_prometheus(
        prometheus: PrometheusHarness, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    require_binary("promtool")
    source = bad_source(tmp_path / "src", "sum(rate(mlscope_predictions_total[$__rate_interval])")
    output = tmp_path / "out"
    assert main(["dashboards", "build", "--source", str(source.parent), "--output", str(output)]) == 0
    capsys.readouterr()
    assert main(["dashboards", "check", "--source", str(source.parent), "--output", str(output),
                 "--prometheus-url", prometheus.server.url]) == 1
    out, err = capsys.readouterr()
    expr = "sum(rate(mlscope_predictions_total[1m])"
    assert err.splitlines() == [
        f"mlscope: {source}: panel 1 'Requests': PromQL does not parse (could not parse expression: 1:40: parse "
        f"error: unclosed left parenthesis): {expr}",
        f"mlscope: {source}: panel 1 'Requests': {prometheus.server.url} answered bad_data: invalid parameter "
        f'"query": 1:40: parse error: unclosed left parenthesis: {expr}']
    assert "parsed with promtool (" in out and f"run on {prometheus.server.url}" in out
    # The shipped dashboards: every query parses and runs (165 of them), nothing is reported.
    assert main(["dashboards", "check", "--source", str(ROOT / "dashboards"), "--output", str(OUTPUT),
                 "--prometheus-url", prometheus.server.url]) == 0
    assert capsys.readouterr().err == ""


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
    """Every LogQL query the stack ships (dashboards, datasource links, alert links), variables filled in."""
    exprs = [expr.replace("$${__value.raw}", "abc-1").replace("{{$labels.model}}", "m")
             .replace("{{$labels.model_version}}", "1") for _, expr in shipped_logql()]
    return [dashcheck.substitute(e, VARIABLES) for e in exprs]


def test_logql_parses_with_grafanas_grammar_and_uses_only_stream_labels() -> None:
    results = logql_parse(logql_expressions())
    assert len(results) >= 10
    for result in results:
        assert result["error"] is None, result
        assert set(result["streamLabels"]) <= LOG_STREAM_LABELS, result
        assert result["rangeOps"] == [], result  # log volume comes from the shipper's counters, not from Loki
        assert not any("abc-1" in f for f in result["lineFilters"]), result  # no request id as a substring
    by_request = [r for r in results if "abc-1" in r["expr"]]
    assert len(by_request) >= 3  # the dashboard's search, the exemplar link, the derived field
    for result in by_request:  # Grafana's grammar reads the request id as an equality on the parsed field
        # an equality on the parsed id field: a request's, a pipeline run's or a data batch's (derived fields)
        assert result["parsers"] == ["json"] and result["labelFilters"] in (
            [f'{field}="abc-1"'] for field in ("request_id", "run_id", "data_batch_id")), result
    bad = logql_parse(['{app="mlscope" |= "x"', '{request_id="abc"}', 'sum(count_over_time({a="b"} |= "abc-1" [1m]))'])
    assert bad[0]["error"] is not None
    assert not set(bad[1]["streamLabels"]) <= LOG_STREAM_LABELS
    assert bad[2]["rangeOps"] == ["count_over_time"] and bad[2]["lineFilters"] == ['|= "abc-1"']


def promtool_exprs(tmp_path, interval: str, series: list[dict], tests: list[dict]) -> None:
    """promtool's ``promql_expr_test`` cases ``tests`` on ``series`` (no rules), every ``interval``: all pass."""
    import yaml

    (tmp_path / "rules.yml").write_text("groups: []\n")
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": interval,
                                                       "tests": [{"interval": interval, "input_series": series,
                                                                  "promql_expr_test": tests}]}))
    result = run_promtool("test", "rules", tmp_path / "test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_log_volume_panels_read_lines_per_second_on_real_promtool(tmp_path) -> None:
    """The volume panel's queries, evaluated by promtool on a shipper that sends 300 lines/s for 10 minutes."""
    require_binary("promtool")
    logs = committed()["mlscope-logs.json"]
    (panel,) = [p for p in logs["panels"] if str(p.get("title", "")).startswith("Log lines per second")]
    exprs = [dashcheck.substitute(t["expr"], rate_interval="1m") for t in panel["targets"]]
    series = [{"series": 'mlscope_log_lines_sent_total{handler="loki",instance="a:8000",job="svc"}',
               "values": "0+4500x40"},  # +4500 every 15 s: 300 lines/s
              {"series": 'mlscope_log_lines_dropped_total{handler="loki",instance="a:8000",job="svc",'
                         'reason="queue_full"}', "values": "0+15x40"}]  # 1 line/s
    expected = {"mlscope_log_lines_sent_total": [{"labels": '{handler="loki"}', "value": 300}],
                "mlscope_log_lines_dropped_total": [{"labels": '{handler="loki",reason="queue_full"}', "value": 1}]}
    tests = [{"expr": e, "eval_time": "5m", "exp_samples": next(
        (v for name, v in expected.items() if name in e), [{"labels": "{}", "value": 0}])} for e in exprs]
    promtool_exprs(tmp_path, "15s", series, tests)
    assert len(tests) >= 3 and sum("lines_sent" in e for e in exprs) == 1


def test_pipeline_run_counts_include_each_pipelines_first_run_on_real_promtool(tmp_path) -> None:
    """The run-count panels on promtool: pipeline "first" succeeds at 2m and 4m and fails at 3m (its gauges appear
    with those runs), "old" had succeeded before and succeeds again at 3m. Over 5m: 2, 1 and 1 runs (changes()
    alone counted 1, 0 and 1); over the 1m rate interval at 2m: first's first success. The training job "train"
    (mlscope_pipeline_info kind="training") succeeds too but is no pipeline: no panel counts it, "All" or not."""
    require_binary("promtool")
    panels = committed()["mlscope-pipelines.json"]["panels"]
    titles = ("Successful runs (each interval)", "Failed runs (each interval)", "Runs over the dashboard's range")
    targets = {p["title"]: [t["expr"] for t in p["targets"]] for p in panels if p.get("title") in titles}
    (ok_each,), (failed_each,), (ok_range, failed_range) = (targets[t] for t in titles)
    success = "mlscope_pipeline_last_success_timestamp_seconds"
    failure = "mlscope_pipeline_last_failure_timestamp_seconds"
    series = [{"series": f'{success}{{pipeline="first"}}', "values": "_ _ 120 120 240 240"},
              {"series": f'{failure}{{pipeline="first"}}', "values": "_ _ _ 180 180 180"},
              {"series": f'{success}{{pipeline="old"}}', "values": "0 0 0 180 180 180"},
              {"series": f'{success}{{pipeline="train"}}', "values": "_ _ 120 120 240 240"}]
    series += [{"series": f'mlscope_pipeline_info{{pipeline="{p}",owner="",kind="{k}"}}', "values": "1x5"}
               for p, k in (("first", "pipeline"), ("old", "pipeline"), ("train", "training"))]

    def case(expr: str, at: str, window: str, want: dict[str, int]) -> dict:
        expr = dashcheck.substitute(expr, {"pipeline": ".*"}, rate_interval=window, range_=window)
        return {"expr": expr, "eval_time": at,
                "exp_samples": [{"labels": f'{{pipeline="{p}"}}', "value": v} for p, v in want.items()]}

    tests = [case(ok_range, "5m", "5m", {"first": 2, "old": 1}), case(failed_range, "5m", "5m", {"first": 1}),
             case(ok_each, "2m", "1m", {"first": 1, "old": 0}), case(failed_each, "3m", "1m", {"first": 1})]
    pipelines = next(t["expr"] for p in panels if p.get("title") == "Pipelines" for t in p["targets"])
    tests.append({"expr": dashcheck.substitute(pipelines, {"pipeline": ".+"}), "eval_time": "5m",
                  "exp_samples": [{"labels": "{}", "value": 2}]})
    promtool_exprs(tmp_path, "1m", series, tests)
    variable = next(v for v in committed()["mlscope-pipelines.json"]["templating"]["list"] if v["name"] == "pipeline")
    assert "mlscope_pipeline_last_success_timestamp_seconds" in json.dumps(variable)  # pipelines that ran
