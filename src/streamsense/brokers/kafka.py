"""Apache Kafka as a streamsense broker, through confluent-kafka (librdkafka).

``open_broker("kafka://host:port[,host:port][?exactly_once=true&transactional_id=ID]")``
(and ``transaction_timeout_ms=N``: how long a crashed worker's open transaction may hold
back readers of its outputs, state and offsets before Kafka aborts it; default 60000;
``group_protocol=consumer|classic``: how consumer groups rebalance, default consumer).

How the contract in ``base`` maps onto Kafka:

* Topics are made with the AdminClient; retention and compaction become topic configs,
  and Kafka itself enforces them (``enforce_retention`` has nothing to do).
* Producers are idempotent and pick partitions themselves (murmur2 of the key, as Java
  clients do; round robin without a key).
* Consumers read committed data only and commit only when told to. Groups rebalance with
  KIP-848's consumer protocol (``group_protocol=consumer``, the default: only the
  partitions that move change hands) or the classic one (``group_protocol=classic``,
  eager; for brokers before Kafka 4); see kafka_groups. A member that stops heartbeating
  for ``session_timeout_ms`` loses its partitions.
* ``commit_transaction`` is at least once by default and exactly once with
  ``exactly_once=True`` (Kafka transactions); see ``kafka_txn`` for how stale workers are
  fenced without ``Transaction.expected``.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from streamsense.brokers.base import (
    OffsetReset,
    TopicConfig,
    TopicInfo,
    TopicPartition,
    Transaction,
)
from streamsense.brokers.kafka_admin import KafkaAdmin
from streamsense.brokers.kafka_common import client_config
from streamsense.brokers.kafka_consumer import KafkaConsumer, consumer_config
from streamsense.brokers.kafka_groups import DEFAULT_GROUP_PROTOCOL, GroupProtocol, group_protocol
from streamsense.brokers.kafka_producer import KafkaProducer, producer_config
from streamsense.brokers.kafka_txn import AtLeastOnceCommitter, ExactlyOnceCommitter
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError

# An open transaction holds back read_committed readers until it ends or times out; a
# record must be delivered (or fail) within the transaction's lifetime.
DEFAULT_TRANSACTION_TIMEOUT_MS = 60_000
# Kafka looks for transactions past their timeout this often (the broker's default
# transaction.abort.timed.out.transaction.cleanup.interval.ms), plus a margin: how much
# longer than the transaction timeout a crashed writer's transaction may stay open.
_ABORT_CHECK_S = 15.0
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class KafkaBroker:
    """A Broker on an Apache Kafka cluster.

    ``bootstrap`` is ``host:port[,host:port...]``, optionally followed by URL options
    ``?exactly_once=true&transactional_id=ID&transaction_timeout_ms=N&group_protocol=P``.
    ``replication_factor=-1`` uses the cluster's ``default.replication.factor``. ``config``
    adds librdkafka settings to every client (security, timeouts)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        exactly_once: bool = False,
        transactional_id: str | None = None,
        transaction_timeout_ms: int | None = None,
        replication_factor: int = -1,
        config: Mapping[str, Any] | None = None,
        group_protocol: GroupProtocol | None = None,
    ) -> None:
        servers, options = _parse_address(bootstrap)
        exactly_once = exactly_once or options.get("exactly_once", False) is True
        transactional_id = transactional_id or _str_option(options, "transactional_id")
        timeout_ms = transaction_timeout_ms or int(
            options.get("transaction_timeout_ms", DEFAULT_TRANSACTION_TIMEOUT_MS)
        )
        self.url = f"kafka://{bootstrap}"
        self.clock = clock
        self.exactly_once = exactly_once
        self.group_protocol = group_protocol or _protocol_option(options)
        self._config = client_config(servers, config or {})
        # Other workers of the app share its transaction timeout: a reader waits that long
        # for a crashed one's transaction to end.
        self._admin = KafkaAdmin(
            self._config,
            replication_factor=replication_factor,
            settle_s=timeout_ms / 1000 + _ABORT_CHECK_S,
        )
        # Closed with the broker; weak, so short-lived clients do not pile up here.
        self._clients: weakref.WeakSet[KafkaProducer | KafkaConsumer] = weakref.WeakSet()
        self._committer: AtLeastOnceCommitter | ExactlyOnceCommitter
        if exactly_once:
            # A fixed id lets a restarted worker abort its crashed predecessor's open
            # transaction at once; with a fresh one, readers of those partitions wait for
            # the transaction timeout. Stale workers are fenced by the group either way.
            txn_id = transactional_id or f"streamsense-{uuid.uuid4().hex}"
            settings = {
                "transactional.id": txn_id,
                "transaction.timeout.ms": timeout_ms,
                "delivery.timeout.ms": timeout_ms,
            }
            self._committer = ExactlyOnceCommitter(
                lambda: self._producer(settings),
                self._member,
                self._admin.live_members,
                transaction_timeout_s=timeout_ms / 1000,
            )
        else:
            self._committer = AtLeastOnceCommitter(lambda: self._producer({}), self._member)

    # -- topics -----------------------------------------------------------------------------
    def create_topic(self, name: str, config: TopicConfig, *, exist_ok: bool = False) -> None:
        self._admin.create_topic(name, config, exist_ok=exist_ok)

    def delete_topic(self, name: str) -> None:
        self._admin.delete_topic(name)

    def list_topics(self) -> list[str]:
        return self._admin.list_topics()

    def describe_topic(self, name: str) -> TopicInfo:
        return self._admin.describe_topic(name)

    def settled_end(self, tp: TopicPartition) -> int:
        # This broker's own transaction, if its producer was abandoned with one open, ends
        # when a new producer initialises: do that first rather than wait for the timeout.
        self._committer.prepare()
        return self._admin.settled_end(tp)

    # -- clients ----------------------------------------------------------------------------
    def producer(self, *, batch_size: int = 10_000, linger_ms: float = 5.0) -> KafkaProducer:
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        producer = self._producer({}, batch_size=batch_size, linger_ms=linger_ms)
        self._clients.add(producer)
        return producer

    def consumer(
        self,
        group: str | None = None,
        *,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_ms: int = 10_000,
        max_poll_interval_ms: int = 300_000,
    ) -> KafkaConsumer:
        """``max_poll_interval_ms``: a member that does not poll for this long leaves the
        group (Kafka's liveness check for a stuck worker whose heartbeats still run)."""
        settings = consumer_config(
            group,
            auto_offset_reset=auto_offset_reset,
            session_timeout_ms=session_timeout_ms,
            max_poll_interval_ms=max_poll_interval_ms,
            protocol=self.group_protocol,
        )
        if group is not None:
            # A worker about to read the group's offsets and state initialises its
            # transactional producer first: that aborts at once a transaction its crashed
            # predecessor (same transactional id) left open, which would hold them back.
            self._committer.prepare()
        consumer = KafkaConsumer(
            group,
            {**self._config, **settings},
            self._admin,
            auto_offset_reset,
            protocol=self.group_protocol,
            session_timeout_ms=session_timeout_ms,
        )
        self._clients.add(consumer)
        return consumer

    def _producer(
        self, extra: dict[str, Any], *, batch_size: int = 10_000, linger_ms: float = 5.0
    ) -> KafkaProducer:
        settings = producer_config(batch_size=batch_size, linger_ms=linger_ms)
        # Not in self._clients: the committers own and close theirs.
        return KafkaProducer({**self._config, **settings, **extra}, self.clock.now_ms)

    def _member(self, group: str) -> KafkaConsumer:
        return self.consumer(group)

    # -- commits ----------------------------------------------------------------------------
    def commit_transaction(self, txn: Transaction) -> None:
        """Write ``txn.records`` and commit ``txn.offsets`` as ``txn.consumer`` (see
        ``kafka_txn``). ``txn.expected`` is not checked: Kafka fences through the group
        generation instead."""
        self._committer.commit(txn)

    def committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        return self._admin.committed(group, partitions)

    def enforce_retention(self) -> int:
        """Kafka deletes expired segments by itself, so there is nothing to do here."""
        return 0

    def close(self) -> None:
        # Consumers first: leaving the group runs on_revoke, which may still commit.
        clients = list(self._clients)
        for client in clients:
            if isinstance(client, KafkaConsumer):
                client.close()
        self._committer.close()
        for client in clients:
            client.close()

    def __enter__(self) -> KafkaBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def worker_url(url: str, base_id: str, slot: int) -> str:
    """The broker URL of supervised worker ``slot``. Under exactly once each slot gets a
    transactional id of its own (``<transactional_id or base_id>-<slot>``): two live
    workers with one id would fence each other, and a slot's restarted worker, keeping its
    id, aborts its crashed predecessor's open transaction at once instead of leaving it to
    Kafka's timeout. Any other URL is returned as it is."""
    if not url.startswith("kafka://"):
        return url
    servers, options = _parse_address(url[len("kafka://") :])
    if options.get("exactly_once") is not True:
        return url
    given = _str_option(options, "transactional_id") or base_id
    query = [(k, v) for k, v in parse_qsl(url.partition("?")[2]) if k != "transactional_id"]
    query.append(("transactional_id", f"{given}-{slot}"))
    return f"kafka://{servers}?{urlencode(query)}"


def _parse_address(address: str) -> tuple[str, dict[str, str | bool]]:
    """Split ``host:port,...?options`` into the bootstrap servers and known options."""
    servers, _, query = address.partition("?")
    if not servers:
        raise ConfigError(f"kafka URL {address!r} names no bootstrap server")
    options: dict[str, str | bool] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "exactly_once":
            if value.lower() not in _BOOLEANS:
                raise ConfigError(f"exactly_once must be true or false, not {value!r}")
            options[name] = _BOOLEANS[value.lower()]
        elif name == "transactional_id":
            options[name] = value
        elif name == "group_protocol":
            options[name] = group_protocol(value)
        elif name == "transaction_timeout_ms":
            if not value.isdigit() or int(value) < 1000:
                raise ConfigError(f"transaction_timeout_ms must be at least 1000, not {value!r}")
            options[name] = value
        else:
            raise ConfigError(f"unknown kafka URL option {name!r}")
    return servers, options


def _protocol_option(options: Mapping[str, str | bool]) -> GroupProtocol:
    value = options.get("group_protocol")
    return group_protocol(value) if isinstance(value, str) else DEFAULT_GROUP_PROTOCOL


def _str_option(options: Mapping[str, str | bool], name: str) -> str | None:
    value = options.get(name)
    return value if isinstance(value, str) and value else None
