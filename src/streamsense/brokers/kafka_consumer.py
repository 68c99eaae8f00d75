"""The Kafka consumer: confluent-kafka's Consumer behind streamsense's Consumer protocol.

Offsets are committed only when streamsense says so (never automatically), and only
committed transactions are read. Where a partition starts is resolved when it is assigned
(the group's committed offset, else the log start or end), so ``position`` is known at
once and "latest" means the end at assignment time, not whenever librdkafka gets to it.

Groups use KIP-848's consumer protocol by default (see kafka_groups): a rebalance hands
``on_revoke`` only the partitions this member gives up and ``on_assign`` only those it
takes over (``incremental_unassign``/``incremental_assign``); the others keep being read
and committed throughout. Either protocol uses a range assignor: partition p of every
topic with the same partition count goes to the same member, which keeps co-partitioned
sources and their keyed state together. Under the classic protocol (``group_protocol=
classic``) rebalances are eager: ``on_revoke`` gets every partition, then ``on_assign``
the new set.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer as KafkaClient
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaPartition

from streamsense.brokers.base import OffsetReset, RebalanceCallback, Record, TopicPartition
from streamsense.brokers.kafka_admin import KafkaAdmin
from streamsense.brokers.kafka_calls import (
    CLOSE_TIMEOUT_S,
    COMMIT_TIMEOUT_S,
    StuckCall,
    abandon,
    call_within,
    close_within,
)
from streamsense.brokers.kafka_common import (
    ATTEMPT_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    from_kafka,
    log,
    offsets_of,
    to_error,
    to_kafka,
)
from streamsense.brokers.kafka_groups import (
    DEFAULT_GROUP_PROTOCOL,
    GroupProtocol,
    configure_group,
    group_settings,
)
from streamsense.errors import ConfigError, FatalError, StreamsenseError

# Not failures of this consumer: librdkafka recovers from them by itself.
_TRANSIENT = frozenset({KafkaError._PARTITION_EOF, KafkaError._MAX_POLL_EXCEEDED})


def consumer_config(
    group: str | None,
    *,
    auto_offset_reset: OffsetReset,
    session_timeout_ms: int,
    max_poll_interval_ms: int,
    protocol: GroupProtocol = DEFAULT_GROUP_PROTOCOL,
) -> dict[str, Any]:
    return {
        # librdkafka needs a group id even to read assigned partitions; an unused, unique
        # one never joins a group and never commits.
        "group.id": group or f"__streamsense-anonymous-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": auto_offset_reset,
        **group_settings(
            protocol,
            session_timeout_ms=session_timeout_ms,
            max_poll_interval_ms=max_poll_interval_ms,
        ),
        "enable.partition.eof": False,
        "on_commit": _log_failed_commit,  # commits made without waiting (commit(wait=False))
        # A seek or resume takes effect only when the fetch in flight returns, and an idle
        # fetch waits this long at the broker (default 500 ms): keep that delay short.
        "fetch.wait.max.ms": 100,
    }


def _log_failed_commit(error: KafkaError | None, partitions: list[KafkaPartition]) -> None:
    failed = [p for p in partitions if p.error is not None]
    if error is not None or failed:
        log.warning("a background offset commit failed: %s %s", error, failed)


class KafkaConsumer:
    def __init__(
        self,
        group: str | None,
        config: dict[str, Any],
        admin: KafkaAdmin,
        auto_offset_reset: OffsetReset,
        *,
        protocol: GroupProtocol = DEFAULT_GROUP_PROTOCOL,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.group = group
        self.client = KafkaClient(config)
        # Rebalances hand over only what moves (consumer protocol), or everything (classic).
        self.incremental = protocol == "consumer"
        self._session_timeout_ms = session_timeout_ms
        self._admin = admin
        self._latest = auto_offset_reset == "latest"
        self._assigned: list[TopicPartition] = []
        # Where reading resumes for partitions librdkafka has not returned a record from
        # since they were assigned or sought (its own position is unknown until then).
        self._starts: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None
        self.subscribed = False  # a member of the group (else reads assigned partitions)
        self._closed = False
        # Limits of the calls librdkafka would let wait forever (see kafka_calls).
        self.commit_timeout_s = COMMIT_TIMEOUT_S
        self.close_timeout_s = CLOSE_TIMEOUT_S
        self.reaper: threading.Thread | None = None  # closes a client stuck in a call
        self._in_callback = False

    # -- membership -------------------------------------------------------------------------
    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
    ) -> None:
        if self.group is None:
            raise ConfigError("subscribe needs a consumer group; use assign() without one")
        for topic in topics:
            self._admin.partition_count(topic)  # fail fast on an unknown topic
        self._on_assign, self._on_revoke = on_assign, on_revoke
        if self.incremental:
            configure_group(self._admin, self.group, self._session_timeout_ms)
        self.client.subscribe(
            list(topics), on_assign=self._gained, on_revoke=self._lost, on_lost=self._lost
        )
        self.subscribed = True

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        if self.subscribed:
            # Leaving the group revokes asynchronously, which would undo this assignment.
            raise ConfigError("this consumer subscribed; use another one to assign()")
        kept = {tp: self.position(tp) for tp in partitions if tp in self._starts}
        topics = {tp.topic for tp in partitions if tp not in self._starts}
        for topic in topics:
            # Learn the leaders now: left to itself, librdkafka may look a new topic up
            # only at its next periodic scan, up to a second later. (A subscriber knows
            # its topics already, and may not make this call in its rebalance callbacks.)
            try:
                self.client.list_topics(topic, timeout=REQUEST_TIMEOUT_S)
            except KafkaException as error:
                raise to_error(error, f"reading metadata of {topic!r}") from None
        self._take(list(partitions), kept)

    def assignment(self) -> list[TopicPartition]:
        return list(self._assigned)

    # Rebalance callbacks run inside this client's poll. confluent-kafka keeps one call
    # state per client and thread, and a blocking call on the same client made from a
    # callback (list_topics, consume, poll, close) clears it: the next callback of that
    # poll then aborts the process (CallState_get: assertion cs != NULL). So callbacks use
    # only non-blocking calls on this client; offsets are read through the admin client.

    # Under the consumer protocol a synchronous commit made inside a rebalance callback
    # gets no answer until the member's reconciliation ends, which waits for the callback
    # (librdkafka 2.16: over a minute). Commits made there are sent without waiting.

    def _gained(self, _client: KafkaClient, partitions: list[KafkaPartition]) -> None:
        gained = [tp for tp in from_kafka(partitions) if tp not in self._starts]
        if self.incremental:
            self._add(gained)
        else:
            self._take(gained, {})
        if gained and self._on_assign is not None:
            self._in_callback = True
            try:
                self._on_assign(gained)
            finally:
                self._in_callback = False

    def _lost(self, _client: KafkaClient, partitions: list[KafkaPartition]) -> None:
        lost = [tp for tp in from_kafka(partitions) if tp in self._starts]
        try:
            if lost and self._on_revoke is not None:
                self._in_callback = True
                self._on_revoke(lost)  # still assigned here, so it can commit and seek
        finally:
            self._in_callback = False
            if self.incremental:
                self._remove(lost)
            else:
                self.client.unassign()
                self._assigned, self._starts, self._paused = [], {}, set()

    def _take(self, partitions: list[TopicPartition], known: dict[TopicPartition, int]) -> None:
        starts = {**self._start_offsets([tp for tp in partitions if tp not in known]), **known}
        try:
            self.client.assign(to_kafka(starts))
            # Pause again what the caller paused: a new assignment may start unpaused.
            self._paused &= set(starts)
            if self._paused:
                self.client.pause([KafkaPartition(*tp) for tp in self._paused])
        except KafkaException as error:
            raise to_error(error, "assigning partitions") from None
        self._assigned = sorted(starts)
        self._starts = starts

    def _add(self, partitions: list[TopicPartition]) -> None:
        """Take over ``partitions`` beside those already assigned, which read on."""
        starts = self._start_offsets(partitions)
        try:
            self.client.incremental_assign(to_kafka(starts))
        except KafkaException as error:
            raise to_error(error, "assigning partitions") from None
        self._starts.update(starts)
        self._assigned = sorted(self._starts)

    def _remove(self, partitions: list[TopicPartition]) -> None:
        """Give up ``partitions`` only; the others read on."""
        try:
            self.client.incremental_unassign([KafkaPartition(*tp) for tp in partitions])
        except KafkaException as error:
            raise to_error(error, "unassigning partitions") from None
        finally:
            for tp in partitions:
                self._starts.pop(tp, None)
                self._paused.discard(tp)
            self._assigned = sorted(self._starts)

    def _start_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        starts: dict[TopicPartition, int | None] = dict.fromkeys(partitions)
        if self.group is not None:
            starts.update(self._admin.committed(self.group, partitions))
        missing = [tp for tp, offset in starts.items() if offset is None]
        if missing:
            starts.update(self._admin.ends(missing, latest=self._latest))
        return {tp: offset for tp, offset in starts.items() if offset is not None}

    # -- reading ----------------------------------------------------------------------------
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Record]:
        if max_records < 1:
            return []
        client = self.client
        try:
            # First what librdkafka has prefetched; only if that is nothing, wait for one
            # record (consume() would wait for the whole batch) and take what came with it.
            messages = client.consume(max_records, 0)
            if not messages and timeout > 0:
                first = client.poll(timeout)
                if first is None:
                    return []
                messages = [first]
                if max_records > 1:
                    messages.extend(client.consume(max_records - 1, 0))
        except KafkaException as error:
            raise to_error(error, "polling") from None
        return self._records(messages)

    def _records(self, messages: list[Any]) -> list[Record]:
        # The hot path: one Record per message and nothing else. Messages are typed Any
        # because a message without an error always has its topic, partition and offset.
        records: list[Record] = []
        append = records.append
        for message in messages:
            if message.error() is not None:
                self._handle(message.error())
                continue
            headers = message.headers()
            append(
                Record(
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    message.timestamp()[1],
                    message.key(),
                    message.value(),
                    tuple(headers) if headers else (),
                )
            )
        return records

    def _handle(self, error: KafkaError) -> None:
        mapped = to_error(error, "consuming")
        if error.code() in _TRANSIENT or mapped.retryable:
            log.warning("%s", mapped)
            return
        raise mapped

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._require_assigned(tp)
        try:
            self.client.seek(KafkaPartition(tp.topic, tp.partition, offset))
        except KafkaException as error:
            raise to_error(error, f"seeking {tp}") from None
        self._starts[tp] = offset

    def position(self, tp: TopicPartition) -> int:
        self._require_assigned(tp)
        current = self.client.position([KafkaPartition(tp.topic, tp.partition)])[0].offset
        return current if current >= 0 else self._starts[tp]

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        chosen = [tp for tp in partitions if tp in self._starts]
        if chosen:
            self.client.pause([KafkaPartition(*tp) for tp in chosen])
            self._paused.update(chosen)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        chosen = [tp for tp in partitions if tp in self._paused]
        if chosen:
            self.client.resume([KafkaPartition(*tp) for tp in chosen])
            self._paused.difference_update(chosen)

    # -- committing -------------------------------------------------------------------------
    def commit(
        self, offsets: Mapping[TopicPartition, int] | None = None, *, wait: bool = True
    ) -> None:
        """Commit as this member of the group. Kafka refuses commits from a member whose
        generation is stale (FencedError): the group's generation is what fences a worker
        that lost its partitions. ``wait=False`` sends the commit and returns; its outcome
        is only logged (a failed one leaves the previous offsets, so events are processed
        again), and commits reach the coordinator in the order they were made. Inside a
        rebalance callback of the consumer protocol every commit is sent so (see above):
        the next owner may then start before these offsets, and process events again."""
        if self.group is None:
            raise ConfigError("commit needs a consumer group")
        chosen = {tp: self.position(tp) for tp in self._assigned} if offsets is None else offsets
        if not chosen:
            return
        what = f"committing offsets of group {self.group!r}"
        client, kafka_offsets = self.client, to_kafka(chosen)
        try:
            if not wait or (self._in_callback and self.incremental):
                client.commit(offsets=kafka_offsets, asynchronous=True)
                return
            answer = call_within(
                lambda: client.commit(offsets=kafka_offsets, asynchronous=False),
                self.commit_timeout_s,
                what,
            )
        except KafkaException as error:
            raise to_error(error, what) from None
        except StuckCall as stuck:
            raise self._stuck(stuck) from None
        offsets_of(answer, what)

    def _stuck(self, stuck: StuckCall) -> FatalError:
        """A call that did not return leaves the client unusable (the call may still
        complete, and another would wait as long): it is closed once the call returns,
        and this consumer with it. Its worker must stop; a new one rejoins the group."""
        self._closed = True
        self._assigned, self._starts = [], {}
        client = self.client
        self.reaper = abandon(client, client.close, stuck)
        return FatalError(f"{stuck}; the consumer is closed: restart the worker")

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        if self.group is None:
            raise ConfigError("committed offsets need a consumer group")
        wanted = [KafkaPartition(*tp) for tp in partitions]
        what = f"reading group {self.group!r}'s offsets"
        # Offsets sent in a transaction still open (a crashed member's) are not answered
        # until it ends: wait as long as that may take.
        deadline = time.monotonic() + self._admin.settle_s
        while True:
            # Retried while the group coordinator is still loading or just moved (a broker
            # that restarted), or the offsets are unstable, each try bounded so that one lost
            # request costs little.
            attempt = max(0.1, min(ATTEMPT_TIMEOUT_S, deadline - time.monotonic()))
            try:
                return offsets_of(self.client.committed(wanted, timeout=attempt), what)
            except KafkaException as error:
                mapped = to_error(error, what)
            except StreamsenseError as error:  # a partition's own error
                mapped = error
            if not mapped.retryable or time.monotonic() >= deadline:
                raise mapped
            time.sleep(0.05)

    def group_metadata(self) -> Any:
        """The member's identity and generation, for offsets sent with a transaction."""
        return self.client.consumer_group_metadata()

    def close(self) -> None:
        """Leave the group (on_revoke runs first) within ``close_timeout_s``; a close that
        takes longer goes on in the background (kafka_calls.close_within)."""
        if self._closed:
            return
        self._closed = True
        try:
            close_within(
                self.client, self.client.close, self.close_timeout_s, "closing the consumer"
            )
        except KafkaException as error:
            raise to_error(error, "closing the consumer") from None
        finally:
            self._assigned, self._starts = [], {}

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._starts:
            raise ConfigError(f"{tp} is not assigned to this consumer")
