"""Each scenario changes exactly what its ground truth says, checked against the stationary twin.

Scenarios draw from their own random streams, so a run with a scenario and the same run without it
share every clean draw: differences between the two are the scenario's effect and nothing else.
"""

import math

import numpy as np
import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import load
from stream.workload import (
    MALFORMED_KINDS,
    NUMERIC_FEATURES,
    NUMERIC_NAMES,
    AbruptShift,
    Batch,
    CategoryExplosion,
    ClassCollapse,
    ConceptDrift,
    Errors,
    GradualShift,
    LatencySpike,
    Malformed,
    Nulls,
    RecurringShift,
    Sentinel,
    TemporaryShift,
    Workload,
    ground_truth,
    presets,
)

N = 30_000
WORKLOAD = Workload(seed=11, model_id="scenario-test")
STATIONARY = WORKLOAD.generate(0, N)
FEATURE = {feature.name: feature for feature in NUMERIC_FEATURES}


def binomial_tolerance(rate: float, n: int) -> float:
    """Five standard errors of a proportion: a false failure is a one-in-a-million event."""
    return 5 * math.sqrt(rate * (1 - rate) / n)


def assert_only_numeric_columns_differ(drifted: Batch, changed: set[str]) -> None:
    for column, name in enumerate(NUMERIC_NAMES):
        if name not in changed:
            np.testing.assert_array_equal(drifted.numeric[:, column], STATIONARY.numeric[:, column], err_msg=name)
    np.testing.assert_array_equal(drifted.categorical, STATIONARY.categorical)
    np.testing.assert_array_equal(drifted.latency_ms, STATIONARY.latency_ms)


@pytest.mark.parametrize("name", ["num_01", "num_03", "num_05"])
def test_abrupt_shift_moves_the_mean_by_k_standard_deviations_from_t0(name):
    t0, k = 12_000, 2.0
    drifted = WORKLOAD.generate(0, N, [AbruptShift(features=(name,), start=t0, shift_sd=k)])
    feature = FEATURE[name]
    difference = drifted.numeric_column(name) - STATIONARY.numeric_column(name)
    np.testing.assert_allclose(difference[:t0], 0.0)
    np.testing.assert_allclose(difference[t0:], feature.shift(k))
    assert abs(feature.shift(k) - k * feature.sd) <= 0.5  # integer features round the shift

    after, before = drifted.numeric_column(name)[t0:], drifted.numeric_column(name)[:t0]
    standard_error = feature.sd * math.sqrt(1 / len(after) + 1 / len(before))
    assert abs((after.mean() - before.mean()) - k * feature.sd) < 5 * standard_error + 0.5 * feature.integer
    assert_only_numeric_columns_differ(drifted, {name})


def test_abrupt_shift_leaves_other_features_statistically_unchanged():
    t0 = 12_000
    drifted = WORKLOAD.generate(0, N, [AbruptShift(features=("num_00",), start=t0, shift_sd=3.0)])
    for name in ("num_02", "num_06", "num_14"):
        column, feature = drifted.numeric_column(name), FEATURE[name]
        standard_error = feature.sd * math.sqrt(1 / t0 + 1 / (N - t0))
        assert abs(column[t0:].mean() - column[:t0].mean()) < 5 * standard_error


def test_abrupt_shift_of_a_model_input_moves_predictions():
    t0 = 12_000
    drifted = WORKLOAD.generate(0, N, [AbruptShift(features=("num_00",), start=t0, shift_sd=2.0)])
    np.testing.assert_array_equal(drifted.score[:t0], STATIONARY.score[:t0])
    assert drifted.predicted_class[t0:].mean() > STATIONARY.predicted_class[t0:].mean() + 0.2


def test_gradual_shift_grows_linearly_between_t0_and_t1():
    t0, t1, k = 5_000, 25_000, 3.0
    drifted = WORKLOAD.generate(0, N, [GradualShift(features=("num_06",), start=t0, end=t1, shift_sd=k)])
    difference = drifted.numeric_column("num_06") - STATIONARY.numeric_column("num_06")
    expected = np.clip((np.arange(N) - t0) / (t1 - t0), 0, 1) * k * FEATURE["num_06"].sd
    np.testing.assert_allclose(difference, expected, atol=1e-9)
    assert_only_numeric_columns_differ(drifted, {"num_06"})


def test_recurring_shift_is_on_exactly_inside_its_intervals():
    scenario = RecurringShift(features=("num_07", "num_12"), start=3_000, period=8_000, duration=2_000)
    drifted = WORKLOAD.generate(0, N, [scenario])
    on = np.zeros(N, dtype=bool)
    intervals = scenario.intervals(N)
    assert intervals == [(3_000, 5_000), (11_000, 13_000), (19_000, 21_000), (27_000, 29_000)]
    for start, end in intervals:
        on[start:end] = True
    for name in scenario.features:
        difference = drifted.numeric_column(name) - STATIONARY.numeric_column(name)
        np.testing.assert_allclose(difference[on], FEATURE[name].shift(3.0))
        np.testing.assert_allclose(difference[~on], 0.0)
    assert [(change.start_index, change.end_index) for change in ground_truth([scenario], N)] == intervals


def test_temporary_shift_only_inside_the_interval():
    drifted = WORKLOAD.generate(0, N, [TemporaryShift(features=("num_15",), start=10_000, end=20_000, shift_sd=1.5)])
    difference = drifted.numeric_column("num_15") - STATIONARY.numeric_column("num_15")
    np.testing.assert_allclose(difference[10_000:20_000], 1.5 * FEATURE["num_15"].sd)
    np.testing.assert_allclose(np.r_[difference[:10_000], difference[20_000:]], 0.0)


def test_nulls_hit_the_configured_rate_in_range_only():
    rate, start = 0.15, 10_000
    drifted = WORKLOAD.generate(0, N, [Nulls(features=("num_03", "cat_2"), rate=rate, start=start)])
    numeric_nulls = np.isnan(drifted.numeric_column("num_03"))
    categorical_nulls = np.array([value is None for value in drifted.categorical_column("cat_2")])
    for nulls in (numeric_nulls, categorical_nulls):
        assert not nulls[:start].any()
        assert abs(nulls[start:].mean() - rate) < binomial_tolerance(rate, N - start)
    assert not np.isnan(np.delete(drifted.numeric, NUMERIC_NAMES.index("num_03"), axis=1)).any()
    event = orjson.loads(WORKLOAD.serialize(drifted[start:])[int(np.flatnonzero(numeric_nulls[start:])[0])])
    assert event["features"]["num_03"] is None


def test_sentinel_values_hit_the_configured_rate():
    rate = 0.08
    drifted = WORKLOAD.generate(0, N, [Sentinel(features=("num_06", "num_19"), rate=rate, value=-999.0)])
    for name in ("num_06", "num_19"):
        share = (drifted.numeric_column(name) == -999.0).mean()
        assert abs(share - rate) < binomial_tolerance(rate, N)
    assert b'"num_19":-999,' in b"".join(WORKLOAD.serialize(drifted[:2_000]))


def test_category_explosion_brings_many_unseen_values_after_start():
    rate, start = 0.4, 15_000
    drifted = WORKLOAD.generate(0, N, [CategoryExplosion(feature="cat_3", start=start, rate=rate, new_values=500)])
    seen = set(STATIONARY.categorical_column("cat_3"))
    unseen = np.array([value not in seen for value in drifted.categorical_column("cat_3")])
    assert not unseen[:start].any()
    assert abs(unseen[start:].mean() - rate) < binomial_tolerance(rate, N - start)
    assert len(set(drifted.categorical_column("cat_3")[unseen])) > 400


def test_class_collapse_makes_one_class_over_95_percent():
    start = 10_000
    drifted = WORKLOAD.generate(0, N, [ClassCollapse(start=start)])
    assert drifted.predicted_class[start:].mean() > 0.95
    assert 0.3 < drifted.predicted_class[:start].mean() < 0.7
    np.testing.assert_array_equal(drifted.numeric, STATIONARY.numeric)
    np.testing.assert_array_equal(drifted.label, STATIONARY.label)


def test_concept_drift_changes_labels_and_accuracy_but_not_features_or_predictions():
    start = 15_000
    drifted = WORKLOAD.generate(0, N, [ConceptDrift(start=start)])
    np.testing.assert_array_equal(drifted.numeric, STATIONARY.numeric)
    np.testing.assert_array_equal(drifted.score, STATIONARY.score)
    np.testing.assert_array_equal(drifted.label[:start], STATIONARY.label[:start])
    correct = drifted.predicted_class == drifted.label
    assert correct[:start].mean() > 0.78
    assert correct[start:].mean() < 0.5
    assert {change.kind for change in ground_truth([ConceptDrift(start=start)], N)} == {"concept_drift", "performance"}


def test_latency_spike_multiplies_latency_inside_the_interval():
    drifted = WORKLOAD.generate(0, N, [LatencySpike(start=5_000, end=9_000, factor=4.0)])
    ratio = drifted.latency_ms / STATIONARY.latency_ms
    np.testing.assert_allclose(ratio[5_000:9_000], 4.0)
    np.testing.assert_allclose(np.r_[ratio[:5_000], ratio[9_000:]], 1.0)


def test_errors_have_error_status_and_null_prediction():
    rate = 0.1
    drifted = WORKLOAD.generate(0, N, [Errors(rate=rate, start=20_000)])
    assert not drifted.error[:20_000].any()
    assert abs(drifted.error[20_000:].mean() - rate) < binomial_tolerance(rate, 10_000)
    events = [orjson.loads(value) for value in WORKLOAD.serialize(drifted[20_000:21_000])]
    failed = [event for event in events if event["status"] == "error"]
    assert failed and all(event["prediction"] is None and event["error"] for event in failed)


def test_malformed_values_fail_to_parse_or_violate_the_schema():
    rate, start = 0.2, 10_000
    drifted = WORKLOAD.generate(0, N, [Malformed(rate=rate, start=start)])
    assert (drifted.malformed[:start] == -1).all()
    assert abs((drifted.malformed[start:] >= 0).mean() - rate) < binomial_tolerance(rate, N - start)
    sample = drifted[start : start + 2_000]
    validator = Draft202012Validator(load("inference"))
    kinds_seen = set()
    for value, kind in zip(WORKLOAD.serialize(sample), sample.malformed.tolist(), strict=True):
        assert b"\n" not in value
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = False
        else:
            parsed = validator.is_valid(event)
        assert parsed == (kind < 0), (MALFORMED_KINDS[kind], value[:120])
        if kind >= 0:
            kinds_seen.add(MALFORMED_KINDS[kind])
    assert kinds_seen == set(MALFORMED_KINDS)


def test_scenarios_compose_in_stage_order():
    scenarios = [Nulls(features=("num_00",), rate=0.5), AbruptShift(features=("num_00",), start=0, shift_sd=2.0)]
    drifted = WORKLOAD.generate(0, N, scenarios)
    column = drifted.numeric_column("num_00")
    present = ~np.isnan(column)
    np.testing.assert_allclose(column[present] - STATIONARY.numeric_column("num_00")[present], 2.0)
    # the model saw the shifted input, not the logged null
    assert not np.isnan(drifted.score).any()


def test_ground_truth_adds_prediction_drift_only_for_model_inputs():
    assert [change.kind for change in AbruptShift(features=("num_02",), start=5).changes(10)] == ["data_drift"]
    assert [change.kind for change in AbruptShift(features=("num_02", "num_00"), start=5).changes(10)] == ["data_drift", "prediction_drift"]
    assert AbruptShift(features=("num_00",), start=50).changes(10) == []


def test_every_preset_generates_and_names_its_changes():
    n = 5_000
    for name, scenarios in presets(n).items():
        changes = ground_truth(scenarios, n)
        assert (name == "stationary") == (not changes)
        assert not changes or min(change.start_index for change in changes) == 2_000
        values = WORKLOAD.serialize(WORKLOAD.generate(0, n, scenarios))
        assert len(values) == n


def test_invalid_scenarios_are_rejected():
    with pytest.raises(ValueError, match="unknown numeric features"):
        AbruptShift(features=("cat_0",), start=0)
    with pytest.raises(ValueError, match="start < end"):
        TemporaryShift(features=("num_00",), start=10, end=10)
    with pytest.raises(ValueError, match="duration < period"):
        RecurringShift(features=("num_00",), start=0, period=10, duration=10)
