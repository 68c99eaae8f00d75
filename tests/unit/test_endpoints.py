"""An app's own endpoints (Serving.endpoints) through the generic HTTP and gRPC APIs: routed
by template with path parameters and query, the API key and body limit applied, the app's
lifecycle and readiness honoured, and no decisions served without a cascade."""

from __future__ import annotations

import asyncio
import threading

import grpc
import grpc.aio
import msgspec
import pytest
from fastapi.testclient import TestClient

from streamsense.brokers import MemoryBroker
from streamsense.serving import Call, Endpoint, Reply, Serving
from streamsense.serving.endpoints import EndpointTable
from streamsense.serving.grpc_endpoints import EndpointsClient
from streamsense.serving.grpc_service import start_grpc_server
from streamsense.serving.service import create_api

KEY = "k3y"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _echo(call: Call) -> Reply:
    return Reply.json({"params": dict(call.params), "query": dict(call.query)})


def _post(call: Call) -> Reply:
    # blocking endpoints run off the event loop's thread
    return Reply.json({"size": len(call.body), "thread": threading.current_thread().name}, 202)


def make_serving(events: list[str]) -> Serving:
    up = threading.Event()

    def start() -> None:
        events.append("start")
        up.set()

    return Serving(
        name="own",
        broker=MemoryBroker(),
        endpoints=[
            Endpoint("GET", "/v1/echo/{name}/{n}", _echo),
            Endpoint("POST", "/v1/things", _post, blocking=True),
        ],
        api_key=KEY,
        max_body_bytes=100,
        on_start=start,
        on_stop=lambda: events.append("stop"),
        ready=up.is_set,
    )


def test_the_table_matches_method_and_template() -> None:
    table = EndpointTable([Endpoint("GET", "/v1/a/{x}", _echo)])
    found = table.match("GET", "/v1/a/7")
    assert found is not None and found[1] == {"x": "7"}
    assert table.match("POST", "/v1/a/7") is None
    assert table.match("GET", "/v1/a/7/8") is None
    assert table.template_of("/v1/a/9") == "/v1/a/{x}"


def test_endpoints_over_http() -> None:
    events: list[str] = []
    with TestClient(create_api(make_serving(events))) as client:
        assert events == ["start"]
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/echo/a/1").status_code == 401
        answer = client.get("/v1/echo/a/1", params={"k": "5"}, headers=AUTH)
        assert answer.status_code == 200
        assert answer.json() == {"params": {"name": "a", "n": "1"}, "query": {"k": "5"}}
        posted = client.post("/v1/things", content=b"x" * 10, headers=AUTH)
        assert posted.status_code == 202 and posted.json()["size"] == 10
        assert posted.json()["thread"] != threading.current_thread().name
        big = client.post("/v1/things", content=b"x" * 101, headers=AUTH)
        assert big.status_code == 413
        decide = client.post("/v1/decide/anything", content=b"{}", headers=AUTH)
        assert decide.status_code == 404 and "no decisions" in decide.json()["error"]
        page = client.get("/metrics", headers=AUTH).text
        assert 'route="/v1/echo/{name}/{n}",status="200"' in page
        assert "/v1/echo/a/1" not in page
    assert events == ["start", "stop"]


def test_readyz_waits_for_the_app() -> None:
    serving = make_serving([])
    serving.on_start = None  # never ready
    with TestClient(create_api(serving)) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503 and "starting" in answer.json()["error"]


def test_endpoints_over_grpc() -> None:
    async def scenario() -> None:
        serving = make_serving([])
        server, port = await start_grpc_server(serving, serving.broker.producer())
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                client = EndpointsClient(channel, api_key=KEY)
                status, body = await client.call("GET", "/v1/echo/b/2", {"k": "3"})
                assert status == 200
                assert msgspec.json.decode(body)["params"] == {"name": "b", "n": "2"}
                status, body = await client.call("POST", "/v1/things", body=b"abc")
                assert status == 202 and msgspec.json.decode(body)["size"] == 3
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await client.call("GET", "/v1/nothing")
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
                with pytest.raises(grpc.aio.AioRpcError) as large:
                    await client.call("POST", "/v1/things", body=b"x" * 101)
                assert large.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await EndpointsClient(channel).call("GET", "/v1/echo/b/2")
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            await server.stop(None)

    asyncio.run(scenario())
