"""Alert rules of pipelines, batch jobs and training runs (``mlscope.pipelines``).

Every alert reads gauges of facts (last success and failure times, last-run record counts, the newest
event time, the last batch's check results) that a pushed group keeps after its job has exited: none reads
``up`` (a pushed group has none of its own) or whether a series is there (a group never goes away by itself).
The stale alert's description says when the pipeline's group last reached the Pushgateway
(``push_time_seconds``): a job that still runs but fails, or one that stopped running.
"""
from __future__ import annotations

from typing import Any

from ..catalog import pipelines as cat
from .builders import alert, group, selector
from .config import RuleConfig, duration_seconds

# The "Data pipeline health" dashboard (dashboards/pipelines.py); pipeline-scoped alerts select their pipeline.
DASHBOARD = "mlscope-pipelines"
PIPELINE = "{{ $labels.pipeline }}"


def _metric(cfg: RuleConfig, name: str, *matchers: str) -> str:
    return name + selector(cfg.selectors.model_service, *matchers)


def _last(cfg: RuleConfig, spec: cat.MetricSpec[Any], by: str = "pipeline") -> str:
    return f"max by ({by}) ({_metric(cfg, spec.name)})"


def _failed_last(cfg: RuleConfig, failure: cat.MetricSpec[Any], success: cat.MetricSpec[Any], by: str) -> str:
    """The last failure's time where it is later than the last success (or there was none): the last run failed."""
    failed, succeeded = _last(cfg, failure, by), _last(cfg, success, by)
    return f"{failed} > ({succeeded} or {failed} * 0)"


def _stale(cfg: RuleConfig) -> str:
    """Seconds since the last success, where above ``stale_factor`` times the pipeline's expected interval
    (its own ``mlscope_pipeline_expected_interval_seconds``, else the profile's default)."""
    factor = cfg.thresholds.pipeline_stale_factor
    age = f"time() - {_last(cfg, cat.LAST_SUCCESS)}"
    expected = _last(cfg, cat.EXPECTED_INTERVAL)
    default = duration_seconds(cfg.profile.pipeline_expected_interval) * factor
    return (f"({age}) > on (pipeline) ({expected} * {factor:g}) "
            f"or (({age}) > {default:g} unless on (pipeline) {expected})")


def _rejected_ratio(cfg: RuleConfig) -> str:
    by = "pipeline, step"
    rejected, read = (f"sum by ({by}) ({_metric(cfg, cat.LAST_RECORDS.name, kind)})"
                      for kind in ('kind="rejected"', 'kind="in"'))
    return f"{rejected} / {read} > {cfg.thresholds.pipeline_rejected_ratio:g}"


LAST_PUSH = ('{{ with printf "time() - max(push_time_seconds{pipeline=%q})" $labels.pipeline | query }} Its group '
             "last reached the Pushgateway {{ . | first | value | humanizeDuration }} ago.{{ end }}")


def alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    t, p = cfg.thresholds, cfg.profile
    max_age = duration_seconds(p.pipeline_max_data_age)
    checks = f"{_last(cfg, cat.CHECK_FAILURES, 'pipeline, check')} > 0"
    return [
        alert(cfg, "PipelineRunFailed", _failed_last(cfg, cat.LAST_FAILURE, cat.LAST_SUCCESS, "pipeline"),
              severity="critical", dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: its last run failed",
              description=f"The last run of pipeline {PIPELINE} failed at {{{{ $value | humanizeTimestamp }}}}, "
                          "after its last success (if any); its run_end log line names the error type and the "
                          "failed steps. It resolves with the next successful run."),
        alert(cfg, "PipelineStale", _stale(cfg),
              severity="warning", dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: no successful run within its expected interval",
              description=f"Pipeline {PIPELINE} last succeeded {{{{ $value | humanizeDuration }}}} ago, more than "
                          f"{t.pipeline_stale_factor:g} times its expected interval (its expected_interval_s, "
                          f"else {p.pipeline_expected_interval}).{LAST_PUSH}"),
        alert(cfg, "PipelineRejectedRecordsHigh", _rejected_ratio(cfg),
              severity="warning", for_=p.for_symptom, dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: step {{{{ $labels.step }}}} rejects too many records",
              description=f"Step {{{{ $labels.step }}}} of pipeline {PIPELINE} rejected {{{{ $value | "
                          f"humanizePercentage }}}} of the records it read in its last run (threshold "
                          f"{t.pipeline_rejected_ratio:.0%}); the reasons are in "
                          f"{cat.REJECTED.name} and its step's log line."),
        alert(cfg, "PipelineDataFreshnessLag",
              f"time() - {_last(cfg, cat.NEWEST_EVENT, 'pipeline, step')} > {max_age:g}",
              severity="warning", for_=p.for_symptom, dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: the data of step {{{{ $labels.step }}}} is late",
              description=f"The newest event step {{{{ $labels.step }}}} of pipeline {PIPELINE} has seen is "
                          f"{{{{ $value | humanizeDuration }}}} old (threshold {p.pipeline_max_data_age})."),
        alert(cfg, "PipelineBatchChecksFailing", checks,
              severity="warning", dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"pipeline {PIPELINE}: its last batch fails the {{{{ $labels.check }}}} check",
              description=f"{{{{ $value }}}} features of the last batch of pipeline {PIPELINE} failed the "
                          f"{{{{ $labels.check }}}} check against the reference profile (data quality: more than "
                          f"{t.data_quality_ratio:.0%} of rows, beyond the reference's own missing rate; drift: PSI "
                          f"above the calibrated threshold, at least {t.drift_psi_floor:g}: the model alerts' "
                          "definitions)."),
        alert(cfg, "TrainingRunFailed",
              _failed_last(cfg, cat.TRAINING_LAST_FAILURE, cat.TRAINING_LAST_SUCCESS, "pipeline, model"),
              severity="warning", dashboard=DASHBOARD, pipeline_scoped=True,
              summary=f"{{{{ $labels.model }}}}: its last training run ({PIPELINE}) failed",
              description=f"The last training run of {{{{ $labels.model }}}} (pipeline {PIPELINE}) failed at "
                          "{{ $value | humanizeTimestamp }}, after its last success (if any): the serving version "
                          "stays the previous one. Its training_run_end log line names the error type."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-pipelines-alerts", cfg, alert_rules(cfg))]
