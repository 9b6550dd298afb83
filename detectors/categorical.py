"""Mergeable profile of one categorical feature over a window."""

from __future__ import annotations

import struct
import sys
from collections import Counter
from collections.abc import Sequence

import datasketches
import numpy as np

from detectors._serde import pack, unpack

_HLL_TYPE = datasketches.HLL_8


class CategoricalSketch:
    """Counts of reference categories, an "unseen" bucket, heavy hitters among unseen
    values and an HLL estimate of the number of distinct values.

    Input is an array of values; ``None`` and float NaN mean *missing* and are counted
    in ``null_count`` only. Every other value is compared as ``str(value)``, so
    ``True`` is the category ``"True"``.

    Per batch, values are counted in one C-level pass (``collections.Counter``);
    everything after that loops over the batch's *distinct* values only (the
    DataSketches bindings take one item per call).

    Memory is bounded: ``len(categories) + 1`` counters, a frequent-items map of at
    most ``2**heavy_hitters_lg_size`` entries (error of a count estimate <=
    ``3.5 / 2**lg_size`` of the unseen total), and an HLL of ``2**hll_lg_k`` one-byte
    registers (relative standard error about ``1.04 / sqrt(2**hll_lg_k)``, 1.6% at 12).

    Examples
    --------
    >>> import numpy as np
    >>> sketch = CategoricalSketch(["red", "green"])
    >>> sketch.update(np.array(["red", "red", "blue", None, "green", "blue"], dtype=object))
    >>> sketch.counts.tolist(), sketch.null_count, sketch.unseen_count
    ([2, 1, 2], 1, 2)
    >>> sketch.heavy_hitters()
    [('blue', 2)]
    >>> round(sketch.cardinality)
    3

    References
    ----------
    Flajolet, Fusy, Gandouet, Meunier (2007). HyperLogLog: the analysis of a near-optimal
    cardinality estimation algorithm. AofA.
    Anderson, Bevan, Lang, Liberty, Rhodes, Thaler (2017). A high-performance algorithm for
    identifying frequent items in data streams. IMC.
    """

    def __init__(
        self,
        categories: Sequence[str],
        *,
        heavy_hitters_lg_size: int = 6,
        hll_lg_k: int = 12,
    ) -> None:
        self._categories = [str(c) for c in categories]
        if len(set(self._categories)) != len(self._categories):
            raise ValueError("categories must be distinct")
        self._index = {category: index for index, category in enumerate(self._categories)}
        self._lg_size = int(heavy_hitters_lg_size)
        self._lg_k = int(hll_lg_k)
        self._counts = np.zeros(len(self._categories) + 1, dtype=np.int64)
        self._null_count = 0
        self._heavy = datasketches.frequent_strings_sketch(self._lg_size)
        self._hll = datasketches.hll_sketch(self._lg_k, _HLL_TYPE)

    @classmethod
    def from_reference(
        cls,
        values: np.ndarray,
        *,
        max_categories: int = 256,
        heavy_hitters_lg_size: int = 6,
        hll_lg_k: int = 12,
    ) -> CategoricalSketch:
        """Reference profile whose categories are the ``max_categories`` most frequent
        reference values (ties broken by value); rarer ones count as unseen."""
        values = np.asarray(values, dtype=object).ravel()
        present = values[~_null_mask(values)].astype(str)
        uniques, counts = np.unique(present, return_counts=True)
        order = np.lexsort((uniques, -counts))[:max_categories]
        sketch = cls(uniques[order].tolist(), heavy_hitters_lg_size=heavy_hitters_lg_size, hll_lg_k=hll_lg_k)
        sketch.update(values)
        return sketch

    def update(self, values: np.ndarray) -> None:
        items = np.asarray(values).ravel().tolist()
        counts = Counter(items)
        for null in [value for value in counts if value is None or value != value]:  # NaN: unequal to itself
            self._null_count += counts.pop(null)
        if not all(type(value) is str for value in counts):
            # 1, 1.0 and True are one dict key but three categories ("1", "1.0", "True").
            counts = Counter(str(value) for value in items if not (value is None or value != value))
        unseen = self._counts.size - 1
        for name in sorted(counts):  # sorted: the sketches' state must not depend on arrival order
            count = counts[name]
            index = self._index.get(name, unseen)
            self._counts[index] += count
            if index == unseen:
                self._heavy.update(name, count)
            self._hll.update(name)

    def merge(self, other: CategoricalSketch) -> None:
        if self._categories != other._categories or (self._lg_size, self._lg_k) != (other._lg_size, other._lg_k):
            raise ValueError("cannot merge CategoricalSketches with different configurations")
        self._counts += other._counts
        self._null_count += other._null_count
        self._heavy.merge(other._heavy)
        union = datasketches.hll_union(self._lg_k)
        union.update(self._hll)
        union.update(other._hll)
        self._hll = union.get_result(_HLL_TYPE)

    def copy(self) -> CategoricalSketch:
        return CategoricalSketch.from_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        header = {
            "categories": self._categories,
            "lg_size": self._lg_size,
            "lg_k": self._lg_k,
            "null_count": self._null_count,
        }
        # Canonical images, so that from_bytes(b).to_bytes() == b and profiles compare by hash: the
        # DataSketches images list hash-table slots in an order a deserialized copy does not
        # reproduce. The updatable HLL image keeps its slots; frequent items are sorted.
        blobs = [self._counts.tobytes(), _sorted_frequent_items(self._heavy.serialize()), self._hll.serialize_updatable()]
        return pack("CategoricalSketch", header, blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> CategoricalSketch:
        header, (counts, heavy, hll) = unpack("CategoricalSketch", data)
        sketch = cls(header["categories"], heavy_hitters_lg_size=header["lg_size"], hll_lg_k=header["lg_k"])
        sketch._counts = np.frombuffer(counts, dtype=np.int64).copy()
        sketch._null_count = header["null_count"]
        sketch._heavy = datasketches.frequent_strings_sketch.deserialize(heavy)
        sketch._hll = datasketches.hll_sketch.deserialize(hll)
        return sketch

    @property
    def categories(self) -> list[str]:
        return list(self._categories)

    @property
    def counts(self) -> np.ndarray:
        """int64 counts of each reference category, then the unseen bucket."""
        return self._counts.copy()

    @property
    def count(self) -> int:
        """All values seen, including nulls."""
        return int(self._counts.sum()) + self._null_count

    @property
    def valid_count(self) -> int:
        return int(self._counts.sum())

    @property
    def null_count(self) -> int:
        return self._null_count

    @property
    def unseen_count(self) -> int:
        return int(self._counts[-1])

    @property
    def cardinality(self) -> float:
        """HLL estimate of the number of distinct non-null values."""
        return self._hll.get_estimate()

    def cardinality_bounds(self, num_std_dev: int = 2) -> tuple[float, float]:
        return self._hll.get_lower_bound(num_std_dev), self._hll.get_upper_bound(num_std_dev)

    def heavy_hitters(self, min_count: int = 0) -> list[tuple[str, int]]:
        """Unseen values whose estimated count exceeds ``min_count``, most frequent first.

        Uses the no-false-negatives rule: every value whose true count exceeds the
        sketch's maximum error is reported.
        """
        items = self._heavy.get_frequent_items(datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES, min_count)
        return [(value, int(estimate)) for value, estimate, _, _ in items]

    @property
    def nbytes(self) -> int:
        """Approximate memory of the sketch state (native sketches counted by serialized size)."""
        return (
            self._counts.nbytes
            + sys.getsizeof(self._index)
            + len(self._heavy.serialize())
            + self._hll.get_compact_serialization_bytes()
        )


_FREQUENT_PREAMBLE = struct.Struct("<8sIIQQ")


def _sorted_frequent_items(image: bytes) -> bytes:
    """A frequent-items sketch image with its items sorted (any order deserializes to the same sketch).

    Image layout (DataSketches frequent items, serial version 1): 8 preamble bytes, the item count
    (u32) and 4 unused bytes, the stream weight and offset (u64 each) — all absent when empty —
    then one u64 weight per item, then the items as u32 length + UTF-8 bytes.
    """
    if len(image) <= 8:  # empty sketch: the preamble only
        return image
    preamble, count, unused, stream_weight, offset = _FREQUENT_PREAMBLE.unpack_from(image)
    weights = struct.unpack_from(f"<{count}Q", image, _FREQUENT_PREAMBLE.size)
    position, items = _FREQUENT_PREAMBLE.size + 8 * count, []
    for _ in range(count):
        (length,) = struct.unpack_from("<I", image, position)
        items.append(image[position + 4 : position + 4 + length])
        position += 4 + length
    pairs = sorted(zip(items, weights))
    return b"".join(
        [
            _FREQUENT_PREAMBLE.pack(preamble, count, unused, stream_weight, offset),
            struct.pack(f"<{count}Q", *(weight for _, weight in pairs)),
            *(struct.pack("<I", len(item)) + item for item, _ in pairs),
        ]
    )


def _null_mask(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind != "O":
        return np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, dtype=bool)
    # Elementwise comparisons stay in numpy's C loop; NaN is the only value unequal to itself.
    return np.asarray(values == None) | np.asarray(values != values)  # noqa: E711
