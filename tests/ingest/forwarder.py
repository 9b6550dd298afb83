"""An ingest worker whose handler forwards accepted events to ``<prefix>.accepted``.

Run as a subprocess by the ingest tests, so that they can kill -9 it mid-stream:
``python -m tests.ingest.forwarder BOOTSTRAP PREFIX``. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import signal
import sys

import orjson

from stream.decode import EventKind, Limits
from stream.ingest import IngestWorker
from stream.settings import StackSettings, TopicSettings

KNOWN_MODELS = frozenset({"fraud-detector", "churn"})
# Inference registers new models up to a cap; labels only accept known models: both reason codes occur.
LIMITS = {
    EventKind.INFERENCE: Limits(known_models=KNOWN_MODELS, unknown_model_policy="register", max_models=3),
    EventKind.LABEL: Limits(known_models=KNOWN_MODELS, unknown_model_policy="deadletter"),
}


def main(bootstrap: str, prefix: str) -> None:
    accepted = f"{prefix}.accepted"

    def forward(topic: str, partition: int, events: list[dict]) -> list[tuple[str, bytes, bytes]]:
        return [(accepted, event["prediction_id"].encode(), orjson.dumps({"topic": topic, **event})) for event in events]

    worker = IngestWorker(StackSettings(external_kafka=bootstrap), TopicSettings(prefix=prefix), forward, limits=LIMITS, batch_size=300)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    stats = worker.run()
    print(orjson.dumps({"consumed": stats.consumed, "handed_on": stats.handed_on, "deadlettered": stats.deadlettered}).decode(), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
