"""The producer helper for model servers: log predictions and labels to driftline without blocking.

>>> logger = PredictionLogger("127.0.0.1:9092", model_id="churn", model_version="7")  # doctest: +SKIP
>>> logger.log_prediction("p-1", {"age": 41, "plan": "pro"}, {"score": 0.82}, latency_ms=12.5)  # doctest: +SKIP
>>> logger.close()  # doctest: +SKIP

``log_*`` never blocks the serving path: events go to librdkafka's bounded in-memory queue
and are sent in compressed batches by its background thread, with the idempotent producer
(no duplicates from retries). When the queue is full — the broker is unreachable or slower
than the model — the event is dropped and counted (``stats["dropped"]``), never waited for.
Events librdkafka could not deliver within ``delivery_timeout_ms`` are counted as ``failed``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from stream.settings import TopicSettings

SCHEMA_VERSION = "1.0"


class PredictionLogger:
    """Publishes inference and label events, keyed by prediction_id, to the driftline topics."""

    def __init__(
        self,
        bootstrap_servers: str,
        model_id: str,
        model_version: str,
        *,
        topics: TopicSettings | None = None,
        max_buffered_events: int = 100_000,
        delivery_timeout_ms: int = 120_000,
        linger_ms: int = 20,
        compression: str = "zstd",
        extra_config: dict[str, Any] | None = None,
    ):
        self.model_id = model_id
        self.model_version = model_version
        topics = topics or TopicSettings()
        self.inference_topic = topics.name("inference")
        self.labels_topic = topics.name("labels")
        self._producer = Producer({
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "compression.type": compression,
            "queue.buffering.max.messages": max_buffered_events,
            "delivery.timeout.ms": delivery_timeout_ms,
            "log_level": 3,
            **(extra_config or {}),
        })
        self._counts = {"sent": 0, "delivered": 0, "failed": 0, "dropped": 0}
        self._lock = threading.Lock()  # delivery callbacks run on the polling thread
        self.last_error: KafkaError | None = None

    def log_prediction(
        self,
        prediction_id: str,
        features: dict[str, Any],
        prediction: Any = None,
        *,
        timestamp: float | None = None,
        latency_ms: float | None = None,
        error: str | None = None,
        segment: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Queue one inference event; returns False if it was dropped because the buffer is full."""
        event: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "prediction_id": prediction_id,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "timestamp": time.time() if timestamp is None else timestamp,
            "features": features,
        }
        if prediction is not None:
            event["prediction"] = prediction
        if latency_ms is not None:
            event["latency_ms"] = latency_ms
        if error is not None:
            event["status"], event["error"] = "error", error
        if segment:
            event["segment"] = segment
        if metadata:
            event["metadata"] = metadata
        return self.send_raw(self.inference_topic, prediction_id, orjson.dumps(event))

    def log_label(self, prediction_id: str, label: Any, *, timestamp: float | None = None) -> bool:
        """Queue one label event for an earlier prediction."""
        event = {
            "schema_version": SCHEMA_VERSION,
            "prediction_id": prediction_id,
            "label": label,
            "timestamp": time.time() if timestamp is None else timestamp,
            "model_id": self.model_id,
        }
        return self.send_raw(self.labels_topic, prediction_id, orjson.dumps(event))

    def send_raw(self, topic: str, key: str | bytes | None, value: bytes) -> bool:
        """Queue already-serialized bytes (used by ``driftline produce`` to replay files as they are)."""
        try:
            self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
        except BufferError:
            with self._lock:
                self._counts["dropped"] += 1
            self._producer.poll(0)
            return False
        with self._lock:
            self._counts["sent"] += 1
        self._producer.poll(0)  # serve delivery callbacks; never waits
        return True

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        with self._lock:
            if error is None:
                self._counts["delivered"] += 1
            else:
                self._counts["failed"] += 1
                self.last_error = error

    @property
    def stats(self) -> dict[str, int]:
        """sent (queued), delivered, failed (undeliverable in time) and dropped (buffer full); ``pending`` is still queued."""
        with self._lock:
            return {**self._counts, "pending": len(self._producer)}

    def flush(self, timeout: float = 30.0) -> int:
        """Wait up to ``timeout`` s for queued events; returns how many are still queued."""
        return self._producer.flush(timeout)

    def close(self, timeout: float = 30.0) -> dict[str, int]:
        """Flush on shutdown and return the final counts."""
        self.flush(timeout)
        return self.stats

    def __enter__(self) -> "PredictionLogger":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
