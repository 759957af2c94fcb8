"""Drift and data quality: reference profiles, streaming bin counts, exact snapshots, thresholds.

See the README section "Drift and data quality" for which statistic to use when.
"""
from .build import DEFAULTS, build_profile, file_hash, read_table
from .collector import (
    DEFAULT_MAX_VERSIONS,
    DEFAULT_SERIES_BUDGET,
    DriftCollector,
    collector_for,
    refresh_snapshots,
    series_count,
)
from .fingerprint import training_data_fingerprint
from .profile import (
    OTHER,
    PREDICTION,
    CategoricalFeature,
    NumericFeature,
    ProfileError,
    ProfileMismatchError,
    ReferenceProfile,
    SeriesBudgetError,
    load_profile,
)
from .stats import EPSILON
from .tracker import ISSUES, DriftTracker

__all__ = ["DEFAULTS", "build_profile", "file_hash", "read_table", "training_data_fingerprint",
           "DEFAULT_MAX_VERSIONS", "DEFAULT_SERIES_BUDGET",
           "DriftCollector", "collector_for", "refresh_snapshots", "series_count", "OTHER", "PREDICTION",
           "CategoricalFeature", "NumericFeature", "ProfileError", "ProfileMismatchError", "ReferenceProfile",
           "SeriesBudgetError", "load_profile", "EPSILON", "ISSUES", "DriftTracker"]
