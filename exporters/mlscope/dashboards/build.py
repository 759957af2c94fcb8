"""Build the Grafana dashboards from their Python sources (``dashboards/*.py``) into provisioning JSON.

Each source module defines ``dashboard`` (a grafanalib ``Dashboard`` made with
:mod:`mlscope.grafana`). The JSON file is named after the dashboard's uid;
its ``version`` goes up by one whenever its content changes.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import style as grafana

GENERATED_PREFIX = "mlscope-"


@dataclass(frozen=True)
class Built:
    path: Path
    text: str
    source: Path | None = None


def _load_module(path: Path) -> ModuleType:
    """Execute a dashboard source file as a fresh module (not added to ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(f"dashboard_source_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_sources(source_dir: Path) -> dict[str, tuple[Any, Path]]:
    """uid -> (grafanalib Dashboard, its source) for every ``*.py`` in ``source_dir`` (``_*`` skipped)."""
    boards: dict[str, tuple[Any, Path]] = {}
    sources = sorted(source_dir.glob("*.py"))
    if not sources:
        raise FileNotFoundError(f"no dashboard sources (*.py) in {source_dir.resolve()}: run from the repository "
                                "root or pass --source")
    for path in sources:
        if path.name.startswith("_"):
            continue
        board = getattr(_load_module(path), "dashboard", None)
        if board is None:
            raise ValueError(f"{path} defines no `dashboard`")
        if not str(board.uid).startswith(GENERATED_PREFIX):
            raise ValueError(f"{path}: dashboard uid {board.uid!r} must start with {GENERATED_PREFIX!r}")
        if board.uid in boards:
            raise ValueError(f"{path}: uid {board.uid!r} is used twice")
        boards[board.uid] = (board, path)
    return boards


def _content(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "version"}


def render(source_dir: Path, output_dir: Path) -> list[Built]:
    """The JSON every source produces, versioned against what is already in ``output_dir``."""
    built = []
    for uid, (board, source) in load_sources(source_dir).items():
        path = output_dir / f"{uid}.json"
        data = grafana.to_json(board)
        if path.exists():
            previous = json.loads(path.read_text())
            same = _content(previous) == _content(data)
            data["version"] = previous.get("version", 1) if same else previous.get("version", 0) + 1
        built.append(Built(path, grafana.dumps(data), source))
    return built


def _generated(output_dir: Path) -> set[Path]:
    return set(output_dir.glob(f"{GENERATED_PREFIX}*.json"))


def build(source_dir: Path, output_dir: Path) -> tuple[list[Built], list[Path], list[Path]]:
    """Write every dashboard's JSON that changed, remove generated files whose source is gone.

    Returns (every dashboard built, the files written, the files removed).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    built = render(source_dir, output_dir)
    written = [item for item in built if not item.path.exists() or item.path.read_text() != item.text]
    for item in written:
        item.path.write_text(item.text)
    removed = sorted(_generated(output_dir) - {b.path for b in built})
    for path in removed:
        path.unlink()
    return built, [item.path for item in written], removed


def stale(source_dir: Path, output_dir: Path) -> list[Path]:
    """Files that differ from a fresh build, are missing, or have no source any more."""
    built = render(source_dir, output_dir)
    out = [b.path for b in built if not b.path.exists() or b.path.read_text() != b.text]
    out += sorted(_generated(output_dir) - {b.path for b in built})
    return out
