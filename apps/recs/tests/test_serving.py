"""The recommendations API in process: lists with reasons, trending for a new user, posted
interactions changing the next answer (the seed's example), degradation when the model is
busy, and a clear 4xx for a bad body."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from streamsense.brokers import MemoryBroker
from streamsense.runtime.ingest import ingest_file

from ..api import create_api
from ..app import interactions, items
from ..demo import _new_genre, _popular_of_genre
from ..serving import RecsService
from ..simulator import SimulatorConfig, write_world


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, RecsService]]:
    broker = MemoryBroker()
    files = write_world(SimulatorConfig(ratings=6000, seed=3), tmp_path / "world")
    ingest_file(broker, items, files["items"])
    ingest_file(broker, interactions, files["interactions"])
    service = RecsService(broker, interactions, items)
    service.start()
    assert service.wait_for(interactions.topic, 6000, timeout_s=60)
    client = TestClient(create_api(service))
    assert service.caught_up.wait(60)
    assert client.get("/v1/ready").status_code == 200
    yield client, service
    service.stop()


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
