"""Request ids are normalised once, where every path meets (the quality join), with ``clean_request_id``.

An id that needs cleaning (``order 42``) or an integer id (``42``) must mean
the same prediction whichever way the prediction came (single, batch,
``POST /predictions``) and whichever way its outcome comes (the monitor,
``POST /outcomes``, a file import). Expected keys are written out by hand
(``order_42``, ``"42"``): an independent reference, not the function again.
"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.ids import clean_request_id, request_id_key
from mlscope.quality import Outcome, Quality
from mlscope.quality.outcomes import import_outcomes, read_outcomes
from mlscope.quality.server import QualityServer

MODEL, VERSION = "ids", "1"


def make(task: str = "classification") -> tuple[CollectorRegistry, Quality, ModelMonitor]:
    registry = CollectorRegistry()
    quality = Quality(registry=registry, start=False)
    classes = ["a", "b"] if task == "classification" else None
    monitor = ModelMonitor(MODEL, VERSION, registry=registry, quality=quality, classes=classes, task=task)
    return registry, quality, monitor


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def labelled(registry: CollectorRegistry) -> float:
    return sample(registry, "mlscope_quality_labelled_total", model=MODEL, model_version=VERSION, segment="")


def stored(registry: CollectorRegistry) -> float:
    return sample(registry, "mlscope_quality_predictions_stored_total", model=MODEL, model_version=VERSION,
                  segment="")


def dropped(registry: CollectorRegistry, reason: str) -> float:
    return sample(registry, "mlscope_quality_dropped_total", kind="prediction", reason=reason)


def rejected(registry: CollectorRegistry, reason: str) -> float:
    return sample(registry, "mlscope_quality_outcomes_rejected_total", model="__unknown__",
                  model_version="__unknown__", reason=reason)


@pytest.mark.parametrize(("given", "key"), [
    ("order 42", "order_42"), ("order_42", "order_42"), (42, "42"), (np.int64(42), "42"),
    ('a"b\nc', "a_b_c"), ("x" * 200, "x" * 42 + "-9a84c02a613b"), ("3f2a-uuid:7/9@x+y=z.", "3f2a-uuid:7/9@x+y=z."),
    (None, None), ("", None), (True, None), (4.5, None), ([1], None), ({"id": 1}, None),
])
def test_join_key_table(given: object, key: str | None) -> None:
    assert request_id_key(given) == key


def test_clean_request_id_is_idempotent_and_lives_in_ids() -> None:
    for text in ("order 42", 'a"b\nc', "x" * 300, "ok-1", "y" * 55, "y" * 56):
        assert clean_request_id(clean_request_id(text)) == clean_request_id(text)


def test_long_ids_stay_distinct_and_leave_room_for_the_trace_ids() -> None:
    """Two long ids that share their first 118 characters were one key (truncation); a hash keeps them apart."""
    a, b = "p" * 120 + "-1", "p" * 120 + "-2"
    assert clean_request_id(a) != clean_request_id(b)
    assert clean_request_id("u" * 55) == "u" * 55  # up to 55 characters: unchanged
    for rid in (clean_request_id(a), clean_request_id("u" * 55)):
        assert len("request_id") + len(rid) + len("trace_id") + 32 + len("span_id") + 16 <= 128


# -- predictions: single and batch, outcomes from the monitor and Quality.record_outcomes ----------


def test_single_prediction_joins_outcomes_sent_raw_cleaned_or_as_int() -> None:
    registry, quality, monitor = make()
    monitor.record_prediction(0.01, output="a", request_id="order 42")
    monitor.record_prediction(0.01, output="b", request_id=42)  # type: ignore[arg-type]
    quality.process_queue()
    assert stored(registry) == 2
    assert quality.record_outcome("order 42", "a") == {"joined": 1}  # the raw id, as an exporter gets it
    assert quality.record_outcome("42", "b") == {"joined": 1}
    assert quality.record_outcome("order_42", "a") == {"duplicate": 1}  # the same prediction, already joined
    assert labelled(registry) == 2


def test_batch_stores_cleaned_and_integer_ids_and_the_monitor_outcome_joins_them() -> None:
    registry, quality, monitor = make()
    monitor.record_batch(["a", "b", "a", "b"], request_ids=["order 1", 7, np.int64(8), "plain"])
    quality.process_queue()
    assert stored(registry) == 4 and dropped(registry, "invalid_output") == 0
    for rid, y in (("order 1", "a"), (7, "b"), ("8", "a"), ("plain", "b")):
        monitor.record_outcome(rid, y)  # type: ignore[arg-type]
    quality.process_queue()
    assert labelled(registry) == 4 and quality.pending == 0


def test_batch_ids_given_as_a_numpy_array_of_integers() -> None:
    registry, quality, monitor = make(task="regression")
    monitor.record_batch(np.array([1.0, 2.0, 3.0]), request_ids=np.arange(100, 103))
    quality.process_queue()
    assert stored(registry) == 3
    assert quality.record_outcomes([Outcome(100, 1.0), Outcome("101", 2.0), Outcome(np.int32(102), 3.0)]) == {
        "joined": 3}


def test_unusable_ids_have_their_own_reason_on_both_sides() -> None:
    registry, quality, monitor = make()
    monitor.record_batch(["a", "b", "a", "a"], request_ids=[None, 4.5, "", "fine"])
    quality.process_queue()
    assert stored(registry) == 1
    assert dropped(registry, "invalid_request_id") == 3 and dropped(registry, "invalid_output") == 0
    summary = quality.record_outcomes([Outcome(None, "a"), Outcome(2.5, "a"), Outcome("", "a"), Outcome("fine", "a")])
    assert summary == {"invalid_request_id": 3, "joined": 1}
    assert rejected(registry, "invalid_request_id") == 3 and rejected(registry, "wrong_type") == 0


def test_an_outcome_before_its_prediction_is_held_under_the_normalised_id() -> None:
    registry, quality, monitor = make()
    assert quality.record_outcome("late one", "a") == {"pending": 1}
    monitor.record_prediction(0.01, output="a", request_id="late_one")
    quality.process_queue()
    assert quality.pending == 0 and labelled(registry) == 1


# -- HTTP: a real QualityServer on 127.0.0.1 -----------------------------------------------------


def post(server: QualityServer, path: str, payload: object) -> dict[str, int]:
    host, port = server.server_address[:2]
    request = urllib.request.Request(f"http://{host}:{port}{path}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, int] = json.loads(response.read())
        return result


def test_http_outcomes_and_predictions_are_normalised_like_the_monitor() -> None:
    registry, quality, monitor = make()
    monitor.record_prediction(0.01, output="a", request_id="order 42")  # cleaned to order_42 by the monitor
    monitor.record_batch(["b"], request_ids=[43])
    quality.process_queue()
    server = QualityServer("127.0.0.1", 0, quality, registry).start()
    try:
        remote = [{"model": MODEL, "model_version": VERSION, "request_id": rid, "output": "a"}
                  for rid in ("remote 1", 44, None)]
        assert post(server, "/predictions", {"predictions": remote}) == {"stored": 2, "received": 3}
        outcomes = [{"request_id": "order 42", "y_true": "a"}, {"request_id": "43", "y_true": "b"},
                    {"request_id": "remote_1", "y_true": "a"}, {"request_id": 44, "y_true": "a"},
                    {"request_id": None, "y_true": "a"}]
        assert post(server, "/outcomes", {"outcomes": outcomes}) == {"joined": 4, "invalid_request_id": 1}
    finally:
        server.stop()
    assert labelled(registry) == 4 and dropped(registry, "invalid_request_id") == 1


# -- a file import (what `mlscope quality-import` runs) ------------------------------------------


def test_file_import_joins_ids_that_need_cleaning_and_integers(tmp_path: Path) -> None:
    registry, quality, monitor = make()
    monitor.record_batch(["a", "b", "a", "b"], request_ids=["order 1", "order 2", 3, 4])
    quality.process_queue()
    csv_file = tmp_path / "outcomes.csv"
    csv_file.write_text('request_id,y_true\norder 1,a\n"order 2",b\n3,a\n,a\n')
    assert import_outcomes(quality, read_outcomes(csv_file)) == {"joined": 3, "invalid_request_id": 1}
    jsonl_file = tmp_path / "outcomes.jsonl"
    jsonl_file.write_text('{"request_id": 4, "y_true": "b"}\n{"request_id": "order_1", "y_true": "a"}\n')
    assert import_outcomes(quality, read_outcomes(jsonl_file)) == {"joined": 1, "duplicate": 1}
    assert labelled(registry) == 4
