"""Suite `scale`: series, rule and scrape cost for 10, 100 and 1,000 simulated replicas."""
from __future__ import annotations

from prometheus_client import generate_latest

from common import Row, per_call_us


def suite_scale(quick: bool) -> list[Row]:
    import scale_harness as scale

    number, repeat = (200, 3) if quick else (1000, 7)
    replica = scale.one_replica()
    n_series = sum(1 for line in generate_latest(replica).decode().splitlines() if line and not line.startswith("#"))
    plain = scale.plain_gauges(replica)
    rows = [Row("scale", f"scrape /metrics of one replica ({n_series} series, typical classifier)",
                per_call_us(lambda: generate_latest(replica), number, repeat) / 1000, "ms",
                "plain prometheus-client Gauges, same series", per_call_us(lambda: generate_latest(plain), number,
                                                                            repeat) / 1000)]
    results = {n: scale.measure(n, replica) for n in ((10, 100) if quick else (10, 100, 1000))}
    base = results[10]
    for n, r in results.items():
        rows += [
            Row("scale", f"{n:,} simulated replicas: Prometheus head series", r["head_series"], "series",
                "computed from the catalog (scaling.py)", scale.expected_series(n), "1.00x"),
            Row("scale", f"{n:,} simulated replicas: serving recording-rule group evaluation", r["rule_ms"], "ms",
                "10 replicas", base["rule_ms"]),
            Row("scale", f"{n:,} simulated replicas: scrape of all replicas (one target)", r["scrape_ms"], "ms",
                "10 replicas", base["scrape_ms"]),
            Row("scale", f"{n:,} simulated replicas: Prometheus resident memory", r["rss_mib"], "MiB",
                "10 replicas", base["rss_mib"]),
        ]
    return rows
