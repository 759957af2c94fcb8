"""Data drift: per-feature PSI / JS / KS against calibrated thresholds, prediction drift, input data quality."""
from mlscope import grafana as gf
from mlscope.catalog import AnyMetricSpec, RecordedSpec, serving
from mlscope.catalog import drift as cat
from mlscope.drift import PREDICTION
from mlscope.rules import config_for

S = gf.MODEL_SELECTOR
W = S + ',window="$window"'
FEATURES = W + f',feature=~"$feature",feature!="{PREDICTION}"'
BY = "model, model_version, feature, window"
FLOOR = config_for("default").thresholds.drift_psi_floor


def series(spec: AnyMetricSpec | RecordedSpec, extra: str = "") -> str:
    return f"{spec.name}{{{FEATURES}{extra}}}"


def over_threshold(statistic: RecordedSpec, threshold: RecordedSpec) -> str:
    """Statistic / max(calibrated threshold, floor): 1 and above is drift."""
    return f"{series(statistic)} / on({BY}) clamp_min({series(threshold)}, {FLOOR})"


def issue_share(issues: str) -> str:
    return f'{cat.ISSUE_RATIO.name}{{{W},issue=~"{issues}"}}'


FEATURE = "{{model_version}} {{feature}}"
ISSUE = "{{model_version}} {{feature}} {{issue}}"
PSI_RATIO = over_threshold(cat.PSI, cat.PSI_THRESHOLD)

dashboard = gf.dashboard(
    "mlscope-drift", "mlscope / Data drift",
    description=("Feature and prediction drift over $window against each feature's threshold calibrated on the "
                 "reference profile, and the data quality of the inputs."),
    variables=[*gf.model_variables(), gf.window_variable(cat.PSI.name),
               gf.label_variable("feature", "Feature", cat.PSI.name, W)],
    rows=[
        [gf.stat("Features drifting (PSI above threshold)",
                 gf.prom(f"count({PSI_RATIO} >= 1) or vector(0)"), "short"),
         gf.stat("Worst PSI / threshold", gf.prom(f"max({PSI_RATIO})"), "none", decimals=2),
         gf.stat("Prediction drift (PSI)", gf.prom(f"max({cat.PREDICTION_PSI.name}{{{W}}})"), "none", decimals=3),
         gf.stat("Worst data-quality issue share", gf.prom(f"max({issue_share('.+')}) or vector(0)"), "percentunit",
                 decimals=2)],
        [gf.with_logs(gf.table(
            "Feature drift, worst first (statistic and its calibrated threshold)",
            gf.prom(PSI_RATIO, series(cat.PSI), series(cat.PSI_THRESHOLD), series(cat.JS_DISTANCE),
                    series(cat.JS_THRESHOLD), series(cat.KS), series(cat.KS_THRESHOLD)),
            "none", columns=["PSI / threshold", "PSI", "PSI threshold", "JS distance", "JS threshold", "KS",
                             "KS threshold"], hide=["window"], sort_by="PSI / threshold",
            description=f"Thresholds: mean + 3 sigma over reference chunks (at least {FLOOR} for PSI). KS is "
                        "evaluated at the fine bucket edges of numeric features.")),
         gf.bargauge("PSI relative to its threshold (20 worst)",
                     gf.prom((f"sort_desc(topk(20, {PSI_RATIO}))", FEATURE)), "none", max_=2)],
        [gf.anomaly_band("PSI vs its seasonal band, by feature", "drift", "none", level="feature",
                         legend="{{model_version}} {{feature}}"),
         gf.anomaly_warmup("feature")],
        [gf.heatmap("PSI by feature over time", gf.prom((series(cat.PSI), FEATURE)), "none"),
         gf.with_logs(gf.timeseries("PSI by feature", gf.prom((series(cat.PSI), FEATURE)), "none"))],
        [gf.with_logs(gf.timeseries("Prediction drift: PSI of the model output vs its threshold", gf.prom(
            (f"{cat.PREDICTION_PSI.name}{{{W}}}", "PSI {{model}} {{model_version}}"),
            (f"{cat.PREDICTION_PSI_THRESHOLD.name}{{{W}}}", "threshold {{model}} {{model_version}}")), "none")),
         gf.timeseries("JS distance by feature", gf.prom((series(cat.JS_DISTANCE), FEATURE)), "none"),
         gf.timeseries("KS (binned) by feature", gf.prom((series(cat.KS), FEATURE)), "none")],
        [gf.timeseries("Missing values (share) vs the reference's own rate", gf.prom(
            (issue_share("missing"), FEATURE),
            (f"max by (model, model_version, feature) ({cat.REFERENCE_MISSING.name}{{{S}}}) and on(model, "
             f"model_version, feature) {issue_share('missing')}", "reference {{model_version}} {{feature}}")),
            "percentunit"),
         gf.timeseries("Out-of-range values (share, outside the reference min/max)",
                       gf.prom((issue_share("out_of_range|infinite"), ISSUE)), "percentunit"),
         gf.timeseries("New categories (share, never seen in the reference)",
                       gf.prom((issue_share("new_category"), FEATURE)), "percentunit")],
        [gf.with_logs(gf.timeseries("Schema and type violations per second", gf.prom(
            (f'sum by (model, model_version, feature) (rate({cat.FEATURE_ISSUES.name}{{{S},issue="wrong_type"}}'
             f'[$__rate_interval]))', "wrong type {{model_version}} {{feature}}"),
            (f"sum by (model, model_version, reason) (rate({serving.INVALID_INPUTS.name}{{{S}}}[$__rate_interval]))",
             "rejected {{model_version}} {{reason}}")), "ops")),
         gf.timeseries("Rows checked per second by feature", gf.prom(
             (f'sum by (model, model_version, feature) (rate({cat.FEATURE_OBSERVATIONS.name}{{{S},'
              f'feature=~"$feature"}}[$__rate_interval]))', FEATURE)), "ops"),
         gf.table("Reference profile in use", gf.prom((f"{cat.PROFILE_INFO.name}{{{S}}}", "")), "none",
                  hide=["Value", "__name__", "instance", "job", "service"])],
    ])
