"""Decoded inference events as columns: one numpy array per feature and per output field.

The decoder hands over a list of event dicts (``timestamp`` already float epoch seconds). Everything
downstream — windows, sketches, statistics — is vectorized, so this module does the one unavoidable
per-event Python pass: one list comprehension per column, then numpy.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np


class _Absent:
    """Marks a feature key absent from an event (as opposed to present with ``null``)."""


_ABSENT = _Absent()
_NUMBER_TYPES = frozenset({float, int, bool, type(None)})


@dataclasses.dataclass
class Columns:
    """Columns of a batch of inference events of one model, one array entry per event.

    Attributes
    ----------
    numeric
        Per numeric feature a float64 array; NaN where the value was null, absent or a string.
        ``bool`` becomes 0/1.
    categorical
        Per categorical feature an object array of the values as sent; ``None`` where null or absent.
    type_error
        Per numeric feature a bool array: the event sent a string.
    absent
        Per feature a bool array: the event's ``features`` lacked the key.
    unknown_features
        Object array: ``None``, or the sorted tuple of feature names the schema does not list.
    score
        ``prediction.score``, else ``prediction.value``, else the top probability, else a bare
        numeric prediction; NaN when the event has none.
    predicted_class
        ``prediction.class``, else the most probable class, else a string/bool prediction; ``None``
        when the event has none.
    latency_ms, error, timestamp, model_version
        Serving latency (NaN when absent), ``status == "error"``, event time, model version.
    segment
        Per configured segment tag an object array of tag values (``None`` when the event lacks it).

    Examples
    --------
    >>> events = [
    ...     {"timestamp": 10.0, "model_version": "1", "features": {"age": 31, "city": "Oslo"},
    ...      "prediction": {"score": 0.8}, "latency_ms": 12.5},
    ...     {"timestamp": 11.0, "model_version": "1", "features": {"age": "n/a", "zip": 7},
    ...      "prediction": "fraud", "status": "error"},
    ... ]
    >>> columns = Columns.from_events(events, numeric=["age"], categorical=["city"])
    >>> columns.numeric["age"].tolist(), columns.type_error["age"].tolist(), columns.absent["city"].tolist()
    ([31.0, nan], [False, True], [False, True])
    >>> columns.score.tolist(), columns.predicted_class.tolist(), columns.error.tolist()
    ([0.8, nan], [None, 'fraud'], [False, True])
    >>> columns.unknown_features.tolist()
    [None, ('zip',)]
    >>> len(columns.take(np.array([1])))
    1
    """

    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    type_error: dict[str, np.ndarray]
    absent: dict[str, np.ndarray]
    unknown_features: np.ndarray
    score: np.ndarray
    predicted_class: np.ndarray
    latency_ms: np.ndarray
    error: np.ndarray
    timestamp: np.ndarray
    model_version: np.ndarray
    segment: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.timestamp.size)

    @classmethod
    def from_events(
        cls,
        events: Sequence[Mapping[str, Any]],
        numeric: Sequence[str],
        categorical: Sequence[str],
        segment_tags: Sequence[str] = (),
    ) -> Columns:
        feature_maps = [event["features"] for event in events]
        numeric_columns, type_error, absent = _numeric_columns(feature_maps, numeric)
        categorical_columns = {}
        for name in categorical:
            column = _object_column([features.get(name, _ABSENT) for features in feature_maps])
            absent[name] = column == _ABSENT
            column[absent[name]] = None
            categorical_columns[name] = column

        # An event has unknown features exactly when it holds more keys than known ones present.
        known_present = len(absent) - sum(mask.astype(np.int64) for mask in absent.values())
        sizes = np.fromiter(map(len, feature_maps), dtype=np.int64, count=len(feature_maps))
        unknown = np.empty(len(events), dtype=object)
        known = {*numeric, *categorical}
        for index in np.flatnonzero(sizes > known_present).tolist():
            unknown[index] = tuple(sorted(feature_maps[index].keys() - known))

        score, predicted_class = _prediction_columns([event.get("prediction") for event in events])
        return cls(
            numeric=numeric_columns,
            categorical=categorical_columns,
            type_error=type_error,
            absent=absent,
            unknown_features=unknown,
            score=score,
            predicted_class=predicted_class,
            latency_ms=np.array([event.get("latency_ms") for event in events], dtype=np.float64),
            error=np.array([event.get("status") == "error" for event in events], dtype=bool),
            timestamp=np.array([event["timestamp"] for event in events], dtype=np.float64),
            model_version=_object_column([event["model_version"] for event in events]),
            segment={
                tag: _object_column([(event.get("segment") or {}).get(tag) for event in events])
                for tag in segment_tags
            },
        )

    def take(self, indices: np.ndarray) -> Columns:
        """The events at ``indices`` (an int or bool array), e.g. those of one window."""
        return Columns(
            **{
                field.name: (
                    {name: array[indices] for name, array in value.items()}
                    if isinstance(value := getattr(self, field.name), dict)
                    else value[indices]
                )
                for field in dataclasses.fields(self)
            }
        )


def _object_column(values: list[Any]) -> np.ndarray:
    # np.array would turn a list of tuples or of equal-length strings into something else.
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _numeric_columns(
    feature_maps: list[Mapping[str, Any]], names: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per name the float64 column, mask of strings (type errors) and mask of absent keys.

    The common batch — every event has every numeric feature, as a number — takes one C-level pass:
    ``itemgetter`` rows, then ``array('d')``, which refuses strings and nulls (numpy would parse
    ``"1.5"`` as 1.5); any other batch goes column by column."""
    size = len(feature_maps)
    if len(names) > 1:
        with contextlib.suppress(KeyError, TypeError):
            values = array.array("d", list(chain.from_iterable(map(itemgetter(*names), feature_maps))))
            table = np.frombuffer(values, dtype=np.float64).reshape(size, len(names)).T.copy()
            none = np.zeros(size, dtype=bool)
            none.flags.writeable = False  # one mask shared by every name
            return dict(zip(names, table)), dict.fromkeys(names, none), dict.fromkeys(names, none)
    numeric, type_error, absent = {}, {}, {}
    for name in names:
        numeric[name], type_error[name], absent[name] = _numeric_column([features.get(name, _ABSENT) for features in feature_maps])
    return numeric, type_error, absent


def _numeric_column(values: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 column, mask of strings (type errors), mask of absent keys."""
    size = len(values)
    kinds = set(map(type, values))
    if kinds <= _NUMBER_TYPES:
        return np.array(values, dtype=np.float64), np.zeros(size, dtype=bool), np.zeros(size, dtype=bool)
    strings = np.array([type(value) is str for value in values], dtype=bool)
    absent = np.array([value is _ABSENT for value in values], dtype=bool)
    numbers = [value if type(value) in _NUMBER_TYPES else None for value in values]
    return np.array(numbers, dtype=np.float64), strings, absent


def _prediction_columns(predictions: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    kinds = set(map(type, predictions))
    if kinds <= {float, int, type(None)}:
        classes = np.empty(len(predictions), dtype=object)
        return np.array(predictions, dtype=np.float64), classes
    pairs = [_score_and_class(prediction) for prediction in predictions]
    classes = np.empty(len(pairs), dtype=object)
    classes[:] = [predicted_class for _, predicted_class in pairs]
    return np.array([score for score, _ in pairs], dtype=np.float64), classes


def _score_and_class(prediction: Any) -> tuple[float | None, Any]:
    kind = type(prediction)
    if kind is float or kind is int:
        return prediction, None
    if kind is str or kind is bool:
        return None, prediction
    if kind is not dict:
        return None, None
    probabilities = prediction.get("probabilities")
    score = prediction.get("score", prediction.get("value"))
    predicted_class = prediction.get("class")
    if probabilities:
        top = max(probabilities, key=probabilities.__getitem__)
        score = probabilities[top] if score is None else score
        predicted_class = top if predicted_class is None else predicted_class
    return score, predicted_class
