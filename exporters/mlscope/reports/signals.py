"""What a page draws: panels over the catalog's recorded series (the ones the dashboards and alerts read), with
the rule configuration's thresholds, and which panels an alert's family calls for.

A :class:`Panel` is a set of PromQL queries over one recorded series each, for one model version; a query's
``{sel}`` is replaced by that version's matchers. Nothing is recomputed here: every expression reads a recorded
series by its catalog name, at the window the alerts read.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from ..catalog import drift as drift_cat
from ..catalog import quality as quality_cat
from ..catalog import serving as serving_cat
from ..rules import config_for
from ..rules.config import RuleConfig

Q = quality_cat.RECORDED_BY_LEVEL["model_version"]


@dataclass(frozen=True)
class Query:
    """One line (or one line per value of ``by``) of a panel."""

    label: str
    expr: str  # PromQL with {sel}: the version's matchers


@dataclass(frozen=True)
class Panel:
    """A chart and its table: the queries, the threshold line (a PromQL or a number), the unit."""

    key: str
    title: str
    unit: str
    queries: tuple[Query, ...]
    threshold: str | float | None = None
    threshold_label: str = ""
    by: str = ""          # a label that splits a query into one line per value (feature, issue)
    top: int = 0          # rank the lines by their largest value and draw the first ``top``
    threshold_for: tuple[str, ...] = ()  # the queries the threshold is about (default: every one)


def _rec(name: str, window: str, extra: str = "") -> str:
    return f'{name}{{{{sel}},window="{window}"{extra}}}'


def panels(cfg: RuleConfig) -> dict[str, Panel]:
    """Every panel a page may draw, by key, at the windows of ``cfg``'s profile."""
    t, p = cfg.thresholds, cfg.profile
    w_t, w_d, w_q = p.alert_window, p.drift_windows[0], p.quality_windows[-1]
    floor = t.drift_psi_floor
    return {panel.key: panel for panel in (
        Panel("traffic", f"Traffic (requests/s, {w_t})", "req/s",
              (Query("requests/s", _rec(serving_cat.REQUEST_RATE.name, w_t)),)),
        Panel("errors", f"Error ratio ({w_t})", "ratio",
              (Query("error ratio", _rec(serving_cat.ERROR_RATIO.name, w_t)),), t.error_ratio, "error_ratio"),
        Panel("latency", f"Latency ({w_t})", "s",
              tuple(Query(q, _rec(spec.name, w_t)) for q, spec in (
                  ("p50", serving_cat.LATENCY_P50), ("p95", serving_cat.LATENCY_P95),
                  ("p99", serving_cat.LATENCY_P99))), t.latency_slo_seconds, "latency_slo_seconds"),
        Panel("drift", f"Feature drift: PSI per feature ({w_d}), ranked", "PSI",
              (Query("PSI", _rec(drift_cat.PSI.name, w_d, ',feature!="__prediction__"')),),
              f"clamp_min({_rec(drift_cat.PSI_THRESHOLD.name, w_d)}, {floor:g})",
              f"calibrated threshold (at least drift_psi_floor {floor:g})", by="feature", top=5),
        Panel("prediction_drift", f"Prediction drift: PSI of the model output ({w_d})", "PSI",
              (Query("PSI", _rec(drift_cat.PREDICTION_PSI.name, w_d)),),
              f"clamp_min({_rec(drift_cat.PREDICTION_PSI_THRESHOLD.name, w_d)}, {floor:g})",
              "calibrated threshold"),
        Panel("data_quality", f"Data quality: share of rows with an issue ({w_d})", "ratio",
              (Query("issue ratio", _rec(drift_cat.ISSUE_RATIO.name, w_d)),), t.data_quality_ratio,
              "data_quality_ratio", by="feature", top=5),
        Panel("quality", f"Quality: realised and estimated ({w_q})", "ratio",
              (Query("accuracy", _rec(Q["mlscope_quality_accuracy:ratio"].name, w_q, ',segment=""')),
               Query("estimated accuracy", _rec(Q["mlscope_quality_estimated_accuracy:ratio"].name, w_q,
                                                ',segment=""')),
               Query("macro F1", _rec(Q["mlscope_quality_f1:macro"].name, w_q, ',segment=""')),
               Query("estimated macro F1", _rec(Q["mlscope_quality_estimated_f1:macro"].name, w_q,
                                                ',segment=""'))),
              f'max by (model, model_version) ({quality_cat.BASELINE.name}{{{{sel}},metric="accuracy"}}) '
              f"- {t.quality_max_drop:g}", f"baseline accuracy - quality_max_drop {t.quality_max_drop:g}",
              threshold_for=("accuracy", "estimated accuracy")),
        Panel("coverage", f"Ground-truth coverage ({w_q})", "ratio",
              (Query("coverage", _rec(Q["mlscope_quality_coverage:ratio"].name, w_q, ',segment=""')),),
              t.quality_min_coverage, "quality_min_coverage"),
        Panel("label_delay", f"Label delay ({w_q})", "s",
              (Query("p50", _rec(Q["mlscope_quality_label_delay_seconds:p50"].name, w_q, ',segment=""')),
               Query("p90", _rec(Q["mlscope_quality_label_delay_seconds:p90"].name, w_q, ',segment=""'))),
              p.label_delay_max_s, "label_delay_max_s"),
    )}


SERVING = ("traffic", "errors", "latency")
QUALITY = ("quality", "coverage", "label_delay", "traffic")
# The panels of each alert family (the rule module that generates the alert).
FAMILY_PANELS: dict[str, tuple[str, ...]] = {
    "serving": SERVING,
    "versions": SERVING + ("quality",),
    "drift": ("drift", "prediction_drift", "traffic"),
    "data_quality": ("data_quality", "traffic", "errors"),
    "quality": QUALITY,
    "genai": SERVING,
}
# Every panel, in page order: what a period report draws.
REPORT_PANELS = ("traffic", "errors", "latency", "drift", "prediction_drift", "data_quality", "quality",
                 "coverage", "label_delay")


@functools.lru_cache(maxsize=4)
def alert_families(profile: str = "default") -> dict[str, str]:
    """Each generated alert's family: the rule module that builds it (drift's data-quality alert apart)."""
    from ..rules import drift, genai, logs, pipelines, quality, resources, serving, versions

    cfg = config_for(profile)
    found: dict[str, str] = {}
    for family, module in (("serving", serving), ("drift", drift), ("quality", quality), ("versions", versions),
                           ("genai", genai), ("pipelines", pipelines), ("logs", logs), ("resources", resources)):
        for rule in (r for g in module.groups(cfg) for r in g["rules"] if "alert" in r):
            name = str(rule["alert"])
            found[name] = "data_quality" if family == "drift" and "DataQuality" in name else family
    return found


def panels_for(alertname: str, profile: str = "default") -> tuple[str, tuple[str, ...]]:
    """(family, panel keys) of an alert; an alert the generator does not know gets the serving panels."""
    family = alert_families(profile).get(alertname, "unknown")
    return family, FAMILY_PANELS.get(family, SERVING)
