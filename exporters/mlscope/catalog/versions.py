"""Model versions compared: roles, the baseline, the candidate-vs-baseline comparisons, traffic weights.

Every comparison is recorded for a candidate version (``model_version``) against the baseline of its model
(``baseline_version``), both over the same ``window``; see docs/versions.md for each formula.
"""
from __future__ import annotations

from .spec import WARM_HELP, MetricSpec, RecordedSpec

#: The roles a model version can carry (declared on the monitor or in the rule configuration).
ROLES = ("stable", "canary", "shadow")

MODEL = ("model", "model_version")
COMPARED = MODEL + ("baseline_version", "window")

TRAFFIC_WEIGHT = MetricSpec(
    "mlscope_traffic_weight_ratio", "gauge",
    "Share of the model's requests a traffic split (mlscope.versions.TrafficSplit) sends to this version; "
    "a rollback sets the candidate's to 0.",
    MODEL, unit="ratio", multiprocess_mode="max")

# -- shadow agreement (ModelMonitor.shadow) -----------------------------------------------------------------
SHADOW = MODEL + ("shadow_version",)
SHADOW_COMPARISONS = MetricSpec(
    "mlscope_shadow_comparisons_total", "counter",
    "Shadow answers compared with the served answer of the same request, by result (agree: the same class, or a "
    "value within the monitor's shadow_tolerance; disagree); model_version is the served version.",
    SHADOW + ("result",))
SHADOW_DISAGREEMENTS = MetricSpec(
    "mlscope_shadow_disagreements_total", "counter",
    "Shadow answers that disagree with the served class, by (served class, shadow class) pair; pairs beyond the "
    "class_pair cap fold into __overflow__ (counted in mlscope_label_overflow_total{label=\"class_pair\"}).",
    SHADOW + ("served_class", "shadow_class"))
SHADOW_PENDING_EVICTED = MetricSpec(
    "mlscope_shadow_pending_evicted_total", "counter",
    "Served answers dropped while waiting for a shadow answer, by reason (capacity: shadow_pending reached; "
    "expired: older than shadow_ttl_s).",
    MODEL + ("reason",))

# -- feature attributions (a prediction's attributions=) ----------------------------------------------------
FEATURE = MODEL + ("feature",)
ATTRIBUTION_ABS = MetricSpec(
    "mlscope_feature_attribution_abs_total", "counter",
    "Sum of the absolute attributions (SHAP values, a linear model's contributions, ...) of the feature over the "
    "version's predictions that carried attributions.", FEATURE)
ATTRIBUTIONS = MetricSpec(
    "mlscope_feature_attributions_total", "counter",
    "Predictions whose attributions gave the feature a finite value (the count the absolute sum divides by).",
    FEATURE)
REFERENCE_ATTRIBUTION = MetricSpec(
    "mlscope_reference_attribution_abs_mean", "gauge",
    "Mean absolute attribution of the feature in the version's reference profile (build_profile(attributions=)).",
    FEATURE, multiprocess_mode="max")
ATTRIBUTION_RANK_AGREEMENT = MetricSpec(
    "mlscope_attribution_rank_agreement", "gauge",
    "Spearman rank correlation between the window's and the reference's mean absolute attributions of the "
    "reference's top features (1: same order, 0: unrelated, -1: reversed; 0 as well when the window's means of "
    "those features are all equal, e.g. all 0: they stopped contributing); computed off the scrape path.",
    MODEL + ("window",), multiprocess_mode="max")
ATTRIBUTION_WINDOW = MetricSpec(
    "mlscope_attribution_window_coverage_ratio", "gauge",
    "Share of the in-process attribution window that this process's data covers (1: a full window; a restarted "
    "process starts again at 0); the rank alert waits for warmup.attributions.min_age_share of it.",
    MODEL + ("window",), multiprocess_mode="min")

METRICS = (TRAFFIC_WEIGHT, SHADOW_COMPARISONS, SHADOW_DISAGREEMENTS, SHADOW_PENDING_EVICTED, ATTRIBUTION_ABS,
           ATTRIBUTIONS, REFERENCE_ATTRIBUTION, ATTRIBUTION_RANK_AGREEMENT, ATTRIBUTION_WINDOW)

# -- roles and the baseline ------------------------------------------------------------------------------
TRAFFIC_SHARE = RecordedSpec(
    "model_version:mlscope_predictions:traffic_share",
    "Share of the model's requests this version served over the window.", MODEL + ("window",))
ROLE_DECLARED = RecordedSpec(
    "model_version:mlscope_version_role:declared",
    "1 for the role declared for the version: in the rule configuration (it wins), else on its monitor "
    "(mlscope_model_info's role label); a version whose monitors declare two roles has none here.",
    MODEL + ("role",))
ROLE_CONFLICT = RecordedSpec(
    "model_version:mlscope_version_role:conflict",
    "Number of different roles the version's monitors declare, where more than one (the version is then "
    "treated as undeclared).", MODEL)
ROLE_UNKNOWN_VERSION = RecordedSpec(
    "model_version:mlscope_version_role:unknown_version",
    "1 for a role the rule configuration declares for a version that no monitor registers "
    "(mlscope_model_info): a typo or a retired version.", MODEL + ("role",))
ELIGIBLE = RecordedSpec(
    "model_version:mlscope_version_baseline:eligible_share",
    "Traffic share (longest traffic window) of the serving versions that may be the model's baseline: those of "
    "its highest tier (declared stable, else undeclared, else declared canary; never a shadow).", MODEL)
BASELINE = RecordedSpec(
    "model_version:mlscope_version_baseline:bool",
    "1 for the model's baseline version (the declared stable one, else the one serving most traffic, with "
    "tie-breaking and hysteresis), 0 for its other serving versions.", MODEL)
ROLE = RecordedSpec(
    "model_version:mlscope_version_role:effective",
    "1 for the role each serving version plays now: stable (the baseline), canary (a candidate compared "
    "with the baseline) or shadow; baseline_version names the model's baseline.",
    MODEL + ("role", "baseline_version"))
GUARD = RecordedSpec(
    "model_version:mlscope_versions_guard:bool",
    "1 when a candidate and its baseline both hold enough data in the window for their comparison "
    "(domain traffic and drift: requests; labels: labelled outcomes; estimated: predictions with "
    "probabilities), else 0.", MODEL + ("baseline_version", "domain", "window"))
CLASS_SHARE = RecordedSpec(
    "model_version:mlscope_predicted_class:share",
    "Share of the version's predictions of each class over the window.", MODEL + ("class", "window"))

# -- comparisons (candidate against baseline) --------------------------------------------------------------
ERROR_RATIO_DIFFERENCE = RecordedSpec(
    "model_version:mlscope_versions_error_ratio:difference",
    "Candidate's error ratio minus its baseline's over the window.", COMPARED)
LATENCY_P95_RATIO = RecordedSpec(
    "model_version:mlscope_versions_latency_p95:ratio",
    "Candidate's p95 latency divided by its baseline's over the window.", COMPARED)
OUTPUT_PSI = RecordedSpec(
    "model_version:mlscope_versions_predicted_class:psi",
    "PSI between the candidate's and the baseline's predicted-class shares over the window.", COMPARED)
OUTPUT_JS = RecordedSpec(
    "model_version:mlscope_versions_predicted_class:js_distance",
    "Jensen-Shannon distance (base 2) between the candidate's and the baseline's predicted-class shares.",
    COMPARED)
ACCURACY_DIFFERENCE = RecordedSpec(
    "model_version:mlscope_versions_accuracy:difference",
    "Candidate's realised accuracy minus its baseline's over the window (late ground truth).", COMPARED)
F1_DIFFERENCE = RecordedSpec(
    "model_version:mlscope_versions_f1_macro:difference",
    "Candidate's realised macro F1 minus its baseline's over the window (late ground truth).", COMPARED)
ESTIMATED_ACCURACY_DIFFERENCE = RecordedSpec(
    "model_version:mlscope_versions_estimated_accuracy:difference",
    "Candidate's confidence-based estimated accuracy minus its baseline's over the window (no labels).",
    COMPARED)
FEATURE_PSI_DIFFERENCE = RecordedSpec(
    "feature:mlscope_versions_feature_psi:difference",
    "Candidate's PSI of the feature against its reference minus the baseline's against its own.",
    MODEL + ("feature", "baseline_version", "window"))

# -- shadow agreement and attributions (recorded) -----------------------------------------------------------
SHADOW_AGREEMENT = RecordedSpec(
    "model_version:mlscope_shadow_agreement:ratio",
    "Share of the shadow's answers that agree with the served version's on the same requests over the window.",
    SHADOW + ("window",))
SHADOW_COMPARED = RecordedSpec(
    "model_version:mlscope_shadow_comparisons:increase",
    "Shadow answers compared over the window (the alert's minimum-traffic guard reads it).", SHADOW + ("window",))
SHADOW_WARM = RecordedSpec(
    "shadow_pair:mlscope_window_warm:bool",
    WARM_HELP.format(domain="shadow agreement"), SHADOW + ("domain", "window"))
ATTRIBUTION_MEAN = RecordedSpec(
    "feature:mlscope_feature_attribution_abs:mean",
    "Mean absolute attribution of the feature over the version's predictions in the window.", FEATURE + ("window",))

COMPARISONS = (ERROR_RATIO_DIFFERENCE, LATENCY_P95_RATIO, OUTPUT_PSI, OUTPUT_JS, ACCURACY_DIFFERENCE,
               F1_DIFFERENCE, ESTIMATED_ACCURACY_DIFFERENCE, FEATURE_PSI_DIFFERENCE)
RECORDED = (TRAFFIC_SHARE, ROLE_DECLARED, ROLE_CONFLICT, ROLE_UNKNOWN_VERSION, ELIGIBLE, BASELINE, ROLE, GUARD,
            CLASS_SHARE) + COMPARISONS + (SHADOW_AGREEMENT, SHADOW_COMPARED, SHADOW_WARM, ATTRIBUTION_MEAN)
