"""What the Kafka broker's parts share: client settings, timeouts, and the mapping of
librdkafka errors onto streamsense's errors (so callers decide on ``retryable`` and
FencedError without knowing Kafka's error codes)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaPartition

from streamsense.brokers.base import TopicPartition
from streamsense.errors import (
    BrokerUnavailable,
    ConfigError,
    FatalError,
    FencedError,
    RetryableError,
    StreamsenseError,
    TopicNotFound,
)

log = logging.getLogger("streamsense.brokers.kafka")

# Bound for calls that wait on the cluster: metadata and offset look-ups are quick on a
# healthy cluster. (Transactional calls have their own, see kafka_txn.)
REQUEST_TIMEOUT_S = 30.0
# One try of a look-up that is retried until REQUEST_TIMEOUT_S. After a broker restart a
# group request can stay unanswered although the broker is back (see kafka_calls): asking
# anew, on a new client if need be, beats waiting out the whole bound.
ATTEMPT_TIMEOUT_S = 5.0

# librdkafka's "no offset" sentinel (OFFSET_INVALID).
NO_OFFSET = -1001

# The group generation moved on, the member is gone, or another producer took over the
# transactional id: the caller's view is stale and the same call can never succeed.
_FENCING = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.FENCED_MEMBER_EPOCH,
        KafkaError.STALE_MEMBER_EPOCH,
        KafkaError._ASSIGNMENT_LOST,
        # A classic-protocol rebalance started: the commit cannot complete until this member
        # polls and rejoins, and it may lose the partitions, so treat its view as stale.
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)
_MISSING_TOPIC = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_ID}
)
_BAD_REQUEST = frozenset(
    {
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_ALREADY_EXISTS,
        KafkaError.INVALID_PARTITIONS,
        KafkaError.INVALID_CONFIG,
        KafkaError.INVALID_REPLICATION_FACTOR,
        KafkaError.POLICY_VIOLATION,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError._INVALID_ARG,
    }
)
# librdkafka's own codes for a broker it cannot reach or that did not answer in time.
_UNAVAILABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError._QUEUE_FULL,
        # Offsets of a just-committed transaction are not readable until its markers are.
        KafkaError.UNSTABLE_OFFSET_COMMIT,
        # A group or transaction coordinator is still loading its state (just after the
        # broker started) or moved: asking again shortly succeeds.
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
    }
)


def to_error(error: KafkaException | KafkaError, what: str) -> StreamsenseError:
    """The streamsense error for a librdkafka failure while doing ``what``."""
    kafka = error.args[0] if isinstance(error, KafkaException) else error
    if not isinstance(kafka, KafkaError):
        return FatalError(f"{what}: {error}")
    code = kafka.code()
    message = f"{what}: {kafka.str()} ({kafka.name()})"
    if code in _FENCING:
        return FencedError(message)
    if code in _MISSING_TOPIC:
        return TopicNotFound(message)
    if code in _BAD_REQUEST:
        return ConfigError(message)
    if kafka.fatal():
        return FatalError(message)
    if code in _UNAVAILABLE or kafka.retriable():
        return BrokerUnavailable(message)
    # An aborted transaction wrote nothing, so the whole commit may be tried again.
    return RetryableError(message) if kafka.txn_requires_abort() else FatalError(message)


def client_config(bootstrap: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Settings every client shares. Topics are never created as a side effect of a
    metadata request: a typo in a topic name must fail, not make a new topic."""
    return {
        "bootstrap.servers": bootstrap,
        "allow.auto.create.topics": False,
        # After an outage, reconnect within a second of the broker's return (librdkafka's
        # backoff grows to 10 s otherwise, longer than a group session may go unheard).
        "reconnect.backoff.max.ms": 1000,
        "error_cb": _log_client_error,
        **extra,
    }


def _log_client_error(error: KafkaError) -> None:
    # librdkafka reconnects on its own; these are informational unless fatal, and fatal
    # errors also surface on the next call that needs the client.
    level = logging.ERROR if error.fatal() else logging.WARNING
    log.log(level, "kafka client: %s", error.str())


def to_kafka(offsets: Mapping[TopicPartition, int]) -> list[KafkaPartition]:
    return [KafkaPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]


def from_kafka(partitions: Iterable[KafkaPartition]) -> list[TopicPartition]:
    return [TopicPartition(p.topic, p.partition) for p in partitions]


def offsets_of(partitions: Iterable[KafkaPartition], what: str) -> dict[TopicPartition, int | None]:
    """Committed offsets from librdkafka's answer (None where the group has none)."""
    result: dict[TopicPartition, int | None] = {}
    for p in partitions:
        if p.error is not None:
            raise to_error(p.error, what)
        result[TopicPartition(p.topic, p.partition)] = None if p.offset < 0 else p.offset
    return result
