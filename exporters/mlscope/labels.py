"""Bounded label values: a cap per label, with overflow folded and counted."""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

OVERFLOW = "__overflow__"
INVALID = "__invalid__"
MAX_VALUE_LENGTH = 128

DEFAULT_CAPS: Mapping[str, int] = {
    "model": 50,
    "model_version": 20,
    "class": 100,
    # (served class, shadow class) pairs of shadow disagreements: 100 classes would make 9,900 pairs.
    "class_pair": 100,
    # Shadow versions compared with one served version (ModelMonitor.shadow's version=).
    "shadow_version": 20,
    "error_type": 50,
    "exception": 50,
    "feature": 500,
    "segment": 50,
    # Pipelines (mlscope.pipelines): names, steps and rejection reasons are the job's own, bounded here.
    "pipeline": 50,
    "step": 50,
    "reason": 50,
    "metric": 50,
    # Generation mode (mlscope.genai): who a request is billed to.
    "tenant": 50,
}
FALLBACK_CAP = 100


class LabelGuard:
    """Admits at most ``cap`` distinct values per label name; others fold into ``__overflow__``.

    Values that are empty, longer than ``MAX_VALUE_LENGTH`` characters or hold a
    control character (a newline: Prometheus 3's regex ``.`` matches it, 2's does
    not, so ``model=~".+"`` would differ) fold into ``__invalid__``. Every fold
    calls ``on_fold(label, reason)`` so the caller can count it. Admitted values are remembered, so checking a known
    value is one set look-up.
    """

    def __init__(self, caps: Mapping[str, int] | None = None,
                 on_fold: Callable[[str, str], None] | None = None) -> None:
        self._caps = dict(DEFAULT_CAPS)
        self.set_caps(caps or {})
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.on_fold = on_fold

    def set_caps(self, caps: Mapping[str, int]) -> None:
        """Change caps; values already admitted stay admitted."""
        for label, cap in caps.items():
            if not isinstance(cap, int) or cap < 1:
                raise ValueError(f"label cap for {label!r} must be a positive integer, got {cap!r}")
        self._caps.update(caps)

    def cap(self, label: str) -> int:
        return self._caps.get(label, FALLBACK_CAP)

    def admit(self, label: str, value: object) -> str:
        """Return ``value`` as a label value, or the fold value that replaces it."""
        text = value if isinstance(value, str) else str(value)
        seen = self._seen.get(label)
        if seen is not None and text in seen:
            return text
        if not text or len(text) > MAX_VALUE_LENGTH or not text.isprintable():
            return self._fold(label, INVALID, "invalid_value")
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if text in seen:
                return text
            if len(seen) >= self.cap(label):
                folded = True
            else:
                seen.add(text)
                folded = False
        return self._fold(label, OVERFLOW, "cap_reached") if folded else text

    def _fold(self, label: str, value: str, reason: str) -> str:
        if self.on_fold is not None:
            self.on_fold(label, reason)
        return value


def class_label(value: Any) -> str | None:
    """A class label as the string used in labels and joins, or None when unusable.

    The one class identity of served answers, shadow answers and ground truth: numpy scalars are their Python
    values, booleans are the classes ``0`` and ``1`` (``True == 1``, as a thresholded score array gives them),
    integral floats become integers (``1.0`` and ``1`` are the same class, as JSON and CSV often turn one into the
    other), strings stay as they are (``"1"`` is the class 1); NaN/inf, None, blank strings, containers and
    other objects are unusable.
    """
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.ravel()[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int):  # bool included: True is the class 1
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value.strip() else None
    return None
