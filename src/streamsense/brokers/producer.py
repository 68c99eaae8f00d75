"""The batching producer shared by the memory and embedded brokers.

Records are partitioned at ``send`` (so ordering per partition is the send order) and
buffered per partition; a batch is written when it reaches ``batch_size`` records, when it
is older than ``linger_ms`` (a background thread checks), or on ``flush``/``close``.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING

from streamsense.brokers.base import Headers, PendingBatches, PendingRecord, TopicPartition
from streamsense.brokers.partitioner import partition_for
from streamsense.errors import ConfigError

if TYPE_CHECKING:
    from streamsense.brokers.log_store import LogHost


class BatchingProducer:
    def __init__(self, broker: LogHost, *, batch_size: int, linger_ms: float) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        self._broker = broker
        self._batch_size = batch_size
        self._linger_s = max(linger_ms, 0.0) / 1000.0
        # topic -> one list of pending records per partition
        self._buffers: dict[str, list[list[PendingRecord]]] = {}
        self._buffered = 0
        self._first_buffered = 0.0
        self._round_robin = itertools.count()
        self._lock = threading.Lock()  # the buffers
        self._write_lock = threading.Lock()  # one write at a time, in order
        self._closed = threading.Event()
        self._lingerer: threading.Thread | None = None
        self._error: BaseException | None = None
        self._now_ms = broker.clock.now_ms

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: Headers = (),
    ) -> None:
        if timestamp is None:
            timestamp = self._now_ms()
        with self._lock:
            if self._error is not None:
                self._raise_pending_error()
            parts = self._buffers.get(topic)
            if parts is None:
                count = self._broker.partition_count(topic)
                parts = self._buffers[topic] = [[] for _ in range(count)]
            if partition is None:
                count = len(parts)
                partition = (
                    next(self._round_robin) % count if key is None else partition_for(key, count)
                )
            elif not 0 <= partition < len(parts):
                raise ConfigError(f"topic {topic!r} has no partition {partition}")
            if not self._buffered:
                self._first_buffered = time.monotonic()
            parts[partition].append((timestamp, key, value, headers))
            self._buffered += 1
            full = self._buffered >= self._batch_size
        if full:
            self.flush()
        elif self._lingerer is None and self._linger_s > 0:
            self._start_lingerer()

    def flush(self) -> None:
        # Writes are serialised (batches stay in send order) but senders only wait for the
        # buffer lock, never for a write in progress.
        with self._write_lock:
            with self._lock:
                self._raise_pending_error()
                batches = self._take()
            self._write(batches)

    def close(self) -> None:
        self._closed.set()
        if self._lingerer is not None:
            self._lingerer.join()
        self.flush()

    def __enter__(self) -> BatchingProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self) -> PendingBatches:
        """Everything buffered, by partition (call with the lock held)."""
        buffers, self._buffers = self._buffers, {}
        self._buffered = 0
        return {
            TopicPartition(topic, p): records
            for topic, parts in buffers.items()
            for p, records in enumerate(parts)
            if records
        }

    def _write(self, batches: PendingBatches) -> None:
        if batches:
            self._broker.store.append(batches)

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _start_lingerer(self) -> None:
        self._lingerer = threading.Thread(
            target=self._linger_loop, daemon=True, name="producer-linger"
        )
        self._lingerer.start()

    def _linger_loop(self) -> None:
        while not self._closed.wait(self._linger_s):
            with self._write_lock:
                with self._lock:
                    due = (
                        self._buffered and time.monotonic() - self._first_buffered >= self._linger_s
                    )
                    batches = self._take() if due else {}
                try:
                    self._write(batches)
                except BaseException as error:  # surfaced on the caller's next send/flush
                    self._error = error
