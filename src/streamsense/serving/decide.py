"""The decide and ingest logic behind every API (HTTP and gRPC), so they cannot drift apart.

    record = decide_event(serving, producer, "transactions", body)   # bytes: one JSON object
    reply = encode_reply(record)                                        # the JSON answer
    accepted = ingest_events(serving, producer, "transactions", body)   # object or list

``decide_event`` parses the event (the stream's field names, ISO 8601 or epoch-ms times),
reads its features from the online store with the event counted in its own windows, runs
the cascade, publishes the event (marked as decided by the API, with its event id) and the
decision record, and returns the record. The read goes through the stream's ``FeatureGuard``
(serving/feature_fallback.py): with the store slow or down the cascade decides on the key's
last known features, with a staleness penalty, or, with none, the configured default
decides; either way the record is marked degraded and says why. Bad input raises
``RequestError`` with an HTTP status and the name of the bad field; the gRPC service maps the
status to its own codes.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import msgspec

from streamsense.brokers.base import Producer
from streamsense.errors import FatalError, InvalidEvent
from streamsense.events import Stream, to_epoch_ms
from streamsense.serving.decision import Action, DecisionRecord, Tier
from streamsense.serving.headers import DECIDED_BY_API, EVENT_ID_HEADER
from streamsense.serving.served import Serving

__all__ = [
    "DecideReply",
    "RequestError",
    "decide_event",
    "encode_reply",
    "ingest_events",
    "reply_of",
]

# Event ids: one random prefix per process and a counter, unique across processes and
# restarts without a uuid4 per request (an os.urandom system call each: 4 % of a served
# process's time at 1,000 requests/s in a py-spy profile).
_PROCESS_ID = uuid.uuid4().hex[:16]
_next_number = itertools.count(1).__next__

_json = msgspec.json.Encoder()


class RequestError(FatalError):
    """A request the API refuses: ``status`` is the HTTP status (404, 413, 422, ...) and
    ``field`` names the bad field when there is one."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


class DecideReply(msgspec.Struct, omit_defaults=False):
    """What ``POST /v1/decide/{stream}`` answers (and gRPC ``Decide``, field for field)."""

    event_id: str
    score: float
    action: Action
    tier: Tier
    model_version: str | None
    degraded: bool
    degraded_reasons: list[str]
    latency_ms: float
    latency_breakdown_ms: dict[str, float]
    features: dict[str, float | int]
    confidence: float


def decide_event(
    serving: Serving,
    producer: Producer,
    stream_name: str,
    body: bytes,
    *,
    id_prefix: str = "api",
) -> DecisionRecord:
    """Decide one event (``body``: one JSON object) and publish it and its decision."""
    started = time.perf_counter()
    cascade = serving.cascade
    if cascade is None:
        raise RequestError(404, f"{serving.name} serves no decisions")
    stream = _stream(serving, stream_name)
    _check_size(serving, body)
    try:
        payload = _one_payload(stream, body)
        event_time = _checked_time(serving, stream, payload)
    except InvalidEvent as error:
        raise RequestError(422, error.reason, error.field or "body") from None
    key = stream.key_of(payload)
    event_id = f"{id_prefix}/{_PROCESS_ID}-{_next_number()}"
    feature_started = time.perf_counter()
    guard = serving.feature_guards[stream_name]
    read = guard.read(key, payload, event_time)
    features_ms = (time.perf_counter() - feature_started) * 1000
    if read.row is None:
        record = guard.default_record(event_id, key, read)
    else:
        features = dict(zip(guard.online.features.names, read.row.tolist(), strict=True))
        values = {**msgspec.structs.asdict(payload), **features}
        record = cascade.decide(event_id, key, values, feature_age_ms=read.age_ms)
        record.features = features
        guard.apply(record, read)
    record.latency_ms["features"] = features_ms
    out = stream.to_record(payload)
    headers = (DECIDED_BY_API, (EVENT_ID_HEADER, event_id.encode()))
    producer.send(out.topic, out.value, out.key, headers=headers)
    producer.send(serving.decisions_topic, _json.encode(record), key.encode(), headers=headers)
    record.latency_ms["total"] = (time.perf_counter() - started) * 1000
    return record


def reply_of(record: DecisionRecord) -> DecideReply:
    return DecideReply(
        event_id=record.event_id,
        score=record.score,
        action=record.action,
        tier=record.tier,
        model_version=record.model_version,
        degraded=record.degraded,
        degraded_reasons=record.degraded_reasons,
        latency_ms=record.latency_ms.get("total", 0.0),
        latency_breakdown_ms=record.latency_ms,
        features=record.features,
        confidence=record.confidence,
    )


def encode_reply(record: DecisionRecord) -> bytes:
    return _json.encode(reply_of(record))


def ingest_events(serving: Serving, producer: Producer, stream_name: str, body: bytes) -> int:
    """Publish one event (a JSON object) or a batch (a list), all or none: a bad event
    refuses the batch, naming it (``[3].amount``). Returns how many were accepted."""
    stream = _stream(serving, stream_name)
    _check_size(serving, body)
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise RequestError(400, f"body is not JSON: {error}", "body") from None
    items = data if isinstance(data, list) else [data]
    payloads = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidEvent("each event must be a JSON object")
            payload = stream.parse(item)
            _checked_time(serving, stream, payload)
            payloads.append(payload)
        except InvalidEvent as error:
            where = f"[{index}].{error.field}" if error.field else f"[{index}]"
            raise RequestError(
                422, error.reason, where if isinstance(data, list) else error.field or "body"
            ) from None
    for payload in payloads:
        out = stream.to_record(payload)
        producer.send(out.topic, out.value, out.key)
    return len(payloads)


def _stream(serving: Serving, name: str) -> Stream[Any]:
    stream = serving.streams.get(name)
    if stream is None:
        raise RequestError(
            404, f"no stream {name!r} (there are {sorted(serving.streams)})", "stream"
        )
    return stream


def _checked_time(serving: Serving, stream: Stream[Any], payload: Any) -> int:
    """The event's time, refused as the worker would refuse it (a dead letter there): more
    than the stream's ``max_future_ms`` ahead of the serving clock."""
    event_time = to_epoch_ms(getattr(payload, stream.time))
    now = serving.clock.now_ms()
    if event_time > now + stream.max_future_ms:
        raise InvalidEvent(
            f"event time {event_time} is more than {stream.max_future_ms} ms after now ({now})",
            field=stream.encoded_name(stream.time),
        )
    return event_time


def _check_size(serving: Serving, body: bytes) -> None:
    if len(body) > serving.max_body_bytes:
        raise RequestError(413, f"request body over {serving.max_body_bytes} bytes", "body")


def _one_payload(stream: Stream[Any], body: bytes) -> Any:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise InvalidEvent(f"body is not JSON: {error}", field="body") from None
    if not isinstance(data, dict):
        raise InvalidEvent("body must be one JSON object", field="body")
    return stream.parse(data)
