"""Offsets a commit need not wait for, stored by one background thread.

Storing a group's offsets on Pulsar is an admin REST call per partition (pulsar.py), too
slow to wait for at every micro-batch. A commit hands its offsets over and goes on; the
thread stores the newest offset of each partition, in order, so offsets handed over while a
store runs are merged and written once. ``wait`` blocks until everything handed over is
stored: before a commit that must find its offsets stored (giving partitions up, state
written as of them) and before reading committed offsets back. A failed store is logged:
at least once, its events are processed again after a restart."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from streamsense.brokers.base import TopicPartition
from streamsense.errors import StreamsenseError

log = logging.getLogger(__name__)

Store = Callable[[str, dict[TopicPartition, int]], None]


class BackgroundOffsets:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[str, dict[TopicPartition, int]] = {}
        self._busy = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._changed:
            self._pending.setdefault(group, {}).update(offsets)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pulsar-offsets", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def wait(self) -> None:
        with self._changed:
            while self._pending or self._busy:
                self._changed.wait()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending:
                    self._changed.wait()
                batch, self._pending = self._pending, {}
                self._busy = True
            for group, offsets in batch.items():
                try:
                    self._store(group, offsets)
                except StreamsenseError as error:
                    log.warning("storing offsets of group %r failed: %s", group, error)
            with self._changed:
                self._busy = False
                self._changed.notify_all()
