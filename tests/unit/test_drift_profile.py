"""Reference profiles: discrete edges, thresholds that keep their rate, small references, the snapshot's
reference side, format versions. Independent references: np.histogram, numpy quantiles, scipy."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from scipy import stats as scipy_stats

from mlscope import ModelMonitor
from mlscope.cli import main
from mlscope.drift import ProfileError, ReferenceProfile, build_profile, stats
from mlscope.drift.build import DEFAULTS
from mlscope.drift.profile import NumericFeature, ProfileFormatError
from mlscope.rules.config import PROFILES
from support.drift_null import margin, snapshot_false_alarms, threshold_false_alarms
from support.helpers import series

RATE = DEFAULTS["false_alarm_rate"]


def monitored_bins(profile: ReferenceProfile, values: np.ndarray, rows: bool) -> np.ndarray:
    """The PSI-bin counts the monitor publishes for ``values`` (one row at a time, or one batch)."""
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry, reference=profile)
    if rows:
        for v in values.tolist():
            monitor.record_features({"x": v})
    else:
        monitor.record_feature_batch({"x": values})
    exposed = series(registry)
    n = len(profile.features[0].reference_bins)
    return np.array([exposed[("mlscope_feature_bin_total", (("bin", str(k)), ("feature", "x"), ("model", "m"),
                                                            ("model_version", "1")))] for k in range(n)])


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_integer_features_bin_as_np_histogram_does(dtype: type) -> None:
    rng = np.random.default_rng(7)
    reference = rng.poisson(4.0, 20_000).astype(dtype)
    profile = build_profile({"x": reference}, model="m", model_version="1")
    feature = profile.features[0]
    assert isinstance(feature, NumericFeature) and feature.discrete
    assert all(e % 1 == 0.5 for e in feature.fine_edges)  # half-way between integers
    shifted = rng.poisson(4.6, 5_000).astype(dtype)
    # numpy's bins are left-closed, [a, b): on these edges they count what the right-closed ones count.
    edges = np.concatenate(([-1.0], feature.psi_edges, [100.0]))
    np.testing.assert_allclose(feature.reference_bins, np.histogram(reference, bins=edges)[0] / reference.size,
                               rtol=1e-12)
    for rows, values in ((True, shifted[:800]), (False, shifted)):
        np.testing.assert_array_equal(monitored_bins(profile, values, rows), np.histogram(values, bins=edges)[0])
    expected = stats.proportions(np.histogram(shifted, bins=edges)[0])
    reference_shares = stats.proportions(np.histogram(reference, bins=edges)[0])
    ref = np.asarray(feature.reference_bins)
    assert stats.psi(monitored_bins(profile, shifted, False) / shifted.size, ref) == pytest.approx(
        stats.psi(expected, reference_shares), rel=1e-9)


def test_continuous_features_keep_quantile_edges() -> None:
    values = np.random.default_rng(1).normal(size=10_000)
    feature = build_profile({"x": values}, model="m", model_version="1").features[0]
    assert isinstance(feature, NumericFeature) and not feature.discrete
    np.testing.assert_allclose(feature.psi_edges, np.quantile(values, np.arange(1, 10) / 10), rtol=1e-12)


def loo_quantile(values: np.ndarray, edges: tuple[float, ...], chunk: int) -> float:
    """The 1 - RATE quantile of each chunk's PSI against the rest, by np.histogram (right-closed via -values)."""
    # np.histogram is left-closed; on negated values and negated edges its bins are the right-closed ones.
    bins = np.concatenate(([-np.inf], -np.asarray(edges)[::-1], [np.inf]))
    counts = np.stack([np.histogram(-c, bins=bins)[0][::-1] for c in values.reshape(-1, chunk)])
    rest = counts.sum(axis=0) - counts
    psi = stats.psi(stats.proportions(counts), stats.proportions(rest))
    return float(np.quantile(psi, 1 - RATE, method="higher"))


def test_thresholds_take_leave_one_chunk_out_quantiles() -> None:
    rng = np.random.default_rng(5)
    # A reference whose level wanders over time (200 chunks of 100 rows): its chunks vary more than
    # independent draws would, and leave-one-chunk-out is what sees it.
    values = (rng.normal(size=(200, 100)) + rng.normal(0, 0.3, (200, 1))).ravel()
    feature = build_profile({"x": values}, model="m", model_version="1").features[0]
    assert isinstance(feature, NumericFeature)
    assert feature.thresholds["psi"] == pytest.approx(loo_quantile(values, feature.psi_edges, 100), rel=1e-12)
    steady = build_profile({"x": rng.normal(size=20_000)}, model="m", model_version="1").features[0]
    assert steady.thresholds["psi"] < feature.thresholds["psi"]
    assert set(steady.thresholds) == {"psi", "js_distance", "ks"}


def test_window_values_is_the_alerts_minimum_count() -> None:
    for profile in PROFILES.values():  # thresholds promise their rate for windows the drift guard lets through
        assert DEFAULTS["window_values"] == profile.warmup.drift.min_count


@pytest.mark.parametrize("reference_rows", [124, 20_000])
def test_windows_without_drift_exceed_thresholds_at_most_at_the_stated_rate(reference_rows: int) -> None:
    results = threshold_false_alarms("normal", reference_rows, [100, 1000], references=40, windows_per_reference=25)
    for result in results:
        for statistic in ("psi", "js_distance", "ks"):
            assert result.share(statistic) <= RATE + margin(RATE, result.windows), (result, statistic)


def test_a_small_reference_gets_thresholds_or_a_refusal_that_says_what_to_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    data = {f"f{i}": rng.normal(size=124) for i in range(12)} | {"c": rng.choice(["a", "b"], 124)}
    profile = build_profile(data, model="m", model_version="1")
    assert all(f.thresholds for f in profile.features)
    assert profile.settings["leave_one_chunk_out"] is False
    with pytest.raises(ProfileError, match=r"f0 \(60 values, needs 100\).*--fine-bins 10 --psi-bins 5"):
        build_profile({"f0": rng.normal(size=60)}, model="m", model_version="1")
    assert build_profile({"f0": rng.normal(size=60)}, model="m", model_version="1", fine_bins=10,
                         psi_bins=5).features[0].thresholds
    np.save(tmp_path / "small.npy", np.column_stack(list(data.values())[:12]))
    assert main(["reference", "build", str(tmp_path / "small.npy"), "--model", "m", "--model-version", "1",
                 "--out", str(tmp_path / "p.json")]) == 0
    assert "thresholds come from simulated windows alone" in capsys.readouterr().err


def test_the_snapshot_sample_stands_for_the_whole_reference() -> None:
    rng = np.random.default_rng(11)
    reference = rng.lognormal(0, 1, 50_000)
    feature = build_profile({"x": reference}, model="m", model_version="1").features[0]
    assert isinstance(feature, NumericFeature) and feature.present == 50_000
    # The sample's own KS against the full reference (scipy): at most half a sample step.
    own = scipy_stats.ks_2samp(np.asarray(feature.sample), reference).statistic
    assert own <= 0.5 / len(feature.sample) + 1e-3


def test_unshifted_windows_are_flagged_at_about_alpha_by_the_snapshot_pvalue() -> None:
    # 1,000 windows of 2,000 values over 10 references of 20,000 (a fixed random sample of 1,000 reference
    # values flagged 0.8 % of them, 19 % for one unrepresentative sample).
    shares = snapshot_false_alarms("normal", 20_000, 2_000, seeds=range(10), windows_per_seed=100)
    pooled = float(np.mean(list(shares.values())))
    assert 0.035 <= pooled <= 0.065, shares  # alpha 0.05: neither misleading nor blind


def test_old_profiles_are_refused_with_the_command_that_rebuilds_them(tmp_path: Path) -> None:
    profile = build_profile({"x": np.random.default_rng(0).normal(size=2000)}, model="churn", model_version="3")
    data = profile.to_dict()
    assert data["format"] == "mlscope-reference-profile/2"
    assert ReferenceProfile.from_dict(data) == profile
    for old in ({**data, "format": "mlscope-reference-profile/1"}, {k: v for k, v in data.items() if k != "format"}):
        path = tmp_path / "old.json"
        path.write_text(json.dumps(old))
        with pytest.raises(ProfileFormatError, match=r"mlscope reference build TRAINING_DATA --model churn "
                                                     r"--model-version 3 --out"):
            ReferenceProfile.load(path)
        assert main(["reference", "show", str(path)]) == 1
    with pytest.raises(ProfileError, match="not an mlscope reference profile"):
        ReferenceProfile.from_dict({"format": "something-else/2"})
    assert math.isfinite(profile.features[0].thresholds["ks"])
