"""The recommendations API in process, through the platform's generic HTTP API (what
`streamsense serve apps/recs` runs): lists with reasons, trending for a new user, posted
interactions changing the next answer (the seed's example), degradation when the model is
busy, a clear 4xx for a bad body, and a model loaded from the pipeline's changelog."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc.aio
import msgspec
import pytest
from fastapi.testclient import TestClient

import streamsense as ss
from streamsense.brokers import MemoryBroker
from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.runtime.batch_state import state_records
from streamsense.runtime.ingest import ingest_file
from streamsense.serving.grpc_endpoints import EndpointsClient
from streamsense.serving.grpc_service import start_grpc_server
from streamsense.serving.service import create_api
from streamsense.testing import drain_topic

from ..api import build_serving
from ..app import app, interactions, items
from ..demo import _new_genre, _popular_of_genre
from ..serving import RecsService
from ..simulator import SimulatorConfig, write_world
from ..stage import Rating, RecsStage


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, RecsService]]:
    broker = MemoryBroker()
    files = write_world(SimulatorConfig(ratings=6000, seed=3), tmp_path / "world")
    ingest_file(broker, items, files["items"])
    ingest_file(broker, interactions, files["interactions"])
    service = RecsService(broker, interactions, items)
    with TestClient(create_api(build_serving(service, broker))) as client:  # starts it
        assert service.wait_for(interactions.topic, 6000, timeout_s=60)
        assert service.caught_up.wait(60)
        assert client.get("/v1/ready").status_code == 200
        assert client.get("/readyz").status_code == 200
        yield client, service


def _get(client: TestClient, user: int, k: int = 10) -> dict[str, Any]:
    answer = client.get(f"/v1/recommend/{user}", params={"k": k})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def test_a_known_user_gets_a_ranked_list_with_reasons(
    served: tuple[TestClient, RecsService],
) -> None:
    client, service = served
    user = next(iter(service.stage.model().user_index))
    body = _get(client, user, 20)
    assert len(body["items"]) == 20 and not body["degraded"]
    assert body["because_of"] and body["genres"]
    rated = set(service.stage.model().recent_movies(user, 10**6))
    assert not rated & set(body["items"])


def test_a_user_without_history_gets_trending(served: tuple[TestClient, RecsService]) -> None:
    client, service = served
    body = _get(client, 10**6)
    assert body["reason"] == "no_history"
    assert body["items"] == service.stage.model().trending_movies()[:10]


def test_three_posted_interactions_in_a_new_genre_fill_half_the_list(
    served: tuple[TestClient, RecsService],
) -> None:
    client, service = served
    model = service.stage.model()
    user = max(model.user_index, key=lambda u: int(model.users.seen[model.user_index[u]]))
    genre = _new_genre(model, user)
    before = _get(client, user)["items"]
    for n, movie in enumerate(_popular_of_genre(model, genre)[:3]):
        body = {"userId": user, "movieId": movie, "rating": 4.0, "timestamp": 1_500_000_000 + n}
        assert client.post("/v1/events/interactions", json=body).status_code == 202
    after = _get(client, user)["items"]
    in_genre = sum(genre in model.genres_of(m) for m in after)
    assert in_genre >= 5 > sum(genre in model.genres_of(m) for m in before)


def test_a_busy_model_degrades_to_trending_in_the_users_genres(
    served: tuple[TestClient, RecsService],
) -> None:
    client, service = served
    model = service.stage.model()
    user = next(iter(model.user_index))
    with service.stage.lock:  # a catch-up batch holding the model
        body = _get(client, user)
    assert body["degraded"] and body["reason"] == "ranker_slow"
    genres = set(body["genres"])
    assert genres and all(genres & set(model.genres_of(m)) for m in body["items"])


def test_a_bad_interaction_is_refused_naming_the_field(
    served: tuple[TestClient, RecsService],
) -> None:
    client, _ = served
    answer = client.post("/v1/events/interactions", json={"userId": 1, "movieId": "x"})
    assert answer.status_code == 422
    assert answer.json()["field"] == "movieId"


def test_decisions_are_not_served(served: tuple[TestClient, RecsService]) -> None:
    client, _ = served
    answer = client.post("/v1/decide/interactions", json={"userId": 1})
    assert answer.status_code == 404 and "no decisions" in answer.json()["error"]
    assert client.get("/v1/recommend/x").status_code == 422


class CountingStage(RecsStage):
    """The app's stage, counting the ratings it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.ratings = 0

    def process_batch(
        self, partition: int, events: list[ss.Event[Any]], values: list[Any]
    ) -> tuple[list[Any], list[OutRecord]]:
        self.ratings += sum(isinstance(v, Rating) for v in values)
        return super().process_batch(partition, events, values)


def test_the_model_is_loaded_from_the_changelog_then_follows(tmp_path: Path) -> None:
    broker = MemoryBroker()
    files = write_world(SimulatorConfig(ratings=3000, seed=5), tmp_path / "world")
    ingest_file(broker, items, files["items"])
    ingest_file(broker, interactions, files["interactions"])
    movies = list(drain_topic(broker, items.topic))
    ratings = list(drain_topic(broker, interactions.topic))
    # The pipeline's stage took the catalogue and the first 2,000 ratings, then wrote its
    # state to the changelog as a worker does.
    pipeline, topic = RecsStage(), app.state_topic("recs")
    for stream, records in ((items, movies), (interactions, ratings[:2000])):
        events = [e for e in stream.decode_batch(records) if isinstance(e, ss.Event)]
        pipeline.process_batch(0, events, [e.payload for e in events])
    meta, entries = pipeline.state_changes(0)
    offsets = {items.topic: len(movies), interactions.topic: 2000}
    broker.create_topic(topic, TopicConfig(partitions=1, compacted=True))
    producer = broker.producer()
    for out in state_records(topic, 0, offsets, meta, entries, {}):
        producer.send(out.topic, out.value, out.key, partition=out.partition)
    producer.close()
    # A model that saw every rating, for comparison.
    events = [e for e in interactions.decode_batch(ratings[2000:]) if isinstance(e, ss.Event)]
    pipeline.process_batch(0, events, [e.payload for e in events])

    stage = CountingStage()
    service = RecsService(broker, interactions, items, stage=stage, state_topic=topic)
    with TestClient(create_api(build_serving(service, broker))):
        assert service.caught_up.wait(60)
        assert stage.ratings == 1000  # only those after the state's offsets
        model, whole = stage.model(), pipeline.model()
        assert model.user_index == whole.user_index
        for user in sorted(whole.user_index)[:50]:
            assert service.recommend(user, 20).items == whole.recommend(user, 20)[0].tolist()


def test_a_list_over_grpc_is_the_list_over_http(served: tuple[TestClient, RecsService]) -> None:
    client, service = served
    user = next(iter(service.stage.model().user_index))

    async def over_grpc() -> tuple[int, bytes]:
        serving = build_serving(service, service.broker)
        server, port = await start_grpc_server(serving, service.broker.producer())
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await EndpointsClient(channel).call(
                    "GET", f"/v1/recommend/{user}", {"k": "10"}
                )
        finally:
            await server.stop(None)

    status, body = asyncio.run(over_grpc())
    assert status == 200
    assert msgspec.json.decode(body)["items"] == _get(client, user)["items"]
