import pickle

import numpy as np
import pytest

from detectors.online import OnlineDetector


def stream(kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind in ("ddm", "eddm"):
        return np.concatenate([rng.random(1500) < 0.1, rng.random(1500) < 0.5]).astype(np.int8)
    return np.concatenate([rng.normal(0, 1, 1500), rng.normal(2, 1, 1500)])


CASES = [
    ("adwin", {}),
    ("page_hinkley", {}),
    ("kswin", {"alpha": 0.0001, "window_size": 100, "stat_size": 30}),
    ("ddm", {}),
    ("eddm", {}),
]


@pytest.mark.parametrize(("kind", "params"), CASES)
def test_restored_detector_continues_like_the_uninterrupted_one(kind, params):
    values = stream(kind)
    uninterrupted = OnlineDetector(kind, **params).update(values)
    assert any(index >= 1500 for index in uninterrupted), "the test stream must contain a detectable change"

    cut = 1700  # inside the drifted regime, so detector state at the cut is non-trivial
    first = OnlineDetector(kind, **params)
    detections = first.update(values[:cut])
    restored = OnlineDetector.from_bytes(first.to_bytes())
    assert restored.kind == kind
    detections += [cut + index for index in restored.update(values[cut:])]
    assert detections == uninterrupted


@pytest.mark.parametrize(("kind", "params"), CASES)
def test_batches_equal_one_stream(kind, params):
    values = stream(kind)
    whole = OnlineDetector(kind, **params).update(values)
    detector = OnlineDetector(kind, **params)
    detections = []
    for start in range(0, values.size, 250):
        detections += [start + index for index in detector.update(values[start : start + 250])]
    assert detections == whole


def test_drift_detected_reflects_last_batch():
    detector = OnlineDetector("page_hinkley")
    assert detector.update(np.zeros(200)) == [] and not detector.drift_detected
    detector.update(np.full(100, 10.0))
    assert detector.drift_detected


def test_kswin_is_seeded_by_default():
    values = stream("kswin")[1000:2000]
    detections = OnlineDetector("kswin").update(values)
    assert detections and detections == OnlineDetector("kswin").update(values)


def test_unknown_kind_and_foreign_bytes_are_rejected():
    with pytest.raises(ValueError):
        OnlineDetector("cusum")
    with pytest.raises(ValueError):
        OnlineDetector.from_bytes(pickle.dumps({"not": "a detector"}))
