"""`mlscope up --demo` with a real Prometheus, then `mlscope down` leaves nothing behind."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import require_binary, wait_until
from mlscope.servers import PrometheusAPI, free_port

pytestmark = pytest.mark.servers


def test_up_demo_then_down(tmp_path: Path) -> None:
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    prom_port, am_port, rcv_port, demo_port = (free_port() for _ in range(4))
    state = tmp_path / "state"
    up = subprocess.Popen([sys.executable, "-m", "mlscope.cli", "up", "--demo", "--state-dir", "state",
                           "--prometheus-port", str(prom_port), "--demo-port", str(demo_port),
                           "--alertmanager-port", str(am_port), "--alert-receiver-port", str(rcv_port)],
                          cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        api = PrometheusAPI(f"http://127.0.0.1:{prom_port}")

        def demo_counted() -> bool:
            try:
                result = api.query('mlscope_predictions_total{model="demo-classifier"} > 0')
            except (requests.RequestException, Exception):  # noqa: BLE001 - not up yet
                return False
            return bool(result)

        wait_until(demo_counted, timeout=90)
        # Simulated GPUs: the demo process's GPU memory is attributed to the demo model.
        api.wait_for('mlscope_gpu_process_memory_bytes{model="demo-classifier",simulated="true"}', timeout=30)
        expected = {"mlscope-demo": "up", "prometheus": "up", "alertmanager": "up", "mlscope-alert-receiver": "up"}
        wait_until(lambda: {t["labels"]["job"]: t["health"] for t in api.targets()} == expected, timeout=30)
        # A relative --state-dir still loads the rules, and the Watchdog reaches the receiver through Alertmanager.
        assert {g["name"] for g in api.rules()} >= {"mlscope-serving-recording", "mlscope-serving-alerts"}
        wait_until(lambda: api.query('model_version:mlscope_predictions:rate{model="demo-classifier"}'), timeout=30)
        wait_until(lambda: "MLScopeWatchdog" in (state / "alerts.jsonl").read_text(), timeout=30)
        down = subprocess.run([sys.executable, "-m", "mlscope.cli", "down", "--state-dir", str(state)],
                              capture_output=True, text=True, timeout=60)
        assert down.returncode == 0 and "stopped" in down.stdout
        assert up.wait(30) == 0
        output = up.stdout.read() if up.stdout else ""
        assert f"http://127.0.0.1:{prom_port}" in output
        for port in (prom_port, am_port, rcv_port, demo_port):
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
        assert not (state / "mlscope.pid").exists()
        assert any((state / "prometheus").iterdir())  # data kept for the next start
    finally:
        if up.poll() is None:
            up.kill()  # its servers get SIGTERM through PR_SET_PDEATHSIG
