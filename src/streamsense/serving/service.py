"""The HTTP API (FastAPI): decisions, ingestion, features, models, health and metrics.

    POST /v1/decide/{stream}    one event (JSON object, the stream's field names, ISO times)
                                → score, action, tier, degraded, latency_ms (and the record);
                                the event is also published to the broker
    POST /v1/events/{stream}    one event or a list, published without a decision
    GET  /v1/features/{view}/{key}?at=ISO
    GET  /v1/models             POST /v1/models/{name}/aliases/{alias}  {"version": N}
    GET  /healthz  /readyz  /metrics  /docs  /openapi.json   (who sees which: exposure.py)
    the app's own endpoints (``Serving.endpoints``), answered before all of these

Bodies are parsed with msgspec straight from bytes (no pydantic on the hot path). Errors are
4xx JSON naming the bad field. With an API key set, every /v1 call (and by default
/metrics) needs ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from fastapi import FastAPI, Request, Response
from prometheus_client import generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamsense.brokers.base import Producer
from streamsense.errors import RetryableError, StreamsenseError
from streamsense.events import to_epoch_ms
from streamsense.serving.decide import RequestError, decide_event, encode_reply, ingest_events
from streamsense.serving.endpoints import Call, EndpointTable, Reply
from streamsense.serving.exposure import Exposure
from streamsense.serving.http_errors import error_response, install_error_handlers
from streamsense.serving.http_metrics import HttpMetrics, metrics_of
from streamsense.serving.openapi_bodies import document_bodies
from streamsense.serving.routes import route_of
from streamsense.serving.served import Serving

_json = msgspec.json.Encoder()
log = logging.getLogger(__name__)


_error = error_response


def _ok(body: Any) -> Response:
    return Response(_json.encode(body), 200, media_type="application/json")


def create_api(serving: Serving, exposure: Exposure | None = None) -> FastAPI:
    """The HTTP API of ``serving``; ``exposure`` (default: ``Exposure()``) says who sees
    /metrics and whether /docs and /openapi.json exist."""
    shown = exposure or Exposure()
    metrics = metrics_of(serving)
    producer = serving.broker.producer(linger_ms=2.0)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for online in serving.features.values():
            try:
                online.warm_up()
            except RetryableError as error:  # the store may come back later: serve anyway
                log.warning("online store unavailable at startup (%s): serving on fallbacks", error)
        if serving.on_start is not None:
            serving.on_start()
        try:
            yield
        finally:
            if serving.on_stop is not None:
                serving.on_stop()
            producer.close()  # publish what is still buffered

    api = FastAPI(
        title=f"streamsense: {serving.name}",
        docs_url="/docs" if shown.docs else None,
        redoc_url="/redoc" if shown.docs else None,
        openapi_url="/openapi.json" if shown.docs else None,
        lifespan=lifespan,
    )
    api.state.serving, api.state.producer, api.state.metrics = serving, producer, metrics
    install_error_handlers(api)
    document_bodies(api, serving.streams, list(serving.views))

    api.add_middleware(_Guard, serving=serving, metrics=metrics, producer=producer, exposure=shown)

    @api.post("/v1/decide/{stream}")
    async def decide(stream: str, request: Request) -> Response:
        return _decide(serving, producer, metrics, stream, await _body(request, serving))

    @api.post("/v1/events/{stream}")
    async def ingest(stream: str, request: Request) -> Response:
        return _ingest(serving, producer, stream, await _body(request, serving))

    @api.get("/v1/features/{view}/{key}")
    def features(view: str, key: str, at: str | None = None) -> Response:
        return _features(serving, view, key, at)

    @api.get("/v1/models")
    def models() -> Response:
        if serving.registry is None:
            return _ok({"models": []})
        listed = [msgspec.to_builtins(m) for m in serving.registry.list()]
        return _ok({"models": listed})

    @api.post("/v1/models/{name}/aliases/{alias}")
    async def switch(name: str, alias: str, request: Request) -> Response:
        return _switch(serving, name, alias, await _body(request, serving))

    @api.get("/healthz")
    def healthz() -> Response:
        return _ok({"status": "ok"})

    @api.get("/readyz")
    def readyz() -> Response:
        try:
            for stream in serving.streams.values():
                serving.broker.describe_topic(stream.topic)
        except StreamsenseError as error:
            return _error(503, f"not ready: {error}")
        if serving.ready is not None and not serving.ready():
            return _error(503, f"not ready: {serving.name} is still starting")
        return _ok({"status": "ready"})

    if shown.metrics != "off":

        @api.get("/metrics")
        def prometheus() -> Response:
            latest = generate_latest(metrics.registry)
            return Response(latest, media_type="text/plain; version=0.0.4")

    return api


class _Guard:
    """API keys, body size limits and request counts, as plain ASGI middleware: FastAPI's
    ``@middleware("http")`` wraps every request in extra tasks and costs ~0.4 ms each.

    It also answers ``POST /v1/decide/{stream}`` itself, the hot path, with the very same
    ``_decide`` the FastAPI route calls (which stays for the OpenAPI docs and any other
    shape of path): FastAPI's routing, request object and exception layers cost about a
    quarter of a served decision's CPU time (py-spy at 1,000 requests/s). The app's own
    endpoints are answered here too, for the same reason, before any platform route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        serving: Serving,
        metrics: HttpMetrics,
        producer: Producer,
        exposure: Exposure,
    ) -> None:
        self.app, self.serving, self.metrics, self.producer = app, serving, metrics, producer
        self.keyed_metrics = exposure.metrics == "key"
        self.endpoints = EndpointTable(serving.endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        own = self.endpoints.template_of(path) if self.endpoints else None
        route = own or route_of(path)
        rejection = self._rejection(path, dict(scope["headers"]))
        if rejection is not None:
            self.metrics.requests.labels(route, str(rejection.status_code)).inc()
            await rejection(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(route, str(message["status"])).inc()
            await send(message)

        if self.endpoints and await self._endpoint(scope, receive, counted):
            return
        stream = _decide_stream(scope)
        if stream is None:
            await self.app(scope, receive, counted)
            return
        body = await _read_body(receive, self.serving.max_body_bytes)
        answer = _decide(self.serving, self.producer, self.metrics, stream, body)
        await answer(scope, receive, counted)

    def _rejection(self, path: str, headers: dict[bytes, bytes]) -> Response | None:
        """The answer to a request refused before it is read: no key, or a body too big."""
        keyed = path.startswith("/v1/") or (self.keyed_metrics and path == "/metrics")
        limit = self.serving.max_body_bytes
        if keyed and not _authorised(self.serving, headers):
            message = "missing or wrong API key (Authorization: Bearer <key>)"
            return _error(401, message, "authorization")
        declared = _declared_length(headers)
        if declared is None:
            return _error(400, "Content-Length is not a number", "content-length")
        if declared > limit:
            return _error(413, f"request body over {limit} bytes", "body")
        return None

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answers the request if it is for one of the app's endpoints."""
        found = self.endpoints.match(scope["method"], scope["path"])
        if found is None:
            return False
        endpoint, params = found
        body = b""
        if scope["method"] == "POST":
            body = await _read_body(receive, self.serving.max_body_bytes)
        query = dict(parse_qsl(scope.get("query_string", b"").decode(errors="replace")))
        call = Call(params, query, body)
        try:
            if len(body) > self.serving.max_body_bytes:
                reply = Reply.error(413, f"request body over {self.serving.max_body_bytes} bytes")
            elif endpoint.blocking:
                reply = await run_in_threadpool(endpoint.handler, call)
            else:
                reply = endpoint.handler(call)
        except RetryableError as error:  # the app's dependency is down: try again later
            reply = Reply.error(503, str(error))
        answer = Response(reply.body, reply.status, media_type="application/json")
        await answer(scope, receive, send)
        return True


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    """The Content-Length the client declared (0 if none, None if no number: a 400, where
    ``int()`` raised and answered 500)."""
    declared = headers.get(b"content-length") or b"0"
    return int(declared) if declared.isdigit() else None


def _decide_stream(scope: Scope) -> str | None:
    """The stream of a ``POST /v1/decide/{stream}`` request, else None."""
    if scope["method"] != "POST" or not scope["path"].startswith("/v1/decide/"):
        return None
    stream: str = scope["path"][len("/v1/decide/") :]
    return stream if stream and "/" not in stream else None


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request body, cut at ``limit + 1`` bytes (over the limit: refused by size; the
    rest is never read, so a chunked body of any size costs no more than the limit). A
    client that hangs up mid-body leaves what came (answered to nobody)."""
    chunks, size = [], 0
    while size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)[: limit + 1]


def _authorised(serving: Serving, headers: dict[bytes, bytes]) -> bool:
    if serving.api_key is None:
        return True
    scheme, _, token = headers.get(b"authorization", b"").decode(errors="replace").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip(), serving.api_key)


async def _body(request: Request, serving: Serving) -> bytes:
    # Not request.body(): that reads a chunked body of any size into memory, and raises
    # (a logged 500) when the client hangs up mid-body.
    return await _read_body(request.receive, serving.max_body_bytes)


def _decide(
    serving: Serving, producer: Producer, metrics: HttpMetrics, stream_name: str, body: bytes
) -> Response:
    try:
        record = decide_event(serving, producer, stream_name, body)
    except RequestError as error:
        return _error(error.status, error.message, error.field)
    metrics.decide_seconds.observe(record.latency_ms["total"] / 1000)
    metrics.decisions.labels(record.action, record.tier).inc()
    for reason in record.degraded_reasons:
        metrics.degraded.labels(reason).inc()
    return Response(encode_reply(record), 200, media_type="application/json")


def _ingest(serving: Serving, producer: Producer, stream_name: str, body: bytes) -> Response:
    try:
        return _ok({"accepted": ingest_events(serving, producer, stream_name, body)})
    except RequestError as error:
        return _error(error.status, error.message, error.field)


def _features(serving: Serving, view_name: str, key: str, at: str | None) -> Response:
    view = serving.views.get(view_name)
    if view is None:
        return _error(404, f"no view {view_name!r} (there are {sorted(serving.views)})", "view")
    try:
        when = datetime.now(UTC) if at is None else datetime.fromisoformat(at)
    except ValueError:
        return _error(422, f"at={at!r} is not an ISO 8601 time", "at")
    at_ms = to_epoch_ms(when)
    return _ok(
        {"view": view_name, "key": key, "at_ms": at_ms, "features": view.get([key], at_ms)[0]}
    )


def _switch(serving: Serving, name: str, alias: str, body: bytes) -> Response:
    if serving.registry is None:
        return _error(404, "no model registry configured", "name")
    try:
        version = int(msgspec.json.decode(body)["version"])
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return _error(422, 'body must be {"version": N}', "version")
    try:
        chosen = serving.registry.set_alias(name, alias, version)
    except StreamsenseError as error:
        return _error(404 if not error.retryable else 503, str(error), "name")
    if serving.on_model_switch is not None:
        serving.on_model_switch(name, alias, chosen)
    return _ok({"model": name, "alias": alias, "version": chosen})
