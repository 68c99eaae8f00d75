"""The consumer shared by the memory and embedded brokers: positions, pause/resume,
prefetched batches, group rebalances and offset commits over a LogStore."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from streamsense.brokers.base import OffsetReset, RebalanceCallback, Record, TopicPartition
from streamsense.brokers.groups import GroupMember
from streamsense.errors import ConfigError

if TYPE_CHECKING:
    from streamsense.brokers.log_store import LogHost


class LogConsumer:
    def __init__(
        self,
        broker: LogHost,
        group: str | None,
        *,
        member_id: str,
        auto_offset_reset: OffsetReset,
        session_timeout_ms: int,
    ) -> None:
        self._broker = broker
        self._store = broker.store
        self._group = group
        self._member_id = member_id
        self._reset = auto_offset_reset
        self._session_timeout_ms = session_timeout_ms
        self._assigned: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._prefetched: dict[TopicPartition, list[Record]] = {}
        self._paused: set[TopicPartition] = set()
        self._topics: list[str] = []
        self._member: GroupMember | None = None
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None
        self._next_partition = 0

    # -- membership -------------------------------------------------------------------------
    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
    ) -> None:
        if self._group is None:
            raise ConfigError("subscribe needs a consumer group; use assign() without one")
        for topic in topics:
            self._broker.partition_count(topic)  # fail fast on an unknown topic
        self._topics = list(topics)
        self._on_assign, self._on_revoke = on_assign, on_revoke
        self._member = GroupMember(
            self._store,
            self._group,
            self._member_id,
            session_timeout_ms=self._session_timeout_ms,
            clock=self._broker.clock,
        )
        self._rebalance_if_due()

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        self._member = None
        self._set_assignment(list(partitions))

    def assignment(self) -> list[TopicPartition]:
        return list(self._assigned)

    def _rebalance_if_due(self) -> None:
        if self._member is None:
            return
        new = self._member.poll_assignment(self._topics, self._broker.partition_count)
        if new is None or new == self._assigned:
            return
        revoked = [tp for tp in self._assigned if tp not in new]
        if revoked and self._on_revoke is not None:
            self._on_revoke(revoked)
        gained = self._set_assignment(new)
        if gained and self._on_assign is not None:
            self._on_assign(gained)

    def _set_assignment(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        old = set(self._assigned)
        self._assigned = sorted(set(partitions))
        for tp in old - set(self._assigned):
            self._positions.pop(tp, None)
            self._prefetched.pop(tp, None)
            self._paused.discard(tp)
        gained = [tp for tp in self._assigned if tp not in old]
        self._positions.update(self._starting_offsets(gained))
        return gained

    def _starting_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        committed: Mapping[TopicPartition, int | None] = {}
        if self._group is not None:
            committed = self._store.read_committed(self._group, partitions)
        starts = {}
        for tp in partitions:
            offset = committed.get(tp)
            starts[tp] = self._reset_offset(tp) if offset is None else offset
        return starts

    def _reset_offset(self, tp: TopicPartition) -> int:
        info = self._store.describe_topic(tp.topic).partitions[tp.partition]
        return info.low if self._reset == "earliest" else info.high

    # -- reading ----------------------------------------------------------------------------
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Record]:
        deadline = time.monotonic() + timeout
        while True:
            self._rebalance_if_due()
            records = self._fetch(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            self._store.wait_for_data(min(remaining, 0.05))

    def _fetch(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        active = [tp for tp in self._assigned if tp not in self._paused]
        if not active:
            return out
        # Rotate the starting partition so one busy partition cannot starve the others.
        start = self._next_partition % len(active)
        self._next_partition += 1
        for tp in active[start:] + active[:start]:
            wanted = max_records - len(out)
            if wanted <= 0:
                break
            out.extend(self._take(tp, wanted))
        return out

    def _take(self, tp: TopicPartition, wanted: int) -> list[Record]:
        position = self._positions[tp]
        batch = self._prefetched.pop(tp, None)
        if not batch:
            batch = self._store.fetch(tp, position, wanted)
        if batch and batch[0].offset < position:
            # A stored batch can start before the position (after a seek or a commit
            # mid-batch): skip what was already consumed.
            batch = [r for r in batch if r.offset >= position]
        if len(batch) > wanted:
            self._prefetched[tp] = batch[wanted:]
            batch = batch[:wanted]
        if batch:
            self._positions[tp] = batch[-1].offset + 1
        return batch

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._positions:
            raise ConfigError(f"{tp} is not assigned to this consumer")
        self._positions[tp] = offset
        self._prefetched.pop(tp, None)

    def position(self, tp: TopicPartition) -> int:
        if tp not in self._positions:
            raise ConfigError(f"{tp} is not assigned to this consumer")
        return self._positions[tp]

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._paused.update(tp for tp in partitions if tp in self._positions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._paused.difference_update(partitions)

    # -- committing -------------------------------------------------------------------------
    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        if self._group is None:
            raise ConfigError("commit needs a consumer group")
        chosen = dict(self._positions) if offsets is None else dict(offsets)
        if chosen:
            self._store.write_committed(self._group, chosen)

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        if self._group is None:
            raise ConfigError("committed offsets need a consumer group")
        return self._store.read_committed(self._group, partitions)

    @property
    def group(self) -> str | None:
        return self._group

    def close(self) -> None:
        if self._member is not None:
            self._member.leave()
            self._member = None
        self._assigned = []
        self._positions.clear()
        self._prefetched.clear()

    def __enter__(self) -> LogConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
