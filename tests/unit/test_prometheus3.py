"""Each Prometheus 3 change that matters to mlscope (docs/compatibility.md) is avoided by what mlscope ships.

The tests run Debian's Prometheus 2.42 (tests/e2e); compose pins Prometheus 3. These static checks cover what
2.42 cannot show: the generated rules, the dashboards' PromQL and every Prometheus configuration and command
line behave the same on both.
"""
from __future__ import annotations

import functools
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest

from mlscope import catalog
from mlscope.dashboards import check as dashcheck
from mlscope.exposition import start_metrics_server
from mlscope.labels import INVALID, LabelGuard
from mlscope.rules import serving as serving_rules
from mlscope.rules.config import DEFAULT, FAST, RuleConfig, Thresholds
from mlscope.rules.promql import duration_seconds
from mlscope.stack import promconfig, servers
from support import ROOT
from support.compose import services
from support.dashboards import committed
from support.helpers import free_port

RULES = ROOT / "alerting" / "rules"
PROMETHEUS_CONFIGS = [ROOT / "provisioning" / "prometheus" / "prometheus.yml",
                      *sorted((ROOT / "provisioning" / "remote-write").glob("prometheus-*.yml"))]
MATCHER = re.compile(r'(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"')
RANGE = re.compile(r"\[(?P<range>[^\]:]+)(?::(?P<step>[^\]]*))?\]")
GRAFANA_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_.]*\}?")
# Prometheus 3.0 migration guide: feature flags now default (removed) and removed command-line flags.
REMOVED_FLAGS = ("--enable-feature=promql-at-modifier", "--enable-feature=promql-negative-offset",
                 "--enable-feature=remote-write-receiver", "--enable-feature=new-service-discovery-manager",
                 "--enable-feature=expand-external-labels", "--enable-feature=no-default-scrape-port",
                 "--enable-feature=agent", "--enable-feature=auto-gomemlimit", "--enable-feature=auto-gomaxprocs",
                 "--enable-feature=utf8-names", "--storage.tsdb.retention=", "--alertmanager.timeout",
                 "--storage.tsdb.allow-overlapping-blocks", "--storage.tsdb.no-lockfile=false")
# holt_winters was renamed (and put behind a flag); these need --enable-feature=promql-experimental-functions.
RENAMED_OR_EXPERIMENTAL = ("holt_winters", "double_exponential_smoothing", "sort_by_label", "limitk", "limit_ratio",
                           "mad_over_time", "info", "ts_of_min_over_time", "ts_of_max_over_time")
LEGACY_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LEGACY_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def rule_exprs() -> Iterator[tuple[str, str, float]]:
    """(where, expr, scrape interval in seconds) of every generated rule."""
    for path in sorted(RULES.glob("**/*.yml")):
        profile = FAST if path.parent.name == "fast" else DEFAULT
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule.get("alert")
                yield f"{path.relative_to(ROOT)}:{name}", rule["expr"], duration_seconds(profile.scrape_interval)


def dashboard_exprs() -> Iterator[tuple[str, str, float]]:
    for name, data in committed().items():
        for query in dashcheck.queries(data):
            if query.datasource == "prometheus":
                yield f"{name} {query.where}", query.expr, duration_seconds(DEFAULT.scrape_interval)


@functools.cache
def promql() -> list[tuple[str, str, float]]:
    found = [*rule_exprs(), *dashboard_exprs()]
    assert len(found) > 200
    return found


def integer_bucket_matchers(expr: str) -> list[str]:
    """``le``/``quantile`` matchers naming a bound as an integer ("1"): Prometheus 3 stores "1.0"."""
    bad = []
    for m in MATCHER.finditer(expr):
        if m["label"] in ("le", "quantile"):
            alternatives = m["value"].split("|") if m["op"] in ("=~", "!~") else [m["value"]]
            if any(re.fullmatch(r"[+-]?\d+", a) for a in alternatives):
                bad.append(m.group(0))
    return bad


def test_no_le_or_quantile_matcher_on_an_integer_literal() -> None:
    assert [(w, bad) for w, e, _ in promql() if (bad := integer_bucket_matchers(e))] == []
    assert integer_bucket_matchers('x_bucket{le="1"} + y{quantile=~"0.5|1"}') == ['le="1"', 'quantile=~"0.5|1"']
    assert integer_bucket_matchers('x_bucket{le="1.0"} + x_bucket{le="+Inf"}') == []


def test_the_slo_bucket_is_written_as_the_client_exposes_it() -> None:
    # A whole-second SLO (1 s) used to give le="1": no series matched on Prometheus 2 or 3.
    cfg = RuleConfig(profile=DEFAULT, thresholds=Thresholds(latency_slo_seconds=1))
    expr = serving_rules._slow_ratio(cfg, "5m")
    registry = CollectorRegistry()
    Histogram("h", "h", buckets=[1], registry=registry)  # the independent reference: prometheus-client
    exposed = re.search(r'h_bucket\{le="([^"]+)"\}', generate_latest(registry).decode())
    assert exposed and f'le="{exposed[1]}"' in expr and exposed[1] == "1.0"


def unsafe_regexes(expr: str) -> list[str]:
    """Regex matchers whose result could depend on whether ``.`` matches a newline: a ``.`` other than the
    whole-value wildcards ``.*``/``.+`` (label values never hold a newline: the LabelGuard folds them)."""
    bad = []
    for m in MATCHER.finditer(expr):
        if m["op"] not in ("=~", "!~"):
            continue
        value = GRAFANA_VARIABLE.sub("", m["value"]).replace("\\\\.", "")
        if value not in ("", ".*", ".+") and "." in re.sub(r"^\.[*+]$", "", value):
            bad.append(m.group(0))
    return bad


def test_no_regex_relies_on_dot_not_matching_newline() -> None:
    assert [(w, bad) for w, e, _ in promql() if (bad := unsafe_regexes(e))] == []
    assert unsafe_regexes('x{a=~"a.b", b=~".+", c=~"$model", d=~"x\\\\.y", e=~"p|q"}') == ['a=~"a.b"']
    # Relabelling regexes apply to metric names only, which cannot hold a newline (legacy name charset, below),
    # or their only dots are whole-value wildcards (the model servers' `(vllm|sglang);;(.+)`: the same in 2 and 3).
    for path in PROMETHEUS_CONFIGS:
        config = yaml.safe_load(path.read_text())
        for relabel in [r for section in ("remote_write", "scrape_configs") for item in config.get(section, [])
                        for key in ("write_relabel_configs", "metric_relabel_configs", "relabel_configs")
                        for r in item.get(key, [])]:
            if "regex" in relabel and "." in re.sub(r"\(?\.[*+]\)?(?=$|;)", "", relabel["regex"]):
                assert relabel.get("source_labels", ["__name__"]) == ["__name__"], (path.name, relabel)


def test_label_values_with_a_newline_are_folded_and_counted() -> None:
    folds: list[tuple[str, str]] = []
    guard = LabelGuard(on_fold=lambda label, reason: folds.append((label, reason)))
    assert guard.admit("model", "fraud\nv2") == INVALID and guard.admit("model", "tab\there") == INVALID
    assert guard.admit("model", "détection-中文 v2") == "détection-中文 v2"
    assert folds == [("model", "invalid_value"), ("model", "invalid_value")]


def test_ranges_hold_enough_samples_for_left_open_windows() -> None:
    # Prometheus 3 range selectors exclude a sample exactly at the window's start: a window of 2 scrape
    # intervals can hold 1 sample (rate() then returns nothing). Every literal range spans >= 4 intervals.
    short = []
    for where, expr, scrape in promql():
        for m in RANGE.finditer(expr):
            window = m["range"].strip()
            if window.startswith("$"):
                assert window in ("$__rate_interval", "$__range"), (where, window)  # Grafana keeps >= 4x scrape
            elif duration_seconds(window) < 4 * scrape:
                short.append((where, window))
    assert short == []


def test_alertmanagers_are_reached_with_api_v2_only() -> None:
    native = promconfig.prometheus_config(FAST, [], alertmanagers=["127.0.0.1:9093"])
    configs = [yaml.safe_load(p.read_text()) for p in PROMETHEUS_CONFIGS] + [native]
    managers = [am for c in configs for am in c.get("alerting", {}).get("alertmanagers", [])]
    assert len(managers) == len(configs)
    assert [am["api_version"] for am in managers if am.get("api_version", "v2") != "v2"] == []


@pytest.mark.parametrize("function", RENAMED_OR_EXPERIMENTAL)
def test_no_renamed_or_experimental_function(function: str) -> None:
    assert [w for w, e, _ in promql() if re.search(rf"\b{function}\s*\(", e)] == []


def test_no_removed_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(servers, "find_binary", lambda names: names[0])
    argvs = {"compose prometheus": services()["prometheus"]["command"],
             "compose alertmanager": services()["alertmanager"]["command"],
             "native prometheus": servers.prometheus(tmp_path / "p.yml", tmp_path, 9090, lifecycle=True).argv,
             "native alertmanager": servers.alertmanager(tmp_path / "a.yml", tmp_path, 9093).argv}
    used = [(name, arg) for name, argv in argvs.items() for arg in argv for flag in REMOVED_FLAGS
            if arg.startswith(flag)]
    assert used == []
    assert "--enable-feature=exemplar-storage" in argvs["compose prometheus"]  # still a feature flag in 3.x


def test_names_are_valid_under_the_legacy_and_the_utf8_scheme() -> None:
    # Prometheus 3 accepts UTF-8 names; 2.42 only the legacy charset. mlscope's names need no quoting in either.
    names = {series for spec in catalog.BY_NAME.values() for series in spec.series_names}
    labels = {label for spec in catalog.METRICS for label in spec.labels}
    assert [n for n in names if not LEGACY_METRIC_NAME.fullmatch(n)] == []
    assert [n for n in labels if not LEGACY_LABEL_NAME.fullmatch(n)] == []


# What Prometheus 3.x sends by default (scrape_protocols: OpenMetrics 1.0.0 and 0.0.1, text 1.0.0 and 0.0.4).
PROMETHEUS3_ACCEPT = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
                      "application/openmetrics-text;version=0.0.1;q=0.5,"
                      "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
PARSEABLE = {("application/openmetrics-text", "1.0.0"), ("application/openmetrics-text", "0.0.1"),
             ("text/plain", "0.0.4"), ("text/plain", "1.0.0")}


def media(content_type: str) -> tuple[str, str]:
    kind, *params = [p.strip() for p in content_type.split(";")]
    version = dict(p.split("=", 1) for p in params if "=" in p).get("version", "")
    return kind, version


@pytest.mark.parametrize("accept", [PROMETHEUS3_ACCEPT, None])
def test_metrics_endpoints_answer_a_content_type_prometheus3_parses(accept: str | None) -> None:
    # Prometheus 3 fails a scrape whose Content-Type is missing or unknown (unless fallback_scrape_protocol).
    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_metrics_server(port, registry=registry)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                         headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert media(response.headers["Content-Type"]) in PARSEABLE
    finally:
        server.shutdown()
        thread.join(timeout=5)
