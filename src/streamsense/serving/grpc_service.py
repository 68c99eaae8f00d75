"""The gRPC API (``streamsense.v1.Decisions``, see proto/decide.proto): the same decide and
ingest logic as the HTTP API (``serving.decide``), the same API key and size limits.

    server, port = await start_grpc_server(serving, producer, port=50051)
    ...
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await DecisionsClient(channel).decide("payments", b'{"amount": ...}')

``with_grpc(api, serving, port=N)`` runs the gRPC server inside the FastAPI app's lifespan, on
the same event loop and with the same producer, so ``streamsense serve --grpc-port N`` serves
both protocols from one process without sharing the online store or cascade across threads.
An app's own endpoints are served beside it (``streamsense.v1.Endpoints``, grpc_endpoints.py).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import grpc
import grpc.aio
import msgspec
from fastapi import FastAPI
from google.protobuf.message import DecodeError, Message

from streamsense.brokers.base import Producer
from streamsense.errors import StreamsenseError
from streamsense.serving.decide import RequestError, decide_event, ingest_events, reply_of
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.proto import decide_pb2 as pb
from streamsense.serving.served import Serving

__all__ = ["SERVICE", "DecisionService", "DecisionsClient", "start_grpc_server", "with_grpc"]

SERVICE = "streamsense.v1.Decisions"
# Room for the request's own framing on top of the event body limit.
_ENVELOPE_BYTES = 1024

_STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}

M = TypeVar("M", bound=Message)
DecideContext = grpc.aio.ServicerContext[pb.DecideRequest, pb.DecideReply]
IngestContext = grpc.aio.ServicerContext[pb.IngestRequest, pb.IngestReply]


class DecisionService:
    """The servicer. Handlers run on the server's event loop, one at a time, like the
    HTTP API's async routes: decide is CPU work of well under a millisecond."""

    def __init__(self, serving: Serving, producer: Producer) -> None:
        self.serving = serving
        self.producer = producer

    async def decide(
        self, request: pb.DecideRequest | None, context: DecideContext
    ) -> pb.DecideReply:
        await authorise(self.serving, context)
        request = await _parsed(request, context)
        try:
            record = decide_event(
                self.serving, self.producer, request.stream, request.event, id_prefix="grpc"
            )
        except RequestError as error:
            await _abort(context, error)
        except StreamsenseError as error:  # the broker refused (a missing topic, busy, ...)
            await context.abort(_failure_code(error), str(error))
        return reply_message(record)

    async def ingest(
        self, request: pb.IngestRequest | None, context: IngestContext
    ) -> pb.IngestReply:
        await authorise(self.serving, context)
        request = await _parsed(request, context)
        try:
            accepted = ingest_events(self.serving, self.producer, request.stream, request.events)
        except RequestError as error:
            await _abort(context, error)
        except StreamsenseError as error:
            await context.abort(_failure_code(error), str(error))
        return pb.IngestReply(accepted=accepted)

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Decide": grpc.unary_unary_rpc_method_handler(
                    self.decide,
                    request_deserializer=_lenient(pb.DecideRequest.FromString),
                    response_serializer=pb.DecideReply.SerializeToString,
                ),
                "Ingest": grpc.unary_unary_rpc_method_handler(
                    self.ingest,
                    request_deserializer=_lenient(pb.IngestRequest.FromString),
                    response_serializer=pb.IngestReply.SerializeToString,
                ),
            },
        )


def _lenient(parse: Callable[[bytes], M]) -> Callable[[bytes], M | None]:
    """``parse``, with None for bytes that are no such message: grpc answers a deserializer
    that raises with UNKNOWN (a server fault, and a logged traceback) where the client sent
    garbage; the handler answers INVALID_ARGUMENT instead (issue #21)."""

    def deserialize(data: bytes) -> M | None:
        try:
            return parse(data)
        except DecodeError:
            return None

    return deserialize


async def _parsed(request: M | None, context: grpc.aio.ServicerContext[Any, Any]) -> M:
    if request is None:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            "the request is not a valid protobuf message of the method's type",
            trailing_metadata=(("field", "request"),),
        )
    return request


def reply_message(record: DecisionRecord) -> pb.DecideReply:
    """The HTTP answer (``reply_of``), field for field, as the protobuf message (an unset
    model version stays unset)."""
    fields = msgspec.structs.asdict(reply_of(record))
    return pb.DecideReply(**{name: value for name, value in fields.items() if value is not None})


async def start_grpc_server(
    serving: Serving, producer: Producer, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[grpc.aio.Server, int]:
    """Start serving on ``host:port`` (0: any free port); returns the server and its port.
    Call from the event loop the server should run on; stop it with ``await server.stop()``."""
    limit = serving.max_body_bytes + _ENVELOPE_BYTES
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit)])
    server.add_generic_rpc_handlers((DecisionService(serving, producer).handler(),))
    if serving.endpoints:
        # imported here: it imports ``authorise`` from this module
        from streamsense.serving.grpc_endpoints import EndpointsService

        server.add_generic_rpc_handlers((EndpointsService(serving).handler(),))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound


def with_grpc(api: FastAPI, serving: Serving, *, host: str = "127.0.0.1", port: int = 0) -> FastAPI:
    """Serve gRPC next to the HTTP API while ``api`` runs: started after the API's own
    start-up (online stores warmed), stopped before its shutdown (the producer flushed).
    The bound port is ``api.state.grpc_port`` once started."""
    inner = api.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            server, bound = await start_grpc_server(
                serving, app.state.producer, host=host, port=port
            )
            app.state.grpc_port = bound
            try:
                yield state
            finally:
                await server.stop(grace=1.0)

    api.router.lifespan_context = lifespan
    return api


class DecisionsClient:
    """A small typed client for the service over a ``grpc.aio`` channel."""

    def __init__(self, channel: grpc.aio.Channel, api_key: str | None = None) -> None:
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._decide = channel.unary_unary(
            f"/{SERVICE}/Decide",
            request_serializer=pb.DecideRequest.SerializeToString,
            response_deserializer=pb.DecideReply.FromString,
        )
        self._ingest = channel.unary_unary(
            f"/{SERVICE}/Ingest",
            request_serializer=pb.IngestRequest.SerializeToString,
            response_deserializer=pb.IngestReply.FromString,
        )

    async def decide(
        self, stream: str, event: bytes, *, timeout: float | None = None
    ) -> pb.DecideReply:
        request = pb.DecideRequest(stream=stream, event=event)
        reply: pb.DecideReply = await self._decide(
            request, metadata=self._metadata, timeout=timeout
        )
        return reply

    async def ingest(self, stream: str, events: bytes, *, timeout: float | None = None) -> int:
        request = pb.IngestRequest(stream=stream, events=events)
        reply: pb.IngestReply = await self._ingest(
            request, metadata=self._metadata, timeout=timeout
        )
        return reply.accepted


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


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: RequestError) -> NoReturn:
    code = _STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)
    trailing = (("field", error.field),) if error.field else ()
    await context.abort(code, error.message, trailing_metadata=trailing)


def _failure_code(error: StreamsenseError) -> grpc.StatusCode:
    return grpc.StatusCode.UNAVAILABLE if error.retryable else grpc.StatusCode.FAILED_PRECONDITION
