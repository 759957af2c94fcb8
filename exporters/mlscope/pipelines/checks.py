"""A batch held to its reference profile, with the drift domain's own counting and the alerts' own thresholds.

The batch is counted by a :class:`~mlscope.drift.DriftTracker` (the code a model version's features go
through), its shares compared with the thresholds the model alerts use (``Thresholds.data_quality_ratio``
beyond the reference's own missing rate for ``missing``; each feature's calibrated PSI threshold, never below
``Thresholds.drift_psi_floor``): a pipeline and a model share one definition of bad data, and their warm-up
guards too: the data-quality checks judge a batch of at least ``WarmUp.data_quality.min_count`` rows, drift a
feature with at least ``WarmUp.drift.min_count`` present values. A check not judged is in ``skipped`` with
the reason, never a failure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..catalog.pipelines import CHECKS
from ..drift.columns import as_columns
from ..drift.profile import NumericFeature, ReferenceProfile
from ..drift.stats import proportions, psi
from ..drift.tracker import ISSUES, DriftTracker
from ..rules.config import Thresholds, WarmUp

_THRESHOLDS, _WARMUP = Thresholds(), WarmUp()


@dataclass(frozen=True)
class BatchCheck:
    """The verdict on one batch: ``failures`` maps each check to the features that failed it."""

    rows: int
    failures: dict[str, tuple[str, ...]]
    shares: dict[str, dict[str, float]] = field(default_factory=dict)  # feature -> issue -> share of rows
    psi: dict[str, float] = field(default_factory=dict)  # feature -> PSI against the reference (judged ones)
    skipped: dict[str, str] = field(default_factory=dict)  # check -> why it was not judged (a warm-up guard)

    @property
    def passed(self) -> bool:
        return not any(self.failures.values())

    def severity(self, check: str, feature: str) -> float:
        """How badly ``feature`` did on ``check``: its share of rows with the issue, its PSI for drift, 1 for schema."""
        if check == "drift":
            return self.psi.get(feature, 0.0)
        return self.shares.get(feature, {}).get(check, 1.0 if check == "schema" else 0.0)

    @property
    def failed_checks(self) -> list[str]:
        return [check for check in CHECKS if self.failures.get(check)]


QUALITY_CHECKS = tuple(ISSUES)  # the data-quality checks: one per issue the drift tracker counts


def check_batch(profile: ReferenceProfile, data: Any, *, quality_ratio: float = _THRESHOLDS.data_quality_ratio,
                psi_floor: float = _THRESHOLDS.drift_psi_floor, min_values: float = _WARMUP.drift.min_count,
                min_rows: float = _WARMUP.data_quality.min_count) -> BatchCheck:
    """Check ``data`` (a data frame, a mapping of columns or a 2-D array in the profile's order)."""
    names = [f.name for f in profile.features]
    failures: dict[str, list[str]] = {check: [] for check in CHECKS}
    try:
        columns, unknown, rows = as_columns(data, names)
    except ValueError:
        failures["schema"] = ["__batch__"]  # not a table of the profile's width: nothing else can be judged
        return BatchCheck(0, {k: tuple(v) for k, v in failures.items()})
    failures["schema"] = [n for n in names if n not in columns] + list(unknown)
    if rows == 0:
        return BatchCheck(0, {k: tuple(v) for k, v in failures.items()})
    tracker = DriftTracker(profile, "__batch__", "__batch__", invalid=lambda reason, count: None, window_size=0)
    tracker.record_batch({name: columns[name] for name in names if name in columns})
    counts = tracker.snapshot()
    shares: dict[str, dict[str, float]] = {}
    drift: dict[str, float] = {}
    skipped: dict[str, str] = {}
    judge_quality = rows >= min_rows
    if not judge_quality:
        reason = f"{rows} rows, fewer than the data-quality warm-up's {min_rows:g}"
        skipped.update(dict.fromkeys(QUALITY_CHECKS, reason))
    too_few: list[str] = []
    for spec in tracker.feature_specs:
        feature = spec.feature
        if feature.name not in columns:
            continue
        row_shares = {issue: float(counts.issues[spec.index][i]) / rows for i, issue in enumerate(ISSUES)}
        shares[feature.name] = row_shares
        for issue, share in row_shares.items():
            limit = quality_ratio + (feature.missing_ratio if issue == "missing" else 0.0)
            if judge_quality and share > limit:
                failures[issue].append(feature.name)
        bins = counts.bins[spec.offset:spec.offset + spec.n_bins]
        if isinstance(feature, NumericFeature):
            bins = np.bincount(spec.fine_to_psi, weights=bins, minlength=len(feature.reference_bins))
        if bins.sum() < min_values:
            too_few.append(feature.name)  # too few present values for a statistic calibrated on full windows
            continue
        value = float(psi(proportions(bins), np.asarray(feature.reference_bins)))
        drift[feature.name] = value
        if value > max(feature.thresholds.get("psi", psi_floor), psi_floor):
            failures["drift"].append(feature.name)
    if too_few:
        skipped["drift"] = (f"{', '.join(too_few)}: fewer present values than the drift warm-up's {min_values:g}")
    return BatchCheck(rows, {k: tuple(v) for k, v in failures.items()}, shares, drift, skipped)
