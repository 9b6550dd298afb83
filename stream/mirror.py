"""The Redis inspection mirror: what the evaluate workers decided, readable without consuming topics.

Redis is not the source of truth (DESIGN.md section 6): alerts go to Kafka and worker state to the
compacted evaluate-state topic, in one transaction. After each committed transaction the evaluate
worker copies what it just decided here, for ``driftline state show`` and dashboards. Hence:

- Writes never raise. When Redis is unreachable a write logs a warning (at most one per
  ``warn_seconds``), keeps the latest write of each key group in memory and returns; the first write
  that reaches Redis again sends the kept ones before its own. A write replaces its key group in full
  (the latest evaluation of a segment, a segment's detector states, a reference summary, a
  heartbeat, one alert's entry), so keeping the latest write per group is enough: memory is bounded
  by the number of groups (and by ``max_unsent``), and the mirror heals itself.
- A call is one pipeline, sent as MULTI/EXEC so a reader never sees a group half replaced.
- Data that ages has a TTL; every key is listed in :data:`KEYS`, and ``docs/redis.md`` holds the
  table :func:`key_table_markdown` renders from it (a test checks both against the keys written).

Keys hold JSON (orjson; non-finite numbers become null), except the reference profile copies (the
bytes of ``ReferenceProfile.to_bytes``). Segments appear in keys as :func:`segment_key`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
import redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.retry import Retry

from detectors.evaluator import Evaluation
from detectors.performance import CoverageEvaluation, PerformanceEvaluation
from detectors.policy import PolicyConfig, TestResult
from detectors.profile import ReferenceProfile
from stream.settings import ConfigError

log = logging.getLogger(__name__)

Segment = Mapping[str, str] | Iterable[tuple[str, str]]
"""Segment tags as a mapping or as ``WindowKey.segment`` pairs."""


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """One key pattern of the mirror, as documented in docs/redis.md."""

    pattern: str
    """Key after ``<prefix>:``, with ``{placeholders}``."""
    type: str
    ttl: str
    writer: str
    content: str

    def key(self, prefix: str, **parts: str) -> str:
        return f"{prefix}:{self.pattern.format(**parts)}"


MODELS = KeySpec(
    "models", "zset", "none", "every write about a model",
    "Every model_id the mirror has seen; score: unix time of the last write about it.",
)
SEGMENTS = KeySpec(
    "segments:{model}", "zset", "`window_ttl`, refreshed on write", "`evaluation`, `detector_states`, `performance`",
    "Members `{version}:{segment}` with a window, detector state or performance; score: unix time of the last write. "
    "Members older than `window_ttl` are pruned on write.",
)
WINDOW = KeySpec(
    "window:{model}:{version}:{segment}", "string", "`window_ttl`", "`evaluation`",
    "JSON of the latest evaluation window: model_id, model_version, segment (object), start, end "
    "(RFC 3339), event_count, change_points (features), evaluated_at.",
)
STATISTICS = KeySpec(
    "stats:{model}:{version}:{segment}", "hash", "`window_ttl`", "`evaluation`",
    "Field per feature (`score`/`class` for the outputs, `(model)` for model-level checks): JSON "
    "{statistics: {name: value}, tests: [{kind, statistic, value, threshold, p_value, ratio}], worst_ratio} "
    "of the latest evaluation; ratio = value / threshold, the test's distance to alerting.",
)
DETECTORS = KeySpec(
    "detectors:{model}:{version}:{segment}", "hash", "`window_ttl`", "`detector_states`",
    "Field per detector: JSON of its state as the worker reports it (replaced in full on each write).",
)
PERFORMANCE = KeySpec(
    "performance:{model}:{version}:{segment}", "hash", "`window_ttl`", "`performance`",
    "Field `window`: JSON of the latest performance window (detectors/performance.py): start, end (RFC 3339), "
    "label_count, metrics {accuracy, precision, recall, f1, roc_auc, log_loss, calibration_error, class_recall, "
    "confusion | mae, rmse, mape, r2, mean_error; label_lag {count, p50, p95, p99, max, early, over_limit} in seconds}, "
    "reference (the same metrics of the reference performance, null until complete), tests "
    "[{kind, statistic, feature, value, threshold, p_value, ratio}], detections, detectors {name: state}. Field `coverage`: "
    "JSON of the latest prediction window whose label coverage was judged: start, end, predicted, labelled, coverage.",
)
CHANGE_POINTS = KeySpec(
    "change_points:{model}", "list", "`window_ttl`, refreshed on write", "`evaluation`",
    "Newest first, capped at `recent_cap`: JSON {model_version, segment, feature, window_start, window_end} "
    "of each change point an online detector reported.",
)
OPEN_ALERTS = KeySpec(
    "alerts:open:{model}", "hash", "none (removed when the alert resolves)", "`alerts`",
    "Field per alert_id still firing: JSON of its firing event (schemas/alert.schema.json).",
)
RECENT_ALERTS = KeySpec(
    "alerts:recent:{model}", "list", "`recent_ttl`, refreshed on write", "`alerts`",
    "Newest first, capped at `recent_cap`: JSON of the model's alert events, firing and resolved.",
)
REFERENCE = KeySpec(
    "reference:{model}", "hash", "none (its source is the profile file)", "`reference`",
    "Field per model_version: JSON summary of the reference profile: source, created_at (RFC 3339), "
    "row_count, n_bins, features {name: {type: numeric or categorical, bins or categories, ...}}, outputs.",
)
PROFILE = KeySpec(
    "profile:{model}", "hash", "none (its source is the profile file)", "`reference` when `copy_profiles`",
    "Field per model_version: the reference profile's bytes (`ReferenceProfile.from_bytes` reads them).",
)
WORKERS = KeySpec(
    "workers", "zset", "`heartbeat_ttl`, refreshed on write", "`heartbeat`",
    "Members `{role}:{worker_id}`; score: unix time of the last heartbeat. Members older than "
    "`heartbeat_ttl` are pruned on write.",
)
HEARTBEAT = KeySpec(
    "heartbeat:{role}:{worker_id}", "string", "`heartbeat_ttl`", "`heartbeat`",
    "JSON {role, worker_id, at (RFC 3339), info}. Both roles beat every 5 s; info has `lag` "
    "({\"topic[partition]\": records not yet consumed, as of the last fetch}) and the worker's committed "
    "counts (ingest: consumed, handed_on, deadlettered, batches, ...; evaluate: models, records, evaluations, alerts).",
)

KEYS: tuple[KeySpec, ...] = (
    MODELS, SEGMENTS, WINDOW, STATISTICS, DETECTORS, PERFORMANCE, CHANGE_POINTS,
    OPEN_ALERTS, RECENT_ALERTS, REFERENCE, PROFILE, WORKERS, HEARTBEAT,
)  # fmt: skip
"""Every key the mirror writes."""


def key_table_markdown(prefix: str = "driftline") -> str:
    """The key table of docs/redis.md."""
    lines = ["| key | type | TTL | written by | content |", "|---|---|---|---|---|"]
    lines += [f"| `{prefix}:{spec.pattern}` | {spec.type} | {spec.ttl} | {spec.writer} | {spec.content} |" for spec in KEYS]
    return "\n".join(lines) + "\n"


def segment_key(segment: Segment) -> str:
    """Deterministic text of a segment: sorted ``tag=value`` pairs joined by commas, ``-`` for none.

    Tags and values are percent-encoded beyond letters, digits and ``_.-~``, so the text is
    unambiguous and free of ``:``.

    >>> segment_key({"tier": "gold", "region": "eu"}), segment_key(()), segment_key({"a": "x,y=z"})
    ('region=eu,tier=gold', '-', 'a=x%2Cy%3Dz')
    """
    pairs = sorted(dict(segment).items())
    return ",".join(f"{quote(tag, safe='')}={quote(value, safe='')}" for tag, value in pairs) or "-"


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


class MirrorUnavailable(ConfigError):
    """Redis could not be read (the CLI prints it as one line)."""


Write = Callable[[Pipeline], None]


class RedisMirror:
    """Writes the evaluate workers' live state to Redis and reads it back for the CLI.

    Parameters
    ----------
    redis_url
        ``redis://host:port/db``.
    prefix
        First part of every key (``driftline`` → ``driftline:window:...``).
    window_ttl
        Seconds the latest window, its statistics, detector states and change points outlive their
        last update: a segment that stops getting traffic fades out of the mirror.
    recent_ttl, recent_cap
        Seconds the recent-alerts list outlives its last update, and its length (also the change points').
    heartbeat_ttl
        Seconds a heartbeat counts: workers beat more often; a silent worker disappears.
    copy_profiles
        Also keep each reference profile's bytes (DESIGN.md: Redis keeps a copy of the profiles).
    retry_seconds
        After a failed write, later writes only queue for this long before trying Redis again,
        so an outage costs the worker one failed connection per interval, not one per call.
    warn_seconds
        Least seconds between two warnings about Redis being unreachable.
    max_unsent
        Most key groups kept while Redis is unreachable; the oldest are dropped beyond it.
    """

    def __init__(
        self,
        redis_url: str,
        prefix: str = "driftline",
        *,
        window_ttl: int = 86_400,
        recent_ttl: int = 7 * 86_400,
        recent_cap: int = 100,
        heartbeat_ttl: int = 30,
        copy_profiles: bool = True,
        retry_seconds: float = 1.0,
        warn_seconds: float = 60.0,
        max_unsent: int = 10_000,
    ) -> None:
        self.url = redis_url
        self.prefix = prefix
        self.window_ttl, self.recent_ttl, self.recent_cap, self.heartbeat_ttl = window_ttl, recent_ttl, recent_cap, heartbeat_ttl
        self.copy_profiles = copy_profiles
        self.retry_seconds, self.warn_seconds, self.max_unsent = retry_seconds, warn_seconds, max_unsent
        # No client-side retries: a failed write is kept and resent by the next call instead of
        # stalling the worker's transaction loop.
        self.client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=0.5, socket_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )
        self._unsent: dict[tuple, Write] = {}
        self._retry_at = 0.0
        self._warned_at = -float("inf")
        self._down = False
        self.dropped = 0
        """Key groups dropped: more than ``max_unsent`` waited for Redis, or Redis refused them."""

    def _key(self, spec: KeySpec, **parts: str) -> str:
        return spec.key(self.prefix, **parts)

    # -- writes -----------------------------------------------------------------------------------

    def evaluation(self, evaluation: Evaluation, policy: PolicyConfig | None = None) -> None:
        """Mirror the latest evaluation of a model/version/segment: window, statistics, change points.

        ``policy`` resolves the thresholds of tests that carry none (drift tests); pass the model's
        (``MonitorConfig.policy``) so each test's ratio to its threshold is the one alerting uses.
        """
        key, policy = evaluation.key, policy or PolicyConfig()
        model, version, segment = key.model_id, key.model_version, segment_key(key.segment)
        parts = {"model": model, "version": version, "segment": segment}
        now = time.time()
        window = {
            "model_id": model,
            "model_version": version,
            "segment": dict(key.segment),
            "start": _rfc3339(evaluation.start),
            "end": _rfc3339(evaluation.end),
            "event_count": evaluation.event_count,
            "change_points": evaluation.change_points,
            "evaluated_at": _rfc3339(now),
        }
        features = {name: {"statistics": values, "tests": []} for name, values in evaluation.statistics.items()}
        for result in evaluation.results:
            entry = features.setdefault(result.feature or "(model)", {"statistics": {}, "tests": []})
            entry["tests"].append(_test(result, policy.threshold_for(result)))
        for entry in features.values():
            entry["worst_ratio"] = max((test["ratio"] for test in entry["tests"]), default=None)
        change_points = [
            _json({"model_version": version, "segment": dict(key.segment), "feature": feature,
                   "window_start": window["start"], "window_end": window["end"]})
            for feature in reversed(evaluation.change_points)  # read newest first, in feature order
        ]  # fmt: skip
        window_json = _json(window)
        features_json = {name: _json(entry) for name, entry in features.items()}

        def write(pipe: Pipeline) -> None:
            window_key, statistics_key = self._key(WINDOW, **parts), self._key(STATISTICS, **parts)
            pipe.set(window_key, window_json, ex=self.window_ttl)
            pipe.delete(statistics_key)
            if features_json:
                pipe.hset(statistics_key, mapping=features_json)
                pipe.expire(statistics_key, self.window_ttl)
            self._index_segment(pipe, model, f"{version}:{segment}", now)

        def push_change_points(pipe: Pipeline) -> None:
            list_key = self._key(CHANGE_POINTS, model=model)
            pipe.lpush(list_key, *change_points)
            pipe.ltrim(list_key, 0, self.recent_cap - 1)
            pipe.expire(list_key, self.window_ttl)

        writes = {("evaluation", model, version, segment): write}
        if change_points:
            writes[("change_points", model, version, segment, evaluation.end)] = push_change_points
        self._send(writes)

    def alerts(self, events: list[dict]) -> None:
        """Mirror alert events: a firing event opens its alert, a resolved one closes it; all go to the recent list.

        Entries of open alerts have no TTL: an alert is open until it resolves. After Redis lost its
        data, a worker heals the open alerts by passing ``AlertPolicy.open_alerts`` here once.
        """
        writes: dict[tuple, Write] = {}
        for event in events:
            model, alert_id, firing = event["model_id"], event["alert_id"], event["status"] == "firing"
            open_key, recent_key, event_json = self._key(OPEN_ALERTS, model=model), self._key(RECENT_ALERTS, model=model), _json(event)

            def update_open(pipe: Pipeline, model: str = model, alert_id: str = alert_id, firing: bool = firing,
                            open_key: str = open_key, event_json: bytes = event_json) -> None:  # fmt: skip
                if firing:
                    pipe.hset(open_key, alert_id, event_json)
                else:
                    pipe.hdel(open_key, alert_id)
                pipe.zadd(self._key(MODELS), {model: time.time()})

            def push_recent(pipe: Pipeline, recent_key: str = recent_key, event_json: bytes = event_json) -> None:
                pipe.lpush(recent_key, event_json)
                pipe.ltrim(recent_key, 0, self.recent_cap - 1)
                pipe.expire(recent_key, self.recent_ttl)

            writes[("open_alert", model, alert_id)] = update_open
            writes[("recent_alert", model, alert_id, event["status"])] = push_recent
        self._send(writes)

    def heartbeat(self, role: str, worker_id: str, info: dict) -> None:
        """Record that a worker is alive, with what it reports (``lag``, ``processed``, ...)."""
        now = time.time()
        record = _json({"role": role, "worker_id": worker_id, "at": _rfc3339(now), "info": info})

        def write(pipe: Pipeline) -> None:
            workers = self._key(WORKERS)
            pipe.set(self._key(HEARTBEAT, role=role, worker_id=worker_id), record, ex=self.heartbeat_ttl)
            pipe.zadd(workers, {f"{role}:{worker_id}": now})
            pipe.zremrangebyscore(workers, "-inf", now - self.heartbeat_ttl)
            pipe.expire(workers, self.heartbeat_ttl)

        self._send({("heartbeat", role, worker_id): write})

    def reference(self, profile: ReferenceProfile) -> None:
        """Mirror a summary of a model version's reference profile (and its bytes if ``copy_profiles``)."""
        model, version = profile.model_id, profile.model_version
        summary = _json(_reference_summary(profile))
        data = profile.to_bytes() if self.copy_profiles else None

        def write(pipe: Pipeline) -> None:
            pipe.hset(self._key(REFERENCE, model=model), version, summary)
            if data is not None:
                pipe.hset(self._key(PROFILE, model=model), version, data)
            pipe.zadd(self._key(MODELS), {model: time.time()})

        self._send({("reference", model, version): write})

    def detector_states(self, model_id: str, version: str, segment: Segment, states: dict[str, dict]) -> None:
        """Mirror the states of a segment's detectors, replacing the previous ones."""
        segment_text = segment_key(segment)
        key = self._key(DETECTORS, model=model_id, version=version, segment=segment_text)
        states_json = {name: _json(state) for name, state in states.items()}

        def write(pipe: Pipeline) -> None:
            pipe.delete(key)
            if states_json:
                pipe.hset(key, mapping=states_json)
                pipe.expire(key, self.window_ttl)
            self._index_segment(pipe, model_id, f"{version}:{segment_text}", time.time())

        self._send({("detectors", model_id, version, segment_text): write})

    def performance(self, evaluation: PerformanceEvaluation | CoverageEvaluation, detectors: dict[str, dict] | None = None) -> None:
        """Mirror the latest performance window (with its error-stream ``detectors``' states) or coverage judgement of a key."""
        key = evaluation.key
        model, version, segment = key.model_id, key.model_version, segment_key(key.segment)
        window = {"start": _rfc3339(evaluation.start), "end": _rfc3339(evaluation.end)}
        if isinstance(evaluation, CoverageEvaluation):
            field = "coverage"
            entry = {**window, "predicted": evaluation.predicted, "labelled": evaluation.labelled, "coverage": evaluation.coverage}
        else:
            field = "window"
            entry = {
                **window, "label_count": evaluation.label_count, "metrics": evaluation.metrics, "reference": evaluation.reference,
                "tests": [{**_test(result, PolicyConfig().threshold_for(result)), "feature": result.feature} for result in evaluation.results],
                "detections": evaluation.detections, "detectors": detectors or {},
            }  # fmt: skip
        entry_json = _json(entry)

        def write(pipe: Pipeline) -> None:
            performance_key = self._key(PERFORMANCE, model=model, version=version, segment=segment)
            pipe.hset(performance_key, field, entry_json)
            pipe.expire(performance_key, self.window_ttl)
            self._index_segment(pipe, model, f"{version}:{segment}", time.time())

        self._send({("performance", field, model, version, segment): write})

    def _index_segment(self, pipe: Pipeline, model: str, member: str, now: float) -> None:
        segments = self._key(SEGMENTS, model=model)
        pipe.zadd(segments, {member: now})
        pipe.zremrangebyscore(segments, "-inf", now - self.window_ttl)
        pipe.expire(segments, self.window_ttl)
        pipe.zadd(self._key(MODELS), {model: now})

    def _send(self, writes: dict[tuple, Write]) -> None:
        for group, write in writes.items():
            self._unsent.pop(group, None)  # re-inserted last: groups are applied in write order
            self._unsent[group] = write
        while len(self._unsent) > self.max_unsent:
            del self._unsent[next(iter(self._unsent))]
            self.dropped += 1
        if not self._unsent or time.monotonic() < self._retry_at:
            return
        pipe = self.client.pipeline(transaction=True)
        for write in self._unsent.values():
            write(pipe)
        try:
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._retry_at = time.monotonic() + self.retry_seconds
            self._down = True
            self._warn(
                "Redis mirror at %s is unavailable (%s); %d key groups are kept and sent when it is back "
                "(events and alerts are not affected: Redis is only the inspection mirror)",
                self.url, exc, len(self._unsent),
            )  # fmt: skip
            return
        except redis.RedisError as exc:
            # Redis answered and refused (out of memory, a key of another type): resending would fail again.
            self.dropped += len(self._unsent)
            self._warn("Redis mirror at %s refused the writes (%s); %d key groups dropped", self.url, exc, len(self._unsent))
        else:
            if self._down:
                log.info("Redis mirror at %s is back; %d key groups sent", self.url, len(self._unsent))
                self._down = False
        finally:
            pipe.reset()
        self._unsent.clear()

    def _warn(self, message: str, *args: object) -> None:
        if time.monotonic() - self._warned_at >= self.warn_seconds:
            self._warned_at = time.monotonic()
            log.warning(message, *args)

    # -- reads ------------------------------------------------------------------------------------

    def model_state(self, model_id: str, version: str | None = None) -> dict[str, Any]:
        """Everything the mirror holds about a model (one version if given), plus the worker heartbeats.

        Keys: ``model_id``; ``windows`` (latest window per version/segment, each with ``features``,
        ``detectors`` and ``performance``); ``open_alerts`` and ``recent_alerts`` (newest first); ``change_points``;
        ``references`` (version → summary); ``workers``; ``known_models``. Raises
        :class:`MirrorUnavailable` when Redis cannot be read.
        """
        try:
            return self._model_state(model_id, version)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MirrorUnavailable(
                f"Redis at {self.url} is not reachable ({exc}); start it with `driftline stack up` "
                "or point DRIFTLINE_REDIS at the mirror"
            ) from None

    def _model_state(self, model_id: str, version: str | None) -> dict[str, Any]:
        members = [m.decode() for m in self.client.zrange(self._key(SEGMENTS, model=model_id), 0, -1)]
        if version is not None:
            members = [m for m in members if m.split(":", 1)[0] == version]
        pipe = self.client.pipeline(transaction=False)
        for member in members:
            member_version, segment = member.split(":", 1)
            parts = {"model": model_id, "version": member_version, "segment": segment}
            pipe.get(self._key(WINDOW, **parts))
            pipe.hgetall(self._key(STATISTICS, **parts))
            pipe.hgetall(self._key(DETECTORS, **parts))
            pipe.hgetall(self._key(PERFORMANCE, **parts))
        pipe.hgetall(self._key(OPEN_ALERTS, model=model_id))
        pipe.lrange(self._key(RECENT_ALERTS, model=model_id), 0, -1)
        pipe.lrange(self._key(CHANGE_POINTS, model=model_id), 0, -1)
        pipe.hgetall(self._key(REFERENCE, model=model_id))
        pipe.zrange(self._key(WORKERS), 0, -1)
        pipe.zrange(self._key(MODELS), 0, -1)
        replies = pipe.execute()
        open_alerts, recent, change_points, references, workers, models = replies[4 * len(members) :]

        windows = []
        for index, member in enumerate(members):
            window, statistics, detectors, performance = replies[4 * index : 4 * index + 4]
            if window is None and not detectors and not performance:
                continue  # expired since the index was read
            entry = orjson.loads(window) if window is not None else {}
            entry.setdefault("model_version", member.split(":", 1)[0])
            entry["segment_key"] = member.split(":", 1)[1]
            entry["features"] = {name.decode(): orjson.loads(value) for name, value in statistics.items()}
            entry["detectors"] = {name.decode(): orjson.loads(value) for name, value in detectors.items()}
            entry["performance"] = {name.decode(): orjson.loads(value) for name, value in performance.items()}
            windows.append(entry)
        windows.sort(key=lambda w: (w["model_version"], w["segment_key"]))

        def of_version(records: Iterable[dict]) -> list[dict]:
            return [r for r in records if version is None or r["model_version"] == version]

        heartbeat_keys = [self._key(HEARTBEAT, role=role, worker_id=worker) for role, worker in (m.decode().split(":", 1) for m in workers)]
        heartbeats = self.client.mget(heartbeat_keys) if heartbeat_keys else []
        return {
            "model_id": model_id,
            "windows": windows,
            "open_alerts": sorted(of_version(map(orjson.loads, open_alerts.values())), key=lambda a: (a["window"]["start"], a["alert_id"])),
            "recent_alerts": of_version(map(orjson.loads, recent)),
            "change_points": of_version(map(orjson.loads, change_points)),
            "references": {v.decode(): orjson.loads(s) for v, s in references.items() if version is None or v.decode() == version},
            "workers": [orjson.loads(beat) for beat in heartbeats if beat is not None],
            "known_models": [m.decode() for m in models],
        }

    def reference_profile(self, model_id: str, version: str) -> ReferenceProfile | None:
        """The copy of a reference profile kept with ``copy_profiles``, if any."""
        data = self.client.hget(self._key(PROFILE, model=model_id), version)
        return None if data is None else ReferenceProfile.from_bytes(data)

    def close(self) -> None:
        self.client.close()


def _test(result: TestResult, threshold: float) -> dict[str, Any]:
    return {
        "kind": result.kind,
        "statistic": result.statistic,
        "value": result.value,
        "threshold": threshold,
        "p_value": result.p_value,
        "ratio": result.value / threshold,
    }


def _reference_summary(profile: ReferenceProfile) -> dict[str, Any]:
    window = profile.profile
    features: dict[str, dict[str, Any]] = {}
    for name, sketch in window.numeric.items():
        features[name] = {"type": "numeric", "bins": int(sketch.edges.size - 1), "mean": sketch.mean, "std": sketch.std}
    for name, sketch in window.categorical.items():
        features[name] = {"type": "categorical", "categories": len(sketch.categories)}
    return {
        "model_id": profile.model_id,
        "model_version": profile.model_version,
        "source": profile.source,
        "created_at": _rfc3339(profile.created_at),
        "row_count": profile.row_count,
        "n_bins": profile.n_bins,
        "features": dict(sorted(features.items())),
        "outputs": [name for name, sketch in (("score", window.score), ("class", window.predicted_class)) if sketch is not None],
    }
