"""At exit the process never hangs on Loki: a bounded flush, then the rest goes to the disk spool."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support import ROOT
from support.helpers import wait_until
from support.loki_receiver import LokiReceiver

CHILD = textwrap.dedent("""
    import logging, sys, time
    from mlscope.logs import HttpTransport, LokiHandler

    url, spool = sys.argv[1], sys.argv[2] or None
    handler = LokiHandler(HttpTransport(url, read_timeout=60), spool_dir=spool, shutdown_timeout=2,
                          flush_interval=0.05)
    log = logging.getLogger("child")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    for i in range(100):
        log.info("line", extra={"seq": i})
    time.sleep(0.5)   # the first push is now hanging in Loki
    print("exiting", flush=True)
    # no close(), no logging.shutdown(): the interpreter's exit must do it within the bound
""")


def run_child(url: str, spool: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "exporters")}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHILD, url, spool], capture_output=True, text=True,
                          timeout=60, env=env)
    return time.monotonic() - start, done


@pytest.mark.parametrize("with_spool", [True, False])
def test_process_exits_within_bound_while_loki_hangs(receiver: LokiReceiver, tmp_path: Path,
                                                     with_spool: bool) -> None:
    receiver.mode = "hang"
    elapsed, done = run_child(receiver.url, str(tmp_path) if with_spool else "")
    assert done.returncode == 0 and "exiting" in done.stdout, done.stderr
    assert elapsed < 15, f"exit took {elapsed:.1f}s with Loki hung (shutdown_timeout=2s)"
    assert receiver.requests == [] or all(r.status != 204 for r in receiver.requests)
    if with_spool:  # nothing lost: the lines wait on disk for the next start
        spooled = sorted(tmp_path.glob("*.json"))
        assert sum(int(p.stem.split("-")[1]) for p in spooled) == 100


def test_process_exits_promptly_when_loki_is_down(receiver: LokiReceiver, tmp_path: Path) -> None:
    receiver.refuse()
    elapsed, done = run_child(receiver.url, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert elapsed < 15
    assert sum(int(p.stem.split("-")[1]) for p in tmp_path.glob("*.json")) == 100


def test_lines_are_delivered_at_exit_when_loki_is_up(receiver: LokiReceiver, tmp_path: Path) -> None:
    elapsed, done = run_child(receiver.url, str(tmp_path))
    assert done.returncode == 0, done.stderr
    wait_until(lambda: len(receiver.lines) == 100, timeout=5)
    assert not list(tmp_path.glob("*.json"))
