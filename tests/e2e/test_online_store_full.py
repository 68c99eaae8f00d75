"""An online store that fills mid-replay (issue #21 point 4): `streamsense replay apps/fraud`
with the feature stage's online store on a small tmpfs (SQLite), or on a Redis at its
``maxmemory`` under ``noeviction``; the broker has room.

The replay stops with one line naming the store and saying that freeing space (memory) and
running the command again helps (exit 1, no traceback). Nothing committed is ahead of the
store: every payment whose offset committed has its decision, once, and its customer's and
terminal's rows in the store. Once the store has room the rerun finishes with the decisions
and online values of a replay that never met a full store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis
from apps.fraud.app import PIPELINE_FEATURES
from apps.fraud.simulator import FraudSimulatorConfig, simulate_transactions, write_parquet

from streamsense.brokers import EmbeddedBroker, TopicPartition
from streamsense.store import open_online_store
from streamsense.store.views import OnlineFeatures
from streamsense.testing import drain_topic
from tests.integration.test_redis_feature_fallback import PrivateRedis
from tests.small_disk import small_disk

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "apps" / "fraud")
CONFIG = FraudSimulatorConfig(n_customers=100, n_terminals=200, n_days=20, seed=3)
ONLINE_STORE_ENV = "STREAMSENSE_ONLINE_STORE"
TRANSACTIONS = TopicPartition("transactions", 0)
# Small batches: many online writes, so the store fills part-way through the replay.
BATCH = "50"
WRITES_BEFORE_FULL = 30  # of Redis's, two per batch (a customer and a terminal view)

Decisions = dict[str, tuple[Any, ...]]  # event id → score, action, tier, features
OnlineValues = dict[str, dict[str, tuple[int, dict[str, float | int]]]]  # view → key → row


@dataclass(frozen=True)
class Reference:
    payments: Path
    decisions: Decisions
    online: OnlineValues


@pytest.fixture(scope="module")
def payments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("payments") / "transactions.parquet"
    write_parquet(simulate_transactions(CONFIG), path)
    return path


@pytest.fixture(scope="module")
def clean(payments: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """What a replay whose online store has room decides and leaves in the store."""
    state = tmp_path_factory.mktemp("clean")
    url = f"sqlite://{state / 'online.db'}"
    done = replay(payments, state, url)
    assert done.returncode == 0, done.stderr
    with EmbeddedBroker(state / "broker.db") as broker:
        decided = decisions(broker)
    assert len(decided) == pq.read_metadata(payments).num_rows
    return Reference(payments, decided, online_values(url, payments))


def replay(payments: Path, state: Path, online_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        replay_command(payments, state),
        env=replay_env(online_url),
        capture_output=True,
        text=True,
        timeout=180,
    )


def replay_command(payments: Path, state: Path) -> list[str]:
    return [sys.executable, "-m", "streamsense", "replay", APP, "--transactions",
            str(payments), "--state-dir", str(state), "--batch-size", BATCH]  # fmt: skip


def replay_env(online_url: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", ONLINE_STORE_ENV: online_url}


def decisions(broker: EmbeddedBroker) -> Decisions:
    out: Decisions = {}
    for record in drain_topic(broker, "fraud.decisions"):
        d = json.loads(record.value or b"{}")
        assert d["event_id"] not in out, f"{d['event_id']} decided twice"
        out[d["event_id"]] = (d["score"], d["action"], d["tier"], d["features"])
    return out


def entity_keys(payments: Path) -> dict[str, list[str]]:
    table = pq.read_table(payments, columns=["CUSTOMER_ID", "TERMINAL_ID"])
    return {
        group: sorted({str(k) for k in table.column(group.upper()).to_pylist()})
        for group in ("customer_id", "terminal_id")
    }


def end_ms(payments: Path) -> int:
    times = pq.read_table(payments, columns=["TX_DATETIME"]).column("TX_DATETIME")
    return int(pc.max(times).cast(pa.int64()).as_py()) // 1000


def online_values(url: str, payments: Path) -> OnlineValues:
    """Every entity's row in each view: its newest event time, and its features read at
    the end of the data (as served then)."""
    store = open_online_store(url)
    try:
        out: OnlineValues = {}
        keys, at_ms = entity_keys(payments), end_ms(payments)
        for group, view in OnlineFeatures(PIPELINE_FEATURES, store).views.items():
            rows = store.read(view.name, keys[group])
            values = view.get(keys[group], at_ms)
            out[view.name] = {
                key: (row.event_time, value)
                for key, row, value in zip(keys[group], rows, values, strict=True)
                if row is not None
            }
        return out
    finally:
        store.close()


def assert_one_line(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for part in parts:
        assert part in lines[0], lines


def committed_is_in_store(state: Path, url: str, payments: Path) -> int:
    """Every committed payment is decided once and its entities' rows in the store are at
    least as new as it; returns how many payments committed."""
    with EmbeddedBroker(state / "broker.db") as broker:
        committed = broker.committed("fraud", [TRANSACTIONS])[TRANSACTIONS] or 0
        decided = decisions(broker)
    assert sorted(decided) == sorted(f"transactions/0/{i}" for i in range(committed))
    table = pq.read_table(payments).slice(0, committed)  # one partition: offset = row
    times = table.column("TX_DATETIME").cast(pa.int64()).to_pylist()
    stored = online_values(url, payments)
    for group in ("customer_id", "terminal_id"):
        newest: dict[str, int] = {}
        for key, at_us in zip(table.column(group.upper()).to_pylist(), times, strict=True):
            newest[str(key)] = max(newest.get(str(key), 0), at_us // 1000)
        rows = stored[f"fraud.{group}"]
        behind = [k for k, t in newest.items() if k not in rows or rows[k][0] < t]
        assert not behind, f"{group}: committed past what the store holds for {behind[:5]}"
    return committed


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_full_online_store_disk_stops_the_replay_and_the_rerun_matches_a_clean_one(
    clean: Reference, tmp_path: Path
) -> None:
    state = tmp_path / "state"  # the broker has room
    total = len(clean.decisions)
    with small_disk(tmp_path / "disk", "4m") as disk:
        url = f"sqlite://{disk.path / 'online.db'}"
        expected = (f"disk full: cannot write {disk.path}/online.db", "and run the command again")
        assert_one_line(replay(clean.payments, state, url), *expected)
        committed = committed_is_in_store(state, url, clean.payments)
        assert 0 < committed < total, committed
        assert_one_line(replay(clean.payments, state, url), *expected)  # still full
        assert committed_is_in_store(state, url, clean.payments) == committed

        disk.resize("64m")
        done = replay(clean.payments, state, url)
        assert done.returncode == 0, done.stdout + done.stderr
        assert committed_is_in_store(state, url, clean.payments) == total
        with EmbeddedBroker(state / "broker.db") as broker:
            assert decisions(broker) == clean.decisions
        assert online_values(url, clean.payments) == clean.online


@pytest.fixture
def full_redis(tmp_path: Path) -> Iterator[tuple[PrivateRedis, redis.Redis]]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    client = redis.Redis.from_url(server.url)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_redis_refusing_writes_stops_the_replay_and_the_rerun_matches_a_clean_one(
    clean: Reference, full_redis: tuple[PrivateRedis, redis.Redis], tmp_path: Path
) -> None:
    server, client = full_redis
    state = tmp_path / "state"
    total = len(clean.decisions)
    refused = replay_until_redis_is_full(clean.payments, state, server.url, client)
    assert_one_line(
        refused,
        f"online store {server.url} refuses writes (OOM command not allowed",
        "raise maxmemory",
        "and run the command again",
    )
    committed = committed_is_in_store(state, server.url, clean.payments)
    assert 0 < committed < total, committed

    client.config_set("maxmemory", 0)
    done = replay(clean.payments, state, server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert committed_is_in_store(state, server.url, clean.payments) == total
    with EmbeddedBroker(state / "broker.db") as broker:
        assert decisions(broker) == clean.decisions
    assert online_values(server.url, clean.payments) == clean.online


def replay_until_redis_is_full(
    payments: Path, state: Path, url: str, client: redis.Redis
) -> subprocess.CompletedProcess[str]:
    """A replay into ``url`` whose Redis stops taking writes part-way: once the replay has
    made WRITES_BEFORE_FULL of its ~140 store writes, ``maxmemory`` drops below what the
    server uses and, under ``noeviction``, every later write is refused with OOM."""
    client.config_set("maxmemory-policy", "noeviction")
    command = replay_command(payments, state)
    with subprocess.Popen(
        command, env=replay_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if _store_writes(client) >= WRITES_BEFORE_FULL:
                client.config_set("maxmemory", 1)
                break
            time.sleep(0.002)
        stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _store_writes(client: redis.Redis) -> int:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0))
