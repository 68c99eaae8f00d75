"""An app's own endpoints over gRPC (``streamsense.v1.Endpoints``, proto/endpoints.proto):
the handlers ``Serving.endpoints`` names, with the HTTP API's API key and body limit, so an
app whose answers are not decisions is served over both protocols without naming gRPC.

    client = EndpointsClient(channel)
    status, body = await client.call("GET", "/v1/recommend/42", {"k": "20"})

A call runs its handler as HTTP does: on the event loop, or in a worker thread when the
endpoint is ``blocking``. ``start_grpc_server`` (grpc_service.py) adds this service when the
app has endpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
import grpc.aio

from streamsense.errors import RetryableError
from streamsense.serving.endpoints import Call, EndpointTable, Reply
from streamsense.serving.grpc_service import authorise
from streamsense.serving.proto import endpoints_pb2 as pb
from streamsense.serving.served import Serving

__all__ = ["ENDPOINTS_SERVICE", "EndpointsClient", "EndpointsService"]

ENDPOINTS_SERVICE = "streamsense.v1.Endpoints"
CallContext = grpc.aio.ServicerContext[pb.CallRequest, pb.CallReply]


class EndpointsService:
    def __init__(self, serving: Serving) -> None:
        self.serving = serving
        self.table = EndpointTable(serving.endpoints)

    async def call(self, request: pb.CallRequest, context: CallContext) -> pb.CallReply:
        await authorise(self.serving, context)
        found = self.table.match(request.method, request.path)
        if found is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no endpoint {request.method} {request.path}"
            )
        endpoint, params = found  # (abort raised when None)
        if len(request.body) > self.serving.max_body_bytes:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body over {self.serving.max_body_bytes} bytes",
            )
        call = Call(params, dict(request.query), request.body)
        try:
            if endpoint.blocking:
                reply = await asyncio.to_thread(endpoint.handler, call)
            else:
                reply = endpoint.handler(call)
        except RetryableError as error:  # as over HTTP: the app's dependency is down
            reply = Reply.error(503, str(error))
        return pb.CallReply(status=reply.status, body=reply.body)

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            ENDPOINTS_SERVICE,
            {
                "Call": grpc.unary_unary_rpc_method_handler(
                    self.call,
                    request_deserializer=pb.CallRequest.FromString,
                    response_serializer=pb.CallReply.SerializeToString,
                )
            },
        )


class EndpointsClient:
    """A small typed client over a ``grpc.aio`` channel."""

    def __init__(self, channel: grpc.aio.Channel, api_key: str | None = None) -> None:
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._call: Any = channel.unary_unary(
            f"/{ENDPOINTS_SERVICE}/Call",
            request_serializer=pb.CallRequest.SerializeToString,
            response_deserializer=pb.CallReply.FromString,
        )

    async def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: bytes = b"",
        *,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """The HTTP status and JSON body the same request gets over HTTP."""
        request = pb.CallRequest(method=method, path=path, query=dict(query or {}), body=body)
        reply: pb.CallReply = await self._call(request, metadata=self._metadata, timeout=timeout)
        return reply.status, reply.body
