"""Feeding files into a stream's topic, exactly once and resumable.

Rows are produced in file order in chunks; each chunk commits atomically with a cursor (rows
done so far) in a small compacted topic. After a crash the same call continues after the
last committed chunk, so no row is lost or produced twice. A stream with a priority
function sends its high-priority rows to the priority lane topic (``Stream.priority``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from streamsense.brokers.base import (
    RECORD_LIMIT_BYTES,
    Broker,
    Headers,
    OutRecord,
    TopicConfig,
    TopicPartition,
    Transaction,
    record_size,
)
from streamsense.errors import InvalidEvent
from streamsense.events import Schema, Stream
from streamsense.runtime.conform import (
    REJECT_FIELD,
    REJECT_REASON,
    REJECT_TEXT,
    fields_of,
)
from streamsense.runtime.csv_input import spelled
from streamsense.runtime.input_files import (
    Format,
    count_rows,
    file_format,
    read_through,
    typed_batches,
)
from streamsense.runtime.json_lines import LineCaster, check_json_lines, json_line_chunks
from streamsense.runtime.partition_read import read_partition

__all__ = ["RowFilter", "Source", "count_rows", "file_chunks", "ingest_file", "read_cursor"]

CURSOR_TOPIC = "__streamsense.ingest"
_encode_json = msgspec.json.Encoder().encode

Progress = Callable[[int], None]
RowFilter = Callable[[pa.RecordBatch], pa.RecordBatch]
# The dead letter of a row that cannot be typed: (row, key, row number in the file).
Reject = Callable[[dict[str, Any], bytes | None, int], OutRecord]


def ingest_file(
    broker: Broker,
    stream: Stream[Any],
    path: Path,
    *,
    chunk_rows: int = 20_000,
    row_filter: RowFilter | None = None,
    progress: Progress | None = None,
    timestamp: int | None = None,
    fmt: Format | None = None,
    file_schema: type[Schema] | None = None,
    dead_letter: Callable[[str], None] | None = None,
) -> int:
    """Produce every row of ``path`` (Parquet, CSV or JSON lines: ``fmt``, else guessed)
    into ``stream``; returns the number of rows produced by this call (0 when a previous
    call finished the file), dead letters included.

    The file's columns are checked against ``file_schema`` (the stream's, unless the rows
    are derived from another stream's file by ``row_filter``) before anything is produced
    (InputFileError). Rows with a cell that cannot be typed exactly go to the stream's dead
    letters (``dead_letter`` is told each one's field); rows derived from another
    stream's file skip them, as that stream's ingest dead-letters them."""
    chosen = file_format(path, fmt)
    read_through(path, chosen)  # all or nothing: a file corrupt halfway ingests no chunk
    source = Source(path, chosen, file_schema or stream.schema)
    reject = _dead_letter_for(stream, path) if file_schema in (None, stream.schema) else None
    broker.create_topic(CURSOR_TOPIC, TopicConfig(1, compacted=True), exist_ok=True)
    # The lane topic and the dead letters (rows too large for the broker) may not exist yet.
    for name, config in stream.topic_configs().items():
        broker.create_topic(name, config, exist_ok=True)
    cursor_key = _cursor_key(stream, path, row_filter, chosen)
    done = read_cursor(broker, cursor_key)
    if progress is not None and done:
        progress(done)
    produced = 0
    key_name = stream.encoded_name(stream.key)
    chunks = file_chunks(source, stream.topic, key_name, chunk_rows, row_filter, done, reject)
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
        if dead_letter is not None:
            _tell_dead_letters(stream, chunk, dead_letter)
    return produced


def _tell_dead_letters(
    stream: Stream[Any], records: list[OutRecord], tell: Callable[[str], None]
) -> None:
    """Tells the field of each dead letter among ``records`` ("size": too large a row)."""
    for record in records:
        if record.topic == stream.dead_letter_topic:
            tell(dict(record.headers).get("field", b"").decode() or "size")


def _dead_letter_for(stream: Stream[Any], path: Path) -> Reject:
    """The dead letter of a file row that cannot be typed: the row as read, with the
    field, the reason and the row's place in the file."""

    def letter(row: dict[str, Any], key: bytes | None, number: int) -> OutRecord:
        reason, field = row.pop(REJECT_REASON), row.pop(REJECT_FIELD)
        text = row.pop(REJECT_TEXT, None)
        headers: Headers = (
            ("reason", str(reason).encode()),
            ("field", str(field).encode()),
            ("source", f"{path}#row={number}".encode()),
        )
        value = _encode_json(row) if text is None else str(text).encode()
        return OutRecord(stream.dead_letter_topic, value, key, 0, headers=headers)

    return letter


def _fit(stream: Stream[Any], record: OutRecord) -> OutRecord:
    """The record, or its dead letter when it is too large for the broker."""
    size = record_size(record)
    return record if size <= RECORD_LIMIT_BYTES else stream.oversized_letter(record, "row", size)


def route_lanes(stream: Stream[Any], records: list[OutRecord]) -> list[OutRecord]:
    """Move the records whose payload the stream's priority function picks to its priority
    lane. Records that do not parse stay in the base topic (they become dead letters)."""
    routed = []
    for record in records:
        if record.topic != stream.topic:  # a dead letter stays one
            routed.append(record)
            continue
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


def _cursor_key(
    stream: Stream[Any], path: Path, row_filter: RowFilter | None, fmt: Format
) -> bytes:
    stat = path.stat()
    identity = f"{stream.topic}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{row_filter!r}"
    # Before formats were chosen a file was Parquet by its extension, else JSON lines: a
    # cursor of those days still names the same file (a resumed ingest must find it).
    if fmt != ("parquet" if path.suffix == ".parquet" else "jsonl"):
        identity += f"|{fmt}"
    return hashlib.sha1(identity.encode()).hexdigest().encode()


@dataclass(frozen=True)
class Source:
    """A file to read, its format, and the schema its rows must follow (as read: None)."""

    path: Path
    fmt: Format
    schema: type[Schema] | None = None


def file_chunks(
    source: Source,
    topic: str,
    key_name: str | None,
    chunk_rows: int = 20_000,
    row_filter: RowFilter | None = None,
    skip: int = 0,
    reject: Reject | None = None,
) -> Iterator[list[OutRecord]]:
    """Records for the rows of a file, in file order, keyed by the ``key_name`` column
    (unkeyed when None), skipping the first ``skip`` rows. Rows that cannot be typed
    become ``reject``'s dead letters (are skipped without it). Read as is (no schema), a
    CSV cell is what it spells (a number, a boolean, else text) and a ragged line is its
    text: the worker dead-letters such a row alone, with its bytes."""
    if source.fmt == "jsonl":
        cast = None
        if source.schema is not None:
            check_json_lines(source.path, fields_of(source.schema))
            cast = LineCaster(source.schema)
        yield from json_line_chunks(source.path, topic, key_name, chunk_rows, skip, cast)
        return
    fields = None if source.schema is None else fields_of(source.schema)
    batches = typed_batches(source.path, source.fmt, fields, chunk_rows)
    seen = 0
    as_read = source.schema is None
    for batch in batches:
        if reject is None and not as_read:
            batch = _without_rejects(batch)
        if row_filter is not None:
            batch = row_filter(batch)
        if seen + batch.num_rows <= skip:
            seen += batch.num_rows
            continue
        first = max(0, skip - seen)
        rows = batch.slice(first).to_pylist()
        if as_read and source.fmt == "csv":
            rows = [spelled(row) for row in rows]
        yield [
            _record(topic, key_name, row, reject, seen + first + i + 1)
            for i, row in enumerate(rows)
        ]
        seen += batch.num_rows


def _record(
    topic: str, key_name: str | None, row: dict[str, Any], reject: Reject | None, number: int
) -> OutRecord:
    if row.get(REJECT_TEXT) is not None and reject is None:  # a ragged line, as it is
        return OutRecord(topic, str(row[REJECT_TEXT]).encode())
    key = None if key_name is None or row.get(key_name) is None else str(row[key_name]).encode()
    if reject is not None and row.get(REJECT_FIELD) is not None:
        return reject(row, key, number)
    for column in (REJECT_FIELD, REJECT_REASON, REJECT_TEXT):
        row.pop(column, None)
    return OutRecord(topic, _encode_json(row), key)


def _without_rejects(batch: pa.RecordBatch) -> pa.RecordBatch:
    if REJECT_FIELD not in batch.schema.names:
        return batch
    kept = batch.filter(pc.is_null(batch.column(REJECT_FIELD)))
    rejects = [c for c in (REJECT_FIELD, REJECT_REASON, REJECT_TEXT) if c in kept.schema.names]
    return kept.drop_columns(rejects)
