"""A supervised server that exits says why: its exit status and the last lines it wrote in this run (a Python
child stands in for a crashing server; ``mlscope up`` then stops the stack with that reason)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlscope.stack import servers
from mlscope.stack.native import NativeStack
from support.helpers import free_port


def crashing(tmp_path: Path, code: str) -> servers.Server:
    return servers.Server("tempo", [sys.executable, "-c", code], free_port(), tmp_path / "tempo.log")


def test_a_server_that_exits_at_start_gives_its_status_and_last_lines(tmp_path: Path) -> None:
    with pytest.raises(servers.ServerError) as failed:
        crashing(tmp_path, "import sys; print('level=error msg=\"bad config\"'); sys.exit(3)").start(timeout=20)
    assert str(failed.value) == 'tempo exited with code 3: level=error msg="bad config"'
    with pytest.raises(servers.ServerError) as silent:  # the earlier run's lines are not this run's reason
        crashing(tmp_path, "import sys; sys.exit(1)").start(timeout=20)
    assert str(silent.value) == f"tempo exited with code 1: it wrote nothing to its log {tmp_path / 'tempo.log'}"


def test_up_stops_with_the_reason_when_a_supervised_server_exits(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    server = crashing(tmp_path, "import os, time; time.sleep(30)")
    stack = NativeStack(tmp_path / "state", demo=False)
    with pytest.raises(servers.ServerError):  # never ready: no HTTP server; stopped (SIGTERM) by start()
        stack._servers.append(server.start(timeout=0.3))
    stack._servers.append(server)
    assert stack.exited()
    assert capsys.readouterr().out.strip() == (
        f"mlscope: tempo was killed by SIGTERM: it wrote nothing to its log {tmp_path / 'tempo.log'}; "
        "stopping the stack")
