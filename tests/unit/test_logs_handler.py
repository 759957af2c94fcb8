"""The Loki handler against a local receiver that follows Loki's push API."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from logging_loki.emitter import LokiEmitterV1

from mlscope.logs import FIXED_KEYS, LokiHandler
from mlscope.logs.payload import encode_json, fit_line, group
from support.helpers import wait_until
from support.logs_helpers import sample
from support.loki_receiver import LokiReceiver

CTX = {"model": "churn", "model_version": "3.2.0"}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_lines_keep_their_timestamps_and_only_low_cardinality_labels(receiver: LokiReceiver, make_handler) -> None:
    handler, logger, registry = make_handler(env="prod", app="svc")
    capture = Capture()
    logger.addHandler(capture)
    for i in range(50):
        logger.info("scored %d", i, extra={**CTX, "request_id": f"req-{i}", "rows": i})
    logger.error("failed", extra={"model": "churn", "model_version": "3.1.0", "request_id": "req-x"})
    assert handler.drain(10)
    assert len(receiver.lines) == 51 and receiver.errors == []
    assert {tuple(sorted(e.labels.items())) for e in receiver.lines} == {
        (("app", "svc"), ("env", "prod"), ("level", "info"), ("model", "churn"), ("model_version", "3.2.0")),
        (("app", "svc"), ("env", "prod"), ("level", "error"), ("model", "churn"), ("model_version", "3.1.0"))}
    by_id = {json.loads(e.line)["request_id"]: e for e in receiver.lines}
    for record in capture.records:
        entry = by_id[record.request_id]
        assert abs(entry.ts - record.created * 1e9) < 1000  # the record's time (to the µs), not the send time
        line = json.loads(entry.line)
        assert list(line)[:len(FIXED_KEYS)] == list(FIXED_KEYS)
    assert json.loads(by_id["req-7"].line)["rows"] == 7
    assert sample(registry, "mlscope_log_lines_sent_total", handler="loki") == 51
    assert receiver.out_of_order == []


def test_single_record_payload_is_python_logging_loki_v1_format() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    record.created = 1_700_000_000.25
    upstream = LokiEmitterV1("", {"app": "a"}).build_payload(record, "line")
    entry = ((("app", "a"), ("level", "info")), (1_700_000_000_250_000_000, "line", ()))
    ours = json.loads(encode_json(group([entry])))
    stream = upstream["streams"][0]["stream"]
    stream.pop("logger")  # python-logging-loki's logger-name label: not a stream label here
    stream["level"] = stream.pop("severity")  # its level label is called severity; ours level
    upstream["streams"][0]["values"][0][0] = "1700000000250000000"  # upstream stamps the send time
    assert ours == upstream


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_request_id_in_line_and_optionally_in_structured_metadata(receiver: LokiReceiver, make_handler,
                                                                  encoding: str) -> None:
    from mlscope.logs import HttpTransport

    handler, logger, _ = make_handler(HttpTransport(receiver.url, encoding=encoding),
                                      structured_metadata=("request_id",))
    logger.warning("slow", extra={**CTX, "request_id": "abc-1"})
    logger.warning("no id", extra=CTX)
    assert handler.drain(10)
    first, second = receiver.lines
    assert json.loads(first.line)["request_id"] == "abc-1" and first.metadata == {"request_id": "abc-1"}
    assert second.metadata == {}
    assert "request_id" not in first.labels


def test_400_is_not_retried_and_does_not_block_later_lines(receiver: LokiReceiver, make_handler) -> None:
    receiver.script = [400]
    handler, logger, registry = make_handler()
    for i in range(5):
        logger.info("rejected", extra={"seq": i})
    wait_until(lambda: receiver.requests, timeout=10)
    for i in range(5, 8):
        logger.info("later", extra={"seq": i})
    assert handler.drain(10)
    assert receiver.statuses() == [400, 204]
    assert [line["seq"] for line in receiver.json_lines()] == [5, 6, 7]
    assert sample(registry, "mlscope_log_lines_dropped_total", handler="loki", reason="http_400") == 5
    assert sample(registry, "mlscope_log_push_retries_total", handler="loki", reason="http_400") == 0


def test_429_backs_off_honouring_retry_after(receiver: LokiReceiver, make_handler) -> None:
    receiver.script, receiver.retry_after = [429, 429], "1"
    handler, logger, registry = make_handler(min_backoff=0.01)
    logger.info("throttled", extra={"seq": 1})
    assert handler.drain(15)
    times = [r.at for r in receiver.requests]
    assert receiver.statuses() == [429, 429, 204]
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 0.9  # Retry-After: 1, not the 10 ms backoff
    assert len(receiver.lines) == 1
    assert sample(registry, "mlscope_log_push_retries_total", handler="loki", reason="http_429") == 2


def test_5xx_is_retried_with_growing_backoff(receiver: LokiReceiver, make_handler) -> None:
    receiver.script = [500, 500, 500]
    handler, logger, registry = make_handler(min_backoff=0.2, max_backoff=5)
    logger.info("eventually", extra={"seq": 1})
    assert handler.drain(15)
    assert receiver.statuses() == [500, 500, 500, 204]
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4  # 0.2 * 2^n, jittered down to half at most
    assert len(receiver.lines) == 1
    assert sample(registry, "mlscope_log_push_retries_total", handler="loki", reason="http_5xx") == 3


def test_log_calls_return_promptly_while_loki_hangs(receiver: LokiReceiver, make_handler) -> None:
    from mlscope.logs import HttpTransport

    receiver.mode = "hang"
    handler, logger, registry = make_handler(HttpTransport(receiver.url, read_timeout=1.0), batch_lines=100)
    slowest, start = 0.0, time.monotonic()
    n = 0
    while time.monotonic() - start < 3.0:  # several hung pushes and timeouts happen meanwhile
        t0 = time.perf_counter()
        logger.info("while hung", extra={"seq": n})
        slowest = max(slowest, time.perf_counter() - t0)
        n += 1
        if n % 100 == 0:
            time.sleep(0.01)
    assert slowest < 0.25, f"a log call took {slowest:.3f}s while Loki hung"
    assert any(r for r in [sample(registry, "mlscope_log_push_retries_total", handler="loki", reason="timeout")])
    receiver.mode = "ok"
    receiver.release.set()
    assert handler.drain(30)
    # A hung push that timed out is retried; the receiver may still accept the first attempt once released:
    # those copies are identical entries (same stream, time and line), which Loki keeps once.
    kept = [json.loads(entry.line)["seq"] for entry in receiver.unique_lines()]
    assert sorted(kept) == list(range(n))


@pytest.mark.parametrize("action", ["truncate", "split"])
def test_lines_over_the_size_limit_are_split_or_truncated(receiver: LokiReceiver, make_handler, action: str) -> None:
    handler, logger, registry = make_handler(oversize=action)
    big = "é" * 200_000  # 400 kB of UTF-8
    logger.info(big)
    logger.info("small")
    assert handler.drain(10) and receiver.errors == []
    lines = [e.line for e in receiver.lines]
    assert all(len(line.encode()) <= 256 * 1024 for line in lines)
    assert lines[-1].startswith('{"ts"') and json.loads(lines[-1])["message"] == "small"
    if action == "split":
        assert json.loads("".join(lines[:-1]))["message"] == big
        assert len({e.ts for e in receiver.lines[:-1]}) == len(lines) - 1  # consecutive nanoseconds, in order
    else:
        assert len(lines) == 2 and "…[truncated" in lines[0]
    assert sample(registry, "mlscope_log_lines_oversize_total", handler="loki",
                  action="split" if action == "split" else "truncated") == 1


def test_fit_line_never_splits_a_character() -> None:
    line = "a€" * 1000  # 4000 bytes
    parts = fit_line(line, 1025, "split")
    assert "".join(parts) == line and all(len(p.encode()) <= 1025 for p in parts)
    (cut,) = fit_line(line, 1025, "truncate")
    assert len(cut.encode()) <= 1025 and cut.endswith("bytes]")
    assert fit_line("short", 1024, "truncate") == ["short"]


def test_full_queue_drops_and_counts(make_handler) -> None:
    handler, logger, registry = make_handler(queue_lines=10, flush_interval=60, batch_lines=10_000)
    for _ in range(25):
        logger.info("x")
    assert sample(registry, "mlscope_log_lines_dropped_total", handler="loki", reason="queue_full") == 15
    assert sample(registry, "mlscope_log_queue_lines", handler="loki") == 10


def test_memory_spool_is_bounded_when_loki_is_down(receiver: LokiReceiver, make_handler) -> None:
    receiver.refuse()
    handler, logger, registry = make_handler(memory_bytes=20_000, batch_lines=10)
    for _ in range(1000):
        logger.info("down", extra={"payload": "x" * 100})
    wait_until(lambda: sample(registry, "mlscope_log_lines_dropped_total", handler="loki", reason="spool_full"))
    handler.flush()
    time.sleep(0.3)
    assert handler._spool._memory_bytes <= 20_000
    assert sample(registry, "mlscope_log_queue_lines", handler="loki") < 1000


def test_disk_spool_survives_a_restart_in_order(receiver: LokiReceiver, make_handler, tmp_path: Path) -> None:
    receiver.refuse()
    first, logger, registry = make_handler(spool_dir=tmp_path, memory_bytes=1, batch_lines=5)
    for i in range(20):
        logger.info("before restart", extra={"seq": i})
    wait_until(lambda: sample(registry, "mlscope_log_spool_bytes", handler="loki") > 0)
    first.close()
    assert sorted(tmp_path.glob("*.json"))
    receiver.resume()
    second, logger2, registry2 = make_handler(spool_dir=tmp_path)
    logger2.info("after restart", extra={"seq": 20})
    assert second.drain(15)
    assert [line["seq"] for line in receiver.json_lines()] == list(range(21))
    assert sample(registry2, "mlscope_log_spool_bytes", handler="loki") == 0
    assert not list(tmp_path.glob("*.json"))


def test_spool_directory_is_one_per_process(make_handler, tmp_path: Path) -> None:
    from mlscope.logs.spool import SpoolLockedError

    make_handler(spool_dir=tmp_path)
    # flock is per open file description: a second open in the same process conflicts too.
    with pytest.raises(SpoolLockedError):
        make_handler(spool_dir=tmp_path)


def test_emit_never_raises(make_handler) -> None:
    class Evil:
        def __str__(self) -> str:
            raise RuntimeError("no")

    handler, logger, registry = make_handler()
    logger.info("evil", extra={"thing": Evil()})
    assert sample(registry, "mlscope_log_lines_dropped_total", handler="loki", reason="encode_error") == 1


def test_rejects_bad_configuration(receiver: LokiReceiver) -> None:
    with pytest.raises(ValueError, match="max_line_bytes must be at least"):
        LokiHandler(receiver.url, max_line_bytes=10)
    with pytest.raises(ValueError, match="oversize must be"):
        LokiHandler(receiver.url, oversize="drop")  # type: ignore[arg-type]
    handler = LokiHandler(receiver.url, shutdown_timeout=0.1)
    with pytest.raises(TypeError):
        handler.setFormatter(logging.Formatter())
    handler.close()


def test_a_forked_child_keeps_shipping(receiver: LokiReceiver, make_handler) -> None:
    import os

    handler, logger, _ = make_handler()
    logger.info("from parent")
    assert handler.drain(10)
    pid = os.fork()
    if pid == 0:  # the child: fresh threads and queue after fork
        code = 1
        try:
            logger.info("from child")
            code = 0 if handler.drain(10) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [line["message"] for line in receiver.json_lines()] == ["from parent", "from child"]


def test_a_push_that_landed_but_timed_out_is_sent_again_and_counted_once(receiver: LokiReceiver,
                                                                         make_handler) -> None:
    """At least once: Loki's metric queries count the re-sent batch twice; the shipper's counter does not."""
    from mlscope.logs import HttpTransport

    receiver.script = ["store_then_hang"]
    handler, logger, registry = make_handler(HttpTransport(receiver.url, read_timeout=0.5), batch_lines=300)
    for i in range(1800):
        logger.info("line", extra={**CTX, "seq": i})
    assert handler.drain(20) and receiver.errors == []
    first = next(r for r in receiver.requests if r.status == 204).lines  # the batch that was sent twice
    counted = receiver.metric('sum(count_over_time({app="mlscope"} [1h]))')
    assert counted == {(): 1800 + first} and first > 0                       # what count_over_time reads
    assert sorted(json.loads(e.line)["seq"] for e in receiver.select('{app="mlscope"}')) == list(range(1800))
    assert sample(registry, "mlscope_log_lines_sent_total", handler="loki") == 1800  # each line once
    assert sample(registry, "mlscope_log_push_retries_total", handler="loki", reason="timeout") == 1
