"""Keyed state for stages, kept in memory and made durable through compacted changelogs.

Each stage's state lives per source partition, so a partition and its state move together
between workers. Changed keys become changelog records that commit in the same transaction
as the outputs and offsets; a worker that gains a partition reads its changelog back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from streamsense.brokers.base import Broker, OutRecord, TopicPartition

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode

_MISSING = object()


class KeyState:
    """One stage's state for one key. Values must be msgpack-serialisable."""

    __slots__ = ("_key", "_partition", "_stage", "_store", "_table")

    def __init__(
        self, store: StateStore, stage: str, partition: int, table: dict[str, Any], key: str
    ) -> None:
        self._store = store
        self._stage = stage
        self._partition = partition
        self._table = table
        self._key = key

    def get(self, default: Any = None) -> Any:
        return self._table.get(self._key, default)

    def set(self, value: Any) -> None:
        self._table[self._key] = value
        self._store.mark_dirty(self._stage, self._partition, self._key, self._table)

    def delete(self) -> None:
        self._table.pop(self._key, None)
        self._store.mark_dirty(self._stage, self._partition, self._key, self._table)


class StateStore:
    def __init__(self, changelogs: dict[str, str]) -> None:
        """``changelogs`` maps a stage name to its changelog topic."""
        self._changelogs = changelogs
        self._tables: dict[tuple[str, int], dict[str, Any]] = {}
        self._dirty: dict[tuple[str, int, str], dict[str, Any]] = {}

    def table(self, stage: str, partition: int) -> dict[str, Any]:
        table = self._tables.get((stage, partition))
        if table is None:
            table = self._tables[(stage, partition)] = {}
        return table

    def state(self, stage: str, partition: int, key: str) -> KeyState:
        return KeyState(self, stage, partition, self.table(stage, partition), key)

    def mark_dirty(self, stage: str, partition: int, key: str, table: dict[str, Any]) -> None:
        self._dirty[(stage, partition, key)] = table

    def take_changes(self) -> list[OutRecord]:
        """Changelog records for every key changed since the last call (tombstones for
        deleted keys), in a deterministic order."""
        records = []
        for (stage, partition, key), table in sorted(self._dirty.items(), key=lambda kv: kv[0]):
            value = table.get(key, _MISSING)
            encoded = None if value is _MISSING else _encode(value)
            records.append(OutRecord(self._changelogs[stage], encoded, key.encode(), partition))
        self._dirty.clear()
        return records

    def discard_changes(self) -> None:
        self._dirty.clear()

    def drop(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for stage, partition in [k for k in self._tables if k[1] in gone]:
            del self._tables[(stage, partition)]
        self._dirty = {k: v for k, v in self._dirty.items() if k[1] not in gone}

    def restore(self, broker: Broker, partitions: Iterable[int]) -> int:
        """Read the changelogs of ``partitions`` back; returns how many keys were loaded."""
        wanted = sorted(set(partitions))
        self.drop(wanted)
        loaded = 0
        for stage, topic in self._changelogs.items():
            for partition in wanted:
                table = self.table(stage, partition)
                for key, value in _read_changelog(broker, TopicPartition(topic, partition)):
                    if value is None:
                        table.pop(key, None)
                    else:
                        table[key] = _decode(value)
                loaded += len(table)
        return loaded


def _read_changelog(broker: Broker, tp: TopicPartition) -> Iterable[tuple[str, bytes | None]]:
    high = broker.describe_topic(tp.topic).partitions[tp.partition].high
    consumer = broker.consumer()
    try:
        consumer.assign([tp])
        while consumer.position(tp) < high:
            records = consumer.poll(10_000, timeout=1.0)
            if not records:
                break
            for record in records:
                yield (record.key or b"").decode(), record.value
    finally:
        consumer.close()
