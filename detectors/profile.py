"""All sketches of one model (version, segment) over one window, and the reference they are tested against.

A ``WindowProfile`` is what an ingest worker accumulates per open base window and what the
evaluate stage merges into evaluation windows. A ``ReferenceProfile`` is a ``WindowProfile`` built
once from training data plus metadata; its bin edges and categories fix the ``ProfileLayout`` that
every window profile of the model reuses, so binned statistics compare like with like exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from detectors._serde import pack, unpack
from detectors.categorical import CategoricalSketch
from detectors.columns import Columns, _numeric_column, _object_column, _prediction_columns
from detectors.latency import LatencySketch
from detectors.numeric import NumericSketch

PROFILE_FORMAT_VERSION = 2
"""Version of the reference profile file layout; bumped on incompatible changes (2: reject and
high-confidence counts)."""

NUMERIC_SHARE = 0.95
"""A feature is inferred numeric when at least this share of its non-null values are numbers."""

UNKNOWN_FEATURE_NAMES_CAP = 64
"""Most distinct unknown feature names a profile keeps; the count of events carrying any is exact."""


@dataclasses.dataclass(frozen=True)
class NumericLayout:
    """Bins and data-quality settings of one numeric feature's sketches."""

    edges: tuple[float, ...]
    valid_range: tuple[float, float] = (-math.inf, math.inf)
    sentinels: tuple[float, ...] = ()
    k: int = 200

    def new_sketch(self) -> NumericSketch:
        return NumericSketch(self.edges, k=self.k, valid_range=self.valid_range, sentinels=self.sentinels)

    @classmethod
    def of(cls, sketch: NumericSketch) -> NumericLayout:
        return cls(tuple(sketch.edges.tolist()), sketch.valid_range, tuple(sketch.sentinels.tolist()), sketch.k)


@dataclasses.dataclass(frozen=True)
class ProfileLayout:
    """Which features a model has and how their sketches bin them; makes empty window profiles.

    ``score`` / ``classes`` are ``None`` when the reference had no prediction scores / classes;
    window profiles then do not track them either. ``latency_limit_ms`` is the latency above which
    a window profile counts an event as slow, ``confident_above`` the score above which it counts a
    prediction as high-confidence (``None``: not counted).
    """

    numeric: Mapping[str, NumericLayout]
    categorical: Mapping[str, tuple[str, ...]]
    score: NumericLayout | None = None
    classes: tuple[str, ...] | None = None
    latency_limit_ms: float | None = None
    confident_above: float | None = None

    def new_profile(self) -> WindowProfile:
        return WindowProfile(
            numeric={name: spec.new_sketch() for name, spec in self.numeric.items()},
            categorical={name: CategoricalSketch(categories) for name, categories in self.categorical.items()},
            score=None if self.score is None else self.score.new_sketch(),
            predicted_class=None if self.classes is None else CategoricalSketch(self.classes),
            latency_limit_ms=self.latency_limit_ms,
            confident_above=self.confident_above,
        )

    def with_ranges(self, valid_ranges: Mapping[str, tuple[float, float]]) -> ProfileLayout:
        """The layout with monitor-config value ranges applied to the numeric window sketches.

        Ranges only count values (out-of-range rate), they do not change the distribution, so
        they can differ from the reference's; sentinels cannot (see ``ReferenceBuilder``).
        """
        numeric = {
            name: dataclasses.replace(spec, valid_range=tuple(valid_ranges.get(name, spec.valid_range)))
            for name, spec in self.numeric.items()
        }
        return dataclasses.replace(self, numeric=numeric)


class WindowProfile:
    """Sketches of every feature and output of one model over one window.

    Parameters
    ----------
    numeric, categorical
        Sketch per feature; the feature set is fixed (see ``ProfileLayout.new_profile``).
    score, predicted_class
        Prediction score and predicted class sketches, or ``None`` when not tracked.

    Besides the sketches it counts events, ``status == "error"`` events, per numeric feature the
    events that sent a string (type errors), per feature the events lacking it, events with
    features the layout does not know (with up to ``UNKNOWN_FEATURE_NAMES_CAP`` of their names),
    events slower than ``latency_limit_ms``, scores above ``confident_above``, and the model's
    input values the decoder rejected in the window (``reject_count``, added by
    ``EventTimeWindows.add``; not part of ``event_count``). Counts are exact and independent of how
    windows are split and merged; the quantile sketches (KLL, REQ) are randomized and are not.

    Examples
    --------
    >>> import numpy as np
    >>> layout = ProfileLayout({"age": NumericLayout((0.0, 50.0, 100.0))}, {"city": ("Oslo", "Rome")})
    >>> events = [{"timestamp": 1.0, "model_version": "1", "features": {"age": 30, "city": "Oslo"},
    ...            "latency_ms": 4.0},
    ...           {"timestamp": 2.0, "model_version": "1", "features": {"age": "?", "city": "Pisa"},
    ...            "status": "error"}]
    >>> profile = layout.new_profile()
    >>> profile.update(Columns.from_events(events, ["age"], ["city"]))
    >>> profile.event_count, profile.error_count, profile.type_errors, profile.numeric["age"].histogram.tolist()
    (2, 1, {'age': 1}, [0, 1, 0, 0])
    >>> restored = WindowProfile.from_bytes(profile.to_bytes())
    >>> restored.merge(profile)
    >>> restored.event_count, restored.categorical["city"].unseen_count
    (4, 2)
    """

    def __init__(
        self,
        numeric: Mapping[str, NumericSketch],
        categorical: Mapping[str, CategoricalSketch],
        score: NumericSketch | None = None,
        predicted_class: CategoricalSketch | None = None,
        latency: LatencySketch | None = None,
        latency_limit_ms: float | None = None,
        confident_above: float | None = None,
    ) -> None:
        self.numeric = dict(numeric)
        self.categorical = dict(categorical)
        self.score = score
        self.predicted_class = predicted_class
        self.latency = latency if latency is not None else LatencySketch()
        self.latency_limit_ms = latency_limit_ms
        self.slow_count = 0
        self.confident_above = confident_above
        self.confident_count = 0
        self.reject_count = 0
        self.event_count = 0
        self.error_count = 0
        self.type_errors = dict.fromkeys(self.numeric, 0)
        self.absent = dict.fromkeys([*self.numeric, *self.categorical], 0)
        self.unknown_feature_events = 0
        self.unknown_features: dict[str, int] = {}

    def update(self, columns: Columns) -> None:
        """Add a batch of events (their columns must cover this profile's features)."""
        for name, sketch in self.numeric.items():
            sketch.update(columns.numeric[name])
            self.type_errors[name] += int(np.count_nonzero(columns.type_error[name]))
        for name, sketch in self.categorical.items():
            sketch.update(columns.categorical[name])
        for name in self.absent:
            self.absent[name] += int(np.count_nonzero(columns.absent[name]))
        if self.score is not None:
            self.score.update(columns.score)
            if self.confident_above is not None:
                scores = columns.score
                self.confident_count += int(np.count_nonzero(np.isfinite(scores) & (scores > self.confident_above)))
        if self.predicted_class is not None:
            self.predicted_class.update(columns.predicted_class)
        latency = columns.latency_ms[~np.isnan(columns.latency_ms)]
        if latency.size:
            self.latency.update(latency)
            if self.latency_limit_ms is not None:
                self.slow_count += int(np.count_nonzero(latency > self.latency_limit_ms))
        self.event_count += len(columns)
        self.error_count += int(np.count_nonzero(columns.error))
        unknown = columns.unknown_features[columns.unknown_features != None]  # noqa: E711
        self.unknown_feature_events += int(unknown.size)
        for names in unknown.tolist():
            self._count_unknown(dict.fromkeys(names, 1))

    def _count_unknown(self, counts: Mapping[str, int]) -> None:
        for name, count in counts.items():
            if name in self.unknown_features or len(self.unknown_features) < UNKNOWN_FEATURE_NAMES_CAP:
                self.unknown_features[name] = self.unknown_features.get(name, 0) + count

    def merge(self, other: WindowProfile) -> None:
        """Add ``other``'s observations (same layout)."""
        if self.numeric.keys() != other.numeric.keys() or self.categorical.keys() != other.categorical.keys():
            raise ValueError("cannot merge WindowProfiles with different features")
        if (self.score is None) != (other.score is None) or (self.predicted_class is None) != (
            other.predicted_class is None
        ):
            raise ValueError("cannot merge WindowProfiles that track different outputs")
        if (self.latency_limit_ms, self.confident_above) != (other.latency_limit_ms, other.confident_above):
            raise ValueError("cannot merge WindowProfiles with different latency limits or confidence thresholds")
        for name, sketch in self.numeric.items():
            sketch.merge(other.numeric[name])
            self.type_errors[name] += other.type_errors[name]
        for name, sketch in self.categorical.items():
            sketch.merge(other.categorical[name])
        for name in self.absent:
            self.absent[name] += other.absent[name]
        if self.score is not None:
            self.score.merge(other.score)
        if self.predicted_class is not None:
            self.predicted_class.merge(other.predicted_class)
        self.latency.merge(other.latency)
        self.slow_count += other.slow_count
        self.confident_count += other.confident_count
        self.reject_count += other.reject_count
        self.event_count += other.event_count
        self.error_count += other.error_count
        self.unknown_feature_events += other.unknown_feature_events
        self._count_unknown(other.unknown_features)

    @property
    def layout(self) -> ProfileLayout:
        return ProfileLayout(
            numeric={name: NumericLayout.of(sketch) for name, sketch in self.numeric.items()},
            categorical={name: tuple(sketch.categories) for name, sketch in self.categorical.items()},
            score=None if self.score is None else NumericLayout.of(self.score),
            classes=None if self.predicted_class is None else tuple(self.predicted_class.categories),
            latency_limit_ms=self.latency_limit_ms,
            confident_above=self.confident_above,
        )

    def to_bytes(self) -> bytes:
        header = {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "has_score": self.score is not None,
            "has_class": self.predicted_class is not None,
            "event_count": self.event_count,
            "error_count": self.error_count,
            "type_errors": self.type_errors,
            "absent": self.absent,
            "unknown_feature_events": self.unknown_feature_events,
            "unknown_features": self.unknown_features,
            "latency_limit_ms": self.latency_limit_ms,
            "slow_count": self.slow_count,
            "confident_above": self.confident_above,
            "confident_count": self.confident_count,
            "reject_count": self.reject_count,
        }
        blobs = [sketch.to_bytes() for sketch in (*self.numeric.values(), *self.categorical.values())]
        blobs += [sketch.to_bytes() for sketch in (self.score, self.predicted_class) if sketch is not None]
        blobs.append(self.latency.to_bytes())
        return pack("WindowProfile", header, blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowProfile:
        header, blobs = unpack("WindowProfile", data)
        sketches = iter(blobs)
        numeric = {name: NumericSketch.from_bytes(next(sketches)) for name in header["numeric"]}
        categorical = {name: CategoricalSketch.from_bytes(next(sketches)) for name in header["categorical"]}
        score = NumericSketch.from_bytes(next(sketches)) if header["has_score"] else None
        predicted_class = CategoricalSketch.from_bytes(next(sketches)) if header["has_class"] else None
        profile = cls(
            numeric, categorical, score, predicted_class, LatencySketch.from_bytes(next(sketches)),
            header["latency_limit_ms"], header["confident_above"],
        )  # fmt: skip
        for name in (
            "event_count", "error_count", "type_errors", "absent", "unknown_feature_events", "unknown_features",
            "slow_count", "confident_count", "reject_count",
        ):  # fmt: skip
            setattr(profile, name, header[name])
        return profile

    @property
    def nbytes(self) -> int:
        """Approximate memory of all sketches and counters."""
        sketches = [*self.numeric.values(), *self.categorical.values(), self.latency]
        sketches += [sketch for sketch in (self.score, self.predicted_class) if sketch is not None]
        counters = 8 * (7 + len(self.type_errors) + len(self.absent) + len(self.unknown_features))
        return sum(sketch.nbytes for sketch in sketches) + counters


@dataclasses.dataclass
class ReferenceProfile:
    """A model's training-data profile: the baseline of every drift and data-quality test.

    Build it with ``ReferenceBuilder``; store it with ``to_bytes`` (a versioned file). Its
    ``profile.layout`` fixes the bins and categories of every window profile of the model.
    """

    model_id: str
    model_version: str
    profile: WindowProfile
    source: str
    created_at: float
    row_count: int
    n_bins: int = 10
    """Bins requested per numeric feature; tied quantiles (discrete features) give fewer."""
    format_version: int = PROFILE_FORMAT_VERSION

    @property
    def layout(self) -> ProfileLayout:
        return self.profile.layout

    def to_bytes(self) -> bytes:
        header = {
            "format_version": self.format_version,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "source": self.source,
            "created_at": self.created_at,
            "row_count": self.row_count,
            "n_bins": self.n_bins,
        }
        return pack("ReferenceProfile", header, [self.profile.to_bytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        header, (profile,) = unpack("ReferenceProfile", data)
        if header["format_version"] != PROFILE_FORMAT_VERSION:
            raise ValueError(
                f"reference profile format {header['format_version']} is not supported "
                f"(this driftline reads format {PROFILE_FORMAT_VERSION}); rebuild it with `driftline profile build`"
            )
        return cls(profile=WindowProfile.from_bytes(profile), **header)


class ReferenceBuilder:
    """Builds a ``ReferenceProfile`` from training rows fed in chunks.

    Rows are event-shaped (``{"features": {...}, "prediction": ..., "latency_ms": ...}``, as
    ``stream.files.read_records`` makes of CSV) or flat feature mappings. Feature types are
    inferred over all rows unless given: numeric when at least ``NUMERIC_SHARE`` (95%) of the
    non-null values are numbers (bools count as numbers, 0/1), else categorical; a numeric
    feature's strings then count as type errors, a categorical feature's numbers as categories.
    ``sentinels`` are per numeric feature the values that mean "missing" (e.g. -999): they are
    kept out of the reference distribution and its bin edges, and every window of the model uses
    the same ones, so they are fixed here rather than in the monitor config.
    Numeric bin edges are the exact ``n_bins``-quantiles of all rows (``NumericSketch.from_reference``),
    so the builder keeps numeric values in memory as float64 (8 bytes per row and feature) and
    categorical values as per-chunk distinct values with counts.

    Examples
    --------
    >>> builder = ReferenceBuilder(n_bins=4)
    >>> builder.add([{"age": 20 + i % 40, "city": ["Oslo", "Rome"][i % 2]} for i in range(100)])
    >>> reference = builder.build("churn", "7", source="train.csv", created_at=0.0)
    >>> sorted(reference.profile.numeric), sorted(reference.profile.categorical), reference.row_count
    (['age'], ['city'], 100)
    >>> reference.profile.numeric["age"].edges.tolist()
    [20.0, 28.0, 36.0, 47.0, 59.0]
    """

    def __init__(
        self,
        *,
        numeric: Iterable[str] = (),
        categorical: Iterable[str] = (),
        sentinels: Mapping[str, Sequence[float]] = {},
        n_bins: int = 10,
        max_categories: int = 256,
    ) -> None:
        self._declared_numeric = set(numeric)
        self._declared_categorical = set(categorical)
        overlap = self._declared_numeric & self._declared_categorical
        if overlap:
            raise ValueError(f"features declared both numeric and categorical: {sorted(overlap)}")
        self._sentinels = {name: tuple(float(value) for value in values) for name, values in sentinels.items()}
        self._n_bins = n_bins
        self._max_categories = max_categories
        self._names: dict[str, None] = {}  # feature names in first-seen order
        self._numbers: dict[str, list[np.ndarray]] = {}
        self._strings: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._chunk_rows: list[int] = []
        self._scores: list[np.ndarray] = []
        self._classes: list[np.ndarray] = []
        self._latencies: list[np.ndarray] = []
        self._errors = 0

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add a chunk of rows (as ``add_columns`` with one column per feature and output).

        A chunk with event-shaped rows has outputs: flat rows among them count as events without
        a prediction, latency or error.
        """
        event_shaped = [type(row.get("features")) is dict for row in rows]
        features = [row["features"] if shaped else row for row, shaped in zip(rows, event_shaped)]
        names: dict[str, None] = dict.fromkeys(self._names)
        for keys in {tuple(row) for row in features}:
            names.update(dict.fromkeys(keys))
        columns = {name: _object_column([row.get(name) for row in features]) for name in names}
        if not any(event_shaped):
            self.add_columns(columns)
            return
        outputs = [row if shaped else {} for row, shaped in zip(rows, event_shaped)]
        score, predicted_class = _prediction_columns([row.get("prediction") for row in outputs])
        self.add_columns(
            columns,
            score=score,
            predicted_class=predicted_class,
            latency_ms=np.array([row.get("latency_ms") for row in outputs], dtype=np.float64),
            error=np.array([row.get("status") == "error" for row in outputs], dtype=bool),
        )

    def add_columns(
        self,
        features: Mapping[str, np.ndarray],
        *,
        score: np.ndarray | None = None,
        predicted_class: np.ndarray | None = None,
        latency_ms: np.ndarray | None = None,
        error: np.ndarray | None = None,
    ) -> None:
        """Add a chunk of rows as columns of equal length: per feature a float array (NaN where
        missing) or an object array of the values as sent (numbers, strings, bools, ``None``); and
        for event rows the outputs (``Columns.score``, ``predicted_class``, ``latency_ms``,
        ``error``; all or none). Features seen in earlier chunks but absent here count as missing.

        >>> builder = ReferenceBuilder(n_bins=2, numeric=["x"])
        >>> builder.add_columns({"x": np.array([1.0, 2.0, np.nan, 4.0])}, score=np.array([0.1, 0.9, 0.5, 0.7]),
        ...                     predicted_class=np.full(4, None), latency_ms=np.full(4, 3.0), error=np.zeros(4, dtype=bool))
        >>> builder.add_columns({"x": np.array(["a", 5], dtype=object)})
        >>> reference = builder.build("m", "1", source="train", created_at=0.0)
        >>> reference.row_count, reference.profile.type_errors, reference.profile.score.count
        (6, {'x': 1}, 4)
        """
        sizes = {array.shape[0] for array in features.values()}
        if len(sizes) > 1:
            raise ValueError(f"feature columns differ in length: {sorted(sizes)}")
        rows = sizes.pop() if sizes else 0
        chunk = len(self._chunk_rows)
        self._names.update(dict.fromkeys(features))
        for name in self._names:
            column = features.get(name)
            if column is None:  # padded with nulls by build (see _padded)
                numbers, strings = np.empty(0), np.empty(0, dtype=str)
            elif column.dtype.kind == "f":
                numbers, strings = column.astype(np.float64, copy=False), np.empty(0, dtype=str)
            else:
                values = column.tolist()
                numbers, is_string, _ = _numeric_column(values)
                strings = np.array([value for value, string in zip(values, is_string) if string], dtype=str)
            self._numbers.setdefault(name, [np.empty(0)] * chunk).append(numbers)
            self._strings.setdefault(name, [(np.empty(0, dtype=str), np.empty(0, dtype=np.int64))] * chunk).append(
                np.unique(strings, return_counts=True)
            )
        self._chunk_rows.append(rows)
        if score is not None:
            self._scores.append(np.asarray(score, dtype=np.float64))
            self._classes.append(np.asarray(predicted_class, dtype=object))
            self._latencies.append(latency_ms[~np.isnan(latency_ms)])
            self._errors += int(np.count_nonzero(error))

    def feature_types(self) -> dict[str, str]:
        """``numeric`` or ``categorical`` per feature seen so far (declared types win)."""
        types = {}
        for name in self._names:
            if name in self._declared_numeric or name in self._declared_categorical:
                types[name] = "numeric" if name in self._declared_numeric else "categorical"
                continue
            strings = sum(int(counts.sum()) for _, counts in self._strings[name])
            numbers = sum(int(np.count_nonzero(~np.isnan(chunk))) for chunk in self._numbers[name])
            share = numbers / (numbers + strings) if numbers + strings else 1.0
            types[name] = "numeric" if share >= NUMERIC_SHARE else "categorical"
        return types

    def build(
        self, model_id: str, model_version: str, *, source: str, created_at: float | None = None
    ) -> ReferenceProfile:
        missing = sorted((self._declared_numeric | self._declared_categorical | self._sentinels.keys()) - self._names.keys())
        if missing:
            raise ValueError(f"declared features not found in the data: {', '.join(missing)}")
        rows = sum(self._chunk_rows)
        numeric, categorical, type_errors = {}, {}, {}
        types = self.feature_types()
        categorical_with_sentinels = sorted(name for name in self._sentinels if types[name] == "categorical")
        if categorical_with_sentinels:
            raise ValueError(f"sentinels are for numeric features; {', '.join(categorical_with_sentinels)} is categorical")
        for name, kind in types.items():
            numbers = self._padded(self._numbers[name], np.nan)
            if np.isnan(numbers).all() and not any(uniques.size for uniques, _ in self._strings[name]):
                raise ValueError(f"feature {name!r} has no values in the training data; drop it from the data")
            if kind == "numeric":
                numeric[name] = NumericSketch.from_reference(
                    numbers, n_bins=self._n_bins, sentinels=self._sentinels.get(name, ())
                )
                type_errors[name] = sum(int(counts.sum()) for _, counts in self._strings[name])
            else:
                categorical[name] = self._categorical_sketch(name, numbers)
        score = np.concatenate(self._scores) if self._scores else np.empty(0)
        classes = np.concatenate(self._classes) if self._classes else np.empty(0, dtype=object)
        has_class = bool((classes != None).any())  # noqa: E711
        profile = WindowProfile(
            numeric,
            categorical,
            score=NumericSketch.from_reference(score, n_bins=self._n_bins) if np.isfinite(score).any() else None,
            predicted_class=CategoricalSketch.from_reference(classes) if has_class else None,
        )
        if self._latencies:
            profile.latency.update(np.concatenate(self._latencies))
        profile.event_count = rows
        profile.error_count = self._errors
        profile.type_errors = type_errors
        profile.absent = dict.fromkeys([*numeric, *categorical], 0)
        return ReferenceProfile(
            model_id=model_id,
            model_version=model_version,
            profile=profile,
            source=source,
            created_at=time.time() if created_at is None else created_at,
            row_count=rows,
            n_bins=self._n_bins,
        )

    def _padded(self, chunks: list[np.ndarray], fill: float) -> np.ndarray:
        # A feature first seen in a later chunk has empty placeholders for earlier ones: those rows lack it.
        return np.concatenate(
            [chunk if chunk.size == rows else np.full(rows, fill) for chunk, rows in zip(chunks, self._chunk_rows)]
        )

    def _categorical_sketch(self, name: str, numbers: np.ndarray) -> CategoricalSketch:
        # Numbers in a categorical feature are categories, spelled as str() spells the sent JSON value.
        present = numbers[~np.isnan(numbers)]
        spelled = np.array([repr(int(x)) if x.is_integer() else repr(x) for x in present.tolist()], dtype=str)
        values = np.concatenate([spelled, *[np.repeat(uniques, counts) for uniques, counts in self._strings[name]]])
        nulls = sum(self._chunk_rows) - values.size
        column = np.empty(values.size + nulls, dtype=object)
        column[: values.size] = values
        return CategoricalSketch.from_reference(column, max_categories=self._max_categories)
