"""Grafana's provisioning files (compose and native) use only keys Grafana documents.

Grafana does not run here. Sources of the keys: "Provision Grafana" (grafana/grafana
docs/sources/administration/provisioning/index.md: data sources, their common jsonData, dashboard providers;
the same keys in the Grafana 13.2 documentation) and the provisioning examples of the Prometheus, Loki and
Alertmanager data source pages (exemplarTraceIdDestinations, derivedFields, implementation), and of the Tempo
data source ("Provision the Tempo data source", grafana/grafana
docs/sources/datasources/tempo/configure-tempo-data-source/provision-data-source.md: tracesToLogsV2,
tracesToMetrics, serviceMap, nodeGraph, search, traceQuery, spanBar).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlscope.stack import nativeconf
from support import ROOT
from support.loki_reference import ANY, keys, undocumented

PROVISIONING = ROOT / "provisioning" / "grafana"
_LINK = {"name": ANY, "datasourceUid": ANY, "url": ANY, "urlDisplayLabel": ANY}
_COMMON_JSON = keys("tlsAuth", "tlsAuthWithCACert", "tlsSkipVerify", "serverName", "timeout", "keepCookies",
                    "manageAlerts", "alertmanagerUid")
JSON_DATA: dict[str, dict[str, Any]] = {
    "prometheus": {**_COMMON_JSON, "httpMethod": ANY, "timeInterval": ANY, "customQueryParameters": ANY,
                   "prometheusType": ANY, "prometheusVersion": ANY, "cacheLevel": ANY,
                   "incrementalQuerying": ANY, "incrementalQueryOverlapWindow": ANY,
                   "disableRecordingRules": ANY, "exemplarTraceIdDestinations": [_LINK]},
    "loki": {**_COMMON_JSON, "maxLines": ANY,
             "derivedFields": [{**_LINK, "matcherRegex": ANY, "matcherType": ANY, "targetBlank": ANY}]},
    "alertmanager": {**_COMMON_JSON, "implementation": ANY, "handleGrafanaManagedAlerts": ANY},
    "tempo": {**_COMMON_JSON,
              "tracesToLogsV2": keys("datasourceUid", "spanStartTimeShift", "spanEndTimeShift", "tags",
                                     "filterByTraceID", "filterBySpanID", "customQuery", "query"),
              "tracesToMetrics": keys("datasourceUid", "spanStartTimeShift", "spanEndTimeShift", "tags", "queries"),
              "serviceMap": keys("datasourceUid"), "nodeGraph": keys("enabled"), "search": keys("hide"),
              "traceQuery": keys("timeShiftEnabled", "spanStartTimeShift", "spanEndTimeShift"),
              "spanBar": keys("type", "tag")},
}
_DATASOURCE = keys("name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
                   "basicAuthUser", "withCredentials", "isDefault", "secureJsonData", "version", "editable")
PROVIDER = {"name": ANY, "orgId": ANY, "folder": ANY, "folderUid": ANY, "type": ANY, "disableDeletion": ANY,
            "updateIntervalSeconds": ANY, "allowUiUpdates": ANY,
            "options": {"path": ANY, "foldersFromFilesStructure": ANY}}


def problems(datasources: dict[str, Any], providers: dict[str, Any]) -> list[str]:
    found = list(undocumented(providers, {"apiVersion": ANY, "providers": [PROVIDER]}))
    found += undocumented({k: v for k, v in datasources.items() if k != "datasources"},
                          {"apiVersion": ANY, "deleteDatasources": ANY, "prune": ANY})
    for source in datasources.get("datasources", []):
        tree = {**_DATASOURCE, "jsonData": JSON_DATA.get(source.get("type"), {})}
        found += [f"{source.get('name')}: {key}" for key in undocumented(source, tree)]
    return found


def load(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return (yaml.safe_load((root / "datasources" / "datasources.yml").read_text()),
            yaml.safe_load((root / "dashboards" / "mlscope.yml").read_text()))


NATIVE = {"prometheus:9090": "127.0.0.1:1", "loki:3100": "127.0.0.1:2", "alertmanager:9093": "127.0.0.1:3",
          "tempo:3200": "127.0.0.1:4"}


@pytest.mark.parametrize("where", ["compose", "native"])
def test_provisioning_uses_only_documented_keys(where: str, tmp_path: Path) -> None:
    root = PROVISIONING if where == "compose" else nativeconf.grafana_provisioning(tmp_path / "grafana", NATIVE)
    datasources, providers = load(root)
    assert {s["type"] for s in datasources["datasources"]} == set(JSON_DATA)
    assert problems(datasources, providers) == []


def test_the_check_finds_undocumented_keys() -> None:
    datasources, providers = load(PROVISIONING)
    datasources["datasources"][0]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUID"] = "loki"
    datasources["datasources"][1]["jsonData"]["maxlines"] = 10
    datasources["datasources"][2]["jsonData"]["tracesToLogsV2"]["filterByTraceId"] = True
    providers["providers"][0]["options"]["foldersFromFileStructure"] = True
    assert problems(datasources, providers) == [
        "providers[0].options.foldersFromFileStructure",
        "Prometheus: jsonData.exemplarTraceIdDestinations[0].datasourceUID", "Loki: jsonData.maxlines",
        "Tempo: jsonData.tracesToLogsV2.filterByTraceId"]


@pytest.mark.parametrize("running", [("prometheus", "loki", "alertmanager", "tempo"),
                                     ("prometheus", "loki", "alertmanager"), ("prometheus", "tempo"),
                                     ("prometheus",)])
def test_every_link_opens_a_provisioned_datasource(running: tuple[str, ...], tmp_path: Path) -> None:
    """Natively only the servers that run are provisioned: links into the others are left out, the rest kept."""
    hosts = {host: native for host, native in NATIVE.items() if host.split(":")[0] in running}
    datasources, _ = load(nativeconf.grafana_provisioning(tmp_path / "grafana", hosts))
    uids = {d["uid"] for d in datasources["datasources"]}
    assert uids == set(running)
    compose_links = {d["uid"]: nativeconf.linked_uids(d) for d in load(PROVISIONING)[0]["datasources"]}
    for source in datasources["datasources"]:
        kept = nativeconf.linked_uids(source)
        assert kept == [uid for uid in compose_links[source["uid"]] if uid in uids], source["name"]
    assert ("tempo" in running) == any("tempo" in nativeconf.linked_uids(d) for d in datasources["datasources"])


def test_trace_to_metrics_queries_read_the_generators_series() -> None:
    """The Tempo datasource's metric queries name only series the catalog allows (Tempo's metrics-generator
    writes traces_spanmetrics_* and traces_service_graph_* into Prometheus) and parse as PromQL names."""
    from mlscope import catalog
    from mlscope.rules.promql import metric_names

    (tempo,) = [d for d in load(PROVISIONING)[0]["datasources"] if d["uid"] == "tempo"]
    queries = [q["query"].replace("$$__tags", 'service="x"') for q in tempo["jsonData"]["tracesToMetrics"]["queries"]]
    names = {name for q in queries for name in metric_names(q)}
    assert names == {"traces_spanmetrics_calls_total", "traces_spanmetrics_latency_bucket"}
    assert all(catalog.is_known(name) for name in names) and not catalog.is_known("traces_other_total")
    assert tempo["jsonData"]["serviceMap"]["datasourceUid"] == "prometheus"
