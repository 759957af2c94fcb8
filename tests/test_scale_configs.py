"""Static checks of the scale-out overlays: remote-write Prometheus configurations and the compose override files."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, require_binary
from helpers import run_promtool
from mlscope import remotewrite
from mlscope.cli import main
from test_compose import compose, expand_defaults

OVERRIDES = {"remote-write": ROOT / "docker-compose.remote-write.yml",
             "alertmanager-ha": ROOT / "docker-compose.alertmanager-ha.yml"}


def override(name: str) -> dict[str, Any]:
    return yaml.safe_load(OVERRIDES[name].read_text())


def test_remote_write_overlays_are_fresh_and_valid(tmp_path: Path) -> None:
    assert remotewrite.stale(ROOT) == [], "run `mlscope remote-write build`"
    assert main(["remote-write", "check", "--root", str(ROOT)]) == 0
    base = yaml.safe_load((ROOT / "provisioning" / "prometheus" / "prometheus.yml").read_text())
    require_binary("promtool")
    for name, backend in remotewrite.BACKENDS.items():
        path = remotewrite.overlay_path(ROOT, name)
        result = run_promtool("check", "config", path)
        assert result.returncode == 0, result.stdout + result.stderr
        config = yaml.safe_load(path.read_text())
        assert {k: v for k, v in config.items() if k != "remote_write"} == base  # the base, plus remote_write only
        [entry] = config["remote_write"]
        assert entry["url"] == backend.url
        assert entry.get("headers", {}) == ({backend.tenant_header: "mlscope"} if backend.tenant_header else {})
        assert config["rule_files"], "recording rules are evaluated in Prometheus before remote write"
    # render: your URL and tenant; a broken one is refused by promtool.
    out = tmp_path / "mine.yml"
    assert main(["remote-write", "render", "--root", str(ROOT), "--backend", "thanos", "--url",
                 "https://thanos.example.com/api/v1/receive", "--tenant", "team-a", "--output", str(out)]) == 0
    [entry] = yaml.safe_load(out.read_text())["remote_write"]
    assert entry["url"] == "https://thanos.example.com/api/v1/receive" and entry["headers"] == {"THANOS-TENANT": "team-a"}
    assert run_promtool("check", "config", out).returncode == 0
    out.write_text(out.read_text().replace("batch_send_deadline: 5s", "batch_send_deadline: soon"))
    assert run_promtool("check", "config", out).returncode != 0


def test_keep_regex_keeps_what_rules_and_dashboards_read() -> None:
    keep = re.compile(remotewrite.keep_regex(remotewrite.stack_foreign_names(ROOT)))
    for name in ("mlscope_predictions_total", "mlscope_prediction_latency_seconds_bucket",
                 "model_version:mlscope_predictions:rate", "up", "ALERTS", "prometheus_rule_evaluation_failures_total"):
        assert keep.fullmatch(name), name
    for name in ("go_goroutines", "node_cpu_seconds_total", "python_gc_objects_collected_total", "model"):
        assert not keep.fullmatch(name), name
    assert re.fullmatch(remotewrite.CREATED_SERIES, "mlscope_predictions_created")


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_overrides_validate_against_the_compose_spec(name: str) -> None:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    ok = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(OVERRIDES[name])],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = override(name)
    for service in data["services"].values():
        for port in service.get("ports", []):
            assert expand_defaults(port).startswith("127.0.0.1:"), port
        for volume in service.get("volumes", []):
            for backend in remotewrite.BACKENDS:  # ${MLSCOPE_REMOTE_WRITE_BACKEND:-mimir} -> every choice
                source = re.sub(r"\$\{MLSCOPE_REMOTE_WRITE_BACKEND:-[a-z]+\}", backend, volume).split(":")[0]
                assert not source.startswith(".") or (ROOT / source).exists(), source


def test_remote_write_override_replaces_the_base_prometheus_config() -> None:
    base_mount = next(v for v in compose()["services"]["prometheus"]["volumes"] if "prometheus.yml" in v)
    [mount] = override("remote-write")["services"]["prometheus"]["volumes"]
    assert mount.rsplit(":", 2)[1:] == base_mount.rsplit(":", 2)[1:]  # same target: compose replaces the base entry


def test_alertmanager_pair_peers_each_other_and_prometheus_finds_both() -> None:
    services = override("alertmanager-ha")["services"]
    base = compose()
    assert services["alertmanager-2"]["image"] == base["x-images"]["alertmanager"]
    names = {"alertmanager": {"alertmanager", *services["alertmanager"]["networks"]["mlscope"]["aliases"]},
             "alertmanager-2": {"alertmanager-2", *services["alertmanager-2"]["networks"]["mlscope"]["aliases"]}}
    for me, other in (("alertmanager", "alertmanager-2"), ("alertmanager-2", "alertmanager")):
        command = services[me]["command"]
        assert "--cluster.listen-address=0.0.0.0:9094" in command
        [peer] = [c.split("=", 1)[1] for c in command if c.startswith("--cluster.peer=")]
        host, port = peer.split(":")
        assert port == "9094" and host in names[other] and host not in names[me], peer
    # Prometheus sends every alert to every replica: DNS discovery of the shared name `alertmanager`.
    assert "alertmanager" in names["alertmanager-2"]
    prometheus = yaml.safe_load((ROOT / "provisioning" / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["alerting"]["alertmanagers"][0]["dns_sd_configs"][0]["names"] == ["alertmanager"]
