"""One definition of each lineage lookup: the LogQL sent to Loki and the match applied to JSON-lines files.

A :class:`LineQuery` names a line's ``event`` and the fields it must have; the same object gives Loki's query
(``model``/``model_version`` as stream labels, the rest as ``| json`` label filters) and the test a file's
line must pass, so both fallbacks answer the same question.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..catalog import alerting as alert_cat
from ..catalog import pipelines as cat
from ..rules.config import Links

LOG_APP = Links().log_app
STREAM_LABELS = ("model", "model_version")  # what the log shipper makes stream labels (beside app, level)
PREDICTION_EVENTS = ("prediction", "prediction_slow", "prediction_error")


def _quote(value: str) -> str:
    """A LogQL double-quoted string (Go escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class LineQuery:
    """Lines of one of ``events`` whose fields equal ``where`` and whose ``any_of`` field is one of its values."""

    events: tuple[str, ...]
    where: tuple[tuple[str, str], ...] = ()
    any_of: tuple[str, tuple[str, ...]] | None = None

    def logql(self, app: str = LOG_APP) -> str:
        """The LogQL log query (stream labels in the selector; a line filter first, so Loki parses few lines)."""
        stream = [f"app={_quote(app)}"] + [f"{k}={_quote(v)}" for k, v in self.where if k in STREAM_LABELS]
        parts = ["{" + ",".join(stream) + "}"]
        needle = next((v for k, v in self.where if k not in STREAM_LABELS), None)
        if needle is not None:
            parts.append(f"|= {_quote(needle)}")
        elif len(self.events) == 1:
            parts.append(f"|= {_quote(self.events[0])}")
        parts.append("| json")
        parts.append(f"| event={_quote(self.events[0])}" if len(self.events) == 1
                     else f"| event=~{_quote('|'.join(re.escape(e) for e in self.events))}")
        parts += [f"| {k}={_quote(v)}" for k, v in self.where if k not in STREAM_LABELS]
        if self.any_of is not None:
            name, values = self.any_of
            parts.append(f"| {name}=~{_quote('|'.join(re.escape(v) for v in values))}")
        return " ".join(parts)

    def matches(self, line: Mapping[str, Any]) -> bool:
        """Whether a parsed JSON line answers the query (what the LogQL selects in Loki)."""
        if line.get("event") not in self.events:
            return False
        if any(str(line.get(k)) != v for k, v in self.where):
            return False
        return self.any_of is None or str(line.get(self.any_of[0])) in self.any_of[1]


def training_runs(model: str, version: str) -> LineQuery:
    """The end line of every training run that produced ``model`` ``version``."""
    return LineQuery((cat.TRAINING_END,), (("model", model), ("model_version", version)))


def pipeline_runs(batch_ids: tuple[str, ...]) -> LineQuery:
    """The end line of every pipeline run over one of ``batch_ids``."""
    return LineQuery((cat.RUN_END,), any_of=("data_batch_id", batch_ids))


def alert_lines(fingerprint: str) -> LineQuery:
    """The alert receiver's lines (one per state change) of the alert with ``fingerprint``."""
    return LineQuery((alert_cat.ALERT_EVENT,), (("fingerprint", fingerprint),))


def prediction(request_id: str) -> LineQuery:
    """A prediction's log line(s), by request id."""
    return LineQuery(PREDICTION_EVENTS, (("request_id", request_id),))
