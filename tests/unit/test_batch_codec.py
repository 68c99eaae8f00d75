"""The embedded broker's stored batches: compressed when that pays, raw otherwise, and
payloads written before compression existed still read."""

from __future__ import annotations

import os

import msgspec

from streamsense.brokers.base import Record
from streamsense.brokers.batch_codec import COMPRESSED, pack, unpack


def rows(n: int, value: bytes) -> list[tuple[object, ...]]:
    return [("t", 0, i, 1_700_000_000_000 + i, b"k%d" % i, value, ()) for i in range(n)]


def records(batch: list[tuple[object, ...]]) -> list[Record]:
    return [Record(*row) for row in batch]  # type: ignore[arg-type]


def test_repetitive_batches_are_stored_compressed_and_read_back_whole() -> None:
    batch = rows(500, b'{"score": 0.25, "action": "allow", "tier": "heavy"}')
    payload, size = pack(batch)
    assert payload[0] == COMPRESSED
    assert size == len(msgspec.msgpack.encode(batch)) > 5 * len(payload)
    assert unpack(payload) == records(batch)


def test_small_or_incompressible_batches_are_stored_raw() -> None:
    small = rows(3, b"x")
    noise: list[tuple[object, ...]] = [(*r[:5], os.urandom(4000), ()) for r in rows(20, b"")]
    for batch in (small, noise):
        payload, size = pack(batch)
        assert payload == msgspec.msgpack.encode(batch) and size == len(payload)
        assert unpack(payload) == records(batch)


def test_payloads_written_before_compression_still_read() -> None:
    batch = rows(300, b"same value every time " * 4)
    old = msgspec.msgpack.encode(batch)  # what the broker stored until #19
    assert old[0] != COMPRESSED
    assert unpack(old) == records(batch)


def test_headers_and_missing_keys_survive_compression() -> None:
    batch = [
        ("t", 1, i, 5, None if i % 2 else b"k", b"v" * 40, (("source", b"s/0/%d" % i),))
        for i in range(100)
    ]
    assert unpack(pack(batch)[0]) == records(batch)
