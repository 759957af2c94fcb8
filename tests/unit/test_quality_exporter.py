"""The quality exporter process, its HTTP endpoints, file import, late ground truth, and real Prometheus."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mlscope import ModelMonitor
from mlscope.catalog import quality as cat
from mlscope.cli import main, parser
from mlscope.demo.workload import LateGroundTruth, SyntheticService, Traffic, train
from mlscope.quality import Quality, SQLiteStore
from mlscope.quality.server import QualityServer
from mlscope.stack.servers import free_port
from support.helpers import wait_until
from support.quality_exporter import TOKEN, post, url
from support.quality_helpers import series_value


def test_http_answers_503_when_the_store_is_locked(tmp_path: Path) -> None:
    import sqlite3

    registry = CollectorRegistry()
    quality = Quality(SQLiteStore(tmp_path / "q.db", busy_timeout_s=0.05), registry=registry, start=False)
    srv = QualityServer("127.0.0.1", free_port(), quality, registry).start()
    try:
        blocker = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        response = post(srv, "/outcomes", {"outcomes": [{"request_id": "a", "y_true": 1}]}, token=None)
        assert response.status_code == 503 and response.json()["kind"] == "locked"
        blocker.execute("ROLLBACK")
        assert requests.get(url(srv, "/metrics"), timeout=10).status_code == 200
    finally:
        srv.stop()


def test_cli_defaults_bind_loopback() -> None:
    args = parser().parse_args(["quality-exporter"])
    assert args.addr == "127.0.0.1" and args.store == "mlscope-quality.db"


def test_import_csv_and_jsonl_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "q.db"
    quality = Quality(SQLiteStore(store), registry=CollectorRegistry(), start=False)
    clf = ModelMonitor("m", "1", registry=CollectorRegistry(), quality=quality, classes=["0", "1", "2"])
    reg = ModelMonitor("r", "1", registry=clf.registry, quality=quality, task="regression")
    for i in range(6):
        clf.record_prediction(0.001, output=i % 3, request_id=f"c{i}")
        reg.record_prediction(0.001, output=float(i), request_id=f"v{i}")
    quality.close()
    (tmp_path / "a.csv").write_text("request_id,y_true,time\nc0,0,\nc1,1.0,1700000000\nc2,7,\nv0,0.5,\n"
                                    "v1,nan,\nv2,,\nmissing,1,\n")
    assert main(["quality-import", str(tmp_path / "a.csv"), "--store", str(store)]) == 0
    assert json.loads(capsys.readouterr().out) == {"joined": 3, "unknown_class": 1, "invalid_target": 1,
                                                   "wrong_type": 1, "unknown_request": 1}
    (tmp_path / "b.jsonl").write_text(
        '{"request_id": "c3", "y_true": 0}\n\n[1, 2]\n{"request_id": "c0", "y_true": 0}\n')
    assert main(["quality-import", str(tmp_path / "b.jsonl"), "--store", str(store)]) == 0
    assert json.loads(capsys.readouterr().out) == {"joined": 1, "invalid_request_id": 1, "duplicate": 1}
    (tmp_path / "bad.csv").write_text("id,label\n1,2\n")
    assert main(["quality-import", str(tmp_path / "bad.csv"), "--store", str(store)]) == 1
    assert "request_id and y_true" in capsys.readouterr().err


def test_late_ground_truth_from_the_workload(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    quality = Quality(registry=registry, flush_interval_s=0.01)
    trained = train("breast_cancer")
    monitor = ModelMonitor("wl", "1", registry=registry, quality=quality, classes=trained.pipeline.classes_)
    truth = LateGroundTruth(monitor.record_outcome, delay_s=0.5, fraction=0.5, seed=1)
    traffic = Traffic(SyntheticService(trained, monitor), on_prediction=truth.schedule)
    for _ in range(200):
        traffic.step()
    quality.flush()
    labels = dict(model="wl", model_version="1", segment="")
    assert series_value(registry, cat.LABELLED.name, **labels) == 0 and 60 < truth.waiting < 140
    truth.start()
    wait_until(lambda: truth.waiting == 0, timeout=10)
    truth.stop()
    quality.flush()
    assert series_value(registry, cat.LABELLED.name, **labels) == truth.delivered
    assert series_value(registry, cat.LABEL_DELAY.name + "_bucket", le="0.0", **labels) == 0
    assert series_value(registry, cat.LABEL_DELAY.name + "_sum", **labels) >= 0.5 * truth.delivered
    quality.close()


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_exporter_process_restart_mid_stream_keeps_counters(tmp_path: Path) -> None:
    store = tmp_path / "q.db"
    service = Quality(SQLiteStore(store), registry=CollectorRegistry(), expose=False)
    monitor = ModelMonitor("m", "1", registry=CollectorRegistry(), quality=service, classes=[0, 1])
    port = free_port()
    env = {**os.environ, "MLSCOPE_QUALITY_TOKEN": TOKEN}
    argv = [sys.executable, "-m", "mlscope.cli", "quality-exporter", "--store", str(store), "--port", str(port)]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: _alive(port), timeout=30)
        return proc

    def send(ids: range) -> None:
        body = {"outcomes": [{"request_id": f"r{i}", "y_true": i % 2} for i in ids]}
        r = requests.post(f"http://127.0.0.1:{port}/outcomes", json=body,
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert r.status_code == 200, r.text

    key = (cat.LABELLED.name, (("model", "m"), ("model_version", "1"), ("segment", "")))
    for i in range(300):
        monitor.record_prediction(0.001, output=1, proba=[0.2, 0.8], request_id=f"r{i}")
    service.flush()
    proc = start()
    try:
        send(range(100))
        first = _scrape(port)
        assert first[key] == 100
        proc.send_signal(signal.SIGKILL)  # a crash, not a clean stop
        proc.wait(10)
        proc = start()
        restarted = _scrape(port)
        assert restarted[key] == 100
        for k, v in first.items():
            if k[0].startswith("mlscope_quality_") and k[0].endswith(("_total", "_bucket", "_sum")):
                assert restarted.get(k, 0) >= v, k
        send(range(50, 200))  # 50 already joined before the crash: duplicates, not double counts
        assert _scrape(port)[key] == 200
    finally:
        proc.terminate()
        proc.wait(10)
        service.close()


def _alive(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=1).status_code == 200
    except requests.RequestException:
        return False


# -- real Prometheus, real exporter, known pairs ---------------------------------------------------


def test_a_client_gone_before_its_answer_is_counted_not_a_traceback() -> None:
    """The exporter answers through mlscope._http.reply: a BrokenPipeError (a scrape that timed out, a closed
    tab) is counted and the handler closes the connection; it used to raise, a traceback on the console."""
    from types import SimpleNamespace

    from mlscope._http import client_disconnects
    from mlscope.quality import server as quality_server

    def gone(data: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    handler = object.__new__(quality_server._Handler)
    handler.__dict__.update(command="GET", path="/-/healthy", request_version="HTTP/1.1", requestline="GET /-/healthy",
                            client_address=("127.0.0.1", 1), headers={}, wfile=SimpleNamespace(write=gone),
                            close_connection=False)
    before = client_disconnects()
    handler.do_GET()
    assert client_disconnects() == before + 1 and handler.close_connection
