"""Mergeable Pearson correlation of configured column pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors._serde import pack, unpack

_STATE = ("n", "mean_x", "mean_y", "m2_x", "m2_y", "c_xy")
_CONSTANT_RELATIVE_STD = 1e-10


class CorrelationSketch:
    """Co-moments (n, means, M2_x, M2_y, C_xy) of each configured pair, merged with
    Chan et al.'s parallel formulas; query Pearson r.

    ``update`` takes a 2-D float array with one column per name in ``columns``; a row
    counts for a pair only when both of its values are finite (NaN is missing).
    Updates are vectorized over rows and pairs. Memory: six float64 per pair.

    Examples
    --------
    >>> import numpy as np
    >>> sketch = CorrelationSketch(["a", "b", "c"], [("a", "b"), ("a", "c")])
    >>> sketch.update(np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 1.0], [3.0, 6.0, np.nan], [4.0, 8.0, -3.0]]))
    >>> sketch.pearson().round(6).tolist()
    [1.0, -1.0]
    >>> sketch.pair_counts.tolist()
    [4, 3]

    References
    ----------
    Chan, Golub, LeVeque (1979). Updating formulae and a pairwise algorithm for
    computing sample variances. Stanford CS tech report STAN-CS-79-773.
    Pébay (2008). Formulas for robust, one-pass parallel computation of covariances
    and arbitrary-order statistical moments. Sandia report SAND2008-6212.
    """

    def __init__(self, columns: Sequence[str], pairs: Sequence[tuple[str, str]]) -> None:
        self._columns = [str(c) for c in columns]
        index = {name: i for i, name in enumerate(self._columns)}
        self._pairs = [(str(a), str(b)) for a, b in pairs]
        self._left = np.array([index[a] for a, _ in self._pairs], dtype=np.int64)
        self._right = np.array([index[b] for _, b in self._pairs], dtype=np.int64)
        self._state = np.zeros((len(_STATE), len(self._pairs)), dtype=np.float64)

    def update(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(self._columns):
            raise ValueError(f"rows must have shape (n, {len(self._columns)})")
        x, y = rows[:, self._left], rows[:, self._right]
        both = np.isfinite(x) & np.isfinite(y)
        n = both.sum(axis=0).astype(np.float64)
        safe_n = np.maximum(n, 1.0)
        x, y = np.where(both, x, 0.0), np.where(both, y, 0.0)
        mean_x, mean_y = x.sum(axis=0) / safe_n, y.sum(axis=0) / safe_n
        dx, dy = np.where(both, x - mean_x, 0.0), np.where(both, y - mean_y, 0.0)
        batch = np.stack([n, mean_x, mean_y, (dx * dx).sum(axis=0), (dy * dy).sum(axis=0), (dx * dy).sum(axis=0)])
        self._combine(batch)

    def _combine(self, other: np.ndarray) -> None:
        n_a, mx_a, my_a, m2x_a, m2y_a, cxy_a = self._state
        n_b, mx_b, my_b, m2x_b, m2y_b, cxy_b = other
        n = n_a + n_b
        weight = np.divide(n_b, n, out=np.zeros_like(n), where=n > 0)
        cross = n_a * weight
        dx, dy = mx_b - mx_a, my_b - my_a
        self._state = np.stack(
            [
                n,
                mx_a + dx * weight,
                my_a + dy * weight,
                m2x_a + m2x_b + dx * dx * cross,
                m2y_a + m2y_b + dy * dy * cross,
                cxy_a + cxy_b + dx * dy * cross,
            ]
        )

    def merge(self, other: CorrelationSketch) -> None:
        if self._columns != other._columns or self._pairs != other._pairs:
            raise ValueError("cannot merge CorrelationSketches with different pairs")
        self._combine(other._state)

    def copy(self) -> CorrelationSketch:
        return CorrelationSketch.from_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        header = {"columns": self._columns, "pairs": self._pairs}
        return pack("CorrelationSketch", header, [self._state.tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> CorrelationSketch:
        header, (state,) = unpack("CorrelationSketch", data)
        sketch = cls(header["columns"], [tuple(pair) for pair in header["pairs"]])
        sketch._state = np.frombuffer(state, dtype=np.float64).reshape(len(_STATE), -1).copy()
        return sketch

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    @property
    def pair_counts(self) -> np.ndarray:
        return self._state[0].astype(np.int64)

    def pearson(self) -> np.ndarray:
        """Pearson r of each pair, NaN where fewer than two rows or a constant column.

        A column counts as constant when its standard deviation is below 1e-10 of its
        mean's magnitude: rounding leaves such a residue in M2 for truly constant
        data, and r computed from it would be noise.
        """
        n, mean_x, mean_y, m2_x, m2_y, c_xy = self._state
        tiny = np.finfo(np.float64).tiny
        varies_x = m2_x > n * np.maximum(np.square(_CONSTANT_RELATIVE_STD * mean_x), tiny)
        varies_y = m2_y > n * np.maximum(np.square(_CONSTANT_RELATIVE_STD * mean_y), tiny)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(varies_x & varies_y & (n > 1), c_xy / np.sqrt(m2_x * m2_y), np.nan)
        return np.clip(r, -1.0, 1.0)

    @property
    def nbytes(self) -> int:
        return self._state.nbytes + self._left.nbytes + self._right.nbytes
