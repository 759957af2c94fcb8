"""Cost of the adaptive alerts at N model versions: series added and rule-group evaluation time.

A target serves each version's signal inputs (the series the anomaly rules read: request rate, the requests and
errors counters, p95, prediction-log records, PSI of 4 features, realised and estimated accuracy with their
traffic); a day of each
signal's residual and an hour of its smoothed value at each seasonal offset are backfilled, so the spread's 1-day
window and the offsets hold what they hold in production. Prometheus evaluates the generated anomaly groups
(default profile; their interval shortened to 5 s to measure sooner) and reports
``prometheus_rule_group_last_duration_seconds``.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

import anomaly_harness as h
from common import Row

FEATURES = 4
INTERVAL = "5s"


def _inputs(n: int) -> bytes:
    from mlscope.catalog import drift as drift_cat
    from mlscope.catalog import logs as logs_cat
    from mlscope.catalog import serving as cat
    from mlscope.catalog.quality import RECORDED_BY_LEVEL

    q = RECORDED_BY_LEVEL["model_version"]
    lines = []
    for i in range(n):
        v = f'model="m",model_version="v{i}"'
        for name, value, window in ((cat.REQUEST_RATE.name, 10, "5m"), (cat.ERROR_RATIO.name, 0.001, "5m"),
                                    (cat.LATENCY_P95.name, 0.08, "5m"),
                                    (q["mlscope_quality_accuracy:ratio"].name, 0.9, "1h"),
                                    (q["mlscope_quality_labelled:increase"].name, 500, "1h"),
                                    (q["mlscope_quality_estimated_accuracy:ratio"].name, 0.9, "1h"),
                                    (q["mlscope_quality_expected_predictions:increase"].name, 500, "1h")):
            lines.append(f'{name}{{{v},window="{window}"}} {value}')
        now = time.time()  # counters that grow: 10 requests a second, 0.1 % failed, every line logged
        lines += [f'{logs_cat.PREDICTION_LOG_RECORDS.name}{{{v},decision="sampled"}} {10 * now:.0f}',
                  f'{cat.PREDICTIONS.name}{{{v}}} {10 * now:.0f}',
                  f'{cat.PREDICTION_ERRORS.name}{{{v}}} {now / 100:.0f}']
        for f in range(FEATURES):
            lines.append(f'{drift_cat.PSI.name}{{{v},feature="f{f}",window="1h"}} 0.03')
            lines.append(f'{drift_cat.BIN_INCREASE.name}{{{v},feature="f{f}",window="1h"}} 5000')
    return ("\n".join(lines) + "\n").encode()


def _history(n: int, now: float, offsets: list[float]) -> dict[int, list[str]]:
    from mlscope.rules.anomaly import SOURCES

    series = []
    day = np.arange(now - 86400, now - 7200, 60.0)
    for i in range(n):
        for s in SOURCES:
            features = [f"f{f}" for f in range(FEATURES)] if s.level == "feature" else [None]
            for feature in features:
                labels = (("model", "m"), ("model_version", f"v{i}"), ("signal", s.signal)) + (
                    (("feature", feature),) if feature else ())
                labels = tuple(sorted(labels))
                series.append(((s.spec("residual"), labels), day, np.abs(np.sin(day / 3000)) * 0.01))
                for o in offsets:
                    ts = np.arange(now - o - 3600, now - o + 600, 60.0)
                    series.append(((s.spec("smoothed"), labels), ts, np.full(ts.size, 1.0)))
    return h.openmetrics(series)


def measure(n: int) -> dict[str, float]:
    import scale_harness
    from mlscope.rules import anomaly
    from mlscope.rules.config import DEFAULT, RuleConfig, duration_seconds

    cfg = RuleConfig(profile=DEFAULT)
    groups = [dict(g, interval=INTERVAL) for g in anomaly.groups(cfg)]
    target = scale_harness.serve(lambda: _inputs(n))
    with h.temporary() as name:
        tmp = Path(name)
        (tmp / "anomaly.yml").write_text(yaml.safe_dump({"groups": groups}))
        now = time.time()
        replay = h.Replay(tmp, now, now, rule_files=[tmp / "anomaly.yml"])
        replay.extra = {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL}
        offsets = [duration_seconds(o) for o in cfg.profile.anomaly.offsets]
        job = {"job_name": "inputs", "static_configs": [{"targets": [f"127.0.0.1:{target.server_address[1]}"]}]}
        try:
            replay.load(_history(n, now, offsets))
            replay.stop()
            config = h.promconfig.prometheus_config(dataclasses.replace(DEFAULT, scrape_interval=INTERVAL,
                                                                        evaluation_interval=INTERVAL),
                                                    [job], [tmp / "anomaly.yml"])
            conf = h.promconfig.write_config(tmp / "prometheus.yml", config)
            replay.prom = h.servers.prometheus(conf, replay.data, exemplars=False, retention="400d").start(timeout=180)
            time.sleep(6 * duration_seconds(INTERVAL))
            own: dict[tuple[str, str], float] = {}
            for fam in text_string_to_metric_families(requests.get(replay.prom.url + "/metrics", timeout=30).text):
                for s in fam.samples:
                    own[(s.name, s.labels.get("rule_group", ""))] = s.value
            seconds = {g.split(";")[-1]: v for (metric, g), v in own.items()
                       if metric == "prometheus_rule_group_last_duration_seconds" and "anomaly" in g}
            count = requests.get(replay.prom.url + "/api/v1/query", timeout=30, params={
                "query": 'count({__name__=~".+:mlscope_anomaly:.+"})'}).json()["data"]["result"]
            return {"series": float(count[0]["value"][1]) if count else 0.0,
                    "recording_ms": 1000 * seconds.get("mlscope-anomaly-recording", float("nan")),
                    "alerts_ms": 1000 * seconds.get("mlscope-anomaly-alerts", float("nan"))}
        finally:
            replay.stop()
            target.shutdown()
            target.server_close()


def rows(sizes: tuple[int, ...]) -> list[Row]:
    results: dict[int, dict[str, Any]] = {n: measure(n) for n in sizes}
    base = results[sizes[0]]
    out = []
    for n, r in results.items():
        out += [
            Row("scale", f"{n:,} model versions: series the adaptive rules add (7 signals, {FEATURES} features)",
                r["series"], "series", f"{sizes[0]} model versions", base["series"]),
            Row("scale", f"{n:,} model versions: anomaly recording-group evaluation", r["recording_ms"], "ms",
                f"{sizes[0]} model versions", base["recording_ms"]),
            Row("scale", f"{n:,} model versions: anomaly alert-group evaluation", r["alerts_ms"], "ms",
                f"{sizes[0]} model versions", base["alerts_ms"]),
        ]
    return out
