"""Suite `reports`: building an incident snapshot and a one-week model health report for a model with 20
features, against the time of the Prometheus queries they make (a real Prometheus over a week of backfilled
recorded series, one sample a minute), and the pages' sizes against their 1 MB budget; and a page of the
demo's size (3 versions, 30 features, 123 data-quality lines each) rendered from known lines."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import Row
from mlscope.reports import page, period, snapshot
from mlscope.reports.sources import Sources
from mlscope.stack import servers
from support.reports_data import Scenario, backfill, demo_sized

RUNBOOKS = Path(__file__).resolve().parent.parent / "alerting" / "runbooks"


def _payload(s: Scenario) -> dict:
    starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.pending_until))
    labels = {"alertname": "FeatureDriftHigh", "model": s.model, "model_version": s.version, "feature": s.drifted,
              "severity": "warning"}
    return {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "r", "groupLabels": labels,
            "commonLabels": labels, "alerts": [{"status": "firing", "labels": labels, "annotations": {},
                                                "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
                                                "fingerprint": "0123456789abcdef"}]}


def _timed(build, sources: Sources) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    html = page.within_budget(build(sources))
    return time.perf_counter() - began, sources.fetcher.query_s, len(html.encode())


def suite_reports(quick: bool) -> list[Row]:
    end = int(time.time()) // 60 * 60 - 120
    days = 1 if quick else 7
    s = Scenario(end - days * 86400, end, features=20, step_s=60)
    with tempfile.TemporaryDirectory() as tmp:
        backfill(s, Path(tmp) / "data")
        config = Path(tmp) / "prometheus.yml"
        config.write_text("global: {scrape_interval: 15s}\n")
        with servers.prometheus(config, Path(tmp) / "data", exemplars=False) as prometheus:
            runs = 1 if quick else 3
            snaps = [_timed(lambda src: snapshot.build(_payload(s), src, runbooks=RUNBOOKS, at=s.firing_until),
                            Sources(prometheus.url)) for _ in range(runs)]
            reports = [_timed(lambda src: period.build(src, s.model, s.start, s.end), Sources(prometheus.url))
                       for _ in range(runs)]
    snap, rep = min(snaps), min(reports)
    demo = []
    for _ in range(1 if quick else 3):
        began = time.perf_counter()
        built = demo_sized()
        html = page.within_budget(built)
        demo.append((time.perf_counter() - began, len(html.encode()), len(built.notes)))
    fastest = min(demo)
    week = f"{days}-day"
    return [
        Row("reports", "incident snapshot, 20 features (build + render)", snap[0], "s",
            "its Prometheus queries", snap[1]),
        Row("reports", f"{week} report, 20 features (build + render)", rep[0], "s", "its Prometheus queries", rep[1]),
        Row("reports", "incident snapshot page size", snap[2] / 1000, "kB", "size budget", page.BUDGET_BYTES / 1000,
            "<= 1000 kB"),
        Row("reports", f"{week} report page size", rep[2] / 1000, "kB", "size budget", page.BUDGET_BYTES / 1000,
            "<= 1000 kB"),
        Row("reports", "demo-sized page, 3 versions x (30 features + 123 data-quality lines): render", fastest[0],
            "s", "7-day report build", rep[0]),
        Row("reports", f"demo-sized page size ({fastest[2]} budget cut(s))", fastest[1] / 1000, "kB", "size budget",
            page.BUDGET_BYTES / 1000, "<= 1000 kB"),
    ]
