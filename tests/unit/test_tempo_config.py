"""Tempo in the stack, checked statically (Tempo itself is not run here, nor in CI): the compose and native
configurations use only keys Tempo 3.0 has (tests/support/tempo_reference.py names the sources), none of the
2.x blocks it refuses, a stated retention, loopback listeners natively, and a metrics-generator that writes
into a Prometheus that accepts remote writes."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlscope.rules.config import duration_seconds
from mlscope.stack import nativeconf, servers
from support import ROOT
from support.compose import TEMPO_OTLP_PORTS, compose, expand_defaults, host_port, listen_port, services
from support.loki_reference import undocumented
from support.tempo_reference import KEYS, PROCESSORS, REMOVED, VOLUME

TEMPO_YML = ROOT / "provisioning" / "tempo" / "tempo.yml"
PORTS = nativeconf.TempoPorts(http=13200, otlp_grpc=14317, otlp_http=14318, grpc=19095, memberlist=17946)


def compose_config() -> dict[str, Any]:
    """provisioning/tempo/tempo.yml as the container reads it: ``${VAR:-default}`` expanded to its default."""
    return yaml.safe_load(expand_defaults(TEMPO_YML.read_text()))


def problems(config: dict[str, Any]) -> list[str]:
    found = list(undocumented(config, KEYS))
    found += [f"{block}: a Tempo 2.x block, refused by 3.0" for block in sorted(REMOVED & set(config))]
    found += [f"processor {p}: not a Tempo 3.0 processor"
              for p in config["overrides"]["defaults"]["metrics_generator"]["processors"] if p not in PROCESSORS]
    return found


def retention(config: dict[str, Any]) -> set[str]:
    return {config["backend_scheduler"]["provider"]["compaction"]["compaction"]["block_retention"],
            config["backend_worker"]["compaction"]["block_retention"]}


def paths(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [p for v in node.values() for p in paths(v)]
    if isinstance(node, list):
        return [p for v in node for p in paths(v)]
    return [node] if isinstance(node, str) and node.startswith("/") else []


def native(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    return nativeconf.tempo_config(tmp_path / "state", PORTS, "127.0.0.1:19090", env=env or {})


@pytest.mark.parametrize("where", ["compose", "native"])
def test_tempo_config_uses_only_tempo_3_keys(where: str, tmp_path: Path) -> None:
    config = compose_config() if where == "compose" else native(tmp_path)
    assert problems(config) == []
    assert config["target"] == "all"  # monolithic: no Kafka (3.0's distributed mode needs one)
    assert set(config["overrides"]["defaults"]["metrics_generator"]["processors"]) == {"service-graphs",
                                                                                       "span-metrics"}
    (stated,) = retention(config)  # one retention, where the scheduler and the worker each read it
    assert duration_seconds(stated) == 7 * 86400


def test_the_check_finds_what_tempo_3_refuses() -> None:
    config = compose_config()
    broken = copy.deepcopy(config)
    broken["compactor"] = {"compaction": {"block_retention": "1h"}}  # the 2.x place of retention
    broken["distributor"]["receivers"]["otlp"]["protocols"]["http"]["endpiont"] = "0.0.0.0:4318"
    broken["overrides"]["defaults"]["metrics_generator"]["processors"].append("local-blocks")
    assert problems(broken) == ["distributor.receivers.otlp.protocols.http.endpiont", "compactor",
                                "compactor: a Tempo 2.x block, refused by 3.0",
                                "processor local-blocks: not a Tempo 3.0 processor"]


def test_compose_tempo_ports_storage_health_and_remote_write() -> None:
    svc = services()
    tempo, prometheus = svc["tempo"], svc["prometheus"]
    config = compose_config()
    assert "-config.expand-env=true" in tempo["command"] and "/etc/tempo/tempo.yml" in tempo["command"][0]
    assert "${TEMPO_RETENTION:-168h}" in TEMPO_YML.read_text() and tempo["environment"]["TEMPO_RETENTION"]
    published = {int(expand_defaults(p).rsplit(":", 1)[1]): expand_defaults(p) for p in tempo["ports"]}
    assert set(published) == {3200, *TEMPO_OTLP_PORTS.values()}
    assert all(p.startswith("127.0.0.1:") for p in published.values())
    otlp = config["distributor"]["receivers"]["otlp"]["protocols"]
    assert {p: host_port(otlp[p]["endpoint"])[1] for p in ("grpc", "http")} == TEMPO_OTLP_PORTS
    assert config["server"]["http_listen_port"] == 3200 == listen_port("tempo", tempo)
    assert tempo["healthcheck"]["test"] == ["CMD", "/tempo", "-health", "-health.url=http://localhost:3200/ready"]
    assert f"tempo-data:{VOLUME}" in tempo["volumes"] and "tempo-data" in compose()["volumes"]
    assert paths(config) and all(p.startswith(VOLUME + "/") for p in paths(config))
    (write,) = config["metrics_generator"]["storage"]["remote_write"]
    host, port = host_port(write["url"].removesuffix("/api/v1/write"))
    assert write["url"].endswith("/api/v1/write") and write["send_exemplars"] is True
    assert host == "prometheus" and port == listen_port(host, prometheus)
    assert "--web.enable-remote-write-receiver" in prometheus["command"]  # Prometheus 3.x accepts the writes


def test_the_demo_sends_its_spans_to_tempos_otlp_http_port() -> None:
    env = services()["demo"]["environment"]
    host, port = host_port(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (host, port, env["OTEL_EXPORTER_OTLP_PROTOCOL"]) == ("tempo", TEMPO_OTLP_PORTS["http"], "http/protobuf")


def test_native_tempo_listens_on_loopback_and_keeps_its_data_in_the_state_dir(tmp_path: Path) -> None:
    config = native(tmp_path)
    state = (tmp_path / "state").resolve()
    server = config["server"]
    assert (server["http_listen_address"], server["http_listen_port"]) == ("127.0.0.1", PORTS.http)
    assert (server["grpc_listen_address"], server["grpc_listen_port"]) == ("127.0.0.1", PORTS.grpc)
    otlp = config["distributor"]["receivers"]["otlp"]["protocols"]
    assert otlp == {"grpc": {"endpoint": f"127.0.0.1:{PORTS.otlp_grpc}"},
                    "http": {"endpoint": f"127.0.0.1:{PORTS.otlp_http}"}}
    assert config["memberlist"] == {"bind_addr": ["127.0.0.1"], "bind_port": PORTS.memberlist}
    found = paths(config)
    assert len(found) == len(paths(compose_config())) >= 6  # every path of the compose config, moved
    assert all(Path(p).is_relative_to(state / "tempo") for p in found), found
    assert config["metrics_generator"]["storage"]["remote_write"][0]["url"] == "http://127.0.0.1:19090/api/v1/write"
    assert "${" not in yaml.safe_dump(config)
    assert retention(native(tmp_path, {"TEMPO_RETENTION": "24h"})) == {"24h"}  # as compose's .env does


def test_expand_env_reads_set_values_and_defaults_otherwise() -> None:
    text = "a: ${A:-1h}\nb: ${B:-2h}\nc: ${C:-}\n"
    assert nativeconf.expand_env(text, {"A": "5m", "B": ""}) == "a: 5m\nb: 2h\nc: \n"
    assert re.search(r"\$\{", nativeconf.expand_env(TEMPO_YML.read_text(), {})) is None


def test_native_prometheus_accepts_remote_writes_only_with_tempo(tmp_path: Path) -> None:
    flag = "--web.enable-remote-write-receiver"  # Prometheus 2.33+ and 3.x; 2.42 deprecates the feature flag
    with_tempo = servers.prometheus(tmp_path / "p.yml", tmp_path, 1, remote_write_receiver=True).argv
    without = servers.prometheus(tmp_path / "p.yml", tmp_path, 1).argv
    assert flag in with_tempo and flag not in without


def test_every_request_id_span_attribute_grafana_reads_is_the_one_spans_carry() -> None:
    """The Tempo datasource's trace -> logs query and the dashboards' TraceQL read the span attribute the
    monitor sets (mlscope.tracing.REQUEST_ID): one name, checked in the files Grafana is given."""
    from mlscope.tracing import REQUEST_ID

    grafana = ROOT / "provisioning" / "grafana"
    tags = re.findall(r'__span\.tags\["([^"]+)"\]', (grafana / "datasources" / "datasources.yml").read_text())
    traceql = {name for path in (grafana / "dashboards").rglob("*.json")
               for name in re.findall(r'span\.[\\"]+([\w.]+)', path.read_text())}
    assert tags and set(tags) == {REQUEST_ID}
    assert traceql == {REQUEST_ID}
