"""Recording and alert rules that compare a model's versions: roles, the baseline, candidate vs baseline.

The construction (docs/versions.md explains it with examples):

* **Declared roles**: the rule configuration's (``VersionRules.roles``), else the monitors' (the ``role``
  label of ``mlscope_model_info``); a version whose monitors disagree is counted as a conflict and undeclared.
* **Serving** versions only: a model service exposes their ``mlscope_model_info`` now (not a training job's pushed
  series; a retired version has none), so a replaced version is neither baseline nor candidate while its windows
  still hold its last requests.
* **The baseline**, one per model: among the serving versions of the highest *tier* (declared stable 2,
  undeclared 1, declared canary 0; shadows never), the **incumbent** (this rule's own previous value) stays
  unless another version's traffic share (over the longest traffic window) exceeds its share by
  ``baseline_switch_margin``; without an incumbent, the version with the largest share, ties going to the
  oldest (the smallest ``mlscope_predictions_created``), then to ``topk``. A promotion (the canary declared
  stable) moves the baseline at the first evaluation that sees the new declaration: never zero, never two.
* **Candidates**: every other serving version that is not a shadow (role ``canary``) and that its traffic split
  (if any) gives a share, each compared with the baseline over the same window, each comparison recorded only
  while the guard (``…:mlscope_versions_guard:bool``) says both versions hold enough requests, labels or
  estimated predictions; the alerts read the comparisons where both versions' warm-up guards say warm too.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..catalog import drift as drift_cat
from ..catalog import quality as quality_cat
from ..catalog import serving as serving_cat
from ..catalog import versions as cat
from ..catalog.spec import RecordedSpec
from ..drift.stats import EPSILON
from .builders import Rule, alert, group, record, selector, when_warm
from .config import RoleDeclaration, RuleConfig, WindowGuard

BY = "model, model_version"
DASHBOARD = "mlscope-versions"
ON = f"on ({BY})"
QUALITY = quality_cat.RECORDED_BY_LEVEL["model_version"]
BASELINE_IS = f"({cat.BASELINE.name} == 1)"
# Candidates: canaries, but not one its traffic split gives no share (rolled back, or not live yet): its window
# would go on comparing requests from before the rollback.
CANDIDATES = (f'(max by ({BY}, baseline_version) ({cat.ROLE.name}{{role="canary"}}) '
              f'unless {ON} {cat.TRAFFIC_WEIGHT.name} == 0)')
WHO = "{{ $labels.model }} {{ $labels.model_version }}"
VALUE = '{{ $value | printf "%.3f" }}'
DIVERGE = "ModelCandidateOutputsDiverge"


def _string(value: str) -> str:
    """A PromQL string literal (JSON escaping is PromQL's for the characters a label value may hold)."""
    return json.dumps(value)


def _constant(d: RoleDeclaration) -> str:
    """A one-sample vector with the declaration's labels."""
    expr = "vector(1)"
    for label, value in (("model", d.model), ("model_version", d.model_version), ("role", d.role)):
        expr = f'label_replace({expr}, "{label}", {_string(value)}, "", "")'
    return expr


def _declared(role: str) -> str:
    return f'max by ({BY}) ({cat.ROLE_DECLARED.name}{{role="{role}"}})'


def role_rules(cfg: RuleConfig) -> list[Rule]:
    info = (f"max by ({BY}, role) ({serving_cat.MODEL_INFO.name}"
            f"{selector(cfg.selectors.model_service, 'role=~' + _string('|'.join(cat.ROLES)))})")
    conflict = f"count by ({BY}) ({info}) > 1"
    monitors = f"({info} unless {ON} ({conflict}))"
    configured = " or ".join(_constant(d) for d in cfg.versions.roles)
    declared = f"({configured}) or {ON} {monitors}" if configured else monitors
    registered = f"{serving_cat.MODEL_INFO.name}{selector(cfg.selectors.model_service)}"
    return [record(cat.ROLE_DECLARED, declared), record(cat.ROLE_CONFLICT, conflict),
            record(cat.ROLE_UNKNOWN_VERSION, f"{cat.ROLE_DECLARED.name} unless {ON} {registered}")]


def share_rules(cfg: RuleConfig) -> list[Rule]:
    sel = selector(cfg.selectors.model_service)
    rules = []
    for w in cfg.profile.traffic_windows:
        rate = f"rate({serving_cat.PREDICTIONS.name}{sel}[{w}])"
        rules.append(record(cat.TRAFFIC_SHARE, f"sum by ({BY}) ({rate}) / on (model) group_left () "
                                               f"(sum by (model) ({rate}) > 0)", window=w))
        classes = f"rate({serving_cat.PREDICTED_CLASSES.name}{sel}[{w}])"
        rules.append(record(cat.CLASS_SHARE, f"sum by ({BY}, class) ({classes}) / {ON} group_left () "
                                             f"(sum by ({BY}) ({classes}) > 0)", window=w))
    return rules


def serving(cfg: RuleConfig) -> str:
    """The versions serving now: a model service exposes their ``mlscope_model_info`` (a training job's pushed one
    is not serving; a retired version has none), whatever their windows still hold."""
    info = serving_cat.MODEL_INFO.name
    return (f"group by ({BY}) ({info}{selector(cfg.selectors.model_service)} "
            f"unless {info}{selector(cfg.selectors.pushed)})")


def serving_share(cfg: RuleConfig) -> str:
    """The share (longest traffic window) of each serving version: only these get a baseline or a role."""
    share = f'max by ({BY}) ({cat.TRAFFIC_SHARE.name}{{window="{cfg.profile.traffic_windows[-1]}"}})'
    return f"({share} and {ON} {serving(cfg)})"


def eligible_rule(cfg: RuleConfig) -> Rule:
    """The share of the versions of each model's highest tier (declared stable 2, undeclared 1, canary 0)."""
    share = serving_share(cfg)
    tier = (f"((2 * {_declared('stable')} and {ON} {share}) or {ON} (0 * {_declared('canary')} "
            f"and {ON} {share}) or {ON} (0 * {share} + 1)) unless {ON} {_declared('shadow')}")
    return record(cat.ELIGIBLE, f"{share} and {ON} (({tier}) == on (model) group_left () max by (model) ({tier}))")


def baseline_rule(cfg: RuleConfig) -> Rule:
    """The baseline per model: hysteresis on the eligible share, tie-breaks (the module's docstring)."""
    eligible = cat.ELIGIBLE.name
    incumbent = f"({eligible} and {ON} {BASELINE_IS})"
    beaten = (f"(max by (model) ({eligible}) > on (model) "
              f"(max by (model) ({incumbent}) + {cfg.versions.baseline_switch_margin:g}))")
    keep = f"({incumbent} unless on (model) {beaten})"
    top = f"({eligible} == on (model) group_left () max by (model) ({eligible}))"
    created = (f"(min by ({BY}) ({serving_cat.PREDICTIONS.name.removesuffix('_total')}_created"
               f"{selector(cfg.selectors.model_service)}) and {ON} {top})")
    oldest = f"({created} == on (model) group_left () min by (model) ({created}))"
    new = f"(topk by (model) (1, {oldest} or ({top} unless on (model) {oldest})) unless on (model) {keep})"
    share = serving_share(cfg)
    return record(cat.BASELINE, f"(({keep} or {new}) * 0 + 1) or {ON} (0 * {share})")


def effective_role_rule(cfg: RuleConfig) -> Rule:
    named = f'label_replace({BASELINE_IS}, "baseline_version", "$1", "model_version", "(.*)")'
    per_model = f"max by (model, baseline_version) ({named})"
    shadow = _declared("shadow")
    others = f"(({cat.BASELINE.name} == 0) + 1)"

    def role(expr: str, name: str) -> str:
        return f'label_replace({expr}, "role", "{name}", "", "")'

    with_baseline = f"* on (model) group_left (baseline_version) {per_model}"
    return record(cat.ROLE, f"{role(named, 'stable')} or {role(f'({others} and {ON} {shadow})', 'shadow')} "
                            f"{with_baseline} or {role(f'({others} unless {ON} {shadow})', 'canary')} "
                            f"{with_baseline}")


def _enough(count: str, guard: WindowGuard) -> str:
    """Per version: 1 when ``count`` (summed by version) reaches the guard's minimum, else 0."""
    return f"(max by ({BY}) ({count}) >= bool {guard.min_count:g})"


def guard_rule(domain: str, window: str, ok: str) -> Rule:
    """The comparison guard of each candidate: its ``ok`` times its baseline's (0 where either is missing), and 0
    while its window reaches back to when its split gave it no share: a canary turned back on after a rollback is
    judged on the requests it served since, never on the failures that rolled it back."""
    baseline_ok = f"max by (model) ({ok} and {ON} {BASELINE_IS})"
    off = f"min_over_time({cat.TRAFFIC_WEIGHT.name}[{window}]) == 0"
    both = (f"({CANDIDATES} * {ON} group_left () {ok} * on (model) group_left () {baseline_ok}) "
            f"unless {ON} ({off})")
    return record(cat.GUARD, f"({both}) or {ON} (0 * {CANDIDATES})", domain=domain, window=window)


def guard_rules(cfg: RuleConfig) -> list[Rule]:
    """Minimum requests (every traffic and drift window), labels and estimated predictions (quality windows)."""
    warmup, sel = cfg.profile.warmup, selector(cfg.selectors.model_service)

    def requests(w: str) -> str:
        return _enough(f"increase({serving_cat.PREDICTIONS.name}{sel}[{w}])", warmup.versions_traffic)

    rules = [guard_rule("traffic", w, requests(w)) for w in cfg.profile.traffic_windows]
    rules += [guard_rule("drift", w, requests(w)) for w in cfg.profile.drift_windows]
    for w in cfg.profile.quality_windows:
        for domain, op, guard in (("labels", "mlscope_quality_labelled:increase", warmup.versions_labels),
                                  ("estimated", "mlscope_quality_expected_predictions:increase",
                                   warmup.versions_estimated)):
            rules.append(guard_rule(domain, w, _enough(f'{QUALITY[op].name}{{window="{w}"}}', guard)))
    return rules


def candidate(expr: str) -> str:
    """``expr`` of the candidate versions only, with their ``baseline_version`` label."""
    return f"{expr} * {ON} group_left (baseline_version) {CANDIDATES}"


def of_baseline(expr: str, extra: str = "") -> str:
    """``expr`` of the baseline version, keyed by ``model`` (and ``extra`` labels)."""
    return f"max by (model{extra}) ({expr} and {ON} {BASELINE_IS})"


def _guarded(expr: str, domain: str, window: str) -> str:
    return when_warm(expr, cat.GUARD, domain, window, BY)


def difference(spec: RecordedSpec, series: str, domain: str, window: str) -> Rule:
    x = f'{series}{{window="{window}"}}'
    return record(spec, _guarded(f"{candidate(x)} - on (model) group_left () {of_baseline(x)}",
                                 domain, window), window=window)


def _psi_term(p: str, q: str) -> str:
    return f"({p} - {q}) * ln({p} / {q})"


def _js_term(p: str, q: str) -> str:
    m = f"(({p} + {q}) / 2)"
    return f"0.5 * {p} * log2({p} / {m}) + 0.5 * {q} * log2({q} / {m})"


def divergence_rules(window: str) -> list[Rule]:
    """PSI and JS distance between a candidate's class shares (p) and its baseline's (q), clamped at EPSILON.

    Over every class either version predicted: the candidate's classes (q = EPSILON where the baseline has
    none) plus the baseline's classes the candidate lacks (p = EPSILON), summed as all of the baseline's
    minus those the candidate has, since PromQL cannot join every class of one with every candidate.
    """
    shares = f'{cat.CLASS_SHARE.name}{{window="{window}"}}'
    q_base = of_baseline(shares, ", class")
    q_all = f"({q_base} or on (model, class) 0 * max by (model, class) ({shares}))"
    p = f"clamp_min({candidate(shares)}, {EPSILON})"
    q = f"({p} * 0 + on (model, class) group_left () clamp_min({q_all}, {EPSILON}))"
    q_b, eps = f"clamp_min({q_base}, {EPSILON})", f"{EPSILON}"
    by = f"{BY}, baseline_version"
    rules = []
    for spec, term in ((cat.OUTPUT_PSI, _psi_term), (cat.OUTPUT_JS, _js_term)):
        common = f"sum by ({by}) ({p} * 0 + on (model, class) group_left () ({term(eps, q_b)}))"
        total = (f"sum by ({by}) ({term(p, q)}) + on (model) group_left () sum by (model) ({term(eps, q_b)}) "
                 f"- ({common} or {p} * 0)")
        total = f"sqrt(clamp_min({total}, 0))" if spec is cat.OUTPUT_JS else total
        rules.append(record(spec, _guarded(total, "traffic", window), window=window))
    return rules


def feature_psi_rule(window: str) -> Rule:
    psi = f'{drift_cat.PSI.name}{{window="{window}"}}'
    expr = f"{candidate(psi)} - on (model, feature) group_left () {of_baseline(psi, ', feature')}"
    return record(cat.FEATURE_PSI_DIFFERENCE, _guarded(expr, "drift", window), window=window)


def comparison_rules(cfg: RuleConfig) -> list[Rule]:
    rules = []
    for w in cfg.profile.traffic_windows:
        rules.append(difference(cat.ERROR_RATIO_DIFFERENCE, serving_cat.ERROR_RATIO.name, "traffic", w))
        p95 = f'{serving_cat.LATENCY_P95.name}{{window="{w}"}}'
        rules.append(record(cat.LATENCY_P95_RATIO, _guarded(
            f"{candidate(p95)} / on (model) group_left () ({of_baseline(p95)} > 0)", "traffic", w), window=w))
        rules += divergence_rules(w)
    for w in cfg.profile.quality_windows:
        for spec, op, domain in (
                (cat.ACCURACY_DIFFERENCE, "mlscope_quality_accuracy:ratio", "labels"),
                (cat.F1_DIFFERENCE, "mlscope_quality_f1:macro", "labels"),
                (cat.ESTIMATED_ACCURACY_DIFFERENCE, "mlscope_quality_estimated_accuracy:ratio", "estimated")):
            rules.append(difference(spec, QUALITY[op].name, domain, w))
    return rules + [feature_psi_rule(w) for w in cfg.profile.drift_windows]


def recording_rules(cfg: RuleConfig) -> list[Rule]:
    return (role_rules(cfg) + share_rules(cfg) + [eligible_rule(cfg), baseline_rule(cfg), effective_role_rule(cfg)]
            + guard_rules(cfg) + comparison_rules(cfg))


def both_warm(expr: str, domain: str, window: str) -> str:
    """``expr`` (a candidate's comparison) only where the warm-up guard of ``domain`` says warm for the
    candidate and for its baseline (``builders.when_warm``)."""
    warm = f'{serving_cat.WINDOW_WARM.name}{{domain="{domain}",window="{window}"}} == 1'
    return f"{when_warm(expr, serving_cat.WINDOW_WARM, domain, window, BY)} and on (model) {of_baseline(f'({warm})')}"


def judged(condition: Callable[[str], str], windows: Sequence[str], domain: str = "traffic") -> str:
    """``condition`` over the first of ``windows`` whose comparison guard says enough requests, else over the
    next: a canary too small for the short window (1 % of 38 requests a second is 23 a minute) is judged over the
    longer one rather than never; each term behind both versions' warm-up guards (the alert's ``window`` says
    which window judged it)."""
    terms = []
    for i, window in enumerate(windows):
        term = both_warm(condition(window), "serving", window)
        for shorter in windows[:i]:
            term = f'({term}) unless {ON} {cat.GUARD.name}{{domain="{domain}",window="{shorter}"}} == 1'
        terms.append(f"({term})")
    return " or ".join(terms)


def p95_difference(window: str) -> str:
    """A candidate's p95 latency minus its baseline's (seconds) over ``window``."""
    p95 = f'{serving_cat.LATENCY_P95.name}{{window="{window}"}}'
    return f"({candidate(p95)} - on (model) group_left () {of_baseline(p95)})"


def diverging(js: str, limit: float, resolve_below: float) -> str:
    """``js`` above ``limit``, or above ``resolve_below`` while the alert fires (hysteresis: it resolves below that)."""
    firing = f'ALERTS{{alertname="{DIVERGE}",alertstate="firing"}}'
    return f"{js} > {limit:g} or ({js} > {resolve_below:g} and {ON} {firing})"


def alert_rules(cfg: RuleConfig) -> list[Rule]:
    v, p = cfg.versions, cfg.profile
    qw = p.quality_windows[0]
    against = "{{ $labels.baseline_version }}"

    def worse(signal: str, expr: str, what: str) -> Rule:
        return alert(cfg, "ModelCandidateWorseThanBaseline", expr, severity="critical", for_=p.for_versions,
                     dashboard=DASHBOARD, model_scoped=True, labels={"signal": signal},
                     summary=f"{WHO}: {signal} worse than baseline {against}",
                     description=f"Candidate {WHO} {what}, against its baseline {against} "
                                 f"(for {p.for_versions}, once both hold enough data; margins: error ratio "
                                 f"+{v.error_ratio_margin:.0%}, p95 latency x{v.latency_p95_ratio:g} and "
                                 f"+{v.latency_p95_min_difference_s:g}s, accuracy "
                                 f"and macro F1 -{v.quality_margin:g}); the rollback action returns its traffic "
                                 "to the baseline where it is configured.")

    def win(spec: RecordedSpec, window: str) -> str:
        return f'{spec.name}{{window="{window}"}}'

    margin = -v.quality_margin
    resolve_below = max(v.output_js_distance - v.output_js_hysteresis, 0)
    windows, over = p.traffic_windows, "over the last {{ $labels.window }}"
    return [
        worse("errors", judged(lambda x: f"{win(cat.ERROR_RATIO_DIFFERENCE, x)} > {v.error_ratio_margin:g}", windows),
              f"fails {{{{ $value | humanizePercentage }}}} more requests {over}"),
        worse("latency", judged(lambda x: f"{win(cat.LATENCY_P95_RATIO, x)} > {v.latency_p95_ratio:g} and {ON} "
                                          f"{p95_difference(x)} >= {v.latency_p95_min_difference_s:g}", windows),
              f"has a p95 latency {{{{ $value | printf \"%.2f\" }}}} times higher {over}"),
        worse("quality", both_warm(f"{win(cat.ACCURACY_DIFFERENCE, qw)} < {margin:g} "
                                   f"or {win(cat.F1_DIFFERENCE, qw)} < {margin:g}", "quality", qw),
              f"has a realised accuracy or macro F1 that differs by {VALUE} over the last {qw}"),
        worse("estimated_quality", both_warm(f"{win(cat.ESTIMATED_ACCURACY_DIFFERENCE, qw)} < {margin:g}",
                                             "estimated", qw),
              f"has a confidence-based estimated accuracy that differs by {VALUE} over the last {qw}, before "
              "labels arrive"),
        alert(cfg, DIVERGE, judged(lambda x: diverging(win(cat.OUTPUT_JS, x), v.output_js_distance, resolve_below),
                                   windows),
              severity="warning", for_=p.for_versions, dashboard=DASHBOARD, model_scoped=True,
              summary=f"{WHO}: predicted classes diverge from baseline {against}",
              description=f"The Jensen-Shannon distance between the predicted-class shares of {WHO} and of its "
                          f"baseline {against} is {{{{ $value | printf \"%.3f\" }}}} {over} (limit "
                          f"{v.output_js_distance:g}, resolved below {resolve_below:g}): "
                          "the candidate answers differently on the same traffic."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-versions-recording", cfg, recording_rules(cfg)),
            group("mlscope-versions-alerts", cfg, alert_rules(cfg))]
