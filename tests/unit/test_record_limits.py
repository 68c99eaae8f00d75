"""No record streamsense writes may exceed the broker's record limit: an event whose output
is too large, or a file row too large to produce, becomes a dead letter with its reason
(cut to the limit, saying how long it was), and the pipeline goes on; a stage's keyed state
too large for one changelog record is a clear, fatal error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamsense as ss
from streamsense.brokers import MemoryBroker
from streamsense.brokers.base import RECORD_LIMIT_BYTES, OutRecord, Record, record_size
from streamsense.errors import FatalError
from streamsense.runtime.ingest import ingest_file
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps.counter import Click, make_clicks

HUGE = RECORD_LIMIT_BYTES + 10


class Row(ss.Schema):
    user: str
    ts: int
    amount: float


rows = ss.Stream("rows", Row, key="user", time="ts", partitions=2, max_bytes=4 * HUGE)


def inflate(row: Row, ctx: ss.Context) -> dict[str, Any]:
    """Every third event's output is too large for the broker."""
    size = HUGE if int(row.amount) % 3 == 0 else 10
    return {"user": row.user, "pad": "x" * size}


def produce(broker: MemoryBroker, items: list[Click]) -> None:
    with broker.producer() as producer:
        for click in items:
            record = rows.to_record(Row(click.user, click.ts, click.amount))
            producer.send(record.topic, record.value, record.key)


def test_an_event_whose_output_is_too_large_becomes_a_dead_letter() -> None:
    app = ss.App("limits")
    app.flow(rows).stage("inflate", inflate).sink(ss.TopicSink("limits.out"))
    broker = MemoryBroker()
    worker = Worker(app, broker)
    worker.ensure_topics()
    items = make_clicks(30)
    produce(broker, items)
    stats = worker.run(until_caught_up=True)
    out = drain_topic(broker, "limits.out")
    letters = drain_topic(broker, rows.dead_letter_topic)
    too_large = [c for c in items if int(c.amount) % 3 == 0]
    assert len(out) == len(items) - len(too_large) and len(letters) == len(too_large)
    assert stats.dead_letter_reasons == {"output-size": len(too_large)}
    assert all(record_size(_out(r)) <= RECORD_LIMIT_BYTES for r in out + letters)
    for letter in letters:  # "output of N bytes exceeds the L-byte record limit"
        words = dict(letter.headers)["reason"].decode().split()
        assert words[:2] == ["output", "of"] and int(words[2]) > HUGE
    decoded = [msgspec.json.decode(r.value or b"") for r in letters]  # the original events
    assert sorted(d["amount"] for d in decoded) == sorted(c.amount for c in too_large)


def test_a_file_row_too_large_for_the_broker_becomes_a_dead_letter(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    lines = [msgspec.json.encode({"user": "a", "ts": 1, "amount": 1.0, "note": "x" * HUGE})]
    lines += [msgspec.json.encode({"user": "b", "ts": 2, "amount": 2.0})]
    path.write_bytes(b"\n".join(lines) + b"\n")
    broker = MemoryBroker()
    assert ingest_file(broker, rows, path) == 2
    kept = drain_topic(broker, rows.topic)
    letters = drain_topic(broker, rows.dead_letter_topic)
    assert [msgspec.json.decode(r.value or b"")["user"] for r in kept] == ["b"]
    assert len(letters) == 1 and record_size(_out(letters[0])) <= RECORD_LIMIT_BYTES
    headers = dict(letters[0].headers)
    assert headers["reason"].startswith(b"row of ") and b"record limit" in headers["reason"]
    assert int(headers["truncated-from"]) > HUGE


def test_keyed_state_too_large_for_a_changelog_record_is_fatal() -> None:
    def hoard(click: Click, ctx: ss.Context) -> None:
        ctx.state.set("x" * HUGE)

    app = ss.App("hoard")
    app.flow(rows).stage("hoard", hoard)
    broker = MemoryBroker()
    worker = Worker(app, broker)
    worker.ensure_topics()
    produce(broker, make_clicks(1))
    with pytest.raises(FatalError, match=r"over the .*record limit"):
        worker.run(until_caught_up=True)


def _out(record: Record) -> OutRecord:
    return OutRecord(record.topic, record.value, record.key, headers=record.headers)
