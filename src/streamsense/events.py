"""Events, declared schemas, and the validation that turns bad input into dead letters.

A Stream names a topic and declares its payload schema (a msgspec Struct), which field is
the entity key and which is the event time. Decoding a record either yields an Event or
raises InvalidEvent with a reason the dead-letter topic records next to the original bytes.
"""

from __future__ import annotations

import math
import operator
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Generic, TypeVar, dataclass_transform

import msgspec

from streamsense.brokers.base import (
    RECORD_LIMIT_BYTES,
    Headers,
    OutRecord,
    Record,
    TopicConfig,
    record_size,
)
from streamsense.errors import ConfigError, InvalidEvent


# msgspec passes ``frozen`` on to subclasses, but its stubs declare Struct's dataclass
# transform without that default: this tells type checkers that every schema is frozen, as it
# is at run time, so ``class Payment(ss.Schema)`` needs no ``frozen=True`` of its own.
@dataclass_transform(frozen_default=True, field_specifiers=(msgspec.field,))
class Schema(msgspec.Struct, frozen=True):
    """Base class for event payload schemas. Fields are typed; unknown fields are ignored."""


S = TypeVar("S", bound=Schema)

DAY_MS = 86_400_000
_FIELD_IN_ERROR = re.compile(r"at `\$\.(\w+)|required field `(\w+)`")


class Event(msgspec.Struct, Generic[S], frozen=True, gc=False):
    """One validated event with the broker coordinates it was read from."""

    key: str
    event_time: int  # UTC epoch milliseconds
    payload: S
    topic: str
    partition: int
    offset: int
    ingest_time: int
    headers: Headers = ()

    @property
    def id(self) -> str:
        """Unique and stable: the source coordinates."""
        return f"{self.topic}/{self.partition}/{self.offset}"


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def to_epoch_ms(value: object) -> int:
    """Event-time field value → UTC epoch ms. Naive datetimes are taken as UTC."""
    if isinstance(value, datetime):
        # Exact integer arithmetic (no float seconds), and cheap on the hot path.
        epoch = _EPOCH if value.tzinfo is None else _EPOCH_UTC
        return (value - epoch) // _MILLISECOND
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(f"event time must be a datetime or epoch milliseconds, not {type(value)}")


# msgspec decodes an integer of any size; Arrow, numpy and the feature kernels hold 64 bits.
_INT64 = (-(2**63), 2**63 - 1)


def _number_fields(schema: type[Schema], kind: type) -> tuple[tuple[str, str], ...]:
    """(name, name on the wire) of the fields that can hold a ``kind``: floats need an
    explicit NaN/infinity check, integers one of their size (issue #21)."""
    names = []
    for info in msgspec.structs.fields(schema):
        union = isinstance(info.type, types.UnionType)
        kinds = typing.get_args(info.type) if union else (info.type,)
        if kind in kinds:
            names.append((info.name, info.encode_name))
    return tuple(names)


def _getter(*names: str) -> Callable[[Any], tuple[Any, ...]]:
    """The named attributes of an object as a tuple (attrgetter's own, in C, for two or
    more; it returns a lone value bare)."""
    if len(names) < 2:
        return lambda item: tuple(getattr(item, name) for name in names)
    return operator.attrgetter(*names)


@dataclass(frozen=True)
class Stream(Generic[S]):
    """A topic of events with a declared schema.

    ``key`` and ``time`` name schema fields. Records larger than ``max_bytes`` or whose event
    time is more than ``max_future_ms`` after their ingest time are invalid.

    ``priority`` (optional) picks the events of the high-priority lane: they are produced
    to ``<name>.priority``, a topic partitioned like the stream (a key lands on the same
    partition number, so it meets the same keyed state), which workers read before the
    backlog of the base topic (runtime/intake.py). Records written straight to the base
    topic by producers outside streamsense are in the normal lane.

    ``upstream_partitions`` (optional) declares the stream as the target of a repartition
    from a stream with that many partitions (runtime/repartition.py): it lives in one topic
    per upstream partition, ``<name>.from.<u>``, read in event-time order.
    """

    name: str
    schema: type[S]
    key: str
    time: str
    partitions: int = 4
    max_bytes: int = 64 * 1024
    max_future_ms: int = DAY_MS
    retention_ms: int | None = None
    priority: Callable[[S], bool] | None = field(default=None, compare=False)
    upstream_partitions: int = 0
    _decoder: msgspec.json.Decoder[S] = field(init=False, repr=False, compare=False)
    _floats: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _ints: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _int_values: Callable[[Any], tuple[Any, ...]] = field(init=False, repr=False, compare=False)
    _batch_decoder: msgspec.json.Decoder[list[S]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {f.name for f in msgspec.structs.fields(self.schema)}
        for role, name in (("key", self.key), ("time", self.time)):
            if name not in names:
                raise ConfigError(
                    f"stream {self.name!r}: {role} field {name!r} is not in the schema"
                )
        if self.upstream_partitions and self.priority is not None:
            raise ConfigError(
                f"stream {self.name!r}: a repartition target cannot have a priority lane"
            )
        object.__setattr__(self, "_decoder", msgspec.json.Decoder(self.schema))
        object.__setattr__(self, "_batch_decoder", msgspec.json.Decoder(list[self.schema]))  # type: ignore[name-defined]
        object.__setattr__(self, "_floats", _number_fields(self.schema, float))
        ints = _number_fields(self.schema, int)
        object.__setattr__(self, "_ints", ints)
        object.__setattr__(self, "_int_values", _getter(*(name for name, _ in ints)))

    @property
    def topic(self) -> str:
        return self.name

    def encoded_name(self, field: str) -> str:
        """The field's name on the wire (schemas may rename fields)."""
        for info in msgspec.structs.fields(self.schema):
            if info.name == field:
                return info.encode_name
        raise ConfigError(f"stream {self.name!r} has no field {field!r}")

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.name}.dead-letters"

    @property
    def priority_topic(self) -> str:
        return f"{self.name}.priority"

    @property
    def lane_topics(self) -> tuple[str, ...]:
        """The topics the stream's events live in: the base topic, and the priority lane
        when the stream has a priority function."""
        if self.upstream_partitions:
            return tuple(f"{self.topic}.from.{u}" for u in range(self.upstream_partitions))
        return (self.topic,) if self.priority is None else (self.topic, self.priority_topic)

    def topic_for(self, payload: S) -> str:
        """The lane topic ``payload`` is produced to."""
        if self.upstream_partitions:
            raise ConfigError(
                f"stream {self.name!r} is written by its repartition (runtime/repartition.py)"
            )
        if self.priority is not None and self.priority(payload):
            return self.priority_topic
        return self.topic

    def topic_configs(self) -> dict[str, TopicConfig]:
        lanes = {
            t: TopicConfig(self.partitions, retention_ms=self.retention_ms)
            for t in self.lane_topics
        }
        return {**lanes, self.dead_letter_topic: TopicConfig(1)}

    # -- producing ----------------------------------------------------------------------------
    def key_of(self, payload: S) -> str:
        return str(getattr(payload, self.key))

    def event_time_of(self, payload: S) -> int:
        return to_epoch_ms(getattr(payload, self.time))

    def to_record(self, payload: S, *, timestamp: int | None = None) -> OutRecord:
        """The record to produce for ``payload``: JSON value, key bytes as Kafka sees them,
        in the payload's lane topic."""
        value = msgspec.json.encode(payload)
        topic = self.topic_for(payload)
        return OutRecord(topic, value, self.key_of(payload).encode(), timestamp=timestamp)

    def parse(self, data: bytes | str | dict[str, Any]) -> S:
        """Validate one payload given as JSON or a dict (the API path); raises InvalidEvent."""
        try:
            if isinstance(data, dict):
                payload = msgspec.convert(data, self.schema)
            else:
                payload = self._decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            match = _FIELD_IN_ERROR.search(str(error))
            bad_field = (match.group(1) or match.group(2)) if match else None
            raise InvalidEvent(str(error), field=bad_field) from None
        self._check_finite(payload)
        return payload

    def _check_finite(self, payload: S, ints: bool = True) -> None:
        """NaN and infinities, and (unless ``ints`` is False: ``_ints_fit`` said so for its
        whole batch) integers past 64 bits, are refused, named as on the wire like
        msgspec's own errors."""
        for name, wire in self._floats:
            value = getattr(payload, name)
            if value is not None and not math.isfinite(value):
                raise InvalidEvent(f"{value} is not a finite number", field=wire)
        if not ints:
            return
        low, high = _INT64
        for name, wire in self._ints:
            value = getattr(payload, name)
            if isinstance(value, int) and not low <= value <= high:
                raise InvalidEvent(f"{value} is outside the 64-bit integer range", field=wire)

    def _ints_fit(self, payloads: Sequence[S]) -> bool:
        """Whether every integer field of every payload holds in 64 bits: one min and one
        max over the batch's integers, in C (checked event by event, a third of decoding's
        time went to it)."""
        if not self._ints:
            return True
        try:
            flat = [value for values in map(self._int_values, payloads) for value in values]
            return not flat or (_INT64[0] <= min(flat) and max(flat) <= _INT64[1])
        except TypeError:  # an optional field is None: checked event by event
            return False

    # -- consuming ----------------------------------------------------------------------------
    def decode(self, record: Record) -> Event[S]:
        """The Event in ``record``, or InvalidEvent (with the record's coordinates)."""
        try:
            value = record.value
            if value is None:
                raise InvalidEvent("empty record")
            if len(value) > self.max_bytes:
                raise InvalidEvent(f"payload of {len(value)} bytes exceeds {self.max_bytes}")
            return self._event(record, self.parse(value))
        except InvalidEvent as error:
            error.topic, error.partition, error.offset = (
                record.topic,
                record.partition,
                record.offset,
            )
            raise

    def decode_batch(self, records: Sequence[Record]) -> list[Event[S] | InvalidEvent]:
        """``decode`` for many records at once: one JSON parse for the whole batch when it
        is all valid (the common case), record by record when anything is wrong, so each
        bad record still gets its own reason."""
        values = [r.value for r in records]
        if not records or any(v is None or len(v) > self.max_bytes for v in values):
            return [self._decode_or_error(r) for r in records]
        try:
            payloads = self._batch_decoder.decode(b"[" + b",".join(values) + b"]")  # type: ignore[arg-type]
        except (msgspec.ValidationError, msgspec.DecodeError):
            return [self._decode_or_error(r) for r in records]
        if self._all_finite(payloads) and self._ints_fit(payloads):
            return self._events(records, payloads)
        pairs = zip(records, payloads, strict=True)
        return [self._checked(record, payload) for record, payload in pairs]

    def _all_finite(self, payloads: list[S]) -> bool:
        """Every float of the batch is finite (False also when one is None: the record by
        record check tells those apart). C-level loops: the hot path's common case."""
        try:
            columns = (map(attrgetter(name), payloads) for name, _ in self._floats)
            return all(all(map(math.isfinite, column)) for column in columns)
        except TypeError:
            return False

    def _events(
        self, records: Sequence[Record], payloads: list[S]
    ) -> list[Event[S] | InvalidEvent]:
        """``_event`` of every record whose numbers are known valid, in one loop with the
        lookups hoisted (a function call less per record); any other case as ``_checked``."""
        time_of, key_of, limit = attrgetter(self.time), attrgetter(self.key), self.max_future_ms
        out: list[Event[S] | InvalidEvent] = []
        for record, payload in zip(records, payloads, strict=True):
            moment, key = time_of(payload), key_of(payload)
            event_time = moment if type(moment) is int else to_epoch_ms(moment)
            if event_time > record.timestamp + limit:
                out.append(self._checked(record, payload))
                continue
            out.append(
                Event(
                    key if type(key) is str else str(key),
                    event_time,
                    payload,
                    record.topic,
                    record.partition,
                    record.offset,
                    record.timestamp,
                    record.headers,
                )
            )
        return out

    def _checked(self, record: Record, payload: S) -> Event[S] | InvalidEvent:
        try:
            self._check_finite(payload)
            return self._event(record, payload)
        except InvalidEvent as error:
            error.topic, error.partition, error.offset = (
                record.topic,
                record.partition,
                record.offset,
            )
            return error

    def _decode_or_error(self, record: Record) -> Event[S] | InvalidEvent:
        try:
            return self.decode(record)
        except InvalidEvent as error:
            return error

    def _event(self, record: Record, payload: S) -> Event[S]:
        event_time = to_epoch_ms(getattr(payload, self.time))
        if event_time > record.timestamp + self.max_future_ms:
            raise InvalidEvent(
                f"event time {event_time} is more than {self.max_future_ms} ms after "
                f"ingest time {record.timestamp}",
                field=self.time,
            )
        return Event(
            self.key_of(payload),
            event_time,
            payload,
            record.topic,
            record.partition,
            record.offset,
            record.timestamp,
            record.headers,
        )

    def dead_letter(self, record: Record, error: InvalidEvent) -> OutRecord:
        """The dead-letter record for ``record``: its original bytes plus why it failed."""
        headers: Headers = (
            ("reason", error.reason.encode()),
            ("field", (error.field or "").encode()),
            ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        )
        letter = OutRecord(
            self.dead_letter_topic,
            record.value,
            record.key,
            partition=0,
            timestamp=record.timestamp,
            headers=headers + record.headers,
        )
        return fit_to_limit(letter)

    def oversized_letter(self, record: OutRecord, what: str, size: int) -> OutRecord:
        """The dead letter for ``record``, whose ``what`` is ``size`` bytes: too large for
        the broker."""
        reason = f"{what} of {size} bytes exceeds the {RECORD_LIMIT_BYTES}-byte record limit"
        headers: Headers = (("reason", reason.encode()), ("field", b""))
        letter = OutRecord(
            self.dead_letter_topic, record.value, record.key, 0, record.timestamp, headers
        )
        return fit_to_limit(letter)


def fit_to_limit(letter: OutRecord) -> OutRecord:
    """A dead letter cut to the broker's record limit: the original bytes are kept up to
    it, and a ``truncated-from`` header gives their full length."""
    size = record_size(letter)
    if size <= RECORD_LIMIT_BYTES:
        return letter
    value = letter.value or b""
    keep = max(0, len(value) - (size - RECORD_LIMIT_BYTES) - 64)
    headers = (*letter.headers, ("truncated-from", str(len(value)).encode()))
    return letter._replace(value=value[:keep], headers=headers)
