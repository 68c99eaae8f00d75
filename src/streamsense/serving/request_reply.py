"""Request/reply over the broker: publish an event and wait for its decision (the card
authorisation path), with a timeout and a fallback decision when the pipeline is late.

Caller side:

    client = RequestReply(broker, payments, "payments.decisions", timeout=0.2)
    decision = client.request(payload)           # or: await client.arequest(payload)
    if decision.degraded and "timeout" in decision.degraded_reasons: ...

Pipeline side: the decision must name the request. ``request`` gives the event an
``event-id`` header; a flow ending in ``ReplySink(topic)`` writes each decision with that
id (``request_id(event)``; events published otherwise get their coordinates), and the
caller's listener matches replies by it:

    app.flow(transactions).batch(features).stage("decide", decide).sink(ReplySink(topic))

A listener thread reads the decisions topic from its end (as of when the client started)
and hands each decision to the caller waiting for its id. A decision arriving after its
caller gave up is dropped and counted (``late``); the pipeline still recorded it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from streamsense.brokers.base import Broker, Headers, OutRecord, TopicConfig, TopicPartition
from streamsense.events import Event, Stream
from streamsense.runtime.app import source_headers
from streamsense.serving.decision import Action, DecisionRecord
from streamsense.serving.headers import EVENT_ID_HEADER

__all__ = ["EVENT_ID_HEADER", "Fallback", "ReplySink", "RequestReply", "request_id"]

log = logging.getLogger(__name__)

# (event id, key, payload) -> the decision to answer with when the pipeline is late.
Fallback = Callable[[str, str, Any], DecisionRecord]
_encode = msgspec.json.Encoder().encode


def request_id(event: Event[Any]) -> str:
    """The id a caller gave the event (its ``event-id`` header), else its coordinates."""
    for name, value in event.headers:
        if name == EVENT_ID_HEADER:
            return value.decode()
    return event.id


@dataclass(frozen=True)
class ReplySink:
    """Writes each decision as JSON to ``topic`` with the ``event-id`` of the request it
    answers (and the usual ``source`` header), keyed and partitioned like the event."""

    topic: str

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {self.topic: TopicConfig(partitions)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        # Stamped when written, like TopicSink's outputs (retention counts from then).
        return [
            OutRecord(self.topic, _encode(value), event.key.encode(), headers=_headers(event))
            for event, value in zip(events, values, strict=True)
        ]


def _headers(event: Event[Any]) -> Headers:
    return (*source_headers(event), (EVENT_ID_HEADER, request_id(event).encode()))


def fallback_action(action: Action = "review") -> Fallback:
    """A fallback that answers ``action`` for every late decision."""

    def decide(event_id: str, key: str, payload: Any) -> DecisionRecord:
        score = {"allow": 0.0, "review": 0.5, "block": 1.0}[action]
        return DecisionRecord(
            event_id=event_id, key=key, score=score, action=action, tier="fallback"
        )

    return decide


@dataclass
class RequestStats:
    replies: int = 0
    timeouts: int = 0
    late: int = 0  # decisions that arrived after their caller gave up
    undecodable: int = 0
    latency_ms: list[float] = field(default_factory=list)  # of answered requests (last 10k)


class _Waiter:
    __slots__ = ("done", "future", "loop", "result")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.done = threading.Event()
        self.result: DecisionRecord | None = None
        self.loop = loop
        self.future: asyncio.Future[DecisionRecord] | None = (
            loop.create_future() if loop is not None else None
        )

    def resolve(self, decision: DecisionRecord) -> None:
        self.result = decision
        self.done.set()
        if self.loop is not None and self.future is not None:
            self.loop.call_soon_threadsafe(_set_result, self.future, decision)


def _set_result(future: asyncio.Future[DecisionRecord], decision: DecisionRecord) -> None:
    if not future.done():
        future.set_result(decision)


class RequestReply:
    """Publishes events of ``stream`` and waits for their decisions on ``decisions_topic``.

    Thread-safe; one listener thread per client. ``decode`` turns a decision record's
    bytes into a ``DecisionRecord`` (the default reads the record's own JSON)."""

    def __init__(
        self,
        broker: Broker,
        stream: Stream[Any],
        decisions_topic: str,
        *,
        timeout: float = 0.5,
        fallback: Fallback | None = None,
        decode: Callable[[bytes], DecisionRecord] | None = None,
    ) -> None:
        self.broker = broker
        self.stream = stream
        self.decisions_topic = decisions_topic
        self.timeout = timeout
        self.fallback = fallback or fallback_action("review")
        self.decode = decode or msgspec.json.Decoder(DecisionRecord).decode
        self.stats = RequestStats()
        self._producer = broker.producer(linger_ms=0)
        self._waiters: dict[str, _Waiter] = {}
        self._gave_up: OrderedDict[str, None] = OrderedDict()  # recent timeouts, to count late
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._consumer = broker.consumer()
        info = broker.describe_topic(decisions_topic)
        partitions = [TopicPartition(decisions_topic, p.partition) for p in info.partitions]
        self._consumer.assign(partitions)
        for p in info.partitions:  # only decisions made from now on
            self._consumer.seek(TopicPartition(decisions_topic, p.partition), p.high)
        self._listener = threading.Thread(target=self._listen, daemon=True, name="replies")
        self._listener.start()

    def request(self, payload: Any, *, timeout: float | None = None) -> DecisionRecord:
        """Publish ``payload`` (a schema instance or a dict) and wait for its decision."""
        event_id, key, waiter = self._publish(payload, None)
        started = time.perf_counter()
        answered = waiter.done.wait(self.timeout if timeout is None else timeout)
        return self._finish(event_id, key, payload, waiter if answered else None, started)

    async def arequest(self, payload: Any, *, timeout: float | None = None) -> DecisionRecord:
        """``request`` for asyncio callers: waits without blocking the event loop."""
        event_id, key, waiter = self._publish(payload, asyncio.get_running_loop())
        started = time.perf_counter()
        assert waiter.future is not None
        try:
            await asyncio.wait_for(waiter.future, self.timeout if timeout is None else timeout)
        except TimeoutError:
            return self._finish(event_id, key, payload, None, started)
        return self._finish(event_id, key, payload, waiter, started)

    def _publish(
        self, payload: Any, loop: asyncio.AbstractEventLoop | None
    ) -> tuple[str, str, _Waiter]:
        if isinstance(payload, dict):
            payload = self.stream.parse(payload)
        event_id = f"rr/{uuid.uuid4().hex}"
        waiter = _Waiter(loop)
        with self._lock:
            self._waiters[event_id] = waiter  # before sending: the reply may be quick
        out = self.stream.to_record(payload)
        self._producer.send(
            out.topic, out.value, out.key, headers=((EVENT_ID_HEADER, event_id.encode()),)
        )
        self._producer.flush()
        return event_id, self.stream.key_of(payload), waiter

    def _finish(
        self, event_id: str, key: str, payload: Any, waiter: _Waiter | None, started: float
    ) -> DecisionRecord:
        with self._lock:
            self._waiters.pop(event_id, None)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if waiter is not None and waiter.result is not None:
            self.stats.replies += 1
            self.stats.latency_ms.append(elapsed_ms)
            del self.stats.latency_ms[:-10_000]
            return waiter.result
        self.stats.timeouts += 1
        with self._lock:
            self._gave_up[event_id] = None
            if len(self._gave_up) > 10_000:
                self._gave_up.popitem(last=False)
        decision = self.fallback(event_id, key, payload)
        decision.mark_degraded("timeout")
        decision.latency_ms["total"] = elapsed_ms
        return decision

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                records = self._consumer.poll(1000, timeout=0.05)
            except Exception:  # keep answering once the broker is back
                log.exception("reading %s failed", self.decisions_topic)
                self._closed.wait(0.5)
                continue
            for record in records:
                event_id = dict(record.headers).get(EVENT_ID_HEADER)
                if event_id is None:
                    continue
                wanted = event_id.decode()
                with self._lock:
                    waiter = self._waiters.pop(wanted, None)
                    if waiter is None and wanted in self._gave_up:
                        del self._gave_up[wanted]
                        self.stats.late += 1
                if waiter is None:
                    continue
                try:
                    waiter.resolve(self.decode(record.value or b""))
                except (msgspec.DecodeError, msgspec.ValidationError):
                    self.stats.undecodable += 1
                    log.warning("undecodable decision for %s", wanted)

    def close(self) -> None:
        self._closed.set()
        self._listener.join(timeout=5)
        self._consumer.close()
        self._producer.close()

    def __enter__(self) -> RequestReply:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
