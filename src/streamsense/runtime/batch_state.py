"""Batch-stage state in a compacted changelog topic: one record per key, never one record
holding a partition's whole state.

A write (every so many events or seconds, with a commit) holds the entries of the keys
that changed since the last write, then one ``meta`` record naming the source offsets the
state is as of. Entries larger than ``PART_BYTES`` are split into parts, each its own
record, so no record nears the broker's limit however many rows a key keeps. Writes follow
their offsets' commit (atomically where the broker can, right after it elsewhere:
``Transaction.after_offsets``), so a meta record never runs ahead of the committed offsets.

Reading back takes the latest meta within the committed offsets and the latest entry of
every key. A write cut short by a crash (at least once on Kafka) leaves entries newer than
the meta; the stage keeps from them only what the meta's position has seen (entries.py),
and the replay from the meta's offsets brings the rest back. A key whose parts do not come
from one write cannot be rebuilt: the read then reports no state, and the partition is
rebuilt by replaying its source from the start.

Record keys: ``0x00 meta`` for the meta, ``0x01 + key`` for an entry's first part,
``0x02 + part number (4 bytes) + key`` for the others.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from streamsense.brokers.base import Broker, OutRecord, TopicPartition
from streamsense.runtime.partition_read import read_partition

log = logging.getLogger(__name__)

PART_BYTES = 256 * 1024  # well under Kafka's default 1 MB record limit
META_KEY = b"\x00meta"
_HEAD, _PART = 1, 2
PROGRESS_EVERY_S = 5.0


class Meta(msgspec.Struct, frozen=True, array_like=True):
    offsets: dict[str, int]  # source topic -> next offset the state has seen
    meta: bytes  # the stage's own (watermark, sequence)


class Part(msgspec.Struct, frozen=True, array_like=True):
    write: int  # which write it belongs to (parts of one key must agree)
    parts: int
    data: bytes


_encode = msgspec.msgpack.Encoder().encode
_decode_meta = msgspec.msgpack.Decoder(Meta).decode
_decode_part = msgspec.msgpack.Decoder(Part).decode


@dataclass
class StoredState:
    offsets: dict[str, int]
    meta: bytes
    entries: list[tuple[bytes, bytes]]
    multipart: dict[bytes, int] = field(default_factory=dict)  # keys written in parts


def write_id(offsets: Mapping[str, int]) -> int:
    """The same for a write and its retry (same state, same offsets), else different."""
    digest = hashlib.blake2b(repr(sorted(offsets.items())).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def state_records(
    topic: str,
    partition: int,
    offsets: dict[str, int],
    meta: bytes,
    entries: list[tuple[bytes, bytes | None]],
    multipart: dict[bytes, int],
    part_bytes: int = PART_BYTES,
) -> list[OutRecord]:
    """The records of one write: entries first, the meta last. ``multipart`` (keys
    written in several parts, and how many) is updated so stale parts get tombstones."""
    write = write_id(offsets)
    records = []
    for key, value in entries:
        chunks = _chunks(value, part_bytes) if value is not None else []
        before = multipart.pop(key, 1)
        if len(chunks) > 1:
            multipart[key] = len(chunks)
        for number, chunk in enumerate(chunks):
            body = _encode(Part(write, len(chunks), chunk))
            records.append(OutRecord(topic, body, _part_key(key, number), partition))
        gone = range(max(len(chunks), 0 if value is None else 1), before)
        records.extend(OutRecord(topic, None, _part_key(key, n), partition) for n in gone)
    records.append(OutRecord(topic, _encode(Meta(offsets, meta)), META_KEY, partition))
    return records


def _chunks(value: bytes, size: int) -> list[bytes]:
    return [value[i : i + size] for i in range(0, max(len(value), 1), size)]


def _part_key(key: bytes, number: int) -> bytes:
    if number == 0:
        return bytes([_HEAD]) + key
    return bytes([_PART]) + number.to_bytes(4, "big") + key


def read_state(
    broker: Broker, topic: str, partition: int, committed: Mapping[TopicPartition, int]
) -> StoredState | None:
    """The partition's state as the latest meta within the ``committed`` offsets and the
    latest entry of every key; None when there is none or it cannot be rebuilt."""
    chosen: Meta | None = None
    heads: dict[bytes, Part | None] = {}
    parts: dict[tuple[bytes, int], Part | None] = {}
    started = last_log = time.monotonic()
    for n, record in enumerate(read_partition(broker, TopicPartition(topic, partition)), 1):
        key, value = record.key or b"", record.value
        if key == META_KEY:
            if value is not None:
                meta = _decode_meta(value)
                if _covered(meta, partition, committed):
                    chosen = meta
        elif key[:1] == bytes([_HEAD]):
            heads[key[1:]] = None if value is None else _decode_part(value)
        elif key[:1] == bytes([_PART]):
            parts[(key[5:], int.from_bytes(key[1:5], "big"))] = (
                None if value is None else _decode_part(value)
            )
        if time.monotonic() - last_log >= PROGRESS_EVERY_S:
            last_log = time.monotonic()
            log.info("restoring %s[%d]: %d records read", topic, partition, n)
    if chosen is None:
        return None
    state = _assemble(chosen, heads, parts)
    if state is None:
        log.warning("%s[%d]: parts of an entry disagree; replaying the source", topic, partition)
    else:
        log.info(
            "restored %s[%d]: %d keys in %.1f s",
            topic,
            partition,
            len(state.entries),
            time.monotonic() - started,
        )
    return state


def latest_state(
    broker: Broker, topic: str, partition: int, sources: Sequence[str]
) -> StoredState | None:
    """The state the last write of a batch stage left in ``topic`` (its sources' whole logs
    count as committed: a write follows its offsets' commit). For a process that keeps its
    own copy of a pipeline's model, such as a server: it loads this, then follows the
    sources from the offsets it names. None when there is no such state."""
    if topic not in broker.list_topics():
        return None
    ends = {}
    for source in sources:
        tp = TopicPartition(source, partition)
        ends[tp] = broker.settled_end(tp)
    return read_state(broker, topic, partition, ends)


def _assemble(
    meta: Meta, heads: dict[bytes, Part | None], parts: dict[tuple[bytes, int], Part | None]
) -> StoredState | None:
    state = StoredState(meta.offsets, meta.meta, [])
    for key, head in heads.items():
        if head is None:
            continue
        if head.parts == 1:
            state.entries.append((key, head.data))
            continue
        rest = [parts.get((key, n)) for n in range(1, head.parts)]
        if any(p is None or p.write != head.write for p in rest):
            return None
        state.entries.append((key, head.data + b"".join(p.data for p in rest if p is not None)))
        state.multipart[key] = head.parts
    return state


def _covered(meta: Meta, partition: int, committed: Mapping[TopicPartition, int]) -> bool:
    for source, offset in meta.offsets.items():
        done = committed.get(TopicPartition(source, partition))
        if done is None or offset > done:
            return False
    return True
