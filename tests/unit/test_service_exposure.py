"""What the HTTP API shows and to whom (issue #21): request metrics labelled from a fixed
set of route templates; /metrics behind the key, public, off or on its own port; the docs
off in production."""

from __future__ import annotations

import random
import string
import urllib.request

import pytest
import typer
from fastapi.testclient import TestClient

from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.cli.apps import exposure_of
from streamsense.serving import Serving
from streamsense.serving.cascade import Cascade
from streamsense.serving.exposure import Exposure, serve_metrics
from streamsense.serving.models import FunctionModel
from streamsense.serving.routes import OTHER, route_of
from streamsense.serving.service import create_api
from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.views import OnlineFeatures
from streamsense.testing import ManualClock
from tests.apps.windowed import FEATURES, clicks

KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {KEY}"}


def serving() -> Serving:
    broker = MemoryBroker()
    broker.create_topic(clicks.topic, TopicConfig(clicks.partitions))
    broker.create_topic("decisions", TopicConfig(1))
    online = OnlineFeatures(FEATURES, MemoryOnlineStore())
    light = FunctionModel(lambda X: X[:, 0] / 10, ["n_10s"], name="light", version=1)
    return Serving(
        name="test",
        streams={clicks.topic: clicks},
        features={clicks.topic: online},
        cascade=Cascade(light=light, clock=ManualClock()),
        broker=broker,
        decisions_topic="decisions",
        views=online.views_by_name(),
        api_key=KEY,
    )


def random_path(rng: random.Random) -> str:
    segments = rng.randint(1, 4)
    words = ("".join(rng.choices(string.ascii_letters, k=12)) for _ in range(segments))
    return "/v1/" + "/".join(words) if rng.random() < 0.8 else "/" + "/".join(words)


def test_route_labels_come_from_the_templates_or_other() -> None:
    assert route_of("/v1/decide/clicks") == "/v1/decide/{stream}"
    assert route_of("/v1/features/windowed.user/u1") == "/v1/features/{view}/{key}"
    assert route_of("/v1/models/m/aliases/prod") == "/v1/models/{name}/aliases/{alias}"
    assert route_of("/v1/decide/a/b") == OTHER
    assert route_of("/v1/nope") == OTHER and route_of("/../etc/passwd") == OTHER


def test_thousands_of_random_paths_leave_the_metrics_page_bounded() -> None:
    rng = random.Random(21)
    with TestClient(create_api(serving())) as http:
        for _ in range(20):  # every label value a rejected or unknown request can make
            http.get(random_path(rng))
            http.get(random_path(rng), headers=AUTH)
        before = len(http.get("/metrics", headers=AUTH).content)
        for _ in range(3000):
            http.get(random_path(rng), headers=AUTH if rng.random() < 0.2 else {})
        after = len(http.get("/metrics", headers=AUTH).content)
    assert after - before < 2048, (before, after)


def test_metrics_need_the_api_key_by_default_and_can_be_public_or_off() -> None:
    shown = {}
    for exposure in (None, Exposure(metrics="public"), Exposure(metrics="off")):
        with TestClient(create_api(serving(), exposure)) as http:
            shown[exposure] = (
                http.get("/metrics").status_code,
                http.get("/metrics", headers=AUTH).status_code,
            )
            assert http.get("/healthz").status_code == 200  # probes need no key
    assert shown == {
        None: (401, 200),
        Exposure(metrics="public"): (200, 200),
        Exposure(metrics="off"): (404, 404),
    }


def test_production_mode_hides_the_docs_and_the_schema() -> None:
    pages = ("/docs", "/redoc", "/openapi.json")
    with TestClient(create_api(serving())) as http:
        assert [http.get(page).status_code for page in pages] == [200, 200, 200]
    with TestClient(create_api(serving(), Exposure.production())) as http:
        assert [http.get(page).status_code for page in pages] == [404, 404, 404]
        assert http.get("/metrics", headers=AUTH).status_code == 200


def test_metrics_on_a_bind_address_of_their_own() -> None:
    served = serving()
    assert served.metrics_registry is not None
    with TestClient(create_api(served, Exposure(metrics="off"))) as http:
        http.post(
            f"/v1/decide/{clicks.topic}", json={"user": "u", "ts": 1, "amount": 1.0}, headers=AUTH
        )
        side = serve_metrics(served.metrics_registry, "127.0.0.1", 0)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{side.port}/metrics") as page:
                text = page.read().decode()
        finally:
            side.close()
    assert "streamsense_decide_seconds_count 1.0" in text


def test_serve_options_choose_what_is_shown() -> None:
    assert exposure_of(production=False, metrics="key", metrics_port=None) == Exposure()
    assert exposure_of(True, "public", None) == Exposure(metrics="public", docs=False)
    assert exposure_of(False, "public", 9100) == Exposure(metrics="off")  # on its own port
    with pytest.raises(typer.Exit):
        exposure_of(False, "everyone", None)
