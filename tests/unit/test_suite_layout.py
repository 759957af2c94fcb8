"""The suite's own promises: e2e tests are marked `servers`, unit tests not; core tests import only the core."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import ROOT
from support.collected import describe
from support.hidden import NOT_CORE, run_hidden

TESTS = ROOT / "tests"


def this_run(session: pytest.Session) -> list[dict[str, Any]] | None:
    """This session's tests, when it collected every test file of the suite with no filter (`make test`: every
    pytest-xdist worker collects the whole suite); None otherwise (one file, ``-k``, ``-m``...)."""
    options = session.config.option
    if options.markexpr or options.keyword or getattr(options, "lf", False) or getattr(options, "deselect", None):
        return None
    files = {str(p) for p in TESTS.rglob("test_*.py") if "support" not in p.relative_to(TESTS).parts}
    items = describe(session.items)
    return items if {i["path"] for i in items} == files else None


def collected_apart(tmp_path: Path) -> list[dict[str, Any]]:
    """A collection of the whole suite in its own process, by the plugin in support/collected.py."""
    report = tmp_path / "collected.json"
    env = {**os.environ, "MLSCOPE_COLLECTED": str(report),
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             "-p", "support.collected", "tests"], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]  # a unit test marked servers: 4
    return json.loads(report.read_text())


def test_every_e2e_test_is_marked_servers_and_no_unit_test_is(request: pytest.FixtureRequest,
                                                               tmp_path: Path) -> None:
    """The markers as pytest applied them (the conftests' hooks mark tests/e2e and refuse a unit test marked
    `servers`): of this very run when it collected the whole suite, else of a collection apart (seconds)."""
    items = this_run(request.session) or collected_apart(tmp_path)
    e2e = [i for i in items if Path(i["path"]).is_relative_to(TESTS / "e2e")]
    unit = [i for i in items if Path(i["path"]).is_relative_to(TESTS / "unit")]
    assert e2e and unit and len(e2e) + len(unit) == len(items)
    assert [i["path"] for i in e2e if "servers" not in i["markers"]] == []
    assert [i["path"] for i in unit if "servers" in i["markers"]] == []


def test_core_tests_collect_with_every_extra_hidden() -> None:
    """What CI's core job does in a venv with `pip install . pytest` alone: here the extras are hidden instead."""
    result = run_hidden("import pytest, sys\nsys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', "
                        "'-m', 'core', 'tests/unit']))", NOT_CORE)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "tests/unit/core/" in result.stdout and "tests/unit/test_" not in result.stdout
