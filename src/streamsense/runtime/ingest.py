"""Feeding files into a stream's topic, exactly once and resumable.

Rows are produced in file order in chunks; each chunk commits atomically with a cursor (rows
done so far) in a small compacted topic. After a crash the same call continues after the
last committed chunk, so no row is lost or produced twice. A stream with a priority
function sends its high-priority rows to the priority lane topic (``Stream.priority``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from streamsense.brokers.base import (
    RECORD_LIMIT_BYTES,
    Broker,
    OutRecord,
    TopicConfig,
    TopicPartition,
    Transaction,
    record_size,
)
from streamsense.errors import InvalidEvent
from streamsense.events import Stream
from streamsense.runtime.partition_read import read_partition

CURSOR_TOPIC = "__streamsense.ingest"
_encode_json = msgspec.json.Encoder().encode

Progress = Callable[[int], None]
RowFilter = Callable[[pa.RecordBatch], pa.RecordBatch]


def ingest_file(
    broker: Broker,
    stream: Stream[Any],
    path: Path,
    *,
    chunk_rows: int = 20_000,
    row_filter: RowFilter | None = None,
    progress: Progress | None = None,
    timestamp: int | None = None,
) -> int:
    """Produce every row of ``path`` (Parquet or JSON lines) into ``stream``; returns the
    number of rows produced by this call (0 when a previous call finished the file)."""
    broker.create_topic(CURSOR_TOPIC, TopicConfig(1, compacted=True), exist_ok=True)
    # The lane topic and the dead letters (rows too large for the broker) may not exist yet.
    for name, config in stream.topic_configs().items():
        broker.create_topic(name, config, exist_ok=True)
    cursor_key = _cursor_key(stream, path, row_filter)
    done = read_cursor(broker, cursor_key)
    if progress is not None and done:
        progress(done)
    produced = 0
    key_name = stream.encoded_name(stream.key)
    chunks = file_chunks(path, stream.topic, key_name, chunk_rows, row_filter, skip=done)
    for chunk in chunks:
        done += len(chunk)
        cursor = OutRecord(CURSOR_TOPIC, str(done).encode(), cursor_key, partition=0)
        if timestamp is not None:
            chunk = [r._replace(timestamp=timestamp) for r in chunk]
        if stream.priority is not None:
            chunk = route_lanes(stream, chunk)
        chunk = [_fit(stream, r) for r in chunk]
        broker.commit_transaction(Transaction("__ingest", records=[*chunk, cursor]))
        produced += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return produced


def _fit(stream: Stream[Any], record: OutRecord) -> OutRecord:
    """The record, or its dead letter when it is too large for the broker."""
    size = record_size(record)
    return record if size <= RECORD_LIMIT_BYTES else stream.oversized_letter(record, "row", size)


def route_lanes(stream: Stream[Any], records: list[OutRecord]) -> list[OutRecord]:
    """Move the records whose payload the stream's priority function picks to its priority
    lane. Records that do not parse stay in the base topic (they become dead letters)."""
    routed = []
    for record in records:
        try:
            payload = stream.parse(record.value or b"")
        except InvalidEvent:
            routed.append(record)
            continue
        routed.append(record._replace(topic=stream.topic_for(payload)))
    return routed


def read_cursor(broker: Broker, cursor_key: bytes) -> int:
    done = 0
    for record in read_partition(broker, TopicPartition(CURSOR_TOPIC, 0)):
        if record.key == cursor_key and record.value is not None:
            done = int(record.value)
    return done


def count_rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _cursor_key(stream: Stream[Any], path: Path, row_filter: RowFilter | None) -> bytes:
    stat = path.stat()
    identity = f"{stream.topic}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{row_filter!r}"
    return hashlib.sha1(identity.encode()).hexdigest().encode()


def file_chunks(
    path: Path,
    topic: str,
    key_name: str | None,
    chunk_rows: int = 20_000,
    row_filter: RowFilter | None = None,
    *,
    skip: int = 0,
) -> Iterator[list[OutRecord]]:
    """Records for the rows of a Parquet or JSON-lines file, in file order, keyed by the
    ``key_name`` column (unkeyed when None), skipping the first ``skip`` rows."""
    if path.suffix == ".parquet":
        yield from _parquet_chunks(path, topic, key_name, chunk_rows, row_filter, skip)
    else:
        yield from _jsonl_chunks(path, topic, key_name, chunk_rows, skip)


def _parquet_chunks(
    path: Path,
    topic: str,
    key_name: str | None,
    chunk_rows: int,
    row_filter: RowFilter | None,
    skip: int,
) -> Iterator[list[OutRecord]]:
    seen = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        if row_filter is not None:
            batch = row_filter(batch)
        if seen + batch.num_rows <= skip:
            seen += batch.num_rows
            continue
        rows = batch.slice(max(0, skip - seen)).to_pylist()
        seen += batch.num_rows
        if key_name is None:
            yield [OutRecord(topic, _encode_json(row)) for row in rows]
        else:
            yield [OutRecord(topic, _encode_json(row), str(row[key_name]).encode()) for row in rows]


def _jsonl_chunks(
    path: Path, topic: str, key_name: str | None, chunk_rows: int, skip: int
) -> Iterator[list[OutRecord]]:
    """Lines go in as they are, valid or not: bad ones reach the dead-letter topic through
    the pipeline, with their original bytes."""
    chunk: list[OutRecord] = []
    index = 0
    with path.open("rb") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            index += 1
            if index <= skip:
                continue
            key = None if key_name is None else _key_of_line(line, key_name)
            chunk.append(OutRecord(topic, line, key))
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _key_of_line(line: bytes, key_name: str) -> bytes | None:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    if isinstance(value, dict) and key_name in value:
        return str(value[key_name]).encode()
    return None
