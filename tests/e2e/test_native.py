"""`mlscope up --demo` end to end with real Prometheus and Alertmanager: targets up, every dashboard query
returns data, an injected drift reaches the alert receiver with its runbook, retrains the demo model (a new
version serving, its training run pushed) and resolves, `mlscope down` leaves nothing behind, and a restart
keeps Prometheus data and Alertmanager silences."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from prometheus_client import CollectorRegistry

from mlscope.dashboards import check as dashcheck
from mlscope.pipelines import PipelineMonitor
from mlscope.stack.native import Ports
from mlscope.stack.servers import ServerError, free_port
from support import ROOT
from support.dashboard_exemptions import reads_model_server, reads_seasonal_history
from support.helpers import require_binary, wait_until
from support.native import Up, free_ports, start_up


@pytest.fixture
def ports() -> Ports:
    return free_ports()


@pytest.fixture
def stack(tmp_path: Path, ports: Ports) -> Iterator[Up]:
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    up = start_up(tmp_path, ports)
    yield up
    if up.process.poll() is None:
        up.process.kill()  # its servers get SIGTERM through PR_SET_PDEATHSIG


def dashboard_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "provisioning" / "grafana" / "dashboards").glob("mlscope-*.json")):
        for query in dashcheck.queries(json.loads(path.read_text())):
            if query.datasource == "prometheus":
                found.append((f"{path.name} {query.where}", query.expr))
    return found


@pytest.mark.slow(seconds=175)
def test_demo_end_to_end_then_down_and_a_restart_keeping_data(stack: Up, tmp_path: Path) -> None:
    """One stack start for both halves (a start costs 10-30 s on a loaded machine): the demo end to end, then
    `mlscope down` and a restart on the same state directory."""
    demo_end_to_end(stack)
    down_leaves_nothing_and_restart_keeps_data(stack, tmp_path)


def demo_end_to_end(stack: Up) -> None:
    api = stack.api
    # Drift is injected as soon as the stack is up: its alert fires and resolves over the same minutes the
    # dashboards' windows take to fill (the checks are the same as one after the other, the waits overlap).
    injected = time.time()
    inject = subprocess.run([sys.executable, "-m", "mlscope.cli", "demo", "inject", "drift", "--seconds", "40",
                             "--url", f"http://127.0.0.1:{stack.ports.demo}"],
                            capture_output=True, text=True, timeout=30)
    assert inject.returncode == 0, inject.stderr
    # The defective canary goes live now rather than ~9.5 minutes in: the Versions dashboard has its two
    # versions, their comparison alert, and the rollback that ends them.
    canary = subprocess.run([sys.executable, "-m", "mlscope.cli", "demo", "inject", "canary-defect", "--seconds",
                             "120", "--url", f"http://127.0.0.1:{stack.ports.demo}"],
                            capture_output=True, text=True, timeout=30)
    assert canary.returncode == 0, canary.stderr
    # And slow first tokens on the text endpoint: the Generative models dashboard's alerts panel has its page.
    ttft = subprocess.run([sys.executable, "-m", "mlscope.cli", "demo", "inject", "ttft", "--seconds", "60",
                           "--url", f"http://127.0.0.1:{stack.ports.demo}"], capture_output=True, text=True, timeout=30)
    assert ttft.returncode == 0, ttft.stderr
    failure = subprocess.run([sys.executable, "-m", "mlscope.cli", "demo", "inject", "pipeline-failure", "--seconds",
                              "3", "--url", f"http://127.0.0.1:{stack.ports.demo}"],
                             capture_output=True, text=True, timeout=30)  # a failed run at once, for its panels
    assert failure.returncode == 0, failure.stderr

    # Every dashboard query returns data once the fast windows (1m) have filled: each at some point, since the
    # canary's comparisons end with its rollback.
    variables = {"model": ".+", "model_version": ".+", "window": "1m", "request_id": ".+", "feature": ".+",
                 "instance": ".+", "gpu": ".+", "env": ".*", "pipeline": ".+", "run_id": ".+"}

    def missing(queries: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The queries of ``queries`` that return no data now."""
        out = []
        for where, expr in queries:
            selector = dashcheck.variable_selector(expr)
            query = dashcheck.substitute(selector[0] or "up" if selector else expr, variables)
            if not api.query(query):
                out.append((where, expr))
        return out

    # The canary's realised-quality comparisons need 100 labels of each version in the window: the rollback ends
    # the canary long before (tests/e2e/test_dashboards_live.py serves a canary that stays and checks them).
    rolled_back_first = ("mlscope_versions_accuracy:difference", "mlscope_versions_f1_macro:difference")
    deadline = time.monotonic() + 150
    # The seasonal bands need more history than this wait; the demo runs no model server (see the helpers).
    gaps = [(w, q) for w, q in dashboard_queries() if not any(name in q for name in rolled_back_first)
            and not reads_seasonal_history(q) and not reads_model_server(q)]
    while gaps and time.monotonic() < deadline:
        gaps = missing(gaps)
        if gaps:
            time.sleep(2)
    assert gaps == [], "dashboard queries without data:\n" + "\n".join(f"{w}: {q}" for w, q in gaps)

    # The injected drift reaches the alert receiver with its runbook link, then resolves.
    firing = wait_until(lambda: stack.alerts("FeatureDriftHigh", "firing"), timeout=120)[0]
    assert firing["model"] == "demo-classifier" and firing["runbook_url"].endswith("/FeatureDriftHigh.md")
    print(f"\ndrift injected -> FeatureDriftHigh at the receiver: {time.time() - injected:.1f} s")
    # The feedback loop: the receiver's command retrained the model; the new version serves, with the fingerprint
    # its training run pushed.
    served = api.wait_for('mlscope_model_info{job="mlscope-demo",model="demo-classifier",model_version="1.0.1"}',
                          timeout=120)
    trained = api.wait_for('mlscope_training_info{model="demo-classifier",model_version="1.0.1"}', timeout=30)
    assert served[0]["metric"]["training_data_fingerprint"] == trained[0]["metric"]["training_data_fingerprint"]
    print(f"drift injected -> 1.0.1 serving: {time.time() - injected:.1f} s")
    wait_until(lambda: stack.alerts("FeatureDriftHigh", "resolved"), timeout=240)
    print(f"drift injected -> resolved: {time.time() - injected:.1f} s")


def down_leaves_nothing_and_restart_keeps_data(stack: Up, tmp_path: Path) -> None:
    am = f"http://127.0.0.1:{stack.ports.alertmanager}"
    silence = {"matchers": [{"name": "alertname", "value": "FeatureDriftHigh", "isRegex": False}],
               "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
               "createdBy": "test", "comment": "kept across restarts"}
    silence_id = requests.post(am + "/api/v2/silences", json=silence, timeout=10).json()["silenceID"]
    # The demo's served predictions (a retraining job's push carries its new version's series at 0; a retired
    # version's series are gone): what the restart must keep.
    predictions = 'mlscope_predictions_total{model="demo-classifier",job!="mlscope-pipelines"}'
    served = f"sum({predictions})"
    stack.api.wait_for(f"{served} > 0", timeout=30)
    # A short-lived job's group, pushed to the native Pushgateway: its persistence file keeps it across the restart.
    job = PipelineMonitor("native-job", registry=CollectorRegistry(),
                          pushgateway=f"127.0.0.1:{stack.ports.pushgateway}")
    with job.run("b") as run:
        run.step("s").end()
    assert run.push_result is not None and run.push_result.ok
    before = time.time()
    time.sleep(2)
    children = psutil.Process(stack.process.pid).children(recursive=True)
    assert {c.name() for c in children} >= {"prometheus"}
    output = stack.down()
    assert f"http://127.0.0.1:{stack.ports.prometheus}" in output
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    for port in vars(stack.ports).values():
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert not (stack.state / "mlscope.pid").exists()

    again = start_up(tmp_path, stack.ports)
    try:
        ids = {s["id"] for s in requests.get(am + "/api/v2/silences", timeout=10).json()}
        assert silence_id in ids
        # Over the 15 s before: one scrape of the demo that timed out under load makes its series stale for a
        # moment, which is not data lost in the restart.
        old = again.api.query(f"sum(last_over_time({predictions}[15s]))", time_=before)
        assert old and float(old[0]["value"][1]) > 0
        kept = again.api.wait_for('mlscope_pipeline_runs_total{pipeline="native-job",status="success"}', timeout=15)
        assert kept[0]["metric"]["job"] == "mlscope-pipelines" and kept[0]["value"][1] == "1"  # honor_labels
    finally:
        again.down()


def test_a_second_up_on_a_running_state_dir_is_refused(tmp_path: Path) -> None:
    from mlscope.stack.native import PID_FILE, NativeStack

    state = tmp_path / "state"
    state.mkdir()
    (state / PID_FILE).write_text(str(os.getpid()))  # a live process holds this state dir
    with pytest.raises(ServerError, match="already running"):
        NativeStack(state, ports=Ports(**{name: free_port() for name in vars(Ports())})).start()
    assert (state / PID_FILE).read_text() == str(os.getpid())  # the running stack's pid file is left alone
    assert sorted(p.name for p in state.iterdir()) == [PID_FILE]  # nothing written, nothing started
