"""Grafana, Loki and Tempo for native users: `mlscope up` says how to get them when they are missing, finds
Grafana's home beside its binary (Debian package, Homebrew, release archive) and points the demo's spans at a
native Tempo. The servers themselves are started as stand-ins in tests/e2e/test_native_services.py; real
Grafana, Loki and Tempo are not run in the tests."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mlscope.stack import nativeconf
from mlscope.stack.native import NativeStack, Ports
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


def test_up_says_how_to_get_grafana_loki_and_tempo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no binary (nor the test guard's shims)
    stack = NativeStack(tmp_path / "state", demo=False)
    assert stack._start_loki() is None and stack._start_grafana({}) is None
    assert stack._start_tempo("127.0.0.1:9090") is None
    out = capsys.readouterr().out
    loki, grafana, tempo = (line for line in out.splitlines() if "not started" in line)
    for line, brew in ((loki, "brew install loki"), (grafana, "brew install grafana")):
        assert brew in line and "see docs/stack.md" in line
    assert "github.com/grafana/loki/releases" in loki and "apt.grafana.com" in grafana
    assert "github.com/grafana/tempo/releases" in tempo and "_linux_amd64.deb" in tempo and "darwin" in tempo
    assert "see docs/stack.md" in tempo and not (tmp_path / "state" / "tempo.yml").exists()


def test_without_tempo_up_says_where_a_users_endpoint_sends_the_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:24318")
    assert NativeStack(tmp_path / "state", demo=False)._start_tempo("127.0.0.1:9090") is None
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert NativeStack(tmp_path / "state", demo=False)._start_tempo("127.0.0.1:9090") is None
    given, unset = (line for line in capsys.readouterr().out.splitlines() if "not started" in line)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24318 (passed through)" in given
    assert "no trace backend" not in given and "no exporter endpoint is set" not in given
    assert "no trace backend" in unset and "exports no spans" in unset


_OTEL = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME")


def test_the_demos_spans_go_to_a_native_tempo_and_nowhere_without_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _OTEL:  # set, then deleted: monkeypatch restores what _point_spans_at sets in os.environ
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    stack = NativeStack(tmp_path / "state", ports=Ports(tempo_otlp_http=14318))
    stack._point_spans_at(None)  # no Tempo: no endpoint, the SDK's default would export nowhere reachable
    assert not any(name in os.environ for name in _OTEL)
    stack._point_spans_at("127.0.0.1:3200")
    assert [os.environ[name] for name in _OTEL] == ["http://127.0.0.1:14318", "http/protobuf", "mlscope-demo"]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")  # the user's own choice wins
    stack._point_spans_at("127.0.0.1:3200")
    assert os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"


def test_the_docs_install_the_versions_compose_pins() -> None:
    pins = dict(re.findall(r"grafana/(grafana|loki|tempo):v?([0-9.]+)", (ROOT / "docker-compose.yml").read_text()))
    docs = (ROOT / "docs" / "stack.md").read_text()
    assert f"grafana_{pins['grafana']}_amd64.deb" in docs
    assert f"loki/releases/download/v{pins['loki']}/loki-linux-amd64.zip" in docs
    assert f"tempo/releases/download/v{pins['tempo']}/tempo_{pins['tempo']}_linux_amd64.deb" in docs
    assert f"tempo_{pins['tempo']}_darwin_arm64.tar.gz" in docs
    assert "brew install grafana loki" in docs and "not run in the tests" in docs
