"""The embedded broker's tables and the SQL that reads and writes them.

Kept apart from embedded.py so the broker logic reads without SQL in the way. Every function
takes a connection that the caller has already put in the right transaction.
"""

from __future__ import annotations

import sqlite3

import msgspec

from streamsense.brokers.base import Headers, TopicConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    partitions INTEGER NOT NULL,
    retention_ms INTEGER,
    retention_bytes INTEGER,
    compacted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS partitions (
    topic_id INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition)
) WITHOUT ROWID;
-- One row per batch of records (msgpack), keyed to find the batch holding an offset.
CREATE TABLE IF NOT EXISTS batches (
    topic_id INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    base_offset INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    max_ts INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (topic_id, partition, last_offset)
);
-- Compacted topics: the latest record per key.
CREATE TABLE IF NOT EXISTS compacted (
    topic_id INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    key BLOB NOT NULL,
    offset INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value BLOB,
    headers BLOB,
    PRIMARY KEY (topic_id, partition, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS compacted_by_offset ON compacted (topic_id, partition, offset);
CREATE TABLE IF NOT EXISTS committed (
    grp TEXT NOT NULL,
    topic_id INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic_id, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    grp TEXT NOT NULL,
    member TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, member)
) WITHOUT ROWID;
"""

_encode_headers = msgspec.msgpack.Encoder().encode
_decode_headers = msgspec.msgpack.Decoder(tuple[tuple[str, bytes], ...]).decode


def prepare(conn: sqlite3.Connection, synchronous: str) -> None:
    # WAL lets readers in other processes run while one writer commits; NORMAL sync is
    # durable against a process crash (kill -9), the failure the runtime must survive.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("BEGIN IMMEDIATE")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("COMMIT")


def topic_row(conn: sqlite3.Connection, name: str) -> tuple[int, TopicConfig] | None:
    row = conn.execute(
        "SELECT id, partitions, retention_ms, retention_bytes, compacted FROM topics"
        " WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        return None
    topic_id, partitions, retention_ms, retention_bytes, compacted = row
    return topic_id, TopicConfig(partitions, retention_ms, retention_bytes, bool(compacted))


def insert_topic(conn: sqlite3.Connection, name: str, config: TopicConfig) -> None:
    cursor = conn.execute(
        "INSERT INTO topics (name, partitions, retention_ms, retention_bytes, compacted)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            name,
            config.partitions,
            config.retention_ms,
            config.retention_bytes,
            int(config.compacted),
        ),
    )
    topic_id = cursor.lastrowid
    conn.executemany(
        "INSERT INTO partitions (topic_id, partition) VALUES (?, ?)",
        [(topic_id, p) for p in range(config.partitions)],
    )


def delete_topic(conn: sqlite3.Connection, topic_id: int) -> None:
    for table in ("batches", "compacted", "partitions", "committed"):
        conn.execute(f"DELETE FROM {table} WHERE topic_id = ?", (topic_id,))
    conn.execute("DELETE FROM topics WHERE id = ?", (topic_id,))


def partition_bounds(
    conn: sqlite3.Connection, topic_id: int, compacted: bool
) -> list[tuple[int, int, int]]:
    """(partition, low, high) per partition: the first kept offset and the next offset."""
    table, column = ("compacted", "offset") if compacted else ("batches", "base_offset")
    rows = conn.execute(
        f"SELECT p.partition, p.next_offset, (SELECT min(b.{column}) FROM {table} b"
        "  WHERE b.topic_id = p.topic_id AND b.partition = p.partition)"
        " FROM partitions p WHERE p.topic_id = ? ORDER BY p.partition",
        (topic_id,),
    ).fetchall()
    return [(p, high if low is None else low, high) for p, high, low in rows]


def next_offset(conn: sqlite3.Connection, topic_id: int, partition: int) -> int | None:
    row = conn.execute(
        "SELECT next_offset FROM partitions WHERE topic_id = ? AND partition = ?",
        (topic_id, partition),
    ).fetchone()
    return None if row is None else int(row[0])


def set_next_offset(conn: sqlite3.Connection, topic_id: int, partition: int, offset: int) -> None:
    conn.execute(
        "UPDATE partitions SET next_offset = ? WHERE topic_id = ? AND partition = ?",
        (offset, topic_id, partition),
    )


def insert_batches(
    conn: sqlite3.Connection, rows: list[tuple[int, int, int, int, int, int, bytes]]
) -> None:
    conn.executemany(
        "INSERT INTO batches"
        " (topic_id, partition, base_offset, last_offset, max_ts, nbytes, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def read_batches(
    conn: sqlite3.Connection, topic_id: int, partition: int, offset: int, limit: int
) -> list[tuple[bytes]]:
    return conn.execute(
        "SELECT payload FROM batches WHERE topic_id = ? AND partition = ? AND last_offset >= ?"
        " ORDER BY last_offset LIMIT ?",
        (topic_id, partition, offset, limit),
    ).fetchall()


StoredRow = tuple[str, int, int, int, bytes | None, bytes | None, Headers]


def upsert_compacted(
    conn: sqlite3.Connection, topic_id: int, partition: int, rows: list[StoredRow]
) -> None:
    for _, _, offset, timestamp, raw_key, value, headers in rows:
        key = raw_key if raw_key is not None else b""
        if value is None:  # a tombstone deletes the key
            conn.execute(
                "DELETE FROM compacted WHERE topic_id = ? AND partition = ? AND key = ?",
                (topic_id, partition, key),
            )
            continue
        conn.execute(
            "INSERT OR REPLACE INTO compacted VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                topic_id,
                partition,
                key,
                offset,
                timestamp,
                value,
                _encode_headers(headers) if headers else None,
            ),
        )


def read_compacted(
    conn: sqlite3.Connection, topic_id: int, partition: int, offset: int, limit: int
) -> list[tuple[int, int, bytes, bytes, Headers]]:
    rows = conn.execute(
        "SELECT offset, ts, key, value, headers FROM compacted"
        " WHERE topic_id = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?",
        (topic_id, partition, offset, limit),
    ).fetchall()
    return [(o, ts, k, v, _decode_headers(h) if h else ()) for o, ts, k, v, h in rows]


def committed_offset(
    conn: sqlite3.Connection, group: str, topic_id: int, partition: int
) -> int | None:
    row = conn.execute(
        "SELECT offset FROM committed WHERE grp = ? AND topic_id = ? AND partition = ?",
        (group, topic_id, partition),
    ).fetchone()
    return None if row is None else int(row[0])


def upsert_committed(conn: sqlite3.Connection, rows: list[tuple[str, int, int, int]]) -> None:
    conn.executemany(
        "INSERT INTO committed (grp, topic_id, partition, offset) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (grp, topic_id, partition) DO UPDATE SET offset = excluded.offset",
        rows,
    )


def heartbeat(
    conn: sqlite3.Connection, group: str, member: str, now_ms: int, expires_ms: int
) -> list[str]:
    conn.execute(
        "INSERT INTO members (grp, member, expires_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (grp, member) DO UPDATE SET expires_ms = excluded.expires_ms",
        (group, member, expires_ms),
    )
    conn.execute("DELETE FROM members WHERE grp = ? AND expires_ms < ?", (group, now_ms))
    rows = conn.execute("SELECT member FROM members WHERE grp = ? ORDER BY member", (group,))
    return [row[0] for row in rows]


def data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def enforce_retention(conn: sqlite3.Connection, now_ms: int) -> int:
    """Delete whole batches from the start of each partition, as Kafka deletes segments:
    by age (newest record older than retention) and by size (partition over its budget)."""
    removed = 0
    topics = conn.execute(
        "SELECT id, retention_ms, retention_bytes FROM topics WHERE compacted = 0"
        " AND (retention_ms IS NOT NULL OR retention_bytes IS NOT NULL)"
    ).fetchall()
    for topic_id, retention_ms, retention_bytes in topics:
        parts = conn.execute("SELECT partition FROM partitions WHERE topic_id = ?", (topic_id,))
        for (partition,) in parts.fetchall():
            keep_from = _first_retained(
                conn, topic_id, partition, now_ms, retention_ms, retention_bytes
            )
            if keep_from is None:
                continue
            cursor = conn.execute(
                "SELECT coalesce(sum(last_offset - base_offset + 1), 0) FROM batches"
                " WHERE topic_id = ? AND partition = ? AND last_offset < ?",
                (topic_id, partition, keep_from),
            )
            removed += int(cursor.fetchone()[0])
            conn.execute(
                "DELETE FROM batches WHERE topic_id = ? AND partition = ? AND last_offset < ?",
                (topic_id, partition, keep_from),
            )
    return removed


def _first_retained(
    conn: sqlite3.Connection,
    topic_id: int,
    partition: int,
    now_ms: int,
    retention_ms: int | None,
    retention_bytes: int | None,
) -> int | None:
    """The first offset to keep, walking batches from newest to oldest; None keeps all.
    The newest batch survives a size limit (as Kafka keeps its active segment) but not age."""
    rows = conn.execute(
        "SELECT base_offset, last_offset, max_ts, nbytes FROM batches"
        " WHERE topic_id = ? AND partition = ? ORDER BY last_offset DESC",
        (topic_id, partition),
    )
    cutoff = None if retention_ms is None else now_ms - retention_ms
    keep_from: int | None = None
    size = 0
    for base_offset, last_offset, max_ts, nbytes in rows:
        size += nbytes
        too_big = retention_bytes is not None and size > retention_bytes and keep_from is not None
        too_old = cutoff is not None and max_ts < cutoff
        if too_big or too_old:
            return int(last_offset) + 1
        keep_from = base_offset
    return None
