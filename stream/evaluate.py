"""The evaluate worker: partials in, alerts out, exactly once.

A consumer group on ``<prefix>.partials`` (``read_committed``). Every record of a model — partials
and progress, keyed by ``model_id`` — lands in one partials partition, so one worker owns each model.
Per model a ``WindowAssembly`` merges the partials and decides when a base window is complete; the
model's ``ModelEvaluator`` then closes it, exactly as ``driftline replay`` does.

Each batch is one Kafka transaction: the alerts (keyed by ``model_id``), the checkpoint of every
model the batch changed (compacted ``<prefix>.evaluate-state``, key ``model_id``, written to the
state partition numbered like the model's partials partition: assembly + evaluator state) and the
input offsets commit together. On assignment the worker restores its models from that state
partition, so after a crash it resumes exactly where the last commit left off: a read_committed
consumer of the alerts sees each alert once.

Models whose config sets a ``task`` also get their outcomes from ``<prefix>.outcomes`` (the label
join's output, keyed by ``model_id`` with the partials' partition count, so a model's outcomes land
in the partition numbered like its partials and the same worker owns both). Their
``PerformanceMonitor`` takes the outcomes (and the join's ``join_evictions`` records, which alert on
a full join store) and every closed base window's prediction count, and its state is the third part
of the model's checkpoint.

The optional mirror (``stream.mirror.RedisMirror``) is written after each commit, and its failures
are logged, never fatal: Redis is for inspection, Kafka is the source of truth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from detectors._serde import pack, unpack
from detectors.evaluator import Evaluation, ModelEvaluator
from detectors.performance import CoverageEvaluation, EvictionEvaluation, PerformanceEvaluation, PerformanceMonitor, is_join_evictions
from detectors.policy import PolicyConfig
from detectors.profile import ReferenceProfile
from stream.assembly import WindowAssembly
from stream.heartbeat import Heartbeat
from stream.models import MonitoredModel
from stream.partials import WindowPartial, decode_record
from stream.settings import StackSettings, TopicSettings
from stream.state_topic import read_latest
from stream.transaction import Output, TransactionalProducer, group_consumer, records

if TYPE_CHECKING:
    from detectors.windows import ClosedWindow
    from stream.metrics import EvaluateMetrics

log = logging.getLogger("driftline.evaluate")

HEARTBEAT_SECONDS = 5.0
_OUTCOME_FIELDS = ("model_id", "model_version", "prediction", "label", "prediction_time", "label_time")


class Mirror(Protocol):
    def evaluation(self, evaluation: Evaluation, policy: PolicyConfig | None = None) -> None: ...
    def alerts(self, events: list[dict]) -> None: ...
    def heartbeat(self, role: str, worker_id: str, info: dict) -> None: ...
    def reference(self, profile: ReferenceProfile) -> None: ...
    def detector_states(self, model_id: str, version: str, segment: dict, states: dict[str, dict]) -> None: ...
    def performance(self, evaluation: PerformanceEvaluation | CoverageEvaluation, detectors: dict[str, dict] | None = None) -> None: ...


class _Model:
    """A model this worker owns: where its records live, its assembly, its evaluator and its performance monitor."""

    def __init__(
        self, partition: int, assembly: WindowAssembly, evaluator: ModelEvaluator, performance: PerformanceMonitor | None
    ) -> None:
        self.partition = partition
        self.assembly = assembly
        self.evaluator = evaluator
        self.performance = performance

    def checkpoint(self) -> bytes:
        blobs = [self.assembly.to_bytes(), self.evaluator.to_bytes()]
        if self.performance is not None:
            blobs.append(self.performance.to_bytes())
        return pack("EvaluateCheckpoint", {}, blobs)


class EvaluateWorker:
    """Merges partials, evaluates complete windows and publishes alerts, one transaction per batch."""

    def __init__(
        self,
        stack: StackSettings,
        topics: TopicSettings,
        models: Mapping[str, MonitoredModel],
        *,
        group_id: str | None = None,
        worker_id: str = "0",
        idle_seconds: float = 60.0,
        batch_size: int = 500,
        poll_timeout: float = 0.2,
        mirror: Mirror | None = None,
        metrics: EvaluateMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.models = models
        self.metrics = metrics
        self.worker_id = worker_id
        self.idle_seconds = idle_seconds
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.mirror = mirror
        self.bootstrap = stack.kafka_bootstrap
        self.group_id = group_id or f"{topics.prefix}.evaluate"
        self.inference_topic = topics.name("inference")
        self.partials_topic = topics.name("partials")
        self.outcomes_topic = topics.name("outcomes")
        self.alerts_topic = topics.name("alerts")
        self.state_topic = topics.name("evaluate-state")
        self.counts: Counter[str] = Counter()
        """Committed work: records, evaluations, alerts, undecodable and unmonitored records."""
        self._clock = clock
        self._owned: dict[str, _Model] = {}
        self._assigned: set[int] = set()
        self._source_partitions = 0
        self._unmirrored: set[str] = set()
        """Models loaded or restored since the mirror last got their reference, open alerts and detectors."""
        self._stop = threading.Event()
        self._consumer = group_consumer(stack.kafka_bootstrap, self.group_id, "evaluate", worker_id)
        self._heartbeat = Heartbeat(mirror, "evaluate", worker_id, self._consumer, lag_sink=metrics, interval=HEARTBEAT_SECONDS, clock=clock)
        self._producer = TransactionalProducer(stack.kafka_bootstrap, f"{self.group_id}.{worker_id}")

    def stop(self) -> None:
        """Finish the current batch, commit it, and return from ``run``."""
        self._stop.set()

    def run(self) -> Counter[str]:
        self._producer.init()
        self._source_partitions = self._count_source_partitions()
        wants_outcomes = any(model.config.performance is not None for model in self.models.values())
        topics = [self.partials_topic, *([self.outcomes_topic] if wants_outcomes else [])]
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)
        try:
            while not self._stop.is_set():
                self._process(self._consumer.consume(self.batch_size, timeout=self.poll_timeout))
        finally:
            self._consumer.close()
            self._producer.flush(30)
        return self.counts

    def _count_source_partitions(self) -> int:
        metadata = self._consumer.list_topics(self.inference_topic, timeout=30).topics[self.inference_topic]
        if metadata.error is not None:
            raise RuntimeError(f"cannot read the partitions of {self.inference_topic}: {metadata.error}")
        return len(metadata.partitions)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        now = self._clock()
        self._assigned |= {position.partition for position in partitions}
        for position in partitions:
            if position.topic != self.partials_topic:  # its outcomes partition shares the number and the state
                continue
            for key, value in read_latest(self.bootstrap, self.state_topic, position.partition).items():
                model = self.models.get(key.decode())
                if model is None:  # no longer configured
                    continue
                assembly_bytes, evaluator_bytes, *performance_bytes = unpack("EvaluateCheckpoint", value)[1]
                assembly = WindowAssembly.from_bytes(assembly_bytes, model.layout, self._source_partitions, self.idle_seconds, now)
                performance = model.restore_performance(performance_bytes[0]) if performance_bytes else model.new_performance()
                self._owned[model.model_id] = _Model(position.partition, assembly, model.restore_evaluator(evaluator_bytes), performance)
                self._unmirrored.add(model.model_id)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {position.partition for position in partitions}
        self._assigned -= revoked
        if self.metrics is not None:
            self.metrics.forget({model_id for model_id, owned in self._owned.items() if owned.partition in revoked})
        self._owned = {model_id: owned for model_id, owned in self._owned.items() if owned.partition not in revoked}

    def _process(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        now = self._clock()
        positions: dict[tuple[str, int], int] = {}
        changed: set[str] = set()
        outcomes: dict[str, list[dict]] = {}
        for message in records(messages):
            if message.partition() not in self._assigned:  # revoked while the batch was in flight: the new owner re-reads it
                continue
            positions[(message.topic(), message.partition())] = message.offset() + 1
            model_id = self._add_outcome(message, now, outcomes) if message.topic() == self.outcomes_topic else self._apply(message, now)
            if model_id is not None:
                changed.add(model_id)
        performance: list[PerformanceEvaluation | CoverageEvaluation | EvictionEvaluation] = []
        for model_id, batch in outcomes.items():
            monitor = self._owned[model_id].performance
            assert monitor is not None  # _add_outcome keeps outcomes of models with a task only
            performance += monitor.update(batch)
        outputs: list[Output] = []
        evaluations: list[Evaluation] = []
        closed: list[tuple[str, ClosedWindow]] = []
        for model_id, owned in self._owned.items():
            for window in owned.assembly.pop_complete(now):
                changed.add(model_id)
                closed.append((model_id, window))
                if owned.performance is not None:
                    performance += owned.performance.close_window(window.key, window.start, window.end, window.profile.event_count)
                evaluation = owned.evaluator.close_window(window.key, window.start, window.end, window.profile)
                if evaluation is None:
                    continue
                evaluations.append(evaluation)
                outputs += [Output(self.alerts_topic, model_id.encode(), orjson.dumps(alert)) for alert in evaluation.alerts]
        performance_alerts = [alert for evaluation in performance for alert in evaluation.alerts]
        performance = [evaluation for evaluation in performance if not isinstance(evaluation, EvictionEvaluation)]  # alerts only: no figures to mirror or export
        outputs += [Output(self.alerts_topic, alert["model_id"].encode(), orjson.dumps(alert)) for alert in performance_alerts]
        outputs += [
            Output(self.state_topic, model_id.encode(), self._owned[model_id].checkpoint(), self._owned[model_id].partition)
            for model_id in sorted(changed)
        ]
        if not outputs and not positions:
            self._mirror([], [])
            self._beat()
            return
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in positions.items()]
        committing = time.perf_counter()
        committed = self._producer.commit(outputs, offsets, self._consumer)
        if self.metrics is not None:
            self.metrics.transaction(time.perf_counter() - committing, committed)
        if not committed:
            self._rewind()
            return
        alerts = [alert for evaluation in evaluations for alert in evaluation.alerts] + performance_alerts
        self.counts.update(
            records=len(messages), evaluations=len(evaluations), alerts=len(alerts),
            outcomes=sum(not is_join_evictions(record) for batch in outcomes.values() for record in batch),
            performance_evaluations=len(performance),
        )  # fmt: skip
        self._observe(len(messages), closed, evaluations, performance, started)
        self._mirror(evaluations, alerts, performance)
        self._beat()

    def _apply(self, message: Message, now: float) -> str | None:
        """Merge one partials record into its model's assembly; returns the model it changed."""
        try:
            record = decode_record(message.value())
        except (ValueError, KeyError, TypeError) as exc:
            self.counts["undecodable"] += 1
            log.warning("skipping an undecodable record at %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), exc)
            return None
        model_id = record.key.model_id if isinstance(record, WindowPartial) else record.model_id
        model = self.models.get(model_id)
        if model is None:
            self.counts["unmonitored"] += 1
            return None
        owned = self._own(model, message.partition(), now)
        if isinstance(record, WindowPartial):
            owned.assembly.add_partial(record, now)
        else:
            owned.assembly.add_progress(record, now)
        return model_id

    def _add_outcome(self, message: Message, now: float, batches: dict[str, list[dict]]) -> str | None:
        """Queue one outcomes record for its model's performance monitor; returns the model it changes."""
        try:
            outcome = orjson.loads(message.value())
            readable = is_join_evictions(outcome) or type(outcome) is dict and all(name in outcome for name in _OUTCOME_FIELDS) and all(
                isinstance(outcome[name], (int, float)) for name in ("prediction_time", "label_time")
            )
        except (orjson.JSONDecodeError, TypeError):
            readable = False
        if not readable:
            self.counts["undecodable"] += 1
            log.warning("skipping an unreadable outcome at %s[%d]@%d", message.topic(), message.partition(), message.offset())
            return None
        model = self.models.get(outcome["model_id"])
        if model is None or model.config.performance is None:
            self.counts["unmonitored"] += 1
            return None
        self._own(model, message.partition(), now)
        batches.setdefault(model.model_id, []).append(outcome)
        return model.model_id

    def _own(self, model: MonitoredModel, partition: int, now: float) -> _Model:
        """The model's state, new if this worker has none (first record of the model)."""
        owned = self._owned.get(model.model_id)
        if owned is None:
            assembly = WindowAssembly(model.layout, self._source_partitions, self.idle_seconds, now)
            owned = self._owned[model.model_id] = _Model(partition, assembly, model.new_evaluator(), model.new_performance())
            self._unmirrored.add(model.model_id)
        return owned

    def _rewind(self) -> None:
        """After an aborted transaction: back to the committed offsets and the state committed with them."""
        assigned = self._consumer.assignment()
        self._owned.clear()
        self._on_assign(self._consumer, assigned)
        for position in self._consumer.committed(assigned, timeout=30):
            offset = position.offset if position.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(position.topic, position.partition, offset))

    def _observe(
        self, records: int, closed: list[tuple[str, ClosedWindow]], evaluations: list[Evaluation],
        performance: Sequence[PerformanceEvaluation | CoverageEvaluation], started: float,
    ) -> None:  # fmt: skip
        """Metrics of a committed batch."""
        if self.metrics is None:
            return
        self.metrics.batch(records, time.perf_counter() - started)
        self.metrics.evaluations(evaluations)  # first: it picks the features the window figures show
        self.metrics.windows_closed(closed, time.time())
        self.metrics.late_events({model_id: owned.assembly.late_events for model_id, owned in self._owned.items()})
        self.metrics.performance(performance)

    def _mirror(
        self, evaluations: list[Evaluation], alerts: list[dict], performance: Sequence[PerformanceEvaluation | CoverageEvaluation] = ()
    ) -> None:
        """Mirror committed work; and, for models just loaded or restored, what the mirror may lack.

        A restored model's open alerts, detector states and reference are written in full, so a
        mirror that lost its data (or a worker that took over the model) is whole again without
        waiting for the next alert of each.
        """
        if self.mirror is None:
            return
        try:
            for evaluation in evaluations:
                evaluator = self._owned[evaluation.key.model_id].evaluator
                self.mirror.evaluation(evaluation, evaluator.config.policy)
                key = evaluation.key
                self.mirror.detector_states(key.model_id, key.model_version, dict(key.segment), evaluator.detector_states().get(key, {}))
            for evaluation in performance:
                monitor = self._owned[evaluation.key.model_id].performance
                assert monitor is not None  # only models with a monitor have performance evaluations
                self.mirror.performance(evaluation, monitor.detector_states().get(evaluation.key))
            if alerts:
                self.mirror.alerts(alerts)
            for model_id in sorted(self._unmirrored & self._owned.keys()):
                evaluator = self._owned[model_id].evaluator
                self.mirror.reference(evaluator.reference)
                self.mirror.alerts(evaluator.policy.open_alerts)
                monitor = self._owned[model_id].performance
                if monitor is not None:
                    self.mirror.alerts(monitor.open_alerts)
                for key, states in evaluator.detector_states().items():
                    self.mirror.detector_states(key.model_id, key.model_version, dict(key.segment), states)
            self._unmirrored.clear()
        except Exception:  # noqa: BLE001 - Redis is for inspection: its failures must not stop evaluation
            log.exception("mirror write failed; alerts are committed to Kafka regardless")

    def _beat(self) -> None:
        self._heartbeat.beat(lambda: {
            "models": sorted(self._owned),
            "late_events": {model_id: owned.assembly.late_events for model_id, owned in self._owned.items()},
            **self.counts,
        })  # fmt: skip
