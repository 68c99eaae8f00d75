"""Action sinks: where decisions go to be acted on — a topic, a webhook, an alert log, a table.

    dispatcher = ActionDispatcher(broker, "fraud.decisions", [
        TopicActionSink("fraud.blocked", actions={"block"}),
        WebhookSink("https://ops.example.com/hook", dead_letter_topic="fraud.webhook-dead"),
        AlertLogSink("alerts.jsonl"),
        SqlTableSink("decisions.db"),
    ])
    dispatcher.run()          # until stop(); or run(until_caught_up=True)

The dispatcher reads the decisions topic as a consumer group and hands each batch to every
sink; the consumed offsets are committed only after every sink took the batch, in one
transaction with the records the sinks return (topic outputs, dead letters). A sink that
raises pauses consumption: the batch is read again after a backoff, the events wait in the
broker, and the dispatcher catches up on recovery. Delivery is therefore at least once, and
every sink is idempotent by the decision's event id, so each action happens once:

- topic: its records commit atomically with the offsets (exactly once on the embedded and
  memory brokers, and on Kafka with transactions); each carries the ``event-id`` header;
- webhook: ``Idempotency-Key: <event id>`` on every POST (the receiver deduplicates), and
  ids already delivered by this process are not posted again; retries with backoff and
  jitter (``RetryPolicy``), then a dead letter with the reason after repeated failure;
- alert log: JSON lines; ids already in the file are skipped (the file is read at start);
- SQL table: SQLite, ``INSERT OR IGNORE`` on the event id as primary key.

A decision's event id is its ``event-id`` header (decisions made by the API), else its
``source`` header (decisions of a pipeline: the source event's coordinates), else the
record's own ``event_id`` field, else the decision record's coordinates.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import httpx
import msgspec

from streamsense.brokers.base import Broker, OutRecord, Record, TopicPartition, Transaction
from streamsense.errors import ConfigError, FatalError, RetryableError
from streamsense.resilience.retry import RetryPolicy, RetryTrace

__all__ = [
    "ActionDispatcher",
    "ActionSink",
    "AlertLogSink",
    "Delivery",
    "DispatchStats",
    "SqlTableSink",
    "TopicActionSink",
    "WebhookSink",
    "delivery_of",
]

log = logging.getLogger(__name__)


class Delivery(NamedTuple):
    """One decision to act on, as read from the decisions topic."""

    event_id: str
    key: str | None
    action: str | None
    decision: dict[str, Any]  # the decoded JSON record
    record: Record  # as read, original bytes in ``record.value``


def delivery_of(record: Record) -> Delivery:
    """Raises ``msgspec.DecodeError`` or ``ValueError`` when the value is not a JSON object."""
    decision = msgspec.json.decode(record.value or b"")
    if not isinstance(decision, dict):
        raise ValueError("a decision must be a JSON object")
    headers = dict(record.headers)
    raw_id = headers.get("event-id") or headers.get("source")
    if raw_id is not None:
        event_id = raw_id.decode()
    else:
        event_id = str(
            decision.get("event_id") or f"{record.topic}/{record.partition}/{record.offset}"
        )
    action = decision.get("action")
    key = record.key.decode() if record.key is not None else None
    return Delivery(event_id, key, action if isinstance(action, str) else None, decision, record)


class ActionSink(Protocol):
    """Acts on decisions. ``deliver`` gets a batch (in log order per partition) and returns
    records to commit with the batch's offsets; it raises to have the whole batch delivered
    again later, so it must be idempotent by ``Delivery.event_id``."""

    name: str

    def deliver(self, batch: Sequence[Delivery]) -> list[OutRecord]: ...

    def close(self) -> None: ...


def _chosen(batch: Iterable[Delivery], actions: Collection[str] | None) -> list[Delivery]:
    return [d for d in batch if actions is None or d.action in actions]


def _id_headers(delivery: Delivery) -> tuple[tuple[str, bytes], ...]:
    return (("event-id", delivery.event_id.encode()),)


@dataclass
class TopicActionSink:
    """Forwards the decisions (original bytes, keyed by entity) to ``topic``."""

    topic: str
    actions: Collection[str] | None = None
    name: str = "topic"

    def deliver(self, batch: Sequence[Delivery]) -> list[OutRecord]:
        return [
            OutRecord(self.topic, d.record.value, d.record.key, headers=_id_headers(d))
            for d in _chosen(batch, self.actions)
        ]

    def close(self) -> None:
        pass


class WebhookFailed(RetryableError):
    """The webhook refused or did not answer; ``retryable`` says whether trying again may
    help (connection errors, timeouts, 408, 429, 5xx) or not (other 4xx)."""


class WebhookSink:
    """POSTs each decision as JSON to ``url`` with ``Idempotency-Key: <event id>``."""

    def __init__(
        self,
        url: str,
        *,
        retry: RetryPolicy | None = None,
        dead_letter_topic: str | None = None,
        actions: Collection[str] | None = None,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        remember: int = 100_000,
        client: httpx.Client | None = None,
        name: str = "webhook",
    ) -> None:
        self.url = url
        self.retry = retry or RetryPolicy(attempts=5, base_delay=0.2, max_delay=5.0)
        self.dead_letter_topic = dead_letter_topic
        self.actions = actions
        self.name = name
        self.client = client or httpx.Client(timeout=timeout, headers=dict(headers or {}))
        self.posted = 0  # POST requests made, retries included
        self.dead_letters = 0
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def deliver(self, batch: Sequence[Delivery]) -> list[OutRecord]:
        dead: list[OutRecord] = []
        for delivery in _chosen(batch, self.actions):
            if delivery.event_id in self._delivered:
                continue  # the batch is being redelivered after another sink failed
            trace = RetryTrace()
            try:
                self.retry.call(self._post, delivery, trace=trace)
            except WebhookFailed as error:
                if self.dead_letter_topic is None:
                    raise  # no dead letters: pause and deliver again later
                dead.append(self._dead_letter(delivery, error, trace.attempts))
            self._remember_delivered(delivery.event_id)
        return dead

    def _post(self, delivery: Delivery) -> None:
        self.posted += 1
        headers = {"content-type": "application/json", "idempotency-key": delivery.event_id}
        try:
            response = self.client.post(self.url, content=delivery.record.value, headers=headers)
        except httpx.TransportError as error:
            raise WebhookFailed(f"{type(error).__name__}: {error}", retryable=True) from error
        status = response.status_code
        if status >= 300:
            retryable = status in (408, 429) or status >= 500
            raise WebhookFailed(f"HTTP {status}", retryable=retryable)

    def _dead_letter(self, delivery: Delivery, error: Exception, attempts: int) -> OutRecord:
        assert self.dead_letter_topic is not None
        self.dead_letters += 1
        log.warning("webhook %s: dead letter for %s (%s)", self.url, delivery.event_id, error)
        headers = (
            *_id_headers(delivery),
            ("sink", self.name.encode()),
            ("error", str(error).encode()),
            ("attempts", str(attempts).encode()),
        )
        return OutRecord(
            self.dead_letter_topic, delivery.record.value, delivery.record.key, headers=headers
        )

    def _remember_delivered(self, event_id: str) -> None:
        self._delivered[event_id] = None
        if len(self._delivered) > self._remember:
            self._delivered.popitem(last=False)

    def close(self) -> None:
        self.client.close()


class AlertLogSink:
    """Appends one JSON line per decision to ``path``: {"event_id", "key", "action",
    "decision"}; by default only review and block."""

    def __init__(
        self,
        path: Path | str,
        *,
        actions: Collection[str] | None = ("review", "block"),
        fsync: bool = True,
        name: str = "alert-log",
    ) -> None:
        self.path = Path(path)
        self.actions = actions
        self.fsync = fsync
        self.name = name
        self._seen = self._recover()
        self._file = self.path.open("ab")

    def _recover(self) -> set[str]:
        """Ids already written; a torn last line (a crash mid-write) is cut off: its batch
        was never committed, so it is delivered again."""
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            with self.path.open("r+b") as file:
                file.truncate(len(complete))
        return {json.loads(line)["event_id"] for line in complete.splitlines() if line.strip()}

    def deliver(self, batch: Sequence[Delivery]) -> list[OutRecord]:
        lines = []
        for d in _chosen(batch, self.actions):
            if d.event_id not in self._seen:
                self._seen.add(d.event_id)
                entry = {"event_id": d.event_id, "key": d.key, "action": d.action}
                lines.append(msgspec.json.encode({**entry, "decision": d.decision}) + b"\n")
        if lines:
            self._file.write(b"".join(lines))
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        return []

    def close(self) -> None:
        self._file.close()


_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SqlTableSink:
    """One row per decision in a SQLite table, keyed by event id (``INSERT OR IGNORE``)."""

    def __init__(
        self,
        path: Path | str,
        *,
        table: str = "decisions",
        actions: Collection[str] | None = None,
        name: str = "sql",
    ) -> None:
        if not _TABLE.match(table):
            raise ConfigError(f"table name {table!r} is not a plain SQL identifier")
        self.table = table
        self.actions = actions
        self.name = name
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (event_id TEXT PRIMARY KEY, key TEXT, "
            "action TEXT, score REAL, tier TEXT, degraded INTEGER, decided_at INTEGER, "
            "decision TEXT NOT NULL)"
        )

    def deliver(self, batch: Sequence[Delivery]) -> list[OutRecord]:
        rows = [
            (
                d.event_id,
                d.key,
                d.action,
                d.decision.get("score"),
                d.decision.get("tier"),
                int(bool(d.decision.get("degraded", False))),
                d.record.timestamp,
                (d.record.value or b"").decode(),
            )
            for d in _chosen(batch, self.actions)
        ]
        try:
            with self._db:  # one transaction per batch
                self._db.executemany(
                    f"INSERT OR IGNORE INTO {self.table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
        except sqlite3.OperationalError as error:  # locked, disk full: deliver again later
            raise RetryableError(f"{self.table}: {error}") from error
        return []

    def close(self) -> None:
        self._db.close()


@dataclass
class DispatchStats:
    decisions: int = 0
    batches: int = 0
    outputs: int = 0
    undecodable: int = 0
    sink_failures: dict[str, int] = field(default_factory=dict)


class ActionDispatcher:
    """Reads every partition of ``topic`` from group ``group``'s committed offsets and
    delivers every decision to every sink (one dispatcher per group).

    Undecodable records go to ``dead_letter_topic`` (when given) with the reason; a sink
    that raises pauses the dispatcher for ``backoff.delay(n)`` after the n-th failure in a
    row, then the same batch is delivered again to every sink."""

    def __init__(
        self,
        broker: Broker,
        topic: str,
        sinks: Sequence[ActionSink],
        *,
        group: str = "streamsense-actions",
        dead_letter_topic: str | None = None,
        batch_size: int = 500,
        backoff: RetryPolicy | None = None,
    ) -> None:
        if not sinks:
            raise ConfigError("an action dispatcher needs at least one sink")
        self.broker = broker
        self.topic = topic
        self.sinks = list(sinks)
        self.group = group
        self.dead_letter_topic = dead_letter_topic
        self.batch_size = batch_size
        self.backoff = backoff or RetryPolicy(base_delay=0.1, max_delay=30.0)
        self.stats = DispatchStats()
        self._failures = 0
        self._stop = threading.Event()
        self._consumer = broker.consumer(group)
        info = broker.describe_topic(topic)
        self._partitions = [TopicPartition(topic, p.partition) for p in info.partitions]
        self._consumer.assign(self._partitions)

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, until_caught_up: bool = False, poll_timeout: float = 0.1) -> DispatchStats:
        """Deliver until ``stop()`` (or, with ``until_caught_up``, until the topic's end)."""
        while not self._stop.is_set():
            if until_caught_up and self._caught_up():
                break
            self.step(poll_timeout)
        return self.stats

    def step(self, timeout: float = 0.0) -> int:
        """Poll one batch and deliver it; returns how many decisions were committed."""
        records = self._consumer.poll(self.batch_size, timeout=timeout)
        if not records:
            return 0
        batch, outputs = self._decode(records)
        try:
            for sink in self.sinks:
                outputs.extend(sink.deliver(batch))
        except Exception as error:
            self._pause(records, sink.name, error)
            return 0
        offsets = {}
        for record in records:
            offsets[record.tp] = record.offset + 1
        txn = Transaction(self.group, offsets=offsets, records=outputs, consumer=self._consumer)
        self.broker.commit_transaction(txn)
        self._failures = 0
        self.stats.decisions += len(records)
        self.stats.batches += 1
        self.stats.outputs += len(outputs)
        return len(records)

    def _decode(self, records: list[Record]) -> tuple[list[Delivery], list[OutRecord]]:
        batch, dead = [], []
        for record in records:
            try:
                batch.append(delivery_of(record))
            except (msgspec.DecodeError, ValueError) as error:
                self.stats.undecodable += 1
                if self.dead_letter_topic is None:
                    log.warning("skipping undecodable decision at %s: %s", record.tp, error)
                    continue
                headers = (("error", f"not a JSON decision: {error}".encode()),)
                dead.append(
                    OutRecord(self.dead_letter_topic, record.value, record.key, headers=headers)
                )
        return batch, dead

    def _pause(self, records: list[Record], sink: str, error: Exception) -> None:
        self._failures += 1
        self.stats.sink_failures[sink] = self.stats.sink_failures.get(sink, 0) + 1
        if isinstance(error, FatalError) and not error.retryable:
            raise error
        first: dict[TopicPartition, int] = {}
        for record in records:
            first.setdefault(record.tp, record.offset)
        for tp, offset in first.items():
            self._consumer.seek(tp, offset)
        wait = self.backoff.delay(self._failures)
        log.warning("sink %s failed (%s); retrying the batch in %.2f s", sink, error, wait)
        self._stop.wait(wait)

    def _caught_up(self) -> bool:
        info = self.broker.describe_topic(self.topic)
        highs = {p.partition: p.high for p in info.partitions}
        return all(self._consumer.position(tp) >= highs[tp.partition] for tp in self._partitions)

    def close(self) -> None:
        self._consumer.close()
        for sink in self.sinks:
            sink.close()
