import doctest
import importlib

import pytest

MODULES = [
    "detectors.numeric",
    "detectors.categorical",
    "detectors.latency",
    "detectors.correlation",
    "detectors.statistics",
    "detectors.online",
    "detectors.quality",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
