"""The Pulsar consumer: one reader per partition, at streamsense's own offsets.

Readers are Pulsar's cursor-less consumers: they start at a message id, which the offset
index (pulsar_offsets) finds for an offset, and the consumer tracks each partition's
position itself. Committed offsets are the group's, kept by the broker (see
PulsarBroker.store_offsets). ``subscribe`` gets partitions from the group's failover
subscriptions (pulsar_group); ``assign`` reads the named partitions without membership.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pulsar

from streamsense.brokers.base import OffsetReset, RebalanceCallback, Record, TopicPartition
from streamsense.brokers.pulsar_admin import partition_topic
from streamsense.brokers.pulsar_codec import to_record
from streamsense.brokers.pulsar_group import FailoverMembership
from streamsense.brokers.pulsar_host import PulsarHost
from streamsense.errors import BrokerUnavailable, ConfigError

# Messages a reader fetches ahead of poll.
RECEIVE_QUEUE = 1000
# How long poll waits on one idle reader before it looks at the others again: the most a
# record on another partition waits for an idle poll to notice it.
WAIT_SLICE_MS = 5


class PulsarConsumer:
    def __init__(self, broker: PulsarHost, group: str | None, reset: OffsetReset) -> None:
        self._broker = broker
        self._group = group
        self._reset = reset
        self._positions: dict[TopicPartition, int] = {}
        self._readers: dict[TopicPartition, Any] = {}
        self._paused: set[TopicPartition] = set()
        # The last record returned per partition: (offset, ledger, entry), for the ack.
        self._last: dict[TopicPartition, tuple[int, int, int]] = {}
        self._membership: FailoverMembership | None = None
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None

    # -- membership -----------------------------------------------------------------------
    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
    ) -> None:
        if self._group is None:
            raise ConfigError("subscribe needs a consumer group")
        self._release(list(self._positions))
        counts = {topic: self._broker.partition_count(topic) for topic in topics}
        self._membership = FailoverMembership(self._broker.client, self._broker.admin, self._group)
        self._membership.join(topics, counts)
        self._on_assign, self._on_revoke = on_assign, on_revoke

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        if self._membership is not None:
            self._membership.leave()
            self._membership = None
        self._release(list(self._positions))
        self._take(list(partitions))

    @property
    def has_membership(self) -> bool:
        """Subscribed to a group (its partitions come from the broker), not assigned."""
        return self._membership is not None

    def assignment(self) -> list[TopicPartition]:
        return sorted(self._positions)

    def _rebalance(self) -> None:
        membership = self._membership
        if membership is None or not membership.due():
            return
        owned = membership.owned()
        revoked = sorted(set(self._positions) - owned)
        gained = sorted(owned - set(self._positions))
        if revoked:
            if self._on_revoke is not None:
                self._on_revoke(revoked)
            self._release(revoked)
        if gained:
            self._take(gained)
            if self._on_assign is not None:
                self._on_assign(gained)

    def _take(self, partitions: list[TopicPartition]) -> None:
        committed = (
            self._broker.committed(self._group, partitions) if self._group is not None else {}
        )
        for tp in partitions:
            self._broker.partition_count(tp.topic)  # TopicNotFound for a missing topic
            start = committed.get(tp)
            if start is None:
                bounds = self._broker.bounds(tp)
                start = bounds.low if self._reset == "earliest" else bounds.high
            self._positions[tp] = start

    def _release(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._close_reader(tp)
            self._positions.pop(tp, None)
            self._last.pop(tp, None)
            self._paused.discard(tp)

    # -- reading ----------------------------------------------------------------------------
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Record]:
        """A sweep takes what every reader has received already (without waiting); while
        nothing came and time is left, one reader at a time is waited on for a slice
        (WAIT_SLICE_MS), in turn. The wait is in the client's C++ code, without the GIL:
        a listener per reader delivering to one Python queue was tried and was much slower,
        each message then needing the GIL from the busy worker thread."""
        self._rebalance()
        deadline = time.monotonic() + timeout
        records: list[Record] = []
        active = [tp for tp in self._positions if tp not in self._paused]
        turn = 0
        while True:
            for tp in active:
                self._read(tp, max_records - len(records), 0, records)
                if len(records) >= max_records:
                    return records
            remaining = deadline - time.monotonic()
            if records or remaining <= 0 or not active:
                return records
            tp = active[turn % len(active)]
            turn += 1
            wait_ms = max(1, min(WAIT_SLICE_MS, int(remaining * 1000)))
            self._read(tp, max_records, wait_ms, records)
            if records:
                return records

    def _read(self, tp: TopicPartition, limit: int, wait_ms: int, into: list[Record]) -> None:
        """Up to ``limit`` records of ``tp``: the first waited for ``wait_ms`` (0: only what
        the reader has received), the rest only if already received."""
        reader = self._reader(tp)
        index = self._broker.index
        while limit > 0:
            try:
                message = reader.read_next(wait_ms)
            except pulsar.Timeout:
                return
            except pulsar.PulsarException as error:
                self._close_reader(tp)
                raise BrokerUnavailable(f"reading {tp.topic}[{tp.partition}]: {error}") from error
            wait_ms = 0
            mid = message.message_id()
            offset = index.offset_of(tp.topic, tp.partition, mid.ledger_id(), mid.entry_id())
            if offset < self._positions[tp]:
                continue  # a reader starts at or before the position, never after it
            into.append(to_record(message, tp.topic, tp.partition, offset))
            self._positions[tp] = offset + 1
            self._last[tp] = (offset, mid.ledger_id(), mid.entry_id())
            limit -= 1

    def _reader(self, tp: TopicPartition) -> Any:
        reader = self._readers.get(tp)
        if reader is not None:
            return reader
        bounds = self._broker.bounds(tp)
        # Out of range (deleted by retention, or past the end): start at the nearest kept.
        position = min(max(self._positions[tp], bounds.low), bounds.high)
        self._positions[tp] = position
        if position < bounds.high:
            ledger, entry = self._broker.index.locate(tp.topic, tp.partition, position, bounds)
            start, inclusive = pulsar.MessageId(-1, ledger, entry, -1), True
        elif bounds.ledgers:  # at the end: after the last stored message, never "latest",
            last = self._broker.index.locate(tp.topic, tp.partition, position - 1, bounds)
            start, inclusive = pulsar.MessageId(-1, last[0], last[1], -1), False
        else:  # which could miss a record written while the reader is being made
            start, inclusive = pulsar.MessageId.earliest, False
        try:
            reader = self._broker.client.create_reader(
                partition_topic(tp.topic, tp.partition),
                start,
                receiver_queue_size=RECEIVE_QUEUE,
                start_message_id_inclusive=inclusive,
            )
        except pulsar.PulsarException as error:
            raise BrokerUnavailable(f"cannot read {tp.topic}[{tp.partition}]: {error}") from error
        self._readers[tp] = reader
        return reader

    def _close_reader(self, tp: TopicPartition) -> None:
        reader = self._readers.pop(tp, None)
        if reader is not None:
            # A reader whose connection is gone is closed already.
            with contextlib.suppress(pulsar.PulsarException):
                reader.close()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._positions:
            raise ConfigError(f"{tp} is not assigned to this consumer")
        self._close_reader(tp)
        self._positions[tp] = offset

    def position(self, tp: TopicPartition) -> int:
        if tp not in self._positions:
            raise ConfigError(f"{tp} is not assigned to this consumer")
        if tp not in self._readers:
            self._reader(tp)  # resolves an out-of-range position as poll would
        return self._positions[tp]

    # -- offsets and flow -------------------------------------------------------------------
    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        if self._group is None:
            raise ConfigError("commit needs a consumer group")
        committed = dict(offsets or self._positions)
        self._broker.store_offsets(self._group, committed)
        self.acknowledge(committed)

    def acknowledge(self, offsets: Mapping[TopicPartition, int]) -> None:
        """After a commit: move the group's subscription cursors along (pulsar_group)."""
        if self._membership is None:
            return
        for tp, offset in offsets.items():
            last = self._last.get(tp)
            if last is not None and last[0] + 1 == offset:
                self._membership.acknowledge(tp, last[1], last[2])

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        if self._group is None:
            return {tp: None for tp in partitions}
        return self._broker.committed(self._group, partitions)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._paused.update(tp for tp in partitions if tp in self._positions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._paused.difference_update(partitions)

    def close(self) -> None:
        if self._membership is not None:
            self._membership.leave()
            self._membership = None
        self._release(list(self._positions))

    def __enter__(self) -> PulsarConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
