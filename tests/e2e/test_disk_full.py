"""A disk that fills mid-replay (issue #21 point 4): `streamsense replay` (and `run`) of
tests/apps/shop with its state dir (the embedded broker's log) on a small tmpfs, run as
users run it.

The replay stops with one line naming the file and saying that freeing space and running
the command again helps (exit 1, no traceback); what it committed is whole (every output,
changelog entry and ingest cursor matches the committed offsets: nothing half-applied);
rerun on the still-full disk it stops the same way; once the disk is grown it finishes
with the outputs of a replay on a roomy disk, each exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamsense.brokers import Broker, EmbeddedBroker, TopicConfig, TopicPartition
from streamsense.runtime.loader import load_app
from streamsense.testing import drain_topic
from tests.small_disk import SmallDisk, small_disk

ROOT = Path(__file__).resolve().parents[2]
SHOP = str(ROOT / "tests" / "apps" / "shop")
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
CUSTOMERS, ORDERS = 500, 50_000  # a clean replay's log is ~2 MB (compressed batches)
SOURCES = ("shop.orders", "shop.customers", "shop.keyed")
CURSORS = "__streamsense.ingest"


@dataclass(frozen=True)
class Inputs:
    orders: Path
    customers: Path


@dataclass(frozen=True)
class Outputs:
    keyed: list[tuple[bytes | None, bytes | None, bytes]]  # key, value, source: sorted
    joined: list[str]  # each joined order as JSON, sorted


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    module = load_app(SHOP).module
    files = module.write_demo_files(tmp_path_factory.mktemp("shop"), CUSTOMERS, ORDERS)
    return Inputs(files["orders"], files["customers"])


@pytest.fixture(scope="module")
def clean(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    """The outputs of a replay on a disk with room."""
    state = tmp_path_factory.mktemp("clean")
    done = replay(inputs, state)
    assert done.returncode == 0, done.stderr
    with EmbeddedBroker(state / "broker.db") as broker:
        return outputs(broker)


def replay(inputs: Inputs, state: Path, *more: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streamsense", "replay", SHOP, "--orders",
               str(inputs.orders), "--customers", str(inputs.customers),
               "--state-dir", str(state), *more]  # fmt: skip
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)


def outputs(broker: Broker) -> Outputs:
    keyed = [(r.key, r.value, dict(r.headers)["source"]) for r in drain_topic(broker, "shop.keyed")]
    joined = [
        json.dumps(row, sort_keys=True)
        for record in drain_topic(broker, "shop.joined")
        for row in json.loads(record.value or b"[]")
    ]
    return Outputs(sorted(keyed), sorted(joined))


def assert_one_line_disk_full(done: subprocess.CompletedProcess[str], disk: SmallDisk) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: disk full: cannot write {disk.path}/state/broker.db"), lines
    assert f"free space on {disk.path}" in lines[0], lines
    assert "and run the command again" in lines[0], lines


@dataclass(frozen=True)
class Progress:
    ingested: int  # orders in the log
    committed: int  # orders the pipeline committed


def committed_state_is_whole(path: Path) -> Progress:
    """What the log holds matches its commits exactly: the ingest cursor counts the rows
    in the topics; every output and changelog entry comes from an offset below the
    committed one, and every committed source offset has its output, once."""
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with EmbeddedBroker(path) as broker:
        tps = [TopicPartition(t, p) for t in SOURCES for p in (0, 1)]
        committed = {tp: offset or 0 for tp, offset in broker.committed("shop", tps).items()}
        high = {tp: broker.describe_topic(tp.topic).partitions[tp.partition].high for tp in tps}
        if CURSORS in broker.list_topics():  # a replay's ingest (not `produce`)
            cursors = {int(r.value or b"0") for r in drain_topic(broker, CURSORS)}
            assert sum(high[TopicPartition("shop.orders", p)] for p in (0, 1)) in cursors | {0}
        made = Counter(dict(r.headers)["source"] for r in drain_topic(broker, "shop.keyed"))
        made += Counter(dict(r.headers)["source"] for r in drain_topic(broker, "shop.joined"))
        assert max(made.values(), default=1) == 1, "an output written twice"
        expected = {
            f"{tp.topic}/{tp.partition}/{offset}".encode()
            for tp in tps
            if tp.topic != "shop.keyed"
            for offset in range(committed[tp])
        }
        keyed_sources = {s for s in made if not s.startswith(b"shop.keyed/")}
        assert keyed_sources == expected, "outputs do not match the committed offsets"
        for source in made.keys() - keyed_sources:  # joins: from committed keyed records
            _, partition, offset = source.decode().split("/")
            assert int(offset) < committed[TopicPartition("shop.keyed", int(partition))]
        for record in drain_topic(broker, "shop.join.changelog"):
            upto = dict(record.headers).get("upto:shop.keyed")
            assert (
                upto is None
                or int(upto) <= committed[TopicPartition("shop.keyed", record.partition)]
            )
        orders = [TopicPartition("shop.orders", p) for p in (0, 1)]
        return Progress(sum(high[tp] for tp in orders), sum(committed[tp] for tp in orders))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("size", "phase"),
    # Sizes found by trying (SQLite's WAL grows in steps; record batches are stored
    # compressed): 700 KiB fills while the orders are ingested (40,000 of 50,000 in),
    # 1,600 KiB while the pipeline runs (about a fifth of them committed).
    [("700k", "ingest"), ("1600k", "pipeline")],
)
def test_a_disk_that_fills_mid_replay_stops_it_whole_and_the_rerun_finishes_exactly_once(
    inputs: Inputs, clean: Outputs, tmp_path: Path, size: str, phase: str
) -> None:
    with small_disk(tmp_path / "disk", size) as disk:
        state = disk.path / "state"
        assert_one_line_disk_full(replay(inputs, state), disk)
        progress = committed_state_is_whole(state / "broker.db")
        if phase == "ingest":
            assert 0 < progress.ingested < ORDERS and progress.committed == 0, progress
        else:
            assert progress.ingested == ORDERS and 0 < progress.committed < ORDERS, progress
        assert_one_line_disk_full(replay(inputs, state), disk)  # still full: same answer
        assert committed_state_is_whole(state / "broker.db") == progress

        disk.resize("64m")
        done = replay(inputs, state)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"shop: {ORDERS} orders joined" in " ".join(done.stdout.split())
        assert committed_state_is_whole(state / "broker.db") == Progress(ORDERS, ORDERS)
        with EmbeddedBroker(state / "broker.db") as broker:
            assert outputs(broker) == clean


@pytest.mark.slow
def test_an_export_to_a_full_disk_is_one_line_and_the_rerun_writes_it(
    inputs: Inputs, clean: Outputs, tmp_path: Path
) -> None:
    state = tmp_path / "state"  # the log has room; the export's disk has not
    with small_disk(tmp_path / "disk", "1m") as disk:
        out = disk.path / "joined.jsonl"
        failed = replay(inputs, state, "--export-joined", str(out))
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "Traceback" not in failed.stdout + failed.stderr, failed.stderr
        lines = [line for line in failed.stderr.splitlines() if line.strip()]
        assert lines == [
            f"error: disk full: cannot write {out} (No space left on device; 0 B free on "
            f"{disk.path}): free space on {disk.path} and run the command again (a replay or "
            "a worker resumes from its last commit)"
        ]
        disk.resize("16m")
        done = replay(inputs, state, "--export-joined", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        rows = sorted(json.dumps(json.loads(line), sort_keys=True) for line in out.open())
        assert rows == clean.joined


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_disk_that_fills_under_run_stops_the_worker_and_its_restart_catches_up(
    inputs: Inputs, clean: Outputs, tmp_path: Path
) -> None:
    """`streamsense run`: a member of its group (a lease written as it polls; its leave as
    it stops may find the disk full too, and then its restart waits out that lease, as
    after a crash), not a replay owning every partition."""
    with small_disk(tmp_path / "disk", "64m") as disk:
        state = disk.path / "state"
        produce(state / "broker.db", inputs)
        disk.resize(f"{(disk.used + 4 * 2**20) // 1024}k")  # room for about a third
        with run_worker(state) as worker:
            stdout, stderr = worker.communicate(timeout=120)
        stopped = subprocess.CompletedProcess(worker.args, worker.returncode, stdout, stderr)
        assert_one_line_disk_full(stopped, disk)
        progress = committed_state_is_whole(state / "broker.db")
        assert progress.ingested == ORDERS and 0 < progress.committed < ORDERS, progress

        disk.resize("64m")
        with run_worker(state) as worker:
            deadline = time.monotonic() + 120
            while committed_orders(state / "broker.db") < ORDERS:
                assert worker.poll() is None and time.monotonic() < deadline, worker.returncode
                time.sleep(0.5)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
        assert committed_state_is_whole(state / "broker.db") == Progress(ORDERS, ORDERS)
        with EmbeddedBroker(state / "broker.db") as broker:
            assert outputs(broker) == clean


def committed_orders(path: Path) -> int:
    orders = [TopicPartition("shop.orders", p) for p in (0, 1)]
    with EmbeddedBroker(path) as broker:
        return sum(offset or 0 for offset in broker.committed("shop", orders).values())


def produce(path: Path, inputs: Inputs) -> None:
    """The input files into their topics, as `streamsense produce --key user` would."""
    with EmbeddedBroker(path) as broker, broker.producer() as producer:
        for topic, file in (("shop.orders", inputs.orders), ("shop.customers", inputs.customers)):
            broker.create_topic(topic, TopicConfig(2), exist_ok=False)
            for line in file.read_bytes().splitlines():
                producer.send(topic, line, json.loads(line)["user"].encode())


@contextmanager
def run_worker(state: Path) -> Iterator[subprocess.Popen[str]]:
    """`streamsense run` of the shop in the background; killed if still running at the end
    (a failed assertion), so the test never waits on it."""
    command = [sys.executable, "-m", "streamsense", "run", SHOP, "--state-dir", str(state)]
    with subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as worker:
        try:
            yield worker
        finally:
            if worker.poll() is None:
                worker.kill()
