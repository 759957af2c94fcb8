"""The demo's retraining job: run by the alert receiver when a drift or quality alert fires (its
``alert_commands``), it trains a new version of the demo model on the bundled training set plus the feature
pipeline's newest batches, reports the run through :meth:`PipelineMonitor.training_run` (pushed to the
Pushgateway, with the new version's ``mlscope_model_info``), and asks the running demo to serve it.

Its lineage: the training run's lines name the alert (``triggered_by``: name, fingerprint), the batches
(``data_batch_ids``), the dataset version, hyperparameters and fingerprint; ``mlscope lineage demo-classifier
VERSION`` prints them. Exit status: 0 retrained, 3 nothing to do (another alert of the same episode already
retrained within ``cooldown_s``, a retraining is running, or the alert is a batch's data-quality check:
:data:`RETRAINING_CHECKS`), anything else failed: the receiver's command contract. Every feature's drift alert
fires on its own, so the cooldown makes one episode one retraining: the first alert to reach the receiver
retrains (in the demo, usually the batch's drift check, before ``FeatureDriftHigh``'s ``for``).
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from ..logs import JsonFormatter, LokiHandler
from ..pipelines import LOGGER, AlertTrigger, NotAnAlert, PipelineMonitor

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline

    from ..drift.profile import ReferenceProfile

MODEL, FIRST_VERSION = "demo-classifier", "1.0.0"
PIPELINE = "demo-retrain"
FEATURE_PIPELINE = "demo-features"  # the demo's feature pipeline (mlscope.demo.pipeline), whose batches it trains on
MODELS, LAST_RUN, LOCK, LOG_FILE = "models", "retrain-last.json", "retrain.lock", "training.jsonl"
DONE, FAILED, NOT_APPLICABLE = 0, 1, 3  # the alert receiver's command contract
HYPERPARAMETERS = {"C": 1.0, "max_iter": 2000}
TRANSFORMATIONS = ["mean_imputation", "standard_scaler"]  # a batch's few missing values: the training mean
# The alerts whose firing retrains the demo model (the demo's receiver configuration).
TRIGGERS = ("FeatureDriftHigh", "PredictionDriftHigh", "ModelQualityBelowBaseline", "PipelineBatchChecksFailing")
# A batch fails one PipelineBatchChecksFailing per check (its `check` label), all at once: only its drift check
# retrains, so which alert retrains is not a race between them. Data-quality checks (missing, out of range, type,
# new category, schema) say the data is broken, not that the world changed: training on it would learn the fault.
RETRAINING_CHECKS = ("drift",)
_VERSION = re.compile(r"^\d+\.\d+\.(\d+)$")
# At most one retraining per 15 minutes, longer than the demo's incident cycle (10.5 minutes): its drift is
# transient, so a version trained on drifted batches drifts itself once the incident ends (its reference holds
# them); the cooldown keeps that from retraining again within the cycle, and the versions few (20 per model).
COOLDOWN_S = 900.0
SHADOW_FILE = "shadow.pkl"


@dataclass(frozen=True)
class Artifact:
    """A trained version on disk: ``<state>/models/<version>/`` (model.pkl, profile.json, manifest.json, and
    shadow.pkl: the shadow retrained on the same data, so it is compared with its own stable)."""

    version: str
    pipeline: Pipeline
    profile: ReferenceProfile
    manifest: dict[str, Any] = field(default_factory=dict)
    shadow: Pipeline | None = None


def version_folder(state_dir: Path, version: str) -> Path:
    if not _VERSION.match(version):
        raise ValueError(f"not a demo model version: {version!r}")
    return state_dir / MODELS / version


def next_version(state_dir: Path) -> str:
    """1.0.<n+1> after the newest version on disk (1.0.0, the demo's first, is never on disk)."""
    numbers = [int(m.group(1)) for p in (state_dir / MODELS).glob("*") if (m := _VERSION.match(p.name))]
    return f"1.0.{max(numbers, default=0) + 1}"


def load_artifact(state_dir: Path, version: str) -> Artifact:
    from ..drift import load_profile

    folder = version_folder(state_dir, version)
    with (folder / "model.pkl").open("rb") as handle:  # written by this job into the demo's own state folder
        pipeline = pickle.load(handle)
    manifest = json.loads((folder / "manifest.json").read_text())
    shadow = None
    if (folder / SHADOW_FILE).exists():
        with (folder / SHADOW_FILE).open("rb") as handle:
            shadow = pickle.load(handle)
    return Artifact(version, pipeline, load_profile(folder / "profile.json"), manifest, shadow)


def retrain_command(state_dir: Path, demo_url: str | None, pushgateway: str | None, loki_url: str | None,
                    timeout_s: float = 120) -> dict[str, Any]:
    """The receiver's ``alert_commands`` that retrain the demo model on each of :data:`TRIGGERS`."""
    argv = [sys.executable, "-m", "mlscope.cli", "demo", "retrain", "--state-dir", str(state_dir)]
    argv += ["--url", demo_url] if demo_url else []
    argv += ["--pushgateway", pushgateway] if pushgateway else []
    argv += ["--loki-url", loki_url] if loki_url else []
    return {name: {"command": argv, "timeout": timeout_s, "on": ["firing"]} for name in TRIGGERS}


@dataclass
class Retraining:
    """One retraining of the demo model (see the module's docstring)."""

    state_dir: Path
    trigger: AlertTrigger | None = None
    pushgateway: str | None = None
    demo_url: str | None = None
    batches: int = 5
    cooldown_s: float = COOLDOWN_S
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    say: Any = print

    def not_applicable(self) -> str | None:
        """Why there is nothing to do now (a data-quality check's alert, a recent retraining), or None."""
        trigger = self.trigger
        model, pipeline = (None, None) if trigger is None else (trigger.labels.get("model"),
                                                                trigger.labels.get("pipeline"))
        if trigger is not None and ((model and model != MODEL) or (pipeline and pipeline != FEATURE_PIPELINE)):
            return (f"alert {trigger.alertname} {trigger.fingerprint} is about {model or 'pipeline ' + str(pipeline)}, "
                    f"not the demo's {MODEL} or its pipeline {FEATURE_PIPELINE}")
        if trigger is not None and "check" in trigger.labels and trigger.labels["check"] not in RETRAINING_CHECKS:
            return (f"alert {trigger.alertname} {trigger.fingerprint} is the batch's {trigger.labels['check']} check: "
                    f"only a {' or '.join(RETRAINING_CHECKS)} check retrains (the data is broken, not changed)")
        last = self.state_dir / LAST_RUN
        if last.exists():
            done = json.loads(last.read_text())
            age = time.time() - float(done["ended_at"])
            if age < self.cooldown_s:
                return (f"{MODEL} {done['version']} was retrained {age:.0f} s ago (for alert {done.get('alertname')} "
                        f"{done.get('fingerprint')}); cooldown {self.cooldown_s:g} s")
        return None

    def run(self) -> int:
        reason = self.not_applicable()
        if reason:
            self.say(f"mlscope: nothing to do: {reason}")
            return NOT_APPLICABLE
        lock = self.state_dir / LOCK
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if time.time() - lock.stat().st_mtime < 600:
                self.say(f"mlscope: nothing to do: a retraining is running ({lock})")
                return NOT_APPLICABLE
            lock.unlink(missing_ok=True)  # a crashed run's lock: take it over
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        try:
            os.close(fd)
            return self._retrain()
        finally:
            lock.unlink(missing_ok=True)

    def _retrain(self) -> int:
        # Imported here: the other alerts of an episode exit at once, without loading scikit-learn.
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from .pipeline import BATCHES, newest_batches
        from .workload import train

        base = train("breast_cancer")
        batches = newest_batches(self.state_dir / BATCHES, self.batches)
        x = np.vstack([base.x_train, *(b["x"] for _, b in batches)])
        x = np.where(np.isnan(x), np.nanmean(base.x_train, axis=0), x)
        y = np.concatenate([base.y_train, *(b["y"] for _, b in batches)])
        ids = [batch for batch, _ in batches]
        version = next_version(self.state_dir)
        dataset = f"breast_cancer-train+{len(ids)}-batches" + (f"-{ids[-1].rsplit('-', 1)[-1]}" if ids else "")
        monitor = PipelineMonitor(PIPELINE, registry=self.registry, owner="demo", pushgateway=self.pushgateway)
        with monitor.training_run(MODEL, dataset_version=dataset, training_data=x, columns=base.feature_names,
                                  hyperparameters=HYPERPARAMETERS, transformations=TRANSFORMATIONS,
                                  data_batch_ids=ids, triggered_by=self.trigger, model_version=version) as run:
            with run.step("fit"):
                pipeline = make_pipeline(StandardScaler(), LogisticRegression(**HYPERPARAMETERS)).fit(x, y)
                # The shadow, retrained on a resample of the same data (as 1.2.0-shadow is on another split).
                pick = np.random.default_rng(1).integers(0, len(x), len(x))
                shadow = make_pipeline(StandardScaler(), LogisticRegression(**HYPERPARAMETERS)).fit(x[pick], y[pick])
            with run.step("evaluate"):
                accuracy = float((pipeline.predict(base.x_test) == base.y_test).mean())
                run.final(accuracy=accuracy)
            with run.step("save"):
                folder = self._save(version, pipeline, shadow, x, base, run.fingerprint, {
                    "run_id": run.run_id, "dataset_version": dataset, "data_batch_ids": ids,
                    "training_data_fingerprint": run.fingerprint, "accuracy": accuracy,
                    "triggered_by": None if self.trigger is None else self.trigger.fields()})
            # The version's mlscope_model_info (fingerprint, dataset version), pushed with the run's group.
            run.model_monitor(version, metadata={"simulated": "true"})
        pushed = "" if run.push_result is None else f"; pushed: {run.push_result.ok}"
        self.say(f"mlscope: trained {MODEL} {version} on {len(x)} rows ({len(ids)} batches), accuracy "
                 f"{accuracy:.3f}, fingerprint {run.fingerprint}, run {run.run_id}{pushed}")
        trigger = {} if self.trigger is None else {"alertname": self.trigger.alertname,
                                                   "fingerprint": self.trigger.fingerprint}
        (self.state_dir / LAST_RUN).write_text(json.dumps({"ended_at": time.time(), "version": version,
                                                           "run_id": run.run_id, **trigger}))
        if self.demo_url:
            return self._deploy(version, folder)
        return DONE

    def _save(self, version: str, pipeline: Pipeline, shadow: Pipeline, x: np.ndarray, base: Any,
              fingerprint: str, manifest: Mapping[str, Any]) -> Path:
        from ..drift import build_profile
        from .workload import linear_contributions

        folder = version_folder(self.state_dir, version)
        folder.mkdir(parents=True, exist_ok=True)
        classes = [int(c) for c in pipeline.classes_]
        profile = build_profile(x, columns=base.feature_names, model=MODEL, model_version=version,
                                output=pipeline.predict(x), labels=base.y_test,
                                proba=pipeline.predict_proba(base.x_test), classes=classes,
                                attributions=linear_contributions(pipeline, x))  # the rank agreement's reference
        assert profile.source_hash == fingerprint  # one function names the training data everywhere
        profile.save(folder / "profile.json")
        with (folder / "model.pkl").open("wb") as handle:
            pickle.dump(pipeline, handle)
        with (folder / SHADOW_FILE).open("wb") as handle:
            pickle.dump(shadow, handle)
        (folder / "manifest.json").write_text(json.dumps({"version": version, **manifest}, indent=1))
        return folder

    def _deploy(self, version: str, folder: Path) -> int:
        import requests

        try:
            fingerprint = "" if self.trigger is None else self.trigger.fingerprint  # the split's log names it
            answer = requests.post(f"{str(self.demo_url).rstrip('/')}/models",
                                   json={"model_version": version, "fingerprint": fingerprint}, timeout=30)
        except requests.RequestException as exc:
            self.say(f"mlscope: trained {version} ({folder}) but the demo at {self.demo_url} did not answer: {exc}")
            return FAILED
        if answer.status_code != 200:
            self.say(f"mlscope: the demo refused {version}: {answer.status_code} {answer.text[:300]}")
            return FAILED
        self.say(f"mlscope: the demo serves {MODEL} {version} now")
        return DONE


def log_handlers(state_dir: Path, loki_url: str | None) -> list[logging.Handler]:
    """The job's log lines: a JSON-lines file in the state folder (the fallback), and Loki when given."""
    file_handler = logging.FileHandler(state_dir / LOG_FILE)
    file_handler.setFormatter(JsonFormatter(static={"simulated": True}))
    handlers: list[logging.Handler] = [file_handler]
    if loki_url:
        handlers.append(LokiHandler(loki_url, env="demo", name="demo-retrain", shutdown_timeout=5.0))
    return handlers


def main(state_dir: Path, demo_url: str | None, pushgateway: str | None, loki_url: str | None,
         cooldown_s: float, stdin: Any = None) -> int:
    """``mlscope demo retrain``: the alert (if any) on stdin, as the receiver writes it."""
    stream = stdin or sys.stdin
    trigger = None
    if not stream.isatty():
        try:
            trigger = AlertTrigger.read(stream)
        except NotAnAlert as exc:
            print(f"mlscope: {exc}", file=sys.stderr)
            return FAILED
    state_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER)
    handlers = log_handlers(state_dir, loki_url)
    logger.setLevel(logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        return Retraining(state_dir, trigger, pushgateway=pushgateway, demo_url=demo_url, cooldown_s=cooldown_s).run()
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
