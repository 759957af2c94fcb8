"""Replay generated rules over backfilled history in a real Prometheus (the adaptive-alert benchmark).

Backfilled blocks evaluate no rules, so recording rules are materialised in dependency order: every rule of one
level (a rule's level is one more than the highest level of the recorded series it reads) is evaluated by a range
query at the evaluation interval over the whole history, and its result is written back as OpenMetrics, turned
into blocks by ``promtool tsdb create-blocks-from openmetrics`` and loaded by restarting Prometheus. Each step
of a range query is the instant query a rule evaluation at that time runs, so the series are those the rules
would have recorded (without the staleness markers a vanishing rule output writes: an absent input stays
visible for the 5-minute lookback). Alerts are range-queried the same way and their ``for`` applied here.
"""
from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests
import yaml

from mlscope.rules.config import DEFAULT
from mlscope.rules.promql import duration_seconds, metric_names
from mlscope.stack import promconfig, servers

MAX_POINTS = 10_000  # Prometheus refuses range queries of more than 11,000 points per series
Series = tuple[str, tuple[tuple[str, str], ...]]  # name, sorted labels


BLOCK_S = 7200  # promtool 2.42 writes 2-hour blocks and re-reads its whole input for each: one file per block


def openmetrics(samples: Iterable[tuple[Series, np.ndarray, np.ndarray]]) -> dict[int, list[str]]:
    """OpenMetrics lines of ``(series, timestamps s, values)`` by 2-hour block; NaN values are left out (gaps)."""
    blocks: dict[int, list[str]] = {}
    for (name, labels), ts, values in samples:
        label_text = ",".join(f'{k}="{v}"' for k, v in labels)
        head = f"{name}{{{label_text}}} " if label_text else f"{name} "
        keep = ~np.isnan(values)
        for t, v in zip(ts[keep], values[keep], strict=True):
            blocks.setdefault(int(t // BLOCK_S), []).append(f"{head}{v:.17g} {t:.3f}")
    return blocks


@dataclass
class Replay:
    """A Prometheus over a data folder that grows by backfilled blocks."""

    tmp: Path
    start: float
    end: float
    step: float = 60.0
    prom: Any = None
    loads: int = 0
    rule_files: Sequence[Path] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def load(self, blocks: dict[int, list[str]]) -> None:
        """Write ``blocks`` (OpenMetrics lines by 2-hour block) into the data folder; restart Prometheus."""
        self.stop()
        self.loads += 1
        promtool = servers.find_binary(("promtool",))
        running: list[tuple[subprocess.Popen[bytes], Path]] = []
        for block, lines in sorted(blocks.items()):
            path = self.tmp / f"load{self.loads}-{block}.om"
            path.write_text("\n".join(lines) + "\n# EOF\n")
            running.append((subprocess.Popen([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(path),
                                              str(self.data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                            path))
            if len(running) >= 4:
                self._wait(*running.pop(0))
        for proc, path in running:
            self._wait(proc, path)
        self.begin()

    @staticmethod
    def _wait(proc: subprocess.Popen[bytes], path: Path) -> None:
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"promtool create-blocks-from openmetrics {path}: {err.decode()[-2000:]}")
        path.unlink()

    def begin(self) -> None:
        config = promconfig.prometheus_config(DEFAULT, [], self.rule_files)
        config["global"].update(self.extra)
        conf = promconfig.write_config(self.tmp / "prometheus.yml", config)
        self.prom = servers.prometheus(conf, self.data, exemplars=False, retention="400d").start(timeout=180)

    def stop(self) -> None:
        if self.prom is not None:
            self.prom.stop()
            self.prom = None

    def range(self, expr: str) -> Iterator[tuple[dict[str, str], np.ndarray, np.ndarray]]:
        """Every series of ``expr`` at each step of the history, in chunks Prometheus accepts."""
        chunk = self.step * MAX_POINTS
        found: dict[tuple[tuple[str, str], ...], list[tuple[np.ndarray, np.ndarray]]] = {}
        t = self.start
        while t <= self.end:
            stop = min(t + chunk - self.step, self.end)
            answer = requests.post(self.prom.url + "/api/v1/query_range", timeout=600, data={
                "query": expr, "start": t, "end": stop, "step": self.step}).json()
            if answer.get("status") != "success":
                raise RuntimeError(f"{expr[:200]}: {answer.get('error')}")
            for s in answer["data"]["result"]:
                values = np.array(s["values"], dtype=float)
                found.setdefault(tuple(sorted(s["metric"].items())), []).append((values[:, 0], values[:, 1]))
            t = stop + self.step
        for labels, parts in found.items():
            yield dict(labels), np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def levels(rules: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Recording rules in batches: each batch reads only series of earlier batches (or raw ones)."""
    level: dict[str, int] = {}
    batches: list[list[dict[str, Any]]] = []
    for rule in rules:
        n = 1 + max((level[name] for name in metric_names(rule["expr"]) if name in level), default=-1)
        level[rule["record"]] = max(level.get(rule["record"], 0), n)
        while len(batches) <= n:
            batches.append([])
        batches[n].append(rule)
    return batches


def materialise(replay: Replay, rules: Sequence[dict[str, Any]]) -> None:
    """Record ``rules`` over the whole history, level by level."""
    for batch in levels(rules):
        out = []
        for rule in batch:
            for labels, ts, values in replay.range(rule["expr"]):
                labels = {k: v for k, v in labels.items() if k != "__name__"} | rule.get("labels", {})
                out.append(((rule["record"], tuple(sorted(labels.items()))), ts, values))
        replay.load(openmetrics(out))


def firing(replay: Replay, rule: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]:
    """Firing episodes (first firing time, last active time) per label set, ``for`` applied at each step."""
    hold = duration_seconds(rule.get("for", "0"))
    episodes: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for labels, ts, _ in replay.range(rule["expr"]):
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
        runs, begin, last = [], ts[0], ts[0]
        for t in ts[1:]:
            if t - last > replay.step * 1.5:  # inactive in between: the run ended
                runs.append((begin, last))
                begin = t
            last = t
        runs.append((begin, last))
        episodes[key] = [(b + hold, e) for b, e in runs if e - b >= hold]
    return episodes


def rules_of(path: Path, group_names: Sequence[str]) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [r for g in groups if g["name"] in group_names for r in g["rules"]]


def temporary() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="mlscope-anomaly-bench-")
