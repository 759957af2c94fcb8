"""Outcome (ground truth) input: JSON batches, CSV and JSONL files, and the import of a file.

A JSON batch is ``{"outcomes": [{"request_id": "...", "y_true": ..., "time": 1732400000.0}, ...]}``
(or the bare list). A file is CSV with a header naming ``request_id``, ``y_true``
and optionally ``time`` (unix seconds or ISO 8601; anything else is rejected as
``invalid_time``), or JSON Lines of the same objects (``.jsonl`` / ``.ndjson``).
Items of the wrong shape are not an error of the whole batch: they are joined
as far as possible and counted by reason (``invalid_request_id``,
``wrong_type``...) in ``mlscope_quality_outcomes_rejected_total``. Request ids
are taken as they come; the join normalises them like the monitor does.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from .core import Quality
from .items import Outcome

MAX_BATCH = 100_000


class OutcomeFormatError(ValueError):
    """The batch or file as a whole cannot be read (not JSON, no header...)."""


def outcome_of(item: Any) -> Outcome:
    """An Outcome from a decoded JSON object; anything else becomes one that is rejected as wrong_type."""
    if not isinstance(item, dict):
        return Outcome(None, None)
    return Outcome(item.get("request_id"), item.get("y_true"), item.get("time"))


def parse_batch(body: bytes | str) -> list[Outcome]:
    """Outcomes of a JSON batch; OutcomeFormatError when it is not one."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutcomeFormatError(f"not JSON: {exc}") from None
    items = data.get("outcomes") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise OutcomeFormatError('expected {"outcomes": [...]} or a JSON list')
    if len(items) > MAX_BATCH:
        raise OutcomeFormatError(f"at most {MAX_BATCH} outcomes per batch, got {len(items)}")
    return [outcome_of(item) for item in items]


def _csv_value(text: str | None) -> Any:
    """A CSV cell as int, float or str (None when empty): "1" and "1.0" are class 1, "nan" is NaN."""
    if text is None or text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_outcomes(path: str | Path) -> Iterator[Outcome]:
    """Outcomes of a CSV or JSON Lines file, streamed."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield outcome_of(json.loads(line))
                except json.JSONDecodeError:
                    raise OutcomeFormatError(f"{path}:{number}: not JSON") from None
            return
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"request_id", "y_true"} <= set(reader.fieldnames):
            raise OutcomeFormatError(f"{path}: CSV needs a header with request_id and y_true "
                                     f"(and optionally time), got {reader.fieldnames}")
        for row in reader:
            time = _csv_value(row.get("time"))
            yield Outcome(row["request_id"], _csv_value(row["y_true"]), time)


def batches(outcomes: Iterable[Outcome], size: int = 10_000) -> Iterator[list[Outcome]]:
    iterator = iter(outcomes)
    while batch := list(islice(iterator, size)):
        yield batch


def import_outcomes(quality: Quality, outcomes: Iterable[Outcome], *, hold: bool = False,
                    batch_size: int = 10_000) -> dict[str, int]:
    """Join outcomes in batches; returns the summed result counts.

    Without ``hold``, outcomes whose prediction is not in the store count as
    ``unknown_request`` at once (a file import is not followed by the
    predictions it refers to).
    """
    total: dict[str, int] = {}
    for batch in batches(outcomes, batch_size):
        for key, value in quality.record_outcomes(batch, hold=hold).items():
            total[key] = total.get(key, 0) + value
    return total
