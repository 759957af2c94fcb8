"""Registering a model version with a (central) quality exporter: ``POST /versions`` and ``mlscope quality-register``.

A registration names the version, its task, for classifiers its classes (in ``predict_proba`` order) and
optionally its baseline (validation metrics, :func:`mlscope.quality.baseline.baseline_metrics`). ROC AUC
windows belong to the exporter (its ``--profile``), not to a version: a registration may name the windows it
expects, and is refused when they are not the exporter's. Registering the same version again with the same
task and classes is a no-op (the baseline may change); other task or classes are a conflict (a new model
needs a new ``model_version``). The version is kept in the store, so it survives an exporter restart.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import scoring
from .core import Quality

TASKS = ("classification", "regression")
BASELINE_METRICS = {"classification": ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc"),
                    "regression": ("mae", "rmse", "mape")}
MAX_CLASSES = 50  # the exporter's class label cap
MAX_NAME = 200


class RegistrationError(ValueError):
    """A registration that cannot be accepted; ``status`` is the HTTP status (400 invalid, 409 conflict)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Registration:
    model: str
    model_version: str
    task: str = "classification"
    classes: tuple[Any, ...] | None = None
    baseline: dict[str, float] = field(default_factory=dict)
    windows: tuple[str, ...] | None = None


def _name(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise RegistrationError(f"`{key}` must be a non-empty string of at most {MAX_NAME} characters")
    return value


def _classes(value: Any, task: str) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if task == "regression":
        raise RegistrationError("`classes` is for classifiers; a regression version has none")
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_CLASSES:
        raise RegistrationError(f"`classes` must be a list of 2 to {MAX_CLASSES} class labels, in predict_proba order")
    labels = [scoring.class_label(c) for c in value]
    if None in labels:
        raise RegistrationError("`classes` holds a value that is not a class label (strings, integers, booleans)")
    if len(set(labels)) != len(labels):
        raise RegistrationError("`classes` names a class twice (1 and 1.0 are the same class)")
    return tuple(value)


def _baseline(value: Any, task: str) -> dict[str, float]:
    if value is None:
        return {}
    known = BASELINE_METRICS[task]
    if not isinstance(value, dict):
        raise RegistrationError(f"`baseline` must map metric names ({', '.join(known)}) to numbers")
    out = {}
    for metric, number in value.items():
        if metric not in known:
            raise RegistrationError(f"baseline metric {metric!r} is not one of {', '.join(known)} ({task})")
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise RegistrationError(f"baseline {metric} must be a finite number, got {number!r}")
        out[metric] = float(number)
    return out


def parse(body: Any) -> Registration:
    """A registration from its JSON object (``model``, ``model_version``, ``task``, ``classes``, ``baseline``,
    ``windows``); :class:`RegistrationError` says what is wrong."""
    if not isinstance(body, dict):
        raise RegistrationError('expected {"model": ..., "model_version": ..., "task": ..., "classes": [...]}')
    unknown = sorted(set(body) - {"model", "model_version", "task", "classes", "baseline", "windows"})
    if unknown:
        raise RegistrationError(f"unknown field(s) {', '.join(unknown)}")
    task = body.get("task", "classification")
    if task not in TASKS:
        raise RegistrationError(f"`task` must be one of {', '.join(TASKS)}, got {task!r}")
    windows = body.get("windows")
    if windows is not None and (not isinstance(windows, list) or not all(isinstance(w, str) for w in windows)):
        raise RegistrationError('`windows` must be a list of window names such as ["1h", "1d"]')
    return Registration(_name(body, "model"), _name(body, "model_version"), task, _classes(body.get("classes"), task),
                        _baseline(body.get("baseline"), task), None if windows is None else tuple(windows))


def register(quality: Quality, registration: Registration) -> dict[str, Any]:
    """Apply ``registration`` to ``quality`` (saved in its store); the answer describes the version.

    Raises :class:`RegistrationError` (409) for a conflict with the registered version, (400) for windows
    that are not the exporter's; StoreError when the store fails.
    """
    windows = list(quality.windows)
    if registration.windows is not None and sorted(registration.windows) != sorted(windows):
        raise RegistrationError(f"this exporter computes windows {windows} (its --profile); a version cannot "
                                f"choose its own: register without `windows` or run an exporter with that profile")
    key = (registration.model, registration.model_version)
    known = quality.version(*key)
    classes = quality.versions.class_labels(registration.classes)
    created = known is None
    if known is not None and (known.task != registration.task or
                              (classes is not None and known.classes not in (None, classes))):
        raise RegistrationError(
            f"{registration.model} {registration.model_version} is registered as {known.task} with classes "
            f"{list(known.classes) if known.classes else None}; a changed model needs a new model_version",
            status=409)
    if known is None or (classes is not None and known.classes is None):
        quality.register(registration.model, registration.model_version, registration.task,
                         list(registration.classes) if registration.classes is not None else None)
    if registration.baseline:
        quality.set_baseline(registration.model, registration.model_version, registration.baseline)
    return {"created": created, **describe(quality, *key), "windows": windows}


def describe(quality: Quality, model: str, model_version: str) -> dict[str, Any]:
    info = quality.version(model, model_version)
    if info is None:
        return {}
    return {"model": info.model, "model_version": info.model_version, "task": info.task,
            "classes": list(info.classes) if info.classes is not None else None, "baseline": dict(info.baseline)}


def unknown_versions(quality: Quality, keys: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The distinct ``(model, model_version)`` of ``keys`` that are not registered, in first-seen order."""
    return [key for key in dict.fromkeys(keys) if quality.version(*key) is None]


def unknown_version_error(unknown: Sequence[tuple[str, str]]) -> str:
    names = ", ".join(f"{model} {version}" for model, version in unknown)
    model, version = unknown[0]
    return (f"unknown model version(s): {names}; nothing of this batch was stored. Register each first, then send "
            f'the batch again: POST /versions {{"model": "{model}", "model_version": "{version}", "task": '
            f'"classification", "classes": [...]}} or `mlscope quality-register --url URL {model} {version} '
            "--classes ...`")
