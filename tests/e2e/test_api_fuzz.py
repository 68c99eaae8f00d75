"""API fuzzing against a live `streamsense serve apps/fraud` (issue #21): requests generated
from the service's own OpenAPI document and from the gRPC proto, then 10,000 hostile raw
requests. No 5xx (nor a gRPC INTERNAL/UNKNOWN), every 4xx names the field, no traceback in
the server's log, RSS and /metrics bounded, good requests answered during the flood."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsense.serving.proto import decide_pb2 as pb
from streamsense.serving.routes import OTHER, ROUTES
from tests.e2e.hostile_http import GOOD_EVENT, NO_ANSWER, flood
from tests.e2e.live_serve import API_KEY, AUTH, LiveServer, live_server
from tests.e2e.schema_strategies import any_json, from_schema

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
# gRPC codes a client may get for its own mistakes (the 4xx of gRPC).
CLIENT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("serve")) as running:
        yield running
        assert "Traceback" not in running.output(), running.output()[-5000:]


@pytest.fixture(scope="module")
def document(server: LiveServer) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    return answer


def _inline(node: Any, components: dict[str, Any]) -> Any:
    """``node`` with its ``#/components/schemas`` references replaced by their schemas."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(components[node["$ref"].rsplit("/", 1)[-1]], components)
        return {key: _inline(value, components) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, components) for value in node]
    return node


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    components = document.get("components", {}).get("schemas", {})
    return [
        (path, method, _inline(operation, components))
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def _value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """What the schema says (positive) or any string (negative), as the fuzzers do."""
    return st.one_of(from_schema(schema), st.text(max_size=40))


def _body(schema: dict[str, Any]) -> st.SearchStrategy[bytes]:
    documented = from_schema(schema).map(lambda value: json.dumps(value).encode())
    anything = any_json().map(lambda value: json.dumps(value).encode())
    return st.one_of(documented, documented, anything, st.binary(max_size=200))


@st.composite
def _request(draw: st.DrawFn, path: str, operation: dict[str, Any]) -> httpx.Request:
    url, query = path, {}
    for parameter in operation.get("parameters", ()):
        value = draw(_value(parameter["schema"]))
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", quote(str(value), safe=""))
        elif value is not None:
            query[parameter["name"]] = str(value)
    content = None
    if "requestBody" in operation:
        content = draw(_body(operation["requestBody"]["content"]["application/json"]["schema"]))
    headers = AUTH if draw(st.integers(0, 9)) else {}
    return httpx.Request("GET", url, params=query, content=content, headers=headers)


def _check_http(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["error"] and body["field"], body


def _fuzz_http(
    client: httpx.Client, method: str, requests: st.SearchStrategy[httpx.Request]
) -> None:
    @FUZZ
    @given(request=requests)
    def fuzz(request: httpx.Request) -> None:
        content = request.content or None
        headers = dict(request.headers)
        _check_http(client.request(method, request.url, content=content, headers=headers))

    fuzz()


def test_requests_from_the_openapi_document(server: LiveServer, document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert any("requestBody" in op for _, _, op in operations)  # the bodies are documented
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path, method, operation in operations:
            _fuzz_http(client, method.upper(), _request(path, operation))
    assert "Traceback" not in server.output()


def _event_json(document: dict[str, Any]) -> st.SearchStrategy[bytes]:
    operation = {path: op for path, _, op in _operations(document)}["/v1/events/{stream}"]
    return _body(operation["requestBody"]["content"]["application/json"]["schema"])


def _message(descriptor: Any, document: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A request message from its proto descriptor: each field by its proto type."""
    streams = document["paths"]["/v1/decide/{stream}"]["post"]["parameters"][0]["schema"]
    by_type = {
        descriptor.fields[0].TYPE_STRING: st.one_of(st.sampled_from(streams["enum"]), st.text()),
        descriptor.fields[0].TYPE_BYTES: _event_json(document),
    }
    fields = {field.name: by_type[field.type] for field in descriptor.fields}
    message = getattr(pb, descriptor.name)
    return st.fixed_dictionaries(fields).map(lambda values: message(**values).SerializeToString())


def _check_grpc(call: Any, request: bytes, metadata: tuple[tuple[str, str], ...]) -> None:
    try:
        call(request, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        code = error.code()
        assert code in CLIENT_CODES, (code, error.details())
        trailing = dict(error.trailing_metadata() or ())
        assert trailing.get("field"), (code, error.details())


def _fuzz_grpc(call: Any, requests: st.SearchStrategy[bytes]) -> None:
    keys = st.sampled_from([(("authorization", f"Bearer {API_KEY}"),)] * 5 + [()])

    @FUZZ
    @given(request=requests, metadata=keys)
    def fuzz(request: bytes, metadata: tuple[tuple[str, str], ...]) -> None:
        _check_grpc(call, request, metadata)

    fuzz()


def test_requests_from_the_grpc_proto(server: LiveServer, document: dict[str, Any]) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        for method in pb.DESCRIPTOR.services_by_name["Decisions"].methods:
            call = channel.unary_unary(f"/streamsense.v1.Decisions/{method.name}")
            wire = st.one_of(_message(method.input_type, document), st.binary(max_size=300))
            _fuzz_grpc(call, wire)
    assert "Traceback" not in server.output()


class _GoodRequests:
    """Valid decisions, one after another, on a thread while the flood runs."""

    def __init__(self, server: LiveServer) -> None:
        self.url = f"{server.url}/v1/decide/transactions"
        self.statuses: list[int] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(headers=AUTH, timeout=30) as client:
            while not self.stopped.is_set():
                now = datetime.now(UTC).replace(tzinfo=None).isoformat()
                event = {**GOOD_EVENT, "TX_DATETIME": now}
                self.statuses.append(client.post(self.url, json=event).status_code)


def _metrics(server: LiveServer) -> str:
    return httpx.get(f"{server.url}/metrics", headers=AUTH, timeout=30).text


def test_a_flood_of_hostile_requests(server: LiveServer) -> None:
    warm_up = asyncio.run(flood("127.0.0.1", server.port, API_KEY, count=2_000, seed=1))
    rss_before, metrics_before = server.rss_kib(), len(_metrics(server))
    good = _GoodRequests(server)
    good.thread.start()
    try:
        rest = asyncio.run(flood("127.0.0.1", server.port, API_KEY, count=8_000, seed=2))
    finally:
        good.stopped.set()
        good.thread.join(timeout=60)
    statuses = warm_up + rest
    assert sum(statuses.values()) == 10_000
    assert max(statuses) < 500, statuses
    assert sum(n for status, n in statuses.items() if status != NO_ANSWER) > 7_000, statuses
    assert len(good.statuses) >= 10 and set(good.statuses) == {200}, good.statuses
    growth_kib = server.rss_kib() - rss_before
    assert growth_kib < 32 * 1024, f"RSS grew {growth_kib} KiB over 8,000 requests"
    page = _metrics(server)
    routes = set(re.findall(r'route="([^"]*)"', page))
    assert routes <= {*ROUTES, OTHER}, routes
    assert len(page) < metrics_before + 16 * 1024, (metrics_before, len(page))
    assert "Traceback" not in server.output(), server.output()[-5000:]


def test_the_server_log_has_no_traceback(server: LiveServer) -> None:
    assert server.process.poll() is None
    assert "Traceback" not in server.output() and "ERROR" not in server.output()
