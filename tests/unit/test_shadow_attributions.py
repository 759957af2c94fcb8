"""Shadow agreement and feature attributions in the monitor: exact counts on known data, bad input counted."""
from __future__ import annotations

import json
import logging
from collections import Counter

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from scipy.stats import ConstantInputWarning, rankdata, spearmanr

from mlscope import ModelMonitor, shadow
from mlscope.attributions import MAX_FEATURES, AttributionTracker, rank, spearman
from mlscope.drift import ReferenceProfile, build_profile
from mlscope.drift.profile import ProfileError
from mlscope.logs import JsonFormatter, PredictionLog
from support.helpers import series

FEATURES = ["a", "b", "c", "d"]


def values(registry: CollectorRegistry, name: str, **match: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in series(registry).items()
            if n == name and all(dict(labels).get(k) == x for k, x in match.items())}


def total(registry: CollectorRegistry, name: str, **match: str) -> float:
    return sum(values(registry, name, **match).values())


def invalid(registry: CollectorRegistry, reason: str) -> float:
    return total(registry, "mlscope_invalid_inputs_total", reason=reason)


def test_shadow_agreement_equals_the_exact_agreement_and_pairs() -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry, shadow_pending=1000)
    rng = np.random.default_rng(0)
    served = rng.integers(0, 4, 500)
    answers = np.where(rng.random(500) < 0.7, served, rng.integers(0, 4, 500)).astype(float)  # 1.0 is class 1
    for i, (s, h) in enumerate(zip(served.tolist(), answers.tolist(), strict=True)):
        rid = monitor.record_prediction(0.01, output=s, request_id=f"r{i}")
        assert monitor.shadow(rid, version="2", prediction=h) == (s == h)
    c = "mlscope_shadow_comparisons_total"
    assert total(registry, c, result="agree", shadow_version="2") == np.sum(served == answers)
    assert total(registry, c, result="disagree") == np.sum(served != answers)
    pairs = Counter((str(s), str(int(h))) for s, h in zip(served, answers, strict=True) if s != h)
    got = {(dict(k)["served_class"], dict(k)["shadow_class"]): v
           for k, v in values(registry, "mlscope_shadow_disagreements_total").items()}
    assert got == pairs


def test_regression_tolerance_and_pair_cap() -> None:
    registry = CollectorRegistry()
    reg = ModelMonitor("r", "1", task="regression", registry=registry, shadow_pending=10, shadow_tolerance=0.5)
    for i, (s, h) in enumerate([(1.0, 1.4), (1.0, 1.6), (2.0, 1.5), (3.0, float("nan"))]):
        reg.record_prediction(0.01, output=s, request_id=f"x{i}")
        reg.shadow(f"x{i}", version="2", prediction=h)
    assert total(registry, "mlscope_shadow_comparisons_total", result="agree") == 2
    assert total(registry, "mlscope_shadow_comparisons_total", result="disagree") == 1
    assert invalid(registry, "shadow_answer_invalid") == 1
    capped = ModelMonitor("c", "1", registry=registry, shadow_pending=100, label_caps={"class_pair": 2})
    for i in range(6):  # six disagreeing pairs, two kept
        capped.record_prediction(0.01, output=i, request_id=f"c{i}")
        capped.shadow(f"c{i}", version="2", prediction=i + 10)
    kept = values(registry, "mlscope_shadow_disagreements_total", model="c")
    assert sum(kept.values()) == 6 and len(kept) == 3
    assert total(registry, "mlscope_shadow_disagreements_total", model="c", served_class="__overflow__") == 4
    assert total(registry, "mlscope_label_overflow_total", label="class_pair") == 4


def test_bad_shadow_answers_are_counted_and_never_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    off = ModelMonitor("off", "1", registry=registry)
    assert off.shadow("r", version="2", prediction=1) is None
    assert invalid(registry, "shadow_not_enabled") == 1
    clock = [1000.0]
    monkeypatch.setattr(shadow.time, "monotonic", lambda: clock[0])
    monitor = ModelMonitor("m", "1", registry=registry, shadow_pending=2, shadow_ttl_s=10)
    assert monitor.shadow("never-served", version="2", prediction=1) is None
    for rid in ("a", "b", "c"):  # capacity 2: a is evicted unanswered
        monitor.record_prediction(0.01, output=1, request_id=rid)
    assert monitor.shadow("a", version="2", prediction=1) is None
    assert monitor.shadow("b", version="2", prediction=1) is True
    assert monitor.shadow("b", version="2", prediction=1) is None  # answered by this shadow already
    assert monitor.shadow("b", version="3", prediction=0) is False  # another shadow: compared
    assert monitor.shadow("c", version="2", prediction=[1, 2]) is None  # not a class
    assert invalid(registry, "shadow_unknown_request") == 3 and invalid(registry, "shadow_answer_invalid") == 1
    clock[0] += 11  # c expires unanswered at the next served answer; b was answered: not counted
    monitor.record_prediction(0.01, output=1, request_id="d")
    assert total(registry, "mlscope_shadow_pending_evicted_total", reason="capacity") == 1
    assert total(registry, "mlscope_shadow_pending_evicted_total", reason="expired") == 1
    with pytest.raises(ValueError, match="shadow_pending"):
        ModelMonitor("m", "2", registry=registry, shadow_pending=-1)


def test_attribution_means_bad_input_and_the_log_line(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    profile = build_profile(np.random.default_rng(0).normal(size=(300, 4)), columns=FEATURES, model="m",
                            model_version="1")
    log = PredictionLog("mlscope.test.attr", sample_rate=1.0)
    monitor = ModelMonitor("m", "1", registry=registry, reference=profile, prediction_log=log)
    assert not values(registry, "mlscope_feature_attributions_total")  # none sent yet: no series
    rng = np.random.default_rng(1)
    table = rng.normal(size=(50, 4))
    with caplog.at_level(logging.INFO, logger="mlscope.test.attr"):
        for row in table:
            monitor.record_prediction(0.01, output=1, attributions=dict(zip(FEATURES, row.tolist(), strict=True)))
    line = json.loads(JsonFormatter().format(caplog.records[-1]))
    order = np.argsort(-np.abs(table[-1]))[:3]
    assert [f for f, _ in line["top_attributions"]] == [FEATURES[i] for i in order]
    sums = values(registry, "mlscope_feature_attribution_abs_total")
    counts = values(registry, "mlscope_feature_attributions_total")
    for j, f in enumerate(FEATURES):
        key = (("feature", f), ("model", "m"), ("model_version", "1"))
        assert sums[key] == pytest.approx(np.abs(table[:, j]).sum(), rel=1e-12) and counts[key] == 50
    monitor.record_prediction(0.01, attributions={"a": float("nan"), "b": "x", "zz": 1.0, "c": 2.0})
    monitor.record_prediction(0.01, attributions={f"f{i}": 1.0 for i in range(5)})  # more than the profile's 4
    monitor.record_prediction(0.01, attributions=[1.0, 2.0])
    assert invalid(registry, "attribution_not_finite") == 2 and invalid(registry, "attribution_feature_unknown") == 1
    assert invalid(registry, "attributions_too_many") == 1 and invalid(registry, "attributions_wrong_type") == 1
    assert counts[(("feature", "c"), ("model", "m"), ("model_version", "1"))] + 1 == total(
        registry, "mlscope_feature_attributions_total", feature="c")
    with monitor.track("t1") as p:  # the context manager's field
        p.output, p.attributions = 1, {"d": -3.0}
    assert total(registry, "mlscope_feature_attribution_abs_total", feature="d") == pytest.approx(
        np.abs(table[:, 3]).sum() + 3.0, rel=1e-12)
    free = ModelMonitor("free", "1", registry=registry)  # no profile: the first MAX_FEATURES names
    free.record_prediction(0.01, attributions={f"g{i}": 1.0 for i in range(MAX_FEATURES)})
    free.record_prediction(0.01, attributions={"new": 1.0})
    assert invalid(registry, "attribution_feature_unknown") == 2


def test_rank_agreement_equals_scipy_and_the_window() -> None:
    ties = np.array([3.0, 1.0, 3.0, 2.0, 2.0, 5.0])
    assert np.array_equal(rank(ties), rankdata(ties))
    x, y = np.random.default_rng(2).normal(size=(2, 15))
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    names = [f"f{i}" for i in range(12)]
    reference = {n: float(12 - i) for i, n in enumerate(names)}
    counted: list[str] = []
    tracker = AttributionTracker("m", "1", features=names, reference=reference, window_s=60,
                                 count_invalid=lambda r, n: counted.append(r))
    old = np.random.default_rng(3).uniform(size=(40, 12)) * np.arange(12, 0, -1)  # the reference's order
    new = np.random.default_rng(4).uniform(size=(40, 12)) * np.arange(1, 13)  # reversed
    assert tracker.refresh(now=0.0) is None  # nothing recorded yet
    for row in old:
        tracker.record(dict(zip(names, row.tolist(), strict=True)))
    first = tracker.refresh(now=30.0)
    top = list(range(10))
    assert first == pytest.approx(spearmanr(np.arange(12, 2, -1), old.mean(axis=0)[top]).statistic, abs=1e-12)
    for row in new:
        tracker.record(dict(zip(names, row.tolist(), strict=True)))
    second = tracker.refresh(now=95.0)  # the window starts at the 30 s snapshot: only the new rows
    assert second == pytest.approx(spearmanr(np.arange(12, 2, -1), new.mean(axis=0)[top]).statistic, abs=1e-12)
    assert second is not None and second < 0 and not counted


def test_profile_attributions_round_trip_and_bad_ones() -> None:
    data = np.random.default_rng(5).normal(size=(300, 4))
    plain = build_profile(data, columns=FEATURES, model="m", model_version="1")
    profile = build_profile(data, columns=FEATURES, model="m", model_version="1", attributions=data * 2)
    assert profile.attributions == pytest.approx(dict(zip(FEATURES, np.abs(data * 2).mean(axis=0), strict=True)))
    assert ReferenceProfile.from_dict(profile.to_dict()).attributions == profile.attributions
    assert "attributions" not in plain.to_dict()  # profiles without them keep their content hash
    bad = data.copy()
    bad[0, 0] = np.nan
    for attributions in (bad, data[:, :2], {"zz": [1.0]}):
        with pytest.raises(ProfileError, match="attributions"):
            build_profile(data, columns=FEATURES, model="m", model_version="1", attributions=attributions)


def test_constant_window_attributions_rank_as_no_agreement_where_scipy_is_undefined() -> None:
    names = [f"f{i}" for i in range(4)]
    tracker = AttributionTracker("m", "1", features=names, reference={n: float(4 - i) for i, n in
                                                                     enumerate(names)},
                                 window_s=60, count_invalid=lambda r, n: None)
    for _ in range(40):  # the top features stopped contributing: every attribution 0
        tracker.record(dict.fromkeys(names, 0.0))
    with pytest.warns(ConstantInputWarning, match="constant"):  # scipy: undefined, NaN
        assert np.isnan(spearmanr([4.0, 3.0, 2.0, 1.0], [0.0] * 4).statistic)
    assert np.isnan(spearman(np.array([4.0, 3.0, 2.0, 1.0]), np.zeros(4)))
    assert tracker.refresh(now=tracker.started + 30) == 0.0  # published: no agreement, the alert's case
    flat = AttributionTracker("m", "2", features=names, reference=dict.fromkeys(names, 1.0), window_s=60,
                              count_invalid=lambda r, n: None)
    for _ in range(40):
        flat.record(dict(zip(names, [1.0, 2.0, 3.0, 4.0], strict=True)))
    assert flat.refresh(now=flat.started + 30) is None  # a reference without a ranking: nothing to compare
    assert tracker.coverage(tracker.started + 15) == 0.25 and tracker.coverage(tracker.started + 600) == 1


def test_window_coverage_is_published_and_retire_removes_shadow_and_attribution_series() -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry, shadow_pending=10, attribution_window_s=60)
    monitor.record_prediction(0.01, output=1, request_id="r", attributions={"a": 1.0})
    assert monitor.shadow("r", version="2", prediction=0) is False
    covered = values(registry, "mlscope_attribution_window_coverage_ratio")
    assert list(covered) == [(("model", "m"), ("model_version", "1"), ("window", "1m"))]
    assert 0 <= next(iter(covered.values())) < 1
    monitor.retire()
    left = {n for n, _ in series(registry) if "shadow" in n or "attribution" in n}
    assert left == set(), left


@pytest.mark.parametrize(("served", "answer"), [
    ("1", 1.0), (np.int64(1), True), (np.bool_(True), 1), (np.float32(2.0), "2"), (False, np.int8(0)),
    (np.str_("yes"), "yes")])
def test_one_class_identity_on_both_sides(served: object, answer: object) -> None:
    monitor = ModelMonitor("m", "1", registry=CollectorRegistry(), shadow_pending=10)
    monitor.record_prediction(0.01, output=served, request_id="r")
    assert monitor.shadow("r", version="2", prediction=answer) is True


def test_a_different_class_still_disagrees() -> None:
    monitor = ModelMonitor("m", "1", registry=CollectorRegistry(), shadow_pending=10)
    for i, (served, answer) in enumerate([(True, 0), ("1", "1.5"), (np.int64(2), "two")]):
        monitor.record_prediction(0.01, output=served, request_id=f"r{i}")
        assert monitor.shadow(f"r{i}", version="2", prediction=answer) is False


def test_invalid_shadow_versions_are_refused_and_overflow_names_shadow_version() -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry, shadow_pending=100, label_caps={"shadow_version": 2})
    for i, version in enumerate(["", " ", "a\nb", "x" * 200, 3]):
        monitor.record_prediction(0.01, output=1, request_id=f"bad{i}")
        assert monitor.shadow(f"bad{i}", version=version, prediction=1) is None  # type: ignore[arg-type]
    assert invalid(registry, "shadow_version_invalid") == 5
    assert total(registry, "mlscope_shadow_comparisons_total") == 0
    for i in range(3):  # cap 2: the third shadow version folds, counted under its own label
        monitor.record_prediction(0.01, output=1, request_id=f"ok{i}")
        assert monitor.shadow(f"ok{i}", version=f"s{i}", prediction=1) is True
    assert total(registry, "mlscope_shadow_comparisons_total", shadow_version="__overflow__") == 1
    assert total(registry, "mlscope_label_overflow_total", label="shadow_version") == 1
    assert total(registry, "mlscope_label_overflow_total", label="model_version") == 0


def test_batch_answers_wait_for_shadows_and_batch_attributions_count_per_row() -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry, shadow_pending=3)
    outputs = np.array([0, 1, 1, 0])
    monitor.record_batch(outputs, request_ids=["b0", "b1", "b2", "b3"])
    assert monitor.shadow("b0", version="2", prediction=0) is None  # bounded as single answers: b0 evicted
    assert [monitor.shadow(f"b{i}", version="2", prediction=1) for i in (1, 2, 3)] == [True, True, False]
    assert total(registry, "mlscope_shadow_pending_evicted_total", reason="capacity") == 1
    monitor.record_batch(outputs, request_ids=["x"])
    assert invalid(registry, "batch_request_ids_mismatch") == 1
    table = np.random.default_rng(7).normal(size=(4, 2))
    monitor.record_batch(outputs, attributions=[{"a": a, "b": b} for a, b in table.tolist()])
    monitor.record_batch(outputs, attributions={"a": table[:, 0], "b": table[:, 1]})
    monitor.record_batch(outputs, attributions={"a": table[:3, 0]})
    assert invalid(registry, "batch_attributions_mismatch") == 1
    assert total(registry, "mlscope_feature_attributions_total", feature="a") == 8
    assert total(registry, "mlscope_feature_attribution_abs_total", feature="b") == pytest.approx(
        2 * np.abs(table[:, 1]).sum(), rel=1e-12)
