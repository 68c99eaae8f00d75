"""The gRPC API against a real in-process server on 127.0.0.1: same semantics as HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import grpc.aio
import msgspec
import pytest
from fastapi.testclient import TestClient

from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.serving import Serving
from streamsense.serving.cascade import Cascade
from streamsense.serving.grpc_service import DecisionsClient, start_grpc_server, with_grpc
from streamsense.serving.models import FunctionModel
from streamsense.serving.proto import decide_pb2
from streamsense.serving.rules import RuleSet
from streamsense.serving.service import create_api
from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.views import OnlineFeatures
from streamsense.testing import ManualClock, drain_topic
from tests.apps.windowed import FEATURES, clicks

KEY = "s3cret"
T = TypeVar("T")
Scenario = Callable[[DecisionsClient, MemoryBroker], Awaitable[T]]


def make_serving(api_key: str | None = KEY) -> Serving:
    broker = MemoryBroker()
    broker.create_topic(clicks.topic, TopicConfig(clicks.partitions))
    broker.create_topic("decisions", TopicConfig(1))
    online = OnlineFeatures(FEATURES, MemoryOnlineStore())
    light = FunctionModel(lambda X: X[:, 0] / 10, ["n_10s"], name="light", version=1)
    rules = RuleSet.from_dicts([{"name": "big", "when": "amount > 1000", "action": "block"}])
    return Serving(
        name="test",
        streams={clicks.topic: clicks},
        features={clicks.topic: online},
        # On a ManualClock a model call takes no time: no tier is ever over its budget.
        cascade=Cascade(rules=rules, light=light, clock=ManualClock()),
        broker=broker,
        decisions_topic="decisions",
        views=online.views_by_name(),
        api_key=api_key,
        max_body_bytes=2048,
    )


def run(scenario: Scenario[T], api_key: str | None = KEY) -> T:
    serving = make_serving()
    assert isinstance(serving.broker, MemoryBroker)
    broker = serving.broker

    async def main() -> T:
        producer = broker.producer(batch_size=1)  # visible at once
        server, port = await start_grpc_server(serving, producer)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                result = await scenario(DecisionsClient(channel, api_key), broker)
        finally:
            await server.stop(grace=None)
            producer.close()
        return result

    return asyncio.run(main())


def body(**fields: object) -> bytes:
    return msgspec.json.encode(fields)


def test_decide_answers_and_publishes_the_event_and_its_decision() -> None:
    async def scenario(client: DecisionsClient, broker: MemoryBroker) -> None:
        reply = await client.decide(clicks.topic, body(user="u1", ts=1_600_000_000_000, amount=5))
        assert (reply.action, reply.tier, reply.degraded) == ("allow", "light", False)
        assert reply.score == pytest.approx(0.1) and reply.features["n_10s"] == 1
        assert reply.event_id.startswith("grpc/") and reply.model_version == "light@1"
        assert reply.latency_ms > 0 and "features" in reply.latency_breakdown_ms
        big = await client.decide(clicks.topic, body(user="u1", ts=1_600_000_001_000, amount=5e3))
        assert (big.action, big.tier, big.HasField("model_version")) == ("block", "rules", False)
        events = drain_topic(broker, clicks.topic)
        assert len(events) == 2 and all(dict(e.headers)["decided-by"] == b"api" for e in events)
        decisions = [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "decisions")]
        assert [d["event_id"] for d in decisions] == [reply.event_id, big.event_id]

    run(scenario)


async def status_of(call: Awaitable[object]) -> tuple[grpc.StatusCode, str | None]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    field = dict(caught.value.trailing_metadata() or ()).get("field")
    return caught.value.code(), field if isinstance(field, str) else None


def test_bad_requests_get_status_codes_naming_the_field() -> None:
    async def scenario(client: DecisionsClient, broker: MemoryBroker) -> None:
        wrong_type = client.decide(clicks.topic, body(user="u", ts="soon", amount=1))
        assert await status_of(wrong_type) == (grpc.StatusCode.INVALID_ARGUMENT, "ts")
        missing = client.decide(clicks.topic, body(user="u", ts=1))
        assert await status_of(missing) == (grpc.StatusCode.INVALID_ARGUMENT, "amount")
        not_json = client.decide(clicks.topic, b"{nope")
        assert (await status_of(not_json))[0] == grpc.StatusCode.INVALID_ARGUMENT
        too_big = client.decide(clicks.topic, b"{" + b" " * 4000 + b"}")
        assert (await status_of(too_big))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
        no_stream = client.decide("nothing", b"{}")
        assert (await status_of(no_stream))[0] == grpc.StatusCode.NOT_FOUND
        batch = client.ingest(clicks.topic, b'[{"user": "u", "ts": 1, "amount": 1}, {"user": "u"}]')
        assert await status_of(batch) == (grpc.StatusCode.INVALID_ARGUMENT, "[1].ts")
        assert broker.describe_topic(clicks.topic).messages == 0  # all or none

    run(scenario)


def test_ingest_publishes_one_event_or_a_batch() -> None:
    async def scenario(client: DecisionsClient, broker: MemoryBroker) -> int:
        one = await client.ingest(clicks.topic, body(user="u", ts=1, amount=1.0))
        many = await client.ingest(
            clicks.topic, msgspec.json.encode([{"user": "v", "ts": 2, "amount": 2}] * 3)
        )
        return one + many

    assert run(scenario) == 4


def test_api_keys_are_required() -> None:
    async def scenario(client: DecisionsClient, broker: MemoryBroker) -> None:
        refused = client.ingest(clicks.topic, body(user="u", ts=1, amount=1.0))
        assert (await status_of(refused))[0] == grpc.StatusCode.UNAUTHENTICATED

    run(scenario, api_key="wrong")
    run(scenario, api_key=None)


def test_serve_runs_grpc_next_to_http_with_the_same_answers() -> None:
    serving = make_serving(api_key=None)
    api = with_grpc(create_api(serving), serving)
    event = body(user="u9", ts=1_600_000_000_000, amount=20.0)
    with TestClient(api) as http:
        over_http = http.post(f"/v1/decide/{clicks.topic}", content=event).json()
        port = api.state.grpc_port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            decide = channel.unary_unary(
                "/streamsense.v1.Decisions/Decide",
                request_serializer=decide_pb2.DecideRequest.SerializeToString,
                response_deserializer=decide_pb2.DecideReply.FromString,
            )
            over_grpc = decide(decide_pb2.DecideRequest(stream=clicks.topic, event=event))
    # The online store is written by the pipeline, not the API: both see only the event.
    assert over_http["features"] == dict(over_grpc.features)
    assert (over_grpc.action, over_grpc.tier) == (over_http["action"], over_http["tier"])
    assert len(drain_topic(serving.broker, "decisions")) == 2


def test_checked_in_code_matches_the_proto(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "src"
    proto = "streamsense/serving/proto/decide.proto"
    out = tmp_path / "descriptor.pb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{root}",
            f"--descriptor_set_out={out}",
            proto,
        ],
        check=True,
    )
    from google.protobuf import descriptor_pb2

    regenerated = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    messages = list(regenerated.message_type)
    while messages:
        message = messages.pop()
        messages.extend(message.nested_type)
        for field in message.field:
            field.ClearField("json_name")  # protoc adds it to descriptor sets only
    checked_in = descriptor_pb2.FileDescriptorProto.FromString(decide_pb2.DESCRIPTOR.serialized_pb)
    assert regenerated == checked_in, "regenerate decide_pb2 (command in decide.proto)"
