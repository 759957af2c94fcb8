"""prometheus-client multiprocess mode under a real gunicorn with 2 workers: counts add up."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mlscope.stack.servers import free_port
from support import HERE
from support.helpers import wait_until

APPS = HERE / "apps"


@pytest.fixture
def gunicorn(tmp_path: Path):
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(APPS),
         "-c", "python:mlscope.gunicorn_hooks", "gunicorn_app:app"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(url + "/metrics", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, timeout=30)
    yield url
    process.terminate()
    process.wait(10)


def test_counts_add_up_across_workers(gunicorn: str) -> None:
    def call(_: int) -> str:
        with requests.Session() as session:
            return session.get(gunicorn + "/predict", timeout=5).text

    pids: set[str] = set()
    total_requests = 0
    with ThreadPoolExecutor(8) as pool:
        while len(pids) < 2 and total_requests < 400:  # rounds until both workers served requests
            pids |= set(pool.map(call, range(40)))
            total_requests += 40
    assert len(pids) == 2, f"requests reached only workers {pids}"
    text = requests.get(gunicorn + "/metrics", timeout=5).text
    values = {(s.name, s.labels.get("class", "")): s.value
              for f in text_string_to_metric_families(text) for s in f.samples
              if s.labels.get("model") == "gunicorn-model"}
    assert values[("mlscope_predictions_total", "")] == total_requests
    assert values[("mlscope_prediction_latency_seconds_count", "")] == total_requests
    assert values[("mlscope_predicted_class_total", "ok")] == total_requests
    assert values[("mlscope_predictions_in_flight", "")] == 0
    # The static info collector is added to the aggregating registry.
    assert values[("mlscope_model_info", "")] == 1
