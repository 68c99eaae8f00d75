"""Committing outputs with consumed offsets on Kafka, at least once or exactly once.

Kafka cannot check ``Transaction.expected`` (the offsets a worker started from) atomically
with a write. Fencing comes from the consumer group instead: offsets are committed as the
member that read them (``txn.consumer``), and Kafka refuses a commit from a member whose
generation is stale, i.e. one that lost its partitions in a rebalance (FencedError).

* At least once (default): write the records, wait until all are acknowledged, then commit
  the offsets. A crash or a fenced commit in between leaves outputs whose offsets were not
  committed; they are produced again on replay, so sinks must be idempotent by the source
  coordinates the runtime puts in every output's headers.
* Exactly once: one Kafka transaction holds the records and the offsets
  (``send_offsets_to_transaction`` with the member's group metadata); read_committed
  readers see all of it or none. A stale member's transaction is aborted (FencedError).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import KafkaError, KafkaException

from streamsense.brokers.base import Transaction
from streamsense.brokers.kafka_common import TRANSACTION_TIMEOUT_S, log, to_error, to_kafka
from streamsense.brokers.kafka_consumer import KafkaConsumer
from streamsense.brokers.kafka_producer import KafkaProducer
from streamsense.errors import ConfigError, FencedError

ConsumerFactory = Callable[[str], KafkaConsumer]
ProducerFactory = Callable[[], KafkaProducer]


@contextmanager
def member_of(txn: Transaction, make_consumer: ConsumerFactory) -> Iterator[KafkaConsumer]:
    """The group member to commit ``txn.offsets`` as: ``txn.consumer``, or, without one, a
    short-lived consumer that never joins. Kafka accepts the latter's commits only while
    the group has no live members (ingest cursors, tools, tests)."""
    if txn.consumer is None:
        consumer = make_consumer(txn.group)
        try:
            yield consumer
        finally:
            consumer.close()
        return
    if not isinstance(txn.consumer, KafkaConsumer) or txn.consumer.group != txn.group:
        raise ConfigError(f"the transaction's consumer is not a Kafka member of {txn.group!r}")
    yield txn.consumer


def _send_records(producer: KafkaProducer, txn: Transaction) -> None:
    producer.send_all(txn.records)


class AtLeastOnceCommitter:
    def __init__(self, make_producer: ProducerFactory, make_consumer: ConsumerFactory) -> None:
        self._make_producer = make_producer
        self._make_consumer = make_consumer
        self._producer: KafkaProducer | None = None

    def commit(self, txn: Transaction) -> None:
        if txn.records:
            if self._producer is None:
                self._producer = self._make_producer()
            _send_records(self._producer, txn)
            self._producer.flush()
        if txn.offsets:
            with member_of(txn, self._make_consumer) as member:
                member.commit(txn.offsets)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


class ExactlyOnceCommitter:
    def __init__(
        self,
        make_producer: ProducerFactory,
        make_consumer: ConsumerFactory,
        live_members: Callable[[str], int],
    ) -> None:
        self._make_producer = make_producer
        self._make_consumer = make_consumer
        self._live_members = live_members
        self._producer: KafkaProducer | None = None
        self._fatal: KafkaError | None = None

    def commit(self, txn: Transaction) -> None:
        self._refuse_offsets_from_outside(txn)
        if self._fatal is not None:
            # A fenced producer stays fenced: only a new incarnation may take over its id.
            raise to_error(self._fatal, "transactional producer")
        producer = self._transactional()
        try:
            self._run(producer, txn)
        except KafkaException as error:
            if error.args[0].fatal():
                # It cannot abort; the next owner of the id aborts what it left open.
                self._fatal = error.args[0]
            else:
                self._abort(producer)
            raise to_error(error, f"transaction of group {txn.group!r}") from None
        except BaseException:
            self._abort(producer)
            raise
        finally:
            # Failed deliveries were reported by the transaction's own outcome.
            producer.take_failed_deliveries()

    def _refuse_offsets_from_outside(self, txn: Transaction) -> None:
        """Kafka accepts transactional offsets from "no member" (generation -1) even while
        the group is active, for old clients. A plain commit would be refused, so refuse
        here too (a best effort: it races with a member joining)."""
        joined = isinstance(txn.consumer, KafkaConsumer) and txn.consumer.subscribed
        if txn.offsets and not joined and self._live_members(txn.group):
            raise FencedError(f"group {txn.group!r} has live members: commit as one of them")

    def _run(self, producer: KafkaProducer, txn: Transaction) -> None:
        client = producer.client
        client.begin_transaction()
        _send_records(producer, txn)
        if txn.offsets:
            with member_of(txn, self._make_consumer) as member:
                client.send_offsets_to_transaction(
                    to_kafka(txn.offsets), member.group_metadata(), TRANSACTION_TIMEOUT_S
                )
        client.commit_transaction(TRANSACTION_TIMEOUT_S)

    def _transactional(self) -> KafkaProducer:
        if self._producer is None:
            producer = self._make_producer()
            try:
                producer.client.init_transactions(TRANSACTION_TIMEOUT_S)
            except KafkaException as error:
                raise to_error(error, "initialising transactions") from None
            self._producer = producer
        return self._producer

    @staticmethod
    def _abort(producer: KafkaProducer) -> None:
        try:
            producer.client.abort_transaction(TRANSACTION_TIMEOUT_S)
        except KafkaException as error:
            # A fenced or fatally failed producer cannot abort; the broker aborts its open
            # transaction when the transaction times out or the next owner initialises.
            log.warning("could not abort the transaction: %s", error)

    def close(self) -> None:
        if self._producer is not None:
            # Whatever it still holds belongs to an aborted transaction; a fatally failed
            # client cannot even abort, so it is left to be destroyed without closing.
            self._producer.close(flush=False, client=self._fatal is None)
