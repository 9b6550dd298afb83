"""Live model performance from joined outcomes: metrics, label coverage and lag, concept drift.

The evaluate worker and ``driftline replay`` hand a model's outcomes (``schemas/outcome.schema.json``:
a prediction joined with its first label) to its :class:`PerformanceMonitor`, and every closed base
window of predictions (its prediction count) to :meth:`PerformanceMonitor.close_window`. The monitor
keeps, per model version and per segment (routed like the prediction windows):

- **Performance windows** of ``window_labels`` outcomes each, in arrival order (labels arrive in any
  order, so a count-based window has a known sample size where a time window might hold a handful):
  a :class:`ClassificationSketch` (accuracy, precision, recall, F1, ROC-AUC, log loss, confusion
  matrix, calibration error) or :class:`RegressionSketch` (MAE, RMSE, MAPE, R², mean error), plus a
  :class:`LabelLagSketch`. Sketches are exact counts and sums, so they merge exactly.
- **The reference performance**: the merge of the key's first ``reference_windows`` windows (the
  model is assumed healthy when it starts being labelled; a reference profile built with labels is
  not supported yet). Every later window is tested against it: a one-sided two-proportion z-test
  for accuracy and each class's recall, Welch's t-test on squared errors for RMSE. The effect size
  is the relative drop (``performance_drop``), the p-value brings the number of labels on both
  sides into the decision, and the alert policy corrects it for the tests of the window.
- **Concept drift**: river's ADWIN / DDM / EDDM (``detectors.online``) on the error stream of each
  model version — the overall 0/1 error (regression: absolute error, ADWIN only) and, for
  classification, the error on each true class (one minus its recall). The class-conditional
  streams matter: when the decision boundary moves one way, errors move from one class to the
  other while the overall error rate can stay flat (SEA concepts 1 → 2 in the public benchmarks).
- **Label coverage**: outcomes whose prediction falls in a base window over the predictions of that
  window, judged once ``label_delay_seconds`` of prediction event time have passed its end.
- **Label lag**: ``label_time - prediction_time``; with ``label_lag_seconds`` set, a window alerts
  when more than 5% of its labels are later than that (the p95 above the limit, decided on an exact
  count as the latency check does).
- **Join evictions**: the label join reports the entries it evicted over its memory cap as
  ``join_evictions`` records among the outcomes (``update`` takes both). Each closed base window of
  the model judges the evictions reported with a time before its end: any eviction is a violation
  (kind ``label_lag``, statistic ``join_evictions``, threshold 1: evicted entries mean lost joins or
  miscounted labels, and the fix is in the pipeline). A cap hit is a fact, not a noisy estimate, so
  the first window with evictions fires and the first without resolves. Evictions are counted per model, not per version:
  the window judged is the first of the model's version keys to close past the last one judged, and
  the alert names that version and keeps it until it resolves.

Results become alerts through four :class:`AlertPolicy` instances, one per cadence, because a
policy ignores an evaluation that is not after the last one of its :class:`WindowKey`: performance
and label-lag results (the model's policy) at each performance window, concept drift (fires on the
first detection: a detector's change point is already a sequential test, persistence would only
delay it) at each performance window of the version, coverage (the model's policy) at each judged
base window, join evictions (fire and resolve at once) at each closed base window. Alert ids
include the kind and statistic, so they cannot collide; incidents are bundled per policy.

Performance windows follow arrival order, which differs between streaming (outcomes interleaved
from several ingest partitions) and replay (label-time order): the alerts of the two agree in
substance, not window for window. Everything else is a function of the inputs and round-trips
through ``to_bytes``.

References
----------
Gama, Medas, Castillo, Rodrigues (2004). Learning with drift detection. SBIA.
Bifet, Gavaldà (2007). Learning from time-changing data with adaptive windowing. SDM.
Baena-García et al. (2006). Early drift detection method. ECML PKDD Workshop.
Fawcett (2006). An introduction to ROC analysis. Pattern Recognition Letters 27(8).
Naeini, Cooper, Hauskrecht (2015). Obtaining well calibrated probabilities using Bayesian binning. AAAI.
Welch (1947). The generalization of Student's problem when several different population variances
are involved. Biometrika 34(1/2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from detectors._serde import pack, unpack
from detectors.latency import LatencySketch
from detectors.online import OnlineDetector
from detectors.policy import AlertPolicy, PolicyConfig, TestResult, WindowKey
from detectors.windows import WindowConfig, decode_key, encode_key

TASKS = ("classification", "regression")
OTHER_CLASS = "__other__"
"""Class name pooling the classes beyond ``max_classes``."""
OTHER_SEGMENT_VALUE = "__other__"
"""Segment value pooling a tag's values beyond its ``max_values`` (as ``stream.routing`` does)."""
LAG_TAIL_SHARE = 0.05
"""The p95 label lag exceeds a limit exactly when more than this share of labels is later than it."""
CALIBRATION_BINS = 10
AUC_BINS = 200
MIN_CLASS_SUPPORT = 30
"""Labels of a class needed in both the window and the reference before its recall is tested."""
JOIN_EVICTIONS = "join_evictions"
"""``kind`` of the outcomes-topic record by which the label join reports evictions (stream/join.py)."""
DETECTOR_PARAMS: Mapping[str, Mapping[str, Any]] = {"ddm": {"warm_start": 1000}, "eddm": {"warm_start": 1000}}
"""River's DDM and EDDM start testing after 30 errors by default; on a 20%-noise stream their
early estimates are so rough that they signal within the first few hundred labels (measured on the
López-Lobo SEA streams), so they warm up on 1,000."""


_BLOCK_KEYS = ("window_labels", "reference_windows", "label_delay_seconds", "min_coverage", "positive_class", "negative_class",
               "decision_threshold")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class PerformanceConfig:
    """How a model's performance is monitored (the ``performance`` block of its monitor config).

    Parameters
    ----------
    task
        ``classification`` or ``regression``: how predictions and labels are read.
    window_labels
        Outcomes per performance window.
    reference_windows
        First windows of a key merged into its reference performance.
    detectors
        Online detectors on the error streams: ``adwin``, ``ddm``, ``eddm`` (the last two are for
        0/1 errors and are skipped for regression).
    max_drop
        Relative drop of accuracy or a class's recall (regression: relative increase of RMSE) that
        matters (monitor config ``thresholds.performance_drop``).
    label_delay_seconds
        How long after a prediction window its labels are expected; its coverage is judged then.
    min_coverage
        Least share of a window's predictions that should have a label by then.
    label_lag_seconds
        Limit on the p95 label lag; ``None``: no label-lag alert (the lag is still reported).
    positive_class, negative_class
        For binary classification: the class a score is the probability of, and the class
        predicted when a score below ``decision_threshold`` comes without a class.
    decision_threshold
        Score at or above which a score-only prediction is the positive class.
    max_classes
        Classes tracked in confusion matrices; more are pooled as :data:`OTHER_CLASS`.
    class_streams
        Classes (first seen first) that get their own concept-drift error stream.
    segments
        (tag, max distinct values) per segment tag, as in the monitor config.
    base_seconds
        Length of the prediction base windows that coverage is counted in.
    """

    task: str = "classification"
    window_labels: int = 500
    reference_windows: int = 5
    detectors: tuple[str, ...] = ("adwin",)
    max_drop: float = 0.05
    label_delay_seconds: float = 3600.0
    min_coverage: float = 0.9
    label_lag_seconds: float | None = None
    positive_class: str = "1"
    negative_class: str = "0"
    decision_threshold: float = 0.5
    max_classes: int = 50
    class_streams: int = 10
    segments: tuple[tuple[str, int], ...] = ()
    base_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"performance task must be one of {TASKS}, got {self.task!r}")
        unknown = sorted(set(self.detectors) - {"adwin", "ddm", "eddm"})
        if unknown:
            raise ValueError(f"unknown performance detectors {unknown}; use adwin, ddm or eddm")
        if self.window_labels < 1 or self.reference_windows < 1 or self.max_classes < 2:
            raise ValueError("window_labels and reference_windows must be at least 1, max_classes at least 2")
        if not 0 < self.min_coverage <= 1 or not self.max_drop > 0:
            raise ValueError("min_coverage must lie in (0, 1] and max_drop be positive")
        object.__setattr__(self, "positive_class", class_name(self.positive_class))
        object.__setattr__(self, "negative_class", class_name(self.negative_class))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> PerformanceConfig | None:
        """The settings of a schema-valid monitor config mapping; ``None`` when it sets no ``task``."""
        if mapping.get("task") is None:
            return None
        block, thresholds = mapping.get("performance", {}), mapping.get("thresholds", {})
        defaults = cls()
        return cls(
            task=mapping["task"],
            **{name: block[name] for name in _BLOCK_KEYS if name in block},
            detectors=tuple(block.get("detectors", defaults.detectors)),
            max_drop=thresholds.get("performance_drop", defaults.max_drop),
            label_lag_seconds=thresholds.get("label_lag_seconds"),
            segments=tuple((segment["tag"], segment.get("max_values", 20)) for segment in mapping.get("segments", ())),
            base_seconds=mapping.get("windows", {}).get("base_seconds", WindowConfig().base_seconds),
        )


def class_name(value: Any) -> str:
    """The text a class is compared by: bools and integral numbers as integers, so True == 1 == "1".

    >>> [class_name(v) for v in (True, 0, 1.0, "fraud", 2.5)]
    ['1', '0', '1', 'fraud', '2.5']
    """
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def is_join_evictions(record: Any) -> bool:
    """Whether an outcomes-topic record is a readable ``join_evictions`` record (see stream/join.py).

    >>> is_join_evictions({"kind": "join_evictions", "model_id": "m", "count": 3, "time": 1.5e9})
    True
    >>> is_join_evictions({"kind": "join_evictions", "model_id": "m", "count": "3", "time": 1.5e9})
    False
    """
    return (
        type(record) is dict
        and record.get("kind") == JOIN_EVICTIONS
        and isinstance(record.get("model_id"), str)
        and type(record.get("count")) is int
        and _is_number(record.get("time"))
    )


def probability(score: np.ndarray) -> np.ndarray:
    """A score as the positive class's probability: itself within [0, 1], else taken as a logit."""
    score = np.asarray(score, dtype=np.float64)
    inside = (score >= 0) & (score <= 1)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(inside, score, 1.0 / (1.0 + np.exp(-score)))


class ClassificationSketch:
    """Confusion matrix plus probability statistics of classified outcomes; merges exactly.

    ``update`` takes class names (see :func:`class_name`) and, where the prediction had a score or
    the positive class's probability, that probability (NaN otherwise). ROC-AUC is computed from
    score histograms on ``AUC_BINS`` equal bins of [0, 1] (pairs within one bin count one half),
    calibration error as the expected calibration error on ``CALIBRATION_BINS`` bins.

    Examples
    --------
    >>> import numpy as np
    >>> sketch = ClassificationSketch("1")
    >>> sketch.update(np.array(["1", "1", "0", "0"]), np.array(["1", "0", "0", "0"]), np.array([0.9, 0.4, 0.2, 0.1]))
    >>> metrics = sketch.query()
    >>> metrics["accuracy"], metrics["recall"], metrics["precision"], metrics["roc_auc"]
    (0.75, 0.5, 1.0, 1.0)

    References
    ----------
    Fawcett (2006). An introduction to ROC analysis. Pattern Recognition Letters 27(8).
    Naeini, Cooper, Hauskrecht (2015). Obtaining well calibrated probabilities using Bayesian binning. AAAI.
    """

    def __init__(self, positive_class: str = "1", max_classes: int = 50) -> None:
        self.positive_class = positive_class
        self.max_classes = max_classes
        self.classes: list[str] = []
        self._index: dict[str, int] = {}
        self.confusion = np.zeros((0, 0), dtype=np.int64)
        """Counts by (true class, predicted class), in the order of ``classes``."""
        self.auc_positive = np.zeros(AUC_BINS, dtype=np.int64)
        self.auc_negative = np.zeros(AUC_BINS, dtype=np.int64)
        self.calibration = np.zeros((3, CALIBRATION_BINS))  # count, sum of probabilities, positives
        self.log_loss_sum = 0.0

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    def _indices(self, names: np.ndarray) -> np.ndarray:
        uniques, inverse = np.unique(names.astype(str), return_inverse=True)
        for name in uniques.tolist():
            if name not in self._index and len(self.classes) < self.max_classes - 1:
                self._add(name)
        if any(name not in self._index for name in uniques.tolist()) and OTHER_CLASS not in self._index:
            self._add(OTHER_CLASS)
        other = self._index.get(OTHER_CLASS, -1)
        return np.array([self._index.get(name, other) for name in uniques.tolist()], dtype=np.int64)[inverse]

    def _add(self, name: str) -> None:
        self._index[name] = len(self.classes)
        self.classes.append(name)
        grown = np.zeros((len(self.classes), len(self.classes)), dtype=np.int64)
        grown[: self.confusion.shape[0], : self.confusion.shape[1]] = self.confusion
        self.confusion = grown

    def update(self, labels: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray) -> None:
        """Add outcomes: true and predicted class names, and the positive class's probability (or NaN)."""
        if len(labels) == 0:
            return
        truth, guess = self._indices(np.asarray(labels)), self._indices(np.asarray(predicted))
        k = len(self.classes)
        self.confusion += np.bincount(truth * k + guess, minlength=k * k).reshape(k, k)
        p = np.asarray(probabilities, dtype=np.float64)
        scored = np.isfinite(p)
        if not scored.any():
            return
        p = p[scored]
        positive = (np.asarray(labels).astype(str)[scored] == self.positive_class).astype(np.float64)
        auc_bin = np.minimum((p * AUC_BINS).astype(np.int64), AUC_BINS - 1)
        self.auc_positive += np.bincount(auc_bin[positive == 1], minlength=AUC_BINS)
        self.auc_negative += np.bincount(auc_bin[positive == 0], minlength=AUC_BINS)
        calibration_bin = np.minimum((p * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
        for row, weights in enumerate((None, p, positive)):
            self.calibration[row] += np.bincount(calibration_bin, weights=weights, minlength=CALIBRATION_BINS)
        clipped = np.clip(p, 1e-15, 1 - 1e-15)
        self.log_loss_sum += float(-(positive * np.log(clipped) + (1 - positive) * np.log1p(-clipped)).sum())

    def merge(self, other: ClassificationSketch) -> None:
        for name in other.classes:
            if name not in self._index:
                self._add(name)
        where = np.array([self._index[name] for name in other.classes], dtype=np.int64)
        self.confusion[np.ix_(where, where)] += other.confusion
        self.auc_positive += other.auc_positive
        self.auc_negative += other.auc_negative
        self.calibration += other.calibration
        self.log_loss_sum += other.log_loss_sum

    def class_counts(self) -> dict[str, tuple[int, int]]:
        """Per true class: (correctly predicted, total)."""
        return {name: (int(self.confusion[i, i]), int(self.confusion[i].sum())) for i, name in enumerate(self.classes)}

    def query(self) -> dict[str, Any]:
        """Metrics; binary precision/recall/F1 are the positive class's, otherwise macro averages."""
        n = self.count
        diagonal = np.diag(self.confusion).astype(np.float64)
        support, predicted = self.confusion.sum(axis=1).astype(np.float64), self.confusion.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall, precision = diagonal / support, diagonal / predicted
            f1 = 2 * precision * recall / (precision + recall)
        if self.positive_class in self._index:
            i = self._index[self.positive_class]
            summary = {"precision": precision[i], "recall": recall[i], "f1": f1[i]}
        else:
            present = support > 0
            summary = {name: _nanmean(values[present]) for name, values in (("precision", precision), ("recall", recall), ("f1", f1))}
        scored = float(self.calibration[0].sum())
        metrics: dict[str, Any] = {
            "count": n,
            "accuracy": float(diagonal.sum() / n) if n else math.nan,
            **{name: float(value) for name, value in summary.items()},
            "roc_auc": self._auc(),
            "log_loss": self.log_loss_sum / scored if scored else math.nan,
            "calibration_error": self._calibration_error(scored),
            "class_recall": {name: float(recall[i]) for i, name in enumerate(self.classes) if support[i]},
            "confusion": {
                truth: {guess: int(self.confusion[i, j]) for j, guess in enumerate(self.classes) if self.confusion[i, j]}
                for i, truth in enumerate(self.classes)
                if support[i]
            },
        }
        return metrics

    def _auc(self) -> float:
        positives, negatives = self.auc_positive.sum(), self.auc_negative.sum()
        if not positives or not negatives:
            return math.nan
        below = np.cumsum(self.auc_negative) - self.auc_negative
        return float((self.auc_positive * (below + 0.5 * self.auc_negative)).sum() / (positives * negatives))

    def _calibration_error(self, scored: float) -> float:
        if not scored:
            return math.nan
        counts, probabilities, positives = self.calibration
        return float(np.abs(probabilities - positives).sum() / scored)

    def to_bytes(self) -> bytes:
        header = {"positive_class": self.positive_class, "max_classes": self.max_classes, "classes": self.classes,
                  "log_loss_sum": self.log_loss_sum}  # fmt: skip
        arrays = (self.confusion, self.auc_positive, self.auc_negative, self.calibration)
        return pack("ClassificationSketch", header, [np.ascontiguousarray(a).tobytes() for a in arrays])

    @classmethod
    def from_bytes(cls, data: bytes) -> ClassificationSketch:
        header, (confusion, auc_positive, auc_negative, calibration) = unpack("ClassificationSketch", data)
        sketch = cls(header["positive_class"], header["max_classes"])
        for name in header["classes"]:
            sketch._add(name)
        k = len(sketch.classes)
        sketch.confusion = np.frombuffer(confusion, dtype=np.int64).reshape(k, k).copy()
        sketch.auc_positive = np.frombuffer(auc_positive, dtype=np.int64).copy()
        sketch.auc_negative = np.frombuffer(auc_negative, dtype=np.int64).copy()
        sketch.calibration = np.frombuffer(calibration, dtype=np.float64).reshape(3, CALIBRATION_BINS).copy()
        sketch.log_loss_sum = header["log_loss_sum"]
        return sketch


_REGRESSION_SUMS = ("count", "error", "squared", "fourth", "absolute", "label", "label_squared", "percentage", "percentage_count")


class RegressionSketch:
    """Sums of errors (prediction − label) and labels of regression outcomes; merges exactly.

    MAPE leaves out labels equal to zero. R² is ``1 - SSE / SST`` with SST from the label sums.

    Examples
    --------
    >>> import numpy as np
    >>> sketch = RegressionSketch()
    >>> sketch.update(np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 3.0]))
    >>> metrics = sketch.query()
    >>> round(metrics["mae"], 4), round(metrics["rmse"], 4), metrics["mean_error"], round(metrics["r2"], 4)
    (0.6667, 0.8165, 0.0, 0.25)
    """

    def __init__(self) -> None:
        self.sums = np.zeros(len(_REGRESSION_SUMS))

    @property
    def count(self) -> int:
        return int(self.sums[0])

    def _sum(self, name: str) -> float:
        return float(self.sums[_REGRESSION_SUMS.index(name)])

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        prediction, label = np.asarray(predictions, dtype=np.float64), np.asarray(labels, dtype=np.float64)
        error = prediction - label
        nonzero = label != 0
        self.sums += [
            error.size, error.sum(), (error**2).sum(), (error**4).sum(), np.abs(error).sum(), label.sum(),
            (label**2).sum(), np.abs(error[nonzero] / label[nonzero]).sum(), np.count_nonzero(nonzero),
        ]  # fmt: skip

    def merge(self, other: RegressionSketch) -> None:
        self.sums += other.sums

    def squared_error_moments(self) -> tuple[float, float, int]:
        """Mean and sample variance of the squared errors, and their count."""
        n = self.count
        if n < 2:
            return math.nan, math.nan, n
        mean = self._sum("squared") / n
        return mean, max(self._sum("fourth") / n - mean**2, 0.0) * n / (n - 1), n

    def query(self) -> dict[str, Any]:
        n = self.count
        if not n:
            return {"count": 0, **dict.fromkeys(("mae", "rmse", "mape", "r2", "mean_error"), math.nan)}
        total = self._sum("label_squared") - self._sum("label") ** 2 / n
        percentage_count = self._sum("percentage_count")
        return {
            "count": n,
            "mae": self._sum("absolute") / n,
            "rmse": math.sqrt(self._sum("squared") / n),
            "mape": self._sum("percentage") / percentage_count if percentage_count else math.nan,
            "r2": 1 - self._sum("squared") / total if total > 0 else math.nan,
            "mean_error": self._sum("error") / n,
        }

    def to_bytes(self) -> bytes:
        return pack("RegressionSketch", {}, [self.sums.tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> RegressionSketch:
        sketch = cls()
        sketch.sums = np.frombuffer(unpack("RegressionSketch", data)[1][0], dtype=np.float64).copy()
        return sketch


class LabelLagSketch:
    """Distribution of label lags (seconds from prediction to label) and the count over a limit.

    Labels stamped before their prediction have a negative lag: they are counted in ``early`` and
    enter the quantiles as zero. Quantiles come from a relative-error sketch (``LatencySketch``);
    the count over ``limit`` is exact.

    >>> import numpy as np
    >>> lag = LabelLagSketch(limit=60.0)
    >>> lag.update(np.array([5.0, 30.0, 90.0, -1.0]))
    >>> lag.count, lag.over_limit, lag.early, lag.query()["max"]
    (4, 1, 1, 90.0)
    """

    def __init__(self, limit: float | None = None) -> None:
        self.limit = limit
        self.quantiles = LatencySketch()
        self.over_limit = 0
        self.early = 0

    @property
    def count(self) -> int:
        return self.quantiles.count

    def update(self, lags: np.ndarray) -> None:
        lags = np.asarray(lags, dtype=np.float64)
        self.early += int(np.count_nonzero(lags < 0))
        if self.limit is not None:
            self.over_limit += int(np.count_nonzero(lags > self.limit))
        self.quantiles.update(np.maximum(lags, 0.0))

    def merge(self, other: LabelLagSketch) -> None:
        self.quantiles.merge(other.quantiles)
        self.over_limit += other.over_limit
        self.early += other.early

    def query(self) -> dict[str, Any]:
        p50, p95, p99 = self.quantiles.quantiles([0.5, 0.95, 0.99]).tolist()
        return {"count": self.count, "p50": p50, "p95": p95, "p99": p99, "max": self.quantiles.max, "early": self.early,
                "over_limit": self.over_limit}  # fmt: skip

    def to_bytes(self) -> bytes:
        return pack("LabelLagSketch", {"limit": self.limit, "over_limit": self.over_limit, "early": self.early}, [self.quantiles.to_bytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> LabelLagSketch:
        header, (quantiles,) = unpack("LabelLagSketch", data)
        sketch = cls(header["limit"])
        sketch.quantiles = LatencySketch.from_bytes(quantiles)
        sketch.over_limit, sketch.early = header["over_limit"], header["early"]
        return sketch


class OutcomeWindow:
    """The performance sketch and label-lag sketch of a span of one key's outcomes."""

    def __init__(self, config: PerformanceConfig) -> None:
        self.metrics: ClassificationSketch | RegressionSketch = (
            ClassificationSketch(config.positive_class, config.max_classes) if config.task == "classification" else RegressionSketch()
        )
        self.lag = LabelLagSketch(config.label_lag_seconds)
        self.start = math.inf
        self.end = -math.inf

    @property
    def count(self) -> int:
        return self.metrics.count

    def update(self, outcomes: _Outcomes, indices: np.ndarray) -> None:
        if isinstance(self.metrics, ClassificationSketch):
            self.metrics.update(outcomes.labels[indices], outcomes.predicted[indices], outcomes.probabilities[indices])
        else:
            self.metrics.update(outcomes.values[indices], outcomes.numeric_labels[indices])
        self.lag.update(outcomes.label_time[indices] - outcomes.prediction_time[indices])
        self.start = min(self.start, float(outcomes.time[indices].min()))
        self.end = max(self.end, float(outcomes.time[indices].max()))

    def merge(self, other: OutcomeWindow) -> None:
        self.metrics.merge(other.metrics)  # type: ignore[arg-type]
        self.lag.merge(other.lag)
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)

    def query(self) -> dict[str, Any]:
        return {**self.metrics.query(), "label_lag": self.lag.query()}

    def to_bytes(self) -> bytes:
        return pack("OutcomeWindow", {}, [self.metrics.to_bytes(), self.lag.to_bytes(), np.array([self.start, self.end]).tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes, config: PerformanceConfig) -> OutcomeWindow:
        metrics, lag, bounds = unpack("OutcomeWindow", data)[1]
        window = cls(config)
        window.metrics = ClassificationSketch.from_bytes(metrics) if config.task == "classification" else RegressionSketch.from_bytes(metrics)
        window.lag = LabelLagSketch.from_bytes(lag)
        window.start, window.end = np.frombuffer(bounds, dtype=np.float64).tolist()
        return window


@dataclasses.dataclass
class _Outcomes:
    """A batch of outcomes of one model as columns."""

    versions: np.ndarray
    segments: list[Mapping[str, str]]
    labels: np.ndarray  # class names (classification)
    predicted: np.ndarray  # predicted class names (classification)
    probabilities: np.ndarray  # the positive class's probability, NaN when unknown
    values: np.ndarray  # predicted values (regression)
    numeric_labels: np.ndarray  # true values (regression)
    prediction_time: np.ndarray
    label_time: np.ndarray

    @property
    def time(self) -> np.ndarray:
        """When each outcome became known: the later of its prediction and its label."""
        return np.maximum(self.prediction_time, self.label_time)

    @property
    def errors(self) -> np.ndarray:
        """0/1 errors (classification) or absolute errors (regression)."""
        if self.values.size:
            return np.abs(self.values - self.numeric_labels)
        return (self.labels != self.predicted).astype(np.float64)


@dataclasses.dataclass
class PerformanceEvaluation:
    """One closed performance window of a key."""

    key: WindowKey
    start: float
    end: float
    label_count: int
    metrics: dict[str, Any]
    """Metrics of the window (:meth:`ClassificationSketch.query` or :meth:`RegressionSketch.query`, plus label_lag)."""
    reference: dict[str, Any] | None
    """Metrics of the reference performance, once it is complete."""
    results: list[TestResult]
    alerts: list[dict[str, Any]]
    detections: list[str] = dataclasses.field(default_factory=list)
    """``detector:stream`` of each online detector that signalled concept drift in the window."""


@dataclasses.dataclass
class CoverageEvaluation:
    """Label coverage of one prediction base window of a key, judged ``label_delay_seconds`` after it."""

    key: WindowKey
    start: float
    end: float
    predicted: int
    labelled: int
    alerts: list[dict[str, Any]]

    @property
    def coverage(self) -> float:
        return min(self.labelled / self.predicted, 1.0) if self.predicted else math.nan


@dataclasses.dataclass
class EvictionEvaluation:
    """Label-join evictions judged at one closed base window of a model, under the version key of that
    window (of the firing eviction alert, while there is one)."""

    key: WindowKey
    start: float
    end: float
    evicted: int
    alerts: list[dict[str, Any]]


class _KeyState:
    """Windows, reference and error-stream detectors of one key."""

    def __init__(self, config: PerformanceConfig) -> None:
        self.window = OutcomeWindow(config)
        self.reference = OutcomeWindow(config)
        self.reference_windows = 0
        self.last_end = -math.inf
        self.detectors: dict[tuple[str, str], OnlineDetector] = {}  # (kind, stream) on version keys only
        self.detections: list[str] = []  # since the last window closed


class PerformanceMonitor:
    """Per-model performance, coverage, label-lag and concept-drift monitoring from outcomes.

    Parameters
    ----------
    model_id
        The model whose outcomes are fed; others are ignored by the caller.
    config
        Performance settings.
    policy
        The model's alert policy settings (thresholds, persistence, hysteresis, severities).

    Examples
    --------
    >>> config = PerformanceConfig(window_labels=100, reference_windows=2, detectors=())
    >>> monitor = PerformanceMonitor("m", config)
    >>> def outcomes(first, wrong_every):
    ...     return [{"model_id": "m", "model_version": "1", "segment": {}, "prediction": {"class": 1},
    ...              "label": 0 if i % wrong_every == 0 else 1, "prediction_time": float(i), "label_time": i + 5.0}
    ...             for i in range(first, first + 100)]
    >>> [len(e.alerts) for start in (0, 100, 200) for e in monitor.update(outcomes(start, 20))]
    [0, 0, 0]
    >>> alerts = [a for start in (300, 400, 500) for e in monitor.update(outcomes(start, 2)) for a in e.alerts]
    >>> [(a["kind"], a["statistic"]["name"], a["feature"]) for a in alerts]  # class 1's recall is intact
    [('performance', 'accuracy_drop', None)]
    """

    def __init__(self, model_id: str, config: PerformanceConfig, policy: PolicyConfig | None = None) -> None:
        self.model_id = model_id
        self.config = config
        self.policy_config = policy or PolicyConfig()
        self.policy = AlertPolicy(self.policy_config)
        """Performance and label-lag alerts, at each performance window."""
        self.drift_policy = AlertPolicy(dataclasses.replace(self.policy_config, persistence_m=1, persistence_n=1))
        """Concept-drift alerts: the first detection fires."""
        self.coverage_policy = AlertPolicy(self.policy_config)
        """Coverage alerts, at each judged prediction window."""
        self.eviction_policy = AlertPolicy(dataclasses.replace(self.policy_config, persistence_m=1, persistence_n=1, resolve_after=1))
        """Join-eviction alerts, at each closed base window: the first with evictions fires, the first without resolves."""
        self._keys: dict[WindowKey, _KeyState] = {}
        self._segment_values: dict[str, dict[str, None]] = {tag: {} for tag, _ in config.segments}
        self._labelled: dict[tuple[WindowKey, float], int] = {}
        self._predicted: dict[tuple[WindowKey, float], int] = {}
        self._judged_through: dict[WindowKey, float] = {}
        self._class_streams: dict[str, None] = {}
        self._evictions: list[tuple[float, int]] = []  # (time, count) reported and not judged yet
        self._evictions_judged = -math.inf  # end of the latest base window that judged evictions
        self.late_outcomes = 0
        """Outcomes whose prediction window's coverage had already been judged."""
        self.rejected = 0
        """Outcomes whose prediction or label could not be read for the task (e.g. a string label in regression)."""

    # -- outcomes ---------------------------------------------------------------------------------

    def update(self, records: Sequence[Mapping[str, Any]]) -> list[PerformanceEvaluation]:
        """Add outcomes in arrival order, and ``join_evictions`` records (judged when a base window
        closes, ``close_window``); return the performance windows the outcomes closed."""
        outcomes = []
        for record in records:
            if record.get("kind") == JOIN_EVICTIONS:
                self._evictions.append((float(record["time"]), int(record["count"])))
            else:
                outcomes.append(record)
        batch = self._columns(outcomes)
        if batch is None:
            return []
        evaluations = []
        for key, indices in self._routes(batch).items():
            self._count_labelled(key, batch.prediction_time[indices])
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _KeyState(self.config)
            while indices.size:
                take = indices[: self.config.window_labels - state.window.count]
                indices = indices[take.size :]
                state.window.update(batch, take)
                if not key.segment:
                    self._watch_errors(key, state, batch, take)
                if state.window.count >= self.config.window_labels:
                    evaluations.append(self._close(key, state))
        return evaluations

    def _columns(self, outcomes: Sequence[Mapping[str, Any]]) -> _Outcomes | None:
        readable = []
        for outcome in outcomes:
            if self.config.task == "regression":
                value = _regression_value(outcome["prediction"])
                ok = value is not None and _is_number(outcome["label"])
            else:
                value, ok = None, True
            if ok:
                readable.append((outcome, value))
        self.rejected += len(outcomes) - len(readable)
        if not readable:
            return None
        rows = [outcome for outcome, _ in readable]
        n = len(rows)
        empty = np.empty(0)
        if self.config.task == "classification":
            predicted, scores = zip(*(self._classified(o["prediction"]) for o in rows))
            labels = np.array([class_name(o["label"]) for o in rows], dtype=object)
            positive_probabilities = probability(np.array(scores, dtype=np.float64))
            predicted_names = np.array(predicted, dtype=object)
            # A score without a class decides the class by the threshold (NaN compares False: no score, no decision).
            undecided = predicted_names == None  # noqa: E711
            positive = positive_probabilities >= self.config.decision_threshold
            predicted_names[undecided] = np.where(positive[undecided], self.config.positive_class, self.config.negative_class)
            values = numeric_labels = empty
        else:
            labels = predicted_names = np.empty(0, dtype=object)
            positive_probabilities = np.full(n, math.nan)
            values = np.array([value for _, value in readable], dtype=np.float64)
            numeric_labels = np.array([float(o["label"]) for o in rows], dtype=np.float64)
        return _Outcomes(
            np.array([o["model_version"] for o in rows], dtype=object),
            [o.get("segment") or {} for o in rows],
            labels,
            predicted_names,
            positive_probabilities,
            values,
            numeric_labels,
            np.array([o["prediction_time"] for o in rows], dtype=np.float64),
            np.array([o["label_time"] for o in rows], dtype=np.float64),
        )

    def _classified(self, prediction: Any) -> tuple[str | None, float]:
        """(predicted class or None, positive-class score or NaN) of one prediction."""
        config = self.config
        if isinstance(prediction, Mapping):
            score = prediction.get("score")
            probabilities = prediction.get("probabilities") or {}
            named = {class_name(name): p for name, p in probabilities.items()}
            if score is None:
                score = named.get(config.positive_class)
            if "class" in prediction:
                guess = class_name(prediction["class"])
            elif named:
                guess = max(named, key=named.__getitem__)
            else:
                guess = None
        elif isinstance(prediction, (int, float)) and not isinstance(prediction, bool):
            score, guess = prediction, None
        else:
            score, guess = None, class_name(prediction)
        return guess, math.nan if score is None else float(score)

    def _routes(self, batch: _Outcomes) -> dict[WindowKey, np.ndarray]:
        """Indices of the outcomes of each key: the model version and each of its segments."""
        routes: dict[WindowKey, list[int]] = {}
        for index, (version, segment) in enumerate(zip(batch.versions.tolist(), batch.segments)):
            routes.setdefault(WindowKey(self.model_id, version), []).append(index)
            for tag, cap in self.config.segments:
                if tag not in segment:
                    continue
                value, known = str(segment[tag]), self._segment_values[tag]
                if value not in known and len(known) < cap:
                    known[value] = None
                pooled = value if value in known else OTHER_SEGMENT_VALUE
                routes.setdefault(WindowKey(self.model_id, version, {tag: pooled}), []).append(index)
        return {key: np.array(indices, dtype=np.int64) for key, indices in routes.items()}

    def _watch_errors(self, key: WindowKey, state: _KeyState, batch: _Outcomes, indices: np.ndarray) -> None:
        errors = batch.errors[indices]
        streams: list[tuple[str, np.ndarray]] = [("error", errors)]
        if self.config.task == "classification":
            labels = batch.labels[indices]
            for name in dict.fromkeys(labels.tolist()):
                if name not in self._class_streams and len(self._class_streams) < self.config.class_streams:
                    self._class_streams[name] = None
            streams += [(f"class={name}", errors[labels == name]) for name in self._class_streams]
        for kind in self.config.detectors:
            if kind != "adwin" and self.config.task == "regression":
                continue
            for stream, values in streams:
                if not values.size:
                    continue
                detector = state.detectors.get((kind, stream))
                if detector is None:
                    detector = state.detectors[(kind, stream)] = OnlineDetector(kind, **DETECTOR_PARAMS.get(kind, {}))
                if detector.update(values):
                    state.detections.append(f"{kind}:{stream}")

    def _close(self, key: WindowKey, state: _KeyState) -> PerformanceEvaluation:
        window = state.window
        state.window = OutcomeWindow(self.config)
        # Policy time must move forward: a window ends when its latest outcome became known.
        start = state.last_end if state.last_end > -math.inf else window.start
        end = max(window.end, math.nextafter(start, math.inf))
        state.last_end = end
        metrics = window.query()
        reference = None
        results: list[TestResult] = []
        if state.reference_windows < self.config.reference_windows:
            state.reference.merge(window)
            state.reference_windows += 1
        else:
            reference = state.reference.query()
            results = self._performance_tests(window, state.reference)
        results += self._lag_tests(window)
        alerts = self.policy.evaluate(key, start, end, results)
        detections = sorted(set(state.detections))
        state.detections.clear()
        if not key.segment:
            drift = self._drift_results(state, detections, window.count)
            alerts += self.drift_policy.evaluate(key, start, end, drift)
            results += drift
        return PerformanceEvaluation(key, start, end, window.count, metrics, reference, results, alerts, detections)

    def _performance_tests(self, window: OutcomeWindow, reference: OutcomeWindow) -> list[TestResult]:
        description = f"first {self.config.reference_windows} performance windows ({reference.count:,} labels)"
        common = {"threshold": self.config.max_drop, "reference_id": "first-labelled-windows", "reference_description": description}
        if isinstance(window.metrics, RegressionSketch):
            assert isinstance(reference.metrics, RegressionSketch)
            test = _rmse_increase(window.metrics, reference.metrics)
            if test is None:
                return []
            value, p_value = test
            return [TestResult("performance", None, "rmse_increase", value, p_value=p_value, sample_size=window.count,
                               reference_size=reference.count, **common)]  # fmt: skip
        assert isinstance(reference.metrics, ClassificationSketch)
        window_classes, reference_classes = window.metrics.class_counts(), reference.metrics.class_counts()
        tests = [(None, "accuracy_drop", _correct(window_classes), _correct(reference_classes))]
        tests += [
            (f"class={name}", "recall_drop", counts, reference_classes[name])
            for name, counts in window_classes.items()
            if name in reference_classes and min(counts[1], reference_classes[name][1]) >= MIN_CLASS_SUPPORT
        ]
        results = []
        for feature, statistic, (hits, n), (reference_hits, reference_n) in tests:
            test = _proportion_drop(hits, n, reference_hits, reference_n)
            if test is not None:
                results.append(TestResult("performance", feature, statistic, test[0], p_value=test[1], sample_size=n,
                                          reference_size=reference_n, **common))  # fmt: skip
        return results

    def _lag_tests(self, window: OutcomeWindow) -> list[TestResult]:
        if self.config.label_lag_seconds is None or not window.lag.count:
            return []
        return [
            TestResult(
                "label_lag", None, "share_over_lag_limit", window.lag.over_limit / window.lag.count,
                threshold=LAG_TAIL_SHARE, sample_size=window.lag.count,
                reference_description=f"label_lag_seconds {self.config.label_lag_seconds:g} of the monitor config",
            )
        ]  # fmt: skip

    def _drift_results(self, state: _KeyState, detections: list[str], count: int) -> list[TestResult]:
        signalled = set(detections)
        return [
            TestResult(
                "concept_drift", None if stream == "error" else stream, kind, float(f"{kind}:{stream}" in signalled),
                threshold=1.0, sample_size=count,
                reference_id="error-stream", reference_description=f"{kind} change detector on the {stream} error stream",
            )
            for kind, stream in sorted(state.detectors)
        ]  # fmt: skip

    # -- coverage ---------------------------------------------------------------------------------

    def _count_labelled(self, key: WindowKey, prediction_times: np.ndarray) -> None:
        base = self.config.base_seconds
        starts, counts = np.unique(np.floor(prediction_times / base) * base, return_counts=True)
        judged = self._judged_through.get(key, -math.inf)
        for start, count in zip(starts.tolist(), counts.tolist()):
            if start + base <= judged:
                self.late_outcomes += count
            else:
                self._labelled[(key, start)] = self._labelled.get((key, start), 0) + count

    def close_window(self, key: WindowKey, start: float, end: float, predicted: int) -> list[CoverageEvaluation | EvictionEvaluation]:
        """Take a closed prediction base window of ``key`` and its prediction count; return the
        coverage evaluations of the windows now ``label_delay_seconds`` old and, if this is the
        model's first version key to close past the last judged window and evictions were reported
        or an eviction alert changed, its join-eviction evaluation."""
        if predicted:
            self._predicted[(key, start)] = self._predicted.get((key, start), 0) + predicted
        horizon = end - self.config.label_delay_seconds
        due = sorted(s for (k, s) in self._predicted if k == key and s + self.config.base_seconds <= horizon)
        evaluations: list[CoverageEvaluation | EvictionEvaluation] = []
        if not key.segment and end > self._evictions_judged:
            judged = self._judge_evictions(key, start, end)
            if judged.evicted or judged.alerts:
                evaluations.append(judged)
        for window_start in due:
            window_end = window_start + self.config.base_seconds
            count = self._predicted.pop((key, window_start))
            labelled = self._labelled.pop((key, window_start), 0)
            self._judged_through[key] = max(self._judged_through.get(key, -math.inf), window_end)
            coverage = min(labelled / count, 1.0)
            result = TestResult(
                "label_lag", None, "missing_label_rate", 1.0 - coverage, threshold=1.0 - self.config.min_coverage,
                sample_size=count,
                reference_description=f"min_coverage {self.config.min_coverage:g} after label_delay_seconds "
                f"{self.config.label_delay_seconds:g} of the monitor config",
            )  # fmt: skip
            alerts = self.coverage_policy.evaluate(key, window_start, window_end, [result])
            evaluations.append(CoverageEvaluation(key, window_start, window_end, count, labelled, alerts))
        # Labels for windows that never had predictions here (another version's, or before the
        # first window) are dropped with the judged horizon so the counts stay bounded.
        for stale in [(k, s) for (k, s) in self._labelled if k == key and s + self.config.base_seconds <= horizon and (k, s) not in self._predicted]:
            self.late_outcomes += self._labelled.pop(stale)
        return evaluations

    def _judge_evictions(self, key: WindowKey, start: float, end: float) -> EvictionEvaluation:
        """Every eviction reported with a time before ``end`` (a late report included) against the cap."""
        firing = self.eviction_policy.open_alerts
        if firing:  # one alert per model: it resolves under the version it fired with, whichever version's window closes
            key = WindowKey(self.model_id, firing[0]["model_version"])
        evicted = sum(count for time, count in self._evictions if time < end)
        self._evictions = [(time, count) for time, count in self._evictions if time >= end]
        start, self._evictions_judged = max(start, self._evictions_judged), end
        result = TestResult(
            "label_lag", None, JOIN_EVICTIONS, float(evicted), threshold=1.0, sample_size=evicted, reference_id="join-memory-cap",
            reference_description="memory cap of the ingest label join (DRIFTLINE_JOIN_MAX_MB): any eviction",
        )  # fmt: skip
        return EvictionEvaluation(key, start, end, evicted, self.eviction_policy.evaluate(key, start, end, [result]))

    # -- inspection and state ---------------------------------------------------------------------

    @property
    def open_alerts(self) -> list[dict[str, Any]]:
        """The firing event of every performance, concept-drift, coverage and join-eviction alert still firing."""
        return self.policy.open_alerts + self.drift_policy.open_alerts + self.coverage_policy.open_alerts + self.eviction_policy.open_alerts

    def detector_states(self) -> dict[WindowKey, dict[str, dict[str, Any]]]:
        """Inspection summaries of the error-stream detectors: ``{"adwin:class=1": state}`` per version key."""
        return {
            key: {f"{kind}:{stream}": detector.state for (kind, stream), detector in state.detectors.items()}
            for key, state in self._keys.items()
            if state.detectors
        }

    def to_bytes(self) -> bytes:
        keys = list(self._keys)
        header = {
            "keys": [
                [encode_key(key), state.reference_windows, None if state.last_end == -math.inf else state.last_end,
                 [[kind, stream] for kind, stream in state.detectors], state.detections]
                for key, state in self._keys.items()
            ],
            "segment_values": {tag: list(values) for tag, values in self._segment_values.items()},
            "labelled": [[encode_key(k), s, c] for (k, s), c in self._labelled.items()],
            "predicted": [[encode_key(k), s, c] for (k, s), c in self._predicted.items()],
            "judged_through": [[encode_key(k), t] for k, t in self._judged_through.items()],
            "class_streams": list(self._class_streams),
            "late_outcomes": self.late_outcomes,
            "rejected": self.rejected,
            "evictions": self._evictions,
            "evictions_judged": None if self._evictions_judged == -math.inf else self._evictions_judged,
        }  # fmt: skip
        blobs = [self.policy.to_bytes(), self.drift_policy.to_bytes(), self.coverage_policy.to_bytes(), self.eviction_policy.to_bytes()]
        for key in keys:
            state = self._keys[key]
            blobs += [state.window.to_bytes(), state.reference.to_bytes()]
            blobs += [detector.to_bytes() for detector in state.detectors.values()]
        return pack("PerformanceMonitor", header, blobs)

    @classmethod
    def from_bytes(cls, data: bytes, model_id: str, config: PerformanceConfig, policy: PolicyConfig | None = None) -> PerformanceMonitor:
        header, blobs = unpack("PerformanceMonitor", data)
        monitor = cls(model_id, config, policy)
        blob = iter(blobs)
        monitor.policy = AlertPolicy.from_bytes(next(blob), monitor.policy.config)
        monitor.drift_policy = AlertPolicy.from_bytes(next(blob), monitor.drift_policy.config)
        monitor.coverage_policy = AlertPolicy.from_bytes(next(blob), monitor.coverage_policy.config)
        monitor.eviction_policy = AlertPolicy.from_bytes(next(blob), monitor.eviction_policy.config)
        for encoded, reference_windows, last_end, detectors, detections in header["keys"]:
            state = monitor._keys[decode_key(encoded)] = _KeyState(config)
            state.window = OutcomeWindow.from_bytes(next(blob), config)
            state.reference = OutcomeWindow.from_bytes(next(blob), config)
            state.reference_windows = reference_windows
            state.last_end = -math.inf if last_end is None else last_end
            state.detectors = {(kind, stream): OnlineDetector.from_bytes(next(blob)) for kind, stream in detectors}
            state.detections = list(detections)
        for tag, values in header["segment_values"].items():
            if tag in monitor._segment_values:
                monitor._segment_values[tag] = dict.fromkeys(values)
        monitor._labelled = {(decode_key(k), s): c for k, s, c in header["labelled"]}
        monitor._predicted = {(decode_key(k), s): c for k, s, c in header["predicted"]}
        monitor._judged_through = {decode_key(k): t for k, t in header["judged_through"]}
        monitor._class_streams = dict.fromkeys(header["class_streams"])
        monitor.late_outcomes, monitor.rejected = header["late_outcomes"], header["rejected"]
        monitor._evictions = [(time, count) for time, count in header["evictions"]]
        monitor._evictions_judged = -math.inf if header["evictions_judged"] is None else header["evictions_judged"]
        return monitor


def _nanmean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def _correct(classes: Mapping[str, tuple[int, int]]) -> tuple[int, int]:
    return sum(hits for hits, _ in classes.values()), sum(n for _, n in classes.values())


def _proportion_drop(hits: int, n: int, reference_hits: int, reference_n: int) -> tuple[float, float] | None:
    """Relative drop of a success rate from the reference, and the one-sided two-proportion z-test p-value.

    >>> value, p = _proportion_drop(700, 1000, 8000, 10000)
    >>> round(value, 4), p < 1e-12
    (0.125, True)
    """
    if not n or not reference_n or not reference_hits:
        return None
    rate, reference_rate = hits / n, reference_hits / reference_n
    pooled = (hits + reference_hits) / (n + reference_n)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / reference_n))
    drop = reference_rate - rate
    p_value = (0.0 if drop > 0 else 1.0) if spread == 0 else float(stats.norm.sf(drop / spread))
    return drop / reference_rate, min(max(p_value, 0.0), 1.0)


def _rmse_increase(window: RegressionSketch, reference: RegressionSketch) -> tuple[float, float] | None:
    """Relative increase of RMSE over the reference, and the one-sided Welch t-test p-value on squared errors."""
    mean, variance, n = window.squared_error_moments()
    reference_mean, reference_variance, reference_n = reference.squared_error_moments()
    if not (n >= 2 and reference_n >= 2 and reference_mean > 0):
        return None
    value = math.sqrt(mean / reference_mean) - 1
    spread2 = variance / n + reference_variance / reference_n
    if spread2 == 0:
        return value, 0.0 if mean > reference_mean else 1.0
    freedom = spread2**2 / ((variance / n) ** 2 / (n - 1) + (reference_variance / reference_n) ** 2 / (reference_n - 1))
    return value, float(stats.t.sf((mean - reference_mean) / math.sqrt(spread2), freedom))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _regression_value(prediction: Any) -> float | None:
    value = prediction.get("value", prediction.get("score")) if isinstance(prediction, Mapping) else prediction
    return float(value) if _is_number(value) else None

