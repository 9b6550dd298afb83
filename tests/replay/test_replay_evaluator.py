import numpy as np
import pytest

from detectors.columns import Columns
from detectors.evaluator import ModelEvaluator
from detectors.monitor import MonitorConfig, MonitorConfigError
from detectors.policy import WindowKey
from detectors.profile import ReferenceBuilder, ReferenceProfile

KEY = WindowKey("m", "1")
CATEGORIES = ["a", "b", "c", "d"]


def build_reference(n=20_000, seed=0) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    builder = ReferenceBuilder()
    builder.add(
        [
            {
                "features": {"x": float(x), "y": float(y), "c": c},
                "prediction": {"score": float(s)},
                "latency_ms": float(latency),
            }
            for x, y, c, s, latency in zip(
                rng.normal(size=n), rng.exponential(size=n), rng.choice(CATEGORIES, n).tolist(),
                rng.uniform(size=n), rng.lognormal(2.0, 0.3, n),
            )  # fmt: skip
        ]
    )
    return builder.build("m", "1", source="test", created_at=0.0)


REFERENCE = build_reference()


def config(**extra) -> MonitorConfig:
    return MonitorConfig.from_mapping({"model_id": "m", "reference": "m.profile", **extra})


def window(evaluator, rng, n=3_000, x_shift=0.0, null_share=0.0, score_shift=0.0, error_share=0.0, latency=1.0,
           categories=CATEGORIES, strings=0):  # fmt: skip
    x = rng.normal(x_shift, size=n)
    x[: int(null_share * n)] = np.nan
    events = [
        {
            "timestamp": 0.0,
            "model_version": "1",
            "features": {"x": None if np.isnan(a) else float(a), "y": float(b), "c": c},
            "prediction": {"score": float(min(s + score_shift, 1.0))},
            "latency_ms": float(lat),
            "status": "error" if e else "ok",
        }
        for a, b, c, s, lat, e in zip(
            x, rng.exponential(size=n), rng.choice(categories, n).tolist(), rng.uniform(size=n),
            rng.lognormal(2.0, 0.3, n) * latency, rng.uniform(size=n) < error_share,
        )  # fmt: skip
    ]
    for event in events[:strings]:
        event["features"]["x"] = "oops"
    profile = evaluator.new_profile()
    profile.update(Columns.from_events(events, ["x", "y"], ["c"]))
    return profile


def run(evaluator, profiles, start=0):
    evaluations = [
        evaluator.close_window(KEY, 60.0 * (start + i), 60.0 * (start + i + 1), profile) for i, profile in enumerate(profiles)
    ]
    return [e for e in evaluations if e is not None]


def alert_conditions(evaluations):
    return [(a["kind"], a["feature"], a["statistic"]["name"], a["status"]) for e in evaluations for a in e.alerts]


def test_one_primary_statistic_per_feature_is_an_alert_condition_the_others_are_reported() -> None:
    evaluator = ModelEvaluator(config(), REFERENCE)
    [evaluation] = run(evaluator, [window(evaluator, np.random.default_rng(1))])
    drift = [r for r in evaluation.results if r.kind in ("data_drift", "prediction_drift")]
    # Besides its histogram's JS, the score has one more condition: the share of high-confidence scores.
    assert sorted((r.kind, r.feature, r.statistic) for r in drift) == [
        ("data_drift", "c", "js"), ("data_drift", "x", "js"), ("data_drift", "y", "js"),
        ("prediction_drift", "score", "confident_rate"), ("prediction_drift", "score", "js"),
    ]  # fmt: skip
    assert all(r.p_value is not None and r.sample_size == 3_000 for r in drift)
    x = evaluation.statistics["x"]
    assert {"js", "psi", "hellinger", "ks", "ks_p_value", "ks_effective_n", "wasserstein", "chi2", "chi2_p_value"} <= x.keys()
    assert x["ks_effective_n"] == pytest.approx(3_000 * 20_000 / 23_000)
    assert {"js", "psi", "hellinger", "chi2"} <= evaluation.statistics["c"].keys()
    assert "ks" not in evaluation.statistics["c"]


def test_shift_alerts_after_persistence_on_the_shifted_feature_only() -> None:
    evaluator = ModelEvaluator(config(windows={"evaluate_windows": 1}), REFERENCE)
    rng = np.random.default_rng(2)
    clean = run(evaluator, [window(evaluator, rng) for _ in range(3)])
    shifted = run(evaluator, [window(evaluator, rng, x_shift=0.6) for _ in range(2)], start=3)
    assert alert_conditions(clean) == [] and alert_conditions(shifted[:1]) == []
    assert alert_conditions(shifted) == [("data_drift", "x", "js", "firing")]
    recovered = run(evaluator, [window(evaluator, rng) for _ in range(2)], start=5)
    assert alert_conditions(recovered) == [("data_drift", "x", "js", "resolved")]


def test_a_large_distance_on_few_events_is_not_significant() -> None:
    evaluator = ModelEvaluator(config(windows={"evaluate_windows": 1, "min_count": 1}), REFERENCE)
    rng = np.random.default_rng(3)
    evaluations = run(evaluator, [window(evaluator, rng, n=15) for _ in range(6)])
    x = [next(r for r in e.results if r.feature == "x" and r.statistic == "js") for e in evaluations]
    assert max(r.value for r in x) >= 0.1  # noise alone crosses the effect-size threshold...
    assert alert_conditions(evaluations) == []  # ...but never significantly


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"null_share": 0.2}, {("data_quality", "x", "null_rate")}),
        ({"categories": ["a", "b", "new"]}, {("data_quality", "c", "unseen_rate")}),
        ({"strings": 300}, {("data_quality", "x", "type_error_rate")}),
        ({"error_share": 0.2}, {("error_rate", None, "error_rate")}),
        ({"latency": 3.0}, {("latency", None, "share_over_p99_limit")}),
        # Uniform scores shifted by 0.3: 40% instead of 10% above the default 0.9.
        ({"score_shift": 0.3}, {("prediction_drift", "score", "js"), ("prediction_drift", "score", "confident_rate")}),
    ],
)
def test_quality_latency_error_and_prediction_checks(change, expected) -> None:
    evaluator = ModelEvaluator(config(windows={"evaluate_windows": 1}), REFERENCE)
    rng = np.random.default_rng(4)
    evaluations = run(evaluator, [window(evaluator, rng, **change) for _ in range(2)])
    conditions = {condition[:3] for condition in alert_conditions(evaluations)}
    assert expected <= conditions
    # An unseen category also moves the categorical distribution; nothing else may fire.
    assert conditions <= {*expected, ("data_drift", "c", "js")}


def test_out_of_range_uses_the_configured_range_and_the_reference_share() -> None:
    evaluator = ModelEvaluator(config(features={"x": {"range": [-1.0, 1.0]}}, windows={"evaluate_windows": 1}), REFERENCE)
    rng = np.random.default_rng(5)
    [evaluation] = run(evaluator, [window(evaluator, rng)])
    [result] = [r for r in evaluation.results if r.statistic == "out_of_range_rate"]
    # About 31.7% of a standard normal lies outside [-1, 1] in both window and reference.
    assert evaluation.statistics["x"]["out_of_range_rate"] == pytest.approx(0.317, abs=0.03)
    assert abs(result.value) < 0.03


def test_checkpointed_evaluator_continues_exactly_like_the_original() -> None:
    cfg = config(windows={"evaluate_windows": 2})
    rng = np.random.default_rng(6)
    profiles = [window(ModelEvaluator(cfg, REFERENCE), rng, x_shift=0.5 * (i > 3)) for i in range(10)]
    original = ModelEvaluator(cfg, REFERENCE)
    expected = run(original, profiles)
    first = ModelEvaluator(cfg, REFERENCE)
    head = run(first, profiles[:5])
    restored = ModelEvaluator.from_bytes(first.to_bytes(), cfg, REFERENCE)
    tail = run(restored, profiles[5:], start=5)
    assert [e.alerts for e in head + tail] == [e.alerts for e in expected]
    assert [e.change_points for e in head + tail] == [e.change_points for e in expected]
    assert alert_conditions(expected), "the shift must alert for the comparison to mean something"


def test_window_vs_previous_is_reported() -> None:
    evaluator = ModelEvaluator(config(windows={"evaluate_windows": 1}), REFERENCE)
    rng = np.random.default_rng(7)
    evaluations = run(evaluator, [window(evaluator, rng), window(evaluator, rng, x_shift=1.0)])
    assert "js_previous" not in evaluations[0].statistics["x"]
    assert evaluations[1].statistics["x"]["js_previous"] > 0.2 > evaluations[1].statistics["y"]["js_previous"]


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"nope": {"monitor": False}}, "features.nope: the reference profile has no feature 'nope'"),
        ({"x": {"type": "categorical"}}, "features.x.type: categorical but the reference profile has it numeric"),
        ({"x": {"bins": 20}}, "rebuild the profile with --bins 20"),
        ({"x": {"sentinels": [-999]}}, "rebuild the profile with --sentinel x=-999 so the reference leaves them out"),
        ({"c": {"sentinels": ["unknown"]}}, "features.c.sentinels: sentinels are supported for numeric features only"),
    ],
)
def test_config_must_agree_with_the_reference(features, message) -> None:
    with pytest.raises(MonitorConfigError, match=message.replace("(", r"\(")) as error:
        ModelEvaluator(config(features=features), REFERENCE)
    assert str(error.value).startswith("monitor.yaml: ")


def test_overrides_that_agree_with_the_reference_are_accepted() -> None:
    evaluator = ModelEvaluator(config(features={"x": {"bins": 10, "type": "numeric"}, "c": {"type": "categorical"}}), REFERENCE)
    assert evaluator.reference.n_bins == 10


def test_unmonitored_feature_gets_quality_checks_but_no_drift_test() -> None:
    evaluator = ModelEvaluator(config(features={"y": {"monitor": False}}), REFERENCE)
    [evaluation] = run(evaluator, [window(evaluator, np.random.default_rng(8))])
    assert {(r.kind, r.statistic) for r in evaluation.results if r.feature == "y"} == {
        ("data_quality", "null_rate"), ("data_quality", "type_error_rate"), ("data_quality", "missing_rate"),
    }  # fmt: skip


def test_missing_feature_is_reported_once_as_missing_not_also_as_null() -> None:
    evaluator = ModelEvaluator(config(windows={"evaluate_windows": 1}), REFERENCE)
    rng = np.random.default_rng(9)
    profiles = []
    for _ in range(2):
        events = [
            {"timestamp": 0.0, "model_version": "1", "features": {"y": 1.0, "c": "a", "new_feature": 1}}
        ] * 600  # x absent, an unknown feature present
        profile = window(evaluator, rng)
        profile.update(Columns.from_events(events, ["x", "y"], ["c"]))
        profiles.append(profile)
    conditions = {condition[:3] for condition in alert_conditions(run(evaluator, profiles))}
    assert ("data_quality", "x", "missing_rate") in conditions
    assert ("schema", None, "unknown_feature_rate") in conditions
    assert ("data_quality", "x", "null_rate") not in conditions


def test_sentinels_fixed_at_build_are_counted_and_left_out_of_the_distribution() -> None:
    rng = np.random.default_rng(10)
    builder = ReferenceBuilder(sentinels={"x": [-999.0]})
    values = rng.normal(size=5_000)
    values[:250] = -999.0  # 5% missing-value codes in training data too
    builder.add([{"x": float(v)} for v in values])
    reference = builder.build("m", "1", source="t", created_at=0.0)
    assert reference.profile.numeric["x"].edges[0] > -10  # -999 did not stretch the bins
    evaluator = ModelEvaluator(config(features={"x": {"sentinels": [-999]}}, windows={"evaluate_windows": 1}), reference)
    profiles = []
    for _ in range(2):
        window_values = rng.normal(size=3_000)
        window_values[:600] = -999.0  # 20%: a pipeline fault, not drift
        profile = evaluator.new_profile()
        profile.update(Columns.from_events(
            [{"timestamp": 0.0, "model_version": "1", "features": {"x": float(v)}} for v in window_values], ["x"], []
        ))  # fmt: skip
        profiles.append(profile)
    conditions = {condition[:3] for condition in alert_conditions(run(evaluator, profiles))}
    assert conditions == {("data_quality", "x", "sentinel_rate")}


@pytest.mark.parametrize(("limit", "fires"), [(10.0, True), (30.0, False)])
def test_configured_p99_limit_is_decided_on_exact_counts(limit, fires) -> None:
    # Window latencies are lognormal(2, 0.3): p99 = exp(2 + 0.3 * 2.326), about 14.9 ms.
    evaluator = ModelEvaluator(config(thresholds={"latency_p99_ms": limit}, windows={"evaluate_windows": 1}), REFERENCE)
    rng = np.random.default_rng(11)
    evaluations = run(evaluator, [window(evaluator, rng) for _ in range(2)])
    [result] = [r for r in evaluations[-1].results if r.kind == "latency"]
    assert result.reference_id == "monitor-config"
    assert evaluations[-1].statistics["(model)"]["p99_latency_ms"] == pytest.approx(14.9, rel=0.1)
    assert (("latency", None, "share_over_p99_limit", "firing") in alert_conditions(evaluations)) is fires


def scores_above_one(evaluator, rng, n):
    """``n`` events whose score is 1.5: outside probability bounds, features as usual."""
    events = [
        {"timestamp": 0.0, "model_version": "1", "features": {"x": float(a), "y": float(b), "c": "a"}, "prediction": {"score": 1.5}}
        for a, b in zip(rng.normal(size=n), rng.exponential(size=n))
    ]
    return Columns.from_events(events, ["x", "y"], ["c"])


@pytest.mark.parametrize("bounds", [[0, 1], None])
def test_scores_outside_configured_bounds_are_a_data_quality_alert(bounds) -> None:
    extra = {"prediction": {"bounds": bounds}} if bounds else {}
    evaluator = ModelEvaluator(config(windows={"evaluate_windows": 1}, **extra), REFERENCE)
    rng = np.random.default_rng(12)
    profiles = []
    for _ in range(2):
        profile = window(evaluator, rng)
        profile.update(scores_above_one(evaluator, rng, 150))  # 150 of 3,150: 4.8% > 1% threshold
        profiles.append(profile)
    evaluations = run(evaluator, profiles)
    conditions = {condition[:3] for condition in alert_conditions(evaluations)}
    # The overflow bin also moves the score histogram.
    assert conditions - {("prediction_drift", "score", "js")} == ({("data_quality", "score", "out_of_range_rate")} if bounds else set())
    if bounds:
        assert evaluations[-1].statistics["score"]["out_of_range_rate"] == pytest.approx(150 / 3_150)


def test_confident_rate_is_an_exact_count_against_the_reference_share() -> None:
    evaluator = ModelEvaluator(config(prediction={"confident_above": 0.5}, windows={"evaluate_windows": 1}), REFERENCE)
    rng = np.random.default_rng(13)
    profile = window(evaluator, rng)
    [evaluation] = run(evaluator, [profile])
    [result] = [r for r in evaluation.results if r.statistic == "confident_rate"]
    scores = profile.score
    assert profile.confident_count == pytest.approx(0.5 * scores.valid_count, rel=0.05)
    assert evaluation.statistics["score"]["confident_rate"] == profile.confident_count / scores.valid_count
    # Uniform scores in window and reference: half above 0.5 in both, no significant change.
    assert result.value < 0.03 and result.p_value > 0.01 and result.kind == "prediction_drift"


def test_no_confident_rate_check_for_scores_that_are_not_probabilities() -> None:
    rng = np.random.default_rng(14)
    builder = ReferenceBuilder()
    builder.add([{"features": {"x": float(x)}, "prediction": float(10 * x)} for x in rng.normal(size=2_000)])
    reference = builder.build("m", "1", source="t", created_at=0.0)
    assert ModelEvaluator(config(), reference).confident_above is None
    assert ModelEvaluator(config(prediction={"confident_above": 5.0}), reference).confident_above == 5.0


@pytest.mark.parametrize(("n", "rejects", "fires"), [(3_000, 300, True), (40, 2, False)])
def test_reject_rate_alerts_on_significant_excess_over_the_threshold(n, rejects, fires) -> None:
    evaluator = ModelEvaluator(config(windows={"evaluate_windows": 1, "min_count": 1}), REFERENCE)
    rng = np.random.default_rng(15)
    profiles = []
    for _ in range(2):
        profile = window(evaluator, rng, n=n)
        profile.reject_count = rejects
        profiles.append(profile)
    evaluations = run(evaluator, profiles)
    [result] = [r for r in evaluations[-1].results if r.statistic == "reject_rate"]
    assert (result.kind, result.feature, result.value) == ("schema", None, rejects / (n + rejects))
    assert result.value > 0.02  # above the default threshold in both cases: only the test's significance differs
    assert (("schema", None, "reject_rate", "firing") in alert_conditions(evaluations)) is fires


def test_segment_windows_have_no_reject_rate_test() -> None:
    evaluator = ModelEvaluator(config(windows={"evaluate_windows": 1}), REFERENCE)
    profile = window(evaluator, np.random.default_rng(16))
    evaluation = evaluator.close_window(WindowKey("m", "1", {"region": "eu"}), 0.0, 60.0, profile)
    assert not [r for r in evaluation.results if r.statistic == "reject_rate"]
