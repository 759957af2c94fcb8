"""Shadow agreement and attribution rules: a shadow's answers against the served version's on the same requests,
and the attribution ranking against the reference's (docs/versions.md).

* ``…:mlscope_shadow_agreement:ratio``: agreeing shadow answers over compared ones, per (served version, shadow
  version) pair and traffic window; the alert reads the first window, behind the shadow warm-up guard (at
  least ``warmup.shadow.min_count`` comparisons of the pair: the minimum traffic, and comparisons as old as the
  window).
* ``…:mlscope_feature_attribution_abs:mean``: the mean |attribution| per feature, version and drift window; the
  rank agreement is the monitor's gauge (computed off the scrape path), read behind the ``attributions``
  warm-up guard of the first drift window and once the process's own window is covered
  (``mlscope_attribution_window_coverage_ratio``). Both guards count the age from the process's start: a counter
  reset (a restart) within the window makes them cold again.
"""
from __future__ import annotations

from typing import Any

from ..catalog import serving as serving_cat
from ..catalog import versions as cat
from .builders import Rule, alert, group, record, selector, warm_up, when_warm
from .config import RuleConfig

BY = "model, model_version"
BY_PAIR = BY + ", shadow_version"
BY_FEATURE = BY + ", feature"
DASHBOARD = "mlscope-versions"
WHO = "{{ $labels.model }} {{ $labels.model_version }}"
SHADOW_ALERT = "ModelShadowDisagreementHigh"
RANK_ALERT = "ModelAttributionRankChanged"


def _sum_increase(series: str, window: str, by: str) -> str:
    return f"sum by ({by}) (increase({series}[{window}]))"


def shadow_rules(cfg: RuleConfig) -> list[Rule]:
    compared = f"{cat.SHADOW_COMPARISONS.name}{selector(cfg.selectors.model_service)}"
    agreed = cat.SHADOW_COMPARISONS.name + selector(cfg.selectors.model_service, 'result="agree"')
    rules = []
    for w in cfg.profile.traffic_windows:
        total = _sum_increase(compared, w, BY_PAIR)
        rules += [record(cat.SHADOW_COMPARED, total, window=w),
                  record(cat.SHADOW_AGREEMENT, f"{_sum_increase(agreed, w, BY_PAIR)} / ({total} > 0)", window=w),
                  warm_up(cat.SHADOW_WARM, "shadow", w, cfg.profile.warmup.shadow, count=total, age=compared,
                          by=BY_PAIR, no_reset=True)]
    return rules


def attribution_rules(cfg: RuleConfig) -> list[Rule]:
    sel = selector(cfg.selectors.model_service)
    sums, counts = f"{cat.ATTRIBUTION_ABS.name}{sel}", f"{cat.ATTRIBUTIONS.name}{sel}"
    rules = []
    for w in cfg.profile.drift_windows:
        mean = f"{_sum_increase(sums, w, BY_FEATURE)} / ({_sum_increase(counts, w, BY_FEATURE)} > 0)"
        rules += [record(cat.ATTRIBUTION_MEAN, mean, window=w),
                  warm_up(serving_cat.WINDOW_WARM, "attributions", w, cfg.profile.warmup.attributions,
                          count=f"max by ({BY}) (increase({counts}[{w}]))", age=counts, by=BY, no_reset=True)]
    return rules


def recording_rules(cfg: RuleConfig) -> list[Rule]:
    return shadow_rules(cfg) + attribution_rules(cfg)


def alert_rules(cfg: RuleConfig) -> list[Rule]:
    v, p = cfg.versions, cfg.profile
    w, dw = p.traffic_windows[0], p.drift_windows[0]
    disagreement = f'1 - {cat.SHADOW_AGREEMENT.name}{{window="{w}"}}'
    sel = selector(cfg.selectors.model_service)
    covered = f"min by ({BY}, window) ({cat.ATTRIBUTION_WINDOW.name}{sel}) >= {p.warmup.attributions.min_age_share:g}"
    rank = (f"min by ({BY}, window) ({cat.ATTRIBUTION_RANK_AGREEMENT.name}{sel}) < {v.attribution_rank_min:g} "
            f"and on ({BY}, window) {covered}")
    return [
        alert(cfg, SHADOW_ALERT, when_warm(f"{disagreement} > {v.shadow_disagreement_max:g}", cat.SHADOW_WARM,
                                           "shadow", w, BY_PAIR),
              severity="warning", for_=p.for_versions, dashboard=DASHBOARD, model_scoped=True,
              summary=f"{WHO}: shadow {{{{ $labels.shadow_version }}}} disagrees on "
                      "{{ $value | humanizePercentage }} of requests",
              description=f"The shadow version {{{{ $labels.shadow_version }}}} answers differently from the served "
                          f"{WHO} on {{{{ $value | humanizePercentage }}}} of the same requests over the last {w} "
                          f"(limit {v.shadow_disagreement_max:.0%}, once at least "
                          f"{p.warmup.shadow.min_count:g} answers were compared): promoting it would change "
                          "that many answers."),
        alert(cfg, RANK_ALERT, when_warm(rank, serving_cat.WINDOW_WARM,
                                         "attributions", dw, BY),
              severity="warning", for_=p.for_drift, dashboard=DASHBOARD, model_scoped=True,
              summary=f"{WHO}: the features that drive its answers changed",
              description=f"The ranking of the features by mean absolute attribution over the last "
                          f"{{{{ $labels.window }}}} agrees with the reference's at Spearman "
                          f"{{{{ $value | printf \"%.2f\" }}}} only (limit {v.attribution_rank_min:g}): {WHO} "
                          "now decides on other features than on its reference data. The features whose share "
                          "of the mean absolute attribution moved most from the reference's: "
                          f"{moved_most(dw)}."),
    ]


def moved_most(window: str, top: int = 3) -> str:
    """A description fragment: the ``top`` features whose share of the total mean |attribution| moved most from
    the reference's over ``window`` (the template's ``query`` function on the alert's version; no extra series)."""
    version = 'model=%q,model_version=%q'
    mean = f'{cat.ATTRIBUTION_MEAN.name}{{{version},window="{window}"}}'
    ref = f"{cat.REFERENCE_ATTRIBUTION.name}{{{version}}}"

    def share(series: str) -> str:
        return f"{series} / on (model, model_version) group_left sum by (model, model_version) ({series})"

    expr = f"sort_desc(topk({top}, abs(({share(mean)}) - on (model, model_version, feature) ({share(ref)}))))"
    args = " ".join(["$labels.model $labels.model_version"] * 4)
    return (f"{{{{ range $i, $s := printf `{expr}` {args} | query }}}}"
            "{{ if $i }}, {{ end }}{{ $s.Labels.feature }} ({{ $s.Value | printf \"%.2f\" }})"
            "{{ end }}")


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-agreement-recording", cfg, recording_rules(cfg)),
            group("mlscope-agreement-alerts", cfg, alert_rules(cfg))]
