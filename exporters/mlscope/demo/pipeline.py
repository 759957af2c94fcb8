"""The demo's feature pipeline: a small job on a short schedule, its batches kept for retraining, and its
incidents (``pipeline-failure``, ``pipeline-stale``), registered on import.

Every ``interval_s`` (a minute in the fast profile) it ingests a batch of the rows the demo's traffic sees now
(drift included, when injected), rejects rows missing 3 values or more, checks the batch against the model's
reference profile and writes it to ``<state>/batches/<batch id>.npz``: the retraining job
(:mod:`mlscope.demo.retrain`) trains on the newest ones and names them, so a retrained version's lineage
reaches these runs. The pipeline is scraped with the demo's registry (a long-running pipeline); its lines
go where the demo's go (Loki, else ``predictions.jsonl``).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..pipelines import PipelineMonitor
from .incidents import Incident, register
from .workload import SyntheticService

PIPELINE = "demo-features"  # retrain.FEATURE_PIPELINE names it too (retrain imports this module only when training)
BATCHES = "batches"
log = logging.getLogger("mlscope.demo")


class FeatureStoreUnavailable(OSError):
    """The ``pipeline-failure`` incident: the batch cannot be written."""


def batch_id(now: float) -> str:
    """A batch's id: the pipeline and the UTC second it was taken (sorts in time order)."""
    return f"{PIPELINE}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now * 1000) % 1000:03d}"


@dataclass
class DemoPipeline:
    """Runs of ``demo-features`` every ``interval_s``; ``failing`` and ``paused`` are its incidents."""

    service: SyntheticService
    monitor: PipelineMonitor
    folder: Path
    interval_s: float = 60.0
    rows: int = 400  # fewer rows make the PSI of 30 features noisy enough for false drift verdicts
    max_missing: int = 3  # a row missing this many values is rejected (2 % of the demo's rows)
    keep: int = 20  # batch files kept on disk (the oldest go)
    failing: bool = False
    paused: bool = False
    _poke: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # one run at a time: batch ids in end order
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(5))

    def run_once(self) -> str:
        """One run now (after any run in progress); returns its status (a failure is recorded, never raised)."""
        with self._lock:
            return self._run()

    def _run(self) -> str:
        now = time.time()
        batch = batch_id(now)
        try:
            with self.monitor.run(batch) as run:
                with run.step("ingest") as step:
                    x, y = self.service.sample(self.rows)
                    complete = np.isnan(x).sum(axis=1) < self.max_missing
                    step.records(read=len(x), written=int(complete.sum()),
                                 rejected={"too_many_missing_values": int((~complete).sum())})
                    step.bytes(read=int(x.nbytes))
                    step.event_times(now - self._rng.uniform(5, 60, len(x)))
                    x, y = x[complete], y[complete]
                with run.step("validate") as step:
                    step.check_batch(x)
                    step.records(read=len(x), written=len(x))
                with run.step("write") as step:
                    if self.failing:
                        raise FeatureStoreUnavailable("demo incident pipeline-failure: the feature store refuses")
                    self.folder.mkdir(parents=True, exist_ok=True)
                    np.savez(self.folder / f"{batch}.npz", x=x, y=y)
                    step.records(read=len(x), written=len(x))
                    step.bytes(written=int(x.nbytes + y.nbytes))
        except FeatureStoreUnavailable:
            pass  # recorded as the run's failure (its run_end line names the error type)
        self._prune()
        return str(run.status)

    def _prune(self) -> None:
        for old in sorted(self.folder.glob(f"{PIPELINE}-*.npz"))[:-self.keep]:
            old.unlink(missing_ok=True)

    def poke(self) -> None:
        """Run at once (an incident just started), then on schedule again."""
        self._poke.set()

    def loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.paused:
                try:
                    self.run_once()
                except Exception:  # the demo keeps running whatever a run does
                    log.exception("mlscope demo: the feature pipeline's run raised")
            self._poke.wait(self.interval_s)
            self._poke.clear()


def newest_batches(folder: Path, count: int) -> list[tuple[str, dict[str, Any]]]:
    """The ``count`` newest batch files in ``folder``: (batch id, {"x", "y"})."""
    found = []
    for path in sorted(folder.glob(f"{PIPELINE}-*.npz"))[-count:]:
        with np.load(path) as data:
            found.append((path.stem, {"x": data["x"], "y": data["y"]}))
    return found


def _set(attribute: str, value: bool) -> Any:
    def change(demo: Any) -> str:
        pipeline: DemoPipeline = demo.pipeline
        old = getattr(pipeline, attribute)
        setattr(pipeline, attribute, value)
        if not (value and attribute == "paused"):
            pipeline.poke()  # a failed run, a recovered one, the first run after a pause: now, not an interval later
        return f"pipeline.{attribute} {old} -> {value}"
    return change


for _incident in (
    Incident("pipeline-failure", f"every run of {PIPELINE} fails (its write step: the feature store refuses): "
             "PipelineRunFailed at once, PipelineStale too once no run succeeded for 1.5 x its interval",
             _set("failing", True), _set("failing", False)),
    Incident("pipeline-stale", f"{PIPELINE} stops running (inject for more than 1.5 x its interval: PipelineStale); "
             "it runs at once when the incident ends",
             _set("paused", True), _set("paused", False)),
):
    register(_incident)
