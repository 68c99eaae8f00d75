"""Apache Pulsar as a streamsense broker, through the ``pulsar-client`` package.

``open_broker("pulsar://host:port[?admin=http://host:port]")``: the binary protocol for
records, the admin REST API (default ``http://host:8080``) for topics and offsets.
scripts/pulsar.sh prints the whole URL.

How the contract in ``base`` maps onto Pulsar:

* A topic is a partitioned topic in ``public/default``; its TopicConfig is kept as topic
  properties. Records go to the partition's own Pulsar topic, chosen by streamsense
  (murmur2 of the key as Kafka's partitioner, round robin without), see pulsar_producer.
* Offsets are Kafka's 0, 1, 2, ... per partition: the broker's entry index
  (pulsar_offsets). Consumers read with readers at those offsets (pulsar_consumer).
* Groups: one owner per partition through failover subscriptions (pulsar_group).
  Committed offsets are properties of the group's subscription on each partition topic,
  stored by the broker with the subscription's cursor (durable, survives restarts); a
  member's commit also acknowledges cumulatively up to the last record it read, so the
  cursor follows and Pulsar can free what the group has consumed. (The property, not the
  cursor, is the committed offset: a commit may name an offset no message has yet.)
* ``commit_transaction`` is AT LEAST ONCE. Pulsar has transactions, and scripts/pulsar.sh
  turns the coordinator on, but the Python client (pulsar-client 3.x) has no transaction
  API. So outputs are written and flushed first, then the offsets are stored: a crash in
  between writes the outputs again when the input is replayed, and readers de-duplicate
  them by their source coordinates (as with Kafka's at-least-once mode).
  A group member's commit is fenced by ownership (a partition the broker made another
  member's is refused, as Kafka fences by generation); a commit made without membership
  has ``Transaction.expected`` checked against the stored offsets. Neither is one atomic
  step with the write: during the short overlap of a handover (pulsar_group) two owners
  can both commit, and at least once absorbs it.
* Retention: record by record through a log start offset that ``enforce_retention``
  moves, plus Pulsar's own retention policy for the storage (pulsar_retention).
  Compacted topics get Pulsar's compaction policy; readers read the full topic, so
  superseded records may still be seen (never a wrong latest value), as on Kafka.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlsplit

import pulsar

from streamsense.brokers.base import (
    OffsetReset,
    OutRecord,
    PartitionInfo,
    TopicConfig,
    TopicInfo,
    TopicPartition,
    Transaction,
)
from streamsense.brokers.pulsar_admin import PulsarAdmin
from streamsense.brokers.pulsar_commits import BackgroundOffsets
from streamsense.brokers.pulsar_consumer import PulsarConsumer
from streamsense.brokers.pulsar_offsets import Bounds, OffsetIndex
from streamsense.brokers.pulsar_producer import PulsarProducer
from streamsense.brokers.pulsar_retention import enforce, low_property, native_retention
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError, FencedError, TopicNotFound

log = logging.getLogger(__name__)
OFFSET_PROPERTY = "streamsense.offset"
_CONFIG = "streamsense.config."
# Admin calls made side by side (a topic's partitions, a commit's offsets).
ADMIN_THREADS = 4
# Pulsar compacts a topic once this much is waiting (its compaction policy).
COMPACTION_THRESHOLD_BYTES = 1 << 20


class PulsarBroker:
    """A Broker on Apache Pulsar. ``address`` is ``host:port[?admin=http://host:port]``."""

    def __init__(self, address: str, *, clock: Clock = SYSTEM_CLOCK) -> None:
        service, admin_url = _parse_address(address)
        self.url = f"pulsar://{address}"
        self.clock = clock
        self.client = pulsar.Client(
            f"pulsar://{service}",
            operation_timeout_seconds=30,
            # The C++ client's own logger, not Python's logging: its threads still log while
            # the interpreter shuts down, and a C++ thread that then asks for the GIL is
            # ended by the interpreter, which aborts the process ("terminate called").
            logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn),
        )
        self.admin = PulsarAdmin(admin_url)
        self.index = OffsetIndex(self.admin)
        self._partitions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._clients: weakref.WeakSet[PulsarProducer | PulsarConsumer] = weakref.WeakSet()
        self._committer: PulsarProducer | None = None
        self._pool = ThreadPoolExecutor(ADMIN_THREADS, thread_name_prefix="pulsar-admin")
        self._offsets = BackgroundOffsets(self.store_offsets)

    # -- topics ---------------------------------------------------------------------------
    def create_topic(self, name: str, config: TopicConfig, *, exist_ok: bool = False) -> None:
        if config.partitions < 1:
            raise ConfigError(f"topic {name!r} needs at least one partition")
        try:
            self.admin.create_partitioned(name, config.partitions)
        except ConfigError:
            if not exist_ok:
                raise
            existing = self.describe_topic(name).config
            if existing.partitions != config.partitions:
                raise ConfigError(
                    f"topic {name!r} exists with {existing.partitions} partitions, "
                    f"not {config.partitions}"
                ) from None
            return
        self.admin.set_properties(name, _config_properties(config))
        retention = native_retention(config)
        if retention is not None:
            self.admin.set_policy(name, "retention", retention)
        if config.compacted:
            self.admin.set_policy(name, "compactionThreshold", COMPACTION_THRESHOLD_BYTES)

    def delete_topic(self, name: str) -> None:
        self.admin.delete_partitioned(name)
        with self._lock:
            self._partitions.pop(name, None)
        self.index.forget(name)

    def list_topics(self) -> list[str]:
        return self.admin.list_partitioned()

    def describe_topic(self, name: str) -> TopicInfo:
        properties = self.admin.properties(name)
        config = _config_from(properties, self.partition_count(name))
        # One admin call per partition: asked side by side, as they wait on the broker.
        tps = [TopicPartition(name, p) for p in range(config.partitions)]
        bounds = self._pool.map(lambda tp: self._bounds(tp, properties), tps)
        parts = [
            PartitionInfo(tp.partition, b.low, b.high) for tp, b in zip(tps, bounds, strict=True)
        ]
        return TopicInfo(name, config, tuple(parts))

    def partition_count(self, topic: str) -> int:
        with self._lock:
            count = self._partitions.get(topic)
        if count is None:
            count = self.admin.partitions(topic)
            with self._lock:
                self._partitions[topic] = count
        return count

    def bounds(self, tp: TopicPartition) -> Bounds:
        """The partition's log start (past retention) and end."""
        return self._bounds(tp, self.admin.properties(tp.topic))

    def _bounds(self, tp: TopicPartition, properties: Mapping[str, str]) -> Bounds:
        stored = self.index.bounds(tp.topic, tp.partition)
        low = max(stored.low, int(properties.get(low_property(tp.partition), 0)))
        return Bounds(min(low, stored.high), stored.high, stored.ledgers)

    def settled_end(self, tp: TopicPartition) -> int:
        # No transactions are ever open (see the module docstring): the end is settled.
        return self.bounds(tp).high

    # -- clients ----------------------------------------------------------------------------
    def producer(self, *, batch_size: int = 10_000, linger_ms: float = 5.0) -> PulsarProducer:
        # Records are sent at once (batching stays off, see pulsar_producer): batch_size and
        # linger_ms have nothing to tune.
        producer = PulsarProducer(self.client, self.partition_count, self.clock)
        self._clients.add(producer)
        return producer

    def consumer(
        self,
        group: str | None = None,
        *,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_ms: int = 10_000,
    ) -> PulsarConsumer:
        # Liveness is the member's connection (see pulsar_group), not a session timeout.
        consumer = PulsarConsumer(self, group, auto_offset_reset)
        self._clients.add(consumer)
        return consumer

    # -- offsets ----------------------------------------------------------------------------
    def committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        self._offsets.wait()  # what this broker handed to the background is read back

        def read(tp: TopicPartition) -> int | None:
            stored = self.admin.subscription_properties(tp.topic, tp.partition, group)
            offset = (stored or {}).get(OFFSET_PROPERTY)
            return None if offset is None else int(offset)

        return dict(zip(partitions, self._pool.map(read, partitions), strict=True))

    def store_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        def store(item: tuple[TopicPartition, int]) -> None:
            tp, offset = item
            self.admin.set_subscription_properties(
                tp.topic, tp.partition, group, {OFFSET_PROPERTY: str(offset)}
            )

        list(self._pool.map(store, offsets.items()))

    def commit_transaction(self, txn: Transaction) -> None:
        """At least once: outputs, then offsets, then ``after_offsets`` (module docstring).
        With ``wait_for_offsets=False`` (and nothing to write after them) the offsets are
        stored in the background (pulsar_commits)."""
        consumer = txn.consumer if isinstance(txn.consumer, PulsarConsumer) else None
        self._fence(txn, consumer)
        writer = self._writer()
        self._write(writer, txn.records)
        if txn.offsets:
            if txn.wait_for_offsets or txn.after_offsets:
                self._offsets.wait()
                self.store_offsets(txn.group, txn.offsets)
            else:
                self._offsets.submit(txn.group, txn.offsets)
            if consumer is not None:
                consumer.acknowledge(txn.offsets)
        self._write(writer, txn.after_offsets)

    def _fence(self, txn: Transaction, consumer: PulsarConsumer | None) -> None:
        """A member of the group is fenced by ownership, as Kafka fences by generation: a
        partition the broker has since made another member's is refused (known from the
        member's last look at the subscriptions, at most pulsar_group.REFRESH_S old).
        Without membership, ``Transaction.expected`` is compared with the stored offsets."""
        if consumer is not None and consumer.has_membership:
            lost = sorted(set(txn.offsets) - set(consumer.assignment()))
            if lost:
                raise FencedError(f"group {txn.group!r}: no longer the owner of {lost}")
            return
        if txn.expected:
            current = self.committed(txn.group, list(txn.expected))
            stale = {tp: (want, current[tp]) for tp, want in txn.expected.items()}
            stale = {tp: pair for tp, pair in stale.items() if pair[0] != pair[1]}
            if stale:
                raise FencedError(f"group {txn.group!r}: offsets moved since read: {stale}")

    def _writer(self) -> PulsarProducer:
        with self._lock:
            if self._committer is None:
                self._committer = PulsarProducer(self.client, self.partition_count, self.clock)
            return self._committer

    @staticmethod
    def _write(writer: PulsarProducer, records: Sequence[OutRecord]) -> None:
        if not records:
            return
        for r in records:
            writer.send(
                r.topic,
                r.value,
                r.key,
                partition=r.partition,
                timestamp=r.timestamp,
                headers=r.headers,
            )
        writer.flush()

    def enforce_retention(self) -> int:
        removed = 0
        now = self.clock.now_ms()
        for topic in self.list_topics():
            try:
                properties = self.admin.properties(topic)
                config = _config_from(properties, self.partition_count(topic))
            except TopicNotFound:
                continue  # deleted meanwhile
            removed += enforce(self, topic, config, now)
        return removed

    def close(self) -> None:
        self._offsets.wait()
        for client in list(self._clients):
            try:
                client.close()
            except Exception:  # closing what is left; the client goes anyway
                log.debug("closing %r failed", client, exc_info=True)
        if self._committer is not None:
            self._committer.close()
        self._pool.shutdown(wait=False)
        self.client.close()

    def __enter__(self) -> PulsarBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_address(address: str) -> tuple[str, str]:
    """(host:port of the binary protocol, admin http URL)."""
    service, _, query = address.partition("?")
    options = dict(parse_qsl(query))
    unknown = set(options) - {"admin"}
    if unknown or not service:
        raise ConfigError(f"bad Pulsar address {address!r}: use host:port[?admin=http://h:p]")
    host = urlsplit(f"//{service}").hostname or "127.0.0.1"
    return service, options.get("admin", f"http://{host}:8080")


def _config_properties(config: TopicConfig) -> dict[str, str]:
    properties = {f"{_CONFIG}compacted": "1" if config.compacted else "0"}
    if config.retention_ms is not None:
        properties[f"{_CONFIG}retention_ms"] = str(config.retention_ms)
    if config.retention_bytes is not None:
        properties[f"{_CONFIG}retention_bytes"] = str(config.retention_bytes)
    return properties


def _config_from(properties: Mapping[str, str], partitions: int) -> TopicConfig:
    def number(name: str) -> int | None:
        value = properties.get(f"{_CONFIG}{name}")
        return None if value is None else int(value)

    return TopicConfig(
        partitions=partitions,
        retention_ms=number("retention_ms"),
        retention_bytes=number("retention_bytes"),
        compacted=properties.get(f"{_CONFIG}compacted") == "1",
    )
