"""Privacy: canary values in dropped or hashed fields never leave raw, in Loki payloads or in metrics."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys

import pytest
from prometheus_client.openmetrics.exposition import generate_latest

from mlscope import ModelMonitor
from mlscope.logs import JsonFormatter, PredictionLog, Privacy
from support.helpers import exposition
from support.loki_receiver import LokiReceiver

KEY = b"test-secret-key"
CANARIES = {"user_email": "canary-7f3a@example.invalid", "user_id": "canary-uid-91c2",
            "password": "canary-pw-0d55"}
# Request ids are opaque ids that also go into exemplars: a caller whose ids carry personal data hashes them
# before `track()`. Here a per-prediction field carries the personal canary instead.


def digest(value: str) -> str:
    return "hmac-sha256:" + hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()[:32]


def leaks(text: str | bytes) -> set[str]:
    """Canaries found raw in ``text`` (also JSON-escaped, also as the bare hex-free core)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return {name for name, value in CANARIES.items() if value in text or value.split("-")[-1] in text}


def privacy() -> Privacy:
    return Privacy(drop={"password"}, hash={"user_email", "user_id"}, key=KEY)


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_canaries_never_leave_raw(receiver: LokiReceiver, make_handler, encoding: str) -> None:
    from mlscope.logs import HttpTransport

    handler, logger, registry = make_handler(HttpTransport(receiver.url, encoding=encoding), privacy=privacy(),
                                             structured_metadata=("request_id", "user_id"))
    plog = PredictionLog(logger, sample_rate=1.0)
    monitor = ModelMonitor("churn", "1", registry=registry, prediction_log=plog)
    logger.info("login", extra={**CANARIES, "model": "churn", "model_version": "1", "request_id": "r-1"})
    with monitor.track(request_id="r-2") as p:
        p.output = 1
        p.log_fields = {"user_id": CANARIES["user_id"], "data_batch_id": "b-7"}
    monitor.record_error(ValueError(), request_id="r-3", latency_seconds=0.1)
    assert handler.drain(10)
    bodies = [r.body for r in receiver.requests]
    assert len(receiver.lines) == 3 and all(leaks(body) == set() for body in bodies)
    assert leaks(exposition(registry)) == set() and leaks(generate_latest(registry)) == set()
    first = json.loads(receiver.lines[0].line)
    assert "password" not in first
    assert first["user_email"] == digest(CANARIES["user_email"])  # reference: hmac from the standard library
    assert receiver.lines[0].metadata == {"request_id": "r-1", "user_id": digest(CANARIES["user_id"])}
    second = json.loads(receiver.lines[1].line)
    assert (second["request_id"], second["data_batch_id"], second["user_id"]) == (
        "r-2", "b-7", digest(CANARIES["user_id"]))


def test_the_leak_check_finds_raw_canaries(receiver: LokiReceiver, make_handler) -> None:
    handler, logger, _ = make_handler()  # no privacy rules
    logger.info("login", extra=CANARIES)
    assert handler.drain(10)
    assert leaks(b"".join(r.body for r in receiver.requests)) == set(CANARIES)


def test_formatter_alone_applies_privacy(capsys: pytest.CaptureFixture[str]) -> None:
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(JsonFormatter(privacy=privacy()))
    logger = logging.getLogger("mlscope.test.privacy.stdout")
    logger.propagate = False
    logger.addHandler(stream)
    logger.warning("x", extra=CANARIES)
    assert leaks(capsys.readouterr().out) == set()


def test_hashing_needs_a_key_and_rules_must_not_overlap() -> None:
    with pytest.raises(ValueError, match="key"):
        Privacy(hash={"user_id"})
    with pytest.raises(ValueError, match="both"):
        Privacy(drop={"a"}, hash={"a"}, key=KEY)
    assert Privacy(hash={"a"}, key=KEY).digest("x") != Privacy(hash={"a"}, key=b"other").digest("x")
