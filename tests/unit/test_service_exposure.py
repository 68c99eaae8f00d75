"""What the HTTP API shows and to whom: request metrics labelled from a fixed set of
route templates (issue #21)."""

from __future__ import annotations

import random
import string

from fastapi.testclient import TestClient

from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.serving import Serving
from streamsense.serving.cascade import Cascade
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
