"""Routes an app serves besides decisions (issue #16): what ``Serving.endpoints`` holds.

An app whose answers are not decisions (a recommender's lists, say) offers its own HTTP
routes through the same contract as every other app, so ``streamsense serve APP`` serves
it with the platform's API key, size limit, metrics, health and lifecycle. A handler sees a
``Call`` (path parameters, query, body) and returns a ``Reply`` (status, JSON bytes): no
web framework in the app, and none here, so a pipeline that names its endpoints imports
neither FastAPI nor grpc.

    Endpoint("GET", "/v1/recommend/{user}", recommend)          # on the event loop
    Endpoint("POST", "/v1/events/interactions", post, blocking=True)   # a worker thread

A handler runs on the event loop (CPU work well under a millisecond: a hop to a thread
costs more than it) unless marked ``blocking`` (it waits on I/O, such as the broker).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

__all__ = ["Call", "Endpoint", "EndpointTable", "Reply"]

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it."""

    params: Mapping[str, str]  # path parameters by name: {"user": "42"}
    query: Mapping[str, str] = field(default_factory=dict)  # the last value of each name
    body: bytes = b""


@dataclass(frozen=True)
class Reply:
    """A handler's answer: a status and a JSON body."""

    status: int
    body: bytes

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Reply:
        """``value`` encoded with msgspec (dicts, lists, Structs, dataclasses)."""
        return cls(status, _encode(value))

    @classmethod
    def error(cls, status: int, message: str, field_name: str | None = None) -> Reply:
        """The platform's error shape: ``{"error": ..., "field": ...}``."""
        return cls.json({"error": message, **({"field": field_name} if field_name else {})}, status)


@dataclass(frozen=True)
class Endpoint:
    """``method path`` answered by ``handler``; ``{name}`` in the path is a parameter
    (one path segment)."""

    method: Literal["GET", "POST"]
    path: str
    handler: Callable[[Call], Reply]
    blocking: bool = False  # True: run in a worker thread (it waits on I/O)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        re.escape(part) if n % 2 == 0 else f"(?P<{part}>[^/]+)" for n, part in enumerate(parts)
    )
    return re.compile(regex)


class EndpointTable:
    """Finds the endpoint a request is for; its template labels the request's metrics."""

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self._entries = [(_pattern(e.path), e) for e in endpoints]

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def templates(self) -> list[str]:
        return [e.path for _, e in self._entries]

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        """The endpoint for ``method path`` and its path parameters, else None."""
        for pattern, endpoint in self._entries:
            if endpoint.method == method:
                found = pattern.fullmatch(path)
                if found is not None:
                    return endpoint, found.groupdict()
        return None

    def template_of(self, path: str) -> str | None:
        """The template ``path`` matches, whatever the method (for metrics)."""
        for pattern, endpoint in self._entries:
            if pattern.fullmatch(path):
                return endpoint.path
        return None
