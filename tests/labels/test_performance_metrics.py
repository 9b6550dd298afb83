"""Performance sketches: metrics against direct computations, exact merges, serialization."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors import performance
from detectors.performance import AUC_BINS, ClassificationSketch, LabelLagSketch, RegressionSketch, class_name


def test_docstring_examples() -> None:
    result = doctest.testmod(performance)
    assert result.attempted > 0 and result.failed == 0


def binary_outcomes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.3
    # Scores on bin centres, so that the binned ROC-AUC must equal the exact one.
    score = (np.clip(np.floor((0.35 + 0.3 * truth + rng.normal(0, 0.2, n)) * AUC_BINS), 0, AUC_BINS - 1) + 0.5) / AUC_BINS
    labels = np.where(truth, "1", "0").astype(object)
    predicted = np.where(score >= 0.5, "1", "0").astype(object)
    return labels, predicted, score


def test_classification_metrics_match_direct_computation() -> None:
    labels, predicted, score = binary_outcomes(5_000, 0)
    sketch = ClassificationSketch("1")
    sketch.update(labels, predicted, score)
    metrics = sketch.query()
    truth, guess = labels == "1", predicted == "1"
    tp, fp, fn = np.sum(truth & guess), np.sum(~truth & guess), np.sum(truth & ~guess)
    assert metrics["count"] == 5_000
    assert metrics["accuracy"] == pytest.approx(np.mean(truth == guess))
    assert metrics["precision"] == pytest.approx(tp / (tp + fp))
    assert metrics["recall"] == pytest.approx(tp / (tp + fn))
    assert metrics["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    mann_whitney = stats.mannwhitneyu(score[truth], score[~truth]).statistic / (truth.sum() * (~truth).sum())
    assert metrics["roc_auc"] == pytest.approx(mann_whitney)
    log_loss = -np.mean(truth * np.log(score) + (~truth) * np.log(1 - score))
    assert metrics["log_loss"] == pytest.approx(log_loss)
    bins = np.minimum((score * 10).astype(int), 9)
    ece = sum(abs(score[bins == b].sum() - truth[bins == b].sum()) for b in range(10)) / score.size
    assert metrics["calibration_error"] == pytest.approx(ece)
    assert metrics["confusion"]["1"]["1"] == tp and metrics["confusion"]["0"]["1"] == fp


def test_multiclass_uses_macro_averages_and_pools_classes_beyond_the_cap() -> None:
    sketch = ClassificationSketch("yes", max_classes=3)
    sketch.update(np.array(["a", "b", "c", "d"], dtype=object), np.array(["a", "a", "c", "d"], dtype=object), np.full(4, np.nan))
    metrics = sketch.query()
    assert sketch.classes == ["a", "b", performance.OTHER_CLASS]
    assert metrics["accuracy"] == 0.75 and math.isnan(metrics["roc_auc"]) and math.isnan(metrics["log_loss"])
    assert metrics["class_recall"] == {"a": 1.0, "b": 0.0, performance.OTHER_CLASS: 1.0}
    assert metrics["recall"] == pytest.approx(2 / 3)


def test_class_names_equate_bools_integers_and_their_text() -> None:
    assert class_name(True) == class_name(1) == class_name(1.0) == class_name("1") == "1"
    assert class_name(False) == class_name(0) == "0" and class_name("fraud") == "fraud" and class_name(0.5) == "0.5"


def test_regression_metrics_match_numpy() -> None:
    rng = np.random.default_rng(1)
    label = rng.normal(10, 3, 2_000)
    prediction = label + rng.normal(0.5, 1, 2_000)
    sketch = RegressionSketch()
    sketch.update(prediction, label)
    metrics, error = sketch.query(), prediction - label
    assert metrics["mae"] == pytest.approx(np.abs(error).mean())
    assert metrics["rmse"] == pytest.approx(np.sqrt((error**2).mean()))
    assert metrics["mape"] == pytest.approx(np.abs(error / label).mean())
    assert metrics["mean_error"] == pytest.approx(error.mean())
    assert metrics["r2"] == pytest.approx(1 - (error**2).sum() / ((label - label.mean()) ** 2).sum())


def test_label_lag_quantiles_and_exact_count_over_the_limit() -> None:
    lags = np.random.default_rng(2).exponential(100.0, 10_000)
    sketch = LabelLagSketch(limit=300.0)
    sketch.update(lags)
    summary = sketch.query()
    assert sketch.over_limit == np.count_nonzero(lags > 300.0)
    assert summary["p95"] == pytest.approx(np.quantile(lags, 0.95), rel=0.02)
    assert summary["max"] == pytest.approx(lags.max(), rel=1e-6)


def _chunks(draw: st.DrawFn, n: int) -> list[slice]:
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    bounds = [0, *cuts, n]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(0, 10_000))
def test_classification_merge_in_any_split_equals_one_pass(data: st.DataObject, seed: int) -> None:
    labels, predicted, score = binary_outcomes(300, seed)
    rng = np.random.default_rng(seed)
    # Multiclass names appear in different orders in different chunks.
    labels = np.where(rng.random(300) < 0.2, "x", labels).astype(object)
    whole = ClassificationSketch("1")
    whole.update(labels, predicted, score)
    merged = ClassificationSketch("1")
    for part in reversed(_chunks(data.draw, 300)):
        sketch = ClassificationSketch("1")
        sketch.update(labels[part], predicted[part], score[part])
        merged.merge(ClassificationSketch.from_bytes(sketch.to_bytes()))
    expected, actual = whole.query(), merged.query()
    assert actual["confusion"] == expected["confusion"]
    for name in ("accuracy", "precision", "recall", "roc_auc", "calibration_error"):
        assert actual[name] == pytest.approx(expected[name])
    assert actual["log_loss"] == pytest.approx(expected["log_loss"])


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(0, 10_000))
def test_regression_and_lag_merges_equal_one_pass(data: st.DataObject, seed: int) -> None:
    rng = np.random.default_rng(seed)
    label, prediction, lags = rng.normal(5, 2, 200), rng.normal(5, 2, 200), rng.exponential(50, 200)
    whole, whole_lag = RegressionSketch(), LabelLagSketch(60.0)
    whole.update(prediction, label)
    whole_lag.update(lags)
    merged, merged_lag = RegressionSketch(), LabelLagSketch(60.0)
    for part in _chunks(data.draw, 200):
        sketch, lag = RegressionSketch(), LabelLagSketch(60.0)
        sketch.update(prediction[part], label[part])
        lag.update(lags[part])
        merged.merge(RegressionSketch.from_bytes(sketch.to_bytes()))
        merged_lag.merge(LabelLagSketch.from_bytes(lag.to_bytes()))
    assert merged.query() == pytest.approx(whole.query())
    assert merged_lag.over_limit == whole_lag.over_limit and merged_lag.count == whole_lag.count == 200
