"""The light core without its extras: what works, and the one-line message a command without its extra gives."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml

from mlscope.cli import COMMANDS, EXTRA_MODULES
from support.hidden import NOT_CORE, run_hidden

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]

def run_without(hidden: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    return run_hidden(code, hidden)


def closure(extra: str) -> set[str]:
    """An extra and every extra it names through ``mlscope[...]`` self-references."""
    seen, todo = set(), [extra]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in EXTRAS[name]:
            match = re.fullmatch(r"mlscope\[([\w,-]+)\]", requirement)
            if match:
                todo.extend(match.group(1).split(","))
    return seen


def test_core_dependencies_are_only_prometheus_client_and_numpy() -> None:
    names = {re.split(r"[<>=!\[ ]", d)[0] for d in PYPROJECT["project"]["dependencies"]}
    assert names == {"prometheus-client", "numpy"}


def test_the_monitor_drift_quality_and_loki_handler_work_without_any_extra() -> None:
    code = """
import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from mlscope import ModelMonitor
from mlscope.drift import build_profile, refresh_snapshots
from mlscope.quality import Quality, MemoryStore
from mlscope.logs import LokiHandler, JsonFormatter
from mlscope.exposition import wsgi_app
import mlscope.gunicorn_hooks
registry = CollectorRegistry()
rng = np.random.default_rng(0)
profile = build_profile({"x": rng.normal(size=5000)}, model="m", model_version="1")
monitor = ModelMonitor("m", "1", registry=registry, reference=profile)
monitor.record_feature_batch({"x": rng.normal(size=3000)})
refresh_snapshots(registry)
with monitor.track(request_id="r1") as t:
    t.output = 1
handler = LokiHandler("http://127.0.0.1:9/loki/api/v1/push", registry=registry)
handler.close()
text = generate_latest(registry).decode()
assert "mlscope_drift_snapshot_ks_statistic" in text and "mlscope_predictions_total" in text, text[:2000]
import sys
loaded = sorted(m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in {non_core!r}))
assert not loaded, loaded
print("ok")
""".replace("{non_core!r}", repr(NOT_CORE))
    result = run_without(NOT_CORE, code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.extra], ids=lambda c: c.name)
def test_a_command_without_its_extra_names_it_in_one_line(command) -> None:
    hidden = EXTRA_MODULES[command.extra]
    result = run_without(hidden, f"from mlscope.cli import main; raise SystemExit(main([{command.name!r}, '--help']))")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'mlscope[{command.extra}]'" in lines[0], result.stderr
    assert result.stdout == ""


def test_help_and_core_commands_work_without_extras(tmp_path: Path) -> None:
    hidden = tuple(sorted({m for modules in EXTRA_MODULES.values() for m in modules}))
    listing = run_without(hidden, "from mlscope.cli import main; raise SystemExit(main(['--help']))")
    assert listing.returncode == 0 and "quality-exporter" in listing.stdout, listing.stderr
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("request_id,y_true\norder 42,1\n")
    imported = run_without(hidden, "from mlscope.cli import main; raise SystemExit(main("
                                   f"['quality-import', {str(outcomes)!r}, '--store', {str(tmp_path / 'q.db')!r}]))")
    assert imported.returncode == 0 and '"unknown_request": 1' in imported.stdout, imported.stderr[-2000:]
    levels = tmp_path / "levels.json"
    level = run_without(hidden, "from mlscope.cli import main; raise SystemExit(main("
                                f"['logs', 'level', '--file', {str(levels)!r}, 'm', '1', 'debug']))")
    assert level.returncode == 0 and '"debug"' in levels.read_text(), level.stderr


@pytest.mark.parametrize(("hidden", "code", "extra"), [
    ("psutil", "import mlscope.resources", "resources"),
    ("grafanalib", "from mlscope import grafana", "stack"),
    ("cramjam", "from mlscope.logs import HttpTransport; HttpTransport('http://127.0.0.1:9/', encoding='protobuf')",
     "loki-protobuf"),
])
def test_an_optional_part_without_its_extra_says_which(hidden: str, code: str, extra: str) -> None:
    result = run_without((hidden,), code)
    assert result.returncode == 1
    assert f"pip install 'mlscope[{extra}]'" in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]


def test_every_extra_a_command_needs_brings_the_modules_it_checks() -> None:
    import importlib.metadata as md

    top_level = {"PyYAML": "yaml", "requests": "requests", "grafanalib": "grafanalib", "psutil": "psutil",
                 "nvidia-ml-py": "pynvml", "scikit-learn": "sklearn", "jinja2": "jinja2", "matplotlib": "matplotlib"}
    for extra, modules in EXTRA_MODULES.items():
        provided = {top_level.get(re.split(r"[<>=!\[ ]", r)[0]) for e in closure(extra) for r in EXTRAS[e]}
        assert set(modules) <= provided, (extra, set(modules) - provided)
    assert md.version("mlscope")  # installed, so the extras above are the ones pip resolves


def test_every_command_compose_runs_is_importable_from_what_the_dockerfile_installs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r'pip install [^\n]*"\.\[([\w,-]+)\]"', dockerfile)
    assert match, "the Dockerfile installs mlscope with its extras"
    installed = set().union(*(closure(e) for e in match.group(1).split(",")))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    by_name = {c.name: c for c in COMMANDS}
    ran = []
    for service in compose["services"].values():
        if str(service.get("image", "")).startswith("mlscope"):
            command = by_name[service["command"][0]]
            ran.append(command.name)
            assert command.extra is None or command.extra in installed, (command.name, command.extra, installed)
    assert {"resource-exporter", "quality-exporter", "alert-receiver", "demo"} <= set(ran)
