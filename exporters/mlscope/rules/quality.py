"""Recording and alert rules for model quality with late ground truth.

Metrics follow scikit-learn's definitions over the pairs joined in the window:
labels are every class seen as actual or predicted, and a class's precision
(recall) is 0 when it was never predicted (never actual), as with
``zero_division=0``. Every counter of a registered version exists from 0 and all
come from one target, so ``increase()`` extrapolates them alike and the ratios
are exact. The same rules run on the expected confusion matrix for the
confidence-based estimates.
"""
from __future__ import annotations

from typing import Any

from ..catalog import quality as cat
from ..catalog.genai import GENERATIONS as GENAI_GENERATIONS
from ..catalog.serving import WINDOW_WARM
from .builders import Rule, alert, group, record, selector, warm_up, when_warm
from .config import RuleConfig

DASHBOARD = "mlscope-model-quality"
# Generative versions (mlscope.genai): their outcomes are user feedback, sparse by nature, so their coverage
# is shown (mlscope-genai dashboard) and not alerted on.
GENERATIVE = f"group by (model, model_version) ({GENAI_GENERATIONS.name})"
VERSION = "model_version"


class _Level:
    """Rule expressions for one aggregation level and window."""

    def __init__(self, cfg: RuleConfig, level: str, window: str) -> None:
        self.by = ", ".join(cat.LEVELS[level])
        self.window = window
        self.specs = cat.RECORDED_BY_LEVEL[level]
        matchers = [cfg.selectors.quality] + (['segment!=""'] if "segment" in level else [])
        self.sel = selector(*matchers)

    def increase(self, metric: str, extra: str = "") -> str:
        return f"sum by ({self.by}{extra}) (increase({metric}{self.sel}[{self.window}]))"

    def per_class(self, metric: str, label: str) -> str:
        """Counts per class from a matrix counter, keyed by ``label`` (actual_class or predicted_class)."""
        inner = self.increase(metric, f", {label}")
        return f'sum by ({self.by}, class) (label_replace({inner}, "class", "$1", "{label}", "(.*)"))'

    def rec(self, metric_op: str) -> str:
        return f'{self.specs[metric_op].name}{{window="{self.window}"}}'

    def record(self, metric_op: str, expr: str) -> Rule:
        return record(self.specs[metric_op], expr, window=self.window)


REALISED = ("mlscope_quality_actual:increase", "mlscope_quality_predicted:increase",
            "mlscope_quality_correct:increase")
EXPECTED = ("mlscope_quality_expected_actual:increase", "mlscope_quality_expected_predicted:increase",
            "mlscope_quality_expected_correct:increase")
PER_CLASS_TO_MACRO = (("mlscope_quality_precision:ratio", "mlscope_quality_precision:macro"),
                      ("mlscope_quality_recall:ratio", "mlscope_quality_recall:macro"),
                      ("mlscope_quality_f1:ratio", "mlscope_quality_f1:macro"))


def matrix_counts(lv: _Level, ops: tuple[str, str, str], correct: str, matrix: str) -> list[Rule]:
    """Per-class actual, predicted and correct counts of one (realised or expected) confusion matrix."""
    return [lv.record(ops[0], lv.per_class(matrix, "actual_class")),
            lv.record(ops[1], lv.per_class(matrix, "predicted_class")),
            lv.record(ops[2], lv.increase(correct, ", class"))]


def realised(lv: _Level) -> list[Rule]:
    """Precision, recall, F1 per class and macro, and accuracy, as scikit-learn (zero_division=0)."""
    actual, predicted, correct = (lv.rec(op) for op in REALISED)
    seen = f"0 * ({actual} + {predicted} > 0)"
    rules = matrix_counts(lv, REALISED, cat.CORRECT.name, cat.CONFUSION.name) + [
        lv.record("mlscope_quality_precision:ratio", f"{correct} / ({predicted} > 0) or {seen}"),
        lv.record("mlscope_quality_recall:ratio", f"{correct} / ({actual} > 0) or {seen}"),
        lv.record("mlscope_quality_f1:ratio", f"2 * {correct} / ({actual} + {predicted} > 0)"),
        lv.record("mlscope_quality_accuracy:ratio",
                  f"sum by ({lv.by}) ({correct}) / (sum by ({lv.by}) ({actual}) > 0)"),
    ]
    return rules + [lv.record(macro, f"avg by ({lv.by}) ({lv.rec(per_class)})")
                    for per_class, macro in PER_CLASS_TO_MACRO]


def estimated(lv: _Level) -> list[Rule]:
    """The same definitions over the expected confusion matrix (confidence-based estimation)."""
    actual, predicted, correct = (lv.rec(op) for op in EXPECTED)
    return matrix_counts(lv, EXPECTED, cat.EXPECTED_CORRECT.name, cat.EXPECTED_CONFUSION.name) + [
        lv.record("mlscope_quality_estimated_f1:ratio", f"2 * {correct} / ({actual} + {predicted} > 0)"),
        lv.record("mlscope_quality_estimated_accuracy:ratio",
                  f"sum by ({lv.by}) ({correct}) / (sum by ({lv.by}) ({predicted}) > 0)"),
        lv.record("mlscope_quality_estimated_f1:macro",
                  f"avg by ({lv.by}) ({lv.rec('mlscope_quality_estimated_f1:ratio')})"),
        lv.record("mlscope_quality_expected_predictions:increase", f"sum by ({lv.by}) ({predicted})"),
    ]


def coverage_and_delay(lv: _Level) -> list[Rule]:
    labelled = lv.rec("mlscope_quality_labelled:increase")
    stored = lv.rec("mlscope_quality_predictions_stored:increase")
    buckets = f"sum by ({lv.by}, le) (rate({cat.LABEL_DELAY.name}_bucket{lv.sel}[{lv.window}]))"
    return [
        lv.record("mlscope_quality_labelled:increase", lv.increase(cat.LABELLED.name)),
        lv.record("mlscope_quality_predictions_stored:increase", lv.increase(cat.PREDICTIONS_STORED.name)),
        # Labels arriving in the window per prediction made in it: above 1 after a traffic drop, so clamped.
        lv.record("mlscope_quality_coverage:ratio", f"clamp_max({labelled} / ({stored} > 0), 1)"),
        lv.record("mlscope_quality_label_delay_seconds:p50", f"histogram_quantile(0.5, {buckets})"),
        lv.record("mlscope_quality_label_delay_seconds:p90", f"histogram_quantile(0.9, {buckets})"),
    ]


def regression(lv: _Level) -> list[Rule]:
    pairs = lv.increase(cat.REGRESSION_PAIRS.name)
    nonzero = f"({pairs} - {lv.increase(cat.ZERO_TARGETS.name)})"
    return [
        lv.record("mlscope_quality_regression_pairs:increase", pairs),
        lv.record("mlscope_quality_absolute_error:mean", f"{lv.increase(cat.ABSOLUTE_ERROR.name)} / ({pairs} > 0)"),
        lv.record("mlscope_quality_squared_error:root_mean",
                  f"sqrt({lv.increase(cat.SQUARED_ERROR.name)} / ({pairs} > 0))"),
        lv.record("mlscope_quality_absolute_percentage_error:mean",
                  f"{lv.increase(cat.ABSOLUTE_PERCENTAGE_ERROR.name)} / ({nonzero} > 0)"),
    ]


# Warm-up guard domains of the quality windows and the version-level count each one needs.
GUARD_COUNTS = {"quality": "mlscope_quality_labelled:increase",
                "estimated": "mlscope_quality_expected_predictions:increase",
                "coverage": "mlscope_quality_predictions_stored:increase"}
BY_VERSION = "model, model_version"


def warm_rules(lv: _Level, cfg: RuleConfig) -> list[Rule]:
    """The version's warm-up guards of one window; its age is the one of its prediction store's counters."""
    stored = f"{cat.PREDICTIONS_STORED.name}{lv.sel}"
    return [warm_up(WINDOW_WARM, domain, lv.window, getattr(cfg.profile.warmup, domain), count=lv.rec(op),
                    age=stored, by=BY_VERSION) for domain, op in GUARD_COUNTS.items()]


def recording_rules(cfg: RuleConfig, level: str) -> list[Rule]:
    rules = []
    for window in cfg.profile.quality_windows:
        lv = _Level(cfg, level, window)
        rules += realised(lv) + estimated(lv) + coverage_and_delay(lv) + regression(lv)
        rules += warm_rules(lv, cfg) if level == VERSION else []
    return rules


ON = "on (model, model_version)"


def _vs_baseline(lv: _Level, op: str, comparison: str, metric: str, change: str) -> str:
    """``recorded <comparison> (baseline <change>)``; group_left keeps the recorded series' labels (window)."""
    baseline = f'max by (model, model_version) ({cat.BASELINE.name}{{metric="{metric}"}})'
    return f"{lv.rec(op)} {comparison} {ON} group_left () ({baseline} {change})"


def _guarded(lv: _Level, condition: str, domain: str) -> str:
    """``condition`` only where the window's warm-up guard of ``domain`` says warm."""
    return when_warm(condition, WINDOW_WARM, domain, lv.window, BY_VERSION)


def calibrated(cfg: RuleConfig) -> str:
    """Versions whose reference calibrated the model within the bound: the only ones estimates may alert on."""
    error = cat.CALIBRATION_ERROR.name + selector(cfg.selectors.quality, 'scores="calibrated"')
    return f"max by (model, model_version) ({error}) <= {cfg.thresholds.calibration_max_error:g}"


def alert_rules(cfg: RuleConfig) -> list[Rule]:
    t, p = cfg.thresholds, cfg.profile
    first, last = (_Level(cfg, VERSION, w) for w in (p.quality_windows[0], p.quality_windows[-1]))
    who = "{{ $labels.model }} {{ $labels.model_version }}"
    drop, least = f"- {t.quality_max_drop:g}", p.warmup.quality.min_count
    enough = f"(at least {least:g} labelled outcomes)."

    def rule(name: str, expr: str, severity: str, summary: str, description: str, **kw: Any) -> Rule:
        return alert(cfg, name, expr, severity=severity, for_=p.for_symptom, dashboard=DASHBOARD, model_scoped=True,
                     summary=f"{who}: {summary}", description=description, **kw)

    rules = [rule("ModelQualityBelowBaseline",
                  _guarded(first, _vs_baseline(first, op, "<", metric, drop), "quality"),
                  "warning", f"{metric} more than {t.quality_max_drop:g} below its baseline",
                  f"Realised {metric} of {who} over the last {first.window} is {{{{ $value | printf \"%.3f\" }}}}, "
                  f"more than {t.quality_max_drop:g} below the version's validation baseline {enough}",
                  labels={"metric": metric})
             for metric, op in (("accuracy", "mlscope_quality_accuracy:ratio"),
                                ("f1_macro", "mlscope_quality_f1:macro"))]
    increase = t.regression_max_error_increase
    return rules + [
        rule("ModelRegressionErrorAboveBaseline",
             _guarded(first, _vs_baseline(first, "mlscope_quality_absolute_error:mean", ">", "mae",
                                          f"* {1 + increase:g}"), "quality"),
             "warning", f"MAE more than {increase:.0%} above its baseline",
             f"MAE of {who} over the last {first.window} is {{{{ $value | printf \"%.4g\" }}}}, more than "
             f"{increase:.0%} above the version's validation baseline {enough}"),
        rule("ModelEstimatedQualityBelowBaseline",
             _guarded(first, _vs_baseline(first, "mlscope_quality_estimated_accuracy:ratio", "<", "accuracy", drop),
                      "estimated") + f" and {ON} {calibrated(cfg)}",
             "warning", f"estimated accuracy more than {t.quality_max_drop:g} below its baseline",
             f"Confidence-based estimated accuracy of {who} over the last {first.window} is "
             f"{{{{ $value | printf \"%.3f\" }}}}, more than {t.quality_max_drop:g} below the validation baseline, "
             "before any label arrived (probabilities calibrated on the version's labelled reference)."),
        rule("ModelGroundTruthCoverageLow",
             _guarded(last, f"{last.rec('mlscope_quality_coverage:ratio')} < {t.quality_min_coverage}",
                      "coverage") + f" unless {ON} {GENERATIVE}",
             "info", f"ground truth arrives for less than {t.quality_min_coverage:.0%} of predictions",
             f"Over the last {last.window}, outcomes arrived for {{{{ $value | humanizePercentage }}}} of the "
             f"predictions of {who} (threshold {t.quality_min_coverage:.0%}): quality metrics describe only "
             "that share."),
        rule("ModelLabelsLate",
             _guarded(last, f"{last.rec('mlscope_quality_label_delay_seconds:p90')} > {p.label_delay_max_s:g}",
                      "quality"),
             "info", "ground truth arrives late",
             f"90% of the outcomes of {who} joined over the last {last.window} arrived within "
             f"{{{{ $value | humanizeDuration }}}} of their prediction; the limit is {p.label_delay_max_s:g}s."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group(f"mlscope-quality-{level.replace('_', '-')}", cfg, recording_rules(cfg, level))
            for level in cat.LEVELS] + [group("mlscope-quality-alerts", cfg, alert_rules(cfg))]
