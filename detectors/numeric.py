"""Mergeable profile of one numeric feature over a window."""

from __future__ import annotations

from collections.abc import Sequence

import datasketches
import numpy as np

from detectors._serde import pack, unpack

_FLOAT_FIELDS = ("lo", "hi", "mean", "m2", "min", "max")


class NumericSketch:
    """Histogram, quantile sketch, moments and data-quality counters of a numeric feature.

    Input is a float array where NaN means *missing* (decoders map JSON null to NaN).
    Each value lands in exactly one of these classes:

    * NaN: counted in ``null_count`` only.
    * +/-inf: counted in ``inf_count`` only.
    * equal to a configured sentinel (e.g. -999): counted in ``sentinel_count`` only.
      Sentinels are missing-value codes, not measurements; letting them into the
      distribution would both distort the moments and report one pipeline fault twice.
    * any other value is *valid*: it enters the histogram, the quantile sketch and
      the moments. Valid values outside ``valid_range`` are additionally counted in
      ``out_of_range_count``; they stay in the distribution because they were
      really observed and their shift is real drift.

    Histogram bins follow ``np.histogram`` on ``edges`` (``[e0, e1), ..., [e_{n-1}, e_n]``)
    plus an underflow bin (``x < e0``) first and an overflow bin (``x > e_n``) last, with
    int64 counts: binned statistics are exact with respect to this binning.

    Memory is bounded: ``len(edges) + 1`` counters, a KLL sketch whose retained items
    grow only logarithmically (about 3k items plus a few per level; k=200 retains
    < 700 doubles at 10^7 values), and a fixed number of scalars.

    Parameters
    ----------
    edges
        Strictly increasing finite bin edges, at least two; usually reference quantiles
        (see ``from_reference``).
    k
        KLL accuracy parameter; the sketch is exact up to k valid values, beyond that the
        single-sided normalized rank error at 99% confidence is ``rank_error`` (about
        1.33% for k=200; measured at most 1.15% over 99 ranks at 5*10^4 values).
    valid_range
        Inclusive ``(lo, hi)`` of expected values.
    sentinels
        Values that encode "missing" upstream.

    Examples
    --------
    >>> import numpy as np
    >>> sketch = NumericSketch(edges=[0.0, 1.0, 2.0], valid_range=(0.0, 10.0), sentinels=[-999.0])
    >>> sketch.update(np.array([0.5, 1.5, 2.0, 3.0, np.nan, np.inf, -999.0, -1.0, 42.0]))
    >>> sketch.histogram.tolist()
    [1, 1, 2, 2]
    >>> sketch.count, sketch.valid_count, sketch.null_count, sketch.inf_count
    (9, 6, 1, 1)
    >>> sketch.sentinel_count, sketch.out_of_range_count
    (1, 2)

    References
    ----------
    Karnin, Lang, Liberty (2016). Optimal Quantile Approximation in Streams. FOCS.
    Chan, Golub, LeVeque (1979). Updating formulae and a pairwise algorithm for
    computing sample variances. Stanford CS tech report STAN-CS-79-773.
    """

    def __init__(
        self,
        edges: Sequence[float] | np.ndarray,
        *,
        k: int = 200,
        valid_range: tuple[float, float] = (-np.inf, np.inf),
        sentinels: Sequence[float] = (),
    ) -> None:
        edges_array = np.asarray(edges, dtype=np.float64)
        if edges_array.ndim != 1 or edges_array.size < 2:
            raise ValueError("edges must be a 1-D array of at least two values")
        if not np.all(np.isfinite(edges_array)) or np.any(np.diff(edges_array) <= 0):
            raise ValueError("edges must be finite and strictly increasing")
        self._edges = edges_array
        self._k = int(k)
        self._lo, self._hi = float(valid_range[0]), float(valid_range[1])
        self._sentinels = np.unique(np.asarray(sentinels, dtype=np.float64))
        self._counts = np.zeros(edges_array.size + 1, dtype=np.int64)
        self._kll = datasketches.kll_doubles_sketch(self._k)
        self._count = 0
        self._null_count = 0
        self._inf_count = 0
        self._sentinel_count = 0
        self._out_of_range_count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = np.inf
        self._max = -np.inf

    @classmethod
    def from_reference(
        cls,
        values: np.ndarray,
        *,
        n_bins: int = 10,
        k: int = 200,
        valid_range: tuple[float, float] = (-np.inf, np.inf),
        sentinels: Sequence[float] = (),
    ) -> NumericSketch:
        """Build a reference profile: edges at the reference's ``n_bins``-quantiles, then update.

        Edges are observed values (``method="inverted_cdf"``), not interpolated ones, and
        tied quantiles collapse into one edge, so a discrete feature gets one bin per value
        (or per run of values) with each bin starting at a value. A
        constant reference gets edges ``[c, nextafter(c)]``: its single bin holds ``c``.
        """
        values = np.asarray(values, dtype=np.float64)
        valid = values[np.isfinite(values) & ~np.isin(values, np.asarray(sentinels, dtype=np.float64))]
        if valid.size == 0:
            raise ValueError("reference has no valid values to take edges from")
        edges = np.unique(np.quantile(valid, np.linspace(0.0, 1.0, n_bins + 1), method="inverted_cdf"))
        if edges.size == 1:
            edges = np.array([edges[0], np.nextafter(edges[0], np.inf)])
        sketch = cls(edges, k=k, valid_range=valid_range, sentinels=sentinels)
        sketch.update(values)
        return sketch

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        null = np.isnan(values)
        inf = np.isinf(values)
        sentinel = np.isin(values, self._sentinels) if self._sentinels.size else np.zeros_like(null)
        valid_values = values[~(null | inf | sentinel)]

        self._count += values.size
        self._null_count += int(null.sum())
        self._inf_count += int(inf.sum())
        self._sentinel_count += int(sentinel.sum())
        if valid_values.size == 0:
            return
        self._out_of_range_count += int(((valid_values < self._lo) | (valid_values > self._hi)).sum())

        n_before = self.valid_count
        bins = np.searchsorted(self._edges, valid_values, side="right")
        # np.histogram closes the last interior bin on the right.
        bins[valid_values == self._edges[-1]] -= 1
        self._counts += np.bincount(bins, minlength=self._counts.size)
        self._kll.update(np.ascontiguousarray(valid_values))

        batch_mean = float(valid_values.mean())
        batch_m2 = float(np.square(valid_values - batch_mean).sum())
        self._combine_moments(n_before, valid_values.size, batch_mean, batch_m2)
        self._min = min(self._min, float(valid_values.min()))
        self._max = max(self._max, float(valid_values.max()))

    def _combine_moments(self, n_self: int, n_other: int, mean_other: float, m2_other: float) -> None:
        # Chan et al.'s pairwise update: stable where sum-of-squares formulas cancel.
        total = n_self + n_other
        delta = mean_other - self._mean
        self._mean += delta * n_other / total
        self._m2 += m2_other + delta * delta * n_self * n_other / total

    def merge(self, other: NumericSketch) -> None:
        """Add ``other``'s observations to this sketch (same edges, k, range and sentinels)."""
        if not (
            np.array_equal(self._edges, other._edges)
            and self._k == other._k
            and (self._lo, self._hi) == (other._lo, other._hi)
            and np.array_equal(self._sentinels, other._sentinels)
        ):
            raise ValueError("cannot merge NumericSketches with different configurations")
        n_before = self.valid_count
        self._count += other._count
        self._null_count += other._null_count
        self._inf_count += other._inf_count
        self._sentinel_count += other._sentinel_count
        self._out_of_range_count += other._out_of_range_count
        self._counts += other._counts
        self._kll.merge(other._kll)
        if other.valid_count:
            self._combine_moments(n_before, other.valid_count, other._mean, other._m2)
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def copy(self) -> NumericSketch:
        return NumericSketch.from_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        header = {
            "k": self._k,
            "count": self._count,
            "null_count": self._null_count,
            "inf_count": self._inf_count,
            "sentinel_count": self._sentinel_count,
            "out_of_range_count": self._out_of_range_count,
        }
        floats = np.array([getattr(self, f"_{name}") for name in _FLOAT_FIELDS], dtype=np.float64)
        blobs = [
            self._edges.tobytes(),
            self._sentinels.tobytes(),
            self._counts.tobytes(),
            floats.tobytes(),
            self._kll.serialize(),
        ]
        return pack("NumericSketch", header, blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> NumericSketch:
        header, (edges, sentinels, counts, floats, kll) = unpack("NumericSketch", data)
        scalars = dict(zip(_FLOAT_FIELDS, np.frombuffer(floats, dtype=np.float64).tolist(), strict=True))
        sketch = cls(
            np.frombuffer(edges, dtype=np.float64),
            k=header["k"],
            valid_range=(scalars.pop("lo"), scalars.pop("hi")),
            sentinels=np.frombuffer(sentinels, dtype=np.float64),
        )
        for name, value in scalars.items():
            setattr(sketch, f"_{name}", value)
        sketch._counts = np.frombuffer(counts, dtype=np.int64).copy()
        sketch._kll = datasketches.kll_doubles_sketch.deserialize(kll)
        sketch._count = header["count"]
        sketch._null_count = header["null_count"]
        sketch._inf_count = header["inf_count"]
        sketch._sentinel_count = header["sentinel_count"]
        sketch._out_of_range_count = header["out_of_range_count"]
        return sketch

    @property
    def edges(self) -> np.ndarray:
        return self._edges.copy()

    @property
    def k(self) -> int:
        return self._k

    @property
    def sentinels(self) -> np.ndarray:
        return self._sentinels.copy()

    @property
    def histogram(self) -> np.ndarray:
        """int64 counts: underflow, the ``len(edges) - 1`` interior bins, overflow."""
        return self._counts.copy()

    @property
    def count(self) -> int:
        """All values seen, including nulls, infinities and sentinels."""
        return self._count

    @property
    def valid_count(self) -> int:
        return int(self._counts.sum())

    @property
    def null_count(self) -> int:
        return self._null_count

    @property
    def inf_count(self) -> int:
        return self._inf_count

    @property
    def sentinel_count(self) -> int:
        return self._sentinel_count

    @property
    def out_of_range_count(self) -> int:
        return self._out_of_range_count

    @property
    def valid_range(self) -> tuple[float, float]:
        return self._lo, self._hi

    @property
    def mean(self) -> float:
        return self._mean if self.valid_count else float("nan")

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1) of the valid values."""
        n = self.valid_count
        return self._m2 / (n - 1) if n > 1 else float("nan")

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))

    @property
    def min(self) -> float:
        return self._min if self.valid_count else float("nan")

    @property
    def max(self) -> float:
        return self._max if self.valid_count else float("nan")

    @property
    def rank_error(self) -> float:
        """KLL single-sided normalized rank error (99% confidence) for this k."""
        return datasketches.kll_doubles_sketch.get_normalized_rank_error(self._k, False)

    def quantiles(self, ranks: Sequence[float] | np.ndarray) -> np.ndarray:
        """Approximate quantiles at normalized ``ranks``: the smallest retained value whose
        inclusive rank reaches the requested one (``np.quantile(method="inverted_cdf")``
        in exact mode). The true rank of each answer is within ``rank_error`` of the
        requested one."""
        if self._kll.is_empty():
            return np.full(len(ranks), np.nan)
        return np.asarray(self._kll.get_quantiles(list(ranks), True), dtype=np.float64)

    def cdf(self, points: Sequence[float] | np.ndarray) -> np.ndarray:
        """Approximate fraction of valid values <= each point."""
        points = np.asarray(points, dtype=np.float64)
        if self._kll.is_empty():
            return np.full(points.shape, np.nan)
        order = np.argsort(points)
        # get_cdf needs unique increasing split points and returns a trailing 1.0.
        unique_points, inverse = np.unique(points[order], return_inverse=True)
        cdf = np.asarray(self._kll.get_cdf(unique_points.tolist(), True), dtype=np.float64)[:-1]
        result = np.empty_like(points)
        result[order] = cdf[inverse]
        return result

    def weighted_items(self) -> tuple[np.ndarray, np.ndarray]:
        """The quantile sketch's retained items (sorted) and their integer weights.

        Weights sum to ``valid_count``; this discrete distribution is the sketch's
        approximation of the data and feeds the KS and Wasserstein statistics.
        """
        if self._kll.is_empty():
            return np.empty(0), np.empty(0, dtype=np.int64)
        pairs = np.array(list(self._kll), dtype=np.float64)
        order = np.argsort(pairs[:, 0], kind="stable")
        return pairs[order, 0], pairs[order, 1].astype(np.int64)

    @property
    def nbytes(self) -> int:
        """Approximate memory of the sketch state (native sketch counted by its serialized size)."""
        scalars = 8 * (len(_FLOAT_FIELDS) + 6)
        return self._edges.nbytes + self._sentinels.nbytes + self._counts.nbytes + len(self._kll.serialize()) + scalars
