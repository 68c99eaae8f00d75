from __future__ import annotations

from streamsense.brokers import murmur2, partition_for

# Apache Kafka's own test vectors (UtilsTest.testMurmur2): the Java client's results.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_matches_kafkas_java_client() -> None:
    for data, expected in KAFKA_VECTORS.items():
        assert murmur2(data) == expected, data


def test_partition_is_the_positive_hash_modulo_the_partition_count() -> None:
    # "21" hashes negative: Kafka masks the sign bit rather than taking abs().
    assert partition_for(b"21", 6) == (-973932308 & 0x7FFFFFFF) % 6
    for data, expected in KAFKA_VECTORS.items():
        for partitions in (1, 3, 12):
            assert partition_for(data, partitions) == (expected & 0x7FFFFFFF) % partitions
