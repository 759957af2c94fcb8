"""The quality exporter process, its HTTP endpoints, file import, late ground truth, and real Prometheus."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sklearn import metrics as skm

from mlscope import ModelMonitor
from mlscope.quality import Quality, estimate
from mlscope.quality.server import QualityServer
from mlscope.stack.servers import free_port
from support.helpers import promtool_check_metrics, require_binary
from support.quality_exporter import TOKEN, post, url
from support.quality_helpers import make_pairs


@pytest.fixture
def server() -> Iterator[QualityServer]:
    registry = CollectorRegistry()
    quality = Quality(registry=registry, windows={"1m": 60.0, "5m": 300.0}, pending_ttl_s=0)
    srv = QualityServer("127.0.0.1", free_port(), quality, registry, token=TOKEN).start()
    yield srv
    srv.stop()
    quality.close()


def test_http_endpoints_authenticate_validate_and_join(server: QualityServer) -> None:
    quality = server.quality
    quality.register("svc", "2", "classification", ["0", "1"])
    predictions = [{"model": "svc", "model_version": "2", "request_id": f"r{i}", "output": i % 2,
                    "proba": [0.4, 0.6]} for i in range(4)]
    ghost = {"model": "ghost", "model_version": "9", "request_id": "g", "output": 1}
    refused = post(server, "/predictions", {"predictions": [*predictions, ghost]})  # refused whole: resend later
    assert refused.status_code == 422 and refused.json()["stored"] == 0
    assert post(server, "/predictions", {"predictions": predictions}).json() == {"stored": 4, "received": 4}
    assert post(server, "/outcomes", {"outcomes": [{"request_id": "r0", "y_true": 0}]}, token=None).status_code == 401
    assert post(server, "/outcomes", {"outcomes": []}, token="wrong").status_code == 401
    response = post(server, "/outcomes", {"outcomes": [{"request_id": "r0", "y_true": 0},
                                                       {"request_id": "r1", "y_true": "1"},
                                                       {"request_id": "r1", "y_true": 1}, "junk",
                                                       {"request_id": "zz", "y_true": 1}]})
    assert response.status_code == 200
    assert response.json() == {"joined": 2, "duplicate": 1, "invalid_request_id": 1, "unknown_request": 1}
    assert post(server, "/outcomes", [{"request_id": "r2", "y_true": 1.0}]).json() == {"joined": 1}
    assert post(server, "/outcomes", b"{not json").status_code == 400
    assert post(server, "/outcomes", {"outcomes": 3}).status_code == 400
    too_big = requests.post(url(server, "/outcomes"), headers={"Authorization": f"Bearer {TOKEN}",
                                                               "Content-Length": str(64 * 1024 * 1024)},
                            data=b"", timeout=10)
    assert too_big.status_code == 413
    assert requests.get(url(server, "/nope"), timeout=10).status_code == 404
    metrics = requests.get(url(server, "/metrics"), timeout=10)  # no token needed to scrape
    assert metrics.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    stored = {s.labels["model"]: s.value for s in families["mlscope_quality_predictions_stored"].samples
              if s.name.endswith("_total")}
    assert stored == {"svc": 4.0}
    dropped = {s.labels["reason"]: s.value for s in families["mlscope_quality_dropped"].samples
               if s.name.endswith("_total")}
    assert dropped == {"unknown_version": 1.0}
    require_binary("promtool")
    result = promtool_check_metrics(metrics.text)
    assert result.returncode == 0, result.stdout + result.stderr


# -- real Prometheus, real exporter, known pairs ---------------------------------------------------

def test_recording_rules_on_real_prometheus_match_sklearn(prometheus: Any) -> None:
    registry = CollectorRegistry()
    quality = Quality(registry=registry, windows={"1m": 60.0, "5m": 300.0}, flush_interval_s=0.01)
    srv = QualityServer("127.0.0.1", free_port(), quality, registry).start()
    classes = ["a", "b", "c", "d"]
    clf = ModelMonitor("e2e-clf", "1", registry=registry, quality=quality, classes=classes)
    reg = ModelMonitor("e2e-reg", "1", registry=registry, quality=quality, task="regression")
    try:
        prometheus.scrape("quality", f"127.0.0.1:{srv.server_port}")  # every counter is seen at 0 first
        y_true, y_pred, proba = make_pairs(2000, classes, seed=11, imbalance=[0.6, 0.25, 0.1, 0.05],
                                           accuracy=0.4, never_predicted="d")
        for i in range(len(y_pred)):
            clf.record_prediction(0.001, output=y_pred[i], proba=proba[i], request_id=f"c{i}")
        rng = np.random.default_rng(5)
        r_true = np.round(rng.normal(10, 5, 500), 1)
        r_true[:25] = 0.0
        r_pred = r_true + rng.normal(0, 2, 500)
        for i, value in enumerate(r_pred):
            reg.record_prediction(0.001, output=float(value), request_id=f"v{i}")
        quality.flush()
        outcomes = [{"request_id": f"c{i}", "y_true": y} for i, y in enumerate(y_true[:1500])]
        outcomes += [{"request_id": f"v{i}", "y_true": float(y)} for i, y in enumerate(r_true)]
        assert post(srv, "/outcomes", {"outcomes": outcomes}, token=None).json() == {"joined": 2000}
        api = prometheus.api
        api.wait_for('model_version:mlscope_quality_labelled:increase{model="e2e-clf",window="1m"} > 0', timeout=30)
        time.sleep(3)  # two more scrapes and evaluations: every series has its final value
        at = time.time()

        def one(expr: str) -> float:
            result = api.query(expr, at)
            assert len(result) == 1, (expr, result)
            return float(result[0]["value"][1])

        def per_class(expr: str) -> dict[str, float]:
            return {r["metric"]["class"]: float(r["value"][1]) for r in api.query(expr, at)}

        w = 'model="e2e-clf",window="1m"'
        yt, yp = y_true[:1500], y_pred[:1500]
        seen = sorted(set(yt) | set(yp))
        assert "d" in seen and "d" not in set(yp)
        assert one(f"model_version:mlscope_quality_accuracy:ratio{{{w}}}") == pytest.approx(
            skm.accuracy_score(yt, yp), rel=1e-9)
        for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
            got = per_class(f"model_version_class:mlscope_quality_{name}:ratio{{{w}}}")
            expected = fn(yt, yp, labels=seen, average=None, zero_division=0)
            assert got == pytest.approx(dict(zip(seen, expected, strict=True)), rel=1e-9, abs=1e-12), name
            assert one(f"model_version:mlscope_quality_{name}:macro{{{w}}}") == pytest.approx(
                fn(yt, yp, average="macro", zero_division=0), rel=1e-9)
        assert one(f"model_version:mlscope_quality_coverage:ratio{{{w}}}") == pytest.approx(0.75, rel=1e-9)
        est = estimate(proba, y_pred, classes)
        assert one(f"model_version:mlscope_quality_estimated_accuracy:ratio{{{w}}}") == pytest.approx(
            est.accuracy, rel=1e-9)
        assert one(f"model_version:mlscope_quality_estimated_f1:macro{{{w}}}") == pytest.approx(
            est.f1_macro, rel=1e-9)
        aucs = per_class(f'mlscope_quality_roc_auc{{{w},segment=""}}')
        bounds = per_class(f'mlscope_quality_roc_auc_max_error{{{w},segment=""}}')
        exact = {c: skm.roc_auc_score(yt == c, proba[:1500, k]) for k, c in enumerate(classes)}
        for c in classes:
            assert abs(aucs[c] - exact[c]) <= bounds[c] + 1e-12, c
        # Class d is never predicted: its scores all sit in the lowest bucket, where binning cannot rank
        # them (AUC 0.5, bound ~0.5). Spread scores are within the stated tolerance.
        assert aucs["d"] == 0.5 and bounds["d"] > 0.3
        for c in "abc":
            assert aucs[c] == pytest.approx(exact[c], abs=0.01) and bounds[c] < 0.05
        assert one(f'mlscope_quality_roc_auc_macro{{{w},segment=""}}') == pytest.approx(np.mean(list(aucs.values())))

        r = 'model="e2e-reg",window="1m"'
        nonzero = r_true != 0
        assert one(f"model_version:mlscope_quality_absolute_error:mean{{{r}}}") == pytest.approx(
            skm.mean_absolute_error(r_true, r_pred), rel=1e-9)
        assert one(f"model_version:mlscope_quality_squared_error:root_mean{{{r}}}") == pytest.approx(
            np.sqrt(skm.mean_squared_error(r_true, r_pred)), rel=1e-9)
        assert one(f"model_version:mlscope_quality_absolute_percentage_error:mean{{{r}}}") == pytest.approx(
            skm.mean_absolute_percentage_error(r_true[nonzero], r_pred[nonzero]), rel=1e-9)
    finally:
        prometheus.forget(f"127.0.0.1:{srv.server_port}")
        srv.stop()
        quality.close()
