"""Series budgets computed from the catalog equal what real monitors expose and what Prometheus stores."""
from __future__ import annotations

from mlscope.stack import scaling
from support.helpers import Exporter
from support.prometheus import PrometheusHarness
from support.scaling import classifier


def test_recorded_series_per_version_match_prometheus(prometheus: PrometheusHarness, exporter: Exporter) -> None:
    classifier(exporter.registry, model="budget")
    prometheus.scrape("scaling", exporter.target)
    typical = scaling.Workload("classification", {"class": 2, "error_type": 2, "reason": 1})
    stored = prometheus.api.wait_for('count({__name__=~"mlscope_.+", model="budget"})', timeout=30)
    assert int(stored[0]["value"][1]) == sum(scaling.series_per_model_version(typical).values())
    per_target = prometheus.api.wait_for(f'count({{instance="{exporter.target}", __name__=~"up|scrape_.+"}})',
                                         timeout=30)
    assert int(per_target[0]["value"][1]) == scaling.PER_TARGET  # the series Prometheus adds to every target
    recorded = prometheus.api.wait_for(
        'count({__name__=~".+:mlscope_.+", model="budget"})',
        lambda r: r and int(r[0]["value"][1]) == scaling.recorded_per_model_version("fast"), timeout=30)
    assert recorded
