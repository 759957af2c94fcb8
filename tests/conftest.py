"""Fixtures and guards shared by tests/unit and tests/e2e.

Module level imports only the light core (prometheus-client, numpy, pytest, the standard library), so the
``core`` tests collect in a virtual environment holding ``pip install . pytest`` alone.
"""
from __future__ import annotations

import inspect
import logging
import os
import re
import shlex
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from support.helpers import Exporter, free_port

TESTS = Path(__file__).resolve().parent
UNIT, CORE = TESTS / "unit", TESTS / "unit" / "core"
# The external programs only tests marked `servers` may start (directly, or through a child process).
SERVER_BINARIES = frozenset({"prometheus", "promtool", "alertmanager", "prometheus-alertmanager", "amtool",
                             "hadolint", "node", "loki", "grafana-server", "grafana", "chromium"})
GUARD_EXIT = 97


def _programs(args: object, executable: object, shell: bool) -> list[str]:
    """Basenames of what a Popen call would run (every word of a shell command line)."""
    if executable is not None:
        return [os.path.basename(os.fsdecode(executable))]
    if isinstance(args, (str, bytes, os.PathLike)):
        words = shlex.split(os.fsdecode(args)) if shell else [os.fsdecode(args)]
    else:
        words = [os.fsdecode(a) for a in list(args)[:1]]  # type: ignore[call-overload]
    return [os.path.basename(w) for w in words]


def _shims(folder: Path) -> Path:
    """Executables named like the server binaries that refuse to run: first on PATH for child processes."""
    folder.mkdir(exist_ok=True)
    for name in SERVER_BINARIES:
        shim = folder / name
        shim.write_text(f'#!/bin/sh\necho "mlscope test guard: {name} started by a test not marked servers" >&2\n'
                        f"exit {GUARD_EXIT}\n")
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


@pytest.fixture(autouse=True)
def _servers_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                   tmp_path_factory: pytest.TempPathFactory) -> None:
    """A test not marked ``servers`` fails the moment it tries to start a server binary.

    In this process: ``subprocess.Popen`` (behind ``run``, ``check_output``...) refuses such a program by its
    basename. In child processes (a ``python -m mlscope ...`` the test starts): shims of the same names come
    first on PATH and exit with status 97.
    """
    if request.node.get_closest_marker("servers"):
        return
    original = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def guarded(self, args, executable, *rest, **kwargs):
        shell = inspect.signature(original).bind(self, args, executable, *rest, **kwargs).arguments["shell"]
        refused = [p for p in _programs(args, executable, bool(shell)) if p in SERVER_BINARIES]
        if refused:
            pytest.fail(f"{request.node.nodeid} is not marked `servers` but starts {refused[0]!r}: "
                        "move it to tests/e2e/", pytrace=False)
        return original(self, args, executable, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", guarded)
    shims = _shims(tmp_path_factory.getbasetemp() / "servers-guard")
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ.get('PATH', '')}")


def in_folder(items: list[pytest.Item], folder: Path) -> list[pytest.Item]:
    return [item for item in items if Path(item.path).is_relative_to(folder)]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """No unit test is marked ``servers`` (tests/e2e/conftest.py marks that folder's tests); ``slow`` tests run
    first, so that with ``-n`` (pytest-xdist, `make test`) the long waits overlap the rest of the suite."""
    for item in in_folder(items, UNIT):
        if item.get_closest_marker("servers"):
            raise pytest.UsageError(f"{item.nodeid} is marked servers: it belongs in tests/e2e/")
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 1 and getattr(config.option, "dist", "") == "worksteal":
        items[:] = spread_slow_first(items, workers)


def _slow_seconds(item: pytest.Item) -> float | None:
    marker = item.get_closest_marker("slow")
    return None if marker is None else float(marker.kwargs.get("seconds", 60))


def spread_slow_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """``items`` so that each pytest-xdist worker starts with its share of the slow tests.

    Worksteal hands each worker a contiguous block of the collection and idle workers steal from the tails of the
    others' blocks, so slow tests all at the head would run one after another on the first worker (that chain was
    the suite's wall time). The slow tests go, longest first, to the block with the least slow time so far, at its
    head (a module's together); the rest fill the blocks in order. The block sizes are worksteal's (``len //
    workers left``)."""
    modules: dict[str, list[pytest.Item]] = {}  # a module's slow tests stay together (module-scoped fixtures)
    for item in items:
        if _slow_seconds(item) is not None:
            modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    groups = sorted(modules.values(), key=lambda group: -sum(_slow_seconds(i) or 0 for i in group))
    rest = [i for i in items if _slow_seconds(i) is None]
    sizes, left = [], len(items)
    for k in range(workers):
        sizes.append(left // (workers - k))
        left -= sizes[-1]
    blocks: list[list[pytest.Item]] = [[] for _ in sizes]
    load = [0.0] * workers
    for group in groups:
        j = min(range(workers), key=lambda b: (load[b], b))
        blocks[j].extend(group)
        load[j] += sum(_slow_seconds(i) or 0 for i in group)
    if any(len(b) > size for b, size in zip(blocks, sizes, strict=True)):
        return items  # a small selection: slow-first as sorted
    remaining = iter(rest)
    for block, size in zip(blocks, sizes, strict=True):
        block.extend(next(remaining) for _ in range(size - len(block)))
    return [item for block in blocks for item in block]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under ``-m core`` (or ``-m "core and ..."``) only tests/unit/core is imported: the rest needs extras."""
    if re.fullmatch(r"\s*core\s*(and\s.*)?", config.option.markexpr or "") and collection_path.suffix == ".py" \
            and collection_path.name.startswith("test_") and not collection_path.is_relative_to(CORE):
        return True
    return None


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry, so that no test sees another's series."""
    return CollectorRegistry()


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    """A fresh registry served by mlscope's /metrics server on a free loopback port."""
    from mlscope.exposition import start_metrics_server

    registry = CollectorRegistry()
    port = free_port()
    server, _thread = start_metrics_server(port, registry=registry)
    yield Exporter(registry, port, server)
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator:
    """A local Loki push receiver (JSON and protobuf) that admits the stream labels of the stack."""
    from support.loki_receiver import LokiReceiver

    r = LokiReceiver(allowed_labels={"app", "env", "model", "model_version", "level"})
    yield r
    r.close()


@pytest.fixture
def make_handler(receiver) -> Iterator:
    """``make_handler(**kwargs) -> (handler, logger, registry)`` shipping to the receiver."""
    from mlscope.logs import LokiHandler
    from support.logs_helpers import unique_logger_name

    made: list[LokiHandler] = []

    def make(url: str | None = None, **kwargs) -> tuple[LokiHandler, logging.Logger, CollectorRegistry]:
        registry = kwargs.pop("registry", None) or CollectorRegistry()
        kwargs = {"flush_interval": 0.05, "min_backoff": 0.05, "max_backoff": 0.5, "shutdown_timeout": 2.0,
                  **kwargs}
        handler = LokiHandler(url or receiver.url, registry=registry, **kwargs)
        made.append(handler)
        logger = logging.getLogger(unique_logger_name())
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        return handler, logger, registry

    yield make
    for handler in made:
        handler.shutdown_timeout = 0.5
        handler.close()
