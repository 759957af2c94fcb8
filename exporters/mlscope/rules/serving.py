"""Recording and alert rules for the model monitor's traffic, errors and latency."""
from __future__ import annotations

from typing import Any

from ..catalog import serving as cat
from .builders import alert, group, record, selector
from .config import RuleConfig

BY_VERSION = "model, model_version"
DASHBOARD = "mlscope-model-overview"


def _rate(metric: str, window: str, cfg: RuleConfig, by: str = BY_VERSION) -> str:
    return f"sum by ({by}) (rate({metric}{selector(cfg.selectors.model_service)}[{window}]))"


def recording_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    rules = []
    for window in cfg.profile.traffic_windows:
        requests = _rate(cat.PREDICTIONS.name, window, cfg)
        errors = _rate(cat.PREDICTION_ERRORS.name, window, cfg)
        rules.append(record(cat.REQUEST_RATE, requests, window=window))
        # Zero, not absent, when no error has been seen yet.
        rules.append(record(cat.ERROR_RATIO, f"({errors} or 0 * {requests}) / {requests}", window=window))
        buckets = _rate(cat.PREDICTION_LATENCY.name + "_bucket", window, cfg, by=BY_VERSION + ", le")
        for spec, q in ((cat.LATENCY_P50, "0.5"), (cat.LATENCY_P95, "0.95"), (cat.LATENCY_P99, "0.99")):
            rules.append(record(spec, f"histogram_quantile({q}, {buckets})", window=window))
    return rules


def alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    t, w = cfg.thresholds, cfg.profile.alert_window
    win = f'{{window="{w}"}}'
    return [
        alert(cfg, "ModelErrorRateHigh",
              f"{cat.ERROR_RATIO.name}{win} > {t.error_ratio} "
              f"and on ({BY_VERSION}) {cat.REQUEST_RATE.name}{win} > {t.min_request_rate}",
              severity="critical", for_=cfg.profile.for_symptom, dashboard=DASHBOARD, model_scoped=True,
              summary="{{ $labels.model }} {{ $labels.model_version }}: prediction errors above "
                      f"{t.error_ratio:.0%}",
              description="{{ $value | humanizePercentage }} of prediction requests of "
                          "{{ $labels.model }} {{ $labels.model_version }} failed over the last " + w + "."),
    ]


def stack_alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [
        alert(cfg, "MLScopeWatchdog", "vector(1)", severity="none", keep_firing=False,
              dashboard="mlscope-stack-health",
              summary="Always firing: proves the alerting pipeline works end to end.",
              description="A dead-man's switch: route it to a receiver that alarms when it stops arriving."),
        alert(cfg, "MLScopeTargetDown", f"up{selector(cfg.selectors.targets)} == 0",
              severity="critical", for_=cfg.profile.for_target_down, dashboard="mlscope-stack-health",
              summary="{{ $labels.job }} target {{ $labels.instance }} is down",
              description="Prometheus could not scrape {{ $labels.instance }} (job {{ $labels.job }}) "
                          "for " + cfg.profile.for_target_down + "."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [
        group("mlscope-serving-recording", cfg, recording_rules(cfg)),
        group("mlscope-serving-alerts", cfg, alert_rules(cfg)),
        group("mlscope-stack-alerts", cfg, stack_alert_rules(cfg)),
    ]
