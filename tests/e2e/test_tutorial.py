"""docs/tutorial.md, run as written: a user's own scikit-learn service with its reference profile, late labels
and a prediction log, added to a running native stack; the drift the user injects pages with its number, its
threshold and links that resolve. The compose half is checked statically."""
from __future__ import annotations

import json
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score

from mlscope.drift import ReferenceProfile
from mlscope.stack.native import Ports
from mlscope.stack.servers import PrometheusAPI, free_port
from support import ROOT
from support.compose import validate_compose_spec
from support.helpers import require_binary
from support.tutorial import Runner, Step, commands, steps, wait_for

PAGE = ROOT / "docs" / "tutorial.md"
SERVICE_PORT = 8001


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    defaults = vars(Ports())
    free = {name: free_port() for name in defaults}
    ports = {defaults[name]: free[name] for name in defaults} | {SERVICE_PORT: free_port()}
    flags = [a for name, port in free.items() for a in (f"--{name.replace('_', '-')}-port", str(port))]
    run = Runner(tmp_path, ports, flags)
    yield run
    run.stop()


def prometheus(run: Runner) -> PrometheusAPI:
    return PrometheusAPI(f"http://127.0.0.1:{run.ports[Ports.prometheus]}")


def scraped(run: Runner, job: str) -> bool:
    try:
        return any(t["labels"]["job"] == job and t["health"] == "up" for t in prometheus(run).targets())
    except Exception:  # Prometheus still starting
        return False


def firing_for(records_json: str, model: str) -> list[str]:
    return [r["alertname"] for r in json.loads(records_json)
            if r["status"] == "firing" and r["labels"].get("model") == model]


def sent(output: str) -> int:
    match = re.search(r"sent (\d+) predictions", output)
    assert match, output
    return int(match.group(1))


def expected_correct(cwd: Path, n: int) -> tuple[int, float]:
    """Correct predictions among the first ``n`` rows traffic.py sent (it cycles live.csv), by scikit-learn."""
    with open(cwd / "model.pkl", "rb") as f:
        model = pickle.load(f)
    live = pd.read_csv(cwd / "live.csv")
    right = model.predict(live.drop(columns="label")) == live["label"].to_numpy()
    rows = np.arange(n) % len(live)
    return int(right[rows].sum()), accuracy_score(live["label"].to_numpy()[rows], model.predict(
        live.drop(columns="label"))[rows])


@pytest.mark.slow(seconds=116)
def test_the_tutorial_runs_as_written(runner: Runner) -> None:
    page = steps(PAGE.read_text())
    kinds = [s.kind for s in page]
    assert kinds.count("file") == 3 and "until" in kinds and "compose" in kinds, kinds
    run = runner
    traffic_runs = 0
    for step in page:
        if step.kind == "file":
            run.write(step)
        elif step.kind == "compose":
            check_compose_half(run, step)
        elif step.kind == "until":
            line = run.wait_for_line(next(commands(step.text)), step.name, timeout=90)
            check_notification(run, json.loads(line))
        elif step.kind == "background":
            for argv in commands(step.text):
                process = run.start(argv)
                if argv[:2] == ["mlscope", "up"]:
                    wait_for(lambda: scraped(run, "alertmanager"), 120, "the stack")
                elif argv[1:2] == ["serve.py"]:
                    assert process.stdout is not None and "serving on" in process.stdout.readline()
        else:
            for argv in commands(step.text):
                out = run.run(argv)
                if argv[:2] == ["mlscope", "targets"] and argv[2] == "add":
                    wait_for(lambda: scraped(run, "model-services"), 30, "the service's first scrape")
                if argv[1:2] == ["traffic.py"]:
                    traffic_runs += 1
                    check_quality(run, sent(out))
                if argv[:2] == ["curl", "-s"] and argv[2].endswith("/api/alerts"):
                    # normal traffic past the warm-up: not one alert about the model
                    assert firing_for(out, "cancer") == [], out
    assert traffic_runs == 1
    check_prediction_log(run)


def check_quality(run: Runner, n: int) -> None:
    """Every label joined: Prometheus's correct/labelled counters equal scikit-learn's on the rows sent."""
    correct, accuracy = expected_correct(run.cwd, n)
    api = prometheus(run)

    def counts() -> tuple[float, float] | None:
        got = [api.query(f'sum(mlscope_quality_{name}_total{{model="cancer",model_version="1.0.0"}})')
               for name in ("labelled", "correct")]
        values = tuple(float(r[0]["value"][1]) if r else -1.0 for r in got)
        return values if values == (n, correct) else None  # type: ignore[return-value]

    wait_for(counts, 30, f"{n} labelled outcomes, {correct} correct (accuracy {accuracy:.3f}) in Prometheus")


def check_notification(run: Runner, line: dict[str, object]) -> None:
    """The drift line: its number above the threshold calibrated on the profile, links that resolve."""
    assert line["status"] == "firing" and line["model"] == "cancer" and line["owner"] == "oncology-ml", line
    assert line["labels"]["feature"] == "mean_radius", line  # type: ignore[index]
    description = str(line["description"])
    match = re.search(r"PSI of feature mean_radius of cancer 1\.0\.0 is ([\d.]+) over the last 1m, above its "
                      r"threshold ([\d.]+) \(calibrated on the reference", description)
    assert match, description
    value, threshold = map(float, match.groups())
    profile = ReferenceProfile.load(run.cwd / "model.reference.json")
    calibrated = next(f for f in profile.features if f.name == "mean_radius").thresholds["psi"]
    assert threshold == pytest.approx(max(calibrated, 0.1), abs=5e-4) and value > threshold, (description,
                                                                                             calibrated)
    runbook = run.run(["curl", "-s", str(line["runbook_url"])])
    assert runbook.startswith("# FeatureDriftHigh"), runbook[:200]
    page = run.run(["curl", "-s", str(line["page_url"])])
    assert "mean_radius" in page and "FeatureDriftHigh" in page
    grafana = f"http://127.0.0.1:{run.ports[Ports.grafana]}"
    assert str(line["dashboard"]).startswith(f"{grafana}/d/mlscope-drift?var-model=cancer&var-model_version=1.0.0")
    assert str(line["logs_url"]).startswith(f"{grafana}/explore?") and "cancer" in str(line["logs_url"])


def check_prediction_log(run: Runner) -> None:
    """predictions.jsonl: a line per prediction (sample rate 1), keyed by request id."""
    lines = [json.loads(x) for x in (run.cwd / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) >= 500 and all(x["model"] == "cancer" for x in lines)
    assert len({x["request_id"] for x in lines}) == len(lines)
    assert all(str(x["request_id"]).startswith("req-") for x in lines)


def check_compose_half(run: Runner, step: Step) -> None:
    """`mlscope init` and `targets add --stack-dir`: the target file, and Prometheus's host gateway."""
    run.run(["mlscope", "init", "my-stack"])
    for argv in commands(step.text):
        run.run(argv, localize=False)  # a compose target names the container's view: no free port here
    target = yaml.safe_load((run.cwd / "my-stack/provisioning/prometheus/targets/cancer.yml").read_text())
    assert target == [{"targets": ["host.docker.internal:8001"], "labels": {"service": "cancer"}}], target
    compose = yaml.safe_load((run.cwd / "my-stack/docker-compose.yml").read_text())
    prom = compose["services"]["prometheus"]
    assert "host.docker.internal:host-gateway" in prom["extra_hosts"]
    assert "./provisioning/prometheus/targets:/etc/prometheus/targets:ro" in prom["volumes"]
    valid = validate_compose_spec(run.cwd / "my-stack/docker-compose.yml")  # no Docker engine on CI machines
    assert valid.returncode == 0, valid.stdout + valid.stderr
