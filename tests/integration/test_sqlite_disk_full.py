"""The SQLite files streamsense writes, on a tmpfs filled to the last byte (issue #21 point 4).

A write that finds no room raises StorageFull (retryable, naming the file and the space
left on its filesystem; it was SQLite's bare OperationalError, which stopped a worker with a
traceback) and leaves the file as its last commit left it; the same broker and store objects
write again as soon as there is room (nothing of the failed transaction is left open)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamsense.brokers import EmbeddedBroker, OutRecord, TopicConfig, TopicPartition, Transaction
from streamsense.disk_faults import storage_fault
from streamsense.errors import StorageFull
from streamsense.store.online import OnlineRow
from streamsense.store.sqlite_online import SqliteOnlineStore
from streamsense.testing import drain_topic
from tests.small_disk import SmallDisk, small_disk

TP = TopicPartition("in", 0)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk", "4m") as mounted:
        yield mounted


def fill(disk: SmallDisk) -> Path:
    """Fill the disk to the last byte with a file; deleting it frees the space."""
    ballast = disk.path / "ballast"
    with ballast.open("wb", buffering=0) as out, pytest.raises(OSError) as full:
        while True:
            out.write(b"\0" * 65536)
    assert full.value.errno == errno.ENOSPC and disk.free == 0
    return ballast


def records(n: int, tag: str) -> list[OutRecord]:
    return [OutRecord("out", f"{tag}{i}".encode() * 100, partition=0) for i in range(n)]


def assert_full(info: pytest.ExceptionInfo[StorageFull], path: Path, disk: SmallDisk) -> None:
    assert info.value.retryable and info.value.where == str(path)
    message = str(info.value)
    assert message.startswith(f"disk full: cannot write {path} (database or disk is full; ")
    assert f"free on {disk.path}): the transaction was rolled back; free space on" in message


def test_a_commit_on_a_full_disk_rolls_back_whole_and_the_broker_writes_again_once_freed(
    disk: SmallDisk,
) -> None:
    path = disk.path / "broker.db"
    with EmbeddedBroker(path) as broker:
        for topic in ("in", "out"):
            broker.create_topic(topic, TopicConfig(1), exist_ok=False)
        broker.commit_transaction(Transaction("g", records=records(10, "a"), offsets={TP: 10}))
        ballast = fill(disk)
        big = Transaction("g", records=records(2000, "b"), offsets={TP: 20}, expected={TP: 10})
        with pytest.raises(StorageFull) as info:
            broker.commit_transaction(big)
        assert_full(info, path, disk)
        assert broker.committed("g", [TP]) == {TP: 10}
        assert broker.describe_topic("out").partitions[0].high == 10

        ballast.unlink()
        broker.commit_transaction(big)  # the same connection: nothing was left open
        assert broker.committed("g", [TP]) == {TP: 20}
        values = [r.value for r in drain_topic(broker, "out")]
        assert values == [r.value for r in records(10, "a") + records(2000, "b")]


def test_a_full_disk_under_the_online_store_keeps_its_rows_and_it_writes_again_once_freed(
    disk: SmallDisk,
) -> None:
    path = disk.path / "online.db"
    store = SqliteOnlineStore(path)
    try:
        store.write("v", [OnlineRow("k", 1, b"old")])
        ballast = fill(disk)
        rows = [OnlineRow(f"k{i}", 2, b"x" * 1000) for i in range(300)] + [
            OnlineRow("k", 2, b"new")
        ]
        with pytest.raises(StorageFull) as info:
            store.write("v", rows)
        assert_full(info, path, disk)
        assert store.read("v", ["k", "k0"]) == [OnlineRow("k", 1, b"old"), None]

        ballast.unlink()
        assert store.write("v", rows) == len(rows)
        assert store.read("v", ["k", "k0"]) == [OnlineRow("k", 2, b"new"), rows[0]]
    finally:
        store.close()


def test_os_errors_of_a_full_or_failing_disk_are_storage_faults() -> None:
    full = storage_fault(OSError(errno.ENOSPC, "No space left on device"), "/x/y")
    assert isinstance(full, StorageFull) and full.retryable and full.where == "/x/y"
    failing = storage_fault(OSError(errno.EIO, "Input/output error"), "/x/y")
    assert failing is not None and not isinstance(failing, StorageFull)
    assert str(failing).startswith("I/O error writing /x/y (Input/output error)")
    assert storage_fault(OSError(errno.ENOENT, "No such file"), "/x/y") is None
