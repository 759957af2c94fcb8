"""The parts of snapshots and reports that need no server: names, the manifest and retention, the worker's rate
limit and bounded queue, the receiver's routes and token, the size budget, the missing extra."""
from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mlscope import _runtime
from mlscope.cli import main
from mlscope.reports import ids, page, period
from mlscope.reports.fetch import Fetcher, Line, PanelData
from mlscope.reports.logs import excerpt, privacy_of
from mlscope.reports.signals import panels, panels_for
from mlscope.reports.store import PageStore, verify
from mlscope.reports.worker import SnapshotWorker
from mlscope.rules import config_for
from mlscope.stack.alertreceiver import AlertReceiver, make_server
from support.reports_data import demo_sized

START = "2026-12-01T10:00:00.5Z"


def _payload(status: str = "firing", key: str = "g", alertname: str = "ModelErrorRateHigh") -> dict[str, Any]:
    return {"version": "4", "groupKey": key, "status": status, "receiver": "r", "groupLabels": {"alertname": key},
            "commonLabels": {}, "alerts": [{"status": status, "labels": {"alertname": alertname}, "annotations": {},
                                            "startsAt": START, "endsAt": "0001-01-01T00:00:00Z",
                                            "fingerprint": "ab" + key.encode().hex()[:10]}]}


def test_the_page_name_is_what_the_template_computes() -> None:
    """sha256 of ``name=value,`` sorted by name (``range .GroupLabels.SortedPairs``) and the epoch of the first
    alert's start (``.StartsAt.Unix``: whole seconds)."""
    payload = {**_payload(), "groupLabels": {"model": "m", "alertname": "A"}}
    digest = hashlib.sha256(b"alertname=A,model=m,").hexdigest()[:16]
    assert ids.page_id(payload) == f"{digest}-1796119200"
    assert ids.parse_time("2026-12-01T11:00:00.999999999+01:00") == pytest.approx(1796119200.999999999)
    template = (Path(__file__).resolve().parents[2] / "alerting" / "templates" / "mlscope.tmpl").read_text()
    assert "range .GroupLabels.SortedPairs" in template and "(index .Alerts 0).StartsAt.Unix" in template


def test_the_manifest_keeps_each_hash_prunes_old_pages_and_catches_changes(tmp_path: Path) -> None:
    store = PageStore(tmp_path, retention_s=100)
    store.write("0123456789abcdef-1", "<p>firing</p>", "firing", at=1000)
    store.write("0123456789abcdef-1", "<p>resolved</p>", "resolved", at=1010)
    store.write("fedcba9876543210-2", "<p>other</p>", "firing", at=1050)
    entry = store.manifest()["pages"]["0123456789abcdef-1.html"]
    assert entry["sha256"] == hashlib.sha256(b"<p>resolved</p>").hexdigest()
    assert [h["status"] for h in entry["history"]] == ["firing"]
    assert verify(tmp_path) == []
    (tmp_path / "0123456789abcdef-1.html").write_text("<p>edited</p>")
    (tmp_path / "1111111111111111-3.html").write_text("<p>stray</p>")
    assert verify(tmp_path) == ["0123456789abcdef-1.html: changed since it was written (sha256 differs from the "
                                "manifest's)", "1111111111111111-3.html: not in the manifest"]
    store.write("fedcba9876543210-2", "<p>other</p>", "resolved", at=1101)  # the first page is 101 s old
    assert not (tmp_path / "0123456789abcdef-1.html").exists()
    assert list(store.manifest()["pages"]) == ["fedcba9876543210-2.html"]
    assert store.path("../manifest.json") is None and store.path("fedcba9876543210-2.html") is not None
    with pytest.raises(ValueError, match="not a page name"):
        store.write("../x", "", "firing")


def test_the_worker_never_blocks_rate_limits_per_group_and_counts(tmp_path: Path) -> None:
    gate = threading.Event()

    def build(payload: Any) -> str:
        gate.wait(10)
        if payload["groupKey"] == "broken":
            raise RuntimeError("no")
        return "<p>page</p>"

    worker = SnapshotWorker(PageStore(tmp_path), build, min_interval_s=60, queue_size=2)
    began = time.perf_counter()
    assert worker.submit(_payload(key="a"), at=0)
    assert not worker.submit(_payload(key="a"), at=30)            # same group, same status, within 60 s
    assert worker.submit(_payload("resolved", key="a"), at=31)    # a change of status always gets its page
    results = [worker.submit(_payload(key=k), at=32) for k in ("b", "c", "broken")]
    assert time.perf_counter() - began < 0.5
    gate.set()
    assert worker.wait_idle(10)
    skipped = {r: worker.skipped.labels(r)._value.get() for r in ("rate_limited", "queue_full")}
    assert skipped["rate_limited"] == 1 and skipped["queue_full"] == results.count(False) >= 1
    pages = PageStore(tmp_path).manifest()["pages"].values()
    assert worker.written.labels("firing")._value.get() + worker.written.labels("resolved")._value.get() \
        == sum(1 + len(entry["history"]) for entry in pages)  # a resolved group rewrites its page
    assert worker.submit(_payload(key="broken"), at=200) and worker.wait_idle(10)
    assert worker.failures.labels("build")._value.get() >= 1
    worker.close()


def test_the_receiver_hands_state_changes_to_the_worker_and_serves_pages_behind_its_token(tmp_path: Path) -> None:
    written: list[str] = []

    def build(payload: Any) -> str:
        written.append(payload["status"])
        return f"<p>{payload['status']}</p>"

    worker = SnapshotWorker(PageStore(tmp_path), build)
    lines = (tmp_path / "lines").open("w")
    receiver = AlertReceiver(output=lines, snapshots=worker, token="s3cret", page_url="http://127.0.0.1:1")
    body = json.dumps(_payload()).encode()
    receiver.handle(body)
    receiver.handle(body)  # a re-send: no state change, no snapshot
    assert worker.wait_idle(10) and written == ["firing"]
    ident = ids.page_id(_payload())
    assert json.loads((tmp_path / "lines").read_text())["snapshot_url"] == f"http://127.0.0.1:1/snapshots/{ident}.html"
    server = make_server(receiver, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    group = f"{base}/snapshots/group?labels=alertname%3Dg%2C&start=1796119200"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(group, timeout=5)
        assert refused.value.code == 401
        for url in (group, f"{base}/snapshots/{ident}.html"):
            request = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret"})
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.read() == b"<p>firing</p>"
        with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as response:  # the rest needs no token
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()
        receiver.close()
        lines.close()


def test_an_alert_gets_its_family_panels_and_an_unknown_one_the_serving_ones() -> None:
    assert panels_for("FeatureDriftHigh") == ("drift", ("drift", "prediction_drift", "traffic"))
    assert panels_for("ModelGroundTruthCoverageLow")[1][:2] == ("quality", "coverage")
    assert panels_for("SomebodysAlert") == ("unknown", ("traffic", "errors", "latency"))
    fast = panels(config_for("fast"))
    assert 'window="1m"' in fast["errors"].queries[0].expr and fast["errors"].threshold == 0.05


class _Fetcher(Fetcher):
    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return [{"exemplars": [{"labels": {"request_id": "fast"}, "value": "0.01"},
                               {"labels": {"request_id": "slow"}, "value": "2.5"}]}]


class _Loki:
    name = "loki"

    def lines(self, query: Any, start: float, end: float) -> list[dict[str, Any]]:
        return [{"request_id": r, "email": "a@b.c", "user": "ann", "ts": str(i), "payload": "x" * (900 if i else 1)}
                for i, r in enumerate(("other", "fast", "slow"))]


def test_log_lines_put_the_exemplars_first_and_pass_the_privacy_rules() -> None:
    got = excerpt(_Loki(), _Fetcher(None), "m", "v", 0, 1,  # type: ignore[arg-type]
                  privacy_of(drop=["email"], hash_=["user"], key="k"))
    assert [x["request_id"] for x in got.lines] == ["slow", "fast", "other"]
    assert [x["exemplar"] for x in got.lines] == [True, True, False]
    assert "a@b.c" not in json.dumps(got.as_dict()) and "ann" not in json.dumps(got.as_dict())
    assert "hmac-sha256:" in got.lines[2]["text"] and got.truncated == 2  # two lines cut to MAX_LINE_CHARS


def test_a_page_over_its_budget_drops_samples_then_logs_and_says_so() -> None:
    data = PanelData(panels(config_for("default"))["traffic"],
                     lines=[Line("requests/s", "x", [(float(t), 1.0) for t in range(240)])])
    built = page.Page("report", "t", "s", {"versions": [{"model": "m", "model_version": "v",
                                                         "panels": [page.panel_context(data, draw=False)]}],
                                           "logs": {"lines": [{"ts": "", "exemplar": False, "text": "y" * 5000}] * 40,
                                                    "request_ids": [], "missing": [], "truncated": 0}},
                      {"versions": [{"panels": [data.as_dict()]}]})
    html = page.within_budget(built, budget=30_000)
    assert len(html.encode()) <= 30_000
    assert "the JSON twin&#39;s samples were left out" in html and "log lines were left out" in html
    assert "40 line(s) left out" in html


def test_alert_episodes_from_alerts_samples() -> None:
    def series(state: str, times: range) -> dict[str, Any]:
        return {"metric": {"alertname": "A", "alertstate": state, "model": "m"}, "values": [[t, "1"] for t in times]}

    found = period.episodes([series("pending", range(100, 400, 15)), series("firing", range(400, 1000, 15)),
                             series("firing", range(5000, 5100, 15))], 15, 6000)
    assert [(e.detect_s, e.resolve_s) for e in found] == [(300.0, 600.0), (0.0, 105.0)]
    still = period.episodes([series("firing", range(100, 400, 15))], 15, 400)
    assert still[0].resolved_at is None and still[0].resolve_s is None


def test_the_report_command_names_its_missing_extra(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(_runtime, "_importable", lambda name: name not in ("jinja2", "matplotlib"))
    assert main(["report", "--model", "m"]) == 2
    assert "pip install 'mlscope[reports]'" in capsys.readouterr().err


def test_the_receiver_command_builds_its_worker_from_its_options(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from mlscope.cli import parser
    from mlscope.stack.commands import _snapshots

    args = parser(only="alert-receiver").parse_args(
        ["alert-receiver", "--snapshots", str(tmp_path), "--snapshot-retention", "30d", "--snapshot-interval", "10",
         "--redact-drop", "email"])
    worker = _snapshots(args, "http://127.0.0.1:9095", CollectorRegistry())
    try:
        assert worker.store.retention_s == 30 * 86400 and worker.min_interval_s == 10
    finally:
        worker.close()
    assert _snapshots(parser(only="alert-receiver").parse_args(["alert-receiver"]), "", CollectorRegistry()) is None


def test_the_receiver_without_the_reports_extra_starts_and_says_snapshots_are_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from prometheus_client import CollectorRegistry

    from mlscope.cli import parser
    from mlscope.stack.commands import _snapshots

    monkeypatch.setattr(_runtime, "_importable", lambda name: name not in ("jinja2", "matplotlib"))
    args = parser(only="alert-receiver").parse_args(["alert-receiver", "--snapshots", str(tmp_path)])
    assert _snapshots(args, "", CollectorRegistry()) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "snapshots are off" in err[0] and "mlscope[reports]" in err[0]


def test_both_receivers_read_the_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlscope.stack.native import NativeStack, Ports
    from support.helpers import free_port

    monkeypatch.setenv("MLSCOPE_RECEIVER_TOKEN", "s3cret")
    stack = NativeStack(tmp_path, demo=False, ports=Ports(alert_receiver=free_port()))
    stack._start_alert_receiver(None)  # what `mlscope up` runs
    try:
        assert stack._receiver.token == "s3cret"
    finally:
        for server in stack._http:
            server.shutdown()
            server.server_close()
        for closer in reversed(stack._closers):
            closer.close()


def _prometheus_answering(monkeypatch: pytest.MonkeyPatch, answer: Any) -> list[str]:
    """Prometheus's API as ``answer(endpoint, expr)`` gives it (a list of samples, or raises); the queries asked."""
    from mlscope.lineage.sources import PrometheusSource

    asked: list[str] = []

    def api(self: Any, endpoint: str, params: dict[str, Any], expr: str) -> list[dict[str, Any]]:
        asked.append(expr)
        return answer(endpoint, expr)  # type: ignore[no-any-return]

    monkeypatch.setattr(PrometheusSource, "_api", api)
    return asked


def test_report_exit_codes_name_the_known_models_and_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from mlscope.lineage.sources import SourceError

    info = [{"metric": {"model": "demo-classifier", "model_version": v}, "value": [0, "1"]} for v in ("1.0.0", "1.1.0")]
    _prometheus_answering(monkeypatch, lambda endpoint, expr: info if "mlscope_model_info" in expr
                          and endpoint == "query" else [])
    out = str(tmp_path / "r.html")
    assert main(["report", "--model", "demo-classifer", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "no model 'demo-classifer'" in err and "known models: demo-classifier" in err
    assert main(["report", "--model", "demo-classifier", "--version", "9.9", "--out", out]) == 2
    assert "known versions: 1.0.0, 1.1.0" in capsys.readouterr().err and not Path(out).exists()
    assert main(["report", "--model", "demo-classifier", "--version", "1.0.0", "--out", out]) == 1  # no data

    def down(endpoint: str, expr: str) -> list[dict[str, Any]]:
        raise SourceError("Prometheus at http://127.0.0.1:1 did not answer (Connection refused)")

    _prometheus_answering(monkeypatch, down)
    assert main(["report", "--model", "demo-classifier", "--out", out]) == 1
    assert "did not answer" in capsys.readouterr().err


def test_verify_of_a_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--verify", str(tmp_path / "nonexistent")]) == 2
    err = capsys.readouterr()
    assert "no such directory" in err.err and "MISMATCH" not in err.out


def test_the_report_finds_the_profile_from_the_windows_and_lists_sections_without_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def answer(endpoint: str, expr: str) -> list[dict[str, Any]]:
        if endpoint == "query" and expr.startswith("group by (window)"):
            return [{"metric": {"window": w}, "value": [0, "1"]} for w in ("1m", "5m")]  # what the fast stack records
        if endpoint == "query_range" and expr.startswith('model_version:mlscope_predictions:rate{'):
            return [{"metric": {}, "values": [[1.0, "2"], [2.0, "3"]]}]
        return []

    asked = _prometheus_answering(monkeypatch, answer)
    out = tmp_path / "r.html"
    assert main(["report", "--model", "m", "--version", "1", "--since", "1h", "--out", str(out)]) == 1
    assert "profile fast" in capsys.readouterr().err and not [q for q in asked if 'window="1h"' in q]
    missing = json.loads(out.with_suffix(".json").read_text())["missing"]
    assert any(m.startswith("Error ratio (1m) of m 1: no data") and "--profile default" in m for m in missing)
    assert not any(m.startswith("Traffic") for m in missing)  # it had data
    assert "Error ratio (1m) of m 1: no data" in out.read_text()  # in "What this page could not read"


def test_mlscope_up_gives_the_templates_its_receiver_and_prometheus_its_own_address(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlscope.stack import servers
    from mlscope.stack.amconfig import write_alertmanager_config
    from mlscope.stack.assets import asset

    config = write_alertmanager_config(tmp_path / "alertmanager.yml", asset("alerting/alertmanager.yml"),
                                       "http://127.0.0.1:19095/alerts", receiver_page_url="http://127.0.0.1:19095")
    import yaml

    templates = [Path(t) for t in yaml.safe_load(config.read_text())["templates"]]
    assert templates and all(t.parent == tmp_path / "templates" for t in templates)
    text = (tmp_path / "templates" / "mlscope.tmpl").read_text()
    assert '{{ define "mlscope.receiver_url" }}http://127.0.0.1:19095{{ end }}' in text and ":9095" not in text
    monkeypatch.setattr(servers, "find_binary", lambda names: names[0])  # built, not started
    assert "--web.external-url=http://127.0.0.1:19090" in servers.prometheus(tmp_path / "p.yml", tmp_path, 19090).argv


def test_snapshot_lineage_reads_the_stack_s_log_files_and_says_when_prometheus_is_down(tmp_path: Path) -> None:
    from mlscope.reports.sources import Sources, lineage_of
    from mlscope.stack.native import NativeStack

    stack = NativeStack(tmp_path)
    training = stack.lineage_files()[0]
    training.parent.mkdir(parents=True)
    training.write_text(json.dumps({"event": "training_run_end", "model": "m", "model_version": "1", "run_id": "r1",
                                    "status": "success", "training_data_fingerprint": "abc", "ts": "t"}) + "\n")
    sources = Sources("http://127.0.0.1:1", log_files=stack.lineage_files())  # only the training log exists
    sources.fetcher.down = "Prometheus at http://127.0.0.1:1 did not answer (refused)"
    rows = dict(lineage_of(sources, "m", "1")[0]["rows"][:2])
    assert rows["training run"].startswith("r1: success")
    assert rows["fingerprints agree"].startswith("not compared")  # one source named it: no agreement claimed
    notes = [v for k, v in lineage_of(sources, "m", "1")[0]["rows"] if k == "missing"]
    assert any("not asked: Prometheus at http://127.0.0.1:1 did not answer" in n for n in notes)
    assert not any("no --prometheus URL given" in n or "no --loki URL" in n for n in notes)


def test_an_earlier_page_of_a_group_points_to_its_successor_and_says_when_it_resolved(tmp_path: Path) -> None:
    store = PageStore(tmp_path)
    first, later = ids.snapshot_id("alertname=A,", 100), ids.snapshot_id("alertname=A,", 200)
    other = ids.snapshot_id("alertname=B,", 50)
    store.write(other, "<html><body><p>b</p></body></html>", "firing", at=1000)
    store.write(first, "<html><body data-kind='snapshot'><p>one</p></body></html>", "firing", at=1000)
    store.write(later, "<html><body><p>two</p></body></html>", "firing", at=1100)
    page = (tmp_path / f"{first}.html").read_text()
    assert f'Superseded by <a href="{later}.html">' in page and page.index("successor") > page.index("<body")
    entry = store.manifest()["pages"][f"{first}.html"]
    assert entry["status"] == "superseded" and entry["successor"] == f"{later}.html"
    assert [h["status"] for h in entry["history"]] == ["firing"]
    store.write(later, "<html><body><p>two resolved</p></body></html>", "resolved", at=1200)
    page = (tmp_path / f"{first}.html").read_text()
    assert "resolved at 1970-01-01T00:20:00Z" in page and page.count('class="successor"') == 1
    pages = store.manifest()["pages"]
    assert pages[f"{first}.html"]["status"] == "resolved" and len(pages[f"{first}.html"]["history"]) == 2
    assert pages[f"{other}.html"]["status"] == "firing" and "successor" not in pages[f"{other}.html"]  # another group
    assert verify(tmp_path) == []


def test_mlscope_down_closes_the_quality_store_only_once_nothing_can_scrape_it(tmp_path: Path) -> None:
    import socket

    from mlscope.stack.native import NativeStack, Ports
    from support.helpers import free_port

    port = free_port()
    stack = NativeStack(tmp_path, demo=False, ports=Ports(quality_exporter=port))
    stack._start_quality_exporter()
    quality = stack._closers[-1]
    served_at_close: list[bool] = []
    close = quality.close

    def closing() -> None:
        with socket.socket() as probe:
            served_at_close.append(probe.connect_ex(("127.0.0.1", port)) == 0)
        close()

    quality.close = closing
    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).close()
    stack.stop()
    assert served_at_close == [False]  # a scrape then got a refused connection, not a closed database


def test_a_resolved_drift_alert_reads_its_value_at_the_end_not_the_firing_above() -> None:
    from mlscope.reports.snapshot import _alert_row

    drift = panels(config_for("default"))["drift"]
    data = PanelData(drift, lines=[Line("age", "x", [(0.0, 0.4), (60.0, 0.142)])],
                     thresholds=[Line("threshold age", "t", [(0.0, 0.282), (60.0, 0.282)])])
    versions = [{"model": "m", "model_version": "1", "panels": [page.panel_context(data, draw=False)]}]
    alert = {"status": "resolved", "startsAt": "", "endsAt": "", "annotations": {
        "description": "PSI of feature age of m 1 is 0.142 over the last 1h, above its threshold 0.282"},
        "labels": {"alertname": "FeatureDriftHigh", "model": "m", "model_version": "1", "feature": "age"}}
    row = _alert_row(alert, versions)
    assert "above its threshold 0.282" not in row["description"]
    assert "now 0.142, threshold 0.282" in row["description"]
    assert _alert_row({**alert, "status": "firing"}, versions)["description"].endswith("above its threshold 0.282")


def test_charts_span_the_page_window_and_tables_write_no_none() -> None:
    import re

    data = PanelData(panels(config_for("default"))["traffic"],
                     lines=[Line("requests/s", "x", [(3000.0 + t, 1.0) for t in range(0, 120, 15)])])
    drawn = page.panel_context(data, window=(0.0, 3600.0))
    ticks = re.findall(r">(\d\d:\d\d)<", drawn["svg"])
    assert "00:00" in ticks and len(set(ticks)) >= 4  # the hour, not the two minutes of data
    alert = {"alertname": "A", "status": "firing", "severity": "", "starts_at": "", "ends_at": "", "summary": "",
             "description": "", "labels": "feature=x " * 20}
    built = page.render(page.Page("snapshot", "t", "s", {"alerts": [alert] * 25, "versions": [
        {"model": "m", "model_version": "v", "panels": [drawn]}]}, {}))
    assert 'data-value="None"' not in built and "<summary>25 alerts (25 firing)" in built
    assert "<summary>labels</summary>" in built


def test_a_demo_sized_page_fits_its_budget_by_design_and_its_twin_file_keeps_every_sample() -> None:
    built = demo_sized()
    html = page.within_budget(built)
    assert len(html.encode()) < page.BUDGET_BYTES // 2 and not built.notes  # nothing had to be taken out
    assert html.count('data-series="f') == 3 * 2 * page.TABLE_ROWS  # ranked tables list 20 rows each
    assert "the 103 below the 20 listed are in the JSON twin" in html
    inside = json.loads(html.split('<script type="application/json"', 1)[1].split(">", 1)[1].split("</script>")[0])
    dq = inside["versions"][0]["panels"][1]["lines"]
    assert [bool(x["values"]) for x in dq[:6]] == [True] * 5 + [False] and all(x["stats"]["max"] for x in dq)
    assert all(len(x["values"]) == 240 for v in built.twin["versions"] for p in v["panels"] for x in p["lines"])
