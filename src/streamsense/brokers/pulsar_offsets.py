"""Kafka-style offsets on Pulsar: 0, 1, 2, ... per partition, mapped to Pulsar's message ids.

Pulsar addresses a message by (ledger, entry); a partition's ledgers roll over and each
numbers its entries from 0. The broker's AppendIndexMetadataInterceptor stamps every entry
with a per-partition index that counts messages from 0 and is stored with the entry, so it
survives restarts and the deletion of old ledgers. streamsense writes one message per entry
(producer batching off), so a message's offset is that index: ``base(ledger) + entry``,
where ``base`` is the index of the ledger's first entry, asked once per ledger through the
admin API and cached. Topics written by other producers with batching on would break this
one-message-per-entry rule; streamsense's topics are written by streamsense only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from streamsense.brokers.pulsar_admin import PulsarAdmin
from streamsense.errors import RetryableError


@dataclass(frozen=True)
class Ledger:
    id: int
    entries: int


@dataclass(frozen=True)
class Bounds:
    """A partition's first kept offset, next offset, and its ledgers that hold entries."""

    low: int
    high: int
    ledgers: tuple[Ledger, ...]


class OffsetIndex:
    """offset <-> (ledger, entry) for every partition of one broker."""

    def __init__(self, admin: PulsarAdmin) -> None:
        self._admin = admin
        self._bases: dict[tuple[str, int, int], int] = {}
        self._lock = threading.Lock()

    def base(self, topic: str, partition: int, ledger: int) -> int | None:
        """Offset of the ledger's first entry; None if the ledger has none (any more)."""
        key = (topic, partition, ledger)
        with self._lock:
            cached = self._bases.get(key)
        if cached is not None:
            return cached
        base = self._admin.entry_index(topic, partition, ledger, 0)
        if base is not None:
            with self._lock:
                self._bases[key] = base
        return base

    def offset_of(self, topic: str, partition: int, ledger: int, entry: int) -> int:
        base = self.base(topic, partition, ledger)
        if base is None:
            raise RetryableError(f"{topic}[{partition}]: ledger {ledger} is not readable")
        return base + entry

    def bounds(self, topic: str, partition: int) -> Bounds:
        stats = self._admin.internal_stats(topic, partition)
        ledgers = _ledgers(stats)
        if not ledgers:
            # Nothing stored (a new partition, or every ledger deleted): the next offset is
            # one past the last index the broker recorded when it closed a ledger.
            index = int((stats.get("properties") or {}).get("index", -1))
            return Bounds(index + 1, index + 1, ())
        first = self.base(topic, partition, ledgers[0].id)
        last = self.base(topic, partition, ledgers[-1].id)
        if first is None or last is None:
            raise RetryableError(f"{topic}[{partition}]: ledgers changed while being read")
        return Bounds(first, last + ledgers[-1].entries, ledgers)

    def locate(self, topic: str, partition: int, offset: int, bounds: Bounds) -> tuple[int, int]:
        """(ledger, entry) of ``offset``, which must lie within ``bounds``."""
        for ledger in bounds.ledgers:
            base = self.base(topic, partition, ledger.id)
            if base is not None and base <= offset < base + ledger.entries:
                return ledger.id, offset - base
        raise RetryableError(f"{topic}[{partition}]: offset {offset} is not stored")

    def forget(self, topic: str) -> None:
        with self._lock:
            for key in [k for k in self._bases if k[0] == topic]:
                del self._bases[key]


def _ledgers(stats: dict[str, Any]) -> tuple[Ledger, ...]:
    """The partition's ledgers that hold readable entries, oldest first. The open ledger's
    count in the list is 0, and ``currentLedgerEntries`` counts writes not yet confirmed:
    its readable entries end at ``lastConfirmedEntry`` ("ledger:entry")."""
    listed = stats.get("ledgers") or []
    confirmed_ledger, _, confirmed_entry = str(stats.get("lastConfirmedEntry", "-1:-1")).partition(
        ":"
    )
    ledgers: list[Ledger] = []
    for i, item in enumerate(listed):
        ledger = int(item["ledgerId"])
        entries = int(item.get("entries", 0))
        if i == len(listed) - 1 and stats.get("state") == "LedgerOpened":
            entries = int(confirmed_entry) + 1 if int(confirmed_ledger) == ledger else 0
        if entries > 0:
            ledgers.append(Ledger(ledger, entries))
    return tuple(ledgers)
