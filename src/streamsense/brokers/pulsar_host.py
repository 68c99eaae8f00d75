"""What the Pulsar consumer and retention need of their broker, as a protocol: they take a
``PulsarHost`` instead of importing ``PulsarBroker``, which imports them (no import circle,
as ``LogHost`` does for the log brokers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import pulsar

from streamsense.brokers.base import Consumer, OffsetReset, TopicPartition
from streamsense.brokers.pulsar_admin import PulsarAdmin
from streamsense.brokers.pulsar_offsets import Bounds, OffsetIndex


class PulsarHost(Protocol):
    client: pulsar.Client
    admin: PulsarAdmin
    index: OffsetIndex

    def partition_count(self, topic: str) -> int: ...

    def bounds(self, tp: TopicPartition) -> Bounds: ...

    def committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]: ...

    def store_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None: ...

    def consumer(
        self,
        group: str | None = None,
        *,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_ms: int = 10_000,
    ) -> Consumer: ...
