"""How a streamsense record travels as a Pulsar message.

Pulsar's keys and properties are strings and a message has no headers, so: the key goes as
the partition key, its bytes carried one to one as latin-1 characters; the timestamp is the
message's event time; headers (names may repeat, order matters) are one JSON property;
a missing value or the empty key are marked by properties, since Pulsar cannot tell them
from an empty payload or no key."""

from __future__ import annotations

import base64
import json
from typing import Any

from streamsense.brokers.base import Headers, Record

_HEADERS = "streamsense.h"
_NULL_VALUE = "streamsense.null"
_EMPTY_KEY = "streamsense.ek"


def message_fields(
    value: bytes | None, key: bytes | None, timestamp: int, headers: Headers
) -> dict[str, Any]:
    """Keyword arguments for the Pulsar producer's ``send_async`` (besides the payload)."""
    properties: dict[str, str] = {}
    if headers:
        encoded = [[name, base64.b64encode(data).decode()] for name, data in headers]
        properties[_HEADERS] = json.dumps(encoded)
    if value is None:
        properties[_NULL_VALUE] = "1"
    fields: dict[str, Any] = {"event_timestamp": timestamp, "properties": properties}
    if key:
        fields["partition_key"] = key.decode("latin-1")
    elif key is not None:
        properties[_EMPTY_KEY] = "1"
    return fields


def to_record(message: Any, topic: str, partition: int, offset: int) -> Record:
    """A received Pulsar message as the Record at ``offset``."""
    properties: dict[str, str] = message.properties()
    text_key: str = message.partition_key()
    key = text_key.encode("latin-1") if text_key else (b"" if _EMPTY_KEY in properties else None)
    headers: Headers = ()
    if _HEADERS in properties:
        pairs = json.loads(properties[_HEADERS])
        headers = tuple((str(name), base64.b64decode(data)) for name, data in pairs)
    value = None if _NULL_VALUE in properties else bytes(message.data())
    timestamp = message.event_timestamp() or message.publish_timestamp()
    return Record(topic, partition, offset, timestamp, key, value, headers)
