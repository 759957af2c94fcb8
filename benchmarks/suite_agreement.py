"""Suite `agreement`: a shadow answer and a prediction's attributions, against the raw prometheus-client updates."""
from __future__ import annotations

import itertools

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from common import Row, per_call_us
from mlscope import ModelMonitor

FEATURES = [f"feature_{i}" for i in range(20)]


def suite_agreement(quick: bool) -> list[Row]:
    number, repeat = (20_000, 5) if quick else (100_000, 7)
    rows = []
    registry = CollectorRegistry()
    monitor = ModelMonitor("bench", "1", registry=registry, shadow_pending=10_000)
    ids = itertools.count()
    served = monitor._shadow
    assert served is not None

    def shadow_answer() -> None:  # the served answer kept (as record_prediction does), then the shadow's compared
        rid = f"ab12cd34-{next(ids):x}"
        served.served(rid, 1)
        monitor.shadow(rid, version="2", prediction=1 if next(ids) % 5 else 0)  # 20 % disagree

    raw_registry = CollectorRegistry()
    results = Counter("raw_shadow", "h", ["model", "model_version", "shadow_version", "result"], registry=raw_registry)
    agree, disagree = results.labels("raw", "1", "2", "agree"), results.labels("raw", "1", "2", "disagree")
    pair = Counter("raw_pair", "h", ["model", "model_version", "shadow_version", "served_class", "shadow_class"],
                   registry=raw_registry).labels("raw", "1", "2", "1", "0")
    raw_ids = itertools.count()

    def raw_shadow() -> None:
        if next(raw_ids) % 5:
            agree.inc()
        else:
            disagree.inc()
            pair.inc()

    rows.append(Row("agreement", "shadow(): served answer kept, shadow answer compared (20 % disagree)",
                    per_call_us(shadow_answer, number, repeat), "us", "raw prometheus-client: result (+ pair) inc",
                    per_call_us(raw_shadow, number, repeat), "<= 10x"))

    rng = np.random.default_rng(0)
    attributions = dict(zip(FEATURES, rng.normal(size=20).tolist(), strict=True))
    attributed = ModelMonitor("bench-attr", "1", registry=CollectorRegistry())
    tracker = attributed._attribution_tracker(None)
    raw_sum = Counter("raw_attr_abs", "h", ["model", "model_version", "feature"], registry=raw_registry)
    raw_count = Counter("raw_attr", "h", ["model", "model_version", "feature"], registry=raw_registry)
    children = {f: (raw_sum.labels("raw", "1", f), raw_count.labels("raw", "1", f)) for f in FEATURES}

    def raw_attributions() -> None:
        for name, value in attributions.items():
            s, c = children[name]
            s.inc(abs(value))
            c.inc()

    rows.append(Row("agreement", "attributions of 20 features per prediction (sums and counts)",
                    per_call_us(lambda: tracker.record(attributions), number, repeat), "us",
                    "raw prometheus-client: 40 counter incs", per_call_us(raw_attributions, number, repeat), "<= 1x"))
    rows.append(Row("agreement", "...with the top 3 for the log line",
                    per_call_us(lambda: tracker.record(attributions, top=True), number, repeat), "us",
                    "raw prometheus-client: 40 counter incs", per_call_us(raw_attributions, number, repeat),
                    "<= 1.5x"))
    return rows
