"""River's streaming change detectors behind one batch interface with exact serialization."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from river import drift
from river.drift import binary

_KINDS: dict[str, type] = {
    "adwin": drift.ADWIN,
    "page_hinkley": drift.PageHinkley,
    "kswin": drift.KSWIN,
    "ddm": binary.DDM,
    "eddm": binary.EDDM,
}
_BINARY_KINDS = frozenset({"ddm", "eddm"})
_READINGS = ("width", "estimation", "variance", "p_value", "warning_detected")


class OnlineDetector:
    """A river change detector fed with numpy batches.

    ``kind`` is one of ``adwin``, ``page_hinkley``, ``kswin`` (real-valued streams, e.g.
    per-window feature means or a subsample) or ``ddm``, ``eddm`` (binary error streams:
    1 = the model was wrong). ``params`` go to the river constructor; KSWIN samples its
    reference window at random, so its ``seed`` defaults to 0 to make runs reproducible.

    River consumes one value at a time, so ``update`` loops in Python: feed it
    aggregates or error streams, not raw per-event features on the hot path.

    State serializes with pickle, which captures river's internal buffers and KSWIN's
    ``random.Random`` state, so a restored detector continues exactly like the original.
    Only unpickle bytes this service wrote (its own checkpoint topic).

    Examples
    --------
    >>> import numpy as np
    >>> detector = OnlineDetector("page_hinkley", threshold=10.0)
    >>> detector.update(np.concatenate([np.zeros(100), np.full(50, 5.0)]))
    [102]
    >>> detector.drift_detected
    True

    References
    ----------
    Bifet, Gavaldà (2007). Learning from time-changing data with adaptive windowing. SDM.
    Page (1954). Continuous inspection schemes. Biometrika 41(1/2).
    Raab, Heusinger, Schleif (2020). Reactive soft prototype computing for concept drift
    streams. Neurocomputing 416.
    Gama, Medas, Castillo, Rodrigues (2004). Learning with drift detection. SBIA.
    Baena-García, del Campo-Ávila, Fidalgo, Bifet, Gavaldà, Morales-Bueno (2006). Early drift
    detection method. ECML PKDD Workshop on Knowledge Discovery from Data Streams.
    """

    def __init__(self, kind: str, **params: Any) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown detector kind {kind!r}; expected one of {sorted(_KINDS)}")
        if kind == "kswin":
            params.setdefault("seed", 0)
        self._kind = kind
        self._params = params
        self._detector = _KINDS[kind](**params)
        self._drift_detected = False
        self._detections = 0

    def update(self, values: np.ndarray) -> list[int]:
        """Feed a batch in order; return the indices where the detector signalled drift."""
        values = np.asarray(values).ravel()
        items = values.astype(bool).tolist() if self._kind in _BINARY_KINDS else values.astype(np.float64).tolist()
        detections = []
        for index, item in enumerate(items):
            self._detector.update(item)
            if self._detector.drift_detected:
                detections.append(index)
        self._drift_detected = bool(detections)
        self._detections += len(detections)
        return detections

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def drift_detected(self) -> bool:
        """Whether the last ``update`` batch contained a detection."""
        return self._drift_detected

    @property
    def state(self) -> dict[str, Any]:
        """A JSON-ready summary for inspection: the kind and river's public readings.

        ADWIN reports its window width, mean estimate and variance, KSWIN its last p-value,
        DDM and EDDM whether they are in the warning zone.
        """
        readings = {"kind": self._kind, "drift_detected": self._drift_detected, "detections": self._detections}
        for name in _READINGS:
            value = getattr(self._detector, name, None)
            if value is not None:
                readings[name] = value if isinstance(value, (bool, int)) else float(value)
        return readings

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> OnlineDetector:
        detector = pickle.loads(data)
        if not isinstance(detector, cls):
            raise ValueError("not an OnlineDetector serialization")
        return detector
