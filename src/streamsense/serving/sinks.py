"""Action sinks: where decisions are acted on — a topic, a webhook, an alert log, a table.

They are sinks of a flow (``runtime.app.Sink``), run by the worker like any other: put them
after the stage that decides, or on a flow reading the decisions topic, which also sees
the decisions the API made:

    decisions = ss.Stream("payments.decisions", Decision, key="key", time="event_time")
    app.flow(decisions).sink(TopicActionSink("payments.blocked", actions={"block"})).sink(
        WebhookSink("https://ops.example.com/hook", dead_letter_topic="payments.webhook-dead")
    ).sink(AlertLogSink("alerts.jsonl")).sink(SqlTableSink("decisions.db"))

Records (forwarded decisions, dead letters) commit with the offsets. The other effects
happen before the commit, so an event may be acted on again after a crash or a retried
batch; each sink makes that harmless by the decision's event id:

- topic: its records commit atomically with the offsets; each carries ``event-id``;
- webhook (webhook.py): ``Idempotency-Key: <event id>`` on every POST (the receiver
  deduplicates), and ids this process delivered are not posted again;
- alert log: JSON lines; ids already in the file are skipped (the file is read at start);
- SQL table: SQLite, ``INSERT OR IGNORE`` on the event id as primary key.

A failure that may pass (a locked table, a full disk, a webhook down without dead letters)
raises a retryable error: the worker pauses the partition and writes the batch again later.

A decision's event id is the event's ``event-id`` header (decisions made by the API or
asked for by request/reply), else its ``source`` header (a pipeline's decisions: the
source event's coordinates), else the value's own ``event_id``, else the event's
coordinates.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from streamsense.brokers.base import Headers, OutRecord, TopicConfig
from streamsense.errors import ConfigError, RetryableError
from streamsense.events import Event
from streamsense.serving.headers import EVENT_ID_HEADER

__all__ = [
    "AlertLogSink",
    "Delivery",
    "SqlTableSink",
    "TopicActionSink",
    "deliveries",
    "delivery_of",
]


class Delivery(NamedTuple):
    """One decision to act on: the value that reached an action sink, and whose it is."""

    event_id: str
    key: str
    action: str | None
    decision: dict[str, Any]  # the value as JSON data
    body: bytes  # the value as JSON
    ingest_time: int  # when the event acted on was written to its topic (epoch ms)


def delivery_of(event: Event[Any], value: Any) -> Delivery:
    decision = msgspec.to_builtins(value)
    if not isinstance(decision, dict):
        raise ConfigError(f"action sinks act on decisions (JSON objects), got {value!r}")
    headers = dict(event.headers)
    raw_id = headers.get(EVENT_ID_HEADER) or headers.get("source")
    event_id = raw_id.decode() if raw_id is not None else str(decision.get("event_id") or event.id)
    action = decision.get("action")
    return Delivery(
        event_id,
        event.key,
        action if isinstance(action, str) else None,
        decision,
        msgspec.json.encode(decision),
        event.ingest_time,
    )


def deliveries(
    events: Sequence[Event[Any]], values: Sequence[Any], actions: Collection[str] | None
) -> list[Delivery]:
    """The decisions among ``values`` whose action is in ``actions`` (None: all)."""
    chosen = (delivery_of(e, v) for e, v in zip(events, values, strict=True))
    return [d for d in chosen if actions is None or d.action in actions]


def id_headers(delivery: Delivery) -> Headers:
    return ((EVENT_ID_HEADER, delivery.event_id.encode()),)


@dataclass
class TopicActionSink:
    """Forwards the decisions (as JSON, keyed by entity) to ``topic``."""

    topic: str
    actions: Collection[str] | None = None

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {self.topic: TopicConfig(partitions)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        return [
            OutRecord(self.topic, d.body, d.key.encode(), headers=id_headers(d))
            for d in deliveries(events, values, self.actions)
        ]


class AlertLogSink:
    """Appends one JSON line per decision to ``path``: {"event_id", "key", "action",
    "decision"}; by default only review and block."""

    def __init__(
        self,
        path: Path | str,
        *,
        actions: Collection[str] | None = ("review", "block"),
        fsync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.actions = actions
        self.fsync = fsync
        self._seen = self._recover()
        self._file = self.path.open("ab")

    def _recover(self) -> set[str]:
        """Ids already written; a torn last line (a crash mid-write) is cut off: its batch
        was never committed, so it is written again."""
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            with self.path.open("r+b") as file:
                file.truncate(len(complete))
        return {json.loads(line)["event_id"] for line in complete.splitlines() if line.strip()}

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        lines: dict[str, bytes] = {}
        for d in deliveries(events, values, self.actions):
            if d.event_id not in self._seen and d.event_id not in lines:
                entry = {"event_id": d.event_id, "key": d.key, "action": d.action}
                lines[d.event_id] = msgspec.json.encode({**entry, "decision": d.decision})
        if lines:
            self._append(b"\n".join(lines.values()) + b"\n")
            self._seen.update(lines)  # only once written: a failed batch is written again
        return []

    def _append(self, data: bytes) -> None:
        end = self._file.tell()
        try:
            self._file.write(data)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        except OSError as error:  # a full disk: cut what got through, write it all later
            self._file.truncate(end)
            raise RetryableError(f"alert log {self.path}: {error}") from error

    def close(self) -> None:
        self._file.close()


_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SqlTableSink:
    """One row per decision in a SQLite table, keyed by event id (``INSERT OR IGNORE``);
    ``decided_at`` is when the event acted on was written to its topic."""

    def __init__(
        self,
        path: Path | str,
        *,
        table: str = "decisions",
        actions: Collection[str] | None = None,
    ) -> None:
        if not _TABLE.match(table):
            raise ConfigError(f"table name {table!r} is not a plain SQL identifier")
        self.table = table
        self.actions = actions
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (event_id TEXT PRIMARY KEY, key TEXT, "
            "action TEXT, score REAL, tier TEXT, degraded INTEGER, decided_at INTEGER, "
            "decision TEXT NOT NULL)"
        )

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        rows = [
            (
                d.event_id,
                d.key,
                d.action,
                d.decision.get("score"),
                d.decision.get("tier"),
                int(bool(d.decision.get("degraded", False))),
                d.ingest_time,
                d.body.decode(),
            )
            for d in deliveries(events, values, self.actions)
        ]
        try:
            with self._db:  # one transaction per batch
                self._db.executemany(
                    f"INSERT OR IGNORE INTO {self.table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
        except sqlite3.OperationalError as error:  # locked, disk full: written again later
            raise RetryableError(f"{self.table}: {error}") from error
        return []

    def close(self) -> None:
        self._db.close()
