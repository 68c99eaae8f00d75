"""Consumer groups on Pulsar: one owner per partition through failover subscriptions.

A member subscribes to every partition topic of its topics with a Failover subscription
named after the group and a consumer name of its own. For each partition topic the broker
makes one consumer active: the members sorted by name, index ``partition % members``. So
partitions spread evenly, partition p of every topic with the same partition count has the
same owner (as Kafka's range assignor gives, keeping co-partitioned sources together), and
when a member leaves, or its connection drops (a killed process), the broker hands its
partitions to the others at once. A member that hangs with its connection open keeps them
until Pulsar's keep-alive (30 s) gives up on it.

The subscriptions elect owners: they are opened with a receive queue of 0 and never
receive, so the broker delivers nothing through them. Records are read by readers at the
group's committed offsets (pulsar_consumer), which stay streamsense's offsets; a commit
also acknowledges cumulatively up to the last record read, so the subscription's cursor
follows the group and Pulsar's retention can free what the group has consumed. The Python
client does not report active/inactive changes, so a member learns what it owns from the
topic's stats (``activeConsumerName``), refreshed at most every REFRESH_S while polling: an
old owner may keep reading for that long after a new one started. At least once allows
that; a commit that started from offsets the other owner has since moved is refused
(``Transaction.expected``)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pulsar

from streamsense.brokers.base import TopicPartition
from streamsense.brokers.pulsar_admin import PulsarAdmin, partition_topic
from streamsense.errors import BrokerUnavailable

REFRESH_S = 0.5


class FailoverMembership:
    def __init__(self, client: pulsar.Client, admin: PulsarAdmin, group: str) -> None:
        self._client = client
        self._admin = admin
        self.group = group
        self.name = f"member-{uuid.uuid4().hex}"
        self._topics: list[str] = []
        self._subscriptions: dict[TopicPartition, Any] = {}
        self._checked = 0.0

    def join(self, topics: Sequence[str], partitions: dict[str, int]) -> None:
        self.leave()
        self._topics = list(topics)
        for topic in topics:
            for partition in range(partitions[topic]):
                try:
                    subscription = self._client.subscribe(
                        partition_topic(topic, partition),
                        self.group,
                        consumer_type=pulsar.ConsumerType.Failover,
                        consumer_name=self.name,
                        receiver_queue_size=0,
                        initial_position=pulsar.InitialPosition.Latest,
                    )
                except pulsar.PulsarException as error:
                    self.leave()
                    raise BrokerUnavailable(f"cannot join group {self.group!r}: {error}") from error
                self._subscriptions[TopicPartition(topic, partition)] = subscription
        self._checked = 0.0

    def due(self) -> bool:
        return bool(self._topics) and time.monotonic() - self._checked >= REFRESH_S

    def owned(self) -> set[TopicPartition]:
        """The partitions the broker currently delivers to this member."""
        self._checked = time.monotonic()
        mine: set[TopicPartition] = set()
        for topic in self._topics:
            for partition, active in self._admin.active_consumers(topic, self.group).items():
                if active == self.name:
                    mine.add(TopicPartition(topic, partition))
        return mine

    def acknowledge(self, tp: TopicPartition, ledger: int, entry: int) -> None:
        """Move the subscription's cursor up to this message (a cumulative ack), so that
        Pulsar's retention may delete what the group has consumed. Best effort: only the
        active member may, and the committed offset stays the subscription's property."""
        subscription = self._subscriptions.get(tp)
        if subscription is not None:
            with contextlib.suppress(pulsar.PulsarException):
                subscription.acknowledge_cumulative(pulsar.MessageId(-1, ledger, entry, -1))

    def leave(self) -> None:
        for subscription in self._subscriptions.values():
            # Already gone with its connection: leaving is done either way.
            with contextlib.suppress(pulsar.PulsarException):
                subscription.close()
        self._subscriptions = {}
        self._topics = []
