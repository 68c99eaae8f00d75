"""Action sinks and their dispatcher: each action once, retries, dead letters, pauses."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest

from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.brokers.base import OutRecord
from streamsense.resilience.retry import RetryPolicy
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.sinks import (
    ActionDispatcher,
    AlertLogSink,
    Delivery,
    SqlTableSink,
    TopicActionSink,
    WebhookSink,
)
from streamsense.testing import drain_topic

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002, jitter="none")


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
    for topic in ("decisions", "actions", "dead"):
        broker.create_topic(topic, TopicConfig(2))
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


def test_webhook_retries_until_the_receiver_recovers() -> None:
    hook = Hook(failures=2)
    broker = decisions_broker(1)
    sink = WebhookSink(hook.url, retry=FAST, dead_letter_topic="dead")
    stats = ActionDispatcher(broker, "decisions", [sink]).run(until_caught_up=True)
    hook.close()
    assert hook.keys() == ["tx/0/0"] * 3  # two 503s, then accepted; one idempotency key
    assert hook.posts[-1][1]["action"] == "allow"
    assert stats.decisions == 1 and broker.describe_topic("dead").messages == 0


@pytest.mark.parametrize(("status", "attempts"), [(503, 4), (400, 1)])
def test_webhook_dead_letters_after_repeated_failure(status: int, attempts: int) -> None:
    hook = Hook(failures=1000, status=status)
    broker = decisions_broker(2)
    sink = WebhookSink(hook.url, retry=FAST, dead_letter_topic="dead")
    ActionDispatcher(broker, "decisions", [sink]).run(until_caught_up=True)
    hook.close()
    dead = drain_topic(broker, "dead")
    assert len(hook.posts) == 2 * attempts  # a client error is not retried
    assert sorted(dict(d.headers)["event-id"] for d in dead) == [b"api/1", b"tx/0/0"]
    assert {dict(d.headers)["error"] for d in dead} == {f"HTTP {status}".encode()}
    assert {dict(d.headers)["attempts"] for d in dead} == {str(attempts).encode()}
    assert json.loads(dead[0].value or b"")["tier"] == "light"  # the original decision


class Flaky:
    """A sink that fails its first ``failures`` batches (a database that is down)."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def deliver(self, batch: list[Delivery]) -> list[OutRecord]:
        if self.failures:
            self.failures -= 1
            raise OSError("down")
        return []

    def close(self) -> None:
        pass


def test_every_action_happens_once_through_pauses_and_replays(hook: Hook, tmp_path: Path) -> None:
    n = 30
    broker = decisions_broker(n)
    alerts, table = tmp_path / "alerts.jsonl", tmp_path / "actions.db"

    def sinks() -> list[object]:
        return [
            WebhookSink(hook.url, retry=FAST, dead_letter_topic="dead"),
            AlertLogSink(alerts),
            SqlTableSink(table),
        ]

    backoff = RetryPolicy(base_delay=0.001, max_delay=0.002, jitter="none")
    first = ActionDispatcher(
        broker,
        "decisions",
        [TopicActionSink("actions", actions={"block"}), *sinks(), Flaky(2)],  # type: ignore[list-item]
        backoff=backoff,
        batch_size=7,
    )
    stats = first.run(until_caught_up=True)
    first.close()
    assert stats.decisions == n and stats.sink_failures == {"flaky": 2}
    forwarded = drain_topic(broker, "actions")
    assert len(forwarded) == n // 3  # the blocks, each once although batches were redelivered
    assert len(hook.posts) == n and len(set(hook.keys())) == n  # redelivery did not repost
    # A restart with a fresh group replays every decision: the sinks keep one of each.
    replay = ActionDispatcher(broker, "decisions", sinks(), group="replay")  # type: ignore[arg-type]
    replay.run(until_caught_up=True)
    replay.close()
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
    broker = decisions_broker(3)
    ActionDispatcher(broker, "decisions", [sink]).run(until_caught_up=True)
    sink.close()
    ids = [json.loads(line)["event_id"] for line in path.read_text().splitlines()]
    assert ids[0] == "a" and sorted(ids[1:]) == ["api/1", "tx/0/2"]


def test_undecodable_decisions_go_to_the_dead_letter_topic(tmp_path: Path) -> None:
    broker = decisions_broker(1)
    with broker.producer() as producer:
        producer.send("decisions", b"{nope", b"k")
    sink = SqlTableSink(tmp_path / "t.db")
    stats = ActionDispatcher(broker, "decisions", [sink], dead_letter_topic="dead").run(
        until_caught_up=True
    )
    assert (stats.decisions, stats.undecodable) == (2, 1)
    (dead,) = drain_topic(broker, "dead")
    assert dead.value == b"{nope" and dict(dead.headers)["error"].startswith(b"not a JSON")
