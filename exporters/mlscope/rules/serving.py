"""Recording and alert rules for the model monitor's traffic, errors and latency."""
from __future__ import annotations

from typing import Any

from prometheus_client.utils import floatToGoString

from ..catalog import serving as cat
from ..catalog import versions as versions_cat
from .builders import alert, group, record, selector, warm_up, when_warm
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
    rules += [record(cat.LATENCY_SLOW_RATIO, _slow_ratio(cfg, w), window=w) for w in cfg.profile.burn_rate_windows]
    return rules + [_warm(cfg, w) for w in dict.fromkeys(cfg.profile.traffic_windows + cfg.profile.burn_rate_windows)]


def _warm(cfg: RuleConfig, window: str) -> dict[str, Any]:
    """The serving domain's warm-up guard: requests counted in ``window``."""
    requests = f"{cat.PREDICTIONS.name}{selector(cfg.selectors.model_service)}"
    return warm_up(cat.WINDOW_WARM, "serving", window, cfg.profile.warmup.serving,
                   count=f"sum by ({BY_VERSION}) (increase({requests}[{window}]))", age=requests, by=BY_VERSION)


def _when_warm(expr: str, *windows: str) -> str:
    for window in windows:
        expr = when_warm(expr, cat.WINDOW_WARM, "serving", window, BY_VERSION)
    return expr


def _slow_ratio(cfg: RuleConfig, window: str) -> str:
    slo = cfg.thresholds.latency_slo_seconds
    if slo not in cat.LATENCY_BUCKETS:
        raise ValueError(f"latency_slo_seconds={slo} must be one of the latency buckets {cat.LATENCY_BUCKETS}")
    # The bucket bound as exposed (prometheus-client) and as Prometheus 3 normalises it: 1 -> "1.0", never "1".
    le = f'le="{floatToGoString(slo)}"'
    fast_buckets = f"{cat.PREDICTION_LATENCY.name}_bucket{selector(cfg.selectors.model_service, le)}"
    fast = f"sum by ({BY_VERSION}) (rate({fast_buckets}[{window}]))"
    count = _rate(cat.PREDICTION_LATENCY.name + "_count", window, cfg)
    return f"1 - {fast} / {count}"


def _burn_rate_alerts(cfg: RuleConfig) -> list[dict[str, Any]]:
    t = cfg.thresholds
    budget = 1 - t.latency_slo_objective
    rules = []
    for burn in cfg.profile.burn_windows:
        limit = round(burn.factor * budget, 6)
        ratio = cat.LATENCY_SLOW_RATIO.name
        rules.append(alert(
            cfg, "ModelLatencySLOBurn",
            _when_warm(f'{ratio}{{window="{burn.long}"}} > {limit}'
                       f' and on ({BY_VERSION}) {ratio}{{window="{burn.short}"}} > {limit}', burn.long, burn.short),
            severity=burn.severity, for_=cfg.profile.evaluation_interval, dashboard=DASHBOARD, model_scoped=True,
            summary="{{ $labels.model }} {{ $labels.model_version }}: latency SLO budget burning "
                    f"{burn.factor:g}x too fast",
            description="{{ $value | humanizePercentage }} of requests took longer than "
                        f"{t.latency_slo_seconds:g}s over {burn.long} (SLO: {t.latency_slo_objective:.2%} under "
                        f"{t.latency_slo_seconds:g}s; alert above {limit:.2%} over both {burn.long} and "
                        f"{burn.short})."))
    return rules


def alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    t, w = cfg.thresholds, cfg.profile.alert_window
    win = f'{{window="{w}"}}'
    return [
        alert(cfg, "ModelErrorRateHigh", _when_warm(f"{cat.ERROR_RATIO.name}{win} > {t.error_ratio}", w),
              severity="critical", for_=cfg.profile.for_symptom, dashboard=DASHBOARD, model_scoped=True,
              summary="{{ $labels.model }} {{ $labels.model_version }}: prediction errors above "
                      f"{t.error_ratio:.0%}",
              description="{{ $value | humanizePercentage }} of prediction requests of "
                          "{{ $labels.model }} {{ $labels.model_version }} failed over the last " + w
                          + f" (threshold {t.error_ratio:.0%}, once the window holds "
                            f"{cfg.profile.warmup.serving.min_count:g} requests or more)."),
        # A batch scoring job's version (its info pushed by the job, mlscope.pipelines) serves no live traffic, and
        # a version its traffic split gives no share (a canary before it goes live, or rolled back) is idle on
        # purpose: neither is silent.
        alert(cfg, "ModelNoPredictions",
              f"{cat.REQUEST_RATE.name}{win} == 0 and on ({BY_VERSION}) {cat.MODEL_INFO.name}"
              f" unless on ({BY_VERSION}) {cat.MODEL_INFO.name}{selector(cfg.selectors.pushed)}"
              f" unless on ({BY_VERSION}) {versions_cat.TRAFFIC_WEIGHT.name} == 0",
              severity="warning", for_=cfg.profile.for_no_traffic, dashboard=DASHBOARD, model_scoped=True,
              summary="{{ $labels.model }} {{ $labels.model_version }} serves no predictions",
              description="{{ $labels.model }} {{ $labels.model_version }} is registered (mlscope_model_info) but "
                          f"received no request over the last {w}, for {cfg.profile.for_no_traffic} in a row: its "
                          f"last request is at least {w} + {cfg.profile.for_no_traffic} old."),
    ] + _burn_rate_alerts(cfg)


def stack_alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [
        alert(cfg, "MLScopeWatchdog", "vector(1)", severity="none", keep_firing=False,
              dashboard="mlscope-stack-health",
              summary="Always firing: proves the alerting pipeline works end to end.",
              description="A dead-man's switch: route it to a receiver that alarms when it stops arriving."),
        # Only targets Prometheus scrapes now: after a restart, the last `up` of a target removed meanwhile stays
        # readable for the 5 min lookback (shutdown writes no staleness marker) and its `for` state is restored.
        alert(cfg, "MLScopeTargetDown", f"up{selector(cfg.selectors.targets)} == 0 and on (job, instance) "
              f"time() - timestamp(up{selector(cfg.selectors.targets)}) < {cfg.profile.scraped_within_seconds:g}",
              severity="critical", for_=cfg.profile.for_target_down, dashboard="mlscope-stack-health",
              summary="{{ $labels.job }} target {{ $labels.instance }}{{ with $labels.service }} (service {{ . }})"
                      "{{ end }} is down",
              description="Prometheus could not scrape {{ $labels.instance }} (job {{ $labels.job }}) "
                          "for " + cfg.profile.for_target_down + ".{{ with $labels.service }} If {{ . }} was "
                          "retired on purpose: `mlscope targets remove {{ . }}`.{{ end }}"),
        alert(cfg, "AlertmanagerNotificationsFailing",
              f"sum by (integration) (rate(alertmanager_notifications_failed_total[{cfg.profile.alert_window}])) > 0",
              severity="critical", for_=cfg.profile.for_symptom, dashboard="mlscope-stack-health",
              summary="Alertmanager fails to send {{ $labels.integration }} notifications",
              description="{{ $value | humanize }} notifications per second to {{ $labels.integration }} receivers "
                          "failed over the last " + cfg.profile.alert_window + ": alerts may not reach anyone."),
        alert(cfg, "MLScopeRuleEvaluationFailures",
              "sum by (rule_group) "
              f"(increase(prometheus_rule_evaluation_failures_total[{cfg.profile.alert_window}])) > 0",
              severity="warning", for_=cfg.profile.for_symptom, dashboard="mlscope-stack-health",
              summary="Rule group {{ $labels.rule_group }} fails to evaluate",
              description="{{ $value | humanize }} rule evaluations failed in {{ $labels.rule_group }} over the last "
                          + cfg.profile.alert_window + ": recorded series and alerts of that group are stale."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [
        group("mlscope-serving-recording", cfg, recording_rules(cfg)),
        group("mlscope-serving-alerts", cfg, alert_rules(cfg)),
        group("mlscope-stack-alerts", cfg, stack_alert_rules(cfg)),
    ]
