"""One contract for every online store (memory, SQLite, Redis): what streamsense.store.online
promises, checked the same way on each."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamsense.errors import ConfigError
from streamsense.store import (
    MemoryOnlineStore,
    OnlineRow,
    SqliteOnlineStore,
    open_online_store,
)
from streamsense.store.redis_online import RedisOnlineStore
from streamsense.testing import ManualClock
from tests.contract.online_fixtures import (  # noqa: F401  (fixtures)
    OnlineBackend,
    online_backend_fixture,
    redis_url_fixture,
    shared_online_backend_fixture,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000


def rows(n: int, event_time: int = T0, *, tag: str = "", size: int = 16) -> list[OnlineRow]:
    return [
        OnlineRow(f"k{i}", event_time, f"{tag}{i}:".encode().ljust(size, b"x")) for i in range(n)
    ]


def test_round_trip(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    assert store.write("v", [OnlineRow("alice", T0, b"\x00state\xff")]) == 1
    assert store.read("v", ["alice"]) == [OnlineRow("alice", T0, b"\x00state\xff")]
    assert store.read("v", ["bob"]) == [None]
    assert store.write("v", []) == 0
    assert store.read("v", []) == []
    empty = OnlineRow("empty", T0, b"")
    assert store.write("v", [empty]) == 1
    assert store.read("v", ["empty"]) == [empty]


def test_many_keys_in_order_with_missing_as_none(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    written = {row.key: row for row in rows(200)}
    assert store.write("v", list(written.values())) == 200
    asked = [*written, "missing-1", "missing-2", "k7", "k7"]
    random.Random(1).shuffle(asked)
    assert store.read("v", asked) == [written.get(key) for key in asked]
    assert store.read("v", ["nope", "k3"]) == [None, written["k3"]]


def test_read_blobs_of_several_views_in_one_call(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    customers = {row.key: row.blob for row in rows(150, tag="c")}
    terminals = {row.key: row.blob for row in rows(40, tag="t")}  # same keys, other view
    store.write("s.customer", [OnlineRow(k, T0, b) for k, b in customers.items()])
    store.write("s.terminal", [OnlineRow(k, T0, b) for k, b in terminals.items()])
    asked_c = [*customers, "missing", "k7", "k7"]
    asked_t = ["k3", "k100", "missing", "k0"]
    random.Random(2).shuffle(asked_c)
    got = store.read_blobs([("s.customer", asked_c), ("s.terminal", asked_t), ("s.none", [])])
    assert got == [
        [customers.get(k) for k in asked_c],
        [terminals.get(k) for k in asked_t],
        [],
    ]
    assert store.read_blobs([("s.terminal", ["k1"])]) == [[terminals["k1"]]]
    assert store.read_blobs([]) == []


def test_read_blobs_beyond_one_statement_and_after_expiry(online_backend: OnlineBackend) -> None:
    clock = ManualClock(T0)
    store = online_backend.make(clock)
    many = rows(2_000, tag="m")
    store.write("a", many, ttl_ms=1_000)
    store.write("b", [OnlineRow("k1", T0, b"kept")])
    keys = [row.key for row in many]  # SQLite: more keys than one statement takes
    assert store.read_blobs([("a", keys), ("b", ["k1"])]) == [[r.blob for r in many], [b"kept"]]
    clock.advance(1_000)
    assert store.read_blobs([("a", keys[:3]), ("b", ["k1"])]) == [[None] * 3, [b"kept"]]


def test_unicode_keys_and_views(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    row = OnlineRow("clé/ü 🙂 with spaces", T0, b"blob")
    assert store.write("fraud.card_id-é", [row]) == 1
    assert store.read("fraud.card_id-é", [row.key]) == [row]


def test_last_write_wins_by_event_time(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    assert store.write("v", [OnlineRow("k", T0 + 10, b"ten")]) == 1
    # An older event time never moves the key back.
    assert store.write("v", [OnlineRow("k", T0 + 9, b"nine")]) == 0
    assert store.read("v", ["k"]) == [OnlineRow("k", T0 + 10, b"ten")]
    # The same event time replaces (a replay of the same state, or a correction).
    assert store.write("v", [OnlineRow("k", T0 + 10, b"ten again")]) == 1
    assert store.read("v", ["k"]) == [OnlineRow("k", T0 + 10, b"ten again")]
    assert store.write("v", [OnlineRow("k", T0 + 11, b"eleven")]) == 1
    assert store.read("v", ["k"]) == [OnlineRow("k", T0 + 11, b"eleven")]


def test_last_write_wins_within_and_across_batches(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    batch = [
        OnlineRow("a", T0 + 5, b"a5"),
        OnlineRow("a", T0 + 3, b"a3"),  # older than the row before it: ignored
        OnlineRow("b", T0 + 1, b"b1"),
        OnlineRow("b", T0 + 2, b"b2"),
    ]
    assert store.write("v", batch) == 3
    assert store.read("v", ["a", "b"]) == [
        OnlineRow("a", T0 + 5, b"a5"),
        OnlineRow("b", T0 + 2, b"b2"),
    ]
    mixed = [OnlineRow("a", T0 + 4, b"old"), OnlineRow("b", T0 + 9, b"new")]
    assert store.write("v", mixed) == 1
    assert store.read("v", ["a", "b"]) == [
        OnlineRow("a", T0 + 5, b"a5"),
        OnlineRow("b", T0 + 9, b"new"),
    ]


def test_batch_write_of_10k_rows(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    first = rows(10_000, T0, tag="first")
    assert store.write("v", first) == 10_000
    keys = [row.key for row in first]
    assert store.read("v", keys) == first  # SQLite: more keys than one SELECT takes
    # Half the rows newer, half older than what is stored: only the newer half lands.
    second = [
        OnlineRow(row.key, T0 + (1 if i % 2 else -1), b"second") for i, row in enumerate(first)
    ]
    assert store.write("v", second) == 5_000
    got = store.read("v", keys)
    assert got == [second[i] if i % 2 else first[i] for i in range(10_000)]


def test_ttl_follows_the_injected_clock(online_backend: OnlineBackend) -> None:
    clock = ManualClock(T0)
    store = online_backend.make(clock)
    assert store.write("v", rows(3, T0, tag="ttl"), ttl_ms=60_000) == 3
    assert store.write("v", [OnlineRow("forever", T0, b"f")]) == 1
    clock.advance(59_999)
    assert None not in store.read("v", ["k0", "k1", "k2", "forever"])
    clock.advance(1)  # a row expires ttl_ms after the write, on the store's clock
    assert store.read("v", ["k0", "k1", "k2", "forever"]) == [
        None,
        None,
        None,
        OnlineRow("forever", T0, b"f"),
    ]
    assert store.read("v", ["k1"]) == [None]
    # An expired row counts as absent: an older event time may take its place.
    assert store.write("v", [OnlineRow("k0", T0 - 1, b"back")], ttl_ms=1000) == 1
    assert store.read("v", ["k0"]) == [OnlineRow("k0", T0 - 1, b"back")]
    # A write without a TTL clears an earlier one.
    assert store.write("v", [OnlineRow("k0", T0, b"kept")]) == 1
    clock.advance(10_000)
    assert store.read("v", ["k0"]) == [OnlineRow("k0", T0, b"kept")]


def test_ttl_on_the_wall_clock(online_backend: OnlineBackend) -> None:
    """A store's default clock is the wall clock: a 1 ms TTL row goes, a 10 minute one stays.
    Redis also drops the row itself (its own expiry, not only the read filter). Nothing here
    needs a row to survive a short time: only expiry is waited for, within a bound."""
    store = online_backend.make()
    assert store.write("v", [OnlineRow("short", T0, b"s")], ttl_ms=1) == 1
    assert store.write("v", [OnlineRow("long", T0, b"l")], ttl_ms=600_000) == 1
    deadline = time.monotonic() + 10
    while store.read("v", ["short"]) != [None]:
        assert time.monotonic() < deadline, "row did not expire"
        time.sleep(0.05)
    assert store.read("v", ["long"]) == [OnlineRow("long", T0, b"l")]
    if online_backend.name == "redis":
        assert 0 < online_backend.raw_ttl_ms("v", "long") <= 600_000  # Redis will drop it
        while online_backend.raw_ttl_ms("v", "short") != -2:  # -2: no such key
            assert time.monotonic() < deadline, "Redis did not drop the expired row"
            time.sleep(0.05)


def test_ttl_must_be_positive(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    for ttl in (0, -5):
        with pytest.raises(ConfigError):
            store.write("v", [OnlineRow("k", T0, b"x")], ttl_ms=ttl)
    assert store.read("v", ["k"]) == [None]


def test_purge_expired(online_backend: OnlineBackend) -> None:
    clock = ManualClock(T0)
    store = online_backend.make(clock)
    assert store.purge_expired() == 0
    store.write("a", rows(10, T0, tag="a"), ttl_ms=1_000)
    store.write("b", rows(4, T0, tag="b"), ttl_ms=5_000)
    store.write("c", rows(5, T0, tag="c"))
    clock.advance(1_000)
    assert store.purge_expired() == 10
    assert store.purge_expired() == 0
    assert store.read("a", ["k0", "k9"]) == [None, None]
    assert None not in store.read("b", [f"k{i}" for i in range(4)])
    clock.advance(60_000)
    assert store.purge_expired() == 4
    assert store.read("c", [f"k{i}" for i in range(5)]) == rows(5, T0, tag="c")


def test_delete(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    written = rows(10)
    store.write("v", written)
    store.write("w", written)
    store.delete("v", ["k1", "k3", "never-written"])
    store.delete("v", [])
    got = store.read("v", [row.key for row in written])
    assert got == [None if row.key in ("k1", "k3") else row for row in written]
    assert store.read("w", ["k1", "k3"]) == [written[1], written[3]]
    # A deleted key takes any later write, whatever its event time.
    assert store.write("v", [OnlineRow("k1", T0 - 100, b"again")]) == 1
    assert store.read("v", ["k1"]) == [OnlineRow("k1", T0 - 100, b"again")]


def test_views_are_isolated(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    store.write("cards", [OnlineRow("42", T0, b"card")])
    store.write("cards.v2", [OnlineRow("42", T0 - 1, b"card v2")])
    store.write("customers", [OnlineRow("42", T0 + 1, b"customer")])
    assert store.read("cards", ["42"]) == [OnlineRow("42", T0, b"card")]
    assert store.read("cards.v2", ["42"]) == [OnlineRow("42", T0 - 1, b"card v2")]
    assert store.read("customers", ["42"]) == [OnlineRow("42", T0 + 1, b"customer")]
    assert store.read("other", ["42"]) == [None]
    # LWW is per view: an older row in one view is not compared with another view's.
    assert store.write("cards", [OnlineRow("42", T0 - 5, b"older")]) == 0
    assert store.write("fresh", [OnlineRow("42", T0 - 5, b"older")]) == 1


@pytest.mark.parametrize("view", ["", "a:b", ":"])
def test_invalid_view_names_are_refused(online_backend: OnlineBackend, view: str) -> None:
    store = online_backend.make()
    with pytest.raises(ConfigError):
        store.write(view, [OnlineRow("k", T0, b"x")])
    with pytest.raises(ConfigError):
        store.read(view, ["k"])
    with pytest.raises(ConfigError):
        store.delete(view, ["k"])


def test_large_blobs(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    rng = random.Random(7)
    big = [OnlineRow(f"big{i}", T0 + i, rng.randbytes(100 * 1024)) for i in range(30)]
    assert store.write("v", big) == 30
    assert store.read("v", [row.key for row in big]) == big
    huge = OnlineRow("huge", T0, rng.randbytes(4 * 1024 * 1024))
    assert store.write("v", [huge]) == 1
    assert store.read("v", ["huge"]) == [huge]


def test_a_second_handle_sees_the_rows(shared_online_backend: OnlineBackend) -> None:
    online_backend = shared_online_backend
    first = online_backend.make()
    first.write("v", rows(5))
    first.close()
    second = online_backend.make()
    assert second.read("v", [f"k{i}" for i in range(5)]) == rows(5)
    assert second.write("v", [OnlineRow("k0", T0 - 1, b"older")]) == 0


# A writer in its own process: even event times ascending, or odd ones descending.
_WRITER = """
import sys
from streamsense.store import open_online_store
from streamsense.store.online import OnlineRow
from streamsense.store.redis_online import RedisOnlineStore
name, url, prefix, parity, rounds, keys = sys.argv[1:7]
base = 1_700_000_000_000
if name == "redis":
    store = RedisOnlineStore(url, prefix=prefix)
else:
    store = open_online_store(url)
times = range(int(parity), 2 * int(rounds), 2)
for t in (times if parity == "0" else reversed(times)):
    store.write("v", [OnlineRow(f"k{i}", base + t, str(t).encode()) for i in range(int(keys))])
store.close()
"""


def test_concurrent_writers_in_two_processes(shared_online_backend: OnlineBackend) -> None:
    online_backend = shared_online_backend
    rounds, keys = 100, 200
    online_backend.make()  # creates the schema before the writers race
    b = online_backend
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                b.name,
                b.url,
                b.prefix,
                parity,
                str(rounds),
                str(keys),
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for parity in ("0", "1")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=180)
        assert writer.returncode == 0, err.decode()[-2000:]
    newest = 2 * rounds - 1  # the odd writer's first write: every later write is older
    store = online_backend.make()
    assert store.read("v", [f"k{i}" for i in range(keys)]) == [
        OnlineRow(f"k{i}", T0 + newest, str(newest).encode()) for i in range(keys)
    ]


def test_close_twice(online_backend: OnlineBackend) -> None:
    store = online_backend.make()
    store.close()
    store.close()


def test_open_online_store_urls(tmp_path: Path, redis_url: str) -> None:
    clock = ManualClock(T0)
    memory = open_online_store("memory://", clock=clock)
    assert isinstance(memory, MemoryOnlineStore)
    path = tmp_path / "sub" / "online.db"
    sqlite = open_online_store(f"sqlite://{path}", clock=clock)
    assert isinstance(sqlite, SqliteOnlineStore)
    assert sqlite.url == f"sqlite://{path}" and path.exists()
    plain = open_online_store(str(tmp_path / "plain.db"))
    assert isinstance(plain, SqliteOnlineStore)
    in_memory = open_online_store("sqlite://:memory:")
    assert isinstance(in_memory, SqliteOnlineStore)
    in_memory.write("v", rows(3))
    assert in_memory.read("v", ["k2"]) == [rows(3)[2]]
    remote = open_online_store(redis_url, clock=clock)
    assert isinstance(remote, RedisOnlineStore) and remote.url == redis_url
    for bad in ("sqlite://", "postgres://x/y"):
        with pytest.raises(ConfigError):
            open_online_store(bad)
    for store in (memory, sqlite, plain, in_memory, remote):
        store.close()
