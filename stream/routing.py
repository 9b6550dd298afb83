"""From decoded inference events of one model to columns and the window keys each event counts in.

Shared by ``driftline replay`` and the ingest workers, so that both put every event in the same
window keys: the model version, and each of its segments (``MonitorConfig.segments``), with a tag's
values beyond its ``max_values`` pooled as ``OTHER_SEGMENT_VALUE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from detectors.columns import Columns
from detectors.monitor import MonitorConfig
from detectors.policy import WindowKey
from detectors.profile import ProfileLayout

OTHER_SEGMENT_VALUE = "__other__"
"""Segment value pooling a tag's values beyond its ``max_values``."""


class ModelRoutes:
    """Columns and window-key routes of one model's events.

    The segment values that claimed a tag's slots are state (first come, first served), kept by
    ``segment_values`` / ``restore_segment_values`` in checkpoints. Ingest keeps one such state per
    source partition, so once a tag has more distinct values than ``max_values``, which of them are
    pooled can differ between partitions and from replay (which sees one global order); below the
    cap, streaming and replay route every event alike. A global first-come order would need every
    ingest worker to agree on arrival order, which Kafka does not give across partitions.
    """

    def __init__(self, config: MonitorConfig, layout: ProfileLayout) -> None:
        self.model_id = config.model_id
        self._numeric = list(layout.numeric)
        self._categorical = list(layout.categorical)
        self._caps = dict(config.segments)
        self._known: dict[str, dict[str, None]] = {tag: {} for tag in self._caps}

    def columns(self, events: list[dict]) -> Columns:
        return Columns.from_events(events, self._numeric, self._categorical, list(self._caps))

    def routes(self, columns: Columns) -> dict[WindowKey, np.ndarray]:
        """Indices of the events of each window key: the model version, and each of its segments."""
        routes: dict[WindowKey, np.ndarray] = {}
        versions, version_of = np.unique(columns.model_version.astype(str), return_inverse=True)
        for position, version in enumerate(versions.tolist()):
            indices = np.flatnonzero(version_of == position)
            routes[WindowKey(self.model_id, version)] = indices
            for tag in self._caps:
                for value, members in self._segments(tag, columns.segment[tag][indices]):
                    routes[WindowKey(self.model_id, version, {tag: value})] = indices[members]
        return routes

    def segment_values(self) -> dict[str, list[str]]:
        """The values holding each tag's slots, in the order they claimed them."""
        return {tag: list(values) for tag, values in self._known.items()}

    def restore_segment_values(self, values: Mapping[str, list[str]]) -> None:
        for tag, known in values.items():
            if tag in self._known:
                self._known[tag] = dict.fromkeys(known)

    def _segments(self, tag: str, values: np.ndarray) -> Iterable[tuple[str, np.ndarray]]:
        present = values != None  # noqa: E711
        if not present.any():
            return []
        spelled = values[present].astype(str)
        uniques, first, inverse = np.unique(spelled, return_index=True, return_inverse=True)
        known = self._known[tag]
        # Values claim the tag's slots in order of first appearance, so batching does not matter.
        for value in uniques[np.argsort(first, kind="stable")].tolist():
            if value not in known and len(known) < self._caps[tag]:
                known[value] = None
        pooled = np.array([value if value in known else OTHER_SEGMENT_VALUE for value in uniques.tolist()], dtype=object)
        present_indices = np.flatnonzero(present)
        names = pooled[inverse]
        return [(name, present_indices[names == name]) for name in sorted(set(pooled.tolist()))]
