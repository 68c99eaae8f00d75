from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class DecideRequest(_message.Message):
    __slots__ = ("stream", "event")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    event: bytes
    def __init__(self, stream: _Optional[str] = ..., event: _Optional[bytes] = ...) -> None: ...

class DecideReply(_message.Message):
    __slots__ = ("event_id", "score", "action", "tier", "model_version", "degraded", "degraded_reasons", "latency_ms", "latency_breakdown_ms", "features", "confidence")
    class LatencyBreakdownMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASONS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BREAKDOWN_MS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    score: float
    action: str
    tier: str
    model_version: str
    degraded: bool
    degraded_reasons: _containers.RepeatedScalarFieldContainer[str]
    latency_ms: float
    latency_breakdown_ms: _containers.ScalarMap[str, float]
    features: _containers.ScalarMap[str, float]
    confidence: float
    def __init__(self, event_id: _Optional[str] = ..., score: _Optional[float] = ..., action: _Optional[str] = ..., tier: _Optional[str] = ..., model_version: _Optional[str] = ..., degraded: _Optional[bool] = ..., degraded_reasons: _Optional[_Iterable[str]] = ..., latency_ms: _Optional[float] = ..., latency_breakdown_ms: _Optional[_Mapping[str, float]] = ..., features: _Optional[_Mapping[str, float]] = ..., confidence: _Optional[float] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("stream", "events")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    events: bytes
    def __init__(self, stream: _Optional[str] = ..., events: _Optional[bytes] = ...) -> None: ...

class IngestReply(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...
