"""Recording and alert rules for generative models: TTFT/TPOT burn, truncation, feedback, cost per tenant.

Errors of a generation also count in ``mlscope_prediction_errors_total`` (the monitor's serving counters), so
``ModelErrorRateHigh`` pages for them; these rules add what only a generation has.
"""
from __future__ import annotations

from typing import Any

from prometheus_client.utils import floatToGoString

from ..catalog import genai as cat
from ..catalog import quality as qcat
from ..catalog.serving import WINDOW_WARM
from ..catalog.spec import HistogramSpec, RecordedSpec
from .builders import Rule, alert, group, record, selector, warm_up, when_warm
from .config import RuleConfig

BY_VERSION = "model, model_version"
ON = f"on ({BY_VERSION})"
DASHBOARD = "mlscope-genai"
WHO = "{{ $labels.model }} {{ $labels.model_version }}"
POSITIVE_CLASS = 'class="1"'  # a generation is stored as the prediction 1: the user is satisfied
FEEDBACK_BASELINE = "feedback_positive"  # Quality.set_baseline(model, version, {"feedback_positive": ratio})
BASELINE_METRIC = f'metric="{FEEDBACK_BASELINE}"'


def _rate(metric: str, window: str, cfg: RuleConfig, *matchers: str, by: str = BY_VERSION) -> str:
    return f"sum by ({by}) (rate({metric}{selector(cfg.selectors.model_service, *matchers)}[{window}]))"


def _slow_ratio(spec: HistogramSpec, slo: float, cfg: RuleConfig, window: str) -> str:
    buckets = spec.buckets or ()
    if slo not in buckets:
        raise ValueError(f"the SLO threshold {slo} of {spec.name} must be one of its buckets {buckets}")
    fast = _rate(spec.name + "_bucket", window, cfg, f'le="{floatToGoString(slo)}"')
    return f"1 - {fast} / {_rate(spec.name + '_count', window, cfg)}"


def _ttft_slow_ratio(cfg: RuleConfig, slo: float, window: str) -> str:
    """Share of generations whose first token came later than ``slo`` or never: a stream abandoned, empty or
    hung before its first token missed the SLO by definition (errors are the error ratio's)."""
    spec = cat.TIME_TO_FIRST_TOKEN
    if slo not in (spec.buckets or ()):
        raise ValueError(f"the SLO threshold {slo} of {spec.name} must be one of its buckets {spec.buckets}")
    fast = _rate(spec.name + "_bucket", window, cfg, f'le="{floatToGoString(slo)}"')
    timed = _rate(spec.name + "_count", window, cfg)
    never = _rate(cat.NO_FIRST_TOKEN.name, window, cfg, 'finish_reason!="error"')
    total = f"(({timed} or 0 * {never}) + ({never} or 0 * {timed}))"
    return f"1 - ({fast} or 0 * {never}) / ({total} > 0)"


def _warm(cfg: RuleConfig, window: str) -> Rule:
    generations = f"{cat.GENERATIONS.name}{selector(cfg.selectors.model_service)}"
    return warm_up(WINDOW_WARM, "genai", window, cfg.profile.warmup.genai,
                   count=f"sum by ({BY_VERSION}) (increase({generations}[{window}]))", age=generations, by=BY_VERSION)


def _feedback_warm(cfg: RuleConfig, window: str) -> Rule:
    labelled = f"{qcat.LABELLED.name}{selector(cfg.selectors.quality)}"
    generative = f"group by ({BY_VERSION}) ({cat.GENERATIONS.name})"  # feedback is a generative version's own
    return warm_up(WINDOW_WARM, "feedback", window, cfg.profile.warmup.feedback,
                   count=f"sum by ({BY_VERSION}) (increase({labelled}[{window}])) and {ON} {generative}",
                   age=labelled, by=BY_VERSION)


def _cost_warm(cfg: RuleConfig, window: str) -> Rule:
    cost = f"{cat.COST.name}{selector(cfg.selectors.model_service)}"
    return warm_up(cat.TENANT_WINDOW_WARM, "genai_cost", window, cfg.profile.warmup.genai_cost,
                   count=f"sum by (tenant) (increase({cost}[{window}]) > bool 0)", age=cost, by="tenant")


def when_warm_all(expr: str, domain: str, *windows: str) -> str:
    """``expr`` where the version's warm-up guard of ``domain`` says warm in every one of ``windows``."""
    for window in windows:
        expr = when_warm(expr, WINDOW_WARM, domain, window, BY_VERSION)
    return expr


def _feedback_positive(cfg: RuleConfig, window: str) -> str:
    """Positive feedback / feedback joined: a generation is stored as the 'prediction' 1 (the user is satisfied),
    so the positive outcomes are the correct pairs of class 1; only generative versions."""
    sel = cfg.selectors.quality
    positive = f"sum by ({BY_VERSION}) (increase({qcat.CORRECT.name}{selector(sel, POSITIVE_CLASS)}[{window}]))"
    joined = f"sum by ({BY_VERSION}) (increase({qcat.LABELLED.name}{selector(sel)}[{window}]))"
    generative = f"group by ({BY_VERSION}) ({cat.GENERATIONS.name})"
    return f"({positive} or 0 * {joined}) / ({joined} > 0) and {ON} {generative}"


def _baseline_text(baseline: str) -> str:
    """Template text of the version's feedback baseline, read at notification time with ``query``."""
    scoped = baseline.replace('"', '\\"').replace(f"max by ({BY_VERSION}) (", "", 1)[:-1]
    scoped = scoped[:-1] + ',model=\\"%s\\",model_version=\\"%s\\"}'
    return ('{{ with printf "max(' + scoped + ')" $labels.model $labels.model_version | query }}'
            '{{ . | first | value | humanizePercentage }}{{ end }}')


def recording_rules(cfg: RuleConfig) -> list[Rule]:
    t, p = cfg.thresholds, cfg.profile
    rules: list[Rule] = []
    for window in p.traffic_windows:
        generations = _rate(cat.GENERATIONS.name, window, cfg)
        rules.append(record(cat.GENERATION_RATE, generations, window=window))
        rules.append(record(cat.OUTPUT_TOKEN_RATE, _rate(cat.TOKENS.name, window, cfg, 'token_type="output"'),
                            window=window))
        length = _rate(cat.GENERATIONS.name, window, cfg, 'finish_reason="length"')
        rules.append(record(cat.TRUNCATED_RATIO, f"({length} or 0 * {generations}) / ({generations} > 0)",
                            window=window))
        for spec, p50, p95 in ((cat.TIME_TO_FIRST_TOKEN, cat.TTFT_P50, cat.TTFT_P95),
                               (cat.TIME_PER_OUTPUT_TOKEN, cat.TPOT_P50, cat.TPOT_P95)):
            buckets = _rate(spec.name + "_bucket", window, cfg, by=BY_VERSION + ", le")
            rules += [record(p50, f"histogram_quantile(0.5, {buckets})", window=window),
                      record(p95, f"histogram_quantile(0.95, {buckets})", window=window)]
        cost = cat.COST.name
        rules.append(record(cat.VERSION_COST_RATE, _rate(cost, window, cfg), window=window))
        rules.append(record(cat.TENANT_COST_RATE, _rate(cost, window, cfg, by="tenant"), window=window))
    for window in p.burn_rate_windows:
        rules.append(record(cat.TTFT_SLOW_RATIO, _ttft_slow_ratio(cfg, t.genai_ttft_slo_seconds, window),
                            window=window))
        rules.append(record(cat.TPOT_SLOW_RATIO, _slow_ratio(cat.TIME_PER_OUTPUT_TOKEN, t.genai_tpot_slo_seconds,
                                                             cfg, window), window=window))
    rules += [record(cat.FEEDBACK_POSITIVE, _feedback_positive(cfg, w), window=w) for w in p.quality_windows]
    rules += [_warm(cfg, w) for w in dict.fromkeys(p.traffic_windows + p.burn_rate_windows)]
    return rules + [_feedback_warm(cfg, w) for w in p.quality_windows] + [_cost_warm(cfg, p.traffic_windows[-1])]


def burn_alerts(cfg: RuleConfig, name: str, ratio: RecordedSpec, what: str, slo: float, objective: float, *,
                domain: str = "genai", subject: str = "generations") -> list[Rule]:
    """Multi-window burn-rate alerts on ``ratio`` (a slow ratio per window), behind ``domain``'s warm-up guard."""
    budget = 1 - objective
    rules = []
    for burn in cfg.profile.burn_windows:
        limit = round(burn.factor * budget, 6)
        expr = (f'{ratio.name}{{window="{burn.long}"}} > {limit}'
                f' and {ON} {ratio.name}{{window="{burn.short}"}} > {limit}')
        rules.append(alert(
            cfg, name, when_warm_all(expr, domain, burn.long, burn.short), severity=burn.severity,
            for_=cfg.profile.evaluation_interval, dashboard=DASHBOARD, model_scoped=True,
            summary=f"{WHO}: {what} SLO budget burning {burn.factor:g}x too fast",
            description="{{ $value | humanizePercentage }} of " + subject + " had a " + what + f" above {slo:g}s"
                        + (" or none at all" if ratio is cat.TTFT_SLOW_RATIO else "") + f" over "
                        f"{burn.long} (SLO: {objective:.2%} within {slo:g}s; alert above {limit:.2%} over both "
                        f"{burn.long} and {burn.short})."))
    return rules


def alert_rules(cfg: RuleConfig) -> list[Rule]:
    t, p = cfg.thresholds, cfg.profile
    w, q = p.alert_window, p.quality_windows[0]
    cost_window = p.traffic_windows[-1]
    baseline = f"max by ({BY_VERSION}) ({qcat.BASELINE.name}{selector(cfg.selectors.quality, BASELINE_METRIC)})"
    feedback = f'{cat.FEEDBACK_POSITIVE.name}{{window="{q}"}}'
    return burn_alerts(cfg, "GenAITimeToFirstTokenSLOBurn", cat.TTFT_SLOW_RATIO, "time to first token",
                 t.genai_ttft_slo_seconds, t.genai_ttft_slo_objective) + burn_alerts(
        cfg, "GenAITimePerOutputTokenSLOBurn", cat.TPOT_SLOW_RATIO, "time per output token",
        t.genai_tpot_slo_seconds, t.genai_tpot_slo_objective) + [
        alert(cfg, "GenAITruncationRatioHigh",
              when_warm_all(f'{cat.TRUNCATED_RATIO.name}{{window="{w}"}} > {t.genai_truncation_ratio}', "genai", w),
              severity="warning", for_=p.for_symptom, dashboard=DASHBOARD, model_scoped=True,
              summary=f"{WHO}: answers cut at the token limit",
              description="{{ $value | humanizePercentage }} of the generations of " + WHO + " over the last " + w
                          + f" stopped at the token limit (finish_reason=\"length\"; threshold "
                            f"{t.genai_truncation_ratio:.0%})."),
        alert(cfg, "GenAIFeedbackPositiveLow",
              when_warm_all(f"{feedback} < {ON} group_left () ({baseline} - {t.genai_feedback_max_drop:g})",
                         "feedback", q),
              severity="warning", for_=p.for_symptom, dashboard=DASHBOARD, model_scoped=True,
              summary=f"{WHO}: positive feedback below its baseline",
              description="{{ $value | humanizePercentage }} of the user feedback on " + WHO + " over the last " + q
                          + f" was positive, more than {t.genai_feedback_max_drop:g} below the version's baseline "
                            + _baseline_text(baseline) + f" (at least {p.warmup.feedback.min_count:g} feedbacks in "
                            "the window)."),
        alert(cfg, "GenAITenantCostOverBudget",
              when_warm(f'{cat.TENANT_COST_RATE.name}{{window="{cost_window}"}} * 3600 > '
                        f'{t.genai_tenant_cost_per_hour:g}', cat.TENANT_WINDOW_WARM, "genai_cost", cost_window,
                        "tenant"),
              severity="warning", for_=p.for_symptom, dashboard=DASHBOARD,
              summary="Tenant {{ $labels.tenant }} spends above its budget",
              description="Tenant {{ $labels.tenant }} spent at {{ $value | printf \"%.2f\" }} per hour over the "
                          f"last {cost_window} (budget {t.genai_tenant_cost_per_hour:g} per hour, in the price "
                          "table's currency)."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-genai-recording", cfg, recording_rules(cfg)),
            group("mlscope-genai-alerts", cfg, alert_rules(cfg))]
