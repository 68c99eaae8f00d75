"""What the API fuzzing of issue #21 (tests/e2e/test_api_fuzz.py) found, each kept as the
example that failed: every 4xx has one shape naming the field, a client that hangs up or
streams a body of any size costs no more than the limit, an event too far in the future is
refused as the worker would refuse it, and garbage on the gRPC wire is INVALID_ARGUMENT."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import msgspec
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message

from streamsense.brokers import MemoryBroker
from streamsense.serving.grpc_service import SERVICE, DecisionsClient, start_grpc_server
from streamsense.serving.service import create_api
from streamsense.testing import ManualClock
from tests.apps.windowed import clicks
from tests.unit.test_grpc_service import KEY, make_serving

NOW_MS = 1_700_000_000_000
DAY_MS = 86_400_000
AUTH = {"authorization": f"Bearer {KEY}"}


@pytest.fixture
def http() -> Iterator[TestClient]:
    serving = make_serving()
    serving.clock = ManualClock(NOW_MS)
    with TestClient(create_api(serving), raise_server_exceptions=False) as client:
        client.headers.update(AUTH)
        yield client


def test_framework_answers_have_the_api_error_shape(http: TestClient) -> None:
    unknown = http.get("/v1/nothing/here")
    assert (unknown.status_code, unknown.json()["field"]) == (404, "path")
    wrong_method = http.put("/v1/models")
    assert (wrong_method.status_code, wrong_method.json()["field"]) == (405, "method")
    assert wrong_method.headers["allow"] == "GET"
    no_key = http.get("/v1/models", headers={"authorization": "Bearer nope"})
    assert (no_key.status_code, no_key.json()["field"]) == (401, "authorization")
    not_json = http.post(f"/v1/events/{clicks.topic}", content=b"\xff{")
    assert (not_json.status_code, not_json.json()["field"]) == (400, "body")
    no_stream = http.post("/v1/decide/nothing", json={})
    assert (no_stream.status_code, no_stream.json()["field"]) == (404, "stream")
    no_view = http.get("/v1/features/nothing/u1")
    assert (no_view.status_code, no_view.json()["field"]) == (404, "view")


def test_an_event_too_far_ahead_of_the_clock_is_refused_naming_its_time(
    http: TestClient,
) -> None:
    soon = {"user": "u1", "ts": NOW_MS + DAY_MS, "amount": 1.0}
    assert http.post(f"/v1/decide/{clicks.topic}", json=soon).status_code == 200
    later = {**soon, "ts": NOW_MS + DAY_MS + 1}
    refused = http.post(f"/v1/decide/{clicks.topic}", json=later)
    assert (refused.status_code, refused.json()["field"]) == (422, "ts")
    batch = http.post(f"/v1/events/{clicks.topic}", json=[soon, later])
    assert (batch.status_code, batch.json()["field"]) == (422, "[1].ts")


def _call(app: Any, path: str, messages: list[Message], headers: list[Any]) -> list[Message]:
    """One request straight through the ASGI app; the messages it sent back."""
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": headers, "http_version": "1.1",
             "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "root_path": ""}  # fmt: skip
    queue = iter(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return next(queue, {"type": "http.disconnect"})

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _status(sent: list[Message]) -> int:
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


@pytest.mark.parametrize("path", [f"/v1/events/{clicks.topic}", f"/v1/decide/{clicks.topic}"])
def test_a_client_hanging_up_mid_body_is_no_server_error(path: str) -> None:
    app = create_api(make_serving())
    auth = [(b"authorization", AUTH["authorization"].encode())]
    part: Message = {"type": "http.request", "body": b'{"user": ', "more_body": True}
    sent = _call(app, path, [part, {"type": "http.disconnect"}], auth)
    assert _status(sent) in (400, 422)  # what came is refused; no ClientDisconnect raised


def test_a_chunked_body_is_read_no_further_than_the_limit() -> None:
    app = create_api(make_serving())  # max_body_bytes=2048
    auth = [(b"authorization", AUTH["authorization"].encode())]
    chunk: Message = {"type": "http.request", "body": b" " * 1000, "more_body": True}
    endless = [chunk] * 100_000  # 100 MB if it were all read
    sent = _call(app, f"/v1/events/{clicks.topic}", endless, auth)
    assert _status(sent) == 413


def test_a_content_length_that_is_no_number_is_a_400() -> None:
    app = create_api(make_serving())
    headers = [(b"authorization", AUTH["authorization"].encode()), (b"content-length", b"lots")]
    sent = _call(app, f"/v1/events/{clicks.topic}", [], headers)
    body = msgspec.json.decode(next(m["body"] for m in sent if m["type"] == "http.response.body"))
    assert _status(sent) == 400 and body["field"] == "content-length"


@pytest.mark.parametrize("method", ["Decide", "Ingest"])
def test_garbage_on_the_grpc_wire_is_invalid_argument_naming_the_request(method: str) -> None:
    serving = make_serving()
    assert isinstance(serving.broker, MemoryBroker)

    async def main() -> tuple[grpc.StatusCode, dict[str, Any]]:
        producer = serving.broker.producer()
        server, port = await start_grpc_server(serving, producer)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary(f"/{SERVICE}/{method}")
                try:
                    await call(b"\x00", metadata=tuple(AUTH.items()))
                except grpc.aio.AioRpcError as error:
                    return error.code(), dict(error.trailing_metadata() or ())
                raise AssertionError("garbage was accepted")
        finally:
            await server.stop(grace=None)
            producer.close()

    code, trailing = asyncio.run(main())
    assert code == grpc.StatusCode.INVALID_ARGUMENT and trailing["field"] == "request"


def test_a_grpc_call_without_the_key_names_the_authorization_metadata() -> None:
    serving = make_serving()
    assert isinstance(serving.broker, MemoryBroker)

    async def main() -> tuple[grpc.StatusCode, dict[str, Any]]:
        producer = serving.broker.producer()
        server, port = await start_grpc_server(serving, producer)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                try:
                    await DecisionsClient(channel).decide(clicks.topic, b"{}")
                except grpc.aio.AioRpcError as error:
                    return error.code(), dict(error.trailing_metadata() or ())
                raise AssertionError("no key, and an answer")
        finally:
            await server.stop(grace=None)
            producer.close()

    code, trailing = asyncio.run(main())
    assert code == grpc.StatusCode.UNAUTHENTICATED and trailing["field"] == "authorization"
