"""Static checks of the scale-out overlays: remote-write Prometheus configurations and the compose override files."""
from __future__ import annotations

from pathlib import Path

import yaml

from mlscope.cli import main
from mlscope.stack import remotewrite
from support import ROOT
from support.helpers import require_binary, run_promtool


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
    assert entry["url"] == "https://thanos.example.com/api/v1/receive"
    assert entry["headers"] == {"THANOS-TENANT": "team-a"}
    assert run_promtool("check", "config", out).returncode == 0
    out.write_text(out.read_text().replace("batch_send_deadline: 5s", "batch_send_deadline: soon"))
    assert run_promtool("check", "config", out).returncode != 0


# -- Loki in simple scalable mode ------------------------------------------------------------------
