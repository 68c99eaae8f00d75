"""The request bodies in the HTTP API's OpenAPI document (issue #21).

The routes read their bodies as bytes (msgspec, no pydantic on the hot path), so FastAPI
cannot see their shape: this adds it, from the streams' own schemas, so ``/docs`` shows what
to send and a schema-driven fuzzer (tests/e2e/test_api_fuzz.py) generates real events:

- ``POST /v1/decide/{stream}``: one event of any served stream;
- ``POST /v1/events/{stream}``: one event or a list of them;
- ``POST /v1/models/{name}/aliases/{alias}``: ``{"version": N}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
from fastapi import FastAPI

from streamsense.events import Stream

__all__ = ["document_bodies"]

_REF = "#/components/schemas/{name}"
_VERSION_BODY = {
    "type": "object",
    "properties": {"version": {"type": "integer", "minimum": 1}},
    "required": ["version"],
}


def document_bodies(api: FastAPI, streams: dict[str, Stream[Any]], views: list[str]) -> None:
    """Make ``api.openapi()`` describe the request bodies of ``streams``' routes and name
    the streams and views served (``enum`` of the ``stream`` and ``view`` parameters)."""
    generate: Callable[[], dict[str, Any]] = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = _with_bodies(generate(), streams)
            _name_parameters(document, {"stream": sorted(streams), "view": sorted(views)})
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def _with_bodies(document: dict[str, Any], streams: dict[str, Stream[Any]]) -> dict[str, Any]:
    ordered = list(streams.values())
    refs, components = msgspec.json.schema_components(
        [stream.schema for stream in ordered], ref_template=_REF
    )
    for stream, ref in zip(ordered, refs, strict=True):
        _mark_time_format(components, ref, stream)
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    event = {"anyOf": list(refs)} if len(refs) != 1 else refs[0]
    bodies = {
        ("/v1/decide/{stream}", "post"): event,
        ("/v1/events/{stream}", "post"): {"anyOf": [event, {"type": "array", "items": event}]},
        ("/v1/models/{name}/aliases/{alias}", "post"): _VERSION_BODY,
    }
    for (path, method), schema in bodies.items():
        operation = document.get("paths", {}).get(path, {}).get(method)
        if operation is not None:
            content = {"application/json": {"schema": schema}}
            operation["requestBody"] = {"required": True, "content": content}
    return document


def _name_parameters(document: dict[str, Any], names: dict[str, list[str]]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                allowed = names.get(parameter["name"])
                if parameter.get("in") == "path" and allowed:
                    parameter["schema"] = {**parameter["schema"], "enum": allowed}


def _mark_time_format(components: dict[str, Any], ref: dict[str, str], stream: Stream[Any]) -> None:
    """A datetime event time is an ISO 8601 string: say so (msgspec leaves it a string)."""
    for info in msgspec.structs.fields(stream.schema):
        if info.name == stream.time and info.type is dt.datetime:
            schema = components.get(ref["$ref"].rsplit("/", 1)[-1], {})
            prop = schema.get("properties", {}).get(info.encode_name)
            if prop is not None and prop.get("type") == "string":
                prop["format"] = "date-time"
