"""Lineage from log lines: one query answers the same in Loki (the test receiver, Loki's HTTP API) and in the
JSON-lines fallback, exactly (ids that are prefixes of others); ``mlscope lineage`` prints the chain the runs
recorded and says what is missing."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mlscope.cli import main
from mlscope.lineage import FileSource, LokiSource, from_prediction, trace
from mlscope.lineage import queries as q
from mlscope.lineage.render import text as render_text
from mlscope.logs import JsonFormatter
from mlscope.monitor import ModelMonitor
from mlscope.pipelines import PipelineMonitor
from mlscope.stack.servers import free_port
from support.loki_receiver import LokiReceiver

ALERT = {"labels": {"alertname": "FeatureDriftHigh", "model": "churn"}, "fingerprint": "9a8b7c6d5e4f3a2b",
         "status": "firing", "startsAt": "2026-12-02T00:00:00Z"}


@pytest.fixture
def recorded(make_handler, receiver: LokiReceiver, tmp_path: Path) -> dict:
    """Pipeline runs over b-1, b-10, b-2 (b-2 failed), a training run of churn 4 on b-1 and b-2 started by an
    alert, another of churn 40 on b-10, and a prediction of churn 4 on batch b-2: to Loki and to a file."""
    handler, logger, _ = make_handler(batch_lines=500)
    path = tmp_path / "job.jsonl"
    to_file = logging.FileHandler(path)
    to_file.setFormatter(JsonFormatter())
    logger.addHandler(to_file)
    registry = CollectorRegistry()
    features = PipelineMonitor("features", registry=registry, logger=logger)
    runs = {}
    for batch in ("b-1", "b-10", "b-2"):
        with features.run(batch) as run:
            run.step("load").end("OSError" if batch == "b-2" else None)
        runs[batch] = (run.run_id, run.status)
    trainer = PipelineMonitor("trainer", registry=registry, logger=logger)
    with trainer.training_run("churn", dataset_version="d-4", fingerprint="sha256:4", data_batch_ids=["b-1", "b-2"],
                              hyperparameters={"C": 2.0}, transformations=["scaler"], triggered_by=ALERT,
                              model_version="4") as four:
        four.final(auc=0.9)
    with trainer.training_run("churn", dataset_version="d-40", fingerprint="sha256:40", data_batch_ids=["b-10"],
                              model_version="40"):
        pass
    late = trainer.training_run("churn", dataset_version="d-41", fingerprint="sha256:41")
    late.end()
    late.model_monitor("41")  # named after the run ended: its training info still set
    info = {(s.labels["model_version"], s.labels["dataset_version"], s.labels["training_data_fingerprint"])
            for f in registry.collect() for s in f.samples if s.name == "mlscope_training_info"}
    assert info == {("4", "d-4", "sha256:4"), ("40", "d-40", "sha256:40"), ("41", "d-41", "sha256:41")}
    served = ModelMonitor("churn", "4", registry=registry, training_data_fingerprint="sha256:4")
    logger.info("prediction", extra={"event": "prediction", "model": "churn", "model_version": "4",
                                     "request_id": "req-1", "data_batch_id": "b-2"})
    logger.info("prediction", extra={"event": "prediction", "model": "churn", "model_version": "4",
                                     "request_id": "req-10", "data_batch_id": "b-10"})
    assert handler.drain(10) and receiver.errors == [] and served.model_version == "4"
    to_file.close()
    return {"file": FileSource([path]), "loki": LokiSource(receiver.url), "runs": runs, "four": four, "path": path}


@pytest.mark.parametrize("source", ["file", "loki"])
def test_a_version_traces_to_its_training_run_batches_pipeline_runs_and_alert(recorded: dict, source: str) -> None:
    found = trace("churn", "4", logs=[recorded[source]])
    (run,) = found.training_runs
    four, runs = recorded["four"], recorded["runs"]
    assert (run["run_id"], run["dataset_version"], run["training_data_fingerprint"]) == (
        four.run_id, "d-4", "sha256:4")
    assert run["hyperparameters"] == {"C": 2.0} and run["triggered_by"]["fingerprint"] == ALERT["fingerprint"]
    assert found.batch_ids == ["b-1", "b-2"]  # not b-10: ids that are prefixes select exactly
    assert [(r["data_batch_id"], r["run_id"], r["status"]) for r in found.pipeline_runs] == [
        (b, *runs[b]) for b in ("b-1", "b-2")]
    assert any("alert 9a8b7c6d5e4f3a2b: no alert receiver line" in m for m in found.missing)
    assert [r["run_id"] for r in trace("churn", "40", logs=[recorded[source]]).training_runs] != [four.run_id]


@pytest.mark.parametrize("source", ["file", "loki"])
def test_a_prediction_traces_back_through_its_version_and_batch(recorded: dict, source: str) -> None:
    found = from_prediction("req-1", logs=[recorded[source]])
    assert found.prediction is not None and found.prediction["data_batch_id"] == "b-2"
    assert (found.model, found.model_version) == ("churn", "4")
    assert found.batch_ids == ["b-1", "b-2"]
    assert from_prediction("req", logs=[recorded[source]]).prediction is None  # a prefix of req-1 and req-10


def test_the_loki_query_and_the_file_match_select_the_same_lines(recorded: dict, receiver: LokiReceiver) -> None:
    lines = [json.loads(text) for text in recorded["path"].read_text().splitlines()]
    for query in (q.training_runs("churn", "4"), q.pipeline_runs(("b-1", "b-2")), q.prediction("req-1"),
                  q.alert_lines(ALERT["fingerprint"]), q.pipeline_runs(("b-1",))):
        in_loki = [json.loads(e.line) for e in receiver.select(query.logql())]
        assert in_loki == [line for line in lines if query.matches(line)], query.logql()
    assert len(receiver.select(q.pipeline_runs(("b-1",)).logql())) == 1


def test_the_command_prints_the_chain_and_says_what_is_missing(recorded: dict, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    assert main(["lineage", "churn", "4", "--logs", str(recorded["path"])]) == 0
    out = capsys.readouterr().out
    assert f"training run {recorded['four'].run_id} of pipeline trainer: success" in out
    assert "triggered by alert FeatureDriftHigh (firing, fingerprint 9a8b7c6d5e4f3a2b" in out
    assert "data batches: b-1, b-2" in out and "batch b-2: run" in out
    assert "missing: Prometheus: no --prometheus URL given" in out
    nobody = f"http://127.0.0.1:{free_port()}"
    assert main(["lineage", "churn", "4", "--loki", nobody, "--prometheus", nobody]) == 1
    out = capsys.readouterr().out
    assert f"Loki at {nobody} did not answer" in out and f"Prometheus at {nobody} did not answer" in out
    assert main(["lineage", "churn"]) == 2
    assert "give MODEL VERSION, or --request-id ID" in capsys.readouterr().err
    assert main(["lineage", "churn", "4", "--request-id", "req-10"]) == 2
    assert "give either MODEL VERSION or --request-id ID, not both" in capsys.readouterr().err
    assert main(["lineage", "--request-id", "req-10"]) == 1
    assert "missing: no log source given: pass --loki URL or --logs FILE.jsonl" in capsys.readouterr().out
    assert main(["lineage", "--request-id", "req-10", "--logs", str(recorded["path"]), "--json"]) == 0
    chain = json.loads(capsys.readouterr().out)  # the version's batches, then the prediction's own
    assert chain["data_batch_ids"] == ["b-1", "b-2", "b-10"] and chain["prediction"]["request_id"] == "req-10"
    assert [r["data_batch_id"] for r in chain["pipeline_runs"]] == ["b-1", "b-10", "b-2"]  # in the order they ran


class CannedPrometheus:
    """Instant queries answered from canned label sets: the range query (seen) and the instant one (now)."""

    name = "Prometheus at http://canned"

    def __init__(self, seen: list[dict[str, str]], now: list[dict[str, str]],
                 retired: list[dict[str, str]] | None = None) -> None:
        self.seen, self.now, self.retired = seen, now, retired or []

    def series(self, expr: str) -> list[dict[str, str]]:
        if "mlscope_training_info" in expr:
            return []
        if "mlscope_model_retired_info" in expr:
            return self.retired
        return self.seen if expr.startswith("last_over_time(") else self.now


def test_serving_means_scraped_from_a_service_now() -> None:
    """A training job's pushed model_info is not serving, nor a version seen earlier that no service exposes now."""
    info = {"__name__": "mlscope_model_info", "model": "churn", "model_version": "4",
            "training_data_fingerprint": "sha256:4"}
    demo, pushed = {**info, "job": "demo", "instance": "a:1"}, {**info, "job": "mlscope-pipelines"}
    gone = {**info, "job": "demo", "instance": "b:1"}
    found = trace("churn", "4", prometheus=CannedPrometheus([demo, pushed, gone], [demo, pushed]))  # type: ignore
    strip = [{k: v for k, v in s.items() if k != "__name__"} for s in (demo, pushed, gone)]
    assert (found.serving, found.pushed, found.not_serving) == ([strip[0]], [strip[1]], [strip[2]])
    out = render_text(found)
    assert "serving now (mlscope_model_info scraped from a service): training_data_fingerprint=sha256:4, job=demo" \
        in out
    assert "registered by a training job, not serving (mlscope_model_info pushed)" in out
    assert "not serving now (mlscope_model_info seen, gone now: stopped, or retired without a marker)" in out
    # One source names the fingerprint: nothing to compare, and it says so (never "agree").
    assert "fingerprint from one source only, nothing to compare: mlscope_model_info sha256:4" in out
    assert "agree" not in out and found.as_dict()["fingerprint_sources"] == 1


def test_a_retired_version_is_said_retired_and_its_role_is_past() -> None:
    """demo-classifier 1.0.0 after a promotion: its model_info (role=stable) is gone, its retired marker is there."""
    info = {"model": "demo-classifier", "model_version": "1.0.0", "job": "demo", "role": "stable"}
    marker = {"model": "demo-classifier", "model_version": "1.0.0", "job": "demo"}
    out = render_text(trace("demo-classifier", "1.0.0", prometheus=CannedPrometheus(  # type: ignore[arg-type]
        [info], [], [marker])))
    assert "retired (mlscope_model_retired_info), not serving now: job=demo, was role=stable" in out
    assert "role=stable" not in out.replace("was role=stable", "")


def test_the_command_refuses_a_url_without_scheme_and_diagnoses_only_sources_that_answered(
        recorded: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lineage", "churn", "4", "--prometheus", "127.0.0.1:9090"]) == 2
    assert "--prometheus '127.0.0.1:9090': not an http:// or https:// URL" in capsys.readouterr().err
    assert main(["lineage", "churn", "4", "--loki", "localhost:3100"]) == 2
    assert "--loki 'localhost:3100': not an http:// or https:// URL with a host (e.g. http://127.0.0.1:3100)" \
        in capsys.readouterr().err
    nobody = f"http://127.0.0.1:{free_port()}"
    assert main(["lineage", "churn", "4", "--loki", nobody]) == 1
    out = capsys.readouterr().out
    assert out.count(f"Loki at {nobody} did not answer") == 1  # once, not once per query
    assert "the training job did not name the version" not in out  # Loki did not answer: nothing to say of the job
    assert main(["lineage", "churn", "999", "--loki", nobody, "--logs", str(recorded["path"])]) == 1
    out = capsys.readouterr().out
    assert f"no training_run_end line of churn 999 in files {recorded['path']}:" in out  # the file answered
    # An error page of several lines (a proxy's, Loki's "parse error ...\n") is one line of the output.
    from http.server import BaseHTTPRequestHandler

    from mlscope._http import reply, serve_in_thread

    class ErrorPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply(self, 400, b"<html>\n<body>bad query\n</body>\n</html>\n", "text/html")

        def log_message(self, *args: object) -> None:
            pass

    server = serve_in_thread(ErrorPage, port := free_port(), "127.0.0.1", "error-page")
    try:
        assert main(["lineage", "churn", "4", "--loki", f"http://127.0.0.1:{port}",
                     "--prometheus", f"http://127.0.0.1:{port}"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert "answered HTTP 400: <html> <body>bad query </body> </html>" in out
    assert "" not in out.rstrip("\n").split("\n")  # no blank line


def test_a_log_file_that_is_not_json_lines_is_said_and_counted(recorded: dict, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "app.log"
    plain.write_text("INFO started\nINFO training\n\n")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(recorded["path"].read_text() + "a plain line\n")
    assert main(["lineage", "churn", "4", "--logs", str(plain), "--logs", str(mixed)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {plain} is not a JSON-lines file: none of its 2 lines is a JSON object" in out
    assert f"warning: {mixed}: 1 of {len(mixed.read_text().splitlines())} lines are not JSON objects (skipped)" in out
