"""The online store interface: per feature view and entity key, the latest state blob.

What a blob holds is the view's business (the feature engine stores the events still inside
a key's windows, so windows are evaluated at request time); the store only keeps bytes, with:

* last-write-wins by event time: a write replaces the stored blob only if its event time is
  not older than the stored one (replays and out-of-order writers cannot move a key back);
* batched writes (``write`` takes many rows, one round trip);
* reads of many keys in one round trip (``read`` returns blobs in the order asked, None
  for a missing or expired key), and of several views' keys in one round trip
  (``read_blobs``: just the blobs, what request-time folds need);
* a TTL per write, counted from the injected clock's wall time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol


class OnlineRow(NamedTuple):
    key: str
    event_time: int  # epoch ms of the newest event folded into ``blob``
    blob: bytes


# One view's keys, as asked of ``OnlineStore.read_blobs``.
ViewKeys = tuple[str, Sequence[str]]


class OnlineStore(Protocol):
    url: str

    def write(self, view: str, rows: Sequence[OnlineRow], *, ttl_ms: int | None = None) -> int:
        """Store rows (last write wins by event time); returns how many replaced or added."""
        ...

    def read(self, view: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        """The stored rows of ``keys`` in order (None: missing or expired), one round trip."""
        ...

    def read_blobs(self, requests: Sequence[ViewKeys]) -> list[list[bytes | None]]:
        """For each (view, keys) asked, the blobs of ``keys`` in order (None: missing or
        expired), all in one round trip."""
        ...

    def delete(self, view: str, keys: Sequence[str]) -> None: ...

    def purge_expired(self) -> int:
        """Remove expired rows now (stores may also do it lazily); returns how many."""
        ...

    def close(self) -> None: ...
