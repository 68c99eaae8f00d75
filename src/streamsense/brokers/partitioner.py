"""Kafka's default partitioner: ``toPositive(murmur2(key)) % partitions``.

Bit-for-bit the Java client's ``Utils.murmur2`` (seed 0x9747b28c), so a key produced by an
outside Kafka producer and by streamsense lands on the same partition.
"""

from __future__ import annotations

from functools import lru_cache

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` as a signed 32-bit integer (as Java returns it)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length - (length & 3)
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


@lru_cache(maxsize=1 << 16)
def _positive_hash(key: bytes) -> int:
    # Entity keys repeat (customers, terminals), so a bounded cache removes the pure-Python
    # hash from the produce hot path.
    return murmur2(key) & 0x7FFFFFFF


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partitions``."""
    return _positive_hash(key) % partitions
