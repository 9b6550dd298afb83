"""Seeded synthetic inference and label events with known changes: the workload behind the tests,
the ``make run`` demo and the benchmarks.

>>> workload = Workload(seed=7, model_id="demo")
>>> scenarios = [AbruptShift(features=("num_01",), start=6_000, shift_sd=3.0)]
>>> for values, keys, batch in workload.batches(10_000, 4_000, scenarios):
...     labels = workload.labels(batch, coverage=0.5)
>>> [(change.kind, change.features, change.start_index) for change in ground_truth(scenarios, 10_000)]
[('data_drift', ('num_01',), 6000), ('prediction_drift', ('prediction',), 6000)]

Each event has 20 numeric features (``num_00``..``num_19``: normal, lognormal, uniform, beta,
gamma and integer-valued ones), 5 skewed categorical features (``cat_0``..``cat_4``, 3 to 50
values), a score and class from a hidden logistic model (``MODEL_WEIGHTS``), a lognormal
``latency_ms`` and a ``region`` segment tag. The true label is drawn from the true concept, which
equals the model until a ``ConceptDrift`` changes it, so the model is calibrated on clean data.

Determinism: events are generated in chunks of ``CHUNK_SIZE``, each from its own random stream
derived from (seed, stream, chunk index). The same seed and scenarios therefore give byte-identical
events whatever the batch size, and any index range can be regenerated on its own. Scenarios draw
from separate streams, so the clean draws under a scenario are those of the stationary run: a
drifted run and its stationary twin differ only where the scenario acts.

Scenarios act in three stages, in list order within a stage: ``FEATURES`` (distribution shifts;
the model sees the shifted inputs), ``LOGITS`` (model bugs and concept changes, before score and
label are derived) and ``OUTPUTS`` (logging bugs, latency, errors, malformed bytes; the model saw
clean inputs). Each scenario's ``changes(n_events)`` is its ground truth, as ``Change`` records
whose ``kind`` is the alert kind expected to reveal it.
"""

from __future__ import annotations

import csv
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import IntEnum
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

import numpy as np
import orjson

from detectors.profile import ReferenceBuilder, ReferenceProfile

SCHEMA_VERSION = "1.0"
CHUNK_SIZE = 4096
ChangeKind = Literal[
    "data_quality", "data_drift", "prediction_drift", "concept_drift", "performance", "latency", "error_rate", "schema"
]


class _Stream(IntEnum):
    """Independent random streams of one seed."""

    EVENTS = 0
    REFERENCE = 1
    SCENARIOS = 2
    LABELS = 3


def _rng(seed: int, *spawn_key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


# ---------------------------------------------------------------------------------------------
# Feature distributions and the hidden model


@dataclass(frozen=True)
class NumericFeature:
    """One numeric feature: a numpy distribution with its two parameters and exact mean and sd.

    ``decimals`` is the rounding in the JSON (it keeps events near 600 bytes); ``None`` marks an
    integer-valued feature.

    >>> NUMERIC_FEATURES[5].sample(np.random.default_rng(0), 3)
    array([3., 2., 1.])
    """

    name: str
    distribution: Literal["normal", "lognormal", "uniform", "beta", "gamma", "binomial", "poisson", "integers"]
    a: float
    b: float
    decimals: int | None = 3

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values as float64 (integer-valued features hold whole numbers)."""
        if self.distribution == "binomial":
            return rng.binomial(int(self.a), self.b, size).astype(np.float64)
        if self.distribution == "poisson":
            return rng.poisson(self.a, size).astype(np.float64)
        if self.distribution == "integers":
            return rng.integers(int(self.a), int(self.b), size, endpoint=True).astype(np.float64)
        return getattr(rng, self.distribution)(self.a, self.b, size)

    @property
    def integer(self) -> bool:
        return self.decimals is None

    @cached_property
    def mean(self) -> float:
        a, b = self.a, self.b
        match self.distribution:
            case "normal" | "poisson":
                return a
            case "lognormal":
                return math.exp(a + b * b / 2)
            case "uniform" | "integers":
                return (a + b) / 2
            case "beta":
                return a / (a + b)
            case "gamma" | "binomial":
                return a * b

    @cached_property
    def sd(self) -> float:
        a, b = self.a, self.b
        match self.distribution:
            case "normal":
                return b
            case "lognormal":
                return math.sqrt(math.expm1(b * b)) * math.exp(a + b * b / 2)
            case "uniform":
                return (b - a) / math.sqrt(12)
            case "beta":
                return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
            case "gamma":
                return math.sqrt(a) * b
            case "binomial":
                return math.sqrt(a * b * (1 - b))
            case "poisson":
                return math.sqrt(a)
            case "integers":
                return math.sqrt(((b - a + 1) ** 2 - 1) / 12)

    def shift(self, shift_sd: float) -> float:
        """The mean shift of ``shift_sd`` standard deviations; whole for integer-valued features."""
        shift = shift_sd * self.sd
        return float(round(shift)) if self.integer else shift


@dataclass(frozen=True)
class CategoricalFeature:
    """One categorical feature with Zipf-like frequencies (p_k proportional to 1 / k**exponent).

    >>> CATEGORICAL_FEATURES[0].probabilities.round(3)
    array([0.545, 0.273, 0.182])
    """

    name: str
    values: tuple[str, ...]
    exponent: float

    @property
    def probabilities(self) -> np.ndarray:
        weights = 1.0 / np.arange(1, len(self.values) + 1) ** self.exponent
        return weights / weights.sum()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values as an object array of str."""
        codes = rng.choice(len(self.values), size=size, p=self.probabilities)
        return np.array(self.values, dtype=object)[codes]


NUMERIC_FEATURES: tuple[NumericFeature, ...] = (
    NumericFeature("num_00", "normal", 0.0, 1.0),
    NumericFeature("num_01", "normal", 50.0, 10.0, 2),
    NumericFeature("num_02", "normal", -3.0, 0.5),
    NumericFeature("num_03", "lognormal", 3.0, 0.6, 2),
    NumericFeature("num_04", "uniform", 0.0, 1.0, 4),
    NumericFeature("num_05", "binomial", 10, 0.3, None),
    NumericFeature("num_06", "normal", 1000.0, 250.0, 1),
    NumericFeature("num_07", "lognormal", 0.0, 1.0),
    NumericFeature("num_08", "uniform", -5.0, 5.0),
    NumericFeature("num_09", "normal", 0.5, 0.1, 4),
    NumericFeature("num_10", "normal", 10.0, 3.0),
    NumericFeature("num_11", "lognormal", 1.0, 0.3),
    NumericFeature("num_12", "uniform", 100.0, 200.0, 2),
    NumericFeature("num_13", "integers", 1, 7, None),
    NumericFeature("num_14", "normal", -20.0, 5.0, 2),
    NumericFeature("num_15", "beta", 2.0, 5.0, 4),
    NumericFeature("num_16", "normal", 0.0, 100.0, 1),
    NumericFeature("num_17", "lognormal", 2.0, 1.2, 2),
    NumericFeature("num_18", "gamma", 2.0, 2.0),
    NumericFeature("num_19", "poisson", 3.0, 0.0, None),
)
CATEGORICAL_FEATURES: tuple[CategoricalFeature, ...] = (
    CategoricalFeature("cat_0", ("web", "ios", "android"), 1.0),
    CategoricalFeature("cat_1", tuple(f"b{k}" for k in range(6)), 1.2),
    CategoricalFeature("cat_2", tuple(f"c{k}" for k in range(12)), 0.8),
    CategoricalFeature("cat_3", tuple(f"d{k}" for k in range(50)), 1.1),
    CategoricalFeature("cat_4", tuple(f"e{k}" for k in range(25)), 1.5),
)
NUMERIC_NAMES = tuple(feature.name for feature in NUMERIC_FEATURES)
CATEGORICAL_NAMES = tuple(feature.name for feature in CATEGORICAL_FEATURES)
FEATURE_NAMES = NUMERIC_NAMES + CATEGORICAL_NAMES
REGIONS = ("eu", "us", "apac")
REGION_PROBABILITIES = (0.45, 0.35, 0.20)
LATENCY_LOG_MEDIAN_MS = math.log(20.0)
LATENCY_LOG_SD = 0.35

# The hidden model: logit = intercept + sum(weight * standardized numeric feature) + category effect.
MODEL_INTERCEPT = -0.4
MODEL_WEIGHTS: Mapping[str, float] = {"num_00": 1.8, "num_01": 1.2, "num_03": -1.0, "num_05": 0.8, "num_10": 0.6}
MODEL_CATEGORY_EFFECTS: Mapping[str, Mapping[str, float]] = {"cat_0": {"web": 0.0, "ios": 0.7, "android": -0.7}}
MODEL_INPUTS = frozenset(MODEL_WEIGHTS) | frozenset(MODEL_CATEGORY_EFFECTS)

_NUMERIC_BY_NAME = {feature.name: feature for feature in NUMERIC_FEATURES}
_NUMERIC_COLUMN = {name: column for column, name in enumerate(NUMERIC_NAMES)}
_CATEGORICAL_COLUMN = {name: column for column, name in enumerate(CATEGORICAL_NAMES)}


def _logit(numeric: np.ndarray, categorical: np.ndarray, weights: Mapping[str, float]) -> np.ndarray:
    logit = np.full(len(numeric), MODEL_INTERCEPT)
    for name, weight in weights.items():
        feature = _NUMERIC_BY_NAME[name]
        logit += weight * (numeric[:, _NUMERIC_COLUMN[name]] - feature.mean) / feature.sd
    for name, effects in MODEL_CATEGORY_EFFECTS.items():
        column = categorical[:, _CATEGORICAL_COLUMN[name]]
        for value, effect in effects.items():
            logit[column == value] += effect
    return logit


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit))


# ---------------------------------------------------------------------------------------------
# The columnar batch


@dataclass
class Batch:
    """Events ``start`` .. ``start + len - 1`` as columns; the ground truth of every event.

    ``numeric`` is (n, 20) float64 with NaN for null; ``categorical`` is (n, 5) object (str or
    None). ``model_logit``/``true_logit`` are the model's and the true concept's logits; ``label``
    is drawn as ``label_draw < sigmoid(true_logit)``. ``malformed`` holds an index into
    ``MALFORMED_KINDS`` for events replaced by malformed bytes, -1 elsewhere.

    >>> batch = Workload(seed=1).generate(10, 15)
    >>> batch.start, len(batch), batch.numeric.shape, batch.numeric_column("num_05").tolist()
    (10, 5, (5, 20), [1.0, 2.0, 2.0, 3.0, 2.0])
    """

    start: int
    index: np.ndarray
    timestamp: np.ndarray
    numeric: np.ndarray
    categorical: np.ndarray
    region: np.ndarray
    label_draw: np.ndarray
    latency_ms: np.ndarray
    model_logit: np.ndarray
    true_logit: np.ndarray
    score: np.ndarray
    predicted_class: np.ndarray
    label: np.ndarray
    error: np.ndarray
    malformed: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, rows: slice) -> Batch:
        """Rows ``rows`` (a step-1 slice) as a new batch sharing memory."""
        columns = {f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "start"}
        return Batch(start=int(columns["index"][0]) if len(columns["index"]) else self.start, **columns)

    @staticmethod
    def concat(batches: Sequence[Batch]) -> Batch:
        """Consecutive batches joined into one."""
        columns = {f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(Batch) if f.name != "start"}
        return Batch(start=batches[0].start, **columns)

    def numeric_column(self, name: str) -> np.ndarray:
        """The column of numeric feature ``name`` (a view: NaN is null)."""
        return self.numeric[:, _NUMERIC_COLUMN[name]]

    def categorical_column(self, name: str) -> np.ndarray:
        """The column of categorical feature ``name`` (a view: None is null)."""
        return self.categorical[:, _CATEGORICAL_COLUMN[name]]

    def rows_in(self, start: int, end: int | None) -> np.ndarray:
        """Boolean mask of rows whose event index is in [start, end)."""
        mask = self.index >= start
        if end is not None:
            mask &= self.index < end
        return mask


# ---------------------------------------------------------------------------------------------
# Ground truth and scenarios


@dataclass(frozen=True)
class Change:
    """One known change: events [start_index, end_index) differ in ``features`` (end None: to the end).

    ``kind`` is the alert kind that should reveal it; ``features`` names feature columns, or the
    pseudo-columns "prediction", "label", "latency_ms", "status" and "raw" (the bytes themselves).
    """

    kind: ChangeKind
    features: tuple[str, ...]
    start_index: int
    end_index: int | None
    scenario: str


class Stage(IntEnum):
    """When a scenario acts while a chunk is generated."""

    FEATURES = 0
    LOGITS = 1
    OUTPUTS = 2


class Scenario(ABC):
    """A composable change to the generated stream with its ground truth."""

    stage: ClassVar[Stage]

    @abstractmethod
    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        """Change ``batch`` in place for the rows this scenario covers."""

    @abstractmethod
    def changes(self, n_events: int) -> list[Change]:
        """The ground truth within the first ``n_events`` events."""

    @property
    def name(self) -> str:
        return type(self).__name__


def _check_names(names: Iterable[str], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; expected some of {sorted(allowed)}")


def _check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"need 0 <= start < end, got start={start}, end={end}")


def _prediction_drift(scenario: Scenario, features: Iterable[str], start: int, end: int | None) -> list[Change]:
    if MODEL_INPUTS.isdisjoint(features):
        return []
    return [Change("prediction_drift", ("prediction",), start, end, scenario.name)]


@dataclass(frozen=True, kw_only=True)
class _MeanShift(Scenario):
    """Numeric ``features`` move by ``weight(index) * shift_sd`` standard deviations."""

    stage: ClassVar[Stage] = Stage.FEATURES
    features: tuple[str, ...]
    shift_sd: float = 3.0

    def __post_init__(self) -> None:
        _check_names(self.features, NUMERIC_NAMES, "numeric features")

    @abstractmethod
    def weight(self, index: np.ndarray) -> np.ndarray:
        """Fraction of the full shift (0..1) applied to each event index."""

    @abstractmethod
    def intervals(self, n_events: int) -> list[tuple[int, int | None]]:
        """The [start, end) index ranges where the shift is not zero."""

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        weight = self.weight(batch.index)
        for name in self.features:
            feature = _NUMERIC_BY_NAME[name]
            column = batch.numeric_column(name)
            column += weight * feature.shift(self.shift_sd)
            if feature.integer:
                np.round(column, out=column)

    def changes(self, n_events: int) -> list[Change]:
        return [
            change
            for start, end in self.intervals(n_events)
            for change in [Change("data_drift", self.features, start, end, self.name), *_prediction_drift(self, self.features, start, end)]
        ]


@dataclass(frozen=True, kw_only=True)
class AbruptShift(_MeanShift):
    """From event ``start`` on, ``features`` shift their mean by ``shift_sd`` standard deviations.

    >>> AbruptShift(features=("num_00",), start=100).changes(1000)[0]
    Change(kind='data_drift', features=('num_00',), start_index=100, end_index=None, scenario='AbruptShift')
    """

    start: int

    def weight(self, index: np.ndarray) -> np.ndarray:
        return (index >= self.start).astype(np.float64)

    def intervals(self, n_events: int) -> list[tuple[int, int | None]]:
        return [(self.start, None)] if self.start < n_events else []


@dataclass(frozen=True, kw_only=True)
class GradualShift(_MeanShift):
    """The shift grows linearly from 0 at ``start`` to ``shift_sd`` at ``end`` and stays there.

    >>> GradualShift(features=("num_01",), start=100, end=600).weight(np.array([100, 350, 600, 900]))
    array([0. , 0.5, 1. , 1. ])
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range(self.start, self.end)

    def weight(self, index: np.ndarray) -> np.ndarray:
        return np.clip((index - self.start) / (self.end - self.start), 0.0, 1.0)

    def intervals(self, n_events: int) -> list[tuple[int, int | None]]:
        return [(self.start, None)] if self.start < n_events else []


@dataclass(frozen=True, kw_only=True)
class RecurringShift(_MeanShift):
    """From ``start``, the shift is on for ``duration`` events in every ``period`` (seasonality).

    >>> RecurringShift(features=("num_02",), start=100, period=400, duration=100).intervals(1000)
    [(100, 200), (500, 600), (900, 1000)]
    """

    start: int
    period: int
    duration: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.duration < self.period:
            raise ValueError(f"need 0 < duration < period, got duration={self.duration}, period={self.period}")

    def weight(self, index: np.ndarray) -> np.ndarray:
        return ((index >= self.start) & ((index - self.start) % self.period < self.duration)).astype(np.float64)

    def intervals(self, n_events: int) -> list[tuple[int, int | None]]:
        return [(on, on + self.duration) for on in range(self.start, n_events, self.period)]


@dataclass(frozen=True, kw_only=True)
class TemporaryShift(_MeanShift):
    """``features`` are shifted only for events in [``start``, ``end``).

    >>> TemporaryShift(features=("num_04",), start=10, end=20).intervals(100)
    [(10, 20)]
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range(self.start, self.end)

    def weight(self, index: np.ndarray) -> np.ndarray:
        return ((index >= self.start) & (index < self.end)).astype(np.float64)

    def intervals(self, n_events: int) -> list[tuple[int, int | None]]:
        return [(self.start, self.end)] if self.start < n_events else []


@dataclass(frozen=True, kw_only=True)
class CategoryExplosion(Scenario):
    """In [start, end), a fraction ``rate`` of ``feature`` values become one of ``new_values``
    never-seen values (``"<feature>_new_<k>"``, uniform over k).

    >>> CategoryExplosion(feature="cat_3", start=50).changes(100)[0].kind
    'data_drift'
    """

    stage: ClassVar[Stage] = Stage.FEATURES
    feature: str
    start: int = 0
    end: int | None = None
    rate: float = 0.5
    new_values: int = 500

    def __post_init__(self) -> None:
        _check_names([self.feature], CATEGORICAL_NAMES, "categorical feature")
        _check_range(self.start, self.end)

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        rows = batch.rows_in(self.start, self.end) & (rng.random(len(batch)) < self.rate)
        new = np.array([f"{self.feature}_new_{k}" for k in range(self.new_values)], dtype=object)
        batch.categorical_column(self.feature)[rows] = new[rng.integers(0, self.new_values, int(rows.sum()))]

    def changes(self, n_events: int) -> list[Change]:
        if self.start >= n_events:
            return []
        features = (self.feature,)
        return [
            Change("data_drift", features, self.start, self.end, self.name),
            Change("data_quality", features, self.start, self.end, self.name),
            *_prediction_drift(self, features, self.start, self.end),
        ]


@dataclass(frozen=True, kw_only=True)
class ClassCollapse(Scenario):
    """In [start, end), a preprocessing bug (an input no longer centered) adds ``logit_shift`` to
    the model's logit, so class 1 is > 95 % of predictions; the logged features stay clean.

    >>> ClassCollapse(start=10).changes(100)[0].features
    ('prediction',)
    """

    stage: ClassVar[Stage] = Stage.LOGITS
    start: int = 0
    end: int | None = None
    logit_shift: float = 8.0

    def __post_init__(self) -> None:
        _check_range(self.start, self.end)

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        batch.model_logit[batch.rows_in(self.start, self.end)] += self.logit_shift

    def changes(self, n_events: int) -> list[Change]:
        return [Change("prediction_drift", ("prediction",), self.start, self.end, self.name)] if self.start < n_events else []


@dataclass(frozen=True, kw_only=True)
class ConceptDrift(Scenario):
    """In [start, end), the true concept negates the weights of ``flipped`` model inputs; features
    and predictions are unchanged, so only labels (performance) reveal it.

    >>> [change.kind for change in ConceptDrift(start=10).changes(100)]
    ['concept_drift', 'performance']
    """

    stage: ClassVar[Stage] = Stage.LOGITS
    start: int = 0
    end: int | None = None
    flipped: tuple[str, ...] = ("num_00", "num_01")

    def __post_init__(self) -> None:
        _check_names(self.flipped, MODEL_WEIGHTS, "weighted model inputs")
        _check_range(self.start, self.end)

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        rows = batch.rows_in(self.start, self.end)
        weights = {name: -weight if name in self.flipped else weight for name, weight in MODEL_WEIGHTS.items()}
        batch.true_logit[rows] = _logit(batch.numeric[rows], batch.categorical[rows], weights)

    def changes(self, n_events: int) -> list[Change]:
        if self.start >= n_events:
            return []
        return [Change(kind, ("label",), self.start, self.end, self.name) for kind in ("concept_drift", "performance")]


@dataclass(frozen=True, kw_only=True)
class Nulls(Scenario):
    """In [start, end), each of ``features`` is null with probability ``rate``, independently.

    >>> Nulls(features=("num_03", "cat_1"), rate=0.2).changes(10)[0].kind
    'data_quality'
    """

    stage: ClassVar[Stage] = Stage.OUTPUTS
    features: tuple[str, ...]
    rate: float = 0.2
    start: int = 0
    end: int | None = None

    def __post_init__(self) -> None:
        _check_names(self.features, FEATURE_NAMES, "features")
        _check_range(self.start, self.end)

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        in_range = batch.rows_in(self.start, self.end)
        for name in self.features:
            rows = in_range & (rng.random(len(batch)) < self.rate)
            if name in _NUMERIC_COLUMN:
                batch.numeric_column(name)[rows] = np.nan
            else:
                batch.categorical_column(name)[rows] = None

    def changes(self, n_events: int) -> list[Change]:
        return [Change("data_quality", self.features, self.start, self.end, self.name)] if self.start < n_events else []


@dataclass(frozen=True, kw_only=True)
class Sentinel(Scenario):
    """In [start, end), each numeric feature of ``features`` is ``value`` with probability ``rate``.

    >>> Sentinel(features=("num_06",), rate=0.1, value=-999.0).changes(10)[0].features
    ('num_06',)
    """

    stage: ClassVar[Stage] = Stage.OUTPUTS
    features: tuple[str, ...]
    rate: float = 0.1
    value: float = -999.0
    start: int = 0
    end: int | None = None

    def __post_init__(self) -> None:
        _check_names(self.features, NUMERIC_NAMES, "numeric features")
        _check_range(self.start, self.end)

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        in_range = batch.rows_in(self.start, self.end)
        for name in self.features:
            batch.numeric_column(name)[in_range & (rng.random(len(batch)) < self.rate)] = self.value

    def changes(self, n_events: int) -> list[Change]:
        return [Change("data_quality", self.features, self.start, self.end, self.name)] if self.start < n_events else []


@dataclass(frozen=True, kw_only=True)
class LatencySpike(Scenario):
    """In [start, end), serving latency is multiplied by ``factor``.

    >>> LatencySpike(start=5, end=9).changes(10)[0]
    Change(kind='latency', features=('latency_ms',), start_index=5, end_index=9, scenario='LatencySpike')
    """

    stage: ClassVar[Stage] = Stage.OUTPUTS
    start: int = 0
    end: int | None = None
    factor: float = 5.0

    def __post_init__(self) -> None:
        _check_range(self.start, self.end)

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        batch.latency_ms[batch.rows_in(self.start, self.end)] *= self.factor

    def changes(self, n_events: int) -> list[Change]:
        return [Change("latency", ("latency_ms",), self.start, self.end, self.name)] if self.start < n_events else []


@dataclass(frozen=True, kw_only=True)
class Errors(Scenario):
    """In [start, end), a fraction ``rate`` of requests fail: status "error", prediction null.

    >>> Errors(rate=0.3, start=5).changes(10)[0].kind
    'error_rate'
    """

    stage: ClassVar[Stage] = Stage.OUTPUTS
    rate: float = 0.1
    start: int = 0
    end: int | None = None

    def __post_init__(self) -> None:
        _check_range(self.start, self.end)

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        batch.error |= batch.rows_in(self.start, self.end) & (rng.random(len(batch)) < self.rate)

    def changes(self, n_events: int) -> list[Change]:
        return [Change("error_rate", ("status",), self.start, self.end, self.name)] if self.start < n_events else []


MALFORMED_KINDS = ("truncated_json", "nan_literal", "non_utf8", "wrong_types", "missing_fields")


@dataclass(frozen=True, kw_only=True)
class Malformed(Scenario):
    """In [start, end), a fraction ``rate`` of raw values are replaced by malformed bytes, of a kind
    drawn uniformly from ``MALFORMED_KINDS``: the first half of the JSON (truncated_json), a bare
    ``NaN`` for ``latency_ms`` (nan_literal), bytes 0xFF 0xFE inside ``model_id`` (non_utf8), valid
    JSON with a string timestamp, a list of features and a string latency (wrong_types), or valid
    JSON without ``prediction_id`` and ``features`` (missing_fields). The Kafka key stays the
    prediction_id. None of them contains a newline, so they survive a JSONL file.

    >>> Malformed(rate=0.05).changes(10)[0].features
    ('raw',)
    """

    stage: ClassVar[Stage] = Stage.OUTPUTS
    rate: float = 0.05
    start: int = 0
    end: int | None = None

    def __post_init__(self) -> None:
        _check_range(self.start, self.end)

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        rows = batch.rows_in(self.start, self.end) & (rng.random(len(batch)) < self.rate)
        batch.malformed[rows] = rng.integers(0, len(MALFORMED_KINDS), int(rows.sum()))

    def changes(self, n_events: int) -> list[Change]:
        return [Change("schema", ("raw",), self.start, self.end, self.name)] if self.start < n_events else []


def ground_truth(scenarios: Iterable[Scenario], n_events: int) -> list[Change]:
    """All changes the scenarios make within the first ``n_events`` events, in scenario order."""
    return [change for scenario in scenarios for change in scenario.changes(n_events)]


def presets(n_events: int) -> dict[str, list[Scenario]]:
    """Ready-made scenario lists by name, scaled to a run of ``n_events`` (for the demo and benchmarks).

    Changes start at 40 % of the run; temporary ones end at 70 %. Needs ``n_events >= 20``.

    >>> presets(10_000)["abrupt"]
    [AbruptShift(features=('num_01', 'num_06'), shift_sd=1.0, start=4000)]
    >>> list(presets(100))[:4]
    ['stationary', 'abrupt', 'gradual', 'recurring']
    """
    start, end = int(n_events * 0.4), int(n_events * 0.7)
    return {
        "stationary": [],
        "abrupt": [AbruptShift(features=("num_01", "num_06"), start=start, shift_sd=1.0)],
        "gradual": [GradualShift(features=("num_01", "num_06"), start=start, end=end, shift_sd=1.0)],
        "recurring": [RecurringShift(features=("num_07",), start=start, period=n_events // 10, duration=n_events // 20, shift_sd=1.0)],
        "temporary": [TemporaryShift(features=("num_12",), start=start, end=end, shift_sd=1.0)],
        "nulls": [Nulls(features=("num_03", "cat_2"), rate=0.2, start=start)],
        "sentinel": [Sentinel(features=("num_06",), rate=0.1, start=start)],
        "category_explosion": [CategoryExplosion(feature="cat_3", start=start)],
        "class_collapse": [ClassCollapse(start=start)],
        "latency_spike": [LatencySpike(start=start, end=end)],
        "errors": [Errors(rate=0.1, start=start, end=end)],
        "malformed": [Malformed(rate=0.05, start=start)],
        "concept_drift": [ConceptDrift(start=start)],
    }


# ---------------------------------------------------------------------------------------------
# The workload


class GeneratedBatch(NamedTuple):
    """What ``Workload.batches`` yields: Kafka values and keys, and the batch they came from."""

    values: list[bytes]
    keys: list[bytes]
    batch: Batch


class LabelEvents(NamedTuple):
    """Label events in arrival (label-time) order: Kafka values, keys and label times."""

    values: list[bytes]
    keys: list[bytes]
    timestamps: np.ndarray


@dataclass(frozen=True)
class Workload:
    """A seeded source of inference events, their labels and a matching reference set.

    Event ``i`` has nominal event time ``start + i / events_per_second``; ``jitter_seconds`` adds
    uniform noise in [-jitter, +jitter], and a fraction ``late_fraction`` of events is stamped up
    to ``max_lateness_seconds`` earlier, so they arrive out of order (late) in event time.

    >>> workload = Workload(seed=1, model_id="demo", events_per_second=100.0, start=1_790_000_000.0)
    >>> workload.time_of(250)
    1790000002.5
    >>> len(workload.serialize(workload.generate(0, 3)))
    3
    """

    seed: int = 0
    model_id: str = "demo"
    model_version: str = "1"
    events_per_second: float = 1000.0
    start: float = 1_790_000_000.0
    jitter_seconds: float = 0.0
    late_fraction: float = 0.0
    max_lateness_seconds: float = 0.0

    @property
    def _id_prefix(self) -> str:
        return f"{self.model_id}-{self.seed}-"

    def time_of(self, index: int) -> float:
        """Nominal event time of event ``index`` (before jitter and lateness)."""
        return self.start + index / self.events_per_second

    def prediction_id(self, index: int) -> str:
        """The prediction_id of event ``index``."""
        return f"{self._id_prefix}{index}"

    def generate(self, start: int, stop: int, scenarios: Sequence[Scenario] = ()) -> Batch:
        """Events ``start`` .. ``stop - 1`` under ``scenarios`` as one columnar batch."""
        return self._generate(_Stream.EVENTS, start, stop, scenarios)

    def batches(self, n_events: int, batch_size: int, scenarios: Sequence[Scenario] = ()) -> Iterator[GeneratedBatch]:
        """Yield the first ``n_events`` events as ``(values, keys, batch)`` of up to ``batch_size``.

        Batches of a few thousand events serialize fastest (about 110-170k events/s on one core);
        a single batch of 200k events runs at about half that speed.
        """
        for start in range(0, n_events, batch_size):
            batch = self.generate(start, min(start + batch_size, n_events), scenarios)
            yield GeneratedBatch(self.serialize(batch), self.keys(batch), batch)

    def keys(self, batch: Batch) -> list[bytes]:
        """Kafka keys (prediction_id as UTF-8) of the batch's events."""
        prefix = self._id_prefix
        return [f"{prefix}{i}".encode() for i in batch.index.tolist()]

    def serialize(self, batch: Batch) -> list[bytes]:
        """The batch's inference events as JSON bytes, malformed where ``batch.malformed`` says."""
        columns = [np.round(batch.numeric[:, j], f.decimals or 0) for j, f in enumerate(NUMERIC_FEATURES)]
        feature_lists = [
            [int(v) if v == v else None for v in column.tolist()] if feature.integer else column.tolist()
            for feature, column in zip(NUMERIC_FEATURES, columns, strict=True)
        ] + [batch.categorical[:, j].tolist() for j in range(len(CATEGORICAL_FEATURES))]
        prefix, model_id, model_version = self._id_prefix, self.model_id, self.model_version
        dumps = orjson.dumps
        values = []
        for i, timestamp, feature_row, score, predicted, latency, region, error, malformed in zip(
            batch.index.tolist(),
            np.round(batch.timestamp, 3).tolist(),
            zip(*feature_lists),
            np.round(batch.score, 4).tolist(),
            batch.predicted_class.tolist(),
            np.round(batch.latency_ms, 2).tolist(),
            batch.region.tolist(),
            batch.error.tolist(),
            batch.malformed.tolist(),
            strict=True,
        ):
            event = {
                "schema_version": SCHEMA_VERSION,
                "prediction_id": f"{prefix}{i}",
                "model_id": model_id,
                "model_version": model_version,
                "timestamp": timestamp,
                "features": dict(zip(FEATURE_NAMES, feature_row)),
                "prediction": None if error else {"score": score, "class": predicted},
                "latency_ms": latency,
                "status": "error" if error else "ok",
                "segment": {"region": region},
            }
            if error:
                event["error"] = "feature store timeout"
            values.append(dumps(event) if malformed < 0 else _malform(MALFORMED_KINDS[malformed], event))
        return values

    def labels(self, batch: Batch, coverage: float = 1.0, mean_delay_seconds: float = 300.0) -> LabelEvents:
        """Label events for a random ``coverage`` fraction of the batch's predictions.

        A label's time is its event's time plus an exponential delay with mean
        ``mean_delay_seconds``; labels come sorted by that time, so they are shuffled relative to
        the predictions. Labels are made for every event, including errors and malformed ones.

        >>> workload = Workload(seed=3)
        >>> events = workload.labels(workload.generate(0, 100), coverage=0.5)
        >>> 30 < len(events.values) < 70 and bool((np.diff(events.timestamps) >= 0).all())
        True
        """
        rng = _rng(self.seed, _Stream.LABELS, batch.start, len(batch))
        chosen = np.flatnonzero(rng.random(len(batch)) < coverage)
        label_time = np.round(batch.timestamp[chosen] + rng.exponential(mean_delay_seconds, len(chosen)), 3)
        order = np.argsort(label_time, kind="stable")
        chosen, label_time = chosen[order], label_time[order]
        prefix, model_id, dumps = self._id_prefix, self.model_id, orjson.dumps
        keys, values = [], []
        for i, label, timestamp in zip(batch.index[chosen].tolist(), batch.label[chosen].tolist(), label_time.tolist(), strict=True):
            prediction_id = f"{prefix}{i}"
            keys.append(prediction_id.encode())
            values.append(dumps({"schema_version": SCHEMA_VERSION, "prediction_id": prediction_id, "label": label, "timestamp": timestamp, "model_id": model_id}))
        return LabelEvents(values, keys, label_time)

    def reference(self, n: int) -> dict[str, np.ndarray]:
        """A training/reference set of ``n`` rows from the clean distributions (its own random stream).

        Columns: every feature (float64 with NaN, or object str), ``prediction`` (score),
        ``class``, ``label``, ``latency_ms`` and ``region``. No ids or times: rows are not events.

        >>> sorted(Workload(seed=2).reference(10))[:3]
        ['cat_0', 'cat_1', 'cat_2']
        """
        batch = self._generate(_Stream.REFERENCE, 0, n, ())
        columns = _feature_columns(batch)
        columns.update(prediction=batch.score, **{"class": batch.predicted_class}, label=batch.label, latency_ms=batch.latency_ms, region=batch.region)
        return columns

    def reference_profile(self, n: int) -> ReferenceProfile:
        """The reference profile of ``reference(n)``: features, score and class (for the demo and tests)."""
        columns = self.reference(n)
        features = list(FEATURE_NAMES)
        builder = ReferenceBuilder()
        builder.add([
            {"features": dict(zip(features, values[:-2])), "prediction": {"score": values[-2], "class": values[-1]}}
            for values in zip(*[columns[name].tolist() for name in features], columns["prediction"].tolist(), columns["class"].tolist())
        ])  # fmt: skip
        return builder.build(self.model_id, self.model_version, source=f"workload seed {self.seed}", created_at=0.0)

    def columns(self, batch: Batch) -> dict[str, np.ndarray]:
        """The batch as named columns in the layout ``stream/files.py`` reads from CSV.

        ``prediction_id``, ``model_id``, ``model_version``, ``timestamp``, ``prediction`` (score,
        NaN for errors), ``latency_ms``, ``status``, then the features. Segments and labels have no
        place in that layout; use JSONL to keep them.
        """
        n = len(batch)
        columns = {
            "prediction_id": np.array([self.prediction_id(i) for i in batch.index.tolist()], dtype=object),
            "model_id": np.full(n, self.model_id, dtype=object),
            "model_version": np.full(n, self.model_version, dtype=object),
            "timestamp": np.round(batch.timestamp, 3),
            "prediction": np.where(batch.error, np.nan, batch.score),
            "latency_ms": batch.latency_ms,
            "status": np.where(batch.error, "error", "ok").astype(object),
        }
        columns.update(_feature_columns(batch))
        return columns

    def _generate(self, stream: _Stream, start: int, stop: int, scenarios: Sequence[Scenario]) -> Batch:
        if not 0 <= start < stop:
            raise ValueError(f"need 0 <= start < stop, got {start}, {stop}")
        first, last = start // CHUNK_SIZE, (stop - 1) // CHUNK_SIZE
        chunks = [self._chunk(stream, chunk, scenarios) for chunk in range(first, last + 1)]
        joined = chunks[0] if len(chunks) == 1 else Batch.concat(chunks)
        offset = first * CHUNK_SIZE
        return joined[start - offset : stop - offset]

    def _chunk(self, stream: _Stream, chunk: int, scenarios: Sequence[Scenario]) -> Batch:
        rng = _rng(self.seed, stream, chunk)
        n = CHUNK_SIZE
        index = np.arange(chunk * n, (chunk + 1) * n, dtype=np.int64)
        timestamp = self.start + index / self.events_per_second
        if self.jitter_seconds:
            timestamp += rng.uniform(-self.jitter_seconds, self.jitter_seconds, n)
        if self.late_fraction:
            late = rng.random(n) < self.late_fraction
            timestamp -= late * rng.uniform(0.0, self.max_lateness_seconds, n)
        numeric = np.column_stack([feature.sample(rng, n) for feature in NUMERIC_FEATURES])
        categorical = np.column_stack([feature.sample(rng, n) for feature in CATEGORICAL_FEATURES])
        batch = Batch(
            start=int(index[0]),
            index=index,
            timestamp=timestamp,
            numeric=numeric,
            categorical=categorical,
            region=np.array(REGIONS, dtype=object)[rng.choice(len(REGIONS), n, p=REGION_PROBABILITIES)],
            label_draw=rng.random(n),
            latency_ms=rng.lognormal(LATENCY_LOG_MEDIAN_MS, LATENCY_LOG_SD, n),
            model_logit=np.empty(n),
            true_logit=np.empty(n),
            score=np.empty(n),
            predicted_class=np.empty(n, dtype=np.int8),
            label=np.empty(n, dtype=np.int8),
            error=np.zeros(n, dtype=bool),
            malformed=np.full(n, -1, dtype=np.int8),
        )
        scenario_rngs = [_rng(self.seed, _Stream.SCENARIOS, chunk, position) for position in range(len(scenarios))]
        staged = sorted(zip(scenarios, scenario_rngs), key=lambda pair: pair[0].stage)
        self._run_stage(Stage.FEATURES, staged, batch)
        batch.model_logit[:] = _logit(numeric, categorical, MODEL_WEIGHTS)
        batch.true_logit[:] = batch.model_logit
        self._run_stage(Stage.LOGITS, staged, batch)
        batch.score[:] = _sigmoid(batch.model_logit)
        batch.predicted_class[:] = batch.score >= 0.5
        batch.label[:] = batch.label_draw < _sigmoid(batch.true_logit)
        self._run_stage(Stage.OUTPUTS, staged, batch)
        return batch

    @staticmethod
    def _run_stage(stage: Stage, staged: list[tuple[Scenario, np.random.Generator]], batch: Batch) -> None:
        for scenario, rng in staged:
            if scenario.stage == stage:
                scenario.apply(batch, rng)


def _feature_columns(batch: Batch) -> dict[str, np.ndarray]:
    columns = {name: batch.numeric[:, j].copy() for j, name in enumerate(NUMERIC_NAMES)}
    columns.update({name: batch.categorical[:, j].copy() for j, name in enumerate(CATEGORICAL_NAMES)})
    return columns


def _malform(kind: str, event: dict) -> bytes:
    if kind == "truncated_json":
        valid = orjson.dumps(event)
        return valid[: len(valid) // 2]
    if kind == "nan_literal":
        del event["latency_ms"]
        return orjson.dumps(event)[:-1] + b',"latency_ms":NaN}'
    if kind == "non_utf8":
        return orjson.dumps(event).replace(b'"model_id":"', b'"model_id":"\xff\xfe', 1)
    if kind == "wrong_types":
        event.update(timestamp="yesterday", features=list(event["features"].values()), latency_ms="fast")
        return orjson.dumps(event)
    del event["prediction_id"], event["features"]
    return orjson.dumps(event)


# ---------------------------------------------------------------------------------------------
# Files


def write_jsonl(path: Path, values: Iterable[bytes]) -> int:
    """Write one value per line (bytes as they are, malformed ones included); return the count.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_jsonl(Path(folder) / "events.jsonl", [b'{"a":1}', b'{"a":2}'])
    2
    """
    count = 0
    with open(path, "wb") as out:
        for value in values:
            out.write(value)
            out.write(b"\n")
            count += 1
    return count


def write_csv(path: Path, columns: Mapping[str, np.ndarray]) -> int:
    """Write equal-length columns as CSV with a header; None and NaN become empty cells. Return the row count.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_csv(Path(folder) / "reference.csv", {"x": np.array([1.5, np.nan]), "c": np.array(["a", None], dtype=object)})
    2
    """
    names = list(columns)
    cells = [[None if isinstance(v, float) and v != v else v for v in np.asarray(columns[name]).tolist()] for name in names]
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(names)
        rows = list(zip(*cells, strict=True))
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    return len(rows)
