"""Keyed state for stages, kept in memory and made durable through compacted changelogs.

Each stage's state lives per source partition, so a partition and its state move together
between workers. Changed keys become changelog records that commit in the same transaction
as the outputs and offsets; a worker that gains a partition reads its changelog back.

Each changelog record names (header ``upto``) the source offsets its commit was to commit.
Where records and offsets commit atomically (embedded broker, Kafka transactions) that is
always true. At least once on Kafka, the records are written first and the offsets after:
a crash or a fenced offset commit in between leaves state changes of events whose offsets
were never committed, which will be processed again. A restore therefore keeps, per key, the
last value whose ``upto`` the group has committed; only a key with no such value left
(compaction removed it) takes its newest one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from streamsense.brokers.base import RECORD_LIMIT_BYTES, Broker, Headers, OutRecord, TopicPartition
from streamsense.errors import FatalError
from streamsense.runtime.partition_read import read_partition

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

    def take_changes(self, offsets: Mapping[TopicPartition, int] | None = None) -> list[OutRecord]:
        """Changelog records for every key changed since the last call (tombstones for
        deleted keys), in a deterministic order, each naming the source ``offsets`` of its
        partition that commit with it."""
        upto: dict[int, Headers] = {}
        for tp, offset in (offsets or {}).items():
            upto.setdefault(tp.partition, ())
            upto[tp.partition] += ((f"upto:{tp.topic}", str(offset).encode()),)
        records = []
        for (stage, partition, key), table in sorted(self._dirty.items(), key=lambda kv: kv[0]):
            value = table.get(key, _MISSING)
            encoded = None if value is _MISSING else _encode(value)
            if encoded is not None and len(encoded) + len(key) > RECORD_LIMIT_BYTES:
                raise FatalError(
                    f"stage {stage!r} keeps {len(encoded)} bytes for key {key!r}, over the "
                    f"{RECORD_LIMIT_BYTES}-byte record limit of its changelog: keep less per "
                    "key (a feature stage keeps large windows per key in parts)"
                )
            records.append(
                OutRecord(
                    self._changelogs[stage],
                    encoded,
                    key.encode(),
                    partition,
                    headers=upto.get(partition, ()),
                )
            )
        self._dirty.clear()
        return records

    def discard_changes(self) -> None:
        self._dirty.clear()

    def drop(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for stage, partition in [k for k in self._tables if k[1] in gone]:
            del self._tables[(stage, partition)]
        self._dirty = {k: v for k, v in self._dirty.items() if k[1] not in gone}

    def restore(
        self,
        broker: Broker,
        partitions: Iterable[int],
        committed: Mapping[TopicPartition, int | None] | None = None,
    ) -> int:
        """Read the changelogs of ``partitions`` back as of the ``committed`` source offsets
        (see the module doc); returns how many keys were loaded."""
        wanted = sorted(set(partitions))
        self.drop(wanted)
        done = {(tp.topic, tp.partition): offset for tp, offset in (committed or {}).items()}
        loaded = 0
        for stage, topic in self._changelogs.items():
            for partition in wanted:
                table = self.table(stage, partition)
                table.update(_as_of(broker, TopicPartition(topic, partition), done))
                loaded += len(table)
        return loaded


def _as_of(
    broker: Broker, tp: TopicPartition, done: Mapping[tuple[str, int], int | None]
) -> dict[str, Any]:
    """Each key's last value whose source offsets were committed (else its newest)."""
    kept: dict[str, bytes | None] = {}
    newest: dict[str, bytes | None] = {}
    for record in read_partition(broker, tp):
        key = (record.key or b"").decode()
        newest[key] = record.value
        if _committed(record.headers, tp.partition, done):
            kept[key] = record.value
    values = {**newest, **kept}
    return {key: _decode(value) for key, value in values.items() if value is not None}


def _committed(
    headers: Headers, partition: int, done: Mapping[tuple[str, int], int | None]
) -> bool:
    for name, value in headers:
        if name.startswith("upto:"):
            offset = done.get((name[len("upto:") :], partition))
            if offset is None or int(value) > offset:
                return False
    return True
