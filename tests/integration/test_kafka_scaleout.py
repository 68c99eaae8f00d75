"""Scale-out on real Kafka: three worker processes in one consumer group on a 6-partition
topic while events stream in; one is SIGKILLed mid-stream, another joins later. Partitions
move with their keyed state (feature-engine snapshots + replay, changelogs), and

* exactly-once mode (Kafka transactions): a read_committed reader sees every event's
  output exactly once, with no deduplication at all;
* at-least-once mode (the default): the kill may leave outputs whose offsets were never
  committed, which are written again on replay. The copies are byte-identical, and
  deduplication by source coordinates (what an idempotent sink does) leaves each event's
  output exactly once.

Both: no gap or repeat in any user's sequence number, and the feature vectors equal a
single uninterrupted worker's. A backlog of 150,000 users' history comes first, so each
partition's feature state (a changelog entry per user) is megabytes, not a toy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from streamsense.brokers.base import Record
from streamsense.brokers.kafka import KafkaBroker
from streamsense.runtime.batch_state import META_KEY
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps import scaleout
from tests.integration.workers import (
    Feeder,
    WorkerProcess,
    backlog,
    check_outputs,
    events,
    live_members,
    processed,
    reference_outputs,
    start_worker,
    wait_until,
)

Names = Callable[[str], str]
# 640,000 events through three Kafka workers, then the same through one in-memory worker for
# the reference: ~290 s on a quiet machine, so the hang guard is set above the default 300 s.
pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]
EVENTS = 40_000
RATE = 2_000  # events/s: the stream lasts 20 s plus the wait for the added worker
BULK, BULK_USERS = 600_000, 150_000
STATE_MB = 2.5  # the least feature state a partition must hold (about 3 MB)


@pytest.mark.parametrize("exactly_once", [True, False], ids=["exactly-once", "at-least-once"])
def test_three_workers_one_killed_one_added(
    kafka_bootstrap: str, unique: Names, tmp_path: Path, exactly_once: bool
) -> None:
    name = unique("scaleout")
    app, clicks = scaleout.build(name)
    broker = KafkaBroker(kafka_bootstrap)
    Worker(app, broker).ensure_topics()
    live = events(EVENTS)
    history = backlog(BULK, BULK_USERS, live)
    items = history + live

    def url(worker: str) -> str:
        if not exactly_once:
            return f"kafka://{kafka_bootstrap}"
        # A short transaction timeout: the killed worker's open transaction (if the kill
        # lands inside one) holds back its partitions' offsets only until Kafka aborts it.
        return (
            f"kafka://{kafka_bootstrap}?exactly_once=true"
            f"&transactional_id={name}-{worker}&transaction_timeout_ms=10000"
        )

    def start(worker: str) -> WorkerProcess:
        return start_worker(tmp_path, worker, name, url(worker), state_every_s=2.0)

    workers = [start(w) for w in ("w0", "w1", "w2")]
    wait_until(lambda: live_members(kafka_bootstrap, app.group) == 3, workers, "3 members")
    # The second half of the stream waits for the added worker: the kill and the join both
    # land mid-stream however long the rebalances take on a loaded machine.
    with broker.producer() as producer:  # the history at once: a backlog
        for out in map(clicks.to_record, history):
            producer.send(out.topic, out.value, out.key)
    half = EVENTS // 2
    feeder = Feeder(broker, [clicks.to_record(click) for click in live], RATE, hold_after=half)
    feeder.start()

    def done() -> int:
        return processed(broker, app.group, clicks.topic) - BULK

    wait_until(lambda: done() >= EVENTS * 0.15, workers, "some processed", timeout=300)
    killed = workers.pop(1)
    killed.kill()
    at_kill = done()
    # The survivors take the dead member's partitions once its session expires.
    wait_until(lambda: live_members(kafka_bootstrap, app.group) == 2, workers, "2 members")
    workers.append(start("w3"))
    wait_until(lambda: live_members(kafka_bootstrap, app.group) == 3, workers, "w3 joined")
    at_join = done()
    feeder.release()
    feeder.join(timeout=60)
    assert not feeder.is_alive() and feeder.error is None, feeder.error
    wait_until(lambda: group_lag(broker, app.group, [clicks.topic]).total == 0, workers, "lag 0")
    stats = {w.name: _events(w.stop()) for w in workers}
    assert at_kill <= at_join <= half, (at_kill, at_join)  # both mid-stream
    assert all(n > 0 for n in stats.values()), stats  # every live worker had partitions

    sizes = _state_bytes(drain_topic(broker, app.state_topic(f"{name}-features")))
    assert min(sizes.values()) >= STATE_MB * 1e6, sizes
    records = drain_topic(broker, f"{name}.features")
    copies = check_outputs(records, reference_outputs(name, items), dedup=not exactly_once)
    if exactly_once:
        assert copies == 0
    print(f"kill at {at_kill}, join at {at_join}; {copies} outputs written twice and dropped")
    print(f"feature state per partition (MB): {[round(b / 1e6, 1) for b in sizes.values()]}")
    broker.close()


def _state_bytes(records: list[Record]) -> dict[int, int]:
    """Each partition's feature state: the latest entry of every key, in bytes."""
    latest: dict[tuple[int, bytes], int] = {}
    for record in records:
        if record.key != META_KEY:
            latest[(record.partition, record.key or b"")] = len(record.value or b"")
    sizes: dict[int, int] = {p: 0 for p in range(scaleout.PARTITIONS)}
    for (partition, _), size in latest.items():
        sizes[partition] += size
    return sizes


def _events(output: str) -> int:
    found = re.search(r"processed ([\d,]+) events", output)
    assert found, output[-2000:]
    return int(found.group(1).replace(",", ""))
