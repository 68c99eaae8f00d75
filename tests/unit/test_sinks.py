"""Action sinks run by the worker: each action once, retries, dead letters, pauses."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamsense as ss
from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.brokers.base import OutRecord
from streamsense.errors import RetryableError
from streamsense.resilience.retry import RetryPolicy
from streamsense.runtime.app import Sink
from streamsense.runtime.pauses import Backoff
from streamsense.serving import (
    AlertLogSink,
    Decision,
    DecisionRecord,
    SqlTableSink,
    TopicActionSink,
    WebhookSink,
)
from streamsense.serving.sinks import delivery_of
from streamsense.serving.webhook import WebhookFailed
from streamsense.testing import drain_topic

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002, jitter="none")
DECISIONS = ss.Stream("decisions", Decision, key="key", time="event_time", partitions=2)


class Hook:
    """A local webhook receiver that answers ``status`` to the first ``failures`` posts."""

    def __init__(self, failures: int = 0, status: int = 503) -> None:
        self.failures, self.status = failures, status
        self.posts: list[tuple[str, dict[str, object]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                hook.posts.append((self.headers["idempotency-key"], json.loads(body)))
                failing = len(hook.posts) <= hook.failures
                self.send_response(hook.status if failing else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def keys(self) -> list[str]:
        return [key for key, _ in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def decisions_broker(n: int) -> MemoryBroker:
    """``n`` decisions: API-made ones (event-id header) and pipeline ones (source header)."""
    broker = MemoryBroker()
    broker.create_topic("decisions", TopicConfig(2))
    with broker.producer() as producer:
        for i in range(n):
            action = ("allow", "review", "block")[i % 3]
            record = DecisionRecord(
                event_id=f"api/{i}", key=f"c{i % 5}", score=0.1, action=action, tier="light"
            )
            header = (
                ("event-id", f"api/{i}".encode()) if i % 2 else ("source", f"tx/0/{i}".encode())
            )
            producer.send(
                "decisions", msgspec.json.encode(record), f"c{i % 5}".encode(), headers=(header,)
            )
    return broker


def act(
    broker: MemoryBroker, sinks: Sequence[Sink], *, group: str = "actions", batch_size: int = 100
) -> ss.Worker:
    """Runs a flow from the decisions topic into ``sinks`` until it is read to its end."""
    app = ss.App(group)
    flow = app.flow(DECISIONS)
    for sink in sinks:
        flow.sink(sink)
    config = ss.WorkerConfig(batch_size=batch_size, retry=Backoff(first_s=0.001, max_s=0.002))
    worker = ss.Worker(app, broker, config)
    worker.run(until_caught_up=True)
    return worker


def test_webhook_retries_until_the_receiver_recovers() -> None:
    hook = Hook(failures=2)
    broker = decisions_broker(1)
    worker = act(broker, [WebhookSink(hook.url, retry=FAST, dead_letter_topic="dead")])
    hook.close()
    assert hook.keys() == ["tx/0/0"] * 3  # two 503s, then accepted; one idempotency key
    assert hook.posts[-1][1]["action"] == "allow"
    assert worker.stats.events == 1 and broker.describe_topic("dead").messages == 0


@pytest.mark.parametrize(("status", "attempts"), [(503, 4), (400, 1)])
def test_webhook_dead_letters_after_repeated_failure(status: int, attempts: int) -> None:
    hook = Hook(failures=1000, status=status)
    broker = decisions_broker(2)
    act(broker, [WebhookSink(hook.url, retry=FAST, dead_letter_topic="dead")])
    hook.close()
    dead = drain_topic(broker, "dead")
    assert len(hook.posts) == 2 * attempts  # a client error is not retried
    assert sorted(dict(d.headers)["event-id"] for d in dead) == [b"api/1", b"tx/0/0"]
    assert {dict(d.headers)["error"] for d in dead} == {f"HTTP {status}".encode()}
    assert {dict(d.headers)["attempts"] for d in dead} == {str(attempts).encode()}
    assert json.loads(dead[0].value or b"")["tier"] == "light"  # the original decision


def test_a_webhook_down_without_dead_letters_pauses_the_partition() -> None:
    hook = Hook(failures=6)  # more than one write's 4 attempts
    broker = decisions_broker(1)
    worker = act(broker, [WebhookSink(hook.url, retry=FAST)])
    hook.close()
    assert worker.stats.failures == 1  # retryable: paused, reloaded, written again
    assert hook.keys() == ["tx/0/0"] * 7 and worker.stats.events == 1


def test_a_webhook_refusing_without_dead_letters_stops_the_worker() -> None:
    hook = Hook(failures=1000, status=400)
    with pytest.raises(WebhookFailed, match="HTTP 400"):
        act(decisions_broker(1), [WebhookSink(hook.url, retry=FAST)])
    hook.close()


class Flaky:
    """A sink that fails its first ``failures`` writes (a database that is down)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {}

    def write(self, events: Sequence[ss.Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        if self.failures:
            self.failures -= 1
            raise RetryableError("down")
        return []


def test_every_action_happens_once_through_pauses_and_replays(hook: Hook, tmp_path: Path) -> None:
    n = 30
    broker = decisions_broker(n)
    alerts, table = tmp_path / "alerts.jsonl", tmp_path / "actions.db"

    def sinks() -> list[Sink]:
        return [
            WebhookSink(hook.url, retry=FAST, dead_letter_topic="dead"),
            AlertLogSink(alerts),
            SqlTableSink(table),
        ]

    first = [TopicActionSink("actions", actions={"block"}), *sinks(), Flaky(2)]
    worker = act(broker, first, batch_size=7)
    assert worker.stats.failures == 2 and worker.stats.events == n
    forwarded = drain_topic(broker, "actions")
    assert len(forwarded) == n // 3  # the blocks, each once although batches were redone
    assert len(hook.posts) == n and len(set(hook.keys())) == n  # redoing did not repost
    # A restart with a fresh group replays every decision: the sinks keep one of each.
    act(broker, sinks(), group="replay")
    assert len(set(hook.keys())) == n  # reposted with the same idempotency keys
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert len(lines) == n - n // 3 and {x["action"] for x in lines} == {"review", "block"}
    with sqlite3.connect(table) as db:
        assert db.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM decisions"
        ).fetchone() == (n, n)
        assert db.execute("SELECT action FROM decisions WHERE event_id = 'api/1'").fetchone() == (
            "review",
        )


def test_alert_log_recovers_from_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'{"event_id": "a", "action": "block"}\n{"event_id": "b", "act')
    sink = AlertLogSink(path)
    act(decisions_broker(3), [sink])
    sink.close()
    ids = [json.loads(line)["event_id"] for line in path.read_text().splitlines()]
    assert ids[0] == "a" and sorted(ids[1:]) == ["api/1", "tx/0/2"]


def test_an_alert_log_that_cannot_write_is_retried_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = AlertLogSink(path)
    failures = iter([OSError(28, "No space left on device")])

    def fsync(fd: int) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    monkeypatch.setattr(os, "fsync", fsync)
    worker = act(decisions_broker(3), [sink])
    sink.close()
    ids = sorted(json.loads(line)["event_id"] for line in path.read_text().splitlines())
    assert worker.stats.failures == 1 and ids == ["api/1", "tx/0/2"]


def test_undecodable_decisions_go_to_the_dead_letter_topic(tmp_path: Path) -> None:
    broker = decisions_broker(1)
    with broker.producer() as producer:
        producer.send("decisions", b"{nope", b"k")
    worker = act(broker, [SqlTableSink(tmp_path / "t.db")])
    assert (worker.stats.events, worker.stats.dead_letters) == (2, 1)
    (dead,) = drain_topic(broker, DECISIONS.dead_letter_topic)
    assert dead.value == b"{nope" and dict(dead.headers)["reason"].startswith(b"JSON")


def test_a_decision_is_known_by_its_request_then_its_source_then_itself() -> None:
    record = DecisionRecord(event_id="own", key="k", score=0.9, action="block", tier="heavy")
    event = ss.Event("k", 0, None, "tx", 0, 7, 0)
    assert delivery_of(event, record).event_id == "own"
    assert delivery_of(event, {"action": "allow"}).event_id == "tx/0/7"
    sourced = msgspec.structs.replace(event, headers=(("source", b"tx/1/2"),))
    assert delivery_of(sourced, record).event_id == "tx/1/2"
    asked = msgspec.structs.replace(sourced, headers=(("event-id", b"rr/9"), ("source", b"x")))
    assert delivery_of(asked, record).event_id == "rr/9"
    assert delivery_of(asked, record).action == "block"
