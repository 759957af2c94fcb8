"""Run a Markdown tutorial's steps as written: its files, its commands, its background processes.

A tutorial marks what the test runs with the HTML comment on the line before a fenced block:
``<!-- file: NAME -->`` (write the block to NAME), ``<!-- run -->`` (run each line, one after the other),
``<!-- run: background -->`` (start each line and leave it running), ``<!-- run: until TEXT -->`` (a
``tail -f FILE``: wait until a line of FILE contains TEXT), ``<!-- run: compose -->`` (a command of the compose
half, run last). Default ports are replaced with free ones everywhere, and ``mlscope up`` gets the matching
``--…-port`` flags: nothing else of the page changes.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

MARK = re.compile(r"^<!-- (file: (?P<file>\S+)|run(: (?P<how>background|compose|until (?P<until>.+?)))?) -->$")
FENCE = re.compile(r"^(`{3,})[\w-]*\n(.*?)^\1\s*$", re.S | re.M)


@dataclass(frozen=True)
class Step:
    kind: str          # file, run, background, until, compose
    text: str          # the block
    name: str = ""     # the file's name, or the text `until` waits for


def steps(markdown: str) -> list[Step]:
    """The marked blocks of ``markdown``, in order."""
    found = []
    for match in FENCE.finditer(markdown):
        before = markdown[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        mark = MARK.match(before)
        if mark is None:
            continue
        if mark.group("file"):
            found.append(Step("file", match.group(2), mark.group("file")))
        elif mark.group("until"):
            found.append(Step("until", match.group(2), mark.group("until")))
        else:
            found.append(Step(mark.group("how") or "run", match.group(2)))
    return found


def commands(block: str) -> Iterator[list[str]]:
    """The command lines of a shell block, comments dropped."""
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            yield argv


@dataclass
class Runner:
    """Runs steps in ``cwd`` with ``ports`` ({default: free}) and ``up_flags`` for ``mlscope up``."""

    cwd: Path
    ports: Mapping[int, int]
    up_flags: list[str]
    background: list[subprocess.Popen[str]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def localize(self, text: str) -> str:
        return re.sub(r"\b(\d{4})\b", lambda m: str(self.ports.get(int(m.group(1)), m.group(1))), text)

    def argv(self, argv: list[str], localize: bool = True) -> list[str]:
        argv = [self.localize(a) if localize else a for a in argv]
        if argv[0] == "mlscope":
            argv = [sys.executable, "-m", "mlscope.cli", *argv[1:]]
            if argv[3:4] == ["up"]:
                argv += self.up_flags
        elif argv[0] == "python":
            argv = [sys.executable, *argv[1:]]
        return argv

    def write(self, step: Step) -> None:
        (self.cwd / step.name).write_text(self.localize(step.text))

    def run(self, argv: list[str], timeout: float = 300, localize: bool = True) -> str:
        if argv[:2] == ["curl", "-s"]:  # no curl on every machine: the same GET
            answer = requests.get(self.localize(argv[2]), timeout=10)
            answer.raise_for_status()
            self.outputs.append(answer.text)
            return answer.text
        done = subprocess.run(self.argv(argv, localize), cwd=self.cwd, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        self.outputs.append(done.stdout)
        return done.stdout

    def start(self, argv: list[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(self.argv(argv), cwd=self.cwd, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        self.background.append(process)
        return process

    def wait_for_line(self, argv: list[str], text: str, timeout: float) -> str:
        """``tail -f FILE`` until a line holds ``text``: that line."""
        assert argv[:2] == ["tail", "-f"], argv
        path, deadline = self.cwd / argv[2], time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = path.read_text().splitlines() if path.exists() else []
            found = [line for line in lines if text in line]
            if found:
                return found[0]
            self.check_background()
            time.sleep(0.5)
        raise AssertionError(f"no line with {text!r} in {path} within {timeout:.0f} s")

    def check_background(self) -> None:
        for process in self.background:
            if process.poll() not in (None, 0):
                out = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"{shlex.join(process.args)} exited {process.returncode}:\n{out[-3000:]}")

    def stop(self) -> None:
        for process in reversed(self.background):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout:.0f} s")
