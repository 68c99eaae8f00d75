"""The batching producer shared by the memory and embedded brokers.

Records are partitioned at ``send`` (so ordering per partition is the send order) and
buffered; a batch is written when it reaches ``batch_size`` records, when it is older than
``linger_ms`` (a background thread checks), or on ``flush``/``close``.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING

from streamsense.brokers.base import Headers, OutRecord
from streamsense.brokers.partitioner import partition_for
from streamsense.errors import ConfigError

if TYPE_CHECKING:
    from streamsense.brokers.log import LogBroker


class BatchingProducer:
    def __init__(self, broker: LogBroker, *, batch_size: int, linger_ms: float) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        self._broker = broker
        self._batch_size = batch_size
        self._linger_s = max(linger_ms, 0.0) / 1000.0
        self._buffer: list[OutRecord] = []
        self._first_buffered = 0.0
        self._counts: dict[str, int] = {}
        self._round_robin = itertools.count()
        self._lock = threading.Lock()
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
        count = self._counts.get(topic)
        if count is None:
            count = self._counts[topic] = self._broker.partition_count(topic)
        if partition is None:
            partition = (
                next(self._round_robin) % count if key is None else partition_for(key, count)
            )
        elif not 0 <= partition < count:
            raise ConfigError(f"topic {topic!r} has no partition {partition}")
        if timestamp is None:
            timestamp = self._now_ms()
        record = OutRecord(topic, value, key, partition, timestamp, headers)
        with self._lock:
            self._raise_pending_error()
            if not self._buffer:
                self._first_buffered = time.monotonic()
            self._buffer.append(record)
            full = len(self._buffer) >= self._batch_size
        if full:
            self.flush()
        elif self._lingerer is None and self._linger_s > 0:
            self._start_lingerer()

    def flush(self) -> None:
        with self._lock:
            self._raise_pending_error()
            batch, self._buffer = self._buffer, []
            if batch:
                self._broker.store.append(batch)

    def close(self) -> None:
        self._closed.set()
        if self._lingerer is not None:
            self._lingerer.join()
        self.flush()

    def __enter__(self) -> BatchingProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _start_lingerer(self) -> None:
        self._lingerer = threading.Thread(target=self._linger_loop, daemon=True, name="producer-linger")
        self._lingerer.start()

    def _linger_loop(self) -> None:
        while not self._closed.wait(self._linger_s):
            with self._lock:
                due = self._buffer and time.monotonic() - self._first_buffered >= self._linger_s
                if not due:
                    continue
                batch, self._buffer = self._buffer, []
                try:
                    self._broker.store.append(batch)
                except BaseException as error:  # surfaced on the caller's next send/flush
                    self._error = error
