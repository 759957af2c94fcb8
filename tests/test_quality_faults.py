"""Bad outcomes, store failures and restarts: counted by reason, never raised into the service."""
from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from conftest import require_binary
from helpers import exposition, promtool_check_metrics, series
from mlscope import ModelMonitor
from mlscope.catalog import quality as cat
from mlscope.quality import MemoryStore, Outcome, Quality, SQLiteStore, StoreError, open_store
from quality_helpers import series_value

V = dict(model="m", model_version="1")


def rejected(registry: CollectorRegistry, reason: str, known: bool = True) -> float:
    labels = V if known else dict(model="__unknown__", model_version="__unknown__")
    return series_value(registry, cat.OUTCOMES_REJECTED.name, reason=reason, **labels)


def dropped(registry: CollectorRegistry, reason: str, kind: str = "prediction") -> float:
    return series_value(registry, cat.DROPPED.name, kind=kind, reason=reason)


def labelled(registry: CollectorRegistry) -> float:
    return sum(v for (n, _), v in series(registry).items() if n == cat.LABELLED.name)


def setup(store: object = None, task: str = "classification", classes: object = (0, 1), **kwargs: object
          ) -> tuple[CollectorRegistry, Quality, ModelMonitor]:
    registry = CollectorRegistry()
    quality = Quality(store, registry=registry, start=False, **kwargs)  # type: ignore[arg-type]
    monitor = ModelMonitor("m", "1", registry=registry, quality=quality, task=task,  # type: ignore[arg-type]
                           classes=None if task == "regression" else classes)
    return registry, quality, monitor


def predict(monitor: ModelMonitor, ids: range | list[int], output: object = 1) -> None:
    for i in ids:
        monitor.record_prediction(0.001, output=output, proba=[0.3, 0.7], request_id=f"r{i}")


def test_duplicate_outcomes_are_counted_once() -> None:
    registry, quality, monitor = setup()
    predict(monitor, range(3))
    quality.process_queue()
    first = quality.record_outcomes([Outcome("r0", 1), Outcome("r0", 0), Outcome("r1", 0)])
    again = quality.record_outcomes([Outcome("r0", 0), Outcome("r1", 0)])
    monitor.record_outcome("r1", 1)
    quality.process_queue()
    assert first == {"joined": 2, "duplicate": 1} and again == {"duplicate": 2}
    assert labelled(registry) == 2
    assert series_value(registry, cat.CONFUSION.name, segment="", actual_class="1", predicted_class="1", **V) == 1
    assert rejected(registry, "duplicate") == 3 and rejected(registry, "duplicate", known=False) == 1


def test_outcomes_before_their_prediction_are_held_then_joined_or_orphaned() -> None:
    registry, quality, monitor = setup(pending_ttl_s=0.3, max_pending=2)
    assert quality.record_outcomes([Outcome("r0", 1), Outcome("r9", 1), Outcome("r8", 1)]) == {
        "pending": 2, "pending_full": 1}
    assert series_value(registry, cat.OUTCOMES_PENDING.name) == 2
    predict(monitor, [0])
    quality.process_queue()  # the arriving prediction joins its held outcome at once
    assert labelled(registry) == 1 and quality.pending == 1
    time.sleep(0.35)
    quality.maintain()  # r9 never came: an orphan
    assert quality.pending == 0 and rejected(registry, "unknown_request", known=False) == 1
    assert quality.record_outcomes([Outcome("r7", 1)], hold=False) == {"unknown_request": 1}


def test_wrong_types_nan_targets_and_unknown_classes_are_counted_and_skipped() -> None:
    registry, quality, monitor = setup(classes=["cat", "dog"])
    for i, (output, proba) in enumerate([("cat", [0.9, 0.1]), ("dog", [0.5]), ("cat", [0.2, 0.2, 0.6]),
                                         (float("nan"), None), (["x"], None), ("dog", [float("nan"), 1.0])]):
        monitor.record_prediction(0.001, output=output, proba=proba, request_id=f"r{i}")
    quality.process_queue()
    assert dropped(registry, "invalid_output") == 2 and dropped(registry, "invalid_proba") == 2
    summary: dict[str, int] = {}
    for outcome in [Outcome(17, "cat"), Outcome(None, "cat"), Outcome("r0", ["cat"]), Outcome("r0", None),
                    Outcome("r0", float("nan")), Outcome("r0", "bird"), Outcome("r1", {"y": 1}), Outcome("r2", "dog")]:
        for key, value in quality.record_outcomes([outcome]).items():
            summary[key] = summary.get(key, 0) + value
    # 17 is a valid request id (held until its prediction comes); None is not an id.
    assert summary == {"wrong_type": 3, "invalid_request_id": 1, "pending": 1, "invalid_target": 1,
                       "unknown_class": 1, "joined": 1}
    assert rejected(registry, "unknown_class") == 1 and rejected(registry, "invalid_request_id", known=False) == 1
    assert quality.record_outcome("r0", "cat") == {"joined": 1}  # rejected outcomes do not use the id up

    reg_registry, reg_quality, reg_monitor = setup(task="regression")
    for i, value in enumerate([1.0, 2.0, 3.0]):
        reg_monitor.record_prediction(0.001, output=value, request_id=f"r{i}")
    reg_quality.process_queue()
    assert reg_quality.record_outcomes([Outcome("r0", "1.5"), Outcome("r1", math.inf), Outcome("r2", True)]) == {
        "wrong_type": 2, "invalid_target": 1}
    assert reg_quality.record_outcome("r0", 1.5) == {"joined": 1}
    for registry_ in (registry, reg_registry):
        text = exposition(registry_)
        assert "nan" not in text.lower().replace("nan_", "") and "inf\n" not in text.replace("+Inf", "")
        require_binary("promtool")
        result = promtool_check_metrics(text)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_store_is_bounded_and_expired_ids_are_counted(kind: str, tmp_path: Path) -> None:
    store = MemoryStore(max_predictions=3) if kind == "memory" else SQLiteStore(tmp_path / "q.db", max_predictions=3)
    registry, quality, monitor = setup(store)
    predict(monitor, range(5))
    quality.process_queue()
    quality.maintain()
    assert store.size() == 3 and series_value(registry, cat.STORE_PREDICTIONS.name) == 3
    assert quality.record_outcomes([Outcome("r0", 1), Outcome("r4", 1), Outcome("r99", 1)], hold=False) == {
        "expired_request": 1, "joined": 1, "unknown_request": 1}
    store.max_age_s = 60.0
    assert store.purge(now=time.time() + 61) == 3 and store.size() == 0
    assert quality.record_outcome("r3", 1) == {"expired_request": 1}


def test_locked_store_keeps_the_service_predicting_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    registry, quality, monitor = setup(SQLiteStore(path, busy_timeout_s=0.05))
    predict(monitor, range(10))
    quality.process_queue()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    start = time.perf_counter()
    predict(monitor, range(10, 20))  # the request path never touches the store
    assert time.perf_counter() - start < 0.05
    quality.process_queue()  # first attempt fails: kept for a retry
    with pytest.raises(StoreError) as info:
        quality.record_outcome("r0", 1)  # a synchronous join (HTTP) gets a clear error instead
    assert info.value.kind == "locked" and str(path) in str(info.value)
    blocker.execute("ROLLBACK")
    quality.process_queue()
    assert quality.store.size() == 20 and dropped(registry, "store_locked") == 0
    blocker.execute("BEGIN EXCLUSIVE")
    predict(monitor, range(20, 25))
    for _ in range(quality.max_retries):
        quality.process_queue()
    blocker.execute("ROLLBACK")
    assert dropped(registry, "store_locked") == 5 and quality.store.size() == 20


def test_full_store_drops_new_rows_keeps_old_ones(tmp_path: Path) -> None:
    registry, quality, monitor = setup(SQLiteStore(tmp_path / "q.db"))
    predict(monitor, range(10))
    quality.process_queue()
    conn = quality.store._conn  # type: ignore[attr-defined]
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count={pages}")  # the disk is full
    predict(monitor, range(10, 2010))
    for _ in range(quality.max_retries):
        quality.process_queue()
    assert dropped(registry, "store_full") == 2000 and quality.store.size() == 10
    conn.execute("PRAGMA max_page_count=1073741823")
    predict(monitor, range(3000, 3005))
    quality.process_queue()
    assert quality.store.size() == 15


def test_corrupt_store_file_gives_a_clear_error_and_is_never_modified(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    _, quality, monitor = setup(SQLiteStore(path))
    predict(monitor, range(3000))
    quality.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2:4096 * 5] = b"\xff" * (4096 * 3)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert info.value.kind == "corrupt" and str(path) in str(info.value) and "move" in str(info.value)
    assert path.read_bytes() == bytes(data)
    (tmp_path / "garbage.db").write_bytes(b"not sqlite" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        SQLiteStore(tmp_path / "garbage.db")
    # A service that asks for a fallback keeps predicting (in memory) and leaves the file alone.
    registry, fallback, monitor = setup(open_store(path, fallback=True))
    assert isinstance(fallback.store, MemoryStore)
    predict(monitor, range(5))
    fallback.process_queue()
    assert fallback.store.size() == 5 and path.read_bytes() == bytes(data)


def test_store_failing_mid_run_is_counted_and_scrapes_stay_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, quality, monitor = setup()

    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("corrupt", "database disk image is malformed")

    monkeypatch.setattr(quality.store, "transaction", broken)
    monkeypatch.setattr(quality.store, "counters", broken)
    predict(monitor, range(4))
    for _ in range(quality.max_retries):
        quality.process_queue()
    assert dropped(registry, "store_corrupt") == 4
    text = generate_latest(registry).decode()  # the collector's failing part is skipped, not a 500
    assert cat.DROPPED.name in text and 'operation="quality_collect"' in text


def test_queue_overflow_is_counted_and_outcome_without_quality_is_invalid() -> None:
    registry, quality, monitor = setup(queue_size=10)
    predict(monitor, range(15))
    monitor.record_batch([1, 0, 1], request_ids=["b0", "b1", "b2"], proba=[[0.1, 0.9]] * 3)
    assert dropped(registry, "queue_full") == 8
    plain = ModelMonitor("p", "1", registry=registry)
    plain.record_outcome("x", 1)
    assert series_value(registry, "mlscope_invalid_inputs_total", model="p", model_version="1",
                        reason="outcome_without_quality") == 1
    monitor.record_batch([1, 0], request_ids=["only-one"])
    assert series_value(registry, "mlscope_invalid_inputs_total", reason="batch_request_ids_mismatch", **V) == 1


def test_restart_mid_stream_keeps_counters_monotonic(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    registry, quality, monitor = setup(SQLiteStore(path))
    predict(monitor, range(100))
    quality.process_queue()
    quality.record_outcomes([Outcome(f"r{i}", i % 2) for i in range(50)])
    before = {k: v for k, v in series(registry).items()  # what the store persists (not per-process counters)
              if k[0].startswith("mlscope_quality_") and "roc_auc" not in k[0] and not k[0].startswith(cat.DROPPED.name)}
    quality.close()

    registry2, quality2, monitor2 = setup(SQLiteStore(path))
    after_restart = series(registry2)
    for key, value in before.items():
        assert after_restart.get(key) == value, key
    # predictions stored before the restart still join; outcomes joined before it are duplicates
    assert quality2.record_outcomes([Outcome(f"r{i}", 1) for i in range(40, 100)]) == {"joined": 50, "duplicate": 10}
    final = series(registry2)
    for key, value in before.items():
        assert final.get(key, 0) >= value, key
    assert labelled(registry2) == 100


def test_two_processes_on_one_store_never_count_a_pair_twice(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    registry, quality, monitor = setup(SQLiteStore(path))
    predict(monitor, range(300))
    quality.process_queue()
    other = Quality(SQLiteStore(path), registry=CollectorRegistry(), expose=False, start=False)
    outcomes = [Outcome(f"r{i}", 1) for i in range(200)]
    results: list[dict[str, int]] = []
    threads = [threading.Thread(target=lambda q=q: results.append(q.record_outcomes(outcomes)))
               for q in (quality, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.get("joined", 0) for r in results) == 200 and labelled(registry) == 200
    # a real second process: the import command, while this one holds the store open
    csv = tmp_path / "late.csv"
    csv.write_text("request_id,y_true\n" + "".join(f"r{i},1\n" for i in range(150, 300)))
    out = subprocess.run([sys.executable, "-m", "mlscope.cli", "quality-import", str(csv), "--store", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '{"duplicate": 50, "joined": 100}'
    assert labelled(registry) == 300
