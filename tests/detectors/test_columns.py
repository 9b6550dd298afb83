"""``Columns.from_events`` against a per-event definition of each column, for batches of every mix of
feature values (numbers, bools, nulls, strings, absent keys) — the batch-wide fast path and the
column-by-column path must give the same arrays."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.columns import Columns

NUMERIC = ["a", "b", "c"]
ABSENT = object()

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.booleans(),
    st.none(),
    st.sampled_from(["1.5", "x", ""]),
    st.just(ABSENT),
)
numbers_only = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(min_value=-(2**53), max_value=2**53))


def event(row: tuple) -> dict:
    return {"timestamp": 1.0, "model_version": "1", "features": {name: value for name, value in zip(NUMERIC, row) if value is not ABSENT}}


def expected(value) -> tuple[float, bool, bool]:
    """(value, type error, absent) of one feature value, by the contract's definition."""
    if value is ABSENT:
        return math.nan, False, True
    if isinstance(value, str):
        return math.nan, True, False
    return (math.nan if value is None else float(value)), False, False


def check(rows: list[tuple], names: list[str]) -> None:
    columns = Columns.from_events([event(row) for row in rows], names, [])
    for position, name in enumerate(names):
        want = [expected(row[position]) for row in rows]
        np.testing.assert_array_equal(columns.numeric[name], np.array([value for value, _, _ in want], dtype=np.float64))
        assert columns.type_error[name].tolist() == [error for _, error, _ in want]
        assert columns.absent[name].tolist() == [absent for _, _, absent in want]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(values, values, values), min_size=1, max_size=20))
def test_any_mix_of_values_matches_the_definition(rows):
    check(rows, NUMERIC)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(numbers_only, numbers_only, numbers_only), min_size=1, max_size=20))
def test_numbers_only_batches_take_the_fast_path_with_the_same_result(rows):
    check(rows, NUMERIC)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(values), min_size=1, max_size=20))
def test_a_single_numeric_feature(rows):
    check(rows, NUMERIC[:1])


def test_shared_masks_of_the_fast_path_cannot_be_written():
    columns = Columns.from_events([event((1.0, 2, True))] * 3, NUMERIC, [])
    assert not columns.absent["a"].flags.writeable
