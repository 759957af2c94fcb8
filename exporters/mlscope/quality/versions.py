"""The model versions the quality store knows: task, classes and baseline of each."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..drift.score_calibration import Calibration
from ..labels import INVALID, LabelGuard
from . import scoring
from .store import Store, StoreError, VersionInfo


class Versions:
    """Versions declared in this process, backed by the store (other processes may declare them).

    A version whose registration failed (store locked...) is still known in
    memory and saved again by :meth:`save_unsaved`.
    """

    def __init__(self, store: Store, guard: LabelGuard, report: Callable[[BaseException], None]) -> None:
        self.store = store
        self.guard = guard
        self._report = report
        self._known: dict[tuple[str, str], VersionInfo] = {}
        self._unsaved: set[tuple[str, str]] = set()

    def class_labels(self, classes: Iterable[Any] | None) -> tuple[str, ...] | None:
        """The label value of each class (folded like every class label), or None without classes."""
        if classes is None:
            return None
        return tuple(self.guard.admit("class", scoring.class_label(c) or INVALID) for c in classes)

    def register(self, model: str, model_version: str, task: str = "classification",
                 classes: Iterable[Any] | None = None) -> VersionInfo:
        """Save a version (its task and, for classifiers, its classes in ``predict_proba`` order)."""
        known = self.store.versions().get((model, model_version))
        mine = self._known.get((model, model_version))
        calibration = mine.calibration if mine is not None and mine.calibration is not None else (
            known.calibration if known else None)
        info = VersionInfo(model, model_version, task, self.class_labels(classes),
                           dict(known.baseline) if known else {}, calibration)
        self.store.put_version(info)
        self.store.add(scoring.zero_counts(info))
        self._known[(model, model_version)] = info
        return info

    def declare(self, model: str, model_version: str, task: str, classes: Iterable[Any] | None) -> None:
        """Register a version; when the store fails, keep it in memory and save it later."""
        try:
            self.register(model, model_version, task, classes)
        except StoreError as exc:
            self._report(exc)
            self._known[(model, model_version)] = VersionInfo(model, model_version, task, self.class_labels(classes))
            self._unsaved.add((model, model_version))

    def save_unsaved(self) -> None:
        """Register again the versions whose registration failed; raises StoreError if it fails again."""
        for key in list(self._unsaved):
            info = self._known[key]
            self.register(info.model, info.model_version, info.task, info.classes)
            self._unsaved.discard(key)

    def set_baseline(self, model: str, model_version: str, metrics: Mapping[str, float]) -> None:
        info = self.get(model, model_version) or self.register(model, model_version)
        info.baseline = {str(k): float(v) for k, v in metrics.items()}
        self.store.put_version(info)

    def set_calibration(self, model: str, model_version: str, calibration: Calibration | None) -> VersionInfo:
        """Use ``calibration`` for the version's estimates; when the store fails, keep it and save it later."""
        info = self._known.get((model, model_version)) or self.get(model, model_version) or self.register(
            model, model_version)
        info.calibration = calibration
        try:
            self.store.put_version(info)
        except StoreError as exc:
            self._report(exc)
            self._unsaved.add((model, model_version))
        return info

    def get(self, model: str, model_version: str) -> VersionInfo | None:
        """The version, declared here or by another process sharing the store; None if unknown."""
        info = self._known.get((model, model_version))
        if info is None:
            info = self.store.versions().get((model, model_version))
            if info is not None:
                self._known[(model, model_version)] = info
        return info
