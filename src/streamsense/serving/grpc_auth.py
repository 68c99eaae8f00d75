"""The API key on gRPC calls: one check for the decision service and the apps' endpoints
service (the metadata ``authorization: Bearer <key>``, the HTTP API's key)."""

from __future__ import annotations

import secrets
from typing import Any

import grpc
import grpc.aio

from streamsense.serving.served import Serving


async def authorise(serving: Serving, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    if serving.api_key is None:
        return
    header = ""
    for name, value in context.invocation_metadata() or ():
        if name == "authorization":
            header = value if isinstance(value, str) else value.decode()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), serving.api_key):
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "missing or wrong API key (metadata authorization: Bearer <key>)",
            trailing_metadata=(("field", "authorization"),),
        )
