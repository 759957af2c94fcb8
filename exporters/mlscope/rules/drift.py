"""Recording and alert rules for feature drift, prediction drift and data quality.

The arithmetic is the one of ``mlscope.drift.stats`` (and the tests' numpy
references): shares clamped from below at EPSILON, natural log for PSI,
Jensen-Shannon distance in base 2, KS evaluated at the fine bucket edges (the
CDF divided by the ``le="+Inf"`` bucket: prometheus-client publishes no
``_count`` for a histogram whose first bound is negative), chi-square as the
homogeneity test of the window's counts against the reference's counts. Counts
are summed over every replica before shares are taken, so one value describes
the whole fleet of a version.
"""
from __future__ import annotations

from typing import Any

from ..catalog import drift as cat
from ..drift.profile import PREDICTION
from ..drift.stats import EPSILON
from .builders import alert, group, record, selector, warm_up, when_warm
from .config import RuleConfig

BY_FEATURE = "model, model_version, feature"
BY_BIN = BY_FEATURE + ", bin"
BY_LE = BY_FEATURE + ", le"
BY_WINDOW = BY_FEATURE + ", window"
DASHBOARD = "mlscope-drift"
ALL_VALUES = 'le="+Inf"'  # the bucket every value is in: the histogram's count, which negative bounds drop


def _metric(cfg: RuleConfig, name: str, *matchers: str) -> str:
    return name + selector(cfg.selectors.model_service, *matchers)


def _win(name: str, window: str, *matchers: str) -> str:
    return name + selector(f'window="{window}"', *matchers)


def _share(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` per feature, absent (not NaN) when nothing was counted."""
    return f"{numerator} / on({BY_FEATURE}) group_left() ({denominator} > 0)"


def reference_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    """Reference shares, one value per version whatever the number of replicas publishing them."""
    edge_as_le = f'label_replace({_metric(cfg, cat.REFERENCE_CDF.name)}, "le", "$1", "edge", "(.*)")'
    values = f"max by ({BY_FEATURE}) ({_metric(cfg, cat.REFERENCE_VALUES.name)})"
    return [
        record(cat.REFERENCE_BIN_SHARE, f"max by ({BY_BIN}) ({_metric(cfg, cat.REFERENCE_BIN.name)})"),
        record(cat.REFERENCE_BIN_COUNT, f"{cat.REFERENCE_BIN_SHARE.name} * on({BY_FEATURE}) group_left() {values}"),
        record(cat.REFERENCE_BUCKET_CDF, f"max by ({BY_LE}) ({edge_as_le})"),
    ]


def chi_square(share: str, values: str) -> str:
    """Chi-square homogeneity statistic of the window (shares ``share``, ``values`` counted) against the
    reference's counts: ``n N sum (p - q)^2 / (n p + N q)``, over the bins not empty in both."""
    q, reference = cat.REFERENCE_BIN_SHARE.name, cat.REFERENCE_BIN_COUNT.name
    window_counts = f"{share} * on({BY_WINDOW}) group_left() {values}"
    both = f"({window_counts} + on({BY_BIN}) group_left() {reference})"
    terms = f"({share} - on({BY_BIN}) group_left() {q}) ^ 2 / ({both} > 0)"
    totals = f"{values} * on({BY_FEATURE}) group_left() sum by ({BY_FEATURE}) ({reference})"
    return f"sum by ({BY_WINDOW}) ({terms}) * on({BY_WINDOW}) {totals}"


def window_rules(cfg: RuleConfig, w: str) -> list[dict[str, Any]]:
    bins = f"rate({_metric(cfg, cat.FEATURE_BIN.name)}[{w}])"
    buckets = f"rate({_metric(cfg, cat.FEATURE_VALUE.name + '_bucket')}[{w}])"
    values = f"rate({_metric(cfg, cat.FEATURE_VALUE.name + '_bucket', ALL_VALUES)}[{w}])"
    issues = f"rate({_metric(cfg, cat.FEATURE_ISSUES.name)}[{w}])"
    rows = f"rate({_metric(cfg, cat.FEATURE_OBSERVATIONS.name)}[{w}])"
    share, ref = _win(cat.BIN_SHARE.name, w), f"clamp_min({cat.REFERENCE_BIN_SHARE.name}, {EPSILON})"
    p = f"clamp_min({share}, {EPSILON})"
    mixture = f"(({p} + on({BY_BIN}) group_left {ref}) / 2)"
    ref_here = f"({p} * 0 + on({BY_BIN}) group_left {ref})"  # reference shares, with the window label
    js = f"0.5 * {p} * log2({p} / {mixture}) + 0.5 * {ref_here} * log2({ref_here} / {mixture})"
    cdf_gap = f"abs({_win(cat.BUCKET_CDF.name, w)} - on({BY_LE}) group_left {cat.REFERENCE_BUCKET_CDF.name})"

    def threshold(statistic: str) -> str:
        matcher = 'statistic="' + statistic + '"'
        return f"max by ({BY_FEATURE}) ({_metric(cfg, cat.DRIFT_THRESHOLD.name, matcher)})"

    prediction = f'feature="{PREDICTION}"'
    return [
        record(cat.BIN_SHARE, _share(f"sum by ({BY_BIN}) ({bins})", f"sum by ({BY_FEATURE}) ({bins})"),
               window=w),
        record(cat.BIN_INCREASE, f"sum by ({BY_FEATURE}) (increase({_metric(cfg, cat.FEATURE_BIN.name)}[{w}]))",
               window=w),
        record(cat.BUCKET_CDF, _share(f"sum by ({BY_LE}) ({buckets})", f"sum by ({BY_FEATURE}) ({values})"),
               window=w),
        record(cat.PSI, f"sum by ({BY_WINDOW}) (({p} - on({BY_BIN}) group_left {ref}) "
                        f"* ln({p} / on({BY_BIN}) group_left {ref}))", window=w),
        record(cat.JS_DISTANCE, f"sqrt(clamp_min(sum by ({BY_WINDOW}) ({js}), 0))", window=w),
        record(cat.CHI_SQUARE, chi_square(share, _win(cat.BIN_INCREASE.name, w)), window=w),
        record(cat.KS, f"max by ({BY_WINDOW}) ({cdf_gap})", window=w),
        record(cat.PSI_THRESHOLD, threshold("psi"), window=w),
        record(cat.JS_THRESHOLD, threshold("js_distance"), window=w),
        record(cat.KS_THRESHOLD, threshold("ks"), window=w),
        record(cat.PREDICTION_PSI, f"max without (feature) ({_win(cat.PSI.name, w, prediction)})", window=w),
        record(cat.PREDICTION_PSI_THRESHOLD,
               f"max without (feature) ({_win(cat.PSI_THRESHOLD.name, w, prediction)})", window=w),
        record(cat.ISSUE_RATIO, _share(f"sum by ({BY_FEATURE}, issue) ({issues})", f"sum by ({BY_FEATURE}) ({rows})"),
               window=w),
    ]


def recording_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    rules = reference_rules(cfg)
    for window in cfg.profile.drift_windows:
        rules += window_rules(cfg, window)
    return rules


def _above_threshold(value: str, threshold: str, floor: float) -> str:
    """``value > max(threshold, floor)``; the floor alone where no threshold was calibrated."""
    return f"{value} > (clamp_min({threshold}, {floor}) or {value} * 0 + {floor})"


VERSION = "{{ $labels.model }} {{ $labels.model_version }}"


def warm_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    """Warm-up guards per feature and window: ``drift`` counts present values, ``data_quality`` rows."""
    rules = []
    for window in cfg.profile.drift_windows:
        for domain, counter, guard in (("drift", cat.FEATURE_BIN, cfg.profile.warmup.drift),
                                       ("data_quality", cat.FEATURE_OBSERVATIONS, cfg.profile.warmup.data_quality)):
            series = _metric(cfg, counter.name)
            rules.append(warm_up(cat.FEATURE_WINDOW_WARM, domain, window, guard, by=BY_FEATURE, age=series,
                                 count=f"sum by ({BY_FEATURE}) (increase({series}[{window}]))"))
    return rules


def _threshold_text(threshold: str, on: str, floor: float) -> str:
    """Template text of the threshold an alert of ``on`` labels crossed: the calibrated one, at least ``floor``.

    Prometheus renders it with the template function ``query``, so a notification states the number the
    value was compared with, not only where it comes from; the floor alone where nothing was calibrated.
    """
    labels = [label.strip() for label in on.split(",")]
    matchers = ",".join(f'{label}=\\"%s\\"' for label in labels)
    scoped = threshold[:-1].replace('"', '\\"') + "," + matchers + "}"
    values = " ".join(f"$labels.{label}" for label in labels)
    return (f'{{{{ with printf "clamp_min({scoped}, {floor})" {values} | query }}}}'
            f'{{{{ . | first | value | printf "%.3f" }}}}{{{{ else }}}}{floor}{{{{ end }}}}')


def _drift_alert(cfg: RuleConfig, name: str, psi: str, threshold: str, on: str, summary: str, subject: str,
                 *matchers: str) -> dict[str, Any]:
    """Alert when ``psi`` exceeds its calibrated ``threshold`` (and the floor) once its window is warm."""
    t, w = cfg.thresholds, cfg.profile.drift_windows[0]
    expr = when_warm(_above_threshold(psi, threshold, t.drift_psi_floor), cat.FEATURE_WINDOW_WARM, "drift", w, on,
                     *matchers)
    return alert(cfg, name, expr, severity="warning", for_=cfg.profile.for_drift, dashboard=DASHBOARD,
                 model_scoped=True,
                 summary=f"{VERSION}: {summary}",
                 description=(f"PSI of {subject} of {VERSION} is {{{{ $value | printf \"%.3f\" }}}} over the last "
                              f"{w}, above its threshold {_threshold_text(threshold, on, t.drift_psi_floor)} "
                              f"(calibrated on the reference, at least {t.drift_psi_floor})."))


def alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    t, w = cfg.thresholds, cfg.profile.drift_windows[0]
    ratio = cat.ISSUE_RATIO.name
    reference_missing = (f"max by ({BY_FEATURE}) ({_metric(cfg, cat.REFERENCE_MISSING.name)}) "
                         f"+ {t.data_quality_ratio}")
    not_missing, missing = _win(ratio, w, 'issue!="missing"'), _win(ratio, w, 'issue="missing"')
    quality = when_warm(f"{not_missing} > {t.data_quality_ratio} "
                        f"or {missing} > on({BY_FEATURE}) group_left() ({reference_missing})",
                        cat.FEATURE_WINDOW_WARM, "data_quality", w, BY_FEATURE)
    return [
        _drift_alert(cfg, "FeatureDriftHigh", _win(cat.PSI.name, w, f'feature!="{PREDICTION}"'),
                     _win(cat.PSI_THRESHOLD.name, w), BY_FEATURE,
                     "feature {{ $labels.feature }} drifted from its reference", "feature {{ $labels.feature }}"),
        _drift_alert(cfg, "PredictionDriftHigh", _win(cat.PREDICTION_PSI.name, w),
                     _win(cat.PREDICTION_PSI_THRESHOLD.name, w), "model, model_version",
                     "the distribution of predictions drifted", "the model output", f'feature="{PREDICTION}"'),
        alert(cfg, "FeatureDataQualityDegraded", quality,
              severity="warning", for_=cfg.profile.for_drift, dashboard=DASHBOARD, model_scoped=True,
              summary=f"{VERSION}: feature {{{{ $labels.feature }}}} has {{{{ $labels.issue }}}} values",
              description=("{{ $value | humanizePercentage }} of the values of feature {{ $labels.feature }} of "
                           + VERSION + " were {{ $labels.issue }} over the last " + w + " (threshold "
                           f"{t.data_quality_ratio:.0%}"
                           '{{ if eq $labels.issue "missing" }} above the reference\'s own missing rate{{ end }}).'),),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [
        group("mlscope-drift-recording", cfg, recording_rules(cfg) + warm_rules(cfg)),
        group("mlscope-drift-alerts", cfg, alert_rules(cfg)),
    ]
