"""Dashboards as code: fresh and deterministic JSON, structural checks, Grafana's SDK and grammar, PromQL syntax."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlscope.cli import main
from mlscope.dashboards import check as dashcheck
from mlscope.dashboards import style as grafana
from mlscope.dashboards.build import build, stale
from mlscope.rules.promql import metric_names
from support import ROOT
from support.dashboards import FIXTURES, OUTPUT, bad_source, committed

SOURCES = ROOT / "dashboards"


@pytest.fixture
def no_promtool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dashboards check` without promtool on PATH (a unit test starts no program; tests/e2e parse with it)."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


def test_committed_json_is_fresh(no_promtool: None) -> None:
    assert committed(), "no generated dashboards committed"
    assert stale(SOURCES, OUTPUT) == [], "run `mlscope dashboards build` and commit"
    assert main(["dashboards", "check", "--source", str(SOURCES), "--output", str(OUTPUT)]) == 0


def test_build_versions_changes_and_removes_orphans(tmp_path: Path) -> None:
    sources, output = tmp_path / "src", tmp_path / "out"
    shutil.copytree(SOURCES, sources, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(OUTPUT, output)
    overview = output / "mlscope-model-overview.json"
    before = json.loads(overview.read_text())["version"]
    build(sources, output)
    assert json.loads(overview.read_text())["version"] == before  # no change, no bump
    source = sources / "model_overview.py"
    source.write_text(source.read_text().replace('"Requests/s"', '"Requests per second"'))
    assert stale(sources, output) == [overview]
    build(sources, output)
    assert json.loads(overview.read_text())["version"] == before + 1
    source.unlink()
    _, written, removed = build(sources, output)
    assert written == [] and removed == [overview] and not overview.exists()  # only what changed is written


@pytest.mark.parametrize("name", sorted(committed()))
def test_structure(name: str) -> None:
    data = committed()[name]
    assert dashcheck.problems(data) == []
    assert data["schemaVersion"] == grafana.SCHEMA_VERSION and data["uid"] == name.removesuffix(".json")
    text = (OUTPUT / name).read_text()
    assert text == grafana.dumps(data)  # sorted keys, stable layout
    assert '"datasource": "' not in text
    assert "null" not in text.replace('"value": null', "")  # null only as a base threshold step (Grafana's type)


@pytest.mark.parametrize("fixture, message", [
    ("string_datasource", "must be an object"),
    ("unknown_unit", "not a Grafana unit"),
    ("overlapping", "overlap"),
    ("undefined_metric", "not in the catalog"),
])
def test_known_bad_dashboards_are_rejected(fixture: str, message: str) -> None:
    found = dashcheck.problems(json.loads((FIXTURES / f"{fixture}.json").read_text()))
    assert any(message in p for p in found), found


def test_alert_links_and_model_variables() -> None:
    """Every dashboard an alert links to exists; model dashboards select by model and version."""
    import yaml

    uids = {data["uid"] for data in committed().values()}
    linked = {rule["annotations"]["dashboard"].split("/d/", 1)[1].split("?")[0]
              for path in (ROOT / "alerting" / "rules").glob("*.yml")
              for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule}
    assert linked and linked <= uids, linked - uids
    variables = {data["uid"]: {v["name"] for v in data["templating"]["list"]} for data in committed().values()}
    for uid, names in variables.items():
        if uid == "mlscope-pipelines":  # pipeline-scoped: its alerts select their pipeline
            assert "pipeline" in names
        elif uid != "mlscope-stack-health":
            assert {"model", "model_version"} <= names, uid
    # Every variable an alert's dashboard link sets (var-NAME=...) is one of that dashboard's.
    for path in (ROOT / "alerting" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in (r for r in group["rules"] if "alert" in r):
                uid, _, query = rule["annotations"]["dashboard"].split("/d/", 1)[1].partition("?")
                chosen = {part.split("=", 1)[0].removeprefix("var-") for part in query.split("&") if part}
                assert chosen <= variables[uid], (rule["alert"], chosen - variables[uid])
    pipeline_links = [r["annotations"]["dashboard"] for r in yaml.safe_load(
        (ROOT / "alerting" / "rules" / "mlscope-pipelines.yml").read_text())["groups"][0]["rules"]]
    assert pipeline_links and all("/d/mlscope-pipelines?var-pipeline=" in link for link in pipeline_links)


def test_links_to_logs_are_found_and_carry_the_series_version() -> None:
    drift = committed()["mlscope-drift.json"]
    links = dashcheck.link_queries(drift)
    assert any("${__field.labels.model_version}" in q.expr for q in links)  # time series: the series' labels
    assert any("${__data.fields.model_version}" in q.expr for q in links)  # tables: the row's columns
    assert all(q.datasource == "loki" for q in links)


@pytest.mark.parametrize("range_s, scrape_s, interval, rate_interval", [
    (3600, 15, "15000ms", "60000ms"),   # Grafana's well-known 1m $__rate_interval at a 15 s scrape interval
    (3600, 1, "5000ms", "6000ms"),      # 3.6 s rounds to 5 s; + scrape interval
    (6 * 3600, 15, "20000ms", "60000ms"),
    (300, 1, "1000ms", "4000ms"),       # 4 x scrape interval wins
])
def test_grafana_intervals(range_s: float, scrape_s: float, interval: str, rate_interval: str) -> None:
    got = dashcheck.grafana_intervals(range_s, scrape_s)
    assert (got["interval"], got["rate_interval"]) == (interval, rate_interval)
    expr = dashcheck.substitute("rate(x[$__rate_interval]) [${__interval}] $__range_s", **got)
    assert expr == f"rate(x[{rate_interval}]) [{interval}] {range_s}"


def test_grafana_foundation_sdk_loads_every_dashboard() -> None:
    from grafana_foundation_sdk.models.dashboard import Dashboard

    for name, data in committed().items():
        board = Dashboard.from_json(data)
        assert board.uid == data["uid"] and len(board.panels or []) == len(data["panels"]), name
    with pytest.raises(AttributeError):  # the SDK fails on what Grafana 11 rejects (a string datasource)
        Dashboard.from_json(json.loads((FIXTURES / "string_datasource.json").read_text()))


def test_check_refuses_to_pass_without_sources(tmp_path: Path) -> None:
    assert main(["dashboards", "check", "--source", str(tmp_path / "nowhere"), "--output", str(tmp_path)]) == 2


def test_log_volume_is_per_second_and_read_from_the_shippers_counters() -> None:
    """The old logs dashboard's volume panel counted lines per interval in Loki: both are reported."""
    old = grafana.to_json(grafana.dashboard("old", "old", [[grafana.timeseries(
        "Log lines per second by level", [grafana.LokiTarget(
            'sum by (level) (count_over_time({app="mlscope"} [$__auto]))', "{{level}}")], "short")]], variables=[]))
    found = dashcheck.problems(old)
    assert any("is not a per-second unit" in p for p in found)
    assert any("is not a rate" in p for p in found)
    assert any("counts lines stored in Loki" in p for p in found)
    logs = committed()["mlscope-logs.json"]
    volume = [p for p in logs["panels"] if "per second" in p.get("title", "")]
    assert volume and all(t["datasource"]["uid"] == "prometheus" for p in volume for t in p["targets"])
    assert any("mlscope_log_lines_sent_total" in t["expr"] for p in volume for t in p["targets"])
    assert not [q for data in committed().values() for q in dashcheck.queries(data)
                if q.datasource == "loki" and "_over_time" in q.expr]


def test_check_names_a_metric_outside_the_catalog(tmp_path: Path, no_promtool: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source = bad_source(tmp_path / "src", "sum(rate(mlscope_predictons_total[$__rate_interval]))")
    output = tmp_path / "out"
    assert main(["dashboards", "build", "--source", str(source.parent), "--output", str(output)]) == 0
    problem = (f"{source}: panel 1 'Requests': metric 'mlscope_predictons_total' is not in the catalog (a metric "
               "of your own? list it in allowed-metrics.txt beside the sources, or pass --allow "
               "mlscope_predictons_total)")
    assert capsys.readouterr().err == f"mlscope: warning: {problem} (`mlscope dashboards check` fails on it)\n"
    assert main(["dashboards", "check", "--source", str(source.parent), "--output", str(output)]) == 1
    out, err = capsys.readouterr()
    assert err == f"mlscope: {problem}\n"
    assert "FAILED: 1 dashboards, 3 PromQL queries" in out  # the panel and the two model variables
    assert "not parsed (no promtool on PATH: only metric names were checked)" in out


def test_your_own_metrics_are_allowed_by_name_or_prefix(tmp_path: Path, no_promtool: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A stack folder's dashboard of a service's own metric failed check with no way to allow it."""
    source = bad_source(tmp_path / "src", "sum(rate(cancer_feature_cache_hits_total[$__rate_interval]))")
    output = tmp_path / "out"
    args = ["--source", str(source.parent), "--output", str(output)]
    assert main(["dashboards", "build", *args]) == 0
    assert main(["dashboards", "check", *args]) == 1
    assert main(["dashboards", "check", *args, "--allow", "cancer_feature_cache_hits_total"]) == 0
    assert main(["dashboards", "check", *args, "--allow", "cancer_*"]) == 0
    assert main(["dashboards", "check", *args, "--allow", "cancer"]) == 1  # a prefix needs its *
    (source.parent / "allowed-metrics.txt").write_text("# our service's own metrics\ncancer_*  # all of them\n")
    capsys.readouterr()
    assert main(["dashboards", "check", *args]) == 0
    assert "ok: 1 dashboards" in capsys.readouterr().out


def test_versions_window_variable_lists_the_windows_of_every_windowed_panel_without_a_canary() -> None:
    """Shadow-first (one served version, a shadow, attributions: no comparison guard): $window still has values."""
    import re

    data = json.loads((OUTPUT / "mlscope-versions.json").read_text())
    window = next(v for v in data["templating"]["list"] if v["name"] == "window")
    found = dashcheck.variable_selector(window["query"])
    assert found is not None and found[1] == "window"
    names = re.fullmatch(r'\{__name__=~"([^"]+)",.*\}', found[0])
    assert names is not None
    listed = re.compile(names.group(1))
    exprs = [q.expr for q in dashcheck.queries(data) if 'window="$window"' in q.expr
             and "$model_version" not in q.expr]  # comparisons: only with a canary, whose guard is listed
    read = {n for e in exprs for n in metric_names(e)}
    assert {"model_version:mlscope_shadow_agreement:ratio", "feature:mlscope_feature_attribution_abs:mean"} <= read
    assert all(listed.fullmatch(n) for n in read), read


def test_the_genai_dashboard_has_its_model_server_rows() -> None:
    """docs/model-servers.md names two model-server rows: real row panels, each followed by model-server panels;
    the version lists read the servers' recorded series too."""
    board = json.loads((OUTPUT / "mlscope-genai.json").read_text())
    panels = board["panels"]
    rows = [i for i, p in enumerate(panels) if p["type"] == "row" and p["title"].startswith("Model servers")]
    assert [panels[i]["title"] for i in rows] == ["Model servers (vLLM, SGLang): load",
                                                  "Model servers: latency and GPU efficiency per output token"]
    assert all(panels[i + 1]["type"] != "row" for i in rows)
    model = next(v for v in board["templating"]["list"] if v["name"] == "model")
    assert "model_version:mlscope_server_requests_running:sum" in json.dumps(model)
