"""Tests a model's closed windows against its reference profile and turns the results into alerts.

One ``ModelEvaluator`` per monitored model. The evaluate worker (streaming) and ``driftline replay``
both call ``close_window`` with each closed base window in event-time order; the evaluator builds
evaluation windows (``EvaluationSchedule``), runs every test, feeds ``AlertPolicy`` and returns what
it found. Its whole state — schedules, online detectors, policy — round-trips through ``to_bytes``.

Why one drift statistic per feature
-----------------------------------
PSI, JS, Hellinger and chi-square on one histogram, and KS and Wasserstein on one quantile sketch,
measure the same shift: they are almost perfectly correlated. Letting each fire would count one
shifted feature six times, inflate the multiple-testing family with dependent tests and multiply
alert volume. So only the *primary* statistic (default ``js``) is an alert condition; the rest are
computed and reported (``Evaluation.statistics``) for dashboards and triage.

The default primary is the Jensen-Shannon distance on the reference-binned histogram, gated by the
Pearson chi-square p-value of the *same* histogram:

- both are exact with respect to the reference binning (no quantile-sketch error), and the same
  rule serves numeric features, categorical features, prediction scores and predicted classes;
- JS is bounded in [0, 1] and symmetric; PSI diverges as a bin empties (it needs an epsilon) and,
  for a 0.5 standard-deviation mean shift on 10 quantile bins, is about 0.22 — barely above its
  customary 0.2 threshold — whereas JS is about 0.17 against its 0.1 threshold, a margin that
  survives sampling noise in a 3,000-event window;
- the chi-square p-value brings the sample size into the decision (a large JS on 30 events is
  not significant), and it is the p-value of the histogram the effect size was measured on. The KS
  p-value from KLL sketches is not used as the gate: at tens of thousands of events the sketch's
  rank error (~1%) exceeds the KS statistic's sampling noise and would make the p-value tiny under
  no drift at all.

Data-quality checks (null, out-of-range, sentinel, unseen-category, type-error, missing and
unknown-feature rates, error rate, and scores outside ``prediction.bounds``) are judged by effect
size alone: the increase of the window's rate over the reference's rate against a threshold
(``MonitorConfig.quality_thresholds``).

Two rate checks also carry a p-value, which joins the window's multiple-testing family:

- ``confident_rate`` (kind ``prediction_drift``, feature ``score``): the share of predictions whose
  score is above ``prediction.confident_above`` (default 0.9 when the reference's scores are
  probabilities, i.e. all in [0, 1]; else the check is off unless configured). Confidence falling
  (or piling up) is an early sign of drift in the outputs that the score histogram's 10 bins can
  blur. Effect: the absolute change of the share vs the reference's; test: two-proportion z-test.
  The window's share is an exact count, the reference's is read off its quantile sketch
  (``quality.confident_rate``; within ``rank_error``, about 1%, of the exact share).
- ``reject_rate`` (kind ``schema``, model level, unsegmented keys only): the model's input values
  the decoder rejected over all its input values in the window, against the ``reject_rate``
  threshold itself (a reference has no rejects); test: one-sided exact binomial test of
  ``share <= threshold``, so a few rejects in a small window are not significant. Rejects whose
  model id cannot be read are not in it (see ``stream.aggregate``).

Online detectors: per numeric feature an ADWIN detector watches the base-window means standardized
by the reference (mean 0, sd 1 under no drift). Its detections are reported as change points
(``Evaluation.change_points``) to date a shift, not raised as alerts: they are sequential tests
over every base window and have no place in one window's multiple-testing family.

References
----------
Lin (1991). Divergence measures based on the Shannon entropy. IEEE Trans. Inf. Theory 37(1).
Rabanser, Günnemann, Lipton (2019). Failing loudly: an empirical study of methods for detecting
dataset shift. NeurIPS.
Bifet, Gavaldà (2007). Learning from time-changing data with adaptive windowing. SDM.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from detectors import quality, statistics
from detectors._serde import pack, unpack
from detectors.monitor import MonitorConfig, MonitorConfigError
from detectors.numeric import NumericSketch
from detectors.online import OnlineDetector
from detectors.policy import AlertPolicy, TestResult, WindowKey
from detectors.profile import ProfileLayout, ReferenceProfile, WindowProfile
from detectors.windows import EvaluationSchedule, EvaluationWindow, decode_key, encode_key

SCORE, CLASS = "score", "class"
"""Feature names of the prediction outputs in prediction_drift results."""

DEFAULT_CONFIDENT_ABOVE = 0.9
"""Score above which a probability counts as high-confidence when the config does not say."""

LATENCY_TAIL_SHARE = 0.01
"""The p99 exceeds a limit exactly when more than this share of requests is slower than it."""

_BINNED = {
    "js": statistics.jensen_shannon,
    "psi": statistics.psi,
    "hellinger": statistics.hellinger,
}


@dataclasses.dataclass
class Evaluation:
    """What one evaluation window produced."""

    key: WindowKey
    start: float
    end: float
    event_count: int
    results: list[TestResult]
    """The alert conditions tested (input of the policy)."""
    statistics: dict[str, dict[str, float]]
    """Every statistic computed, per feature (``score``/``class`` for the outputs)."""
    alerts: list[dict[str, Any]]
    """Alert events the policy emitted (firing and resolved)."""
    change_points: list[str] = dataclasses.field(default_factory=list)
    """Numeric features whose online detector signalled a change in the base windows since the last evaluation."""


@dataclasses.dataclass(frozen=True)
class _DriftRow:
    """One histogram under drift test: a feature or an output."""

    kind: str
    feature: str
    numeric: bool
    reference_counts: np.ndarray


class ModelEvaluator:
    """Evaluates one model's windows against its reference and runs its alert policy.

    Parameters
    ----------
    config
        The model's monitor config.
    reference
        Its reference profile; the config's feature overrides must agree with it (checked here).

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.profile import ReferenceBuilder
    >>> from detectors.columns import Columns
    >>> rng = np.random.default_rng(0)
    >>> builder = ReferenceBuilder()
    >>> builder.add([{"x": float(v)} for v in rng.normal(size=5000)])
    >>> evaluator = ModelEvaluator(MonitorConfig.from_mapping({"model_id": "m", "reference": "r"}),
    ...                            builder.build("m", "1", source="train", created_at=0.0))
    >>> def window(shift):
    ...     profile = evaluator.new_profile()
    ...     events = [{"timestamp": 0.0, "model_version": "1", "features": {"x": float(v)}}
    ...               for v in rng.normal(shift, size=3000)]
    ...     profile.update(Columns.from_events(events, ["x"], []))
    ...     return profile
    >>> key = WindowKey("m", "1")
    >>> [evaluator.close_window(key, 60.0 * i, 60.0 * (i + 1), window(0.0)).alerts for i in range(3)]
    [[], [], []]
    >>> alerts = [evaluator.close_window(key, 60.0 * i, 60.0 * (i + 1), window(1.0)).alerts for i in range(3, 10)]
    >>> [(a["feature"], a["statistic"]["name"]) for batch in alerts for a in batch]
    [('x', 'js')]
    """

    def __init__(self, config: MonitorConfig, reference: ReferenceProfile) -> None:
        self.config = config
        self.reference = reference
        self._check_overrides()
        ref = reference.profile
        self.latency_limit_ms = self._latency_limit()
        self.confident_above = self._confident_above()
        layout = reference.layout.with_ranges({name: spec.range for name, spec in config.features.items() if spec.range is not None})
        self.layout: ProfileLayout = dataclasses.replace(
            layout,
            score=layout.score if layout.score is None or config.score_bounds is None
            else dataclasses.replace(layout.score, valid_range=config.score_bounds),
            latency_limit_ms=self.latency_limit_ms,
            confident_above=self.confident_above,
        )
        self.policy = AlertPolicy(config.policy)
        self._schedules: dict[WindowKey, EvaluationSchedule] = {}
        self._detectors: dict[tuple[WindowKey, str], OnlineDetector] = {}
        self._pending_change_points: dict[WindowKey, set[str]] = {}
        self._reference_id = config.reference
        self._reference_description = (
            f"reference profile of {reference.model_id} {reference.model_version} "
            f"({reference.row_count:,} rows from {reference.source})"
        )
        monitored = [name for name in (*ref.numeric, *ref.categorical) if config.feature(name).monitor]
        self._rows = [
            _DriftRow("data_drift", name, name in ref.numeric, _counts(ref.numeric.get(name) or ref.categorical[name]))
            for name in monitored
        ]
        if ref.score is not None:
            self._rows.append(_DriftRow("prediction_drift", SCORE, True, _counts(ref.score)))
        if ref.predicted_class is not None:
            self._rows.append(_DriftRow("prediction_drift", CLASS, False, _counts(ref.predicted_class)))
        self._width = max((row.reference_counts.size for row in self._rows), default=1)
        self._reference_matrix = self._matrix([row.reference_counts for row in self._rows])
        self._reference_items = {
            row.feature: self._numeric_sketch(ref, row.feature).weighted_items()
            for row in self._rows
            if row.numeric and self._wants("ks", "wasserstein")
        }

    def _check_overrides(self) -> None:
        ref, source = self.reference.profile, self.config.source
        for name, spec in self.config.features.items():
            if name not in ref.numeric and name not in ref.categorical:
                raise MonitorConfigError(
                    f"{source}: features.{name}: the reference profile has no feature {name!r}; "
                    f"fix the name or rebuild the profile with it (features: {', '.join(sorted([*ref.numeric, *ref.categorical]))})"
                )
            actual = "numeric" if name in ref.numeric else "categorical"
            if spec.type is not None and spec.type != actual:
                raise MonitorConfigError(
                    f"{source}: features.{name}.type: {spec.type} but the reference profile has it {actual}; "
                    f"rebuild the profile with --{spec.type} {name} or remove the type"
                )
            if spec.bins is not None and actual == "numeric" and spec.bins != self.reference.n_bins:
                raise MonitorConfigError(
                    f"{source}: features.{name}.bins: {spec.bins} but the reference profile was built with "
                    f"{self.reference.n_bins} bins; rebuild the profile with --bins {spec.bins} or remove bins"
                )
            if spec.sentinels and actual == "categorical":
                raise MonitorConfigError(
                    f"{source}: features.{name}.sentinels: sentinels are supported for numeric features only; "
                    f"remove them (for {name}, such values stay ordinary categories)"
                )
            if spec.sentinels:
                configured = sorted(float(value) for value in spec.sentinels if not isinstance(value, str))
                built = sorted(ref.numeric[name].sentinels.tolist())
                if len(configured) != len(spec.sentinels) or configured != built:
                    fix = " ".join(f"--sentinel {name}={value:g}" for value in configured) or f"numbers for {name}"
                    raise MonitorConfigError(
                        f"{source}: features.{name}.sentinels: {list(spec.sentinels)} but the reference profile was "
                        f"built with {built}; rebuild the profile with {fix} so the reference leaves them out too"
                    )

    def _latency_limit(self) -> float | None:
        """The configured p99 limit, else ``latency_p99_ratio`` times the reference's p99, else None."""
        if self.config.latency_p99_ms is not None:
            return float(self.config.latency_p99_ms)
        reference = self.reference.profile.latency
        if reference.count and reference.p99 > 0:
            return self.config.quality_threshold("latency_p99_ratio") * reference.p99
        return None

    def _confident_above(self) -> float | None:
        """The configured ``prediction.confident_above``, else 0.9 for probability scores, else None."""
        scores = self.reference.profile.score
        if scores is None:
            return None
        if self.config.confident_above is not None:
            return float(self.config.confident_above)
        return DEFAULT_CONFIDENT_ABOVE if 0.0 <= scores.min and scores.max <= 1.0 else None

    def _wants(self, *names: str) -> bool:
        return any(name in self.config.reported["numeric"] for name in names)

    @staticmethod
    def _numeric_sketch(profile: WindowProfile, feature: str) -> NumericSketch:
        return profile.score if feature == SCORE else profile.numeric[feature]

    def _matrix(self, rows: list[np.ndarray]) -> np.ndarray:
        # Right-padding with zeros is neutral for every binned statistic (statistics module docs).
        matrix = np.zeros((len(rows), self._width), dtype=np.int64)
        for index, counts in enumerate(rows):
            matrix[index, : counts.size] = counts
        return matrix

    def new_profile(self) -> WindowProfile:
        """An empty window profile of this model (reference bins, config ranges and sentinels)."""
        return self.layout.new_profile()

    def close_window(self, key: WindowKey, start: float, end: float, profile: WindowProfile) -> Evaluation | None:
        """Take the next closed base window of ``key``; return the evaluation it completes, if any."""
        self._watch_means(key, profile)
        schedule = self._schedules.get(key)
        if schedule is None:
            schedule = self._schedules[key] = EvaluationSchedule(self.config.windows, self.layout.new_profile)
        window = schedule.push(start, end, profile)
        return None if window is None else self.evaluate(key, window)

    def _watch_means(self, key: WindowKey, profile: WindowProfile) -> None:
        ref = self.reference.profile
        for row in self._rows:
            if not row.numeric or row.kind != "data_drift":
                continue
            sketch, reference = profile.numeric[row.feature], ref.numeric[row.feature]
            if sketch.valid_count == 0 or not reference.std > 0:
                continue
            detector = self._detectors.setdefault((key, row.feature), OnlineDetector("adwin"))
            if detector.update(np.array([(sketch.mean - reference.mean) / reference.std])):
                self._pending_change_points.setdefault(key, set()).add(row.feature)

    def evaluate(self, key: WindowKey, window: EvaluationWindow) -> Evaluation:
        """Run every test on ``window`` and the alert policy on the results."""
        profile = window.profile
        results, table = self._drift(profile, window.previous)
        results += self._quality(profile, table)
        results += self._confidence(profile, table)
        if not key.segment:  # rejects carry no segment: they are counted under the version alone
            results += self._rejects(profile, table)
        alerts = self.policy.evaluate(key, window.start, window.end, results)
        change_points = sorted(self._pending_change_points.pop(key, set()))
        return Evaluation(key, window.start, window.end, profile.event_count, results, table, alerts, change_points)

    def _drift(
        self, profile: WindowProfile, previous: WindowProfile | None
    ) -> tuple[list[TestResult], dict[str, dict[str, float]]]:
        sketches = [self._window_sketch(profile, row) for row in self._rows]
        window = self._matrix([_counts(sketch) for sketch in sketches])
        chi2 = statistics.chi_square(window, self._reference_matrix)
        binned = {name: function(window, self._reference_matrix) for name, function in _BINNED.items()}
        versus_previous = None
        if previous is not None:
            before = self._matrix([_counts(self._window_sketch(previous, row)) for row in self._rows])
            versus_previous = statistics.jensen_shannon(window, before)

        results, table = [], {}
        for index, (row, sketch) in enumerate(zip(self._rows, sketches)):
            kind = "numeric" if row.numeric else "categorical"
            reported = {*self.config.reported[kind], self.config.primary}
            entry = {name: float(binned[name][index]) for name in _BINNED if name in reported}
            entry["chi2"], entry["chi2_p_value"] = float(chi2.statistic[index]), float(chi2.pvalue[index])
            if versus_previous is not None:
                entry["js_previous"] = float(versus_previous[index])
            if row.numeric and sketch.valid_count and self._wants("ks", "wasserstein"):
                entry.update(self._distribution_statistics(row.feature, sketch, reported))
            table[row.feature] = entry
            value, p_value = entry[self.config.primary], entry["chi2_p_value"]
            if math.isfinite(value) and math.isfinite(p_value):
                results.append(
                    TestResult(
                        row.kind,
                        row.feature,
                        self.config.primary,
                        value,
                        p_value=min(max(p_value, 0.0), 1.0),
                        sample_size=sketch.valid_count,
                        reference_size=int(row.reference_counts.sum()),
                        reference_id=self._reference_id,
                        reference_description=self._reference_description,
                    )
                )
        return results, table

    def _window_sketch(self, profile: WindowProfile, row: _DriftRow) -> Any:
        if row.feature == SCORE and row.kind == "prediction_drift":
            return profile.score
        if row.feature == CLASS and row.kind == "prediction_drift":
            return profile.predicted_class
        return profile.numeric[row.feature] if row.numeric else profile.categorical[row.feature]

    def _distribution_statistics(self, feature: str, sketch: NumericSketch, reported: set[str]) -> dict[str, float]:
        items, reference_items = sketch.weighted_items(), self._reference_items[feature]
        entry = {}
        if "ks" in reported:
            ks = statistics.kolmogorov_smirnov(items, reference_items)
            entry.update(ks=ks.statistic, ks_p_value=ks.pvalue, ks_effective_n=ks.n * ks.m / (ks.n + ks.m))
        if "wasserstein" in reported:
            scale = self._numeric_sketch(self.reference.profile, feature).std
            entry["wasserstein"] = statistics.wasserstein(items, reference_items, scale=scale) if scale > 0 else math.nan
        return entry

    def _quality(self, profile: WindowProfile, table: dict[str, dict[str, float]]) -> list[TestResult]:
        ref, config = self.reference.profile, self.config
        checks: list[tuple[str, str | None, str, float, float]] = []  # kind, feature, statistic, window, reference

        def rate(count: int, total: int) -> float:
            return count / total if total else math.nan

        def null_rate(of: WindowProfile, name: str) -> float:
            # Strings in a numeric feature and absent keys reach the sketches as nulls too; they
            # are reported as type errors and missing features, not twice.
            sketch = of.numeric.get(name) or of.categorical[name]
            nulls = sketch.null_count - of.type_errors.get(name, 0) - of.absent.get(name, 0)
            return rate(nulls, sketch.count)

        for name, sketch in profile.numeric.items():
            reference = ref.numeric[name]
            checks.append(("data_quality", name, "null_rate", null_rate(profile, name), null_rate(ref, name)))
            checks.append(
                ("data_quality", name, "type_error_rate", rate(profile.type_errors[name], profile.event_count),
                 rate(ref.type_errors.get(name, 0), ref.event_count))
            )  # fmt: skip
            if config.feature(name).range is not None:
                low, high = sketch.valid_range
                checks.append(
                    ("data_quality", name, "out_of_range_rate", quality.out_of_range_rate(sketch),
                     _outside_share(reference, low, high))
                )  # fmt: skip
            if sketch.sentinels.size:
                checks.append(
                    ("data_quality", name, "sentinel_rate", quality.sentinel_rate(sketch), quality.sentinel_rate(reference))
                )
        for name, sketch in profile.categorical.items():
            reference = ref.categorical[name]
            checks.append(("data_quality", name, "null_rate", null_rate(profile, name), null_rate(ref, name)))
            checks.append(("data_quality", name, "unseen_rate", quality.unseen_rate(sketch), quality.unseen_rate(reference)))
        for name, absent in profile.absent.items():
            checks.append(("data_quality", name, "missing_rate", rate(absent, profile.event_count), 0.0))
        if config.score_bounds is not None and profile.score is not None:
            checks.append(
                ("data_quality", SCORE, "out_of_range_rate", quality.out_of_range_rate(profile.score),
                 _outside_share(ref.score, *config.score_bounds))
            )  # fmt: skip
        checks.append(
            ("schema", None, "unknown_feature_rate", rate(profile.unknown_feature_events, profile.event_count), 0.0)
        )
        checks.append(
            ("error_rate", None, "error_rate", rate(profile.error_count, profile.event_count),
             rate(ref.error_count, ref.event_count))
        )  # fmt: skip

        results = []
        for kind, feature, statistic, window_rate, reference_rate in checks:
            increase = window_rate - (reference_rate if math.isfinite(reference_rate) else 0.0)
            if not math.isfinite(increase):
                continue
            threshold_name = "missing_rate" if statistic == "unknown_feature_rate" else statistic
            table.setdefault(feature or "(model)", {})[statistic] = window_rate
            results.append(
                TestResult(
                    kind,
                    feature,
                    statistic,
                    increase,
                    threshold=config.quality_threshold(threshold_name),
                    sample_size=profile.event_count,
                    reference_size=ref.event_count,
                    reference_id=self._reference_id,
                    reference_description=self._reference_description,
                )
            )
        latency = self._latency(profile)
        if latency is not None:
            table.setdefault("(model)", {}).update(p99_latency_ms=profile.latency.p99, p99_limit_ms=self.latency_limit_ms)
            results.append(latency)
        return results

    def _confidence(self, profile: WindowProfile, table: dict[str, dict[str, float]]) -> list[TestResult]:
        if self.confident_above is None or profile.score is None or profile.score.valid_count == 0:
            return []
        reference = self.reference.profile.score
        total, reference_total = profile.score.valid_count, reference.valid_count
        reference_share = quality.confident_rate(reference, self.confident_above)
        test = statistics.two_proportion(profile.confident_count, total, reference_share * reference_total, reference_total)
        if not (math.isfinite(test.statistic) and math.isfinite(test.pvalue)):
            return []
        table.setdefault(SCORE, {}).update(confident_rate=profile.confident_count / total, confident_rate_p_value=test.pvalue)
        return [
            TestResult(
                "prediction_drift",
                SCORE,
                "confident_rate",
                abs(test.statistic),
                threshold=self.config.quality_threshold("confident_rate"),
                p_value=min(max(test.pvalue, 0.0), 1.0),
                sample_size=total,
                reference_size=reference_total,
                reference_id=self._reference_id,
                reference_description=f"share of scores above {self.confident_above:g} in the {self._reference_description}",
            )
        ]

    def _rejects(self, profile: WindowProfile, table: dict[str, dict[str, float]]) -> list[TestResult]:
        total = profile.event_count + profile.reject_count
        if total == 0:
            return []
        threshold = self.config.quality_threshold("reject_rate")
        share = profile.reject_count / total
        table.setdefault("(model)", {})["reject_rate"] = share
        return [
            TestResult(
                "schema",
                None,
                "reject_rate",
                share,
                threshold=threshold,
                p_value=statistics.binomial_excess(profile.reject_count, total, threshold),
                sample_size=total,
                reference_description=f"reject_rate {threshold:g} of the monitor config (rejected / all input values)",
            )
        ]

    def _latency(self, profile: WindowProfile) -> TestResult | None:
        # "p99 above the limit" is decided as "more than 1% of requests slower than the limit": the
        # same test, but on an exact count instead of the randomized REQ sketch, so that streaming
        # (partials merged across partitions) and replay decide alike. The p99 itself is reported.
        if self.latency_limit_ms is None or profile.latency.count == 0:
            return None
        configured = self.config.latency_p99_ms is not None
        return TestResult(
            "latency",
            None,
            "share_over_p99_limit",
            profile.slow_count / profile.latency.count,
            threshold=LATENCY_TAIL_SHARE,
            sample_size=profile.latency.count,
            reference_size=None if configured else self.reference.profile.latency.count,
            reference_id="monitor-config" if configured else self._reference_id,
            reference_description=(
                f"latency_p99_ms {self.latency_limit_ms:g} of the monitor config"
                if configured
                else f"{self.config.quality_threshold('latency_p99_ratio'):g} x the p99 of the {self._reference_description}"
            ),
        )

    def detector_states(self) -> dict[WindowKey, dict[str, dict[str, Any]]]:
        """Inspection summaries of the online detectors by window key: ``{"adwin:feature": state}``."""
        states: dict[WindowKey, dict[str, dict[str, Any]]] = {}
        for (key, feature), detector in self._detectors.items():
            states.setdefault(key, {})[f"{detector.kind}:{feature}"] = detector.state
        return states

    def to_bytes(self) -> bytes:
        """Checkpoint of the evaluator's state (not its config or reference)."""
        keys = list(self._schedules)
        detector_keys = list(self._detectors)
        header = {
            "keys": [encode_key(key) for key in keys],
            "detectors": [[encode_key(key), feature] for key, feature in detector_keys],
            "pending": [[encode_key(key), sorted(features)] for key, features in self._pending_change_points.items()],
        }
        blobs = [self.policy.to_bytes()]
        blobs += [self._schedules[key].to_bytes() for key in keys]
        blobs += [self._detectors[key].to_bytes() for key in detector_keys]
        return pack("ModelEvaluator", header, blobs)

    @classmethod
    def from_bytes(cls, data: bytes, config: MonitorConfig, reference: ReferenceProfile) -> ModelEvaluator:
        header, blobs = unpack("ModelEvaluator", data)
        evaluator = cls(config, reference)
        blobs_iter = iter(blobs)
        evaluator.policy = AlertPolicy.from_bytes(next(blobs_iter), config.policy)
        for encoded in header["keys"]:
            evaluator._schedules[decode_key(encoded)] = EvaluationSchedule.from_bytes(
                next(blobs_iter), config.windows, evaluator.layout.new_profile
            )
        for encoded, feature in header["detectors"]:
            evaluator._detectors[(decode_key(encoded), feature)] = OnlineDetector.from_bytes(next(blobs_iter))
        for encoded, features in header["pending"]:
            evaluator._pending_change_points[decode_key(encoded)] = set(features)
        return evaluator


def _counts(sketch: Any) -> np.ndarray:
    return sketch.histogram if isinstance(sketch, NumericSketch) else sketch.counts


def _outside_share(reference: NumericSketch, low: float, high: float) -> float:
    """Share of the reference's values outside ``[low, high]``, read off its quantile sketch."""
    if reference.valid_count == 0:
        return math.nan
    below, at_or_below_high = reference.cdf([np.nextafter(low, -math.inf), high])
    valid_share = reference.valid_count / reference.count
    return float((below + 1.0 - at_or_below_high) * valid_share)

