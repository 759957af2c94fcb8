"""A synthetic model service: a real scikit-learn model on a bundled data set, driven with traffic.

Tests of every part of mlscope, the benchmarks and the demo reuse it instead of
writing their own. Faults (errors, latency, feature drift) can be changed while
traffic runs. Given an OpenTelemetry tracer, each request is a small trace: the monitor's prediction span
with the steps of the request as children (``feature_fetch`` -> ``preprocessing`` -> ``model`` ->
``postprocessing``); the latency fault slows one named step (``Faults.slow_step``).
"""
from __future__ import annotations

import contextlib
import heapq
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..monitor import ModelMonitor
from ..tracing import ERROR_TYPE
from ..versions import TrafficSplit

Dataset = Literal["breast_cancer", "wine", "diabetes"]
_LOADERS: dict[str, Callable[..., Any]] = {
    "breast_cancer": load_breast_cancer, "wine": load_wine, "diabetes": load_diabetes}


class SimulatedPredictionError(RuntimeError):
    """Raised by the synthetic service when a fault injects an error."""


@dataclass
class TrainedModel:
    """A fitted pipeline with its train/test split (all bundled with scikit-learn, no download)."""

    dataset: str
    task: Literal["classification", "regression"]
    pipeline: Pipeline
    feature_names: list[str]
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def train(dataset: Dataset = "breast_cancer", seed: int = 0) -> TrainedModel:
    """Fit a logistic regression (classification) or ridge (regression) on a bundled data set."""
    if dataset not in _LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(_LOADERS)}")
    bunch = _LOADERS[dataset]()
    task: Literal["classification", "regression"] = "regression" if dataset == "diabetes" else "classification"
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target, test_size=0.3, random_state=seed,
        stratify=bunch.target if task == "classification" else None)
    estimator = LogisticRegression(max_iter=2000) if task == "classification" else Ridge(alpha=1.0)
    pipeline = make_pipeline(StandardScaler(), estimator).fit(x_train, y_train)
    return TrainedModel(dataset, task, pipeline, [str(n) for n in bunch.feature_names],
                        x_train, x_test, y_train, y_test)


def linear_contributions(pipeline: Pipeline, x: np.ndarray) -> np.ndarray:
    """Each feature's contribution to a linear model's decision: coefficient times the scaled value (the exact
    SHAP values of a linear model with independent features, against the training mean); rows by features."""
    coef = np.asarray(pipeline[-1].coef_, dtype=np.float64)
    return pipeline[:-1].transform(np.asarray(x, dtype=np.float64)) * (coef[0] if coef.ndim == 2 else coef)


@dataclass
class Faults:
    """What the service does wrong right now; change the fields while traffic runs."""

    error_rate: float = 0.0
    extra_latency_s: float = 0.0
    # Shift added to every feature, in units of that feature's training standard deviation.
    drift_shift_std: float = 0.0
    # Share of feature values that arrive missing (NaN); the model sees the training mean instead.
    missing_rate: float = 0.0
    # The step of a request that `extra_latency_s` slows (a feature store answering late, by default).
    slow_step: str = "feature_fetch"
    # Share of the shadow's answers turned into the other class (the shadow-disagree incident).
    shadow_flip_rate: float = 0.0


STEPS = ("feature_fetch", "preprocessing", "model", "postprocessing")
# Attributes of the demo's step spans (mlscope's own keys): what a drifted or degraded input looks like.
FEATURES_MISSING = "mlscope.features.missing"
FEATURES_OUT_OF_RANGE = "mlscope.features.out_of_range"  # features more than 3 training std from the mean


@dataclass
class Prediction:
    request_id: str
    features: np.ndarray
    y_pred: Any
    y_true: Any
    score: float | None


class SyntheticService:
    """A model service instrumented with a :class:`ModelMonitor`."""

    def __init__(self, trained: TrainedModel, monitor: ModelMonitor, seed: int = 0, tracer: Any = None,
                 shadow: tuple[str, Pipeline] | None = None) -> None:
        self.trained = trained
        self.monitor = monitor
        self.shadow = shadow  # (version, pipeline): answers every request too, compared, never served
        self.tracer = tracer  # an OpenTelemetry tracer: one span per step of a request
        self.faults = Faults()
        self._rng = np.random.default_rng(seed)
        self._std = trained.x_train.std(axis=0)
        self._mean = trained.x_train.mean(axis=0)
        self._lock = threading.Lock()

    def sample(self, rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Rows drawn from the held-out set, with the current drift applied."""
        with self._lock:
            index = self._rng.integers(0, len(self.trained.x_test), rows)
            missing = (self._rng.random((rows, self._std.size)) < self.faults.missing_rate
                       if self.faults.missing_rate > 0 else None)
        x = self.trained.x_test[index] + self.faults.drift_shift_std * self._std
        if missing is not None:
            x[missing] = np.nan
        return x, self.trained.y_test[index]

    def _should_fail(self) -> bool:
        if self.faults.error_rate <= 0:
            return False
        with self._lock:
            return bool(self._rng.random() < self.faults.error_rate)

    def predict_one(self, x: np.ndarray, y_true: Any = None, request_id: str | None = None) -> Prediction:
        """Serve one prediction through the monitor; raises when a fault injects an error.

        The monitor sees the features as they arrived (missing values included, when a
        reference profile is attached); the model sees missing values imputed with the training mean.
        """
        with self.monitor.track(request_id) as tracker:
            with self._step("feature_fetch"):
                if self.monitor.drift_enabled:
                    tracker.features = x
            with self._step("preprocessing") as span:
                missing = np.isnan(x)
                row = np.where(missing, self._mean, x).reshape(1, -1)
                if span is not None:
                    span.set_attribute(FEATURES_MISSING, int(missing.sum()))
                    span.set_attribute(FEATURES_OUT_OF_RANGE,
                                       int(np.count_nonzero(np.abs(row - self._mean) > 3 * self._std)))
            with self._step("model"):
                if self._should_fail():
                    raise SimulatedPredictionError("injected fault")
                y_pred = self.trained.pipeline.predict(row)[0]
                proba = (self.trained.pipeline.predict_proba(row)[0] if self.trained.task == "classification"
                         else None)
            with self._step("postprocessing"):
                score = None
                if proba is not None:
                    tracker.proba = proba
                    score = float(proba.max())
                    tracker.score = score
                tracker.output = y_pred.item() if isinstance(y_pred, np.generic) else y_pred
                tracker.attributions = dict(zip(self.trained.feature_names,
                                                linear_contributions(self.trained.pipeline, row)[0].tolist(),
                                                strict=True))
        if self.shadow is not None:
            version, model = self.shadow
            answer = model.predict(row)[0].item()
            if self.faults.shadow_flip_rate > 0:
                with self._lock:
                    flip = bool(self._rng.random() < self.faults.shadow_flip_rate)
                answer = 1 - answer if flip else answer
            self.monitor.shadow(tracker.request_id, version=version, prediction=answer)
        return Prediction(tracker.request_id, x, tracker.output, y_true, score)

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[Any]:
        """One step of a request: its span when tracing (exceptions recorded, status ERROR), and the latency
        fault when it is the slowed step."""
        with (self.tracer.start_as_current_span(name) if self.tracer is not None
              else contextlib.nullcontext()) as span:
            if self.faults.extra_latency_s > 0 and name == self.faults.slow_step:
                time.sleep(self.faults.extra_latency_s)
            try:
                yield span
            except Exception as exc:  # the SDK records the exception and the status; error.type is ours to set
                if span is not None:
                    span.set_attribute(ERROR_TYPE, type(exc).__name__)
                raise

    def predict_batch(self, x: np.ndarray, request_ids: list[str] | None = None) -> np.ndarray:
        """Serve a batch through the monitor's batch path (``request_ids`` to store it for scoring)."""
        start = time.perf_counter()
        clean = np.where(np.isnan(x), self._mean, x)
        y_pred = np.asarray(self.trained.pipeline.predict(clean))
        proba = self.trained.pipeline.predict_proba(clean) if self.trained.task == "classification" else None
        self.monitor.record_batch(y_pred, latency_seconds=time.perf_counter() - start,
                                  scores=None if proba is None else proba.max(axis=1),
                                  request_ids=request_ids, proba=proba,
                                  features=x if self.monitor.drift_enabled else None)
        return y_pred


class Servable(Protocol):
    """What :class:`Traffic` drives: a service that samples requests and serves one."""

    def sample(self, rows: int = 1) -> tuple[np.ndarray, np.ndarray]: ...

    def predict_one(self, x: np.ndarray, y_true: Any = None, request_id: str | None = None) -> Prediction: ...


class RoutedService:
    """Versions of one model behind a :class:`~mlscope.versions.TrafficSplit`: each request goes to the
    version the split picks (a canary beside the stable version); requests are sampled by the first."""

    def __init__(self, services: Mapping[str, SyntheticService], split: TrafficSplit) -> None:
        self.services, self.split = dict(services), split
        self._first = next(iter(self.services.values()))

    def sample(self, rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
        return self._first.sample(rows)

    def predict_one(self, x: np.ndarray, y_true: Any = None, request_id: str | None = None) -> Prediction:
        return self.services[self.split.pick()].predict_one(x, y_true, request_id)


@dataclass
class BackgroundLoop:
    """A daemon thread that runs until :meth:`stop`."""

    _stop: threading.Event = field(default_factory=threading.Event, kw_only=True, repr=False)
    _thread: threading.Thread | None = field(default=None, kw_only=True, repr=False)

    def _launch(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


@dataclass
class Traffic(BackgroundLoop):
    """Drives a service at ``rate`` x ``scale`` requests per second in a background thread (``scale`` may change
    while it runs: an incident's traffic drop)."""

    service: Servable
    rate: float = 20.0
    scale: float = 1.0
    on_prediction: Callable[[Prediction], None] | None = None
    served: int = 0
    failed: int = 0

    def start(self) -> Traffic:
        self._launch(self._run, "mlscope-traffic")
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.step()
            per_second = self.rate * self.scale
            next_at += 1.0 / per_second if per_second > 0 else 0.0
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.monotonic()

    def step(self) -> Prediction | None:
        """Serve one request now; returns the prediction, or None when it failed."""
        x, y = self.service.sample(1)
        try:
            prediction = self.service.predict_one(x[0], y[0])
        except SimulatedPredictionError:
            self.failed += 1
            return None
        self.served += 1
        if self.on_prediction is not None:
            self.on_prediction(prediction)
        return prediction


@dataclass
class LateGroundTruth(BackgroundLoop):
    """Delivers each prediction's true label later, as a feedback pipeline would.

    Plug it into :class:`Traffic` (``on_prediction=truth.schedule``); ``deliver``
    is typically ``monitor.record_outcome``. ``fraction`` of predictions ever
    get a label, ``delay_s`` (+ uniform ``jitter_s``) later; ``flip_rate`` of
    class labels are replaced by another class (concept drift the model cannot
    see). Change the fields while it runs.
    """

    deliver: Callable[[str, Any], None]
    delay_s: float = 1.0
    jitter_s: float = 0.0
    fraction: float = 1.0
    flip_rate: float = 0.0
    classes: tuple[Any, ...] = ()
    seed: int = 0
    delivered: int = 0
    _heap: list[tuple[float, int, str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._order = 0

    def schedule(self, prediction: Prediction) -> None:
        """Queue the prediction's ground truth for later delivery (or drop it: ``fraction``)."""
        with self._lock:
            if self._rng.random() >= self.fraction:
                return
            y = prediction.y_true.item() if isinstance(prediction.y_true, np.generic) else prediction.y_true
            if self.flip_rate > 0 and len(self.classes) > 1 and self._rng.random() < self.flip_rate:
                y = self._rng.choice([c for c in self.classes if c != y]).item()
            due = time.monotonic() + self.delay_s + self.jitter_s * self._rng.random()
            self._order += 1
            heapq.heappush(self._heap, (due, self._order, prediction.request_id, y))

    def deliver_due(self, now: float | None = None) -> int:
        """Deliver every label whose time has come; returns how many."""
        now = time.monotonic() if now is None else now
        due = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap))
        for _, _, request_id, y in due:
            self.deliver(request_id, y)
        self.delivered += len(due)
        return len(due)

    @property
    def waiting(self) -> int:
        return len(self._heap)

    def start(self, interval_s: float = 0.05) -> LateGroundTruth:
        def run() -> None:
            while not self._stop.wait(interval_s):
                self.deliver_due()

        self._launch(run, "mlscope-ground-truth")
        return self
