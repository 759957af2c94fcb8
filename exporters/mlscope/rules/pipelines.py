"""Alert rules of pipelines, batch jobs and training runs (``mlscope.pipelines``).

Every alert reads gauges of facts (last success, failure and start times, last-run record counts, the newest
event time, the last batch's check results) that a pushed group keeps after its job has exited: none reads
``up`` (a pushed group has none of its own) or whether a series is there (a group never goes away by itself).
Alerts are per pipeline and ``instance`` (a pushed group's bounded shard; a scraped pipeline's target), so a
failed shard is not hidden by another's success. Descriptions state the live number and the threshold it
crossed, the pipeline's own setting read with Prometheus's template function ``query``, and the stale
alert's says when the group last reached the Pushgateway (``push_time_seconds``) and whether the last run
started without ending (still running, or killed).
"""
from __future__ import annotations

from typing import Any

from ..catalog import pipelines as cat
from .builders import alert, group, selector
from .config import RuleConfig, duration_seconds

# The "Data pipeline health" dashboard (dashboards/pipelines.py); pipeline-scoped alerts select their pipeline.
DASHBOARD = "mlscope-pipelines"
PIPELINE = "{{ $labels.pipeline }}{{ with $labels.instance }} (instance {{ . }}){{ end }}"
BY = "pipeline, instance"
# Template arguments and PromQL matchers of the alert's own pipeline and instance (an absent instance is "").
OWN_ARGS = "$labels.pipeline $labels.instance"
OWN = ("pipeline=%q", "instance=%q")


def _metric(cfg: RuleConfig, name: str, *matchers: str) -> str:
    return name + selector(cfg.selectors.model_service, *matchers)


def _last(cfg: RuleConfig, spec: cat.MetricSpec[Any], by: str = BY, *matchers: str) -> str:
    return f"max by ({by}) ({_metric(cfg, spec.name, *matchers)})"


def _in_template(promql: str) -> str:
    """``promql`` as a Go template string literal's content (for ``printf``; ``%q`` verbs stay)."""
    return promql.replace("\\", "\\\\").replace('"', '\\"')


def _query(promql: str, args: str, then: str, otherwise: str = "") -> str:
    """Template text: ``then`` with the first sample of ``promql`` (``printf``-formatted with ``args``) as
    ``.``, else ``otherwise``."""
    text = f'{{{{ with printf "{_in_template(promql)}" {args} | query }}}}{then}'
    return text + (f"{{{{ else }}}}{otherwise}{{{{ end }}}}" if otherwise else "{{ end }}")


def _listing(promql: str, args: str, item: str) -> str:
    """Template text: ``item`` (``$s`` is a sample) for every sample of ``promql``, comma-separated."""
    return (f'{{{{ range $i, $s := printf "{_in_template(promql)}" {args} | query }}}}'
            f"{{{{ if $i }}}}, {{{{ end }}}}{item}{{{{ end }}}}")

def _value(fmt: str) -> str:
    return f"{{{{ . | first | value | {fmt} }}}}"


def _failed_last(cfg: RuleConfig, failure: cat.MetricSpec[Any], success: cat.MetricSpec[Any], by: str) -> str:
    """The last failure's time where it is later than the last success (or there was none): the last run failed."""
    failed, succeeded = _last(cfg, failure, by), _last(cfg, success, by)
    return f"{failed} > ({succeeded} or {failed} * 0)"


def _above_own(value: str, own: str, default: float) -> str:
    """``value`` where above its pipeline's own limit ``own`` (a per-pipeline gauge), else above ``default``."""
    return f"({value}) > on (pipeline) group_left () ({own}) or (({value}) > {default:g} unless on (pipeline) ({own}))"


def _own_setting(cfg: RuleConfig, spec: cat.MetricSpec[Any], default_s: float, scale: float = 1.0) -> str:
    """Template text of a pipeline's own setting (times ``scale``), the profile's default where it states none."""
    times = f" * {scale:g}" if scale != 1.0 else ""
    return _query(f"max({_metric(cfg, spec.name, 'pipeline=%q')}){times} or vector({default_s * scale:g})",
                  "$labels.pipeline", _value("humanizeDuration"))


def _stale(cfg: RuleConfig) -> str:
    """Seconds since the last success (none yet: since the last start), where above ``stale_factor`` times the
    pipeline's expected interval (its own ``mlscope_pipeline_expected_interval_seconds``, else the profile's)."""
    factor = cfg.thresholds.pipeline_stale_factor
    age = f"time() - ({_last(cfg, cat.LAST_SUCCESS)} or {_last(cfg, cat.LAST_START)})"
    expected = f"max by (pipeline) ({_metric(cfg, cat.EXPECTED_INTERVAL.name)}) * {factor:g}"
    return _above_own(age, expected, duration_seconds(cfg.profile.pipeline_expected_interval) * factor)


def _rejected_ratio(cfg: RuleConfig, *matchers: str) -> str:
    """Per step: the share of the records read in its last run that it rejected, where it read any."""
    by = BY + ", step"
    rejected, read = (f"sum by ({by}) ({_metric(cfg, cat.LAST_RECORDS.name, kind, *matchers)})"
                      for kind in ('kind="rejected"', 'kind="in"'))
    return f"{rejected} / ({read} > 0) > {cfg.thresholds.pipeline_rejected_ratio:g}"


ENDED = "mlscope_pipeline_last_(success|failure)_timestamp_seconds"
LAST_PUSH = _query(f"time() - max(push_time_seconds{selector(*OWN)})", OWN_ARGS,
                   f" Its group last reached the Pushgateway {_value('humanizeDuration')} ago.")
NOT_ENDED = _query(f"time() - max({cat.LAST_START.name}{selector(*OWN)}) unless on () "
                   f"(max({{__name__=~\"{ENDED}\",{','.join(OWN)}}}) >= max({cat.LAST_START.name}{selector(*OWN)}))",
                   " ".join([OWN_ARGS] * 3),
                   f" Its last run started {_value('humanizeDuration')} ago and has not ended (still running, or "
                   "killed before it could say so).")


def _check_text(t: Any) -> str:
    """What failing each check means (the model alerts' definitions), by the alert's ``check`` label."""
    quality = f"more than {t.data_quality_ratio:.0%} of rows"
    return ('{{ if eq $labels.check "drift" }}PSI above the feature\'s calibrated threshold, at least '
            f'{t.drift_psi_floor:g}{{{{ else if eq $labels.check "missing" }}}}{quality} beyond the reference\'s '
            'own missing rate{{ else if eq $labels.check "schema" }}absent from the batch, or a column the profile '
            f'does not know{{{{ else }}}}{quality}{{{{ end }}}}')


def alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    t, p = cfg.thresholds, cfg.profile
    checks = f"{_last(cfg, cat.CHECK_FAILURES, BY + ', check')} > 0"
    failed_features = _listing(f"sort_desc({_metric(cfg, cat.CHECK_FEATURE_FAILED.name, *OWN, 'check=%q')} > 0)",
                               f"{OWN_ARGS} $labels.check", "{{ $s.Labels.feature }}")
    twice = f"{OWN_ARGS} {OWN_ARGS}"  # the ratio's numerator and denominator each select the alert's own
    worst = _listing(f"topk(3, {_rejected_ratio(cfg, *OWN)})", twice,
                     "{{ $s.Labels.step }} ({{ $s.Value | humanizePercentage }})")
    steps_above = _query(f"count({_rejected_ratio(cfg, *OWN)})", twice, _value("printf \"%.0f\""), "1")
    stale_factor, interval_s = t.pipeline_stale_factor, duration_seconds(p.pipeline_expected_interval)
    return [
        alert(cfg, "PipelineRunFailed",
              f"time() - ({_failed_last(cfg, cat.LAST_FAILURE, cat.LAST_SUCCESS, BY)})",
              severity="critical", dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: its last run failed",
              description=f"The last run of pipeline {PIPELINE} failed {{{{ $value | humanizeDuration }}}} ago"
                          + _query(f"{cat.LAST_ERROR.name}{selector(*OWN)}", OWN_ARGS,
                                   ' with error type {{ . | first | label "error_type" }}')
                          + ", after its last success (if any); its pipeline_run_end log line names the failed "
                          "steps. It resolves with the next successful run."),
        alert(cfg, "PipelineStale", _stale(cfg),
              severity="warning", dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: no successful run within its expected interval",
              description=f"Pipeline {PIPELINE} "
                          + _query(f"max({cat.LAST_SUCCESS.name}{selector(*OWN)})", OWN_ARGS, "last succeeded",
                                   "has never succeeded; its last run started")
                          + f" {{{{ $value | humanizeDuration }}}} ago, more than {stale_factor:g} times its "
                          f"expected interval of {_own_setting(cfg, cat.EXPECTED_INTERVAL, interval_s)} "
                          f"(threshold {_own_setting(cfg, cat.EXPECTED_INTERVAL, interval_s, stale_factor)}; its "
                          f"expected_interval_s, else the profile's {p.pipeline_expected_interval})."
                          f"{NOT_ENDED}{LAST_PUSH}"),
        alert(cfg, "PipelineRejectedRecordsHigh", f"max by ({BY}) ({_rejected_ratio(cfg)})",
              severity="warning", for_=p.for_symptom, dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: steps reject too many records",
              description=f"{steps_above} step(s) of pipeline {PIPELINE} rejected more than "
                          f"{t.pipeline_rejected_ratio:.0%} of the records they read in their last run, the worst "
                          f"{{{{ $value | humanizePercentage }}}}: {worst} (a step that counted no records read has "
                          f"no share). The reasons are in {cat.REJECTED.name} and each step's log line."),
        alert(cfg, "PipelineDataFreshnessLag",
              _above_own(f"time() - {_last(cfg, cat.NEWEST_EVENT, BY + ', step')}",
                         f"max by (pipeline) ({_metric(cfg, cat.MAX_DATA_AGE.name)})",
                         duration_seconds(p.pipeline_max_data_age)),
              severity="warning", for_=p.for_symptom, dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: the data of step {{{{ $labels.step }}}} is late",
              description=f"Step {{{{ $labels.step }}}} of pipeline {PIPELINE}: the newest event it has seen is "
                          f"{{{{ $value | humanizeDuration }}}} old, above its limit of "
                          f"{_own_setting(cfg, cat.MAX_DATA_AGE, duration_seconds(p.pipeline_max_data_age))} "
                          f"(its max_data_age_s, else the profile's {p.pipeline_max_data_age})."),
        alert(cfg, "PipelineBatchChecksFailing", checks,
              severity="warning", dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: its last batch fails the {{{{ $labels.check }}}} check",
              description=f"{{{{ $value }}}} feature{{{{ if ne $value 1.0 }}}}s{{{{ end }}}} of the last batch of "
                          f"pipeline {PIPELINE} failed the {{{{ $labels.check }}}} check against the reference "
                          f"profile ({_check_text(t)}): {failed_features} (worst first). The "
                          "pipeline_batch_check log line has every share and PSI."),
        alert(cfg, "TrainingRunFailed",
              _failed_last(cfg, cat.TRAINING_LAST_FAILURE, cat.TRAINING_LAST_SUCCESS, BY + ", model"),
              severity="warning", dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"{{{{ $labels.model }}}}: its last training run ({PIPELINE}) failed",
              description=f"The last training run of {{{{ $labels.model }}}} (pipeline {PIPELINE}) failed at "
                          "{{ $value | humanizeTimestamp }}, after its last success (if any): the serving version "
                          "stays the previous one. Its training_run_end log line names the error type."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-pipelines-alerts", cfg, alert_rules(cfg))]
