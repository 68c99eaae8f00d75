"""The embedded broker: a durable, partitioned log in one SQLite file (WAL mode).

Why SQLite: one file, no server, crash-safe transactions, and many processes can read and
write it at once. Why batches: like Kafka's record batches, each row holds many records
encoded with msgpack, so the per-row cost of SQLite is paid once per batch, not per record
(see BENCHMARKS.md: faster than inserting the same records row by row).

Outputs and consumed offsets commit in one SQLite transaction, which is what makes
embedded pipelines exactly once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import msgspec

from streamsense.brokers import embedded_schema as schema
from streamsense.brokers.base import (
    PartitionInfo,
    PendingBatches,
    PendingRecord,
    Record,
    TopicConfig,
    TopicInfo,
    TopicPartition,
    Transaction,
)
from streamsense.brokers.log import LogBroker
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.disk_faults import disk_faults, write_transaction
from streamsense.errors import BrokerUnavailable, ConfigError, FencedError, TopicNotFound

# Records per stored batch: large enough to amortise SQLite's per-row cost, small enough
# that a seek into the middle of a batch decodes little.
MAX_BATCH_RECORDS = 1024

_encode = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(list[Record]).decode

# Wakes consumers in this process as soon as a writer in this process commits; writers in
# other processes are noticed through PRAGMA data_version.
_signals: dict[str, threading.Condition] = {}
_signals_lock = threading.Lock()


def _signal_for(path: str) -> threading.Condition:
    with _signals_lock:
        return _signals.setdefault(path, threading.Condition())


class SqliteLog:
    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL") -> None:
        self.path = str(Path(path).resolve())
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=60.0
        )
        self._lock = threading.RLock()
        self._signal = _signal_for(self.path)
        self._topic_ids: dict[str, tuple[int, bool]] = {}
        try:
            with self._lock, disk_faults(self.path):
                schema.prepare(self._conn, synchronous)
        except BaseException:
            self._conn.close()  # and with it any transaction the failure left open
            raise

    def _busy(self, error: sqlite3.OperationalError) -> BrokerUnavailable:
        return BrokerUnavailable(f"embedded broker {self.path} busy: {error}")

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. IMMEDIATE takes the write lock up front so two processes
        never both read a partition's next offset and then collide. A full or failing disk
        rolls it back whole and raises StorageFull / StorageFault naming the file."""
        with self._lock, write_transaction(self._conn, self.path, self._busy) as conn:
            yield conn
        with self._signal:
            self._signal.notify_all()

    # -- topics ---------------------------------------------------------------------------------
    def create_topic(self, name: str, config: TopicConfig, *, exist_ok: bool) -> None:
        with self._write() as conn:
            if schema.topic_row(conn, name) is not None:
                if exist_ok:
                    return
                raise ConfigError(f"topic {name!r} already exists")
            schema.insert_topic(conn, name, config)

    def delete_topic(self, name: str) -> None:
        with self._write() as conn:
            topic_id, _ = self._topic_id(name)
            schema.delete_topic(conn, topic_id)
        self._topic_ids.pop(name, None)

    def list_topics(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._conn.execute("SELECT name FROM topics ORDER BY name")]

    def describe_topic(self, name: str) -> TopicInfo:
        with self._lock:
            row = schema.topic_row(self._conn, name)
            if row is None:
                raise TopicNotFound(f"topic {name!r} does not exist")
            topic_id, config = row
            bounds = schema.partition_bounds(self._conn, topic_id, config.compacted)
        parts = tuple(PartitionInfo(p, low, high) for p, low, high in bounds)
        return TopicInfo(name, config, parts)

    def _topic_id(self, name: str) -> tuple[int, bool]:
        cached = self._topic_ids.get(name)
        if cached is None:
            row = schema.topic_row(self._conn, name)
            if row is None:
                raise TopicNotFound(f"topic {name!r} does not exist")
            cached = self._topic_ids[name] = (row[0], row[1].compacted)
        return cached

    # -- data -----------------------------------------------------------------------------------
    def append(self, batches: PendingBatches, txn: Transaction | None = None) -> None:
        with self._write() as conn:
            if txn is not None:
                self._check_expected(conn, txn)
            for tp, pending in batches.items():
                self._append_partition(conn, tp, pending)
            if txn is not None and txn.offsets:
                rows = [
                    (txn.group, self._topic_id(tp.topic)[0], tp.partition, offset)
                    for tp, offset in txn.offsets.items()
                ]
                schema.upsert_committed(conn, rows)

    def _append_partition(
        self, conn: sqlite3.Connection, tp: TopicPartition, pending: list[PendingRecord]
    ) -> None:
        topic, partition = tp
        topic_id, compacted = self._topic_id(topic)
        base = schema.next_offset(conn, topic_id, partition)
        if base is None:
            self._topic_ids.pop(topic, None)
            raise TopicNotFound(f"topic {topic!r} has no partition {partition}")
        # Tuples in Record's field order encode exactly like Records (array_like), without
        # building a Struct per record on the write path.
        rows = [
            (topic, partition, base + i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(pending)
        ]
        if compacted:
            schema.upsert_compacted(conn, topic_id, partition, rows)
        else:
            batches = []
            for start in range(0, len(rows), MAX_BATCH_RECORDS):
                chunk = rows[start : start + MAX_BATCH_RECORDS]
                payload = _encode(chunk)
                max_ts = max(r[3] for r in chunk)
                batches.append(
                    (topic_id, partition, chunk[0][2], chunk[-1][2], max_ts, len(payload), payload)
                )
            schema.insert_batches(conn, batches)
        schema.set_next_offset(conn, topic_id, partition, base + len(rows))

    def _check_expected(self, conn: sqlite3.Connection, txn: Transaction) -> None:
        if not txn.expected:
            return
        actual = self._read_committed(conn, txn.group, list(txn.expected))
        for tp, expected in txn.expected.items():
            if actual[tp] != expected:
                raise FencedError(
                    f"group {txn.group!r} {tp}: committed offset is {actual[tp]}, "
                    f"expected {expected}"
                )

    def fetch(self, tp: TopicPartition, offset: int, max_records: int) -> list[Record]:
        with self._lock:
            topic_id, compacted = self._topic_id(tp.topic)
            if compacted:
                kept = schema.read_compacted(
                    self._conn, topic_id, tp.partition, offset, max_records
                )
                return [Record(tp.topic, tp.partition, *row) for row in kept]
            out: list[Record] = []
            while len(out) < max_records:
                # Batches hold up to MAX_BATCH_RECORDS but may hold far fewer (small flushes).
                wanted = 1 + (max_records - len(out)) // MAX_BATCH_RECORDS
                rows = schema.read_batches(self._conn, topic_id, tp.partition, offset, wanted)
                for (payload,) in rows:
                    batch = _decode_batch(payload)
                    if batch[0].offset < offset:  # the batch holding the position
                        batch = batch[offset - batch[0].offset :]
                    out.extend(batch)
                if len(rows) < wanted or not out:
                    break
                offset = out[-1].offset + 1
            return out

    def wait_for_data(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            version = schema.data_version(self._conn)
        with self._signal:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                # Woken at once by writers in this process; other processes are noticed
                # within a couple of milliseconds through the data version.
                if self._signal.wait(min(remaining, 0.002)):
                    return
                with self._lock:
                    if schema.data_version(self._conn) != version:
                        return

    # -- groups ---------------------------------------------------------------------------------
    def read_committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        with self._lock:
            return self._read_committed(self._conn, group, partitions)

    def _read_committed(
        self, conn: sqlite3.Connection, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        result: dict[TopicPartition, int | None] = {}
        for tp in partitions:
            result[tp] = schema.committed_offset(
                conn, group, self._topic_id(tp.topic)[0], tp.partition
            )
        return result

    def write_committed(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        with self._write() as conn:
            rows = [
                (group, self._topic_id(tp.topic)[0], tp.partition, o) for tp, o in offsets.items()
            ]
            schema.upsert_committed(conn, rows)

    def heartbeat(self, group: str, member: str, now_ms: int, session_timeout_ms: int) -> list[str]:
        with self._write() as conn:
            return schema.heartbeat(conn, group, member, now_ms, now_ms + session_timeout_ms)

    def leave(self, group: str, member: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM members WHERE grp = ? AND member = ?", (group, member))

    # -- retention --------------------------------------------------------------------------------
    def enforce_retention(self, now_ms: int) -> int:
        with self._write() as conn:
            return schema.enforce_retention(conn, now_ms)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class EmbeddedBroker(LogBroker):
    """The default broker: a SQLite file that several processes can share."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        synchronous: str = "NORMAL",
    ) -> None:
        store = SqliteLog(path, synchronous=synchronous)
        super().__init__(store, f"embedded://{store.path}", clock=clock)
