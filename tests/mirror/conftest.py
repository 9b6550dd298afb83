"""Fixtures of the mirror tests: a unique key prefix per test, a mirror on the real Redis, a cached drift story."""

import functools
import uuid

import pytest

from detectors.evaluator import Evaluation, ModelEvaluator
from detectors.policy import WindowKey
from stream.mirror import RedisMirror
from tests.mirror.scenario import evaluations

MODEL_ID, VERSION = "fraud-detector", "2026.1"
SHIFTS = [0.0] * 3 + [1.0] * 8 + [0.0] * 12
"""x drifts in windows 3-10 and recovers; city is "Oslo" throughout, so its drift alert stays open."""


@functools.cache
def drift_story(segment: tuple[tuple[str, str], ...] = ()) -> tuple[ModelEvaluator, list[Evaluation]]:
    return evaluations(WindowKey(MODEL_ID, VERSION, segment), SHIFTS)


@pytest.fixture
def prefix() -> str:
    """A Redis key prefix of this test alone, so test runs sharing the Redis never collide."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mirror(stack_settings, prefix):
    mirror = RedisMirror(stack_settings.redis_url, prefix)
    yield mirror
    keys = list(mirror.client.scan_iter(f"{prefix}:*"))
    if keys:
        mirror.client.delete(*keys)
    mirror.close()
