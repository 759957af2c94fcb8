"""Adaptive alerts: each signal judged against its own seasonal baseline (docs/adaptive-alerts.md).

Per signal and model version (drift: per feature), in one recording group evaluated in order: ``value`` (the signal
as its static alert reads it), ``smoothed`` (average over the smoothing window), ``baseline`` (median of
``smoothed`` at the same time each offset ago: ``label_replace`` tags each offset's copy and ``quantile without
(offset)`` combines whichever exist, so an offset with no history is skipped), ``residual`` (|smoothed - baseline|),
``spread`` (1.4826 x the median residual over the spread window: a robust standard deviation, never below the
absolute and relative floors), ``zscore``, the ``upper``/``lower`` bands and ``history_ready`` (the warm-up guard:
history as old as the largest offset). Alerts read the z-score in the signal's direction, once warm and above the
signal's minimum traffic.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog import anomaly as cat
from ..catalog import drift as drift_cat
from ..catalog import logs as logs_cat
from ..catalog import serving as serving_cat
from ..catalog.quality import RECORDED_BY_LEVEL as QUALITY
from .builders import Rule, alert, record, selector
from .config import AnomalySignal, RuleConfig, duration_seconds

BY_VERSION = "model, model_version"
BY_FEATURE = "model, model_version, feature"
LOGGED = 'decision!="counted"'  # prediction-log records written as lines (not only counted)


@dataclass(frozen=True)
class Source:
    """Where one signal comes from, what its traffic is, and how its alert reads."""

    signal: str  # the AnomalyRules field and the series' `signal` label
    alert: str
    level: str  # a catalog.anomaly level: model_version or feature
    what: str  # in notifications: "request rate", "p95 latency"...
    value: Callable[[RuleConfig], str]
    traffic: Callable[[RuleConfig], str]  # compared with min_traffic (labels of `by`)
    traffic_what: str
    dashboard: str
    # The counting noise of the smoothed value, as a standard deviation (a spread bound: a ratio of few requests
    # is noisy, so at night its band widens); None where the signal is not a ratio of counted events.
    noise: Callable[[RuleConfig], str] | None = None
    # A ratio of counted events: (events, trials) counted over a window, for a signal judged as a count.
    counts: Callable[[RuleConfig, str], tuple[str, str]] | None = None

    @property
    def by(self) -> str:
        return BY_FEATURE if self.level == "feature" else BY_VERSION

    def spec(self, op: str) -> str:
        return cat.RECORDED_BY_LEVEL[self.level][op].name

    def series(self, op: str) -> str:
        return f'{self.spec(op)}{{signal="{self.signal}"}}'


def _win(cfg: RuleConfig) -> str:
    return f'{{window="{cfg.profile.alert_window}"}}'


def _quality(op: str, cfg: RuleConfig) -> str:
    return f'{QUALITY["model_version"][op].name}{{window="{cfg.profile.quality_windows[0]}"}}'


def _baseline_of(signal: str) -> Callable[[RuleConfig], str]:
    return lambda cfg: f'{cat.RECORDED_BY_LEVEL["model_version"]["baseline"].name}{{signal="{signal}"}}'


def _binomial_noise(signal: str, cfg: RuleConfig) -> str:
    """Standard deviation of a ratio p of n requests, sqrt(p (1 - p) / n), n the requests the smoothed value
    averages (the smoothing window plus the alert window, at the request rate)."""
    a = cfg.profile.anomaly
    seconds = duration_seconds(a.smoothing_of(getattr(a, signal))) + duration_seconds(cfg.profile.alert_window)
    baseline = f'{cat.RECORDED_BY_LEVEL["model_version"]["baseline"].name}{{signal="{signal}"}}'
    return (f"sqrt(clamp_min({baseline}, 0) * (1 - {baseline}) / on ({BY_VERSION}) group_left () "
            f"({_request_rate(cfg)} * {seconds:g}))")


def _request_rate(cfg: RuleConfig) -> str:
    return f"sum by ({BY_VERSION}) ({serving_cat.REQUEST_RATE.name}{_win(cfg)})"


def _error_counts(cfg: RuleConfig, window: str) -> tuple[str, str]:
    """Failed and all prediction requests of each model version over ``window`` (0 errors, not absent)."""
    def increase(metric: str) -> str:
        return f"sum by ({BY_VERSION}) (increase({metric}{selector(cfg.selectors.model_service)}[{window}]))"

    requests = increase(serving_cat.PREDICTIONS.name)
    return f"({increase(serving_cat.PREDICTION_ERRORS.name)} or 0 * {requests})", requests


SOURCES: tuple[Source, ...] = (
    Source("traffic", "ModelTrafficAnomalous", "model_version", "request rate", _request_rate,
           _baseline_of("traffic"), "expected requests per second (the baseline)", "mlscope-model-overview"),
    Source("errors", "ModelErrorRatioAnomalous", "model_version", "error ratio",
           lambda cfg: f"max by ({BY_VERSION}) ({serving_cat.ERROR_RATIO.name}{_win(cfg)})", _request_rate,
           "requests per second", "mlscope-model-overview", noise=lambda cfg: _binomial_noise("errors", cfg),
           counts=_error_counts),
    Source("latency", "ModelLatencyAnomalous", "model_version", "p95 latency",
           lambda cfg: f"max by ({BY_VERSION}) ({serving_cat.LATENCY_P95.name}{_win(cfg)})", _request_rate,
           "requests per second", "mlscope-model-overview"),
    Source("log_volume", "ModelLogVolumeAnomalous", "model_version", "prediction-log volume",
           lambda cfg: f"sum by ({BY_VERSION}) (rate({logs_cat.PREDICTION_LOG_RECORDS.name}"
                       f"{selector(cfg.selectors.model_service, LOGGED)}[{cfg.profile.alert_window}]))",
           _baseline_of("log_volume"), "expected logged predictions per second (the baseline)",
           "mlscope-model-overview"),
    Source("drift", "FeatureDriftAnomalous", "feature", "PSI",
           lambda cfg: f'max by ({BY_FEATURE}) ({drift_cat.PSI.name}{{window="{cfg.profile.drift_windows[0]}"}})',
           lambda cfg: f"max by ({BY_FEATURE}) "
                       f'({drift_cat.BIN_INCREASE.name}{{window="{cfg.profile.drift_windows[0]}"}})',
           "present feature values in the drift window", "mlscope-drift"),
    Source("quality", "ModelQualityAnomalous", "model_version", "accuracy",
           lambda cfg: f"max by ({BY_VERSION}) ({_quality('mlscope_quality_accuracy:ratio', cfg)})",
           lambda cfg: f"max by ({BY_VERSION}) ({_quality('mlscope_quality_labelled:increase', cfg)})",
           "labelled outcomes in the quality window", "mlscope-model-quality"),
    Source("estimated_quality", "ModelQualityAnomalous", "model_version", "estimated accuracy",
           lambda cfg: f"max by ({BY_VERSION}) ({_quality('mlscope_quality_estimated_accuracy:ratio', cfg)})",
           lambda cfg: f"max by ({BY_VERSION}) ({_quality('mlscope_quality_expected_predictions:increase', cfg)})",
           "predictions with probabilities in the quality window", "mlscope-model-quality"),
)
ALERT_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.alert for s in SOURCES))


def setting(cfg: RuleConfig, source: Source) -> AnomalySignal:
    signal: AnomalySignal = getattr(cfg.profile.anomaly, source.signal)
    return signal


def enabled(cfg: RuleConfig) -> list[Source]:
    a = cfg.profile.anomaly
    return [s for s in SOURCES if a.enabled and setting(cfg, s).enabled]


def _offset_copies(source: Source, offsets: tuple[str, ...]) -> str:
    """The smoothed signal at each offset, tagged ``offset``; an offset without a sample is absent."""
    smoothed = source.series("smoothed")
    return " or ".join(f'label_replace({smoothed} offset {o}, "offset", "{o}", "", "")' for o in offsets)


def baseline_expr(source: Source, cfg: RuleConfig) -> str:
    """Median of the smoothed signal at each offset (absent ones skipped), never below the baseline floor."""
    s = setting(cfg, source)
    median = f"quantile without (offset) (0.5, {_offset_copies(source, cfg.profile.anomaly.offsets_of(s))})"
    return f"clamp_min({median}, {s.baseline_floor:g})" if s.baseline_floor else median


# A normal residual's standard deviation is 1.4826 x its median absolute deviation.
MAD_TO_SIGMA = 1.4826


def spread_expr(source: Source, cfg: RuleConfig) -> str:
    """The residual's median absolute deviation over the spread window as a standard deviation (robust: an
    anomaly filling less than half the window does not widen its own band), never below the absolute floor nor
    the floor ratio x the baseline, nor (ratios of counted events) the counting noise."""
    s, window = setting(cfg, source), cfg.profile.anomaly.spread_window
    baseline = source.series("baseline")
    observed = f'{MAD_TO_SIGMA} * quantile_over_time(0.5, {source.series("residual")}[{window}])'
    bounds = [f'label_replace({observed}, "bound", "observed", "", "")',
              f'label_replace(0 * {baseline} + {s.spread_floor:g}, "bound", "floor", "", "")']
    if s.spread_floor_ratio:
        bounds.append(f'label_replace({s.spread_floor_ratio:g} * {baseline}, "bound", "ratio", "", "")')
    if source.noise is not None:
        bounds.append(f'label_replace({source.noise(cfg)}, "bound", "noise", "", "")')
    # Offsets that disagree (one a holiday, another an incident) make the baseline itself uncertain.
    copies = _offset_copies(source, cfg.profile.anomaly.offsets_of(s))
    disagreement = (f"{MAD_TO_SIGMA} * quantile without (offset) (0.5, abs(({copies}) - ignoring (offset) "
                    f"group_left () {baseline}))")
    bounds.append(f'label_replace({disagreement}, "bound", "offsets", "", "")')
    return f"max without (bound) ({' or '.join(bounds)})"


def _counted(source: Source, cfg: RuleConfig) -> tuple[str, str] | None:
    """(events, trials) over the count window of a signal judged as a count, else None."""
    window = setting(cfg, source).count_window
    return source.counts(cfg, window) if window and source.counts is not None else None


def history_expr(source: Source, cfg: RuleConfig) -> str:
    """1 where the smoothed signal has a sample in the smoothing window the largest offset ago, else 0."""
    a, s = cfg.profile.anomaly, setting(cfg, source)
    oldest = max(a.offsets_of(s), key=duration_seconds)
    smoothed = source.series("smoothed")
    # 0 x group(): 0 even where the smoothed value is NaN now (a ratio of no requests).
    return (f"group without () (count_over_time({smoothed}[{a.smoothing_of(s)}] offset {oldest}))"
            f" or 0 * group without () ({smoothed})")


def recording_rules(cfg: RuleConfig, source: Source) -> list[Rule]:
    a, s = cfg.profile.anomaly, setting(cfg, source)
    spec = cat.RECORDED_BY_LEVEL[source.level]
    z = f"{s.z_threshold:g}"

    def rec(op: str, expr: str) -> Rule:
        return record(spec[op], expr, signal=source.signal)

    value, smoothed, baseline, spread = (source.series(op) for op in ("value", "smoothed", "baseline", "spread"))
    counted = _counted(source, cfg)
    upper_e, lower_e = f"{baseline} + {z} * {spread}", f"clamp_min({baseline} - {z} * {spread}, 0)"
    if counted is None:
        value_expr, judged = source.value(cfg), smoothed
        spread_e, zscore_e = spread_expr(source, cfg), f"({smoothed} - {baseline}) / {spread}"
    else:  # judged as a count: the value itself (over the count window) against the expected count
        events, trials = counted
        per_trial = f"on ({source.by}) group_left () {trials}"
        observed, expected = f"({value} * {per_trial})", f"({baseline} * {per_trial})"
        value_expr, judged = f"{events} / {trials}", value
        # The ratio's Poisson standard deviation at the expected count (draws the band); the Freeman-Tukey
        # deviate of the observed count from the expected one is about normal however few the events.
        spread_e = f"sqrt({baseline} / {per_trial})"
        zscore_e = f"sqrt({observed}) + sqrt({observed} + 1) - sqrt(4 * {expected} + 1)"
        # The band: the ratios whose counts deviate by exactly z. sqrt(k) + sqrt(k + 1) = c gives
        # k = ((c - 1/c) / 2)^2; below c = 1 (k = 0) no count is low enough.
        root = f"sqrt(4 * {expected} + 1)"
        upper_e, lower_e = (f"((({c}) - 1 / ({c})) / 2) ^ 2 / {per_trial}"
                            for c in (f"{root} + {z}", f"clamp_min({root} - {z}, 1)"))
    return [
        rec("value", value_expr),
        rec("smoothed", f"avg_over_time({value}[{a.smoothing_of(s)}])"),
        rec("baseline", baseline_expr(source, cfg)),
        rec("residual", f"abs({judged} - {baseline})"),
        rec("spread", spread_e),
        rec("zscore", zscore_e),
        rec("upper", upper_e),
        rec("lower", lower_e),
        rec("history_ready", history_expr(source, cfg)),
    ]


def alert_expr(cfg: RuleConfig, source: Source) -> str:
    s = setting(cfg, source)
    zscore, z = source.series("zscore"), f"{s.z_threshold:g}"
    judged = {"up": f"{zscore} > {z}", "down": f"{zscore} < -{z}",
              "both": f"({zscore} > {z} or {zscore} < -{z})"}[s.direction]
    on = f"on ({source.by})"
    counted = _counted(source, cfg)
    traffic = source.traffic(cfg) if counted is None else (
        f"{source.series('baseline')} * on ({source.by}) group_left () {counted[1]}")
    return (f"({judged}) and {on} {source.series('history_ready')} == 1"
            f" and {on} ({traffic}) >= {s.min_traffic:g}")


_DIRECTION_WORDS = {"up": "above", "down": "below", "both": "outside"}


def alert_rule(cfg: RuleConfig, source: Source) -> Rule:
    s, a = setting(cfg, source), cfg.profile.anomaly
    who = ("{{ $labels.model }} {{ $labels.model_version }}" +
           (" feature {{ $labels.feature }}" if source.level == "feature" else ""))
    moved = ("{{ if lt $value 0.0 }}dropped{{ else }}spiked{{ end }}" if s.direction == "both" else
             "rose" if s.direction == "up" else "fell")
    return alert(
        cfg, source.alert, alert_expr(cfg, source), severity="warning", for_=s.for_duration,
        dashboard=source.dashboard, model_scoped=True, labels={"signal": source.signal},
        summary=f"{who}: {source.what} {moved} outside its seasonal band",
        description=f"The {source.what} of {who} is {recorded_now(source, judged_op(cfg, source))}, its seasonal "
                    f"baseline {recorded_now(source, 'baseline')} (band {recorded_now(source, 'lower')} to "
                    f"{recorded_now(source, 'upper')}): {{{{ $value | printf \"%.1f\" }}}} spreads from the "
                    f"baseline (median of the same time {', '.join(a.offsets_of(s))} ago), "
                    f"{_DIRECTION_WORDS[s.direction]} the band of {s.z_threshold:g} spreads, for "
                    f"{s.for_duration} ({_judged_how(cfg, source)}, once history is "
                    f"{max(a.offsets_of(s), key=duration_seconds)} old).")


def judged_op(cfg: RuleConfig, source: Source) -> str:
    """The recorded operation the z-score judges: the smoothed value, or the value of a count-judged signal."""
    return "smoothed" if _counted(source, cfg) is None else "value"


def recorded_now(source: Source, op: str) -> str:
    """Template text: the signal's recorded ``op`` for the alert's labels when it is rendered (4 significant
    digits), "?" when absent."""
    labels = ["model", "model_version"] + (["feature"] if source.level == "feature" else [])
    matchers = ",".join(f'{label}=\\"%s\\"' for label in labels)
    args = " ".join(f"$labels.{label}" for label in labels)
    series = f'{source.spec(op)}{{signal=\\"{source.signal}\\",{matchers}}}'
    return (f'{{{{ with printf "{series}" {args} | query }}}}{{{{ . | first | value | printf "%.4g" }}}}'
            "{{ else }}?{{ end }}")


def _judged_how(cfg: RuleConfig, source: Source) -> str:
    s, a = setting(cfg, source), cfg.profile.anomaly
    if _counted(source, cfg) is None:
        return f"smoothed over {a.smoothing_of(s)}; judged at {s.min_traffic:g} {source.traffic_what} or more"
    return (f"judged as a count: the last {s.count_window} against the baseline ratio x its requests, at "
            f"{s.min_traffic:g} expected or more")


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    sources = enabled(cfg)
    interval = cfg.profile.anomaly.evaluation_interval
    return [
        {"name": "mlscope-anomaly-recording", "interval": interval,
         "rules": [r for s in sources for r in recording_rules(cfg, s)]},
        {"name": "mlscope-anomaly-alerts", "interval": interval, "rules": [alert_rule(cfg, s) for s in sources]},
    ]
