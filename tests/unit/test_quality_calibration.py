"""Calibrated CBPE: the reference's calibration against scikit-learn, and estimates against realised accuracy.

Uncalibrated models (a random forest, Gaussian naive Bayes) on scikit-learn's bundled data sets: a third of
the rows trains the model, a third is the labelled reference the profile calibrates on, a third is
production, whose realised accuracy the estimate must reach.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression

from mlscope import ModelMonitor
from mlscope.catalog import quality as cat
from mlscope.cli import main
from mlscope.drift import ProfileError, ReferenceProfile, build_profile
from mlscope.drift.proba_calibration import fit_calibration, isotonic
from mlscope.drift.score_calibration import Calibration, calibration_error
from mlscope.quality import Quality, estimate
from mlscope.quality.store import SQLiteStore
from support.calibration_data import MODELS, split
from support.helpers import series
from support.quality_helpers import series_value

# Stated: |estimated - realised| accuracy on 599 held-out digits rows after calibrating on 599 reference rows.
TOLERANCE = 0.03


# -- the calibration equals scikit-learn's ---------------------------------------------------------

def test_isotonic_fit_equals_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.random(3000), 2)  # ties, as tree ensembles give
    y = (rng.random(3000) < x ** 2).astype(float)
    xs, ys = isotonic(x, y)
    reference = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    grid = np.linspace(-0.1, 1.1, 500)
    np.testing.assert_allclose(np.interp(grid, xs, ys), reference.predict(grid), atol=1e-12)
    assert len(xs) == len(reference.X_thresholds_)


@pytest.mark.parametrize("dataset", ["breast_cancer", "digits"], ids=["binary", "multiclass"])
def test_applied_calibration_equals_calibrated_classifier_cv(dataset: str) -> None:
    """One-vs-rest isotonic curves renormalised: scikit-learn's CalibratedClassifierCV on the same rows."""
    s = split(dataset, "random_forest")
    x, y, p = (np.concatenate([s[f"{k}_ref"], s[f"{k}_prod"]]) for k in ("x", "y", "p"))  # >= 200 labelled rows
    ours = fit_calibration(p, y, s["model"].classes_, method="isotonic")
    theirs = CalibratedClassifierCV(FrozenEstimator(s["model"]), method="isotonic").fit(x, y)
    np.testing.assert_allclose(ours.apply(s["p_prod"]), theirs.predict_proba(s["x_prod"]), atol=1e-9)


def test_an_already_calibrated_model_keeps_its_probabilities() -> None:
    """Logistic regression (the demo's model): isotonic curves on 137 rows per fold would be worse."""
    from support.drift_support import trained

    t = trained("breast_cancer")
    proba = t.pipeline.predict_proba(t.x_test)
    calibration = fit_calibration(proba, t.y_test, t.pipeline.classes_)
    isotonic_error = fit_calibration(proba, t.y_test, t.pipeline.classes_, method="isotonic").error_calibrated
    assert calibration.method == "identity" and calibration.error_calibrated == calibration.error_raw
    assert isotonic_error is not None and calibration.error_raw is not None
    assert calibration.error_raw < isotonic_error
    np.testing.assert_allclose(calibration.apply(proba), proba, atol=1e-15)


def test_calibration_error_is_the_top_label_ece() -> None:
    confidence = np.array([0.95, 0.95, 0.55, 0.65, 0.75])
    proba = np.column_stack([confidence, 1 - confidence])
    actual = np.array([0, 1, 0, 0, 1])
    # bins [0.9, 1): 2 rows, accuracy 0.5 vs 0.95; [0.5, 0.6), [0.6, 0.7), [0.7, 0.8): 1 row each
    expected = (2 * 0.45 + abs(1 - 0.55) + abs(1 - 0.65) + abs(0 - 0.75)) / 5
    assert calibration_error(proba, np.zeros(5, dtype=int), actual) == pytest.approx(expected)


# -- estimates reach the realised accuracy once calibrated ----------------------------------------

@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("seed", [0, 1])
def test_calibrated_estimate_reaches_realised_accuracy_uncalibrated_misses_it(model: str, seed: int) -> None:
    s = split("digits", model, seed)
    classes = s["model"].classes_
    realised = float(np.mean(s["predicted"] == s["y_prod"]))
    calibration = fit_calibration(s["p_ref"], s["y_ref"], classes)
    calibrated = estimate(calibration.apply(s["p_prod"]), s["predicted"], classes).accuracy
    raw = estimate(s["p_prod"], s["predicted"], classes).accuracy
    assert abs(calibrated - realised) <= TOLERANCE, (calibrated, realised)
    assert abs(raw - realised) > 3 * TOLERANCE, (raw, realised)  # what the estimate was before: far off
    assert calibration.error_calibrated is not None and calibration.error_raw is not None
    assert calibration.error_calibrated < 0.06 < calibration.error_raw


def test_service_publishes_the_calibrated_estimate_and_its_quality(tmp_path: Path) -> None:
    """The profile's calibration travels through JSON and the monitor to the stored expected confusion."""
    s = split("digits", "random_forest")
    classes = [int(c) for c in s["model"].classes_]
    path = build_profile(s["x_ref"], columns=[f"f{i}" for i in range(64)], model="d", model_version="1",
                         labels=s["y_ref"], proba=s["p_ref"], classes=classes).save(tmp_path / "p.json")
    profile = ReferenceProfile.load(path)
    registry = CollectorRegistry()
    quality = Quality(tmp_path / "q.sqlite", registry=registry, start=False)
    monitor = ModelMonitor("d", "1", registry=registry, reference=profile, quality=quality, classes=classes)
    monitor.record_batch(s["predicted"], request_ids=[f"r{i}" for i in range(len(s["predicted"]))],
                         proba=s["p_prod"])
    quality.process_queue()
    correct = sum(series_value(registry, cat.EXPECTED_CORRECT.name, model="d", model_version="1", segment="",
                               **{"class": str(c)}) for c in classes)
    assert profile.calibration is not None
    expected = estimate(profile.calibration.apply(s["p_prod"]), s["predicted"], classes).accuracy
    assert correct / len(s["predicted"]) == pytest.approx(expected, rel=1e-12)
    assert abs(expected - np.mean(s["predicted"] == s["y_prod"])) <= TOLERANCE
    published = {dict(labels)["scores"]: v for (name, labels), v in series(registry).items()
                 if name == cat.CALIBRATION_ERROR.name}
    assert published == {"raw": profile.calibration.error_raw, "calibrated": profile.calibration.error_calibrated}
    # another process on the same store (the quality exporter) sees the calibration too
    other = Quality(SQLiteStore(tmp_path / "q.sqlite"), registry=CollectorRegistry(), start=False)
    assert other.version("d", "1").calibration == profile.calibration  # type: ignore[union-attr]


# -- references that cannot calibrate the model are refused, saying why -------------------------

def _wine() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = split("wine", "random_forest")
    return s["p_ref"], s["y_ref"], s["model"].classes_


@pytest.mark.parametrize(("case", "reason", "words"), [
    ("wine", "too_few_labelled_rows", "59 labelled predictions; calibrating needs at least 100"),
    ("single", "single_class", "every labelled prediction is of one class (1)"),
    ("rare", "class_too_rare", "classes with fewer than 10 labelled predictions: 2 (3)"),
])
def test_uncalibratable_reference_is_refused_with_its_reason(case: str, reason: str, words: str) -> None:
    rng = np.random.default_rng(0)
    if case == "wine":
        proba, labels, classes = _wine()
    else:
        proba = rng.dirichlet([1, 1, 1], 400)
        labels = np.ones(400, dtype=int) if case == "single" else np.r_[np.zeros(200, int), np.ones(197, int),
                                                                          np.full(3, 2)]
        classes = np.array([0, 1, 2])
    calibration = fit_calibration(proba, labels, classes)
    assert calibration.refused == reason and words in calibration.detail, calibration.detail
    assert calibration.refusal(0.08) == reason


def test_refused_estimates_are_counted_not_published(caplog: pytest.LogCaptureFixture) -> None:
    """The service side: a refused or too-loose calibration publishes no estimate and counts why."""
    s = split("digits", "random_forest")
    classes = [int(c) for c in s["model"].classes_]
    profile = build_profile(s["x_ref"][:, :4], columns=list("abcd"), model="d", model_version="1",
                            labels=s["y_ref"], proba=s["p_ref"], classes=classes)
    n = len(s["predicted"])
    for bound, reason in ((1e-6, "calibration_error_above_bound"), (0.08, None)):
        registry = CollectorRegistry()
        quality = Quality(registry=registry, start=False, max_calibration_error=bound)
        with caplog.at_level(logging.WARNING, logger="mlscope"):
            monitor = ModelMonitor("d", "1", registry=registry, reference=profile, quality=quality, classes=classes)
        monitor.record_batch(s["predicted"], request_ids=[f"r{i}" for i in range(n)], proba=s["p_prod"])
        quality.process_queue()
        found = series(registry)
        refused = {dict(labels)["reason"]: v for (name, labels), v in found.items()
                   if name == cat.ESTIMATES_REFUSED.name}
        expected_rows = sum(v for (name, _), v in found.items() if name == cat.EXPECTED_CORRECT.name)
        if reason is None:
            assert refused == {} and expected_rows > 0
        else:
            assert refused == {reason: n} and expected_rows == 0
            assert "no estimated quality for d 1 (calibration_error_above_bound): held-out calibration error" \
                in caplog.text


# -- the profile and the command carry it ---------------------------------------------------------

def test_profile_keeps_its_hash_without_calibration_and_refuses_a_damaged_one(tmp_path: Path) -> None:
    data = {"a": np.arange(300.0)}
    plain = build_profile(data, model="m", model_version="1")
    assert "calibration" not in plain.to_dict()  # saved profiles without one load as before
    proba, labels, classes = _wine()
    with pytest.raises(ProfileError, match="pass both `labels` and `proba`"):
        build_profile(data, model="m", model_version="1", labels=labels)
    with pytest.raises(ProfileError, match="one row per label"):
        build_profile(data, model="m", model_version="1", labels=labels, proba=proba[:10])
    refused = build_profile(data, model="m", model_version="1", labels=labels, proba=proba, classes=classes)
    body = refused.to_dict()
    body["calibration"]["refused"] = "not_a_reason"
    with pytest.raises(ProfileError, match="unknown calibration refusal"):
        ReferenceProfile.from_dict(body)
    assert Calibration.from_dict(refused.to_dict()["calibration"]) == refused.calibration


def test_old_store_file_gains_the_calibration_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE versions (model TEXT NOT NULL, model_version TEXT NOT NULL, task TEXT NOT NULL, "
                     "classes TEXT, baseline TEXT NOT NULL, PRIMARY KEY (model, model_version)) WITHOUT ROWID")
        conn.execute("INSERT INTO versions VALUES ('m', '1', 'classification', ?, ?)",
                     ('["a", "b"]', '{"accuracy": 0.9}'))
    info = SQLiteStore(path).versions()[("m", "1")]
    assert info.baseline == {"accuracy": 0.9} and info.calibration is None


def test_reference_build_command_calibrates_from_label_and_proba_columns(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    s = split("breast_cancer", "naive_bayes")
    x, y, p = (np.concatenate([s[f"{k}_ref"], s[f"{k}_prod"]]) for k in ("x", "y", "p"))
    table = tmp_path / "reference.csv"
    header = [f"f{i}" for i in range(x.shape[1])] + ["label", "p0", "p1"]
    rows = np.column_stack([x, y, p])
    table.write_text(",".join(header) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in rows) + "\n")
    out = tmp_path / "profile.json"
    assert main(["reference", "build", str(table), "--model", "bc", "--model-version", "1", "--out", str(out),
                 "--label-column", "label", "--proba-columns", "p0,p1"]) == 0
    profile = json.loads(out.read_text())
    assert [f["name"] for f in profile["features"]] == header[:-3]
    calibration = profile["calibration"]
    assert calibration["classes"] == ["0", "1"] and calibration["rows"] == len(y) and calibration["refused"] is None
    assert "estimates calibrated (isotonic) on 380 labelled predictions" in capsys.readouterr().out
    assert main(["reference", "build", str(table), "--model", "bc", "--model-version", "1", "--out", str(out),
                 "--label-column", "label"]) == 1
    assert "calibrating needs --label-column and --proba-columns" in capsys.readouterr().err
