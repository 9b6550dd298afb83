"""Seeded synthetic traffic for the replay tests: 20 numeric and 5 categorical features, a score
and class that depend only on features no test shifts, lognormal latency, event time at a fixed rate
with a little jitter (out of order by up to 4 s, well inside the allowed lateness).

Events are generated as columns (vectorized); ``to_events`` turns a slice into event dicts for the
JSON path, ``to_columns`` into ``detectors.columns.Columns`` for the fast path — both carry the same
values, so the two paths see the same data.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from detectors.columns import Columns

NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CATEGORIES = [[f"c{i}_{j}" for j in range(size)] for i, size in enumerate((3, 5, 8, 12, 20))]
START_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MODEL_ID, MODEL_VERSION = "fraud-detector", "2026.1"


def _numeric(rng: np.random.Generator, index: int, size: int) -> np.ndarray:
    """Feature ``index``: normal, lognormal, uniform, gamma or integer-valued (Poisson)."""
    family = index % 5
    if family == 0:
        return rng.normal(10.0 * index, 1.0 + index, size)
    if family == 1:
        return rng.lognormal(1.0, 0.5, size)
    if family == 2:
        return rng.uniform(-1.0, 1.0, size)
    if family == 3:
        return rng.gamma(2.0, 3.0, size)
    return rng.poisson(4.0, size).astype(np.float64)


@dataclasses.dataclass
class Traffic:
    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    score: np.ndarray
    latency_ms: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return self.timestamp.size

    def to_columns(self, start: int, stop: int) -> Columns:
        size = stop - start
        score = self.score[start:stop]
        classes = np.empty(size, dtype=object)
        classes[:] = np.where(score >= 0.5, "fraud", "ok").tolist()
        versions = np.empty(size, dtype=object)
        versions[:] = [MODEL_VERSION] * size
        no_names = np.empty(size, dtype=object)
        return Columns(
            numeric={name: values[start:stop] for name, values in self.numeric.items()},
            categorical={name: values[start:stop] for name, values in self.categorical.items()},
            type_error={name: np.zeros(size, dtype=bool) for name in self.numeric},
            absent={name: np.zeros(size, dtype=bool) for name in [*self.numeric, *self.categorical]},
            unknown_features=no_names,
            score=score,
            predicted_class=classes,
            latency_ms=self.latency_ms[start:stop],
            error=np.zeros(size, dtype=bool),
            timestamp=self.timestamp[start:stop],
            model_version=versions,
            segment={},
        )

    def to_events(self, start: int, stop: int, id_prefix: str = "p") -> list[dict]:
        numeric = {name: np.round(values[start:stop], 4).tolist() for name, values in self.numeric.items()}
        categorical = {name: values[start:stop].tolist() for name, values in self.categorical.items()}
        score = np.round(self.score[start:stop], 6).tolist()
        latency = np.round(self.latency_ms[start:stop], 3).tolist()
        timestamp = np.round(self.timestamp[start:stop], 3).tolist()
        events = []
        for offset in range(stop - start):
            features = {name: column[offset] for name, column in numeric.items()}
            features.update({name: column[offset] for name, column in categorical.items()})
            events.append(
                {
                    "prediction_id": f"{id_prefix}-{start + offset}",
                    "model_id": MODEL_ID,
                    "model_version": MODEL_VERSION,
                    "timestamp": timestamp[offset],
                    "features": features,
                    "prediction": {"score": score[offset], "class": "fraud" if score[offset] >= 0.5 else "ok"},
                    "latency_ms": latency[offset],
                }
            )
        return events


def traffic(
    n_events: int,
    seed: int,
    *,
    rate: float = 10.0,
    shift_at: int | None = None,
    shifted: tuple[str, ...] = (),
    shift_sd: float = 0.5,
) -> Traffic:
    """``n_events`` events at ``rate`` per second of event time; from index ``shift_at`` on, the
    ``shifted`` numeric features move up by ``shift_sd`` of their standard deviation."""
    rng = np.random.default_rng(seed)
    numeric = {name: _numeric(rng, index, n_events) for index, name in enumerate(NUMERIC)}
    if shift_at is not None:
        for name in shifted:
            values = numeric[name]
            values[shift_at:] += shift_sd * _reference_sd(NUMERIC.index(name))
    categorical = {}
    for name, categories in zip(CATEGORICAL, CATEGORIES):
        weights = 1.0 / np.arange(1, len(categories) + 1)
        picked = rng.choice(len(categories), size=n_events, p=weights / weights.sum())
        column = np.empty(n_events, dtype=object)
        column[:] = np.array(categories, dtype=object)[picked]
        categorical[name] = column
    # The score uses features no test shifts (num_00, num_01 and cat_0), so a shift of other
    # features is data drift only.
    logit = 0.8 * numeric["num_00"] + 0.6 * (numeric["num_01"] - 3.0) + (categorical["cat_0"] == "c0_0") - 0.5
    score = 1.0 / (1.0 + np.exp(-logit))
    jitter = rng.uniform(-2.0, 2.0, n_events)
    return Traffic(
        numeric=numeric,
        categorical=categorical,
        score=score,
        latency_ms=rng.lognormal(2.5, 0.4, n_events),
        timestamp=START_TIME + np.arange(n_events) / rate + jitter,
    )


def _reference_sd(index: int) -> float:
    """Exact standard deviation of feature ``index``'s distribution."""
    family = index % 5
    return [
        1.0 + index,
        float(np.sqrt((np.exp(0.25) - 1.0) * np.exp(2.0 + 0.25))),
        2.0 / np.sqrt(12.0),
        float(np.sqrt(2.0) * 3.0),
        2.0,
    ][family]


def reference_rows(n_rows: int, seed: int) -> list[dict]:
    """Training rows shaped like events (features, prediction, latency) from the stationary traffic."""
    data = traffic(n_rows, seed)
    return [
        {key: event[key] for key in ("features", "prediction", "latency_ms")} for event in data.to_events(0, n_rows)
    ]
