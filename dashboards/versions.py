"""Versions compared: a model's candidate (canary) beside its baseline, the comparisons, their guards and alerts."""
from mlscope import grafana as gf
from mlscope.catalog import RecordedSpec, drift, serving
from mlscope.catalog import quality as q
from mlscope.catalog import versions as cat
from mlscope.rules import agreement as agreement_rules
from mlscope.rules import versions as versions_rules
from mlscope.rules.config import config_for

M = 'model=~"$model"'
W = M + ',window="$window"'
C = W + ',model_version=~"$model_version"'  # comparisons: the candidate is the series' model_version
V = "{{model_version}}"
VS = V + " vs {{baseline_version}}"
QUALITY = q.RECORDED_BY_LEVEL["model_version"]
ALERTS = "|".join(dict.fromkeys(r["alert"] for r in versions_rules.alert_rules(config_for("default"))
                                + agreement_rules.alert_rules(config_for("default"))))
PAIR = "{{model_version}} vs shadow {{shadow_version}}"
# $window: the windows of every series a panel filters on it, so a model without a canary (one served version and
# a shadow, attributions) lists its windows too.
WINDOWED = (cat.GUARD, cat.TRAFFIC_SHARE, serving.ERROR_RATIO, serving.LATENCY_P95, cat.CLASS_SHARE,
            QUALITY["mlscope_quality_accuracy:ratio"], QUALITY["mlscope_quality_estimated_accuracy:ratio"],
            drift.PREDICTION_PSI, cat.SHADOW_AGREEMENT, cat.ATTRIBUTION_MEAN)
WINDOWS = "{__name__=~\"" + "|".join(dict.fromkeys(s.name for s in WINDOWED)) + "\"," + M + "}"
DISAGREEING = (f"topk(10, sum by (model_version, shadow_version, served_class, shadow_class) "
               f"(increase({cat.SHADOW_DISAGREEMENTS.name}{{{M}}}[$__range])))")


def by_version(spec: RecordedSpec) -> str:
    return f"{spec.name}{{{W}}}"


def compared(spec: RecordedSpec) -> str:
    return f"{spec.name}{{{C}}}"


dashboard = gf.dashboard(
    "mlscope-versions", "mlscope / Versions compared",
    description="A model's candidate versions beside its baseline over the same window and traffic: traffic split, "
                "errors, latency, outputs, quality, drift, the comparison guards and alerts (docs/versions.md).",
    variables=[gf.label_variable("model", "Model", cat.ROLE.name),
               gf.label_variable("model_version", "Candidate", cat.ROLE.name, M + ',role="canary"'),
               gf.variable("window", "Window", f"label_values({WINDOWS}, window)", all_value=None, multi=False)],
    rows=[
        [gf.table("Roles now (baseline: the declared stable version, else the most traffic, with hysteresis)",
                  gf.prom(f"{cat.ROLE.name}{{{M}}}"), hide=["Value", "__name__"], sort_by="role"),
         gf.table("Comparison guards (1: both versions hold enough data in the window)",
                  gf.prom(f"{cat.GUARD.name}{{{C}}}"), hide=["__name__"], sort_by="domain"),
         gf.table("Comparison alerts", gf.prom(f'ALERTS{{alertname=~"{ALERTS}",{M}}}'), sort_by="alertstate")],
        [gf.timeseries("Traffic share by version", gf.prom((by_version(cat.TRAFFIC_SHARE), V)), "percentunit",
                       stacked=True),
         gf.timeseries("Traffic split weights (what the rollback sets)",
                       gf.prom((f"max by (model, model_version) ({cat.TRAFFIC_WEIGHT.name}{{{M}}})", V)),
                       "percentunit")],
        [gf.with_logs(gf.timeseries("Error ratio by version", gf.prom((by_version(serving.ERROR_RATIO), V)),
                                    "percentunit")),
         gf.timeseries("Error ratio: candidate minus baseline", gf.prom(
             (compared(cat.ERROR_RATIO_DIFFERENCE), VS)), "percentunit")],
        [gf.with_logs(gf.timeseries("p95 latency by version", gf.prom((by_version(serving.LATENCY_P95), V)), "s")),
         gf.timeseries("p95 latency: candidate / baseline", gf.prom((compared(cat.LATENCY_P95_RATIO), VS)), "none")],
        [gf.timeseries("Predicted-class shares by version", gf.prom(
            (by_version(cat.CLASS_SHARE), V + " class {{class}}")), "percentunit"),
         gf.timeseries("Output divergence: PSI and Jensen-Shannon distance", gf.prom(
             (compared(cat.OUTPUT_PSI), "PSI " + VS), (compared(cat.OUTPUT_JS), "JS distance " + VS)), "none")],
        [gf.timeseries("Accuracy by version: realised and estimated", gf.prom(
            (by_version(QUALITY["mlscope_quality_accuracy:ratio"]), "realised " + V),
            (by_version(QUALITY["mlscope_quality_estimated_accuracy:ratio"]), "estimated " + V)), "percentunit"),
         gf.timeseries("Quality: candidate minus baseline", gf.prom(
             (compared(cat.ACCURACY_DIFFERENCE), "accuracy " + VS), (compared(cat.F1_DIFFERENCE), "macro F1 " + VS),
             (compared(cat.ESTIMATED_ACCURACY_DIFFERENCE), "estimated accuracy " + VS)), "none")],
        [gf.timeseries("Prediction drift (PSI against each version's reference)", gf.prom(
            (by_version(drift.PREDICTION_PSI), V)), "none"),
         gf.timeseries("Feature PSI: candidate minus baseline", gf.prom(
             (compared(cat.FEATURE_PSI_DIFFERENCE), "{{feature}} " + VS)), "none")],
        [gf.timeseries("Shadow agreement: share of the shadow's answers equal to the served ones", gf.prom(
            (by_version(cat.SHADOW_AGREEMENT), PAIR)), "percentunit",
            description="Same requests, the shadow's answer not served: the share of answers a promotion would "
                        "keep (classes equal; regression values within the monitor's shadow_tolerance)."),
         gf.table("Disagreements by (served class, shadow class) over the range", gf.prom(DISAGREEING),
                  hide=["__name__"], sort_by="Value")],
        [gf.timeseries("Mean |attribution| per feature and version (top 10)", gf.prom(
            (f"topk by (model_version) (10, {by_version(cat.ATTRIBUTION_MEAN)})", V + " {{feature}}")), "none",
            description="How much each feature moves the answers on average (absolute SHAP value or linear "
                        "contribution over the window)."),
         gf.bargauge("Reference ranking: mean |attribution| per feature in the reference profile", gf.prom(
             (f"sort_desc({cat.REFERENCE_ATTRIBUTION.name}{{{M}}})", V + " {{feature}}")), "none"),
         gf.timeseries("Attribution rank agreement with the reference (Spearman, top features)", gf.prom(
             (f"{cat.ATTRIBUTION_RANK_AGREEMENT.name}{{{M}}}", V + " over {{window}}")), "none",
             description="1: the features rank as on the reference data; 0: unrelated; below "
                         "versions.attribution_rank_min the alert fires.")],
    ])
