"""What the quality writer's queue holds: predictions to store and outcomes to join, one type per kind."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Outcome:
    """The ground truth of one prediction; ``time`` (unix seconds) defaults to when it is received."""

    request_id: Any
    y_true: Any
    time: float | None = None


class PredictionItem(NamedTuple):
    """A prediction waiting to be stored; ``key`` is ``(model, model_version)``, ``time`` unix seconds."""

    key: tuple[str, str]
    request_id: Any
    time: float
    output: Any
    proba: Any = None
    segment: Any = None


class OutcomeItem(NamedTuple):
    """An outcome waiting to be joined (queued by :meth:`~mlscope.quality.Quality.submit_outcome`)."""

    outcome: Outcome


QueueItem = PredictionItem | OutcomeItem
