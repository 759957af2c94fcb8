"""The guard of tests/conftest.py: a test not marked `servers` cannot start a server binary (here or in a child)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

GUARDED = pytest.fail.Exception


@pytest.mark.parametrize("command", [
    ["promtool", "--version"],
    ["/usr/bin/prometheus", "--version"],
    ["prometheus-alertmanager", "--version"],
], ids=["by-name", "by-absolute-path", "alertmanager"])
def test_an_unmarked_test_fails_the_moment_it_starts_a_server(command: list[str]) -> None:
    with pytest.raises(GUARDED, match="is not marked `servers` but starts"):
        subprocess.run(command, capture_output=True, timeout=10)


def test_shell_command_lines_and_popen_are_guarded_too() -> None:
    with pytest.raises(GUARDED, match="'amtool'"):
        subprocess.run("cd / && amtool --version", shell=True, capture_output=True, timeout=10)
    with pytest.raises(GUARDED, match="'node'"):
        subprocess.Popen(["node", "-e", "1"])
    with pytest.raises(GUARDED, match="'hadolint'"):
        subprocess.check_output(["x"], executable="hadolint")


def test_a_child_process_meets_the_shims_first_on_path() -> None:
    found = shutil.which("promtool")
    assert found and "servers-guard" in found
    child = subprocess.run([sys.executable, "-c", "import subprocess; print(subprocess.run(['promtool', 'check', "
                            "'metrics'], capture_output=True, text=True).stderr)"],
                           capture_output=True, text=True, timeout=60)
    assert "promtool started by a test not marked servers" in child.stdout


def test_the_interpreter_and_ordinary_programs_still_run() -> None:
    assert subprocess.run([sys.executable, "-c", "print(42)"], capture_output=True, text=True).stdout == "42\n"
    assert subprocess.run(["true"]).returncode == 0
