"""Grafana and Loki for native users: `mlscope up` says how to get them when they are missing, and finds
Grafana's home beside its binary (Debian package, Homebrew, release archive). The servers themselves are
started as stand-ins in tests/e2e/test_native_services.py; real Grafana and Loki are not run in the tests."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlscope.stack import nativeconf
from mlscope.stack.native import NativeStack
from support import ROOT


def _home(root: Path) -> Path:
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "defaults.ini").write_text("")
    return root


def _binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def test_grafana_home_is_found_beside_its_binary(tmp_path: Path) -> None:
    debian = _home(tmp_path / "deb" / "usr" / "share" / "grafana")
    assert nativeconf.grafana_homepath(str(_binary(tmp_path / "deb" / "usr" / "sbin" / "grafana"))) == str(debian)
    cellar = tmp_path / "brew" / "Cellar" / "grafana" / "13.2.3"
    brew = _home(cellar / "share" / "grafana")
    link = tmp_path / "brew" / "bin" / "grafana"
    link.parent.mkdir(parents=True)
    link.symlink_to(_binary(cellar / "bin" / "grafana"))
    assert nativeconf.grafana_homepath(str(link)) == str(brew)
    archive = _home(tmp_path / "grafana-v13.2.3")
    assert nativeconf.grafana_homepath(str(_binary(archive / "bin" / "grafana"))) == str(archive)


def test_up_says_how_to_get_grafana_and_loki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # neither binary (nor the test guard's shims)
    stack = NativeStack(tmp_path / "state", demo=False)
    assert stack._start_loki() is None and stack._start_grafana({}) is None
    out = capsys.readouterr().out
    loki, grafana = (line for line in out.splitlines() if "not started" in line)
    for line, brew in ((loki, "brew install loki"), (grafana, "brew install grafana")):
        assert brew in line and "see docs/stack.md" in line
    assert "github.com/grafana/loki/releases" in loki and "apt.grafana.com" in grafana


def test_the_docs_install_the_versions_compose_pins() -> None:
    pins = dict(re.findall(r"grafana/(grafana|loki):v?([0-9.]+)", (ROOT / "docker-compose.yml").read_text()))
    docs = (ROOT / "docs" / "stack.md").read_text()
    assert f"grafana_{pins['grafana']}_amd64.deb" in docs
    assert f"loki/releases/download/v{pins['loki']}/loki-linux-amd64.zip" in docs
    assert "brew install grafana loki" in docs and "not run in the tests" in docs
