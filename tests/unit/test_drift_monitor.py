"""Streaming drift in the monitor: single rows and batches agree, bad input is counted, limits hold."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.cli import main
from mlscope.drift import (
    OTHER,
    PREDICTION,
    ProfileError,
    ProfileMismatchError,
    ReferenceProfile,
    SeriesBudgetError,
    build_profile,
    series_count,
)
from support.drift_support import drift_series, monitor_with, numeric_counts, small_profile, workload_profile
from support.helpers import exposition, series


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    wanted = tuple(sorted({"model": "small", "model_version": "1", **labels}.items()))
    return series(registry).get((name, wanted), 0.0)


def test_rows_and_batches_count_the_same() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.lognormal(10, 0.6, 500), "age": rng.normal(40, 12, 500),
                          "plan": rng.choice(["basic", "plus", "pro", "gold"], 500)})
    frame.loc[::7, "age"] = np.nan
    frame.loc[::11, "plan"] = None
    by_row, by_batch = CollectorRegistry(), CollectorRegistry()
    profile = small_profile()  # one profile: its creation time is a label of mlscope_reference_profile_info
    row_monitor = monitor_with(profile, by_row)
    for record in frame.to_dict("records"):
        row_monitor.record_features(record)
    monitor_with(profile, by_batch).record_feature_batch(frame)
    rows, batch = drift_series(by_row), drift_series(by_batch)
    rows = {k: v for k, v in rows.items() if "snapshot" not in k[0]}
    batch = {k: v for k, v in batch.items() if "snapshot" not in k[0]}
    assert rows.keys() == batch.keys()
    for key in rows:
        assert rows[key] == pytest.approx(batch[key]), key
    assert value(by_batch, "mlscope_feature_issues_total", feature="plan", issue="new_category") == \
        (frame["plan"] == "gold").sum()
    assert value(by_batch, "mlscope_feature_bin_total", feature="plan", bin=OTHER) == (frame["plan"] == "gold").sum()
    assert value(by_batch, "mlscope_feature_issues_total", feature="age", issue="missing") == frame["age"].isna().sum()
    assert value(by_batch, "mlscope_feature_observations_total", feature="age") == 500


def test_columnar_arrays_and_2d_arrays_are_accepted() -> None:
    profile = workload_profile("arrays", "1")
    x = np.random.default_rng(1).normal(size=(1000, len(profile.features)))
    as_matrix, as_columns = CollectorRegistry(), CollectorRegistry()
    ModelMonitor("arrays", "1", registry=as_matrix, reference=profile).record_feature_batch(x)
    ModelMonitor("arrays", "1", registry=as_columns, reference=profile).record_feature_batch(
        {f.name: np.asfortranarray(x)[:, j] for j, f in enumerate(profile.features)})
    assert drift_series(as_matrix) == drift_series(as_columns)


def test_bad_input_is_counted_by_reason_and_never_raises() -> None:
    registry = CollectorRegistry()
    monitor = monitor_with(small_profile(), registry)
    monitor.record_features({"income": "12", "age": float("inf"), "plan": ["a"], "unknown": 1, "other": 2})
    monitor.record_features({"income": 1e12, "age": None})                       # plan missing
    monitor.record_features([1.0, 2.0])                                          # wrong length
    monitor.record_feature_batch({"income": np.array([])})                       # empty batch
    monitor.record_feature_batch({"income": np.ones(3), "age": np.ones(4)})      # ragged
    monitor.record_feature_batch(np.ones((5, 7)))                                # wrong width
    monitor.record_feature_batch({"income": np.array(["a", "b"]), "zzz": np.ones(2)})
    monitor.record_feature_batch(object())
    issues = {(f, i): value(registry, "mlscope_feature_issues_total", feature=f, issue=i)
              for f, i in [("income", "wrong_type"), ("income", "out_of_range"), ("age", "infinite"),
                           ("age", "missing"), ("plan", "wrong_type"), ("plan", "missing")]}
    assert issues == {("income", "wrong_type"): 3, ("income", "out_of_range"): 1, ("age", "infinite"): 1,
                      ("age", "missing"): 3, ("plan", "wrong_type"): 1, ("plan", "missing"): 3}
    invalid = {k[1][2][1]: v for k, v in series(registry).items() if k[0] == "mlscope_invalid_inputs_total"}
    assert invalid == {"feature_unknown": 4, "row_length_mismatch": 1, "batch_empty": 1,
                       "batch_shape_mismatch": 3}
    # No sum poisoned: only the finite, present value of income reached the histogram.
    assert value(registry, "mlscope_feature_value_sum", feature="income") == 1e12
    assert value(registry, "mlscope_feature_value_count", feature="income") == 1


def test_series_budget_is_checked_at_load_with_a_clear_error() -> None:
    profile = workload_profile("budget", "1")
    needed = series_count(monitor_with(profile)._drift)
    with pytest.raises(SeriesBudgetError, match=rf"needs {needed:,} series .* budget is 1,000 .*--fine-bins"):
        ModelMonitor("budget", "1", registry=CollectorRegistry()).attach_profile(profile, series_budget=1000)
    assert needed < 5000  # 30 numeric features fit the default budget


def test_only_the_most_recently_serving_versions_publish_drift() -> None:
    registry = CollectorRegistry()
    monitors = [monitor_with(small_profile("small", str(v)), registry) for v in range(4)]
    for monitor in monitors[1:]:
        monitor.record_features({"income": 1.0, "age": 1.0, "plan": "basic"})
    versions = {dict(k[1])["model_version"] for k in drift_series(registry)}
    assert versions == {"1", "2", "3"}  # version 0 attached first and never served: dropped
    monitors[0].record_features({"income": 1.0})
    assert value(registry, "mlscope_invalid_inputs_total", reason="drift_version_not_serving",
                 model_version="0") == 1


def test_profile_round_trip_and_corruption(tmp_path: Path) -> None:
    profile = small_profile()
    path = profile.save(tmp_path / "p.json")
    loaded = ReferenceProfile.load(path)
    assert loaded == profile and loaded.content_hash == profile.content_hash
    assert [f.kind for f in loaded.features] == ["numeric", "numeric", "categorical"]
    assert loaded.features[1].missing_ratio == pytest.approx(0.05, abs=0.015)
    assert loaded.features[2].categories == ("basic", "plus", "pro")
    assert loaded.output is not None and loaded.output.name == PREDICTION
    data = json.loads(path.read_text())
    data["features"][0]["reference_bins"][0] += 0.01
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="content hash mismatch"):
        ReferenceProfile.load(path)
    with pytest.raises(ProfileError, match="not an mlscope reference profile"):
        ReferenceProfile.from_dict({"format": "x"})


def test_schema_mismatch_is_reported_when_the_monitor_loads_the_profile() -> None:
    monitor = ModelMonitor("small", "1", registry=CollectorRegistry())
    with pytest.raises(ProfileMismatchError) as info:
        monitor.attach_profile(small_profile(), schema={"income": "numeric", "age": "categorical",
                                                        "tenure": "numeric"})
    message = str(info.value)
    assert "missing from the profile: tenure" in message and "not expected by the model: plan" in message
    assert "type changed: age (numeric in the profile, categorical expected)" in message
    with pytest.raises(ProfileMismatchError, match="built for model 'small'"):
        ModelMonitor("other", "1", registry=CollectorRegistry(), reference=small_profile())


def test_without_a_profile_nothing_changes() -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("plain", "1", registry=registry)
    with monitor.track() as p:
        p.output, p.features = 1, {"a": 1.0}
    monitor.record_batch(np.zeros(3), features=np.ones((3, 2)))
    assert drift_series(registry) == {}
    assert value(registry, "mlscope_invalid_inputs_total", model="plain", reason="no_reference_profile") == 2


def test_a_broken_collector_part_does_not_break_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    monitor = monitor_with(small_profile(), registry)
    monkeypatch.setattr(monitor._drift, "snapshot", lambda: 1 / 0)
    text = exposition(registry)
    assert "mlscope_feature_bin_total" not in text and "mlscope_predictions_total" in text
    # Counted while collecting, after the error counter itself was collected: visible from the next scrape.
    assert 'operation="drift_collect"' in exposition(registry)


def test_cli_builds_from_csv_and_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.integers(0, 3, 3000),
                          "c": rng.choice(["x", "y"], 3000), "y": rng.integers(0, 2, 3000)})
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_parquet(tmp_path / "train.parquet")
    (tmp_path / "model.pkl").write_bytes(b"model")
    assert main(["reference", "build", str(tmp_path / "train.csv"), "--model", "m", "--model-version", "2",
                 "--next-to", str(tmp_path / "model.pkl"), "--categorical", "b", "--output-column", "y"]) == 0
    from_csv = ReferenceProfile.load(tmp_path / "model.reference.json")
    assert from_csv.schema == {"a": "numeric", "b": "categorical", "c": "categorical"}
    assert from_csv.output is not None and from_csv.output.kind == "categorical"
    assert main(["reference", "build", str(tmp_path / "train.parquet"), "--model", "m", "--model-version", "2",
                 "--out", str(tmp_path / "p.json"), "--categorical", "b", "--output-column", "y"]) == 0
    from_parquet = ReferenceProfile.load(tmp_path / "p.json")
    # CSV round-trips floats to within a few ulps; the Parquet file holds the exact values.
    assert from_parquet.schema == from_csv.schema and from_parquet.source_hash != from_csv.source_hash
    np.testing.assert_allclose(from_parquet.features[0].fine_edges, from_csv.features[0].fine_edges, rtol=1e-12)
    assert from_parquet.features[2].categories == from_csv.features[2].categories  # by share, descending
    assert set(from_csv.features[2].categories) == {"x", "y"}
    capsys.readouterr()
    assert main(["reference", "show", str(tmp_path / "p.json")]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    a = from_parquet.features[0]  # each feature's calibrated thresholds, as the drift alerts read them
    assert rows["a"][:3] == ["a", "numeric", "0.0%"] and f"psi={a.thresholds['psi']:.3f}" in rows["a"]
    assert rows["c"][3:6] == ["2", "top", "categories"] and rows["__prediction__"][1] == "categorical"
    (tmp_path / "bad.json").write_text("{}")
    assert main(["reference", "show", str(tmp_path / "bad.json")]) == 1


def test_build_rejects_unusable_settings() -> None:
    with pytest.raises(ProfileError, match="multiple of psi_bins"):
        build_profile({"x": np.arange(100.0)}, model="m", model_version="1", fine_bins=25)
    with pytest.raises(ProfileError, match="zero rows"):
        build_profile({"x": np.array([])}, model="m", model_version="1")
    with pytest.raises(ProfileError, match="reserved"):
        build_profile({"__x": np.arange(10.0)}, model="m", model_version="1")


def frame_or_mapping(kind: str, rows: int) -> tuple[object, dict[str, np.ndarray]]:
    rng = np.random.default_rng(4)
    columns = {"income": rng.lognormal(10, 0.6, rows), "age": rng.normal(40, 12, rows),
               "plan": rng.choice(["basic", "plus", "pro"], rows).astype(object)}
    columns["age"][::9] = np.nan
    return (pd.DataFrame(columns) if kind == "frame" else columns), columns


@pytest.mark.parametrize("kind", ["frame", "mapping"])
def test_features_without_outputs_count_drift_and_no_prediction(kind: str) -> None:
    data, columns = frame_or_mapping(kind, 300)
    profile = small_profile()
    inputs_only, with_outputs = CollectorRegistry(), CollectorRegistry()
    monitor_with(profile, inputs_only).record_batch(features=data)
    scores = np.random.default_rng(5).random(300)
    monitor_with(profile, with_outputs, task="classification").record_batch(
        np.zeros(300, dtype=int), scores=scores, features=data)
    income = profile.features[0]
    for registry in (inputs_only, with_outputs):
        # The feature counts are numpy's (np.digitize, right-closed bins) on the same values.
        bins = [value(registry, "mlscope_feature_bin_total", feature="income", bin=str(k))
                for k in range(len(income.reference_bins))]
        np.testing.assert_array_equal(bins, numeric_counts(income, columns["income"]))
        assert value(registry, "mlscope_feature_observations_total", feature="age") == 300
        assert value(registry, "mlscope_feature_issues_total", feature="age", issue="missing") == \
            np.isnan(columns["age"]).sum()
        assert not [k for k in series(registry) if k[0] == "mlscope_invalid_inputs_total"]
    assert value(inputs_only, "mlscope_predictions_total") == 0 and value(inputs_only, "mlscope_batches_total") == 0
    assert value(inputs_only, "mlscope_feature_observations_total", feature=PREDICTION) == 0
    assert value(with_outputs, "mlscope_predictions_total") == 300
    assert value(with_outputs, "mlscope_feature_observations_total", feature=PREDICTION) == 300


def test_what_needs_a_row_count_is_counted_when_a_batch_has_none() -> None:
    data, _ = frame_or_mapping("frame", 50)
    registry = CollectorRegistry()
    monitor = monitor_with(small_profile(), registry)
    monitor.record_batch(features=data, latency_seconds=0.2)   # features recorded, the latency has no rows
    monitor.record_batch()                                     # nothing at all
    assert value(registry, "mlscope_feature_observations_total", feature="income") == 50
    assert value(registry, "mlscope_invalid_inputs_total", reason="batch_without_rows") == 2
    assert value(registry, "mlscope_predictions_total") == 0
