"""A faust app whose consumer reads committed records only.

The evaluate stage publishes alerts in Kafka transactions. faust-streaming 0.15.3 has no
setting for the consumer's isolation level: its aiokafka driver uses ``read_committed``
only under ``processing_guarantee="exactly_once"`` (faust/transport/drivers/aiokafka.py,
``_create_worker_consumer``), which the service does not use (FAUST.md: #177, #440).
So the worker consumer is created as usual and set to ``read_committed`` before it
starts: aborted alerts are never seen and committed ones only once their transaction is.
"""

from __future__ import annotations

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

READ_COMMITTED = "read_committed"


class ReadCommittedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its Fetcher in start(), which has not run yet.
        consumer._isolation_level = READ_COMMITTED
        return consumer


class ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    Consumer = ReadCommittedConsumer


class ReadCommittedApp(faust.App):
    """A faust app on the ``kafka://`` (aiokafka) transport with a ``read_committed`` consumer."""

    def _new_transport(self) -> TransportT:
        if self.conf.broker_consumer[0].scheme != "kafka":
            raise ValueError(f"the incident service needs a kafka:// broker url, got {self.conf.broker_consumer[0]}")
        return ReadCommittedTransport(self.conf.broker_consumer, self)
