"""Metrics of feature and prediction drift and of input data quality (see ``mlscope.drift``).

Counts are per-bin counters, not cumulative buckets, for the PSI bins and the
categories: PSI, Jensen-Shannon and chi-square need each bin's share, which a
recording rule gets from a per-bin counter with one division, while cumulative
buckets would need a subtraction between series with different ``le`` values,
which PromQL cannot express generically. KS needs the cumulative distribution,
so the fine bins of numeric features are exposed as a histogram
(``mlscope_feature_value_bucket{le}``): there the CDF is one division. Both
are computed from the same per-bin counts at scrape time.
"""
from __future__ import annotations

from .spec import WARM_HELP, MetricSpec, RecordedSpec

FEATURE = ("model", "model_version", "feature")

FEATURE_BIN = MetricSpec(
    "mlscope_feature_bin_total", "counter",
    "Present feature values per reference bin: PSI quantile bins (bin=0..9) of numeric features, top "
    "categories (bin=<category> or __other__) of categorical ones; feature=__prediction__ is the model output.",
    FEATURE + ("bin",))
FEATURE_VALUE = MetricSpec(
    "mlscope_feature_value", "histogram",
    "Present values of a numeric feature in the reference profile's fine quantile buckets (for KS).",
    FEATURE)
FEATURE_OBSERVATIONS = MetricSpec(
    "mlscope_feature_observations_total", "counter",
    "Rows seen per feature, present or not (the denominator of data-quality ratios).",
    FEATURE)
FEATURE_ISSUES = MetricSpec(
    "mlscope_feature_issues_total", "counter",
    "Feature values with a data-quality issue: missing (absent, None or NaN), infinite, out_of_range "
    "(outside the reference min/max), wrong_type, new_category (never seen in the reference).",
    FEATURE + ("issue",))
REFERENCE_BIN = MetricSpec(
    "mlscope_reference_bin_ratio", "gauge",
    "Share of the reference's present values in each bin of mlscope_feature_bin_total.",
    FEATURE + ("bin",), unit="ratio", multiprocess_mode="max")
REFERENCE_CDF = MetricSpec(
    "mlscope_reference_cumulative_ratio", "gauge",
    "Share of the reference's present values <= each fine bucket edge (edge = le of mlscope_feature_value).",
    FEATURE + ("edge",), unit="ratio", multiprocess_mode="max")
REFERENCE_VALUES = MetricSpec(
    "mlscope_reference_values", "gauge",
    "Present values of a feature in the reference data (its rows minus the missing ones); times "
    "mlscope_reference_bin_ratio, the reference's count in each bin (the chi-square test's second row).",
    FEATURE, multiprocess_mode="max")
REFERENCE_MISSING = MetricSpec(
    "mlscope_reference_missing_ratio", "gauge",
    "Share of missing values of a feature in the reference data.",
    FEATURE, unit="ratio", multiprocess_mode="max")
DRIFT_THRESHOLD = MetricSpec(
    "mlscope_drift_threshold", "gauge",
    "Drift threshold calibrated on the reference: at most the profile's false-alarm rate (1 % by default) of "
    "windows without drift holding the alerts' minimum count or more exceed it, by statistic (psi, js_distance, ks).",
    FEATURE + ("statistic",), multiprocess_mode="max")
SNAPSHOT_KS = MetricSpec(
    "mlscope_drift_snapshot_ks_statistic", "gauge",
    "Exact two-sample KS statistic (scipy) of the feature's last N values against the reference's quantiles "
    "(recomputed in the background at most every snapshot_interval, 10 s by default).",
    FEATURE)
SNAPSHOT_KS_PVALUE = MetricSpec(
    "mlscope_drift_snapshot_ks_pvalue", "gauge",
    "p-value of the exact two-sample KS test of the last N values against the reference's quantiles "
    "(recomputed like the statistic).",
    FEATURE)
SNAPSHOT_WASSERSTEIN = MetricSpec(
    "mlscope_drift_snapshot_wasserstein", "gauge",
    "Wasserstein-1 distance (scipy, in the feature's units) of the last N values to the reference's quantiles "
    "(recomputed like the KS statistic).",
    FEATURE)
SNAPSHOT_VALUES = MetricSpec(
    "mlscope_drift_snapshot_values", "gauge",
    "Number of recent values the exact drift snapshot was last computed on.",
    FEATURE)
PROFILE_INFO = MetricSpec(
    "mlscope_reference_profile_info", "gauge",
    "Always 1: the reference profile a model version's drift is measured against.",
    ("model", "model_version", "profile_hash", "source_hash", "created_at"), unit="info",
    multiprocess_mode="max")

METRICS = (FEATURE_BIN, FEATURE_VALUE, FEATURE_OBSERVATIONS, FEATURE_ISSUES, REFERENCE_BIN, REFERENCE_CDF,
           REFERENCE_VALUES, REFERENCE_MISSING, DRIFT_THRESHOLD, SNAPSHOT_KS, SNAPSHOT_KS_PVALUE, SNAPSHOT_WASSERSTEIN,
           SNAPSHOT_VALUES, PROFILE_INFO)

WINDOWED = FEATURE + ("window",)
BIN_SHARE = RecordedSpec(
    "feature_bin:mlscope_feature_bin:ratio_rate", "Share of each bin among a feature's values over the window.",
    FEATURE + ("bin", "window"))
REFERENCE_BIN_SHARE = RecordedSpec(
    "feature_bin:mlscope_reference_bin:ratio", "Reference share of each bin (one value over all replicas).",
    FEATURE + ("bin",))
REFERENCE_BIN_COUNT = RecordedSpec(
    "feature_bin:mlscope_reference_bin:count",
    "Reference count of each bin (share x present reference values): the chi-square test's second row.",
    FEATURE + ("bin",))
BUCKET_CDF = RecordedSpec(
    "feature_le:mlscope_feature_value_bucket:ratio_rate",
    "Share of a numeric feature's values <= each fine edge over the window.", FEATURE + ("le", "window"))
REFERENCE_BUCKET_CDF = RecordedSpec(
    "feature_le:mlscope_reference_cumulative:ratio", "Reference share <= each fine edge, labelled le.",
    FEATURE + ("le",))
BIN_INCREASE = RecordedSpec(
    "feature:mlscope_feature_bin:increase", "Present values of a feature counted over the window.", WINDOWED)
PSI = RecordedSpec(
    "feature:mlscope_feature_bin:psi", "Population stability index (natural log, epsilon-clamped shares).",
    WINDOWED)
JS_DISTANCE = RecordedSpec(
    "feature:mlscope_feature_bin:js_distance", "Jensen-Shannon distance (base 2, in [0, 1]).", WINDOWED)
CHI_SQUARE = RecordedSpec(
    "feature:mlscope_feature_bin:chi_square",
    "Pearson chi-square homogeneity statistic of the window's bin counts against the reference's (2 x k "
    "table, bins empty in both left out, k - 1 degrees of freedom; scipy chi2_contingency, correction=False).",
    WINDOWED)
KS = RecordedSpec(
    "feature:mlscope_feature_value_bucket:ks", "KS statistic evaluated at the fine bucket edges.", WINDOWED)
PSI_THRESHOLD = RecordedSpec(
    "feature:mlscope_feature_bin:psi_threshold", "Calibrated PSI threshold, labelled like the PSI it gates.",
    WINDOWED)
JS_THRESHOLD = RecordedSpec(
    "feature:mlscope_feature_bin:js_distance_threshold", "Calibrated JS distance threshold.", WINDOWED)
KS_THRESHOLD = RecordedSpec(
    "feature:mlscope_feature_value_bucket:ks_threshold", "Calibrated binned-KS threshold.", WINDOWED)
PREDICTION_PSI = RecordedSpec(
    "model_version:mlscope_feature_bin:prediction_psi", "PSI of the model output (prediction drift).",
    ("model", "model_version", "window"))
PREDICTION_PSI_THRESHOLD = RecordedSpec(
    "model_version:mlscope_feature_bin:prediction_psi_threshold", "Calibrated PSI threshold of the output.",
    ("model", "model_version", "window"))
ISSUE_RATIO = RecordedSpec(
    "feature_issue:mlscope_feature_issues:ratio_rate", "Share of a feature's rows with each data-quality issue.",
    FEATURE + ("issue", "window"))
FEATURE_WINDOW_WARM = RecordedSpec(
    "feature:mlscope_window_warm:bool", WARM_HELP.format(domain="feature's drift or data-quality"),
    FEATURE + ("domain", "window"))

RECORDED = (BIN_SHARE, REFERENCE_BIN_SHARE, REFERENCE_BIN_COUNT, BUCKET_CDF, REFERENCE_BUCKET_CDF, BIN_INCREASE, PSI,
            JS_DISTANCE, CHI_SQUARE, KS, PSI_THRESHOLD, JS_THRESHOLD, KS_THRESHOLD, PREDICTION_PSI,
            PREDICTION_PSI_THRESHOLD, ISSUE_RATIO, FEATURE_WINDOW_WARM)
