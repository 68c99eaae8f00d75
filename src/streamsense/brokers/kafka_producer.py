"""The Kafka producer: streamsense picks every partition, librdkafka batches and delivers.

The partition is computed here (Kafka's murmur2 for keys, round robin otherwise) and passed
explicitly, so placement does not depend on librdkafka's partitioner settings and matches
what Java clients and the self-hosted brokers do.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as KafkaClient

from streamsense.brokers.base import Headers, OutRecord
from streamsense.brokers.kafka_calls import CLOSE_TIMEOUT_S, FLUSH_TIMEOUT_S, close_within
from streamsense.brokers.kafka_common import REQUEST_TIMEOUT_S, to_error
from streamsense.brokers.partitioner import partition_for
from streamsense.errors import BrokerUnavailable, ConfigError, TopicNotFound


def producer_config(*, batch_size: int, linger_ms: float) -> dict[str, Any]:
    return {
        # Retries never duplicate or reorder records within a partition.
        "enable.idempotence": True,
        "linger.ms": max(linger_ms, 0.0),
        "batch.num.messages": max(1, min(batch_size, 1_000_000)),
        # A record not acknowledged within this fails its flush instead of waiting forever.
        "delivery.timeout.ms": 120_000,
    }


class KafkaProducer:
    def __init__(self, config: dict[str, Any], now_ms: Callable[[], int]) -> None:
        self._errors: list[KafkaError] = []
        self._errors_lock = threading.Lock()
        # Only failed deliveries are reported: no Python callback per successful record.
        self.client = KafkaClient(
            {**config, "on_delivery": self._delivered, "delivery.report.only.error": True}
        )
        self._counts: dict[str, int] = {}
        self._round_robin = itertools.count()
        self._now_ms = now_ms
        self._closed = False
        self.flush_timeout_s = FLUSH_TIMEOUT_S
        self.close_timeout_s = CLOSE_TIMEOUT_S
        self.reaper: threading.Thread | None = None  # finishes a close that took too long

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
        count = self._counts.get(topic)
        if count is None:
            count = self._counts[topic] = self._partition_count(topic)
        if partition is None:
            partition = (
                next(self._round_robin) % count if key is None else partition_for(key, count)
            )
        elif not 0 <= partition < count:
            raise ConfigError(f"topic {topic!r} has no partition {partition}")
        if timestamp is None:
            timestamp = self._now_ms()
        self._produce(topic, value, key, partition, timestamp, list(headers) if headers else None)

    def send_all(self, records: Iterable[OutRecord]) -> None:
        """``send`` for each record, with one clock reading for the lot: the hot path of
        a commit (a handful of records per event), so nothing is looked up twice."""
        now = self._now_ms()
        counts = self._counts
        produce = self.client.produce
        for topic, value, key, partition, timestamp, headers in records:
            count = counts.get(topic)
            if count is None:
                count = counts[topic] = self._partition_count(topic)
            if partition is None:
                partition = (
                    next(self._round_robin) % count if key is None else partition_for(key, count)
                )
            elif not 0 <= partition < count:
                raise ConfigError(f"topic {topic!r} has no partition {partition}")
            when = now if timestamp is None else timestamp
            listed: list[tuple[str, str | bytes | None]] | None = list(headers) if headers else None
            try:
                produce(topic, value, key, partition, timestamp=when, headers=listed)
            except (BufferError, KafkaException):
                # A full queue waits for room; a real failure is mapped (the slow path).
                self._produce(topic, value, key, partition, when, listed)

    def _produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int,
        timestamp: int,
        headers: list[tuple[str, str | bytes | None]] | None,
    ) -> None:
        while True:
            try:
                self.client.produce(
                    topic, value, key, partition, timestamp=timestamp, headers=headers
                )
                return
            except BufferError:
                # The local queue is full: wait for deliveries to make room (backpressure).
                self.client.poll(0.05)
            except KafkaException as error:
                raise to_error(error, f"producing to {topic!r}") from None

    def _partition_count(self, topic: str) -> int:
        """Asked through this client, which also learns the leaders before the first
        record (otherwise an idempotent producer's first delivery waits ~0.5 s)."""
        try:
            found = self.client.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics.get(topic)
        except KafkaException as error:
            raise to_error(error, f"reading metadata of {topic!r}") from None
        if found is None or found.error is not None:
            raise TopicNotFound(f"topic {topic!r} does not exist")
        return len(found.partitions)

    def flush(self) -> None:
        """Wait until every record sent so far is acknowledged (at most
        ``flush_timeout_s``); raise if any failed or is still on its way."""
        remaining = self.client.flush(self.flush_timeout_s)
        if remaining:
            raise BrokerUnavailable(
                f"{remaining} records still undelivered {self.flush_timeout_s:.0f} s into a flush"
            )
        errors = self.take_failed_deliveries()
        if errors:
            raise to_error(errors[0], f"delivering {len(errors)} records")

    def take_failed_deliveries(self) -> list[KafkaError]:
        with self._errors_lock:
            errors, self._errors = self._errors, []
        return errors

    def close(self, *, flush: bool = True, client: bool = True) -> None:
        """Flush, then close the client (either can be left out by the owner of a
        transactional producer), each within its limit: a client that does not close in
        time goes on closing in the background (kafka_calls.close_within)."""
        if self._closed:
            return
        self._closed = True
        try:
            if flush:
                self.flush()
        finally:
            if client:
                close_within(
                    self.client, self.client.close, self.close_timeout_s, "closing a producer"
                )

    def __enter__(self) -> KafkaProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            with self._errors_lock:
                self._errors.append(error)
