"""The suite's own promises: e2e tests are marked `servers`, unit tests not; core tests import only the core."""
from __future__ import annotations

import subprocess
import sys

from support import ROOT
from support.hidden import NOT_CORE, run_hidden


def collect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_every_e2e_test_is_marked_servers_and_no_unit_test_is() -> None:
    e2e = collect("-m", "not servers", "tests/e2e")
    assert e2e.returncode == 5 and "no tests collected" in e2e.stdout, e2e.stdout[-2000:]  # 5: nothing selected
    unit = collect("-m", "servers", "tests/unit")
    assert unit.returncode == 5, unit.stdout[-2000:]
    everything = collect("-m", "servers", "tests/e2e")
    assert everything.returncode == 0 and " collected" in everything.stdout


def test_core_tests_collect_with_every_extra_hidden() -> None:
    """What CI's core job does in a venv with `pip install . pytest` alone: here the extras are hidden instead."""
    result = run_hidden("import pytest, sys\nsys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', "
                        "'-m', 'core', 'tests/unit']))", NOT_CORE)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "tests/unit/core/" in result.stdout and "tests/unit/test_" not in result.stdout
