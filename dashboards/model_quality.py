"""Model quality: realised metrics once ground truth arrives, estimates before, baselines, coverage and delay."""
from mlscope import grafana as gf
from mlscope.catalog import quality as cat
from mlscope.rules import config_for

S = gf.MODEL_SELECTOR
W = S + ',window="$window"'
V = "{{model}} {{model_version}}"
RECORDED = cat.RECORDED_BY_LEVEL["model_version"]


def rec(metric_op: str, extra: str = "") -> str:
    """A per-version recorded quality series over ``$window``."""
    return f"{RECORDED[metric_op].name}{{{W}{extra}}}"


def baseline(metric: str) -> str:
    return f'max by (model, model_version) ({cat.BASELINE.name}{{{S},metric="{metric}"}})'


def versus(title: str, realised: str, estimated: str | None, metric: str, unit: str = "percentunit") -> object:
    """Realised (and estimated) values over time with the version's validation baseline on one panel."""
    queries = [(rec(realised), "realised " + V)]
    if estimated:
        queries.append((rec(estimated), "estimated " + V))
    queries.append((baseline(metric), "baseline " + V))
    return gf.with_logs(gf.timeseries(title, gf.prom(*queries), unit, description=(
        "Realised: joined with ground truth over $window. Estimated: confidence-based (expected confusion "
        "matrix), available before labels. Baseline: the version's score on its validation data.")))


ACCURACY, F1 = "mlscope_quality_accuracy:ratio", "mlscope_quality_f1:macro"
EST_ACCURACY, EST_F1 = "mlscope_quality_estimated_accuracy:ratio", "mlscope_quality_estimated_f1:macro"
COVERAGE, LABELLED = "mlscope_quality_coverage:ratio", "mlscope_quality_labelled:increase"
MAE, RMSE = "mlscope_quality_absolute_error:mean", "mlscope_quality_squared_error:root_mean"
DELAY_P50, DELAY_P90 = "mlscope_quality_label_delay_seconds:p50", "mlscope_quality_label_delay_seconds:p90"
AUC = f"{cat.ROC_AUC_MACRO.name}{{{W},segment=\"\"}}"
CALIBRATION_MAX = config_for("default").thresholds.calibration_max_error
PER_CLASS_F1 = cat.recorded_name("model_version", "mlscope_quality_f1:ratio", per_class=True)

dashboard = gf.dashboard(
    "mlscope-model-quality", "mlscope / Model quality",
    description="Realised quality from late ground truth, confidence-based estimates, baselines, coverage, delay.",
    variables=[*gf.model_variables(), gf.window_variable(RECORDED[COVERAGE].name)],
    rows=[
        [gf.stat("Accuracy", gf.prom(rec(ACCURACY)), "percentunit", decimals=3),
         gf.stat("Macro F1", gf.prom(rec(F1)), "percentunit", decimals=3),
         gf.stat("ROC AUC (macro)", gf.prom(AUC), "none", decimals=3),
         gf.stat("MAE", gf.prom(rec(MAE)), "short", decimals=3),
         gf.stat("Ground-truth coverage", gf.prom(rec(COVERAGE)), "percentunit", decimals=1),
         gf.stat("Label delay p90", gf.prom(rec(DELAY_P90)), "s")],
        [versus("Accuracy: realised vs estimated vs baseline", ACCURACY, EST_ACCURACY, "accuracy"),
         versus("Macro F1: realised vs estimated vs baseline", F1, EST_F1, "f1_macro")],
        [gf.table("Quality by version (classification)",
                  gf.prom(rec(ACCURACY), rec(EST_ACCURACY), rec(F1), AUC, rec(COVERAGE), rec(LABELLED)),
                  "none", columns=["accuracy", "estimated accuracy", "macro F1", "ROC AUC", "coverage",
                                   "labelled"], hide=["window", "segment"], sort_by="accuracy"),
         gf.with_logs(gf.timeseries("ROC AUC (macro) by version", gf.prom((AUC, V)), "none",
                                    description="Computed by the exporter from binned class scores; within "
                                                + cat.ROC_AUC_MAX_ERROR.name + " of the exact value."))],
        [gf.with_logs(gf.timeseries("F1 per class", gf.prom(
            (f"{PER_CLASS_F1}{{{W}}}", "{{model_version}} class {{class}}")), "percentunit")),
         gf.with_logs(gf.timeseries("MAE and RMSE by version (regression)", gf.prom(
             (rec(MAE), "MAE " + V), (rec(RMSE), "RMSE " + V), (baseline("mae"), "baseline MAE " + V),
             (baseline("rmse"), "baseline RMSE " + V)), "short"))],
        [gf.timeseries("Ground-truth coverage (joined / stored predictions)",
                       gf.prom((rec(COVERAGE), V)), "percentunit"),
         gf.timeseries("Label delay p50 / p90", gf.prom((rec(DELAY_P50), "p50 " + V), (rec(DELAY_P90), "p90 " + V)),
                       "s"),
         gf.timeseries("Outcomes not joined per second, by reason",
                       gf.prom((f"sum by (model, model_version, reason) (rate({cat.OUTCOMES_REJECTED.name}"
                                f"{{{S}}}[$__rate_interval])) or on() vector(0)",
                                "{{model}} {{model_version}} {{reason}}")), "ops",
                       description="model=__unknown__ when the outcome's request id matches no stored prediction.")],
        [gf.bargauge("Calibration error on the labelled reference (raw vs calibrated)", gf.prom((
            f"max by (model, model_version, scores) ({cat.CALIBRATION_ERROR.name}{{{S}}})",
            "{{model}} {{model_version}} {{scores}}")), "none", max_=0.3,
            steps=gf.thresholds((None, "green"), (CALIBRATION_MAX, "red")), description=(
                "Held-out top-label calibration error of the version's reference profile. Estimates use the "
                f"calibrated probabilities; above {CALIBRATION_MAX:g} (thresholds.calibration_max_error) they "
                "are refused and the estimated-quality alert is silent.")),
         gf.timeseries("Estimates refused per second, by reason", gf.prom((
             f"sum by (model, model_version, reason) (rate({cat.ESTIMATES_REFUSED.name}{{{S}}}"
             "[$__rate_interval])) or on() vector(0)", "{{model}} {{model_version}} {{reason}}")), "ops",
             description="Predictions left out of the estimates because the version's reference cannot calibrate "
                         "the model (the service logs why at start-up); see docs/quality.md.")],
        [gf.anomaly_band("Accuracy vs its seasonal band", "quality", "percentunit"),
         gf.anomaly_band("Estimated accuracy vs its seasonal band", "estimated_quality", "percentunit"),
         gf.anomaly_warmup()],
    ])
