"""Consumer-group membership for the brokers that streamsense runs itself (memory, embedded).

There is no coordinator process: members heartbeat into shared storage with a lease, and
every member computes the same assignment from the same sorted list of live members. During
a rebalance two members can briefly believe they own a partition; exactly-once commits stay
safe because a commit names the offsets it started from and is fenced if they moved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from streamsense.brokers.base import TopicPartition
from streamsense.clock import Clock


class MembershipStore(Protocol):
    def heartbeat(self, group: str, member: str, now_ms: int, session_timeout_ms: int) -> list[str]:
        """Renew ``member``'s lease, drop expired members, return the live ones sorted."""
        ...

    def leave(self, group: str, member: str) -> None: ...


def assign(
    members: Sequence[str], partitions: Sequence[TopicPartition]
) -> dict[str, list[TopicPartition]]:
    """Partition p of every topic goes to member ``p % len(members)``: co-partitioned topics
    (same key, same partition count) stay together, as keyed state requires."""
    ordered = sorted(members)
    result: dict[str, list[TopicPartition]] = {m: [] for m in ordered}
    if not ordered:
        return result
    for tp in sorted(partitions):
        result[ordered[tp.partition % len(ordered)]].append(tp)
    return result


class GroupMember:
    """One consumer's view of its group: heartbeats on a schedule and recomputes its share."""

    def __init__(
        self,
        store: MembershipStore,
        group: str,
        member_id: str,
        *,
        session_timeout_ms: int,
        clock: Clock,
    ) -> None:
        self._store = store
        self._group = group
        self._member = member_id
        self._timeout_ms = session_timeout_ms
        self._clock = clock
        # Heartbeat well inside the session timeout so a live member never expires.
        self._interval_ms = max(1, session_timeout_ms // 5)
        self._next_beat_ms = 0
        self._members: list[str] = []

    def poll_assignment(
        self, topics: Sequence[str], partitions_of: Callable[[str], int]
    ) -> list[TopicPartition] | None:
        """The member's partitions if a heartbeat was due (None otherwise)."""
        now = self._clock.now_ms()
        if now < self._next_beat_ms:
            return None
        self._next_beat_ms = now + self._interval_ms
        self._members = self._store.heartbeat(self._group, self._member, now, self._timeout_ms)
        every = [TopicPartition(t, p) for t in topics for p in range(partitions_of(t))]
        return assign(self._members, every).get(self._member, [])

    def force_heartbeat(self) -> None:
        self._next_beat_ms = 0

    def leave(self) -> None:
        self._store.leave(self._group, self._member)
