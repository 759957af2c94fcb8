"""Registering a model version with a central quality exporter (a real `mlscope quality-exporter` process):
POST /versions and `mlscope quality-register`, behind the bearer token, kept across a crash; predictions of
an unknown version refused whole with a 422 that names the fix; what is accepted is stored and joined."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import confusion_matrix

from mlscope.cli import main
from mlscope.stack.servers import free_port
from support.helpers import wait_until
from support.quality_exporter import TOKEN


@dataclass
class Exporter:
    store: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Exporter:
        argv = [sys.executable, "-m", "mlscope.cli", "quality-exporter", "--store", str(self.store),
                "--port", str(self.port), "--profile", "fast"]
        self.process = subprocess.Popen(argv, env={**os.environ, "MLSCOPE_QUALITY_TOKEN": TOKEN},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._alive, timeout=30)
        return self

    def _alive(self) -> bool:
        try:
            return requests.get(self.url + "/-/healthy", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def crash(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def post(self, path: str, body: object, token: str | None = TOKEN) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(self.url + path, json=body, headers=headers, timeout=10)

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        text = requests.get(self.url + "/metrics", timeout=10).text
        return {tuple(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text)
                for s in f.samples if s.name == name}


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Exporter]:
    running = Exporter(tmp_path / "q.db", free_port()).start()
    yield running
    if running.process and running.process.poll() is None:
        running.process.terminate()
        running.process.wait(10)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    running = Exporter(tmp_path_factory.mktemp("shared") / "q.db", free_port()).start()
    assert running.post("/versions", {"model": "seen", "model_version": "1", "classes": [0, 1],
                                      "windows": ["5m", "1m"]}).status_code == 201
    yield running
    assert running.process is not None
    running.process.terminate()
    running.process.wait(10)


def predictions(model: str, version: str, y_pred: np.ndarray, start: int = 0) -> dict[str, object]:
    return {"predictions": [{"model": model, "model_version": version, "request_id": f"r{start + i}",
                             "output": int(p)} for i, p in enumerate(y_pred)]}


def test_register_predict_join_and_survive_a_crash(exporter: Exporter, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 3, 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.integers(0, 3, 60))

    # Before registration: refused whole, with the fix named; nothing stored, each prediction counted.
    refused = exporter.post("/predictions", predictions("fraud", "2", y_pred))
    assert refused.status_code == 422
    body = refused.json()
    assert body["stored"] == 0 and body["unknown_versions"] == [{"model": "fraud", "model_version": "2"}]
    assert "POST /versions" in body["error"] and "mlscope quality-register --url URL fraud 2" in body["error"]
    dropped = exporter.samples("mlscope_quality_dropped_total")
    assert dropped[(("kind", "prediction"), ("reason", "unknown_version"))] == 60

    # The CLI registers over HTTP, behind the token.
    argv = ["quality-register", "fraud", "2", "--classes", "0", "1", "2", "--baseline", "accuracy=0.71",
            "--url", exporter.url]
    monkeypatch.delenv("MLSCOPE_QUALITY_TOKEN", raising=False)
    assert main(argv) == 1
    assert "answered 401" in capsys.readouterr().err
    monkeypatch.setenv("MLSCOPE_QUALITY_TOKEN", TOKEN)
    assert main(argv) == 0
    assert '"created": true' in capsys.readouterr().out
    assert main(argv) == 0 and '"created": false' in capsys.readouterr().out  # again: nothing changes
    assert main(["quality-register", "fraud", "2", "--classes", "no", "yes", "--url", exporter.url]) == 1
    assert "a changed model needs a new model_version" in capsys.readouterr().err

    # Accepted now: every prediction stored, the outcomes join, the confusion matrix is scikit-learn's.
    assert exporter.post("/predictions", predictions("fraud", "2", y_pred)).json() == {"stored": 60, "received": 60}
    outcomes = {"outcomes": [{"request_id": f"r{i}", "y_true": int(t)} for i, t in enumerate(y_true)]}
    assert exporter.post("/outcomes", outcomes).json() == {"joined": 60}
    expected = confusion_matrix(y_true, y_pred, labels=[0, 1, 2])

    def matrix() -> np.ndarray:
        got = np.zeros((3, 3))
        for labels, value in exporter.samples("mlscope_quality_confusion_total").items():
            d = dict(labels)
            got[int(d["actual_class"]), int(d["predicted_class"])] = value
        return got

    np.testing.assert_array_equal(matrix(), expected)

    # A crash keeps the version (task, classes, baseline) and its counters; new predictions are accepted.
    exporter.crash()
    exporter.start()
    (version,) = requests.get(exporter.url + "/versions", timeout=10).json()["versions"]
    assert version == {"model": "fraud", "model_version": "2", "task": "classification",
                       "classes": ["0", "1", "2"], "baseline": {"accuracy": 0.71}}
    assert exporter.samples("mlscope_quality_baseline")[
        (("metric", "accuracy"), ("model", "fraud"), ("model_version", "2"))] == 0.71
    np.testing.assert_array_equal(matrix(), expected)
    again = exporter.post("/predictions", predictions("fraud", "2", y_pred[:5], start=100))
    assert again.json() == {"stored": 5, "received": 5}


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"model": "m", "model_version": "1", "task": "ranking"}, 400, "`task` must be one of"),
    ({"model": "m", "model_version": "1", "task": "regression", "classes": [0, 1]}, 400, "classes` is for"),
    ({"model": "m", "model_version": "1", "classes": [1, 1.0]}, 400, "names a class twice"),
    ({"model": "m", "model_version": "1", "classes": [[0], 1]}, 400, "not a class label"),
    ({"model": "", "model_version": "1"}, 400, "`model` must be a non-empty string"),
    ({"model": "m", "model_version": "1", "baseline": {"auc": 0.9}}, 400, "baseline metric 'auc'"),
    ({"model": "m", "model_version": "1", "baseline": {"accuracy": "high"}}, 400, "must be a finite number"),
    ({"model": "m", "model_version": "1", "windows": ["1h", "1d"]}, 400, "computes windows ['1m', '5m']"),
    ({"model": "m", "model_version": "1", "colour": "red"}, 400, "unknown field(s) colour"),
    ({"model": "seen", "model_version": "1", "task": "regression"}, 409, "registered as classification"),
    ([1, 2], 400, "expected {"),
])
def test_bad_registrations_are_refused_and_counted(shared: Exporter, body: object, status: int,
                                                   says: str) -> None:
    reason = (("kind", "version"), ("reason", "conflict" if status == 409 else "invalid"))
    before = shared.samples("mlscope_quality_dropped_total").get(reason, 0)
    response = shared.post("/versions", body)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]
    assert shared.samples("mlscope_quality_dropped_total")[reason] == before + 1
    assert shared.post("/versions", body, token=None).status_code == 401


def test_register_into_a_store_and_a_wrong_url_says_so_in_one_line(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "q.db"
    assert main(["quality-register", "reg", "1", "--task", "regression", "--baseline", "mae=2.5", "rmse=3.5",
                 "--baseline", "mape=0.1", "--store", str(store)]) == 0  # several after one flag, or repeated
    exporter = Exporter(store, free_port()).start()
    try:
        (version,) = requests.get(exporter.url + "/versions", timeout=10).json()["versions"]
        assert version["task"] == "regression" and version["baseline"] == {"mae": 2.5, "rmse": 3.5, "mape": 0.1}
    finally:
        assert exporter.process is not None
        exporter.process.terminate()
        exporter.process.wait(10)
    capsys.readouterr()
    assert main(["quality-register", "reg", "1", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlscope: no quality exporter answers at http://127.0.0.1:") and err.count("\n") == 1
    assert main(["quality-register", "reg", "1", "--baseline", "mae", "--store", str(store)]) == 1
    assert "--baseline takes METRIC=NUMBER" in capsys.readouterr().err
