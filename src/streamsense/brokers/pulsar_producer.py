"""The Pulsar producer: every record goes to its partition's own Pulsar topic
(``persistent://public/default/T-partition-N``), so placement is streamsense's choice:
Kafka's murmur2 of the key (brokers.partitioner), round robin without a key.

Batching is off: one message per stored entry is what makes the broker's entry index a
record's offset (see pulsar_offsets). Sends are asynchronous; ``flush`` waits for every
one and raises the first failure."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pulsar

from streamsense.brokers.base import Headers
from streamsense.brokers.partitioner import partition_for
from streamsense.brokers.pulsar_admin import partition_topic
from streamsense.brokers.pulsar_codec import message_fields
from streamsense.clock import Clock
from streamsense.errors import BrokerUnavailable, ConfigError

# How many sends may wait for the broker's answer per partition before send() blocks.
MAX_PENDING = 10_000


class PulsarProducer:
    def __init__(
        self, client: pulsar.Client, partitions: Callable[[str], int], clock: Clock
    ) -> None:
        self._client = client
        self._partitions = partitions  # topic -> partition count (TopicNotFound if none)
        self._clock = clock
        self._producers: dict[tuple[str, int], Any] = {}
        self._next: dict[str, int] = {}  # round robin for unkeyed records
        self._lock = threading.Lock()
        self._failure: Exception | None = None

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: Headers = (),
    ) -> None:
        count = self._partitions(topic)
        if partition is None:
            partition = partition_for(key, count) if key is not None else self._round_robin(topic)
        elif not 0 <= partition < count:
            raise ConfigError(f"topic {topic!r} has no partition {partition} (it has {count})")
        when = self._clock.now_ms() if timestamp is None else timestamp
        fields = message_fields(value, key, when, headers)
        self._producer(topic, partition).send_async(value or b"", self._sent, **fields)

    def flush(self) -> None:
        for producer in list(self._producers.values()):
            try:
                producer.flush()
            except pulsar.PulsarException as error:
                self._record_failure(error)
        with self._lock:
            failure, self._failure = self._failure, None
        if failure is not None:
            raise BrokerUnavailable(f"Pulsar did not store a record: {failure}") from failure

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for producer in list(self._producers.values()):
                producer.close()
            self._producers.clear()

    def __enter__(self) -> PulsarProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _producer(self, topic: str, partition: int) -> Any:
        key = (topic, partition)
        producer = self._producers.get(key)
        if producer is None:
            try:
                producer = self._client.create_producer(
                    partition_topic(topic, partition),
                    batching_enabled=False,
                    block_if_queue_full=True,
                    max_pending_messages=MAX_PENDING,
                    send_timeout_millis=30_000,
                )
            except pulsar.PulsarException as error:
                raise BrokerUnavailable(
                    f"cannot produce to {topic}[{partition}]: {error}"
                ) from error
            self._producers[key] = producer
        return producer

    def _round_robin(self, topic: str) -> int:
        count = self._partitions(topic)
        with self._lock:
            n = self._next.get(topic, 0)
            self._next[topic] = n + 1
        return n % count

    def _sent(self, result: Any, _message_id: Any) -> None:
        if result != pulsar.Result.Ok:
            self._record_failure(RuntimeError(str(result)))

    def _record_failure(self, error: Exception) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = error
