"""Committing outputs with consumed offsets on Kafka, at least once or exactly once.

Kafka cannot check ``Transaction.expected`` (the offsets a worker started from) atomically
with a write. Fencing comes from the consumer group instead: offsets are committed as the
member that read them (``txn.consumer``), and Kafka refuses a commit from a member whose
generation is stale, i.e. one that lost its partitions in a rebalance (FencedError).

* At least once (default): write the records, wait until all are acknowledged, then commit
  the offsets, and only then write ``txn.after_offsets`` (batch-stage state). A crash or a
  fenced commit in between leaves outputs whose offsets were not committed; they are
  produced again on replay, so sinks must be idempotent by the source coordinates the
  runtime puts in every output's headers.
* Exactly once: one Kafka transaction holds the records and the offsets
  (``send_offsets_to_transaction`` with the member's group metadata); read_committed
  readers see all of it or none. A stale member's transaction is aborted (FencedError).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import KafkaError, KafkaException

from streamsense.brokers.base import OutRecord, Transaction
from streamsense.brokers.kafka_calls import StuckCall, abandon, call_within
from streamsense.brokers.kafka_common import log, to_error, to_kafka
from streamsense.brokers.kafka_consumer import KafkaConsumer
from streamsense.brokers.kafka_producer import KafkaProducer
from streamsense.errors import ConfigError, FencedError, RetryableError, StreamsenseError

ConsumerFactory = Callable[[str], KafkaConsumer]
ProducerFactory = Callable[[], KafkaProducer]

# How long a transactional call that only waits on coordinators (sending offsets,
# aborting) may take. Well under the transaction timeout, so a stuck call is given up and
# its producer replaced before the broker aborts the transaction on its own.
COORDINATOR_CALL_TIMEOUT_S = 10.0
# Another producer with the same transactional id took over (or, for an old transaction,
# the coordinator aborted it for its age and bumped the epoch).
_PRODUCER_FENCED = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


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


class AtLeastOnceCommitter:
    def __init__(self, make_producer: ProducerFactory, make_consumer: ConsumerFactory) -> None:
        self._make_producer = make_producer
        self._make_consumer = make_consumer
        self._producer: KafkaProducer | None = None

    def commit(self, txn: Transaction) -> None:
        self._write(txn.records)
        if txn.offsets:
            # Snapshots may only follow offsets known to be committed, and a short-lived
            # member closes at once: both wait for the answer.
            wait = txn.wait_for_offsets or bool(txn.after_offsets) or txn.consumer is None
            with member_of(txn, self._make_consumer) as member:
                member.commit(txn.offsets, wait=wait)
        # Written only now: a crash before the offsets commit must not leave them behind.
        self._write(txn.after_offsets)

    def _write(self, records: list[OutRecord]) -> None:
        if records:
            if self._producer is None:
                self._producer = self._make_producer()
            self._producer.send_all(records)
            self._producer.flush()

    def prepare(self) -> None:
        """Nothing to get ready: records and offsets are written without a transaction."""

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


class ExactlyOnceCommitter:
    """Kafka transactions, each call on the transactional producer time-limited.

    A producer that failed fatally (the coordinator aborted its transaction while the
    broker was away: INVALID_TXN_STATE, or fenced it for that), or whose call did not
    return in time, is abandoned and the commit fails retryably: the worker redoes the
    work from the committed offsets. The next commit makes a new producer with the same
    transactional id; initialising it bumps the id's epoch, so the abandoned one can write
    nothing more, and aborts whatever transaction it left open (read_committed readers
    never see that transaction's records).

    Only a producer fenced by a newer one (same id, its transaction still young) stays
    fenced: another worker took this one's place."""

    def __init__(
        self,
        make_producer: ProducerFactory,
        make_consumer: ConsumerFactory,
        live_members: Callable[[str], int],
        *,
        transaction_timeout_s: float,
        call_timeout_s: float = COORDINATOR_CALL_TIMEOUT_S,
    ) -> None:
        self._make_producer = make_producer
        self._make_consumer = make_consumer
        self._live_members = live_members
        self._transaction_timeout_s = transaction_timeout_s
        # Calls that do not flush records only wait on coordinators: quick when healthy.
        self._call_timeout_s = min(call_timeout_s, transaction_timeout_s)
        # Committing flushes the transaction's records, and initialising may wait for the
        # coordinator to finish a predecessor's transaction: these get longer, but still
        # end well before the coordinator would abort the transaction for its age.
        self._long_call_s = max(self._call_timeout_s, transaction_timeout_s / 2)
        self._producer: KafkaProducer | None = None
        self._fenced: StreamsenseError | None = None
        self.replaced = 0  # producers abandoned and replaced (failed fatally or stuck)

    def commit(self, txn: Transaction) -> None:
        self._refuse_offsets_from_outside(txn)
        if self._fenced is not None:
            # A fenced producer stays fenced: only a new incarnation may take over its id.
            raise self._fenced
        producer = self._transactional()
        began = time.monotonic()
        try:
            self._run(producer, txn)
        except KafkaException as error:
            young = time.monotonic() - began < self._transaction_timeout_s
            raise self._failed(producer, error.args[0], txn, young=young) from None
        except StuckCall as stuck:
            self._abandon(producer, "a transactional call got no answer", stuck)
            raise
        except BaseException:
            self._abort(producer)
            raise
        finally:
            # Failed deliveries were reported by the transaction's own outcome.
            producer.take_failed_deliveries()

    def prepare(self) -> None:
        """Initialise the transactional producer now rather than at the first commit:
        that aborts whatever transaction a crashed predecessor with the same transactional
        id left open, which holds back the offsets and records it touched."""
        if self._fenced is None:
            self._transactional()

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
        producer.send_all(txn.records)
        producer.send_all(txn.after_offsets)  # one transaction: seen with the offsets
        if txn.offsets:
            with member_of(txn, self._make_consumer) as member:
                offsets, metadata = to_kafka(txn.offsets), member.group_metadata()
                limit = self._call_timeout_s
                call_within(
                    lambda: client.send_offsets_to_transaction(offsets, metadata, limit),
                    limit,
                    "sending offsets to the transaction",
                )
        limit = self._long_call_s
        call_within(lambda: client.commit_transaction(limit), limit, "committing the transaction")

    def _failed(
        self, producer: KafkaProducer, error: KafkaError, txn: Transaction, *, young: bool
    ) -> StreamsenseError:
        """The error to raise for a failed transaction, after cleaning up after it."""
        mapped = to_error(error, f"transaction of group {txn.group!r}")
        if not error.fatal():
            self._abort(producer)
            return mapped
        if error.code() in _PRODUCER_FENCED and young:
            self._fenced = mapped
            self._abandon(producer, f"fenced by a newer producer: {error.str()}")
            return mapped
        # Fatal for this producer only (its transaction timed out at the coordinator while
        # the broker was away, ...): a new one can take over the id, so retry the work.
        self._abandon(producer, f"failed fatally: {error.str()}")
        return RetryableError(f"{mapped} (the transactional producer was replaced)")

    def _transactional(self) -> KafkaProducer:
        if self._producer is None:
            producer = self._make_producer()
            limit = self._long_call_s
            try:
                call_within(lambda: producer.client.init_transactions(limit), limit, "initialising")
            except KafkaException as error:
                self._abandon(producer, f"could not initialise: {error}")
                raise to_error(error, "initialising transactions") from None
            except StuckCall as stuck:
                self._abandon(producer, "initialising got no answer", stuck)
                raise
            self._producer = producer
        return self._producer

    def _abort(self, producer: KafkaProducer) -> None:
        limit = self._call_timeout_s
        try:
            call_within(
                lambda: producer.client.abort_transaction(limit), limit, "aborting the transaction"
            )
        except KafkaException as error:
            # A producer that cannot abort cannot begin again either; its successor
            # aborts the open transaction when it initialises.
            self._abandon(producer, f"could not abort the transaction: {error}")
        except StuckCall as stuck:
            self._abandon(producer, f"could not abort the transaction: {stuck}", stuck)

    def _abandon(self, producer: KafkaProducer, why: str, busy: StuckCall | None = None) -> None:
        """Replace the producer at the next commit. The old one is closed off this thread
        (closing aborts and flushes, which may block like the call that failed)."""
        log.warning("replacing the transactional producer: %s", why)
        if producer is self._producer:
            self._producer = None
        self.replaced += 1
        abandon(producer, lambda: producer.close(flush=False), busy)

    def close(self) -> None:
        if self._producer is not None:
            # Whatever it still holds belongs to an aborted transaction.
            self._producer.close(flush=False)
